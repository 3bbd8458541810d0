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

/// What a knowledge-base error tells the member: a refusal as it is, anything else prefixed.
fn kb_error(e: beacon_kb::KbError) -> HandlerError {
    match e {
        beacon_kb::KbError::Rejected(message) => HandlerError::user(message),
        other => HandlerError::user(format!("Knowledge base: {other}")),
    }
}

/// The source kind each `/kb add-…` subcommand adds, and the options it passes to the kind.
const ADD_COMMANDS: &[(&str, &str, &[&str])] = &[
    ("add-notion", "notion", &["pages", "databases"]),
    ("add-sheet", "sheets", &["spreadsheet", "range", "title_column"]),
    ("add-folder", "folder", &["path"]),
    ("add-website", "website", &["url"]),
];

/// A source name from a file name: its stem, in at most 64 characters.
fn name_from_file(file: &str) -> String {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    stem.chars().take(64).collect::<String>().trim().to_owned()
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
    async fn save(
        &self,
        ctx: &beacon_framework::InteractionCtx,
        name: &str,
        kind: &str,
        config: &serde_json::Value,
    ) -> HandlerResult {
        self.kb.add_source(ctx.guild_id(), name, kind, config, None).await.map_err(kb_error)?;
        ctx.reply(
            Reply::text(format!("Source **{name}** saved; it syncs hourly. Sync it now with `/kb sync name:{name}`."))
                .ephemeral(),
        )
        .await
    }

    /// `/kb upload`: the attached file, checked, stored and synced as the source `name`.
    async fn upload(&self, ctx: &CommandCtx, name: Option<String>) -> HandlerResult {
        let Some(file) = ctx.options.attachment("file") else {
            return Err(HandlerError::user("Attach the file to add (markdown, text, HTML or PDF)."));
        };
        let name = name.unwrap_or_else(|| name_from_file(&file.filename));
        if name.is_empty() {
            return Err(HandlerError::user("Give the file a source name (`name`)."));
        }
        reserved_name(ctx, &name)?;
        let limits = self.kb.upload_limits();
        if file.size > limits.max_file_bytes {
            return Err(HandlerError::user(format!(
                "**{}** is {}; files may be at most {}.",
                file.filename,
                beacon_kb::upload::megabytes(file.size),
                beacon_kb::upload::megabytes(limits.max_file_bytes)
            )));
        }
        ctx.responder.defer()?;
        let bytes =
            beacon_kb::upload::download(&file.url, &file.filename, limits.max_file_bytes).await.map_err(kb_error)?;
        let report = self.kb.upload(ctx.guild_id(), &name, &file.filename, &bytes).await.map_err(kb_error)?;
        ctx.reply(
            Reply::text(format!(
                "**{}** is the source **{name}** ({} passages); answers can use it now. Remove it with `/kb remove name:{name}`.",
                file.filename,
                report.chunks
            ))
            .ephemeral(),
        )
        .await
    }
}

/// A source another feature feeds (the FAQ) keeps its documents under its id: no configured
/// source may take that name.
fn reserved_name(ctx: &CommandCtx, name: &str) -> Result<(), HandlerError> {
    if ctx.app.ports.all::<dyn GuildSource>().iter().any(|s| s.id().eq_ignore_ascii_case(name.trim())) {
        return Err(HandlerError::user(format!(
            "`{name}` is the name of a built-in source (its documents would be mixed up); choose another name."
        )));
    }
    Ok(())
}

#[async_trait]
impl Module for KbModule {
    fn api_routes(&self, _app: &Arc<App>) -> Vec<beacon_framework::ApiRoute> {
        let kb = self.kb.clone();
        vec![
            beacon_framework::ApiRoute::new(
                axum::http::Method::GET,
                "/kb/sources",
                "Knowledge sources with their sync status",
                beacon_framework::Access::Authorized,
                axum::routing::get(api_sources),
            ),
            beacon_framework::ApiRoute::new(
                axum::http::Method::POST,
                "/kb/sources",
                "Adds (or reconfigures) a source: website, Notion or Sheets (their credential sealed); folders are the operators'",
                beacon_framework::Access::Authorized,
                axum::routing::post({
                    let kb = self.kb.clone();
                    move |ctx: beacon_framework::ApiGuild,
                          body: Result<axum::Json<AddSource>, axum::extract::rejection::JsonRejection>| {
                        let kb = kb.clone();
                        async move { api_add(kb, ctx, body).await }
                    }
                }),
            )
            .body(
                "{\"name\", \"kind\": \"website\"|\"notion\"|\"sheets\"|…, \"config\": {\"url\"|\"pages\"|\"databases\"|\"spreadsheet\"|\"range\"|\"title_column\": \"…\"}, \"credential\"?: \"…\"}",
            )
            .success(201),
            beacon_framework::ApiRoute::new(
                axum::http::Method::GET,
                "/kb/query",
                "The playground: the passages a question retrieves, with scores and sources",
                beacon_framework::Access::Authorized,
                axum::routing::get(
                    move |ctx: beacon_framework::ApiGuild,
                          axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
                        let kb = kb.clone();
                        async move { api_query(kb, ctx, q).await }
                    },
                ),
            )
            .query(&[("q", "The question"), ("k", "How many passages (1–20, default 5)")]),
            beacon_framework::ApiRoute::new(
                axum::http::Method::POST,
                "/kb/sources/{name}/sync",
                "Syncs a source now and reports what changed",
                beacon_framework::Access::Authorized,
                axum::routing::post({
                    let kb = self.kb.clone();
                    move |ctx: beacon_framework::ApiGuild,
                          axum::extract::Path(p): axum::extract::Path<std::collections::HashMap<String, String>>| {
                        let kb = kb.clone();
                        async move { api_sync(kb, ctx, p).await }
                    }
                }),
            ),
            beacon_framework::ApiRoute::new(
                axum::http::Method::DELETE,
                "/kb/sources/{name}",
                "Removes a source and its documents",
                beacon_framework::Access::Authorized,
                axum::routing::delete({
                    let kb = self.kb.clone();
                    move |ctx: beacon_framework::ApiGuild,
                          axum::extract::Path(p): axum::extract::Path<std::collections::HashMap<String, String>>| {
                        let kb = kb.clone();
                        async move { api_remove(kb, ctx, p).await }
                    }
                }),
            ),
        ]
    }

    fn pages(&self) -> Vec<beacon_framework::pages::PageSpec> {
        pages()
    }

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
        let kind = pending["kind"].as_str().unwrap_or_default().to_owned();
        let mut config = pending["config"].clone();
        if name.is_empty() || self.kb.kinds().get(&kind).is_none() || !config.is_object() {
            return Err(HandlerError::user("That form is no longer valid: run the /kb add command again."));
        }
        let secret = ctx.field("credential").unwrap_or_default().trim().to_owned();
        if secret.is_empty() {
            return Err(HandlerError::user("The credential is empty."));
        }
        let sealed = self.kb.seal_credential(ctx.guild_id(), &name, &secret).map_err(kb_error)?;
        config["credential"] = serde_json::Value::String(sealed);
        ctx.app.cache.delete(&key).await?;
        self.save(&ctx, &name, &kind, &config).await
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
                .option(OptionSpec::subcommand(
                    "add-website",
                    "Add a website: a start page or its sitemap.xml (same site only, robots.txt obeyed)",
                    vec![name(), OptionSpec::string("url", "https://… start page or sitemap.xml").required()],
                ))
                .option(OptionSpec::subcommand(
                    "upload",
                    "Add a file: markdown, text, HTML or PDF",
                    vec![
                        OptionSpec::attachment("file", "The file (.md, .txt, .html)").required(),
                        OptionSpec::string("name", "A short name for this source (default: the file name)")
                            .max_length(64),
                    ],
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
        match ctx.options.subcommand() {
            Some("sources") => {
                let sources = repo.sources().await.map_err(kb_error)?;
                let body = if sources.is_empty() {
                    "No sources yet. Add one with /kb upload, /kb add-website, /kb add-notion, /kb add-sheet or \
                     (operators) /kb add-folder."
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
            Some("upload") => self.upload(&ctx, name).await,
            Some(add) if ADD_COMMANDS.iter().any(|(sub, ..)| *sub == add) => {
                let name = name.ok_or_else(|| HandlerError::user("Give the source a name."))?;
                reserved_name(&ctx, &name)?;
                let Some((_, kind_name, fields)) = ADD_COMMANDS.iter().find(|(sub, ..)| *sub == add) else {
                    return Err(HandlerError::user("Unknown /kb subcommand."));
                };
                let kind = self.kb.kinds().require(kind_name).map_err(kb_error)?;
                // A kind reading the bot's host (a folder) is for the operators only.
                if !kind.guild_may_add() {
                    ctx.require(Access::Developer)?;
                }
                let input: beacon_kb::SourceInput =
                    fields.iter().filter_map(|f| ctx.options.str(f).map(|v| ((*f).to_owned(), v.to_owned()))).collect();
                let config = kind.parse(&input).map_err(kb_error)?;
                // Remote sources read with this server's own credential, asked for in a modal
                // (never a visible message) and stored sealed; the deployment's credential only
                // serves the servers the operator shares it with.
                let shared = ctx.app.config.kb_credentials.shared_with.contains(&ctx.guild_id());
                if let Some(prompt) = kind.credential().filter(|_| !shared) {
                    let key = pending_key(ctx.guild_id(), ctx.user_id());
                    let pending = json!({ "name": name, "config": config, "kind": kind.name() });
                    ctx.app.cache.set(&key, pending.to_string().as_bytes(), PENDING_TTL).await?;
                    return ctx.responder.modal(
                        "kb:credential",
                        prompt.title,
                        vec![
                            text_input("credential", prompt.label, TextInputStyle::Paragraph, 4000)
                                .min_length(8)
                                .description("Stored encrypted; never shown again.")
                                .into(),
                        ],
                    );
                }
                self.save(&ctx, &name, kind.name(), &config).await
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

/// The web API's `kb/sources`: each configured source with its sync status (configuration is
/// not shown: it may name private pages, and credentials are sealed).
async fn api_sources(ctx: beacon_framework::ApiGuild) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    let sources = KbRepo::new(ctx.guild.clone()).sources().await.map_err(beacon_framework::ApiError::internal)?;
    let out: Vec<_> = sources
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "kind": s.kind,
                "enabled": s.enabled,
                "sync_interval_ms": s.sync_interval_ms,
                "last_sync_at": s.last_sync_at,
                "last_error": s.last_error,
                "status": match (&s.last_error, s.last_sync_at) {
                    (Some(_), _) => "failed",
                    (None, Some(_)) => "synced",
                    (None, None) => "never_synced",
                },
            })
        })
        .collect();
    Ok(axum::Json(json!({ "sources": out })).into_response())
}

/// The web API's `kb/query`: the playground — the passages a question retrieves in this guild's
/// knowledge base, with their scores and sources.
async fn api_query(
    kb: Arc<KnowledgeBase>,
    ctx: beacon_framework::ApiGuild,
    q: std::collections::HashMap<String, String>,
) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    use beacon_framework::ApiError;
    let params = beacon_framework::QueryParams::new(&q);
    let query = params.text("q", 500)?.ok_or_else(|| ApiError::invalid("q", "q must be the question to try."))?;
    let k: usize = params.number("k", 1..=20, 5)?;
    let hits = kb.search(ctx.guild_id(), query, k).await.map_err(ApiError::internal)?;
    let passages: Vec<_> = hits
        .iter()
        .map(|h| {
            json!({
                "document": h.document_key,
                "title": h.title,
                "headings": h.heading_path,
                "text": h.text,
                "score": h.score,
                "bm25_score": h.bm25_score,
                "dense_score": h.dense_score,
                "rerank_score": h.rerank_score,
            })
        })
        .collect();
    // The verdict a member would get: the support module's confidence against this guild's
    // threshold, and the extractive answer Beacon posts when no LLM is configured.
    let threshold =
        ctx.app.settings.get_i64(&ctx.guild, crate::module::keys::MIN_CONFIDENCE).await.map_err(ApiError::internal)?
            as f32
            / 100.0;
    let confidence = hits.first().map(|h| crate::confidence::confidence(query, h)).unwrap_or(0.0);
    let abstain = hits.is_empty() || confidence < threshold;
    let answer = match hits.first() {
        Some(best) if !abstain => Some(crate::module::render_extractive(query, best, crate::i18n::Lang::En)),
        _ => None,
    };
    let verdict = if abstain {
        "Beacon would not answer: it would offer a human instead."
    } else {
        "Beacon would answer with the best passage and its source."
    };
    Ok(axum::Json(json!({
        "query": query,
        "passages": passages,
        "confidence": confidence,
        "threshold": threshold,
        "abstain": abstain,
        "verdict": verdict,
        "answer": answer,
    }))
    .into_response())
}

/// The dashboard's Knowledge base page: the sources (sync now per source) and the playground.
pub fn pages() -> Vec<beacon_framework::pages::PageSpec> {
    use beacon_framework::pages::{Field, FormField, Format, Input, PageSpec, RowAction, Section};
    vec![PageSpec {
        slug: "kb",
        title: "Knowledge base",
        intro: "Where Beacon's answers come from, and what it would answer to a question.",
        sections: vec![
            Section::Search {
                title: "Playground",
                api: "/kb/query",
                param: "q",
                label: "Question",
                list: "passages",
                heading: "title",
                body: "text",
                fields: vec![
                    Field::text("Source", "document"),
                    Field::new("Score", "score", Format::Score),
                    Field::new("BM25", "bm25_score", Format::Score),
                    Field::new("Dense", "dense_score", Format::Score),
                    Field::new("Rerank", "rerank_score", Format::Score),
                ],
                summary: vec![
                    Field::text("Verdict", "verdict"),
                    Field::new("Confidence", "confidence", Format::Score),
                    Field::new("Threshold", "threshold", Format::Score),
                    Field::new("Answer (as posted in Discord)", "answer", Format::Markdown),
                ],
            },
            Section::Table {
                title: "Sources",
                api: "/kb/sources",
                list: "sources",
                columns: vec![
                    Field::text("Name", "name"),
                    Field::text("Kind", "kind"),
                    Field::text("Status", "status"),
                    Field::new("Last sync", "last_sync_at", Format::Time),
                    Field::text("Last error", "last_error"),
                ],
                filters: vec![],
                link: None,
                action: Some(RowAction { label: "Sync now", api: "/kb/sources/{name}/sync" }),
                empty: "No source yet: add one below, or with /kb add in Discord.",
            },
            Section::Form {
                title: "Add a website",
                api: "/kb/sources",
                help: "Beacon reads the page at this address and the pages it links to on the same site.",
                fixed: &[("kind", "website")],
                fields: vec![
                    source_name_field(),
                    FormField {
                        name: "config.url",
                        label: "Address",
                        help: "The https:// address of the first page.",
                        input: Input::Url,
                        required: true,
                    },
                ],
                submit: "Add the website",
                folded: true,
            },
            Section::Form {
                title: "Add Notion pages",
                api: "/kb/sources",
                help: "Share the pages or databases with your Notion integration first, then paste their ids.",
                fixed: &[("kind", "notion")],
                fields: vec![
                    source_name_field(),
                    FormField {
                        name: "config.pages",
                        label: "Page ids",
                        help: "Separated by commas.",
                        input: Input::Text,
                        required: false,
                    },
                    FormField {
                        name: "config.databases",
                        label: "Database ids",
                        help: "Separated by commas.",
                        input: Input::Text,
                        required: false,
                    },
                    credential_field("The integration's secret (secret_… or ntn_…)."),
                ],
                submit: "Add the Notion pages",
                folded: true,
            },
            Section::Form {
                title: "Add a Google Sheet",
                api: "/kb/sources",
                help: "Each row becomes a document: its title from one column, its text from the others.",
                fixed: &[("kind", "sheets")],
                fields: vec![
                    source_name_field(),
                    FormField {
                        name: "config.spreadsheet",
                        label: "Spreadsheet id",
                        help: "The long id in the sheet's address, between /d/ and /edit.",
                        input: Input::Text,
                        required: true,
                    },
                    FormField {
                        name: "config.range",
                        label: "Range",
                        help: "For example FAQ!A1:C (the first row holds the column names).",
                        input: Input::Text,
                        required: true,
                    },
                    FormField {
                        name: "config.title_column",
                        label: "Title column",
                        help: "The column whose value titles each row.",
                        input: Input::Text,
                        required: false,
                    },
                    credential_field("The service-account key: its JSON, or that JSON in base64."),
                ],
                submit: "Add the sheet",
                folded: true,
            },
        ],
    }]
}

fn source_name_field() -> beacon_framework::pages::FormField {
    beacon_framework::pages::FormField {
        name: "name",
        label: "Name",
        help: "How Beacon names this source in answers and in /kb (1 to 64 characters).",
        input: beacon_framework::pages::Input::Text,
        required: true,
    }
}

fn credential_field(help: &'static str) -> beacon_framework::pages::FormField {
    beacon_framework::pages::FormField {
        name: "credential",
        label: "Credential",
        help,
        input: beacon_framework::pages::Input::Secret,
        required: false,
    }
}

fn source_name(p: &std::collections::HashMap<String, String>) -> Result<String, beacon_framework::ApiError> {
    p.get("name")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| beacon_framework::ApiError::invalid("name", "name must be a knowledge source's name."))
}

/// The web API's `POST kb/sources/{name}/sync`: syncs one source now and reports what changed.
async fn api_sync(
    kb: Arc<KnowledgeBase>,
    ctx: beacon_framework::ApiGuild,
    p: std::collections::HashMap<String, String>,
) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    use beacon_framework::ApiError;
    let name = source_name(&p)?;
    let known = KbRepo::new(ctx.guild.clone()).sources().await.map_err(ApiError::internal)?;
    if !known.iter().any(|s| s.name == name) {
        return Err(ApiError::not_found(format!("There is no source called `{name}`.")));
    }
    match kb.sync_configured(ctx.guild_id(), &name, &mut |_| {}).await {
        Ok(r) => Ok(axum::Json(json!({
            "name": name,
            "documents": r.documents,
            "written": r.written,
            "chunks": r.chunks,
            "unchanged": r.unchanged,
            "deleted": r.deleted,
        }))
        .into_response()),
        // The source's own failure (a revoked token, a missing page) is the guild's to fix.
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "sync_failed",
            format!("The sync of `{name}` failed: {e}"),
        )),
    }
}

/// The web API's `DELETE kb/sources/{name}`: removes a source and its documents.
/// The body of `POST kb/sources`.
#[derive(serde::Deserialize)]
struct AddSource {
    name: String,
    kind: String,
    #[serde(default)]
    config: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    credential: Option<String>,
}

/// The web API's `POST kb/sources`: a source of a kind a guild may add alone, validated by the
/// kind (errors name the `config.…` field), its credential (Notion, Sheets) sealed with the
/// deployment's keyring for this guild and name before it is stored; never shown again.
async fn api_add(
    kb: Arc<KnowledgeBase>,
    ctx: beacon_framework::ApiGuild,
    body: Result<axum::Json<AddSource>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    use beacon_framework::ApiError;
    let axum::Json(body) = body.map_err(|e| {
        ApiError::invalid("body", format!("Send {{\"name\", \"kind\", \"config\": {{…}}, \"credential\"?}}: {e}"))
    })?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::invalid("name", "name must be 1 to 64 characters."));
    }
    if ctx.app.ports.all::<dyn GuildSource>().iter().any(|s| s.id().eq_ignore_ascii_case(&name)) {
        return Err(ApiError::invalid(
            "name",
            format!(
                "`{name}` is the name of a built-in source (its documents would be mixed up); choose another name."
            ),
        ));
    }
    let Some((_, _, fields)) = ADD_COMMANDS.iter().find(|(_, kind, _)| *kind == body.kind) else {
        let kinds: Vec<&str> = ADD_COMMANDS.iter().map(|(_, kind, _)| *kind).collect();
        let upload = if body.kind == "upload" { " Files are uploaded with /kb upload." } else { "" };
        return Err(ApiError::invalid("kind", format!("kind must be one of {}.{upload}", kinds.join(", "))));
    };
    let kind = kb.kinds().require(&body.kind).map_err(|e| ApiError::invalid("kind", e.to_string()))?;
    // A kind reading the bot's host (a folder) is for the operators only, who change nothing
    // through the API.
    if !kind.guild_may_add() {
        return Err(ApiError::forbidden(format!(
            "A {} source reads the bot's own host: only the operators add it (/kb add-folder).",
            body.kind
        ))
        .with_field("kind"));
    }
    if let Some(unknown) = body.config.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!("config.{unknown}"),
            format!("A {} source takes {}.", body.kind, fields.join(", ")),
        ));
    }
    let mut config = kind.parse(&body.config).map_err(|e| {
        let message = match e {
            beacon_kb::KbError::Rejected(message) => message,
            other => other.to_string(),
        };
        let lower = message.to_lowercase();
        // The field the message names; a kind with one field has no other to blame.
        let named = fields.iter().find(|f| lower.contains(&f.replace('_', " ")) || lower.contains(*f));
        let field = named.or(if fields.len() == 1 { fields.first() } else { None });
        ApiError::invalid(field.map_or_else(|| "config".to_owned(), |f| format!("config.{f}")), message)
    })?;
    let shared = ctx.app.config.kb_credentials.shared_with.contains(&ctx.guild_id());
    let secret = body.credential.as_deref().map(str::trim).filter(|c| !c.is_empty());
    match (kind.credential(), secret) {
        (Some(_), Some(secret)) => {
            if secret.chars().count() < 8 || secret.chars().count() > 4000 {
                return Err(ApiError::invalid("credential", "credential must be 8 to 4000 characters."));
            }
            let sealed = kb.seal_credential(ctx.guild_id(), &name, secret).map_err(ApiError::internal)?;
            config["credential"] = serde_json::Value::String(sealed);
        }
        (Some(prompt), None) if !shared => {
            return Err(ApiError::invalid(
                "credential",
                format!("A {} source needs `credential`: {}.", body.kind, prompt.label),
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("credential", format!("A {} source takes no credential.", body.kind)));
        }
        _ => {}
    }
    kb.add_source(ctx.guild_id(), &name, kind.name(), &config, None).await.map_err(ApiError::internal)?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(json!({ "name": name, "kind": kind.name() }))).into_response())
}

async fn api_remove(
    kb: Arc<KnowledgeBase>,
    ctx: beacon_framework::ApiGuild,
    p: std::collections::HashMap<String, String>,
) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    use beacon_framework::ApiError;
    let name = source_name(&p)?;
    if !KbRepo::new(ctx.guild.clone()).remove_source(&name).await.map_err(ApiError::internal)? {
        return Err(ApiError::not_found(format!("There is no source called `{name}`.")));
    }
    kb.rebuild_index(ctx.guild_id()).await.map_err(ApiError::internal)?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
