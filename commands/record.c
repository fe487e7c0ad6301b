// SPDX-License-Identifier: MIT
/* `profd record`: profile some processes (or the host) for a while, write one pprof file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "common/util.h"
#include "common/log.h"
#include "common/macro.h"
#include "sources/capture.h"
#include "commands/cli.h"
#include "output/profile.h"
#include "sources/raw.h"
#include "pipeline/session.h"
#include "output/output.h"
#include "symbolize/symbolize.h"

#define RECORD_MAX_PIDS 1024
#define RECORD_FREQ_MAX 10000
#define RECORD_OFF_CPU_MIN_MAX_NS (60ull * 1000000000) /* --off-cpu-min: at most 60 s */
#define RECORD_DURATION_MAX_S (365.0 * 86400)            /* -d: at most a year */
#define RECORD_RINGBUF_MIN 4096ul                         /* --ring-buffer: a page */
#define RECORD_RINGBUF_MAX (1ul << 30)                    /* --ring-buffer: 1 GiB */

struct record_opts {
	bool all;
	pid_t pids[RECORD_MAX_PIDS];
	size_t n_pids;
	char **cmd;
	unsigned freq;
	double duration_s; /* 0: until Ctrl-C or the targets exit */
	const char *output;
	const char *raw; /* --raw FILE: a raw capture instead of the pprof */
	unsigned stack_bytes;
	bool stack_fixed; /* --stack-copy=fixed: always stack_bytes */
	bool per_cpu;     /* --per-cpu-events: sample -p/-- CMD targets with per-CPU events */
	size_t ringbuf_bytes;
	size_t max_depth;
	bool inlines;
	bool python;
	bool off_cpu;
	uint64_t off_cpu_min_ns;
	bool debuginfod;
	bool progress;
	enum output_format format;
	const char *sample_type; /* folded/speedscope: value to weigh by; NULL: the format's */
	enum sym_demangle_mode demangle;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = sig;
}

/* ---- options: one table gives getopt's tables and --help ------------------------------------ */

static int opt_pid(const struct cli_option *opt, const char *arg, void *opts)
{
	struct record_opts *o = opts;
	_cleanup_free_ char *copy = strdup(arg);
	char *save = NULL;

	if (!copy)
		return log_oom();
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v;

		if (parse_ulong(tok, 1, INT_MAX, &v) < 0)
			return log_error_errno(-EINVAL, "Invalid PID '%s': expected a positive number.",
					       tok);
		if (o->n_pids >= RECORD_MAX_PIDS)
			return log_error_errno(-E2BIG, "Too many PIDs (at most %d).", RECORD_MAX_PIDS);
		o->pids[o->n_pids++] = (pid_t)v;
	}
	if (o->n_pids == 0)
		return log_error_errno(-EINVAL, "-p needs at least one PID.");
	return 0;
}

static int opt_freq(const struct cli_option *opt, const char *arg, void *opts)
{
	unsigned long v;
	int r = cli_parse_ulong("frequency", arg, 1, RECORD_FREQ_MAX, " Hz", &v);

	if (r == 0)
		((struct record_opts *)opts)->freq = v;
	return r;
}

static int opt_duration(const struct cli_option *opt, const char *arg, void *opts)
{
	if (parse_seconds(arg, RECORD_DURATION_MAX_S, &((struct record_opts *)opts)->duration_s) < 0)
		return log_error_errno(-EINVAL, "Invalid duration '%s': expected seconds > 0.", arg);
	return 0;
}

static int opt_output(const struct cli_option *opt, const char *arg, void *opts)
{
	struct record_opts *o = opts;

	if (!*arg)
		return log_error_errno(-EINVAL, "Empty output file name.");
	o->output = arg;
	return 0;
}

static int opt_format(const struct cli_option *opt, const char *arg, void *opts)
{
	if (output_format_from_string(arg, &((struct record_opts *)opts)->format) < 0)
		return log_error_errno(-EINVAL,
				       "Unknown format '%s': expected pprof, speedscope or folded.",
				       arg);
	return 0;
}

static int opt_sample_type(const struct cli_option *opt, const char *arg, void *opts)
{
	if (strcmp(arg, "samples") && strcmp(arg, "cpu") && strcmp(arg, "off_cpu"))
		return log_error_errno(-EINVAL,
				       "Unknown --sample-type '%s': expected samples, cpu or off_cpu.",
				       arg);
	((struct record_opts *)opts)->sample_type = arg;
	return 0;
}

static int opt_demangle(const struct cli_option *opt, const char *arg, void *opts)
{
	return cli_parse_demangle(arg, &((struct record_opts *)opts)->demangle);
}

static int opt_raw(const struct cli_option *opt, const char *arg, void *opts)
{
	if (!*arg)
		return log_error_errno(-EINVAL, "Empty --raw file name.");
	((struct record_opts *)opts)->raw = arg;
	return 0;
}

static int opt_stack_bytes(const struct cli_option *opt, const char *arg, void *opts)
{
	unsigned long v;
	int r = cli_parse_ulong("--stack-bytes", arg, 0, PROFD_STACK_BYTES_MAX, "", &v);

	if (r == 0)
		((struct record_opts *)opts)->stack_bytes = v;
	return r;
}

static int opt_stack_copy(const struct cli_option *opt, const char *arg, void *opts)
{
	struct record_opts *o = opts;

	if (!strcmp(arg, "adaptive"))
		o->stack_fixed = false;
	else if (!strcmp(arg, "fixed"))
		o->stack_fixed = true;
	else
		return log_error_errno(-EINVAL,
				       "Unknown --stack-copy '%s': expected adaptive or fixed.", arg);
	return 0;
}

static int opt_max_depth(const struct cli_option *opt, const char *arg, void *opts)
{
	unsigned long v;
	int r = cli_parse_ulong("--max-depth", arg, 1, UNWIND_MAX_DEPTH_LIMIT, "", &v);

	if (r == 0)
		((struct record_opts *)opts)->max_depth = v;
	return r;
}

static int opt_off_cpu_min(const struct cli_option *opt, const char *arg, void *opts)
{
	if (parse_duration_ns(arg, RECORD_OFF_CPU_MIN_MAX_NS,
			      &((struct record_opts *)opts)->off_cpu_min_ns) < 0)
		return log_error_errno(-EINVAL,
				       "Invalid --off-cpu-min '%s': expected a duration such as 1ms, "
				       "500us or 2s (at most 60s).",
				       arg);
	return 0;
}

static int opt_ring_buffer(const struct cli_option *opt, const char *arg, void *opts)
{
	unsigned long v;

	if (parse_ulong(arg, RECORD_RINGBUF_MIN, RECORD_RINGBUF_MAX, &v) < 0 || (v & (v - 1)))
		return log_error_errno(-EINVAL,
				       "Invalid --ring-buffer '%s': expected a power of two from %lu "
				       "to %lu.",
				       arg, RECORD_RINGBUF_MIN, RECORD_RINGBUF_MAX);
	((struct record_opts *)opts)->ringbuf_bytes = v;
	return 0;
}

static int opt_quiet(const struct cli_option *opt, const char *arg, void *opts)
{
	((struct record_opts *)opts)->progress = false;
	log_set_max_level(LOG_LEVEL_WARNING);
	return 0;
}

static int opt_verbose(const struct cli_option *opt, const char *arg, void *opts)
{
	log_set_max_level(log_get_max_level() >= LOG_LEVEL_INFO ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	return 0;
}

#define RECORD_BOOL(kind, name, field, text)                                                    \
	{ kind, name, 0, .help = text, .offset = offsetof(struct record_opts, field) }

static const struct cli_option record_options[] = {
	{ CLI_TEXT, .help = "Targets (exactly one):\n" },
	{ CLI_CALL, "pid", 'p', true, "PID[,PID...]",
	  "profile these processes (and processes they fork)", .apply = opt_pid },
	{ CLI_TRUE, "all", 'a', .help = "profile every process on the host",
	  .offset = offsetof(struct record_opts, all) },
	{ CLI_TEXT, .help = "  -- CMD [ARGS...]         run CMD and profile it until it exits\n"
			    "\n"
			    "Options:\n" },
	{ CLI_CALL, "freq", 'F', true, "HZ", "samples per second per CPU (default 99, max %d)",
	  { RECORD_FREQ_MAX }, opt_freq },
	{ CLI_CALL, "duration", 'd', true, "SECONDS",
	  "stop after this long (default: until Ctrl-C or the\ntargets exit)", .apply = opt_duration },
	{ CLI_CALL, "output", 'o', true, "FILE",
	  "profile to write (default profile.pb.gz; speedscope:\nprofile.speedscope.json; folded: "
	  "profile.folded)",
	  .apply = opt_output },
	{ CLI_CALL, "format", 'f', true, "FORMAT",
	  "pprof (default), speedscope (speedscope's JSON, one\nprofile per thread, inline frames "
	  "as frames) or\nfolded ('comm;root;...;leaf count' lines)",
	  .apply = opt_format },
	{ CLI_CALL, "sample-type", 0, true, "TYPE",
	  "folded and speedscope output: weigh stacks by this\nsample type (samples, cpu, or "
	  "off_cpu with --off-cpu);\ndefault: folded samples, speedscope cpu",
	  .apply = opt_sample_type },
	{ CLI_CALL, "demangle", 0, true, "MODE",
	  "C++/Rust names: simple (default: no parameters or\ntemplate arguments), templates, full "
	  "or none\n(mangled), as pprof's -symbolize=demangle=MODE",
	  .apply = opt_demangle },
	{ CLI_CALL, "raw", 0, true, "FILE",
	  "write a raw capture to FILE instead of the profile: the\nsamples as captured plus "
	  "mappings and kernel symbols,\nfor 'profd convert FILE' later or on another machine",
	  .apply = opt_raw },
	{ CLI_CALL, "stack-bytes", 0, true, "N",
	  "the most user stack bytes a sample copies (default %d,\nmax %d)",
	  { PROFD_STACK_BYTES_DEFAULT, PROFD_STACK_BYTES_MAX }, opt_stack_bytes },
	{ CLI_CALL, "stack-copy", 0, true, "MODE",
	  "adaptive (default): each process's samples copy what\nits stack walks need, learnt as "
	  "they come, at most\n--stack-bytes; fixed: always --stack-bytes (bounded by\nthe stack's "
	  "end)",
	  .apply = opt_stack_copy },
	RECORD_BOOL(CLI_TRUE, "per-cpu-events", per_cpu,
		    "sample -p and -- CMD targets with one event per CPU\n(every task on the CPU is "
		    "interrupted) instead of\nper-task events that follow the targets' threads"),
	{ CLI_CALL, "max-depth", 0, true, "N", "user frames per stack (default %d, max %d)",
	  { UNWIND_MAX_DEPTH_DEFAULT, UNWIND_MAX_DEPTH_LIMIT }, opt_max_depth },
	RECORD_BOOL(CLI_FALSE, "no-inline", inlines, "do not expand inlined functions"),
	RECORD_BOOL(CLI_TRUE, "off-cpu", off_cpu,
		    "also record where threads wait: a thread that blocks\n(sleep, lock, I/O; not "
		    "preemption) is recorded when it\nruns again, weighted by how long it was off the "
		    "CPU;\nthe profile gains the sample type off_cpu/nanoseconds\n(pprof "
		    "-sample_index=off_cpu)"),
	{ CLI_CALL, "off-cpu-min", 0, true, "TIME",
	  "shorter waits are not recorded (default 1ms; us, ms, s)", .apply = opt_off_cpu_min },
	RECORD_BOOL(CLI_FALSE, "no-python", python,
		    "do not read CPython frames (by default the Python\nfunctions, files and lines a "
		    "CPython 3.11+ process runs\nstand in place of its interpreter's frames)"),
	{ CLI_CALL, "ring-buffer", 0, true, "BYTES",
	  "BPF ring buffer size, a power of two from 4096 to 1 GiB\n(default: 125 ms of samples on "
	  "every CPU, 2 to 32 MiB;\nsmaller is cheaper for the sampled tasks); samples\nthat do not "
	  "fit are counted as lost",
	  .apply = opt_ring_buffer },
	RECORD_BOOL(CLI_TRUE, "debuginfod", debuginfod,
		    "fetch missing debug info from the debuginfod servers\nin DEBUGINFOD_URLS (off by "
		    "default: profd never\ncontacts the network unless asked)"),
	{ CLI_CALL, "quiet", 'q', .help = "no progress line and no summary", .apply = opt_quiet },
	{ CLI_CALL, "verbose", 'v', .help = "more messages (twice: debug)", .apply = opt_verbose },
	{ CLI_HELP, "help", 'h', .help = "show this help" },
};

static const struct cli_command record_command = {
	.name = "record",
	.usage = "Usage: profd record [-p PID[,PID...] | -a | -- CMD [ARGS...]] [OPTIONS]\n"
		 "\n"
		 "Sample on-CPU stacks and write a gzipped pprof profile.\n"
		 "\n",
	.options = record_options,
	.n_options = ARRAY_SIZE(record_options),
	.in_order = true,
	.operands = true,
};

/* 0: options in *o; 1: --help was shown; <0: an error, logged. */
static int parse_args(int argc, char **argv, struct record_opts *o)
{
	int ind, r;

	*o = (struct record_opts){
		.freq = 99,
		.stack_bytes = PROFD_STACK_BYTES_DEFAULT,
		.max_depth = UNWIND_MAX_DEPTH_DEFAULT,
		.inlines = true,
		.python = true,
		.off_cpu_min_ns = CAPTURE_OFF_CPU_MIN_DEFAULT_NS,
		.progress = true,
	};
	r = cli_parse(&record_command, argc, argv, o, &ind);
	if (r != 0)
		return r;
	if (ind < argc)
		o->cmd = argv + ind;
	if (o->raw && o->output)
		return log_error_errno(-EINVAL, "--raw writes a raw capture instead of the profile: "
						"give -o or --raw, not both.");
	if (!o->output)
		o->output = cli_default_output(o->format);
	if ((o->all ? 1 : 0) + (o->n_pids ? 1 : 0) + (o->cmd ? 1 : 0) != 1)
		return log_error_errno(-EINVAL, "Choose exactly one target: -p PID, -a, or -- CMD. "
						"Try 'profd record --help'.");
	return 0;
}

/* Fail before recording, not after, when the profile could not be written. */
static int check_output_writable(const char *path)
{
	_cleanup_free_ char *copy = strdup(path), *tmp = NULL;
	int fd;

	if (!copy)
		return log_oom();
	if (asprintf(&tmp, "%s/.profd-check-XXXXXX", dirname(copy)) < 0)
		return log_oom();
	fd = mkstemp(tmp);
	if (fd < 0)
		return log_error_errno(-errno, "Cannot write the output file %s: %m. "
					       "Choose another place with -o FILE.", path);
	close(fd);
	unlink(tmp);
	return 0;
}

struct record_ctx {
	struct record_opts *o;
	struct session *session;
	struct capture *capture;
	struct raw_writer *raw;
	pid_t child;
	/* -- CMD: the forked child runs profd's code until its exec; those samples are dropped. */
	pid_t launched;
	bool launched_execed;
	uint64_t pre_exec_dropped;
	bool tty; /* the progress line is shown */
	struct timespec wall; /* sampling started (CLOCK_REALTIME) */
	uint64_t start_ns, end_ns; /* sampling started and ended (mono_ns()) */
	uint64_t lost, over_budget; /* the capture's counts, kept when it is freed */
};

DEFINE_FREEP(struct kallsyms, kallsyms_free);
DEFINE_FREEP(struct sym_cache, sym_cache_free);
DEFINE_FREEP(struct pprof_builder, pprof_builder_free);

static int on_record(void *userdata, const void *data, size_t size)
{
	struct record_ctx *c = userdata;
	const struct profd_rec_hdr *h = data;
	bool exec = size >= sizeof(*h) && h->type == PROFD_REC_EXEC;
	int r;

	/* The ring buffer keeps each task's records in order: every sample of the launched
	 * child before its EXEC record is profd between fork() and execvp(), not CMD. */
	if (c->launched > 0 && !c->launched_execed) {
		if (exec && size >= sizeof(struct profd_task_event) &&
		    ((const struct profd_task_event *)data)->pid == (__u32)c->launched)
			c->launched_execed = true;
		else if (size >= sizeof(struct profd_sample) &&
			 (h->type == PROFD_REC_SAMPLE || h->type == PROFD_REC_OFFCPU) &&
			 ((const struct profd_sample *)data)->pid == (__u32)c->launched) {
			c->pre_exec_dropped++;
			return 0;
		}
	}

	/* Raw captures list a process's mappings before its samples, after its exec. */
	if (c->raw && exec)
		(void)raw_writer_add(c->raw, RAW_REC_RING, data, size);
	r = session_handle_record(c->session, data, size);
	if (c->raw && !exec)
		(void)raw_writer_add(c->raw, RAW_REC_RING, data, size);
	return r;
}

/* The kernel's side-band stream feeds the process table. */
static int on_sideband(void *userdata, const void *rec, size_t size)
{
	struct record_ctx *c = userdata;

	return proc_table_sideband_push(session_procs(c->session), rec, size);
}

/* The process table read a process's maps: save them in the raw capture. */
static void on_maps(void *userdata, const struct proc *p)
{
	struct record_ctx *c = userdata;
	char path[64], comm[17] = "";
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (n = read(fd, comm, sizeof(comm) - 1)) > 0)
		comm[strcspn(comm, "\n")] = '\0';
	(void)raw_writer_add_process(c->raw, p, comm);
}

static void on_stack_size(void *userdata, uint32_t pid, uint32_t gap)
{
	struct record_ctx *c = userdata;
	int r;

	if (!c->capture)
		return;
	r = capture_set_stack_gap(c->capture, (pid_t)pid, gap);
	if (r < 0)
		log_debug_errno(r, "Cannot set the stack copy of process %u: %m", pid);
}

static void on_python(void *userdata, uint32_t pid, const struct profd_py_proc *py)
{
	struct record_ctx *c = userdata;
	int r = capture_set_python(c->capture, (pid_t)pid, py);

	if (r < 0)
		log_debug_errno(r, "Cannot follow the Python frames of process %u: %m", pid);
}

/* A zombie has exited too: its parent just has not reaped it yet. */
static bool process_running(pid_t pid)
{
	char path[64], buf[512], *p;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, so find the last ')'. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static bool targets_alive(struct record_ctx *c)
{
	if (c->o->all)
		return true;
	if (c->o->cmd) {
		int status;

		if (c->child > 0 && waitpid(c->child, &status, WNOHANG) == c->child)
			c->child = -1;
		return c->child > 0;
	}
	for (size_t i = 0; i < c->o->n_pids; i++)
		if (process_running(c->o->pids[i]))
			return true;
	return false;
}

/* Fork CMD stopped before exec, so its very first instruction can be sampled. */
static int spawn_child(char **cmd, pid_t *ret_pid, int *ret_go_fd)
{
	int go[2];
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) < 0)
		return log_error_errno(-errno, "pipe: %m");
	pid = fork();
	if (pid < 0)
		return log_error_errno(-errno, "fork: %m");
	if (pid == 0) {
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(127);
		execvp(cmd[0], cmd);
		fprintf(stderr, "profd: cannot run %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	*ret_pid = pid;
	*ret_go_fd = go[1];
	return 0;
}

static void print_progress(double elapsed, const struct session_stats *st, uint64_t lost)
{
	fprintf(stderr, "\r\033[Kprofd: recording %.1fs  samples %" PRIu64 "  lost %" PRIu64,
		elapsed, st->samples, lost);
}

/* Sampling runs: say what is sampled, how (scripts may wait for this line). */
static void print_start(const struct record_opts *o, struct capture *c)
{
	struct capture_info ci;

	capture_get_info(c, &ci);
	if (ci.per_task)
		fprintf(stderr, "profd: sampling %s at %u Hz: per-task events on %zu thread%s, "
				"followed into new threads and children\n",
			o->cmd ? o->cmd[0] : o->n_pids == 1 ? "1 process" : "the processes",
			o->freq, ci.threads, ci.threads == 1 ? "" : "s");
	else
		fprintf(stderr, "profd: sampling %s at %u Hz: per-CPU events on %zu CPU%s\n",
			o->all ? "every process" : o->cmd ? o->cmd[0] : "the processes", o->freq,
			ci.events, ci.events == 1 ? "" : "s");
}

static void print_summary(const struct record_opts *o, const struct profile_summary *sum,
			  const struct session_stats *st, const struct proc_sideband_stats *sb,
			  uint64_t lost, uint64_t over_budget, double elapsed)
{
	printf("profd: wrote %s\n", o->output);
	printf("  duration   %.1f s at %u Hz\n", elapsed, o->freq);
	printf("  samples    %" PRIu64 " (lost %" PRIu64 ")\n", sum->samples, lost);
	cli_print_completeness(stdout, sum);
	printf("  profile    %zu locations, %zu functions, %zu mappings\n", sum->n_locations,
	       sum->n_functions, sum->n_mappings);
	if (sb && sb->records)
		printf("  side-band  %" PRIu64 " records (%" PRIu64 " mappings, %" PRIu64 " forks, %"
		       PRIu64 " execs, %" PRIu64 " exits), %" PRIu64 " lost%s, %" PRIu64
		       " files not opened\n",
		       sb->records, sb->mmaps, sb->forks, sb->execs, sb->exits, sb->lost,
		       sb->lost ? " (then /proc read again)" : "", sb->unopened);
	if (st->bad_records)
		printf("  malformed  %" PRIu64 " records skipped\n", st->bad_records);
	if (st->py_samples || st->py_unsupported)
		printf("  python     %" PRIu64 " samples in CPython, %" PRIu64 " Python frames"
		       " (%" PRIu64 " unplaced, %" PRIu64 " unreadable code objects, %" PRIu64
		       " chains unreadable or cut, %" PRIu64 " samples of unsupported interpreters)\n",
		       st->py_samples, st->py_frames, st->py_unplaced, st->py_bad_code, st->py_errors,
		       st->py_unsupported);
	if (st->py_skipped || st->py_cut_calls || st->py_raw_eval || st->py_outer_frames)
		printf("  python     %" PRIu64 " frames at the outer end of cut native stacks, %" PRIu64
		       " frames of deep chains not kept (marked), %" PRIu64
		       " interpreter calls past a cut chain (marked), %" PRIu64
		       " interpreter frames without Python frames (marked)\n",
		       st->py_outer_frames, st->py_skipped, st->py_cut_calls, st->py_raw_eval);
	if (st->py_code_reads)
		printf("  python     %" PRIu64 " code objects read, %.1f µs each\n", st->py_code_reads,
		       st->py_code_read_ns / 1e3 / st->py_code_reads);
	if (st->py_code_records)
		printf("  python     %" PRIu64 " code objects copied as they ran (%" PRIu64
		       " not code objects)\n",
		       st->py_code_records, st->py_code_records_bad);
	if (o->off_cpu) {
		printf("  off-CPU    %" PRIu64 " waits of %.1f ms or more, %.3f s in all (%" PRIu64
		       " over the budget, not recorded)\n",
		       st->off_cpu_waits, o->off_cpu_min_ns / 1e6, sum->off_cpu_ns / 1e9, over_budget);
		for (size_t i = 0; i < sum->n_waits; i++)
			printf("    %9.3f s  %s  %s\n", sum->waits[i].ns / 1e9,
			       output_offcpu_state_name(sum->waits[i].state),
			       sum->waits[i].stack);
	}
	if (st->stack_copies)
		printf("  stack copy %.0f bytes mean, %" PRIu64 " p99 per sample (%s, at most %u); "
		       "the walks read %.0f bytes mean; to the stack's end: %.0f bytes mean\n",
		       (double)st->stack_copy_bytes / st->stack_copies,
		       session_stack_copy_quantile(st, 0.99),
		       o->stack_fixed ? "fixed" : "adaptive", o->stack_bytes,
		       (double)st->stack_need_bytes / st->stack_copies,
		       (double)st->stack_full_bytes / st->stack_copies);
	if (st->stack_cut)
		printf("  stack copy %" PRIu64 " walks ran out of a copy cut at the learnt gap (then "
		       "copied to the stack's end until learnt again)\n",
		       st->stack_cut);
	if (sum->n_top == 0)
		return;
	printf("\nTop %zu functions by self samples:\n", sum->n_top);
	printf("  %6s %8s  %s\n", "self%", "samples", "function");
	for (size_t i = 0; i < sum->n_top; i++)
		printf("  %5.1f%% %8" PRIu64 "  %s\n",
		       sum->samples ? 100.0 * sum->top[i].self / sum->samples : 0.0, sum->top[i].self,
		       sum->top[i].name);
}

/* Before anything is set up: the privileges, the targets, the output file. */
static int record_preflight(const struct record_opts *o)
{
	const char *missing = NULL;
	int r;

	r = capture_check_privileges(&missing);
	if (r == -EPERM)
		return log_error_errno(r, "Missing capability %s: profd needs CAP_BPF and CAP_PERFMON "
					  "(or root). Run it with sudo or grant them, e.g. "
					  "'setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_syslog+ep "
					  "profd'.", missing);
	if (r < 0)
		return log_error_errno(r, "Cannot read this process's capabilities: %m");

	for (size_t i = 0; i < o->n_pids; i++)
		if (kill(o->pids[i], 0) < 0 && errno == ESRCH)
			return log_error_errno(-ESRCH, "Process %d does not exist.", o->pids[i]);

	r = check_output_writable(o->raw ? o->raw : o->output);
	if (r < 0)
		return r;
	if (o->debuginfod && !getenv("DEBUGINFOD_URLS"))
		log_warning("--debuginfod: DEBUGINFOD_URLS is not set, there is no server to ask.");
	return 0;
}

/* The session (and with --raw the raw writer, which hears of every process's maps). */
static int record_session_new(struct record_ctx *c)
{
	const struct record_opts *o = c->o;
	struct session_config scfg = {
		.max_depth = o->max_depth,
		/* A raw capture is converted later, when the processes' code objects are gone. */
		.no_python = !o->python || o->raw,
		.perf_maps = !o->raw, /* a raw capture names JIT code when converted */
		.hooks = {
			.on_python = on_python,
			.on_stack_size = o->stack_fixed ? NULL : on_stack_size,
			.userdata = c,
		},
		.stack_cap = o->stack_bytes,
	};
	struct timespec now;
	int r;

	r = session_new(&scfg, &c->session);
	if (r < 0)
		return log_error_errno(r, "Failed to set up: %m");
	if (!o->raw)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	r = raw_writer_new(o->raw,
			   &(struct raw_header){ .record_version = PROFD_RECORD_VERSION,
						 .e_machine = raw_host_e_machine(),
						 .freq_hz = o->freq,
						 .stack_bytes = o->stack_bytes,
						 .time_ns = (int64_t)now.tv_sec * 1000000000ll +
							    now.tv_nsec,
						 .mono_ns = mono_ns() },
			   &c->raw);
	if (r < 0)
		return log_error_errno(r, "Failed to create %s: %m", o->raw);
	proc_table_set_observer(session_procs(c->session), on_maps, c);
	return 0;
}

/* Load the BPF program, start -- CMD (stopped before its exec), put the targets in the filter. */
static int record_capture_new(struct record_ctx *c, int *ret_go_fd)
{
	struct record_opts *o = c->o;
	struct capture_config ccfg = {
		.all = o->all,
		.freq = o->freq,
		.stack_bytes = o->stack_bytes,
		.ringbuf_bytes = o->ringbuf_bytes ? o->ringbuf_bytes
						  : capture_ringbuf_size(o->freq, o->stack_bytes,
									 !o->stack_fixed, 0.125),
		.follow_forks = true,
		.no_python = !o->python || o->raw,
		.off_cpu = o->off_cpu,
		.off_cpu_min_ns = o->off_cpu_min_ns,
		.per_task = !o->all && !o->per_cpu,
		.stack_sizing = !o->stack_fixed,
		.sideband = on_sideband,
		.sideband_userdata = c,
	};
	int r;

	/* -a: every process; otherwise the targets and what they fork. */
	r = proc_table_set_sideband(session_procs(c->session), o->all);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the process table: %m");
	r = capture_new(&ccfg, on_record, c, &c->capture); /* logs why it failed */
	if (r < 0)
		return r;

	/* The side-band runs: what runs already is read now, what starts later it tells. */
	if (o->all) {
		r = proc_table_snapshot(session_procs(c->session));
		if (r < 0)
			log_warning_errno(r, "Cannot read the running processes: %m");
	}
	if (o->cmd) {
		r = spawn_child(o->cmd, &c->child, ret_go_fd);
		if (r < 0)
			return r;
		o->pids[o->n_pids++] = c->child;
		c->launched = c->child;
	}
	for (size_t i = 0; i < o->n_pids; i++) {
		r = capture_add_pid(c->capture, o->pids[i]);
		if (r < 0)
			return log_error_errno(r, "Failed to add process %d to the filter: %m",
					       o->pids[i]);
		/* Read maps now: a short-lived target may be gone by the time samples arrive. */
		(void)session_watch_pid(c->session, o->pids[i]);
	}
	return 0;
}

/* Poll until the duration is over, a signal came or the targets exited. */
static int record_loop(struct record_ctx *c)
{
	const struct record_opts *o = c->o;
	uint64_t last_progress = 0;
	int r;

	for (;;) {
		uint64_t now;

		/*
		 * The first second more often: until a process's stack gap is learnt from its
		 * first samples (which the reader must see), its samples copy to the stack's end.
		 */
		r = capture_poll(c->capture, mono_ns() - c->start_ns < 1000000000ull ? 20 : 100);
		if (r < 0)
			return log_error_errno(r, "Failed to read samples: %m");
		proc_table_sideband_tick(session_procs(c->session), capture_handled_ns(c->capture));
		now = mono_ns();
		if (c->tty && now - last_progress >= 250000000ull) {
			print_progress((now - c->start_ns) / 1e9, session_stats(c->session),
				       capture_lost(c->capture));
			last_progress = now;
		}
		if (stop_requested)
			break;
		if (o->duration_s > 0 && now - c->start_ns >= (uint64_t)(o->duration_s * 1e9))
			break;
		if (!targets_alive(c))
			break;
		if (c->raw && raw_writer_error(c->raw) < 0)
			return log_error_errno(raw_writer_error(c->raw), "Failed to write %s: %m",
					       o->raw);
	}
	c->end_ns = mono_ns();
	return 0;
}

/* Sampling is over: drain what is captured, end the command we started, free the capture. */
static void record_stop(struct record_ctx *c)
{
	/*
	 * Everything already in the ring buffer belongs to the profile. Sampling stops first: a
	 * reader slower than the samples arrive would otherwise never see the ring empty.
	 */
	capture_stop(c->capture);
	while (capture_poll(c->capture, 0) > 0)
		;
	proc_table_sideband_flush(session_procs(c->session));
	if (c->tty)
		fprintf(stderr, "\r\033[K");

	if (c->child > 0) {
		/* Duration over or interrupted: the command we started does not outlive us. */
		kill(c->child, SIGTERM);
		waitpid(c->child, NULL, 0);
		c->child = -1;
	}
	/*
	 * Detach and unmap the ring buffer (its data pages are mapped twice and resident) before
	 * symbolization, which is what peaks profd's memory.
	 */
	c->lost = capture_lost(c->capture);
	c->over_budget = capture_off_cpu_over_budget(c->capture);
	capture_free(TAKE_PTR(c->capture));
}

/* --raw: the kernel symbols and the end record, then the file in place. */
static int record_write_raw(struct record_ctx *c, const struct kallsyms *ks)
{
	const struct record_opts *o = c->o;
	const struct session_stats *st = session_stats(c->session);
	int r;

	(void)raw_writer_add_ksyms(c->raw, session_aggregate(c->session), ks);
	(void)raw_writer_add_end(c->raw, &(struct raw_end){
						 .records = st->records,
						 .samples = st->samples,
						 .lost = c->lost,
						 .duration_ns = c->end_ns - c->start_ns,
					 });
	r = raw_writer_commit(c->raw);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o->raw);
	if (o->progress)
		printf("profd: wrote raw capture %s (%" PRIu64 " samples, lost %" PRIu64
		       ", %.1f MB)\n  convert it with: profd convert %s -o %s\n",
		       o->raw, st->samples, c->lost, raw_writer_bytes(c->raw) / 1e6, o->raw,
		       cli_default_output(OUTPUT_PPROF));
	return 0;
}

/* Symbolize the aggregate, write the profile, print the summary. */
static int record_write_profile(struct record_ctx *c, struct kallsyms *ks)
{
	const struct record_opts *o = c->o;
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(sym_cache_freep) struct sym_cache *symc = NULL;
	struct profile_options popts;
	struct profile_summary sum;
	int r;

	r = sym_cache_new(&(struct sym_cache_config){ .debuginfod = o->debuginfod,
						      .demangle = o->demangle },
			  &symc);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the symbolizer: %m");
	popts = (struct profile_options){
		.period_ns = 1000000000ull / o->freq,
		.time_nanos = (int64_t)c->wall.tv_sec * 1000000000ll + c->wall.tv_nsec,
		.duration_nanos = (int64_t)(c->end_ns - c->start_ns),
		.inlines = o->inlines,
		.kallsyms = ks,
		.sym_cache = symc,
		.off_cpu = o->off_cpu,
	};
	r = profile_build(session_aggregate(c->session), &popts, &b, &sum);
	if (r < 0)
		return log_error_errno(r, "Failed to build the profile: %m");
	r = output_write_builder_type(b, o->format, o->sample_type, o->output, 0600);
	if (r == -ENOENT && o->sample_type)
		return log_error_errno(r, "The profile has no sample type '%s' (off_cpu needs "
					  "--off-cpu); nothing was written.",
				       o->sample_type);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o->output);
	if (o->progress) {
		struct proc_sideband_stats sb;

		proc_table_sideband_stats(session_procs(c->session), &sb);
		print_summary(o, &sum, session_stats(c->session), &sb, c->lost, c->over_budget,
			      (c->end_ns - c->start_ns) / 1e9);
	}
	return 0;
}

/* Set up, sample until done, write the raw capture or the profile. */
static int record_run(struct record_ctx *c)
{
	struct sigaction sa = { .sa_handler = on_signal };
	_cleanup_close_ int go_fd = -1;
	_cleanup_(kallsyms_freep) struct kallsyms *ks = NULL;
	int r;

	r = record_session_new(c);
	if (r < 0)
		return r;
	r = record_capture_new(c, &go_fd);
	if (r < 0)
		return r;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	r = capture_start(c->capture);
	if (r < 0)
		return r;
	if (c->o->progress)
		print_start(c->o, c->capture);
	clock_gettime(CLOCK_REALTIME, &c->wall);
	c->start_ns = mono_ns();
	if (go_fd >= 0) {
		if (write(go_fd, "g", 1) != 1)
			return log_error_errno(-errno, "Failed to start %s: %m", c->o->cmd[0]);
		close(TAKE_FD(go_fd));
	}
	c->tty = c->o->progress && isatty(STDERR_FILENO);
	r = record_loop(c);
	if (r < 0)
		return r;
	record_stop(c);

	r = kallsyms_load("/proc/kallsyms", &ks);
	if (r < 0)
		log_info_errno(r, "Kernel symbols unavailable (%m); kernel frames keep addresses.");
	return c->raw ? record_write_raw(c, ks) : record_write_profile(c, ks);
}

int cmd_record(int argc, char **argv)
{
	struct record_opts o;
	struct record_ctx ctx = { .o = &o, .child = -1 };
	int r;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : r;
	r = record_preflight(&o);
	if (r < 0)
		return r;
	cli_raise_fd_limit();

	r = record_run(&ctx);
	if (ctx.child > 0) {
		kill(ctx.child, SIGKILL);
		waitpid(ctx.child, NULL, 0);
	}
	raw_writer_free(ctx.raw);
	capture_free(ctx.capture);
	session_free(ctx.session);
	return r;
}
