//! The one typed configuration, layered: defaults → TOML file → environment → command-line flags.
//!
//! Loading reads the environment from a map handed in, never from the process directly, so tests
//! build configurations without mutating global state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::net::IpAddr;

use prism_domain::egress::{Cidr, EgressPolicy, HostPattern};
use prism_intercept::selftrace::SelfTraceConfig;
use prism_store::DatabaseUrl;
use serde::{Deserialize, Serialize};

/// Everything PRISM can be told. Field docs are the configuration reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where embedded data lives (the SQLite file `prism.db`, and later the write spool).
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub soul: SoulConfig,
    pub intercept: InterceptConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    /// Key for encrypting secrets at rest (environment variables marked secret).
    pub secret_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`. Unset: SQLite at `<data_dir>/prism.db`.
    pub url: Option<String>,
    /// Pooled connections (PostgreSQL), or readers (SQLite).
    pub max_connections: u32,
    /// Seconds to wait for a connection before reporting the database unavailable.
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoulConfig {
    /// Address the control plane (UI + API) listens on.
    pub listen: SocketAddr,
    /// Where `prism soul` reaches the data plane to run requests (unused by `prism up`, which
    /// runs them in-process).
    pub intercept_url: String,
    /// Whether anyone may create an account; the first account can always be created.
    pub signup_open: bool,
    /// Mark cookies `Secure`: unset means "when the request came over TLS"
    /// (`X-Forwarded-Proto: https`).
    pub secure_cookies: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterceptConfig {
    /// Address the data plane listens on (HTTP API and OTLP/HTTP at /v1/traces).
    pub listen: SocketAddr,
    /// Address of the OTLP/gRPC receiver.
    pub otlp_grpc_listen: SocketAddr,
    /// Largest request body the run endpoints (`/rest`, `/graphql`, `/grpc`, `/run`) accept.
    pub max_request_body_bytes: usize,
    /// Accept OTLP exports without an ingest key from loopback clients. Unset: yes under
    /// `prism up`, no for `prism intercept`.
    pub loopback_ingest_without_key: Option<bool>,
    pub egress: EgressConfig,
}

/// The outbound-target policy (SSRF guard) for requests PRISM runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Block loopback, link-local (incl. 169.254.169.254), private, CGNAT and unique-local
    /// targets. Unset: no under `prism up` (one user on their own machine), yes for `prism
    /// intercept` (a shared server).
    pub deny_internal: Option<bool>,
    /// Exceptions: CIDRs (`10.1.0.0/16`) or host names (`api.internal`, `*.corp.test`).
    pub allow: Vec<String>,
    /// Always blocked: CIDRs or host names.
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `prism=debug,sqlx=warn`.
    pub level: String,
    /// `auto` (JSON unless stdout is a terminal), `json` or `text`.
    pub format: LogFormat,
}

/// PRISM's own traces (server spans of its HTTP handling), exported over OTLP/HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP traces URL (e.g. PRISM's own `http://127.0.0.1:7000/v1/traces`); unset: off.
    pub otlp_endpoint: Option<String>,
    /// Headers sent with each export, as `name=value` (e.g. `authorization=Bearer prism_ik_…`).
    pub otlp_headers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./prism-data"),
            database: DatabaseConfig::default(),
            soul: SoulConfig::default(),
            intercept: InterceptConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            secret_key: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            connect_timeout_secs: 5,
        }
    }
}

impl Default for SoulConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            intercept_url: "http://127.0.0.1:7000".into(),
            signup_open: true,
            secure_cookies: None,
        }
    }
}

impl Default for InterceptConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7000)),
            otlp_grpc_listen: SocketAddr::from(([127, 0, 0, 1], 4317)),
            max_request_body_bytes: 32 * 1024 * 1024,
            loopback_ingest_without_key: None,
            egress: EgressConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// A configuration problem: names the setting and says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.to_string(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub soul_listen: Option<String>,
    pub intercept_listen: Option<String>,
    pub otlp_grpc_listen: Option<String>,
}

/// Environment variables PRISM reads. Any other `PRISM_*` variable gets a warning.
pub const KNOWN_ENV: &[&str] = &[
    "PRISM_CONFIG",
    "PRISM_DATA_DIR",
    "PRISM_SOUL_LISTEN",
    "PRISM_INTERCEPT_LISTEN",
    "PRISM_OTLP_GRPC_LISTEN",
    "PRISM_DATABASE_MAX_CONNECTIONS",
    "PRISM_DATABASE_CONNECT_TIMEOUT_SECS",
    "PRISM_LOG",
    "PRISM_LOG_FORMAT",
    "PRISM_SECRET_KEY",
    "PRISM_SECRET_KEY_FILE",
    "PRISM_MAX_REQUEST_BODY_BYTES",
    "PRISM_LOOPBACK_INGEST_WITHOUT_KEY",
    "PRISM_EGRESS_DENY_INTERNAL",
    "PRISM_EGRESS_ALLOW",
    "PRISM_EGRESS_DENY",
    "PRISM_OTLP_EXPORT_ENDPOINT",
    "PRISM_OTLP_EXPORT_HEADERS",
    "PRISM_INTERCEPT_URL",
    "PRISM_SIGNUP_OPEN",
    "PRISM_SECURE_COOKIES",
    // Read by the test suites, not by the server.
    "PRISM_TEST_POSTGRES_URL",
];

/// The result of loading: the configuration and any warnings to log once logging is set up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads the layers. `env` is the process environment (or a test's map).
    pub fn load(
        config_file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let file = match config_file {
            Some(path) => Some((path.to_owned(), "--config")),
            None => env
                .get("PRISM_CONFIG")
                .map(|p| (PathBuf::from(p), "PRISM_CONFIG")),
        };
        let mut config = match file {
            Some((path, setting)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::new(format!("{setting}={}", path.display()), e))?;
                Config::from_toml(&text)
                    .map_err(|e| ConfigError::new(format!("{setting}={}", path.display()), e))?
            }
            None => Config::default(),
        };
        config.apply_env(env, &mut warnings)?;
        config.apply_flags(flags)?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))
    }

    fn apply_env(
        &mut self,
        env: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        for key in env.keys().filter(|k| k.starts_with("PRISM_")) {
            if !KNOWN_ENV.contains(&key.as_str()) {
                warnings.push(format!("unknown environment variable {key} is ignored"));
            }
        }
        if let Some(url) = secret(env, "DATABASE_URL")? {
            self.database.url = Some(url);
        }
        if let Some(dir) = env.get("PRISM_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(port) = env.get("PORT") {
            // As in the seed (and Cloud Run): PORT alone means "listen on every interface".
            let port: u16 = port
                .parse()
                .map_err(|_| ConfigError::new("PORT", format!("{port:?} is not a port number")))?;
            self.intercept.listen = SocketAddr::from(([0, 0, 0, 0], port));
        }
        if let Some(addr) = env.get("PRISM_SOUL_LISTEN") {
            self.soul.listen = parse_addr("PRISM_SOUL_LISTEN", addr)?;
        }
        if let Some(addr) = env.get("PRISM_INTERCEPT_LISTEN") {
            self.intercept.listen = parse_addr("PRISM_INTERCEPT_LISTEN", addr)?;
        }
        if let Some(addr) = env.get("PRISM_OTLP_GRPC_LISTEN") {
            self.intercept.otlp_grpc_listen = parse_addr("PRISM_OTLP_GRPC_LISTEN", addr)?;
        }
        if let Some(n) = env.get("PRISM_DATABASE_MAX_CONNECTIONS") {
            self.database.max_connections = n.parse().map_err(|_| {
                ConfigError::new(
                    "PRISM_DATABASE_MAX_CONNECTIONS",
                    format!("{n:?} is not a number"),
                )
            })?;
        }
        if let Some(n) = env.get("PRISM_DATABASE_CONNECT_TIMEOUT_SECS") {
            self.database.connect_timeout_secs = n.parse().map_err(|_| {
                ConfigError::new(
                    "PRISM_DATABASE_CONNECT_TIMEOUT_SECS",
                    format!("{n:?} is not a number"),
                )
            })?;
        }
        if let Some(level) = env.get("PRISM_LOG") {
            self.log.level = level.clone();
        }
        if let Some(format) = env.get("PRISM_LOG_FORMAT") {
            self.log.format = match format.as_str() {
                "auto" => LogFormat::Auto,
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(ConfigError::new(
                        "PRISM_LOG_FORMAT",
                        format!("{other:?} is not auto, json or text"),
                    ));
                }
            };
        }
        if let Some(url) = env.get("PRISM_INTERCEPT_URL") {
            self.soul.intercept_url = url.clone();
        }
        if let Some(flag) = env.get("PRISM_SIGNUP_OPEN") {
            self.soul.signup_open = parse_bool("PRISM_SIGNUP_OPEN", flag)?;
        }
        if let Some(flag) = env.get("PRISM_SECURE_COOKIES") {
            self.soul.secure_cookies = Some(parse_bool("PRISM_SECURE_COOKIES", flag)?);
        }
        if let Some(key) = secret(env, "PRISM_SECRET_KEY")? {
            self.secret_key = Some(key);
        }
        if let Some(n) = env.get("PRISM_MAX_REQUEST_BODY_BYTES") {
            self.intercept.max_request_body_bytes = n.parse().map_err(|_| {
                ConfigError::new(
                    "PRISM_MAX_REQUEST_BODY_BYTES",
                    format!("{n:?} is not a number of bytes"),
                )
            })?;
        }
        if let Some(flag) = env.get("PRISM_LOOPBACK_INGEST_WITHOUT_KEY") {
            self.intercept.loopback_ingest_without_key =
                Some(parse_bool("PRISM_LOOPBACK_INGEST_WITHOUT_KEY", flag)?);
        }
        if let Some(flag) = env.get("PRISM_EGRESS_DENY_INTERNAL") {
            self.intercept.egress.deny_internal =
                Some(parse_bool("PRISM_EGRESS_DENY_INTERNAL", flag)?);
        }
        if let Some(list) = env.get("PRISM_EGRESS_ALLOW") {
            self.intercept.egress.allow = split_list(list);
        }
        if let Some(list) = env.get("PRISM_EGRESS_DENY") {
            self.intercept.egress.deny = split_list(list);
        }
        if let Some(url) = env.get("PRISM_OTLP_EXPORT_ENDPOINT") {
            self.telemetry.otlp_endpoint = Some(url.clone()).filter(|u| !u.trim().is_empty());
        }
        if let Some(list) = env.get("PRISM_OTLP_EXPORT_HEADERS") {
            self.telemetry.otlp_headers = split_list(list);
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        if let Some(dir) = &flags.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(url) = &flags.database_url {
            self.database.url = Some(url.clone());
        }
        if let Some(addr) = &flags.soul_listen {
            self.soul.listen = parse_addr("--soul-listen", addr)?;
        }
        if let Some(addr) = &flags.intercept_listen {
            self.intercept.listen = parse_addr("--intercept-listen", addr)?;
        }
        if let Some(addr) = &flags.otlp_grpc_listen {
            self.intercept.otlp_grpc_listen = parse_addr("--otlp-grpc-listen", addr)?;
        }
        Ok(())
    }

    /// The outbound-target policy; `up` says whether both planes run for one local user.
    pub fn egress_policy(&self, up: bool) -> Result<EgressPolicy, ConfigError> {
        let egress = &self.intercept.egress;
        let mut policy = EgressPolicy {
            deny_internal: egress.deny_internal.unwrap_or(!up),
            ..EgressPolicy::default()
        };
        for (setting, entries, is_allow) in [
            ("intercept.egress.allow", &egress.allow, true),
            ("intercept.egress.deny", &egress.deny, false),
        ] {
            for entry in entries {
                let entry = entry.trim();
                let looks_like_address = entry.contains('/') || entry.parse::<IpAddr>().is_ok();
                if looks_like_address {
                    let cidr: Cidr = entry.parse().map_err(|e| ConfigError::new(setting, e))?;
                    if is_allow {
                        policy.allow_cidrs.push(cidr);
                    } else {
                        policy.deny_cidrs.push(cidr);
                    }
                } else if entry.is_empty() || entry.contains(char::is_whitespace) {
                    return Err(ConfigError::new(
                        setting,
                        format!("{entry:?} is neither a CIDR nor a host name"),
                    ));
                } else if is_allow {
                    policy.allow_hosts.push(HostPattern::new(entry));
                } else {
                    policy.deny_hosts.push(HostPattern::new(entry));
                }
            }
        }
        Ok(policy)
    }

    /// The self-tracing exporter's settings, when an endpoint is configured.
    pub fn self_trace(&self) -> Result<Option<SelfTraceConfig>, ConfigError> {
        let Some(endpoint) = &self.telemetry.otlp_endpoint else {
            return Ok(None);
        };
        let url = url::Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                ConfigError::new(
                    "telemetry.otlp_endpoint",
                    format!("{endpoint:?} is not an http(s) URL"),
                )
            })?;
        let headers = self
            .telemetry
            .otlp_headers
            .iter()
            .map(|h| {
                h.split_once('=')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "telemetry.otlp_headers",
                            format!("{h:?} is not name=value"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(SelfTraceConfig {
            endpoint: url.to_string(),
            headers,
        }))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.egress_policy(false)?;
        match url::Url::parse(&self.soul.intercept_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(ConfigError::new(
                    "soul.intercept_url",
                    format!(
                        "{:?} is not an http(s) URL such as http://intercept:7000",
                        self.soul.intercept_url
                    ),
                ));
            }
        }
        self.self_trace()?;
        if self.intercept.max_request_body_bytes < 1024 {
            return Err(ConfigError::new(
                "intercept.max_request_body_bytes",
                "must be at least 1024",
            ));
        }
        if let Some(url) = &self.database.url {
            DatabaseUrl::parse(url).map_err(|e| ConfigError::new("DATABASE_URL", e))?;
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("PRISM_DATA_DIR", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("PRISM_LOG", e))?;
        Ok(())
    }

    /// The database to use: the configured URL, or SQLite in the data directory.
    pub fn database_url(&self) -> DatabaseUrl {
        match &self.database.url {
            Some(url) => DatabaseUrl::parse(url).expect("validated when loaded"),
            None => DatabaseUrl::sqlite_file(&self.sqlite_path()),
        }
    }

    /// Where the embedded database file lives.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("prism.db")
    }

    /// The configuration as TOML, with any secrets replaced.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret_key.is_some() {
            shown.secret_key = Some("***".into());
        }
        // Export headers usually carry an ingest key.
        for header in &mut shown.telemetry.otlp_headers {
            if let Some((name, _)) = header.split_once('=') {
                *header = format!("{name}=***");
            }
        }
        if let Some(url) = &shown.database.url {
            shown.database.url = Some(
                DatabaseUrl::parse(url)
                    .map(|u| u.redacted())
                    .unwrap_or_default(),
            );
        }
        toml::to_string(&shown).unwrap_or_default()
    }
}

fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            format!("{setting}={value}"),
            "not a socket address like 127.0.0.1:3000 or [::1]:3000",
        )
    })
}

/// A secret from `NAME` or, `NAME_FILE` (a file holding it, as Docker secrets are mounted). Both
/// at once is an error rather than a guess.
fn secret(env: &BTreeMap<String, String>, name: &str) -> Result<Option<String>, ConfigError> {
    let file_var = format!("{name}_FILE");
    match (env.get(name), env.get(&file_var)) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            name,
            format!("set either {name} or {file_var}, not both"),
        )),
        (Some(value), None) => Ok(Some(value.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| Some(text.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|e| ConfigError::new(format!("{file_var}={path}"), e)),
        (None, None) => Ok(None),
    }
}

/// The commented example printed by `prism config default`. A test checks that it parses to
/// exactly [`Config::default`].
pub const DEFAULT_TOML: &str = r#"# PRISM configuration. Layers, lowest first: these defaults, this file (--config or
# PRISM_CONFIG), environment variables, command-line flags. Every key is optional.

# Where embedded data lives: the SQLite database prism.db (when database.url is unset).
# Env: PRISM_DATA_DIR   Flag: --data-dir
data_dir = "./prism-data"

# Key that encrypts secret environment variables at rest. Env: PRISM_SECRET_KEY or
# PRISM_SECRET_KEY_FILE (a file holding it).
# secret_key = "…"

[database]
# sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB. Unset: SQLite at <data_dir>/prism.db.
# Env: DATABASE_URL or DATABASE_URL_FILE   Flag: --database-url
# url = "postgres://prism:prism@127.0.0.1:5432/prism"
# Pooled connections (PostgreSQL) or reader connections (SQLite).
# Env: PRISM_DATABASE_MAX_CONNECTIONS
max_connections = 10
# Seconds to wait for a connection. Env: PRISM_DATABASE_CONNECT_TIMEOUT_SECS
connect_timeout_secs = 5

[soul]
# Control plane: web UI and JSON API. Env: PRISM_SOUL_LISTEN   Flag: --soul-listen
listen = "127.0.0.1:3000"
# Where `prism soul` sends requests to run (`prism up` runs them in-process). Both planes must
# share secret_key. Env: PRISM_INTERCEPT_URL
intercept_url = "http://127.0.0.1:7000"
# Whether anyone may sign up; the first account can always be created. Env: PRISM_SIGNUP_OPEN
signup_open = true
# Secure cookies: true, false, or unset for "when X-Forwarded-Proto is https".
# Env: PRISM_SECURE_COOKIES
# secure_cookies = true

[intercept]
# Data plane: request execution, OTLP/HTTP (/v1/traces). Env: PRISM_INTERCEPT_LISTEN, or PORT
# (which listens on 0.0.0.0:PORT)   Flag: --intercept-listen
listen = "127.0.0.1:7000"
# OTLP/gRPC receiver. Env: PRISM_OTLP_GRPC_LISTEN   Flag: --otlp-grpc-listen
otlp_grpc_listen = "127.0.0.1:4317"
# Largest request body of /rest, /graphql, /grpc and /run. Env: PRISM_MAX_REQUEST_BODY_BYTES
max_request_body_bytes = 33554432
# Accept OTLP exports without an ingest key from loopback clients. Unset: true under `prism up`,
# false for `prism intercept`. Env: PRISM_LOOPBACK_INGEST_WITHOUT_KEY
# loopback_ingest_without_key = false

[intercept.egress]
# The SSRF guard for requests PRISM runs. Block loopback, link-local (169.254.169.254), private
# and unique-local targets? Unset: false under `prism up`, true for `prism intercept`.
# Env: PRISM_EGRESS_DENY_INTERNAL
# deny_internal = true
# Exceptions and extra blocks: CIDRs or host names ("*.corp.test"). Env: PRISM_EGRESS_ALLOW and
# PRISM_EGRESS_DENY, comma-separated.
allow = []
deny = []

[telemetry]
# Export PRISM's own traces (a server span per handled request) over OTLP/HTTP, e.g. to PRISM's own
# "http://127.0.0.1:7000/v1/traces". Unset: off. Env: PRISM_OTLP_EXPORT_ENDPOINT
# otlp_endpoint = "http://127.0.0.1:7000/v1/traces"
# Headers as name=value, e.g. ["authorization=Bearer prism_ik_…"]. Env: PRISM_OTLP_EXPORT_HEADERS
otlp_headers = []

[log]
# A tracing filter, e.g. "info" or "prism=debug,sqlx=warn". Env: PRISM_LOG
level = "info"
# auto (JSON unless attached to a terminal), json or text. Env: PRISM_LOG_FORMAT
format = "auto"
"#;

fn parse_bool(setting: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::new(
            setting,
            format!("{other:?} is not true or false"),
        )),
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)], flags: &Overrides) -> Result<Loaded, ConfigError> {
        Config::load(None, &env(pairs), flags)
    }

    #[test]
    fn printed_default_is_the_default() {
        assert_eq!(Config::from_toml(DEFAULT_TOML).unwrap(), Config::default());
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prism.toml");
        std::fs::write(&file, "data_dir = \"/from-file\"\n[soul]\nlisten = \"127.0.0.1:1111\"\n[intercept]\nlisten = \"127.0.0.1:2222\"\n").unwrap();
        let flags = Overrides {
            intercept_listen: Some("127.0.0.1:4444".into()),
            ..Overrides::default()
        };
        let loaded = Config::load(
            Some(&file),
            &env(&[("PRISM_SOUL_LISTEN", "127.0.0.1:3333")]),
            &flags,
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.data_dir, PathBuf::from("/from-file"));
        assert_eq!(c.soul.listen.port(), 3333, "env beats file");
        assert_eq!(c.intercept.listen.port(), 4444, "flag beats file");
        assert_eq!(c.intercept.otlp_grpc_listen.port(), 4317, "default stays");
    }

    #[test]
    fn config_file_can_come_from_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "[log]\nlevel = \"debug\"\n").unwrap();
        let loaded = load(
            &[("PRISM_CONFIG", file.to_str().unwrap())],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(loaded.config.log.level, "debug");
    }

    #[test]
    fn port_means_all_interfaces_but_explicit_listen_wins() {
        let c = load(&[("PORT", "8080")], &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(c.intercept.listen, "0.0.0.0:8080".parse().unwrap());
        let c = load(
            &[("PORT", "8080"), ("PRISM_INTERCEPT_LISTEN", "127.0.0.1:9")],
            &Overrides::default(),
        )
        .unwrap()
        .config;
        assert_eq!(c.intercept.listen, "127.0.0.1:9".parse().unwrap());
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        std::fs::write(&file, "postgres://u:p@db:5432/prism\n").unwrap();
        let c = load(
            &[("DATABASE_URL_FILE", file.to_str().unwrap())],
            &Overrides::default(),
        )
        .unwrap()
        .config;
        assert_eq!(
            c.database.url.as_deref(),
            Some("postgres://u:p@db:5432/prism")
        );
        let both = load(
            &[
                ("DATABASE_URL_FILE", "x"),
                ("DATABASE_URL", "sqlite://a.db"),
            ],
            &Overrides::default(),
        );
        assert_eq!(both.unwrap_err().setting, "DATABASE_URL");
        let missing = load(
            &[("PRISM_SECRET_KEY_FILE", "/nonexistent/key")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            missing.setting.starts_with("PRISM_SECRET_KEY_FILE"),
            "{missing}"
        );
    }

    #[test]
    fn unknown_prism_variables_warn() {
        let loaded = load(
            &[("PRISM_SOUL_LISTN", "x"), ("HOME", "/root")],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("PRISM_SOUL_LISTN"));
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("DATABASE_URL", "postgres://")], "DATABASE_URL"),
            (&[("PRISM_SOUL_LISTEN", "nope")], "PRISM_SOUL_LISTEN=nope"),
            (&[("PORT", "70000")], "PORT"),
            (&[("PRISM_LOG_FORMAT", "xml")], "PRISM_LOG_FORMAT"),
            (
                &[("PRISM_DATABASE_MAX_CONNECTIONS", "0")],
                "database.max_connections",
            ),
        ];
        for (pairs, setting) in cases {
            let err = load(pairs, &Overrides::default()).unwrap_err();
            assert_eq!(&err.setting, setting, "{err}");
        }
        let flag = Overrides {
            soul_listen: Some("localhost".into()),
            ..Overrides::default()
        };
        assert_eq!(
            load(&[], &flag).unwrap_err().setting,
            "--soul-listen=localhost"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(Config::from_toml("[soul]\nlisten = \"127.0.0.1:1\"\nport = 3\n").is_err());
    }

    #[test]
    fn database_defaults_to_sqlite_in_data_dir() {
        let c = load(&[("PRISM_DATA_DIR", "/tmp/pd")], &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(c.database_url().as_str(), "sqlite:///tmp/pd/prism.db");
    }

    #[test]
    fn redacted_toml_hides_secrets() {
        let c = load(
            &[
                ("DATABASE_URL", "postgres://u:hunter2@db/prism"),
                ("PRISM_SECRET_KEY", "k3y-material"),
            ],
            &Overrides::default(),
        )
        .unwrap()
        .config;
        let shown = c.to_redacted_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y-material"),
            "{shown}"
        );
    }

    #[test]
    fn egress_defaults_follow_the_mode_and_lists_parse() {
        let env: BTreeMap<String, String> = [
            ("PRISM_EGRESS_ALLOW", "10.1.0.0/16, *.corp.test,192.0.2.1"),
            ("PRISM_EGRESS_DENY", "evil.test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config::load(None, &env, &Overrides::default())
            .unwrap()
            .config;
        let up = config.egress_policy(true).unwrap();
        assert!(!up.deny_internal);
        let shared = config.egress_policy(false).unwrap();
        assert!(shared.deny_internal);
        assert_eq!(shared.allow_cidrs.len(), 2);
        assert!(shared.allow_hosts[0].matches("db.corp.test"));
        assert!(shared.deny_hosts[0].matches("evil.test"));

        let bad: BTreeMap<String, String> =
            [("PRISM_EGRESS_DENY".to_owned(), "10.0.0.0/99".to_owned())].into();
        let err = Config::load(None, &bad, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("intercept.egress.deny"),
            "{err}"
        );
        let bad: BTreeMap<String, String> =
            [("PRISM_EGRESS_DENY_INTERNAL".to_owned(), "maybe".to_owned())].into();
        assert!(Config::load(None, &bad, &Overrides::default()).is_err());
    }
}
