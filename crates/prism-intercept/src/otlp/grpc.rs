//! OTLP/gRPC: the `opentelemetry.proto.collector.trace.v1.TraceService/Export` method, served by
//! tonic on its own listener (conventionally port 4317), plaintext HTTP/2.
//!
//! Requests may be gzip-compressed (`grpc-encoding: gzip`); tonic bounds a message, after
//! inflation, by [`OtlpLimits::max_decoded_bytes`](super::OtlpLimits) and answers
//! `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` itself beyond it. The credentials are checked after tonic
//! decoded the message (the generated service has no async hook before that); the message size
//! limit is what bounds an unauthenticated client's cost.
//!
//! Retryable failures (`RESOURCE_EXHAUSTED` when overloaded, `UNAVAILABLE` when the database or
//! the authorizer is down) carry a `google.rpc.RetryInfo`: as a detail of the rich status
//! (`grpc-status-details-bin`, with our `ErrorInfo` code beside it) and, because the
//! OpenTelemetry Python exporter reads it from there, as the `google.rpc.retryinfo-bin` trailer.
//! OTLP exporters retry `RESOURCE_EXHAUSTED` only when a `RetryInfo` is present.

use std::future::Future;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::status::{RetryInfo, rpc_status};
use super::{IngestError, OtlpIngest};

/// Serves OTLP/gRPC on `listener` until `shutdown` completes, then lets in-flight calls finish.
pub async fn serve_grpc(
    listener: TcpListener,
    ingest: OtlpIngest,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(trace_service(ingest))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// The tonic service, for callers that mount it on a server of their own.
pub fn trace_service(ingest: OtlpIngest) -> TraceServiceServer<GrpcIngest> {
    let limit = ingest.limits.max_decoded_bytes;
    TraceServiceServer::new(GrpcIngest { ingest })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

/// The `TraceService` implementation.
#[derive(Debug, Clone)]
pub struct GrpcIngest {
    ingest: OtlpIngest,
}

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let peer = request.remote_addr();
        let headers = request.metadata().clone().into_headers();
        let outcome = async {
            let workspace = self.ingest.authorizer.authorize(&headers, peer).await?;
            self.ingest.export(request.into_inner(), workspace).await
        }
        .await;
        outcome
            .map(tonic::Response::new)
            .map_err(|err| grpc_status(&err, &self.ingest.limits))
    }
}

/// The one place where ingest errors become gRPC statuses.
fn grpc_status(err: &IngestError, limits: &super::OtlpLimits) -> tonic::Status {
    let code = match err {
        IngestError::MissingCredentials | IngestError::InvalidCredentials => {
            tonic::Code::Unauthenticated
        }
        IngestError::AuthUnavailable
        | IngestError::StorageUnavailable
        | IngestError::ShuttingDown => tonic::Code::Unavailable,
        IngestError::Overloaded => tonic::Code::ResourceExhausted,
        // Not reachable over gRPC (tonic decodes the body), kept for exhaustiveness.
        IngestError::UnsupportedMediaType(_)
        | IngestError::UnsupportedContentEncoding(_)
        | IngestError::InvalidGzip(_)
        | IngestError::InvalidBody(_) => tonic::Code::InvalidArgument,
        IngestError::BodyTooLarge { .. } => tonic::Code::ResourceExhausted,
    };
    let retry_after = err.retry_after(limits);
    let details = rpc_status(code as i32, err.to_string(), err.code(), retry_after);
    let mut status =
        tonic::Status::with_details(code, err.to_string(), details.encode_to_vec().into());
    if let Some(delay) = retry_after {
        status.metadata_mut().insert_bin(
            "google.rpc.retryinfo-bin",
            MetadataValue::from_bytes(&RetryInfo::after(delay).encode_to_vec()),
        );
    }
    status
}
