//! `auth/login`, `auth/callback`, `auth/me`, `auth/logout`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beacon_framework::ApiError;
use serde_json::json;

use super::discord::OAuthError;
use super::session::{self, random_token, sha256};
use super::{ApiState, Authed, LOGIN_COOKIE, SESSION_COOKIE, cookie, login_disabled, set_cookie};

/// The login cookie lives only as long as a login may take.
const LOGIN_COOKIE_PATH: &str = "/api/v1/auth";

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response();
    for c in cookies {
        if let Ok(v) = axum::http::HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    resp
}

fn oauth_failed(e: OAuthError) -> ApiError {
    match e {
        OAuthError::Refused(why) => {
            tracing::info!(reason = %why, "Discord refused a login");
            ApiError::new(StatusCode::BAD_REQUEST, "login_refused", "Discord refused the login; please try again.")
        }
        OAuthError::Unavailable(why) => {
            tracing::warn!(reason = %why, "Discord OAuth2 failed");
            ApiError::new(StatusCode::BAD_GATEWAY, "discord_unavailable", "Discord could not be reached; try again.")
        }
    }
}

/// `GET /api/v1/auth/login`: a fresh `state` (in an HttpOnly cookie and, hashed, in the
/// database with the PKCE verifier), then Discord's consent screen.
pub async fn login(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let Some(oauth) = &state.oauth else { return Err(login_disabled()) };
    let keyring = state.keyring()?;
    if let Err(e) = state.sessions.prune().await {
        tracing::warn!(error = %e, "pruning old sessions failed");
    }
    if let Err(e) = session::prune_logins(&state.app.store).await {
        tracing::warn!(error = %e, "pruning unfinished logins failed");
    }
    let login_state = random_token(32).map_err(ApiError::internal)?;
    let verifier = random_token(48).map_err(ApiError::internal)?;
    session::start_login(&state.app.store, keyring, &login_state, &verifier).await.map_err(ApiError::internal)?;
    let url = oauth.authorize_url(&state.redirect_uri(), &login_state, &sha256(&verifier));
    let cookie = set_cookie(&state, LOGIN_COOKIE, &login_state, LOGIN_COOKIE_PATH, session::LOGIN_TTL);
    Ok(redirect(&url, &[cookie]))
}

/// `GET /api/v1/auth/callback`: the `state` must be the one in this browser's login cookie and
/// unused; the code is exchanged with its verifier; the session cookie is set.
pub async fn callback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(oauth) = &state.oauth else { return Err(login_disabled()) };
    let keyring = state.keyring()?;
    let clear = set_cookie(&state, LOGIN_COOKIE, "", LOGIN_COOKIE_PATH, Duration::ZERO);
    let with_clear = |e: ApiError| {
        let mut resp = e.into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(&clear) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        resp
    };
    let invalid_state = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_state",
            "This login link is not for this browser or was already used; start again from the login page.",
        )
    };
    let sent = q.get("state").map(String::as_str).unwrap_or_default();
    let bound = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if sent.is_empty() || !session::same(sent, bound) {
        return Ok(with_clear(invalid_state()));
    }
    // Used up whatever happens next: a replay of this callback finds nothing.
    let verifier = match session::take_login(&state.app.store, keyring, sent).await {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(with_clear(invalid_state())),
        Err(e) => return Ok(with_clear(ApiError::internal(e))),
    };
    if let Some(error) = q.get("error") {
        let e =
            ApiError::new(StatusCode::FORBIDDEN, "access_denied", format!("Discord login was cancelled ({error})."));
        return Ok(with_clear(e));
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return Ok(with_clear(ApiError::invalid("code", "The callback carries no code.")));
    };
    let tokens = match oauth.exchange(code, &verifier, &state.redirect_uri()).await {
        Ok(t) => t,
        Err(e) => return Ok(with_clear(oauth_failed(e))),
    };
    let user = match oauth.me(&tokens.access).await {
        Ok(u) => u,
        Err(e) => return Ok(with_clear(oauth_failed(e))),
    };
    let guilds = match oauth.guilds(&tokens.access).await {
        Ok(g) => g,
        Err(e) => return Ok(with_clear(oauth_failed(e))),
    };
    let id = match state.sessions.create(keyring, user.id, &user.username, &tokens, &guilds).await {
        Ok(id) => id,
        Err(e) => return Ok(with_clear(ApiError::internal(e))),
    };
    tracing::info!(user_id = user.id, "dashboard login");
    let session_cookie = set_cookie(&state, SESSION_COOKIE, &id, "/", session::ABSOLUTE);
    Ok(redirect("/", &[session_cookie, clear]))
}

/// `GET /api/v1/auth/me`.
pub async fn me(State(state): State<ApiState>, Authed(session): Authed) -> Response {
    let developer = state.app.permissions.is_developer_user(session.user_id).await;
    axum::Json(json!({
        "user": {"id": session.user_id.to_string(), "username": session.username},
        "csrf_token": session.csrf,
        "developer": developer,
        "expires_at": session.expires_at,
    }))
    .into_response()
}

/// `POST /api/v1/auth/logout`: revokes the grant at Discord and ends the session.
pub async fn logout(State(state): State<ApiState>, Authed(session): Authed) -> Result<Response, ApiError> {
    if let Some(oauth) = &state.oauth
        && let Err(e) = oauth.revoke(&session.tokens.refresh).await
    {
        // The session still ends here; Discord's grant expires on its own.
        tracing::warn!(error = %e, "revoking Discord's token at logout failed");
    }
    state.sessions.delete(&session.id_hash).await.map_err(ApiError::internal)?;
    let clear = set_cookie(&state, SESSION_COOKIE, "", "/", Duration::ZERO);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}
