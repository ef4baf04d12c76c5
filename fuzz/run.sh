#!/usr/bin/env bash
# fuzz/run.sh: run the built harnesses (the Makefile calls this).
#
#   run.sh fuzz HARNESS...     fuzz each for $FUZZ_SECONDS (default 60) with
#                              -timeout=$FUZZ_TIMEOUT (5) and
#                              -rss_limit_mb=$FUZZ_RSS_MB (2048); seeds come from
#                              corpus/H, new inputs go to work/H, crash, timeout,
#                              leak and OOM inputs to crashes/H/; the log is
#                              logs/H.log.  Prints executions and exec/s per
#                              harness; non-zero if any harness failed.
#   run.sh regress HARNESS...  every file in corpus/H once through bin/H;
#                              non-zero on any crash, hang or sanitizer report.
#   run.sh crashes HARNESS...  the same for the reproducers in crashes/H/.
#
# Extra libFuzzer flags for fuzz mode: FUZZ_FLAGS (e.g. -jobs=2 -workers=2).
set -u
cd "$(dirname "$0")"

mode=${1:?usage: run.sh fuzz|regress|crashes HARNESS...}
shift
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-5}
rss=${FUZZ_RSS_MB:-2048}
mkdir -p logs

# inputs longer than the default 4096 bytes: Gemini's answer buffer is 9 KB
max_len() {
	case "$1" in
		fuzz_gemini) echo 12288 ;;
		fuzz_openai|fuzz_deepseek|fuzz_mock) echo 8192 ;;
		*) echo 4096 ;;
	esac
}

passed=0
failed=0
for h in "$@"; do
	bin=bin/$h
	if [ ! -x "$bin" ]; then
		echo "$h: $bin is not built (make -C fuzz)" >&2
		failed=$((failed + 1))
		continue
	fi
	dict=()
	[ -f "dict/$h.dict" ] && dict=(-dict="dict/$h.dict")
	case "$mode" in
	fuzz)
		mkdir -p "work/$h" "crashes/$h"
		log=logs/$h.log
		# shellcheck disable=SC2086
		"$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" \
			-max_len="$(max_len "$h")" "${dict[@]}" -print_final_stats=1 \
			-artifact_prefix="crashes/$h/" ${FUZZ_FLAGS:-} "work/$h" "corpus/$h" >"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
		if [ "$rc" -eq 0 ]; then
			result=ok
			passed=$((passed + 1))
		else
			result="FAILED (exit $rc): $(grep -m1 -E '^==[0-9]+==ERROR|^\*\*\* invariant|runtime error|^==[0-9]+== ERROR: libFuzzer' "$log")"
			failed=$((failed + 1))
		fi
		printf '%-17s %5ss %12s execs %8s exec/s  cov %6s  %s\n' \
			"$h" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
		;;
	regress|crashes)
		if [ "$mode" = regress ]; then dir=corpus/$h; else dir=crashes/$h; fi
		files=()
		if [ -d "$dir" ]; then
			while IFS= read -r -d '' f; do files+=("$f"); done \
				< <(find "$dir" -maxdepth 1 -type f ! -name '*.md' ! -name '.*' -print0 | sort -z)
		fi
		if [ "${#files[@]}" -eq 0 ]; then
			[ "$mode" = regress ] && { echo "$h: no corpus in $dir" >&2; failed=$((failed + 1)); }
			continue
		fi
		log=logs/$mode-$h.log
		if "$bin" -timeout="$timeout" -rss_limit_mb="$rss" "${files[@]}" >"$log" 2>&1; then
			printf '%-17s ok      %4d inputs\n' "$h" "${#files[@]}"
			passed=$((passed + 1))
		else
			printf '%-17s FAILED  (log: fuzz/%s)\n' "$h" "$log"
			grep -E '^Running: |ERROR|invariant|runtime error|SUMMARY' "$log" | tail -n 6 | sed 's/^/    /'
			failed=$((failed + 1))
		fi
		;;
	*)
		echo "run.sh: unknown mode $mode" >&2
		exit 2
		;;
	esac
done
echo "$mode: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
