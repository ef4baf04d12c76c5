#!/usr/bin/env bash
# make test: install what is missing, build and install the extension, then
# run the whole suite on throwaway clusters (nothing is left running):
#   1. pg_regress (sql/, expected/) on a pg_virtualenv cluster with
#      shared_preload_libraries = 'ctr_dist'
#   2. the test provider server's self-test
#   3. the TAP tests (test/t/*.pl) with PostgreSQL::Test::Cluster, run as
#      the postgres user because PostgreSQL refuses to run as root
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash test/install-deps.sh
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG
bindir=$($PG_CONFIG --bindir)
perl_lib=$($PG_CONFIG --pkglibdir)/pgxs/src/test/perl

make -s
make -s install

echo "== pg_regress"
if ! pg_virtualenv -o shared_preload_libraries=ctr_dist make -s installcheck; then
	cat regression.diffs 2>/dev/null || true
	echo "pg_regress failed" >&2
	exit 1
fi

echo "== test provider server self-test"
python3 test/provider_server_selftest.py

echo "== TAP tests"
work=$(mktemp -d /tmp/ctr_dist_tap.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$top/test" "$work/"
chown -R postgres: "$work"
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); else as_pg=(); fi
(cd "$work" && "${as_pg[@]}" env PATH="$bindir:$PATH" TESTDIR="$work" PG_REGRESS="$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" \
	CTR_DIST_TEST="$work/test" \
	prove -I "$perl_lib" -I "$work/test/t" ${PROVE_FLAGS:-} "$work"/test/t/*.pl) || {
	status=$?
	echo "TAP logs:" >&2
	tail -n 60 "$work"/tmp_check/log/*.log >&2 2>/dev/null || true
	exit $status
}
