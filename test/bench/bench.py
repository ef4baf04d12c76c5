#!/usr/bin/env python3
"""Driver of `make bench` (test/bench/run.sh); Python 3 standard library only.

  bench.py scenarios --port PORT --json FILE [--only "latency rate ..."]
      Inside a pg_virtualenv session (PG* set, ctr_dist preloaded): runs the
      scenarios latency, rate, faults, tokens and concurrency against the test
      provider server on 127.0.0.1:PORT, ctr_dist and the baseline
      (baseline/baseline.py) side by side, and writes every run to FILE.

  bench.py report --json FILE --scale-csv FILE --md FILE --png FILE [--meta-json FILE]
      The Markdown table (printed and written to --md) and the gnuplot plot.

Scenario sizes and limits come from BENCH_* environment variables (see README.md).
"""
import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "baseline", "baseline.py")
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
PROVIDERS = ("openai", "deepseek", "gemini")
KEYS = {"openai": "sk-test-openai", "deepseek": "sk-test-deepseek", "gemini": "gm-test-gemini"}
# list prices, USD per 1M tokens in / out (the brief; = ctr_dist's defaults)
PRICES = {"openai": (0.15, 0.60), "deepseek": (0.14, 0.28), "gemini": (0.10, 0.40)}
# how the fake server reads the old tool's records, and answers its plain prompt
OLD_PATTERN = r"(?ms)^\[Persona (\d+)\]\n(.*?)(?=^\[Persona \d+\]$|\Z)"
OLD_KNOBS = {"persona_pattern": OLD_PATTERN, "json_object_key": None}
AD = "Gym"
# the share of a provider's input price a cached prompt token costs, for the default models
# (/work/shared/reference/providers-2026-12.md): gpt-4o-mini reads at 50 %, DeepSeek's cache
# hits at about 2 % of the miss price, gemini-2.5-flash-lite 0.01 of 0.10
CACHED_SHARE = {"openai": 0.5, "deepseek": 0.02, "gemini": 0.1}
# ctr_dist's default prices since issue 15 (README, December 2026): USD per 1M tokens
# in / cached in / out, for today's default models
PRICES_NOW = {"openai": (0.10, 0.01, 0.50), "deepseek": (0.15, 0.003, 0.60), "gemini": (0.10, 0.01, 0.40)}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# the fault matrix of test/t/004_resilience.pl, from the file both read
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault_matrix.json")) as f:
    FAULT_MATRIX = json.load(f)
FAULT_SETUP = "SET ctr_dist.request_timeout = 1500; SET ctr_dist.max_retries = 6;"


def env_int(name, default):
    return int(os.environ.get(name) or default)


def env_float(name, default):
    return float(os.environ.get(name) or default)


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- the provider server

class Server:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def ctl(self, path, obj=None):
        data = None if obj is None else json.dumps(obj).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with NO_PROXY.open(req, timeout=30) as r:
            return json.loads(r.read())

    def set(self, knobs):
        """Replace the knobs and zero stats, windows and sequences."""
        self.ctl("/_control/config", knobs)
        self.ctl("/_control/reset", {})

    def stats(self):
        return self.ctl("/_control/stats")


def server_summary(st):
    """What a run did to the server: 429s, rates, tokens, faults, per provider."""
    out = {"http_429": 0, "rejections": 0, "requests": 0, "faults": 0, "tokens_in": 0,
           "tokens_out": 0, "answered_personas": 0, "max_rate_observed": 0, "cost_usd": 0.0,
           "max_in_flight": 0, "by_provider": {}, "fault_kinds": {},
           # None: this server does not report cached tokens
           "tokens_cached": 0 if all("tokens_cached" in st[p] for p in PROVIDERS) else None,
           "cost_cached_usd": 0.0}
    for p in PROVIDERS:
        s = st[p]
        n429 = int(s["status"].get("429", 0))
        nf = sum(s["faults"].values())
        out["http_429"] += n429
        out["rejections"] += s["rejections"]
        out["requests"] += s["requests"]
        out["faults"] += nf
        out["tokens_in"] += s["tokens_in"]
        out["tokens_out"] += s["tokens_out"]
        out["answered_personas"] += s["answered_personas"]
        out["max_rate_observed"] = max(out["max_rate_observed"], s["max_rate_observed"])
        out["max_in_flight"] = max(out["max_in_flight"], s["max_in_flight"])
        pin, pout = PRICES[p]
        cost = (s["tokens_in"] * pin + s["tokens_out"] * pout) / 1e6
        out["cost_usd"] += cost
        for k, v in s["faults"].items():
            out["fault_kinds"][k] = out["fault_kinds"].get(k, 0) + v
        cached = s.get("tokens_cached")
        if out["tokens_cached"] is not None:
            out["tokens_cached"] += cached
            # the same at list prices with the cached tokens at their discount
            out["cost_cached_usd"] += cost - cached * pin * (1 - CACHED_SHARE[p]) / 1e6
        out["by_provider"][p] = {"requests": s["requests"], "http_429": n429, "tokens_cached": cached,
                                 "max_rate_observed": s["max_rate_observed"],
                                 "tokens_in": s["tokens_in"], "tokens_out": s["tokens_out"],
                                 "answered_personas": s["answered_personas"], "faults": nf}
    if out["tokens_cached"] is None:
        out["cost_cached_usd"] = None
    out["violations"] = sum(st.get("violation_counts", {}).values())
    return out


# ---------------------------------------------------------------- psql

def psql(sql, check=True, timeout=1800):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                       input=sql, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"psql failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p


def exact_sql(table, batch=50, setup=""):
    """ctr_predict with \\timing; the counts check every row against the CLICK marker."""
    return (f"{setup}\n\\timing on\n"
            f"SELECT count(*), count(*) FILTER (WHERE r.click = (strpos(t.description, 'CLICK') > 0)::int), "
            f"count(*) FILTER (WHERE r.click IS NULL), count(*) FILTER (WHERE r.provider = 'mock') "
            f"FROM ctr_predict('{table}', {batch}, ad => '{AD}') r "
            f"JOIN {table} t ON t.id::text = r.persona_key;\n")


def parse_exact(p):
    """(rows, exact, nulls, mock, query ms, NOTICE/DETAIL text) from a psql run."""
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    res = next((l for l in lines if re.fullmatch(r"\d+\|\d+\|\d+\|\d+", l)), None)
    tm = next((l for l in lines if l.startswith("Time: ")), None)
    notice = " ".join(l.strip() for l in p.stderr.splitlines()
                      if l and ("NOTICE" in l or "DETAIL" in l or "WARNING" in l or "ERROR" in l))
    if res is None:
        return None, None, None, None, None, notice or p.stderr.strip()[-500:]
    rows, exact, nulls, mock = (int(x) for x in res.split("|"))
    ms = float(tm.split()[1]) if tm else None
    return rows, exact, nulls, mock, ms, notice


def ctr_run(server, knobs, table, n, setup=""):
    server.set(knobs)
    t0 = time.monotonic()
    p = psql(exact_sql(table, setup=setup), check=False)
    client_wall = time.monotonic() - t0
    rows, exact, nulls, mock, ms, notice = parse_exact(p)
    srv = server_summary(server.stats())
    wall = ms / 1000.0 if ms is not None else client_wall
    r = {"system": "ctr_dist", "n": n, "rows": rows, "exact": exact, "nulls": nulls,
         "mock": mock, "wall_s": round(wall, 3), "client_wall_s": round(client_wall, 3),
         "ok": p.returncode == 0 and rows == n, "notice": notice, "server": srv}
    log(f"  ctr_dist: wall {r['wall_s']} s, rows {rows}, exact {exact}, NULL {nulls}, "
        f"server 429 {srv['http_429']}, max_rate {srv['max_rate_observed']}, "
        f"requests {srv['requests']}, faults {srv['faults']}")
    if p.returncode != 0:
        log("    psql: " + p.stderr.strip()[-500:])
    return r


def create_table(table, n):
    psql(f"""
SET client_min_messages = warning;
DROP TABLE IF EXISTS {table};
CREATE TABLE {table} (id int PRIMARY KEY, age int, gender text, occupation text, description text);
INSERT INTO {table}
SELECT g, 18 + g % 60, (ARRAY['female','male'])[1 + g % 2],
       (ARRAY['nurse','teacher','driver','coder'])[1 + g % 4],
       'Enjoys ' || (ARRAY['running','cooking','reading','travel','gaming'])[1 + g % 5]
       || CASE WHEN (g::bigint * 7919) % 13 < 5 THEN ', CLICK' ELSE '' END
  FROM generate_series(1, {n}) g;
VACUUM (ANALYZE) {table};
""")


def export_jsonl(table, path):
    p = psql(f"SELECT row_to_json(p) FROM (SELECT * FROM {table} ORDER BY id) p;")
    with open(path, "w", encoding="utf-8") as f:
        f.write(p.stdout)


# ---------------------------------------------------------------- baseline

def base_run(server, knobs, personas, n, port, tmp, ad=AD):
    server.set({**knobs, **OLD_KNOBS})
    out = os.path.join(tmp, "base_out.jsonl")
    summ = os.path.join(tmp, "base_summary.json")
    for f in (out, summ):
        if os.path.exists(f):
            os.unlink(f)
    b = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OPENAI_API_KEY=KEYS["openai"], DEEPSEEK_API_KEY=KEYS["deepseek"],
               GEMINI_API_KEY=KEYS["gemini"])
    cmd = ["/usr/bin/python3", BASELINE, "--personas", personas, "--batch-size", "50",
           "--providers", "openai,deepseek,gemini",
           "--base-url-openai", b + "/openai/v1", "--base-url-deepseek", b + "/deepseek",
           "--base-url-gemini", b + "/gemini/v1beta",
           # models the fake server lists (the old gemini-1.5-flash default is retired:
           # it would 404 and every Gemini batch would be the mock)
           "--model-gemini", "gemini-2.5-flash-lite", "--model-deepseek", "deepseek-chat",
           "--ad", ad, "--platform", "facebook", "--out", out, "--summary-json", summ, "--quiet"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    client_wall = time.monotonic() - t0
    srv = server_summary(server.stats())
    s = json.load(open(summ)) if os.path.exists(summ) else {}
    exact = correct = 0
    if os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                ok = row["click"] == row["click_marker"]
                correct += ok
                # exact = the model's own answer, and right: not a padded 0, not the mock
                exact += ok and row["source"] in ("llm", "trimmed")
    r = {"system": "baseline", "n": n, "exit": p.returncode, "crashed": s.get("crashed"),
         "wall_s": s.get("wall_s", round(client_wall, 3)), "client_wall_s": round(client_wall, 3),
         "exact": exact, "correct": correct,
         **{k: s.get(k) for k in ("requests", "http_429", "sdk_retries", "openai_second_calls",
                                  "llm", "padded", "trimmed", "mock", "batches_mock",
                                  "batches_short", "batches_long", "batches_text_cut",
                                  "prompt_bytes_per_persona", "wrong_vs_marker", "status")},
         "server": srv}
    log(f"  baseline: wall {r['wall_s']} s, exit {p.returncode}, llm {r['llm']} padded {r['padded']} "
        f"trimmed {r['trimmed']} mock {r['mock']}, exact {exact}, 429 {r['http_429']} "
        f"(server {srv['http_429']}), requests {r['requests']}")
    if p.returncode not in (0, 3):
        log("    baseline stderr: " + p.stderr.strip()[-800:])
    return r


# ---------------------------------------------------------------- scenarios

def sc_latency(server, port, tmp, reps):
    n = env_int("BENCH_LATENCY_PERSONAS", 1000)
    lat = env_int("BENCH_LATENCY_MS", 1000)
    create_table("bp_lat", n)
    js = os.path.join(tmp, "bp_lat.jsonl")
    export_jsonl("bp_lat", js)
    knobs = {"latency_ms": lat}
    runs = []
    for rep in range(1, reps + 1):
        log(f"latency rep {rep}/{reps}: {n} personas, {lat} ms per request")
        runs.append({**ctr_run(server, knobs, "bp_lat", n), "rep": rep})
        runs.append({**base_run(server, knobs, js, n, port, tmp), "rep": rep})
    return {"params": {"n": n, "latency_ms": lat, "batch": 50}, "runs": runs}


def sc_rate(server, port, tmp, reps):
    n = env_int("BENCH_RATE_PERSONAS", 10000)
    rpm = env_int("BENCH_RATE_RPM", 40)
    win = env_int("BENCH_RATE_WINDOW_S", 10)
    create_table("bp_rate", n)
    js = os.path.join(tmp, "bp_rate.jsonl")
    export_jsonl("bp_rate", js)
    knobs = {"rpm": rpm, "window_s": win}
    setup = f"SET ctr_dist.rate_limit_window = '{win}s';" + "".join(
        f"SET ctr_dist.{p}_rpm = {rpm};" for p in PROVIDERS)
    runs = []
    for rep in range(1, reps + 1):
        log(f"rate rep {rep}/{reps}: {n} personas, rpm {rpm} per {win} s per provider")
        runs.append({**ctr_run(server, knobs, "bp_rate", n, setup), "rep": rep})
        runs.append({**base_run(server, knobs, js, n, port, tmp), "rep": rep})
    return {"params": {"n": n, "rpm": rpm, "window_s": win, "batch": 50}, "runs": runs}


def sc_faults(server, port, tmp, reps):
    n = env_int("BENCH_FAULT_PERSONAS", 5000)
    create_table("bp_fault", n)
    js = os.path.join(tmp, "bp_fault.jsonl")
    export_jsonl("bp_fault", js)
    runs = []
    for rep in range(1, reps + 1):
        log(f"faults rep {rep}/{reps}: {n} personas, the 004_resilience fault matrix")
        runs.append({**ctr_run(server, FAULT_MATRIX, "bp_fault", n, FAULT_SETUP), "rep": rep})
        runs.append({**base_run(server, FAULT_MATRIX, js, n, port, tmp), "rep": rep})
    return {"params": {"n": n, "batch": 50, "setup": FAULT_SETUP}, "runs": runs}


def sc_tokens(server, port, tmp, reps):
    """The 1,200 sample personas, no faults: deterministic, so one run each."""
    psql("SET client_min_messages = warning; DROP TABLE IF EXISTS personas;")
    psql(open(os.path.join(TOP, "test", "sample_personas.sql"), encoding="utf-8").read())
    n = int(psql("SELECT count(*) FROM personas;").stdout.strip())
    js = os.path.join(tmp, "personas.jsonl")
    export_jsonl("personas", js)
    log(f"tokens: {n} sample personas")
    server.set({})
    sql = (f"\\timing on\nSELECT count(*), count(*) FILTER (WHERE click IS NULL) "
           f"FROM ctr_predict('personas', 50, ad => 'Premium fitness subscription - first month free');\n")

    def run(system):
        p = psql(sql, check=False)
        srv = server_summary(server.stats())
        res = next((l for l in p.stdout.splitlines() if re.fullmatch(r"\d+\|\d+", l)), "0|0")
        rows, nulls = (int(x) for x in res.split("|"))
        log(f"  {system}: rows {rows}, tokens in {srv['tokens_in']}, cached {srv['tokens_cached']}, "
            f"out {srv['tokens_out']}, requests {srv['requests']}")
        return {"system": system, "n": n, "rows": rows, "nulls": nulls, "server": srv,
                "ok": p.returncode == 0 and rows == n}
    ctr = run("ctr_dist")
    # the same call again while the providers' prompt caches still hold the first one's
    # prompts (a re-run within the hour: a retry of a pg_cron job, a second look): the
    # server's statistics start again, its caches do not
    server.ctl("/_control/reset", {})
    rerun = run("ctr_dist_rerun")
    # the same table through the baseline, with the same ad
    base = base_run(server, {}, js, n, port, tmp,
                    ad="Premium fitness subscription - first month free")
    return {"params": {"n": n, "batch": 50}, "runs": [ctr, base, rerun]}


def sc_concurrency(server, port, tmp, reps):
    n = env_int("BENCH_CONC_PERSONAS", 10000)
    rpm = env_int("BENCH_CONC_RPM", 600)
    win = env_int("BENCH_CONC_WINDOW_S", 10)
    lat = env_int("BENCH_CONC_LATENCY_MS", 100)
    sessions = [int(x) for x in os.environ.get("BENCH_CONC_SESSIONS", "1 4 16").split()]
    create_table("bp_conc", n)
    knobs = {"rpm": rpm, "window_s": win, "latency_ms": lat}
    setup = f"SET ctr_dist.rate_limit_window = '{win}s';" + "".join(
        f"SET ctr_dist.{p}_rpm = {rpm};" for p in PROVIDERS)
    runs = []
    for rep in range(1, reps + 1):
        for k in sessions:
            log(f"concurrency rep {rep}/{reps}: {k} sessions x {n} personas, rpm {rpm} per {win} s")
            server.set(knobs)
            sql = exact_sql("bp_conc", setup=setup)
            t0 = time.monotonic()
            procs = [subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(k)]
            for pr in procs:
                pr.stdin.write(sql)
                pr.stdin.close()
            outs = []
            for pr in procs:
                o = pr.stdout.read()
                e = pr.stderr.read()
                pr.wait()
                outs.append(subprocess.CompletedProcess(pr.args, pr.returncode, o, e))
            wall = time.monotonic() - t0
            srv = server_summary(server.stats())
            parsed = [parse_exact(o) for o in outs]
            exact = sum(x[1] or 0 for x in parsed)
            rows = sum(x[0] or 0 for x in parsed)
            r = {"system": "ctr_dist", "rep": rep, "sessions": k, "n": n * k, "rows": rows,
                 "exact": exact, "wall_s": round(wall, 3),
                 "session_wall_s": [round(x[4] / 1000, 3) if x[4] else None for x in parsed],
                 "throughput": round(n * k / wall, 1), "server": srv,
                 "errors": [x[5] for x in parsed if x[0] is None]}
            runs.append(r)
            log(f"  {k} sessions: wall {r['wall_s']} s, {r['throughput']} personas/s, exact "
                f"{exact}/{n * k}, server 429 {srv['http_429']}, max_rate {srv['max_rate_observed']} "
                f"(limit {rpm}), max in flight {srv['max_in_flight']}")
            for e in r["errors"]:
                log("    " + e[:300])
    return {"params": {"n": n, "rpm": rpm, "window_s": win, "latency_ms": lat,
                       "sessions": sessions, "batch": 50}, "runs": runs}

# ---------------------------------------------------------------- scenarios 7-8, 10 (issues 16, 17)

def exact_shares(shares):
    """Fault rates such that each kind hits its share of all requests: the server tries the
    faults in order, each with its own draw, so a later one only sees what the earlier missed."""
    out, left = [], 1.0
    for kind, share, params in shares:
        f = {"kind": kind, "rate": round(share / left, 6)}
        if params:
            f["params"] = params
        out.append(f)
        left -= share
    return out


# issue 17, item 1: 10 % 500, 10 % 503, 5 % resets, 5 % hangs, 5 % prose, 5 % wrong
# length, 5 % keep-alive blank lines, of all requests; a hang outlasts the 3 s timeout
HANG_MATRIX = [("http_500", 0.10, None), ("http_503", 0.10, None), ("reset", 0.05, None),
               ("hang", 0.05, {"seconds": 10}), ("prose", 0.05, None),
               ("wrong_length", 0.05, None),
               ("keepalive_blank_lines", 0.05, {"seconds": 0.2, "interval_ms": 50})]


def log_intervals(path, t0, t1):
    """(start, end) wall-clock seconds of every provider request the server's log shows
    ending within [t0, t1]; the log's "t" is the end, "ms" the time since arrival."""
    out = []
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            t, ms = e.get("t"), e.get("ms")
            if t is None or ms is None or not (t0 <= t <= t1):
                continue
            out.append((t - ms / 1000.0, t))
    return out


def idle_stretch(iv):
    """The longest time between the first request's arrival and the last one's end with
    nothing in flight at the server, and the sum of all such times (seconds)."""
    if not iv:
        return None, None
    iv.sort()
    longest = total = 0.0
    end = iv[0][1]
    for a, b in iv[1:]:
        if a > end:
            longest = max(longest, a - end)
            total += a - end
        end = max(end, b)
    return round(longest, 3), round(total, 3)


def concurrency_total():
    """Requests ctr_dist may have in flight at once: the sum of P_max_concurrency."""
    return sum(int(psql(f"SHOW ctr_dist.{p}_max_concurrency;").stdout.strip()) for p in PROVIDERS)


def sc_hangs(server, port, tmp, reps):
    n = env_int("BENCH_HANG_PERSONAS", 5000)
    lat = env_int("BENCH_HANG_LATENCY_MS", 0)
    timeout_s = env_float("BENCH_HANG_TIMEOUT_S", 3)
    create_table("bp_hang", n)
    knobs = {"seed": 7, "latency_ms": lat, "faults": exact_shares(HANG_MATRIX)}
    setup = f"SET ctr_dist.request_timeout = '{int(timeout_s * 1000)}ms';"
    conc = concurrency_total()
    runs = []
    for rep in range(1, reps + 1):
        log(f"hangs rep {rep}/{reps}: {n} personas, clean run first, then the fault matrix "
            f"with hangs, request_timeout {timeout_s:g} s, {lat} ms per request")
        clean = ctr_run(server, {"latency_ms": lat}, "bp_hang", n, setup)
        t0 = time.time()
        r = ctr_run(server, knobs, "bp_hang", n, setup)
        t1 = time.time() + 1
        hangs = r["server"]["fault_kinds"].get("hang", 0)
        bound = clean["wall_s"] + hangs * timeout_s / conc
        longest, total = idle_stretch(log_intervals(SERVER_LOG, t0, t1)) if SERVER_LOG else (None, None)
        r.update({"rep": rep, "clean_wall_s": clean["wall_s"], "clean_exact": clean["exact"],
                  "hangs": hangs, "concurrency": conc, "bound_s": round(bound, 3),
                  "ratio": round(r["wall_s"] / bound, 3), "idle_longest_s": longest,
                  "idle_total_s": total})
        log(f"  clean {clean['wall_s']} s; {hangs} hangs x {timeout_s:g} s / {conc} -> bound "
            f"{bound:.2f} s; wall / bound {r['ratio']}; longest idle {longest} s (total {total} s)")
        runs.append(r)
    return {"params": {"n": n, "batch": 50, "latency_ms": lat, "timeout_s": timeout_s,
                       "setup": setup, "knobs": knobs, "concurrency": conc,
                       "shares": [[k, sh] for k, sh, _ in HANG_MATRIX]}, "runs": runs}


def sc_limits(server, port, tmp, reps):
    n = env_int("BENCH_LIMITS_PERSONAS", 10000)
    rpm = env_int("BENCH_LIMITS_RPM", 40)
    win = env_int("BENCH_LIMITS_WINDOW_S", 10)
    create_table("bp_lim", n)
    knobs = {"rpm": rpm, "window_s": win}
    # the window is the fake server's time scale (10 s stands for a minute), not a limit
    clock = f"SET ctr_dist.rate_limit_window = '{win}s';"
    configured = clock + "".join(f"SET ctr_dist.{p}_rpm = {rpm};" for p in PROVIDERS)
    runs = []
    # every unconfigured run first: the first of them is a new user's first call (later
    # ones may use what earlier calls learnt, shared when preloaded)
    for mode, setup in (("unconfigured", clock), ("configured", configured)):
        for rep in range(1, reps + 1):
            log(f"limits rep {rep}/{reps}, {mode}: {n} personas, server rpm {rpm} per {win} s "
                f"per provider")
            r = ctr_run(server, knobs, "bp_lim", n, setup)
            r.update({"rep": rep, "mode": mode})
            runs.append(r)
    return {"params": {"n": n, "rpm": rpm, "window_s": win, "batch": 50,
                       "unconfigured": clock, "configured": configured}, "runs": runs}


def compare_ads(k):
    """k ads of different lengths; the test server clicks on CLICK for all of them."""
    base = ["Premium fitness subscription - first month free",
            "Premium fitness subscription - 20% off the first year",
            "Home workout app - 7-day trial",
            "Running shoes, buy one pair get the second half price",
            "Meal-kit delivery: three dinners a week, cancel anytime",
            "Budget airline: weekend city breaks from 39 dollars",
            "Online course: learn data analysis in eight weeks",
            "Electric bike rental by the month, helmet included",
            "Organic coffee beans roasted to order, free shipping",
            "Streaming service with no ads for the first three months"]
    return [base[i % len(base)] + ("" if i < len(base) else f" (variant {i // len(base) + 1})")
            for i in range(k)]


def usd_now(b, p, cached_price=True):
    """USD of provider p's server figures b at ctr_dist's default prices for today's
    default models (PRICES_NOW): the cached prompt tokens at the cached price, or, with
    cached_price False, every prompt token at the full input price (what the same tokens
    cost without a prompt cache)."""
    pin, pcached, pout = PRICES_NOW[p]
    cached = (b.get("tokens_cached") or 0) if cached_price else 0
    return ((b["tokens_in"] - cached) * pin + cached * pcached + b["tokens_out"] * pout) / 1e6


def per_1000(b, p, cached_price=True):
    """usd_now() per 1,000 predictions that provider p answered."""
    if not b.get("answered_personas"):
        return None
    return usd_now(b, p, cached_price) / b["answered_personas"] * 1000


def cached_share(b):
    return (b.get("tokens_cached") or 0) / max(b.get("tokens_in") or 0, 1) * 100


def add_summaries(sums):
    """The server_summary() of several runs, added up (the figures scenario 10 reports)."""
    out = {}
    for k in ("http_429", "requests", "tokens_in", "tokens_out", "tokens_cached", "cost_usd",
              "cost_cached_usd", "faults"):
        vals = [x[k] for x in sums]
        out[k] = None if any(v is None for v in vals) else sum(vals)
    out["by_provider"] = {}
    for p in PROVIDERS:
        bp = [x["by_provider"][p] for x in sums]
        out["by_provider"][p] = {k: None if any(b.get(k) is None for b in bp) else sum(b[k] for b in bp)
                                 for k in ("requests", "tokens_in", "tokens_out", "tokens_cached",
                                           "answered_personas")}
    return out


def psql_notice_cost(stderr):
    m = re.findall(r"estimated cost \$([0-9.]+)", stderr)
    return sum(float(x) for x in m) if m else None


def sc_compare(server, port, tmp, reps):
    n = env_int("BENCH_CMP_PERSONAS", 1000)
    k = env_int("BENCH_CMP_ADS", 10)
    lat = env_int("BENCH_CMP_LATENCY_MS", 500)
    psql(f"\\set tab bp_cmp\n\\set n {n}\n" + open(os.path.join(HERE, "personas_real.sql")).read())
    clicks = int(psql("SELECT count(*) FROM bp_cmp WHERE tag = 'CLICK';").stdout.strip())
    ads = compare_ads(k)
    arr = "ARRAY[" + ", ".join("'" + a.replace("'", "''") + "'" for a in ads) + "]"
    knobs = {"latency_ms": lat}
    runs = []
    for rep in range(1, reps + 1):
        # ctr_compare: one call, every ad on the same panel (a new config empties the caches)
        log(f"compare rep {rep}/{reps}: ctr_compare of {k} ads x {n} real-sized personas, {lat} ms")
        server.set(knobs)
        t0 = time.monotonic()
        p = psql(f"\\timing on\nSELECT ad_no, answered, ctr, cost_usd FROM ctr_compare('bp_cmp', {arr});\n",
                 check=False)
        wall_c = time.monotonic() - t0
        srv = server_summary(server.stats())
        res = [l.split("|") for l in p.stdout.splitlines() if re.fullmatch(r"\d+\|\d+\|[^|]*\|[^|]*", l)]
        tm = next((l for l in p.stdout.splitlines() if l.startswith("Time: ")), None)
        exact = len(res) == k and all(int(a) == n and c != "" and abs(float(c) - clicks / n) < 1e-9
                                      for _, a, c, _ in res)
        runs.append({"system": "ctr_compare", "rep": rep, "n": n, "ads": k, "server": srv,
                     "wall_s": round(float(tm.split()[1]) / 1000, 3) if tm else round(wall_c, 3),
                     "exact": exact, "ctr_dist_cost_usd": sum(float(x[3]) for x in res if x[3]) if res else None,
                     "ok": p.returncode == 0, "notice": p.stderr.strip()[-1500:]})
        log(f"  ctr_compare: wall {runs[-1]['wall_s']} s, every ad exact {exact}, tokens in "
            f"{srv['tokens_in']}, cached {srv['tokens_cached']}, requests {srv['requests']}")
        if p.returncode != 0:
            log("    psql: " + p.stderr.strip()[-500:])
        # the same ads as separate ctr_predict calls, one after the other: "cold", each with
        # empty caches (runs further apart than a cache lives: each pays for the whole panel),
        # and "warm", back to back (ctr_predict sends the panel first too, so a run reads the
        # panel that the run before it left in the cache)
        for mode in ("cold", "warm"):
            log(f"compare rep {rep}/{reps}: {k} separate ctr_predict runs, caches {mode}")
            server.set(knobs)
            walls, exacts, costs, sums = [], [], [], []
            for a in ads:
                if mode == "cold" and a != ads[0]:
                    sums.append(server_summary(server.stats()))
                    server.set(knobs)
                sql = exact_sql("bp_cmp").replace(f"ad => '{AD}'", "ad => '" + a.replace("'", "''") + "'")
                sql = sql.replace("strpos(t.description, 'CLICK') > 0", "t.tag = 'CLICK'")
                q = psql(sql, check=False)
                rows, ex, nulls, mock, ms, notice = parse_exact(q)
                walls.append(ms / 1000 if ms is not None else None)
                exacts.append(ex)
                costs.append(psql_notice_cost(q.stderr))
            sums.append(server_summary(server.stats()))
            srv = add_summaries(sums)
            runs.append({"system": "separate_" + mode, "rep": rep, "n": n, "ads": k, "server": srv,
                         "wall_s": round(sum(w for w in walls if w is not None), 3),
                         "exact": all(e == n for e in exacts),
                         "ctr_dist_cost_usd": sum(c for c in costs if c is not None) if any(costs) else None})
            log(f"  separate ({mode}): wall {runs[-1]['wall_s']} s, exact {runs[-1]['exact']}, tokens in "
                f"{srv['tokens_in']}, cached {srv['tokens_cached']}, requests {srv['requests']}")
    return {"params": {"n": n, "ads": k, "latency_ms": lat, "batch": 50, "clicks": clicks,
                       "ad_list": ads, "cached_share": CACHED_SHARE}, "runs": runs}


SCENARIOS = {"latency": sc_latency, "rate": sc_rate, "faults": sc_faults,
             "tokens": sc_tokens, "concurrency": sc_concurrency,
             "hangs": sc_hangs, "limits": sc_limits, "compare": sc_compare}
SERVER_LOG = None


def key_files():
    """The test keys as key files of the server's user (a key setting is read only at
    server start; pg_ctlcluster does not pass our environment on): ALTER SYSTEM lines."""
    st = os.stat(psql("SHOW data_directory").stdout.strip())
    d = tempfile.mkdtemp(prefix="ctr_bench_keys.")
    atexit.register(shutil.rmtree, d, True)
    os.chown(d, st.st_uid, st.st_gid)
    sql = ""
    for p, k in KEYS.items():
        f = os.path.join(d, p + ".key")
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (k + "\n").encode())
        os.close(fd)
        os.chown(f, st.st_uid, st.st_gid)
        sql += f"ALTER SYSTEM SET ctr_dist.{p}_api_key_file = '{f}';\n"
    return sql


def scenarios(args):
    global SERVER_LOG
    SERVER_LOG = args.server_log
    meta = json.load(open(args.meta_json)) if args.meta_json and os.path.exists(args.meta_json) else {}
    server = Server(args.port)
    base = server.base
    psql(f"""
ALTER SYSTEM SET ctr_dist.openai_base_url = '{base}/openai/v1';
ALTER SYSTEM SET ctr_dist.deepseek_base_url = '{base}/deepseek';
ALTER SYSTEM SET ctr_dist.gemini_base_url = '{base}/gemini/v1beta';
{key_files()}SELECT pg_reload_conf();
CREATE EXTENSION IF NOT EXISTS ctr_dist;
""")
    reps = env_int("BENCH_REPEAT", 3)
    results = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            results = json.load(f)
    with tempfile.TemporaryDirectory(prefix="ctr_bench.") as tmp:
        # warm-up, not recorded: first connections and curl handles
        create_table("bp_warm", 1000)
        server.set({})
        psql(exact_sql("bp_warm"), check=False)
        for name in args.only.split():
            if name not in SCENARIOS:
                continue
            t0 = time.monotonic()
            res = SCENARIOS[name](server, args.port, tmp, reps)
            res["seconds"] = round(time.monotonic() - t0, 1)
            res["ran"] = {k: meta.get(k) for k in ("date", "so", "commit", "load")}
            results[name] = res
            log(f"== {name} done in {res['seconds']} s")
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    server.set({})
    return 0


# ---------------------------------------------------------------- report

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def cell(vals, fmt="{:.2f}", suffix=""):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m = fmt.format(statistics.median(vals)) + suffix
    if len(vals) == 1 or min(vals) == max(vals):
        return m + ("" if len(vals) == 1 else f" (all {len(vals)})")
    return f"{m} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def verdict(med_ok, all_ok=None):
    if med_ok is None:
        return "–"
    if not med_ok:
        return "**missed**"
    if all_ok is False:
        return "met (median; not every run)"
    return "met"


def report(args):
    res = json.load(open(args.json)) if os.path.exists(args.json) else {}
    meta = json.load(open(args.meta_json)) if args.meta_json and os.path.exists(args.meta_json) else {}
    rows = []   # (scenario, metric, ctr_dist, baseline, target, verdict)
    plot = {}

    def by(sc, system):
        return [r for r in res.get(sc, {}).get("runs", []) if r.get("system") == system]

    def stamp(sc):
        """When a scenario ran, if not in this run (a subset run keeps the others' results)."""
        ran = res.get(sc, {}).get("ran") or {}
        if not ran.get("date") or ran.get("date") == meta.get("date"):
            return ""
        return f" (run {ran['date']}, {ran.get('so') or '?'}, commit {ran.get('commit') or '?'})"

    # 1. latency
    if "latency" in res:
        P = res["latency"]["params"]
        c, b = by("latency", "ctr_dist"), by("latency", "baseline")
        lat = P["latency_ms"] / 1000.0
        cw = [r["wall_s"] for r in c]
        bw = [r["wall_s"] for r in b]
        ratio = [w / lat for w in cw]
        name = f"1 latency{stamp('latency')}: {P['n']:,} personas, batch 50, 3 providers, {P['latency_ms']} ms/request"
        rows.append((name, "wall s", cell(cw), cell(bw), "", ""))
        rows.append(("", "wall / one latency", cell(ratio), cell([w / lat for w in bw]), "≤ 1.2 (ctr_dist)",
                     verdict(med(ratio) <= 1.2, max(ratio) <= 1.2)))
        rows.append(("", "exact predictions", cell([r["exact"] / r["n"] * 100 for r in c], "{:.1f}", " %"),
                     cell([r["exact"] / r["n"] * 100 for r in b], "{:.1f}", " %"), "", ""))
        plot["latency"] = (med(cw), med(bw))

    # 2. rate
    if "rate" in res:
        P = res["rate"]["params"]
        c, b = by("rate", "ctr_dist"), by("rate", "baseline")
        batches = -(-P["n"] // P["batch"])
        rate = 3 * P["rpm"] / P["window_s"]
        bound = batches / rate
        busiest = -(-batches // 3)
        cw = [r["wall_s"] for r in c]
        c429 = [r["server"]["http_429"] for r in c]
        name = (f"2 rate{stamp('rate')}: {P['n']:,} personas = {batches} batches, server rpm {P['rpm']} per "
                f"{P['window_s']} s window per provider (ctr_dist set to match)")
        rows.append((name, "HTTP 429s (server)", cell(c429, "{:.0f}"),
                     cell([r["server"]["http_429"] for r in b], "{:.0f}"), "0 (ctr_dist)",
                     verdict(med(c429) == 0, max(c429) == 0)))
        rows.append(("", "wall s", cell(cw), cell([r["wall_s"] for r in b]), "", ""))
        rows.append(("", f"wall / rate bound ({batches} ÷ {rate:g}/s = {bound:.2f} s)",
                     cell([w / bound for w in cw]), cell([r["wall_s"] / bound for r in b]),
                     "≤ 1.10 (ctr_dist)", verdict(med(cw) / bound <= 1.10, max(cw) / bound <= 1.10)))
        rows.append(("", f"max requests in any {P['window_s']} s window (limit {P['rpm']})",
                     cell([r["server"]["max_rate_observed"] for r in c], "{:.0f}"),
                     cell([r["server"]["max_rate_observed"] for r in b], "{:.0f}"), "", ""))
        rows.append(("", "predictions padded / trimmed / from the mock",
                     cell([0 for r in c], "{:.0f}"),
                     " / ".join(cell([r.get(k) for r in b], "{:.0f}") for k in ("padded", "trimmed", "mock")),
                     "", ""))
        rows.append(("", "exact predictions", cell([r["exact"] / r["n"] * 100 for r in c], "{:.1f}", " %"),
                     cell([r["exact"] / r["n"] * 100 for r in b], "{:.1f}", " %"), "", ""))
        plot["rate"] = (med(cw), med([r["wall_s"] for r in b]), bound)

    # 3. faults
    if "faults" in res:
        P = res["faults"]["params"]
        c, b = by("faults", "ctr_dist"), by("faults", "baseline")
        ce = [r["exact"] / r["n"] * 100 if r["exact"] is not None else 0 for r in c]
        be = [r["exact"] / r["n"] * 100 for r in b]
        name = f"3 faults{stamp('faults')}: {P['n']:,} personas, the fault matrix of test/t/004_resilience.pl"
        rows.append((name, "faults injected by the server", cell([r["server"]["faults"] for r in c], "{:.0f}"),
                     cell([r["server"]["faults"] for r in b], "{:.0f}"), "", ""))
        rows.append(("", "exact predictions (the model's own answer, right)", cell(ce, "{:.2f}", " %"),
                     cell(be, "{:.2f}", " %"), "100 % (ctr_dist)", verdict(med(ce) == 100, min(ce) == 100)))
        rows.append(("", "right by any means (incl. padded 0s and mock)",
                     cell(ce, "{:.2f}", " %"), cell([r["correct"] / r["n"] * 100 for r in b], "{:.2f}", " %"), "", ""))
        rows.append(("", "NULL (ctr_dist) / padded / trimmed / mock (baseline)",
                     cell([r["nulls"] for r in c], "{:.0f}"),
                     " / ".join(cell([r.get(k) for r in b], "{:.0f}") for k in ("padded", "trimmed", "mock")),
                     "", ""))
        rows.append(("", "wall s", cell([r["wall_s"] for r in c]), cell([r["wall_s"] for r in b]), "", ""))
        plot["faults"] = (med(ce), med(be))

    # 4. scale (scale.sh's CSVs: "join" = the exact-check join, "alone" = count(*) of ctr_predict)
    def load_csv(path):
        if not path or not os.path.exists(path):
            return []
        import csv
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    sj, sc = load_csv(args.scale_csv), load_csv(args.scale_count_csv)
    if sj or sc:
        sizes = sorted({int(r["n"]) for r in sj + sc})

        def col(rs, n, k):
            return [float(r[k]) for r in rs if int(r["n"]) == n and r.get(k, "") != ""]

        def both(n, k, fmt="{:.1f}"):
            parts = []
            if sc:
                parts.append(cell(col(sc, n, k), fmt) + " alone")
            if sj:
                parts.append(cell(col(sj, n, k), fmt) + " with the join")
            return "; ".join(parts)

        def judge(ok_alone, ok_join):
            if ok_alone is None:
                return verdict(ok_join)
            if ok_join is None or ok_alone == ok_join:
                return verdict(ok_alone)
            return "met alone; **missed** with the join" if ok_alone else "**missed** alone; met with the join"

        def ok(rs, n, k, pred):
            v = med(col(rs, n, k)) if rs else None
            return None if v is None else pred(v)

        name = ("4 overhead and scale (scale.sh: no latency, limits that never bind; "
                "\"alone\" = count(*) of ctr_predict, \"with the join\" = the exact-check join; when it ran: its details below)")
        first = True
        for n in sizes:
            rows.append((name if first else "", f"CPU µs / persona, N = {n:,}", both(n, "cpu_us_per_persona"),
                         "n/a", "≤ 5", judge(ok(sc, n, "cpu_us_per_persona", lambda v: v <= 5),
                                             ok(sj, n, "cpu_us_per_persona", lambda v: v <= 5))))
            first = False
        if sj:
            ex = all(int(r["rows"]) == int(r["n"]) == int(r["exact"]) for r in sj)
            rows.append(("", "every join run exact (N rows, N right)", "yes" if ex else "**no**", "n/a", "", ""))
        for n in sizes:
            rows.append(("", f"caller peak anon MB, N = {n:,}", both(n, "caller_rssanon_max_mb"), "n/a", "", ""))
        for n in sizes:
            rows.append(("", f"caller peak RSS MB (VmHWM, incl. shared buffers), N = {n:,}",
                         both(n, "caller_vmhwm_mb"), "n/a", "", ""))
        wsrc = sc or sj
        for n in sizes:
            rows.append(("", f"worker peak RSS MB openai / deepseek / gemini, N = {n:,}",
                         " / ".join(cell(col(wsrc, n, f"{p}_vmhwm_mb"), "{:.1f}") for p in PROVIDERS),
                         "n/a", "", ""))
        if 100000 in sizes and 1000000 in sizes:
            def flat(rs):
                if not rs or not col(rs, 1000000, "caller_rssanon_max_mb"):
                    return None, ""
                a100 = med(col(rs, 100000, "caller_rssanon_max_mb"))
                a1m = med(col(rs, 1000000, "caller_rssanon_max_mb"))
                w100 = max(med(col(rs, 100000, f"{p}_vmhwm_mb")) or 0 for p in PROVIDERS)
                w1m = max(med(col(rs, 1000000, f"{p}_vmhwm_mb")) or 0 for p in PROVIDERS)
                return (a1m <= a100 * 1.25 + 2 and w1m <= w100 * 1.25 + 2,
                        f"caller anon {a100:.1f} → {a1m:.1f}, worker {w100:.1f} → {w1m:.1f}")
            fa, ta = flat(sc)
            fj, tj = flat(sj)
            rows.append(("", "memory 100k → 1M (MB)",
                         "; ".join(x for x in (ta and ta + " alone", tj and tj + " with the join") if x),
                         "n/a", "flat (≤ +25 %)", judge(fa, fj)))
            def wr(rs):
                if not rs or not col(rs, 1000000, "wall_s"):
                    return None
                return med(col(rs, 1000000, "wall_s")) / med(col(rs, 100000, "wall_s"))
            ra, rj = wr(sc), wr(sj)
            rows.append(("", "wall(1M) / wall(100k)",
                         "; ".join(x for x in ((ra and f"{ra:.2f} alone"), (rj and f"{rj:.2f} with the join")) if x),
                         "n/a", "≤ 11", judge(None if ra is None else ra <= 11, None if rj is None else rj <= 11)))
        src = sc or sj
        def wmax(n):
            v = [med(col(src, n, f"{p}_vmhwm_mb")) for p in PROVIDERS]
            v = [x for x in v if x is not None]
            return max(v) if v else None
        plot["scale"] = [(n, med(col(src, n, "cpu_us_per_persona")), med(col(src, n, "caller_rssanon_max_mb")),
                          wmax(n), med(col(src, n, "wall_s"))) for n in sizes]
        plot["scale_label"] = "alone" if sc else "with the join"

    # 5. tokens
    if "tokens" in res:
        c, b = by("tokens", "ctr_dist"), by("tokens", "baseline")
        name = f"5 tokens{stamp('tokens')}: the {res['tokens']['params']['n']:,} sample personas, batch 50"

        def tk(r):
            s = r["server"]
            n = r["n"]
            return {"bytes": s["tokens_in"] * 4 / n, "tin": s["tokens_in"] / n,
                    "tout": s["tokens_out"] / n, "cost": s["cost_usd"] / n * 1000,
                    "req": s["requests"]}
        if c and b:
            ct, bt = tk(c[0]), tk(b[0])
            less = (1 - ct["bytes"] / bt["bytes"]) * 100
            rows.append((name, "prompt bytes / persona (4 × server prompt tokens)",
                         f"{ct['bytes']:.1f}", f"{bt['bytes']:.1f} (its own count: {b[0].get('prompt_bytes_per_persona')})",
                         "ctr_dist ≥ 25 % fewer", verdict(less >= 25) + f" ({less:.1f} % fewer)"))
            rows.append(("", "estimated prompt tokens / persona (bytes / 4)", f"{ct['tin']:.1f}",
                         f"{bt['tin']:.1f}", "", ""))
            rows.append(("", "completion tokens / persona (server: ceil(chars / 4))", f"{ct['tout']:.2f}",
                         f"{bt['tout']:.2f}", "≤ 3 (ctr_dist)", verdict(ct["tout"] <= 3)))
            rows.append(("", "USD per 1,000 predictions, list prices, round-robin mix",
                         f"{ct['cost']:.4f}", f"{bt['cost']:.4f}", "", ""))
            for p in PROVIDERS:
                def pc(r):
                    s = r["server"]["by_provider"][p]
                    pers = max(s["answered_personas"], 1)
                    return (s["tokens_in"] * PRICES[p][0] + s["tokens_out"] * PRICES[p][1]) / 1e6 / pers * 1000
                rows.append(("", f"USD per 1,000 predictions if all on {p} ({PRICES[p][0]}/{PRICES[p][1]})",
                             f"{pc(c[0]):.4f}", f"{pc(b[0]):.4f}", "", ""))
            rr = by("tokens", "ctr_dist_rerun")
            for p in PROVIDERS:
                first = c[0]["server"]["by_provider"][p]
                again = rr[0]["server"]["by_provider"][p] if rr else None
                cell5 = f"{per_1000(first, p, False):.4f} (cached {cached_share(first):.0f} %)"
                if again and again.get("tokens_cached") is not None:
                    cell5 += (f" · re-run: {per_1000(again, p, False):.4f} without caching, "
                              f"{per_1000(again, p):.4f} with it ({cached_share(again):.0f} % cached)")
                rows.append(("", f"USD per 1,000 predictions on {p} at today's default prices "
                             f"({' / '.join(str(x) for x in PRICES_NOW[p])} in / cached in / out): first run · "
                             "the same call again, caches warm", cell5, "", "", ""))
            rows.append(("", "requests / rows right / baseline rows padded, trimmed, mock",
                         f"{ct['req']} / {c[0]['rows']} rows, {c[0]['nulls']} NULL",
                         f"{bt['req']} / {b[0].get('llm')} llm, {b[0].get('padded')} padded, "
                         f"{b[0].get('trimmed')} trimmed, {b[0].get('mock')} mock"
                         + (f", crashed: {b[0]['crashed']}" if b[0].get("crashed") else ""), "", ""))
            plot["tokens"] = (ct["bytes"], bt["bytes"], ct["tout"], bt["tout"], ct["cost"], bt["cost"])

    # 6. concurrency
    if "concurrency" in res:
        P = res["concurrency"]["params"]
        runs = res["concurrency"]["runs"]
        lim_rate = 3 * P["rpm"] / P["window_s"] * P["batch"]
        name = (f"6 concurrency{stamp('concurrency')}: {P['n']:,} personas per session, server rpm {P['rpm']} per "
                f"{P['window_s']} s per provider, {P['latency_ms']} ms/request, ctr_dist set to match, preloaded")
        conc_plot = []
        for k in P["sessions"]:
            rs = [r for r in runs if r["sessions"] == k]
            tp = [r["throughput"] for r in rs]
            n429 = [r["server"]["http_429"] for r in rs]
            mro = [r["server"]["max_rate_observed"] for r in rs]
            exact = all(r["exact"] == r["n"] for r in rs)
            held = max(n429) == 0 and max(mro) <= P["rpm"]
            rows.append((name if k == P["sessions"][0] else "",
                         f"{k} session(s): personas/s (limit {lim_rate:,.0f}/s) · 429s · max/window · exact",
                         f"{cell(tp, '{:.0f}')} · {cell(n429, '{:.0f}')} · {cell(mro, '{:.0f}')} · "
                         + ("yes" if exact else "**no**"),
                         "n/a", f"429 = 0, max ≤ {P['rpm']}", verdict(held and exact)))
            conc_plot.append((k, med(tp), lim_rate, med(mro)))
        plot["concurrency"] = conc_plot

    # 7. fault matrix with hangs (issue 17, item 1)
    if "hangs" in res:
        P = res["hangs"]["params"]
        c = res["hangs"]["runs"]
        name = (f"7 faults with hangs{stamp('hangs')}: {P['n']:,} personas, "
                + ", ".join(f"{sh * 100:g} % {k}" for k, sh in P["shares"])
                + f" of requests; request_timeout {P['timeout_s']:g} s, {P['latency_ms']} ms/request")
        ce = [r["exact"] / r["n"] * 100 if r["exact"] is not None else 0 for r in c]
        rows.append((name, "exact predictions", cell(ce, "{:.2f}", " %"), "n/a", "100 %",
                     verdict(med(ce) == 100, min(ce) == 100)))
        tot = [r["server"]["requests"] for r in c]
        rows.append(("", "faults by kind, share of requests (server)",
                     ", ".join(f"{k} " + cell([r["server"]["fault_kinds"].get(k, 0) / r["server"]["requests"] * 100
                                               for r in c], "{:.1f}", " %") for k, _ in P["shares"])
                     + f"; requests {cell(tot, '{:.0f}')}", "n/a", "", ""))
        rows.append(("", "wall s · the clean run's wall s (no faults, same knobs)",
                     cell([r["wall_s"] for r in c]) + " · " + cell([r["clean_wall_s"] for r in c]), "n/a", "", ""))
        rows.append(("", f"bound = clean wall + hangs × {P['timeout_s']:g} s ÷ {P['concurrency']} "
                         "(the concurrency: Σ P_max_concurrency)",
                     cell([r["bound_s"] for r in c]) + " s (hangs " + cell([r["hangs"] for r in c], "{:.0f}") + ")",
                     "n/a", "", ""))
        ratio = [r["ratio"] for r in c]
        rows.append(("", "wall ÷ bound", cell(ratio), "n/a", "≤ 1.5",
                     verdict(med(ratio) <= 1.5, max(ratio) <= 1.5)))
        il = [r.get("idle_longest_s") for r in c]
        if any(v is not None for v in il):
            rows.append(("", "longest stretch with nothing in flight (server log) · all such stretches",
                         cell(il, "{:.2f}", " s") + " · " + cell([r.get("idle_total_s") for r in c], "{:.2f}", " s"),
                         "n/a", "", ""))
        plot["hangs"] = (med(ratio),)

    # 8. unconfigured limits (issue 17, item 2)
    if "limits" in res:
        P = res["limits"]["params"]
        batches = -(-P["n"] // P["batch"])
        rate = 3 * P["rpm"] / P["window_s"]
        bound = batches / rate
        name = (f"8 limits{stamp('limits')}: {P['n']:,} personas = {batches} batches, server rpm {P['rpm']} per "
                f"{P['window_s']} s per provider (OpenAI: x-ratelimit-* headers; Gemini: RetryInfo; "
                f"DeepSeek: bare 429s)")
        for mode in ("unconfigured", "configured"):
            c = [r for r in res["limits"]["runs"] if r.get("mode") == mode]
            if not c:
                continue
            n429 = [r["server"]["http_429"] for r in c]
            share = [r["server"]["http_429"] / max(r["server"]["requests"], 1) * 100 for r in c]
            rb = [r["wall_s"] / bound for r in c]
            ex = [r["exact"] / r["n"] * 100 if r["exact"] is not None else 0 for r in c]
            if mode == "unconfigured":
                label = "no rpm/tpm/concurrency settings (only rate_limit_window = the server's window)"
                rows.append((name, f"{label}: HTTP 429s · first run", cell(n429, "{:.0f}") + f" · {n429[0]}",
                             "n/a", "", ""))
                rows.append(("", "429s ÷ requests", cell(share, "{:.1f}", " %"), "n/a", "≤ 5 %",
                             verdict(med(share) <= 5, max(share) <= 5)))
                rows.append(("", f"wall ÷ rate bound ({batches} ÷ {rate:g}/s = {bound:.2f} s)", cell(rb), "n/a",
                             "≤ 1.15", verdict(med(rb) <= 1.15, max(rb) <= 1.15)))
            else:
                rows.append(("", f"P_rpm = {P['rpm']} set: HTTP 429s", cell(n429, "{:.0f}"), "n/a", "0",
                             verdict(med(n429) == 0, max(n429) == 0)))
                rows.append(("", "P_rpm set: wall ÷ rate bound", cell(rb), "n/a", "", ""))
            rows.append(("", f"{mode}: exact predictions", cell(ex, "{:.1f}", " %"), "n/a", "", ""))
        plot["limits"] = [(mode, med([r["server"]["http_429"] / max(r["server"]["requests"], 1) * 100
                                      for r in res["limits"]["runs"] if r.get("mode") == mode]))
                          for mode in ("unconfigured", "configured")]

    # 9. real-sized personas (issue 17, item 3): scale.sh SCALE_PERSONAS=real SCALE_QUERY=count
    sr = load_csv(args.scale_real_csv)
    if sr:
        sizes = sorted({int(r["n"]) for r in sr})

        def colr(n, k):
            return [float(r[k]) for r in sr if int(r["n"]) == n and r.get(k, "") != ""]
        name = ("9 real-sized personas (scale.sh SCALE_PERSONAS=real, test/bench/personas_real.sql; "
                "zero-latency server; `SELECT count(*) FROM ctr_predict(...)`; when it ran: its details below)")
        first = True
        for n in sizes:
            rows.append((name if first else "", f"prompt bytes / persona (4 × server prompt tokens ÷ N), N = {n:,}",
                         cell(colr(n, "prompt_bytes_per_persona"), "{:.0f}"), "n/a", "~560", ""))
            first = False
        for n in sizes:
            v = colr(n, "cpu_us_per_persona")
            rows.append(("", f"CPU µs / persona (caller + workers), N = {n:,}", cell(v, "{:.1f}"), "n/a", "≤ 8",
                         verdict(med(v) <= 8 if v else None)))
        for n in sizes:
            rows.append(("", f"caller private memory (peak RssAnon) MB, N = {n:,}",
                         cell(colr(n, "caller_rssanon_max_mb"), "{:.1f}"), "n/a", "", ""))
        if 100000 in sizes and 1000000 in sizes:
            a, b = med(colr(100000, "caller_rssanon_max_mb")), med(colr(1000000, "caller_rssanon_max_mb"))
            rows.append(("", "caller RssAnon 1M ÷ 100k", f"{b / a:.2f} ({a:.1f} → {b:.1f} MB)", "n/a", "≤ 1.1",
                         verdict(b / a <= 1.1)))
        for n in sizes:
            rows.append(("", f"worker peak RSS MB openai / deepseek / gemini, N = {n:,}",
                         " / ".join(cell(colr(n, f"{p}_vmhwm_mb"), "{:.1f}") for p in PROVIDERS), "n/a", "", ""))
        plot["realsize"] = [(n, med(colr(n, "cpu_us_per_persona"))) for n in sizes]
        for n in sizes:
            rows.append(("", f"wall s · server CPU s · exact, N = {n:,}",
                         cell(colr(n, "wall_s")) + " · " + cell(colr(n, "server_cpu_s"), "{:.1f}") + " · "
                         + ("yes" if all(int(r["rows"]) == n for r in sr if int(r["n"]) == n) else "**no**"),
                         "n/a", "", ""))

    # 10. a 10-ad comparison (issue 16, item 6)
    if "compare" in res:
        P = res["compare"]["params"]
        cc = [r for r in res["compare"]["runs"] if r["system"] == "ctr_compare"]
        sep = {m: [r for r in res["compare"]["runs"] if r["system"] == "separate_" + m] for m in ("cold", "warm")}
        cs, cw = sep["cold"], sep["warm"]
        name = (f"10 compare{stamp('compare')}: {P['ads']} ads × {P['n']:,} real-sized personas, ctr_compare "
                f"vs {P['ads']} separate ctr_predict runs, {P['latency_ms']} ms/request (columns: ctr_compare; "
                "separate runs with cold caches, each paying for the panel · back to back, caches warm)")
        have_cache = all(r["server"].get("tokens_cached") is not None for r in cc + cs + cw)

        def two(f, fmt, suffix=""):
            return cell([f(r) for r in cs], fmt, suffix) + " · " + cell([f(r) for r in cw], fmt, suffix)
        rows.append((name, "prompt tokens billed", cell([r["server"]["tokens_in"] for r in cc], "{:.0f}"),
                     two(lambda r: r["server"]["tokens_in"], "{:.0f}"), "", ""))
        if have_cache:
            share = lambda r: r["server"]["tokens_cached"] / max(r["server"]["tokens_in"], 1) * 100
            rows.append(("", "cached share of prompt tokens", cell([share(r) for r in cc], "{:.1f}", " %"),
                         two(share, "{:.1f}", " %"), "", ""))
        else:
            rows.append(("", "cached share of prompt tokens", "cached tokens not reported by this server",
                         "cached tokens not reported by this server", "", ""))
        rows.append(("", "USD at list prices, no cache discount", cell([r["server"]["cost_usd"] for r in cc], "{:.4f}"),
                     two(lambda r: r["server"]["cost_usd"], "{:.4f}"), "", ""))
        key = "cost_cached_usd" if have_cache else "cost_usd"
        if have_cache:
            rows.append(("", "USD at list prices, cached tokens discounted (read at: OpenAI 50 %, DeepSeek 2 %, "
                         "Gemini 10 % of the input price)",
                         cell([r["server"]["cost_cached_usd"] for r in cc], "{:.4f}"),
                         two(lambda r: r["server"]["cost_cached_usd"], "{:.4f}"), "", ""))
        rows.append(("", "ctr_dist's own cost estimate (ctr_compare's cost_usd; the NOTICEs)",
                     cell([r.get("ctr_dist_cost_usd") for r in cc], "{:.4f}"),
                     two(lambda r: r.get("ctr_dist_cost_usd"), "{:.4f}"), "", ""))
        ok = lambda rs: "yes" if rs and all(r["exact"] for r in rs) else "**no**"
        rows.append(("", "wall s (sum of the queries) · every answer exact",
                     cell([r["wall_s"] for r in cc]) + " · " + ok(cc),
                     cell([r["wall_s"] for r in cs]) + " · " + ok(cs) + "; " + cell([r["wall_s"] for r in cw])
                     + " · " + ok(cw), "", ""))
        tail = " (cached tokens discounted)" if have_cache else " (no discount: cached tokens not reported by this server)"
        ratios = [a["server"][key] / b["server"][key] for a, b in zip(cc, cs) if b["server"][key]]
        rw = [a["server"][key] / b["server"][key] for a, b in zip(cc, cw) if b["server"][key]]
        rows.append(("", "cost ratio ctr_compare ÷ separate runs, cold caches" + tail, cell(ratios), "", "≤ 0.3",
                     (verdict(med(ratios) <= 0.3, max(ratios) <= 0.3) if ratios else "–") if have_cache
                     else "– (no cached-token figures)"))
        rows.append(("", "cost ratio ctr_compare ÷ separate runs back to back (caches warm)" + tail, cell(rw),
                     "", "", ""))
        if have_cache and all("by_provider" in r["server"] for r in cc + cs):
            def pcost(r, p):
                b = r["server"]["by_provider"][p]
                pin, pout = PRICES[p]
                return ((b["tokens_in"] - b["tokens_cached"] * (1 - CACHED_SHARE[p])) * pin
                        + b["tokens_out"] * pout) / 1e6
            rows.append(("", "the same ratio per provider, cold caches: openai / deepseek / gemini "
                         "(the most a 10-ad panel can save is 9 of its 10 reads at the cached price)",
                         " / ".join(cell([pcost(a, p) / pcost(b, p) for a, b in zip(cc, cs) if pcost(b, p)])
                                    for p in PROVIDERS), "", "", ""))

            def now_cost(r):
                return sum(usd_now(r["server"]["by_provider"][p], p) for p in PROVIDERS)
            now = [now_cost(a) / now_cost(b) for a, b in zip(cc, cs) if now_cost(b)]
            rows.append(("", "cost ratio, cold caches, at ctr_dist's default prices for today's default models "
                         "(OpenAI 0.10 / cached 0.01 / 0.50, DeepSeek 0.15 / 0.003 / 0.60, Gemini 0.10 / 0.01 / 0.40 "
                         "per 1M tokens)", cell(now), "", "≤ 0.3",
                         verdict(med(now) <= 0.3, max(now) <= 0.3) if now else "–"))
        if have_cache and all("answered_personas" in r["server"]["by_provider"][p] for r in cc + cs + cw
                              for p in PROVIDERS):
            for p in PROVIDERS:
                def two1000(rs):
                    bs = [r["server"]["by_provider"][p] for r in rs]
                    return (cell([per_1000(b, p, False) for b in bs], "{:.4f}") + " without caching, "
                            + cell([per_1000(b, p) for b in bs], "{:.4f}") + " with it ("
                            + cell([cached_share(b) for b in bs], "{:.0f}", " %") + " cached)")
                rows.append(("", f"USD per 1,000 predictions on {p} at today's default prices "
                             f"({' / '.join(str(x) for x in PRICES_NOW[p])} in / cached in / out)",
                             two1000(cc), two1000(cs) + " · " + two1000(cw), "", ""))
        plot["compare"] = [(lbl, med([r["server"][key] for r in rs])) for lbl, rs in
                           (("ctr_compare", cc), ("separate, cold", cs), ("separate, warm", cw))]
        plot["compare_label"] = "USD, cached tokens discounted" if have_cache else "USD (no cached-token figures)"

    # ---- the Markdown
    out = ["# ctr_dist benchmark (`make bench`)", ""]
    if meta:
        out += [f"Run {meta.get('date', '?')} on {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), "
                f"{meta.get('mem', '?')} RAM, 1-min load {meta.get('load', '?')} at the start; "
                f"PostgreSQL {meta.get('pg', '?')}, {meta.get('so', '?')}, commit {meta.get('commit', '?')}. "
                f"Repeats: {meta.get('repeat', '?')} (cells: median (min–max)); the scale runs: see below. "
                f"Total {meta.get('seconds', '?')} s for scenarios {meta.get('scenarios', '?')}. A scenario "
                "that did not run this time keeps its last results, marked with when and with which build "
                "they ran.", ""]
    out += ["Both systems talk to the same local fake provider server (test/provider_server.py), one "
            "after the other within each repeat. The baseline is test/bench/baseline/baseline.py, "
            "the old tool's algorithm; the server reads its `[Persona k]` records with the "
            "`persona_pattern` knob and answers its plain prompt with a bare array "
            "(`json_object_key: null`). \"exact\" = the row's click is the model's own, right answer "
            "(not NULL, not a padded 0, not the mock).", "",
            "| scenario | metric | ctr_dist | baseline | target | verdict |",
            "|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    if args.scale_md and os.path.exists(args.scale_md):
        out += ["## Scale details: with the exact-check join (scale.sh, `results/scale.md`)", "",
                open(args.scale_md).read().strip(), ""]
    if args.scale_count_md and os.path.exists(args.scale_count_md):
        out += ["## Scale details: ctr_predict alone (scale.sh with SCALE_QUERY=count, `results/scale_count.md`)", "",
                open(args.scale_count_md).read().strip(), ""]
    if args.scale_real_md and os.path.exists(args.scale_real_md):
        out += ["## Scale details: real-sized personas, ctr_predict alone (scenario 9: scale.sh with "
                "SCALE_PERSONAS=real SCALE_QUERY=count, `results/scale_real.md`)", "",
                open(args.scale_real_md).read().strip(), ""]
    out += [f"Plot: `{os.path.relpath(args.png, os.path.dirname(args.md))}`", ""]
    text = "\n".join(out)
    with open(args.md, "w") as f:
        f.write(text + "\n")
    if args.plot_data:
        with open(args.plot_data, "w") as f:
            json.dump(plot, f)
    print(text)
    return 0


def gnuplot(args):
    """bench.png from the plot data report() wrote."""
    plot = json.load(open(args.plot_data))
    with tempfile.TemporaryDirectory(prefix="ctr_bench_plot.") as d:
        return _gnuplot(args, plot, d)


def _gnuplot(args, plot, d):
    panels = []

    def dat(name, lines):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    bar = ("set style data histograms; set style histogram clustered gap 1; "
           "set style fill solid 0.8 border -1; set boxwidth 0.9; set grid ytics; "
           "set key top left; set yrange [0:*]; set offsets 0,0,graph 0.2,0; ")
    if "latency" in plot:
        c, b = plot["latency"]
        f = dat("lat.dat", ['"ctr_dist" %s' % c, '"baseline" %s' % b])
        panels.append(bar + "unset key; set title '1 latency-bound: wall s (1 s/request)'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#3070b0', 1 with lines dt 2 lc rgb 'black' title 'one latency'")
    if "rate" in plot:
        c, b, bound = plot["rate"]
        f = dat("rate.dat", ['"ctr_dist" %s' % c, '"baseline" %s' % b])
        panels.append(bar + "unset key; set title '2 rate-bound: wall s (dashed: rate bound)'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#3070b0', {bound} with lines dt 2 lc rgb 'black'")
    if "faults" in plot:
        c, b = plot["faults"]
        f = dat("faults.dat", ['"ctr_dist" %s' % c, '"baseline" %s' % b])
        panels.append(bar + "unset key; set yrange [0:105]; set title '3 faults: exact predictions %'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#30a050'")
    if "scale" in plot:
        f = dat("scale.dat", [" ".join("?" if v is None else str(v) for v in x) for x in plot["scale"]])
        panels.append("set datafile missing '?'; set style data linespoints; set logscale x; set grid; set key top left; "
                      "set yrange [0:*]; set title '4 scale, ctr_predict %s: per N (log x)'; set xlabel 'personas'; " % plot.get("scale_label", "")
                      + 
                      f"plot '{f}' using 1:2 title 'CPU us/persona' lw 2, "
                      f"'' using 1:3 title 'caller anon MB' lw 2, '' using 1:4 title 'worker RSS MB' lw 2, "
                      "5 with lines dt 2 lc rgb 'black' title 'target 5 us'; unset logscale x; unset xlabel")
    if "tokens" in plot:
        cb, bb, ct, bt, cc, bc = plot["tokens"]
        f = dat("tok.dat", ['"prompt B/persona" %s %s' % (cb, bb)])
        panels.append(bar + "set title '5 tokens: prompt bytes per persona'; "
                      f"plot '{f}' using 2:xtic(1) title 'ctr_dist' lc rgb '#3070b0', "
                      "'' using 3 title 'baseline' lc rgb '#c05030'")
    if "concurrency" in plot:
        f = dat("conc.dat", ['"%d" %s %s' % (k, tp, lim) for k, tp, lim, _ in plot["concurrency"]])
        panels.append(bar + "set title '6 concurrency: personas/s by sessions'; "
                      f"plot '{f}' using 2:xtic(1) title 'ctr_dist' lc rgb '#3070b0', "
                      "'' using 3 title 'limit' lc rgb '#bbbbbb'")
    if "hangs" in plot and plot["hangs"][0] is not None:
        f = dat("hangs.dat", ['"ctr_dist" %s' % plot["hangs"][0]])
        panels.append(bar + "unset key; set title '7 faults with hangs: wall / bound (dashed: target 1.5)'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#3070b0', 1.5 with lines dt 2 lc rgb 'black'")
    if "limits" in plot:
        f = dat("limits.dat", ['"%s" %s' % (m, "?" if v is None else v) for m, v in plot["limits"]])
        panels.append(bar + "set datafile missing '?'; unset key; "
                      "set title '8 limits: 429s as % of requests (dashed: target 5 %, unconfigured)'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#c05030', 5 with lines dt 2 lc rgb 'black'")
    if "realsize" in plot:
        f = dat("real.dat", ['"%d" %s' % (n, "?" if v is None else v) for n, v in plot["realsize"]])
        panels.append(bar + "set datafile missing '?'; unset key; "
                      "set title '9 real-sized personas: CPU us / persona by N (dashed: target 8)'; "
                      f"plot '{f}' using 2:xtic(1) lc rgb '#3070b0', 8 with lines dt 2 lc rgb 'black'")
    if "compare" in plot:
        f = dat("cmp.dat", ['"%s" %s' % (m, "?" if v is None else v) for m, v in plot["compare"]])
        panels.append(bar + "set datafile missing '?'; unset key; "
                      "set title '10 ten ads x 1,000 personas: %s'; " % plot.get("compare_label", "USD")
                      + f"plot '{f}' using 2:xtic(1) lc rgb '#30a050'")
    if not panels:
        return 0
    cols = 3
    rws = -(-len(panels) // cols)
    script = [f"set terminal pngcairo noenhanced size {480 * cols},{360 * rws} font 'sans,10'",
              f"set output '{args.png}'", f"set multiplot layout {rws},{cols}"]
    for p in panels:
        script += ["reset", p]
    script.append("unset multiplot")
    sp = dat("plot.gp", script)
    r = subprocess.run(["gnuplot", sp], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("gnuplot failed: " + r.stderr[-2000:] + "\n")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scenarios")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--json", required=True)
    s.add_argument("--only", default=" ".join(SCENARIOS))
    s.add_argument("--server-log", help="the test server's --log file (scenario 7's idle stretches)")
    s.add_argument("--meta-json", help="the run's meta data, stamped on each scenario")
    r = sub.add_parser("report")
    r.add_argument("--json", required=True)
    r.add_argument("--scale-csv")
    r.add_argument("--scale-md")
    r.add_argument("--scale-count-csv")
    r.add_argument("--scale-count-md")
    r.add_argument("--scale-real-csv")
    r.add_argument("--scale-real-md")
    r.add_argument("--md", required=True)
    r.add_argument("--png", required=True)
    r.add_argument("--meta-json")
    r.add_argument("--plot-data")
    g = sub.add_parser("plot")
    g.add_argument("--plot-data", required=True)
    g.add_argument("--png", required=True)
    args = ap.parse_args()
    if args.cmd == "scenarios":
        return scenarios(args)
    if args.cmd == "report":
        return report(args)
    return gnuplot(args)


if __name__ == "__main__":
    sys.exit(main())
