//! Beacon's fuzz harness on stable Rust: one target per reader of untrusted bytes (see
//! [`targets::all`]), each calling the owning crate's real parsing function, driven by a
//! mutation loop over a seed corpus of real payloads (`fuzz/corpus/<target>/`) and by
//! structure-aware generators built with [`arbitrary`].
//!
//! A case fails when the reader panics, breaks one of the target's invariants (checked with
//! `assert!` inside the target, so a broken invariant is a panic too) or runs longer than the
//! case timeout (a watchdog thread). The failing input is saved to `fuzz/crashes/<target>/`
//! and the run exits non-zero. There is no coverage feedback on stable; instead an input whose
//! outcome (the reader's error, digits removed) was not seen before joins the target's corpus,
//! so each kind of refusal is mutated further.

pub mod memory;
pub mod mutate;
pub mod targets;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one case of a target came to: `Ok` when the reader accepted the input, `Err` with the
/// reader's refusal otherwise (both are fine; only panics, broken invariants and hangs fail).
pub type Outcome = Result<(), String>;

/// Runs one case. Built once per run by [`Target::make`] (parsers, keys, temporary folders).
pub type Runner = Box<dyn FnMut(&[u8]) -> Outcome>;

/// One reader of untrusted bytes.
pub struct Target {
    /// Its name (also the corpus and crash folder name).
    pub name: &'static str,
    /// What it reads, through which function.
    pub about: &'static str,
    /// Largest input the mutator makes.
    pub max_len: usize,
    /// Tokens the mutator inserts (syntax of the format).
    pub dictionary: &'static [&'static [u8]],
    /// Whether inputs are JSON (then half the mutations edit the parsed tree).
    pub json: bool,
    /// Seeds built in code (added to the corpus folder's files), e.g. a freshly written index file.
    pub builtin_seeds: fn() -> Vec<Vec<u8>>,
    /// A structure-aware input from random bytes.
    pub generate: fn(&mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Vec<u8>>,
    /// Builds the case runner.
    pub make: fn() -> Result<Runner, String>,
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// This many cases per target.
    Cases(u64),
    /// This long per target.
    Time(Duration),
}

/// Where seeds are read and failures written.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `fuzz/corpus`: one folder per target.
    pub corpus: PathBuf,
    /// `fuzz/crashes`: one folder per target, written on failure.
    pub crashes: PathBuf,
}

/// One target's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Cases run.
    pub cases: u64,
    /// Of which the reader accepted.
    pub accepted: u64,
    /// Distinct outcomes seen (accepted, and each kind of refusal).
    pub outcomes: usize,
    /// Inputs in the corpus at the end (seeds and the inputs that found a new outcome).
    pub corpus: usize,
    /// Failures (panics, broken invariants, hangs), each saved under `crashes`.
    pub failures: Vec<Failure>,
    /// How long it ran.
    pub elapsed: Duration,
    /// The slowest case.
    pub slowest: Duration,
    /// The most memory one case held at once, in bytes (0 when the counting allocator of
    /// [`memory`] is not the allocator).
    pub peak_memory: usize,
}

/// What one case may take before it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseLimits {
    /// A case running longer is a hang (the watchdog saves it and exits with 3).
    pub timeout: Duration,
    /// A case holding more bytes at once fails (measured when [`memory::Counting`] is the
    /// allocator, as in the `beacon-fuzz` binary).
    pub memory: usize,
}

/// A failing input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The panic message (or "timeout").
    pub message: String,
    /// Where the input was saved.
    pub saved: PathBuf,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// A target's state could not be built.
    #[error("target {target}: {message}")]
    Setup {
        /// The target.
        target: &'static str,
        /// What failed.
        message: String,
    },
    /// Reading seeds or writing a crash failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FuzzError + '_ {
    move |source| FuzzError::Io { path: path.to_owned(), source }
}

/// The seed files of a target (sorted by name, so runs are reproducible).
pub fn seeds(target: &Target, paths: &Paths) -> Result<Vec<Vec<u8>>, FuzzError> {
    let dir = paths.corpus.join(target.name);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && !p.ends_with("README")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&dir)(e)),
    };
    files.sort();
    let mut out = (target.builtin_seeds)();
    for f in files {
        out.push(std::fs::read(&f).map_err(io(&f))?);
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    Ok(out)
}

/// An outcome's class: the refusal with digits and quoted input removed, so "line 3" and
/// "line 4" are one class.
fn class(outcome: &Outcome) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match outcome {
        Ok(()) => 0u8.hash(&mut h),
        Err(message) => {
            let mut quoted = false;
            for c in message.chars().take(80) {
                if matches!(c, '`' | '"' | '“' | '”') {
                    quoted = !quoted;
                } else if !quoted && !c.is_ascii_digit() {
                    c.hash(&mut h);
                }
            }
        }
    }
    h.finish()
}

/// Saves a failing input and returns where.
fn save(paths: &Paths, target: &str, input: &[u8]) -> Result<PathBuf, FuzzError> {
    let dir = paths.crashes.join(target);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let digest = digest(input);
    let path = dir.join(format!("crash-{digest:016x}"));
    std::fs::write(&path, input).map_err(io(&path))?;
    Ok(path)
}

/// A stable 64-bit digest of an input (FNV-1a), for file names and for seeding a case's choices.
pub fn digest(input: &[u8]) -> u64 {
    input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

/// Runs one case, catching a panic.
fn run_case(runner: &mut Runner, input: &[u8]) -> Result<Outcome, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(input))).map_err(|p| panic_message(&*p))
}

/// A watchdog: if a case runs past `limit`, the input is saved and the process exits with 3
/// (a hung reader cannot be interrupted from inside).
struct Watchdog {
    started: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    input: Arc<std::sync::Mutex<Vec<u8>>>,
    epoch: Instant,
}

impl Watchdog {
    fn start(target: &'static str, paths: Paths, limit: Duration) -> Watchdog {
        let started = Arc::new(AtomicU64::new(u64::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let input = Arc::new(std::sync::Mutex::new(Vec::new()));
        let epoch = Instant::now();
        let (s, st, inp) = (started.clone(), stop.clone(), input.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let at = s.load(Ordering::Relaxed);
                if at != u64::MAX && epoch.elapsed().as_millis() as u64 > at + limit.as_millis() as u64 {
                    let bytes = inp.lock().map(|b| b.clone()).unwrap_or_default();
                    match save(&paths, target, &bytes) {
                        Ok(p) => {
                            eprintln!("{target}: a case ran longer than {limit:?}; input saved to {}", p.display())
                        }
                        Err(e) => eprintln!("{target}: a case ran longer than {limit:?}; saving it failed: {e}"),
                    }
                    std::process::exit(3);
                }
            }
        });
        Watchdog { started, stop, input, epoch }
    }

    fn arm(&self, input: &[u8]) {
        if let Ok(mut b) = self.input.lock() {
            b.clear();
            b.extend_from_slice(input);
        }
        self.started.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.started.store(u64::MAX, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Builds a target's runner (the process's TLS provider first: the LLM readers build, but
/// never use, an HTTPS client).
fn make(target: &Target) -> Result<Runner, FuzzError> {
    beacon_http::install_crypto_provider();
    (target.make)().map_err(|message| FuzzError::Setup { target: target.name, message })
}

/// Most inputs a target's corpus grows to.
const MAX_CORPUS: usize = 4096;

/// Runs `target` for `budget`, from `seed` (the random choices; the same seed and corpus give
/// the same cases).
pub fn run(target: &Target, paths: &Paths, budget: Budget, seed: u64, limits: CaseLimits) -> Result<Report, FuzzError> {
    let mut runner = make(target)?;
    let mut corpus = seeds(target, paths)?;
    let seed_count = corpus.len();
    let mut rng = fastrand::Rng::with_seed(seed ^ digest(target.name.as_bytes()));
    let mut seen = HashSet::new();
    let mut failed = HashSet::new();
    let mut report = Report {
        target: target.name,
        cases: 0,
        accepted: 0,
        outcomes: 0,
        corpus: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        peak_memory: 0,
    };
    let watchdog = Watchdog::start(target.name, paths.clone(), limits.timeout);
    let start = Instant::now();
    let mut scratch: Vec<u8>;
    loop {
        let done = match budget {
            Budget::Cases(n) => report.cases >= n,
            Budget::Time(t) => report.cases.is_multiple_of(64) && start.elapsed() >= t,
        };
        if done {
            break;
        }
        // The seeds themselves first, then generated and mutated inputs.
        let i = report.cases as usize;
        let input: &[u8] = if i < seed_count {
            &corpus[i]
        } else if rng.u8(..) < 64 {
            let mut raw = vec![0u8; rng.usize(0..4096)];
            rng.fill(&mut raw);
            scratch = (target.generate)(&mut arbitrary::Unstructured::new(&raw)).unwrap_or_default();
            scratch.truncate(target.max_len);
            &scratch
        } else {
            let base = &corpus[rng.usize(..corpus.len())];
            let other = &corpus[rng.usize(..corpus.len())];
            scratch = mutate::mutate(&mut rng, base, other, target);
            &scratch
        };
        watchdog.arm(input);
        let base = memory::start_case();
        let t0 = Instant::now();
        let mut outcome = run_case(&mut runner, input);
        let took = t0.elapsed();
        let held = memory::case_peak(base);
        watchdog.disarm();
        report.slowest = report.slowest.max(took);
        report.peak_memory = report.peak_memory.max(held);
        if held > limits.memory && outcome.is_ok() {
            outcome =
                Err(format!("the case held {} MiB at once, over the {} MiB cap", held >> 20, limits.memory >> 20));
        }
        report.cases += 1;
        match outcome {
            Ok(outcome) => {
                if outcome.is_ok() {
                    report.accepted += 1;
                }
                if seen.insert(class(&outcome)) && i >= seed_count && corpus.len() < MAX_CORPUS {
                    corpus.push(input.to_vec());
                }
            }
            Err(message) => {
                // One report per distinct panic message (the first input that caused it).
                let key: String = message.chars().filter(|c| !c.is_ascii_digit()).take(120).collect();
                if failed.insert(key) {
                    let saved = save(paths, target.name, input)?;
                    report.failures.push(Failure { message, saved });
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    report.outcomes = seen.len();
    report.corpus = corpus.len();
    Ok(report)
}

/// Runs one saved input through `target` (to reproduce a failure): the reader's outcome, or
/// the panic message.
pub fn replay(target: &Target, input: &[u8]) -> Result<Result<Outcome, String>, FuzzError> {
    let mut runner = make(target)?;
    Ok(run_case(&mut runner, input))
}

/// Silences the default panic output (panics are caught and reported per target).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}
