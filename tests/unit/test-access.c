// SPDX-License-Identifier: MIT
/*
 * service/access: the policy table, bearer-token parsing and comparison, the token file's checks,
 * group lookup, and caller identification over real sockets of this process (a unix socketpair,
 * a loopback TCP connection looked up in the kernel's socket diagnostics). The configuration's
 * own checks are in test-config.c.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "service/access.h"

#define GROUP 4242
#define MEMBER 1000 /* in GROUP by the (fake) group database */
#define OTHER 1001

static int fake_in_group(uid_t uid, gid_t gid)
{
	return uid == MEMBER && gid == GROUP;
}

static struct access_policy policy(bool own, bool metrics_local)
{
	return (struct access_policy){.group_set = true, .allow_gid = GROUP, .group_name = "profd",
				      .own_processes = own, .metrics_local = metrics_local,
				      .in_group = fake_in_group};
}

static struct access_peer local(uid_t uid)
{
	return (struct access_peer){.via = ACCESS_VIA_LOOPBACK, .uid_known = true, .uid = uid,
				    .addr = "127.0.0.1:1"};
}

static struct access_peer remote(void)
{
	return (struct access_peer){.via = ACCESS_VIA_REMOTE, .addr = "192.0.2.1:1"};
}

Test(access_policy, default_deny)
{
	struct access_policy p = policy(false, true);
	struct access_peer c = local(OTHER);
	struct access_decision d;

	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	cr_expect_eq(d.status, 403);
	cr_expect(strstr(d.reason, "uid 1001") && strstr(d.reason, "group profd") &&
		      strstr(d.reason, "own_processes"),
		  "%s", d.reason);
	cr_expect_eq(d.reason[strlen(d.reason) - 1], '\n');

	c = remote();
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	cr_expect_eq(d.status, 403);
	access_decide(&p, &c, ACCESS_METRICS, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY, "a remote caller read /metrics without credentials");
	/* The index carries no data. */
	access_decide(&p, &c, ACCESS_INDEX, 2, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
}

Test(access_policy, privileged_callers_see_everything)
{
	struct access_policy p = policy(false, false);
	struct access_peer c;
	struct access_decision d;

	c = local(0);
	access_decide(&p, &c, ACCESS_PROFILE, 3, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	cr_expect_eq(d.status, 200);
	c = local(MEMBER);
	access_decide(&p, &c, ACCESS_PROFILE, 3, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	access_decide(&p, &c, ACCESS_METRICS, 3, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	c = remote();
	c.cert_verified = true;
	access_decide(&p, &c, ACCESS_PROFILE, 3, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	c = remote();
	c.token_ok = true;
	access_decide(&p, &c, ACCESS_PROFILE, 3, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	/* No group configured: only root. */
	p.group_set = false;
	c = local(MEMBER);
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	cr_expect(strstr(d.reason, "only root"), "%s", d.reason);
}

Test(access_policy, unix_peer_groups_are_the_processes_own)
{
	struct access_policy p = policy(false, false);
	struct access_peer c = {.via = ACCESS_VIA_UNIX, .uid_known = true, .uid = OTHER,
				.groups_known = true, .gid = 100};
	struct access_decision d;

	/* The database says OTHER is in no group; the process holds GROUP: the process wins. */
	c.groups[0] = 7;
	c.groups[1] = GROUP;
	c.n_groups = 2;
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	/* MEMBER by the database, but the connecting process dropped the group: denied. */
	c.uid = MEMBER;
	c.n_groups = 1;
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	c.gid = GROUP; /* primary group */
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
}

Test(access_policy, own_processes_mirror_perf_event_paranoid)
{
	struct access_policy p = policy(true, true);
	struct access_peer c = local(OTHER);
	struct access_decision d;

	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.scope, ACCESS_OWN);
	cr_expect_eq(d.uid, OTHER);
	cr_expect(d.no_kernel);
	access_decide(&p, &c, ACCESS_PROFILE, 1, &d);
	cr_expect_eq(d.scope, ACCESS_OWN);
	cr_expect(!d.no_kernel);
	access_decide(&p, &c, ACCESS_PROFILE, -1, &d);
	cr_expect(!d.no_kernel);
	access_decide(&p, &c, ACCESS_PROFILE, 3, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	cr_expect(strstr(d.reason, "perf_event_paranoid is 3"), "%s", d.reason);
	/* A caller whose uid is unknown owns nothing. */
	c = remote();
	access_decide(&p, &c, ACCESS_PROFILE, 1, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	/* Metrics: local callers by default, privileged only when configured so. */
	c = local(OTHER);
	access_decide(&p, &c, ACCESS_METRICS, 2, &d);
	cr_expect_eq(d.scope, ACCESS_ALL);
	p.metrics_local = false;
	access_decide(&p, &c, ACCESS_METRICS, 2, &d);
	cr_expect_eq(d.scope, ACCESS_DENY);
	cr_expect(strstr(d.reason, "metrics_access = privileged"), "%s", d.reason);
}

Test(access_policy, token_missing_is_401_for_unknown_callers)
{
	struct access_policy p = policy(false, true);
	struct access_peer c = remote();
	struct access_decision d;

	p.token_configured = true;
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.status, 401);
	cr_expect(strstr(d.reason, "Authorization: Bearer"), "%s", d.reason);
	c = local(OTHER);
	access_decide(&p, &c, ACCESS_PROFILE, 2, &d);
	cr_expect_eq(d.status, 403);
}

Test(access_token, bearer_header)
{
	const char *t;
	size_t n;

	cr_assert_eq(access_parse_bearer("Bearer abc123", &t, &n), 0);
	cr_expect_eq(n, 6);
	cr_expect_eq(strncmp(t, "abc123", n), 0);
	cr_assert_eq(access_parse_bearer("bearer \t xyz  ", &t, &n), 0);
	cr_expect_eq(n, 3);
	cr_expect_eq(strncmp(t, "xyz", 3), 0);
	cr_expect_lt(access_parse_bearer("Basic abc", &t, &n), 0);
	cr_expect_lt(access_parse_bearer("Bearer", &t, &n), 0);
	cr_expect_lt(access_parse_bearer("Bearer ", &t, &n), 0);
	cr_expect_lt(access_parse_bearer("Bearerabc", &t, &n), 0);
	cr_expect_lt(access_parse_bearer("Bearer a b", &t, &n), 0);
	cr_expect_lt(access_parse_bearer(NULL, &t, &n), 0);

	char *big = malloc(ACCESS_TOKEN_MAX + 16);

	cr_assert_not_null(big);
	strcpy(big, "Bearer ");
	memset(big + 7, 'a', ACCESS_TOKEN_MAX + 1);
	big[7 + ACCESS_TOKEN_MAX + 1] = '\0';
	cr_expect_lt(access_parse_bearer(big, &t, &n), 0);
	free(big);

	cr_expect(access_token_equal("abcdef", 6, "abcdef", 6));
	cr_expect(!access_token_equal("abcdeg", 6, "abcdef", 6));
	cr_expect(!access_token_equal("abcde", 5, "abcdef", 6));
	cr_expect(!access_token_equal("abcdefg", 7, "abcdef", 6));
	cr_expect(!access_token_equal("", 0, "abcdef", 6));
}

Test(access_token, token_file_checks)
{
	char dir[] = "/tmp/profd-access-XXXXXX", path[64], err[256];
	char *tok = NULL;
	size_t n;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs("0123456789abcdef0123\n", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(access_read_token(path, &tok, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 20);
	cr_expect_str_eq(tok, "0123456789abcdef0123");
	free(tok);
	tok = NULL;
	cr_assert_eq(chmod(path, 0644), 0);
	cr_expect_eq(access_read_token(path, &tok, &n, err, sizeof(err)), -EPERM);
	cr_expect(strstr(err, "chmod o-r"), "%s", err);
	f = fopen(path, "we");
	fputs("short\n", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_expect_eq(access_read_token(path, &tok, &n, err, sizeof(err)), -EINVAL);
	f = fopen(path, "we");
	fputs("0123456789 abcdef0123\n", f);
	fclose(f);
	cr_expect_eq(access_read_token(path, &tok, &n, err, sizeof(err)), -EINVAL);
	cr_expect_null(tok);
	unlink(path);
	cr_expect_lt(access_read_token(path, &tok, &n, err, sizeof(err)), 0);
	rmdir(dir);
}

Test(access_policy, group_lookup)
{
	struct access_policy p = {};

	cr_expect_eq(access_policy_set_group(&p, "root"), 0);
	cr_expect(p.group_set);
	cr_expect_eq(p.allow_gid, 0);
	cr_expect_eq(access_policy_set_group(&p, "54321"), 0, "a number is a gid");
	cr_expect_eq(p.allow_gid, 54321);
	cr_expect_eq(access_policy_set_group(&p, "no-such-group-profd-test"), -ENOENT);
	cr_expect(!p.group_set);
	cr_expect_eq(access_policy_set_group(&p, ""), 0);
	cr_expect(!p.group_set);
	/* root is in group root by the database. */
	cr_expect_eq(access_user_in_group(0, 0), 1);
}

/* ---- identification over real sockets -------------------------------------------------------- */

Test(access_identify, unix_peer_credentials)
{
	int sv[2];
	struct access_peer c;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(access_identify(sv[0], NULL, 0, &c), 0);
	cr_expect_eq(c.via, ACCESS_VIA_UNIX);
	cr_expect(c.uid_known && c.groups_known);
	cr_expect_eq(c.uid, geteuid());
	cr_expect_eq(c.gid, getegid());
	close(sv[0]);
	close(sv[1]);
}

/* The owner of a loopback client socket, from the kernel: our own uid for our own socket. */
static void loopback_owner(int family)
{
	struct sockaddr_storage ss = {}, peer = {};
	socklen_t len = sizeof(ss), plen = sizeof(peer);
	int l, cfd, afd;
	struct access_peer c;

	l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(l, 0);
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	cr_assert_eq(bind(l, (struct sockaddr *)&ss, len), 0, "%s", strerror(errno));
	cr_assert_eq(listen(l, 1), 0);
	len = sizeof(ss);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&ss, &len), 0);
	cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&ss, len), 0);
	afd = accept(l, (struct sockaddr *)&peer, &plen);
	cr_assert_geq(afd, 0);
	cr_assert_eq(access_identify(afd, (struct sockaddr *)&peer, plen, &c), 0);
	cr_expect_eq(c.via, ACCESS_VIA_LOOPBACK);
	cr_expect(c.uid_known);
	cr_expect_eq(c.uid, geteuid());
	cr_expect(!c.groups_known);

	/* A 4-tuple nobody holds is not found (the peer port + 1 is not that connection). */
	uid_t uid;
	struct sockaddr_storage fake = peer;

	if (family == AF_INET)
		((struct sockaddr_in *)&fake)->sin_port =
		    htons(ntohs(((struct sockaddr_in *)&fake)->sin_port) ^ 1);
	else
		((struct sockaddr_in6 *)&fake)->sin6_port =
		    htons(ntohs(((struct sockaddr_in6 *)&fake)->sin6_port) ^ 1);
	cr_expect_lt(access_tcp_socket_uid((struct sockaddr *)&fake, (struct sockaddr *)&ss, &uid),
		     0);
	close(afd);
	close(cfd);
	close(l);
}

Test(access_identify, loopback_tcp_owner_ipv4)
{
	loopback_owner(AF_INET);
}

Test(access_identify, loopback_tcp_owner_ipv6)
{
	loopback_owner(AF_INET6);
}

Test(access_identify, remote_address_is_unknown)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in6 b = {.sin6_family = AF_INET6};

	inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
	cr_expect(!access_addr_is_loopback((struct sockaddr *)&a));
	inet_pton(AF_INET, "127.9.9.9", &a.sin_addr);
	cr_expect(access_addr_is_loopback((struct sockaddr *)&a));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
	cr_expect(access_addr_is_loopback((struct sockaddr *)&b));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &b.sin6_addr);
	cr_expect(!access_addr_is_loopback((struct sockaddr *)&b));
	inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
	cr_expect(!access_addr_is_loopback((struct sockaddr *)&b));
}
