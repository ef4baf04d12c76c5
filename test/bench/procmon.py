#!/usr/bin/env python3
"""Helper for test/bench/scale.sh (Python 3 standard library only).

  procmon.py run --n N --rep R --table T --csv FILE [--batch 50] [--sample-ms 100]
                 [--server-pid PID] [--server-url URL] [--trace FILE]
      One measured ctr_predict call.  Opens one psql session (connection settings
      from the PG* environment), reads pg_backend_pid(), sends the benchmark query
      and, while it runs, samples every --sample-ms the calling backend and every
      "ctr_dist worker" process whose title names that backend as its leader:
      VmHWM, VmRSS and RssAnon from /proc/PID/status, utime+stime from
      /proc/PID/stat.  Appends one row to the CSV and prints a one-line summary.
      Exit status 1 if the predictions are not all exact.
      For diagnosis: --query count (ctr_predict alone, no join, no exactness
      check) and --setup SQL (run in the same session first, e.g. a SET).

  procmon.py report --csv FILE --md FILE [--meta TEXT]
      Medians and min-max per N from the CSV, as a Markdown table (printed and
      written to --md).
"""
import argparse
import csv
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
PROVIDERS = ("openai", "deepseek", "gemini")
WORKER_RE = re.compile(r"ctr_dist worker for (\w+) \(leader pid (\d+)\)")

FIELDS = [
    "n", "rep", "batch_size", "wall_s", "rows", "exact", "nulls",
    "caller_pid", "caller_vmhwm_mb", "caller_vmrss_max_mb", "caller_rssanon_max_mb",
    "caller_cpu_s",
    "workers_seen",
    "openai_vmhwm_mb", "deepseek_vmhwm_mb", "gemini_vmhwm_mb",
    "workers_rssanon_max_mb",
    "openai_cpu_s", "deepseek_cpu_s", "gemini_cpu_s",
    "workers_cpu_s", "workers_cpu_reaped_s",
    "cpu_us_per_persona",
    "server_cpu_s", "temp_mb", "samples", "max_sample_gap_ms",
    "server_requests", "server_tokens_in", "prompt_bytes_per_persona", "notice",
]


# ---------------------------------------------------------------- /proc

def read_status(pid):
    """VmHWM, VmRSS, RssAnon in kB, or None if the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon"):
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return out


def read_stat(pid):
    """(ppid, utime+stime seconds, cutime+cstime seconds, state) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] = state (field 3); utime is field 14 -> rest[11]
    state, ppid = rest[0], int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, (utime + stime) / TICK, (cutime + cstime) / TICK, state


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


class WorkerFinder:
    """Finds the ctr_dist workers of one leader among the postmaster's children."""

    def __init__(self, postmaster, leader):
        self.postmaster = postmaster
        self.leader = leader
        self.known = {}  # pid -> provider name, or None for "not one of ours"

    def scan(self):
        found = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in self.known:
                if self.known[pid]:
                    found[pid] = self.known[pid]
                continue
            st = read_stat(pid)
            if st is None:
                continue
            if st[0] != self.postmaster:
                self.known[pid] = None
                continue
            cmd = read_cmdline(pid)
            m = WORKER_RE.search(cmd or "")
            if m and int(m.group(2)) == self.leader:
                self.known[pid] = m.group(1)
                found[pid] = m.group(1)
            elif cmd and "ctr_dist worker" not in cmd:
                self.known[pid] = None  # another postmaster child
            # a just-forked child may not have its title yet: look again next time
        return found


# ---------------------------------------------------------------- psql session

class Psql:
    def __init__(self):
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1)
        self.out = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, args=(self.p.stdout, self.out.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _pump(stream, put):
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def send(self, sql):
        self.p.stdin.write(sql.rstrip() + "\n")
        self.p.stdin.flush()

    def line(self, timeout=None):
        line = self.out.get(timeout=timeout)
        if line is None:
            raise RuntimeError("psql ended: " + " | ".join(l for l in self.err[-10:] if l))
        return line

    def query(self, sql, timeout=60):
        self.send(sql)
        return self.line(timeout)

    def close(self):
        try:
            self.p.stdin.write("\\q\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=30)


# ---------------------------------------------------------------- the provider server

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def server_ctl(url, path, body=None):
    """GET (or POST body to) a control route of the test provider server."""
    data = None if body is None else body.encode()
    req = urllib.request.Request(url + path, data=data, method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with NO_PROXY.open(req, timeout=30) as r:
        return r.read()


# ---------------------------------------------------------------- run

def mb(kb):
    return round(kb / 1024.0, 1) if kb is not None else ""


def run(args):
    call = f"ctr_predict('{args.table}', {args.batch}, ad => 'Gym')"
    if args.query == "join":
        sql = (f"SELECT count(*), count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int), "
               f"count(*) FILTER (WHERE r.click IS NULL) "
               f"FROM {call} r JOIN {args.table} t ON t.id::text = r.persona_key;")
    else:
        # ctr_predict alone: no exactness check, only the row count
        sql = (f"SELECT count(*), count(*), count(*) FILTER (WHERE click IS NULL) "
               f"FROM {call};")
    ps = Psql()
    # no parallel query: the join's parallel workers would be counted as
    # postmaster children, and the plan would differ between sizes
    ps.send("SET max_parallel_workers_per_gather = 0;")
    if args.setup:
        ps.send(args.setup)
    caller = int(ps.query("SELECT pg_backend_pid();"))
    st = read_stat(caller)
    if st is None:
        sys.exit(f"cannot read /proc/{caller}/stat (run as root or as the server's user)")
    postmaster = st[0]
    ps.query("SELECT pg_stat_force_next_flush();")
    temp0 = ps.query("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database();")
    caller_cpu0 = read_stat(caller)[1]
    pm_children0 = read_stat(postmaster)[2]
    srv0 = read_stat(args.server_pid)[1] if args.server_pid else None
    if args.server_url:
        server_ctl(args.server_url, "/_control/reset", "{}")

    finder = WorkerFinder(postmaster, caller)
    workers = {}  # pid -> dict(provider, hwm, anon, cpu, samples)
    caller_hwm = caller_rss = caller_anon = 0
    samples = 0
    max_gap = 0.0
    trace = open(args.trace, "w") if args.trace else None
    if trace:
        trace.write("t_s,pid,role,vmhwm_kb,vmrss_kb,rssanon_kb,cpu_s\n")

    def sample(t):
        nonlocal caller_hwm, caller_rss, caller_anon, samples
        samples += 1
        s = read_status(caller)
        c = read_stat(caller)
        if s:
            caller_hwm = max(caller_hwm, s.get("VmHWM", 0))
            caller_rss = max(caller_rss, s.get("VmRSS", 0))
            caller_anon = max(caller_anon, s.get("RssAnon", 0))
            if trace and c:
                trace.write(f"{t:.3f},{caller},caller,{s['VmHWM']},{s['VmRSS']},{s['RssAnon']},{c[1]:.2f}\n")
        for pid, prov in finder.scan().items():
            s = read_status(pid)
            c = read_stat(pid)
            if s is None or c is None or c[3] == "Z":
                continue  # gone (or a zombie, whose counters are no longer its own)
            w = workers.setdefault(pid, {"provider": prov, "hwm": 0, "anon": 0, "cpu": 0.0})
            w["hwm"] = max(w["hwm"], s.get("VmHWM", 0))
            w["anon"] = max(w["anon"], s.get("RssAnon", 0))
            w["cpu"] = c[1]  # the last sample before it disappears
            if trace:
                trace.write(f"{t:.3f},{pid},{prov},{s['VmHWM']},{s['VmRSS']},{s['RssAnon']},{c[1]:.2f}\n")

    period = args.sample_ms / 1000.0
    t0 = time.monotonic()
    ps.send(sql)
    result = None
    last = t0
    next_t = t0
    while result is None:
        now = time.monotonic()
        max_gap = max(max_gap, now - last)
        last = now
        sample(now - t0)
        next_t += period
        try:
            result = ps.out.get(timeout=max(0.0, next_t - time.monotonic()))
            if result is None:
                raise RuntimeError("psql ended: " + " | ".join(l for l in ps.err[-10:] if l))
        except queue.Empty:
            pass
    wall = time.monotonic() - t0
    sample(wall)  # the caller's final figures; workers are usually gone by now

    # let the workers exit and the postmaster reap them
    deadline = time.monotonic() + 10
    while finder.scan() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    caller_cpu = read_stat(caller)[1] - caller_cpu0
    reaped = read_stat(postmaster)[2] - pm_children0
    srv = (read_stat(args.server_pid)[1] - srv0) if args.server_pid else None
    ps.query("SELECT pg_stat_force_next_flush();")
    temp1 = ps.query("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database();")
    ps.close()
    if trace:
        trace.close()
    # prompt bytes = 4 x the server's prompt tokens (ceil(bytes / 4) per request)
    sreq = stok = ""
    if args.server_url:
        st = json.loads(server_ctl(args.server_url, "/_control/stats"))
        sreq = sum(st[p]["requests"] for p in PROVIDERS)
        stok = sum(st[p]["tokens_in"] for p in PROVIDERS)

    rows, exact, nulls = (int(x) for x in result.split("|"))
    by_prov = {p: [w for w in workers.values() if w["provider"] == p] for p in PROVIDERS}
    wcpu = sum(w["cpu"] for w in workers.values())
    notice = " ".join(l.strip() for l in ps.err if l and ("NOTICE" in l or "DETAIL" in l or "ERROR" in l))
    row = {
        "n": args.n, "rep": args.rep, "batch_size": args.batch,
        "wall_s": round(wall, 3), "rows": rows, "exact": exact, "nulls": nulls,
        "caller_pid": caller,
        "caller_vmhwm_mb": mb(caller_hwm), "caller_vmrss_max_mb": mb(caller_rss),
        "caller_rssanon_max_mb": mb(caller_anon),
        "caller_cpu_s": round(caller_cpu, 2),
        "workers_seen": len(workers),
        **{f"{p}_vmhwm_mb": mb(max((w["hwm"] for w in by_prov[p]), default=None)) for p in PROVIDERS},
        "workers_rssanon_max_mb": mb(max((w["anon"] for w in workers.values()), default=None)),
        **{f"{p}_cpu_s": round(sum(w["cpu"] for w in by_prov[p]), 2) for p in PROVIDERS},
        "workers_cpu_s": round(wcpu, 2),
        "workers_cpu_reaped_s": round(reaped, 2),
        # the postmaster's reaped-children time is exact; the samples can miss
        # the last <= sample period of each worker
        "cpu_us_per_persona": round((caller_cpu + max(wcpu, reaped)) / args.n * 1e6, 1),
        "server_cpu_s": round(srv, 2) if srv is not None else "",
        "temp_mb": round((int(temp1) - int(temp0)) / 1048576.0, 1),
        "samples": samples, "max_sample_gap_ms": round(max_gap * 1000),
        "server_requests": sreq, "server_tokens_in": stok,
        "prompt_bytes_per_persona": round(stok * 4 / args.n, 1) if stok != "" else "",
        "notice": notice,
    }
    new = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
    with open(args.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)
    print(f"N={args.n} rep={args.rep}: wall {row['wall_s']} s, rows {rows}, exact {exact}, "
          f"caller HWM {row['caller_vmhwm_mb']} MB (anon {row['caller_rssanon_max_mb']}), "
          f"caller CPU {row['caller_cpu_s']} s, workers {len(workers)} CPU {row['workers_cpu_s']} s "
          f"(reaped {row['workers_cpu_reaped_s']}), worker HWM "
          + "/".join(str(row[f'{p}_vmhwm_mb']) for p in PROVIDERS)
          + f" MB, {row['cpu_us_per_persona']} us/persona, server CPU {row['server_cpu_s']} s, "
          f"temp {row['temp_mb']} MB"
          + (f", prompt {row['prompt_bytes_per_persona']} B/persona" if stok != "" else ""), flush=True)
    if notice:
        print("   " + notice, flush=True)
    ok = rows == args.n and exact == args.n
    if not ok:
        print(f"   NOT EXACT: expected {args.n}|{args.n}, got {rows}|{exact} ({nulls} NULL)",
              file=sys.stderr, flush=True)
    return 0 if ok else 1


# ---------------------------------------------------------------- report

def fnum(x):
    if x == "" or x is None:
        return None
    return float(x)


def cell(vals, fmt="{:.1f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    med = fmt.format(statistics.median(vals))
    if len(vals) == 1:
        return med
    return f"{med} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def report(args):
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    sizes = sorted({int(r["n"]) for r in rows})
    by_n = {n: [r for r in rows if int(r["n"]) == n] for n in sizes}

    def col(n, key):
        return [fnum(r.get(key, "")) for r in by_n[n]]

    out = []
    if args.meta:
        out += [args.meta, ""]
    out += [
        "| N | runs | exact | wall s | caller peak RSS MB | caller peak anon MB "
        "| worker peak RSS MB openai / deepseek / gemini | caller CPU s | workers CPU s "
        "| workers CPU s (reaped) | CPU µs / persona | server CPU s | temp MB | prompt B / persona |",
        "|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        rs = by_n[n]
        exact = all(int(r["rows"]) == n and int(r["exact"]) == n for r in rs)
        wk = " / ".join(cell(col(n, f"{p}_vmhwm_mb")) for p in PROVIDERS)
        out.append(
            f"| {n:,} | {len(rs)} | {'yes' if exact else '**NO**'} "
            f"| {cell(col(n, 'wall_s'), '{:.2f}')} "
            f"| {cell(col(n, 'caller_vmhwm_mb'))} | {cell(col(n, 'caller_rssanon_max_mb'))} "
            f"| {wk} "
            f"| {cell(col(n, 'caller_cpu_s'), '{:.2f}')} | {cell(col(n, 'workers_cpu_s'), '{:.2f}')} "
            f"| {cell(col(n, 'workers_cpu_reaped_s'), '{:.2f}')} "
            f"| {cell(col(n, 'cpu_us_per_persona'))} "
            f"| {cell(col(n, 'server_cpu_s'), '{:.1f}')} | {cell(col(n, 'temp_mb'))} "
            f"| {cell(col(n, 'prompt_bytes_per_persona'))} |")
    out.append("")
    med = {n: statistics.median(col(n, "wall_s")) for n in sizes}
    ratios = []
    for a, b in zip(sizes, sizes[1:]):
        ratios.append(f"wall({b:,}) / wall({a:,}) = {med[b] / med[a]:.2f} "
                      f"(N ratio {b / a:g})")
    if 100000 in med and 1000000 in med:
        out.append(f"**wall(1M) / wall(100k) = {med[1000000] / med[100000]:.2f}** "
                   "(10 = linear).")
    if ratios:
        out.append("Median wall-time ratios: " + "; ".join(ratios) + ".")
    out.append("")
    text = "\n".join(out)
    print(text)
    with open(args.md, "w") as f:
        f.write(text)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--rep", type=int, default=1)
    r.add_argument("--table", required=True)
    r.add_argument("--batch", type=int, default=50)
    r.add_argument("--sample-ms", type=float, default=100)
    r.add_argument("--server-pid", type=int)
    r.add_argument("--server-url", help="the test server's base URL: its stats are reset before the "
                   "call and its prompt tokens read after it (prompt_bytes_per_persona)")
    r.add_argument("--csv", required=True)
    r.add_argument("--trace")
    r.add_argument("--query", choices=("join", "count"), default="join",
                   help="join: the exact-check join (default); count: count(*) of ctr_predict alone")
    r.add_argument("--setup", help="SQL run in the session before the call, e.g. SET work_mem = '64MB'")
    p = sub.add_parser("report")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--meta")
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
