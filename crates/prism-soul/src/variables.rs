//! `{{variable}}` resolution: turns a saved or ad-hoc request into the fully resolved request the
//! data plane runs.
//!
//! - A reference is `{{name}}`; whitespace inside the braces is ignored (`{{ name }}`). A name is
//!   any text without braces or control characters. A `{{` that does not start a valid reference
//!   (no closing `}}`, an empty name…) is left as it is.
//! - Values come from the chosen environment's **enabled** variables (the last enabled row of a
//!   name wins). Values may reference other variables; they are resolved recursively, and a cycle
//!   (`a` → `b` → `a`) is an error naming the chain. Every unknown name is reported at once.
//! - Secret values are stored encrypted (see [`crate::crypto`]) and decrypted only for the send; a
//!   secret that cannot be decrypted is an error only when the request uses it.
//! - Dynamic variables, as Postman users expect them, when the environment does not define the
//!   name itself: `{{$uuid}}` (also `{{$guid}}`, a random UUID v4), `{{$timestamp}}` (Unix
//!   seconds), `{{$isoTimestamp}}` (RFC 3339 UTC with milliseconds) and `{{$randomInt}}` (0 to
//!   1000). Each occurrence gets a fresh value; a variable whose value uses one is resolved once
//!   per send, so all its uses agree.
//!
//! Where substitution happens: REST URL, enabled params and headers (names and values), the body
//! (raw and JSON text, the raw content type, enabled form fields, enabled multipart parts' names,
//! text values, file names and content types); GraphQL URL, query, variables text, operation name
//! and enabled headers; gRPC address, service, method, enabled metadata and the message. Never
//! substituted: transport settings, the request method of REST, gRPC `.proto` file names and
//! contents and TLS settings (schemas and certificates are not templates: `{{` may legitimately
//! appear in them), and multipart file bytes. Disabled rows are left as they are, so an unknown
//! variable in a row that is not sent is no error.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use prism_domain::Timestamp;
use prism_domain::environment::Variable;
use prism_domain::request::{Body, KeyValue, MultipartValue, RequestSpec};
use serde_json::json;

use crate::api::error::ApiError;
use crate::crypto::SecretBox;

/// Nesting deeper than this is refused (a value referencing a value referencing… 32 levels).
pub const MAX_DEPTH: usize = 32;

/// The most text one resolved value or field may grow to (values referencing other values twice
/// over double at every level).
pub const MAX_EXPANDED: usize = 8 * 1024 * 1024;

/// Why a request's variables could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Names used but defined nowhere, sorted and without repeats.
    Unknown(Vec<String>),
    /// A chain of references that comes back to its start, e.g. `["a", "b", "a"]`.
    Cycle(Vec<String>),
    /// Secret variables the request uses whose stored value cannot be decrypted, sorted.
    Undecryptable(Vec<String>),
    /// Nesting or expanded size beyond [`MAX_DEPTH`] / [`MAX_EXPANDED`].
    TooLarge(String),
}

impl From<ResolveError> for ApiError {
    fn from(err: ResolveError) -> Self {
        match err {
            ResolveError::Unknown(names) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_variables",
                format!(
                    "the request uses variables the environment does not define: {}",
                    names.join(", ")
                ),
            )
            .with_details(json!({ "variables": names })),
            ResolveError::Cycle(chain) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "variable_cycle",
                format!(
                    "variables reference each other in a cycle: {}",
                    chain.join(" → ")
                ),
            )
            .with_details(json!({ "cycle": chain })),
            ResolveError::Undecryptable(names) => ApiError::new(
                StatusCode::CONFLICT,
                "secret_undecryptable",
                format!(
                    "secret variables cannot be decrypted with this instance's secret key (was \
                     PRISM_SECRET_KEY changed?); set them again: {}",
                    names.join(", ")
                ),
            )
            .with_details(json!({ "variables": names })),
            ResolveError::TooLarge(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "variables_too_large",
                message,
            ),
        }
    }
}

/// A stored value as resolution sees it.
#[derive(Debug, Clone)]
enum Stored {
    Plain(String),
    /// A secret that could not be decrypted; an error only if used.
    Undecryptable,
}

/// The variables of one send, secrets decrypted.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: HashMap<String, Stored>,
}

impl Variables {
    /// The enabled variables of an environment (none: no environment chosen), decrypting secrets
    /// with `secrets`.
    pub fn new(variables: &[Variable], secrets: &SecretBox) -> Self {
        let mut values = HashMap::new();
        for variable in variables.iter().filter(|v| v.enabled) {
            let stored = if variable.secret {
                match secrets.decrypt(&variable.value) {
                    Ok(plain) => Stored::Plain(plain),
                    Err(_) => Stored::Undecryptable,
                }
            } else {
                Stored::Plain(variable.value.clone())
            };
            values.insert(variable.name.trim().to_owned(), stored);
        }
        Self { values }
    }

    /// Plain name → value pairs (for tests and callers that have no environment row).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Stored::Plain(v.to_owned())))
                .collect(),
        }
    }

    /// `spec` with every variable replaced (see the module documentation for where), or every
    /// problem found: a cycle first, then undecryptable secrets, then unknown names.
    pub fn resolve(
        &self,
        mut spec: RequestSpec,
        now: Timestamp,
    ) -> Result<RequestSpec, ResolveError> {
        let mut resolver = Resolver {
            values: &self.values,
            now,
            memo: HashMap::new(),
            unknown: BTreeSet::new(),
            undecryptable: BTreeSet::new(),
            fatal: None,
        };
        for_each_template(&mut spec, &mut |text| resolver.substitute_in_place(text));
        resolver.finish()?;
        Ok(spec)
    }
}

/// Calls `f` on every string of `spec` that may hold `{{variables}}`.
fn for_each_template(spec: &mut RequestSpec, f: &mut impl FnMut(&mut String)) {
    fn rows(rows: &mut [KeyValue], f: &mut impl FnMut(&mut String)) {
        for row in rows.iter_mut().filter(|r| r.enabled) {
            f(&mut row.name);
            f(&mut row.value);
        }
    }
    match spec {
        RequestSpec::Rest(rest) => {
            f(&mut rest.url);
            rows(&mut rest.params, f);
            rows(&mut rest.headers, f);
            match &mut rest.body {
                Body::None => {}
                Body::Raw { text, content_type } => {
                    f(text);
                    if let Some(ct) = content_type {
                        f(ct);
                    }
                }
                Body::Json { text } => f(text),
                Body::Form { fields } => rows(fields, f),
                Body::Multipart { parts } => {
                    for part in parts.iter_mut().filter(|p| p.enabled) {
                        f(&mut part.name);
                        match &mut part.value {
                            MultipartValue::Text { value } => f(value),
                            MultipartValue::File {
                                filename,
                                content_type,
                                base64: _,
                            } => {
                                f(filename);
                                if let Some(ct) = content_type {
                                    f(ct);
                                }
                            }
                        }
                    }
                }
            }
        }
        RequestSpec::Graphql(gql) => {
            f(&mut gql.url);
            f(&mut gql.query);
            if let Some(variables) = &mut gql.variables {
                f(variables);
            }
            if let Some(operation) = &mut gql.operation_name {
                f(operation);
            }
            rows(&mut gql.headers, f);
        }
        RequestSpec::Grpc(grpc) => {
            // Not `grpc.proto` nor `grpc.tls`: schemas and certificates are not templates.
            f(&mut grpc.address);
            f(&mut grpc.service);
            f(&mut grpc.method);
            rows(&mut grpc.metadata, f);
            f(&mut grpc.message);
        }
    }
}

/// One `{{reference}}` found in a text.
struct Reference<'a> {
    /// Byte range of the whole `{{…}}`.
    start: usize,
    end: usize,
    name: &'a str,
}

/// The references in `text`, in order. A `{{` that starts no valid reference is skipped one
/// character at a time, so `{{{a}}}` holds the reference `{{a}}` between two literal braces.
fn references(text: &str) -> Vec<Reference<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let inner_start = open + 2;
        let Some(close) = text[inner_start..].find("}}").map(|i| inner_start + i) else {
            break;
        };
        let name = text[inner_start..close].trim();
        let valid =
            !name.is_empty() && !name.chars().any(|c| c == '{' || c == '}' || c.is_control());
        if valid {
            found.push(Reference {
                start: open,
                end: close + 2,
                name,
            });
            from = close + 2;
        } else {
            from = open + 1;
        }
    }
    found
}

/// The value of a dynamic variable, fresh on every call.
fn dynamic(name: &str, now: Timestamp) -> Option<String> {
    match name {
        "$uuid" | "$guid" => Some(uuid::Uuid::new_v4().to_string()),
        "$timestamp" => Some(now.nanos().div_euclid(1_000_000_000).to_string()),
        "$isoTimestamp" => {
            let millis = Timestamp::from_nanos(now.nanos() - now.nanos().rem_euclid(1_000_000));
            let text = millis.to_rfc3339();
            // Always three fractional digits, as JavaScript's `toISOString()`.
            Some(if text.contains('.') {
                text
            } else {
                format!("{}.000Z", text.trim_end_matches('Z'))
            })
        }
        "$randomInt" => Some(rand::random_range(0..=1000u32).to_string()),
        _ => None,
    }
}

struct Resolver<'a> {
    values: &'a HashMap<String, Stored>,
    now: Timestamp,
    /// Fully expanded values of the variables resolved so far (`None`: they failed).
    memo: HashMap<String, Option<String>>,
    unknown: BTreeSet<String>,
    undecryptable: BTreeSet<String>,
    /// A cycle or a limit: reported instead of anything else.
    fatal: Option<ResolveError>,
}

impl Resolver<'_> {
    fn substitute_in_place(&mut self, text: &mut String) {
        if !text.contains("{{") {
            return;
        }
        if let Some(out) = self.substitute(text, &mut Vec::new()) {
            *text = out;
        }
    }

    /// `text` with its references replaced; `None` when something failed (recorded in `self`).
    /// `stack` holds the variables being expanded, outermost first.
    fn substitute(&mut self, text: &str, stack: &mut Vec<String>) -> Option<String> {
        let refs = references(text);
        if refs.is_empty() {
            return Some(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut ok = true;
        let mut last = 0;
        for reference in refs {
            out.push_str(&text[last..reference.start]);
            last = reference.end;
            match self.value(reference.name, stack) {
                Some(value) => out.push_str(&value),
                None => ok = false,
            }
            if out.len() > MAX_EXPANDED {
                self.fail(ResolveError::TooLarge(format!(
                    "a value grows beyond {MAX_EXPANDED} bytes once its variables are resolved"
                )));
                return None;
            }
        }
        out.push_str(&text[last..]);
        ok.then_some(out)
    }

    fn fail(&mut self, err: ResolveError) {
        self.fatal.get_or_insert(err);
    }

    /// The expanded value of `name`, or `None` (the reason recorded).
    fn value(&mut self, name: &str, stack: &mut Vec<String>) -> Option<String> {
        if self.fatal.is_some() {
            return None;
        }
        if let Some(position) = stack.iter().position(|n| n == name) {
            let mut chain = stack[position..].to_vec();
            chain.push(name.to_owned());
            self.fail(ResolveError::Cycle(chain));
            return None;
        }
        if let Some(done) = self.memo.get(name) {
            return done.clone();
        }
        let raw = match self.values.get(name) {
            Some(Stored::Plain(raw)) => raw,
            Some(Stored::Undecryptable) => {
                self.undecryptable.insert(name.to_owned());
                return None;
            }
            None => {
                if let Some(value) = dynamic(name, self.now) {
                    return Some(value);
                }
                self.unknown.insert(name.to_owned());
                return None;
            }
        };
        if stack.len() >= MAX_DEPTH {
            self.fail(ResolveError::TooLarge(format!(
                "variables nest deeper than {MAX_DEPTH} levels (at {name:?})"
            )));
            return None;
        }
        stack.push(name.to_owned());
        let expanded = self.substitute(raw, stack);
        stack.pop();
        if self.fatal.is_none() {
            self.memo.insert(name.to_owned(), expanded.clone());
        }
        expanded
    }

    fn finish(self) -> Result<(), ResolveError> {
        if let Some(err) = self.fatal {
            return Err(err);
        }
        if !self.undecryptable.is_empty() {
            return Err(ResolveError::Undecryptable(
                self.undecryptable.into_iter().collect(),
            ));
        }
        if !self.unknown.is_empty() {
            return Err(ResolveError::Unknown(self.unknown.into_iter().collect()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prism_domain::request::{
        GraphqlSpec, GrpcSpec, GrpcTls, HttpSettings, MultipartPart, ProtoFile, ProtoSource,
        RestSpec,
    };

    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn rest(url: &str) -> RequestSpec {
        RequestSpec::Rest(RestSpec {
            method: "GET".into(),
            url: url.into(),
            params: vec![],
            headers: vec![],
            body: Body::None,
            settings: HttpSettings::default(),
        })
    }

    fn url_of(spec: &RequestSpec) -> &str {
        match spec {
            RequestSpec::Rest(r) => &r.url,
            _ => panic!("not rest"),
        }
    }

    fn resolve_url(vars: &[(&str, &str)], url: &str) -> Result<String, ResolveError> {
        Variables::from_pairs(vars.iter().copied())
            .resolve(rest(url), NOW)
            .map(|s| url_of(&s).to_owned())
    }

    fn variable(name: &str, value: &str, secret: bool, enabled: bool) -> Variable {
        Variable {
            name: name.into(),
            value: value.into(),
            secret,
            enabled,
        }
    }

    #[test]
    fn references_allow_inner_whitespace_and_keep_the_rest() {
        assert_eq!(
            resolve_url(
                &[("host", "h.test"), ("v", "2")],
                "https://{{host}}/v{{ v }}/x"
            )
            .unwrap(),
            "https://h.test/v2/x"
        );
        // Unclosed, empty or brace-filled references are text.
        for text in ["a {{ b", "{{}}", "{{ }}", "x}}y", "{"] {
            assert_eq!(resolve_url(&[], text).unwrap(), text);
        }
        // A literal brace next to a reference.
        assert_eq!(
            resolve_url(&[("n", "5")], "{\"a\": {{n}}}").unwrap(),
            "{\"a\": 5}"
        );
        assert_eq!(resolve_url(&[("n", "5")], "{{{n}}}").unwrap(), "{5}");
        // A value is inserted as is, not resolved again.
        assert_eq!(
            resolve_url(&[("a", "{{"), ("b", "b}}")], "{{a}}{{b}}").unwrap(),
            "{{b}}"
        );
    }

    #[test]
    fn nested_values_resolve_recursively() {
        let vars = [
            ("scheme", "https"),
            ("host", "api.{{domain}}"),
            ("domain", "example.test"),
            ("base", "{{scheme}}://{{ host }}"),
        ];
        assert_eq!(
            resolve_url(&vars, "{{base}}/users").unwrap(),
            "https://api.example.test/users"
        );
    }

    #[test]
    fn cycles_are_named_with_their_chain() {
        assert_eq!(
            resolve_url(&[("a", "x{{a}}")], "{{a}}"),
            Err(ResolveError::Cycle(vec!["a".into(), "a".into()]))
        );
        assert_eq!(
            resolve_url(&[("a", "{{b}}"), ("b", "{{c}}"), ("c", "{{a}}")], "/{{a}}"),
            Err(ResolveError::Cycle(vec![
                "a".into(),
                "b".into(),
                "c".into(),
                "a".into()
            ]))
        );
        // The chain starts where the cycle does, not where the reference came from.
        assert_eq!(
            resolve_url(
                &[("start", "{{b}}"), ("b", "{{c}}"), ("c", "{{b}}")],
                "{{start}}"
            ),
            Err(ResolveError::Cycle(vec![
                "b".into(),
                "c".into(),
                "b".into()
            ]))
        );
        // A variable used twice is no cycle.
        assert_eq!(
            resolve_url(&[("a", "{{b}}-{{b}}"), ("b", "1")], "{{a}}").unwrap(),
            "1-1"
        );
    }

    #[test]
    fn every_unknown_name_is_listed_once_sorted() {
        let spec = RequestSpec::Rest(RestSpec {
            method: "POST".into(),
            url: "{{base}}/{{zeta}}".into(),
            params: vec![KeyValue::new("q", "{{alpha}}")],
            headers: vec![KeyValue::new("{{hname}}", "{{zeta}}")],
            body: Body::Json {
                text: "{\"x\": \"{{nested}}\"}".into(),
            },
            settings: HttpSettings::default(),
        });
        let vars = Variables::from_pairs([("base", "http://h"), ("nested", "{{deep}}")]);
        assert_eq!(
            vars.resolve(spec, NOW),
            Err(ResolveError::Unknown(vec![
                "alpha".into(),
                "deep".into(),
                "hname".into(),
                "zeta".into()
            ]))
        );
    }

    #[test]
    fn disabled_variables_and_rows_are_ignored() {
        let secrets = SecretBox::new("k");
        let vars = Variables::new(
            &[
                variable("host", "on.test", false, true),
                variable("off", "x", false, false),
                variable("host", "ignored.test", false, false),
            ],
            &secrets,
        );
        assert_eq!(
            vars.resolve(rest("http://{{off}}"), NOW),
            Err(ResolveError::Unknown(vec!["off".into()]))
        );
        let spec = RequestSpec::Rest(RestSpec {
            params: vec![KeyValue {
                name: "q".into(),
                value: "{{missing}}".into(),
                enabled: false,
            }],
            ..match rest("http://{{host}}") {
                RequestSpec::Rest(r) => r,
                _ => unreachable!(),
            }
        });
        let RequestSpec::Rest(out) = vars.resolve(spec, NOW).unwrap() else {
            panic!("rest")
        };
        assert_eq!(out.url, "http://on.test");
        assert_eq!(
            out.params[0].value, "{{missing}}",
            "a disabled row is kept as is"
        );
    }

    #[test]
    fn secrets_are_decrypted_for_the_send_and_bad_ones_named() {
        let secrets = SecretBox::new("right");
        let stale = SecretBox::new("wrong").encrypt("old");
        let vars = Variables::new(
            &[
                variable("token", &secrets.encrypt("s3cr3t"), true, true),
                variable("auth", "Bearer {{token}}", false, true),
                variable("stale", &stale, true, true),
                variable("plain_secret", "not-encrypted", true, true),
            ],
            &secrets,
        );
        assert_eq!(
            url_of(&vars.resolve(rest("http://h/?a={{auth}}"), NOW).unwrap()),
            "http://h/?a=Bearer s3cr3t"
        );
        assert_eq!(
            vars.resolve(rest("http://h/{{stale}}/{{plain_secret}}/{{token}}"), NOW),
            Err(ResolveError::Undecryptable(vec![
                "plain_secret".into(),
                "stale".into()
            ]))
        );
        // An unused broken secret is no obstacle.
        assert!(vars.resolve(rest("http://h/{{token}}"), NOW).is_ok());
    }

    #[test]
    fn every_field_of_every_protocol_is_substituted_but_proto_files() {
        let vars = Variables::from_pairs([("v", "X")]);
        let rest = RequestSpec::Rest(RestSpec {
            method: "{{v}}".into(),
            url: "http://{{v}}".into(),
            params: vec![KeyValue::new("p{{v}}", "{{v}}")],
            headers: vec![KeyValue::new("h{{v}}", "{{v}}")],
            body: Body::Multipart {
                parts: vec![
                    MultipartPart {
                        name: "n{{v}}".into(),
                        value: MultipartValue::Text {
                            value: "t{{v}}".into(),
                        },
                        enabled: true,
                    },
                    MultipartPart {
                        name: "f".into(),
                        value: MultipartValue::File {
                            filename: "{{v}}.txt".into(),
                            content_type: Some("text/{{v}}".into()),
                            base64: "e3t2fX0=".into(),
                        },
                        enabled: true,
                    },
                ],
            },
            settings: HttpSettings::default(),
        });
        let RequestSpec::Rest(r) = vars.resolve(rest, NOW).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, "{{v}}", "the method is not a template");
        assert_eq!(r.url, "http://X");
        assert_eq!(r.params, vec![KeyValue::new("pX", "X")]);
        assert_eq!(r.headers, vec![KeyValue::new("hX", "X")]);
        let Body::Multipart { parts } = r.body else {
            panic!()
        };
        assert_eq!(parts[0].name, "nX");
        assert_eq!(parts[0].value, MultipartValue::Text { value: "tX".into() });
        assert_eq!(
            parts[1].value,
            MultipartValue::File {
                filename: "X.txt".into(),
                content_type: Some("text/X".into()),
                base64: "e3t2fX0=".into()
            }
        );

        for (body, expected) in [
            (
                Body::Raw {
                    text: "r{{v}}".into(),
                    content_type: Some("text/{{v}}".into()),
                },
                Body::Raw {
                    text: "rX".into(),
                    content_type: Some("text/X".into()),
                },
            ),
            (
                Body::Json {
                    text: "{\"a\": \"{{v}}\"}".into(),
                },
                Body::Json {
                    text: "{\"a\": \"X\"}".into(),
                },
            ),
            (
                Body::Form {
                    fields: vec![KeyValue::new("{{v}}", "{{v}}")],
                },
                Body::Form {
                    fields: vec![KeyValue::new("X", "X")],
                },
            ),
        ] {
            let spec = RequestSpec::Rest(RestSpec {
                method: "POST".into(),
                url: "http://h".into(),
                params: vec![],
                headers: vec![],
                body,
                settings: HttpSettings::default(),
            });
            let RequestSpec::Rest(r) = vars.resolve(spec, NOW).unwrap() else {
                panic!()
            };
            assert_eq!(r.body, expected);
        }

        let gql = RequestSpec::Graphql(GraphqlSpec {
            url: "http://{{v}}/graphql".into(),
            query: "query Q { user(id: \"{{v}}\") { id } }".into(),
            variables: Some("{\"id\": \"{{v}}\"}".into()),
            operation_name: Some("{{v}}".into()),
            headers: vec![KeyValue::new("h", "{{v}}")],
            settings: HttpSettings::default(),
        });
        assert_eq!(
            vars.resolve(gql, NOW).unwrap(),
            RequestSpec::Graphql(GraphqlSpec {
                url: "http://X/graphql".into(),
                query: "query Q { user(id: \"X\") { id } }".into(),
                variables: Some("{\"id\": \"X\"}".into()),
                operation_name: Some("X".into()),
                headers: vec![KeyValue::new("h", "X")],
                settings: HttpSettings::default(),
            })
        );

        let proto = ProtoSource::Files {
            files: vec![ProtoFile {
                name: "{{v}}.proto".into(),
                content: "syntax = \"proto3\"; // {{v}} and {{unknown}} stay".into(),
            }],
        };
        let tls = GrpcTls {
            enabled: true,
            ca_pem: Some("{{v}}".into()),
            verify: None,
        };
        let grpc = RequestSpec::Grpc(GrpcSpec {
            address: "{{v}}:443".into(),
            service: "pkg.{{v}}".into(),
            method: "Get{{v}}".into(),
            proto: proto.clone(),
            tls: tls.clone(),
            metadata: vec![KeyValue::new("m{{v}}", "{{v}}")],
            message: "{\"id\": \"{{v}}\"}".into(),
            timeout_ms: Some(5),
        });
        assert_eq!(
            vars.resolve(grpc, NOW).unwrap(),
            RequestSpec::Grpc(GrpcSpec {
                address: "X:443".into(),
                service: "pkg.X".into(),
                method: "GetX".into(),
                proto,
                tls,
                metadata: vec![KeyValue::new("mX", "X")],
                message: "{\"id\": \"X\"}".into(),
                timeout_ms: Some(5),
            })
        );
    }

    #[test]
    fn dynamic_variables_are_fresh_per_use_unless_defined() {
        let out = resolve_url(
            &[("id", "{{$uuid}}")],
            "{{$uuid}} {{$uuid}} {{$timestamp}} {{$isoTimestamp}} {{$randomInt}} {{id}} {{id}}",
        )
        .unwrap();
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(words.len(), 7);
        for uuid in [words[0], words[1], words[5]] {
            let parsed = uuid::Uuid::parse_str(uuid).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
        }
        assert_ne!(words[0], words[1], "each use is a fresh value");
        assert_eq!(words[5], words[6], "a variable is resolved once per send");
        assert_eq!(words[2], "1700000000");
        assert_eq!(words[3], "2023-11-14T22:13:20.000Z");
        let n: u32 = words[4].parse().unwrap();
        assert!(n <= 1000);
        let later = Variables::from_pairs([])
            .resolve(rest("{{$isoTimestamp}}"), NOW.plus_nanos(1_234_567_890))
            .unwrap();
        assert_eq!(url_of(&later), "2023-11-14T22:13:21.234Z");
        // The environment's own definition wins; unknown dynamic names are unknown.
        assert_eq!(
            resolve_url(&[("$timestamp", "fixed")], "{{$timestamp}}").unwrap(),
            "fixed"
        );
        assert_eq!(
            resolve_url(&[], "{{$nope}}"),
            Err(ResolveError::Unknown(vec!["$nope".into()]))
        );
    }

    #[test]
    fn exponential_and_deep_values_are_refused() {
        let mut vars: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("v{i}"),
                    format!("{{{{v{}}}}}{{{{v{}}}}}", i + 1, i + 1),
                )
            })
            .collect();
        vars.push(("v40".into(), "x".repeat(1024)));
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert!(matches!(
            resolve_url(&pairs, "{{v20}}"),
            Err(ResolveError::TooLarge(_))
        ));
        let chain: Vec<(String, String)> = (0..40)
            .map(|i| (format!("d{i}"), format!("{{{{d{}}}}}", i + 1)))
            .chain([("d40".to_owned(), "end".to_owned())])
            .collect();
        let pairs: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert!(matches!(
            resolve_url(&pairs, "{{d0}}"),
            Err(ResolveError::TooLarge(_))
        ));
        assert_eq!(resolve_url(&pairs, "{{d20}}").unwrap(), "end");
    }

    #[test]
    fn errors_map_to_api_answers() {
        let err = ApiError::from(ResolveError::Unknown(vec!["a".into(), "b".into()]));
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.code, "unknown_variables");
        assert!(err.message.contains("a, b"));
        assert_eq!(
            err.details.as_deref(),
            Some(&json!({"variables": ["a", "b"]}))
        );
        let err = ApiError::from(ResolveError::Cycle(vec!["a".into(), "a".into()]));
        assert_eq!(err.code, "variable_cycle");
        assert!(err.message.contains("a → a"));
        let err = ApiError::from(ResolveError::Undecryptable(vec!["t".into()]));
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert_eq!(err.code, "secret_undecryptable");
    }
}
