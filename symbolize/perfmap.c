/* SPDX-License-Identifier: MIT */
/*
 * JIT perf maps (/tmp/perf-PID.map): "START SIZE name" lines, appended to as code is compiled.
 * Parsed into disjoint ranges, the latest line winning where ranges overlap, for binary search.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

#define READ_CHUNK (64u * 1024)

/* One parsed line. seq orders lines in the file: higher is newer. */
struct pm_entry {
	uint64_t start, end;
	uint32_t seq;
	const char *name;
};

/* One disjoint range of the final table. */
struct pm_range {
	uint64_t start, end;
	uint64_t sym_start; /* start of the line it came from */
	const char *name;
};

struct perfmap {
	struct pm_range *ranges; /* sorted by start, disjoint */
	size_t n;
	uint64_t bytes; /* read from the file */
	struct str_pool pool;
};

void perfmap_free(struct perfmap *m)
{
	if (!m)
		return;
	free(m->ranges);
	str_pool_done(&m->pool);
	free(m);
}
DEFINE_FREEP(struct perfmap, perfmap_free)

struct pm_parser {
	struct perfmap *m;
	struct pm_entry *e;
	size_t n, cap;
	uint32_t seq;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Hex number with optional 0x, at most 16 digits. Advances *p. false: not a number. */
static bool parse_hex(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	if (end - s >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; s < end; s++, digits++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (digits >= 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0)
		return false;
	*p = s;
	*ret = v;
	return true;
}

/*
 * One line (without its newline; line[len] is writable). 0: added or ignored, <0: a limit
 * was hit.
 */
static int parse_line(struct pm_parser *ps, char *line, size_t len)
{
	const char *p = line, *end = line + len;
	uint64_t start, size, last;

	if (memchr(line, '\0', len))
		return 0; /* binary junk */
	while (p < end && is_blank(*p))
		p++;
	if (!parse_hex(&p, end, &start) || p == end || !is_blank(*p))
		return 0;
	while (p < end && is_blank(*p))
		p++;
	if (!parse_hex(&p, end, &size) || p == end || !is_blank(*p))
		return 0;
	while (p < end && is_blank(*p))
		p++;
	/* The name is the rest of the line (it may contain blanks), minus trailing space/CR. */
	while (end > p && (is_blank(end[-1]) || end[-1] == '\r'))
		end--;
	if (end == p || size == 0 || __builtin_add_overflow(start, size - 1, &last))
		return 0;

	int r = GROW_ARRAY(ps->e, ps->cap, ps->n + 1, PERFMAP_MAX_ENTRIES);
	if (r < 0)
		return r;

	/*
	 * One copy per line, not deduplicated: the names are the writer's to choose, and a hash
	 * table of them is only as fast as its worst collisions; the per-map byte cap bounds them.
	 */
	const char *v = str_pool_strndup(&ps->m->pool, p, (size_t)(end - p));
	if (!v)
		return -E2BIG; /* NULL from the pool is nearly always its byte budget, not malloc */

	ps->e[ps->n++] = (struct pm_entry){
		/* A range ending at the very top of the address space keeps end = UINT64_MAX
		 * (exclusive): its last byte is not covered, which no real code needs. */
		.start = start,
		.end = last == UINT64_MAX ? UINT64_MAX : last + 1,
		.seq = ps->seq,
		.name = v,
	};
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct pm_entry *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Max-heap of entry indices by seq: the newest line covering the current point on top. */
struct heap {
	uint32_t *v;
	size_t n;
};

static void heap_push(struct heap *h, const struct pm_entry *e, uint32_t i)
{
	size_t k = h->n++;

	while (k > 0) {
		size_t parent = (k - 1) / 2;
		if (e[h->v[parent]].seq >= e[i].seq)
			break;
		h->v[k] = h->v[parent];
		k = parent;
	}
	h->v[k] = i;
}

static void heap_pop(struct heap *h, const struct pm_entry *e)
{
	uint32_t last = h->v[--h->n];
	size_t k = 0;

	for (;;) {
		size_t c = 2 * k + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && e[h->v[c + 1]].seq > e[h->v[c]].seq)
			c++;
		if (e[h->v[c]].seq <= e[last].seq)
			break;
		h->v[k] = h->v[c];
		k = c;
	}
	if (h->n > 0)
		h->v[k] = last;
}

/*
 * Sweep over every range boundary, keeping the lines that cover the current point in a heap:
 * each piece between two boundaries belongs to the newest of them. O(n log n), at most 2n
 * ranges out.
 */
static int build_ranges(struct perfmap *m, struct pm_entry *e, size_t n)
{
	_cleanup_free_ uint64_t *pts = NULL;
	_cleanup_free_ uint32_t *hv = NULL;
	size_t np = 0;

	qsort(e, n, sizeof(*e), entry_cmp);
	pts = reallocarray(NULL, 2 * n, sizeof(*pts));
	hv = reallocarray(NULL, n, sizeof(*hv));
	m->ranges = reallocarray(NULL, 2 * n, sizeof(*m->ranges));
	if (!pts || !hv || !m->ranges)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		pts[np++] = e[i].start;
		pts[np++] = e[i].end;
	}
	qsort(pts, np, sizeof(*pts), u64_cmp);
	size_t w = 0;
	for (size_t i = 0; i < np; i++)
		if (w == 0 || pts[w - 1] != pts[i])
			pts[w++] = pts[i];
	np = w;

	struct heap h = { .v = hv };
	size_t j = 0;
	for (size_t i = 0; i + 1 < np; i++) {
		uint64_t x = pts[i];

		while (j < n && e[j].start <= x)
			heap_push(&h, e, (uint32_t)j++);
		while (h.n > 0 && e[h.v[0]].end <= x)
			heap_pop(&h, e);
		if (h.n == 0)
			continue;

		const struct pm_entry *top = &e[h.v[0]];
		struct pm_range *last = m->n ? &m->ranges[m->n - 1] : NULL;
		if (last && last->end == x && last->name == top->name &&
		    last->sym_start == top->start)
			last->end = pts[i + 1];
		else
			m->ranges[m->n++] = (struct pm_range){
				.start = x,
				.end = pts[i + 1],
				.sym_start = top->start,
				.name = top->name,
			};
	}
	return 0;
}

int perfmap_load_fd(int fd, struct perfmap **ret)
{
	struct stat st;
	off_t pos;

	if (fd < 0 || !ret)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	_cleanup_(perfmap_freep) struct perfmap *m = calloc(1, sizeof(*m));
	_cleanup_free_ char *chunk = malloc(READ_CHUNK);
	_cleanup_free_ char *line = malloc(PERFMAP_MAX_LINE + 1);
	if (!m || !chunk || !line)
		return -ENOMEM;
	str_pool_init(&m->pool, PERFMAP_MAX_STRING_BYTES);

	struct pm_parser ps = { .m = m };
	size_t llen = 0;
	uint64_t total = 0, limit = PERFMAP_MAX_FILE_BYTES;
	bool too_long = false;
	int r = 0;

	/*
	 * A larger file: only its last PERFMAP_MAX_FILE_BYTES, the lines written last (which win
	 * where ranges overlap anyway). Reading starts one byte earlier and skips up to the first
	 * newline, so a line cut by the start is dropped and a whole one is kept.
	 */
	pos = lseek(fd, 0, SEEK_CUR);
	if (pos >= 0 && st.st_size > pos && (uint64_t)(st.st_size - pos) > limit) {
		if (lseek(fd, st.st_size - (off_t)limit - 1, SEEK_SET) < 0)
			return -errno;
		too_long = true;
		limit++;
	}
	for (;;) {
		ssize_t k = read(fd, chunk, (size_t)MIN((uint64_t)READ_CHUNK, limit - total));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		total += (uint64_t)k; /* never past limit: what the JIT appends meanwhile waits */

		const char *p = chunk, *end = chunk + k;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t seg = (size_t)((nl ? nl : end) - p);

			if (!too_long) {
				if (llen + seg > PERFMAP_MAX_LINE)
					too_long = true; /* skipped up to its newline */
				else {
					memcpy(line + llen, p, seg);
					llen += seg;
				}
			}
			if (!nl)
				break;
			if (!too_long) {
				r = parse_line(&ps, line, llen);
				if (r < 0)
					goto out;
			}
			ps.seq++;
			llen = 0;
			too_long = false;
			p = nl + 1;
		}
		if (total >= limit)
			break;
	}
	/* A last line without its newline (the JIT may be writing it right now) still counts. */
	if (!too_long && llen > 0) {
		r = parse_line(&ps, line, llen);
		if (r < 0)
			goto out;
	}
	if (ps.n == 0) {
		r = -ENODATA;
		goto out;
	}
	r = build_ranges(m, ps.e, ps.n);
	if (r < 0)
		goto out;
	m->bytes = total;
	*ret = TAKE_PTR(m);
out:
	free(ps.e);
	return r;
}

int perfmap_load(const char *path, struct perfmap **ret)
{
	char self[64];
	struct stat st;

	if (!path || !ret)
		return -EINVAL;
	/* O_PATH first: nothing but a regular file is ever opened for reading. */
	_cleanup_close_ int pfd = open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (pfd < 0)
		return -errno;
	if (fstat(pfd, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	_cleanup_close_ int fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	return perfmap_load_fd(fd, ret);
}

int perfmap_lookup(const struct perfmap *m, uint64_t addr, const char **ret_name,
		   uint64_t *ret_start)
{
	if (!m)
		return -EINVAL;
	if (m->n == 0 || addr < m->ranges[0].start)
		return -ENOENT;

	/* Last range with start <= addr. */
	size_t lo = 0, hi = m->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->ranges[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	const struct pm_range *r = &m->ranges[lo];
	if (addr >= r->end)
		return -ENOENT;
	if (ret_name)
		*ret_name = r->name;
	if (ret_start)
		*ret_start = r->sym_start;
	return 0;
}

size_t perfmap_n_ranges(const struct perfmap *m)
{
	return m ? m->n : 0;
}

uint64_t perfmap_bytes(const struct perfmap *m)
{
	return m ? m->bytes : 0;
}
