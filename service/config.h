/* SPDX-License-Identifier: MIT */
/*
 * `profd daemon` configuration: the file format, its keys, defaults and validation.
 *
 * Format (documented for users in packaging/profd.conf and profd(1)):
 *   - one `key = value` per line; blank lines are ignored;
 *   - `#` starts a comment at the start of a line, or after whitespace outside quotes;
 *   - a value may be double-quoted (`""` is the empty value; `\"` and `\\` escape);
 *   - every key at most once; unknown keys and bad values are errors, reported as
 *     "FILE:LINE: what is wrong (what is allowed)".
 * Sizes take an optional K, M, G or T suffix (powers of 1024); durations an optional s, m or h.
 *
 * Every key is also a command-line flag: `--key-with-dashes VALUE`. Flags override the file,
 * also after a reload.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "service/listen.h" /* the `listen` key's values */

#define DAEMON_CONFIG_PATH "/etc/profd/profd.conf"
#define DAEMON_FREQ_MAX 10000
#define DAEMON_INTERVAL_MAX (24 * 3600)
#define DAEMON_PUSH_LABELS_MAX 32
#define DAEMON_GROUP_DEFAULT "profd"

struct daemon_config {
	unsigned frequency;	  /* Hz per CPU */
	unsigned interval_s;	  /* seconds per profile file */
	char *output_dir;	  /* "" disables interval files */
	char *format;		  /* of interval files: "pprof", "speedscope", "folded" (output.h) */
	char *demangle;		  /* "simple", "templates", "full", "none" (symbolize.h) */
	unsigned retention_count; /* interval files kept; 0: no count limit */
	uint64_t retention_bytes; /* total bytes of interval files; 0: no size limit */
	unsigned stack_bytes;	  /* user stack bytes copied per sample, at most */
	bool adaptive_stack_copy; /* copy what each process's walks need (pipeline/stacksize.h) */
	bool python;		  /* CPython frames in place of interpreter frames */
	bool off_cpu;		  /* also record off-CPU waits (capture_config.off_cpu) */
	unsigned off_cpu_min_us;  /* shorter waits are not recorded */
	char *listen;		  /* comma-separated "HOST:PORT", "[V6]:PORT", "unix:/PATH"; "" disables HTTP */
	/* Access control of the HTTP endpoint (service/access.h). */
	char *allow_group;	  /* members see everything (name or number); "": root only */
	bool own_processes;	  /* any local user may fetch a profile of their own processes */
	char *metrics_access;	  /* "local": any identified local caller; "privileged" */
	char *tls_cert, *tls_key; /* PEM files: TCP listeners serve HTTPS ("": plain HTTP) */
	char *tls_client_ca;	  /* PEM CA: a client certificate it signed grants everything */
	char *bearer_token_file;  /* "Authorization: Bearer <its content>" grants everything */
	/* Quotas and deadlines of the HTTP endpoint (struct http_limits, service/http.h). */
	unsigned http_profiles, http_profiles_per_user, http_profiles_reserved;
	unsigned http_connections, http_connections_per_user, http_connections_reserved;
	unsigned http_header_timeout_s;
	char *push_url;		  /* Pyroscope base URL; "" disables push */
	char *push_name;	  /* Pyroscope application name */
	char *push_labels;	  /* "k=v,k=v" */
	char *spool_dir;	  /* profiles waiting to be pushed */
	uint64_t spool_bytes;	  /* spool limit: oldest dropped beyond it */
	enum log_level log_level;
};

/* Defaults. */
void daemon_config_init(struct daemon_config *c);
void daemon_config_done(struct daemon_config *c);

/*
 * Set one key from its text. On error returns -EINVAL (unknown key: -ENOKEY) and writes
 * "what is wrong (what is allowed)" into err.
 */
int daemon_config_set(struct daemon_config *c, const char *key, const char *value, char *err,
		      size_t err_size);

/*
 * Read a file on top of *c. Logs every error as "PATH:LINE: ..." (not just the first) and then
 * returns -EINVAL; -ENOENT (not logged) when the file does not exist, other -errno when it
 * cannot be read (not logged).
 */
int daemon_config_load(struct daemon_config *c, const char *path);

/*
 * Checks across keys (e.g. push_url needs spool_dir, http_profiles_reserved < http_profiles, a
 * non-loopback listener needs client certificates or a token, and a token needs TLS there); logs
 * and returns -EINVAL.
 */
int daemon_config_check(const struct daemon_config *c);

/* The http_* keys as the HTTP server takes them. */
struct http_limits;
void daemon_config_http_limits(const struct daemon_config *c, struct http_limits *ret);

/* The key table, for getopt and help: the i-th key (NULL past the end) and its help line. */
const char *daemon_config_key(size_t i, const char **ret_help);

/* Write the configuration in the file format (for --check-config). */
void daemon_config_write(const struct daemon_config *c, FILE *f);
