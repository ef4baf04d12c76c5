#!/usr/bin/env bash
# make sanitize: the whole suite (as make test-debug: test/run-tests.sh plus
# test/debug/*.pl, a 30 s soak) against PostgreSQL 15 built from Debian's
# source with AddressSanitizer, UndefinedBehaviorSanitizer (every check, no
# recovery) and assertions: test/pgbuild.sh asan, cached in
# /var/tmp/ctr-dist-pg.  The whole server is instrumented, and ctr_dist is
# built with the same flags (PGXS takes them from that build's pg_config),
# so a use after free, a double free or an overflow of palloc'd or malloc'd
# memory anywhere in a backend or a ctr_dist worker is reported and aborts
# the process.  Fails on any test failure, any sanitizer report and any
# assertion failure or crash in a server log.
set -euo pipefail
cd "$(dirname "$0")/.."

reports=$(mktemp -d /tmp/ctr_dist_sanitize.XXXXXX)
chmod 777 "$reports"
# every process of the suite inherits these: the servers, psql, pg_ctl,
# initdb.  No leak detection: PostgreSQL frees by memory context or at exit.
# ASan reports go to $reports; UBSan's go to stderr whatever log_path says
# (gcc 12, both runtimes in one process), so for a server they are in its
# log, where check-server-logs.sh finds "runtime error:" and the restart.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:print_stacktrace=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
SOAK_SECONDS=${SOAK_SECONDS:-30} bash test/debug-tests.sh asan || status=$?

n=0
for f in "$reports"/*; do
	[ -e "$f" ] || continue
	echo "== sanitizer report: $f" >&2
	head -60 "$f" >&2
	n=$((n + 1))
done
echo "sanitize: $n sanitizer reports"
[ "$n" -eq 0 ] && rm -rf "$reports"
[ "$status" -eq 0 ] && [ "$n" -eq 0 ]
