#!/usr/bin/env bash
# Runs every fuzz target (crates/beacon-fuzz) and prints, per target, the cases run, what the
# readers accepted, the distinct outcomes, the failures and the speed. A failing input is saved
# to fuzz/crashes/<target>/ and the script exits non-zero (1: failures, 3: a case hung).
#
#   scripts/fuzz.sh                      10 000 cases per target
#   scripts/fuzz.sh --cases 1000000      a long pass (see RELIABILITY.md)
#   scripts/fuzz.sh --seconds 60         one minute per target
#   scripts/fuzz.sh --target faq_csv     one target (repeatable); --list names them
#   scripts/fuzz.sh --replay fuzz/crashes/faq_csv/crash-… --target faq_csv
#
# Built as the workspace's tests build it (`cargo build --workspace --tests`: one build, the same
# features, so nothing is compiled twice); FUZZ_CARGO_FLAGS=--release builds it optimised where
# a release build of its dependencies is affordable.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2086
cargo build --workspace --tests ${FUZZ_CARGO_FLAGS:-} --quiet
profile=debug
[[ "${FUZZ_CARGO_FLAGS:-}" == *--release* ]] && profile=release
exec "target/$profile/beacon-fuzz" "$@"
