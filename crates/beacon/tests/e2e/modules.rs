//! The module contract, exercised by a module written the way a module author would: commands,
//! a button, a modal, a slow handler, long output, per-guild disabling and change listeners.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beacon_framework::reply::components::{button, row};
use beacon_framework::{
    Access, CommandCtx, CommandSpec, ComponentCtx, HandlerResult, ModalCtx, Module, OptionSpec, Reply, SettingKind,
    SettingSpec, async_trait,
};
use beacon_testkit::Delivery;
use serde_json::json;
use twilight_model::channel::message::Component;
use twilight_model::channel::message::component::{ButtonStyle, Label, TextInput, TextInputStyle};

use crate::harness::*;

struct Echo {
    changes: Arc<AtomicUsize>,
}

#[async_trait]
impl Module for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn description(&self) -> &'static str {
        "Test module"
    }
    fn settings(&self) -> Vec<SettingSpec> {
        vec![SettingSpec::new("echo.prefix", SettingKind::String { max_len: 10 }, json!(">"), "Prefix")]
    }
    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("echo", "Echo text", Access::Everyone)
                .option(OptionSpec::string("text", "Text").required()),
            CommandSpec::new("slow", "Takes its time", Access::Everyone).public(),
            CommandSpec::new("slowfail", "Takes its time, then refuses", Access::Everyone).public(),
            CommandSpec::new("panel", "A button", Access::Everyone),
            CommandSpec::new("form", "A modal", Access::Everyone),
            CommandSpec::new("staffonly", "Staff only", Access::Staff),
        ]
    }
    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        match ctx.name.as_str() {
            "echo" => {
                let prefix = ctx.app.settings.get_string(&ctx.guild, "echo.prefix").await?;
                let text = ctx.options.str("text").unwrap_or_default();
                ctx.reply(Reply::text(format!("{prefix} {text}"))).await
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(3200)).await;
                ctx.reply(Reply::text("finally")).await
            }
            "slowfail" => {
                tokio::time::sleep(Duration::from_millis(3200)).await;
                Err(beacon_framework::HandlerError::user("Not today."))
            }
            "panel" => {
                let b = button("echo:click", "Click", ButtonStyle::Primary);
                ctx.reply(Reply::text("panel").with_components(vec![row(vec![b])])).await
            }
            "form" => {
                let input = Component::TextInput(TextInput {
                    custom_id: "topic".into(),
                    id: None,
                    #[allow(deprecated)]
                    label: None,
                    max_length: Some(100),
                    min_length: None,
                    placeholder: None,
                    required: Some(true),
                    style: TextInputStyle::Short,
                    value: None,
                });
                let label = Component::Label(Label {
                    component: Box::new(input),
                    description: None,
                    id: None,
                    label: "Topic".into(),
                });
                ctx.responder.modal("echo:form", "Tell us", vec![label])
            }
            _ => ctx.reply(Reply::text("staff ok")).await,
        }
    }
    async fn component(&self, ctx: ComponentCtx) -> HandlerResult {
        ctx.responder.update(Reply::text(format!("clicked {} by <@{}>", ctx.action(), ctx.user_id()))).await
    }
    async fn modal(&self, ctx: ModalCtx) -> HandlerResult {
        ctx.reply(Reply::text(format!("topic: {}", ctx.field("topic").unwrap_or("?"))).ephemeral()).await
    }
    async fn setting_changed(
        &self,
        _app: &Arc<beacon_framework::App>,
        change: &beacon_framework::settings::SettingChanged,
    ) {
        if change.key.starts_with("echo.") {
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn spawn_echo() -> (TestApp, Arc<AtomicUsize>) {
    let changes = Arc::new(AtomicUsize::new(0));
    let t = TestApp::spawn_with(Options {
        modules: vec![Arc::new(Echo { changes: changes.clone() })],
        ..Options::default()
    })
    .await;
    (t, changes)
}

#[tokio::test]
async fn settings_reach_handlers_and_listeners_without_restart() {
    let (t, changes) = spawn_echo().await;
    let bob = t.member("bob");
    let out = t.command(bob, "echo", json!([opt_str("text", "hi")]), Delivery::Gateway).await;
    assert_eq!(out.data["content"], "> hi");
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "echo.prefix"), opt_str("value", "!!")])),
        Delivery::Http,
    )
    .await;
    let out = t.command(bob, "echo", json!([opt_str("text", "hi")]), Delivery::Gateway).await;
    assert_eq!(out.data["content"], "!! hi");
    let deadline = tokio::time::Instant::now() + WAIT;
    while changes.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "listener never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.stop().await;
}

/// A setting changed through one process fires the listeners of every process sharing the
/// database — each once, its own change included.
#[tokio::test]
async fn setting_listeners_fire_in_every_process_sharing_the_database() {
    let data = tempfile::tempdir().unwrap();
    let env = vec![("BEACON_DATABASE_URL".to_owned(), format!("sqlite://{}/shared.db", data.path().display()))];
    let first = Arc::new(AtomicUsize::new(0));
    let t = TestApp::spawn_with(Options {
        env: env.clone(),
        modules: vec![Arc::new(Echo { changes: first.clone() })],
        ..Options::default()
    })
    .await;
    let second_dir = tempfile::tempdir().unwrap();
    let config = test_config_with(&t.fake, &second_dir, true, false, &env);
    let second = Arc::new(AtomicUsize::new(0));
    let other =
        beacon::run::start_with(Arc::new(config), vec![Arc::new(Echo { changes: second.clone() })]).await.unwrap();
    let wait_for = |counter: Arc<AtomicUsize>, n: usize, who: &'static str| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        while counter.load(Ordering::SeqCst) < n {
            assert!(tokio::time::Instant::now() < deadline, "{who}'s listener never saw change {n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Changed through the first process: the second's listener fires too.
    let set = |value: &str| sub("set", json!([opt_str("key", "echo.prefix"), opt_str("value", value)]));
    t.command(t.owner(), "config", set("!!"), Delivery::Http).await;
    wait_for(first.clone(), 1, "the first process").await;
    wait_for(second.clone(), 1, "the second process").await;
    // Changed through the second process: the first's listener fires, and nobody's fires twice.
    t.fake.set_interactions_endpoint(&format!("http://{}/interactions", other.addr));
    t.command(t.owner(), "config", set("??"), Delivery::Http).await;
    wait_for(second.clone(), 2, "the second process").await;
    wait_for(first.clone(), 2, "the first process").await;
    assert_eq!(second.load(Ordering::SeqCst), 2, "the second process announced a change twice");
    assert_eq!(first.load(Ordering::SeqCst), 2, "the first process announced a change twice");
    other.shutdown().await;
    t.stop().await;
}

#[tokio::test]
async fn a_disabled_module_refuses_clearly_in_that_guild_only() {
    let (t, _) = spawn_echo().await;
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "echo.enabled"), opt_str("value", "false")])),
        Delivery::Http,
    )
    .await;
    let out = t.command(t.member("bob"), "echo", json!([opt_str("text", "hi")]), Delivery::Http).await;
    assert!(is_ephemeral(&out));
    assert!(text_of(&out).contains("echo module is turned off"), "{}", text_of(&out));
    // Another guild is unaffected.
    let other = t.fake.create_guild(guild_spec());
    let mut inv = t.invocation(other.members[2].user_id, "echo", json!([opt_str("text", "yo")]));
    inv.guild_id = other.id;
    inv.channel_id = other.channels[0].id;
    let h = t.fake.invoke_command(inv, Delivery::Http).await.unwrap();
    let out = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(out.data["content"], "> yo");
    t.stop().await;
}

#[tokio::test]
async fn slow_handlers_are_deferred_then_edited() {
    let (t, _) = spawn_echo().await;
    for via in [Delivery::Http, Delivery::Gateway] {
        let out = t.command(t.member("bob"), "slow", json!([]), via).await;
        assert_eq!(out.kind, 5, "{via:?}: {out:?}");
        assert_eq!(out.data["content"], "finally", "{via:?}: {out:?}");
        // A public command deferred stays public (before, every defer was private).
        assert_eq!(out.data["flags"].as_u64().unwrap_or(0) & 64, 0, "{via:?}: {out:?}");
    }
    // Its error is for the caller only: the public placeholder goes, the message follows privately.
    let handle =
        t.fake.invoke_command(t.invocation(t.member("bob"), "slowfail", json!([])), Delivery::Http).await.unwrap();
    let followups = t.fake.wait_followups(&handle, 1, WAIT).await.unwrap();
    assert_eq!(followups[0]["flags"].as_u64().unwrap_or(0) & 64, 64, "{followups:?}");
    assert!(followups[0]["content"].as_str().unwrap_or_default().contains("Not today."), "{followups:?}");
    t.fake.wait_for_request("DELETE", "/messages/@original", WAIT).await.expect("the public placeholder is deleted");
    t.stop().await;
}

#[tokio::test]
async fn long_replies_are_split_without_breaking_code_blocks() {
    let (t, _) = spawn_echo().await;
    let long = format!("```rust\n{}\n```", "let x = 1;\n".repeat(400));
    let handle = t
        .fake
        .invoke_command(t.invocation(t.member("bob"), "echo", json!([opt_str("text", &long)])), Delivery::Http)
        .await
        .unwrap();
    let out = t.fake.wait_response(&handle, WAIT).await.unwrap();
    let followups = match t.fake.wait_followups(&handle, 2, WAIT).await {
        Ok(f) => f,
        Err(e) => panic!("{e}: {:#?} {:#?}", t.fake.requests(), t.fake.violations()),
    };
    let mut parts = vec![out.data["content"].as_str().unwrap().to_owned()];
    parts.extend(followups.iter().map(|f| f["content"].as_str().unwrap_or("").to_owned()));
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for p in &parts {
        assert!(p.chars().count() <= 2000);
        assert_eq!(p.matches("```").count() % 2, 0, "unbalanced fence in {p}");
    }
    t.stop().await;
}

#[tokio::test]
async fn buttons_and_modals_route_to_their_module() {
    let (t, _) = spawn_echo().await;
    let bob = t.member("bob");
    let general = t.channel("general");
    let out = t.command(bob, "panel", json!([]), Delivery::Gateway).await;
    assert_eq!(out.data["components"][0]["components"][0]["custom_id"], "echo:click");
    let message_id =
        t.fake.messages(general).last().and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok())).unwrap_or(1);
    for via in [Delivery::Gateway, Delivery::Http] {
        let h = t.fake.click_button(t.guild.id, general, bob, message_id, "echo:click", via).await.unwrap();
        let out = t.fake.wait_response(&h, WAIT).await.unwrap();
        assert_eq!(out.kind, 7, "{via:?}: {out:?}");
        assert_eq!(out.data["content"], format!("clicked click by <@{bob}>"));
    }
    let out = t.command(bob, "form", json!([]), Delivery::Http).await;
    assert_eq!(out.kind, 9, "{out:?}");
    assert_eq!(out.data["custom_id"], "echo:form");
    let h = t
        .fake
        .submit_modal(t.guild.id, general, bob, "echo:form", &[("topic", "billing")], Delivery::Gateway)
        .await
        .unwrap();
    let out = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(out.data["content"], "topic: billing");
    t.stop().await;
}

#[tokio::test]
async fn staff_commands_need_a_staff_role() {
    let (t, _) = spawn_echo().await;
    let bob = t.member("bob");
    let out = t.command(bob, "staffonly", json!([]), Delivery::Http).await;
    assert!(text_of(&out).contains("Only staff"), "{}", text_of(&out));
    t.stop().await;
}

#[path = "../../examples/notes_module.rs"]
mod notes_example;

/// The module author's example (`examples/notes_module.rs`) in the real app: its command, its
/// table (declared, so a purge removes it), its export under the framework's `/export`, its
/// `/status` field.
#[tokio::test]
async fn module_author_example() {
    use beacon_testkit::Delivery;
    use serde_json::json;
    beacon_http::install_crypto_provider();
    let t = TestApp::spawn_with(Options {
        modules: vec![std::sync::Arc::new(notes_example::NotesModule)],
        ..Options::default()
    })
    .await;
    let owner = t.owner();
    let out = t
        .command(owner, "memo", sub("add", json!([opt_str("text", "bob asked about refunds twice")])), Delivery::Http)
        .await;
    assert_eq!(text_of(&out).trim(), "Noted.");
    let out = t.command(owner, "memo", sub("list", json!([])), Delivery::Gateway).await;
    assert!(text_of(&out).contains("refunds twice"), "{}", text_of(&out));
    let bob = t.command(t.member("bob"), "memo", sub("list", json!([])), Delivery::Http).await;
    assert!(!text_of(&bob).contains("refunds"), "members are not staff: {}", text_of(&bob));
    let status = t.command(owner, "status", json!([]), Delivery::Http).await;
    assert!(text_of(&status).contains("1 kept"), "{}", text_of(&status));
    assert!(t.app().store.declared_guild_tables().contains(&"example_notes"));
    assert_eq!(t.app().store.undeclared_guild_tables().await.unwrap(), Vec::<String>::new());
    let export = t.command(owner, "export", sub("notes", json!([])), Delivery::Http).await;
    assert!(text_of(&export).contains("1 note(s)."), "{}", text_of(&export));
    t.app().purge_guild(t.guild.id).await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM example_notes").fetch_one(t.app().store.pool()).await.unwrap();
    assert_eq!(left, 0);
    t.stop().await;
}

/// A job and a handler that never finish do not hold the process past the grace period: the
/// shards, the HTTP server, the jobs and the handlers are waited for side by side under one
/// deadline (before, each had its own and the waits added up past the promised 10 s).
#[tokio::test]
async fn shutdown_waits_once_for_everything_slow() {
    use beacon_testkit::Delivery;

    struct Stuck;
    #[async_trait]
    impl beacon_jobs::JobHandler for Stuck {
        async fn run(&self, _job: &beacon_jobs::Job) -> Result<(), beacon_jobs::Failure> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }
    struct Slow(Arc<AtomicUsize>);
    #[async_trait]
    impl Module for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn description(&self) -> &'static str {
            "never finishes"
        }
        fn commands(&self) -> Vec<CommandSpec> {
            vec![CommandSpec::new("stall", "Never answers", Access::Everyone)]
        }
        fn jobs(&self, _app: &Arc<beacon_framework::App>) -> Vec<beacon_framework::JobKind> {
            vec![beacon_framework::JobKind::new("slow.stuck", Arc::new(Stuck))]
        }
        async fn command(&self, _ctx: CommandCtx) -> HandlerResult {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }

    beacon_http::install_crypto_provider();
    let started = Arc::new(AtomicUsize::new(0));
    let mut t = TestApp::spawn_with(Options {
        modules: vec![Arc::new(Slow(started.clone()))],
        env: vec![("BEACON_SHUTDOWN_GRACE".into(), "3s".into())],
        ..Options::default()
    })
    .await;
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    jobs.schedule(t.guild.id, "slow.stuck", &serde_json::json!({}), beacon_store::now_ms(), None).await.unwrap();
    let invocation = t.invocation(t.owner(), "stall", serde_json::json!([]));
    t.fake.invoke_command(invocation, Delivery::Gateway).await.unwrap();
    while started.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the runner its poll (1 s) to lease the due job.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let running = t.running.take().unwrap();
    // 3 s of grace, awaited once: well inside 5 s (it took 6 s and more when the waits added up).
    tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await.expect("shutdown keeps to the grace period");
}
