/* SPDX-License-Identifier: MIT */
/*
 * The daemon's `listen` key: where the HTTP server listens, as "" (nowhere) or up to
 * DAEMON_LISTEN_MAX comma-separated entries, each HOST:PORT, [V6]:PORT or unix:/PATH.
 *
 * Parsing only (pure, hostile input, no sockets): service/config.c checks the key with it,
 * service/http.c binds what it returns. Kept apart from both so that neither needs the
 * other's header for it (config.c uses http.c's limits check; http.c only needs these).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Parse "HOST:PORT" / "[V6]:PORT" (numeric hosts, or "localhost"). ret_host gets a malloc'd host.
 */
int daemon_parse_listen(const char *s, char **ret_host, unsigned *ret_port);

/* One entry of `listen`. */
#define DAEMON_LISTEN_MAX 4
#define DAEMON_UNIX_PATH_MAX 107 /* sun_path less its NUL */
struct daemon_listener {
	bool is_unix;
	char path[DAEMON_UNIX_PATH_MAX + 1]; /* is_unix: absolute socket path */
	char host[48];			     /* numeric; "localhost" becomes 127.0.0.1 */
	unsigned port;
	bool loopback; /* a TCP address only this host can reach (127.0.0.0/8, ::1) */
};
/*
 * Split `listen` ("" gives none) into at most DAEMON_LISTEN_MAX listeners. -EINVAL on any bad
 * entry, an empty entry, or more than DAEMON_LISTEN_MAX.
 */
int daemon_parse_listeners(const char *s, struct daemon_listener *ret, size_t *ret_n);
