#!/usr/bin/env bash
# Run the libFuzzer targets built by `make fuzz-build`, JOBS at a time, and print one line per
# target: runs, execs/s, corpus growth, crashes.
#
#   run.sh fuzz  FUZZ_DIR SECONDS JOBS TARGET...   fuzz each target SECONDS from its kept corpus
#                                                  (FUZZ_DIR/corpus/T, seeded from seeds and
#                                                  regressions); crash inputs go to
#                                                  FUZZ_DIR/artifacts/T/
#   run.sh smoke FUZZ_DIR SECONDS JOBS TARGET...   replay every seed and regression input, then
#                                                  fuzz SECONDS from a fresh copy of them
#
# Exit status: 0 when no target crashed, timed out, ran out of memory or leaked; 1 otherwise.
# A target whose binary is missing fails too. Extra libFuzzer flags: FUZZ_FLAGS in the
# environment.
set -u

mode=$1 dir=$2 seconds=$3 jobs=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
[ "$mode" = fuzz ] || [ "$mode" = smoke ] || { echo "run.sh: unknown mode $mode" >&2; exit 2; }
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

# Per-input limits: a hang or runaway allocation on one input is a bug (issue 7, invariants).
common_flags=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1)

run_one() {
	local t=$1 bin="$dir/fuzz-$1" log="$dir/logs/$1.$mode.log"
	local corpus art rc=0 replay=() extra=()

	if [ ! -x "$bin" ]; then
		echo "$t: no binary $bin" >"$log"
		return 1
	fi
	if [ "$mode" = smoke ]; then
		corpus="$dir/smoke/$t"
		art="$dir/smoke-artifacts/$t"
		rm -rf "$corpus" "$art"
	else
		corpus="$dir/corpus/$t"
		art="$dir/artifacts/$t"
	fi
	mkdir -p "$corpus" "$art"
	# Seeds and regression inputs join the corpus (never overwriting what fuzzing found).
	for src in "$dir/seeds/$t" "$here/regressions/$t"; do
		[ -d "$src" ] && find "$src" -maxdepth 1 -type f ! -name '.*' -exec cp -n -t "$corpus" {} +
	done
	: >"$log"
	# The config loader logs every error it finds to stderr by design: gigabytes per run.
	# libFuzzer keeps its own output and the sanitizer reports on a duplicate of stderr.
	case $t in config) extra=(-close_fd_mask=2) ;; esac
	if [ "$mode" = smoke ] && [ -d "$here/regressions/$t" ]; then
		# Inputs that once crashed, run one by one: each must pass.
		mapfile -t replay < <(find "$here/regressions/$t" -maxdepth 1 -type f ! -name '.*' | sort)
		if [ ${#replay[@]} -gt 0 ]; then
			"$bin" "${common_flags[@]}" "${extra[@]}" "${replay[@]}" >>"$log" 2>&1 || rc=1
		fi
	fi
	if [ $rc -eq 0 ]; then
		# shellcheck disable=SC2086
		"$bin" "${common_flags[@]}" "${extra[@]}" -max_total_time="$seconds" \
			-artifact_prefix="$art/" \
			${FUZZ_FLAGS:-} "$corpus" >>"$log" 2>&1 || rc=1
	fi
	return $rc
}

summarize() {
	local t=$1 log="$dir/logs/$1.$mode.log" status=$2
	local execs rate units crashes
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
	rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
	units=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
	crashes=$(find "$dir/$([ "$mode" = smoke ] && echo smoke-artifacts || echo artifacts)/$t" \
		-maxdepth 1 -type f 2>/dev/null | wc -l)
	printf '  %-12s %12s execs %8s/s  +%s units  %s artifacts  %s\n' "$t" "${execs:-?}" \
		"${rate:-?}" "${units:-?}" "$crashes" "$([ "$status" -eq 0 ] && echo ok || echo "FAILED (see $log)")"
}

mkdir -p "$dir/logs"
echo "fuzz ($mode): ${seconds}s per target, $jobs at a time: $*"
declare -A pid_of status_of
running=()
for t in "$@"; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n 2>/dev/null
		still=()
		for r in "${running[@]}"; do
			if kill -0 "${pid_of[$r]}" 2>/dev/null; then still+=("$r"); fi
		done
		running=("${still[@]}")
	done
	run_one "$t" &
	pid_of[$t]=$!
	running+=("$t")
done
failed=()
for t in "$@"; do
	wait "${pid_of[$t]}"
	status_of[$t]=$?
	summarize "$t" "${status_of[$t]}"
	[ "${status_of[$t]}" -eq 0 ] || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz ($mode): FAILED: ${failed[*]}"
	for t in "${failed[@]}"; do
		echo "--- $t"
		grep -E -A30 '^==[0-9]+==ERROR|contract broken|runtime error|deadly signal|ALARM|out-of-memory' \
			"$dir/logs/$t.$mode.log" | head -40
	done
	exit 1
fi
echo "fuzz ($mode): no crashes"
