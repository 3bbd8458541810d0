//! What the ticket desk holds about members (the privacy contract, see
//! `beacon_framework::privacy`): ticket rows, their events, blocks — and transcripts, files that
//! hold every participant's messages.

use beacon_framework::HandlerError;
use beacon_framework::privacy::{ErasureLine, ExportPart, PersonalData};
use beacon_store::GuildStore;
use serde_json::Value;

use crate::transcript::TranscriptStore;

/// Finds the transcripts of the tickets the member opened.
const OPENED_TRANSCRIPTS: &str = "SELECT number, transcript_key FROM tickets \
     WHERE guild_id = $1 AND opener_id = $2 AND transcript_key IS NOT NULL ORDER BY number";

/// Every ticket table.
pub(crate) fn personal_data() -> Vec<PersonalData> {
    vec![
        // Before `tickets`: its erasure clears the opener these statements look for.
        PersonalData::member(
            "ticket_knowledge",
            "the redacted question and staff answer kept as knowledge from a resolved ticket the member opened \
             or resolved",
            "SELECT number, question, answer, created_at FROM ticket_knowledge WHERE guild_id = $1 \
             AND (resolved_by = $2 OR number IN (SELECT number FROM tickets WHERE guild_id = $1 AND opener_id = $2)) \
             ORDER BY number",
        )
        .erase(&[
            "DELETE FROM ticket_knowledge WHERE guild_id = $1 \
             AND number IN (SELECT number FROM tickets WHERE guild_id = $1 AND opener_id = $2)",
            "UPDATE ticket_knowledge SET resolved_by = 0 WHERE guild_id = $1 AND resolved_by = $2",
        ])
        .keeps("staff's answer to another member's ticket stays as knowledge, without who resolved it"),
        PersonalData::member(
            "tickets",
            "tickets the member opened (topic, form answers, status, rating and feedback)",
            "SELECT number, topic, answers, status, created_at, closed_at, rating, feedback, reopened_count \
             FROM tickets WHERE guild_id = $1 AND opener_id = $2 ORDER BY number",
        )
        .erase(&[
            "UPDATE tickets SET topic = '', answers = NULL, feedback = NULL, transcript_key = NULL, opener_id = 0 \
             WHERE guild_id = $1 AND opener_id = $2",
            "UPDATE tickets SET claimed_by = 0 WHERE guild_id = $1 AND claimed_by = $2",
            "UPDATE tickets SET closed_by = 0 WHERE guild_id = $1 AND closed_by = $2",
            "UPDATE tickets SET first_responder_id = 0 WHERE guild_id = $1 AND first_responder_id = $2",
            "UPDATE tickets SET updated_by = 0 WHERE guild_id = $1 AND updated_by = $2",
        ])
        .keeps(
            "a ticket keeps its number, status, times and rating for the server's SLA and satisfaction figures; \
             its topic, answers, feedback and the member's id are erased",
        ),
        PersonalData::member(
            "ticket_events",
            "status changes the member made",
            "SELECT number, kind, from_status, to_status, at FROM ticket_events \
             WHERE guild_id = $1 AND actor_id = $2 ORDER BY id",
        )
        .erase(&["UPDATE ticket_events SET actor_id = 0 WHERE guild_id = $1 AND actor_id = $2"])
        .keeps("status changes stay for the SLA figures, without who made them"),
        PersonalData::member(
            "ticket_blocks",
            "a block from opening tickets, on the member or set by them",
            "SELECT user_id, blocked_by, reason, at FROM ticket_blocks \
             WHERE guild_id = $1 AND (user_id = $2 OR blocked_by = $2)",
        )
        .erase(&["UPDATE ticket_blocks SET blocked_by = 0 WHERE guild_id = $1 AND blocked_by = $2"])
        .keeps("a block on the member stays while it is in force (staff lift it with /ticket unblock)"),
        PersonalData::nothing("ticket_panels", "panels are the server's configuration and name no member"),
    ]
}

/// The transcripts of the tickets the member opened: named, not included.
pub(crate) async fn export_transcripts(guild: &GuildStore, user_id: u64) -> Result<Option<ExportPart>, HandlerError> {
    let rows = guild.member_rows(OPENED_TRANSCRIPTS, user_id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut part = ExportPart::new("transcripts", "transcripts of tickets the member opened (by ticket number)", rows);
    part.withheld = Some(
        "a transcript holds every participant's messages, staff's and other members' included, so the file is \
         not part of the export; the member's own ticket is listed above"
            .to_owned(),
    );
    Ok(Some(part))
}

/// Deletes the transcripts of the tickets the member opened (before their rows forget the keys).
pub(crate) async fn erase_transcripts(
    storage: &TranscriptStore,
    guild: &GuildStore,
    user_id: u64,
) -> Result<ErasureLine, HandlerError> {
    let rows = guild.member_rows(OPENED_TRANSCRIPTS, user_id).await?;
    let mut removed = 0;
    for key in rows.iter().filter_map(|r| r.get("transcript_key").and_then(Value::as_str)) {
        storage.delete(key).await.map_err(HandlerError::internal)?;
        removed += 1;
    }
    Ok(ErasureLine::new(
        "transcripts",
        removed,
        Some("transcripts of other members' tickets the member wrote in stay with those tickets".to_owned()),
    ))
}

/// Transcripts (the stored HTML of closed tickets) expire per server, counted from the close.
pub(crate) const TRANSCRIPTS: beacon_framework::retention::Retention = beacon_framework::retention::Retention {
    kind: "ticket transcripts",
    setting: crate::keys::TRANSCRIPT_RETENTION,
    default: std::time::Duration::from_secs(365 * 86_400),
    max: std::time::Duration::from_secs(3650 * 86_400),
    // The files go first (`TicketsModule::expire`), then each ticket forgets its key.
    expire: &[],
};
