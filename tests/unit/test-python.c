// SPDX-License-Identifier: MIT
/*
 * pipeline/python: location tables checked against CPython's own reading of them (Debian's
 * python3.11 prints co_lines() of real code objects), code objects read from synthetic memory
 * images laid out as 3.11, 3.12 and 3.13 lay them out, hostile images, the code cache.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/python/python.h"

#define PYTHON "/usr/bin/python3.11"

/* ---- location tables vs CPython */

/* Code objects of every shape the compiler makes: loops, try, with, comprehensions, nesting. */
static const char sample_py[] =
	"import sys\n"
	"def simple(a, b):\n"
	"    return a + b\n"
	"def loop(n):\n"
	"    s = 0\n"
	"    for i in range(n):\n"
	"        if i % 3 == 0:\n"
	"            s += i\n"
	"        else:\n"
	"            s -= 1\n"
	"    return s\n"
	"def multi(x):\n"
	"    y = (x +\n"
	"         2 *\n"
	"         x)\n"
	"    return [\n"
	"        z * y for z in range(x)\n"
	"        if z\n"
	"    ]\n"
	"def tryer(f):\n"
	"    try:\n"
	"        return f()\n"
	"    except (ValueError, KeyError) as e:\n"
	"        return str(e)\n"
	"    finally:\n"
	"        pass\n"
	"class K:\n"
	"    def method(self, q):\n"
	"        with open('/dev/null') as fh:\n"
	"            return {k: v for k, v in q.items()}\n"
	"def nested():\n"
	"    def inner(v):\n"
	"        return lambda w: v + w\n"
	"    return inner\n"
	"async def coro(t):\n"
	"    await t\n"
	"    return t\n"
	"def gen(n):\n"
	"    yield from range(n)\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"def far_below():\n"
	"    x = 1\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"\n"
	"    return x\n"
	"def codes(c):\n"
	"    yield c\n"
	"    for k in c.co_consts:\n"
	"        if hasattr(k, 'co_code'):\n"
	"            yield from codes(k)\n"
	"src = open(sys.argv[1]).read()\n"
	"top = compile(src, sys.argv[1], 'exec')\n"
	"for c in codes(top):\n"
	"    units = len(c.co_code) // 2\n"
	"    lines = [0] * units\n"
	"    for start, end, line in c.co_lines():\n"
	"        for u in range(start // 2, end // 2):\n"
	"            lines[u] = line if line is not None else 0\n"
	"    print(c.co_qualname, c.co_firstlineno, c.co_linetable.hex() or '-',\n"
	"          ','.join(map(str, lines)))\n";

static uint8_t *unhex(const char *h, size_t *ret_len)
{
	size_t n = strlen(h) / 2;
	uint8_t *b = malloc(n + 1);

	cr_assert_not_null(b);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		cr_assert_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		b[i] = (uint8_t)v;
	}
	*ret_len = n;
	return b;
}

Test(python, linetable_matches_cpython)
{
	char dir[] = "/tmp/profd-test-py-XXXXXX", path[256], cmd[600], line[1 << 16];
	size_t n_codes = 0, n_units = 0;
	FILE *f;

	cr_assert_eq(access(PYTHON, X_OK), 0, PYTHON " is missing: `make deps` installs it");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sample.py", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(sample_py, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), PYTHON " '%s' '%s'", path, path);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[256], hex[1 << 14], units[1 << 15];
		int first;
		size_t len = 0;
		uint8_t *tab;
		char *save = NULL, *tok;
		uint32_t u = 0;

		cr_assert_eq(sscanf(line, "%255s %d %16383s %32767s", name, &first, hex, units), 4,
			     "%s", line);
		tab = strcmp(hex, "-") ? unhex(hex, &len) : NULL;
		for (tok = strtok_r(units, ",", &save); tok; tok = strtok_r(NULL, ",", &save), u++) {
			int32_t got = -1;
			int r = py_linetable_line(tab, len, first, u, &got);

			cr_assert_eq(r, 1, "%s unit %u: r=%d", name, u, r);
			cr_assert_eq(got, atoi(tok), "%s unit %u: line %d, CPython says %s", name, u,
				     got, tok);
			n_units++;
		}
		/* One past the last unit: the table has ended. */
		cr_assert_eq(py_linetable_line(tab, len, first, u + 64, &(int32_t){ 0 }), 0, "%s",
			     name);
		free(tab);
		n_codes++;
	}
	cr_assert_eq(pclose(f), 0, "python3.11 failed");
	cr_assert_geq(n_codes, 15, "only %zu code objects", n_codes);
	cr_assert_geq(n_units, 300, "only %zu instructions", n_units);
	unlink(path);
	rmdir(dir);
}

Test(python, linetable_malformed)
{
	static const struct {
		const char *what;
		uint8_t t[8];
		size_t len;
	} bad[] = {
		{ "no entry start bit", { 0x01, 0x02 }, 2 },
		{ "varint runs off the end", { 0x80 | 13 << 3, 0x41 }, 2 },
		{ "varint runs into the next entry", { 0x80 | 13 << 3, 0x41, 0x80 }, 3 },
		{ "long form cut short", { 0x80 | 14 << 3, 0x02, 0x00 }, 3 },
		{ "endless varint", { 0x80 | 13 << 3, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01 }, 8 },
		{ "one-line form without its columns", { 0x80 | 11 << 3 }, 1 },
	};
	int32_t line;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(py_linetable_line(bad[i].t, bad[i].len, 1, 5, &line), -EBADMSG, "%s",
			     bad[i].what);
	/* A line pushed below 0 or past INT32_MAX is no line. */
	static const uint8_t down[] = { 0x80 | 13 << 3, 0x05 }; /* -2 */
	cr_assert_eq(py_linetable_line(down, 2, 1, 0, &line), 1);
	cr_assert_eq(line, 0);
}

/* ---- synthetic images */

#define BASE 0x100000ull
#define IMG 8192

struct image {
	uint8_t b[IMG];
	unsigned reads;
};

static int image_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	struct image *im = userdata;

	im->reads++;
	if (addr < BASE || addr - BASE > IMG || len > IMG - (addr - BASE))
		return -EFAULT;
	memcpy(buf, im->b + (addr - BASE), len);
	return 0;
}

static void put64(struct image *im, uint64_t addr, uint64_t v)
{
	memcpy(im->b + (addr - BASE), &v, 8);
}

static void put32(struct image *im, uint64_t addr, uint32_t v)
{
	memcpy(im->b + (addr - BASE), &v, 4);
}

/* A compact string: ASCII (kind 1 + ascii bit) or UCS1/UCS2/UCS4 of `n` code points. */
static void put_str(struct image *im, const struct py_layout *l, uint64_t addr, unsigned kind,
		    bool ascii, const uint32_t *cps, size_t n)
{
	uint64_t data = addr + (ascii ? l->unicode_ascii_size : l->unicode_compact_size);

	put64(im, addr + l->unicode_length, n);
	put32(im, addr + l->unicode_state, kind << 2 | 1u << 5 | (ascii ? 1u << 6 : 0));
	for (size_t i = 0; i < n; i++) {
		if (kind == 1)
			im->b[data - BASE + i] = (uint8_t)cps[i];
		else if (kind == 2) {
			im->b[data - BASE + 2 * i] = (uint8_t)cps[i];
			im->b[data - BASE + 2 * i + 1] = (uint8_t)(cps[i] >> 8);
		} else
			put32(im, data + 4 * i, cps[i]);
	}
}

/* units 0-1 → 11, 2 → 12, 3 → none, 4 → 10 (firstlineno 10) */
static const uint8_t table[] = {
	0x80 | 13 << 3 | 1, 0x02,             /* no columns, +1, 2 units */
	0x80 | 11 << 3 | 0, 0x00, 0x05,       /* one line, +1, 1 unit */
	0x80 | 15 << 3 | 0,                   /* no location, 1 unit */
	0x80 | 14 << 3 | 0, 0x05, 0, 1, 2,    /* long, -2, 1 unit */
};

#define CODE (BASE + 0x100)
#define QUAL (BASE + 0x400)
#define FILE_ (BASE + 0x800)
#define LTAB (BASE + 0xc00)
#define TYPE 0xabcdef0ull

static void build_code(struct image *im, const struct py_layout *l, unsigned qual_kind,
		       const uint32_t *qual, size_t n_qual)
{
	static const uint32_t file[] = { 'c', 'a', 'f', 0xe9, '.', 'p', 'y' };

	memset(im, 0, sizeof(*im));
	put64(im, CODE + l->ob_type, TYPE);
	put64(im, CODE + l->code_qualname, QUAL);
	put64(im, CODE + l->code_filename, FILE_);
	put64(im, CODE + l->code_linetable, LTAB);
	put32(im, CODE + l->code_firstlineno, 10);
	bool ascii = qual_kind == 1;

	for (size_t i = 0; i < n_qual; i++)
		ascii = ascii && qual[i] < 0x80;
	put_str(im, l, QUAL, qual_kind, ascii, qual, n_qual);
	put_str(im, l, FILE_, 1, false, file, 7);
	put64(im, LTAB + l->bytes_size, sizeof(table));
	memcpy(im->b + (LTAB + l->bytes_sval - BASE), table, sizeof(table));
}

/* A _Py_DebugOffsets block as 3.13.0 publishes it (positions and values from its build). */
static void debug_offsets_313(uint8_t *b, size_t size)
{
	static const struct {
		size_t pos;
		uint64_t v;
	} f[] = { { 8, 0x030d00f0 }, { 16, 0 },   { 40, 632 },  { 64, 7264 }, { 72, 7344 },
		  { 168, 8 },        { 184, 72 }, { 200, 160 }, { 232, 8 },   { 240, 0 },
		  { 248, 56 },       { 264, 70 }, { 280, 112 }, { 288, 120 }, { 296, 128 },
		  { 304, 136 },      { 312, 68 }, { 344, 200 }, { 360, 8 },   { 520, 16 },
		  { 528, 32 },       { 544, 32 }, { 552, 16 },  { 560, 40 } };

	memset(b, 0, size);
	memcpy(b, "xdebugpy", 8);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		memcpy(b + f[i].pos, &f[i].v, 8);
}

static void layouts(struct py_layout ret[3])
{
	uint8_t dbg[1024];

	cr_assert_eq(py_layout_from_version(0x030b02f0, &ret[0]), 0);
	cr_assert_eq(py_layout_from_version(0x030c01f0, &ret[1]), 0);
	debug_offsets_313(dbg, sizeof(dbg));
	cr_assert_eq(py_layout_from_debug_offsets(dbg, sizeof(dbg), &ret[2]), 0);
}

Test(python, layouts)
{
	struct py_layout l[3];
	uint8_t dbg[1024];

	layouts(l);
	cr_assert_eq(l[0].frame_is_entry, 68);
	cr_assert_eq(l[0].owner_cstack, 0xff);
	cr_assert_eq(l[1].owner_cstack, 3);
	cr_assert_eq(l[1].tstate_current_frame, PY_OFF_NONE);
	cr_assert_eq(l[2].tstate_current_frame, 72);
	cr_assert_eq(l[2].tstate_cframe, PY_OFF_NONE);
	cr_assert_eq(l[2].interp_threads_head, 7344);
	cr_assert_eq(l[2].code_adaptive, 200);
	cr_assert_eq(l[2].unicode_compact_size, 56);
	cr_assert_eq(l[2].version_hex, 0x030d00f0);
	cr_assert_eq(py_layout_from_version(0x030a0cf0, &l[0]), -EOPNOTSUPP, "3.10");
	cr_assert_eq(py_layout_from_version(0x030d00f0, &l[0]), -EOPNOTSUPP, "3.13 self-describes");
	/* Bad blocks. */
	debug_offsets_313(dbg, sizeof(dbg));
	cr_assert_eq(py_layout_from_debug_offsets(dbg, 100, &l[0]), -EBADMSG, "short");
	dbg[0] = 'X';
	cr_assert_eq(py_layout_from_debug_offsets(dbg, sizeof(dbg), &l[0]), -EBADMSG, "cookie");
	debug_offsets_313(dbg, sizeof(dbg));
	memcpy(dbg + 16, &(uint64_t){ 1 }, 8);
	cr_assert_eq(py_layout_from_debug_offsets(dbg, sizeof(dbg), &l[0]), -EOPNOTSUPP,
		     "free-threaded");
	debug_offsets_313(dbg, sizeof(dbg));
	memcpy(dbg + 7344 % 8 + 72, &(uint64_t){ 1ull << 40 }, 8);
	cr_assert_eq(py_layout_from_debug_offsets(dbg, sizeof(dbg), &l[0]), -EBADMSG, "huge offset");
	debug_offsets_313(dbg, sizeof(dbg));
	memcpy(dbg + 8, &(uint64_t){ 0x030e00f0 }, 8);
	cr_assert_eq(py_layout_from_debug_offsets(dbg, sizeof(dbg), &l[0]), -EOPNOTSUPP, "3.14");
}

Test(python, code_objects_per_version)
{
	static const uint32_t ascii[] = { 'K', '.', 'm', 'e', 't', 'h' };
	static const uint32_t latin1[] = { 'f', 0xfc, 'r' };
	static const uint32_t ucs2[] = { 0x3053, 0x3093, '_', 'f' };
	static const uint32_t ucs4[] = { 'g', 0x1f600 };
	static const struct {
		unsigned kind;
		const uint32_t *cp;
		size_t n;
		const char *utf8;
	} names[] = { { 1, ascii, 6, "K.meth" },
		      { 1, latin1, 3, "f\xc3\xbcr" },
		      { 2, ucs2, 4, "\xe3\x81\x93\xe3\x82\x93_f" },
		      { 4, ucs4, 2, "g\xf0\x9f\x98\x80" } };
	static struct image im;
	struct py_layout l[3];

	layouts(l);
	for (size_t v = 0; v < 3; v++)
		for (size_t k = 0; k < 4; k++) {
			struct py_code *c = NULL;

			build_code(&im, &l[v], names[k].kind, names[k].cp, names[k].n);
			cr_assert_eq(py_code_read(&l[v], image_read, &im, CODE, TYPE, &c), 0,
				     "version %zu name %zu", v, k);
			cr_assert_str_eq(c->qualname, names[k].utf8, "version %zu name %zu: %s", v, k, c->qualname);
			cr_assert_str_eq(c->filename, "caf\xc3\xa9.py");
			cr_assert_eq(c->firstlineno, 10);
			cr_assert_eq(c->linetable_len, sizeof(table));
			/* instruction offsets are bytes from the code object's start */
			uint64_t a = l[v].code_adaptive;
			cr_assert_eq(py_code_line(c, a + 0), 11);
			cr_assert_eq(py_code_line(c, a + 2), 11);
			cr_assert_eq(py_code_line(c, a + 4), 12);
			cr_assert_eq(py_code_line(c, a + 6), 0, "no location");
			cr_assert_eq(py_code_line(c, a + 8), 10);
			cr_assert_eq(py_code_line(c, a + 10), 0, "past the table");
			cr_assert_eq(py_code_line(c, a - 2), 0, "before the first instruction");
			cr_assert_eq(py_code_line(c, a + 3), 0, "odd");
			cr_assert_eq(py_code_line(c, 0xffffffffu), 0, "unknown");
			py_code_unref(c);
		}
}

Test(python, hostile_images)
{
	static const uint32_t q[] = { 'f' };
	static struct image im;
	struct py_layout l[3];
	struct py_code *c = NULL;
	char buf[64];

	layouts(l);
	build_code(&im, &l[0], 1, q, 1);
	cr_assert_eq(py_code_read(&l[0], image_read, &im, CODE, TYPE + 8, &c), -EBADMSG, "type");
	cr_assert_lt(py_code_read(&l[0], image_read, &im, BASE + IMG - 8, 0, &c), 0, "outside");
	cr_assert_eq(py_code_read(&l[0], image_read, &im, 0, 0, &c), -EBADMSG, "NULL");
	cr_assert_eq(py_code_read(&l[0], image_read, &im, CODE + 3, 0, &c), -EBADMSG, "unaligned");

	/* A string that claims 2^40 characters: capped, then the read runs out of the image. */
	put64(&im, QUAL + l[0].unicode_length, 1ull << 40);
	cr_assert_lt(py_unicode_read(&l[0], image_read, &im, QUAL, buf, sizeof(buf)), 0);
	/* ... and the code object keeps a placeholder name. */
	cr_assert_eq(py_code_read(&l[0], image_read, &im, CODE, TYPE, &c), 0);
	cr_assert_str_eq(c->qualname, "<unknown>");
	py_code_unref(c);
	/* Not compact, or a kind that does not exist. */
	build_code(&im, &l[0], 1, q, 1);
	put32(&im, QUAL + l[0].unicode_state, 1u << 2);
	cr_assert_eq(py_unicode_read(&l[0], image_read, &im, QUAL, buf, sizeof(buf)), -EBADMSG);
	put32(&im, QUAL + l[0].unicode_state, 3u << 2 | 1u << 5);
	cr_assert_eq(py_unicode_read(&l[0], image_read, &im, QUAL, buf, sizeof(buf)), -EBADMSG);
	/* Said ASCII, is not: replaced, never passed on as invalid UTF-8. */
	build_code(&im, &l[0], 1, q, 1);
	im.b[QUAL + l[0].unicode_ascii_size - BASE] = 0xff;
	cr_assert_eq(py_unicode_read(&l[0], image_read, &im, QUAL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "?");
	/* A long name is cut at a character boundary. */
	static uint32_t many[40];
	for (size_t i = 0; i < 40; i++)
		many[i] = 0x3042;
	build_code(&im, &l[0], 2, many, 40);
	cr_assert_eq(py_unicode_read(&l[0], image_read, &im, QUAL, buf, 8), 0);
	cr_assert_str_eq(buf, "\xe3\x81\x82\xe3\x81\x82");
	/* Surrogates are no characters. */
	static const uint32_t sur[] = { 0xd800, 'x' };
	build_code(&im, &l[0], 2, sur, 2);
	cr_assert_eq(py_unicode_read(&l[0], image_read, &im, QUAL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "?x");
	/* A location table of 2^40 bytes is not read: the frame just has no line. */
	build_code(&im, &l[0], 1, q, 1);
	put64(&im, LTAB + l[0].bytes_size, 1ull << 40);
	cr_assert_eq(py_code_read(&l[0], image_read, &im, CODE, TYPE, &c), 0);
	cr_assert_null(c->linetable);
	cr_assert_eq(py_code_line(c, l[0].code_adaptive), 0);
	py_code_unref(c);
	/* A malformed table gives no line, not a crash. */
	build_code(&im, &l[0], 1, q, 1);
	im.b[LTAB + l[0].bytes_sval - BASE] = 0x01;
	cr_assert_eq(py_code_read(&l[0], image_read, &im, CODE, TYPE, &c), 0);
	cr_assert_eq(py_code_line(c, l[0].code_adaptive + 2), 0);
	py_code_unref(c);
}

/* Every address in [CODES, CODES + n * 256) reads as a copy of the code object at CODE. */
#define CODES 0x40000000ull
static int many_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	if (addr >= CODES && addr < CODES + (1ull << 30))
		addr = CODE + (addr - CODES) % 256;
	return image_read(userdata, addr, buf, len);
}

Test(python, code_cache)
{
	static const uint32_t q[] = { 'f' };
	static struct image im;
	struct py_layout l[3];
	struct py_code_cache *cache;
	const struct py_code *c, *first;
	unsigned reads;

	layouts(l);
	build_code(&im, &l[0], 1, q, 1);
	cr_assert_eq(py_code_cache_new(&cache), 0);
	cr_assert_eq(py_code_cache_get(cache, &l[0], many_read, &im, CODES, TYPE, 1, &first), 0);
	/* A hit reads nothing. */
	reads = im.reads;
	cr_assert_eq(py_code_cache_get(cache, &l[0], many_read, &im, CODES, TYPE, 2, &c), 0);
	cr_assert_eq(c, first);
	cr_assert_eq(im.reads, reads);
	/* A bad address is remembered: no read again until PY_CODE_RETRY_NS have passed. */
	cr_assert_lt(py_code_cache_get(cache, &l[0], many_read, &im, 8, TYPE, 100, &c), 0);
	reads = im.reads;
	cr_assert_lt(py_code_cache_get(cache, &l[0], many_read, &im, 8, TYPE, 200, &c), 0);
	cr_assert_eq(im.reads, reads);
	cr_assert_lt(py_code_cache_get(cache, &l[0], many_read, &im, 8, TYPE,
				       100 + PY_CODE_RETRY_NS, &c), 0);
	cr_assert_gt(im.reads, reads);
	/* Bounded: the oldest go first. */
	for (uint64_t i = 1; i < PY_CODE_CACHE_MAX + 10; i++)
		cr_assert_eq(py_code_cache_get(cache, &l[0], many_read, &im, CODES + i * 256, TYPE,
					       300, &c),
			     0);
	cr_assert_eq(py_code_cache_size(cache), PY_CODE_CACHE_MAX);
	reads = im.reads;
	cr_assert_eq(py_code_cache_get(cache, &l[0], many_read, &im, CODES, TYPE, 400, &c), 0);
	cr_assert_gt(im.reads, reads, "the first entry should have been evicted");
	/* A code object handed out and referenced outlives the cache. */
	struct py_code *kept = py_code_ref((struct py_code *)c);
	py_code_cache_free(cache);
	cr_assert_str_eq(kept->qualname, "f");
	py_code_unref(kept);
}
