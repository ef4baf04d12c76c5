#!/usr/bin/env bash
# make sanitize: build ctr_dist with UndefinedBehaviorSanitizer (every check,
# no recovery: the first report aborts the process), install it, run the
# whole suite (pg_regress, TAP, a 30 s soak), then put the normal build back.
# Fails on any test failure and on any UBSan report.
#
# AddressSanitizer is not used in the server: with the ASan runtime
# preloaded, PostgreSQL 15's postmaster deadlocks in its start-up path
# (futex wait right after getcwd/chdir in "postgres -V"), gcc's and clang's
# runtimes alike.  Memory errors in the code that reads untrusted bytes are
# covered by the ASan+UBSan libFuzzer harnesses (make fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
reports=$(mktemp -d /tmp/ctr_dist_ubsan.XXXXXX)
chmod 777 "$reports"
restore() {
	make -s clean >/dev/null
	make -s >/dev/null && make -s install >/dev/null
}
trap restore EXIT

make -s clean >/dev/null
make -s PG_CFLAGS="-fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g" \
	SHLIB_LINK="-lcurl -lcjson -lm -fsanitize=undefined"
make -s install

# the server inherits this from the test scripts' environment
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
status=0
SOAK_SECONDS=${SOAK_SECONDS:-30} bash test/run-tests.sh || status=$?

n=$(ls "$reports" | wc -l)
for f in "$reports"/*; do
	[ -e "$f" ] || continue
	echo "== UBSan report: $f" >&2
	head -40 "$f" >&2
done
echo "UBSan: $n reports"
[ "$status" -eq 0 ] && [ "$n" -eq 0 ]
