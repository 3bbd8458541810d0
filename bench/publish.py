#!/usr/bin/env python3
"""Put bench/results/latest.md at the top of BENCHMARKS.md, between the peers markers, replacing
the previous Peers section and leaving every other section as it is."""
import sys

START, END = "<!-- peers:start -->", "<!-- peers:end -->"


def main():
    table, target = sys.argv[1], sys.argv[2]
    block = f"{START}\n{open(table).read().rstrip()}\n{END}\n"
    text = open(target).read()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + block + "\n" + tail
    else:
        text = block + "\n" + text
    with open(target, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
