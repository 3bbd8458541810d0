//! The FAQ in the web API (mounted by `beacon-web` under `/api/v1/guilds/{guild_id}` behind the
//! login and access checks): list, one entry, create, edit, remove, search, CSV export and
//! import, the search log, and the searches that found nothing (gaps).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute, QueryParams};
use beacon_store::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::error::FaqError;
use crate::model::{EntryInput, FaqEntry};
use crate::repo::Feeds;
use crate::service::FaqService;

/// What the handlers need to reach the module's service.
#[derive(Clone)]
pub(crate) struct Faq {
    pub(crate) feeds: Feeds,
    pub(crate) service: Arc<OnceCell<Arc<FaqService>>>,
}

impl Faq {
    async fn service(&self, ctx: &ApiGuild) -> Result<Arc<FaqService>, ApiError> {
        crate::module::service(&self.service, &self.feeds, &ctx.app).await.map_err(api_error)
    }
}

/// Maps the FAQ's errors; an invalid entry names the field it is about.
fn api_error(e: FaqError) -> ApiError {
    match e {
        FaqError::Invalid(message) => {
            let lower = message.to_lowercase();
            let field = ["question", "answer", "tag"].into_iter().find(|f| lower.contains(f)).unwrap_or("body");
            ApiError::invalid(if field == "tag" { "tags" } else { field }, message)
        }
        FaqError::NotFound(id) => ApiError::not_found(format!("There is no FAQ entry #{id} in this server.")),
        FaqError::Csv { line, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_csv", format!("CSV line {line}: {message}"))
                .with_field(format!("line {line}"))
        }
        other => ApiError::internal(other),
    }
}

macro_rules! with_faq {
    ($faq:expr, $handler:path, $($arg:ident : $ty:ty),*) => {{
        let faq = $faq.clone();
        move |ctx: ApiGuild, $($arg: $ty),*| {
            let faq = faq.clone();
            async move { $handler(faq, ctx, $($arg),*).await }
        }
    }};
}

/// The routes.
pub(crate) fn routes(faq: &Faq) -> Vec<ApiRoute> {
    use axum::routing::{delete, get, post, put};
    let a = Access::Authorized;
    vec![
        ApiRoute::new(Method::GET, "/faq", "FAQ entries, newest first", a, get(with_faq!(faq, list, q: Query<HashMap<String, String>>)))
            .query(&[("limit", "At most this many (1–100, default 50)"), ("offset", "Skip this many")]),
        ApiRoute::new(Method::POST, "/faq", "Adds an entry", a, post(with_faq!(faq, create, body: Result<Json<EntryBody>, axum::extract::rejection::JsonRejection>)))
            .body("{\"question\", \"answer\", \"tags\": [..], \"pinned\": false}")
            .success(201),
        ApiRoute::new(Method::GET, "/faq/search", "Typo-tolerant search", a, get(with_faq!(faq, search, q: Query<HashMap<String, String>>)))
            .query(&[("q", "What to search for")]),
        ApiRoute::new(Method::GET, "/faq/gaps", "Searches that found nothing (personal data redacted)", a, get(with_faq!(faq, gaps, q: Query<HashMap<String, String>>)))
            .query(&[("days", "The last this many days (1–365, default 30)")]),
        ApiRoute::new(Method::GET, "/faq/searches", "The search log, newest first: each search's term (personal data redacted) and how many entries it found", a, get(with_faq!(faq, searches, q: Query<HashMap<String, String>>)))
            .query(&[("days", "The last this many days (1–365, default 30)"), ("limit", "At most this many (1–500, default 100)")]),
        ApiRoute::new(Method::GET, "/faq/export", "Every entry as CSV", a, get(with_faq!(faq, export,))),
        ApiRoute::new(Method::POST, "/faq/import", "Adds or replaces entries from a CSV body (the export's columns)", a, post(with_faq!(faq, import, body: Bytes)))
            .csv_body("CSV text (text/csv) with the export's header"),
        ApiRoute::new(Method::GET, "/faq/{entry_id}", "One entry", a, get(with_faq!(faq, one, p: Path<HashMap<String, String>>))),
        ApiRoute::new(Method::PUT, "/faq/{entry_id}", "Replaces an entry", a, put(with_faq!(faq, update, p: Path<HashMap<String, String>>, body: Result<Json<EntryBody>, axum::extract::rejection::JsonRejection>)))
            .body("{\"question\", \"answer\", \"tags\": [..], \"pinned\": false}"),
        ApiRoute::new(Method::DELETE, "/faq/{entry_id}", "Removes an entry", a, delete(with_faq!(faq, remove, p: Path<HashMap<String, String>>))),
    ]
}

/// The dashboard's FAQ page: the entries, the searches that found nothing (the gaps to fill),
/// and the CSV export and import (the same file `/faq import` and `/export faq` use).
pub(crate) fn pages() -> Vec<beacon_framework::pages::PageSpec> {
    use beacon_framework::pages::{Field, Filter, Format, PageSpec, Section};
    vec![PageSpec {
        slug: "faq",
        title: "FAQ",
        intro: "The answers members find with /faq, and what they searched for without finding one.",
        sections: vec![
            Section::Table {
                title: "Entries",
                api: "/faq",
                list: "entries",
                columns: vec![
                    Field::text("#", "id"),
                    Field::text("Question", "question"),
                    Field::new("Answer", "answer", Format::Markdown),
                    Field::text("Tags", "tags"),
                    Field::text("Pinned", "pinned"),
                    Field::text("Views", "views"),
                    Field::new("Updated", "updated_at", Format::Time),
                ],
                filters: vec![],
                link: None,
                action: None,
                empty: "No entry yet: add one with /faq add in Discord, or import a CSV file below.",
            },
            Section::Table {
                title: "Gaps: searches with no answer",
                api: "/faq/gaps",
                list: "gaps",
                columns: vec![
                    Field::text("Search", "term"),
                    Field::text("Times", "searches"),
                    Field::new("Last", "last_at", Format::Time),
                ],
                filters: vec![Filter { param: "days", label: "Days", choices: &["7", "30", "90", "365"] }],
                link: None,
                action: None,
                empty: "Every search found an answer.",
            },
            Section::Download {
                label: "Export as CSV",
                api: "/faq/export",
                filename: "faq.csv",
                help: "Every entry, in the columns the import reads.",
            },
            Section::Upload {
                title: "Import a CSV file",
                api: "/faq/import",
                content_type: "text/csv",
                label: "CSV file",
                help: "Columns question, answer (optional: id, tags, pinned). A row with the id of an entry replaces it.",
                result: vec![Field::text("Added", "added"), Field::text("Replaced", "updated")],
            },
        ],
    }]
}

fn entry_json(e: &FaqEntry) -> Value {
    json!({
        "id": e.id,
        "question": e.question,
        "answer": e.answer,
        "tags": e.tags,
        "pinned": e.pinned,
        "views": e.views,
        "created_by": e.created_by.to_string(),
        "updated_by": e.updated_by.to_string(),
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    })
}

#[derive(Deserialize)]
pub(crate) struct EntryBody {
    question: String,
    answer: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    pinned: bool,
}

fn input(body: Result<Json<EntryBody>, axum::extract::rejection::JsonRejection>) -> Result<EntryInput, ApiError> {
    let Json(b) = body.map_err(|e| {
        ApiError::invalid("body", format!("Send {{\"question\", \"answer\", \"tags\", \"pinned\"}}: {e}"))
    })?;
    EntryInput::new(&b.question, &b.answer, &b.tags, b.pinned).map_err(api_error)
}

fn entry_id(p: &HashMap<String, String>) -> Result<u64, ApiError> {
    p.get("entry_id")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::invalid("entry_id", "entry_id must be an FAQ entry number (1, 2, …)."))
}

async fn list(faq: Faq, ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let limit = QueryParams::new(&q).number::<u32>("limit", 1..=100, 50)?;
    let offset = QueryParams::new(&q).number::<u32>("offset", 0..=1_000_000, 0)?;
    let svc = faq.service(&ctx).await?;
    let entries = svc.repo.list_recent(&ctx.guild, limit, offset).await.map_err(api_error)?;
    let (total, _) = svc.repo.count(&ctx.guild).await.map_err(api_error)?;
    Ok(Json(json!({"entries": entries.iter().map(entry_json).collect::<Vec<_>>(), "total": total})).into_response())
}

async fn one(faq: Faq, ctx: ApiGuild, Path(p): Path<HashMap<String, String>>) -> Result<Response, ApiError> {
    let id = entry_id(&p)?;
    let svc = faq.service(&ctx).await?;
    let entry =
        svc.repo.get(&ctx.guild, id).await.map_err(api_error)?.ok_or_else(|| api_error(FaqError::NotFound(id)))?;
    Ok(Json(entry_json(&entry)).into_response())
}

async fn create(
    faq: Faq,
    ctx: ApiGuild,
    body: Result<Json<EntryBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let input = input(body)?;
    let svc = faq.service(&ctx).await?;
    let entry = svc.add(&ctx.guild, &input, ctx.user_id).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(entry_json(&entry))).into_response())
}

async fn update(
    faq: Faq,
    ctx: ApiGuild,
    Path(p): Path<HashMap<String, String>>,
    body: Result<Json<EntryBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let id = entry_id(&p)?;
    let input = input(body)?;
    let svc = faq.service(&ctx).await?;
    let entry = svc.update(&ctx.guild, id, &input, ctx.user_id).await.map_err(api_error)?;
    Ok(Json(entry_json(&entry)).into_response())
}

async fn remove(faq: Faq, ctx: ApiGuild, Path(p): Path<HashMap<String, String>>) -> Result<Response, ApiError> {
    let id = entry_id(&p)?;
    let svc = faq.service(&ctx).await?;
    svc.remove(&ctx.guild, id, ctx.user_id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn search(faq: Faq, ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let query = QueryParams::new(&q).text("q", 500)?;
    let query = query.ok_or_else(|| ApiError::invalid("q", "q must say what to search for."))?;
    let svc = faq.service(&ctx).await?;
    let hits = svc.search(&ctx.guild, query, 10).await.map_err(api_error)?;
    let hits: Vec<Value> = hits.iter().map(|h| json!({"id": h.id, "question": h.question, "score": h.score})).collect();
    Ok(Json(json!({"hits": hits})).into_response())
}

async fn gaps(faq: Faq, ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let days = QueryParams::new(&q).number::<u32>("days", 1..=365, 30)?;
    let svc = faq.service(&ctx).await?;
    let since = now_ms() - i64::from(days) * 86_400_000;
    let gaps = svc.repo.gaps(&ctx.guild, since, 100).await.map_err(api_error)?;
    let gaps: Vec<Value> =
        gaps.iter().map(|g| json!({"term": g.term, "searches": g.searches, "last_at": g.last_at})).collect();
    Ok(Json(json!({"days": days, "gaps": gaps})).into_response())
}

async fn searches(faq: Faq, ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let days = QueryParams::new(&q).number::<u32>("days", 1..=365, 30)?;
    let limit = QueryParams::new(&q).number::<u32>("limit", 1..=500, 100)?;
    let svc = faq.service(&ctx).await?;
    let since = now_ms() - i64::from(days) * 86_400_000;
    let searches = svc.repo.searches(&ctx.guild, since, limit).await.map_err(api_error)?;
    let searches: Vec<Value> =
        searches.iter().map(|s| json!({"term": s.term, "hits": s.hits, "found": s.hits > 0, "at": s.at})).collect();
    Ok(Json(json!({"days": days, "searches": searches})).into_response())
}

async fn export(faq: Faq, ctx: ApiGuild) -> Result<Response, ApiError> {
    let svc = faq.service(&ctx).await?;
    let entries = svc.repo.all(&ctx.guild).await.map_err(api_error)?;
    let csv = crate::csvio::export_csv(&entries).map_err(api_error)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

async fn import(faq: Faq, ctx: ApiGuild, body: Bytes) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("body", "Send the CSV file as the request body."));
    }
    let svc = faq.service(&ctx).await?;
    let report = svc.import(&ctx.guild, &body, ctx.user_id).await.map_err(api_error)?;
    Ok(Json(json!({"added": report.added, "updated": report.updated})).into_response())
}
