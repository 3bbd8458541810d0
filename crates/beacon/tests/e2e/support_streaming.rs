//! LLM answers streamed into Discord, end to end: the fake LLM streams (SSE) a long answer in many
//! chunks with a delay between them; Beacon posts early (a mention's reply, or `/ask`'s
//! response), edits it as text arrives at the production edit interval, and at the end splits
//! the final text at 2,000 characters. The fake Discord answers no request with a 429 and records
//! no spec violation; no intermediate edit shows a half citation marker or pings anyone. A stream
//! that breaks mid-way leaves no half answer behind: the message becomes the extractive answer.

use std::time::Duration;

use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};
use beacon_testkit::{Delivery, RecordedRequest};
use serde_json::{Value, json};

use crate::harness::*;

const KEY: &str = "sk-beacon-stream-KEY-0123456789abcdefghij";

/// Long enough for ≥ 2 edits at the production interval, short enough for a quick test.
const PIECES: usize = 50;
const GAP: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(40);

const DOCS: &[(&str, &str)] = &[(
    "refunds.md",
    "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page, choose the order and press Request refund. Refunds reach your card in 5 business days.\n",
)];

/// Beacon using the fake LLM (OpenAI dialect), with the refunds document ingested.
async fn with_streaming_llm(fake: &FakeLlm) -> TestApp {
    let env = [
        ("BEACON_LLM_PROVIDER", "openai".to_owned()),
        ("BEACON_LLM_API_KEY", KEY.to_owned()),
        ("BEACON_LLM_BASE_URL", fake.openai_base_url()),
        ("BEACON_LLM_MAX_RETRIES", "0".to_owned()),
        ("BEACON_LLM_TIMEOUT", "5s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let t = TestApp::spawn_with(Options { env, ..Options::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in DOCS {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    t
}

/// A grounded answer of about 2,600 characters, every sentence citing passage 1; one sentence
/// mentions @everyone (defused in every edit).
fn long_answer() -> String {
    let mut sentences: Vec<String> =
        (1..=40).map(|i| format!("Step {i}: open the billing page and press Request refund [1].")).collect();
    sentences[3] = "Tell @everyone in your team that refunds take 14 days [1].".to_owned();
    sentences.join(" ")
}

/// What Beacon posts for `answer` in the end: the answer, its cited source, split at 2,000.
fn expected_parts(answer: &str) -> Vec<String> {
    let defused = beacon_discord::mentions::defuse(answer);
    let full = format!("{defused}\n\n-# [1] **Refunds**");
    let parts = beacon_discord::split::split_message(&full, 2000);
    assert!(parts.len() >= 2, "the answer must need two messages");
    parts
}

fn content(body: &Value) -> &str {
    body["content"].as_str().unwrap_or_default()
}

/// Every `[` in `text` opens a complete marker `[n]`.
fn no_half_markers(text: &str) -> bool {
    text.match_indices('[').all(|(i, _)| {
        let rest = &text[i + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(']')
    })
}

fn assert_clean(edits: &[RecordedRequest]) {
    for edit in edits {
        let text = content(&edit.body);
        assert!(no_half_markers(text), "a half citation marker was shown: {text}");
        assert!(!text.contains("@everyone") && !text.contains(KEY), "{text}");
        assert_eq!(edit.body["allowed_mentions"]["parse"], json!([]), "{:?}", edit.body);
    }
}

fn assert_no_429s_or_violations(t: &TestApp) {
    let requests = t.fake.requests();
    let limited: Vec<&RecordedRequest> = requests.iter().filter(|r| r.status == 429).collect();
    assert!(limited.is_empty(), "the fake Discord answered 429: {limited:#?}");
    assert!(t.fake.violations().is_empty(), "{:#?}", t.fake.violations());
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_is_answered_by_a_streamed_message_edited_then_split() {
    let fake = FakeLlm::start().await.unwrap();
    let answer = long_answer();
    fake.push(Dialect::OpenAi, FakeReply::text(&answer).usage(FakeUsage::new(400, 600)).paced(PIECES, GAP));
    let t = with_streaming_llm(&fake).await;
    let general = t.channel("general");
    let bot = t.fake.application_id();
    let question =
        t.fake.send_message(t.guild.id, general, t.member("bob"), &format!("<@{bot}> how do I get a refund?")).await;
    let question = question.unwrap();
    let parts = expected_parts(&answer);

    // The final state: the streamed reply holds the first part (with the buttons), the rest follows.
    let (first, rest) = until("the final answer", || {
        let bot_messages: Vec<Value> =
            t.fake.messages(general).into_iter().filter(|m| m["id"].as_str() != Some(&question.to_string())).collect();
        (bot_messages.len() == parts.len() && content(&bot_messages[0]) == parts[0]).then(|| {
            let rest: Vec<String> = bot_messages[1..].iter().map(|m| content(m).to_owned()).collect();
            (bot_messages[0].clone(), rest)
        })
    })
    .await;
    assert_eq!(rest, parts[1..].to_vec());
    assert_eq!(first["message_reference"]["message_id"], json!(question.to_string()), "a reply: {first}");
    assert!(first["components"].as_array().is_some_and(|c| !c.is_empty()), "feedback buttons: {first}");

    // It was posted early and edited while streaming.
    let id = first["id"].as_str().unwrap();
    let requests = t.fake.requests();
    let edits: Vec<RecordedRequest> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with(&format!("/channels/{general}/messages/{id}")))
        .cloned()
        .collect();
    assert!(edits.len() >= 2, "at least two edits: {edits:#?}");
    let first_post = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.starts_with(&format!("/channels/{general}/messages")))
        .unwrap();
    assert!(content(&first_post.body).len() < parts[0].len(), "posted before the answer was complete");
    assert_clean(&edits);
    assert_clean(std::slice::from_ref(first_post));
    let shown: Vec<&str> = edits.iter().map(|e| content(&e.body)).collect();
    assert!(shown[..shown.len() - 1].iter().all(|s| s.ends_with(" …")), "intermediate edits: {shown:#?}");

    let row: (String, String, i64) = sqlx::query_as(
        "SELECT outcome, mode, tokens_out FROM support_answers WHERE guild_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    assert_eq!(row, ("answered".to_owned(), "llm".to_owned(), 600));
    assert!(fake.requests()[0].stream, "the model was asked to stream");
    assert_no_429s_or_violations(&t);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_streams_into_its_response_and_continues_in_a_follow_up() {
    let fake = FakeLlm::start().await.unwrap();
    let answer = long_answer();
    fake.push(Dialect::OpenAi, FakeReply::text(&answer).paced(PIECES, GAP));
    let t = with_streaming_llm(&fake).await;
    let parts = expected_parts(&answer);
    let handle = t
        .fake
        .invoke_command(
            t.invocation(t.member("bob"), "ask", json!([opt_str("question", "How do I get a refund?")])),
            Delivery::Http,
        )
        .await
        .unwrap();
    let first = t.fake.wait_response(&handle, WAIT).await.unwrap();
    assert!(content(&first.data).ends_with(" …"), "the first response is the answer so far: {:?}", first.data);
    // The follow-ups come after the final edit of the response.
    t.fake.wait_followups(&handle, parts.len() - 1, DEADLINE).await.unwrap();
    let outcome = t.fake.wait_response(&handle, WAIT).await.unwrap();
    assert_eq!(content(&outcome.data), parts[0]);
    let followups: Vec<&str> = outcome.followups.iter().map(content).collect();
    assert_eq!(followups, parts[1..].iter().map(String::as_str).collect::<Vec<_>>());
    assert!(outcome.data["components"].as_array().is_some_and(|c| !c.is_empty()), "{:?}", outcome.data);

    let edits: Vec<RecordedRequest> = t
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/messages/@original"))
        .collect();
    assert!(edits.len() >= 2, "at least two edits: {edits:#?}");
    assert_clean(&edits);
    assert_no_429s_or_violations(&t);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_breaks_mid_way_becomes_the_extractive_answer() {
    let fake = FakeLlm::start().await.unwrap();
    let partial = long_answer()[..1200].to_owned();
    fake.push(Dialect::OpenAi, FakeReply::Truncated { text: partial }.paced(30, GAP));
    let t = with_streaming_llm(&fake).await;
    let general = t.channel("general");
    let bot = t.fake.application_id();
    t.fake
        .send_message(t.guild.id, general, t.member("bob"), &format!("<@{bot}> how do I get a refund?"))
        .await
        .unwrap();
    let answer = until("the extractive answer", || {
        t.fake.messages(general).into_iter().find(|m| content(m).contains("> You can get a refund within 14 days"))
    })
    .await;
    assert!(content(&answer).contains("Source: **Refunds**"), "{answer}");
    // The partial answer was shown, then replaced in the same message: nothing dangles.
    let id = answer["id"].as_str().unwrap();
    let edits: Vec<RecordedRequest> = t
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with(&format!("/channels/{general}/messages/{id}")))
        .collect();
    assert!(!edits.is_empty(), "the partial message was edited");
    let bot_messages = t.fake.messages(general).into_iter().filter(|m| content(m).contains("Step")).count();
    assert_eq!(bot_messages, 0, "no half answer is left: {:#?}", t.fake.messages(general));
    assert_no_429s_or_violations(&t);
    t.stop().await;
}
