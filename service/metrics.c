// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/macro.h"
#include "pipeline/unwind/unwind.h"
#include "service/metrics.h"

static void metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void process_metrics(FILE *f, double start_time)
{
	struct rusage ru;
	long page = sysconf(_SC_PAGESIZE);
	unsigned long size = 0, resident = 0;
	struct rlimit rl;
	size_t fds = 0;
	FILE *statm;
	DIR *dir;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metric(f, "process_cpu_seconds_total", "counter",
		       "User and system CPU time spent by profd, in seconds.",
		       ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	statm = fopen("/proc/self/statm", "re");
	if (statm) {
		if (fscanf(statm, "%lu %lu", &size, &resident) == 2) {
			metric(f, "process_resident_memory_bytes", "gauge",
			       "Resident memory of profd, in bytes.", (double)resident * page);
			metric(f, "process_virtual_memory_bytes", "gauge",
			       "Virtual memory of profd, in bytes.", (double)size * page);
		}
		fclose(statm);
	}
	dir = opendir("/proc/self/fd");
	if (dir) {
		while (readdir(dir))
			fds++;
		closedir(dir);
		metric(f, "process_open_fds", "gauge", "Open file descriptors.",
		       fds > 3 ? fds - 3 : 0); /* ".", ".." and the directory's own fd */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metric(f, "process_max_fds", "gauge", "Limit on open file descriptors.",
		       rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
	metric(f, "process_start_time_seconds", "gauge",
	       "Start time of profd since the Unix epoch, in seconds.", start_time);
}

/*
 * /metrics, one row per metric in the order served. Most rows show a field of struct
 * metrics_snapshot (an unsigned integer or a bool, read by its size); the others are computed
 * or labelled.
 */
enum metric_value {
	MV_FIELD,         /* the snapshot field at offset, of size bytes */
	MV_NS_AS_SECONDS, /* the field (nanoseconds) in seconds */
	MV_STACK_P99,     /* session_stack_copy_quantile(0.99) */
	MV_BUILD_INFO,    /* labelled: profd_build_info{version} */
	MV_UNWIND_STOPS,  /* labelled: one line per unwind stop reason */
	MV_TASK_EVENTS,   /* labelled: exec, exit, fork */
	MV_HTTP_REFUSED,  /* labelled: by refusal reason */
};

enum metric_when { MW_ALWAYS, MW_HTTP, MW_PUSH }; /* always, or with http / push configured */

struct metric_row {
	enum metric_when when;
	bool counter; /* else a gauge */
	const char *name, *help;
	enum metric_value value;
	size_t offset, size;
};

#define SNAP(f)                                                                                 \
	MV_FIELD, offsetof(struct metrics_snapshot, f), sizeof(((struct metrics_snapshot *)0)->f)
#define COUNTER(when, name, help, f) { when, true, name, help, SNAP(f) }
#define GAUGE(when, name, help, f) { when, false, name, help, SNAP(f) }
#define SPECIAL(when, counter, name, help, value, f)                                            \
	{ when, counter, name, help, value, offsetof(struct metrics_snapshot, f), 0 }
#define A MW_ALWAYS

static const struct metric_row metric_rows[] = {
	SPECIAL(A, false, "profd_build_info", "profd version.", MV_BUILD_INFO, st),
	COUNTER(A, "profd_samples_total", "Samples received from the kernel.", st.samples),
	COUNTER(A, "profd_lost_samples_total",
		"Samples and task events the kernel could not queue (ring buffer full).", lost),
	COUNTER(A, "profd_records_total", "Ring buffer records received.", st.records),
	COUNTER(A, "profd_bad_records_total", "Malformed ring buffer records skipped.",
		st.bad_records),
	COUNTER(A, "profd_no_process_samples_total",
		"Samples of processes whose mappings could not be read.", st.no_process),
	COUNTER(A, "profd_user_stacks_total", "Samples with a user stack.", st.user_stacks),
	COUNTER(A, "profd_complete_stacks_total", "User stacks unwound to the root.", st.complete),
	COUNTER(A, "profd_unwound_frames_total", "User frames unwound.", st.frames),
	SPECIAL(A, true, "profd_unwind_stops_total", "Why user stacks stopped, by reason.",
		MV_UNWIND_STOPS, st.stops),
	SPECIAL(A, true, "profd_task_events_total", "Process lifecycle events, by kind.",
		MV_TASK_EVENTS, st),
	COUNTER(A, "profd_off_cpu_waits_total", "Off-CPU waits recorded (off_cpu = yes).",
		st.off_cpu_waits),
	SPECIAL(A, true, "profd_off_cpu_seconds_total", "Time off the CPU of the waits recorded.",
		MV_NS_AS_SECONDS, st.off_cpu_ns),
	COUNTER(A, "profd_python_samples_total",
		"Samples of CPython processes whose frame chain was read.", st.py_samples),
	COUNTER(A, "profd_python_frames_total", "Python frames put in place of interpreter frames.",
		st.py_frames),
	COUNTER(A, "profd_python_unplaced_frames_total",
		"Python frames without an interpreter frame to stand in for.", st.py_unplaced),
	COUNTER(A, "profd_python_skipped_frames_total",
		"Python frames of deep chains walked but not kept (a marker frame stands for them).",
		st.py_skipped),
	COUNTER(A, "profd_python_raw_interpreter_frames_total",
		"Interpreter frames of CPython processes without Python frames (marked).",
		st.py_raw_eval),
	COUNTER(A, "profd_python_bad_code_objects_total",
		"Python frames whose code object could not be read (named \"[python]\").",
		st.py_bad_code),
	COUNTER(A, "profd_python_chain_errors_total",
		"Samples whose Python frame chain could not be read or was cut.", st.py_errors),
	COUNTER(A, "profd_python_unsupported_samples_total",
		"Samples of Python processes whose interpreter profd cannot read.",
		st.py_unsupported),
	GAUGE(A, "profd_processes", "Processes in the process table.", procs),
	GAUGE(A, "profd_binaries", "Binaries kept open for unwinding and symbolization.", dsos),
	COUNTER(A, "profd_sideband_records_total",
		"Side-band records (mmap, exec, fork, exit) read from the kernel.",
		sideband.records),
	COUNTER(A, "profd_sideband_lost_total",
		"Side-band records the kernel could not write (then /proc is read again).",
		sideband.lost),
	COUNTER(A, "profd_sideband_resyncs_total",
		"Re-reads of every live process from /proc after side-band records were lost.",
		sideband.resyncs),
	COUNTER(A, "profd_sideband_unopened_files_total",
		"Mapped files named by the side-band that could not be opened.", sideband.unopened),
	GAUGE(A, "profd_unwind_cache_entries", "Binaries in the CFI table cache.", unwind.entries),
	GAUGE(A, "profd_unwind_cache_bytes", "Bytes of CFI tables cached.", unwind.bytes),
	COUNTER(A, "profd_unwind_cache_evictions_total", "CFI tables evicted.", unwind.evictions),
	GAUGE(A, "profd_symbol_cache_binaries", "Binaries known to the symbol cache.",
	      sym.n_binaries),
	GAUGE(A, "profd_symbol_cache_open_elfs", "ELF files open for symbolization.",
	      sym.n_open_elfs),
	GAUGE(A, "profd_symbol_cache_results", "Symbolized addresses cached.", sym.n_results),
	GAUGE(A, "profd_symbol_cache_result_bytes", "Bytes of cached symbol results.",
	      sym.result_bytes),
	GAUGE(A, "profd_interval_stacks", "Unique stacks in the current interval.",
	      interval_stacks),
	GAUGE(A, "profd_interval_samples", "Samples in the current interval.", interval_samples),
	GAUGE(A, "profd_interval_dropped_samples",
	      "Samples of the current interval dropped by the aggregate's limits.",
	      interval_dropped),
	GAUGE(A, "profd_sampling_frequency_hertz", "Samples per second per CPU.", frequency),
	GAUGE(A, "profd_interval_seconds", "Length of an interval profile.", interval_s),
	GAUGE(A, "profd_stack_bytes", "The most user stack bytes a sample copies (stack_bytes).",
	      stack_bytes),
	COUNTER(A, "profd_stack_copies_total", "Samples and waits whose user stack was copied.",
		st.stack_copies),
	COUNTER(A, "profd_stack_copy_bytes_total",
		"User stack bytes copied, in total (divide by profd_stack_copies_total for the "
		"mean).",
		st.stack_copy_bytes),
	SPECIAL(A, false, "profd_stack_copy_p99_bytes",
		"99th percentile of the user stack bytes copied per sample since start (256-byte "
		"resolution).",
		MV_STACK_P99, st),
	COUNTER(A, "profd_stack_copy_cut_total",
		"Stack walks that ran out of a copy cut at its process's learnt stack gap (its "
		"copies then go to the stack's end until learnt again).",
		st.stack_cut),
	COUNTER(A, "profd_profiles_written_total", "Interval profiles written.", profiles_written),
	COUNTER(A, "profd_profile_write_errors_total",
		"Interval profiles that could not be built or written.", write_errors),
	COUNTER(A, "profd_retention_removed_total", "Interval profiles removed by retention.",
		retention_removed),
	COUNTER(A, "profd_config_reloads_total", "Configuration reloads applied.", reloads),
	COUNTER(A, "profd_config_reload_failures_total",
		"Configuration reloads refused (the previous configuration was kept).",
		reload_failures),
	COUNTER(MW_HTTP, "profd_http_requests_total", "HTTP requests received.", http.requests),
	COUNTER(MW_HTTP, "profd_http_profile_requests_total", "On-demand profile requests accepted.",
		http.profile_requests),
	COUNTER(MW_HTTP, "profd_http_client_errors_total", "HTTP answers 4xx.",
		http.client_errors),
	COUNTER(MW_HTTP, "profd_http_server_errors_total", "HTTP answers 5xx.",
		http.server_errors),
	SPECIAL(MW_HTTP, true, "profd_http_refused_total",
		"HTTP requests and connections refused, by reason: access (401/403 by access "
		"control), profile_quota (503: over the profile slots of the caller), connections "
		"(closed at once: over the connection caps), header_timeout (closed: headers not "
		"complete in time).",
		MV_HTTP_REFUSED, http),
	COUNTER(MW_HTTP, "profd_http_cancelled_profiles_total",
		"On-demand profiles cancelled because their client went away.", http.cancelled),
	COUNTER(MW_HTTP, "profd_http_own_process_profiles_total",
		"Profiles served restricted to the caller's own processes.", http.own_profiles),
	GAUGE(MW_HTTP, "profd_http_active_profiles", "On-demand profiles being collected.",
	      http.active_profiles),
	GAUGE(A, "profd_push_enabled", "1 when push to Pyroscope is configured.", push_enabled),
	COUNTER(MW_PUSH, "profd_push_sent_total", "Profiles pushed.", push.sent),
	COUNTER(MW_PUSH, "profd_push_failures_total", "Failed push attempts (retried).",
		push.failures),
	COUNTER(MW_PUSH, "profd_push_rejected_total",
		"Profiles the server refused for good (dropped).", push.rejected),
	COUNTER(MW_PUSH, "profd_push_dropped_total", "Profiles dropped because the spool was full.",
		push.dropped),
	COUNTER(MW_PUSH, "profd_push_split_total",
		"Extra profiles spooled to keep each within Pyroscope's limits.", push.split),
	COUNTER(MW_PUSH, "profd_push_oversize_samples_total",
		"Samples over Pyroscope's size limit on their own (not sent).",
		push.oversize_samples),
	GAUGE(MW_PUSH, "profd_push_spool_files", "Profiles waiting in the spool.",
	      push.spool_files),
	GAUGE(MW_PUSH, "profd_push_spool_bytes", "Bytes waiting in the spool.", push.spool_bytes),
};

#undef A

/* An unsigned integer or bool field of the snapshot, by its size. */
static uint64_t snapshot_field(const struct metrics_snapshot *s, size_t offset, size_t size)
{
	const char *p = (const char *)s + offset;
	uint32_t u32;
	uint64_t u64;

	switch (size) {
	case sizeof(bool):
		return *(const bool *)p;
	case sizeof(uint32_t):
		memcpy(&u32, p, sizeof(u32));
		return u32;
	case sizeof(uint64_t):
		memcpy(&u64, p, sizeof(u64));
		return u64;
	default: /* no other size in metric_rows */
		return 0;
	}
}

/* The labelled rows' values (their HELP and TYPE lines are written already). */
static void labelled_metric(FILE *f, const struct metric_row *m, const struct metrics_snapshot *s)
{
	switch (m->value) {
	case MV_BUILD_INFO:
		fprintf(f, "profd_build_info{version=\"%s\"} 1\n", PROFD_VERSION);
		break;
	case MV_UNWIND_STOPS:
		for (int i = 0; i < _UNWIND_STOP_MAX; i++)
			fprintf(f, "profd_unwind_stops_total{reason=\"%s\"} %" PRIu64 "\n",
				unwind_stop_name(i), s->st.stops[i]);
		break;
	case MV_TASK_EVENTS:
		fprintf(f,
			"profd_task_events_total{event=\"exec\"} %" PRIu64 "\n"
			"profd_task_events_total{event=\"exit\"} %" PRIu64 "\n"
			"profd_task_events_total{event=\"fork\"} %" PRIu64 "\n",
			s->st.execs, s->st.exits, s->st.forks);
		break;
	case MV_HTTP_REFUSED:
		fprintf(f,
			"profd_http_refused_total{reason=\"access\"} %" PRIu64 "\n"
			"profd_http_refused_total{reason=\"profile_quota\"} %" PRIu64 "\n"
			"profd_http_refused_total{reason=\"connections\"} %" PRIu64 "\n"
			"profd_http_refused_total{reason=\"header_timeout\"} %" PRIu64 "\n",
			s->http.refused, s->http.refused_profiles, s->http.refused_connections,
			s->http.header_timeouts);
		break;
	default:
		break;
	}
}

static void render_metric_row(FILE *f, const struct metric_row *m, const struct metrics_snapshot *s)
{
	const char *type = m->counter ? "counter" : "gauge";

	if ((m->when == MW_HTTP && !s->http_enabled) || (m->when == MW_PUSH && !s->push_enabled))
		return;
	switch (m->value) {
	case MV_FIELD:
		metric(f, m->name, type, m->help, snapshot_field(s, m->offset, m->size));
		break;
	case MV_NS_AS_SECONDS:
		metric(f, m->name, type, m->help, snapshot_field(s, m->offset, 8) / 1e9);
		break;
	case MV_STACK_P99:
		metric(f, m->name, type, m->help, session_stack_copy_quantile(&s->st, 0.99));
		break;
	default:
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type);
		labelled_metric(f, m, s);
		break;
	}
}

int metrics_render(const struct metrics_snapshot *s, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(metric_rows); i++)
		render_metric_row(f, &metric_rows[i], s);
	process_metrics(f, s->start_time);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
