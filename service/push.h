/* SPDX-License-Identifier: MIT */
/*
 * Push of interval profiles to a Pyroscope server (libcurl, from a worker thread so sampling
 * never waits for the network):
 *
 *   POST {url}/ingest?name=NAME{LABELS}&from=S&until=S&format=pprof&sampleRate=HZ&spyName=profd
 *   Content-Type: multipart/form-data, the gzipped pprof in the form file field "profile"
 *
 * which is Pyroscope's documented ingest API for pprof (the form its Go client uses).
 *
 * Every profile goes through a spool directory first: push_submit() writes it there atomically
 * and the worker sends the spooled files oldest first, deleting each once the server took it.
 * So nothing is lost while the server is down, nor across restarts of profd. The spool is
 * bounded: past `spool_bytes` the oldest files are dropped (logged, counted).
 *
 * Limits: Pyroscope refuses a profile over PUSH_MAX_PROFILE_BYTES uncompressed or with more
 * than PUSH_MAX_SAMPLES samples (its validation defaults, pkg/validation/limits.go). A bigger
 * interval is spooled as several profiles of the same interval, each within both limits
 * (output/output.h, output_split_pprof()), which the server adds up; push_stats.split counts
 * the extra parts, oversize_samples the samples that alone exceed the byte limit (not sent).
 *
 * Failures: a connection error, a timeout, 408, 425, 429 or 5xx is retried with exponential
 * backoff (PUSH_BACKOFF_MIN_MS doubling up to PUSH_BACKOFF_MAX_MS; a new profile triggers an
 * immediate attempt); any other 4xx means the server will never take that file: it is logged
 * and dropped so it cannot block the queue.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUSH_BACKOFF_MIN_MS 1000
#define PUSH_BACKOFF_MAX_MS 60000
#define PUSH_TIMEOUT_MS 30000
#define PUSH_CONNECT_TIMEOUT_MS 5000
#define PUSH_MAX_SAMPLES 16000                   /* Pyroscope's max_profile_stacktrace_samples */
#define PUSH_MAX_PROFILE_BYTES (4 * 1024 * 1024) /* Pyroscope's max_profile_size_bytes */

struct push_config {
	const char *url;       /* base URL, e.g. http://pyroscope:4040 (no query) */
	const char *name;      /* application name */
	const char *labels;    /* "k=v,k=v" or "" */
	const char *spool_dir; /* created when missing */
	uint64_t spool_bytes;
};

struct push;

/*
 * Create the spool directory if needed and start the worker, which sends anything already
 * spooled. Signals should be blocked in the calling thread (the worker inherits the mask).
 * Must be called from one thread at a time (libcurl global init).
 */
int push_new(const struct push_config *cfg, struct push **ret);

/*
 * Stop the worker: it goes on sending spooled files for up to flush_ms, stops at the first
 * failure, and leaves the rest in the spool for the next start. NULL-safe.
 */
void push_free(struct push *p, unsigned flush_ms);

/*
 * Spool one gzipped pprof profile covering [from_s, until_s] (Unix seconds) sampled at
 * sample_rate Hz (in parts when over the limits above), and wake the worker. Returns 0 or
 * -errno when a file could not be written, -EBADMSG when data is not a gzipped pprof.
 */
int push_submit(struct push *p, const void *data, size_t len, int64_t from_s, int64_t until_s,
		unsigned sample_rate);

struct push_stats {
	uint64_t sent;	   /* profiles the server took */
	uint64_t failures; /* failed attempts (retried) */
	uint64_t rejected; /* profiles the server refused for good (dropped) */
	uint64_t dropped;  /* profiles dropped because the spool was full */
	uint64_t split;	   /* extra profiles spooled to stay within the server's limits */
	uint64_t oversize_samples; /* samples too big to send at all */
	uint64_t spool_files, spool_bytes;
	bool failing; /* the last attempt failed */
};
void push_get_stats(struct push *p, struct push_stats *ret);
