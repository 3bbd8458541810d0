//! What a GUILD_CREATE burst costs the store: `N` guilds registered one transaction each (one
//! awaited after the other, as a lone join is written) and then all at once (as a shard's
//! burst arrives, group-committed by the registration writer), on a fresh SQLite file.
//! Prints wall time and this process's CPU time per guild (from `/proc/self/stat`).
//!
//! ```sh
//! cargo run --example register_burst -p beacon-store -- 10000
//! ```

use std::time::Instant;

use beacon_store::{Store, StoreError};

/// This process's user + system CPU time in seconds (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn fresh(dir: &std::path::Path, name: &str) -> Result<Store, StoreError> {
    let store = Store::connect(&format!("sqlite://{}", dir.join(name).display())).await?;
    store.migrate().await?;
    Ok(store)
}

fn report(label: &str, n: u64, wall: f64, cpu: f64) {
    println!(
        "{label:>12}: {n} guilds in {wall:.2} s wall, {:.1} µs CPU per guild, {:.1} µs wall per guild",
        cpu / n as f64 * 1e6,
        wall / n as f64 * 1e6
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir()?;

    let store = fresh(dir.path(), "one.db").await?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for id in 1..=n {
        store.guild(id).register(&format!("guild {id}"), Some(1_000_000 + id)).await?;
    }
    report("one by one", n, t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    store.close().await;

    let store = fresh(dir.path(), "burst.db").await?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let tasks: Vec<_> = (1..=n)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.guild(id).register(&format!("guild {id}"), Some(1_000_000 + id)).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    report("burst", n, t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    assert_eq!(store.guild_count().await?, n as i64);
    store.close().await;
    Ok(())
}
