// SPDX-License-Identifier: MIT
/*
 * service/config: the daemon's configuration keys (bounds and values), listener parsing, and the
 * cross-key checks (TLS and tokens off loopback, the HTTP quotas against each other).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/config.h"
#include "service/http.h"

Test(config, listeners)
{
	struct daemon_listener l[DAEMON_LISTEN_MAX];
	size_t n;

	cr_assert_eq(daemon_parse_listeners("127.0.0.1:7632,unix:/run/profd/profd.sock", l, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect(!l[0].is_unix && l[0].loopback && l[0].port == 7632);
	cr_expect_str_eq(l[0].host, "127.0.0.1");
	cr_expect(l[1].is_unix);
	cr_expect_str_eq(l[1].path, "/run/profd/profd.sock");
	cr_assert_eq(daemon_parse_listeners("[::1]:1,127.3.4.5:2,localhost:3,0.0.0.0:4", l, &n), 0);
	cr_expect(l[0].loopback && l[1].loopback && l[2].loopback && !l[3].loopback);
	cr_assert_eq(daemon_parse_listeners("[::ffff:127.0.0.1]:1,[::]:2,10.1.2.3:3", l, &n), 0);
	cr_expect(l[0].loopback && !l[1].loopback && !l[2].loopback);
	cr_assert_eq(daemon_parse_listeners("", l, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_lt(daemon_parse_listeners("unix:relative.sock", l, &n), 0);
	cr_expect_lt(daemon_parse_listeners("unix:", l, &n), 0);
	cr_expect_lt(daemon_parse_listeners("127.0.0.1:1,", l, &n), 0);
	cr_expect_lt(daemon_parse_listeners(",127.0.0.1:1", l, &n), 0);
	cr_expect_lt(daemon_parse_listeners("a:1,b:2", l, &n), 0);
	cr_expect_lt(daemon_parse_listeners("1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5", l,
					    &n),
		     0);
	char longp[200] = "unix:/";
	memset(longp + 6, 'x', 150);
	cr_expect_lt(daemon_parse_listeners(longp, l, &n), 0);
}

static int config_with(const char *const kv[][2], size_t n)
{
	struct daemon_config c;
	char err[512];
	int r;

	daemon_config_init(&c);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(daemon_config_set(&c, kv[i][0], kv[i][1], err, sizeof(err)), 0, "%s: %s",
			     kv[i][0], err);
	r = daemon_config_check(&c);
	daemon_config_done(&c);
	return r;
}

Test(config, cross_key_checks)
{
	/* The refusals below log errors: expected. */
	cr_expect_eq(config_with(NULL, 0), 0, "the defaults must pass");
	cr_expect_lt(config_with((const char *const[][2]){{"listen", "0.0.0.0:7632"}}, 1), 0);
	cr_expect_lt(config_with((const char *const[][2]){{"listen", "127.0.0.1:1,[::]:7632"}}, 1),
		     0);
	/* A token over plain HTTP off loopback: refused (it would cross the network in clear). */
	cr_expect_lt(
	    config_with((const char *const[][2]){{"listen", "0.0.0.0:7632"},
						 {"bearer_token_file", "/etc/profd/token"}},
			2),
	    0);
	cr_expect_eq(config_with((const char *const[][2]){{"listen", "0.0.0.0:7632"},
							  {"bearer_token_file", "/etc/profd/token"},
							  {"tls_cert", "/c"},
							  {"tls_key", "/k"}},
				 4),
		     0);
	/* On loopback a token needs no TLS. */
	cr_expect_eq(
	    config_with((const char *const[][2]){{"listen", "127.0.0.1:7632"},
						 {"bearer_token_file", "/etc/profd/token"}},
			2),
	    0);
	cr_expect_eq(config_with((const char *const[][2]){{"listen", "0.0.0.0:7632"},
							 {"tls_cert", "/c"},
							 {"tls_key", "/k"},
							 {"tls_client_ca", "/ca"}},
				 4),
		     0);
	/* TLS without client verification is not enough off loopback. */
	cr_expect_lt(config_with((const char *const[][2]){{"listen", "0.0.0.0:7632"},
							 {"tls_cert", "/c"},
							 {"tls_key", "/k"}},
				 3),
		     0);
	cr_expect_lt(config_with((const char *const[][2]){{"tls_cert", "/c"}}, 1), 0);
	cr_expect_lt(config_with((const char *const[][2]){{"tls_client_ca", "/ca"}}, 1), 0);
	cr_expect_eq(config_with((const char *const[][2]){{"listen", "unix:/run/profd/profd.sock"}},
				 1),
		     0);
}

Test(config, keys)
{
	struct daemon_config c;
	char err[512];

	daemon_config_init(&c);
	cr_expect_str_eq(c.allow_group, "profd");
	cr_expect(!c.own_processes);
	cr_expect_str_eq(c.metrics_access, "local");
	cr_expect_eq(daemon_config_set(&c, "own_processes", "yes", err, sizeof(err)), 0);
	cr_expect(c.own_processes);
	cr_expect_eq(daemon_config_set(&c, "own_processes", "no", err, sizeof(err)), 0);
	cr_expect(!c.own_processes);
	cr_expect_lt(daemon_config_set(&c, "own_processes", "maybe", err, sizeof(err)), 0);
	cr_expect(strstr(err, "yes, no"), "%s", err);
	cr_expect_lt(daemon_config_set(&c, "metrics_access", "everyone", err, sizeof(err)), 0);
	cr_expect_lt(daemon_config_set(&c, "allow_group", "pro fd", err, sizeof(err)), 0);
	cr_expect_eq(daemon_config_set(&c, "allow_group", "", err, sizeof(err)), 0);
	cr_expect_eq(daemon_config_set(&c, "allow_group", "4242", err, sizeof(err)), 0);
	daemon_config_done(&c);
}

/* The HTTP quotas: bounds per key, and consistency across them. */
Test(config, http_limits)
{
	struct daemon_config c;
	struct http_limits l = {};
	char err[512];

	daemon_config_init(&c);
	cr_expect_eq(c.http_profiles, HTTP_PROFILES_DEFAULT);
	cr_expect_eq(c.http_header_timeout_s, HTTP_HEADER_TIMEOUT_DEFAULT);
	cr_expect_eq(daemon_config_set(&c, "http_profiles", "65", err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "64"), "%s", err);
	cr_expect_eq(daemon_config_set(&c, "http_profiles", "0", err, sizeof(err)), -EINVAL);
	cr_expect_eq(daemon_config_set(&c, "http_connections", "1001", err, sizeof(err)), -EINVAL);
	cr_expect_eq(daemon_config_set(&c, "http_header_timeout", "5m", err, sizeof(err)), 0);
	cr_expect_eq(c.http_header_timeout_s, 300);
	cr_expect_eq(daemon_config_set(&c, "http_header_timeout", "301", err, sizeof(err)),
		     -EINVAL);
	cr_expect_eq(daemon_config_set(&c, "http_profiles_reserved", "0", err, sizeof(err)), 0);
	cr_expect_eq(daemon_config_set(&c, "http_connections_per_user", "-1", err, sizeof(err)),
		     -EINVAL);
	daemon_config_done(&c);

	/* The refusals below log errors: expected. */
	cr_expect_eq(config_with((const char *const[][2]){{"http_profiles", "4"},
							  {"http_profiles_per_user", "2"},
							  {"http_profiles_reserved", "2"}},
				 3),
		     0);
	cr_expect_lt(config_with((const char *const[][2]){{"http_profiles", "4"},
							  {"http_profiles_reserved", "4"}},
				 2),
		     0, "every slot reserved");
	cr_expect_lt(config_with((const char *const[][2]){{"http_profiles", "4"},
							  {"http_profiles_per_user", "3"},
							  {"http_profiles_reserved", "2"}},
				 3),
		     0, "per user above the unprivileged share");
	cr_expect_lt(config_with((const char *const[][2]){{"http_connections", "16"}}, 1), 0,
		     "the default reserve (16) takes every connection");
	cr_expect_eq(config_with((const char *const[][2]){{"http_connections", "16"},
							  {"http_connections_reserved", "4"}},
				 2),
		     0);
	cr_expect_lt(config_with((const char *const[][2]){{"http_connections", "16"},
							  {"http_connections_reserved", "4"},
							  {"http_connections_per_user", "13"}},
				 3),
		     0);

	/* The same checks, with what to change in the message. */
	cr_expect_eq(http_limits_check(&l, err, sizeof(err)), 0, "zero fields are the defaults");
	l = (struct http_limits){.profiles = 2, .profiles_reserved = 2};
	cr_expect_eq(http_limits_check(&l, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "http_profiles_reserved (2) must be less than http_profiles (2)"),
		  "%s", err);
	l = (struct http_limits){.profiles = 8, .profiles_per_user = 7, .profiles_reserved = 2};
	cr_expect_eq(http_limits_check(&l, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "http_profiles_per_user (7)") && strstr(err, "= 6"), "%s", err);
	l = (struct http_limits){
	    .profiles = HTTP_PROFILES_MAX + 1, .profiles_reserved = 1, .profiles_per_user = 1};
	cr_expect_eq(http_limits_check(&l, err, sizeof(err)), -EINVAL);
}
