//! The one-time model download against a local hub (axum) that serves the packaged MiniLM files in
//! the Hugging Face layout, with the hub's redirect and LFS hash headers for the weights.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_kb::ModelDownload;
use beacon_kb::embed::{BertEmbedder, Embedder};
use sha2::{Digest, Sha256};

const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

struct Hub {
    dir: PathBuf,
    requests: AtomicUsize,
    /// Hash announced for the weights; `None` announces the real one.
    announced_sha: Option<String>,
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    UrlPath((owner, name, file)): UrlPath<(String, String, String)>,
) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    if format!("{owner}/{name}") != REPO || file.contains("..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = hub.dir.join(&file);
    let Ok(body) = std::fs::read(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if file == "model.safetensors" {
        // Like the hub: a redirect to the storage host, carrying the LFS object id and size.
        let sha = hub.announced_sha.clone().unwrap_or_else(|| hex::encode(Sha256::digest(&body)));
        let mut headers = HeaderMap::new();
        headers.insert("location", HeaderValue::from_static("/cdn/model.safetensors"));
        headers.insert("x-linked-etag", HeaderValue::from_str(&format!("\"{sha}\"")).unwrap());
        headers.insert("x-linked-size", HeaderValue::from(body.len() as u64));
        return (StatusCode::FOUND, headers).into_response();
    }
    body.into_response()
}

async fn cdn(State(hub): State<Arc<Hub>>) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    std::fs::read(hub.dir.join("model.safetensors"))
        .map(IntoResponse::into_response)
        .unwrap_or_else(|_| StatusCode::NOT_FOUND.into_response())
}

async fn start(dir: &Path, announced_sha: Option<String>) -> (String, Arc<Hub>) {
    // `main` installs the TLS provider in the binary; the test process does it here.
    beacon_http::install_crypto_provider();
    let hub = Arc::new(Hub { dir: dir.to_path_buf(), requests: AtomicUsize::new(0), announced_sha });
    let app = Router::new()
        .route("/{owner}/{name}/resolve/main/{*file}", get(resolve))
        .route("/cdn/model.safetensors", get(cdn))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hub)
}

fn leftovers(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_once_verifies_and_loads() {
    let Some(model) = common::model_dir("downloads_once_verifies_and_loads") else {
        return;
    };
    let (url, hub) = start(&model, None).await;
    let cache = tempfile::tempdir().unwrap();
    let download = ModelDownload::new(&url, REPO, cache.path());
    assert!(!download.is_cached());
    let dir = download.ensure().await.unwrap();
    assert_eq!(dir, cache.path().join("sentence-transformers--all-MiniLM-L6-v2"));
    for f in
        ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json", "sentence_bert_config.json"]
    {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), std::fs::read(model.join(f)).unwrap(), "{f}");
    }
    // Only the finished model is left in the cache: no staging folder.
    assert_eq!(leftovers(cache.path()), vec!["sentence-transformers--all-MiniLM-L6-v2".to_string()]);
    // The downloaded copy is the same model.
    let (a, b) = tokio::task::spawn_blocking(move || {
        let a = BertEmbedder::load(&dir).unwrap();
        let b = BertEmbedder::load(&model).unwrap();
        (a.embed_query("refund policy").unwrap(), b.embed_query("refund policy").unwrap())
    })
    .await
    .unwrap();
    assert_eq!(a, b);
    // A second run finds the cache and asks the hub nothing.
    let asked = hub.requests.load(Ordering::SeqCst);
    assert!(asked >= 4);
    ModelDownload::new(&url, REPO, cache.path()).ensure().await.unwrap();
    assert_eq!(hub.requests.load(Ordering::SeqCst), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_mismatch_leaves_nothing_behind() {
    let Some(model) = common::model_dir("a_hash_mismatch_leaves_nothing_behind") else {
        return;
    };
    let (url, _hub) = start(&model, Some("0".repeat(64))).await;
    let cache = tempfile::tempdir().unwrap();
    let download = ModelDownload::new(&url, REPO, cache.path());
    let e = download.ensure().await.unwrap_err().to_string();
    assert!(e.contains("SHA-256"), "{e}");
    assert!(!download.is_cached());
    assert!(leftovers(cache.path()).is_empty(), "{:?}", leftovers(cache.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_missing_repositories_fail_cleanly() {
    // `main` installs the TLS provider in the binary; the test process does it here.
    beacon_http::install_crypto_provider();
    let cache = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let download = ModelDownload::new(&format!("http://127.0.0.1:{port}"), REPO, cache.path());
    assert!(download.ensure().await.is_err());
    assert!(leftovers(cache.path()).is_empty());
    // A hub without the repository: a required file is a 404.
    let empty = tempfile::tempdir().unwrap();
    let (url, _hub) = start(empty.path(), None).await;
    let e = ModelDownload::new(&url, "someone/else", cache.path()).ensure().await.unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("404"), "{e}");
    assert!(leftovers(cache.path()).is_empty());
}
