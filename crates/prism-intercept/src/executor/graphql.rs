//! GraphQL over HTTP: the JSON POST body, detecting `errors` in the response, and schema
//! introspection. The transport is REST's ([`HttpExecutor::run`]), so GraphQL gets the same trace
//! context, limits and error classification.

use prism_domain::execution::ErrorKind;
use prism_domain::request::{GraphqlSpec, HttpSettings, KeyValue};
use prism_domain::trace_context::ClientSpanContext;
use reqwest::header::{ACCEPT, HeaderName};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::http::{EncodedBody, Plan};
use super::{BodyEncoding, BodySnapshot, ExecutionError, HttpExecutor, HttpOutcome, Introspection};

/// GraphQL-over-HTTP asks clients to say which response types they accept; a user's `Accept`
/// header wins.
const GRAPHQL_DEFAULT_HEADERS: &[(HeaderName, &str)] = &[(
    ACCEPT,
    "application/graphql-response+json, application/json;q=0.9",
)];

/// The introspection query graphql-js' `getIntrospectionQuery()` produces with its default
/// options: the form every GraphQL server accepts (no fields newer than the 2018 spec).
pub const INTROSPECTION_QUERY: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  fields(includeDeprecated: true) {
    name
    description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType { kind name }
            }
          }
        }
      }
    }
  }
}
"#;

impl HttpExecutor {
    /// Runs a GraphQL operation: a JSON POST of `query`, `variables` and `operationName`, with
    /// `Content-Type: application/json` unless a header sets it. The HTTP status is reported as
    /// received; `graphql_errors` says whether the response carried GraphQL errors. Trace context
    /// works as for [`HttpExecutor::execute_rest`].
    pub async fn execute_graphql(
        &self,
        spec: &GraphqlSpec,
        ctx: &ClientSpanContext,
    ) -> HttpOutcome {
        let body = graphql_body(
            &spec.query,
            spec.variables.as_deref(),
            spec.operation_name.as_deref(),
        );
        let mut outcome = self
            .run(
                Plan {
                    method: "POST",
                    url: &spec.url,
                    params: &[],
                    headers: &spec.headers,
                    default_headers: GRAPHQL_DEFAULT_HEADERS,
                    body: body.map(Some),
                    settings: &spec.settings,
                },
                ctx,
            )
            .await;
        outcome.graphql_errors = outcome
            .response
            .as_ref()
            .is_some_and(|r| has_graphql_errors(&r.body));
        outcome
    }

    /// Asks the endpoint for its schema with [`INTROSPECTION_QUERY`]. A response without
    /// `data.__schema` (introspection disabled, an error status, a body over `max_body_bytes`…)
    /// gives no schema and an `outcome.error` of kind `Protocol` saying why, unless the transport
    /// already failed.
    pub async fn introspect(
        &self,
        url: &str,
        headers: &[KeyValue],
        settings: &HttpSettings,
        ctx: &ClientSpanContext,
    ) -> Introspection {
        let spec = GraphqlSpec {
            url: url.to_owned(),
            query: INTROSPECTION_QUERY.to_owned(),
            variables: None,
            operation_name: Some("IntrospectionQuery".to_owned()),
            headers: headers.to_vec(),
            settings: settings.clone(),
        };
        let mut outcome = self.execute_graphql(&spec, ctx).await;
        if outcome.error.is_some() {
            return Introspection {
                schema: None,
                outcome,
            };
        }
        let Some(response) = &outcome.response else {
            return Introspection {
                schema: None,
                outcome,
            };
        };
        match extract_schema(response.status, &response.body) {
            Ok(schema) => Introspection {
                schema: Some(schema),
                outcome,
            },
            Err(message) => {
                outcome.error = Some(ExecutionError {
                    kind: ErrorKind::Protocol,
                    message,
                });
                Introspection {
                    schema: None,
                    outcome,
                }
            }
        }
    }
}

/// The POST body. `variables` is JSON text (kept as text in the spec so `{{vars}}` survive until
/// resolution); it must be an object, and is omitted when empty or `null`, as is an empty
/// operation name.
pub(super) fn graphql_body(
    query: &str,
    variables: Option<&str>,
    operation_name: Option<&str>,
) -> Result<EncodedBody, String> {
    let mut body = Map::new();
    body.insert("query".into(), Value::String(query.to_owned()));
    if let Some(text) = variables.map(str::trim).filter(|t| !t.is_empty()) {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("GraphQL variables are not valid JSON: {e}"))?;
        match value {
            Value::Object(_) => {
                body.insert("variables".into(), value);
            }
            Value::Null => {}
            _ => return Err("GraphQL variables must be a JSON object".to_owned()),
        }
    }
    if let Some(name) = operation_name.map(str::trim).filter(|n| !n.is_empty()) {
        body.insert("operationName".into(), Value::String(name.to_owned()));
    }
    Ok(EncodedBody {
        bytes: Value::Object(body).to_string().into_bytes(),
        content_type: Some("application/json".to_owned()),
        content_type_forced: false,
    })
}

/// Only the `errors` member is materialized; the rest of the response is skipped while parsing.
#[derive(Deserialize)]
struct ErrorsProbe {
    #[serde(default)]
    errors: Option<Value>,
}

/// A non-empty `errors` array in a complete JSON response. A body truncated at the cap cannot be
/// parsed and counts as no errors.
pub(super) fn has_graphql_errors(body: &BodySnapshot) -> bool {
    if body.encoding != BodyEncoding::Text || body.truncated {
        return false;
    }
    serde_json::from_str::<ErrorsProbe>(&body.data)
        .ok()
        .and_then(|probe| probe.errors)
        .is_some_and(|errors| errors.as_array().is_some_and(|a| !a.is_empty()))
}

fn extract_schema(status: u16, body: &BodySnapshot) -> Result<Value, String> {
    if body.truncated {
        return Err(format!(
            "the introspection response ({} bytes) exceeds max_body_bytes",
            body.size
        ));
    }
    if body.encoding != BodyEncoding::Text {
        return Err(format!(
            "the introspection response (HTTP {status}) is not text"
        ));
    }
    let mut json: Value = serde_json::from_str(&body.data)
        .map_err(|e| format!("the introspection response (HTTP {status}) is not JSON: {e}"))?;
    if let Some(schema) = json
        .get_mut("data")
        .and_then(|d| d.get_mut("__schema"))
        .filter(|s| s.is_object())
    {
        return Ok(schema.take());
    }
    let messages: Vec<&str> = json
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    Err(if messages.is_empty() {
        format!("the introspection response (HTTP {status}) has no data.__schema")
    } else {
        format!(
            "introspection failed (HTTP {status}): {}",
            messages.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(data: &str) -> BodySnapshot {
        BodySnapshot {
            encoding: BodyEncoding::Text,
            data: data.to_owned(),
            truncated: false,
            size: data.len() as u64,
            size_is_lower_bound: false,
        }
    }

    #[test]
    fn body_omits_empty_parts_and_rejects_bad_variables() {
        let body = graphql_body("{ a }", Some("  "), Some("")).unwrap();
        let json: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(json, serde_json::json!({"query": "{ a }"}));

        let body = graphql_body("query Q { a }", Some(r#"{"id": 1}"#), Some("Q")).unwrap();
        let json: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "query": "query Q { a }",
                "variables": {"id": 1},
                "operationName": "Q",
            })
        );

        assert!(graphql_body("{ a }", Some("{not json"), None).is_err());
        assert!(graphql_body("{ a }", Some("[1]"), None).is_err());
    }

    #[test]
    fn errors_are_detected_only_when_non_empty() {
        assert!(has_graphql_errors(&text(r#"{"errors":[{"message":"x"}]}"#)));
        assert!(!has_graphql_errors(&text(r#"{"data":{},"errors":[]}"#)));
        assert!(!has_graphql_errors(&text(r#"{"data":{"a":1}}"#)));
        assert!(!has_graphql_errors(&text("not json")));
    }

    #[test]
    fn schema_is_extracted_or_explained() {
        let schema = extract_schema(200, &text(r#"{"data":{"__schema":{"types":[]}}}"#)).unwrap();
        assert_eq!(schema, serde_json::json!({"types": []}));
        let err = extract_schema(
            200,
            &text(r#"{"errors":[{"message":"introspection is disabled"}]}"#),
        )
        .unwrap_err();
        assert!(err.contains("introspection is disabled"), "{err}");
    }
}
