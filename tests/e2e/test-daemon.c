// SPDX-License-Identifier: MIT
/*
 * `profd daemon` end to end, as root: interval files, the pull endpoint (fetched by the real
 * pprof), /metrics, signals (SIGTERM, SIGHUP), configuration errors, retention, push to a stub
 * Pyroscope receiver with spooling while it is down, and container labels.
 *
 * Each test starts its own daemon with a configuration in a temporary directory, an HTTP port
 * chosen by the kernel (listen = 127.0.0.1:0, read back from the log) and NOTIFY_SOCKET pointing
 * at a datagram socket of the test, so readiness and reloads are observed as systemd would.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <curl/curl.h>

#include "common/macro.h"
#include "pipeline/cgroup.h"
#include "pipeline/session.h"
#include "tests/lib/testlib.h"

static const char *const chain[] = {"chain_leaf", "chain_c", "chain_b", "chain_a", "main"};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, k;

	if (!f)
		return strdup("");
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
	return buf;
}

static void write_text(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "we");
	va_list ap;

	cr_assert_not_null(f, "cannot write %s", path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* ---- a daemon under test ------------------------------------------------------------------ */

struct td {
	pid_t pid;
	char *dir, *conf, *log, *out, *notify_path;
	int notify_fd;
	char addr[64];
};

static void td_prepare(struct td *d)
{
	cr_assert_eq(geteuid(), 0, "end-to-end tests need root");
	memset(d, 0, sizeof(*d));
	d->dir = test_tmpdir();
	cr_assert_not_null(d->dir);
	cr_assert(asprintf(&d->conf, "%s/profd.conf", d->dir) > 0);
	cr_assert(asprintf(&d->log, "%s/profd.log", d->dir) > 0);
	cr_assert(asprintf(&d->out, "%s/out", d->dir) > 0);
	cr_assert(asprintf(&d->notify_path, "%s/notify", d->dir) > 0);
	d->notify_fd = test_notify_socket(d->notify_path);
}

/* Wait for a notification containing `what` (e.g. "READY=1"); false on timeout. */
static bool td_notified(struct td *d, const char *what, double timeout_s)
{
	return test_notified(d->notify_fd, what, timeout_s, 0, NULL) == 1;
}

static void td_start(struct td *d)
{
	char *log, *p, env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];

	/* A failed assertion ends the test process: the daemon dies with it. */
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", d->notify_path);
	d->pid = test_spawn_logged(
	    (char *[]){(char *)test_build_path("profd"), "daemon", "--config", d->conf, NULL}, d->log,
	    (char *[]){env, NULL});
	if (!td_notified(d, "READY=1", 60)) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		log = read_file(d->log);
		cr_assert_fail("daemon did not become ready: %s", log);
	}
	log = read_file(d->log);
	p = strstr(log, "listening on ");
	if (p) {
		p += strlen("listening on ");
		snprintf(d->addr, sizeof(d->addr), "%.*s", (int)strcspn(p, " \n"), p);
		if (d->addr[0] && d->addr[strlen(d->addr) - 1] == '.')
			d->addr[strlen(d->addr) - 1] = '\0';
	}
	free(log);
}

/* SIGTERM and wait: the exit status, or -1 on timeout. */
static int td_stop(struct td *d, int timeout_s)
{
	int r = test_stop(d->pid, timeout_s);

	d->pid = 0;
	return r;
}

static void td_cleanup(struct td *d)
{
	char *cmd = NULL;

	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
	}
	if (d->notify_fd > 0)
		close(d->notify_fd);
	if (d->dir && asprintf(&cmd, "rm -rf '%s'", d->dir) > 0 && system(cmd) != 0)
		cr_log_warn("could not remove %s", d->dir);
	free(cmd);
	free(d->dir);
	free(d->conf);
	free(d->log);
	free(d->out);
	free(d->notify_path);
}

/* Sorted names of interval files (profile-*.pb.gz) in dir; returns the count. */
static size_t list_profiles(const char *dir, char names[][64], size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max)
		if (!strncmp(de->d_name, "profile-", 8) && strstr(de->d_name, ".pb.gz") &&
		    strlen(de->d_name) < 64)
			strcpy(names[n++], de->d_name);
	closedir(d);
	qsort(names, n, 64, (int (*)(const void *, const void *))strcmp);
	return n;
}

static size_t count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/*
 * The daemon's files name every process's functions: dir is 0750 and each file in it starting
 * with prefix is 0640 (at least one). Returns how many files were checked.
 */
static size_t check_modes(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	size_t n = 0;

	cr_assert_not_null(d, "%s", dir);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0750, "%s: mode %o", dir, st.st_mode & 07777);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		cr_assert_eq(fstatat(dirfd(d), de->d_name, &st, 0), 0);
		cr_assert_eq(st.st_mode & 07777, 0640, "%s/%s: mode %o", dir, de->d_name,
			     st.st_mode & 07777);
		n++;
	}
	closedir(d);
	cr_assert_gt(n, 0, "no %s* file in %s", prefix, dir);
	return n;
}

/* ---- HTTP client (libcurl) ---------------------------------------------------------------- */

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;

	b->data = realloc(b->data, b->len + size * n + 1);
	memcpy(b->data + b->len, p, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

static long http(const char *method, const char *url, struct buf *ret)
{
	CURL *c = curl_easy_init();
	struct buf b = {.data = calloc(1, 1)};
	long code = -1;

	cr_assert_not_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (ret)
		*ret = b;
	else
		free(b.data);
	return code;
}

/*
 * `req` written byte for byte to the daemon at addr ("127.0.0.1:PORT"), not through a client
 * that would refuse to send it: the answer's status, or 0 when the connection was closed
 * without one.
 */
static unsigned raw_http(const char *addr, const char *req)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(addr, ':');
	char host[64], buf[1024];
	unsigned status = 0;
	size_t n = 0;
	ssize_t k;
	int fd;

	cr_assert_not_null(colon, "%s", addr);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	cr_assert_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1, "%s", addr);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		cr_assert_eq(poll(&pfd, 1, 30000), 1, "no answer to %s", req);
		k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0 || (n += (size_t)k) == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %u", &status) != 1)
		status = 0;
	return status;
}

static char *get_metrics(struct td *d)
{
	char url[128];
	struct buf b;

	snprintf(url, sizeof(url), "http://%s/metrics", d->addr);
	cr_assert_eq(http("GET", url, &b), 200, "GET /metrics failed");
	return b.data;
}

/* Value of a metric line "name value" or "name{labels} value" (exact match); -1 if absent. */
static double metric_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

/* Every non-comment line must be `name{labels} value` in the Prometheus text format. */
static void check_metrics_syntax(const char *text)
{
	size_t lines = 0;

	for (const char *l = text; *l;) {
		const char *eol = strchr(l, '\n'), *p = l;
		char *end;

		cr_assert_not_null(eol, "metrics text does not end with a newline");
		if (*l == '#') {
			cr_assert(!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7),
				  "bad comment: %.*s", (int)(eol - l), l);
			l = eol + 1;
			continue;
		}
		cr_assert(isalpha((unsigned char)*p) || *p == '_' || *p == ':', "bad name: %.*s",
			  (int)(eol - l), l);
		while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
			p++;
		if (*p == '{') {
			for (p++; *p != '}';) {
				cr_assert(isalpha((unsigned char)*p) || *p == '_',
					  "bad label: %.*s", (int)(eol - l), l);
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				cr_assert(p[0] == '=' && p[1] == '"', "bad label: %.*s",
					  (int)(eol - l), l);
				for (p += 2; *p != '"'; p++) {
					cr_assert(p < eol, "unterminated label value: %.*s",
						  (int)(eol - l), l);
					if (*p == '\\')
						p++;
				}
				p++;
				if (*p == ',')
					p++;
			}
			p++;
		}
		cr_assert_eq(*p, ' ', "no value: %.*s", (int)(eol - l), l);
		strtod(p + 1, &end);
		cr_assert(end > p + 1 && end == eol, "bad value: %.*s", (int)(eol - l), l);
		lines++;
		l = eol + 1;
	}
	cr_assert_gt(lines, 20);
}

/* ---- workloads ---------------------------------------------------------------------------- */

/*
 * The load a test asserts on is its own: a busy chain workload that lives until the test
 * stops it (or the test process ends), however long a loaded machine makes the test take.
 */
static pid_t start_chain(void)
{
	char *const wl[] = {(char *)test_build_path("workloads/chain"), "3600", NULL};
	pid_t pid = test_spawn(wl);

	cr_assert_gt(pid, 0);
	return pid;
}

static void stop_pid(pid_t pid)
{
	test_kill(pid);
}

static uint64_t profile_samples(const Perftools__Profiles__Profile *p)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->n_sample; i++)
		n += p->sample[i]->value[0];
	return n;
}

/* GET a profile of `seconds` of process `pid` from the daemon, keep it as DIR/NAME, load it. */
static Perftools__Profiles__Profile *pull_profile(struct td *d, unsigned seconds, pid_t pid,
						 const char *name, char *path, size_t path_size)
{
	char url[256];
	struct buf b;
	FILE *f;
	Perftools__Profiles__Profile *p;

	/* pid 0: the whole host. */
	if (pid)
		snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=%u&pid=%d",
			 d->addr, seconds, pid);
	else
		snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=%u", d->addr,
			 seconds);
	cr_assert_eq(http("GET", url, &b), 200, "GET %s", url);
	snprintf(path, path_size, "%s/%s", d->dir, name);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b.data, 1, b.len, f), b.len);
	cr_assert_eq(fclose(f), 0);
	free(b.data);
	p = test_pprof_load(path);
	cr_assert_not_null(p, "cannot decode %s", path);
	return p;
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(daemon, config_errors)
{
	char dir_tmpl[] = "/tmp/profd-test-XXXXXX", *dir = mkdtemp(dir_tmpl), path[256];
	struct run_result rr;

	cr_assert_not_null(dir);
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	write_text(path,
		   "# a comment\nfrequency = 99x\nbogus = 1\ninterval = 5m  # trailing comment\n"
		   "listen = 127.0.0.1\nlog_level = loud\n");
	char *const bad[] = {(char *)test_build_path("profd"), "daemon", "--config", path, NULL};
	cr_assert_eq(test_run(bad, 30, &rr), 0);
	cr_assert_neq(rr.status, 0);
	cr_assert(
	    strstr(rr.err, "bad.conf:2: frequency: '99x' is not a number (expected 1..10000)"),
	    "%s", rr.err);
	cr_assert(strstr(rr.err, "bad.conf:3: unknown key 'bogus' (known keys: frequency"), "%s",
		  rr.err);
	cr_assert(strstr(rr.err, "bad.conf:5: listen: expected"), "%s", rr.err);
	cr_assert(strstr(rr.err, "bad.conf:6: log_level: 'loud' is not a log level"), "%s", rr.err);
	cr_assert_null(strstr(rr.err, "bad.conf:4:"), "a valid line was refused: %s", rr.err);
	run_result_free(&rr);

	/* Command-line flags are checked the same way. */
	char *const flag[] = {(char *)test_build_path("profd"),
			      "daemon",
			      "--config",
			      "/dev/null",
			      "--retention-bytes",
			      "12X",
			      NULL};
	cr_assert_eq(test_run(flag, 30, &rr), 0);
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "--retention_bytes: '12X' is not a size") ||
		      strstr(rr.err, "--retention-bytes"),
		  "%s", rr.err);
	run_result_free(&rr);

	/* A good file plus flags: --check-config prints the result and exits 0. */
	write_text(path, "frequency = 49\npush_labels = \"env=ci,region=eu-1\"\n");
	char *const ok[] = {(char *)test_build_path("profd"),
			    "daemon",
			    "--config",
			    path,
			    "--interval",
			    "2m",
			    "--check-config",
			    NULL};
	cr_assert_eq(test_run(ok, 30, &rr), 0);
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	cr_assert(strstr(rr.out, "frequency = 49\n") && strstr(rr.out, "interval = 120\n") &&
		      strstr(rr.out, "push_labels = env=ci,region=eu-1\n"),
		  "%s", rr.out);
	run_result_free(&rr);

	/* An explicitly named file must exist. */
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	char *const missing[] = {(char *)test_build_path("profd"), "daemon", "--config", path,
				 NULL};
	cr_assert_eq(test_run(missing, 30, &rr), 0);
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "missing.conf: No such file"), "%s", rr.err);
	run_result_free(&rr);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	cr_assert_eq(system(path), 0);
}

/*
 * Root without the capabilities sampling needs (the bounding set emptied before exec, or
 * holding CAP_BPF only): a message naming the missing one, a non-zero exit, and nothing
 * created, before any interval could be expected.
 */
Test(daemon, unprivileged_fails_clearly)
{
	static const struct {
		const char *bounding, *missing;
	} cases[] = {
		{"-all", "CAP_BPF"},
		{"-all,+bpf", "CAP_PERFMON"},
	};
	char dir_tmpl[] = "/tmp/profd-test-XXXXXX", *dir = mkdtemp(dir_tmpl), out[256], conf[256];
	struct run_result rr;
	struct stat st;

	cr_assert_eq(geteuid(), 0, "end-to-end tests need root");
	cr_assert_not_null(dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(conf, sizeof(conf), "%s/profd.conf", dir);
	write_text(conf, "interval = 1\noutput_dir = %s\nlisten = \"\"\n", out);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char bset[64];

		snprintf(bset, sizeof(bset), "--bounding-set=%s", cases[i].bounding);
		char *const argv[] = {"/usr/bin/setpriv", bset, "--inh-caps=-all",
				      (char *)test_build_path("profd"), "daemon", "--config", conf,
				      NULL};
		cr_assert_eq(test_run(argv, 30, &rr), 0);
		cr_assert_neq(rr.status, 0, "%s: the daemon started: %s", cases[i].bounding,
			      rr.err);
		cr_assert(strstr(rr.err, "Missing capability") && strstr(rr.err, cases[i].missing),
			  "%s: the message does not name %s: %s", cases[i].bounding,
			  cases[i].missing, rr.err);
		cr_assert_neq(stat(out, &st), 0, "%s: the output directory was created",
			      cases[i].bounding);
		run_result_free(&rr);
	}
	snprintf(out, sizeof(out), "rm -rf '%s'", dir);
	cr_assert_eq(system(out), 0);
}

Test(daemon, cgroup_container_id)
{
	static const char id[] = "4c5e0c9d1b0e6f9f2f1d4e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c";
	char out[80];

	cr_assert_eq(
	    cgroup_parse_container_id("0::/system.slice/docker-4c5e0c9d1b0e6f9f2f1d4e8a7b6c5"
				      "d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c.scope\n",
				      out, sizeof(out)),
	    1);
	cr_assert_str_eq(out, id);
	cr_assert_eq(
	    cgroup_parse_container_id("12:pids:/docker/4c5e0c9d1b0e6f9f2f1d4e8a7b6c5d4e3f2a1b"
				      "0c9d8e7f6a5b4c3d2e1f0a9b8c\n0::/\n",
				      out, sizeof(out)),
	    1);
	cr_assert_str_eq(out, id);
	cr_assert_eq(
	    cgroup_parse_container_id("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-"
				      "besteffort-pod1234.slice/cri-containerd-4c5e0c9d1b0e6f"
				      "9f2f1d4e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c.scope"
				      "\n",
				      out, sizeof(out)),
	    1);
	cr_assert_str_eq(out, id);
	/* Not containers: the host, a user session, a 32-digit id, upper case. */
	cr_assert_eq(cgroup_parse_container_id("0::/\n", out, sizeof(out)), 0);
	cr_assert_eq(cgroup_parse_container_id("0::/user.slice/user-1000.slice/session-2.scope\n",
					       out, sizeof(out)),
		     0);
	cr_assert_eq(
	    cgroup_parse_container_id("4:memory:/process_api/b6efe9ef875287d5201a9ced06fd2407\n",
				      out, sizeof(out)),
	    0);
	cr_assert_eq(
	    cgroup_parse_container_id("0::/docker/4C5E0C9D1B0E6F9F2F1D4E8A7B6C5D4E3F2A1B0C9D8E7"
				      "F6A5B4C3D2E1F0A9B8C\n",
				      out, sizeof(out)),
	    0);
}

/* Interval files with the workload's chain; SIGTERM writes the partial interval and exits 0. */
Test(daemon, intervals_and_sigterm, .timeout = 180)
{
	char names[64][64], path[512];
	struct td d;
	size_t n, before;
	pid_t wpid;
	double end;

	td_prepare(&d);
	write_text(d.conf,
		   "interval = 2\noutput_dir = %s\nlisten = 127.0.0.1:0\nlog_level = info\n",
		   d.out);
	/* Busy before the daemon starts: every interval file covers the workload whole. */
	wpid = start_chain();
	td_start(&d);
	/* The first file's interval began with the daemon's start-up: the second is checked. */
	end = now_s() + 60;
	while ((n = list_profiles(d.out, names, 64)) < 3 && now_s() < end)
		usleep(100000);
	cr_assert_geq(n, 3, "interval files did not appear (%zu)", n);
	check_modes(d.out, "profile-");
	for (size_t i = 0; i < n; i++) {
		unsigned y, mo, da, h, mi, s;
		char z;

		cr_assert_eq(sscanf(names[i], "profile-%4u%2u%2uT%2u%2u%2u%c.pb.gz", &y, &mo, &da,
				    &h, &mi, &s, &z),
			     7, "bad name %s", names[i]);
		cr_assert_eq(z, 'Z');
	}
	snprintf(path, sizeof(path), "%s/%s", d.out, names[1]);
	Perftools__Profiles__Profile *p = test_pprof_load(path);
	cr_assert_not_null(p, "%s does not load", path);
	uint64_t total;
	double frac = test_chain_fraction(p, wpid, chain, 5, &total);
	cr_assert_geq(total, 10, "only %lu samples of the workload in %s", (unsigned long)total,
		      path);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	cr_assert_eq(p->period, 1000000000 / 99);
	cr_assert(p->duration_nanos > 1500000000ll && p->duration_nanos < 4000000000ll);
	test_pprof_free(p);

	/* The real pprof reads the files too. */
	int st;
	char *top = test_pprof_tool("-top", path, &st);
	cr_assert_eq(st, 0, "%s", top);
	cr_assert(strstr(top, "chain_leaf"), "%s", top);
	free(top);

	/*
	 * SIGTERM right after an interval file appeared, as far as can be from the next boundary:
	 * a regular interval written between the count and the signal would pass for the final one.
	 */
	before = list_profiles(d.out, names, 64);
	end = now_s() + 60;
	while ((n = list_profiles(d.out, names, 64)) == before && now_s() < end)
		usleep(10000);
	cr_assert_gt(n, before, "no new interval file within 60 s");
	before = n;
	cr_assert_eq(td_stop(&d, 60), 0, "daemon did not exit 0: %s", read_file(d.log));
	cr_assert(td_notified(&d, "STOPPING=1", 1), "no STOPPING=1");
	n = list_profiles(d.out, names, 64);
	cr_assert_eq(n, before + 1, "no final partial interval (%zu files, %zu before)", n, before);
	snprintf(path, sizeof(path), "%s/%s", d.out, names[n - 1]);
	p = test_pprof_load(path);
	cr_assert_not_null(p);
	cr_assert_lt(p->duration_nanos, 2500000000ll);
	test_pprof_free(p);
	cr_assert_eq(count_files(d.out, "."), 2, "temp files left in %s", d.out); /* . and .. */
	stop_pid(wpid);
	td_cleanup(&d);
}

/* format = speedscope: interval files speedscope's own importer reads, named alike. */
Test(daemon, intervals_as_speedscope, .timeout = 180)
{
	char path[1024], *cmd = NULL, *out;
	struct td d;
	size_t n = 0;
	pid_t wpid;
	double end;
	DIR *dir;
	struct dirent *de;
	char first[256] = "", second[256] = "";

	td_prepare(&d);
	write_text(d.conf,
		   "interval = 1\noutput_dir = %s\nlisten = \"\"\nformat = speedscope\n"
		   "demangle = full\n",
		   d.out);
	wpid = start_chain();
	td_start(&d);
	end = now_s() + 60;
	while (n < 2 && now_s() < end) {
		usleep(100000);
		n = 0;
		dir = opendir(d.out);
		cr_assert_not_null(dir);
		while ((de = readdir(dir)))
			if (!strncmp(de->d_name, "profile-", 8) &&
			    strstr(de->d_name, ".speedscope.json") && strlen(de->d_name) < 256) {
				if (!first[0] || strcmp(de->d_name, first) < 0) {
					strcpy(second, first);
					strcpy(first, de->d_name);
				} else if (!second[0] || strcmp(de->d_name, second) < 0) {
					strcpy(second, de->d_name);
				}
				n++;
			}
		closedir(dir);
	}
	cr_assert_geq(n, 2, "no speedscope interval files: %s", read_file(d.log));
	cr_assert_eq(count_files(d.out, "profile-"), n, "files of another format were written");
	check_modes(d.out, "profile-");
	cr_assert_eq(td_stop(&d, 60), 0, "%s", read_file(d.log));
	stop_pid(wpid);

	/* The second file covers a whole interval of the busy workload. */
	snprintf(path, sizeof(path), "%s/%s", d.out, second);
	cr_assert(asprintf(&cmd, "node '%s' '%s' '%s' 2>&1", test_build_path("speedscope-check.js"),
			   test_build_path("node/node_modules/speedscope/dist/release"), path) > 0);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	out = calloc(1, 1 << 20);
	cr_assert_not_null(out);
	fread(out, 1, (1 << 20) - 1, f);
	cr_assert_eq(pclose(f), 0, "speedscope's importer refused %s:\n%s", path, out);
	cr_assert(strstr(out, "\tnanoseconds\tchain pid "), "%s", out);
	cr_assert(strstr(out, "\tchain_leaf\t"), "%s", out);
	free(out);
	free(cmd);
	td_cleanup(&d);
}

/* /debug/pprof/profile fetched by the real pprof, ?pid=, and the error answers. */
Test(daemon, pull_and_metrics, .timeout = 180)
{
	char url[256], cmd[1024], path[512];
	struct td d;
	pid_t wpid;

	td_prepare(&d);
	write_text(d.conf, "interval = 60\noutput_dir = %s\nlisten = 127.0.0.1:0\n", d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	wpid = start_chain();

	/* As Parca or `go tool pprof` would pull it. */
	snprintf(cmd, sizeof(cmd),
		 "PPROF_TMPDIR='%s' '%s' -raw 'http://%s/debug/pprof/profile?seconds=2' 2>&1",
		 d.dir, test_build_path("pprof"), d.addr);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	char *raw = calloc(1, 1 << 22);
	size_t n = fread(raw, 1, (1 << 22) - 1, f);
	int st = pclose(f);
	raw[n] = '\0';
	cr_assert_eq(WEXITSTATUS(st), 0, "pprof failed: %s", raw);
	cr_assert(strstr(raw, "PeriodType: cpu nanoseconds"), "%s", raw);
	cr_assert(strstr(raw, "chain_leaf") && strstr(raw, "chain_a"), "%s", raw);
	free(raw);

	/* One process only. */
	Perftools__Profiles__Profile *p = pull_profile(&d, 2, wpid, "pid.pb.gz", path, sizeof(path));
	uint64_t total;
	double frac = test_chain_fraction(p, wpid, chain, 5, &total);
	cr_assert_geq(total, 5);
	cr_assert_eq(total, profile_samples(p), "samples of other processes with ?pid=");
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);

	/* Errors. */
	snprintf(url, sizeof(url), "http://%s/nope", d.addr);
	cr_assert_eq(http("GET", url, NULL), 404);
	snprintf(url, sizeof(url), "http://%s/metrics", d.addr);
	cr_assert_eq(http("POST", url, NULL), 405);
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile", d.addr);
	cr_assert_eq(http("DELETE", url, NULL), 405);
	static const char *const bad[] = {"seconds=0",	"seconds=301",	     "seconds=x",
					  "seconds=-1", "seconds=2&pid=abc", "seconds=2&pid=0"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?%s", d.addr, bad[i]);
		cr_assert_eq(http("GET", url, NULL), 400, "%s", bad[i]);
	}
	snprintf(url, sizeof(url), "http://%s/debug/pprof/profile?seconds=1&pid=999999999", d.addr);
	cr_assert_eq(http("GET", url, NULL), 404);
	/* Malformed requests as raw bytes: 4xx, or closed unanswered; the daemon keeps serving. */
	static const struct {
		const char *req;
		unsigned status;
	} malformed[] = {
	    {"GET /debug/pprof/profile?seconds=1&seconds=2 HTTP/1.1\r\nHost: x\r\n"
	     "Connection: close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?seconds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?seconds=18446744073709551617 HTTP/1.1\r\nHost: x\r\n"
	     "Connection: close\r\n\r\n",
	     400},
	    {"GET /metrics\r\n\r\n", 400},
	    {"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400},
	    {"\x16\x03\x01 garbage HTTP/1.1\r\n\r\n", 405},
	    {"GARBAGE\r\n\r\n", 0}, /* no blank: libmicrohttpd just closes */
	};
	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++)
		cr_assert_eq(raw_http(d.addr, malformed[i].req), malformed[i].status, "%s",
			     malformed[i].req);
	cr_assert_eq(
	    raw_http(d.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 200);

	/*
	 * Metrics: syntax, and the numbers that matter. The snapshot is refreshed twice a second,
	 * when the daemon gets the CPU: wait until it counts the requests above.
	 */
	char *m;
	double end = now_s() + 60;

	for (;;) {
		m = get_metrics(&d);
		if ((metric_value(m, "profd_http_profile_requests_total") >= 2 &&
		     metric_value(m, "profd_http_client_errors_total") >= 9) ||
		    now_s() > end)
			break;
		free(m);
		usleep(100000);
	}
	check_metrics_syntax(m);
	cr_assert_gt(metric_value(m, "profd_samples_total"), 0, "%s", m);
	cr_assert_geq(metric_value(m, "profd_lost_samples_total"), 0, "%s", m);
	cr_assert_geq(metric_value(m, "profd_unwind_stops_total{reason=\"end\"}"), 1, "%s", m);
	cr_assert_gt(metric_value(m, "profd_processes"), 0, "%s", m);
	cr_assert_gt(metric_value(m, "profd_unwind_cache_entries"), 0, "%s", m);
	cr_assert_gt(metric_value(m, "process_resident_memory_bytes"), 1e6, "%s", m);
	cr_assert_gt(metric_value(m, "process_cpu_seconds_total"), 0, "%s", m);
	cr_assert_eq(metric_value(m, "profd_sampling_frequency_hertz"), 99, "%s", m);
	/* Bytes copied per sample: a mean and a p99 can be had, within the cap. */
	cr_assert_gt(metric_value(m, "profd_stack_copies_total"), 0, "%s", m);
	cr_assert_gt(metric_value(m, "profd_stack_copy_bytes_total"), 0, "%s", m);
	cr_assert_gt(metric_value(m, "profd_stack_copy_p99_bytes"), 0, "%s", m);
	cr_assert_leq(metric_value(m, "profd_stack_copy_p99_bytes"), 32768, "%s", m);
	cr_assert_geq(metric_value(m, "profd_stack_copy_cut_total"), 0, "%s", m);
	cr_assert_geq(metric_value(m, "profd_http_profile_requests_total"), 2, "%s", m);
	cr_assert_geq(metric_value(m, "profd_http_client_errors_total"), 9, "%s", m);
	free(m);

	cr_assert_eq(td_stop(&d, 60), 0, "%s", read_file(d.log));
	stop_pid(wpid);
	td_cleanup(&d);
}

/* With off_cpu = yes, pulled profiles carry off-CPU waits as a third sample type. */
Test(daemon, off_cpu_waits, .timeout = 180)
{
	static const char *const sleep_chain[] = {"off_sleep_b", "off_sleep_a", "sleeper"};
	char path[512], *metrics;
	const char *names[4096];
	struct td d;
	pid_t wpid;
	int64_t waited = 0;

	td_prepare(&d);
	write_text(d.conf, "interval = 60\noutput_dir = %s\nlisten = 127.0.0.1:0\noff_cpu = yes\n",
		   d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	double born = now_s(), life;
	wpid = test_spawn((char *[]){(char *)test_build_path("workloads/offcpu"), "60", NULL});
	cr_assert_gt(wpid, 0);

	Perftools__Profiles__Profile *p = pull_profile(&d, 3, wpid, "off.pb.gz", path, sizeof(path));
	life = now_s() - born;
	cr_assert_eq(p->n_sample_type, 3);
	cr_assert_str_eq(p->string_table[p->sample_type[2]->type], "off_cpu");
	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_functions(p, p->sample[i], names, 4096);

		for (size_t k = 0; k + 3 <= n; k++)
			if (!strcmp(names[k], sleep_chain[0]) && !strcmp(names[k + 1], sleep_chain[1]) &&
			    !strcmp(names[k + 2], sleep_chain[2])) {
				waited += p->sample[i]->value[2];
				break;
			}
	}
	/*
	 * A 3-s pull of a sleeper that sleeps nearly all the time (20 ms at a time). The pull's
	 * window is the daemon's: when it is behind (a loaded machine, a sanitizer build), the
	 * window holds the ring's backlog too, so more than 3 s can be counted. Never more than
	 * the sleeper has lived, though: its own life, measured here, is the bound.
	 */
	cr_assert(waited > 2.0e9 && waited <= (life + 0.05) * 1e9,
		  "sleeper waited %.3f s in the profile, of its %.3f s alive", waited / 1e9, life);
	test_pprof_free(p);
	free(test_check_with_pprof(path));
	metrics = get_metrics(&d);
	cr_assert_gt(metric_value(metrics, "profd_off_cpu_waits_total"), 0, "%s", metrics);
	free(metrics);
	stop_pid(wpid);
	cr_assert_eq(td_stop(&d, 30), 0);
	td_cleanup(&d);
}

/* The daemon shows the Python functions of a CPython process it had never seen before. */
Test(daemon, python_frames, .timeout = 180)
{
	static const char script[] = "import os, sys, time; os.write(1, b\"%d\\n\" % os.getpid())\n"
				     "def dmn_leaf():\n"
				     "    s = 0\n"
				     "    for i in range(5000):\n"
				     "        s += i\n"
				     "    return s\n"
				     "def dmn_loop(end):\n"
				     "    while time.monotonic() < end:\n"
				     "        dmn_leaf()\n"
				     "dmn_loop(time.monotonic() + 120)\n";
	static const char *const py_chain[] = {"dmn_leaf", "dmn_loop", "<module>"};
	char path[512], *metrics;
	struct td d;
	pid_t wpid;

	td_prepare(&d);
	snprintf(path, sizeof(path), "%s/dmn.py", d.dir);
	write_text(path, "%s", script);
	write_text(d.conf, "interval = 60\noutput_dir = %s\nlisten = 127.0.0.1:0\n", d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	wpid = test_spawn((char *[]){"/usr/bin/python3.11", path, NULL});
	cr_assert_gt(wpid, 0);
	cr_assert(test_wait_cpu(wpid, 0.3, 30), "the script did not run");

	Perftools__Profiles__Profile *p = pull_profile(&d, 3, wpid, "py.pb.gz", path, sizeof(path));
	uint64_t total;
	double frac = test_chain_fraction(p, wpid, py_chain, 3, &total);
	cr_assert_geq(total, 50, "samples of the script: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "dmn_leaf→dmn_loop→<module> in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);
	free(test_check_with_pprof(path));

	metrics = get_metrics(&d);
	cr_assert_gt(metric_value(metrics, "profd_python_frames_total"), 0, "%s", metrics);
	cr_assert_gt(metric_value(metrics, "profd_python_samples_total"), 0, "%s", metrics);
	free(metrics);
	stop_pid(wpid);
	cr_assert_eq(td_stop(&d, 30), 0);
	td_cleanup(&d);
}

/* SIGHUP: a new frequency applies without losing samples; a bad file keeps the old config. */
Test(daemon, reload, .timeout = 180)
{
	char names[16][64], path[512];
	struct td d;
	pid_t wpid;
	char *m, *log;
	uint64_t in_files = 0;
	double samples;
	size_t n;

	td_prepare(&d);
	/* An interval far longer than the test: the only files are those the reload writes. */
	write_text(d.conf, "interval = 3600\noutput_dir = %s\nlisten = 127.0.0.1:0\n", d.out);
	td_start(&d);
	wpid = start_chain();
	usleep(1000000);
	m = get_metrics(&d);
	cr_assert_eq(metric_value(m, "profd_sampling_frequency_hertz"), 99, "%s", m);
	free(m);

	write_text(d.conf,
		   "interval = 3600\noutput_dir = %s\nlisten = 127.0.0.1:0\nfrequency = 199\n",
		   d.out);
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "RELOADING=1", 60), "no RELOADING=1");
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the reload");
	m = get_metrics(&d);
	cr_assert_eq(metric_value(m, "profd_sampling_frequency_hertz"), 199, "%s", m);
	cr_assert_eq(metric_value(m, "profd_config_reloads_total"), 1, "%s", m);
	free(m);
	/* The samples at 99 Hz were written out as their own profile. */
	cr_assert_eq(list_profiles(d.out, names, 16), 1);

	/* A broken file: logged with its line, the daemon keeps running with 199 Hz. */
	write_text(d.conf, "frequency = 5 Hz\n");
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "RELOADING=1", 60), "no RELOADING=1");
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the failed reload");
	cr_assert_eq(kill(d.pid, 0), 0, "daemon died on a bad reload");
	m = get_metrics(&d);
	cr_assert_eq(metric_value(m, "profd_sampling_frequency_hertz"), 199, "%s", m);
	cr_assert_eq(metric_value(m, "profd_config_reload_failures_total"), 1, "%s", m);
	free(m);
	log = read_file(d.log);
	cr_assert(strstr(log, "profd.conf:1: frequency: '5 Hz' is not a number"), "%s", log);
	cr_assert(strstr(log, "keeping the previous one"), "%s", log);
	free(log);

	usleep(1000000);
	m = get_metrics(&d);
	samples = metric_value(m, "profd_samples_total");
	free(m);
	cr_assert_eq(td_stop(&d, 60), 0, "%s", read_file(d.log));
	n = list_profiles(d.out, names, 16);
	cr_assert_eq(n, 2, "expected the 99 Hz part and the 199 Hz part");
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", d.out, names[i]);
		Perftools__Profiles__Profile *p = test_pprof_load(path);
		cr_assert_not_null(p);
		cr_assert_eq(p->period, i == 0 ? 1000000000 / 99 : 1000000000 / 199);
		in_files += profile_samples(p);
		test_pprof_free(p);
	}
	/* Every sample counted before the stop is in a file (more came after the count). */
	cr_assert_geq(in_files, samples, "%lu samples in files, %.0f counted",
		      (unsigned long)in_files, samples);
	stop_pid(wpid);
	td_cleanup(&d);
}

/* Nanoseconds the profile gives the sleeper's off_sleep_b → off_sleep_a → sleeper chain. */
static int64_t sleeper_waited(const Perftools__Profiles__Profile *p)
{
	static const char *const sleep_chain[] = {"off_sleep_b", "off_sleep_a", "sleeper"};
	const char *names[4096];
	int64_t waited = 0;

	if (p->n_sample_type < 3)
		return 0;
	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_functions(p, p->sample[i], names, 4096);

		for (size_t k = 0; k + 3 <= n; k++)
			if (!strcmp(names[k], sleep_chain[0]) && !strcmp(names[k + 1], sleep_chain[1]) &&
			    !strcmp(names[k + 2], sleep_chain[2])) {
				waited += p->sample[i]->value[2];
				break;
			}
	}
	return waited;
}

/* Samples of pid whose stack names fn. */
static uint64_t samples_naming(const Perftools__Profiles__Profile *p, pid_t pid, const char *fn)
{
	const char *names[4096];
	uint64_t n = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		size_t k = test_sample_functions(p, p->sample[i], names, 4096);

		if (test_sample_label_num(p, p->sample[i], "pid") != pid)
			continue;
		for (size_t j = 0; j < k; j++)
			if (!strcmp(names[j], fn)) {
				n += p->sample[i]->value[0];
				break;
			}
	}
	return n;
}

/*
 * SIGHUP applies every key that shapes the capture, both ways, and profiles describe what is
 * recorded: off_cpu (a profile declares off_cpu only with waits in it, matching the sleeper's
 * own 20 ms sleeps), off_cpu_min_us (over the sleeper's waits: none recorded), python (the
 * script's functions appear and go), stack_bytes (/metrics).
 */
Test(daemon, reload_applies_capture_keys, .timeout = 240)
{
	static const char script[] = "import os, sys, time; os.write(1, b\"%d\\n\" % os.getpid())\n"
				     "def rld_leaf():\n"
				     "    s = 0\n"
				     "    for i in range(5000):\n"
				     "        s += i\n"
				     "    return s\n"
				     "def rld_loop(end):\n"
				     "    while time.monotonic() < end:\n"
				     "        rld_leaf()\n"
				     "rld_loop(time.monotonic() + 600)\n";
	static const char base[] = "interval = 3600\noutput_dir = %s\nlisten = 127.0.0.1:0\n";
	char path[512], conf[1024], *m, *log;
	Perftools__Profiles__Profile *p;
	pid_t sleeper, py;
	struct td d;
	int64_t waited;
	uint64_t with_py, py_samples;

	td_prepare(&d);
	snprintf(path, sizeof(path), "%s/rld.py", d.dir);
	write_text(path, "%s", script);
	write_text(d.conf, base, d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	sleeper = test_spawn((char *[]){(char *)test_build_path("workloads/offcpu"), "600", NULL});
	cr_assert_gt(sleeper, 0);
	py = test_spawn((char *[]){"/usr/bin/python3.11", path, NULL});
	cr_assert_gt(py, 0);
	cr_assert(test_wait_cpu(py, 0.3, 30), "the script did not run");

	/* Off by default, python on: no off_cpu type, the script's functions there. */
	p = pull_profile(&d, 2, 0, "r0.pb.gz", path, sizeof(path));
	cr_assert_eq(p->n_sample_type, 2, "off_cpu declared while not recorded");
	py_samples = samples_naming(p, py, "rld_leaf");
	cr_assert_gt(py_samples, 20, "python = yes shows no Python function");
	test_pprof_free(p);

	/* On: off_cpu = yes, python = no, another stack_bytes. */
	snprintf(conf, sizeof(conf), "%soff_cpu = yes\npython = no\nstack_bytes = 16384\n", base);
	write_text(d.conf, conf, d.out);
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the reload");
	p = pull_profile(&d, 3, 0, "r1.pb.gz", path, sizeof(path));
	cr_assert_eq(p->n_sample_type, 3, "off_cpu = yes applied but not declared");
	waited = sleeper_waited(p);
	/* 3 s of 20 ms sleeps (the workload's own count); the window is not exactly 3 s. */
	cr_assert(waited > 2.0e9 && waited < 4.0e9, "after off_cpu = yes the sleeper waited %.3f s",
		  waited / 1e9);
	with_py = samples_naming(p, py, "rld_leaf");
	cr_assert_eq(with_py, 0, "python = no applied, yet %lu samples name rld_leaf",
		     (unsigned long)with_py);
	cr_assert_gt(samples_naming(p, py, "_PyEval_EvalFrameDefault"), 20,
		     "the script's native frames are missing");
	free(test_check_with_pprof(path));
	test_pprof_free(p);
	m = get_metrics(&d);
	cr_assert_eq(metric_value(m, "profd_stack_bytes"), 16384, "%s", m);
	free(m);

	/* A threshold above each 20 ms sleep: waits are still declared, none recorded. */
	snprintf(conf, sizeof(conf), "%soff_cpu = yes\noff_cpu_min_us = 500000\n", base);
	write_text(d.conf, conf, d.out);
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the reload");
	p = pull_profile(&d, 2, 0, "r2.pb.gz", path, sizeof(path));
	cr_assert_eq(p->n_sample_type, 3);
	waited = sleeper_waited(p);
	cr_assert_eq(waited, 0, "off_cpu_min_us = 500000 applied, yet 20 ms sleeps recorded: %.3f s",
		     waited / 1e9);
	cr_assert_gt(samples_naming(p, py, "rld_leaf"), 20, "python = yes again shows nothing");
	test_pprof_free(p);

	/* Off again: no off_cpu type. */
	write_text(d.conf, base, d.out);
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the reload");
	p = pull_profile(&d, 2, 0, "r3.pb.gz", path, sizeof(path));
	cr_assert_eq(p->n_sample_type, 2, "off_cpu = no applied but still declared");
	test_pprof_free(p);
	m = get_metrics(&d);
	cr_assert_eq(metric_value(m, "profd_config_reloads_total"), 3, "%s", m);
	free(m);
	log = read_file(d.log);
	cr_assert(strstr(log, "Capture rebuilt for stack_bytes, python, off_cpu."), "%s", log);
	free(log);
	stop_pid(py);
	stop_pid(sleeper);
	cr_assert_eq(td_stop(&d, 60), 0);
	td_cleanup(&d);
}

/*
 * SIGHUP applies the keys of the files and the endpoint too: interval, output_dir, format,
 * retention_count (files appear in the new directory, in the new format, at the new pace, no
 * more than kept) and listen (a new unix socket answers, the old TCP address is closed).
 */
Test(daemon, reload_applies_output_keys, .timeout = 180)
{
	char out2[512], sock[512], conf[2048], cmd[1536], old_addr[64];
	struct td d;
	pid_t wpid;
	int st, fd;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char *colon;

	td_prepare(&d);
	write_text(d.conf, "interval = 3600\noutput_dir = %s\nlisten = 127.0.0.1:0\n", d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	snprintf(old_addr, sizeof(old_addr), "%s", d.addr);
	wpid = start_chain();
	snprintf(out2, sizeof(out2), "%s/out2", d.dir);
	snprintf(sock, sizeof(sock), "%s/profd.sock", d.dir);
	snprintf(conf, sizeof(conf),
		 "interval = 1\noutput_dir = %s\nformat = speedscope\nretention_count = 2\n"
		 "listen = unix:%s\n",
		 out2, sock);
	write_text(d.conf, "%s", conf);
	kill(d.pid, SIGHUP);
	cr_assert(td_notified(&d, "READY=1", 60), "no READY=1 after the reload");
	/* The new listener answers; intervals of 1 s are written (three, then more). */
	snprintf(cmd, sizeof(cmd),
		 "curl -sf --max-time 20 --unix-socket '%s' http://profd/metrics | "
		 "awk '$1 == \"profd_profiles_written_total\" && $2 >= 3 { ok = 1 } END { exit !ok }'",
		 sock);
	st = -1;
	for (int i = 0; i < 300 && st != 0; i++) {
		st = system(cmd);
		if (st != 0)
			usleep(100000);
	}
	cr_assert_eq(st, 0, "no /metrics with 3 interval files on the new unix socket %s", sock);
	colon = strrchr(old_addr, ':');
	cr_assert_not_null(colon);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_neq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0,
		      "the old listener %s still accepts", old_addr);
	close(fd);
	stop_pid(wpid);
	cr_assert_eq(td_stop(&d, 60), 0);
	/* Stopped: the files kept are final. Speedscope files in out2, two kept, none in out. */
	cr_assert_eq(count_files(out2, "profile-"), 2, "retention_count = 2 in %s", out2);
	cr_assert_eq(count_files(d.out, "profile-"), 0, "files still written to the old output_dir");
	snprintf(cmd, sizeof(cmd), "test $(ls %s/profile-*.speedscope.json | wc -l) = 2", out2);
	cr_assert_eq(system(cmd), 0, "not speedscope files in %s", out2);
	td_cleanup(&d);
}

/*
 * Short-lived processes under the daemon: a storm of busy children living ~15-30 ms each
 * (tests/workloads/storm.c) while a whole-host profile is pulled. Their mappings come from the
 * kernel's side-band stream, so a child gone before its first sample was read still unwinds
 * to main (see test-sideband.c for the bound).
 */
Test(daemon, storm_of_short_processes, .timeout = 180)
{
	char path[512];
	struct td d;
	pid_t storm;
	uint64_t total;
	size_t pids;
	double share;

	td_prepare(&d);
	write_text(d.conf, "interval = 3600\noutput_dir = %s\nlisten = 127.0.0.1:0\n"
			   "frequency = 499\n", d.out);
	td_start(&d);
	cr_assert(d.addr[0], "no listen address in the log");
	/* 3 s of children, starting 1 s in: inside the pull's 5 s window. */
	storm = test_spawn((char *[]){(char *)test_build_path("workloads/storm"), "3", "15", "1",
				      NULL});
	cr_assert_gt(storm, 0);
	Perftools__Profiles__Profile *p = pull_profile(&d, 5, 0, "storm.pb.gz", path, sizeof(path));
	share = test_storm_chain_share(p, &total, &pids);
	cr_log_info("daemon storm: %.1f%% of %lu child samples (%zu children) carry their chain",
		    share * 100, (unsigned long)total, pids);
	cr_assert_geq(pids, 20, "only %zu children sampled", pids);
	cr_assert_geq(total, 200, "only %lu child samples", (unsigned long)total);
	cr_assert_geq(share, 0.85, "only %.1f%% of %lu child samples carry their chain",
		      share * 100, (unsigned long)total);
	free(test_check_with_pprof(path));
	test_pprof_free(p);
	stop_pid(storm);
	cr_assert_eq(td_stop(&d, 60), 0);
	td_cleanup(&d);
}

/* Retention removes the oldest files first, by count and by bytes, never the newest. */
Test(daemon, retention, .timeout = 180)
{
	char names[64][64], path[512];
	struct td d;
	double end;
	size_t n;
	int fd;

	td_prepare(&d);
	cr_assert_eq(mkdir(d.out, 0755), 0);
	/* Old files of an earlier run: A (small), B (60 MiB, sparse), C (small), and a stranger. */
	static const char *const old[] = {"profile-20000101T000000Z.pb.gz",
					  "profile-20000102T000000Z.pb.gz",
					  "profile-20000103T000000Z.pb.gz", "notes.txt"};
	for (size_t i = 0; i < ARRAY_SIZE(old); i++) {
		snprintf(path, sizeof(path), "%s/%s", d.out, old[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ftruncate(fd, i == 1 ? 60 << 20 : 1), 0);
		close(fd);
	}
	write_text(d.conf,
		   "interval = 1\noutput_dir = %s\nlisten = \"\"\nretention_count = 4\n"
		   "retention_bytes = 50M\n",
		   d.out);
	td_start(&d);

	/*
	 * First write: 60 MiB + a bit > 50 MiB, so A goes, then B; C and the new file stay, C until
	 * the fourth file of this run. Waited for as "A and B gone", not as "exactly two files",
	 * which lasts one interval only: a test process starved that long would never see it.
	 */
	end = now_s() + 60;
	for (;;) {
		n = list_profiles(d.out, names, 64);
		if ((n >= 2 && strcmp(names[0], old[0]) && strcmp(names[0], old[1])) ||
		    now_s() > end)
			break;
		usleep(50000);
	}
	cr_assert_geq(n, 2, "retention by bytes: %zu files", n);
	cr_assert_str_eq(names[0], old[2], "retention by bytes: the oldest file is %s", names[0]);
	cr_assert_leq(n, 4, "retention by count: %zu files", n);

	/* Then the count: C goes when the fourth file of this run arrives. */
	end = now_s() + 60;
	while (now_s() < end) {
		n = list_profiles(d.out, names, 64);
		if (n >= 4 && strcmp(names[0], old[2]))
			break;
		usleep(50000);
	}
	cr_assert_eq(n, 4, "retention by count: %zu files", n);
	cr_assert_str_neq(names[0], old[2], "the oldest file was kept");
	snprintf(path, sizeof(path), "%s/notes.txt", d.out);
	cr_assert_eq(access(path, F_OK), 0, "retention removed a file that is not a profile");
	cr_assert_eq(td_stop(&d, 60), 0, "%s", read_file(d.log));
	td_cleanup(&d);
}

/* ---- stub Pyroscope receiver ------------------------------------------------------------- */

#define RX_MAX 64
struct rx_request {
	char line[1024]; /* "POST /ingest?... HTTP/1.1" */
	char ctype[256];
	char *body;
	size_t len;
};

struct receiver {
	int fd;
	int hold; /* bound to the port, never listening: keeps it ours while the receiver is down */
	unsigned port;
	pthread_t thread;
	volatile bool stop;
	pthread_mutex_t lock;
	struct rx_request req[RX_MAX];
	size_t n;
	size_t over_limits; /* profiles refused as Pyroscope would */
};

static ssize_t read_some(int fd, char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 5000) <= 0)
		return -1;
	return read(fd, buf, len);
}

/* The gzipped pprof of a multipart body (form file field "profile"); NULL if absent. */
static const char *rx_profile_bytes(const struct rx_request *r, size_t *ret_len)
{
	const char *part = memmem(r->body, r->len, "name=\"profile\"", 14), *data, *end = NULL;

	if (!part || !(data = memmem(part, r->len - (part - r->body), "\r\n\r\n", 4)))
		return NULL;
	data += 4;
	/* The only part ends at the last "\r\n--" (the closing boundary). */
	for (const char *q = data; (q = memmem(q, r->body + r->len - q, "\r\n--", 4)); q += 4)
		end = q;
	if (!end)
		return NULL;
	*ret_len = end - data;
	return data;
}

/*
 * Pyroscope's ingest limits (its pkg/validation/limits.go defaults): at most 4 MiB of
 * uncompressed profile and 16,000 samples. A body that is no gzipped pprof also fails.
 */
#define RX_MAX_PROFILE_BYTES (4u << 20)
#define RX_MAX_SAMPLES 16000
static bool rx_within_limits(const struct rx_request *r)
{
	size_t gz_len = 0, cap = RX_MAX_PROFILE_BYTES + 1;
	const char *gz = rx_profile_bytes(r, &gz_len);
	uint8_t *raw;
	z_stream z = {};
	bool ok;
	int zr;

	if (!gz || (raw = malloc(cap)) == NULL)
		return false;
	if (inflateInit2(&z, 15 + 16) != Z_OK) {
		free(raw);
		return false;
	}
	z.next_in = (Bytef *)gz;
	z.avail_in = gz_len;
	z.next_out = raw;
	z.avail_out = cap;
	zr = inflate(&z, Z_FINISH);
	ok = zr == Z_STREAM_END && z.total_out <= RX_MAX_PROFILE_BYTES;
	if (ok) {
		Perftools__Profiles__Profile *p =
		    perftools__profiles__profile__unpack(NULL, z.total_out, raw);

		ok = p && p->n_sample <= RX_MAX_SAMPLES;
		if (p)
			perftools__profiles__profile__free_unpacked(p, NULL);
	}
	inflateEnd(&z);
	free(raw);
	return ok;
}

static void rx_serve(struct receiver *rx, int c)
{
	size_t cap = 1 << 16, n = 0, hdr = 0, clen = 0;
	char *buf = malloc(cap), *e;
	struct rx_request r = {};
	ssize_t k;

	/* Headers. */
	while (!(e = memmem(buf, n, "\r\n\r\n", 4))) {
		if (n == cap || (k = read_some(c, buf + n, cap - n)) <= 0)
			goto out;
		n += k;
	}
	hdr = e - buf + 4;
	buf[hdr - 2] = '\0';
	snprintf(r.line, sizeof(r.line), "%.*s", (int)strcspn(buf, "\r"), buf);
	for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
		if (!strncasecmp(h + 2, "Content-Length:", 15))
			clen = strtoul(h + 17, NULL, 10);
		if (!strncasecmp(h + 2, "Content-Type:", 13)) {
			const char *v = h + 15 + strspn(h + 15, " ");

			snprintf(r.ctype, sizeof(r.ctype), "%.*s", (int)strcspn(v, "\r"), v);
		}
		if (!strncasecmp(h + 2, "Expect: 100-continue", 20) &&
		    write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 25)
			goto out;
	}
	/* Body. */
	if (hdr + clen > cap) {
		cap = hdr + clen;
		buf = realloc(buf, cap);
	}
	while (n < hdr + clen) {
		if ((k = read_some(c, buf + n, hdr + clen - n)) <= 0)
			goto out;
		n += k;
	}
	r.body = malloc(clen + 1);
	memcpy(r.body, buf + hdr, clen);
	r.len = clen;
	static const char ok[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	static const char too_big[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
				      "Connection: close\r\n\r\n";
	if (!rx_within_limits(&r)) {
		/* What Pyroscope answers past its limits: refused for good. */
		pthread_mutex_lock(&rx->lock);
		rx->over_limits++;
		pthread_mutex_unlock(&rx->lock);
		(void)!write(c, too_big, strlen(too_big));
		free(r.body);
		goto out;
	}
	if (write(c, ok, strlen(ok)) != (ssize_t)strlen(ok)) {
		free(r.body);
		goto out;
	}
	pthread_mutex_lock(&rx->lock);
	if (rx->n < RX_MAX)
		rx->req[rx->n++] = r;
	else
		free(r.body);
	pthread_mutex_unlock(&rx->lock);
out:
	free(buf);
	close(c);
}

static void *rx_thread(void *arg)
{
	struct receiver *rx = arg;

	while (!rx->stop) {
		struct pollfd p = {.fd = rx->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept4(rx->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			rx_serve(rx, c);
	}
	return NULL;
}

static int rx_socket(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	return fd;
}

/*
 * Listen on 127.0.0.1:port (0: a port the kernel chooses) and serve in a thread. The first
 * start also binds a second socket to the port that never listens: while the receiver is down,
 * connections are refused, yet no other program can take the port before it comes back.
 */
static void rx_start(struct receiver *rx, unsigned port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	rx->fd = rx_socket(port);
	cr_assert_eq(listen(rx->fd, 16), 0);
	cr_assert_eq(getsockname(rx->fd, (struct sockaddr *)&sa, &sl), 0);
	rx->port = ntohs(sa.sin_port);
	if (!port)
		rx->hold = rx_socket(rx->port);
	rx->stop = false;
	cr_assert_eq(pthread_create(&rx->thread, NULL, rx_thread, rx), 0);
}

/* Stop listening: connections are refused from now on. */
static void rx_stop(struct receiver *rx)
{
	rx->stop = true;
	pthread_join(rx->thread, NULL);
	close(rx->fd);
}

static size_t rx_count(struct receiver *rx)
{
	size_t n;

	pthread_mutex_lock(&rx->lock);
	n = rx->n;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

static long long query_num(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* The pprof inside a multipart body (form file field "profile"), loaded. */
static Perftools__Profiles__Profile *rx_profile(const struct rx_request *r, const char *dir)
{
	size_t len = 0;
	const char *data = rx_profile_bytes(r, &len);
	char path[512];
	FILE *f;

	cr_assert_not_null(data, "no form field \"profile\" with a closing boundary");
	cr_assert((unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b,
		  "the profile is not gzipped");
	snprintf(path, sizeof(path), "%s/pushed.pb.gz", dir);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fwrite(data, 1, len, f);
	fclose(f);
	return test_pprof_load(path);
}

/* Push to a stub Pyroscope; with the receiver down, profiles spool and arrive when it returns. */
Test(daemon, push_and_spool, .timeout = 180)
{
	struct receiver rx = {.lock = PTHREAD_MUTEX_INITIALIZER};
	char spool[512];
	struct td d;
	size_t got, spooled;
	double end;
	pid_t wpid;
	char *m;

	rx_start(&rx, 0);
	td_prepare(&d);
	snprintf(spool, sizeof(spool), "%s/spool", d.dir);
	write_text(d.conf,
		   "interval = 1\noutput_dir = \"\"\nlisten = 127.0.0.1:0\n"
		   "push_url = http://127.0.0.1:%u/\npush_name = profd.test\n"
		   "push_labels = env=ci,host=t1\nspool_dir = %s\n",
		   rx.port, spool);
	/* Only intervals with samples are pushed: the test brings a busy process of its own. */
	wpid = start_chain();
	td_start(&d);

	end = now_s() + 60;
	while (rx_count(&rx) < 1 && now_s() < end)
		usleep(50000);
	cr_assert_geq(rx_count(&rx), 1, "nothing pushed: %s", read_file(d.log));
	pthread_mutex_lock(&rx.lock);
	struct rx_request *r = &rx.req[0];
	cr_assert(!strncmp(r->line, "POST /ingest?", 13), "%s", r->line);
	cr_assert(strstr(r->line, "name=profd.test%7Benv%3Dci%2Chost%3Dt1%7D"), "%s", r->line);
	cr_assert(strstr(r->line, "format=pprof"), "%s", r->line);
	cr_assert(strstr(r->line, "sampleRate=99"), "%s", r->line);
	cr_assert_gt(query_num(r->line, "from="), 1700000000, "%s", r->line);
	cr_assert_geq(query_num(r->line, "until="), query_num(r->line, "from="), "%s", r->line);
	cr_assert(!strncmp(r->ctype, "multipart/form-data; boundary=", 30), "%s", r->ctype);
	Perftools__Profiles__Profile *p = rx_profile(r, d.dir);
	pthread_mutex_unlock(&rx.lock);
	cr_assert_not_null(p, "the pushed profile does not load");
	cr_assert_gt(profile_samples(p), 0);
	test_pprof_free(p);

	/* Receiver down: profiles stay in the spool. */
	rx_stop(&rx);
	got = rx_count(&rx);
	end = now_s() + 60;
	while (count_files(spool, "push-") < 3 && now_s() < end)
		usleep(100000);
	spooled = count_files(spool, "push-");
	cr_assert_geq(spooled, 3, "spool holds %zu files", spooled);
	check_modes(spool, "push-");
	m = get_metrics(&d);
	cr_assert_gt(metric_value(m, "profd_push_failures_total"), 0, "%s", m);
	cr_assert_geq(metric_value(m, "profd_push_spool_files"), 1, "%s", m);
	free(m);

	/* Back on the same port: the spool drains, oldest first. */
	rx_start(&rx, rx.port);
	end = now_s() + 60;
	while ((rx_count(&rx) < got + spooled || count_files(spool, "push-") > 1) && now_s() < end)
		usleep(100000);
	cr_assert_geq(rx_count(&rx), got + spooled, "only %zu of %zu spooled profiles arrived",
		      rx_count(&rx) - got, spooled);
	pthread_mutex_lock(&rx.lock);
	for (size_t i = got + 1; i < rx.n; i++)
		cr_assert_geq(query_num(rx.req[i].line, "from="),
			      query_num(rx.req[i - 1].line, "from="),
			      "not sent in order: %s after %s", rx.req[i].line, rx.req[i - 1].line);
	pthread_mutex_unlock(&rx.lock);

	cr_assert_eq(td_stop(&d, 60), 0, "%s", read_file(d.log));
	stop_pid(wpid);
	rx_stop(&rx);
	close(rx.hold);
	cr_assert_eq(rx.over_limits, 0, "profd pushed profiles over Pyroscope's limits");
	for (size_t i = 0; i < rx.n; i++)
		free(rx.req[i].body);
	td_cleanup(&d);
}

/* ---- container labels -------------------------------------------------------------------- */

/* A writable cgroup2 mount (pure v2 or the hybrid "unified" one), or NULL. */
static char *cgroup2_mount(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], *found = NULL;

	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 "), *fields[6];
		size_t n = 0;

		if (!sep)
			continue;
		for (char *s = strtok(line, " "); s && n < 6; s = strtok(NULL, " "))
			fields[n++] = s;
		if (n >= 5 && access(fields[4], W_OK) == 0)
			found = strdup(fields[4]);
	}
	fclose(f);
	return found;
}

static char container_cg[512];
static pid_t container_wpid;

/* Runs after the test, also when an assertion failed: the cgroups must not stay behind. */
static void container_fini(void)
{
	stop_pid(container_wpid);
	if (container_cg[0]) {
		rmdir(container_cg);
		*strrchr(container_cg, '/') = '\0';
		rmdir(container_cg);
	}
}

Test(daemon, container_label, .timeout = 180, .fini = container_fini)
{
	static const char id[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char names[16][64], cg[512], procs[600], path[512], buf[32];
	char *mnt = cgroup2_mount();
	struct td d;
	pid_t wpid;
	size_t n;
	double end;

	cr_assert_not_null(mnt, "no writable cgroup2 mount to put a workload in a container");
	snprintf(cg, sizeof(cg), "%s/profd-test-%d", mnt, getpid());
	cr_assert(mkdir(cg, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", cg, strerror(errno));
	snprintf(cg + strlen(cg), sizeof(cg) - strlen(cg), "/docker-%s.scope", id);
	cr_assert(mkdir(cg, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", cg, strerror(errno));
	snprintf(container_cg, sizeof(container_cg), "%s", cg);

	td_prepare(&d);
	write_text(d.conf, "interval = 2\noutput_dir = %s\nlisten = \"\"\nlog_level = info\n",
		   d.out);
	wpid = container_wpid = start_chain();
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(buf, sizeof(buf), "%d\n", wpid);
	write_text(procs, "%s", buf);
	td_start(&d);
	end = now_s() + 60;
	while ((n = list_profiles(d.out, names, 16)) < 2 && now_s() < end)
		usleep(100000);
	cr_assert_geq(n, 2, "%zu interval files in 60 s, daemon %s: %s", n,
		      kill(d.pid, 0) == 0 ? "running" : "gone", read_file(d.log));
	snprintf(path, sizeof(path), "%s/%s", d.out, names[1]);
	Perftools__Profiles__Profile *p = test_pprof_load(path);
	cr_assert_not_null(p);
	size_t labeled = 0, others = 0;
	for (size_t i = 0; i < p->n_sample; i++) {
		const char *c = test_sample_label_str(p, p->sample[i], "container_id");

		if (test_sample_label_num(p, p->sample[i], "pid") == wpid) {
			cr_assert(c && !strcmp(c, id), "workload sample without container_id %s",
				  c ? c : "(none)");
			labeled++;
		} else if (c && !strcmp(c, id)) {
			others++;
		}
	}
	cr_assert_gt(labeled, 0, "no samples of the workload");
	cr_assert_eq(others, 0, "the container id leaked to other processes");
	test_pprof_free(p);

	cr_assert_eq(td_stop(&d, 60), 0);
	free(mnt);
	td_cleanup(&d);
}
