//! What support answers hold about members (the privacy contract, see
//! `beacon_framework::privacy`): answer rows and threads, the audit log's lines, and the
//! conversation memory kept in the cache.

use std::path::Path;

use beacon_cache::CacheKey;
use beacon_framework::privacy::{ErasureLine, ExportPart, PersonalData};
use beacon_framework::retention::Retention;
use beacon_framework::{App, HandlerError};
use beacon_store::GuildStore;
use serde_json::Value;

use crate::conversation::Turn;

/// The places (channels, threads) and answers of the member's questions: where their
/// conversation memory and hand-off notes are kept.
const PLACES: &str = "SELECT channel_id AS place FROM support_answers WHERE guild_id = $1 AND user_id = $2 \
     UNION SELECT thread_id AS place FROM support_threads WHERE guild_id = $1 AND user_id = $2";
const ANSWERS: &str = "SELECT id FROM support_answers WHERE guild_id = $1 AND user_id = $2";

/// Every support table.
pub(crate) fn personal_data() -> Vec<PersonalData> {
    vec![
        // Before `support_answers`: its erasure clears the member id these statements look for.
        PersonalData::member(
            "support_gaps",
            "the member's questions Beacon abstained on or that got a thumbs-down, redacted, for the gaps report",
            "SELECT kind, question, created_at FROM support_gaps WHERE guild_id = $1 \
             AND answer_id IN (SELECT id FROM support_answers WHERE guild_id = $1 AND user_id = $2) ORDER BY id",
        )
        .erase(&["DELETE FROM support_gaps WHERE guild_id = $1 \
                  AND answer_id IN (SELECT id FROM support_answers WHERE guild_id = $1 AND user_id = $2)"]),
        PersonalData::member(
            "support_answers",
            "the member's questions and Beacon's answers (the text only where the server keeps answer content), \
             and feedback the member gave",
            "SELECT id, channel_id, user_id, trigger_kind, outcome, mode, question, answer, gap_question, feedback, \
             feedback_by, created_at FROM support_answers WHERE guild_id = $1 AND (user_id = $2 OR feedback_by = $2) \
             ORDER BY id",
        )
        .erase(&[
            "UPDATE support_answers SET question = NULL, answer = NULL, gap_question = NULL, user_id = 0 \
             WHERE guild_id = $1 AND user_id = $2",
            "UPDATE support_answers SET feedback_by = NULL WHERE guild_id = $1 AND feedback_by = $2",
        ])
        .keeps(
            "each answer keeps its outcome, lengths, sources and feedback score for the server's quality figures; \
             the question, the answer's text and the member's id are erased",
        ),
        PersonalData::member(
            "support_threads",
            "threads Beacon opened for the member's questions",
            "SELECT thread_id, created_at FROM support_threads WHERE guild_id = $1 AND user_id = $2",
        )
        .erase(&["DELETE FROM support_threads WHERE guild_id = $1 AND user_id = $2"]),
    ]
}

/// The setting of the answer-content retention (the rule that also reaches the audit log).
pub(crate) const CONTENT_RETENTION: &str = "support.content_retention";

/// The text of questions and answers (kept only where the server opted in) expires per server.
pub(crate) fn retention() -> Vec<Retention> {
    const DAY: u64 = 86_400;
    vec![
        Retention {
            kind: "gaps (the questions Beacon abstained on or that got 👎, PII-redacted, for /support-stats)",
            setting: crate::module::keys::GAPS_RETENTION,
            default: std::time::Duration::from_secs(30 * DAY),
            max: std::time::Duration::from_secs(365 * DAY),
            expire: &[
                "DELETE FROM support_gaps WHERE guild_id = $1 AND created_at < $2",
                "UPDATE support_answers SET gap_question = NULL \
                 WHERE guild_id = $1 AND created_at < $2 AND gap_question IS NOT NULL",
            ],
        },
        Retention {
            kind: "answer content (questions and answers' text)",
            setting: CONTENT_RETENTION,
            default: std::time::Duration::from_secs(90 * DAY),
            max: std::time::Duration::from_secs(730 * DAY),
            expire: &["UPDATE support_answers SET question = NULL, answer = NULL \
                   WHERE guild_id = $1 AND created_at < $2 AND (question IS NOT NULL OR answer IS NOT NULL)"],
        },
    ]
}

fn ids(rows: &[Value], column: &str) -> Vec<i64> {
    rows.iter().filter_map(|r| r.get(column).and_then(Value::as_i64)).collect()
}

fn memory_key(guild_id: u64, place: i64, user_id: u64) -> CacheKey {
    CacheKey::guild(guild_id, "support", &format!("conversation:{place}:{user_id}"))
}

/// The conversation memory (the last exchanges, kept for an hour) and the audit log's lines.
pub(crate) async fn export_extra(
    app: &App,
    guild: &GuildStore,
    user_id: u64,
    audit_file: &Path,
) -> Result<Vec<ExportPart>, HandlerError> {
    let mut parts = Vec::new();
    let mut memory = Vec::new();
    for place in ids(&guild.member_rows(PLACES, user_id).await?, "place") {
        if let Some(bytes) = app.cache.get(&memory_key(guild.id(), place, user_id)).await? {
            let turns: Vec<Turn> = serde_json::from_slice(&bytes).unwrap_or_default();
            memory.push(serde_json::json!({ "channel_id": place.to_string(), "turns": turns }));
        }
    }
    if !memory.is_empty() {
        parts.push(ExportPart::new(
            "conversation_memory",
            "the last exchanges Beacon remembers of the member's conversation (kept for an hour)",
            memory,
        ));
    }
    let lines = audit_lines(audit_file, user_id).await?.0;
    if !lines.is_empty() {
        parts.push(ExportPart::new("audit_log", "the support audit log's lines about the member's questions", lines));
    }
    Ok(parts)
}

/// Forgets the conversation memory and hand-off notes, and removes the member's audit lines
/// (call with the audit log's lock held, before the rows are anonymised).
pub(crate) async fn erase_extra(
    app: &App,
    guild: &GuildStore,
    user_id: u64,
    audit_file: &Path,
) -> Result<Vec<ErasureLine>, HandlerError> {
    let places = ids(&guild.member_rows(PLACES, user_id).await?, "place");
    for place in &places {
        app.cache.delete(&memory_key(guild.id(), *place, user_id)).await?;
    }
    let answers = ids(&guild.member_rows(ANSWERS, user_id).await?, "id");
    for answer in &answers {
        app.cache.delete(&CacheKey::guild(guild.id(), "support", &format!("handoff:{answer}"))).await?;
    }
    let (removed, kept) = audit_lines(audit_file, user_id).await?;
    if !removed.is_empty() {
        let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
        tokio::fs::write(audit_file, body)
            .await
            .map_err(|e| HandlerError::internal(format!("rewriting {}: {e}", audit_file.display())))?;
    }
    Ok(vec![
        ErasureLine::new("conversation_memory", places.len() as u64, None),
        ErasureLine::new("audit_log", removed.len() as u64, None),
    ])
}

/// Blanks the question and answer of the audit log's lines written before `cutoff_ms` (call
/// with the audit log's lock held); returns how many lines lost content.
pub(crate) async fn expire_audit_content(file: &Path, cutoff_ms: i64) -> Result<u64, HandlerError> {
    let text = match tokio::fs::read_to_string(file).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(HandlerError::internal(format!("reading {}: {e}", file.display()))),
    };
    let mut changed = 0;
    let mut body = String::with_capacity(text.len());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(mut v)
                if v.get("at").and_then(Value::as_i64).is_some_and(|at| at < cutoff_ms)
                    && ["question", "answer"].iter().any(|k| v.get(*k).is_some_and(|c| !c.is_null())) =>
            {
                v["question"] = Value::Null;
                v["answer"] = Value::Null;
                changed += 1;
                body.push_str(&v.to_string());
            }
            _ => body.push_str(line),
        }
        body.push('\n');
    }
    if changed > 0 {
        tokio::fs::write(file, body)
            .await
            .map_err(|e| HandlerError::internal(format!("rewriting {}: {e}", file.display())))?;
    }
    Ok(changed)
}

/// The audit log's lines about `user_id` (parsed) and every other line (as written).
async fn audit_lines(file: &Path, user_id: u64) -> Result<(Vec<Value>, Vec<String>), HandlerError> {
    let text = match tokio::fs::read_to_string(file).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(HandlerError::internal(format!("reading {}: {e}", file.display()))),
    };
    let member = user_id.to_string();
    let (mut mine, mut others) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("user_id").and_then(Value::as_str) == Some(member.as_str()) => mine.push(v),
            _ => others.push(line.to_owned()),
        }
    }
    Ok((mine, others))
}
