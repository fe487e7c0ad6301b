// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"
#include "service/access.h"

#define NSS_BUF_MAX (1 << 20)

/* ---- policy ------------------------------------------------------------------------------ */

static bool in_list(gid_t gid, const struct access_peer *c)
{
	if (c->gid == gid)
		return true;
	for (size_t i = 0; i < c->n_groups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

static bool is_member(const struct access_policy *p, const struct access_peer *c)
{
	if (!p->group_set || !c->uid_known)
		return false;
	/* A unix peer's own credentials are what the kernel checks files against: use them. */
	if (c->groups_known)
		return in_list(p->allow_gid, c);
	return (p->in_group ? p->in_group : access_user_in_group)(c->uid, p->allow_gid) == 1;
}

static void deny(const struct access_policy *p, const struct access_peer *c, unsigned status,
		 struct access_decision *ret, const char *what)
{
	char how[200];

	ret->scope = ACCESS_DENY;
	ret->status = status;
	if (!c->uid_known) {
		snprintf(ret->reason, sizeof(ret->reason),
			 "%s: this caller (%s) is not identified: connect from this host (unix socket "
			 "or 127.0.0.1) as root or a member of group %s%s%s\n",
			 what, c->addr, p->group_set ? p->group_name : "(none configured)",
			 p->client_ca_configured ? ", or present a client certificate" : "",
			 p->token_configured ? ", or send Authorization: Bearer TOKEN" : "");
		return;
	}
	if (p->group_set)
		snprintf(how, sizeof(how), "ask an administrator to add you to group %s (then log "
					   "in again)", p->group_name);
	else
		snprintf(how, sizeof(how), "only root may (allow_group is empty)");
	snprintf(ret->reason, sizeof(ret->reason), "%s: uid %u may not see other users' processes: "
		 "%s%s\n", what, (unsigned)c->uid, how,
		 !p->own_processes && what[0] == 'p'
		     ? ", or to set own_processes = yes for profiles of your own processes"
		     : "");
}

bool access_peer_privileged(const struct access_policy *p, const struct access_peer *c)
{
	return c->cert_verified || c->token_ok || (c->uid_known && c->uid == 0) || is_member(p, c);
}

void access_decide(const struct access_policy *p, const struct access_peer *c,
		   enum access_what what, int paranoid, struct access_decision *ret)
{
	*ret = (struct access_decision){.scope = ACCESS_DENY, .status = 403};
	if (what == ACCESS_INDEX || access_peer_privileged(p, c)) {
		ret->scope = ACCESS_ALL;
		ret->status = 200;
		return;
	}
	/* A token was expected but missing or wrong: say so the standard way. */
	unsigned status = p->token_configured && !c->uid_known ? 401 : 403;

	switch (what) {
	case ACCESS_METRICS:
		if (p->metrics_local && c->uid_known) {
			ret->scope = ACCESS_ALL;
			ret->status = 200;
			return;
		}
		deny(p, c, status, ret, "metrics");
		if (c->uid_known)
			snprintf(ret->reason, sizeof(ret->reason),
				 "metrics: metrics_access = privileged: only root, members of group "
				 "%s, client certificates and the bearer token may read /metrics\n",
				 p->group_set ? p->group_name : "(none)");
		return;
	case ACCESS_PROFILE:
		if (p->own_processes && c->uid_known) {
			if (paranoid > 2) {
				snprintf(ret->reason, sizeof(ret->reason),
					 "profile: kernel.perf_event_paranoid is %d, which lets no "
					 "unprivileged user profile: ask an administrator for group %s\n",
					 paranoid, p->group_set ? p->group_name : "access");
				return;
			}
			ret->scope = ACCESS_OWN;
			ret->uid = c->uid;
			ret->no_kernel = paranoid >= 2;
			ret->status = 200;
			return;
		}
		deny(p, c, status, ret, "profile");
		return;
	case ACCESS_INDEX:
		break;
	}
}

int access_user_in_group(uid_t uid, gid_t gid)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	size_t size = 4096;
	struct passwd pw, *res = NULL;
	int r, n = 64;

	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb)
			return -ENOMEM;
		buf = nb;
		r = getpwuid_r(uid, &pw, buf, size, &res);
		if (r != ERANGE || size >= NSS_BUF_MAX)
			break;
		size *= 2;
	}
	if (r)
		return -r;
	if (!res)
		return 0; /* no such user: in no group */
	if (pw.pw_gid == gid)
		return 1;
	for (int tries = 0; tries < 8; tries++) {
		gid_t *ng = reallocarray(groups, n, sizeof(*groups));
		int want = n;

		if (!ng)
			return -ENOMEM;
		groups = ng;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
			for (int i = 0; i < want; i++)
				if (groups[i] == gid)
					return 1;
			return 0;
		}
		if (want <= n || want > 65536)
			return -EIO;
		n = want;
	}
	return -EIO;
}

int access_policy_set_group(struct access_policy *p, const char *group)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 4096;
	struct group gr, *res = NULL;
	char *end;
	int r;

	p->group_set = false;
	p->group_name[0] = '\0';
	if (!*group)
		return 0;
	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb)
			return -ENOMEM;
		buf = nb;
		r = getgrnam_r(group, &gr, buf, size, &res);
		if (r != ERANGE || size >= NSS_BUF_MAX)
			break;
		size *= 2;
	}
	if (r)
		return -r;
	if (res) {
		p->allow_gid = gr.gr_gid;
	} else {
		unsigned long n;

		/* A number names a gid even when the database has no name for it. */
		if (!isdigit((unsigned char)group[0]))
			return -ENOENT;
		errno = 0;
		n = strtoul(group, &end, 10);
		if (errno || *end || n >= (gid_t)-1)
			return -ENOENT;
		p->allow_gid = (gid_t)n;
	}
	p->group_set = true;
	snprintf(p->group_name, sizeof(p->group_name), "%s", group);
	return 0;
}

int access_perf_event_paranoid(void)
{
	char buf[32] = {};
	int fd = open("/proc/sys/kernel/perf_event_paranoid", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *end;
	long v;

	if (fd < 0)
		return 3;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 3;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v < -1 || v > 1000)
		return 3;
	return (int)v;
}

/* ---- who is calling ----------------------------------------------------------------------- */

bool access_addr_is_loopback(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	if (a->sa_family == AF_INET6) {
		const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
	}
	return false;
}

/* An IPv4-mapped IPv6 address as the AF_INET address it stands for (the peer socket's view). */
static void unmap_v4(const struct sockaddr *in, struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)in;

	memset(out, 0, sizeof(*out));
	if (in->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)out;

		a4->sin_family = AF_INET;
		a4->sin_port = a6->sin6_port;
		memcpy(&a4->sin_addr, &a6->sin6_addr.s6_addr[12], 4);
	} else {
		memcpy(out, in, in->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							 : sizeof(struct sockaddr_in6));
	}
}

static void fill_id(struct inet_diag_sockid *id, const struct sockaddr *src,
		    const struct sockaddr *dst)
{
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		id->idiag_sport = s->sin_port;
		id->idiag_dport = d->sin_port;
		memcpy(id->idiag_src, &s->sin_addr, 4);
		memcpy(id->idiag_dst, &d->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		id->idiag_sport = s->sin6_port;
		id->idiag_dport = d->sin6_port;
		memcpy(id->idiag_src, &s->sin6_addr, 16);
		memcpy(id->idiag_dst, &d->sin6_addr, 16);
	}
	id->idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
}

int access_tcp_socket_uid(const struct sockaddr *src, const struct sockaddr *dst, uid_t *ret)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q = {};
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	} a;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = 2};
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (src->sa_family != dst->sa_family ||
	    (src->sa_family != AF_INET && src->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	q.nlh.nlmsg_len = sizeof(q);
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST; /* no NLM_F_DUMP: the one socket with this 4-tuple */
	q.nlh.nlmsg_seq = 1;
	q.req.sdiag_family = src->sa_family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u;
	fill_id(&q.req.id, src, dst);
	if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	n = recv(fd, &a, sizeof(a), 0);
	if (n < 0)
		return -errno;
	for (struct nlmsghdr *h = &a.nlh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_seq != 1)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				return -EPROTO;
			return e->error ? e->error : -ENOENT;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			struct inet_diag_sockid want = {};

			/* Only the socket asked for: its addresses must be exactly these. */
			fill_id(&want, src, dst);
			if (m->idiag_family != src->sa_family ||
			    m->id.idiag_sport != want.idiag_sport ||
			    m->id.idiag_dport != want.idiag_dport ||
			    memcmp(m->id.idiag_src, want.idiag_src,
				   src->sa_family == AF_INET ? 4 : 16) ||
			    memcmp(m->id.idiag_dst, want.idiag_dst,
				   src->sa_family == AF_INET ? 4 : 16))
				return -ENOENT;
			*ret = m->idiag_uid;
			return 0;
		}
	}
	return -ENOENT;
}

static void fmt_addr(const struct sockaddr *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)a;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(s->sin_port));
	} else if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)a;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(s->sin6_port));
	} else {
		snprintf(buf, size, "family %u", a->sa_family);
	}
}

int access_identify(int fd, const struct sockaddr *peer, socklen_t peer_len,
		    struct access_peer *ret)
{
	struct sockaddr_storage local = {}, p4, l4;
	socklen_t len = sizeof(local);
	uid_t uid;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
		return -errno;
	if (local.ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t cl = sizeof(cred), gl = sizeof(ret->groups);

		ret->via = ACCESS_VIA_UNIX;
		snprintf(ret->addr, sizeof(ret->addr), "unix socket");
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
			return -errno;
		ret->uid_known = true;
		ret->uid = cred.uid;
		ret->gid = cred.gid;
		/* Too many groups to list (ERANGE): the primary group alone counts. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ret->groups, &gl) == 0)
			ret->n_groups = gl / sizeof(gid_t);
		ret->groups_known = true;
		snprintf(ret->addr, sizeof(ret->addr), "uid %u via unix socket", (unsigned)cred.uid);
		return 0;
	}
	if (!peer || peer_len < sizeof(sa_family_t) ||
	    (peer->sa_family != AF_INET && peer->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	fmt_addr(peer, ret->addr, sizeof(ret->addr));
	if (!access_addr_is_loopback(peer)) {
		ret->via = ACCESS_VIA_REMOTE;
		return 0;
	}
	ret->via = ACCESS_VIA_LOOPBACK;
	/* The peer's socket has the peer address as its own and ours as its peer. */
	unmap_v4(peer, &p4);
	unmap_v4((struct sockaddr *)&local, &l4);
	r = access_tcp_socket_uid((struct sockaddr *)&p4, (struct sockaddr *)&l4, &uid);
	if (r < 0)
		return r;
	ret->uid_known = true;
	ret->uid = uid;
	len = strlen(ret->addr);
	snprintf(ret->addr + len, sizeof(ret->addr) - len, " (uid %u)", (unsigned)uid);
	return 0;
}

/* ---- bearer token ------------------------------------------------------------------------- */

static bool token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

int access_parse_bearer(const char *h, const char **ret, size_t *ret_len)
{
	const char *t;
	size_t n;

	if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t'))
		return -EINVAL;
	for (t = h + 6; *t == ' ' || *t == '\t'; t++)
		;
	for (n = 0; token_char((unsigned char)t[n]); n++)
		if (n >= ACCESS_TOKEN_MAX)
			return -EINVAL;
	for (const char *e = t + n; *e; e++)
		if (*e != ' ' && *e != '\t')
			return -EINVAL;
	if (n == 0)
		return -EINVAL;
	*ret = t;
	*ret_len = n;
	return 0;
}

bool access_token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
	unsigned char diff = given_len != want_len;

	/* Walk the configured token whatever was given: the time tells nothing of the match. */
	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned char)(want[i] ^ (i < given_len ? given[i] : 0));
	return diff == 0;
}

int access_read_token(const char *path, char **ret, size_t *ret_len, char *err, size_t err_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t n = 0;
	ssize_t k;

	if (fd < 0) {
		snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, err_size, "%s is readable by every user (mode %04o): chmod o-r it",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	buf = malloc(ACCESS_TOKEN_MAX + 2);
	if (!buf)
		return -ENOMEM;
	while ((k = read(fd, buf + n, ACCESS_TOKEN_MAX + 1 - n)) > 0)
		n += k;
	if (k < 0)
		return -errno;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!token_char((unsigned char)buf[i])) {
			snprintf(err, err_size, "%s: the token must be printable ASCII without blanks",
				 path);
			return -EINVAL;
		}
	if (n < ACCESS_TOKEN_MIN || n > ACCESS_TOKEN_MAX) {
		snprintf(err, err_size, "%s: the token must be %d to %d characters long (e.g. "
			 "openssl rand -hex 32)", path, ACCESS_TOKEN_MIN, ACCESS_TOKEN_MAX);
		return -EINVAL;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}
