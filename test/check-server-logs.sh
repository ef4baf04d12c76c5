#!/usr/bin/env bash
# test/check-server-logs.sh FILE|DIR...: fail if any PostgreSQL server log
# among them (a directory is searched for *.log, TAP's regress_log_* test
# output excepted) shows what must never happen, even in a run whose tests
# all passed:
#   - a failed assertion (TRAP: ...) of an --enable-cassert build
#   - a server process killed by a signal, a crash restart, a PANIC
#   - a memory-context check (MEMORY_CONTEXT_CHECKING) or a resource leak
#     warning from the end of a transaction
#   - a sanitizer report written to stderr
# Prints every match with its file and the lines before it.
set -euo pipefail

pattern='TRAP: |terminated by signal|terminated by exception|terminating any other active server processes|all server processes terminated|PANIC:|WARNING: +problem in alloc set|WARNING: +.*(leak|still referenced|still active)|ERROR: AddressSanitizer|runtime error: '

files=()
for a in "$@"; do
	if [ -d "$a" ]; then
		while IFS= read -r -d '' f; do files+=("$f"); done \
			< <(find "$a" -type f -name '*.log' ! -name 'regress_log_*' -print0)
	elif [ -f "$a" ]; then
		files+=("$a")
	fi
done
if [ "${#files[@]}" -eq 0 ]; then
	echo "check-server-logs: no server log in $*: nothing was checked" >&2
	exit 1
fi

bad=0
for f in "${files[@]}"; do
	if grep -Eq "$pattern" "$f"; then
		echo "== $f" >&2
		grep -E -B3 -A12 "$pattern" "$f" | head -80 >&2
		bad=$((bad + 1))
	fi
done
echo "check-server-logs: ${#files[@]} server logs, $bad with an assertion failure, crash or memory error"
[ "$bad" -eq 0 ]
