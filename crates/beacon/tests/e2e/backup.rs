//! `beacon backup` and `beacon restore` through the real binary: a copy taken while Beacon runs
//! comes back in a fresh install with its knowledge, its files and its secret key, and starts.

use std::process::Stdio;
use std::time::Duration;

use crate::binary::{beacon, free_port, terminate, wait_exit, wait_http};

#[tokio::test]
async fn a_backup_taken_while_running_restores_into_a_fresh_install_that_starts() {
    let old = tempfile::tempdir().unwrap();
    let docs = old.path().join("docs-src");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("refunds.md"), "# Refunds\n\nRefunds are issued within 14 days.\n").unwrap();
    let out = beacon()
        .args(["ingest", "--guild", "42", docs.to_str().unwrap()])
        .env("BEACON_DATA_DIR", old.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A file another module keeps in the data folder (a transcript) travels with the backup.
    std::fs::create_dir_all(old.path().join("transcripts/42")).unwrap();
    std::fs::write(old.path().join("transcripts/42/ticket-1.html"), "<p>transcript</p>").unwrap();

    let port = free_port();
    let mut running = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", old.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&format!("http://127.0.0.1:{port}/health/ready")).await;
    let health = beacon()
        .arg("health")
        .env("BEACON_HTTP_ADDR", format!("0.0.0.0:{port}"))
        .env("BEACON_DATA_DIR", old.path())
        .output()
        .unwrap();
    assert!(health.status.success(), "beacon health: {}", String::from_utf8_lossy(&health.stderr));

    let backups = tempfile::tempdir().unwrap();
    let copy = backups.path().join("beacon-backup");
    let out = beacon().arg("backup").arg(&copy).env("BEACON_DATA_DIR", old.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("SQLite, consistent copy") && stdout.contains("data/secret.key"), "{stdout}");
    assert!(copy.join("beacon.db").exists() && copy.join("data/secret.key").exists());
    assert!(copy.join("data/transcripts/42/ticket-1.html").exists());
    assert!(!copy.join("data/kb-index").exists(), "derived indexes are rebuilt, not copied");
    assert!(!copy.join("data/beacon.db").exists() && !copy.join("data/beacon.db-wal").exists());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["database"], "sqlite");
    assert_eq!(manifest["secret_key"], "data/secret.key");

    // The folder is not written twice.
    let out = beacon().arg("backup").arg(&copy).env("BEACON_DATA_DIR", old.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{}", String::from_utf8_lossy(&out.stderr));

    terminate(&running);
    let (status, _) = wait_exit(&mut running, Duration::from_secs(10));
    assert!(status.success());

    // A fresh install on another "machine".
    let fresh = tempfile::tempdir().unwrap();
    let restore = || beacon().arg("restore").arg(&copy).env("BEACON_DATA_DIR", fresh.path()).output().unwrap();
    let out = restore();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("migrations applied"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read(fresh.path().join("secret.key")).unwrap(),
        std::fs::read(old.path().join("secret.key")).unwrap(),
        "the key that sealed the credentials comes back"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fresh.path().join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key stays private");
    }
    assert!(fresh.path().join("transcripts/42/ticket-1.html").exists());
    // A second restore would overwrite a live install: refused, naming what is in the way.
    let out = restore();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The restored install answers from the knowledge it had (the index is rebuilt) and starts.
    let out = beacon()
        .args(["ask", "--guild", "42", "How long do refunds take?"])
        .env("BEACON_DATA_DIR", fresh.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("14 days"), "{}", String::from_utf8_lossy(&out.stdout));
    let port = free_port();
    let mut restarted = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", fresh.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&format!("http://127.0.0.1:{port}/health/ready")).await;
    terminate(&restarted);
    let (status, _) = wait_exit(&mut restarted, Duration::from_secs(10));
    assert!(status.success());
}

#[test]
fn health_fails_when_nothing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let out = beacon()
        .arg("health")
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("BEACON_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/health/ready did not answer"));
}
