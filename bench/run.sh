#!/usr/bin/env bash
# Beacon against its peers, side by side in one run (issue 8): builds the release binaries,
# installs the peers (pinned, from npm and pip), runs the five scenarios against Beacon and the
# peers, prints absolute figures and ratios, writes bench/results/latest.{md,json} and puts the
# table in the "Peers" section at the top of BENCHMARKS.md.
#
#   bench/run.sh                        # the documented full run (10-minute soak, ~30 min)
#   bench/run.sh --soak 60              # a shorter soak while developing
#   bench/run.sh --only interactions,ingest
#   BENCH_NO_BUILD=1 bench/run.sh       # reuse target/release (e.g. while others hold the build lock)
#
# Needs: cargo, node + npm, python3 + pip; the retrieval scenario also needs what
# bench/retrieval/run_all.sh lists.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  echo "== building release binaries"
  cargo build --release -p beacon -p beacon-testkit -p beacon-bench --bins
  cargo build --release -p beacon --example answer_overhead
else
  echo "== BENCH_NO_BUILD=1: using the release binaries already in target/release"
fi

echo "== installing peers (pinned)"
(cd "$HERE/peers" && npm ci --no-audit --no-fund --loglevel=error)
python3 -m pip install --quiet -r "$HERE/peers/requirements.txt"

echo "== running"
python3 "$HERE/bench.py" --command "bench/run.sh${*:+ $*}" "$@"

python3 "$HERE/publish.py" "$HERE/results/latest.md" "$ROOT/BENCHMARKS.md"
echo "== wrote bench/results/latest.md and the Peers section of BENCHMARKS.md"
