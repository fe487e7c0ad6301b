// SPDX-License-Identifier: MIT
/*
 * `profd daemon`: profile the whole host continuously.
 *
 * One thread owns everything that samples (capture, session, aggregates, symbolization): the
 * main loop below. It polls the ring buffer, and between polls it
 *   - closes an interval when it is due: the session's aggregate is swapped for a fresh one,
 *     turned into a pprof, written to output_dir (atomically, then retention) and spooled for
 *     push;
 *   - serves on-demand profiles: a request queued by the HTTP thread gets a session tap (an
 *     extra aggregate fed with the same samples) for its N seconds, so interval files and
 *     on-demand profiles both see every sample;
 *   - handles signals: SIGTERM/SIGINT write the partial interval and exit 0; SIGHUP reloads the
 *     configuration without dropping the session (see daemon_reload()).
 * The HTTP server (http.c) and the push worker (push.c) run in their own threads and never
 * touch the session; /metrics renders (service/metrics.c) a snapshot the main loop refreshes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "bpf/profd.h"
#include "common/util.h"
#include "common/log.h"
#include "common/macro.h"
#include "sources/capture.h"
#include "commands/cli.h"
#include "service/access.h"
#include "service/config.h"
#include "service/http.h"
#include "service/metrics.h"
#include "service/outdir.h"
#include "output/profile.h"
#include "service/push.h"
#include "pipeline/session.h"
#include "pipeline/unwind/unwind-cache.h"
#include "output/output.h"
#include "symbolize/symbolize.h"

#define POLL_MS 100
#define METRICS_REFRESH_NS (500ull * 1000 * 1000)
#define PUSH_FLUSH_MS 5000
#define DAEMON_KEY_NAME_MAX 64 /* a configuration key as an option name, with its NUL */

/*
 * What the running capture records: the configuration keys that shape it. Kept apart from
 * d->cfg (what was asked): a reload whose new capture cannot start keeps these, and profiles
 * describe these, never a value that is only in the file.
 */
struct capture_settings {
	unsigned frequency, stack_bytes, off_cpu_min_us;
	bool adaptive_stack_copy, python, off_cpu;
};

struct job {
	struct http_request *req;
	bool off_cpu; /* off-CPU waits were recorded when the job started */
	struct session_tap *tap;
	struct aggregate *agg;
	struct timespec start_wall;
	uint64_t start_ns, deadline_ns;
};

struct daemon {
	const char *config_path;
	bool config_explicit;
	bool check_config; /* --check-config: print the configuration and exit */
	const char **cli_keys, **cli_values; /* --KEY VALUE, in command-line order */
	size_t n_cli;

	struct daemon_config cfg;
	struct capture_settings run; /* what d->capture records (see struct capture_settings) */
	struct session *session;
	struct capture *capture;
	struct http_server *http;
	struct push *push;
	struct kallsyms *ks;
	struct sym_cache *sym_cache;
	uint64_t lost_base; /* lost counts of captures already freed */

	struct timespec interval_wall;
	uint64_t interval_ns;
	struct job jobs[HTTP_PROFILES_MAX];
	size_t n_jobs;
	int listen_fds[DAEMON_LISTEN_MAX]; /* sockets systemd passed (profd.socket) */
	size_t n_listen_fds;

	uint64_t profiles_written, write_errors, retention_removed, reloads, reload_failures;
	uint64_t snapshot_ns;
	pthread_mutex_t snap_lock;
	struct metrics_snapshot snap; /* what /metrics shows, under snap_lock */
	struct log_ratelimit rl_write;
};

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	stop_requested = sig;
}

static void on_reload(int sig)
{
	reload_requested = 1;
}

/* ---- configuration ----------------------------------------------------------------------- */

/* Defaults, then the file, then the command line. Logs what is wrong. */
static int config_load(struct daemon *d, struct daemon_config *ret)
{
	struct daemon_config c;
	char err[512];
	int r;

	daemon_config_init(&c);
	r = daemon_config_load(&c, d->config_path);
	if (r == -ENOENT && !d->config_explicit) {
		log_info("No configuration file %s: using the defaults.", d->config_path);
	} else if (r == -EINVAL) {
		daemon_config_done(&c);
		return r;
	} else if (r < 0) {
		daemon_config_done(&c);
		return log_error_errno(r, "Cannot read the configuration file %s: %m",
				       d->config_path);
	}
	for (size_t i = 0; i < d->n_cli; i++) {
		r = daemon_config_set(&c, d->cli_keys[i], d->cli_values[i], err, sizeof(err));
		if (r < 0) {
			log_error("Command line: --%s: %s.", d->cli_keys[i], err);
			daemon_config_done(&c);
			return -EINVAL;
		}
	}
	r = daemon_config_check(&c);
	if (r < 0) {
		daemon_config_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

static int opt_config(const struct cli_option *opt, const char *arg, void *opts)
{
	struct daemon *d = opts;

	d->config_path = arg;
	d->config_explicit = true;
	return 0;
}

/* --KEY VALUE: applied after the file (config_load()), in the order given. */
static int opt_key(const struct cli_option *opt, const char *arg, void *opts)
{
	struct daemon *d = opts;

	d->cli_keys[d->n_cli] = opt->data;
	d->cli_values[d->n_cli++] = arg;
	return 0;
}

static const struct cli_option daemon_fixed_options[] = {
	{ CLI_CALL, "config", 'c', true, "FILE",
	  "configuration file (default " DAEMON_CONFIG_PATH ";\na missing default file means all "
	  "defaults)",
	  .apply = opt_config },
	{ CLI_TRUE, "check-config", 0, .help = "check the configuration, print it and exit",
	  .offset = offsetof(struct daemon, check_config) },
	{ CLI_HELP, "help", 'h', .help = "show this help" },
	{ CLI_TEXT, .help = "\nEvery configuration key is also an option (it overrides the file):\n" },
};

/*
 * The fixed options, then one per configuration key (its name with '-' for '_'): *ret_options
 * and *ret_names to free.
 */
static int daemon_options(struct cli_option **ret_options, size_t *ret_n, char **ret_names)
{
	size_t n_keys = 0, n_fixed = ARRAY_SIZE(daemon_fixed_options);
	struct cli_option *opts;
	const char *key, *h;
	char *names;

	while (daemon_config_key(n_keys, NULL))
		n_keys++;
	opts = calloc(n_fixed + n_keys, sizeof(*opts));
	names = calloc(n_keys, DAEMON_KEY_NAME_MAX);
	if (!opts || !names) {
		free(opts);
		free(names);
		return -ENOMEM;
	}
	memcpy(opts, daemon_fixed_options, sizeof(daemon_fixed_options));
	for (size_t i = 0; (key = daemon_config_key(i, &h)) && i < n_keys; i++) {
		char *name = names + i * DAEMON_KEY_NAME_MAX;

		snprintf(name, DAEMON_KEY_NAME_MAX, "%s", key);
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = '-';
		opts[n_fixed + i] = (struct cli_option){ CLI_CALL, name, 0, true, NULL, h,
							 .apply = opt_key, .data = key };
	}
	*ret_options = opts;
	*ret_n = n_fixed + n_keys;
	*ret_names = names;
	return 0;
}

/* 0: options in d; 1: --help was shown; <0: an error, logged. */
static int parse_args(int argc, char **argv, struct daemon *d)
{
	_cleanup_free_ struct cli_option *opts = NULL;
	_cleanup_free_ char *names = NULL;
	struct cli_command cmd = {
		.name = "daemon",
		.usage = "Usage: profd daemon [--config FILE] [--KEY VALUE...]\n"
			 "\n"
			 "Profile every process on the host, write one pprof profile per interval, "
			 "serve\n"
			 "/debug/pprof/profile and /metrics, and optionally push to Pyroscope.\n"
			 "\n",
		.footer = "\nSignals: SIGHUP reloads the configuration, SIGTERM/SIGINT write the "
			  "current\ninterval and exit. See profd(1).\n",
		.in_order = true,
	};

	if (daemon_options(&opts, &cmd.n_options, &names) < 0)
		return log_oom();
	cmd.options = opts;
	d->cli_keys = calloc(argc, sizeof(*d->cli_keys));
	d->cli_values = calloc(argc, sizeof(*d->cli_values));
	if (!d->cli_keys || !d->cli_values)
		return log_oom();
	d->config_path = DAEMON_CONFIG_PATH;
	return cli_parse(&cmd, argc, argv, d, NULL);
}

/* ---- interval files ---------------------------------------------------------------------- */

/* The configured format of interval files (validated by config.c). */
static enum output_format daemon_format(const struct daemon *d)
{
	enum output_format f = OUTPUT_PPROF;

	(void)output_format_from_string(d->cfg.format, &f);
	return f;
}

static enum sym_demangle_mode demangle_mode(const struct daemon_config *c)
{
	enum sym_demangle_mode m = SYM_DEMANGLE_SIMPLE;

	(void)sym_demangle_mode_from_string(c->demangle, &m);
	return m;
}

static struct profile_options profile_opts(struct daemon *d, const struct timespec *start_wall,
					   uint64_t duration_ns)
{
	return (struct profile_options){
	    .period_ns = 1000000000ull / d->run.frequency,
	    .time_nanos = (int64_t)start_wall->tv_sec * 1000000000ll + start_wall->tv_nsec,
	    .duration_nanos = (int64_t)duration_ns,
	    .inlines = true,
	    .kallsyms = d->ks,
	    .sym_cache = d->sym_cache,
	    .off_cpu = d->run.off_cpu,
	};
}

/* Close the current interval: write it, spool it for push, start the next one. */
static void write_interval(struct daemon *d)
{
	struct aggregate *agg = NULL;
	struct pprof_builder *b = NULL;
	struct profile_summary sum;
	struct profile_options o;
	struct timespec end_wall;
	uint64_t end_ns = mono_ns();
	int r;

	clock_gettime(CLOCK_REALTIME, &end_wall);
	r = session_take_aggregate(d->session, &agg);
	if (r < 0) {
		/* Keep sampling into the same aggregate; the next interval gets both. */
		if (log_ratelimit_ok(&d->rl_write))
			log_error_errno(r, "Cannot start a new interval: %m");
		return;
	}
	if (!d->cfg.output_dir[0] && !d->push)
		goto next; /* nowhere to go: do not symbolize for nothing */
	o = profile_opts(d, &d->interval_wall, end_ns - d->interval_ns);
	r = profile_build(agg, &o, &b, &sum);
	if (r < 0) {
		d->write_errors++;
		log_error_errno(
		    r, "Failed to build the profile of the interval: %m. %" PRIu64 " samples lost.",
		    aggregate_n_samples(agg));
		goto next;
	}
	if (d->cfg.output_dir[0]) {
		_cleanup_free_ char *path = NULL;

		char err[512] = "";

		r = outdir_prepare("output_dir", d->cfg.output_dir, err, sizeof(err));
		if (r >= 0)
			r = outdir_profile_path(d->cfg.output_dir, d->interval_wall.tv_sec,
						daemon_format(d), &path);
		if (r >= 0)
			r = output_write_builder(b, daemon_format(d), path, OUTDIR_FILE_MODE);
		if (r < 0) {
			d->write_errors++;
			if (!log_ratelimit_ok(&d->rl_write))
				;
			else if (err[0])
				log_error("Failed to write the interval profile: %s.", err);
			else
				log_error_errno(r,
						"Failed to write the interval profile into %s: %m",
						d->cfg.output_dir);
		} else {
			d->profiles_written++;
			log_info("Wrote %s: %" PRIu64 " samples, %zu stacks.", path, sum.samples,
				 aggregate_n_stacks(agg));
			d->retention_removed += outdir_retention(
			    d->cfg.output_dir, d->cfg.retention_count, d->cfg.retention_bytes);
		}
	}
	if (d->push && aggregate_n_samples(agg) > 0) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t len;

		r = pprof_serialize(b, &data, &len);
		if (r >= 0)
			r = push_submit(d->push, data, len, d->interval_wall.tv_sec,
					end_wall.tv_sec, d->run.frequency);
		if (r < 0 && log_ratelimit_ok(&d->rl_write))
			log_error_errno(r,
					"Failed to spool the interval profile for push into %s: %m",
					d->cfg.spool_dir);
	}
next:
	pprof_builder_free(b);
	aggregate_free(agg);
	d->interval_wall = end_wall;
	d->interval_ns = end_ns;
}

/* ---- on-demand profiles ------------------------------------------------------------------ */

static void job_end(struct daemon *d, size_t i, unsigned status, const char *message)
{
	struct job *j = &d->jobs[i];
	struct pprof_builder *b = NULL;
	struct profile_summary sum;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	session_tap_remove(d->session, j->tap);
	if (status == 200) {
		struct profile_options o = profile_opts(d, &j->start_wall, mono_ns() - j->start_ns);

		/* Off-CPU time is declared only when it was recorded for the whole request. */
		o.off_cpu = o.off_cpu && j->off_cpu;
		r = profile_build(j->agg, &o, &b, &sum);
		if (r >= 0)
			r = pprof_serialize(b, &data, &len);
		if (r < 0) {
			log_error_errno(r, "Failed to build an on-demand profile: %m");
			status = 500;
			message = "failed to build the profile";
		}
		pprof_builder_free(b);
	}
	http_request_finish(j->req, status, data, len, message);
	aggregate_free(j->agg);
	d->jobs[i] = d->jobs[--d->n_jobs];
}

static void jobs_cancel(struct daemon *d, const char *why)
{
	while (d->n_jobs)
		job_end(d, d->n_jobs - 1, 503, why);
}

static void jobs_poll(struct daemon *d, uint64_t now)
{
	struct http_request *req;

	for (size_t i = 0; i < d->n_jobs;)
		if (http_request_cancelled(d->jobs[i].req))
			/* Its client is gone and its slot already free: nothing to build. */
			job_end(d, i, 503, "the client went away");
		else if (now >= d->jobs[i].deadline_ns)
			job_end(d, i, 200, NULL);
		else
			i++;
	if (!d->http)
		return;
	while (d->n_jobs < ARRAY_SIZE(d->jobs) && (req = http_server_next(d->http))) {
		struct job *j = &d->jobs[d->n_jobs];
		uint32_t pid = http_request_pid(req);
		const struct access_decision *ad = http_request_access(req);
		struct session_tap_filter f = {
		    .pid = pid,
		    .by_uid = ad->scope == ACCESS_OWN,
		    .uid = ad->uid,
		    .no_kernel = ad->scope == ACCESS_OWN && ad->no_kernel,
		};
		char msg[64];
		int r;

		if (ad->scope != ACCESS_ALL && ad->scope != ACCESS_OWN) {
			http_request_finish(req, 403, NULL, 0, "forbidden");
			continue;
		}

		/* Whether another user's pid exists is not ours to tell: own-process callers get an
		 * empty profile instead. */
		if (pid && ad->scope == ACCESS_ALL && kill(pid, 0) < 0 && errno == ESRCH) {
			snprintf(msg, sizeof(msg), "no process %u", pid);
			http_request_finish(req, 404, NULL, 0, msg);
			continue;
		}
		*j = (struct job){.req = req, .start_ns = now};
		r = aggregate_new(&j->agg);
		if (r >= 0)
			r = session_tap_add(d->session, j->agg, &f, &j->tap);
		if (r < 0) {
			aggregate_free(j->agg);
			http_request_finish(req, 503, NULL, 0, "cannot start a profile now");
			continue;
		}
		if (pid)
			(void)session_watch_pid(d->session, pid);
		clock_gettime(CLOCK_REALTIME, &j->start_wall);
		j->off_cpu = d->run.off_cpu;
		j->deadline_ns = now + http_request_seconds(req) * 1000000000ull;
		d->n_jobs++;
		log_debug("On-demand profile: %u s%s%s.", http_request_seconds(req),
			  pid ? " of one pid" : "", f.by_uid ? ", the caller's own processes" : "");
	}
}

/* ---- metrics ----------------------------------------------------------------------------- */

static void snapshot_refresh(struct daemon *d)
{
	struct metrics_snapshot s = {};

	s.st = *session_stats(d->session);
	s.lost = d->lost_base + (d->capture ? capture_lost(d->capture) : 0);
	s.procs = proc_table_n_procs(session_procs(d->session));
	s.dsos = proc_table_n_dsos(session_procs(d->session));
	proc_table_sideband_stats(session_procs(d->session), &s.sideband);
	session_unwind_stats(d->session, &s.unwind);
	if (d->sym_cache)
		sym_cache_get_stats(d->sym_cache, &s.sym);
	s.interval_stacks = aggregate_n_stacks(session_aggregate(d->session));
	s.interval_samples = aggregate_n_samples(session_aggregate(d->session));
	s.interval_dropped = aggregate_n_dropped(session_aggregate(d->session));
	s.frequency = d->run.frequency;
	s.interval_s = d->cfg.interval_s;
	s.stack_bytes = d->run.stack_bytes;
	s.profiles_written = d->profiles_written;
	s.write_errors = d->write_errors;
	s.retention_removed = d->retention_removed;
	s.reloads = d->reloads;
	s.reload_failures = d->reload_failures;
	s.http_enabled = d->http;
	if (d->http)
		http_server_stats(d->http, &s.http);
	s.push_enabled = d->push;
	if (d->push)
		push_get_stats(d->push, &s.push);
	pthread_mutex_lock(&d->snap_lock);
	s.start_time = d->snap.start_time;
	d->snap = s;
	pthread_mutex_unlock(&d->snap_lock);
	d->snapshot_ns = mono_ns();
}

/* The HTTP thread's /metrics callback: the snapshot the main loop last refreshed. */
static int render_metrics(void *userdata, char **ret, size_t *ret_len)
{
	struct daemon *d = userdata;
	struct metrics_snapshot s;

	pthread_mutex_lock(&d->snap_lock);
	s = d->snap;
	pthread_mutex_unlock(&d->snap_lock);
	return metrics_render(&s, ret, ret_len);
}

/* ---- services ---------------------------------------------------------------------------- */

static int on_record(void *userdata, const void *data, size_t size)
{
	struct daemon *d = userdata;

	return session_handle_record(d->session, data, size);
}

/* The kernel's side-band stream feeds the process table. */
static int on_sideband(void *userdata, const void *rec, size_t size)
{
	struct daemon *d = userdata;

	return proc_table_sideband_push(session_procs(d->session), rec, size);
}

/* Threads inherit the signal mask: create them with every signal blocked. */
static void block_signals(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

#define PEM_FILE_MAX (1 << 20)

/* A PEM file's text, NUL-terminated; "" path gives NULL. Logs what is wrong. */
static int read_pem(const char *key, const char *path, char **ret)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t n;

	*ret = NULL;
	if (!path[0])
		return 0;
	f = fopen(path, "re");
	if (!f)
		return log_error_errno(-errno, "%s: cannot read %s: %m", key, path);
	buf = malloc(PEM_FILE_MAX + 1);
	if (!buf)
		return log_oom();
	n = fread(buf, 1, PEM_FILE_MAX + 1, f);
	if (ferror(f))
		return log_error_errno(-EIO, "%s: cannot read %s.", key, path);
	if (n > PEM_FILE_MAX || !memmem(buf, n, "-----BEGIN ", 11))
		return log_error_errno(-EINVAL, "%s: %s is not a PEM file of at most %d bytes.", key,
				       path, PEM_FILE_MAX);
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

/* What the HTTP server needs from the configuration, files read and the group resolved. */
struct http_setup {
	struct http_options o;
	char *cert, *key, *ca, *token;
};

static void http_setup_done(struct http_setup *s)
{
	free(s->cert);
	if (s->key)
		explicit_bzero(s->key, strlen(s->key));
	free(s->key);
	free(s->ca);
	if (s->token)
		explicit_bzero(s->token, s->o.token_len);
	free(s->token);
	*s = (struct http_setup){};
}

static int http_setup_load(struct daemon *d, const struct daemon_config *c, struct http_setup *s)
{
	char err[256];
	int r;

	*s = (struct http_setup){};
	s->o.listen = c->listen;
	s->o.metrics = render_metrics;
	s->o.userdata = d;
	s->o.policy.own_processes = c->own_processes;
	s->o.policy.metrics_local = !strcmp(c->metrics_access, "local");
	daemon_config_http_limits(c, &s->o.limits);
	r = access_policy_set_group(&s->o.policy, c->allow_group);
	if (r == -ENOENT) {
		/* Root keeps access; an admin who wants the group creates it and reloads. */
		log_warning("allow_group: no group '%s' on this host: only root (and client "
			    "certificates or the token, if configured) may fetch profiles. Create it "
			    "(groupadd --system %s) and reload.",
			    c->allow_group, c->allow_group);
	} else if (r < 0) {
		return log_error_errno(r, "allow_group: cannot look up group '%s': %m",
				       c->allow_group);
	}
	if ((r = read_pem("tls_cert", c->tls_cert, &s->cert)) < 0 ||
	    (r = read_pem("tls_key", c->tls_key, &s->key)) < 0 ||
	    (r = read_pem("tls_client_ca", c->tls_client_ca, &s->ca)) < 0) {
		http_setup_done(s);
		return r;
	}
	if (c->bearer_token_file[0]) {
		r = access_read_token(c->bearer_token_file, &s->token, &s->o.token_len, err,
				      sizeof(err));
		if (r < 0) {
			http_setup_done(s);
			return log_error_errno(r, "bearer_token_file: %s.",
					       r == -ENOMEM ? "out of memory" : err);
		}
	}
	s->o.tls_cert = s->cert;
	s->o.tls_key = s->key;
	s->o.tls_client_ca = s->ca;
	s->o.token = s->token;
	return 0;
}

static int http_start(struct daemon *d, const struct daemon_config *c, struct http_server **ret)
{
	struct http_setup hs;
	sigset_t old;
	int r;

	r = http_setup_load(d, c, &hs);
	if (r < 0)
		return r;
	hs.o.inherited_fds = d->listen_fds;
	hs.o.n_inherited = d->n_listen_fds;
	block_signals(&old);
	r = http_server_new(&hs.o, ret);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	http_setup_done(&hs);
	if (r < 0)
		return log_error_errno(r, "Cannot listen on %s: %m", c->listen);
	log_notice("HTTP server listening on %s.", http_server_address(*ret));
	return 0;
}

static int push_start(struct daemon *d, const struct daemon_config *c, struct push **ret)
{
	struct push_config pc = {
	    .url = c->push_url,
	    .name = c->push_name,
	    .labels = c->push_labels,
	    .spool_dir = c->spool_dir,
	    .spool_bytes = c->spool_bytes,
	};
	char err[512];
	sigset_t old;
	int r;

	r = outdir_prepare("spool_dir", c->spool_dir, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Cannot set up push to %s: %s.", c->push_url, err);
	block_signals(&old);
	r = push_new(&pc, ret);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return log_error_errno(r, "Cannot set up push to %s (spool %s): %m", c->push_url,
				       c->spool_dir);
	log_notice("Pushing each interval to %s as %s{%s}.", c->push_url, c->push_name,
		   c->push_labels);
	return 0;
}

static void on_python(void *userdata, uint32_t pid, const struct profd_py_proc *py)
{
	struct daemon *d = userdata;
	int r = capture_set_python(d->capture, (pid_t)pid, py);

	if (r < 0)
		log_debug_errno(r, "Cannot follow the Python frames of process %u: %m", pid);
}

static void on_stack_size(void *userdata, uint32_t pid, uint32_t gap)
{
	struct daemon *d = userdata;
	int r = d->capture ? capture_set_stack_gap(d->capture, (pid_t)pid, gap) : 0;

	if (r < 0)
		log_debug_errno(r, "Cannot set the stack copy of process %u: %m", pid);
}

static struct capture_settings settings_of(const struct daemon_config *c)
{
	return (struct capture_settings){
	    .frequency = c->frequency,
	    .stack_bytes = c->stack_bytes,
	    .off_cpu_min_us = c->off_cpu_min_us,
	    .adaptive_stack_copy = c->adaptive_stack_copy,
	    .python = c->python,
	    .off_cpu = c->off_cpu,
	};
}

static bool settings_equal(const struct capture_settings *a, const struct capture_settings *b)
{
	return a->frequency == b->frequency && a->stack_bytes == b->stack_bytes &&
	       a->adaptive_stack_copy == b->adaptive_stack_copy && a->python == b->python &&
	       a->off_cpu == b->off_cpu && (!a->off_cpu || a->off_cpu_min_us == b->off_cpu_min_us);
}

/* The keys of c that differ from what runs (cs), for log lines: "frequency, off_cpu". */
static void settings_diff(const struct capture_settings *run, const struct daemon_config *c,
			  char *buf, size_t size)
{
	const struct capture_settings want = settings_of(c);
	const struct {
		const char *key;
		bool differs;
	} keys[] = {
	    {"frequency", want.frequency != run->frequency},
	    {"stack_bytes", want.stack_bytes != run->stack_bytes},
	    {"adaptive_stack_copy", want.adaptive_stack_copy != run->adaptive_stack_copy},
	    {"python", want.python != run->python},
	    {"off_cpu", want.off_cpu != run->off_cpu},
	    {"off_cpu_min_us", want.off_cpu_min_us != run->off_cpu_min_us},
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].differs && n < size)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", keys[i].key);
}

static int capture_open(struct daemon *d, const struct capture_settings *cs, struct capture **ret)
{
	struct capture_config cc = {.all = true, .freq = cs->frequency, .stack_bytes = cs->stack_bytes,
				    .no_python = !cs->python, .off_cpu = cs->off_cpu,
				    .off_cpu_min_ns = cs->off_cpu_min_us * 1000ull,
				    .stack_sizing = cs->adaptive_stack_copy,
				    .sideband = on_sideband, .sideband_userdata = d,
				    /* The reader also writes the interval profiles: room for 4 s. */
				    .ringbuf_bytes = capture_ringbuf_size(cs->frequency,
									  cs->stack_bytes,
									  cs->adaptive_stack_copy,
									  4.0)};
	return capture_new(&cc, on_record, d, ret); /* logs why it failed */
}

/*
 * Replace the capture with one recording `want`; the session and its samples stay. With `cut`,
 * the current interval is closed between the old capture's last sample and the new one's
 * first, so each profile has one sampling period and one set of sample types (new samples
 * wait in the ring buffer meanwhile). d->run always says what d->capture records. Returns 0,
 * or -errno with the old settings' capture running (the old one, or a new one with the old
 * settings), or -errno with d->capture NULL when nothing samples.
 */
static int capture_replace(struct daemon *d, const struct capture_settings *want, bool cut)
{
	struct capture *nc = NULL;
	int r;

	/* Load the new program first: if that fails, the old one keeps sampling. */
	r = capture_open(d, want, &nc);
	if (r < 0)
		return r;
	capture_stop(d->capture);
	while (capture_poll(d->capture, 0) > 0)
		;
	d->lost_base += capture_lost(d->capture);
	capture_free(d->capture);
	d->capture = nc;
	/* The new program's sizes start empty (the cap): learn them again, under the new cap. */
	(void)session_reset_stack_sizes(d->session);
	r = capture_start(nc);
	if (r >= 0) {
		if (cut)
			write_interval(d);
		d->run = *want;
		return 0;
	}
	capture_free(nc);
	d->capture = NULL;
	(void)session_reset_stack_sizes(d->session);
	if (capture_open(d, &d->run, &d->capture) >= 0 && capture_start(d->capture) >= 0)
		return r;
	capture_free(d->capture);
	d->capture = NULL;
	return r;
}

static bool str_changed(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

static bool http_access_changed(const struct daemon_config *a, const struct daemon_config *b)
{
	/* The token and certificate files may change under the same names: a reload rereads. */
	return str_changed(a->allow_group, b->allow_group) ||
	       a->own_processes != b->own_processes ||
	       str_changed(a->metrics_access, b->metrics_access) ||
	       str_changed(a->tls_cert, b->tls_cert) || str_changed(a->tls_key, b->tls_key) ||
	       str_changed(a->tls_client_ca, b->tls_client_ca) || a->tls_cert[0] ||
	       a->bearer_token_file[0] || b->bearer_token_file[0] ||
	       str_changed(a->bearer_token_file, b->bearer_token_file) ||
	       a->http_profiles != b->http_profiles ||
	       a->http_profiles_per_user != b->http_profiles_per_user ||
	       a->http_profiles_reserved != b->http_profiles_reserved ||
	       a->http_connections != b->http_connections ||
	       a->http_connections_per_user != b->http_connections_per_user ||
	       a->http_connections_reserved != b->http_connections_reserved ||
	       a->http_header_timeout_s != b->http_header_timeout_s;
}

/*
 * SIGHUP. A configuration that does not load changes nothing. Otherwise: a new frequency or
 * stack size replaces the capture, and a new frequency also closes the current interval (a
 * profile has one sampling period); the session (process table, caches, samples) stays. A new
 * listen address starts the new server before the old one stops; push is restarted (the spool
 * on disk keeps what was not sent).
 */
/* SIGHUP, the capture's keys: 0, or <0 when no capture is left (the daemon exits). */
static int reload_capture(struct daemon *d, struct daemon_config *n)
{
	struct capture_settings want;
	char keys[128];
	int r;

	/*
	 * Every key that shapes the capture takes effect by replacing it: frequency, stack copy,
	 * python, off_cpu and its threshold. A new frequency (another period) or off_cpu (other
	 * sample types) also closes the interval.
	 */
	want = settings_of(n);
	if (settings_equal(&want, &d->run))
		return 0;
	settings_diff(&d->run, n, keys, sizeof(keys));
	r = capture_replace(d, &want,
			    want.frequency != d->run.frequency || want.off_cpu != d->run.off_cpu);
	if (r < 0 && !d->capture)
		return log_error_errno(r, "No sampling possible any more: exiting.");
	if (r < 0) {
		log_error("Not applied: %s (the capture could not be rebuilt); still recording "
			  "at %u Hz, stack_bytes %u, adaptive_stack_copy %s, python %s, "
			  "off_cpu %s. Fix the cause and reload again, or restart profd.",
			  keys, d->run.frequency, d->run.stack_bytes,
			  d->run.adaptive_stack_copy ? "yes" : "no", d->run.python ? "yes" : "no",
			  d->run.off_cpu ? "yes" : "no");
		n->frequency = d->run.frequency;
		n->stack_bytes = d->run.stack_bytes;
		n->adaptive_stack_copy = d->run.adaptive_stack_copy;
		n->python = d->run.python;
		n->off_cpu = d->run.off_cpu;
		n->off_cpu_min_us = d->run.off_cpu_min_us;
	} else {
		log_notice("Capture rebuilt for %s.", keys);
	}
	r = session_set_python(d->session, d->run.python);
	if (r < 0)
		log_error_errno(r, "Cannot %s Python frames: %m",
				d->run.python ? "start" : "stop");
	return 0;
}

/* SIGHUP, demangle: a new symbol cache. 0, or -ENOMEM. */
static int reload_demangle(struct daemon *d, struct daemon_config *n)
{
	int r;

	if (str_changed(n->demangle, d->cfg.demangle)) {
		struct sym_cache *sc = NULL;

		/* Names are cached as symbolized: another mode needs another cache. */
		r = sym_cache_new(&(struct sym_cache_config){ .demangle = demangle_mode(n) }, &sc);
		if (r < 0) {
			log_error_errno(r, "Keeping demangle = %s: %m", d->cfg.demangle);
			free(n->demangle);
			n->demangle = strdup(d->cfg.demangle);
			if (!n->demangle)
				return log_oom();
		} else {
			sym_cache_free(d->sym_cache);
			d->sym_cache = sc;
		}
	}
	return 0;
}

/* SIGHUP, the HTTP keys: the server moved, kept, or stopped. 0, or -ENOMEM. */
static int reload_http(struct daemon *d, struct daemon_config *n)
{
	int r;

	/* Any change of the HTTP keys restarts the server (the token file is read again too). */
	if (str_changed(n->listen, d->cfg.listen) || http_access_changed(n, &d->cfg)) {
		struct http_server *h = NULL;

		r = n->listen[0] ? http_start(d, n, &h) : 0;
		if (r < 0 && d->http) {
			/* Maybe the old server holds the port (e.g. 127.0.0.1:P → 0.0.0.0:P). */
			log_notice("Stopping the HTTP server on %s to try again->", d->cfg.listen);
			jobs_cancel(d, "profd's HTTP server moved");
			http_server_free(d->http);
			d->http = NULL;
			r = http_start(d, n, &h);
			if (r < 0 && http_start(d, &d->cfg, &d->http) >= 0) {
				log_error("Keeping the HTTP server on %s.", d->cfg.listen);
				free(n->listen);
				n->listen = strdup(d->cfg.listen);
			} else if (r < 0) {
				log_error("No HTTP server any more.");
				free(n->listen);
				n->listen = strdup("");
			}
			if (!n->listen)
				return log_oom();
		}
		if (r >= 0) {
			jobs_cancel(d, "profd's HTTP server moved");
			http_server_free(d->http);
			d->http = h;
			if (!h)
				log_notice("HTTP server stopped.");
		}
	}
	return 0;
}

/* SIGHUP, the push keys: the push worker restarted (or stopped). */
static void reload_push(struct daemon *d, const struct daemon_config *n)
{
	if (str_changed(n->push_url, d->cfg.push_url) ||
	    str_changed(n->push_name, d->cfg.push_name) ||
	    str_changed(n->push_labels, d->cfg.push_labels) ||
	    str_changed(n->spool_dir, d->cfg.spool_dir) || n->spool_bytes != d->cfg.spool_bytes) {
		push_free(d->push, 0);
		d->push = NULL;
		if (n->push_url[0])
			(void)push_start(d, n, &d->push);
		else if (d->cfg.push_url[0])
			log_notice("Push disabled; profiles not sent yet stay in %s.",
				   d->cfg.spool_dir);
	}
}

static int daemon_reload(struct daemon *d)
{
	struct daemon_config n;
	struct kallsyms *ks = NULL;
	int r;

	sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the configuration\nMONOTONIC_USEC=%" PRIu64,
		   mono_ns() / 1000);
	r = config_load(d, &n);
	if (r < 0) {
		d->reload_failures++;
		log_error("Configuration not reloaded: keeping the previous one.");
		snapshot_refresh(d);
		sd_notify(0, "READY=1\nSTATUS=Profiling (the last reload failed)");
		return 0;
	}
	log_set_max_level(n.log_level);

	r = reload_capture(d, &n);
	if (r >= 0)
		r = reload_demangle(d, &n);
	if (r >= 0)
		r = reload_http(d, &n);
	if (r < 0) {
		daemon_config_done(&n);
		return r;
	}
	reload_push(d, &n);

	/* Kernel modules may have come and gone. */
	if (kallsyms_load("/proc/kallsyms", &ks) >= 0) {
		kallsyms_free(d->ks);
		d->ks = ks;
	}

	daemon_config_done(&d->cfg);
	d->cfg = n;
	d->reloads++;
	snapshot_refresh(d);
	log_notice("Configuration reloaded from %s.", d->config_path);
	sd_notifyf(0, "READY=1\nSTATUS=Profiling all CPUs at %u Hz", d->run.frequency);
	return 0;
}

static void daemon_done(struct daemon *d)
{
	jobs_cancel(d, "profd is shutting down");
	http_server_free(d->http);
	push_free(d->push, PUSH_FLUSH_MS);
	capture_free(d->capture);
	session_free(d->session);
	sym_cache_free(d->sym_cache);
	kallsyms_free(d->ks);
	daemon_config_done(&d->cfg);
	free(d->cli_keys);
	free(d->cli_values);
	pthread_mutex_destroy(&d->snap_lock);
}

/* Everything the main loop needs, in order; the capture is started last. 0 or -errno (logged). */
static int daemon_setup(struct daemon *d)
{
	struct session_config sc = {.container_ids = true, .perf_maps = true,
				    .no_python = !d->cfg.python,
				    .stack_cap = d->cfg.stack_bytes,
				    .hooks = {.on_python = on_python, .on_stack_size = on_stack_size,
					      .userdata = d}};
	const char *missing = NULL;
	int r;

	r = capture_check_privileges(&missing);
	if (r == -EPERM)
		return log_error_errno(r,
				       "Missing capability %s: profd daemon needs CAP_BPF and "
				       "CAP_PERFMON (or root). Run it as root, or as profd.service "
				       "does: AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE "
				       "CAP_CHECKPOINT_RESTORE CAP_DAC_READ_SEARCH CAP_SYSLOG.",
				       missing);
	if (r < 0)
		return log_error_errno(r, "Cannot read this process's capabilities: %m");
	cli_raise_fd_limit();
	/* Sockets from systemd (profd.socket): kept for the whole run, reused on reloads. */
	r = sd_listen_fds(1);
	for (int i = 0; i < r; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (d->n_listen_fds < ARRAY_SIZE(d->listen_fds) &&
		    sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0)
			d->listen_fds[d->n_listen_fds++] = fd;
		else
			log_warning("Ignoring socket %d from systemd: only up to %d listening unix "
				    "stream sockets are used.",
				    fd, DAEMON_LISTEN_MAX);
	}

	if (d->cfg.output_dir[0]) {
		char err[512];

		r = outdir_prepare("output_dir", d->cfg.output_dir, err, sizeof(err));
		if (r < 0)
			return log_error_errno(r, "%s.", err);
		outdir_remove_stale_temp_files(d->cfg.output_dir);
	}
	r = session_new(&sc, &d->session);
	if (r < 0)
		return log_error_errno(r, "Failed to set up: %m");
	r = proc_table_set_sideband(session_procs(d->session), true);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the process table: %m");
	r = sym_cache_new(&(struct sym_cache_config){ .demangle = demangle_mode(&d->cfg) },
			  &d->sym_cache);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the symbol cache: %m");
	r = kallsyms_load("/proc/kallsyms", &d->ks);
	if (r < 0)
		log_info_errno(r, "Kernel symbols unavailable (%m); kernel frames keep addresses.");
	d->run = settings_of(&d->cfg);
	r = capture_open(d, &d->run, &d->capture);
	if (r < 0)
		return r;
	/* The side-band runs: what runs already is read now, what starts later it tells. */
	r = proc_table_snapshot(session_procs(d->session));
	if (r < 0)
		log_warning_errno(r, "Cannot read the running processes: %m");
	if (d->cfg.listen[0]) {
		r = http_start(d, &d->cfg, &d->http);
		if (r < 0)
			return r;
	}
	if (d->cfg.push_url[0]) {
		r = push_start(d, &d->cfg, &d->push);
		if (r < 0)
			return r;
	}
	return capture_start(d->capture);
}

/* Poll, reload, serve jobs, write intervals, refresh /metrics, until a stop signal or an error. */
static int daemon_loop(struct daemon *d)
{
	uint64_t watchdog_usec = 0, last_watchdog = 0;
	int r = 0;

	if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
		watchdog_usec = 0;
	while (!stop_requested) {
		uint64_t now;

		r = capture_poll(d->capture, POLL_MS);
		if (r < 0) {
			log_error_errno(r, "Failed to read samples: %m");
			break;
		}
		if (d->capture)
			proc_table_sideband_tick(session_procs(d->session),
						 capture_handled_ns(d->capture));
		if (reload_requested) {
			reload_requested = 0;
			r = daemon_reload(d);
			if (r < 0)
				break;
		}
		now = mono_ns();
		jobs_poll(d, now);
		if (now - d->interval_ns >= d->cfg.interval_s * 1000000000ull)
			write_interval(d);
		if (now - d->snapshot_ns >= METRICS_REFRESH_NS)
			snapshot_refresh(d);
		if (watchdog_usec && now / 1000 - last_watchdog >= watchdog_usec / 2) {
			sd_notify(0, "WATCHDOG=1");
			last_watchdog = now / 1000;
		}
	}
	return r;
}

static int daemon_run(struct daemon *d)
{
	struct timespec now_wall;
	int r;

	r = daemon_setup(d);
	if (r < 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &d->interval_wall);
	d->interval_ns = mono_ns();
	clock_gettime(CLOCK_REALTIME, &now_wall);
	d->snap.start_time = now_wall.tv_sec + now_wall.tv_nsec / 1e9;
	snapshot_refresh(d);
	log_notice("Profiling all CPUs at %u Hz; a profile every %u s into %s.", d->cfg.frequency,
		   d->cfg.interval_s, d->cfg.output_dir[0] ? d->cfg.output_dir : "(nowhere)");
	sd_notifyf(0, "READY=1\nSTATUS=Profiling all CPUs at %u Hz", d->cfg.frequency);

	r = daemon_loop(d);
	sd_notify(0, "STOPPING=1\nSTATUS=Writing the last interval");
	if (d->capture) {
		/* Everything already in the ring buffer belongs to the last interval. */
		capture_stop(d->capture);
		while (capture_poll(d->capture, 0) > 0)
			;
		d->lost_base += capture_lost(d->capture);
		capture_free(d->capture);
		d->capture = NULL;
	}
	jobs_cancel(d, "profd is shutting down");
	write_interval(d);
	if (r < 0)
		return r;
	if (d->cfg.output_dir[0] || d->push)
		log_notice("Stopped (signal %d): the last interval was written.",
			   (int)stop_requested);
	else
		log_notice("Stopped (signal %d).", (int)stop_requested);
	return 0;
}

int cmd_daemon(int argc, char **argv)
{
	struct daemon d = {.rl_write = LOG_RATELIMIT_INIT(300, 5)};
	struct sigaction stop = {.sa_handler = on_stop}, hup = {.sa_handler = on_reload},
			 ign = {.sa_handler = SIG_IGN};
	int r;

	pthread_mutex_init(&d.snap_lock, NULL);
	r = parse_args(argc, argv, &d);
	if (r != 0) {
		daemon_done(&d);
		return r > 0 ? 0 : r;
	}
	r = config_load(&d, &d.cfg);
	if (r < 0) {
		log_error("Invalid configuration: profd not started.");
		daemon_done(&d);
		return r;
	}
	log_set_max_level(d.cfg.log_level);
	if (d.check_config) {
		daemon_config_write(&d.cfg, stdout);
		daemon_done(&d);
		return 0;
	}

	/* Before any thread exists, so every thread but this one has them blocked. */
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGHUP, &hup, NULL);
	sigaction(SIGPIPE, &ign, NULL);

	r = daemon_run(&d);
	if (r < 0)
		sd_notifyf(0, "STATUS=Failed: %s\nERRNO=%d", strerror(-r), -r);
	daemon_done(&d);
	return r;
}
