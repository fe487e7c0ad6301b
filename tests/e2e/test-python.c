// SPDX-License-Identifier: MIT
/*
 * End to end: Python frames. Debian's CPython 3.11 runs scripts written here; profd records
 * them, and the profile must show each script's Python functions, files and lines merged
 * into the native stack where the interpreter ran them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

#define PYTHON "/usr/bin/python3.11"
#define MAX_FRAMES 4096

/* Line numbers below are the scripts' own: keep them in step. */
static const char chain_py[] =
	"import os, sys, time; os.write(1, b\"%d\\n\" % os.getpid())\n" /* 1: one write(): test_spawn reads it, then closes the pipe */
	"\n"                                               /* 2 */
	"def leaf(n):\n"                                   /* 3 */
	"    s = 0\n"                                      /* 4 */
	"    for i in range(n):\n"                         /* 5 */
	"        s += i * i\n"                             /* 6 */
	"    return s\n"                                   /* 7 */
	"\n"                                               /* 8 */
	"def key_fn(x):\n"                                 /* 9 */
	"    return leaf(3000) + x\n"                      /* 10 */
	"\n"                                               /* 11 */
	"def middle():\n"                                  /* 12 */
	"    return sorted(range(40), key=key_fn)\n"       /* 13 */
	"\n"                                               /* 14 */
	"def outer():\n"                                   /* 15 */
	"    return middle()\n"                            /* 16 */
	"\n"                                               /* 17 */
	"def main(seconds):\n"                             /* 18 */
	"    end = time.monotonic() + seconds\n"           /* 19 */
	"    while time.monotonic() < end:\n"              /* 20 */
	"        outer()\n"                                /* 21 */
	"\n"                                               /* 22 */
	"main(float(sys.argv[1]))\n";                      /* 23 */

static const char threads_py[] =
	"import sys, threading, time\n"                    /* 1 */
	"\n"                                               /* 2 */
	"def alpha_leaf():\n"                              /* 3 */
	"    s = 0\n"                                      /* 4 */
	"    for i in range(5000):\n"                      /* 5 */
	"        s += i\n"                                 /* 6 */
	"    return s\n"                                   /* 7 */
	"\n"                                               /* 8 */
	"def alpha_loop(end):\n"                           /* 9 */
	"    while time.monotonic() < end:\n"              /* 10 */
	"        alpha_leaf()\n"                           /* 11 */
	"\n"                                               /* 12 */
	"def beta_leaf():\n"                               /* 13 */
	"    s = 0\n"                                      /* 14 */
	"    for i in range(5000):\n"                      /* 15 */
	"        s -= i\n"                                 /* 16 */
	"    return s\n"                                   /* 17 */
	"\n"                                               /* 18 */
	"def beta_loop(end):\n"                            /* 19 */
	"    while time.monotonic() < end:\n"              /* 20 */
	"        beta_leaf()\n"                            /* 21 */
	"\n"                                               /* 22 */
	"end = time.monotonic() + float(sys.argv[1])\n"    /* 23 */
	"ta = threading.Thread(target=alpha_loop, args=(end,))\n"
	"tb = threading.Thread(target=beta_loop, args=(end,))\n"
	"ta.start(); tb.start()\n"
	"print('TIDS', ta.native_id, tb.native_id, flush=True)\n"
	"ta.join(); tb.join()\n";

/* A script whose functions are named after `tag`: one_leaf/one_loop, two_leaf/two_loop. */
static char *named_py(const char *tag)
{
	char *s = NULL;

	cr_assert_geq(asprintf(&s,
			       "import os, sys, time; os.write(1, b\"%%d\\n\" %% os.getpid())\n"
			       "def %s_leaf():\n"
			       "    s = 0\n"
			       "    for i in range(5000):\n"
			       "        s += i\n"
			       "    return s\n"
			       "def %s_loop(end):\n"
			       "    while time.monotonic() < end:\n"
			       "        %s_leaf()\n"
			       "%s_loop(time.monotonic() + float(sys.argv[1]))\n",
			       tag, tag, tag, tag),
		      0);
	return s;
}

static char *write_script(const char *name, const char *text)
{
	char *path = test_out_path(name);
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, 1);
	return path;
}

static int find_frame(const struct test_frame *f, size_t n, size_t from, const char *name)
{
	for (size_t i = from; i < n; i++)
		if (!strcmp(f[i].name, name))
			return (int)i;
	return -1;
}

/*
 * Does this sample read, leaf first: leaf (line 5-6 of chain.py) → key_fn:10 → native frames
 * of sorted() (at least one) → middle:13 → outer:16 → main:21 → <module>:23?
 */
static bool chain_sample_ok(const struct test_frame *f, size_t n, const char *file)
{
	static const struct {
		const char *name;
		int64_t line, start;
	} outer[] = { { "middle", 13, 12 }, { "outer", 16, 15 }, { "main", 21, 18 },
		      { "<module>", 23, 1 } };
	int leaf = find_frame(f, n, 0, "leaf"), m;

	if (leaf < 0 || (size_t)leaf + 1 >= n)
		return false;
	if (f[leaf].line < 4 || f[leaf].line > 7 || f[leaf].start_line != 3 ||
	    strcmp(f[leaf].file, file))
		return false;
	if (strcmp(f[leaf + 1].name, "key_fn") || f[leaf + 1].line != 10 ||
	    f[leaf + 1].start_line != 9 || strcmp(f[leaf + 1].file, file))
		return false;
	m = find_frame(f, n, leaf + 2, "middle");
	if (m < leaf + 3) /* sorted() runs key_fn from C: native frames lie in between */
		return false;
	for (int i = leaf + 2; i < m; i++)
		if (!strcmp(f[i].file, file))
			return false; /* a Python frame of ours out of place */
	for (size_t k = 0; k < 4; k++) {
		if ((size_t)m + k >= n)
			return false;
		if (strcmp(f[m + k].name, outer[k].name) || f[m + k].line != outer[k].line ||
		    f[m + k].start_line != outer[k].start || strcmp(f[m + k].file, file))
			return false;
	}
	return true;
}

static double fraction(const Perftools__Profiles__Profile *p, pid_t pid, int64_t tid,
		       bool (*ok)(const struct test_frame *, size_t, const char *), const char *file,
		       uint64_t *ret_total)
{
	static struct test_frame frames[MAX_FRAMES];
	uint64_t total = 0, hit = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		int64_t v = s->n_value ? s->value[0] : 0;
		size_t n;

		if (pid > 0 && test_sample_label_num(p, s, "pid") != pid)
			continue;
		if (tid > 0 && test_sample_label_num(p, s, "tid") != tid)
			continue;
		total += v;
		n = test_sample_frames(p, s, frames, MAX_FRAMES);
		if (ok(frames, n, file))
			hit += v;
	}
	*ret_total = total;
	return total ? (double)hit / total : 0.0;
}

/* Fraction of all samples with a frame named `name`. */
static double frame_fraction(const Perftools__Profiles__Profile *p, const char *name,
			     uint64_t *ret_total)
{
	static struct test_frame frames[MAX_FRAMES];
	uint64_t total = 0, hit = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t v = p->sample[i]->n_value ? p->sample[i]->value[0] : 0;
		size_t n = test_sample_frames(p, p->sample[i], frames, MAX_FRAMES);

		total += v;
		if (find_frame(frames, n, 0, name) >= 0)
			hit += v;
	}
	*ret_total = total;
	return total ? (double)hit / total : 0.0;
}

/* Does any sample have a frame named `name`? */
static bool has_frame(const Perftools__Profiles__Profile *p, const char *name)
{
	static struct test_frame frames[MAX_FRAMES];

	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_frames(p, p->sample[i], frames, MAX_FRAMES);

		if (find_frame(frames, n, 0, name) >= 0)
			return true;
	}
	return false;
}

Test(python, chain_through_c_callback)
{
	char *script = write_script("chain.py", chain_py);
	char *out = test_out_path("py.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "199", "-o", out,
			       "--", PYTHON, script, "3", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	char *traces;

	test_require_root();
	cr_assert_eq(access(PYTHON, X_OK), 0, PYTHON " is missing: `make deps` installs it");
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	cr_assert(strstr(rr.out, "python "), "no python line in the summary: %s", rr.out);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	frac = fraction(p, 0, 0, chain_sample_ok, script, &total);
	cr_assert_gt(total, 150, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "leaf→key_fn→sorted→middle→outer→main→<module> in %.1f%% of %lu",
		      frac * 100, (unsigned long)total);
	/*
	 * Interpreter frames gave way to the Python frames they ran. Some remain only in the
	 * first samples after the exec, before profd has read the new image and told the BPF side.
	 */
	frac = frame_fraction(p, "_PyEval_EvalFrameDefault", &total);
	cr_assert_leq(frac, 0.03, "interpreter frames left in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);

	traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "key_fn") && strstr(traces, "middle"), "%s", traces);
	free(traces);

	/* Folded stacks (root first) read native → Python → native (sorted) → Python too. */
	char *folded = test_out_path("py.folded"), *text;
	char *const conv[] = { (char *)test_build_path("profd"), "convert", "-q", "--format",
			       "folded", "-o", folded, out, NULL };
	struct run_result cr;
	cr_assert_eq(test_run(conv, 60, &cr), 0);
	cr_assert_eq(cr.status, 0, "convert failed: %s", cr.err);
	text = test_slurp(folded);
	cr_assert(strstr(text, "Py_RunMain;") && strstr(text, ";<module>;main;outer;middle;") &&
		  strstr(text, ";key_fn;leaf"),
		  "no merged stack in the folded output: %.2000s", text);
	free(text);
	free(folded);
	run_result_free(&cr);
	run_result_free(&rr);
	free(out);
	free(script);
}

Test(python, no_python_keeps_interpreter_frames)
{
	char *script = write_script("chain.py", chain_py);
	char *out = test_out_path("nopy.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "--no-python", "-F", "199",
			       "-o", out, "--", PYTHON, script, "2", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;

	test_require_root();
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert(!has_frame(p, "leaf") && !has_frame(p, "key_fn"), "Python frames with --no-python");
	cr_assert(has_frame(p, "_PyEval_EvalFrameDefault"), "no interpreter frame at all");
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
	free(script);
}

static const char *want_thread;

static bool thread_ok(const struct test_frame *f, size_t n, const char *file)
{
	char leaf[32], loop[32];
	int i;

	snprintf(leaf, sizeof(leaf), "%s_leaf", want_thread);
	snprintf(loop, sizeof(loop), "%s_loop", want_thread);
	i = find_frame(f, n, 0, leaf);
	if (i < 0 || (size_t)i + 2 >= n || strcmp(f[i].file, file))
		return false;
	/* Its own chain only: the other thread's functions never show up in it. */
	if (find_frame(f, n, 0, strcmp(want_thread, "alpha") ? "alpha_leaf" : "beta_leaf") >= 0)
		return false;
	/* threading's Thread.run calls the target from C: native frames lie in between. */
	return !strcmp(f[i + 1].name, loop) && find_frame(f, n, i + 2, "Thread.run") > i + 2;
}

Test(python, threads_have_their_own_chains)
{
	char *script = write_script("threads.py", threads_py);
	char *out = test_out_path("thr.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "199", "-o", out,
			       "--", PYTHON, script, "3", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	const char *line;
	long ta = 0, tb = 0;
	uint64_t total;
	double frac;

	test_require_root();
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	line = strstr(rr.out, "TIDS ");
	cr_assert(line && sscanf(line, "TIDS %ld %ld", &ta, &tb) == 2, "%s", rr.out);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	want_thread = "alpha";
	frac = fraction(p, 0, ta, thread_ok, script, &total);
	cr_assert_gt(total, 50, "samples of thread alpha: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "alpha's chain in %.1f%% of its %lu", frac * 100,
		      (unsigned long)total);
	want_thread = "beta";
	frac = fraction(p, 0, tb, thread_ok, script, &total);
	cr_assert_gt(total, 50, "samples of thread beta: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "beta's chain in %.1f%% of its %lu", frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
	free(script);
}

static bool named_ok(const struct test_frame *f, size_t n, const char *file)
{
	char leaf[32], loop[32];
	int i;

	snprintf(leaf, sizeof(leaf), "%s_leaf", want_thread);
	snprintf(loop, sizeof(loop), "%s_loop", want_thread);
	i = find_frame(f, n, 0, leaf);
	return i >= 0 && (size_t)i + 2 < n && !strcmp(f[i].file, file) &&
	       !strcmp(f[i + 1].name, loop) && !strcmp(f[i + 2].name, "<module>") &&
	       f[i].start_line == 2 && f[i].line >= 3 && f[i].line <= 6;
}

/* Whole host: two Python processes, each with its own functions. */
Test(python, whole_host_two_processes)
{
	char *one_src = named_py("one"), *two_src = named_py("two");
	char *one = write_script("one.py", one_src), *two = write_script("two.py", two_src);
	char *out = test_out_path("all.pb.gz");
	char *const wa[] = { PYTHON, one, "30", NULL }, *const wb[] = { PYTHON, two, "30", NULL };
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", "99", "-d",
			       "4", "-o", out, NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	pid_t a, b;

	test_require_root();
	a = test_spawn(wa);
	b = test_spawn(wb);
	cr_assert(a > 0 && b > 0);
	/* Past the interpreter's start-up (imports are not the scripts' functions) on any machine. */
	cr_assert(test_wait_cpu(a, 0.3, 60) && test_wait_cpu(b, 0.3, 60));
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	test_kill(a);
	test_kill(b);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	/*
	 * Processes running before profd are described to the BPF side at their first sample, not
	 * from the /proc snapshot yet (issue 21): with every CPU busy and a sanitizer build that
	 * took ~13% of a 4-s window (86.7% of 158 named). 80% still fails a walk that is broken.
	 */
	want_thread = "one";
	frac = fraction(p, a, 0, named_ok, one, &total);
	cr_assert_gt(total, 50, "samples of one.py: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.80, "one's chain in %.1f%% of %lu", frac * 100, (unsigned long)total);
	want_thread = "two";
	frac = fraction(p, b, 0, named_ok, two, &total);
	cr_assert_gt(total, 50, "samples of two.py: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.80, "two's chain in %.1f%% of %lu", frac * 100, (unsigned long)total);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	run_result_free(&rr);
	free(out);
	free(one);
	free(two);
	free(one_src);
	free(two_src);
}

/* The script ends while profd records it (-p): profd stops, and its frames are named. */
Test(python, script_exits_mid_record)
{
	char *script = write_script("chain.py", chain_py);
	char *out = test_out_path("exit.pb.gz"), pidstr[16];
	char *const wl[] = { PYTHON, script, "4", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac, t0;
	pid_t pid;

	test_require_root();
	pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "60", "-o", out, NULL };
	t0 = test_now();
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	cr_assert_lt(test_now() - t0, 50, "profd did not stop when the script ended");
	test_wait(pid, 10);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	frac = fraction(p, pid, 0, chain_sample_ok, script, &total);
	cr_assert_gt(total, 50, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu", frac * 100, (unsigned long)total);
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
	free(script);
}

/* Run `argv` under profd record -- and check the chain of chain.py in it. */
static void record_chain(char *const *cmd, size_t n_cmd, const char *script, const char *what)
{
	char *out = test_out_path("run.pb.gz");
	char *argv[16] = { (char *)test_build_path("profd"), "record", "-F", "199", "-o", out, "--" };
	size_t n = 7;
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;

	for (size_t i = 0; i < n_cmd && n < 15; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	frac = fraction(p, 0, 0, chain_sample_ok, script, &total);
	cr_assert_gt(total, 150, "%s: samples: %lu", what, (unsigned long)total);
	cr_assert_geq(frac, 0.90, "%s: chain in %.1f%% of %lu", what, frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
}

/* The shared-library interpreter: a C program embedding libpython3.11.so. */
Test(python, embedded_libpython)
{
	char *script = write_script("chain.py", chain_py);
	char *const cmd[] = { (char *)test_build_path("workloads/pyembed"), script, "3" };

	test_require_root();
	record_chain(cmd, 3, script, "libpython3.11.so");
	free(script);
}

/*
 * A process in its own PID namespace (as in a container): CPython knows its threads by the
 * namespace's thread ids, which the BPF side must match, not the host's. Reached through a
 * shell that execs into Python.
 */
Test(python, pid_namespace_and_exec)
{
	char *script = write_script("chain.py", chain_py), *sh = NULL;

	test_require_root();
	cr_assert_geq(asprintf(&sh, "exec " PYTHON " '%s' 3", script), 0);
	char *const cmd[] = { "unshare", "--pid", "--fork", "/bin/sh", "-c", sh };
	record_chain(cmd, 6, script, "unshare --pid");
	free(sh);
	free(script);
}

/* ---- chains longer than the walk, short-lived code objects */

/*
 * Recursion through C callbacks and through generators, each level its own interpreter call:
 * 170 levels, two Python frames each through sorted(key=...), past the frames a sample keeps.
 */
static const char deep_calls_py[] =
	"import sys, time\n"
	"sys.setrecursionlimit(10000)\n"
	"def spin(end):\n"
	"    while time.monotonic() < end:\n"
	"        pass\n"
	"    return 0\n"
	"def keyrec(n, end):\n"
	"    if n == 0:\n"
	"        return spin(end)\n"
	"    return sorted([0], key=lambda v: keyrec(n - 1, end))[0]\n"
	"def genrec(n, end):\n"
	"    if n == 0:\n"
	"        yield spin(end)\n"
	"    else:\n"
	"        yield from genrec(n - 1, end)\n"
	"stop = time.monotonic() + float(sys.argv[1])\n"
	"while time.monotonic() < stop:\n"
	"    keyrec(170, time.monotonic() + 0.2)\n"
	"    next(genrec(170, time.monotonic() + 0.2))\n";

/* One interpreter call, 400 deep: spin, rec × 401, <module> = 403 frames. */
static const char deep_recursion_py[] =
	"import sys, time\n"
	"sys.setrecursionlimit(10000)\n"
	"def spin(end):\n"
	"    while time.monotonic() < end:\n"
	"        pass\n"
	"def rec(n, end):\n"
	"    if n == 0:\n"
	"        return spin(end)\n"
	"    return rec(n - 1, end)\n"
	"rec(400, time.monotonic() + float(sys.argv[1]))\n";

/* Functions made by exec() in a loop, each called once and dropped (large: malloc'd). */
static const char exec_loop_py[] =
	"import sys, time\n"
	"end = time.monotonic() + float(sys.argv[1])\n"
	"body = ''.join('        s += j * %d\\n' % k for k in range(60))\n"
	"i = 0\n"
	"while time.monotonic() < end:\n"
	"    src = 'def made_%d(n):\\n    s = 0\\n    for j in range(n):\\n%s    return s\\n' % (i, body)\n"
	"    ns = {}\n"
	"    exec(compile(src, '<made>', 'exec'), ns)\n"
	"    ns['made_%d' % i](100)\n"
	"    del ns\n"
	"    i += 1\n";

static Perftools__Profiles__Profile *record_script(const char *name, const char *text,
						   const char *seconds, char **ret_script)
{
	char *script = write_script(name, text);
	char *out = test_out_path("deep.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "499", "-o", out,
			       "--", PYTHON, script, (char *)seconds, NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;

	test_require_root();
	cr_assert_eq(access(PYTHON, X_OK), 0, PYTHON " is missing: `make deps` installs it");
	cr_assert_eq(test_run(argv, 120, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	cr_log_info("%s", rr.out);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	run_result_free(&rr);
	free(out);
	*ret_script = script;
	return p;
}

static bool name_starts(const struct test_frame *f, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(f[i].name, prefix, strlen(prefix)))
			return true;
	return false;
}

Test(python, deep_callbacks_and_generators_reach_module)
{
	static struct test_frame f[MAX_FRAMES];
	char *script;
	Perftools__Profiles__Profile *p = record_script("deep_calls.py", deep_calls_py, "4", &script);
	uint64_t total = 0, raw = 0, module = 0, marked = 0, gens = 0, keys = 0;
	bool key;

	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t v = p->sample[i]->n_value ? p->sample[i]->value[0] : 0;
		size_t n = test_sample_frames(p, p->sample[i], f, MAX_FRAMES);
		int s = find_frame(f, n, 0, "spin");

		if (s < 0 || strcmp(f[s].file, script))
			continue; /* not the workload's own samples */
		total += v;
		raw += find_frame(f, n, 0, "_PyEval_EvalFrameDefault") >= 0 ? v : 0;
		module += find_frame(f, n, 0, "<module>") >= 0 ? v : 0;
		gens += find_frame(f, n, 0, "genrec") >= 0 ? v : 0;
		key = find_frame(f, n, 0, "keyrec") >= 0;
		keys += key ? v : 0;
		marked += key && name_starts(f, n, "[python: ") ? v : 0;
	}
	cr_assert_gt(total, 300, "samples in spin(): %lu", (unsigned long)total);
	cr_assert(gens > total / 5 && keys > total / 5, "generators %lu, callbacks %lu of %lu",
		  (unsigned long)gens, (unsigned long)keys, (unsigned long)total);
	cr_assert_eq(raw, 0, "raw interpreter frames in %lu of %lu samples", (unsigned long)raw,
		     (unsigned long)total);
	cr_assert_geq(module, total * 95 / 100, "<module> in %lu of %lu samples",
		      (unsigned long)module, (unsigned long)total);
	/* 170 levels of two frames each: more than a sample keeps, and it says so. */
	cr_assert_geq(marked, keys * 95 / 100, "a not-read marker in %lu of %lu samples",
		      (unsigned long)marked, (unsigned long)keys);
	test_pprof_free(p);
	free(script);
}

Test(python, recursion_400_deep_keeps_module_and_marks_the_rest)
{
	static struct test_frame f[MAX_FRAMES];
	char *script;
	Perftools__Profiles__Profile *p =
		record_script("deep_rec.py", deep_recursion_py, "3", &script);
	uint64_t total = 0, ok = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t v = p->sample[i]->n_value ? p->sample[i]->value[0] : 0;
		size_t n = test_sample_frames(p, p->sample[i], f, MAX_FRAMES);
		int s = find_frame(f, n, 0, "spin"), m, recs = 0;

		if (s < 0 || strcmp(f[s].file, script))
			continue;
		total += v;
		/*
		 * 403 frames: spin and 191 rec kept from the leaf, 63 rec and <module> from the
		 * root, and between them one marker for the 147 not kept.
		 */
		m = find_frame(f, n, s, "[python: 147 frames not read]");
		for (size_t k = 0; k < n; k++)
			recs += !strcmp(f[k].name, "rec");
		if (m == s + 192 && recs == 254 && find_frame(f, n, m, "<module>") == m + 64 &&
		    find_frame(f, n, 0, "_PyEval_EvalFrameDefault") < 0)
			ok += v;
	}
	cr_assert_gt(total, 300, "samples in spin(): %lu", (unsigned long)total);
	cr_assert_geq(ok, total * 95 / 100,
		      "spin, 191 rec, [147 not read], 63 rec, <module> in %lu of %lu samples",
		      (unsigned long)ok, (unsigned long)total);
	test_pprof_free(p);
	free(script);
}

Test(python, exec_made_functions_named)
{
	static struct test_frame f[MAX_FRAMES];
	char *script;
	Perftools__Profiles__Profile *p = record_script("exec_loop.py", exec_loop_py, "4", &script);
	uint64_t made = 0, unreadable = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t v = p->sample[i]->n_value ? p->sample[i]->value[0] : 0;
		size_t n = test_sample_frames(p, p->sample[i], f, MAX_FRAMES);
		int m = find_frame(f, n, 0, "<module>");

		/* The frame the module called: a made_N function, or one not named. */
		if (m < 1 || strcmp(f[m].file, script))
			continue;
		for (int k = m - 1; k >= 0; k--) {
			if (!strncmp(f[k].name, "made_", 5) && !strcmp(f[k].file, "<made>")) {
				made += v;
				break;
			}
			if (!strcmp(f[k].name, "[python]")) {
				unreadable += v;
				break;
			}
		}
	}
	cr_assert_gt(made, 200, "samples in made_N(): %lu", (unsigned long)made);
	cr_assert_leq(unreadable * 100, (made + unreadable) * 1,
		      "%lu of %lu samples in exec'd functions not named", (unsigned long)unreadable,
		      (unsigned long)(made + unreadable));
	test_pprof_free(p);
	free(script);
}

/*
 * Of pid's samples in Python code (a frame of `file`, or the mark that Python frames were not
 * read: "[python: frames not read]"), the share for which `ok` holds; *ret_total their count,
 * *ret_unread how many carry the mark.
 */
static double read_share(const Perftools__Profiles__Profile *p, pid_t pid,
			 bool (*ok)(const struct test_frame *, size_t, const char *),
			 const char *file, uint64_t *ret_total, uint64_t *ret_unread)
{
	static struct test_frame frames[MAX_FRAMES];
	uint64_t total = 0, hit = 0, unread = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		int64_t v = s->n_value ? s->value[0] : 0;
		bool ours = false, mark = false;
		size_t n;

		if (test_sample_label_num(p, s, "pid") != pid)
			continue;
		n = test_sample_frames(p, s, frames, MAX_FRAMES);
		for (size_t k = 0; k < n; k++) {
			ours = ours || !strcmp(frames[k].file, file);
			mark = mark || !strcmp(frames[k].name, "[python: frames not read]");
		}
		if (!ours && !mark)
			continue; /* the interpreter's start-up and end, a fork or exec in between */
		total += v;
		if (mark)
			unread += v;
		if (ok(frames, n, file))
			hit += v;
	}
	*ret_total = total;
	*ret_unread = unread;
	return total ? (double)hit / total : 0.0;
}

/* Start `profd record -a` for `seconds` and wait until it reads its ring at its steady pace. */
static pid_t record_all_started(const char *out, const char *log, const char *hz,
				const char *seconds)
{
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", (char *)hz, "-d",
			       (char *)seconds, "-o", (char *)out, NULL };
	pid_t profd = test_spawn_logged(argv, log, NULL);

	cr_assert_gt(profd, 0);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	/* Past the first second's quicker polls: what a long-running daemon does. */
	usleep(1500 * 1000);
	return profd;
}

/*
 * A Python process profd never saw, started under `record -a`: it is described to the BPF
 * side when the side-band maps its interpreter (at its exec), so its first samples already
 * carry Python frames. Counted: its samples in Python code (the script's frames, or the mark
 * that they were not read). Four short runs (0.4 s of Python each, ~40 samples each at 99 Hz,
 * a rate at which the BPF ring wakes profd only at its 100 ms timeouts: learnt from its first
 * sample instead, a process's first ~100 ms carry no Python frames).
 */
Test(python, new_process_first_samples)
{
	char *src = named_py("fresh"), *script = write_script("fresh.py", src);
	char *out = test_out_path("fresh.pb.gz"), *log = test_out_path("fresh.log");
	char *const wl[] = { PYTHON, script, "0.4", NULL };
	pid_t profd, pids[4];
	uint64_t total = 0, hit = 0, unread = 0;
	Perftools__Profiles__Profile *p;

	test_require_root();
	profd = record_all_started(out, log, "99", "6");
	for (size_t k = 0; k < 4; k++) {
		struct run_result rr;

		cr_assert_eq(test_run(wl, 30, &rr), 0);
		cr_assert_eq(rr.status, 0, "python failed: %s", rr.err);
		pids[k] = (pid_t)atol(rr.out);
		cr_assert_gt(pids[k], 0, "%s", rr.out);
		run_result_free(&rr);
	}
	cr_assert_eq(test_wait(profd, 60), 0, "profd failed: %s", test_slurp(log));
	p = test_pprof_load(out);
	cr_assert_not_null(p, "no profile: %s", test_slurp(log));
	want_thread = "fresh";
	for (size_t k = 0; k < 4; k++) {
		uint64_t n, u;
		double frac = read_share(p, pids[k], named_ok, script, &n, &u);

		cr_log_info("run %zu (pid %d): %.1f%% of %lu samples in Python named, %lu unread",
			    k, pids[k], frac * 100, (unsigned long)n, (unsigned long)u);
		total += n;
		unread += u;
		hit += (uint64_t)(frac * (double)n + 0.5);
	}
	cr_assert_gt(total, 80, "samples of the four runs: %lu", (unsigned long)total);
	cr_assert_geq((double)hit / (double)total, 0.90,
		      "fresh processes' chain in %lu of %lu samples (%lu unread): %s",
		      (unsigned long)hit, (unsigned long)total, (unsigned long)unread,
		      test_slurp(log));
	/*
	 * Learnt from a first sample, a run's first ~100 ms were marked unread: ~10% of them. From
	 * the side-band, only the samples taken before profd has described the new interpreter to
	 * the BPF side (its reaction to the exec's MMAP2: a few ms idle, tens of ms with every CPU
	 * busy and a sanitizer build: 3 of 123 seen) are.
	 */
	cr_assert_leq(unread * 20, total, "%lu of %lu samples in Python unread: %s",
		      (unsigned long)unread, (unsigned long)total, test_slurp(log));
	test_pprof_free(p);
	free(out);
	free(log);
	free(script);
	free(src);
}

/* Children forked by a Python process, running Python code for 0.1 s each and exiting. */
static const char fork_py[] =
	"import os, sys, time\n"                    /* 1 */
	"def child_leaf():\n"                       /* 2 */
	"    s = 0\n"                               /* 3 */
	"    for i in range(5000):\n"               /* 4 */
	"        s += i\n"                          /* 5 */
	"    return s\n"                            /* 6 */
	"def child_loop(end):\n"                    /* 7 */
	"    while time.monotonic() < end:\n"       /* 8 */
	"        child_leaf()\n"                    /* 9 */
	"def parent_loop(end):\n"                   /* 10 */
	"    while time.monotonic() < end:\n"       /* 11 */
	"        sum(range(5000))\n"                /* 12 */
	"parent_loop(time.monotonic() + 0.3)\n"     /* 13 */
	"pids = []\n"                               /* 14 */
	"for k in range(int(sys.argv[1])):\n"       /* 15 */
	"    pid = os.fork()\n"                     /* 16 */
	"    if pid == 0:\n"                        /* 17 */
	"        child_loop(time.monotonic() + 0.1)\n"
	"        os._exit(0)\n"
	"    pids.append(pid)\n"
	"    os.waitpid(pid, 0)\n"
	"print('PIDS', *pids, flush=True)\n";

static bool child_ok(const struct test_frame *f, size_t n, const char *file)
{
	int i = find_frame(f, n, 0, "child_leaf");

	return i >= 0 && (size_t)i + 2 < n && !strcmp(f[i].file, file) &&
	       !strcmp(f[i + 1].name, "child_loop") && !strcmp(f[i + 2].name, "<module>");
}

/*
 * A forked child runs its parent's interpreter at the same addresses: the BPF program gives it
 * the parent's description at fork, so its samples carry Python frames from the first one.
 */
Test(python, forked_children_first_samples)
{
	char *script = write_script("forks.py", fork_py);
	char *out = test_out_path("forks.pb.gz"), *log = test_out_path("forks.log");
	char *const wl[] = { PYTHON, script, "6", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t total = 0, hit = 0, unread = 0;
	const char *line;
	pid_t profd;
	int used = 0;

	test_require_root();
	profd = record_all_started(out, log, "499", "5");
	cr_assert_eq(test_run(wl, 30, &rr), 0);
	cr_assert_eq(rr.status, 0, "python failed: %s", rr.err);
	cr_assert_eq(test_wait(profd, 60), 0, "profd failed: %s", test_slurp(log));
	line = strstr(rr.out, "PIDS ");
	cr_assert_not_null(line, "%s", rr.out);
	line += 5;
	p = test_pprof_load(out);
	cr_assert_not_null(p, "no profile: %s", test_slurp(log));
	for (long pid; sscanf(line, "%ld%n", &pid, &used) == 1; line += used) {
		uint64_t n, u;
		double frac = read_share(p, (pid_t)pid, child_ok, script, &n, &u);

		cr_log_info("child %ld: %.1f%% of %lu samples in Python named, %lu unread", pid,
			    frac * 100, (unsigned long)n, (unsigned long)u);
		total += n;
		unread += u;
		hit += (uint64_t)(frac * (double)n + 0.5);
	}
	cr_assert_gt(total, 100, "samples of the children: %lu", (unsigned long)total);
	cr_assert_geq((double)hit / (double)total, 0.90,
		      "children's chain in %lu of %lu samples (%lu unread): %s", (unsigned long)hit,
		      (unsigned long)total, (unsigned long)unread, test_slurp(log));
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
	free(log);
	free(script);
}
