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
 * Anything else is 404 (unknown path), 405 (a method other than GET) or 400 (bad arguments:
 * see http_parse_request(); e.g. seconds=abc, seconds given twice, or "?seconds" without a
 * value). Request lines libmicrohttpd cannot split are closed or answered 400 by it.
 *
 * Bound where `listen` says; the daemon's default (service/config.c) is 127.0.0.1:7632,
 * loopback only. Who may see what is service/access.h's business: every request is identified
 * (unix peer credentials, loopback socket owner, TLS client certificate, bearer token) and
 * decided there; the index page is open, the rest default-deny.
 *
 * Threading: a profile needs the session, which only the main thread may touch. The HTTP
 * thread suspends the connection and queues the request; the main thread takes it with
 * http_server_next(), collects N seconds, and answers with http_request_finish(), which resumes
 * the connection (the HTTP thread then sends the answer). /metrics is answered in the HTTP
 * thread by the metrics callback, which must therefore be thread-safe.
 *
 * Limits (struct http_limits; every one a configuration key, defaults below): profile requests
 * at once in all, per unprivileged uid, and a share of them kept for privileged callers (root,
 * allow_group, a client certificate, the token), 503 beyond; connections at once over every
 * listener in all, per unprivileged caller (its uid, or its address when the uid is unknown),
 * and a share kept for privileged callers (by uid: uid 0 or allow_group), closed at once beyond;
 * request headers complete within header_timeout_s of the connection's start (or of its
 * previous answer), else the connection is closed (a client sending a header line now and then
 * does not hold a slot longer); idle connections closed after HTTP_TIMEOUT_S (a connection
 * waiting for its profile is not idle). A client that goes away while its profile is collected
 * (the peer closed or reset the connection: polled every HTTP_WATCH_MS) has its request
 * cancelled and its slot freed at once. Every refusal is counted by reason and logged
 * (rate-limited).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/access.h"

#define HTTP_PROFILE_SECONDS_MAX 300
#define HTTP_PROFILE_SECONDS_DEFAULT 30
#define HTTP_TIMEOUT_S 30
#define HTTP_WATCH_MS 100

/* Defaults and bounds of struct http_limits (service/config.c's keys http_*). */
#define HTTP_PROFILES_DEFAULT 8
#define HTTP_PROFILES_PER_USER_DEFAULT 2
#define HTTP_PROFILES_RESERVED_DEFAULT 2
#define HTTP_PROFILES_MAX 64
#define HTTP_CONNECTIONS_DEFAULT 64
#define HTTP_CONNECTIONS_PER_USER_DEFAULT 8
#define HTTP_CONNECTIONS_RESERVED_DEFAULT 16
#define HTTP_CONNECTIONS_MAX 1000
#define HTTP_HEADER_TIMEOUT_DEFAULT 10
#define HTTP_HEADER_TIMEOUT_MAX 300

struct http_server;
struct http_request;

/* ---- request parsing (pure: no socket, no MHD; unit-tested and fuzzed) ----------------------- */

#define HTTP_MAX_ARGS 32 /* query arguments per request (400 beyond) */

enum http_route {
	HTTP_ROUTE_INDEX = 1, /* GET / */
	HTTP_ROUTE_METRICS,   /* GET /metrics */
	HTTP_ROUTE_PROFILE,   /* GET /debug/pprof/profile */
};

/* One query argument as the HTTP library decoded it. value NULL: "key" without '='. */
struct http_arg {
	const char *key;
	const char *value;
};

struct http_parsed {
	enum http_route route; /* valid when the status is 200 */
	unsigned seconds;      /* HTTP_ROUTE_PROFILE: 1..HTTP_PROFILE_SECONDS_MAX */
	uint32_t pid;	       /* HTTP_ROUTE_PROFILE: 1..INT_MAX, 0 when not given */
	char error[160];       /* the answer's text (one line, '\n'-terminated) unless 200 */
};

/*
 * What a request asks for, from its method, path (without the query) and query arguments. Returns
 * the HTTP status to answer: 200 (*ret filled), 405 (a method other than GET; checked first),
 * 404 (unknown path) or 400 (bad arguments of the profile path: `seconds` and `pid` must be
 * plain decimal numbers in range, given at most once and with a value; more than HTTP_MAX_ARGS
 * arguments). Unknown arguments are ignored, as Go's net/http/pprof does. Any string may be
 * hostile; NULL method or path is 400.
 */
unsigned http_parse_request(const char *method, const char *path, const struct http_arg *args,
			    size_t n_args, struct http_parsed *ret);

/*
 * Unprivileged callers may hold at most `profiles - profiles_reserved` profile requests in all
 * and `profiles_per_user` each; privileged ones up to `profiles` in all. The same for
 * connections. A zero field takes its default. http_limits_check() says what is inconsistent.
 */
struct http_limits {
	unsigned profiles, profiles_per_user, profiles_reserved;
	unsigned connections, connections_per_user, connections_reserved;
	unsigned header_timeout_s;
};

/*
 * 0 when `l` is consistent (zero fields read as their defaults): each total within its bound,
 * reserved < total, per_user <= total - reserved; else -EINVAL and what to change in err.
 */
int http_limits_check(const struct http_limits *l, char *err, size_t err_size);

/* Called in the HTTP thread for /metrics: *ret is malloc()ed text, taken over. */
typedef int (*http_metrics_t)(void *userdata, char **ret, size_t *ret_len);

struct http_options {
	/*
	 * Comma-separated listeners (daemon_parse_listeners()): "HOST:PORT", "[V6]:PORT" (port 0
	 * picks a free one), "unix:/PATH". A unix socket is created mode 0660 with the group of
	 * policy.allow_gid (0666 when policy.own_processes: every local user is meant to reach
	 * it), replacing a stale socket at PATH but never another kind of file, and unlinked by
	 * http_server_free() if it is still ours. The socket is bound, given its group and mode
	 * and made to listen in a new 0700 directory beside PATH, then renamed onto PATH: it is
	 * never reachable while more open than asked, and nothing at PATH is followed (anything
	 * there but a stale socket is refused, -EEXIST) (fchmod/fchown of a socket fd would not do:
	 * Linux applies them to the socket's own inode, not to the file bind() made, which is the
	 * one connect() checks). PATH's directory must belong to root (or profd's user) and not be
	 * writable by others unless sticky (-EPERM, logged, otherwise).
	 */
	const char *listen;
	/*
	 * Listening sockets inherited from systemd (profd.socket; sd_listen_fds()): a unix listener
	 * whose path matches one of them uses it as it is (mode and group are the socket unit's),
	 * and leaves it open and in place when the server stops, for the next one.
	 */
	const int *inherited_fds;
	size_t n_inherited;
	/* PEM text (not paths), NULL for none: with cert and key every TCP listener is HTTPS. */
	const char *tls_cert, *tls_key;
	const char *tls_client_ca; /* clients may present a certificate it signed */
	const char *token;	   /* bearer token, NULL for none */
	size_t token_len;
	struct access_policy policy; /* copied */
	struct http_limits limits;
	http_metrics_t metrics;
	void *userdata;
};

/*
 * Listen as `o` says and start the thread. Signals should be blocked in the calling thread while
 * this runs: the new thread inherits the mask, and signals are the main thread's business.
 * Every request is checked with access_decide() before it is served: refused ones get 401/403
 * with the reason, are counted (http_stats.refused) and logged (rate-limited).
 */
int http_server_new(const struct http_options *o, struct http_server **ret);
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
/* What the caller may see (ACCESS_ALL or ACCESS_OWN): the profile must hold nothing more. */
const struct access_decision *http_request_access(const struct http_request *r);
/*
 * Main thread: true once the client of a taken request went away. Its slot is already free;
 * the caller stops collecting and finishes it (the answer goes nowhere).
 */
bool http_request_cancelled(const struct http_request *r);

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
	uint64_t refused;	   /* answered 401/403 by access control */
	uint64_t refused_profiles; /* profile requests answered 503: over a quota */
	uint64_t refused_connections; /* connections closed at once: over a cap */
	uint64_t header_timeouts;     /* connections closed: headers not complete in time */
	uint64_t cancelled;	      /* profile requests whose client went away */
	uint64_t own_profiles;	   /* profiles restricted to the caller's own processes */
	unsigned active_profiles;  /* profile requests not answered yet */
};
void http_server_stats(struct http_server *h, struct http_stats *ret);
