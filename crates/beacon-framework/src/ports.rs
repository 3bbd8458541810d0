//! Ports: how one feature reaches another without depending on it.
//!
//! A port is a trait object registered on the app by the module that provides it and looked up
//! by the modules that use it, by its type: the support module asks for `dyn HumanHandoff`
//! and gets whatever the ticket desk registered, or nothing when no module provides it (then
//! it does not offer the hand-off). The traits of the ports between Beacon's own features live
//! here; a library may define its own (the knowledge base's source providers) and any crate
//! can provide it.
//!
//! ```
//! use std::sync::Arc;
//! use beacon_framework::ports::{Port, Ports};
//!
//! trait Greeter: Send + Sync { fn greet(&self) -> String; }
//! struct En;
//! impl Greeter for En { fn greet(&self) -> String { "hello".into() } }
//!
//! let ports = Ports::new(vec![Port::new::<dyn Greeter>("en", Arc::new(En))]);
//! assert_eq!(ports.get::<dyn Greeter>().map(|g| g.greet()).as_deref(), Some("hello"));
//! assert_eq!(ports.all::<dyn Greeter>().len(), 1);
//! ```

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_trait::async_trait;

use crate::app::App;
use crate::error::HandlerError;

/// One provided port: a trait object and who provides it.
pub struct Port {
    type_id: TypeId,
    type_name: &'static str,
    provider: &'static str,
    /// An `Arc<T>` for the port's trait object type `T`.
    value: Box<dyn Any + Send + Sync>,
}

impl Port {
    /// Provides `value` as the port `T` (a trait object type such as `dyn HumanHandoff`).
    /// `provider` names the module, for logs and `/status`.
    pub fn new<T: ?Sized + Send + Sync + 'static>(provider: &'static str, value: Arc<T>) -> Port {
        Port { type_id: TypeId::of::<T>(), type_name: std::any::type_name::<T>(), provider, value: Box::new(value) }
    }

    /// The port's trait, e.g. `dyn beacon_framework::ports::HumanHandoff`.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The module that provides it.
    pub fn provider(&self) -> &'static str {
        self.provider
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("type", &self.type_name).field("provider", &self.provider).finish()
    }
}

/// The ports of a running app, in registration order.
#[derive(Debug, Default)]
pub struct Ports {
    ports: Vec<Port>,
}

impl Ports {
    /// The registry of these ports.
    pub fn new(ports: Vec<Port>) -> Ports {
        Ports { ports }
    }

    /// The first provider of `T`, if any.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.ports
            .iter()
            .find(|p| p.type_id == TypeId::of::<T>())
            .and_then(|p| p.value.downcast_ref::<Arc<T>>())
            .cloned()
    }

    /// Every provider of `T` (ports such as knowledge sources have several).
    pub fn all<T: ?Sized + Send + Sync + 'static>(&self) -> Vec<Arc<T>> {
        self.ports
            .iter()
            .filter(|p| p.type_id == TypeId::of::<T>())
            .filter_map(|p| p.value.downcast_ref::<Arc<T>>())
            .cloned()
            .collect()
    }

    /// Whether anything provides `T`.
    pub fn has<T: ?Sized + Send + Sync + 'static>(&self) -> bool {
        self.ports.iter().any(|p| p.type_id == TypeId::of::<T>())
    }

    /// What is provided, by whom: `(trait, module)`.
    pub fn provided(&self) -> Vec<(&'static str, &'static str)> {
        self.ports.iter().map(|p| (p.type_name, p.provider)).collect()
    }
}

/// "Talk to a human": opens a private conversation with staff for a member, carrying what was
/// said so far. Provided by the ticket desk; used by support answers.
#[async_trait]
pub trait HumanHandoff: Send + Sync {
    /// Whether the hand-off can be offered in this guild now (e.g. the ticket desk is on there).
    async fn available(&self, app: &Arc<App>, guild_id: u64) -> bool;

    /// Opens it for `user_id` in `channel_id` (where the member asked), with `topic` and the
    /// `conversation` so far; returns a mention of where staff will answer (e.g. `<#123>`).
    async fn open(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        channel_id: Option<u64>,
        user_id: u64,
        topic: &str,
        conversation: &str,
    ) -> Result<String, HandlerError>;
}

/// Who wrote a message of a conversation one feature hands to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The member being helped.
    Member,
    /// Staff, or Beacon speaking for them.
    Staff,
}

/// One message of a conversation one feature hands to another (e.g. a ticket's, for a draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMessage {
    /// Who wrote it.
    pub speaker: Speaker,
    /// What it says, as written (the receiver redacts what it keeps or passes on).
    pub text: String,
}

/// Drafts a reply for staff from the server's knowledge. Provided by support answers; used by
/// the ticket desk's "Suggest reply".
#[async_trait]
pub trait ReplyDrafter: Send + Sync {
    /// A draft reply to the member's latest message in `conversation` (oldest first: everything
    /// said so far, the member's and staff's), or `None` when there is nothing confident to say.
    /// Personal data in the conversation is redacted before it is searched or sent to an LLM.
    async fn draft(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        conversation: &[ConversationMessage],
    ) -> Result<Option<String>, HandlerError>;
}

/// Staff's correction of one of Beacon's answers, kept as knowledge the next answers draw on.
/// Provided by the FAQ (an entry for the question); used by support answers' "Correct this".
#[async_trait]
pub trait AnswerCorrections: Send + Sync {
    /// Whether corrections can be kept in `guild_id` now (e.g. the FAQ is on there).
    async fn available(&self, app: &Arc<App>, guild_id: u64) -> bool;

    /// Keeps `answer` as the answer to `question`, written by `staff_id`; returns what was made,
    /// for staff to read (e.g. "FAQ entry #4").
    async fn correct(
        &self,
        app: &Arc<App>,
        guild_id: u64,
        staff_id: u64,
        question: &str,
        answer: &str,
    ) -> Result<String, HandlerError>;
}
