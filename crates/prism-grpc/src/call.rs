//! Running one call: JSON in, the exchange over a tonic channel, JSON out.
//!
//! All four call kinds go through tonic's bidirectional `streaming` call. On the wire a unary call
//! is a stream of one message each way, and the general form is the only one that keeps response
//! headers and trailers apart (tonic's unary helper merges the trailers into the headers) and
//! lets PRISM time the headers and stop reading at its limits.
//!
//! Every await is bounded by the call's deadline, so a partial response (headers and the messages
//! so far) survives a timeout. Memory is bounded three ways: tonic rejects a message longer than
//! `max_message_bytes` before buffering it, at most `max_messages` messages and
//! `max_response_bytes` bytes are kept, and the rest is counted and dropped.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use prism_domain::execution::ErrorKind;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions};
use tokio::time::{Instant, timeout_at};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::codec::DynamicCodec;
use crate::error::GrpcRequestError;
use crate::metadata;
use crate::outcome::{GrpcExecutionError, GrpcResponse, Header, StatusSource, status_name};
use crate::transport::transport_failure;

/// How received messages are kept and rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_messages: usize,
    pub max_message_bytes: usize,
    pub max_response_bytes: usize,
    pub emit_default_fields: bool,
}

impl Limits {
    pub(crate) fn json_options(&self) -> SerializeOptions {
        SerializeOptions::new().skip_default_fields(!self.emit_default_fields)
    }
}

/// The HTTP/2 path of a method, `/pkg.Service/Method`.
pub(crate) fn path_of(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// Parses the request JSON: one object for unary and server-streaming methods (empty text means
/// `{}`), a list of objects for client- and bidi-streaming ones (a single object is a one-element
/// list; empty text means no messages).
pub(crate) fn parse_messages(
    method: &MethodDescriptor,
    text: &str,
) -> Result<Vec<DynamicMessage>, GrpcRequestError> {
    let input = method.input();
    let streaming = method.is_client_streaming();
    let invalid = GrpcRequestError::InvalidMessage;
    if text.trim().is_empty() {
        return Ok(if streaming {
            Vec::new()
        } else {
            vec![DynamicMessage::new(input)]
        });
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| invalid(format!("the message is not valid JSON: {err}")))?;
    let values = match (value, streaming) {
        (serde_json::Value::Object(object), _) => vec![serde_json::Value::Object(object)],
        (serde_json::Value::Array(items), true) => items,
        (serde_json::Value::Array(_), false) => {
            return Err(invalid(format!(
                "{} takes a single {} message: send a JSON object, not a list",
                method.name(),
                input.full_name()
            )));
        }
        (other, _) => {
            return Err(invalid(format!(
                "expected a JSON object{} for {}, got {}",
                if streaming {
                    " or a list of objects"
                } else {
                    ""
                },
                input.full_name(),
                json_type(&other)
            )));
        }
    };
    let many = values.len() > 1 || streaming;
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            DynamicMessage::deserialize(input.clone(), value).map_err(|err| {
                let which = if many {
                    format!("message #{} ", i + 1)
                } else {
                    String::new()
                };
                invalid(format!(
                    "{which}does not match {}: {err}",
                    input.full_name()
                ))
            })
        })
        .collect()
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A message in proto3 JSON. A message prost-reflect cannot render (for example a Timestamp out
/// of range) becomes an object saying so, rather than failing the whole outcome.
pub(crate) fn to_json(message: &DynamicMessage, options: &SerializeOptions) -> serde_json::Value {
    message
        .serialize_with_options(serde_json::value::Serializer, options)
        .unwrap_or_else(|err| {
            serde_json::json!({ "@prism_error": format!("not representable as JSON: {err}") })
        })
}

/// Everything [`run`] needs.
pub(crate) struct Call {
    pub channel: Channel,
    pub path: PathAndQuery,
    pub output: MessageDescriptor,
    pub messages: Vec<DynamicMessage>,
    pub metadata: tonic::metadata::MetadataMap,
    pub timeout: Duration,
    pub deadline: Instant,
    pub limits: Limits,
}

/// What [`run`] found out.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    pub response: Option<GrpcResponse>,
    pub error: Option<GrpcExecutionError>,
    /// When the response headers (or a trailers-only status) arrived.
    pub headers_at: Option<Instant>,
    pub response_size: u64,
}

pub(crate) async fn run(call: Call) -> Exchange {
    // tonic panics on some malformed server input (e.g. a `grpc-status-details-bin` trailer
    // that is not base64). A misbehaving target must not take the caller down with it.
    let timeout = call.timeout;
    match AssertUnwindSafe(exchange(call)).catch_unwind().await {
        Ok(exchange) => exchange,
        Err(_) => Exchange {
            error: Some(GrpcExecutionError {
                kind: ErrorKind::Protocol,
                message: format!(
                    "the target's response could not be processed (malformed gRPC metadata); \
                     the call was abandoned (timeout {} ms)",
                    timeout.as_millis()
                ),
            }),
            ..Exchange::default()
        },
    }
}

async fn exchange(call: Call) -> Exchange {
    let Call {
        channel,
        path,
        output,
        messages,
        metadata,
        timeout,
        deadline,
        limits,
    } = call;
    let mut out = Exchange::default();
    let timed_out = |phase: &str| GrpcExecutionError {
        kind: ErrorKind::Timeout,
        message: format!("deadline of {} ms exceeded {phase}", timeout.as_millis()),
    };

    let mut grpc = Grpc::new(channel).max_decoding_message_size(limits.max_message_bytes);
    match timeout_at(deadline, grpc.ready()).await {
        Err(_) => {
            out.error = Some(timed_out("before the call could start"));
            return out;
        }
        Ok(Err(err)) => {
            let status = Status::from_error(Box::new(err));
            out.error = Some(error_of(&status));
            return out;
        }
        Ok(Ok(())) => {}
    }

    let mut request = tonic::Request::new(futures_util::stream::iter(messages));
    *request.metadata_mut() = metadata;
    // Tells the server the deadline (`grpc-timeout`) so it can stop working when PRISM stops
    // waiting. PRISM's own timer started earlier and is authoritative.
    request.set_timeout(timeout);
    let response = match timeout_at(
        deadline,
        grpc.streaming(request, path, DynamicCodec::new(output)),
    )
    .await
    {
        Err(_) => {
            out.error = Some(timed_out("waiting for the response headers"));
            return out;
        }
        Ok(Err(status)) => {
            match transport_failure(&status) {
                Some((kind, message)) => out.error = Some(GrpcExecutionError { kind, message }),
                None => {
                    // A trailers-only response: the server's status without messages.
                    out.headers_at = Some(Instant::now());
                    out.response = Some(response_with_status(
                        Vec::new(),
                        status_trailers(&status),
                        &status,
                        StatusSource::Server,
                    ));
                }
            }
            return out;
        }
        Ok(Ok(response)) => response,
    };
    out.headers_at = Some(Instant::now());
    let headers = metadata::received(response.metadata(), false);
    let mut stream = response.into_inner();

    let options = limits.json_options();
    let mut kept = Vec::new();
    let mut kept_bytes = 0usize;
    let mut count = 0i64;
    let mut truncated = false;
    let end = loop {
        match timeout_at(deadline, stream.message()).await {
            Err(_) => break End::TimedOut,
            Ok(Ok(Some(decoded))) => {
                count += 1;
                out.response_size += decoded.size as u64;
                let message = match decoded.message {
                    Ok(message) => message,
                    Err(why) => break End::Undecodable(why),
                };
                if kept.len() < limits.max_messages
                    && kept_bytes.saturating_add(decoded.size) <= limits.max_response_bytes
                {
                    kept.push(to_json(&message, &options));
                    kept_bytes += decoded.size;
                } else {
                    truncated = true;
                }
            }
            Ok(Ok(None)) => match timeout_at(deadline, stream.trailers()).await {
                Err(_) => break End::TimedOut,
                Ok(Ok(trailers)) => break End::Ok(trailers.unwrap_or_default()),
                Ok(Err(status)) => break End::Status(status),
            },
            Ok(Err(status)) => break End::Status(status),
        }
    };

    let mut response = match end {
        End::Ok(trailers) => response_with_status(
            headers,
            metadata::received(&trailers, true),
            &Status::ok(""),
            StatusSource::Server,
        ),
        End::Status(status) => {
            if let Some((kind, message)) = transport_failure(&status) {
                out.error = Some(GrpcExecutionError { kind, message });
                response_with_status(headers, Vec::new(), &status, StatusSource::Client)
            } else if is_too_large(&status) {
                truncated = true;
                let status = Status::resource_exhausted(format!(
                    "PRISM stopped reading: a response message is larger than max_message_bytes \
                     ({})",
                    status.message()
                ));
                response_with_status(headers, Vec::new(), &status, StatusSource::Client)
            } else {
                response_with_status(
                    headers,
                    status_trailers(&status),
                    &status,
                    StatusSource::Server,
                )
            }
        }
        End::TimedOut => {
            let error = timed_out(&format!("after {count} response message(s)"));
            let status = Status::deadline_exceeded(error.message.clone());
            out.error = Some(error);
            response_with_status(headers, Vec::new(), &status, StatusSource::Client)
        }
        End::Undecodable(why) => {
            out.error = Some(GrpcExecutionError {
                kind: ErrorKind::Protocol,
                message: why.clone(),
            });
            response_with_status(
                headers,
                Vec::new(),
                &Status::internal(why),
                StatusSource::Client,
            )
        }
    };
    response.messages = kept;
    response.message_count = count;
    response.truncated = truncated;
    out.response = Some(response);
    out
}

/// How the response stream ended.
enum End {
    Ok(tonic::metadata::MetadataMap),
    Status(Status),
    TimedOut,
    Undecodable(String),
}

fn response_with_status(
    headers: Vec<Header>,
    trailers: Vec<Header>,
    status: &Status,
    source: StatusSource,
) -> GrpcResponse {
    let code = status.code() as i32;
    GrpcResponse {
        headers,
        trailers,
        status_code: code,
        status_name: status_name(code).to_owned(),
        status_message: status.message().to_owned(),
        status_source: source,
        messages: Vec::new(),
        message_count: 0,
        truncated: false,
    }
}

/// The metadata tonic kept with a server status (its trailers, or the headers of a trailers-only
/// response), plus `grpc-status-details-bin`, which tonic moves into `details`.
fn status_trailers(status: &Status) -> Vec<Header> {
    let mut trailers = metadata::received(status.metadata(), true);
    if !status.details().is_empty() {
        use base64::Engine;
        trailers.push(Header {
            name: "grpc-status-details-bin".into(),
            value: base64::engine::general_purpose::STANDARD.encode(status.details()),
        });
    }
    trailers
}

/// tonic's client-side rejection of a message over `max_decoding_message_size`. It has no
/// distinct type, only this code and message (tonic 0.14, `codec/decode.rs`); the integration
/// test `oversized_messages_end_the_call_with_resource_exhausted` breaks if that changes.
fn is_too_large(status: &Status) -> bool {
    status.code() == Code::OutOfRange
        && status
            .message()
            .starts_with("Error, decoded message length too large")
}

/// An error for a failure before any response: a transport failure, or (rarely) a local
/// status tonic produced without a transport cause.
fn error_of(status: &Status) -> GrpcExecutionError {
    match transport_failure(status) {
        Some((kind, message)) => GrpcExecutionError { kind, message },
        None => GrpcExecutionError {
            kind: ErrorKind::Other,
            message: status.message().to_owned(),
        },
    }
}

/// Protobuf-encoded size of the request messages.
pub(crate) fn encoded_size(messages: &[DynamicMessage]) -> usize {
    messages.iter().map(Message::encoded_len).sum()
}
