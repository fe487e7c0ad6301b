// SPDX-License-Identifier: MIT
/*
 * Faults, end to end, as root: the target execs another image mid-record, dlopen/dlclose
 * churn, a storm of short-lived processes under `record -a`, a full output filesystem,
 * SIGTERM while recording, SIGKILL of the daemon and a restart on the same state directory,
 * a crafted process root whose symlinks point out of it, a mapped executable or library
 * replaced on disk (and a library truncated in place) while profiled, and SIGTERM while the
 * daemon is held inside an interval file's write (under strace).
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

	profd = test_spawn_logged(argv, log, NULL);
	/* The storm starts once profd samples, so all of it falls in the recording. */
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	spawner = test_spawn(wl);
	cr_assert_gt(spawner, 0);
	status = wait_bounded(profd, 40, &ru);
	test_wait(spawner, 10);
	char *l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d: %s", status, l ? l : "");
	/* ru_maxrss is in KiB. */
	cr_log_info("profd max RSS under a process storm: %ld KiB", ru.ru_maxrss);
	/* The documented cap is for the plain build; ASan's shadow memory and quarantine (make
	 * test-san sets ASAN_OPTIONS) add a fixed overhead, so that build gets twice the room. */
	long cap_kib = getenv("ASAN_OPTIONS") ? 2 * 256 * 1024 : 256 * 1024;
	cr_assert_lt(ru.ru_maxrss, cap_kib, "profd max RSS %ld KiB (cap %ld KiB)", ru.ru_maxrss,
		     cap_kib);
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
	/* A busy host-wide second (the test's own workload): far more than the 0 bytes left. */
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
	pid_t w = test_spawn(wl);
	cr_assert_gt(w, 0);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-F", "199", "-d", "1",
			       "-o", out, "-q", NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	test_kill(w);
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

	test_require_root();
	mnt = small_tmpfs(dir, false);
	cr_assert_eq(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0, "remount: %s",
		     strerror(errno));
	cr_assert(asprintf(&out, "%s/new.pb.gz", mnt) > 0);
	/*
	 * Refused before recording, not after the samples of the duration were thrown away: with
	 * -d 600, a profd that recorded first is still running when test_run kills it at 60 s.
	 */
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-a", "-d", "600", "-o",
			       out, "-q", NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_neq(rr.status, 128 + SIGKILL, "profd recorded before finding the output unwritable");
	check_dir_after_failure(mnt);
	umount2(mnt, MNT_DETACH);
	cr_assert_neq(rr.status, 0, "profd exited 0 with a read-only output directory");
	cr_assert(strstr(rr.err, "Read-only file system") && strstr(rr.err, mnt),
		  "unclear message: %s", rr.err);
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
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
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
			       "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	/* Sampling, and 1 s of the workload's CPU time since (~199 samples), however busy the host. */
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	cr_assert(test_wait_cpu(w, 1.0, 120), "the workload got no 1 s of CPU in 120 s");
	kill(profd, SIGTERM);
	status = wait_bounded(profd, 60, NULL);
	test_kill(w);
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

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->data[i]);
	}
	s->n = 0;
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

	d = test_spawn_logged(argv, log, NULL);
	/* Two complete intervals, then the third is being captured when it is killed. */
	cr_assert(wait_new_profile(state, &empty, 60), "no interval file: %s", slurp(log, NULL));
	snap_take(&before, state);
	cr_assert(wait_new_profile(state, &before, 60), "no second interval file");
	sleep_s(0.5);
	kill(d, SIGKILL);
	waitpid(d, NULL, 0);
	snap_free(&before);
	snap_take(&before, state);
	cr_assert_geq(before.n, 2);
	/* What a crash between write and rename leaves. */
	cr_assert(asprintf(&stale, "%s/.profile-20200101T000000Z.pb.gz.Ab12Cd", state) > 0);
	write_bytes(stale, "half a profile", 14);

	d = test_spawn_logged(argv, log, NULL);
	cr_assert(wait_new_profile(state, &before, 60), "restarted daemon wrote no interval: %s",
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
	snap_free(&before);
	snap_free(&after);
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

	/* Runs until killed: it outlives the recording however long profd takes to start. */
	char *const wl[] = { "/usr/sbin/chroot", root, "/jit_spin", "3600", "--keep-map", NULL };
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	free(inner);
	cr_assert(asprintf(&inner, "%s%s/perf-%d.map", root, escape, (int)w) > 0);
	cr_assert(asprintf(&outer, "%s/perf-%d.map", escape, (int)w) > 0);
	for (end = now_s() + 60; access(inner, R_OK) != 0 && now_s() < end;)
		sleep_s(0.05);
	cr_assert_eq(access(inner, R_OK), 0, "jit_spin wrote no map in its root");
	sleep_s(0.1);
	/* The forged map on the host: same ranges, other names. */
	cr_assert_eq(sh("sed 's/ jit_/ escaped_jit_/' '%s' > '%s'", inner, outer), 0);

	cr_assert(asprintf(&pidstr, "%d", (int)w) > 0);
	cr_assert(asprintf(&out, "%s/root.pb.gz", dir) > 0);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "2", "-o", out, NULL };
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	test_kill(w);
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

/* ---- 8. a mapped binary replaced on disk while it is profiled --------------------------- */

/*
 * Two builds of one program or library that differ only in the names of their functions:
 * `orig_*` runs, `fake_*` is written over its path (a new file renamed into place, the way
 * package managers and deploy tools replace binaries). The code is byte for byte the same, at
 * the same addresses, so symbolizing with the file now at the path would name every sample
 * fake_*: only the file actually mapped (/proc/PID/map_files) names them orig_*.
 */
static const char replace_exe_src[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include <time.h>\n"
	"#include <unistd.h>\n"
	"#define NI __attribute__((noinline, noipa))\n"
	"static volatile unsigned long sink;\n"
	"static double now(void)\n"
	"{\n"
	"\tstruct timespec ts;\n"
	"\tclock_gettime(CLOCK_MONOTONIC, &ts);\n"
	"\treturn ts.tv_sec + ts.tv_nsec / 1e9;\n"
	"}\n"
	"NI void LEAF(unsigned long n)\n"
	"{\n"
	"\tvolatile unsigned long slot[2] = { sink, 0 };\n"
	"\tfor (unsigned long i = 0; i < n; i++)\n"
	"\t\tslot[0] = slot[0] * 6364136223846793005ul + 1442695040888963407ul;\n"
	"\tsink = slot[0] + slot[1];\n"
	"}\n"
	"NI void MID(unsigned long n)\n"
	"{\n"
	"\tLEAF(n);\n"
	"\tsink++;\n"
	"}\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tdouble end = now() + atof(argv[1]);\n"
	"\tprintf(\"%d\\n\", (int)getpid());\n"
	"\tfflush(stdout);\n"
	"\twhile (now() < end)\n"
	"\t\tMID(2000000);\n"
	"\treturn 0;\n"
	"}\n";

static const char replace_lib_src[] =
	"#define NI __attribute__((noinline, noipa))\n"
	"static volatile unsigned long sink;\n"
	"NI unsigned long HOT(unsigned long n)\n"
	"{\n"
	"\tvolatile unsigned long slot[2] = { n, 0 };\n"
	"\tfor (unsigned long i = 0; i < n; i++)\n"
	"\t\tslot[0] = slot[0] * 6364136223846793005ul + 1442695040888963407ul;\n"
	"\treturn slot[0] + slot[1];\n"
	"}\n"
	"unsigned long replace_entry(unsigned long n)\n"
	"{\n"
	"\treturn HOT(n) + sink;\n"
	"}\n";

#define REPLACE_CFLAGS "-O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer"

/* Build src into out with `defines`; the source goes next to out. */
static void build_variant(const char *src, const char *out, const char *flags, const char *defines)
{
	char *c;

	cr_assert(asprintf(&c, "%s.c", out) > 0);
	write_bytes(c, src, strlen(src));
	cr_assert_eq(sh("gcc " REPLACE_CFLAGS " %s %s -o '%s' '%s'", flags, defines, out, c), 0,
		     "cannot build %s", out);
	free(c);
}

/* Replace path by a copy of from, as a new inode renamed over it. */
static void replace_by_rename(const char *from, const char *path)
{
	char *tmp;

	cr_assert(asprintf(&tmp, "%s.new", path) > 0);
	cr_assert_eq(sh("cp '%s' '%s' && chmod 0755 '%s'", from, tmp, tmp), 0);
	cr_assert_eq(rename(tmp, path), 0, "rename: %s", strerror(errno));
	free(tmp);
}

/* /proc/pid/maps maps path, and says it is deleted (replaced): the replacement took. */
static bool maps_show(pid_t pid, const char *path, bool deleted)
{
	char *maps_path, *maps, *want;
	bool found;

	cr_assert(asprintf(&maps_path, "/proc/%d/maps", (int)pid) > 0);
	cr_assert(asprintf(&want, "%s%s\n", path, deleted ? " (deleted)" : "") > 0);
	maps = slurp(maps_path, NULL);
	found = maps && strstr(maps, want);
	free(maps);
	free(maps_path);
	free(want);
	return found;
}

static void check_replaced_profile(const char *out, pid_t pid, const char *const *good,
				   size_t n_good, const char *bad_leaf, const char *bad_mid)
{
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	uint64_t total, bad;
	double frac;
	char *traces;

	cr_assert_not_null(p);
	frac = test_chain_fraction(p, pid, good, n_good, &total);
	bad = samples_naming(p, pid, bad_leaf) + samples_naming(p, pid, bad_mid);
	cr_assert_gt(total, 100, "samples of the workload: %lu", (unsigned long)total);
	cr_assert_eq(bad, 0, "%lu samples named from the new file at the path (%s)",
		     (unsigned long)bad, bad_leaf);
	cr_assert_geq(frac, 0.8, "%s chain in %.1f%% of %lu samples", good[0], frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);
	/* The real pprof agrees. */
	traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, good[0]) && strstr(traces, good[1]), "%s", traces);
	cr_assert_null(strstr(traces, bad_leaf), "%s", traces);
	free(traces);
}

Test(faults, mapped_exe_replaced_on_disk)
{
	static const char *const good[] = { "orig_leaf", "orig_mid", "main" };
	char *dir = test_tmpdir(), *app, *fake, *out, *log, *l, pidstr[16];
	pid_t w, profd;
	int status;

	test_require_root();
	cr_assert(asprintf(&app, "%s/app", dir) > 0);
	cr_assert(asprintf(&fake, "%s/fake", dir) > 0);
	cr_assert(asprintf(&out, "%s/exe.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	build_variant(replace_exe_src, app, "", "-DLEAF=orig_leaf -DMID=orig_mid");
	build_variant(replace_exe_src, fake, "", "-DLEAF=fake_leaf -DMID=fake_mid");

	char *const wl[] = { app, "3600", NULL };
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	/* Replaced before profd first reads the maps... */
	replace_by_rename(fake, app);
	cr_assert(maps_show(w, app, true), "the running image is not shown as replaced");
	snprintf(pidstr, sizeof(pidstr), "%d", (int)w);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	/* ...and again while it records (0.5 s of the workload's CPU time into it)... */
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	cr_assert(test_wait_cpu(w, 0.5, 120), "the workload got no CPU");
	replace_by_rename(fake, app);
	/* ...which goes on for 1 s more of it (~300 samples in all, however busy the host). */
	cr_assert(test_wait_cpu(w, 1.0, 120), "the workload got no CPU");
	kill(profd, SIGTERM);
	status = wait_bounded(profd, 60, NULL);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d: %s", status, l ? l : "");
	kill(w, SIGKILL);
	test_wait(w, 10);
	check_replaced_profile(out, w, good, 3, "fake_leaf", "fake_mid");
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(app);
	free(fake);
	free(out);
	free(log);
}

Test(faults, dlopened_lib_replaced_on_disk)
{
	static const char *const good[] = { "orig_hot", "replace_entry", "main" };
	char *dir = test_tmpdir(), *lib, *fake, *out, *log, *l, pidstr[16];
	pid_t w, profd;
	double end;
	int status;

	test_require_root();
	cr_assert(asprintf(&lib, "%s/libreplace.so", dir) > 0);
	cr_assert(asprintf(&fake, "%s/libfake.so", dir) > 0);
	cr_assert(asprintf(&out, "%s/lib.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	build_variant(replace_lib_src, lib, "-shared -fPIC", "-DHOT=orig_hot");
	build_variant(replace_lib_src, fake, "-shared -fPIC", "-DHOT=fake_hot");

	char *const wl[] = { (char *)test_build_path("workloads/fault_replace"), lib, "3", NULL };
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)w);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "600", "-o", out, NULL };
	/*
	 * profd reads the maps before the library exists in them; the workload is off CPU (no
	 * sample makes profd look again) until the library is mapped and replaced, so profd
	 * first opens it when its first sample misses, after the replacement.
	 */
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	kill(w, SIGUSR1);
	for (end = now_s() + 60; !maps_show(w, lib, false) && now_s() < end;)
		sleep_s(0.02);
	cr_assert(maps_show(w, lib, false), "the workload did not map %s", lib);
	replace_by_rename(fake, lib);
	cr_assert(maps_show(w, lib, true), "the mapped library is not shown as replaced");
	kill(w, SIGUSR1);
	status = wait_bounded(profd, 60, NULL);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d: %s", status, l ? l : "");
	test_wait(w, 10);
	check_replaced_profile(out, w, good, 3, "fake_hot", "fake_hot");
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(lib);
	free(fake);
	free(out);
	free(log);
}

/*
 * Truncated in place (O_TRUNC on the mapped inode, as `cp new old` does): the workload dies of
 * SIGBUS at its next instruction in the library; profd, which holds the same inode open, must
 * still write a valid profile, naming the library's frames honestly (the fallback
 * "libreplace.so+0x..." once the file is empty), never crash or borrow another file's names.
 */
Test(faults, dlopened_lib_truncated_in_place)
{
	char *dir = test_tmpdir(), *lib, *out, *log, *l, pidstr[16];
	Perftools__Profiles__Profile *p;
	uint64_t total = 0, in_lib = 0;
	pid_t w, profd;
	double end;
	int status, fd;

	test_require_root();
	cr_assert(asprintf(&lib, "%s/libreplace.so", dir) > 0);
	cr_assert(asprintf(&out, "%s/trunc.pb.gz", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	build_variant(replace_lib_src, lib, "-shared -fPIC", "-DHOT=orig_hot");

	char *const wl[] = { (char *)test_build_path("workloads/fault_replace"), lib, "3600", NULL };
	w = test_spawn(wl);
	cr_assert_gt(w, 0);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)w);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F", "199",
			       "-d", "600", "-o", out, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	kill(w, SIGUSR1);
	for (end = now_s() + 60; !maps_show(w, lib, false) && now_s() < end;)
		sleep_s(0.02);
	kill(w, SIGUSR1);
	/* 1.5 s of work in the library (~300 samples) before it is truncated, however busy. */
	cr_assert(test_wait_cpu(w, 1.5, 120), "the workload got no CPU");
	fd = open(lib, O_WRONLY | O_TRUNC | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	close(fd);
	status = test_wait(w, 60);
	cr_assert_eq(status, 128 + SIGBUS, "the workload survived the truncation (%d)?", status);
	status = wait_bounded(profd, 60, NULL);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "profd exit %d: %s", status, l ? l : "");
	p = test_pprof_load(out);
	cr_assert_not_null(p);
	for (size_t i = 0; i < p->n_sample; i++) {
		const char *names[64];
		size_t k = test_sample_functions(p, p->sample[i], names, 64);

		if (test_sample_label_num(p, p->sample[i], "pid") != w || !k)
			continue;
		total += p->sample[i]->value[0];
		cr_assert(names[0] && names[0][0], "a sample without a leaf name");
		if (!strcmp(names[0], "orig_hot") || !strncmp(names[0], "libreplace.so+0x", 16))
			in_lib += p->sample[i]->value[0];
	}
	cr_assert_gt(total, 100, "samples of the workload: %lu", (unsigned long)total);
	cr_assert_geq(in_lib, total * 8 / 10, "only %lu of %lu leaves in the library",
		      (unsigned long)in_lib, (unsigned long)total);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(l);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(lib);
	free(out);
	free(log);
}

/* ---- 9. SIGTERM while the daemon writes an interval file -------------------------------- */

/*
 * The child of pid named comm, or 0. strace forks short-lived children of its own at start (to
 * probe ptrace features) before the one that runs the command: only the name tells them apart.
 */
static pid_t child_named(pid_t pid, const char *comm)
{
	char path[64], *s, *c;
	pid_t found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	s = slurp(path, NULL);
	for (char *p = s; p && *p && !found;) {
		char *end;
		pid_t k = (pid_t)strtol(p, &end, 10);

		if (end == p)
			break;
		p = end;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)k);
		c = slurp(path, NULL);
		if (c && !strncmp(c, comm, strlen(comm)) && c[strlen(comm)] == '\n')
			found = k;
		free(c);
	}
	free(s);
	return found;
}

/* The syscall pid is stopped in ("N arg1 ..." of /proc/pid/syscall): N, or -1; *ret_arg1. */
static long stopped_syscall(pid_t pid, unsigned long *ret_arg1)
{
	char path[64], *s;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	s = slurp(path, NULL);
	if (s && sscanf(s, "%ld %lx", &nr, ret_arg1) != 2)
		nr = -1;
	free(s);
	return nr;
}

/* pid is in a ptrace stop ("t (tracing stop)"), not merely running or in the syscall. */
static bool tracing_stop(pid_t pid)
{
	char path[64], *s;
	bool stopped;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = slurp(path, NULL);
	stopped = s && strstr(s, "\nState:\tt ");
	free(s);
	return stopped;
}

/*
 * pid is held by strace at the entry of syscall nr: in a ptrace stop inside it, and still there
 * 0.5 s later. A real fsync() in progress (the disk flushing) is not a ptrace stop, and strace
 * resumes the syscalls it does not hold within microseconds.
 */
static bool held_in_syscall(pid_t pid, long nr, unsigned long *ret_arg1)
{
	unsigned long a1, a2;

	if (stopped_syscall(pid, &a1) != nr || !tracing_stop(pid))
		return false;
	sleep_s(0.5);
	if (stopped_syscall(pid, &a2) != nr || a2 != a1 || !tracing_stop(pid))
		return false;
	*ret_arg1 = a1;
	return true;
}

/* SIGTERM is pending for pid (process-wide or for its main thread). */
static bool sigterm_pending(pid_t pid)
{
	char path[64], *s, *p;
	bool pending = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = slurp(path, NULL);
	cr_assert_not_null(s);
	for (p = s; (p = strstr(p, "Pnd:\t")); p += 5)
		if (strtoull(p + 5, NULL, 16) & (1ull << (SIGTERM - 1)))
			pending = true;
	free(s);
	return pending;
}

/*
 * Deterministic, not a race: the daemon runs under strace, which holds the fsync() of the
 * second interval's temp file (the profile fully written, not yet renamed into place) for 10 s.
 * The test sees the daemon held in exactly that syscall (a lasting ptrace stop in fsync per
 * /proc/PID/status and /proc/PID/syscall, on an fd that is the temp file), sends SIGTERM then,
 * and checks the signal is pending while the write is still held. Afterwards: exit 0, the interval being written is complete and opens in the real
 * pprof, the earlier interval is unchanged, the final partial interval exists, no temp file is
 * left, and the modes are 0640 in a 0750 directory.
 */
Test(faults, sigterm_during_interval_write, .timeout = 180)
{
	char *dir = test_tmpdir(), *conf, *state, *log, *stlog, *l, *left, *name, *path;
	char fdpath[64], target[512];
	struct snap before, after;
	unsigned long fd = 0;
	pid_t st, d = 0;
	ssize_t n;
	double end;
	bool held = false;
	int status;

	test_require_root();
	/* LeakSanitizer cannot run under ptrace (strace holds the daemon): in the sanitizer
	 * build, keep ASan and UBSan but not the exit-time leak check for this one daemon. */
	if (getenv("ASAN_OPTIONS")) {
		char *o = NULL;

		cr_assert_geq(asprintf(&o, "%s:detect_leaks=0", getenv("ASAN_OPTIONS")), 0);
		setenv("ASAN_OPTIONS", o, 1);
		free(o);
	}
	cr_assert_eq(access("/usr/bin/strace", X_OK), 0, "strace is missing: make deps installs it");
	cr_assert(asprintf(&conf, "%s/profd.conf", dir) > 0);
	cr_assert(asprintf(&state, "%s/state", dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", dir) > 0);
	cr_assert(asprintf(&stlog, "%s/strace.log", dir) > 0);
	FILE *f = fopen(conf, "we");
	cr_assert_not_null(f);
	fprintf(f, "interval = 1s\noutput_dir = %s\nlisten = \"\"\nfrequency = 99\n"
		   "log_level = info\n", state);
	fclose(f);
	char *const wl[] = { (char *)test_build_path("workloads/chain"), "3600", NULL };
	pid_t w = test_spawn(wl);
	cr_assert_gt(w, 0);

	/*
	 * Each interval fsync()s its temp file, then (after the rename) the directory: the third
	 * fsync is the second interval's temp file. The log of the traced fsyncs shows which one
	 * was held ("(DELAYED)").
	 */
	char *const argv[] = { "/usr/bin/strace", "-f", "-qq", "-tt", "-o", stlog, "-e", "trace=fsync",
			       "-e", "signal=none", "-e", "inject=fsync:delay_enter=10s:when=3", "--",
			       (char *)test_build_path("profd"), "daemon", "--config", conf, NULL };
	st = test_spawn_logged(argv, log, NULL);
	for (end = now_s() + 60; !(d = child_named(st, "profd")) && now_s() < end;)
		sleep_s(0.01);
	cr_assert_gt(d, 0, "strace started no daemon: %s", slurp(log, NULL));
	for (end = now_s() + 60; !(held = held_in_syscall(d, 74, &fd)) && now_s() < end;)
		sleep_s(0.01);
	cr_assert(held, "the daemon was never held in fsync (x86_64: 74): %s", slurp(log, NULL));
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%lu", (int)d, fd);
	n = readlink(fdpath, target, sizeof(target) - 1);
	cr_assert_gt(n, 0);
	target[n] = '\0';
	/* STATE/.profile-STAMP.pb.gz.XXXXXX: the profile being written, before its rename. */
	name = strrchr(target, '/');
	cr_assert(name && !strncmp(target, state, strlen(state)) &&
			  !strncmp(name, "/.profile-", 10) && strstr(name, ".pb.gz."),
		  "held fsync of %s, not of an interval's temp file", target);
	name = strndup(name + 2, strstr(name, ".pb.gz.") + 6 - (name + 2));
	cr_assert(asprintf(&path, "%s/%s", state, name) > 0);
	snap_take(&before, state);
	cr_assert_geq(before.n, 1, "no complete interval before the held one");
	cr_assert(!snap_has(&before, name), "%s already there", name);

	kill(d, SIGTERM);
	cr_assert(held_in_syscall(d, 74, &fd), "the write was not held when SIGTERM came");
	cr_assert(sigterm_pending(d), "SIGTERM is not pending during the held write");

	status = wait_bounded(st, 60, NULL);
	l = slurp(log, NULL);
	cr_assert_eq(status, 0, "daemon exit %d after SIGTERM during a write: %s", status,
		     l ? l : "");
	free(l);
	l = slurp(stlog, NULL);
	cr_assert(l && strstr(l, "(DELAYED)"), "strace held no fsync: %s", l ? l : "");
	free(l);

	/* The interval being written when SIGTERM came: complete. */
	Perftools__Profiles__Profile *p = test_pprof_load(path);
	cr_assert_not_null(p, "%s is missing or does not decode", path);
	cr_assert_gt(p->n_sample, 0);
	test_pprof_free(p);
	free(test_check_with_pprof(path));
	/* Earlier intervals untouched; one more, the partial last interval; no temp files. */
	snap_take(&after, state);
	for (size_t i = 0; i < before.n; i++) {
		bool same = false;

		for (size_t j = 0; j < after.n; j++)
			if (!strcmp(after.name[j], before.name[i]))
				same = after.len[j] == before.len[i] &&
				       !memcmp(after.data[j], before.data[i], before.len[i]);
		cr_assert(same, "earlier interval %s changed or vanished", before.name[i]);
	}
	cr_assert_geq(after.n, before.n + 2, "%zu files before, %zu after: no final interval",
		      before.n, after.n);
	for (size_t j = 0; j < after.n; j++) {
		char *pj;
		struct stat sb;

		cr_assert(asprintf(&pj, "%s/%s", state, after.name[j]) > 0);
		p = test_pprof_load(pj);
		cr_assert_not_null(p, "%s does not decode", pj);
		test_pprof_free(p);
		cr_assert_eq(stat(pj, &sb), 0);
		cr_assert_eq(sb.st_mode & 07777, 0640, "%s: mode %o", pj, sb.st_mode & 07777);
		free(pj);
	}
	struct stat sd;
	cr_assert_eq(stat(state, &sd), 0);
	cr_assert_eq(sd.st_mode & 07777, 0750, "%s: mode %o", state, sd.st_mode & 07777);
	left = list_prefixed(state, ".");
	cr_assert_str_eq(left, "", "temp files left: %s", left);
	free(left);
	test_kill(w);
	sh("rm -rf '%s'", dir);
	free(dir);
	free(conf);
	free(state);
	free(log);
	free(stlog);
	free(name);
	free(path);
	snap_free(&before);
	snap_free(&after);
}
