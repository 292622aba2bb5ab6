//! W3C Trace Context: parsing and formatting `traceparent`, and deciding the context of the client
//! span PRISM creates for each execution. The one module that knows the header's grammar.
//!
//! Rules (W3C Trace Context Level 1, §3.2): `version-traceid-parentid-flags`, lowercase hex;
//! version `ff` is invalid; an all-zero trace id or parent id is invalid; version `00` is exactly 55
//! characters; a higher version may carry more fields after a `-`, of which the first four are read.
//! When the incoming `traceparent` is invalid, `tracestate` is discarded with it.

use std::fmt;

use crate::trace::{SpanId, TraceId};

/// The sampled bit of `trace-flags`.
pub const FLAG_SAMPLED: u8 = 0x01;

/// A parsed `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    pub flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent {0:?}")]
pub struct InvalidTraceParent(pub String);

impl TraceParent {
    pub fn parse(header: &str) -> Result<Self, InvalidTraceParent> {
        let invalid = || InvalidTraceParent(header.to_owned());
        let value = header.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return Err(invalid());
        }
        let version = &value[0..2];
        if !is_lower_hex(version) || version == "ff" {
            return Err(invalid());
        }
        if version == "00" && bytes.len() != 55 {
            return Err(invalid());
        }
        if bytes.len() > 55 && bytes[55] != b'-' {
            return Err(invalid());
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(invalid());
        }
        let trace_id: TraceId = value[3..35].parse().map_err(|_| invalid())?;
        let parent_id: SpanId = value[36..52].parse().map_err(|_| invalid())?;
        let flags_hex = &value[53..55];
        if !is_lower_hex(flags_hex) {
            return Err(invalid());
        }
        let flags = u8::from_str_radix(flags_hex, 16).map_err(|_| invalid())?;
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

impl fmt::Display for TraceParent {
    /// Always written as version `00`, whatever version was read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The trace context of a client span PRISM is about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpanContext {
    pub trace_id: TraceId,
    /// The new client span; it becomes the parent id in the outgoing `traceparent`.
    pub span_id: SpanId,
    /// The caller's span when the request already carried a valid `traceparent`.
    pub parent_span_id: Option<SpanId>,
    pub flags: u8,
    /// Passed through unchanged when the incoming `traceparent` was valid.
    pub tracestate: Option<String>,
}

impl ClientSpanContext {
    /// Continues the caller's trace when `traceparent` is valid (new child span, same trace id,
    /// flags and `tracestate` kept); otherwise starts a new sampled trace and drops `tracestate`.
    pub fn start(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        match traceparent.map(TraceParent::parse) {
            Some(Ok(parent)) => Self {
                trace_id: parent.trace_id,
                span_id: SpanId::random(),
                parent_span_id: Some(parent.parent_id),
                flags: parent.flags,
                tracestate: tracestate
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            },
            _ => Self {
                trace_id: TraceId::random(),
                span_id: SpanId::random(),
                parent_span_id: None,
                flags: FLAG_SAMPLED,
                tracestate: None,
            },
        }
    }

    /// The `traceparent` to send to the target.
    pub fn traceparent(&self) -> String {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: self.span_id,
            flags: self.flags,
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let tp = TraceParent::parse(VALID).unwrap();
        assert_eq!(tp.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_hex(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn rejects_what_the_spec_calls_invalid() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?} must be invalid");
        }
    }

    #[test]
    fn future_versions_are_read_by_their_first_four_fields() {
        let tp =
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-whatever")
                .unwrap();
        assert_eq!(tp.flags, 0x09);
        assert_eq!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09")
                .unwrap()
                .flags,
            9
        );
    }

    #[test]
    fn valid_incoming_context_is_continued_with_a_new_child() {
        let ctx = ClientSpanContext::start(Some(VALID), Some("vendor=abc"));
        assert_eq!(ctx.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id.unwrap().to_hex(), "00f067aa0ba902b7");
        assert_ne!(ctx.span_id.to_hex(), "00f067aa0ba902b7");
        assert_eq!(ctx.tracestate.as_deref(), Some("vendor=abc"));
        let out = TraceParent::parse(&ctx.traceparent()).unwrap();
        assert_eq!(out.trace_id, ctx.trace_id);
        assert_eq!(out.parent_id, ctx.span_id);
        assert_eq!(out.flags, 0x01);
    }

    #[test]
    fn invalid_or_missing_context_starts_a_new_sampled_trace() {
        let ctx = ClientSpanContext::start(Some("garbage"), Some("vendor=abc"));
        assert!(ctx.parent_span_id.is_none());
        assert!(
            ctx.tracestate.is_none(),
            "tracestate is dropped with an invalid traceparent"
        );
        assert_eq!(ctx.flags, FLAG_SAMPLED);
        let a = ClientSpanContext::start(None, None);
        let b = ClientSpanContext::start(None, None);
        assert_ne!(a.trace_id, b.trace_id);
        assert!(TraceParent::parse(&a.traceparent()).unwrap().sampled());
    }

    #[test]
    fn unsampled_flag_is_kept() {
        let ctx = ClientSpanContext::start(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            None,
        );
        assert!(ctx.traceparent().ends_with("-00"));
    }
}
