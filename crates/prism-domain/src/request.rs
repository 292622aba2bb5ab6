//! Saved requests of the three protocols. Values may contain `{{variables}}`; resolving them gives a
//! request ready to run (later work), and running it gives an [`crate::execution::Execution`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CollectionId, RequestId, Timestamp, UserId, WorkspaceId};

pub(crate) fn default_true() -> bool {
    true
}

/// The protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rest,
    Graphql,
    Grpc,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Rest, Protocol::Graphql, Protocol::Grpc];

    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Rest => "rest",
            Protocol::Graphql => "graphql",
            Protocol::Grpc => "grpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected rest, graphql or grpc")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProtocol(s.to_owned()))
    }
}

/// A header, query parameter, form field or metadata entry. Kept as an ordered list (names may
/// repeat) with an `enabled` flag so a disabled row survives a save. JSON: `{key, value, enabled}`
/// (`name` is accepted for `key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(rename = "key", alias = "name")]
    pub name: String,
    pub value: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl KeyValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            enabled: true,
        }
    }
}

/// A saved request: where it lives, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRequest {
    pub id: RequestId,
    pub workspace_id: WorkspaceId,
    pub collection_id: CollectionId,
    pub name: String,
    /// 0-based rank among the requests of the same collection or folder.
    pub position: i64,
    pub spec: RequestSpec,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a request does, per protocol. Serialized with a `protocol` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum RequestSpec {
    Rest(RestSpec),
    Graphql(GraphqlSpec),
    Grpc(GrpcSpec),
}

impl RequestSpec {
    pub fn protocol(&self) -> Protocol {
        match self {
            RequestSpec::Rest(_) => Protocol::Rest,
            RequestSpec::Graphql(_) => Protocol::Graphql,
            RequestSpec::Grpc(_) => Protocol::Grpc,
        }
    }
}

/// An HTTP request. `url` holds no query string; query parameters live in `params`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestSpec {
    /// Any method token, including custom ones; upper-cased by convention, not by force.
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub params: Vec<KeyValue>,
    #[serde(default)]
    pub headers: Vec<KeyValue>,
    #[serde(default)]
    pub body: Body,
    #[serde(default)]
    pub settings: HttpSettings,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    #[default]
    None,
    /// Text sent as-is, with an optional `Content-Type` (headers win if both set it).
    Raw {
        text: String,
        #[serde(default)]
        content_type: Option<String>,
    },
    /// JSON text sent with `Content-Type: application/json`.
    Json { text: String },
    /// `application/x-www-form-urlencoded`.
    Form { fields: Vec<KeyValue> },
    /// `multipart/form-data`.
    Multipart { parts: Vec<MultipartPart> },
}

/// One part of a multipart body: a text field, or a file whose bytes are kept base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartPart {
    pub name: String,
    #[serde(flatten)]
    pub value: MultipartValue,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MultipartValue {
    Text {
        value: String,
    },
    File {
        filename: String,
        #[serde(default)]
        content_type: Option<String>,
        base64: String,
    },
}

/// Per-request transport settings; `None` means "use the instance default".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpSettings {
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub max_redirects: Option<u32>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub verify_tls: Option<bool>,
}

/// A GraphQL operation sent over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphqlSpec {
    pub url: String,
    pub query: String,
    /// JSON text of the variables object (kept as text so `{{vars}}` inside it survive until resolution).
    #[serde(default)]
    pub variables: Option<String>,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub headers: Vec<KeyValue>,
    #[serde(default)]
    pub settings: HttpSettings,
}

/// A gRPC call described by `.proto` sources or discovered by server reflection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcSpec {
    /// `host:port`, or a URL with `http`/`https` scheme.
    pub address: String,
    /// Fully-qualified (`pkg.Service`) or simple service name.
    pub service: String,
    pub method: String,
    #[serde(default)]
    pub proto: ProtoSource,
    #[serde(default)]
    pub tls: GrpcTls,
    #[serde(default)]
    pub metadata: Vec<KeyValue>,
    /// JSON text of the request message; for client- or bidi-streaming methods, a JSON list of messages.
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Where a gRPC method's schema comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProtoSource {
    /// Ask the server (reflection v1, falling back to v1alpha).
    #[default]
    Reflection,
    /// Pasted `.proto` files that may import each other and the well-known types.
    Files { files: Vec<ProtoFile> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtoFile {
    /// The import path other files use for it, e.g. `acme/orders.proto`.
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrpcTls {
    #[serde(default)]
    pub enabled: bool,
    /// PEM of a CA to trust instead of the system roots.
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub verify: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_json_carries_the_protocol_tag() {
        let spec = RequestSpec::Rest(RestSpec {
            method: "GET".into(),
            url: "http://example.test/users".into(),
            params: vec![KeyValue::new("page", "2")],
            headers: vec![KeyValue {
                name: "X-A".into(),
                value: "1".into(),
                enabled: false,
            }],
            body: Body::None,
            settings: HttpSettings::default(),
        });
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["protocol"], "rest");
        assert_eq!(json["headers"][0]["enabled"], false);
        let back: RequestSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.protocol(), Protocol::Rest);
    }

    #[test]
    fn omitted_enabled_defaults_to_true() {
        let kv: KeyValue = serde_json::from_str(r#"{"name":"a","value":"b"}"#).unwrap();
        assert!(kv.enabled);
        let kv: KeyValue = serde_json::from_str(r#"{"key":"a","value":"b"}"#).unwrap();
        assert_eq!(kv.name, "a");
        assert_eq!(serde_json::to_value(&kv).unwrap()["key"], "a");
    }

    #[test]
    fn grpc_defaults_to_reflection() {
        let spec: GrpcSpec =
            serde_json::from_str(r#"{"address":"localhost:50051","service":"S","method":"M"}"#)
                .unwrap();
        assert_eq!(spec.proto, ProtoSource::Reflection);
        assert!(!spec.tls.enabled);
    }
}
