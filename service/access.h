/* SPDX-License-Identifier: MIT */
/*
 * Access control of the daemon's endpoints: who a caller is, and what it may see. Every endpoint
 * asks access_decide(); nothing else in profd decides who sees what.
 *
 * The yardstick is the kernel: profd runs as root and sees every process, so what it serves must
 * not show a caller more than perf_event_open(2) would let that caller record itself.
 *
 * Who the caller is (struct access_peer):
 *   - unix socket: the peer's uid, gid and supplementary groups as the kernel recorded them at
 *     connect() (SO_PEERCRED, SO_PEERGROUPS);
 *   - TCP from a loopback address: the uid owning the peer's socket, asked of the kernel with a
 *     NETLINK_SOCK_DIAG lookup of the connection's exact 4-tuple (the client socket is in this
 *     network namespace); its groups are the user's groups in the group database;
 *   - TCP from anywhere else: unknown. Such a caller is identified only by a TLS client
 *     certificate signed by tls_client_ca or by the bearer token.
 *
 * Policy (default deny):
 *   - privileged callers see everything: uid 0, members of allow_group, a verified client
 *     certificate, the bearer token;
 *   - with own_processes, any other identified local caller may fetch a profile restricted to
 *     samples of its own uid (every uid and gid of the sampled thread equal, the process
 *     dumpable: see profd_sample.uid), filtered before aggregation. Kernel frames are left out
 *     when perf_event_paranoid >= 2, and such callers get nothing when it is > 2 (Debian's
 *     "no unprivileged perf at all"), as perf_event_open would;
 *   - /metrics names no process or function: with metrics_access = local any identified local
 *     caller may read it; with privileged only privileged callers;
 *   - the index page carries no data: anyone;
 *   - everything else: 403 (401 when a bearer token would help), with a body that says how to get
 *     access.
 *
 * Errors: the identification functions return -errno; a caller that cannot be identified is
 * simply not privileged (never an error that grants anything).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define ACCESS_MAX_GROUPS 256 /* supplementary groups of a unix peer considered */
#define ACCESS_TOKEN_MAX 4096 /* bytes of a bearer token */
#define ACCESS_TOKEN_MIN 16

enum access_via {
	ACCESS_VIA_UNIX = 1, /* unix socket */
	ACCESS_VIA_LOOPBACK, /* TCP from 127.0.0.0/8 or ::1 */
	ACCESS_VIA_REMOTE,   /* TCP from any other address */
};

struct access_peer {
	enum access_via via;
	bool uid_known;
	uid_t uid;
	bool groups_known; /* unix: gid and groups[] are the peer process's */
	gid_t gid;
	size_t n_groups;
	gid_t groups[ACCESS_MAX_GROUPS];
	bool cert_verified; /* a TLS client certificate signed by tls_client_ca */
	bool token_ok;	    /* the right bearer token */
	bool token_given;   /* an Authorization header was sent */
	char addr[80];	    /* for logs: "uid 1000 via unix", "127.0.0.1:4711" */
};

struct access_policy {
	bool group_set; /* allow_group resolved to allow_gid; false: root only */
	gid_t allow_gid;
	char group_name[65];
	bool own_processes;
	bool metrics_local;
	bool token_configured;
	bool client_ca_configured;
	/* Group database lookup; NULL: access_user_in_group (tests put their own here). */
	int (*in_group)(uid_t uid, gid_t gid);
};

enum access_what {
	ACCESS_INDEX = 1,
	ACCESS_METRICS,
	ACCESS_PROFILE,
};

enum access_scope {
	ACCESS_DENY = 0,
	ACCESS_ALL, /* every process, kernel frames included */
	ACCESS_OWN, /* only samples of uid `uid` */
};

struct access_decision {
	enum access_scope scope;
	uid_t uid;	 /* ACCESS_OWN */
	bool no_kernel;	 /* ACCESS_OWN: leave kernel frames out */
	unsigned status; /* 200, 401 or 403 */
	char reason[384]; /* DENY: what to tell the caller, one line, '\n'-terminated */
};

/*
 * What `peer` may get of `what`, under policy `p` and the host's perf_event_paranoid value
 * (access_perf_event_paranoid()). Never fails: anything unclear is denied.
 */
void access_decide(const struct access_policy *p, const struct access_peer *peer,
		   enum access_what what, int paranoid, struct access_decision *ret);

/*
 * Whether `peer` is privileged under `p`: uid 0, a member of allow_group, a verified client
 * certificate or the right token. The HTTP server also uses it for the slots it keeps for
 * privileged callers (service/http.h).
 */
bool access_peer_privileged(const struct access_policy *p, const struct access_peer *peer);

/*
 * Identify the caller of an accepted connection `fd`: unix sockets by their peer credentials,
 * TCP by the peer address (`peer`, as accepted) and, for loopback peers, the socket owner's uid
 * from the kernel's socket diagnostics. Fills *ret (via, uid, groups, addr); the TLS and token
 * fields stay false. -errno when the fd cannot be queried (the caller stays unidentified).
 */
int access_identify(int fd, const struct sockaddr *peer, socklen_t peer_len,
		    struct access_peer *ret);

/*
 * The uid owning the local TCP socket whose own address is `src` and whose peer is `dst` (both
 * AF_INET or both AF_INET6), asked of the kernel (NETLINK_SOCK_DIAG, exact lookup). -ENOENT when
 * there is none in this network namespace.
 */
int access_tcp_socket_uid(const struct sockaddr *src, const struct sockaddr *dst, uid_t *ret);

/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool access_addr_is_loopback(const struct sockaddr *a);

/* 1 when the user `uid` is in group `gid` by the group database (primary or supplementary). */
int access_user_in_group(uid_t uid, gid_t gid);

/* /proc/sys/kernel/perf_event_paranoid; 3 (the strictest we know) when unreadable. */
int access_perf_event_paranoid(void);

/*
 * The token of an "Authorization: Bearer TOKEN" header value (scheme case-insensitive, blanks
 * around the token ignored): 0 and *ret, *ret_len pointing into `header`; -EINVAL otherwise.
 */
int access_parse_bearer(const char *header, const char **ret, size_t *ret_len);

/* Compare a token with the configured one in time independent of where they differ. */
bool access_token_equal(const char *given, size_t given_len, const char *want, size_t want_len);

/*
 * Read the bearer token file: the whole content less trailing newlines; ACCESS_TOKEN_MIN to
 * ACCESS_TOKEN_MAX bytes of printable ASCII with no blanks. Refuses (-EPERM) a file others may
 * read. *ret is malloc()ed. Logs nothing: errors are -errno with a message in err.
 */
int access_read_token(const char *path, char **ret, size_t *ret_len, char *err, size_t err_size);

/* Resolve allow_group ("" = root only) into group_set and allow_gid. -ENOENT: no such group. */
int access_policy_set_group(struct access_policy *p, const char *group);
