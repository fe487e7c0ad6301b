// SPDX-License-Identifier: MIT
/*
 * Fault workload: a library replaced on disk while it is mapped. Usage:
 * fault_replace LIB SECONDS [N]. Prints its pid, then waits for SIGUSR1 (off CPU, so a
 * profiler sees no sample of it), dlopen()s LIB, waits for a second SIGUSR1 (the test replaces
 * LIB on disk meanwhile), then calls LIB's `unsigned long replace_entry(unsigned long)` with N
 * for SECONDS of CPU time. The library stays mapped until exit (or until a test truncates it:
 * SIGBUS, without a core file).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long (*entry)(unsigned long);
	unsigned long n;
	sigset_t usr1;
	double end;
	void *h;
	int sig;

	if (argc < 3) {
		fprintf(stderr, "usage: fault_replace LIB SECONDS [N]\n");
		return 2;
	}
	n = argc > 3 ? strtoul(argv[3], NULL, 0) : 2000000;
	/* A test may truncate LIB under us (SIGBUS): no core file for that. */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	/* Blocked before the pid is printed: a signal sent right after cannot kill us. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	printf("%d\n", (int)getpid());
	fflush(stdout);

	sigwait(&usr1, &sig);
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	entry = (unsigned long (*)(unsigned long))dlsym(h, "replace_entry");
	if (!entry) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	sigwait(&usr1, &sig);
	for (end = now() + atof(argv[2]); now() < end;)
		sink += entry(n);
	return 0;
}
