#!/usr/bin/env bash
# make test: install what is missing, build and install the extension, then
# run the whole suite on throwaway clusters (nothing is left running):
#   1. pg_regress (sql/, expected/) on a private throwaway cluster with
#      shared_preload_libraries = 'ctr_dist'
#   2. the test provider server's self-test
#   3. the TAP tests (test/t/*.pl) with PostgreSQL::Test::Cluster, run as
#      the postgres user because PostgreSQL refuses to run as root
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

# PG_MAJOR picks one of Debian's PostgreSQL packages (default 15); PG_CONFIG
# points at any other build (e.g. the assert-enabled one of make test-debug)
PG_MAJOR=${PG_MAJOR:-15}
export PG_MAJOR
bash test/install-deps.sh
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
export PG_CONFIG
bindir=$($PG_CONFIG --bindir)
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); else as_pg=(); fi
perl_lib=$($PG_CONFIG --pkglibdir)/pgxs/src/test/perl

make -s
make -s install

# CTR_DIST_KEEP_LOGS=DIR: copy the server logs there before the throwaway
# clusters go (make test-debug and make sanitize scan them)
keep_logs() {
	[ -z "${CTR_DIST_KEEP_LOGS:-}" ] || cp -r "$1" "$CTR_DIST_KEEP_LOGS/$2" 2>/dev/null || true
}

echo "== pg_regress"
# a private cluster in a temporary directory, run as postgres, on a free
# port and a socket of its own: nothing shared with other clusters
reg=$(mktemp -d /tmp/ctr_dist_regress.XXXXXX)
chown postgres: "$reg"
stop_regress() {
	"${as_pg[@]}" "$bindir/pg_ctl" -D "$reg/data" -m immediate stop >/dev/null 2>&1 || true
	keep_logs "$reg/server.log" pg_regress.log
	rm -rf "$reg"
}
trap stop_regress EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bindir/initdb" -D "$reg/data" -A trust -U postgres >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$reg/data" -l "$reg/server.log" -w \
	-o "-p $port -k $reg -c listen_addresses='' -c shared_preload_libraries=ctr_dist" start >/dev/null
if ! make -s installcheck PGHOST="$reg" PGPORT="$port" PGUSER=postgres; then
	cat regression.diffs 2>/dev/null || true
	echo "pg_regress failed" >&2
	exit 1
fi
stop_regress
trap - EXIT

echo "== fuzz corpus as regression tests (every seed and past crash, ASan + UBSan)"
make -s -C fuzz regress

echo "== META.json against the PGXN meta spec"
python3 test/pgxn_meta_check.py META.json
python3 test/pgxn_meta_check.py --self-test

echo "== test provider server self-test"
python3 test/provider_server_selftest.py

echo "== TAP tests"
status=0
work=$(mktemp -d /tmp/ctr_dist_tap.XXXXXX)
# the test modules put clusters and logs under $TESTDIR/tmp_check up to 15,
# and under $TESTDATADIR and $TESTLOGDIR from 16 on: the same place on all;
# the logs of the last run stay in tmp_check/log of the work tree
logdir=$work/tmp_check/log
keep_tap_logs() {
	keep_logs "$logdir" tap
	rm -rf "$top/tmp_check/log"
	mkdir -p "$top/tmp_check"
	cp -r "$logdir" "$top/tmp_check/log" 2>/dev/null || true
	rm -rf "$work"
}
trap keep_tap_logs EXIT
cp -r "$top/test" "$top/README.md" "$work/"	# 010_readme runs the README
chown -R postgres: "$work"
(cd "$work" && "${as_pg[@]}" env PATH="$bindir:$PATH" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" SOAK_SECONDS="${SOAK_SECONDS:-120}" \
	TESTDIR="$work" TESTDATADIR="$work/tmp_check" TESTLOGDIR="$logdir" \
	PG_REGRESS="$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" \
	CTR_DIST_TEST="$work/test" \
	prove -I "$perl_lib" -I "$work/test/t" ${PROVE_FLAGS:-} "$work"/test/t/*.pl) 2>&1 | tee "$work/prove.out" || status=$?
if [ "$status" != 0 ]; then
	# CI shows the end of the output: the failing tests' own logs (with the
	# failed checks and their diagnostics), the server logs' ends, and last
	# of all prove's summary, so the name of what failed is never cut off
	summary=$(sed -n '/^Test Summary Report/,$p' "$work/prove.out")
	for t in $(echo "$summary" | sed -n 's|^.*/test/t/\([0-9A-Za-z_]*\)\.pl .*|\1|p'); do
		echo "== server logs of $t (ends)" >&2
		for f in "$logdir/${t}_"*.log; do
			[ -f "$f" ] || continue
			echo "-- $f" >&2
			tail -n 25 "$f" >&2 2>/dev/null || true
		done
		echo "== failed checks of $t (tmp_check/log/regress_log_$t)" >&2
		grep -B2 -A12 'not ok\|# Looks like\|died' "$logdir/regress_log_$t" 2>/dev/null | tail -n 80 >&2 || true
	done
	echo "== TAP failed; logs kept in tmp_check/log" >&2
	echo "$summary" >&2
	for t in $(echo "$summary" | sed -n 's|^.*/test/t/\([0-9A-Za-z_]*\)\.pl .*|\1|p'); do
		grep -h 'not ok' "$logdir/regress_log_$t" 2>/dev/null | sed 's/^\[[^]]*\]([^)]*) //' | head -n 5 | sed "s|^|$t: |" >&2 || true
	done
	exit "$status"
fi
