#!/usr/bin/env bash
# make valgrind: pg_regress, the provider TAP test (HTTP, workers, every
# failure class) and test/debug/abnormal_ends.pl (cancels and timeouts with
# requests in flight) with every server process (backends and ctr_dist
# workers) under valgrind memcheck, on PostgreSQL 15 built from Debian's
# source with USE_VALGRIND and assertions (test/pgbuild.sh valgrind, cached
# in /var/tmp/ctr-dist-pg): palloc and pfree tell memcheck about every
# chunk, so reading freed or unallocated palloc'd memory is an error too.
# With PostgreSQL's own suppressions (src/tools/valgrind.supp), fails on any
# test failure, any memcheck error in any server process, and any assertion
# failure or crash in a server log.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
prefix=$(bash test/pgbuild.sh valgrind | tail -n 1)
export PG_CONFIG=$prefix/bin/pg_config
bindir=$($PG_CONFIG --bindir)
supp=$($PG_CONFIG --sharedir)/valgrind.supp
make -s clean >/dev/null
trap 'make -s clean >/dev/null' EXIT
make -s && make -s install

work=$(mktemp -d /tmp/ctr_dist_valgrind.XXXXXX)
mkdir -p "$work/bin" "$work/logs" "$work/server-logs"
for b in "$bindir"/*; do ln -s "$b" "$work/bin/$(basename "$b")"; done
# pg_ctl and initdb look for "postgres" next to themselves: copies of them
# find this wrapper, which runs the server under valgrind (initdb's
# bootstrap and single-user runs are not what is tested: they run bare)
rm "$work/bin/postgres" "$work/bin/pg_ctl" "$work/bin/initdb"
cp "$bindir/pg_ctl" "$bindir/initdb" "$work/bin/"
# where they look for share/ and lib/, relative to themselves
ln -s "$prefix/share" "$work/share"
ln -s "$prefix/lib" "$work/lib"
cat > "$work/bin/postgres" <<WRAP
#!/bin/sh
case "\$1" in -V|--version|--boot|--single|-C) exec $bindir/postgres "\$@" ;; esac
exec valgrind --quiet --trace-children=yes --leak-check=no --num-callers=30 \\
	--suppressions=$supp --error-limit=no --log-file=$work/logs/vg.%p.log $bindir/postgres "\$@"
WRAP
chmod 755 "$work/bin/postgres"
chown -R postgres: "$work"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
	runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
}
trap 'cleanup; make -s clean >/dev/null' EXIT
runuser -u postgres -- "$work/bin/initdb" -D "$work/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -l "$work/server-logs/pg_regress.log" -w -t 300 \
	-o "-p $port -k $work -c listen_addresses='' -c shared_preload_libraries=ctr_dist" start >/dev/null
status=0
make -s installcheck PGHOST="$work" PGPORT="$port" PGUSER=postgres || { status=1; cat regression.diffs || true; }
runuser -u postgres -- "$work/bin/pg_ctl" -D "$work/data" -m fast -t 300 stop >/dev/null
trap 'make -s clean >/dev/null' EXIT

# TAP tests without timing assertions, so they can run at valgrind's pace
cp -r test "$work/"
chown -R postgres: "$work"
(cd "$work" && runuser -u postgres -- env PATH="$work/bin:$PATH" TESTDIR="$work" \
	PG_REGRESS="$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" CTR_DIST_TEST="$work/test" \
	prove -I "$($PG_CONFIG --pkglibdir)/pgxs/src/test/perl" -I "$work/test/t" \
	"$work/test/t/002_providers.pl" "$work/test/debug/abnormal_ends.pl") || status=1
cp -r "$work/tmp_check/log" "$work/server-logs/tap" 2>/dev/null || true

bad=0
for f in "$work"/logs/vg.*.log; do
	[ -s "$f" ] || continue
	echo "== valgrind report: $f" >&2
	head -60 "$f" >&2
	bad=$((bad + 1))
done
echo "valgrind: $(ls "$work"/logs | wc -l) server processes, $bad with memcheck errors"
bash test/check-server-logs.sh "$work/server-logs" || status=1
if [ "$status" -eq 0 ] && [ "$bad" -eq 0 ]; then
	rm -rf "$work"
else
	echo "valgrind: failed; logs in $work" >&2
	exit 1
fi
