// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "service/listen.h"

int daemon_parse_listen(const char *s, char **ret_host, unsigned *ret_port)
{
	const char *colon, *host = s;
	size_t host_len;
	unsigned long port;
	char *end, buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		host_len = close - host;
		colon = close + 1;
		if (host_len == 0 || host_len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		host_len = colon - s;
		if (host_len == 0 || host_len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		if (!strcmp(buf, "localhost"))
			strcpy(buf, "127.0.0.1");
		else if (inet_pton(AF_INET, buf, addr) != 1)
			return -EINVAL;
	}
	if (!colon[1] || !isdigit((unsigned char)colon[1]))
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	if (ret_host && !(*ret_host = strdup(buf)))
		return -ENOMEM;
	if (ret_port)
		*ret_port = port;
	return 0;
}

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

static int parse_one_listener(const char *s, size_t len, struct daemon_listener *l)
{
	char buf[DAEMON_UNIX_PATH_MAX + 16];
	_cleanup_free_ char *host = NULL;

	*l = (struct daemon_listener){};
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!strncmp(buf, "unix:", 5)) {
		const char *path = buf + 5;

		if (path[0] != '/' || strlen(path) > DAEMON_UNIX_PATH_MAX)
			return -EINVAL;
		for (const char *p = path; *p; p++)
			if (iscntrl((unsigned char)*p))
				return -EINVAL;
		l->is_unix = true;
		strcpy(l->path, path);
		return 0;
	}
	if (daemon_parse_listen(buf, &host, &l->port) < 0 || strlen(host) >= sizeof(l->host))
		return -EINVAL;
	strcpy(l->host, host);
	l->loopback = host_is_loopback(host);
	return 0;
}

int daemon_parse_listeners(const char *s, struct daemon_listener *ret, size_t *ret_n)
{
	size_t n = 0;

	*ret_n = 0;
	if (!*s)
		return 0;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		if (n == DAEMON_LISTEN_MAX || parse_one_listener(s, len, &ret[n]) < 0)
			return -EINVAL;
		n++;
		if (!comma)
			break;
		s = comma + 1;
	}
	*ret_n = n;
	return 0;
}
