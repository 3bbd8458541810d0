//! A fake Discord that speaks the real wire protocols, for end-to-end tests and benchmarks.
//!
//! It serves Discord's REST API under `/api/v10` (validated against Discord's OpenAPI
//! description and the documented limits the description misses), the gateway websocket
//! (Hello, Identify, Ready, GUILD_CREATE, heartbeats, Resume, compression) and interactions
//! (gateway `INTERACTION_CREATE` or Ed25519-signed HTTP POSTs), with Discord's rate-limit headers.
//! Tests drive it as members would and then assert on what the bot did.
//!
//! ```no_run
//! use beacon_testkit::{CommandInvocation, Delivery, FakeDiscord, FakeOptions, GuildSpec, MemberSpec};
//! use std::time::Duration;
//!
//! # async fn example() -> Result<(), beacon_testkit::Error> {
//! let fake = FakeDiscord::start(FakeOptions::default()).await?;
//! let guild = fake.create_guild(GuildSpec {
//!     name: "Support".into(),
//!     text_channels: vec!["help".into()],
//!     members: vec![MemberSpec { username: "alice".into(), ..Default::default() }],
//!     ..Default::default()
//! });
//! // Point the bot at fake.base_url() / fake.gateway_url() with fake.bot_token(), then:
//! let alice = guild.members[0].user_id;
//! let handle = fake
//!     .invoke_command(
//!         CommandInvocation {
//!             guild_id: guild.id,
//!             channel_id: guild.channels[0].id,
//!             user_id: alice,
//!             name: "ping".into(),
//!             ..Default::default()
//!         },
//!         Delivery::Gateway,
//!     )
//!     .await?;
//! let outcome = fake.wait_response(&handle, Duration::from_secs(5)).await?;
//! assert_eq!(outcome.kind, 4);
//! fake.assert_no_violations();
//! # Ok(())
//! # }
//! ```

mod commands;
mod compress;
mod error;
mod gateway;
mod handlers;
mod interactions;
mod json;
mod moderation;
pub mod oauth;
mod ratelimit;
mod rest;
mod scenario;
mod server;
pub mod snowflake;
mod state;
pub mod types;
mod validate;

pub use error::Error;
pub use types::{
    ChannelInfo, CommandInvocation, Delivery, FakeOptions, Fault, FaultKind, GuildInfo, GuildSpec, InteractionHandle,
    InteractionOutcome, MemberInfo, MemberSpec, RecordedRequest, RoleInfo, RoleSpec, UiAction, Upload, Violation,
};

use server::Shared;
use state::{State, User};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Stops the server when the last handle is dropped.
struct Guard {
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A running fake Discord. Cheap to clone; the server stops when the last clone is dropped or
/// on [`FakeDiscord::shutdown`].
#[derive(Clone)]
pub struct FakeDiscord {
    pub(crate) shared: Arc<Shared>,
    guard: Option<Arc<Guard>>,
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord").field("base_url", &self.base_url()).finish()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    for x in &mut b {
        *x = fastrand::u8(..);
    }
    b
}

impl FakeDiscord {
    /// Start serving REST and the gateway on `127.0.0.1:{opts.port}`.
    pub async fn start(opts: FakeOptions) -> Result<FakeDiscord, Error> {
        install_tls_provider();
        let spec_path =
            opts.openapi_path.clone().or_else(|| std::env::var_os("BEACON_DISCORD_OPENAPI").map(PathBuf::from));
        let spec = match spec_path {
            Some(path) => Some(
                tokio::task::spawn_blocking(move || validate::Spec::load(&path))
                    .await
                    .map_err(|e| Error::Spec(format!("loading task failed: {e}")))??,
            ),
            None => None,
        };
        let routes = spec.as_ref().map_or_else(validate::Routes::builtin, |s| s.routes.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let ids = snowflake::Snowflakes::new();
        let app_id = ids.next();
        let token = format!("{}.fake.{}", hex::encode(app_id.to_string()), hex::encode(random_bytes::<24>()));
        let mut state = State::default();
        state.users.insert(app_id, User { id: app_id, username: "Beacon Test Bot".into(), bot: true });
        state.users.insert(1, User { id: 1, username: "app-owner".into(), bot: false });
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            opts,
            token,
            app_id,
            signing: ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>()),
            spec,
            routes,
            state: Mutex::new(state),
            changed: tokio::sync::Notify::new(),
            ids,
            http: reqwest::Client::new(),
            addr,
            cancel: cancel.clone(),
            conn_ids: AtomicU64::new(1),
            endpoint_check: tokio::sync::Mutex::new(()),
            flood_sent: AtomicU64::new(0),
            oauth_secret: hex::encode(random_bytes::<16>()),
        });
        let app = server::router(shared.clone());
        let task = serve_until_cancelled(listener, app, cancel.clone(), "discord");
        Ok(FakeDiscord { shared, guard: Some(Arc::new(Guard { cancel, task: Mutex::new(Some(task)) })) })
    }

    /// A handle for server-internal use that does not keep the server alive.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> FakeDiscord {
        FakeDiscord { shared, guard: None }
    }

    /// `http://127.0.0.1:PORT`; REST is at `{base_url}/api/v10/...`.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// `ws://127.0.0.1:PORT` (also returned by `GET /api/v10/gateway/bot`).
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.shared.addr)
    }

    /// The port served on.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// The only token accepted as `Authorization: Bot <token>` and in Identify.
    pub fn bot_token(&self) -> String {
        self.shared.token.clone()
    }

    /// Application id (also the bot's user id).
    pub fn application_id(&self) -> u64 {
        self.shared.app_id
    }

    /// Hex Ed25519 public key interactions are signed with.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.shared.signing.verifying_key().to_bytes())
    }

    /// Where HTTP interactions are POSTed (PING-checked before the first interaction).
    pub fn set_interactions_endpoint(&self, url: &str) {
        let mut st = self.shared.lock();
        st.endpoint = Some(url.to_owned());
    }

    /// Floods every connected session with `count` synthetic MESSAGE_CREATEs, spread over the
    /// first guilds' text channels and members, written as fast as each socket accepts them
    /// (for ingest benchmarks; the messages are not stored). Returns how many sessions flood.
    pub fn flood_messages(&self, count: u64) -> usize {
        gateway::start_flood(&self.shared, count)
    }

    /// MESSAGE_CREATEs written by floods so far.
    pub fn flood_sent(&self) -> u64 {
        self.shared.flood_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop serving and close every gateway connection.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let task = self.guard.as_ref().and_then(|g| g.task.lock().ok().and_then(|mut t| t.take()));
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
pub mod agent;
pub mod llm;

/// Installs the process-wide rustls crypto provider (ring) if none is installed yet.
///
/// reqwest is built with rustls but without a provider when another crate in the same build asks
/// for TLS, and then panics on its first client unless one is installed. [`FakeDiscord::start`]
/// calls this; tests that build an HTTP client before starting a fake call it first.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
/// Serves one fake's routes on `listener` until `cancel`, in a task. Every fake answers like a
/// real edge server: TCP_NODELAY, so a small frame or response behind an unacknowledged one does
/// not wait ~40 ms for the peer's delayed ACK (Nagle), which would show up in latency figures.
pub(crate) fn serve_until_cancelled(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    cancel: CancellationToken,
    fake: &'static str,
) -> tokio::task::JoinHandle<()> {
    // The code under test builds HTTPS-capable clients to talk to the fake; in the binary `main`
    // installs the provider they need, here the fake does.
    install_tls_provider();
    tokio::spawn(async move {
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, fake, "fake server failed");
        }
    })
}

pub mod notion;
pub mod services;
pub mod sheets;
