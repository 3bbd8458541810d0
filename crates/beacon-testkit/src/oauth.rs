//! Discord's OAuth2 for user login, as strict as Discord: `GET /oauth2/authorize` (a consent
//! step a test drives with [`FakeDiscord::oauth_consent`] or `POST /_fake/oauth2/consent`, or —
//! for a browser, which asks for HTML — a consent page whose form names the user logging in),
//! `POST /api/v10/oauth2/token` (authorization code with PKCE S256 and an exact `redirect_uri`,
//! refresh token; the client authenticated by HTTP Basic or by form fields),
//! `POST /api/v10/oauth2/token/revoke`, and the bearer side of `GET /users/@me` and
//! `GET /users/@me/guilds` (paginated with `before`/`after`/`limit` ≤ 200, with `owner` and
//! `permissions`). Errors have Discord's shape: `{"error": "invalid_grant", "error_description": …}`.

use crate::FakeDiscord;
use crate::error::Error;
use crate::handlers::Reply;
use crate::server::Shared;
use crate::state::{Guild, Member, Role, State, User};
use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Scopes the fake knows (a request for another is refused as Discord refuses it).
const KNOWN_SCOPES: &[&str] = &["identify", "email", "guilds", "guilds.members.read", "connections", "openid"];
/// How long an authorization code may be exchanged (Discord: 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(600);
/// Most guilds in one page of `GET /users/@me/guilds`.
pub const MAX_GUILDS_PAGE: usize = 200;

/// A consent screen shown to a user, waiting for them to approve or deny.
#[derive(Debug, Clone)]
struct Pending {
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    challenge: Option<String>,
}

/// An authorization code, exchangeable once.
#[derive(Debug, Clone)]
struct Code {
    user_id: u64,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<String>,
    issued: Instant,
}

/// One grant: an access token and its refresh token.
#[derive(Debug, Clone)]
struct Grant {
    user_id: u64,
    scopes: Vec<String>,
    access: String,
    refresh: String,
    expires: Instant,
}

/// The OAuth2 side of the fake's state.
#[derive(Debug, Default)]
pub struct OAuthState {
    /// Redirect URIs registered "in the developer portal" (exact matches only).
    pub redirect_uris: Vec<String>,
    /// Lifetime of new access tokens (`None`: Discord's 7 days).
    pub token_ttl: Option<Duration>,
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    /// Token requests by grant type, for tests (`authorization_code`, `refresh_token`, `revoke`).
    pub token_calls: BTreeMap<String, u32>,
}

fn random_token() -> String {
    let mut b = [0u8; 24];
    for x in &mut b {
        *x = fastrand::u8(..);
    }
    hex::encode(b)
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url_form(std::str::from_utf8(body).unwrap_or_default())
}

/// Decodes `application/x-www-form-urlencoded` (also query strings).
pub fn url_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    crate::handlers::percent_decode(&s.replace('+', " "))
}

/// The expected `code_challenge` for a PKCE verifier (S256).
pub fn s256(verifier: &str) -> String {
    use ring::digest::{SHA256, digest};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// `GET /oauth2/authorize`: validates the request and shows the consent screen (as JSON).
pub async fn authorize(
    AxState(sh): AxState<Arc<Shared>>,
    headers: HeaderMap,
    AxQuery(q): AxQuery<HashMap<String, String>>,
) -> Response {
    let bad = |message: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({"message": message}))).into_response();
    if q.get("client_id").map(String::as_str) != Some(sh.app_id.to_string().as_str()) {
        return bad("Unknown Application");
    }
    let mut st = sh.lock();
    let Some(redirect_uri) = q.get("redirect_uri").filter(|u| st.oauth.redirect_uris.contains(u)).cloned() else {
        return bad("Invalid OAuth2 redirect_uri");
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad("Invalid response_type");
    }
    let scopes: Vec<String> = q.get("scope").map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return bad("Invalid Form Body: scope");
    }
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method").map(String::as_str)) {
        (Some(c), Some("S256")) if c.len() >= 43 => Some(c.clone()),
        (None, None) => None,
        _ => return bad("Invalid code_challenge or code_challenge_method (S256 only)"),
    };
    let id = random_token();
    let pending = Pending { redirect_uri, scopes: scopes.clone(), state: q.get("state").cloned(), challenge };
    st.oauth.pending.insert(id.clone(), pending);
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser {
        return consent_page(&id, &scopes);
    }
    axum::Json(json!({
        "authorization_id": id,
        "application": {"id": sh.app_id.to_string(), "name": "Beacon Test Bot"},
        "scopes": scopes,
    }))
    .into_response()
}

/// The consent screen a browser sees: who is logging in (a user id, as the fake has no
/// passwords), the scopes asked for, Authorize or Cancel.
fn consent_page(authorization_id: &str, scopes: &[String]) -> Response {
    let scopes: String = scopes.iter().map(|s| format!("<li>{}</li>", html_escape(s))).collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorize · Fake Discord</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body>\
         <h1>Beacon Test Bot wants to access your account</h1><ul>{scopes}</ul>\
         <form method=\"post\" action=\"/_fake/oauth2/consent-form\">\
         <input type=\"hidden\" name=\"authorization_id\" value=\"{}\">\
         <label for=\"user_id\">Log in as (user id)</label> <input id=\"user_id\" name=\"user_id\" required>\
         <button type=\"submit\" name=\"approve\" value=\"true\">Authorize</button>\
         <button type=\"submit\" name=\"approve\" value=\"false\">Cancel</button></form></body></html>",
        html_escape(authorization_id)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `POST /_fake/oauth2/consent-form`: the consent page's form; redirects the browser back to
/// the application as Discord does.
pub async fn consent_form(AxState(sh): AxState<Arc<Shared>>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let user = form.get("user_id").and_then(|u| u.trim().parse::<u64>().ok());
    let (Some(id), Some(user)) = (form.get("authorization_id"), user) else {
        return (StatusCode::BAD_REQUEST, "authorization_id and a numeric user_id are required").into_response();
    };
    let approve = form.get("approve").map(String::as_str) != Some("false");
    match decide(&sh, id, user, approve) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// The body of `POST /_fake/oauth2/consent`.
#[derive(Deserialize)]
pub struct Consent {
    authorization_id: String,
    #[serde(with = "crate::types::id_str")]
    user_id: u64,
    #[serde(default = "yes")]
    approve: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_fake/oauth2/consent`: the user approves (or denies) a consent screen; the answer is
/// where Discord would send their browser.
pub async fn consent(AxState(sh): AxState<Arc<Shared>>, axum::Json(c): axum::Json<Consent>) -> Response {
    match decide(&sh, &c.authorization_id, c.user_id, c.approve) {
        Ok(location) => axum::Json(json!({"location": location})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, axum::Json(json!({"error": e.to_string()}))).into_response(),
    }
}

fn decide(sh: &Shared, authorization_id: &str, user_id: u64, approve: bool) -> Result<String, Error> {
    let mut st = sh.lock();
    let pending = st
        .oauth
        .pending
        .remove(authorization_id)
        .ok_or_else(|| Error::NotFound(format!("authorization {authorization_id}")))?;
    if !st.users.contains_key(&user_id) {
        return Err(Error::NotFound(format!("user {user_id}")));
    }
    let sep = if pending.redirect_uri.contains('?') { '&' } else { '?' };
    let state = pending.state.as_deref().map(|s| format!("&state={}", encode(s))).unwrap_or_default();
    if !approve {
        return Ok(format!(
            "{}{sep}error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request{state}",
            pending.redirect_uri
        ));
    }
    let code = random_token();
    let location = format!("{}{sep}code={code}{state}", pending.redirect_uri);
    st.oauth.codes.insert(
        code,
        Code {
            user_id,
            redirect_uri: pending.redirect_uri,
            scopes: pending.scopes,
            challenge: pending.challenge,
            issued: Instant::now(),
        },
    );
    Ok(location)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The client's credentials: HTTP Basic, else `client_id`/`client_secret` form fields.
fn client_auth(sh: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match &basic {
        Some(pair) => match pair.split_once(':') {
            Some((id, secret)) => (decode(id), decode(secret)),
            None => return false,
        },
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return false,
        },
    };
    id == sh.app_id.to_string() && secret == sh.oauth_secret
}

fn issue(st: &mut State, user_id: u64, scopes: Vec<String>) -> Value {
    let ttl = st.oauth.token_ttl.unwrap_or(Duration::from_secs(604_800));
    let grant =
        Grant { user_id, scopes, access: random_token(), refresh: random_token(), expires: Instant::now() + ttl };
    let body = json!({
        "access_token": grant.access,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "refresh_token": grant.refresh,
        "scope": grant.scopes.join(" "),
    });
    st.oauth.grants.push(grant);
    body
}

/// `POST /api/v10/oauth2/token`.
pub async fn token(AxState(sh): AxState<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = parse_form(&body);
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let mut st = sh.lock();
    *st.oauth.token_calls.entry(grant_type.clone()).or_default() += 1;
    if !form_type {
        st.violation(None, "POST", "/oauth2/token", "the token request is not form-encoded".into());
        return oauth_error(400, "invalid_request", "Request body must be application/x-www-form-urlencoded");
    }
    if !client_auth(&sh, &headers, &form) {
        st.violation(None, "POST", "/oauth2/token", "the client did not authenticate (Basic or form)".into());
        return oauth_error(401, "invalid_client", "Invalid client");
    }
    match grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = form.get("code").and_then(|c| st.oauth.codes.remove(c)) else {
                return oauth_error(400, "invalid_grant", "Invalid \"code\" in request.");
            };
            if code.issued.elapsed() > CODE_TTL {
                return oauth_error(400, "invalid_grant", "Invalid \"code\" in request.");
            }
            if form.get("redirect_uri") != Some(&code.redirect_uri) {
                return oauth_error(400, "invalid_grant", "Invalid \"redirect_uri\" in request.");
            }
            if let Some(challenge) = &code.challenge {
                match form.get("code_verifier") {
                    Some(v) if (43..=128).contains(&v.len()) && s256(v) == *challenge => {}
                    _ => return oauth_error(400, "invalid_grant", "Invalid \"code_verifier\" in request."),
                }
            }
            axum::Json(issue(&mut st, code.user_id, code.scopes)).into_response()
        }
        "refresh_token" => {
            let Some(at) = form.get("refresh_token").and_then(|r| st.oauth.grants.iter().position(|g| g.refresh == *r))
            else {
                return oauth_error(400, "invalid_grant", "Invalid \"refresh_token\" in request.");
            };
            let old = st.oauth.grants.remove(at);
            axum::Json(issue(&mut st, old.user_id, old.scopes)).into_response()
        }
        "" => oauth_error(400, "invalid_request", "Missing \"grant_type\""),
        _ => oauth_error(400, "unsupported_grant_type", "Unsupported grant type"),
    }
}

/// `POST /api/v10/oauth2/token/revoke`: revokes the grant an access or refresh token belongs to.
pub async fn revoke(AxState(sh): AxState<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let mut st = sh.lock();
    *st.oauth.token_calls.entry("revoke".into()).or_default() += 1;
    if !client_auth(&sh, &headers, &form) {
        st.violation(None, "POST", "/oauth2/token/revoke", "the client did not authenticate (Basic or form)".into());
        return oauth_error(401, "invalid_client", "Invalid client");
    }
    let Some(token) = form.get("token") else {
        return oauth_error(400, "invalid_request", "Missing \"token\"");
    };
    // Like RFC 7009 (and Discord): an unknown token is not an error.
    st.oauth.grants.retain(|g| g.access != *token && g.refresh != *token);
    axum::Json(json!({})).into_response()
}

/// The user a bearer token belongs to, if it is valid for `scope`; `Err` is the 401 Discord
/// answers.
pub fn bearer_user(st: &State, token: &str, scope: &str) -> Result<u64, Reply> {
    let unauthorized = || Reply::error(401, 0, "401: Unauthorized");
    let grant = st.oauth.grants.iter().find(|g| g.access == token).ok_or_else(unauthorized)?;
    if grant.expires <= Instant::now() {
        return Err(unauthorized());
    }
    if !grant.scopes.iter().any(|s| s == scope) {
        return Err(Reply::error(403, 50001, "Missing Access"));
    }
    Ok(grant.user_id)
}

/// `GET /users/@me/guilds` for `user_id`: their guilds by id, one page.
pub fn list_guilds(st: &State, user_id: u64, q: &crate::rest::Query) -> Reply {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_GUILDS_PAGE,
        Some(Ok(l)) if (1..=MAX_GUILDS_PAGE).contains(&l) => l,
        Some(_) => {
            return Reply::json(
                400,
                json!({"code": 50035, "message": "Invalid Form Body", "errors": {"limit": {"_errors": [
                    {"code": "NUMBER_TYPE_MAX", "message": "int value should be less than or equal to 200."}
                ]}}}),
            );
        }
    };
    let id = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    let mine = st.guilds.values().filter(|g| g.members.contains_key(&user_id) || g.owner_id == user_id);
    let page: Vec<&Guild> = match (id("before"), id("after")) {
        (Some(before), _) => {
            let mut v: Vec<&Guild> = mine.filter(|g| g.id < before).collect();
            let skip = v.len().saturating_sub(limit);
            v.drain(..skip);
            v
        }
        (None, after) => mine.filter(|g| g.id > after.unwrap_or(0)).take(limit).collect(),
    };
    Reply::ok(Value::Array(
        page.iter()
            .map(|g| {
                json!({
                    "id": g.id.to_string(),
                    "name": g.name,
                    "icon": null,
                    "banner": null,
                    "owner": g.owner_id == user_id,
                    "permissions": st.member_permissions(g.id, user_id).to_string(),
                    "features": [],
                })
            })
            .collect(),
    ))
}

impl FakeDiscord {
    /// The OAuth2 client secret (the client id is [`FakeDiscord::application_id`]).
    pub fn oauth_client_secret(&self) -> String {
        self.shared.oauth_secret.clone()
    }

    /// Registers a redirect URI, as an operator does in the developer portal.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.shared.lock().oauth.redirect_uris.push(uri.to_owned());
    }

    /// Lifetime of access tokens issued from now on (Discord's is 7 days).
    pub fn set_oauth_token_ttl(&self, ttl: Duration) {
        self.shared.lock().oauth.token_ttl = Some(ttl);
    }

    /// How many token requests of a grant type (`authorization_code`, `refresh_token`) or
    /// revocations (`revoke`) the fake received.
    pub fn oauth_calls(&self, kind: &str) -> u32 {
        self.shared.lock().oauth.token_calls.get(kind).copied().unwrap_or(0)
    }

    /// Makes every access token of `user_id` expire now, as time passing would (their refresh
    /// tokens still work).
    pub fn expire_oauth_tokens(&self, user_id: u64) {
        let now = Instant::now();
        for g in self.shared.lock().oauth.grants.iter_mut().filter(|g| g.user_id == user_id) {
            g.expires = now;
        }
    }

    /// Live grants (access tokens not revoked) of a user.
    pub fn oauth_live_grants(&self, user_id: u64) -> usize {
        self.shared.lock().oauth.grants.iter().filter(|g| g.user_id == user_id).count()
    }

    /// The user approves (or denies) the consent screen `authorization_id` that
    /// `GET /oauth2/authorize` showed; returns where Discord sends their browser.
    pub fn oauth_consent(&self, authorization_id: &str, user_id: u64, approve: bool) -> Result<String, Error> {
        decide(&self.shared, authorization_id, user_id, approve)
    }

    /// Makes `user_id` a member of `count` new guilds the bot is not in (owner of them when
    /// `owner`, else with Manage Server when `manage`, else a plain member), as a user of many
    /// servers is. Returns their ids, ascending.
    pub fn join_user_guilds(&self, user_id: u64, count: usize, owner: bool, manage: bool) -> Vec<u64> {
        let sh = &self.shared;
        let mut st = sh.lock();
        st.users.entry(user_id).or_insert_with(|| User { id: user_id, username: format!("user{user_id}"), bot: false });
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let gid = sh.ids.next();
            let role = sh.ids.next();
            let everyone = Role {
                id: gid,
                name: "@everyone".into(),
                permissions: crate::state::EVERYONE_PERMISSIONS,
                position: 0,
                color: 0,
                hoist: false,
                mentionable: false,
                bot_id: None,
            };
            let managers = Role {
                id: role,
                name: "managers".into(),
                permissions: crate::state::MANAGE_GUILD,
                position: 1,
                color: 0,
                hoist: false,
                mentionable: false,
                bot_id: None,
            };
            let owner_id = if owner { user_id } else { sh.ids.next() };
            let mut members = BTreeMap::new();
            let roles = if manage && !owner { vec![role] } else { Vec::new() };
            members.insert(
                user_id,
                Member { user_id, roles, nick: None, joined_at_ms: 0, communication_disabled_until: None },
            );
            st.guilds.insert(
                gid,
                Guild {
                    id: gid,
                    name: format!("Other server {i}"),
                    owner_id,
                    channels: Vec::new(),
                    roles: vec![everyone, managers],
                    members,
                    bans: BTreeMap::new(),
                    created_ms: 0,
                    audit_log: Vec::new(),
                },
            );
            ids.push(gid);
        }
        ids
    }
}
