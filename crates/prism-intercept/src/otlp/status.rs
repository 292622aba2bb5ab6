//! The `google.rpc` messages of OTLP error replies: `Status` with `ErrorInfo` (our stable code) and
//! `RetryInfo` (the retry delay) details, in protobuf and in the proto3 JSON mapping.
//!
//! They are declared here with prost rather than pulled from a crate of Google's well-known types:
//! four tiny messages are all the ingest needs.

use std::time::Duration;

use base64::Engine;
use prost::Message;

/// The domain of our `ErrorInfo` details.
pub const ERROR_DOMAIN: &str = "prism";
pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.ErrorInfo` (without its metadata map, which we never fill).
#[derive(Clone, PartialEq, Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl RetryInfo {
    pub fn after(delay: Duration) -> Self {
        RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        }
    }
}

/// A status with our error code as `ErrorInfo.reason` and, when given, a retry delay.
pub fn rpc_status(
    grpc_code: i32,
    message: String,
    code: &str,
    retry_after: Option<Duration>,
) -> RpcStatus {
    let mut details = vec![ProtoAny {
        type_url: ERROR_INFO_TYPE.to_owned(),
        value: ErrorInfo {
            reason: code.to_owned(),
            domain: ERROR_DOMAIN.to_owned(),
        }
        .encode_to_vec(),
    }];
    if let Some(delay) = retry_after {
        details.push(ProtoAny {
            type_url: RETRY_INFO_TYPE.to_owned(),
            value: RetryInfo::after(delay).encode_to_vec(),
        });
    }
    RpcStatus {
        code: grpc_code,
        message,
        details,
    }
}

impl RpcStatus {
    /// The proto3 JSON mapping of this status. `Any` details are written with their `@type` and
    /// the fields of the message they hold; a detail of a type we do not know is written as
    /// base64 bytes under `value` (never produced by this module).
    pub fn to_json(&self) -> serde_json::Value {
        let details: Vec<serde_json::Value> = self
            .details
            .iter()
            .map(|any| match any.type_url.as_str() {
                ERROR_INFO_TYPE => {
                    let info = ErrorInfo::decode(any.value.as_slice()).unwrap_or_default();
                    serde_json::json!({"@type": any.type_url, "reason": info.reason, "domain": info.domain})
                }
                RETRY_INFO_TYPE => {
                    let delay = RetryInfo::decode(any.value.as_slice())
                        .unwrap_or_default()
                        .retry_delay
                        .unwrap_or_default();
                    serde_json::json!({"@type": any.type_url, "retryDelay": json_duration(&delay)})
                }
                _ => serde_json::json!({
                    "@type": any.type_url,
                    "value": base64::engine::general_purpose::STANDARD.encode(&any.value),
                }),
            })
            .collect();
        serde_json::json!({"code": self.code, "message": self.message, "details": details})
    }
}

/// `Duration` in the JSON mapping: seconds with an `s` suffix, e.g. `"1.500s"`.
fn json_duration(d: &ProtoDuration) -> String {
    if d.nanos == 0 {
        format!("{}s", d.seconds)
    } else {
        format!("{}.{:09}s", d.seconds, d.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_maps_to_json() {
        let status = rpc_status(
            8,
            "busy".into(),
            "overloaded",
            Some(Duration::from_millis(1500)),
        );
        let decoded = RpcStatus::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, status);
        let json = status.to_json();
        assert_eq!(json["code"], 8);
        assert_eq!(json["details"][0]["reason"], "overloaded");
        assert_eq!(json["details"][0]["domain"], "prism");
        assert_eq!(json["details"][1]["retryDelay"], "1.500000000s");
    }
}
