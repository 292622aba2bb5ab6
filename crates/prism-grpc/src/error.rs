//! Problems with the request itself, reported before (or instead of) sending it.
//!
//! The split with [`crate::GrpcOutcome`] follows what the user has to do about it: a
//! [`GrpcRequestError`] means "fix the request" (the proto does not compile, the method does not
//! exist, the JSON does not match the message type), while anything the *target* does — refuse
//! the connection, time out, answer `NOT_FOUND` — is an outcome to show and record. Each variant
//! has a stable [`GrpcRequestError::code`] for API clients and a message for people.

use std::fmt;

use prism_domain::execution::ErrorKind;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Where in the pasted `.proto` files a compile error is, when protox says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtoLocation {
    /// The file's import name as given in [`prism_domain::request::ProtoFile::name`].
    pub file: String,
    /// 1-based.
    pub line: Option<u32>,
    /// 1-based, in characters.
    pub column: Option<u32>,
}

impl fmt::Display for ProtoLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// A request that cannot be run as given. Messages are lowercase without a trailing period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrpcRequestError {
    /// The address is not `host:port` or an `http`/`https` URL.
    #[error("{0}")]
    InvalidAddress(String),
    /// The CA PEM could not be used.
    #[error("{0}")]
    InvalidTlsConfig(String),
    /// A metadata row has an invalid or reserved name, or a `-bin` value that is not base64.
    #[error("{0}")]
    InvalidMetadata(String),
    /// The pasted `.proto` files do not compile; the message starts with `file:line:column`.
    #[error("{}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    InvalidProto {
        location: Option<ProtoLocation>,
        message: String,
    },
    /// No such service in the schema (the message lists the available ones).
    #[error("{0}")]
    UnknownService(String),
    /// No such method in the service (the message lists the available ones).
    #[error("{0}")]
    UnknownMethod(String),
    /// The JSON message does not match the method's input type.
    #[error("{0}")]
    InvalidMessage(String),
    /// The server does not offer (usable) reflection.
    #[error("{0}")]
    ReflectionFailed(String),
    /// Only from [`crate::GrpcExecutor::list_services`], which has no outcome to put a transport
    /// failure in: the server could not be reached (or the outbound policy refused it).
    #[error("{message}")]
    Unreachable { kind: ErrorKind, message: String },
}

impl GrpcRequestError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GrpcRequestError::InvalidAddress(_) => "invalid_address",
            GrpcRequestError::InvalidTlsConfig(_) => "invalid_tls_config",
            GrpcRequestError::InvalidMetadata(_) => "invalid_metadata",
            GrpcRequestError::InvalidProto { .. } => "invalid_proto",
            GrpcRequestError::UnknownService(_) => "unknown_service",
            GrpcRequestError::UnknownMethod(_) => "unknown_method",
            GrpcRequestError::InvalidMessage(_) => "invalid_message",
            GrpcRequestError::ReflectionFailed(_) => "reflection_failed",
            GrpcRequestError::Unreachable { .. } => "unreachable",
        }
    }

    /// The message for people (what `Display` prints).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl Serialize for GrpcRequestError {
    /// `{"code": …, "message": …}`, plus `location` for `invalid_proto` and `kind` for
    /// `unreachable` when known.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("GrpcRequestError", 4)?;
        out.serialize_field("code", self.code())?;
        out.serialize_field("message", &self.message())?;
        match self {
            GrpcRequestError::InvalidProto {
                location: Some(location),
                ..
            } => out.serialize_field("location", location)?,
            GrpcRequestError::Unreachable { kind, .. } => out.serialize_field("kind", kind)?,
            _ => {}
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_proto_message_starts_with_the_location() {
        let err = GrpcRequestError::InvalidProto {
            location: Some(ProtoLocation {
                file: "a/b.proto".into(),
                line: Some(3),
                column: Some(7),
            }),
            message: "expected ';'".into(),
        };
        assert_eq!(err.to_string(), "a/b.proto:3:7: expected ';'");
        assert_eq!(err.code(), "invalid_proto");
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], "invalid_proto");
        assert_eq!(json["location"]["line"], 3);
    }

    #[test]
    fn unreachable_carries_its_kind() {
        let err = GrpcRequestError::Unreachable {
            kind: ErrorKind::ConnectionRefused,
            message: "connection refused".into(),
        };
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], "unreachable");
        assert_eq!(json["kind"], "connection_refused");
    }
}
