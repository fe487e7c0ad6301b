// SPDX-License-Identifier: MIT
/*
 * Live CFI unwinding: programs without frame pointers (ours, libstdc++ and Debian's glibc)
 * must still give whole stacks. A stack that stopped early carries a "[truncated: ...]" root
 * frame in the profile, so "reached the root" is checked from the profile itself.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

struct completeness {
	uint64_t total, complete, with_chain;
};

static struct completeness measure(const Perftools__Profiles__Profile *p, pid_t pid,
				   const char *must_contain)
{
	struct completeness c = {};
	const char *names[4096];

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		size_t n = test_sample_functions(p, s, names, 4096);
		bool truncated = false, has = false;

		if (test_sample_label_num(p, s, "pid") != pid)
			continue;
		c.total += s->value[0];
		for (size_t j = 0; j < n; j++) {
			if (!strncmp(names[j], "[truncated", 10))
				truncated = true;
			if (must_contain && strstr(names[j], must_contain))
				has = true;
		}
		/* The root of a user stack: _start (main thread) or glibc's clone3/clone (threads). */
		if (!truncated && n > 0 &&
		    (!strcmp(names[n - 1], "_start") || !strcmp(names[n - 1], "__clone3") ||
		     !strcmp(names[n - 1], "clone3") || !strcmp(names[n - 1], "__clone") ||
		     !strcmp(names[n - 1], "clone")))
			c.complete += s->value[0];
		if (has)
			c.with_chain += s->value[0];
	}
	return c;
}

/*
 * Profile workload (at 499 Hz, -p) while it does 2 s of CPU work, however much of the machine
 * it gets: it runs until it is killed, profd records from when its perf events are open until
 * SIGINT (Ctrl-C), sent once the workload's CPU time grew by 2 s, so ~1000 samples are expected.
 */
static Perftools__Profiles__Profile *record_workload(const char *workload, pid_t *ret_pid,
						     char **ret_path)
{
	char *const wl[] = { (char *)test_build_path(workload), "3600", NULL };
	char *dir = test_tmpdir(), *out = NULL, *log = NULL, pidstr[16];
	Perftools__Profiles__Profile *p;
	pid_t pid, profd;
	int status;

	cr_assert_eq(geteuid(), 0, "end-to-end tests need root");
	cr_assert(asprintf(&out, "%s/live.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F",
			       "499", "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	cr_assert(test_wait_cpu(pid, 2.0, 120), "the workload got no 2 s of CPU in 120 s");
	kill(profd, SIGINT);
	status = test_wait(profd, 60);
	test_kill(pid);
	cr_assert_eq(status, 0, "profd failed (%d): %s", status, test_slurp(log));
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	*ret_pid = pid;
	*ret_path = out;
	free(log);
	free(dir);
	return p;
}

Test(live, cxx_without_frame_pointers)
{
	pid_t pid;
	char *path;
	Perftools__Profiles__Profile *p = record_workload("workloads/cxx_nofp", &pid, &path);
	struct completeness c = measure(p, pid, "work::sort_batch");
	int st;
	char *top;

	cr_assert_gt(c.total, 500, "samples: %lu", (unsigned long)c.total);
	cr_log_info("cxx_nofp: %lu/%lu samples reached _start (%.2f%%)", (unsigned long)c.complete,
		    (unsigned long)c.total, 100.0 * c.complete / c.total);
	cr_assert_geq((double)c.complete / c.total, 0.95, "only %.1f%% of stacks reached the root",
		      100.0 * c.complete / c.total);
	/* Demangled C++ names on the path: most time is in sorting or hashing, under main. */
	cr_assert_gt(c.with_chain, c.total / 5, "work::sort_batch in %lu of %lu samples",
		     (unsigned long)c.with_chain, (unsigned long)c.total);
	test_pprof_free(p);
	top = test_pprof_tool("-top -cum -nodecount=30", path, &st);
	cr_assert_eq(st, 0, "%s", top);
	cr_assert(strstr(top, "main") && strstr(top, "_start"), "%s", top);
	free(top);
	free(path);
}

/*
 * Whether a sample of libc_heavy is the comparator called back by glibc: leaf cmp_u32, then one or
 * more frames of libc's own mapping (its qsort, whatever glibc names them), then the caller
 * sort_round, main and the root _start.
 */
static bool through_glibc_qsort(const Perftools__Profiles__Profile *p,
				const Perftools__Profiles__Sample *s, bool *ret_leaf)
{
	struct test_frame f[512];
	size_t n = test_sample_frames(p, s, f, 512), i = 1;

	*ret_leaf = n > 0 && !strcmp(f[0].name, "cmp_u32");
	if (!*ret_leaf)
		return false;
	while (i < n && strstr(f[i].mapping, "/libc.so"))
		i++;
	return i > 1 && i + 2 < n && !strcmp(f[i].name, "sort_round") &&
	       !strcmp(f[i + 1].name, "main") && !strcmp(f[n - 1].name, "_start");
}

Test(live, time_in_glibc_callbacks)
{
	pid_t pid;
	char *path;
	Perftools__Profiles__Profile *p = record_workload("workloads/libc_heavy", &pid, &path);
	struct completeness c = measure(p, pid, NULL);
	uint64_t leaf = 0, chain = 0;
	char *traces;
	int st;

	cr_assert_gt(c.total, 500);
	cr_log_info("libc_heavy: %lu/%lu samples reached _start (%.2f%%)",
		    (unsigned long)c.complete, (unsigned long)c.total, 100.0 * c.complete / c.total);
	cr_assert_geq((double)c.complete / c.total, 0.95, "only %.1f%% of stacks reached the root",
		      100.0 * c.complete / c.total);
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		bool is_leaf;

		if (test_sample_label_num(p, s, "pid") != pid)
			continue;
		if (through_glibc_qsort(p, s, &is_leaf))
			chain += s->value[0];
		if (is_leaf)
			leaf += s->value[0];
	}
	cr_log_info("libc_heavy: cmp_u32 is the leaf of %lu samples, %lu of them through glibc's "
		    "qsort to sort_round and main", (unsigned long)leaf, (unsigned long)chain);
	/*
	 * The comparator runs for a sizeable part of the work (a fifth or more of the samples
	 * here), and its stacks go on through glibc's frames (no frame pointers there: CFI) to its
	 * caller: nearly all of them carry the whole chain.
	 */
	cr_assert_geq((double)leaf / c.total, 0.10, "cmp_u32 is the leaf of %.1f%% of samples",
		      100.0 * leaf / c.total);
	cr_assert_geq((double)chain / leaf, 0.95,
		      "only %lu of %lu comparator samples go through glibc to sort_round and main",
		      (unsigned long)chain, (unsigned long)leaf);
	test_pprof_free(p);
	/* The real pprof reads the same stacks. */
	traces = test_pprof_tool("-traces", path, &st);
	cr_assert_eq(st, 0);
	cr_assert(strstr(traces, "cmp_u32") && strstr(traces, "sort_round"), "%s", traces);
	free(traces);
	free(path);
}

Test(live, through_signal_frames)
{
	pid_t pid;
	char *path;
	Perftools__Profiles__Profile *p = record_workload("workloads/signal_spin", &pid, &path);
	struct completeness c = measure(p, pid, "signal_loop");

	cr_assert_gt(c.total, 500);
	cr_log_info("signal_spin: %lu/%lu samples reached _start (%.2f%%), %lu through signal_loop",
		    (unsigned long)c.complete, (unsigned long)c.total, 100.0 * c.complete / c.total,
		    (unsigned long)c.with_chain);
	/* The handler's stacks continue past the sigreturn trampoline into the interrupted code. */
	cr_assert_geq((double)c.with_chain / c.total, 0.90, "through signal_loop: %.1f%%",
		      100.0 * c.with_chain / c.total);
	cr_assert_geq((double)c.complete / c.total, 0.90, "reached the root: %.1f%%",
		      100.0 * c.complete / c.total);
	test_pprof_free(p);
	free(path);
}

Test(live, thread_stacks)
{
	pid_t pid;
	char *path;
	Perftools__Profiles__Profile *p = record_workload("workloads/threads", &pid, &path);
	struct completeness c = measure(p, pid, "worker_main");
	static const char *const chain[] = { "worker_leaf", "worker_loop", "worker_main",
					     "start_thread" };
	uint64_t total;
	double frac;

	cr_assert_gt(c.total, 500);
	cr_log_info("threads: %lu/%lu samples reached the root (%.2f%%)", (unsigned long)c.complete,
		    (unsigned long)c.total, 100.0 * c.complete / c.total);
	cr_assert_geq((double)c.complete / c.total, 0.95, "reached the root: %.1f%%",
		      100.0 * c.complete / c.total);
	frac = test_chain_fraction(p, pid, chain, 4, &total);
	cr_assert_geq(frac, 0.90, "worker chain in %.1f%% of samples", frac * 100);
	test_pprof_free(p);
	free(path);
}
