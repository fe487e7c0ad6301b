// SPDX-License-Identifier: MIT
/*
 * End to end, as root with BPF: `profd record -p` samples with per-task events that follow the
 * target's new threads and children, and the adaptive stack copy copies less than the fixed
 * one without losing a stack, even one that suddenly runs deeper.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static int count_fds(pid_t pid, const char *target)
{
	char dir[64], path[512], link[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		ssize_t k;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = '\0';
		n += !strcmp(link, target);
	}
	closedir(d);
	return n;
}

/* The first child of `pid` (its main thread's), 0 while it has none. */
static pid_t first_child(pid_t pid)
{
	char path[64], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return (pid_t)atoi(buf);
}

/* Samples whose stack has function `fn`, and of those, how many have pid `pid` (if > 0). */
static uint64_t samples_in(const Perftools__Profiles__Profile *p, const char *fn, pid_t pid,
			   pid_t not_tid, uint64_t *ret_of_pid)
{
	const char *names[256];
	uint64_t n = 0, of_pid = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		size_t k = test_sample_functions(p, s, names, 256);
		bool has = false;

		for (size_t j = 0; j < k && !has; j++)
			has = !strcmp(names[j], fn);
		if (!has)
			continue;
		n += s->value[0];
		if (pid > 0 && test_sample_label_num(p, s, "pid") == pid &&
		    (not_tid <= 0 || test_sample_label_num(p, s, "tid") != not_tid))
			of_pid += s->value[0];
	}
	if (ret_of_pid)
		*ret_of_pid = of_pid;
	return n;
}

/*
 * -p PID of a process with three threads: one per-task event per thread (not one per CPU),
 * and the thread and the child process it starts while profd records are sampled too, through
 * the events they inherit.
 */
Test(pertask, follows_new_threads_and_children)
{
	char *const wl[] = { (char *)test_build_path("workloads/spawn_late"), NULL };
	char *out = test_out_path("pertask.pb.gz"), *log = test_out_path("pertask.log"), pidstr[16];
	Perftools__Profiles__Profile *p;
	uint64_t n, of;
	pid_t pid, profd, child = 0;
	char *text;
	int status, sideband;

	test_require_root();
	pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	text = test_slurp(log);
	cr_assert(strstr(text, "per-task events on 3 threads"), "not per-task: %s", text);
	free(text);
	/*
	 * Per task: one sampling event per thread, whatever the number of CPUs; besides them,
	 * the side-band's one dummy event (mmap, exec, fork, exit records) per online CPU.
	 */
	sideband = (int)sysconf(_SC_NPROCESSORS_ONLN);
	cr_assert_eq(count_fds(profd, "anon_inode:[perf_event]"), 3 + sideband);

	/* Now the late thread and the child; each gets CPU time while profd records. */
	cr_assert_eq(kill(pid, SIGUSR1), 0);
	for (double end = test_now() + 60; !(child = first_child(pid)) && test_now() < end;)
		usleep(10000);
	cr_assert_gt(child, 0, "the workload started no child");
	cr_assert(test_wait_cpu(child, 1.0, 120), "the child got no CPU");
	/* Inherited events open no fd in profd. */
	cr_assert_eq(count_fds(profd, "anon_inode:[perf_event]"), 3 + sideband);

	kill(profd, SIGINT);
	status = test_wait(profd, 60);
	cr_assert_eq(status, 0, "profd failed (%d): %s", status, test_slurp(log));
	kill(child, SIGKILL);
	test_kill(pid);

	p = test_pprof_load(out);
	cr_assert_not_null(p);
	n = samples_in(p, "early_spin", pid, 0, &of);
	cr_assert_gt(of, 0, "no samples of the threads that existed at start (%lu)", (unsigned long)n);
	n = samples_in(p, "late_spin", pid, pid, &of);
	cr_assert_gt(of, 0, "no samples of the thread started while recording (%lu)",
		     (unsigned long)n);
	n = samples_in(p, "child_spin", child, 0, &of);
	cr_assert_gt(of, 0, "no samples of the child forked while recording (%lu with that name)",
		     (unsigned long)n);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
	free(log);
}

/* "  stack copy M bytes mean, P p99 per sample (...)" from a record summary; -1 if absent. */
static double copy_mean(const char *summary)
{
	const char *l = strstr(summary, "stack copy ");

	return l ? atof(l + strlen("stack copy ")) : -1;
}

static char *record_deepen(const char *mode, char *out)
{
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "499",
			       "--stack-copy", (char *)mode, "-o", out, "--",
			       (char *)test_build_path("workloads/deepen"), "1", NULL };
	struct run_result rr;

	cr_assert_eq(test_run(argv, 120, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd --stack-copy %s failed: %s", mode, rr.err);
	free(rr.err);
	return rr.out; /* the summary */
}

/*
 * A stack that suddenly runs 20 KiB deeper than anything before it: with the adaptive copy
 * every stack of it is still complete (the copy ends at the learnt gap below the stack's end,
 * not at a learnt size), no walk runs out of its copy, and the copies are smaller on average
 * than with --stack-copy fixed.
 */
Test(pertask, adaptive_copy_never_loses_a_deeper_stack)
{
	const char *names[512];
	char *adaptive, *fixed, *out = test_out_path("deepen-adaptive.pb.gz");
	char *out_fixed = test_out_path("deepen-fixed.pb.gz");
	Perftools__Profiles__Profile *p;
	uint64_t deep = 0, deep_complete = 0;

	test_require_root();
	adaptive = record_deepen("adaptive", out);
	fixed = record_deepen("fixed", out_fixed);
	cr_assert(strstr(adaptive, "(adaptive, at most 32768)"), "%s", adaptive);
	cr_assert(strstr(fixed, "(fixed, at most 32768)"), "%s", fixed);
	cr_assert_null(strstr(adaptive, "walks ran out"), "a walk ran out of its copy: %s",
		       adaptive);
	cr_assert_lt(copy_mean(adaptive), copy_mean(fixed), "adaptive copies no less:\n%s\n%s",
		     adaptive, fixed);
	cr_assert_gt(copy_mean(adaptive), 0);

	p = test_pprof_load(out);
	cr_assert_not_null(p);
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		size_t k = test_sample_functions(p, s, names, 512);
		bool is_deep = false;

		for (size_t j = 0; j < k && !is_deep; j++)
			is_deep = !strcmp(names[j], "deep_spin");
		if (!is_deep)
			continue;
		deep += s->value[0];
		/* Complete: the walk went through all 129 frames of the recursion up to _start. */
		if (k > 130 && !strcmp(names[k - 1], "_start"))
			deep_complete += s->value[0];
	}
	/* About 499 samples in the second of deep_spin. */
	cr_assert_gt(deep, 100, "only %lu samples in deep_spin", (unsigned long)deep);
	cr_assert_eq(deep_complete, deep, "%lu of %lu deep stacks incomplete",
		     (unsigned long)(deep - deep_complete), (unsigned long)deep);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(adaptive);
	free(fixed);
	free(out);
	free(out_fixed);
}
