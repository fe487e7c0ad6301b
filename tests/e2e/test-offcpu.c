// SPDX-License-Identifier: MIT
/*
 * End to end: off-CPU profiles. The workload waits in known chains (20 ms sleeps, a pipe read
 * fed every 30 ms), burns CPU in another thread and sleeps 100 µs at a time in a fourth; it
 * measures its own waits. profd's off_cpu totals must match them, the CPU profile must still
 * be the burner's, and waits under the threshold must stay out.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"

#define MAX_FRAMES 4096

static int value_index(const Perftools__Profiles__Profile *p, const char *type)
{
	for (size_t i = 0; i < p->n_sample_type; i++)
		if (!strcmp(p->string_table[p->sample_type[i]->type], type))
			return (int)i;
	return -1;
}

static bool has_chain(const struct test_frame *f, size_t n, const char *const *chain, size_t k)
{
	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;

		while (j < k && !strcmp(f[i + j].name, chain[j]))
			j++;
		if (j == k)
			return true;
	}
	return false;
}

/* Do the samples that hold `chain` all reach the root (no "[truncated: ...]" frame)? */
static bool chain_complete(const Perftools__Profiles__Profile *p, const char *const *chain,
			   size_t k)
{
	static struct test_frame frames[MAX_FRAMES];

	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_frames(p, p->sample[i], frames, MAX_FRAMES);

		if (n && has_chain(frames, n, chain, k) && !strncmp(frames[n - 1].name, "[truncated", 10))
			return false;
	}
	return true;
}

/* Sum of value `idx` over samples whose stack holds `chain` (leaf first, consecutive). */
static int64_t chain_value(const Perftools__Profiles__Profile *p, int idx,
			   const char *const *chain, size_t k)
{
	static struct test_frame frames[MAX_FRAMES];
	int64_t sum = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_frames(p, p->sample[i], frames, MAX_FRAMES);

		if (has_chain(frames, n, chain, k))
			sum += p->sample[i]->value[idx];
	}
	return sum;
}

static int64_t total_value(const Perftools__Profiles__Profile *p, int idx)
{
	int64_t sum = 0;

	for (size_t i = 0; i < p->n_sample; i++)
		sum += p->sample[i]->value[idx];
	return sum;
}

static const char *const sleep_chain[] = { "off_sleep_b", "off_sleep_a", "sleeper" };
static const char *const pipe_chain[] = { "off_pipe_b", "off_pipe_a", "piper" };
static const char *const burn_chain[] = { "off_burn_b", "off_burn_a", "burner" };
static const char *const short_chain[] = { "off_short_b", "off_short_a", "shorty" };

static Perftools__Profiles__Profile *record(const char *min, char **ret_out, double *sleep_s,
					    double *pipe_s, char **ret_path)
{
	char *out = test_out_path("off.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "--off-cpu",
			       "--off-cpu-min", (char *)min, "-F", "199", "-o", out, "--",
			       (char *)test_build_path("workloads/offcpu"), "3", NULL };
	struct run_result rr;
	unsigned long long s_ns, p_ns, shorts;
	const char *line;
	Perftools__Profiles__Profile *p;

	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	line = strstr(rr.out, "SLEEP_NS ");
	cr_assert(line && sscanf(line, "SLEEP_NS %llu PIPE_NS %llu SHORT_WAITS %llu", &s_ns, &p_ns,
				 &shorts) == 3,
		  "%s", rr.out);
	cr_assert(strstr(rr.out, "off-CPU "), "no off-CPU line in the summary: %s", rr.out);
	*sleep_s = s_ns / 1e9;
	*pipe_s = p_ns / 1e9;
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	*ret_out = strdup(rr.out);
	*ret_path = out;
	run_result_free(&rr);
	return p;
}

Test(offcpu, waits_match_what_the_workload_measured)
{
	Perftools__Profiles__Profile *p;
	double sleep_s, pipe_s, got_sleep, got_pipe, burn_frac;
	int off, samples;
	char *summary, *path, *top;

	test_require_root();
	p = record("1ms", &summary, &sleep_s, &pipe_s, &path);
	off = value_index(p, "off_cpu");
	samples = value_index(p, "samples");
	cr_assert_eq(p->n_sample_type, 3);
	cr_assert_geq(off, 0, "no off_cpu sample type");
	cr_assert_eq(value_index(p, "cpu"), 1);
	cr_assert_str_eq(p->string_table[p->default_sample_type], "cpu");

	got_sleep = chain_value(p, off, sleep_chain, 3) / 1e9;
	got_pipe = chain_value(p, off, pipe_chain, 3) / 1e9;
	cr_assert(sleep_s > 2 && pipe_s > 2, "the workload waited %.3f s and %.3f s", sleep_s,
		  pipe_s);
	cr_assert(got_sleep > sleep_s * 0.85 && got_sleep < sleep_s * 1.15,
		  "sleeps: profd %.3f s, the workload measured %.3f s", got_sleep, sleep_s);
	cr_assert(got_pipe > pipe_s * 0.85 && got_pipe < pipe_s * 1.15,
		  "pipe reads: profd %.3f s, the workload measured %.3f s", got_pipe, pipe_s);

	cr_assert(chain_complete(p, sleep_chain, 3) && chain_complete(p, pipe_chain, 3),
		  "a waiting stack did not reach the root");

	/* The CPU profile is the burner's, and a CPU sample never carries off-CPU time. */
	burn_frac = (double)chain_value(p, samples, burn_chain, 3) / total_value(p, samples);
	cr_assert_geq(burn_frac, 0.80, "burner in %.1f%% of the CPU samples", burn_frac * 100);
	cr_assert_eq(chain_value(p, off, burn_chain, 3), 0, "off-CPU time in the burner");
	for (size_t i = 0; i < p->n_sample; i++)
		cr_assert(p->sample[i]->value[samples] == 0 || p->sample[i]->value[off] == 0,
			  "a sample with both CPU and off-CPU values");
	/* 100 µs sleeps: under the 1 ms threshold, unless a busy machine delays their wakeup. */
	cr_assert_lt(chain_value(p, off, short_chain, 3) / 1e9, 1.5,
		     "100 µs waits recorded: %.3f s", chain_value(p, off, short_chain, 3) / 1e9);
	test_pprof_free(p);

	int st;

	top = test_pprof_tool("-sample_index=off_cpu -top", path, &st);
	cr_assert(top && strstr(top, "Type: off_cpu"), "%s", top ? top : "");
	free(top);
	free(test_check_with_pprof(path));
	free(summary);
	free(path);
}

/*
 * With a 1 s threshold, the 20 and 30 ms waits are gone; main's 3 s one is not. (The gap is
 * wide on purpose: this VM now and then stalls every thread for ~100 ms, which makes a 20 ms
 * sleep a 120 ms one, truly off the CPU that long.)
 */
Test(offcpu, threshold)
{
	static const char *const main_chain[] = { "main" };
	Perftools__Profiles__Profile *p;
	double sleep_s, pipe_s;
	char *summary, *path;
	int off;

	test_require_root();
	p = record("1s", &summary, &sleep_s, &pipe_s, &path);
	off = value_index(p, "off_cpu");
	cr_assert_geq(off, 0);
	cr_assert_eq(chain_value(p, off, sleep_chain, 3), 0, "20 ms sleeps recorded: %.3f s\n%s",
		     chain_value(p, off, sleep_chain, 3) / 1e9, summary);
	cr_assert_eq(chain_value(p, off, pipe_chain, 3), 0, "30 ms pipe waits recorded: %.3f s\n%s",
		     chain_value(p, off, pipe_chain, 3) / 1e9, summary);
	cr_assert_gt(chain_value(p, off, main_chain, 1) / 1e9, 2.5, "main's 3 s wait missing: %.3f s\n%s",
		     chain_value(p, off, main_chain, 1) / 1e9, summary);
	test_pprof_free(p);
	free(summary);
	free(path);
}

/* Folded stacks weighed by off_cpu: the same totals as the pprof. */
Test(offcpu, folded_by_sample_type)
{
	Perftools__Profiles__Profile *p;
	double sleep_s, pipe_s;
	char *summary, *path, *folded = test_out_path("off.folded"), *text, *line;
	int off;
	int64_t in_pprof, in_folded = 0;

	test_require_root();
	p = record("1ms", &summary, &sleep_s, &pipe_s, &path);
	off = value_index(p, "off_cpu");
	in_pprof = chain_value(p, off, sleep_chain, 3);
	test_pprof_free(p);
	char *const argv[] = { (char *)test_build_path("profd"), "convert", "-q", "--format",
			       "folded", "--sample-type", "off_cpu", "-o", folded, path, NULL };
	struct run_result rr;
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "convert failed: %s", rr.err);
	text = test_slurp(folded);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, ";sleeper;off_sleep_a;off_sleep_b;"))
			in_folded += strtoll(strrchr(line, ' ') + 1, NULL, 10);
	cr_assert_gt(in_pprof, 0);
	cr_assert_eq(in_folded, in_pprof, "folded %lld ns, pprof %lld ns", (long long)in_folded,
		     (long long)in_pprof);
	run_result_free(&rr);
	/* A type the profile does not have is an error that says so. */
	char *const bad[] = { (char *)test_build_path("profd"), "convert", "-q", "--format",
			      "folded", "--sample-type", "wall", "-o", folded, path, NULL };
	cr_assert_eq(test_run(bad, 60, &rr), 0);
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "no sample type 'wall'"), "%s", rr.err);
	run_result_free(&rr);
	free(text);
	free(folded);
	free(summary);
	free(path);
}
