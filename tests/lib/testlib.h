/* SPDX-License-Identifier: MIT */
/* Helpers for end-to-end tests: running commands, reading pprof files, matching chains. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "output/profile.pb-c.h"

/* The build directory ($BUILD, default "build"), as an absolute path. */
const char *test_build_dir(void);
/* "$BUILD/<rel>" in a static buffer rotation (valid for a few calls). */
const char *test_build_path(const char *rel);
/* A fresh temporary directory for this test (removed by the caller or left in /tmp). */
char *test_tmpdir(void);

struct run_result {
	int status; /* exit code, or 128 + signal */
	char *out;  /* stdout, NUL-terminated */
	char *err;  /* stderr, NUL-terminated */
};
/* Run argv (NULL-terminated) with a timeout; fills *ret. Returns 0 or -errno. */
int test_run(char *const argv[], int timeout_s, struct run_result *ret);
void run_result_free(struct run_result *r);

/*
 * Start a workload in the background; returns its pid (it prints its pid first). It is killed
 * when the test process ends, so a failed assertion leaves no workload spinning.
 */
pid_t test_spawn(char *const argv[]);
/* SIGKILL and reap a spawned process; no-op for pid <= 0. */
void test_kill(pid_t pid);
/*
 * Fork and exec argv with stdout and stderr appended to `log` (created 0644), the variables of
 * env ("KEY=VALUE", NULL-terminated, may be NULL) set in the child; the child dies with the test
 * process (PR_SET_PDEATHSIG). Returns its pid (asserts on failure).
 */
pid_t test_spawn_logged(char *const argv[], const char *log, char *const env[]);
/*
 * sd_notify(3) as systemd sees it, for daemons under test: a datagram socket bound at path
 * (the daemon's NOTIFY_SOCKET), and a wait for a message containing `what` (e.g. "READY=1").
 * test_notified: 1 when it came, 0 after timeout_s, -1 when process pid (if > 0) ended first,
 * its wait status in *ret_status.
 */
int test_notify_socket(const char *path);
int test_notified(int fd, const char *what, double timeout_s, pid_t pid, int *ret_status);
/* SIGTERM and wait up to timeout_s: the exit status (128 + signal), or -1 (then SIGKILLed). */
int test_stop(pid_t pid, int timeout_s);
/* Wait for a spawned process; returns exit status or -1. */
int test_wait(pid_t pid, int timeout_s);

/* Read, gunzip and unpack a pprof file; NULL with a criterion-visible message on error. */
Perftools__Profiles__Profile *test_pprof_load(const char *path);
void test_pprof_free(Perftools__Profiles__Profile *p);

/* String label / numeric label of a sample; NULL / -1 when absent. */
const char *test_sample_label_str(const Perftools__Profiles__Profile *p,
				  const Perftools__Profiles__Sample *s, const char *key);
int64_t test_sample_label_num(const Perftools__Profiles__Profile *p,
			      const Perftools__Profiles__Sample *s, const char *key);

/*
 * Function names of a sample, leaf first, inline lines expanded, into names[] (at most max).
 * Returns the count.
 */
size_t test_sample_functions(const Perftools__Profiles__Profile *p,
			     const Perftools__Profiles__Sample *s, const char **names, size_t max);

/*
 * One frame of a sample as pprof has it: function name, file, line, function start line, and
 * the file of the location's mapping ("" when it has none).
 */
struct test_frame {
	const char *name, *file, *mapping;
	int64_t line, start_line;
};
/* The frames of a sample, leaf first, inline lines expanded, into frames[] (at most max). */
size_t test_sample_frames(const Perftools__Profiles__Profile *p,
			  const Perftools__Profiles__Sample *s, struct test_frame *frames, size_t max);

/*
 * Fraction (0..1) of samples with label pid == pid (or all samples when pid <= 0) whose
 * function list contains `chain` (leaf first, consecutive). *ret_total gets the count of
 * samples considered (sum of values[0]).
 */
double test_chain_fraction(const Perftools__Profiles__Profile *p, pid_t pid,
			   const char *const *chain, size_t n_chain, uint64_t *ret_total);

/*
 * Wait until the profd process `pid` samples: its "profd: sampling ..." line is in the log file
 * its stderr goes to (printed once every event is open and attached; not with -q), or, for a
 * quiet recording with per-CPU events (-a, the daemon), one cpu-clock perf event is open per
 * online CPU. A quiet `record -p`/`-- CMD` (per-task events) gives no such sign: don't use -q
 * there. Returns false after timeout_s or when pid exited.
 */
bool test_wait_sampling(pid_t pid, double timeout_s);
/* CPU time (user + system, all threads) that process pid has used, in seconds; -1 if gone. */
double test_cpu_seconds(pid_t pid);
/*
 * Wait until process pid has used cpu_s more seconds of CPU than when called (whatever else
 * the machine runs, the workload then did that much work). False after timeout_s or exit.
 */
bool test_wait_cpu(pid_t pid, double cpu_s, double timeout_s);
/* A whole file, NUL-terminated (malloc()ed; "" when it cannot be read: for messages). */
char *test_slurp(const char *path);
/* Monotonic clock in seconds. */
double test_now(void);

/* Fail the test unless running as root: the e2e tests prove capture, so they must run. */
void test_require_root(void);
/* A path named `name` in a fresh temporary directory (malloc()ed). */
char *test_out_path(const char *name);
/*
 * The real pprof must read the profile: `pprof -raw` prints its samples and `pprof -traces`
 * succeeds. Returns the -traces output (malloc()ed) for further checks.
 */
char *test_check_with_pprof(const char *path);

/* A profile's string i ("" when out of range); its function and location by id, or NULL. */
const char *test_pb_str(const Perftools__Profiles__Profile *p, int64_t i);
const Perftools__Profiles__Function *test_fn_by_id(const Perftools__Profiles__Profile *p,
						   uint64_t id);
const Perftools__Profiles__Location *test_loc_by_id(const Perftools__Profiles__Profile *p,
						    uint64_t id);

/* Run the real pprof (`$BUILD/pprof`) with args on path; returns its stdout or NULL. */
char *test_pprof_tool(const char *args, const char *path, int *ret_status);

/*
 * Of the samples of tests/workloads/storm's children (comm "storm-child", set before they
 * spin), the share whose functions hold their whole chain storm_leaf → storm_b → storm_a →
 * main; *ret_total their count, *ret_pids how many distinct children they came from.
 */
double test_storm_chain_share(const Perftools__Profiles__Profile *p, uint64_t *ret_total,
			      size_t *ret_pids);

/*
 * perf's view of a workload, the independent reference for what the kernel reports: `perf
 * record -e cpu-clock -F hz` of the shell command cmd (no call graph: only where each tick
 * landed), then `perf script`. Counts every sample, those whose IP is in the kernel, and those
 * whose leaf symbol is sym. Fails the test when perf cannot record here.
 */
struct perf_leaf_counts {
	unsigned long total;
	unsigned long kernel;
	unsigned long sym;
};
void test_perf_leaf_counts(const char *cmd, int hz, const char *sym, struct perf_leaf_counts *ret);
