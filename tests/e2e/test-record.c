// SPDX-License-Identifier: MIT
/*
 * End to end: build/profd record against real workloads, with BPF, as root. Every profile
 * written here is decoded by us and also opened by the real pprof tool.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static const char *const chain[] = { "chain_leaf", "chain_c", "chain_b", "chain_a", "main" };

static unsigned file_mode(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_assert(S_ISREG(st.st_mode), "%s is not a regular file", path);
	return st.st_mode & 07777;
}

Test(record, pid_chain)
{
	/* Runs until killed: it outlives the recording however long profd takes to start. */
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
	char *out = test_out_path("pid.pb.gz"), pidstr[16];
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	pid_t pid;
	char *traces;

	test_require_root();
	pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "3", "-o", out, NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	cr_assert(strstr(rr.out, "Top 10 functions") || strstr(rr.out, "Top "), "no summary: %s",
		  rr.out);
	cr_assert_eq(kill(pid, 0), 0, "the workload died while profiled");
	test_kill(pid);

	p = test_pprof_load(out);
	cr_assert_not_null(p, "cannot decode %s", out);
	frac = test_chain_fraction(p, pid, chain, 5, &total);
	/*
	 * 199 Hz for 3 s of a busy thread is ~600 samples on an idle machine; a loaded one gives
	 * the workload less CPU, so only a clear shortfall fails.
	 */
	cr_assert_gt(total, 100, "too few samples of the workload: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100, (unsigned long)total);
	cr_assert_eq(p->period, 1000000000 / 199);
	cr_assert_eq(p->n_sample_type, 2);
	test_pprof_free(p);
	cr_assert_eq(file_mode(out), 0600, "mode %o: the profile must be owner-only",
		     file_mode(out));

	traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "chain_leaf") && strstr(traces, "chain_a"), "%s", traces);
	free(traces);
	run_result_free(&rr);
	free(out);
}

Test(record, command_mode)
{
	char *out = test_out_path("cmd.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "199", "-o", out, "--",
			       (char *)test_build_path("workloads/chain"), "2", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	char *traces;

	test_require_root();
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	frac = test_chain_fraction(p, 0, chain, 5, &total);
	cr_assert_gt(total, 150, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100, (unsigned long)total);
	/* Labels: process name and thread name are the workload's. */
	cr_assert_str_eq(test_sample_label_str(p, p->sample[0], "process"), "chain");
	cr_assert_gt(test_sample_label_num(p, p->sample[0], "tid"), 0);
	test_pprof_free(p);
	traces = test_check_with_pprof(out);
	free(traces);
	run_result_free(&rr);
	free(out);
}

/*
 * Every --stack-bytes the CLI accepts loads and samples: the size is a constant of the BPF
 * program (rodata), and the verifier once rejected all but the default. Sizes that cover the
 * chain's stack walk it whole.
 */
Test(record, stack_bytes_sizes)
{
	static const char *const sizes[] = { "512", "4096", "12345", "65536" };

	test_require_root();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *out = test_out_path("sb.pb.gz");
		char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "199",
				       "--stack-bytes", (char *)sizes[i], "-o", out, "--",
				       (char *)test_build_path("workloads/chain"), "1", NULL };
		struct run_result rr;
		Perftools__Profiles__Profile *p;
		uint64_t total;
		double frac;

		cr_assert_eq(test_run(argv, 60, &rr), 0);
		cr_assert_eq(rr.status, 0, "--stack-bytes %s: %s", sizes[i], rr.err);
		p = test_pprof_load(out);
		cr_assert_not_null(p, "--stack-bytes %s: no profile", sizes[i]);
		frac = test_chain_fraction(p, 0, chain, 5, &total);
		cr_assert_gt(total, 50, "--stack-bytes %s: %lu samples", sizes[i],
			     (unsigned long)total);
		if (atoi(sizes[i]) >= 4096)
			cr_assert_geq(frac, 0.90, "--stack-bytes %s: chain in %.1f%% of %lu", sizes[i],
				      frac * 100, (unsigned long)total);
		test_pprof_free(p);
		run_result_free(&rr);
		free(out);
	}
}

/*
 * The target is killed while profd records it for 600 s: recording ends with it and writes
 * the profile, well before the duration (profd is given 60 s for that).
 */
Test(record, target_exits_mid_record)
{
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
	char *dir = test_tmpdir(), *out = NULL, *log = NULL, pidstr[16];
	Perftools__Profiles__Profile *p;
	struct stat st;
	pid_t pid, profd;
	int status;

	test_require_root();
	cr_assert(asprintf(&out, "%s/exit.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-d", "600",
			       "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	cr_assert(test_wait_cpu(pid, 0.5, 120), "the workload got no CPU");
	test_kill(pid);
	status = test_wait(profd, 60);
	cr_assert_eq(status, 0, "profd did not end with its target (%d): %s", status,
		     test_slurp(log));
	cr_assert_eq(stat(out, &st), 0, "no profile written");
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert_gt(p->n_sample, 0);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
	free(log);
	free(dir);
}

/*
 * Profiles name every profiled process's functions and commands, raw captures hold their stack
 * bytes: record and convert write them 0600 whatever the umask, replacing a 0644 file.
 */
Test(record, outputs_are_owner_only)
{
	char *dir = test_tmpdir(), *out, *raw, *conv, *folded;
	struct run_result rr;
	mode_t old;

	test_require_root();
	cr_assert(asprintf(&out, "%s/p.pb.gz", dir) > 0);
	cr_assert(asprintf(&raw, "%s/p.raw", dir) > 0);
	cr_assert(asprintf(&conv, "%s/conv.pb.gz", dir) > 0);
	cr_assert(asprintf(&folded, "%s/conv.folded", dir) > 0);
	FILE *f = fopen(out, "we");
	cr_assert_not_null(f);
	fclose(f);
	cr_assert_eq(chmod(out, 0644), 0);

	old = umask(0);
	char *const rec[] = { (char *)test_build_path("profd"), "record", "-F", "99", "-q", "-o", out,
			      "--", (char *)test_build_path("workloads/chain"), "0.5", NULL };
	cr_assert_eq(test_run(rec, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd record failed: %s", rr.err);
	run_result_free(&rr);
	char *const rec_raw[] = { (char *)test_build_path("profd"), "record", "-F", "99", "-q",
				  "--raw", raw, "--", (char *)test_build_path("workloads/chain"),
				  "0.5", NULL };
	cr_assert_eq(test_run(rec_raw, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd record --raw failed: %s", rr.err);
	run_result_free(&rr);
	char *const cv[] = { (char *)test_build_path("profd"), "convert", raw, "-q", "-o", conv, NULL };
	cr_assert_eq(test_run(cv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd convert failed: %s", rr.err);
	run_result_free(&rr);
	char *const cvf[] = { (char *)test_build_path("profd"), "convert", raw, "-q", "-f", "folded",
			      "-o", folded, NULL };
	cr_assert_eq(test_run(cvf, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd convert -f folded failed: %s", rr.err);
	run_result_free(&rr);
	umask(old);

	cr_assert_eq(file_mode(out), 0600, "record -o: mode %o", file_mode(out));
	cr_assert_eq(file_mode(raw), 0600, "record --raw: mode %o", file_mode(raw));
	cr_assert_eq(file_mode(conv), 0600, "convert: mode %o", file_mode(conv));
	cr_assert_eq(file_mode(folded), 0600, "convert -f folded: mode %o", file_mode(folded));
	free(test_check_with_pprof(conv));
	free(raw);
	cr_assert(asprintf(&raw, "rm -rf '%s'", dir) > 0 && system(raw) == 0);
	free(raw);
	free(out);
	free(conv);
	free(folded);
	free(dir);
}

Test(record, unprivileged_fails_clearly)
{
	char *out = test_out_path("unpriv.pb.gz");
	/* Root without any capability: the bounding set is emptied before exec. */
	char *const argv[] = { "/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all",
			       (char *)test_build_path("profd"), "record", "-p", "1", "-d", "1", "-o",
			       out, NULL };
	struct run_result rr;
	struct stat st;

	test_require_root();
	cr_assert_eq(test_run(argv, 30, &rr), 0);
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "CAP_BPF") != NULL, "message does not name the capability: %s",
		  rr.err);
	cr_assert_neq(stat(out, &st), 0, "a profile was left behind");
	run_result_free(&rr);
	free(out);
}

Test(record, bad_input_errors)
{
	struct {
		const char *args[8];
		const char *expect;
	} cases[] = {
		{ { "-p", "12abc", "-d", "1" }, "Invalid PID" },
		{ { "-p", "1,,0", "-d", "1" }, "Invalid PID" },
		{ { "-p", "4000000", "-d", "1" }, "does not exist" },
		{ { "-p", "1", "-F", "0" }, "Invalid frequency" },
		{ { "-p", "1", "--stack-bytes", "70000" }, "Invalid --stack-bytes" },
		{ { "-p", "1", "-a" }, "exactly one target" },
		{ { "-p", "1", "-d", "1", "-o", "/nonexistent/dir/x.pb.gz" }, "Cannot write the output" },
		{ { "-p", "1", "-d", "-3" }, "Invalid duration" },
	};

	test_require_root();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[12] = { (char *)test_build_path("profd"), "record" };
		struct run_result rr;
		size_t n = 2;

		for (size_t j = 0; cases[i].args[j]; j++)
			argv[n++] = (char *)cases[i].args[j];
		argv[n] = NULL;
		cr_assert_eq(test_run(argv, 30, &rr), 0);
		cr_assert_neq(rr.status, 0, "case %zu succeeded", i);
		cr_assert(strstr(rr.err, cases[i].expect) != NULL, "case %zu: expected '%s' in: %s", i,
			  cases[i].expect, rr.err);
		run_result_free(&rr);
	}
}

Test(record, help_and_version)
{
	char *const h[] = { (char *)test_build_path("profd"), "record", "--help", NULL };
	char *const v[] = { (char *)test_build_path("profd"), "--version", NULL };
	struct run_result rr;

	cr_assert_eq(test_run(h, 10, &rr), 0);
	cr_assert_eq(rr.status, 0);
	cr_assert(strstr(rr.out, "--stack-bytes") != NULL);
	run_result_free(&rr);
	cr_assert_eq(test_run(v, 10, &rr), 0);
	cr_assert_eq(rr.status, 0);
	cr_assert(strncmp(rr.out, "profd ", 6) == 0);
	run_result_free(&rr);
}

Test(record, whole_host_and_ctrl_c)
{
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
	char *out = test_out_path("all.pb.gz"), *log = test_out_path("all.log");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", "99", "-q",
			       "-o", out, NULL };
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	pid_t wpid, ppid;
	int status;
	bool others = false;

	test_require_root();
	wpid = test_spawn(wl);
	cr_assert_gt(wpid, 0);
	ppid = test_spawn_logged(argv, log, NULL);
	/* Sampling, and the workload did 1 s of work since (~99 samples), however busy the host. */
	cr_assert(test_wait_sampling(ppid, 60), "profd did not start sampling: %s", test_slurp(log));
	cr_assert(test_wait_cpu(wpid, 1.0, 120), "the workload got no 1 s of CPU in 120 s");
	/* Ctrl-C: recording ends and the profile is written, exit status 0. */
	kill(ppid, SIGINT);
	status = test_wait(ppid, 60);
	cr_assert_eq(status, 0, "status %d: %s", status, test_slurp(log));
	test_kill(wpid);

	p = test_pprof_load(out);
	cr_assert_not_null(p);
	frac = test_chain_fraction(p, wpid, chain, 5, &total);
	cr_assert_gt(total, 20, "workload samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100, (unsigned long)total);
	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t pid = test_sample_label_num(p, p->sample[i], "pid");

		/* profd never profiles itself. */
		cr_assert_neq(pid, ppid);
		if (pid != wpid)
			others = true;
	}
	(void)others; /* an idle host may have nothing else on CPU: not asserted */
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
	free(log);
}

Test(record, kernel_frames_named)
{
	/*
	 * A workload that lives in the kernel: dd copying /dev/zero to /dev/null, ended by
	 * SIGXCPU after 2 s of CPU time (not of wall time: the same work on a busy host).
	 * Where its ticks land depends on the kernel build and the hypervisor (a paravirtualized
	 * guest takes many of them in pvm_irq_enable on the syscall path), so the reference is
	 * perf recording the same workload on this machine, in this test: profd's share of
	 * samples in the kernel, and of samples whose leaf is read_zero, within 10 points of
	 * perf's. A user/kernel decision made from the wrong memory blames libc's read() for the
	 * kernel's time and fails here on any machine.
	 */
	static const char workload[] = "/usr/bin/prlimit --cpu=2:10 /bin/dd if=/dev/zero "
				       "of=/dev/null bs=64k";
	char *out = test_out_path("kernel.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "499", "-q", "-o", out,
			       "--", "/usr/bin/prlimit", "--cpu=2:10", "/bin/dd", "if=/dev/zero",
			       "of=/dev/null", "bs=64k", NULL };
	struct perf_leaf_counts perf;
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t read_path = 0, in_kernel = 0, leaf_read_zero = 0, total = 0, kframes = 0,
		 kframes_named = 0;
	double perf_kernel, perf_rz, profd_kernel, profd_rz;
	const char *names[512];

	test_require_root();
	test_perf_leaf_counts(workload, 499, "read_zero", &perf);
	cr_assert_gt(perf.total, 100, "perf took only %lu samples of dd", perf.total);
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		size_t n = test_sample_functions(p, s, names, 512);
		bool kernel = false;

		total += s->value[0];
		/* Kernel frames: locations of the [kernel.kallsyms] mapping; named unless the
		 * symbolizer fell back to "[kernel] 0x...". */
		for (size_t j = 0; j < s->n_location_id; j++)
			for (size_t k = 0; k < p->n_location; k++) {
				const Perftools__Profiles__Location *l = p->location[k];
				const Perftools__Profiles__Mapping *m = NULL;

				if (l->id != s->location_id[j])
					continue;
				for (size_t q = 0; q < p->n_mapping; q++)
					if (p->mapping[q]->id == l->mapping_id)
						m = p->mapping[q];
				if (!m || strcmp(p->string_table[m->filename], "[kernel.kallsyms]"))
					break;
				kernel = true;
				kframes++;
				for (size_t q = 0; q < l->n_line && l->n_line; q++) {
					const Perftools__Profiles__Function *f = NULL;

					for (size_t r = 0; r < p->n_function; r++)
						if (p->function[r]->id == l->line[q]->function_id)
							f = p->function[r];
					if (f && strncmp(p->string_table[f->name], "[kernel] 0x", 11)) {
						kframes_named++;
						break;
					}
				}
				break;
			}
		if (kernel)
			in_kernel += s->value[0];
		if (n > 0 && !strcmp(names[0], "read_zero"))
			leaf_read_zero += s->value[0];
		for (size_t j = 0; j < n; j++)
			/* Copying zeroes to the null device goes through the read path of /dev/zero. */
			if (strstr(names[j], "read_zero") || strstr(names[j], "vfs_read") ||
			    strstr(names[j], "ksys_read")) {
				read_path += s->value[0];
				break;
			}
	}
	cr_assert_gt(total, 100);
	perf_kernel = 100.0 * perf.kernel / perf.total;
	perf_rz = 100.0 * perf.sym / perf.total;
	profd_kernel = 100.0 * in_kernel / total;
	profd_rz = 100.0 * leaf_read_zero / total;
	cr_expect_lt(fabs(profd_kernel - perf_kernel), 10.0,
		     "samples in the kernel: profd %.1f%% (%lu of %lu), perf %.1f%% (%lu of %lu)",
		     profd_kernel, (unsigned long)in_kernel, (unsigned long)total, perf_kernel,
		     perf.kernel, perf.total);
	cr_expect_lt(fabs(profd_rz - perf_rz), 10.0,
		     "read_zero self: profd %.1f%% (%lu of %lu), perf %.1f%% (%lu of %lu)", profd_rz,
		     (unsigned long)leaf_read_zero, (unsigned long)total, perf_rz, perf.sym,
		     perf.total);
	/* And what the kernel frames say is readable: named, the read path among them. */
	cr_expect_geq(kframes_named * 100, kframes * 99, "only %lu of %lu kernel frames named",
		      (unsigned long)kframes_named, (unsigned long)kframes);
	cr_expect_gt(read_path * 10, total, "only %lu of %lu samples name kernel read functions",
		     (unsigned long)read_path, (unsigned long)total);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	run_result_free(&rr);
	free(out);
}
