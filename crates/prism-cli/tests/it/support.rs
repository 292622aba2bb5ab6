//! Runs the real `prism` binary as a child process and reads what it prints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Upper bound for anything a test waits on; reaching it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn prism() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
    // Only what the test sets reaches the child: no DATABASE_URL or PRISM_* from the caller.
    cmd.env_clear();
    cmd.env("PRISM_LOG_FORMAT", "json");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    cmd
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs to completion with optional standard input.
pub async fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn prism");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("prism finished in time")
        .expect("wait for prism");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `prism up|soul|intercept`.
pub struct Server {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
    pub soul: Option<SocketAddr>,
    pub intercept: Option<SocketAddr>,
    pub started_in: Duration,
}

impl Server {
    /// Spawns and waits until the banner names every plane it runs (`planes`: "soul", "intercept").
    pub async fn start(mut cmd: Command, planes: &[&str]) -> Server {
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("spawn prism");
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for pipe in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child,
            lines,
            seen: Vec::new(),
            soul: None,
            intercept: None,
            started_in: Duration::ZERO,
        };
        while planes.iter().any(|p| server.addr_of(p).is_none()) {
            let line = server.next_line().await.unwrap_or_else(|| {
                panic!(
                    "prism exited before printing its addresses; output:\n{}",
                    server.seen.join("\n")
                )
            });
            if let Some(addr) = banner_addr(&line, "soul") {
                server.soul = Some(addr);
            }
            if let Some(addr) = banner_addr(&line, "intercept") {
                server.intercept = Some(addr);
            }
        }
        server.started_in = spawned.elapsed();
        server
    }

    fn addr_of(&self, plane: &str) -> Option<SocketAddr> {
        match plane {
            "soul" => self.soul,
            "intercept" => self.intercept,
            other => panic!("unknown plane {other}"),
        }
    }

    async fn next_line(&mut self) -> Option<String> {
        let line = tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .expect("prism printed in time")?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Kills the process outright (SIGKILL: no shutdown code runs) and waits for it to be gone.
    pub async fn kill_9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("prism died in time")
            .unwrap();
    }

    /// Sends a signal and waits for the exit status, collecting the rest of the output.
    pub async fn stop_with(mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().expect("child still running").to_string();
        let kill = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("prism stopped in time")
            .unwrap();
        while let Ok(Some(line)) = tokio::time::timeout(PATIENCE, self.lines.recv()).await {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

/// Parses `  soul (…): http://ADDR` from the start-up banner.
fn banner_addr(line: &str, plane: &str) -> Option<SocketAddr> {
    let rest = line.trim_start().strip_prefix(plane)?;
    rest.split("http://").nth(1)?.trim().parse().ok()
}

/// GET a URL, returning status and body.
pub async fn get(url: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// Arguments that put every listener on a free port and data in `dir`.
pub fn ephemeral_args(cmd: &mut Command, data_dir: &Path) {
    cmd.args([
        "--soul-listen",
        "127.0.0.1:0",
        "--intercept-listen",
        "127.0.0.1:0",
        "--otlp-grpc-listen",
        "127.0.0.1:0",
    ]);
    cmd.arg("--data-dir").arg(data_dir);
}

pub fn env_map(cmd: &mut Command, pairs: &BTreeMap<&str, String>) {
    for (k, v) in pairs {
        cmd.env(k, v);
    }
}
