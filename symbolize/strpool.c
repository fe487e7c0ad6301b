/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/macro.h"
#include "symbolize/internal.h"

/* Big enough that a binary's names need few mallocs, small enough not to matter per sym_elf. */
#define CHUNK_SIZE (64u * 1024)

struct str_pool_chunk {
	struct str_pool_chunk *next;
	size_t size, used;
	char data[];
};

struct str_pool_entry {
	const char *key;
	const char *value;
};

void str_pool_init(struct str_pool *p, size_t max_bytes)
{
	*p = (struct str_pool){ .max_bytes = max_bytes };
	hash_seed_init(&p->seed);
}

void str_pool_done(struct str_pool *p)
{
	if (!p)
		return;
	while (p->chunks) {
		struct str_pool_chunk *c = p->chunks;
		p->chunks = c->next;
		free(c);
	}
	free(p->entries);
	hash_index_free(&p->index);
	*p = (struct str_pool){ .max_bytes = p->max_bytes, .seed = p->seed };
}

/* The map's share of p->bytes. */
static size_t table_bytes(const struct str_pool *p)
{
	return hash_index_bytes(&p->index) + p->cap_entries * sizeof(*p->entries);
}

static char *pool_alloc(struct str_pool *p, size_t n)
{
	struct str_pool_chunk *c = p->chunks;
	size_t total;

	if (size_add(p->bytes, n, &total) < 0 || total > p->max_bytes)
		return NULL;

	if (c && c->size - c->used >= n) {
		char *r = c->data + c->used;
		c->used += n;
		p->bytes = total;
		return r;
	}

	/* Large strings get a chunk of their own, linked behind the head so the head keeps
	 * filling; otherwise start a new head. */
	size_t size = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
	struct str_pool_chunk *nc = malloc(sizeof(*nc) + size);
	if (!nc)
		return NULL;
	nc->size = size;
	nc->used = n;
	if (size != CHUNK_SIZE && c) {
		nc->next = c->next;
		c->next = nc;
	} else {
		nc->next = c;
		p->chunks = nc;
	}
	p->bytes = total;
	return nc->data;
}

const char *str_pool_strndup(struct str_pool *p, const char *s, size_t n)
{
	size_t sz;
	if (size_add(n, 1, &sz) < 0)
		return NULL;
	char *d = pool_alloc(p, sz);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static bool key_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct str_pool *p = ctx;
	const char *k = p->entries[id - 1].key;

	return k == key || strcmp(k, key) == 0;
}

static struct hash_slot *map_find(const struct str_pool *p, const char *key, uint64_t *ret_hash)
{
	*ret_hash = hash_bytes(&p->seed, key, strlen(key));
	return hash_index_find(&p->index, *ret_hash, key_eq, p, key);
}

const char *str_pool_map_get(const struct str_pool *p, const char *key)
{
	struct hash_slot *s;
	uint64_t h;

	if (!p->index.cap)
		return NULL;
	s = map_find(p, key, &h);
	return s->id ? p->entries[s->id - 1].value : NULL;
}

int str_pool_map_put(struct str_pool *p, const char *key, const char *value)
{
	size_t base = p->bytes - table_bytes(p), index_bytes, left;
	struct hash_slot *s;
	uint64_t h;
	int r;

	if (p->index.cap) {
		s = map_find(p, key, &h);
		if (s->id) {
			p->entries[s->id - 1].value = value;
			return 0;
		}
	}
	/* The tables count against the same budget as the strings. */
	index_bytes = hash_index_reserve_bytes(&p->index);
	if (size_add(base, index_bytes, &left) < 0 || left > p->max_bytes)
		return -E2BIG;
	left = p->max_bytes - left;
	if ((p->n_entries + 1) * sizeof(*p->entries) > left)
		return -E2BIG;
	r = hash_index_reserve(&p->index, UINT32_MAX - 1);
	if (r >= 0)
		r = grow((void **)&p->entries, &p->cap_entries, p->n_entries + 1,
			 sizeof(*p->entries), left / sizeof(*p->entries));
	p->bytes = base + table_bytes(p);
	if (r < 0)
		return r;
	s = map_find(p, key, &h);
	p->entries[p->n_entries++] = (struct str_pool_entry){ .key = key, .value = value };
	hash_index_insert(&p->index, s, p->n_entries, h);
	return 0;
}
