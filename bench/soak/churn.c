// SPDX-License-Identifier: MIT
/*
 * churn: the host churn the soak (bench/soak.sh) runs under `profd daemon` for a long time, so
 * that every table of the daemon keeps seeing new and dead entries:
 *
 *   - short-lived processes, PROCS per second: alternately a fork() that works and _exit()s
 *     (a new pid with the parent's mappings) and a posix_spawn() of this program as
 *     `churn --child US` (a new pid that execs a fresh image);
 *   - threads, THREADS per second, each working WORK µs and ending;
 *   - dlopen churn, DLOPENS per second over the libraries given: dlopen(), call
 *     `churn_lib_work(us)` (WORK µs inside the library), dlclose(), so the same few files are
 *     mapped and unmapped at new addresses all the time.
 *
 * Each activity runs in its own thread on a fixed schedule (it falls behind rather than
 * bursting when the machine is busy); work is a CPU-bound loop, so samples land in it. With the
 * defaults the churn takes about 20% of one CPU.
 *
 * Usage: churn [-p PROCS] [-t THREADS] [-d DLOPENS] [-w WORK_US] SECONDS [LIB.so...]
 *        churn --child WORK_US
 * Prints its pid first; at the end one line of counts on stdout:
 *   "churn: N processes (F fork, S spawn), T threads, D dlopen/dlclose cycles, E errors"
 * Exits 1 if any fork, spawn, thread start, dlopen or dlsym failed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile unsigned long sink;
static atomic_ulong n_fork, n_spawn, n_threads, n_dlopen, n_errors;
static double end_time, work_us = 2000;
static double procs_rate = 20, threads_rate = 50, dlopen_rate = 20;
static char **libs;
static int n_libs;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	double d = t - now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A few levels of calls, so the stacks have something to unwind. */
__attribute__((noinline)) static unsigned long mix(unsigned long x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 29;
	return x;
}

__attribute__((noinline)) static unsigned long work_inner(double us)
{
	double stop = now() + us / 1e6;
	unsigned long x = (unsigned long)getpid();

	while (now() < stop)
		for (int i = 0; i < 256; i++)
			x = mix(x + i);
	return x;
}

__attribute__((noinline)) static void work(double us)
{
	sink += work_inner(us);
}

/* Runs fn rate times per second until the end; a rate of 0 runs nothing. */
static void every(double rate, void (*fn)(unsigned long i))
{
	double next = now();
	unsigned long i = 0;

	if (rate <= 0)
		return;
	while (now() < end_time) {
		fn(i++);
		next += 1.0 / rate;
		if (next < now() - 1.0) /* far behind: skip, do not burst */
			next = now();
		sleep_until(next);
	}
}

__attribute__((noinline)) static void proc_once(unsigned long i)
{
	char us[32];
	pid_t pid;

	if (i % 2 == 0) {
		pid = fork();
		if (pid == 0) {
			work(work_us);
			_exit(0);
		}
		if (pid < 0) {
			n_errors++;
			return;
		}
		n_fork++;
	} else {
		char *argv[] = {"/proc/self/exe", "--child", us, NULL};

		snprintf(us, sizeof(us), "%.0f", work_us);
		if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0) {
			n_errors++;
			return;
		}
		n_spawn++;
	}
	if (waitpid(pid, NULL, 0) != pid)
		n_errors++;
}

static void *thread_body(void *arg)
{
	(void)arg;
	work(work_us / 2);
	return NULL;
}

__attribute__((noinline)) static void thread_once(unsigned long i)
{
	pthread_t t;

	(void)i;
	if (pthread_create(&t, NULL, thread_body, NULL) != 0) {
		n_errors++;
		return;
	}
	pthread_join(t, NULL);
	n_threads++;
}

__attribute__((noinline)) static void dlopen_once(unsigned long i)
{
	const char *lib = libs[i % n_libs];
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	unsigned long (*fn)(double);

	if (!h) {
		fprintf(stderr, "churn: dlopen %s: %s\n", lib, dlerror());
		n_errors++;
		return;
	}
	fn = (unsigned long (*)(double))dlsym(h, "churn_lib_work");
	if (fn)
		sink += fn(work_us);
	else
		n_errors++;
	dlclose(h);
	n_dlopen++;
}

static void *proc_thread(void *arg)
{
	(void)arg;
	every(procs_rate, proc_once);
	return NULL;
}

static void *threads_thread(void *arg)
{
	(void)arg;
	every(threads_rate, thread_once);
	return NULL;
}

static void *dlopen_thread(void *arg)
{
	(void)arg;
	if (n_libs > 0)
		every(dlopen_rate, dlopen_once);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: churn [-p PROCS] [-t THREADS] [-d DLOPENS] [-w WORK_US] SECONDS "
			"[LIB.so...]\n       churn --child WORK_US\n");
	exit(2);
}

int main(int argc, char **argv)
{
	void *(*fns[])(void *) = {proc_thread, threads_thread, dlopen_thread};
	pthread_t t[3];
	int c;

	if (argc == 3 && strcmp(argv[1], "--child") == 0) {
		work(atof(argv[2]));
		return 0;
	}
	while ((c = getopt(argc, argv, "p:t:d:w:")) != -1) {
		switch (c) {
		case 'p':
			procs_rate = atof(optarg);
			break;
		case 't':
			threads_rate = atof(optarg);
			break;
		case 'd':
			dlopen_rate = atof(optarg);
			break;
		case 'w':
			work_us = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	end_time = now() + atof(argv[optind]);
	libs = argv + optind + 1;
	n_libs = argc - optind - 1;
	printf("%d\n", (int)getpid());
	fflush(stdout);

	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, fns[i], NULL) != 0) {
			perror("churn: pthread_create");
			return 1;
		}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf(
	    "churn: %lu processes (%lu fork, %lu spawn), %lu threads, %lu dlopen/dlclose cycles, "
	    "%lu errors\n",
	    n_fork + n_spawn, (unsigned long)n_fork, (unsigned long)n_spawn,
	    (unsigned long)n_threads, (unsigned long)n_dlopen, (unsigned long)n_errors);
	return n_errors ? 1 : 0;
}
