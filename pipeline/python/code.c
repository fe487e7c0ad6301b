// SPDX-License-Identifier: MIT
/*
 * CPython code objects, strings and location tables, read through a memory reader. Every
 * value read is hostile: lengths are capped, loops bounded, pointers only ever passed back
 * to the reader. See python.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "pipeline/python/python.h"

/* ---- location tables (CPython 3.11+, Objects/locations.md) */

enum {
	LOC_SHORT_MAX = 9,     /* 0..9: same line, one byte of columns */
	LOC_ONE_LINE_MIN = 10, /* 10..12: line += code - 10, two bytes of columns */
	LOC_ONE_LINE_MAX = 12,
	LOC_NO_COLUMNS = 13,   /* line += svarint */
	LOC_LONG = 14,         /* line += svarint, then end line, column, end column varints */
	LOC_NONE = 15,         /* no location */
};

/* A varint of 6-bit chunks, low first; bit 6 says another follows. */
static int read_varint(const uint8_t *t, size_t len, size_t *i, uint32_t *ret)
{
	uint32_t v = 0;

	for (unsigned shift = 0; shift < 32; shift += 6) {
		uint8_t b;

		if (*i >= len)
			return -EBADMSG;
		b = t[(*i)++];
		if (b & 0x80)
			return -EBADMSG; /* the start of the next entry: this one is cut short */
		v |= (uint32_t)(b & 63) << shift;
		if (!(b & 64)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int read_svarint(const uint8_t *t, size_t len, size_t *i, int32_t *ret)
{
	uint32_t u;
	int r = read_varint(t, len, i, &u);

	if (r < 0)
		return r;
	*ret = (u & 1) ? -(int32_t)(u >> 1) : (int32_t)(u >> 1);
	return 0;
}

int py_linetable_line(const uint8_t *table, size_t len, int32_t firstlineno, uint32_t unit,
		      int32_t *ret_line)
{
	int64_t line = firstlineno;
	uint64_t addr = 0;
	size_t i = 0;

	if (!table && len)
		return -EBADMSG;
	while (i < len) {
		uint8_t b = table[i++];
		unsigned code = (b >> 3) & 15, n = (b & 7) + 1;
		int32_t delta = 0;
		uint32_t skip;
		int r = 0;

		if (!(b & 0x80))
			return -EBADMSG;
		if (code <= LOC_SHORT_MAX) {
			i++;
		} else if (code <= LOC_ONE_LINE_MAX) {
			delta = (int32_t)code - LOC_ONE_LINE_MIN;
			i += 2;
		} else if (code == LOC_NO_COLUMNS) {
			r = read_svarint(table, len, &i, &delta);
		} else if (code == LOC_LONG) {
			r = read_svarint(table, len, &i, &delta);
			for (int k = 0; k < 3 && r >= 0; k++)
				r = read_varint(table, len, &i, &skip);
		}
		if (r < 0 || i > len)
			return -EBADMSG;
		line += delta;
		if (line < INT32_MIN || line > INT32_MAX)
			return -EBADMSG;
		if (unit < addr + n) {
			*ret_line = code == LOC_NONE || line < 0 ? 0 : (int32_t)line;
			return 1;
		}
		addr += n;
	}
	return 0;
}

/* ---- strings */

static size_t put_utf8(char *out, uint32_t c)
{
	if (c >= 0xd800 && c <= 0xdfff)
		c = '?'; /* a lone surrogate is no character */
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 63));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 63));
		out[2] = (char)(0x80 | (c & 63));
		return 3;
	}
	if (c < 0x110000) {
		out[0] = (char)(0xf0 | c >> 18);
		out[1] = (char)(0x80 | (c >> 12 & 63));
		out[2] = (char)(0x80 | (c >> 6 & 63));
		out[3] = (char)(0x80 | (c & 63));
		return 4;
	}
	out[0] = '?';
	return 1;
}

int py_unicode_read(const struct py_layout *l, py_read_fn read, void *userdata, uint64_t addr,
		    char *buf, size_t size)
{
	uint8_t raw[PY_MAX_STRING * 4];
	uint64_t length;
	uint32_t state;
	unsigned kind, width;
	size_t n, out = 0;
	int r;

	if (!buf || size == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (!addr)
		return -EBADMSG;
	r = read(userdata, addr + l->unicode_length, &length, sizeof(length));
	if (r < 0)
		return r;
	r = read(userdata, addr + l->unicode_state, &state, sizeof(state));
	if (r < 0)
		return r;
	kind = (state >> 2) & 7;
	if (!((state >> 5) & 1))
		return -EBADMSG; /* not compact: code object names always are */
	if (length > PY_MAX_STRING_CHARS)
		return -EBADMSG; /* no name or file name is that long */
	if ((state >> 6) & 1) { /* compact ASCII */
		width = 1;
		addr += l->unicode_ascii_size;
	} else if (kind == 1 || kind == 2 || kind == 4) {
		width = kind;
		addr += l->unicode_compact_size;
	} else {
		return -EBADMSG;
	}
	n = (size_t)MIN(length, (uint64_t)PY_MAX_STRING);
	r = read(userdata, addr, raw, n * width);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint32_t c;
		char tmp[4];
		size_t k;

		if (width == 1)
			c = raw[i];
		else if (width == 2)
			c = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
		else
			memcpy(&c, raw + 4 * i, 4);
		if (((state >> 6) & 1 && c >= 0x80) || c == 0)
			c = '?'; /* said ASCII, is not; or would end the string early */
		k = put_utf8(tmp, c);
		if (out + k >= size)
			break; /* cut at a character boundary */
		memcpy(buf + out, tmp, k);
		out += k;
	}
	buf[out] = '\0';
	return 0;
}

/* ---- code objects */

struct py_code *py_code_ref(struct py_code *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void py_code_unref(struct py_code *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(c->qualname);
	free(c->filename);
	free(c->linetable);
	free(c);
}

static int read_ptr(py_read_fn read, void *userdata, uint64_t addr, uint64_t *ret)
{
	return read(userdata, addr, ret, sizeof(*ret));
}

int py_code_read(const struct py_layout *l, py_read_fn read, void *userdata, uint64_t addr,
		 uint64_t code_type, struct py_code **ret)
{
	char name[PY_MAX_STRING + 1];
	uint64_t type, qualname, filename, linetable, tlen;
	int32_t firstlineno;
	struct py_code *c;
	int r;

	if (!addr || (addr & 7))
		return -EBADMSG;
	if ((r = read_ptr(read, userdata, addr + l->ob_type, &type)) < 0 ||
	    (r = read_ptr(read, userdata, addr + l->code_qualname, &qualname)) < 0 ||
	    (r = read_ptr(read, userdata, addr + l->code_filename, &filename)) < 0 ||
	    (r = read_ptr(read, userdata, addr + l->code_linetable, &linetable)) < 0 ||
	    (r = read(userdata, addr + l->code_firstlineno, &firstlineno, sizeof(firstlineno))) < 0)
		return r;
	if (code_type && type != code_type)
		return -EBADMSG;
	if (firstlineno < 0)
		return -EBADMSG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->firstlineno = firstlineno;
	c->code_adaptive = l->code_adaptive;
	if (py_unicode_read(l, read, userdata, qualname, name, sizeof(name)) < 0 || !name[0])
		snprintf(name, sizeof(name), "<unknown>");
	c->qualname = strdup(name);
	if (py_unicode_read(l, read, userdata, filename, name, sizeof(name)) < 0)
		name[0] = '\0';
	c->filename = strdup(name);
	if (!c->qualname || !c->filename) {
		py_code_unref(c);
		return -ENOMEM;
	}
	/* The location table: a bytes object. Without it, frames just have no line. */
	if (linetable && read_ptr(read, userdata, linetable + l->bytes_size, &tlen) >= 0 &&
	    tlen > 0 && tlen <= PY_MAX_LINETABLE) {
		c->linetable = malloc(tlen);
		if (!c->linetable) {
			py_code_unref(c);
			return -ENOMEM;
		}
		if (read(userdata, linetable + l->bytes_sval, c->linetable, tlen) < 0) {
			free(c->linetable);
			c->linetable = NULL;
		} else {
			c->linetable_len = tlen;
		}
	}
	*ret = c;
	return 0;
}

int32_t py_code_line(const struct py_code *c, uint64_t instr_delta)
{
	int32_t line = 0;

	if (!c || !c->linetable || instr_delta < c->code_adaptive ||
	    ((instr_delta - c->code_adaptive) & 1) || instr_delta >= 0xffffffffull)
		return 0;
	if (py_linetable_line(c->linetable, c->linetable_len, c->firstlineno,
			      (uint32_t)((instr_delta - c->code_adaptive) / 2), &line) <= 0)
		return 0;
	return line;
}

/* ---- per-process cache */

#define CACHE_BUCKETS 4096

struct cache_entry {
	struct cache_entry *next;
	uint64_t addr;
	struct py_code *code; /* NULL: failed to read at failed_ns */
	uint64_t failed_ns;
};

struct py_code_cache {
	struct cache_entry *buckets[CACHE_BUCKETS];
	struct cache_entry **order; /* ring, oldest at `head`: who goes first when full */
	size_t n, head;
};

int py_code_cache_new(struct py_code_cache **ret)
{
	struct py_code_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->order = calloc(PY_CODE_CACHE_MAX, sizeof(*c->order));
	if (!c->order) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void py_code_cache_free(struct py_code_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_BUCKETS; i++)
		while (c->buckets[i]) {
			struct cache_entry *e = c->buckets[i];

			c->buckets[i] = e->next;
			py_code_unref(e->code);
			free(e);
		}
	free(c->order);
	free(c);
}

size_t py_code_cache_size(const struct py_code_cache *c)
{
	return c ? c->n : 0;
}

static size_t bucket_of(uint64_t addr)
{
	return (size_t)((addr >> 3) * 0x9e3779b97f4a7c15ull >> 52) & (CACHE_BUCKETS - 1);
}

static void evict_oldest(struct py_code_cache *c)
{
	struct cache_entry *old = c->order[c->head], **pe;

	for (pe = &c->buckets[bucket_of(old->addr)]; *pe; pe = &(*pe)->next)
		if (*pe == old) {
			*pe = old->next;
			break;
		}
	py_code_unref(old->code);
	free(old);
	c->order[c->head] = NULL;
	c->head = (c->head + 1) % PY_CODE_CACHE_MAX;
	c->n--;
}

int py_code_cache_get(struct py_code_cache *c, const struct py_layout *l, py_read_fn read,
		      void *userdata, uint64_t addr, uint64_t code_type, uint64_t now_ns,
		      const struct py_code **ret)
{
	struct cache_entry *e;
	struct py_code *code = NULL;
	int r;

	for (e = c->buckets[bucket_of(addr)]; e; e = e->next)
		if (e->addr == addr) {
			if (e->code) {
				*ret = e->code;
				return 0;
			}
			if (now_ns - e->failed_ns < PY_CODE_RETRY_NS)
				return -EBADMSG;
			r = py_code_read(l, read, userdata, addr, code_type, &code);
			if (r < 0) {
				e->failed_ns = now_ns;
				return r;
			}
			e->code = code;
			*ret = code;
			return 0;
		}
	r = py_code_read(l, read, userdata, addr, code_type, &code);
	if (r == -ENOMEM)
		return r;
	if (c->n == PY_CODE_CACHE_MAX)
		evict_oldest(c);
	e = calloc(1, sizeof(*e));
	if (!e) {
		py_code_unref(code);
		return -ENOMEM;
	}
	e->addr = addr;
	e->code = r >= 0 ? code : NULL;
	e->failed_ns = now_ns;
	e->next = c->buckets[bucket_of(addr)];
	c->buckets[bucket_of(addr)] = e;
	c->order[(c->head + c->n) % PY_CODE_CACHE_MAX] = e;
	c->n++;
	if (r < 0)
		return r;
	*ret = code;
	return 0;
}

/* ---- code objects from copies of the target's memory */

struct copies {
	const struct py_code_copy *c;
	size_t n;
};

static int copies_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	const struct copies *cs = userdata;

	for (size_t i = 0; i < cs->n; i++) {
		const struct py_code_copy *c = &cs->c[i];

		if (c->data && addr >= c->addr && addr - c->addr <= c->len &&
		    len <= c->len - (addr - c->addr)) {
			memcpy(buf, (const uint8_t *)c->data + (addr - c->addr), len);
			return 0;
		}
	}
	return -EFAULT;
}

/*
 * A str object copied in part: its length cut to the characters the copy holds, so that
 * decoding gives their prefix. The caller's buffer is changed in place.
 */
static void clamp_string(const struct py_layout *l, uint8_t *buf, size_t len)
{
	uint64_t length;
	uint32_t state;
	size_t data, width;

	if ((size_t)l->unicode_length + 8 > len || (size_t)l->unicode_state + 4 > len)
		return;
	memcpy(&length, buf + l->unicode_length, sizeof(length));
	memcpy(&state, buf + l->unicode_state, sizeof(state));
	if ((state >> 6) & 1) {
		data = l->unicode_ascii_size;
		width = 1;
	} else {
		data = l->unicode_compact_size;
		width = (state >> 2) & 7;
		if (width != 1 && width != 2 && width != 4)
			return; /* py_unicode_read refuses it */
	}
	if (data > len)
		length = 0;
	else if (length > (len - data) / width)
		length = (len - data) / width;
	memcpy(buf + l->unicode_length, &length, sizeof(length));
}

/* A bytes object copied in part: its size cut to the bytes the copy holds. */
static void clamp_bytes(const struct py_layout *l, uint8_t *buf, size_t len)
{
	uint64_t size;

	if ((size_t)l->bytes_size + 8 > len)
		return;
	memcpy(&size, buf + l->bytes_size, sizeof(size));
	if (l->bytes_sval > len)
		size = 0;
	else if (size > len - l->bytes_sval)
		size = len - l->bytes_sval;
	memcpy(buf + l->bytes_size, &size, sizeof(size));
}

int py_code_from_copy(const struct py_layout *l, uint64_t addr, const void *head, size_t head_len,
		      const void *qualname, size_t qualname_len, const void *filename,
		      size_t filename_len, const void *linetable, size_t linetable_len,
		      uint64_t code_type, struct py_code **ret)
{
	uint8_t q[PY_COPY_MAX], f[PY_COPY_MAX], t[PY_COPY_MAX];
	struct py_code_copy c[4] = {{.addr = addr, .data = head, .len = head_len}};
	struct copies cs = {.c = c, .n = 4};
	uint64_t p;

	if (!head || qualname_len > sizeof(q) || filename_len > sizeof(f) ||
	    linetable_len > sizeof(t))
		return -EINVAL;
	if ((size_t)l->code_qualname + 8 > head_len || (size_t)l->code_filename + 8 > head_len ||
	    (size_t)l->code_linetable + 8 > head_len)
		return -EBADMSG;
	if (qualname) {
		memcpy(q, qualname, qualname_len);
		clamp_string(l, q, qualname_len);
		memcpy(&p, (const uint8_t *)head + l->code_qualname, sizeof(p));
		c[1] = (struct py_code_copy){.addr = p, .data = q, .len = qualname_len};
	}
	if (filename) {
		memcpy(f, filename, filename_len);
		clamp_string(l, f, filename_len);
		memcpy(&p, (const uint8_t *)head + l->code_filename, sizeof(p));
		c[2] = (struct py_code_copy){.addr = p, .data = f, .len = filename_len};
	}
	if (linetable) {
		memcpy(t, linetable, linetable_len);
		clamp_bytes(l, t, linetable_len);
		memcpy(&p, (const uint8_t *)head + l->code_linetable, sizeof(p));
		c[3] = (struct py_code_copy){.addr = p, .data = t, .len = linetable_len};
	}
	return py_code_read(l, copies_read, &cs, addr, code_type, ret);
}

int py_code_cache_put(struct py_code_cache *c, uint64_t addr, struct py_code *code)
{
	struct cache_entry *e;

	for (e = c->buckets[bucket_of(addr)]; e; e = e->next)
		if (e->addr == addr) {
			py_code_unref(e->code);
			e->code = py_code_ref(code);
			return 0;
		}
	if (c->n == PY_CODE_CACHE_MAX)
		evict_oldest(c);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->addr = addr;
	e->code = py_code_ref(code);
	e->next = c->buckets[bucket_of(addr)];
	c->buckets[bucket_of(addr)] = e;
	c->order[(c->head + c->n) % PY_CODE_CACHE_MAX] = e;
	c->n++;
	return 0;
}
