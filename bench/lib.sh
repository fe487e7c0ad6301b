# SPDX-License-Identifier: MIT
# Helpers shared by the bench scripts (sourced, not run).

# "run_time_ns run_cnt" of PID's perf_event BPF program (prog_type 7), from its fd's fdinfo: the
# counters `bpftool prog show` prints, kept while kernel.bpf_stats_enabled=1.
bpf_prog_stats() {
	local fd info
	# find picks the BPF fds among thousands (every binary of the host under -a) without a
	# readlink fork each, which took seconds on a loaded machine.
	for fd in $(find /proc/"$1"/fd -lname 'anon_inode:bpf-prog' -printf '%f\n' 2>/dev/null); do
		info=$(cat /proc/"$1"/fdinfo/"$fd" 2>/dev/null) || continue
		if echo "$info" | grep -q '^prog_type:[[:space:]]*7$'; then
			echo "$info" | awk '/^run_time_ns:/ { t = $2 } /^run_cnt:/ { c = $2 } END { print t + 0, c + 0 }'
			return 0
		fi
	done
	echo "0 0"
}

# Sum of run_time_ns of every BPF program PID holds (all kinds: sampling, off-CPU, tracepoints).
# profd keeps thousands of fds open under -a: find picks the few BPF ones without a fork each.
bpf_all_ns() {
	local fd sum=0 t
	for fd in $(find /proc/"$1"/fd -lname 'anon_inode:bpf-prog' -printf '%f\n' 2>/dev/null); do
		t=$(awk '/^run_time_ns:/ { print $2 }' /proc/"$1"/fdinfo/"$fd" 2>/dev/null)
		sum=$((sum + ${t:-0}))
	done
	echo $sum
}

# Median, and "min–max", of the numbers on stdin (one per line).
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }

# An awk function for the scripts' awk programs (appended to them: awk '...'"$AWK_TOP"):
# top(b) is the three largest counts of array b as "`key` n, ..." (keys cut at 40 characters;
# "—" when b is empty). It empties b.
AWK_TOP='
function top(b,   k, s, best, bk, i) {
	s = ""
	for (i = 0; i < 3; i++) {
		best = 0; bk = ""
		for (k in b) if (b[k] > best) { best = b[k]; bk = k }
		if (bk == "") break
		s = s (s == "" ? "" : ", ") "`" substr(bk, 1, 40) "` " best
		delete b[bk]
	}
	return s == "" ? "—" : s
}'
