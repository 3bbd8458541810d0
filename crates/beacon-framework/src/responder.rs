//! Answering one interaction, whatever transport it came on.
//!
//! The first answer to an interaction (its *initial response*) must reach Discord within 3 s.
//! The handler writes answers through a [`Responder`]; the transport (HTTP endpoint or gateway)
//! waits for the initial response with a deadline below 3 s and, when the handler is slower,
//! takes a *defer* instead ([`Responder::try_defer`]). Later answers become an edit of the
//! original response, then follow-ups. Text longer than 2,000 characters is split without
//! breaking code blocks, and nobody is pinged unless the reply asks for it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use beacon_discord::split::{MESSAGE_LIMIT, split_message};
use tokio::sync::{Notify, oneshot};
use twilight_model::application::command::{CommandOptionChoice, CommandOptionChoiceValue};
use twilight_model::channel::message::{Component, MessageFlags};
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};
use twilight_model::id::Id;
use twilight_model::id::marker::{ApplicationMarker, InteractionMarker};

use crate::error::{HandlerError, HandlerResult};
use crate::reply::{Choice, Reply};

/// What a defer looks like for this kind of interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferStyle {
    /// Commands and modal submits: "Beacon is thinking…", later edited. Ephemeral or not.
    Message {
        /// Whether the deferred (and final) message is ephemeral.
        ephemeral: bool,
    },
    /// Components: acknowledge without changing the message.
    Update,
    /// Autocomplete cannot be deferred: answer with no choices.
    EmptyChoices,
}

enum State {
    Pending(oneshot::Sender<InteractionResponse>),
    Deferred,
    Responded,
}

struct Inner {
    http: Arc<twilight_http::Client>,
    application_id: Id<ApplicationMarker>,
    interaction_id: Id<InteractionMarker>,
    token: String,
    defer_style: DeferStyle,
    state: Mutex<State>,
    delivered: Notify,
    delivered_flag: std::sync::atomic::AtomicBool,
}

/// Handle through which a handler answers its interaction. Cheap to clone.
#[derive(Clone)]
pub struct Responder {
    inner: Arc<Inner>,
}

/// How long to wait for the transport to confirm the initial response before sending
/// follow-ups anyway (they fail cleanly if it never arrived).
const DELIVERY_WAIT: Duration = Duration::from_secs(3);

impl Responder {
    /// A responder and the receiver on which the transport gets the initial response.
    pub fn new(
        http: Arc<twilight_http::Client>,
        application_id: Id<ApplicationMarker>,
        interaction_id: Id<InteractionMarker>,
        token: String,
        defer_style: DeferStyle,
    ) -> (Responder, oneshot::Receiver<InteractionResponse>) {
        let (tx, rx) = oneshot::channel();
        let inner = Inner {
            http,
            application_id,
            interaction_id,
            token,
            defer_style,
            state: Mutex::new(State::Pending(tx)),
            delivered: Notify::new(),
            delivered_flag: std::sync::atomic::AtomicBool::new(false),
        };
        (Responder { inner: Arc::new(inner) }, rx)
    }

    /// The interaction this responder answers.
    pub fn interaction_id(&self) -> Id<InteractionMarker> {
        self.inner.interaction_id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another handler task panicked mid-update; the state itself
        // is a plain enum and stays meaningful.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an initial response (answer or defer) has been produced.
    pub fn is_acknowledged(&self) -> bool {
        !matches!(*self.state(), State::Pending(_))
    }

    /// Called by the transport when the deadline is near and the handler has not answered.
    /// Returns the defer to deliver, or `None` if the handler answered in the meantime.
    pub fn try_defer(&self) -> Option<InteractionResponse> {
        let mut state = self.state();
        if !matches!(*state, State::Pending(_)) {
            return None;
        }
        *state = State::Deferred;
        Some(self.defer_response())
    }

    /// Called by the transport once the initial response is on its way to Discord.
    pub fn mark_delivered(&self) {
        self.inner.delivered_flag.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.delivered.notify_waiters();
    }

    async fn wait_delivered(&self) {
        let notified = self.inner.delivered.notified();
        if self.inner.delivered_flag.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let _ = tokio::time::timeout(DELIVERY_WAIT, notified).await;
    }

    fn defer_response(&self) -> InteractionResponse {
        match self.inner.defer_style {
            DeferStyle::Message { ephemeral } => InteractionResponse {
                kind: InteractionResponseType::DeferredChannelMessageWithSource,
                data: ephemeral
                    .then(|| InteractionResponseData { flags: Some(MessageFlags::EPHEMERAL), ..Default::default() }),
            },
            DeferStyle::Update => {
                InteractionResponse { kind: InteractionResponseType::DeferredUpdateMessage, data: None }
            }
            DeferStyle::EmptyChoices => InteractionResponse {
                kind: InteractionResponseType::ApplicationCommandAutocompleteResult,
                data: Some(InteractionResponseData { choices: Some(Vec::new()), ..Default::default() }),
            },
        }
    }

    /// Acknowledges now ("thinking…"), for handlers that know they will be slow.
    pub fn defer(&self) -> HandlerResult {
        let mut state = self.state();
        if let State::Pending(_) = *state {
            let previous = std::mem::replace(&mut *state, State::Deferred);
            if let State::Pending(tx) = previous {
                tx.send(self.defer_response())
                    .map_err(|_| HandlerError::internal("interaction transport closed before the defer"))?;
            }
        }
        Ok(())
    }

    /// Answers with a message: the initial response if still possible, else an edit of the
    /// deferred original, else a follow-up. Long text continues in follow-ups.
    pub async fn reply(&self, reply: Reply) -> HandlerResult {
        self.send(reply, InteractionResponseType::ChannelMessageWithSource).await
    }

    /// For components: replaces the message the component is on (or edits it after a defer).
    pub async fn update(&self, reply: Reply) -> HandlerResult {
        self.send(reply, InteractionResponseType::UpdateMessage).await
    }

    async fn send(&self, reply: Reply, kind: InteractionResponseType) -> HandlerResult {
        let mut chunks = match &reply.content {
            Some(text) if !text.is_empty() => split_message(text, MESSAGE_LIMIT),
            _ => Vec::new(),
        };
        if chunks.is_empty() {
            chunks.push(String::new());
        }
        let first = chunks.remove(0);
        let previous = {
            let mut state = self.state();
            std::mem::replace(&mut *state, State::Responded)
        };
        match previous {
            State::Pending(tx) => {
                let data = InteractionResponseData {
                    allowed_mentions: Some(reply.mentions()),
                    attachments: (!reply.attachments.is_empty()).then(|| reply.attachments.clone()),
                    components: Some(reply.components.clone()),
                    content: (!first.is_empty()).then(|| first.clone()),
                    embeds: Some(reply.embeds.clone()),
                    flags: reply.flags(),
                    ..Default::default()
                };
                tx.send(InteractionResponse { kind, data: Some(data) })
                    .map_err(|_| HandlerError::internal("interaction transport closed before the answer"))?;
                self.wait_delivered().await;
            }
            // A component acknowledged with "deferred update" keeps its message: a new reply is
            // a follow-up, and only `update` edits the message the component is on.
            State::Deferred
                if self.inner.defer_style == DeferStyle::Update
                    && kind == InteractionResponseType::ChannelMessageWithSource =>
            {
                self.wait_delivered().await;
                self.followup(&first, &reply, true).await?;
            }
            // A public defer cannot turn private: the placeholder goes and the answer (an error,
            // say) follows only for the caller.
            State::Deferred
                if self.inner.defer_style == (DeferStyle::Message { ephemeral: false }) && reply.ephemeral =>
            {
                self.wait_delivered().await;
                retry_not_yet_known(|| async {
                    let client = self.inner.http.interaction(self.inner.application_id);
                    client.delete_response(&self.inner.token).await.map(|_| ())
                })
                .await?;
                self.followup(&first, &reply, true).await?;
            }
            State::Deferred => {
                self.wait_delivered().await;
                let mentions = reply.mentions();
                retry_not_yet_known(|| async {
                    let client = self.inner.http.interaction(self.inner.application_id);
                    let mut update = client
                        .update_response(&self.inner.token)
                        .content((!first.is_empty()).then_some(first.as_str()))
                        .embeds(Some(&reply.embeds))
                        .components(Some(&reply.components))
                        .allowed_mentions(Some(&mentions));
                    if !reply.attachments.is_empty() {
                        update = update.attachments(&reply.attachments);
                    }
                    update.await.map(|_| ())
                })
                .await?;
            }
            State::Responded => {
                self.followup(&first, &reply, true).await?;
            }
        }
        for chunk in chunks {
            self.followup(&chunk, &reply, false).await?;
        }
        Ok(())
    }

    async fn followup(&self, text: &str, reply: &Reply, with_extras: bool) -> HandlerResult {
        let mentions = reply.mentions();
        retry_not_yet_known(|| async {
            let client = self.inner.http.interaction(self.inner.application_id);
            let mut req = client.create_followup(&self.inner.token).allowed_mentions(Some(&mentions));
            if !text.is_empty() {
                req = req.content(text);
            }
            if with_extras {
                req = req.embeds(&reply.embeds).components(&reply.components);
                if !reply.attachments.is_empty() {
                    req = req.attachments(&reply.attachments);
                }
            }
            if reply.ephemeral {
                req = req.flags(MessageFlags::EPHEMERAL);
            }
            req.await.map(|_| ())
        })
        .await?;
        Ok(())
    }

    /// Opens a form. Only possible as the initial response.
    pub fn modal(
        &self,
        custom_id: impl Into<String>,
        title: impl Into<String>,
        components: Vec<Component>,
    ) -> HandlerResult {
        let mut state = self.state();
        let previous = std::mem::replace(&mut *state, State::Responded);
        match previous {
            State::Pending(tx) => tx
                .send(InteractionResponse {
                    kind: InteractionResponseType::Modal,
                    data: Some(InteractionResponseData {
                        custom_id: Some(custom_id.into()),
                        title: Some(title.into()),
                        components: Some(components),
                        ..Default::default()
                    }),
                })
                .map_err(|_| HandlerError::internal("interaction transport closed before the modal")),
            other => {
                *state = other;
                Err(HandlerError::internal("a modal must be the first answer to an interaction"))
            }
        }
    }

    /// Answers an autocomplete interaction (at most 25 choices are sent).
    pub fn choices(&self, choices: Vec<Choice>) -> HandlerResult {
        let choices = choices
            .into_iter()
            .take(25)
            .map(|c| CommandOptionChoice {
                name: c.name,
                name_localizations: None,
                value: CommandOptionChoiceValue::String(c.value),
            })
            .collect();
        let mut state = self.state();
        let previous = std::mem::replace(&mut *state, State::Responded);
        match previous {
            State::Pending(tx) => tx
                .send(InteractionResponse {
                    kind: InteractionResponseType::ApplicationCommandAutocompleteResult,
                    data: Some(InteractionResponseData { choices: Some(choices), ..Default::default() }),
                })
                .map_err(|_| HandlerError::internal("interaction transport closed before the choices")),
            other => {
                *state = other;
                Ok(())
            }
        }
    }
}

/// Delays before retrying a request Discord answered 404: an initial response sent as an HTTP body
/// may not be registered yet when the first edit or follow-up arrives on another connection.
const NOT_YET_KNOWN_BACKOFF: [Duration; 4] =
    [Duration::from_millis(50), Duration::from_millis(150), Duration::from_millis(400), Duration::from_millis(1000)];

async fn retry_not_yet_known<F, Fut>(mut attempt: F) -> Result<(), twilight_http::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), twilight_http::Error>>,
{
    for delay in NOT_YET_KNOWN_BACKOFF {
        match attempt().await {
            Err(e) if is_not_found(&e) => tokio::time::sleep(delay).await,
            other => return other,
        }
    }
    attempt().await
}

fn is_not_found(e: &twilight_http::Error) -> bool {
    matches!(e.kind(), twilight_http::error::ErrorType::Response { status, .. } if status.get() == 404)
}
