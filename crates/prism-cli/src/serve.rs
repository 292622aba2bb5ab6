//! Starting and stopping the planes: bind, open the store, serve, and on SIGINT/SIGTERM stop
//! accepting, let in-flight requests finish, close the store, exit 0.
//!
//! Start-up order is chosen so a failure leaves nothing behind: listeners are bound first (a port
//! in use fails before any file is created), then the data directory and database are prepared,
//! and anything this start created is removed again if opening the database fails.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prism_domain::SystemClock;
use prism_domain::session::hash_secret;
use prism_grpc::{GrpcConfig, GrpcExecutor};
use prism_intercept::InterceptSettings;
use prism_intercept::api::auth::service_credential;
use prism_intercept::executor::{ExecutorConfig, HttpExecutor};
use prism_intercept::recorder::{Recorder, RecorderConfig, RecorderTask};
use prism_store::{Backend, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Failure;
use crate::config::Config;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which planes this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planes {
    Both,
    Soul,
    Intercept,
}

impl Planes {
    fn soul(self) -> bool {
        matches!(self, Planes::Both | Planes::Soul)
    }

    fn intercept(self) -> bool {
        matches!(self, Planes::Both | Planes::Intercept)
    }
}

/// rustls needs one process-wide crypto provider; PRISM uses ring everywhere.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An address clients on this host can reach a listener on (`0.0.0.0` → `127.0.0.1`).
pub fn client_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// An open store, and the paths this process created for it (removed if start-up fails later).
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
}

/// Prepares the data directory (for the embedded database) and opens and migrates the store.
pub async fn open_store(config: &Config) -> Result<OpenedStore, Failure> {
    let url = config.database_url();
    let mut created = Vec::new();
    if url.backend() == Backend::Sqlite && config.database.url.is_none() {
        prepare_data_dir(&config.data_dir, &mut created)?;
        let db = config.sqlite_path();
        if !db.exists() {
            for suffix in ["", "-wal", "-shm"] {
                created.push(PathBuf::from(format!("{}{suffix}", db.display())));
            }
        }
    }
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
        migrate: true,
    };
    match prism_store::open(&url, &options).await {
        Ok(store) => Ok(OpenedStore { store }),
        Err(err) => {
            // Nothing half-created stays behind: remove what this start made, newest first.
            for path in created.iter().rev() {
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
            Err(Failure::startup(
                format!("database {}", url.redacted()),
                err,
            ))
        }
    }
}

fn prepare_data_dir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), Failure> {
    let setting = || format!("PRISM_DATA_DIR={}", dir.display());
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            Err(Failure::startup(setting(), "exists and is not a directory"))
        }
        Ok(_) => {
            std::fs::read_dir(dir)
                .map_err(|e| Failure::startup(setting(), format!("cannot read: {e}")))?;
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            // Remember the outermost directory this call creates, so a failed start removes all of it.
            let mut outermost = dir.to_path_buf();
            while let Some(parent) = outermost.parent() {
                if parent.as_os_str().is_empty() || parent.exists() {
                    break;
                }
                outermost = parent.to_path_buf();
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::startup(setting(), format!("cannot create: {e}")))?;
            created.push(outermost);
            Ok(())
        }
        Err(err) => Err(Failure::startup(setting(), format!("cannot read: {err}"))),
    }
}

async fn bind(setting: &str, addr: SocketAddr) -> Result<TcpListener, Failure> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::startup(format!("{setting}={addr}"), e))
}

/// A running PRISM: the addresses it listens on and the handle that stops it.
pub struct Running {
    pub soul_addr: Option<SocketAddr>,
    pub intercept_addr: Option<SocketAddr>,
    pub otlp_grpc_addr: Option<SocketAddr>,
    pub store: Arc<dyn Store>,
    shutdown: watch::Sender<bool>,
    servers: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    /// The data plane's write-behind recorder, flushed after the servers stopped.
    recorder: Option<RecorderTask>,
}

/// Binds, opens the store and starts serving; returns once every listener accepts connections.
pub async fn start(config: &Config, planes: Planes) -> Result<Running, Failure> {
    install_tls_provider();
    prism_intercept::telemetry::install();
    if let Some(export) = config
        .self_trace()
        .map_err(|e| Failure::startup(&e.setting, &e.reason))?
    {
        prism_intercept::selftrace::start(export);
    }
    let soul_listener = match planes.soul() {
        true => Some(bind("PRISM_SOUL_LISTEN", config.soul.listen).await?),
        false => None,
    };
    let intercept_listener = match planes.intercept() {
        true => Some(bind("PRISM_INTERCEPT_LISTEN", config.intercept.listen).await?),
        false => None,
    };
    let otlp_grpc_listener = match planes.intercept() {
        true => Some(bind("PRISM_OTLP_GRPC_LISTEN", config.intercept.otlp_grpc_listen).await?),
        false => None,
    };
    let opened = open_store(config).await?;
    let store = opened.store;
    let secret_key = resolve_secret_key(config)?;
    let (shutdown, stop) = watch::channel(false);
    let mut servers = Vec::new();
    let mut soul_addr = None;
    let mut intercept_addr = None;
    let mut otlp_grpc_addr = None;
    let mut recorder = None;
    let mut in_process = None;
    if let Some(listener) = intercept_listener {
        intercept_addr = Some(
            listener
                .local_addr()
                .map_err(|e| Failure::startup("PRISM_INTERCEPT_LISTEN", e))?,
        );
        let (state, task) = intercept_state(config, planes, store.clone(), &secret_key)?;
        in_process = Some(state.clone());
        recorder = Some(task);
        if let Some(otlp) = otlp_grpc_listener {
            otlp_grpc_addr = Some(
                otlp.local_addr()
                    .map_err(|e| Failure::startup("PRISM_OTLP_GRPC_LISTEN", e))?,
            );
            let ingest = prism_intercept::otlp_ingest(&state);
            let mut stop = stop.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            servers.push((
                "otlp-grpc",
                tokio::spawn(async move {
                    prism_intercept::otlp::serve_grpc(otlp, ingest, shutdown)
                        .await
                        .map_err(std::io::Error::other)
                }),
            ));
        }
        let app = prism_intercept::router(state);
        servers.push(("intercept", spawn_server(listener, app, stop.clone())));
    }
    if let Some(listener) = soul_listener {
        soul_addr = Some(
            listener
                .local_addr()
                .map_err(|e| Failure::startup("PRISM_SOUL_LISTEN", e))?,
        );
        let data_plane = match in_process.take() {
            Some(state) => prism_soul::dataplane::DataPlane::InProcess(state),
            None => prism_soul::dataplane::DataPlane::Remote(
                prism_soul::dataplane::RemoteDataPlane::new(
                    &config.soul.intercept_url,
                    service_credential(&secret_key),
                ),
            ),
        };
        let settings = prism_soul::SoulSettings {
            signup_open: config.soul.signup_open,
            secure_cookies: config.soul.secure_cookies,
            ..prism_soul::SoulSettings::default()
        };
        let state = prism_soul::SoulState::new(
            store.clone(),
            Arc::new(SystemClock),
            settings,
            &secret_key,
            data_plane,
        );
        let app = prism_soul::router(state);
        servers.push(("soul", spawn_server(listener, app, stop.clone())));
    }
    tracing::info!(
        soul = soul_addr.map(|a| a.to_string()),
        intercept = intercept_addr.map(|a| a.to_string()),
        otlp_grpc = otlp_grpc_addr.map(|a| a.to_string()),
        database = %config.database_url().redacted(),
        backend = store.backend().as_str(),
        "prism started"
    );
    Ok(Running {
        soul_addr,
        intercept_addr,
        otlp_grpc_addr,
        store,
        shutdown,
        servers,
        recorder,
    })
}

/// The data plane's shared state: the executor with the outbound policy, the recorder (spooling
/// into `<data_dir>/spool`) and the API settings. `prism up` relaxes what only makes sense on a
/// shared server (internal targets allowed, OTLP from loopback without a key).
fn intercept_state(
    config: &Config,
    planes: Planes,
    store: Arc<dyn Store>,
    secret_key: &str,
) -> Result<(prism_intercept::InterceptState, RecorderTask), Failure> {
    let up = planes == Planes::Both;
    let egress = config
        .egress_policy(up)
        .map_err(|e| Failure::startup(e.setting.clone(), e.reason))?;
    let grpc = GrpcExecutor::new(GrpcConfig {
        egress: egress.clone(),
        ..GrpcConfig::default()
    });
    let executor = HttpExecutor::new(ExecutorConfig {
        egress,
        ..ExecutorConfig::default()
    });
    let (recorder, task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(config.data_dir.join("spool")),
    );
    let settings = InterceptSettings {
        service_credential_hash: Some(hash_secret(&service_credential(secret_key))),
        loopback_ingest_without_key: config.intercept.loopback_ingest_without_key.unwrap_or(up),
        max_request_body: config.intercept.max_request_body_bytes,
        ..InterceptSettings::default()
    };
    let state = prism_intercept::InterceptState::new(
        store,
        recorder,
        executor,
        grpc,
        settings,
        Arc::new(SystemClock),
    );
    Ok((state, task))
}

/// The instance's secret key: the configured one, or one generated on first start and kept in
/// `<data_dir>/secret.key` (readable by the owner only). Planes on different hosts must share a
/// configured key (`PRISM_SECRET_KEY`): it derives the service credential and encrypts secrets.
fn resolve_secret_key(config: &Config) -> Result<String, Failure> {
    if let Some(key) = &config.secret_key {
        return Ok(key.clone());
    }
    let path = config.data_dir.join("secret.key");
    let fail =
        |e: std::io::Error| Failure::startup(format!("secret key file {}", path.display()), e);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::fs::create_dir_all(&config.data_dir).map_err(fail)?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, key.as_bytes()).map_err(fail)?;
            tracing::info!(path = %path.display(), "generated the instance secret key");
            Ok(key)
        }
        // Another process on the same data dir created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)
            .map(|k| k.trim().to_owned())
            .map_err(fail),
        Err(e) => Err(fail(e)),
    }
}

fn spawn_server(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
    })
}

impl Running {
    /// Stops accepting, waits for in-flight requests (up to a deadline), then closes the store.
    pub async fn shutdown(self) -> Result<(), Failure> {
        let _ = self.shutdown.send(true);
        let mut failure = None;
        for (name, server) in self.servers {
            match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    failure = Some(Failure::failed(format!("{name} server: {err}")))
                }
                Ok(Err(err)) => {
                    failure = Some(Failure::failed(format!("{name} server task: {err}")))
                }
                Err(_) => tracing::warn!(plane = name, "in-flight requests did not finish in time"),
            }
        }
        // Every acknowledged record is written (or spooled) before the store closes.
        if let Some(recorder) = self.recorder {
            recorder.shutdown().await;
        }
        self.store.close().await;
        tracing::info!("prism stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// Runs until SIGINT or SIGTERM, then shuts down cleanly.
pub async fn run(config: Config, planes: Planes) -> Result<(), Failure> {
    // Handlers are installed before anything is announced, so a signal sent the moment the banner
    // appears is handled rather than killing the process.
    let signals = Signals::install()?;
    let running = start(&config, planes).await?;
    println!("PRISM {} is up", env!("CARGO_PKG_VERSION"));
    if let Some(addr) = running.soul_addr {
        println!("  soul (web UI + API):   http://{}", client_addr(addr));
    }
    if let Some(addr) = running.intercept_addr {
        println!("  intercept (data plane): http://{}", client_addr(addr));
    }
    if let Some(addr) = running.otlp_grpc_addr {
        println!("  otlp (OTLP/gRPC):       {}", client_addr(addr));
    }
    println!(
        "  database:               {}",
        config.database_url().redacted()
    );
    println!("Stop with Ctrl+C.");
    signals.wait().await;
    tracing::info!("shutdown signal received; finishing in-flight work");
    running.shutdown().await
}

/// SIGINT and SIGTERM, listened for from the moment they are installed.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt =
            signal(SignalKind::interrupt()).map_err(|e| Failure::startup("SIGINT handler", e))?;
        let terminate =
            signal(SignalKind::terminate()).map_err(|e| Failure::startup("SIGTERM handler", e))?;
        Ok(Self {
            interrupt,
            terminate,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self, Failure> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
