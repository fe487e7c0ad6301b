// SPDX-License-Identifier: MIT
/*
 * End to end: `profd record --raw` then `profd convert`, with and without a sysroot; perf.data
 * files recorded by `perf record --call-graph dwarf` converted and compared with `perf script`;
 * folded output; damaged input. Every pprof written here is also opened by the real pprof.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static const char *const chain[] = {"chain_leaf", "chain_c", "chain_b", "chain_a", "main"};

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert(n > 0);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
}

/*
 * Run profd with args; returns the result (caller frees). With home set, profd runs with
 * HOME=home, so perf's build-id cache in the real ~/.debug cannot supply binaries.
 */
static struct run_result profd_home(const char *home, const char *const *args)
{
	char *argv[24], *henv = NULL;
	struct run_result rr;
	size_t n = 0;

	if (home) {
		cr_assert(asprintf(&henv, "HOME=%s", home) > 0);
		argv[n++] = "/usr/bin/env";
		argv[n++] = henv;
	}
	argv[n++] = (char *)test_build_path("profd");
	for (size_t i = 0; args[i]; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	cr_assert_eq(test_run(argv, 120, &rr), 0);
	free(henv);
	return rr;
}

static struct run_result profd(const char *const *args)
{
	return profd_home(NULL, args);
}

/* record --raw a workload in command mode. */
static void record_raw(const char *out, const char *prog, const char *secs)
{
	struct run_result rr =
	    profd((const char *[]){"record", "-F", "199", "--raw", out, "--", prog, secs, NULL});

	cr_assert_eq(rr.status, 0, "record --raw failed: %s", rr.err);
	cr_assert(strstr(rr.out, "wrote raw capture"), "%s", rr.out);
	run_result_free(&rr);
}

static uint64_t total_samples(const Perftools__Profiles__Profile *p)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->n_sample; i++)
		n += p->sample[i]->value[0];
	return n;
}

/* Fraction of samples whose outermost function is `root`. */
static double root_fraction(const Perftools__Profiles__Profile *p, const char *root)
{
	const char *names[4096];
	uint64_t hit = 0, total = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		size_t n = test_sample_functions(p, p->sample[i], names, 4096);

		total += p->sample[i]->value[0];
		if (n && !strcmp(names[n - 1], root))
			hit += p->sample[i]->value[0];
	}
	return total ? (double)hit / total : 0.0;
}

Test(convert, raw_capture_of_chain)
{
	char *dir = test_tmpdir(), *raw = path_in(dir, "chain.raw"), *pb = path_in(dir, "c.pb.gz");
	char *folded = path_in(dir, "c.folded"), *cut = path_in(dir, "cut.raw"),
	     *cutpb = path_in(dir, "cut.pb.gz"), line[8192];
	Perftools__Profiles__Profile *p;
	struct run_result rr;
	uint64_t total, folded_total = 0, chain_total = 0, full;
	double frac;
	struct stat st;
	FILE *f;

	test_require_root();
	record_raw(raw, test_build_path("workloads/chain"), "3");
	cr_assert_eq(stat(pb, &st), -1, "--raw writes no profile");

	rr = profd((const char *[]){"convert", raw, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "convert failed: %s", rr.err);
	cr_assert(strstr(rr.out, "wrote"), "%s", rr.out);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	frac = test_chain_fraction(p, 0, chain, 5, &total);
	cr_assert_gt(total, 300, "samples: %lu", (unsigned long)total);
	cr_assert_geq(frac, 0.90, "chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	cr_assert_eq(p->period, 1000000000 / 199);
	cr_assert_str_eq(test_sample_label_str(p, p->sample[0], "process"), "chain");
	full = total_samples(p);
	test_pprof_free(p);
	free(test_check_with_pprof(pb));

	/* Folded: "comm;root;...;leaf count", the chain root first. */
	rr =
	    profd((const char *[]){"convert", raw, "--format", "folded", "-o", folded, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	f = fopen(folded, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *sp = strrchr(line, ' '), *end;
		unsigned long n;

		cr_assert_not_null(sp, "no count: %s", line);
		n = strtoul(sp + 1, &end, 10);
		cr_assert(n > 0 && *end == '\n', "bad count: %s", line);
		cr_assert(!strncmp(line, "chain;", 6), "first element is the comm: %s", line);
		folded_total += n;
		*sp = '\0';
		if (strstr(line, ";_start;") &&
		    strstr(line, ";main;chain_a;chain_b;chain_c;chain_leaf") &&
		    !strcmp(line + strlen(line) - strlen("chain_leaf"), "chain_leaf"))
			chain_total += n;
	}
	fclose(f);
	cr_assert_eq(folded_total, full, "folded counts %lu, pprof %lu",
		     (unsigned long)folded_total, (unsigned long)full);
	cr_assert_geq(chain_total, folded_total * 9 / 10, "chain lines: %lu of %lu",
		      (unsigned long)chain_total, (unsigned long)folded_total);

	/* Damaged: cut at 60%. Error with the offset, exit 1, earlier samples still written. */
	cr_assert_eq(stat(raw, &st), 0);
	sh("head -c %ld '%s' > '%s'", (long)(st.st_size * 6 / 10), raw, cut);
	rr = profd((const char *[]){"convert", cut, "-o", cutpb, NULL});
	cr_assert_eq(rr.status, 1, "damage must fail the command: %s", rr.err);
	cr_assert(strstr(rr.err, "truncated record at byte offset"), "%s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(cutpb);
	cr_assert_not_null(p, "the samples before the damage are written");
	cr_assert_gt(total_samples(p), full / 3);
	cr_assert_lt(total_samples(p), full);
	test_pprof_free(p);
	free(test_check_with_pprof(cutpb));
	free(dir);
	free(raw);
	free(pb);
	free(folded);
	free(cut);
	free(cutpb);
}

Test(convert, sysroot_and_build_id_check)
{
	char *dir = test_tmpdir(), *bin = path_in(dir, "bin"), *prog = path_in(dir, "bin/chain");
	char *raw = path_in(dir, "c.raw"), *pb = path_in(dir, "c.pb.gz"),
	     *root = path_in(dir, "root"), *wrong = path_in(dir, "wrong");
	Perftools__Profiles__Profile *p;
	struct run_result rr;
	uint64_t total;
	double frac;

	test_require_root();
	sh("mkdir -p '%s' && cp '%s' '%s'", bin, test_build_path("workloads/chain"), prog);
	record_raw(raw, prog, "2");
	/* The binary moves into a sysroot: the original path is gone. */
	sh("mkdir -p '%s%s' && mv '%s' '%s%s/chain'", root, bin, prog, root, bin);

	rr = profd_home(dir, (const char *[]){"convert", raw, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	cr_assert(strstr(rr.out, "missing") && strstr(rr.out, prog), "%s", rr.out);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	frac = test_chain_fraction(p, 0, chain, 5, &total);
	cr_assert_lt(frac, 0.01, "without the binary there are no names");
	test_pprof_free(p);

	rr = profd_home(dir, (const char *[]){"convert", raw, "--sysroot", root, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	frac = test_chain_fraction(p, 0, chain, 5, &total);
	cr_assert_gt(total, 150);
	cr_assert_geq(frac, 0.90, "with --sysroot: chain in %.1f%% of %lu samples", frac * 100,
		      (unsigned long)total);
	test_pprof_free(p);
	free(test_check_with_pprof(pb));

	/* Another build at the same path is not used. */
	sh("mkdir -p '%s%s' && cp '%s' '%s%s/chain'", wrong, bin,
	   test_build_path("workloads/inline_heavy"), wrong, bin);
	rr = profd_home(dir, (const char *[]){"convert", raw, "--sysroot", wrong, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	cr_assert(strstr(rr.err, "differs from the recorded"), "%s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	cr_assert_lt(test_chain_fraction(p, 0, chain, 5, &total), 0.01);
	test_pprof_free(p);
	free(dir);
	free(bin);
	free(prog);
	free(raw);
	free(pb);
	free(root);
	free(wrong);
}

/* Samples perf script shows, and how many of them end at `root`. */
static void perf_script_roots(const char *data, const char *root, long *ret_total, long *ret_hit)
{
	char *cmd = NULL, line[16384], last[16384] = "";
	bool in_sample = false;
	FILE *f;

	*ret_total = *ret_hit = 0;
	cr_assert(asprintf(&cmd, "perf script -F comm,ip,sym -i '%s' 2>/dev/null", data) > 0);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '\n') {
			if (in_sample && strstr(last, root))
				(*ret_hit)++;
			in_sample = false;
			continue;
		}
		if (line[0] != '\t' && line[0] != ' ') {
			in_sample = true;
			(*ret_total)++;
		}
		snprintf(last, sizeof(last), "%s", line);
	}
	if (in_sample && strstr(last, root))
		(*ret_hit)++;
	pclose(f);
	free(cmd);
}

static const char *pb_string(const Perftools__Profiles__Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "";
}

/* Whether `path` is a readable ELF file with a non-empty .debug_line (compressed or not). */
static bool file_has_line_section(const char *path)
{
	char *cmd = NULL;
	int r;

	if (access(path, R_OK) != 0)
		return false;
	/* A table of size 0 does not happen; NOBITS is what strip leaves in debug-less files. */
	cr_assert(asprintf(&cmd,
			   "readelf -SW '%s' 2>/dev/null | grep -qE ' \\.z?debug_line +PROGBITS '",
			   path) > 0);
	r = system(cmd);
	free(cmd);
	return r == 0;
}

/*
 * Every mapping of a binary says it has line numbers exactly when the binary, or its debug file
 * under /usr/lib/debug/.build-id (what convert searches besides ~/.debug), has a line table.
 */
static void check_line_flags(const Perftools__Profiles__Profile *p, const char *must_have)
{
	bool seen = false;

	for (size_t i = 0; i < p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = p->mapping[i];
		const char *file = pb_string(p, m->filename), *bid = pb_string(p, m->build_id);
		char *dbg = NULL, *home_dbg = NULL;
		bool want;

		if (file[0] != '/' || strlen(bid) < 4)
			continue;
		cr_assert(asprintf(&dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2) >
			  0);
		cr_assert(asprintf(&home_dbg, "%s/.debug/.build-id/%.2s/%s.debug",
				   getenv("HOME") ? getenv("HOME") : "/nonexistent", bid,
				   bid + 2) > 0);
		want = file_has_line_section(file) || file_has_line_section(dbg) ||
		       file_has_line_section(home_dbg);
		cr_assert_eq(m->has_line_numbers, want, "%s (%s): has_line_numbers %d", file, bid,
			     m->has_line_numbers);
		cr_assert_eq(m->has_filenames, want, "%s", file);
		cr_assert(m->has_functions, "%s", file);
		if (strstr(file, must_have)) {
			cr_assert(m->has_line_numbers, "%s was built with -g", file);
			seen = true;
		}
		free(dbg);
		free(home_dbg);
	}
	cr_assert(seen, "no mapping of %s", must_have);
}

/* Kernel frames' names: from kernel symbols, or only an address ("[kernel] 0x..."). */
static void kernel_names(const Perftools__Profiles__Profile *p, uint64_t *ret_named,
			 uint64_t *ret_addr_only)
{
	*ret_named = *ret_addr_only = 0;
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];
		const Perftools__Profiles__Mapping *m = NULL;

		for (size_t k = 0; k < p->n_mapping; k++)
			if (p->mapping[k]->id == l->mapping_id)
				m = p->mapping[k];
		if (!m || strcmp(pb_string(p, m->filename), "[kernel.kallsyms]") || !l->n_line)
			continue;
		for (size_t k = 0; k < p->n_function; k++)
			if (p->function[k]->id == l->line[0]->function_id) {
				if (!strncmp(pb_string(p, p->function[k]->name), "[kernel] 0x", 11))
					(*ret_addr_only)++;
				else
					(*ret_named)++;
			}
	}
}

/* A copy of a perf.data whose kernel was loaded 2 MiB higher (another boot, another KASLR). */
static void move_kernel_text(const char *in, const char *out)
{
	static const char tag[] = "[kernel.kallsyms]_text";
	FILE *f = fopen(in, "r");
	struct stat st;
	uint64_t pgoff;
	uint8_t *buf, *hit;

	cr_assert_not_null(f);
	cr_assert_eq(fstat(fileno(f), &st), 0);
	buf = malloc(st.st_size);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, st.st_size, f), (size_t)st.st_size);
	fclose(f);
	/* PERF_RECORD_MMAP: header, pid, tid, start, len, pgoff (_text's address), filename. */
	hit = memmem(buf, st.st_size, tag, sizeof(tag) - 1);
	cr_assert_not_null(hit, "no kernel mmap event in %s", in);
	memcpy(&pgoff, hit - 8, 8);
	pgoff += 2u << 20;
	memcpy(hit - 8, &pgoff, 8);
	f = fopen(out, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, st.st_size, f), (size_t)st.st_size);
	fclose(f);
	free(buf);
}

Test(convert, perf_data_without_frame_pointers)
{
	char *dir = test_tmpdir(), *data = path_in(dir, "p.data"), *pb = path_in(dir, "p.pb.gz"),
	     *folded = path_in(dir, "p.folded"), *cmd = NULL, line[65536];
	Perftools__Profiles__Profile *p;
	struct run_result rr;
	long perf_total, perf_hit;
	uint64_t total;
	double frac, perf_frac;
	FILE *f;

	test_require_root();
	cr_assert(asprintf(&cmd,
			   "perf record -q -e cpu-clock -F 999 --call-graph dwarf,32768 -o '%s' "
			   "-- '%s' 3 >/dev/null 2>&1",
			   data, test_build_path("workloads/cxx_nofp")) > 0);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);

	rr = profd((const char *[]){"convert", data, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "convert failed: %s\n%s", rr.err, rr.out);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	total = total_samples(p);
	frac = root_fraction(p, "_start");
	perf_script_roots(data, "_start", &perf_total, &perf_hit);
	perf_frac = perf_total ? (double)perf_hit / perf_total : 0;
	cr_log_info("complete (reach _start): profd %.1f%% of %lu, perf script %.1f%% of %ld",
		    frac * 100, (unsigned long)total, perf_frac * 100, perf_total);
	cr_assert_eq((long)total, perf_total, "the same samples as perf script");
	/* 3 s of the workload's CPU time at 999 Hz (~3000 samples, however busy the machine). */
	cr_assert_gt(total, 1000, "3 s at 999 Hz");
	cr_assert_geq(frac, 0.90, "complete: %.1f%% (perf script %.1f%%)", frac * 100,
		      perf_frac * 100);
	cr_assert_geq(frac, perf_frac - 0.05, "profd %.1f%%, perf script %.1f%%", frac * 100,
		      perf_frac * 100);
	/* Names cross libstdc++ and glibc like perf's. */
	{
		const char *names[4096];
		uint64_t hit = 0;

		for (size_t i = 0; i < p->n_sample; i++) {
			size_t n = test_sample_functions(p, p->sample[i], names, 4096);

			for (size_t k = 0; k + 1 < n; k++)
				if (!strcmp(names[k], "work::sort_batch") &&
				    !strcmp(names[k + 1], "main")) {
					hit += p->sample[i]->value[0];
					break;
				}
		}
		cr_assert_gt(hit * 5, total, "sort_batch under main in %lu of %lu",
			     (unsigned long)hit, (unsigned long)total);
	}
	cr_assert_str_eq(test_sample_label_str(p, p->sample[0], "process"), "cxx_nofp");
	/* has_line_numbers from section headers, as the DWARF itself would say. */
	check_line_flags(p, "cxx_nofp");
	test_pprof_free(p);
	free(test_check_with_pprof(pb));

	rr = profd((const char *[]){"convert", data, "-f", "folded", "-o", folded, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	f = fopen(folded, "r");
	cr_assert_not_null(f);
	uint64_t lines_total = 0, start_total = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long n = strtoul(strrchr(line, ' ') + 1, NULL, 10);

		lines_total += n;
		if (!strncmp(line, "cxx_nofp;_start;", 16))
			start_total += n;
	}
	fclose(f);
	cr_assert_eq(lines_total, total);
	cr_assert_geq(start_total, lines_total * 9 / 10);

	/*
	 * Kernel symbols without perf's cache (an empty HOME): this machine's /proc/kallsyms names
	 * the recording's kernel frames, as it runs that kernel since that boot; a recording of a
	 * kernel loaded elsewhere gets addresses, not this machine's names.
	 */
	{
		char *home = path_in(dir, "home"), *moved = path_in(dir, "moved.data");
		uint64_t named, addr_only;

		sh("mkdir -p '%s'", home);
		rr = profd_home(home, (const char *[]){"convert", data, "-o", pb, "-q", NULL});
		cr_assert_eq(rr.status, 0, "%s", rr.err);
		run_result_free(&rr);
		p = test_pprof_load(pb);
		cr_assert_not_null(p);
		kernel_names(p, &named, &addr_only);
		test_pprof_free(p);
		if (named + addr_only == 0) {
			cr_log_warn(
			    "no kernel frames in the recording: kernel symbols not checked");
		} else {
			cr_assert_eq(addr_only, 0, "%lu of %lu kernel frames unnamed",
				     (unsigned long)addr_only, (unsigned long)(named + addr_only));
			move_kernel_text(data, moved);
			rr = profd_home(home,
					(const char *[]){"convert", moved, "-o", pb, "-v", NULL});
			cr_assert_eq(rr.status, 0, "%s", rr.err);
			cr_assert(strstr(rr.err, "another address"), "%s", rr.err);
			run_result_free(&rr);
			p = test_pprof_load(pb);
			cr_assert_not_null(p);
			kernel_names(p, &named, &addr_only);
			test_pprof_free(p);
			cr_assert_eq(named, 0,
				     "this machine's kernel names for another boot's frames");
			cr_assert_gt(addr_only, 0);
		}
		free(home);
		free(moved);
	}
	free(dir);
	free(data);
	free(pb);
	free(folded);
}

/* Samples whose leaf function is `name`. */
static uint64_t leaf_named(const Perftools__Profiles__Profile *p, const char *name)
{
	const char *names[4096];
	uint64_t hit = 0;

	for (size_t i = 0; i < p->n_sample; i++)
		if (test_sample_functions(p, p->sample[i], names, 4096) > 0 &&
		    !strcmp(names[0], name))
			hit += p->sample[i]->value[0];
	return hit;
}

/*
 * A recording is converted as if it came from another machine: JIT code is named from perf maps
 * only with --perf-map-dir, never from this machine's /tmp or /proc by default, and from the
 * given directory by the recorded pid.
 */
Test(convert, perf_maps_only_when_asked)
{
	char *dir = test_tmpdir(), *data = path_in(dir, "jit.data"), *pb = path_in(dir, "j.pb.gz"),
	     *pidf = path_in(dir, "pid"), *maps = path_in(dir, "maps"), *cmd = NULL,
	     *hostmap = NULL;
	Perftools__Profiles__Profile *p;
	struct run_result rr;
	uint64_t total;
	long pid = 0;
	FILE *f;

	test_require_root();
	/* --keep-map: the host's /tmp/perf-PID.map outlives the process, as a real JIT's does. */
	cr_assert(asprintf(&cmd,
			   "perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -o '%s' "
			   "-- '%s' 1.5 --keep-map > '%s' 2>/dev/null",
			   data, test_build_path("workloads/jit_spin"), pidf) > 0);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
	f = fopen(pidf, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	cr_assert(asprintf(&hostmap, "/tmp/perf-%ld.map", pid) > 0);
	cr_assert_eq(access(hostmap, R_OK), 0, "jit_spin wrote no %s", hostmap);

	/* Default: the host's map is there, and not read. */
	rr = profd((const char *[]){"convert", data, "-o", pb, NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	cr_assert(strstr(rr.err, "--perf-map-dir"), "a hint names the option: %s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	total = total_samples(p);
	cr_assert_gt(total, 100);
	cr_assert_eq(leaf_named(p, "jit_spin_loop"), 0, "the host's perf map was read");
	for (size_t i = 0; i < p->n_mapping; i++)
		if (!strcmp(pb_string(p, p->mapping[i]->filename), "[anon]"))
			cr_assert_not(p->mapping[i]->has_functions);
	test_pprof_free(p);

	/* Asked for /tmp (the recording machine is this one): named. */
	rr = profd(
	    (const char *[]){"convert", data, "--perf-map-dir", "/tmp", "-o", pb, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	cr_assert_geq(leaf_named(p, "jit_spin_loop") * 2, total_samples(p),
		      "jit_spin_loop in %lu of %lu samples",
		      (unsigned long)leaf_named(p, "jit_spin_loop"),
		      (unsigned long)total_samples(p));
	test_pprof_free(p);
	free(test_check_with_pprof(pb));

	/* Another directory: its perf-PID.map (PID as recorded), whatever /tmp holds. */
	sh("mkdir -p '%s' && sed 's/jit_spin_loop/copied_jit_loop/' '%s' > '%s/perf-%ld.map'", maps,
	   hostmap, maps, pid);
	rr = profd((const char *[]){"convert", data, "--perf-map-dir", maps, "-o", pb, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	p = test_pprof_load(pb);
	cr_assert_not_null(p);
	cr_assert_eq(leaf_named(p, "jit_spin_loop"), 0);
	cr_assert_geq(leaf_named(p, "copied_jit_loop") * 2, total_samples(p));
	test_pprof_free(p);

	rr = profd(
	    (const char *[]){"convert", data, "--perf-map-dir", "/nonexistent", "-o", pb, NULL});
	cr_assert_eq(rr.status, 1);
	cr_assert(strstr(rr.err, "not a directory"), "%s", rr.err);
	run_result_free(&rr);

	unlink(hostmap);
	free(hostmap);
	free(dir);
	free(data);
	free(pb);
	free(pidf);
	free(maps);
}

Test(convert, bad_inputs)
{
	char *dir = test_tmpdir(), *junk = path_in(dir, "junk"), *fp = path_in(dir, "fp.data"),
	     *out = path_in(dir, "o.pb.gz"), *cmd = NULL;
	struct run_result rr;
	struct stat st;

	test_require_root();
	sh("echo 'just some text' > '%s'", junk);
	rr = profd((const char *[]){"convert", junk, "-o", out, NULL});
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "neither a profd raw capture nor a perf.data"), "%s", rr.err);
	run_result_free(&rr);

	rr = profd((const char *[]){"convert", "/nonexistent/x.raw", "-o", out, NULL});
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "Cannot open"), "%s", rr.err);
	run_result_free(&rr);

	/* Frame-pointer call graphs carry no stacks to unwind. */
	cr_assert(asprintf(&cmd,
			   "perf record -q -e cpu-clock -g -o '%s' -- '%s' 0.3 >/dev/null 2>&1", fp,
			   test_build_path("workloads/chain")) > 0);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	rr = profd((const char *[]){"convert", fp, "-o", out, NULL});
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "--call-graph dwarf"), "%s", rr.err);
	run_result_free(&rr);
	cr_assert_neq(stat(out, &st), 0, "nothing written on errors before conversion");

	rr = profd((const char *[]){"convert", fp, "--format", "svg", NULL});
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "Unknown format"), "%s", rr.err);
	run_result_free(&rr);
	rr = profd((const char *[]){"record", "--raw", out, "-o", out, "-p", "1", NULL});
	cr_assert_neq(rr.status, 0);
	cr_assert(strstr(rr.err, "not both"), "%s", rr.err);
	run_result_free(&rr);
	free(dir);
	free(junk);
	free(fp);
	free(out);
}

/* ---- speedscope ------------------------------------------------------------------------- */

struct ss_frame {
	char *key; /* "name\tfile\tline" */
	double self;
};

struct ss_import {
	size_t n_profiles;
	double total;
	struct ss_frame frames[4096];
	size_t n_frames;
	char names[64][256];
	char units[64][32];
};

/* speedscope's own importer (the npm package's bundle, run in node) on `path`. */
static void ss_import(const char *path, struct ss_import *ret)
{
	char *cmd = NULL, *line = NULL;
	size_t cap = 0;
	FILE *f;
	int st;

	memset(ret, 0, sizeof(*ret));
	cr_assert(asprintf(&cmd, "node '%s' '%s' '%s'", test_build_path("speedscope-check.js"),
			   test_build_path("node/node_modules/speedscope/dist/release"), path) > 0);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "profile\t", 8)) {
			char *w = line + 8, *unit = strchr(w, '\t'), *name;

			cr_assert_not_null(unit);
			*unit++ = '\0';
			name = strchr(unit, '\t');
			cr_assert_not_null(name);
			*name++ = '\0';
			if (ret->n_profiles < 64) {
				snprintf(ret->names[ret->n_profiles], 256, "%s", name);
				snprintf(ret->units[ret->n_profiles], 32, "%s", unit);
			}
			ret->n_profiles++;
			ret->total += strtod(w, NULL);
		} else if (!strncmp(line, "frame\t", 6)) {
			char *self = line + 6, *key = strchr(self, '\t');

			cr_assert_not_null(key);
			*key++ = '\0';
			cr_assert_lt(ret->n_frames, 4096);
			ret->frames[ret->n_frames].key = strdup(key);
			ret->frames[ret->n_frames++].self = strtod(self, NULL);
		}
	}
	free(line);
	st = pclose(f);
	cr_assert_eq(st, 0, "speedscope's importer failed on %s (%s)", path, cmd);
	free(cmd);
	cr_assert_gt(ret->n_profiles, 0);
}

static void ss_free(struct ss_import *s)
{
	for (size_t i = 0; i < s->n_frames; i++)
		free(s->frames[i].key);
}

/* Self weight of the frames named `name`, any file and line. */
static double ss_self(const struct ss_import *s, const char *name)
{
	size_t n = strlen(name);
	double w = 0;

	for (size_t i = 0; i < s->n_frames; i++)
		if (!strncmp(s->frames[i].key, name, n) && s->frames[i].key[n] == '\t')
			w += s->frames[i].self;
	return w;
}

/* flat% of `name` in the real pprof's -top. */
static double pprof_flat_pct(const char *pb, const char *name)
{
	int st = -1;
	char *top = test_pprof_tool("-top -nodecount=500 -sample_index=cpu", pb, &st), *save = NULL;
	double pct = -1;

	cr_assert_not_null(top);
	cr_assert_eq(st, 0, "%s", top);
	for (char *l = strtok_r(top, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(l), m = strlen(name);

		/* pprof marks functions seen only inlined: "NAME (inline)". */
		if (n > 9 && !strcmp(l + n - 9, " (inline)"))
			l[n -= 9] = '\0';
		if (n > m + 1 && !strcmp(l + n - m, name) && l[n - m - 1] == ' ')
			cr_assert_eq(sscanf(l, "%*s %lf%%", &pct), 1, "%s", l);
	}
	free(top);
	return pct;
}

Test(convert, speedscope_keeps_inline_frames)
{
	static const char *const leaf = "tgt::(anonymous namespace)::mix";
	char *dir = test_tmpdir(), *pb = path_in(dir, "names.pb.gz");
	char *json = path_in(dir, "names.speedscope.json"), *folded = path_in(dir, "names.folded");
	char *direct = path_in(dir, "direct.speedscope.json");
	struct ss_import *ss = calloc(1, sizeof(*ss));
	struct run_result rr;
	uint64_t total_cpu = 0, total_count = 0, inlined = 0, leaf_cpu = 0;
	size_t n_keys = 0;
	char **keys;

	test_require_root();
	cr_assert_not_null(ss);
	rr = profd((const char *[]){"record", "-F", "499", "-q", "-o", pb, "--",
				    test_build_path("workloads/names"), "2", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	rr = profd((const char *[]){"convert", pb, "-f", "speedscope", "-o", json, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	rr = profd((const char *[]){"convert", pb, "-f", "folded", "-o", folded, "-q", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);

	/* The pprof of the recording: totals, every (name, file, line) a sample reaches. */
	Perftools__Profiles__Profile *p = test_pprof_load(pb);
	cr_assert_not_null(p);
	keys = calloc(p->n_location * 64 + 1, sizeof(*keys));
	cr_assert_not_null(keys);
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];

		total_count += s->value[0];
		total_cpu += s->value[1];
		for (size_t k = 0; k < s->n_location_id; k++) {
			const Perftools__Profiles__Location *loc = NULL;

			for (size_t j = 0; j < p->n_location; j++)
				if (p->location[j]->id == s->location_id[k])
					loc = p->location[j];
			cr_assert_not_null(loc);
			for (size_t ln = 0; ln < loc->n_line; ln++) {
				const Perftools__Profiles__Function *fn = NULL;
				char *key = NULL;
				bool seen = false;

				for (size_t j = 0; j < p->n_function; j++)
					if (p->function[j]->id == loc->line[ln]->function_id)
						fn = p->function[j];
				cr_assert_not_null(fn);
				if (k == 0 && ln == 0 && !strcmp(p->string_table[fn->name], leaf)) {
					leaf_cpu += s->value[1];
					/* The leaf was inlined: its Location has outer lines. */
					inlined += loc->n_line > 1 ? s->value[1] : 0;
				}
				cr_assert(asprintf(&key, "%s\t%s\t%" PRId64,
						   p->string_table[fn->name],
						   p->string_table[fn->filename],
						   loc->line[ln]->line) > 0);
				for (size_t j = 0; j < n_keys && !seen; j++)
					seen = !strcmp(keys[j], key);
				if (seen)
					free(key);
				else
					keys[n_keys++] = key;
			}
		}
	}
	cr_assert_gt(leaf_cpu, 0, "%s never sampled", leaf);
	cr_assert_eq(inlined, leaf_cpu, "%s is not inlined everywhere", leaf);

	/* speedscope's importer: one profile per thread, named by process, comm and tid, in
	 * nanoseconds, adding up to the pprof's total. */
	ss_import(json, ss);
	cr_assert_float_eq(ss->total, (double)total_cpu, 0.5, "threads %.0f, pprof %" PRIu64,
			   ss->total, total_cpu);
	for (size_t i = 0; i < ss->n_profiles && i < 64; i++) {
		cr_assert_str_eq(ss->units[i], "nanoseconds");
		cr_assert(!strncmp(ss->names[i], "names pid ", 10) &&
			      strstr(ss->names[i], " / names tid "),
			  "%s", ss->names[i]);
	}
	/* The same frames, names, files and lines as the pprof. */
	cr_assert_eq(ss->n_frames, n_keys, "speedscope %zu frames, pprof %zu", ss->n_frames,
		     n_keys);
	for (size_t i = 0; i < ss->n_frames; i++) {
		bool found = false;

		for (size_t j = 0; j < n_keys && !found; j++)
			found = !strcmp(keys[j], ss->frames[i].key);
		cr_assert(found, "speedscope frame %s is not in the pprof", ss->frames[i].key);
	}
	/* The inlined leaf keeps its share: as much as pprof -top gives it. */
	double ss_pct = 100.0 * ss_self(ss, leaf) / ss->total;
	double pp_pct = pprof_flat_pct(pb, leaf);
	cr_log_info("%s: speedscope %.2f%%, pprof -top %.2f%%", leaf, ss_pct, pp_pct);
	cr_assert_gt(pp_pct, 2.0, "pprof -top: %s at %.2f%%", leaf, pp_pct);
	cr_assert_float_eq(ss_pct, pp_pct, 0.01 + 0.005 * pp_pct, "speedscope %.3f%%, pprof %.3f%%",
			   ss_pct, pp_pct);
	ss_free(ss);

	/* Folded from the same pprof: every sample. */
	{
		FILE *f = fopen(folded, "r");
		char line[65536];
		uint64_t n = 0;

		cr_assert_not_null(f);
		while (fgets(line, sizeof(line), f))
			n += strtoull(strrchr(line, ' ') + 1, NULL, 10);
		fclose(f);
		cr_assert_eq(n, total_count);
	}

	/* record writes speedscope itself, with the same names. */
	rr = profd((const char *[]){"record", "-F", "499", "-q", "-f", "speedscope", "-o", direct,
				    "--", test_build_path("workloads/names"), "1", NULL});
	cr_assert_eq(rr.status, 0, "%s", rr.err);
	run_result_free(&rr);
	ss_import(direct, ss);
	cr_assert_gt(ss_self(ss, leaf), 0);
	cr_assert_gt(ss_self(ss, "tgt::run_lambdas(unsigned int)::{lambda(unsigned int, unsigned "
				 "int)#1}::operator()"),
		     0);
	cr_assert_eq(ss_self(ss, "operator()"), 0);
	ss_free(ss);

	for (size_t j = 0; j < n_keys; j++)
		free(keys[j]);
	free(keys);
	free(ss);
	test_pprof_free(p);
	free(pb);
	free(json);
	free(folded);
	free(direct);
	free(dir);
}
