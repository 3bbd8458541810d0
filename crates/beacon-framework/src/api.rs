//! The web API's contract with modules: a typed route table ([`ApiRoute`]) that is both the
//! router and the OpenAPI document, the already-authorized per-guild context ([`ApiGuild`]) a
//! handler receives, and the one JSON error shape ([`ApiError`]).
//!
//! A module lists its per-guild endpoints in [`crate::Module::api_routes`]; `beacon-web` mounts
//! them under `/api/v1/guilds/{guild_id}/…` behind the session, CSRF and access checks (the same
//! [`Access`] rule as the slash commands), so a handler only ever sees its own guild.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use beacon_store::GuildStore;
use serde_json::{Value, json};

use crate::access::Access;
use crate::app::App;

/// One endpoint: method, path (relative to the mount point, e.g. `/tickets/{number}`), what
/// it is for, who may call it, and the handler. The same table renders the OpenAPI document,
/// so the document covers every route by construction.
#[derive(Clone)]
pub struct ApiRoute {
    /// The HTTP method.
    pub method: Method,
    /// Path under the mount point; `{name}` marks a path parameter.
    pub path: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The lowest access level that may call it.
    pub access: Access,
    /// Query parameters (name, description) for the document.
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON body it takes, described for the document (`None`: no body).
    pub body: Option<&'static str>,
    /// The body is CSV text (an import), allowed up to the deployment's larger CSV limit
    /// (`BEACON_API_CSV_LIMIT_MB`) instead of the JSON limit (256 KiB).
    pub csv: bool,
    /// The status of a success (200; 204 for DELETE unless stated), for the document.
    pub success: u16,
    /// The handler.
    pub handler: axum::routing::MethodRouter,
}

impl ApiRoute {
    /// An endpoint open to `access` and above.
    pub fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        access: Access,
        handler: axum::routing::MethodRouter,
    ) -> ApiRoute {
        let success = if method == Method::DELETE { 204 } else { 200 };
        ApiRoute { method, path, summary, access, query: &[], body: None, csv: false, success, handler }
    }

    /// Documents the status of a success (e.g. 201 for a creation, 302 for a redirect).
    pub fn success(mut self, status: u16) -> ApiRoute {
        self.success = status;
        self
    }

    /// Documents its query parameters.
    pub fn query(mut self, params: &'static [(&'static str, &'static str)]) -> ApiRoute {
        self.query = params;
        self
    }

    /// Documents its JSON body.
    pub fn body(mut self, description: &'static str) -> ApiRoute {
        self.body = Some(description);
        self
    }

    /// Documents its CSV body (`text/csv`), which may be as large as the deployment's CSV limit.
    pub fn csv_body(mut self, description: &'static str) -> ApiRoute {
        self.body = Some(description);
        self.csv = true;
        self
    }

    /// Whether it changes state (anything but GET/HEAD/OPTIONS): CSRF-checked, refused to read-only callers.
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// The per-guild context of an API request, put there by the web layer after it checked the
/// session and the caller's access to this guild. A handler takes it as an extractor.
#[derive(Clone)]
pub struct ApiGuild {
    /// The shared app.
    pub app: Arc<App>,
    /// The guild's data (every query bound to it).
    pub guild: GuildStore,
    /// The logged-in user.
    pub user_id: u64,
    /// Their level in this guild.
    pub access: Access,
}

/// The name shown for actor id 0: a change no member made — Beacon's own, or one whose
/// author's records were erased (`/privacy`).
pub const SYSTEM_ACTOR_NAME: &str = "Beacon";

/// Where a member's name is cached for [`ApiGuild::member_names`] (removed by an erasure).
pub(crate) fn name_key(guild_id: u64, user_id: u64) -> beacon_cache::CacheKey {
    beacon_cache::CacheKey::guild(guild_id, "names", &user_id.to_string())
}

/// How long a member's name read from Discord is reused for API answers and pages.
const NAME_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl ApiGuild {
    /// The guild's id.
    pub fn guild_id(&self) -> u64 {
        self.guild.id()
    }

    /// The names of `ids` as this server shows them (nickname, global name, username), read
    /// from Discord and kept in the cache for a few minutes (a page of 50 moderation cases asks
    /// Discord once per member, not once per row). Id 0 is [`SYSTEM_ACTOR_NAME`]. An id Discord
    /// does not know here (a member who left), or Discord out of reach, is left out: the caller
    /// shows the id.
    pub async fn member_names(&self, ids: impl IntoIterator<Item = u64>) -> std::collections::BTreeMap<u64, String> {
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let lookups = ids.into_iter().map(|id| async move { self.member_name(id).await.map(|n| (id, n)) });
        futures_util::future::join_all(lookups).await.into_iter().flatten().collect()
    }

    async fn member_name(&self, user: u64) -> Option<String> {
        use twilight_model::id::Id;
        if user == 0 {
            return Some(SYSTEM_ACTOR_NAME.to_owned());
        }
        let key = name_key(self.guild_id(), user);
        if let Ok(Some(bytes)) = self.app.cache.get(&key).await
            && let Ok(name) = String::from_utf8(bytes)
        {
            return Some(name);
        }
        let (guild, member) = (Id::new_checked(self.guild_id())?, Id::new_checked(user)?);
        let member = match self.app.http.guild_member(guild, member).await {
            Ok(r) => r.model().await.ok()?,
            Err(e) => {
                tracing::debug!(error = %e, "a member's name could not be read from Discord");
                return None;
            }
        };
        let name = member.nick.or(member.user.global_name).unwrap_or(member.user.name);
        if let Err(e) = self.app.cache.set(&key, name.as_bytes(), NAME_TTL).await {
            tracing::debug!(error = %e, "a member's name was not cached");
        }
        Some(name)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiGuild {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiGuild>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a guild route was reached without its guild check"))
    }
}

/// An API error: `{"error": {"code", "message", "field"?}}` with a stable `code`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`unauthenticated`, `forbidden`, `invalid_value`, …).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault (validation errors).
    pub field: Option<String>,
    /// Seconds to wait (`Retry-After`, with 429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    /// 400: `field` is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", message) }
    }

    /// 404: no such thing in this guild.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500, logged; the message shown is generic.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<beacon_store::StoreError> for ApiError {
    fn from(e: beacon_store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::settings::SettingError> for ApiError {
    fn from(e: crate::settings::SettingError) -> Self {
        use crate::settings::SettingError;
        match e {
            SettingError::UnknownKey(key) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_setting",
                format!("There is no setting called `{key}`."),
            )
            .with_field(key),
            SettingError::Invalid { key, reason } => ApiError::invalid(key.clone(), format!("`{key}` {reason}.")),
            SettingError::UnknownAudit(id) => {
                ApiError::not_found(format!("There is no change #{id} in this server's settings history."))
            }
            SettingError::Store(e) => ApiError::internal(e),
        }
    }
}

impl ApiError {
    /// The same error, naming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
}

/// A request's query string (`?status=open&limit=20`), read field by field for list and filter
/// endpoints: a missing field is its default, a bad one a 400 [`ApiError::invalid`] naming the
/// field and what it must be.
#[derive(Debug, Clone, Copy)]
pub struct QueryParams<'a> {
    fields: &'a std::collections::HashMap<String, String>,
}

impl<'a> QueryParams<'a> {
    /// Reads `fields` (axum's `Query<HashMap<String, String>>`).
    pub fn new(fields: &'a std::collections::HashMap<String, String>) -> QueryParams<'a> {
        QueryParams { fields }
    }

    /// `field` parsed with [`std::str::FromStr`], if given; refused as "`field` must be `what`."
    pub fn get<T: std::str::FromStr>(&self, field: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.parse_with(field, what, |v| v.parse().ok())
    }

    /// `field` read by `parse` (an enum's own parser, a range check), if given; refused as
    /// "`field` must be `what`." when `parse` gives nothing.
    pub fn parse_with<T>(
        &self,
        field: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.fields.get(field) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| ApiError::invalid(field, format!("{field} must be {what}."))),
        }
    }

    /// A whole number `field` within `range`, `default` when not given.
    pub fn number<T>(&self, field: &str, range: std::ops::RangeInclusive<T>, default: T) -> Result<T, ApiError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let what = format!("a whole number from {} to {}", range.start(), range.end());
        Ok(self.parse_with(field, &what, |v| v.parse().ok().filter(|n| range.contains(n)))?.unwrap_or(default))
    }

    /// Text `field`, trimmed, if given and not blank; refused when longer than `max_chars`.
    pub fn text(&self, field: &str, max_chars: usize) -> Result<Option<&'a str>, ApiError> {
        let Some(text) = self.fields.get(field).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if text.chars().count() > max_chars {
            return Err(ApiError::invalid(field, format!("{field} must be at most {max_chars} characters.")));
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod query_tests {
    use super::QueryParams;
    use std::collections::HashMap;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn fields_are_read_with_defaults_and_refused_by_name() {
        let f = fields(&[("limit", "20"), ("before", "x"), ("days", "400"), ("q", "  hello "), ("status", "open")]);
        let q = QueryParams::new(&f);
        assert_eq!(q.number("limit", 1..=100, 50).unwrap(), 20);
        assert_eq!(q.number("offset", 0..=10_000, 0).unwrap(), 0, "absent: the default");
        let err = q.number("days", 1..=365, 30).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("days"));
        assert_eq!(err.message, "days must be a whole number from 1 to 365.");
        assert_eq!(q.get::<i64>("before", "a ticket number").unwrap_err().message, "before must be a ticket number.");
        assert_eq!(q.get::<u64>("opener", "a Discord user id").unwrap(), None);
        assert_eq!(q.text("q", 500).unwrap(), Some("hello"));
        assert_eq!(q.text("q", 3).unwrap_err().message, "q must be at most 3 characters.");
        let status = q.parse_with("status", "open or closed", |s| (s == "open").then_some(1)).unwrap();
        assert_eq!(status, Some(1));
    }
}
