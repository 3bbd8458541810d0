//! The moderation cases in the web API (mounted by `beacon-web` under
//! `/api/v1/guilds/{guild_id}` behind the login and access checks): the list with filters and
//! one case with its append-only history. Read-only: actions are taken in Discord, where the
//! permissions and the role hierarchy are checked.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute};
use serde_json::{Value, json};

use crate::model::{Case, CaseKind, Filter, Repo};

/// The routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/cases",
            "Moderation cases, newest first",
            Access::Authorized,
            axum::routing::get(list),
        )
        .query(&[
            ("target", "Only this member's cases"),
            ("kind", "warn, timeout, untimeout, kick, ban, unban or note"),
            ("limit", "At most this many (1–100, default 50)"),
        ]),
        ApiRoute::new(
            Method::GET,
            "/cases/{number}",
            "One case with its history",
            Access::Authorized,
            axum::routing::get(one),
        ),
    ]
}

/// The dashboard's Moderation pages: the cases, filtered by kind or member, and one case with
/// its history.
pub fn pages() -> Vec<beacon_framework::pages::PageSpec> {
    use beacon_framework::pages::{Field, Filter, Format, PageSpec, RowLink, Section};
    vec![
        PageSpec {
            slug: "cases",
            title: "Moderation",
            intro: "Every moderation case of this server, newest first.",
            sections: vec![Section::Table {
                title: "Cases",
                api: "/cases",
                list: "cases",
                columns: vec![
                    Field::text("#", "number"),
                    Field::text("Kind", "kind"),
                    Field::text("Member", "target_name|target_id"),
                    Field::text("Moderator", "moderator_name|moderator_id"),
                    Field::text("Reason", "reason"),
                    Field::new("When", "created_at", Format::Time),
                ],
                filters: vec![
                    Filter {
                        param: "kind",
                        label: "Kind",
                        choices: &["warn", "timeout", "untimeout", "kick", "ban", "unban", "note"],
                    },
                    Filter { param: "target", label: "Member (user id)", choices: &[] },
                ],
                link: Some(RowLink { label: "Open case", page: "cases/{number}" }),
                action: None,
                empty: "No case matches.",
            }],
        },
        PageSpec {
            slug: "cases/{number}",
            title: "Case",
            intro: "One case and everything that happened to it.",
            sections: vec![
                Section::Record {
                    title: "Case",
                    api: "/cases/{number}",
                    fields: vec![
                        Field::text("Kind", "kind"),
                        Field::text("Member", "target_name|target_id"),
                        Field::text("Moderator", "moderator_name|moderator_id"),
                        Field::text("Reason", "reason"),
                        Field::new("Duration", "duration_ms", Format::Millis),
                        Field::new("Ends", "ends_at", Format::Time),
                        Field::new("Ended", "ended_at", Format::Time),
                        Field::text("Source", "source"),
                        Field::text("Member told by DM", "dm_status"),
                        Field::new("Created", "created_at", Format::Time),
                    ],
                },
                Section::Table {
                    title: "History",
                    api: "/cases/{number}",
                    list: "history",
                    columns: vec![
                        Field::new("When", "at", Format::Time),
                        Field::text("What", "kind"),
                        Field::text("By", "actor_name|actor_id"),
                        Field::text("Detail", "detail"),
                    ],
                    filters: vec![],
                    link: None,
                    action: None,
                    empty: "Nothing happened to this case since.",
                },
            ],
        },
    ]
}

fn opt(id: Option<u64>) -> Value {
    id.map_or(Value::Null, |i| Value::String(i.to_string()))
}

/// A case; `names`: members' names as the server shows them (a missing one is null, and a
/// page shows the id instead).
fn case_json(c: &Case, names: &BTreeMap<u64, String>) -> Value {
    json!({
        "number": c.number,
        "kind": c.kind.as_str(),
        "target_id": c.target_id.to_string(),
        "target_name": names.get(&c.target_id),
        "moderator_id": c.moderator_id.to_string(),
        "moderator_name": names.get(&c.moderator_id),
        "reason": c.reason,
        "duration_ms": c.duration_ms,
        "ends_at": c.ends_at,
        "ended_at": c.ended_at,
        "end_note": c.end_note,
        "source": c.source.as_str(),
        "dm_status": c.dm_status.as_str(),
        "failed": c.failed,
        "related_case": c.related_case,
        "log_channel_id": opt(c.log_channel_id),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

async fn list(ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let q = beacon_framework::QueryParams::new(&q);
    let target_id: Option<u64> = q.get("target", "a Discord user id")?;
    let kind = q.parse_with("kind", "warn, timeout, untimeout, kick, ban, unban or note", CaseKind::parse)?;
    let limit: i64 = q.number("limit", 1..=100, 50)?;
    let cases = Repo::new(ctx.guild.clone()).list(Filter { target_id, kind }, limit).await?;
    let names = ctx.member_names(cases.iter().flat_map(|c| [c.target_id, c.moderator_id])).await;
    Ok(Json(json!({"cases": cases.iter().map(|c| case_json(c, &names)).collect::<Vec<_>>()})).into_response())
}

async fn one(ctx: ApiGuild, Path(params): Path<HashMap<String, String>>) -> Result<Response, ApiError> {
    let number = params
        .get("number")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid("number", "number must be a case number (1, 2, …)."))?;
    let repo = Repo::new(ctx.guild.clone());
    let case = repo
        .get(number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("There is no case #{number} in this server.")))?;
    let events = repo.events(number).await?;
    let names = ctx
        .member_names([case.target_id, case.moderator_id].into_iter().chain(events.iter().map(|e| e.actor_id)))
        .await;
    let history: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "actor_id": e.actor_id.to_string(),
                "actor_name": names.get(&e.actor_id),
                "kind": e.kind,
                "detail": e.detail,
                "at": e.at,
            })
        })
        .collect();
    let mut out = case_json(&case, &names);
    out["history"] = Value::Array(history);
    Ok(Json(out).into_response())
}
