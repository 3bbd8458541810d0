//! The `beacon-fuzz` command end to end: a short pass over every target from the repository's
//! seed corpus finds no failure, and a failing input is saved and makes the command fail.

use std::process::Command;

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Runs `beacon-fuzz` with `args` on the repository's corpus, failures saved under `crashes`.
fn fuzz(args: &[&str], crashes: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_beacon-fuzz"))
        .args(args)
        .arg("--corpus")
        .arg(corpus())
        .arg("--crashes")
        .arg(crashes)
        .output()
        .expect("run beacon-fuzz")
}

#[test]
fn a_short_pass_over_every_target_finds_no_failure() {
    let crashes = tempfile::tempdir().expect("tempdir");
    let out = fuzz(&["--cases", "300"], crashes.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for target in beacon_fuzz::targets::all() {
        let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(target.name));
        let cases = line.and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<u64>().ok());
        assert_eq!(cases, Some(300), "{}: {stdout}", target.name);
        // The counting allocator is installed: every reader holds some memory per case.
        let peak = line.and_then(|l| l.split_whitespace().last()).and_then(|m| m.strip_suffix("MiB"));
        assert!(peak.and_then(|m| m.parse::<u64>().ok()).is_some_and(|m| m >= 1), "{}: {stdout}", target.name);
    }
    assert!(stdout.contains(&format!("total: {} cases", 300 * beacon_fuzz::targets::all().len())), "{stdout}");
}

#[test]
fn every_target_has_seeds_from_the_repository() {
    let paths = beacon_fuzz::Paths { corpus: corpus(), crashes: std::env::temp_dir() };
    for target in beacon_fuzz::targets::all() {
        let seeds = beacon_fuzz::seeds(&target, &paths).expect("read seeds");
        assert!(!seeds.is_empty() && seeds.iter().all(|s| !s.is_empty()), "{}: no seeds", target.name);
    }
}

#[test]
fn a_case_over_the_memory_cap_fails_and_is_saved() {
    // A cap of 0 MiB: the first case that holds any memory at all is over it.
    let crashes = tempfile::tempdir().expect("tempdir");
    let out = fuzz(&["--target", "faq_csv", "--cases", "3", "--case-memory-mib", "0"], crashes.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("over the 0 MiB cap"), "{stdout}");
    let saved = std::fs::read_dir(crashes.path().join("faq_csv")).expect("crash folder").count();
    assert_eq!(saved, 1, "one distinct failure, saved once");
}
