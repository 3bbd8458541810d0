//! `beacon-fuzz`: runs every fuzz target (or those named) for a number of cases or seconds and
//! prints, per target, the cases run and the failures; exits 1 when any target failed (the
//! inputs are in `fuzz/crashes/<target>/`), 3 when a case hung. `--replay FILE --target NAME`
//! runs one saved input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use beacon_fuzz::{Budget, CaseLimits, Paths, Report, memory, targets};

// Every byte a case holds is counted, so a reader that allocates without bound fails its case.
#[global_allocator]
static ALLOCATOR: memory::Counting = memory::Counting;
use clap::Parser;

/// Fuzz Beacon's readers of untrusted input.
#[derive(Debug, Parser)]
#[command(name = "beacon-fuzz")]
struct Args {
    /// Cases per target.
    #[arg(long, conflicts_with = "seconds")]
    cases: Option<u64>,
    /// Seconds per target.
    #[arg(long)]
    seconds: Option<f64>,
    /// Only these targets (repeatable); all by default.
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Seed of the random choices (the same seed and corpus give the same cases).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The seed corpus: one folder per target.
    #[arg(long, default_value = "fuzz/corpus")]
    corpus: PathBuf,
    /// Where failing inputs are written.
    #[arg(long, default_value = "fuzz/crashes")]
    crashes: PathBuf,
    /// A case running longer than this many seconds is a hang.
    #[arg(long, default_value_t = 10)]
    case_timeout: u64,
    /// A case holding more than this many MiB at once fails.
    #[arg(long, default_value_t = 256)]
    case_memory_mib: usize,
    /// Run this one saved input through the (one) `--target`.
    #[arg(long, requires = "targets")]
    replay: Option<PathBuf>,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let all = targets::all();
    if args.list {
        for t in &all {
            println!("{:<16} {}", t.name, t.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for name in &args.targets {
        if !all.iter().any(|t| t.name == name) {
            bail!("no target {name}; `beacon-fuzz --list` names them");
        }
    }
    let chosen: Vec<_> =
        all.into_iter().filter(|t| args.targets.is_empty() || args.targets.iter().any(|n| n == t.name)).collect();
    if let Some(file) = &args.replay {
        let input = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        for t in &chosen {
            match beacon_fuzz::replay(t, &input)? {
                Ok(outcome) => println!("{}: no failure ({outcome:?})", t.name),
                Err(panic) => {
                    println!("{}: FAILED: {panic}", t.name);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let budget = match (args.cases, args.seconds) {
        (Some(n), _) => Budget::Cases(n),
        (None, Some(s)) if s > 0.0 && s.is_finite() => Budget::Time(Duration::from_secs_f64(s)),
        (None, Some(_)) => bail!("--seconds must be a positive number"),
        (None, None) => Budget::Cases(10_000),
    };
    let paths = Paths { corpus: args.corpus.clone(), crashes: args.crashes.clone() };
    beacon_fuzz::quiet_panics();
    println!(
        "{:<16} {:>12} {:>12} {:>9} {:>7} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "target", "cases", "accepted", "outcomes", "corpus", "failures", "seconds", "cases/s", "slowest", "peak mem"
    );
    let limits = CaseLimits {
        timeout: Duration::from_secs(args.case_timeout),
        memory: args.case_memory_mib.saturating_mul(1 << 20),
    };
    let mut reports: Vec<Report> = Vec::new();
    for t in &chosen {
        let r = beacon_fuzz::run(t, &paths, budget, args.seed, limits)?;
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<16} {:>12} {:>12} {:>9} {:>7} {:>9} {:>10.1} {:>10.0} {:>7}ms {:>6}MiB",
            r.target,
            r.cases,
            r.accepted,
            r.outcomes,
            r.corpus,
            r.failures.len(),
            secs,
            r.cases as f64 / secs.max(1e-9),
            r.slowest.as_millis(),
            r.peak_memory.div_ceil(1 << 20)
        );
        for f in &r.failures {
            println!("    FAILURE {}: {}", f.saved.display(), f.message.lines().next().unwrap_or_default());
        }
        reports.push(r);
    }
    let cases: u64 = reports.iter().map(|r| r.cases).sum();
    let failures: usize = reports.iter().map(|r| r.failures.len()).sum();
    println!("total: {cases} cases over {} targets, {failures} failures", reports.len());
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
