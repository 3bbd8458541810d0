//! `beacon ingest`, `beacon ask` and `beacon eval`: the knowledge base from the command line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_config::Config;
use beacon_kb::{EvalOptions, Phase, Progress};
use beacon_support::confidence::{self, DEFAULT_THRESHOLD, Mode};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backends::{open_knowledge_base, open_llm, open_store};

/// The guild the CLI uses when `--guild` is not given: one local knowledge base.
pub const LOCAL_GUILD: u64 = 0;

/// Syncs the folder at `path` into `guild`'s knowledge base, with a progress bar on stderr.
pub async fn ingest(config: Arc<Config>, guild: u64, path: &Path) -> anyhow::Result<()> {
    if !path.is_dir() {
        anyhow::bail!("{} is not a folder of markdown or text files", path.display());
    }
    let store = open_store(&config).await?;
    let kb = open_knowledge_base(&config, &store).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:>10} [{bar:40}] {pos}/{len} documents ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let source = beacon_kb::FolderSource::new(path);
    let mut on_progress = |p: Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(match p.phase {
            Phase::Listing => "listing",
            Phase::Documents => "embedding",
            Phase::Deleting => "deleting",
            Phase::Indexing => "indexing",
            _ => "done",
        });
    };
    let report = kb.sync(guild, &source, &mut on_progress).await.context("ingesting")?;
    bar.finish_and_clear();
    println!(
        "{} documents: {} new or changed ({} chunks{}), {} unchanged, {} deleted",
        report.documents,
        report.written,
        report.chunks,
        if report.embedded { ", embedded" } else { ", BM25 only: no embedding model" },
        report.unchanged,
        report.deleted
    );
    Ok(())
}

/// Prints the best passages for `question` with their sources and scores.
pub async fn ask(config: Arc<Config>, guild: u64, question: &str, k: usize) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let kb = open_knowledge_base(&config, &store).await?;
    let hits = kb.search(guild, question, k).await.context("searching")?;
    if hits.is_empty() {
        println!("No passages found. Ingest a folder first: beacon ingest PATH");
        return Ok(());
    }
    for (i, hit) in hits.iter().enumerate() {
        let conf = beacon_support::confidence::confidence(question, hit);
        let heading = if hit.heading_path.is_empty() {
            String::new()
        } else {
            format!(" › {}", hit.heading_path.join(" › "))
        };
        println!(
            "[{}] {}{} ({})\n    score {:.3} · bm25 {} · dense {} · confidence {:.2}",
            i + 1,
            hit.title,
            heading,
            hit.document_key,
            hit.score,
            hit.bm25_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "–".into()),
            hit.dense_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "–".into()),
            conf,
        );
        for line in hit.text.lines().take(8) {
            println!("    > {line}");
        }
    }
    let best = beacon_support::confidence::confidence(question, &hits[0]);
    if best < beacon_support::confidence::DEFAULT_THRESHOLD {
        println!(
            "\nConfidence {best:.2} is below {:.2}: in Discord, Beacon would offer a human instead of answering.",
            beacon_support::confidence::DEFAULT_THRESHOLD
        );
        return Ok(());
    }
    if let Some(llm) = open_llm(&config, &store, None).await? {
        llm_answer(&llm, guild, question, &hits).await;
    }
    Ok(())
}

/// Prints the LLM's answer grounded on `hits`, with its cited sources (as `/ask` would post it).
async fn llm_answer(llm: &beacon_llm::LlmService, guild: u64, question: &str, hits: &[beacon_kb::Hit]) {
    use beacon_support::grounded::{self, Grounded};
    let model = llm.guild_model(guild).await.ok().flatten();
    let ctx = beacon_llm::CallContext::new(guild, "cli").model(model);
    let passages = grounded::passages(hits);
    match grounded::answer(llm, &ctx, question, None, &[], &passages).await {
        Ok(answer) => {
            let tokens = format!("{} tokens in, {} out", answer.tokens_in, answer.tokens_out);
            match answer.outcome {
                Grounded::Answer { text, citations } => {
                    println!("\nAnswer ({tokens}):\n{}\n\nSources:", beacon_support::guard::output(&text, 4000).text);
                    for n in citations {
                        if let Some(p) = passages.get(n - 1) {
                            println!("[{n}] {}", p.source);
                        }
                    }
                }
                Grounded::CannotAnswer => {
                    println!("\nThe model found no answer in these passages ({tokens}): Beacon would offer a human.")
                }
                Grounded::Uncited => println!(
                    "\nThe model's answer cited no passage ({tokens}): Beacon would quote the best passage instead."
                ),
            }
        }
        Err(e) => println!(
            "\nLLM unavailable ({}): {} Beacon would quote the best passage instead.",
            e.kind(),
            e.user_message()
        ),
    }
}

/// Scores retrieval on a BEIR-style folder, on all judged queries and on the held-out half (the
/// half the fusion was not tuned on). With `negatives` (a JSONL file of questions the corpus
/// cannot answer), also how often Beacon answers in-corpus questions and abstains on the others,
/// per retrieval mode: each mode's cut-off is chosen on the tuning halves of both sets and the
/// rates are reported on the held-out halves, at that cut-off and at the configured threshold.
pub async fn eval(
    config: Arc<Config>,
    dir: &Path,
    json: bool,
    negatives: Option<&Path>,
    threshold: Option<f32>,
) -> anyhow::Result<()> {
    let options = EvalOptions {
        chunker: beacon_kb::ChunkerConfig::default(),
        fusion: beacon_kb::FusionConfig::default(),
        embedder: crate::backends::embedder(&config, None).await,
        query_ids: None,
        reranker: crate::backends::reranker(&config).map(|r| (r, crate::backends::RERANK_DEPTH)),
    };
    let negatives = match negatives {
        Some(path) => Some(read_questions(path)?),
        None => None,
    };
    let dir = dir.to_owned();
    let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD);
    let (report, held_out, abstention) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let set = beacon_kb::BeirSet::load(&dir).context("loading the BEIR folder")?;
        let judged: Vec<(String, String)> =
            set.judged_queries().iter().map(|q| (q.id.clone(), q.text.clone())).collect();
        let ids: Vec<&str> = judged.iter().map(|(id, _)| id.as_str()).collect();
        let (tune_ids, held_ids) = beacon_kb::eval::split_queries(&ids, 0.5);
        let prepared = beacon_kb::PreparedEval::new(set, &options).context("indexing the corpus")?;
        let report = prepared.evaluate(&options.fusion, None).context("evaluating")?;
        let held_out = prepared.evaluate(&options.fusion, Some(&held_ids)).context("evaluating")?;
        let abstention = match negatives {
            Some(negatives) => {
                let texts: Vec<&str> = negatives.iter().map(String::as_str).collect();
                let (neg_tune, _) = beacon_kb::eval::split_queries(&texts, 0.5);
                let modes: Vec<(Mode, Option<&Arc<dyn beacon_kb::Embedder>>)> = match &options.embedder {
                    Some(e) => vec![(Mode::Hybrid, Some(e)), (Mode::Bm25, None)],
                    None => vec![(Mode::Bm25, None)],
                };
                let mut out = Vec::new();
                for (mode, embedder) in modes {
                    let raw = |q: &str| -> anyhow::Result<f32> {
                        let hits = prepared.search_any(&options.fusion, q, embedder, 1)?;
                        Ok(hits.first().map(|h| confidence::raw_confidence(q, h).1).unwrap_or(0.0))
                    };
                    let mut in_kb = (Vec::new(), Vec::new());
                    for (id, text) in &judged {
                        let side = if tune_ids.contains(id) { &mut in_kb.0 } else { &mut in_kb.1 };
                        side.push(raw(text)?);
                    }
                    let mut out_kb = (Vec::new(), Vec::new());
                    for text in &negatives {
                        let side = if neg_tune.contains(text) { &mut out_kb.0 } else { &mut out_kb.1 };
                        side.push(raw(text)?);
                    }
                    out.push(Abstention::new(mode, &in_kb, &out_kb, threshold));
                }
                Some(out)
            }
            None => None,
        };
        Ok((report, held_out, abstention))
    })
    .await
    .context("evaluation task")??;
    if json {
        let mut value = serde_json::to_value(report)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("held_out".into(), serde_json::to_value(held_out)?);
            if let Some(a) = &abstention {
                obj.insert("abstention".into(), serde_json::to_value(a)?);
                // The mode in use (the first), over every question, at the configured threshold.
                if let Some(first) = a.first() {
                    obj.insert("answered_rate".into(), serde_json::to_value(first.all_answered)?);
                    obj.insert("abstain_rate".into(), serde_json::to_value(first.all_abstained)?);
                    obj.insert("negatives".into(), serde_json::to_value(first.negatives)?);
                }
            }
        }
        println!("{value}");
        return Ok(());
    }
    println!("queries {}  chunks {}", report.queries, report.chunks);
    for (name, r) in [("all", &report), ("held-out", &held_out)] {
        println!(
            "{name:>8}: hit@1 {:.4}  hit@5 {:.4}  recall@5 {:.4}  MRR@10 {:.4}  nDCG@10 {:.4}  ({} queries)",
            r.hit_at_1, r.hit_at_5, r.recall_at_5, r.mrr_at_10, r.ndcg_at_10, r.queries
        );
    }
    println!(
        "query p50 {:.2} ms  p99 {:.2} ms (excluding the query embedding, p50 {:.2} ms)",
        report.query_p50_ms, report.query_p99_ms, report.embed_p50_ms
    );
    for a in abstention.iter().flatten() {
        println!(
            "{}: at threshold {:.2}, all {} in-corpus questions answered {:.3}, all {} negatives abstained {:.3}",
            a.mode.as_str(),
            a.threshold,
            a.held_in + a.tuned_in,
            a.all_answered,
            a.negatives,
            a.all_abstained
        );
        println!(
            "{}: raw cut-off chosen on the tuning halves {:.2} (in use {:.2}); held out ({} in-corpus, {} negatives): \
             at the chosen cut-off answered {}, abstained {}; at threshold {:.2} answered {}, abstained {}",
            a.mode.as_str(),
            a.tuned_cutoff,
            a.mode.cutoff(),
            a.held_in,
            a.held_negatives,
            rate(a.tuned_answered),
            rate(a.tuned_abstained),
            a.threshold,
            rate(a.answered_rate),
            rate(a.abstain_rate)
        );
    }
    Ok(())
}

/// A rate for people: three decimals, or "n/a" for an empty held-out half (a tiny set).
fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}"))
}

/// Answer/abstain rates of one retrieval mode on the held-out halves (`None` where a half is
/// empty), and over every question.
#[derive(serde::Serialize)]
struct Abstention {
    #[serde(skip)]
    mode: Mode,
    /// The mode's name.
    name: &'static str,
    /// The raw cut-off with the best balance on the tuning halves.
    tuned_cutoff: f32,
    /// Held-out rates at `tuned_cutoff`.
    tuned_answered: Option<f64>,
    tuned_abstained: Option<f64>,
    /// The configured (calibrated) threshold and the held-out rates at it.
    threshold: f32,
    answered_rate: Option<f64>,
    abstain_rate: Option<f64>,
    held_in: usize,
    held_negatives: usize,
    tuned_in: usize,
    /// Every question at the configured threshold (what `--negatives` reported before the split).
    all_answered: f64,
    all_abstained: f64,
    negatives: usize,
}

impl Abstention {
    /// `in_kb` and `negatives` are raw scores split as (tuning, held-out).
    fn new(mode: Mode, in_kb: &(Vec<f32>, Vec<f32>), negatives: &(Vec<f32>, Vec<f32>), threshold: f32) -> Self {
        let rates = |in_kb: &[f32], negatives: &[f32], answers: &dyn Fn(f32) -> bool| {
            let answered = in_kb.iter().filter(|c| answers(**c)).count() as f64 / in_kb.len().max(1) as f64;
            let abstained = negatives.iter().filter(|c| !answers(**c)).count() as f64 / negatives.len().max(1) as f64;
            (answered, abstained)
        };
        let held = |in_kb: &[f32], negatives: &[f32], answers: &dyn Fn(f32) -> bool| {
            let (a, b) = rates(in_kb, negatives, answers);
            ((!in_kb.is_empty()).then_some(a), (!negatives.is_empty()).then_some(b))
        };
        // The cut-off whose worse rate is best on the tuning halves (then the better mean).
        let tuned_cutoff = (0..=100)
            .map(|i| i as f32 / 100.0)
            .max_by(|a, b| {
                let (x, y) = (rates(&in_kb.0, &negatives.0, &|c| c >= *a), rates(&in_kb.0, &negatives.0, &|c| c >= *b));
                x.0.min(x.1).total_cmp(&y.0.min(y.1)).then((x.0 + x.1).total_cmp(&(y.0 + y.1)))
            })
            .unwrap_or(mode.cutoff());
        let (tuned_answered, tuned_abstained) = held(&in_kb.1, &negatives.1, &|c| c >= tuned_cutoff);
        let configured = |c: f32| confidence::calibrate(mode, c) >= threshold;
        let (answered_rate, abstain_rate) = held(&in_kb.1, &negatives.1, &configured);
        let all_in: Vec<f32> = in_kb.0.iter().chain(&in_kb.1).copied().collect();
        let all_neg: Vec<f32> = negatives.0.iter().chain(&negatives.1).copied().collect();
        let (all_answered, all_abstained) = rates(&all_in, &all_neg, &configured);
        Abstention {
            mode,
            name: mode.as_str(),
            tuned_cutoff,
            tuned_answered,
            tuned_abstained,
            threshold,
            answered_rate,
            abstain_rate,
            held_in: in_kb.1.len(),
            held_negatives: negatives.1.len(),
            tuned_in: in_kb.0.len(),
            all_answered,
            all_abstained,
            negatives: all_neg.len(),
        }
    }
}

/// Questions from a JSONL file: each line an object with `text` (or `query`, `q`), or a string.
fn read_questions(path: &Path) -> anyhow::Result<Vec<String>> {
    let body = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
        let text = match &v {
            serde_json::Value::String(s) => Some(s.clone()),
            other => ["text", "query", "q"].iter().find_map(|k| other[*k].as_str().map(str::to_owned)),
        };
        out.push(text.with_context(|| format!("{} line {}: no `text` field", path.display(), n + 1))?);
    }
    Ok(out)
}
