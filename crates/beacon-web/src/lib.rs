//! Beacon's HTTP surface: the signed interactions endpoint and the health probes.
//!
//! - `POST /interactions`: Discord's HTTP interactions. The Ed25519 signature over
//!   `timestamp ‖ body` is checked (401 when wrong or older than 5 minutes), PING gets PONG,
//!   everything else goes through the same router as gateway interactions and is answered in the
//!   HTTP response (a defer when the handler is slower than the budget). A replayed interaction
//!   id gets 409 and is not handled twice.
//! - `GET /health/live`: the process is up. `GET /health/ready`: the database (and Redis, when
//!   configured) answer and the process is not shutting down.
//! - `GET /metrics`: the process's counters in the Prometheus/OpenMetrics text format (event
//!   types, interaction kinds and module names as labels; no ids).
//! - `/`, `/g/{guild_id}/…`: the dashboard's pages (see [`pages`]), which read only through the API.
//! - `/api/v1/…`: the web API with Discord login (see [`api`]); its tables are [`api::SCHEMA`],
//!   which the binary migrates before serving.
//!
//! ```no_run
//! # async fn demo(app: std::sync::Arc<beacon_framework::App>) -> Result<(), beacon_web::WebError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.expect("bind");
//! let router = beacon_web::router(app.clone())?;
//! beacon_web::serve(listener, router, app.shutdown.clone()).await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod interaction;
pub mod pages;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use beacon_discord::verify::InteractionVerifier;
use beacon_framework::App;
use beacon_framework::metrics::ShardGauge;
use beacon_framework::router::{INITIAL_RESPONSE_BUDGET, dispatch_interaction};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Largest interaction body accepted. Discord's payloads are far smaller; this bounds memory.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Why the web server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The configured public key cannot verify interaction signatures.
    #[error("BEACON_DISCORD_PUBLIC_KEY is not a valid Ed25519 public key: {0}")]
    PublicKey(#[source] beacon_discord::KeyError),
    /// Binding or serving the listener failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client the API's Discord login uses could not be built.
    #[error("web API: {0}")]
    Client(#[from] beacon_http::HttpError),
}

#[derive(Clone)]
struct WebState {
    app: Arc<App>,
    verifier: Option<Arc<InteractionVerifier>>,
}

/// The full router, with request ids, tracing and a body limit.
pub fn router(app: Arc<App>) -> Result<Router, WebError> {
    let verifier = match &app.config.discord.public_key {
        Some(key) => Some(Arc::new(InteractionVerifier::from_hex(key).map_err(WebError::PublicKey)?)),
        None => None,
    };
    // Pages and files the modules serve (a ticket transcript behind its signed link, …).
    let module_routes = app.modules.iter().filter_map(|m| m.routes(&app)).fold(Router::new(), Router::merge);
    let api = api::router(app.clone())?;
    let dashboard = pages::router(app.clone(), api.clone());
    let state = WebState { app, verifier };
    let header = axum::http::HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .route("/interactions", post(interactions))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(module_routes)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // The dashboard sets its limits per route (forms, or a file as large as the API's CSV limit).
        .merge(dashboard)
        // The API sets a limit per route (JSON, or the larger CSV limit) with JSON errors.
        .merge(api)
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_failure(log_failure),
        )
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid)))
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) -> Result<(), WebError> {
    // Responses are small and latency-bound: no Nagle delay behind an unacknowledged segment.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an HTTP connection");
        }
    });
    // The peer's address feeds the API's per-IP rate limit.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

async fn live() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn ready(State(state): State<WebState>) -> Response {
    let checks = state.app.checks().await;
    let shutting_down = state.app.shutdown.is_cancelled();
    let ok = !shutting_down && checks.iter().all(|c| c.ok);
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "shutting_down": shutting_down,
        "checks": checks.iter().map(|c| json!({
            "name": c.name,
            "ok": c.ok,
            "latency_ms": c.latency.as_secs_f64() * 1000.0,
            "detail": c.detail,
        })).collect::<Vec<_>>(),
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<WebState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let app = &state.app;
    // Gauges read at scrape time: the shards' state, the job backlog.
    let shards: Vec<ShardGauge> = app
        .shards
        .snapshot()
        .iter()
        .map(|s| ShardGauge {
            id: s.id,
            up: s.state == beacon_discord::gateway::ShardState::Ready,
            latency: s.latency_ms.map(std::time::Duration::from_millis),
        })
        .collect();
    app.metrics.set_shards(&shards, app.shards.guilds());
    match beacon_jobs::Jobs::new(app.store.clone()).due_count(beacon_store::now_ms()).await {
        Ok(due) => app.metrics.set_jobs_due(due),
        Err(e) => tracing::warn!(error = %e, "metrics: counting due jobs failed"),
    }
    ([(axum::http::header::CONTENT_TYPE, content_type)], state.app.metrics.render()).into_response()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn interactions(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(verifier) = &state.verifier else {
        return (StatusCode::SERVICE_UNAVAILABLE, "interactions endpoint disabled: set BEACON_DISCORD_PUBLIC_KEY")
            .into_response();
    };
    let interaction = match interaction::read_interaction(verifier, &headers, &body, now_secs()) {
        Ok(interaction::Incoming::Ping) => return axum::Json(json!({ "type": 1 })).into_response(),
        Ok(interaction::Incoming::Interaction(i)) => *i,
        Err(refused) => {
            if refused.unsigned() {
                state.app.metrics.interaction("unverified", "bad_signature");
                tracing::info!(reason = %refused.detail, "interaction signature rejected");
            } else {
                tracing::warn!(error = %refused.detail, "undecodable interaction");
            }
            return (refused.status, refused.message).into_response();
        }
    };
    if state.app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Some(mut dispatched) = dispatch_interaction(&state.app, interaction).await else {
        return (StatusCode::CONFLICT, "interaction already handled").into_response();
    };
    let response = dispatched.initial_response(INITIAL_RESPONSE_BUDGET).await;
    dispatched.responder.mark_delivered();
    axum::Json(response).into_response()
}

/// A failed response in the log: 503 (not ready, or a part the deployment has not configured,
/// such as the login without a client secret) is a warning, because it is a state the answer
/// explains; every other server error is an error an operator must look at.
fn log_failure(class: ServerErrorsFailureClass, latency: std::time::Duration, _span: &tracing::Span) {
    let ms = latency.as_millis();
    match class {
        ServerErrorsFailureClass::StatusCode(status) if status == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!(%status, latency_ms = ms, "response unavailable");
        }
        class => tracing::error!(classification = %class, latency_ms = ms, "response failed"),
    }
}
