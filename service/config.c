// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/profd.h"
#include "common/log.h"
#include "common/macro.h"
#include "service/config.h"
#include "service/http.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_LINES_MAX 10000
#define CONFIG_STRING_MAX PATH_MAX

enum key_type { KEY_UINT, KEY_DURATION, KEY_SIZE, KEY_STRING, KEY_LOG_LEVEL, KEY_BOOL };

typedef int (*str_check_t)(const char *v, char *err, size_t err_size);

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max; /* numbers */
	str_check_t check; /* strings */
	const char *help;
};

static int check_path(const char *v, char *err, size_t err_size);
static int check_path_or_empty(const char *v, char *err, size_t err_size);
static int check_listen(const char *v, char *err, size_t err_size);
static int check_url(const char *v, char *err, size_t err_size);
static int check_name(const char *v, char *err, size_t err_size);
static int check_labels(const char *v, char *err, size_t err_size);
static int check_group(const char *v, char *err, size_t err_size);
static bool name_char(char c);
static int check_metrics_access(const char *v, char *err, size_t err_size);
static int check_format(const char *v, char *err, size_t err_size);
static int check_demangle(const char *v, char *err, size_t err_size);

#define OFF(f) offsetof(struct daemon_config, f)
static const struct key keys[] = {
    {"frequency", KEY_UINT, OFF(frequency), 1, DAEMON_FREQ_MAX, NULL, "samples per second per CPU"},
    {"interval", KEY_DURATION, OFF(interval_s), 1, DAEMON_INTERVAL_MAX, NULL,
     "length of each profile file"},
    {"output_dir", KEY_STRING, OFF(output_dir), 0, 0, check_path_or_empty,
     "directory of interval profiles (\"\" writes none)"},
    {"format", KEY_STRING, OFF(format), 0, 0, check_format,
     "format of the interval files: pprof, speedscope or folded"},
    {"demangle", KEY_STRING, OFF(demangle), 0, 0, check_demangle,
     "C++/Rust names: simple (no parameters or template arguments), templates, full or none"},
    {"retention_count", KEY_UINT, OFF(retention_count), 0, 1000000, NULL,
     "interval files kept, oldest removed first (0: no limit)"},
    {"retention_bytes", KEY_SIZE, OFF(retention_bytes), 0, 1ull << 50, NULL,
     "total size of interval files kept (0: no limit)"},
    {"stack_bytes", KEY_UINT, OFF(stack_bytes), 0, PROFD_STACK_BYTES_MAX, NULL,
     "the most user stack bytes a sample copies"},
    {"adaptive_stack_copy", KEY_BOOL, OFF(adaptive_stack_copy), 0, 0, NULL,
     "copy only the stack bytes each process's walks need, learnt from its samples, up to "
     "stack_bytes (yes/no)"},
    {"off_cpu", KEY_BOOL, OFF(off_cpu), 0, 0, NULL,
     "also record where threads wait, weighted by how long (sample type off_cpu) (yes/no)"},
    {"off_cpu_min_us", KEY_UINT, OFF(off_cpu_min_us), 1, 60000000, NULL,
     "off-CPU waits shorter than this many microseconds are not recorded"},
    {"python", KEY_BOOL, OFF(python), 0, 0, NULL,
     "show the Python functions CPython 3.11+ processes run in place of their interpreter's "
     "frames (yes/no)"},
    {"listen", KEY_STRING, OFF(listen), 0, 0, check_listen,
     "HTTP addresses HOST:PORT or unix:/PATH, comma-separated, for /debug/pprof/profile and "
     "/metrics (\"\" disables)"},
    {"allow_group", KEY_STRING, OFF(allow_group), 0, 0, check_group,
     "group whose members may fetch whole-host profiles (\"\": root only)"},
    {"own_processes", KEY_BOOL, OFF(own_processes), 0, 0, NULL,
     "let any local user fetch a profile of their own processes (yes/no)"},
    {"metrics_access", KEY_STRING, OFF(metrics_access), 0, 0, check_metrics_access,
     "who may read /metrics: local (any local user) or privileged"},
    {"tls_cert", KEY_STRING, OFF(tls_cert), 0, 0, check_path_or_empty,
     "PEM certificate chain: TCP listeners serve HTTPS"},
    {"tls_key", KEY_STRING, OFF(tls_key), 0, 0, check_path_or_empty, "PEM private key of tls_cert"},
    {"tls_client_ca", KEY_STRING, OFF(tls_client_ca), 0, 0, check_path_or_empty,
     "PEM CA certificates: a client certificate they signed grants full access"},
    {"bearer_token_file", KEY_STRING, OFF(bearer_token_file), 0, 0, check_path_or_empty,
     "file holding a token: 'Authorization: Bearer TOKEN' grants full access"},
    {"http_profiles", KEY_UINT, OFF(http_profiles), 1, HTTP_PROFILES_MAX, NULL,
     "HTTP profile requests collected at once, in all (503 beyond)"},
    {"http_profiles_per_user", KEY_UINT, OFF(http_profiles_per_user), 1, HTTP_PROFILES_MAX, NULL,
     "profile requests at once of one unprivileged user (own_processes)"},
    {"http_profiles_reserved", KEY_UINT, OFF(http_profiles_reserved), 0, HTTP_PROFILES_MAX, NULL,
     "of http_profiles, kept for root, allow_group, certificates and the token"},
    {"http_connections", KEY_UINT, OFF(http_connections), 1, HTTP_CONNECTIONS_MAX, NULL,
     "HTTP connections at once over every listener, in all (closed at once beyond)"},
    {"http_connections_per_user", KEY_UINT, OFF(http_connections_per_user), 1, HTTP_CONNECTIONS_MAX,
     NULL, "connections at once of one unprivileged caller (its uid, or its address if remote)"},
    {"http_connections_reserved", KEY_UINT, OFF(http_connections_reserved), 0, HTTP_CONNECTIONS_MAX,
     NULL, "of http_connections, kept for root and allow_group"},
    {"http_header_timeout", KEY_DURATION, OFF(http_header_timeout_s), 1, HTTP_HEADER_TIMEOUT_MAX,
     NULL,
     "a request's headers must be complete this long after the connection (or the "
     "previous answer) started, else it is closed"},
    {"push_url", KEY_STRING, OFF(push_url), 0, 0, check_url,
     "Pyroscope server to push each interval to (\"\" disables)"},
    {"push_name", KEY_STRING, OFF(push_name), 0, 0, check_name, "Pyroscope application name"},
    {"push_labels", KEY_STRING, OFF(push_labels), 0, 0, check_labels,
     "Pyroscope labels, key=value,key=value"},
    {"spool_dir", KEY_STRING, OFF(spool_dir), 0, 0, check_path, "profiles waiting to be pushed"},
    {"spool_bytes", KEY_SIZE, OFF(spool_bytes), 4096, 1ull << 50, NULL,
     "spool size limit, oldest dropped beyond it"},
    {"log_level", KEY_LOG_LEVEL, OFF(log_level), 0, 0, NULL,
     "error, warning, notice, info or debug"},
};

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
    [LOG_LEVEL_INFO] = "info",	 [LOG_LEVEL_DEBUG] = "debug",
};

static int errf(char *err, size_t err_size, const char *fmt, ...) _printf_(3, 4);
static int errf(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void daemon_config_init(struct daemon_config *c)
{
	*c = (struct daemon_config){
	    .frequency = 99,
	    .interval_s = 60,
	    .output_dir = strdup("/var/lib/profd"),
	    .format = strdup("pprof"),
	    .demangle = strdup("simple"),
	    .retention_count = 1440,
	    .retention_bytes = 1ull << 30,
	    .stack_bytes = PROFD_STACK_BYTES_DEFAULT,
	    .adaptive_stack_copy = true,
	    .python = true,
	    .off_cpu_min_us = 1000,
	    .listen = strdup("127.0.0.1:7632"),
	    .allow_group = strdup(DAEMON_GROUP_DEFAULT),
	    .metrics_access = strdup("local"),
	    .tls_cert = strdup(""),
	    .tls_key = strdup(""),
	    .tls_client_ca = strdup(""),
	    .bearer_token_file = strdup(""),
	    .http_profiles = HTTP_PROFILES_DEFAULT,
	    .http_profiles_per_user = HTTP_PROFILES_PER_USER_DEFAULT,
	    .http_profiles_reserved = HTTP_PROFILES_RESERVED_DEFAULT,
	    .http_connections = HTTP_CONNECTIONS_DEFAULT,
	    .http_connections_per_user = HTTP_CONNECTIONS_PER_USER_DEFAULT,
	    .http_connections_reserved = HTTP_CONNECTIONS_RESERVED_DEFAULT,
	    .http_header_timeout_s = HTTP_HEADER_TIMEOUT_DEFAULT,
	    .push_url = strdup(""),
	    .push_name = strdup("profd"),
	    .push_labels = strdup(""),
	    .spool_dir = strdup("/var/lib/profd/spool"),
	    .spool_bytes = 256ull << 20,
	    .log_level = LOG_LEVEL_NOTICE,
	};
}

static char **str_field(struct daemon_config *c, const struct key *k)
{
	return (char **)((char *)c + k->offset);
}

void daemon_config_done(struct daemon_config *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].type == KEY_STRING) {
			free(*str_field(c, &keys[i]));
			*str_field(c, &keys[i]) = NULL;
		}
}

const char *daemon_config_key(size_t i, const char **ret_help)
{
	if (i >= ARRAY_SIZE(keys))
		return NULL;
	if (ret_help)
		*ret_help = keys[i].help;
	return keys[i].name;
}

/* ---- value checks ---------------------------------------------------------------------- */

static int check_path(const char *v, char *err, size_t err_size)
{
	if (!*v)
		return errf(err, err_size, "empty path (expected a directory)");
	if (strlen(v) >= CONFIG_STRING_MAX)
		return errf(err, err_size, "path too long (at most %d bytes)",
			    CONFIG_STRING_MAX - 1);
	for (const char *p = v; *p; p++)
		if (iscntrl((unsigned char)*p))
			return errf(err, err_size, "control character in path");
	return 0;
}

static int check_path_or_empty(const char *v, char *err, size_t err_size)
{
	return *v ? check_path(v, err, err_size) : 0;
}

static int check_listen(const char *v, char *err, size_t err_size)
{
	struct daemon_listener l[DAEMON_LISTEN_MAX];
	size_t n;

	if (daemon_parse_listeners(v, l, &n) < 0)
		return errf(err, err_size,
			    "expected \"\" (no HTTP server) or up to %d comma-separated addresses: "
			    "ADDRESS:PORT with a numeric IPv4 address, [IPv6] or localhost and a port "
			    "0..65535 (e.g. 127.0.0.1:7632), or unix:/ABSOLUTE/PATH of at most %d "
			    "bytes (e.g. unix:/run/profd/profd.sock)",
			    DAEMON_LISTEN_MAX, DAEMON_UNIX_PATH_MAX);
	return 0;
}

static int check_group(const char *v, char *err, size_t err_size)
{
	size_t n = strlen(v);

	/* Whether the group exists is checked at start: it may be created after the file. */
	if (n > 64)
		return errf(err, err_size, "group name too long (at most 64 bytes)");
	for (const char *p = v; *p; p++)
		if (!name_char(*p))
			return errf(err, err_size,
				    "'%c' not allowed in a group (a name or number: A-Z a-z 0-9 . _ -)",
				    *p);
	return 0;
}

static int check_metrics_access(const char *v, char *err, size_t err_size)
{
	if (strcmp(v, "local") && strcmp(v, "privileged"))
		return errf(err, err_size,
			    "expected local (any local user may read /metrics) or privileged (root, "
			    "allow_group, client certificate or token only)");
	return 0;
}

static int check_format(const char *v, char *err, size_t err_size)
{
	/* The names of output/output.h's formats (config.c stays free of the proto module, which
	 * the fuzz targets do not link); daemon.c parses the value with it. */
	if (strcmp(v, "pprof") && strcmp(v, "speedscope") && strcmp(v, "folded"))
		return errf(err, err_size, "expected pprof, speedscope or folded");
	return 0;
}

static int check_demangle(const char *v, char *err, size_t err_size)
{
	/* The names of symbolize.h's modes (config.c links without the symbolizer, as above);
	 * daemon.c parses the value with sym_demangle_mode_from_string(). */
	if (strcmp(v, "simple") && strcmp(v, "templates") && strcmp(v, "full") && strcmp(v, "none"))
		return errf(err, err_size,
			    "expected simple (no parameters or template arguments), templates, "
			    "full or none (mangled names)");
	return 0;
}

static int check_url(const char *v, char *err, size_t err_size)
{
	const char *host;

	if (!*v)
		return 0;
	if (!strncmp(v, "http://", 7))
		host = v + 7;
	else if (!strncmp(v, "https://", 8))
		host = v + 8;
	else
		return errf(
		    err, err_size,
		    "expected \"\" (no push) or an http:// or https:// URL of a Pyroscope server");
	if (!*host || *host == '/')
		return errf(err, err_size, "URL without a host");
	if (strlen(v) > 2048)
		return errf(err, err_size, "URL too long (at most 2048 bytes)");
	for (const char *p = v; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '?' ||
		    *p == '#')
			return errf(err, err_size,
				    "URL must have no spaces, query or fragment (profd appends "
				    "/ingest?...)");
	return 0;
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static int check_name(const char *v, char *err, size_t err_size)
{
	size_t n = strlen(v);

	if (n == 0 || n > 128)
		return errf(err, err_size, "expected 1..128 characters of A-Z a-z 0-9 . _ -");
	for (const char *p = v; *p; p++)
		if (!name_char(*p))
			return errf(err, err_size, "'%c' not allowed (allowed: A-Z a-z 0-9 . _ -)",
				    *p);
	return 0;
}

static int check_labels(const char *v, char *err, size_t err_size)
{
	size_t n = 0;

	if (!*v)
		return 0;
	for (const char *p = v;;) {
		const char *k = p;

		if (!(isalpha((unsigned char)*p) || *p == '_'))
			return errf(err, err_size,
				    "label %zu: a key must start with a letter or '_' "
				    "(expected key=value,key=value)",
				    n + 1);
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
			p++;
		if (*p != '=')
			return errf(err, err_size,
				    "label %zu ('%.*s'): expected key=value, with keys "
				    "of letters, digits, '_' and '.'",
				    n + 1, (int)(p - k + 1), k);
		p++;
		if (!*p || *p == ',')
			return errf(err, err_size, "label %zu: empty value", n + 1);
		while (*p && *p != ',') {
			if (!(name_char(*p) || *p == ':' || *p == '/'))
				return errf(
				    err, err_size,
				    "label %zu: '%c' not allowed in a value (allowed: A-Z a-z "
				    "0-9 . _ - : /)",
				    n + 1, *p);
			p++;
		}
		if (++n > DAEMON_PUSH_LABELS_MAX)
			return errf(err, err_size, "too many labels (at most %d)",
				    DAEMON_PUSH_LABELS_MAX);
		if (!*p)
			return 0;
		p++;
	}
}

/* ---- numbers ----------------------------------------------------------------------------- */

static int parse_u64(const char *v, uint64_t *ret, const char **ret_end)
{
	char *end;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	*ret = strtoull(v, &end, 10);
	if (errno)
		return -ERANGE;
	*ret_end = end;
	return 0;
}

static void fmt_size(uint64_t v, char *buf, size_t size)
{
	static const char suffix[] = "KMGT";
	int i = -1;

	while (v && v % 1024 == 0 && i < 3) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, size, "%" PRIu64, v);
	else
		snprintf(buf, size, "%" PRIu64 "%c", v, suffix[i]);
}

static int set_number(struct daemon_config *c, const struct key *k, const char *v, char *err,
		      size_t err_size)
{
	uint64_t n, mult = 1;
	const char *end;
	char lo[32], hi[32];

	if (k->type == KEY_SIZE) {
		fmt_size(k->min, lo, sizeof(lo));
		fmt_size(k->max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%" PRIu64, k->min);
		snprintf(hi, sizeof(hi), "%" PRIu64, k->max);
	}
	if (parse_u64(v, &n, &end) < 0)
		goto bad;
	if (k->type == KEY_SIZE && *end) {
		const char *s = strchr("KMGT", toupper((unsigned char)*end));

		if (!s || !*s)
			goto bad;
		mult = 1ull << (10 * (s - "KMGT" + 1));
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (toupper((unsigned char)*end) == 'B')
			end++;
	} else if (k->type == KEY_DURATION && *end) {
		if (*end == 'm')
			mult = 60;
		else if (*end == 'h')
			mult = 3600;
		else if (*end != 's')
			goto bad;
		end++;
	}
	if (*end)
		goto bad;
	if (__builtin_mul_overflow(n, mult, &n) || n < k->min || n > k->max) {
		if (k->type == KEY_DURATION)
			return errf(err, err_size, "'%s' out of range (allowed: %s..%s seconds)", v,
				    lo, hi);
		return errf(err, err_size, "'%s' out of range (allowed: %s..%s)", v, lo, hi);
	}
	if (k->type == KEY_SIZE)
		*(uint64_t *)((char *)c + k->offset) = n;
	else
		*(unsigned *)((char *)c + k->offset) = (unsigned)n;
	return 0;
bad:
	switch (k->type) {
	case KEY_SIZE:
		return errf(err, err_size,
			    "'%s' is not a size (expected bytes %s..%s, with an "
			    "optional K, M, G or T suffix)",
			    v, lo, hi);
	case KEY_DURATION:
		return errf(err, err_size,
			    "'%s' is not a duration (expected %s..%s seconds, with "
			    "an optional s, m or h suffix)",
			    v, lo, hi);
	default:
		return errf(err, err_size, "'%s' is not a number (expected %s..%s)", v, lo, hi);
	}
}

int daemon_config_set(struct daemon_config *c, const char *key, const char *value, char *err,
		      size_t err_size)
{
	const struct key *k = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, key))
			k = &keys[i];
	if (!k) {
		size_t n = 0;

		n += snprintf(err, err_size, "unknown key '%s' (known keys:", key);
		for (size_t i = 0; i < ARRAY_SIZE(keys) && n < err_size; i++)
			n += snprintf(err + n, err_size - n, " %s", keys[i].name);
		if (n < err_size)
			snprintf(err + n, err_size - n, ")");
		return -ENOKEY;
	}
	switch (k->type) {
	case KEY_UINT:
	case KEY_DURATION:
	case KEY_SIZE:
		return set_number(c, k, value, err, err_size);
	case KEY_STRING: {
		char **f = str_field(c, k), *copy;
		int r = k->check(value, err, err_size);

		if (r < 0)
			return r;
		copy = strdup(value);
		if (!copy)
			return errf(err, err_size, "out of memory");
		free(*f);
		*f = copy;
		return 0;
	}
	case KEY_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1")) {
			*(bool *)((char *)c + k->offset) = true;
			return 0;
		}
		if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0")) {
			*(bool *)((char *)c + k->offset) = false;
			return 0;
		}
		return errf(err, err_size, "'%s' is not a yes/no value (allowed: yes, no)", value);
	case KEY_LOG_LEVEL:
		for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
			if (!strcmp(value, level_names[i])) {
				c->log_level = i;
				return 0;
			}
		return errf(
		    err, err_size,
		    "'%s' is not a log level (allowed: error, warning, notice, info, debug)",
		    value);
	}
	return -EINVAL;
}

/* ---- the file ---------------------------------------------------------------------------- */

/* Unquote a value in place. NULL on a syntax error (err filled). */
static char *parse_value(char *v, char *err, size_t err_size)
{
	char *out = v, *p;

	if (*v != '"') {
		/* Unquoted: a '#' after whitespace starts a comment; trailing blanks go. */
		for (p = v; *p; p++)
			if (*p == '#' && p > v && isspace((unsigned char)p[-1])) {
				*p = '\0';
				break;
			}
		for (p = v + strlen(v); p > v && isspace((unsigned char)p[-1]); p--)
			p[-1] = '\0';
		if (*v == '#')
			*v = '\0';
		return v;
	}
	for (p = v + 1; *p && *p != '"'; p++) {
		if (*p == '\\') {
			p++;
			if (*p != '"' && *p != '\\') {
				errf(err, err_size,
				     "unknown escape in quoted value (only \\\" and \\\\)");
				return NULL;
			}
		}
		*out++ = *p;
	}
	if (*p != '"') {
		errf(err, err_size, "unterminated quoted value");
		return NULL;
	}
	for (p++; isspace((unsigned char)*p); p++)
		;
	if (*p && *p != '#') {
		errf(err, err_size, "text after the closing quote");
		return NULL;
	}
	*out = '\0';
	return v;
}

int daemon_config_load(struct daemon_config *c, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[CONFIG_LINE_MAX + 2], err[512];
	bool seen[ARRAY_SIZE(keys)] = {};
	unsigned lineno = 0, errors = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *eq, *key, *value, *kend;
		size_t len = strlen(line);

		lineno++;
		if (lineno > CONFIG_LINES_MAX) {
			log_error("%s:%u: too many lines (at most %d).", path, lineno,
				  CONFIG_LINES_MAX);
			return -EINVAL;
		}
		if (len > CONFIG_LINE_MAX || (len == sizeof(line) - 1 && line[len - 1] != '\n')) {
			int ch;

			log_error("%s:%u: line too long (at most %d bytes).", path, lineno,
				  CONFIG_LINE_MAX);
			errors++;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			log_error("%s:%u: expected 'key = value', got '%s'.", path, lineno, p);
			errors++;
			continue;
		}
		key = p;
		for (kend = eq; kend > key && isspace((unsigned char)kend[-1]); kend--)
			;
		*kend = '\0';
		value = eq + 1;
		while (isspace((unsigned char)*value))
			value++;
		if (!*key) {
			log_error("%s:%u: missing key before '='.", path, lineno);
			errors++;
			continue;
		}
		value = parse_value(value, err, sizeof(err));
		if (!value) {
			log_error("%s:%u: %s: %s.", path, lineno, key, err);
			errors++;
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (!strcmp(keys[i].name, key)) {
				if (seen[i]) {
					log_error("%s:%u: %s: set twice (each key at most once).",
						  path, lineno, key);
					errors++;
				}
				seen[i] = true;
			}
		if (daemon_config_set(c, key, value, err, sizeof(err)) < 0) {
			bool unknown = !strncmp(err, "unknown key", 11);

			log_error("%s:%u: %s%s%s.", path, lineno, unknown ? "" : key,
				  unknown ? "" : ": ", err);
			errors++;
		}
	}
	if (ferror(f))
		return -EIO;
	return errors ? -EINVAL : 0;
}

int daemon_config_check(const struct daemon_config *c)
{
	struct daemon_listener l[DAEMON_LISTEN_MAX];
	struct http_limits hl;
	char err[256];
	size_t n = 0;

	if (daemon_config_http_limits(c, &hl), http_limits_check(&hl, err, sizeof(err)) < 0)
		return log_error_errno(-EINVAL, "%s.", err);
	if (c->push_url[0] && !c->spool_dir[0])
		return log_error_errno(-EINVAL,
				       "push_url is set but spool_dir is empty: a spool "
				       "directory is needed to keep profiles while the server "
				       "is unreachable.");
	if (!c->tls_cert[0] != !c->tls_key[0])
		return log_error_errno(-EINVAL, "tls_cert and tls_key go together: set both (PEM "
						"certificate chain and its private key) or neither.");
	if (c->tls_client_ca[0] && !c->tls_cert[0])
		return log_error_errno(-EINVAL,
				       "tls_client_ca is set but tls_cert/tls_key are not: client "
				       "certificates are checked only over HTTPS.");
	if (daemon_parse_listeners(c->listen, l, &n) < 0)
		return log_error_errno(-EINVAL, "listen: bad value '%s'.", c->listen);
	for (size_t i = 0; i < n; i++) {
		const char *v6 = strchr(l[i].host, ':') ? "[" : "";

		if (l[i].is_unix || l[i].loopback)
			continue;
		/*
		 * Off this host a caller's uid is unknown: only a verified client certificate or
		 * the token can tell who may see the whole host's profiles.
		 */
		if (!c->tls_client_ca[0] && !c->bearer_token_file[0])
			return log_error_errno(
			    -EINVAL,
			    "listen: %s%s%s:%u is not a loopback address, and a remote caller cannot be "
			    "identified: set tls_cert, tls_key and tls_client_ca (HTTPS with client "
			    "certificates) or bearer_token_file, or listen on 127.0.0.1 or a "
			    "unix: socket. See profd(1), ACCESS CONTROL.",
			    v6, l[i].host, *v6 ? "]" : "", l[i].port);
		/* Whoever sees the traffic would hold the whole host's profiles. */
		if (!c->tls_cert[0])
			return log_error_errno(
			    -EINVAL,
			    "listen: %s%s%s:%u is not a loopback address and would serve plain "
			    "HTTP: the bearer token would cross the network in clear text. Set "
			    "tls_cert and tls_key (HTTPS), or listen on 127.0.0.1 or a unix: socket. "
			    "See profd(1), ACCESS CONTROL.",
			    v6, l[i].host, *v6 ? "]" : "", l[i].port);
	}
	return 0;
}

void daemon_config_http_limits(const struct daemon_config *c, struct http_limits *ret)
{
	*ret = (struct http_limits){
	    .profiles = c->http_profiles,
	    .profiles_per_user = c->http_profiles_per_user,
	    .profiles_reserved = c->http_profiles_reserved,
	    .connections = c->http_connections,
	    .connections_per_user = c->http_connections_per_user,
	    .connections_reserved = c->http_connections_reserved,
	    .header_timeout_s = c->http_header_timeout_s,
	};
}

static void write_string(FILE *f, const char *key, const char *v)
{
	bool quote = !*v || strpbrk(v, "\"#\\") || isspace((unsigned char)v[0]) ||
		     isspace((unsigned char)v[strlen(v) - 1]);

	if (!quote) {
		fprintf(f, "%s = %s\n", key, v);
		return;
	}
	fprintf(f, "%s = \"", key);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
	fputs("\"\n", f);
}

void daemon_config_write(const struct daemon_config *c, FILE *f)
{
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		const void *field = (const char *)c + k->offset;

		switch (k->type) {
		case KEY_UINT:
		case KEY_DURATION:
			fprintf(f, "%s = %u\n", k->name, *(const unsigned *)field);
			break;
		case KEY_SIZE:
			fmt_size(*(const uint64_t *)field, buf, sizeof(buf));
			fprintf(f, "%s = %s\n", k->name, buf);
			break;
		case KEY_STRING:
			write_string(f, k->name, *(char *const *)field);
			break;
		case KEY_LOG_LEVEL:
			fprintf(f, "%s = %s\n", k->name, level_names[c->log_level]);
			break;
		case KEY_BOOL:
			fprintf(f, "%s = %s\n", k->name, *(const bool *)field ? "yes" : "no");
			break;
		}
	}
}
