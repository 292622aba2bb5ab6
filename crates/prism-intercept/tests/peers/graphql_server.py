"""A real GraphQL server for PRISM's tests: graphql-core executing a small schema over HTTP.

Serves POST /graphql ({query, variables, operationName}) on 127.0.0.1 at a free port, prints the
port on the first line of stdout, and runs until killed. The `traceparent` field answers the
header the server received, so tests can check trace context end to end.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graphql import build_schema, graphql_sync

SCHEMA = build_schema(
    """
    type User { id: ID!, name: String!, tags: [String!]! }
    type Query {
      user(id: ID!): User
      users(first: Int = 10): [User!]!
      traceparent: String
    }
    """
)

USERS = {"1": {"id": "1", "name": "Ada", "tags": ["admin"]}, "2": {"id": "2", "name": "Bob", "tags": []}}


class Root:
    def __init__(self, headers):
        self.headers = headers

    def user(self, info, id):
        if id not in USERS:
            raise ValueError(f"no user {id}")
        return USERS[id]

    def users(self, info, first):
        return list(USERS.values())[:first]

    def traceparent(self, info):
        return self.headers.get("traceparent")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError as err:
            return self.answer(400, {"errors": [{"message": f"bad JSON: {err}"}]})
        result = graphql_sync(
            SCHEMA,
            payload.get("query", ""),
            root_value=Root(self.headers),
            variable_values=payload.get("variables"),
            operation_name=payload.get("operationName"),
        )
        body = {"data": result.data}
        if result.errors:
            body["errors"] = [err.formatted for err in result.errors]
        self.answer(200, body)

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
