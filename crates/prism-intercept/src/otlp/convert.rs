//! OTLP messages → stored [`Span`]s: validation of each span, attribute values as JSON, and NUL
//! sanitizing.
//!
//! Rules:
//! - A span is rejected (counted in `partial_success.rejected_spans`, the reason aggregated into
//!   `error_message`) when its trace id is not 16 bytes or is all zero, its span id is not 8 bytes
//!   or is all zero, its parent span id is neither empty nor 8 bytes, it has no start time, a time
//!   does not fit a signed 64-bit nanosecond count, or it ends before it starts. The other spans of
//!   the request are stored.
//! - A link with an invalid trace or span id is dropped from its span (the span is kept) and
//!   reported as a warning in `error_message`. An all-zero parent span id means "root".
//! - `service` is the resource's `service.name` string, `unknown_service` when absent or empty
//!   (the OpenTelemetry default).
//! - Attribute values become JSON: strings, booleans, integers (JSON numbers), doubles (JSON
//!   numbers; NaN and ±infinity, which JSON cannot hold, become the strings `"NaN"`,
//!   `"Infinity"`, `"-Infinity"`), bytes (standard base64 strings), arrays, key-value lists
//!   (objects; a repeated key keeps its last value) and empty values (`null`).
//! - Every string that reaches the database has U+0000 replaced with U+FFFD: PostgreSQL's TEXT and
//!   JSONB cannot hold NUL, and one such attribute must not make the database refuse a batch.
//! - Not kept (the stored span has no place for them): dropped-attribute/event/link counts,
//!   schema URLs, link flags, entity refs.

use std::collections::BTreeMap;

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prism_domain::trace::{
    Attributes, Scope, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId,
};
use prism_domain::{Timestamp, WorkspaceId};
use serde_json::Value;

/// The service name used when a resource does not name one.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The spans of a request that are fit to store, and the OTLP answer describing the rest.
#[derive(Debug)]
pub struct Converted {
    pub spans: Vec<Span>,
    pub response: ExportTraceServiceResponse,
}

/// Converts every span of `request`, attributing them to `workspace`.
pub fn to_spans(request: ExportTraceServiceRequest, workspace: Option<WorkspaceId>) -> Converted {
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let mut spans = Vec::with_capacity(total);
    let mut report = Report::default();
    for resource_spans in request.resource_spans {
        let resource_attributes = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let service = match resource_attributes.get("service.name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => UNKNOWN_SERVICE.to_owned(),
        };
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(scope).unwrap_or_default();
            for span in scope_spans.spans {
                let context = Context {
                    workspace,
                    service: &service,
                    resource_attributes: &resource_attributes,
                    scope: &scope,
                };
                match convert_span(span, &context, &mut report) {
                    Ok(span) => spans.push(span),
                    Err(reason) => report.reject(reason),
                }
            }
        }
    }
    Converted {
        spans,
        response: report.into_response(),
    }
}

/// What every span of one scope shares.
struct Context<'a> {
    workspace: Option<WorkspaceId>,
    service: &'a str,
    resource_attributes: &'a Attributes,
    scope: &'a Scope,
}

/// Why a span was not stored (aggregated per reason in the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    InvalidTraceId,
    InvalidSpanId,
    InvalidParentSpanId,
    MissingStartTime,
    TimeOutOfRange,
    EndBeforeStart,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::InvalidTraceId => "invalid trace id (must be 16 bytes, not all zero)",
            Rejection::InvalidSpanId => "invalid span id (must be 8 bytes, not all zero)",
            Rejection::InvalidParentSpanId => "invalid parent span id (must be empty or 8 bytes)",
            Rejection::MissingStartTime => "missing start time",
            Rejection::TimeOutOfRange => "timestamp beyond the year 2262",
            Rejection::EndBeforeStart => "end time before start time",
        }
    }
}

#[derive(Default)]
struct Report {
    rejected: BTreeMap<Rejection, u64>,
    dropped_links: u64,
}

impl Report {
    fn reject(&mut self, reason: Rejection) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    fn into_response(self) -> ExportTraceServiceResponse {
        let rejected: u64 = self.rejected.values().sum();
        if rejected > 0 {
            metrics::counter!("prism_otlp_spans_total", "result" => "rejected").increment(rejected);
        }
        let mut parts: Vec<String> = self
            .rejected
            .iter()
            .map(|(reason, n)| format!("{n} span(s) rejected: {}", reason.reason()))
            .collect();
        if self.dropped_links > 0 {
            parts.push(format!(
                "{} link(s) with an invalid trace or span id dropped",
                self.dropped_links
            ));
        }
        super::export_response(rejected, parts.join("; "))
    }
}

fn convert_span(
    span: otlp::Span,
    context: &Context<'_>,
    report: &mut Report,
) -> Result<Span, Rejection> {
    let trace_id = TraceId::from_slice(&span.trace_id).ok_or(Rejection::InvalidTraceId)?;
    let span_id = SpanId::from_slice(&span.span_id).ok_or(Rejection::InvalidSpanId)?;
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        // All zeros is how some senders spell "no parent".
        8 => SpanId::from_slice(&span.parent_span_id),
        _ => return Err(Rejection::InvalidParentSpanId),
    };
    if span.start_time_unix_nano == 0 {
        return Err(Rejection::MissingStartTime);
    }
    let start = timestamp(span.start_time_unix_nano)?;
    let end = timestamp(span.end_time_unix_nano)?;
    if end < start {
        return Err(Rejection::EndBeforeStart);
    }
    let events = span
        .events
        .into_iter()
        .map(|event| {
            Ok(SpanEvent {
                time: timestamp(event.time_unix_nano)?,
                name: clean(event.name),
                attributes: attributes(event.attributes),
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    let mut links = Vec::with_capacity(span.links.len());
    for link in span.links {
        match (
            TraceId::from_slice(&link.trace_id),
            SpanId::from_slice(&link.span_id),
        ) {
            (Some(trace_id), Some(span_id)) => links.push(SpanLink {
                trace_id,
                span_id,
                trace_state: non_empty(link.trace_state),
                attributes: attributes(link.attributes),
            }),
            _ => report.dropped_links += 1,
        }
    }
    let (status_code, status_message) = match span.status {
        Some(status) => (
            StatusCode::from_code(status.code),
            non_empty(status.message),
        ),
        None => (StatusCode::Unset, None),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        workspace_id: context.workspace,
        name: clean(span.name),
        service: context.service.to_owned(),
        kind: SpanKind::from_code(span.kind),
        start,
        end,
        status_code,
        status_message,
        attributes: attributes(span.attributes),
        events,
        links,
        resource_attributes: context.resource_attributes.clone(),
        scope: context.scope.clone(),
        trace_state: non_empty(span.trace_state),
        flags: span.flags,
    })
}

fn timestamp(nanos: u64) -> Result<Timestamp, Rejection> {
    i64::try_from(nanos)
        .map(Timestamp)
        .map_err(|_| Rejection::TimeOutOfRange)
}

fn scope(scope: InstrumentationScope) -> Scope {
    Scope {
        name: clean(scope.name),
        version: non_empty(scope.version),
        attributes: attributes(scope.attributes),
    }
}

/// Key-value pairs as a JSON object; a repeated key keeps its last value.
pub fn attributes(list: Vec<KeyValue>) -> Attributes {
    let mut map = Attributes::new();
    for kv in list {
        map.insert(clean(kv.key), value(kv.value));
    }
    map
}

/// An OTLP `AnyValue` as JSON (see the module docs for the mapping).
pub fn value(value: Option<AnyValue>) -> Value {
    use any_value::Value as V;
    match value.and_then(|v| v.value) {
        None | Some(V::StringValueStrindex(_)) => Value::Null,
        Some(V::StringValue(s)) => Value::String(clean(s)),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::from(i),
        Some(V::DoubleValue(d)) => match serde_json::Number::from_f64(d) {
            Some(n) => Value::Number(n),
            None if d.is_nan() => Value::String("NaN".into()),
            None if d > 0.0 => Value::String("Infinity".into()),
            None => Value::String("-Infinity".into()),
        },
        Some(V::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(V::ArrayValue(a)) => {
            Value::Array(a.values.into_iter().map(|v| self::value(Some(v))).collect())
        }
        Some(V::KvlistValue(kv)) => Value::Object(attributes(kv.values)),
    }
}

/// The string with U+0000 replaced by U+FFFD (PostgreSQL cannot store NUL in TEXT or JSONB).
pub fn clean(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then(|| clean(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            key_strindex: 0,
        }
    }

    fn span(trace: &[u8], id: &[u8], start: u64, end: u64) -> otlp::Span {
        otlp::Span {
            trace_id: trace.to_vec(),
            span_id: id.to_vec(),
            name: "op".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<otlp::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn invalid_spans_are_counted_and_the_rest_kept() {
        let t = [7u8; 16];
        let spans = vec![
            span(&t, &[1; 8], 10, 20),
            span(&[0; 16], &[1; 8], 10, 20),
            span(&t[..15], &[2; 8], 10, 20),
            span(&t, &[0; 8], 10, 20),
            span(&t, &[3; 8], 20, 10),
            span(&t, &[4; 8], 0, 10),
            span(&t, &[5; 8], u64::MAX, u64::MAX),
            otlp::Span {
                parent_span_id: vec![1, 2, 3],
                ..span(&t, &[6; 8], 10, 20)
            },
            otlp::Span {
                parent_span_id: vec![0; 8],
                ..span(&t, &[9; 8], 10, 10)
            },
        ];
        let converted = to_spans(request(vec![], spans), None);
        assert_eq!(converted.spans.len(), 2);
        assert_eq!(
            converted.spans[1].parent_span_id, None,
            "zero parent = root"
        );
        let partial = converted.response.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 7);
        for reason in [
            "2 span(s) rejected: invalid trace id",
            "1 span(s) rejected: invalid span id",
            "end time before start time",
            "missing start time",
            "beyond the year 2262",
            "invalid parent span id",
        ] {
            assert!(
                partial.error_message.contains(reason),
                "{}",
                partial.error_message
            );
        }
        assert_eq!(converted.spans[0].service, UNKNOWN_SERVICE);
    }

    #[test]
    fn values_map_to_json_and_nul_is_replaced() {
        use any_value::Value as V;
        let attrs = vec![
            kv("s", V::StringValue("a\0b".into())),
            kv("b", V::BoolValue(true)),
            kv("i", V::IntValue(-3)),
            kv("d", V::DoubleValue(0.5)),
            kv("nan", V::DoubleValue(f64::NAN)),
            kv("inf", V::DoubleValue(f64::INFINITY)),
            kv("bytes", V::BytesValue(vec![0, 1, 2])),
            kv(
                "arr",
                V::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(V::IntValue(1)),
                        },
                        AnyValue { value: None },
                    ],
                }),
            ),
            kv(
                "kv",
                V::KvlistValue(KeyValueList {
                    values: vec![kv("x", V::StringValue("y".into()))],
                }),
            ),
            kv("k\0ey", V::BoolValue(false)),
        ];
        let map = attributes(attrs);
        assert_eq!(
            Value::Object(map),
            serde_json::json!({
                "s": "a\u{FFFD}b", "b": true, "i": -3, "d": 0.5, "nan": "NaN", "inf": "Infinity",
                "bytes": "AAEC", "arr": [1, null], "kv": {"x": "y"}, "k\u{FFFD}ey": false
            })
        );
    }

    #[test]
    fn service_name_and_workspace_are_applied() {
        let ws = WorkspaceId::new();
        let resource = vec![kv(
            "service.name",
            any_value::Value::StringValue("checkout".into()),
        )];
        let converted = to_spans(
            request(resource, vec![span(&[1; 16], &[1; 8], 1, 2)]),
            Some(ws),
        );
        assert_eq!(converted.spans[0].service, "checkout");
        assert_eq!(converted.spans[0].workspace_id, Some(ws));
        assert_eq!(
            converted.spans[0].resource_attributes["service.name"],
            "checkout"
        );
        assert!(converted.response.partial_success.is_none());
    }

    #[test]
    fn invalid_links_are_dropped_with_a_warning() {
        let mut s = span(&[1; 16], &[1; 8], 1, 2);
        s.links = vec![
            otlp::span::Link {
                trace_id: vec![2; 16],
                span_id: vec![2; 8],
                ..Default::default()
            },
            otlp::span::Link {
                trace_id: vec![0; 16],
                span_id: vec![2; 8],
                ..Default::default()
            },
        ];
        let converted = to_spans(request(vec![], vec![s]), None);
        assert_eq!(converted.spans[0].links.len(), 1);
        let partial = converted.response.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 0);
        assert!(partial.error_message.contains("1 link(s)"));
    }
}
