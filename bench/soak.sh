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
# pull in flight, sample the daemon: VmRSS/RssAnon (/proc/PID/status), resident BPF map and file
# mappings (/proc/PID/smaps), open fds by kind (/proc/PID/fd), CPU time (/proc/PID/stat
# utime+stime, all threads), its /metrics (cache sizes, process table, samples, lost samples)
# and /proc/loadavg; then wait 2 s.
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
# The commit is taken now: the tree may change while the soak runs.
commit=$(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$(dirname "$0")/.." status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit (with uncommitted changes)"
fi
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
	# What was measured so far stays, also when the soak failed.
	[ -f "$tmp/profd.log" ] && cp "$tmp/profd.log" "$SOAK/profd.log"
	[ -f "$tmp/samples.tsv" ] && cp "$tmp/samples.tsv" "$SOAK/samples.tsv"
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

"$CHURN" "$total" "${LIBS[@]}" >"$tmp/churn.out" 2>"$tmp/churn.err" &
churn_pid=$!

# ---- the loop: pull, sample, wait ----------------------------------------------------------------
# One TSV line per sample.
cols="t rss anon rss_bpf rss_files fds fds_files fds_anon fds_other cpu_ticks load1 load5 load15 pulls_ok pulls_failed procs binaries"
cols+=" unwind_entries unwind_bytes unwind_evictions sym_binaries sym_open_elfs sym_results"
cols+=" sym_result_bytes samples lost bad_records written write_errors http_5xx threads"
echo "$cols" | tr ' ' '\t' >"$tmp/samples.tsv"
declare -A C
i=0
for c in $cols; do
	i=$((i + 1))
	C[$c]=$i
done
# get ROW NAME: one column of a sample.
get() { echo "$1" | cut -f"${C[$2]}"; }
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
	# fds: all, files (binaries and memfds), anon inodes (BPF objects, perf events), others
	# (sockets, pipes).
	# (An fd closed between find's readdir and readlink is not counted: not an error.)
	fds=$({ find "/proc/$daemon_pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null || true; } |
		awk '/^\// { f++; next } /^anon_inode:/ { a++; next } { o++ }
			END { printf "%d\t%d\t%d\t%d\n", f + a + o, f, a, o }')
	# Resident kB in BPF map mappings (the ring buffer) and in file mappings, from smaps.
	local rss_parts
	rss_parts=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { k = $6 ~ /^anon_inode:bpf/ ? "b" : $6 ~ /^\// ? "f" : "o" }
		/^Rss:/ { r[k] += $2 } END { printf "%d\t%d\n", r["b"], r["f"] }' "/proc/$daemon_pid/smaps")
	# utime and stime: fields 14 and 15 after the ")" that ends comm (which may hold spaces).
	cpu=$(sed 's/.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }')
	curl -sS -f --max-time 10 -o "$tmp/metrics" "http://$addr/metrics" ||
		{ sleep 1 && curl -sS -f --max-time 10 -o "$tmp/metrics" "http://$addr/metrics"; } ||
		die "GET /metrics failed twice at t=$t s"
	printf '%s\n' "$t" "$(status_kb VmRSS)" "$(status_kb RssAnon)" "$rss_parts" "$fds" "$cpu" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$(cut -d' ' -f2 /proc/loadavg)" \
		"$(cut -d' ' -f3 /proc/loadavg)" "$pulls_ok" \
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
		r=$(tail -1 "$tmp/samples.tsv")
		note "t=$now s: RSS $(get "$r" rss) kB (anon $(get "$r" anon)), fds $(get "$r" fds), binaries $(get "$r" binaries), unwind $(get "$r" unwind_bytes) B, sym results $(get "$r" sym_results), lost $(get "$r" lost), pulls $pulls_ok ok / $pulls_failed failed"
	fi
	sleep $GAP
done

# ---- stop ----------------------------------------------------------------------------------------
t_stop=$EPOCHREALTIME
# The churn ends by itself at the same time; it is killed only if it does not.
for _ in $(seq 150); do
	kill -0 "$churn_pid" 2>/dev/null || break
	sleep 0.1
done
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

# One whole interval file (the one before the partial last), read by the real pprof: all samples,
# and those with a frame in a dlopened library (named as the library's own functions).
iv=$(find "$tmp/out" -name 'profile-*.pb.gz' | sort | tail -2 | head -1)
iv_total=0 iv_lib=0 iv_names=""
if [ -n "$iv" ]; then
	read -r iv_total iv_lib iv_names <<<"$("$PPROF" -traces -sample_index=samples "$iv" 2>/dev/null | awk '
		/^-+\+-+$/ { if (have) { t += c; if (lib) l += c }; have = 0; lib = 0; next }
		!have && /^ *[0-9]+   [^ ]/ { have = 1; c = $1 }
		have && match($0, /(step|loop)_lib[0-9]|churn_lib_work/) { lib = 1; n[substr($0, RSTART, RLENGTH)] = 1 }
		END { if (have) { t += c; if (lib) l += c }; s = ""; for (k in n) s = s (s == "" ? "" : ",") k
			print t + 0, l + 0, s }')"
fi

# ---- report --------------------------------------------------------------------------------------
# row T: the first sample at or after T seconds (the last one for T < 0).
row() {
	awk -F'\t' -v t="$1" 'NR > 1 { last = $0; if (t >= 0 && $1 >= t) { print; found = 1; exit } }
		END { if (!found) print last }' "$tmp/samples.tsv"
}
mark() { if [ "$1" = 1 ]; then echo met; else echo '**missed**'; fi; }

r_start=$(row 0)
r_warm=$(row "$warm")
r_mid=$(row $((total / 2)))
r_end=$(row -1)
# dmib NAME / dn NAME: end − warm-up end, in MiB (of a kB column) / as is.
dmib() { ev '%+.2f' "($(get "$r_end" "$1") - $(get "$r_warm" "$1")) / 1024"; }
dn() { ev '%+.0f' "$(get "$r_end" "$1") - $(get "$r_warm" "$1")"; }
dkb() { ev '%+.0f' "($(get "$r_end" "$1") - $(get "$r_warm" "$1")) / 1024"; }

kernel=$(uname -sr)
cpu_model=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
churn_line=$(grep '^churn:' "$tmp/churn.out" | sed 's/^churn: //' || echo "no summary (exit $churn_rc)")

cat <<EOF
## 9. Soak: \`profd daemon\` under churn

Generated by \`make soak\` (\`bench/soak.sh --minutes $minutes\`), separately from \`make bench\`. $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit; $cpu_model, $ncpu CPUs; $kernel. Other work ran on the machine meanwhile (load averages in the table).

\`profd daemon\` at $FREQ Hz on every CPU, interval $INTERVAL s, with its own configuration and output directory (mktemp -d) and HTTP on 127.0.0.1 (port read back from its log), for $minutes min. Beside it \`bench/soak/churn\`: 20 short-lived processes a second (fork + work + _exit, and posix_spawn of itself, alternately; each works 2 ms), 50 threads a second that work 1 ms and end, and 20 dlopen → call (2 ms of work inside the library) → dlclose a second, round-robin over four libraries (libchurn0-3.so, one build-id each). In a loop: \`curl /debug/pprof/profile?seconds=$PULL\` (a failed pull: not HTTP 200 or not a valid gzip), then, with no pull in flight, a sample of the daemon, then $GAP s of pause: a sample about every $(ev '%.0f' "$PULL + $GAP") s. Warm-up: the first $warm s.

Columns: VmRSS from /proc/PID/status, split as RssAnon (heap and anonymous memory: what a leak would grow), the BPF maps' mappings (the ring buffer, resident once the kernel has written all of it) and file mappings (binaries and debug files libdw maps), both from /proc/PID/smaps. Open fds from /proc/PID/fd: regular files (the binaries kept open for unwinding and symbolization, memfds), anonymous inodes (BPF objects, perf events), others (sockets, pipes). CPU: utime+stime of all threads (/proc/PID/stat) over the span since the row before (the start row: since launch, start-up included), in % of one CPU and of the host ($ncpu CPUs); pulls (symbolization, pprof building) are part of it. Caches and counters from /metrics.

| | t | load avg 1/5/15 min | VmRSS | RssAnon / BPF maps / files | fds: all / files / anon inodes / other | threads | CPU: one CPU / host | processes tracked | binaries open | unwind cache: tables / kB | symbol cache: binaries / open ELFs / results / kB | samples | lost |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
prev_t=$(ev '%.1f' "$t_launch - $t_ready")
prev_cpu=0
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
	printf '| %s | %s s | %s %s %s | %s MiB | %s / %s / %s MiB | %s / %s / %s / %s | %s | %s%% / %s%% | %s | %s | %s / %s | %s / %s / %s / %s | %s | %s |\n' \
		"$label" "$(ev '%.0f' "$t")" "$(get "$r" load1)" "$(get "$r" load5)" "$(get "$r" load15)" \
		"$(mib "$(get "$r" rss)")" "$(mib "$(get "$r" anon)")" "$(mib "$(get "$r" rss_bpf)")" \
		"$(mib "$(get "$r" rss_files)")" "$(get "$r" fds)" "$(get "$r" fds_files)" \
		"$(get "$r" fds_anon)" "$(get "$r" fds_other)" "$(get "$r" threads)" "$share" \
		"$(ev '%.2f' "$share / $ncpu")" "$(get "$r" procs)" "$(get "$r" binaries)" \
		"$(get "$r" unwind_entries)" "$(ev '%.0f' "$(get "$r" unwind_bytes) / 1024")" \
		"$(get "$r" sym_binaries)" "$(get "$r" sym_open_elfs)" "$(get "$r" sym_results)" \
		"$(ev '%.0f' "$(get "$r" sym_result_bytes) / 1024")" "$(get "$r" samples)" "$(get "$r" lost)"
	prev_t=$t
	prev_cpu=$cpu_s
done
printf '| **growth after warm-up** (end − warm-up end) | %s s | | %s MiB | %s / %s / %s MiB | %s / %s / %s / %s | %s | | %s | %s | %s / %s | %s / %s / %s / %s | %s | %s |\n' \
	"$(dn t)" "$(dmib rss)" "$(dmib anon)" "$(dmib rss_bpf)" "$(dmib rss_files)" "$(dn fds)" \
	"$(dn fds_files)" "$(dn fds_anon)" "$(dn fds_other)" "$(dn threads)" "$(dn procs)" "$(dn binaries)" \
	"$(dn unwind_entries)" "$(dkb unwind_bytes)" "$(dn sym_binaries)" "$(dn sym_open_elfs)" \
	"$(dn sym_results)" "$(dkb sym_result_bytes)" "$(dn samples)" "$(dn lost)"

# After warm-up, every sample: min and max of a column, and a least-squares slope per hour.
# range NAME [FROM [TO]]: "n min max slope" over the samples with FROM <= t < TO.
range() {
	awk -F'\t' -v i="${C[$1]}" -v ti="${C[t]}" -v from="${2:-$warm}" -v to="${3:-1e9}" '
		NR > 1 && $ti >= from && $ti < to {
			n++; v = $i + 0
			if (n == 1 || v < lo) lo = v
			if (n == 1 || v > hi) hi = v
			sx += $ti; sy += v; sxx += $ti * $ti; sxy += $ti * v
		}
		END {
			den = n * sxx - sx * sx
			slope = (den > 0) ? (n * sxy - sx * sy) / den * 3600 : 0
			printf "%d %d %d %.1f\n", n, lo, hi, slope
		}' "$tmp/samples.tsv"
}
read -r n_after rss_lo rss_hi rss_slope <<<"$(range rss)"
read -r _ anon_lo anon_hi anon_slope <<<"$(range anon)"
read -r _ fds_lo fds_hi _ <<<"$(range fds)"
read -r _ fdf_lo fdf_hi _ <<<"$(range fds_files)"
read -r _ fda_lo fda_hi _ <<<"$(range fds_anon)"
read -r _ fdo_lo fdo_hi _ <<<"$(range fds_other)"
read -r _ bin_lo bin_hi _ <<<"$(range binaries)"

rss_growth=$(ev '%.2f' "($(get "$r_end" rss) - $(get "$r_warm" rss)) / 1024")
anon_growth=$(ev '%.2f' "($(get "$r_end" anon) - $(get "$r_warm" anon)) / 1024")
lost_end=$(get "$r_end" lost)
fixed_fds_const=$(ev '%d' "$fda_lo == $fda_hi && $fdo_lo == $fdo_hi")

cat <<EOF

After warm-up ($n_after samples from t = $warm s to the end):
- RSS: end − warm-up end $rss_growth MiB, goal ≤ 2 MiB ($(mark "$(ev '%d' "$rss_growth <= 2")")); of it RssAnon $anon_growth MiB. Over those samples VmRSS $(mib "$rss_lo")–$(mib "$rss_hi") MiB (least-squares slope $(ev '%+.2f' "$rss_slope / 1024") MiB/h), RssAnon $(mib "$anon_lo")–$(mib "$anon_hi") MiB (slope $(ev '%+.2f' "$anon_slope / 1024") MiB/h).
- Open fds: $fds_lo–$fds_hi over those samples (end − warm-up end $(dn fds)): files $fdf_lo–$fdf_hi (they follow the binaries open, $bin_lo–$bin_hi, which follow what runs on the host), anonymous inodes $fda_lo–$fda_hi, others $fdo_lo–$fdo_hi. Goal constant: all fds $(mark "$(ev '%d' "$fds_lo == $fds_hi")"); fds other than the binaries' $(mark "$fixed_fds_const").
- Lost samples (profd_lost_samples_total): $lost_end of $(get "$r_end" samples) at the end ($(mark "$(ev '%d' "$lost_end == 0")")); bad ring-buffer records $(get "$r_end" bad_records); HTTP 5xx answers $(get "$r_end" http_5xx).
- Pulls: $pulls_ok succeeded, $pulls_failed failed ($(mark "$(ev '%d' "$pulls_failed == 0")")); $(ev '%.1f' "$pull_bytes / ($pulls_ok > 0 ? $pulls_ok : 1) / 1024") kB per profile on average, the slowest took $pull_worst s for seconds=$PULL.
- Interval files: $files in the output directory after SIGTERM (the daemon writes the partial last interval too), for $files_expected whole intervals of $INTERVAL s in the $run_s s run ($(mark "$(ev '%d' "$files >= $files_expected")")); write errors $(get "$r_end" write_errors). The last whole one, read by the real pprof: $iv_total samples, $iv_lib of them with a frame in a dlopened library (${iv_names:-none named}). Daemon exit status $daemon_rc; $warnings warning/error lines in its log.
- Churn (its own count): $churn_line.
EOF
if [ ${#fail_msgs[@]} -gt 0 ]; then
	echo "- Failed pulls (first 5): ${fail_msgs[*]:0:5}"
fi

# The span after warm-up in thirds: a leak lifts the floor (the minimum) from third to third;
# what else runs on the host moves the peaks.
cat <<EOF

After warm-up in thirds, minimum–maximum over each third's samples (a leak lifts the minimum from third to third; what else runs on the host moves the maximum):

| span | samples | VmRSS MiB | RssAnon MiB | file maps MiB | unwind cache MiB | fds | fds: files | binaries open | symbol cache: open ELFs | load 1 min |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
for k in 0 1 2; do
	from=$(ev '%.0f' "$warm + ($total - $warm) * $k / 3")
	to=$(ev '%.0f' "$warm + ($total - $warm) * ($k + 1) / 3")
	shown_to=$to
	if [ $k = 2 ]; then
		to=1e9
		shown_to=$(ev '%.0f' "$(get "$r_end" t)")
	fi
	read -r n lo hi _ <<<"$(range rss "$from" "$to")"
	[ "$n" -gt 0 ] || continue
	read -r _ alo ahi _ <<<"$(range anon "$from" "$to")"
	read -r _ flo fhi _ <<<"$(range rss_files "$from" "$to")"
	read -r _ ulo uhi _ <<<"$(range unwind_bytes "$from" "$to")"
	read -r _ dlo dhi _ <<<"$(range fds "$from" "$to")"
	read -r _ dflo dfhi _ <<<"$(range fds_files "$from" "$to")"
	read -r _ blo bhi _ <<<"$(range binaries "$from" "$to")"
	read -r _ elo ehi _ <<<"$(range sym_open_elfs "$from" "$to")"
	lmax=$(awk -F'\t' -v i="${C[load1]}" -v ti="${C[t]}" -v from="$from" -v to="$to" \
		'NR > 1 && $ti >= from && $ti < to && $i > m { m = $i } END { print m + 0 }' "$tmp/samples.tsv")
	printf '| %s–%s s | %s | %s–%s | %s–%s | %s–%s | %s–%s | %s–%s | %s–%s | %s–%s | %s–%s | ≤ %s |\n' \
		"$from" "$shown_to" "$n" "$(mib "$lo")" "$(mib "$hi")" "$(mib "$alo")" "$(mib "$ahi")" \
		"$(mib "$flo")" "$(mib "$fhi")" "$(ev '%.1f' "$ulo / 1048576")" "$(ev '%.1f' "$uhi / 1048576")" "$dlo" "$dhi" "$dflo" "$dfhi" "$blo" "$bhi" "$elo" "$ehi" "$lmax"
done

# Timeline: eleven evenly spaced samples.
cat <<EOF

Timeline (every sample: \`$SOAK/samples.tsv\` after a run):

| t | load 1 min | VmRSS | RssAnon | file maps | fds | fds: files | binaries open | processes tracked | unwind cache kB | symbol results | samples | lost |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
for i in 0 1 2 3 4 5 6 7 8 9 10; do
	r=$(row $((total * i / 10)))
	[ $i = 10 ] && r=$r_end
	printf '| %s s | %s | %s MiB | %s MiB | %s MiB | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$(ev '%.0f' "$(get "$r" t)")" "$(get "$r" load1)" "$(mib "$(get "$r" rss)")" \
		"$(mib "$(get "$r" anon)")" "$(mib "$(get "$r" rss_files)")" "$(get "$r" fds)" \
		"$(get "$r" fds_files)" "$(get "$r" binaries)" "$(get "$r" procs)" \
		"$(ev '%.0f' "$(get "$r" unwind_bytes) / 1024")" "$(get "$r" sym_results)" \
		"$(get "$r" samples)" "$(get "$r" lost)"
done
echo

rc=0
[ "$pulls_failed" = 0 ] || rc=1
[ "$pulls_ok" -gt 0 ] || rc=1
[ "$daemon_rc" = 0 ] || rc=1
note "done: pulls $pulls_ok ok / $pulls_failed failed, RSS growth after warm-up $rss_growth MiB (RssAnon $anon_growth), fds $(dn fds) (exit $rc)"
exit $rc
