#!/usr/bin/env bash
# Scale and overhead benchmark for ctr_predict (not part of `make test`).
# See test/bench/README.md.
#
#   bash test/bench/scale.sh                          # N = 10k, 100k, 1M
#   SCALE_SIZES="10000 100000" bash test/bench/scale.sh
#
# Environment:
#   SCALE_SIZES      persona counts (default "10000 100000 1000000")
#   SCALE_REPEAT     runs per N (default: 1 for N >= 1,000,000, else 3)
#   SCALE_BATCH      batch_size argument (default 50)
#   SCALE_SAMPLE_MS  /proc sampling period in ms (default 100)
#   SCALE_OUT        results folder (default test/bench/results)
#   SCALE_TRACE_DIR  if set, one CSV of every /proc sample per run goes there
#   SCALE_QUERY      join (default: the exact-check join) or count (ctr_predict
#                    alone, count(*) only: no join, no sort, no exactness check)
#   SCALE_NAME       file names in SCALE_OUT (default scale: scale.md, scale.csv)
#   SCALE_SERVER_CONFIG  the provider server's knobs (default: latency 0 and
#                    rpm/tpm so high that they never bind; see README.md)
#   SCALE_PERSONAS   small (default: id, age, occupation, tag)
#   SCALE_SETUP      SQL run in the measured session before each call, e.g.
#                    'SET ctr_dist.max_workers = 0' (the calling backend does
#                    the HTTP itself); noted in the report
#                    or real (personas_real.sql: 13 columns, ~560 prompt bytes)
#
# Needs the extension installed (make install), pg_virtualenv, psql, python3;
# run as root (or as a user that may read the postgres processes' /proc files).
# Starts the test provider server (zero latency) and a throwaway pg_virtualenv
# cluster, and leaves neither running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

: "${SCALE_SIZES:=10000 100000 1000000}"
: "${SCALE_BATCH:=50}"
: "${SCALE_SAMPLE_MS:=100}"
: "${SCALE_OUT:=$here/results}"
: "${SCALE_QUERY:=join}"
: "${SCALE_NAME:=scale}"
: "${SCALE_PERSONAS:=small}"
case $SCALE_PERSONAS in small | real) ;; *) echo "SCALE_PERSONAS must be small or real" >&2; exit 2 ;; esac
# Without rpm the fake OpenAI advertises 5000 requests/min in x-ratelimit-*
# headers; past that (N = 1M sends 6,667 OpenAI requests in seconds) ctr_dist
# rightly paces itself, and the run would measure the limit, not the overhead
default_config='{"latency_ms": 0, "rpm": 1000000, "tpm": 1000000000}'
: "${SCALE_SERVER_CONFIG:=$default_config}"
: "${SCALE_SETUP:=}"
export SCALE_SIZES SCALE_BATCH SCALE_SAMPLE_MS SCALE_OUT SCALE_SERVER_CONFIG SCALE_QUERY SCALE_NAME SCALE_PERSONAS SCALE_SETUP

if [ "${1:-}" != "--inner" ]; then
	# ---- outer: the provider server, then the cluster around the inner part
	mkdir -p "$SCALE_OUT"
	work=$(mktemp -d /tmp/ctr_dist_scale.XXXXXX)
	server_pid=
	cleanup() {
		if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
			kill -TERM "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
		fi
		rm -rf "$work"
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	start_provider_server "$work" --config "$SCALE_SERVER_CONFIG"
	SCALE_PORT=$port
	SCALE_SERVER_PID=$server_pid
	export SCALE_PORT SCALE_SERVER_PID
	echo "provider server pid $server_pid on 127.0.0.1:$SCALE_PORT, knobs $SCALE_SERVER_CONFIG"

	# the library is loaded when the cluster starts: note which build ran
	so=$("${PG_CONFIG:-pg_config}" --pkglibdir)/ctr_dist.so
	SCALE_SO="ctr_dist.so $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC') md5 $(md5sum "$so" | cut -c1-12)"
	# other work on the machine skews wall times: note the load we started with
	SCALE_LOAD=$(cut -d' ' -f1 /proc/loadavg)
	export SCALE_SO SCALE_LOAD
	echo "$SCALE_SO, load average $SCALE_LOAD"

	# -t: a cluster in a temporary directory, so a concurrent pg_virtualenv
	# (make test) does not collide with ours over the name 15/regress
	status=0
	pg_virtualenv -t -o shared_preload_libraries=ctr_dist -o autovacuum=off \
		bash "$here/scale.sh" --inner || status=$?
	exit $status
fi

# ---- inner: runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER... are set)
psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# pg_virtualenv starts the server through pg_ctlcluster, which does not pass
# our environment on (and a key setting is read only at server start): keys go
# in as key files of the server's user, base URLs as settings
base="http://127.0.0.1:$SCALE_PORT"
keys=$(mktemp -d /tmp/ctr_dist_keys.XXXXXX)
trap 'rm -rf "$keys"' EXIT
for pk in openai:sk-test-openai deepseek:sk-test-deepseek gemini:gm-test-gemini; do
	(umask 077 && echo "${pk#*:}" >"$keys/${pk%%:*}.key")
done
chown -R "$(stat -c %u:%g "$(psql_q -c 'SHOW data_directory')")" "$keys"
psql_q <<SQL
ALTER SYSTEM SET ctr_dist.openai_base_url = '$base/openai/v1';
ALTER SYSTEM SET ctr_dist.deepseek_base_url = '$base/deepseek';
ALTER SYSTEM SET ctr_dist.gemini_base_url = '$base/gemini/v1beta';
ALTER SYSTEM SET ctr_dist.openai_api_key_file = '$keys/openai.key';
ALTER SYSTEM SET ctr_dist.deepseek_api_key_file = '$keys/deepseek.key';
ALTER SYSTEM SET ctr_dist.gemini_api_key_file = '$keys/gemini.key';
SELECT pg_reload_conf();
CREATE EXTENSION ctr_dist;
SQL

csv="$SCALE_OUT/$SCALE_NAME.csv"
md="$SCALE_OUT/$SCALE_NAME.md"
: >"$csv"
[ -n "${SCALE_TRACE_DIR:-}" ] && mkdir -p "$SCALE_TRACE_DIR"

# like test/t/CtrDistTest.pm create_tagged_personas (~38%, 5 of 13, say CLICK), but
# with bigint arithmetic: g * 7919 overflows int above N = 271,183
create_table() {
	local t=$1 n=$2
	if [ "$SCALE_PERSONAS" = real ]; then
		psql_q -v tab="$t" -v n="$n" -f "$here/personas_real.sql"
		psql_q -c CHECKPOINT
		return
	fi
	psql_q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id int PRIMARY KEY, age int, occupation text, tag text);
INSERT INTO $t
SELECT g, 18 + g % 60, (ARRAY['nurse','teacher','driver','coder'])[1 + g % 4],
       CASE WHEN (g::bigint * 7919) % 13 < 5 THEN 'CLICK' ELSE 'pass' END
  FROM generate_series(1, $n) g;
VACUUM (ANALYZE) $t;
CHECKPOINT;
SQL
}

# warm-up (not recorded): first connection to the server, first curl handles
create_table warmup 1000
python3 "$here/procmon.py" run --n 1000 --rep 0 --table warmup --batch "$SCALE_BATCH" \
	--sample-ms "$SCALE_SAMPLE_MS" --csv /dev/null >/dev/null 2>&1 || true
: >"$csv"

failed=0
for n in $SCALE_SIZES; do
	t="t$n"
	if [ -n "${SCALE_REPEAT:-}" ]; then reps=$SCALE_REPEAT
	elif [ "$n" -ge 1000000 ]; then reps=1
	else reps=3
	fi
	echo "== N=$n: creating $t"
	create_table "$t" "$n"
	for rep in $(seq 1 "$reps"); do
		extra=()
		[ -n "${SCALE_TRACE_DIR:-}" ] && extra=(--trace "$SCALE_TRACE_DIR/trace-$n-$rep.csv")
		[ -n "$SCALE_SETUP" ] && extra+=(--setup "${SCALE_SETUP%;};")
		python3 "$here/procmon.py" run --n "$n" --rep "$rep" --table "$t" \
			--batch "$SCALE_BATCH" --sample-ms "$SCALE_SAMPLE_MS" \
			--server-pid "$SCALE_SERVER_PID" --server-url "$base" --query "$SCALE_QUERY" --csv "$csv" "${extra[@]}" || failed=1
	done
	psql_q -c "DROP TABLE $t"
done

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$top" status --porcelain -- src sql 2>/dev/null)" ]; then commit="$commit (src/ or sql/ modified)"; fi
meta="ctr_predict scale benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'): PostgreSQL $(psql_q -c 'SHOW server_version' | cut -d' ' -f1), \
$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, \
1-min load average $SCALE_LOAD at the start, \
commit $commit, $SCALE_SO; \
personas $SCALE_PERSONAS ($( [ "$SCALE_PERSONAS" = real ] && echo 'test/bench/personas_real.sql' || echo 'id, age, occupation, tag')), \
batch_size $SCALE_BATCH, 3 providers on the local test server (knobs \`$SCALE_SERVER_CONFIG\`), \
sampling every $SCALE_SAMPLE_MS ms. Cells: median (min–max) over the runs."
[ -n "$SCALE_SETUP" ] && meta="$meta Before each call: \`$SCALE_SETUP\`."
if [ "$SCALE_QUERY" = count ]; then
	meta="$meta Query: \`SELECT count(*) FROM ctr_predict(...)\` alone (no join, no sort; \"exact\" is not checked in this mode, it only means N rows)."
fi
echo
python3 "$here/procmon.py" report --csv "$csv" --md "$md" --meta "$meta"
echo "written: $md, $csv"
if [ "$failed" != 0 ]; then
	echo "some runs were not exact (see above)" >&2
	exit 1
fi
