//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The model directory from `BEACON_EMBED_MODEL_DIR`, or `None` (test skipped with a note).
/// Panics when `BEACON_TEST_REQUIRE_MODEL=1` and the model is absent, so CI cannot skip silently.
pub fn model_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BEACON_EMBED_MODEL_DIR").map(PathBuf::from);
    let present = dir.as_ref().is_some_and(|d| beacon_kb::embed::MODEL_FILES.iter().all(|f| d.join(f).is_file()));
    if present {
        return dir;
    }
    if std::env::var("BEACON_TEST_REQUIRE_MODEL").as_deref() == Ok("1") {
        panic!(
            "{test}: BEACON_TEST_REQUIRE_MODEL=1 but BEACON_EMBED_MODEL_DIR ({dir:?}) does not hold {:?}",
            beacon_kb::embed::MODEL_FILES
        );
    }
    eprintln!("note: {test} skipped: set BEACON_EMBED_MODEL_DIR to a MiniLM model directory to run it");
    None
}
