//! The `agent` module: `/agent …`, `/projects …`, `/sessions …`, the registration form, the
//! confirmation and activation buttons, and the listener that continues sessions in their threads.

use std::sync::Arc;
use std::time::Duration;

use beacon_framework::App;
use beacon_framework::module::claim_event_final;
use beacon_framework::reply::components::{button, row, text_input};
use beacon_framework::{
    Access, AutocompleteCtx, Choice, CommandCtx, CommandSpec, ComponentCtx, EventCtx, HandlerError, HandlerResult,
    InteractionCtx, ModalCtx, Module, OptionSpec, Reply, SettingKind, SettingSpec, StatusField, async_trait,
};
use beacon_store::{GuildStore, Schema, now_ms};
use serde_json::json;
use twilight_model::channel::ChannelType;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::channel::message::component::{ButtonStyle, TextInputStyle};
use twilight_model::gateway::Intents;
use twilight_model::gateway::event::{Event, EventType};
use twilight_model::guild::Permissions;
use twilight_model::http::attachment::Attachment;
use twilight_model::id::Id;

use crate::client::AgentError;
use crate::flow::{self, Bridge, Member};
use crate::model::{Repo, SCHEMA, SessionThread};
use crate::{AgentModule, keys};

/// Answers longer than this also come as a file (beside the split messages).
const FILE_OVER: usize = 6_000;
/// Longest project, session or thread name.
const NAME_MAX: usize = 100;
/// Longest message to the agent (Discord's own option limit is 6,000).
const MESSAGE_MAX: u16 = 6_000;

pub(crate) fn settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            keys::THREADS,
            SettingKind::Bool,
            json!(true),
            "Give each new agent session a thread, where its owner's messages continue it.",
        ),
        SettingSpec::new(
            keys::ROLES,
            SettingKind::list(SettingKind::Role, 25),
            json!([]),
            "Roles allowed to use the agent bridge (empty: every member).",
        ),
    ]
}

fn project_opt(required: bool) -> OptionSpec {
    let o = OptionSpec::string("project", "Project name (default: the one picked with /agent use)").autocomplete();
    if required { o.required() } else { o }
}

fn session_opt() -> OptionSpec {
    OptionSpec::string("session", "Session name").autocomplete().required()
}

pub(crate) fn commands() -> Vec<CommandSpec> {
    let message = || OptionSpec::string("message", "What to tell the agent").required().max_length(MESSAGE_MAX);
    vec![
        CommandSpec::new("agent", "Work with the AI coding agent", Access::Everyone)
            .public()
            .option(OptionSpec::subcommand("register", "Connect your agent-service account (private form)", vec![]))
            .option(OptionSpec::subcommand("whoami", "Your agent-service account here and your usage", vec![]))
            .option(OptionSpec::subcommand("unregister", "Forget your API key on this server", vec![]))
            .option(OptionSpec::subcommand(
                "use",
                "Remember a project so you can leave it out",
                vec![project_opt(true)],
            ))
            .option(OptionSpec::subcommand(
                "ask",
                "Start a new session with a message",
                vec![message(), project_opt(false)],
            ))
            .option(OptionSpec::subcommand(
                "ask-session",
                "Continue a session with a message",
                vec![session_opt(), message(), project_opt(false)],
            )),
        CommandSpec::new("projects", "Your agent projects", Access::Everyone)
            .option(OptionSpec::subcommand("list", "Your projects and whether they run", vec![]))
            .option(OptionSpec::subcommand(
                "create",
                "Create a project",
                vec![
                    OptionSpec::string("name", "Its name").required().max_length(NAME_MAX as u16),
                    OptionSpec::string("repo_url", "Repository it works on (https://…)").max_length(500),
                ],
            ))
            .option(OptionSpec::subcommand("delete", "Delete a project (asks first)", vec![project_opt(true)]))
            .option(OptionSpec::subcommand(
                "activate",
                "Start a project's workspace (can take two minutes)",
                vec![project_opt(true)],
            ))
            .option(OptionSpec::subcommand("deactivate", "Stop a project's workspace", vec![project_opt(true)]))
            .option(OptionSpec::subcommand("info", "A project's details and sessions", vec![project_opt(false)])),
        CommandSpec::new("sessions", "Sessions in your agent projects", Access::Everyone)
            .option(OptionSpec::subcommand("list", "A project's sessions", vec![project_opt(false)]))
            .option(OptionSpec::subcommand(
                "create",
                "Create a session",
                vec![OptionSpec::string("name", "Its name").required().max_length(NAME_MAX as u16), project_opt(false)],
            ))
            .option(OptionSpec::subcommand(
                "delete",
                "Delete a session (asks first)",
                vec![session_opt(), project_opt(false)],
            )),
    ]
}

fn private(text: impl Into<String>) -> Reply {
    Reply::text(text).ephemeral()
}

/// Where progress shows while the agent works.
enum Progress {
    /// The interaction's own response (edited).
    Interaction { app: Arc<App>, token: String },
    /// A message in a channel or thread (edited).
    Message { app: Arc<App>, channel: u64, message: u64 },
}

impl Progress {
    async fn show(&self, text: &str) {
        let none = AllowedMentions::default();
        let result = match self {
            Progress::Interaction { app, token } => match app.application_id() {
                Some(id) => app
                    .http
                    .interaction(id)
                    .update_response(token)
                    .content(Some(text))
                    .allowed_mentions(Some(&none))
                    .await
                    .map(drop),
                None => return,
            },
            Progress::Message { app, channel, message } => app
                .http
                .update_message(Id::new(*channel), Id::new(*message))
                .content(Some(text))
                .allowed_mentions(Some(&none))
                .await
                .map(drop),
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "agent progress not shown");
        }
    }
}

/// Waits for `work`, showing the elapsed time every `every` (edits stay well under Discord's
/// limits: one per interval).
async fn with_progress<T>(work: impl Future<Output = T>, progress: &Progress, every: Duration, what: &str) -> T {
    tokio::pin!(work);
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(started + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticks.tick() => {
                let secs = started.elapsed().as_secs();
                progress.show(&format!("⏳ {what}… {secs} s so far")).await;
            }
        }
    }
}

/// Posts an answer in a channel or thread: split without breaking code blocks (the first part
/// replaces `placeholder` when given), and as a file too when very long.
async fn post_answer(app: &App, channel: u64, placeholder: Option<u64>, answer: &str) -> HandlerResult {
    let none = AllowedMentions::default();
    let mut parts = beacon_discord::split::split_message(answer, beacon_discord::split::MESSAGE_LIMIT);
    if parts.is_empty() {
        parts.push("(The agent sent an empty answer.)".to_owned());
    }
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        let file = (i == last && answer.chars().count() > FILE_OVER)
            .then(|| vec![Attachment::from_bytes("agent-answer.md".into(), answer.as_bytes().to_vec(), 1)]);
        match (i, placeholder) {
            (0, Some(message)) if file.is_none() => {
                app.http
                    .update_message(Id::new(channel), Id::new(message))
                    .content(Some(part))
                    .allowed_mentions(Some(&none))
                    .await?;
            }
            _ => {
                if i == 0
                    && let Some(message) = placeholder
                {
                    app.http.delete_message(Id::new(channel), Id::new(message)).await?;
                }
                let mut req = app.http.create_message(Id::new(channel)).content(part).allowed_mentions(Some(&none));
                if let Some(files) = &file {
                    req = req.attachments(files);
                }
                req.await?;
            }
        }
    }
    Ok(())
}

/// What a member may read of an error posted in a thread (no ephemeral reply exists there);
/// internal failures are logged, not shown.
fn said(e: &HandlerError) -> String {
    if e.is_for_member() {
        e.to_string()
    } else {
        tracing::error!(error = %e, "agent thread message failed");
        "Something went wrong on Beacon's side; the operator can find it in the logs.".to_owned()
    }
}

fn answer_reply(answer: &str) -> Reply {
    let text = if answer.trim().is_empty() { "(The agent sent an empty answer.)" } else { answer };
    let reply = Reply::text(text);
    if answer.chars().count() > FILE_OVER {
        reply.with_attachment(Attachment::from_bytes("agent-answer.md".into(), answer.as_bytes().to_vec(), 1))
    } else {
        reply
    }
}

/// The refusal for an inactive project, with its Activate button.
fn inactive_reply(project_id: &str, name: &str) -> Reply {
    private(format!("Project **{name}** is not active. Activate it first (it can take two minutes).")).with_components(
        vec![row(vec![button(format!("agent:activate:{project_id}"), "Activate", ButtonStyle::Primary)])],
    )
}

impl AgentModule {
    fn bridge(&self, app: &Arc<App>) -> Bridge {
        Bridge { app: app.clone(), client: self.client.clone() }
    }

    /// Refuses members without one of the `agent.roles` (admins always pass).
    async fn check_role(&self, ctx: &InteractionCtx) -> HandlerResult {
        if ctx.access >= Access::Authorized {
            return Ok(());
        }
        let roles = ctx.app.settings.get_ids(&ctx.guild, keys::ROLES).await?;
        if roles.is_empty() || ctx.caller.roles.iter().any(|r| roles.contains(r)) {
            Ok(())
        } else {
            Err(HandlerError::Forbidden("The agent bridge is for members with one of the agent roles here.".into()))
        }
    }

    async fn agent(&self, ctx: &CommandCtx) -> HandlerResult {
        let bridge = self.bridge(&ctx.app);
        let guild = &ctx.guild;
        let user = ctx.user_id();
        match ctx.options.subcommand() {
            Some("register") => ctx.responder.modal(
                "agent:register",
                "Connect the agent service",
                vec![
                    text_input("service_user", "Your user id on the agent service", TextInputStyle::Short, 200)
                        .min_length(1)
                        .into(),
                    text_input("api_key", "Your API key (stored encrypted, never shown)", TextInputStyle::Short, 512)
                        .min_length(1)
                        .into(),
                ],
            ),
            Some("whoami") => {
                let m = bridge.member(guild, user).await?;
                let count = match bridge.projects(guild, &m).await {
                    Ok(p) => format!("{} projects", p.len()),
                    Err(e) => format!("projects unavailable: {}", flow::user_message(&e)),
                };
                let current = m.account.current_project.as_ref().map(|p| p.1.as_str()).unwrap_or("none");
                let day = now_ms() - 86_400_000;
                let mine = Repo::new(guild.clone()).call_stats(day, Some(user)).await?;
                ctx.reply(private(format!(
                    "Agent service user **{}**, registered <t:{}:R>; key stored encrypted.\nCurrent project: **{current}** · {count}\nYour last 24 h: {} calls, {} errors, median {} ms.",
                    m.account.service_user_id,
                    m.account.created_at / 1000,
                    mine.calls,
                    mine.errors,
                    mine.p50_ms
                )))
                .await
            }
            Some("unregister") => {
                let text = if Repo::new(guild.clone()).delete_account(user).await? {
                    "Your agent-service account and API key are forgotten on this server."
                } else {
                    "You were not registered here."
                };
                ctx.reply(private(text)).await
            }
            Some("use") => {
                let m = bridge.member(guild, user).await?;
                let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
                Repo::new(guild.clone()).set_current_project(user, Some((&p.id, &p.name))).await?;
                ctx.reply(private(format!("Your current project is **{}**.", p.name))).await
            }
            Some("ask") => self.ask(ctx, &bridge, None).await,
            Some("ask-session") => {
                let session = ctx.options.str("session").unwrap_or_default().to_owned();
                self.ask(ctx, &bridge, Some(session)).await
            }
            _ => Err(HandlerError::user("Unknown /agent subcommand.")),
        }
    }

    /// `/agent ask` (new session) and `/agent ask-session`.
    async fn ask(&self, ctx: &CommandCtx, bridge: &Bridge, session: Option<String>) -> HandlerResult {
        let guild = &ctx.guild;
        let message = ctx.options.str("message").map(str::trim).unwrap_or_default().to_owned();
        if message.is_empty() {
            return Err(HandlerError::user("Write a message for the agent."));
        }
        ctx.responder.defer()?;
        let m = bridge.member(guild, ctx.user_id()).await?;
        let project = bridge.project(guild, &m, ctx.options.str("project")).await?;
        if !project.is_active() {
            return ctx.reply(inactive_reply(&project.id, &project.name)).await;
        }
        let repo = Repo::new(guild.clone());
        let (session, thread) = match session {
            Some(name) => {
                let s = bridge.session(guild, &m, &project, &name).await?;
                let thread = repo.thread_of_session(&s.session_id).await?;
                (s, thread)
            }
            None => {
                let name = flow::clean_name(&message, 60);
                let created = bridge
                    .call(guild, &m, "create_session", |c, k| {
                        let (pid, name) = (project.id.clone(), name.clone());
                        async move { c.create_session(&k, &pid, &name).await }
                    })
                    .await;
                let s = match created {
                    Ok(s) => s,
                    Err(AgentError::Inactive(_)) => return ctx.reply(inactive_reply(&project.id, &project.name)).await,
                    Err(e) => return Err(HandlerError::user(flow::user_message(&e))),
                };
                let thread = self.open_thread(ctx, &project.name, &s.name).await?;
                if let Some(thread) = thread {
                    let t = SessionThread {
                        thread_id: thread,
                        user_id: ctx.user_id(),
                        project: (project.id.clone(), project.name.clone()),
                        session: (s.session_id.clone(), s.name.clone()),
                    };
                    repo.save_thread(&t, now_ms()).await?;
                }
                (s, thread)
            }
        };
        let progress = Progress::Interaction { app: ctx.app.clone(), token: ctx.interaction.token.clone() };
        let what = format!("The agent is working on **{}** · {}", project.name, session.name);
        match thread {
            Some(thread) => {
                let none = AllowedMentions::default();
                let quoted = flow::clean_name(&message, 1_800);
                ctx.app
                    .http
                    .create_message(Id::new(thread))
                    .content(&format!("<@{}>: {quoted}", ctx.user_id()))
                    .allowed_mentions(Some(&none))
                    .await?;
                progress.show(&format!("⏳ {what}… answer in <#{thread}>")).await;
                let sent = bridge.send(guild, &m, &project.id, &session.session_id, &message);
                let answer = with_progress(sent, &progress, self.progress_every, &what).await?;
                post_answer(&ctx.app, thread, None, &answer).await?;
                ctx.reply(Reply::text(format!("✅ The agent answered in <#{thread}> (session **{}**).", session.name)))
                    .await
            }
            None => {
                let sent = bridge.send(guild, &m, &project.id, &session.session_id, &message);
                let answer = with_progress(sent, &progress, self.progress_every, &what).await?;
                ctx.reply(answer_reply(&answer)).await
            }
        }
    }

    /// A thread for a new session, where the guild wants them and the channel allows it.
    async fn open_thread(&self, ctx: &CommandCtx, project: &str, session: &str) -> Result<Option<u64>, HandlerError> {
        if !ctx.app.settings.get_bool(&ctx.guild, keys::THREADS).await? {
            return Ok(None);
        }
        let Some(channel) = ctx.interaction.channel.as_ref() else { return Ok(None) };
        if channel.kind.is_thread() || channel.kind != ChannelType::GuildText {
            return Ok(None);
        }
        let name = flow::clean_name(&format!("🤖 {project} · {session}"), NAME_MAX);
        let thread = ctx.app.http.create_thread(channel.id, &name, ChannelType::PublicThread).await?.model().await?;
        Ok(Some(thread.id.get()))
    }

    async fn projects(&self, ctx: &CommandCtx) -> HandlerResult {
        let bridge = self.bridge(&ctx.app);
        let guild = &ctx.guild;
        let sub = ctx.options.subcommand().unwrap_or_default().to_owned();
        if sub == "activate" {
            ctx.responder.defer()?;
        }
        let m = bridge.member(guild, ctx.user_id()).await?;
        let fail = |e: AgentError| HandlerError::user(flow::user_message(&e));
        match sub.as_str() {
            "list" => {
                let projects = bridge.projects(guild, &m).await.map_err(fail)?;
                let text = if projects.is_empty() {
                    "You have no projects yet. Create one with `/projects create`.".to_owned()
                } else {
                    projects
                        .iter()
                        .map(|p| {
                            let chip = if p.is_active() { "🟢 active" } else { "⚪ inactive" };
                            format!(
                                "**{}** · {chip}{}",
                                p.name,
                                p.repo_url.as_ref().map(|u| format!(" · <{u}>")).unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                ctx.reply(private(text)).await
            }
            "create" => {
                let name = flow::clean_name(ctx.options.str("name").unwrap_or_default(), NAME_MAX);
                if name.is_empty() {
                    return Err(HandlerError::user("Give the project a name."));
                }
                let repo_url = ctx.options.str("repo_url").map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned);
                if let Some(u) = &repo_url
                    && !(u.starts_with("https://") || u.starts_with("http://"))
                {
                    return Err(HandlerError::user("repo_url must be an https:// address."));
                }
                let p = bridge
                    .call(guild, &m, "create_project", |c, k| async move {
                        c.create_project(&k, &name, repo_url.as_deref()).await
                    })
                    .await
                    .map_err(fail)?;
                ctx.reply(private(format!(
                    "Project **{}** created (inactive). Start it with `/projects activate`.",
                    p.name
                )))
                .await
            }
            "delete" => {
                let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
                ctx.reply(
                    private(format!("Delete project **{}** and all its sessions? This cannot be undone.", p.name))
                        .with_components(vec![row(vec![
                            button(format!("agent:delete-project:{}", p.id), "Delete", ButtonStyle::Danger),
                            button("agent:cancel", "Keep it", ButtonStyle::Secondary),
                        ])]),
                )
                .await
            }
            "activate" => {
                let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
                let token = &ctx.interaction.token;
                let text =
                    self.activate(ctx.app.clone(), &bridge, guild, &m, &p.id, &p.name, token).await.map_err(fail)?;
                ctx.reply(private(text)).await
            }
            "deactivate" => {
                let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
                let id = p.id.clone();
                bridge
                    .call(guild, &m, "deactivate", |c, k| async move { c.deactivate(&k, &id).await })
                    .await
                    .map_err(fail)?;
                ctx.reply(private(format!("Project **{}** is stopped.", p.name))).await
            }
            "info" => {
                let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
                let id = p.id.clone();
                let sessions = bridge
                    .call(guild, &m, "sessions", |c, k| async move { c.sessions(&k, &id).await })
                    .await
                    .map_err(fail)?;
                let chip = if p.is_active() { "🟢 active" } else { "⚪ inactive" };
                let list = if sessions.is_empty() {
                    "no sessions".to_owned()
                } else {
                    sessions
                        .iter()
                        .map(|s| format!("• {} ({} messages)", s.name, s.message_count))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let reply = private(format!(
                    "**{}** · {chip}\nRepository: {}\nSessions:\n{list}",
                    p.name,
                    p.repo_url.as_deref().unwrap_or("none")
                ));
                let reply = if p.is_active() {
                    reply
                } else {
                    reply.with_components(vec![row(vec![button(
                        format!("agent:activate:{}", p.id),
                        "Activate",
                        ButtonStyle::Primary,
                    )])])
                };
                ctx.reply(reply).await
            }
            _ => Err(HandlerError::user("Unknown /projects subcommand.")),
        }
    }

    /// Activates a project with progress on the interaction's response; the text to answer.
    #[allow(clippy::too_many_arguments)]
    async fn activate(
        &self,
        app: Arc<App>,
        bridge: &Bridge,
        guild: &GuildStore,
        m: &Member,
        project_id: &str,
        name: &str,
        token: &str,
    ) -> Result<String, AgentError> {
        let progress = Progress::Interaction { app, token: token.to_owned() };
        let id = project_id.to_owned();
        let work = bridge.call(guild, m, "activate", |c, k| async move { c.activate(&k, &id).await });
        with_progress(work, &progress, self.progress_every, &format!("Starting **{name}**")).await?;
        Ok(format!("Project **{name}** is active."))
    }

    async fn sessions(&self, ctx: &CommandCtx) -> HandlerResult {
        let bridge = self.bridge(&ctx.app);
        let guild = &ctx.guild;
        let m = bridge.member(guild, ctx.user_id()).await?;
        let p = bridge.project(guild, &m, ctx.options.str("project")).await?;
        let fail = |e: AgentError| HandlerError::user(flow::user_message(&e));
        match ctx.options.subcommand() {
            Some("list") => {
                let id = p.id.clone();
                let sessions = bridge
                    .call(guild, &m, "sessions", |c, k| async move { c.sessions(&k, &id).await })
                    .await
                    .map_err(fail)?;
                let text = if sessions.is_empty() {
                    format!("**{}** has no sessions. Start one with `/agent ask`.", p.name)
                } else {
                    let repo = Repo::new(guild.clone());
                    let mut lines = Vec::new();
                    for s in &sessions {
                        let thread = repo
                            .thread_of_session(&s.session_id)
                            .await?
                            .map(|t| format!(" · <#{t}>"))
                            .unwrap_or_default();
                        lines.push(format!("• **{}** ({} messages){thread}", s.name, s.message_count));
                    }
                    format!("Sessions of **{}**:\n{}", p.name, lines.join("\n"))
                };
                ctx.reply(private(text)).await
            }
            Some("create") => {
                let name = flow::clean_name(ctx.options.str("name").unwrap_or_default(), NAME_MAX);
                if name.is_empty() {
                    return Err(HandlerError::user("Give the session a name."));
                }
                let id = p.id.clone();
                match bridge
                    .call(guild, &m, "create_session", |c, k| async move { c.create_session(&k, &id, &name).await })
                    .await
                {
                    Ok(s) => ctx.reply(private(format!("Session **{}** created in **{}**.", s.name, p.name))).await,
                    Err(AgentError::Inactive(_)) => ctx.reply(inactive_reply(&p.id, &p.name)).await,
                    Err(e) => Err(fail(e)),
                }
            }
            Some("delete") => {
                let s = bridge.session(guild, &m, &p, ctx.options.str("session").unwrap_or_default()).await?;
                ctx.reply(
                    private(format!("Delete session **{}** of **{}**? This cannot be undone.", s.name, p.name))
                        .with_components(vec![row(vec![
                            button(
                                format!("agent:delete-session:{}:{}", p.id, s.session_id),
                                "Delete",
                                ButtonStyle::Danger,
                            ),
                            button("agent:cancel", "Keep it", ButtonStyle::Secondary),
                        ])]),
                )
                .await
            }
            _ => Err(HandlerError::user("Unknown /sessions subcommand.")),
        }
    }

    /// A plain message in a session's thread from its owner continues the session.
    async fn thread_message(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        channel: u64,
        author: u64,
        content: &str,
        message: u64,
    ) -> HandlerResult {
        let Some(t) = Repo::new(guild.clone()).thread(channel).await? else { return Ok(()) };
        if t.user_id != author || content.trim().is_empty() {
            return Ok(());
        }
        if !app.settings.get_bool(guild, keys::THREADS).await? {
            return Ok(());
        }
        let none = AllowedMentions::default();
        // A send to the agent cannot be made idempotent: it is claimed before it starts and
        // never started again for the same message (delivered again after a worker stopped).
        // Whether the first one finished is the "done" claim: when it is missing, the member is
        // told, once, that the message may not have reached the agent.
        if !claim_event_final(app, "agent-send", message).await {
            if claim_event_final(app, "agent-send-done", message).await {
                app.http
                    .create_message(Id::new(channel))
                    .content(
                        "⚠️ Beacon stopped while sending this message to the agent: it may not have completed. \
                         Send it again if you do not see the agent's answer.",
                    )
                    .reply(Id::new(message))
                    .allowed_mentions(Some(&none))
                    .await?;
            }
            return Ok(());
        }
        let bridge = self.bridge(app);
        let result = async {
            let m = bridge.member(guild, author).await?;
            let placeholder = app
                .http
                .create_message(Id::new(channel))
                .content("⏳ The agent is working…")
                .reply(Id::new(message))
                .allowed_mentions(Some(&none))
                .await?
                .model()
                .await?;
            let progress = Progress::Message { app: app.clone(), channel, message: placeholder.id.get() };
            let what = format!("The agent is working on **{}** · {}", t.project.1, t.session.1);
            let sent = bridge.send(guild, &m, &t.project.0, &t.session.0, content.trim());
            match with_progress(sent, &progress, self.progress_every, &what).await {
                Ok(answer) => post_answer(app, channel, Some(placeholder.id.get()), &answer).await,
                Err(e) => {
                    progress.show(&format!("⚠️ {}", said(&e))).await;
                    Ok(())
                }
            }
        }
        .await;
        claim_event_final(app, "agent-send-done", message).await;
        if let Err(e) = result {
            // No ephemeral reply exists for a plain message: the member is told in the thread.
            let text = format!("⚠️ {}", said(&e));
            app.http
                .create_message(Id::new(channel))
                .content(&text)
                .reply(Id::new(message))
                .allowed_mentions(Some(&none))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Module for AgentModule {
    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::personal_data()
    }

    fn name(&self) -> &'static str {
        "agent"
    }

    fn description(&self) -> &'static str {
        "Drive the AI coding-agent service: projects, sessions, messages, threads"
    }

    fn enabled_by_default(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        commands()
    }

    fn settings(&self) -> Vec<SettingSpec> {
        settings()
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![SCHEMA]
    }

    fn intents(&self) -> Intents {
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT
    }

    fn events(&self) -> &'static [EventType] {
        &[EventType::MessageCreate]
    }

    fn permissions(&self) -> Permissions {
        Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::SEND_MESSAGES_IN_THREADS
            | Permissions::CREATE_PUBLIC_THREADS
            | Permissions::ATTACH_FILES
            | Permissions::READ_MESSAGE_HISTORY
    }

    async fn status(&self, _app: &Arc<App>, guild: &GuildStore) -> Vec<StatusField> {
        let stats = Repo::new(guild.clone()).call_stats(now_ms() - 86_400_000, None).await;
        let text = match stats {
            Ok(s) => format!("last 24 h: {} calls, {} errors, median {} ms", s.calls, s.errors, s.p50_ms),
            Err(e) => format!("call log unavailable ({e})"),
        };
        vec![StatusField::new("Agent service", text)]
    }

    async fn member_status(&self, _app: &Arc<App>, guild: &GuildStore, user_id: u64) -> Vec<StatusField> {
        let repo = Repo::new(guild.clone());
        match repo.account(user_id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Vec::new(),
            Err(e) => return vec![StatusField::new("Your agent use", format!("unavailable ({e})"))],
        }
        let text = match repo.call_stats(now_ms() - 86_400_000, Some(user_id)).await {
            Ok(s) => format!("last 24 h: {} calls, {} errors, median {} ms", s.calls, s.errors, s.p50_ms),
            Err(e) => format!("unavailable ({e})"),
        };
        vec![StatusField::new("Your agent use", text)]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        self.check_role(&ctx).await?;
        match ctx.name.as_str() {
            "agent" => self.agent(&ctx).await,
            "projects" => self.projects(&ctx).await,
            "sessions" => self.sessions(&ctx).await,
            _ => Err(HandlerError::user("Unknown command.")),
        }
    }

    async fn autocomplete(&self, ctx: AutocompleteCtx) -> HandlerResult<Vec<Choice>> {
        let Some((option, typed)) = ctx.options.focused() else { return Ok(Vec::new()) };
        let typed = typed.to_lowercase();
        let bridge = self.bridge(&ctx.app);
        let names = match option {
            "project" => bridge.project_names(&ctx.guild, ctx.user_id()).await?,
            "session" => {
                let m = bridge.member(&ctx.guild, ctx.user_id()).await?;
                let p = bridge.project(&ctx.guild, &m, ctx.options.str("project")).await?;
                let id = p.id.clone();
                bridge
                    .call(&ctx.guild, &m, "sessions", |c, k| async move { c.sessions(&k, &id).await })
                    .await
                    .map_err(|e| HandlerError::user(flow::user_message(&e)))?
                    .into_iter()
                    .map(|s| s.name)
                    .collect()
            }
            _ => return Ok(Vec::new()),
        };
        Ok(names
            .into_iter()
            .filter(|n| typed.is_empty() || n.to_lowercase().contains(&typed))
            .take(25)
            .map(|n| Choice::new(n.clone(), n))
            .collect())
    }

    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        self.check_role(&ctx).await?;
        let action = ctx.action().to_owned();
        let bridge = self.bridge(&ctx.app);
        let guild = &ctx.guild;
        let fail = |e: AgentError| HandlerError::user(flow::user_message(&e));
        if action == "cancel" {
            return ctx.responder.update(Reply::text("Nothing was deleted.").ephemeral()).await;
        }
        let (verb, arg) = action.split_once(':').unwrap_or((action.as_str(), ""));
        match verb {
            "activate" => {
                ctx.responder.defer()?;
                let m = bridge.member(guild, ctx.user_id()).await?;
                let name =
                    bridge.project(guild, &m, Some(arg)).await.map(|p| p.name).unwrap_or_else(|_| arg.to_owned());
                let text = self
                    .activate(ctx.app.clone(), &bridge, guild, &m, arg, &name, &ctx.interaction.token)
                    .await
                    .map_err(fail)?;
                ctx.reply(private(text)).await
            }
            "delete-project" => {
                let m = bridge.member(guild, ctx.user_id()).await?;
                let id = arg.to_owned();
                bridge
                    .call(guild, &m, "delete_project", |c, k| async move { c.delete_project(&k, &id).await })
                    .await
                    .map_err(fail)?;
                let repo = Repo::new(guild.clone());
                repo.forget_threads(arg, None).await?;
                if m.account.current_project.as_ref().is_some_and(|p| p.0 == arg) {
                    repo.set_current_project(ctx.user_id(), None).await?;
                }
                ctx.responder.update(Reply::text("Project deleted.").ephemeral()).await
            }
            "delete-session" => {
                let (project, session) =
                    arg.split_once(':').ok_or_else(|| HandlerError::user("This button is out of date."))?;
                let m = bridge.member(guild, ctx.user_id()).await?;
                let (p, s) = (project.to_owned(), session.to_owned());
                bridge
                    .call(guild, &m, "delete_session", |c, k| async move { c.delete_session(&k, &p, &s).await })
                    .await
                    .map_err(fail)?;
                Repo::new(guild.clone()).forget_threads(project, Some(session)).await?;
                ctx.responder.update(Reply::text("Session deleted.").ephemeral()).await
            }
            _ => Err(HandlerError::user("This button is out of date.")),
        }
    }

    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        self.check_role(&ctx).await?;
        if ctx.action() != "register" {
            return Err(HandlerError::user("This form is out of date."));
        }
        let service_user = ctx.field("service_user").unwrap_or_default().to_owned();
        let key = ctx.field("api_key").unwrap_or_default().to_owned();
        ctx.responder.defer()?;
        let projects = self.bridge(&ctx.app).register(&ctx.guild, ctx.user_id(), &service_user, &key).await?;
        ctx.reply(private(format!(
            "Connected as **{}** ({projects} projects). Your API key is stored encrypted and never shown.",
            service_user.trim()
        )))
        .await
    }

    async fn event(&self, ctx: EventCtx) -> HandlerResult {
        let Event::MessageCreate(m) = ctx.event.as_ref() else { return Ok(()) };
        let Some(guild_id) = m.guild_id else { return Ok(()) };
        if m.author.bot {
            return Ok(());
        }
        let guild = ctx.app.guild(guild_id.get());
        self.thread_message(&ctx.app, &guild, m.channel_id.get(), m.author.id.get(), &m.content, m.id.get()).await
    }
}
