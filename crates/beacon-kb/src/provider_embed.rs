//! Provider embeddings: an [`Embedder`] backed by the LLM provider's embedding model
//! (OpenAI `/v1/embeddings`, Gemini `batchEmbedContents`, OpenAI-compatible servers) through
//! [`beacon_llm::LlmService::embed`].
//!
//! [`Embedder`] is synchronous and is called from blocking threads (`spawn_blocking`), from
//! plain threads and sometimes from async code; the HTTP calls therefore run on a small runtime
//! the embedder owns, and the caller waits on a channel. That never needs the caller's runtime, so
//! it cannot deadlock a current-thread runtime or panic with "cannot block inside a runtime".
//!
//! ```no_run
//! use beacon_kb::{Embedder, LlmEmbedder};
//!
//! # fn demo(config: &beacon_llm::LlmConfig) -> Result<(), beacon_kb::KbError> {
//! let embedder = LlmEmbedder::from_config(config)?; // probes the dimension with one request
//! println!("{} ({} dims)", embedder.model_id(), embedder.dim()); // e.g. llm:openai:text-embedding-3-small:1536
//! let vectors = embedder.embed_documents(&["Refunds take 14 days."])?;
//! # let _ = vectors;
//! # Ok(())
//! # }
//! ```

use std::sync::mpsc;

use beacon_llm::{CallContext, LlmConfig, LlmService, UsageStore};

use crate::embed::Embedder;
use crate::error::{KbError, Result};

/// Inputs per request: Gemini's `batchEmbedContents` takes at most 100; OpenAI takes more.
const BATCH: usize = 96;

/// An [`Embedder`] that asks the configured LLM provider's embedding model.
///
/// Its `model_id` is `llm:{provider}:{model}:{dim}`, so changing the provider or the model
/// re-embeds the knowledge base. Vectors are L2-normalised here, whatever the provider returns.
/// A reply from another model (a fallback provider answering for a failed primary) is refused
/// rather than mixed into an index built with the primary's vectors.
pub struct LlmEmbedder {
    runtime: Option<tokio::runtime::Runtime>,
    service: LlmService,
    model: String,
    model_id: String,
    dim: usize,
}

impl std::fmt::Debug for LlmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEmbedder").field("model_id", &self.model_id).finish_non_exhaustive()
    }
}

impl LlmEmbedder {
    /// Builds the embedder on the primary provider of `config` and its embedding model
    /// (`BEACON_LLM_EMBEDDING_MODEL`, or the provider's default), then asks for one embedding to
    /// learn the dimension. Fails when no provider is configured, the provider has no embedding
    /// model, or the probe fails.
    pub fn from_config(config: &LlmConfig) -> Result<Self> {
        Self::build(config, None)
    }

    /// Like [`LlmEmbedder::from_config`], with the embedding calls recorded in `usage` (the LLM
    /// usage tables, under guild 0 and module `kb`: a batch of chunks is the knowledge base's,
    /// not one member's) and checked against its budgets, like the chat calls of the process.
    pub fn from_config_with_usage(config: &LlmConfig, usage: UsageStore) -> Result<Self> {
        Self::build(config, Some(usage))
    }

    fn build(config: &LlmConfig, usage: Option<UsageStore>) -> Result<Self> {
        let primary = config
            .chain
            .first()
            .ok_or_else(|| KbError::Model("provider embeddings need an LLM provider (BEACON_LLM_PROVIDER)".into()))?;
        let model = primary.embedding_model.clone().ok_or_else(|| {
            KbError::Model(format!(
                "provider {} has no embedding model (set BEACON_LLM_EMBEDDING_MODEL)",
                primary.kind.as_str()
            ))
        })?;
        let provider = primary.kind.as_str().to_owned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("beacon-embed-http")
            .enable_all()
            .build()
            .map_err(|e| KbError::io("embedding runtime", e))?;
        let mut service = {
            // Clients that look for a runtime when built find this one.
            let _guard = runtime.enter();
            LlmService::new(config).map_err(|source| KbError::Llm { what: "LLM configuration", source })?
        };
        if let Some(usage) = usage {
            // Loads the pricing table: a database query, run like the requests are.
            service = on_runtime(&runtime, service.with_usage_store(usage))?
                .map_err(|source| KbError::Llm { what: "LLM usage store", source })?;
        }
        let mut embedder =
            LlmEmbedder { runtime: Some(runtime), service, model: model.clone(), model_id: String::new(), dim: 0 };
        let probe = embedder.request(vec!["dimension probe".to_owned()])?;
        let dim = probe.first().map_or(0, Vec::len);
        if dim == 0 {
            return Err(KbError::Model(format!("{provider} returned an empty embedding for {model}")));
        }
        embedder.dim = dim;
        embedder.model_id = format!("llm:{provider}:{model}:{dim}");
        Ok(embedder)
    }

    /// One `embed` call on the embedder's runtime; the caller's thread waits for it.
    fn request(&self, inputs: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let runtime =
            self.runtime.as_ref().ok_or_else(|| KbError::Model("embedding runtime already shut down".into()))?;
        let service = self.service.clone();
        let embeddings = on_runtime(runtime, async move {
            let ctx = CallContext::new(0, "kb");
            service.embed(&ctx, &inputs).await
        })?
        .map_err(|source| KbError::Llm { what: "provider embeddings", source })?;
        if embeddings.model != self.model {
            return Err(KbError::Model(format!(
                "embeddings came from {} instead of {}; refusing to mix models",
                embeddings.model, self.model
            )));
        }
        embeddings.vectors.into_iter().map(normalise).collect()
    }
}

/// Runs `task` on the embedder's runtime while the calling thread waits for its output.
fn on_runtime<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    task: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        // The caller may have gone away; nothing to do then.
        let _ = tx.send(task.await);
    });
    rx.recv().map_err(|_| KbError::Model("embedding request was dropped".into()))
}

fn normalise(mut v: Vec<f32>) -> Result<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(KbError::Model("provider returned a zero or non-finite embedding".into()));
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Ok(v)
}

impl Embedder for LlmEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let vectors = self.request(batch.iter().map(|t| (*t).to_owned()).collect())?;
            if vectors.len() != batch.len() {
                return Err(KbError::Model(format!("{} embeddings for {} inputs", vectors.len(), batch.len())));
            }
            for v in vectors {
                if v.len() != self.dim {
                    return Err(KbError::Dimension { expected: self.dim, got: v.len() });
                }
                out.push(v);
            }
        }
        Ok(out)
    }
}

impl Drop for LlmEmbedder {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code; let it wind down on its own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
