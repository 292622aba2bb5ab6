//! Trace and span identifiers and the stored shape of a span (OpenTelemetry's model, kept whole).

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Timestamp, WorkspaceId};

/// A hex string that is not a valid id of the expected length, or is all zeros.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected {len} lowercase hex digits, not all zero")]
pub struct InvalidTraceIdentifier {
    pub kind: &'static str,
    pub len: usize,
    pub value: String,
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $bytes:expr, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $bytes]);

        impl $name {
            /// A random id from the operating system's generator; never all zero (W3C: invalid).
            pub fn random() -> Self {
                let mut bytes = [0u8; $bytes];
                loop {
                    rand::rng().fill_bytes(&mut bytes);
                    if bytes.iter().any(|b| *b != 0) {
                        return Self(bytes);
                    }
                }
            }

            /// Wraps bytes; refuses the all-zero id.
            pub fn from_bytes(bytes: [u8; $bytes]) -> Option<Self> {
                bytes.iter().any(|b| *b != 0).then_some(Self(bytes))
            }

            /// From a byte slice of exactly the right length (as read from storage or OTLP protobuf).
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $bytes]>::try_from(bytes).ok().and_then(Self::from_bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $bytes] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                let mut out = String::with_capacity($bytes * 2);
                for b in self.0 {
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 0xf)]));
                }
                out
            }
        }

        impl FromStr for $name {
            type Err = InvalidTraceIdentifier;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let invalid = || InvalidTraceIdentifier { kind: $kind, len: $bytes * 2, value: s.to_owned() };
                let raw = s.as_bytes();
                if raw.len() != $bytes * 2 {
                    return Err(invalid());
                }
                let mut bytes = [0u8; $bytes];
                for (i, pair) in raw.chunks_exact(2).enumerate() {
                    let hi = hex_value(pair[0]).ok_or_else(invalid)?;
                    let lo = hex_value(pair[1]).ok_or_else(invalid)?;
                    bytes[i] = (hi << 4) | lo;
                }
                Self::from_bytes(bytes).ok_or_else(invalid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex only, as W3C trace context requires.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

hex_id!(
    /// A 128-bit trace id.
    TraceId, 16, "trace id"
);
hex_id!(
    /// A 64-bit span id.
    SpanId, 8, "span id"
);

/// OpenTelemetry span kind (same numbering as OTLP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub const fn code(self) -> i32 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    /// Unknown codes map to `Unspecified`, as OTLP receivers are told to do.
    pub const fn from_code(code: i32) -> Self {
        match code {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// OpenTelemetry status code (same numbering as OTLP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub const fn code(self) -> i32 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }

    pub const fn from_code(code: i32) -> Self {
        match code {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// Attributes as a JSON object; OTLP's typed values are encoded by the ingest code.
pub type Attributes = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub time: Timestamp,
    pub name: String,
    #[serde(default)]
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    #[serde(default)]
    pub trace_state: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
}

/// The instrumentation scope that produced a span.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
}

/// A span as stored. Spans from PRISM's own executions and from OTLP ingest share this shape.
/// The key is `(trace_id, span_id)`: storing the same span twice keeps the first copy (OTLP
/// exporters retry, and a retry must not duplicate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    /// The workspace the span was reported into, when the reporter's credentials say so.
    pub workspace_id: Option<WorkspaceId>,
    pub name: String,
    /// `service.name` of the resource (`prism` for PRISM's own client spans).
    pub service: String,
    pub kind: SpanKind,
    pub start: Timestamp,
    pub end: Timestamp,
    pub status_code: StatusCode,
    pub status_message: Option<String>,
    pub attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    pub resource_attributes: Attributes,
    pub scope: Scope,
    pub trace_state: Option<String>,
    pub flags: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_distinct_and_round_trip() {
        let a = TraceId::random();
        assert_ne!(a, TraceId::random());
        assert_eq!(a.to_hex().len(), 32);
        assert_eq!(a.to_hex().parse::<TraceId>().unwrap(), a);
        let s = SpanId::random();
        assert_eq!(s.to_hex().len(), 16);
        assert_eq!(s.to_hex().parse::<SpanId>().unwrap(), s);
    }

    #[test]
    fn zero_uppercase_and_wrong_length_are_invalid() {
        assert!(
            "00000000000000000000000000000000"
                .parse::<TraceId>()
                .is_err()
        );
        assert!(
            "4BF92F3577B34DA6A3CE929D0E0E4736"
                .parse::<TraceId>()
                .is_err()
        );
        assert!("4bf92f3577b34da6".parse::<TraceId>().is_err());
        assert!("00f067aa0ba902b7".parse::<SpanId>().is_ok());
        assert!(SpanId::from_slice(&[0; 8]).is_none());
        assert!(SpanId::from_slice(&[1; 7]).is_none());
    }

    #[test]
    fn kind_and_status_codes_match_otlp() {
        assert_eq!(SpanKind::from_code(3), SpanKind::Client);
        assert_eq!(SpanKind::Client.code(), 3);
        assert_eq!(SpanKind::from_code(99), SpanKind::Unspecified);
        assert_eq!(StatusCode::from_code(2), StatusCode::Error);
    }
}
