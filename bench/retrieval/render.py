#!/usr/bin/env python3
"""Render results/*.json of run_all.sh into BENCHMARKS.md (ratios are beacon-kb vs ChromaDB)."""
import glob
import json
import os
import platform
import sys


def load(p):
    with open(p) as f:
        return json.load(f)


def main():
    res, out = sys.argv[1], sys.argv[2]
    bq = load(os.path.join(res, "beacon_quality.json"))
    cq = load(os.path.join(res, "chroma_quality.json"))
    emb = load(os.path.join(res, "embed.json"))
    lines = ["# Retrieval benchmark: beacon-kb vs ChromaDB", ""]
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.append(f"Machine: {os.cpu_count()} cores, {platform.machine()}, load average at the end of the run {loadavg} "
                 "(a shared machine: p99 values above ~1 ms mostly measure preemption by other processes); "
                 "one run of `bench/retrieval/run_all.sh` (release build of the beacon-kb examples; "
                 "`cargo build --release -p beacon-kb --examples && BUILD=0 bash bench/retrieval/run_all.sh`, "
                 "defaults `SIZES=\"10000 100000\" GUILDS=10 COLD_N=10000`). "
                 "Same chunks (400 chars, 80 overlap, markdown-aware) and the same all-MiniLM-L6-v2 embeddings "
                 "(computed once by beacon-kb with candle) for both systems. ChromaDB runs in-process (EphemeralClient, "
                 "cosine HNSW with default parameters).")
    lines += ["", "## Quality: zaragoza FAQ (503 queries; query = q, document = answer)", "",
              "Fusion was tuned on a hash split of the queries (`tune`) and is reported on the other half (`held-out`) and on all.", "",
              "| system | split | hit@5 | recall@5 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|---|"]
    keys = ["hit_at_5", "recall_at_5", "mrr_at_10", "ndcg_at_10"]
    lines.append("| ChromaDB dense | all | " + " | ".join(f"{cq[k]:.3f}" for k in keys) + " |")
    for name in ["dense", "bm25", "rrf_equal", "tuned"]:
        row = bq.get(name)
        if not row:
            continue
        for split in ["tune", "held_out", "all"]:
            r = row[split]
            lines.append(f"| beacon-kb {name} | {split} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    t = bq["tuned"]["all"]
    lines += ["", "Ratio beacon-kb tuned / ChromaDB dense (all queries): " +
              ", ".join(f"{k} {t[k] / cq[k]:.3f}×" for k in keys if cq[k]), "",
              f"Tuned fusion: `{json.dumps(bq['tuned']['config'])}`.", ""]
    lines += ["## Latency, build rate, memory", "",
              "Chunks are the zaragoza chunks repeated; vectors are the real ones, then perturbed copies. "
              "`filtered` = the collection holds all chunks of 10 guilds and the query is restricted to one "
              "guild (ChromaDB: `where={guild}`; beacon-kb: that guild's own index). Latency excludes the query "
              f"embedding, which takes p50 {emb['query_embed_p50_ms']:.1f} ms / p99 {emb['query_embed_p99_ms']:.1f} ms "
              f"with candle (model load {emb['model_load_ms']:.0f} ms; chunks embed at {emb['chunk_embed_per_s']:.0f}/s).", "",
              "| chunks | metric | ChromaDB | beacon-kb | ratio |", "|---|---|---|---|---|"]
    for p in sorted(glob.glob(os.path.join(res, "chroma_scale_*.json")), key=lambda p: int(p.rsplit("_", 1)[1][:-5])):
        n = p.rsplit("_", 1)[1][:-5]
        c = load(p)
        b = load(os.path.join(res, f"beacon_scale_{n}.json"))
        rows = [
            ("query p50 ms, unfiltered", c["unfiltered_p50_ms"], b["unfiltered_p50_ms"], "lower"),
            ("query p99 ms, unfiltered", c["unfiltered_p99_ms"], b["unfiltered_p99_ms"], "lower"),
            ("query p50 ms, per-guild filter", c["filtered_p50_ms"], b["filtered_p50_ms"], "lower"),
            ("query p99 ms, per-guild filter", c["filtered_p99_ms"], b["filtered_p99_ms"], "lower"),
            ("build, chunks/s (precomputed vectors)", c["add_chunks_per_s"], b["build_chunks_per_s"], "higher"),
            ("RSS growth MB while indexing", c["rss_mb_after_index"] - c["rss_mb_before_index"],
             b["rss_mb_after_index"] - b["rss_mb_before_index"], "lower"),
        ]
        for label, cv, bv, better in rows:
            ratio = (cv / bv if better == "lower" else bv / cv) if bv and cv else float("nan")
            verdict = f"{ratio:.1f}× better" if ratio >= 1 else f"{1 / ratio:.1f}× worse"
            lines.append(f"| {n} | {label} | {cv:.3f} | {bv:.3f} | {verdict} |")
        lines.append(f"| {n} | exact top-5 found by the index | {c['hnsw_recall_at_5_vs_exact']:.2f} | 1.00 (exact) | |")
    cc = load(os.path.join(res, "chroma_cold.json"))
    bc = load(os.path.join(res, "beacon_cold.json"))
    rebuild_path = os.path.join(res, "beacon_cold_rebuild.json")
    br = load(rebuild_path) if os.path.exists(rebuild_path) else None
    bw = load(os.path.join(res, "beacon_db_write.json"))

    def beacon_cold(r):
        return (f"{r['first_query_ms']:.1f} (open DB and knowledge base {r['open_ms']:.1f}, index "
                f"{'read from its file' if r['origin'] == 'Disk' else 'rebuilt from the database'} "
                f"{r['index_load_ms']:.1f}, search {r['search_ms']:.2f})")

    lines += ["", "## Cold start", "",
              f"Fresh process (a new `bench_cold query` process per row), {bc['chunks']} chunks of one guild on disk, "
              "precomputed query vector (model load not counted; reported above). beacon-kb's time runs from "
              "connecting to SQLite to the first hits: open the store and the knowledge base, look up the "
              "guild's index version, load the index, search. The files are in the page cache (written just "
              "before), for both systems.", "",
              "| system | first query ms |", "|---|---|",
              f"| ChromaDB (PersistentClient) | {cc['first_query_ms']:.1f} (+ {cc['import_ms']:.0f} ms import) |",
              f"| beacon-kb, persisted index file | {beacon_cold(bc)} |"]
    if br:
        lines.append(f"| beacon-kb, no index file (rebuilt from SQLite) | {beacon_cold(br)} |")
    lines += ["", f"beacon-kb writes chunks with embeddings to SQLite at {bw['db_write_chunks_per_s']:.0f} chunks/s; "
              f"building the {bw['chunks']}-chunk index from the database and writing its file "
              f"({bw['index_file_mb']:.1f} MB) takes {bw['index_rebuild_and_write_ms']:.0f} ms.", ""]
    # Status against the targets, computed from this run.
    status = ["## Targets (issue: knowledge base and retrieval engine)", ""]
    beat = all(t[k] > cq[k] for k in keys)
    status.append(f"- Beat ChromaDB dense on every quality metric: {'yes' if beat else 'no'} "
                  f"(hit@5 {t['hit_at_5']:.3f} vs {cq['hit_at_5']:.3f}; aim 0.88 not reached with all-MiniLM-L6-v2).")
    big = os.path.join(res, "beacon_scale_100000.json")
    if os.path.exists(big):
        b = load(big)
        c = load(os.path.join(res, "chroma_scale_100000.json"))
        status.append(f"- Query p99 ≤ 2 ms at 100k chunks with the per-guild filter: p50 {b['filtered_p50_ms']:.2f} ms, "
                      f"p99 {b['filtered_p99_ms']:.2f} ms — {'met' if b['filtered_p99_ms'] <= 2 else 'not met'} "
                      "on this machine.")
        status.append(f"- Build ≥ 10× ChromaDB's add rate: {b['build_chunks_per_s'] / c['add_chunks_per_s']:.1f}× "
                      "(in-memory index build; SQLite persistence of chunks and vectors is listed under cold start).")
    met = bc["first_query_ms"] <= 50
    status.append(f"- First query in a fresh process ≤ 50 ms: {bc['first_query_ms']:.1f} ms with the persisted index "
                  f"file — {'met' if met else 'not met'}" + (f" (without the file, rebuilding from the database: "
                  f"{br['first_query_ms']:.0f} ms)." if br else "."))
    status.append("")
    lines += status
    replace_section(out, "\n".join(lines))


BEGIN = "<!-- retrieval-benchmark:begin (bench/retrieval/render.py writes between these markers) -->"
END = "<!-- retrieval-benchmark:end -->"


def replace_section(path, body):
    """Writes the retrieval section between its markers, leaving the rest of the file alone.

    Without markers the section is recognised by its title and runs to the end of its
    `## Targets` subsection (the next `## ` heading after it, or the end of the file)."""
    section = f"{BEGIN}\n{body.rstrip()}\n{END}\n"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
    elif "# Retrieval benchmark: beacon-kb vs ChromaDB" in text:
        head, rest = text.split("# Retrieval benchmark: beacon-kb vs ChromaDB", 1)
        targets = rest.find("\n## Targets")
        nxt = rest.find("\n## ", targets + 1) if targets >= 0 else -1
        tail = rest[nxt + 1:] if nxt >= 0 else ""
    else:
        head, tail = text, ""
    if head and not head.endswith("\n\n"):
        head = head.rstrip("\n") + "\n\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + section + ("\n" + tail if tail else ""))


if __name__ == "__main__":
    main()
