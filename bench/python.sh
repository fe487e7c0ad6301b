#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# python.sh: what reading CPython frames costs, printed as section 10 of BENCHMARKS.md.
#   - BPF run time per sample (kernel.bpf_stats_enabled) of `profd record -p` on a CPython 3.11
#     process, with the frame-chain walk and with --no-python, interleaved rounds, for a shallow
#     chain (7 Python frames) and a deep one (~100 frames by recursion);
#   - the same program on a process that is not Python (the walk's cost when there is none);
#   - userspace: time to read one new code object from the process (profd's own count).
#
# Usage: bench/python.sh [--smoke] [BUILD]   (root; BUILD defaults to build)
set -euo pipefail

smoke=0
build=build
for a in "$@"; do
	case $a in
	--smoke) smoke=1 ;;
	-h | --help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "python.sh: unknown option $a" >&2; exit 2 ;;
	*) build=$a ;;
	esac
done
PROFD=$build/profd
PY=/usr/bin/python3.11
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "python.sh: needs root" >&2; exit 1; }
[ -x "$PY" ] || { echo "python.sh: $PY missing (make deps)" >&2; exit 1; }
rounds=7
secs=4
[ $smoke = 1 ] && rounds=1 && secs=1

tmp=$(mktemp -d /tmp/profd-bench-py.XXXXXX)
pids=()
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sysctl -qw kernel.bpf_stats_enabled="$stats_old" || true
	rm -rf "$tmp"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1

cat >"$tmp/shallow.py" <<'PY'
import sys, time
def leaf(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
def key_fn(x): return leaf(3000) + x
def middle(): return sorted(range(40), key=key_fn)
def outer(): return middle()
def main():
    while True: outer()
main()
PY
cat >"$tmp/deep.py" <<'PY'
import sys
sys.setrecursionlimit(10000)
def rec(d):
    if d == 0:
        s = 0
        for i in range(20000):
            s += i
        return s
    return rec(d - 1)
while True: rec(100)
PY
cat >"$tmp/spin.sh" <<'SH'
while :; do :; done
SH

# One recording of target pid $1 with extra profd flags $2..: prints "ns_per_run runs".
one() {
	local target=$1 out=$tmp/o.pb.gz log=$tmp/log ppid st
	shift
	"$PROFD" record -q -p "$target" -F 999 -d "$secs" -o "$out" "$@" >"$log" 2>&1 &
	ppid=$!
	sleep $(awk -v s="$secs" 'BEGIN { print s - 0.3 }')
	st=$(bpf_prog_stats "$ppid")
	wait "$ppid"
	echo "$st" | awk '{ if ($2 > 0) printf "%.0f %d\n", $1 / $2, $2; else print "0 0" }'
}


declare -A res
for wl in shallow deep spin; do
	case $wl in
	spin) bash "$tmp/spin.sh" & ;;
	*) "$PY" "$tmp/$wl.py" & ;;
	esac
	pids+=($!)
	target=$!
	sleep 0.5
	for r in $(seq $rounds); do
		for mode in python no-python; do
			flags=()
			[ $mode = no-python ] && flags=(--no-python)
			read -r ns runs < <(one "$target" "${flags[@]}")
			res[$wl.$mode]+="$ns "
			echo "python.sh: $wl $mode round $r: $ns ns/run over $runs runs" >&2
		done
	done
	kill "$target"
	wait "$target" 2>/dev/null || true
done

# Userspace: code objects read per new Python process, and the time per read.
"$PY" "$tmp/shallow.py" &
pids+=($!)
target=$!
sleep 0.3
"$PROFD" record -p "$target" -F 999 -d "$secs" -o "$tmp/u.pb.gz" >"$tmp/u.log" 2>&1
kill "$target"
reads=$(grep -o '[0-9]* code objects read, [0-9.]* µs each' "$tmp/u.log" || echo "none")

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "## 10. Python frames: what the walk costs"
echo
echo "\`bench/python.sh\` ($(date -u +%Y-%m-%d), load average at the end: $load; $rounds interleaved"
echo "rounds of ${secs} s at 999 Hz, \`profd record -p\`, BPF run time per sample from"
echo "kernel.bpf_stats_enabled: median (min–max))."
echo
echo "| target | with Python frames | --no-python | difference |"
echo "|---|---|---|---|"
for wl in shallow deep spin; do
	w=$(echo ${res[$wl.python]} | tr ' ' '\n' | median)
	n=$(echo ${res[$wl.no-python]} | tr ' ' '\n' | median)
	ws=$(echo ${res[$wl.python]} | tr ' ' '\n' | spread)
	ns=$(echo ${res[$wl.no-python]} | tr ' ' '\n' | spread)
	case $wl in
	shallow) what="CPython 3.11, 7 Python frames" ;;
	deep) what="CPython 3.11, ~103 Python frames" ;;
	spin) what="not Python (bash loop)" ;;
	esac
	printf '| %s | %s ns (%s) | %s ns (%s) | %+d ns |\n' "$what" "$w" "$ws" "$n" "$ns" "$(awk -v a="$w" -v b="$n" 'BEGIN { printf "%d", a - b }')"
done
echo
echo "Userspace, a new CPython 3.11 process profiled for ${secs} s: $reads (qualified name, file"
echo "name, first line and location table, with process_vm_readv; once per code object and process)."
