#!/usr/bin/env python3
"""Convert the zaragoza FAQ set (PyPI `zaragoza-construction-faq`, data/faq-en.jsonl) to a BEIR folder.

query = q, document = answer (`a`); each question's only relevant document is its own answer.
Titles are left empty so that the question text cannot leak into the document.

usage: make_zaragoza_beir.py OUT_DIR [--jsonl PATH]
"""
import argparse
import json
import os
import sys


def default_jsonl() -> str:
    try:
        import zaragoza_construction_faq  # noqa: F401
    except ImportError:
        sys.exit("pip install zaragoza-construction-faq (or pass --jsonl)")
    pkg = os.path.dirname(zaragoza_construction_faq.__file__)
    return os.path.join(pkg, "data", "faq-en.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--jsonl", default=None)
    args = ap.parse_args()
    src = args.jsonl or default_jsonl()
    rows = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "corpus.jsonl"), "w", encoding="utf-8") as c, open(
        os.path.join(args.out_dir, "queries.jsonl"), "w", encoding="utf-8"
    ) as q, open(os.path.join(args.out_dir, "qrels.tsv"), "w", encoding="utf-8") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for row in rows:
            doc_id = row["id"]
            answer = row.get("answer", row.get("a"))
            c.write(json.dumps({"_id": doc_id, "title": "", "text": answer}, ensure_ascii=False) + "\n")
            q.write(json.dumps({"_id": "q-" + doc_id, "text": row["q"]}, ensure_ascii=False) + "\n")
            r.write(f"q-{doc_id}\t{doc_id}\t1\n")
    print(f"{len(rows)} documents and queries written to {args.out_dir}")


if __name__ == "__main__":
    main()
