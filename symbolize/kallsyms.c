/* SPDX-License-Identifier: MIT */
/* /proc/kallsyms: text symbols of the kernel and its modules, sorted for binary search. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

struct ksym {
	uint64_t addr;
	const char *name; /* "func" or "func [module]", in the pool */
	uint8_t rank;     /* preference among aliases at one address: lower wins */
};

struct kallsyms {
	struct ksym *syms;
	size_t n;
	struct str_pool pool;
};

void kallsyms_free(struct kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	str_pool_done(&k->pool);
	free(k);
}
DEFINE_FREEP(struct kallsyms, kallsyms_free)

/* Globals before weak before locals, so an alias like "_stext"/"startup_64" resolves the
 * same way every time. -1: not a text symbol. */
static int text_rank(char type)
{
	switch (type) {
	case 'T':
		return 0;
	case 'W':
		return 1;
	case 't':
		return 2;
	case 'w':
		return 3;
	default:
		return -1;
	}
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Hex digit value + 1; 0: not a hex digit. */
static const uint8_t hex_value[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
	['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/*
 * Parse "addr type name[\t[module]]" in [line, eol) (eol: the line's '\n' or NUL, excluded).
 * Returns 1 with the fields set, 0 for a line that is not in that shape (ignored by the caller).
 */
static int parse_line(const char *line, const char *eol, uint64_t *ret_addr, char *ret_type,
		      const char **ret_name, size_t *ret_name_len, const char **ret_mod,
		      size_t *ret_mod_len)
{
	const char *p = line;
	uint64_t addr = 0;
	int digits = 0;
	uint8_t v;

	/* 1 to 16 hex digits (a table, not three ranges per digit), then a blank. */
	for (; p < eol && digits < 16 && (v = hex_value[(unsigned char)*p]); p++, digits++)
		addr = addr << 4 | (uint64_t)(v - 1);
	if (digits == 0 || p == eol || !is_blank(*p))
		return 0;
	p++;

	if (eol - p < 2 || is_blank(p[0]) || !is_blank(p[1]))
		return 0;
	*ret_type = *p;
	p += 2;

	const char *name = p;
	while (p < eol && !is_blank(*p))
		p++;
	if (p == name)
		return 0;
	size_t name_len = (size_t)(p - name);

	while (p < eol && is_blank(*p))
		p++;
	const char *mod = NULL;
	size_t mod_len = 0;
	if (p < eol && *p == '[') {
		const char *end = memchr(p, ']', (size_t)(eol - p));
		if (!end || end == p + 1)
			return 0;
		mod = p + 1;
		mod_len = (size_t)(end - mod);
		p = end + 1;
		while (p < eol && is_blank(*p))
			p++;
	}
	if (p < eol)
		return 0;

	*ret_addr = addr;
	*ret_name = name;
	*ret_name_len = name_len;
	*ret_mod = mod;
	*ret_mod_len = mod_len;
	return 1;
}

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Sort by address and keep one symbol per address (the preferred alias), so that end = next
 * start is > start. */
static void ksyms_sort_unique(struct kallsyms *k)
{
	size_t w = 0;

	if (k->n > 1)
		qsort(k->syms, k->n, sizeof(*k->syms), ksym_cmp);
	for (size_t i = 0; i < k->n; i++)
		if (w == 0 || k->syms[w - 1].addr != k->syms[i].addr)
			k->syms[w++] = k->syms[i];
	k->n = w;
}

int kallsyms_load(const char *path, struct kallsyms **ret)
{
	if (!path || !ret)
		return -EINVAL;

	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;

	_cleanup_(kallsyms_freep) struct kallsyms *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	str_pool_init(&k->pool, KALLSYMS_MAX_STRING_BYTES);

	size_t cap = 0, parsed = 0;
	bool any_nonzero = false;
	char line[KALLSYMS_MAX_LINE];

	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		/* A line that fills the buffer without its newline (and is not the last) is not
		 * kallsyms: KSYM_NAME_LEN plus a module name fit with plenty of room. */
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f))
			return -EBADMSG;

		uint64_t addr;
		char type;
		const char *name, *mod;
		size_t name_len, mod_len;
		if (!parse_line(line, line + strcspn(line, "\n"), &addr, &type, &name, &name_len,
				&mod, &mod_len))
			continue;
		parsed++;
		if (addr != 0)
			any_nonzero = true;
		int rank = text_rank(type);
		if (rank < 0)
			continue;

		int r = GROW_ARRAY(k->syms, cap, k->n + 1, KALLSYMS_MAX_ENTRIES);
		if (r < 0)
			return r;

		char buf[KALLSYMS_MAX_LINE + 4];
		int n = mod ? snprintf(buf, sizeof(buf), "%.*s [%.*s]", (int)name_len, name,
				       (int)mod_len, mod)
			    : snprintf(buf, sizeof(buf), "%.*s", (int)name_len, name);
		if (n < 0 || (size_t)n >= sizeof(buf))
			continue;
		const char *s = str_pool_strndup(&k->pool, buf, (size_t)n);
		if (!s)
			return -E2BIG;
		k->syms[k->n++] = (struct ksym){ .addr = addr, .name = s, .rank = (uint8_t)rank };
	}
	if (ferror(f))
		return -EIO;

	if (parsed == 0)
		return -ENODATA;
	/* kptr_restrict hides addresses by printing zeros for every symbol. */
	if (!any_nonzero)
		return -EACCES;
	if (k->n == 0)
		return -ENODATA;

	ksyms_sort_unique(k);
	*ret = TAKE_PTR(k);
	return 0;
}

/* ---- only what some addresses need ------------------------------------------------------- */

/* A symbol line of the file being read, pointing into its buffer. */
struct kline {
	uint64_t addr;
	const char *name, *mod;
	size_t name_len, mod_len;
	uint8_t rank;
	bool set;
};

static int kline_format(const struct kline *l, char *buf, size_t size)
{
	return l->mod ? snprintf(buf, size, "%.*s [%.*s]", (int)l->name_len, l->name,
				 (int)l->mod_len, l->mod)
		      : snprintf(buf, size, "%.*s", (int)l->name_len, l->name);
}

/* ksym_cmp() order on lines: address, then rank, then the name as it will be formatted. */
static int kline_cmp(const struct kline *x, const struct kline *y)
{
	char a[KALLSYMS_MAX_LINE + 4], b[KALLSYMS_MAX_LINE + 4];

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	/* Aliases of one address and rank: rare enough to format both. */
	kline_format(x, a, sizeof(a));
	kline_format(y, b, sizeof(b));
	return strcmp(a, b);
}

/* A whole file: mapped if it is a regular one (no copy, no fresh memory), else read. */
struct text {
	const char *p;
	size_t len;
	void *map; /* the mapping, or NULL when p was read into malloc()ed memory */
};

static void text_done(struct text *t)
{
	if (t->map)
		munmap(t->map, t->len);
	else
		free((char *)t->p);
	*t = (struct text){};
}

static int text_load(const char *path, struct text *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st;

	*ret = (struct text){};
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		void *m;

		if ((uint64_t)st.st_size > KALLSYMS_MAX_FILE_BYTES)
			return -EFBIG;
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			return -errno;
		*ret = (struct text){ .p = m, .len = (size_t)st.st_size, .map = m };
		return 0;
	}
	/* procfs files report size 0: grow as we go. */
	for (;;) {
		/* len <= KALLSYMS_MAX_FILE_BYTES here, so this limit is never the one hit. */
		int r = grow((void **)&buf, &cap, len + 4096, 1, KALLSYMS_MAX_FILE_BYTES + 4096);
		if (r < 0)
			return r;
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? -EINVAL : -errno;
		if (k == 0)
			break;
		len += (size_t)k;
		if (len > KALLSYMS_MAX_FILE_BYTES)
			return -EFBIG;
	}
	*ret = (struct text){ .p = TAKE_PTR(buf), .len = len };
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int ksym_from_kline(struct kallsyms *k, const struct kline *l)
{
	char buf[KALLSYMS_MAX_LINE + 4];
	int n = kline_format(l, buf, sizeof(buf));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return 0;
	const char *s = str_pool_strndup(&k->pool, buf, (size_t)n);
	if (!s)
		return -E2BIG;
	k->syms[k->n++] = (struct ksym){ .addr = l->addr, .name = s, .rank = l->rank };
	return 0;
}

/*
 * Keep l if it is the best answer so far for the gap it falls in: below[j] is the best symbol at
 * or below q[j] and above q[j - 1], above[j] the lowest symbol above q[j] and at or below
 * q[j + 1]. *last remembers the gap of the previous line (sorted input keeps hitting it).
 */
static void kline_place(const uint64_t *q, size_t m, size_t *last, struct kline *below,
			struct kline *above, const struct kline *l)
{
	/* First q[j] >= addr. */
	size_t lo = 0, hi = m;

	if ((*last == m || q[*last] >= l->addr) && (*last == 0 || q[*last - 1] < l->addr))
		lo = hi = *last;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q[mid] < l->addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	*last = lo;
	if (lo < m) {
		struct kline *b = &below[lo];
		if (!b->set || l->addr > b->addr || (l->addr == b->addr && kline_cmp(l, b) < 0))
			*b = *l;
	}
	if (lo > 0 && (!above[lo - 1].set || kline_cmp(l, &above[lo - 1]) < 0))
		above[lo - 1] = *l;
}

/* The table of the symbols kept for the m gaps (kline_place()), sorted, one per address. */
static int kallsyms_from_gaps(struct kline *below, struct kline *above, size_t m,
			      struct kallsyms **ret)
{
	int r;

	/* A gap without symbols: the answer comes from the neighbouring gap. */
	for (size_t j = 1; j < m; j++)
		if (!below[j].set)
			below[j] = below[j - 1];
	for (size_t j = m; j-- > 1;)
		if (!above[j - 1].set)
			above[j - 1] = above[j];

	_cleanup_(kallsyms_freep) struct kallsyms *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	str_pool_init(&k->pool, KALLSYMS_MAX_STRING_BYTES);
	k->syms = calloc(2 * m + 1, sizeof(*k->syms));
	if (!k->syms)
		return -ENOMEM;
	for (size_t j = 0; j < m; j++) {
		if (below[j].set && (r = ksym_from_kline(k, &below[j])) < 0)
			return r;
		if (above[j].set && (r = ksym_from_kline(k, &above[j])) < 0)
			return r;
	}
	ksyms_sort_unique(k);
	*ret = TAKE_PTR(k);
	return 0;
}

int kallsyms_load_for(const char *path, const uint64_t *addrs, size_t n_addrs, const char *find,
		      uint64_t *ret_find_addr, struct kallsyms **ret)
{
	size_t find_len = find ? strlen(find) : 0;
	bool found = false;

	if (!path || !ret || (n_addrs > 0 && !addrs) || (find && !ret_find_addr))
		return -EINVAL;
	if (find)
		*ret_find_addr = 0;
	if (n_addrs > KALLSYMS_MAX_ENTRIES)
		return -E2BIG;

	_cleanup_(text_done) struct text t = {};
	_cleanup_free_ uint64_t *q = NULL;
	/* The best symbols for the gaps between the asked addresses: see kline_place(). */
	_cleanup_free_ struct kline *below = NULL, *above = NULL;
	size_t m = 0, parsed = 0, n_text = 0, last = 0;
	bool any_nonzero = false;
	int r;

	r = text_load(path, &t);
	if (r < 0)
		return r;
	q = malloc((n_addrs ? n_addrs : 1) * sizeof(*q));
	below = calloc(n_addrs ? n_addrs : 1, sizeof(*below));
	above = calloc(n_addrs ? n_addrs : 1, sizeof(*above));
	if (!q || !below || !above)
		return -ENOMEM;
	if (n_addrs)
		memcpy(q, addrs, n_addrs * sizeof(*q));
	qsort(q, n_addrs, sizeof(*q), cmp_u64);
	for (size_t i = 0; i < n_addrs; i++)
		if (m == 0 || q[m - 1] != q[i])
			q[m++] = q[i];

	for (const char *line = t.p, *end = t.p + t.len; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line)), *eol, *next;

		if (!nl)
			nl = end;
		next = nl < end ? nl + 1 : end;
		/* As kallsyms_load() with its fgets() buffer: a line this long is not kallsyms, and
		 * a NUL ends what is read of one. */
		if ((size_t)(nl - line) >= KALLSYMS_MAX_LINE - 1)
			return -EBADMSG;
		eol = memchr(line, '\0', (size_t)(nl - line));
		if (!eol)
			eol = nl;
		struct kline l;
		char type;
		if (parse_line(line, eol, &l.addr, &type, &l.name, &l.name_len, &l.mod,
			       &l.mod_len)) {
			int rank = text_rank(type);

			parsed++;
			if (l.addr != 0)
				any_nonzero = true;
			if (rank >= 0) {
				if (++n_text > KALLSYMS_MAX_ENTRIES)
					return -E2BIG;
				if (find && !found && !l.mod && l.name_len == find_len &&
				    !memcmp(l.name, find, find_len)) {
					*ret_find_addr = l.addr;
					found = true;
				}
				l.rank = (uint8_t)rank;
				l.set = true;
				kline_place(q, m, &last, below, above, &l);
			}
		}
		line = next;
	}

	if (parsed == 0)
		return -ENODATA;
	if (!any_nonzero)
		return -EACCES;
	if (n_text == 0)
		return -ENODATA;
	return kallsyms_from_gaps(below, above, m, ret);
}

int kallsyms_lookup(const struct kallsyms *k, uint64_t addr, const char **ret_name,
		    uint64_t *ret_start)
{
	if (!k)
		return -EINVAL;
	if (k->n == 0 || addr < k->syms[0].addr)
		return -ENOENT;

	/* Last symbol with start <= addr. */
	size_t lo = 0, hi = k->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}

	const struct ksym *s = &k->syms[lo];
	/* There is no size in kallsyms: a symbol ends where the next begins; the last one gets
	 * a fixed span rather than the rest of the address space. */
	uint64_t end = lo + 1 < k->n ? k->syms[lo + 1].addr
				     : (s->addr > UINT64_MAX - KALLSYMS_LAST_SYMBOL_SIZE
						? UINT64_MAX
						: s->addr + KALLSYMS_LAST_SYMBOL_SIZE);
	if (addr >= end)
		return -ENOENT;

	if (ret_name)
		*ret_name = s->name;
	if (ret_start)
		*ret_start = s->addr;
	return 0;
}
