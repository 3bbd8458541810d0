#!/usr/bin/env bash
# Beacon against its floors and peers, side by side in one run (issues 8 and 25): builds the
# release binaries, installs the peers (pinned, from npm and pip), runs the five scenarios against
# Beacon, the floors (beacon-bench floor-interactions / floor-gateway) and the peers, prints CPU-µs
# per operation first, then absolute figures and ratios, writes bench/results/latest.{md,json}
# and puts the table in the "Peers" section at the top of BENCHMARKS.md.
#
#   bench/run.sh                        # the documented full run (1k/10k/100k guilds, 10-minute
#                                       # soak at 100k guilds, ~35 min)
#   bench/run.sh --soak 60              # a shorter soak while developing
#   bench/run.sh --only interactions,ingest
#   bench/run.sh --only ingest --guilds 1000,10000 --soak-guilds 1000   # smaller while developing
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
