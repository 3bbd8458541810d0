//! `/api/v1`: the web API. JSON in and out, errors as `{"error": {"code", "message", "field"}}`.
//!
//! - Login with Discord (OAuth2 code + PKCE S256, `state` bound to the browser by a short-lived
//!   HttpOnly cookie, single use), server-side sessions (table `api_sessions`, only a hash of the
//!   id stored; HttpOnly, SameSite=Lax, Secure on https; idle and absolute expiry); Discord's
//!   tokens sealed with the keyring and refreshed when expired; logout revokes at Discord.
//! - Every state-changing request carries the session's CSRF token in `X-CSRF-Token`, and an
//!   `Origin`, when sent, must be Beacon's own (or one of `BEACON_API_CORS_ORIGINS`).
//! - Per guild, `/api/v1/guilds/{guild_id}/…`: the caller's level is the slash commands' rule
//!   ([`beacon_framework::access::PermissionService::member_level`]) fed with Discord's answer
//!   to `GET /users/@me/guilds`; the developer team reads every guild.
//! - Rate limits per session and per IP (429 + `Retry-After`); the OpenAPI document at
//!   `/api/v1/openapi.json` is rendered from the same route table as the router.

mod auth;
mod core_routes;
pub mod discord;
mod guilds;
mod openapi;
mod operator;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use beacon_cache::CacheKey;
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute, App};

use discord::OAuthClient;
use session::Session;

pub use beacon_framework::api;

/// The session cookie.
pub const SESSION_COOKIE: &str = "beacon_session";
/// The cookie that binds a login's `state` to the browser that started it.
pub const LOGIN_COOKIE: &str = "beacon_login";
/// Where per-guild routes are mounted.
pub const GUILD_PREFIX: &str = "/api/v1/guilds/{guild_id}";

/// The schema of the web API's tables (sessions and pending logins), migrated by the binary.
pub const SCHEMA: beacon_store::Schema = beacon_store::Schema {
    name: "web",
    migrations: &[beacon_store::migration!(1, "API sessions and logins", "0001_api_sessions.sql")],
    guild_tables: &[],
};

/// What every API handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) app: Arc<App>,
    /// `None` when login is not configured (no client secret or no keyring).
    pub(crate) oauth: Option<OAuthClient>,
    /// Cookies get `Secure` (the public URL is https).
    pub(crate) secure: bool,
    /// `scheme://host[:port]` of the public URL.
    pub(crate) origin: String,
    /// Requests per minute per session; 4× that per IP.
    pub(crate) rate_limit: u64,
}

impl ApiState {
    fn new(app: Arc<App>) -> Result<ApiState, beacon_http::HttpError> {
        let public = app.public_url();
        let origin = origin_of(&public);
        let settings = &app.config.api;
        let client_id = settings.oauth_client_id.or(app.config.discord.application_id);
        let oauth = match (client_id, &settings.oauth_client_secret, &app.keyring) {
            (Some(id), Some(secret), Some(_)) => {
                Some(OAuthClient::new(&app.config.discord.api_url, id, secret.clone())?)
            }
            _ => None,
        };
        Ok(ApiState { secure: public.starts_with("https://"), origin, rate_limit: settings.rate_limit, oauth, app })
    }

    /// The redirect URI registered in the developer portal.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("{}/api/v1/auth/callback", self.app.public_url())
    }

    fn keyring(&self) -> Result<&beacon_crypto::Keyring, ApiError> {
        self.app.keyring.as_deref().ok_or_else(login_disabled)
    }
}

fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()),
        None => url.to_owned(),
    }
}

pub(crate) fn login_disabled() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "login_disabled",
        "Login is not configured on this deployment: set BEACON_OAUTH_CLIENT_SECRET.",
    )
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https.
pub(crate) fn set_cookie(state: &ApiState, name: &str, value: &str, path: &str, max_age: Duration) -> String {
    let secure = if state.secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}", max_age.as_secs())
}

/// The logged-in caller. Extracting it refuses (401) a request without a live session, and
/// (403) a state-changing request without the session's CSRF token.
pub struct Authed(pub Session);

impl FromRequestParts<ApiState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(Authed(session.clone()));
        }
        let unauthenticated =
            || ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Log in with Discord first.");
        let value = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(unauthenticated)?;
        let keyring = state.keyring()?;
        let session = session::load(&state.app.store, keyring, value)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(unauthenticated)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !session::same(sent, &session.csrf) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "Missing or wrong X-CSRF-Token header (GET /api/v1/auth/me returns it).",
                ));
            }
        }
        parts.extensions.insert(session.clone());
        Ok(Authed(session))
    }
}

/// The routes outside any guild.
fn top_routes(state: &ApiState) -> Vec<ApiRoute> {
    let s = || state.clone();
    use axum::routing::get;
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/v1/health",
            "Liveness and version",
            Access::Everyone,
            get(health).with_state(s()),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/v1/auth/login",
            "Redirects to Discord's consent screen (PKCE S256, state cookie)",
            Access::Everyone,
            get(auth::login).with_state(s()),
        )
        .success(302),
        ApiRoute::new(
            Method::GET,
            "/api/v1/auth/callback",
            "Discord's redirect back: checks the state, exchanges the code, starts the session",
            Access::Everyone,
            get(auth::callback).with_state(s()),
        )
        .success(302)
        .query(&[("code", "The authorization code"), ("state", "The state sent to Discord")]),
        ApiRoute::new(
            Method::GET,
            "/api/v1/auth/me",
            "The logged-in user and the session's CSRF token",
            Access::Everyone,
            get(auth::me).with_state(s()),
        ),
        ApiRoute::new(
            Method::POST,
            "/api/v1/auth/logout",
            "Ends the session and revokes Discord's tokens",
            Access::Everyone,
            axum::routing::post(auth::logout).with_state(s()),
        )
        .success(204),
        ApiRoute::new(
            Method::GET,
            "/api/v1/guilds",
            "The guilds the user may manage (or read, for the developer team), with Beacon's presence",
            Access::Everyone,
            get(guilds::list).with_state(s()),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/v1/shards",
            "Developer team: shard status, latency and guild → shard",
            Access::Developer,
            get(operator::shards).with_state(s()),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/v1/metrics",
            "Developer team: uptime, guilds, shards and dependency checks",
            Access::Developer,
            get(operator::metrics).with_state(s()),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/v1/llm/models",
            "Developer team: the provider chain, the models guilds may choose, the pricing table",
            Access::Developer,
            get(operator::llm_models).with_state(s()),
        ),
        ApiRoute::new(
            Method::PUT,
            "/api/v1/llm/models/{provider}/{model}/pricing",
            "Developer team: sets a model's price (micro-dollars per million tokens)",
            Access::Developer,
            axum::routing::put(operator::set_pricing).with_state(s()),
        )
        .body("{\"input\": u64, \"output\": u64, \"cached_input\"?: u64, \"cache_write\"?: u64}"),
    ]
}

async fn health(State(state): State<ApiState>) -> Response {
    axum::Json(serde_json::json!({
        "status": if state.app.shutdown.is_cancelled() { "stopping" } else { "ok" },
        "version": App::version(),
        "login": state.oauth.is_some(),
    }))
    .into_response()
}

/// Every route with its full path: the top ones, the core guild ones, each module's.
fn route_table(state: &ApiState) -> Vec<(String, ApiRoute)> {
    let app = &state.app;
    let mut table: Vec<(String, ApiRoute)> = top_routes(state).into_iter().map(|r| (r.path.to_owned(), r)).collect();
    let guild_routes = core_routes::routes().into_iter().chain(app.modules.iter().flat_map(|m| m.api_routes(app)));
    table.extend(guild_routes.map(|r| (format!("{GUILD_PREFIX}{}", r.path), r)));
    table
}

/// The `/api/v1` router.
pub fn router(app: Arc<App>) -> Result<Router, beacon_http::HttpError> {
    let state = ApiState::new(app.clone())?;
    let table = route_table(&state);
    let doc = Arc::new(openapi::document(&table, &app.public_url()));
    let mut router = Router::new();
    for (path, route) in table {
        let handler = if path.starts_with(GUILD_PREFIX) {
            let guard = Guard { access: route.access, write: route.is_write() };
            route.handler.layer(axum::middleware::from_fn_with_state((state.clone(), guard), guard_guild))
        } else {
            route.handler
        };
        router = router.route(&path, handler);
    }
    let doc_route = axum::routing::get(move || {
        let doc = doc.clone();
        async move { axum::Json((*doc).clone()) }
    });
    let router = router
        .route("/api/v1/openapi.json", doc_route)
        // Only under /api/v1: the rest of the server keeps its own 404s.
        .route("/api/v1/{*rest}", axum::routing::any(|| async { ApiError::not_found("No such API endpoint.") }))
        .layer(axum::middleware::from_fn_with_state(state, limits));
    Ok(match cors(&app) {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

/// CORS, only for the configured origins (none: same origin only, no CORS headers at all).
fn cors(app: &App) -> Option<tower_http::cors::CorsLayer> {
    let origins: Vec<axum::http::HeaderValue> =
        app.config.api.cors_origins.iter().filter_map(|o| axum::http::HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::HeaderName::from_static("x-csrf-token")]),
    )
}

/// Rate limits (per IP, and per session cookie when there is one) and the Origin check of
/// state-changing requests, before any handler.
async fn limits(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write && let Some(origin) = req.headers().get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let allowed = origin == state.origin || state.app.config.api.cors_origins.iter().any(|o| o == origin);
        if !allowed {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_origin",
                format!("Requests from {origin} are not allowed; use {}.", state.origin),
            )
            .into_response();
        }
    }
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let minute = Duration::from_secs(60);
    let mut keys = Vec::new();
    if let Some(ip) = ip {
        keys.push((CacheKey::global("api", &format!("rate:ip:{ip}")), state.rate_limit.saturating_mul(4)));
    }
    if let Some(value) = cookie(req.headers(), SESSION_COOKIE) {
        keys.push((CacheKey::global("api", &format!("rate:session:{}", session::sha256(value))), state.rate_limit));
    }
    for (key, limit) in keys {
        match state.app.cache.hit(&key, minute, limit).await {
            Ok(d) if !d.allowed => {
                let secs = d.retry_after.as_secs().max(1);
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("Too many requests; try again in {secs} s."),
                );
                e.retry_after = Some(secs);
                return e.into_response();
            }
            Ok(_) => {}
            // A cache outage does not lock everyone out.
            Err(e) => tracing::warn!(error = %e, "API rate limit check failed"),
        }
    }
    next.run(req).await
}

/// What a per-guild route requires.
#[derive(Clone, Copy)]
struct Guard {
    access: Access,
    write: bool,
}

/// Checks the session and the caller's access to the guild in the path, then hands the
/// handler its [`ApiGuild`].
async fn guard_guild(
    State((state, guard)): State<(ApiState, Guard)>,
    axum::extract::Path(params): axum::extract::Path<std::collections::HashMap<String, String>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let Authed(session) = match Authed::from_request_parts(&mut parts, &state).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Some(guild_id) = params.get("guild_id").and_then(|g| g.parse::<u64>().ok()).filter(|g| *g > 0) else {
        return ApiError::invalid("guild_id", "guild_id must be a Discord id.").into_response();
    };
    let session = match guilds::fresh(&state, session).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let grant = match guilds::access(&state, &session, guild_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return ApiError::forbidden(
                "You cannot manage this server (owner, Manage Server or Beacon access needed).",
            )
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if grant.level < guard.access {
        return ApiError::forbidden(guard.access.refusal()).into_response();
    }
    if guard.write && grant.read_only && guard.access < Access::Developer {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "The developer team reads this server's data but does not change it.",
        )
        .into_response();
    }
    parts.extensions.insert(ApiGuild {
        app: state.app.clone(),
        guild: state.app.guild(guild_id),
        user_id: session.user_id,
        access: grant.level,
    });
    next.run(Request::from_parts(parts, body)).await
}
