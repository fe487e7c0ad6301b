// SPDX-License-Identifier: MIT
/*
 * Faults, end to end, as root: the target execs another image mid-record, dlopen/dlclose
 * churn, a storm of short-lived processes under `record -a`, a full output filesystem,
 * SIGTERM while recording, SIGKILL of the daemon and a restart on the same state directory,
 * and a crafted process root whose symlinks point out of it.
 *
 * Each test is bounded (a few seconds of recording); the file runs in well under 90 s.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static const char *const chain[] = { "chain_leaf", "chain_c", "chain_b", "chain_a", "main" };
static const char *const exec_chain[] = { "exec_leaf", "exec_b", "exec_a", "main" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Whole file into a malloc()ed buffer (*len its size); NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, k;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		k = fread(buf + n, 1, 4096, f);
		n += k;
	} while (k > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "cannot create %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len, "cannot write %s", path);
	close(fd);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int r;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	r = system(cmd);
	free(cmd);
	return r;
}

/* Sum of values[0] of samples (of pid, or all when pid <= 0) naming function `name`. */
static uint64_t samples_naming(const Perftools__Profiles__Profile *p, pid_t pid, const char *name)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const char *names[64];
		size_t k;

		if (pid > 0 && test_sample_label_num(p, s, "pid") != pid)
			continue;
		k = test_sample_functions(p, s, names, 64);
		for (size_t j = 0; j < k; j++)
			if (names[j] && !strcmp(names[j], name)) {
				n += s->n_value ? (uint64_t)s->value[0] : 0;
				break;
			}
	}
	return n;
}

/* Samples of pid whose leaf function is unnamed ("[unknown]", empty or absent). */
static uint64_t unknown_leaves(const Perftools__Profiles__Profile *p, pid_t pid, uint64_t *total)
{
	uint64_t n = 0, t = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const char *names[64];
		size_t k;

		if (pid > 0 && test_sample_label_num(p, s, "pid") != pid)
			continue;
		t += s->n_value ? (uint64_t)s->value[0] : 0;
		k = test_sample_functions(p, s, names, 64);
		if (!k || !names[0] || !names[0][0] || strstr(names[0], "unknown"))
			n += s->n_value ? (uint64_t)s->value[0] : 0;
	}
	if (total)
		*total = t;
	return n;
}

/* Names in dir starting with prefix, joined by spaces (malloc()ed; "" when none). */
static char *list_prefixed(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *s = strdup(""), *t;

	cr_assert_not_null(s);
	if (!d)
		return s;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		cr_assert(asprintf(&t, "%s%s ", s, de->d_name) > 0);
		free(s);
		s = t;
	}
	closedir(d);
	return s;
}

/* Fork/exec argv with stdout/stderr to log; the child dies with the test. */
static pid_t start_logged(char *const argv[], const char *log)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* wait4 with a timeout: exit status (128 + signal), -1 on timeout (then killed). */
static int wait_bounded(pid_t pid, double timeout_s, struct rusage *ru)
{
	double end = now_s() + timeout_s;
	int status;

	while (now_s() < end) {
		pid_t r = wait4(pid, &status, WNOHANG, ru);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0)
			return -1;
		sleep_s(0.02);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* ---- 1. exec mid-record ------------------------------------------------------------------- */

Test(faults, exec_mid_record)
{
	char *out = test_out_path("exec.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "199", "-o", out, "-q",
			       "--", (char *)test_build_path("workloads/fault_exec"), "1.5",
			       (char *)test_build_path("workloads/chain"), "1.5", NULL };
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t before_total, after_total, unknown, total;
	double before, after;
	char *traces;

	test_require_root();
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	/* Both images, each with its whole chain named, in one process (the pid survives exec). */
	before = test_chain_fraction(p, 0, exec_chain, 4, &before_total);
	after = test_chain_fraction(p, 0, chain, 5, &after_total);
	cr_assert_gt(before * before_total, 50, "pre-exec image: %.1f%% of %lu samples",
		     before * 100, (unsigned long)before_total);
	cr_assert_gt(after * after_total, 50, "post-exec image: %.1f%% of %lu samples",
		     after * 100, (unsigned long)after_total);
	/* Together they are nearly all of it: neither image's frames went to [unknown]. */
	cr_assert_geq(before + after, 0.85, "exec chain %.1f%% + chain %.1f%%", before * 100,
		      after * 100);
	unknown = unknown_leaves(p, 0, &total);
	cr_assert_leq(unknown, total / 20, "%lu of %lu samples with an unnamed leaf",
		      (unsigned long)unknown, (unsigned long)total);
	test_pprof_free(p);
	traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "exec_leaf") && strstr(traces, "chain_leaf"), "%s", traces);
	free(traces);
	run_result_free(&rr);
	free(out);
}

/* ---- 2. dlopen/dlclose churn -------------------------------------------------------------- */

Test(faults, dlopen_churn)
{
	char *dir = test_tmpdir(), *src, *lib, *out = test_out_path("dl.pb.gz");
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t hot, total, unknown;
	static const char code[] =
		"__attribute__((noinline)) unsigned long dl_hot(unsigned long n)\n"
		"{\n"
		"\tvolatile unsigned long slot[2] = { n, 0 };\n"
		"\tfor (unsigned long i = 0; i < n; i++)\n"
		"\t\tslot[0] = slot[0] * 6364136223846793005ul + 1442695040888963407ul;\n"
		"\treturn slot[0] + slot[1];\n"
		"}\n";

	test_require_root();
	cr_assert_not_null(dir);
	cr_assert(asprintf(&src, "%s/libdlhot.c", dir) > 0);
	cr_assert(asprintf(&lib, "%s/libdlhot.so", dir) > 0);
	write_bytes(src, code, sizeof(code) - 1);
	cr_assert_eq(sh("gcc -shared -fPIC -O2 -g -fno-omit-frame-pointer -o '%s' '%s'", lib, src), 0);

	/* ~1 ms per call: thousands of map/unmap cycles of the library in 3 s. */
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "499", "-o", out, "-q",
			       "--", (char *)test_build_path("workloads/fault_dlopen"), lib, "3",
			       "500000", NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed (%d): %s", rr.status, rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	hot = samples_naming(p, 0, "dl_hot");
	unknown = unknown_leaves(p, 0, &total);
	cr_assert_gt(total, 300, "samples: %lu", (unsigned long)total);
	/* Most of the time is in dl_hot (the rest in the dynamic loader). */
	cr_assert_gt(hot, total / 4, "dl_hot named in %lu of %lu samples (unnamed leaves: %lu)",
		     (unsigned long)hot, (unsigned long)total, (unsigned long)unknown);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	run_result_free(&rr);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(src);
	free(lib);
	free(out);
}

/* ---- 3. process storm under record -a ----------------------------------------------------- */

Test(faults, process_storm_memory)
{
	char *dir = test_tmpdir(), *out, *log;
	struct rusage ru = { 0 };
	Perftools__Profiles__Profile *p;
	pid_t profd, spawner;
	int status;

	test_require_root();
	cr_assert(asprintf(&out, "%s/storm.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", "499", "-d", "4",
			       "-o", out, "-q", NULL };
	char *const wl[] = { (char *)test_build_path("workloads/fault_spawner"), "3", "200", NULL };

	profd = start_logged(argv, log);
	sleep_s(0.5);
	spawner = test_spawn(wl);
	cr_assert_gt(spawner, 0);
	status = wait_bounded(profd, 40, &ru);
	test_wait(spawner, 10);
	char *l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d: %s", status, l ? l : "");
	/* ru_maxrss is in KiB. */
	cr_log_info("profd max RSS under a process storm: %ld KiB", ru.ru_maxrss);
	cr_assert_lt(ru.ru_maxrss, 256 * 1024, "profd max RSS %ld KiB", ru.ru_maxrss);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert_gt(p->n_sample, 0);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(out);
	free(log);
}

/* ---- 5. full / read-only output directory ------------------------------------------------- */

static const char earlier_content[] = "an earlier profile, which must survive\n";

/* A 64 KiB tmpfs at dir/mnt holding `earlier.pb.gz`; full to the last byte when fill. */
static char *small_tmpfs(const char *dir, bool fill)
{
	char *mnt, *path, block[4096];
	int fd;

	cr_assert(asprintf(&mnt, "%s/mnt", dir) > 0);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0755"), 0, "mount: %s",
		     strerror(errno));
	cr_assert(asprintf(&path, "%s/earlier.pb.gz", mnt) > 0);
	write_bytes(path, earlier_content, sizeof(earlier_content) - 1);
	free(path);
	if (fill) {
		cr_assert(asprintf(&path, "%s/filler", mnt) > 0);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		cr_assert_geq(fd, 0);
		memset(block, 'x', sizeof(block));
		while (write(fd, block, sizeof(block)) > 0)
			;
		while (write(fd, block, 1) > 0)
			;
		close(fd);
		free(path);
	}
	return mnt;
}

static void check_dir_after_failure(const char *mnt)
{
	char *path, *content, *left;

	cr_assert(asprintf(&path, "%s/earlier.pb.gz", mnt) > 0);
	content = slurp(path, NULL);
	cr_assert_not_null(content, "the earlier profile is gone");
	cr_assert_str_eq(content, earlier_content, "the earlier profile changed");
	free(content);
	free(path);
	cr_assert(asprintf(&path, "%s/new.pb.gz", mnt) > 0);
	cr_assert_neq(access(path, F_OK), 0, "a partial %s was left", path);
	free(path);
	left = list_prefixed(mnt, ".");
	cr_assert_str_eq(left, "", "temp files left: %s", left);
	free(left);
}

Test(faults, output_fs_full)
{
	char *dir = test_tmpdir(), *mnt, *out;
	struct run_result rr;

	test_require_root();
	mnt = small_tmpfs(dir, true);
	cr_assert(asprintf(&out, "%s/new.pb.gz", mnt) > 0);
	/* A busy host-wide second: far more than the 0 bytes left. */
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3", NULL };
	pid_t w = test_spawn(wl);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", "199", "-d", "1",
			       "-o", out, "-q", NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	test_wait(w, 10);
	check_dir_after_failure(mnt);
	umount2(mnt, MNT_DETACH);
	cr_assert_neq(rr.status, 0, "profd exited 0 writing to a full filesystem");
	cr_assert(strstr(rr.err, "No space left") && strstr(rr.err, out),
		  "unclear message: %s", rr.err);
	run_result_free(&rr);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(mnt);
	free(out);
}

Test(faults, output_dir_read_only)
{
	char *dir = test_tmpdir(), *mnt, *out;
	struct run_result rr;
	double t0;

	test_require_root();
	mnt = small_tmpfs(dir, false);
	cr_assert_eq(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0, "remount: %s",
		     strerror(errno));
	cr_assert(asprintf(&out, "%s/new.pb.gz", mnt) > 0);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-d", "3", "-o", out,
			       "-q", NULL };
	t0 = now_s();
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	check_dir_after_failure(mnt);
	umount2(mnt, MNT_DETACH);
	cr_assert_neq(rr.status, 0, "profd exited 0 with a read-only output directory");
	cr_assert(strstr(rr.err, "Read-only file system") && strstr(rr.err, mnt),
		  "unclear message: %s", rr.err);
	/* Refused before recording, not after 3 s of samples thrown away. */
	cr_assert_lt(now_s() - t0, 2.5, "profd recorded before finding the output unwritable");
	run_result_free(&rr);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(mnt);
	free(out);
}

/* ---- 6. SIGTERM while recording; SIGKILL + restart of the daemon ------------------------- */

Test(faults, sigterm_while_recording)
{
	char *dir = test_tmpdir(), *out, *log, *l;
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "4", NULL };
	Perftools__Profiles__Profile *p;
	uint64_t total;
	double frac;
	pid_t w, profd;
	int status;

	test_require_root();
	cr_assert(asprintf(&out, "%s/term.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	char pidstr[16];
	snprintf(pidstr, sizeof(pidstr), "%d", w);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-o", out, "-q", NULL };
	profd = start_logged(argv, log);
	sleep_s(2.5);
	kill(profd, SIGTERM);
	status = wait_bounded(profd, 30, NULL);
	test_wait(w, 10);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d after SIGTERM: %s", status, l ? l : "");
	p = test_pprof_load(out);
	cr_assert_not_null(p, "no profile after SIGTERM: %s", l ? l : "");
	frac = test_chain_fraction(p, w, chain, 5, &total);
	cr_assert_gt(total, 50, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.8, "chain in %.1f%%", frac * 100);
	test_pprof_free(p);
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(out);
	free(log);
}

#define MAX_FILES 64

struct snap {
	size_t n;
	char *name[MAX_FILES], *data[MAX_FILES];
	size_t len[MAX_FILES];
};

static void snap_take(struct snap *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *path;

	memset(s, 0, sizeof(*s));
	cr_assert_not_null(d);
	while ((de = readdir(d)) && s->n < MAX_FILES) {
		if (strncmp(de->d_name, "profile-", 8))
			continue;
		cr_assert(asprintf(&path, "%s/%s", dir, de->d_name) > 0);
		s->name[s->n] = strdup(de->d_name);
		s->data[s->n] = slurp(path, &s->len[s->n]);
		free(path);
		s->n++;
	}
	closedir(d);
}

static bool snap_has(const struct snap *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return true;
	return false;
}

/* Wait until dir holds a profile-* file not in `old` (complete: it is renamed in place). */
static bool wait_new_profile(const char *dir, const struct snap *old, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (now_s() < end) {
		DIR *d = opendir(dir);
		struct dirent *de;
		bool found = false;

		while (d && (de = readdir(d)))
			if (!strncmp(de->d_name, "profile-", 8) && !snap_has(old, de->d_name))
				found = true;
		if (d)
			closedir(d);
		if (found)
			return true;
		sleep_s(0.1);
	}
	return false;
}

Test(faults, daemon_sigkill_restart)
{
	char *dir = test_tmpdir(), *conf, *state, *log, *stale, *l, *left;
	struct snap empty = { 0 }, before, after;
	pid_t d;
	int status;

	test_require_root();
	cr_assert(asprintf(&conf, "%s/profd.conf", dir) > 0);
	cr_assert(asprintf(&state, "%s/state", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	FILE *f = fopen(conf, "we");
	cr_assert_not_null(f);
	fprintf(f, "interval = 1s\noutput_dir = %s\nlisten = \"\"\nspool_dir = %s/spool\n"
		   "frequency = 49\nlog_level = info\n", state, dir);
	fclose(f);
	char *const argv[] = { (char *)test_build_path("profd"), "daemon", "--config", conf, NULL };

	d = start_logged(argv, log);
	/* Two complete intervals, then the third is being captured when it is killed. */
	cr_assert(wait_new_profile(state, &empty, 20), "no interval file: %s", slurp(log, NULL));
	snap_take(&before, state);
	cr_assert(wait_new_profile(state, &before, 10), "no second interval file");
	sleep_s(0.5);
	kill(d, SIGKILL);
	waitpid(d, NULL, 0);
	snap_take(&before, state);
	cr_assert_geq(before.n, 2);
	/* What a crash between write and rename leaves. */
	cr_assert(asprintf(&stale, "%s/.profile-20200101T000000Z.pb.gz.Ab12Cd", state) > 0);
	write_bytes(stale, "half a profile", 14);

	d = start_logged(argv, log);
	cr_assert(wait_new_profile(state, &before, 20), "restarted daemon wrote no interval: %s",
		  slurp(log, NULL));
	status = 0;
	kill(d, SIGTERM);
	status = wait_bounded(d, 30, NULL);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "daemon exit %d after restart: %s", status, l ? l : "");

	snap_take(&after, state);
	for (size_t i = 0; i < before.n; i++) {
		bool same = false;

		for (size_t j = 0; j < after.n; j++)
			if (!strcmp(after.name[j], before.name[i]))
				same = after.len[j] == before.len[i] &&
				       !memcmp(after.data[j], before.data[i], before.len[i]);
		cr_assert(same, "earlier interval %s changed or vanished", before.name[i]);
	}
	for (size_t j = 0; j < after.n; j++) {
		char *path;
		Perftools__Profiles__Profile *p;

		cr_assert(asprintf(&path, "%s/%s", state, after.name[j]) > 0);
		p = test_pprof_load(path);
		cr_assert_not_null(p, "%s does not decode", path);
		test_pprof_free(p);
		free(path);
	}
	left = list_prefixed(state, ".");
	cr_assert_str_eq(left, "", "temp files left after restart: %s", left);
	free(left);
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(conf);
	free(state);
	free(log);
	free(stale);
}

/* ---- 7. path safety: symlinks in a process's root must not lead out of it ---------------- */

/*
 * A chroot holding jit_spin and its libraries, whose /tmp is a symlink (absolute, or made of
 * `..`) to /profd-escape-N. Inside the chroot that names ROOT/profd-escape-N, where jit_spin
 * writes its perf map (jit_spin_loop). On the host /profd-escape-N exists too, with a forged
 * map for the same addresses (escaped_*). profd opens the map through /proc/PID/root with
 * RESOLVE_IN_ROOT: it must find the real one; escaped_* names mean it followed the link out.
 */
static void crafted_root(bool absolute)
{
	char *dir = test_tmpdir(), *root, *escape, *target, *inner, *outer, *out, *pidstr;
	struct run_result rr;
	Perftools__Profiles__Profile *p;
	uint64_t good, bad, total;
	double end;
	pid_t w;

	test_require_root();
	cr_assert(asprintf(&root, "%s/root", dir) > 0);
	cr_assert(asprintf(&escape, "/profd-escape-%d", (int)getpid()) > 0);
	cr_assert_eq(mkdir(root, 0755), 0);
	cr_assert_eq(sh("cp '%s' '%s/jit_spin' && for f in $(ldd '%s' | grep -o '/[^ ]*'); do "
			"cp --parents -L \"$f\" '%s' || exit 1; done",
			test_build_path("workloads/jit_spin"), root,
			test_build_path("workloads/jit_spin"), root),
		     0);
	cr_assert(asprintf(&inner, "%s%s", root, escape) > 0);
	cr_assert_eq(mkdir(inner, 01777), 0);
	cr_assert(mkdir(escape, 01777) == 0 || errno == EEXIST);
	if (absolute)
		target = strdup(escape);
	else
		cr_assert(asprintf(&target, "../../../../../../../..%s", escape) > 0);
	free(inner);
	cr_assert(asprintf(&inner, "%s/tmp", root) > 0);
	cr_assert_eq(symlink(target, inner), 0);

	char *const wl[] = { "/usr/sbin/chroot", root, "/jit_spin", "4", "--keep-map", NULL };
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	free(inner);
	cr_assert(asprintf(&inner, "%s%s/perf-%d.map", root, escape, (int)w) > 0);
	cr_assert(asprintf(&outer, "%s/perf-%d.map", escape, (int)w) > 0);
	for (end = now_s() + 5; access(inner, R_OK) != 0 && now_s() < end;)
		sleep_s(0.05);
	cr_assert_eq(access(inner, R_OK), 0, "jit_spin wrote no map in its root");
	sleep_s(0.1);
	/* The forged map on the host: same ranges, other names. */
	cr_assert_eq(sh("sed 's/ jit_/ escaped_jit_/' '%s' > '%s'", inner, outer), 0);

	cr_assert(asprintf(&pidstr, "%d", (int)w) > 0);
	cr_assert(asprintf(&out, "%s/root.pb.gz", dir) > 0);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "2", "-o", out, "-q", NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	test_wait(w, 10);
	sh("rm -rf '%s'", escape);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	good = samples_naming(p, w, "jit_spin_loop");
	bad = samples_naming(p, w, "escaped_jit_spin_loop");
	unknown_leaves(p, w, &total);
	cr_assert_eq(bad, 0, "profd read the host's map through the root's %s /tmp symlink "
		     "(%lu samples)", absolute ? "absolute" : "`..`", (unsigned long)bad);
	cr_assert_gt(good, total / 2, "jit_spin_loop in %lu of %lu samples", (unsigned long)good,
		     (unsigned long)total);
	test_pprof_free(p);
	run_result_free(&rr);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(root);
	free(escape);
	free(target);
	free(inner);
	free(outer);
	free(out);
	free(pidstr);
}

Test(faults, root_absolute_symlink_stays_inside)
{
	crafted_root(true);
}

Test(faults, root_dotdot_symlink_stays_inside)
{
	crafted_root(false);
}

Test(faults, tiny_ring_buffer_counts_drops)
{
	/*
	 * 8 KiB of ring buffer cannot hold one 32 KiB stack copy, and the workload keeps 48 KiB
	 * of stack live: every one of its samples is lost, and must be counted.
	 */
	char *out = test_out_path("tiny-rb.pb.gz");
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-F", "999",
			       "--ring-buffer", "8192", "-o", out, "--",
			       (char *)test_build_path("workloads/fault_bigstack"), "2", NULL };
	struct run_result rr;
	unsigned long lost = 0;
	const char *l;

	test_require_root();
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	l = strstr(rr.out, "(lost ");
	cr_assert_not_null(l, "no lost count in the summary: %s", rr.out);
	lost = strtoul(l + 6, NULL, 10);
	cr_assert_gt(lost, 500, "drops not counted: %s", rr.out);
	/* The profile is still written, and readable by the real pprof (it may hold no sample). */
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	cr_assert_not_null(p);
	test_pprof_free(p);
	run_result_free(&rr);
	free(out);
}
