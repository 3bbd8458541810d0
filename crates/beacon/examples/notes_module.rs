//! A module author's complete example: a feature declared through the module contract and run
//! in the real app. `/memo add text:` keeps a staff note, `/memo list` shows the last ones; the
//! notes table comes from a SQL file and is declared guild-owned (a guild purge removes it),
//! `/export notes` serves them as CSV, `/status` counts them, and the privacy contract says
//! what they hold about members.
//!
//! Run it like `beacon run`, with this module added:
//! `cargo run -p beacon --example notes_module`.
//! The e2e test `module_author_example` drives it through the fake Discord.

use std::sync::Arc;

use beacon_framework::privacy::PersonalData;
use beacon_framework::{
    Access, App, CommandCtx, CommandSpec, DayRange, ExportFile, ExportSpec, Exporter, HandlerError, HandlerResult,
    Module, OptionSpec, Reply, StatusField, async_trait,
};
use beacon_store::{GuildStore, Migration, Schema};

/// The notes table: one file of SQL, the same on SQLite and PostgreSQL (`{{auto_id}}` is the
/// one difference, written once by the store).
pub const SCHEMA: Schema = Schema {
    name: "example_notes",
    migrations: &[Migration::new(1, "notes", include_str!("notes/0001_notes.sql"))],
    guild_tables: &["example_notes"],
};

/// Staff notes.
pub struct NotesModule;

/// The module's storage, always for one guild (`Repo::new(guild)`, as in beacon-tickets).
struct Repo {
    guild: GuildStore,
}

impl Repo {
    fn new(guild: GuildStore) -> Repo {
        Repo { guild }
    }

    async fn add(&self, author: u64, body: &str) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO example_notes (guild_id, author_id, body, created_at) VALUES ($1, $2, $3, $4)")
            .bind(self.guild.sql_id())
            .bind(author as i64)
            .bind(body)
            .bind(beacon_store::now_ms())
            .execute(self.guild.store().pool())
            .await
            .map_err(beacon_store::StoreError::from)?;
        Ok(())
    }

    async fn latest(&self, limit: i64) -> Result<Vec<String>, HandlerError> {
        Ok(sqlx::query_scalar("SELECT body FROM example_notes WHERE guild_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(self.guild.sql_id())
            .bind(limit)
            .fetch_all(self.guild.store().pool())
            .await
            .map_err(beacon_store::StoreError::from)?)
    }
}

#[async_trait]
impl Module for NotesModule {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn description(&self) -> &'static str {
        "Staff notes"
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![SCHEMA]
    }

    // Every guild table says what it holds about members: `/privacy export` shows a member the
    // notes they wrote, `/privacy delete` erases them (the app refuses an undeclared table).
    fn personal_data(&self) -> Vec<PersonalData> {
        vec![
            PersonalData::member(
                "example_notes",
                "staff notes the member wrote",
                "SELECT body, created_at FROM example_notes WHERE guild_id = $1 AND author_id = $2 ORDER BY id",
            )
            .erase(&["DELETE FROM example_notes WHERE guild_id = $1 AND author_id = $2"]),
        ]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("memo", "Staff notes", Access::Staff)
                .option(OptionSpec::subcommand(
                    "add",
                    "Keep a note",
                    vec![OptionSpec::string("text", "The note").required().max_length(500)],
                ))
                .option(OptionSpec::subcommand("list", "The last notes", vec![])),
        ]
    }

    fn exports(&self) -> Vec<ExportSpec> {
        vec![ExportSpec::new("notes", "Every staff note", Arc::new(NotesExport))]
    }

    async fn status(&self, _app: &Arc<App>, guild: &GuildStore) -> Vec<StatusField> {
        let count = Repo::new(guild.clone()).latest(1000).await.map(|n| n.len()).unwrap_or(0);
        vec![StatusField::new("Notes", format!("{count} kept"))]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let repo = Repo::new(ctx.guild.clone());
        match ctx.options.subcommand() {
            Some("add") => {
                let text = ctx.options.str("text").unwrap_or_default().trim();
                if text.is_empty() {
                    return Err(HandlerError::user("Write something in `text`."));
                }
                repo.add(ctx.user_id(), text).await?;
                ctx.reply(Reply::text("Noted.").ephemeral()).await
            }
            _ => {
                let notes = repo.latest(10).await?;
                let text = if notes.is_empty() { "No notes yet.".to_owned() } else { notes.join("\n") };
                ctx.reply(Reply::text(text).ephemeral()).await
            }
        }
    }
}

/// `/export notes`.
struct NotesExport;

#[async_trait]
impl Exporter for NotesExport {
    async fn export(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        _range: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError> {
        let notes = Repo::new(guild.clone()).latest(i64::MAX).await?;
        let mut csv = String::from("body\r\n");
        for n in &notes {
            csv.push_str(&format!("\"{}\"\r\n", n.replace('"', "\"\"")));
        }
        Ok(ExportFile {
            name: "notes.csv".into(),
            bytes: csv.into_bytes(),
            summary: format!("{} note(s).", notes.len()),
        })
    }
}

#[allow(dead_code)] // the e2e test uses the module, not `main`
fn main() -> anyhow::Result<()> {
    let config = Arc::new(beacon_config::Config::load(None)?);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = beacon::run::start_with(config, vec![Arc::new(NotesModule)]).await?;
        tokio::signal::ctrl_c().await?;
        running.shutdown().await;
        Ok(())
    })
}
