// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/macro.h"
#include "pipeline/aggregate.h"
#include "pipeline/python/python.h"

struct aggregate {
	/* Open hash of stacks with chaining; buckets double when the load passes 1. */
	struct agg_stack **buckets;
	size_t n_buckets, n_stacks;
	/* Every stack also sits in insertion order for deterministic output. */
	struct agg_stack **order;
	size_t order_cap;
	struct agg_mapping *maps; /* index = id - AGG_MAP_FIRST */
	size_t n_maps, maps_cap;
	char **containers; /* index = idx - 1 */
	size_t n_containers, containers_cap;
	uint64_t n_samples, n_dropped;
	uint64_t off_cpu_ns;
	struct agg_jitmap {
		uint32_t pid;
		struct jitmap *jm; /* reference */
	} jitmaps[AGG_MAX_JITMAPS];
	size_t n_jitmaps;
	uint64_t jitmap_bytes;
};

static uint64_t hash_word(uint64_t h, uint64_t v)
{
	/* Runs for every frame of every sample: a word at a time, not FNV's byte at a time. */
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

/* The name up to its NUL (what stack_equal() compares), as two words. */
static uint64_t hash_name(uint64_t h, const char *s, size_t size)
{
	uint64_t w[2] = {};

	memcpy(w, s, MIN(strnlen(s, size), sizeof(w)));
	return hash_word(hash_word(h, w[0]), w[1]);
}

/* A frame's kind, return flag and line as one word. */
static uint32_t frame_bits(const struct agg_frame *f)
{
	return (uint32_t)f->kind | (uint32_t)f->is_return << 2 | (uint32_t)f->line << 8;
}

static uint64_t stack_hash(const struct agg_stack *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	_Static_assert(sizeof(s->comm) <= 16 && sizeof(s->pcomm) <= 16,
		       "names hashed as two words");
	h = hash_word(h, (uint64_t)s->pid << 32 | s->tid);
	h = hash_name(h, s->comm, sizeof(s->comm));
	h = hash_name(h, s->pcomm, sizeof(s->pcomm));
	h = hash_word(h, (uint64_t)s->stop << 32 | (uint64_t)s->n_frames << 16 | s->container);
	h = hash_word(h, s->state);
	for (size_t i = 0; i < s->n_frames; i++) {
		h = hash_word(h, s->frames[i].addr);
		h = hash_word(h, (uint64_t)s->frames[i].map_id << 32 | frame_bits(&s->frames[i]));
	}
	return h ^ (h >> 31);
}

static bool stack_equal(const struct agg_stack *a, const struct agg_stack *b)
{
	if (a->pid != b->pid || a->tid != b->tid || a->stop != b->stop ||
	    a->n_frames != b->n_frames || a->complete != b->complete || a->container != b->container ||
	    a->state != b->state)
		return false;
	if (strncmp(a->comm, b->comm, sizeof(a->comm)) || strncmp(a->pcomm, b->pcomm, sizeof(a->pcomm)))
		return false;
	for (size_t i = 0; i < a->n_frames; i++)
		if (a->frames[i].addr != b->frames[i].addr ||
		    a->frames[i].map_id != b->frames[i].map_id ||
		    frame_bits(&a->frames[i]) != frame_bits(&b->frames[i]))
			return false;
	return true;
}

int aggregate_new(struct aggregate **ret)
{
	struct aggregate *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->n_buckets = 1024;
	a->buckets = calloc(a->n_buckets, sizeof(*a->buckets));
	if (!a->buckets) {
		free(a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

void aggregate_free(struct aggregate *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_stacks; i++) {
		struct agg_stack *st = a->order[i];

		for (size_t f = 0; f < st->n_frames; f++)
			if (st->frames[f].kind == AGG_FRAME_PYTHON)
				py_code_unref(st->frames[f].code);
		free(st);
	}
	free(a->order);
	free(a->buckets);
	for (size_t i = 0; i < a->n_maps; i++) {
		dso_unref(a->maps[i].dso);
		free(a->maps[i].name);
	}
	free(a->maps);
	for (size_t i = 0; i < a->n_containers; i++)
		free(a->containers[i]);
	free(a->containers);
	for (size_t i = 0; i < a->n_jitmaps; i++)
		jitmap_unref(a->jitmaps[i].jm);
	free(a);
}

int aggregate_intern_mapping(struct aggregate *a, const struct mapping *m, uint32_t *ret_id)
{
	struct agg_mapping *am;
	int r;

	/* Few mappings per profile; a linear scan from the newest is fast enough and simple. */
	for (size_t i = a->n_maps; i-- > 0;) {
		am = &a->maps[i];
		if (am->start == m->start && am->end == m->end && am->pgoff == m->pgoff &&
		    am->dso == m->dso && am->kind == m->kind &&
		    ((!am->name && !m->name) || (am->name && m->name && !strcmp(am->name, m->name)))) {
			*ret_id = AGG_MAP_FIRST + i;
			return 0;
		}
	}
	r = GROW_ARRAY(a->maps, a->maps_cap, a->n_maps + 1, AGG_MAX_MAPPINGS);
	if (r < 0)
		return r;
	am = &a->maps[a->n_maps];
	*am = (struct agg_mapping){ .start = m->start, .end = m->end, .pgoff = m->pgoff,
				    .kind = m->kind, .is_exe = m->is_exe };
	if (m->name && !(am->name = strdup(m->name)))
		return -ENOMEM;
	am->dso = dso_ref(m->dso);
	*ret_id = AGG_MAP_FIRST + a->n_maps++;
	return 0;
}

const struct agg_mapping *aggregate_mapping(const struct aggregate *a, uint32_t id)
{
	if (id < AGG_MAP_FIRST || id - AGG_MAP_FIRST >= a->n_maps)
		return NULL;
	return &a->maps[id - AGG_MAP_FIRST];
}

size_t aggregate_n_mappings(const struct aggregate *a)
{
	return a->n_maps;
}

int aggregate_intern_container(struct aggregate *a, const char *id, uint16_t *ret_idx)
{
	size_t len = id ? strlen(id) : 0;
	int r;

	if (len == 0 || len > AGG_CONTAINER_ID_MAX)
		return -EINVAL;
	/* A handful of containers per host: a linear scan, and callers cache the index per pid. */
	for (size_t i = 0; i < a->n_containers; i++)
		if (!strcmp(a->containers[i], id)) {
			*ret_idx = i + 1;
			return 0;
		}
	r = GROW_ARRAY(a->containers, a->containers_cap, a->n_containers + 1, AGG_MAX_CONTAINERS);
	if (r < 0)
		return r;
	a->containers[a->n_containers] = strdup(id);
	if (!a->containers[a->n_containers])
		return -ENOMEM;
	*ret_idx = ++a->n_containers;
	return 0;
}

const char *aggregate_container(const struct aggregate *a, uint16_t idx)
{
	if (idx == 0 || idx > a->n_containers)
		return NULL;
	return a->containers[idx - 1];
}

static int grow_buckets(struct aggregate *a)
{
	size_t n = a->n_buckets * 2;
	struct agg_stack **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_stacks; i++) {
		struct agg_stack *s = a->order[i];
		size_t k = s->hash & (n - 1);

		s->next = b[k];
		b[k] = s;
	}
	free(a->buckets);
	a->buckets = b;
	a->n_buckets = n;
	return 0;
}

int aggregate_add(struct aggregate *a, const struct agg_stack *stack, uint64_t count)
{
	uint64_t h = stack_hash(stack);
	struct agg_stack *s;
	size_t size;
	int r;

	for (s = a->buckets[h & (a->n_buckets - 1)]; s; s = s->next)
		if (s->hash == h && stack_equal(s, stack)) {
			s->count += count;
			s->off_cpu_ns += stack->off_cpu_ns;
			a->n_samples += count;
			a->off_cpu_ns += stack->off_cpu_ns;
			return 0;
		}

	if (a->n_stacks >= AGG_MAX_STACKS || stack->n_frames > AGG_MAX_FRAMES) {
		a->n_dropped += count ? count : 1;
		return -E2BIG;
	}
	r = GROW_ARRAY(a->order, a->order_cap, a->n_stacks + 1, AGG_MAX_STACKS);
	if (r < 0)
		return r;
	size = sizeof(*s) + stack->n_frames * sizeof(stack->frames[0]);
	s = malloc(size);
	if (!s)
		return -ENOMEM;
	memcpy(s, stack, size);
	for (size_t f = 0; f < s->n_frames; f++)
		if (s->frames[f].kind == AGG_FRAME_PYTHON)
			py_code_ref(s->frames[f].code);
	s->hash = h;
	s->count = count;
	s->next = a->buckets[h & (a->n_buckets - 1)];
	a->buckets[h & (a->n_buckets - 1)] = s;
	a->order[a->n_stacks++] = s;
	a->n_samples += count;
	a->off_cpu_ns += stack->off_cpu_ns;
	if (a->n_stacks > a->n_buckets)
		(void)grow_buckets(a); /* a failed grow only makes chains longer */
	return 0;
}

const struct agg_stack *aggregate_stack(const struct aggregate *a, size_t i)
{
	return i < a->n_stacks ? a->order[i] : NULL;
}

size_t aggregate_n_stacks(const struct aggregate *a)
{
	return a->n_stacks;
}

uint64_t aggregate_off_cpu_ns(const struct aggregate *a)
{
	return a->off_cpu_ns;
}

uint64_t aggregate_n_samples(const struct aggregate *a)
{
	return a->n_samples;
}

uint64_t aggregate_n_dropped(const struct aggregate *a)
{
	return a->n_dropped;
}

static struct agg_jitmap *jitmap_slot(const struct aggregate *a, uint32_t pid)
{
	for (size_t i = 0; i < a->n_jitmaps; i++)
		if (a->jitmaps[i].pid == pid)
			return (struct agg_jitmap *)&a->jitmaps[i];
	return NULL;
}

int aggregate_set_jitmap(struct aggregate *a, uint32_t pid, struct jitmap *jm, bool replace_only)
{
	struct agg_jitmap *s = jitmap_slot(a, pid);
	uint64_t old = s ? s->jm->bytes : 0;

	if (!jm)
		return -EINVAL;
	if (s && s->jm == jm)
		return 0;
	if (replace_only && (!s || s->jm->owner != jm->owner))
		return -ENOENT;
	if ((!s && a->n_jitmaps >= AGG_MAX_JITMAPS) ||
	    a->jitmap_bytes - old + jm->bytes > AGG_MAX_JITMAP_BYTES)
		return -E2BIG;
	if (!s) {
		s = &a->jitmaps[a->n_jitmaps++];
		s->pid = pid;
		s->jm = NULL;
	}
	jitmap_unref(s->jm);
	s->jm = jitmap_ref(jm);
	a->jitmap_bytes = a->jitmap_bytes - old + jm->bytes;
	return 0;
}

struct jitmap *aggregate_jitmap(const struct aggregate *a, uint32_t pid)
{
	const struct agg_jitmap *s = jitmap_slot(a, pid);

	return s ? s->jm : NULL;
}
