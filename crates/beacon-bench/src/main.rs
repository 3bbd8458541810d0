//! `beacon-bench`: the load generator and the floor programs of the benchmarks (`bench/run.sh`).
//!
//! - `beacon-bench pubkey` prints the hex Ed25519 public key the interactions are signed with
//!   (a fixed benchmark key; give it to the servers under test).
//! - `beacon-bench verify-rate` measures this machine's raw Ed25519 verify rate on one core
//!   (`ed25519-dalek`'s `verify_strict`, as Beacon verifies), the ceiling of any interactions
//!   endpoint, and the CPU it took (the thread's utime+stime ticks, so CPU-µs per verify).
//! - `beacon-bench interactions --url http://127.0.0.1:8080/interactions --levels 1,16,64,256
//!   [--cpu-pid PID]` pre-signs a pool of distinct `/status` slash-command interactions and fires
//!   them at each concurrency level, printing one JSON line per level (requests/s, p50/p99 ms,
//!   errors and, with `--cpu-pid`, the server's utime+stime ticks read from /proc right before
//!   the level's first request and right after its last answer).
//! - `beacon-bench floor-interactions --port 0` and `beacon-bench floor-gateway --url ws://…
//!   --token … [--cache]` are the floors of the interactions and gateway scenarios (see `floor`).
//!
//! ```sh
//! beacon-bench interactions --url http://127.0.0.1:8080/interactions --seconds 5
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

mod floor;

/// Seed of the benchmark's signing key: a public, throwaway key (never a real application's).
const BENCH_SEED: [u8; 32] = *b"beacon-bench-interactions-key-01";

#[derive(Debug, Parser)]
#[command(name = "beacon-bench", version, about = "Load generator of the peer benchmarks")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the hex public key interactions are signed with.
    Pubkey,
    /// Raw Ed25519 verifications per second on one core.
    VerifyRate {
        /// How long to verify.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Fire pre-signed slash-command interactions at an endpoint.
    Interactions {
        /// The endpoint, e.g. http://127.0.0.1:8080/interactions.
        #[arg(long)]
        url: String,
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
        levels: Vec<usize>,
        /// Measured seconds per level (a level also ends when its pool is used up).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Pre-signed interactions per level.
        #[arg(long, default_value_t = 60_000)]
        pool: usize,
        /// Seconds of unmeasured warm-up at concurrency 16 before the first level.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// The server's pid: report its CPU ticks over each level.
        #[arg(long)]
        cpu_pid: Option<u32>,
    },
    /// The interactions floor: a bare axum server that verifies and answers (prints `LISTENING <port>`).
    FloorInteractions {
        /// Port on 127.0.0.1 (0 = ephemeral).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Hex Ed25519 public key to verify with (default: the benchmark key).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The gateway floor: twilight's bare event loop (prints `READY <guilds>`, `COUNT <messages>`).
    FloorGateway {
        /// The gateway, e.g. fake-discord's ws://127.0.0.1:PORT.
        #[arg(long)]
        url: String,
        /// The bot token.
        #[arg(long, env = "FLOOR_TOKEN", hide_env_values = true)]
        token: String,
        /// Feed every event to twilight's in-memory cache.
        #[arg(long)]
        cache: bool,
    },
}

/// utime+stime of a process or thread (`/proc/<pid>/stat`, `/proc/thread-self/stat`) in clock
/// ticks; `None` if it cannot be read (the process is gone).
fn cpu_ticks(stat_path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis start
    // at field 3, so utime (14) and stime (15) are the 12th and 13th of them.
    let mut rest = text.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(utime + stime)
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&BENCH_SEED)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// One signed request: body and its two signature headers.
struct Signed {
    body: Vec<u8>,
    signature: String,
    timestamp: String,
}

/// A `/status` slash command in a guild, shaped like Discord's (and the testkit's) payloads.
fn interaction_body(id: u64) -> Vec<u8> {
    let (app, guild, channel, user) =
        ("1300000000000000001", "1300000000000000002", "1300000000000000003", "1300000000000000004");
    json!({
        "id": id.to_string(),
        "application_id": app,
        "type": 2,
        "token": format!("bench-token-{id}"),
        "version": 1,
        "guild_id": guild,
        "guild": {"id": guild, "locale": "en-US", "features": []},
        "channel_id": channel,
        "channel": {"id": channel, "type": 0, "guild_id": guild, "name": "general", "position": 0,
                    "permission_overwrites": [], "nsfw": false, "permissions": "2248473465835073"},
        "member": {
            "user": {"id": user, "username": "bench", "discriminator": "0", "global_name": null,
                     "avatar": null, "public_flags": 0},
            "roles": [], "nick": null, "avatar": null, "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "premium_since": null, "deaf": false, "mute": false, "flags": 0, "pending": false,
            "permissions": "2248473465835073", "communication_disabled_until": null
        },
        "data": {"id": "1300000000000000005", "name": "status", "type": 1},
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild},
        "context": 0,
        "attachment_size_limit": 26_214_400
    })
    .to_string()
    .into_bytes()
}

/// Signs `n` interactions with distinct ids starting at `first_id` (Beacon answers each id once).
fn sign_pool(key: &SigningKey, first_id: u64, n: usize) -> Vec<Signed> {
    let timestamp = now_secs().to_string();
    (0..n as u64)
        .map(|i| {
            let body = interaction_body(first_id + i);
            let mut message = Vec::with_capacity(timestamp.len() + body.len());
            message.extend_from_slice(timestamp.as_bytes());
            message.extend_from_slice(&body);
            let signature = hex::encode(key.sign(&message).to_bytes());
            Signed { body, signature, timestamp: timestamp.clone() }
        })
        .collect()
}

/// Verifies per second, and the calling thread's CPU ticks over the loop.
fn verify_rate(seconds: f64) -> (f64, Option<u64>) {
    let key = key();
    let body = interaction_body(1);
    let timestamp = now_secs().to_string();
    let mut message = timestamp.into_bytes();
    message.extend_from_slice(&body);
    let signature = key.sign(&message);
    let verifying = key.verifying_key();
    let ticks0 = cpu_ticks("/proc/thread-self/stat");
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed().as_secs_f64() < seconds {
        for _ in 0..256 {
            if verifying.verify_strict(std::hint::black_box(&message), &signature).is_ok() {
                n += 1;
            }
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let ticks = cpu_ticks("/proc/thread-self/stat").zip(ticks0).map(|(b, a)| b.saturating_sub(a));
    (rate, ticks.map(|t| t * 1_000_000 / n.max(1)))
}

/// Result of one concurrency level.
struct Level {
    requests: usize,
    errors: usize,
    elapsed: f64,
    latencies_us: Vec<u32>,
    /// The server's CPU ticks over the level (with `--cpu-pid`).
    server_ticks: Option<u64>,
}

async fn fire(
    client: &reqwest::Client,
    url: &str,
    pool: Arc<Vec<Signed>>,
    concurrency: usize,
    seconds: f64,
    cpu_stat: Option<&str>,
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let ticks0 = cpu_stat.and_then(cpu_ticks);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, url, pool, next) = (client.clone(), url.to_owned(), pool.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pool.len() || Instant::now() >= deadline {
                    break;
                }
                let s = &pool[i];
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-signature-ed25519", &s.signature)
                    .header("x-signature-timestamp", &s.timestamp)
                    .body(s.body.clone())
                    .send()
                    .await
                {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.bytes().await {
                            // An initial response of type 4 (message with content/embeds).
                            Ok(b) => status == 200 && b.windows(8).any(|w| w == b"\"type\":4"),
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                };
                if ok {
                    lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut level = Level { requests: 0, errors: 0, elapsed: 0.0, latencies_us: Vec::new(), server_ticks: None };
    let mut results = Vec::with_capacity(workers.len());
    for w in workers {
        results.push(w.await);
    }
    level.elapsed = started.elapsed().as_secs_f64();
    level.server_ticks = cpu_stat.and_then(cpu_ticks).zip(ticks0).map(|(b, a)| b.saturating_sub(a));
    for (lat, errors) in results.into_iter().flatten() {
        level.requests += lat.len() + errors;
        level.errors += errors;
        level.latencies_us.extend(lat);
    }
    level
}

fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]) / 1e3
}

async fn interactions(
    url: &str,
    levels: &[usize],
    seconds: f64,
    pool: usize,
    warmup: f64,
    cpu_pid: Option<u32>,
) -> anyhow::Result<()> {
    let cpu_stat = cpu_pid.map(|pid| format!("/proc/{pid}/stat"));
    let key = key();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    // Snowflake-shaped ids that differ between runs, so a reused database never sees a replay.
    let mut next_id = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        .saturating_sub(1_420_070_400_000))
        << 22;
    if warmup > 0.0 {
        let n = pool.min(20_000);
        let signed = Arc::new(sign_pool(&key, next_id, n));
        next_id += n as u64;
        let _ = fire(&client, url, signed, 16, warmup, None).await;
    }
    for &c in levels {
        let signed = Arc::new(sign_pool(&key, next_id, pool));
        next_id += pool as u64;
        let mut level = fire(&client, url, signed, c.max(1), seconds, cpu_stat.as_deref()).await;
        level.latencies_us.sort_unstable();
        let ok = level.requests - level.errors;
        println!(
            "{}",
            json!({
                "concurrency": c,
                "requests": level.requests,
                "ok": ok,
                "errors": level.errors,
                "seconds": level.elapsed,
                "rps": ok as f64 / level.elapsed,
                "p50_ms": percentile_ms(&level.latencies_us, 0.5),
                "p99_ms": percentile_ms(&level.latencies_us, 0.99),
                "pool_exhausted": level.requests >= pool,
                "server_cpu_ticks": level.server_ticks,
            })
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Built together with the workspace, reqwest gets rustls without a provider; the load
    // generator speaks plain HTTP, but the client still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Args::parse().cmd {
        Cmd::Pubkey => println!("{}", hex::encode(key().verifying_key().to_bytes())),
        Cmd::VerifyRate { seconds } => {
            let (rate, ticks_per_m) = tokio::task::spawn_blocking(move || verify_rate(seconds)).await?;
            println!("{}", json!({"verifies_per_sec": rate, "cpu_ticks_per_million": ticks_per_m}));
        }
        Cmd::Interactions { url, levels, seconds, pool, warmup, cpu_pid } => {
            interactions(&url, &levels, seconds, pool, warmup, cpu_pid).await?;
        }
        Cmd::FloorInteractions { port, public_key } => {
            let verifying = match public_key {
                Some(hex_key) => {
                    let bytes: [u8; 32] = hex::decode(&hex_key)
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .context("--public-key must be 64 hex digits (an Ed25519 public key)")?;
                    ed25519_dalek::VerifyingKey::from_bytes(&bytes).context("--public-key is not an Ed25519 point")?
                }
                None => key().verifying_key(),
            };
            floor::interactions(verifying, port).await?;
        }
        Cmd::FloorGateway { url, token, cache } => floor::gateway(url, token, cache).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier};

    #[test]
    fn pool_signatures_verify_with_the_printed_key() {
        let key = key();
        let pool = sign_pool(&key, 42, 3);
        let ids: Vec<_> = pool
            .iter()
            .map(|s| serde_json::from_slice::<serde_json::Value>(&s.body).map(|v| v["id"].clone()))
            .collect::<Result<_, _>>()
            .expect("bodies are JSON");
        assert_eq!(ids, vec![json!("42"), json!("43"), json!("44")]);
        for s in &pool {
            let mut message = s.timestamp.clone().into_bytes();
            message.extend_from_slice(&s.body);
            let sig: [u8; 64] = hex::decode(&s.signature).expect("hex").try_into().expect("64 bytes");
            assert!(key.verifying_key().verify(&message, &Signature::from_bytes(&sig)).is_ok());
            message.push(b' ');
            assert!(key.verifying_key().verify(&message, &Signature::from_bytes(&sig)).is_err());
        }
    }

    #[test]
    fn cpu_ticks_read_this_process_and_refuse_garbage() {
        assert!(cpu_ticks("/proc/self/stat").is_some());
        assert!(cpu_ticks("/proc/thread-self/stat").is_some());
        assert_eq!(cpu_ticks("/nonexistent/stat"), None);
        let dir = std::env::temp_dir().join(format!("beacon-bench-stat-{}", std::process::id()));
        std::fs::write(&dir, "1 (a) b) S 0 0 0 0 0 0 0 0 0 0 7 5 0 0").expect("write");
        assert_eq!(cpu_ticks(dir.to_str().expect("utf-8")), Some(12));
        std::fs::write(&dir, "1 (x) S 0").expect("write");
        assert_eq!(cpu_ticks(dir.to_str().expect("utf-8")), None);
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 51.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
