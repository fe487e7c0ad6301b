// SPDX-License-Identifier: MIT
/*
 * Fault workload: spins in exec_leaf ← exec_b ← exec_a ← main for SECONDS, then execv()s PROG with
 * its arguments (the process keeps its pid, its image changes mid-record). Usage: fault_exec
 * SECONDS PROG [ARGS...] (SECONDS of CPU time). Prints its pid on stdout first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))

static volatile unsigned long sink;

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

NOINLINE void exec_leaf(unsigned long n)
{
	volatile unsigned long slot[2] = { sink, 0 };

	for (unsigned long i = 0; i < n; i++)
		slot[0] = slot[0] * 6364136223846793005ul + 1442695040888963407ul;
	sink = slot[0] + slot[1];
}

NOINLINE void exec_b(unsigned long n)
{
	exec_leaf(n);
	sink++;
}

NOINLINE void exec_a(unsigned long n)
{
	exec_b(n);
	sink++;
}

int main(int argc, char **argv)
{
	double end;

	if (argc < 3) {
		fprintf(stderr, "usage: fault_exec SECONDS PROG [ARGS...]\n");
		return 2;
	}
	end = now() + atof(argv[1]);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (now() < end)
		exec_a(2000000);
	execv(argv[2], argv + 2);
	perror("execv");
	return 127;
}
