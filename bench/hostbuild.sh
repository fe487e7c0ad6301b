#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# hostbuild.sh: the whole host during a build, and a storm of short-lived processes, printed as
# the markdown section "Whole host during a build: short-lived processes" of BENCHMARKS.md:
#
#   1. `make -j2` of this repository (a scratch clone, built in a loop so the whole window has
#      load) under `profd record -a -F 99 -d D` and under `perf record -a -e cpu-clock -F 99
#      --call-graph dwarf,32768 -- sleep D`, interleaved rounds: user stacks complete (one
#      criterion for both, as in section 8), stacks stopped at no_mapping, lost samples, profd's
#      CPU and its side-band's records per second;
#   2. tests/workloads/storm (busy children living ~30 ms each) under `profd record -a -F 99`
#      and under `profd daemon` (a pulled profile): the share of the children's samples that
#      carry their whole chain storm_leaf ← storm_b ← storm_a ← main.
#
# Usage: bench/hostbuild.sh [--smoke] [--rounds=N] [--duration=S] [BUILD]   (BUILD: build)
# Needs root (BPF), perf, curl, git, /usr/bin/time and BUILD/profd, BUILD/pprof,
# BUILD/workloads/storm (`make bench-host` builds them). Default 3 rounds of 25 s each profiler,
# a 10 s storm each way: about 5 minutes after a warm-up build. --smoke: 1 round of 5 s, a 2 s
# storm, to check that the script runs (the figures mean nothing). Markdown to stdout, progress
# to stderr. Exits non-zero, saying which step failed, when any step fails.
set -euo pipefail

smoke=0
rounds=3
dur=25
storm_s=10
build=build
for a in "$@"; do
	case $a in
	--smoke) smoke=1 ;;
	--rounds=*) rounds=${a#--rounds=} ;;
	--duration=*) dur=${a#--duration=} ;;
	-h | --help)
		sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "hostbuild: unknown option $a (try --help)" >&2
		exit 2
		;;
	*) build=$a ;;
	esac
done
if [ $smoke = 1 ]; then
	rounds=1 dur=5 storm_s=2
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "hostbuild: --rounds wants a positive integer" >&2; exit 2; }
[[ $dur =~ ^[1-9][0-9]*$ ]] || { echo "hostbuild: --duration wants whole seconds" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$build" ] || { echo "hostbuild: no build directory $build (make builds one)" >&2; exit 1; }
build=$(cd "$build" && pwd)
PROFD=$build/profd
PPROF=$build/pprof
STORM=$build/workloads/storm
TIME=/usr/bin/time

die() {
	echo "hostbuild: $*" >&2
	exit 1
}
t_start=$EPOCHREALTIME
note() { echo "hostbuild [$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f s", b - a }')]: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (profd and perf sample every process)"
for c in perf curl git make; do
	command -v $c >/dev/null || die "$c not found (make deps)"
done
[ -x $TIME ] || die "$TIME not found (package time; make deps)"
for f in "$PROFD" "$PPROF" "$STORM"; do
	[ -x "$f" ] || die "$f missing: make BUILD=$build bench-host builds it"
done

# ---- scratch and background jobs: undone on exit ----------------------------------------------
mkdir -p "$build/bench"
tmp=$(mktemp -d "$build/bench/hostbuild.XXXXXX")
loop_pid=""
# The build loop runs in its own process group (setsid, whose id is the loop's pid): stopping it
# stops the make and compilers it started, nothing else. Other jobs: this shell's own, not yet
# waited for, so their pids cannot have been reused.
stop_loop() {
	local i
	if [ -n "$loop_pid" ]; then
		kill -TERM -- "-$loop_pid" 2>/dev/null || true
		wait "$loop_pid" 2>/dev/null || true
		# the compilers of the group end on their own signal: wait for the last (≤ 10 s)
		for i in $(seq 100); do
			kill -0 -- "-$loop_pid" 2>/dev/null || break
			sleep 0.1
		done
		loop_pid=""
	fi
}
cleanup() {
	local p
	stop_loop
	for p in $(jobs -p); do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
ev() { awk "BEGIN { printf \"$1\", ($2) }"; }
# med_rng VALUES...: "median (min–max)", or the value alone for one round.
med_rng() {
	if [ $# -eq 1 ]; then
		echo "$1"
	else
		echo "$(printf '%s\n' "$@" | median) ($(printf '%s\n' "$@" | spread))"
	fi
}
pct() { ev '%.1f' "$1 * 100 / ($2 > 0 ? $2 : 1)"; }
mark() { if [ "$1" = 1 ]; then echo met; else echo '**missed**'; fi; }
# wait_for FILE PATTERN SECONDS PID: until FILE holds PATTERN; dies when PID ended first.
wait_for() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$4" 2>/dev/null || die "$(basename "$1" .err) ended before \"$2\": $(tail -3 "$1" | tr '\n' ' ')"
		sleep 0.05
	done
	die "no \"$2\" in $1 after $3 s: $(tail -3 "$1" | tr '\n' ' ')"
}

# ---- analysis -----------------------------------------------------------------------------------
# A stack is complete when its outermost frame is the process or thread entry point (section 8).
ENTRY_RE='^(_start|__clone|clone|__clone3|clone3|start_thread)$'

# profd's pprof, read by the real pprof: `pprof -raw` (the samples of `pprof -traces
# -sample_index=samples`, with each location's mapping, so kernel frames can be told from user
# ones). A user stack is a sample with at least one frame outside [kernel.kallsyms] (profd's
# markers, e.g. "[truncated: no mapping]", count as user frames: they end a user walk).
# Prints "user complete no_mapping storm_samples storm_chain storm_pids top-incomplete".
profd_stacks() {
	local raw=$tmp/raw.txt
	: >"$tmp/unnamed"
	"$PPROF" -raw "$1" >"$raw" 2>"$tmp/pprof.err" || die "pprof -raw $1: $(tail -2 "$tmp/pprof.err")"
	awk -v re="$ENTRY_RE" '
		# pass 1: mappings and locations
		FNR == NR {
			if (/^Locations/) { sec = "l"; next }
			if (/^Mappings/) { sec = "m"; next }
			if (/^Samples/) { sec = "s"; next }
			if (sec == "m" && /^[0-9]+: 0x/) {
				k = $1; sub(/:$/, "", k); mfile[k] = $3
				if (index($0, "[kernel.kallsyms]")) kmap[k] = 1
			}
			if (sec != "l") next
			if (/^ *[0-9]+: 0x[0-9a-f]+ /) {
				id = $1; sub(/:$/, "", id)
				m = ""
				if ($3 ~ /^M=[0-9]+$/) m = substr($3, 3)
				lm[id] = m; nl[id] = 0
				l = $0; sub(/^ *[0-9]+: 0x[0-9a-f]+ (M=[0-9]+ )?/, "", l)
			} else if (/^     +[^ ]/ && id != "") {
				l = $0; sub(/^ +/, "", l)
			} else next
			sub(/ [^ ]*:-?[0-9]+ s=[0-9]+.*$/, "", l)
			fn[id, ++nl[id]] = l
			next
		}
		# pass 2: samples (count, location ids leaf first, then label lines)
		/^Samples/ { sec = "s"; next }
		/^Locations/ { flush(); sec = ""; next }
		sec != "s" { next }
		/^ *[0-9]+ +[0-9]+: / {
			flush()
			cnt = $1; n = 0
			for (i = 3; i <= NF; i++) loc[++n] = $i
			have = 1; comm = ""; pid = ""
			next
		}
		have && match($0, /comm:\[[^]]*\]/) { comm = substr($0, RSTART + 6, RLENGTH - 7) }
		have && match($0, /pid:\[[0-9]+\]/) { pid = substr($0, RSTART + 5, RLENGTH - 6) }
		function flush(   i, j, user, last, nf, f, k) {
			if (!have) return
			have = 0
			user = 0; nf = 0
			for (i = 1; i <= n; i++) {
				if (!(lm[loc[i]] in kmap)) user = 1
				for (j = 1; j <= nl[loc[i]]; j++) f[++nf] = fn[loc[i], j]
			}
			lastfile = n ? mfile[lm[loc[n]]] : ""
			if (comm == "storm-child") {
				st += cnt; spid[pid] = 1
				for (k = 1; k + 3 <= nf; k++)
					if (f[k] == "storm_leaf" && f[k + 1] == "storm_b" && f[k + 2] == "storm_a" && f[k + 3] == "main") {
						sc += cnt; break
					}
			}
			if (!user) return
			last = f[nf]
			total += cnt
			if (last ~ re) ok += cnt
			else bad[last] += cnt
			if (last == "[truncated: no mapping]") nomap += cnt
			# an address in a binary without symbols ("dash+0x4781"): file and file offset
			if (last ~ /^[^ ]+\+0x[0-9a-f]+$/ && lastfile != "")
				unnamed[lastfile " " substr(last, index(last, "+0x") + 1)] += cnt
		}
		END {
			flush()
			np = 0; for (p in spid) np++
			print total + 0, ok + 0, nomap + 0, st + 0, sc + 0, np, top(bad)
			for (k in unnamed) print unnamed[k], k > side
		}'"$AWK_TOP" side="$tmp/unnamed" "$raw" "$raw"
}

# perf: `perf script -F comm,tid,ip,sym --no-inline` blocks (header, then one frame a line, leaf
# first; kernel frames at addresses 0xffff...). A user stack is a sample with at least one user
# frame, or whose kernel chain was entered from user mode (a system call, fault or interrupt of
# a user task) yet carries no user frame: perf could not unwind that user stack (counted
# incomplete). Prints "user complete top-incomplete".
perf_stacks() {
	: >"$tmp/unnamed"
	perf script -F comm,tid,ip,sym,dso --no-inline -i "$1" 2>"$tmp/script.err" | awk -v re="$ENTRY_RE" -v side="$tmp/unnamed" '
		BEGIN { RS = ""; FS = "\n"; fromuser = "^(entry_SYSCALL_64.*|asm_exc_.*|asm_sysvec_.*|asm_common_interrupt)$" }
		{
			nu = 0; last = ""; klast = ""
			for (i = 2; i <= NF; i++) {
				l = $i; sub(/^[ \t]+/, "", l)
				ip = l; sub(/ .*/, "", ip)
				dso = ""
				if (match(l, / \([^ ]*\)$/)) { dso = substr(l, RSTART + 2, RLENGTH - 3); l = substr(l, 1, RSTART - 1) }
				sym = l; sub(/^[0-9a-f]+ ?/, "", sym)
				if (length(ip) == 16 && ip ~ /^ffff/) { klast = sym; continue }
				nu++; last = sym; lastip = ip; lastdso = dso
			}
			if (nu == 0) {
				if (klast !~ fromuser) next
				last = "(no user frame, from " klast ")"
			}
			total++
			if (last ~ re) ok++; else bad[last]++
			# an address in a binary without symbols: file and address in it
			if (nu && last == "[unknown]" && lastdso ~ /^\//) unnamed[lastdso " 0x" lastip]++
		}
		END {
			print total + 0, ok + 0, top(bad)
			for (k in unnamed) print unnamed[k], k > side
		}'"$AWK_TOP"
	[ "${PIPESTATUS[0]}" = 0 ] || die "perf script -i $1: $(tail -2 "$tmp/script.err")"
}

# at_entry off|vaddr: of the incomplete stacks whose outermost frame is an unnamed address in a
# binary without symbols (lines "COUNT FILE 0xADDR" in $tmp/unnamed; profd names a file offset,
# perf an address of the ELF image), how many stopped inside _start: within 64 bytes after the
# ELF entry point (e_entry; as a file offset through the LOAD segment holding it). A binary
# gone since (the scratch build's) counts as not at its entry.
at_entry() {
	awk -v mode="$1" '
		function entry(f,   cmd, l, e, a, off) {
			if (f in ent) return ent[f]
			ent[f] = -1
			cmd = "readelf -hlW \"" f "\" 2>/dev/null"
			while ((cmd | getline l) > 0) {
				if (l ~ /Entry point address:/) { split(l, a, ":"); e = hex(a[2]) }
				else if (l ~ /^ *LOAD / && e != "") {
					split(l, a, " ")
					# a[2] offset, a[3] vaddr, a[6] memsz
					if (e >= hex(a[3]) && e < hex(a[3]) + hex(a[6]))
						ent[f] = mode == "off" ? e - hex(a[3]) + hex(a[2]) : e
				}
			}
			close(cmd)
			return ent[f]
		}
		function hex(h,   i, c, v) {
			h = tolower(h); sub(/^ +/, "", h); sub(/^0x/, "", h); v = 0
			for (i = 1; i <= length(h); i++) {
				c = index("0123456789abcdef", substr(h, i, 1))
				if (!c) break
				v = v * 16 + c - 1
			}
			return v
		}
		{ e = entry($2); a = hex($3); if (e >= 0 && a >= e && a < e + 64) n += $1 }
		END { print n + 0 }' "$tmp/unnamed"
}

# ---- 1. the build ---------------------------------------------------------------------------------
src=$tmp/src
bdir=$src/build-bench
commit=$(git -C "$repo" rev-parse --short HEAD)
note "cloning $repo ($commit) into $src"
git clone -q "$repo" "$src" 2>"$tmp/clone.err" || die "git clone $repo: $(tail -2 "$tmp/clone.err")"

one_build() {
	rm -rf "$bdir"
	make -C "$src" -j2 BUILD="$bdir" all >"$tmp/make.log" 2>&1
}
note "warm-up build (compiler and sources into the page cache)"
t0=$EPOCHREALTIME
one_build || die "make -j2 of the scratch clone failed: $(tail -5 "$tmp/make.log" | tr '\n' ' ')"
build_s=$(ev '%.1f' "$EPOCHREALTIME - $t0")
note "one build: $build_s s"

# Builds in a loop in its own process group; each finished build appends a line to builds.
start_loop() {
	: >"$tmp/builds"
	setsid bash -c '
		while :; do
			rm -rf "$2"
			make -C "$1" -j2 BUILD="$2" all >"$3/loop.log" 2>&1 || exit 1
			echo done >>"$3/builds"
		done' loop "$src" "$bdir" "$tmp" &
	loop_pid=$!
	sleep 2
	kill -0 "$loop_pid" 2>/dev/null || die "the build loop failed at once: $(tail -5 "$tmp/loop.log" | tr '\n' ' ')"
}
# Stops the loop; dies when it had failed on its own (a build error) before the window ended.
end_loop() {
	kill -0 "$loop_pid" 2>/dev/null ||
		die "a build failed during the window: $(tail -5 "$tmp/loop.log" | tr '\n' ' ')"
	stop_loop
	rm -rf "$bdir" || die "cannot remove $bdir"
}

declare -A R
load0=$(loadavg)
for r in $(seq "$rounds"); do
	# profd
	note "round $r/$rounds: profd record -a -F 99 -d $dur during make -j2"
	start_loop
	rc=0
	$TIME -f '%U %S %e' -o "$tmp/profd.time" "$PROFD" record -a -F 99 -d "$dur" -o "$tmp/p.pb.gz" \
		>"$tmp/p.sum" 2>"$tmp/p.err" || rc=$?
	builds=$(wc -l <"$tmp/builds")
	end_loop
	[ $rc = 0 ] || die "profd record -a failed ($rc): $(tail -3 "$tmp/p.err" | tr '\n' ' ')"
	s=$(cat "$tmp/p.sum")
	own=$(sed -n 's/^ *complete *\([0-9.]*\)% of \([0-9]*\) user stacks.*/\1 \2/p' <<<"$s")
	[ -n "$own" ] || die "no \"complete\" line in profd's summary: $s"
	R[p.own]+="${own% *} "
	R[p.ownn]+="${own#* } "
	nm=$(sed -n '/^ *stopped/s/.* no_mapping \([0-9]*\).*/\1/p' <<<"$s")
	R[p.nomap_sum]+="${nm:-0} "
	R[p.lost]+="$(sed -n 's/^ *samples *[0-9]* (lost \([0-9]*\)).*/\1/p' <<<"$s") "
	R[p.samples]+="$(sed -n 's/^ *samples *\([0-9]*\) .*/\1/p' <<<"$s") "
	sb=$(sed -n 's/^ *side-band *\([0-9]*\) records (\([0-9]*\) mappings, \([0-9]*\) forks, \([0-9]*\) execs, \([0-9]*\) exits), \([0-9]*\) lost.*/\1 \2 \3 \4 \5 \6/p' <<<"$s")
	[ -n "$sb" ] || die "no side-band line in profd's summary: $s"
	el=$(sed -n 's/^ *duration *\([0-9.]*\) s.*/\1/p' <<<"$s")
	read -r sbn sbm sbf sbe sbx sbl <<<"$sb"
	R[p.sbrate]+="$(ev '%.0f' "$sbn / $el") "
	R[p.sbmix]="$sbm mappings, $sbf forks, $sbe execs, $sbx exits"
	R[p.sblost]+="$sbl "
	read -r u sy wall <"$tmp/profd.time"
	R[p.cpu]+="$(ev '%.2f' "$u + $sy") "
	R[p.cpupct]+="$(ev '%.2f' "($u + $sy) * 100 / $wall") "
	profd_stacks "$tmp/p.pb.gz" >"$tmp/stacks"
	read -r tot ok nomap _ _ _ top <"$tmp/stacks"
	R[p.user]+="$tot "
	R[p.pct]+="$(pct "$ok" "$tot") "
	R[p.pcte]+="$(pct "$((ok + $(at_entry off)))" "$tot") "
	R[p.nomap]+="$nomap "
	R[p.top]=$top
	R[p.builds]+="$builds "

	# perf
	note "round $r/$rounds: perf record -a --call-graph dwarf -F 99 -- sleep $dur during make -j2"
	start_loop
	rc=0
	$TIME -f '%U %S %e' -o "$tmp/perf.time" perf record -q -N -a -e cpu-clock -F 99 \
		--call-graph dwarf,32768 -o "$tmp/perf.data" -- sleep "$dur" >/dev/null 2>"$tmp/perf.err" || rc=$?
	builds=$(wc -l <"$tmp/builds")
	end_loop
	[ $rc = 0 ] || die "perf record -a failed ($rc): $(tail -3 "$tmp/perf.err" | tr '\n' ' ')"
	perf_stacks "$tmp/perf.data" >"$tmp/stacks"
	read -r tot ok top <"$tmp/stacks"
	R[f.user]+="$tot "
	R[f.pct]+="$(pct "$ok" "$tot") "
	R[f.pcte]+="$(pct "$((ok + $(at_entry vaddr)))" "$tot") "
	R[f.top]=$top
	st=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null) || die "perf report --stats failed"
	R[f.samples]+="$(awk '/SAMPLE events:/ { print $3; exit }' <<<"$st") "
	R[f.lost]+="$(awk '/^ *LOST_SAMPLES events:/ { n = $3 } END { print n + 0 }' <<<"$st") "
	R[f.lostrec]+="$(awk '/^ *LOST events:/ { n = $3 } END { print n + 0 }' <<<"$st") "
	R[f.size]+="$(ev '%.0f' "$(stat -c %s "$tmp/perf.data") / 1e6") "
	read -r u sy wall <"$tmp/perf.time"
	R[f.cpu]+="$(ev '%.2f' "$u + $sy") "
	R[f.builds]+="$builds "
	rm -f "$tmp/perf.data" "$tmp/p.pb.gz"
done

# ---- 2. the storm ---------------------------------------------------------------------------------
storm_ms=30
load1=$(loadavg)
note "storm: $storm_s s of ${storm_ms} ms children under profd record -a -F 99"
"$PROFD" record -a -F 99 -d $((storm_s + 8)) -o "$tmp/s.pb.gz" >"$tmp/s.sum" 2>"$tmp/s.err" &
sp=$!
wait_for "$tmp/s.err" "profd: sampling" 60 "$sp"
"$STORM" "$storm_s" "$storm_ms" 0.5 >"$tmp/storm.out" 2>"$tmp/storm.err" ||
	die "storm failed: $(cat "$tmp/storm.err")"
kill -0 "$sp" 2>/dev/null || die "profd record's window closed before the storm ended (-d too short here)"
rc=0
wait "$sp" || rc=$?
[ $rc = 0 ] || die "profd record -a (storm) failed ($rc): $(tail -3 "$tmp/s.err" | tr '\n' ' ')"
children_rec=$(sed -n 's/^\([0-9]*\) children$/\1/p' "$tmp/storm.err")
profd_stacks "$tmp/s.pb.gz" >"$tmp/stacks"
read -r _ _ _ s_tot s_ok s_pids _ <"$tmp/stacks"
s_sb=$(sed -n 's/^ *side-band *\(.*\)/\1/p' "$tmp/s.sum")

note "storm: $storm_s s of ${storm_ms} ms children under profd daemon (a pulled profile)"
mkdir -p "$tmp/dout"
cat >"$tmp/daemon.conf" <<EOF
interval = 3600
output_dir = $tmp/dout
listen = 127.0.0.1:0
frequency = 99
EOF
"$PROFD" daemon --config "$tmp/daemon.conf" >"$tmp/daemon.err" 2>&1 &
dp=$!
wait_for "$tmp/daemon.err" "Profiling all CPUs" 60 "$dp"
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$tmp/daemon.err" | head -1)
addr=${addr%.}
[ -n "$addr" ] || die "no listen address in the daemon's log: $(cat "$tmp/daemon.err")"
cpu0=$(awk '{ print $14 + $15 }' /proc/$dp/stat)
pull_s=$((storm_s + 2))
curl -sS -f -o "$tmp/d.pb.gz" "http://$addr/debug/pprof/profile?seconds=$pull_s" 2>"$tmp/curl.err" &
cp=$!
"$STORM" "$storm_s" "$storm_ms" 1 >"$tmp/storm.out" 2>"$tmp/storm.err" ||
	die "storm failed: $(cat "$tmp/storm.err")"
rc=0
wait "$cp" || rc=$?
[ $rc = 0 ] || die "pulling a profile from the daemon failed: $(cat "$tmp/curl.err")"
cpu1=$(awk '{ print $14 + $15 }' /proc/$dp/stat)
curl -sS -f "http://$addr/metrics" >"$tmp/metrics" 2>"$tmp/curl.err" ||
	die "GET /metrics failed: $(cat "$tmp/curl.err")"
kill -TERM "$dp"
rc=0
wait "$dp" || rc=$?
[ $rc = 0 ] || die "profd daemon exited with $rc: $(tail -3 "$tmp/daemon.err" | tr '\n' ' ')"
children_dmn=$(sed -n 's/^\([0-9]*\) children$/\1/p' "$tmp/storm.err")
profd_stacks "$tmp/d.pb.gz" >"$tmp/stacks"
read -r _ _ _ d_tot d_ok d_pids _ <"$tmp/stacks"
metric() { awk -v m="$1" '$1 == m { print $2 }' "$tmp/metrics"; }
d_sbn=$(metric profd_sideband_records_total)
d_sbl=$(metric profd_sideband_lost_total)
d_cpu=$(ev '%.2f' "($cpu1 - $cpu0) / $(getconf CLK_TCK)")

# ---- report ---------------------------------------------------------------------------------------
v() { med_rng ${R[$1]}; }
p_med=$(printf '%s\n' ${R[p.pct]} | median)
f_med=$(printf '%s\n' ${R[f.pct]} | median)
s_share=$(pct "$s_ok" "$s_tot")
d_share=$(pct "$d_ok" "$d_tot")
cat <<EOF
## Whole host during a build: short-lived processes

Generated by \`bench/hostbuild.sh\`$([ $smoke = 1 ] && echo ' **in --smoke mode: figures are meaningless**'). Linux $(uname -r), $(nproc) CPUs; repository at $commit (the scratch clone builds that commit; profd is \`$PROFD\`); perf $(perf --version 2>/dev/null | sed 's/^perf version //'); load at start (/proc/loadavg): $load0; $(date -u '+%Y-%m-%d %H:%M UTC').

### \`make -j2\` of this repository, whole host

A scratch \`git clone\` of the repository, \`make -j2 BUILD=... all\` in a loop (the build directory removed before each build; one untimed warm-up build first: $build_s s) so that the whole window has load, started 2 s before the profiler. Then \`profd record -a -F 99 -d $dur\` under \`/usr/bin/time\`, and \`perf record -a -e cpu-clock -F 99 --call-graph dwarf,32768 -- sleep $dur\`, $rounds round(s) interleaved; median (min–max) over the rounds. One criterion for both, as in section 8: a user stack is complete when its outermost frame is \`_start\`, \`clone\`, \`__clone\`, \`clone3\`, \`__clone3\` or \`start_thread\`; every process counts (the profilers' own included). profd's user stacks: samples with a frame outside the kernel, read from its pprof by the real pprof (\`pprof -raw\`: the samples of \`pprof -traces -sample_index=samples\` with each frame's mapping); its own summary ("complete X% of N user stacks reached the root") beside it. perf's: \`perf script -F comm,tid,ip,sym --no-inline\`, samples with a user frame, or entered the kernel from user mode (system call, fault, interrupt) with none (perf could not unwind that user stack: incomplete). Goal: ≥ 99% of user stacks complete.

| | profd record -a | perf record -a --call-graph dwarf |
|---|---:|---:|
| builds finished in the window | $(v p.builds) | $(v f.builds) |
| samples | $(v p.samples) | $(v f.samples) |
| user stacks | $(v p.user) | $(v f.user) |
| user stacks complete, goal ≥ 99% | $(v p.pct)% ($(mark "$(ev '%d' "$p_med >= 99")")) | $(v f.pct)% |
| the same, counting an unnamed outermost address inside \`_start\` of a binary without symbols | $(v p.pcte)% | $(v f.pcte)% |
| profd's own "complete" (of N user stacks) | $(v p.own)% of $(v p.ownn) | — |
| stopped at no_mapping: summary / profile | $(v p.nomap_sum) / $(v p.nomap) | — |
| lost samples | $(v p.lost) | $(v f.lost) (LOST records: $(v f.lostrec)) |
| profiler CPU (user+sys, whole run) | $(v p.cpu) s = $(v p.cpupct)% of one CPU | $(v f.cpu) s (perf record alone; \`perf script\` afterwards not counted) |
| side-band records/s (lost) | $(v p.sbrate) ($(v p.sblost) lost) | — |
| output | pprof | $(v f.size) MB perf.data |

Side-band mix of the last profd round: ${R[p.sbmix]}. Incomplete, outermost frames (last round): profd ${R[p.top]}; perf ${R[f.top]}. profd median $p_med%, perf median $f_med%. Stripped binaries (\`dash\`, binutils' \`as\`) have no \`_start\` symbol: a walk that reached their entry ends in an address (profd: \`dash+0x4781\`, perf: \`[unknown]\`); the second row counts such a stack complete when that address lies within 64 bytes after the binary's ELF entry point (\`readelf -h\`, read after the run: binaries of the scratch build are gone by then and are not counted).

### A storm of short-lived processes

\`storm $storm_s $storm_ms\`: one child at a time, each spinning ${storm_ms} ms of CPU in \`storm_leaf\` ← \`storm_b\` ← \`storm_a\` ← \`main\` (comm \`storm-child\`; half exec the program again, half only fork). Share of the children's samples whose frames hold that whole chain. Goal ≥ 97%. Load at start: $load1.

| under | children run | children sampled | child samples | carry their full chain, goal ≥ 97% | side-band |
|---|---:|---:|---:|---|---|
| \`profd record -a -F 99\` (storm started once profd samples) | ${children_rec:-?} | $s_pids | $s_tot | $s_share% ($(mark "$(ev '%d' "$s_share >= 97")")) | $s_sb |
| \`profd daemon\` (frequency 99), \`GET /debug/pprof/profile?seconds=$pull_s\`, storm from 1 s in | ${children_dmn:-?} | $d_pids | $d_tot | $d_share% ($(mark "$(ev '%d' "$d_share >= 97")")) | ${d_sbn:-?} records (/metrics, since start), ${d_sbl:-?} lost; daemon CPU during the pull $d_cpu s |

EOF
note "done"
