// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
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

#include "tests/lib/testlib.h"

const char *test_build_dir(void)
{
	static char dir[PATH_MAX];

	if (!dir[0]) {
		const char *b = getenv("BUILD");

		if (!b || !*b)
			b = "build";
		if (!realpath(b, dir))
			snprintf(dir, sizeof(dir), "%s", b);
	}
	return dir;
}

const char *test_build_path(const char *rel)
{
	static char bufs[8][2 * PATH_MAX];
	static unsigned i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", test_build_dir(), rel);
	return b;
}

char *test_tmpdir(void)
{
	char tmpl[] = "/tmp/profd-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

static char *slurp_fd(int fd)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t k;

	if (!buf)
		return NULL;
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += k;
	}
	buf[n] = '\0';
	return buf;
}

int test_run(char *const argv[], int timeout_s, struct run_result *ret)
{
	char outt[] = "/tmp/profd-out-XXXXXX", errt[] = "/tmp/profd-err-XXXXXX";
	int outfd = mkstemp(outt), errfd = mkstemp(errt), status;
	time_t deadline = time(NULL) + timeout_s;
	pid_t pid;

	memset(ret, 0, sizeof(*ret));
	if (outfd < 0 || errfd < 0)
		return -errno;
	unlink(outt);
	unlink(errt);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(outfd, 1);
		dup2(errfd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(20000);
	}
	ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	lseek(outfd, 0, SEEK_SET);
	lseek(errfd, 0, SEEK_SET);
	ret->out = slurp_fd(outfd);
	ret->err = slurp_fd(errfd);
	close(outfd);
	close(errfd);
	return 0;
}

void run_result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

pid_t test_spawn(char *const argv[])
{
	pid_t pid, parent = getpid();
	char buf[32] = {};
	int p[2];

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* A failed assertion ends the test process: the workload must not outlive it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		dup2(p[1], 1);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	/* The workloads print their pid once they run: wait for that line. */
	if (read(p[0], buf, sizeof(buf) - 1) <= 0) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

void test_kill(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

pid_t test_spawn_logged(char *const argv[], const char *log, char *const env[])
{
	pid_t parent = getpid(), pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127); /* the test was gone before the death signal was set up */
		dup2(fd, 1);
		dup2(fd, 2);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int test_notify_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", path,
		     strerror(errno));
	return fd;
}

int test_notified(int fd, const char *what, double timeout_s, pid_t pid, int *ret_status)
{
	struct timespec ts;
	double end;
	char buf[4096];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = ts.tv_sec + ts.tv_nsec / 1e9 + timeout_s;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec + ts.tv_nsec / 1e9 >= end)
			return 0;
		if (poll(&p, 1, 100) <= 0) {
			if (pid > 0 && waitpid(pid, ret_status, WNOHANG) == pid)
				return -1;
			continue;
		}
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, what))
			return 1;
	}
}

int test_stop(pid_t pid, int timeout_s)
{
	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	return test_wait(pid, timeout_s);
}

int test_wait(pid_t pid, int timeout_s)
{
	time_t deadline = time(NULL) + timeout_s;
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (w < 0)
			return -1;
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(20000);
	}
}

Perftools__Profiles__Profile *test_pprof_load(const char *path)
{
	gzFile gz = gzopen(path, "rb");
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf;
	Perftools__Profiles__Profile *p;
	int k;

	if (!gz)
		return NULL;
	buf = malloc(cap);
	while (buf && (k = gzread(gz, buf + n, cap - n)) > 0) {
		n += k;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	gzclose(gz);
	if (!buf)
		return NULL;
	p = perftools__profiles__profile__unpack(NULL, n, buf);
	free(buf);
	return p;
}

void test_pprof_free(Perftools__Profiles__Profile *p)
{
	if (p)
		perftools__profiles__profile__free_unpacked(p, NULL);
}

static const char *str_at(const Perftools__Profiles__Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : NULL;
}

const char *test_pb_str(const Perftools__Profiles__Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "";
}

const Perftools__Profiles__Function *test_fn_by_id(const Perftools__Profiles__Profile *p,
						   uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	return NULL;
}

const Perftools__Profiles__Location *test_loc_by_id(const Perftools__Profiles__Profile *p,
						    uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	return NULL;
}

const char *test_sample_label_str(const Perftools__Profiles__Profile *p,
				  const Perftools__Profiles__Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++) {
		const char *k = str_at(p, s->label[i]->key);

		if (k && !strcmp(k, key) && s->label[i]->str)
			return str_at(p, s->label[i]->str);
	}
	return NULL;
}

int64_t test_sample_label_num(const Perftools__Profiles__Profile *p,
			      const Perftools__Profiles__Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++) {
		const char *k = str_at(p, s->label[i]->key);

		if (k && !strcmp(k, key) && !s->label[i]->str)
			return s->label[i]->num;
	}
	return -1;
}

static const Perftools__Profiles__Location *find_loc(const Perftools__Profiles__Profile *p,
						     uint64_t id)
{
	/* pprof ids are dense 1..n in our writer, but do not rely on it. */
	if (id >= 1 && id <= p->n_location && p->location[id - 1]->id == id)
		return p->location[id - 1];
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	return NULL;
}

static const Perftools__Profiles__Function *find_fn(const Perftools__Profiles__Profile *p,
						    uint64_t id)
{
	if (id >= 1 && id <= p->n_function && p->function[id - 1]->id == id)
		return p->function[id - 1];
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	return NULL;
}

size_t test_sample_functions(const Perftools__Profiles__Profile *p,
			     const Perftools__Profiles__Sample *s, const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_location_id && n < max; i++) {
		const Perftools__Profiles__Location *l = find_loc(p, s->location_id[i]);

		if (!l)
			continue;
		for (size_t j = 0; j < l->n_line && n < max; j++) {
			const Perftools__Profiles__Function *f = find_fn(p, l->line[j]->function_id);

			names[n++] = f ? str_at(p, f->name) : "?";
		}
	}
	return n;
}

size_t test_sample_frames(const Perftools__Profiles__Profile *p,
			  const Perftools__Profiles__Sample *s, struct test_frame *frames, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_location_id && n < max; i++) {
		const Perftools__Profiles__Location *l = find_loc(p, s->location_id[i]);
		const char *mapping = "";

		if (!l)
			continue;
		for (size_t m = 0; m < p->n_mapping; m++)
			if (p->mapping[m]->id == l->mapping_id)
				mapping = str_at(p, p->mapping[m]->filename);
		for (size_t j = 0; j < l->n_line && n < max; j++) {
			const Perftools__Profiles__Function *f = find_fn(p, l->line[j]->function_id);

			frames[n++] = (struct test_frame){
				.name = f ? str_at(p, f->name) : "?",
				.file = f ? str_at(p, f->filename) : "?",
				.mapping = mapping,
				.line = l->line[j]->line,
				.start_line = f ? f->start_line : 0,
			};
		}
	}
	return n;
}

double test_chain_fraction(const Perftools__Profiles__Profile *p, pid_t pid,
			   const char *const *chain, size_t n_chain, uint64_t *ret_total)
{
	uint64_t total = 0, hit = 0;
	const char *names[4096];

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		int64_t v = s->n_value ? s->value[0] : 0;
		size_t n;
		bool found = false;

		if (pid > 0 && test_sample_label_num(p, s, "pid") != pid)
			continue;
		total += v;
		n = test_sample_functions(p, s, names, 4096);
		for (size_t k = 0; k + n_chain <= n && !found; k++) {
			size_t j = 0;

			while (j < n_chain && names[k + j] && !strcmp(names[k + j], chain[j]))
				j++;
			found = j == n_chain;
		}
		if (found)
			hit += v;
	}
	if (ret_total)
		*ret_total = total;
	return total ? (double)hit / total : 0.0;
}

char *test_pprof_tool(const char *args, const char *path, int *ret_status)
{
	char *cmd = NULL, *out;
	FILE *f;
	int st;

	if (asprintf(&cmd, "'%s' %s '%s' 2>&1", test_build_path("pprof"), args, path) < 0)
		return NULL;
	f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return NULL;
	out = slurp_fd(fileno(f));
	st = pclose(f);
	*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

static const char *const storm_chain[] = { "storm_leaf", "storm_b", "storm_a", "main" };

double test_storm_chain_share(const Perftools__Profiles__Profile *p, uint64_t *ret_total,
				size_t *ret_pids)
{
	const char *names[4096];
	uint64_t total = 0, hit = 0;
	int64_t pids[4096];
	size_t n_pids = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const char *comm = test_sample_label_str(p, s, "comm");
		int64_t v = s->n_value ? s->value[0] : 0, pid;
		size_t n;
		bool found = false, seen = false;

		if (!comm || strcmp(comm, "storm-child"))
			continue;
		total += v;
		pid = test_sample_label_num(p, s, "pid");
		for (size_t k = 0; k < n_pids && !seen; k++)
			seen = pids[k] == pid;
		if (!seen && n_pids < 4096)
			pids[n_pids++] = pid;
		n = test_sample_functions(p, s, names, 4096);
		for (size_t k = 0; k + 4 <= n && !found; k++) {
			size_t j = 0;

			while (j < 4 && names[k + j] && !strcmp(names[k + j], storm_chain[j]))
				j++;
			/* main is the root: nothing but libc's start code after it */
			found = j == 4;
		}
		if (found)
			hit += v;
	}
	*ret_total = total;
	*ret_pids = n_pids;
	return total ? (double)hit / total : 0.0;
}

void test_perf_leaf_counts(const char *cmd, int hz, const char *sym, struct perf_leaf_counts *ret)
{
	char *data = test_out_path("perf.data"), *rec = NULL, *script = NULL, line[1024];
	FILE *f;
	int st;

	*ret = (struct perf_leaf_counts){ 0 };
	cr_assert(asprintf(&rec, "perf record -q -e cpu-clock -F %d -o '%s' -- %s >/dev/null 2>&1",
			   hz, data, cmd) > 0);
	st = system(rec);
	/* The workload may end by a signal (a CPU-time limit): perf's data is what counts. */
	cr_assert(access(data, R_OK) == 0, "perf record wrote nothing (status %d): %s", st, rec);
	cr_assert(asprintf(&script, "perf script -i '%s' -F ip,sym,dso 2>/dev/null", data) > 0);
	f = popen(script, "r");
	cr_assert_not_null(f, "%s: %s", script, strerror(errno));
	/* One line a sample: "IP SYMBOL (DSO)"; the kernel's DSO is [kernel.kallsyms]. */
	while (fgets(line, sizeof(line), f)) {
		char ip[64], name[512];

		if (sscanf(line, "%63s %511s", ip, name) != 2)
			continue;
		ret->total++;
		if (strstr(line, "([kernel.kallsyms])"))
			ret->kernel++;
		if (!strcmp(name, sym))
			ret->sym++;
	}
	st = pclose(f);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed (status %d)", script, st);
	cr_assert_gt(ret->total, 0, "perf recorded no samples of %s", cmd);
	unlink(data);
	free(data);
	free(rec);
	free(script);
}

void test_require_root(void)
{
	cr_assert_eq(geteuid(), 0, "end-to-end tests need root (BPF, perf events)");
}

char *test_out_path(const char *name)
{
	char *dir = test_tmpdir(), *p = NULL;

	cr_assert_not_null(dir);
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	free(dir);
	return p;
}

char *test_check_with_pprof(const char *path)
{
	int st = -1;
	char *out = test_pprof_tool("-raw", path, &st);

	cr_assert_not_null(out);
	cr_assert_eq(st, 0, "pprof -raw failed on %s:\n%s", path, out);
	cr_assert(strstr(out, "Samples:") != NULL, "pprof -raw printed no samples:\n%s", out);
	free(out);
	out = test_pprof_tool("-traces", path, &st);
	cr_assert_not_null(out);
	cr_assert_eq(st, 0, "pprof -traces failed on %s:\n%s", path, out);
	return out;
}

char *test_slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *s;

	if (fd < 0)
		return strdup("");
	s = slurp_fd(fd);
	close(fd);
	return s ? s : strdup("");
}

double test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_perf_fds(pid_t pid)
{
	char dir[64], path[PATH_MAX], target[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		ssize_t k;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		k = readlink(path, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = '\0';
		if (!strcmp(target, "anon_inode:[perf_event]"))
			n++;
	}
	closedir(d);
	return n;
}

/* profd record said "profd: sampling ..." on its stderr (a log file of ours). */
static bool said_sampling(pid_t pid)
{
	char link[64], path[PATH_MAX], buf[8192];
	ssize_t k, n;
	int fd;
	bool found = false;

	snprintf(link, sizeof(link), "/proc/%d/fd/2", (int)pid);
	k = readlink(link, path, sizeof(path) - 1);
	if (k <= 0 || path[0] != '/')
		return false;
	path[k] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* The line comes first, before any sample is handled: the head of the file is enough. */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		found = strstr(buf, "profd: sampling ") != NULL;
	}
	return found;
}

bool test_wait_sampling(pid_t pid, double timeout_s)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double end = test_now() + timeout_s;

	if (cpus < 1)
		cpus = 1;
	while (test_now() < end) {
		int n = count_perf_fds(pid);
		siginfo_t si = {0};

		/* Exited (a zombie of ours, or gone): it will never sample. */
		if (n < 0 ||
		    (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid))
			return false;
		/* Printed once every event is open with its program attached. */
		if (n > 0 && said_sampling(pid))
			return true;
		/*
		 * Quiet (-q) recordings print nothing: with per-CPU events (-a, the daemon), one
		 * open per CPU is the sign; the last one's attach follows within microseconds.
		 */
		if (n >= cpus) {
			usleep(20000);
			return true;
		}
		usleep(10000);
	}
	return false;
}

double test_cpu_seconds(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields are counted after the last ')'. */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

bool test_wait_cpu(pid_t pid, double cpu_s, double timeout_s)
{
	double start = test_cpu_seconds(pid), end = test_now() + timeout_s, c;

	if (start < 0)
		return false;
	while (test_now() < end) {
		c = test_cpu_seconds(pid);
		if (c < 0)
			return false;
		if (c - start >= cpu_s)
			return true;
		usleep(20000);
	}
	return false;
}
