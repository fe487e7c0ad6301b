/* SPDX-License-Identifier: MIT */
/*
 * Symbolizer tests. Fixtures (tests/fixtures/) are compiled here, per test, into a temporary
 * directory; expected answers come from independent tools: nm for symbol addresses, the
 * @MARKER comments in the fixture sources for line numbers, eu-addr2line -f -i -C for whole
 * inline chains, readelf -n for build-ids, c++filt-style strings for demangling.
 */
#include <criterion/criterion.h>

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "symbolize/symbolize.h"

static char tmpdir[PATH_MAX];
static char fixdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------------------------ */

static void find_fixtures(void)
{
	const char *src = getenv("PROFD_SRCDIR");
	char p[PATH_MAX];

	if (src) {
		snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures", src);
		return;
	}
	/* <tree>/<build dir>/tests/unit/test-symbolize: the tree is four components up. */
	ssize_t n = readlink("/proc/self/exe", p, sizeof(p) - 1);
	if (n > 0) {
		p[n] = '\0';
		for (int i = 0; i < 4; i++) {
			char *s = strrchr(p, '/');
			if (!s)
				break;
			*s = '\0';
		}
		if (snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures", p) >= (int)sizeof(fixdir))
			fixdir[0] = '\0';
		char probe[PATH_MAX + 16];
		snprintf(probe, sizeof(probe), "%s/inline.c", fixdir);
		if (access(probe, R_OK) == 0)
			return;
	}
	cr_assert_not_null(realpath("tests/fixtures", fixdir),
			   "cannot find tests/fixtures (set PROFD_SRCDIR)");
}

static void setup(void)
{
	find_fixtures();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/profd-symtest-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	/* The debuginfod client must never be asked from a unit test. */
	unsetenv("DEBUGINFOD_URLS");
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	if (tmpdir[0] && strncmp(tmpdir, "/tmp/profd-symtest-", 19) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		(void)!system(cmd);
	}
}

TestSuite(symbolize, .init = setup, .fini = teardown);

/* Paths from a ring of buffers: enough for every path a test holds at once. */
#define PATH_RING 64
#define PATH_BUF (PATH_MAX + 256)

static const char *tmp(const char *name)
{
	static char bufs[PATH_RING][PATH_BUF];
	static int i;
	char *b = bufs[i++ % PATH_RING];
	snprintf(b, PATH_BUF, "%s/%s", tmpdir, name);
	return b;
}

static const char *fixture(const char *name)
{
	static char bufs[PATH_RING][PATH_BUF];
	static int i;
	char *b = bufs[i++ % PATH_RING];
	snprintf(b, PATH_BUF, "%s/%s", fixdir, name);
	return b;
}

_printf_(1, 2) static void sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

/* Run a command and return its stdout (malloc'd). */
_printf_(1, 2) static char *capture(const char *fmt, ...)
{
	char cmd[65536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);

	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s", cmd);
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	cr_assert_not_null(out);
	size_t n;
	while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			out = realloc(out, cap);
			cr_assert_not_null(out);
		}
	}
	out[len] = '\0';
	int rc = pclose(f);
	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
	return out;
}

/* Address (and size) of a defined symbol, from nm. */
static uint64_t nm_addr(const char *bin, const char *sym, bool dynamic, uint64_t *ret_size)
{
	char *out = capture("nm %s -S --defined-only '%s'", dynamic ? "-D" : "", bin);
	uint64_t addr = 0, size = 0;
	bool found = false;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char a[32], s[32], t[4], name[1024];
		if (sscanf(line, "%31s %31s %3s %1023s", a, s, t, name) == 4 &&
		    strcmp(name, sym) == 0) {
			addr = strtoull(a, NULL, 16);
			size = strtoull(s, NULL, 16);
			found = true;
			break;
		}
	}
	free(out);
	cr_assert(found, "nm: %s not in %s", sym, bin);
	if (ret_size)
		*ret_size = size;
	return addr;
}

/* Line number of "@marker" in a fixture source. */
static unsigned marker_line(const char *src, const char *marker)
{
	FILE *f = fopen(fixture(src), "re");
	cr_assert_not_null(f);
	char line[1024], tag[128];
	snprintf(tag, sizeof(tag), "@%s ", marker);
	unsigned n = 0, found = 0;
	while (fgets(line, sizeof(line), f)) {
		n++;
		char *p = strstr(line, tag);
		if (!p) {
			/* Marker at end of line without trailing space. */
			snprintf(tag, sizeof(tag), "@%s\n", marker);
			p = strstr(line, tag);
			snprintf(tag, sizeof(tag), "@%s ", marker);
		}
		if (p) {
			found = n;
			break;
		}
	}
	fclose(f);
	cr_assert(found, "marker %s not in %s", marker, src);
	return found;
}

static struct sym_elf *open_elf(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", path);
	struct sym_elf *e = NULL;
	int r = sym_elf_open(fd, path, &e);
	cr_assert_eq(r, 0, "sym_elf_open(%s): %s", path, strerror(-r));
	/* The caller keeps its fd. */
	cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	close(fd);
	return e;
}

static int open_elf_err(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", path);
	struct sym_elf *e = NULL;
	int r = sym_elf_open(fd, path, &e);
	close(fd);
	if (r == 0)
		sym_elf_free(e);
	else
		cr_assert_null(e, "%s: output set on failure", path);
	return r;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* ---- eu-addr2line as the reference -------------------------------------------------------- */

struct ref_frame {
	char name[1024];
	char loc[PATH_MAX + 32];
};
struct ref_result {
	int n;
	struct ref_frame f[SYM_MAX_INLINE];
};

/* `eu-addr2line -a -f -i -C` for many addresses at once; one ref_result per address. */
static void ref_addr2line(const char *bin, const uint64_t *addrs, size_t n, struct ref_result *out)
{
	size_t cap = 256 + n * 20;
	char *args = malloc(cap);
	cr_assert_not_null(args);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(args + len, cap - len, " 0x%" PRIx64, addrs[i]);
	char *text = capture("eu-addr2line -a -f -i -C -e '%s'%s", bin, args);
	free(args);

	memset(out, 0, n * sizeof(*out));
	enum { FUNC, LOC0, PNAME, PLOC } st = FUNC;
	long rec = -1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0x", 2) == 0) {
			rec++;
			cr_assert_lt(rec, (long)n);
			cr_assert_eq(strtoull(line, NULL, 16), addrs[rec]);
			st = FUNC;
			continue;
		}
		cr_assert_geq(rec, 0, "unexpected eu-addr2line output: %s", line);
		struct ref_result *r = &out[rec];
		switch (st) {
		case FUNC: {
			char *in = strstr(line, " inlined at ");
			if (in)
				*in = '\0';
			snprintf(r->f[0].name, sizeof(r->f[0].name), "%s", line);
			st = LOC0;
			break;
		}
		case LOC0:
			snprintf(r->f[0].loc, sizeof(r->f[0].loc), "%s", line);
			r->n = 1;
			st = PNAME;
			break;
		case PNAME:
			cr_assert_lt(r->n, SYM_MAX_INLINE);
			snprintf(r->f[r->n].name, sizeof(r->f[0].name), "%s", line);
			st = PLOC;
			break;
		case PLOC:
			snprintf(r->f[r->n].loc, sizeof(r->f[0].loc), "%s", line);
			r->n++;
			st = PNAME;
			break;
		}
	}
	cr_assert_eq(rec, (long)n - 1, "eu-addr2line printed %ld records for %zu addresses",
		     rec + 1, n);
	free(text);
}

static void frame_loc(const struct sym_frame *f, char *buf, size_t size)
{
	if (!f->file)
		snprintf(buf, size, "??:0");
	else if (f->column)
		snprintf(buf, size, "%s:%u:%u", f->file, f->line, f->column);
	else
		snprintf(buf, size, "%s:%u", f->file, f->line);
}

/*
 * Look up every byte address of [start, start + size) and compare each chain with
 * eu-addr2line: same number of frames, same names, same file:line:column. Results are kept in
 * `res` (size entries).
 */
static void compare_range_with_eu(struct sym_elf *e, const char *bin, uint64_t start,
				  uint64_t size, struct sym_result *res)
{
	uint64_t *addrs = calloc(size, sizeof(*addrs));
	struct ref_result *ref = calloc(size, sizeof(*ref));
	cr_assert(addrs && ref);
	for (uint64_t i = 0; i < size; i++)
		addrs[i] = start + i;
	ref_addr2line(bin, addrs, size, ref);

	for (uint64_t i = 0; i < size; i++) {
		struct sym_result *r = &res[i];
		cr_assert_eq(sym_elf_lookup(e, addrs[i], true, r), 0);
		cr_assert_eq(r->source, SYM_SOURCE_DWARF, "0x%" PRIx64 ": source %d", addrs[i],
			     r->source);
		cr_assert_eq((int)r->n_frames, ref[i].n, "0x%" PRIx64 ": %zu frames, eu-addr2line %d",
			     addrs[i], r->n_frames, ref[i].n);
		for (int k = 0; k < ref[i].n; k++) {
			char loc[PATH_MAX + 32];
			cr_assert_not_null(r->frames[k].name);
			cr_assert_str_eq(r->frames[k].name, ref[i].f[k].name,
					 "0x%" PRIx64 " frame %d", addrs[i], k);
			frame_loc(&r->frames[k], loc, sizeof(loc));
			cr_assert_str_eq(loc, ref[i].f[k].loc, "0x%" PRIx64 " frame %d (%s)",
					 addrs[i], k, r->frames[k].name);
		}
	}
	free(addrs);
	free(ref);
}

/* ---- inline chains (C) ---------------------------------------------------------------------- */

static void check_inline_binary(const char *bin)
{
	uint64_t size, start = nm_addr(bin, "outer_loop", false, &size);
	cr_assert_gt(size, 0);

	struct sym_elf *e = open_elf(bin);
	cr_assert(sym_elf_has_symbols(e));
	cr_assert(sym_elf_has_lines(e));

	struct sym_result *res = calloc(size, sizeof(*res));
	cr_assert_not_null(res);
	compare_range_with_eu(e, bin, start, size, res);

	/* Beyond agreeing with eu-addr2line: the three-level chain is there, with the call
	 * sites at the marked lines, and every outermost frame is outer_loop. */
	unsigned l_body = marker_line("inline.c", "LEAF_BODY");
	unsigned l_leaf = marker_line("inline.c", "CALL_LEAF");
	unsigned l_mid = marker_line("inline.c", "CALL_MIDDLE");
	int chains = 0, body_hits = 0;
	for (uint64_t i = 0; i < size; i++) {
		struct sym_result *r = &res[i];
		cr_assert_geq(r->n_frames, 1);
		const struct sym_frame *last = &r->frames[r->n_frames - 1];
		cr_assert_str_eq(last->name, "outer_loop");
		cr_assert_eq(last->sym_start, start);
		if (r->n_frames != 3)
			continue;
		chains++;
		cr_assert_str_eq(r->frames[0].name, "leaf_mix");
		cr_assert_str_eq(r->frames[1].name, "middle_step");
		cr_assert_str_eq(basename_of(r->frames[0].file), "inline.c");
		cr_assert_str_eq(basename_of(r->frames[1].file), "inline.c");
		cr_assert_str_eq(basename_of(r->frames[2].file), "inline.c");
		cr_assert(r->frames[0].line == l_body || r->frames[0].line == l_body + 1,
			  "leaf line %u", r->frames[0].line);
		cr_assert_eq(r->frames[1].line, l_leaf);
		cr_assert_eq(r->frames[2].line, l_mid);
		body_hits += r->frames[0].line == l_body;

		/* Without inlines: just the containing function, at its call site line. */
		struct sym_result one;
		cr_assert_eq(sym_elf_lookup(e, start + i, false, &one), 0);
		cr_assert_eq(one.source, SYM_SOURCE_DWARF);
		cr_assert_eq(one.n_frames, 1);
		cr_assert_str_eq(one.frames[0].name, "outer_loop");
		cr_assert_eq(one.frames[0].line, l_mid);
	}
	cr_assert_gt(chains, 0, "no address of outer_loop has leaf_mix/middle_step inlined");
	cr_assert_gt(body_hits, 0);

	/* A function with nothing inlined: one frame, its own line. */
	uint64_t psize, pstart = nm_addr(bin, "plain_func", false, &psize);
	unsigned l_plain = marker_line("inline.c", "PLAIN_BODY");
	bool plain_line = false;
	for (uint64_t i = 0; i < psize; i++) {
		struct sym_result r;
		cr_assert_eq(sym_elf_lookup(e, pstart + i, true, &r), 0);
		cr_assert_eq(r.source, SYM_SOURCE_DWARF);
		cr_assert_eq(r.n_frames, 1);
		cr_assert_str_eq(r.frames[0].name, "plain_func");
		cr_assert_str_eq(r.frames[0].system_name, "plain_func");
		cr_assert_eq(r.frames[0].sym_start, pstart);
		plain_line |= r.frames[0].line == l_plain;
	}
	cr_assert(plain_line);

	/* Far outside the binary: nothing, and that is not an error. */
	struct sym_result none;
	cr_assert_eq(sym_elf_lookup(e, 0x7fff00000000ull, true, &none), 0);
	cr_assert_eq(none.source, SYM_SOURCE_NONE);
	cr_assert_eq(none.n_frames, 0);

	free(res);
	sym_elf_free(e);
}

Test(symbolize, inline_chain_pie_matches_eu_addr2line)
{
	sh("gcc -O2 -g -fPIE -pie -o '%s' '%s'", tmp("inline"), fixture("inline.c"));
	check_inline_binary(tmp("inline"));
}

Test(symbolize, inline_chain_non_pie_dwarf4)
{
	sh("gcc -O2 -gdwarf-4 -fno-PIE -no-pie -o '%s' '%s'", tmp("inline"),
	   fixture("inline.c"));
	check_inline_binary(tmp("inline"));
}

Test(symbolize, inline_chain_aarch64_cross)
{
	/* Symbolization is offline: an aarch64 binary resolves the same way on any host. */
	sh("aarch64-linux-gnu-gcc -O2 -g -o '%s' '%s'", tmp("inline-a64"), fixture("inline.c"));
	check_inline_binary(tmp("inline-a64"));

	int fd = open(tmp("inline-a64"), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct elf_ident id;
	cr_assert_eq(elf_identify_fd(fd, &id), 0);
	cr_assert_eq(id.e_machine, EM_AARCH64);
	close(fd);
}

/* ---- C++: demangling, templates, inlined member functions ----------------------------------- */

Test(symbolize, cxx_names_match_eu_addr2line)
{
	const char *bin = tmp("templates");
	sh("g++ -O2 -g -o '%s' '%s'", bin, fixture("templates.cc"));
	struct sym_elf *e = open_elf(bin);

	uint64_t size, start = nm_addr(bin, "_ZN13profd_fixture9sum_rangeIlEET_S1_", false, &size);
	struct sym_result *res = calloc(size, sizeof(*res));
	cr_assert_not_null(res);
	compare_range_with_eu(e, bin, start, size, res);

	unsigned l_add = marker_line("templates.cc", "TMPL_ADD");
	unsigned l_call = marker_line("templates.cc", "CALL_ADD");
	int chains = 0;
	for (uint64_t i = 0; i < size; i++) {
		struct sym_result *r = &res[i];
		const struct sym_frame *last = &r->frames[r->n_frames - 1];
		cr_assert_str_eq(last->name, "long profd_fixture::sum_range<long>(long)");
		cr_assert_str_eq(last->system_name, "_ZN13profd_fixture9sum_rangeIlEET_S1_");
		if (r->n_frames != 2)
			continue;
		chains++;
		cr_assert_str_eq(r->frames[0].name, "profd_fixture::Accumulator<long>::add(long)");
		cr_assert_str_eq(r->frames[0].system_name, "_ZN13profd_fixture11AccumulatorIlE3addEl");
		cr_assert_eq(r->frames[0].line, l_add);
		cr_assert_eq(r->frames[1].line, l_call);
	}
	cr_assert_gt(chains, 0, "Accumulator<long>::add was not inlined into sum_range<long>");

	/* Names are interned: the same address gives the same pointers, no new strings. */
	struct sym_result a, b;
	uint64_t cstart = nm_addr(bin, "_ZN13profd_fixture5inner7computeEiPKc", false, NULL);
	cr_assert_eq(sym_elf_lookup(e, cstart, true, &a), 0);
	cr_assert_eq(sym_elf_lookup(e, cstart, true, &b), 0);
	cr_assert_eq(a.n_frames, 1);
	cr_assert_str_eq(a.frames[0].name, "profd_fixture::inner::compute(int, char const*)");
	cr_assert_str_eq(a.frames[0].system_name, "_ZN13profd_fixture5inner7computeEiPKc");
	cr_assert_eq(a.frames[0].name, b.frames[0].name);
	cr_assert_eq(a.frames[0].sym_start, cstart);

	free(res);
	sym_elf_free(e);

	/* Without DWARF the symtab name is demangled the same way. */
	sh("strip --strip-debug -o '%s' '%s'", tmp("templates-nodebug"), bin);
	e = open_elf(tmp("templates-nodebug"));
	cr_assert_not(sym_elf_has_lines(e));
	cr_assert_eq(sym_elf_lookup(e, cstart + 1, true, &a), 0);
	cr_assert_eq(a.source, SYM_SOURCE_SYMTAB);
	cr_assert_eq(a.n_frames, 1);
	cr_assert_str_eq(a.frames[0].name, "profd_fixture::inner::compute(int, char const*)");
	cr_assert_str_eq(a.frames[0].system_name, "_ZN13profd_fixture5inner7computeEiPKc");
	cr_assert_eq(a.frames[0].sym_start, cstart);
	cr_assert_null(a.frames[0].file);
	sym_elf_free(e);
}

Test(symbolize, demangle)
{
	char buf[256];
	int r;

	r = sym_demangle("_ZN13profd_fixture5inner7computeEiPKc", buf, sizeof(buf));
	cr_assert_str_eq(buf, "profd_fixture::inner::compute(int, char const*)");
	cr_assert_eq(r, (int)strlen(buf));
	/* Short standard substitutions, as __cxa_demangle / eu-addr2line -C print them. */
	cr_assert_geq(sym_demangle("_Z1fSs", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "f(std::string)");
	cr_assert_geq(sym_demangle("_Z3fooi.constprop.0", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "foo(int) [clone .constprop.0]");
	/* Rust legacy: hash dropped. Rust v0: disambiguators dropped. */
	cr_assert_geq(sym_demangle("_ZN3foo3bar17h05af221e174051e9E", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "foo::bar");
	cr_assert_geq(sym_demangle("_RNvNtCs1234_7mycrate3foo3bar", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "mycrate::foo::bar");

	cr_assert_eq(sym_demangle("main", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sym_demangle("i", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sym_demangle("_Z", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sym_demangle("_ZN3foo", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sym_demangle("_Z1fSs", buf, 5), -ENOBUFS);
	cr_assert_eq(sym_demangle("_Z1fSs", buf, 0), -EINVAL);

	char *huge = malloc(SYM_DEMANGLE_MAX_INPUT + 16);
	cr_assert_not_null(huge);
	memset(huge, 'a', SYM_DEMANGLE_MAX_INPUT + 15);
	memcpy(huge, "_ZN", 3);
	huge[SYM_DEMANGLE_MAX_INPUT + 15] = '\0';
	cr_assert_eq(sym_demangle(huge, buf, sizeof(buf)), -E2BIG);
	free(huge);
}

/* ---- fallbacks: symtab, dynsym, separate debug files ---------------------------------------- */

Test(symbolize, stripped_library_falls_back_to_dynsym)
{
	const char *lib = tmp("libdyn.so"), *stripped = tmp("libdyn-stripped.so");
	sh("gcc -O2 -g -shared -fPIC -o '%s' '%s'", lib, fixture("libdyn.c"));
	sh("strip --strip-all -o '%s' '%s'", stripped, lib);

	uint64_t alpha = nm_addr(stripped, "dyn_exported_alpha", true, NULL);
	uint64_t beta = nm_addr(stripped, "dyn_exported_beta", true, NULL);
	uint64_t hidden = nm_addr(lib, "dyn_hidden", false, NULL);

	struct sym_elf *e = open_elf(stripped);
	cr_assert(sym_elf_has_symbols(e));
	cr_assert_not(sym_elf_has_lines(e));

	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, alpha + 4, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DYNSYM);
	cr_assert_eq(r.n_frames, 1);
	cr_assert_str_eq(r.frames[0].name, "dyn_exported_alpha");
	cr_assert_eq(r.frames[0].sym_start, alpha);
	cr_assert_null(r.frames[0].file);
	cr_assert_eq(r.frames[0].line, 0);

	cr_assert_eq(sym_elf_lookup(e, beta, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DYNSYM);
	cr_assert_str_eq(r.frames[0].name, "dyn_exported_beta");

	/* The static function is in no table of the stripped file. */
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert(r.n_frames == 0 || strcmp(r.frames[0].name, "dyn_hidden") != 0);
	sym_elf_free(e);

	/* With .symtab but no DWARF: SYMTAB, statics included. */
	sh("strip --strip-debug -o '%s' '%s'", tmp("libdyn-symtab.so"), lib);
	e = open_elf(tmp("libdyn-symtab.so"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_SYMTAB);
	cr_assert_str_eq(r.frames[0].name, "dyn_hidden");
	cr_assert_eq(r.frames[0].sym_start, hidden);
	sym_elf_free(e);

	/* The unstripped library: DWARF. */
	e = open_elf(lib);
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	cr_assert_str_eq(basename_of(r.frames[0].file), "libdyn.c");
	sym_elf_free(e);
}

Test(symbolize, debuglink_and_minidebuginfo)
{
	const char *lib = tmp("libdyn.so");
	sh("gcc -O2 -g -shared -fPIC -Wl,--build-id=sha1 -o '%s' '%s'", lib, fixture("libdyn.c"));
	uint64_t hidden = nm_addr(lib, "dyn_hidden", false, NULL);

	/* .gnu_debuglink: the debug file next to the binary is found by name + CRC. */
	sh("cd '%s' && objcopy --only-keep-debug libdyn.so libdyn.so.debug && "
	   "strip --strip-all -o libdl.so libdyn.so && "
	   "objcopy --add-gnu-debuglink=libdyn.so.debug libdl.so",
	   tmpdir);
	struct sym_elf *e = open_elf(tmp("libdl.so"));
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	cr_assert_str_eq(basename_of(r.frames[0].file), "libdyn.c");
	cr_assert(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* MiniDebugInfo: an xz-compressed .symtab of the functions .dynsym lacks. */
	sh("cd '%s' && nm -D libdyn.so --format=posix --defined-only | awk '{print $1}' | sort "
	   "> dynsyms && "
	   "nm libdyn.so --format=posix --defined-only | awk '$2 ~ /[Tt]/ {print $1}' | sort "
	   "> funcsyms && comm -13 dynsyms funcsyms > keep && "
	   "objcopy --only-keep-debug libdyn.so mini.full && "
	   "objcopy -S --remove-section .gdb_index --remove-section .comment "
	   "--keep-symbols=keep mini.full mini && xz -f mini && "
	   "strip --strip-all -o libmini.so libdyn.so && "
	   "objcopy --add-section .gnu_debugdata=mini.xz libmini.so",
	   tmpdir);
	e = open_elf(tmp("libmini.so"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_SYMTAB);
	cr_assert_str_eq(r.frames[0].name, "dyn_hidden");
	cr_assert_eq(r.frames[0].sym_start, hidden);
	/* Exported functions still resolve (.dynsym merged with the MiniDebugInfo symtab). */
	uint64_t alpha = nm_addr(lib, "dyn_exported_alpha", true, NULL);
	cr_assert_eq(sym_elf_lookup(e, alpha + 2, true, &r), 0);
	cr_assert_str_eq(r.frames[0].name, "dyn_exported_alpha");
	sym_elf_free(e);
}

Test(symbolize, fully_stripped_static_binary_has_nothing)
{
	const char *bin = tmp("static");
	sh("gcc -O2 -static -o '%s' '%s' && strip --strip-all '%s'", bin, fixture("inline.c"), bin);
	struct sym_elf *e = open_elf(bin);
	cr_assert_not(sym_elf_has_symbols(e));
	cr_assert_not(sym_elf_has_lines(e));

	/* Any address in the first executable PT_LOAD: no name, not an error. */
	uint64_t vaddr;
	/* The flags column reads "R E", two awk fields. */
	char *out = capture("readelf -lW '%s' | awk '$1 == \"LOAD\" && / E / {print $3; exit}'",
			    bin);
	vaddr = strtoull(out, NULL, 16);
	free(out);
	cr_assert_gt(vaddr, 0);
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, vaddr + 0x10, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_NONE);
	cr_assert_eq(r.n_frames, 0);
	sym_elf_free(e);
}

/* ---- file offset → vaddr ------------------------------------------------------------------ */

/* Every allocated, file-backed section start maps to its sh_addr; checked via libelf's view
 * of the section headers, independent of the PT_LOAD walk under test. */
static void check_offsets(const char *bin)
{
	struct sym_elf *e = open_elf(bin);
	int fd = open(bin, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	cr_assert_not_null(elf);

	int checked = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		cr_assert_not_null(gelf_getshdr(scn, &sh));
		if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_NOBITS || sh.sh_size < 2 ||
		    sh.sh_addr == 0)
			continue;
		uint64_t v = 0;
		cr_assert_eq(sym_elf_vaddr_from_offset(e, sh.sh_offset, &v), 0);
		cr_assert_eq(v, sh.sh_addr, "section at offset 0x%" PRIx64, (uint64_t)sh.sh_offset);
		cr_assert_eq(sym_elf_vaddr_from_offset(e, sh.sh_offset + sh.sh_size - 1, &v), 0);
		cr_assert_eq(v, sh.sh_addr + sh.sh_size - 1);
		checked++;
	}
	cr_assert_gt(checked, 5);

	/* The symbol the profiler would see: outer_loop's file offset maps back to nm's vaddr. */
	uint64_t outer = nm_addr(bin, "outer_loop", false, NULL), v = 0;
	scn = NULL;
	bool mapped = false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		gelf_getshdr(scn, &sh);
		if (sh.sh_type == SHT_PROGBITS && outer >= sh.sh_addr &&
		    outer < sh.sh_addr + sh.sh_size) {
			cr_assert_eq(sym_elf_vaddr_from_offset(e, outer - sh.sh_addr + sh.sh_offset,
							       &v),
				     0);
			cr_assert_eq(v, outer);
			mapped = true;
		}
	}
	cr_assert(mapped);

	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(sym_elf_vaddr_from_offset(e, (uint64_t)st.st_size + 0x100000, &v), -ENOENT);
	cr_assert_eq(sym_elf_vaddr_from_offset(e, UINT64_MAX, &v), -ENOENT);

	elf_end(elf);
	close(fd);
	sym_elf_free(e);
}

Test(symbolize, vaddr_from_offset_pie)
{
	sh("gcc -O2 -g -fPIE -pie -o '%s' '%s'", tmp("pie"), fixture("inline.c"));
	check_offsets(tmp("pie"));
}

Test(symbolize, vaddr_from_offset_non_pie)
{
	sh("gcc -O2 -fno-PIE -no-pie -o '%s' '%s'", tmp("nopie"), fixture("inline.c"));
	check_offsets(tmp("nopie"));
}

/* ---- open errors and hostile files -------------------------------------------------------- */

Test(symbolize, open_rejects_non_elf)
{
	sh("printf 'hello, not an ELF file\\n' > '%s'", tmp("text"));
	cr_assert_eq(open_elf_err(tmp("text")), -ENOEXEC);
	sh(": > '%s'", tmp("empty"));
	cr_assert_eq(open_elf_err(tmp("empty")), -ENOEXEC);
	sh("gcc -c -o '%s' '%s'", tmp("obj.o"), fixture("inline.c"));
	cr_assert_eq(open_elf_err(tmp("obj.o")), -ENOEXEC);
	/* gzip'd ELF: libdwfl would inflate it; we refuse it up front. */
	sh("gcc -O2 -o '%s' '%s' && gzip -c '%s' > '%s'", tmp("bin"), fixture("inline.c"),
	   tmp("bin"), tmp("bin.gz"));
	cr_assert_eq(open_elf_err(tmp("bin.gz")), -ENOEXEC);

	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sym_elf *e = NULL;
	cr_assert_eq(sym_elf_open(dfd, tmpdir, &e), -EISDIR);
	close(dfd);
	cr_assert_eq(sym_elf_open(-1, "x", &e), -EINVAL);
	cr_assert_null(e);

	/* Larger than SYM_MAX_FILE_SIZE (sparse: no disk space used). */
	sh("cp '%s' '%s' && truncate -s %llu '%s'", tmp("bin"), tmp("huge"),
	   SYM_MAX_FILE_SIZE + 1, tmp("huge"));
	cr_assert_eq(open_elf_err(tmp("huge")), -EFBIG);

	/* NULL-safe frees. */
	sym_elf_free(NULL);
	kallsyms_free(NULL);
}

/* Write `n` bytes of `src` into a new file with byte `at` replaced by `val` (at < 0: none). */
static void copy_patched(const char *src, const char *dst, size_t n, long at, const void *val,
			 size_t val_len)
{
	FILE *in = fopen(src, "re");
	cr_assert_not_null(in);
	char *buf = malloc(n);
	cr_assert_not_null(buf);
	size_t got = fread(buf, 1, n, in);
	fclose(in);
	if (at >= 0) {
		cr_assert_leq((size_t)at + val_len, got);
		memcpy(buf + at, val, val_len);
	}
	FILE *out = fopen(dst, "we");
	cr_assert_not_null(out);
	cr_assert_eq(fwrite(buf, 1, got, out), got);
	fclose(out);
	free(buf);
}

Test(symbolize, truncated_and_corrupt_files_do_not_crash)
{
	const char *bin = tmp("inline");
	sh("gcc -O2 -g -Wl,--build-id=0x00112233445566778899aabbccddeeff -o '%s' '%s'", bin,
	   fixture("inline.c"));
	struct stat st;
	cr_assert_eq(stat(bin, &st), 0);
	uint64_t outer = nm_addr(bin, "outer_loop", false, NULL);

	/* Cut at many points: open may fail or succeed, lookups must stay safe. */
	size_t cuts[] = { 16, 63, 64, 100, 500, 4096, (size_t)st.st_size / 2,
			  (size_t)st.st_size - 1 };
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		copy_patched(bin, tmp("cut"), cuts[i], -1, NULL, 0);
		int fd = open(tmp("cut"), O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fd, 0);
		struct sym_elf *e = NULL;
		if (sym_elf_open(fd, tmp("cut"), &e) == 0) {
			struct sym_result r;
			cr_assert_eq(sym_elf_lookup(e, outer + 8, true, &r), 0);
			cr_assert_leq(r.n_frames, SYM_MAX_INLINE);
			(void)sym_elf_has_lines(e);
			(void)sym_elf_has_symbols(e);
			sym_elf_free(e);
		}
		struct elf_ident id;
		int r = elf_identify_fd(fd, &id);
		cr_assert(r == 0 || r == -ENOEXEC, "cut %zu: %d", cuts[i], r);
		close(fd);
	}

	/* Locate the build-id note via readelf and give it an absurd descsz. */
	char *out = capture("readelf -SW '%s' | awk '{ for (i = 1; i < NF; i++) "
			    "if ($i == \".note.gnu.build-id\") print $(i + 3) }'",
			    bin);
	long note_off = strtol(out, NULL, 16);
	free(out);
	cr_assert_gt(note_off, 0);
	uint32_t big = 0x7ffffff0;
	copy_patched(bin, tmp("badnote"), (size_t)st.st_size, note_off + 4, &big, sizeof(big));
	int fd = open(tmp("badnote"), O_RDONLY | O_CLOEXEC);
	struct elf_ident id;
	cr_assert_eq(elf_identify_fd(fd, &id), 0);
	cr_assert_eq(id.build_id_len, 0);
	close(fd);

	/* A 65-byte build-id does not fit struct elf_ident: reported as none, not truncated. */
	uint32_t d65 = 65;
	copy_patched(bin, tmp("longnote"), (size_t)st.st_size, note_off + 4, &d65, sizeof(d65));
	fd = open(tmp("longnote"), O_RDONLY | O_CLOEXEC);
	cr_assert_eq(elf_identify_fd(fd, &id), 0);
	cr_assert_eq(id.build_id_len, 0);
	close(fd);
}

static uint32_t xorshift32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

Test(symbolize, random_corruption_is_survivable)
{
	/* Deterministic byte flips, half in the headers, half anywhere (DWARF included). Any
	 * outcome is fine except a crash, a sanitizer report or a leak. */
	const char *bin = tmp("inline");
	sh("gcc -O2 -g -o '%s' '%s'", bin, fixture("inline.c"));
	uint64_t size, outer = nm_addr(bin, "outer_loop", false, &size);

	FILE *f = fopen(bin, "re");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	size_t len = (size_t)ftell(f);
	rewind(f);
	uint8_t *orig = malloc(len), *buf = malloc(len);
	cr_assert(orig && buf);
	cr_assert_eq(fread(orig, 1, len, f), len);
	fclose(f);

	uint32_t seed = 0x9e3779b9;
	int opened = 0;
	for (int iter = 0; iter < 1000; iter++) {
		memcpy(buf, orig, len);
		int flips = 1 + (int)(xorshift32(&seed) % 8);
		for (int i = 0; i < flips; i++) {
			size_t span = (iter & 1) ? len : MIN(len, (size_t)4096);
			buf[xorshift32(&seed) % span] = (uint8_t)xorshift32(&seed);
		}
		FILE *out = fopen(tmp("fuzz"), "we");
		cr_assert_not_null(out);
		cr_assert_eq(fwrite(buf, 1, len, out), len);
		fclose(out);

		int fd = open(tmp("fuzz"), O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fd, 0);
		struct elf_ident id = {};
		int r = elf_identify_fd(fd, &id);
		cr_assert(r == 0 || r == -ENOEXEC);
		cr_assert_leq(id.build_id_len, sizeof(id.build_id));

		struct sym_elf *e = NULL;
		if (sym_elf_open(fd, tmp("fuzz"), &e) == 0) {
			opened++;
			for (uint64_t a = outer; a < outer + size; a += 3) {
				struct sym_result res;
				cr_assert_eq(sym_elf_lookup(e, a, true, &res), 0);
				cr_assert_leq(res.n_frames, SYM_MAX_INLINE);
				for (size_t k = 0; k < res.n_frames; k++)
					cr_assert_not_null(res.frames[k].name);
			}
			uint64_t v;
			(void)sym_elf_vaddr_from_offset(e, outer & 0xfff, &v);
			(void)sym_elf_has_lines(e);
			(void)sym_elf_has_symbols(e);
			sym_elf_free(e);
		}
		close(fd);
	}
	/* Most single flips leave the file usable: the loop above did exercise lookups. */
	cr_assert_gt(opened, 200);
	free(orig);
	free(buf);
}

/* ---- identification ----------------------------------------------------------------------- */

/* The "Build ID:" readelf -n prints, or "" when there is none. */
static void readelf_build_id(const char *bin, char *buf, size_t size)
{
	char *out = capture("readelf -n '%s' | awk '$1 == \"Build\" && $2 == \"ID:\" {print $3}'",
			    bin);
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	snprintf(buf, size, "%s", out);
	free(out);
}

static void identify(const char *path, struct elf_ident *id)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	/* The fd's position is irrelevant and untouched. */
	cr_assert_eq(lseek(fd, 7, SEEK_SET), 7);
	cr_assert_eq(elf_identify_fd(fd, id), 0, "elf_identify_fd(%s)", path);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 7);
	close(fd);
}

Test(symbolize, identify_build_id)
{
	struct elf_ident self, id;
	char hex[2 * sizeof(id.build_id) + 1], ref[256];

	identify("/proc/self/exe", &self);

	sh("gcc -O2 -Wl,--build-id=sha1 -fPIE -pie -o '%s' '%s'", tmp("sha1"), fixture("inline.c"));
	identify(tmp("sha1"), &id);
	cr_assert_eq(id.e_type, ET_DYN);
	cr_assert_eq(id.e_machine, self.e_machine);
	cr_assert_eq(id.build_id_len, 20);
	cr_assert_eq(build_id_to_hex(id.build_id, id.build_id_len, hex, sizeof(hex)), 40);
	readelf_build_id(tmp("sha1"), ref, sizeof(ref));
	cr_assert_str_eq(hex, ref);

	sh("gcc -O2 -no-pie -Wl,--build-id=0x0123456789abcdef -o '%s' '%s'", tmp("fixed"),
	   fixture("inline.c"));
	identify(tmp("fixed"), &id);
	cr_assert_eq(id.e_type, ET_EXEC);
	const uint8_t expect[] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	cr_assert_eq(id.build_id_len, sizeof(expect));
	cr_assert_arr_eq(id.build_id, expect, sizeof(expect));

	sh("gcc -O2 -Wl,--build-id=none -o '%s' '%s'", tmp("noid"), fixture("inline.c"));
	identify(tmp("noid"), &id);
	cr_assert_eq(id.build_id_len, 0);
	readelf_build_id(tmp("noid"), ref, sizeof(ref));
	cr_assert_str_eq(ref, "");

	/* A relocatable object has no program headers: the section fallback finds the note. */
	sh("gcc -c -o '%s' '%s' && ld -r --build-id=sha1 -o '%s' '%s'", tmp("a.o"),
	   fixture("libdyn.c"), tmp("r.o"), tmp("a.o"));
	identify(tmp("r.o"), &id);
	cr_assert_eq(id.e_type, ET_REL);
	cr_assert_eq(build_id_to_hex(id.build_id, id.build_id_len, hex, sizeof(hex)), 40);
	readelf_build_id(tmp("r.o"), ref, sizeof(ref));
	cr_assert_str_eq(hex, ref);

	sh("printf 'not elf' > '%s'", tmp("text"));
	int fd = open(tmp("text"), O_RDONLY | O_CLOEXEC);
	cr_assert_eq(elf_identify_fd(fd, &id), -ENOEXEC);
	close(fd);
	cr_assert_eq(elf_identify_fd(-1, &id), -EINVAL);
}

Test(symbolize, build_id_to_hex)
{
	const uint8_t id[] = { 0x00, 0x0f, 0xa5, 0xff };
	char buf[9];
	cr_assert_eq(build_id_to_hex(id, sizeof(id), buf, sizeof(buf)), 8);
	cr_assert_str_eq(buf, "000fa5ff");
	cr_assert_eq(build_id_to_hex(id, sizeof(id), buf, 8), -ENOBUFS);
	cr_assert_eq(build_id_to_hex(id, 0, buf, 1), 0);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(build_id_to_hex(NULL, 4, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(build_id_to_hex(id, 4, NULL, 9), -EINVAL);
}

/* ---- kallsyms ----------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	cr_assert_not_null(f);
	cr_assert_geq(fputs(text, f), 0);
	fclose(f);
}

static void expect_ksym(struct kallsyms *k, uint64_t addr, const char *name, uint64_t start)
{
	const char *n = NULL;
	uint64_t s = 0;
	int r = kallsyms_lookup(k, addr, &n, &s);
	cr_assert_eq(r, 0, "0x%" PRIx64 ": %d", addr, r);
	cr_assert_str_eq(n, name, "0x%" PRIx64, addr);
	cr_assert_eq(s, start, "0x%" PRIx64, addr);
}

Test(symbolize, kallsyms_parse_and_lookup)
{
	/* Unsorted, with modules, data symbols, aliases and junk lines. */
	write_file(tmp("kallsyms"),
		   "ffffffff81002000 T do_syscall_64\n"
		   "ffffffffc0a01000 t ext4_fill_super\t[ext4]\n"
		   "ffffffff81000000 T _stext\n"
		   "ffffffff81000000 t startup_64\n"
		   "ffffffff81001000 t native_write_cr4\n"
		   "ffffffff81001800 d some_data\n"
		   "ffffffff81003000 W weak_fn\n"
		   "ffffffff81004000 T _etext\n"
		   "ffffffffc0a00000 t ext4_init\t[ext4]\n"
		   "ffffffffc0b00000 T bpf_prog_6deef7357e7b4530_prog\t[bpf]\n"
		   "this is not a symbol line\n"
		   "zzzzzzzzzzzzzzzz T bad_hex\n"
		   "ffffffff81005000\n"
		   "ffffffff81006000 TT bad_type\n"
		   "\n"
		   "ffffffff81000500 w weak_local\n"
		   "ffffffff81000800 b bss_thing\n");
	struct kallsyms *k = NULL;
	cr_assert_eq(kallsyms_load(tmp("kallsyms"), &k), 0);

	/* Aliases: the global wins over the local at the same address. */
	expect_ksym(k, 0xffffffff81000000, "_stext", 0xffffffff81000000);
	expect_ksym(k, 0xffffffff810004ff, "_stext", 0xffffffff81000000);
	expect_ksym(k, 0xffffffff81000500, "weak_local", 0xffffffff81000500);
	/* Data symbols are not boundaries: native_write_cr4 runs until do_syscall_64. */
	expect_ksym(k, 0xffffffff81001900, "native_write_cr4", 0xffffffff81001000);
	expect_ksym(k, 0xffffffff81002abc, "do_syscall_64", 0xffffffff81002000);
	expect_ksym(k, 0xffffffff81003001, "weak_fn", 0xffffffff81003000);
	expect_ksym(k, 0xffffffffc0a00010, "ext4_init [ext4]", 0xffffffffc0a00000);
	expect_ksym(k, 0xffffffffc0a01234, "ext4_fill_super [ext4]", 0xffffffffc0a01000);
	/* The last symbol covers a bounded span. */
	expect_ksym(k, 0xffffffffc0b00000 + KALLSYMS_LAST_SYMBOL_SIZE - 1,
		    "bpf_prog_6deef7357e7b4530_prog [bpf]", 0xffffffffc0b00000);
	cr_assert_eq(kallsyms_lookup(k, 0xffffffffc0b00000 + KALLSYMS_LAST_SYMBOL_SIZE, NULL,
				     NULL),
		     -ENOENT);
	cr_assert_eq(kallsyms_lookup(k, 0xffffffff80ffffff, NULL, NULL), -ENOENT);
	cr_assert_eq(kallsyms_lookup(k, 0, NULL, NULL), -ENOENT);
	/* Junk did not become symbols. */
	const char *n;
	cr_assert_eq(kallsyms_lookup(k, 0xffffffff81006000, &n, NULL), 0);
	cr_assert_str_eq(n, "_etext");
	kallsyms_free(k);
}

Test(symbolize, kallsyms_errors)
{
	struct kallsyms *k = NULL;

	/* kptr_restrict: every address reads as zero. */
	write_file(tmp("zeros"), "0000000000000000 T _stext\n"
				 "0000000000000000 t foo\t[mod]\n"
				 "0000000000000000 D data\n");
	cr_assert_eq(kallsyms_load(tmp("zeros"), &k), -EACCES);
	cr_assert_null(k);

	write_file(tmp("empty"), "");
	cr_assert_eq(kallsyms_load(tmp("empty"), &k), -ENODATA);
	write_file(tmp("dataonly"), "ffffffff81000000 D data\n");
	cr_assert_eq(kallsyms_load(tmp("dataonly"), &k), -ENODATA);

	/* An absurdly long line means this is not kallsyms. */
	char *lng = malloc(KALLSYMS_MAX_LINE * 2 + 64);
	cr_assert_not_null(lng);
	int off = sprintf(lng, "ffffffff81000000 T ");
	memset(lng + off, 'x', KALLSYMS_MAX_LINE * 2);
	strcpy(lng + off + KALLSYMS_MAX_LINE * 2, "\nffffffff81001000 T ok\n");
	write_file(tmp("long"), lng);
	free(lng);
	cr_assert_eq(kallsyms_load(tmp("long"), &k), -EBADMSG);

	cr_assert_eq(kallsyms_load(tmp("does-not-exist"), &k), -ENOENT);
	cr_assert_null(k);

	/* The real file loads, or reports kptr_restrict. */
	int r = kallsyms_load("/proc/kallsyms", &k);
	cr_assert(r == 0 || r == -EACCES, "/proc/kallsyms: %d", r);
	if (r == 0) {
		char *out = capture("awk '$2 == \"T\" && $1 != \"0000000000000000\" "
				    "{print $1; exit}' /proc/kallsyms");
		uint64_t a = strtoull(out, NULL, 16);
		free(out);
		const char *name;
		uint64_t start;
		cr_assert_eq(kallsyms_lookup(k, a, &name, &start), 0);
		cr_assert_eq(start, a);
		kallsyms_free(k);
	}
}

Test(symbolize, kallsyms_random_input)
{
	/* Fragments of real lines glued at random with junk: never a crash, and whatever
	 * loads answers lookups consistently. */
	static const char *frags[] = { "ffffffff81000000", "0000000000000000", " ", "\t", "T",
				       "t", "W", "d", "foo", "[mod]", "[", "]", "\n", "zz",
				       "ffffffffffffffff", "1", "bar_baz" };
	uint32_t seed = 0x1234567;
	for (int iter = 0; iter < 300; iter++) {
		FILE *f = fopen(tmp("krand"), "we");
		cr_assert_not_null(f);
		int n = (int)(xorshift32(&seed) % 400);
		for (int i = 0; i < n; i++)
			fputs(frags[xorshift32(&seed) % ARRAY_SIZE(frags)], f);
		fclose(f);

		struct kallsyms *k = NULL;
		int r = kallsyms_load(tmp("krand"), &k);
		cr_assert(r == 0 || r == -EACCES || r == -ENODATA, "iter %d: %d", iter, r);
		if (r < 0) {
			cr_assert_null(k);
			continue;
		}
		for (int i = 0; i < 16; i++) {
			uint64_t a = 0xffffffff81000000ull + (xorshift32(&seed) % 8192) - 4096;
			const char *name = NULL;
			uint64_t start = 0;
			if (kallsyms_lookup(k, a, &name, &start) == 0) {
				cr_assert_leq(start, a);
				cr_assert_not_null(name);
				cr_assert_gt(strlen(name), 0);
			}
		}
		kallsyms_free(k);
	}
}
