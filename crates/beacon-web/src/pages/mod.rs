//! The dashboard: server-rendered pages (askama templates) on the same server as the API,
//! progressively enhanced with htmx (vendored, `hx-boost`: every link and form works without
//! JavaScript too), one hand-written stylesheet, no JavaScript build step.
//!
//! Pages read and change data **only through `/api/v1`** ([`client::Api`]: the API router
//! itself, called with the browser's cookie, CSRF token and origin), so a page shows exactly
//! what the API allows its caller — one login, one session, one access rule. The core pages
//! (settings, modules, access) are the framework's; a module's pages are data
//! ([`beacon_framework::pages::PageSpec`] from [`beacon_framework::Module::pages`]) rendered here.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style; htmx
//! runs with `allowEval` and its inline indicator styles off); static files are served under a
//! version or content hash with a year-long immutable cache; each page's server time goes to
//! the metrics by route template (`beacon_page_seconds`).

mod chart;
mod client;
mod core;
mod guild;
mod markdown;
mod modules;
mod shards;
mod view;

pub use self::core::{SettingsForm, settings_form};

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_cache::CacheKey;
use beacon_framework::App;
use beacon_framework::pages::PageSpec;

pub use client::{Api, Failure};

/// The vendored htmx (npm `htmx.org`, unmodified `dist/htmx.min.js`); the version is in its URL.
pub const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
const HTMX: &[u8] = include_bytes!("../../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../../static/beacon.css");

/// The stylesheet's URL, named by a hash of its content so a change is never served stale.
pub static CSS_PATH: LazyLock<String> = LazyLock::new(|| {
    let digest = ring::digest::digest(&ring::digest::SHA256, CSS);
    let hex: String = digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/static/beacon-{hex}.css")
});

/// The Content-Security-Policy of every page: scripts, styles and forms from this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every page handler shares.
#[derive(Clone)]
pub struct PagesState {
    pub(crate) app: Arc<App>,
    /// The `/api/v1` router, called in-process.
    pub(crate) api: Router,
    /// Every module's pages, with the module's name.
    pub(crate) pages: Arc<Vec<(&'static str, PageSpec)>>,
    /// The shard latencies the Shards page has read.
    pub(crate) shard_history: Arc<shards::History>,
}

impl PagesState {
    pub(crate) fn api(&self, headers: &axum::http::HeaderMap) -> Api {
        Api::new(self.api.clone(), headers)
    }
}

/// The dashboard's routes. `api` is the `/api/v1` router the pages read through.
pub fn router(app: Arc<App>, api: Router) -> Router {
    let pages: Vec<(&'static str, PageSpec)> =
        app.modules.iter().flat_map(|m| m.pages().into_iter().map(move |p| (m.name(), p))).collect();
    // The file plus the multipart framing and the form's other fields.
    let upload_limit = app.config.api.csv_limit + 64 * 1024;
    let state = PagesState {
        app: app.clone(),
        api,
        pages: Arc::new(pages),
        shard_history: Arc::new(shards::History::default()),
    };
    Router::new()
        .route("/", get(core::home))
        .route("/logout", axum::routing::post(core::logout))
        .route("/g", get(core::switch))
        .route("/shards", get(shards::page))
        .route("/shards/live", get(shards::fragment))
        .route("/g/{guild_id}", get(core::guild_home))
        .route("/g/{guild_id}/settings", get(core::settings).post(core::save_settings))
        .route("/g/{guild_id}/settings/revert/{audit_id}", axum::routing::post(core::revert))
        .route("/g/{guild_id}/modules/{module}", axum::routing::post(core::switch_module))
        .route("/g/{guild_id}/access", get(core::access).post(core::grant))
        .route("/g/{guild_id}/access/{user_id}/revoke", get(core::confirm_revoke).post(core::revoke))
        .route("/g/{guild_id}/p/{*slug}", get(modules::page).post(modules::act))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(crate::BODY_LIMIT))
        // A file of an upload section may be as large as the API's CSV limit.
        .route(
            "/g/{guild_id}/u/{*slug}",
            axum::routing::post(modules::upload)
                .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(upload_limit))
                .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(upload_limit)),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(app.clone(), limited))
        .layer(axum::middleware::from_fn_with_state(app, timed))
        .route(HTMX_PATH, get(|| async { asset("text/javascript; charset=utf-8", HTMX) }))
        .route(&CSS_PATH, get(|| async { asset("text/css; charset=utf-8", CSS) }))
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every page, and its server time in the metrics by route template.
async fn timed(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let htmx = req.headers().contains_key("hx-request");
    let started = Instant::now();
    let mut resp = next.run(req).await;
    // After a form sent by htmx, the redirect becomes htmx's own (`HX-Location`): the next page
    // is fetched and swapped in with its URL in the history, as a boosted link would.
    if htmx
        && resp.status() == StatusCode::SEE_OTHER
        && let Some(location) = resp.headers().get(header::LOCATION).cloned()
    {
        let mut swapped = StatusCode::OK.into_response();
        swapped.headers_mut().insert(HeaderName::from_static("hx-location"), location);
        resp = swapped;
    }
    if let Some(route) = route {
        app.metrics.page(&route, started.elapsed());
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The per-IP rate limit of the pages: `BEACON_API_RATE_LIMIT` pages a minute per client
/// address, counted in `beacon-cache` as the API counts its own (the address is the peer's, or
/// the client a `BEACON_TRUSTED_PROXIES` proxy names in `X-Forwarded-For`). Beyond it, a page
/// that says when to come back, with `Retry-After`. Static files are not counted.
async fn limited(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let ip = crate::api::client_ip(peer, req.headers(), &app.config.api.trusted_proxies);
        let key = CacheKey::global("pages", &format!("rate:ip:{ip}"));
        match app.cache.hit(&key, Duration::from_secs(60), app.config.api.rate_limit).await {
            Ok(d) if !d.allowed => {
                let secs = d.retry_after.as_secs().max(1);
                let mut resp = view::fail(Failure {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "rate_limited".into(),
                    message: format!(
                        "Too many pages opened from your address in a minute. Wait {secs} seconds, then reload this page."
                    ),
                    field: None,
                });
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return resp;
            }
            Ok(_) => {}
            // A cache outage does not lock everyone out.
            Err(e) => tracing::warn!(error = %e, "dashboard rate limit check failed"),
        }
    }
    next.run(req).await
}

/// A redirect after a form (303: the browser follows it with GET).
pub(crate) fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An HTML answer from a template.
pub(crate) fn html(status: StatusCode, t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be rendered.").into_response()
        }
    }
}
