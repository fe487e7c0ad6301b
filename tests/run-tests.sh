#!/usr/bin/env bash
# Run criterion test binaries one after another and print one total line at the end.
# End-to-end binaries (tests/e2e) run their tests one at a time (-j1): they share the CPUs
# and the BPF perf events.
#
# A skipped test is not a pass: criterion leaves it out of "Passing", and this script counts the
# [SKIP] lines and fails the run when there are any (the machines we test on have root, BPF, perf
# and the cross tools), unless PROFD_TEST_ALLOW_SKIP=1 says a skip is expected there.
set -u
total_pass=0 total_fail=0 total_crash=0 total_skip=0 failed_bins=() skipped_bins=()
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
