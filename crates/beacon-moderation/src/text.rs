//! What people read: the case embed (mod log, `/case view`), the DM, times.

use twilight_model::channel::message::Embed;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};

use crate::duration;
use crate::model::{Case, CaseEvent, CaseKind, DmStatus, Source};

/// `2024-05-01 13:45 UTC` for unix ms.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `2024-05-01T13:45:00Z` for unix ms (exports).
pub fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Discord's relative time markup (`<t:…:R>`), shown in each reader's own time zone.
fn discord_time(ms: i64) -> String {
    format!("<t:{}:f>", ms.div_euclid(1000))
}

/// What happened, in the past tense: `banned`, `timed out`, …
pub fn verb(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::Warn => "warned",
        CaseKind::Timeout => "timed out",
        CaseKind::Untimeout => "released from timeout",
        CaseKind::Kick => "kicked",
        CaseKind::Ban => "banned",
        CaseKind::Unban => "unbanned",
        CaseKind::Note => "noted",
    }
}

/// How the DM went, for people.
pub fn dm_line(case: &Case) -> String {
    match (case.dm_status, case.dm_detail.as_deref()) {
        (DmStatus::Sent, _) => "sent".into(),
        (DmStatus::Pending, _) => "not sent yet".into(),
        (DmStatus::Failed, Some(d)) => format!("failed: {d}"),
        (DmStatus::Failed, None) => "failed".into(),
        (DmStatus::NotSent, Some(d)) => format!("not sent: {d}"),
        (DmStatus::NotSent, None) => "not sent".into(),
    }
}

fn source_line(source: Source) -> &'static str {
    match source {
        Source::Command => "Beacon command",
        Source::Discord => "Discord (audit log)",
        Source::Escalation => "automatic escalation",
        Source::Appeal => "accepted appeal",
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max - 1).collect::<String>() + "…" }
}

/// The case as the mod log and `/case view` show it, with its history.
pub fn embed(case: &Case, events: &[CaseEvent]) -> Embed {
    let mut b = EmbedBuilder::new()
        .title(format!("Case {} · {}", case.label(), case.kind.title()))
        .color(case.kind.color())
        .field(EmbedFieldBuilder::new("Member", format!("<@{0}> ({0})", case.target_id)).inline())
        .field(EmbedFieldBuilder::new("Moderator", format!("<@{}>", case.moderator_id)).inline())
        .field(EmbedFieldBuilder::new("Reason", cut(&case.reason, 1024)));
    if let Some(d) = case.duration_ms {
        b = b.field(EmbedFieldBuilder::new("Duration", duration::format_ms(d)).inline());
    }
    match (case.ends_at, case.ended_at) {
        (_, Some(ended)) => {
            let note = case.end_note.as_deref().unwrap_or("ended");
            b = b.field(EmbedFieldBuilder::new("Ended", format!("{} — {note}", discord_time(ended))).inline());
        }
        (Some(ends), None) if case.failed.is_none() => {
            b = b.field(EmbedFieldBuilder::new("Ends", discord_time(ends)).inline());
        }
        _ => {}
    }
    if case.kind != CaseKind::Note {
        b = b.field(EmbedFieldBuilder::new("DM", cut(&dm_line(case), 1024)).inline());
    }
    if let Some(failed) = &case.failed {
        b = b.field(EmbedFieldBuilder::new("Not carried out", cut(failed, 1024)));
    }
    if let Some(related) = case.related_case {
        b = b.field(EmbedFieldBuilder::new("Related", format!("case #{related}")).inline());
    }
    let history: Vec<String> = events
        .iter()
        .filter(|e| e.kind != "created" && e.kind != "dm")
        .map(|e| format!("{} · {}: {}", time(e.at), e.kind, cut(&e.detail, 120)))
        .collect();
    if !history.is_empty() {
        let mut lines = history.clone();
        // The latest lines matter most; keep within a field's 1,024 characters.
        while lines.join("\n").chars().count() > 1000 && lines.len() > 1 {
            lines.remove(0);
        }
        b = b.field(EmbedFieldBuilder::new("History", cut(&lines.join("\n"), 1024)));
    }
    b = b.footer(EmbedFooterBuilder::new(format!("{} · {}", source_line(case.source), time(case.created_at))));
    b.build()
}

/// The DM a member gets.
pub fn dm(case: &Case, guild_name: &str) -> String {
    let place = if guild_name.is_empty() { "the server".to_owned() } else { format!("**{}**", cut(guild_name, 100)) };
    let how_long = case.duration_ms.map(|d| format!(" for {}", duration::format_ms(d))).unwrap_or_default();
    let what = match case.kind {
        CaseKind::Warn => format!("You were warned in {place}."),
        CaseKind::Untimeout => format!("Your timeout in {place} was lifted."),
        kind => format!("You were {} from {place}{how_long}.", verb(kind)).replace("timed out from", "timed out in"),
    };
    cut(&format!("{what}\nReason: {}\n-# Case {}", case.reason, case.label()), 2000)
}

/// One line of a list: `#12 · Ban · @bob · spam (7d)`.
pub fn list_line(case: &Case) -> String {
    let how_long = case.duration_ms.map(|d| format!(" ({})", duration::format_ms(d))).unwrap_or_default();
    let failed = if case.failed.is_some() { " ⚠ not carried out" } else { "" };
    format!(
        "`{}` {} · <@{}> · {}{how_long}{failed} · {}",
        case.label(),
        case.kind.title(),
        case.target_id,
        cut(&case.reason, 80),
        time(case.created_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewCase;

    fn case(kind: CaseKind, duration_ms: Option<i64>) -> Case {
        let n = NewCase::new(kind, 5, 6, "spam");
        Case {
            guild_id: 1,
            number: 12,
            kind: n.kind,
            target_id: 5,
            moderator_id: 6,
            reason: n.reason.into(),
            duration_ms,
            ends_at: duration_ms,
            ended_at: None,
            end_note: None,
            source: Source::Command,
            dm_status: DmStatus::Pending,
            dm_detail: None,
            failed: None,
            audit_entry_id: None,
            related_case: None,
            log_channel_id: None,
            log_message_id: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn dms_say_what_where_and_why() {
        assert_eq!(
            dm(&case(CaseKind::Ban, Some(604_800_000)), "Hub"),
            "You were banned from **Hub** for 7d.\nReason: spam\n-# Case #12"
        );
        assert!(
            dm(&case(CaseKind::Timeout, Some(3_600_000)), "Hub").starts_with("You were timed out in **Hub** for 1h.")
        );
        assert!(dm(&case(CaseKind::Warn, None), "").starts_with("You were warned in the server."));
    }

    #[test]
    fn embeds_name_the_case() {
        let e = embed(&case(CaseKind::Kick, None), &[]);
        assert_eq!(e.title.as_deref(), Some("Case #12 · Kick"));
        assert!(e.fields.iter().any(|f| f.name == "Reason" && f.value == "spam"));
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }
}
