// SPDX-License-Identifier: MIT
/*
 * http_parse_request(): what the daemon's HTTP endpoint makes of a request's method, path and
 * query arguments (service/http.h), without a socket. Input framing in fuzz-common.h.
 *
 * Checked against an independent reading of the documented rules: the status is one of 200,
 * 400, 404, 405; a method other than GET is 405, an unknown path 404; on the profile path the
 * request is accepted exactly when `seconds` and `pid` are each absent or given once as plain
 * decimal numbers in range, with at most HTTP_MAX_ARGS arguments, and then the parsed numbers
 * are the given ones (defaults otherwise); an error answer is one terminated line of text.
 */
#include <limits.h>

#include "service/http.h"
#include "tests/fuzz/fuzz-common.h"

#define MAX_SPLIT (HTTP_MAX_ARGS + 8)

/* The reference: a plain decimal number in [min, max], or -1. */
static long long ref_number(const char *v, unsigned long long min, unsigned long long max)
{
	unsigned long long n = 0;

	if (!v || !*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		n = n * 10 + (unsigned long long)(*v - '0');
		if (n > max)
			return -1;
	}
	return n < min ? -1 : (long long)n;
}

/* The value of key: -2 when absent, -1 when bad (twice, no value, not a number in range). */
static long long ref_arg(const struct http_arg *a, size_t n, const char *key,
			 unsigned long long min, unsigned long long max)
{
	long long v = -2;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(a[i].key, key))
			continue;
		if (v != -2)
			return -1;
		v = ref_number(a[i].value, min, max);
		if (v < 0)
			return -1;
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *method, *path, *query;
	struct http_arg args[MAX_SPLIT];
	struct http_parsed req;
	size_t n = 0;
	unsigned status;
	long long seconds, pid;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* "METHOD PATH[?QUERY]": arguments split at '&', keys and values at the first '='. */
	method = buf;
	path = strchr(buf, ' ');
	if (path)
		*path++ = '\0';
	query = path ? strchr(path, '?') : NULL;
	if (query)
		*query++ = '\0';
	for (char *a = query; a && n < MAX_SPLIT;) {
		char *amp = strchr(a, '&'), *eq;

		if (amp)
			*amp = '\0';
		eq = strchr(a, '=');
		if (eq)
			*eq = '\0';
		args[n++] = (struct http_arg){.key = a, .value = eq ? eq + 1 : NULL};
		a = amp ? amp + 1 : NULL;
	}

	status = http_parse_request(method, path, args, n, &req);
	FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 405);
	if (status != 200) {
		size_t len = strnlen(req.error, sizeof(req.error));

		FUZZ_CHECK(len > 1 && len < sizeof(req.error));
		FUZZ_CHECK(req.error[len - 1] == '\n' && !memchr(req.error, '\n', len - 1));
	}
	if (!path) {
		FUZZ_CHECK(status == 400);
		goto out;
	}
	if (strcmp(method, "GET")) {
		FUZZ_CHECK(status == 405);
		goto out;
	}
	if (!strcmp(path, "/") || !strcmp(path, "/metrics")) {
		FUZZ_CHECK(status == 200);
		FUZZ_CHECK(req.route == (path[1] ? HTTP_ROUTE_METRICS : HTTP_ROUTE_INDEX));
		goto out;
	}
	if (strcmp(path, "/debug/pprof/profile")) {
		FUZZ_CHECK(status == 404);
		goto out;
	}
	seconds = ref_arg(args, n, "seconds", 1, HTTP_PROFILE_SECONDS_MAX);
	pid = ref_arg(args, n, "pid", 1, INT_MAX);
	if (n > HTTP_MAX_ARGS || seconds == -1 || pid == -1) {
		FUZZ_CHECK(status == 400);
		goto out;
	}
	FUZZ_CHECK(status == 200 && req.route == HTTP_ROUTE_PROFILE);
	FUZZ_CHECK(req.seconds == (seconds == -2 ? HTTP_PROFILE_SECONDS_DEFAULT : seconds));
	FUZZ_CHECK(req.pid == (pid == -2 ? 0 : pid));
out:
	free(buf);
	return 0;
}
