#!/usr/bin/env bash
# `make bench`: every benchmark scenario against the local test provider server,
# ctr_dist and the baseline (the old tool) side by side. See test/bench/README.md.
#
#   make bench                                   # or: bash test/bench/run.sh
#   BENCH_REPEAT=5 BENCH_SCENARIOS="latency rate" bash test/bench/run.sh
#
# Writes test/bench/results/bench.md (printed too), bench.png, bench.json (every
# run), and scale.md / scale.csv, scale_count.*, scale_real.* (scale.sh). Needs the extension installed; run
# as root on Debian 12 (installs gnuplot-nox and python3-aiohttp if missing).
# Starts a provider server and throwaway clusters (pg_virtualenv -t) and leaves
# nothing running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

: "${BENCH_OUT:=$here/results}"
: "${BENCH_REPEAT:=3}"
: "${BENCH_SCENARIOS:=latency rate faults tokens concurrency scale hangs limits realsize compare}"
: "${BENCH_SCALE_SIZES:=10000 100000 1000000}"
: "${BENCH_SCALE_REPEAT:=3}"
: "${BENCH_REAL_SIZES:=100000 1000000}"
: "${BENCH_REAL_REPEAT:=1}"
export BENCH_REPEAT

start=$(date +%s)
mkdir -p "$BENCH_OUT"

# ---- what the run needs, only if missing
missing=()
command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
/usr/bin/python3 -c 'import aiohttp' >/dev/null 2>&1 || missing+=(python3-aiohttp)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "run as root, or install ${missing[*]} first" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/ctr_dist_bench.XXXXXX)
server_pid=
stop_server() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	server_pid=
}
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the machine and the build, for the report
so=$("${PG_CONFIG:-pg_config}" --pkglibdir)/ctr_dist.so
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$top" status --porcelain -- src sql 2>/dev/null)" ]; then commit="$commit (src/ or sql/ modified)"; fi
python3 - "$work/meta.json" <<PY
import json, os, re, subprocess, sys
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
        break
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
pg = subprocess.run(["${PG_CONFIG:-pg_config}", "--version"], capture_output=True, text=True).stdout.split()[1]
json.dump({"date": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip(),
           "nproc": os.cpu_count(), "cpu": cpu, "mem": "%.1f GB" % (mem / 1048576),
           "load": open("/proc/loadavg").read().split()[0], "pg": pg,
           "so": "ctr_dist.so $(date -u -r "$so" '+%Y-%m-%d %H:%M UTC') md5 $(md5sum "$so" | cut -c1-12)",
           "commit": "$commit", "repeat": int("$BENCH_REPEAT"), "scenarios": "$BENCH_SCENARIOS"},
          open(sys.argv[1], "w"))
PY

# earlier results stay: a subset run replaces only its own scenarios in bench.json
# (each scenario records when, and with which build, it ran)
# (each scenario records when, and with which build, it ran; results from before that
# record get the date of the bench_meta.json they were written with)
if [ -f "$BENCH_OUT/bench.json" ]; then
	python3 - "$BENCH_OUT/bench.json" "$BENCH_OUT/bench_meta.json" "$work/bench.json" <<'PY'
import json, os, sys
res = json.load(open(sys.argv[1]))
old = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
for r in res.values():
    r.setdefault("ran", {k: old.get(k) for k in ("date", "so", "commit", "load")})
json.dump(res, open(sys.argv[3], "w"), indent=1)
PY
	cp "$work/bench.json" "$BENCH_OUT/bench.json"
fi

# ---- scenarios 1-3, 5-8, 10: one provider server (with a request log, for the
# idle stretches of scenario 7), a preloaded cluster for each
status=0
scen=$(echo "$BENCH_SCENARIOS" | tr ' ' '\n' | grep -v -e '^scale$' -e '^realsize$' | tr '\n' ' ' || true)
if [ -n "${scen// /}" ]; then
	start_provider_server "$work" --log "$work/server.log"
	echo "provider server pid $server_pid on 127.0.0.1:$port; scenarios: $scen; $BENCH_REPEAT repeats"
	# 16 sessions x 3 workers need worker slots; -t: a temporary cluster, so a
	# concurrent make test (15/regress) does not collide with it
	# each scenario in a cluster of its own: preloaded, the limits ctr_dist learns from 429s
	# (scenario 3's, scenario 8's) stay in shared memory until the server restarts, and
	# would pace every later scenario
	for one in $scen; do
		pg_virtualenv -t -o shared_preload_libraries=ctr_dist -o autovacuum=off \
			-o max_worker_processes=64 -o max_connections=100 \
			python3 "$here/bench.py" scenarios --port "$port" --json "$work/bench.json" --only "$one" \
			--server-log "$work/server.log" --meta-json "$work/meta.json" ||
			status=$?
	done
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "the provider server died during the run; its output:" >&2
		tail -20 "$work/server.out" >&2
		status=1
	fi
	stop_server
	[ -f "$work/bench.json" ] && cp "$work/bench.json" "$BENCH_OUT/bench.json"
fi

# ---- scenario 4: scale.sh (its own server and cluster), twice: with the
# exact-check join (scale.md/.csv), then ctr_predict alone (scale_count.md/.csv)
scale_args=()
if echo " $BENCH_SCENARIOS " | grep -q ' scale '; then
	for q in join count; do
		name=scale
		[ $q = count ] && name=scale_count
		echo "== scale ($q): scale.sh, N = $BENCH_SCALE_SIZES, $BENCH_SCALE_REPEAT runs each"
		SCALE_SIZES="$BENCH_SCALE_SIZES" SCALE_REPEAT="$BENCH_SCALE_REPEAT" SCALE_OUT="$BENCH_OUT" \
			SCALE_QUERY=$q SCALE_NAME=$name \
			bash "$here/scale.sh" >"$work/$name.log" 2>&1 || { status=$?; cat "$work/$name.log"; }
		grep -E '^N=|NOT EXACT' "$work/$name.log" || true
	done
fi

# ---- scenario 9: scale.sh with real-sized personas (personas_real.sql), ctr_predict alone
if echo " $BENCH_SCENARIOS " | grep -q ' realsize '; then
	echo "== realsize: scale.sh, ~560-byte personas, N = $BENCH_REAL_SIZES, $BENCH_REAL_REPEAT run(s) each"
	SCALE_SIZES="$BENCH_REAL_SIZES" SCALE_REPEAT="$BENCH_REAL_REPEAT" SCALE_OUT="$BENCH_OUT" \
		SCALE_QUERY=count SCALE_NAME=scale_real SCALE_PERSONAS=real \
		bash "$here/scale.sh" >"$work/scale_real.log" 2>&1 || { status=$?; cat "$work/scale_real.log"; }
	grep -E '^N=|NOT EXACT' "$work/scale_real.log" || true
fi

# the scale tables in the report: whichever of them exist (from this run or an earlier one)
for f in scale:scale scale_count:scale-count scale_real:scale-real; do
	[ -f "$BENCH_OUT/${f%%:*}.csv" ] || continue
	scale_args+=(--"${f#*:}-csv" "$BENCH_OUT/${f%%:*}.csv" --"${f#*:}-md" "$BENCH_OUT/${f%%:*}.md")
done

# ---- the report and the plot
python3 - "$work/meta.json" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["seconds"] = int(sys.argv[2]); json.dump(m, open(sys.argv[1], "w"))
PY
echo
python3 "$here/bench.py" report --json "$work/bench.json" --meta-json "$work/meta.json" \
	"${scale_args[@]}" \
	--md "$BENCH_OUT/bench.md" --png "$BENCH_OUT/bench.png" --plot-data "$work/plot.json"
cp "$work/meta.json" "$BENCH_OUT/bench_meta.json"
python3 "$here/bench.py" plot --plot-data "$work/plot.json" --png "$BENCH_OUT/bench.png" || status=1
echo
echo "written: $BENCH_OUT/bench.md, $BENCH_OUT/bench.png, $BENCH_OUT/bench.json ($(( $(date +%s) - start )) s)"
exit $status
