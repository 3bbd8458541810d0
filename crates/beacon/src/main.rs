//! `beacon`: one binary, roles by subcommand.

use beacon::{backends, backup_cli, health_cli, kb_cli, llm_cli, run, telemetry};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use beacon_config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "beacon", version, about = "Beacon: a self-hostable Discord support platform")]
struct Cli {
    /// Configuration file (default: ./beacon.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: HTTP server, gateway (with a token), handlers, jobs.
    Run,
    /// Scale-out: run gateway shards only, appending their events to the Redis streams
    /// (needs BEACON_REDIS_URL). Several gateway processes split the shards between them.
    Gateway {
        /// Shards to run, first-last (e.g. 0-15). Default: from POD_NAME's ordinal and
        /// --replicas, else every shard.
        #[arg(long, value_name = "A-B")]
        shards: Option<String>,
        /// The bot's total shard count (default: BEACON_DISCORD_SHARD_COUNT, else Discord's
        /// recommendation; needed with --shards or --replicas).
        #[arg(long, value_name = "N")]
        total: Option<u32>,
        /// Gateway StatefulSet replicas: pod k of M (k from POD_NAME, e.g. beacon-gateway-2)
        /// runs the k-th of M equal shard ranges.
        #[arg(long, env = "BEACON_GATEWAY_REPLICAS", value_name = "M")]
        replicas: Option<u32>,
        /// The pod's name (Kubernetes sets it through the downward API).
        #[arg(long, env = "POD_NAME", value_name = "NAME")]
        pod_name: Option<String>,
    },
    /// Scale-out: handle the events of the Redis streams, the durable jobs and the modules'
    /// background tasks; run any number.
    Worker {
        /// The pod's name, part of this worker's consumer name.
        #[arg(long, env = "POD_NAME", value_name = "NAME")]
        pod_name: Option<String>,
    },
    /// Scale-out: the HTTP interactions endpoint, health, metrics and the web API.
    Web {
        /// The pod's name.
        #[arg(long, env = "POD_NAME", value_name = "NAME")]
        pod_name: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Load a folder of markdown/text files into a guild's knowledge base (unchanged files are skipped).
    Ingest {
        /// Guild whose knowledge base to fill (default: the local one, 0).
        #[arg(long, value_name = "ID", default_value_t = kb_cli::LOCAL_GUILD)]
        guild: u64,
        /// Folder of .md/.txt files.
        path: PathBuf,
    },
    /// Answer a question from a knowledge base: the best passages with sources and scores, then,
    /// with an LLM configured, the grounded answer with its citations.
    Ask {
        #[arg(long, value_name = "ID", default_value_t = kb_cli::LOCAL_GUILD)]
        guild: u64,
        /// How many passages to show.
        #[arg(long, default_value_t = 5)]
        k: usize,
        question: String,
    },
    /// Score retrieval on a BEIR-style folder (corpus.jsonl, queries.jsonl, qrels.tsv).
    Eval {
        dir: PathBuf,
        /// Print one JSON object as the last line.
        #[arg(long)]
        json: bool,
        /// Questions the corpus cannot answer (JSONL with `text`): adds answered_rate and abstain_rate.
        #[arg(long, value_name = "FILE.jsonl")]
        negatives: Option<PathBuf>,
        /// Confidence threshold for the rates (default: the support module's default).
        #[arg(long)]
        threshold: Option<f32>,
    },
    /// The LLM service: its pricing table and each guild's budget.
    Llm {
        #[command(subcommand)]
        action: LlmAction,
    },
    /// Manage the slash commands registered with Discord.
    Commands {
        #[command(subcommand)]
        action: CommandsAction,
    },
    /// Operator actions on one guild's data.
    Guild {
        #[command(subcommand)]
        action: GuildAction,
    },
    /// Print the link that adds the bot to a server, asking only for the permissions the
    /// modules need.
    Invite {
        /// The application's id (default: BEACON_DISCORD_APPLICATION_ID).
        #[arg(long, value_name = "ID")]
        client_id: Option<u64>,
    },
    /// Copy the SQLite database (while Beacon runs), the data folder's files and the secret key
    /// into a new folder. PostgreSQL is dumped with pg_dump (README, Backups).
    Backup {
        /// The backup folder to create (absent or empty).
        dir: PathBuf,
    },
    /// Restore a backup folder into this fresh install (data folder and SQLite database), then
    /// apply the migrations.
    Restore {
        /// The folder `beacon backup` wrote.
        dir: PathBuf,
    },
    /// Probe this install's readiness (`GET /health/ready` on BEACON_HTTP_ADDR): exit 0 when
    /// ready, 1 otherwise. For container health checks.
    Health,
}

#[derive(Subcommand)]
enum GuildAction {
    /// Delete everything Beacon holds for a guild: every row of every module, its knowledge-base
    /// index, its transcripts and its audit log. Asks for the id again unless --yes.
    Purge {
        /// The guild's id.
        id: u64,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum CommandsAction {
    /// Bulk-overwrite the commands from the modules' declarations: globally, or in one guild.
    Sync {
        /// Register in this guild only (instant; for development). The commands that also work in
        /// DMs (`/privacy`) become the global list, since guild commands never show in DMs.
        #[arg(long, value_name = "ID")]
        guild: Option<u64>,
    },
}

#[derive(Subcommand)]
enum LlmAction {
    /// Model prices used for LLM cost accounting (micro-dollars per million tokens).
    Pricing {
        #[command(subcommand)]
        action: PricingAction,
    },
    /// A guild's AI budget as the operator sets it (above or below BEACON_LLM_GUILD_DAILY_BUDGET);
    /// the guild can lower it further with `/usage limit`, never raise it.
    Budget {
        #[command(subcommand)]
        action: BudgetAction,
    },
}

#[derive(Subcommand)]
enum BudgetAction {
    /// Print the guild's budget, who set it, and what it spent today.
    Show {
        /// The guild's id.
        guild: u64,
    },
    /// Set the guild's budget; every limit not given is unlimited.
    Set {
        /// The guild's id.
        guild: u64,
        /// US dollars per UTC day (e.g. 5 or 0.50).
        #[arg(long, value_name = "USD")]
        daily_usd: Option<String>,
        /// Tokens (input + output) per UTC day.
        #[arg(long, value_name = "N")]
        daily_tokens: Option<u64>,
        /// AI calls per member per UTC day.
        #[arg(long, value_name = "N")]
        member_daily_calls: Option<u64>,
        /// Tokens per member per UTC day.
        #[arg(long, value_name = "N")]
        member_daily_tokens: Option<u64>,
    },
    /// Remove the guild's budget: the deployment's default applies again.
    Clear {
        /// The guild's id.
        guild: u64,
    },
}

#[derive(Subcommand)]
enum PricingAction {
    /// Print every model's price.
    List,
    /// Add or replace a model's price: `set MODEL IN OUT` (micro-dollars per million tokens;
    /// 2500000 is $2.50/MTok).
    Set {
        /// Provider (default: BEACON_LLM_PROVIDER).
        #[arg(long)]
        provider: Option<String>,
        /// Price of cached input tokens (default: the stored one, else IN).
        #[arg(long, value_name = "MICROS")]
        cached_input: Option<u64>,
        /// Price of cache-write tokens (default: the stored one, else IN).
        #[arg(long, value_name = "MICROS")]
        cache_write: Option<u64>,
        model: String,
        /// Input price, micro-dollars per million tokens.
        #[arg(value_name = "IN")]
        input: u64,
        /// Output price, micro-dollars per million tokens.
        #[arg(value_name = "OUT")]
        output: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one process-wide rustls provider, before any HTTP client (Discord, CDN, LLM providers,
    // knowledge sources, S3) exists; libraries only check that it is there.
    beacon_http::install_crypto_provider();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("beacon: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = backends::llm_config(&config) {
        eprintln!("beacon: configuration error: {e:#}");
        return ExitCode::from(2);
    }
    if let Err(e) = telemetry::init(&config) {
        eprintln!("beacon: configuration error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("beacon: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Commands that search the knowledge base fetch the embedding model once when none is set.
    let config = match cli.command {
        Command::Run
        | Command::Worker { .. }
        | Command::Web { .. }
        | Command::Ingest { .. }
        | Command::Ask { .. }
        | Command::Eval { .. } => runtime.block_on(backends::prepare_embedding_model(config)),
        _ => config,
    };
    let config = Arc::new(config);
    let result =
        runtime.block_on(async move {
            match cli.command {
                Command::Run => run::run(config).await,
                Command::Gateway { shards, total, replicas, pod_name } => {
                    let role = gateway_role(&config, shards.as_deref(), total, replicas, pod_name.as_deref())?;
                    run::run_role(config, role, run::process_name(pod_name.as_deref())).await
                }
                Command::Worker { pod_name } => {
                    run::run_role(config, run::Role::Worker, run::process_name(pod_name.as_deref())).await
                }
                Command::Web { pod_name } => {
                    run::run_role(config, run::Role::Web, run::process_name(pod_name.as_deref())).await
                }
                Command::Migrate => migrate(config).await,
                Command::Ingest { guild, path } => kb_cli::ingest(config, guild, &path).await,
                Command::Ask { guild, k, question } => kb_cli::ask(config, guild, &question, k).await,
                Command::Eval { dir, json, negatives, threshold } => {
                    kb_cli::eval(config, &dir, json, negatives.as_deref(), threshold).await
                }
                Command::Commands { action: CommandsAction::Sync { guild } } => sync_commands(config, guild).await,
                Command::Guild { action: GuildAction::Purge { id, yes } } => purge_guild(config, id, yes).await,
                Command::Invite { client_id } => invite(config, client_id).await,
                Command::Backup { dir } => backup_cli::backup(config, &dir).await,
                Command::Restore { dir } => backup_cli::restore(config, &dir).await,
                Command::Health => health_cli::health(config).await,
                Command::Llm { action: LlmAction::Pricing { action: PricingAction::List } } => {
                    llm_cli::pricing_list(config).await
                }
                Command::Llm {
                    action:
                        LlmAction::Pricing {
                            action: PricingAction::Set { provider, cached_input, cache_write, model, input, output },
                        },
                } => {
                    let given = llm_cli::PriceInput { provider, model, input, output, cached_input, cache_write };
                    llm_cli::pricing_set(config, given).await
                }
                Command::Llm { action: LlmAction::Budget { action: BudgetAction::Show { guild } } } => {
                    llm_cli::budget_show(config, guild).await
                }
                Command::Llm {
                    action:
                        LlmAction::Budget {
                            action:
                                BudgetAction::Set {
                                    guild,
                                    daily_usd,
                                    daily_tokens,
                                    member_daily_calls,
                                    member_daily_tokens,
                                },
                        },
                } => {
                    let given =
                        llm_cli::BudgetInput { daily_usd, daily_tokens, member_daily_calls, member_daily_tokens };
                    llm_cli::budget_set(config, guild, given).await
                }
                Command::Llm { action: LlmAction::Budget { action: BudgetAction::Clear { guild } } } => {
                    llm_cli::budget_clear(config, guild).await
                }
            }
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "beacon stopped with an error");
            eprintln!("beacon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The gateway role's shards: `--shards A-B`, or pod k of `--replicas` M (k from `POD_NAME`),
/// or every shard.
fn gateway_role(
    config: &Config,
    shards: Option<&str>,
    total: Option<u32>,
    replicas: Option<u32>,
    pod_name: Option<&str>,
) -> anyhow::Result<run::Role> {
    use beacon_discord::gateway::{ordinal_shard_range, parse_shard_range, pod_ordinal};
    let total = total.or(config.discord.shard_count);
    let need_total = || {
        total.ok_or_else(|| {
            anyhow::anyhow!(
                "splitting shards between gateways needs the total: pass --total N or set BEACON_DISCORD_SHARD_COUNT"
            )
        })
    };
    let range = match (shards, replicas) {
        (Some(_), Some(_)) => anyhow::bail!("give either --shards or --replicas, not both"),
        (Some(text), None) => Some(parse_shard_range(text, need_total()?)?),
        (None, Some(replicas)) => {
            let pod =
                pod_name.ok_or_else(|| anyhow::anyhow!("--replicas needs POD_NAME (the StatefulSet pod's name)"))?;
            Some(ordinal_shard_range(pod_ordinal(pod)?, replicas, need_total()?)?)
        }
        (None, None) => None,
    };
    Ok(run::Role::Gateway { shards: range, total })
}

async fn migrate(config: Arc<Config>) -> anyhow::Result<()> {
    let store = backends::open_store(&config).await?;
    let app = run::build_app(config, store).await?;
    drop(app);
    tracing::info!("migrations applied");
    println!("migrations applied");
    Ok(())
}

async fn purge_guild(config: Arc<Config>, guild_id: u64, yes: bool) -> anyhow::Result<()> {
    let store = backends::open_store(&config).await?;
    let app = run::build_app(config, store).await?;
    let record = app.guild(guild_id).get().await.context("reading the guild")?;
    let name = record.as_ref().map(|r| r.name.as_str()).unwrap_or("(no guild record)");
    if record.as_ref().is_some_and(|r| r.left_at.is_none()) {
        eprintln!(
            "note: the bot is still in guild {guild_id} ({name}); it will be registered again when it next connects"
        );
    }
    if !yes {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to purge guild {guild_id} without confirmation: run it in a terminal, or add --yes"
            );
        }
        print!("This deletes everything Beacon holds for guild {guild_id} ({name}). Type the id again to confirm: ");
        std::io::stdout().flush().context("writing the prompt")?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the confirmation")?;
        if line.trim() != guild_id.to_string() {
            anyhow::bail!("not confirmed; nothing was deleted");
        }
    }
    let report = app.purge_guild(guild_id).await.context("purging the guild")?;
    if report.is_empty() {
        println!("guild {guild_id}: nothing was stored");
    } else {
        println!("guild {guild_id} purged:");
        for line in report {
            println!("  {line}");
        }
    }
    Ok(())
}

async fn invite(config: Arc<Config>, client_id: Option<u64>) -> anyhow::Result<()> {
    let Some(client_id) = client_id.or(config.discord.application_id) else {
        anyhow::bail!("invite needs the application id: set BEACON_DISCORD_APPLICATION_ID or pass --client-id");
    };
    let store = backends::open_store(&config).await?;
    let app = run::build_app(config, store).await?;
    println!("{}", app.invite_url(client_id));
    Ok(())
}

async fn sync_commands(config: Arc<Config>, guild: Option<u64>) -> anyhow::Result<()> {
    if config.discord.token.is_none() {
        anyhow::bail!("commands sync needs BEACON_DISCORD_TOKEN");
    }
    let store = backends::open_store(&config).await?;
    let app = run::build_app(config, store).await?;
    let count = app.sync_commands(guild).await.context("syncing commands with Discord")?;
    match guild {
        Some(g) => println!("synced {count} commands to guild {g}"),
        None => println!("synced {count} global commands"),
    }
    Ok(())
}
