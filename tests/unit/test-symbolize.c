/* SPDX-License-Identifier: MIT */
/*
 * Symbolizer tests. Fixtures (tests/fixtures/) are compiled here, per test, into a temporary
 * directory; expected answers come from independent tools: nm for symbol addresses, the
 * @MARKER comments in the fixture sources for line numbers, eu-addr2line -f -i -C for whole
 * inline chains, readelf -n for build-ids, c++filt-style strings for demangling, a brute-force
 * scan for perf map overlaps, a local stand-in server for debuginfod.
 */
#include <criterion/criterion.h>

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "symbolize/internal.h"
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
		/* "addr size type name", or "addr type name" for zero-size symbols. */
		char *tok[4], *save = NULL;
		int k = 0;
		for (char *t = strtok_r(line, " \t", &save); t && k < 4;
		     t = strtok_r(NULL, " \t", &save))
			tok[k++] = t;
		if (k >= 3 && strcmp(tok[k - 1], sym) == 0) {
			addr = strtoull(tok[0], NULL, 16);
			size = k == 4 ? strtoull(tok[1], NULL, 16) : 0;
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

/*
 * Opened as a binary the user named: its root is the host's "/", so the debug-file search
 * looks next to it too (sym_elf_open() alone knows no root: debug dirs only).
 */
static struct sym_elf *open_elf_in(const char *path, const char *const *dirs)
{
	struct sym_root *root = NULL;
	cr_assert_eq(sym_root_open("/", &root), 0);
	struct sym_elf_options o = { .debug_dirs = dirs, .root = root };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", path);
	struct sym_elf *e = NULL;
	int r = sym_elf_open_with(fd, path, &o, &e);
	cr_assert_eq(r, 0, "sym_elf_open_with(%s): %s", path, strerror(-r));
	close(fd);
	/* The sym_elf holds its own reference. */
	cr_assert_eq(sym_root_refs(root), 2);
	sym_root_unref(root);
	return e;
}

static struct sym_elf *open_elf_mode(const char *path, enum sym_demangle_mode mode)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", path);
	struct sym_elf_options o = { .demangle = mode };
	struct sym_elf *e = NULL;
	int r = sym_elf_open_with(fd, path, &o, &e);
	cr_assert_eq(r, 0, "sym_elf_open_with(%s): %s", path, strerror(-r));
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

/* Addresses per eu-addr2line command line (capture() takes commands up to 64 KiB). */
#define REF_BATCH 2000

/*
 * `eu-addr2line -a -f -i -C <opts>` for many addresses at once; one ref_result per address.
 * Names it cannot find read "??".
 */
static void ref_addr2line_opts(const char *bin, const char *opts, const uint64_t *addrs, size_t n,
			       struct ref_result *out)
{
	if (n > REF_BATCH) {
		for (size_t i = 0; i < n; i += REF_BATCH)
			ref_addr2line_opts(bin, opts, addrs + i, MIN(n - i, (size_t)REF_BATCH),
					   out + i);
		return;
	}
	size_t cap = 256 + n * 20;
	char *args = malloc(cap);
	cr_assert_not_null(args);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(args + len, cap - len, " 0x%" PRIx64, addrs[i]);
	/* It exits with 1 when some address had no name; the records still say which. */
	char *text = capture("eu-addr2line -a -f -i -C %s -e '%s'%s || [ $? -eq 1 ]", opts, bin,
			     args);
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

static void ref_addr2line(const char *bin, const uint64_t *addrs, size_t n, struct ref_result *out)
{
	ref_addr2line_opts(bin, "", addrs, n, out);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* inlines=false must give exactly the outermost frame of the inline chain. */
static void expect_outer_only(struct sym_elf *e, uint64_t addr, const struct sym_result *full)
{
	struct sym_result one;
	cr_assert_eq(sym_elf_lookup(e, addr, false, &one), 0);
	cr_assert_eq(one.source, full->source, "0x%" PRIx64, addr);
	if (full->n_frames == 0) {
		cr_assert_eq(one.n_frames, 0, "0x%" PRIx64, addr);
		return;
	}
	cr_assert_eq(one.n_frames, 1, "0x%" PRIx64, addr);
	const struct sym_frame *x = &full->frames[full->n_frames - 1], *y = &one.frames[0];
	cr_assert_str_eq(y->name, x->name, "0x%" PRIx64, addr);
	cr_assert_str_eq(y->system_name, x->system_name, "0x%" PRIx64, addr);
	cr_assert(same_str(y->file, x->file), "0x%" PRIx64 ": %s vs %s", addr, y->file, x->file);
	cr_assert_eq(y->line, x->line, "0x%" PRIx64 " (%s)", addr, x->name);
	cr_assert_eq(y->column, x->column, "0x%" PRIx64, addr);
	cr_assert_eq(y->decl_line, x->decl_line, "0x%" PRIx64, addr);
	cr_assert_eq(y->sym_start, x->sym_start, "0x%" PRIx64, addr);
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
 * eu-addr2line: same number of frames, same names, same file:line:column; and the lookup
 * without inlines with the chain's outermost frame. Results are kept in `res` (size entries).
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
		expect_outer_only(e, addrs[i], r);
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
	unsigned d_leaf = marker_line("inline.c", "DECL_LEAF");
	unsigned d_mid = marker_line("inline.c", "DECL_MIDDLE");
	unsigned d_outer = marker_line("inline.c", "DECL_OUTER");
	int chains = 0, body_hits = 0;
	for (uint64_t i = 0; i < size; i++) {
		struct sym_result *r = &res[i];
		cr_assert_geq(r->n_frames, 1);
		const struct sym_frame *last = &r->frames[r->n_frames - 1];
		cr_assert_str_eq(last->name, "outer_loop");
		cr_assert_eq(last->sym_start, start);
		/* Each function's declaration line, inlined instances included (their abstract
		 * origin carries it). */
		cr_assert_eq(last->decl_line, d_outer);
		if (r->n_frames != 3)
			continue;
		cr_assert_eq(r->frames[0].decl_line, d_leaf);
		cr_assert_eq(r->frames[1].decl_line, d_mid);
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

/* DWARF compressed in the binary (-gz): what profd inflates itself answers as libdw would. */
Test(symbolize, inline_chain_compressed_dwarf)
{
	sh("gcc -O2 -g -gz=zlib -fPIE -pie -o '%s' '%s'", tmp("inline-gz"), fixture("inline.c"));
	check_inline_binary(tmp("inline-gz"));
}

/* Section headers of an ELF file, through libelf, by name: flags, type and size. */
static bool section_info(int fd, const char *want, GElf_Shdr *ret)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	bool found = false;

	cr_assert_not_null(elf, "%s", elf_errmsg(-1));
	cr_assert_eq(elf_getshdrstrndx(elf, &shstrndx), 0);
	while (!found && (scn = elf_nextscn(elf, scn))) {
		const char *name;

		cr_assert_not_null(gelf_getshdr(scn, ret));
		name = elf_strptr(elf, shstrndx, ret->sh_name);
		found = name && !strcmp(name, want);
	}
	elf_end(elf);
	return found;
}

Test(symbolize, inflate_debug_sections)
{
	GElf_Shdr info, line;
	int fd, ifd = -1;

	elf_version(EV_CURRENT);
	sh("gcc -O2 -g -gz=zlib -o '%s' '%s'", tmp("inflate-gz"), fixture("inline.c"));
	sh("gcc -O2 -g -o '%s' '%s'", tmp("inflate-plain"), fixture("inline.c"));

	/* Compressed: an inflated copy, every .debug_* section plain, the code untouched. */
	fd = open(tmp("inflate-gz"), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert(section_info(fd, ".debug_info", &info));
	cr_assert(info.sh_flags & SHF_COMPRESSED, "the fixture's DWARF is compressed");
	cr_assert_eq(sym_inflate_debug_sections(fd, &ifd), 0);
	cr_assert_geq(ifd, 0);
	cr_assert(section_info(ifd, ".debug_info", &info));
	cr_assert_not(info.sh_flags & SHF_COMPRESSED);
	cr_assert(section_info(ifd, ".debug_line", &line));
	cr_assert_not(line.sh_flags & SHF_COMPRESSED);
	cr_assert_gt(line.sh_size, 0);
	if (section_info(ifd, ".debug_loclists", &info))
		cr_assert_eq(info.sh_type, SHT_NOBITS, "location lists are left out");
	{
		struct elf_ident a, b;

		cr_assert_eq(elf_identify_fd(fd, &a), 0);
		cr_assert_eq(elf_identify_fd(ifd, &b), 0);
		cr_assert_eq(a.build_id_len, b.build_id_len);
		cr_assert_eq(memcmp(a.build_id, b.build_id, a.build_id_len), 0);
	}
	close(ifd);

	/* Nothing compressed: nothing to do. */
	int pfd = open(tmp("inflate-plain"), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pfd, 0);
	ifd = 12345;
	cr_assert_eq(sym_inflate_debug_sections(pfd, &ifd), -ENODATA);
	cr_assert_eq(ifd, -1);
	close(pfd);

	/* Damaged copies: cut anywhere, or a lying header byte: -ENODATA or a copy, no crash. */
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	uint8_t *orig = malloc(st.st_size);
	cr_assert_not_null(orig);
	cr_assert_eq(pread(fd, orig, st.st_size, 0), st.st_size);
	srand(7);
	for (int round = 0; round < 300; round++) {
		int dfd = memfd_create("damaged", MFD_CLOEXEC);
		off_t len = st.st_size;
		uint8_t *copy = malloc(st.st_size);

		cr_assert_geq(dfd, 0);
		cr_assert_not_null(copy);
		memcpy(copy, orig, st.st_size);
		if (round % 2)
			len = rand() % st.st_size;
		else
			for (int k = 0; k < 8; k++)
				copy[rand() % st.st_size] = (uint8_t)rand();
		cr_assert_eq(write(dfd, copy, len), len);
		int r = sym_inflate_debug_sections(dfd, &ifd);
		cr_assert(r == 0 || r == -ENODATA, "round %d: %d", round, r);
		if (r == 0) {
			cr_assert_geq(ifd, 0);
			close(ifd);
		}
		close(dfd);
		free(copy);
	}
	free(orig);
	close(fd);
}

/* ---- C++: demangling, templates, inlined member functions ----------------------------------- */

Test(symbolize, cxx_names_match_eu_addr2line)
{
	const char *bin = tmp("templates");
	sh("g++ -O2 -g -o '%s' '%s'", bin, fixture("templates.cc"));
	/* eu-addr2line -C prints c++filt's full form. */
	struct sym_elf *e = open_elf_mode(bin, SYM_DEMANGLE_FULL);

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
	e = open_elf_mode(tmp("templates-nodebug"), SYM_DEMANGLE_FULL);
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

/* ---- naming rule: every frame of the C++ fixture against pprof's demangler ----------------- */

/* Mangled names of the fixture's functions that are only ever inlined (no symbol, and GCC
 * gives their DWARF no linkage name): what the Itanium ABI names them. */
static const char *const names_inline_only[] = {
	"_ZZN3tgt11run_lambdasEjENKUljjE_clEjj", /* the std::sort comparator */
	"_ZN3tgt12_GLOBAL__N_13mixEj",           /* tgt::(anonymous namespace)::mix */
	"_ZNK3tgt3BoxImE4foldEm",
	"_ZZNK3tgt3BoxImE5totalEjENKUlmjE_clEmj", /* the step lambda */
};

struct ref_names {
	char **mangled, **demangled;
	size_t n;
};

/* <build>/demangle-ref: this binary is <build>/tests/unit/test-symbolize. */
static const char *demangle_ref_path(void)
{
	static char p[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", p, sizeof(p) - 32);
	cr_assert_gt(n, 0);
	p[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *sl = strrchr(p, '/');
		cr_assert_not_null(sl);
		*sl = '\0';
	}
	strcat(p, "/demangle-ref");
	cr_assert_eq(access(p, X_OK), 0, "%s missing: make builds it", p);
	return p;
}

/* demangle-ref MODE over `names` (pprof's demangler, tests/tools/demangle-ref.go). */
static void ref_demangle(char **names, size_t n, const char *mode, struct ref_names *ret)
{
	const char *in = tmp("ref-in"), *out = tmp("ref-out");
	FILE *f = fopen(in, "we");
	cr_assert_not_null(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", names[i]);
	cr_assert_eq(fclose(f), 0);
	sh("'%s' %s < '%s' > '%s'", demangle_ref_path(), mode, in, out);
	f = fopen(out, "re");
	cr_assert_not_null(f);
	ret->mangled = names;
	ret->n = n;
	ret->demangled = calloc(n ? n : 1, sizeof(char *));
	cr_assert_not_null(ret->demangled);
	char *line = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		ssize_t len = getline(&line, &cap, f);
		cr_assert_gt(len, 0, "demangle-ref gave fewer lines than names");
		line[strcspn(line, "\n")] = '\0';
		ret->demangled[i] = strdup(line);
	}
	free(line);
	fclose(f);
}

static const char *ref_find(const struct ref_names *r, const char *mangled)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->mangled[i], mangled))
			return r->demangled[i];
	return NULL;
}

static bool ref_has_value(const struct ref_names *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->demangled[i], name))
			return true;
	return false;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

Test(symbolize, cxx_names_one_rule_every_frame)
{
	static const char *const modes[] = { "simple", "templates", "full", "none" };
	const char *bin = tmp("names");
	sh("g++ -O2 -g -o '%s' '%s'", bin, fixture("names.cc"));

	/* Every sized function symbol of the binary: its name and a few addresses in it. */
	char *out = capture("nm -S --defined-only '%s'", bin);
	uint64_t starts[256], sizes[256];
	size_t n_syms = 0;
	for (char *line = strtok(out, "\n"); line && n_syms < 256; line = strtok(NULL, "\n")) {
		char name[4096], type;
		unsigned long long a, sz;
		if (sscanf(line, "%llx %llx %c %4095s", &a, &sz, &type, name) != 4 || sz == 0 ||
		    !strchr("tTwW", type) || (strncmp(name, "_Z", 2) && strcmp(name, "main")))
			continue;
		starts[n_syms] = a;
		sizes[n_syms++] = sz;
	}
	free(out);
	cr_assert_gt(n_syms, 10);

	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		enum sym_demangle_mode mode;
		cr_assert_eq(sym_demangle_mode_from_string(modes[m], &mode), 0);
		cr_assert_str_eq(sym_demangle_mode_to_string(mode), modes[m]);
		struct sym_elf *e = open_elf_mode(bin, mode);

		/* First pass: the frames, and the mangled names they carry. */
		size_t n_res = n_syms * 5;
		struct sym_result *res = calloc(n_res, sizeof(*res));
		char **mangled = calloc(n_res * SYM_MAX_INLINE + ARRAY_SIZE(names_inline_only),
					sizeof(char *));
		cr_assert(res && mangled);
		size_t n_mangled = 0;
		for (size_t i = 0; i < n_syms; i++)
			for (int k = 0; k < 5; k++) {
				uint64_t a = starts[i] + sizes[i] * (uint64_t)k / 5;
				struct sym_result *r = &res[i * 5 + k];
				cr_assert_eq(sym_elf_lookup(e, a, true, r), 0);
				cr_assert_eq(r->source, SYM_SOURCE_DWARF, "%s: %#" PRIx64, modes[m], a);
				for (size_t f = 0; f < r->n_frames; f++)
					if (!strncmp(r->frames[f].system_name, "_Z", 2))
						mangled[n_mangled++] = strdup(r->frames[f].system_name);
			}
		size_t n_own = n_mangled;
		for (size_t i = 0; i < ARRAY_SIZE(names_inline_only); i++)
			mangled[n_mangled++] = strdup(names_inline_only[i]);
		struct ref_names ref, ref_tmpl;
		ref_demangle(mangled, n_mangled, modes[m], &ref);
		ref_demangle(mangled, n_mangled, "templates", &ref_tmpl);

		unsigned n_frames = 0, n_inlined = 0, n_dwarf_named = 0, n_lambda = 0, n_sort = 0;
		for (size_t i = 0; i < n_res; i++) {
			const struct sym_result *r = &res[i];
			for (size_t f = 0; f < r->n_frames; f++) {
				const struct sym_frame *fr = &r->frames[f];
				n_frames++;
				n_inlined += f + 1 < r->n_frames;
				cr_assert(strcmp(fr->name, "operator()") != 0 &&
					      strncmp(fr->name, "operator()", 10) != 0,
					  "%s: bare %s (%s)", modes[m], fr->name, fr->system_name);
				if (!strncmp(fr->system_name, "_Z", 2)) {
					/* Named from a linkage name: exactly pprof's demangling. */
					const char *want = ref_find(&ref, fr->system_name);
					cr_assert_not_null(want);
					cr_assert_str_eq(fr->name, want, "%s: %s: %s", modes[m],
							 fr->system_name, fr->name);
				} else if (!strcmp(fr->name, "main")) {
					cr_assert_str_eq(fr->system_name, "main");
				} else {
					/* Named from DWARF: qualified; system_name the plain
					 * DW_AT_name, so that pprof keeps the name as it is. */
					n_dwarf_named++;
					cr_assert_str_neq(fr->name, fr->system_name);
					cr_assert(strstr(fr->name, "::"), "%s: unqualified %s",
						  modes[m], fr->name);
					if (fr->file && has_suffix(fr->file, "names.cc")) {
						/* The fixture's own inline-only functions: as pprof
						 * demangles their Itanium names (in full and none, the
						 * no-parameter form: DWARF gives no mangled name). */
						const struct ref_names *want =
						    mode == SYM_DEMANGLE_SIMPLE ? &ref : &ref_tmpl;
						cr_assert(ref_has_value(want, fr->name),
							  "%s: %s is no demangled name", modes[m],
							  fr->name);
					} else if (mode == SYM_DEMANGLE_SIMPLE) {
						cr_assert_null(strchr(fr->name, '<'), "%s", fr->name);
					}
				}
				if (strstr(fr->name, "run_lambdas(unsigned int)::{lambda(unsigned "
							 "int, unsigned int)#1}::operator()"))
					n_lambda++;
				if (mode == SYM_DEMANGLE_SIMPLE &&
				    !strcmp(fr->name, "std::__introsort_loop"))
					n_sort++;
			}
		}
		cr_assert_gt(n_inlined, 10, "%s: %u inlined frames", modes[m], n_inlined);
		cr_assert_gt(n_dwarf_named, 0);
		if (mode != SYM_DEMANGLE_NONE)
			cr_assert_gt(n_lambda, 0, "%s: the sort lambda never named", modes[m]);
		if (mode == SYM_DEMANGLE_SIMPLE)
			cr_assert_gt(n_sort, 0);
		(void)n_own;

		for (size_t i = 0; i < n_mangled; i++) {
			free(ref.demangled[i]);
			free(ref_tmpl.demangled[i]);
			free(mangled[i]);
		}
		free(ref.demangled);
		free(ref_tmpl.demangled);
		free(mangled);
		free(res);
		sym_elf_free(e);
	}
}

/*
 * Rust (Debian's rustc, legacy mangling): every frame of the crate's functions, in every mode,
 * is c++filt's demangling of its linkage name without the "::h<hash>" suffix (rustc-demangle's
 * alternate form); trait methods keep their "<Type as Trait>::" path in the simple mode too.
 */
Test(symbolize, rust_names_one_rule)
{
	static const char *const modes[] = { "simple", "templates", "full", "none" };
	const char *bin = tmp("rnames"), *list = tmp("rnames.syms"), *filt = tmp("rnames.filt");
	uint64_t starts[64], sizes[64];
	char *mangled[64], *want[64];
	size_t n_syms = 0;

	/* /usr/bin: Debian's rustc, what tools/deps.sh installs, whatever else is on PATH. */
	sh("/usr/bin/rustc -C opt-level=2 -g -o '%s' '%s'", bin, fixture("names.rs"));
	char *out = capture("nm -S --defined-only '%s'", bin);
	for (char *line = strtok(out, "\n"); line && n_syms < 64; line = strtok(NULL, "\n")) {
		char name[4096], type;
		unsigned long long a, sz;
		if (sscanf(line, "%llx %llx %c %4095s", &a, &sz, &type, name) != 4 || sz == 0 ||
		    !strchr("tT", type) || strncmp(name, "_ZN", 3) ||
		    (!strstr(name, "5names") && !strstr(name, "names..geometry")))
			continue;
		starts[n_syms] = a;
		sizes[n_syms] = sz;
		mangled[n_syms++] = strdup(name);
	}
	free(out);
	cr_assert_geq(n_syms, 6, "the fixture's functions are missing from %s", bin);
	FILE *f = fopen(list, "we");
	cr_assert_not_null(f);
	for (size_t i = 0; i < n_syms; i++)
		fprintf(f, "%s\n", mangled[i]);
	fclose(f);
	sh("c++filt < '%s' > '%s'", list, filt);
	f = fopen(filt, "re");
	cr_assert_not_null(f);
	for (size_t i = 0; i < n_syms; i++) {
		char line[8192];
		cr_assert_not_null(fgets(line, sizeof(line), f));
		line[strcspn(line, "\n")] = '\0';
		/* "::h" + 16 hex digits at the end. */
		size_t n = strlen(line);
		cr_assert(n > 19 && !strncmp(line + n - 19, "::h", 3), "%s", line);
		line[n - 19] = '\0';
		want[i] = strdup(line);
	}
	fclose(f);

	unsigned n_trait = 0, n_frames = 0;
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		enum sym_demangle_mode mode;
		cr_assert_eq(sym_demangle_mode_from_string(modes[m], &mode), 0);
		struct sym_elf *e = open_elf_mode(bin, mode);
		for (size_t i = 0; i < n_syms; i++)
			for (int k = 0; k < 5; k++) {
				struct sym_result r;
				uint64_t a = starts[i] + sizes[i] * (uint64_t)k / 5;
				cr_assert_eq(sym_elf_lookup(e, a, true, &r), 0);
				/* Glue rustc emits without DWARF is named from the symbol. */
				cr_assert(r.source == SYM_SOURCE_DWARF ||
					      r.source == SYM_SOURCE_SYMTAB,
					  "%s+%d: %d", mangled[i], k, r.source);
				for (size_t fi = 0; fi < r.n_frames; fi++) {
					const struct sym_frame *fr = &r.frames[fi];
					size_t j;
					n_frames++;
					for (j = 0; j < n_syms; j++)
						if (!strcmp(fr->system_name, mangled[j]))
							break;
					if (j == n_syms) {
						/* A frame of another function (std, inlined). */
						cr_assert(strstr(fr->name, "::"), "%s", fr->name);
						continue;
					}
					const char *w = mode == SYM_DEMANGLE_NONE ? mangled[j]
										 : want[j];
					if (mode == SYM_DEMANGLE_SIMPLE &&
					    !strncmp(w, "core::ptr::drop_in_place<", 25))
						w = "core::ptr::drop_in_place";
					cr_assert_str_eq(fr->name, w, "%s: %s", modes[m],
							 fr->system_name);
					if (mode == SYM_DEMANGLE_SIMPLE &&
					    !strcmp(fr->name, "<names::geometry::Square as "
							      "names::geometry::Shape>::area"))
						n_trait++;
				}
			}
		sym_elf_free(e);
	}
	cr_assert_gt(n_trait, 0);
	cr_assert_geq(n_frames, n_syms * 5 * ARRAY_SIZE(modes));
	for (size_t i = 0; i < n_syms; i++) {
		free(mangled[i]);
		free(want[i]);
	}
}

Test(symbolize, demangle_modes)
{
	char buf[512];

	/* The template stripper keeps operators and Rust qualified paths. */
	cr_assert_geq(sym_demangle_as("_ZNSt6vectorIiSaIiEE9push_backERKi", SYM_DEMANGLE_SIMPLE, buf,
				      sizeof(buf)), 0);
	cr_assert_str_eq(buf, "std::vector::push_back");
	cr_assert_geq(sym_demangle_as("_ZNSt6vectorIiSaIiEE9push_backERKi", SYM_DEMANGLE_TEMPLATES,
				      buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "std::vector<int, std::allocator<int> >::push_back");
	cr_assert_geq(sym_demangle_as("_Z3fooi.constprop.0", SYM_DEMANGLE_FULL, buf, sizeof(buf)),
		      0);
	cr_assert_str_eq(buf, "foo(int)");
	cr_assert_eq(sym_demangle_as("_Z3fooi", SYM_DEMANGLE_NONE, buf, sizeof(buf)), -EINVAL);
	cr_assert_geq(sym_demangle_as("_ZltI1AEbRKT_S3_", SYM_DEMANGLE_SIMPLE, buf, sizeof(buf)),
		      0);
	cr_assert_str_eq(buf, "operator<");
	cr_assert_geq(sym_demangle_as("_ZlsI1AEvRKT_", SYM_DEMANGLE_SIMPLE, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "operator<<");

	char s1[] = "<alloc::vec::Vec<u8> as core::ops::drop::Drop>::drop";
	demangle_strip_templates(s1, strlen(s1));
	cr_assert_str_eq(s1, "<alloc::vec::Vec as core::ops::drop::Drop>::drop");
	char s2[] = "core::ptr::drop_in_place::<alloc::vec::Vec<u8>>";
	demangle_strip_templates(s2, strlen(s2));
	cr_assert_str_eq(s2, "core::ptr::drop_in_place");
	char s3[] = "a::b<c(d > e)>::f";
	demangle_strip_templates(s3, strlen(s3));
	cr_assert_str_eq(s3, "a::b::f");
	char s4[] = "broken<a::f";
	demangle_strip_templates(s4, strlen(s4));
	cr_assert_str_eq(s4, "broken<a::f");
	char s5[] = "x::operator->";
	demangle_strip_templates(s5, strlen(s5));
	cr_assert_str_eq(s5, "x::operator->");

	enum sym_demangle_mode mode;
	cr_assert_eq(sym_demangle_mode_from_string("bogus", &mode), -EINVAL);
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
	struct sym_elf *e = open_elf_in(tmp("libdl.so"), NULL);
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

/* ---- the sorted symbol table, against eu-addr2line ----------------------------------------- */

static void write_file(const char *path, const char *text);
static struct sym_elf *open_elf_dirs(const char *path, const char *dir);

/*
 * Hand-written symbols (no DWARF): aliases of each binding, a gap, zero-size symbols, a label
 * inside a sized function, symbols nested both ways, a zero-size symbol at the end of .text.
 * The 0xcc fill between functions is what a gap looks like.
 */
static const char symtab_asm[] =
	"	.text\n"
	/* three aliases, same start and size: the global is the name */
	"	.globl g_func\n	.type g_func, @function\n"
	"	.weak w_alias\n	.type w_alias, @function\n"
	"	.type l_alias, @function\n"
	"l_alias:\nw_alias:\ng_func:\n	.fill 32, 1, 0x90\n"
	"	.size g_func, 32\n	.size w_alias, 32\n	.size l_alias, 32\n"
	/* weak and local: the weak one */
	"	.weak w_only\n	.type w_only, @function\n	.type l_only, @function\n"
	"l_only:\nw_only:\n	.fill 16, 1, 0x90\n	.size w_only, 16\n	.size l_only, 16\n"
	/* a gap: nothing */
	"	.fill 16, 1, 0xcc\n"
	"	.globl after_gap\n	.type after_gap, @function\n"
	"after_gap:\n	.fill 24, 1, 0x90\n	.size after_gap, 24\n"
	/* zero-size: up to the next symbol */
	"	.globl asm_label\n"
	"asm_label:\n	.fill 20, 1, 0x90\n"
	"	.type zero_func, @function\n"
	"zero_func:\n	.fill 12, 1, 0x90\n"
	/* a zero-size label inside a sized function never wins, nor reaches past it */
	"	.globl host\n	.type host, @function\n"
	"host:\n	.fill 8, 1, 0x90\n"
	"	.globl inner_label\n"
	"inner_label:\n	.fill 8, 1, 0x90\n	.size host, 16\n"
	"	.fill 8, 1, 0xcc\n"
	/* a local inside a global: the global everywhere */
	"	.globl outer_g\n	.type outer_g, @function\n"
	"outer_g:\n	.fill 16, 1, 0x90\n"
	"	.type inner_l, @function\n"
	"inner_l:\n	.fill 8, 1, 0x90\n	.size inner_l, 8\n"
	"	.fill 8, 1, 0x90\n	.size outer_g, 32\n"
	/* a global inside a local: the global where it is, the local around it */
	"	.type outer_l, @function\n"
	"outer_l:\n	.fill 16, 1, 0x90\n"
	"	.globl inner_g\n	.type inner_g, @function\n"
	"inner_g:\n	.fill 8, 1, 0x90\n	.size inner_g, 8\n"
	"	.fill 8, 1, 0x90\n	.size outer_l, 32\n"
	/* the last symbol, zero-size: up to the end of .text */
	"	.globl tail_label\n"
	"tail_label:\n	.fill 10, 1, 0x90\n";

/* [start, end) of the section called `name`. */
static void section_range(const char *bin, const char *name, uint64_t *start, uint64_t *end)
{
	int fd = open(bin, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	cr_assert_not_null(elf);
	size_t shstrndx;
	cr_assert_eq(elf_getshdrstrndx(elf, &shstrndx), 0);
	bool found = false;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		cr_assert_not_null(gelf_getshdr(scn, &sh));
		const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
		if (n && strcmp(n, name) == 0) {
			*start = sh.sh_addr;
			*end = sh.sh_addr + sh.sh_size;
			found = true;
		}
	}
	elf_end(elf);
	close(fd);
	cr_assert(found, "%s: no %s", bin, name);
}

/*
 * Every address of addrs[]: our symbol-table answer (source SYMTAB or DYNSYM, or NONE) names
 * what `eu-addr2line -f` prints ("??" for NONE). `eu_opts` keeps eu-addr2line away from debug
 * files where the sym_elf was opened without them. Returns how many addresses had a name.
 */
static size_t compare_symbols_with_eu(struct sym_elf *e, const char *bin, const char *eu_opts,
				      const uint64_t *addrs, size_t n)
{
	struct ref_result *ref = calloc(n, sizeof(*ref));
	cr_assert_not_null(ref);
	ref_addr2line_opts(bin, eu_opts, addrs, n, ref);
	size_t named = 0;
	for (size_t i = 0; i < n; i++) {
		struct sym_result r;
		cr_assert_eq(sym_elf_lookup(e, addrs[i], true, &r), 0);
		cr_assert_eq(ref[i].n, 1);
		if (strcmp(ref[i].f[0].name, "??") == 0) {
			cr_assert_eq(r.source, SYM_SOURCE_NONE,
				     "0x%" PRIx64 ": %s, eu-addr2line ??", addrs[i],
				     r.n_frames ? r.frames[0].name : "");
			continue;
		}
		cr_assert(r.source == SYM_SOURCE_SYMTAB || r.source == SYM_SOURCE_DYNSYM,
			  "0x%" PRIx64 ": source %d", addrs[i], r.source);
		cr_assert_eq(r.n_frames, 1);
		cr_assert_str_eq(r.frames[0].name, ref[i].f[0].name, "0x%" PRIx64, addrs[i]);
		cr_assert_leq(r.frames[0].sym_start, addrs[i]);
		expect_outer_only(e, addrs[i], &r);
		named++;
	}
	free(ref);
	return named;
}

static void expect_sym(struct sym_elf *e, uint64_t addr, enum sym_source source, const char *name,
		       uint64_t start)
{
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, addr, true, &r), 0);
	cr_assert_eq(r.source, source, "0x%" PRIx64 ": source %d", addr, r.source);
	if (!name) {
		cr_assert_eq(r.n_frames, 0, "0x%" PRIx64 ": %s", addr, r.frames[0].name);
		return;
	}
	cr_assert_eq(r.n_frames, 1, "0x%" PRIx64, addr);
	cr_assert_str_eq(r.frames[0].name, name, "0x%" PRIx64, addr);
	cr_assert_eq(r.frames[0].sym_start, start, "0x%" PRIx64 " (%s)", addr, name);
}

Test(symbolize, sorted_symtab_matches_eu_addr2line)
{
	const char *src = tmp("syms.s"), *lib = tmp("libsyms.so");
	write_file(src, symtab_asm);
	sh("gcc -shared -nostdlib -Wl,--build-id=none -o '%s' '%s'", lib, src);
	sh("strip --strip-all -o '%s' '%s'", tmp("libsyms-dyn.so"), lib);

	uint64_t lo, hi;
	section_range(lib, ".text", &lo, &hi);
	cr_assert_eq(hi - lo, 218); /* the fills above, back to back */
	/* Every byte of .text and a few before it. (Not past its end: with no section after
	 * .text, libdwfl 0.188 still gives the first byte past it to the last zero-size symbol;
	 * we stop at the section's end, see below.) */
	size_t n = (size_t)(hi - lo) + 4;
	uint64_t *addrs = calloc(n, sizeof(*addrs));
	cr_assert_not_null(addrs);
	for (size_t i = 0; i < n; i++)
		addrs[i] = lo - 4 + i;

	struct sym_elf *e = open_elf(lib);
	cr_assert_not(sym_elf_has_lines(e));
	/* Named: all but the two gaps. */
	cr_assert_eq(compare_symbols_with_eu(e, lib, "", addrs, n), 218 - 16 - 8);

	/* The rules the comparison just checked, spelled out. */
	const enum sym_source S = SYM_SOURCE_SYMTAB;
	uint64_t g = nm_addr(lib, "g_func", false, NULL), w = nm_addr(lib, "w_only", false, NULL);
	uint64_t ag = nm_addr(lib, "after_gap", false, NULL);
	uint64_t al = nm_addr(lib, "asm_label", false, NULL);
	uint64_t zf = nm_addr(lib, "zero_func", false, NULL);
	uint64_t ho = nm_addr(lib, "host", false, NULL);
	uint64_t og = nm_addr(lib, "outer_g", false, NULL);
	uint64_t ol = nm_addr(lib, "outer_l", false, NULL);
	uint64_t ig = nm_addr(lib, "inner_g", false, NULL);
	uint64_t tl = nm_addr(lib, "tail_label", false, NULL);
	expect_sym(e, g, S, "g_func", g);            /* global over weak and local */
	expect_sym(e, g + 31, S, "g_func", g);       /* the last byte */
	expect_sym(e, w + 15, S, "w_only", w);       /* weak over local */
	expect_sym(e, w + 16, SYM_SOURCE_NONE, NULL, 0); /* a gap between functions */
	expect_sym(e, ag - 1, SYM_SOURCE_NONE, NULL, 0);
	expect_sym(e, ag + 23, S, "after_gap", ag);
	expect_sym(e, al + 19, S, "asm_label", al); /* zero-size: up to the next symbol */
	expect_sym(e, zf, S, "zero_func", zf);
	expect_sym(e, zf + 11, S, "zero_func", zf);
	expect_sym(e, ho + 8, S, "host", ho);        /* not inner_label */
	expect_sym(e, ho + 15, S, "host", ho);
	expect_sym(e, ho + 16, SYM_SOURCE_NONE, NULL, 0);
	expect_sym(e, og + 16, S, "outer_g", og);    /* inner_l is local, outer_g global */
	expect_sym(e, ig, S, "inner_g", ig);
	expect_sym(e, ig + 8, S, "outer_l", ol);
	expect_sym(e, tl + 9, S, "tail_label", tl);  /* up to the end of .text */
	expect_sym(e, tl + 10, SYM_SOURCE_NONE, NULL, 0);
	sym_elf_free(e);

	/* .dynsym alone: the locals are gone, the rest reads the same as eu-addr2line. */
	e = open_elf(tmp("libsyms-dyn.so"));
	cr_assert_eq(compare_symbols_with_eu(e, tmp("libsyms-dyn.so"), "", addrs, n),
		     218 - 16 - 8 - (32 - 8)); /* and outer_l around inner_g */
	expect_sym(e, g + 5, SYM_SOURCE_DYNSYM, "g_func", g);
	expect_sym(e, zf + 3, SYM_SOURCE_DYNSYM, "asm_label", al); /* now up to host */
	expect_sym(e, ig + 8, SYM_SOURCE_NONE, NULL, 0);
	sym_elf_free(e);
	free(addrs);
}

Test(symbolize, sorted_symtab_matches_eu_addr2line_on_libc, .timeout = 120)
{
	/* The libc this test runs on, by its .dynsym (aliases, IFUNCs, versioned names) and
	 * with no debug file on either side. */
	Dl_info info;
	/* Not printf: under ASan that would be libasan's. */
	cr_assert_neq(dladdr((void *)&gnu_get_libc_version, &info), 0);
	cr_assert_not_null(info.dli_fname);
	const char *libc = info.dli_fname;
	uint64_t lo, hi;
	section_range(libc, ".text", &lo, &hi);

	size_t n = 0, cap = (size_t)((hi - lo) / 197 + 1);
	uint64_t *addrs = calloc(cap, sizeof(*addrs));
	cr_assert_not_null(addrs);
	for (uint64_t a = lo; a < hi && n < cap; a += 197)
		addrs[n++] = a;
	struct sym_elf *e = open_elf_dirs(libc, tmp("nodbg"));
	size_t named = compare_symbols_with_eu(e, libc, "--debuginfo-path=/nonexistent", addrs, n);
	cr_assert_gt(named, n / 4, "%zu of %zu named", named, n);
	sym_elf_free(e);
	free(addrs);
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

/* kallsyms_load_for() answers the addresses it was given exactly as kallsyms_load() does. */
static void expect_same_ksyms(const char *path, const uint64_t *addrs, size_t n)
{
	struct kallsyms *all = NULL, *some = NULL;
	int r_all = kallsyms_load(path, &all);
	int r_some = kallsyms_load_for(path, addrs, n, NULL, NULL, &some);

	cr_assert_eq(r_some, r_all, "%s: load_for %d, load %d", path, r_some, r_all);
	if (r_all < 0) {
		cr_assert_null(some);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *na = NULL, *ns = NULL;
		uint64_t sa = 0, ss = 0;
		int ra = kallsyms_lookup(all, addrs[i], &na, &sa);
		int rs = kallsyms_lookup(some, addrs[i], &ns, &ss);

		cr_assert_eq(rs, ra, "%s: 0x%" PRIx64 ": %d vs %d", path, addrs[i], rs, ra);
		if (ra == 0) {
			cr_assert_str_eq(ns, na, "%s: 0x%" PRIx64, path, addrs[i]);
			cr_assert_eq(ss, sa, "%s: 0x%" PRIx64, path, addrs[i]);
		}
	}
	kallsyms_free(all);
	kallsyms_free(some);
}

Test(symbolize, kallsyms_load_for_matches_load)
{
	/* Unsorted, modules, aliases of one rank told apart by name, data symbols, junk. */
	write_file(tmp("kfor"), "ffffffff81002000 T do_syscall_64\n"
				"ffffffffc0a01000 t ext4_fill_super\t[ext4]\n"
				"ffffffff81000000 T _text\n"
				"ffffffff81000000 T _stext\n"
				"ffffffff81000000 t startup_64\n"
				"ffffffff81001000 t native_write_cr4\n"
				"ffffffff81001000 t native_write_cr4\t[a]\n"
				"ffffffff81001800 d some_data\n"
				"ffffffff81003000 W weak_fn\n"
				"ffffffff81003000 W weak_fn\t[ab]\n"
				"ffffffff81003000 W weak_fn\t[a]\n"
				"ffffffff81004000 T _etext\n"
				"ffffffffc0a00000 t ext4_init\t[ext4]\n"
				"ffffffffc0a00000 t ext4_init\n"
				"ffffffffc0b00000 T bpf_prog_6deef7357e7b4530_prog\t[bpf]\n"
				"this is not a symbol line\n"
				"ffffffff81005000\n"
				"ffffffff81000500 w weak_local\n"
				"ffffffff81000800 b bss_thing");
	uint64_t addrs[] = {
	    0,
	    0xffffffff80ffffff,
	    0xffffffff81000000,
	    0xffffffff810004ff,
	    0xffffffff81000500,
	    0xffffffff81000fff,
	    0xffffffff81001000,
	    0xffffffff81001900,
	    0xffffffff81002abc,
	    0xffffffff81003000,
	    0xffffffff81003001,
	    0xffffffff81003fff,
	    0xffffffff81004000,
	    0xffffffff81006000,
	    0xffffffffc0a00010,
	    0xffffffffc0a01234,
	    0xffffffffc0b00000 + KALLSYMS_LAST_SYMBOL_SIZE - 1,
	    0xffffffffc0b00000 + KALLSYMS_LAST_SYMBOL_SIZE,
	    UINT64_MAX,
	};
	expect_same_ksyms(tmp("kfor"), addrs, ARRAY_SIZE(addrs));
	/* One address at a time: each answer stands alone, neighbours or not. */
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		expect_same_ksyms(tmp("kfor"), &addrs[i], 1);
	/* Duplicates and no address at all. */
	uint64_t dup[] = {0xffffffff81001900, 0xffffffff81001900, 0xffffffff81000000};
	expect_same_ksyms(tmp("kfor"), dup, ARRAY_SIZE(dup));
	struct kallsyms *k = NULL;
	uint64_t found = 1;
	cr_assert_eq(kallsyms_load_for(tmp("kfor"), NULL, 0, "_text", &found, &k), 0);
	cr_assert_eq(kallsyms_lookup(k, 0xffffffff81000000, NULL, NULL), -ENOENT);
	cr_assert_eq(found, 0xffffffff81000000, "the named symbol, not the preferred alias");
	kallsyms_free(k);
	/* Kernel symbols only, text only, exact names. */
	cr_assert_eq(kallsyms_load_for(tmp("kfor"), addrs, 3, "ext4_init", &found, &k), 0);
	cr_assert_eq(found, 0xffffffffc0a00000);
	kallsyms_free(k);
	cr_assert_eq(kallsyms_load_for(tmp("kfor"), addrs, 3, "some_data", &found, &k), 0);
	cr_assert_eq(found, 0);
	kallsyms_free(k);
	cr_assert_eq(kallsyms_load_for(tmp("kfor"), addrs, 3, "_tex", &found, &k), 0);
	cr_assert_eq(found, 0);
	kallsyms_free(k);

	/* The same errors. */
	write_file(tmp("kzeros"), "0000000000000000 T _stext\n0000000000000000 t foo\t[mod]\n");
	expect_same_ksyms(tmp("kzeros"), addrs, ARRAY_SIZE(addrs));
	write_file(tmp("kempty"), "");
	expect_same_ksyms(tmp("kempty"), addrs, ARRAY_SIZE(addrs));
	char *lng = malloc(KALLSYMS_MAX_LINE * 2 + 64);
	cr_assert_not_null(lng);
	int off = sprintf(lng, "ffffffff81000000 T ");
	memset(lng + off, 'x', KALLSYMS_MAX_LINE * 2);
	strcpy(lng + off + KALLSYMS_MAX_LINE * 2, "\nffffffff81001000 T ok\n");
	write_file(tmp("klong"), lng);
	free(lng);
	expect_same_ksyms(tmp("klong"), addrs, ARRAY_SIZE(addrs));
	cr_assert_eq(kallsyms_load_for(tmp("does-not-exist"), addrs, 1, NULL, NULL, &k), -ENOENT);

	/* Random files glued from fragments, random addresses around the symbols. */
	static const char *frags[] = {"ffffffff81000000",
				      "ffffffff81000010",
				      "0000000000000000",
				      " ",
				      "\t",
				      "T",
				      "t",
				      "W",
				      "d",
				      "foo",
				      "[mod]",
				      "[",
				      "]",
				      "\n",
				      "zz",
				      "ffffffffffffffff",
				      "1",
				      "bar_baz",
				      "ab"};
	uint32_t seed = 0x7654321;
	for (int iter = 0; iter < 300; iter++) {
		FILE *f = fopen(tmp("kforrand"), "we");
		cr_assert_not_null(f);
		int n = (int)(xorshift32(&seed) % 600);
		for (int i = 0; i < n; i++)
			fputs(frags[xorshift32(&seed) % ARRAY_SIZE(frags)], f);
		fclose(f);
		uint64_t q[24];
		for (size_t i = 0; i < ARRAY_SIZE(q); i++)
			q[i] = i % 5 == 0   ? (uint64_t)xorshift32(&seed)
			       : i % 5 == 1 ? UINT64_MAX - (xorshift32(&seed) % 64)
					    : 0xffffffff81000000ull + (xorshift32(&seed) % 64) - 16;
		expect_same_ksyms(tmp("kforrand"), q, ARRAY_SIZE(q));
	}

	/* The real file, for some of its own addresses and the bytes around them. */
	if (access("/proc/kallsyms", R_OK) == 0) {
		char *out =
		    capture("awk '$2 ~ /^[tTwW]$/ && $1 != \"0000000000000000\" && NR %% 997 == 0 "
			    "{print $1}' /proc/kallsyms");
		uint64_t q[512];
		size_t nq = 0;
		for (char *p = out, *e; *p && nq + 3 <= ARRAY_SIZE(q); p = e) {
			uint64_t a = strtoull(p, &e, 16);
			if (e == p)
				break;
			q[nq++] = a;
			q[nq++] = a - 1;
			q[nq++] = a + 7;
			while (*e == '\n')
				e++;
		}
		free(out);
		if (nq > 0)
			expect_same_ksyms("/proc/kallsyms", q, nq);
	}
}

/* ---- JIT perf maps ------------------------------------------------------------------------- */

static struct perfmap *load_map_text(const char *name, const char *text)
{
	struct perfmap *m = NULL;
	write_file(tmp(name), text);
	int r = perfmap_load(tmp(name), &m);
	cr_assert_eq(r, 0, "perfmap_load(%s): %d", name, r);
	return m;
}

static void expect_jit(const struct perfmap *m, uint64_t addr, const char *name, uint64_t start)
{
	const char *n = NULL;
	uint64_t s = 0;
	int r = perfmap_lookup(m, addr, &n, &s);
	cr_assert_eq(r, 0, "0x%" PRIx64 ": %d", addr, r);
	cr_assert_str_eq(n, name, "0x%" PRIx64, addr);
	cr_assert_eq(s, start, "0x%" PRIx64, addr);
}

static void expect_no_jit(const struct perfmap *m, uint64_t addr)
{
	cr_assert_eq(perfmap_lookup(m, addr, NULL, NULL), -ENOENT, "0x%" PRIx64, addr);
}

Test(symbolize, perfmap_parse_and_lookup)
{
	/* Unsorted, with and without 0x, names with blanks and CRLF, and junk in between. */
	struct perfmap *m = load_map_text(
		"basic.map",
		"7f0000003000 100 LazyCompile:*fib /app/fib.js:3\n"
		"0x7f0000001000 0x20 Stub:CEntry\r\n"
		"this line is junk\n"
		"7f0000002000 40 [jit] void Foo::bar(int)   \n"
		"7f0000004000\n"
		"7f0000005000 10\n"
		"7f0000006000 10 \n"
		"zz 10 bad_start\n"
		"7f0000007000 zz bad_size\n"
		"7f0000008000 0 empty_range\n"
		"ffffffffffffff00 200 wraps_around\n"
		"17f0000009000 10 seventeen_digits\n"
		"\n"
		"   7f000000a000\t8\tTabbed\n"
		"7f000000b000 10 last_line_without_newline");

	expect_jit(m, 0x7f0000001000, "Stub:CEntry", 0x7f0000001000);
	expect_jit(m, 0x7f000000101f, "Stub:CEntry", 0x7f0000001000);
	expect_no_jit(m, 0x7f0000001020);
	expect_jit(m, 0x7f0000002010, "[jit] void Foo::bar(int)", 0x7f0000002000);
	expect_jit(m, 0x7f00000030ff, "LazyCompile:*fib /app/fib.js:3", 0x7f0000003000);
	expect_no_jit(m, 0x7f0000003100);
	expect_jit(m, 0x7f000000a004, "Tabbed", 0x7f000000a000);
	expect_jit(m, 0x7f000000b00f, "last_line_without_newline", 0x7f000000b000);
	/* Junk made no ranges. */
	expect_no_jit(m, 0x7f0000004000);
	expect_no_jit(m, 0x7f0000005000);
	expect_no_jit(m, 0x7f0000008000);
	expect_no_jit(m, 0xffffffffffffff80);
	expect_no_jit(m, 0x7f0000009000);
	expect_no_jit(m, 0);
	expect_no_jit(m, UINT64_MAX);
	cr_assert_eq(perfmap_n_ranges(m), 6);
	perfmap_free(m);
	perfmap_free(NULL);
}

Test(symbolize, perfmap_later_lines_win_overlaps)
{
	struct perfmap *m = load_map_text("overlap.map",
					  /* a newer short range inside an older long one */
					  "1000 1000 old_long\n"
					  "1400 100 new_inner\n"
					  /* a newer long range over an older short one */
					  "3000 100 old_short\n"
					  "2f00 300 new_outer\n"
					  /* the same start twice: recompiled in place */
					  "5000 80 first\n"
					  "5000 40 second\n"
					  /* partial overlap */
					  "6000 100 left\n"
					  "6080 100 right\n"
					  /* the exact same line repeated */
					  "7000 10 dup\n"
					  "7000 10 dup\n");

	expect_jit(m, 0x1000, "old_long", 0x1000);
	expect_jit(m, 0x13ff, "old_long", 0x1000);
	expect_jit(m, 0x1400, "new_inner", 0x1400);
	expect_jit(m, 0x14ff, "new_inner", 0x1400);
	expect_jit(m, 0x1500, "old_long", 0x1000); /* the rest of the old range survives */
	expect_jit(m, 0x1fff, "old_long", 0x1000);
	expect_no_jit(m, 0x2000);

	expect_jit(m, 0x2f00, "new_outer", 0x2f00);
	expect_jit(m, 0x3050, "new_outer", 0x2f00);
	expect_jit(m, 0x31ff, "new_outer", 0x2f00);
	expect_no_jit(m, 0x3200);

	expect_jit(m, 0x5000, "second", 0x5000);
	expect_jit(m, 0x503f, "second", 0x5000);
	expect_jit(m, 0x5040, "first", 0x5000);
	expect_jit(m, 0x507f, "first", 0x5000);

	expect_jit(m, 0x607f, "left", 0x6000);
	expect_jit(m, 0x6080, "right", 0x6080);
	expect_jit(m, 0x617f, "right", 0x6080);

	expect_jit(m, 0x7008, "dup", 0x7000);
	/* The repeated line wins over its twin everywhere: one range, one name. */
	const char *a, *b;
	cr_assert_eq(perfmap_lookup(m, 0x7000, &a, NULL), 0);
	cr_assert_eq(perfmap_lookup(m, 0x700f, &b, NULL), 0);
	cr_assert_eq(a, b);
	perfmap_free(m);
}

/* The reference: scan every line, the last one covering addr wins. */
struct ref_line {
	uint64_t start, size;
	char name[32];
};

static const char *ref_lookup(const struct ref_line *l, size_t n, uint64_t addr)
{
	const char *hit = NULL;
	for (size_t i = 0; i < n; i++)
		if (addr >= l[i].start && addr - l[i].start < l[i].size)
			hit = l[i].name;
	return hit;
}

Test(symbolize, perfmap_random_overlaps_match_reference)
{
	uint32_t seed = 0xfeedbeef;
	for (int iter = 0; iter < 20; iter++) {
		size_t n = 1 + xorshift32(&seed) % 2000;
		struct ref_line *l = calloc(n, sizeof(*l));
		cr_assert_not_null(l);
		FILE *f = fopen(tmp("rand.map"), "we");
		cr_assert_not_null(f);
		for (size_t i = 0; i < n; i++) {
			/* Dense addresses so ranges overlap a lot. */
			l[i].start = 0x10000 + xorshift32(&seed) % 0x4000;
			l[i].size = 1 + xorshift32(&seed) % 0x200;
			snprintf(l[i].name, sizeof(l[i].name), "fn_%zu", i);
			fprintf(f, "%" PRIx64 " %" PRIx64 " %s\n", l[i].start, l[i].size, l[i].name);
		}
		fclose(f);

		struct perfmap *m = NULL;
		cr_assert_eq(perfmap_load(tmp("rand.map"), &m), 0);
		cr_assert_leq(perfmap_n_ranges(m), 2 * n);
		for (uint64_t a = 0xff00; a < 0x14300; a += 1 + xorshift32(&seed) % 7) {
			const char *want = ref_lookup(l, n, a), *got = NULL;
			int r = perfmap_lookup(m, a, &got, NULL);
			if (!want) {
				cr_assert_eq(r, -ENOENT, "iter %d 0x%" PRIx64 ": got %s", iter, a, got);
				continue;
			}
			cr_assert_eq(r, 0, "iter %d 0x%" PRIx64 ": want %s", iter, a, want);
			cr_assert_str_eq(got, want, "iter %d 0x%" PRIx64, iter, a);
		}
		perfmap_free(m);
		free(l);
	}
}

static void put_line(FILE *f, const char *prefix, char fill, size_t total_len, bool newline)
{
	size_t n = strlen(prefix);
	cr_assert_geq(total_len, n);
	fputs(prefix, f);
	for (size_t i = n; i < total_len; i++)
		fputc(fill, f);
	if (newline)
		fputc('\n', f);
}

Test(symbolize, perfmap_huge_lines_and_junk)
{
	/* A line just at the limit is kept; one past it is skipped, and so is a huge one; the
	 * lines after them still parse. */
	FILE *f = fopen(tmp("huge.map"), "we");
	cr_assert_not_null(f);
	put_line(f, "1000 10 ", 'a', PERFMAP_MAX_LINE, true);
	put_line(f, "2000 10 ", 'b', PERFMAP_MAX_LINE + 1, true);
	put_line(f, "3000 10 ", 'c', PERFMAP_MAX_LINE * 40, true);
	put_line(f, "4000 10 after_huge", 'x', 18, true);
	fclose(f);

	struct perfmap *m = NULL;
	cr_assert_eq(perfmap_load(tmp("huge.map"), &m), 0);
	const char *n;
	cr_assert_eq(perfmap_lookup(m, 0x1000, &n, NULL), 0);
	cr_assert_eq(strlen(n), PERFMAP_MAX_LINE - 8);
	expect_no_jit(m, 0x2000);
	expect_no_jit(m, 0x3000);
	expect_jit(m, 0x4000, "after_huge", 0x4000);
	perfmap_free(m);

	/* A huge last line without a newline is skipped too. */
	f = fopen(tmp("huge2.map"), "we");
	cr_assert_not_null(f);
	put_line(f, "4000 10 ok", 'x', 10, true);
	put_line(f, "5000 10 ", 'd', PERFMAP_MAX_LINE * 3, false);
	fclose(f);
	cr_assert_eq(perfmap_load(tmp("huge2.map"), &m), 0);
	expect_jit(m, 0x4000, "ok", 0x4000);
	expect_no_jit(m, 0x5000);
	perfmap_free(m);

	/* NUL bytes make a line junk, not a truncated name. */
	f = fopen(tmp("nul.map"), "we");
	cr_assert_not_null(f);
	fwrite("1000 10 a\0b\n2000 10 fine\n", 1, 25, f);
	fclose(f);
	cr_assert_eq(perfmap_load(tmp("nul.map"), &m), 0);
	expect_no_jit(m, 0x1000);
	expect_jit(m, 0x2000, "fine", 0x2000);
	perfmap_free(m);
}

Test(symbolize, perfmap_errors)
{
	struct perfmap *m = NULL;

	write_file(tmp("empty.map"), "");
	cr_assert_eq(perfmap_load(tmp("empty.map"), &m), -ENODATA);
	write_file(tmp("junk.map"), "hello\nworld\n");
	cr_assert_eq(perfmap_load(tmp("junk.map"), &m), -ENODATA);
	cr_assert_null(m);
	cr_assert_eq(perfmap_load(tmp("missing.map"), &m), -ENOENT);

	/* /tmp is world-writable: a symlink there is refused, not followed. */
	write_file(tmp("target.map"), "1000 10 secret\n");
	cr_assert_eq(symlink(tmp("target.map"), tmp("link.map")), 0);
	cr_assert_eq(perfmap_load(tmp("link.map"), &m), -ELOOP);
	/* Neither a FIFO (which would block a plain open) nor a directory is a map. */
	cr_assert_eq(mkfifo(tmp("fifo.map"), 0600), 0);
	cr_assert_eq(perfmap_load(tmp("fifo.map"), &m), -EINVAL);
	cr_assert_eq(perfmap_load(tmpdir, &m), -EINVAL);
	cr_assert_null(m);
	cr_assert_eq(perfmap_load_fd(-1, &m), -EINVAL);
	cr_assert_eq(perfmap_lookup(NULL, 0, NULL, NULL), -EINVAL);
}

/* `text` at offset `off` of a file of `size` bytes (sparse: holes read as zeros). */
static void sparse_with(const char *path, uint64_t size, uint64_t off, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(pwrite(fd, text, strlen(text), (off_t)off), (ssize_t)strlen(text));
	close(fd);
}

Test(symbolize, perfmap_reads_only_the_last_cap_bytes)
{
	const uint64_t cap = PERFMAP_MAX_FILE_BYTES;
	struct perfmap *m = NULL;
	struct stat st;

	/* A 1 GiB sparse map: its head is never reached, only the tail's lines count. */
	sparse_with(tmp("big.map"), 1ull << 30, 0, "1000 10 head_line\n");
	sparse_with(tmp("big.map"), 1ull << 30, (1ull << 30) - 32, "\n2000 10 tail_line\n");
	cr_assert_eq(stat(tmp("big.map"), &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 1ull << 30);
	cr_assert_eq(perfmap_load(tmp("big.map"), &m), 0);
	expect_no_jit(m, 0x1000);
	expect_jit(m, 0x2000, "tail_line", 0x2000);
	cr_assert_leq(perfmap_bytes(m), cap + 1, "%" PRIu64 " bytes read", perfmap_bytes(m));
	cr_assert_geq(perfmap_bytes(m), cap);
	perfmap_free(m);

	/* The window starts right after a newline: its first line is whole and kept. */
	char line[64];
	uint64_t size = cap + 100;
	snprintf(line, sizeof(line), "3000 10 first_whole\n");
	sparse_with(tmp("edge.map"), size, size - cap - 13, "1000 10 gone\n");
	sparse_with(tmp("edge.map"), size, size - cap, line);
	sparse_with(tmp("edge.map"), size, size - 20, "\n4000 10 last\n");
	cr_assert_eq(perfmap_load(tmp("edge.map"), &m), 0);
	expect_no_jit(m, 0x1000);
	expect_jit(m, 0x3000, "first_whole", 0x3000);
	expect_jit(m, 0x4000, "last", 0x4000);
	perfmap_free(m);

	/* A line the window's start cuts is dropped, not read from its middle ("10 cut_..."). */
	sparse_with(tmp("cut.map"), size, size - cap - 4, "1000 10 cut_line\n");
	sparse_with(tmp("cut.map"), size, size - 20, "\n4000 10 last\n");
	cr_assert_eq(perfmap_load(tmp("cut.map"), &m), 0);
	cr_assert_eq(perfmap_n_ranges(m), 1);
	expect_jit(m, 0x4000, "last", 0x4000);
	perfmap_free(m);

	/* Smaller files are read whole. */
	write_file(tmp("small.map"), "1000 10 a\n2000 10 b\n");
	cr_assert_eq(perfmap_load(tmp("small.map"), &m), 0);
	cr_assert_eq(perfmap_bytes(m), 20);
	perfmap_free(m);
}

Test(symbolize, perfmap_load_never_opens_a_device)
{
	struct perfmap *m = NULL;

	/* O_PATH first: a character device is refused without being opened for reading. */
	cr_assert_eq(perfmap_load("/dev/null", &m), -EINVAL);
	cr_assert_eq(perfmap_load("/dev/zero", &m), -EINVAL);
	cr_assert_null(m);
}

Test(symbolize, perfmap_random_input)
{
	static const char *frags[] = { "7f00", "0x", "1000", " ", "\t", "\n", "\r", "ffffffffffffffff",
				       "0", "10", "name", "zz", "  ", "a b c", "\n\n", "100000000" };
	uint32_t seed = 0xabcdef1;
	for (int iter = 0; iter < 300; iter++) {
		FILE *f = fopen(tmp("prand.map"), "we");
		cr_assert_not_null(f);
		int n = (int)(xorshift32(&seed) % 300);
		for (int i = 0; i < n; i++)
			fputs(frags[xorshift32(&seed) % ARRAY_SIZE(frags)], f);
		fclose(f);

		struct perfmap *m = NULL;
		int r = perfmap_load(tmp("prand.map"), &m);
		cr_assert(r == 0 || r == -ENODATA, "iter %d: %d", iter, r);
		if (r < 0)
			continue;
		for (int i = 0; i < 64; i++) {
			uint64_t a = (uint64_t)xorshift32(&seed) << (xorshift32(&seed) % 40);
			const char *name;
			uint64_t start;
			if (perfmap_lookup(m, a, &name, &start) == 0) {
				cr_assert_leq(start, a);
				cr_assert_gt(strlen(name), 0);
			}
		}
		perfmap_free(m);
	}
}

/* ---- separate debug files: build-id directories, debuglink checks -------------------------- */

/* The fixture library with full DWARF, a stripped copy, and its debug file. */
static void build_split_lib(const char *name, const char *extra_flags)
{
	sh("cd '%s' && gcc -O2 -g -shared -fPIC %s -o %s.full '%s' && "
	   "objcopy --only-keep-debug %s.full %s.debug && strip --strip-all -o %s %s.full",
	   tmpdir, extra_flags, name, fixture("libdyn.c"), name, name, name, name);
}

static struct sym_elf *open_elf_dirs(const char *path, const char *dir)
{
	const char *dirs[] = { dir, NULL };
	return open_elf_in(path, dirs);
}

/* The same without a root: the debug dirs only. */
static struct sym_elf *open_elf_dirs_noroot(const char *path, const char *dir)
{
	const char *dirs[] = { dir, NULL };
	struct sym_elf_options o = { .debug_dirs = dirs };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct sym_elf *e = NULL;
	cr_assert_eq(sym_elf_open_with(fd, path, &o, &e), 0);
	close(fd);
	return e;
}

/* Whether dyn_hidden is named from DWARF (so: a debug file was found and accepted). */
static bool finds_dwarf(struct sym_elf *e, uint64_t hidden)
{
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	bool dwarf = r.source == SYM_SOURCE_DWARF;
	sym_elf_free(e);
	return dwarf;
}

/*
 * Next to the binary only inside a known root, and with no symlink on the way: a debuglink is a
 * name the binary's owner chose, and profd reads it as root.
 */
Test(symbolize, debuglink_next_to_binary_only_in_its_root)
{
	build_split_lib("libnr.so", "-Wl,--build-id=sha1");
	uint64_t hidden = nm_addr(tmp("libnr.so.full"), "dyn_hidden", false, NULL);
	sh("cd '%s' && objcopy --add-gnu-debuglink=libnr.so.debug libnr.so libnr-link.so", tmpdir);

	cr_assert(finds_dwarf(open_elf_dirs(tmp("libnr-link.so"), tmp("nodbg")), hidden));
	cr_assert_not(finds_dwarf(open_elf_dirs_noroot(tmp("libnr-link.so"), tmp("nodbg")), hidden),
		      "no root: nothing next to the binary is opened");
	/* A relative path says nothing about where it is: not searched either. */
	char cwd[PATH_MAX];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_not(finds_dwarf(open_elf_dirs("libnr-link.so", tmp("nodbg")), hidden));
	cr_assert_eq(chdir(cwd), 0);

	/* The very debug file, but reached through a symlink: refused unopened. */
	sh("cd '%s' && mkdir -p real && mv libnr.so.debug real/ && "
	   "ln -s real/libnr.so.debug libnr.so.debug && mkdir -p .debug && "
	   "ln -s ../real/libnr.so.debug .debug/libnr.so.debug",
	   tmpdir);
	cr_assert_not(finds_dwarf(open_elf_dirs(tmp("libnr-link.so"), tmp("nodbg")), hidden));
	/* ... and a symlinked directory on the way to it too. */
	sh("cd '%s' && ln -s . via && rm libnr.so.debug .debug/libnr.so.debug && "
	   "mv real/libnr.so.debug .", tmpdir);
	cr_assert(finds_dwarf(open_elf_dirs(tmp("libnr-link.so"), tmp("nodbg")), hidden));
	cr_assert_not(finds_dwarf(open_elf_dirs(tmp("via/libnr-link.so"), tmp("nodbg")), hidden));

	/* A device or a FIFO under the name: refused before anything opens it. */
	sh("cd '%s' && rm libnr.so.debug && ln -s /dev/zero libnr.so.debug && mkfifo .debug/libnr.so.debug",
	   tmpdir);
	cr_assert_not(finds_dwarf(open_elf_dirs(tmp("libnr-link.so"), tmp("nodbg")), hidden));
}

/*
 * The CRC proof (no build-id) reads a candidate whole: a sparse one is refused unread. The
 * control: the same debug file padded with written zeros is accepted, so the sparse one fails
 * for being sparse, not for its padding.
 */
Test(symbolize, debuglink_crc_refuses_sparse_candidates, .timeout = 60)
{
	build_split_lib("libsp.so", "-Wl,--build-id=none");
	uint64_t hidden = nm_addr(tmp("libsp.so.full"), "dyn_hidden", false, NULL);

	/* Written zeros: 2 MiB, all allocated. */
	sh("cd '%s' && cp libsp.so.debug padded.debug && "
	   "dd if=/dev/zero bs=1M count=2 status=none >> padded.debug && "
	   "objcopy --add-gnu-debuglink=padded.debug libsp.so libsp-padded.so",
	   tmpdir);
	cr_assert(finds_dwarf(open_elf_dirs(tmp("libsp-padded.so"), tmp("nodbg")), hidden),
		  "a padded debug file is still a debug file");

	/* A hole of 64 MiB (within SYM_DEBUGLINK_CRC_MAX_BYTES, nearly nothing allocated). */
	sh("cd '%s' && cp libsp.so.debug sparse.debug && truncate -s 64M sparse.debug && "
	   "objcopy --add-gnu-debuglink=sparse.debug libsp.so libsp-sparse.so",
	   tmpdir);
	struct stat st;
	cr_assert_eq(stat(tmp("sparse.debug"), &st), 0);
	cr_assert_lt((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size / SYM_DEBUGLINK_SPARSE_RATIO,
		     "the file system did not keep the hole");
	cr_assert_not(finds_dwarf(open_elf_dirs(tmp("libsp-sparse.so"), tmp("nodbg")), hidden));
}

static void build_id_hex_of(const char *path, char *hex, size_t size)
{
	struct elf_ident id;
	identify(path, &id);
	cr_assert_gt(id.build_id_len, 2);
	cr_assert_gt(build_id_to_hex(id.build_id, id.build_id_len, hex, size), 0);
}

Test(symbolize, debug_file_from_build_id_dir)
{
	build_split_lib("libbid.so", "-Wl,--build-id=sha1");
	uint64_t hidden = nm_addr(tmp("libbid.so.full"), "dyn_hidden", false, NULL);
	char hex[129];
	build_id_hex_of(tmp("libbid.so"), hex, sizeof(hex));

	/* Not found anywhere yet: .dynsym only, no lines. */
	struct sym_elf *e = open_elf_dirs(tmp("libbid.so"), tmp("dbg"));
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_neq(r.source, SYM_SOURCE_DWARF);
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* <dir>/.build-id/xx/yyyy.debug, and the binary's own directory knows nothing of it
	 * (no debuglink at all). */
	sh("mkdir -p '%s/dbg/.build-id/%.2s' && mv '%s' '%s/dbg/.build-id/%.2s/%s.debug'", tmpdir,
	   hex, tmp("libbid.so.debug"), tmpdir, hex, hex + 2);
	e = open_elf_dirs(tmp("libbid.so"), tmp("dbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	cr_assert_str_eq(basename_of(r.frames[0].file), "libdyn.c");
	cr_assert_gt(r.frames[r.n_frames - 1].decl_line, 0);
	cr_assert(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* The default search (/usr/lib/debug) does not look in our directory. */
	e = open_elf(tmp("libbid.so"));
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);
}

/*
 * has_lines comes from section headers (a .debug_line, compressed or not, in the binary or its
 * debug file), before and without any DWARF lookup, and agrees with what lookups then find.
 */
Test(symbolize, has_lines_from_section_headers)
{
	struct sym_result r;
	char hex[129];

	/* Compressed DWARF in the binary itself. */
	build_split_lib("libgz.so", "-Wl,--build-id=sha1 -gz=zlib");
	uint64_t hidden = nm_addr(tmp("libgz.so.full"), "dyn_hidden", false, NULL);
	struct sym_elf *e = open_elf(tmp("libgz.so.full"));
	cr_assert(sym_elf_has_lines(e));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_not_null(r.frames[0].file);
	sym_elf_free(e);

	/* A compressed debug file found by build-id, asked before any lookup. */
	build_id_hex_of(tmp("libgz.so"), hex, sizeof(hex));
	sh("mkdir -p '%s/gzdbg/.build-id/%.2s' && objcopy --compress-debug-sections=zlib '%s' "
	   "'%s/gzdbg/.build-id/%.2s/%s.debug'",
	   tmpdir, hex, tmp("libgz.so.debug"), tmpdir, hex, hex + 2);
	e = open_elf_dirs(tmp("libgz.so"), tmp("gzdbg"));
	cr_assert(sym_elf_has_lines(e));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF, "the debug file found for has_lines serves DWARF");
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	cr_assert(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* The same debug file without its line table: no lines, the functions still there. */
	sh("objcopy --remove-section .debug_line '%s/gzdbg/.build-id/%.2s/%s.debug'", tmpdir, hex,
	   hex + 2);
	e = open_elf_dirs(tmp("libgz.so"), tmp("gzdbg"));
	cr_assert_not(sym_elf_has_lines(e));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	sym_elf_free(e);

	/* No debug file anywhere: none. */
	e = open_elf_dirs(tmp("libgz.so"), tmp("nodbg"));
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);
}

Test(symbolize, mismatched_debug_files_rejected)
{
	/* Two builds of the same library that differ in code, so in build-id too. */
	build_split_lib("liba.so", "-Wl,--build-id=sha1");
	build_split_lib("libb.so", "-Wl,--build-id=sha1 -DPROFD_FIXTURE_VARIANT=1");
	char hex_a[129], hex_b[129];
	build_id_hex_of(tmp("liba.so"), hex_a, sizeof(hex_a));
	build_id_hex_of(tmp("libb.so"), hex_b, sizeof(hex_b));
	cr_assert_str_neq(hex_a, hex_b);
	uint64_t hidden = nm_addr(tmp("liba.so.full"), "dyn_hidden", false, NULL);

	/* B's debug file filed under A's build-id: found by path, rejected by build-id. */
	sh("mkdir -p '%s/dbg/.build-id/%.2s' && cp '%s' '%s/dbg/.build-id/%.2s/%s.debug'", tmpdir,
	   hex_a, tmp("libb.so.debug"), tmpdir, hex_a, hex_a + 2);
	struct sym_elf *e = open_elf_dirs(tmp("liba.so"), tmp("dbg"));
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_neq(r.source, SYM_SOURCE_DWARF);
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* Same with a debuglink: the named file next to the binary is B's. */
	sh("cd '%s' && cp libb.so.debug other.debug && objcopy --add-gnu-debuglink=other.debug "
	   "liba.so liba-link.so && cp liba.so.debug other.debug",
	   tmpdir);
	/* (the CRC in the link is B's; the build-id check comes first and decides) */
	e = open_elf_dirs(tmp("liba-link.so"), tmp("nodbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF, "A's debug file with A's build-id is accepted");
	sym_elf_free(e);
	sh("cp '%s' '%s'", tmp("libb.so.debug"), tmp("other.debug"));
	e = open_elf_dirs(tmp("liba-link.so"), tmp("nodbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_neq(r.source, SYM_SOURCE_DWARF);
	sym_elf_free(e);
}

Test(symbolize, debuglink_crc_without_build_id)
{
	/* Without a build-id the debuglink CRC is the only check. */
	build_split_lib("libnb.so", "-Wl,--build-id=none");
	build_split_lib("libnb2.so", "-Wl,--build-id=none -DPROFD_FIXTURE_VARIANT=1");
	uint64_t hidden = nm_addr(tmp("libnb.so.full"), "dyn_hidden", false, NULL);
	sh("cd '%s' && objcopy --add-gnu-debuglink=libnb.so.debug libnb.so libnb-link.so", tmpdir);

	struct sym_elf *e = open_elf_dirs(tmp("libnb-link.so"), tmp("nodbg"));
	struct sym_result r;
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	sym_elf_free(e);

	/* The other build's debug file under the linked name: wrong CRC, rejected. */
	sh("cd '%s' && mkdir -p .debug && mv libnb.so.debug saved.debug && "
	   "cp libnb2.so.debug .debug/libnb.so.debug",
	   tmpdir);
	e = open_elf_dirs(tmp("libnb-link.so"), tmp("nodbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_neq(r.source, SYM_SOURCE_DWARF);
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);

	/* The right one in .debug/ is found there. */
	sh("cd '%s' && mv saved.debug .debug/libnb.so.debug", tmpdir);
	e = open_elf_dirs(tmp("libnb-link.so"), tmp("nodbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	sym_elf_free(e);

	/* Under <debug dir>/<directory of the binary>/. */
	sh("mkdir -p '%s/dbg%s' && mv '%s/.debug/libnb.so.debug' '%s/dbg%s/'", tmpdir, tmpdir,
	   tmpdir, tmpdir, tmpdir);
	e = open_elf_dirs(tmp("libnb-link.so"), tmp("dbg"));
	cr_assert_eq(sym_elf_lookup(e, hidden + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	sym_elf_free(e);
}

Test(symbolize, fifo_on_debug_path_does_not_hang, .timeout = 30)
{
	build_split_lib("libff.so", "-Wl,--build-id=sha1");
	char hex[129];
	build_id_hex_of(tmp("libff.so"), hex, sizeof(hex));
	sh("cd '%s' && objcopy --add-gnu-debuglink=libff.so.debug libff.so libff-link.so && "
	   "rm libff.so.debug && mkfifo libff.so.debug && mkdir -p dbg/.build-id/%.2s && "
	   "mkfifo dbg/.build-id/%.2s/%s.debug",
	   tmpdir, hex, hex, hex + 2);
	struct sym_elf *e = open_elf_dirs(tmp("libff-link.so"), tmp("dbg"));
	struct sym_result r;
	uint64_t alpha = nm_addr(tmp("libff.so"), "dyn_exported_alpha", true, NULL);
	cr_assert_eq(sym_elf_lookup(e, alpha + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DYNSYM);
	cr_assert_not(sym_elf_has_lines(e));
	sym_elf_free(e);
}

/* A stand-in debuginfod that answers 404 to everything and counts what it was asked. */
struct fake_debuginfod {
	int fd, port;
	pthread_t thread;
	int requests;
	char first[256];
};

static void *fake_debuginfod_run(void *arg)
{
	struct fake_debuginfod *s = arg;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char buf[1024];
		ssize_t n = read(c, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			if (__atomic_fetch_add(&s->requests, 1, __ATOMIC_SEQ_CST) == 0)
				snprintf(s->first, sizeof(s->first), "%.*s",
					 (int)strcspn(buf, "\r\n"), buf);
		}
		static const char resp[] =
			"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		(void)!write(c, resp, sizeof(resp) - 1);
		close(c);
	}
}

static void fake_debuginfod_start(struct fake_debuginfod *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s->fd, 0);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 16), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, fake_debuginfod_run, s), 0);
}

static int fake_debuginfod_stop(struct fake_debuginfod *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
	return __atomic_load_n(&s->requests, __ATOMIC_SEQ_CST);
}

Test(symbolize, debuginfod_only_when_asked, .timeout = 60)
{
	build_split_lib("libdi.so", "-Wl,--build-id=sha1");
	char hex[129], url[64];
	build_id_hex_of(tmp("libdi.so"), hex, sizeof(hex));
	struct fake_debuginfod srv;
	fake_debuginfod_start(&srv);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	setenv("DEBUGINFOD_URLS", url, 1);
	setenv("DEBUGINFOD_CACHE_PATH", tmp("dcache"), 1);
	setenv("DEBUGINFOD_TIMEOUT", "10", 1);

	/* Default: the environment names a server, and still nobody asks it. */
	struct sym_elf *e = open_elf(tmp("libdi.so"));
	cr_assert_not(sym_elf_has_lines(e));
	struct sym_result r;
	uint64_t alpha = nm_addr(tmp("libdi.so"), "dyn_exported_alpha", true, NULL);
	cr_assert_eq(sym_elf_lookup(e, alpha + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DYNSYM);
	sym_elf_free(e);
	cr_assert_eq(__atomic_load_n(&srv.requests, __ATOMIC_SEQ_CST), 0);

	/* Asked for: the server gets the build-id; its 404 leaves us where we were. */
	struct sym_elf_options o = { .debuginfod = true };
	int fd = open(tmp("libdi.so"), O_RDONLY | O_CLOEXEC);
	cr_assert_eq(sym_elf_open_with(fd, tmp("libdi.so"), &o, &e), 0);
	close(fd);
	cr_assert_not(sym_elf_has_lines(e));
	cr_assert_eq(sym_elf_lookup(e, alpha + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DYNSYM);
	sym_elf_free(e);
	int n = fake_debuginfod_stop(&srv);
	cr_assert_geq(n, 1);
	char want[200];
	snprintf(want, sizeof(want), "/buildid/%s/debuginfo", hex);
	cr_assert(strstr(srv.first, want), "first request: %s", srv.first);
}

/* ---- sym_cache ------------------------------------------------------------------------------ */

/* File offset of an ELF vaddr, from the program headers (what the profiler computes from
 * a mapping: addr - start + pgoff). */
static uint64_t offset_of(const char *bin, uint64_t vaddr)
{
	int fd = open(bin, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	cr_assert_not_null(elf);
	size_t n;
	cr_assert_eq(elf_getphdrnum(elf, &n), 0);
	uint64_t off = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		cr_assert_not_null(gelf_getphdr(elf, (int)i, &ph));
		if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz)
			off = vaddr - ph.p_vaddr + ph.p_offset;
	}
	elf_end(elf);
	close(fd);
	cr_assert_neq(off, UINT64_MAX);
	return off;
}

struct test_bin {
	char path[PATH_BUF];
	int fd;
	struct elf_ident id;
	struct sym_binary b;
};

static void test_bin_open(struct test_bin *t, const char *path)
{
	snprintf(t->path, sizeof(t->path), "%s", path);
	t->fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(t->fd, 0);
	cr_assert_eq(elf_identify_fd(t->fd, &t->id), 0);
	t->b = (struct sym_binary){
		.build_id = t->id.build_id,
		.build_id_len = t->id.build_id_len,
		.fd = t->fd,
		.path = t->path,
	};
}

static void expect_same_result(const struct sym_result *a, const struct sym_result *b)
{
	cr_assert_eq(a->source, b->source);
	cr_assert_eq(a->n_frames, b->n_frames);
	for (size_t i = 0; i < a->n_frames; i++) {
		const struct sym_frame *x = &a->frames[i], *y = &b->frames[i];
		cr_assert_str_eq(x->name, y->name);
		cr_assert_str_eq(x->system_name, y->system_name);
		cr_assert((!x->file && !y->file) || (x->file && y->file && !strcmp(x->file, y->file)));
		cr_assert_eq(x->line, y->line);
		cr_assert_eq(x->column, y->column);
		cr_assert_eq(x->decl_line, y->decl_line);
		cr_assert_eq(x->sym_start, y->sym_start);
	}
}

static struct sym_cache_stats cache_stats(const struct sym_cache *c)
{
	struct sym_cache_stats st;
	sym_cache_get_stats(c, &st);
	return st;
}

Test(symbolize, cache_keys_binaries_by_file)
{
	/* One build, two files (as two containers would have it): each file is its own binary,
	 * with the same answers; the same file through two fds is one. */
	sh("gcc -O2 -g -fPIE -pie -Wl,--build-id=sha1 -o '%s' '%s' && cp '%s' '%s'",
	   tmp("inl-a"), fixture("inline.c"), tmp("inl-a"), tmp("inl-b"));
	uint64_t size, start = nm_addr(tmp("inl-a"), "outer_loop", false, &size);
	struct test_bin a, b;
	test_bin_open(&a, tmp("inl-a"));
	test_bin_open(&b, tmp("inl-b"));

	struct sym_cache *c = NULL;
	cr_assert_eq(sym_cache_new(NULL, &c), 0);
	struct sym_elf *e = open_elf(tmp("inl-a"));
	for (uint64_t i = 0; i < size; i++) {
		struct sym_result want, got;
		uint64_t off = offset_of(tmp("inl-a"), start + i);
		cr_assert_eq(sym_elf_lookup(e, start + i, true, &want), 0);
		cr_assert_eq(sym_cache_lookup(c, i % 2 ? &a.b : &b.b, off, true, &got), 0);
		expect_same_result(&want, &got);
		/* Then from the other file: a miss (another binary), the same answer. */
		cr_assert_eq(sym_cache_lookup(c, i % 2 ? &b.b : &a.b, off, true, &got), 0);
		expect_same_result(&want, &got);
		/* Again from the first file, through another fd: a hit. */
		int fd2 = open(i % 2 ? a.path : b.path, O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fd2, 0);
		struct sym_binary again = i % 2 ? a.b : b.b;
		again.fd = fd2;
		cr_assert_eq(sym_cache_lookup(c, &again, off, true, &got), 0);
		expect_same_result(&want, &got);
		close(fd2);
	}
	struct sym_cache_stats st = cache_stats(c);
	cr_assert_eq(st.elf_opens, 2);
	cr_assert_eq(st.n_binaries, 2);
	cr_assert_eq(st.misses, 2 * size);
	cr_assert_eq(st.hits, size);
	cr_assert_eq(st.n_results, 2 * size);

	/* A file identity given by the caller (as the profiler keeps it per binary) is the key
	 * fstat() would give: a hit, no new binary. */
	struct sym_file_id fid;
	cr_assert_eq(sym_file_id_from_fd(a.fd, &fid), 0);
	struct sym_binary with_id = a.b;
	with_id.file_id = &fid;
	struct sym_result got;
	uint64_t off0 = offset_of(tmp("inl-a"), start);
	cr_assert_eq(sym_cache_lookup(c, &with_id, off0, true, &got), 0);
	cr_assert_eq(cache_stats(c).hits, size + 1);
	cr_assert_eq(cache_stats(c).n_binaries, 2);

	/* inlines is part of the key. */
	struct sym_result one;
	uint64_t off = offset_of(tmp("inl-a"), start + size / 2);
	cr_assert_eq(sym_cache_lookup(c, &a.b, off, false, &one), 0);
	cr_assert_eq(one.n_frames, 1);
	cr_assert_str_eq(one.frames[0].name, "outer_loop");

	struct sym_binary_info info;
	cr_assert_eq(sym_cache_binary_info(c, &b.b, &info), 0);
	cr_assert_eq(info.error, 0);
	cr_assert(info.has_symbols && info.has_lines);

	/* Outside every PT_LOAD: nothing, not an error. */
	cr_assert_eq(sym_cache_lookup(c, &a.b, 1ull << 40, true, &one), 0);
	cr_assert_eq(one.source, SYM_SOURCE_NONE);
	cr_assert_eq(one.n_frames, 0);

	sym_elf_free(e);
	sym_cache_free(c);
	sym_cache_free(NULL);
	close(a.fd);
	close(b.fd);
}

Test(symbolize, cache_results_survive_elf_eviction)
{
	sh("gcc -O2 -g -Wl,--build-id=sha1 -o '%s' '%s' && "
	   "gcc -O2 -g -Wl,--build-id=sha1 -DPROFD_FIXTURE_VARIANT=1 -shared -fPIC -o '%s' '%s'",
	   tmp("inl"), fixture("inline.c"), tmp("lib.so"), fixture("libdyn.c"));
	struct test_bin x, y;
	test_bin_open(&x, tmp("inl"));
	test_bin_open(&y, tmp("lib.so"));
	uint64_t ox = offset_of(tmp("inl"), nm_addr(tmp("inl"), "plain_func", false, NULL));
	uint64_t oy = offset_of(tmp("lib.so"), nm_addr(tmp("lib.so"), "dyn_hidden", false, NULL));

	struct sym_cache *c = NULL;
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .max_elfs = 1 }, &c), 0);
	struct sym_result r1, r2;
	cr_assert_eq(sym_cache_lookup(c, &x.b, ox, true, &r1), 0);
	cr_assert_str_eq(r1.frames[0].name, "plain_func");
	/* Opening the second binary closes the first... */
	cr_assert_eq(sym_cache_lookup(c, &y.b, oy, true, &r2), 0);
	cr_assert_str_eq(r2.frames[r2.n_frames - 1].name, "dyn_hidden");
	struct sym_cache_stats st = cache_stats(c);
	cr_assert_eq(st.elf_opens, 2);
	cr_assert_eq(st.elf_closes, 1);
	cr_assert_eq(st.n_open_elfs, 1);

	/* ...whose cached result is still whole (its strings are the cache's, not the closed
	 * ELF's: under ASan a dangling pointer would be caught here). */
	cr_assert_eq(sym_cache_lookup(c, &x.b, ox, true, &r1), 0);
	cr_assert_str_eq(r1.frames[0].name, "plain_func");
	cr_assert_str_eq(basename_of(r1.frames[0].file), "inline.c");
	cr_assert_eq(r1.frames[0].decl_line, marker_line("inline.c", "DECL_PLAIN"));
	st = cache_stats(c);
	cr_assert_eq(st.elf_opens, 2);
	cr_assert_eq(st.hits, 1);

	/* A new address of the closed binary reopens it from the fd it is given. */
	cr_assert_eq(sym_cache_lookup(c, &x.b, ox + 1, true, &r1), 0);
	cr_assert_str_eq(r1.frames[0].name, "plain_func");
	st = cache_stats(c);
	cr_assert_eq(st.elf_opens, 3);
	cr_assert_eq(st.n_open_elfs, 1);

	/* No fd and not open: no name, no error, and nothing cached that would stick. */
	struct sym_binary nofd = x.b;
	nofd.fd = -1;
	cr_assert_eq(sym_cache_lookup(c, &y.b, oy + 1, true, &r2), 0); /* closes x again */
	cr_assert_eq(sym_cache_lookup(c, &nofd, ox + 2, true, &r1), 0);
	cr_assert_eq(r1.source, SYM_SOURCE_NONE);
	cr_assert_eq(sym_cache_lookup(c, &x.b, ox + 2, true, &r1), 0);
	cr_assert_str_eq(r1.frames[0].name, "plain_func");

	sym_cache_free(c);
	close(x.fd);
	close(y.fd);
}

Test(symbolize, cache_result_limits_and_generations)
{
	sh("gcc -O2 -g -Wl,--build-id=sha1 -o '%s' '%s'", tmp("inl"), fixture("inline.c"));
	struct test_bin x;
	test_bin_open(&x, tmp("inl"));
	uint64_t size, start = nm_addr(tmp("inl"), "outer_loop", false, &size);
	uint64_t off = offset_of(tmp("inl"), start);
	cr_assert_geq(size, 10);

	/* Count cap: the oldest results go first. */
	struct sym_cache *c = NULL;
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .max_results = 4 }, &c), 0);
	struct sym_result r;
	for (uint64_t i = 0; i < 10; i++)
		cr_assert_eq(sym_cache_lookup(c, &x.b, off + i, true, &r), 0);
	struct sym_cache_stats st = cache_stats(c);
	cr_assert_eq(st.n_results, 4);
	cr_assert_eq(st.result_evictions, 6);
	cr_assert_eq(sym_cache_lookup(c, &x.b, off + 9, true, &r), 0); /* newest: kept */
	cr_assert_eq(cache_stats(c).hits, 1);
	cr_assert_eq(sym_cache_lookup(c, &x.b, off + 0, true, &r), 0); /* oldest: gone */
	cr_assert_eq(cache_stats(c).hits, 1);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "outer_loop");
	sym_cache_free(c);

	/* Byte cap: never above it; a result too big to keep is still answered. */
	size_t cap = 64 * 400;
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .max_result_bytes = cap }, &c), 0);
	for (uint64_t i = 0; i < size; i++) {
		cr_assert_eq(sym_cache_lookup(c, &x.b, off + i, true, &r), 0);
		cr_assert_str_eq(r.frames[r.n_frames - 1].name, "outer_loop");
		cr_assert_leq(cache_stats(c).result_bytes, cap);
	}
	cr_assert_gt(cache_stats(c).n_results, 0);
	sym_cache_free(c);
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .max_result_bytes = 64 }, &c), 0);
	cr_assert_eq(sym_cache_lookup(c, &x.b, off, true, &r), 0);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "outer_loop");
	cr_assert_eq(cache_stats(c).n_results, 0);
	sym_cache_free(c);

	/* Generations: a binary idle for more than max_idle_generations is dropped whole. */
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .max_idle_generations = 1 }, &c), 0);
	cr_assert_eq(sym_cache_lookup(c, &x.b, off, true, &r), 0);
	sym_cache_next_generation(c);
	st = cache_stats(c);
	cr_assert_eq(st.n_binaries, 1);
	cr_assert_eq(st.n_results, 1);
	sym_cache_next_generation(c);
	st = cache_stats(c);
	cr_assert_eq(st.n_binaries, 0);
	cr_assert_eq(st.n_results, 0);
	cr_assert_eq(st.n_open_elfs, 0);
	cr_assert_eq(st.result_bytes, 0);
	cr_assert_eq(sym_cache_lookup(c, &x.b, off, true, &r), 0);
	cr_assert_eq(cache_stats(c).elf_opens, 2);
	sym_cache_free(c);
	close(x.fd);
}

/* A warmed cache answers as a cold one, and has its binaries open before the first lookup. */
Test(symbolize, warmer_prepares_binaries)
{
	sh("gcc -O2 -g -fPIE -pie -Wl,--build-id=sha1 -o '%s' '%s' && cp '%s' '%s'", tmp("warm-a"),
	   fixture("inline.c"), tmp("warm-a"), tmp("warm-a2"));
	build_split_lib("libwarm.so", "-Wl,--build-id=sha1 -gz=zlib");
	char hex[129];
	build_id_hex_of(tmp("libwarm.so"), hex, sizeof(hex));
	sh("mkdir -p '%s/wdbg/.build-id/%.2s' && cp '%s' '%s/wdbg/.build-id/%.2s/%s.debug'", tmpdir,
	   hex, tmp("libwarm.so.debug"), tmpdir, hex, hex + 2);
	const char *dirs[] = {tmp("wdbg"), NULL};
	struct sym_cache_config cfg = {.debug_dirs = dirs};
	uint64_t size, start = nm_addr(tmp("warm-a"), "outer_loop", false, &size);
	uint64_t hidden = nm_addr(tmp("libwarm.so.full"), "dyn_hidden", false, NULL);
	struct test_bin a, a2, lib;
	test_bin_open(&a, tmp("warm-a"));
	test_bin_open(&a2, tmp("warm-a2"));
	test_bin_open(&lib, tmp("libwarm.so"));

	struct sym_cache *warm = NULL, *cold = NULL;
	struct sym_warmer *w = NULL;
	cr_assert_eq(sym_cache_new(&cfg, &warm), 0);
	cr_assert_eq(sym_cache_new(&cfg, &cold), 0);
	cr_assert_eq(sym_warmer_new(warm, &w), 0);
	cr_assert_eq(sym_warmer_add(w, &a.b), 0);
	cr_assert_eq(sym_warmer_add(w, &lib.b), 0);
	cr_assert_eq(sym_warmer_add(w, &a2.b), 0, "a copy: another file, prepared on its own");
	/* The warmer has its own fds: the caller's may go. */
	close(a2.fd);
	struct sym_binary bad = {.fd = -1};
	cr_assert_eq(sym_warmer_add(w, &bad), -EINVAL);
	sym_warmer_finish(w);
	struct sym_cache_stats st = cache_stats(warm);
	cr_assert_eq(st.elf_opens, 3, "the three files were opened by the warmer");
	cr_assert_eq(st.n_results, 0, "and nothing was looked up");

	for (uint64_t i = 0; i < size; i++) {
		struct sym_result want, got;
		uint64_t off = offset_of(tmp("warm-a"), start + i);
		cr_assert_eq(sym_cache_lookup(cold, &a.b, off, true, &want), 0);
		cr_assert_eq(sym_cache_lookup(warm, &a.b, off, true, &got), 0);
		expect_same_result(&want, &got);
	}
	struct sym_result want, got;
	uint64_t off = offset_of(tmp("libwarm.so.full"), hidden + 1);
	cr_assert_eq(sym_cache_lookup(cold, &lib.b, off, true, &want), 0);
	cr_assert_eq(sym_cache_lookup(warm, &lib.b, off, true, &got), 0);
	cr_assert_eq(got.source, SYM_SOURCE_DWARF, "the debug file was found and read");
	expect_same_result(&want, &got);
	struct sym_binary_info info;
	cr_assert_eq(sym_cache_binary_info(warm, &lib.b, &info), 0);
	cr_assert(info.has_symbols && info.has_lines);
	cr_assert_eq(cache_stats(warm).elf_opens, 3, "no binary opened twice");

	/* Nothing given: finish right away. */
	cr_assert_eq(sym_warmer_new(warm, &w), 0);
	sym_warmer_finish(w);
	sym_warmer_finish(NULL);
	cr_assert_eq(sym_warmer_new(NULL, &w), -EINVAL);

	sym_cache_free(warm);
	sym_cache_free(cold);
	close(a.fd);
	close(lib.fd);
}

/*
 * Two files with one build-id and different function names (another user's copy of a library,
 * with the library's build-id and a renamed function): each file's lookups answer from that
 * file, whichever was looked up first, through the cache and through a warmer; a malformed
 * file claiming that build-id fails for itself only, for good, and the others still answer.
 */
Test(symbolize, cache_same_build_id_two_files_each_its_own)
{
	static const char src[] =
		"__attribute__((noinline)) int TWIN(int x) { return x * 3 + 1; }\n"
		"int twin_entry(int x) { return TWIN(x) + 2; }\n";
	write_file(tmp("twin.c"), src);
	sh("cd '%s' && mkdir gen nob && "
	   "gcc -O2 -g -shared -fPIC -DTWIN=genuine_work -Wl,--build-id=0x0badc0de00112233 "
	   "-o gen/libtwin.so twin.c && "
	   "gcc -O2 -g -shared -fPIC -DTWIN=hijack_work -Wl,--build-id=0x0badc0de00112233 "
	   "-o nob/libtwin.so twin.c && chown -R 65534:65534 nob",
	   tmpdir);
	/* Same layout, same build-id: only the names differ. */
	uint64_t g = nm_addr(tmp("gen/libtwin.so"), "genuine_work", false, NULL);
	uint64_t h = nm_addr(tmp("nob/libtwin.so"), "hijack_work", false, NULL);
	cr_assert_eq(g, h);
	uint64_t off = offset_of(tmp("gen/libtwin.so"), g);
	cr_assert_eq(off, offset_of(tmp("nob/libtwin.so"), h));
	write_file(tmp("bad.so"), "\177ELF but nothing else: a malformed file with a popular id\n");

	for (int order = 0; order < 3; order++) {
		struct test_bin gen, nob;
		test_bin_open(&gen, tmp("gen/libtwin.so"));
		test_bin_open(&nob, tmp("nob/libtwin.so"));
		cr_assert_eq(gen.id.build_id_len, 8);
		cr_assert_eq(nob.id.build_id_len, gen.id.build_id_len);
		cr_assert_eq(memcmp(gen.id.build_id, nob.id.build_id, 8), 0);
		/* The bad file claims the same build-id (the caller read it; here we say it). */
		struct test_bin bad = { .fd = open(tmp("bad.so"), O_RDONLY | O_CLOEXEC) };
		cr_assert_geq(bad.fd, 0);
		bad.b = (struct sym_binary){ .build_id = gen.id.build_id, .build_id_len = 8,
					     .fd = bad.fd, .path = tmp("bad.so") };

		struct sym_cache *c = NULL;
		cr_assert_eq(sym_cache_new(NULL, &c), 0);
		/* order 0: genuine first; 1: the copy first; 2: the bad file first, via a warmer. */
		const struct sym_binary *first[3][3] = {
			{ &gen.b, &nob.b, &bad.b },
			{ &nob.b, &bad.b, &gen.b },
			{ &bad.b, &nob.b, &gen.b },
		};
		if (order == 2) {
			struct sym_warmer *w = NULL;
			cr_assert_eq(sym_warmer_new(c, &w), 0);
			for (int i = 0; i < 3; i++)
				cr_assert_eq(sym_warmer_add(w, first[order][i]), 0);
			sym_warmer_finish(w);
		}
		for (int round = 0; round < 2; round++)
			for (int i = 0; i < 3; i++) {
				const struct sym_binary *b = first[order][i];
				struct sym_result r;
				struct sym_binary_info info;

				cr_assert_eq(sym_cache_lookup(c, b, off, false, &r), 0);
				cr_assert_eq(sym_cache_binary_info(c, b, &info), 0);
				if (b == &bad.b) {
					cr_assert_eq(r.source, SYM_SOURCE_NONE);
					cr_assert_eq(info.error, -ENOEXEC);
					continue;
				}
				cr_assert_eq(info.error, 0, "order %d: %s", order, b->path);
				cr_assert_eq(r.n_frames, 1, "order %d: %s", order, b->path);
				cr_assert_str_eq(r.frames[0].name,
						 b == &gen.b ? "genuine_work" : "hijack_work",
						 "order %d round %d: %s", order, round, b->path);
			}
		struct sym_cache_stats st = cache_stats(c);
		cr_assert_eq(st.n_binaries, 3);
		cr_assert_eq(st.elf_opens, 2, "order %d: the two good files, each once", order);
		/* Results are per file: the second round was all hits (the bad file caches none). */
		cr_assert_eq(st.hits, 2, "order %d", order);
		sym_cache_free(c);
		close(gen.fd);
		close(nob.fd);
		close(bad.fd);
	}
}

Test(symbolize, cache_without_build_id_keys_by_file)
{
	sh("gcc -O2 -g -Wl,--build-id=none -o '%s' '%s' && cp '%s' '%s'", tmp("nb1"),
	   fixture("inline.c"), tmp("nb1"), tmp("nb2"));
	struct test_bin a, a2, b;
	test_bin_open(&a, tmp("nb1"));
	test_bin_open(&a2, tmp("nb1"));
	test_bin_open(&b, tmp("nb2"));
	cr_assert_eq(a.b.build_id_len, 0);
	uint64_t off = offset_of(tmp("nb1"), nm_addr(tmp("nb1"), "plain_func", false, NULL));

	struct sym_cache *c = NULL;
	cr_assert_eq(sym_cache_new(NULL, &c), 0);
	struct sym_result r;
	cr_assert_eq(sym_cache_lookup(c, &a.b, off, true, &r), 0);
	cr_assert_str_eq(r.frames[0].name, "plain_func");
	/* The same file through another fd: same binary. A copy: another binary. */
	cr_assert_eq(sym_cache_lookup(c, &a2.b, off, true, &r), 0);
	cr_assert_eq(cache_stats(c).elf_opens, 1);
	cr_assert_eq(sym_cache_lookup(c, &b.b, off, true, &r), 0);
	cr_assert_str_eq(r.frames[0].name, "plain_func");
	cr_assert_eq(cache_stats(c).elf_opens, 2);

	/* Bad arguments. */
	struct sym_binary bad = { .build_id = NULL, .build_id_len = 3, .fd = a.fd };
	cr_assert_eq(sym_cache_lookup(c, &bad, off, true, &r), -EINVAL);
	cr_assert_eq(sym_cache_lookup(NULL, &a.b, off, true, &r), -EINVAL);
	const char *rel[] = { "relative/dir", NULL };
	struct sym_cache *c2 = NULL;
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .debug_dirs = rel }, &c2), -EINVAL);
	cr_assert_null(c2);
	sym_cache_free(c);
	close(a.fd);
	close(a2.fd);
	close(b.fd);
}

Test(symbolize, cache_debug_dirs_and_not_elf)
{
	build_split_lib("libcd.so", "-Wl,--build-id=sha1");
	char hex[129];
	build_id_hex_of(tmp("libcd.so"), hex, sizeof(hex));
	sh("mkdir -p '%s/dbg/.build-id/%.2s' && mv '%s' '%s/dbg/.build-id/%.2s/%s.debug'", tmpdir,
	   hex, tmp("libcd.so.debug"), tmpdir, hex, hex + 2);
	uint64_t off = offset_of(tmp("libcd.so.full"),
				 nm_addr(tmp("libcd.so.full"), "dyn_hidden", false, NULL));
	struct test_bin x;
	test_bin_open(&x, tmp("libcd.so"));

	const char *dirs[] = { tmp("dbg"), NULL };
	struct sym_cache *c = NULL;
	cr_assert_eq(sym_cache_new(&(struct sym_cache_config){ .debug_dirs = dirs }, &c), 0);
	struct sym_result r;
	cr_assert_eq(sym_cache_lookup(c, &x.b, off + 1, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_DWARF);
	cr_assert_str_eq(r.frames[r.n_frames - 1].name, "dyn_hidden");
	struct sym_binary_info info;
	cr_assert_eq(sym_cache_binary_info(c, &x.b, &info), 0);
	cr_assert(info.has_lines);

	/* Not an ELF: an error in the info, no name, no retry storm. */
	write_file(tmp("text"), "not an elf at all, just some text long enough to read\n");
	struct test_bin t = { .fd = open(tmp("text"), O_RDONLY | O_CLOEXEC) };
	cr_assert_geq(t.fd, 0);
	t.b = (struct sym_binary){ .fd = t.fd, .path = tmp("text") };
	cr_assert_eq(sym_cache_binary_info(c, &t.b, &info), 0);
	cr_assert_eq(info.error, -ENOEXEC);
	cr_assert_eq(sym_cache_lookup(c, &t.b, 0, true, &r), 0);
	cr_assert_eq(r.source, SYM_SOURCE_NONE);
	sym_cache_free(c);
	close(t.fd);
	close(x.fd);
}
