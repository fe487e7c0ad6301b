// SPDX-License-Identifier: MIT
/*
 * Access control of `profd daemon`'s endpoint, end to end, with real users: the callers are
 * curl and the real pprof run under setpriv as nobody (65534), as the `daemon` user (uid 1, in
 * group `daemon`) and as root; certificates are made by openssl in the test's own directory.
 *
 * Each test starts its own daemon (listen 127.0.0.1:0, the port read back from its log) and its
 * own busy workloads, so what is asserted never depends on what else runs on the host.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "tests/lib/testlib.h"

#define NOBODY 65534
#define DAEMON_UID 1 /* Debian's `daemon` user, primary group `daemon` (1) */

static const char *const chain[] = {"chain_leaf", "chain_c", "chain_b", "chain_a", "main"};

struct ta {
	char *dir;  /* 0755: the users below must reach the workload copy and certificates */
	char *pub;  /* 1777: where callers that are not root write what they fetched */
	char *conf, *log, *notify;
	int notify_fd;
	pid_t pid;
	char addr[64]; /* the TCP listener, HOST:PORT */
	pid_t workloads[8];
	size_t n_workloads;
};

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, k;

	if (!f)
		return NULL;
	do {
		if (n + 4097 > cap) {
			cap = (n + 4097) * 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		k = fread(buf + n, 1, 4096, f);
		n += k;
	} while (k > 0);
	fclose(f);
	buf[n] = '\0';
	if (ret_len)
		*ret_len = n;
	return buf;
}

static bool log_has(struct ta *t, const char *needle)
{
	char *log = slurp(t->log, NULL);
	bool r = log && strstr(log, needle);

	free(log);
	return r;
}

static void write_text(const char *path, mode_t mode, const char *fmt, ...)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f;
	va_list ap;

	cr_assert_geq(fd, 0, "cannot write %s: %s", path, strerror(errno));
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static char *path_in(const char *dir, const char *name)
{
	char *p;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void ta_prepare(struct ta *t)
{
	char *src = (char *)test_build_path("workloads/chain"), *dst;
	struct run_result rr;

	test_require_root();
	memset(t, 0, sizeof(*t));
	t->dir = test_tmpdir();
	cr_assert_not_null(t->dir);
	cr_assert_eq(chmod(t->dir, 0755), 0);
	t->pub = path_in(t->dir, "pub");
	cr_assert_eq(mkdir(t->pub, 0755), 0);
	cr_assert_eq(chmod(t->pub, 01777), 0);
	t->conf = path_in(t->dir, "profd.conf");
	t->log = path_in(t->dir, "profd.log");
	t->notify = path_in(t->dir, "notify");
	/* The build tree may sit below a directory other users cannot enter: use a copy. */
	dst = path_in(t->dir, "chain");
	cr_assert_eq(test_run((char *[]){"/usr/bin/install", "-m", "0755", src, dst, NULL}, 30, &rr),
		     0);
	cr_assert_eq(rr.status, 0, "install: %s", rr.err);
	run_result_free(&rr);
	free(dst);
	t->notify_fd = test_notify_socket(t->notify);
}

/* Start the daemon on t->conf and wait until it is ready: 0, or its exit status if it ended. */
static int ta_start(struct ta *t, bool must_start)
{
	char *log, *p, env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	int status, r;

	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", t->notify);
	t->pid = test_spawn_logged(
	    (char *[]){(char *)test_build_path("profd"), "daemon", "--config", t->conf, NULL}, t->log,
	    (char *[]){env, NULL});
	r = test_notified(t->notify_fd, "READY=1", 60, t->pid, &status);
	if (r < 0) {
		t->pid = 0;
		cr_assert(!must_start, "daemon did not start: %s", slurp(t->log, NULL));
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	if (r == 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		t->pid = 0;
		cr_assert_fail("daemon did not become ready: %s", slurp(t->log, NULL));
	}
	cr_assert(must_start, "daemon started, but should have refused: %s", slurp(t->log, NULL));
	log = slurp(t->log, NULL);
	p = strstr(log, "listening on ");
	if (p) {
		p += strlen("listening on ");
		if (!strncmp(p, "https://", 8))
			p += 8;
		snprintf(t->addr, sizeof(t->addr), "%.*s", (int)strcspn(p, ", \n"), p);
		if (t->addr[0] && t->addr[strlen(t->addr) - 1] == '.')
			t->addr[strlen(t->addr) - 1] = '\0';
	}
	free(log);
	return 0;
}

/* A workload run as uid:gid (no supplementary groups); kept until the test ends. */
static pid_t ta_spawn_as(struct ta *t, uid_t uid, gid_t gid, char *const cmd[])
{
	char u[32], g[32], *argv[16];
	size_t n = 0;
	pid_t pid;

	snprintf(u, sizeof(u), "--reuid=%u", (unsigned)uid);
	snprintf(g, sizeof(g), "--regid=%u", (unsigned)gid);
	argv[n++] = "/usr/bin/setpriv";
	argv[n++] = u;
	argv[n++] = g;
	argv[n++] = "--clear-groups";
	argv[n++] = "--";
	for (size_t i = 0; cmd[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	pid = test_spawn(argv);
	cr_assert_gt(pid, 0, "cannot start %s as uid %u", cmd[0], (unsigned)uid);
	cr_assert_lt(t->n_workloads, ARRAY_SIZE(t->workloads));
	t->workloads[t->n_workloads++] = pid;
	return pid;
}

static pid_t ta_chain_as(struct ta *t, uid_t uid, gid_t gid)
{
	_cleanup_free_ char *prog = path_in(t->dir, "chain");

	return ta_spawn_as(t, uid, gid, (char *[]){prog, "60", NULL});
}

static void ta_cleanup(struct ta *t)
{
	char *cmd = NULL;

	for (size_t i = 0; i < t->n_workloads; i++) {
		kill(t->workloads[i], SIGKILL);
		waitpid(t->workloads[i], NULL, 0);
	}
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
	}
	if (t->notify_fd > 0)
		close(t->notify_fd);
	if (t->dir && asprintf(&cmd, "rm -rf '%s'", t->dir) > 0 && system(cmd) != 0)
		cr_log_warn("could not remove %s", t->dir);
	free(cmd);
	free(t->dir);
	free(t->pub);
	free(t->conf);
	free(t->log);
	free(t->notify);
}

/* SIGTERM and wait for a clean exit. */
static void ta_stop(struct ta *t)
{
	int r = test_stop(t->pid, 60);

	t->pid = 0;
	cr_expect_eq(r, 0, "daemon exit status %d: %s", r, slurp(t->log, NULL));
}

/*
 * `curl` as a user (uid NULL-free: setpriv), writing the body to t->pub/<out>. groups: "" for
 * none, else setpriv's --groups list. Returns the HTTP status (0: no answer, e.g. refused
 * connection); *ret_body gets the body (malloc()ed, may hold NULs), *ret_len its length.
 */
static unsigned curl_as(struct ta *t, uid_t uid, gid_t gid, const char *groups, const char *out,
			char *const extra[], const char *url, char **ret_body, size_t *ret_len)
{
	char u[32], g[32], gr[160], *argv[32];
	_cleanup_free_ char *o = path_in(t->pub, out);
	struct run_result rr;
	size_t n = 0;
	unsigned status = 0;

	unlink(o);
	snprintf(u, sizeof(u), "--reuid=%u", (unsigned)uid);
	snprintf(g, sizeof(g), "--regid=%u", (unsigned)gid);
	argv[n++] = "/usr/bin/setpriv";
	argv[n++] = u;
	argv[n++] = g;
	if (groups[0]) {
		snprintf(gr, sizeof(gr), "--groups=%s", groups);
		argv[n++] = gr;
	} else {
		argv[n++] = "--clear-groups";
	}
	argv[n++] = "--";
	argv[n++] = "/usr/bin/curl";
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "60";
	argv[n++] = "-o";
	argv[n++] = o;
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n++] = (char *)url;
	argv[n] = NULL;
	cr_assert_lt(n, ARRAY_SIZE(argv));
	cr_assert_eq(test_run(argv, 90, &rr), 0);
	if (sscanf(rr.out, "%u", &status) != 1)
		status = 0;
	run_result_free(&rr);
	if (ret_body) {
		*ret_body = slurp(o, ret_len);
		if (!*ret_body) {
			*ret_body = strdup("");
			*ret_len = 0;
		}
	}
	return status;
}

static bool is_gzip(const char *b, size_t n)
{
	return n >= 2 && (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b;
}

static Perftools__Profiles__Profile *load_body(struct ta *t, const char *name, const char *b,
					      size_t n)
{
	_cleanup_free_ char *p = path_in(t->dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	Perftools__Profiles__Profile *prof;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b, n), (ssize_t)n);
	close(fd);
	prof = test_pprof_load(p);
	cr_assert_not_null(prof);
	free(test_check_with_pprof(p));
	return prof;
}

/* Samples (values[0]) of process pid. */
static uint64_t pid_samples(const Perftools__Profiles__Profile *p, pid_t pid)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->n_sample; i++)
		if (test_sample_label_num(p, p->sample[i], "pid") == pid)
			n += p->sample[i]->value[0];
	return n;
}

static bool has_kernel_mapping(const Perftools__Profiles__Profile *p)
{
	for (size_t i = 0; i < p->n_mapping; i++) {
		uint64_t s = p->mapping[i]->filename;

		if (s < p->n_string_table && strstr(p->string_table[s], "kernel"))
			return true;
	}
	return false;
}

static double metric_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/*
 * Default deny: nobody gets 403 and no profile bytes; a member of allow_group (uid 1, group
 * daemon) and root get the whole host's profile; the unix socket is 0660 root:group and
 * connect() alone already keeps others out.
 */
Test(access, nobody_denied_group_and_root_allowed, .timeout = 240)
{
	struct ta t;
	char url[256], *body, *metrics, *log;
	size_t n;
	pid_t root_chain;
	struct stat st;
	_cleanup_free_ char *sock = NULL;
	Perftools__Profiles__Profile *p;

	ta_prepare(&t);
	sock = path_in(t.dir, "profd.sock");
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = daemon\n"
		   "frequency = 99\n",
		   sock);
	root_chain = ta_chain_as(&t, 0, 0);
	ta_start(&t, true);
	cr_assert(t.addr[0], "no listening address in the log: %s", slurp(t.log, NULL));

	/* nobody: 403, a reason that says how to get access, no profile. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1", t.addr);
	cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "nobody.out", NULL, url, &body, &n), 403,
		     "body: %s", body);
	cr_expect(!is_gzip(body, n), "a profile was sent to nobody");
	cr_expect(strstr(body, "uid 65534") && strstr(body, "group daemon"), "body: %s", body);
	free(body);
	/* ... also with pid= of its own choosing. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1&pid=%d", t.addr,
		 root_chain);
	cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "nobody2.out", NULL, url, &body, &n), 403);
	cr_expect(!is_gzip(body, n));
	free(body);

	/* /metrics names no process: any local user (metrics_access = local, the default). */
	snprintf(url, sizeof(url), "http://%s/metrics", t.addr);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "m.out", NULL, url, NULL, NULL), 200);

	/* A member of allow_group over loopback TCP: the whole host, root's workload included. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=2", t.addr);
	cr_assert_eq(curl_as(&t, DAEMON_UID, DAEMON_UID, "", "member.out", NULL, url, &body, &n),
		     200, "body: %s", body);
	cr_assert(is_gzip(body, n));
	p = load_body(&t, "member.pb.gz", body, n);
	cr_expect_gt(pid_samples(p, root_chain), 20, "root's workload missing from the group's view");
	test_pprof_free(p);
	free(body);

	/* root. */
	cr_assert_eq(curl_as(&t, 0, 0, "", "root.out", NULL, url, &body, &n), 200);
	p = load_body(&t, "root.pb.gz", body, n);
	cr_expect_gt(pid_samples(p, root_chain), 20);
	cr_expect_gt(test_chain_fraction(p, root_chain, chain, ARRAY_SIZE(chain), NULL), 0.9);
	test_pprof_free(p);
	free(body);

	/* The unix socket: 0660, group daemon; nobody cannot even connect, with the group it can. */
	cr_assert_eq(stat(sock, &st), 0);
	cr_expect(S_ISSOCK(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0660, "socket mode %o", st.st_mode & 07777);
	cr_expect_eq(st.st_gid, DAEMON_UID);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "u1.out", (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/debug/pprof/profile?seconds=1", NULL, NULL),
		     0, "nobody connected to a 0660 socket of another group");
	cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "1", "u2.out",
			     (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/debug/pprof/profile?seconds=2", &body, &n),
		     200, "body: %s", body);
	p = load_body(&t, "unix.pb.gz", body, n);
	cr_expect_gt(pid_samples(p, root_chain), 10);
	test_pprof_free(p);
	free(body);

	/* Refusals are counted and logged. */
	snprintf(url, sizeof(url), "http://%s/metrics", t.addr);
	cr_assert_eq(curl_as(&t, 0, 0, "", "metrics.out", NULL, url, &metrics, &n), 200);
	cr_expect_geq(metric_value(metrics, "profd_http_refused_total{reason=\"access\"}"), 2, "%s",
		      metrics);
	free(metrics);
	ta_stop(&t);
	log = slurp(t.log, NULL);
	cr_expect(strstr(log, "refused /debug/pprof/profile to 127.0.0.1:"), "log: %s", log);
	cr_expect(access(sock, F_OK) != 0, "the socket outlived the daemon");
	free(log);
	ta_cleanup(&t);
}

/*
 * own_processes: nobody gets a profile of its own processes only. Busy processes of uid 1 and
 * of root run at the same time and must be absent; kernel frames are left out when
 * perf_event_paranoid >= 2 (dd spends its time in the kernel), and nothing at all is served when
 * it is above 2.
 */
Test(access, own_processes_only, .timeout = 240)
{
	struct ta t;
	char url[256], *body;
	size_t n;
	pid_t mine, dd, other, root_chain;
	int paranoid = 3;
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	Perftools__Profiles__Profile *p;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &paranoid), 1);
	fclose(f);
	ta_prepare(&t);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "own_processes = yes\nfrequency = 99\n");
	mine = ta_chain_as(&t, NOBODY, NOBODY);
	other = ta_chain_as(&t, DAEMON_UID, DAEMON_UID);
	root_chain = ta_chain_as(&t, 0, 0);
	/* Time in the kernel: dd copying /dev/zero (its pid printed first, as test_spawn wants). */
	dd = ta_spawn_as(&t, NOBODY, NOBODY,
			 (char *[]){"/bin/sh", "-c",
				    "echo $$; exec dd if=/dev/zero of=/dev/null bs=1M 2>/dev/null",
				    NULL});
	ta_start(&t, true);

	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=3", t.addr);
	if (paranoid > 2) {
		cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "own.out", NULL, url, &body, &n), 403);
		cr_expect(strstr(body, "perf_event_paranoid"), "body: %s", body);
		free(body);
		ta_stop(&t);
		ta_cleanup(&t);
		return;
	}
	/*
	 * How much CPU the caller's processes had while the request ran (their own count, from
	 * /proc): on a busy machine four busy processes share two CPUs with the rest, so the
	 * samples a 3-s window can hold are bounded by what they ran, not by the clock.
	 */
	double t0 = test_now(), cpu_mine = test_cpu_seconds(mine), cpu_dd = test_cpu_seconds(dd);
	cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "own.out", NULL, url, &body, &n), 200,
		     "body: %s", body);
	double span = test_now() - t0;
	/* Samples at 99 Hz in the 3-s window, at the share of a CPU each had: a third is enough. */
	double want_mine = MIN(20.0, (test_cpu_seconds(mine) - cpu_mine) / span * 3 * 99 / 3);
	double want_dd = MIN(10.0, (test_cpu_seconds(dd) - cpu_dd) / span * 3 * 99 / 3);
	p = load_body(&t, "own.pb.gz", body, n);
	free(body);
	cr_expect_gt(want_mine, 3, "nobody's workload hardly ran (%.1f samples' worth)", want_mine);
	cr_expect_gt(pid_samples(p, mine), want_mine,
		     "the caller's own workload is missing (%llu samples, %.1f expected)",
		     (unsigned long long)pid_samples(p, mine), want_mine);
	cr_expect_gt(test_chain_fraction(p, mine, chain, ARRAY_SIZE(chain), NULL), 0.9);
	cr_expect_eq(pid_samples(p, other), 0, "uid 1's process is in nobody's profile");
	cr_expect_eq(pid_samples(p, root_chain), 0, "root's process is in nobody's profile");
	cr_expect_gt(want_dd, 3, "nobody's dd hardly ran (%.1f samples' worth)", want_dd);
	cr_expect_gt(pid_samples(p, dd), want_dd,
		     "the caller's dd is missing (%llu samples, %.1f expected)",
		     (unsigned long long)pid_samples(p, dd), want_dd);
	for (size_t i = 0; i < p->n_sample; i++) {
		int64_t pid = test_sample_label_num(p, p->sample[i], "pid");
		char status[64];
		struct stat st;

		/* Every process in it is nobody's (those gone since cannot be checked). */
		snprintf(status, sizeof(status), "/proc/%lld", (long long)pid);
		if (stat(status, &st) == 0)
			cr_expect_eq(st.st_uid, NOBODY, "pid %lld of uid %u in nobody's profile",
				     (long long)pid, (unsigned)st.st_uid);
	}
	if (paranoid >= 2)
		cr_expect(!has_kernel_mapping(p), "kernel frames at perf_event_paranoid %d",
			  paranoid);
	test_pprof_free(p);

	/* Asking for another user's pid gives an empty profile, not that process. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=2&pid=%d", t.addr, other);
	cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "other.out", NULL, url, &body, &n), 200);
	p = load_body(&t, "other.pb.gz", body, n);
	cr_expect_eq(pid_samples(p, other), 0);
	test_pprof_free(p);
	free(body);

	/* root still sees everyone, kernel frames included. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=2", t.addr);
	cr_assert_eq(curl_as(&t, 0, 0, "", "root.out", NULL, url, &body, &n), 200);
	p = load_body(&t, "root.pb.gz", body, n);
	cr_expect_gt(pid_samples(p, other), 10);
	cr_expect_gt(pid_samples(p, root_chain), 10);
	cr_expect(has_kernel_mapping(p), "dd's kernel time has no kernel frames in root's view");
	test_pprof_free(p);
	free(body);
	ta_stop(&t);
	ta_cleanup(&t);
}

/* A function of the profile whose name contains `needle`, or NULL. */
static const char *fn_containing(const Perftools__Profiles__Profile *p, const char *needle)
{
	for (size_t i = 0; i < p->n_function; i++) {
		int64_t s = p->function[i]->name;

		if (s >= 0 && (size_t)s < p->n_string_table && strstr(p->string_table[s], needle))
			return p->string_table[s];
	}
	return NULL;
}

/*
 * Issue 26, finding 2, as it was seen: nobody, in its own user and mount namespace, bind-mounts
 * a root-only file over its perf map and runs JIT code there; the daemon (own_processes) must
 * not serve nobody that file's line. nobody's own map, written by itself in the same kind of
 * namespace, names its code.
 */
Test(access, perf_map_trust_follows_the_owner, .timeout = 240)
{
	struct ta t;
	char url[256], script[1024], path[64], *body, *secret, *jit;
	struct run_result rr;
	size_t n;
	pid_t bound, own;
	int paranoid = 3;
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	Perftools__Profiles__Profile *p;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &paranoid), 1);
	fclose(f);
	ta_prepare(&t);
	jit = path_in(t.dir, "jit_spin");
	cr_assert_eq(test_run((char *[]){"/usr/bin/install", "-m", "0755",
					 (char *)test_build_path("workloads/jit_spin"), jit, NULL},
			      30, &rr),
		     0);
	cr_assert_eq(rr.status, 0, "install: %s", rr.err);
	run_result_free(&rr);
	secret = path_in(t.dir, "secret.map");
	write_text(secret, 0600, "7e5e00000100 e ROOT_ONLY_SECRET_LINE\n");
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "own_processes = yes\nfrequency = 99\n");
	snprintf(script, sizeof(script),
		 "touch /tmp/perf-$$.map && mount --bind '%s' /tmp/perf-$$.map && "
		 "exec '%s' 60 --no-map --at 7e5e00000000",
		 secret, jit);
	bound = ta_spawn_as(&t, NOBODY, NOBODY,
			    (char *[]){"/usr/bin/unshare", "-Urm", "/bin/sh", "-c", script, NULL});
	snprintf(script, sizeof(script), "exec '%s' 60", jit);
	own = ta_spawn_as(&t, NOBODY, NOBODY,
			  (char *[]){"/usr/bin/unshare", "-Urm", "/bin/sh", "-c", script, NULL});
	ta_start(&t, true);

	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=3", t.addr);
	if (paranoid > 2) {
		/* No profile for nobody at all: nothing of root's can reach it either. */
		cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "jit.out", NULL, url, &body, &n), 403);
		free(body);
	} else {
		cr_assert_eq(curl_as(&t, NOBODY, NOBODY, "", "jit.out", NULL, url, &body, &n), 200,
			     "body: %s", body);
		p = load_body(&t, "jit.pb.gz", body, n);
		free(body);
		cr_expect_gt(pid_samples(p, bound), 20, "the bind-mounting JIT is missing");
		cr_expect_gt(pid_samples(p, own), 20, "the JIT with its own map is missing");
		cr_expect_null(fn_containing(p, "ROOT_ONLY_SECRET_LINE"),
			       "a root-only file's line was served to nobody");
		cr_expect_not_null(fn_containing(p, "jit_spin_loop"), "nobody's own map was not used");
		test_pprof_free(p);
	}
	ta_stop(&t);
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/tmp/perf-%d.map", i ? own : bound);
		kill(i ? own : bound, SIGKILL);
		unlink(path);
	}
	free(secret);
	free(jit);
	ta_cleanup(&t);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in dir. */
static void make_certs(const char *dir)
{
	static const char script[] =
	    "set -e; cd \"$1\"\n"
	    "k='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
	    "openssl req -x509 $k -keyout ca.key -out ca.crt -subj /CN=profd-test-ca -days 2 "
	    "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign\n"
	    "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext\n"
	    "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
	    "for n in server client; do\n"
	    "  openssl req $k -keyout $n.key -out $n.csr -subj /CN=profd-test-$n\n"
	    "  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
	    "    -extfile $n.ext -out $n.crt\n"
	    "done\n"
	    /* A second CA that signed nothing of ours, and a client certificate from it. */
	    "openssl req -x509 $k -keyout evil-ca.key -out evil-ca.crt -subj /CN=other-ca -days 2\n"
	    "openssl req $k -keyout evil.key -out evil.csr -subj /CN=profd-test-evil\n"
	    "openssl x509 -req -in evil.csr -CA evil-ca.crt -CAkey evil-ca.key -CAcreateserial "
	    "  -days 2 -extfile client.ext -out evil.crt\n"
	    "chmod 0644 *.key *.crt\n";
	struct run_result rr;

	cr_assert_eq(test_run((char *[]){"/bin/sh", "-c", (char *)script, "sh", (char *)dir, NULL},
			      60, &rr),
		     0);
	cr_assert_eq(rr.status, 0, "openssl: %s", rr.err);
	run_result_free(&rr);
}

/*
 * HTTPS with client certificates: the real pprof fetches with -tls_cert/-tls_key/-tls_ca; a
 * caller without a certificate (nobody), or with one another CA signed, is refused; plain HTTP is
 * not served on that port.
 */
Test(access, tls_client_certificate, .timeout = 240)
{
	struct ta t;
	char url[256], *body, *cmd = NULL;
	size_t n;
	pid_t root_chain;
	struct run_result rr;
	_cleanup_free_ char *ca = NULL, *cc = NULL, *ck = NULL, *ec = NULL, *ek = NULL;

	ta_prepare(&t);
	make_certs(t.dir);
	ca = path_in(t.dir, "ca.crt");
	cc = path_in(t.dir, "client.crt");
	ck = path_in(t.dir, "client.key");
	ec = path_in(t.dir, "evil.crt");
	ek = path_in(t.dir, "evil.key");
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "tls_cert = %s/server.crt\ntls_key = %s/server.key\ntls_client_ca = %s\n",
		   t.dir, t.dir, ca);
	root_chain = ta_chain_as(&t, 0, 0);
	ta_start(&t, true);
	cr_assert(log_has(&t, "listening on https://"), "%s", slurp(t.log, NULL));

	/* The real pprof, with a client certificate. */
	snprintf(url, sizeof(url), "https://%s/debug/pprof/profile?seconds=3", t.addr);
	cr_assert(asprintf(&cmd,
			   "PPROF_TMPDIR='%s' HOME='%s' exec '%s' -raw -tls_cert '%s' -tls_key '%s' "
			   "-tls_ca '%s' '%s'",
			   t.dir, t.dir, test_build_path("pprof"), cc, ck, ca, url) > 0);
	cr_assert_eq(test_run((char *[]){"/bin/sh", "-c", cmd, NULL}, 120, &rr), 0);
	cr_assert_eq(rr.status, 0, "pprof over TLS failed: %s", rr.err);
	cr_expect(strstr(rr.out, "chain_leaf") && strstr(rr.out, "chain_a"),
		  "pprof -raw shows no chain: %.2000s", rr.out);
	run_result_free(&rr);
	free(cmd);
	(void)root_chain;

	/* nobody with the client certificate: the certificate, not the uid, grants access. */
	snprintf(url, sizeof(url), "https://%s/debug/pprof/profile?seconds=1", t.addr);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "c1.out",
			     (char *[]){"--cacert", ca, "--cert", cc, "--key", ck, NULL}, url, &body,
			     &n),
		     200, "body: %s", body);
	cr_expect(is_gzip(body, n));
	free(body);
	/* Without one: refused, no profile. */
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "c2.out", (char *[]){"--cacert", ca, NULL},
			     url, &body, &n),
		     403, "body: %s", body);
	cr_expect(!is_gzip(body, n));
	free(body);
	/* With a certificate of another CA: refused (or the handshake fails: 0). */
	unsigned st = curl_as(&t, NOBODY, NOBODY, "", "c3.out",
			      (char *[]){"--cacert", ca, "--cert", ec, "--key", ek, NULL}, url, &body,
			      &n);
	cr_expect(st == 403 || st == 0, "a foreign CA's certificate got %u", st);
	cr_expect(!is_gzip(body, n));
	free(body);
	/* The server's own certificate (same CA, but for servers) is no client credential. */
	_cleanup_free_ char *sc = path_in(t.dir, "server.crt"), *sk = path_in(t.dir, "server.key");
	st = curl_as(&t, NOBODY, NOBODY, "", "c5.out",
		     (char *[]){"--cacert", ca, "--cert", sc, "--key", sk, NULL}, url, &body, &n);
	cr_expect(st == 403 || st == 0, "a server certificate got %u as a client", st);
	cr_expect(!is_gzip(body, n));
	free(body);
	/* Plain HTTP on the TLS port: no answer with a profile. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1", t.addr);
	st = curl_as(&t, 0, 0, "", "c4.out", NULL, url, &body, &n);
	cr_expect(st != 200 && !is_gzip(body, n), "plain HTTP on the HTTPS port got %u", st);
	free(body);
	ta_stop(&t);
	ta_cleanup(&t);
}

/* The bearer token: right token 200 (even for nobody), wrong or none 403; a world-readable token
 * file is refused at start. */
Test(access, bearer_token, .timeout = 240)
{
	static const char token[] = "0123456789abcdef0123456789abcdef";
	struct ta t;
	char url[256], *body, hdr[128];
	size_t n;
	_cleanup_free_ char *tf = NULL;

	ta_prepare(&t);
	tf = path_in(t.dir, "token");
	write_text(tf, 0600, "%s\n", token);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "metrics_access = privileged\nbearer_token_file = %s\n",
		   tf);
	ta_chain_as(&t, 0, 0);
	ta_start(&t, true);
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1", t.addr);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "t1.out", (char *[]){"-H", hdr, NULL}, url,
			     &body, &n),
		     200, "body: %s", body);
	cr_expect(is_gzip(body, n));
	free(body);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %.31sX", token);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "t2.out", (char *[]){"-H", hdr, NULL}, url,
			     &body, &n),
		     403, "body: %s", body);
	cr_expect(!is_gzip(body, n));
	free(body);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "t3.out", NULL, url, NULL, NULL), 403);
	/* metrics_access = privileged: nobody's /metrics is refused too, the token's is not. */
	snprintf(url, sizeof(url), "http://%s/metrics", t.addr);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "t4.out", NULL, url, NULL, NULL), 403);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "t5.out", (char *[]){"-H", hdr, NULL}, url,
			     NULL, NULL),
		     200);
	ta_stop(&t);

	/* A token file every user can read protects nothing: refused at start. */
	cr_assert_eq(chmod(tf, 0644), 0);
	cr_expect_neq(ta_start(&t, false), 0);
	cr_expect(log_has(&t, "readable by every user"), "%s", slurp(t.log, NULL));
	ta_cleanup(&t);
}

/*
 * A non-loopback listener without client certificates or a token is refused at start, and so is
 * one with a token but without TLS.
 */
Test(access, non_loopback_needs_tls_or_token, .timeout = 120)
{
	struct ta t;
	_cleanup_free_ char *tf = NULL;
	char *log;

	ta_prepare(&t);
	write_text(t.conf, 0644, "listen = 0.0.0.0:0\noutput_dir = \"\"\n");
	cr_expect_neq(ta_start(&t, false), 0);
	log = slurp(t.log, NULL);
	cr_expect(strstr(log, "0.0.0.0:0 is not a loopback address") &&
		      strstr(log, "tls_client_ca") && strstr(log, "bearer_token_file"),
		  "log: %s", log);
	free(log);
	write_text(t.conf, 0644, "listen = 127.0.0.1:0,[::]:0\noutput_dir = \"\"\n");
	cr_expect_neq(ta_start(&t, false), 0);
	log = slurp(t.log, NULL);
	cr_expect(strstr(log, "not a loopback address"), "log: %s", log);
	free(log);

	/* A token over plain HTTP off loopback would cross the network in clear text: refused,
	 * saying to set tls_cert and tls_key. */
	tf = path_in(t.dir, "token");
	write_text(tf, 0600, "fedcba9876543210fedcba9876543210\n");
	write_text(t.conf, 0644, "listen = 0.0.0.0:0\noutput_dir = \"\"\nbearer_token_file = %s\n",
		   tf);
	cr_expect_neq(ta_start(&t, false), 0, "a token over plain HTTP off loopback was accepted");
	log = slurp(t.log, NULL);
	cr_expect(strstr(log, "clear text") && strstr(log, "tls_cert and tls_key"), "log: %s", log);
	free(log);

	/* With TLS as well it starts. */
	make_certs(t.dir);
	write_text(t.conf, 0644,
		   "listen = 0.0.0.0:0\noutput_dir = \"\"\nbearer_token_file = %s\n"
		   "tls_cert = %s/server.crt\ntls_key = %s/server.key\n",
		   tf, t.dir, t.dir);
	ta_start(&t, true);
	ta_stop(&t);
	ta_cleanup(&t);
}

/* ---- limits: quotas, deadlines, what profd creates ------------------------------------------ */

/* A command as uid:gid in the background, its output in `log`; the pid (kill with test_kill). */
static pid_t spawn_logged_as(uid_t uid, gid_t gid, char *const cmd[], const char *log)
{
	char u[32], g[32], *argv[24];
	size_t n = 0;

	snprintf(u, sizeof(u), "--reuid=%u", (unsigned)uid);
	snprintf(g, sizeof(g), "--regid=%u", (unsigned)gid);
	argv[n++] = "/usr/bin/setpriv";
	argv[n++] = u;
	argv[n++] = g;
	argv[n++] = "--clear-groups";
	argv[n++] = "--";
	for (size_t i = 0; cmd[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	return test_spawn_logged(argv, log, NULL);
}

/* One metric (name with its labels, if any) as root reads it over loopback TCP. */
static double root_metric(struct ta *t, const char *name)
{
	char url[128], *m;
	size_t n;
	double v;

	snprintf(url, sizeof(url), "http://%s/metrics", t->addr);
	cr_assert_eq(curl_as(t, 0, 0, "", "metrics.out", NULL, url, &m, &n), 200);
	v = metric_value(m, name);
	free(m);
	return v;
}

/* Poll root_metric until it equals want (up to timeout_s); true when it did. */
static bool wait_metric(struct ta *t, const char *name, double want, int timeout_s)
{
	for (int i = 0; i < timeout_s * 5; i++) {
		if (root_metric(t, name) == want)
			return true;
		usleep(200000);
	}
	return false;
}

static int perf_paranoid(void)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	int v = 3;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &v), 1);
	fclose(f);
	return v;
}

/*
 * Profile quotas (5 slots, 2 per unprivileged user, 2 kept for privileged callers): nobody holds
 * its 2 slots with 300 s requests and its third gets 503 saying why; uid 1 takes the last
 * unprivileged slot and its second request gets 503 too; root's requests still succeed. Then
 * the long requests' clients are killed: the requests are cancelled and the slots free at once
 * (a new request of nobody is served, not after 300 s).
 */
Test(access, profile_quota_and_cancel_on_disconnect, .timeout = 240)
{
	struct ta t;
	char url[256], *body, *log;
	size_t n;
	pid_t longs[3];
	_cleanup_free_ char *sock = NULL, *l0 = NULL, *l1 = NULL, *l2 = NULL;

	cr_assert_leq(perf_paranoid(), 2,
		      "own_processes profiles need kernel.perf_event_paranoid <= 2 for this test");
	ta_prepare(&t);
	sock = path_in(t.dir, "profd.sock");
	l0 = path_in(t.dir, "long0.log");
	l1 = path_in(t.dir, "long1.log");
	l2 = path_in(t.dir, "long2.log");
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "own_processes = yes\nhttp_profiles = 5\nhttp_profiles_per_user = 2\n"
		   "http_profiles_reserved = 2\n",
		   sock);
	ta_chain_as(&t, NOBODY, NOBODY);
	ta_chain_as(&t, 0, 0);
	ta_start(&t, true);

	for (int i = 0; i < 2; i++)
		longs[i] = spawn_logged_as(
		    NOBODY, NOBODY,
		    (char *[]){"/usr/bin/curl", "-sS", "-o", "/dev/null", "--unix-socket", sock,
			       "http://profd/debug/pprof/profile?seconds=300", NULL},
		    i ? l1 : l0);
	cr_assert(wait_metric(&t, "profd_http_active_profiles", 2, 30),
		  "nobody's two long requests never became active: %s", slurp(t.log, NULL));

	/* nobody's third: over its own quota. */
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1", t.addr);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "q1.out", NULL, url, &body, &n), 503,
		     "body: %s", body);
	cr_expect(strstr(body, "this user already has"), "body: %s", body);
	cr_expect(!is_gzip(body, n));
	free(body);
	/* uid 1 takes the last unprivileged slot; then they are all taken. */
	longs[2] =
	    spawn_logged_as(DAEMON_UID, DAEMON_UID,
			    (char *[]){"/usr/bin/curl", "-sS", "-o", "/dev/null", "--unix-socket",
				       sock, "http://profd/debug/pprof/profile?seconds=300", NULL},
			    l2);
	cr_assert(wait_metric(&t, "profd_http_active_profiles", 3, 30),
		  "uid 1's long request never became active: %s", slurp(t.log, NULL));
	cr_expect_eq(curl_as(&t, DAEMON_UID, DAEMON_UID, "", "q2.out", NULL, url, &body, &n), 503,
		     "body: %s", body);
	cr_expect(strstr(body, "open to unprivileged users"), "body: %s", body);
	free(body);
	/* root: a reserved slot, over TCP and over the unix socket. */
	cr_expect_eq(curl_as(&t, 0, 0, "", "q3.out", NULL, url, &body, &n), 200, "body: %s", body);
	cr_expect(is_gzip(body, n));
	free(body);
	cr_expect_eq(curl_as(&t, 0, 0, "", "q4.out", (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/debug/pprof/profile?seconds=1", &body, &n),
		     200, "body: %s", body);
	free(body);
	cr_expect_geq(root_metric(&t, "profd_http_refused_total{reason=\"profile_quota\"}"), 2);

	/* The clients die: their slots come back without waiting for the 300 s. */
	for (int i = 0; i < 3; i++)
		test_kill(longs[i]);
	cr_expect(wait_metric(&t, "profd_http_active_profiles", 0, 20),
		  "the killed clients' requests still hold their slots");
	cr_expect_eq(root_metric(&t, "profd_http_cancelled_profiles_total"), 3);
	cr_expect_eq(curl_as(&t, NOBODY, NOBODY, "", "q5.out",
			     (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/debug/pprof/profile?seconds=1", &body, &n),
		     200, "body: %s", body);
	cr_expect(is_gzip(body, n));
	free(body);
	ta_stop(&t);
	log = slurp(t.log, NULL);
	cr_expect(strstr(log, "refused a profile request of uid 65534"), "log: %s", log);
	free(log);
	ta_cleanup(&t);
}

/* Many connections of nobody, each sending a header line every second, never a whole request. */
static const char loris_py[] = "import socket, sys, time\n"
			       "path, n, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])\n"
			       "ss = []\n"
			       "for i in range(n):\n"
			       "    s = socket.socket(socket.AF_UNIX)\n"
			       "    s.connect(path)\n"
			       "    s.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n')\n"
			       "    ss.append(s)\n"
			       "print('opened', len(ss), flush=True)\n"
			       "t0 = time.time(); k = 0\n"
			       "while time.time() - t0 < dur:\n"
			       "    time.sleep(1); k += 1; alive = 0\n"
			       "    for s in ss:\n"
			       "        try:\n"
			       "            s.sendall(b'X-%d: y\\r\\n' % k); alive += 1\n"
			       "        except OSError:\n"
			       "            pass\n"
			       "    print('alive', alive, flush=True)\n";

/*
 * Slow headers on the world-writable unix socket (own_processes): 40 connections of nobody
 * sending a header line every second. At most http_connections_per_user (8) are admitted, the
 * rest closed at once; those 8 are closed at the header deadline (2 s here) however often they
 * send; root's requests on the same socket are served meanwhile.
 */
Test(access, slow_headers_on_unix_socket, .timeout = 240)
{
	struct ta t;
	char *body, *out, *last;
	size_t n;
	pid_t loris;
	int alive = -1;
	_cleanup_free_ char *sock = NULL, *py = NULL, *ll = NULL;

	ta_prepare(&t);
	sock = path_in(t.dir, "profd.sock");
	py = path_in(t.dir, "loris.py");
	ll = path_in(t.dir, "loris.log");
	write_text(py, 0644, "%s", loris_py);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = \"\"\n"
		   "own_processes = yes\nhttp_header_timeout = 2\n",
		   sock);
	ta_chain_as(&t, 0, 0);
	ta_start(&t, true);
	loris = spawn_logged_as(NOBODY, NOBODY,
				(char *[]){"/usr/bin/python3", py, sock, "40", "10", NULL}, ll);
	for (int i = 0; i < 300; i++) {
		bool opened;

		out = slurp(ll, NULL);
		opened = out && strstr(out, "opened");
		free(out);
		if (opened)
			break;
		usleep(100000);
	}
	/* While the slow connections are open: root is served over the same socket. */
	cr_expect_eq(curl_as(&t, 0, 0, "", "l1.out", (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/metrics", &body, &n),
		     200);
	free(body);
	cr_expect_eq(curl_as(&t, 0, 0, "", "l2.out", (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/debug/pprof/profile?seconds=1", &body, &n),
		     200);
	cr_expect(is_gzip(body, n));
	free(body);
	cr_assert_eq(test_wait(loris, 60), 0, "loris: %s", slurp(ll, NULL));
	out = slurp(ll, NULL);
	cr_assert_not_null(out);
	cr_expect(strstr(out, "opened 40"), "%s", out);
	/* By its end every slow connection was closed, though each sent a line every second. */
	last = strrchr(out, 'a');
	cr_expect(last && sscanf(last, "alive %d", &alive) == 1 && alive == 0, "%s", out);
	free(out);
	cr_expect_geq(root_metric(&t, "profd_http_refused_total{reason=\"connections\"}"), 32);
	cr_expect_geq(root_metric(&t, "profd_http_refused_total{reason=\"header_timeout\"}"), 8);
	cr_expect(log_has(&t, "within 2 s (http_header_timeout)"), "%s", slurp(t.log, NULL));
	cr_expect(log_has(&t, "this caller already has as many connections"), "%s",
		  slurp(t.log, NULL));
	ta_stop(&t);
	ta_cleanup(&t);
}

/* Start with t->conf, expect a refusal whose log holds every needle. */
static void expect_refused(struct ta *t, const char *what, const char *const needles[])
{
	char *log;

	cr_expect_neq(ta_start(t, false), 0, "%s: started", what);
	log = slurp(t->log, NULL);
	for (size_t i = 0; needles[i]; i++)
		cr_expect(log && strstr(log, needles[i]), "%s: no '%s' in: %s", what, needles[i],
			  log);
	free(log);
}

/*
 * output_dir and spool_dir: a symlink, a directory group or others may write, or one another
 * user owns is refused at start with what to do; a fresh one is made 0750.
 */
Test(access, state_dirs_checked, .timeout = 240)
{
	struct ta t;
	struct stat st;
	_cleanup_free_ char *real = NULL, *link = NULL, *fresh = NULL;

	ta_prepare(&t);
	real = path_in(t.dir, "out");
	link = path_in(t.dir, "out-link");
	fresh = path_in(t.dir, "fresh/profiles");
	cr_assert_eq(mkdir(real, 0750), 0);
	cr_assert_eq(symlink(real, link), 0);

	write_text(t.conf, 0644, "listen = \"\"\noutput_dir = %s\n", link);
	expect_refused(&t, "symlink", (const char *const[]){"is a symbolic link", link, NULL});

	cr_assert_eq(chmod(real, 0770), 0);
	write_text(t.conf, 0644, "listen = \"\"\noutput_dir = %s\n", real);
	expect_refused(&t, "group-writable",
		       (const char *const[]){"mode 0770", "chmod go-w", real, NULL});
	cr_assert_eq(chmod(real, 0757), 0);
	expect_refused(&t, "world-writable",
		       (const char *const[]){"mode 0757", "chmod go-w", NULL});

	cr_assert_eq(chmod(real, 0750), 0);
	cr_assert_eq(chown(real, NOBODY, NOBODY), 0);
	expect_refused(&t, "nobody's",
		       (const char *const[]){"belongs to uid 65534", "chown", NULL});

	/* spool_dir the same way (checked when push starts). */
	cr_assert_eq(chown(real, 0, 0), 0);
	cr_assert_eq(chmod(real, 0777), 0);
	write_text(t.conf, 0644,
		   "listen = \"\"\noutput_dir = \"\"\npush_url = http://127.0.0.1:9\n"
		   "spool_dir = %s\n",
		   real);
	expect_refused(&t, "spool_dir", (const char *const[]){"spool_dir", "mode 0777", NULL});

	/* A missing one is created 0750, root's, and the daemon runs. */
	write_text(t.conf, 0644, "listen = \"\"\noutput_dir = %s\n", fresh);
	ta_start(&t, true);
	cr_assert_eq(lstat(fresh, &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0750, "mode %o", st.st_mode & 07777);
	cr_expect_eq(st.st_uid, 0);
	ta_stop(&t);
	ta_cleanup(&t);
}

/*
 * The unix socket: a symlink planted at its path is refused, not followed (its target keeps its
 * mode); a directory other users may write is refused; otherwise the socket appears at its path
 * only by a rename, already with its final mode and group (inotify sees no creation at the path
 * and no change of mode after), made in a private directory that is gone afterwards.
 */
Test(access, unix_socket_created_private, .timeout = 240)
{
	struct ta t;
	struct stat st;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool moved = false, created = false, attrib = false, privdir = false;
	_cleanup_free_ char *sock = NULL, *victim = NULL, *open_dir = NULL, *osock = NULL;
	ssize_t len;
	int in;

	ta_prepare(&t);
	sock = path_in(t.dir, "profd.sock");
	victim = path_in(t.dir, "victim");
	write_text(victim, 0600, "root's\n");
	cr_assert_eq(symlink(victim, sock), 0);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = daemon\n"
		   "own_processes = yes\n",
		   sock);
	expect_refused(&t, "symlink at the socket path",
		       (const char *const[]){"is not a socket (a symbolic link)", NULL});
	cr_assert_eq(stat(victim, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "the symlink's target was chmod'ed: %o",
		     st.st_mode & 07777);
	cr_expect_eq(st.st_gid, 0, "the symlink's target was chown'ed");
	cr_assert_eq(lstat(sock, &st), 0);
	cr_expect(S_ISLNK(st.st_mode));
	cr_assert_eq(unlink(sock), 0);

	/* A directory anyone may write (not sticky): anyone could swap the socket. */
	open_dir = path_in(t.dir, "open");
	osock = path_in(open_dir, "profd.sock");
	cr_assert_eq(mkdir(open_dir, 0777), 0);
	cr_assert_eq(chmod(open_dir, 0777), 0);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = daemon\n",
		   osock);
	expect_refused(
	    &t, "world-writable socket directory",
	    (const char *const[]){"other users could replace the socket", "mode 0777", NULL});

	/* The real thing, watched. */
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	cr_assert_geq(in, 0);
	cr_assert_geq(inotify_add_watch(in, t.dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB), 0);
	write_text(t.conf, 0644,
		   "listen = 127.0.0.1:0,unix:%s\noutput_dir = \"\"\nallow_group = daemon\n", sock);
	ta_start(&t, true);
	while ((len = read(in, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (e->len && !strcmp(e->name, "profd.sock")) {
				moved |= e->mask & IN_MOVED_TO;
				created |= e->mask & IN_CREATE;
				attrib |= e->mask & IN_ATTRIB;
			}
			if (e->len && (e->mask & IN_CREATE) && (e->mask & IN_ISDIR) &&
			    !strncmp(e->name, ".profd-listen.", 14))
				privdir = true;
			p += sizeof(*e) + e->len;
		}
	close(in);
	cr_expect(moved, "the socket did not appear by a rename");
	cr_expect(!created, "the socket was created at its path (bound there)");
	cr_expect(!attrib, "the socket's mode or owner changed after it appeared at its path");
	cr_expect(privdir, "no private directory was used");
	cr_assert_eq(lstat(sock, &st), 0);
	cr_expect(S_ISSOCK(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0660, "socket mode %o", st.st_mode & 07777);
	cr_expect_eq(st.st_gid, DAEMON_UID);
	/* Nothing left of the private directory. */
	_cleanup_free_ char *cmd = NULL;
	struct run_result rr;

	cr_assert(asprintf(&cmd, "ls -a '%s' | grep -c '^.profd-listen' || true", t.dir) > 0);
	cr_assert_eq(test_run((char *[]){"/bin/sh", "-c", cmd, NULL}, 10, &rr), 0);
	cr_expect_eq(atoi(rr.out), 0, "private directory left behind");
	run_result_free(&rr);
	/* And it works: root gets /metrics through it. */
	cr_expect_eq(curl_as(&t, 0, 0, "", "s.out", (char *[]){"--unix-socket", sock, NULL},
			     "http://profd/metrics", NULL, NULL),
		     200);
	ta_stop(&t);
	ta_cleanup(&t);
}
