//! Turning an OTLP/HTTP body into an `ExportTraceServiceRequest`: content type and encoding from
//! the headers, bounded gzip inflation, protobuf or OTLP/JSON decoding.
//!
//! Everything here is synchronous, allocation-bounded and panic-free on any input: the limits are
//! checked before memory is committed (`Read::take` on the inflater), and decode errors become
//! [`IngestError`]s with stable codes.

use std::io::Read;

use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::{IngestError, OtlpLimits, json};

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// From `Content-Type`, ignoring parameters (`; charset=utf-8`) and case.
    pub fn from_headers(headers: &HeaderMap) -> Result<Format, IngestError> {
        let raw = headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = raw.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Format::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Ok(Format::Json)
        } else {
            Err(IngestError::UnsupportedMediaType(truncated(&raw)))
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// The body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    pub fn from_headers(headers: &HeaderMap) -> Result<Encoding, IngestError> {
        let Some(value) = headers.get(CONTENT_ENCODING) else {
            return Ok(Encoding::Identity);
        };
        let raw = String::from_utf8_lossy(value.as_bytes());
        let name = raw.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else {
            Err(IngestError::UnsupportedContentEncoding(truncated(&raw)))
        }
    }
}

/// Decodes a complete body (as received, at most `limits.max_body_bytes`).
pub fn decode_body(
    body: &[u8],
    format: Format,
    encoding: Encoding,
    limits: &OtlpLimits,
) -> Result<ExportTraceServiceRequest, IngestError> {
    let inflated;
    let message = match encoding {
        Encoding::Identity => {
            if body.len() > limits.max_decoded_bytes {
                return Err(IngestError::BodyTooLarge {
                    limit: limits.max_decoded_bytes,
                    decoded: true,
                });
            }
            body
        }
        Encoding::Gzip => {
            inflated = gunzip(body, limits.max_decoded_bytes)?;
            inflated.as_slice()
        }
    };
    match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(message)
            .map_err(|err| IngestError::InvalidBody(err.to_string())),
        Format::Json => {
            json::parse_request(message).map_err(|err| IngestError::InvalidBody(err.to_string()))
        }
    }
}

/// Inflates a gzip body (several members allowed, as concatenated gzip files are valid), refusing
/// to produce more than `limit` bytes.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|err| IngestError::InvalidGzip(err.to_string()))?;
    if out.len() > limit {
        return Err(IngestError::BodyTooLarge {
            limit,
            decoded: true,
        });
    }
    Ok(out)
}

/// Header values echoed in error messages are cut short: they come from the client.
fn truncated(raw: &str) -> String {
    raw.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn content_types_with_parameters_and_case() {
        let ct = |v| Format::from_headers(&headers(CONTENT_TYPE, v));
        assert_eq!(ct("application/x-protobuf"), Ok(Format::Protobuf));
        assert_eq!(ct("Application/Protobuf"), Ok(Format::Protobuf));
        assert_eq!(ct("application/json; charset=utf-8"), Ok(Format::Json));
        assert!(matches!(
            ct("text/plain"),
            Err(IngestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            Format::from_headers(&HeaderMap::new()),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn encodings() {
        let enc = |v| Encoding::from_headers(&headers(CONTENT_ENCODING, v));
        assert_eq!(
            Encoding::from_headers(&HeaderMap::new()),
            Ok(Encoding::Identity)
        );
        assert_eq!(enc("GZIP"), Ok(Encoding::Gzip));
        assert_eq!(enc("identity"), Ok(Encoding::Identity));
        assert!(matches!(
            enc("br"),
            Err(IngestError::UnsupportedContentEncoding(_))
        ));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_bomb_is_stopped_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "compresses well: {}", bomb.len());
        assert_eq!(
            gunzip(&bomb, 1024 * 1024),
            Err(IngestError::BodyTooLarge {
                limit: 1024 * 1024,
                decoded: true
            })
        );
        assert_eq!(gunzip(&gzip(b"abc"), 3).unwrap(), b"abc");
    }

    #[test]
    fn corrupt_gzip_is_reported() {
        let mut data = gzip(b"hello world");
        data.truncate(data.len() - 6);
        assert!(matches!(
            gunzip(&data, 1000),
            Err(IngestError::InvalidGzip(_))
        ));
        assert!(matches!(
            gunzip(b"not gzip at all", 1000),
            Err(IngestError::InvalidGzip(_))
        ));
    }
}
