// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "service/http.h"
#include "service/listen.h"

enum request_state {
	REQ_NEW,    /* being set up in the HTTP thread */
	REQ_QUEUED, /* suspended, waiting for the main thread */
	REQ_TAKEN,  /* the main thread is collecting its profile */
	REQ_DONE,   /* answer ready; connection resumed */
	REQ_SENT,   /* answer queued to MHD */
};

struct http_request {
	struct http_server *h;
	struct MHD_Connection *conn;
	struct http_request *next; /* queue linkage */
	enum request_state state;
	unsigned seconds;
	uint32_t pid;
	struct access_decision access;
	unsigned status;
	void *body;
	size_t len;
	char message[256];
	bool counted;	 /* counts in active_profiles (holds a slot) */
	bool privileged; /* scope ACCESS_ALL: may use the reserved slots */
	uid_t uid;	 /* !privileged: whose quota it counts in */
	bool cancelled;	 /* the client went away */
	int fd;		 /* the connection's socket, watched while the request waits */
};

struct listener {
	struct MHD_Daemon *mhd;
	bool is_unix, tls;
	bool inherited; /* the socket is systemd's: never closed or unlinked here */
	char path[DAEMON_UNIX_PATH_MAX + 1]; /* is_unix */
	dev_t dev;			     /* of the socket file we made, to unlink only ours */
	ino_t ino;
};

/* Who is at the other end of one connection: identified once, when it is accepted. */
struct conn_ctx {
	struct access_peer peer;
	bool identified;
	bool tls_checked;
	/* Under h->lock: the admitted connections and their header deadlines. */
	struct conn_ctx *prev, *next;
	bool admitted;	   /* linked in h->conns, counted */
	bool privileged;   /* uid 0 or allow_group: may use the reserved connections */
	bool headers_done; /* the current request's headers are in */
	bool cut;	   /* shut down by us (over a cap or past its deadline) */
	int fd;
	uint64_t deadline_ns;
	char key[sizeof(((struct access_peer *)0)->addr)]; /* whose connection cap it counts in:
							      "uid N" or the client's address */
};

struct http_server {
	struct listener listeners[DAEMON_LISTEN_MAX];
	size_t n_listeners;
	http_metrics_t metrics;
	void *userdata;
	struct access_policy policy;
	char *token; /* NULL: no bearer token */
	size_t token_len;
	char address[DAEMON_LISTEN_MAX * (DAEMON_UNIX_PATH_MAX + 8)];
	pthread_mutex_t lock;
	/* Under lock: */
	struct http_request *queue_head, *queue_tail;
	struct http_request *all[HTTP_PROFILES_MAX]; /* every counted request */
	struct conn_ctx *conns;			     /* admitted connections */
	unsigned n_conns, n_conns_unpriv;
	struct http_stats st;
	bool stopping; /* no more requests are queued */
	bool watch_stop;
	struct http_limits limits; /* defaults filled in */
	pthread_cond_t watch_cond;
	pthread_t watch;
	bool watch_started;
	/* Under lock, one per kind of refusal: a flood of one does not hide the others. */
	struct log_ratelimit refused_rl, quota_rl, conn_rl, header_rl;
	/* HTTP thread only: */
	struct log_ratelimit log_rl;
};

/* Refusals of one kind, logged under the lock's protection of the rate limit. */
static void log_limit(struct http_server *h, struct log_ratelimit *rl, const char *fmt, ...)
    _printf_(3, 4);
static void log_limit(struct http_server *h, struct log_ratelimit *rl, const char *fmt, ...)
{
	char buf[384];
	va_list ap;
	bool ok;

	pthread_mutex_lock(&h->lock);
	ok = log_ratelimit_ok(rl);
	pthread_mutex_unlock(&h->lock);
	if (!ok)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_notice("HTTP: %s", buf);
}

/* The defaults in place of the keys left 0 (unset). */
static void limits_defaults(struct http_limits *l)
{
#define DEF(f_, d_) (l->f_ = l->f_ ? l->f_ : (d_))
	DEF(profiles, HTTP_PROFILES_DEFAULT);
	DEF(profiles_per_user, HTTP_PROFILES_PER_USER_DEFAULT);
	DEF(profiles_reserved, HTTP_PROFILES_RESERVED_DEFAULT);
	DEF(connections, HTTP_CONNECTIONS_DEFAULT);
	DEF(connections_per_user, HTTP_CONNECTIONS_PER_USER_DEFAULT);
	DEF(connections_reserved, HTTP_CONNECTIONS_RESERVED_DEFAULT);
	DEF(header_timeout_s, HTTP_HEADER_TIMEOUT_DEFAULT);
#undef DEF
}

/* One quota (profiles or connections): the reserved slots and each user's share must fit. */
static int check_quota(const char *key, unsigned total, unsigned reserved, unsigned per_user,
		       char *err, size_t err_size)
{
	if (reserved >= total) {
		snprintf(err, err_size,
			 "%s_reserved (%u) must be less than %s (%u): lower it or raise %s", key,
			 reserved, key, total, key);
		return -EINVAL;
	}
	if (per_user > total - reserved) {
		snprintf(err, err_size,
			 "%s_per_user (%u) is more than unprivileged callers may hold in all "
			 "(%s - %s_reserved = %u): lower it",
			 key, per_user, key, key, total - reserved);
		return -EINVAL;
	}
	return 0;
}

int http_limits_check(const struct http_limits *in, char *err, size_t err_size)
{
	struct http_limits l = *in;
	int r;

	limits_defaults(&l);
	if (l.profiles > HTTP_PROFILES_MAX || l.connections > HTTP_CONNECTIONS_MAX ||
	    l.header_timeout_s > HTTP_HEADER_TIMEOUT_MAX) {
		snprintf(err, err_size,
			 "http_profiles is at most %d, http_connections at most %d, "
			 "http_header_timeout at most %ds",
			 HTTP_PROFILES_MAX, HTTP_CONNECTIONS_MAX, HTTP_HEADER_TIMEOUT_MAX);
		return -EINVAL;
	}
	r = check_quota("http_profiles", l.profiles, l.profiles_reserved, l.profiles_per_user, err,
			err_size);
	if (r < 0)
		return r;
	r = check_quota("http_connections", l.connections, l.connections_reserved,
			l.connections_per_user, err, err_size);
	if (r < 0)
		return r;
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *h = cls;
	char buf[512];
	size_t n;

	if (!log_ratelimit_ok(&h->log_rl))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warning("HTTP: %s", buf);
}

static void count_status(struct http_server *h, unsigned status)
{
	pthread_mutex_lock(&h->lock);
	if (status >= 500)
		h->st.server_errors++;
	else if (status >= 400)
		h->st.client_errors++;
	pthread_mutex_unlock(&h->lock);
}

static enum MHD_Result reply(struct http_server *h, struct MHD_Connection *conn, unsigned status,
			     const char *content_type, void *body, size_t len, bool must_free)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(
	    len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
	if (status == MHD_HTTP_OK && !strcmp(content_type, "application/octet-stream"))
		MHD_add_response_header(resp, "Content-Disposition",
					"attachment; filename=\"profile\"");
	count_status(h, status);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct http_server *h, struct MHD_Connection *conn,
				  unsigned status, const char *fmt, ...) _printf_(4, 5);
static enum MHD_Result reply_text(struct http_server *h, struct MHD_Connection *conn,
				  unsigned status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	return reply(h, conn, status, "text/plain; charset=utf-8", buf,
		     MIN((size_t)n, sizeof(buf) - 1), false);
}

/* ---- request parsing -------------------------------------------------------------------- */

static unsigned parse_error(struct http_parsed *ret, unsigned status, const char *fmt, ...)
    _printf_(3, 4);
static unsigned parse_error(struct http_parsed *ret, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ret->error, sizeof(ret->error), fmt, ap);
	va_end(ap);
	return status;
}

/*
 * The one value of argument `key`: 1 and *ret (def when absent: 0), or -EINVAL when it is
 * given twice, without a value, or is not a plain decimal number in [min, max] (no sign, no
 * blanks: strtoul alone would take " -5" as a huge number).
 */
static int arg_number(const struct http_arg *args, size_t n_args, const char *key,
		      unsigned long min, unsigned long max, unsigned long def, unsigned long *ret)
{
	const char *v = NULL;
	unsigned long n;
	bool seen = false;
	char *end;

	for (size_t i = 0; i < n_args; i++) {
		if (!args[i].key || strcmp(args[i].key, key))
			continue;
		if (seen)
			return -EINVAL;
		seen = true;
		v = args[i].value;
		if (!v)
			return -EINVAL;
	}
	if (!seen) {
		*ret = def;
		return 0;
	}
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	*ret = n;
	return 1;
}

unsigned http_parse_request(const char *method, const char *path, const struct http_arg *args,
			    size_t n_args, struct http_parsed *ret)
{
	unsigned long seconds, pid;

	memset(ret, 0, sizeof(*ret));
	if (!method || !path || (n_args > 0 && !args))
		return parse_error(ret, MHD_HTTP_BAD_REQUEST, "bad request\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET))
		/* The method is the client's text: never echo it back. */
		return parse_error(ret, MHD_HTTP_METHOD_NOT_ALLOWED,
				   "method not allowed: only GET\n");
	if (!strcmp(path, "/")) {
		ret->route = HTTP_ROUTE_INDEX;
		return MHD_HTTP_OK;
	}
	if (!strcmp(path, "/metrics")) {
		ret->route = HTTP_ROUTE_METRICS;
		return MHD_HTTP_OK;
	}
	if (strcmp(path, "/debug/pprof/profile"))
		return parse_error(ret, MHD_HTTP_NOT_FOUND,
				   "not found: try /debug/pprof/profile?seconds=N or /metrics\n");
	if (n_args > HTTP_MAX_ARGS)
		return parse_error(ret, MHD_HTTP_BAD_REQUEST,
				   "too many query arguments (at most %d)\n", HTTP_MAX_ARGS);
	if (arg_number(args, n_args, "seconds", 1, HTTP_PROFILE_SECONDS_MAX,
		       HTTP_PROFILE_SECONDS_DEFAULT, &seconds) < 0)
		return parse_error(ret, MHD_HTTP_BAD_REQUEST,
				   "bad seconds: expected one whole number 1..%d\n",
				   HTTP_PROFILE_SECONDS_MAX);
	if (arg_number(args, n_args, "pid", 1, INT_MAX, 0, &pid) < 0)
		return parse_error(ret, MHD_HTTP_BAD_REQUEST,
				   "bad pid: expected one process id 1..%d\n", INT_MAX);
	ret->route = HTTP_ROUTE_PROFILE;
	ret->seconds = (unsigned)seconds;
	ret->pid = (uint32_t)pid;
	return MHD_HTTP_OK;
}

/* ---- serving ---------------------------------------------------------------------------- */

/* MHD_KeyValueIterator: the query arguments, up to one more than the parser takes. */
struct arg_list {
	struct http_arg a[HTTP_MAX_ARGS + 1];
	size_t n;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct arg_list *l = cls;

	if (l->n >= ARRAY_SIZE(l->a))
		return MHD_NO;
	l->a[l->n++] = (struct http_arg){.key = key, .value = value};
	return MHD_YES;
}

static enum MHD_Result handle_profile(struct http_server *h, struct MHD_Connection *conn,
				      const struct http_parsed *req,
				      const struct access_decision *access, void **req_cls)
{
	const union MHD_ConnectionInfo *fdi;
	struct http_request *r;
	const char *busy = NULL;
	size_t slot = ARRAY_SIZE(h->all), n_unpriv = 0, n_mine = 0;

	r = calloc(1, sizeof(*r));
	if (!r)
		return reply_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	r->h = h;
	r->conn = conn;
	r->seconds = req->seconds;
	r->pid = req->pid;
	r->access = *access;

	r->privileged = access->scope == ACCESS_ALL;
	r->uid = access->uid;
	fdi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = fdi ? fdi->connect_fd : -1;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < ARRAY_SIZE(h->all); i++) {
		if (!h->all[i]) {
			if (slot == ARRAY_SIZE(h->all))
				slot = i;
			continue;
		}
		if (!h->all[i]->privileged) {
			n_unpriv++;
			if (h->all[i]->uid == r->uid)
				n_mine++;
		}
	}
	if (slot == ARRAY_SIZE(h->all) || h->st.active_profiles >= h->limits.profiles)
		busy = "all profile slots are taken";
	else if (!r->privileged && n_unpriv >= h->limits.profiles - h->limits.profiles_reserved)
		busy = "the profile slots open to unprivileged users are all taken";
	else if (!r->privileged && n_mine >= h->limits.profiles_per_user)
		busy = "this user already has as many profile requests as allowed";
	if (busy) {
		h->st.refused_profiles++;
	} else {
		h->all[slot] = r;
		r->counted = true;
		h->st.active_profiles++;
		h->st.profile_requests++;
		if (access->scope == ACCESS_OWN)
			h->st.own_profiles++;
	}
	pthread_mutex_unlock(&h->lock);
	if (busy) {
		char who[32];

		if (r->privileged)
			snprintf(who, sizeof(who), "a privileged caller");
		else
			snprintf(who, sizeof(who), "uid %u", (unsigned)r->uid);
		log_limit(h, &h->quota_rl,
			  "refused a profile request of %s: %s (%u at once in all, %u per "
			  "unprivileged user, %u kept for privileged callers).",
			  who, busy, h->limits.profiles, h->limits.profiles_per_user,
			  h->limits.profiles_reserved);
		free(r);
		return reply_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "too many profile requests at once: %s (at most %u per user); "
				  "try again when one has finished\n",
				  busy, h->limits.profiles_per_user);
	}

	*req_cls = r;
	/* Suspend first: the main thread may resume as soon as the request is in the queue. */
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		r->state = REQ_DONE;
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(r->message, sizeof(r->message), "profd is shutting down");
	} else {
		r->state = REQ_QUEUED;
		if (h->queue_tail)
			h->queue_tail->next = r;
		else
			h->queue_head = r;
		h->queue_tail = r;
	}
	pthread_mutex_unlock(&h->lock);
	if (r->state == REQ_DONE)
		MHD_resume_connection(conn);
	return MHD_YES;
}

static void uncount(struct http_server *h, struct http_request *r)
{
	/* Under h->lock. */
	if (!r->counted)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(h->all); i++)
		if (h->all[i] == r)
			h->all[i] = NULL;
	h->st.active_profiles--;
	r->counted = false;
}

static enum MHD_Result handle_resumed(struct http_server *h, struct MHD_Connection *conn,
				      struct http_request *r)
{
	void *body;
	size_t len;
	unsigned status;

	pthread_mutex_lock(&h->lock);
	if (r->state != REQ_DONE) {
		pthread_mutex_unlock(&h->lock);
		return MHD_YES; /* spurious call: still waiting */
	}
	r->state = REQ_SENT;
	body = TAKE_PTR(r->body);
	len = r->len;
	status = r->status;
	uncount(h, r);
	pthread_mutex_unlock(&h->lock);

	if (body)
		return reply(h, conn, status, "application/octet-stream", body, len, true);
	return reply_text(h, conn, status, "%s\n", r->message);
}

/* The TLS client certificate, checked once per connection against tls_client_ca. */
static void check_client_cert(struct MHD_Connection *conn, struct conn_ctx *c)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t tls;
	unsigned int status = ~0u, n = 0;

	if (c->tls_checked)
		return;
	c->tls_checked = true;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	tls = (gnutls_session_t)ci->tls_session;
	/* No certificate at all is not an error of verify_peers2: ask for one explicitly. */
	if (!gnutls_certificate_get_peers(tls, &n) || n == 0)
		return;
	/* Signed by tls_client_ca, in date, and meant for TLS clients (a server certificate of the
	 * same CA is not a client credential). */
	gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
					 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
	if (gnutls_certificate_verify_peers(tls, &purpose, 1, &status) == GNUTLS_E_SUCCESS &&
	    status == 0)
		c->peer.cert_verified = true;
}

static void log_refused(struct http_server *h, const char *url, const struct access_peer *p,
			const struct access_decision *d)
{
	size_t n = strlen(d->reason);
	bool ok;

	pthread_mutex_lock(&h->lock);
	ok = log_ratelimit_ok(&h->refused_rl);
	pthread_mutex_unlock(&h->lock);
	if (!ok)
		return;
	log_notice("HTTP: refused %.64s to %s (%u): %.*s", url, p->addr, d->status,
		   (int)(n && d->reason[n - 1] == '\n' ? n - 1 : n), d->reason);
}

static enum MHD_Result reply_refused(struct http_server *h, struct MHD_Connection *conn,
				     const struct access_decision *d)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(d->reason), (void *)d->reason,
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (d->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"profd\"");
	pthread_mutex_lock(&h->lock);
	h->st.refused++;
	h->st.client_errors++;
	pthread_mutex_unlock(&h->lock);
	ret = MHD_queue_response(conn, d->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **req_cls)
{
	static const struct conn_ctx unknown = {.peer = {.addr = "unidentified caller"}};
	struct http_server *h = cls;
	struct arg_list args = {};
	struct http_parsed req;
	struct access_decision ad;
	struct access_peer peer;
	const union MHD_ConnectionInfo *ci;
	const struct conn_ctx *cc = &unknown;
	const char *auth, *tok;
	enum access_what what;
	size_t tok_len;
	char *text = NULL;
	size_t len = 0;
	unsigned status;

	if (*req_cls)
		return handle_resumed(h, conn, *req_cls);

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	pthread_mutex_lock(&h->lock);
	h->st.requests++;
	/* The headers are in: the header deadline no longer applies to this request. */
	if (ci && ci->socket_context)
		((struct conn_ctx *)ci->socket_context)->headers_done = true;
	pthread_mutex_unlock(&h->lock);

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
	status = http_parse_request(method, url, args.a, args.n, &req);
	if (status != MHD_HTTP_OK)
		return reply_text(h, conn, status, "%s", req.error);

	/* Who is asking: the connection's identity, plus this request's credentials. */
	if (ci && ci->socket_context && ((struct conn_ctx *)ci->socket_context)->identified) {
		struct conn_ctx *c = ci->socket_context;

		if (h->policy.client_ca_configured)
			check_client_cert(conn, c);
		cc = c;
	}
	peer = cc->peer;
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth) {
		peer.token_given = true;
		peer.token_ok = h->token && access_parse_bearer(auth, &tok, &tok_len) == 0 &&
				access_token_equal(tok, tok_len, h->token, h->token_len);
	}
	what = req.route == HTTP_ROUTE_PROFILE	   ? ACCESS_PROFILE
	       : req.route == HTTP_ROUTE_METRICS ? ACCESS_METRICS
						 : ACCESS_INDEX;
	access_decide(&h->policy, &peer, what, access_perf_event_paranoid(), &ad);
	if (ad.scope == ACCESS_DENY) {
		log_refused(h, url, &peer, &ad);
		return reply_refused(h, conn, &ad);
	}

	switch (req.route) {
	case HTTP_ROUTE_PROFILE:
		return handle_profile(h, conn, &req, &ad, req_cls);
	case HTTP_ROUTE_METRICS:
		if (h->metrics(h->userdata, &text, &len) < 0)
			return reply_text(h, conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					  "metrics unavailable\n");
		return reply(h, conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
			     len, true);
	case HTTP_ROUTE_INDEX:
		break;
	}
	return reply_text(h, conn, MHD_HTTP_OK,
			  "profd %s\n"
			  "/debug/pprof/profile?seconds=N[&pid=P]  CPU profile of the next N "
			  "seconds (pprof, gzipped)\n"
			  "/metrics                                Prometheus metrics\n"
			  "Access: root, group %s%s%s%s; see profd(1), ACCESS CONTROL.\n",
			  PROFD_VERSION, h->policy.group_set ? h->policy.group_name : "(none)",
			  h->policy.own_processes ? ", any local user for their own processes" : "",
			  h->policy.client_ca_configured ? ", client certificates" : "",
			  h->token ? ", the bearer token" : "");
}

/* Whose connection cap a connection counts in: its uid, else its address without the port. */
static void conn_key(const struct access_peer *p, char *buf, size_t size)
{
	char *colon;

	if (p->uid_known) {
		snprintf(buf, size, "uid %u", (unsigned)p->uid);
		return;
	}
	snprintf(buf, size, "%s", p->addr);
	colon = strrchr(buf, ':');
	if (colon && colon != buf)
		*colon = '\0';
}

/*
 * Under h->lock: admit connection c or say why not. Privileged callers may use every slot,
 * the others all but the reserved ones and at most connections_per_user each.
 */
static const char *conn_admit(struct http_server *h, struct conn_ctx *c)
{
	unsigned mine = 0;

	if (h->n_conns >= h->limits.connections)
		return "all connection slots are taken";
	if (!c->privileged) {
		if (h->n_conns_unpriv >= h->limits.connections - h->limits.connections_reserved)
			return "the connection slots open to unprivileged callers are all taken";
		for (struct conn_ctx *o = h->conns; o; o = o->next)
			if (!o->privileged && !strcmp(o->key, c->key))
				mine++;
		if (mine >= h->limits.connections_per_user)
			return "this caller already has as many connections as allowed";
	}
	c->admitted = true;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	if (!c->privileged)
		h->n_conns_unpriv++;
	c->deadline_ns = mono_ns() + h->limits.header_timeout_s * 1000000000ull;
	return NULL;
}

static void conn_release(struct http_server *h, struct conn_ctx *c)
{
	/* Under h->lock. */
	if (!c->admitted)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->n_conns--;
	if (!c->privileged)
		h->n_conns_unpriv--;
	c->admitted = false;
}

/*
 * MHD_NotifyConnectionCallback: identify each connection once, when it is accepted, and admit
 * it or shut it down at once (MHD then sees the end of the stream and closes it). MHD calls
 * NOTIFY_CLOSED before it closes the socket, so under h->lock c->fd is always still open.
 */
static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *h = cls;
	const union MHD_ConnectionInfo *fdi, *ai;
	struct conn_ctx *c;
	const char *why;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		c = *socket_context;
		if (c) {
			pthread_mutex_lock(&h->lock);
			conn_release(h, c);
			pthread_mutex_unlock(&h->lock);
		}
		free(c);
		*socket_context = NULL;
		return;
	}
	fdi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	c = calloc(1, sizeof(*c));
	if (!c || !fdi) {
		/* Cannot be accounted for: not served. */
		if (fdi)
			(void)shutdown(fdi->connect_fd, SHUT_RDWR);
		free(c);
		return;
	}
	c->fd = fdi->connect_fd;
	ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (access_identify(fdi->connect_fd, ai ? ai->client_addr : NULL,
			    ai && ai->client_addr ? sizeof(struct sockaddr_storage) : 0,
			    &c->peer) >= 0)
		c->identified = true;
	else
		snprintf(c->peer.addr, sizeof(c->peer.addr), "unidentified caller");
	c->privileged = c->identified && access_peer_privileged(&h->policy, &c->peer);
	conn_key(&c->peer, c->key, sizeof(c->key));
	*socket_context = c;

	pthread_mutex_lock(&h->lock);
	why = conn_admit(h, c);
	if (why) {
		c->cut = true;
		h->st.refused_connections++;
	}
	pthread_mutex_unlock(&h->lock);
	if (why) {
		(void)shutdown(c->fd, SHUT_RDWR);
		log_limit(h, &h->conn_rl,
			  "closed a connection of %s at once: %s (%u in all, %u per unprivileged "
			  "caller, %u kept for privileged callers).",
			  c->peer.addr, why, h->limits.connections, h->limits.connections_per_user,
			  h->limits.connections_reserved);
	}
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct http_server *h = cls;
	struct http_request *r = *req_cls;
	const union MHD_ConnectionInfo *ci;

	/* The next request on this connection has its own header deadline. */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	pthread_mutex_lock(&h->lock);
	if (ci && ci->socket_context) {
		struct conn_ctx *c = ci->socket_context;

		c->headers_done = false;
		c->deadline_ns = mono_ns() + h->limits.header_timeout_s * 1000000000ull;
	}
	if (r)
		uncount(h, r);
	pthread_mutex_unlock(&h->lock);
	if (!r)
		return;
	free(r->body);
	free(r);
	*req_cls = NULL;
}

/*
 * The watch thread, every HTTP_WATCH_MS: connections whose request headers are not complete by
 * their deadline are shut down (MHD's own timeout is per read, so a header line now and then
 * would keep it off), and requests waiting for their profile whose client went away (the peer
 * closed or reset: POLLRDHUP, POLLHUP, POLLERR) are cancelled and their slots freed.
 */
static void *watch_thread(void *arg)
{
	struct http_server *h = arg;
	struct http_request *resume = NULL, *r;
	struct pollfd pf[HTTP_PROFILES_MAX];
	struct http_request *pr[HTTP_PROFILES_MAX];
	struct timespec ts;
	unsigned cut, gone;

	pthread_mutex_lock(&h->lock);
	while (!h->watch_stop) {
		uint64_t now = mono_ns();
		size_t n = 0;

		cut = gone = 0;
		for (struct conn_ctx *c = h->conns; c; c = c->next)
			if (!c->headers_done && !c->cut && now >= c->deadline_ns) {
				(void)shutdown(c->fd, SHUT_RDWR);
				c->cut = true;
				h->st.header_timeouts++;
				cut++;
			}
		for (size_t i = 0; i < ARRAY_SIZE(h->all); i++) {
			r = h->all[i];
			if (!r || r->fd < 0 || (r->state != REQ_QUEUED && r->state != REQ_TAKEN))
				continue;
			pf[n] = (struct pollfd){.fd = r->fd, .events = POLLRDHUP};
			pr[n++] = r;
		}
		if (n && poll(pf, n, 0) > 0) {
			for (size_t i = 0; i < n; i++) {
				if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
					continue;
				r = pr[i];
				r->cancelled = true;
				uncount(h, r);
				h->st.cancelled++;
				gone++;
				if (r->state != REQ_QUEUED)
					continue; /* the main thread finishes it */
				/* Not taken yet: out of the queue, answered (to nobody) here. */
				for (struct http_request **p = &h->queue_head; *p; p = &(*p)->next)
					if (*p == r) {
						*p = r->next;
						break;
					}
				h->queue_tail = NULL;
				for (struct http_request *q = h->queue_head; q; q = q->next)
					h->queue_tail = q;
				r->state = REQ_DONE;
				r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
				snprintf(r->message, sizeof(r->message), "the client went away");
				r->next = resume;
				resume = r;
			}
		}
		pthread_mutex_unlock(&h->lock);
		while ((r = resume)) {
			resume = r->next;
			r->next = NULL;
			MHD_resume_connection(r->conn);
		}
		if (cut)
			log_limit(h, &h->header_rl,
				  "closed %u connection%s whose request headers were not complete "
				  "within %u s (http_header_timeout).",
				  cut, cut == 1 ? "" : "s", h->limits.header_timeout_s);
		if (gone)
			log_debug("HTTP: %u profile request%s cancelled: the client went away.",
				  gone, gone == 1 ? "" : "s");
		pthread_mutex_lock(&h->lock);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += HTTP_WATCH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!h->watch_stop)
			(void)pthread_cond_timedwait(&h->watch_cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/*
 * A listening unix socket at l->path, never reachable while more open than asked: bound, given
 * its group and mode and made to listen in a fresh 0700 directory beside it, then renamed onto
 * the path (which replaces a stale socket, or a symlink, without following it). fchown and
 * fchmod of the socket's fd would not do: Linux applies them to the socket's own inode, not to
 * the file bind() made, whose owner and mode are what connect() checks.
 */
static int unix_listen(struct listener *l, const struct http_options *o, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t mode = o->policy.own_processes ? 0666 : 0660;
	_cleanup_close_ int fd = -1, tfd = -1;
	_cleanup_free_ char *copy = strdup(l->path), *tmp = NULL;
	const char *dir;
	struct stat st;
	int r;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (strlen(l->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* Outside systemd nobody made the RuntimeDirectory: make the socket's directory. */
	if (strcmp(dir, "/") && stat(dir, &st) < 0 && errno == ENOENT) {
		r = mkdir_p(dir, 0755);
		if (r < 0)
			log_warning_errno(r, "Cannot create %s: %m", dir);
	}
	if (stat(dir, &st) < 0)
		return log_error_errno(-errno, "Cannot use %s for the socket %s: %m", dir, l->path);
	/* Whoever may write there could replace the socket with their own. */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))) {
		log_error(
		    "The directory of the socket %s, %s, belongs to uid %u with mode %04o: other "
		    "users could replace the socket. Put it in a directory of root's that "
		    "only root may write (e.g. /run/profd), or chmod go-w %s.",
		    l->path, dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	if (lstat(l->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_error(
		    "%s exists and is not a socket (%s): not replacing it. Remove it or choose "
		    "another path in listen.",
		    l->path, S_ISLNK(st.st_mode) ? "a symbolic link" : "another kind of file");
		return -EEXIST;
	}
	if (asprintf(&tmp, "%s/.profd-listen.XXXXXX", dir) < 0)
		return -ENOMEM;
	if (!mkdtemp(tmp)) /* 0700: nobody else may reach what is in it */
		return log_error_errno(-errno, "Cannot create a directory beside %s: %m", l->path);
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0) {
		r = -errno;
		goto fail;
	}
	/* bind() takes a path only; the fd's /proc path is short when the directory's is not. */
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", tmp) >= sizeof(sa.sun_path))
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/s", tfd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	if (o->policy.group_set &&
	    fchownat(tfd, "s", (uid_t)-1, o->policy.allow_gid, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		log_error("Cannot give %s to group %s: %s.", l->path, o->policy.group_name,
			  strerror(-r));
		goto fail;
	}
	if (fchmodat(tfd, "s", mode, 0) < 0 || fstatat(tfd, "s", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    listen(fd, 64) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISSOCK(st.st_mode)) {
		r = -EIO;
		goto fail;
	}
	if (renameat(tfd, "s", AT_FDCWD, l->path) < 0) {
		r = -errno;
		goto fail;
	}
	(void)rmdir(tmp);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	*ret_fd = TAKE_FD(fd);
	return 0;
fail:
	if (tfd >= 0)
		(void)unlinkat(tfd, "s", 0);
	(void)rmdir(tmp);
	return r;
}

static void listener_close(struct listener *l)
{
	struct stat st;

	/* Quiesce first: MHD then hands the listening socket back instead of closing it. */
	if (l->mhd && l->inherited)
		(void)MHD_quiesce_daemon(l->mhd);
	if (l->mhd)
		MHD_stop_daemon(l->mhd);
	l->mhd = NULL;
	/* Unlink the socket file only if it is still ours (a new server may have replaced it). */
	if (l->is_unix && l->ino && stat(l->path, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		(void)unlink(l->path);
	l->ino = 0;
}

static int listener_open(struct http_server *h, struct listener *l,
			 const struct daemon_listener *dl, const struct http_options *o)
{
	struct sockaddr_storage ss = {};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	unsigned port = dl->port;
	int fd = -1, r;

#define OPT(o_, v_, p_) (opts[n++] = (struct MHD_OptionItem){(o_), (intptr_t)(v_), (p_)})
	/* The logger first, so MHD never logs through its own default logger. */
	OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h);
	/* Above our own cap (conn_admit(), over every listener), so that MHD keeps accepting and we
	 * decide: a caller over its cap is closed at once instead of queued in the backlog. */
	OPT(MHD_OPTION_CONNECTION_LIMIT, h->limits.connections + 16, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, completed, h);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h);
	if (dl->is_unix) {
		l->is_unix = true;
		snprintf(l->path, sizeof(l->path), "%s", dl->path);
		for (size_t i = 0; i < o->n_inherited && fd < 0; i++)
			if (sd_is_socket_unix(o->inherited_fds[i], SOCK_STREAM, 1, dl->path, 0) > 0)
				fd = o->inherited_fds[i];
		if (fd >= 0) {
			l->inherited = true;
			flags |= MHD_USE_ITC;
		} else {
			r = unix_listen(l, o, &fd);
			if (r < 0)
				return r;
		}
		OPT(MHD_OPTION_LISTEN_SOCKET, fd, NULL);
	} else {
		if (strchr(dl->host, ':')) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			a->sin6_family = AF_INET6;
			a->sin6_port = htons(port);
			if (inet_pton(AF_INET6, dl->host, &a->sin6_addr) != 1)
				return -EINVAL;
			flags |= MHD_USE_IPv6;
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			a->sin_family = AF_INET;
			a->sin_port = htons(port);
			if (inet_pton(AF_INET, dl->host, &a->sin_addr) != 1)
				return -EINVAL;
		}
		OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
		OPT(MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL);
		if (o->tls_cert && o->tls_key) {
			l->tls = true;
			flags |= MHD_USE_TLS;
			OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert);
			OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key);
			/* Makes MHD ask every client for a certificate (not require one). */
			if (o->tls_client_ca)
				OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)o->tls_client_ca);
		}
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	errno = 0;
	l->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, h,
				  MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!l->mhd) {
		r = errno ? -errno : -EADDRINUSE;
		if (fd >= 0 && !l->inherited)
			close(fd);
		listener_close(l);
		return r;
	}
	if (dl->is_unix)
		return 0;
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info && info->port)
		port = info->port;
	r = strlen(h->address);
	snprintf(h->address + r, sizeof(h->address) - r,
		 ss.ss_family == AF_INET6 ? "%s%s[%s]:%u" : "%s%s%s:%u", r ? "," : "",
		 l->tls ? "https://" : "", dl->host, port);
	return 0;
}

int http_server_new(const struct http_options *o, struct http_server **ret)
{
	struct daemon_listener dl[DAEMON_LISTEN_MAX];
	struct http_server *h;
	pthread_condattr_t ca;
	char err[256];
	size_t n;
	int r;

	r = daemon_parse_listeners(o->listen, dl, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -EINVAL;
	if (!o->tls_cert != !o->tls_key || (o->tls_client_ca && !o->tls_cert))
		return -EINVAL;
	if (http_limits_check(&o->limits, err, sizeof(err)) < 0) {
		log_error("HTTP limits: %s.", err);
		return -EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->limits = o->limits;
	limits_defaults(&h->limits);
	h->metrics = o->metrics;
	h->userdata = o->userdata;
	h->policy = o->policy;
	h->policy.client_ca_configured = o->tls_client_ca != NULL;
	h->policy.token_configured = o->token != NULL;
	if (o->token) {
		h->token = malloc(o->token_len + 1);
		if (!h->token) {
			free(h);
			return -ENOMEM;
		}
		memcpy(h->token, o->token, o->token_len);
		h->token[o->token_len] = '\0';
		h->token_len = o->token_len;
	}
	h->log_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 10);
	h->refused_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 10);
	h->quota_rl = h->conn_rl = h->header_rl = h->refused_rl;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->watch_cond, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < n; i++) {
		r = listener_open(h, &h->listeners[i], &dl[i], o);
		if (r < 0) {
			if (dl[i].is_unix)
				log_error_errno(r, "Cannot listen on unix:%s: %m", dl[i].path);
			else
				log_error_errno(r, "Cannot listen on %s:%u: %m", dl[i].host, dl[i].port);
			http_server_free(h);
			return r;
		}
		h->n_listeners++;
		if (dl[i].is_unix) {
			size_t k = strlen(h->address);

			snprintf(h->address + k, sizeof(h->address) - k, "%sunix:%s%s", k ? "," : "",
				 dl[i].path, h->listeners[i].inherited ? " (from systemd)" : "");
		}
	}
	r = -pthread_create(&h->watch, NULL, watch_thread, h);
	if (r < 0) {
		http_server_free(h);
		return r;
	}
	h->watch_started = true;
	*ret = h;
	return 0;
}

void http_server_free(struct http_server *h)
{
	struct http_request *r, *waiting;

	if (!h)
		return;
	if (h->watch_started) {
		pthread_mutex_lock(&h->lock);
		h->watch_stop = true;
		pthread_cond_signal(&h->watch_cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->watch, NULL);
	}
	/* Everything still waiting gets an answer; MHD must not be stopped with suspended ones. */
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	waiting = h->queue_head;
	h->queue_head = h->queue_tail = NULL;
	for (r = waiting; r; r = r->next) {
		r->state = REQ_DONE;
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(r->message, sizeof(r->message), "profd is shutting down");
	}
	pthread_mutex_unlock(&h->lock);
	/* Outside our lock (MHD calls back into code taking it); suspended requests stay valid. */
	while ((r = waiting)) {
		waiting = r->next;
		r->next = NULL;
		MHD_resume_connection(r->conn);
	}
	for (int i = 0; i < 50; i++) {
		unsigned active;

		pthread_mutex_lock(&h->lock);
		active = h->st.active_profiles;
		pthread_mutex_unlock(&h->lock);
		if (active == 0)
			break;
		usleep(10000);
	}
	for (size_t i = 0; i < h->n_listeners; i++)
		listener_close(&h->listeners[i]);
	pthread_cond_destroy(&h->watch_cond);
	pthread_mutex_destroy(&h->lock);
	if (h->token)
		explicit_bzero(h->token, h->token_len);
	free(h->token);
	free(h);
}

const char *http_server_address(const struct http_server *h)
{
	return h->address;
}

struct http_request *http_server_next(struct http_server *h)
{
	struct http_request *r;

	pthread_mutex_lock(&h->lock);
	r = h->queue_head;
	if (r) {
		h->queue_head = r->next;
		if (!h->queue_head)
			h->queue_tail = NULL;
		r->next = NULL;
		r->state = REQ_TAKEN;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

unsigned http_request_seconds(const struct http_request *r)
{
	return r->seconds;
}

uint32_t http_request_pid(const struct http_request *r)
{
	return r->pid;
}

const struct access_decision *http_request_access(const struct http_request *r)
{
	return &r->access;
}

bool http_request_cancelled(const struct http_request *r)
{
	bool c;

	pthread_mutex_lock(&r->h->lock);
	c = r->cancelled;
	pthread_mutex_unlock(&r->h->lock);
	return c;
}

void http_request_finish(struct http_request *r, unsigned status, void *body, size_t len,
			 const char *message)
{
	struct http_server *h = r->h;

	pthread_mutex_lock(&h->lock);
	r->status = status;
	r->body = body;
	r->len = len;
	snprintf(r->message, sizeof(r->message), "%s", message ? message : "");
	r->state = REQ_DONE;
	pthread_mutex_unlock(&h->lock);
	/* A suspended connection cannot complete, so r is still valid here. */
	MHD_resume_connection(r->conn);
}

void http_server_stats(struct http_server *h, struct http_stats *ret)
{
	pthread_mutex_lock(&h->lock);
	*ret = h->st;
	pthread_mutex_unlock(&h->lock);
}
