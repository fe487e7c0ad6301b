#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# soak.sh: `profd daemon` left running under host churn, to see whether anything grows. Prints
# section 9 of BENCHMARKS.md (`make soak` keeps it there).
#
# The daemon runs at 99 Hz with a configuration of its own in a temporary directory (interval
# 30 s into a temporary output directory, HTTP on 127.0.0.1 with a port the kernel picks, read
# back from its log). Beside it bench/soak/churn runs short-lived processes (fork and exec),
# threads that start and end, and dlopen/dlclose of libchurn0-3.so. In a loop for the whole run:
# pull /debug/pprof/profile?seconds=5 with curl (checked: HTTP 200, a valid gzip), then, with no
# pull in flight, sample the daemon: VmRSS/RssAnon/RssFile/RssShmem (/proc/PID/status), open fds
# (/proc/PID/fd), CPU time (/proc/PID/stat utime+stime, all threads), its /metrics (cache sizes,
# process table, samples, lost samples) and /proc/loadavg; then wait 2 s.
#
# Usage: bench/soak.sh [--minutes N] [BUILD]     (N defaults to 30, BUILD to build)
# Needs root (BPF) and curl. Markdown on stdout, progress on stderr; every sample as TSV and the
# daemon's log are kept in BUILD/bench/soak/. Exits 1 if a pull failed or the daemon did not run
# or stop cleanly; growth is reported (met/missed), not a failure: this is a benchmark.
set -euo pipefail

minutes=30
build=build
while [ $# -gt 0 ]; do
	case $1 in
	--minutes)
		minutes=${2:?--minutes needs a value}
		shift
		;;
	--minutes=*) minutes=${1#--minutes=} ;;
	-h | --help)
		sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "soak: unknown option $1 (try --help)" >&2
		exit 2
		;;
	*) build=$1 ;;
	esac
	shift
done
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || {
	echo "soak: --minutes: a number, not $minutes" >&2
	exit 2
}

PROFD=$build/profd
PPROF=$build/pprof
SOAK=$build/bench/soak
CHURN=$SOAK/churn
LIBS=("$SOAK"/libchurn0.so "$SOAK"/libchurn1.so "$SOAK"/libchurn2.so "$SOAK"/libchurn3.so)
FREQ=99
INTERVAL=30 # seconds per interval file
PULL=5      # seconds per pulled profile
GAP=2       # seconds between a pull and the next

die() {
	echo "soak: $*" >&2
	exit 1
}
t_start=$EPOCHREALTIME
el() { awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }
note() { echo "soak [$(el) s]: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (profd daemon loads BPF)"
command -v curl >/dev/null || die "curl not found (make deps)"
for f in "$PROFD" "$PPROF" "$CHURN" "${LIBS[@]}"; do
	[ -e "$f" ] || die "$f missing: make BUILD=$build soak-bins builds it"
done
total=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
[ "$total" -ge 30 ] || die "--minutes $minutes: at least 0.5"
# Warm-up: the first sixth of the run (5 min of 30), at least 30 s.
warm=$(awk -v t="$total" 'BEGIN { w = t / 6; printf "%d", w < 30 ? 30 : w }')
ncpu=$(nproc)
tck=$(getconf CLK_TCK)

# ---- scratch and background processes, undone on exit -----------------------------------------
mkdir -p "$SOAK"
tmp=$(mktemp -d /tmp/profd-soak.XXXXXX)
daemon_pid=""
churn_pid=""
# Only this script's own children, by pid, and only while they have not been waited for.
cleanup() {
	if [ -n "$churn_pid" ]; then kill "$churn_pid" 2>/dev/null || true; fi
	if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	[ -f "$tmp/profd.log" ] && cp "$tmp/profd.log" "$SOAK/profd.log"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers -------------------------------------------------------------------------------------
ev() { awk "BEGIN { printf \"$1\", ($2) }"; }
# status_kb FIELD: a kB field of the daemon's /proc/PID/status.
status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "$tmp/status"; }
# metric NAME: a value from the last /metrics (unlabelled series only).
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$tmp/metrics"; }
mib() { ev '%.1f' "$1 / 1024"; }

# ---- the daemon ----------------------------------------------------------------------------------
cat >"$tmp/profd.conf" <<EOF
frequency = $FREQ
interval = $INTERVAL
output_dir = $tmp/out
listen = 127.0.0.1:0
log_level = info
EOF
note "starting profd daemon ($FREQ Hz, interval $INTERVAL s) for $minutes min; scratch $tmp"
t_launch=$EPOCHREALTIME
"$PROFD" daemon --config "$tmp/profd.conf" >"$tmp/profd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 300); do
	grep -q 'Profiling all CPUs' "$tmp/profd.log" && break
	kill -0 "$daemon_pid" 2>/dev/null || die "profd daemon exited: $(tail -5 "$tmp/profd.log")"
	sleep 0.1
done
grep -q 'Profiling all CPUs' "$tmp/profd.log" || die "profd daemon not ready in 30 s: $(tail -5 "$tmp/profd.log")"
addr=$(sed -n 's/.*HTTP server listening on \([0-9.]*:[0-9]*\).*/\1/p' "$tmp/profd.log" | head -1)
[ -n "$addr" ] || die "no listen address in the log: $(tail -5 "$tmp/profd.log")"
t_ready=$EPOCHREALTIME
note "daemon $daemon_pid ready on $addr after $(ev '%.1f' "$t_ready - $t_launch") s"

"$CHURN" "$((total + 5))" "${LIBS[@]}" >"$tmp/churn.out" 2>"$tmp/churn.err" &
churn_pid=$!

# ---- the loop: pull, sample, wait ----------------------------------------------------------------
# One TSV line per sample.
cols="t rss anon file shmem fds cpu_ticks load1 load5 load15 pulls_ok pulls_failed procs binaries"
cols+=" unwind_entries unwind_bytes unwind_evictions sym_binaries sym_open_elfs sym_results"
cols+=" sym_result_bytes samples lost bad_records written write_errors http_5xx threads"
echo "$cols" | tr ' ' '\t' >"$tmp/samples.tsv"
pulls_ok=0
pulls_failed=0
pull_bytes=0
pull_worst=0
fail_msgs=()
snapshot() {
	local t
	t=$(ev '%.1f' "$EPOCHREALTIME - $t_ready")
	cp "/proc/$daemon_pid/status" "$tmp/status" || die "daemon $daemon_pid gone"
	local fds cpu
	fds=$(find "/proc/$daemon_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	# utime and stime: fields 14 and 15 after the ")" that ends comm (which may hold spaces).
	cpu=$(sed 's/.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }')
	curl -sS -f --max-time 10 -o "$tmp/metrics" "http://$addr/metrics" ||
		die "GET /metrics failed at t=$t s"
	printf '%s\n' "$t" "$(status_kb VmRSS)" "$(status_kb RssAnon)" "$(status_kb RssFile)" \
		"$(status_kb RssShmem)" "$fds" "$cpu" $(cut -d' ' -f1-3 /proc/loadavg) "$pulls_ok" \
		"$pulls_failed" "$(metric profd_processes)" "$(metric profd_binaries)" \
		"$(metric profd_unwind_cache_entries)" "$(metric profd_unwind_cache_bytes)" \
		"$(metric profd_unwind_cache_evictions_total)" "$(metric profd_symbol_cache_binaries)" \
		"$(metric profd_symbol_cache_open_elfs)" "$(metric profd_symbol_cache_results)" \
		"$(metric profd_symbol_cache_result_bytes)" "$(metric profd_samples_total)" \
		"$(metric profd_lost_samples_total)" "$(metric profd_bad_records_total)" \
		"$(metric profd_profiles_written_total)" "$(metric profd_profile_write_errors_total)" \
		"$(metric profd_http_server_errors_total)" \
		"$(awk '$1 == "Threads:" { print $2 }' "$tmp/status")" | paste -sd '\t' >>"$tmp/samples.tsv"
}

snapshot # start: the daemon just ready, the churn just started
last_note=0
while :; do
	now=$(ev '%d' "$EPOCHREALTIME - $t_ready")
	[ "$now" -lt "$total" ] || break
	t0=$EPOCHREALTIME
	code=$(curl -sS --max-time $((PULL + 30)) -o "$tmp/pull.pb.gz" -w '%{http_code}' \
		"http://$addr/debug/pprof/profile?seconds=$PULL" 2>"$tmp/curl.err") || code="curl rc $? $(head -c 200 "$tmp/curl.err")"
	dt=$(ev '%.2f' "$EPOCHREALTIME - $t0")
	if [ "$code" = 200 ] && [ -s "$tmp/pull.pb.gz" ] && gzip -t "$tmp/pull.pb.gz" 2>/dev/null; then
		pulls_ok=$((pulls_ok + 1))
		pull_bytes=$((pull_bytes + $(stat -c %s "$tmp/pull.pb.gz")))
		pull_worst=$(ev '%.2f' "$dt > $pull_worst ? $dt : $pull_worst")
		cp "$tmp/pull.pb.gz" "$tmp/last-pull.pb.gz"
	else
		pulls_failed=$((pulls_failed + 1))
		fail_msgs+=("t=$now s: $code")
		note "pull failed at t=$now s: $code"
	fi
	snapshot
	if [ $((now - last_note)) -ge 60 ]; then
		last_note=$now
		note "t=$now s: $(tail -1 "$tmp/samples.tsv" | awk -F'\t' '{ printf "RSS %d kB, fds %d, unwind %d B, sym results %d, lost %d", $2, $6, $16, $20, $23 }'), pulls $pulls_ok ok / $pulls_failed failed"
	fi
	sleep $GAP
done

# ---- stop ----------------------------------------------------------------------------------------
t_stop=$EPOCHREALTIME
kill "$churn_pid" 2>/dev/null || true
churn_rc=0
wait "$churn_pid" || churn_rc=$?
churn_pid=""
kill -TERM "$daemon_pid"
daemon_rc=0
wait "$daemon_pid" || daemon_rc=$?
daemon_pid=""
note "daemon stopped (exit $daemon_rc), churn exit $churn_rc"
cp "$tmp/samples.tsv" "$SOAK/samples.tsv"
cp "$tmp/profd.log" "$SOAK/profd.log"
files=$(find "$tmp/out" -name 'profile-*.pb.gz' | wc -l)
run_s=$(ev '%.0f' "$t_stop - $t_ready")
files_expected=$(ev '%d' "$run_s / $INTERVAL")
warnings=$(grep -ciE 'warning|error' "$tmp/profd.log" || true)

# Last pull: real pprof, churn's libraries named?
last_total="" lib_fns=""
if [ -s "$tmp/last-pull.pb.gz" ]; then
	last_total=$("$PPROF" -top -nodecount=1 -sample_index=samples "$tmp/last-pull.pb.gz" 2>/dev/null |
		sed -n 's/.* of \([0-9]*\) total.*/\1/p' | head -1)
	lib_fns=$("$PPROF" -top -nodecount=500 -sample_index=samples "$tmp/last-pull.pb.gz" 2>/dev/null |
		grep -oE '(step|loop)_lib[0-9]' | sort -u | paste -sd ' ' || true)
fi

# ---- report --------------------------------------------------------------------------------------
# row T: the first sample at or after T seconds (the last one for T < 0).
row() {
	awk -F'\t' -v t="$1" 'NR > 1 { last = $0; if (t >= 0 && $1 >= t) { print; found = 1; exit } }
		END { if (!found) print last }' "$tmp/samples.tsv"
}
declare -A C
i=0
for c in $cols; do
	i=$((i + 1))
	C[$c]=$i
done
# get ROW NAME: one column of a sample.
get() { echo "$1" | cut -f"${C[$2]}"; }

r_start=$(row 0)
r_warm=$(row "$warm")
r_mid=$(row $((total / 2)))
r_end=$(row -1)

kernel=$(uname -sr)
cpu_model=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
commit=$(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$(dirname "$0")/.." status --porcelain --untracked-files=no 2>/dev/null | head -1)
[ -n "$dirty" ] && commit="$commit (with uncommitted changes)"
churn_line=$(grep '^churn:' "$tmp/churn.out" || echo "churn: no summary (exit $churn_rc)")

cat <<EOF
## 9. Soak: \`profd daemon\` under churn

Generated by \`make soak\` (\`bench/soak.sh --minutes $minutes\`), apart from \`make bench\`. $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit; $cpu_model, $ncpu CPUs; $kernel. Other work ran on the machine meanwhile (load averages in the table).

\`profd daemon\` at $FREQ Hz on every CPU, interval $INTERVAL s, its own configuration and output directory (mktemp -d), HTTP on 127.0.0.1 (port from the log), for $minutes min. Beside it \`bench/soak/churn\`: 20 short-lived processes a second (fork + _exit and posix_spawn of itself, alternately; each works 2 ms), 50 threads a second that work 1 ms and end, 20 dlopen → call (2 ms of work inside) → dlclose a second round-robin over four libraries (libchurn0-3.so, one build-id each). In a loop: \`curl /debug/pprof/profile?seconds=$PULL\` (HTTP 200 and a valid gzip, or a failed pull), then with no pull in flight a sample of the daemon (VmRSS and its parts from /proc/PID/status, open fds from /proc/PID/fd, utime+stime of all threads from /proc/PID/stat, /metrics, /proc/loadavg), then $GAP s of pause: a sample about every $(ev '%.0f' "$PULL + $GAP") s. Warm-up: the first $warm s. CPU: the daemon's CPU time over the span since the previous row (the start row: since launch, start-up included), in % of one CPU and of the host ($ncpu CPUs); pulls (symbolization, pprof building) are part of it.

| | t | load avg 1/5/15 min | VmRSS | RssAnon / RssFile / RssShmem | fds | threads | CPU: one CPU / host | processes tracked | binaries open | unwind cache: tables / bytes | symbol cache: binaries / open ELFs / results / bytes | samples | lost |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
	prev_t=$(ev '%.1f' "$t_launch - $t_ready") prev_cpu=0
	for name in start warm mid end; do
		case $name in
		start) r=$r_start label="start" ;;
		warm) r=$r_warm label="warm-up end" ;;
		mid) r=$r_mid label="middle" ;;
		end) r=$r_end label="end" ;;
		esac
		t=$(get "$r" t)
		cpu_s=$(ev '%.2f' "$(get "$r" cpu_ticks) / $tck")
		share=$(ev '%.2f' "($cpu_s - $prev_cpu) * 100 / ($t - $prev_t)")
		printf '| %s | %s s | %s %s %s | %s MiB | %s / %s / %s MiB | %s | %s | %s%% / %s%% | %s | %s | %s / %s kB | %s / %s / %s / %s kB | %s | %s |\n' \
			"$label" "$(ev '%.0f' "$t")" "$(get "$r" load1)" "$(get "$r" load5)" "$(get "$r" load15)" \
			"$(mib "$(get "$r" rss)")" "$(mib "$(get "$r" anon)")" "$(mib "$(get "$r" file)")" \
			"$(mib "$(get "$r" shmem)")" "$(get "$r" fds)" "$(get "$r" threads)" "$share" \
			"$(ev '%.2f' "$share / $ncpu")" "$(get "$r" procs)" "$(get "$r" binaries)" \
			"$(get "$r" unwind_entries)" "$(ev '%.0f' "$(get "$r" unwind_bytes) / 1024")" \
			"$(get "$r" sym_binaries)" "$(get "$r" sym_open_elfs)" "$(get "$r" sym_results)" \
			"$(ev '%.0f' "$(get "$r" sym_result_bytes) / 1024")" "$(get "$r" samples)" "$(get "$r" lost)"
		prev_t=$t prev_cpu=$cpu_s
	done
	d() { ev '%+.0f' "$(get "$r_end" "$1") - $(get "$r_warm" "$1")"; }
	printf '| **growth after warm-up** (end − warm-up end) | %s s | | %s MiB | %s / %s / %s MiB | %s | %s | | %s | %s | %s / %s kB | %s / %s / %s / %s kB | %s | %s |\n' \
		"$(ev '%.0f' "$(get "$r_end" t) - $(get "$r_warm" t)")" \
		"$(ev '%+.2f' "($(get "$r_end" rss) - $(get "$r_warm" rss)) / 1024")" \
		"$(ev '%+.2f' "($(get "$r_end" anon) - $(get "$r_warm" anon)) / 1024")" \
		"$(ev '%+.2f' "($(get "$r_end" file) - $(get "$r_warm" file)) / 1024")" \
		"$(ev '%+.2f' "($(get "$r_end" shmem) - $(get "$r_warm" shmem)) / 1024")" \
		"$(d fds)" "$(d threads)" "$(d procs)" "$(d binaries)" "$(d unwind_entries)" \
		"$(ev '%+.0f' "($(get "$r_end" unwind_bytes) - $(get "$r_warm" unwind_bytes)) / 1024")" \
		"$(d sym_binaries)" "$(d sym_open_elfs)" "$(d sym_results)" \
		"$(ev '%+.0f' "($(get "$r_end" sym_result_bytes) - $(get "$r_warm" sym_result_bytes)) / 1024")" \
		"$(d samples)" "$(d lost)"

# After warm-up, every sample: ranges, and a least-squares slope of RSS per hour.
read -r n_after rss_min rss_max fds_min fds_max anon_min anon_max slope <<<"$(awk -F'\t' -v w="$warm" \
	-v ir="${C[rss]}" -v if_="${C[fds]}" -v ia="${C[anon]}" '
	NR > 1 && $1 >= w { n++; r = $ir; f = $if_; a = $ia
		if (n == 1 || r < rmin) rmin = r; if (r > rmax) rmax = r
		if (n == 1 || f < fmin) fmin = f; if (f > fmax) fmax = f
		if (n == 1 || a < amin) amin = a; if (a > amax) amax = a
		sx += $1; sy += r; sxx += $1 * $1; sxy += $1 * r }
	END { den = n * sxx - sx * sx; s = den > 0 ? (n * sxy - sx * sy) / den : 0
		printf "%d %d %d %d %d %d %d %.1f\n", n, rmin, rmax, fmin, fmax, amin, amax, s * 3600 }' "$tmp/samples.tsv")"

rss_growth=$(ev '%.2f' "($(get "$r_end" rss) - $(get "$r_warm" rss)) / 1024")
fds_growth=$(($(get "$r_end" fds) - $(get "$r_warm" fds)))
lost_end=$(get "$r_end" lost)
mark() { if [ "$1" = 1 ]; then echo met; else echo '**missed**'; fi; }

cat <<EOF

After warm-up ($n_after samples from t = $warm s to the end):
- RSS growth, end − warm-up end: $rss_growth MiB, goal ≤ 2 MiB ($(mark "$(ev '%d' "$rss_growth <= 2")")); VmRSS $(mib "$rss_min")–$(mib "$rss_max") MiB over those samples (RssAnon $(mib "$anon_min")–$(mib "$anon_max") MiB); least-squares slope $(ev '%.2f' "$slope / 1024") MiB per hour.
- Open fds: $fds_min–$fds_max over those samples, end − warm-up end $fds_growth; goal constant ($(mark "$(ev '%d' "$fds_min == $fds_max")")).
- Lost samples (profd_lost_samples_total): $lost_end of $(get "$r_end" samples) at the end ($(mark "$(ev '%d' "$lost_end == 0")")); bad ring-buffer records $(get "$r_end" bad_records); HTTP 5xx answers $(get "$r_end" http_5xx).
- Pulls: $pulls_ok succeeded, $pulls_failed failed ($(mark "$(ev '%d' "$pulls_failed == 0")")); $(ev '%.1f' "$pull_bytes / ($pulls_ok > 0 ? $pulls_ok : 1) / 1024") kB per profile on average, slowest pull $pull_worst s for seconds=$PULL. The last one, read by the real pprof: ${last_total:-?} samples$([ -n "$lib_fns" ] && echo ", the dlopened libraries' functions among them: $lib_fns").
- Interval files: $files in the output directory after SIGTERM (the daemon writes the partial last interval), $files_expected whole intervals of $INTERVAL s in the $run_s s run ($(mark "$(ev '%d' "$files >= $files_expected")")); write errors $(get "$r_end" write_errors). Daemon exit status $daemon_rc; $warnings warning/error lines in its log.
- Churn: $churn_line
EOF
if [ ${#fail_msgs[@]} -gt 0 ]; then
	echo "- Failed pulls: ${fail_msgs[*]:0:5}"
fi

# Timeline: ten evenly spaced samples.
echo
echo "Timeline (every sample is in \`$SOAK/samples.tsv\`):"
echo
echo "| t | load 1 min | VmRSS | RssAnon | fds | processes tracked | binaries open | unwind cache bytes | symbol results | lost |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for i in 0 1 2 3 4 5 6 7 8 9 10; do
	r=$(row $((total * i / 10)))
	[ $i = 10 ] && r=$r_end
	printf '| %s s | %s | %s MiB | %s MiB | %s | %s | %s | %s kB | %s | %s |\n' "$(ev '%.0f' "$(get "$r" t)")" \
		"$(get "$r" load1)" "$(mib "$(get "$r" rss)")" "$(mib "$(get "$r" anon)")" "$(get "$r" fds)" \
		"$(get "$r" procs)" "$(get "$r" binaries)" "$(ev '%.0f' "$(get "$r" unwind_bytes) / 1024")" \
		"$(get "$r" sym_results)" "$(get "$r" lost)"
done
echo

rc=0
[ "$pulls_failed" = 0 ] || rc=1
[ "$daemon_rc" = 0 ] || rc=1
[ "$pulls_ok" -gt 0 ] || rc=1
note "done: pulls $pulls_ok ok / $pulls_failed failed, RSS growth after warm-up $rss_growth MiB, fds $fds_growth (exit $rc)"
exit $rc
