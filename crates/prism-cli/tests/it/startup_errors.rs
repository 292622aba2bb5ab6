//! Bad input at start-up: one clear line naming the setting, exit code 2, nothing half-created.

use crate::support::{ephemeral_args, prism, run};

/// The whole error output is one line that names `setting`.
fn assert_one_line_naming(stderr: &str, setting: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(setting), "names {setting}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn port_in_use_exits_2_and_creates_no_data_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let mut cmd = prism();
    cmd.args([
        "up",
        "--soul-listen",
        &format!("127.0.0.1:{port}"),
        "--intercept-listen",
        "127.0.0.1:0",
    ]);
    cmd.arg("--data-dir").arg(&data);
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_naming(&out.stderr, "PRISM_SOUL_LISTEN");
    assert!(
        out.stderr.to_lowercase().contains("in use"),
        "{}",
        out.stderr
    );
    assert!(!data.exists(), "no data dir left behind");
}

#[tokio::test]
async fn malformed_database_url_exits_2() {
    for url in [
        "mysql://localhost/prism",
        "postgres://",
        "postgres://u:secretpw@host:notaport/db",
        "sqlite://",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = prism();
        cmd.arg("up").env("DATABASE_URL", url);
        ephemeral_args(&mut cmd, &dir.path().join("d"));
        let out = run(cmd, None).await;
        assert_eq!(out.status.code(), Some(2), "{url}: {out:?}");
        assert_one_line_naming(&out.stderr, "DATABASE_URL");
        assert!(
            !out.stderr.contains("secretpw"),
            "password redacted: {}",
            out.stderr
        );
        assert!(!dir.path().join("d").exists());
    }
}

#[tokio::test]
async fn unreachable_database_exits_2() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("intercept")
        .env("DATABASE_URL", "postgres://prism:hunter2@127.0.0.1:1/prism")
        .env("PRISM_DATABASE_CONNECT_TIMEOUT_SECS", "2");
    ephemeral_args(&mut cmd, dir.path());
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_naming(
        &out.stderr,
        "database postgres://prism:***@127.0.0.1:1/prism",
    );
    assert!(!out.stderr.contains("hunter2"));
}

#[tokio::test]
async fn data_dir_that_is_a_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let mut cmd = prism();
    cmd.arg("up");
    ephemeral_args(&mut cmd, &file);
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_naming(&out.stderr, "PRISM_DATA_DIR");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "x",
        "the file is untouched"
    );
}

#[tokio::test]
async fn bad_listen_address_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("up").env("PRISM_INTERCEPT_LISTEN", "localhost");
    cmd.arg("--data-dir").arg(dir.path());
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_naming(&out.stderr, "PRISM_INTERCEPT_LISTEN=localhost");
}

#[tokio::test]
async fn database_from_a_newer_prism_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("migrate").arg("--data-dir").arg(dir.path());
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Pretend a newer PRISM migrated this file.
    let db = dir.path().join("prism.db");
    let url = format!("sqlite://{}", db.display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO prism_migrations (version, name, checksum, applied_at) VALUES (999, '0999_future', 'x', 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let before = std::fs::read(&db).unwrap();

    let mut cmd = prism();
    cmd.arg("up");
    ephemeral_args(&mut cmd, dir.path());
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_one_line_naming(&out.stderr, "database sqlite://");
    assert!(out.stderr.contains("newer"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database file is not modified"
    );
}
