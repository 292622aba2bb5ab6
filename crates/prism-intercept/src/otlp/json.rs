//! The OTLP/JSON encoding of `ExportTraceServiceRequest` / `ExportTraceServiceResponse`.
//!
//! OTLP/JSON is the proto3 JSON mapping with OTLP's deviations: trace and span ids are hex strings
//! (case-insensitive), not base64; enums are integers; keys are lowerCamelCase; unknown fields are
//! ignored. From the proto3 mapping it inherits that 64-bit integers may be JSON strings or
//! numbers, that `null` means "default", that fields at their default may be left out (so
//! `{"arrayValue":{}}` is an empty array) and that doubles may be `"NaN"`, `"Infinity"`,
//! `"-Infinity"` or numeric strings.
//!
//! Why our own mapping rather than `opentelemetry-proto`'s `with-serde` feature: checked against
//! that crate (0.33), its derives refuse valid OTLP/JSON — `{"arrayValue":{}}` and
//! `{"kvlistValue":{}}` ("missing field `values`"), `null` for any string, bytes or list field,
//! `"doubleValue":"NaN"` and numeric strings for doubles, a `KeyValue` without `key`, and 32-bit
//! counts written as strings. The types below deserialize into the prost messages that the
//! protobuf path produces, so both encodings share one conversion.

use std::fmt;

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1 as collector;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::resource::v1 as resource;
use opentelemetry_proto::tonic::trace::v1 as trace;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Parses an OTLP/JSON `ExportTraceServiceRequest`.
pub fn parse_request(
    body: &[u8],
) -> Result<collector::ExportTraceServiceRequest, serde_json::Error> {
    let request: Request = serde_json::from_slice(body)?;
    Ok(collector::ExportTraceServiceRequest {
        resource_spans: request.resource_spans.into_iter().map(Into::into).collect(),
    })
}

/// Writes an `ExportTraceServiceResponse` as OTLP/JSON (`rejectedSpans` as a string, as the
/// proto3 mapping writes 64-bit integers; an empty object for full success).
pub fn response_body(response: &collector::ExportTraceServiceResponse) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Response<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        partial_success: Option<PartialSuccess<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PartialSuccess<'a> {
        rejected_spans: String,
        #[serde(skip_serializing_if = "str::is_empty")]
        error_message: &'a str,
    }
    let body = Response {
        partial_success: response.partial_success.as_ref().map(|p| PartialSuccess {
            rejected_spans: p.rejected_spans.to_string(),
            error_message: &p.error_message,
        }),
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec())
}

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Request {
    #[serde(deserialize_with = "nullable")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceSpans {
    resource: Option<Resource>,
    #[serde(deserialize_with = "nullable")]
    scope_spans: Vec<ScopeSpans>,
    #[serde(deserialize_with = "nullable")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: U32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeSpans {
    scope: Option<Scope>,
    #[serde(deserialize_with = "nullable")]
    spans: Vec<Span>,
    #[serde(deserialize_with = "nullable")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Scope {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    version: String,
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: U32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Span {
    trace_id: Hex,
    span_id: Hex,
    #[serde(deserialize_with = "nullable")]
    trace_state: String,
    parent_span_id: Hex,
    flags: U32,
    #[serde(deserialize_with = "nullable")]
    name: String,
    kind: SpanKind,
    start_time_unix_nano: U64,
    end_time_unix_nano: U64,
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: U32,
    #[serde(deserialize_with = "nullable")]
    events: Vec<Event>,
    dropped_events_count: U32,
    #[serde(deserialize_with = "nullable")]
    links: Vec<Link>,
    dropped_links_count: U32,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    time_unix_nano: U64,
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: U32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Link {
    trace_id: Hex,
    span_id: Hex,
    #[serde(deserialize_with = "nullable")]
    trace_state: String,
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: U32,
    flags: U32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    #[serde(deserialize_with = "nullable")]
    message: String,
    code: StatusCode,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct KeyValue {
    #[serde(deserialize_with = "nullable")]
    key: String,
    value: Option<AnyValue>,
}

/// A oneof: the first field present wins (the proto3 mapping forbids several).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<I64>,
    double_value: Option<F64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    bytes_value: Option<Base64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ArrayValue {
    #[serde(deserialize_with = "nullable")]
    values: Vec<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct KeyValueList {
    #[serde(deserialize_with = "nullable")]
    values: Vec<KeyValue>,
}

// ---------------------------------------------------------------------------------------------
// Into the prost messages

impl From<ResourceSpans> for trace::ResourceSpans {
    fn from(r: ResourceSpans) -> Self {
        trace::ResourceSpans {
            resource: r.resource.map(|res| resource::Resource {
                attributes: key_values(res.attributes),
                dropped_attributes_count: res.dropped_attributes_count.0,
                entity_refs: Vec::new(),
            }),
            scope_spans: r.scope_spans.into_iter().map(Into::into).collect(),
            schema_url: r.schema_url,
        }
    }
}

impl From<ScopeSpans> for trace::ScopeSpans {
    fn from(s: ScopeSpans) -> Self {
        trace::ScopeSpans {
            scope: s.scope.map(|scope| common::InstrumentationScope {
                name: scope.name,
                version: scope.version,
                attributes: key_values(scope.attributes),
                dropped_attributes_count: scope.dropped_attributes_count.0,
            }),
            spans: s.spans.into_iter().map(Into::into).collect(),
            schema_url: s.schema_url,
        }
    }
}

impl From<Span> for trace::Span {
    fn from(s: Span) -> Self {
        trace::Span {
            trace_id: s.trace_id.0,
            span_id: s.span_id.0,
            trace_state: s.trace_state,
            parent_span_id: s.parent_span_id.0,
            flags: s.flags.0,
            name: s.name,
            kind: s.kind.0,
            start_time_unix_nano: s.start_time_unix_nano.0,
            end_time_unix_nano: s.end_time_unix_nano.0,
            attributes: key_values(s.attributes),
            dropped_attributes_count: s.dropped_attributes_count.0,
            events: s
                .events
                .into_iter()
                .map(|e| trace::span::Event {
                    time_unix_nano: e.time_unix_nano.0,
                    name: e.name,
                    attributes: key_values(e.attributes),
                    dropped_attributes_count: e.dropped_attributes_count.0,
                })
                .collect(),
            dropped_events_count: s.dropped_events_count.0,
            links: s
                .links
                .into_iter()
                .map(|l| trace::span::Link {
                    trace_id: l.trace_id.0,
                    span_id: l.span_id.0,
                    trace_state: l.trace_state,
                    attributes: key_values(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count.0,
                    flags: l.flags.0,
                })
                .collect(),
            dropped_links_count: s.dropped_links_count.0,
            status: s.status.map(|st| trace::Status {
                message: st.message,
                code: st.code.0,
            }),
        }
    }
}

fn key_values(list: Vec<KeyValue>) -> Vec<common::KeyValue> {
    list.into_iter()
        .map(|kv| common::KeyValue {
            key: kv.key,
            value: kv.value.map(any_value),
            key_strindex: 0,
        })
        .collect()
}

fn any_value(v: AnyValue) -> common::AnyValue {
    use common::any_value::Value;
    let value = if let Some(s) = v.string_value {
        Some(Value::StringValue(s))
    } else if let Some(b) = v.bool_value {
        Some(Value::BoolValue(b))
    } else if let Some(i) = v.int_value {
        Some(Value::IntValue(i.0))
    } else if let Some(d) = v.double_value {
        Some(Value::DoubleValue(d.0))
    } else if let Some(a) = v.array_value {
        Some(Value::ArrayValue(common::ArrayValue {
            values: a.values.into_iter().map(any_value).collect(),
        }))
    } else if let Some(kv) = v.kvlist_value {
        Some(Value::KvlistValue(common::KeyValueList {
            values: key_values(kv.values),
        }))
    } else {
        v.bytes_value.map(|b| Value::BytesValue(b.0))
    };
    common::AnyValue { value }
}

// ---------------------------------------------------------------------------------------------
// Scalars

/// `null` or absent → the type's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Hex-encoded bytes (trace and span ids), either case; `null` or `""` → empty.
#[derive(Default)]
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.unwrap_or_default();
        decode_hex(&text)
            .map(Hex)
            .ok_or_else(|| de::Error::custom(format!("invalid hex id {:?}", truncate(&text))))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let raw = text.as_bytes();
    if !raw.len().is_multiple_of(2) {
        return None;
    }
    raw.chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Base64 bytes: standard or URL-safe alphabet, padded or not (the proto3 mapping accepts both).
#[derive(Default)]
struct Base64(Vec<u8>);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const CONFIG: GeneralPurposeConfig =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
        const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
        let text = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(text.as_bytes())
            .or_else(|_| URL_SAFE.decode(text.as_bytes()))
            .map(Base64)
            .map_err(|err| de::Error::custom(format!("invalid base64 in bytesValue: {err}")))
    }
}

/// Declares a newtype over an integer read from a JSON number or a decimal string (`null` → 0).
macro_rules! json_int {
    ($name:ident, $int:ty) => {
        #[derive(Default, Clone, Copy)]
        struct $name($int);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(
                            f,
                            "an integer ({}) as a number or a string",
                            stringify!($int)
                        )
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        <$int>::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(format!("{v} is out of range")))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        <$int>::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(format!("{v} is out of range")))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        // `1e3` is a valid JSON spelling of an integer.
                        if v.fract() == 0.0 && v >= <$int>::MIN as f64 && v <= <$int>::MAX as f64 {
                            Ok($name(v as $int))
                        } else {
                            Err(E::custom(format!("{v} is not an integer in range")))
                        }
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        match v.trim().parse::<$int>() {
                            Ok(n) => Ok($name(n)),
                            Err(_) => v
                                .trim()
                                .parse::<f64>()
                                .map_err(|_| {
                                    E::custom(format!("{:?} is not an integer", truncate(v)))
                                })
                                .and_then(|f| self.visit_f64(f)),
                        }
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(0))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

json_int!(U64, u64);
json_int!(U32, u32);
json_int!(I64, i64);

/// A double from a number, a numeric string, `"NaN"`, `"Infinity"` or `"-Infinity"`.
#[derive(Default, Clone, Copy)]
struct F64(f64);

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = F64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a double as a number or a string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F64, E> {
                match v {
                    "NaN" => Ok(F64(f64::NAN)),
                    "Infinity" => Ok(F64(f64::INFINITY)),
                    "-Infinity" => Ok(F64(f64::NEG_INFINITY)),
                    _ => v
                        .trim()
                        .parse::<f64>()
                        .map(F64)
                        .map_err(|_| E::custom(format!("{:?} is not a double", truncate(v)))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<F64, E> {
                Ok(F64(0.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// Declares a newtype over a proto enum read from its number (what OTLP/JSON requires) or, as
/// the proto3 mapping also allows, its name. Unknown numbers are kept (the conversion maps them).
macro_rules! json_enum {
    ($name:ident, $proto:ty) => {
        #[derive(Default, Clone, Copy)]
        struct $name(i32);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an enum value as an integer")
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        i32::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(format!("enum value {v} is out of range")))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        i32::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(format!("enum value {v} is out of range")))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        <$proto>::from_str_name(v)
                            .map(|e| $name(e as i32))
                            .ok_or_else(|| {
                                E::custom(format!("unknown enum value {:?}", truncate(v)))
                            })
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(0))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

json_enum!(SpanKind, trace::span::SpanKind);
json_enum!(StatusCode, trace::status::StatusCode);

#[cfg(test)]
mod tests {
    use super::*;
    use common::any_value::Value;

    fn one_span(extra: &str) -> Result<trace::Span, serde_json::Error> {
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000{extra}}}]}}]}}]}}"#
        );
        let mut request = parse_request(body.as_bytes())?;
        Ok(request
            .resource_spans
            .remove(0)
            .scope_spans
            .remove(0)
            .spans
            .remove(0))
    }

    fn attribute(extra: &str) -> Option<Value> {
        one_span(&format!(r#","attributes":[{{"key":"a","value":{extra}}}]"#))
            .unwrap()
            .attributes
            .remove(0)
            .value
            .and_then(|v| v.value)
    }

    #[test]
    fn ids_times_and_enums() {
        let span =
            one_span(r#","kind":2,"status":{"code":2,"message":"boom"},"flags":"257""#).unwrap();
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.kind, 2);
        assert_eq!(span.flags, 257);
        assert_eq!(span.status.unwrap().code, 2);
        let named =
            one_span(r#","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_OK"}"#).unwrap();
        assert_eq!(named.kind, 3);
        assert_eq!(named.status.unwrap().code, 1);
    }

    #[test]
    fn values_in_every_spelling() {
        assert_eq!(attribute(r#"{"intValue":"42"}"#), Some(Value::IntValue(42)));
        assert_eq!(attribute(r#"{"intValue":-7}"#), Some(Value::IntValue(-7)));
        assert_eq!(
            attribute(r#"{"doubleValue":"1.5"}"#),
            Some(Value::DoubleValue(1.5))
        );
        assert!(
            matches!(attribute(r#"{"doubleValue":"NaN"}"#), Some(Value::DoubleValue(d)) if d.is_nan())
        );
        assert_eq!(
            attribute(r#"{"doubleValue":"-Infinity"}"#),
            Some(Value::DoubleValue(f64::NEG_INFINITY))
        );
        assert_eq!(
            attribute(r#"{"arrayValue":{}}"#),
            Some(Value::ArrayValue(common::ArrayValue { values: vec![] }))
        );
        assert_eq!(
            attribute(r#"{"kvlistValue":{}}"#),
            Some(Value::KvlistValue(common::KeyValueList { values: vec![] }))
        );
        assert_eq!(
            attribute(r#"{"bytesValue":"AAE="}"#),
            Some(Value::BytesValue(vec![0, 1]))
        );
        assert_eq!(
            attribute(r#"{"bytesValue":"_-8"}"#),
            Some(Value::BytesValue(vec![0xff, 0xef]))
        );
        assert_eq!(attribute(r#"{}"#), None);
        assert_eq!(attribute(r#"{"unknownValue":1}"#), None);
    }

    #[test]
    fn nulls_and_omitted_defaults_and_unknown_fields() {
        let span = one_span(
            r#","parentSpanId":null,"traceState":null,"attributes":null,"droppedAttributesCount":"3","fooBar":{"x":[1]}"#,
        )
        .unwrap();
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.dropped_attributes_count, 3);
        let keyless = one_span(r#","attributes":[{"value":{"intValue":"1"}}]"#).unwrap();
        assert_eq!(keyless.attributes[0].key, "");
        assert!(parse_request(b"{}").unwrap().resource_spans.is_empty());
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for bad in [
            r#","traceId":"xyz""#,
            r#","spanId":"abc""#,
            r#","kind":"SPAN_KIND_NOPE""#,
            r#","startTimeUnixNano":"-1""#,
            r#","startTimeUnixNano":"soon""#,
            r#","attributes":[{"key":"a","value":{"bytesValue":"!!"}}]"#,
            r#","flags":4294967296"#,
        ] {
            assert!(one_span(bad).is_err(), "{bad}");
        }
        for bad in ["", "[", "nul", r#"{"resourceSpans":{}}"#] {
            assert!(parse_request(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_specification_example_parses() {
        // opentelemetry-proto/examples/trace.json
        let example = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","kind":2,"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]}"#;
        let request = parse_request(example.as_bytes()).unwrap();
        let rs = &request.resource_spans[0];
        assert_eq!(
            rs.resource.as_ref().unwrap().attributes[0].key,
            "service.name"
        );
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().version, "1.0.0");
        assert_eq!(
            ss.spans[0].parent_span_id,
            vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73]
        );
    }

    #[test]
    fn response_is_proto3_json() {
        let ok = collector::ExportTraceServiceResponse {
            partial_success: None,
        };
        assert_eq!(response_body(&ok), b"{}");
        let partial = collector::ExportTraceServiceResponse {
            partial_success: Some(collector::ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "bad".into(),
            }),
        };
        assert_eq!(
            String::from_utf8(response_body(&partial)).unwrap(),
            r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}}"#
        );
    }
}
