//! `beacon ingest`, `beacon ask` and `beacon eval`: the knowledge base from the command line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_config::Config;
use beacon_kb::{EvalOptions, Phase, Progress};
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

/// Scores retrieval on a BEIR-style folder; with `negatives` (a JSONL file of questions the corpus
/// cannot answer), also how often Beacon answers in-corpus questions and abstains on the others
/// at the support module's confidence threshold, with a sweep of thresholds to calibrate it.
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
    };
    let negatives = match negatives {
        Some(path) => Some(read_questions(path)?),
        None => None,
    };
    let dir = dir.to_owned();
    let threshold = threshold.unwrap_or(beacon_support::confidence::DEFAULT_THRESHOLD);
    let (report, abstention) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let set = beacon_kb::BeirSet::load(&dir).context("loading the BEIR folder")?;
        let in_kb: Vec<String> = set.judged_queries().iter().map(|q| q.text.clone()).collect();
        let prepared = beacon_kb::PreparedEval::new(set, &options).context("indexing the corpus")?;
        let report = prepared.evaluate(&options.fusion, None).context("evaluating")?;
        let abstention = match negatives {
            Some(negatives) => {
                let confidences = |questions: &[String]| -> anyhow::Result<Vec<f32>> {
                    questions
                        .iter()
                        .map(|q| {
                            let hits = prepared.search_any(&options.fusion, q, options.embedder.as_ref(), 1)?;
                            Ok(hits.first().map(|h| beacon_support::confidence::confidence(q, h)).unwrap_or(0.0))
                        })
                        .collect()
                };
                Some(Abstention::new(confidences(&in_kb)?, confidences(&negatives)?, threshold))
            }
            None => None,
        };
        Ok((report, abstention))
    })
    .await
    .context("evaluation task")??;
    if let Some(a) = &abstention
        && !json
    {
        println!("threshold  answered_rate  abstain_rate");
        for (t, answered, abstained) in &a.sweep {
            println!("{t:>9.2}  {answered:>13.3}  {abstained:>12.3}");
        }
        println!("best balance at threshold {:.2}", a.best_threshold);
    }
    if json {
        let mut value = serde_json::to_value(report)?;
        if let (Some(a), Some(obj)) = (&abstention, value.as_object_mut()) {
            obj.insert("answered_rate".into(), a.answered_rate.into());
            obj.insert("abstain_rate".into(), a.abstain_rate.into());
            obj.insert("threshold".into(), f64::from(a.threshold).into());
            obj.insert("negatives".into(), a.negatives.into());
        }
        println!("{value}");
    } else {
        println!(
            "queries {}  chunks {}\nhit@5 {:.4}  recall@5 {:.4}  MRR@10 {:.4}  nDCG@10 {:.4}\nquery p50 {:.2} ms  p99 {:.2} ms (excluding the query embedding, p50 {:.2} ms)",
            report.queries,
            report.chunks,
            report.hit_at_5,
            report.recall_at_5,
            report.mrr_at_10,
            report.ndcg_at_10,
            report.query_p50_ms,
            report.query_p99_ms,
            report.embed_p50_ms
        );
        if let Some(a) = &abstention {
            println!(
                "at threshold {:.2}: answered {:.3} of {} in-corpus questions, abstained on {:.3} of {} negatives",
                a.threshold, a.answered_rate, report.queries, a.abstain_rate, a.negatives
            );
        }
    }
    Ok(())
}

/// Answer/abstain rates at one confidence threshold, and across a sweep.
struct Abstention {
    threshold: f32,
    answered_rate: f64,
    abstain_rate: f64,
    negatives: usize,
    sweep: Vec<(f32, f64, f64)>,
    /// The threshold with the highest mean of the two rates.
    best_threshold: f32,
}

impl Abstention {
    fn new(in_kb: Vec<f32>, negatives: Vec<f32>, threshold: f32) -> Abstention {
        let rates = |t: f32| {
            let answered = in_kb.iter().filter(|c| **c >= t).count() as f64 / in_kb.len().max(1) as f64;
            let abstained = negatives.iter().filter(|c| **c < t).count() as f64 / negatives.len().max(1) as f64;
            (answered, abstained)
        };
        let sweep: Vec<(f32, f64, f64)> = (0..=20)
            .map(|i| {
                let t = i as f32 * 0.05;
                let (a, b) = rates(t);
                (t, a, b)
            })
            .collect();
        let best_threshold =
            sweep.iter().max_by(|x, y| (x.1 + x.2).total_cmp(&(y.1 + y.2))).map(|x| x.0).unwrap_or(threshold);
        let (answered_rate, abstain_rate) = rates(threshold);
        Abstention { threshold, answered_rate, abstain_rate, negatives: negatives.len(), sweep, best_threshold }
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
