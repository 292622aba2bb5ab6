//! The JSON shape of a request as the API reads and writes it — for saved requests and for the
//! ad-hoc send alike — and its conversion to and from the domain's [`RequestSpec`].
//!
//! One flat object tagged by `protocol` (snake_case, as upstream):
//! - `rest`: `method`, `url`, `params`, `headers`, `body`, `settings`;
//! - `graphql`: `url`, `query`, `variables`, `operation_name`, `headers`, `settings`;
//! - `grpc`: `server_address`, `service`, `method`, `proto_files` (empty: server reflection),
//!   `metadata`, `body` (the message, or a JSON list of messages for client/bidi streaming),
//!   `use_tls` (+ `tls` for a CA or to switch verification off), `timeout_ms`.
//!
//! Lists of headers, params, form fields and metadata are ordered `{key, value, enabled}` rows.
//! Values may hold `{{variables}}`, so JSON-ish fields (GraphQL variables, gRPC message) are kept
//! as text when they are not valid JSON yet.

use prism_domain::request::{
    Body, GraphqlSpec, GrpcSpec, GrpcTls, HttpSettings, KeyValue, ProtoFile, ProtoSource, Protocol,
    RequestSpec, RestSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiError;

/// A request of any protocol (see the module documentation for which fields apply).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RequestFields {
    /// `rest`, `graphql` or `grpc`.
    #[schema(value_type = String, example = "rest")]
    pub protocol: Option<Protocol>,
    /// REST: the HTTP method (any token; default GET). gRPC: the method name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// REST and GraphQL: an absolute http(s) URL (may hold `{{variables}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// REST: query parameters, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<KeyValue>,
    /// REST and GraphQL: headers, in order; names may repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub headers: Vec<KeyValue>,
    /// REST: `{"kind": "none"|"raw"|"json"|"form"|"multipart", …}` or a plain string (raw).
    /// gRPC: the request message as JSON (object, or list for streaming) or its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// REST and GraphQL: `follow_redirects`, `max_redirects`, `timeout_ms`, `verify_tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<HttpSettings>,
    /// GraphQL: the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// GraphQL: a JSON object, or its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    /// gRPC: `host:port` or an http(s) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    /// gRPC: `package.Service` or the simple name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// gRPC: `.proto` files `{name, content}` that may import each other; empty means server
    /// reflection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub proto_files: Vec<ProtoFile>,
    /// gRPC: metadata rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub metadata: Vec<KeyValue>,
    /// gRPC: TLS with the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,
    /// gRPC: `{enabled, ca_pem, verify}` for a private CA or to switch verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tls: Option<GrpcTls>,
    /// gRPC: deadline in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn required(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_field(field, "is required"))
}

fn json_text(field: &str, value: Option<Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(ApiError::invalid_field(
            field,
            "must be a JSON object (or list), or its text",
        )),
    }
}

/// Text that is JSON is shown as JSON; anything else (e.g. with `{{vars}}` unquoted) as a string.
fn as_json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl RequestFields {
    /// The domain spec, or `422 invalid_field` naming what is missing or malformed.
    pub fn into_spec(self) -> Result<RequestSpec, ApiError> {
        let protocol = self.protocol.ok_or_else(|| {
            ApiError::invalid_field("protocol", "is required: rest, graphql or grpc")
        })?;
        let too_long = |field: &str, text: &str, max: usize| {
            if text.len() > max {
                Err(ApiError::invalid_field(
                    field,
                    format!("is longer than {max} bytes"),
                ))
            } else {
                Ok(())
            }
        };
        match protocol {
            Protocol::Rest => {
                let url = required("url", self.url)?;
                too_long("url", &url, 16 * 1024)?;
                let method = self
                    .method
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "GET".into());
                if !method
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                {
                    return Err(ApiError::invalid_field(
                        "method",
                        "is not an HTTP method token",
                    ));
                }
                let body = match self.body {
                    None | Some(Value::Null) => Body::None,
                    Some(Value::String(text)) if text.is_empty() => Body::None,
                    Some(Value::String(text)) => Body::Raw {
                        text,
                        content_type: None,
                    },
                    Some(object @ Value::Object(_)) => serde_json::from_value(object)
                        .map_err(|e| ApiError::invalid_field("body", e.to_string()))?,
                    Some(_) => {
                        return Err(ApiError::invalid_field(
                            "body",
                            "must be a string or an object with a `kind`",
                        ));
                    }
                };
                Ok(RequestSpec::Rest(RestSpec {
                    method,
                    url,
                    params: self.params,
                    headers: self.headers,
                    body,
                    settings: self.settings.unwrap_or_default(),
                }))
            }
            Protocol::Graphql => {
                let url = required("url", self.url)?;
                too_long("url", &url, 16 * 1024)?;
                Ok(RequestSpec::Graphql(GraphqlSpec {
                    url,
                    query: required("query", self.query)?,
                    variables: json_text("variables", self.variables)?,
                    operation_name: self.operation_name.filter(|o| !o.trim().is_empty()),
                    headers: self.headers,
                    settings: self.settings.unwrap_or_default(),
                }))
            }
            Protocol::Grpc => {
                let (service, method, body) =
                    (self.service.clone(), self.method.clone(), self.body.clone());
                let target = self.into_grpc_target()?;
                Ok(RequestSpec::Grpc(GrpcSpec {
                    service: required("service", service)?,
                    method: required("method", method)?,
                    message: json_text("body", body)?.unwrap_or_default(),
                    ..target
                }))
            }
        }
    }

    /// The gRPC server these fields name and how to learn its schema — for listing its services,
    /// so `service`, `method` and `body` are not needed (and left empty). `422 invalid_field` for
    /// another protocol or no `server_address`.
    pub fn into_grpc_server(self) -> Result<GrpcSpec, ApiError> {
        if self.protocol.is_some_and(|p| p != Protocol::Grpc) {
            return Err(ApiError::invalid_field("protocol", "must be grpc"));
        }
        self.into_grpc_target()
    }

    /// The gRPC spec's target part (`address`, `proto`, `tls`, `metadata`, `timeout_ms`), with an
    /// empty service, method and message.
    fn into_grpc_target(self) -> Result<GrpcSpec, ApiError> {
        let proto = if self.proto_files.is_empty() {
            ProtoSource::Reflection
        } else {
            ProtoSource::Files {
                files: self.proto_files,
            }
        };
        let tls = self.tls.unwrap_or(GrpcTls {
            enabled: self.use_tls.unwrap_or(false),
            ca_pem: None,
            verify: None,
        });
        Ok(GrpcSpec {
            address: required("server_address", self.server_address.or(self.url))?,
            service: String::new(),
            method: String::new(),
            proto,
            tls,
            metadata: self.metadata,
            message: String::new(),
            timeout_ms: self.timeout_ms,
        })
    }

    /// The API's view of a spec (the inverse of [`Self::into_spec`]).
    pub fn from_spec(spec: &RequestSpec) -> Self {
        match spec {
            RequestSpec::Rest(rest) => Self {
                protocol: Some(Protocol::Rest),
                method: Some(rest.method.clone()),
                url: Some(rest.url.clone()),
                params: rest.params.clone(),
                headers: rest.headers.clone(),
                body: Some(serde_json::to_value(&rest.body).unwrap_or(Value::Null)),
                settings: Some(rest.settings.clone()),
                ..Self::default()
            },
            RequestSpec::Graphql(gql) => Self {
                protocol: Some(Protocol::Graphql),
                url: Some(gql.url.clone()),
                query: Some(gql.query.clone()),
                variables: gql.variables.as_deref().map(as_json_or_text),
                operation_name: gql.operation_name.clone(),
                headers: gql.headers.clone(),
                settings: Some(gql.settings.clone()),
                ..Self::default()
            },
            RequestSpec::Grpc(grpc) => Self {
                protocol: Some(Protocol::Grpc),
                server_address: Some(grpc.address.clone()),
                service: Some(grpc.service.clone()),
                method: Some(grpc.method.clone()),
                proto_files: match &grpc.proto {
                    ProtoSource::Reflection => Vec::new(),
                    ProtoSource::Files { files } => files.clone(),
                },
                metadata: grpc.metadata.clone(),
                body: (!grpc.message.trim().is_empty()).then(|| as_json_or_text(&grpc.message)),
                use_tls: Some(grpc.tls.enabled),
                tls: (grpc.tls.ca_pem.is_some() || grpc.tls.verify.is_some())
                    .then(|| grpc.tls.clone()),
                timeout_ms: grpc.timeout_ms,
                ..Self::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<RequestSpec, ApiError> {
        serde_json::from_value::<RequestFields>(value)
            .expect("shape")
            .into_spec()
    }

    #[test]
    fn every_protocol_round_trips() {
        let inputs = [
            json!({"protocol": "rest", "method": "POST", "url": "http://{{host}}/users",
                   "params": [{"key": "page", "value": "2", "enabled": false}],
                   "headers": [{"key": "X-A", "value": "1"}, {"key": "X-A", "value": "2"}],
                   "body": {"kind": "json", "text": "{\"a\": {{n}}}"}}),
            json!({"protocol": "graphql", "url": "http://h/graphql", "query": "{ me { id } }",
                   "variables": {"id": "{{id}}"}, "operation_name": "Me"}),
            json!({"protocol": "grpc", "server_address": "{{grpc}}", "service": "acme.Orders",
                   "method": "Get", "proto_files": [{"name": "a.proto", "content": "syntax = \"proto3\";"}],
                   "metadata": [{"key": "x-k", "value": "v"}], "body": [{"id": 1}, {"id": 2}],
                   "use_tls": true}),
        ];
        for input in inputs {
            let spec = parse(input.clone()).unwrap();
            let back = RequestFields::from_spec(&spec).into_spec().unwrap();
            assert_eq!(back, spec, "{input}");
        }
    }

    #[test]
    fn upstream_shapes_are_accepted() {
        let RequestSpec::Rest(rest) =
            parse(json!({"protocol": "rest", "url": "http://h", "body": "hi"})).unwrap()
        else {
            panic!("rest");
        };
        assert_eq!(rest.method, "GET");
        assert_eq!(
            rest.body,
            Body::Raw {
                text: "hi".into(),
                content_type: None
            }
        );
        let RequestSpec::Grpc(grpc) = parse(json!({"protocol": "grpc", "server_address": "h:1",
            "service": "S", "method": "M", "body": "{\"a\": {{n}}}"}))
        .unwrap() else {
            panic!("grpc");
        };
        assert_eq!(grpc.message, "{\"a\": {{n}}}");
        assert_eq!(grpc.proto, ProtoSource::Reflection);
        let shown = RequestFields::from_spec(&RequestSpec::Grpc(grpc));
        assert_eq!(shown.body, Some(Value::String("{\"a\": {{n}}}".into())));
    }

    #[test]
    fn missing_fields_are_named() {
        for (input, field) in [
            (json!({}), "protocol"),
            (json!({"protocol": "rest"}), "url"),
            (
                json!({"protocol": "rest", "url": "http://h", "method": "GE T"}),
                "method",
            ),
            (json!({"protocol": "graphql", "url": "http://h"}), "query"),
            (
                json!({"protocol": "grpc", "service": "S", "method": "M"}),
                "server_address",
            ),
            (
                json!({"protocol": "grpc", "server_address": "h:1", "method": "M"}),
                "service",
            ),
            (
                json!({"protocol": "rest", "url": "http://h", "body": 5}),
                "body",
            ),
            (
                json!({"protocol": "graphql", "url": "http://h", "query": "{a}", "variables": 1}),
                "variables",
            ),
        ] {
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{input}: {err:?}");
            assert_eq!(err.status, 422);
        }
    }
}
