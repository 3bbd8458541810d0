//! The module framework of Beacon: the [`Module`] contract, typed per-guild [settings],
//! [access] checks, and the one [router] every interaction and gateway event goes through.
//!
//! A module declares commands, components, modals, event handlers, settings and migrations; the
//! framework syncs the commands to Discord, checks that the caller may run them and that the
//! module is enabled in the guild, answers within Discord's deadline (deferring when the handler
//! is slow), splits long replies and never pings anyone unless asked.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use beacon_framework::{AppBuilder, Module, router};
//! # async fn demo(config: Arc<beacon_config::Config>, store: beacon_store::Store, cache: beacon_cache::Cache,
//! #   http: Arc<twilight_http::Client>, modules: Vec<Arc<dyn Module>>,
//! #   interaction: twilight_model::application::interaction::Interaction) -> Result<(), beacon_framework::app::BuildError> {
//! let app = AppBuilder::new(config, store, cache, http).modules(modules).build().await?;
//! let background = app.start_background(); // jobs, module tasks, housekeeping
//! if let Some(mut dispatched) = router::dispatch_interaction(&app, interaction).await {
//!     let initial = dispatched.initial_response(router::INITIAL_RESPONSE_BUDGET).await;
//!     // deliver `initial` (HTTP body or REST callback), then:
//!     dispatched.responder.mark_delivered();
//! #   drop(initial);
//! }
//! app.shutdown.cancel();
//! background.stop(std::time::Duration::from_secs(8)).await;
//! # Ok(())
//! # }
//! ```

pub mod access;
pub mod api;
// `app` and `module` are being reworked; their items get documented with the new contract.
pub mod alerts;
pub mod app;
pub mod command;
pub mod dm;
pub mod error;
pub mod export;
pub mod guild_cache;
pub mod lifecycle;
pub mod metrics;
pub mod module;
pub mod pages;
pub mod ports;
pub mod privacy;
pub mod reply;
pub mod responder;
pub mod retention;
pub mod router;
pub mod settings;
pub mod transport;

pub use access::{Access, Caller};
pub use api::{ApiError, ApiGuild, ApiRoute, QueryParams};
pub use app::{App, AppBuilder};
pub use async_trait::async_trait;
pub use command::{CommandSpec, OptionSpec, Options};
pub use dm::DmCommandCtx;
pub use error::{HandlerError, HandlerResult};
pub use export::{DayRange, ExportFile, ExportSpec, Exporter};
pub use guild_cache::GuildCache;
pub use lifecycle::{Background, BackgroundTask, JobKind};
pub use module::{AutocompleteCtx, CommandCtx, ComponentCtx, EventCtx, InteractionCtx, ModalCtx, Module, StatusField};
pub use ports::{AnswerCorrections, ConversationMessage, HumanHandoff, Port, ReplyDrafter, Speaker};
pub use reply::{Choice, Reply};
pub use settings::{SettingKind, SettingSpec, SettingsService};
