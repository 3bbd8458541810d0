//! The client of the agent service's REST API (`BEACON_AGENT_API_URL`), one member's key per call.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// A project: a workspace the service runs in a pod.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Project {
    /// The service's id.
    pub id: String,
    /// Its name, unique per user.
    pub name: String,
    /// `active` (its pod runs) or `inactive`.
    pub status: String,
    /// The repository it works on, if any.
    #[serde(default)]
    pub repo_url: Option<String>,
}

impl Project {
    /// Whether its pod runs (sessions and messages need it).
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A session inside a project: one conversation with the agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    /// The service's id.
    pub session_id: String,
    /// Its name.
    pub name: String,
    /// Messages so far (absent right after creation).
    #[serde(default)]
    pub message_count: u64,
}

/// What went wrong talking to the service. Never carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// 401: the key is wrong or revoked.
    #[error("the agent service refused the API key")]
    Unauthorized,
    /// 404: no such project or session (for this key).
    #[error("not found: {0}")]
    NotFound(String),
    /// 409, or 400 saying so: the project's pod is not running.
    #[error("the project is not active: {0}")]
    Inactive(String),
    /// 400: the service refused the input.
    #[error("the agent service refused the request: {0}")]
    BadRequest(String),
    /// 5xx or another status, with the service's `detail`.
    #[error("the agent service failed ({status}): {detail}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The service's `detail`, or the body's start.
        detail: String,
    },
    /// No answer within the timeout. A send may still have been acted on: never retried.
    #[error("the agent service did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("could not reach the agent service")]
    Transport(#[source] reqwest::Error),
    /// A 2xx answer that is not what the API describes.
    #[error("unexpected answer from the agent service: {0}")]
    InvalidResponse(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] beacon_http::HttpError),
}

impl AgentError {
    /// A short label for usage records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentError::Unauthorized => "unauthorized",
            AgentError::NotFound(_) => "not_found",
            AgentError::Inactive(_) => "inactive",
            AgentError::BadRequest(_) => "bad_request",
            AgentError::Server { .. } => "server",
            AgentError::Timeout(_) => "timeout",
            AgentError::Transport(_) => "transport",
            AgentError::InvalidResponse(_) => "invalid_response",
            AgentError::Http(_) => "client",
        }
    }
}

/// The service's API, for one deployment. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentClient {
    base_url: String,
    timeout: Duration,
    http: reqwest::Client,
}

/// How much of an error body is kept when it has no `detail`.
const DETAIL_MAX: usize = 300;

/// Largest answer read from the service, in bytes: an agent's reply is posted to Discord (at most
/// a few messages of 2,000 characters, or a file), so a body past this is refused, not held.
pub const MAX_RESPONSE: usize = 8 * 1024 * 1024;

fn detail_of(body: &str) -> String {
    let detail = serde_json::from_str::<Value>(body).ok().and_then(|v| match v.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => None,
    });
    let text = detail.unwrap_or_else(|| body.trim().to_owned());
    let text = if text.is_empty() { "no detail given".to_owned() } else { text };
    text.chars().take(DETAIL_MAX).collect()
}

fn inactive_wording(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("not active") || d.contains("inactive")
}

impl AgentClient {
    /// A client for the API at `base_url`, waiting at most `timeout` for any answer.
    pub fn new(base_url: &str, timeout: Duration) -> Result<AgentClient, AgentError> {
        // The whole-request limit is enforced per call (so a timeout is told apart); the client
        // keeps only the connect timeout.
        let http = beacon_http::client(&beacon_http::ClientOptions::default())?;
        Ok(AgentClient { base_url: base_url.trim_end_matches('/').to_owned(), timeout, http })
    }

    /// The longest wait for an answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn call(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AgentError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, url).bearer_auth(key).timeout(self.timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(AgentError::Timeout(self.timeout)),
            Err(e) => return Err(AgentError::Transport(e)),
        };
        let status = response.status().as_u16();
        let text = match beacon_http::read_text(response, MAX_RESPONSE).await {
            Ok(t) => t,
            Err(beacon_http::BodyError::Read(e)) if e.is_timeout() => return Err(AgentError::Timeout(self.timeout)),
            Err(beacon_http::BodyError::Read(e)) => return Err(AgentError::Transport(e)),
            Err(too_large @ beacon_http::BodyError::TooLarge { .. }) => {
                return Err(AgentError::InvalidResponse(too_large.to_string()));
            }
        };
        read_response(status, &text)
    }

    fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, AgentError> {
        serde_json::from_value(value).map_err(|e| AgentError::InvalidResponse(format!("{what}: {e}")))
    }

    /// `GET /projects`: the key's projects (also how a key is checked).
    pub async fn projects(&self, key: &str) -> Result<Vec<Project>, AgentError> {
        Self::parse(self.call(key, reqwest::Method::GET, "/projects", None).await?, "projects")
    }

    /// `POST /projects`.
    pub async fn create_project(&self, key: &str, name: &str, repo_url: Option<&str>) -> Result<Project, AgentError> {
        let body = json!({ "name": name, "repo_url": repo_url });
        Self::parse(self.call(key, reqwest::Method::POST, "/projects", Some(body)).await?, "new project")
    }

    /// `DELETE /projects/{id}`.
    pub async fn delete_project(&self, key: &str, project_id: &str) -> Result<(), AgentError> {
        self.call(key, reqwest::Method::DELETE, &format!("/projects/{}", segment(project_id)), None).await.map(drop)
    }

    /// `POST /projects/{id}/activate` (up to two minutes while the pod starts).
    pub async fn activate(&self, key: &str, project_id: &str) -> Result<(), AgentError> {
        let path = format!("/projects/{}/activate", segment(project_id));
        self.call(key, reqwest::Method::POST, &path, None).await.map(drop)
    }

    /// `POST /projects/{id}/deactivate`.
    pub async fn deactivate(&self, key: &str, project_id: &str) -> Result<(), AgentError> {
        let path = format!("/projects/{}/deactivate", segment(project_id));
        self.call(key, reqwest::Method::POST, &path, None).await.map(drop)
    }

    /// `GET /projects/{id}/sessions`.
    pub async fn sessions(&self, key: &str, project_id: &str) -> Result<Vec<Session>, AgentError> {
        let path = format!("/projects/{}/sessions", segment(project_id));
        Self::parse(self.call(key, reqwest::Method::GET, &path, None).await?, "sessions")
    }

    /// `POST /projects/{id}/sessions`.
    pub async fn create_session(&self, key: &str, project_id: &str, name: &str) -> Result<Session, AgentError> {
        let path = format!("/projects/{}/sessions", segment(project_id));
        let value = self.call(key, reqwest::Method::POST, &path, Some(json!({ "name": name }))).await?;
        let session =
            value.get("session").cloned().ok_or_else(|| AgentError::InvalidResponse("no `session`".into()))?;
        Self::parse(session, "new session")
    }

    /// `DELETE /projects/{id}/sessions/{session}`.
    pub async fn delete_session(&self, key: &str, project_id: &str, session_id: &str) -> Result<(), AgentError> {
        let path = format!("/projects/{}/sessions/{}", segment(project_id), segment(session_id));
        self.call(key, reqwest::Method::DELETE, &path, None).await.map(drop)
    }

    /// `POST /projects/{id}/messages/send`: the agent's answer (synchronous, often minutes). Sent
    /// once: after a timeout the agent may have acted, so it is never retried.
    pub async fn send(
        &self,
        key: &str,
        project_id: &str,
        session_id: &str,
        content: &str,
    ) -> Result<String, AgentError> {
        let path = format!("/projects/{}/messages/send", segment(project_id));
        let body = json!({ "session_id": session_id, "content": content });
        answer_of(&self.call(key, reqwest::Method::POST, &path, Some(body)).await?)
    }
}

/// The service's answer to a call: the JSON of a success (`null` when empty), or the error its
/// status and body mean.
pub fn read_response(status: u16, text: &str) -> Result<Value, AgentError> {
    match status {
        200..=299 if text.trim().is_empty() => Ok(Value::Null),
        200..=299 => serde_json::from_str(text).map_err(|e| AgentError::InvalidResponse(format!("not JSON ({e})"))),
        401 | 403 => Err(AgentError::Unauthorized),
        404 => Err(AgentError::NotFound(detail_of(text))),
        409 => Err(AgentError::Inactive(detail_of(text))),
        400 | 422 => {
            let detail = detail_of(text);
            if inactive_wording(&detail) {
                Err(AgentError::Inactive(detail))
            } else {
                Err(AgentError::BadRequest(detail))
            }
        }
        _ => Err(AgentError::Server { status, detail: detail_of(text) }),
    }
}

/// The agent's answer in a `messages/send` reply (`result.response`).
pub fn answer_of(value: &Value) -> Result<String, AgentError> {
    value
        .pointer("/result/response")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AgentError::InvalidResponse("no `result.response`".into()))
}

/// A list reply (`GET /projects`, `…/sessions`) read as the client reads it.
pub fn read_list<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, AgentError> {
    AgentClient::parse(value, what)
}

/// An id as one URL path segment (ids come from the service, but are never trusted to be plain).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_come_from_the_body_and_are_bounded() {
        assert_eq!(detail_of(r#"{"detail": "Project x not found"}"#), "Project x not found");
        assert_eq!(detail_of(r#"{"detail": [{"msg": "bad"}]}"#), r#"[{"msg":"bad"}]"#);
        assert_eq!(detail_of("  Bad Gateway "), "Bad Gateway");
        assert_eq!(detail_of(""), "no detail given");
        assert_eq!(detail_of(&"x".repeat(1000)).len(), DETAIL_MAX);
    }

    #[tokio::test]
    async fn an_answer_past_the_limit_is_refused_and_the_next_one_reads() {
        beacon_http::install_crypto_provider();
        let fake = beacon_testkit::agent::FakeAgent::start().await.expect("fake agent service");
        let key = fake.add_user("alice");
        let client = AgentClient::new(&fake.base_url(), Duration::from_secs(10)).expect("client");
        let project = client.create_project(&key, "docs", None).await.expect("project");
        client.activate(&key, &project.id).await.expect("activated");
        let session = client.create_session(&key, &project.id, "s").await.expect("session");
        fake.push_reply(&"x".repeat(MAX_RESPONSE + 1));
        match client.send(&key, &project.id, &session.session_id, "hello").await {
            Err(AgentError::InvalidResponse(why)) => assert!(why.contains("larger than"), "{why}"),
            other => panic!("expected the oversized answer refused, got {other:?}"),
        }
        fake.push_reply("fine");
        assert_eq!(client.send(&key, &project.id, &session.session_id, "again").await.expect("answer"), "fine");
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(segment("proj_0001"), "proj_0001");
        assert_eq!(segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
    }
}
