//! `beacon ask` through Gemini and xAI: the real binary, configured with `BEACON_LLM_PROVIDER`
//! and `BEACON_LLM_BASE_URL` pointing at the testkit's fake, prints the grounded answer with its
//! sources, and the key appears neither in stdout nor in stderr.

use std::process::Command;

use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page, choose the order and press Request refund. Refunds reach your card in 5 business days.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen and follow the link we e-mail you.\n",
    ),
];

fn beacon(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEACON_") {
            cmd.env_remove(key);
        }
    }
    // Debug logs on stderr too: the key must not be in them either.
    cmd.env("BEACON_DATA_DIR", data).env("BEACON_LOG_LEVEL", "debug");
    cmd
}

/// Runs `beacon ask` against the fake as `provider`; returns (stdout, stderr).
async fn ask(provider: &'static str, base_url: String, key: &'static str) -> (String, String) {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    for (name, body) in DOCS {
        std::fs::write(docs.path().join(name), body).unwrap();
    }
    tokio::task::spawn_blocking(move || {
        let ingest = beacon(data.path()).arg("ingest").arg(docs.path()).output().unwrap();
        assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
        let out = beacon(data.path())
            .args(["ask", "How do I get a refund?"])
            .env("BEACON_LLM_PROVIDER", provider)
            .env("BEACON_LLM_API_KEY", key)
            .env("BEACON_LLM_BASE_URL", &base_url)
            .env("BEACON_LLM_MAX_RETRIES", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stdout}\n{stderr}");
        (stdout, stderr)
    })
    .await
    .unwrap()
}

fn assert_grounded(stdout: &str, tokens: &str, answer: &str) {
    let answer_at = stdout.find(&format!("Answer ({tokens})")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(stdout[..answer_at].contains("> You can get a refund within 14 days"), "passages first: {stdout}");
    assert!(stdout[answer_at..].contains(answer), "{stdout}");
    assert!(stdout[answer_at..].contains("Sources:\n[1] Refunds"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beacon_ask_answers_through_gemini() {
    const KEY: &str = "AIzaGeminiE2E-key-0123456789abcdefghijkl";
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::Gemini, FakeReply::text("Within 14 days of purchase [1].").usage(FakeUsage::new(77, 7)));
    let (stdout, stderr) = ask("gemini", fake.base_url(), KEY).await;
    assert_grounded(&stdout, "77 tokens in, 7 out", "Within 14 days of purchase [1].");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked:\n{stdout}\n{stderr}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(requests[0].header("x-goog-api-key"), Some(KEY));
    assert!(!requests[0].query.as_deref().unwrap_or_default().contains(KEY), "the key is not in the URL");
    assert!(requests[0].body.to_string().contains("<member_message>\\nHow do I get a refund?\\n</member_message>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn beacon_ask_answers_through_xai() {
    const KEY: &str = "xai-E2Ekey0123456789abcdefghijklmnop";
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Refunds take 14 days [1].").usage(FakeUsage::new(88, 8)));
    let (stdout, stderr) = ask("xai", fake.openai_base_url(), KEY).await;
    assert_grounded(&stdout, "88 tokens in, 8 out", "Refunds take 14 days [1].");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked:\n{stdout}\n{stderr}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body["model"], "grok-3-mini");
    assert_eq!(requests[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(requests[0].body.to_string().contains("<member_message>\\nHow do I get a refund?\\n</member_message>"));
}
