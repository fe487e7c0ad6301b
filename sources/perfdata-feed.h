/* SPDX-License-Identifier: MIT */
/*
 * perf.data events -> what a session takes: the adapter between sources/perfdata.h's reader
 * and pipeline/session.h, shared by `profd convert` and the perf.data fuzz target (so the
 * fuzzer runs the shipped mapping code).
 *
 * Processes' mappings are rebuilt from the events as the kernel had them: an MMAP/MMAP2
 * replaces whatever it overlaps, as mmap(MAP_FIXED) does (older mappings are cut to the parts
 * outside it; a non-executable one only cuts, the table keeps code only); FORK of a process
 * copies its parent's mappings, COMM with exec empties them, EXIT of the main thread forgets
 * the process. The first executable file mapping of a process is marked as its executable.
 * Build-ids come from the MMAP2 event, else the file's HEADER_BUILD_ID section. A process's
 * current mappings reach the session's process table (static mode, pipeline/proc.h) just
 * before its next sample; FORK, EXEC and EXIT go to the session as task records; a SAMPLE
 * becomes a sample record whose user stack bytes stay in the reader's buffer.
 * perf's "[kernel.kallsyms]_text" mapping gives where the recorded kernel was loaded
 * (kernel_text, for kernel symbols later).
 *
 * Order: perfdata_open(), perfdata_feed_new() on the session whose process table is in static
 * mode, perfdata_read(pd, perfdata_feed_event, feed), read the results below,
 * perfdata_feed_free(). `after_sample` (may be NULL) is called after each sample was handed to
 * the session (convert warms the binaries that got frames there).
 *
 * Limits: PROC_MAX_PROCS processes and PROC_MAX_MAPS mappings per process (events past them
 * are dropped), PERFDATA_FEED_MAX_TIDS thread names (the table starts over past it).
 * Nothing here logs; functions return >= 0 or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sources/perfdata.h"

#define PERFDATA_FEED_MAX_TIDS (1u << 20) /* thread names kept */

/*
 * The sample_type bits profd needs (PERF_SAMPLE_REGS_USER and PERF_SAMPLE_STACK_USER: `perf
 * record --call-graph dwarf`): without them there is nothing to unwind.
 */
bool perfdata_has_user_stacks(const struct perfdata_info *info);

struct session;
struct perfdata_feed;

/* What the events said besides the samples, read after perfdata_read(). */
struct perfdata_feed_result {
	uint64_t lost;		    /* LOST / LOST_SAMPLES events' counts */
	uint64_t first_ns, last_ns; /* first and last sample times (0: no sample) */
	uint64_t kernel_text;	    /* recorded address of kernel_ref, 0 if none */
	char kernel_ref[64];	    /* ... the symbol perf noted it for ("_text") */
};

/* pd and session must outlive the feed. -ENOMEM. */
int perfdata_feed_new(struct perfdata *pd, struct session *session,
		      void (*after_sample)(void *userdata), void *userdata,
		      struct perfdata_feed **ret);
/*
 * A perfdata_event_fn (userdata: the feed). 0, -ENOMEM (the reading should stop), or the
 * session's error for a sample.
 */
int perfdata_feed_event(void *feed, const struct perfdata_event *ev);
const struct perfdata_feed_result *perfdata_feed_result(const struct perfdata_feed *f);
/*
 * Remove from the session's process table the processes the feed still knows, for a session
 * that outlives the feed (the fuzz target's; convert frees its session instead).
 */
void perfdata_feed_remove_procs(struct perfdata_feed *f);
void perfdata_feed_free(struct perfdata_feed *f);
