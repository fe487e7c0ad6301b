// SPDX-License-Identifier: MIT
/*
 * `profd convert`: a raw capture (profd record --raw) or a perf.data file (perf record
 * --call-graph dwarf) → pprof, folded stacks or speedscope, offline. Both inputs become
 * ring-buffer records fed to the same session (process table in static mode, unwinder,
 * aggregate) and the same profile builder as `profd record`; only where mappings and files
 * come from differs. A pprof file (.pb.gz, from profd or any other tool) is written as is in
 * another format (output/output.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "bpf/profd.h"
#include "common/util.h"
#include "common/grow.h"
#include "common/log.h"
#include "common/macro.h"
#include "commands/cli.h"
#include "sources/binaries.h"
#include "sources/perfdata.h"
#include "sources/perfdata-feed.h"
#include "output/profile.h"
#include "sources/raw.h"
#include "pipeline/session.h"
#include "output/output.h"
#include "output/pprof.h"
#include "symbolize/symbolize.h"

#define CONVERT_MAX_DEBUG_DIRS BINARIES_MAX_DEBUG_DIRS
#define CONVERT_MAX_MISSING 5	    /* missing binaries named in the summary */
#define CONVERT_HASH 4096

struct convert_opts {
	const char *input;
	const char *output;  /* NULL: profile.pb.gz (pprof) or stdout (folded) */
	const char *sysroot; /* "" for / */
	const char *kallsyms;
	const char *perfmap_dir; /* JIT perf maps: DIR/perf-PID.map; NULL: none */
	const char *debug_dirs[CONVERT_MAX_DEBUG_DIRS];
	size_t n_debug_dirs;
	enum output_format format;
	const char *sample_type; /* folded/speedscope: value to weigh by; NULL: the format's */
	enum sym_demangle_mode demangle;
	bool demangle_set;
	bool inlines;
	bool progress;
	char *sysroot_buf; /* --sysroot's copy, trimmed: what sysroot points to */
};

/* ---- conversion state ------------------------------------------------------------------------ */

struct convert_ctx {
	struct convert_opts *o;
	struct session *session;
	struct proc_table *procs;
	struct binary_finder finder;
	struct kallsyms *ks;
	uint64_t lost;
	uint64_t duration_ns;	    /* raw: from the END record */
	uint64_t bad_payloads;	    /* raw: CRC-correct records that do not parse */
	bool have_end;		    /* raw: the END record was read */
	/* Binaries with frames are prepared for symbolization while the rest is read. */
	struct sym_warmer *warm;
	size_t n_warm_seen;			      /* aggregate mappings looked at */
	const struct dso *warmed[2 * SYM_WARMER_MAX]; /* open addressing, by pointer */
	struct perfdata *pd;
	/* raw: PROCESS payloads not yet given to the process table (until the pid's first sample)
	 */
	struct pending *pending[CONVERT_HASH];
	size_t n_pending;
	struct perfdata_feed *feed; /* perf.data: events -> the session */
};

/*
 * Hand the binaries of mappings that got their first frame to the warmer: symbolization will
 * need them, and their DWARF is better read (and decompressed) on the other CPU while the rest
 * of the recording is unwound.
 */
static void warm_new_mappings(void *userdata)
{
	struct convert_ctx *c = userdata;

	const struct aggregate *a;
	size_t n;

	if (!c->warm)
		return;
	a = session_aggregate(c->session);
	n = aggregate_n_mappings(a);
	for (; c->n_warm_seen < n; c->n_warm_seen++) {
		const struct agg_mapping *m = aggregate_mapping(a, AGG_MAP_FIRST + c->n_warm_seen);
		const struct dso *d = m ? m->dso : NULL;
		size_t k;

		if (!d || !d->is_elf || d->fd < 0)
			continue;
		for (k = ((uintptr_t)d >> 4) * 0x9e3779b97f4a7c15ull % ARRAY_SIZE(c->warmed);
		     c->warmed[k] && c->warmed[k] != d; k = (k + 1) % ARRAY_SIZE(c->warmed))
			;
		if (c->warmed[k])
			continue;
		if (sym_warmer_add(c->warm, &(struct sym_binary){.build_id = d->build_id,
								 .build_id_len = d->build_id_len,
								 .fd = d->fd,
								 .path = d->path,
								 .root = d->root,
								 .file_id = &d->file_id}) < 0)
			continue; /* opened on its first lookup instead */
		c->warmed[k] = d; /* at most SYM_WARMER_MAX: the table never fills */
	}
}

/* ---- raw captures ---------------------------------------------------------------------------- */

/* A kallsyms built from the capture's symbol list, through a memfd in /proc/kallsyms format. */
static int kallsyms_from_list(const struct raw_ksym *syms, size_t n, struct kallsyms **ret)
{
	_cleanup_close_ int fd = memfd_create("profd-kallsyms", MFD_CLOEXEC);
	_cleanup_fclose_ FILE *f = NULL;
	char path[64];

	if (fd < 0)
		return -errno;
	f = fdopen(dup(fd), "w");
	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%016" PRIx64 " t %s\n", syms[i].addr, syms[i].name);
	if (fflush(f) != 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return kallsyms_load(path, ret);
}

/*
 * A process's mappings are handed to the process table only once it has a sample (or forks), so
 * the binaries of processes that never ran on a CPU while sampled (e.g. the recorder's own child
 * before exec) are never looked for.
 */
struct pending {
	struct pending *next;
	uint32_t pid;
	size_t len;
	uint8_t data[];
};

static struct pending **pending_slot(struct convert_ctx *c, uint32_t pid)
{
	struct pending **pp = &c->pending[pid % CONVERT_HASH];

	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	return pp;
}

static void pending_drop(struct convert_ctx *c, uint32_t pid)
{
	struct pending **pp = pending_slot(c, pid), *p = *pp;

	if (p) {
		*pp = p->next;
		free(p);
		c->n_pending--;
	}
}

static int pending_put(struct convert_ctx *c, const struct raw_record *rec)
{
	struct raw_process proc;
	struct pending *p;
	int r;

	/* Check now, so a bad payload is counted where it is, not when (if) it is used. */
	r = raw_parse_process(rec->data, rec->len, &proc);
	if (r < 0) {
		c->bad_payloads++;
		return r == -ENOMEM ? r : 0;
	}
	pending_drop(c, proc.pid);
	raw_process_done(&proc);
	if (c->n_pending >= PROC_MAX_PROCS)
		return 0;
	p = malloc(sizeof(*p) + rec->len);
	if (!p)
		return -ENOMEM;
	p->pid = proc.pid;
	p->len = rec->len;
	memcpy(p->data, rec->data, rec->len);
	p->next = c->pending[p->pid % CONVERT_HASH];
	c->pending[p->pid % CONVERT_HASH] = p;
	c->n_pending++;
	return 0;
}

static int pending_apply(struct convert_ctx *c, uint32_t pid)
{
	struct pending *p = *pending_slot(c, pid);
	struct raw_process proc;
	int r;

	if (!p)
		return 0;
	r = raw_parse_process(p->data, p->len, &proc);
	if (r >= 0) {
		r = proc_table_add_static(c->procs, (pid_t)pid, proc.maps, proc.n_maps);
		raw_process_done(&proc);
	}
	pending_drop(c, pid);
	return r == -ENOMEM ? r : 0;
}

static int raw_ring(struct convert_ctx *c, const void *data, size_t len)
{
	const struct profd_rec_hdr *h = data;
	int r = 0;

	if (len >= sizeof(struct profd_sample) &&
	    (h->type == PROFD_REC_SAMPLE || h->type == PROFD_REC_OFFCPU))
		r = pending_apply(c, ((const struct profd_sample *)data)->pid);
	else if (len >= sizeof(struct profd_task_event) && h->type == PROFD_REC_FORK)
		r = pending_apply(c, ((const struct profd_task_event *)data)->pid);
	else if (len >= sizeof(struct profd_task_event) &&
		 (h->type == PROFD_REC_EXEC || h->type == PROFD_REC_EXIT))
		pending_drop(c, ((const struct profd_task_event *)data)->pid);
	if (r < 0)
		return r;
	r = session_handle_record(c->session, data, len);
	warm_new_mappings(c);
	return r;
}

static int convert_raw(struct convert_ctx *c, struct raw_reader *rr)
{
	struct raw_record rec;
	int r;

	while ((r = raw_reader_next(rr, &rec)) > 0) {
		switch (rec.type) {
		case RAW_REC_RING:
			r = raw_ring(c, rec.data, rec.len);
			if (r == -ENOMEM)
				return log_oom();
			break;
		case RAW_REC_PROCESS:
			r = pending_put(c, &rec);
			if (r == -ENOMEM)
				return log_oom();
			break;
		case RAW_REC_KSYMS: {
			_cleanup_free_ struct raw_ksym *syms = NULL;
			size_t n;

			if (raw_parse_ksyms(rec.data, rec.len, &syms, &n) < 0) {
				c->bad_payloads++;
				break;
			}
			if (c->o->kallsyms || n == 0)
				break; /* --kallsyms FILE wins */
			kallsyms_free(c->ks);
			c->ks = NULL;
			r = kallsyms_from_list(syms, n, &c->ks);
			if (r < 0)
				log_warning_errno(r, "Kernel symbols of the capture unusable: %m");
			break;
		}
		case RAW_REC_END: {
			struct raw_end e;

			if (raw_parse_end(rec.data, rec.len, &e) < 0) {
				c->bad_payloads++;
				break;
			}
			c->lost = e.lost;
			c->duration_ns = e.duration_ns;
			c->have_end = true;
			break;
		}
		default:
			break; /* a later version's record: skipped */
		}
	}
	return r;
}

/* The addresses kernel frames will be looked up at (see profile.c); *ret_n 0: none. */
static int kernel_lookup_addrs(const struct aggregate *a, uint64_t **ret, size_t *ret_n)
{
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	*ret = NULL;
	*ret_n = 0;
	for (size_t i = 0; i < aggregate_n_stacks(a); i++) {
		const struct agg_stack *s = aggregate_stack(a, i);

		for (size_t f = 0; f < s->n_frames && s->frames[f].map_id == AGG_MAP_KERNEL; f++) {
			if (GROW_ARRAY(v, cap, n + 1, GROW_NO_LIMIT) < 0) {
				free(v);
				return -ENOMEM;
			}
			v[n++] =
			    agg_frame_lookup_addr(&s->frames[f]);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* perf's build-id cache keeps the kernel symbols of each recorded kernel. */
static char *perf_cached_kallsyms(const struct perfdata *pd)
{
	const char *home = getenv("HOME");
	char hex[41];
	const uint8_t *bid;
	size_t n = perfdata_build_id(pd, "[kernel.kallsyms]", &bid);
	char *p = NULL;

	if (!n || !home || build_id_to_hex(bid, n, hex, sizeof(hex)) < 0)
		return NULL;
	if (asprintf(&p, "%s/.debug/[kernel.kallsyms]/%s/kallsyms", home, hex) < 0)
		return NULL;
	if (access(p, R_OK) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* The running kernel's GNU build-id, from /sys/kernel/notes; 0 when it cannot be read. */
static size_t running_kernel_build_id(uint8_t *ret, size_t size)
{
	_cleanup_close_ int fd = open("/sys/kernel/notes", O_RDONLY | O_CLOEXEC);
	uint8_t buf[4096];
	ssize_t len;

	if (fd < 0 || (len = read(fd, buf, sizeof(buf))) <= 0)
		return 0;
	return elf_notes_build_id(buf, (size_t)len, 4, ret, size);
}

/*
 * perf.data without --kallsyms: perf's cache of the recorded kernel's symbols, else this
 * machine's /proc/kallsyms, but only when it is provably the recorded kernel, booted at the
 * same address: same build-id (when recorded) and _text where the recording had it.
 */
static int perf_kernel_symbols(struct convert_ctx *c, const struct aggregate *a)
{
	_cleanup_free_ char *cached = perf_cached_kallsyms(c->pd);
	_cleanup_free_ uint64_t *addrs = NULL;
	uint8_t running[64];
	const uint8_t *bid;
	size_t n, n_bid, n_running;
	uint64_t ref = 0;
	int r;

	r = kernel_lookup_addrs(a, &addrs, &n);
	if (r < 0 || n == 0)
		return r;
	if (cached) {
		r = kallsyms_load_for(cached, addrs, n, NULL, NULL, &c->ks);
		if (r < 0)
			log_info_errno(r,
				       "Kernel symbols in %s unusable (%m); kernel frames keep "
				       "addresses.",
				       cached);
		return 0;
	}
	n_bid = perfdata_build_id(c->pd, "[kernel.kallsyms]", &bid);
	n_running = running_kernel_build_id(running, sizeof(running));
	const struct perfdata_feed_result *fr = perfdata_feed_result(c->feed);

	if (!fr->kernel_text) {
		log_notice(
		    "Kernel frames keep addresses: perf's build-id cache has no symbols of the "
		    "recorded kernel, and the recording does not say where it was loaded. "
		    "Give them with --kallsyms FILE.");
		return 0;
	}
	if (n_bid && (n_bid != n_running || memcmp(bid, running, n_bid) != 0)) {
		log_notice(
		    "Kernel frames keep addresses: perf's build-id cache has no symbols of the "
		    "recorded kernel, and this machine runs another one. Give them with "
		    "--kallsyms FILE.");
		return 0;
	}
	r = kallsyms_load_for("/proc/kallsyms", addrs, n, fr->kernel_ref, &ref, &c->ks);
	if (r < 0) {
		log_info_errno(r, "Kernel symbols unavailable (%m); kernel frames keep addresses.");
		return 0;
	}
	if (ref != fr->kernel_text) {
		log_notice(
		    "Kernel frames keep addresses: this machine's kernel was loaded at another "
		    "address than the recorded one. Give its symbols with --kallsyms FILE.");
		kallsyms_free(c->ks);
		c->ks = NULL;
	}
	return 0;
}

/* ---- command -----------------------------------------------------------------------------------
 */

static int opt_output(const struct cli_option *opt, const char *arg, void *opts)
{
	if (!*arg)
		return log_error_errno(-EINVAL, "Empty output file name.");
	((struct convert_opts *)opts)->output = arg;
	return 0;
}

static int opt_format(const struct cli_option *opt, const char *arg, void *opts)
{
	if (output_format_from_string(arg, &((struct convert_opts *)opts)->format) < 0)
		return log_error_errno(-EINVAL,
				       "Unknown format '%s': expected pprof, folded or speedscope.",
				       arg);
	return 0;
}

static int opt_sample_type(const struct cli_option *opt, const char *arg, void *opts)
{
	((struct convert_opts *)opts)->sample_type = arg;
	return 0;
}

static int opt_demangle(const struct cli_option *opt, const char *arg, void *opts)
{
	struct convert_opts *o = opts;
	int r = cli_parse_demangle(arg, &o->demangle);

	if (r < 0)
		return r;
	o->demangle_set = true;
	return 0;
}

static int opt_sysroot(const struct cli_option *opt, const char *arg, void *opts)
{
	struct convert_opts *o = opts;
	struct stat st;

	if (stat(arg, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_error_errno(-ENOTDIR, "--sysroot %s is not a directory.", arg);
	free(o->sysroot_buf);
	o->sysroot_buf = strdup(arg);
	if (!o->sysroot_buf)
		return log_oom();
	binaries_sysroot_trim(o->sysroot_buf);
	o->sysroot = o->sysroot_buf;
	return 0;
}

static int opt_debug_dir(const struct cli_option *opt, const char *arg, void *opts)
{
	struct convert_opts *o = opts;

	if (arg[0] != '/')
		return log_error_errno(-EINVAL, "--debug-dir needs an absolute path: %s", arg);
	if (o->n_debug_dirs >= CONVERT_MAX_DEBUG_DIRS)
		return log_error_errno(-E2BIG, "At most %d --debug-dir.", CONVERT_MAX_DEBUG_DIRS);
	o->debug_dirs[o->n_debug_dirs++] = arg;
	return 0;
}

static int opt_kallsyms(const struct cli_option *opt, const char *arg, void *opts)
{
	((struct convert_opts *)opts)->kallsyms = arg;
	return 0;
}

static int opt_perf_map_dir(const struct cli_option *opt, const char *arg, void *opts)
{
	struct stat st;

	if (stat(arg, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_error_errno(-ENOTDIR, "--perf-map-dir %s is not a directory.", arg);
	((struct convert_opts *)opts)->perfmap_dir = arg;
	return 0;
}

/* -q: no summary, warnings and errors only; -v: info, twice: debug. In the order given. */
static int opt_log_level(const struct cli_option *opt, const char *arg, void *opts)
{
	int level = log_get_max_level() >= LOG_LEVEL_INFO ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;

	if (opt->letter == 'q') {
		((struct convert_opts *)opts)->progress = false;
		level = LOG_LEVEL_WARNING;
	}
	log_set_max_level(level);
	return 0;
}

static const struct cli_option convert_options[] = {
	{ CLI_CALL, "output", 'o', true, "OUT",
	  "file to write (default profile.pb.gz; folded: stdout;\n"
	  "speedscope: profile.speedscope.json; '-' is stdout)", .apply = opt_output },
	{ CLI_CALL, "format", 'f', true, "FORMAT",
	  "pprof (default), folded ('comm;root;...;leaf count'\n"
	  "lines for flamegraph.pl and inferno) or speedscope\n"
	  "(speedscope's JSON format, one profile per thread,\n"
	  "inline frames as frames)", .apply = opt_format },
	{ CLI_CALL, "sample-type", 0, true, "TYPE",
	  "folded and speedscope output: weigh stacks by this\n"
	  "sample type (samples, cpu, off_cpu); default: folded\n"
	  "samples, speedscope the profile's default type", .apply = opt_sample_type },
	{ CLI_CALL, "demangle", 0, true, "MODE",
	  "C++/Rust names: simple (default: no parameters or\n"
	  "template arguments), templates, full or none\n"
	  "(mangled), as pprof's -symbolize=demangle=MODE", .apply = opt_demangle },
	{ CLI_CALL, "sysroot", 's', true, "DIR",
	  "look for the recorded binaries under DIR (default /)", .apply = opt_sysroot },
	{ CLI_CALL, "debug-dir", 0, true, "DIR",
	  "also look for binaries and debug files by build-id in\n"
	  "DIR (repeatable; always searched: SYSROOT" SYM_DEFAULT_DEBUG_DIR " and\n"
	  "~/.debug, perf's build-id cache)", .apply = opt_debug_dir },
	{ CLI_CALL, "kallsyms", 0, true, "FILE",
	  "kernel symbols (default: the capture's own; perf.data:\n"
	  "perf's cache for the recorded kernel, else\n"
	  "/proc/kallsyms if this machine runs that very kernel,\n"
	  "booted at the recorded address)", .apply = opt_kallsyms },
	{ CLI_CALL, "perf-map-dir", 0, true, "DIR",
	  "name JIT code from DIR/perf-PID.map, PID as recorded\n"
	  "(copies of the recording machine's /tmp/perf-*.map;\n"
	  "'/tmp' if it was this one). Default: none (this\n"
	  "machine's /tmp and /proc/PID are not read)", .apply = opt_perf_map_dir },
	{ CLI_FALSE, "no-inline", 0, .help = "do not expand inlined functions",
	  .offset = offsetof(struct convert_opts, inlines) },
	{ CLI_CALL, "quiet", 'q', .help = "no summary", .apply = opt_log_level },
	{ CLI_CALL, "verbose", 'v', .help = "more messages (twice: debug)", .apply = opt_log_level },
	{ CLI_HELP, "help", 'h', .help = "show this help" },
};

static const struct cli_command convert_command = {
	.name = "convert",
	.usage = "Usage: profd convert FILE [-o OUT] [OPTIONS]\n"
		 "\n"
		 "Unwind and symbolize a recording offline and write a gzipped pprof profile (or\n"
		 "folded stacks, or a speedscope file). FILE is a raw capture of 'profd record --raw',\n"
		 "a perf.data of 'perf record --call-graph dwarf' (user registers and stack in every\n"
		 "sample), or a gzipped pprof profile (.pb.gz, from profd or any other tool), which\n"
		 "is written as it is in the --format asked for.\n"
		 "Binaries are looked up by their recorded path under --sysroot, checked against\n"
		 "the recorded build-id (another build counts as missing), then by build-id in the\n"
		 "debug directories (DIR/.build-id/xx/... in perf's cache layout and as debug files).\n"
		 "On a damaged FILE the records before the damage are converted and written, the\n"
		 "error names the byte offset, and the exit status is 1.\n"
		 "\n"
		 "Options:\n",
	.options = convert_options,
	.n_options = ARRAY_SIZE(convert_options),
	.operands = true,
};

/* 0: options in *o (o->sysroot_buf to free in any case); 1: --help was shown; <0: logged. */
static int parse_args(int argc, char **argv, struct convert_opts *o)
{
	int ind, r;

	*o = (struct convert_opts){.sysroot = "", .inlines = true, .progress = true};
	r = cli_parse(&convert_command, argc, argv, o, &ind);
	if (r != 0)
		return r;
	if (ind + 1 != argc)
		return log_error_errno(-EINVAL, "Give exactly one input FILE. "
						"Try 'profd convert --help'.");
	o->input = argv[ind];
	if (!o->output)
		o->output = o->format == OUTPUT_FOLDED ? "-" : cli_default_output(o->format);
	return 0;
}

static void print_summary(const struct convert_ctx *c, const struct profile_summary *sum,
			  double read_s, double build_s)
{
	const struct session_stats *st = session_stats(c->session);
	double pct = sum->user_stacks ? 100.0 * sum->complete / sum->user_stacks : 0.0;
	FILE *f = !strcmp(c->o->output, "-") ? stderr : stdout;

	fprintf(f, "profd: wrote %s\n", !strcmp(c->o->output, "-") ? "stdout" : c->o->output);
	fprintf(f, "  samples    %" PRIu64 " (lost when recorded %" PRIu64 ")\n", sum->samples,
		c->lost);
	fprintf(f, "  complete   %.1f%% of %" PRIu64 " user stacks reached the root\n", pct,
		sum->user_stacks);
	if (sum->user_stacks > sum->complete) {
		fprintf(f, "  stopped   ");
		for (int i = 1; i < _UNWIND_STOP_MAX && i < (int)ARRAY_SIZE(sum->stops); i++)
			if (sum->stops[i] && i != UNWIND_STOP_KERNEL_THREAD)
				fprintf(f, " %s %" PRIu64, unwind_stop_name(i), sum->stops[i]);
		fprintf(f, "\n");
	}
	fprintf(f, "  binaries   %zu found, %zu missing", c->finder.n_found, c->finder.n_missing);
	if (c->finder.n_missing) {
		size_t k = 0;

		fprintf(f, " (frames keep addresses):");
		for (const struct binary_path *p = c->finder.missing; p && k < CONVERT_MAX_MISSING;
		     p = p->next, k++)
			fprintf(f, " %s", p->path);
		if (c->finder.n_missing > k)
			fprintf(f, " ...");
	}
	fprintf(f, "\n");
	if (st->bad_records || c->bad_payloads)
		fprintf(f, "  malformed  %" PRIu64 " records skipped\n",
			st->bad_records + c->bad_payloads);
	fprintf(f,
		"  time       %.3f s, %.1f us per sample (read + unwind %.3f s, symbolize + "
		"write %.3f s)\n",
		read_s + build_s, st->samples ? (read_s + build_s) * 1e6 / st->samples : 0.0,
		read_s, build_s);
}

/* A gzipped pprof in: already symbolized, only its format changes. */
static int convert_pprof(const struct convert_opts *o)
{
	_cleanup_free_ uint8_t *gz = NULL;
	size_t len;
	int r;

	if (o->demangle_set)
		log_warning("%s is a pprof profile, named already: --demangle does not apply.",
			    o->input);
	r = output_read_pprof_file(o->input, &gz, &len);
	if (r < 0)
		return log_error_errno(r, "Cannot read %s as a gzipped pprof profile: %m", o->input);
	r = output_write_bytes_type(gz, len, o->format, o->sample_type, o->output, 0600);
	if (r == -ENOENT && o->sample_type)
		return log_error_errno(r, "%s has no sample type '%s' (nothing was written).",
				       o->input, o->sample_type);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o->output);
	if (o->progress)
		fprintf(!strcmp(o->output, "-") ? stderr : stdout, "profd: wrote %s (%s)\n",
			!strcmp(o->output, "-") ? "stdout" : o->output,
			output_format_to_string(o->format));
	return 0;
}

/* What the input said about the whole recording, for the profile. */
struct convert_input {
	uint64_t period_ns;
	int64_t time_nanos, duration;
	int damage; /* -EBADMSG: damaged, the records before the damage were converted */
};

/* The first 8 bytes of the input (zeros when shorter), which tell its format. */
static int read_magic(const char *input, char magic[8])
{
	_cleanup_close_ int fd = open(input, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_error_errno(-errno, "Cannot open %s: %m", input);
	if (read(fd, magic, 8) != 8)
		memset(magic, 0, 8);
	return 0;
}

/* The finder, the session on its static process table, the symbolizer and its warmer. */
static int convert_setup(struct convert_ctx *c, const struct convert_opts *o,
			 struct sym_cache **ret_symc)
{
	const char *debug_dirs[CONVERT_MAX_DEBUG_DIRS + 3] = {};
	int r;

	r = binary_finder_init(&c->finder, o->sysroot, o->debug_dirs, o->n_debug_dirs);
	if (r < 0)
		return log_oom();
	r = session_new(&(struct session_config){ .no_python = true }, &c->session);
	if (r < 0)
		return log_error_errno(r, "Failed to set up: %m");
	c->procs = session_procs(c->session);
	r = proc_table_set_static(c->procs, binary_finder_open, &c->finder);
	if (r < 0)
		return log_error_errno(r, "Failed to set up: %m");
	/* Debug files next to a recorded binary: only inside a --sysroot the user named. The
	 * recorded paths were chosen by the processes recorded; without one, debug dirs only. */
	if (o->sysroot[0]) {
		struct sym_root *root = NULL;

		if (sym_root_open(o->sysroot, &root) == 0)
			proc_table_set_static_root(c->procs, root);
		sym_root_unref(root);
	}
	for (size_t i = 0; i < c->finder.n_dirs && i < ARRAY_SIZE(debug_dirs) - 1; i++)
		debug_dirs[i] = c->finder.dirs[i];
	r = sym_cache_new(&(struct sym_cache_config){.debug_dirs = debug_dirs, .demangle = o->demangle},
			  ret_symc);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the symbolizer: %m");
	r = sym_warmer_new(*ret_symc, &c->warm);
	if (r < 0)
		log_debug_errno(r,
				"No symbolizer thread (%m): binaries are read when symbolizing.");
	/* Read later, and only for the addresses of kernel frames; fail early if it cannot be. */
	if (o->kallsyms && access(o->kallsyms, R_OK) < 0)
		return log_error_errno(-errno, "Cannot read kernel symbols from %s: %m", o->kallsyms);
	return 0;
}

static int read_raw_input(struct convert_ctx *c, const struct convert_opts *o,
			  struct raw_reader **rr, struct convert_input *in)
{
	const struct raw_header *h;
	int r;

	r = raw_reader_open(o->input, rr);
	if (r == -EBADMSG) {
		log_error("%s: %s", o->input, raw_reader_error(*rr));
		return r;
	}
	if (r == -EPROTONOSUPPORT) {
		log_error("%s was written by a newer profd (raw format version > %d).", o->input,
			  RAW_VERSION);
		return r;
	}
	if (r < 0)
		return log_error_errno(r, "Cannot read %s: %m", o->input);
	h = raw_reader_header(*rr);
	if (h->record_version != PROFD_RECORD_VERSION)
		return log_error_errno(-EPROTONOSUPPORT,
				       "%s holds records of version %u; this profd reads version "
				       "%d. Convert it with the profd that recorded it.",
				       o->input, h->record_version, PROFD_RECORD_VERSION);
	r = convert_raw(c, *rr);
	if (r == -EBADMSG) {
		log_error("%s: %s. Converting the records before it.", o->input,
			  raw_reader_error(*rr));
		in->damage = r;
	} else if (r < 0) {
		return log_error_errno(r, "Failed to read %s: %m", o->input);
	} else if (!c->have_end) {
		log_warning("%s has no end-of-capture record: it was cut short at a record "
			    "boundary.",
			    o->input);
	}
	in->period_ns = h->freq_hz ? 1000000000ull / h->freq_hz : 0;
	in->time_nanos = h->time_ns;
	in->duration = (int64_t)c->duration_ns;
	return 0;
}

/* Open the perf.data and check convert can use it; *ret_info on success. */
static int open_perf_input(struct convert_ctx *c, const struct convert_opts *o,
			   const struct perfdata_info **ret_info)
{
	const struct perfdata_info *info;
	int r;

	r = perfdata_open(o->input, &c->pd);
	if (r == -EBADMSG) {
		log_error("%s: %s", o->input, perfdata_error(c->pd));
		return r;
	}
	if (r == -EOPNOTSUPP) {
		log_error("%s: pipe-mode or big-endian perf.data is not supported; record with "
			  "'perf record -o FILE'.",
			  o->input);
		return r;
	}
	if (r < 0)
		return log_error_errno(r, "Cannot read %s: %m", o->input);
	info = perfdata_info(c->pd);
	if (!perfdata_has_user_stacks(info))
		return log_error_errno(-EINVAL,
				       "%s has no user registers and stacks in its "
				       "samples: record with 'perf record --call-graph "
				       "dwarf'.",
				       o->input);
	if (!info->e_machine)
		return log_error_errno(-EOPNOTSUPP,
				       "%s: unknown or unsupported architecture "
				       "(x86_64 and aarch64 are).",
				       o->input);
	if (!info->arch_known)
		log_warning("%s names no architecture; assuming this machine's.", o->input);
	if (info->data_size_guessed)
		log_warning("%s was not finished by perf (data size 0): reading to the end of "
			    "the file.",
			    o->input);
	*ret_info = info;
	return 0;
}

static int read_perf_input(struct convert_ctx *c, const struct convert_opts *o,
			   struct convert_input *in)
{
	const struct perfdata_info *info = NULL;
	const struct perfdata_feed_result *fr;
	int r;

	r = open_perf_input(c, o, &info);
	if (r < 0)
		return r;
	r = perfdata_feed_new(c->pd, c->session, warm_new_mappings, c, &c->feed);
	if (r < 0)
		return log_oom();
	r = perfdata_read(c->pd, perfdata_feed_event, c->feed);
	fr = perfdata_feed_result(c->feed);
	c->lost = fr->lost;
	if (r == -EBADMSG) {
		log_error("%s: %s. Converting the events before it.", o->input,
			  perfdata_error(c->pd));
		in->damage = r;
	} else if (r == -EOPNOTSUPP) {
		log_error("%s holds compressed data (perf record -z), which profd does not read; "
			  "'perf inject -i IN -o OUT' writes it uncompressed.",
			  o->input);
		return r;
	} else if (r < 0) {
		return log_error_errno(r, "Failed to read %s: %m", o->input);
	}
	if (perfdata_stats(c->pd)->malformed)
		log_warning("%s: %" PRIu64 " malformed events skipped.", o->input,
			    perfdata_stats(c->pd)->malformed);
	in->period_ns = info->freq ? (info->sample_freq_or_period
					  ? 1000000000ull / info->sample_freq_or_period
					  : 0)
				   : info->sample_freq_or_period;
	in->duration = (int64_t)(fr->last_ns - fr->first_ns);
	/* Kernel symbols are read for the addresses of kernel frames only, if any. */
	if (!o->kallsyms && perf_kernel_symbols(c, session_aggregate(c->session)) < 0)
		return log_oom();
	return 0;
}

/* --kallsyms FILE: read for the kernel frames' addresses; wins over a capture's own list. */
static int load_kallsyms_option(struct convert_ctx *c, const struct convert_opts *o)
{
	_cleanup_free_ uint64_t *addrs = NULL;
	size_t n;
	int r;

	kallsyms_free(c->ks);
	c->ks = NULL;
	r = kernel_lookup_addrs(session_aggregate(c->session), &addrs, &n);
	if (r >= 0 && n > 0)
		r = kallsyms_load_for(o->kallsyms, addrs, n, NULL, NULL, &c->ks);
	if (r < 0)
		return log_error_errno(r, "Cannot read kernel symbols from %s: %m", o->kallsyms);
	return 0;
}

static void notice_anonymous_code(const struct convert_ctx *c)
{
	const struct aggregate *a = session_aggregate(c->session);

	for (size_t i = 0; i < aggregate_n_mappings(a); i++) {
		const struct agg_mapping *m = aggregate_mapping(a, AGG_MAP_FIRST + i);

		if (m->kind == MAPPING_ANON && !m->dso) {
			log_notice("Samples in anonymous memory (JIT code?) keep addresses: "
				   "--perf-map-dir DIR names them from the recording "
				   "machine's perf-PID.map files.");
			return;
		}
	}
}

/* Symbolize the aggregate into a profile and write it; the summary after. */
static int write_profile(struct convert_ctx *c, const struct convert_opts *o,
			 struct sym_cache *symc, const struct convert_input *in, uint64_t t0)
{
	struct pprof_builder *b = NULL;
	struct profile_summary sum;
	struct profile_options popts;
	uint64_t t_read = mono_ns();
	int r;

	/* The cache is the warmer's until it finished what it was given. */
	sym_warmer_finish(c->warm);
	c->warm = NULL;
	popts = (struct profile_options){
	    .period_ns = in->period_ns ? in->period_ns : 1,
	    .time_nanos = in->time_nanos,
	    .duration_nanos = in->duration,
	    .inlines = o->inlines,
	    .kallsyms = c->ks,
	    .sym_cache = symc,
	    .off_cpu = aggregate_off_cpu_ns(session_aggregate(c->session)) > 0,
	    /* The recording's processes are not this machine's: no /proc, no /tmp, unless asked. */
	    .perfmaps = o->perfmap_dir ? PROFILE_PERFMAPS_DIR : PROFILE_PERFMAPS_NONE,
	    .perfmap_dir = o->perfmap_dir,
	};
	r = profile_build(session_aggregate(c->session), &popts, &b, &sum);
	if (r < 0)
		return log_error_errno(r, "Failed to build the profile: %m");
	r = output_write_builder_type(b, o->format, o->sample_type, o->output, 0600);
	pprof_builder_free(b);
	if (r == -ENOENT && o->sample_type)
		return log_error_errno(r,
				       "The profile has no sample type '%s' (off_cpu needs "
				       "--off-cpu); nothing was written.",
				       o->sample_type);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s: %m. Nothing was written.", o->output);
	if (c->finder.n_missing && !o->progress)
		log_warning("%zu binaries not found: their frames keep addresses.",
			    c->finder.n_missing);
	if (o->progress)
		print_summary(c, &sum, (t_read - t0) / 1e9, (mono_ns() - t_read) / 1e9);
	return 0;
}

static void convert_ctx_done(struct convert_ctx *c)
{
	/* The session's process table calls into the finder while it frees: session first. */
	session_free(c->session);
	for (size_t i = 0; i < CONVERT_HASH; i++)
		while (c->pending[i]) {
			struct pending *p = c->pending[i];

			c->pending[i] = p->next;
			free(p);
		}
	perfdata_feed_free(c->feed);
	perfdata_free(c->pd);
	kallsyms_free(c->ks);
	binary_finder_done(&c->finder);
}

int cmd_convert(int argc, char **argv)
{
	struct convert_opts o;
	struct convert_ctx c = {.o = &o};
	struct raw_reader *rr = NULL;
	struct sym_cache *symc = NULL;
	struct convert_input in = {};
	uint64_t t0 = mono_ns();
	char magic[8] = "";
	int r;

	r = parse_args(argc, argv, &o);
	_cleanup_free_ char *sysroot_buf = o.sysroot_buf; /* freed on every return */
	if (r != 0)
		return r > 0 ? 0 : r;
	r = read_magic(o.input, magic);
	if (r < 0)
		return r;
	if ((unsigned char)magic[0] == 0x1f && (unsigned char)magic[1] == 0x8b)
		return convert_pprof(&o);
	r = convert_setup(&c, &o, &symc);
	if (r < 0)
		goto out;
	if (!memcmp(magic, RAW_MAGIC, RAW_MAGIC_LEN))
		r = read_raw_input(&c, &o, &rr, &in);
	else if (!memcmp(magic, PERFDATA_MAGIC, PERFDATA_MAGIC_LEN))
		r = read_perf_input(&c, &o, &in);
	else
		r = log_error_errno(
		    -ENOEXEC, "%s is neither a profd raw capture nor a perf.data file.", o.input);
	if (r < 0)
		goto out;
	if (o.kallsyms) {
		r = load_kallsyms_option(&c, &o);
		if (r < 0)
			goto out;
	}
	if (!o.perfmap_dir)
		notice_anonymous_code(&c);
	r = write_profile(&c, &o, symc, &in, t0);
	if (r == 0)
		r = in.damage;
out:
	/* The warmer uses the cache: it stops before the cache is freed. */
	sym_warmer_finish(c.warm);
	c.warm = NULL;
	sym_cache_free(symc);
	raw_reader_free(rr);
	convert_ctx_done(&c);
	return r < 0 ? r : 0;
}
