//! Start-up benchmark: time from spawning `prism up` to `/readyz` answering 200 on both planes.
//!
//! Run with `cargo bench -p prism-cli --bench startup`. The goal (issue: foundation) is ≤ 2 s; the
//! report gives each figure as a ratio of that goal. Two cases: a fresh data directory (creates and
//! migrates the database) and a restart on an existing one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 15;
const GOAL: Duration = Duration::from_secs(2);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut fresh = Vec::new();
    let mut restart = Vec::new();
    for i in 0..RUNS {
        let data = dir.path().join(format!("run{i}"));
        fresh.push(time_to_ready(&data));
        restart.push(time_to_ready(&data));
    }
    report("fresh data dir (create + migrate)", &mut fresh);
    report("restart on existing data dir", &mut restart);
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    println!(
        "{name}: median {:.1} ms, max {:.1} ms over {} runs; median / 2 s goal = {:.4}",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        samples.len(),
        median.as_secs_f64() / GOAL.as_secs_f64()
    );
}

/// Spawns `prism up`, reads the two addresses from its banner, and polls both `/readyz` until they
/// answer 200. Returns the time since spawn, then stops the process with SIGTERM.
fn time_to_ready(data: &std::path::Path) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args([
            "up",
            "--soul-listen",
            "127.0.0.1:0",
            "--intercept-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .env_clear()
        .env("PRISM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prism");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    while addrs.len() < 2 {
        let line = lines.next().expect("banner line").expect("read stdout");
        if let Some(addr) = line.split("http://").nth(1) {
            addrs.push(addr.trim().parse::<SocketAddr>().expect("address"));
        }
    }
    for addr in &addrs {
        while !ready(*addr) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{addr} never became ready"
            );
        }
    }
    let elapsed = started.elapsed();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    elapsed
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}
