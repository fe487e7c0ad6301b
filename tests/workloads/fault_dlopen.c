// SPDX-License-Identifier: MIT
/*
 * Fault workload: dlopen/dlclose churn. In a loop for SECONDS: dlopen(LIB), call its `unsigned long
 * dl_hot(unsigned long)` with N, dlclose(). The library is mapped and unmapped hundreds of times
 * while profiled. Usage: fault_dlopen LIB SECONDS [N] (SECONDS of CPU time). Prints its pid first.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
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
	unsigned long n, loops = 0;
	double end;

	if (argc < 3) {
		fprintf(stderr, "usage: fault_dlopen LIB SECONDS [N]\n");
		return 2;
	}
	end = now() + atof(argv[2]);
	n = argc > 3 ? strtoul(argv[3], NULL, 0) : 2000000;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (now() < end) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		unsigned long (*hot)(unsigned long);

		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		hot = (unsigned long (*)(unsigned long))dlsym(h, "dl_hot");
		if (!hot) {
			fprintf(stderr, "dlsym: %s\n", dlerror());
			return 1;
		}
		sink += hot(n);
		dlclose(h);
		loops++;
	}
	fprintf(stderr, "%lu dlopen/dlclose cycles\n", loops);
	return 0;
}
