// SPDX-License-Identifier: MIT
/*
 * Cross-architecture ground truth for the unwinder: `profd stack --core` against gdb.
 *
 * For each program in tests/cross/ (leaf: abort() at the end of a noinline chain with an
 * inlined helper; segv: a NULL store in a true leaf, which on aarch64 keeps its return address
 * only in LR; callback: abort() inside a qsort comparator, below libc's sort frames;
 * threads: three threads spinning in noinline chains and one polling clock_gettime (the vdso
 * on x86_64), the process killed by SIGQUIT from outside while the main thread waits in
 * pthread_join), for aarch64 and x86_64, with and
 * without frame pointers, at -O2 -g:
 *   1. build it (aarch64-linux-gnu-gcc, PIE linked with -z separate-code as qemu-user needs;
 *      or gcc);
 *   2. run it until it dumps core, in a fresh directory with RLIMIT_CORE unlimited: aarch64
 *      under qemu-aarch64 (which writes qemu_<prog>_<date>_<pid>.core itself; the program
 *      saves /proc/self/maps first, since qemu cores have no NT_FILE note), x86_64 natively
 *      (the kernel's core when core_pattern writes a plain file into the working directory,
 *      else the program is run under gdb and the core written by generate-core-file, which
 *      also has NT_FILE; nothing global is changed);
 *   3. list gdb-multiarch's frames for every thread (set backtrace past-main on, so both tools
 *      go to _start; tests/cross/gdb-frames.py walks the same frames `thread apply all bt`
 *      prints and adds each frame's type and function start) and profd's `stack --core
 *      --verbose` output, and compare them. aarch64 cores are unwound twice by profd: with
 *      --maps, and without it (libraries found from the dynamic linker's list in memory).
 *
 * The comparison, exactly:
 *   - threads are matched by LWP; both outputs list the same LWPs, each once, and as many
 *     threads as the program has;
 *   - gdb's TAILCALL frames are removed first: gdb rebuilds them from DWARF call-site records
 *     (a function that jumped to its callee), they are not on the stack, and no stack
 *     unwinder, profd's or a profiler's, can see them;
 *   - then, per thread, both lists have the same length and frame i matches frame i: the same
 *     pc (the return address for callers; inlined callers repeat the pc of their frame), the
 *     same inlined-or-not kind, and the same function: the same name, or — only for two
 *     non-inlined frames — two names of one symbol, i.e. different names with the same
 *     function start address (glibc's clone3/__clone3/__GI___clone3 are one function, and
 *     which alias a tool prints is an arbitrary choice). "??" (no symbol) only matches "??".
 * Nothing else is fuzzy: a frame more or less, a different pc or a different function fails
 * the test and prints both backtraces.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "tests/lib/testlib.h"

#define AARCH64_SYSROOT "/usr/aarch64-linux-gnu"
#define RUN_TIMEOUT_S 30
#define TOOL_TIMEOUT_S 60

enum arch { ARCH_AARCH64, ARCH_X86_64 };

/* ---- helpers ------------------------------------------------------------------------------ */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert_geq(r, 0);
	return s;
}

static const char *cross_dir(void)
{
	static char dir[PATH_MAX];

	if (!dir[0]) {
		if (access("tests/cross/common.h", R_OK) == 0)
			cr_assert_not_null(realpath("tests/cross", dir));
		else
			snprintf(dir, sizeof(dir), "%s/../tests/cross", test_build_dir());
	}
	return dir;
}

static void require_tool(const char *path)
{
	/* tools/deps.sh installs these: missing means a broken setup, not a skip. */
	cr_assert_eq(access(path, X_OK), 0, "%s is missing: run `make deps`", path);
}

/* Build tests/cross/<name>.c for arch, with or without frame pointers, into dir/<name>. */
static char *build_prog(enum arch arch, bool fp, const char *name, const char *dir)
{
	char *src = xasprintf("%s/%s.c", cross_dir(), name);
	char *out = xasprintf("%s/%s", dir, name);
	char *inc = xasprintf("-I%s", cross_dir());
	const char *cc = arch == ARCH_AARCH64 ? "/usr/bin/aarch64-linux-gnu-gcc" : "/usr/bin/gcc";
	const char *fpflag = fp ? "-fno-omit-frame-pointer" : "-fomit-frame-pointer";
	struct run_result rr;

	require_tool(cc);
	char *const argv[] = { (char *)cc, "-O2", "-g", (char *)fpflag, inc, "-fPIE", "-pie",
			       "-Wl,-z,separate-code", "-pthread", "-o", out, src, NULL };
	cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
	cr_assert_eq(rr.status, 0, "%s failed to build %s:\n%s", cc, src, rr.err);
	run_result_free(&rr);
	free(src);
	free(inc);
	return out;
}

/* The kernel writes cores into the working directory: a plain pattern without '/' or '|'. */
static bool kernel_core_in_cwd(void)
{
	char pat[256] = "";
	FILE *f;

	if (getenv("PROFD_TEST_GDB_CORE"))
		return false; /* exercise the gdb fallback */
	f = fopen("/proc/sys/kernel/core_pattern", "re");
	if (!f)
		return false;
	if (!fgets(pat, sizeof(pat), f))
		pat[0] = '\0';
	fclose(f);
	return pat[0] && pat[0] != '|' && !strchr(pat, '/');
}

/* The ET_CORE file of the given machine in dir, or NULL. */
static char *find_core(const char *dir, uint16_t machine)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *found = NULL;

	cr_assert_not_null(d);
	while (!found && (de = readdir(d))) {
		char *p = xasprintf("%s/%s", dir, de->d_name);
		Elf64_Ehdr eh;
		int fd = open(p, O_RDONLY | O_CLOEXEC);

		if (fd >= 0 && read(fd, &eh, sizeof(eh)) == sizeof(eh) &&
		    memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_type == ET_CORE &&
		    eh.e_machine == machine)
			found = p;
		else
			free(p);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return found;
}

/*
 * Run argv in dir with RLIMIT_CORE unlimited until it dies. With `signal_when_ready`, wait for
 * its "ready PID" line on stdout and send that signal to PID. Returns the wait status.
 */
static int run_until_dump(char *const argv[], const char *dir, bool qemu, int signal_when_ready)
{
	int out[2], status = 0;
	time_t deadline = time(NULL) + RUN_TIMEOUT_S;
	char line[4096] = "";
	size_t len = 0;
	bool signalled = false;
	pid_t pid;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		int devnull = open("/dev/null", O_RDWR);

		sigset_t none;

		if (chdir(dir) < 0)
			_exit(126);
		/*
		 * A shell without job control starts background commands with SIGQUIT ignored,
		 * and exec keeps that: the program must die of the signal whoever started us.
		 */
		signal(SIGQUIT, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Raising the soft limit up to the hard one needs no privilege. */
		if (setrlimit(RLIMIT_CORE, &rl) < 0) {
			getrlimit(RLIMIT_CORE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_CORE, &rl);
		}
		if (qemu) {
			/*
			 * qemu writes the guest's core itself, then dies of the signal, and the
			 * kernel would add a core of qemu (~150 MB): this process's coredump
			 * filter (kept across exec) makes that one headers only.
			 */
			int f = open("/proc/self/coredump_filter", O_WRONLY);

			if (f >= 0) {
				(void)!write(f, "0", 1);
				close(f);
			}
		}
		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(devnull, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	for (;;) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("%s did not dump core within %d s (output: %s)", argv[0],
				       RUN_TIMEOUT_S, line);
		}
		if (poll(&p, 1, 20) > 0 && len < sizeof(line) - 1) {
			ssize_t k = read(out[0], line + len, sizeof(line) - 1 - len);

			if (k > 0)
				len += k;
			line[len] = '\0';
		}
		/* gdb, when it runs the program, prints its own lines around the program's. */
		const char *ready =
		    strncmp(line, "ready ", 6) == 0 ? line : strstr(line, "\nready ");
		if (signal_when_ready && !signalled && ready && strchr(ready + 1, '\n')) {
			int target = 0;

			cr_assert_eq(sscanf(ready + (*ready == '\n'), "ready %d", &target), 1,
				     "unexpected output: %s", line);
			/* Let every thread spin a little: the dump lands mid-loop. */
			usleep(100 * 1000);
			cr_assert_eq(kill(target, signal_when_ready), 0);
			signalled = true;
		}
	}
	close(out[0]);
	return status;
}

/* Run the program until it dumps core; returns the core's path. */
static char *make_core(enum arch arch, const char *prog, const char *maps, const char *dir,
		       int signal_when_ready)
{
	uint16_t machine = arch == ARCH_AARCH64 ? EM_AARCH64 : EM_X86_64;
	char *core;
	int st;

	if (arch == ARCH_AARCH64) {
		require_tool("/usr/bin/qemu-aarch64");
		char *const argv[] = { "/usr/bin/qemu-aarch64", "-L", AARCH64_SYSROOT, (char *)prog,
				       (char *)maps, NULL };
		st = run_until_dump(argv, dir, true, signal_when_ready);
	} else if (kernel_core_in_cwd()) {
		char *const argv[] = { (char *)prog, (char *)maps, NULL };
		st = run_until_dump(argv, dir, false, signal_when_ready);
	} else {
		/* gdb stops the program at the fatal signal and writes the core. */
		char *gcore = xasprintf("generate-core-file %s/gdb.core", dir);
		char *const argv[] = { "/usr/bin/gdb", "-batch", "-nx", "-ex",
				       "set debuginfod enabled off", "-ex", "run", "-ex", gcore,
				       "--args", (char *)prog, (char *)maps, NULL };
		require_tool("/usr/bin/gdb");
		st = run_until_dump(argv, dir, false, signal_when_ready);
		free(gcore);
	}
	core = find_core(dir, machine);
	cr_assert_not_null(core, "no %s core in %s (wait status 0x%x)",
			   arch == ARCH_AARCH64 ? "aarch64" : "x86_64", dir, st);
	return core;
}

/* ---- backtrace parsing -------------------------------------------------------------------- */

#define MAX_THREADS 16
#define MAX_FRAMES 128

struct frame {
	char name[256];
	uint64_t pc;
	uint64_t fn;  /* function start, 0 when unknown */
	bool inlined; /* an inlined caller (gdb INLINE frame / profd "[inlined]") */
};

struct thread_bt {
	long lwp;
	size_t n;
	struct frame f[MAX_FRAMES];
};

struct bt {
	size_t n;
	struct thread_bt t[MAX_THREADS];
};

static struct thread_bt *new_thread(struct bt *b, long lwp)
{
	cr_assert_lt(b->n, MAX_THREADS);
	b->t[b->n] = (struct thread_bt){ .lwp = lwp };
	return &b->t[b->n++];
}

static void add_frame(struct thread_bt *t, const struct frame *f)
{
	cr_assert_not_null(t, "frame before any thread");
	cr_assert_lt(t->n, MAX_FRAMES);
	t->f[t->n++] = *f;
}

/* Next line of *p into buf (truncated to its size); false at the end. */
static bool next_line(const char **p, char *buf, size_t size)
{
	const char *eol;
	size_t len;

	if (!**p)
		return false;
	eol = strchr(*p, '\n');
	len = eol ? (size_t)(eol - *p) : strlen(*p);
	snprintf(buf, size, "%.*s", (int)MIN(len, size - 1), *p);
	*p += len + (eol ? 1 : 0);
	return true;
}

/*
 * gdb, through tests/cross/gdb-frames.py: "@T LWP" and "@F PC TYPE FNSTART NAME". Tail-call
 * frames are dropped here: gdb rebuilds them from DWARF call-site records, they are not on
 * the stack.
 */
static void parse_gdb(const char *text, struct bt *ret)
{
	struct thread_bt *cur = NULL;
	char line[1024], type[32];
	int name_at;

	memset(ret, 0, sizeof(*ret));
	while (next_line(&text, line, sizeof(line))) {
		struct frame f = {};

		if (strncmp(line, "@T ", 3) == 0) {
			cur = new_thread(ret, strtol(line + 3, NULL, 10));
		} else if (strncmp(line, "@F ", 3) == 0) {
			cr_assert_eq(sscanf(line + 3, "%" SCNx64 " %31s %" SCNx64 " %n", &f.pc,
					    type, &f.fn, &name_at),
				     3, "bad gdb frame line: %s", line);
			if (strcmp(type, "TAILCALL") == 0)
				continue;
			f.inlined = strcmp(type, "INLINE") == 0;
			snprintf(f.name, sizeof(f.name), "%s", line + 3 + name_at);
			add_frame(cur, &f);
		}
	}
}

/*
 * profd stack --verbose: "Thread N (LWP TID)...:" and
 * "#N  0xPC in NAME () [inlined] at FILE:LINE from MODULE [fn 0xSTART]".
 */
static void parse_profd(const char *text, struct bt *ret)
{
	struct thread_bt *cur = NULL;
	char line[2048];

	memset(ret, 0, sizeof(*ret));
	while (next_line(&text, line, sizeof(line))) {
		struct frame f = {};
		char *s, *e;

		if (strncmp(line, "Thread ", 7) == 0) {
			s = strstr(line, "(LWP ");
			cr_assert_not_null(s, "thread line without LWP: %s", line);
			cur = new_thread(ret, strtol(s + 5, NULL, 10));
			continue;
		}
		if (line[0] != '#')
			continue;
		s = strstr(line, " 0x");
		cr_assert_not_null(s, "frame line without pc: %s", line);
		f.pc = strtoull(s + 1, &s, 16);
		cr_assert_eq(strncmp(s, " in ", 4), 0, "bad frame line: %s", line);
		s += 4;
		e = strstr(s, " ()");
		cr_assert_not_null(e, "bad frame line: %s", line);
		snprintf(f.name, sizeof(f.name), "%.*s", (int)(e - s), s);
		f.inlined = strstr(e, " [inlined]") == e + 3;
		if ((s = strstr(e, " [fn 0x")))
			f.fn = strtoull(s + 5, NULL, 16);
		add_frame(cur, &f);
	}
}

static const struct thread_bt *find_thread(const struct bt *b, long lwp)
{
	const struct thread_bt *found = NULL;

	for (size_t i = 0; i < b->n; i++)
		if (b->t[i].lwp == lwp) {
			cr_assert_null(found, "LWP %ld listed twice", lwp);
			found = &b->t[i];
		}
	return found;
}

/* Same function: same name, or two names of one symbol (aliases: same start address). */
static bool same_function(const struct frame *g, const struct frame *p)
{
	size_t n = strlen(g->name);

	if (strcmp(g->name, p->name) == 0)
		return true;
	/*
	 * A thread caught in a PLT stub: gdb makes up "name@plt", the ELF has no symbol there
	 * (profd: "??"). The caller compares the pc all the same.
	 */
	if (n > 4 && !strcmp(g->name + n - 4, "@plt") && !strcmp(p->name, "??"))
		return true;
	return !g->inlined && !p->inlined && g->fn && g->fn == p->fn && strcmp(g->name, "??") &&
	       strcmp(p->name, "??");
}

/* Compare as described at the top of this file; on failure print both outputs. */
static void compare(const char *gdb_out, const char *profd_out, size_t want_threads)
{
	static struct bt g, pr;

	parse_gdb(gdb_out, &g);
	parse_profd(profd_out, &pr);
	cr_assert_eq(g.n, want_threads, "gdb shows %zu threads, expected %zu:\n%s", g.n,
		     want_threads, gdb_out);
	cr_assert_eq(pr.n, g.n, "profd shows %zu threads, gdb %zu\n--- gdb:\n%s\n--- profd:\n%s",
		     pr.n, g.n, gdb_out, profd_out);
	for (size_t i = 0; i < g.n; i++) {
		const struct thread_bt *gt = &g.t[i], *pt = find_thread(&pr, gt->lwp);

		cr_assert_not_null(pt, "LWP %ld missing from profd\n--- gdb:\n%s\n--- profd:\n%s",
				   gt->lwp, gdb_out, profd_out);
		(void)find_thread(&g, gt->lwp);
		cr_assert_gt(gt->n, 0, "gdb has no frames for LWP %ld:\n%s", gt->lwp, gdb_out);
		for (size_t k = 0; k < MAX(gt->n, pt->n); k++) {
			const struct frame *a = k < gt->n ? &gt->f[k] : NULL;
			const struct frame *b = k < pt->n ? &pt->f[k] : NULL;

			cr_assert(a && b && same_function(a, b) && a->pc == b->pc &&
				      a->inlined == b->inlined,
				  "LWP %ld frame %zu: gdb %s%s @%#" PRIx64 ", profd %s%s @%#" PRIx64
				  " (gdb %zu frames without tail calls, profd %zu)\n"
				  "--- gdb:\n%s\n--- profd:\n%s",
				  gt->lwp, k, a ? a->name : "(none)",
				  a && a->inlined ? " [inlined]" : "", a ? a->pc : 0,
				  b ? b->name : "(none)", b && b->inlined ? " [inlined]" : "",
				  b ? b->pc : 0, gt->n, pt->n, gdb_out, profd_out);
		}
	}
}

/* ---- one case ----------------------------------------------------------------------------- */

static char *gdb_bt(enum arch arch, const char *prog, const char *core)
{
	char *file = xasprintf("file %s", prog), *corecmd = xasprintf("core-file %s", core);
	char *script = xasprintf("source %s/gdb-frames.py", cross_dir());
	const char *sysroot = arch == ARCH_AARCH64 ? "set sysroot " AARCH64_SYSROOT : "echo";
	struct run_result rr;
	char *out;

	require_tool("/usr/bin/gdb-multiarch");
	char *const argv[] = { "/usr/bin/gdb-multiarch", "-batch", "-nx", "-ex",
			       "set debuginfod enabled off", "-ex", (char *)sysroot, "-ex",
			       "set backtrace past-main on", "-ex", "set print frame-arguments none",
			       "-ex", file, "-ex", corecmd, "-ex", script, "-ex",
			       "thread apply all bt", NULL };
	cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
	cr_assert_eq(rr.status, 0, "gdb failed:\n%s\n%s", rr.out, rr.err);
	out = rr.out;
	rr.out = NULL;
	run_result_free(&rr);
	free(file);
	free(corecmd);
	free(script);
	return out;
}

static char *profd_bt(enum arch arch, const char *prog, const char *core, const char *maps)
{
	struct run_result rr;
	char *out;

	if (arch == ARCH_AARCH64) {
		/* Without --maps, the libraries come from the dynamic linker's list in memory. */
		char *const argv[] = { (char *)test_build_path("profd"), "stack", "--verbose",
				       "--core", (char *)core, "--exe", (char *)prog, "--sysroot",
				       AARCH64_SYSROOT, maps ? "--maps" : NULL, (char *)maps, NULL };
		cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
	} else {
		/* x86_64 cores carry NT_FILE: no --maps, that path is the one under test. */
		char *const argv[] = { (char *)test_build_path("profd"), "stack", "--verbose",
				       "--core", (char *)core, "--exe", (char *)prog, NULL };
		cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
	}
	cr_assert_eq(rr.status, 0, "profd stack failed:\n%s\n%s", rr.out, rr.err);
	out = rr.out;
	rr.out = NULL;
	run_result_free(&rr);
	return out;
}

static void run_case(enum arch arch, bool fp, const char *name, int signal_when_ready,
		     size_t want_threads)
{
	char *dir = test_tmpdir();
	char *prog, *maps, *core, *g, *p;

	cr_assert_not_null(dir);
	prog = build_prog(arch, fp, name, dir);
	maps = xasprintf("%s/maps.txt", dir);
	core = make_core(arch, prog, maps, dir, signal_when_ready);
	g = gdb_bt(arch, prog, core);
	p = profd_bt(arch, prog, core, maps);
	compare(g, p, want_threads);
	if (arch == ARCH_AARCH64) {
		free(p);
		p = profd_bt(arch, prog, core, NULL);
		compare(g, p, want_threads);
	}

	/* Passed: leave nothing behind (a failing case keeps its directory to look at). */
	char *const rm[] = {"/bin/rm", "-rf", dir, NULL};
	struct run_result rr;

	if (test_run(rm, 30, &rr) == 0)
		run_result_free(&rr);
	free(g);
	free(p);
	free(core);
	free(maps);
	free(prog);
	free(dir);
}

/* The criterion default of a few seconds is too short for a build + qemu + gdb. */
#define CASE(arch_, fp_, name_, sig_, threads_, id_)                                               \
	Test(stack, id_, .timeout = 120)                                                           \
	{                                                                                          \
		run_case(arch_, fp_, #name_, sig_, threads_);                                      \
	}

CASE(ARCH_AARCH64, true, leaf, 0, 1, aarch64_fp_leaf_abort)
CASE(ARCH_AARCH64, false, leaf, 0, 1, aarch64_nofp_leaf_abort)
CASE(ARCH_AARCH64, true, segv, 0, 1, aarch64_fp_segv_true_leaf)
CASE(ARCH_AARCH64, false, segv, 0, 1, aarch64_nofp_segv_true_leaf)
CASE(ARCH_AARCH64, true, callback, 0, 1, aarch64_fp_qsort_callback)
CASE(ARCH_AARCH64, false, callback, 0, 1, aarch64_nofp_qsort_callback)
CASE(ARCH_AARCH64, true, threads, SIGQUIT, 5, aarch64_fp_threads_sigquit)
CASE(ARCH_AARCH64, false, threads, SIGQUIT, 5, aarch64_nofp_threads_sigquit)
CASE(ARCH_X86_64, true, leaf, 0, 1, x86_64_fp_leaf_abort)
CASE(ARCH_X86_64, false, leaf, 0, 1, x86_64_nofp_leaf_abort)
CASE(ARCH_X86_64, true, segv, 0, 1, x86_64_fp_segv_true_leaf)
CASE(ARCH_X86_64, false, segv, 0, 1, x86_64_nofp_segv_true_leaf)
CASE(ARCH_X86_64, true, callback, 0, 1, x86_64_fp_qsort_callback)
CASE(ARCH_X86_64, false, callback, 0, 1, x86_64_nofp_qsort_callback)
CASE(ARCH_X86_64, true, threads, SIGQUIT, 5, x86_64_fp_threads_sigquit)
CASE(ARCH_X86_64, false, threads, SIGQUIT, 5, x86_64_nofp_threads_sigquit)

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static void expect_error(const char *core, const char *message)
{
	char *const argv[] = { (char *)test_build_path("profd"), "stack", "--core", (char *)core,
			       NULL };
	struct run_result rr;

	cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
	cr_assert_eq(rr.status, 1, "profd stack --core %s: exit %d\n%s", core, rr.status, rr.err);
	cr_assert(strstr(rr.err, message), "expected '%s' for %s, got:\n%s", message, core, rr.err);
	run_result_free(&rr);
}

/* Bad input is an error message and exit status 1, never a crash or a backtrace. */
Test(stack, bad_input)
{
	char *dir = test_tmpdir(), *p;
	Elf64_Ehdr eh = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
				       EV_CURRENT },
			  .e_type = ET_CORE,
			  .e_machine = EM_RISCV,
			  .e_version = EV_CURRENT,
			  .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = 4 };

	cr_assert_not_null(dir);
	expect_error("/bin/true", "not an ELF core file");
	p = xasprintf("%s/text", dir);
	write_file(p, "just text\n", 10);
	expect_error(p, "not an ELF core file");
	free(p);
	p = xasprintf("%s/riscv.core", dir);
	write_file(p, &eh, sizeof(eh));
	expect_error(p, "unsupported core");
	free(p);
	/* An x86_64 core whose program headers are cut off. */
	eh.e_machine = EM_X86_64;
	p = xasprintf("%s/cut.core", dir);
	write_file(p, &eh, sizeof(eh));
	expect_error(p, "malformed or truncated core file");
	free(p);
	expect_error("/nonexistent/core", "No such file or directory");

	char *const rm[] = { "/bin/rm", "-rf", dir, NULL };
	struct run_result rr;

	if (test_run(rm, 30, &rr) == 0)
		run_result_free(&rr);
	free(dir);
}

/*
 * C++ names: `profd stack --core` names frames by the rule profd record uses, in every
 * --demangle mode (a core of the names fixture stopped by gdb in an inlined function).
 */
Test(stack, cxx_names_as_record)
{
	char *dir = test_tmpdir(), *src = xasprintf("%s/../fixtures/names.cc", cross_dir());
	char *core = xasprintf("%s/names.core", dir), *brk = NULL, *gen = NULL;
	const char *prog = test_build_path("workloads/names");
	char line[4096];
	unsigned mix_line = 0, n = 0;
	struct run_result rr;
	FILE *f = fopen(src, "re");

	cr_assert_not_null(f, "%s", src);
	while (fgets(line, sizeof(line), f) && !mix_line) {
		n++;
		if (strstr(line, "@NAMES_MIX"))
			mix_line = n;
	}
	fclose(f);
	cr_assert_gt(mix_line, 0);
	require_tool("/usr/bin/gdb");
	brk = xasprintf("break names.cc:%u", mix_line);
	gen = xasprintf("generate-core-file %s", core);
	{
		char *const argv[] = { "/usr/bin/gdb", "-batch", "-nx", "-ex",
				       "set debuginfod enabled off", "-ex", brk, "-ex", "run", "-ex",
				       gen, "--args", (char *)prog, "0", NULL };
		cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
		run_result_free(&rr);
	}
	cr_assert_eq(access(core, R_OK), 0, "gdb wrote no core");

	static const struct {
		const char *mode, *leaf, *caller;
	} want[] = {
		{ "simple", "in tgt::(anonymous namespace)::mix () [inlined]",
		  "in tgt::run_lambdas () at" },
		{ "templates", "in tgt::(anonymous namespace)::mix () [inlined]",
		  "in tgt::run_lambdas () at" },
		{ "full", "in tgt::(anonymous namespace)::mix () [inlined]",
		  "in tgt::run_lambdas(unsigned int) () at" },
		{ "none", "in tgt::(anonymous namespace)::mix () [inlined]",
		  "in _ZN3tgt11run_lambdasEj () at" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char *const argv[] = { (char *)test_build_path("profd"), "stack", "--core", core,
				       "--exe", (char *)prog, "--demangle", (char *)want[i].mode,
				       NULL };
		cr_assert_eq(test_run(argv, TOOL_TIMEOUT_S, &rr), 0);
		cr_assert_eq(rr.status, 0, "%s", rr.err);
		cr_assert(strstr(rr.out, want[i].leaf) && strstr(rr.out, want[i].caller),
			  "--demangle %s:\n%s", want[i].mode, rr.out);
		run_result_free(&rr);
	}

	/* record's summary says the same. */
	{
		char *out = xasprintf("%s/names.pb.gz", dir);
		char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "499", "-o",
				       out, "--", (char *)prog, "1", NULL };
		cr_assert_eq(test_run(argv, 120, &rr), 0);
		cr_assert_eq(rr.status, 0, "%s", rr.err);
		cr_assert(strstr(rr.out, "  tgt::(anonymous namespace)::mix\n"), "%s", rr.out);
		cr_assert(strstr(rr.out, "  tgt::run_lambdas(unsigned int)::{lambda(unsigned int, "
					 "unsigned int)#1}::operator()\n"),
			  "%s", rr.out);
		run_result_free(&rr);
		free(out);
	}
	free(brk);
	free(gen);
	free(core);
	free(src);
	free(dir);
}
