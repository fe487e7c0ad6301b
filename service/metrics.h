/* SPDX-License-Identifier: MIT */
/*
 * The daemon's /metrics page: Prometheus text format (HELP, TYPE and value lines) rendered from
 * a snapshot of the daemon's counters, plus the process_* metrics of profd itself (read from
 * /proc/self and getrusage at render time).
 *
 * Who calls it: commands/daemon.c fills a struct metrics_snapshot in its main loop (the only
 * thread that may read the session), keeps it under a lock, and from the HTTP thread's metrics
 * callback (see http.h) renders a copy with metrics_render(). Nothing here touches the session,
 * the capture or the servers: the page is a function of the snapshot (and /proc/self).
 *
 * The rows and their order are a table in metrics.c; the http_* rows appear only with the HTTP
 * server on (http_enabled), the push_* rows only with push configured (push_enabled).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/proc.h"
#include "pipeline/session.h"
#include "pipeline/unwind/unwind-cache.h"
#include "service/http.h"
#include "service/push.h"
#include "symbolize/symbolize.h"

struct metrics_snapshot {
	struct session_stats st;
	uint64_t lost; /* samples and task events the kernel could not queue, every capture */
	size_t procs, dsos;
	struct proc_sideband_stats sideband;
	struct unwind_cache_stats unwind;
	struct sym_cache_stats sym;
	size_t interval_stacks;
	uint64_t interval_samples, interval_dropped;
	unsigned frequency, interval_s, stack_bytes;
	uint64_t profiles_written, write_errors, retention_removed, reloads, reload_failures;
	bool http_enabled, push_enabled;
	struct http_stats http;
	struct push_stats push;
	double start_time; /* of profd, seconds since the epoch */
};

/* The page as malloc()ed text, NUL-terminated (*ret, its length in *ret_len): 0 or -ENOMEM. */
int metrics_render(const struct metrics_snapshot *s, char **ret, size_t *ret_len);
