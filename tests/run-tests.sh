#!/usr/bin/env bash
# Run criterion test binaries and print one total line at the end:
#   tests: N passed, M failed, K skipped
#
# Binaries that measure nothing about CPU or timing run side by side first: every unit binary
# (tests/unit; their tests already run in parallel inside the binary) and the end-to-end binaries
# named in SIDE_BY_SIDE below. Then the other end-to-end binaries (tests/e2e) run one after
# another, their tests one at a time (-j1): they profile workloads for a CPU time, compare with
# perf or the workload's own count, and share the BPF perf events. Each binary's output is kept
# and printed whole, in the order the binaries were given. PROFD_TEST_JOBS (default: the number
# of CPUs + 1) caps how many side-by-side binaries run at once; PROFD_TEST_JOBS=1 runs
# everything one after another.
#
# A skipped test is not a pass: criterion leaves it out of "Passing", and this script counts the
# [SKIP] lines and fails the run when there are any (the machines we test on have root, BPF, perf
# and the cross tools), unless PROFD_TEST_ALLOW_SKIP=1 says a skip is expected there.
set -u

# End-to-end binaries that may run beside others: test-stack unwinds core files (profd stack
# --core against gdb on programs it builds and crashes in their own directories): no sampling,
# no CPU share or timing in what it asserts. An e2e binary goes here only after reading that
# none of its assertions depends on having a CPU to itself.
SIDE_BY_SIDE=" test-stack "
# The longest of them (about a minute each, twice that under ASan), started first so that they do
# not run alone at the end.
START_FIRST=" test-stack test-symbolize "

jobs=${PROFD_TEST_JOBS:-$(($(nproc 2>/dev/null || echo 1) + 1))}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
out_dir=$(mktemp -d "${TMPDIR:-/tmp}/profd-run-tests.XXXXXX") || exit 1
trap 'rm -rf "$out_dir"' EXIT

side_by_side() {
	case "$1" in
	*/unit/*) return 0 ;;
	*/e2e/*) [[ "$SIDE_BY_SIDE" == *" $(basename "$1") "* ]] ;;
	*) return 1 ;;
	esac
}

# run_one INDEX BINARY: the binary's output into $out_dir/INDEX.out, its exit status into .rc.
run_one() {
	local args=(--verbose=0)

	case "$2" in */e2e/*) args+=(-j1) ;; esac
	"$2" "${args[@]}" >"$out_dir/$1.out" 2>&1
	echo $? >"$out_dir/$1.rc"
}

bins=("$@")
first=() rest=()
for i in "${!bins[@]}"; do
	side_by_side "${bins[$i]}" || continue
	if [[ "$START_FIRST" == *" $(basename "${bins[$i]}") "* ]]; then
		first+=("$i")
	else
		rest+=("$i")
	fi
done
running=0
for i in "${first[@]}" "${rest[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$i" "${bins[$i]}" &
	running=$((running + 1))
done
wait

total_pass=0 total_fail=0 total_crash=0 total_skip=0 failed_bins=() skipped_bins=()
for i in "${!bins[@]}"; do
	bin=${bins[$i]}
	side_by_side "$bin" || run_one "$i" "$bin"
	echo "=== $(basename "$bin")"
	out=$(cat "$out_dir/$i.out")
	rc=$(cat "$out_dir/$i.rc")
	printf '%s\n' "$out"
	syn=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -1)
	if [ -z "$syn" ]; then
		echo "*** $(basename "$bin"): no criterion synthesis line (rc=$rc)"
		failed_bins+=("$(basename "$bin")")
		total_fail=$((total_fail + 1))
		continue
	fi
	p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$syn")
	f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$syn")
	c=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$syn")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_crash=$((total_crash + c))
	s=$(printf '%s\n' "$out" | grep -c '^\[SKIP\]')
	if [ "$s" -gt 0 ]; then
		total_skip=$((total_skip + s))
		skipped_bins+=("$(basename "$bin")")
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$c" -ne 0 ]; then
		failed_bins+=("$(basename "$bin")")
		if [ "$f" -eq 0 ] && [ "$c" -eq 0 ]; then
			# Every test passed, yet the binary failed: say how, so a log tells why.
			sig=""
			[ "$rc" -gt 128 ] && sig=" (signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
			echo "*** $(basename "$bin"): exit status $rc$sig after its tests passed"
		fi
	fi
done
echo
[ ${#failed_bins[@]} -gt 0 ] && echo "failed: ${failed_bins[*]}"
[ ${#skipped_bins[@]} -gt 0 ] && echo "skipped in: ${skipped_bins[*]}"
echo "tests: $total_pass passed, $((total_fail + total_crash)) failed, $total_skip skipped"
[ ${#failed_bins[@]} -eq 0 ] && [ "$total_pass" -gt 0 ] &&
	{ [ "$total_skip" -eq 0 ] || [ "${PROFD_TEST_ALLOW_SKIP:-0}" = 1 ]; }
