// SPDX-License-Identifier: MIT
/* Raw captures: writer and hostile-input reader. The format is in docs/raw-format.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/elf.h"
#include "common/grow.h"
#include "common/macro.h"
#include "pipeline/aggregate.h"
#include "sources/raw.h"
#include "symbolize/symbolize.h"

/* Fixed parts of the payloads (docs/raw-format.md). */
#define RAW_PROCESS_FIXED 24 /* pid, n_maps, comm[16] */
#define RAW_MAP_FIXED 52     /* start end pgoff dev ino prot flags e_machine path_len id_len pad */
#define RAW_KSYMS_FIXED 8    /* n, reserved */
#define RAW_KSYM_FIXED 10    /* addr, name_len */
#define RAW_END_FIXED 32

enum { RAW_MAP_EXE = 1u << 0, RAW_MAP_DELETED = 1u << 1 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}
static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(const void *data, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const uint8_t *p = data;

	/* zlib takes uInt lengths. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

/* ---- writer ---------------------------------------------------------------------------------- */

struct raw_writer {
	FILE *f;
	char *path, *tmp;
	int error;
	uint64_t bytes;
	bool committed;
	uint8_t *buf; /* payload scratch for process/ksyms records */
	size_t buf_cap;
};

static int writer_fail(struct raw_writer *w, int r)
{
	if (!w->error)
		w->error = r;
	return w->error;
}

static int writer_put(struct raw_writer *w, const void *p, size_t n)
{
	if (w->error)
		return w->error;
	if (n && fwrite(p, 1, n, w->f) != n)
		return writer_fail(w, errno ? -errno : -EIO);
	w->bytes += n;
	return 0;
}

static uint8_t *writer_scratch(struct raw_writer *w, size_t n)
{
	if (grow((void **)&w->buf, &w->buf_cap, n, 1, GROW_NO_LIMIT) < 0)
		return NULL;
	return w->buf;
}

int raw_writer_new(const char *path, const struct raw_header *h, struct raw_writer **ret)
{
	_cleanup_free_ char *dcopy = NULL, *bcopy = NULL;
	struct raw_writer *w;
	uint8_t hdr[RAW_HEADER_SIZE] = {};
	int fd, r;

	if (!path || !*path || !h || !ret)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	dcopy = strdup(path);
	bcopy = strdup(path);
	if (!w || !dcopy || !bcopy) {
		free(w);
		return -ENOMEM;
	}
	w->path = strdup(path);
	if (!w->path || asprintf(&w->tmp, "%s/.%s.XXXXXX", dirname(dcopy), basename(bcopy)) < 0) {
		w->tmp = NULL;
		raw_writer_free(w);
		return -ENOMEM;
	}
	fd = mkostemp(w->tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(w->tmp);
		w->tmp = NULL;
		raw_writer_free(w);
		return r;
	}
	(void)fchmod(fd, 0600); /* owner only, like the profile (see output/pprof.h) */
	w->f = fdopen(fd, "w");
	if (!w->f) {
		r = -errno;
		close(fd);
		raw_writer_free(w);
		return r;
	}
	setvbuf(w->f, NULL, _IOFBF, 1u << 20);

	memcpy(hdr, RAW_MAGIC, RAW_MAGIC_LEN);
	put16(hdr + 8, RAW_VERSION);
	put16(hdr + 10, RAW_HEADER_SIZE);
	put16(hdr + 12, h->record_version);
	put16(hdr + 14, h->e_machine);
	put32(hdr + 16, h->freq_hz);
	put32(hdr + 20, h->stack_bytes);
	put64(hdr + 24, (uint64_t)h->time_ns);
	put64(hdr + 32, h->mono_ns);
	put32(hdr + RAW_HEADER_SIZE - 4, crc(hdr, RAW_HEADER_SIZE - 4));
	r = writer_put(w, hdr, sizeof(hdr));
	if (r < 0) {
		raw_writer_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void raw_writer_free(struct raw_writer *w)
{
	if (!w)
		return;
	if (w->f)
		fclose(w->f);
	if (w->tmp && !w->committed)
		unlink(w->tmp);
	free(w->tmp);
	free(w->path);
	free(w->buf);
	free(w);
}

int raw_writer_add(struct raw_writer *w, uint32_t type, const void *payload, size_t len)
{
	uint8_t h[RAW_RECORD_HEADER_SIZE];
	int r;

	if (len > RAW_MAX_RECORD_BYTES || (len && !payload))
		return -EINVAL;
	put32(h, type);
	put32(h + 4, (uint32_t)len);
	put32(h + 8, crc(payload, len));
	r = writer_put(w, h, sizeof(h));
	return r < 0 ? r : writer_put(w, payload, len);
}

int raw_writer_add_process(struct raw_writer *w, const struct proc *p, const char *comm)
{
	size_t len = RAW_PROCESS_FIXED, off;
	uint8_t *b;

	for (size_t i = 0; i < p->n_maps; i++) {
		const struct mapping *m = &p->maps[i];
		size_t pl = m->name ? MIN(strlen(m->name), (size_t)RAW_MAX_PATH) : 0;
		size_t il = m->dso ? MIN(m->dso->build_id_len, (size_t)RAW_MAX_BUILD_ID) : 0;

		len += RAW_MAP_FIXED + pl + il;
	}
	if (len > RAW_MAX_RECORD_BYTES)
		return -E2BIG;
	b = writer_scratch(w, len);
	if (!b)
		return writer_fail(w, -ENOMEM);
	memset(b, 0, RAW_PROCESS_FIXED);
	put32(b, (uint32_t)p->pid);
	put32(b + 4, (uint32_t)p->n_maps);
	if (comm)
		strncpy((char *)b + 8, comm, 16);
	off = RAW_PROCESS_FIXED;
	for (size_t i = 0; i < p->n_maps; i++) {
		const struct mapping *m = &p->maps[i];
		const struct dso *d = m->dso;
		size_t pl = m->name ? MIN(strlen(m->name), (size_t)RAW_MAX_PATH) : 0;
		size_t il = d ? MIN(d->build_id_len, (size_t)RAW_MAX_BUILD_ID) : 0;
		uint8_t *e = b + off;

		put64(e, m->start);
		put64(e + 8, m->end);
		put64(e + 16, m->pgoff);
		put64(e + 24, d ? d->dev : 0);
		put64(e + 32, d ? d->ino : 0);
		put32(e + 40, m->prot);
		put16(e + 44, (m->is_exe ? RAW_MAP_EXE : 0) | (m->deleted ? RAW_MAP_DELETED : 0));
		put16(e + 46, d ? d->e_machine : 0);
		put16(e + 48, (uint16_t)pl);
		e[50] = (uint8_t)il;
		e[51] = 0;
		if (il)
			memcpy(e + RAW_MAP_FIXED, d->build_id, il);
		if (pl)
			memcpy(e + RAW_MAP_FIXED + il, m->name, pl);
		off += RAW_MAP_FIXED + il + pl;
	}
	return raw_writer_add(w, RAW_REC_PROCESS, b, len);
}

struct ksym_set {
	struct raw_ksym *slots; /* addr 0 = empty (no kernel symbol lives at address 0) */
	size_t cap, n;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static int ksym_set_add(struct ksym_set *s, uint64_t addr, const char *name)
{
	size_t k;

	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct raw_ksym *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slots[i].addr)
				continue;
			for (k = mix64(s->slots[i].addr) & (ncap - 1); ns[k].addr;
			     k = (k + 1) & (ncap - 1))
				;
			ns[k] = s->slots[i];
		}
		free(s->slots);
		s->slots = ns;
		s->cap = ncap;
	}
	for (k = mix64(addr) & (s->cap - 1); s->slots[k].addr; k = (k + 1) & (s->cap - 1))
		if (s->slots[k].addr == addr)
			return 0;
	s->slots[k] = (struct raw_ksym){.addr = addr, .name = name};
	s->n++;
	return 0;
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct raw_ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int raw_writer_add_ksyms(struct raw_writer *w, const struct aggregate *a, const struct kallsyms *ks)
{
	struct ksym_set set = {};
	size_t n = 0, len = RAW_KSYMS_FIXED, off;
	uint8_t *b;
	int r = 0;

	if (!ks || !a)
		return 0;
	for (size_t i = 0; i < aggregate_n_stacks(a); i++) {
		const struct agg_stack *s = aggregate_stack(a, i);

		for (size_t f = 0; f < s->n_frames; f++) {
			const struct agg_frame *fr = &s->frames[f];
			uint64_t look = agg_frame_lookup_addr(fr), start;
			const char *name;

			if (fr->map_id != AGG_MAP_KERNEL ||
			    kallsyms_lookup(ks, look, &name, &start) < 0 || start == 0)
				continue;
			r = ksym_set_add(&set, start, name);
			if (r < 0)
				goto out;
		}
	}
	/* Compact, sort, then keep the first RAW_MAX_KSYMS. */
	for (size_t i = 0; i < set.cap; i++)
		if (set.slots[i].addr)
			set.slots[n++] = set.slots[i];
	if (n == 0) /* no kernel frames: set.slots may be NULL, which qsort() must not get */
		goto out;
	qsort(set.slots, n, sizeof(*set.slots), cmp_ksym);
	n = MIN(n, (size_t)RAW_MAX_KSYMS);
	for (size_t i = 0; i < n; i++)
		len += RAW_KSYM_FIXED + MIN(strlen(set.slots[i].name), (size_t)RAW_MAX_KSYM_NAME);
	b = writer_scratch(w, len);
	if (!b) {
		r = writer_fail(w, -ENOMEM);
		goto out;
	}
	put32(b, (uint32_t)n);
	put32(b + 4, 0);
	off = RAW_KSYMS_FIXED;
	for (size_t i = 0; i < n; i++) {
		size_t nl = MIN(strlen(set.slots[i].name), (size_t)RAW_MAX_KSYM_NAME);

		put64(b + off, set.slots[i].addr);
		put16(b + off + 8, (uint16_t)nl);
		memcpy(b + off + RAW_KSYM_FIXED, set.slots[i].name, nl);
		off += RAW_KSYM_FIXED + nl;
	}
	r = raw_writer_add(w, RAW_REC_KSYMS, b, len);
out:
	free(set.slots);
	return r;
}

int raw_writer_add_end(struct raw_writer *w, const struct raw_end *e)
{
	uint8_t b[RAW_END_FIXED];

	put64(b, e->records);
	put64(b + 8, e->samples);
	put64(b + 16, e->lost);
	put64(b + 24, e->duration_ns);
	return raw_writer_add(w, RAW_REC_END, b, sizeof(b));
}

uint16_t raw_host_e_machine(void)
{
	struct elf_ident id;
	_cleanup_close_ int fd = elf_open_ident("/proc/self/exe", 0, &id);

	return fd >= 0 ? id.e_machine : 0;
}

int raw_writer_error(const struct raw_writer *w)
{
	return w->error;
}

uint64_t raw_writer_bytes(const struct raw_writer *w)
{
	return w->bytes;
}

int raw_writer_commit(struct raw_writer *w)
{
	_cleanup_free_ char *dcopy = NULL;
	int fd, r;

	if (w->error)
		return w->error;
	if (fflush(w->f) != 0 || fsync(fileno(w->f)) < 0)
		return writer_fail(w, -errno);
	r = fclose(w->f);
	w->f = NULL;
	if (r != 0)
		return writer_fail(w, -errno);
	if (rename(w->tmp, w->path) < 0)
		return writer_fail(w, -errno);
	w->committed = true;
	dcopy = strdup(w->path);
	if (dcopy) {
		fd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* ---- reader ---------------------------------------------------------------------------------- */

struct raw_reader {
	FILE *f;
	struct raw_header h;
	uint64_t offset;    /* of the next record */
	uint64_t file_size; /* 0 when unknown (not a regular file) */
	uint8_t *buf;
	size_t buf_cap;
	int error;
	uint64_t error_offset;
	char msg[256];
};

static int reader_fail(struct raw_reader *r, uint64_t offset, const char *fmt, ...) _printf_(3, 4);
static int reader_fail(struct raw_reader *r, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->error = -EBADMSG;
	r->error_offset = offset;
	return r->error;
}

/* Read exactly n bytes; returns the bytes read (< n at end of file) or -errno. */
static ssize_t read_full(FILE *f, void *buf, size_t n)
{
	size_t got = fread(buf, 1, n, f);

	if (got < n && ferror(f))
		return errno ? -errno : -EIO;
	return (ssize_t)got;
}

static int reader_buf(struct raw_reader *r, size_t n)
{
	return grow((void **)&r->buf, &r->buf_cap, n, 1, GROW_NO_LIMIT);
}

void raw_reader_free(struct raw_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	free(r->buf);
	free(r);
}

int raw_reader_open(const char *path, struct raw_reader **ret)
{
	struct raw_reader *r = calloc(1, sizeof(*r));
	uint8_t fixed[RAW_HEADER_SIZE];
	struct stat st;
	uint16_t hsize;
	ssize_t n;
	int e;

	if (!r)
		return -ENOMEM;
	r->f = fopen(path, "re");
	if (!r->f) {
		e = -errno;
		free(r);
		return e;
	}
	if (fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode))
		r->file_size = (uint64_t)st.st_size;
	/* Records are a few KiB: read many per read(2), as the writer writes them. */
	setvbuf(r->f, NULL, _IOFBF, 1u << 20);
	n = read_full(r->f, fixed, sizeof(fixed));
	if (n < 0) {
		raw_reader_free(r);
		return (int)n;
	}
	if (n < RAW_MAGIC_LEN || memcmp(fixed, RAW_MAGIC, RAW_MAGIC_LEN) != 0) {
		raw_reader_free(r);
		return -ENOEXEC;
	}
	if (n < RAW_HEADER_SIZE) {
		e = reader_fail(r, (uint64_t)n, "truncated header: %zd of %d bytes", n,
				RAW_HEADER_SIZE);
		goto fail;
	}
	r->h.version = get16(fixed + 8);
	hsize = get16(fixed + 10);
	if (r->h.version == 0 || r->h.version > RAW_VERSION) {
		raw_reader_free(r);
		return -EPROTONOSUPPORT;
	}
	if (hsize < RAW_HEADER_SIZE || hsize > RAW_MAX_HEADER_SIZE || hsize % 4) {
		e = reader_fail(r, 10, "bad header size %u at byte offset 10", hsize);
		goto fail;
	}
	e = reader_buf(r, hsize);
	if (e < 0)
		goto fail;
	memcpy(r->buf, fixed, RAW_HEADER_SIZE);
	n = read_full(r->f, r->buf + RAW_HEADER_SIZE, hsize - RAW_HEADER_SIZE);
	if (n < 0) {
		e = (int)n;
		goto fail;
	}
	if (n < hsize - RAW_HEADER_SIZE) {
		e = reader_fail(r, RAW_HEADER_SIZE + (uint64_t)n,
				"truncated header: %zd of %u bytes", RAW_HEADER_SIZE + n, hsize);
		goto fail;
	}
	if (crc(r->buf, hsize - 4) != get32(r->buf + hsize - 4)) {
		e = reader_fail(r, 0, "corrupt header: CRC-32 mismatch (bytes 0..%u)", hsize - 1);
		goto fail;
	}
	r->h.record_version = get16(r->buf + 12);
	r->h.e_machine = get16(r->buf + 14);
	r->h.freq_hz = get32(r->buf + 16);
	r->h.stack_bytes = get32(r->buf + 20);
	r->h.time_ns = (int64_t)get64(r->buf + 24);
	r->h.mono_ns = get64(r->buf + 32);
	r->offset = hsize;
	*ret = r;
	return 0;
fail:
	if (e == -EBADMSG) {
		/* The caller needs the message: hand the reader out in its failed state. */
		*ret = r;
		return e;
	}
	raw_reader_free(r);
	return e;
}

const struct raw_header *raw_reader_header(const struct raw_reader *r)
{
	return &r->h;
}

int raw_reader_next(struct raw_reader *r, struct raw_record *ret)
{
	uint8_t h[RAW_RECORD_HEADER_SIZE];
	uint64_t at = r->offset;
	uint32_t type, len, want;
	ssize_t n;
	int e;

	if (r->error)
		return r->error;
	n = read_full(r->f, h, sizeof(h));
	if (n < 0)
		return (int)n;
	if (n == 0)
		return 0;
	if (n < (ssize_t)sizeof(h))
		return reader_fail(
		    r, at, "truncated record header at byte offset %" PRIu64 ": %zd of %d bytes",
		    at, n, RAW_RECORD_HEADER_SIZE);
	type = get32(h);
	len = get32(h + 4);
	want = get32(h + 8);
	if (type == 0)
		return reader_fail(r, at, "corrupt record at byte offset %" PRIu64 ": type 0", at);
	if (len > RAW_MAX_RECORD_BYTES)
		return reader_fail(r, at,
				   "corrupt record at byte offset %" PRIu64 ": length %" PRIu32
				   " over the limit of %u bytes",
				   at, len, RAW_MAX_RECORD_BYTES);
	/* Before allocating: a length the file cannot hold is truncation, not a reason for 64 MiB.
	 */
	if (r->file_size && at + sizeof(h) + len > r->file_size)
		return reader_fail(r, at,
				   "truncated record at byte offset %" PRIu64 ": type %" PRIu32
				   " needs %" PRIu32 " bytes, %" PRIu64 " left",
				   at, type, len,
				   r->file_size > at + sizeof(h) ? r->file_size - at - sizeof(h)
								 : 0);
	e = reader_buf(r, len ? len : 1);
	if (e < 0)
		return e;
	n = read_full(r->f, r->buf, len);
	if (n < 0)
		return (int)n;
	if (n < (ssize_t)len)
		return reader_fail(r, at,
				   "truncated record at byte offset %" PRIu64 ": type %" PRIu32
				   " needs %" PRIu32 " bytes, %zd left",
				   at, type, len, n);
	if (crc(r->buf, len) != want)
		return reader_fail(r, at,
				   "corrupt record at byte offset %" PRIu64
				   ": CRC-32 mismatch (type %" PRIu32 ", %" PRIu32 " bytes)",
				   at, type, len);
	r->offset = at + sizeof(h) + len;
	*ret = (struct raw_record){.type = type, .len = len, .data = r->buf, .offset = at};
	return 1;
}

uint64_t raw_reader_error_offset(const struct raw_reader *r)
{
	return r->error_offset;
}

const char *raw_reader_error(const struct raw_reader *r)
{
	return r->msg;
}

/* ---- payload parsers ------------------------------------------------------------------------- */

int raw_parse_process(const void *data, size_t len, struct raw_process *ret)
{
	const uint8_t *b = data;
	size_t n, off, strings = 0;
	struct proc_static_map *maps;
	uint8_t *store;

	memset(ret, 0, sizeof(*ret));
	if (len < RAW_PROCESS_FIXED)
		return -EBADMSG;
	n = get32(b + 4);
	if (n > PROC_MAX_MAPS || n > (len - RAW_PROCESS_FIXED) / RAW_MAP_FIXED)
		return -EBADMSG;
	/* First pass: every entry inside the payload, lengths within limits. */
	off = RAW_PROCESS_FIXED;
	for (size_t i = 0; i < n; i++) {
		size_t pl, il;

		if (len - off < RAW_MAP_FIXED)
			return -EBADMSG;
		pl = get16(b + off + 48);
		il = b[off + 50];
		if (pl > RAW_MAX_PATH || il > RAW_MAX_BUILD_ID ||
		    len - off - RAW_MAP_FIXED < pl + il)
			return -EBADMSG;
		if (memchr(b + off + RAW_MAP_FIXED + il, '\0', pl))
			return -EBADMSG;
		if (get64(b + off + 8) <= get64(b + off))
			return -EBADMSG;
		strings += pl + 1 + il;
		off += RAW_MAP_FIXED + pl + il;
	}
	if (off != len)
		return -EBADMSG;

	maps = calloc(1, n * sizeof(*maps) + strings + 1);
	if (!maps)
		return -ENOMEM;
	store = (uint8_t *)(maps + n);
	off = RAW_PROCESS_FIXED;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = b + off;
		size_t pl = get16(e + 48), il = e[50];
		uint16_t flags = get16(e + 44);
		struct proc_static_map *m = &maps[i];

		*m = (struct proc_static_map){
		    .start = get64(e),
		    .end = get64(e + 8),
		    .pgoff = get64(e + 16),
		    .dev = get64(e + 24),
		    .ino = get64(e + 32),
		    .prot = get32(e + 40),
		    .is_exe = flags & RAW_MAP_EXE,
		    .deleted = flags & RAW_MAP_DELETED,
		    .e_machine = get16(e + 46),
		    .build_id_len = il,
		};
		if (il) {
			memcpy(store, e + RAW_MAP_FIXED, il);
			m->build_id = store;
			store += il;
		}
		if (pl) {
			memcpy(store, e + RAW_MAP_FIXED + il, pl);
			store[pl] = '\0';
			m->path = (const char *)store;
			store += pl + 1;
		}
		off += RAW_MAP_FIXED + pl + il;
	}
	ret->pid = get32(b);
	memcpy(ret->comm, b + 8, 16);
	ret->comm[16] = '\0';
	ret->n_maps = n;
	ret->maps = maps;
	return 0;
}

void raw_process_done(struct raw_process *p)
{
	free(p->maps);
	p->maps = NULL;
	p->n_maps = 0;
}

/* Names go into kallsyms-format lines: printable, and blanks only as in "func [module]". */
static bool ksym_name_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f) {
			if (s[i] != ' ' || i == 0 || i + 1 >= n || s[i + 1] != '[')
				return false;
		}
	return n > 0;
}

int raw_parse_ksyms(const void *data, size_t len, struct raw_ksym **ret, size_t *ret_n)
{
	const uint8_t *b = data;
	size_t n, off, strings = 0;
	struct raw_ksym *syms;
	char *store;

	*ret = NULL;
	*ret_n = 0;
	if (len < RAW_KSYMS_FIXED)
		return -EBADMSG;
	n = get32(b);
	if (n > RAW_MAX_KSYMS || n > (len - RAW_KSYMS_FIXED) / RAW_KSYM_FIXED)
		return -EBADMSG;
	off = RAW_KSYMS_FIXED;
	for (size_t i = 0; i < n; i++) {
		size_t nl;

		if (len - off < RAW_KSYM_FIXED)
			return -EBADMSG;
		nl = get16(b + off + 8);
		if (nl == 0 || nl > RAW_MAX_KSYM_NAME || len - off - RAW_KSYM_FIXED < nl ||
		    !ksym_name_ok(b + off + RAW_KSYM_FIXED, nl))
			return -EBADMSG;
		strings += nl + 1;
		off += RAW_KSYM_FIXED + nl;
	}
	if (off != len)
		return -EBADMSG;
	syms = calloc(1, n * sizeof(*syms) + strings + 1);
	if (!syms)
		return -ENOMEM;
	store = (char *)(syms + n);
	off = RAW_KSYMS_FIXED;
	for (size_t i = 0; i < n; i++) {
		size_t nl = get16(b + off + 8);

		syms[i].addr = get64(b + off);
		memcpy(store, b + off + RAW_KSYM_FIXED, nl);
		store[nl] = '\0';
		syms[i].name = store;
		store += nl + 1;
		off += RAW_KSYM_FIXED + nl;
	}
	qsort(syms, n, sizeof(*syms), cmp_ksym);
	*ret = syms;
	*ret_n = n;
	return 0;
}

int raw_parse_end(const void *data, size_t len, struct raw_end *ret)
{
	const uint8_t *b = data;

	if (len < RAW_END_FIXED)
		return -EBADMSG;
	*ret = (struct raw_end){
	    .records = get64(b),
	    .samples = get64(b + 8),
	    .lost = get64(b + 16),
	    .duration_ns = get64(b + 24),
	};
	return 0;
}
