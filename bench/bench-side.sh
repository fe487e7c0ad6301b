#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-side.sh: profd measured side by side with Linux perf on this machine, in one run, printed
# as markdown sections 4–8 and 12 of BENCHMARKS.md (bench-unwind prints 1–3; `make bench` runs both):
#
#   4. offline conversion of one perf.data: `profd convert` vs `perf script` vs `perf report`;
#   5. target slowdown: a pinned CPU-bound benchmark alone, under profd and under perf record;
#   6. whole-host cost of `profd record -a`: CPU, peak RSS, BPF run time per sample, lost samples;
#   7. output size: pprof vs perf.data for the same samples;
#   8. complete stacks per workload, profd vs perf's DWARF unwinding, one criterion for both;
#  12. what each sample costs the sampled task, measured from inside it (tests/workloads/gaps.c).
#
# Usage: bench/bench-side.sh [--smoke] [--only=4,5,...] [BUILD]   (BUILD defaults to build)
# Needs root (BPF), perf, /usr/bin/time, taskset and the binaries `make bench` builds in BUILD.
# --smoke: tiny durations, one repetition, to check that the script still runs (about 10 s; the
# figures mean nothing). Markdown goes to stdout, progress to stderr. Numbers are what they are:
# nothing here is tuned to meet the goals printed beside them.
set -euo pipefail

smoke=0
only=""
build=build
for a in "$@"; do
	case $a in
	--smoke) smoke=1 ;;
	--only=*) only=${a#--only=} ;;
	-h | --help)
		sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "bench-side: unknown option $a (try --help)" >&2
		exit 2
		;;
	*) build=$a ;;
	esac
done

PROFD=$build/profd
PPROF=$build/pprof
. "$(dirname "$0")/lib.sh"
WL=$build/workloads
TIME=/usr/bin/time
E2E_WORKLOADS=(cxx_nofp libc_heavy signal_spin threads chain inline_heavy)

die() {
	echo "bench-side: $*" >&2
	exit 1
}
t_start=$EPOCHREALTIME
# Progress on stderr (not in --smoke, which runs inside `make test`).
note() {
	[ $smoke = 1 ] ||
		echo "bench-side [$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')]: $*" >&2
}

[ "$(id -u)" -eq 0 ] || die "needs root (profd loads BPF; perf reads every sample)"
command -v perf >/dev/null || die "perf not found (package linux-perf; make deps)"
command -v taskset >/dev/null || die "taskset not found (package util-linux)"
[ -x $TIME ] || die "$TIME not found (package time; make deps)"
for f in "$PROFD" "$PPROF" "$WL/throughput" "$WL/gaps" "${E2E_WORKLOADS[@]/#/$WL/}"; do
	[ -x "$f" ] || die "$f missing: make BUILD=$build bench builds it"
done
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || die "needs 2 CPUs (the target is pinned to one, the profiler to another)"

section_on() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# ---- scratch, background processes, the BPF stats switch: all undone on exit ----------------
mkdir -p "$build/bench"
tmp=$(mktemp -d "$build/bench/side.XXXXXX")
bpf_stats_old=""
host_time_pid=""
host_profd_pid=""
# Only this shell's own background jobs not yet waited for are signalled: their pids cannot have
# been reused. profd under /usr/bin/time is signalled itself only while its parent is that time.
cleanup() {
	local p
	if [ -n "$host_profd_pid" ] &&
		[ "$(awk '{ print $4 }' /proc/"$host_profd_pid"/stat 2>/dev/null)" = "$host_time_pid" ]; then
		kill "$host_profd_pid" 2>/dev/null || true
	fi
	for p in $(jobs -p); do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -n "$bpf_stats_old" ]; then
		sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_old" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- small helpers -----------------------------------------------------------------------------
# ev FORMAT EXPR: awk arithmetic on numbers this script produced.
ev() { awk "function max0(x) { return x > 0 ? x : 0 } BEGIN { printf \"$1\", ($2) }"; }
# stats VALUES...: "median min max".
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}
field() { echo "$1" | awk -v i="$2" '{ print $i }'; }
# paired "A1 A2 ..." "B1 B2 ...": "median min max" over rounds of (1 − Ai ÷ Bi) × 100, the slowdown
# of A against B in the same round (drift between rounds cancels).
paired() {
	local a=($1) b=($2) i d=()
	for i in "${!a[@]}"; do
		[ -n "${b[$i]:-}" ] && d+=("$(ev '%.4f' "(1 - ${a[$i]} / ${b[$i]}) * 100")")
	done
	stats "${d[@]}"
}
size_of() { stat -c %s "$1"; }
# "12.3 MB", "456 kB", "789 B"
fmt_bytes() {
	awk -v b="$1" 'BEGIN { if (b >= 1e6) printf "%.1f MB", b / 1e6;
		else if (b >= 1e3) printf "%.1f kB", b / 1e3; else printf "%d B", b }'
}
mark() { if [ "$1" = 1 ]; then echo met; else echo '**missed**'; fi; }

# Waits (≤ 60 s: a start-up on a loaded machine is slow, and this runs inside `make test`) for
# the first line of FILE (the workloads print their pid first); prints it.
first_line() {
	local i
	for i in $(seq 1200); do
		if [ -s "$1" ] && [ "$(wc -l <"$1")" -ge 1 ]; then
			head -1 "$1"
			return 0
		fi
		sleep 0.05
	done
	die "no pid line in $1"
}

# timed OUT CMD...: runs CMD (stdout to /dev/null), writes "wall_s cpu_s maxrss_kB" to OUT.
# Wall from bash's microsecond clock; CPU (user+sys) and peak RSS from the child's rusage.
timed() {
	local out=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	$TIME -f '%U %S %M' -o "$out.t" "$@" >/dev/null 2>"$out.err" ||
		die "failed: $* ($(tail -2 "$out.err" | tr '\n' ' '))"
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" '{ printf "%.6f %.2f %d\n", b - a, $1 + $2, $3 }' "$out.t" >"$out"
}

# perf record with DWARF call graphs, as every section runs it: cpu-clock (only software events
# on the machine this was written on), 32 KiB of user stack per sample (profd's default copy
# cap), no update of ~/.debug (profd convert searches it too).
perf_record() { perf record -q -N -e cpu-clock --call-graph dwarf,32768 "$@"; }

# ---- machine line -----------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# kconf OPTION: "1" set, "0" not set, "" when the kernel configuration cannot be read.
kconf() {
	local cfg
	if [ -r /proc/config.gz ]; then
		cfg=$(zcat /proc/config.gz)
	elif [ -r "/boot/config-$(uname -r)" ]; then
		cfg=$(cat "/boot/config-$(uname -r)")
	else
		return 0
	fi
	if grep -q "^$1=y" <<<"$cfg"; then echo 1; else echo 0; fi
}
irq_acct=$(kconf CONFIG_IRQ_TIME_ACCOUNTING)
cat <<EOF
## Side by side with perf (sections 4–8)

Generated by \`bench/bench-side.sh\`$([ $smoke = 1 ] && echo ' **in --smoke mode: figures are meaningless**') in the same run, after sections 1–3.

- perf: $(perf --version 2>/dev/null | sed 's/^perf version //'), \`perf record -e cpu-clock --call-graph dwarf,32768\` (only software events on this machine; 32 KiB of stack per sample like profd's default); profd: \`$PROFD\`
- $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $ncpu CPUs; Linux $(uname -r); load at start (/proc/loadavg): $(loadavg); date $(date -u '+%Y-%m-%d %H:%M UTC')
- Wall times: other work on the machine moves them; the load is printed again per section.

EOF

# ==== 4. offline conversion =====================================================================
conv_section() {
	local big_s=10 small_s=1 reps=3
	[ $smoke = 1 ] && big_s=0.1 && reps=1
	note "4: recording perf.data of cxx_nofp (${big_s} s at 999 Hz)"
	local load0
	load0=$(loadavg)
	perf_record -F 999 -o "$tmp/big.data" -- "$WL/cxx_nofp" "$big_s" >/dev/null 2>"$tmp/rec.err"
	local files=(big)
	if [ $smoke = 0 ]; then
		perf_record -F 999 -o "$tmp/small.data" -- "$WL/cxx_nofp" "$small_s" >/dev/null 2>>"$tmp/rec.err"
		files=(small big)
	fi

	local f tool rep
	declare -gA conv_n conv_lost conv_wall conv_cpu conv_rss
	for f in "${files[@]}"; do
		# Untimed first pass: page cache warm for every tool, and profd's count of the samples.
		"$PROFD" convert "$tmp/$f.data" -o "$tmp/$f.pb.gz" >"$tmp/$f.sum" 2>&1 ||
			die "profd convert $f.data: $(tail -3 "$tmp/$f.sum")"
		conv_n[$f]=$(sed -n 's/^ *samples *\([0-9]*\).*/\1/p' "$tmp/$f.sum" | head -1)
		conv_lost[$f]=$(sed -n 's/.*lost when recorded \([0-9]*\).*/\1/p' "$tmp/$f.sum" | head -1)
		[ $smoke = 1 ] || { perf script -i "$tmp/$f.data" >/dev/null 2>&1 &&
			perf report -i "$tmp/$f.data" --stdio >/dev/null 2>&1; } || die "perf script/report failed"
		for tool in profd script report; do
			conv_wall[$f.$tool]=1e9
			conv_cpu[$f.$tool]=1e9
		done
		note "4: converting $f.data (${conv_n[$f]} samples), $reps× each tool, interleaved"
		for rep in $(seq "$reps"); do
			timed "$tmp/t.profd" "$PROFD" convert -q "$tmp/$f.data" -o "$tmp/$f.pb.gz"
			timed "$tmp/t.script" perf script -i "$tmp/$f.data"
			timed "$tmp/t.report" perf report -i "$tmp/$f.data" --stdio
			for tool in profd script report; do
				read -r w c m <"$tmp/t.$tool"
				conv_wall[$f.$tool]=$(ev '%.6f' "$w < ${conv_wall[$f.$tool]} ? $w : ${conv_wall[$f.$tool]}")
				conv_cpu[$f.$tool]=$(ev '%.2f' "$c < ${conv_cpu[$f.$tool]} ? $c : ${conv_cpu[$f.$tool]}")
				conv_rss[$f.$tool]=$m
			done
		done
	done

	cat <<EOF
## 4. Offline conversion: profd convert vs perf script / perf report

One perf.data of \`cxx_nofp\` (-O2 C++ without frame pointers: std::sort, unordered_map, libstdc++, glibc), recorded with \`perf record -e cpu-clock --call-graph dwarf,32768 -F 999 -- cxx_nofp ${big_s}\`$([ $smoke = 0 ] && echo ", and a second one of ${small_s} s to separate fixed from per-sample cost"). Each tool reads the same file: \`profd convert FILE -o out.pb.gz\` (unwind + symbolize with inlines + pprof), \`perf script -i FILE > /dev/null\` and \`perf report -i FILE --stdio > /dev/null\` (perf's DWARF unwinding, symbols, inlines as perf does by default). Page cache warm (one untimed pass of each), then $reps rounds interleaved; best wall time and best CPU time (user+sys) of the $reps. Samples as \`profd convert\` counts them. Load at start: $load0.
Goal: profd ≥ 50× faster per sample than \`perf script\`.

| perf.data | samples | tool | wall (best of $reps) | CPU | peak RSS | µs/sample (wall) | perf ÷ profd (wall) |
|---|---:|---|---:|---:|---:|---:|---:|
EOF
	local name
	for f in "${files[@]}"; do
		for tool in profd script report; do
			case $tool in
			profd) name='`profd convert`' ;;
			script) name='`perf script`' ;;
			report) name='`perf report --stdio`' ;;
			esac
			local w=${conv_wall[$f.$tool]} wp=${conv_wall[$f.profd]} n=${conv_n[$f]}
			printf '| %s (%s) | %s | %s | %s s | %s s | %s MB | %s | %s |\n' \
				"$f" "$(fmt_bytes "$(size_of "$tmp/$f.data")")" "$n" "$name" "$(ev '%.3f' "$w")" \
				"${conv_cpu[$f.$tool]}" "$(ev '%.0f' "${conv_rss[$f.$tool]} / 1024")" \
				"$(ev '%.1f' "$w * 1e6 / ($n > 0 ? $n : 1)")" \
				"$([ $tool = profd ] && echo — || ev '%.1f×' "$w / $wp")"
		done
	done
	echo

	local verdict_total verdict_marg="" r_total
	r_total=$(ev '%.1f' "${conv_wall[big.script]} / ${conv_wall[big.profd]}")
	verdict_total=$(mark "$(ev '%d' "$r_total >= 50")")
	if [ $smoke = 0 ]; then
		local dn
		dn=$(ev '%d' "${conv_n[big]} - ${conv_n[small]}")
		echo "Fixed and per-sample cost from the two files (straight line through both best wall times: per sample = Δwall ÷ Δsamples over $dn extra samples, fixed = small-file wall − its samples × per sample):"
		echo
		echo "| tool | fixed | per sample | per sample, perf ÷ profd |"
		echo "|---|---:|---:|---:|"
		local ps_profd
		ps_profd=$(ev '%.4f' "(${conv_wall[big.profd]} - ${conv_wall[small.profd]}) * 1e6 / $dn")
		for tool in profd script report; do
			local ps fx
			ps=$(ev '%.4f' "(${conv_wall[big.$tool]} - ${conv_wall[small.$tool]}) * 1e6 / $dn")
			fx=$(ev '%.1f' "(${conv_wall[small.$tool]} - ${conv_n[small]} * $ps / 1e6) * 1e3")
			case $tool in
			profd) name='`profd convert`' ;;
			script) name='`perf script`' ;;
			report) name='`perf report --stdio`' ;;
			esac
			printf '| %s | %s ms | %s µs | %s |\n' "$name" "$fx" "$(ev '%.1f' "$ps")" \
				"$([ $tool = profd ] && echo — || ev '%.1f×' "$ps / ($ps_profd > 0 ? $ps_profd : 1e-9)")"
		done
		echo
		local r_marg
		r_marg=$(ev '%.1f' "(${conv_wall[big.script]} - ${conv_wall[small.script]}) / (${conv_wall[big.profd]} - ${conv_wall[small.profd]})")
		verdict_marg=" Per sample (fixed costs removed): $r_marg× — $(mark "$(ev '%d' "$r_marg >= 50")")."
	fi
	echo "- Goal ≥ 50× vs \`perf script\`: whole ${big_s} s file $r_total× — $verdict_total.$verdict_marg"
	echo "- Samples the kernel dropped while perf recorded (profd convert's count): big ${conv_lost[big]:-?}$([ $smoke = 0 ] && echo ", small ${conv_lost[small]:-?}")."
	echo "- profd convert's own account of the big file (untimed first pass): $(sed -n 's/^ *time *//p' "$tmp/big.sum" | head -1)."
	echo
}

# ==== 5. target slowdown ========================================================================
declare -gA tp_ups tp_upc tp_frac tp_size tp_samples tp_lost
declare -gA tp_copy tp_copy99
tp_configs=(alone floor-999 floorcpu-999 unrelated-999 unrelcpu-999 profd-99 profd-999 percpu-999 perf-99 perf-999)

# Waits until the profd started as job PID (taskset → timeout → profd), logging to LOG, says
# "profd: sampling": capture_start() has opened its perf events and attached the BPF program.
profd_wait_attached() {
	local i
	for i in $(seq 1200); do # ≤ 60 s, for a loaded machine
		kill -0 "$1" 2>/dev/null || return 1
		grep -q '^profd: sampling ' "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# One measurement: throughput pinned to CPU 1, the profiler (if any) pinned to CPU 0 and
# started as soon as the pid is known. The target works unmeasured until the profiler is
# attached (profd: its perf events open; perf: started with events disabled, enabled through its
# control fifo, ack received) and SETTLE s more, then gets SIGUSR1 and counts units for MEAS s;
# the profiler ends with the target.
# prof_measure CFG SETTLE WORKLOAD ARGS...: runs the workload pinned to CPU 1 (it prints its pid,
# waits for SIGUSR1, measures, prints a result line) under the profiler of CFG, pinned to CPU 0.
# The workload's output is in $tmp/tp.out, the profiler's in $tmp/tp.log.
prof_measure() {
	local cfg=$1 settle=$2 out=$tmp/tp.out pid prof="" f
	shift 2
	rm -f "$out" "$tmp/tp.pb.gz" "$tmp/tp.data" "$tmp/ctl" "$tmp/ack"
	taskset -c 1 "$@" >"$out" &
	local wpid=$!
	pid=$(first_line "$out")
	local other=""
	case $cfg in
	profd-* | unrelated-* | unrelcpu-* | percpu-* | oldprofd-*)
		f=${cfg#*-}
		# unrelated: profd profiles another (sleeping) process; the measured one is not a
		# target. percpu: profd with per-CPU events (as -a and the daemon), which interrupt
		# every task on every CPU and filter in the BPF program; unrelcpu: both.
		local who=$pid extra=()
		case ${cfg%%-*} in
		unrelated | unrelcpu)
			sleep 120 &
			other=$!
			who=$other
			;;
		esac
		case ${cfg%%-*} in
		percpu | unrelcpu) extra=(--per-cpu-events) ;;
		# As before issue 13: per-CPU events, copies to the stack's end, a 32 MiB ring.
		oldprofd) extra=(--per-cpu-events --stack-copy fixed --ring-buffer 33554432) ;;
		esac
		taskset -c 0 timeout 60 "$PROFD" record -p "$who" -F "$f" "${extra[@]}" \
			-o "$tmp/tp.pb.gz" >"$tmp/tp.log" 2>&1 &
		prof=$!
		profd_wait_attached "$prof" "$tmp/tp.log" ||
			die "$cfg did not attach: $(tail -3 "$tmp/tp.log" | tr '\n' ' ')"
		;;
	perf-* | floor-* | floorcpu-*)
		f=${cfg#*-}
		# floor: perf's bare per-task cpu-clock sampling, no call graph: the interrupt itself.
		# floorcpu: the same with a per-CPU event on the target's CPU (perf -a -C 1).
		local cg=(--call-graph dwarf,32768) tgt=(-p "$pid")
		case ${cfg%%-*} in
		floor) cg=() ;;
		floorcpu) cg=() tgt=(-a -C 1) ;;
		esac
		mkfifo "$tmp/ctl" "$tmp/ack"
		taskset -c 0 timeout 60 perf record -q -N -e cpu-clock "${cg[@]}" \
			-F "$f" "${tgt[@]}" -o "$tmp/tp.data" -D -1 --control "fifo:$tmp/ctl,$tmp/ack" \
			>"$tmp/tp.log" 2>&1 &
		prof=$!
		# Opened read-write: never blocks, and the command waits in the fifo until perf reads it.
		exec 7<>"$tmp/ctl" 8<>"$tmp/ack"
		echo enable >&7
		local ack=""
		read -r -t 30 ack <&8 || true
		exec 7>&- 8<&-
		[ "$ack" = ack ] || die "$cfg was not enabled: $(tail -3 "$tmp/tp.log" | tr '\n' ' ')"
		;;
	esac
	sleep "$settle"
	kill -USR1 "$pid"
	wait "$wpid" || die "$1 failed ($cfg)"
	if [ -n "$other" ]; then
		kill "$other"
		wait "$other" 2>/dev/null || true
	fi
	if [ -n "$prof" ]; then
		if [ "${cfg%%-*}" = floorcpu ]; then
			# perf -a does not end with the target: Ctrl-C it (timeout passes the signal on).
			kill -INT "$prof" 2>/dev/null || true
			wait "$prof" || true
		else
			wait "$prof" || die "$cfg failed: $(tail -3 "$tmp/tp.log" | tr '\n' ' ')"
		fi
	fi
}

tp_run() {
	local cfg=$1 meas=$2 settle=$3 out=$tmp/tp.out
	prof_measure "$cfg" "$settle" "$WL/throughput" "$meas" go
	local line
	line=$(sed -n 2p "$out")
	[[ $line == units* ]] || die "throughput printed no result ($cfg)"
	local ups frac
	ups=$(field "$line" 6)
	frac=$(field "$line" 8)
	tp_ups[$cfg]+="$ups "
	tp_frac[$cfg]+="$frac "
	tp_upc[$cfg]+="$(ev '%.1f' "$ups / ($frac > 0 ? $frac : 1)") "
	case $cfg in
	profd-* | percpu-*)
		tp_size[$cfg]+="$(size_of "$tmp/tp.pb.gz") "
		tp_samples[$cfg]+="$(sed -n 's/^ *samples *\([0-9]*\).*/\1/p' "$tmp/tp.log" | head -1) "
		tp_lost[$cfg]+="$(sed -n 's/^ *samples.*(lost \([0-9]*\)).*/\1/p' "$tmp/tp.log" | head -1) "
		tp_copy[$cfg]+="$(sed -n 's/^ *stack copy \([0-9]*\) bytes mean.*/\1/p' "$tmp/tp.log" | head -1) "
		tp_copy99[$cfg]+="$(sed -n 's/^ *stack copy [0-9]* bytes mean, \([0-9]*\) p99.*/\1/p' "$tmp/tp.log" | head -1) "
		;;
	perf-*)
		tp_size[$cfg]+="$(size_of "$tmp/tp.data") "
		tp_samples[$cfg]+="$(perf report --stats -i "$tmp/tp.data" 2>/dev/null |
			sed -n 's/^ *SAMPLE events: *\([0-9]*\).*/\1/p' | head -1) "
		;;
	esac
}

slow_section() {
	local reps=7 meas=3 settle=0.5 cfgs=("${tp_configs[@]}")
	[ $smoke = 1 ] && reps=1 meas=0.1 settle=0.05 cfgs=(alone floor-999 floorcpu-999 unrelated-999 unrelcpu-999 profd-999 percpu-999 perf-999)
	local load0 rep cfg
	load0=$(loadavg)
	for rep in $(seq "$reps"); do
		note "5: round $rep/$reps: ${cfgs[*]}"
		for cfg in "${cfgs[@]}"; do
			tp_run "$cfg" "$meas" "$settle"
		done
	done
	local acct_note
	if [ "$irq_acct" = 1 ]; then
		acct_note="this kernel has CONFIG_IRQ_TIME_ACCOUNTING, so interrupt time is *not* charged to the task and the per-CPU-second figure hides the in-interrupt part of the profiler's cost: trust the wall column"
	elif [ -z "$irq_acct" ]; then
		acct_note="the kernel configuration is unreadable here, so whether the sampling interrupt's time is charged to the task (it is without CONFIG_IRQ_TIME_ACCOUNTING) is unknown: trust the wall column"
	else
		acct_note="this kernel has no CONFIG_IRQ_TIME_ACCOUNTING, so time spent in the sampling interrupt and the BPF program is charged to the interrupted task: the per-CPU-second figure includes the profiler's in-target cost but not time taken by other processes on the target's CPU"
	fi
	cat <<EOF
## 5. Target slowdown

\`tests/workloads/throughput.c\`: single-threaded fixed-size units of work (a 12-deep call chain holding a few KiB of live stack, a 64-bit mixer over an L1-resident table), pinned with \`taskset -c 1\`. The profiler runs pinned to CPU 0 with \`-p PID\` and ends with the target: \`profd record -p PID -F F\` (per-task events, adaptive stack copy) or \`perf record -e cpu-clock --call-graph dwarf,32768 -F F -p PID -D -1 --control fifo:…\`. The target works unmeasured until the profiler is attached (profd: it printed "profd: sampling", i.e. its events are open and its BPF program attached; perf: events enabled through its control fifo and acknowledged) and ${settle} s more, then gets SIGUSR1 and counts units for ${meas} s of wall time; "alone" waits the same ${settle} s. $reps rounds, the configurations interleaved within each round. Load at start: $load0.
Rows besides alone, profd and perf: **floor** is \`perf record -e cpu-clock -F 999 -p PID\` without a call graph (per-task events like the others: the bare sampling interrupt, what any profiler pays); **unrelated** measures the same target while \`profd record -F 999 -p\` profiles another, sleeping process (the target is not profiled: with per-task events it should take no interrupt at all); **per-CPU** is \`profd record -F 999 -p PID --per-cpu-events\` (one event per CPU, as \`-a\` and the daemon use); **per-CPU floor** is \`perf record -e cpu-clock -F 999 -a -C 1\` without a call graph (a per-CPU event on the target's CPU only); **unrelated, per-CPU** is the unrelated row with \`--per-cpu-events\` (the interrupt and the BPF program's early return, nothing copied).
Throughput is reported per wall second (what a user sees; other load on CPU 1 shows up as spread) and per CPU second of the target ($acct_note). Slowdown = 1 − median ÷ median alone. Goals at 999 Hz: profd ≤ 2%; profd above the floor ≤ half of perf's above the floor; unrelated ≤ 0.3%.

| profiler | runs | units/s (wall), median | min–max | slowdown (wall) | units per CPU-s, median | min–max | slowdown (per CPU-s) | target on CPU | goal |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|
EOF
	local base_w base_c
	base_w=$(field "$(stats ${tp_ups[alone]})" 1)
	base_c=$(field "$(stats ${tp_upc[alone]})" 1)
	for cfg in "${cfgs[@]}"; do
		local sw sc sf name goal=—
		sw=$(stats ${tp_ups[$cfg]})
		sc=$(stats ${tp_upc[$cfg]})
		sf=$(stats ${tp_frac[$cfg]})
		case $cfg in
		alone) name=alone ;;
		profd-*) name="\`profd record\` ${cfg#profd-} Hz" ;;
		floor-*) name="floor: \`perf record\` ${cfg#floor-} Hz, no call graph" ;;
		floorcpu-*) name="per-CPU floor: \`perf record -a -C 1\` ${cfg#floorcpu-} Hz, no call graph" ;;
		unrelated-*) name="unrelated: \`profd record\` ${cfg#unrelated-} Hz of another process" ;;
		unrelcpu-*) name="unrelated, per-CPU: \`profd record --per-cpu-events\` ${cfg#unrelcpu-} Hz of another process" ;;
		percpu-*) name="\`profd record --per-cpu-events\` ${cfg#percpu-} Hz" ;;
		perf-*) name="\`perf record --call-graph dwarf\` ${cfg#perf-} Hz" ;;
		esac
		local dw dc
		dw=$(ev '%.2f' "(1 - $(field "$sw" 1) / $base_w) * 100")
		dc=$(ev '%.2f' "(1 - $(field "$sc" 1) / $base_c) * 100")
		if [ "$cfg" = profd-999 ]; then
			goal="≤ 2%: wall $(mark "$(ev '%d' "$dw <= 2")"), per CPU-s $(mark "$(ev '%d' "$dc <= 2")")"
		elif [ "$cfg" = unrelated-999 ]; then
			goal="≤ 0.3%: wall $(mark "$(ev '%d' "$dw <= 0.3")"), per CPU-s $(mark "$(ev '%d' "$dc <= 0.3")")"
		fi
		printf '| %s | %d | %s | %s–%s | %s | %s | %s–%s | %s | %s | %s |\n' "$name" \
			"$(echo ${tp_ups[$cfg]} | wc -w)" \
			"$(ev '%.0f' "$(field "$sw" 1)")" "$(ev '%.0f' "$(field "$sw" 2)")" \
			"$(ev '%.0f' "$(field "$sw" 3)")" "$([ "$cfg" = alone ] && echo — || echo "$dw%")" \
			"$(ev '%.0f' "$(field "$sc" 1)")" "$(ev '%.0f' "$(field "$sc" 2)")" \
			"$(ev '%.0f' "$(field "$sc" 3)")" "$([ "$cfg" = alone ] && echo — || echo "$dc%")" \
			"$(ev '%.0f%%' "$(field "$sf" 1) * 100")" "$goal"
	done
	echo
	# Above the floor, both measures: profd's extra cost against perf's.
	if [ -n "${tp_upc[floor-999]:-}" ] && [ -n "${tp_upc[profd-999]:-}" ] && [ -n "${tp_upc[perf-999]:-}" ]; then
		local fw fc pw pc qw qc
		fw=$(field "$(stats ${tp_ups[floor-999]})" 1)
		fc=$(field "$(stats ${tp_upc[floor-999]})" 1)
		pw=$(ev '%.2f' "(1 - $(field "$(stats ${tp_ups[profd-999]})" 1) / $fw) * 100")
		pc=$(ev '%.2f' "(1 - $(field "$(stats ${tp_upc[profd-999]})" 1) / $fc) * 100")
		qw=$(ev '%.2f' "(1 - $(field "$(stats ${tp_ups[perf-999]})" 1) / $fw) * 100")
		qc=$(ev '%.2f' "(1 - $(field "$(stats ${tp_upc[perf-999]})" 1) / $fc) * 100")
		echo "- Above the floor at 999 Hz (1 − median ÷ floor's median): profd wall $pw%, per CPU-s $pc%; perf dwarf wall $qw%, per CPU-s $qc%. Goal profd ≤ half of perf's: wall $(mark "$(ev '%d' "$pw <= $qw / 2")"), per CPU-s $(mark "$(ev '%d' "$pc <= $qc / 2")")."
		# The same, paired by round: each round's profiler run against that round's floor run.
		local ppw ppc pqw pqc
		ppw=$(paired "${tp_ups[profd-999]}" "${tp_ups[floor-999]}")
		ppc=$(paired "${tp_upc[profd-999]}" "${tp_upc[floor-999]}")
		pqw=$(paired "${tp_ups[perf-999]}" "${tp_ups[floor-999]}")
		pqc=$(paired "${tp_upc[perf-999]}" "${tp_upc[floor-999]}")
		pf() { printf '%.2f%% (%.2f to %.2f)' "$(field "$1" 1)" "$(field "$1" 2)" "$(field "$1" 3)"; }
		echo "- Above the floor, paired by round (median over rounds of 1 − run ÷ the same round's floor run; min to max): profd wall $(pf "$ppw"), per CPU-s $(pf "$ppc"); perf dwarf wall $(pf "$pqw"), per CPU-s $(pf "$pqc"). Goal profd ≤ half of perf's: wall $(mark "$(ev '%d' "$(field "$ppw" 1) <= $(field "$pqw" 1) / 2")"), per CPU-s $(mark "$(ev '%d' "$(field "$ppc" 1) <= $(field "$pqc" 1) / 2")")."
	fi
	local c
	for c in "${cfgs[@]}"; do
		case $c in
		profd-* | percpu-*)
			local n l
			n=$(echo ${tp_samples[$c]} | awk '{ for (i = 1; i <= NF; i++) s += $i; print s + 0 }')
			l=$(echo ${tp_lost[$c]} | awk '{ for (i = 1; i <= NF; i++) s += $i; print s + 0 }')
			echo "- $c: $n samples over the runs, $l lost ($(ev '%.3f' "$l * 100 / ($n + $l > 0 ? $n + $l : 1)")%); user stack bytes copied per sample, mean per run: ${tp_copy[$c]:-?}(p99 per run: ${tp_copy99[$c]:-?})."
			;;
		esac
	done
	echo "- Per-run figures (units/s wall): $(for c in "${cfgs[@]}"; do printf '%s: %s; ' "$c" "$(echo ${tp_ups[$c]} | awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? " " : ""), $i }')"; done | sed 's/; $//')."
	echo
}

# ==== 12. what a sample costs the sampled task, from the inside ====================================
declare -gA gp_stolen gp_gaps
gp_configs=(alone floor-999 floorcpu-999 unrelated-999 unrelcpu-999 profd-999 percpu-999 oldprofd-999 perf-999)

gap_section() {
	local reps=7 meas=2 settle=0.3 cfgs=("${gp_configs[@]}")
	[ $smoke = 1 ] && reps=1 meas=0.1 settle=0.05 cfgs=(alone floor-999 profd-999 oldprofd-999)
	local load0 rep cfg line
	load0=$(loadavg)
	for rep in $(seq "$reps"); do
		note "12: round $rep/$reps: ${cfgs[*]}"
		for cfg in "${cfgs[@]}"; do
			prof_measure "$cfg" "$settle" "$WL/gaps" "$meas" go
			line=$(sed -n 2p "$tmp/tp.out")
			[[ $line == gaps* ]] || die "gaps printed no result ($cfg)"
			gp_stolen[$cfg]+="$(field "$line" 6) "
			gp_gaps[$cfg]+="$(field "$line" 4) "
		done
	done
	cat <<EOF
## 12. What a sample costs the sampled task, from the inside

\`tests/workloads/gaps.c\`, pinned to CPU 1, spins reading CLOCK_MONOTONIC (vDSO) for ${meas} s and adds up every gap of 500 ns or more between two reads: time the task did not run (the interrupt with everything done in it: the hypervisor's exits, perf's handler, profd's BPF program; or a preemption). Unlike a throughput ratio this does not move when the machine gets faster or slower between runs. Same profilers and start-up as section 5 (rows named alike), plus **profd as before issue 13**: \`--per-cpu-events --stack-copy fixed --ring-buffer 33554432\` (per-CPU events, copies to the stack's end, a 32 MiB ring). $reps rounds, interleaved. Extra = the configuration's stolen time minus alone's in the same round (median over rounds); per sample = extra ÷ 999. Load at start: $load0.

| profiler (999 Hz) | gaps/s, median | stolen µs/s, median | min–max | extra over alone, µs/s | % of the CPU | per sample, µs |
|---|---:|---:|---:|---:|---:|---:|
EOF
	local -a base=(${gp_stolen[alone]})
	for cfg in "${cfgs[@]}"; do
		local -a st=(${gp_stolen[$cfg]})
		local ss sg diffs="" i name
		ss=$(stats ${gp_stolen[$cfg]})
		sg=$(stats ${gp_gaps[$cfg]})
		for i in "${!st[@]}"; do
			diffs+="$(ev '%.1f' "${st[$i]} - ${base[$i]:-0}") "
		done
		local dx
		dx=$(field "$(stats $diffs)" 1)
		case $cfg in
		alone) name=alone ;;
		floor-*) name="floor: \`perf record\`, no call graph (per task)" ;;
		floorcpu-*) name="per-CPU floor: \`perf record -a -C 1\`, no call graph" ;;
		unrelated-*) name="unrelated: \`profd record\` of another process" ;;
		unrelcpu-*) name="unrelated, per-CPU: \`profd record --per-cpu-events\` of another process" ;;
		profd-*) name="\`profd record\`" ;;
		percpu-*) name="\`profd record --per-cpu-events\`" ;;
		oldprofd-*) name="profd as before issue 13" ;;
		perf-*) name="\`perf record --call-graph dwarf\`" ;;
		esac
		printf '| %s | %s | %s | %s–%s | %s | %s | %s |\n' "$name" \
			"$(ev '%.0f' "$(field "$sg" 1)")" "$(ev '%.0f' "$(field "$ss" 1)")" \
			"$(ev '%.0f' "$(field "$ss" 2)")" "$(ev '%.0f' "$(field "$ss" 3)")" \
			"$([ "$cfg" = alone ] && echo — || ev '%.0f' "$dx")" \
			"$([ "$cfg" = alone ] && echo — || ev '%.3f%%' "$dx / 1e4")" \
			"$([ "$cfg" = alone ] && echo — || ev '%.2f' "$dx / 999")"
	done
	echo
	echo "- Per-run stolen µs/s: $(for c in "${cfgs[@]}"; do printf '%s: %s; ' "$c" "$(echo ${gp_stolen[$c]})"; done | sed 's/; $//')."
	echo
}

# ==== 6. whole-host cost ========================================================================
# Sum of the on-CPU time of every thread of PID, ns (schedstat: exact, not clock ticks).
proc_cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
# "rss_kB anon_kB bpf_maps_kB" of PID now: the BPF ring buffer is mapped into profd (its data
# pages twice, back to back) and counts in its RSS, so it is shown apart.
proc_rss() {
	local rss anon bpf
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status)
	anon=$(awk '/^RssAnon:/ { print $2 }' /proc/"$1"/status)
	bpf=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { b = ($NF ~ /bpf-map/) } b && /^Rss:/ { s += $2 } END { print s + 0 }' \
		/proc/"$1"/smaps)
	echo "${rss:-0} ${anon:-0} ${bpf:-0}"
}

declare -gA host
host_run() {
	local hz=$1 dur=$2 t_a=$3 t_b=$4
	local i wl_pids=()
	# One CPU-bound program pinned per CPU, running longer than the recording.
	for i in $(seq 0 $((ncpu - 1))); do
		taskset -c "$i" "$WL/throughput" "$(ev '%.1f' "$dur + 4")" >"$tmp/host-wl$i.out" &
		wl_pids+=($!)
	done
	for i in $(seq 0 $((ncpu - 1))); do first_line "$tmp/host-wl$i.out" >/dev/null; done
	local t0=$EPOCHREALTIME
	$TIME -f '%e %U %S %M' -o "$tmp/host.time" "$PROFD" record -a -F "$hz" -d "$dur" \
		-o "$tmp/host.pb.gz" >"$tmp/host.log" 2>&1 &
	local tpid=$! ppid=""
	host_time_pid=$tpid
	# ≤ 60 s, for a loaded machine (this runs inside `make test` as bench-smoke).
	for i in $(seq 3000); do
		ppid=$(pgrep -P "$tpid" -x profd || true)
		[ -n "$ppid" ] && break
		sleep 0.02
	done
	[ -n "$ppid" ] || die "profd record -a did not start"
	host_profd_pid=$ppid
	# Steady state: between t_a and t_b seconds after the start (start-up and the final
	# symbolization + write are outside the window; the whole run is reported too).
	sleep "$(ev '%.3f' "max0($t_a - ($EPOCHREALTIME - $t0))")"
	[ -e /proc/"$ppid"/status ] ||
		die "profd record -a -F $hz ended before its measuring window: $(tail -5 "$tmp/host.log" | tr '\n' ' ')"
	local ca wa ba
	ca=$(proc_cpu_ns "$ppid")
	ba=$(bpf_prog_stats "$ppid")
	wa=$EPOCHREALTIME
	sleep "$(ev '%.3f' "max0($t_b - ($EPOCHREALTIME - $t0))")"
	local cb wb bb rss
	cb=$(proc_cpu_ns "$ppid")
	bb=$(bpf_prog_stats "$ppid")
	wb=$EPOCHREALTIME
	[ -e /proc/"$ppid"/status ] ||
		die "profd record -a -F $hz ended inside its measuring window: $(tail -5 "$tmp/host.log" | tr '\n' ' ')"
	rss=$(proc_rss "$ppid")
	host[$hz.hwm_win]=$(awk '/^VmHWM:/ { print $2 }' /proc/"$ppid"/status)
	wait "$tpid" || die "profd record -a -F $hz failed: $(tail -3 "$tmp/host.log" | tr '\n' ' ')"
	host_time_pid="" host_profd_pid=""
	for i in "${wl_pids[@]}"; do kill "$i" 2>/dev/null || true; done
	for i in "${wl_pids[@]}"; do wait "$i" 2>/dev/null || true; done
	local e u s m
	read -r e u s m <"$tmp/host.time"
	host[$hz.win]=$(ev '%.2f' "$wb - $wa")
	host[$hz.cpu_win]=$(ev '%.6f' "($cb - $ca) / 1e9 / ($wb - $wa)")
	host[$hz.bpf_ns]=$(ev '%.0f' "($(field "$bb" 1) - $(field "$ba" 1)) / (($(field "$bb" 2) - $(field "$ba" 2)) > 0 ? ($(field "$bb" 2) - $(field "$ba" 2)) : 1)")
	host[$hz.bpf_runs]=$(ev '%d' "$(field "$bb" 2) - $(field "$ba" 2)")
	host[$hz.bpf_cpu]=$(ev '%.6f' "($(field "$bb" 1) - $(field "$ba" 1)) / 1e9 / ($wb - $wa)")
	host[$hz.wall]=$e
	host[$hz.cpu_all]=$(ev '%.2f' "$u + $s")
	host[$hz.hwm]=$m
	host[$hz.rss]=$rss
	host[$hz.samples]=$(sed -n 's/^ *samples *\([0-9]*\).*/\1/p' "$tmp/host.log" | head -1)
	host[$hz.lost]=$(sed -n 's/^ *samples.*(lost \([0-9]*\)).*/\1/p' "$tmp/host.log" | head -1)
	host[$hz.complete]=$(sed -n 's/^ *complete *\([0-9.]*%\).*/\1/p' "$tmp/host.log" | head -1)
	host[$hz.size]=$(size_of "$tmp/host.pb.gz")
}

host_section() {
	local load0 hzs=(99 999)
	declare -A dur=([99]=14 [999]=8) ta=([99]=3 [999]=3) tb=([99]=13 [999]=7)
	if [ $smoke = 1 ]; then
		hzs=(99)
		# The window must close well before profd ends: its -d runs from its start-up.
		dur[99]=2 ta[99]=0.6 tb[99]=0.9
	fi
	load0=$(loadavg)
	bpf_stats_old=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	local hz
	for hz in "${hzs[@]}"; do
		note "6: profd record -a -F $hz -d ${dur[$hz]} with every CPU busy"
		host_run "$hz" "${dur[$hz]}" "${ta[$hz]}" "${tb[$hz]}"
	done
	sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_old"
	bpf_stats_old=""

	cat <<EOF
## 6. Whole-host cost: \`profd record -a\`

Every CPU busy with a pinned copy of \`throughput\` (plus whatever else runs here), then \`profd record -a -F HZ -d N\` under \`/usr/bin/time\`. Load at start: $load0.

- profd CPU: on-CPU time of all its threads (/proc/PID/task/*/schedstat, ns) over a steady-state window that leaves out start-up and the final symbolization and write; the whole run (user+sys from rusage ÷ elapsed, start-up and the final write included) beside it.
- BPF: \`kernel.bpf_stats_enabled=1\` during the runs (restored afterwards); run_time_ns ÷ run_cnt of profd's perf_event program over the same window (the counters \`bpftool prog show\` prints, read from the program fd's /proc/PID/fdinfo). That time is spent in the sampling interrupt on the sampled CPU and charged to the interrupted task, not to profd, so it is added separately.
- Host share = (profd CPU-s + BPF CPU-s) per wall second ÷ $ncpu CPUs. Goal ≤ 0.3% of the host = 0.003 × $ncpu = $(ev '%.3f' "0.003 * $ncpu") CPU-s per wall second.

| -F | window | samples/s | profd CPU-s/s | profd µs/sample | BPF ns/sample | BPF CPU-s/s | host share, goal ≤ 0.3% | whole run: CPU-s ÷ wall |
|---:|---:|---:|---:|---:|---:|---:|---|---:|
EOF
	for hz in "${hzs[@]}"; do
		local share rate
		share=$(ev '%.3f' "(${host[$hz.cpu_win]} + ${host[$hz.bpf_cpu]}) * 100 / $ncpu")
		rate=$(ev '%.1f' "${host[$hz.bpf_runs]} / ${host[$hz.win]}")
		printf '| %s Hz | %s s | %s | %s | %s | %s | %s | %s%% (%s) | %s s ÷ %s s = %s |\n' \
			"$hz" "${host[$hz.win]}" "$(ev '%.0f' "$rate")" "$(ev '%.4f' "${host[$hz.cpu_win]}")" \
			"$(ev '%.1f' "${host[$hz.cpu_win]} * 1e6 / ($rate > 0 ? $rate : 1)")" \
			"${host[$hz.bpf_ns]}" "$(ev '%.4f' "${host[$hz.bpf_cpu]}")" "$share" \
			"$(mark "$(ev '%d' "$share <= 0.3")")" "${host[$hz.cpu_all]}" "${host[$hz.wall]}" \
			"$(ev '%.4f' "${host[$hz.cpu_all]} / ${host[$hz.wall]}")"
	done
	cat <<EOF

samples/s: runs of the BPF program in the window (every sample on every CPU; with -a none is filtered out); profd µs/sample = profd CPU-s/s ÷ samples/s.

Memory and lost samples, same runs. Peak RSS: rusage maxrss of the whole run (= VmHWM). The BPF ring buffer is mapped into profd (its data pages twice, back to back) and its resident pages count in RSS, so a late VmRSS (at the end of the window) is shown split: anonymous memory (profd's own heap) and the BPF map mappings. Lost: profd's summary, "samples N (lost M)", M ÷ (N + M). Goals: RSS ≤ 64 MiB, lost < 0.1%.

| -F | peak RSS, goal ≤ 64 MiB | VmHWM at window end | VmRSS at window end: all / anon / BPF maps | samples | lost | profd's "complete" | profile |
|---:|---|---:|---:|---:|---|---:|---:|
EOF
	for hz in "${hzs[@]}"; do
		local lostpct r n=${host[$hz.samples]:-0} l=${host[$hz.lost]:-0}
		lostpct=$(ev '%.3f' "$l * 100 / (($n + $l) > 0 ? ($n + $l) : 1)")
		r=${host[$hz.rss]}
		printf '| %s Hz | %s MiB (%s) | %s MiB | %s / %s / %s MiB | %s | %s = %s%% (%s) | %s | %s |\n' \
			"$hz" "$(ev '%.1f' "${host[$hz.hwm]} / 1024")" \
			"$(mark "$(ev '%d' "${host[$hz.hwm]} / 1024 <= 64")")" \
			"$(ev '%.1f' "${host[$hz.hwm_win]:-0} / 1024")" \
			"$(ev '%.1f' "$(field "$r" 1) / 1024")" "$(ev '%.1f' "$(field "$r" 2) / 1024")" \
			"$(ev '%.1f' "$(field "$r" 3) / 1024")" "${host[$hz.samples]:-?}" "${host[$hz.lost]:-?}" \
			"$lostpct" "$(mark "$(ev '%d' "$lostpct < 0.1")")" "${host[$hz.complete]:-?}" \
			"$(fmt_bytes "${host[$hz.size]}")"
	done
	echo
}

# ==== 7. output size ============================================================================
size_section() {
	echo "## 7. Output size: pprof vs perf.data"
	echo
	echo "The same samples in both formats: the perf.data of section 4 and what \`profd convert\` made of it; and the recordings of section 5 (the same pinned workload for the same time, separate runs: medians over the runs), profd's own pprof against perf record's file."
	echo
	echo "| what | samples | perf.data | pprof (gzip) | perf.data ÷ pprof | bytes/sample perf.data | bytes/sample pprof |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	if [ -n "${conv_n[big]:-}" ]; then
		local pd pb n=${conv_n[big]}
		pd=$(size_of "$tmp/big.data")
		pb=$(size_of "$tmp/big.pb.gz")
		printf '| section 4: perf.data → `profd convert` | %s | %s | %s | %s× | %s | %s |\n' "$n" \
			"$(fmt_bytes "$pd")" "$(fmt_bytes "$pb")" "$(ev '%.0f' "$pd / $pb")" \
			"$(ev '%.0f' "$pd / $n")" "$(ev '%.1f' "$pb / $n")"
	fi
	local hz
	for hz in 99 999; do
		[ -n "${tp_size[profd-$hz]:-}" ] && [ -n "${tp_size[perf-$hz]:-}" ] || continue
		local np nf sp sf
		np=$(field "$(stats ${tp_samples[profd-$hz]})" 1)
		nf=$(field "$(stats ${tp_samples[perf-$hz]})" 1)
		sp=$(field "$(stats ${tp_size[profd-$hz]})" 1)
		sf=$(field "$(stats ${tp_size[perf-$hz]})" 1)
		printf '| section 5, %s Hz: `perf record` vs `profd record` | %s / %s | %s | %s | %s× | %s | %s |\n' \
			"$hz" "$(ev '%.0f' "$nf")" "$(ev '%.0f' "$np")" "$(fmt_bytes "$sf")" "$(fmt_bytes "$sp")" \
			"$(ev '%.0f' "$sf / $sp")" "$(ev '%.0f' "$sf / ($nf > 0 ? $nf : 1)")" \
			"$(ev '%.1f' "$sp / ($np > 0 ? $np : 1)")"
	done
	echo
	echo "Samples: perf's / profd's (\`perf report --stats\` SAMPLE events; profd's summary). perf.data keeps every sample's registers and stack bytes; the pprof keeps one entry per unique stack and label set."
	echo
}

# ==== 8. complete stacks ========================================================================
# A stack is complete when its outermost frame is the process or thread entry point.
ENTRY_RE='^(_start|__clone|clone|__clone3|clone3|start_thread)$'

# profd: `pprof -traces -sample_index=samples` blocks (labels, then "COUNT leaf" and one frame per
# line, leaf first). Prints "total complete top-incomplete-outermost" for samples of COMM.
profd_complete() {
	"$PPROF" -traces -sample_index=samples "$1" 2>/dev/null | awk -v want="$2" -v re="$ENTRY_RE" '
		function flush() {
			if (have && comm == want) {
				total += cnt
				if (last ~ re) ok += cnt; else bad[last] += cnt
			}
			have = 0; comm = ""; last = ""
		}
		/^-+\+-+$/ { flush(); next }
		have && /^             [^ ]/ { l = $0; sub(/^ +/, "", l); last = l; next }
		!have && /^ *[A-Za-z_]+:  / { if ($1 == "comm:") { v = $0; sub(/^ *comm: +/, "", v); comm = v }; next }
		!have && /^ *[0-9]+   [^ ]/ { have = 1; cnt = $1; l = $0; sub(/^ *[0-9]+ +/, "", l); last = l; next }
		END { flush(); print total + 0, ok + 0, top(bad) }'"$AWK_TOP"
}

# perf: `perf script -F comm,ip,sym --no-inline` blocks ("comm" line, frames leaf first).
perf_complete() {
	perf script -F comm,ip,sym --no-inline -i "$1" 2>/dev/null | awk -v want="$2" -v re="$ENTRY_RE" '
		BEGIN { RS = ""; FS = "\n" }
		{
			split($1, h, " ")
			if (h[1] != want) next
			total++
			l = NF > 1 ? $NF : $1
			sub(/^[ \t]*[0-9a-f]+ /, "", l)
			if (NF > 1 && l ~ re) ok++; else bad[NF > 1 ? l : "(no call chain)"]++
		}
		END { print total + 0, ok + 0, top(bad) }'"$AWK_TOP"
}

complete_section() {
	local secs=2 wls=("${E2E_WORKLOADS[@]}")
	[ $smoke = 1 ] && secs=0.2 wls=(chain)
	local load0 w
	load0=$(loadavg)
	declare -A res
	for w in "${wls[@]}"; do
		note "8: $w under profd record, then under perf record (${secs} s each, 999 Hz)"
		timeout 60 "$PROFD" record -F 999 -o "$tmp/w.pb.gz" -- "$WL/$w" "$secs" >"$tmp/w.log" 2>&1 ||
			die "profd record -- $w failed: $(tail -3 "$tmp/w.log" | tr '\n' ' ')"
		timeout 60 perf record -q -N -e cpu-clock --call-graph dwarf,32768 -F 999 -o "$tmp/w.data" \
			-- "$WL/$w" "$secs" >/dev/null 2>"$tmp/w.perf.log" ||
			die "perf record -- $w failed: $(tail -3 "$tmp/w.perf.log" | tr '\n' ' ')"
		res[$w.profd]=$(profd_complete "$tmp/w.pb.gz" "$w")
		res[$w.perf]=$(perf_complete "$tmp/w.data" "$w")
		res[$w.own]=$(sed -n 's/^ *complete *\([0-9.]*%\) of \([0-9]*\).*/\1 of \2/p' "$tmp/w.log" | head -1)
		res[$w.copy]=$(sed -n 's/^ *stack copy \([0-9]*\) bytes mean, \([0-9]*\) p99.*read \([0-9]*\) bytes mean; to the stack.s end: \([0-9]*\) bytes mean.*/\1 \2 \3 \4/p' "$tmp/w.log" | head -1)
		# The same with the stack copy of before the adaptive one: to the stack's end, capped.
		timeout 60 "$PROFD" record -F 999 --stack-copy fixed -o "$tmp/w.pb.gz" -- "$WL/$w" "$secs" \
			>"$tmp/w.log" 2>&1 ||
			die "profd record --stack-copy fixed -- $w failed: $(tail -3 "$tmp/w.log" | tr '\n' ' ')"
		res[$w.fixed]=$(profd_complete "$tmp/w.pb.gz" "$w")
		res[$w.fcopy]=$(sed -n 's/^ *stack copy \([0-9]*\) bytes mean, \([0-9]*\) p99.*/\1 \2/p' "$tmp/w.log" | head -1)
	done
	cat <<EOF
## 8. Complete stacks: profd vs perf (DWARF)

Each workload run three times for ${secs} s at 999 Hz: under \`profd record -F 999 -- W\` (adaptive stack copy), under \`profd record -F 999 --stack-copy fixed -- W\` (from sp to the stack's end, at most 32 KiB: the copy before the adaptive one) and under \`perf record -e cpu-clock --call-graph dwarf,32768 -F 999 -- W\` (same binary, same stack copy cap). Bytes copied are the user stack bytes per sample from profd's summary (mean, and p99 at 256-byte resolution), over the whole run (the first few tens of ms of a process, before its gap is learnt, copy to the stack's end); "walks read" is how much of the copy the unwinder used (mean), "to the end" what copying to the stack's end (the copy before issue 13) would have taken for the same samples. The fixed run is another process, whose stack top sits at another random offset (ASLR moves the stack pointer within the top pages by up to 8 KiB), so the ratio is taken against the same run's "to the end". One criterion applied to both outputs: a sample's stack is complete when its outermost frame is the process or thread entry: \`_start\`, or \`clone\`/\`__clone\`/\`clone3\`/\`__clone3\`/\`start_thread\` for threads (what the real outermost frames are here: \`_start\` for main threads, glibc's \`__clone3\` for threads). profd's stacks are read from its pprof with the real pprof (\`pprof -traces -sample_index=samples\`), perf's from \`perf script -F comm,ip,sym --no-inline\`; only samples whose thread name is the workload's count (not the launcher before exec). profd's own figure (its summary: user stacks walked to the root) beside it. Load at start: $load0.

| workload | profd samples | profd complete | profd's own "complete" | profd fixed complete | bytes copied adaptive (mean / p99) | walks read | to the end, same samples | adaptive ÷ to the end, goal ≤ 25% | fixed run (mean / p99) | perf samples | perf complete | incomplete, outermost frames (profd) | incomplete, outermost frames (perf) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
EOF
	for w in "${wls[@]}"; do
		local p=${res[$w.profd]} q=${res[$w.perf]}
		local pn pc qn qc
		pn=$(field "$p" 1)
		pc=$(field "$p" 2)
		qn=$(field "$q" 1)
		qc=$(field "$q" 2)
		local fx=${res[$w.fixed]} ca=${res[$w.copy]:-0 0 0 0} cf=${res[$w.fcopy]:-0 0} ratio
		ratio=$(ev '%.1f' "$(field "$ca" 1) * 100 / ($(field "$ca" 4) > 0 ? $(field "$ca" 4) : 1)")
		printf '| `%s` | %s | %s%% | %s | %s%% | %s / %s | %s | %s | %s%% %s | %s / %s | %s | %s%% | %s | %s |\n' "$w" "$pn" \
			"$(ev '%.1f' "$pc * 100 / ($pn > 0 ? $pn : 1)")" "${res[$w.own]:-?}" \
			"$(ev '%.1f' "$(field "$fx" 2) * 100 / ($(field "$fx" 1) > 0 ? $(field "$fx" 1) : 1)")" \
			"$(field "$ca" 1)" "$(field "$ca" 2)" "$(field "$ca" 3)" "$(field "$ca" 4)" \
			"$ratio" "$(mark "$(ev '%d' "$ratio <= 25")")" "$(field "$cf" 1)" "$(field "$cf" 2)" "$qn" \
			"$(ev '%.1f' "$qc * 100 / ($qn > 0 ? $qn : 1)")" \
			"$(echo "$p" | cut -d' ' -f3- | sed 's/|/\\|/g')" "$(echo "$q" | cut -d' ' -f3- | sed 's/|/\\|/g')"
	done
	echo
}

# ---- run --------------------------------------------------------------------------------------
declare -gA conv_n
section_on 4 && conv_section
section_on 5 && slow_section
section_on 12 && gap_section
section_on 6 && host_section
section_on 7 && size_section
section_on 8 && complete_section
note "done"
