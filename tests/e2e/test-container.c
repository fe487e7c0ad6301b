// SPDX-License-Identifier: MIT
/*
 * End to end, containers: a rootful pivot_root "container" (own mount and pid namespaces, a
 * tmpfs root with read-only binds of /usr (and /lib... where they are directories), its own
 * /tmp, /dev and /proc, the old root detached) whose paths collide with host paths the test
 * controls. Issue 26: what root opens for a container's process is resolved inside the
 * container's root, never on the host at the same path, and no line of a root-only host file
 * reaches a profile.
 *
 * The container's files and the host's decoys have the same paths, so strace -y (which prints an
 * fd's path relative to its own mount namespace's root) cannot tell them apart: the decoys are
 * watched with inotify (any open or read of them, from any namespace, is an event), and where a
 * file exists only on the host, any successful open of its name in the trace is the host's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

/* ---- pprof helpers ------------------------------------------------------------------------ */

/* Some function of the profile whose name contains `needle`, or NULL. */
static const Perftools__Profiles__Function *fn_containing(const Perftools__Profiles__Profile *p,
							  const char *needle)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (strstr(test_pb_str(p, p->function[i]->name), needle))
			return p->function[i];
	return NULL;
}

/*
 * pid's samples (sum of values[0]) into *ret_total; returns those whose leaf Location's first
 * line is function `name`.
 */
static uint64_t leaf_count(const Perftools__Profiles__Profile *p, pid_t pid, const char *name,
			   uint64_t *ret_total)
{
	uint64_t total = 0, hit = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const Perftools__Profiles__Location *l;
		const Perftools__Profiles__Function *f;

		if (test_sample_label_num(p, s, "pid") != pid)
			continue;
		total += s->value[0];
		if (s->n_location_id == 0 || !(l = test_loc_by_id(p, s->location_id[0])) || !l->n_line)
			continue;
		f = test_fn_by_id(p, l->line[0]->function_id);
		if (f && !strcmp(test_pb_str(p, f->name), name))
			hit += s->value[0];
	}
	*ret_total = total;
	return hit;
}

/* ---- what the test started, for the fini on every path ------------------------------------- */

static struct {
	pid_t unshare;	     /* unshare --kill-child: its child is the container's init */
	pid_t init;	     /* the container's init, host pid */
	pid_t strace, profd; /* the traced recording */
	int inotify;
	char watched[4][PATH_MAX]; /* by inotify watch descriptor (1...) */
	char *dir;		   /* the test's directory (host) */
	char host_files[2][64];	   /* host /tmp files the test made, removed at the end */
} ctr = {.inotify = -1};

/* The pids (host) of the children of `parent`, into pids[] (at most max); the count. */
static size_t children(pid_t parent, pid_t *pids, size_t max)
{
	char path[64];
	size_t n = 0;
	FILE *f;
	int pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", parent, parent);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%d", &pid) == 1)
		pids[n++] = pid;
	fclose(f);
	return n;
}

static void ctr_fini(void)
{
	/*
	 * profd first: a SIGKILLed strace leaves its tracee running (or, not yet exec'd, stopped
	 * for good): strace's children, whatever they are by now.
	 */
	if (ctr.profd > 0)
		kill(ctr.profd, SIGKILL);
	if (ctr.strace > 0) {
		pid_t c[4];
		size_t k = children(ctr.strace, c, 4);

		for (size_t i = 0; i < k; i++)
			kill(c[i], SIGKILL);
	}
	test_kill(ctr.strace);
	/* The init's death ends the pid namespace; the last process's, the mounts. */
	if (ctr.init > 0)
		kill(ctr.init, SIGKILL);
	test_kill(ctr.unshare);
	for (size_t i = 0; i < 2; i++)
		if (ctr.host_files[i][0])
			unlink(ctr.host_files[i]);
	if (ctr.inotify >= 0)
		close(ctr.inotify);
	if (ctr.dir) {
		char *cmd = NULL;

		/* The container's mounts live in its namespace: here R is an empty directory. */
		if (asprintf(&cmd, "rm -rf '%s'", ctr.dir) > 0)
			(void)!system(cmd);
		free(cmd);
		free(ctr.dir);
	}
	memset(&ctr, 0, sizeof(ctr));
	ctr.inotify = -1;
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

/* ---- the container ------------------------------------------------------------------------ */

/*
 * Run as root by `unshare --mount --pid --fork` (pid 1 of the new pid namespace, mounts private
 * to it): $1 the root to build (an empty host directory), $2 the path the app directory has
 * inside, $3 the host directory bound there read-only, $4 the shell command to run inside.
 */
static const char ctr_script[] =
    "set -eu\n"
    "R=$1; P=$2; SRC=$3\n"
    "mount -t tmpfs -o mode=0755 profd-ctr-root \"$R\"\n"
    "for d in usr bin sbin lib lib32 lib64; do\n"
    "	if [ -L \"/$d\" ]; then ln -s \"$(readlink \"/$d\")\" \"$R/$d\"\n"
    "	elif [ -d \"/$d\" ]; then mkdir \"$R/$d\"; mount --bind \"/$d\" \"$R/$d\"\n"
    "		mount -o remount,bind,ro \"$R/$d\"\n"
    "	fi\n"
    "done\n"
    "mkdir \"$R/tmp\"; mount -t tmpfs -o mode=1777 profd-ctr-tmp \"$R/tmp\"\n"
    "mkdir \"$R/dev\"; mount -t tmpfs -o mode=0755 profd-ctr-dev \"$R/dev\"\n"
    "mknod -m 0666 \"$R/dev/null\" c 1 3\n"
    "mkdir \"$R/proc\"; mount -t proc proc \"$R/proc\"\n"
    "mkdir -p \"$R$P\"; mount --bind \"$SRC\" \"$R$P\"; mount -o remount,bind,ro \"$R$P\"\n"
    "cd \"$R\"; mkdir old; pivot_root . old; cd /; umount -l /old; rmdir /old\n"
    "exec /bin/sh -c \"$4\"\n";

static bool comm_is(pid_t pid, const char *comm)
{
	char path[64], *c;
	bool is;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	c = test_slurp(path);
	c[strcspn(c, "\n")] = '\0';
	is = !strcmp(c, comm);
	free(c);
	return is;
}

/* A process's pid inside its innermost pid namespace (the last NSpid field), -1 if unknown. */
static pid_t ns_pid(pid_t pid)
{
	char path[64], line[256];
	pid_t last = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6)) {
			/* "NSpid:\t<host>\t...\t<innermost>": one field, no container. */
			const char *t = strrchr(line, '\t');

			last = t && t > line + 6 ? atoi(t + 1) : -1;
		}
	fclose(f);
	return last;
}

/*
 * Start the container (root ctr.dir/root, the host directory `src` bound at `app` inside, `cmd`
 * run there by a shell that is its init) and find its processes whose comm is comms[i]: host
 * pids into pids[i]. The container's output goes to ctr.dir/container.log.
 */
static void container_start(const char *app, const char *src, const char *cmd,
			    const char *const *comms, pid_t *pids, size_t n)
{
	char *root = NULL, *script = NULL, *log = NULL;

	cr_assert(asprintf(&root, "%s/root", ctr.dir) > 0);
	cr_assert(asprintf(&script, "%s/container.sh", ctr.dir) > 0);
	cr_assert(asprintf(&log, "%s/container.log", ctr.dir) > 0);
	cr_assert_eq(mkdir(root, 0755), 0);
	FILE *f = fopen(script, "we");
	cr_assert_not_null(f);
	cr_assert(fputs(ctr_script, f) >= 0);
	cr_assert_eq(fclose(f), 0);
	char *const argv[] = {"/usr/bin/unshare", "--mount",   "--pid",	    "--fork",
			      "--kill-child",	  "/bin/sh",   script,	    root,
			      (char *)app,	  (char *)src, (char *)cmd, NULL};
	ctr.unshare = test_spawn_logged(argv, log, NULL);
	for (int tries = 0; tries < 1500 && ctr.init <= 0; tries++) {
		pid_t c[4];

		if (children(ctr.unshare, c, 4) > 0)
			ctr.init = c[0];
		else
			usleep(20000);
	}
	cr_assert_gt(ctr.init, 0, "the container did not start: %s", test_slurp(log));
	/* Its processes, once they run their own binaries (the init's children). */
	size_t found = 0;
	for (int tries = 0; tries < 1500 && found < n; tries++) {
		pid_t c[16];
		size_t k = children(ctr.init, c, 16);

		found = 0;
		for (size_t i = 0; i < n; i++) {
			pids[i] = 0;
			for (size_t j = 0; j < k; j++)
				if (comm_is(c[j], comms[i]))
					pids[i] = c[j];
			found += pids[i] > 0;
		}
		if (found < n)
			usleep(20000);
	}
	cr_assert_eq(found, n, "the container's workloads did not start: %s", test_slurp(log));
	/* It really is a container: nested pid namespace, another root. */
	struct stat host_root, its_root;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/root/", pids[0]);
	cr_assert_eq(stat("/", &host_root), 0);
	cr_assert_eq(stat(path, &its_root), 0, "%s: %m", path);
	cr_assert(host_root.st_dev != its_root.st_dev || host_root.st_ino != its_root.st_ino,
		  "the container shares the host's root");
	cr_assert_gt(ns_pid(pids[0]), 0, "no nested pid namespace");
	free(root);
	free(script);
	free(log);
}

/* ---- watching the host's decoys ------------------------------------------------------------ */

static void watch(const char *path)
{
	if (ctr.inotify < 0) {
		ctr.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		cr_assert_geq(ctr.inotify, 0, "inotify: %m");
	}
	int wd = inotify_add_watch(ctr.inotify, path, IN_OPEN | IN_ACCESS);

	cr_assert(wd > 0 && wd <= 4, "%s: %m", path);
	snprintf(ctr.watched[wd - 1], sizeof(ctr.watched[0]), "%s", path);
}

/* The events on the watched decoys since the watches were set, as text ("" when none). */
static void watched_events(char *buf, size_t size)
{
	char ev[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	size_t used = 0;
	ssize_t n;

	buf[0] = '\0';
	while ((n = read(ctr.inotify, ev, sizeof(ev))) > 0)
		for (char *p = ev; p < ev + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (used < size)
				used += (size_t)snprintf(
				    buf + used, size - used, "%s %s%s%s; ",
				    e->mask & IN_OPEN ? "open" : "read",
				    e->wd > 0 && e->wd <= 4 ? ctr.watched[e->wd - 1] : "?",
				    e->len ? "/" : "", e->len ? e->name : "");
			p += sizeof(*e) + e->len;
		}
}

/* ---- the traced recording ------------------------------------------------------------------ */

/* Wait until the container's init is gone (with it every process and mount of the container). */
static void container_wait_gone(void)
{
	for (int tries = 0; tries < 3000 && kill(ctr.init, 0) == 0; tries++)
		usleep(20000);
	cr_assert(kill(ctr.init, 0) < 0 && errno == ESRCH, "the container's init %d still runs",
		  ctr.init);
	cr_assert_eq(test_wait(ctr.unshare, 60), 0, "unshare failed");
	ctr.unshare = ctr.init = 0;
}

/*
 * `profd record -p pids` under `strace -f -y` (open calls only), from when it samples until
 * every pid did 1 s of CPU work (however busy the machine is), then SIGINT. With `end_container`
 * the container ends first (pids are killed; its init exits when they are gone): the profile is
 * written for processes, and a root, that are no more. Returns the trace.
 */
static char *record_traced(const char *out, const pid_t *pids, size_t n, bool end_container)
{
	char *trace = NULL, *log = NULL, list[128] = "";
	size_t used = 0;

	cr_assert(asprintf(&trace, "%s/strace.txt", ctr.dir) > 0);
	cr_assert(asprintf(&log, "%s/profd.log", ctr.dir) > 0);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d", i ? "," : "",
					 pids[i]);
	/* LeakSanitizer cannot work under ptrace: off for a sanitizer build's traced profd. */
	char *const env[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
	char *const argv[] = {"/usr/bin/strace",
			      "-f",
			      "-y",
			      "-qq",
			      "-e",
			      "signal=none",
			      "-e",
			      "trace=open,openat,openat2",
			      "-o",
			      trace,
			      (char *)test_build_path("profd"),
			      "record",
			      "-p",
			      list,
			      "-F",
			      "499",
			      "-d",
			      "300",
			      "-o",
			      (char *)out,
			      NULL};
	ctr.strace = test_spawn_logged(argv, log, env);
	/* strace's first children can be its own probes: profd is the one that runs profd. */
	for (int tries = 0; tries < 1500 && ctr.profd <= 0; tries++) {
		pid_t c[4];
		size_t k = children(ctr.strace, c, 4);

		for (size_t i = 0; i < k; i++)
			if (comm_is(c[i], "profd"))
				ctr.profd = c[i];
		if (ctr.profd <= 0)
			usleep(20000);
	}
	cr_assert_gt(ctr.profd, 0, "strace did not start profd: %s", test_slurp(log));
	cr_assert(test_wait_sampling(ctr.profd, 120), "profd did not start sampling: %s",
		  test_slurp(log));
	for (size_t i = 0; i < n; i++)
		cr_assert(test_wait_cpu(pids[i], 1.0, 120), "pid %d got no 1 s of CPU in 120 s",
			  pids[i]);
	if (end_container) {
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		container_wait_gone();
	}
	kill(ctr.profd, SIGINT);
	int status = test_wait(ctr.strace, 120);
	ctr.strace = ctr.profd = 0;
	cr_assert_eq(status, 0, "profd failed (%d): %s", status, test_slurp(log));
	free(log);
	return trace;
}

/*
 * Lines of the trace naming `name` (an open's path argument, or an fd's path that -y prints),
 * into *ret_all; returns those whose call returned an fd (a file by that name was opened), the
 * first of them into first[].
 */
static int opened(const char *trace, const char *name, int *ret_all, char *first, size_t size)
{
	FILE *f = fopen(trace, "re");
	char line[8192];
	int n = 0, all = 0;

	cr_assert_not_null(f, "%s", trace);
	first[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		const char *eq = strstr(line, ") = ");

		if (!strstr(line, name))
			continue;
		all++;
		/* "= 7</path>": an fd; "= -1 ENOENT ...": nothing opened. */
		if (eq && eq[4] >= '0' && eq[4] <= '9') {
			if (!n++)
				snprintf(first, size, "%s", line);
		}
	}
	fclose(f);
	*ret_all = all;
	return n;
}

/* ---- (a) debug files named by a container's binary ----------------------------------------- */

static const char work_src[] =
    "__attribute__((noinline)) static unsigned long WORK_FN(unsigned long n)\n"
    "{\n"
    "\tvolatile unsigned long x = 0;\n"
    "\tfor (unsigned long i = 0; i < n; i++)\n"
    "\t\tx += i * i;\n"
    "\treturn x;\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "\tfor (;;)\n"
    "\t\tWORK_FN(1000000);\n"
    "}\n";

/*
 * Two stripped binaries without build-id in a pivot_root container, at P = <test dir>/app, a
 * path that also exists on the host:
 *   wl   names wl.debug: in the container, its genuine debug file (CRC matches), naming
 *        ctr_debug_only_work in cwork.c; on the host at P, a root-only decoy.
 *   wl2  names wl2.debug: only on the host (P/wl2.debug, P/.debug/wl2.debug, root, 0600), a
 *        debug file of the same code whose CRC the debuglink records, naming the function
 *        host_secret_fn_work: opened on the host, it would name wl2's frames.
 * profd record of both, as root under strace: the container's debug file is used, the host's
 * files at the same paths are never opened (inotify), nothing named wl2.debug is ever opened
 * (the container has none), and no name of the host's files is in the profile.
 */
Test(container, pivot_root_debuglink_resolved_in_container_root, .fini = ctr_fini, .timeout = 300)
{
	char *s = NULL, *capp = NULL, *p = NULL, *out = NULL, cmd[2048], first[8192], ev[4096];
	pid_t pids[2];
	struct stat st;

	test_require_root();
	cr_assert_eq(system("command -v strace >/dev/null && command -v gcc >/dev/null && "
			    "command -v objcopy >/dev/null && command -v pivot_root >/dev/null"),
		     0, "strace, gcc, objcopy and pivot_root are needed (make deps)");
	ctr.dir = test_tmpdir();
	cr_assert_not_null(ctr.dir);
	cr_assert(asprintf(&s, "%s/build", ctr.dir) > 0);
	cr_assert(asprintf(&capp, "%s/container-app", ctr.dir) > 0);
	cr_assert(asprintf(&p, "%s/app", ctr.dir) > 0);
	cr_assert(asprintf(&out, "%s/container.pb.gz", ctr.dir) > 0);
	cr_assert_eq(mkdir(s, 0755), 0);
	cr_assert_eq(mkdir(capp, 0755), 0);
	snprintf(cmd, sizeof(cmd), "%s/cwork.c", s);
	FILE *f = fopen(cmd, "we");
	cr_assert_not_null(f);
	cr_assert(fputs(work_src, f) >= 0);
	cr_assert_eq(fclose(f), 0);

	/* One code, two names: the stripped binaries are identical, the debug files are not. */
	cr_assert_eq(sh("cd '%s' && for v in ctr_debug_only_work:ctr host_secret_fn_work:host; do "
			"gcc -O1 -g -fno-omit-frame-pointer -Wl,--build-id=none "
			"-DWORK_FN=${v%%:*} -o ${v#*:}.full cwork.c && "
			"objcopy --strip-all ${v#*:}.full ${v#*:}.strip && "
			"objcopy --only-keep-debug ${v#*:}.full ${v#*:}.debug || exit 1; done && "
			"cmp ctr.strip host.strip && ! cmp -s ctr.debug host.debug",
			s),
		     0, "could not build the workloads (or the stripped binaries differ)");
	/* The container's app directory: wl with its genuine debug file, wl2 with none. */
	cr_assert_eq(sh("cd '%s' && cp ctr.debug '%s/wl.debug' && cp ctr.strip '%s/wl' && "
			"cp ctr.strip '%s/wl2' && cp host.debug wl2.debug && "
			"objcopy --add-gnu-debuglink='%s/wl.debug' '%s/wl' && "
			"objcopy --add-gnu-debuglink=wl2.debug '%s/wl2' && "
			"! readelf -n '%s/wl' | grep -q 'Build ID'",
			s, capp, capp, capp, capp, capp, capp, capp),
		     0, "could not make the container's binaries");
	/* The host at P: root-only files by the names the debuglinks give, the marker in each. */
	cr_assert_eq(sh("mkdir -m 0755 '%s' '%s/.debug' && cd '%s' && for t in '%s/wl.debug' "
			"'%s/wl2.debug' '%s/.debug/wl.debug' '%s/.debug/wl2.debug'; do "
			"install -m 0600 host.debug \"$t\" || exit 1; done && "
			"grep -q host_secret_fn_work '%s/wl2.debug'",
			p, p, s, p, p, p, p, p),
		     0, "could not make the host's decoys");

	char *run = NULL;
	cr_assert(asprintf(&run, "'%s/wl' & '%s/wl2' & wait", p, p) > 0);
	static const char *const comms[] = {"wl", "wl2"};
	container_start(p, capp, run, comms, pids, 2);
	free(run);
	/* The collision is real: the container sees its own P, the host's decoys are not there. */
	snprintf(cmd, sizeof(cmd), "/proc/%d/root%s/wl2.debug", pids[1], p);
	cr_assert(stat(cmd, &st) < 0 && errno == ENOENT, "%s exists in the container", cmd);
	snprintf(cmd, sizeof(cmd), "/proc/%d/root%s/wl.debug", pids[0], p);
	cr_assert_eq(stat(cmd, &st), 0, "%s: %m", cmd);
	struct stat decoy;
	snprintf(cmd, sizeof(cmd), "%s/wl.debug", p);
	cr_assert_eq(stat(cmd, &decoy), 0);
	cr_assert(decoy.st_ino != st.st_ino && decoy.st_uid == 0 && (decoy.st_mode & 0777) == 0600);
	snprintf(cmd, sizeof(cmd), "/proc/%d/maps", pids[1]);
	char *maps = test_slurp(cmd);
	snprintf(cmd, sizeof(cmd), "%s/wl2", p);
	cr_assert(strstr(maps, cmd), "the container's binary is not mapped as %s: %s", cmd, maps);
	free(maps);

	watch(p);
	snprintf(cmd, sizeof(cmd), "%s/.debug", p);
	watch(cmd);
	char *trace = record_traced(out, pids, 2, false);

	/* No name from the host's files in the profile... */
	Perftools__Profiles__Profile *prof = test_pprof_load(out);
	cr_assert_not_null(prof);
	const Perftools__Profiles__Function *secret = fn_containing(prof, "host_secret");
	cr_assert_null(secret, "a name from the host's root-only file: %s",
		       secret ? test_pb_str(prof, secret->name) : "");
	/* Not one open or read of the host's files at P, from any namespace. */
	watched_events(ev, sizeof(ev));
	cr_assert_str_empty(ev, "root opened the host's files at the container's path: %s", ev);
	/* wl2.debug: looked for (else nothing was tested), never opened (the container has none).
	 */
	int all, n = opened(trace, "/wl2.debug", &all, first, sizeof(first));
	cr_assert_gt(all, 0, "profd never looked for wl2.debug: nothing was tested (%s)", trace);
	cr_assert_eq(n, 0, "a host file named wl2.debug was opened: %s", first);
	/* wl.debug: the container's was opened, and used (wl's frames named, with file and line).
	 */
	n = opened(trace, "/wl.debug", &all, first, sizeof(first));
	cr_assert_gt(n, 0, "the container's debug file was never opened (%s)", trace);

	uint64_t total, hit = leaf_count(prof, pids[0], "ctr_debug_only_work", &total);
	cr_assert_gt(total, 100, "samples of wl: %llu", (unsigned long long)total);
	cr_assert_geq(hit, total * 9 / 10, "ctr_debug_only_work is the leaf in %llu of %llu",
		      (unsigned long long)hit, (unsigned long long)total);
	const Perftools__Profiles__Function *fn = fn_containing(prof, "ctr_debug_only_work");
	cr_assert_not_null(fn);
	cr_assert(strstr(test_pb_str(prof, fn->filename), "cwork.c"), "file: %s",
		  test_pb_str(prof, fn->filename));
	cr_assert_gt(fn->start_line, 0);
	leaf_count(prof, pids[1], "", &total);
	cr_assert_gt(total, 100, "samples of wl2: %llu", (unsigned long long)total);
	test_pprof_free(prof);
	free(test_check_with_pprof(out));
	free(trace);
	free(s);
	free(capp);
	free(p);
	free(out);
}

/* ---- (b) a JIT's perf map inside the container --------------------------------------------- */

/*
 * A root-only file (0600) at `path` on the host holding `line`; refused if something not made
 * by this test is there. Removed by the fini.
 */
static void host_file(size_t slot, const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 && errno == EEXIST) {
		/* Left by a killed run of this test? Only then it is ours to replace. */
		char *old = test_slurp(path);
		bool ours = strstr(old, "PROFD_CONTAINER_TEST") != NULL;

		free(old);
		cr_assert(ours, "%s exists and is not this test's: remove it", path);
		cr_assert_eq(unlink(path), 0);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	cr_assert_geq(fd, 0, "%s: %m", path);
	snprintf(ctr.host_files[slot], sizeof(ctr.host_files[slot]), "%s", path);
	cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_eq(close(fd), 0);
}

/*
 * A JIT (workloads/jit_spin, its code at a fixed address) in a pivot_root container writes
 * /tmp/perf-NSPID.map in the container's own /tmp. On the host, /tmp/perf-HOSTPID.map and
 * /tmp/perf-NSPID.map are root-only files naming the same code. The container ends (the JIT
 * killed, its init gone, its /tmp with it) before profd writes the profile. The frames are named
 * from the container's map (found inside its root by the namespace pid, read while the JIT
 * lived), the host's files are never opened (inotify; and no file named perf-HOSTPID.map is
 * opened at all: the container has none) and their lines are in no frame. (Before issue 26,
 * profd read the host's /tmp/perf-HOSTPID.map of a process gone, whoever's it was.)
 */
Test(container, pivot_root_perf_map_found_by_namespace_pid, .fini = ctr_fini, .timeout = 300)
{
	const char *addr = "7e5e00000000";
	char *capp = NULL, *p = NULL, *out = NULL, *run = NULL, path[64], name[64], first[8192],
	     ev[4096];
	pid_t pid;

	test_require_root();
	cr_assert_eq(system("command -v strace >/dev/null && command -v pivot_root >/dev/null"), 0,
		     "strace and pivot_root are needed (make deps)");
	ctr.dir = test_tmpdir();
	cr_assert_not_null(ctr.dir);
	cr_assert(asprintf(&capp, "%s/container-app", ctr.dir) > 0);
	cr_assert(asprintf(&p, "%s/app", ctr.dir) > 0);
	cr_assert(asprintf(&out, "%s/container-jit.pb.gz", ctr.dir) > 0);
	cr_assert_eq(mkdir(capp, 0755), 0);
	cr_assert_eq(sh("cp '%s' '%s/jit_spin'", test_build_path("workloads/jit_spin"), capp), 0);
	cr_assert(asprintf(&run, "'%s/jit_spin' 3600 --at %s & wait", p, addr) > 0);
	static const char *const comms[] = {"jit_spin"};
	container_start(p, capp, run, comms, &pid, 1);
	free(run);
	pid_t nspid = ns_pid(pid);
	cr_assert(nspid > 0 && nspid != pid, "host pid %d, namespace pid %d", pid, nspid);

	/* Its own map, in its own /tmp (the host's /tmp has none by that name of its own). */
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/perf-%d.map", pid, nspid);
	for (int tries = 0; tries < 500 && access(path, R_OK) != 0; tries++)
		usleep(20000);
	char *map = test_slurp(path);
	cr_assert(strstr(map, "jit_spin_loop"), "%s: %s", path, map);
	free(map);
	/* The host's decoys, at the same address. */
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", pid);
	host_file(0, path, "7e5e00000100 e PROFD_CONTAINER_TEST_HOST_PID_LINE\n");
	watch(path);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", nspid);
	host_file(1, path, "7e5e00000100 e PROFD_CONTAINER_TEST_NS_PID_LINE\n");
	watch(path);

	char *trace = record_traced(out, &pid, 1, true);
	Perftools__Profiles__Profile *prof = test_pprof_load(out);
	cr_assert_not_null(prof);
	const Perftools__Profiles__Function *leak = fn_containing(prof, "PROFD_CONTAINER_TEST");
	cr_assert_null(leak, "a host file's line in a frame: %s",
		       leak ? test_pb_str(prof, leak->name) : "");
	watched_events(ev, sizeof(ev));
	cr_assert_str_empty(ev, "root opened the host's /tmp/perf-*.map: %s", ev);
	int all;
	snprintf(name, sizeof(name), "/perf-%d.map", pid);
	int n = opened(trace, name, &all, first, sizeof(first));
	cr_assert_eq(n, 0, "a file named perf-%d.map (the host pid) was opened: %s", pid, first);
	snprintf(name, sizeof(name), "/perf-%d.map", nspid);
	n = opened(trace, name, &all, first, sizeof(first));
	cr_assert_gt(n, 0, "the container's map was never opened (%s)", trace);

	uint64_t total, hit = leaf_count(prof, pid, "jit_spin_loop", &total);
	cr_assert_gt(total, 100, "samples: %llu", (unsigned long long)total);
	cr_assert_geq(hit, total * 9 / 10, "jit_spin_loop is the leaf in %llu of %llu",
		      (unsigned long long)hit, (unsigned long long)total);
	test_pprof_free(prof);
	free(test_check_with_pprof(out));
	free(trace);
	free(capp);
	free(p);
	free(out);
}
