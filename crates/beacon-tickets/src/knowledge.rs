//! Resolved tickets as a knowledge-base source (opt-in per guild, `tickets.learn_from_resolved`):
//! when staff close a ticket as resolved, its question and staff's answers become one document
//! the support answers draw on, so the next member with the same question gets the answer staff
//! gave. The module provides the source as a port (`dyn beacon_kb::GuildSource`), without
//! knowing which feature reads it.
//!
//! What is kept is PII-redacted (`beacon-pii`) and has mentions removed; each document is keyed
//! `ticket:{number}`, titled with the question and attributed to the ticket in its heading.
//! `/ticket forget`, the "Remove from knowledge base" button, a reopen and turning the setting
//! off remove it; the guild's purge removes the table's rows with everything else.

use beacon_kb::source::{BoxFuture, SourceDocument};
use beacon_kb::{GuildSource, KbError};
use beacon_store::GuildStore;
use tokio::sync::broadcast;

use crate::model::{Knowledge, Repo, Ticket};
use crate::transcript::Line;

/// The source id ticket documents are stored under (a `/kb` source may not take it).
pub const TICKET_SOURCE_ID: &str = "tickets";

/// Longest question kept, in characters.
const MAX_QUESTION: usize = 300;
/// Longest answer kept, in characters.
const MAX_ANSWER: usize = 4000;
/// The footer Beacon puts under a suggested reply staff chose to send (see `send_draft`).
const SENT_DRAFT: &str = "with Beacon's suggestion";

/// Capacity of the change channel (a lagging follower re-syncs every guild it has seen).
const CHANGE_CAPACITY: usize = 1024;

/// Announces the guilds whose ticket knowledge changed. Cheap to clone; clones announce to
/// the same listeners.
#[derive(Clone, Debug)]
pub struct Learned {
    guilds: broadcast::Sender<u64>,
}

impl Default for Learned {
    fn default() -> Self {
        Learned { guilds: broadcast::channel(CHANGE_CAPACITY).0 }
    }
}

impl Learned {
    /// Says `guild_id`'s ticket knowledge changed (nobody listening is fine).
    pub fn announce(&self, guild_id: u64) {
        let _ = self.guilds.send(guild_id);
    }
}

/// Every guild's resolved tickets kept as knowledge.
pub struct TicketSource {
    learned: Learned,
}

impl TicketSource {
    /// The source following the changes announced on `learned`.
    pub fn new(learned: Learned) -> TicketSource {
        TicketSource { learned }
    }
}

impl GuildSource for TicketSource {
    fn id(&self) -> &'static str {
        TICKET_SOURCE_ID
    }

    fn documents(&self, guild: GuildStore) -> BoxFuture<'_, beacon_kb::Result<Vec<SourceDocument>>> {
        Box::pin(async move {
            let kept = Repo::new(guild)
                .knowledge()
                .await
                .map_err(|e| KbError::Feed { source_name: TICKET_SOURCE_ID.to_owned(), source: Box::new(e) })?;
            Ok(kept.iter().map(document).collect())
        })
    }

    fn changes(&self) -> broadcast::Receiver<u64> {
        self.learned.guilds.subscribe()
    }
}

/// One resolved ticket as a document: the question as title and heading, staff's answer under a
/// heading naming the ticket (so an answer quoting it names the ticket as its source).
pub fn document(k: &Knowledge) -> SourceDocument {
    let text = format!("# {}\n\n## Staff answer in ticket #{:04}\n\n{}\n", k.question, k.number, k.answer);
    SourceDocument { key: format!("ticket:{}", k.number), title: k.question.clone(), text, url: None }
}

/// What ticket `t` teaches, from its messages: its topic as the question, and what staff wrote
/// (everyone but the member who opened it and bots — except replies staff sent from Beacon's
/// suggestion) as the answer; PII-redacted, mentions removed. `None` when staff wrote nothing.
pub fn compose(t: &Ticket, lines: &[Line]) -> Option<Knowledge> {
    let question = clip(&clean(&t.topic), MAX_QUESTION);
    let answers: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            if l.author_id == t.opener_id {
                None
            } else if l.bot {
                sent_draft(&l.content)
            } else {
                Some(l.content.as_str())
            }
        })
        .map(clean)
        .filter(|a| !a.is_empty())
        .collect();
    let answer = clip(&answers.join("\n\n"), MAX_ANSWER);
    (!question.is_empty() && !answer.is_empty()).then_some(Knowledge { number: t.number, question, answer })
}

/// A reply staff sent from Beacon's suggestion, without its footer.
fn sent_draft(content: &str) -> Option<&str> {
    let (body, footer) = content.trim_end().rsplit_once('\n')?;
    (footer.starts_with("-# Sent by") && footer.ends_with(SENT_DRAFT)).then_some(body)
}

/// PII-redacted, mentions removed, whitespace tidied.
fn clean(text: &str) -> String {
    let redacted = beacon_pii::redact(&strip_mentions(text));
    redacted
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// Removes user, role and channel mentions (`<@1>`, `<@!1>`, `<@&1>`, `<#1>`): who helped whom
/// is not knowledge, and a quoted mention must not ping anyone.
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let body = tail[1..].trim_start_matches(['@', '#', '!', '&']);
        let prefix = tail.len() - 1 - body.len();
        let digits = body.chars().take_while(char::is_ascii_digit).count();
        if (1..=3).contains(&prefix) && digits > 0 && body[digits..].starts_with('>') {
            rest = &body[digits + 1..];
        } else {
            out.push('<');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn clip(text: &str, max: usize) -> String {
    crate::flow::truncate(text.trim(), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn ticket(topic: &str) -> Ticket {
        Ticket {
            guild_id: 1,
            number: 7,
            opener_id: 10,
            channel_id: Some(99),
            message_id: None,
            topic: topic.into(),
            status: Status::Closed,
            claimed_by: None,
            created_at: 0,
            updated_at: 0,
            updated_by: 0,
            last_activity_at: 0,
            first_response_at: None,
            first_responder_id: None,
            closed_at: None,
            closed_by: None,
            paused_ms: 0,
            paused_since: None,
            first_response_breached: false,
            resolution_breached: false,
            transcript_key: None,
            rating: None,
            feedback: None,
            reopened_count: 0,
            panel_id: None,
            answers: Vec::new(),
        }
    }

    fn line(author_id: u64, bot: bool, content: &str) -> Line {
        Line {
            author_id,
            author: String::new(),
            bot,
            at_ms: 0,
            content: content.into(),
            attachments: Vec::new(),
            embeds: Vec::new(),
        }
    }

    #[test]
    fn staff_answers_are_kept_redacted_without_the_member_or_beacons_own_messages() {
        let t = ticket("How do I export my data?  Mail me at jane@example.com");
        let lines = vec![
            line(3, true, "<@10> opened ticket #0007 <@&5>"),
            line(10, false, "Please help, my phone is +44 20 7946 0958"),
            line(20, false, "Hi <@10>! Open Settings, Privacy and press   Export."),
            line(3, true, "Draft text here\n-# Sent by <@20> with Beacon's suggestion"),
            line(21, false, "   "),
        ];
        let k = compose(&t, &lines).expect("staff answered");
        assert_eq!(k.number, 7);
        assert_eq!(k.question, "How do I export my data? Mail me at [email]");
        assert_eq!(k.answer, "Hi ! Open Settings, Privacy and press Export.\n\nDraft text here");
        assert!(!k.answer.contains("phone") && !k.answer.contains("opened ticket"), "{}", k.answer);
        let doc = document(&k);
        assert_eq!(doc.key, "ticket:7");
        assert!(doc.text.contains("## Staff answer in ticket #0007"), "{}", doc.text);
    }

    #[test]
    fn no_staff_answer_teaches_nothing() {
        let t = ticket("Anything?");
        assert_eq!(compose(&t, &[line(10, false, "hello?"), line(3, true, "Ticket closed")]), None);
    }

    #[test]
    fn mentions_are_removed_and_other_angle_brackets_kept() {
        assert_eq!(strip_mentions("a <@1> b <@!22> c <@&3> d <#4> e <b> f <@x> <3"), "a  b  c  d  e <b> f <@x> <3");
    }
}
