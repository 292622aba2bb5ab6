//! The one-shot commands: `config default|show`, `migrate`, `user add`.

use crate::support::{prism, run};

#[tokio::test]
async fn config_default_prints_a_commented_config_that_loads() {
    let out = run(
        {
            let mut c = prism();
            c.args(["config", "default"]);
            c
        },
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.contains("# ") && out.stdout.contains("[soul]"),
        "{}",
        out.stdout
    );

    // The printed file is accepted as a config file, and `config show` reflects file + env layers.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prism.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let mut show = prism();
    show.args(["config", "show", "--config"])
        .arg(&file)
        .env("PRISM_SOUL_LISTEN", "127.0.0.1:3999");
    show.env("DATABASE_URL", "postgres://prism:topsecret@db:5432/prism");
    let shown = run(show, None).await;
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    assert!(shown.stdout.contains("127.0.0.1:3999"), "{}", shown.stdout);
    assert!(shown.stdout.contains("127.0.0.1:7000"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("topsecret"), "{}", shown.stdout);
}

#[tokio::test]
async fn migrate_creates_the_schema_and_reports_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("migrate")
        .arg("--data-dir")
        .arg(dir.path().join("new"));
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("schema version {}", prism_store::SCHEMA_VERSION)),
        "{}",
        out.stdout
    );
    assert!(dir.path().join("new/prism.db").is_file());
}

fn user_add(data: &std::path::Path, email: &str, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = prism();
    cmd.args(["user", "add", "--email", email, "--password-stdin"])
        .args(extra)
        .arg("--data-dir")
        .arg(data);
    cmd
}

#[tokio::test]
async fn user_add_hashes_the_password_from_stdin_and_first_user_is_admin() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        user_add(dir.path(), "Ada@Example.org", &["--name", "Ada"]),
        Some("correct horse battery\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.contains("ada@example.org") && out.stdout.contains("instance admin"),
        "{}",
        out.stdout
    );

    let out = run(
        user_add(dir.path(), "bob@example.org", &[]),
        Some("another password\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !out.stdout.contains("instance admin"),
        "second user is not admin: {}",
        out.stdout
    );

    let out = run(
        user_add(dir.path(), "carol@example.org", &["--admin"]),
        Some("third password\n"),
    )
    .await;
    assert!(
        out.stdout.contains("instance admin"),
        "--admin: {}",
        out.stdout
    );

    let dup = run(
        user_add(dir.path(), "ADA@example.org", &[]),
        Some("whatever123\n"),
    )
    .await;
    assert_eq!(dup.status.code(), Some(1), "{dup:?}");
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);

    let weak = run(
        user_add(dir.path(), "dan@example.org", &[]),
        Some("short\n"),
    )
    .await;
    assert_eq!(weak.status.code(), Some(1));
    assert!(weak.stderr.contains("password"), "{}", weak.stderr);

    // The stored hash is argon2id and verifies the password given on stdin, not anything else.
    let url = prism_store::DatabaseUrl::sqlite_file(&dir.path().join("prism.db"));
    let store = prism_store::open(&url, &prism_store::StoreOptions::default())
        .await
        .unwrap();
    let ada = store
        .find_user_by_email(&prism_domain::user::Email::parse("ada@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.name, "Ada");
    assert!(ada.password_hash.starts_with("$argon2id$"));
    assert!(prism_soul::accounts::password::verify(
        "correct horse battery",
        Some(&ada.password_hash)
    ));
    assert!(!prism_soul::accounts::password::verify(
        "correct horse",
        Some(&ada.password_hash)
    ));
    store.close().await;
}

#[tokio::test]
async fn user_add_refuses_a_password_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.args(["user", "add", "--email", "a@b.example"])
        .arg("--data-dir")
        .arg(dir.path());
    let out = run(cmd, None).await;
    assert_eq!(out.status.code(), Some(2), "clap usage error: {out:?}");
    assert!(out.stderr.contains("--password-stdin"), "{}", out.stderr);
}
