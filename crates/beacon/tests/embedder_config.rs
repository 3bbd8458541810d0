//! How `beacon` picks its embedder from the configuration: the LLM provider's embedding model
//! (against the testkit's fake OpenAI server), a model already downloaded into the data folder, and
//! BM25 alone when the hub is unreachable.

use beacon::backends::{embedder, prepare_embedding_model};
use beacon_config::{Config, Source};
use beacon_testkit::llm::FakeLlm;

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_sources(None, &Source::from_pairs(pairs.iter().copied())).unwrap()
}

fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn provider_embeddings_when_configured() {
    let fake = FakeLlm::start().await.unwrap();
    let base = fake.openai_base_url();
    let c = config(&[
        ("BEACON_EMBED_PROVIDER", "llm"),
        ("BEACON_LLM_PROVIDER", "openai"),
        ("BEACON_LLM_API_KEY", "sk-test"),
        ("BEACON_LLM_BASE_URL", &base),
        ("BEACON_LLM_MAX_RETRIES", "0"),
    ]);
    let store = beacon_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let e = embedder(&c, Some(&store)).await.expect("provider embedder");
    assert_eq!(e.model_id(), "llm:openai:text-embedding-3-small:8");
    assert_eq!(fake.requests().iter().filter(|r| r.path == "/v1/embeddings").count(), 1);
    // The probe is an LLM call like any other: recorded in the usage tables (knowledge base: guild 0).
    let usage = beacon_llm::UsageStore::attach(store.clone());
    let today = beacon_llm::usage::day_of(beacon_store::now_ms());
    let totals = usage.day_totals(&store.guild(0), None, today).await.unwrap();
    assert!(totals.usage.total() > 0, "embedding usage recorded: {totals:?}");
    // `llm` without an LLM provider: BM25 alone, not an error.
    assert!(embedder(&config(&[("BEACON_EMBED_PROVIDER", "llm")]), None).await.is_none());
}

#[tokio::test]
async fn unreachable_hub_means_bm25_and_a_cached_model_needs_no_hub() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let hub = closed_port_url();
    let pairs = [("BEACON_DATA_DIR", data_dir.as_str()), ("BEACON_EMBED_HUB_URL", hub.as_str())];
    let c = prepare_embedding_model(config(&pairs)).await;
    assert_eq!(c.embed_model_dir, None);
    assert!(embedder(&c, None).await.is_none());

    // A model already in the cache is used as it is; the hub is never asked.
    let Some(model) = std::env::var_os("BEACON_EMBED_MODEL_DIR").filter(|d| !d.is_empty()) else {
        assert!(std::env::var("BEACON_TEST_REQUIRE_MODEL").as_deref() != Ok("1"), "BEACON_EMBED_MODEL_DIR unset");
        eprintln!("note: cached-model half skipped: set BEACON_EMBED_MODEL_DIR to a MiniLM folder");
        return;
    };
    let cached = data.path().join("models").join("sentence-transformers--all-MiniLM-L6-v2");
    std::fs::create_dir_all(&cached).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(std::path::Path::new(&model).join(f), cached.join(f)).unwrap();
    }
    let c = prepare_embedding_model(config(&pairs)).await;
    assert_eq!(c.embed_model_dir.as_deref(), Some(cached.as_path()));
    let e = embedder(&c, None).await.expect("cached model loads");
    assert!(e.model_id().starts_with("bert-mean-384:"), "{}", e.model_id());
    // The overrides reach the model (pooling shows in its id, so its vectors are stored apart).
    let mut with_overrides = pairs.to_vec();
    with_overrides.extend([("BEACON_EMBED_POOLING", "cls"), ("BEACON_EMBED_QUERY_PREFIX", "query:")]);
    let c = prepare_embedding_model(config(&with_overrides)).await;
    let e = embedder(&c, None).await.expect("cached model loads");
    assert!(e.model_id().starts_with("bert-cls-384:"), "{}", e.model_id());
}
