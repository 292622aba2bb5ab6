//! The `prism` command line: `up`, `soul`, `intercept`, `migrate`, `healthcheck`, `config`, `user`.
//!
//! Exit codes: 0 success; 1 a command that ran and failed (an unhealthy health check, a refused
//! user); 2 bad configuration or a start-up failure (bad setting, port in use, database
//! unreachable or too new), always with one line naming the setting and the cause.

mod admin;
pub mod config;
mod logging;
mod serve;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "prism",
    version,
    about = "API testing, tracing and analytics in one binary"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// TOML configuration file [env: PRISM_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for embedded data [env: PRISM_DATA_DIR] [default: ./prism-data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [env: DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Control-plane address [env: PRISM_SOUL_LISTEN] [default: 127.0.0.1:3000]
    #[arg(long, global = true, value_name = "ADDR")]
    soul_listen: Option<String>,
    /// Data-plane address [env: PRISM_INTERCEPT_LISTEN or PORT] [default: 127.0.0.1:7000]
    #[arg(long, global = true, value_name = "ADDR")]
    intercept_listen: Option<String>,
    /// OTLP/gRPC receiver address [env: PRISM_OTLP_GRPC_LISTEN] [default: 127.0.0.1:4317]
    #[arg(long, global = true, value_name = "ADDR")]
    otlp_grpc_listen: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run both planes in one process (embedded SQLite unless DATABASE_URL says otherwise)
    Up,
    /// Run only the control plane (UI, API, accounts)
    Soul,
    /// Run only the data plane (request execution, OTLP ingest); run several against PostgreSQL
    Intercept,
    /// Apply pending database migrations and exit
    Migrate,
    /// Exit 0 if URL answers 2xx, 1 otherwise [default URL: the control plane's /api/health]
    Healthcheck {
        url: Option<String>,
        /// Seconds to wait for an answer
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Configuration helpers
    #[command(subcommand)]
    Config(ConfigCommand),
    /// User administration
    #[command(subcommand)]
    User(UserCommand),
    /// Workspace administration
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// API tokens for scripts, CI and the data plane
    #[command(subcommand)]
    Token(TokenCommand),
    /// Workspace keys for OpenTelemetry exporters
    #[command(subcommand, name = "ingest-key")]
    IngestKey(IngestKeyCommand),
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace owned (as admin) by an existing user; prints its id
    Create {
        #[arg(long)]
        name: String,
        /// The owner's email
        #[arg(long)]
        owner: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user; prints the secret once (only its hash is stored)
    Create {
        /// The user's email
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires (never, when omitted)
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum IngestKeyCommand {
    /// Create an ingest key for a workspace; prints the secret once (only its hash is stored)
    Create {
        /// The workspace id
        #[arg(long)]
        workspace: String,
        #[arg(long, default_value = "otel")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented example configuration with every default
    Default,
    /// Print the effective configuration (secrets hidden)
    Show,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from the first line of standard input
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from standard input (required: passwords never go on the command line)
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the account an instance administrator
        #[arg(long)]
        admin: bool,
    },
}

/// A failure that ends the process with a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 2: configuration or start-up.
    pub fn startup(setting: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        Self {
            code: 2,
            message: format!("{setting}: {cause}"),
        }
    }

    /// Exit 1: the command ran and failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Self {
            code: 2,
            message: err.to_string(),
        }
    }
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let flags = Overrides {
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        soul_listen: cli.global.soul_listen,
        intercept_listen: cli.global.intercept_listen,
        otlp_grpc_listen: cli.global.otlp_grpc_listen,
    };
    if let Command::Config(ConfigCommand::Default) = cli.command {
        print!("{}", config::DEFAULT_TOML);
        return Ok(());
    }
    let loaded = Config::load(cli.global.config.as_deref(), &env, &flags)?;
    let config = loaded.config;
    match cli.command {
        Command::Up => {
            logging::init(&config.log);
            log_warnings(&loaded.warnings);
            serve::run(config, serve::Planes::Both).await
        }
        Command::Soul => {
            logging::init(&config.log);
            log_warnings(&loaded.warnings);
            serve::run(config, serve::Planes::Soul).await
        }
        Command::Intercept => {
            logging::init(&config.log);
            log_warnings(&loaded.warnings);
            serve::run(config, serve::Planes::Intercept).await
        }
        Command::Migrate => {
            logging::init(&config.log);
            log_warnings(&loaded.warnings);
            let opened = serve::open_store(&config).await?;
            let version = opened
                .store
                .schema_version()
                .await
                .map_err(|e| Failure::failed(e.to_string()))?;
            opened.store.close().await;
            println!(
                "database {} is at schema version {version}",
                config.database_url().redacted()
            );
            Ok(())
        }
        Command::Healthcheck { url, timeout } => {
            let url = url.unwrap_or_else(|| {
                format!(
                    "http://{}/api/health",
                    serve::client_addr(config.soul.listen)
                )
            });
            healthcheck(&url, timeout).await
        }
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Config(ConfigCommand::Default) => unreachable!("handled before loading"),
        Command::User(UserCommand::Add {
            email,
            name,
            password_stdin: _,
            admin,
        }) => {
            logging::init(&config.log);
            user_add(&config, &email, &name, admin).await
        }
        Command::Workspace(WorkspaceCommand::Create { name, owner }) => {
            logging::init(&config.log);
            admin::with_store(&config, |store| admin::workspace_create(store, name, owner)).await
        }
        Command::Token(TokenCommand::Create {
            email,
            name,
            expires_in_days,
        }) => {
            logging::init(&config.log);
            admin::with_store(&config, |store| {
                admin::token_create(store, email, name, expires_in_days)
            })
            .await
        }
        Command::IngestKey(IngestKeyCommand::Create { workspace, name }) => {
            logging::init(&config.log);
            admin::with_store(&config, |store| {
                admin::ingest_key_create(store, workspace, name)
            })
            .await
        }
    }
}

fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        tracing::warn!("{warning}");
    }
}

async fn healthcheck(url: &str, timeout: u64) -> Result<(), Failure> {
    serve::install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout))
        .build()
        .map_err(|e| Failure::failed(format!("healthcheck: {e}")))?;
    match client.get(url).send().await {
        Ok(resp) if resp.status().is_success() => {
            println!("healthy: {url} answered {}", resp.status());
            Ok(())
        }
        Ok(resp) => Err(Failure::failed(format!(
            "unhealthy: {url} answered {}",
            resp.status()
        ))),
        Err(err) => Err(Failure::failed(format!("unhealthy: {url}: {err}"))),
    }
}

async fn user_add(config: &Config, email: &str, name: &str, admin: bool) -> Result<(), Failure> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| Failure::failed(format!("reading the password from standard input: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']);
    let opened = serve::open_store(config).await?;
    let result = prism_soul::accounts::create_user(
        opened.store.as_ref(),
        &prism_domain::SystemClock,
        email,
        name,
        password,
        admin,
    )
    .await;
    opened.store.close().await;
    let user = result.map_err(|e| Failure::failed(format!("user add: {e}")))?;
    println!(
        "created user {} ({}){}",
        user.email,
        user.id,
        if user.is_admin {
            ", instance admin"
        } else {
            ""
        }
    );
    Ok(())
}
