//! The fake's shared core, its HTTP router and the `/_fake/` control endpoints.

use crate::error::Error;
use crate::snowflake::Snowflakes;
use crate::state::State;
use crate::types::{CommandInvocation, Delivery, Fault, GuildSpec};
use crate::validate::{Routes, Spec};
use crate::{FakeDiscord, FakeOptions};
use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Everything the server tasks and the handles share.
pub struct Shared {
    pub opts: FakeOptions,
    pub token: String,
    pub app_id: u64,
    pub signing: ed25519_dalek::SigningKey,
    pub spec: Option<Arc<Spec>>,
    pub routes: Routes,
    pub state: Mutex<State>,
    pub changed: Notify,
    pub ids: Snowflakes,
    pub http: reqwest::Client,
    pub addr: SocketAddr,
    pub cancel: CancellationToken,
    pub conn_ids: AtomicU64,
    /// Serialises the endpoint PING check.
    pub endpoint_check: tokio::sync::Mutex<()>,
    /// MESSAGE_CREATEs written by floods (`/_fake/flood`), across connections.
    pub flood_sent: AtomicU64,
    /// The OAuth2 client secret of the application.
    pub oauth_secret: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("addr", &self.addr).finish()
    }
}

impl Shared {
    /// Lock the state (a panicked holder does not make the state unusable for other tests).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wake everything waiting for a state change.
    pub fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// The bot's user id (the application id, as for real bots).
    pub fn bot_id(&self) -> u64 {
        self.app_id
    }

    /// Base HTTP URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Wait until `f` returns `Some`, re-checking on every state change.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = {
                let mut st = self.lock();
                f(&mut st)
            };
            if let Some(v) = found {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout(what.to_owned()));
            }
        }
    }
}

/// Build the router.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/", get(crate::gateway::upgrade))
        .route("/_fake/info", get(info))
        .route("/_fake/guilds", get(list_guilds).post(create_guild))
        .route("/_fake/requests", get(list_requests))
        .route("/_fake/violations", get(list_violations))
        .route("/_fake/faults", post(add_fault))
        .route("/_fake/messages", post(send_message))
        .route("/_fake/interactions", post(invoke))
        .route("/_fake/interactions/{id}", get(interaction_state))
        .route("/_fake/flood", get(flood_state).post(flood))
        .route("/_fake/oauth2/consent", post(crate::oauth::consent))
        .route("/_fake/oauth2/consent-form", post(crate::oauth::consent_form))
        .route("/oauth2/authorize", get(crate::oauth::authorize))
        .route("/api/v10/oauth2/token", post(crate::oauth::token))
        .route("/api/v10/oauth2/token/revoke", post(crate::oauth::revoke))
        .route("/ephemeral-attachments/{app_id}/{id}/{filename}", get(attachment_file))
        .fallback(crate::rest::handle)
        .with_state(shared)
}

fn handle_of(sh: &Arc<Shared>) -> FakeDiscord {
    FakeDiscord::from_shared(sh.clone())
}

/// Connection details for out-of-process clients (the fake's own throwaway credentials).
async fn info(AxState(sh): AxState<Arc<Shared>>) -> Response {
    Json(json!({
        "base_url": sh.base_url(),
        "gateway_url": format!("ws://{}", sh.addr),
        "bot_token": sh.token,
        "application_id": sh.app_id.to_string(),
        "public_key": hex::encode(sh.signing.verifying_key().to_bytes()),
    }))
    .into_response()
}

async fn list_guilds(AxState(sh): AxState<Arc<Shared>>) -> Response {
    Json(handle_of(&sh).guilds()).into_response()
}

async fn create_guild(AxState(sh): AxState<Arc<Shared>>, Json(spec): Json<GuildSpec>) -> Response {
    Json(handle_of(&sh).create_guild(spec)).into_response()
}

/// Discord's CDN for a file attached to a command: served only at the signed address given out
/// (a missing or altered signature, or another file name, is a 404 as on the real CDN).
async fn attachment_file(
    AxState(sh): AxState<Arc<Shared>>,
    axum::extract::Path((app_id, id, filename)): axum::extract::Path<(u64, u64, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let st = sh.lock();
    let expected = st.files.get(&id).filter(|f| {
        let path = format!("/ephemeral-attachments/{app_id}/{id}/{filename}");
        app_id == sh.app_id
            && f.filename == filename
            && f.url.ends_with(&format!("{path}?{}", query.as_deref().unwrap_or_default()))
    });
    match expected {
        Some(f) => {
            let ct = f.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
            ([(axum::http::header::CONTENT_TYPE, ct)], f.bytes.clone()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "This content is no longer available.").into_response(),
    }
}

async fn list_requests(AxState(sh): AxState<Arc<Shared>>) -> Response {
    Json(sh.lock().requests.clone()).into_response()
}

async fn list_violations(AxState(sh): AxState<Arc<Shared>>) -> Response {
    Json(sh.lock().violations.clone()).into_response()
}

async fn add_fault(AxState(sh): AxState<Arc<Shared>>, Json(fault): Json<Fault>) -> Response {
    sh.lock().faults.push(fault);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SendMessage {
    #[serde(with = "crate::types::id_str")]
    guild_id: u64,
    #[serde(with = "crate::types::id_str")]
    channel_id: u64,
    #[serde(with = "crate::types::id_str")]
    user_id: u64,
    content: String,
}

fn error_response(e: &Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

async fn send_message(AxState(sh): AxState<Arc<Shared>>, Json(m): Json<SendMessage>) -> Response {
    match handle_of(&sh).send_message(m.guild_id, m.channel_id, m.user_id, &m.content).await {
        Ok(id) => Json(json!({"id": id.to_string()})).into_response(),
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
struct Invoke {
    #[serde(flatten)]
    inv: CommandInvocation,
    #[serde(default = "gateway")]
    via: Delivery,
}

fn gateway() -> Delivery {
    Delivery::Gateway
}

async fn invoke(AxState(sh): AxState<Arc<Shared>>, Json(i): Json<Invoke>) -> Response {
    match handle_of(&sh).invoke_command(i.inv, i.via).await {
        Ok(h) => Json(h).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn interaction_state(AxState(sh): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id: u64 = id.parse().unwrap_or(0);
    let st = sh.lock();
    match st.interactions.get(&id) {
        Some(rec) => Json(json!({
            "id": rec.id.to_string(),
            "type": rec.kind,
            "response_type": rec.initial.as_ref().map(|(t, _)| *t),
            "response": rec.initial.as_ref().map(|(_, d)| d.clone()),
            "edit": rec.edit,
            "followups": rec.followups,
            "delivery_error": rec.delivery_error,
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, Json(Value::Null)).into_response(),
    }
}

#[derive(Deserialize)]
struct FloodRequest {
    count: u64,
}

async fn flood(AxState(sh): AxState<Arc<Shared>>, Json(f): Json<FloodRequest>) -> Response {
    let sessions = crate::gateway::start_flood(&sh, f.count);
    Json(json!({"sessions": sessions})).into_response()
}

async fn flood_state(AxState(sh): AxState<Arc<Shared>>) -> Response {
    Json(json!({"sent": sh.flood_sent.load(std::sync::atomic::Ordering::Relaxed)})).into_response()
}
