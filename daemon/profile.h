/* SPDX-License-Identifier: MIT */
/*
 * Aggregate → pprof: symbolizes each unique (mapping, address) once, adds synthetic frames
 * for stacks that stopped early, labels samples, and summarizes the result.
 *
 * Binaries are symbolized through a struct sym_cache (symbolize.h): pass one that lives as
 * long as the program to share ELFs and results across profiles (the daemon writes one per
 * interval); each profile_build() starts a new cache generation.
 *
 * JIT code: frames in anonymous executable memory are named from the process's perf map,
 * /tmp/perf-NSPID.map inside the process's root (/proc/PID/root, opened with RESOLVE_IN_ROOT;
 * NSPID is the pid in the process's own pid namespace), loaded at most once per pid per
 * profile. The file must be a regular file with one link, owned by root or by one of the
 * process's uids. A process that has exited by the time the profile is written has no
 * /proc/PID any more: then /tmp/perf-PID.map of the host is read, which is right only if the
 * process lived in the host's pid and mount namespaces (profd cannot tell after the exit);
 * its owner cannot be checked against the process's uids then. Maps are read when the profile
 * is written, not when the samples were taken: a pid reused by another process meanwhile
 * would lend its map (profd keeps no start time per pid). At most PROFILE_MAX_PERFMAPS
 * perf maps are loaded per profile (each bounded by the PERFMAP_MAX_* limits); frames of
 * further processes keep "[anon] 0x..." names.
 *
 * That is PROFILE_PERFMAPS_LIVE, for profiles of this machine's processes. A recording converted
 * later (`profd convert`, possibly on another machine) must not look at this machine's /proc or
 * /tmp: PROFILE_PERFMAPS_NONE reads nothing, PROFILE_PERFMAPS_DIR reads DIR/perf-PID.map with
 * the recorded PID (a regular file, not a symlink; the directory is trusted as given).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/aggregate.h"
#include "proto/pprof.h"

struct kallsyms;
struct sym_cache;

#define PROFILE_MAX_PERFMAPS 64

/* Where JIT perf maps come from (see the top of this file). */
enum profile_perfmaps {
	PROFILE_PERFMAPS_LIVE = 0, /* the live process's /tmp/perf-NSPID.map (record, daemon) */
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
