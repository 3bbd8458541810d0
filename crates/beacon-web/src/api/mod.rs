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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use beacon_cache::CacheKey;
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute, App, Module};

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
    /// Where sessions live (the table, or Redis when configured).
    pub(crate) sessions: session::SessionStore,
    /// Peers whose `X-Forwarded-For` names the client (`BEACON_TRUSTED_PROXIES`).
    pub(crate) trusted_proxies: Arc<[ipnet::IpNet]>,
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
        Ok(ApiState {
            secure: public.starts_with("https://"),
            origin,
            rate_limit: settings.rate_limit,
            trusted_proxies: settings.trusted_proxies.clone().into(),
            sessions: session::SessionStore::for_app(&app),
            oauth,
            app,
        })
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
        let session =
            state.sessions.load(keyring, value).await.map_err(ApiError::internal)?.ok_or_else(unauthenticated)?;
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

/// One routed endpoint: its full path, the route, and the module that declared it (`None`
/// for Beacon's own routes, which are always served).
struct Routed {
    path: String,
    route: ApiRoute,
    module: Option<Arc<dyn Module>>,
}

/// Every route with its full path: the top ones, the core guild ones, each module's.
fn route_table(state: &ApiState) -> Vec<Routed> {
    let app = &state.app;
    let mut table: Vec<Routed> = top_routes(state)
        .into_iter()
        .map(|route| Routed { path: route.path.to_owned(), route, module: None })
        .collect();
    let guild = |route: ApiRoute, module: Option<Arc<dyn Module>>| Routed {
        path: format!("{GUILD_PREFIX}{}", route.path),
        route,
        module,
    };
    table.extend(core_routes::routes().into_iter().map(|r| guild(r, None)));
    for module in &app.modules {
        table.extend(module.api_routes(app).into_iter().map(|r| guild(r, Some(module.clone()))));
    }
    table
}

/// The `/api/v1` router.
pub fn router(app: Arc<App>) -> Result<Router, beacon_http::HttpError> {
    let state = ApiState::new(app.clone())?;
    let table = route_table(&state);
    let documented: Vec<(String, ApiRoute)> = table.iter().map(|r| (r.path.clone(), r.route.clone())).collect();
    let doc = Arc::new(openapi::document(&documented, &app.public_url()));
    let mut router = Router::new();
    for Routed { path, route, module } in table {
        let limit = if route.csv { app.config.api.csv_limit } else { crate::BODY_LIMIT };
        let handler = if path.starts_with(GUILD_PREFIX) {
            let guard = Guard { access: route.access, write: route.is_write(), module };
            route.handler.layer(axum::middleware::from_fn_with_state((state.clone(), guard), guard_guild))
        } else {
            route.handler
        };
        // Outermost last: a 413 from either limit becomes the JSON error.
        let handler = handler
            .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(limit))
            .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(limit))
            .layer::<_, std::convert::Infallible>(axum::middleware::map_response(move |resp: Response| async move {
                too_large(resp, limit)
            }));
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

/// A body over the route's limit (refused by the limit layer, or by an extractor reading a
/// streamed body) becomes the API's JSON error naming the limit.
fn too_large(resp: Response, limit: usize) -> Response {
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return resp;
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("The request body is larger than this endpoint takes ({}).", size_text(limit)),
    )
    .with_field("body")
    .into_response()
}

/// `256 KiB`, `4 MiB`.
fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// The client's address for the per-IP rate limit: the peer's, unless the peer is a trusted
/// proxy (`BEACON_TRUSTED_PROXIES`); then `X-Forwarded-For` is read from the right, past every
/// trusted hop, to the first address no trusted proxy vouches for. A header from anyone else is
/// ignored, so a client cannot pick its own rate-limit bucket.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match hop.parse::<IpAddr>() {
            Ok(ip) => client = ip,
            Err(_) => break,
        }
    }
    client
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

/// Marks a request a dashboard page makes to the API in-process ([`crate::pages::Api`]). Only
/// code in this process can set a request extension, so no client can claim it. Such a request
/// is not counted against the API's rate limits: the page that made it was already counted by
/// the pages' own per-IP limit, and a person browsing must not use up the session's API budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageCall;

/// Rate limits (per IP, and per session cookie when there is one; not for a page's own
/// in-process calls, [`PageCall`]) and the Origin check of state-changing requests, before any
/// handler.
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
    if req.extensions().get::<PageCall>().is_some() {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_ip(c.0.ip(), req.headers(), &state.trusted_proxies).to_string());
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
#[derive(Clone)]
struct Guard {
    access: Access,
    write: bool,
    /// The module that declared the route: it serves only where the module is on.
    module: Option<Arc<dyn Module>>,
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
    let guild = state.app.guild(guild_id);
    if let Some(module) = &guard.module {
        match state.app.module_enabled(&guild, module.as_ref()).await {
            Ok(true) => {}
            Ok(false) => {
                let name = module.name();
                return ApiError::new(
                    StatusCode::CONFLICT,
                    "module_disabled",
                    format!("The {name} module is off in this server; switch it on first (PUT modules/{name})."),
                )
                .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    parts.extensions.insert(ApiGuild { app: state.app.clone(), guild, user_id: session.user_id, access: grant.level });
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("cidr"), "192.0.2.7/32".parse().expect("ip")];
        // Behind a trusted proxy: the address it was asked by.
        assert_eq!(client_ip(ip("10.1.2.3"), &xff("203.0.113.9"), &trusted), ip("203.0.113.9"));
        // Through two trusted proxies: past both, to the first address nobody trusted added.
        assert_eq!(client_ip(ip("10.1.2.3"), &xff("1.1.1.1, 203.0.113.9, 192.0.2.7"), &trusted), ip("203.0.113.9"));
        // A client's own forged entry left of the real one is never reached.
        assert_eq!(client_ip(ip("192.0.2.7"), &xff("6.6.6.6, 198.51.100.4"), &trusted), ip("198.51.100.4"));
        // Anyone else's header is ignored.
        assert_eq!(client_ip(ip("198.51.100.4"), &xff("203.0.113.9"), &trusted), ip("198.51.100.4"));
        assert_eq!(client_ip(ip("10.1.2.3"), &xff("203.0.113.9"), &[]), ip("10.1.2.3"));
        // Garbage stops the walk at the last good hop; no header keeps the peer.
        assert_eq!(client_ip(ip("10.1.2.3"), &xff("nonsense"), &trusted), ip("10.1.2.3"));
        assert_eq!(client_ip(ip("10.1.2.3"), &HeaderMap::new(), &trusted), ip("10.1.2.3"));
    }

    #[test]
    fn limits_are_named_for_people() {
        assert_eq!(size_text(256 * 1024), "256 KiB");
        assert_eq!(size_text(4 * 1024 * 1024), "4 MiB");
    }
}
