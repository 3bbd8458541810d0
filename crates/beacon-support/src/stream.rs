//! Streaming LLM answers into Discord: the answer is posted early (or, for `/ask`, becomes the
//! interaction's response) and edited as tokens arrive, at most once per edit interval, so a
//! stream never provokes a 429 (Discord allows about 5 edits per 5 s per channel). The final
//! text is split at 2,000 characters with the code-fence-preserving splitter: the first part
//! replaces the streamed message, the rest follow as further messages.
//!
//! What a member sees mid-stream passes the same output guard as the final text, with the
//! still-arriving last word held back (it may be half a citation marker, a mention or a key),
//! invalid citation markers dropped, and nothing shown while the reply may still turn out to be
//! the "not in the passages" sentinel.

use std::sync::Arc;
use std::time::Duration;

use beacon_discord::split::{MESSAGE_LIMIT, split_message};
use beacon_framework::responder::Responder;
use beacon_framework::{HandlerError, Reply, async_trait};
use beacon_llm::{CallContext, LlmError, LlmService, Passage, StreamEvent};
use futures_util::StreamExt;
use tokio::time::Instant;
use twilight_http_ratelimiting::{Endpoint, Method};
use twilight_model::channel::message::Component;
use twilight_model::channel::message::MessageFlags;
use twilight_model::id::Id;
use twilight_model::id::marker::{ApplicationMarker, MessageMarker};

use crate::conversation::Turn;
use crate::grounded::{self, CANNOT_ANSWER, LlmAnswer};
use crate::guard;

/// Production interval between two edits of one streamed message: at most 4 edits in any 5 s,
/// below Discord's 5 per 5 s per channel even with the final edit.
pub const DEFAULT_EDIT_INTERVAL: Duration = Duration::from_millis(1500);

/// Marks a message still being written.
const CURSOR: &str = " …";

/// The part of a partial model reply that may be shown: `None` while nothing is safe to show.
///
/// The last, possibly incomplete word is held back; markers naming no given passage are dropped;
/// a reply that is (or may become) the [`CANNOT_ANSWER`] sentinel shows nothing; anything from a
/// PEM header on is held back; the rest passes [`guard::output`]. Only what fits in the first
/// message is returned, with a cursor.
pub fn preview(partial: &str, passage_count: usize) -> Option<String> {
    let trimmed = partial.trim_start();
    if trimmed.is_empty() || trimmed.contains(CANNOT_ANSWER) || CANNOT_ANSWER.starts_with(trimmed.trim_end()) {
        return None;
    }
    let mut text = trimmed;
    if let Some(at) = text.find("-----BEGIN") {
        text = &text[..at];
    }
    if !text.ends_with(char::is_whitespace) {
        text = &text[..text.rfind(char::is_whitespace)?];
    }
    let (cleaned, _) = grounded::markers(text, passage_count);
    let guarded = guard::output(cleaned.trim(), usize::MAX).text;
    let first = split_message(&guarded, MESSAGE_LIMIT - CURSOR.chars().count()).into_iter().next()?;
    Some(format!("{first}{CURSOR}"))
}

/// Like [`grounded::answer`], but streamed: every piece of text is offered to `live` (through
/// [`preview`]). A stream that fails or ends without its completion is an error, so the caller
/// falls back exactly as for a failed call.
pub async fn answer(
    llm: &LlmService,
    ctx: &CallContext,
    question: &str,
    locale: Option<&str>,
    history: &[Turn],
    passages: &[Passage],
    live: &mut dyn LiveAnswer,
) -> Result<LlmAnswer, LlmError> {
    let request = grounded::request(question, locale, history, passages);
    let mut events = llm.chat_stream(ctx, &request).await?;
    let mut partial = String::new();
    while let Some(event) = events.next().await {
        match event? {
            StreamEvent::TextDelta(delta) => {
                partial.push_str(&delta);
                if let Some(shown) = preview(&partial, passages.len()) {
                    live.offer(&shown).await;
                }
            }
            StreamEvent::Done(response) => {
                return Ok(LlmAnswer {
                    outcome: grounded::interpret(&response.text, passages.len()),
                    tokens_in: response.usage.input_tokens,
                    tokens_out: response.usage.output_tokens,
                });
            }
            StreamEvent::ToolCall(_) => {}
        }
    }
    Err(LlmError::InvalidResponse { provider: "stream".to_owned(), message: "the stream ended early".to_owned() })
}

/// Spacing of the edits of one message.
#[derive(Debug, Clone)]
pub struct Throttle {
    interval: Duration,
    last: Instant,
}

impl Throttle {
    /// A throttle whose first edit may happen `interval` from now (a reply that streams in
    /// faster than that is posted once, complete).
    pub fn new(interval: Duration) -> Throttle {
        Throttle { interval, last: Instant::now() }
    }

    /// Whether the interval has passed since the last edit.
    pub fn ready(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// Records an edit now.
    pub fn mark(&mut self) {
        self.last = Instant::now();
    }

    /// Waits until the next edit is allowed.
    pub async fn wait(&self) {
        tokio::time::sleep_until(self.last + self.interval).await;
    }
}

/// Whether twilight's rate limiter knows the bucket of `endpoint` to be exhausted right now.
async fn bucket_exhausted(http: &twilight_http::Client, endpoint: Endpoint) -> bool {
    let Some(limiter) = http.ratelimiter() else { return false };
    match limiter.bucket(endpoint).await {
        Some(bucket) => bucket.remaining == 0 && bucket.reset_at > std::time::Instant::now(),
        None => false,
    }
}

/// A message being written as tokens arrive.
#[async_trait]
pub trait LiveAnswer: Send {
    /// Offers the answer so far (already through [`preview`]); shown when the throttle and the
    /// rate limits allow, otherwise skipped. Failures are logged: the final delivery retries.
    async fn offer(&mut self, text: &str);
}

/// An answer to a message: posted as a reply (or in a new thread), edited while streaming.
pub struct ChannelAnswer {
    http: Arc<twilight_http::Client>,
    /// Where the answer goes (the question's channel, or the thread opened for it).
    target: u64,
    /// The question, replied to when answering inline.
    reply_to: Option<Id<MessageMarker>>,
    /// The question's message id: the nonce of each part posted, so the same event handled
    /// again (a worker stopped mid-answer) returns the parts already posted instead of posting
    /// them twice.
    question: Id<MessageMarker>,
    throttle: Throttle,
    posted: Option<Id<MessageMarker>>,
    /// What the message shows now (an unchanged preview is not sent again).
    shown: String,
}

impl ChannelAnswer {
    /// An answer to the message `question` in `target`, replying to `reply_to` when given.
    pub fn new(
        http: Arc<twilight_http::Client>,
        target: u64,
        question: Id<MessageMarker>,
        reply_to: Option<Id<MessageMarker>>,
        interval: Duration,
    ) -> ChannelAnswer {
        ChannelAnswer {
            http,
            target,
            reply_to,
            question,
            throttle: Throttle::new(interval),
            posted: None,
            shown: String::new(),
        }
    }

    /// Whether part of the answer has been posted.
    pub fn is_posted(&self) -> bool {
        self.posted.is_some()
    }

    /// Posts part `part` of the answer (the first one replying to the question when `reply_to`
    /// is set), at most once per question and part.
    async fn post(&self, text: &str, components: &[Component], part: usize) -> Result<Id<MessageMarker>, HandlerError> {
        let mut body = serde_json::json!({
            "content": text,
            "components": components,
            "allowed_mentions": beacon_discord::mentions::none(),
        });
        if let Some(id) = self.reply_to.filter(|_| part == 0) {
            body["message_reference"] = serde_json::json!({ "message_id": id, "fail_if_not_exists": false });
        }
        // "a" + the snowflake (≤ 20 digits) + ":" + the part: within Discord's 25 characters.
        let nonce = format!("a{}:{part}", self.question);
        let posted =
            beacon_discord::rest::create_message_enforced(&self.http, Id::new(self.target), body, &nonce).await?;
        Ok(posted.model().await?.id)
    }

    async fn edit(
        &self,
        id: Id<MessageMarker>,
        text: &str,
        components: Option<&[Component]>,
    ) -> Result<(), HandlerError> {
        let mentions = beacon_discord::mentions::none();
        self.http
            .update_message(Id::new(self.target), id)
            .content(Some(text))
            .components(components)
            .allowed_mentions(Some(&mentions))
            .await?;
        Ok(())
    }

    /// Posts the final (guarded) answer: the first part replaces the streamed message (after the
    /// edit interval) or is posted now, the rest follow. Returns the first message's id.
    pub async fn deliver(
        &mut self,
        content: &str,
        components: &[Component],
    ) -> Result<Id<MessageMarker>, HandlerError> {
        let mut parts = split_message(content, MESSAGE_LIMIT);
        if parts.is_empty() {
            parts.push("…".to_owned());
        }
        let first = match self.posted {
            Some(id) => {
                self.throttle.wait().await;
                self.edit(id, &parts[0], Some(components)).await?;
                id
            }
            None => self.post(&parts[0], components, 0).await?,
        };
        for (i, part) in parts.iter().enumerate().skip(1) {
            self.post(part, &[], i).await?;
        }
        Ok(first)
    }
}

#[async_trait]
impl LiveAnswer for ChannelAnswer {
    async fn offer(&mut self, text: &str) {
        if !self.throttle.ready() || text == self.shown {
            return;
        }
        let result = match self.posted {
            None => self.post(text, &[], 0).await.map(|id| self.posted = Some(id)),
            Some(id) => {
                let path = format!("channels/{}/messages/{id}", self.target);
                if bucket_exhausted(&self.http, Endpoint { method: Method::Patch, path }).await {
                    return;
                }
                self.edit(id, text, None).await
            }
        };
        match result {
            Ok(()) => text.clone_into(&mut self.shown),
            Err(e) => tracing::warn!(error = %e, "showing a streamed answer failed"),
        }
        self.throttle.mark();
    }
}

/// An answer to `/ask`: the interaction's response (or its deferred response), edited while
/// streaming; further parts are follow-ups.
pub struct InteractionAnswer {
    http: Arc<twilight_http::Client>,
    responder: Responder,
    application_id: Id<ApplicationMarker>,
    token: String,
    throttle: Throttle,
    shown: bool,
    /// What the response shows now (an unchanged preview is not sent again).
    showing: String,
    /// The transport deferred before the first part was shown: the response is ephemeral.
    ephemeral: bool,
}

impl InteractionAnswer {
    /// An answer through `responder` for the interaction with `token`.
    pub fn new(
        http: Arc<twilight_http::Client>,
        responder: Responder,
        application_id: Id<ApplicationMarker>,
        token: String,
        interval: Duration,
    ) -> InteractionAnswer {
        InteractionAnswer {
            http,
            responder,
            application_id,
            token,
            throttle: Throttle::new(interval),
            shown: false,
            showing: String::new(),
            ephemeral: false,
        }
    }

    /// Whether part of the answer has been shown.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    async fn edit_original(&self, text: &str, components: Option<&[Component]>) -> Result<(), HandlerError> {
        let mentions = beacon_discord::mentions::none();
        self.http
            .interaction(self.application_id)
            .update_response(&self.token)
            .content(Some(text))
            .components(components)
            .allowed_mentions(Some(&mentions))
            .await?;
        Ok(())
    }

    /// Sends the final (guarded) answer: when parts were shown, the original response is edited
    /// (after the edit interval) and the rest are follow-ups; otherwise it is an ordinary reply.
    pub async fn deliver(&mut self, reply: Reply) -> Result<(), HandlerError> {
        if !self.shown {
            return self.responder.reply(reply).await;
        }
        let mut parts = match reply.content.as_deref() {
            Some(text) => split_message(text, MESSAGE_LIMIT),
            None => Vec::new(),
        };
        if parts.is_empty() {
            parts.push("…".to_owned());
        }
        self.throttle.wait().await;
        self.edit_original(&parts[0], Some(&reply.components)).await?;
        let mentions = beacon_discord::mentions::none();
        for part in &parts[1..] {
            let client = self.http.interaction(self.application_id);
            let mut followup = client.create_followup(&self.token).content(part).allowed_mentions(Some(&mentions));
            if self.ephemeral {
                followup = followup.flags(MessageFlags::EPHEMERAL);
            }
            followup.await?;
        }
        Ok(())
    }
}

#[async_trait]
impl LiveAnswer for InteractionAnswer {
    async fn offer(&mut self, text: &str) {
        if !self.throttle.ready() || text == self.showing {
            return;
        }
        let result = if self.shown {
            let path = format!("webhooks/{}/{}/messages/@original", self.application_id, self.token);
            if bucket_exhausted(&self.http, Endpoint { method: Method::Patch, path }).await {
                return;
            }
            self.edit_original(text, None).await
        } else {
            // The first part is the interaction's response (or the edit of the transport's defer);
            // the responder waits until Discord has it, so later edits find it.
            self.ephemeral = self.responder.is_acknowledged();
            self.shown = true;
            self.responder.reply(Reply::text(text)).await
        };
        match result {
            Ok(()) => text.clone_into(&mut self.showing),
            Err(e) => tracing::warn!(error = %e, "showing a streamed answer failed"),
        }
        self.throttle.mark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_hold_back_the_word_still_arriving() {
        assert_eq!(preview("Refunds take", 2).as_deref(), Some("Refunds …"));
        assert_eq!(preview("Refunds take 14 days [1", 2).as_deref(), Some("Refunds take 14 days …"));
        assert_eq!(preview("Refunds take 14 days [1] ", 2).as_deref(), Some("Refunds take 14 days [1] …"));
        assert_eq!(preview("Refunds", 2), None, "a single word may still grow");
        assert_eq!(preview("   ", 2), None);
    }

    #[test]
    fn previews_drop_invalid_markers_and_guard_the_text() {
        assert_eq!(preview("See [7] and [2] now", 2).as_deref(), Some("See  and [2] …"));
        let p = preview("Hi @everyone and <@&123> key sk-abcdefghijklmnopqrstuvwxyz0 ok ", 2).unwrap_or_default();
        assert!(!p.contains("@everyone") && !p.contains("<@&123>") && !p.contains("sk-abc"), "{p}");
        // A key still arriving is the last word: not shown at all.
        assert_eq!(preview("the key is sk-abcdefgh", 2).as_deref(), Some("the key is …"));
        assert_eq!(preview("here -----BEGIN PRIVATE KEY----- MIIE abc ", 2).as_deref(), Some("here …"));
    }

    #[test]
    fn the_sentinel_is_never_shown() {
        assert_eq!(preview("NO_ANSWER", 2), None);
        assert_eq!(preview(&format!("{CANNOT_ANSWER} "), 2), None);
        assert_eq!(preview(&format!("Sorry. {CANNOT_ANSWER} more "), 2), None);
    }

    #[test]
    fn long_previews_show_the_first_message_only() {
        let text = "word ".repeat(1000);
        let p = preview(&text, 1).unwrap_or_default();
        assert!(p.chars().count() <= MESSAGE_LIMIT, "{}", p.chars().count());
        assert!(p.ends_with(CURSOR));
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_spaces_edits() {
        let mut t = Throttle::new(Duration::from_millis(1500));
        assert!(!t.ready(), "the first edit waits one interval");
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(t.ready());
        t.mark();
        assert!(!t.ready());
        let before = Instant::now();
        t.wait().await;
        assert!(before.elapsed() >= Duration::from_millis(1500));
        assert!(t.ready());
    }
}
