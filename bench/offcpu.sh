#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# offcpu.sh: what --off-cpu costs, printed as section 11 of BENCHMARKS.md. A switch-heavy
# workload (two threads passing a byte over pipes, pinned to one CPU: every round trip is two
# blocking reads and two context switches) runs alone, under `profd record -- CMD` without and with
# --off-cpu (default threshold 1 ms: these waits are µs long, so this is the cost of watching
# every switch; and --off-cpu-min 0: every wait recorded, up to the budget), and under
# `perf record -e sched:sched_switch -g` (perf's way of seeing where threads switch out).
# Interleaved rounds; medians and min–max of round trips per second.
#
# Usage: bench/offcpu.sh [--smoke] [BUILD]   (root; BUILD defaults to build)
set -euo pipefail

smoke=0
build=build
for a in "$@"; do
	case $a in
	--smoke) smoke=1 ;;
	-h | --help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "offcpu.sh: unknown option $a" >&2; exit 2 ;;
	*) build=$a ;;
	esac
done
PROFD=$build/profd
WL=$build/workloads/pingpong
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "offcpu.sh: needs root" >&2; exit 1; }
[ -x "$WL" ] || { echo "offcpu.sh: $WL missing (make test-bins)" >&2; exit 1; }
command -v perf >/dev/null || { echo "offcpu.sh: perf missing (make deps)" >&2; exit 1; }
rounds=5
secs=3
[ $smoke = 1 ] && rounds=1 && secs=1
tmp=$(mktemp -d /tmp/profd-bench-off.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# One run of the workload under config $1 (the profiler starts it: it watches the whole run):
# prints round trips per second.
run() {
	local cfg=$1 out=$tmp/wl.out rate
	local wl=(taskset -c 0 "$WL" "$secs")
	case $cfg in
	alone) "${wl[@]}" >"$out" ;;
	profd) "$PROFD" record -q -F 99 -o "$tmp/p.pb.gz" -- "${wl[@]}" >"$out" 2>/dev/null ;;
	profd-offcpu) "$PROFD" record -q -F 99 --off-cpu -o "$tmp/p.pb.gz" -- "${wl[@]}" >"$out" 2>/dev/null ;;
	profd-offcpu-all) "$PROFD" record -q -F 99 --off-cpu --off-cpu-min 0 -o "$tmp/p.pb.gz" -- "${wl[@]}" >"$out" 2>/dev/null ;;
	perf-switch) perf record -q -e sched:sched_switch -g -o "$tmp/perf.data" -- "${wl[@]}" >"$out" 2>/dev/null ;;
	esac
	rate=$(awk '/ROUNDTRIPS_PER_S/ { print $2 }' "$out")
	echo "${rate:-0}"
}


cfgs=(alone profd profd-offcpu profd-offcpu-all perf-switch)
declare -A res
for r in $(seq $rounds); do
	for c in "${cfgs[@]}"; do
		v=$(run "$c")
		res[$c]+="$v "
		echo "offcpu.sh: round $r $c: $v round trips/s" >&2
	done
done

# Whole host at 99 Hz with --off-cpu: profd's own CPU time plus the run time of all its BPF
# programs (kernel.bpf_stats_enabled), over the elapsed time of both CPUs, while the ping-pong
# (unpinned) and a CPU-bound loop run.
host_secs=10
[ $smoke = 1 ] && host_secs=2
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
"$WL" $((host_secs + 3)) >/dev/null &
pp=$!
bash -c 'while :; do :; done' &
spin=$!
"$PROFD" record -q -a -F 99 --off-cpu -d "$host_secs" -o "$tmp/a.pb.gz" >"$tmp/host.log" 2>&1 &
prof=$!
sleep $(awk -v s="$host_secs" 'BEGIN { print s - 0.5 }')
cpu_ticks=$(awk '{ print $14 + $15 }' /proc/$prof/stat 2>/dev/null) || {
	kill $spin $pp 2>/dev/null || true
	echo "offcpu.sh: profd -a ended early: $(cat "$tmp/host.log")" >&2
	exit 1
}
bpf_ns=$(bpf_all_ns $prof)
wait $prof || true
kill $spin $pp 2>/dev/null || true
wait $spin $pp 2>/dev/null || true
sysctl -qw kernel.bpf_stats_enabled="$stats_old"
host_share=$(awk -v b="$bpf_ns" -v t="$cpu_ticks" -v hz="$(getconf CLK_TCK)" -v s="$host_secs" \
	-v n="$(nproc)" 'BEGIN { printf "%.2f%% (profd %.2f%%, BPF %.2f%%)", (t / hz + b / 1e9) / (s * n) * 100, t / hz / (s * n) * 100, b / 1e9 / (s * n) * 100 }')

load=$(cut -d' ' -f1-3 /proc/loadavg)
base=$(echo ${res[alone]} | tr ' ' '\n' | median)
echo "## 11. Off-CPU: what watching every context switch costs"
echo
echo "\`bench/offcpu.sh\` ($(date -u +%Y-%m-%d), load average at the end: $load; $rounds interleaved"
echo "rounds of ${secs} s; two threads ping-ponging a byte over pipes on one CPU: each round trip is"
echo "two blocking reads and two context switches, a wait of a few µs each)."
echo
echo "| configuration | round trips/s, median (min–max) | slower than alone | cost per context switch |"
echo "|---|---|---|---|"
for c in "${cfgs[@]}"; do
	m=$(echo ${res[$c]} | tr ' ' '\n' | median)
	s=$(echo ${res[$c]} | tr ' ' '\n' | spread)
	case $c in
	alone) what="alone" ;;
	profd) what="\`profd record\` (99 Hz, no --off-cpu)" ;;
	profd-offcpu) what="\`profd record --off-cpu\` (threshold 1 ms: no wait recorded)" ;;
	profd-offcpu-all) what="\`profd record --off-cpu --off-cpu-min 0\` (every wait, budget 2000/s/CPU)" ;;
	perf-switch) what="\`perf record -e sched:sched_switch -g\`" ;;
	esac
	awk -v w="$what" -v m="$m" -v s="$s" -v b="$base" 'BEGIN {
		slow = (b > 0 && m > 0) ? (b / m - 1) * 100 : 0
		per = (b > 0 && m > 0) ? (1 / m - 1 / b) * 1e9 / 2 : 0
		printf "| %s | %.0f (%s) | %+.1f%% | %s |\n", w, m, s, slow, (w == "alone") ? "—" : sprintf("%.0f ns", per)
	}'
done
echo
echo "Whole host, \`profd record -a -F 99 --off-cpu\` for ${host_secs} s while the ping-pong (unpinned) and"
echo "a CPU-bound loop run: $host_share of the host ($(nproc) CPUs), profd's CPU time plus its BPF"
echo "programs' run time (sampling and off-CPU)."

