//! Request metadata from the user's rows plus W3C trace context, and received metadata as
//! [`Header`] lists.
//!
//! Binary metadata (keys ending in `-bin`) is base64 at PRISM's edges — users type base64 and see
//! base64 — while tonic sends the raw bytes (base64-encoded on the wire, as gRPC specifies).
//! Received `-bin` values are re-encoded as padded standard base64, whatever padding the server
//! used, so the same bytes always read the same.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prism_domain::request::KeyValue;
use prism_domain::trace_context::ClientSpanContext;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey, MetadataMap};

use crate::error::GrpcRequestError;
use crate::outcome::Header;

/// The metadata names of W3C Trace Context.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Names the gRPC transport sets itself; a user row with one of these would be dropped or
/// overwritten silently, so it is rejected instead. `grpc-*` is reserved by the gRPC spec.
const RESERVED: [&str; 9] = [
    "te",
    "content-type",
    "user-agent",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Standard alphabet, padding optional: what people paste varies.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The metadata to send and its listing for the outcome.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outgoing {
    pub map: MetadataMap,
    pub listed: Vec<Header>,
}

/// The user's enabled rows, except `traceparent`/`tracestate` (the caller folded those into the
/// [`ClientSpanContext`]). Reflection requests carry these too, since servers often require the
/// same credentials for reflection as for calls.
pub(crate) fn user_metadata(rows: &[KeyValue]) -> Result<Outgoing, GrpcRequestError> {
    let mut out = Outgoing::default();
    for row in rows.iter().filter(|r| r.enabled) {
        let name = row.name.trim().to_ascii_lowercase();
        if name == TRACEPARENT || name == TRACESTATE {
            continue;
        }
        let invalid =
            |why: &str| GrpcRequestError::InvalidMetadata(format!("metadata {name:?}: {why}"));
        if name.is_empty() {
            return Err(GrpcRequestError::InvalidMetadata(
                "a metadata row has an empty name".into(),
            ));
        }
        if name.starts_with("grpc-") || RESERVED.contains(&name.as_str()) {
            return Err(invalid("is set by the gRPC transport and cannot be sent"));
        }
        if name.ends_with("-bin") {
            let key = MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid metadata name"))?;
            let bytes = LENIENT_BASE64
                .decode(row.value.trim())
                .map_err(|_| invalid("values of -bin keys must be base64"))?;
            out.listed.push(Header {
                name: name.clone(),
                value: STANDARD.encode(&bytes),
            });
            out.map
                .append_bin(key, BinaryMetadataValue::from_bytes(&bytes));
        } else {
            let key = MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid metadata name"))?;
            let value = AsciiMetadataValue::try_from(row.value.as_str()).map_err(|_| {
                invalid("value must be printable ASCII (use a -bin key for binary data)")
            })?;
            out.listed.push(Header {
                name: name.clone(),
                value: row.value.clone(),
            });
            out.map.append(key, value);
        }
    }
    Ok(out)
}

/// `user` plus the client span's `traceparent` (and `tracestate`, when there is one).
pub(crate) fn with_trace(mut user: Outgoing, ctx: &ClientSpanContext) -> Outgoing {
    let traceparent = ctx.traceparent();
    if let Ok(value) = AsciiMetadataValue::try_from(traceparent.as_str()) {
        user.map.insert(TRACEPARENT, value);
        user.listed.push(Header {
            name: TRACEPARENT.into(),
            value: traceparent,
        });
    }
    // A tracestate that is not valid metadata (it came from the user's row, unchecked) is
    // dropped, as W3C allows for an invalid tracestate.
    if let Some(state) = &ctx.tracestate
        && let Ok(value) = AsciiMetadataValue::try_from(state.as_str())
    {
        user.map.insert(TRACESTATE, value);
        user.listed.push(Header {
            name: TRACESTATE.into(),
            value: state.clone(),
        });
    }
    user
}

/// Received metadata in wire order. `grpc-status`/`grpc-message` are left out when `skip_status`
/// (they are reported as the status instead).
pub(crate) fn received(map: &MetadataMap, skip_status: bool) -> Vec<Header> {
    map.clone()
        .into_headers()
        .iter()
        .filter(|(name, _)| {
            !(skip_status && matches!(name.as_str(), "grpc-status" | "grpc-message"))
        })
        .map(|(name, value)| {
            let name = name.as_str().to_owned();
            let value = if name.ends_with("-bin") {
                match LENIENT_BASE64.decode(value.as_bytes()) {
                    Ok(bytes) => STANDARD.encode(bytes),
                    Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                }
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            Header { name, value }
        })
        .collect()
}

/// Picks the user's own `traceparent` and `tracestate` out of a request's metadata (enabled rows,
/// names compared case-insensitively, first row wins) so the caller can continue that trace with
/// [`ClientSpanContext::start`] before calling [`crate::GrpcExecutor::execute`].
pub fn incoming_trace_metadata(rows: &[KeyValue]) -> (Option<String>, Option<String>) {
    let find = |wanted: &str| {
        rows.iter()
            .filter(|r| r.enabled)
            .find(|r| r.name.trim().eq_ignore_ascii_case(wanted))
            .map(|r| r.value.clone())
    };
    (find(TRACEPARENT), find(TRACESTATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_rows_become_metadata_without_trace_rows() {
        let rows = vec![
            KeyValue::new("X-Api-Key", "secret"),
            KeyValue::new("traceparent", "00-ignored"),
            KeyValue {
                name: "x-off".into(),
                value: "1".into(),
                enabled: false,
            },
            KeyValue::new("x-data-bin", "AAEC/w"),
        ];
        let out = user_metadata(&rows).unwrap();
        assert_eq!(out.map.get("x-api-key").unwrap(), "secret");
        assert!(out.map.get("traceparent").is_none());
        assert!(out.map.get("x-off").is_none());
        assert_eq!(
            out.map.get_bin("x-data-bin").unwrap().to_bytes().unwrap(),
            &[0u8, 1, 2, 255][..]
        );
        let names: Vec<&str> = out.listed.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-api-key", "x-data-bin"]);
        assert_eq!(out.listed[1].value, "AAEC/w==");
    }

    #[test]
    fn bad_and_reserved_rows_are_rejected() {
        for (name, value) in [
            ("grpc-timeout", "1S"),
            ("Content-Type", "text/plain"),
            ("bad name", "x"),
            ("x-a", "line\nbreak"),
            ("x-b-bin", "not base64!"),
            ("", "x"),
        ] {
            let err = user_metadata(&[KeyValue::new(name, value)]).unwrap_err();
            assert_eq!(err.code(), "invalid_metadata", "{name:?}: {err}");
        }
    }

    #[test]
    fn trace_context_is_appended() {
        let ctx = ClientSpanContext::start(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("vendor=abc"),
        );
        let out = with_trace(Outgoing::default(), &ctx);
        assert_eq!(
            out.map.get(TRACEPARENT).unwrap(),
            ctx.traceparent().as_str()
        );
        assert_eq!(out.map.get(TRACESTATE).unwrap(), "vendor=abc");
        assert_eq!(out.listed.len(), 2);
    }

    #[test]
    fn incoming_trace_metadata_is_found_case_insensitively() {
        let rows = vec![
            KeyValue::new("TraceParent", "tp"),
            KeyValue::new("tracestate", "ts"),
        ];
        assert_eq!(
            incoming_trace_metadata(&rows),
            (Some("tp".into()), Some("ts".into()))
        );
    }
}
