/* SPDX-License-Identifier: MIT */
/*
 * Aggregate → pprof: symbolizes each unique (mapping, address) once, adds synthetic frames
 * for stacks that stopped early, labels samples, and summarizes the result.
 *
 * Binaries are symbolized through a struct sym_cache (symbolize.h): pass one that lives as
 * long as the program to share ELFs and results across profiles (the daemon writes one per
 * interval); each profile_build() starts a new cache generation.
 *
 * JIT code: frames in anonymous executable memory are named from the process's perf map. With
 * PROFILE_PERFMAPS_LIVE (record, daemon) that is the copy the aggregate kept, read while the
 * process lived, by the rules of pipeline/jitmap.h (/tmp/perf-NSPID.map inside the process's
 * root, a regular file with one link on that /tmp's mount, owned by the process's uid), and
 * parsed here; no file is read when the profile is written, so a process gone by then, or a
 * pid reused meanwhile, lends no map. Per profile at most PROFILE_MAX_PERFMAPS perf maps,
 * PROFILE_MAX_PERFMAP_BYTES of map text copied (every new copy counted), and
 * PROFILE_PERFMAP_BUDGET_NS spent copying them while sampling and again
 * PROFILE_PERFMAP_BUDGET_NS parsing them here (each map bounded by the PERFMAP_MAX_* limits);
 * frames of further processes keep "[anon] 0x..." names.
 *
 * A recording converted later (`profd convert`, possibly on another machine) must not look at
 * this machine's /proc or /tmp: PROFILE_PERFMAPS_NONE reads nothing, PROFILE_PERFMAPS_DIR reads
 * DIR/perf-PID.map with the recorded PID when the profile is written (a regular file, never a
 * symlink, FIFO or device: perfmap_load(); the directory is trusted as given), within the same
 * per-profile limits.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/aggregate.h"
#include "pipeline/jitmap.h" /* PROFILE_MAX_PERFMAPS and the other per-profile limits */
#include "output/pprof.h"

struct kallsyms;
struct sym_cache;

/* Where JIT perf maps come from (see the top of this file). */
enum profile_perfmaps {
	PROFILE_PERFMAPS_LIVE = 0, /* the aggregate's copies of live processes' maps (record, daemon) */
	PROFILE_PERFMAPS_NONE,	   /* none: anonymous frames keep "[anon] 0x..." names */
	PROFILE_PERFMAPS_DIR,	   /* perfmap_dir/perf-PID.map, PID as recorded (convert) */
};

struct profile_options {
	uint64_t period_ns;      /* 1e9 / frequency */
	int64_t time_nanos;      /* wall-clock start */
	int64_t duration_nanos;
	bool inlines;            /* expand inline frames when debug info has them */
	struct kallsyms *kallsyms; /* may be NULL: kernel frames then get address names */
	struct sym_cache *sym_cache; /* may be NULL: a private cache (default config) per call */
	enum profile_perfmaps perfmaps;
	const char *perfmap_dir; /* PROFILE_PERFMAPS_DIR */
	/*
	 * A third sample type, off_cpu/nanoseconds (time off the CPU of waits recorded with
	 * --off-cpu), after samples/count and cpu/nanoseconds; cpu stays the default. Waits have
	 * 0 samples and 0 cpu, CPU samples 0 off_cpu, and waits carry a "state" label (S: asleep,
	 * D: uninterruptible, other).
	 */
	bool off_cpu;
};

#define PROFILE_TOP_N 10
#define PROFILE_TOP_WAITS 5
struct profile_wait {
	char stack[256]; /* innermost user frames, "a < b < c < d" */
	uint8_t state;   /* enum profd_offcpu_state */
	uint64_t ns;
};
struct profile_top {
	char name[256];
	uint64_t self;
};

struct profile_summary {
	uint64_t samples;
	uint64_t user_stacks, complete; /* for "% of stacks complete" */
	uint64_t stops[16];
	size_t n_top;
	struct profile_top top[PROFILE_TOP_N]; /* by self samples, descending */
	size_t n_locations, n_functions, n_mappings;
	uint64_t off_cpu_ns; /* total of the waits */
	size_t n_waits;
	struct profile_wait waits[PROFILE_TOP_WAITS]; /* longest first */
};

int profile_build(const struct aggregate *a, const struct profile_options *o,
		  struct pprof_builder **ret, struct profile_summary *ret_summary);
