//! The agent bridge's workflow: accounts and their sealed keys, names resolved to ids, messages
//! sent once with progress, and every call logged. [`crate::module`] adapts it to Discord.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_cache::CacheKey;
use beacon_framework::{App, HandlerError};
use beacon_store::{GuildStore, now_ms};

use crate::client::{AgentClient, AgentError, Project, Session};
use crate::model::{Account, Repo};

/// Associated data a member's sealed key is bound to: it opens only for this guild and member.
pub(crate) fn key_aad(guild_id: u64, user_id: u64) -> String {
    format!("agent-key:{guild_id}:{user_id}")
}

/// Longest API key or service user id accepted.
const MAX_CREDENTIAL: usize = 512;

/// What a member sees for a failed call (never the key; the service's `detail` where it helps).
pub(crate) fn user_message(e: &AgentError) -> String {
    match e {
        AgentError::Unauthorized => {
            "The agent service refused your API key (401). Register again with `/agent register`.".to_owned()
        }
        AgentError::NotFound(d) => format!("The agent service has no such project or session: {d}."),
        AgentError::Inactive(d) => format!("The project is not active: {d}. Activate it first."),
        AgentError::BadRequest(d) => format!("The agent service refused the request: {d}."),
        AgentError::Server { status, detail } => {
            format!("The agent service failed ({status}): {detail}. Try again in a moment.")
        }
        AgentError::Timeout(d) => format!(
            "The agent did not answer within {} s. It may still be working on it: Beacon does not send \
             the message again, so check the session before you repeat it.",
            d.as_secs()
        ),
        AgentError::Transport(_) => "Beacon could not reach the agent service. Try again in a moment.".to_owned(),
        AgentError::InvalidResponse(_) => {
            "The agent service answered in a way Beacon does not understand. Tell the operator.".to_owned()
        }
        AgentError::Http(_) => {
            "Beacon's connection to the agent service is misconfigured. Tell the operator.".to_owned()
        }
    }
}

/// Up to three names closest to `wanted`, for "did you mean".
pub(crate) fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> =
        names.map(|n| (strsim::jaro_winkler(&wanted, &n.to_lowercase()), n)).filter(|(s, _)| *s >= 0.6).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

fn not_found(what: &str, wanted: &str, names: Vec<&str>) -> HandlerError {
    let hint = match closest(wanted, names.into_iter()).as_slice() {
        [] => String::new(),
        some => format!(" Did you mean {}?", some.iter().map(|n| format!("**{n}**")).collect::<Vec<_>>().join(", ")),
    };
    HandlerError::user(format!("You have no {what} named **{wanted}**.{hint}"))
}

/// A name of at most `max` characters for the service, from free text.
pub(crate) fn clean_name(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

/// A member's open connection to the service: their account and key.
pub(crate) struct Member {
    pub(crate) account: Account,
    key: String,
}

/// The bridge for one process: the app, the service's client, and how often progress shows.
#[derive(Clone)]
pub(crate) struct Bridge {
    pub(crate) app: Arc<App>,
    pub(crate) client: AgentClient,
}

impl Bridge {
    fn keyring(&self) -> Result<&beacon_crypto::Keyring, HandlerError> {
        self.app
            .keyring
            .as_deref()
            .ok_or_else(|| HandlerError::internal("no secret key configured for the agent bridge"))
    }

    /// Runs one call, logging its outcome and latency (database and metrics).
    pub(crate) async fn timed<T>(
        &self,
        guild: &GuildStore,
        user_id: u64,
        op: &'static str,
        call: impl Future<Output = Result<T, AgentError>>,
    ) -> Result<T, AgentError> {
        let started = Instant::now();
        let result = call.await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.app.metrics.external_call("agent", op, outcome, elapsed);
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = Repo::new(guild.clone()).record_call(user_id, op, outcome, ms, now_ms()).await {
            tracing::warn!(error = %e, "could not log an agent call");
        }
        if let Err(e) = &result {
            tracing::info!(op, outcome, error = %e, "agent call failed");
        }
        result
    }

    /// Checks the key against the service, then stores it sealed for this guild and member.
    pub(crate) async fn register(
        &self,
        guild: &GuildStore,
        user_id: u64,
        service_user_id: &str,
        key: &str,
    ) -> Result<usize, HandlerError> {
        let (service_user_id, key) = (service_user_id.trim(), key.trim());
        if service_user_id.is_empty() || service_user_id.chars().count() > MAX_CREDENTIAL {
            return Err(HandlerError::user("Give your user id on the agent service (up to 512 characters)."));
        }
        if key.is_empty() || key.len() > MAX_CREDENTIAL || key.chars().any(char::is_whitespace) {
            return Err(HandlerError::user("That is not an API key: it must be one word of up to 512 characters."));
        }
        let projects = match self.timed(guild, user_id, "register", self.client.projects(key)).await {
            Ok(p) => p,
            Err(AgentError::Unauthorized) => {
                return Err(HandlerError::user(
                    "The agent service refused that API key, so nothing was saved. Check it and try again.",
                ));
            }
            Err(e) => return Err(HandlerError::user(user_message(&e))),
        };
        let sealed = self.keyring()?.seal(key, &key_aad(guild.id(), user_id)).map_err(HandlerError::internal)?;
        Repo::new(guild.clone()).save_account(user_id, service_user_id, &sealed, now_ms()).await?;
        tracing::info!(user_id, "agent account registered");
        Ok(projects.len())
    }

    /// The member's account and key, or a clear refusal.
    pub(crate) async fn member(&self, guild: &GuildStore, user_id: u64) -> Result<Member, HandlerError> {
        let repo = Repo::new(guild.clone());
        let Some(account) = repo.account(user_id).await? else {
            return Err(HandlerError::user(
                "You are not registered with the agent service on this server. Use `/agent register` first.",
            ));
        };
        let keyring = self.keyring()?;
        let aad = key_aad(guild.id(), user_id);
        let key = keyring.open(&account.api_key_sealed, &aad).map_err(|e| {
            tracing::warn!(user_id, error = %e, "a stored agent API key could not be opened");
            HandlerError::user(
                "Your stored API key can no longer be read (the deployment's secret key changed). \
                 Register again with `/agent register`.",
            )
        })?;
        if key.is_empty() {
            return Err(HandlerError::user("No API key is stored for you. Use `/agent register`."));
        }
        // Keys sealed with a previous secret key move to the current one on use.
        if keyring.needs_reseal(&account.api_key_sealed) {
            let sealed = keyring.seal(&key, &aad).map_err(HandlerError::internal)?;
            repo.reseal(user_id, &sealed, now_ms()).await?;
        }
        Ok(Member { account, key })
    }

    /// The member's projects, cached briefly for autocomplete.
    pub(crate) async fn projects(&self, guild: &GuildStore, m: &Member) -> Result<Vec<Project>, AgentError> {
        let projects = self.timed(guild, m.account.user_id, "projects", self.client.projects(&m.key)).await?;
        let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
        if let Ok(bytes) = serde_json::to_vec(&names) {
            let key = CacheKey::guild(guild.id(), "agent", &format!("projects:{}", m.account.user_id));
            if let Err(e) = self.app.cache.set(&key, &bytes, Duration::from_secs(30)).await {
                tracing::debug!(error = %e, "agent project names not cached");
            }
        }
        Ok(projects)
    }

    /// Project names for autocomplete: the cached list, else a fresh one.
    pub(crate) async fn project_names(&self, guild: &GuildStore, user_id: u64) -> Result<Vec<String>, HandlerError> {
        let key = CacheKey::guild(guild.id(), "agent", &format!("projects:{user_id}"));
        if let Some(bytes) = self.app.cache.get(&key).await?
            && let Ok(names) = serde_json::from_slice::<Vec<String>>(&bytes)
        {
            return Ok(names);
        }
        let m = self.member(guild, user_id).await?;
        let projects = self.projects(guild, &m).await.map_err(|e| HandlerError::user(user_message(&e)))?;
        Ok(projects.into_iter().map(|p| p.name).collect())
    }

    /// The project named `name` (or with that id); `None` means the remembered current one.
    pub(crate) async fn project(
        &self,
        guild: &GuildStore,
        m: &Member,
        name: Option<&str>,
    ) -> Result<Project, HandlerError> {
        let wanted = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match &m.account.current_project {
                Some((_, name)) => name.clone(),
                None => {
                    return Err(HandlerError::user(
                        "Which project? Give `project`, or pick one once with `/agent use`.",
                    ));
                }
            },
        };
        let projects = self.projects(guild, m).await.map_err(|e| HandlerError::user(user_message(&e)))?;
        let found = projects
            .iter()
            .find(|p| p.name == wanted || p.id == wanted)
            .or_else(|| projects.iter().find(|p| p.name.eq_ignore_ascii_case(&wanted)));
        match found {
            Some(p) => Ok(p.clone()),
            None => Err(not_found("project", &wanted, projects.iter().map(|p| p.name.as_str()).collect())),
        }
    }

    /// The session named `name` (or with that id) in `project`.
    pub(crate) async fn session(
        &self,
        guild: &GuildStore,
        m: &Member,
        project: &Project,
        name: &str,
    ) -> Result<Session, HandlerError> {
        let sessions = self
            .timed(guild, m.account.user_id, "sessions", self.client.sessions(&m.key, &project.id))
            .await
            .map_err(|e| HandlerError::user(user_message(&e)))?;
        let wanted = name.trim();
        let found = sessions
            .iter()
            .find(|s| s.name == wanted || s.session_id == wanted)
            .or_else(|| sessions.iter().find(|s| s.name.eq_ignore_ascii_case(wanted)));
        match found {
            Some(s) => Ok(s.clone()),
            None => Err(not_found(
                &format!("session in **{}**", project.name),
                wanted,
                sessions.iter().map(|s| s.name.as_str()).collect(),
            )),
        }
    }

    /// Sends `content` to a session once, holding the member's lock on it (one request in
    /// flight per member per session, across workers sharing the cache).
    pub(crate) async fn send(
        &self,
        guild: &GuildStore,
        m: &Member,
        project_id: &str,
        session_id: &str,
        content: &str,
    ) -> Result<String, HandlerError> {
        let lock = CacheKey::guild(guild.id(), "agent", &format!("busy:{}:{session_id}", m.account.user_id));
        let hold = self.client.timeout() + Duration::from_secs(30);
        if !self.app.cache.set_nx(&lock, hold).await? {
            return Err(HandlerError::user(
                "The agent is still working on your previous message in this session. Wait for its answer.",
            ));
        }
        let result = self
            .timed(guild, m.account.user_id, "send", self.client.send(&m.key, project_id, session_id, content))
            .await;
        if let Err(e) = self.app.cache.delete(&lock).await {
            tracing::warn!(error = %e, "agent session lock not released; it expires by itself");
        }
        result.map_err(|e| HandlerError::user(user_message(&e)))
    }

    /// The raw client call with the member's key, logged (projects, sessions, activation…).
    pub(crate) async fn call<T, F>(
        &self,
        guild: &GuildStore,
        m: &Member,
        op: &'static str,
        f: impl FnOnce(AgentClient, String) -> F,
    ) -> Result<T, AgentError>
    where
        F: Future<Output = Result<T, AgentError>>,
    {
        self.timed(guild, m.account.user_id, op, f(self.client.clone(), m.key.clone())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_rank_by_similarity() {
        let names = ["backend", "frontend", "docs", "backend-v2"];
        assert_eq!(closest("bakend", names.into_iter()), vec!["backend", "backend-v2"]);
        assert!(closest("zzz", names.into_iter()).is_empty());
    }

    #[test]
    fn names_are_one_line_and_bounded() {
        assert_eq!(clean_name("  fix\nthe   login bug ", 100), "fix the login bug");
        assert_eq!(clean_name("abcdefgh", 5), "abcd…");
        assert_eq!(clean_name("héllo wörld", 5).chars().count(), 5);
    }

    #[test]
    fn messages_never_echo_a_key() {
        let e = AgentError::Server { status: 502, detail: "upstream down".into() };
        assert_eq!(user_message(&e), "The agent service failed (502): upstream down. Try again in a moment.");
        assert!(user_message(&AgentError::Timeout(Duration::from_secs(150))).contains("does not send"));
    }
}
