// SPDX-License-Identifier: MIT
/*
 * What the daemon reads from callers and its configuration for access control (service/access.h,
 * service/config.h): the Authorization header, the `listen` list, and the policy decision for
 * any combination of caller facts. The first input byte picks the part; the rest is its input.
 *
 * Contracts checked: a parsed bearer token lies inside the header, is 1..ACCESS_TOKEN_MAX
 * printable non-blank bytes and compares equal to itself and unequal to any other length;
 * listeners are at most DAEMON_LISTEN_MAX, unix paths absolute and NUL-terminated, ports
 * 0..65535; a decision grants ACCESS_ALL only to the index or a privileged caller (uid 0, a
 * member, a verified certificate, the token, or a local caller reading /metrics when it is open),
 * ACCESS_OWN only with own_processes for a caller of known uid and then for that uid, and every
 * denial is 401/403 with a one-line reason.
 */
#include <ctype.h>

#include "service/access.h"
#include "service/config.h"
#include "tests/fuzz/fuzz-common.h"

static int fuzz_in_group(uid_t uid, gid_t gid)
{
	return (uid ^ gid) % 3 == 0;
}

static void fuzz_bearer(const char *s, size_t size)
{
	const char *t;
	size_t n;

	if (access_parse_bearer(s, &t, &n) < 0)
		return;
	if (t < s || t + n > s + size || n == 0 || n > ACCESS_TOKEN_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (t[i] <= 0x20 || t[i] >= 0x7f)
			abort();
	if (!access_token_equal(t, n, t, n) || access_token_equal(t, n - 1, t, n) ||
	    access_token_equal(t, n, t, n - 1))
		abort();
}

static void fuzz_listen(const char *s)
{
	struct daemon_listener l[DAEMON_LISTEN_MAX];
	size_t n = 99;

	if (daemon_parse_listeners(s, l, &n) < 0)
		return;
	if (n > DAEMON_LISTEN_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (l[i].is_unix && (l[i].path[0] != '/' || !memchr(l[i].path, 0, sizeof(l[i].path))))
			abort();
		if (!l[i].is_unix && (l[i].port > 65535 || !memchr(l[i].host, 0, sizeof(l[i].host))))
			abort();
	}
}

static void fuzz_decide(const uint8_t *d, size_t size)
{
	struct access_policy p = {.in_group = fuzz_in_group};
	struct access_peer c = {};
	struct access_decision r;
	uint8_t b[12] = {};
	bool privileged, member;
	int paranoid;
	enum access_what what;

	memcpy(b, d, MIN(size, sizeof(b)));
	p.group_set = b[0] & 1;
	p.own_processes = b[0] & 2;
	p.metrics_local = b[0] & 4;
	p.token_configured = b[0] & 8;
	p.client_ca_configured = b[0] & 16;
	p.allow_gid = b[1];
	strcpy(p.group_name, "g");
	c.via = 1 + b[2] % 3;
	c.uid_known = b[2] & 4;
	c.groups_known = b[2] & 8;
	c.cert_verified = b[2] & 16;
	c.token_ok = b[2] & 32;
	c.uid = b[3] < 16 ? 0 : b[3];
	c.gid = b[4];
	c.n_groups = b[5] % 4;
	for (size_t i = 0; i < c.n_groups; i++)
		c.groups[i] = b[6 + i];
	what = 1 + b[10] % 3;
	paranoid = (int)(b[11] % 6) - 1;
	access_decide(&p, &c, what, paranoid, &r);

	member = false;
	if (p.group_set && c.uid_known) {
		if (c.groups_known) {
			member = c.gid == p.allow_gid;
			for (size_t i = 0; i < c.n_groups; i++)
				member |= c.groups[i] == p.allow_gid;
		} else {
			member = fuzz_in_group(c.uid, p.allow_gid);
		}
	}
	privileged = c.cert_verified || c.token_ok || (c.uid_known && c.uid == 0) || member;
	switch (r.scope) {
	case ACCESS_ALL:
		if (!(what == ACCESS_INDEX || privileged ||
		      (what == ACCESS_METRICS && p.metrics_local && c.uid_known)) ||
		    r.status != 200)
			abort();
		break;
	case ACCESS_OWN:
		if (what != ACCESS_PROFILE || privileged || !p.own_processes || !c.uid_known ||
		    r.uid != c.uid || paranoid > 2 || r.no_kernel != (paranoid >= 2) ||
		    r.status != 200)
			abort();
		break;
	case ACCESS_DENY:
		if (what == ACCESS_INDEX || privileged || (r.status != 401 && r.status != 403))
			abort();
		if (!r.reason[0] || r.reason[strlen(r.reason) - 1] != '\n' ||
		    strchr(r.reason, '\n') != r.reason + strlen(r.reason) - 1)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	s = malloc(size);
	if (!s)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		fuzz_bearer(s, size - 1);
		break;
	case 1:
		fuzz_listen(s);
		break;
	case 2:
		fuzz_decide(data + 1, size - 1);
		break;
	}
	free(s);
	return 0;
}
