// SPDX-License-Identifier: MIT
/*
 * A storm of short-lived busy processes: for SECONDS, starts one child at a time and waits for
 * it. Each child spins CHILD_MS (default 30) of CPU in storm_leaf ← storm_b ← storm_a ← main,
 * named "storm-child" (prctl) so its samples can be told from the parent's. Children alternate:
 * one execs this program again (a new image, new mappings), the next only forks (it runs on
 * the parent's mappings). Usage: storm SECONDS [CHILD_MS [DELAY_S]]: the storm starts after
 * DELAY_S (default 0) seconds of sleep. Prints its pid first, the count of children on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void storm_leaf(void)
{
	unsigned long x = sink;

	for (int i = 0; i < 200000; i++)
		x = (x ^ (x >> 13)) * 0x9e3779b97f4a7c15ul + i;
	sink = x;
}

__attribute__((noinline)) void storm_b(double ms)
{
	double end = cpu_s() + ms / 1e3;

	while (cpu_s() < end)
		storm_leaf();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void storm_a(double ms)
{
	storm_b(ms);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	char self[4096];
	double secs, ms, delay, end;
	unsigned long n = 0;
	ssize_t len;

	if (argc > 2 && !strcmp(argv[1], "child")) {
		prctl(PR_SET_NAME, "storm-child");
		storm_a(atof(argv[2]));
		return 0;
	}
	secs = argc > 1 ? atof(argv[1]) : 3.0;
	ms = argc > 2 ? atof(argv[2]) : 30.0;
	delay = argc > 3 ? atof(argv[3]) : 0.0;
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 1;
	self[len] = '\0';
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (delay > 0) {
		struct timespec ts = { (time_t)delay, (long)((delay - (time_t)delay) * 1e9) };

		nanosleep(&ts, NULL);
	}
	end = now_s() + secs;
	while (now_s() < end) {
		char arg[32];
		pid_t pid;

		snprintf(arg, sizeof(arg), "%g", ms);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			if (n % 2 == 0) {
				char *cargv[] = { "storm", "child", arg, NULL };

				execv(self, cargv);
				_exit(127);
			}
			prctl(PR_SET_NAME, "storm-child");
			storm_a(ms);
			_exit(0);
		}
		waitpid(pid, NULL, 0);
		n++;
	}
	fprintf(stderr, "%lu children\n", n);
	return 0;
}
