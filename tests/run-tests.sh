#!/usr/bin/env bash
# Run criterion test binaries one after another and print one total line at the end.
# End-to-end binaries (tests/e2e) run their tests one at a time (-j1): they share the CPUs
# and the BPF perf events.
set -u
total_pass=0 total_fail=0 total_crash=0 failed_bins=()
for bin in "$@"; do
	args=(--verbose=0)
	case "$bin" in */e2e/*) args+=(-j1) ;; esac
	echo "=== $(basename "$bin")"
	out=$("$bin" "${args[@]}" 2>&1)
	rc=$?
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
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$c" -ne 0 ]; then
		failed_bins+=("$(basename "$bin")")
	fi
done
echo
[ ${#failed_bins[@]} -gt 0 ] && echo "failed: ${failed_bins[*]}"
echo "tests: $total_pass passed, $((total_fail + total_crash)) failed"
[ ${#failed_bins[@]} -eq 0 ] && [ "$total_pass" -gt 0 ]
