//! Endpoint templates: the stable name of "the same endpoint" across executions, for analytics.
//!
//! `GET https://api.test/users/42/orders/9f1c…` and `…/users/7/orders/…` are one endpoint,
//! `/users/{id}/orders/{id}`: path segments that look like identifiers (numbers, UUIDs, long hex
//! or long tokens with digits) become `{id}`. The query string is not part of the endpoint.

use url::Url;

/// The longest endpoint kept; longer paths are cut (on a character boundary).
const MAX_ENDPOINT: usize = 512;

/// `scheme://host[:port]` and the templated path of a URL; the raw text (cut) when it does not
/// parse.
pub fn split_url(raw: &str) -> (String, String) {
    match Url::parse(raw.trim()) {
        Ok(url) => {
            let mut target = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
            if let Some(port) = url.port() {
                target.push_str(&format!(":{port}"));
            }
            (target, template_path(url.path()))
        }
        Err(_) => (cut(raw.trim()).to_owned(), String::from("/")),
    }
}

/// Replaces identifier-like segments of a path with `{id}`.
pub fn template_path(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return String::from("/");
    }
    let templated: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if looks_like_id(segment) {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    cut(&templated.join("/")).to_owned()
}

fn looks_like_id(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let all_digits = segment.bytes().all(|b| b.is_ascii_digit());
    let hex = segment.bytes().all(|b| b.is_ascii_hexdigit());
    let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
    let uuid_like = segment.len() == 36
        && segment.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    let token_like = segment.len() >= 20
        && has_digit
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    all_digits || uuid_like || (hex && has_digit && segment.len() >= 16) || token_like
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_ENDPOINT {
        return text;
    }
    let mut end = MAX_ENDPOINT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_placeholders() {
        assert_eq!(template_path("/users/42/orders"), "/users/{id}/orders");
        assert_eq!(
            template_path("/o/0191d3c4-7f6e-7a21-9c3b-0242ac120002"),
            "/o/{id}"
        );
        assert_eq!(template_path("/blobs/9f86d081884c7d65"), "/blobs/{id}");
        assert_eq!(
            template_path("/tokens/tok_1a2B3c4D5e6F7g8H9i0J"),
            "/tokens/{id}"
        );
        assert_eq!(template_path("/v2/users/me"), "/v2/users/me");
        assert_eq!(template_path("/api/feed"), "/api/feed");
        assert_eq!(template_path(""), "/");
        assert_eq!(template_path("/a//b/"), "/a//b/");
    }

    #[test]
    fn urls_split_into_target_and_endpoint() {
        assert_eq!(
            split_url("https://API.example.test:8443/users/7?page=2"),
            (
                "https://api.example.test:8443".to_owned(),
                "/users/{id}".to_owned()
            )
        );
        assert_eq!(
            split_url("http://localhost/"),
            ("http://localhost".to_owned(), "/".to_owned())
        );
        assert_eq!(split_url("not a url").1, "/");
        let long = format!("http://h/{}", "é".repeat(600));
        assert!(split_url(&long).1.len() <= MAX_ENDPOINT);
    }
}
