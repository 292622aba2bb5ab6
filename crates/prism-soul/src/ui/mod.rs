//! The web UI: server-rendered pages plus a few small ES modules, all embedded in the binary.
//!
//! No build step and nothing fetched from the network: the pages are HTML strings written by the
//! render functions in [`pages`] (every user-supplied text goes through [`esc`]), the assets in
//! `crates/prism-soul/assets/` are included at compile time and served under `/assets/` with an
//! `ETag` (pages link them with `?v=<etag>`, so a new binary is never served stale scripts).
//! The scripts talk to the JSON API under `/api` with the session cookie and the CSRF header.
//!
//! Page routes are not part of the JSON API, so they are plain axum routes and not in OpenAPI.

pub mod pages;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::SoulState;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../assets/", $name)),
        }
    };
}

/// Every file under `/assets/`.
pub static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("auth.js", "text/javascript; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("editor.js", "text/javascript; charset=utf-8"),
    asset!("trace.js", "text/javascript; charset=utf-8"),
    asset!("analytics.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// A short content hash per asset, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            digest[..8].iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect()
});

/// The asset's version tag (its content hash), for links.
pub fn version(name: &str) -> &'static str {
    ASSETS
        .iter()
        .position(|a| a.name == name)
        .map_or("0", |i| ETAGS[i].as_str())
}

/// The page routes and `/assets/{name}`.
pub fn routes() -> Router<SoulState> {
    Router::new()
        .route("/", get(pages::landing))
        .route("/signin", get(pages::signin))
        .route("/signup", get(pages::signup))
        .route("/app", get(pages::workbench))
        .route("/app/analytics", get(pages::analytics))
        .route("/app/tree/{workspace_id}", get(pages::tree_fragment))
        .route("/assets/{name}", get(serve_asset))
}

async fn serve_asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let asset = &ASSETS[index];
    let etag = format!("\"{}\"", ETAGS[index]);
    let cache = HeaderValue::from_static("public, max-age=3600, must-revalidate");
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag = HeaderValue::from_str(&etag).expect("hex is a valid header");
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag), (CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (ETAG, etag),
            (CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

/// `text` with HTML's special characters escaped, for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    esc_into(&mut out, text);
    out
}

/// [`esc`] appending to `out`.
pub fn esc_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            esc(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_asset_has_a_distinct_version() {
        let mut seen = std::collections::HashSet::new();
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
            assert!(seen.insert(version(asset.name)), "{}", asset.name);
        }
    }
}
