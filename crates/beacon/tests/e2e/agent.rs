//! The agent bridge end to end: the testkit's fake agent service (slow activation and sends,
//! every error) driven through the fake Discord — register through a private form, create,
//! activate, ask in a new session's thread, continue it by writing in the thread, continue it by
//! name, split a long answer, delete with confirmation — and every error a member can meet.

use std::sync::Arc;
use std::time::Duration;

use beacon_testkit::Delivery;
use beacon_testkit::agent::FakeAgent;
use serde_json::{Value, json};

use crate::harness::*;

/// Beacon with the agent module (progress shown every 100 ms), enabled in the test guild.
async fn with_agent(fake: &FakeAgent, timeout: Duration) -> TestApp {
    let settings = beacon_config::AgentSettings { api_url: fake.base_url(), timeout };
    let module = beacon_agent::AgentModule::new(&settings).unwrap().with_progress_interval(Duration::from_millis(100));
    let t = TestApp::spawn_with(Options { modules: vec![Arc::new(module)], ..Options::default() }).await;
    let out = t
        .command(
            t.owner(),
            "config",
            sub("set", json!([opt_str("key", "agent.enabled"), opt_str("value", "true")])),
            Delivery::Http,
        )
        .await;
    assert!(!text_of(&out).contains("must"), "{}", text_of(&out));
    t
}

async fn register(t: &TestApp, user: u64, service_user: &str, key: &str) -> String {
    let out = t.command(user, "agent", sub("register", json!([])), Delivery::Http).await;
    assert_eq!(out.kind, 9, "a private form: {out:?}");
    let h = t
        .fake
        .submit_modal(
            t.guild.id,
            t.channel("general"),
            user,
            "agent:register",
            &[("service_user", service_user), ("api_key", key)],
            Delivery::Http,
        )
        .await
        .unwrap();
    text_of(&t.fake.wait_response(&h, WAIT).await.unwrap())
}

fn opt(name: &str, value: &str) -> Value {
    opt_str(name, value)
}

/// Everything Beacon sent to the fake Discord.
fn discord_output(t: &TestApp) -> String {
    t.fake.requests().iter().map(|r| serde_json::to_string(&r.body).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

async fn wait_thread_message(t: &TestApp, thread: u64, needle: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(m) =
            t.fake.messages(thread).into_iter().find(|m| m["content"].as_str().unwrap_or("").contains(needle))
        {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {needle:?} in thread {thread}: {:#?}",
            t.fake.messages(thread)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn session_thread(t: &TestApp) -> (u64, String) {
    let row: (i64, String) = sqlx::query_as(
        "SELECT thread_id, session_id FROM agent_threads WHERE guild_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    (row.0 as u64, row.1)
}

/// Every log line of this test process (nextest runs each test in its own process), at TRACE.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Logs {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test's process has no other subscriber");
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn register_create_activate_ask_continue_in_the_thread_and_delete() {
    let logs = Logs::capture();
    let fake = FakeAgent::start().await.unwrap();
    let key = fake.add_user("u-bob");
    fake.set_activation_delay(Duration::from_millis(400));
    fake.set_send_delay(Duration::from_millis(400));
    let t = with_agent(&fake, Duration::from_secs(5)).await;
    let bob = t.member("bob");

    // A wrong key is checked against the service and nothing is kept.
    let text = register(&t, bob, "u-bob", "bbx-wrong").await;
    assert!(text.contains("refused that API key, so nothing was saved"), "{text}");
    let text = register(&t, bob, "u-bob", &key).await;
    assert!(text.contains("Connected as **u-bob** (0 projects)"), "{text}");
    let sealed: String =
        sqlx::query_scalar("SELECT api_key_sealed FROM agent_accounts WHERE guild_id = $1 AND user_id = $2")
            .bind(t.guild.id as i64)
            .bind(bob as i64)
            .fetch_one(t.app().store.pool())
            .await
            .unwrap();
    assert!(!sealed.contains(&key) && !sealed.contains("bbx-"), "the key is sealed at rest: {sealed}");
    let out = t.command(bob, "agent", sub("whoami", json!([])), Delivery::Http).await;
    assert!(is_ephemeral(&out));
    assert!(text_of(&out).contains("Agent service user **u-bob**"), "{}", text_of(&out));

    let out = t
        .command(
            bob,
            "projects",
            sub("create", json!([opt("name", "backend"), opt("repo_url", "https://git.example/backend")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("Project **backend** created (inactive)"), "{}", text_of(&out));
    // Asking an inactive project offers its Activate button.
    let out = t
        .command(
            bob,
            "agent",
            sub("ask", json!([opt("message", "Add a health check"), opt("project", "backend")])),
            Delivery::Http,
        )
        .await;
    let all = serde_json::to_string(&out.followups).unwrap() + &serde_json::to_string(&out.data).unwrap();
    assert!(text_of(&out).contains("Project **backend** is not active"), "{}", text_of(&out));
    assert!(all.contains("agent:activate:proj_"), "{all}");
    // Autocomplete offers the member's own projects.
    let h = t.fake.autocomplete(t.invocation(bob, "projects", json!([{ "name": "activate", "type": 1, "options": [{ "name": "project", "type": 3, "value": "back", "focused": true }] }])), Delivery::Http).await.unwrap();
    let choices = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(choices.data["choices"][0]["value"], "backend", "{choices:?}");

    let out = t.command(bob, "projects", sub("activate", json!([opt("project", "backend")])), Delivery::Http).await;
    assert!(text_of(&out).contains("Project **backend** is active."), "{}", text_of(&out));
    assert_eq!(fake.projects("u-bob"), vec![("backend".to_owned(), true)]);

    // A new session: its thread holds the question and the answer; the response points there.
    // `/agent use` remembers the project, so the next ask leaves it out.
    let out = t.command(bob, "agent", sub("use", json!([opt("project", "backend")])), Delivery::Http).await;
    assert!(text_of(&out).contains("Your current project is **backend**."), "{}", text_of(&out));
    fake.push_reply("Added `GET /health` returning 200.");
    let out = t.command(bob, "agent", sub("ask", json!([opt("message", "Add a health check")])), Delivery::Http).await;
    let (thread, session) = session_thread(&t).await;
    assert!(text_of(&out).contains(&format!("answered in <#{thread}>")), "{}", text_of(&out));
    wait_thread_message(&t, thread, "Add a health check").await;
    wait_thread_message(&t, thread, "Added `GET /health` returning 200.").await;
    let progress =
        t.fake.requests().into_iter().filter(|r| r.method == "PATCH" && r.body.to_string().contains("so far")).count();
    assert!(progress >= 1, "the elapsed time was shown while the agent worked");

    // The owner's plain message in the thread continues the session; another member's does not.
    t.fake.send_message(t.guild.id, thread, t.member("alice-admin"), "nice work").await.unwrap();
    fake.push_reply("Readiness check added too.");
    t.fake.send_message(t.guild.id, thread, bob, "and a readiness check?").await.unwrap();
    wait_thread_message(&t, thread, "Readiness check added too.").await;
    assert_eq!(fake.messages(&session), vec!["Add a health check", "and a readiness check?"]);

    // Continue it by name; a long answer is split without breaking its code block, and the
    // session stays in its thread.
    let code: String = (0..100).map(|i| format!("fn check_{i}() -> bool {{ true }}\n")).collect();
    let long = format!("Here is the code:\n```rust\n{code}```\nDone.");
    assert!(long.len() > 2_500);
    fake.push_reply(&long);
    let session_name: String = sqlx::query_scalar("SELECT session_name FROM agent_threads WHERE thread_id = $1")
        .bind(thread as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    let out = t
        .command(
            bob,
            "agent",
            sub(
                "ask-session",
                json!([opt("session", &session_name), opt("message", "Write the checks"), opt("project", "backend")]),
            ),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains(&format!("<#{thread}>")), "{}", text_of(&out));
    wait_thread_message(&t, thread, "Done.").await;
    let bot = t.fake.application_id().to_string();
    let parts: Vec<String> = t
        .fake
        .messages(thread)
        .into_iter()
        .filter(|m| m["author"]["id"].as_str() == Some(bot.as_str()))
        .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        .skip_while(|c| !c.starts_with("Here is the code"))
        .collect();
    assert!(parts.len() >= 2, "{parts:#?}");
    for p in &parts {
        assert!(p.chars().count() <= 2000);
        assert_eq!(p.matches("```").count() % 2, 0, "fences balanced in every part: {p}");
    }

    // Delete the session, then the project, each after a confirmation.
    let out = t
        .command(
            bob,
            "sessions",
            sub("delete", json!([opt("session", &session_name), opt("project", "backend")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("This cannot be undone"), "{}", text_of(&out));
    let message = t
        .fake
        .messages(t.channel("general"))
        .into_iter()
        .rev()
        .find(|m| m.to_string().contains("agent:delete-session:"))
        .expect("confirmation message");
    let id = message["id"].as_str().unwrap().parse::<u64>().unwrap();
    let custom = format!(
        "agent:delete-session:{}",
        message.to_string().split("agent:delete-session:").nth(1).unwrap().split('"').next().unwrap()
    );
    let h = t.fake.click_button(t.guild.id, t.channel("general"), bob, id, &custom, Delivery::Http).await.unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("Session deleted."));
    assert!(fake.messages(&session).is_empty(), "the service no longer has the session");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_threads WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);

    assert!(!discord_output(&t).contains(&key), "the API key never reached Discord");
    let logged = logs.text();
    assert!(logged.contains("agent account registered"), "the logs were captured");
    assert!(!logged.contains(&key), "the API key is in no log line");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_clear_message() {
    let fake = FakeAgent::start().await.unwrap();
    let key = fake.add_user("u-bob");
    let t = with_agent(&fake, Duration::from_millis(800)).await;
    let bob = t.member("bob");
    let ask = |message: &str, project: &str| sub("ask", json!([opt("message", message), opt("project", project)]));

    let out = t.command(bob, "projects", sub("list", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("not registered with the agent service on this server"), "{}", text_of(&out));
    register(&t, bob, "u-bob", &key).await;
    t.command(bob, "projects", sub("create", json!([opt("name", "backend")])), Delivery::Http).await;
    t.command(bob, "projects", sub("activate", json!([opt("project", "backend")])), Delivery::Http).await;

    let out = t.command(bob, "agent", ask("hi", "bakend"), Delivery::Http).await;
    assert!(text_of(&out).contains("no project named **bakend**. Did you mean **backend**?"), "{}", text_of(&out));
    let out = t.command(bob, "agent", sub("ask", json!([opt("message", "hi")])), Delivery::Http).await;
    assert!(text_of(&out).contains("pick one once with `/agent use`"), "{}", text_of(&out));

    fake.fail_next(401, "Invalid API key");
    let out = t.command(bob, "projects", sub("list", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("refused your API key (401)"), "{}", text_of(&out));
    fake.fail_next(503, "pods unavailable");
    let out = t.command(bob, "projects", sub("list", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("failed (503): pods unavailable"), "{}", text_of(&out));
    fake.fail_next(400, "name too long for the service");
    let out = t.command(bob, "projects", sub("create", json!([opt("name", "x")])), Delivery::Http).await;
    assert!(text_of(&out).contains("refused the request: name too long for the service"), "{}", text_of(&out));

    // A send that outlasts the timeout is reported and never sent again.
    fake.set_send_delay(Duration::from_millis(1500));
    let out = t.command(bob, "agent", ask("slow one", "backend"), Delivery::Http).await;
    assert!(text_of(&out).contains("did not answer within"), "{}", text_of(&out));
    let sends = fake.requests().into_iter().filter(|r| r.path.ends_with("/messages/send")).count();
    assert_eq!(sends, 1, "no retry after a timeout");
    let errors: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM agent_calls WHERE guild_id = $1 AND outcome = 'timeout'")
            .bind(t.guild.id as i64)
            .fetch_one(t.app().store.pool())
            .await
            .unwrap();
    assert_eq!(errors, 1);
    let metrics = t.app().metrics.render();
    assert!(
        metrics.contains("beacon_external_calls_total{service=\"agent\",op=\"send\",outcome=\"timeout\"} 1"),
        "{metrics}"
    );
    let out = t.command(bob, "status", json!([]), Delivery::Http).await;
    assert!(text_of(&out).contains("Agent service: last 24 h:"), "{}", text_of(&out));
    let mine = text_of(&out).lines().find(|l| l.starts_with("Your agent use: ")).map(str::to_owned);
    let mine = mine.unwrap_or_else(|| panic!("the member's own use is in /status: {}", text_of(&out)));
    assert!(mine.contains("errors") && !mine.contains("0 calls"), "{mine}");
    let out = t.command(t.member("alice-admin"), "status", json!([]), Delivery::Http).await;
    assert!(!text_of(&out).contains("Your agent use"), "only for registered members: {}", text_of(&out));

    // A member without an agent role is refused once roles are set.
    let staff = t.role("staff").to_string();
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "agent.roles"), opt_str("value", &format!("<@&{staff}>"))])),
        Delivery::Http,
    )
    .await;
    let out = t.command(bob, "agent", sub("whoami", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("for members with one of the agent roles"), "{}", text_of(&out));
    assert!(!discord_output(&t).contains(&key));
    t.stop().await;
}

/// Two workers sharing the database (and Redis, for the per-session lock) serve the same
/// session: the thread map and the sealed keys are in the database, so the second worker opens
/// the member's key and answers into the thread the first one created; the first (the one with
/// the gateway) continues it from the member's message there.
#[tokio::test(flavor = "multi_thread")]
async fn two_workers_sharing_the_database_serve_the_same_session_thread() {
    let Some(redis) = beacon_testkit::services::redis_url() else { return };
    let fake = FakeAgent::start().await.unwrap();
    let key = fake.add_user("u-bob");
    let data = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("BEACON_DATABASE_URL", format!("sqlite://{}/shared.db", data.path().display())),
        ("BEACON_REDIS_URL", redis),
        ("BEACON_SECRET_KEY", "7".repeat(64)),
        ("BEACON_AGENT_API_URL", fake.base_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let t = TestApp::spawn_with(Options { env: env.clone(), ..Options::default() }).await;
    let enable = sub("set", json!([opt_str("key", "agent.enabled"), opt_str("value", "true")]));
    t.command(t.owner(), "config", enable, Delivery::Http).await;
    let bob = t.member("bob");
    assert!(register(&t, bob, "u-bob", &key).await.contains("Connected"));
    t.command(bob, "projects", sub("create", json!([opt("name", "backend")])), Delivery::Http).await;
    t.command(bob, "projects", sub("activate", json!([opt("project", "backend")])), Delivery::Http).await;
    fake.push_reply("First worker here.");
    t.command(bob, "agent", sub("ask", json!([opt("message", "Start"), opt("project", "backend")])), Delivery::Http)
        .await;
    let (thread, session) = session_thread(&t).await;
    wait_thread_message(&t, thread, "First worker here.").await;

    let second_dir = tempfile::tempdir().unwrap();
    let config = test_config_with(&t.fake, &second_dir, true, false, &env);
    let second = beacon::run::start(Arc::new(config)).await.unwrap();
    t.fake.set_interactions_endpoint(&format!("http://{}/interactions", second.addr));
    fake.push_reply("Second worker here.");
    let name: String = sqlx::query_scalar("SELECT session_name FROM agent_threads WHERE thread_id = $1")
        .bind(thread as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    let continue_it =
        sub("ask-session", json!([opt("session", &name), opt("message", "Go on"), opt("project", "backend")]));
    let out = t.command(bob, "agent", continue_it, Delivery::Http).await;
    assert!(text_of(&out).contains(&format!("<#{thread}>")), "{}", text_of(&out));
    wait_thread_message(&t, thread, "Second worker here.").await;

    fake.push_reply("Back on the first worker.");
    t.fake.send_message(t.guild.id, thread, bob, "and now?").await.unwrap();
    wait_thread_message(&t, thread, "Back on the first worker.").await;
    assert_eq!(fake.messages(&session), vec!["Start", "Go on", "and now?"]);
    second.shutdown().await;
    t.stop().await;
}

/// The rest of what a member does: the module is off until enabled; one message in flight per
/// member and session; project info, deactivate, the Activate button, sessions list and create,
/// deleting a project through its confirmation; and a very long answer also comes as a file.
#[tokio::test(flavor = "multi_thread")]
async fn one_message_at_a_time_buttons_listings_and_a_file_for_very_long_answers() {
    let fake = FakeAgent::start().await.unwrap();
    let key = fake.add_user("u-bob");
    let settings = beacon_config::AgentSettings { api_url: fake.base_url(), timeout: Duration::from_secs(5) };
    let module = beacon_agent::AgentModule::new(&settings).unwrap().with_progress_interval(Duration::from_millis(100));
    let t = TestApp::spawn_with(Options { modules: vec![Arc::new(module)], ..Options::default() }).await;
    let bob = t.member("bob");
    let general = t.channel("general");
    let out = t.command(bob, "agent", sub("whoami", json!([])), Delivery::Http).await;
    assert!(
        text_of(&out).contains("The agent module is turned off in this server"),
        "off until enabled: {}",
        text_of(&out)
    );
    let enable = sub("set", json!([opt_str("key", "agent.enabled"), opt_str("value", "true")]));
    t.command(t.owner(), "config", enable, Delivery::Http).await;
    // Plain answers in the channel (no threads) for this test.
    let threads = sub("set", json!([opt_str("key", "agent.threads"), opt_str("value", "false")]));
    t.command(t.owner(), "config", threads, Delivery::Http).await;
    register(&t, bob, "u-bob", &key).await;
    t.command(bob, "projects", sub("create", json!([opt("name", "backend")])), Delivery::Http).await;

    // Info of an inactive project offers Activate; the button starts it.
    let out = t.command(bob, "projects", sub("info", json!([opt("project", "backend")])), Delivery::Http).await;
    assert!(text_of(&out).contains("**backend** · ⚪ inactive"), "{}", text_of(&out));
    let message =
        t.fake.messages(general).into_iter().rev().find(|m| m.to_string().contains("agent:activate:")).unwrap();
    let custom = format!(
        "agent:activate:{}",
        message.to_string().split("agent:activate:").nth(1).unwrap().split('"').next().unwrap()
    );
    let id: u64 = message["id"].as_str().unwrap().parse().unwrap();
    let h = t.fake.click_button(t.guild.id, general, bob, id, &custom, Delivery::Http).await.unwrap();
    let mut out = t.fake.wait_response(&h, WAIT).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !text_of(&out).contains("is active") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        out = t.fake.wait_response(&h, WAIT).await.unwrap();
    }
    assert!(text_of(&out).contains("Project **backend** is active."), "{}", text_of(&out));

    let out = t
        .command(
            bob,
            "sessions",
            sub("create", json!([opt("name", "refactor"), opt("project", "backend")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("Session **refactor** created in **backend**."), "{}", text_of(&out));
    let out = t.command(bob, "sessions", sub("list", json!([opt("project", "backend")])), Delivery::Http).await;
    assert!(text_of(&out).contains("**refactor** (0 messages)"), "{}", text_of(&out));

    // Two messages to one session at once: the second is refused, the service sees one.
    fake.set_send_delay(Duration::from_millis(1500));
    let first = t
        .fake
        .invoke_command(
            t.invocation(
                bob,
                "agent",
                sub(
                    "ask-session",
                    json!([opt("session", "refactor"), opt("message", "first"), opt("project", "backend")]),
                ),
            ),
            Delivery::Http,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = t
        .command(
            bob,
            "agent",
            sub(
                "ask-session",
                json!([opt("session", "refactor"), opt("message", "second"), opt("project", "backend")]),
            ),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("still working on your previous message"), "{}", text_of(&out));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let done = t.fake.wait_response(&first, WAIT).await.unwrap();
        if text_of(&done).contains("Agent: first") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", text_of(&done));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.max_concurrent_sends(), 1);

    // A very long answer: split messages, and the whole answer as a file.
    fake.set_send_delay(Duration::from_millis(10));
    let long: String = (0..400).map(|i| format!("Line {i} of the report.\n")).collect();
    assert!(long.len() > 6_000);
    fake.push_reply(&long);
    t.command(
        bob,
        "agent",
        sub("ask-session", json!([opt("session", "refactor"), opt("message", "report"), opt("project", "backend")])),
        Delivery::Http,
    )
    .await;
    let sent_file = t.fake.requests().into_iter().any(|r| r.body.to_string().contains("agent-answer.md"));
    assert!(sent_file, "the long answer also came as a file");

    let out = t.command(bob, "projects", sub("deactivate", json!([opt("project", "backend")])), Delivery::Http).await;
    assert!(text_of(&out).contains("Project **backend** is stopped."), "{}", text_of(&out));
    assert_eq!(fake.projects("u-bob"), vec![("backend".to_owned(), false)]);
    t.command(bob, "projects", sub("delete", json!([opt("project", "backend")])), Delivery::Http).await;
    let message =
        t.fake.messages(general).into_iter().rev().find(|m| m.to_string().contains("agent:delete-project:")).unwrap();
    let custom = format!(
        "agent:delete-project:{}",
        message.to_string().split("agent:delete-project:").nth(1).unwrap().split('"').next().unwrap()
    );
    let id: u64 = message["id"].as_str().unwrap().parse().unwrap();
    let h = t.fake.click_button(t.guild.id, general, bob, id, &custom, Delivery::Http).await.unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("Project deleted."));
    assert!(fake.projects("u-bob").is_empty());
    t.stop().await;
}
