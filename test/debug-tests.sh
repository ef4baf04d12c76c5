#!/usr/bin/env bash
# make test-debug: the whole suite (test/run-tests.sh, as make test) plus
# test/debug/*.pl (abnormal ends with requests in flight, in one session)
# against an assert-enabled PostgreSQL 15 built from Debian's source package
# by test/pgbuild.sh (cached in /var/tmp/ctr-dist-pg, built on first use),
# then every server log of the run scanned by test/check-server-logs.sh:
# fails on any test failure and on any failed assertion, crash restart,
# memory context check or leak warning in a server log.
#
#   test/debug-tests.sh [VARIANT]   VARIANT of test/pgbuild.sh, default debug
#                                   (make sanitize runs it with asan)
# On failure the server logs stay in the /tmp/ctr_dist_logs.* directory it
# names.
set -euo pipefail
cd "$(dirname "$0")/.."

variant=${1:-debug}
prefix=$(bash test/pgbuild.sh "$variant" | tail -n 1)
pg_config=$prefix/bin/pg_config
case "$("$pg_config" --configure)" in
	*--enable-cassert*) ;;
	*) echo "debug-tests: $pg_config is not an --enable-cassert build" >&2; exit 1 ;;
esac
echo "== the suite against $("$pg_config" --version), $variant build in $prefix"

# objects built for another server must not be reused, nor these for it
make -s clean >/dev/null
trap 'make -s clean >/dev/null' EXIT
logs=$(mktemp -d /tmp/ctr_dist_logs.XXXXXX)
status=0
# test/debug/*.pl join the TAP tests: prove runs in the copy of test/, so
# they go by their path relative to it
extra=$(cd test/debug && ls *.pl | sed 's|^|test/debug/|' | tr '\n' ' ')
CTR_DIST_KEEP_LOGS=$logs PG_CONFIG=$pg_config PROVE_FLAGS="${PROVE_FLAGS:-} $extra" \
	bash test/run-tests.sh || status=$?

echo "== server logs"
bash test/check-server-logs.sh "$logs" || status=1
if [ "$status" -eq 0 ]; then
	rm -rf "$logs"
else
	echo "debug-tests: failed; the server logs are in $logs" >&2
fi
exit "$status"
