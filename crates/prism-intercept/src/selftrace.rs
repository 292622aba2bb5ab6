//! Self-tracing: PRISM's own handling of HTTP requests as OpenTelemetry server spans, exported over
//! OTLP/HTTP (protobuf) when an endpoint is configured — to any collector, or to PRISM's own
//! `/v1/traces`.
//!
//! Why it cannot feed back into itself: the requests that carry telemetry (`/v1/traces`) and the
//! probes (`/healthz`, `/readyz`, `/metrics`) are never traced, so exporting spans to PRISM does not
//! produce spans about exporting spans.
//!
//! A request that arrives with a valid `traceparent` gets a server span in that trace, so a caller's
//! trace shows PRISM's part. Spans wait in a bounded queue for the exporter task; when the queue is
//! full a span is not kept and `prism_self_spans_dropped_total` counts it (telemetry about PRISM
//! must never slow PRISM down), and failed exports are counted in `prism_self_export_failures_total`
//! and logged.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prism_domain::trace::{SpanId, TraceId};
use prism_domain::trace_context::TraceParent;
use prost::Message;
use tokio::sync::mpsc;

/// Spans waiting for export before new ones are dropped (and counted).
const QUEUE: usize = 8192;
/// Spans per export request.
const BATCH: usize = 512;

/// Where and how to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTraceConfig {
    /// An OTLP/HTTP traces URL, e.g. `http://127.0.0.1:7000/v1/traces`.
    pub endpoint: String,
    /// Extra headers, e.g. `authorization: Bearer prism_ik_…`.
    pub headers: Vec<(String, String)>,
}

struct Exporter {
    tx: mpsc::Sender<(&'static str, Span)>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Starts the exporter task (once per process; later calls are ignored). Must run inside a Tokio
/// runtime.
pub fn start(config: SelfTraceConfig) {
    EXPORTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(export(config, rx));
        Exporter { tx }
    });
}

/// Whether spans are being exported.
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Routes that are never traced: telemetry transport and probes.
fn untraced(route: &str) -> bool {
    matches!(
        route,
        "/v1/traces" | "/healthz" | "/readyz" | "/metrics" | "/api/health"
    )
}

/// What the middleware knows about a finished request.
pub struct Handled<'a> {
    pub plane: &'static str,
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub request_id: &'a str,
    pub traceparent: Option<&'a str>,
    pub started: SystemTime,
    pub duration: Duration,
}

/// Queues the server span of a handled request, if exporting is on and the route is traced.
pub fn record(handled: Handled<'_>) {
    let Some(exporter) = EXPORTER.get() else {
        return;
    };
    if untraced(handled.route) {
        return;
    }
    let parent = handled
        .traceparent
        .and_then(|tp| TraceParent::parse(tp).ok());
    let trace_id = parent.as_ref().map_or_else(TraceId::random, |p| p.trace_id);
    let start = handled
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let end = start.saturating_add(u64::try_from(handled.duration.as_nanos()).unwrap_or(u64::MAX));
    let failed = handled.status >= 500;
    let span = Span {
        trace_id: trace_id.as_bytes().to_vec(),
        span_id: SpanId::random().as_bytes().to_vec(),
        parent_span_id: parent
            .as_ref()
            .map(|p| p.parent_id.as_bytes().to_vec())
            .unwrap_or_default(),
        flags: parent.as_ref().map_or(1, |p| u32::from(p.flags)),
        name: format!("{} {}", handled.method, handled.route),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: vec![
            attribute("http.request.method", handled.method),
            attribute("http.route", handled.route),
            int_attribute("http.response.status_code", i64::from(handled.status)),
            attribute("prism.request_id", handled.request_id),
        ],
        status: Some(Status {
            code: if failed {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Unset as i32
            },
            message: String::new(),
        }),
        ..Span::default()
    };
    if exporter.tx.try_send((handled.plane, span)).is_err() {
        metrics::counter!("prism_self_spans_dropped_total").increment(1);
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// The export request for a batch: one resource (`service.name` = `prism-<plane>`) per plane.
fn request(batch: Vec<(&'static str, Span)>) -> ExportTraceServiceRequest {
    let mut by_plane: Vec<(&'static str, Vec<Span>)> = Vec::new();
    for (plane, span) in batch {
        match by_plane.iter_mut().find(|(p, _)| *p == plane) {
            Some((_, spans)) => spans.push(span),
            None => by_plane.push((plane, vec![span])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_plane
            .into_iter()
            .map(|(plane, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        attribute("service.name", &format!("prism-{plane}")),
                        attribute("service.version", env!("CARGO_PKG_VERSION")),
                    ],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "prism".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

async fn export(config: SelfTraceConfig, mut rx: mpsc::Receiver<(&'static str, Span)>) {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "self-tracing disabled: cannot build the HTTP client");
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let body = request(batch).encode_to_vec();
        let mut post = client
            .post(&config.endpoint)
            .header("content-type", "application/x-protobuf")
            .body(body);
        for (name, value) in &config.headers {
            post = post.header(name, value);
        }
        match post.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                metrics::counter!("prism_self_export_failures_total").increment(1);
                tracing::warn!(
                    status = response.status().as_u16(),
                    spans = count,
                    "self-trace export refused"
                );
            }
            Err(err) => {
                metrics::counter!("prism_self_export_failures_total").increment(1);
                tracing::warn!(error = %err, spans = count, "self-trace export failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_telemetry_are_never_traced() {
        for route in [
            "/v1/traces",
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/health",
        ] {
            assert!(untraced(route), "{route}");
        }
        assert!(!untraced("/rest"));
    }

    #[test]
    fn batches_are_grouped_by_plane() {
        let span = Span::default();
        let request = request(vec![
            ("intercept", span.clone()),
            ("soul", span.clone()),
            ("intercept", span),
        ]);
        assert_eq!(request.resource_spans.len(), 2);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
        let name = &request.resource_spans[1]
            .resource
            .as_ref()
            .unwrap()
            .attributes[0];
        assert_eq!(
            name.value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue("prism-soul".into()))
        );
    }
}
