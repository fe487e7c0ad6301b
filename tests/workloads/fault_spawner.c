// SPDX-License-Identifier: MIT
/*
 * Fault workload: starts RATE short-lived processes per second for SECONDS. Each child
 * execs PROG (default /bin/true) and is reaped; children that exec a fresh image map new
 * files, so a host-wide profiler sees a steady stream of new and dead pids.
 * Usage: fault_spawner SECONDS [RATE] [PROG]. Prints its pid first, the count on stderr.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0, rate = argc > 2 ? atof(argv[2]) : 200.0;
	char *prog = argc > 3 ? argv[3] : "/bin/true";
	char *cargv[] = { prog, NULL };
	double start = now(), next = start;
	unsigned long started = 0;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (now() < start + secs) {
		pid_t pid;
		double t;

		if (posix_spawn(&pid, prog, NULL, NULL, cargv, environ) == 0)
			started++;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		next += 1.0 / rate;
		t = next - now();
		if (t > 0) {
			struct timespec ts = { (time_t)t, (long)((t - (time_t)t) * 1e9) };

			nanosleep(&ts, NULL);
		}
	}
	while (wait(NULL) > 0)
		;
	fprintf(stderr, "%lu processes started\n", started);
	return 0;
}
