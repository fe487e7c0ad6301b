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
#include <sys/resource.h>
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

static void help(void)
{
	printf("Usage: profd record [-p PID[,PID...] | -a | -- CMD [ARGS...]] [OPTIONS]\n"
	       "\n"
	       "Sample on-CPU stacks and write a gzipped pprof profile.\n"
	       "\n"
	       "Targets (exactly one):\n"
	       "  -p, --pid PID[,PID...]   profile these processes (and processes they fork)\n"
	       "  -a, --all                profile every process on the host\n"
	       "  -- CMD [ARGS...]         run CMD and profile it until it exits\n"
	       "\n"
	       "Options:\n"
	       "  -F, --freq HZ            samples per second per CPU (default 99, max %d)\n"
	       "  -d, --duration SECONDS   stop after this long (default: until Ctrl-C or the\n"
	       "                           targets exit)\n"
	       "  -o, --output FILE        profile to write (default profile.pb.gz; speedscope:\n"
	       "                           profile.speedscope.json; folded: profile.folded)\n"
	       "  -f, --format FORMAT      pprof (default), speedscope (speedscope's JSON, one\n"
	       "                           profile per thread, inline frames as frames) or\n"
	       "                           folded ('comm;root;...;leaf count' lines)\n"
	       "      --sample-type TYPE   folded and speedscope output: weigh stacks by this\n"
	       "                           sample type (samples, cpu, or off_cpu with --off-cpu);\n"
	       "                           default: folded samples, speedscope cpu\n"
	       "      --demangle MODE      C++/Rust names: simple (default: no parameters or\n"
	       "                           template arguments), templates, full or none\n"
	       "                           (mangled), as pprof's -symbolize=demangle=MODE\n"
	       "      --raw FILE           write a raw capture to FILE instead of the profile: the\n"
	       "                           samples as captured plus mappings and kernel symbols,\n"
	       "                           for 'profd convert FILE' later or on another machine\n"
	       "      --stack-bytes N      the most user stack bytes a sample copies (default %d,\n"
	       "                           max %d)\n"
	       "      --stack-copy MODE    adaptive (default): each process's samples copy what\n"
	       "                           its stack walks need, learnt as they come, at most\n"
	       "                           --stack-bytes; fixed: always --stack-bytes (bounded by\n"
	       "                           the stack's end)\n"
	       "      --per-cpu-events     sample -p and -- CMD targets with one event per CPU\n"
	       "                           (every task on the CPU is interrupted) instead of\n"
	       "                           per-task events that follow the targets' threads\n"
	       "      --max-depth N        user frames per stack (default %d, max %d)\n"
	       "      --no-inline          do not expand inlined functions\n"
	       "      --off-cpu            also record where threads wait: a thread that blocks\n"
	       "                           (sleep, lock, I/O; not preemption) is recorded when it\n"
	       "                           runs again, weighted by how long it was off the CPU;\n"
	       "                           the profile gains the sample type off_cpu/nanoseconds\n"
	       "                           (pprof -sample_index=off_cpu)\n"
	       "      --off-cpu-min TIME   shorter waits are not recorded (default 1ms; us, ms, s)\n"
	       "      --no-python          do not read CPython frames (by default the Python\n"
	       "                           functions, files and lines a CPython 3.11+ process runs\n"
	       "                           stand in place of its interpreter's frames)\n"
	       "      --ring-buffer BYTES  BPF ring buffer size, a power of two from 4096 to 1 GiB\n"
	       "                           (default: 125 ms of samples on every CPU, 2 to 32 MiB;\n"
	       "                           smaller is cheaper for the sampled tasks); samples\n"
	       "                           that do not fit are counted as lost\n"
	       "      --debuginfod         fetch missing debug info from the debuginfod servers\n"
	       "                           in DEBUGINFOD_URLS (off by default: profd never\n"
	       "                           contacts the network unless asked)\n"
	       "  -q, --quiet              no progress line and no summary\n"
	       "  -v, --verbose            more messages (twice: debug)\n"
	       "  -h, --help               show this help\n",
	       RECORD_FREQ_MAX, PROFD_STACK_BYTES_DEFAULT, PROFD_STACK_BYTES_MAX,
	       UNWIND_MAX_DEPTH_DEFAULT, UNWIND_MAX_DEPTH_LIMIT);
}

/* "1ms", "250us", "2s", "1.5ms" or plain nanoseconds → ns, at most 60 s. */
static int parse_duration_ns(const char *s, uint64_t *ret)
{
	char *end;
	double v, mult;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (!strcmp(end, "") || !strcmp(end, "ns"))
		mult = 1;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (!strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "s"))
		mult = 1e9;
	else
		return -EINVAL;
	if (v * mult > 60e9)
		return -ERANGE;
	*ret = (uint64_t)(v * mult);
	return 0;
}

static int parse_pids(const char *arg, struct record_opts *o)
{
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

static int parse_args(int argc, char **argv, struct record_opts *o)
{
	enum { OPT_STACK_BYTES = 0x100, OPT_MAX_DEPTH, OPT_NO_INLINE, OPT_DEBUGINFOD, OPT_RAW,
	       OPT_RING_BUFFER, OPT_NO_PYTHON, OPT_OFF_CPU, OPT_OFF_CPU_MIN, OPT_DEMANGLE,
	       OPT_SAMPLE_TYPE, OPT_STACK_COPY, OPT_PER_CPU };
	static const struct option options[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ "freq", required_argument, NULL, 'F' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "demangle", required_argument, NULL, OPT_DEMANGLE },
		{ "sample-type", required_argument, NULL, OPT_SAMPLE_TYPE },
		{ "raw", required_argument, NULL, OPT_RAW },
		{ "stack-bytes", required_argument, NULL, OPT_STACK_BYTES },
		{ "stack-copy", required_argument, NULL, OPT_STACK_COPY },
		{ "per-cpu-events", no_argument, NULL, OPT_PER_CPU },
		{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
		{ "no-inline", no_argument, NULL, OPT_NO_INLINE },
		{ "no-python", no_argument, NULL, OPT_NO_PYTHON },
		{ "off-cpu", no_argument, NULL, OPT_OFF_CPU },
		{ "off-cpu-min", required_argument, NULL, OPT_OFF_CPU_MIN },
		{ "ring-buffer", required_argument, NULL, OPT_RING_BUFFER },
		{ "debuginfod", no_argument, NULL, OPT_DEBUGINFOD },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	unsigned long v;
	bool output_set = false;
	int c, r;

	*o = (struct record_opts){
		.freq = 99,
		.output = "profile.pb.gz",
		.stack_bytes = PROFD_STACK_BYTES_DEFAULT,
		.max_depth = UNWIND_MAX_DEPTH_DEFAULT,
		.inlines = true,
		.python = true,
		.off_cpu_min_ns = CAPTURE_OFF_CPU_MIN_DEFAULT_NS,
		.progress = true,
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:aF:d:o:f:qvh", options, NULL)) >= 0) {
		switch (c) {
		case 'p':
			r = parse_pids(optarg, o);
			if (r < 0)
				return r;
			break;
		case 'a':
			o->all = true;
			break;
		case 'F':
			if (parse_ulong(optarg, 1, RECORD_FREQ_MAX, &v) < 0)
				return log_error_errno(-EINVAL,
						       "Invalid frequency '%s': expected 1..%d Hz.",
						       optarg, RECORD_FREQ_MAX);
			o->freq = v;
			break;
		case 'd': {
			char *end;

			errno = 0;
			o->duration_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->duration_s > 0) ||
			    o->duration_s > 365.0 * 86400)
				return log_error_errno(-EINVAL,
						       "Invalid duration '%s': expected seconds > 0.",
						       optarg);
			break;
		}
		case 'o':
			if (!*optarg)
				return log_error_errno(-EINVAL, "Empty output file name.");
			o->output = optarg;
			output_set = true;
			break;
		case 'f':
			if (output_format_from_string(optarg, &o->format) < 0)
				return log_error_errno(-EINVAL,
						       "Unknown format '%s': expected pprof, speedscope "
						       "or folded.",
						       optarg);
			break;
		case OPT_SAMPLE_TYPE:
			if (strcmp(optarg, "samples") && strcmp(optarg, "cpu") &&
			    strcmp(optarg, "off_cpu"))
				return log_error_errno(-EINVAL,
						       "Unknown --sample-type '%s': expected samples, cpu "
						       "or off_cpu.",
						       optarg);
			o->sample_type = optarg;
			break;
		case OPT_DEMANGLE:
			if (sym_demangle_mode_from_string(optarg, &o->demangle) < 0)
				return log_error_errno(-EINVAL,
						       "Unknown --demangle '%s': expected simple, "
						       "templates, full or none.",
						       optarg);
			break;
		case OPT_RAW:
			if (!*optarg)
				return log_error_errno(-EINVAL, "Empty --raw file name.");
			o->raw = optarg;
			break;
		case OPT_STACK_BYTES:
			if (parse_ulong(optarg, 0, PROFD_STACK_BYTES_MAX, &v) < 0)
				return log_error_errno(-EINVAL,
						       "Invalid --stack-bytes '%s': expected 0..%d.",
						       optarg, PROFD_STACK_BYTES_MAX);
			o->stack_bytes = v;
			break;
		case OPT_STACK_COPY:
			if (!strcmp(optarg, "adaptive"))
				o->stack_fixed = false;
			else if (!strcmp(optarg, "fixed"))
				o->stack_fixed = true;
			else
				return log_error_errno(-EINVAL,
						       "Unknown --stack-copy '%s': expected adaptive or "
						       "fixed.",
						       optarg);
			break;
		case OPT_PER_CPU:
			o->per_cpu = true;
			break;
		case OPT_MAX_DEPTH:
			if (parse_ulong(optarg, 1, UNWIND_MAX_DEPTH_LIMIT, &v) < 0)
				return log_error_errno(-EINVAL,
						       "Invalid --max-depth '%s': expected 1..%d.",
						       optarg, UNWIND_MAX_DEPTH_LIMIT);
			o->max_depth = v;
			break;
		case OPT_NO_INLINE:
			o->inlines = false;
			break;
		case OPT_NO_PYTHON:
			o->python = false;
			break;
		case OPT_OFF_CPU:
			o->off_cpu = true;
			break;
		case OPT_OFF_CPU_MIN:
			if (parse_duration_ns(optarg, &o->off_cpu_min_ns) < 0)
				return log_error_errno(-EINVAL,
						       "Invalid --off-cpu-min '%s': expected a duration "
						       "such as 1ms, 500us or 2s (at most 60s).",
						       optarg);
			break;
		case OPT_RING_BUFFER:
			if (parse_ulong(optarg, 4096, 1ul << 30, &v) < 0 || (v & (v - 1)))
				return log_error_errno(-EINVAL,
						       "Invalid --ring-buffer '%s': expected a power of "
						       "two from 4096 to 1073741824.",
						       optarg);
			o->ringbuf_bytes = v;
			break;
		case OPT_DEBUGINFOD:
			o->debuginfod = true;
			break;
		case 'q':
			o->progress = false;
			log_set_max_level(LOG_LEVEL_WARNING);
			break;
		case 'v':
			log_set_max_level(log_get_max_level() >= LOG_LEVEL_INFO ? LOG_LEVEL_DEBUG
										: LOG_LEVEL_INFO);
			break;
		case 'h':
			help();
			return 1;
		default:
			return log_error_errno(-EINVAL, "Try 'profd record --help'.");
		}
	}
	if (optind < argc)
		o->cmd = argv + optind;
	if (!output_set && o->format != OUTPUT_PPROF)
		o->output = o->format == OUTPUT_SPEEDSCOPE ? "profile.speedscope.json"
							   : "profile.folded";
	if (o->raw && output_set)
		return log_error_errno(-EINVAL, "--raw writes a raw capture instead of the profile: "
						"give -o or --raw, not both.");
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
	size_t alive; /* targets not yet exited (-p and -- CMD modes) */
	/* -- CMD: the forked child runs profd's code until its exec; those samples are dropped. */
	pid_t launched;
	bool launched_execed;
	uint64_t pre_exec_dropped;
};

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
	double pct = sum->user_stacks ? 100.0 * sum->complete / sum->user_stacks : 0.0;

	printf("profd: wrote %s\n", o->output);
	printf("  duration   %.1f s at %u Hz\n", elapsed, o->freq);
	printf("  samples    %" PRIu64 " (lost %" PRIu64 ")\n", sum->samples, lost);
	printf("  complete   %.1f%% of %" PRIu64 " user stacks reached the root\n", pct,
	       sum->user_stacks);
	if (sum->user_stacks > sum->complete) {
		printf("  stopped   ");
		for (int i = 1; i < _UNWIND_STOP_MAX && i < (int)ARRAY_SIZE(sum->stops); i++)
			if (sum->stops[i] && i != UNWIND_STOP_KERNEL_THREAD)
				printf(" %s %" PRIu64, unwind_stop_name(i), sum->stops[i]);
		printf("\n");
	}
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

static void raise_fd_limit(void)
{
	struct rlimit rl;

	/* One fd is kept per profiled binary; the soft limit of 1024 is easy to reach with -a. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)65536);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int cmd_record(int argc, char **argv)
{
	struct record_opts o;
	struct record_ctx ctx = { .o = &o, .child = -1 };
	struct capture_config ccfg;
	struct session_config scfg = {};
	struct profile_options popts = {};
	struct profile_summary sum;
	struct pprof_builder *b = NULL;
	struct kallsyms *ks = NULL;
	struct sym_cache *symc = NULL;
	const char *missing = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	_cleanup_close_ int go_fd = -1;
	uint64_t start_ns, last_progress = 0, end_ns, lost = 0, over_budget = 0;
	struct timespec wall;
	bool tty;
	int r;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : r;

	r = capture_check_privileges(&missing);
	if (r == -EPERM)
		return log_error_errno(r, "Missing capability %s: profd needs CAP_BPF and CAP_PERFMON "
					  "(or root). Run it with sudo or grant them, e.g. "
					  "'setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_syslog+ep "
					  "profd'.", missing);
	if (r < 0)
		return log_error_errno(r, "Cannot read this process's capabilities: %m");

	for (size_t i = 0; i < o.n_pids; i++)
		if (kill(o.pids[i], 0) < 0 && errno == ESRCH)
			return log_error_errno(-ESRCH, "Process %d does not exist.", o.pids[i]);

	r = check_output_writable(o.raw ? o.raw : o.output);
	if (r < 0)
		return r;
	if (o.debuginfod && !getenv("DEBUGINFOD_URLS"))
		log_warning("--debuginfod: DEBUGINFOD_URLS is not set, there is no server to ask.");
	raise_fd_limit();

	scfg.max_depth = o.max_depth;
	/* A raw capture is converted later, when the processes' code objects are gone. */
	scfg.no_python = !o.python || o.raw;
	scfg.perf_maps = !o.raw; /* a raw capture names JIT code when converted */
	scfg.on_python = on_python;
	if (!o.stack_fixed)
		scfg.on_stack_size = on_stack_size;
	scfg.stack_cap = o.stack_bytes;
	scfg.userdata = &ctx;
	r = session_new(&scfg, &ctx.session);
	if (r < 0)
		return log_error_errno(r, "Failed to set up: %m");
	if (o.raw) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		r = raw_writer_new(o.raw,
				   &(struct raw_header){ .record_version = PROFD_RECORD_VERSION,
							 .e_machine = raw_host_e_machine(),
							 .freq_hz = o.freq,
							 .stack_bytes = o.stack_bytes,
							 .time_ns = (int64_t)now.tv_sec * 1000000000ll +
								    now.tv_nsec,
							 .mono_ns = mono_ns() },
				   &ctx.raw);
		if (r < 0) {
			log_error_errno(r, "Failed to create %s: %m", o.raw);
			goto out;
		}
		proc_table_set_observer(session_procs(ctx.session), on_maps, &ctx);
	}

	ccfg = (struct capture_config){
		.all = o.all,
		.freq = o.freq,
		.stack_bytes = o.stack_bytes,
		.ringbuf_bytes = o.ringbuf_bytes ? o.ringbuf_bytes
						 : capture_ringbuf_size(o.freq, o.stack_bytes,
									!o.stack_fixed, 0.125),
		.follow_forks = true,
		.no_python = scfg.no_python,
		.off_cpu = o.off_cpu,
		.off_cpu_min_ns = o.off_cpu_min_ns,
		.per_task = !o.all && !o.per_cpu,
		.stack_sizing = !o.stack_fixed,
		.sideband = on_sideband,
		.sideband_userdata = &ctx,
	};
	/* -a: every process; otherwise the targets and what they fork. */
	r = proc_table_set_sideband(session_procs(ctx.session), o.all);
	if (r < 0) {
		log_error_errno(r, "Failed to set up the process table: %m");
		goto out;
	}
	r = capture_new(&ccfg, on_record, &ctx, &ctx.capture);
	if (r < 0) {
		log_error_errno(r, "Failed to load the BPF program: %m. profd needs a kernel with BTF "
				   "(/sys/kernel/btf/vmlinux), BPF ring buffers and bpf_find_vma "
				   "(Linux 5.17 or later).");
		goto out;
	}

	/* The side-band runs: what runs already is read now, what starts later it tells. */
	if (o.all) {
		r = proc_table_snapshot(session_procs(ctx.session));
		if (r < 0)
			log_warning_errno(r, "Cannot read the running processes: %m");
	}
	if (o.cmd) {
		r = spawn_child(o.cmd, &ctx.child, &go_fd);
		if (r < 0)
			goto out;
		o.pids[o.n_pids++] = ctx.child;
		ctx.launched = ctx.child;
	}
	for (size_t i = 0; i < o.n_pids; i++) {
		r = capture_add_pid(ctx.capture, o.pids[i]);
		if (r < 0) {
			log_error_errno(r, "Failed to add process %d to the filter: %m", o.pids[i]);
			goto out;
		}
		/* Read maps now: a short-lived target may be gone by the time samples arrive. */
		(void)session_watch_pid(ctx.session, o.pids[i]);
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	r = capture_start(ctx.capture);
	if (r < 0)
		goto out;
	if (o.progress)
		print_start(&o, ctx.capture);
	clock_gettime(CLOCK_REALTIME, &wall);
	start_ns = mono_ns();
	if (go_fd >= 0) {
		if (write(go_fd, "g", 1) != 1) {
			r = log_error_errno(-errno, "Failed to start %s: %m", o.cmd[0]);
			goto out;
		}
		close(TAKE_FD(go_fd));
	}

	tty = o.progress && isatty(STDERR_FILENO);
	for (;;) {
		uint64_t now;

		/*
		 * The first second more often: until a process's stack gap is learnt from its
		 * first samples (which the reader must see), its samples copy to the stack's end.
		 */
		r = capture_poll(ctx.capture, mono_ns() - start_ns < 1000000000ull ? 20 : 100);
		if (r < 0) {
			log_error_errno(r, "Failed to read samples: %m");
			goto out;
		}
		proc_table_sideband_tick(session_procs(ctx.session), capture_handled_ns(ctx.capture));
		now = mono_ns();
		if (tty && now - last_progress >= 250000000ull) {
			print_progress((now - start_ns) / 1e9, session_stats(ctx.session),
				       capture_lost(ctx.capture));
			last_progress = now;
		}
		if (stop_requested)
			break;
		if (o.duration_s > 0 && now - start_ns >= (uint64_t)(o.duration_s * 1e9))
			break;
		if (!targets_alive(&ctx))
			break;
		if (ctx.raw && raw_writer_error(ctx.raw) < 0) {
			r = log_error_errno(raw_writer_error(ctx.raw), "Failed to write %s: %m",
					    o.raw);
			goto out;
		}
	}
	end_ns = mono_ns();
	/*
	 * Everything already in the ring buffer belongs to the profile. Sampling stops first: a
	 * reader slower than the samples arrive would otherwise never see the ring empty.
	 */
	capture_stop(ctx.capture);
	while (capture_poll(ctx.capture, 0) > 0)
		;
	proc_table_sideband_flush(session_procs(ctx.session));
	if (tty)
		fprintf(stderr, "\r\033[K");

	if (ctx.child > 0) {
		/* Duration over or interrupted: the command we started does not outlive us. */
		kill(ctx.child, SIGTERM);
		waitpid(ctx.child, NULL, 0);
		ctx.child = -1;
	}
	/*
	 * Sampling is over: detach and unmap the ring buffer (its data pages are mapped twice and
	 * resident) before symbolization, which is what peaks profd's memory.
	 */
	lost = capture_lost(ctx.capture);
	over_budget = capture_off_cpu_over_budget(ctx.capture);
	capture_free(TAKE_PTR(ctx.capture));

	r = kallsyms_load("/proc/kallsyms", &ks);
	if (r < 0)
		log_info_errno(r, "Kernel symbols unavailable (%m); kernel frames keep addresses.");
	if (ctx.raw) {
		const struct session_stats *st = session_stats(ctx.session);

		(void)raw_writer_add_ksyms(ctx.raw, session_aggregate(ctx.session), ks);
		(void)raw_writer_add_end(ctx.raw, &(struct raw_end){
							  .records = st->records,
							  .samples = st->samples,
							  .lost = lost,
							  .duration_ns = end_ns - start_ns,
						  });
		r = raw_writer_commit(ctx.raw);
		if (r < 0) {
			log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o.raw);
			goto out;
		}
		if (o.progress)
			printf("profd: wrote raw capture %s (%" PRIu64 " samples, lost %" PRIu64
			       ", %.1f MB)\n  convert it with: profd convert %s -o profile.pb.gz\n",
			       o.raw, st->samples, lost,
			       raw_writer_bytes(ctx.raw) / 1e6, o.raw);
		r = 0;
		goto out;
	}
	r = sym_cache_new(&(struct sym_cache_config){ .debuginfod = o.debuginfod,
						      .demangle = o.demangle },
			  &symc);
	if (r < 0) {
		log_error_errno(r, "Failed to set up the symbolizer: %m");
		goto out;
	}
	popts = (struct profile_options){
		.period_ns = 1000000000ull / o.freq,
		.time_nanos = (int64_t)wall.tv_sec * 1000000000ll + wall.tv_nsec,
		.duration_nanos = (int64_t)(end_ns - start_ns),
		.inlines = o.inlines,
		.kallsyms = ks,
		.sym_cache = symc,
		.off_cpu = o.off_cpu,
	};
	r = profile_build(session_aggregate(ctx.session), &popts, &b, &sum);
	if (r < 0) {
		log_error_errno(r, "Failed to build the profile: %m");
		goto out;
	}
	r = output_write_builder_type(b, o.format, o.sample_type, o.output, 0600);
	if (r == -ENOENT && o.sample_type) {
		log_error_errno(r, "The profile has no sample type '%s' (off_cpu needs --off-cpu); "
				   "nothing was written.",
				o.sample_type);
		goto out;
	}
	if (r < 0) {
		log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o.output);
		goto out;
	}
	if (o.progress) {
		struct proc_sideband_stats sb;

		proc_table_sideband_stats(session_procs(ctx.session), &sb);
		print_summary(&o, &sum, session_stats(ctx.session), &sb, lost, over_budget,
			      (end_ns - start_ns) / 1e9);
	}
	r = 0;
out:
	if (ctx.child > 0) {
		kill(ctx.child, SIGKILL);
		waitpid(ctx.child, NULL, 0);
	}
	raw_writer_free(ctx.raw);
	pprof_builder_free(b);
	sym_cache_free(symc);
	kallsyms_free(ks);
	capture_free(ctx.capture);
	session_free(ctx.session);
	return r;
}
