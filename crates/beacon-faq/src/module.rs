//! `/faq`: the Discord side of the FAQ.

use std::sync::Arc;

use beacon_framework::app::App;
use beacon_framework::command::OptionKind;
use beacon_framework::reply::components::{button, row, text_input};
use beacon_framework::{
    Access, AutocompleteCtx, Choice, CommandCtx, CommandSpec, ComponentCtx, HandlerError, HandlerResult, ModalCtx,
    Module, OptionSpec, Reply, async_trait,
};
use beacon_framework::{AnswerCorrections, DayRange, ExportFile, ExportSpec, Exporter, Port};
use beacon_store::{GuildStore, Schema, now_ms};
use tokio::sync::{OnceCell, broadcast};
use twilight_model::application::interaction::InteractionData;
use twilight_model::application::interaction::application_command::{CommandDataOption, CommandOptionValue};
use twilight_model::channel::message::Component;
use twilight_model::channel::message::component::{ButtonStyle, TextInputStyle};
use twilight_model::channel::message::embed::Embed;
use twilight_model::http::attachment::Attachment;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};

use crate::csvio::export_csv;
use crate::download::{MAX_IMPORT_BYTES, download};
use crate::error::FaqError;
use crate::index::normalize_term;
use crate::model::{EntryInput, FaqChanged, FaqEntry, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, split_tags};
use crate::repo::{FaqRepo, Feeds, SCHEMA};
use crate::service::FaqService;
use crate::source::FaqSource;

/// Results shown by `/faq search`.
const SEARCH_RESULTS: usize = 5;
/// Suggestions offered while typing.
const SUGGESTIONS: usize = 10;
/// Entries per page of `/faq list`.
const LIST_PAGE: u32 = 10;
/// Terms shown by `/faq gaps`.
const GAPS_SHOWN: u32 = 10;
/// Brand colour of Beacon's embeds.
const COLOR: u32 = 0x3B82F6;

/// The FAQ module: `/faq search|view|list|add|edit|remove|import|export|gaps`.
///
/// Keep the module value to hand out change notifications ([`FaqModule::subscribe`]) before
/// giving it to the app builder.
pub struct FaqModule {
    feeds: Feeds,
    service: Arc<OnceCell<Arc<FaqService>>>,
}

impl Default for FaqModule {
    fn default() -> Self {
        FaqModule::new()
    }
}

impl FaqModule {
    /// The module, with its own change feeds.
    pub fn new() -> FaqModule {
        FaqModule { feeds: Feeds::default(), service: Arc::default() }
    }

    /// Every stored change (add, edit, remove, import) of this process, in every guild.
    pub fn subscribe(&self) -> broadcast::Receiver<FaqChanged> {
        self.feeds.subscribe()
    }

    async fn service(&self, app: &App) -> Result<Arc<FaqService>, FaqError> {
        service(&self.service, &self.feeds, app).await
    }
}

pub(crate) async fn service(
    cell: &OnceCell<Arc<FaqService>>,
    feeds: &Feeds,
    app: &App,
) -> Result<Arc<FaqService>, FaqError> {
    cell.get_or_try_init(|| async {
        let repo = FaqRepo::with_feeds(app.store.clone(), feeds.clone());
        Ok(Arc::new(FaqService::new(repo)))
    })
    .await
    .cloned()
}

/// Staff's corrections of Beacon's answers become FAQ entries (tagged `correction`), which reach
/// the knowledge base through the FAQ's feed like any other entry.
struct Corrections {
    feeds: Feeds,
    service: Arc<OnceCell<Arc<FaqService>>>,
}

#[async_trait]
impl AnswerCorrections for Corrections {
    async fn available(&self, app: &Arc<App>, guild_id: u64) -> bool {
        match app.module_named("faq") {
            Some(faq) => app.module_enabled(&app.guild(guild_id), faq.as_ref()).await.unwrap_or(false),
            None => false,
        }
    }

    async fn correct(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        question: &str,
        answer: &str,
    ) -> Result<String, HandlerError> {
        let service = service(&self.service, &self.feeds, app).await?;
        let question = truncate(question.trim(), MAX_QUESTION_CHARS);
        let input = EntryInput::new(&question, answer, &split_tags("correction"), false)?;
        let entry = service.add(&app.guild(guild_id), &input, staff_id).await?;
        Ok(format!("FAQ entry #{}", entry.id))
    }
}

fn id_option(description: &'static str) -> OptionSpec {
    OptionSpec::string("id", description).required().autocomplete().max_length(100)
}

fn pinned_option() -> OptionSpec {
    OptionSpec::boolean("pinned", "Show it first in lists and suggestions")
}

/// Reads an entry number from `12`, `#12` or a suggestion like `#12 · question`.
pub fn parse_entry_ref(text: &str) -> Option<u64> {
    let t = text.trim().trim_start_matches('#');
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    let rest = &t[digits.len()..];
    if digits.is_empty() || !(rest.is_empty() || rest.starts_with([' ', '·'])) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// One line of an answer for previews.
fn snippet(text: &str, max: usize) -> String {
    truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

fn entry_embed(entry: &FaqEntry) -> Result<Embed, HandlerError> {
    let mut embed = EmbedBuilder::new()
        .color(COLOR)
        .title(truncate(&format!("#{} · {}", entry.id, entry.question), 256))
        .description(truncate(&entry.answer, 4096));
    if !entry.tags.is_empty() {
        embed = embed.field(EmbedFieldBuilder::new("Tags", entry.tags.join(", ")).inline());
    }
    let pinned = if entry.pinned { "Pinned · " } else { "" };
    let views = entry.views;
    embed = embed.footer(EmbedFooterBuilder::new(format!(
        "{pinned}FAQ #{} · {views} view{}",
        entry.id,
        if views == 1 { "" } else { "s" }
    )));
    embed.validate().map(|e| e.build()).map_err(HandlerError::internal)
}

/// The add/edit form, prefilled with `entry` when editing.
fn entry_form(entry: Option<&FaqEntry>) -> Vec<Component> {
    vec![
        text_input("question", "Question", TextInputStyle::Short, MAX_QUESTION_CHARS as u16)
            .value(entry.map(|e| e.question.clone()))
            .into(),
        text_input("answer", "Answer", TextInputStyle::Paragraph, MAX_ANSWER_CHARS as u16)
            .value(entry.map(|e| e.answer.clone()))
            .into(),
        text_input("tags", "Tags (comma-separated, optional)", TextInputStyle::Short, 200)
            .optional()
            .value(entry.map(|e| e.tags.join(", ")))
            .into(),
    ]
}

/// `1` pinned, `0` not pinned, `-` unchanged: carried in the form's custom id.
fn pin_code(pinned: Option<bool>) -> &'static str {
    match pinned {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    }
}

/// The attachment option's file, from the interaction's resolved data.
fn attached_file(ctx: &CommandCtx) -> Option<(String, String, u64)> {
    fn find(
        options: &[CommandDataOption],
    ) -> Option<twilight_model::id::Id<twilight_model::id::marker::AttachmentMarker>> {
        options.iter().find_map(|o| match &o.value {
            CommandOptionValue::Attachment(id) => Some(*id),
            CommandOptionValue::SubCommand(inner) | CommandOptionValue::SubCommandGroup(inner) => find(inner),
            _ => None,
        })
    }
    let Some(InteractionData::ApplicationCommand(data)) = &ctx.interaction.data else {
        return None;
    };
    let id = find(&data.options)?;
    let file = data.resolved.as_ref()?.attachments.get(&id)?;
    Some((file.url.clone(), file.filename.clone(), file.size))
}

impl FaqModule {
    async fn search(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> HandlerResult {
        let query = ctx.options.str("query").unwrap_or_default().trim().to_owned();
        // A picked suggestion arrives as `#12`: show that entry.
        if query.starts_with('#')
            && let Some(id) = parse_entry_ref(&query)
            && let Some(entry) = service.repo.get(&ctx.guild, id).await?
        {
            return self.show(ctx, service, entry, true).await;
        }
        let hits = service.search(&ctx.guild, &query, SEARCH_RESULTS).await?;
        // Redacted before normalising: normalising would break an address into plain words.
        let term = normalize_term(&beacon_pii::redact(&query));
        if !term.is_empty()
            && let Err(e) = service.repo.log_search(&ctx.guild, &term, hits.len()).await
        {
            tracing::warn!(error = %e, "faq search log failed");
        }
        if hits.is_empty() {
            return ctx
                .reply(
                    Reply::text(format!(
                        "Nothing in the FAQ matches “{}”. Try other words, or ask the staff.",
                        truncate(&query, 100)
                    ))
                    .ephemeral(),
                )
                .await;
        }
        let mut lines = Vec::new();
        let mut buttons = Vec::new();
        for (n, hit) in hits.iter().enumerate() {
            let answer = match service.repo.get(&ctx.guild, hit.id).await? {
                Some(e) => snippet(&e.answer, 140),
                None => continue,
            };
            lines.push(format!("**{}. {}** `#{}`\n{}", n + 1, truncate(&hit.question, 200), hit.id, answer));
            buttons.push(button(
                format!("faq:view:{}", hit.id),
                format!("{}. #{}", n + 1, hit.id),
                ButtonStyle::Secondary,
            ));
        }
        let embed = EmbedBuilder::new()
            .color(COLOR)
            .title(truncate(&format!("FAQ results for “{query}”"), 256))
            .description(lines.join("\n\n"))
            .footer(EmbedFooterBuilder::new("Press a button to read an answer, or use /faq view id."))
            .validate()
            .map_err(HandlerError::internal)?
            .build();
        ctx.reply(Reply::embed(embed).with_components(vec![row(buttons)]).ephemeral()).await
    }

    async fn show(
        &self,
        ctx: &CommandCtx,
        service: &Arc<FaqService>,
        entry: FaqEntry,
        ephemeral: bool,
    ) -> HandlerResult {
        service.repo.record_view(&ctx.guild, entry.id).await?;
        let entry = FaqEntry { views: entry.views + 1, ..entry };
        let reply = Reply::embed(entry_embed(&entry)?);
        ctx.reply(if ephemeral { reply.ephemeral() } else { reply }).await
    }

    async fn list(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> HandlerResult {
        let pinned = ctx.options.str("show") == Some("pinned");
        let page = ctx.options.int("page").unwrap_or(1).clamp(1, 10_000) as u32;
        let offset = (page - 1) * LIST_PAGE;
        let (total, total_pinned) = service.repo.count(&ctx.guild).await?;
        let entries = if pinned {
            service.repo.list_pinned(&ctx.guild, LIST_PAGE, offset).await?
        } else {
            service.repo.list_recent(&ctx.guild, LIST_PAGE, offset).await?
        };
        let count = if pinned { total_pinned } else { total };
        if entries.is_empty() {
            let text = match (count, pinned) {
                (0, true) => "No FAQ entry is pinned yet.".to_owned(),
                (0, false) => "The FAQ is empty. Staff can add entries with /faq add.".to_owned(),
                _ => format!("There is no page {page}."),
            };
            return ctx.reply(Reply::text(text).ephemeral()).await;
        }
        let pages = count.div_ceil(u64::from(LIST_PAGE)).max(1);
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                let pin = if e.pinned { "📌 " } else { "" };
                format!("{pin}`#{}` {}", e.id, truncate(&e.question, 150))
            })
            .collect();
        let title = if pinned { "Pinned FAQ entries" } else { "Recently updated FAQ entries" };
        let embed = EmbedBuilder::new()
            .color(COLOR)
            .title(title)
            .description(lines.join("\n"))
            .footer(EmbedFooterBuilder::new(format!(
                "Page {page} of {pages} · {count} entries · /faq view id to read one"
            )))
            .validate()
            .map_err(HandlerError::internal)?
            .build();
        ctx.reply(Reply::embed(embed).ephemeral()).await
    }

    async fn entry_arg(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> Result<FaqEntry, HandlerError> {
        let text = ctx.options.str("id").unwrap_or_default();
        let id = parse_entry_ref(text).ok_or_else(|| {
            HandlerError::user(format!(
                "`{}` is not an FAQ entry number; pick one from the suggestions.",
                truncate(text, 50)
            ))
        })?;
        Ok(service.repo.get(&ctx.guild, id).await?.ok_or(FaqError::NotFound(id))?)
    }

    async fn import(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> HandlerResult {
        let Some((url, filename, size)) = attached_file(ctx) else {
            return Err(HandlerError::user(
                "Attach a CSV file with the columns question and answer (optional: id, tags, pinned).",
            ));
        };
        if size > MAX_IMPORT_BYTES {
            return Err(HandlerError::user(format!(
                "`{}` is larger than {} MiB.",
                truncate(&filename, 80),
                MAX_IMPORT_BYTES / (1024 * 1024)
            )));
        }
        ctx.responder.defer()?;
        let bytes = download(&url, MAX_IMPORT_BYTES).await?;
        let report = service.import(&ctx.guild, &bytes, ctx.user_id()).await?;
        ctx.reply(
            Reply::text(format!(
                "Imported `{}`: {} added, {} updated.",
                truncate(&filename, 80),
                report.added,
                report.updated
            ))
            .ephemeral(),
        )
        .await
    }

    async fn export(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> HandlerResult {
        // Files cannot ride on an HTTP initial response; defer so the answer is a REST edit.
        ctx.responder.defer()?;
        let entries = service.repo.all(&ctx.guild).await?;
        let csv = export_csv(&entries)?;
        let file = Attachment {
            description: Some("FAQ entries as CSV".into()),
            duration_secs: None,
            file: csv,
            filename: format!("faq-{}.csv", ctx.guild_id()),
            id: 0,
            is_spoiler: None,
            title: None,
            waveform: None,
        };
        ctx.reply(
            Reply::text(format!(
                "{} FAQ entr{} exported. Re-import the file with /faq import.",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" }
            ))
            .with_attachment(file)
            .ephemeral(),
        )
        .await
    }

    async fn gaps(&self, ctx: &CommandCtx, service: &Arc<FaqService>) -> HandlerResult {
        let days = ctx.options.int("days").unwrap_or(30).clamp(1, 365);
        let since = now_ms() - days * 86_400_000;
        let gaps = service.repo.gaps(&ctx.guild, since, GAPS_SHOWN).await?;
        if gaps.is_empty() {
            return ctx
                .reply(Reply::text(format!("Every FAQ search of the last {days} days found something.")).ephemeral())
                .await;
        }
        let mut lines = Vec::new();
        for (n, gap) in gaps.iter().enumerate() {
            // Entries added since may answer a gap already; say so instead of hiding it.
            let now_found = service.search(&ctx.guild, &gap.term, 1).await?;
            let note = match now_found.first() {
                Some(hit) => format!(" — now finds `#{}`", hit.id),
                None => String::new(),
            };
            lines.push(format!(
                "**{}.** `{}` — {} search{}, last <t:{}:R>{note}",
                n + 1,
                truncate(&gap.term, 80).replace('`', "'"),
                gap.searches,
                if gap.searches == 1 { "" } else { "es" },
                gap.last_at / 1000
            ));
        }
        let embed = EmbedBuilder::new()
            .color(COLOR)
            .title(format!("FAQ searches that found nothing (last {days} days)"))
            .description(lines.join("\n"))
            .footer(EmbedFooterBuilder::new("Add entries for these with /faq add."))
            .validate()
            .map_err(HandlerError::internal)?
            .build();
        ctx.reply(Reply::embed(embed).ephemeral()).await
    }

    async fn suggestions(
        &self,
        ctx: &AutocompleteCtx,
        service: &Arc<FaqService>,
        text: &str,
        as_ref: bool,
    ) -> Result<Vec<Choice>, FaqError> {
        let value = |id: u64| {
            if as_ref { format!("#{id}") } else { id.to_string() }
        };
        let name = |id: u64, question: &str, pinned: bool| {
            let pin = if pinned { "📌 " } else { "" };
            format!("{pin}#{id} · {question}")
        };
        if text.trim().is_empty() {
            return Ok(service
                .featured(&ctx.guild, SUGGESTIONS)
                .await?
                .into_iter()
                .map(|l| Choice::new(name(l.id, &l.question, l.pinned), value(l.id)))
                .collect());
        }
        let index = service.index(&ctx.guild).await?;
        let index = index.read().unwrap_or_else(|p| p.into_inner());
        let mut choices = Vec::new();
        // Typing a number offers that entry first.
        if let Some(listed) = parse_entry_ref(text).and_then(|id| index.get(id)) {
            choices.push(Choice::new(name(listed.id, &listed.question, listed.pinned), value(listed.id)));
        }
        for hit in index.search(text, SUGGESTIONS) {
            if choices.len() < SUGGESTIONS && !choices.iter().any(|c| c.value == value(hit.id)) {
                let pinned = index.get(hit.id).is_some_and(|l| l.pinned);
                choices.push(Choice::new(name(hit.id, &hit.question, pinned), value(hit.id)));
            }
        }
        Ok(choices)
    }
}

#[async_trait]
impl Module for FaqModule {
    fn api_routes(&self, _app: &Arc<App>) -> Vec<beacon_framework::ApiRoute> {
        crate::api::routes(&crate::api::Faq { feeds: self.feeds.clone(), service: self.service.clone() })
    }

    fn pages(&self) -> Vec<beacon_framework::pages::PageSpec> {
        crate::api::pages()
    }

    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::personal_data()
    }

    fn retention(&self) -> Vec<beacon_framework::retention::Retention> {
        crate::privacy::retention()
    }

    fn name(&self) -> &'static str {
        "faq"
    }

    fn description(&self) -> &'static str {
        "Frequently asked questions: search, answers and staff editing"
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![SCHEMA]
    }

    fn provides(&self) -> Vec<Port> {
        vec![
            Port::new::<dyn beacon_kb::GuildSource>("faq", Arc::new(FaqSource::new(self.feeds.clone()))),
            Port::new::<dyn AnswerCorrections>(
                "faq",
                Arc::new(Corrections { feeds: self.feeds.clone(), service: self.service.clone() }),
            ),
        ]
    }

    fn exports(&self) -> Vec<ExportSpec> {
        vec![ExportSpec::new(
            "faq",
            "Every FAQ entry (the same CSV /faq import reads)",
            Arc::new(FaqExport(self.feeds.clone())),
        )]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let attachment = OptionSpec {
            name: "file",
            description: "CSV with columns question, answer (optional: id, tags, pinned)",
            kind: OptionKind::Attachment,
            required: true,
            autocomplete: false,
        };
        let show = OptionSpec {
            name: "show",
            description: "Which entries (default: recent)",
            kind: OptionKind::String {
                min_length: None,
                max_length: None,
                choices: vec![("recent", "recent"), ("pinned", "pinned")],
            },
            required: false,
            autocomplete: false,
        };
        // Everyone may run /faq; the staff subcommands check the level themselves.
        vec![
            CommandSpec::new("faq", "Frequently asked questions", Access::Everyone)
                .option(OptionSpec::subcommand(
                    "search",
                    "Search the FAQ",
                    vec![
                        OptionSpec::string("query", "What are you looking for?")
                            .required()
                            .autocomplete()
                            .max_length(100),
                    ],
                ))
                .option(OptionSpec::subcommand(
                    "view",
                    "Show one FAQ entry",
                    vec![id_option("Entry number or words from its question")],
                ))
                .option(OptionSpec::subcommand(
                    "list",
                    "List FAQ entries",
                    vec![show, OptionSpec::integer("page", "Page number", Some(1), Some(10_000))],
                ))
                .option(OptionSpec::subcommand("add", "Add an FAQ entry (staff)", vec![pinned_option()]))
                .option(OptionSpec::subcommand(
                    "edit",
                    "Edit an FAQ entry (staff)",
                    vec![id_option("Entry to edit"), pinned_option()],
                ))
                .option(OptionSpec::subcommand(
                    "remove",
                    "Remove an FAQ entry (staff)",
                    vec![id_option("Entry to remove")],
                ))
                .option(OptionSpec::subcommand(
                    "import",
                    "Import FAQ entries from a CSV file (staff)",
                    vec![attachment],
                ))
                .option(OptionSpec::subcommand("export", "Export the FAQ as a CSV file (staff)", Vec::new()))
                .option(OptionSpec::subcommand(
                    "gaps",
                    "Top searches that found nothing (staff)",
                    vec![OptionSpec::integer("days", "How far back (default 30)", Some(1), Some(365))],
                )),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let service = self.service(&ctx.app).await?;
        let sub = ctx.options.subcommand().unwrap_or_default().to_owned();
        if matches!(sub.as_str(), "add" | "edit" | "remove" | "import" | "export" | "gaps") {
            ctx.require(Access::Staff)?;
        }
        match sub.as_str() {
            "search" => self.search(&ctx, &service).await,
            "view" => {
                let entry = self.entry_arg(&ctx, &service).await?;
                self.show(&ctx, &service, entry, false).await
            }
            "list" => self.list(&ctx, &service).await,
            "add" => {
                let pin = pin_code(ctx.options.bool("pinned"));
                ctx.responder.modal(format!("faq:add:{pin}"), "New FAQ entry", entry_form(None))
            }
            "edit" => {
                let entry = self.entry_arg(&ctx, &service).await?;
                let pin = pin_code(ctx.options.bool("pinned"));
                ctx.responder.modal(
                    format!("faq:edit:{}:{pin}", entry.id),
                    truncate(&format!("Edit FAQ #{}", entry.id), 45),
                    entry_form(Some(&entry)),
                )
            }
            "remove" => {
                let entry = self.entry_arg(&ctx, &service).await?;
                let buttons = vec![
                    button(format!("faq:rm:{}", entry.id), "Remove", ButtonStyle::Danger),
                    button(format!("faq:keep:{}", entry.id), "Keep", ButtonStyle::Secondary),
                ];
                ctx.reply(
                    Reply::text(format!(
                        "Remove FAQ #{} “{}”? This cannot be undone from Discord.",
                        entry.id,
                        truncate(&entry.question, 150)
                    ))
                    .with_components(vec![row(buttons)])
                    .ephemeral(),
                )
                .await
            }
            "import" => self.import(&ctx, &service).await,
            "export" => self.export(&ctx, &service).await,
            "gaps" => self.gaps(&ctx, &service).await,
            other => Err(HandlerError::internal(format!("unknown /faq subcommand {other}"))),
        }
    }

    async fn autocomplete(&self, ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        let Some((option, text)) = ctx.options.focused() else {
            return Ok(Vec::new());
        };
        let as_ref = match option {
            "query" => true,
            "id" => false,
            _ => return Ok(Vec::new()),
        };
        let text = text.to_owned();
        let service = self.service(&ctx.app).await?;
        Ok(self.suggestions(&ctx, &service, &text, as_ref).await?)
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        let service = self.service(&ctx.app).await?;
        let action = ctx.action().to_owned();
        let (verb, arg) = action.split_once(':').unwrap_or((action.as_str(), ""));
        let id = parse_entry_ref(arg).ok_or_else(|| HandlerError::internal(format!("bad faq button {action}")))?;
        match verb {
            "view" => {
                let entry = service.repo.get(&ctx.guild, id).await?.ok_or(FaqError::NotFound(id))?;
                service.repo.record_view(&ctx.guild, id).await?;
                let entry = FaqEntry { views: entry.views + 1, ..entry };
                ctx.reply(Reply::embed(entry_embed(&entry)?).ephemeral()).await
            }
            "rm" => {
                ctx.require(Access::Staff)?;
                let entry = service.remove(&ctx.guild, id, ctx.user_id()).await?;
                ctx.responder
                    .update(Reply::text(format!("Removed FAQ #{} “{}”.", entry.id, truncate(&entry.question, 150))))
                    .await
            }
            "keep" => ctx.responder.update(Reply::text(format!("Kept FAQ #{id}."))).await,
            other => Err(HandlerError::internal(format!("unknown faq button {other}"))),
        }
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        // A form can be submitted without the command that opened it: check again.
        ctx.require(Access::Staff)?;
        let service = self.service(&ctx.app).await?;
        let action = ctx.action().to_owned();
        let parts: Vec<&str> = action.split(':').collect();
        let pin = |code: &str| match code {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        };
        let tags = split_tags(ctx.field("tags").unwrap_or_default());
        let question = ctx.field("question").unwrap_or_default();
        let answer = ctx.field("answer").unwrap_or_default();
        let (entry, verb) = match parts.as_slice() {
            ["add", code] => {
                let input = EntryInput::new(question, answer, &tags, pin(code).unwrap_or(false))?;
                (service.add(&ctx.guild, &input, ctx.user_id()).await?, "Added")
            }
            ["edit", id, code] => {
                let id = parse_entry_ref(id).ok_or_else(|| HandlerError::internal(format!("bad faq form {action}")))?;
                let current = service.repo.get(&ctx.guild, id).await?.ok_or(FaqError::NotFound(id))?;
                let pinned = pin(code).unwrap_or(current.pinned);
                let input = EntryInput::new(question, answer, &tags, pinned)?;
                (service.update(&ctx.guild, id, &input, ctx.user_id()).await?, "Saved")
            }
            _ => {
                return Err(HandlerError::internal(format!("unknown faq form {action}")));
            }
        };
        ctx.reply(Reply::text(format!("{verb} FAQ #{}.", entry.id)).with_embed(entry_embed(&entry)?).ephemeral()).await
    }
}

/// `/export faq`: every entry, as the CSV `/faq import` reads.
struct FaqExport(Feeds);

#[async_trait]
impl Exporter for FaqExport {
    async fn export(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        _range: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError> {
        let entries = FaqRepo::with_feeds(app.store.clone(), self.0.clone()).all(guild).await?;
        let csv = export_csv(&entries)?;
        Ok(ExportFile {
            name: "faq.csv".to_owned(),
            summary: format!("{} FAQ entr{}.", entries.len(), if entries.len() == 1 { "y" } else { "ies" }),
            bytes: csv,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_refs() {
        assert_eq!(parse_entry_ref("12"), Some(12));
        assert_eq!(parse_entry_ref(" #7 "), Some(7));
        assert_eq!(parse_entry_ref("#3 · How do I pay?"), Some(3));
        assert_eq!(parse_entry_ref("2fa"), None);
        assert_eq!(parse_entry_ref("#0"), None);
        assert_eq!(parse_entry_ref("password"), None);
    }

    #[test]
    fn commands_are_valid_for_discord() {
        let specs = FaqModule::new().commands();
        let json = serde_json_value(&specs[0]);
        let subs: Vec<&str> =
            json["options"].as_array().into_iter().flatten().filter_map(|o| o["name"].as_str()).collect();
        assert_eq!(subs, ["search", "view", "list", "add", "edit", "remove", "import", "export", "gaps"]);
        assert!(specs.iter().all(|s| beacon_framework::command::valid_name(s.name)));
    }

    fn serde_json_value(spec: &CommandSpec) -> serde_json::Value {
        serde_json::to_value(spec.to_command()).expect("command serialises")
    }

    #[test]
    fn embeds_fit_discord_limits() {
        let entry = FaqEntry {
            guild_id: 1,
            id: 9,
            question: "q".repeat(MAX_QUESTION_CHARS),
            answer: "a".repeat(MAX_ANSWER_CHARS),
            tags: vec!["t".into()],
            pinned: true,
            created_by: 1,
            updated_by: 1,
            created_at: 0,
            updated_at: 0,
            views: 1,
            deleted_at: None,
        };
        let embed = entry_embed(&entry).expect("valid embed");
        assert!(embed.title.as_deref().is_some_and(|t| t.starts_with("#9 · ")));
        assert_eq!(embed.footer.map(|f| f.text), Some("Pinned · FAQ #9 · 1 view".into()));
    }
}
