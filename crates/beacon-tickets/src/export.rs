//! CSV exports (`/export tickets`).

use crate::model::{Panel, Ticket};
use crate::text::{csv_line, iso};

/// Column names of the tickets export, in order.
pub const TICKET_COLUMNS: [&str; 16] = [
    "number",
    "status",
    "topic",
    "opener_id",
    "claimed_by",
    "opened_at",
    "first_response_at",
    "closed_at",
    "first_response_seconds",
    "resolution_seconds",
    "reopened",
    "rating",
    "feedback",
    "transcript",
    "panel_id",
    "answers",
];

/// Column names of the ticket panels export, in order.
pub const PANEL_COLUMNS: [&str; 8] =
    ["id", "name", "title", "description", "channel_id", "category_id", "staff_role_id", "questions"];

/// The panels as CSV (questions separated by ` | `, as `/ticket panel create` takes them).
pub fn panels_csv(panels: &[Panel]) -> String {
    let mut out = csv_line(PANEL_COLUMNS);
    let id = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    for p in panels {
        out.push_str(&csv_line([
            p.id.to_string(),
            p.name.clone(),
            p.title.clone(),
            p.description.clone(),
            id(p.channel_id),
            id(p.category_id),
            id(p.staff_role_id),
            p.questions.join(" | "),
        ]));
    }
    out
}

/// The tickets as CSV (RFC 4180, header first, UTC ISO-8601 times).
pub fn tickets_csv(tickets: &[Ticket]) -> String {
    let mut out = csv_line(TICKET_COLUMNS);
    let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    for t in tickets {
        out.push_str(&csv_line([
            t.number.to_string(),
            t.status.as_str().to_owned(),
            t.topic.clone(),
            t.opener_id.to_string(),
            t.claimed_by.map(|c| c.to_string()).unwrap_or_default(),
            iso(t.created_at),
            t.first_response_at.map(iso).unwrap_or_default(),
            t.closed_at.map(iso).unwrap_or_default(),
            opt(t.first_response_at.map(|f| (f - t.created_at) / 1000)),
            opt(t.closed_at.map(|c| (c - t.created_at) / 1000)),
            t.reopened_count.to_string(),
            opt(t.rating),
            t.feedback.clone().unwrap_or_default(),
            t.transcript_key.clone().unwrap_or_default(),
            opt(t.panel_id),
            t.answers.iter().map(|a| format!("{}: {}", a.question, a.answer)).collect::<Vec<_>>().join("\n"),
        ]));
    }
    out
}
