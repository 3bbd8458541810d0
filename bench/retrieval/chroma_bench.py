#!/usr/bin/env python3
"""ChromaDB side of the retrieval benchmark, on the chunks and vectors beacon-kb exported.

usage:
  chroma_bench.py quality EXPORT_DIR BEIR_DIR          -> JSON: hit@1, hit@5, recall@5, MRR@10, nDCG@10,
                                                          on all queries and on the held-out half
  chroma_bench.py scale EXPORT_DIR N GUILDS VECTORS_OUT -> JSON: add rate, p50/p99 with/without a
                                                        per-guild filter, RSS, HNSW recall vs exact;
                                                        writes the N vectors it used to VECTORS_OUT
  chroma_bench.py cold EXPORT_DIR N                     -> JSON: first query in a fresh process
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

DIM = 384


def load_export(d):
    chunks = [json.loads(l) for l in open(os.path.join(d, "chunks.jsonl"), encoding="utf-8")]
    cv = np.fromfile(os.path.join(d, "chunk_vectors.f32"), dtype="<f4").reshape(-1, DIM)
    queries = [json.loads(l) for l in open(os.path.join(d, "queries.jsonl"), encoding="utf-8")]
    qv = np.fromfile(os.path.join(d, "query_vectors.f32"), dtype="<f4").reshape(-1, DIM)
    return chunks, cv, queries, qv


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def pct(values, q):
    v = sorted(values)
    if not v:
        return 0.0
    r = math.ceil(q * len(v))
    return v[min(max(r, 1), len(v)) - 1]


def qrels(beir):
    out = {}
    for i, line in enumerate(open(os.path.join(beir, "qrels.tsv"), encoding="utf-8")):
        cols = line.rstrip("\n").split("\t")
        if i == 0 and cols[0] == "query-id":
            continue
        if len(cols) >= 3 and float(cols[-1]) > 0:
            out.setdefault(cols[0], {})[cols[-2]] = int(round(float(cols[-1])))
    return out


def held_out(qid, share=0.5):
    """The same hash split as beacon-kb's `eval::split_queries`: the first 4 bytes of SHA-256."""
    import hashlib

    x = int.from_bytes(hashlib.sha256(qid.encode()).digest()[:4], "big") / 0xFFFFFFFF
    return x < share


def score(ranked, rel):
    total = len(rel)
    hit1 = 1.0 if ranked[:1] and ranked[0] in rel else 0.0
    top5 = ranked[:5]
    found = sum(1 for d in top5 if d in rel)
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked[:10]) if d in rel), 0.0)
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return hit1, (1.0 if found else 0.0), found / total, rr, (dcg / idcg if idcg else 0.0)


def client():
    import chromadb
    from chromadb.config import Settings

    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


def add_all(col, ids, vectors, docs, metas, batch=5000):
    for s in range(0, len(ids), batch):
        col.add(ids=ids[s:s + batch], embeddings=vectors[s:s + batch], documents=docs[s:s + batch],
                metadatas=metas[s:s + batch])


def quality(export, beir):
    chunks, cv, queries, qv = load_export(export)
    rels = qrels(beir)
    col = client().create_collection("quality", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    add_all(col, [str(i) for i in range(len(chunks))], cv, [c["text"] for c in chunks],
            [{"doc": c["doc"]} for c in chunks])
    keys = ["hit_at_1", "hit_at_5", "recall_at_5", "mrr_at_10", "ndcg_at_10"]
    sums = {"all": [0.0] * len(keys), "held_out": [0.0] * len(keys)}
    n = {"all": 0, "held_out": 0}
    for q, v in zip(queries, qv):
        rel = rels.get(q["_id"])
        if not rel:
            continue
        res = col.query(query_embeddings=[v], n_results=min(50, len(chunks)), include=["metadatas"])
        seen, ranked = set(), []
        for m in res["metadatas"][0]:
            if m["doc"] not in seen:
                seen.add(m["doc"])
                ranked.append(m["doc"])
        parts = ["all", "held_out"] if held_out(q["_id"]) else ["all"]
        for i, x in enumerate(score(ranked, rel)):
            for part in parts:
                sums[part][i] += x
        for part in parts:
            n[part] += 1
    out = {k: s / max(n["all"], 1) for k, s in zip(keys, sums["all"])}
    out["queries"] = n["all"]
    out["held_out"] = {k: s / max(n["held_out"], 1) for k, s in zip(keys, sums["held_out"])}
    out["held_out"]["queries"] = n["held_out"]
    return out


def expand(cv, n, seed=42):
    """The first len(cv) rows are the real vectors; later rows repeat them with noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    base = len(cv)
    out[: min(n, base)] = cv[: min(n, base)]
    if n > base:
        idx = np.arange(base, n) % base
        noise = rng.random((n - base, DIM), dtype=np.float32) - 0.5
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        v = cv[idx] + 0.3 * noise
        out[base:] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def scale(export, n, guilds, vectors_out):
    chunks, cv, queries, qv = load_export(export)
    vectors = expand(cv, n)
    vectors.astype("<f4").tofile(vectors_out)
    ids = [str(i) for i in range(n)]
    docs = [chunks[i % len(chunks)]["text"] for i in range(n)]
    metas = [{"guild": i % guilds, "doc": chunks[i % len(chunks)]["doc"]} for i in range(n)]
    rss0 = rss_mb()
    col = client().create_collection("scale", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    t = time.perf_counter()
    add_all(col, ids, vectors, docs, metas)
    add_s = time.perf_counter() - t
    rss1 = rss_mb()
    qs = list(qv)
    for v in qs[:20]:
        col.query(query_embeddings=[v], n_results=5)
    un, fi, overlap = [], [], []
    exact = np.argsort(-(np.stack(qs) @ vectors.T), axis=1)[:, :5]
    for i, v in enumerate(qs):
        t = time.perf_counter()
        res = col.query(query_embeddings=[v], n_results=5, include=[])
        un.append((time.perf_counter() - t) * 1e3)
        got = set(int(x) for x in res["ids"][0])
        overlap.append(len(got & set(int(x) for x in exact[i])) / 5.0)
    for i, v in enumerate(qs):
        t = time.perf_counter()
        col.query(query_embeddings=[v], n_results=5, where={"guild": i % guilds}, include=[])
        fi.append((time.perf_counter() - t) * 1e3)
    return {
        "chunks": n, "guilds": guilds,
        "add_chunks_per_s": n / add_s,
        "unfiltered_p50_ms": pct(un, 0.5), "unfiltered_p99_ms": pct(un, 0.99),
        "filtered_p50_ms": pct(fi, 0.5), "filtered_p99_ms": pct(fi, 0.99),
        "hnsw_recall_at_5_vs_exact": float(np.mean(overlap)),
        "rss_mb_before_index": rss0, "rss_mb_after_index": rss1,
    }


COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import chromadb
from chromadb.config import Settings
import numpy as np
t1 = time.perf_counter()
c = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = c.get_collection("cold", embedding_function=None)
v = np.fromfile(sys.argv[2], dtype="<f4")[:384]
col.query(query_embeddings=[v], n_results=5, include=[])
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_query_ms": (t2 - t1) * 1e3}))
"""


def cold(export, n):
    import chromadb
    from chromadb.config import Settings

    chunks, cv, queries, qv = load_export(export)
    vectors = expand(cv, n)
    with tempfile.TemporaryDirectory() as d:
        c = chromadb.PersistentClient(path=os.path.join(d, "db"), settings=Settings(anonymized_telemetry=False))
        col = c.create_collection("cold", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        add_all(col, [str(i) for i in range(n)], vectors, [chunks[i % len(chunks)]["text"] for i in range(n)],
                [{"guild": 0} for _ in range(n)])
        del col, c
        qfile = os.path.join(export, "query_vectors.f32")
        out = subprocess.run([sys.executable, "-c", COLD, os.path.join(d, "db"), qfile],
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
    res["chunks"] = n
    return res


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "quality":
        print(json.dumps(quality(sys.argv[2], sys.argv[3])))
    elif cmd == "scale":
        print(json.dumps(scale(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
    elif cmd == "cold":
        print(json.dumps(cold(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
