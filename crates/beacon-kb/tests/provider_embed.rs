//! Provider embeddings against the testkit's fake LLM server, which speaks OpenAI's
//! `/v1/embeddings` and Gemini's `batchEmbedContents` wire formats.

use std::sync::Arc;

use beacon_kb::chunk::ChunkerConfig;
use beacon_kb::embed::Embedder;
use beacon_kb::fusion::{FusionConfig, FusionMethod};
use beacon_kb::ingest::KnowledgeBase;
use beacon_kb::source::FolderSource;
use beacon_kb::{KbError, LlmEmbedder};
use beacon_llm::LlmConfig;
use beacon_store::Store;
use beacon_testkit::llm::{Dialect, FakeLlm};

fn config(pairs: &[(&str, &str)]) -> LlmConfig {
    let env = beacon_config::Source::from_pairs(pairs.iter().copied().chain([("BEACON_LLM_MAX_RETRIES", "0")]));
    LlmConfig::from_settings(&beacon_config::LlmSettings::from_source(&env).unwrap()).unwrap()
}

/// Builds the embedder off the async workers, as `beacon run` does (its probe request blocks).
async fn embedder(config: LlmConfig) -> Result<LlmEmbedder, KbError> {
    // `main` installs the TLS provider in the binary; these tests build clients without a fake.
    beacon_http::install_crypto_provider();
    tokio::task::spawn_blocking(move || LlmEmbedder::from_config(&config)).await.unwrap()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_embeddings_in_batches_normalised_and_named_by_provider_and_model() {
    let fake = FakeLlm::start().await.unwrap();
    let base = fake.openai_base_url();
    let cfg = config(&[
        ("BEACON_LLM_PROVIDER", "openai"),
        ("BEACON_LLM_API_KEY", "sk-test"),
        ("BEACON_LLM_BASE_URL", &base),
        ("BEACON_LLM_EMBEDDING_MODEL", "text-embedding-3-small"),
    ]);
    let e = Arc::new(embedder(cfg).await.unwrap());
    assert_eq!(e.model_id(), "llm:openai:text-embedding-3-small:8");
    assert_eq!(e.dim(), 8);
    let texts: Vec<String> = (0..100).map(|i| format!("passage number {i}")).collect();
    let e2 = e.clone();
    let vectors = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        e2.embed_documents(&refs)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(vectors.len(), 100);
    for v in &vectors {
        assert_eq!(v.len(), 8);
        assert!((norm(v) - 1.0).abs() < 1e-5);
    }
    assert_ne!(vectors[0], vectors[1]);
    // The query path returns the same vector as the document path for the same text.
    let e3 = e.clone();
    let q = tokio::task::spawn_blocking(move || e3.embed_query("passage number 7")).await.unwrap().unwrap();
    assert_eq!(q, vectors[7]);
    let requests: Vec<_> =
        fake.requests().into_iter().filter(|r| r.dialect == Dialect::OpenAi && r.path == "/v1/embeddings").collect();
    // The probe, two batches (96 + 4) and the query.
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[1].body["model"], "text-embedding-3-small");
    assert_eq!(requests[1].body["input"].as_array().map(Vec::len), Some(96));
    assert_eq!(requests[2].body["input"].as_array().map(Vec::len), Some(4));
    assert_eq!(requests[1].headers.get("authorization").map(String::as_str), Some("Bearer sk-test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_batch_embed_contents() {
    let fake = FakeLlm::start().await.unwrap();
    let base = fake.base_url();
    let cfg =
        config(&[("BEACON_LLM_PROVIDER", "gemini"), ("BEACON_LLM_API_KEY", "g-key"), ("BEACON_LLM_BASE_URL", &base)]);
    let e = embedder(cfg).await.unwrap();
    assert_eq!(e.model_id(), "llm:gemini:gemini-embedding-001:8");
    let vectors =
        tokio::task::spawn_blocking(move || e.embed_documents(&["alpha", "beta", "gamma"])).await.unwrap().unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| (norm(v) - 1.0).abs() < 1e-5));
    let last = fake.requests().into_iter().rfind(|r| r.dialect == Dialect::Gemini).unwrap();
    assert_eq!(last.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    let requests = last.body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1]["model"], "models/gemini-embedding-001");
    assert_eq!(requests[1]["content"]["parts"][0]["text"], "beta");
}

/// Called straight from async code on a current-thread runtime (no `spawn_blocking`), the embedder
/// still answers: its requests run on its own runtime. The fake runs on a runtime of its own here,
/// as a real provider would.
#[test]
fn sync_calls_from_a_current_thread_runtime_do_not_deadlock() {
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fake = server.block_on(FakeLlm::start()).unwrap();
    let base = fake.openai_base_url();
    let cfg =
        config(&[("BEACON_LLM_PROVIDER", "openai"), ("BEACON_LLM_API_KEY", "sk-test"), ("BEACON_LLM_BASE_URL", &base)]);
    let caller = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let v = caller.block_on(async move {
        let e = LlmEmbedder::from_config(&cfg).unwrap();
        let v = e.embed_query("hello").unwrap();
        drop(e); // dropping inside async code must not panic either
        v
    });
    assert_eq!(v.len(), 8);
    drop(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_unconfigured_provider_is_an_error() {
    // A port with nothing listening: the probe fails and says so.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let cfg =
        config(&[("BEACON_LLM_PROVIDER", "openai"), ("BEACON_LLM_API_KEY", "sk-test"), ("BEACON_LLM_BASE_URL", &base)]);
    let e = embedder(cfg).await.unwrap_err().to_string();
    assert!(e.contains("provider embeddings"), "{e}");
    // Anthropic has no embedding model.
    let cfg = config(&[("BEACON_LLM_PROVIDER", "anthropic"), ("BEACON_LLM_API_KEY", "k")]);
    let e = embedder(cfg).await.unwrap_err().to_string();
    assert!(e.contains("no embedding model"), "{e}");
    // No provider at all.
    let e = embedder(LlmConfig::default()).await.unwrap_err().to_string();
    assert!(e.contains("BEACON_LLM_PROVIDER"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_base_ingests_and_searches_with_provider_embeddings() {
    let fake = FakeLlm::start().await.unwrap();
    let base = fake.openai_base_url();
    let cfg =
        config(&[("BEACON_LLM_PROVIDER", "openai"), ("BEACON_LLM_API_KEY", "sk-test"), ("BEACON_LLM_BASE_URL", &base)]);
    let e: Arc<dyn Embedder> = Arc::new(embedder(cfg).await.unwrap());
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    // The fake's vectors carry no meaning: let BM25 decide, the dense path still runs.
    let fusion = FusionConfig { method: FusionMethod::MinMax, dense_weight: 0.2, candidates: 50 };
    let kb = KnowledgeBase::open(store, Some(e), fusion, ChunkerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("refunds.md"), "# Refunds\n\nRefunds are issued within 14 days.").unwrap();
    std::fs::write(dir.path().join("hours.md"), "# Hours\n\nSupport is open nine to five.").unwrap();
    let report = kb.sync(7, &FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    assert!(report.embedded);
    let before = fake.requests().len();
    let hits = kb.search(7, "When are refunds issued?", 2).await.unwrap();
    assert_eq!(hits.first().map(|h| h.title.as_str()), Some("Refunds"));
    // The query was embedded by the provider.
    let after = fake.requests();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[before].body["input"], serde_json::json!(["When are refunds issued?"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_calls_are_recorded_in_the_usage_tables_when_given_them() {
    let fake = FakeLlm::start().await.unwrap();
    let base = fake.openai_base_url();
    let cfg =
        config(&[("BEACON_LLM_PROVIDER", "openai"), ("BEACON_LLM_API_KEY", "sk-test"), ("BEACON_LLM_BASE_URL", &base)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/beacon.db", dir.path().display())).await.unwrap();
    store.migrate().await.unwrap();
    let usage = beacon_llm::UsageStore::open(store.clone()).await.unwrap();
    let with_usage = usage.clone();
    let e = tokio::task::spawn_blocking(move || LlmEmbedder::from_config_with_usage(&cfg, with_usage))
        .await
        .unwrap()
        .unwrap();
    tokio::task::spawn_blocking(move || e.embed_documents(&["alpha", "beta"])).await.unwrap().unwrap();
    let today = beacon_llm::usage::day_of(beacon_store::now_ms());
    let rows = usage.summary(Some(0), beacon_llm::GroupBy::Module, today - 1, today + 1).await.unwrap();
    // The dimension probe and the batch, under the knowledge base's module.
    assert_eq!(rows.iter().map(|r| (r.key.as_str(), r.calls)).collect::<Vec<_>>(), vec![("kb", 2)]);
    assert!(rows[0].usage.input_tokens > 0);
}
