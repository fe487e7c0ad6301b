// SPDX-License-Identifier: MIT
/*
 * End to end, symbols: `profd record` on real workloads, as root, and what the profile names.
 * Inline frames as several Lines of one Location (and gone with --no-inline), function start
 * lines, JIT code named from perf maps (also inside a pid + mount namespace), a binary deleted
 * while it runs, debug files a hostile binary names (never opened outside its root, never a
 * device, a FIFO or a sparse file read whole), and no debuginfod traffic unless asked. Every
 * profile is also read by the real pprof.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolize/symbolize.h"
#include "tests/lib/testlib.h"

static const Perftools__Profiles__Function *fn_by_name(const Perftools__Profiles__Profile *p,
						       const char *name)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (!strcmp(test_pb_str(p, p->function[i]->name), name))
			return p->function[i];
	return NULL;
}

static const char *line_fn(const Perftools__Profiles__Profile *p,
			   const Perftools__Profiles__Location *l, size_t i)
{
	const Perftools__Profiles__Function *f = test_fn_by_id(p, l->line[i]->function_id);

	return f ? test_pb_str(p, f->name) : "?";
}

/* Fraction of pid's samples whose leaf Location's first line is function `name`. */
static double leaf_fraction(const Perftools__Profiles__Profile *p, pid_t pid, const char *name,
			    uint64_t *ret_total)
{
	uint64_t total = 0, hit = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const Perftools__Profiles__Location *l;

		if (pid > 0 && test_sample_label_num(p, s, "pid") != pid)
			continue;
		total += s->value[0];
		if (s->n_location_id == 0 || !(l = test_loc_by_id(p, s->location_id[0])) || !l->n_line)
			continue;
		if (!strcmp(line_fn(p, l, 0), name))
			hit += s->value[0];
	}
	*ret_total = total;
	return total ? (double)hit / total : 0.0;
}

static Perftools__Profiles__Profile *record_cmd(const char *out, const char *extra,
						char *const *cmd)
{
	char *argv[32] = { (char *)test_build_path("profd"), "record", "-q", "-F", "499", "-o",
			   (char *)out };
	struct run_result rr;
	size_t n = 7;
	Perftools__Profiles__Profile *p;

	if (extra)
		argv[n++] = (char *)extra;
	argv[n++] = "--";
	for (size_t i = 0; cmd[i] && n < 31; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	cr_assert_eq(test_run(argv, 60, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(out);
	cr_assert_not_null(p, "cannot decode %s", out);
	return p;
}

/*
 * Record pid (which runs until the test kills it) at 499 Hz from when profd samples until
 * SIGINT, sent once pid did 1 s of CPU work: ~499 samples, however busy the machine is.
 */
static Perftools__Profiles__Profile *record_pid(const char *out, pid_t pid, const char *extra)
{
	char pidstr[16], *log;
	Perftools__Profiles__Profile *p;
	pid_t profd;
	int status;

	cr_assert(asprintf(&log, "%s.log", out) > 0);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pidstr, "-F",
			       "499", "-o", (char *)out, (char *)extra, NULL };
	profd = test_spawn_logged(argv, log, NULL);
	cr_assert(test_wait_sampling(profd, 60), "profd did not start sampling: %s",
		  test_slurp(log));
	cr_assert(test_wait_cpu(pid, 1.0, 120), "the workload got no 1 s of CPU in 120 s");
	kill(profd, SIGINT);
	status = test_wait(profd, 60);
	cr_assert_eq(status, 0, "profd failed (%d): %s", status, test_slurp(log));
	free(log);
	p = test_pprof_load(out);
	cr_assert_not_null(p, "cannot decode %s", out);
	return p;
}

/* Line number of "@marker" in a source file, 0 if absent. */
static unsigned marker_line(const char *path, const char *marker)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, marker)) {
			fclose(f);
			return n;
		}
	}
	fclose(f);
	return 0;
}

/* ---- inline frames ------------------------------------------------------------------------ */

static const char *const ih_chain[] = { "ih_mix", "ih_round", "ih_block", "ih_run", "main" };

Test(symbols, inline_frames_are_lines_of_one_location)
{
	char *out = test_out_path("inline.pb.gz");
	char *const cmd[] = { (char *)test_build_path("workloads/inline_heavy"), "2", NULL };
	uint64_t total;
	double frac;

	test_require_root();
	Perftools__Profiles__Profile *p = record_cmd(out, NULL, cmd);

	/* Most time is in ih_mix, inlined into ih_round, into ih_block, into ih_run. */
	frac = test_chain_fraction(p, 0, ih_chain, 5, &total);
	cr_assert_gt(total, 300, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.6, "full inline chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	frac = test_chain_fraction(p, 0, ih_chain + 1, 4, &total);
	cr_assert_geq(frac, 0.9, "ih_round → ih_block → ih_run in %.1f%%", frac * 100);

	/* ...as Lines of one Location (leaf first), not as Locations of their own. */
	bool found = false;
	for (size_t i = 0; i < p->n_location && !found; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		if (l->n_line == 4 && !strcmp(line_fn(p, l, 0), "ih_mix")) {
			for (size_t k = 0; k < 4; k++)
				cr_assert_str_eq(line_fn(p, l, k), ih_chain[k]);
			found = true;
		}
		/* No Location is a bare inlined function: they only appear inside ih_run's. */
		if (l->n_line == 1)
			cr_assert(strcmp(line_fn(p, l, 0), "ih_mix") &&
					  strcmp(line_fn(p, l, 0), "ih_round") &&
					  strcmp(line_fn(p, l, 0), "ih_block"),
				  "inlined function as a location of its own");
	}
	cr_assert(found, "no location with the 4-line inline chain");

	/* Functions carry their file and declaration line; the mapping says what it has. */
	const Perftools__Profiles__Function *fm = fn_by_name(p, "ih_mix");
	cr_assert_not_null(fm);
	const char *file = test_pb_str(p, fm->filename);
	cr_assert(strstr(file, "inline_heavy.c"), "filename %s", file);
	cr_assert_str_eq(test_pb_str(p, fm->system_name), "ih_mix");
	/* The source as the profile names it, else from the tree (tests run from its root). */
	const char *src = marker_line(file, "@IH_DECL_MIX") ? file : "tests/workloads/inline_heavy.c";
	unsigned want = marker_line(src, "@IH_DECL_MIX");
	cr_assert_gt(want, 0, "cannot read %s", file);
	cr_assert_eq(fm->start_line, want);
	const Perftools__Profiles__Function *fr = fn_by_name(p, "ih_run");
	cr_assert_not_null(fr);
	cr_assert_eq(fr->start_line, marker_line(src, "@IH_DECL_RUN"));
	bool mapped = false;
	for (size_t i = 0; i < p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = p->mapping[i];

		if (!strstr(test_pb_str(p, m->filename), "inline_heavy"))
			continue;
		cr_assert(m->has_functions && m->has_filenames && m->has_line_numbers &&
			  m->has_inline_frames);
		cr_assert_neq(m->build_id, 0);
		mapped = true;
	}
	cr_assert(mapped);
	test_pprof_free(p);

	/* The real pprof prints the inlined functions. */
	char *traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "ih_mix") && strstr(traces, "ih_round") &&
			  strstr(traces, "ih_block") && strstr(traces, "ih_run"),
		  "%s", traces);
	free(traces);
	free(out);
}

Test(symbols, no_inline_removes_inlined_functions)
{
	char *out = test_out_path("noinline.pb.gz");
	char *const cmd[] = { (char *)test_build_path("workloads/inline_heavy"), "2", NULL };
	uint64_t total;

	test_require_root();
	Perftools__Profiles__Profile *p = record_cmd(out, "--no-inline", cmd);
	cr_assert_null(fn_by_name(p, "ih_mix"));
	cr_assert_null(fn_by_name(p, "ih_round"));
	cr_assert_null(fn_by_name(p, "ih_block"));
	for (size_t i = 0; i < p->n_location; i++)
		cr_assert_eq(p->location[i]->n_line, 1);
	double frac = leaf_fraction(p, 0, "ih_run", &total);
	cr_assert_gt(total, 300);
	cr_assert_geq(frac, 0.9, "ih_run is the leaf in %.1f%%", frac * 100);
	for (size_t i = 0; i < p->n_mapping; i++)
		cr_assert_not(p->mapping[i]->has_inline_frames);
	test_pprof_free(p);

	char *traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "ih_run") && !strstr(traces, "ih_mix"), "%s", traces);
	free(traces);
	free(out);
}

/* ---- JIT perf maps ------------------------------------------------------------------------ */

static void remove_perf_map(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	unlink(path);
}

Test(symbols, jit_frames_named_from_perf_map)
{
	char *const wl[] = { (char *)test_build_path("workloads/jit_spin"), "3600", NULL };
	char *out = test_out_path("jit.pb.gz");
	uint64_t total;

	test_require_root();
	pid_t pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	Perftools__Profiles__Profile *p = record_pid(out, pid, NULL);
	cr_assert_eq(kill(pid, 0), 0, "jit_spin died while profiled");
	test_kill(pid);
	remove_perf_map(pid);

	double frac = leaf_fraction(p, pid, "jit_spin_loop", &total);
	cr_assert_gt(total, 200, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.9, "jit_spin_loop is the leaf in %.1f%%", frac * 100);
	/* The JIT frame sits under main (frame pointers through the generated code). */
	static const char *const chain[] = { "jit_spin_loop", "main" };
	cr_assert_geq(test_chain_fraction(p, pid, chain, 2, &total), 0.9);
	cr_assert_null(fn_by_name(p, "jit_stub_never_run"));
	test_pprof_free(p);
	char *traces = test_check_with_pprof(out);
	cr_assert(strstr(traces, "jit_spin_loop"), "%s", traces);
	free(traces);
	free(out);
}

Test(symbols, jit_perf_map_of_exited_process)
{
	/* Command mode: the JIT has exited (and been reaped, its map removed) when the profile
	 * is written: its map was copied while it lived, when its first samples came in. */
	char *out = test_out_path("jit-exited.pb.gz");
	char *const cmd[] = { (char *)test_build_path("workloads/jit_spin"), "2", NULL };
	uint64_t total;

	test_require_root();
	Perftools__Profiles__Profile *p = record_cmd(out, NULL, cmd);
	double frac = leaf_fraction(p, 0, "jit_spin_loop", &total);
	pid_t pid = (pid_t)test_sample_label_num(p, p->sample[0], "pid");
	remove_perf_map(pid);
	cr_assert_gt(total, 200);
	cr_assert_geq(frac, 0.9, "jit_spin_loop is the leaf in %.1f%%", frac * 100);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
}

/* The host pid of the first child of `parent`. */
static pid_t first_child(pid_t parent)
{
	char path[64], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", parent, parent);
	for (int tries = 0; tries < 100; tries++) {
		f = fopen(path, "re");
		if (f) {
			bool ok = fgets(buf, sizeof(buf), f) != NULL;

			fclose(f);
			if (ok && atoi(buf) > 0)
				return atoi(buf);
		}
		usleep(20000);
	}
	return -1;
}

Test(symbols, jit_perf_map_inside_pid_and_mount_namespace)
{
	/* A "container": own pid namespace (the JIT is pid 1 there and writes perf-1.map) and
	 * its own /tmp, which the host cannot see except through /proc/PID/root. */
	char script[512], bindir[] = "/var/tmp/profd-jit-XXXXXX", bin[64], cp[1024];

	/* The new /tmp hides everything under the old one, possibly the build tree: run a copy. */
	cr_assert_not_null(mkdtemp(bindir));
	snprintf(bin, sizeof(bin), "%s/jit_spin", bindir);
	snprintf(cp, sizeof(cp), "cp '%s' '%s'", test_build_path("workloads/jit_spin"), bin);
	cr_assert_eq(system(cp), 0);
	snprintf(script, sizeof(script), "mount -t tmpfs tmpfs /tmp && exec '%s' 3600", bin);
	char *const wl[] = { "/usr/bin/unshare", "--pid", "--fork", "--mount", "--mount-proc",
			     "/bin/sh", "-c", script, NULL };
	char *out = test_out_path("jit-ns.pb.gz"), host_map[64], status[64], line[256];
	uint64_t total;
	bool nested = false;

	test_require_root();
	pid_t u = test_spawn(wl);
	cr_assert_gt(u, 0, "unshare failed");
	pid_t pid = first_child(u);
	cr_assert_gt(pid, 0);
	/* It really is in its own namespace, with another pid there. */
	snprintf(status, sizeof(status), "/proc/%d/status", pid);
	FILE *f = fopen(status, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6))
			nested = strchr(line + 7, '\t') != NULL;
	fclose(f);
	cr_assert(nested, "no nested pid namespace");
	snprintf(host_map, sizeof(host_map), "/tmp/perf-%d.map", pid);
	cr_assert_neq(access(host_map, F_OK), 0, "the map must exist only inside");

	Perftools__Profiles__Profile *p = record_pid(out, pid, NULL);
	/* pid 1 of its namespace: killing it ends the namespace, then unshare exits. */
	kill(pid, SIGKILL);
	test_wait(u, 60);
	double frac = leaf_fraction(p, pid, "jit_spin_loop", &total);
	cr_assert_gt(total, 100, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.9, "jit_spin_loop is the leaf in %.1f%%", frac * 100);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
	unlink(bin);
	rmdir(bindir);
}

/* ---- JIT perf maps: what is opened, what is trusted --------------------------------------- */

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

/* Some function of the profile whose name contains `needle`, or NULL. */
static const char *fn_containing(const Perftools__Profiles__Profile *p, const char *needle)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (strstr(test_pb_str(p, p->function[i]->name), needle))
			return test_pb_str(p, p->function[i]->name);
	return NULL;
}

/*
 * A directory nobody can enter but not list (0711), holding a copy of jit_spin nobody may run
 * and, when secret_line is given, secret.map: root's, mode 0600, that one line.
 */
static char *jit_dir(const char *secret_line)
{
	char *dir = test_tmpdir();

	cr_assert_not_null(dir);
	cr_assert_eq(chmod(dir, 0711), 0);
	cr_assert_eq(sh("cp '%s' '%s/jit_spin' && chmod 0755 '%s/jit_spin'",
			test_build_path("workloads/jit_spin"), dir, dir),
		     0);
	if (secret_line)
		cr_assert_eq(sh("umask 077 && printf '%%s\\n' '%s' > '%s/secret.map'", secret_line,
				dir),
			     0);
	return dir;
}

/*
 * nobody, in its own user and mount namespace, runs JIT code at `addr` after `setup` (a shell
 * line run there first, with $$ the JIT's pid). Returns the JIT's pid (on the host).
 */
static pid_t spawn_nobody_jit(const char *dir, const char *setup, const char *jit_args)
{
	char script[1024];

	snprintf(script, sizeof(script), "%s exec '%s/jit_spin' 60 %s", setup, dir, jit_args);
	char *const argv[] = { "/usr/bin/setpriv", "--reuid=65534",    "--regid=65534",
			       "--clear-groups",   "/usr/bin/unshare", "-Urm",
			       "/bin/sh",	   "-c",	       script,
			       NULL };
	pid_t pid = test_spawn(argv);

	cr_assert_gt(pid, 0, "nobody's JIT did not start");
	return pid;
}

Test(symbols, jit_perf_map_root_file_bind_mounted_by_nobody)
{
	/*
	 * Finding 2 of issue 26: nobody bind-mounts a root-only file over its own perf map. Its
	 * line must reach no frame; nobody's own map, written by itself, is used.
	 */
	const char *addr = "7e5a00000000";
	char *dir = jit_dir("7e5a00000100 e ROOT_ONLY_SECRET_LINE"), setup[512], path[128];
	char *out = test_out_path("jit-bind.pb.gz");
	struct stat st;
	uint64_t total;

	test_require_root();
	snprintf(setup, sizeof(setup),
		 "touch /tmp/perf-$$.map && mount --bind '%s/secret.map' /tmp/perf-$$.map &&", dir);
	char args[64];
	snprintf(args, sizeof(args), "--no-map --at %s", addr);
	pid_t pid = spawn_nobody_jit(dir, setup, args);
	/* What the process sees as its map is root's 0600 file. */
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/perf-%d.map", pid, pid);
	cr_assert_eq(stat(path, &st), 0, "%s: %m", path);
	cr_assert(st.st_uid == 0 && (st.st_mode & 0777) == 0600, "uid %u mode %o",
		  (unsigned)st.st_uid, (unsigned)st.st_mode);
	Perftools__Profiles__Profile *p = record_pid(out, pid, NULL);
	test_kill(pid);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	unlink(path); /* the mount point nobody made */
	leaf_fraction(p, pid, "", &total);
	cr_assert_gt(total, 100, "samples: %lu", (unsigned long)total);
	cr_assert_null(fn_containing(p, "ROOT_ONLY_SECRET_LINE"), "root's line in a frame");
	test_pprof_free(p);

	/*
	 * nobody's own file (its owner is right) bind-mounted over the map from elsewhere: not on
	 * the mount of the process's /tmp, refused too.
	 */
	char *mine = NULL;
	cr_assert(asprintf(&mine, "%s/nobody", dir) > 0);
	cr_assert_eq(mkdir(mine, 0755), 0);
	cr_assert_eq(chown(mine, 65534, 65534), 0);
	snprintf(setup, sizeof(setup),
		 "printf '7e5a00000100 e NOBODYS_BOUND_LINE\\n' > '%s/own.map' && "
		 "touch /tmp/perf-$$.map && mount --bind '%s/own.map' /tmp/perf-$$.map &&",
		 mine, mine);
	pid = spawn_nobody_jit(dir, setup, args);
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/perf-%d.map", pid, pid);
	cr_assert_eq(stat(path, &st), 0, "%s: %m", path);
	cr_assert_eq(st.st_uid, 65534);
	p = record_pid(out, pid, NULL);
	test_kill(pid);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	unlink(path);
	leaf_fraction(p, pid, "", &total);
	cr_assert_gt(total, 100, "samples: %lu", (unsigned long)total);
	cr_assert_null(fn_containing(p, "NOBODYS_BOUND_LINE"), "a bind-mounted map was used");
	test_pprof_free(p);
	free(mine);

	/* The same JIT, writing its own map as nobody: named. */
	pid = spawn_nobody_jit(dir, "", "");
	p = record_pid(out, pid, NULL);
	test_kill(pid);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	unlink(path);
	double frac = leaf_fraction(p, pid, "jit_spin_loop", &total);
	cr_assert_gt(total, 100, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.9, "jit_spin_loop is the leaf in %.1f%%", frac * 100);
	test_pprof_free(p);
	free(out);
	sh("rm -rf '%s'", dir);
	free(dir);
}

/*
 * `profd record -p pid -d 2` under strace (-y: fds with their paths); returns the trace's path.
 * The profile goes to `out`. On failure the map is removed first (no FIFO or 1 GiB file left).
 */
static char *record_traced(const char *dir, pid_t pid, const char *out, const char *calls,
			   const char *map)
{
	char *trace = NULL, *cmd = NULL;
	int r;

	cr_assert(asprintf(&trace, "%s/strace.txt", dir) > 0);
	/* LeakSanitizer cannot work under ptrace: off for a sanitizer build's traced profd. */
	cr_assert(asprintf(&cmd,
			   "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" strace -f -y "
			   "-qq -e trace=%s -e signal=none -o '%s' '%s' record -q -p %d -d 2 -o '%s'",
			   calls, trace, test_build_path("profd"), pid, out) > 0);
	r = system(cmd);
	if (r != 0)
		unlink(map);
	cr_assert_eq(r, 0, "%s", cmd);
	free(cmd);
	return trace;
}

/* Lines of the trace opening `name` for anything but O_PATH (the fd's path is what -y shows). */
static int read_opens(const char *trace, const char *name)
{
	FILE *f = fopen(trace, "re");
	char line[4096];
	int n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "open") && strstr(line, name) && !strstr(line, "O_PATH"))
			n++;
	fclose(f);
	return n;
}

Test(symbols, jit_perf_map_fifo_or_device_never_opened)
{
	const char *addr = "7e5b00000000";
	char *dir = jit_dir(NULL), *out = test_out_path("jit-dev.pb.gz"), map[128], name[64];
	char *const wl[] = { (char *)test_build_path("workloads/jit_spin"), "60", "--no-map", "--at",
			     (char *)addr, NULL };

	test_require_root();
	pid_t pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(name, sizeof(name), "perf-%d.map", pid);
	snprintf(map, sizeof(map), "/tmp/%s", name);

	/* A regular map of its owner: opened for reading, and used (the trace can tell). */
	cr_assert_eq(sh("printf '7e5b00000100 e jit_named_loop\\n' > %s", map), 0);
	char *trace = record_traced(dir, pid, out, "openat,openat2,open", map);
	cr_assert_gt(read_opens(trace, name), 0, "the regular map was not read");
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert_not_null(fn_by_name(p, "jit_named_loop"));
	test_pprof_free(p);
	free(trace);

	/* A FIFO, then a character device (/dev/null's), in its place: never opened to read. */
	const char *kinds[] = { "mkfifo -m 0644 %s", "mknod -m 0644 %s c 1 3" };
	for (size_t k = 0; k < 2; k++) {
		unlink(map);
		cr_assert_eq(sh(kinds[k], map), 0);
		trace = record_traced(dir, pid, out, "openat,openat2,open", map);
		int opens = read_opens(trace, name);
		if (opens)
			unlink(map);
		cr_assert_eq(opens, 0, "%s: opened for reading (%s)", kinds[k], trace);
		p = test_pprof_load(out);
		cr_assert_not_null(p, "no profile written");
		cr_assert_null(fn_by_name(p, "jit_named_loop"));
		test_pprof_free(p);
		free(trace);
	}
	test_kill(pid);
	unlink(map);
	free(out);
	sh("rm -rf '%s'", dir);
	free(dir);
}

/* Bytes returned by read() calls on fds the trace shows as `name`. */
static uint64_t bytes_read(const char *trace, const char *name)
{
	FILE *f = fopen(trace, "re");
	char *line = NULL;
	size_t cap = 0;
	uint64_t n = 0;

	cr_assert_not_null(f);
	while (getline(&line, &cap, f) > 0) {
		char *eq = strrchr(line, '=');

		if ((strstr(line, " read(") || strstr(line, " pread64(")) && strstr(line, name) && eq &&
		    atoll(eq + 1) > 0)
			n += (uint64_t)atoll(eq + 1);
	}
	free(line);
	fclose(f);
	return n;
}

Test(symbols, jit_perf_map_huge_sparse_not_read_whole)
{
	/* Finding 5 of issue 26: a 1 GiB (sparse) map is read up to the per-map cap, its tail. */
	const char *addr = "7e5c00000000";
	char *dir = jit_dir(NULL), *out = test_out_path("jit-huge.pb.gz"), map[128], name[64];
	char *const wl[] = { (char *)test_build_path("workloads/jit_spin"), "60", "--no-map", "--at",
			     (char *)addr, NULL };

	test_require_root();
	pid_t pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	snprintf(name, sizeof(name), "perf-%d.map", pid);
	snprintf(map, sizeof(map), "/tmp/%s", name);
	/* Its one line at the very end: found only if the tail is what is read. */
	cr_assert_eq(sh("truncate -s 1G %s && printf '\\n7e5c00000100 e jit_tail_line\\n' | "
			"dd of=%s bs=1 seek=$((1024*1024*1024 - 32)) conv=notrunc status=none",
			map, map),
		     0);
	char *trace = record_traced(dir, pid, out, "read,pread64", map);
	test_kill(pid);
	unlink(map);
	uint64_t n = bytes_read(trace, name);
	cr_assert_gt(n, 0, "the map was not read at all");
	cr_assert_leq(n, PERFMAP_MAX_FILE_BYTES + 1, "%llu bytes of the map read",
		      (unsigned long long)n);
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	cr_assert_not_null(p, "no profile written");
	cr_assert_not_null(fn_by_name(p, "jit_tail_line"));
	test_pprof_free(p);
	free(trace);
	free(out);
	sh("rm -rf '%s'", dir);
	free(dir);
}

Test(symbols, jit_perf_map_not_read_after_exit)
{
	/*
	 * A JIT without a map exits; then another user (nobody) writes /tmp/perf-PID.map naming
	 * its code, before the profile is written: no names from it. Another JIT of the same
	 * command, which wrote its own map and removed it at exit, is named (read while it lived).
	 */
	char *dir = jit_dir(NULL), *out = test_out_path("jit-gone.pb.gz"), pidfile[256], script[1024];
	struct run_result rr;
	uint64_t total;
	pid_t pid = 0;

	test_require_root();
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(script, sizeof(script),
		 "'%s/jit_spin' 1.5 > /dev/null && '%s/jit_spin' 1.5 --no-map --at 7e5d00000000 > "
		 "'%s.tmp' && mv '%s.tmp' '%s' && sleep 4",
		 dir, dir, pidfile, pidfile, pidfile);
	char *const argv[] = { (char *)test_build_path("profd"), "record", "-q", "-F", "499", "-o",
			       out, "--", "/bin/sh", "-c", script, NULL };
	pid_t rec = fork();
	cr_assert_geq(rec, 0);
	if (rec == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(test_run(argv, 120, &rr) == 0 && rr.status == 0 ? 0 : 1);
	}
	/* The second JIT has exited once its pid is in the file. */
	for (int i = 0; i < 1200 && pid <= 0; i++) {
		char *s = test_slurp(pidfile);

		pid = s ? atoi(s) : 0;
		free(s);
		if (pid <= 0)
			usleep(50000);
	}
	cr_assert_gt(pid, 0, "the JIT never ran");
	cr_assert_eq(sh("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "
			"\"printf '7e5d00000100 e OTHER_USERS_LINE\\n' > /tmp/perf-%d.map\"",
			pid),
		     0);
	int status = test_wait(rec, 120);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	unlink(path);
	cr_assert_eq(status, 0, "profd record failed");
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert_null(fn_containing(p, "OTHER_USERS_LINE"), "a line of a map written after exit");
	/* Its samples are there, unnamed. */
	leaf_fraction(p, pid, "", &total);
	cr_assert_gt(total, 100, "samples of the exited JIT: %lu", (unsigned long)total);
	double frac = leaf_fraction(p, 0, "jit_spin_loop", &total);
	cr_assert_geq(frac, 0.3, "jit_spin_loop is the leaf in %.1f%%", frac * 100);
	test_pprof_free(p);
	free(out);
	sh("rm -rf '%s'", dir);
	free(dir);
}

/* ---- replaced binaries --------------------------------------------------------------------- */

Test(symbols, binary_deleted_while_running)
{
	char *dir = test_tmpdir(), *copy = NULL;
	static const char *const chain[] = { "chain_leaf", "chain_c", "chain_b", "chain_a",
					     "main" };
	uint64_t total;
	char cmd[1024];

	test_require_root();
	cr_assert_not_null(dir);
	cr_assert(asprintf(&copy, "%s/chain-copy", dir) > 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", test_build_path("workloads/chain"), copy);
	cr_assert_eq(system(cmd), 0);
	char *const wl[] = { copy, "3600", NULL };
	pid_t pid = test_spawn(wl);
	cr_assert_gt(pid, 0);
	/* Gone from the file system; only /proc/PID/map_files still reaches it. */
	cr_assert_eq(unlink(copy), 0);

	char *out = test_out_path("deleted.pb.gz");
	Perftools__Profiles__Profile *p = record_pid(out, pid, NULL);
	test_kill(pid);
	double frac = test_chain_fraction(p, pid, chain, 5, &total);
	cr_assert_gt(total, 200);
	cr_assert_geq(frac, 0.9, "chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	/* With file and line, from the deleted file's own DWARF. */
	const Perftools__Profiles__Function *f = fn_by_name(p, "chain_leaf");
	cr_assert_not_null(f);
	cr_assert(strstr(test_pb_str(p, f->filename), "chain.c"), "%s", test_pb_str(p, f->filename));
	cr_assert_gt(f->start_line, 0);
	test_pprof_free(p);
	free(test_check_with_pprof(out));
	free(out);
	free(copy);
	rmdir(dir);
	free(dir);
}

/* ---- debug files a hostile binary names ------------------------------------------------------ */

/* Lines of an strace -y log that mention `what`, at most max into lines[] (static storage). */
static size_t strace_lines(const char *log, const char *what, char **lines, size_t max)
{
	FILE *f = fopen(log, "re");
	static char buf[64][1024];
	size_t n = 0;

	cr_assert_not_null(f, "%s", log);
	while (n < max && n < 64 && fgets(buf[n], sizeof(buf[n]), f))
		if (strstr(buf[n], what)) {
			lines[n] = buf[n];
			n++;
		}
	fclose(f);
	return n;
}

/* Bytes returned by read/pread64 calls on the fd strace -y shows as <path>. */
static uint64_t strace_bytes_read(const char *log, const char *path)
{
	FILE *f = fopen(log, "re");
	char line[4096], fdname[1200];
	uint64_t total = 0;

	cr_assert_not_null(f, "%s", log);
	snprintf(fdname, sizeof(fdname), "<%s>", path);
	while (fgets(line, sizeof(line), f)) {
		const char *eq = strrchr(line, '=');

		if ((strstr(line, " pread64(") || strstr(line, " read(")) && strstr(line, fdname) &&
		    eq && eq[1] == ' ' && eq[2] != '-')
			total += strtoull(eq + 2, NULL, 10);
	}
	fclose(f);
	return total;
}

/*
 * Issue 26 finding 1: a stripped binary of user nobody, without a build-id (so its debuglink's
 * CRC is the only proof and profd would read a candidate whole), names a debug file next to
 * itself that is really a symlink to a root-only file, a symlink to /dev/ptmx, a FIFO, or a
 * 4 GiB sparse file. profd record, as root, must not open the link targets or the FIFO for
 * reading, and must not read the sparse file (before the fix: it read the secret, opened
 * /dev/ptmx and the FIFO, and read all 4 GiB of zeros). strace -y shows what each fd is.
 */
Test(symbols, hostile_debuglinks_open_nothing_outside, .timeout = 300)
{
	char *dir = test_tmpdir(), *sdir = test_tmpdir(), secret[256], path[512], cmd[4096];
	static const char *const names[] = { "shadow", "pt", "fifo", "big" };
	char *lines[64];
	size_t n;

	test_require_root();
	cr_assert_not_null(dir);
	cr_assert_not_null(sdir);
	cr_assert_eq(system("command -v strace >/dev/null && command -v setpriv >/dev/null"), 0,
		     "strace and setpriv are needed (make deps)");
	/* The secret: root's, 0600, in a root-only directory nobody cannot touch. */
	snprintf(secret, sizeof(secret), "%s/secret", sdir);
	snprintf(cmd, sizeof(cmd), "echo 'root only line' > '%s' && chmod 600 '%s'", secret, secret);
	cr_assert_eq(system(cmd), 0);
	/* nobody's binaries: workloads/chain without build-id, stripped, one debuglink each. */
	for (size_t i = 0; i < 4; i++) {
		snprintf(cmd, sizeof(cmd),
			 "cd '%s' && echo placeholder > %s && "
			 "objcopy --remove-section=.note.gnu.build-id --strip-all '%s' wl-%s && "
			 "objcopy --add-gnu-debuglink=%s wl-%s && rm %s",
			 dir, names[i], test_build_path("workloads/chain"), names[i], names[i],
			 names[i], names[i]);
		cr_assert_eq(system(cmd), 0, "%s", cmd);
	}
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && ln -s '%s' shadow && ln -s /dev/ptmx pt && mkfifo fifo && "
		 "truncate -s 4G big && chown -hR 65534:65534 . && chmod 755 .",
		 dir, secret);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	char *out = test_out_path("hostile.pb.gz"), *trace = test_out_path("hostile.strace");
	char *run = NULL;
	cr_assert(asprintf(&run,
			   "'%s/wl-shadow' 1 & '%s/wl-pt' 1 & '%s/wl-fifo' 1 & '%s/wl-big' 1 & "
			   "wait",
			   dir, dir, dir, dir) > 0);
	/* LeakSanitizer cannot work under ptrace: off for the traced profd of a sanitizer build. */
	const char *asan = getenv("ASAN_OPTIONS");
	char *asan_env = NULL;
	cr_assert(asprintf(&asan_env, "ASAN_OPTIONS=%s%sdetect_leaks=0", asan ? asan : "",
			   asan && *asan ? ":" : "") > 0);
	char *const argv[] = { "/usr/bin/env", asan_env, "/usr/bin/strace", "-f", "-y", "-qq", "-e",
			       "signal=none", "-e", "trace=open,openat,openat2,read,pread64", "-o",
			       trace,
			       (char *)test_build_path("profd"), "record", "-q", "-F", "99", "-o",
			       out, "--", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
			       "--clear-groups", "/bin/sh", "-c", run, NULL };
	struct run_result rr;
	cr_assert_eq(test_run(argv, 240, &rr), 0);
	cr_assert_eq(rr.status, 0, "profd failed: %s", rr.err);
	run_result_free(&rr);
	free(asan_env);

	/* The search did run for each binary (else this test proves nothing). */
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "\"%s/%s\"", dir, names[i]);
		cr_assert_gt(strace_lines(trace, path, lines, 64), 0,
			     "profd never looked for %s: nothing was tested", names[i]);
	}
	/* Not the secret, not /dev/ptmx: not even an O_PATH fd on them. */
	snprintf(path, sizeof(path), "<%s>", secret);
	n = strace_lines(trace, path, lines, 64);
	cr_assert_eq(n, 0, "root opened the link's target: %s", n ? lines[0] : "");
	n = strace_lines(trace, "</dev/ptmx>", lines, 64);
	cr_assert_eq(n, 0, "root opened /dev/ptmx: %s", n ? lines[0] : "");
	/* The FIFO: at most looked at through O_PATH, never opened to read. */
	snprintf(path, sizeof(path), "<%s/fifo>", dir);
	n = strace_lines(trace, path, lines, 64);
	for (size_t i = 0; i < n; i++)
		cr_assert(strstr(lines[i], "O_PATH"), "the FIFO was opened: %s", lines[i]);
	/* The sparse file: not read whole (nor at all: it is refused for the CRC unread). */
	snprintf(path, sizeof(path), "%s/big", dir);
	uint64_t big = strace_bytes_read(trace, path);
	cr_assert_lt(big, 1u << 20, "%llu bytes of the 4 GiB sparse file were read",
		     (unsigned long long)big);

	/* And the profile is a profile of the four. */
	Perftools__Profiles__Profile *p = test_pprof_load(out);
	cr_assert_not_null(p);
	cr_assert_gt(p->n_sample, 0);
	test_pprof_free(p);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, sdir);
	(void)!system(cmd);
	free(run);
	free(out);
	free(trace);
	free(dir);
	free(sdir);
}

/* ---- two files, one build-id: each process named from its own file -------------------------- */

static const char twin_lib_src[] =
	"__attribute__((noinline)) static unsigned long TWIN_WORK(unsigned long n)\n"
	"{\n"
	"\tvolatile unsigned long x = 0;\n"
	"\tfor (unsigned long i = 0; i < n; i++)\n"
	"\t\tx += i * i;\n"
	"\treturn x;\n"
	"}\n"
	"unsigned long twin_entry(unsigned long n) { return TWIN_WORK(n) + 1; }\n";
static const char twin_main_src[] =
	"unsigned long twin_entry(unsigned long n);\n"
	"int main(void) { for (;;) twin_entry(100000); }\n";

#define TWIN_BUILD_ID "0x5ca1ab1e00112233445566778899aabbccddeeff"

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

static bool maps_name(pid_t pid, const char *path)
{
	char mp[64];

	snprintf(mp, sizeof(mp), "/proc/%d/maps", pid);
	char *maps = test_slurp(mp);
	bool found = strstr(maps, path) != NULL;

	free(maps);
	return found;
}

/* What the samples of pid say about the twin library: work frames by name, and their files. */
struct twin_seen {
	uint64_t samples, genuine, hijack;
	const char *genuine_map, *hijack_map, *genuine_file, *hijack_file;
	char other[256]; /* a mapping filename of a work frame that is not `want_map` */
};

static void twin_scan(const Perftools__Profiles__Profile *p, pid_t pid, const char *want_map,
		      struct twin_seen *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		bool g = false, h = false;

		if (test_sample_label_num(p, s, "pid") != pid)
			continue;
		ret->samples += s->value[0];
		for (size_t j = 0; j < s->n_location_id; j++) {
			const Perftools__Profiles__Location *l = test_loc_by_id(p, s->location_id[j]);
			const char *map = "";

			if (!l)
				continue;
			for (size_t k = 0; k < p->n_mapping; k++)
				if (p->mapping[k]->id == l->mapping_id)
					map = test_pb_str(p, p->mapping[k]->filename);
			for (size_t k = 0; k < l->n_line; k++) {
				const Perftools__Profiles__Function *f =
					test_fn_by_id(p, l->line[k]->function_id);
				const char *name = f ? test_pb_str(p, f->name) : "";
				bool is_g = !strcmp(name, "genuine_work"), is_h = !strcmp(name, "hijack_work");

				if (!is_g && !is_h)
					continue;
				g |= is_g;
				h |= is_h;
				if (is_g) {
					ret->genuine_map = map;
					ret->genuine_file = test_pb_str(p, f->filename);
				} else {
					ret->hijack_map = map;
					ret->hijack_file = test_pb_str(p, f->filename);
				}
				if (strcmp(map, want_map))
					snprintf(ret->other, sizeof(ret->other), "%s", map);
			}
		}
		ret->genuine += g ? s->value[0] : 0;
		ret->hijack += h ? s->value[0] : 0;
	}
}

/*
 * nobody runs a copy of a shared library with the genuine one's build-id and a renamed
 * function, while root runs the genuine one; one recording of both. Every frame of root's
 * process is named from the genuine file and sits in a mapping named by root's path, every
 * frame of nobody's from nobody's copy, whichever process the symbolizer met first (both
 * orders are recorded).
 */
Test(symbols, same_build_id_other_file_names_only_its_own_process, .timeout = 240)
{
	char *dir = test_tmpdir(), cmd[4096], gen[1024], nob[1024], main_bin[1024];

	test_require_root();
	cr_assert_not_null(dir);
	cr_assert_eq(chmod(dir, 0755), 0);
	snprintf(gen, sizeof(gen), "%s/genuine", dir);
	snprintf(nob, sizeof(nob), "%s/nobody", dir);
	snprintf(main_bin, sizeof(main_bin), "%s/main", dir);
	cr_assert_eq(mkdir(gen, 0755), 0);
	cr_assert_eq(mkdir(nob, 0755), 0);
	cr_assert_eq(chown(nob, 65534, 65534), 0);
	snprintf(cmd, sizeof(cmd), "%s/lib.c", gen);
	write_text(cmd, twin_lib_src);
	snprintf(cmd, sizeof(cmd), "%s/main.c", dir);
	write_text(cmd, twin_main_src);
	/* root's library and program; nobody builds its own copy in its own directory. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && gcc -O2 -g -fno-omit-frame-pointer -shared -fPIC -DTWIN_WORK=genuine_work "
		 "-Wl,--build-id=" TWIN_BUILD_ID " -Wl,-soname,libtwin.so -o libtwin.so lib.c && "
		 "cd '%s' && gcc -O2 -g -fno-omit-frame-pointer -o main main.c -Lgenuine -ltwin && "
		 "cp genuine/lib.c nobody/lib.c && chown 65534:65534 nobody/lib.c && "
		 "cd '%s' && setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "gcc -O2 -g -fno-omit-frame-pointer -shared -fPIC -DTWIN_WORK=hijack_work "
		 "-Wl,--build-id=" TWIN_BUILD_ID " -Wl,-soname,libtwin.so -o libtwin.so lib.c",
		 gen, dir, nob);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof(cmd),
		 "test \"$(readelf -n '%s/libtwin.so' | grep 'Build ID')\" = "
		 "\"$(readelf -n '%s/libtwin.so' | grep 'Build ID')\"", gen, nob);
	cr_assert_eq(system(cmd), 0, "the two libraries must share a build-id");

	char root_env[1100], nob_env[1100], *log = NULL;
	snprintf(root_env, sizeof(root_env), "LD_LIBRARY_PATH=%s", gen);
	snprintf(nob_env, sizeof(nob_env), "LD_LIBRARY_PATH=%s", nob);
	cr_assert(asprintf(&log, "%s/workloads.log", dir) > 0);
	char *const root_argv[] = { "/usr/bin/env", root_env, main_bin, NULL };
	char *const nob_argv[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
				   "--clear-groups", "/usr/bin/env", nob_env, main_bin, NULL };
	pid_t rpid = test_spawn_logged(root_argv, log, NULL);
	pid_t npid = test_spawn_logged(nob_argv, log, NULL);
	char gen_lib[1100], nob_lib[1100];
	snprintf(gen_lib, sizeof(gen_lib), "%s/libtwin.so", gen);
	snprintf(nob_lib, sizeof(nob_lib), "%s/libtwin.so", nob);
	double t0 = test_now();
	while (!(maps_name(rpid, gen_lib) && maps_name(npid, nob_lib)) && test_now() - t0 < 30)
		usleep(20000);
	cr_assert(maps_name(rpid, gen_lib) && maps_name(npid, nob_lib), "workloads: %s",
		  test_slurp(log));

	for (int order = 0; order < 2; order++) {
		char pids[64], *out = NULL, *plog = NULL;

		/* The first pid's samples tend to be symbolized first: both orders. */
		snprintf(pids, sizeof(pids), "%d,%d", order ? rpid : npid, order ? npid : rpid);
		cr_assert(asprintf(&out, "%s/twin-%d.pb.gz", dir, order) > 0);
		cr_assert(asprintf(&plog, "%s/twin-%d.log", dir, order) > 0);
		char *const argv[] = { (char *)test_build_path("profd"), "record", "-p", pids, "-F",
				       "499", "-o", out, NULL };
		pid_t profd = test_spawn_logged(argv, plog, NULL);
		cr_assert(test_wait_sampling(profd, 60), "profd did not sample: %s", test_slurp(plog));
		cr_assert(test_wait_cpu(rpid, 0.5, 120) && test_wait_cpu(npid, 0.5, 120),
			  "the workloads got no CPU");
		kill(profd, SIGINT);
		int status = test_wait(profd, 60);
		cr_assert_eq(status, 0, "profd failed (%d): %s", status, test_slurp(plog));
		Perftools__Profiles__Profile *p = test_pprof_load(out);
		cr_assert_not_null(p);

		struct twin_seen r, n;
		twin_scan(p, rpid, gen_lib, &r);
		twin_scan(p, npid, nob_lib, &n);
		cr_log_info("order %d: root pid %d: %lu samples, genuine_work in %lu (%s, %s), "
			    "hijack_work in %lu (%s, %s); nobody pid %d: %lu samples, genuine_work in "
			    "%lu (%s, %s), hijack_work in %lu (%s, %s)",
			    order, rpid, (unsigned long)r.samples, (unsigned long)r.genuine,
			    r.genuine_map ? r.genuine_map : "-", r.genuine_file ? r.genuine_file : "-",
			    (unsigned long)r.hijack, r.hijack_map ? r.hijack_map : "-",
			    r.hijack_file ? r.hijack_file : "-", npid, (unsigned long)n.samples,
			    (unsigned long)n.genuine, n.genuine_map ? n.genuine_map : "-",
			    n.genuine_file ? n.genuine_file : "-", (unsigned long)n.hijack,
			    n.hijack_map ? n.hijack_map : "-", n.hijack_file ? n.hijack_file : "-");
		cr_assert_gt(r.samples, 50);
		cr_assert_gt(n.samples, 50);
		/* root's process: the genuine name from the genuine file, never nobody's. */
		cr_assert_eq(r.hijack, 0, "order %d: %lu of root's samples named from nobody's file",
			     order, (unsigned long)r.hijack);
		cr_assert_geq(r.genuine * 2, r.samples, "order %d: genuine_work in %lu of %lu", order,
			      (unsigned long)r.genuine, (unsigned long)r.samples);
		cr_assert(r.genuine_file && strstr(r.genuine_file, gen), "root's source file: %s",
			  r.genuine_file ? r.genuine_file : "-");
		/* nobody's process: its own name, its own file. */
		cr_assert_eq(n.genuine, 0, "order %d: %lu of nobody's samples named from root's file",
			     order, (unsigned long)n.genuine);
		cr_assert_geq(n.hijack * 2, n.samples, "order %d: hijack_work in %lu of %lu", order,
			      (unsigned long)n.hijack, (unsigned long)n.samples);
		cr_assert(n.hijack_file && strstr(n.hijack_file, nob), "nobody's source file: %s",
			  n.hijack_file ? n.hijack_file : "-");
		cr_assert_eq(r.other[0], '\0', "root's work frame in mapping %s", r.other);
		cr_assert_eq(n.other[0], '\0', "nobody's work frame in mapping %s", n.other);
		test_pprof_free(p);
		free(test_check_with_pprof(out));
		free(out);
		free(plog);
	}
	test_kill(npid);
	test_kill(rpid);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
	free(log);
	free(dir);
}

/* ---- debuginfod ------------------------------------------------------------------------------ */

struct fake_server {
	int fd, port, requests;
	pthread_t thread;
};

static void *fake_server_run(void *arg)
{
	struct fake_server *s = arg;
	static const char resp[] =
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

	for (;;) {
		char buf[1024];
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		if (read(c, buf, sizeof(buf)) > 0)
			__atomic_fetch_add(&s->requests, 1, __ATOMIC_SEQ_CST);
		(void)!write(c, resp, sizeof(resp) - 1);
		close(c);
	}
}

static void fake_server_start(struct fake_server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s->fd, 0);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 64), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, fake_server_run, s), 0);
}

static int fake_server_stop(struct fake_server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
	return __atomic_load_n(&s->requests, __ATOMIC_SEQ_CST);
}

Test(symbols, debuginfod_off_unless_asked)
{
	/* DEBUGINFOD_URLS names a (local, stand-in) server, as Debian's profile.d sets one for
	 * login shells. Without --debuginfod profd must not ask it; with it, it does (and the
	 * 404s change nothing). The workload runs from a copy without DWARF (symbols kept) so
	 * that no local debug file exists for it and there is something to ask for. */
	char *out = test_out_path("di.pb.gz"), url[64], *cache = test_tmpdir(), *bin = NULL;
	char sh[1024];
	struct fake_server srv;

	test_require_root();
	char *const help[] = { (char *)test_build_path("profd"), "record", "--help", NULL };
	struct run_result rr;
	cr_assert_eq(test_run(help, 10, &rr), 0);
	cr_assert(strstr(rr.out, "--debuginfod"), "%s", rr.out);
	run_result_free(&rr);
	cr_assert(asprintf(&bin, "%s/chain-nodebug", cache) > 0);
	snprintf(sh, sizeof(sh), "strip --strip-debug -o '%s' '%s'", bin,
		 test_build_path("workloads/chain"));
	cr_assert_eq(system(sh), 0);
	char *const cmd[] = { bin, "1", NULL };
	fake_server_start(&srv);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	setenv("DEBUGINFOD_URLS", url, 1);
	setenv("DEBUGINFOD_CACHE_PATH", cache, 1);
	setenv("DEBUGINFOD_TIMEOUT", "10", 1);

	Perftools__Profiles__Profile *p = record_cmd(out, NULL, cmd);
	cr_assert_gt(p->n_sample, 0);
	test_pprof_free(p);
	cr_assert_eq(__atomic_load_n(&srv.requests, __ATOMIC_SEQ_CST), 0,
		     "profd asked debuginfod without --debuginfod");

	p = record_cmd(out, "--debuginfod", cmd);
	cr_assert_gt(p->n_sample, 0);
	cr_assert_not_null(fn_by_name(p, "chain_leaf"));
	test_pprof_free(p);
	cr_assert_gt(fake_server_stop(&srv), 0, "--debuginfod did not ask the server");
	free(test_check_with_pprof(out));

	char rm[512];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", cache);
	(void)!system(rm);
	free(cache);
	free(bin);
	free(out);
}
