//! What every page of one server starts with: [`GuildCtx`], an extractor that parses the
//! `{guild_id}` of the path and asks the API whether the caller may see that server (the
//! modules list, which the API answers only to its managers), and [`post_then`], the one way a
//! form changes something: a call to the API, then a redirect that shows a flash (`?done=…`),
//! or the API's error page.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::view::fail;
use super::{Api, Failure, PagesState, see_other};

/// A server of the path the caller may see, with the API as the caller sees it.
pub struct GuildCtx {
    /// The server's id (never 0: the local knowledge base is not a server).
    pub id: u64,
    /// The API with the caller's cookie and origin.
    pub api: Api,
    /// `GET /api/v1/guilds/{id}/modules` (the access check's answer, reused by the layout).
    pub modules: Value,
}

/// The error page of a path naming no server.
pub fn no_such_server() -> Response {
    fail(Failure {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: "There is no such server.".into(),
        field: None,
    })
}

/// The `guild_id` of a path: a Discord id, never 0.
pub fn parse_guild(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok().filter(|g| *g > 0)
}

impl FromRequestParts<PagesState> for GuildCtx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PagesState) -> Result<GuildCtx, Response> {
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let id = params.iter().find(|(k, _)| *k == "guild_id").and_then(|(_, v)| parse_guild(v));
        let Some(id) = id else { return Err(no_such_server()) };
        let api = state.api(&parts.headers);
        let modules = api.get(&format!("/api/v1/guilds/{id}/modules")).await.map_err(fail)?;
        Ok(GuildCtx { id, api, modules })
    }
}

impl GuildCtx {
    /// `/api/v1/guilds/{id}{rest}`.
    pub fn api_path(&self, rest: &str) -> String {
        format!("/api/v1/guilds/{}{rest}", self.id)
    }

    /// `/g/{id}/{rest}`.
    pub fn page(&self, rest: &str) -> String {
        format!("/g/{}/{rest}", self.id)
    }
}

/// A change through the API (with the form's CSRF token), then to `back` with the flash
/// `done` (`?done=saved` …); a refusal shows the API's own message.
pub async fn post_then(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: &str,
    back: &str,
    done: &str,
) -> Response {
    match api.send(method, path, body, csrf).await {
        Ok(_) => see_other(&with_done(back, done)),
        Err(f) => fail(f),
    }
}

/// `back` with `done=…` added to its query.
pub fn with_done(back: &str, done: &str) -> String {
    let sep = if back.contains('?') { '&' } else { '?' };
    format!("{back}{sep}done={done}")
}

/// A file the browser downloads (a CSV export read from the API).
pub fn download(content_type: &str, filename: &str, body: axum::body::Bytes) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\\', '\r', '\n'], "_"));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flash_joins_the_query() {
        assert_eq!(with_done("/g/1/settings", "saved"), "/g/1/settings?done=saved");
        assert_eq!(with_done("/g/1/p/cases?kind=ban", "done"), "/g/1/p/cases?kind=ban&done=done");
        assert_eq!(parse_guild("0"), None);
        assert_eq!(parse_guild("12"), Some(12));
        assert_eq!(parse_guild("x"), None);
    }
}
