//! The data plane's OpenAPI document, generated from the handlers' and wire types' annotations
//! (utoipa) and served at `GET /openapi.json`. A test checks every served route is in it.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::run::{
    GraphqlCall, GrpcAnswer, GrpcCall, GrpcMethodView, GrpcServiceView, GrpcServices,
    GrpcServicesCall, GrpcTarget, HttpAnswer, Link, RestCall,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PRISM data plane (intercept)",
        description = "Runs REST, GraphQL and gRPC requests with W3C trace context, records every execution, streams traces live and receives OpenTelemetry traces. Every endpoint except health and this document needs `Authorization: Bearer <API token>` (or the control plane's service credential); OTLP ingest takes a workspace ingest key."
    ),
    paths(
        super::run::rest,
        super::run::graphql,
        super::run::grpc,
        super::run::grpc_services,
        super::run::run,
        super::stream::stream,
        crate::otlp::http::export_traces,
        crate::health::healthz,
        crate::health::readyz,
        crate::telemetry::metrics_endpoint,
    ),
    components(schemas(
        RestCall, GraphqlCall, GrpcCall, GrpcTarget, Link, HttpAnswer, GrpcAnswer,
        GrpcServicesCall, GrpcServices, GrpcServiceView, GrpcMethodView, ErrorBody, ErrorDetail
    )),
    modifiers(&BearerAuth),
)]
pub struct InterceptApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`prism_pat_…`), the control plane's service credential (`prism_svc_…`, with `X-Prism-Workspace`), or for `/v1/traces` a workspace ingest key (`prism_ik_…`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(InterceptApi::openapi())
}
