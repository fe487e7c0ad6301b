/* SPDX-License-Identifier: MIT */
/*
 * Aggregate → pprof: symbolizes each unique (mapping, address) once, adds synthetic frames
 * for stacks that stopped early, labels samples, and summarizes the result.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/aggregate.h"
#include "proto/pprof.h"

struct kallsyms;

struct profile_options {
	uint64_t period_ns;      /* 1e9 / frequency */
	int64_t time_nanos;      /* wall-clock start */
	int64_t duration_nanos;
	bool inlines;            /* expand inline frames when debug info has them */
	struct kallsyms *kallsyms; /* may be NULL: kernel frames then get address names */
};

#define PROFILE_TOP_N 10
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
};

int profile_build(const struct aggregate *a, const struct profile_options *o,
		  struct pprof_builder **ret, struct profile_summary *ret_summary);
