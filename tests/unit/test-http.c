// SPDX-License-Identifier: MIT
/*
 * The daemon's HTTP endpoint: http_parse_request() on every kind of malformed request (pure, no
 * socket), then the server on a loopback port with requests written byte for byte, so what
 * libmicrohttpd hands the parser (duplicate keys, keys without '=', garbage request lines) is
 * covered too, and the default configuration's listen address.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "service/config.h"
#include "service/http.h"

#define PROFILE "/debug/pprof/profile"
#define A(k, v) ((struct http_arg){.key = (k), .value = (v)})

static unsigned parse(const char *method, const char *path, const struct http_arg *args, size_t n,
		      struct http_parsed *ret)
{
	struct http_parsed scratch;
	unsigned status = http_parse_request(method, path, args, n, ret ? ret : &scratch);
	const struct http_parsed *p = ret ? ret : &scratch;

	if (status != 200) {
		size_t len = strnlen(p->error, sizeof(p->error));

		/* An error answer is one line of text. */
		cr_assert(len > 1 && len < sizeof(p->error), "status %u: empty message", status);
		cr_assert_eq(p->error[len - 1], '\n', "%s", p->error);
		cr_assert_null(memchr(p->error, '\n', len - 1), "%s", p->error);
	}
	return status;
}

/* GET PROFILE?key=value: the status. */
static unsigned profile_with(const char *key, const char *value)
{
	struct http_arg a = A(key, value);

	return parse("GET", PROFILE, &a, 1, NULL);
}

TestSuite(http_parse);

Test(http_parse, profile_defaults_and_values)
{
	struct http_parsed p;
	struct http_arg args[] = {A("seconds", "10"), A("pid", "4242")};

	cr_assert_eq(parse("GET", PROFILE, NULL, 0, &p), 200);
	cr_assert_eq(p.route, HTTP_ROUTE_PROFILE);
	cr_assert_eq(p.seconds, HTTP_PROFILE_SECONDS_DEFAULT);
	cr_assert_eq(p.pid, 0);

	cr_assert_eq(parse("GET", PROFILE, args, 2, &p), 200);
	cr_assert_eq(p.seconds, 10);
	cr_assert_eq(p.pid, 4242);

	/* The bounds themselves are fine; leading zeros are still decimal. */
	args[0] = A("seconds", "1");
	args[1] = A("pid", "2147483647");
	cr_assert_eq(parse("GET", PROFILE, args, 2, &p), 200);
	cr_assert_eq(p.seconds, 1);
	cr_assert_eq(p.pid, INT_MAX);
	args[0] = A("seconds", "300");
	args[1] = A("pid", "0001");
	cr_assert_eq(parse("GET", PROFILE, args, 2, &p), 200);
	cr_assert_eq(p.seconds, HTTP_PROFILE_SECONDS_MAX);
	cr_assert_eq(p.pid, 1);
}

Test(http_parse, bad_seconds_are_400)
{
	static const char *const bad[] = {
	    "",
	    "x",
	    "-1",
	    "+5",
	    " 5",
	    "5 ",
	    "5x",
	    "0x10",
	    "1e3",
	    "1.5",
	    "0",
	    "301",
	    "00",
	    "4294967297",			/* 2^32 + 1: 1 if cut to 32 bits */
	    "18446744073709551616",		/* 2^64: 0 if wrapped */
	    "99999999999999999999999999999999", /* ERANGE */
	    "-18446744073709551615",		/* strtoul would take it as 1 */
	    "\t3",
	    "3\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(profile_with("seconds", bad[i]), 400, "seconds=\"%s\"", bad[i]);
	/* "?seconds" without '=': no value is not the default. */
	cr_expect_eq(profile_with("seconds", NULL), 400);
}

Test(http_parse, bad_pid_is_400)
{
	static const char *const bad[] = {
	    "",		  "abc",
	    "0",	  "-1",
	    "+1",	  "1 ",
	    "12a",	  "2147483648", /* INT_MAX + 1 */
	    "4294967297", "18446744073709551617",
	    "0x1",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(profile_with("pid", bad[i]), 400, "pid=\"%s\"", bad[i]);
	cr_expect_eq(profile_with("pid", NULL), 400);
}

Test(http_parse, duplicate_keys_are_400)
{
	struct http_arg same[] = {A("seconds", "5"), A("seconds", "5")};
	struct http_arg differ[] = {A("seconds", "5"), A("pid", "1"), A("seconds", "6")};
	struct http_arg pids[] = {A("pid", "1"), A("pid", "2")};
	struct http_arg bad_then_good[] = {A("seconds", "x"), A("seconds", "5")};

	cr_expect_eq(parse("GET", PROFILE, same, ARRAY_SIZE(same), NULL), 400);
	cr_expect_eq(parse("GET", PROFILE, differ, ARRAY_SIZE(differ), NULL), 400);
	cr_expect_eq(parse("GET", PROFILE, pids, ARRAY_SIZE(pids), NULL), 400);
	cr_expect_eq(parse("GET", PROFILE, bad_then_good, ARRAY_SIZE(bad_then_good), NULL), 400);
}

Test(http_parse, unknown_and_too_many_arguments)
{
	struct http_arg args[HTTP_MAX_ARGS + 1];
	struct http_parsed p;

	/* As Go's net/http/pprof: unknown arguments are ignored (clients send debug=, gc=). */
	args[0] = A("debug", "1");
	args[1] = A("gc", NULL);
	args[2] = A("", "");
	args[3] = A("seconds", "7");
	cr_assert_eq(parse("GET", PROFILE, args, 4, &p), 200);
	cr_assert_eq(p.seconds, 7);

	for (size_t i = 0; i < ARRAY_SIZE(args); i++)
		args[i] = A("x", "1");
	cr_expect_eq(parse("GET", PROFILE, args, HTTP_MAX_ARGS, NULL), 200);
	cr_expect_eq(parse("GET", PROFILE, args, HTTP_MAX_ARGS + 1, NULL), 400);
}

Test(http_parse, paths_and_methods)
{
	static const char *const unknown[] = {
	    "/debug/pprof/heap", "/debug/pprof/profile/",
	    "/debug/pprof",	 "",
	    "//metrics",	 "/METRICS",
	    "/metrics/",	 "metrics",
	    "/index.html",
	};
	static const char *const methods[] = {"POST", "PUT", "DELETE", "HEAD", "get", "", "GET "};
	struct http_arg bad = A("seconds", "nope");
	struct http_parsed p;

	cr_assert_eq(parse("GET", "/", NULL, 0, &p), 200);
	cr_assert_eq(p.route, HTTP_ROUTE_INDEX);
	/* Other paths do not look at the arguments. */
	cr_assert_eq(parse("GET", "/metrics", &bad, 1, &p), 200);
	cr_assert_eq(p.route, HTTP_ROUTE_METRICS);
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		cr_expect_eq(parse("GET", unknown[i], NULL, 0, NULL), 404, "\"%s\"", unknown[i]);
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		cr_expect_eq(parse(methods[i], PROFILE, NULL, 0, NULL), 405, "\"%s\"", methods[i]);
		/* The method is checked first: a bad method on an unknown path is still 405. */
		cr_expect_eq(parse(methods[i], "/nope", NULL, 0, NULL), 405, "\"%s\"", methods[i]);
	}
	cr_expect_eq(parse(NULL, PROFILE, NULL, 0, NULL), 400);
	cr_expect_eq(parse("GET", NULL, NULL, 0, NULL), 400);
	cr_expect_eq(parse("GET", PROFILE, NULL, 1, NULL), 400);
}

Test(http_parse, default_listen_is_loopback)
{
	struct daemon_config c;
	char *host = NULL;
	unsigned port;

	daemon_config_init(&c);
	cr_assert_eq(daemon_parse_listen(c.listen, &host, &port), 0, "%s", c.listen);
	cr_expect_str_eq(host, "127.0.0.1");
	cr_expect_eq(port, 7632);
	free(host);
	daemon_config_done(&c);
}

/* ---- the server, over a loopback socket ------------------------------------------------------ */

static struct http_server *server;
static unsigned metrics_calls;

static int metrics(void *userdata, char **ret, size_t *ret_len)
{
	__atomic_add_fetch(&metrics_calls, 1, __ATOMIC_SEQ_CST);
	*ret = strdup("profd_up 1\n");
	if (!*ret)
		return -ENOMEM;
	*ret_len = strlen(*ret);
	return 0;
}

static void server_start(void)
{
	/* libmicrohttpd's own notes on the malformed requests below are warnings: expected. */
	log_set_max_level(LOG_LEVEL_ERROR);
	/* The suite runs as root: uid 0 is privileged under any policy (access.c's own tests). */
	struct http_options o = {.listen = "127.0.0.1:0", .metrics = metrics};

	cr_assert_eq(http_server_new(&o, &server), 0);
}

static void server_stop(void)
{
	http_server_free(server);
	server = NULL;
}

TestSuite(http_server, .init = server_start, .fini = server_stop, .timeout = 30);

static int connect_server(void)
{
	const char *addr = http_server_address(server);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(addr, ':');
	char host[64];
	int fd;

	cr_assert_not_null(colon, "%s", addr);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	cr_assert_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1, "%s", addr);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", addr,
		     strerror(errno));
	return fd;
}

/* Send `req` as is; the status of the answer (read until the server closes), 0 if none. */
static unsigned raw_request(const char *req, char *body, size_t body_size)
{
	char buf[8192];
	size_t n = 0;
	unsigned status = 0;
	int fd = connect_server();

	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t k;

		cr_assert_eq(poll(&pfd, 1, 10000), 1, "no answer to %s", req);
		k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %u", &status) != 1)
		status = 0;
	if (body) {
		const char *b = strstr(buf, "\r\n\r\n");

		snprintf(body, body_size, "%s", b ? b + 4 : "");
	}
	return status;
}

Test(http_server, binds_where_asked)
{
	cr_assert_eq(strncmp(http_server_address(server), "127.0.0.1:", 10), 0, "%s",
		     http_server_address(server));
}

/*
 * Status 0: libmicrohttpd closes the connection without an answer when the request line has
 * no blank at all (it cannot tell a method from a target); every request line it can split
 * gets a 4xx (or 505 for an unknown HTTP version).
 */
Test(http_server, malformed_requests_get_4xx)
{
	static const struct {
		const char *req;
		unsigned status;
	} cases[] = {
	    {"GARBAGE\r\n\r\n", 0},
	    {"GET\r\n\r\n", 0},
	    {"\x01\x02\x03\xff\r\n\r\n", 0},
	    {"GET /metrics\r\n\r\n", 400},
	    {"GET  HTTP/1.1\r\n\r\n", 400},
	    {"GET /metrics HTTP/1.1\r\nno colon in this header\r\n\r\n", 400},
	    {"GARBAGE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405},
	    {"GET /metrics HTTP/9.9\r\n\r\n", 505},
	    {"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404},
	    {"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	     405},
	    {"GET /debug/pprof/profile?seconds=abc HTTP/1.1\r\nHost: x\r\nConnection: "
	     "close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?seconds=1&seconds=1 HTTP/1.1\r\nHost: x\r\n"
	     "Connection: close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?seconds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?seconds=99999999999999999999 HTTP/1.1\r\nHost: x\r\n"
	     "Connection: close\r\n\r\n",
	     400},
	    {"GET /debug/pprof/profile?pid=-7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	     400},
	    /* Percent-decoded by libmicrohttpd before the parser sees it: "seconds=-1". */
	    {"GET /debug/pprof/profile?seconds=%2D1 HTTP/1.1\r\nHost: x\r\nConnection: "
	     "close\r\n\r\n",
	     400},
	};
	struct http_stats st;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(raw_request(cases[i].req, NULL, 0), cases[i].status, "%s",
			     cases[i].req);
	http_server_stats(server, &st);
	cr_expect_eq(st.profile_requests, 0);
	cr_expect_eq(st.active_profiles, 0);
	/* And the server still serves. */
	cr_expect_eq(
	    raw_request("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0),
	    200);
}

Test(http_server, metrics_and_a_profile_request)
{
	char body[256];
	struct http_request *r = NULL;
	int fd;

	cr_assert_eq(raw_request("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				 body, sizeof(body)),
		     200);
	cr_expect_str_eq(body, "profd_up 1\n");
	cr_expect_eq(__atomic_load_n(&metrics_calls, __ATOMIC_SEQ_CST), 1);

	/* A good profile request is queued for the main thread, then answered by it. */
	fd = connect_server();
	static const char req[] = "GET /debug/pprof/profile?pid=42&seconds=3&debug=1 HTTP/1.1\r\n"
				  "Host: x\r\nConnection: close\r\n\r\n";
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (int i = 0; i < 1000 && !(r = http_server_next(server)); i++)
		usleep(10000);
	cr_assert_not_null(r, "the request never reached the queue");
	cr_expect_eq(http_request_seconds(r), 3);
	cr_expect_eq(http_request_pid(r), 42);
	http_request_finish(r, 200, strdup("PROFILE"), 7, NULL);

	char buf[4096];
	size_t n = 0;
	ssize_t k;

	while ((k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	cr_expect(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	cr_expect_not_null(strstr(buf, "\r\n\r\nPROFILE"), "%s", buf);
}
