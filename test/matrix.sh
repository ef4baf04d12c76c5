#!/usr/bin/env bash
# make test-matrix: for each PostgreSQL major given (default: every one Debian
# has, 15 17 18 19), in a Debian chroot of the suite that has it
# (test/chroot.sh): install the dependencies, run the whole suite as
# `make test PG_MAJOR=NN` on a copy of this work tree, then build the Debian
# package and install it into a clean chroot (test/deb.sh).  Prints one line
# per major; non-zero if any major failed.  Run as root.
#
#   MATRIX_DEB=0        skip the package step
#   MATRIX_ENV="K=V .." passed to the suite (e.g. SOAK_SECONDS=30)
#   CTR_CHROOTS=DIR     where the chroots are kept (default /var/tmp/ctr-chroots)
# Logs: $CTR_CHROOTS/logs/pgNN-{setup,test,deb}.log
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. test/chroot.sh

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(15 17 18 19)
logs=$CTR_CHROOTS/logs
mkdir -p "$logs"
read -r -a suite_env <<< "${MATRIX_ENV:-}"

mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

# one major, in a background subshell of its own (run_forwarding) so that
# its EXIT trap unmounts its chroot whatever happens; the summary line goes
# to fd 3
run_major()
{
	local major=$1 t0 t1 t2 t3 rc result=ok deb=skipped disk
	t0=$(date +%s)
	chroot_pg "$major" "$top" > "$logs/pg$major-setup.log" 2>&1
	rc=$?
	t1=$(date +%s)
	if [ $rc -eq 2 ]; then
		echo "PostgreSQL $major  skipped: not in the Debian archive (see $logs/pg$major-setup.log)" >&3
		return 0
	elif [ $rc -ne 0 ]; then
		tail -n 30 "$logs/pg$major-setup.log" >&2
		echo "PostgreSQL $major  FAILED in set-up after $(mmss $((t1 - t0))) (see $logs/pg$major-setup.log)" >&3
		return 1
	fi
	copy_source "$top" "$CHROOT/build/ctr_dist"
	rm -rf "$CHROOT"/tmp/ctr_dist_*	# what an interrupted run left
	chroot_run "$CHROOT" env "${suite_env[@]}" bash -c \
		"cd /build/ctr_dist && make test PG_MAJOR=$major" > "$logs/pg$major-test.log" 2>&1
	rc=$?
	t2=$(date +%s)
	if [ $rc -ne 0 ]; then
		result=FAILED
		tail -n 80 "$logs/pg$major-test.log" >&2
	fi
	# the suite's own closing line, e.g. "Result: PASS" from prove
	local tap
	tap=$(grep -E '^(Files=|Result:)' "$logs/pg$major-test.log" | tr '\n' ' ')
	chroot_umount
	t3=$t2
	if [ "${MATRIX_DEB:-1}" != 0 ]; then
		if run_forwarding bash test/deb.sh "$major" > "$logs/pg$major-deb.log" 2>&1; then
			deb=ok
		else
			deb=FAILED
			result=FAILED
			tail -n 40 "$logs/pg$major-deb.log" >&2
		fi
		t3=$(date +%s)
	fi
	disk=$(du -sh --one-file-system "$CTR_CHROOTS/pg$major" | cut -f1)
	printf 'PostgreSQL %s  %-6s  set-up %s  suite %s  package %s %s  chroot %s  %s\n' \
		"$major" "$result" "$(mmss $((t1 - t0)))" "$(mmss $((t2 - t1)))" "$deb" \
		"$(mmss $((t3 - t2)))" "$disk" "$tap" >&3
	[ "$result" = ok ]
}

summary=$(mktemp)
status=0
for major in "${majors[@]}"; do
	echo "== PostgreSQL $major ($(chroot_suite "$major" || echo '?'))"
	run_forwarding run_major "$major" 3>> "$summary" || status=1
	tail -n 1 "$summary"
done
echo "== matrix"
cat "$summary"
echo "PostgreSQL 16: not tested, no reachable Debian archive has it (expected to work: 15 and 17 do)"
rm -f "$summary"
exit $status
