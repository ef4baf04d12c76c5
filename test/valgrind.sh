#!/usr/bin/env bash
# make valgrind: the pg_regress suite and the provider TAP test (HTTP,
# workers, every failure class) with every server process (backends and
# ctr_dist workers) under valgrind memcheck.  Fails if any error report
# has a ctr_dist frame in its stack.  PostgreSQL itself is not built with
# USE_VALGRIND here, so only errors valgrind sees without its memory-context
# client requests are found; errors with no ctr_dist frame are counted but
# do not fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
bindir=$($PG_CONFIG --bindir)
make -s && make -s install

work=$(mktemp -d /tmp/ctr_dist_valgrind.XXXXXX)
mkdir -p "$work/bin" "$work/logs"
for b in "$bindir"/*; do ln -s "$b" "$work/bin/$(basename "$b")"; done
# pg_ctl and initdb look for "postgres" next to themselves: copies of them
# find this wrapper, which runs the server under valgrind
rm "$work/bin/postgres" "$work/bin/pg_ctl" "$work/bin/initdb"
cp "$bindir/pg_ctl" "$bindir/initdb" "$work/bin/"
cat > "$work/bin/postgres" <<WRAP
#!/bin/sh
case "\$1" in -V|--version) exec $bindir/postgres "\$@" ;; esac
exec valgrind --quiet --trace-children=yes --leak-check=no --num-callers=30 \\
	--error-limit=no --log-file=$work/logs/vg.%p.log $bindir/postgres "\$@"
WRAP
chmod 755 "$work/bin/postgres"
chown -R postgres: "$work"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
	runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
runuser -u postgres -- "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 300 \
	-o "-p $port -k $work -c listen_addresses='' -c shared_preload_libraries=ctr_dist" start >/dev/null
status=0
make -s installcheck PGHOST="$work" PGPORT="$port" PGUSER=postgres || { status=1; cat regression.diffs || true; }
runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -m fast -t 300 stop >/dev/null
trap - EXIT

# the provider test: no timing assertions, so it can run at valgrind's pace
cp -r test "$work/"
chown -R postgres: "$work"
(cd "$work" && runuser -u postgres -- env PATH="$work/bin:$PATH" TESTDIR="$work" \
	PG_REGRESS="$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" CTR_DIST_TEST="$work/test" \
	prove -I "$($PG_CONFIG --pkglibdir)/pgxs/src/test/perl" -I "$work/test/t" "$work/test/t/002_providers.pl") || status=1

errors=$(grep -h -c "^==[0-9]*== [A-Z]" "$work"/logs/vg.*.log 2>/dev/null | paste -sd+ | bc || echo 0)
ours=0
for f in "$work"/logs/vg.*.log; do
	if grep -q "ctr_dist.so" "$f"; then
		echo "== valgrind report with ctr_dist frames: $f" >&2
		grep -B2 -A25 "ctr_dist.so" "$f" | head -80 >&2
		ours=$((ours + 1))
	fi
done
echo "valgrind: $(ls "$work"/logs | wc -l) process logs, $errors report lines in all, $ours logs with ctr_dist frames"
[ "$status" -eq 0 ] && [ "$ours" -eq 0 ]
