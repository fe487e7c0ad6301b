/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "symbolize/internal.h"

/* Big enough that a binary's names need few mallocs, small enough not to matter per sym_elf. */
#define CHUNK_SIZE (64u * 1024)

struct str_pool_chunk {
	struct str_pool_chunk *next;
	size_t size, used;
	char data[];
};

struct str_pool_slot {
	const char *key; /* NULL: empty */
	const char *value;
	uint64_t hash;
};

void str_pool_init(struct str_pool *p, size_t max_bytes)
{
	*p = (struct str_pool){ .max_bytes = max_bytes };
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
	free(p->slots);
	*p = (struct str_pool){ .max_bytes = p->max_bytes };
}

static size_t slots_bytes(size_t n)
{
	return n * sizeof(struct str_pool_slot);
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

static uint64_t hash_str(const char *s)
{
	/* FNV-1a: keys are symbol names, not attacker-chosen for collisions against a
	 * per-process table whose worst case is just slower lookups. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

const char *str_pool_map_get(const struct str_pool *p, const char *key)
{
	if (!p->n_slots)
		return NULL;
	uint64_t h = hash_str(key);
	size_t mask = p->n_slots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct str_pool_slot *s = &p->slots[i];
		if (!s->key)
			return NULL;
		if (s->hash == h && (s->key == key || strcmp(s->key, key) == 0))
			return s->value;
	}
}

static void slot_insert(struct str_pool_slot *slots, size_t n_slots, const char *key,
			const char *value, uint64_t h)
{
	size_t mask = n_slots - 1;
	size_t i = h & mask;
	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i] = (struct str_pool_slot){ .key = key, .value = value, .hash = h };
}

int str_pool_map_put(struct str_pool *p, const char *key, const char *value)
{
	uint64_t h = hash_str(key);

	/* Keep the load factor under 1/2 so probes stay short. */
	if ((p->n_used + 1) * 2 > p->n_slots) {
		size_t n = p->n_slots ? p->n_slots * 2 : 256;
		/* The table counts against the same budget as the strings. */
		size_t total;
		if (size_add(p->bytes, slots_bytes(n), &total) < 0 ||
		    total - slots_bytes(p->n_slots) > p->max_bytes)
			return -E2BIG;
		struct str_pool_slot *ns = calloc(n, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < p->n_slots; i++)
			if (p->slots[i].key)
				slot_insert(ns, n, p->slots[i].key, p->slots[i].value,
					    p->slots[i].hash);
		p->bytes = total - slots_bytes(p->n_slots);
		free(p->slots);
		p->slots = ns;
		p->n_slots = n;
	}

	size_t mask = p->n_slots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct str_pool_slot *s = &p->slots[i];
		if (!s->key) {
			*s = (struct str_pool_slot){ .key = key, .value = value, .hash = h };
			p->n_used++;
			return 0;
		}
		if (s->hash == h && (s->key == key || strcmp(s->key, key) == 0)) {
			s->value = value;
			return 0;
		}
	}
}
