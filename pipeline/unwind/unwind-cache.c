// SPDX-License-Identifier: MIT
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "common/elf.h"
#include "common/macro.h"
#include "pipeline/unwind/cfi.h"
#include "pipeline/unwind/unwind-cache.h"

#define CACHE_HASH_SIZE 4096

struct load {
	uint64_t vaddr, offset, filesz;
	bool exec;
};

struct entry {
	struct unwind_key key;
	uint64_t hash;
	struct cfi_table *cfi; /* NULL: no usable CFI (the frame pointer has to do) */
	int err;               /* < 0 when the file was unusable as an ELF */
	struct load loads[UNWIND_MAX_LOADS];
	size_t n_loads;
	size_t bytes;
	struct entry *hash_next;
	struct entry *lru_prev, *lru_next; /* head = most recently used */
};

struct unwind_cache {
	size_t max_bytes;
	struct entry *buckets[CACHE_HASH_SIZE];
	struct entry *lru_head, *lru_tail;
	struct unwind_cache_stats st;
};

static uint64_t key_hash(const struct unwind_key *k)
{
	uint64_t h;

	/* Called for every frame. A build-id is a hash already: its first bytes are enough. */
	if (k->build_id_len >= 8) {
		memcpy(&h, k->build_id, sizeof(h));
		h ^= k->build_id_len;
	} else {
		h = 0xcbf29ce484222325ull;
		for (size_t i = 0; i < k->build_id_len; i++)
			h = (h ^ k->build_id[i]) * 0x100000001b3ull;
	}
	/* The file is part of the key: copies of one build-id land in different buckets. */
	h ^= k->dev * 0x9e3779b97f4a7c15ull;
	h ^= k->ino * 0xbf58476d1ce4e5b9ull;
	h ^= k->size * 0x94d049bb133111ebull;
	h ^= k->mtime_ns;
	return h ^ (h >> 29);
}

static bool key_equal(const struct unwind_key *a, const struct unwind_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->build_id_len == b->build_id_len &&
	       memcmp(a->build_id, b->build_id, a->build_id_len) == 0;
}

void unwind_key_make(const uint8_t *build_id, size_t build_id_len, uint64_t dev, uint64_t ino,
		     uint64_t size, uint64_t mtime_ns, struct unwind_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (build_id && build_id_len > 0 && build_id_len <= sizeof(ret->build_id)) {
		memcpy(ret->build_id, build_id, build_id_len);
		ret->build_id_len = build_id_len;
	}
	ret->dev = dev;
	ret->ino = ino;
	ret->size = size;
	ret->mtime_ns = mtime_ns;
}

int unwind_key_from_fd(int fd, const uint8_t *build_id, size_t build_id_len,
		       struct unwind_key *ret)
{
	struct stat st;

	memset(ret, 0, sizeof(*ret));
	if (fstat(fd, &st) < 0)
		return -errno;
	unwind_key_make(build_id, build_id_len, st.st_dev, st.st_ino, (uint64_t)st.st_size,
			(uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec,
			ret);
	return 0;
}

int unwind_cache_new(size_t max_bytes, struct unwind_cache **ret)
{
	struct unwind_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->max_bytes = max_bytes ? max_bytes : UNWIND_CACHE_DEFAULT_BYTES;
	*ret = c;
	return 0;
}

static void lru_unlink(struct unwind_cache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct unwind_cache *c, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	cfi_table_free(e->cfi);
	free(e);
}

static void evict(struct unwind_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash % CACHE_HASH_SIZE];

	for (; *pp; pp = &(*pp)->hash_next)
		if (*pp == e) {
			*pp = e->hash_next;
			break;
		}
	lru_unlink(c, e);
	c->st.entries--;
	c->st.bytes -= e->bytes;
	if (e->cfi)
		c->st.rows -= cfi_table_n_rows(e->cfi);
	c->st.evictions++;
	entry_free(e);
}

void unwind_cache_free(struct unwind_cache *c)
{
	if (!c)
		return;
	while (c->lru_head) {
		struct entry *e = c->lru_head;

		c->lru_head = e->lru_next;
		entry_free(e);
	}
	free(c);
}

static int read_loads(int fd, struct entry *e)
{
	Elf *elf;
	size_t n;
	int r = 0;

	elf = elf_begin_fd(fd);
	if (!elf)
		return -EINVAL;
	if (elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &n) != 0) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n && e->n_loads < UNWIND_MAX_LOADS; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		e->loads[e->n_loads++] = (struct load){
			.vaddr = ph.p_vaddr,
			.offset = ph.p_offset,
			.filesz = ph.p_filesz,
			.exec = ph.p_flags & PF_X,
		};
	}
	if (e->n_loads == 0)
		r = -ENOEXEC;
out:
	elf_end(elf);
	return r;
}

static struct entry *entry_build(struct unwind_cache *c, const struct unwind_key *key, int fd)
{
	struct entry *e = calloc(1, sizeof(*e));
	uint64_t t0 = mono_ns();

	if (!e)
		return NULL;
	e->key = *key;
	e->hash = key_hash(key);
	e->err = read_loads(fd, e);
	if (e->err == 0 && cfi_table_build_from_elf_fd(fd, &e->cfi) < 0)
		e->cfi = NULL;
	if (e->err < 0 || !e->cfi)
		c->st.build_failures++;
	e->bytes = sizeof(*e) + (e->cfi ? cfi_table_size_bytes(e->cfi) : 0);
	c->st.build_ns += mono_ns() - t0;
	return e;
}

/* Bias for a mapping of file offset `pgoff` at `start`, from the PT_LOAD that contains it. */
static int entry_bias(const struct entry *e, uint64_t pgoff, uint64_t start, int64_t *ret)
{
	const struct load *best = NULL;

	for (size_t i = 0; i < e->n_loads; i++) {
		const struct load *l = &e->loads[i];
		uint64_t lo = l->offset & ~(uint64_t)0xfff;

		if (pgoff >= lo && pgoff < l->offset + l->filesz && (!best || (l->exec && !best->exec)))
			best = l;
	}
	if (!best)
		return -ENOENT;
	/* Address A ↔ file offset pgoff + (A - start) ↔ vaddr p_vaddr + that - p_offset. */
	*ret = (int64_t)(start - pgoff + best->offset - best->vaddr);
	return 0;
}

int unwind_cache_module(struct unwind_cache *c, const struct unwind_key *key, int fd,
			uint64_t start, uint64_t end, uint64_t pgoff, struct unwind_module *ret)
{
	uint64_t h = key_hash(key);
	struct entry *e;
	int64_t bias;

	*ret = (struct unwind_module){ .start = start, .end = end };
	for (e = c->buckets[h % CACHE_HASH_SIZE]; e; e = e->hash_next)
		if (e->hash == h && key_equal(&e->key, key))
			break;
	if (e) {
		c->st.hits++;
		lru_unlink(c, e);
		lru_push_front(c, e);
	} else {
		if (fd < 0)
			return -EBADF;
		c->st.misses++;
		e = entry_build(c, key, fd);
		if (!e)
			return -ENOMEM;
		/* Make room first, so the new entry itself is never the one evicted. */
		while (c->lru_tail &&
		       (c->st.bytes + e->bytes > c->max_bytes || c->st.entries >= UNWIND_CACHE_MAX_ENTRIES))
			evict(c, c->lru_tail);
		e->hash_next = c->buckets[h % CACHE_HASH_SIZE];
		c->buckets[h % CACHE_HASH_SIZE] = e;
		lru_push_front(c, e);
		c->st.entries++;
		c->st.bytes += e->bytes;
		if (e->cfi)
			c->st.rows += cfi_table_n_rows(e->cfi);
	}
	if (e->err < 0)
		return e->err;
	if (entry_bias(e, pgoff, start, &bias) < 0)
		return -ENOENT;
	ret->table = e->cfi;
	ret->bias = bias;
	return 0;
}

void unwind_cache_get_stats(const struct unwind_cache *c, struct unwind_cache_stats *ret)
{
	*ret = c->st;
}
