//! `beacon backup` and `beacon restore`: everything an install needs to come back elsewhere.
//!
//! A backup is a folder (archive it with `tar` to move it):
//! - `beacon.db`: the SQLite database, copied while Beacon runs with SQLite's `VACUUM INTO` (one
//!   consistent instant, WAL included). On PostgreSQL the database is not in the backup: it is
//!   dumped with `pg_dump` (README, "Backups").
//! - `data/`: the data folder's files — transcripts, audit logs, uploads, the generated
//!   `secret.key` — without what is derived or fetched again: the database and its WAL files,
//!   `kb-index/` (rebuilt from the database) and `models/` (downloaded again once).
//! - `manifest.json`: the format, Beacon's version, when, the database kind, where the secret
//!   key is (in `data/`, or the environment's `BEACON_SECRET_KEY`, which a backup never copies).
//!
//! `beacon restore DIR` puts them into a fresh install (it refuses to overwrite a database or a
//! secret key) and applies the migrations, so `beacon run` starts on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use beacon_config::Config;
use beacon_store::{Backend, Store};
use serde::{Deserialize, Serialize};

/// The version of the backup folder's layout.
const FORMAT: u32 = 1;
/// The database file inside a backup.
const DATABASE: &str = "beacon.db";
/// The data folder's copy inside a backup.
const DATA: &str = "data";
/// The manifest inside a backup.
const MANIFEST: &str = "manifest.json";
/// Derived or re-downloadable folders of the data folder, left out of a backup.
const SKIPPED_DIRS: [&str; 2] = ["kb-index", "models"];

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    beacon_version: String,
    /// Milliseconds since the Unix epoch.
    created_at_ms: i64,
    /// `sqlite` (the database is `beacon.db`) or `postgres` (dumped separately with `pg_dump`).
    database: String,
    /// Files copied from the data folder.
    files: u64,
    /// `data/secret.key`, or `environment` when the key is `BEACON_SECRET_KEY` (not copied).
    secret_key: String,
}

/// `beacon backup DIR`: the database (SQLite, online), the data folder's files and the
/// generated secret key into `out`, which must be absent or empty.
pub async fn backup(config: Arc<Config>, out: &Path) -> anyhow::Result<()> {
    if out.exists() && std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?.next().is_some() {
        bail!("backup folder {} is not empty: give a new folder", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let store = Store::connect(config.database_url.expose())
        .await
        .with_context(|| format!("connecting to {}", config.database_url.redacted_url()))?;
    let backend = store.backend();
    if backend == Backend::Sqlite {
        store.backup_sqlite(&out.join(DATABASE)).await.context("copying the SQLite database")?;
    }
    store.pool().close().await;
    let skip = database_files(&config);
    let files = if config.data_dir.is_dir() {
        copy_tree(&config.data_dir, &out.join(DATA), &skip, true).context("copying the data folder")?
    } else {
        0
    };
    let key_file = config.data_dir.join("secret.key");
    let secret_key = if config.secret_key.is_some() {
        "environment".to_owned()
    } else if key_file.exists() {
        format!("{DATA}/secret.key")
    } else {
        "none".to_owned()
    };
    let manifest = Manifest {
        format: FORMAT,
        beacon_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at_ms: beacon_store::now_ms(),
        database: backend.as_str().to_owned(),
        files,
        secret_key,
    };
    let text = serde_json::to_string_pretty(&manifest).context("writing the manifest")?;
    std::fs::write(out.join(MANIFEST), text).with_context(|| format!("writing {}", out.join(MANIFEST).display()))?;
    println!("backup written to {}", out.display());
    match backend {
        Backend::Sqlite => println!("  database: {DATABASE} (SQLite, consistent copy)"),
        Backend::Postgres => println!(
            "  database: PostgreSQL is not in this folder; dump it with `pg_dump --format=custom` (README, Backups)"
        ),
    }
    println!("  data folder: {files} file(s) in {DATA}/");
    match manifest.secret_key.as_str() {
        "environment" => println!(
            "  secret key: BEACON_SECRET_KEY comes from the environment and is not copied; keep it with this backup"
        ),
        "none" => println!("  secret key: none yet (nothing sealed)"),
        path => println!("  secret key: {path} (keep this backup as private as the key)"),
    }
    Ok(())
}

/// `beacon restore DIR`: a backup into this install's data folder and database, which must be
/// fresh; the migrations are applied so `beacon run` starts on it.
pub async fn restore(config: Arc<Config>, from: &Path) -> anyhow::Result<()> {
    let manifest_path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("{} is not a Beacon backup (no readable {MANIFEST})", from.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Beacon backup manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not supported by Beacon {} (it reads format {FORMAT})",
            manifest.format,
            env!("CARGO_PKG_VERSION")
        );
    }
    let target_db = config.sqlite_path();
    match (manifest.database.as_str(), &target_db) {
        ("sqlite", None) => bail!(
            "this backup holds a SQLite database but BEACON_DATABASE_URL points at PostgreSQL; restore into a SQLite install"
        ),
        ("sqlite" | "postgres", _) => {}
        (other, _) => bail!("backup database kind `{other}` is unknown"),
    }
    if let Some(db) = &target_db
        && manifest.database == "sqlite"
        && db.exists()
    {
        bail!("{} already exists: restore goes into a fresh install (move the old database away first)", db.display());
    }
    let key_file = config.data_dir.join("secret.key");
    if key_file.exists() && from.join(DATA).join("secret.key").exists() {
        bail!("{} already exists: restore goes into a fresh install (move the old key away first)", key_file.display());
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let files = if from.join(DATA).is_dir() {
        copy_tree(&from.join(DATA), &config.data_dir, &[], false).context("restoring the data folder")?
    } else {
        0
    };
    if let (Some(db), "sqlite") = (&target_db, manifest.database.as_str()) {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // Copied beside the target, then renamed: a database file is whole or absent.
        let partial = db.with_extension("db.restoring");
        std::fs::copy(from.join(DATABASE), &partial)
            .with_context(|| format!("copying {} to {}", from.join(DATABASE).display(), partial.display()))?;
        std::fs::rename(&partial, db).with_context(|| format!("moving the database into {}", db.display()))?;
    }
    let store = crate::backends::open_store(&config).await.context("opening the restored database")?;
    let guilds = store.guild_count().await.context("reading the restored database")?;
    store.pool().close().await;
    println!("restored {} into {}", from.display(), config.data_dir.display());
    println!("  data folder: {files} file(s)");
    match manifest.database.as_str() {
        "sqlite" => println!("  database: {guilds} guild(s); migrations applied"),
        _ => println!("  database: PostgreSQL — restore it with pg_restore from its dump (README, Backups)"),
    }
    if manifest.secret_key == "environment" {
        println!("  secret key: set BEACON_SECRET_KEY to the key the backed-up install used");
    }
    println!("  search indexes are rebuilt from the database; start with `beacon run`");
    Ok(())
}

/// The SQLite database file and its companions, which the file copy leaves to `VACUUM INTO`.
fn database_files(config: &Config) -> Vec<PathBuf> {
    let Some(db) = config.sqlite_path() else { return Vec::new() };
    let name = db.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    ["", "-wal", "-shm", "-journal"].iter().map(|suffix| db.with_file_name(format!("{name}{suffix}"))).collect()
}

/// Copies the files under `from` into `to` (created as needed), skipping `skip` and, at the top
/// level when `skip_derived`, the derived folders. Symbolic links are not followed. Returns how
/// many files were copied.
fn copy_tree(from: &Path, to: &Path, skip: &[PathBuf], skip_derived: bool) -> anyhow::Result<u64> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut copied = 0;
    let entries = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        if skip.iter().any(|s| same_file(s, &path)) {
            continue;
        }
        let kind = entry.file_type().with_context(|| format!("reading {}", path.display()))?;
        if kind.is_dir() {
            if skip_derived && SKIPPED_DIRS.iter().any(|d| name == *d) {
                continue;
            }
            copied += copy_tree(&path, &to.join(&name), skip, false)?;
        } else if kind.is_file() {
            // `fs::copy` keeps the permission bits: the key stays readable by its owner only.
            std::fs::copy(&path, to.join(&name))
                .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
            copied += 1;
        } else {
            tracing::warn!(path = %path.display(), "not a regular file or folder: left out");
        }
    }
    Ok(copied)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
