// SPDX-License-Identifier: MIT
/* perf.data reader (see perfdata.h). Layouts follow linux/perf_event.h and
 * tools/perf/util/header.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/macro.h"
#include "sources/perfdata.h"

#define PERF_MAGIC2 0x32454c4946524550ull      /* "PERFILE2" */
#define PERF_MAGIC2_SWAP 0x50455246494c4532ull /* written by a big-endian host */
#define PERF_MAGIC1 0x454c494646524550ull      /* "PERFFILE": version 1 */
#define PERF_FILE_HEADER_SIZE 104
#define PERF_PIPE_HEADER_SIZE 16
#define PERF_ATTR_SIZE_VER0 64
#define PERF_ATTR_MAX 512 /* bytes of an attribute we look at; the rest is ignored */

/* sample_type bits */
#define S_IP (1ull << 0)
#define S_TID (1ull << 1)
#define S_TIME (1ull << 2)
#define S_ADDR (1ull << 3)
#define S_READ (1ull << 4)
#define S_CALLCHAIN (1ull << 5)
#define S_ID (1ull << 6)
#define S_CPU (1ull << 7)
#define S_PERIOD (1ull << 8)
#define S_STREAM_ID (1ull << 9)
#define S_RAW (1ull << 10)
#define S_BRANCH_STACK (1ull << 11)
#define S_REGS_USER (1ull << 12)
#define S_STACK_USER (1ull << 13)
#define S_IDENTIFIER (1ull << 16)
#define S_WEIGHT (1ull << 14)
#define S_DATA_SRC (1ull << 15)
#define S_TRANSACTION (1ull << 17)
#define S_REGS_INTR (1ull << 18)
#define S_PHYS_ADDR (1ull << 19)
#define S_AUX (1ull << 20)
#define S_CGROUP (1ull << 21)
#define S_DATA_PAGE_SIZE (1ull << 22)
#define S_CODE_PAGE_SIZE (1ull << 23)
#define S_WEIGHT_STRUCT (1ull << 24)

/* read_format bits */
#define RF_TOTAL_TIME_ENABLED (1ull << 0)
#define RF_TOTAL_TIME_RUNNING (1ull << 1)
#define RF_ID (1ull << 2)
#define RF_GROUP (1ull << 3)
#define RF_LOST (1ull << 4)

#define BRANCH_HW_INDEX (1ull << 17)

/* attr flag bits (the bitfield word at offset 40) */
#define A_FREQ (1ull << 10)
#define A_SAMPLE_ID_ALL (1ull << 18)

enum {
	R_MMAP = 1,
	R_LOST = 2,
	R_COMM = 3,
	R_EXIT = 4,
	R_FORK = 7,
	R_SAMPLE = 9,
	R_MMAP2 = 10,
	R_LOST_SAMPLES = 13,
	R_USER_TYPE_START = 64,
	R_COMPRESSED = 81,
};

#define MISC_CPUMODE_MASK 7u
#define MISC_COMM_EXEC (1u << 13)
#define MISC_MMAP_DATA (1u << 13)
#define MISC_MMAP_BUILD_ID (1u << 14)
#define MISC_BUILD_ID_SIZE (1u << 15)

#define CONTEXT_KERNEL ((uint64_t)-128)
#define CONTEXT_MAX ((uint64_t)-4095)

#define HEADER_BUILD_ID 2
#define HEADER_ARCH 6
#define HEADER_FEAT_BITS 256

#define EM_X86_64_ 62
#define EM_AARCH64_ 183

struct attr {
	uint64_t sample_type, read_format, flags, period_or_freq;
	uint64_t branch_sample_type, regs_user;
	uint32_t stack_user;
};

struct id_entry {
	uint64_t id;
	uint32_t attr;
};

struct build_id_entry {
	const char *path; /* inside the mapped file, NUL-terminated within its record */
	uint8_t id[20];
	size_t len;
};

/*
 * One event to deliver. pos packs the file offset (bits 0-45), whether the event is a sample
 * (bit 46), whether `tail` holds its dyn_size (bit 47) and its size (bits 48-63).
 */
struct index_entry {
	uint64_t time, pos, tail;
};

#define POS_OFFSET_MASK ((1ull << 46) - 1)
#define POS_SAMPLE (1ull << 46)
#define POS_TAIL (1ull << 47)
#define POS_SIZE_SHIFT 48

/*
 * Pass 2 reads a sample's fields before the stack and the stack bytes it really holds
 * (dyn_size), not the whole requested stack. How many bytes precede the stack (header, ids,
 * kernel callchain, user registers) is guessed: PERFDATA_HEAD_BYTES at first, then the most
 * seen so far plus HEAD_SLACK (a few more kernel frames); a sample that needs more is read
 * whole.
 */
#define PERFDATA_HEAD_BYTES 2048
#define HEAD_SLACK 256

/* Which perf register numbers hold pc, sp, fp and lr (-1: none). */
struct regs_map {
	uint16_t e_machine;
	int pc, sp, fp, lr;
};

static const struct regs_map regs_maps[] = {
    {EM_X86_64_, 8, 7, 6, -1},	   /* PERF_REG_X86_IP, _SP, _BP */
    {EM_AARCH64_, 32, 31, 29, 30}, /* PERF_REG_ARM64_PC, _SP, _X29, _LR */
};

struct perfdata {
	const uint8_t *data;
	size_t size;
	int fd; /* pass 1 reads headers with pread: no page of the mapping is touched twice */
	struct perfdata_info info;
	const struct regs_map *regs;
	struct attr *attrs;
	size_t n_attrs;
	struct id_entry *ids; /* sample id -> attribute, in file order */
	size_t ids_cap, ids_used;
	/* ids by id (id: index + 1); seeded: the ids come from the file */
	struct hash_index id_index;
	struct hash_seed id_seed;
	struct build_id_entry *bids;
	size_t n_bids;
	struct perfdata_stats st;
	char msg[256];
	uint64_t err_offset;
};

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int fail(struct perfdata *pd, uint64_t offset, const char *fmt, ...) _printf_(3, 4);
static int fail(struct perfdata *pd, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pd->msg, sizeof(pd->msg), fmt, ap);
	va_end(ap);
	pd->err_offset = offset;
	return -EBADMSG;
}

/* [off, off + len) inside [0, limit)? Overflow-safe. */
static bool in_range(uint64_t off, uint64_t len, uint64_t limit)
{
	return off <= limit && len <= limit - off;
}

static uint16_t machine_from_name(const char *s)
{
	if (!strcmp(s, "x86_64"))
		return EM_X86_64_;
	if (!strcmp(s, "aarch64") || !strcmp(s, "arm64"))
		return EM_AARCH64_;
	return 0;
}

static bool id_eq(const void *ctx, uint32_t i, const void *key)
{
	const struct perfdata *pd = ctx;

	return pd->ids[i - 1].id == *(const uint64_t *)key;
}

static int ids_add(struct perfdata *pd, uint64_t id, uint32_t attr)
{
	uint64_t h = hash_bytes(&pd->id_seed, &id, sizeof(id));
	struct hash_slot *s;
	int r;

	/* parse_attrs() refuses more than PERFDATA_MAX_IDS ids first: the limits below never bite. */
	r = hash_index_reserve(&pd->id_index, PERFDATA_MAX_IDS);
	if (r < 0)
		return r;
	s = hash_index_find(&pd->id_index, h, id_eq, pd, &id);
	if (s->id)
		return 0; /* the first attribute that names an id keeps it */
	r = GROW_ARRAY(pd->ids, pd->ids_cap, pd->ids_used + 1, PERFDATA_MAX_IDS);
	if (r < 0)
		return r;
	pd->ids[pd->ids_used++] = (struct id_entry){ .id = id, .attr = attr };
	hash_index_insert(&pd->id_index, s, (uint32_t)pd->ids_used, h);
	return 0;
}

/* As perf does: id 0 (synthesized events) means the first attribute. */
static const struct attr *attr_by_id(const struct perfdata *pd, uint64_t id)
{
	const struct hash_slot *s;

	if (id == 0)
		return &pd->attrs[0];
	if (!pd->id_index.cap)
		return NULL;
	s = hash_index_find(&pd->id_index, hash_bytes(&pd->id_seed, &id, sizeof(id)), id_eq, pd,
			    &id);
	return s->id ? &pd->attrs[pd->ids[s->id - 1].attr] : NULL;
}

static int parse_attrs(struct perfdata *pd, const uint8_t *h)
{
	uint64_t attr_size = get64(h + 16), off = get64(h + 24), size = get64(h + 32), n_ids = 0;
	size_t n;

	if (attr_size < PERF_ATTR_SIZE_VER0 + 16 || attr_size > (1u << 20))
		return fail(pd, 16, "bad attribute size %" PRIu64 " at byte offset 16", attr_size);
	if (!in_range(off, size, pd->size) || size % attr_size || size == 0)
		return fail(pd, 24,
			    "bad attribute section (offset %" PRIu64 ", %" PRIu64
			    " bytes) at byte offset 24",
			    off, size);
	n = size / attr_size;
	if (n > PERFDATA_MAX_ATTRS)
		return -E2BIG;
	pd->attrs = calloc(n, sizeof(*pd->attrs));
	if (!pd->attrs)
		return -ENOMEM;
	pd->n_attrs = n;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = pd->data + off + i * attr_size;
		uint8_t a[PERF_ATTR_MAX] = {};
		size_t alen = attr_size - 16, asz = get32(e + 4);
		uint64_t ids_off = get64(e + alen), ids_size = get64(e + alen + 8);

		/* The attribute says how much of it is valid; what it does not hold reads as 0. */
		if (asz == 0)
			asz = PERF_ATTR_SIZE_VER0;
		memcpy(a, e, MIN(MIN(asz, alen), sizeof(a)));
		pd->attrs[i] = (struct attr){
		    .period_or_freq = get64(a + 16),
		    .sample_type = get64(a + 24),
		    .read_format = get64(a + 32),
		    .flags = get64(a + 40),
		    .branch_sample_type = get64(a + 72),
		    .regs_user = get64(a + 80),
		    .stack_user = get32(a + 88),
		};
		if (ids_size == 0)
			continue;
		if (!in_range(ids_off, ids_size, pd->size) || ids_size % 8)
			return fail(pd, off + i * attr_size + alen,
				    "bad id section of attribute %zu at byte offset %" PRIu64, i,
				    off + i * attr_size + alen);
		n_ids += ids_size / 8;
		if (n_ids > PERFDATA_MAX_IDS)
			return -E2BIG;
		for (uint64_t k = 0; k < ids_size / 8; k++) {
			int r = ids_add(pd, get64(pd->data + ids_off + k * 8), (uint32_t)i);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void parse_build_ids(struct perfdata *pd, uint64_t off, uint64_t size)
{
	uint64_t end = off + size;

	while (off + 8 <= end && pd->n_bids < PERFDATA_MAX_BUILD_IDS) {
		const uint8_t *e = pd->data + off;
		uint16_t misc = get16(e + 4), esz = get16(e + 6);
		struct build_id_entry *b;
		const uint8_t *name, *nul;
		size_t len;

		if (esz < 8 + 4 + 24 + 1 || esz > end - off)
			return; /* optional section: use what was sane */
		name = e + 8 + 4 + 24;
		nul = memchr(name, '\0', esz - (8 + 4 + 24));
		off += esz;
		if (!nul || nul == name)
			continue;
		len = (misc & MISC_BUILD_ID_SIZE) ? MIN(e[8 + 4 + 20], (uint8_t)20) : 20;
		if (!(misc & MISC_BUILD_ID_SIZE))
			while (len > 0 && e[8 + 4 + len - 1] == 0)
				len--;
		if (len == 0)
			continue;
		b = &pd->bids[pd->n_bids++];
		b->path = (const char *)name;
		b->len = len;
		memcpy(b->id, e + 8 + 4, len);
	}
}

static void parse_features(struct perfdata *pd, const uint8_t *h)
{
	uint64_t sec = pd->info.data_offset + pd->info.data_size;
	size_t n = 0;

	for (int bit = 0; bit < HEADER_FEAT_BITS; bit++) {
		uint64_t off, size;

		if (!(get64(h + 72 + 8 * (bit / 64)) & (1ull << (bit % 64))))
			continue;
		if (!in_range(sec + n * 16, 16, pd->size))
			return;
		off = get64(pd->data + sec + n * 16);
		size = get64(pd->data + sec + n * 16 + 8);
		n++;
		if (!in_range(off, size, pd->size))
			continue;
		if (bit == HEADER_BUILD_ID) {
			pd->bids = calloc(MIN(size / 36 + 1, (uint64_t)PERFDATA_MAX_BUILD_IDS),
					  sizeof(*pd->bids));
			if (pd->bids)
				parse_build_ids(pd, off, size);
		} else if (bit == HEADER_ARCH && size > 4) {
			uint32_t len = get32(pd->data + off);
			char arch[32] = "";

			if (len > 0 && len <= size - 4) {
				memcpy(arch, pd->data + off + 4,
				       MIN((size_t)len, sizeof(arch) - 1));
				arch[sizeof(arch) - 1] = '\0';
				if (machine_from_name(arch)) {
					pd->info.e_machine = machine_from_name(arch);
					pd->info.arch_known = true;
				}
			}
		}
	}
	pd->info.n_build_ids = pd->n_bids;
}

int perfdata_open(const char *path, struct perfdata **ret)
{
	_cleanup_close_ int fd = -1;
	struct perfdata *pd;
	struct utsname u;
	struct stat st;
	const uint8_t *h;
	uint64_t magic, hsize;
	void *map;
	int r;

	/* No access-time update per read (tens of thousands of them): allowed to the file's owner
	 * and root, EPERM for others, who read it the ordinary way. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size < 8)
		return -ENOEXEC;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		munmap(map, (size_t)st.st_size);
		return -ENOMEM;
	}
	hash_seed_init(&pd->id_seed);
	pd->data = map;
	pd->fd = TAKE_FD(fd);
	pd->size = (size_t)st.st_size;
	h = pd->data;
	magic = get64(h);
	if (magic != PERF_MAGIC2) {
		r = magic == PERF_MAGIC2_SWAP || magic == PERF_MAGIC1 ? -EOPNOTSUPP : -ENOEXEC;
		goto fail;
	}
	hsize = pd->size >= 16 ? get64(h + 8) : 0;
	if (hsize == PERF_PIPE_HEADER_SIZE) {
		r = -EOPNOTSUPP; /* pipe mode: attributes come as events; not handled */
		goto fail;
	}
	if (pd->size < PERF_FILE_HEADER_SIZE) {
		r = fail(pd, pd->size, "truncated file header: %zu of %d bytes", pd->size,
			 PERF_FILE_HEADER_SIZE);
		goto fail_msg;
	}
	if (hsize < PERF_FILE_HEADER_SIZE || hsize > pd->size) {
		r = fail(pd, 8, "bad header size %" PRIu64 " at byte offset 8", hsize);
		goto fail_msg;
	}
	pd->info.data_offset = get64(h + 40);
	pd->info.data_size = get64(h + 48);
	if (pd->info.data_offset < hsize || pd->info.data_offset > pd->size) {
		r = fail(pd, 40, "bad data section offset %" PRIu64 " at byte offset 40",
			 pd->info.data_offset);
		goto fail_msg;
	}
	if (pd->info.data_size == 0 && pd->size > pd->info.data_offset) {
		/* perf was killed before it wrote the final header: the data runs to the end. */
		pd->info.data_size = pd->size - pd->info.data_offset;
		pd->info.data_size_guessed = true;
	}
	r = parse_attrs(pd, h);
	if (r == -EBADMSG)
		goto fail_msg;
	if (r < 0)
		goto fail;

	if (uname(&u) == 0)
		pd->info.e_machine = machine_from_name(u.machine);
	if (!pd->info.data_size_guessed)
		parse_features(pd, h);
	for (size_t i = 0; i < ARRAY_SIZE(regs_maps); i++)
		if (regs_maps[i].e_machine == pd->info.e_machine)
			pd->regs = &regs_maps[i];
	pd->info.freq = pd->attrs[0].flags & A_FREQ;
	pd->info.sample_freq_or_period = pd->attrs[0].period_or_freq;
	pd->info.sample_type = pd->attrs[0].sample_type;
	pd->info.sample_regs_user = pd->attrs[0].regs_user;
	pd->info.sample_stack_user = pd->attrs[0].stack_user;
	pd->info.n_attrs = pd->n_attrs;
	/* Data running past the end of the file is found (and reported) by perfdata_read(). */
	*ret = pd;
	return 0;
fail_msg:
	*ret = pd;
	return r;
fail:
	perfdata_free(pd);
	return r;
}

void perfdata_free(struct perfdata *pd)
{
	if (!pd)
		return;
	if (pd->data)
		munmap((void *)pd->data, pd->size);
	if (pd->fd >= 0)
		close(pd->fd);
	free(pd->attrs);
	free(pd->ids);
	hash_index_free(&pd->id_index);
	free(pd->bids);
	free(pd);
}

const struct perfdata_info *perfdata_info(const struct perfdata *pd)
{
	return &pd->info;
}

size_t perfdata_build_id(const struct perfdata *pd, const char *path, const uint8_t **ret)
{
	/* Later entries win: perf appends as it learns. */
	for (size_t i = pd->n_bids; i-- > 0;)
		if (strcmp(pd->bids[i].path, path) == 0) {
			*ret = pd->bids[i].id;
			return pd->bids[i].len;
		}
	return 0;
}

const struct perfdata_stats *perfdata_stats(const struct perfdata *pd)
{
	return &pd->st;
}

const char *perfdata_error(const struct perfdata *pd)
{
	return pd->msg;
}

uint64_t perfdata_error_offset(const struct perfdata *pd)
{
	return pd->err_offset;
}

/* ---- events ---------------------------------------------------------------------------------- */

static size_t trailer_size(uint64_t st)
{
	return 8 * (!!(st & S_TID) + !!(st & S_TIME) + !!(st & S_ID) + !!(st & S_STREAM_ID) +
		    !!(st & S_CPU) + !!(st & S_IDENTIFIER));
}

/* The attribute an event belongs to, NULL when it cannot be told. e points at the header. */
static const struct attr *event_attr(const struct perfdata *pd, const uint8_t *e, size_t len,
				     uint32_t type)
{
	const struct attr *a0 = &pd->attrs[0];
	uint64_t st = a0->sample_type;

	if (pd->n_attrs == 1)
		return a0;
	if (type == R_SAMPLE) {
		size_t pos = 8;

		if (st & S_IDENTIFIER)
			return len >= 16 ? attr_by_id(pd, get64(e + 8)) : NULL;
		if (!(st & S_ID))
			return a0;
		pos += 8 * (!!(st & S_IP) + !!(st & S_TID) + !!(st & S_TIME) + !!(st & S_ADDR));
		return len >= pos + 8 ? attr_by_id(pd, get64(e + pos)) : NULL;
	}
	if (!(a0->flags & A_SAMPLE_ID_ALL))
		return a0;
	if (st & S_IDENTIFIER)
		return len >= 16 ? attr_by_id(pd, get64(e + len - 8)) : NULL;
	if (st & S_ID) {
		size_t back = 8 * (1 + !!(st & S_STREAM_ID) + !!(st & S_CPU));

		return len >= 8 + back ? attr_by_id(pd, get64(e + len - back)) : NULL;
	}
	return a0;
}

/* Time of a non-sample event from its sample_id trailer; 0 when it has none. */
static uint64_t trailer_time(const struct attr *a, const uint8_t *e, size_t len)
{
	size_t ts = trailer_size(a->sample_type), pos;

	if (!(a->flags & A_SAMPLE_ID_ALL) || !(a->sample_type & S_TIME) || len < 8 + ts)
		return 0;
	pos = len - ts + ((a->sample_type & S_TID) ? 8 : 0);
	return get64(e + pos);
}

/*
 * Fields of an event in [p, end); only [.., avail) of it was read. Reading past `end` is a
 * malformed event (bad); past `avail` only means more must be read (short): the caller reads
 * the whole event and parses again, so a short parse never decides anything.
 */
struct cursor {
	const uint8_t *p, *end, *avail;
	bool bad, short_read;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
	const uint8_t *p = c->p;

	if (c->bad || c->short_read || (size_t)(c->end - c->p) < n) {
		c->bad = !c->short_read;
		return NULL;
	}
	if ((size_t)(c->avail - c->p) < n) {
		c->short_read = true;
		return NULL;
	}
	c->p += n;
	return p;
}

/* Bytes of dyn_size and everything after it in a sample of this type; -1 when not fixed. */
static int sample_tail_bytes(uint64_t st)
{
	if (!(st & S_STACK_USER) || (st & (S_REGS_INTR | S_AUX)))
		return -1;
	return 8 * (1 + !!(st & (S_WEIGHT | S_WEIGHT_STRUCT)) + !!(st & S_DATA_SRC) +
		    !!(st & S_TRANSACTION) + !!(st & S_PHYS_ADDR) + !!(st & S_CGROUP) +
		    !!(st & S_DATA_PAGE_SIZE) + !!(st & S_CODE_PAGE_SIZE));
}

static uint64_t take64(struct cursor *c)
{
	const uint8_t *p = take(c, 8);

	return p ? get64(p) : 0;
}

static uint64_t reg_at(uint64_t mask, const uint8_t *regs, int reg)
{
	uint64_t below;

	if (reg < 0 || reg >= 64 || !(mask & (1ull << reg)))
		return 0;
	below = mask & ((1ull << reg) - 1);
	return get64(regs + 8 * __builtin_popcountll(below));
}

/* PERF_SAMPLE_READ: the counter values, skipped. -EBADMSG when their count cannot be right. */
static int skip_read_values(struct cursor *c, uint64_t rf)
{
	size_t one = 8 * (1 + !!(rf & RF_ID) + !!(rf & RF_LOST));
	size_t times = 8 * (!!(rf & RF_TOTAL_TIME_ENABLED) + !!(rf & RF_TOTAL_TIME_RUNNING));

	if (rf & RF_GROUP) {
		uint64_t nr = take64(c);

		take(c, times);
		if (nr > (uint64_t)(c->end - c->p) / one)
			return -EBADMSG;
		take(c, nr * one);
	} else {
		take(c, one + times);
	}
	return 0;
}

/* PERF_SAMPLE_CALLCHAIN: the kernel frames (after PERF_CONTEXT_KERNEL) into s->kstack. */
static int take_callchain(struct cursor *c, struct perfdata_sample *s)
{
	uint64_t nr = take64(c);
	const uint8_t *p;
	bool kernel = false;

	if (c->bad || nr > (uint64_t)(c->end - c->p) / 8)
		return -EBADMSG;
	p = take(c, nr * 8);
	if (!p)
		return c->short_read ? -EAGAIN : -EBADMSG;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t ip = get64(p + 8 * i);

		if (ip >= CONTEXT_MAX) {
			kernel = ip == CONTEXT_KERNEL;
			continue;
		}
		if (kernel && s->n_kstack < PERFDATA_MAX_KSTACK)
			s->kstack[s->n_kstack++] = ip;
	}
	return 0;
}

/*
 * PERF_SAMPLE_STACK_USER: size, the stack bytes, dyn_size. Only the dyn_size bytes the kernel
 * really copied are handed out; `tail`: dyn_size as pass 1 read it (tail_bytes from the end).
 */
static int take_stack_user(struct cursor *c, int tail_bytes, const uint64_t *tail,
			   struct perfdata_sample *s)
{
	uint64_t size = take64(c), dyn;
	const uint8_t *p;

	if (!size)
		return 0;
	if (c->short_read)
		return -EAGAIN;
	if (c->bad || size > (uint64_t)(c->end - c->p))
		return -EBADMSG;
	p = c->p;
	c->p += size;
	if (tail && tail_bytes > 0 && (size_t)(c->end - c->p) == (size_t)tail_bytes) {
		/* dyn_size sits where pass 1 read it: it need not be read again. */
		dyn = *tail;
		c->p += 8;
	} else {
		dyn = take64(c);
	}
	if (c->bad)
		return -EBADMSG;
	if (c->short_read || c->avail < p || MIN(dyn, size) > (uint64_t)(c->avail - p))
		return -EAGAIN;
	s->stack = p;
	s->stack_len = MIN(dyn, size);
	return 0;
}

/*
 * `avail` bytes of the `len`-byte event at e were read; `tail`, if not NULL, is the sample's
 * dyn_size as pass 1 read it. -EAGAIN: more of the event must be read.
 */
static int parse_sample(const struct perfdata *pd, const struct attr *a, const uint8_t *e,
			size_t len, size_t avail, const uint64_t *tail, struct perfdata_event *ev)
{
	struct perfdata_sample *s = &ev->sample;
	struct cursor c = {e + 8, e + len, e + avail, false, false};
	uint64_t st = a->sample_type;
	const uint8_t *p;

	memset(s, 0, offsetof(struct perfdata_sample, kstack));
	s->cpumode = get16(e + 4) & MISC_CPUMODE_MASK;
	if (st & S_IDENTIFIER)
		take(&c, 8);
	if (st & S_IP)
		s->ip = take64(&c);
	if (st & S_TID && (p = take(&c, 8))) {
		ev->pid = get32(p);
		ev->tid = get32(p + 4);
	}
	if (st & S_TIME)
		ev->time = take64(&c);
	if (st & S_ADDR)
		take(&c, 8);
	if (st & S_ID)
		take(&c, 8);
	if (st & S_STREAM_ID)
		take(&c, 8);
	if (st & S_CPU && (p = take(&c, 8)))
		s->cpu = get32(p);
	if (st & S_PERIOD)
		s->period = take64(&c);
	if (st & S_READ && skip_read_values(&c, a->read_format) < 0)
		return -EBADMSG;
	if (st & S_CALLCHAIN) {
		int r = take_callchain(&c, s);

		if (r < 0)
			return r;
	}
	if (st & S_RAW && (p = take(&c, 4)))
		take(&c, get32(p));
	if (st & S_BRANCH_STACK) {
		uint64_t nr = take64(&c);

		if (a->branch_sample_type & BRANCH_HW_INDEX)
			take(&c, 8);
		if (c.bad || nr > (uint64_t)(c.end - c.p) / 24)
			return -EBADMSG;
		take(&c, nr * 24);
	}
	if (st & S_REGS_USER) {
		uint64_t abi = take64(&c);

		if (abi != 0) {
			size_t n = __builtin_popcountll(a->regs_user);

			p = take(&c, 8 * n);
			if (p && pd->regs) {
				s->has_user_regs = true;
				s->regs = (struct unwind_regs){
				    .pc = reg_at(a->regs_user, p, pd->regs->pc),
				    .sp = reg_at(a->regs_user, p, pd->regs->sp),
				    .fp = reg_at(a->regs_user, p, pd->regs->fp),
				    .lr = reg_at(a->regs_user, p, pd->regs->lr),
				};
			}
		}
	}
	if (st & S_STACK_USER) {
		int r = take_stack_user(&c, sample_tail_bytes(st), tail, s);

		if (r < 0)
			return r;
	}
	return c.bad ? -EBADMSG : c.short_read ? -EAGAIN : 0;
}

/* A NUL-terminated string in [p, end); NULL when there is none. */
static const char *str_in(const uint8_t *p, const uint8_t *end)
{
	return p < end && memchr(p, '\0', end - p) ? (const char *)p : NULL;
}

/* See parse_sample() for avail and tail; events other than samples are always read whole. */
static int parse_event(const struct perfdata *pd, const uint8_t *e, size_t len, size_t avail,
		       const uint64_t *tail, struct perfdata_event *ev)
{
	uint32_t type = get32(e);
	uint16_t misc = get16(e + 4);
	const struct attr *a = event_attr(pd, e, len, type);
	const uint8_t *end = e + len;

	if (!a)
		return -EBADMSG;
	if (type == R_SAMPLE) {
		ev->type = PERFDATA_EV_SAMPLE;
		return parse_sample(pd, a, e, len, avail, tail, ev);
	}
	/* Fields end where the sample_id trailer begins. */
	if (a->flags & A_SAMPLE_ID_ALL) {
		size_t ts = trailer_size(a->sample_type);

		if (len < 8 + ts)
			return -EBADMSG;
		end -= ts;
	}
	ev->time = trailer_time(a, e, len);
	switch (type) {
	case R_MMAP:
	case R_MMAP2: {
		struct perfdata_mmap *m = &ev->mmap;
		size_t fixed = type == R_MMAP ? 8 + 32 : 8 + 32 + 24 + 8;

		if ((size_t)(end - e) < fixed)
			return -EBADMSG;
		ev->type = PERFDATA_EV_MMAP;
		ev->pid = get32(e + 8);
		ev->tid = get32(e + 12);
		*m = (struct perfdata_mmap){
		    .start = get64(e + 16),
		    .len = get64(e + 24),
		    .pgoff = get64(e + 32),
		    .prot = (misc & MISC_MMAP_DATA) ? 1 /* PROT_READ */ : 5 /* PROT_READ|EXEC */,
		};
		if (type == R_MMAP2) {
			const uint8_t *u = e + 40;

			if (misc & MISC_MMAP_BUILD_ID) {
				m->build_id_len = MIN(u[0], (uint8_t)20);
				m->build_id = u + 4;
			} else {
				m->maj = get32(u);
				m->min = get32(u + 4);
				m->ino = get64(u + 8);
			}
			m->prot = get32(e + 64);
		}
		m->path = str_in(e + fixed, end);
		return m->path ? 0 : -EBADMSG;
	}
	case R_COMM:
		if ((size_t)(end - e) < 16)
			return -EBADMSG;
		ev->type = PERFDATA_EV_COMM;
		ev->pid = get32(e + 8);
		ev->tid = get32(e + 12);
		ev->comm.exec = misc & MISC_COMM_EXEC;
		ev->comm.comm = str_in(e + 16, end);
		return ev->comm.comm ? 0 : -EBADMSG;
	case R_FORK:
	case R_EXIT:
		if ((size_t)(end - e) < 8 + 24)
			return -EBADMSG;
		ev->type = type == R_FORK ? PERFDATA_EV_FORK : PERFDATA_EV_EXIT;
		ev->pid = get32(e + 8);
		ev->task.ppid = get32(e + 12);
		ev->tid = get32(e + 16);
		ev->task.ptid = get32(e + 20);
		if (!ev->time)
			ev->time = get64(e + 24);
		return 0;
	case R_LOST:
		if ((size_t)(end - e) < 8 + 16)
			return -EBADMSG;
		ev->type = PERFDATA_EV_LOST;
		ev->lost = get64(e + 16);
		return 0;
	case R_LOST_SAMPLES:
		if ((size_t)(end - e) < 8 + 8)
			return -EBADMSG;
		ev->type = PERFDATA_EV_LOST;
		ev->lost = get64(e + 8);
		return 0;
	default:
		return -ENOENT;
	}
}

static bool event_used(uint32_t type)
{
	return type == R_SAMPLE || type == R_MMAP || type == R_MMAP2 || type == R_COMM ||
	       type == R_FORK || type == R_EXIT || type == R_LOST || type == R_LOST_SAMPLES;
}

/* The time an event is ordered by, from a cheap look at its fields. */
static uint64_t event_time(const struct perfdata *pd, const uint8_t *e, size_t len, uint32_t type)
{
	const struct attr *a = event_attr(pd, e, len, type);

	if (!a)
		return 0;
	if (type == R_SAMPLE) {
		uint64_t st = a->sample_type;
		size_t pos = 8 + 8 * (!!(st & S_IDENTIFIER) + !!(st & S_IP) + !!(st & S_TID));

		return (st & S_TIME) && len >= pos + 8 ? get64(e + pos) : 0;
	}
	return trailer_time(a, e, len);
}

/* Read exactly n bytes at off: 0, or -errno (-EIO for a short read). */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? -EIO : -errno;
		done += (size_t)k;
	}
	return 0;
}

/* dyn_size of the sample ending at `end` (file offset), read by pass 1; see sample_tail_bytes(). */
static void note_tail(struct index_entry *e, int tail_bytes, const uint8_t *before_end,
		      size_t n_before)
{
	if (tail_bytes > 0 && (size_t)tail_bytes <= n_before) {
		e->tail = get64(before_end - tail_bytes);
		e->pos |= POS_TAIL;
	}
}

static int cmp_index(const void *x, const void *y)
{
	const struct index_entry *a = x, *b = y;
	uint64_t ao = a->pos & POS_OFFSET_MASK, bo = b->pos & POS_OFFSET_MASK;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	return ao < bo ? -1 : ao > bo;
}

/* The events pass 1 framed, in file order until sorted by time. */
struct event_index {
	struct index_entry *v;
	size_t n, cap;
	size_t prev;   /* index of the sample just before the offset being read; SIZE_MAX: none */
	int prev_tail; /* its tail bytes (sample_tail_bytes()), -1: unknown */
};

static int index_grow(struct event_index *ix)
{
	return GROW_ARRAY(ix->v, ix->cap, ix->n + 1, PERFDATA_MAX_EVENTS);
}

/* Index one used event of `size` bytes at `off`, whose first bytes are e. */
static int index_event(struct perfdata *pd, struct event_index *ix, uint8_t *scratch,
		       const uint8_t *e, uint32_t type, uint16_t size, uint64_t off)
{
	int r = index_grow(ix);

	if (r < 0)
		return r;
	if (type != R_SAMPLE && size > 64) {
		r = pread_full(pd->fd, scratch, size, off);
		if (r < 0)
			return r;
		e = scratch;
	}
	ix->v[ix->n] = (struct index_entry){
	    .time = event_time(pd, e, size, type),
	    .pos = off | (uint64_t)size << POS_SIZE_SHIFT,
	};
	if (type == R_SAMPLE) {
		const struct attr *a = event_attr(pd, e, MIN((size_t)size, (size_t)64), type);

		ix->v[ix->n].pos |= POS_SAMPLE;
		ix->prev = ix->n;
		ix->prev_tail = a ? sample_tail_bytes(a->sample_type) : -1;
	}
	ix->n++;
	return 0;
}

/*
 * Pass 1: frame the events and note their times, reading just their first bytes (all a
 * sample's time needs) or, for the small events with a sample_id trailer, the whole event.
 * Each read starts up to 64 bytes early: the end of the event before, where a sample keeps
 * its dyn_size, so pass 2 can read just the stack bytes it holds. Events are read with
 * pread(), never through the mapping: touching a page of a mapping maps the pages around it
 * too, and a perf.data is mostly stack bytes nobody reads. (Keeping what pass 2 needs from
 * pass 1 instead would save a read per sample, but costs as much in fresh memory.)
 * Sets *damage to 2 at an event header that cannot be right (reading stops there).
 */
static int index_events(struct perfdata *pd, uint64_t end, uint8_t *scratch,
			struct event_index *ix, int *damage)
{
	uint64_t off = pd->info.data_offset;
	int r;

	while (off < end) {
		uint8_t buf[128];
		const uint8_t *e;
		size_t before = MIN((uint64_t)64, off - pd->info.data_offset);
		uint32_t type;
		uint16_t size;

		r = pread_full(pd->fd, buf, before + MIN((uint64_t)64, end - off), off - before);
		if (r < 0)
			return r;
		e = buf + before;
		if (ix->prev != SIZE_MAX)
			note_tail(&ix->v[ix->prev], ix->prev_tail, e, before);
		ix->prev = SIZE_MAX;
		if (end - off < 8) {
			fail(pd, off,
			     "truncated event header at byte offset %" PRIu64 ": %" PRIu64
			     " of 8 bytes",
			     off, end - off);
			*damage = 2;
			break;
		}
		type = get32(e);
		size = get16(e + 6);
		if (size < 8) {
			fail(pd, off, "corrupt event at byte offset %" PRIu64 ": size %u", off,
			     size);
			*damage = 2;
			break;
		}
		if (size > end - off) {
			fail(pd, off,
			     "truncated event at byte offset %" PRIu64 ": type %" PRIu32
			     " needs %u bytes, %" PRIu64 " left",
			     off, type, size, end - off);
			*damage = 2;
			break;
		}
		if (type == R_COMPRESSED)
			return -EOPNOTSUPP;
		pd->st.events++;
		if (event_used(type)) {
			r = index_event(pd, ix, scratch, e, type, size, off);
			if (r < 0)
				return r;
		} else {
			pd->st.skipped++;
		}
		off += size;
	}
	if (ix->prev != SIZE_MAX && ix->prev_tail > 0) {
		/* The last sample: its end was not read with a following event. */
		uint8_t buf[64];
		size_t before = MIN((uint64_t)64, off - pd->info.data_offset);

		r = pread_full(pd->fd, buf, before, off - before);
		if (r < 0)
			return r;
		note_tail(&ix->v[ix->prev], ix->prev_tail, buf + before, before);
	}
	return 0;
}

static void count_event(struct perfdata *pd, const struct perfdata_event *ev)
{
	switch (ev->type) {
	case PERFDATA_EV_SAMPLE:
		pd->st.samples++;
		break;
	case PERFDATA_EV_MMAP:
		pd->st.mmaps++;
		break;
	case PERFDATA_EV_COMM:
		pd->st.comms++;
		break;
	case PERFDATA_EV_FORK:
		pd->st.forks++;
		break;
	case PERFDATA_EV_EXIT:
		pd->st.exits++;
		break;
	case PERFDATA_EV_LOST:
		pd->st.lost_events++;
		pd->st.lost_samples += ev->lost;
		break;
	}
}

/*
 * Read and parse one indexed event into ev: parse_event()'s result in *ret_parse, a read
 * error returned. A sample whose dyn_size pass 1 saw is read up to `head` bytes plus the stack
 * bytes it holds; if its fields turn out to need more (or anything else does), the whole event
 * is read.
 */
static int read_event(struct perfdata *pd, const struct index_entry *ie, size_t head,
		      uint8_t *scratch, struct perfdata_event *ev, int *ret_parse)
{
	uint64_t eoff = ie->pos & POS_OFFSET_MASK;
	size_t size = (size_t)(ie->pos >> POS_SIZE_SHIFT), got = size;
	const uint64_t *tail = (ie->pos & POS_TAIL) ? &ie->tail : NULL;
	int r = -EAGAIN;

	memset(ev, 0, offsetof(struct perfdata_event, sample));
	ev->offset = eoff;
	if (tail) {
		got = (size_t)MIN((uint64_t)size, head + MIN(ie->tail, (uint64_t)size));
		r = pread_full(pd->fd, scratch, got, eoff);
		if (r < 0)
			return r;
		r = parse_event(pd, scratch, size, got, tail, ev);
	}
	if (r == -EAGAIN) {
		if (got != size || !tail) {
			r = pread_full(pd->fd, scratch, size, eoff);
			if (r < 0)
				return r;
		}
		memset(ev, 0, offsetof(struct perfdata_event, sample));
		ev->offset = eoff;
		r = parse_event(pd, scratch, size, size, NULL, ev);
	}
	*ret_parse = r;
	return 0;
}

int perfdata_read(struct perfdata *pd, perfdata_event_fn fn, void *userdata)
{
	uint64_t end = pd->info.data_offset + pd->info.data_size;
	struct event_index ix = {.prev = SIZE_MAX, .prev_tail = -1};
	_cleanup_free_ struct perfdata_event *ev = NULL;
	_cleanup_free_ uint8_t *scratch = NULL;
	size_t head = PERFDATA_HEAD_BYTES;
	bool head_seen = false;
	int damage = 0, r;

	if (end < pd->info.data_offset || end > pd->size) {
		/* The header promises more than the file holds: read what is there, then say so. */
		end = pd->size;
		damage = 1;
	}
	if (pd->size > POS_OFFSET_MASK)
		return -EFBIG;
	scratch = malloc(UINT16_MAX + 1);
	ev = malloc(sizeof(*ev));
	if (!scratch || !ev)
		return -ENOMEM;
	r = index_events(pd, end, scratch, &ix, &damage);
	if (r < 0)
		goto out;
	if (damage == 1)
		fail(pd, pd->size,
		     "truncated file: the data section should end at byte offset %" PRIu64
		     " but the file ends at %zu",
		     pd->info.data_offset + pd->info.data_size, pd->size);
	if (ix.n)
		qsort(ix.v, ix.n, sizeof(*ix.v), cmp_index);

	/* Pass 2: read, parse and deliver in time order, which is about file order. */
	for (size_t i = 0; i < ix.n; i++) {
		int parsed = 0;

		r = read_event(pd, &ix.v[i], head, scratch, ev, &parsed);
		if (r < 0)
			goto out;
		r = parsed;
		if (r == -ENOENT) {
			pd->st.skipped++;
			continue;
		}
		if (r < 0) {
			pd->st.malformed++;
			continue;
		}
		count_event(pd, ev);
		if (ev->type == PERFDATA_EV_SAMPLE && ev->sample.stack) {
			size_t h = (size_t)(ev->sample.stack - scratch) + HEAD_SLACK;

			if (!head_seen || h > head)
				head = h;
			head_seen = true;
		}
		r = fn(userdata, ev);
		if (r < 0)
			goto out;
	}
	r = damage ? -EBADMSG : 0;
out:
	free(ix.v);
	return r;
}
