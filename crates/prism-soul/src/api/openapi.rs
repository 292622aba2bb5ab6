//! The control plane's OpenAPI 3.1 document, collected from the routes themselves (see
//! [`super::router`]) and served at `GET /api/openapi.json`, with a readable page at `/api/docs`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};

use crate::SoulState;

/// Fills in what the routes do not say: title, description, security schemes.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("PRISM control plane (soul)")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Accounts, API tokens, workspaces and roles, collections, saved requests, environments, \
             sending requests through the data plane, history, traces and analytics. \
             Authenticate with the session cookie from `POST /api/auth/login` (mutations then need \
             the `X-CSRF-Token` header) or `Authorization: Bearer <API token>`. Errors are \
             `{code, message, request_id, field?}` with stable codes.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token (`prism_pat_…`) from `POST /api/tokens`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "prism_session",
            "The session cookie set by `POST /api/auth/login`; mutations also need `X-CSRF-Token`",
        ))),
    );
    doc
}

pub fn routes(doc: Arc<OpenApi>) -> Router<SoulState> {
    let json = serde_json::to_string_pretty(&*doc).expect("the OpenAPI document serializes");
    let json: Arc<str> = json.into();
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([("content-type", "application/json")], json.to_string()) }
            }),
        )
        .route("/api/docs", get(docs_page))
        .with_state(doc)
}

/// A readable page of every operation, rendered from the document (no scripts, no network).
async fn docs_page(State(doc): State<Arc<OpenApi>>) -> Html<String> {
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>PRISM API</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}\
         code,.path{font-family:ui-monospace,monospace}.op{border-top:1px solid #dde;padding:.6rem 0}\
         .m{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}\
         .d{color:#556;margin:.2rem 0 0 4.5rem;white-space:pre-wrap}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>",
        escape(&doc.info.title),
        escape(doc.info.description.as_deref().unwrap_or_default())
    ));
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                html.push_str(&format!(
                    "<div class=\"op\"><span class=\"m\">{method}</span> <span class=\"path\">{}</span>\
                     <div class=\"d\">{}</div></div>",
                    escape(path),
                    escape(op.summary.as_deref().unwrap_or_default())
                ));
            }
        }
    }
    html.push_str("</body></html>");
    Html(html)
}
