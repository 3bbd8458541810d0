//! `/kb`: a guild's knowledge sources, configured from Discord and stored in the database;
//! synced on demand with `/kb sync` and on their schedule (hourly by default) by `beacon run`.

use std::sync::Arc;

use beacon_cache::CacheKey;
use beacon_framework::ModalCtx;
use beacon_framework::reply::components::text_input;
use beacon_framework::settings::SettingChanged;
use beacon_framework::{
    Access, App, BackgroundTask, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, OptionSpec, Reply,
    SettingKind, SettingSpec, async_trait,
};
use beacon_kb::GuildSource;
use beacon_kb::source::SourceConfig;
use beacon_kb::store::KbRepo;
use beacon_kb::{KnowledgeBase, SyncReport};
use beacon_store::Schema;
use serde_json::json;
use twilight_model::channel::message::component::TextInputStyle;
use twilight_util::builder::embed::EmbedBuilder;

/// The guild's chunk size, in characters.
const CHUNK_SIZE: &str = "kb.chunk_size";
/// The guild's chunk overlap, in characters.
const CHUNK_OVERLAP: &str = "kb.chunk_overlap";

/// The `/kb` command.
pub struct KbModule {
    kb: Arc<KnowledgeBase>,
}

impl KbModule {
    /// The `/kb` module over the shared knowledge base.
    pub fn new(kb: Arc<KnowledgeBase>) -> KbModule {
        KbModule { kb }
    }
}

fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default().split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn describe(report: &SyncReport) -> String {
    format!(
        "{} documents: {} new or changed ({} chunks), {} unchanged, {} deleted",
        report.documents, report.written, report.chunks, report.unchanged, report.deleted
    )
}

/// How long a source waits for its credential (the modal) before it is forgotten.
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Where a source waits for its credential: per guild and member.
fn pending_key(guild_id: u64, user_id: u64) -> CacheKey {
    CacheKey::guild(guild_id, "kb", &format!("pending:{user_id}"))
}

impl KbModule {
    async fn save(&self, ctx: &beacon_framework::InteractionCtx, name: &str, config: &SourceConfig) -> HandlerResult {
        self.kb
            .add_source(ctx.guild_id(), name, config, None)
            .await
            .map_err(|e| HandlerError::user(format!("Knowledge base: {e}")))?;
        ctx.reply(
            Reply::text(format!("Source **{name}** saved; it syncs hourly. Sync it now with `/kb sync name:{name}`."))
                .ephemeral(),
        )
        .await
    }
}

#[async_trait]
impl Module for KbModule {
    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        use beacon_framework::privacy::PersonalData;
        let why = "the knowledge base holds the server's documents from its configured sources, not member data";
        beacon_kb::store::SCHEMA.guild_tables.iter().map(|t| PersonalData::nothing(t, why)).collect()
    }

    fn name(&self) -> &'static str {
        "kb"
    }

    fn description(&self) -> &'static str {
        "The knowledge sources support answers come from"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![beacon_kb::store::SCHEMA]
    }

    fn settings(&self) -> Vec<SettingSpec> {
        let d = beacon_kb::ChunkerConfig::default();
        vec![
            SettingSpec::new(
                CHUNK_SIZE,
                SettingKind::Int { min: 100, max: 4000 },
                json!(d.max_chars),
                "Largest passage the knowledge base cuts documents into, in characters (changing it re-chunks every document).",
            ),
            SettingSpec::new(
                CHUNK_OVERLAP,
                SettingKind::Int { min: 0, max: 1000 },
                json!(d.overlap_chars),
                "Characters consecutive passages of one section share (at most half the passage size; changing it re-chunks).",
            ),
        ]
    }

    /// A new chunk size or overlap is stored for the knowledge base (every process's listener
    /// writes the same row; the first one changes it): the guild's configured sources become due
    /// (the scheduler re-syncs, so re-chunks, them within a minute) and the sources other
    /// features provide (the FAQ) are re-synced at once.
    async fn setting_changed(&self, app: &Arc<App>, change: &SettingChanged) {
        if change.key != CHUNK_SIZE && change.key != CHUNK_OVERLAP {
            return;
        }
        let guild = app.guild(change.guild_id);
        let read = async {
            let size = app.settings.get_i64(&guild, CHUNK_SIZE).await?;
            let overlap = app.settings.get_i64(&guild, CHUNK_OVERLAP).await?;
            Ok::<_, beacon_framework::settings::SettingError>((size, overlap))
        };
        let (size, overlap) = match read.await {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(guild_id = change.guild_id, error = %e, "reading the chunk settings failed");
                return;
            }
        };
        let chunker =
            beacon_kb::ChunkerConfig { max_chars: size.max(1) as usize, overlap_chars: overlap.max(0) as usize };
        let chunker = (chunker != self.kb.default_chunker()).then_some(chunker);
        match KbRepo::new(guild).set_chunker(chunker, beacon_store::now_ms()).await {
            Ok(true) => {
                for source in app.ports.all::<dyn GuildSource>() {
                    let kb = self.kb.clone();
                    let guild_id = change.guild_id;
                    app.tasks.spawn(async move {
                        if let Err(e) = kb.sync_guild_source(guild_id, source.as_ref()).await {
                            tracing::warn!(guild_id, error = %e, "re-chunking a provided source failed");
                        }
                    });
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(guild_id = change.guild_id, error = %e, "storing the chunk settings failed"),
        }
    }

    /// Configured sources re-sync on their interval (hourly by default; checked every minute),
    /// and every source another feature provides (the FAQ) re-syncs a guild when it changes.
    fn background(&self, app: &Arc<App>) -> Vec<BackgroundTask> {
        let kb = self.kb.clone();
        let mut tasks = vec![BackgroundTask::new("kb-scheduler", async move {
            kb.run_scheduler(std::time::Duration::from_secs(60), std::future::pending()).await;
        })];
        for source in app.ports.all::<dyn GuildSource>() {
            let kb = self.kb.clone();
            tasks.push(BackgroundTask::new("kb-feed", async move { kb.follow(source).await }));
        }
        tasks
    }

    async fn purge_guild(&self, _app: &Arc<App>, guild_id: u64) -> Result<Vec<String>, HandlerError> {
        match self.kb.purge_guild(guild_id).await {
            Ok(true) => Ok(vec!["search index file removed".to_owned()]),
            Ok(false) => Ok(Vec::new()),
            Err(e) => Err(HandlerError::internal(format!("knowledge base: {e}"))),
        }
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        ctx.require(Access::Authorized)?;
        if ctx.action() != "credential" {
            return Err(HandlerError::user("This form is no longer valid."));
        }
        let key = pending_key(ctx.guild_id(), ctx.user_id());
        let Some(bytes) = ctx.app.cache.get(&key).await? else {
            return Err(HandlerError::user("That took too long: run the /kb add command again."));
        };
        let pending: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let name = pending["name"].as_str().unwrap_or_default().to_owned();
        let kind = pending["kind"].as_str().unwrap_or_default();
        let mut config = SourceConfig::from_row(kind, &pending["config"])
            .map_err(|_| HandlerError::user("That form is no longer valid: run the /kb add command again."))?;
        let mut secret = ctx.field("credential").unwrap_or_default().trim().to_owned();
        if matches!(config, SourceConfig::Sheets { .. }) && secret.starts_with('{') {
            // The key file as pasted: stored like the deployment's, in base64.
            secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret.as_bytes());
        }
        if secret.is_empty() {
            return Err(HandlerError::user("The credential is empty."));
        }
        let sealed = self
            .kb
            .seal_credential(ctx.guild_id(), &name, &secret)
            .map_err(|e| HandlerError::user(format!("Knowledge base: {e}")))?;
        match &mut config {
            SourceConfig::Notion { credential, .. } | SourceConfig::Sheets { credential, .. } => {
                *credential = Some(sealed)
            }
            SourceConfig::Folder { .. } => {}
        }
        ctx.app.cache.delete(&key).await?;
        self.save(&ctx, &name, &config).await
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let name = || OptionSpec::string("name", "A short name for this source").required().max_length(64);
        vec![
            CommandSpec::new("kb", "The knowledge sources support answers come from", Access::Authorized)
                .option(OptionSpec::subcommand("sources", "List the configured sources and their last sync", vec![]))
                .option(OptionSpec::subcommand(
                    "add-notion",
                    "Add Notion pages and/or databases by id (you give the integration token)",
                    vec![
                        name(),
                        OptionSpec::string("pages", "Page ids, comma-separated"),
                        OptionSpec::string("databases", "Database ids, comma-separated"),
                    ],
                ))
                .option(OptionSpec::subcommand(
                    "add-sheet",
                    "Add a Google Sheets range, one document per row",
                    vec![
                        name(),
                        OptionSpec::string("spreadsheet", "Spreadsheet id").required(),
                        OptionSpec::string("range", "A1 range with the header row first, e.g. FAQ!A1:C500").required(),
                        OptionSpec::string("title_column", "Header of the column that titles each row"),
                    ],
                ))
                .option(OptionSpec::subcommand(
                    "add-folder",
                    "Add a folder on the bot's host (developer team only)",
                    vec![name(), OptionSpec::string("path", "Folder of .md/.txt files on the host").required()],
                ))
                .option(OptionSpec::subcommand("remove", "Remove a source and its documents", vec![name()]))
                .option(OptionSpec::subcommand(
                    "sync",
                    "Sync now: one source, or all of them",
                    vec![OptionSpec::string("name", "The source (default: all)")],
                )),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let repo = KbRepo::new(ctx.guild.clone());
        let name = ctx.options.str("name").map(str::to_owned);
        let kb_error = |e: beacon_kb::KbError| HandlerError::user(format!("Knowledge base: {e}"));
        match ctx.options.subcommand() {
            Some("sources") => {
                let sources = repo.sources().await.map_err(kb_error)?;
                let body = if sources.is_empty() {
                    "No sources yet. Add one with /kb add-notion, /kb add-sheet or (operators) /kb add-folder."
                        .to_owned()
                } else {
                    sources
                        .iter()
                        .map(|s| {
                            let last = match (s.last_sync_at, &s.last_error) {
                                (_, Some(e)) => format!("last sync failed: {e}"),
                                (Some(at), None) => format!("synced <t:{}:R>", at / 1000),
                                (None, None) => "never synced".to_owned(),
                            };
                            format!("**{}** ({}) — {last}", s.name, s.kind)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let embed = EmbedBuilder::new().title("Knowledge sources").description(body).color(0x3B82F6).build();
                ctx.reply(Reply::embed(embed).ephemeral()).await
            }
            Some(add @ ("add-notion" | "add-sheet" | "add-folder")) => {
                let name = name.ok_or_else(|| HandlerError::user("Give the source a name."))?;
                // A source another feature feeds (the FAQ) keeps its documents under its id.
                if ctx.app.ports.all::<dyn GuildSource>().iter().any(|s| s.id().eq_ignore_ascii_case(name.trim())) {
                    return Err(HandlerError::user(format!(
                        "`{name}` is the name of a built-in source (its documents would be mixed up); choose another name."
                    )));
                }
                let config = match add {
                    "add-notion" => {
                        let (pages, databases) = (list(ctx.options.str("pages")), list(ctx.options.str("databases")));
                        if pages.is_empty() && databases.is_empty() {
                            return Err(HandlerError::user(
                                "Name the Notion pages or databases to read (`pages`, `databases`: their ids, \
                                 comma-separated). Beacon reads only what it is given.",
                            ));
                        }
                        SourceConfig::Notion { pages, databases, base_url: None, credential: None }
                    }
                    "add-sheet" => SourceConfig::Sheets {
                        spreadsheet_id: ctx.options.str("spreadsheet").unwrap_or_default().to_owned(),
                        range: ctx.options.str("range").unwrap_or_default().to_owned(),
                        title_column: ctx.options.str("title_column").map(str::to_owned),
                        base_url: None,
                        credential: None,
                    },
                    _ => {
                        // A folder reads the bot host's files: only operators may point at one.
                        ctx.require(Access::Developer)?;
                        let path = std::path::PathBuf::from(ctx.options.str("path").unwrap_or_default());
                        if !path.is_dir() {
                            return Err(HandlerError::user(format!(
                                "{} is not a folder on the bot's host.",
                                path.display()
                            )));
                        }
                        SourceConfig::Folder { path }
                    }
                };
                // Remote sources read with this server's own credential, asked for in a modal
                // (never a visible message) and stored sealed; the deployment's credential only
                // serves the servers the operator shares it with.
                let shared = ctx.app.config.kb_credentials.shared_with.contains(&ctx.guild_id());
                if matches!(config, SourceConfig::Notion { .. } | SourceConfig::Sheets { .. }) && !shared {
                    let key = pending_key(ctx.guild_id(), ctx.user_id());
                    let pending = json!({ "name": name, "config": config.to_config_json(), "kind": config.kind() });
                    ctx.app.cache.set(&key, pending.to_string().as_bytes(), PENDING_TTL).await?;
                    let (title, field) = match config {
                        SourceConfig::Notion { .. } => {
                            ("Notion integration token", "The integration's secret (secret_… or ntn_…)")
                        }
                        _ => ("Google service account", "The service-account key file (JSON, or its base64)"),
                    };
                    return ctx.responder.modal(
                        "kb:credential",
                        title,
                        vec![
                            text_input("credential", field, TextInputStyle::Paragraph, 4000)
                                .min_length(8)
                                .description("Stored encrypted; never shown again.")
                                .into(),
                        ],
                    );
                }
                self.save(&ctx, &name, &config).await
            }
            Some("remove") => {
                let name = name.ok_or_else(|| HandlerError::user("Which source?"))?;
                if !repo.remove_source(&name).await.map_err(kb_error)? {
                    return Err(HandlerError::user(format!("There is no source called **{name}**.")));
                }
                self.kb.rebuild_index(ctx.guild_id()).await.map_err(kb_error)?;
                ctx.reply(Reply::text(format!("Source **{name}** and its documents were removed.")).ephemeral()).await
            }
            Some("sync") => {
                ctx.responder.defer()?;
                let names: Vec<String> = match name {
                    Some(n) => vec![n],
                    None => repo.sources().await.map_err(kb_error)?.into_iter().map(|s| s.name).collect(),
                };
                if names.is_empty() {
                    return Err(HandlerError::user("There are no sources to sync yet."));
                }
                let mut lines = Vec::new();
                for n in names {
                    let line = match self.kb.sync_configured(ctx.guild_id(), &n, &mut |_| {}).await {
                        Ok(report) => format!("**{n}**: {}", describe(&report)),
                        Err(e) => format!("**{n}**: failed — {e}"),
                    };
                    lines.push(line);
                }
                ctx.reply(Reply::text(lines.join("\n")).ephemeral()).await
            }
            _ => Err(HandlerError::user("Unknown /kb subcommand.")),
        }
    }
}
