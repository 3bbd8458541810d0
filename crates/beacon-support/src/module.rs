//! The support module: answers members' questions from the guild's knowledge base, in support
//! channels, on mentions, with `/ask`, and in the threads it opens — or says it does not know and
//! offers a human. With an LLM, answers stream: the reply (or `/ask`'s response) is posted early
//! and edited as the model writes, throttled by [`SupportModule::with_edit_interval`] (see
//! [`crate::stream`]).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use beacon_cache::CacheKey;
use beacon_framework::module::claim_event;
use beacon_framework::reply::components::text_input;
use beacon_framework::reply::components::{button, row};
use beacon_framework::{
    Access, App, CommandCtx, CommandSpec, ComponentCtx, EventCtx, GuildCache, HandlerError, HandlerResult, Module,
    OptionSpec, Reply, SettingKind, SettingSpec, async_trait,
};
use beacon_framework::{
    AnswerCorrections, ConversationMessage, HumanHandoff, ModalCtx, Port, ReplyDrafter, Speaker as TicketSpeaker,
};
use beacon_kb::store::KbRepo;
use beacon_kb::{Hit, KnowledgeBase};
use beacon_llm::{CallContext, LlmService};
use beacon_store::{GuildStore, Schema};
use serde_json::json;
use twilight_model::channel::message::Component;
use twilight_model::channel::message::EmojiReactionType;
use twilight_model::channel::message::component::{ButtonStyle, TextInputStyle};
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::{Event, EventType};
use twilight_model::gateway::payload::incoming::MessageCreate;
use twilight_model::guild::Permissions;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::confidence::confidence;
use crate::conversation::{self, Speaker, Turn};
use crate::extract;
use crate::grounded::{self, Grounded};
use crate::i18n::{self, Lang};
use crate::quality;
use crate::repo::{AnswerRecord, SCHEMA, SupportRepo};
use crate::stream::{self, ChannelAnswer, InteractionAnswer, LiveAnswer};
use crate::{guard, injection, pii, sanitize};

pub(crate) mod keys {
    pub const CHANNELS: &str = "support.channels";
    pub const MENTIONS: &str = "support.answer_mentions";
    pub const THREADS: &str = "support.reply_in_thread";
    pub const USER_RATE: &str = "support.user_per_minute";
    pub const GUILD_RATE: &str = "support.guild_per_minute";
    pub const MIN_CONFIDENCE: &str = "support.min_confidence";
    pub const HISTORY: &str = "support.history_turns";
    pub const AUDIT_CONTENT: &str = "support.audit_content";
    pub const COOLDOWN: &str = "support.cooldown_message";
    pub const GAPS_RETENTION: &str = "support.gaps_retention";
}

/// Longest question considered, in characters.
const MAX_QUESTION: usize = 1500;
/// How long staff can correct an answer from its button.
const CORRECTION_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// Longest corrected answer, in characters.
const MAX_CORRECTION: u16 = 2000;
/// Most earlier messages of a ticket given to the LLM with a draft's question.
const MAX_DRAFT_CONTEXT: usize = 20;
/// Longest answer posted, in characters (longer than one message: split when posted).
const MAX_ANSWER: usize = 4000;

/// Where a question came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `/ask`.
    Command,
    /// A message in a support channel.
    Channel,
    /// A message mentioning Beacon.
    Mention,
    /// A follow-up in a thread Beacon opened for a question.
    Thread,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Command => "ask",
            Trigger::Channel => "channel",
            Trigger::Mention => "mention",
            Trigger::Thread => "thread",
        }
    }
}

/// A prepared answer, ready to post.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The recorded answer row (for feedback buttons); `None` when nothing was recorded.
    pub answer_id: Option<i64>,
    /// The message text, after the output guard.
    pub content: String,
    /// Feedback and "talk to a human" buttons.
    pub components: Vec<Component>,
    /// How the question ended (`answered`, `abstained`, …), as recorded.
    pub outcome: &'static str,
}

/// The support module. Holds the knowledge base it answers from. Cheap to clone (clones share
/// everything); it provides itself as the `ReplyDrafter` port.
#[derive(Clone)]
pub struct SupportModule {
    kb: Arc<KnowledgeBase>,
    /// Grounded LLM answers when a provider is configured; extractive answers otherwise.
    llm: Option<LlmService>,
    bot_id: Arc<OnceLock<u64>>,
    audit_lock: Arc<tokio::sync::Mutex<()>>,
    /// Time between two edits of a streamed answer.
    edit_interval: Duration,
    /// Each guild's question threads and who asked in each: every message in the guild is
    /// checked against them.
    threads: Arc<GuildCache<HashMap<u64, u64>>>,
}

impl SupportModule {
    /// Answers from `kb`. "Talk to a human" goes to whichever module provides the
    /// `HumanHandoff` port (the ticket desk).
    pub fn new(kb: Arc<KnowledgeBase>) -> SupportModule {
        SupportModule {
            kb,
            llm: None,
            bot_id: Arc::default(),
            audit_lock: Arc::default(),
            edit_interval: stream::DEFAULT_EDIT_INTERVAL,
            threads: Arc::default(),
        }
    }

    /// Spaces the edits of streamed LLM answers by `interval` (default
    /// [`stream::DEFAULT_EDIT_INTERVAL`], safe against Discord's edit rate limits; tests use
    /// shorter ones).
    pub fn with_edit_interval(mut self, interval: Duration) -> SupportModule {
        self.edit_interval = interval;
        self
    }

    /// Answers with `llm`, grounded on the retrieved passages, when it has a provider; the
    /// extractive answer stays the fallback for every LLM failure.
    pub fn with_llm(mut self, llm: LlmService) -> SupportModule {
        self.llm = Some(llm).filter(LlmService::is_enabled);
        self
    }

    /// A draft reply for staff (the ticket desk's "Suggest reply") to the member's latest message
    /// in `conversation` (oldest first), every message PII-redacted first: the guild's knowledge
    /// base searched for that message — with the member's earlier messages too when it does not
    /// stand alone —, then an LLM answer grounded on it, with the conversation as context, when
    /// one is configured, else the best passage quoted. `None` when nothing in the knowledge base
    /// is confident enough.
    pub async fn draft_reply(
        &self,
        app: &App,
        guild: &GuildStore,
        staff_id: u64,
        conversation: &[ConversationMessage],
    ) -> Result<Option<String>, HandlerError> {
        let turns: Vec<Turn> = conversation
            .iter()
            .filter_map(|m| {
                let text = sanitize::question(&pii::redact(&m.text), MAX_QUESTION);
                (!text.is_empty()).then(|| match m.speaker {
                    TicketSpeaker::Member => Turn::member(&text),
                    TicketSpeaker::Staff => Turn::staff(&text),
                })
            })
            .collect();
        let Some(at) = turns.iter().rposition(|t| t.who == Speaker::Member) else { return Ok(None) };
        let question = turns[at].text.clone();
        let mut history = turns;
        history.remove(at);
        let skip = history.len().saturating_sub(MAX_DRAFT_CONTEXT);
        let history: Vec<Turn> = history.into_iter().skip(skip).collect();
        let threshold = app.settings.get_i64(guild, keys::MIN_CONFIDENCE).await? as f32 / 100.0;
        let search = |query: String| async move {
            let hits = self.kb.search(guild.id(), &query, 5).await.map_err(HandlerError::internal)?;
            let conf = hits.first().map(|h| confidence(&query, h)).unwrap_or(0.0);
            Ok::<_, HandlerError>((hits, conf, query))
        };
        let (mut hits, mut conf, mut query) = search(question.clone()).await?;
        // "On my laptop" answers staff's question: read it with what the member asked before.
        let earlier: Vec<&str> = history.iter().filter(|t| t.who == Speaker::Member).map(|t| t.text.as_str()).collect();
        if conf < threshold && !earlier.is_empty() {
            let combined = format!("{} {question}", earlier[earlier.len().saturating_sub(3)..].join(" "));
            let more = search(combined).await?;
            if more.1 >= threshold {
                (hits, conf, query) = more;
            }
        }
        let Some(best) = hits.first() else { return Ok(None) };
        if conf < threshold {
            return Ok(None);
        }
        let mut record = AnswerRecord::default();
        let draft = match self.llm_answer(guild, staff_id, &question, None, &history, &hits, &mut record, None).await {
            Some(LlmOutcome::Answer { content, .. }) => content,
            Some(LlmOutcome::CannotAnswer) => return Ok(None),
            None => render_extractive(&query, best, Lang::En),
        };
        Ok(Some(guard::output(&draft, 1800).text))
    }

    fn bot_id(&self, app: &App) -> u64 {
        self.bot_id.get().copied().or(app.application_id().map(|a| a.get())).unwrap_or(0)
    }

    /// Runs the pipeline for one question: sanitize → rate limits → screening → cache →
    /// retrieval → LLM answer grounded on the passages (when configured) or extractive answer, or
    /// abstention → guard → records. `locale` is the asker's Discord locale, when known.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        channel_id: u64,
        user_id: u64,
        text: &str,
        trigger: Trigger,
        locale: Option<&str>,
    ) -> Result<Prepared, HandlerError> {
        self.answer_live(app, guild, channel_id, user_id, text, trigger, locale, None).await
    }

    /// [`SupportModule::answer`], with an LLM answer streamed into `live` as it is written (the
    /// caller then delivers the final [`Prepared`] through the same `live` message).
    #[allow(clippy::too_many_arguments)]
    pub async fn answer_live(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        channel_id: u64,
        user_id: u64,
        text: &str,
        trigger: Trigger,
        locale: Option<&str>,
        live: Option<&mut dyn LiveAnswer>,
    ) -> Result<Prepared, HandlerError> {
        let started = Instant::now();
        let question = sanitize::question(text, MAX_QUESTION);
        let lang = Lang::for_question(&question, locale);
        let words = lang.strings();
        if question.is_empty() {
            return Ok(Prepared {
                answer_id: None,
                content: words.empty_question.into(),
                components: Vec::new(),
                outcome: "empty",
            });
        }
        let mut record = AnswerRecord {
            channel_id,
            user_id,
            trigger: trigger.as_str(),
            mode: "extractive",
            question_chars: question.chars().count(),
            lang,
            ..AnswerRecord::default()
        };

        if let Some(refusal) = self.admit(app, guild, &question, &mut record).await? {
            return self.finish(app, guild, record, started, &question, refusal, Vec::new(), None, &[]).await;
        }
        self.answer_admitted(app, guild, channel_id, question, record, started, locale, live).await
    }

    /// The checks before anything visible happens: the member's and the guild's rate limits,
    /// then the injection screen. `Some(text)` is the refusal to show (and `record.outcome` says
    /// which); `None` lets the question through (it has used its place in the limits).
    async fn admit(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        question: &str,
        record: &mut AnswerRecord,
    ) -> Result<Option<String>, HandlerError> {
        let settings = &app.settings;
        let words = record.lang.strings();
        let user_id = record.user_id;
        // Rate limits: per member, then per guild.
        let per_user = settings.get_i64(guild, keys::USER_RATE).await?.max(1) as u64;
        let per_guild = settings.get_i64(guild, keys::GUILD_RATE).await?.max(1) as u64;
        let minute = Duration::from_secs(60);
        let user_key = CacheKey::guild(guild.id(), "support", &format!("rate:user:{user_id}"));
        let guild_key = CacheKey::guild(guild.id(), "support", "rate:guild");
        let user_decision = app.cache.hit(&user_key, minute, per_user).await?;
        let decision =
            if user_decision.allowed { app.cache.hit(&guild_key, minute, per_guild).await? } else { user_decision };
        if !decision.allowed {
            let template = settings.get_string(guild, keys::COOLDOWN).await?;
            // The default message is spoken in the asker's language; a guild's own is kept as written.
            let template = if template == i18n::EN.cooldown { words.cooldown.to_owned() } else { template };
            let content = template.replace("{seconds}", &decision.retry_after.as_secs().max(1).to_string());
            record.outcome = "rate_limited";
            return Ok(Some(content));
        }
        let screening = injection::screen(question);
        if screening.flagged {
            tracing::info!(reasons = ?screening.reasons, user_id, "question refused by the injection screen");
            record.outcome = "refused";
            return Ok(Some(words.refused.to_owned()));
        }
        Ok(None)
    }

    /// The pipeline after admission: cache, retrieval, the answer, the records. `conversation` is
    /// where the member's conversation continues (the thread Beacon opened for a support-channel
    /// question, else the channel): the earlier turns there are the context.
    #[allow(clippy::too_many_arguments)]
    async fn answer_admitted(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        conversation: u64,
        question: String,
        mut record: AnswerRecord,
        started: Instant,
        locale: Option<&str>,
        live: Option<&mut dyn LiveAnswer>,
    ) -> Result<Prepared, HandlerError> {
        let settings = &app.settings;
        let (user_id, lang) = (record.user_id, record.lang);
        let history_key = CacheKey::guild(guild.id(), "support", &format!("conversation:{conversation}:{user_id}"));
        let exchanges = settings.get_i64(guild, keys::HISTORY).await?.max(0) as usize;
        // A remembered conversation that no longer reads (an older format) is started afresh.
        let history: Vec<Turn> = match app.cache.get(&history_key).await? {
            Some(bytes) if exchanges > 0 => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Vec::new(),
        };
        // Short follow-ups ("and for Windows?") need the previous question's words.
        let follow_up = conversation::follow_up_query(&history, &question);

        // Answer cache, keyed by the question and the guild's knowledge version (the database's
        // index version and the model): another process's ingest is a new version, and workers
        // sharing Redis share answers.
        let version = match self.kb.current_version(guild.id()).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "reading the knowledge version failed; answering without the cache");
                None
            }
        };
        let cache_name = version.map(|v| {
            let mut h = DefaultHasher::new();
            question.to_lowercase().split_whitespace().collect::<Vec<_>>().hash(&mut h);
            // Answers are given in the asker's language.
            lang.code().hash(&mut h);
            format!("answer:{v}:{:x}", h.finish())
        });
        let cache_key = cache_name.as_ref().map(|name| CacheKey::guild(guild.id(), "support", name));
        let cached = match &cache_key {
            Some(key) => app.cache.get(key).await?.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()),
            None => None,
        };

        let threshold = settings.get_i64(guild, keys::MIN_CONFIDENCE).await? as f32 / 100.0;
        // What retrieval returned (for "documents never retrieved"), kept with a cached answer.
        let retrieved: Vec<i64>;
        let (content, answered, conf, sources) = match cached {
            Some(v) => {
                record.cache_hit = true;
                retrieved = serde_json::from_value(v["retrieved"].clone()).unwrap_or_default();
                if v["mode"].as_str() == Some("llm") {
                    record.mode = "llm";
                }
                (
                    v["content"].as_str().unwrap_or_default().to_owned(),
                    v["answered"].as_bool().unwrap_or(false),
                    v["confidence"].as_f64().unwrap_or(0.0) as f32,
                    serde_json::from_value(v["sources"].clone()).unwrap_or_default(),
                )
            }
            None => {
                let search = |query: String| async move {
                    let hits = self.kb.search(guild.id(), &query, 5).await.map_err(HandlerError::internal)?;
                    let conf = hits.first().map(|h| confidence(&query, h));
                    Ok::<_, HandlerError>((hits, conf))
                };
                let (mut hits, mut best_conf) = search(question.clone()).await?;
                // A passage titled with this very question (an FAQ entry, a staff correction)
                // is its answer, whatever the fused ranking says.
                let titled = conversation::titled_with(&hits, &question);
                if let Some(at) = titled {
                    let hit = hits.remove(at);
                    best_conf = Some(confidence(&question, &hit));
                    hits.insert(0, hit);
                }
                let mut in_context = false;
                // A follow-up is searched with the previous question too; the passage that
                // answers the conversation (it holds the follow-up's own words) wins over the
                // follow-up read alone. A new short question finds no such passage and stands alone.
                if let Some(combined) = follow_up.filter(|_| titled.is_none()) {
                    let (mut more, _) = search(combined.clone()).await?;
                    if let Some((at, conf)) = conversation::in_context(&more, &combined, &question, threshold) {
                        let best = more.remove(at);
                        more.insert(0, best);
                        (hits, best_conf, in_context) = (more, Some(conf), true);
                    }
                }
                retrieved = hits.iter().map(|h| h.chunk_id).collect();
                let best = hits.first().zip(best_conf).map(|(h, c)| (c, h));
                // An LLM answer that fell back to the extract is not cached: the next ask tries again.
                let (content, answered, conf, sources, cacheable) = match best {
                    Some((conf, hit)) if conf >= threshold => {
                        match self
                            .llm_answer(guild, user_id, &question, locale, &history, &hits, &mut record, live)
                            .await
                        {
                            Some(LlmOutcome::Answer { content, sources }) => (content, true, conf, sources, true),
                            Some(LlmOutcome::CannotAnswer) => (abstain_text(lang), false, conf, Vec::new(), false),
                            None => (
                                render_extractive(&question, hit, lang),
                                true,
                                conf,
                                vec![hit.chunk_id],
                                self.llm.is_none(),
                            ),
                        }
                    }
                    Some((conf, _)) => (abstain_text(lang), false, conf, Vec::new(), false),
                    None => (abstain_text(lang), false, 0.0, Vec::new(), false),
                };
                // An answer found through the conversation belongs to it, not to the bare question.
                if let (Some(key), true) = (&cache_key, answered && cacheable && !in_context) {
                    let body = json!({
                        "content": content, "answered": answered, "confidence": conf, "sources": sources, "mode": record.mode,
                        "retrieved": retrieved,
                    });
                    app.cache.set(key, body.to_string().as_bytes(), Duration::from_secs(600)).await?;
                }
                (content, answered, conf, sources)
            }
        };
        record.confidence = conf;
        record.sources = sources;
        record.retrieved = retrieved;
        record.outcome = if answered { "answered" } else { "abstained" };
        record.gap_question = Some(pii::redact(&question));

        let earlier = history.clone();
        if exchanges > 0 {
            let kept = conversation::remember(history, &question, &guard::output(&content, MAX_ANSWER).text, exchanges);
            if let Ok(bytes) = serde_json::to_vec(&kept) {
                app.cache.set(&history_key, &bytes, Duration::from_secs(3600)).await?;
            }
        }
        let components = Vec::new();
        let mut prepared =
            self.finish(app, guild, record, started, &question, content, components, Some(answered), &earlier).await?;
        let Some(answer_id) = prepared.answer_id else { return Ok(prepared) };
        // What a correction (from the button, or offered to staff after a 👎) and a 👎's gap
        // need: the question (PII-redacted) and where its cached answer is.
        let key = CacheKey::guild(guild.id(), "support", &format!("correct:{answer_id}"));
        let body = json!({ "question": pii::redact(&question), "answer_key": cache_name });
        app.cache.set(&key, body.to_string().as_bytes(), CORRECTION_WINDOW).await?;
        if !answered {
            self.record_gap(app, guild, answer_id, "abstained", &question).await?;
        }
        // Staff can correct any answer (or abstention): the right answer becomes knowledge.
        if corrections_available(app, guild.id()).await {
            prepared.components.push(row(vec![button(
                format!("support:correct:{answer_id}"),
                // For staff, like the rest of the staff tools, in English.
                "Correct this (staff)",
                ButtonStyle::Secondary,
            )]));
        }
        Ok(prepared)
    }

    /// Records that answer `answer_id`'s question (PII-redacted here) was abstained on or voted
    /// down, for the gaps report; `false` when it already was. Gaps older than
    /// `support.gaps_retention` are deleted on the way.
    async fn record_gap(
        &self,
        app: &App,
        guild: &GuildStore,
        answer_id: i64,
        kind: &str,
        question: &str,
    ) -> Result<bool, HandlerError> {
        let keep = app.settings.get_duration(guild, keys::GAPS_RETENTION).await?;
        let now = now_ms();
        let cutoff = now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        Ok(SupportRepo::new(guild.clone()).add_gap(answer_id, kind, &pii::redact(question), now, cutoff).await?)
    }

    /// A 👎 on answer `answer_id` (a reaction or the button): its question becomes a gap, and the
    /// first 👎 on it offers staff the correction in the log channel (`core.log_channel`), with
    /// the "Correct this (staff)" button, when corrections can be kept here. The question comes
    /// from the cache while the correction window lasts, then from the answer's row (kept,
    /// PII-redacted, for `support.gaps_retention`); past that nothing is recorded.
    async fn thumbs_down(&self, app: &Arc<App>, guild: &GuildStore, answer_id: i64) -> HandlerResult {
        let key = CacheKey::guild(guild.id(), "support", &format!("correct:{answer_id}"));
        let cached = match app.cache.get(&key).await? {
            Some(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["question"].as_str().map(str::to_owned)),
            None => None,
        };
        let question = match cached {
            Some(question) => question,
            None => SupportRepo::new(guild.clone()).gap_question(answer_id).await?.unwrap_or_default(),
        };
        if question.is_empty() || !self.record_gap(app, guild, answer_id, "down", &question).await? {
            return Ok(());
        }
        if !corrections_available(app, guild.id()).await {
            return Ok(());
        }
        let log = app.settings.get_ids(guild, beacon_framework::app::core_settings::LOG_CHANNEL).await?;
        let Some(log) = log.first().copied() else { return Ok(()) };
        let place = match SupportRepo::new(guild.clone()).answer_place(answer_id).await? {
            Some((channel, Some(message))) if channel != 0 => {
                format!(" in <#{channel}> (https://discord.com/channels/{}/{channel}/{message})", guild.id())
            }
            Some((channel, None)) if channel != 0 => format!(" in <#{channel}>"),
            _ => String::new(),
        };
        let shown: String = pii::redact(&question).chars().take(300).collect();
        let text = format!(
            "👎 on Beacon's answer to “{shown}”{place}. Staff: write the right answer and it becomes an FAQ entry for this question."
        );
        let buttons =
            [row(vec![button(format!("support:correct:{answer_id}"), "Correct this (staff)", ButtonStyle::Secondary)])];
        app.http
            .create_message(twilight_model::id::Id::new(log))
            .content(&guard::output(&text, 1900).text)
            .components(&buttons)
            .await?;
        Ok(())
    }

    /// The LLM's grounded answer (`history`: the conversation so far, both sides); `None` when there is no LLM or it failed (the caller answers
    /// extractively). Tokens and mode go into `record`.
    #[allow(clippy::too_many_arguments)]
    async fn llm_answer(
        &self,
        guild: &GuildStore,
        user_id: u64,
        question: &str,
        locale: Option<&str>,
        history: &[Turn],
        hits: &[Hit],
        record: &mut AnswerRecord,
        live: Option<&mut dyn LiveAnswer>,
    ) -> Option<LlmOutcome> {
        let llm = self.llm.as_ref()?;
        let model = match llm.guild_model(guild.id()).await {
            Ok(model) => model,
            Err(e) => {
                tracing::warn!(error_kind = e.kind(), "reading the guild's llm.model failed; using the default model");
                None
            }
        };
        let mut ctx = CallContext::new(guild.id(), "support").user(user_id).model(model);
        // LLM responses are cached under the same knowledge version (the prompt is part of the key).
        if let Ok(version) = self.kb.current_version(guild.id()).await {
            ctx = ctx.kb_version(&version);
        }
        let passages = grounded::passages(hits);
        // The service checks the guild's budget before calling and records usage after.
        let result = match live {
            Some(live) => stream::answer(llm, &ctx, question, locale, history, &passages, live).await,
            None => grounded::answer(llm, &ctx, question, locale, history, &passages).await,
        };
        match result {
            Ok(answer) => {
                record.tokens_in = answer.tokens_in;
                record.tokens_out = answer.tokens_out;
                match answer.outcome {
                    Grounded::Answer { text, citations } => {
                        record.mode = "llm";
                        let sources = citations.iter().filter_map(|n| hits.get(n - 1)).map(|h| h.chunk_id).collect();
                        Some(LlmOutcome::Answer { content: grounded::render(&text, &citations, hits), sources })
                    }
                    Grounded::CannotAnswer => {
                        record.mode = "llm";
                        Some(LlmOutcome::CannotAnswer)
                    }
                    Grounded::Uncited => {
                        tracing::info!(guild_id = guild.id(), "LLM answer cited no passage; answering extractively");
                        None
                    }
                }
            }
            Err(e) => {
                // The key never reaches this message (the service scrubs it); the kind is enough.
                tracing::warn!(
                    guild_id = guild.id(),
                    error_kind = e.kind(),
                    "LLM answer failed; answering extractively"
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        mut record: AnswerRecord,
        started: Instant,
        question: &str,
        content: String,
        mut components: Vec<Component>,
        answered: Option<bool>,
        earlier: &[Turn],
    ) -> Result<Prepared, HandlerError> {
        let guarded = guard::output(&content, MAX_ANSWER);
        record.answer_chars = guarded.text.chars().count();
        record.latency_ms = started.elapsed().as_millis() as u64;
        if app.settings.get_bool(guild, keys::AUDIT_CONTENT).await? {
            record.question = Some(pii::redact(question));
            record.answer = Some(pii::redact(&guarded.text));
        }
        let answer_id = SupportRepo::new(guild.clone()).record(&record, now_ms()).await?;
        self.audit(app, guild.id(), answer_id, &record).await;
        app.metrics.answer(answer_label(&record));
        let words = record.lang.strings();
        // "Talk to a human" only where a human can be reached (the ticket desk is on here).
        let human = answered.is_some() && human_available(app, guild.id()).await;
        let human_button = || button(format!("support:human:{answer_id}"), words.human, ButtonStyle::Primary);
        match answered {
            Some(true) => {
                let mut buttons = vec![
                    button(format!("support:fb:up:{answer_id}"), words.helpful, ButtonStyle::Secondary),
                    button(format!("support:fb:down:{answer_id}"), words.not_helpful, ButtonStyle::Secondary),
                ];
                if human {
                    buttons.push(human_button());
                }
                components.push(row(buttons));
            }
            Some(false) if human => components.push(row(vec![human_button()])),
            _ => {}
        }
        if human {
            // What a ticket opened from this answer will carry: the conversation before it (both
            // sides), the question and Beacon's answer; kept for a day, then gone.
            let key = CacheKey::guild(guild.id(), "support", &format!("handoff:{answer_id}"));
            let body = json!({ "question": question, "attempt": guarded.text, "earlier": earlier });
            app.cache.set(&key, body.to_string().as_bytes(), Duration::from_secs(86_400)).await?;
        }
        Ok(Prepared { answer_id: Some(answer_id), content: guarded.text, components, outcome: record.outcome })
    }

    /// Appends one line to `<data dir>/audit/support/guild-<id>.jsonl`: ids, lengths, outcome, cache hit,
    /// latency — the content only when the guild opted in (and then PII-redacted).
    async fn audit(&self, app: &App, guild_id: u64, answer_id: i64, r: &AnswerRecord) {
        let line = json!({
            "at": now_ms(), "guild_id": guild_id.to_string(), "answer_id": answer_id, "channel_id": r.channel_id.to_string(),
            "user_id": r.user_id.to_string(), "trigger": r.trigger, "outcome": r.outcome, "mode": r.mode, "cache_hit": r.cache_hit,
            "confidence": r.confidence, "sources": r.sources, "question_chars": r.question_chars, "answer_chars": r.answer_chars,
            "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "latency_ms": r.latency_ms, "lang": r.lang.code(), "question": r.question, "answer": r.answer,
        });
        let dir = audit_dir(app);
        let _guard = self.audit_lock.lock().await;
        let result = async {
            tokio::fs::create_dir_all(&dir).await?;
            let mut file =
                tokio::fs::OpenOptions::new().create(true).append(true).open(audit_file(&dir, guild_id)).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, format!("{line}\n").as_bytes()).await?;
            // tokio finishes a file write in the background: wait for it, so the line is there
            // when the answer is.
            tokio::io::AsyncWriteExt::flush(&mut file).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "writing the support audit log failed");
        }
    }

    async fn on_message(&self, app: &Arc<App>, message: &MessageCreate) -> HandlerResult {
        if message.author.bot || message.content.trim().is_empty() {
            return Ok(());
        }
        let Some(guild_id) = message.guild_id.map(|g| g.get()) else { return Ok(()) };
        let guild = app.guild(guild_id);
        let bot = self.bot_id(app);
        let channel_id = message.channel_id.get();
        let author = message.author.id.get();
        let mentioned = message.mentions.iter().any(|u| u.id.get() == bot);
        let support_channels = app.settings.get_ids(&guild, keys::CHANNELS).await?;
        let repo = SupportRepo::new(guild.clone());
        let trigger = if support_channels.contains(&channel_id) {
            Trigger::Channel
        } else if let Some(asker) =
            self.threads.get_or_load(&guild, || repo.thread_owners()).await?.get(&channel_id).copied()
        {
            // In a thread Beacon opened, it answers the member who asked (or whoever mentions
            // it): staff stepping in to help are not asking Beacon.
            if asker != author && !mentioned {
                return Ok(());
            }
            Trigger::Thread
        } else if mentioned && app.settings.get_bool(&guild, keys::MENTIONS).await? {
            Trigger::Mention
        } else {
            return Ok(());
        };
        // A resumed gateway session can deliver the message again: answer it once.
        if !claim_event(app, "support-answer", message.id.get()).await {
            return Ok(());
        }
        let text = sanitize::strip_bot_mention(&message.content, bot);
        let question = sanitize::question(text, MAX_QUESTION);
        if question.is_empty() {
            return Ok(());
        }
        let lang = Lang::for_question(&question, None);
        let started = Instant::now();
        let mut record = AnswerRecord {
            channel_id,
            user_id: author,
            trigger: trigger.as_str(),
            mode: "extractive",
            question_chars: question.chars().count(),
            lang,
            ..AnswerRecord::default()
        };
        // Limits and screening come before anything visible: a refused message opens no thread
        // and gets no public answer, only one quiet notice per member per minute.
        if let Some(refusal) = self.admit(app, &guild, &question, &mut record).await? {
            let prepared = self.finish(app, &guild, record, started, &question, refusal, Vec::new(), None, &[]).await?;
            let notice = CacheKey::guild(guild_id, "support", &format!("notice:{author}"));
            if app.cache.hit(&notice, Duration::from_secs(60), 1).await?.allowed {
                app.http.create_message(message.channel_id).reply(message.id).content(&prepared.content).await?;
            }
            return Ok(());
        }
        // The thread comes first: a streamed answer is posted into it while it is written.
        let mut target = channel_id;
        let mut reply_to = Some(message.id);
        if trigger == Trigger::Channel && app.settings.get_bool(&guild, keys::THREADS).await? {
            let name: String = question.chars().take(90).collect();
            let thread = match app.http.create_thread_from_message(message.channel_id, message.id, &name).await {
                Ok(created) => created.model().await?.id.get(),
                // The same message handled again (a worker stopped mid-answer): the thread
                // it opened has the message's id.
                Err(e) if beacon_discord::rest::discord_error(&e).and_then(|(_, code)| code) == Some(160004) => {
                    message.id.get()
                }
                Err(e) => return Err(e.into()),
            };
            repo.add_thread(thread, author, now_ms()).await?;
            target = thread;
            reply_to = None;
        }
        let mut live = ChannelAnswer::new(app.http.clone(), target, message.id, reply_to, self.edit_interval);
        let prepared =
            self.answer_admitted(app, &guild, target, question, record, started, None, Some(&mut live)).await;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            // A half-written answer is not left behind.
            Err(e) if live.is_posted() => {
                live.deliver(lang.strings().failed, &[]).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let posted = live.deliver(&prepared.content, &prepared.components).await?;
        // The answer is out: failing now would release the claim and answer again on
        // redelivery, so the link to the posted message is best effort.
        if let Some(answer_id) = prepared.answer_id
            && let Err(e) = repo.set_message(answer_id, posted.get()).await
        {
            tracing::warn!(error = %e, guild_id, answer_id, "the answer was posted but its message id was not stored");
        }
        Ok(())
    }
}

/// What the LLM made of a question (see [`SupportModule::llm_answer`]).
enum LlmOutcome {
    Answer { content: String, sources: Vec<i64> },
    CannotAnswer,
}

/// Lines for one embed field: as many as fit Discord's 1,024 characters, then how many more.
fn field_text(lines: &[String]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let more = format!("…and {} more", lines.len() - i);
        if out.chars().count() + line.chars().count() + more.chars().count() + 2 > 1024 {
            out.push_str(&more);
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

const CORRECTION_EXPIRED: &str =
    "This answer is too old to correct here; add the right answer with `/faq add` instead.";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How an answer ended, for `beacon_answers_total{outcome}`: `llm` (a grounded LLM answer),
/// `quoted` (the passage itself), `abstained`, `rate_limited`, `refused` (the injection screen).
fn answer_label(record: &AnswerRecord) -> &'static str {
    match record.outcome {
        "answered" if record.mode == "llm" => "llm",
        "answered" => "quoted",
        "abstained" => "abstained",
        "rate_limited" => "rate_limited",
        "refused" => "refused",
        _ => "other",
    }
}

fn abstain_text(lang: Lang) -> String {
    lang.strings().abstain.to_owned()
}

/// The best passage's best sentences for `question` (the whole passage when it is short), quoted
/// as written, with the passage as the source (labelled in `lang`).
pub(crate) fn render_extractive(question: &str, hit: &Hit, lang: Lang) -> String {
    let span = extract::best_span(question, &hit.text);
    let passage =
        format!("{}{}{}", if span.cut_before { "…" } else { "" }, span.text, if span.cut_after { "…" } else { "" });
    let quoted: String = passage.lines().map(|l| format!("> {l}\n")).collect();
    let source = grounded::source_label(hit, true);
    format!("{quoted}-# {}: {source}", lang.strings().source)
}

#[async_trait]
impl Module for SupportModule {
    fn name(&self) -> &'static str {
        "support"
    }

    fn description(&self) -> &'static str {
        "Answers questions from the server's knowledge base, or hands over to a human"
    }

    fn intents(&self) -> Intents {
        Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT | Intents::GUILD_MESSAGE_REACTIONS
    }

    fn events(&self) -> &'static [EventType] {
        &[EventType::Ready, EventType::MessageCreate, EventType::ReactionAdd]
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![SCHEMA]
    }

    fn permissions(&self) -> Permissions {
        // Answers in support channels and the threads it opens for them, with source embeds
        // and the 👍/👎 reactions members give.
        Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::SEND_MESSAGES_IN_THREADS
            | Permissions::CREATE_PUBLIC_THREADS
            | Permissions::READ_MESSAGE_HISTORY
            | Permissions::EMBED_LINKS
            | Permissions::ADD_REACTIONS
    }

    fn provides(&self) -> Vec<Port> {
        vec![Port::new::<dyn ReplyDrafter>("support", Arc::new(self.clone()))]
    }

    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::personal_data()
    }

    fn retention(&self) -> Vec<beacon_framework::retention::Retention> {
        crate::privacy::retention()
    }

    /// Answer content also lives in the audit log's lines (where the server opted in): those
    /// older than the cut-off lose their question and answer with the rows.
    async fn expire(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        rule: &beacon_framework::retention::Retention,
        cutoff_ms: i64,
    ) -> Result<u64, HandlerError> {
        // Only the answer-content rule reaches the audit log; the gaps rule's rows are its own.
        let lines = if rule.setting == crate::privacy::CONTENT_RETENTION {
            let _guard = self.audit_lock.lock().await;
            crate::privacy::expire_audit_content(&audit_file(&audit_dir(app), guild.id()), cutoff_ms).await?
        } else {
            0
        };
        let rows: u64 = guild.expire_rows(rule.expire, cutoff_ms).await?.iter().sum();
        Ok(rows + lines)
    }

    async fn export_member(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        user_id: u64,
    ) -> Result<Vec<beacon_framework::privacy::ExportPart>, HandlerError> {
        let mut parts = beacon_framework::privacy::export_declared(&self.personal_data(), guild, user_id).await?;
        let _guard = self.audit_lock.lock().await;
        let file = audit_file(&audit_dir(app), guild.id());
        parts.extend(crate::privacy::export_extra(app, guild, user_id, &file).await?);
        Ok(parts)
    }

    async fn erase_member(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        user_id: u64,
    ) -> Result<Vec<beacon_framework::privacy::ErasureLine>, HandlerError> {
        let mut lines = {
            let _guard = self.audit_lock.lock().await;
            crate::privacy::erase_extra(app, guild, user_id, &audit_file(&audit_dir(app), guild.id())).await?
        };
        lines.extend(beacon_framework::privacy::erase_declared(&self.personal_data(), guild, user_id).await?);
        Ok(lines)
    }

    async fn purge_guild(&self, app: &Arc<App>, guild_id: u64) -> Result<Vec<String>, HandlerError> {
        let file = audit_file(&audit_dir(app), guild_id);
        let _guard = self.audit_lock.lock().await;
        match tokio::fs::remove_file(&file).await {
            Ok(()) => Ok(vec![format!("audit log {} removed", file.display())]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(HandlerError::internal(format!("removing {}: {e}", file.display()))),
        }
    }

    fn settings(&self) -> Vec<SettingSpec> {
        vec![
            SettingSpec::new(
                keys::CHANNELS,
                SettingKind::list(SettingKind::Channel, 25),
                json!([]),
                "Channels where every message is treated as a question.",
            ),
            SettingSpec::new(keys::MENTIONS, SettingKind::Bool, json!(true), "Answer when someone mentions the bot."),
            SettingSpec::new(
                keys::THREADS,
                SettingKind::Bool,
                json!(true),
                "Answer support-channel questions in a new thread (follow-ups there are answered too).",
            ),
            SettingSpec::new(
                keys::USER_RATE,
                SettingKind::Int { min: 1, max: 60 },
                json!(5),
                "Questions a member may ask per minute.",
            ),
            SettingSpec::new(
                keys::GUILD_RATE,
                SettingKind::Int { min: 1, max: 1000 },
                json!(60),
                "Questions the whole server may ask per minute.",
            ),
            SettingSpec::new(
                keys::MIN_CONFIDENCE,
                SettingKind::Int { min: 0, max: 100 },
                json!((crate::confidence::DEFAULT_THRESHOLD * 100.0) as i64),
                "Confidence (0–100) needed to answer; below it the bot offers a human instead of guessing.",
            ),
            SettingSpec::new(
                keys::HISTORY,
                SettingKind::Int { min: 0, max: 20 },
                json!(6),
                "Earlier exchanges (the member's question and Beacon's answer) kept as context per member and thread or channel.",
            ),
            SettingSpec::new(
                keys::AUDIT_CONTENT,
                SettingKind::Bool,
                json!(false),
                "Keep question and answer text (PII-redacted) in the audit log.",
            ),
            SettingSpec::new(
                keys::COOLDOWN,
                SettingKind::String { max_len: 200 },
                json!("You're asking faster than I can answer — try again in {seconds}s."),
                "What a member sees when rate-limited ({seconds} is replaced).",
            ),
        ]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("ask", "Ask a question about this community", Access::Everyone)
                .public()
                .option(OptionSpec::string("question", "Your question").required().max_length(1000)),
            CommandSpec::new("support-stats", "Answers, feedback and abstentions of the last 7 days", Access::Staff),
        ]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.name.as_str() {
            "ask" => {
                let question = ctx.options.str("question").unwrap_or_default().to_owned();
                let channel = ctx.channel_id().unwrap_or(0);
                let mut live = InteractionAnswer::new(
                    ctx.app.http.clone(),
                    ctx.responder.clone(),
                    ctx.interaction.application_id,
                    ctx.interaction.token.clone(),
                    self.edit_interval,
                );
                let prepared = self
                    .answer_live(
                        &ctx.app,
                        &ctx.guild,
                        channel,
                        ctx.user_id(),
                        &question,
                        Trigger::Command,
                        ctx.locale(),
                        Some(&mut live),
                    )
                    .await;
                let prepared = match prepared {
                    Ok(prepared) => prepared,
                    Err(e) if live.is_shown() => {
                        let lang = Lang::for_question(&question, ctx.locale());
                        live.deliver(Reply::text(lang.strings().failed)).await?;
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                };
                let ephemeral = matches!(prepared.outcome, "rate_limited" | "refused" | "empty");
                let mut reply = Reply::text(prepared.content).with_components(prepared.components);
                if ephemeral {
                    reply = reply.ephemeral();
                }
                live.deliver(reply).await
            }
            _ => {
                let since = now_ms() - 7 * 86_400_000;
                let repo = SupportRepo::new(ctx.guild.clone());
                let (n, up, down, abstained) = repo.stats(since).await?;
                let documents =
                    KbRepo::new(ctx.guild.clone()).document_chunks().await.map_err(HandlerError::internal)?;
                let q = quality::report(&repo.outcomes(since).await?, &documents);
                let percent = |r: Option<u64>| r.map_or_else(|| "—".to_owned(), |r| format!("{r}%"));
                let mut embed = EmbedBuilder::new()
                    .title("Support answers — last 7 days")
                    .color(0x3B82F6)
                    .field(EmbedFieldBuilder::new("Questions", n.to_string()).inline())
                    .field(EmbedFieldBuilder::new("👍", up.to_string()).inline())
                    .field(EmbedFieldBuilder::new("👎", down.to_string()).inline())
                    .field(EmbedFieldBuilder::new("Handed to humans (abstained)", abstained.to_string()).inline())
                    .field(EmbedFieldBuilder::new("Answered rate", percent(q.answered_rate())).inline())
                    .field(EmbedFieldBuilder::new("Abstention rate", percent(q.abstention_rate())).inline());
                let mut by_source: Vec<String> = q
                    .sources
                    .iter()
                    .map(|(name, f)| format!("`{name}`: {} answers · 👍 {} · 👎 {}", f.answers, f.up, f.down))
                    .collect();
                if q.unknown_source > 0 {
                    by_source.push(format!("(re-synced since): {} answers", q.unknown_source));
                }
                if !by_source.is_empty() {
                    embed = embed.field(EmbedFieldBuilder::new("By source", field_text(&by_source)));
                }
                let ranked = quality::gaps(&repo.gaps(since, 5000).await?);
                if !ranked.is_empty() {
                    let lines: Vec<String> = ranked
                        .iter()
                        .map(|g| {
                            let question: String = g.question.chars().take(120).collect();
                            format!("{}× “{question}” (abstained {} · 👎 {})", g.count(), g.abstained, g.down)
                        })
                        .collect();
                    let name = format!("Gaps: questions abstained on or 👎 ({})", ranked.len());
                    embed = embed.field(EmbedFieldBuilder::new(name, field_text(&lines)));
                }
                if !q.never_used.is_empty() {
                    let titles: Vec<String> =
                        q.never_used.iter().map(|(source, title)| format!("{title} (`{source}`)")).collect();
                    let name = format!("Documents no answer drew on ({})", q.never_used.len());
                    embed = embed.field(EmbedFieldBuilder::new(name, field_text(&titles)));
                }
                if !q.never_retrieved.is_empty() {
                    let titles: Vec<String> =
                        q.never_retrieved.iter().map(|(source, title)| format!("{title} (`{source}`)")).collect();
                    let name = format!("Documents never retrieved ({})", q.never_retrieved.len());
                    embed = embed.field(EmbedFieldBuilder::new(name, field_text(&titles)));
                }
                ctx.reply(Reply::embed(embed.build()).ephemeral()).await
            }
        }
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        let action = ctx.action().to_owned();
        let parts: Vec<&str> = action.split(':').collect();
        let repo = SupportRepo::new(ctx.guild.clone());
        // A click carries no text: the clicker's Discord locale decides the language.
        let words = Lang::for_locale(ctx.interaction.locale.as_deref()).strings();
        match parts.as_slice() {
            ["fb", vote, id] => {
                let id: i64 = id.parse().map_err(|_| HandlerError::user(words.stale_button))?;
                let value = if *vote == "up" { 1 } else { -1 };
                if !repo.feedback(id, value, ctx.user_id()).await? {
                    return Err(HandlerError::user(words.answer_gone));
                }
                if value > 0 {
                    return ctx.reply(Reply::text(words.thanks).ephemeral()).await;
                }
                self.thumbs_down(&ctx.app, &ctx.guild, id).await?;
                let mut buttons = Vec::new();
                if human_available(&ctx.app, ctx.guild_id()).await {
                    buttons.push(button(format!("support:human:{id}"), words.human, ButtonStyle::Primary));
                }
                // Staff voting an answer down can correct it at once (only they see this reply).
                let key = CacheKey::guild(ctx.guild_id(), "support", &format!("correct:{id}"));
                if ctx.access >= Access::Staff
                    && corrections_available(&ctx.app, ctx.guild_id()).await
                    && ctx.app.cache.get(&key).await?.is_some()
                {
                    buttons.push(button(
                        format!("support:correct:{id}"),
                        "Correct this (staff)",
                        ButtonStyle::Secondary,
                    ));
                }
                let reply = if buttons.is_empty() {
                    Reply::text(words.thanks).ephemeral()
                } else {
                    Reply::text(words.sorry).ephemeral().with_components(vec![row(buttons)])
                };
                ctx.reply(reply).await
            }
            ["human", id] => {
                let Some(handoff) = ctx.app.port::<dyn HumanHandoff>() else {
                    return Err(HandlerError::user(words.no_ticket_desk));
                };
                let key = CacheKey::guild(ctx.guild_id(), "support", &format!("handoff:{id}"));
                let (question, attempt, earlier) = match ctx.app.cache.get(&key).await? {
                    Some(bytes) => {
                        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                        let earlier: Vec<Turn> = serde_json::from_value(v["earlier"].clone()).unwrap_or_default();
                        (
                            v["question"].as_str().unwrap_or_default().to_owned(),
                            v["attempt"].as_str().unwrap_or_default().to_owned(),
                            earlier,
                        )
                    }
                    None => (String::new(), "(the original answer has expired)".to_owned(), Vec::new()),
                };
                ctx.responder.defer()?;
                let topic: String =
                    if question.is_empty() { "Question for staff".into() } else { question.chars().take(90).collect() };
                let mut conversation = String::new();
                if !earlier.is_empty() {
                    conversation.push_str("Earlier in the conversation:\n");
                    for turn in &earlier {
                        let who = match turn.who {
                            Speaker::Member => "Member",
                            Speaker::Beacon => "Beacon",
                            Speaker::Staff => "Staff",
                        };
                        conversation.push_str(&format!("- {who}: {}\n", turn.text));
                    }
                    conversation.push('\n');
                }
                conversation.push_str(&format!("Question:\n{question}\n\nBeacon's answer:\n{attempt}\n"));
                let place = handoff
                    .open(&ctx.app, ctx.guild_id(), ctx.channel_id(), ctx.user_id(), &topic, &conversation)
                    .await?;
                ctx.reply(Reply::text(words.ticket_opened.replace("{place}", &place)).ephemeral()).await
            }
            ["correct", id] => {
                ctx.require(Access::Staff)?;
                let key = CacheKey::guild(ctx.guild_id(), "support", &format!("correct:{id}"));
                if ctx.app.cache.get(&key).await?.is_none() {
                    return Err(HandlerError::user(CORRECTION_EXPIRED));
                }
                let field = text_input("answer", "The right answer", TextInputStyle::Paragraph, MAX_CORRECTION);
                ctx.responder.modal(format!("support:correct:{id}"), "Correct Beacon's answer", vec![field.into()])
            }
            _ => Err(HandlerError::user(words.stale_button)),
        }
    }

    /// "Correct this": staff's right answer becomes knowledge (through the `AnswerCorrections`
    /// port, the FAQ) linked to the member's question, PII-redacted, and the cached answer to that
    /// question is dropped.
    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        // A form can be submitted without the button that opened it: check again.
        ctx.require(Access::Staff)?;
        let action = ctx.action().to_owned();
        let Some(id) = action.strip_prefix("correct:") else {
            return Err(HandlerError::user("This form is no longer valid."));
        };
        let answer = ctx.field("answer").unwrap_or_default().trim().to_owned();
        if answer.is_empty() {
            return Err(HandlerError::user("Write the right answer, then submit."));
        }
        let key = CacheKey::guild(ctx.guild_id(), "support", &format!("correct:{id}"));
        let Some(bytes) = ctx.app.cache.get(&key).await? else {
            return Err(HandlerError::user(CORRECTION_EXPIRED));
        };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| HandlerError::user(CORRECTION_EXPIRED))?;
        let question = pii::redact(v["question"].as_str().unwrap_or_default());
        let Some(corrections) = ctx.app.port::<dyn AnswerCorrections>() else {
            return Err(HandlerError::user("Corrections are kept in the FAQ, which this deployment does not run."));
        };
        let made = corrections.correct(&ctx.app, ctx.guild_id(), ctx.user_id(), &question, &answer).await?;
        if let Some(name) = v["answer_key"].as_str() {
            ctx.app.cache.delete(&CacheKey::guild(ctx.guild_id(), "support", name)).await?;
        }
        ctx.app.cache.delete(&key).await?;
        ctx.reply(
            Reply::text(format!(
                "Saved as {made}, linked to the question “{question}”. Beacon answers from it once the knowledge base has taken it in (a few seconds)."
            ))
            .ephemeral(),
        )
        .await
    }

    async fn event(&self, ctx: EventCtx) -> HandlerResult {
        match ctx.event.as_ref() {
            Event::Ready(ready) => {
                let _ = self.bot_id.set(ready.user.id.get());
                Ok(())
            }
            Event::MessageCreate(message) => self.on_message(&ctx.app, message).await,
            Event::ReactionAdd(reaction) => {
                let (Some(guild_id), EmojiReactionType::Unicode { name }) = (reaction.guild_id, &reaction.emoji) else {
                    return Ok(());
                };
                let value = match name.as_str() {
                    "👍" => 1,
                    "👎" => -1,
                    _ => return Ok(()),
                };
                let repo = SupportRepo::new(ctx.app.guild(guild_id.get()));
                let message = reaction.message_id.get();
                let mut answer = repo.answer_for_message(message).await?;
                // An answer is posted, then recorded with its message id: a reaction on Beacon's
                // own message can arrive in between, so look again briefly before dropping it.
                let ours = match (reaction.message_author_id, ctx.app.application_id()) {
                    (Some(author), Some(app_id)) => author.get() == app_id.get(),
                    _ => false,
                };
                let mut tries = 0;
                while answer.is_none() && ours && tries < 20 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    answer = repo.answer_for_message(message).await?;
                    tries += 1;
                }
                if let Some(id) = answer {
                    repo.feedback(id, value, reaction.user_id.get()).await?;
                    if value < 0 {
                        self.thumbs_down(&ctx.app, &ctx.app.guild(guild_id.get()), id).await?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Where the support audit log lives: one file per guild, so a purge removes a guild's lines.
fn audit_dir(app: &App) -> PathBuf {
    app.config.data_dir.join("audit").join("support")
}

fn audit_file(dir: &std::path::Path, guild_id: u64) -> PathBuf {
    dir.join(format!("guild-{guild_id}.jsonl"))
}

/// "Suggest reply" in a ticket drafts from the knowledge base (and the LLM) like an answer.
#[async_trait]
impl ReplyDrafter for SupportModule {
    async fn draft(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        conversation: &[ConversationMessage],
    ) -> Result<Option<String>, HandlerError> {
        self.draft_reply(app, &app.guild(guild_id), staff_id, conversation).await
    }
}

/// Whether staff's corrections can be kept in `guild_id`: a module provides them and they are
/// available there (the FAQ is on).
async fn corrections_available(app: &Arc<App>, guild_id: u64) -> bool {
    match app.port::<dyn AnswerCorrections>() {
        Some(corrections) => corrections.available(app, guild_id).await,
        None => false,
    }
}

/// Whether "Talk to a human" can be offered in `guild_id`: a module provides the hand-off and it
/// is available there (the ticket desk is on).
async fn human_available(app: &Arc<App>, guild_id: u64) -> bool {
    match app.port::<dyn HumanHandoff>() {
        Some(handoff) => handoff.available(app, guild_id).await,
        None => false,
    }
}
