/* SPDX-License-Identifier: MIT */
/*
 * The daemon's HTTP endpoint, served by libmicrohttpd from its own thread:
 *
 *   GET /debug/pprof/profile?seconds=N[&pid=P]   gzipped pprof of the next N seconds
 *                                                (1..HTTP_PROFILE_SECONDS_MAX, default 30, as
 *                                                Go's net/http/pprof), of one process with pid
 *   GET /metrics                                 Prometheus text format
 *   GET /                                        a short text index
 *
 * Anything else is 404 (unknown path), 405 (a method other than GET) or 400 (bad arguments).
 *
 * Threading: a profile needs the session, which only the main thread may touch. The HTTP
 * thread suspends the connection and queues the request; the main thread takes it with
 * http_server_next(), collects N seconds, and answers with http_request_finish(), which resumes
 * the connection (the HTTP thread then sends the answer). /metrics is answered in the HTTP
 * thread by the metrics callback, which must therefore be thread-safe.
 *
 * Limits: HTTP_MAX_CONNECTIONS connections (HTTP_MAX_PER_IP per client address),
 * HTTP_MAX_PROFILES profile requests at once (503 beyond), idle connections closed after
 * HTTP_TIMEOUT_S (a connection waiting for its profile is not idle).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HTTP_PROFILE_SECONDS_MAX 300
#define HTTP_PROFILE_SECONDS_DEFAULT 30
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_MAX_PER_IP 16
#define HTTP_MAX_PROFILES 8
#define HTTP_TIMEOUT_S 30

struct http_server;
struct http_request;

/* Called in the HTTP thread for /metrics: *ret is malloc()ed text, taken over. */
typedef int (*http_metrics_t)(void *userdata, char **ret, size_t *ret_len);

/*
 * Listen on `listen` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and start the thread.
 * Signals should be blocked in the calling thread while this runs: the new thread inherits the
 * mask, and signals are the main thread's business.
 */
int http_server_new(const char *listen, http_metrics_t metrics, void *userdata,
		    struct http_server **ret);
/*
 * Answer requests not yet taken with 503, wait a little for the answers to go out, stop the
 * thread. Requests taken with http_server_next() must be finished before. NULL-safe.
 */
void http_server_free(struct http_server *h);

/* "ADDRESS:PORT" actually bound (with the real port when 0 was asked). */
const char *http_server_address(const struct http_server *h);

/* Main thread: the next profile request waiting, or NULL. */
struct http_request *http_server_next(struct http_server *h);
unsigned http_request_seconds(const struct http_request *r);
uint32_t http_request_pid(const struct http_request *r); /* 0: every process */

/*
 * Main thread: answer a request taken with http_server_next(). `body` (malloc()ed, taken over)
 * is sent as application/octet-stream when non-NULL, else `message` as text/plain.
 */
void http_request_finish(struct http_request *r, unsigned status, void *body, size_t len,
			 const char *message);

struct http_stats {
	uint64_t requests;	   /* every request received */
	uint64_t profile_requests; /* accepted /debug/pprof/profile requests */
	uint64_t client_errors;	   /* answered 4xx */
	uint64_t server_errors;	   /* answered 5xx */
	unsigned active_profiles;  /* profile requests not answered yet */
};
void http_server_stats(struct http_server *h, struct http_stats *ret);
