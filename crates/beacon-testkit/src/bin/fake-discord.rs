//! `fake-discord`: the testkit's fake Discord as a standalone server for out-of-process tests,
//! benchmarks and bots written in other languages.

use beacon_testkit::{FakeDiscord, FakeOptions, GuildSpec, MemberSpec, RoleSpec};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Serve a fake Discord (REST under /api/v10, the gateway at /, control under /_fake/).
#[derive(Debug, Parser)]
#[command(name = "fake-discord", version)]
struct Args {
    /// Port on 127.0.0.1 (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Guilds to seed, each with text channels, a member role and members.
    #[arg(long, default_value_t = 1)]
    seed_guilds: u32,
    /// Members per seeded guild.
    #[arg(long, default_value_t = 5)]
    members_per_guild: u32,
    /// Discord's OpenAPI description (default: $BEACON_DISCORD_OPENAPI; none = no schema checks).
    #[arg(long, env = "BEACON_DISCORD_OPENAPI")]
    openapi: Option<PathBuf>,
    /// Stream this many synthetic MESSAGE_CREATEs per second into seeded channels.
    #[arg(long, default_value_t = 0)]
    load_messages_per_sec: u32,
    /// Create this many new guilds per second (each dispatched as GUILD_CREATE).
    #[arg(long, default_value_t = 0)]
    load_guilds_per_sec: u32,
    /// Gateway heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 41_250)]
    heartbeat_ms: u64,
    /// Recommended shard count returned by /gateway/bot.
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// Identify max_concurrency.
    #[arg(long, default_value_t = 1)]
    max_concurrency: u32,
    /// Write the settings Beacon needs to reach this fake (`BEACON_DISCORD_*`, with its bot
    /// token, application id and public key) to this file, in `.env` format.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
}

/// What Beacon needs to talk to this fake, as `.env` lines.
fn beacon_env(fake: &FakeDiscord) -> String {
    format!(
        "BEACON_DISCORD_API_URL={}\nBEACON_DISCORD_GATEWAY_URL={}\nBEACON_DISCORD_TOKEN={}\n\
         BEACON_DISCORD_APPLICATION_ID={}\nBEACON_DISCORD_PUBLIC_KEY={}\n",
        fake.base_url(),
        fake.gateway_url(),
        fake.bot_token(),
        fake.application_id(),
        fake.public_key_hex()
    )
}

fn seed_spec(n: u32, members: u32) -> GuildSpec {
    GuildSpec {
        name: format!("Seed Guild {n}"),
        owner_id: None,
        text_channels: vec!["general".into(), "support".into()],
        roles: vec![
            RoleSpec { name: "member".into(), permissions: 0 },
            RoleSpec { name: "staff".into(), permissions: 1 << 13 },
        ],
        members: (0..members.max(1))
            .map(|i| MemberSpec {
                user_id: None,
                username: format!("member{n}_{i}"),
                roles: if i == 1 { vec!["member".into(), "staff".into()] } else { vec!["member".into()] },
            })
            .collect(),
    }
}

async fn stream_messages(fake: FakeDiscord, per_sec: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_sec)));
    let mut n: u64 = 0;
    // Picking a guild copies only that guild, so a soak over 100k guilds costs the fake little;
    // the id list is re-read every second to see guilds created meanwhile.
    let mut ids = Vec::new();
    let mut ids_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if ids.is_empty() || ids_at.elapsed() >= Duration::from_secs(1) {
            ids = fake.guild_ids();
            ids_at = tokio::time::Instant::now();
        }
        if ids.is_empty() {
            continue;
        }
        let Some(g) = fake.guild(ids[fastrand::usize(..ids.len())]) else {
            continue;
        };
        let text: Vec<_> = g.channels.iter().filter(|c| c.kind == 0).collect();
        let humans: Vec<_> = g.members.iter().filter(|m| m.user_id != fake.application_id()).collect();
        if text.is_empty() || humans.is_empty() {
            continue;
        }
        let channel = text[fastrand::usize(..text.len())].id;
        let user = humans[fastrand::usize(..humans.len())].user_id;
        n += 1;
        let content = format!("synthetic message {n}: how do I reset my password?");
        if let Err(e) = fake.send_message(g.id, channel, user, &content).await {
            eprintln!("fake-discord: load message failed: {e}");
        }
    }
}

async fn stream_guilds(fake: FakeDiscord, per_sec: u32, members: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_sec)));
    let mut n = 1_000_000;
    loop {
        tick.tick().await;
        n += 1;
        fake.create_guild(seed_spec(n, members));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let fake = FakeDiscord::start(FakeOptions {
        port: args.port,
        openapi_path: args.openapi.clone(),
        max_concurrency: args.max_concurrency,
        shards: args.shards,
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        ..FakeOptions::default()
    })
    .await?;
    for n in 1..=args.seed_guilds {
        fake.create_guild(seed_spec(n, args.members_per_guild));
    }
    if args.load_messages_per_sec > 0 {
        tokio::spawn(stream_messages(fake.clone(), args.load_messages_per_sec));
    }
    if args.load_guilds_per_sec > 0 {
        tokio::spawn(stream_guilds(fake.clone(), args.load_guilds_per_sec, args.members_per_guild));
    }
    println!("fake-discord listening on {}", fake.base_url());
    if let Some(path) = &args.env_file {
        std::fs::write(path, beacon_env(&fake))?;
        println!("fake-discord: Beacon's settings for this fake written to {}", path.display());
    } else {
        print!("fake-discord: point Beacon at it with:\n{}", beacon_env(&fake));
    }
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}
