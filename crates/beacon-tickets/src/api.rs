//! The desk's web API (mounted by `beacon-web` under `/api/v1/guilds/{guild_id}` behind the
//! login and access checks): the ticket list with filters, one ticket, its transcript link and
//! the stats. Staff of the guild's own dashboard see only this guild: every query goes through
//! [`Repo::new`] with the guild the web layer checked.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use beacon_framework::{Access, ApiError, ApiGuild, ApiRoute, QueryParams};
use serde_json::{Value, json};

use crate::model::{Repo, Status, Ticket};
use crate::transcript::{TranscriptStore, link_for};

/// The routes.
pub fn routes(storage: TranscriptStore) -> Vec<ApiRoute> {
    let a = Access::Authorized;
    vec![
        ApiRoute::new(Method::GET, "/tickets", "Tickets, newest first, with filters", a, axum::routing::get(list))
            .query(&[
                ("status", "open, claimed, waiting_for_user, escalated or closed"),
                ("opener", "Only tickets this user opened"),
                ("before", "Only tickets numbered below this (the next page)"),
                ("limit", "At most this many (1–100, default 50)"),
            ]),
        ApiRoute::new(
            Method::GET,
            "/tickets/stats",
            "Opened, closed, response and resolution times, rating",
            a,
            axum::routing::get(stats),
        )
        .query(&[("days", "The last this many days (1–365, default 30)"), ("member", "Only this staff member's work")]),
        ApiRoute::new(Method::GET, "/tickets/{number}", "One ticket", a, axum::routing::get(one)),
        ApiRoute::new(
            Method::GET,
            "/tickets/{number}/transcript",
            "A link to the ticket's transcript (signed, valid 7 days)",
            a,
            axum::routing::get(move |ctx: ApiGuild, path: Path<HashMap<String, String>>| {
                let storage = storage.clone();
                async move { transcript(ctx, path, storage).await }
            }),
        ),
    ]
}

fn id_str(id: Option<u64>) -> Value {
    id.map_or(Value::Null, |i| Value::String(i.to_string()))
}

fn ticket_json(t: &Ticket) -> Value {
    json!({
        "number": t.number,
        "opener_id": t.opener_id.to_string(),
        "channel_id": id_str(t.channel_id),
        "topic": t.topic,
        "status": t.status.as_str(),
        "claimed_by": id_str(t.claimed_by),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "first_response_at": t.first_response_at,
        "closed_at": t.closed_at,
        "closed_by": id_str(t.closed_by),
        "first_response_breached": t.first_response_breached,
        "resolution_breached": t.resolution_breached,
        "has_transcript": t.transcript_key.is_some(),
        "rating": t.rating,
        "feedback": t.feedback,
        "reopened_count": t.reopened_count,
        "panel_id": t.panel_id,
        "answers": t.answers.iter().map(|a| json!({"question": a.question, "answer": a.answer})).collect::<Vec<_>>(),
    })
}

fn number_param(params: &HashMap<String, String>) -> Result<i64, ApiError> {
    params
        .get("number")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid("number", "number must be a ticket number (1, 2, …)."))
}

async fn list(ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let q = QueryParams::new(&q);
    let status = q.parse_with("status", "open, claimed, waiting_for_user, escalated or closed", Status::parse)?;
    let opener: Option<u64> = q.get("opener", "a Discord user id")?;
    let before: Option<i64> = q.get("before", "a ticket number")?;
    let limit: i64 = q.number("limit", 1..=100, 50)?;
    let tickets = Repo::new(ctx.guild.clone()).list(status, opener, before, limit).await?;
    let next = (tickets.len() as i64 == limit).then(|| tickets.last().map(|t| t.number)).flatten();
    Ok(Json(json!({"tickets": tickets.iter().map(ticket_json).collect::<Vec<_>>(), "next_before": next}))
        .into_response())
}

async fn one(ctx: ApiGuild, Path(params): Path<HashMap<String, String>>) -> Result<Response, ApiError> {
    let number = number_param(&params)?;
    let ticket = Repo::new(ctx.guild.clone()).get(number).await?;
    let ticket = ticket.ok_or_else(|| ApiError::not_found(format!("There is no ticket #{number} in this server.")))?;
    Ok(Json(ticket_json(&ticket)).into_response())
}

async fn transcript(
    ctx: ApiGuild,
    Path(params): Path<HashMap<String, String>>,
    storage: TranscriptStore,
) -> Result<Response, ApiError> {
    let number = number_param(&params)?;
    let ticket = Repo::new(ctx.guild.clone()).get(number).await?;
    let ticket = ticket.ok_or_else(|| ApiError::not_found(format!("There is no ticket #{number} in this server.")))?;
    let key = ticket
        .transcript_key
        .ok_or_else(|| ApiError::not_found(format!("Ticket #{number} has no transcript (it was never closed).")))?;
    Ok(Json(json!({"number": number, "url": link_for(&ctx.app, &storage, &key)})).into_response())
}

async fn stats(ctx: ApiGuild, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let q = QueryParams::new(&q);
    let days: i64 = q.number("days", 1..=365, 30)?;
    let member: Option<u64> = q.get("member", "a Discord user id")?;
    let since = beacon_store::now_ms() - days * 86_400_000;
    let s = Repo::new(ctx.guild.clone()).stats(member, since).await?;
    Ok(Json(json!({
        "days": days,
        "opened": s.opened,
        "closed": s.closed,
        "claims": s.claims,
        "responded": s.responded,
        "avg_first_response_ms": s.avg_first_response_ms,
        "resolved": s.resolved,
        "avg_resolution_ms": s.avg_resolution_ms,
        "avg_rating": s.avg_rating,
    }))
    .into_response())
}

/// The dashboard's Tickets pages: a filterable list with the staff figures, and one ticket
/// with a link to its transcript.
pub fn pages() -> Vec<beacon_framework::pages::PageSpec> {
    use beacon_framework::pages::{Field, Filter, Format, PageSpec, RowLink, Section};
    let ticket_fields = vec![
        Field::text("Number", "number"),
        Field::text("Status", "status"),
        Field::text("Topic", "topic"),
        Field::text("Opened by", "opener_id"),
        Field::text("Claimed by", "claimed_by"),
        Field::new("Opened", "created_at", Format::Time),
        Field::new("First response", "first_response_at", Format::Time),
        Field::new("Closed", "closed_at", Format::Time),
        Field::text("Closed by", "closed_by"),
        Field::text("Rating", "rating"),
    ];
    vec![
        PageSpec {
            slug: "tickets",
            title: "Tickets",
            intro: "Every ticket of this server, newest first, and how the staff did over the last 30 days.",
            sections: vec![
                Section::Record {
                    title: "Staff figures (30 days)",
                    api: "/tickets/stats",
                    fields: vec![
                        Field::text("Opened", "opened"),
                        Field::text("Closed", "closed"),
                        Field::text("Claims", "claims"),
                        Field::new("Average first response", "avg_first_response_ms", Format::Millis),
                        Field::new("Average resolution", "avg_resolution_ms", Format::Millis),
                        Field::text("Average rating", "avg_rating"),
                    ],
                },
                Section::Table {
                    title: "Tickets",
                    api: "/tickets",
                    list: "tickets",
                    columns: vec![
                        Field::text("#", "number"),
                        Field::text("Status", "status"),
                        Field::text("Topic", "topic"),
                        Field::new("Opened", "created_at", Format::Time),
                    ],
                    filters: vec![
                        Filter {
                            param: "status",
                            label: "Status",
                            choices: &["open", "claimed", "waiting_for_user", "escalated", "closed"],
                        },
                        Filter { param: "opener", label: "Opened by (user id)", choices: &[] },
                    ],
                    link: Some(RowLink { label: "Open", page: "tickets/{number}" }),
                    action: None,
                    empty: "No ticket matches.",
                },
            ],
        },
        PageSpec {
            slug: "tickets/{number}",
            title: "Ticket",
            intro: "The ticket's timeline; its transcript is kept once it is closed.",
            sections: vec![
                Section::Record { title: "Timeline", api: "/tickets/{number}", fields: ticket_fields },
                Section::Action {
                    label: "Open the transcript",
                    api: "/tickets/{number}/transcript",
                    follow_url: true,
                    help: "The transcript page, behind a signed link valid for 7 days.",
                },
            ],
        },
    ]
}
