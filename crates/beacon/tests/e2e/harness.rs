use std::sync::Arc;
use std::time::Duration;

use beacon::run::Running;
use beacon_config::{Config, Source};
use beacon_testkit::{
    CommandInvocation, Delivery, FakeDiscord, FakeOptions, GuildInfo, GuildSpec, InteractionOutcome, MemberSpec,
    RoleSpec,
};
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(10);

/// Permission bits used by the tests.
pub const ADMINISTRATOR: u64 = 1 << 3;

/// A fake Discord with one guild (owner, an admin, a plain member), and Beacon connected to it.
pub struct TestApp {
    pub fake: FakeDiscord,
    pub running: Option<Running>,
    pub guild: GuildInfo,
    pub _data: tempfile::TempDir,
}

pub struct Options {
    pub token: bool,
    pub gateway: bool,
    pub modules: Vec<Arc<dyn beacon_framework::Module>>,
    /// Also create an "HQ" guild whose "developers" role holds bob: the developer team.
    pub dev_team: bool,
    /// More configuration (e.g. a PostgreSQL or Redis URL).
    pub env: Vec<(String, String)>,
    /// Turn on the web API's Discord login (the fake's client secret, Beacon's callback registered).
    pub oauth: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { token: true, gateway: true, modules: Vec::new(), dev_team: false, env: Vec::new(), oauth: false }
    }
}

pub fn guild_spec() -> GuildSpec {
    GuildSpec {
        name: "Test Guild".into(),
        owner_id: None,
        text_channels: vec!["general".into(), "support".into(), "mod-log".into()],
        roles: vec![
            RoleSpec { name: "admin".into(), permissions: ADMINISTRATOR },
            RoleSpec { name: "staff".into(), permissions: 0 },
        ],
        members: vec![
            MemberSpec { user_id: None, username: "owner".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "alice-admin".into(), roles: vec!["admin".into()] },
            MemberSpec { user_id: None, username: "bob".into(), roles: vec![] },
        ],
    }
}

/// An "HQ" guild whose "developers" role holds the guild's bob: the developer team. Returns the
/// configuration naming it.
pub fn developer_team(fake: &FakeDiscord, guild: &GuildInfo) -> Vec<(String, String)> {
    let bob = guild.members.iter().find(|m| m.username == "bob").map(|m| m.user_id);
    let hq = fake.create_guild(GuildSpec {
        name: "HQ".into(),
        owner_id: None,
        text_channels: vec!["dev".into()],
        roles: vec![RoleSpec { name: "developers".into(), permissions: 0 }],
        members: vec![
            MemberSpec { user_id: None, username: "hq-owner".into(), roles: vec![] },
            MemberSpec { user_id: bob, username: "bob".into(), roles: vec!["developers".into()] },
        ],
    });
    let role = hq.roles.iter().find(|r| r.name == "developers").map(|r| r.id).unwrap_or_default();
    vec![
        ("BEACON_DEVELOPERS_GUILD_ID".into(), hq.id.to_string()),
        ("BEACON_DEVELOPERS_ROLE_ID".into(), role.to_string()),
    ]
}

/// Invokes a command through the fake and returns its answer once final (see [`TestApp::command`]).
pub async fn final_answer(fake: &FakeDiscord, invocation: CommandInvocation, via: Delivery) -> InteractionOutcome {
    let handle = fake.invoke_command(invocation, via).await.expect("invoke");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let outcome = fake.wait_response(&handle, WAIT).await.expect("response");
        let streaming = outcome
            .data
            .get("content")
            .and_then(Value::as_str)
            .is_some_and(|c| c.ends_with(" …") || c.starts_with('⏳'));
        if !streaming || tokio::time::Instant::now() >= deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn openapi() -> Option<std::path::PathBuf> {
    std::env::var_os("BEACON_DISCORD_OPENAPI").map(Into::into)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> TestApp {
        // BEACON_TEST_LOG=debug shows the app's logs in a failing test's output.
        if let Ok(filter) = std::env::var("BEACON_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() })
            .await
            .expect("fake discord starts");
        let guild = fake.create_guild(guild_spec());
        let data = tempfile::tempdir().expect("tempdir");
        let mut env = opts.env;
        if opts.dev_team {
            env.extend(developer_team(&fake, &guild));
        }
        if opts.oauth {
            env.push(("BEACON_OAUTH_CLIENT_SECRET".into(), fake.oauth_client_secret()));
        }
        let config = test_config_with(&fake, &data, opts.token, opts.gateway, &env);
        let running = beacon::run::start_with(Arc::new(config), opts.modules).await.expect("beacon starts");
        // As an operator does once (`beacon commands sync`): Discord then shows each command only
        // to the members its registration allows, and the fake enforces that.
        if opts.token {
            running.app.sync_commands(None).await.expect("commands registered");
        }
        fake.set_interactions_endpoint(&format!("http://{}/interactions", running.addr));
        if opts.oauth {
            fake.register_redirect_uri(&format!("{}/api/v1/auth/callback", running.app.public_url()));
        }
        let app = TestApp { fake, running: Some(running), guild, _data: data };
        if opts.token && opts.gateway {
            app.wait_guild_registered().await;
        }
        app
    }

    pub fn app(&self) -> &Arc<beacon_framework::App> {
        &self.running.as_ref().expect("running").app
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("running").addr
    }

    pub fn member(&self, name: &str) -> u64 {
        self.guild
            .members
            .iter()
            .find(|m| m.username == name)
            .map(|m| m.user_id)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn owner(&self) -> u64 {
        self.guild.owner_id
    }

    pub fn channel(&self, name: &str) -> u64 {
        self.guild.channels.iter().find(|c| c.name == name).map(|c| c.id).unwrap_or_else(|| panic!("no channel {name}"))
    }

    pub fn role(&self, name: &str) -> u64 {
        self.guild.roles.iter().find(|r| r.name == name).map(|r| r.id).unwrap_or_else(|| panic!("no role {name}"))
    }

    async fn wait_guild_registered(&self) {
        let store = self.app().store.guild(self.guild.id);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(Some(_)) = store.get().await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "guild was never registered from GUILD_CREATE");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs a slash command as `user` and waits for its final answer.
    /// Invokes a command and returns its answer once final: a streamed answer's first response
    /// ends with " …" while the model is still writing, and a long wait shows progress starting
    /// with "⏳"; both are then edited (a test reading them before the last edit would depend on
    /// how loaded the machine is).
    pub async fn command(&self, user: u64, name: &str, options: Value, via: Delivery) -> InteractionOutcome {
        final_answer(&self.fake, self.invocation(user, name, options), via).await
    }

    /// Runs a slash command as `user` in their DM with Beacon (no server) and waits for its
    /// answer; `Err` is the fake's refusal when Discord would not offer the command there.
    pub async fn dm_command(
        &self,
        user: u64,
        name: &str,
        options: Value,
        via: Delivery,
    ) -> Result<InteractionOutcome, beacon_testkit::Error> {
        let invocation = CommandInvocation {
            guild_id: 0,
            channel_id: self.fake.open_dm(user),
            user_id: user,
            name: name.into(),
            options,
            member_permissions: None,
        };
        let handle = self.fake.invoke_command(invocation, via).await?;
        Ok(self.fake.wait_response(&handle, WAIT).await.expect("response"))
    }

    pub async fn autocomplete(&self, user: u64, name: &str, options: Value, via: Delivery) -> InteractionOutcome {
        let handle = self.fake.autocomplete(self.invocation(user, name, options), via).await.expect("autocomplete");
        self.fake.wait_response(&handle, WAIT).await.expect("response")
    }

    pub fn invocation(&self, user: u64, name: &str, options: Value) -> CommandInvocation {
        CommandInvocation {
            guild_id: self.guild.id,
            channel_id: self.channel("general"),
            user_id: user,
            name: name.into(),
            options,
            member_permissions: None,
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.fake.assert_no_violations();
    }
}

pub fn test_config(fake: &FakeDiscord, data: &tempfile::TempDir, token: bool, gateway: bool) -> Config {
    test_config_with(fake, data, token, gateway, &[])
}

pub fn test_config_with(
    fake: &FakeDiscord,
    data: &tempfile::TempDir,
    token: bool,
    gateway: bool,
    extra: &[(String, String)],
) -> Config {
    let data_dir = data.path().display().to_string();
    let api = fake.base_url();
    let gw = fake.gateway_url();
    let tok = fake.bot_token();
    let key = fake.public_key_hex();
    let app_id = fake.application_id().to_string();
    let mut pairs = vec![
        ("BEACON_DATA_DIR", data_dir.as_str()),
        ("BEACON_HTTP_ADDR", "127.0.0.1:0"),
        ("BEACON_DISCORD_API_URL", api.as_str()),
        ("BEACON_DISCORD_GATEWAY_URL", gw.as_str()),
        ("BEACON_DISCORD_PUBLIC_KEY", key.as_str()),
        ("BEACON_DISCORD_APPLICATION_ID", app_id.as_str()),
        ("BEACON_LOG_LEVEL", "warn"),
        ("BEACON_SHUTDOWN_GRACE", "5s"),
    ];
    if token {
        pairs.push(("BEACON_DISCORD_TOKEN", tok.as_str()));
    }
    if !gateway {
        pairs.push(("BEACON_DISCORD_GATEWAY_ENABLED", "false"));
    }
    pairs.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Config::from_sources(None, &Source::from_pairs(pairs)).expect("test config is valid")
}

/// The text of an answer: its content plus embed titles and descriptions.
pub fn text_of(outcome: &InteractionOutcome) -> String {
    let mut out = String::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.get("content").and_then(Value::as_str) {
            out.push_str(s);
            out.push('\n');
        }
        for e in v.get("embeds").and_then(Value::as_array).into_iter().flatten() {
            for k in ["title", "description"] {
                if let Some(s) = e.get(k).and_then(Value::as_str) {
                    out.push_str(s);
                    out.push('\n');
                }
            }
            for f in e.get("fields").and_then(Value::as_array).into_iter().flatten() {
                out.push_str(f.get("name").and_then(Value::as_str).unwrap_or(""));
                out.push_str(": ");
                out.push_str(f.get("value").and_then(Value::as_str).unwrap_or(""));
                out.push('\n');
            }
        }
    };
    push(&outcome.data);
    for f in &outcome.followups {
        push(f);
    }
    out
}

pub fn is_ephemeral(outcome: &InteractionOutcome) -> bool {
    outcome.data.get("flags").and_then(Value::as_u64).is_some_and(|f| f & 64 != 0)
}

pub fn sub(name: &str, options: Value) -> Value {
    serde_json::json!([{ "name": name, "type": 1, "options": options }])
}

pub fn opt_str(name: &str, value: &str) -> Value {
    serde_json::json!({ "name": name, "type": 3, "value": value })
}

impl TestApp {
    /// Points the ticket desk at #support, opens ticket #1 for `user` about `topic`, and returns
    /// the ticket's thread.
    pub async fn open_ticket(&self, user: u64, topic: &str) -> u64 {
        let support = self.channel("support").to_string();
        self.command(
            self.owner(),
            "config",
            sub("set", serde_json::json!([opt_str("key", "tickets.channel"), opt_str("value", &support)])),
            Delivery::Http,
        )
        .await;
        self.command(user, "ticket", sub("open", serde_json::json!([opt_str("topic", topic)])), Delivery::Gateway)
            .await;
        let thread: i64 = sqlx::query_scalar("SELECT channel_id FROM tickets WHERE guild_id = $1 AND number = 1")
            .bind(self.guild.id as i64)
            .fetch_one(self.app().store.pool())
            .await
            .expect("ticket #1 has a thread");
        thread as u64
    }
}

/// `/config set key value` as the owner; the change must be stored (only a stored change confirms
/// with "`key` changed:"; a refused value names the rule instead).
pub async fn set(t: &TestApp, key: &str, value: &str) {
    let out = t
        .command(
            t.owner(),
            "config",
            sub("set", serde_json::json!([opt_str("key", key), opt_str("value", value)])),
            Delivery::Http,
        )
        .await;
    let text = text_of(&out);
    assert!(text.starts_with(&format!("`{key}` changed:")), "setting {key}: {text}");
}

/// Every guild table of the database's catalogue that holds rows of `guild_id`, with their count.
pub async fn rows_of(t: &TestApp, guild_id: u64) -> Vec<(String, i64)> {
    let store = &t.app().store;
    let mut rows = Vec::new();
    for table in store.catalogue_guild_tables().await.expect("catalogue") {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE guild_id = $1")))
                .bind(guild_id as i64)
                .fetch_one(store.pool())
                .await
                .expect("count");
        if n > 0 {
            rows.push((table, n));
        }
    }
    rows
}
