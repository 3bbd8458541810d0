//! The provider conformance suite: the same scenarios run against every provider, each talking
//! to the fake server in its own wire format.

mod common;

use std::time::Duration;

use beacon_llm::{
    CallContext, ChatRequest, FinishReason, GroupBy, LlmError, Message, ProviderKind, StreamEvent, Tool, Usage,
    pricing, usage::day_of,
};
use beacon_testkit::llm::{Dialect, FakeReply, FakeUsage};
use common::{GUILD, Harness, assert_auth, dialect, expected_usage, key, other, reliability};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn ctx() -> CallContext {
    CallContext::new(GUILD, "conformance").user(42)
}

fn conversation() -> ChatRequest {
    ChatRequest {
        system: Some("You are Beacon.".into()),
        messages: vec![
            Message::user("Hi"),
            Message::assistant("Hello! How can I help?"),
            Message::user("Where is my order?"),
        ],
        max_tokens: Some(200),
        ..ChatRequest::default()
    }
}

fn order_tool() -> Tool {
    Tool {
        name: "lookup_order".into(),
        description: "Find an order by number".into(),
        parameters: json!({"type": "object", "properties": {"order": {"type": "integer"}}, "required": ["order"]}),
    }
}

fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["answer", "confidence"]
    })
}

fn expected_path(kind: ProviderKind, stream: bool) -> String {
    let model = kind.default_model().unwrap_or("local-model");
    match dialect(kind) {
        Dialect::OpenAi => "/v1/chat/completions".into(),
        Dialect::Anthropic => "/v1/messages".into(),
        Dialect::Gemini if stream => format!("/v1beta/models/{model}:streamGenerateContent"),
        Dialect::Gemini => format!("/v1beta/models/{model}:generateContent"),
    }
}

fn today() -> i64 {
    day_of(beacon_store::now_ms())
}

/// Sum of (tokens, cost) of all usage rows, via the model summary.
async fn totals(h: &Harness) -> (Usage, u64, u64) {
    let rows = h.usage.summary(Some(GUILD), GroupBy::Model, today() - 1, today() + 1).await.expect("summary");
    rows.iter().fold((Usage::default(), 0, 0), |(u, c, n), r| (u.add(&r.usage), c + r.cost_micros, n + r.calls))
}

async fn text(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    let fake_usage = FakeUsage::new(1200, 85).cached(400, 300);
    h.fake.push(dialect(kind), FakeReply::text("Your order ships today.").usage(fake_usage));
    let response = h.service.chat(&ctx(), &conversation()).await.expect("chat");
    assert_eq!(response.text, "Your order ships today.");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.provider, kind.as_str());
    assert!(response.tool_calls.is_empty());
    let usage = expected_usage(kind, fake_usage);
    assert_eq!(response.usage, usage);

    // Cost adds up exactly from the seeded price (local servers have none and cost 0).
    let table = h.service.pricing_table();
    let expected_cost = table.lookup(kind.as_str(), &response.model).map_or(0, |p| pricing::cost_micros(p, &usage));
    assert_eq!(response.cost_micros, expected_cost);
    if kind != ProviderKind::OpenAiCompatible {
        assert!(expected_cost > 0, "{kind} has a seeded price for {}", response.model);
    }
    let (recorded, cost, calls) = totals(&h).await;
    assert_eq!((recorded, cost, calls), (usage, expected_cost, 1));

    let requests = h.requests(dialect(kind));
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, expected_path(kind, false));
    assert!(!r.stream);
    assert_auth(kind, r);
    let b = &r.body;
    match dialect(kind) {
        Dialect::OpenAi => {
            assert_eq!(b["messages"][0], json!({"role": "system", "content": "You are Beacon."}));
            assert_eq!(b["messages"].as_array().map(Vec::len), Some(4));
            assert_eq!(b["messages"][2]["role"], "assistant");
            let limit = if kind == ProviderKind::OpenAi { "max_completion_tokens" } else { "max_tokens" };
            assert_eq!(b[limit], 200);
        }
        Dialect::Anthropic => {
            assert_eq!(b["system"][0]["text"], "You are Beacon.");
            assert_eq!(b["messages"].as_array().map(Vec::len), Some(3));
            assert_eq!(b["messages"][1]["role"], "assistant");
            assert_eq!(b["max_tokens"], 200);
        }
        Dialect::Gemini => {
            assert_eq!(b["systemInstruction"]["parts"][0]["text"], "You are Beacon.");
            assert_eq!(b["contents"].as_array().map(Vec::len), Some(3));
            assert_eq!(b["contents"][1]["role"], "model");
            assert_eq!(b["generationConfig"]["maxOutputTokens"], 200);
        }
    }
}

async fn streaming(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    let fake_usage = FakeUsage::new(300, 42).cached(100, 50);
    let text = "Streaming answers arrive in pieces.";
    h.fake.push(dialect(kind), FakeReply::text(text).usage(fake_usage));
    let mut stream = h.service.chat_stream(&ctx(), &conversation()).await.expect("stream");
    let mut deltas = Vec::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            StreamEvent::TextDelta(d) => deltas.push(d),
            StreamEvent::ToolCall(c) => panic!("unexpected tool call {c:?}"),
            StreamEvent::Done(r) => done = Some(r),
        }
    }
    assert!(deltas.len() > 1, "{kind}: text should arrive in several deltas");
    assert_eq!(deltas.concat(), text);
    let done = done.expect("Done event");
    assert_eq!(done.text, text);
    let usage = expected_usage(kind, fake_usage);
    assert_eq!(done.usage, usage);
    assert_eq!(done.provider, kind.as_str());
    let (recorded, cost, calls) = totals(&h).await;
    assert_eq!((recorded, cost, calls), (usage, done.cost_micros, 1));

    let r = &h.requests(dialect(kind))[0];
    assert!(r.stream);
    assert_eq!(r.path, expected_path(kind, true));
    assert_auth(kind, r);
    match dialect(kind) {
        Dialect::OpenAi => {
            assert_eq!(r.body["stream"], true);
            assert_eq!(r.body["stream_options"]["include_usage"], true);
        }
        Dialect::Anthropic => assert_eq!(r.body["stream"], true),
        Dialect::Gemini => assert_eq!(r.query.as_deref(), Some("alt=sse")),
    }
}

async fn stream_cut_short_is_an_error(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    h.fake.push(dialect(kind), FakeReply::Truncated { text: "half an ans".into() });
    let mut stream = h.service.chat_stream(&ctx(), &conversation()).await.expect("stream");
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    match last {
        Some(Err(LlmError::InvalidResponse { .. })) => {}
        other => panic!("{kind}: expected an error at the end, got {other:?}"),
    }
}

/// A provider that sends a reply larger than Beacon will hold is refused at the limit (a stream's
/// limit in all is tested beside the decoder: `http::tests::a_stream_past_its_size_is_cut_off`).
async fn oversized_replies_are_refused(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    h.fake.push(dialect(kind), FakeReply::text(&"a".repeat(beacon_llm::http::MAX_REPLY + 1)));
    match h.service.chat(&ctx(), &conversation()).await {
        Err(LlmError::InvalidResponse { message, .. }) => assert!(message.contains("larger than"), "{kind}: {message}"),
        other => panic!("{kind}: expected the reply refused as too large, got {other:?}"),
    }
}

async fn tools(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    let d = dialect(kind);
    h.fake.push(d, FakeReply::tool_call("call_7", "lookup_order", json!({"order": 42})));
    let mut request = conversation();
    request.tools = vec![order_tool()];
    let first = h.service.chat(&ctx(), &request).await.expect("tool call");
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.tool_calls.len(), 1);
    let call = first.tool_calls[0].clone();
    assert_eq!(call.name, "lookup_order");
    assert_eq!(call.arguments, json!({"order": 42}));
    assert_eq!(call.id, "call_7");
    assert_eq!(first.usage, expected_usage(kind, FakeUsage::new(20, 8)));

    // Second turn with the tool's result.
    h.fake.push(d, FakeReply::text("Order 42 shipped yesterday."));
    request.messages.push(Message::assistant_tool_calls(None, vec![call.clone()]));
    request.messages.push(Message::tool_result(&call, r#"{"status":"shipped"}"#, false));
    let second = h.service.chat(&ctx(), &request).await.expect("final answer");
    assert_eq!(second.text, "Order 42 shipped yesterday.");

    let requests = h.requests(d);
    let b0 = &requests[0].body;
    let b = &requests[1].body;
    match d {
        Dialect::OpenAi => {
            assert_eq!(b0["tools"][0]["function"]["name"], "lookup_order");
            assert_eq!(b0["tools"][0]["function"]["parameters"]["required"][0], "order");
            let msgs = b["messages"].as_array().expect("messages");
            let assistant = &msgs[msgs.len() - 2];
            assert_eq!(assistant["tool_calls"][0]["id"], "call_7");
            let tool = &msgs[msgs.len() - 1];
            assert_eq!(tool["role"], "tool");
            assert_eq!(tool["tool_call_id"], "call_7");
            assert_eq!(tool["content"], r#"{"status":"shipped"}"#);
        }
        Dialect::Anthropic => {
            assert_eq!(b0["tools"][0]["name"], "lookup_order");
            assert_eq!(b0["tools"][0]["input_schema"]["type"], "object");
            let msgs = b["messages"].as_array().expect("messages");
            assert_eq!(msgs[msgs.len() - 2]["content"][0]["type"], "tool_use");
            let result = &msgs[msgs.len() - 1]["content"][0];
            assert_eq!(result["type"], "tool_result");
            assert_eq!(result["tool_use_id"], "call_7");
        }
        Dialect::Gemini => {
            assert_eq!(b0["tools"][0]["functionDeclarations"][0]["name"], "lookup_order");
            let contents = b["contents"].as_array().expect("contents");
            assert_eq!(contents[contents.len() - 2]["parts"][0]["functionCall"]["name"], "lookup_order");
            let fr = &contents[contents.len() - 1]["parts"][0]["functionResponse"];
            assert_eq!(fr["name"], "lookup_order");
            assert_eq!(fr["response"], json!({"status": "shipped"}));
        }
    }

    // Tool calls also assemble from stream fragments.
    h.fake.push(d, FakeReply::tool_call("call_8", "lookup_order", json!({"order": 7, "note": "rush"})));
    let mut stream = h.service.chat_stream(&ctx(), &request).await.expect("stream");
    let mut calls = Vec::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            StreamEvent::ToolCall(c) => calls.push(c),
            StreamEvent::Done(r) => done = Some(r),
            StreamEvent::TextDelta(_) => {}
        }
    }
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].arguments, json!({"order": 7, "note": "rush"}));
    let done = done.expect("done");
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
    assert_eq!(done.tool_calls, calls);
}

async fn structured(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    let d = dialect(kind);
    let mut request = ChatRequest::new(Some("Answer as JSON."), "Is the bot online?");
    request.response_schema = Some(answer_schema());

    h.fake.push(d, FakeReply::text(r#"{"answer":"yes","confidence":0.9}"#));
    let ok = h.service.chat(&ctx(), &request).await.expect("structured");
    assert_eq!(ok.json, Some(json!({"answer": "yes", "confidence": 0.9})));
    let b = &h.requests(d)[0].body;
    match d {
        Dialect::OpenAi => {
            assert_eq!(b["response_format"]["type"], "json_schema");
            assert_eq!(b["response_format"]["json_schema"]["schema"], answer_schema());
        }
        Dialect::Anthropic => {
            assert_eq!(b["tool_choice"]["type"], "tool");
            assert_eq!(b["tools"][0]["input_schema"], answer_schema());
        }
        Dialect::Gemini => {
            assert_eq!(b["generationConfig"]["responseMimeType"], "application/json");
            assert_eq!(b["generationConfig"]["responseJsonSchema"], answer_schema());
        }
    }

    // Invalid first, repaired on the one retry.
    h.fake.clear_requests();
    h.fake.push(d, FakeReply::text(r#"{"answer": 5}"#));
    h.fake.push(d, FakeReply::text(r#"{"answer":"no","confidence":0.2}"#));
    let repaired = h.service.chat(&ctx(), &request).await.expect("repaired");
    assert_eq!(repaired.json, Some(json!({"answer": "no", "confidence": 0.2})));
    let requests = h.requests(d);
    assert_eq!(requests.len(), 2, "exactly one repair request");
    assert!(
        requests[1].body.to_string().contains("did not match the required JSON schema"),
        "{kind}: the repair request explains the problem"
    );

    // Invalid twice: a typed error, and no third request.
    h.fake.clear_requests();
    h.fake.push(d, FakeReply::text(r#"{"answer": 1}"#));
    h.fake.push(d, FakeReply::text(r#"{"confidence": "high"}"#));
    let err = h.service.chat(&ctx(), &request).await.expect_err("still invalid");
    assert!(matches!(err, LlmError::InvalidStructuredOutput(_)), "{err:?}");
    assert_eq!(h.requests(d).len(), 2);
}

async fn retries(kind: ProviderKind) {
    // The breaker is covered by `fallback`; keep it out of the way here.
    let mut rel = reliability();
    rel.breaker_failures = 100;
    let h = Harness::with(&[kind], rel).await;
    let d = dialect(kind);
    // A 5xx is retried after a backoff.
    h.fake.push(d, FakeReply::status(503));
    h.fake.push(d, FakeReply::text("recovered"));
    let r = h.service.chat(&ctx(), &conversation()).await.expect("retried");
    assert_eq!(r.text, "recovered");
    assert_eq!(h.requests(d).len(), 2);
    let waits = h.waits();
    assert_eq!(waits.len(), 1);
    assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100), "{waits:?}");

    // A 429 waits exactly the Retry-After.
    h.fake.push(d, FakeReply::rate_limited("3"));
    h.fake.push(d, FakeReply::text("after the limit"));
    let r = h.service.chat(&ctx(), &conversation()).await.expect("after 429");
    assert_eq!(r.text, "after the limit");
    assert_eq!(h.waits()[1], Duration::from_secs(3));

    // A Retry-After beyond the cap is not waited for: the typed error comes back at once.
    h.fake.push(d, FakeReply::rate_limited("120"));
    let err = h.service.chat(&ctx(), &conversation()).await.expect_err("too long");
    match err {
        LlmError::RateLimited { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(120))),
        other => panic!("{kind}: {other:?}"),
    }
    assert_eq!(h.waits().len(), 2);

    // Retries stop at max_retries.
    for _ in 0..3 {
        h.fake.push(d, FakeReply::status(500));
    }
    let before = h.requests(d).len();
    let err = h.service.chat(&ctx(), &conversation()).await.expect_err("gives up");
    assert!(matches!(err, LlmError::Http { status: 500, .. }), "{err:?}");
    assert_eq!(h.requests(d).len() - before, 3);

    // A 400 is not retried.
    h.fake.push(d, FakeReply::status(400));
    let before = h.requests(d).len();
    let err = h.service.chat(&ctx(), &conversation()).await.expect_err("bad request");
    assert!(matches!(err, LlmError::Http { status: 400, .. }), "{err:?}");
    assert_eq!(h.requests(d).len() - before, 1);

    // Every failed attempt is recorded with its outcome.
    let rows = h.usage.summary(Some(GUILD), GroupBy::Module, today(), today()).await.expect("summary");
    assert_eq!(rows[0].errors, 1 + 1 + 1 + 3 + 1);
}

async fn timeout(kind: ProviderKind) {
    let mut rel = reliability();
    rel.timeout = Duration::from_millis(300);
    rel.max_retries = 0;
    let h = Harness::with(&[kind], rel).await;
    h.fake.push(dialect(kind), FakeReply::text("too late").delayed(Duration::from_secs(3)));
    let err = h.service.chat(&ctx(), &conversation()).await.expect_err("times out");
    assert!(matches!(err, LlmError::Timeout { .. }), "{kind}: {err:?}");
    assert!(err.is_retryable());
}

async fn fallback(kind: ProviderKind) {
    let next = other(kind);
    let h = Harness::new(&[kind, next]).await;
    for _ in 0..3 {
        h.fake.push(dialect(kind), FakeReply::status(502));
    }
    h.fake.push(dialect(next), FakeReply::text("from the fallback").usage(FakeUsage::new(50, 10)));
    let r = h.service.chat(&ctx(), &conversation()).await.expect("fallback answers");
    assert_eq!(r.text, "from the fallback");
    assert_eq!(r.provider, next.as_str());
    assert_eq!(h.requests(dialect(kind)).len(), 3, "primary tried 1 + 2 retries");
    assert_auth(next, &h.requests(dialect(next))[0]);

    // Three consecutive failures opened the primary's breaker: the next call skips it.
    h.fake.push(dialect(next), FakeReply::text("fallback again"));
    let r = h.service.chat(&ctx(), &conversation()).await.expect("breaker skips primary");
    assert_eq!(r.provider, next.as_str());
    assert_eq!(h.requests(dialect(kind)).len(), 3, "primary not called while open");

    // Usage: 3 failed attempts on the primary, 2 answers from the fallback, costs add up.
    let rows = h.usage.summary(Some(GUILD), GroupBy::Model, today(), today()).await.expect("summary");
    let primary_key = format!("{}:{}", kind.as_str(), kind.default_model().unwrap_or("local-model"));
    let primary = rows.iter().find(|r| r.key == primary_key).expect("primary row");
    assert_eq!((primary.calls, primary.errors, primary.cost_micros), (3, 3, 0));
    let fb = rows.iter().find(|r| r.key.starts_with(next.as_str())).expect("fallback row");
    assert_eq!((fb.calls, fb.errors), (2, 0));
    assert_eq!(fb.usage.input_tokens, 50 + 10);

    // When every provider fails: one typed error naming them.
    let h = Harness::new(&[kind, next]).await;
    h.fake.push(dialect(kind), FakeReply::status(401));
    h.fake.push(dialect(next), FakeReply::status(401));
    let err = h.service.chat(&ctx(), &conversation()).await.expect_err("all fail");
    match &err {
        LlmError::AllProvidersFailed { tried, last } => {
            assert_eq!(tried, &vec![kind.as_str().to_owned(), next.as_str().to_owned()]);
            assert!(matches!(**last, LlmError::Http { status: 401, .. }));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.user_message().contains("knowledge base"));
}

async fn key_never_leaks(kind: ProviderKind) {
    let next = other(kind);
    let keys = [key(kind), key(next)];
    let check = |what: &str, text: String| {
        for k in &keys {
            assert!(!text.contains(k.as_str()), "{kind}: key leaked via {what}: {text}");
        }
    };
    let mut once = reliability();
    once.max_retries = 0;
    // Providers that echo the key in their error bodies, on every status class.
    for status in [400, 401, 403, 404, 429, 500, 503] {
        let h = Harness::with(&[kind, next], once.clone()).await;
        h.fake.push(dialect(kind), FakeReply::leaking_error(status));
        h.fake.push(dialect(next), FakeReply::leaking_error(status));
        let err = h.service.chat(&ctx(), &conversation()).await.expect_err("fails");
        assert!(matches!(err, LlmError::AllProvidersFailed { .. }), "{err:?}");
        check("Display", err.to_string());
        check("Debug", format!("{err:?}"));
        check("user message", err.user_message().to_owned());
    }
    // Streams too.
    let h = Harness::new(&[kind]).await;
    h.fake.push(dialect(kind), FakeReply::leaking_error(400));
    let err = h.service.chat_stream(&ctx(), &conversation()).await.err().expect("stream fails");
    check("stream Display", err.to_string());
    check("stream Debug", format!("{err:?}"));
    // Connection failures name the URL, never the key.
    let fake_gone = beacon_testkit::llm::FakeLlm::start().await.expect("fake");
    let dead = Harness::on(fake_gone, &[kind], reliability()).await;
    drop(dead.fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = dead.service.chat(&ctx(), &conversation()).await.expect_err("refused");
    check("transport Display", err.to_string());
    check("transport Debug", format!("{err:?}"));
    check("service Debug", format!("{:?}", h.service));
}

async fn model_override(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    h.fake.push(dialect(kind), FakeReply::text("custom"));
    let ctx = ctx().model(Some("guild-picked-model".into()));
    let r = h.service.chat(&ctx, &conversation()).await.expect("chat");
    let req = &h.requests(dialect(kind))[0];
    match dialect(kind) {
        Dialect::Gemini => assert_eq!(req.path, "/v1beta/models/guild-picked-model:generateContent"),
        _ => assert_eq!(req.body["model"], "guild-picked-model"),
    }
    assert_eq!(r.model, "guild-picked-model");
}

async fn embeddings(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    let inputs = vec!["reset password".to_owned(), "ban appeal".to_owned()];
    let result = h.service.embed(&ctx(), &inputs).await;
    match kind {
        ProviderKind::Anthropic | ProviderKind::Xai => {
            assert!(matches!(result, Err(LlmError::Unsupported { .. })), "{result:?}");
        }
        _ => {
            let e = result.expect("embeddings");
            assert_eq!(e.vectors.len(), 2);
            assert_eq!(e.vectors[0].len(), 8);
            assert_ne!(e.vectors[0], e.vectors[1]);
            let r = h.fake.requests().pop().expect("request");
            assert_auth(kind, &r);
        }
    }
}

async fn prompt_caching(kind: ProviderKind) {
    let h = Harness::new(&[kind]).await;
    h.fake.push(dialect(kind), FakeReply::text("cached prefix"));
    let mut request = conversation();
    request.tools = vec![order_tool()];
    request.cache_hint = beacon_llm::CacheHint::StablePrefix;
    h.service.chat(&ctx(), &request).await.expect("chat");
    let b = &h.requests(dialect(kind))[0].body;
    if kind == ProviderKind::Anthropic {
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["tools"][0]["cache_control"]["type"], "ephemeral");
    } else {
        assert!(!b.to_string().contains("cache_control"), "{kind} caches implicitly");
    }
}

macro_rules! conformance {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test] async fn text() { super::text($kind).await }
            #[tokio::test] async fn streaming() { super::streaming($kind).await }
            #[tokio::test] async fn stream_cut_short_is_an_error() { super::stream_cut_short_is_an_error($kind).await }
            #[tokio::test] async fn oversized_replies_are_refused() { super::oversized_replies_are_refused($kind).await }
            #[tokio::test] async fn tools() { super::tools($kind).await }
            #[tokio::test] async fn structured_output() { super::structured($kind).await }
            #[tokio::test] async fn retries() { super::retries($kind).await }
            #[tokio::test] async fn timeout() { super::timeout($kind).await }
            #[tokio::test] async fn fallback() { super::fallback($kind).await }
            #[tokio::test] async fn key_never_leaks() { super::key_never_leaks($kind).await }
            #[tokio::test] async fn model_override() { super::model_override($kind).await }
            #[tokio::test] async fn embeddings() { super::embeddings($kind).await }
            #[tokio::test] async fn prompt_caching() { super::prompt_caching($kind).await }
        }
    )*};
}

conformance! {
    openai => ProviderKind::OpenAi,
    anthropic => ProviderKind::Anthropic,
    gemini => ProviderKind::Gemini,
    xai => ProviderKind::Xai,
    openai_compatible => ProviderKind::OpenAiCompatible,
}
