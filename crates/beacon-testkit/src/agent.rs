//! A fake of the external AI coding-agent service that Beacon's agent bridge drives.
//!
//! One axum server on `127.0.0.1:0` speaks the service's REST API exactly: projects (each a
//! workspace the service runs in a pod), sessions inside a project, and synchronous messages to
//! the agent. Every request must carry `Authorization: Bearer <key>` of a user added with
//! [`FakeAgent::add_user`]; each user sees only their own projects. It is as slow as the real
//! service when told to be (activation and send delays), answers its errors in the service's
//! shape (`{"detail": …}`: 400 bad input, 401 bad key, 404 unknown project or session, 409 or 400
//! when the project is inactive, 5xx), and records every request.
//!
//! ```no_run
//! use beacon_testkit::agent::FakeAgent;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let fake = FakeAgent::start().await?;
//! let key = fake.add_user("user-1");
//! // Point a client at fake.base_url() with `Authorization: Bearer {key}`.
//! fake.push_reply("Done: the tests pass.");
//! # let _ = key;
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Longest project or session name the service accepts.
pub const MAX_NAME: usize = 100;
/// Longest message the service accepts.
pub const MAX_MESSAGE: usize = 32_000;

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/projects/p1/messages/send`.
    pub path: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// JSON body (`Null` when none).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Session {
    id: String,
    name: String,
    messages: Vec<String>,
    in_flight: bool,
}

#[derive(Debug, Clone)]
struct Project {
    id: String,
    owner: String,
    name: String,
    active: bool,
    repo_url: Option<String>,
    sessions: Vec<Session>,
}

impl Project {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": if self.active { "active" } else { "inactive" },
            "repo_url": self.repo_url,
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    users: Vec<(String, String)>,
    projects: Vec<Project>,
    next_id: u64,
    activation_delay: Duration,
    send_delay: Duration,
    replies: VecDeque<String>,
    faults: VecDeque<(u16, String)>,
    requests: Vec<AgentRequest>,
    max_concurrent_sends: usize,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fake agent service. Stops when dropped.
pub struct FakeAgent {
    base_url: String,
    shared: Shared,
    shutdown: CancellationToken,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl FakeAgent {
    /// Starts the fake on a free local port.
    pub async fn start() -> std::io::Result<FakeAgent> {
        let shared: Shared = Arc::default();
        let app = Router::new()
            .route("/projects", get(list_projects).post(create_project))
            .route("/projects/{project}", delete(delete_project))
            .route("/projects/{project}/activate", post(activate))
            .route("/projects/{project}/deactivate", post(deactivate))
            .route("/projects/{project}/sessions", get(list_sessions).post(create_session))
            .route("/projects/{project}/sessions/{session}", delete(delete_session))
            .route("/projects/{project}/messages/send", post(send_message))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        crate::serve_until_cancelled(listener, app, shutdown.clone(), "agent");
        Ok(FakeAgent { base_url: format!("http://{addr}"), shared, shutdown })
    }

    /// The API root to configure (`BEACON_AGENT_API_URL`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Adds a user of the service and returns their API key.
    pub fn add_user(&self, user_id: &str) -> String {
        let key = format!("bbx-{}-{:016x}", user_id, fastrand::u64(..));
        lock(&self.shared).users.push((key.clone(), user_id.to_owned()));
        key
    }

    /// How long `activate` takes (the pod starting; up to 120 s on the real service).
    pub fn set_activation_delay(&self, delay: Duration) {
        lock(&self.shared).activation_delay = delay;
    }

    /// How long each `messages/send` takes (30–120 s on the real service).
    pub fn set_send_delay(&self, delay: Duration) {
        lock(&self.shared).send_delay = delay;
    }

    /// The agent's next reply (otherwise it answers `Agent: <the message>`).
    pub fn push_reply(&self, text: &str) {
        lock(&self.shared).replies.push_back(text.to_owned());
    }

    /// The next request fails with `status` and `{"detail": detail}` (after authentication).
    pub fn fail_next(&self, status: u16, detail: &str) {
        lock(&self.shared).faults.push_back((status, detail.to_owned()));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<AgentRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The messages a session received, in order.
    pub fn messages(&self, session_id: &str) -> Vec<String> {
        let inner = lock(&self.shared);
        inner
            .projects
            .iter()
            .flat_map(|p| &p.sessions)
            .find(|s| s.id == session_id)
            .map(|s| s.messages.clone())
            .unwrap_or_default()
    }

    /// The most sends that were in flight at once for one session.
    pub fn max_concurrent_sends(&self) -> usize {
        lock(&self.shared).max_concurrent_sends
    }

    /// Names of the user's projects and whether each is active.
    pub fn projects(&self, user_id: &str) -> Vec<(String, bool)> {
        lock(&self.shared).projects.iter().filter(|p| p.owner == user_id).map(|p| (p.name.clone(), p.active)).collect()
    }
}

/// An error answer in the service's shape: a status and `{"detail": …}`.
#[derive(Debug)]
struct Fail(u16, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(json!({ "detail": self.1 }))).into_response()
    }
}

fn detail(status: u16, text: &str) -> Fail {
    Fail(status, text.to_owned())
}

/// Authenticates, records and applies injected faults; `Err` is the response to send.
fn admit(shared: &Shared, method: Method, path: String, headers: &HeaderMap, body: &Bytes) -> Result<String, Fail> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body_json = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).unwrap_or(Value::Null) };
    let mut inner = lock(shared);
    let user = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|key| inner.users.iter().find(|(k, _)| k == key).map(|(_, u)| u.clone()));
    let outcome = match user {
        None => Err((401, "Invalid or missing API key".to_owned())),
        Some(user) => match inner.faults.pop_front() {
            Some(fault) => Err(fault),
            None => Ok(user),
        },
    };
    let status = match &outcome {
        Ok(_) => 200,
        Err((s, _)) => *s,
    };
    inner.requests.push(AgentRequest { method: method.to_string(), path, authorization, body: body_json, status });
    outcome.map_err(|(s, d)| Fail(s, d))
}

/// The JSON object body, or a 400 like the service's validation errors.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(detail(400, "Request body must be a JSON object")),
    }
}

fn required_text(map: &serde_json::Map<String, Value>, field: &str, max: usize) -> Result<String, Fail> {
    match map.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() && s.chars().count() <= max => Ok(s.to_owned()),
        Some(s) if !s.is_empty() => Err(detail(400, &format!("{field} must be at most {max} characters"))),
        _ => Err(detail(400, &format!("{field} is required"))),
    }
}

fn find_project<'a>(inner: &'a mut Inner, user: &str, id: &str) -> Result<&'a mut Project, Fail> {
    inner
        .projects
        .iter_mut()
        .find(|p| p.id == id && p.owner == user)
        .ok_or_else(|| detail(404, &format!("Project {id} not found")))
}

async fn list_projects(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match admit(&shared, Method::GET, "/projects".into(), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let inner = lock(&shared);
    let list: Vec<Value> = inner.projects.iter().filter(|p| p.owner == user).map(Project::json).collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn create_project(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match admit(&shared, Method::POST, "/projects".into(), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let result = (|| {
        let map = object(&body)?;
        let name = required_text(&map, "name", MAX_NAME)?;
        let repo_url = match map.get("repo_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if u.starts_with("https://") || u.starts_with("http://") => Some(u.clone()),
            Some(_) => return Err(detail(400, "repo_url must be an http(s) URL")),
        };
        let mut inner = lock(&shared);
        if inner.projects.iter().any(|p| p.owner == user && p.name == name) {
            return Err(detail(400, &format!("A project named {name} already exists")));
        }
        inner.next_id += 1;
        let project = Project {
            id: format!("proj_{:04}", inner.next_id),
            owner: user.clone(),
            name,
            active: false,
            repo_url,
            sessions: Vec::new(),
        };
        let out = project.json();
        inner.projects.push(project);
        Ok(out)
    })();
    match result {
        Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn delete_project(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::DELETE, format!("/projects/{project}"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let mut inner = lock(&shared);
    if let Err(r) = find_project(&mut inner, &user, &project) {
        return r.into_response();
    }
    inner.projects.retain(|p| p.id != project);
    axum::Json(json!({ "status": "deleted", "id": project })).into_response()
}

async fn activate(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::POST, format!("/projects/{project}/activate"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let delay = {
        let mut inner = lock(&shared);
        if let Err(r) = find_project(&mut inner, &user, &project) {
            return r.into_response();
        }
        inner.activation_delay
    };
    // The pod starts.
    tokio::time::sleep(delay).await;
    let mut inner = lock(&shared);
    match find_project(&mut inner, &user, &project) {
        Ok(p) => {
            p.active = true;
            axum::Json(p.json()).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn deactivate(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::POST, format!("/projects/{project}/deactivate"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let mut inner = lock(&shared);
    match find_project(&mut inner, &user, &project) {
        Ok(p) => {
            p.active = false;
            axum::Json(p.json()).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn list_sessions(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::GET, format!("/projects/{project}/sessions"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let mut inner = lock(&shared);
    match find_project(&mut inner, &user, &project) {
        Ok(p) => {
            let list: Vec<Value> = p
                .sessions
                .iter()
                .map(|s| json!({ "session_id": s.id, "name": s.name, "message_count": s.messages.len() }))
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn create_session(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::POST, format!("/projects/{project}/sessions"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let name = match object(&body).and_then(|m| required_text(&m, "name", MAX_NAME)) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let mut inner = lock(&shared);
    inner.next_id += 1;
    let id = format!("sess_{:04}", inner.next_id);
    match find_project(&mut inner, &user, &project) {
        // The service answers 400 here (409 for sends) when the pod is not running.
        Ok(p) if !p.active => detail(400, &format!("Project {} is not active", p.name)).into_response(),
        Ok(p) => {
            p.sessions.push(Session { id: id.clone(), name: name.clone(), messages: Vec::new(), in_flight: false });
            (StatusCode::CREATED, axum::Json(json!({ "session": { "session_id": id, "name": name } }))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn delete_session(
    State(shared): State<Shared>,
    Path((project, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/projects/{project}/sessions/{session}");
    let user = match admit(&shared, Method::DELETE, path, &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let mut inner = lock(&shared);
    match find_project(&mut inner, &user, &project) {
        Ok(p) if p.sessions.iter().any(|s| s.id == session) => {
            p.sessions.retain(|s| s.id != session);
            axum::Json(json!({ "status": "deleted", "session_id": session })).into_response()
        }
        Ok(_) => detail(404, &format!("Session {session} not found")).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn send_message(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match admit(&shared, Method::POST, format!("/projects/{project}/messages/send"), &headers, &body) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let (session_id, content) = match object(&body)
        .and_then(|m| Ok((required_text(&m, "session_id", 200)?, required_text(&m, "content", MAX_MESSAGE)?)))
    {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let delay = {
        let mut guard = lock(&shared);
        let inner = &mut *guard;
        let project = match find_project(inner, &user, &project) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        };
        if !project.active {
            return detail(409, &format!("Project {} is not active; activate it first", project.name)).into_response();
        }
        let Some(session) = project.sessions.iter_mut().find(|s| s.id == session_id) else {
            return detail(404, &format!("Session {session_id} not found")).into_response();
        };
        let busy = session.in_flight;
        session.in_flight = true;
        session.messages.push(content.clone());
        // Two sends to one session at once would interleave on the service: record it.
        inner.max_concurrent_sends = inner.max_concurrent_sends.max(if busy { 2 } else { 1 });
        inner.send_delay
    };
    // The agent works.
    tokio::time::sleep(delay).await;
    let mut inner = lock(&shared);
    let reply = inner.replies.pop_front().unwrap_or_else(|| format!("Agent: {content}"));
    if let Some(s) = inner.projects.iter_mut().flat_map(|p| p.sessions.iter_mut()).find(|s| s.id == session_id) {
        s.in_flight = false;
    }
    axum::Json(json!({ "result": { "response": reply } })).into_response()
}
