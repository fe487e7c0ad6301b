/* SPDX-License-Identifier: MIT */
/*
 * pprof builder. Everything is kept in flat arrays of small records (string indexes and ids)
 * while samples arrive; the protobuf-c message tree is built only in pprof_serialize(), pointing
 * into those arrays, packed straight into a deflate stream, then thrown away.
 */
#include "output/pprof.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/macro.h"
#include "output/profile.pb-c.h"

/* Interned strings are packed into blocks of this size; longer ones get a block of their own. */
#define STRING_BLOCK_SIZE (64u << 10)
/* protobuf-c hands over a few bytes per field; batch them before deflate() sees them. */
#define GZ_STAGE_SIZE (64u << 10)
#define GZ_OUT_CHUNK (64u << 10)

struct string_block {
	struct string_block *next;
	size_t used, size;
	char data[];
};

struct function {
	int64_t name, system_name, filename, start_line; /* the dedupe key, hashed as bytes */
};

struct line {
	uint64_t function_id;
	int64_t line;
};

struct location_key {
	uint64_t mapping_id, address;
};

struct location {
	struct location_key key;
	size_t line_off;
	uint32_t n_lines;
};

struct mapping {
	uint64_t memory_start, memory_limit, file_offset;
	int64_t filename, build_id;
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct label {
	int64_t key, str, num, num_unit;
};

/* A sample's locations, values and labels follow the previous sample's in the flat arrays. */
struct sample {
	uint32_t n_locations, n_labels;
};

struct value_type {
	int64_t type, unit;
};

struct pprof_builder {
	/* Keys hashes of symbol names from binaries we do not trust, against crafted collisions. */
	struct hash_seed seed;

	size_t n_sample_types;
	size_t default_type; /* pprof_config.default_sample_type */
	struct value_type sample_types[PPROF_MAX_VALUES];
	struct value_type period_type;
	bool has_period_type;
	int64_t period, time_nanos, duration_nanos, comment;

	char **strings;
	size_t n_strings, cap_strings, string_bytes;
	struct string_block *blocks;
	struct hash_index string_index;

	struct mapping *mappings;
	size_t n_mappings, cap_mappings;

	struct function *functions;
	size_t n_functions, cap_functions;
	struct hash_index function_index;

	struct location *locations;
	size_t n_locations, cap_locations;
	struct hash_index location_index;
	struct line *lines;
	size_t n_lines, cap_lines;

	struct sample *samples;
	size_t n_samples, cap_samples;
	uint64_t *sample_locations;
	size_t n_sample_locations, cap_sample_locations;
	int64_t *values;
	size_t n_values, cap_values;
	struct label *labels;
	size_t n_labels, cap_labels;
};

#define GROW(b, field, need) GROW_ARRAY((b)->field, (b)->cap_##field, (need), GROW_NO_LIMIT)

/* Ids are uint32_t; 0 marks an empty slot. */
#define MAX_INDEX_ENTRIES (UINT32_MAX - 1)

struct string_key {
	const char *s;
	size_t len;
};

static bool string_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct pprof_builder *b = ctx;

	const struct string_key *k = key;
	const char *s = b->strings[id - 1];

	/* strncmp stops at the stored string's NUL, so a shorter one is never overread. */
	return strncmp(s, k->s, k->len) == 0 && s[k->len] == '\0';
}

static char *string_store(struct pprof_builder *b, const char *s, size_t len)
{
	struct string_block *blk = b->blocks;
	size_t need = len + 1;
	char *p;

	if (!blk || blk->size - blk->used < need) {
		size_t size = MAX(need, (size_t)STRING_BLOCK_SIZE);

		blk = malloc(sizeof(*blk) + size);
		if (!blk)
			return NULL;
		blk->size = size;
		blk->used = 0;
		/* A one-off big block goes second, so the current block's free space stays used. */
		if (b->blocks && size > STRING_BLOCK_SIZE) {
			blk->next = b->blocks->next;
			b->blocks->next = blk;
		} else {
			blk->next = b->blocks;
			b->blocks = blk;
		}
	}
	p = blk->data + blk->used;
	memcpy(p, s, len);
	p[len] = '\0';
	blk->used += need;
	return p;
}

/* NULL and "" are index 0, which every profile has. */
static int string_intern(struct pprof_builder *b, const char *s, int64_t *ret)
{
	struct string_key key;
	struct hash_slot *slot;
	uint64_t hash;
	char *copy;
	int r;

	if (!s || !*s) {
		*ret = 0;
		return 0;
	}
	key = (struct string_key){ s, strlen(s) };
	hash = hash_bytes(&b->seed, s, key.len);
	r = hash_index_reserve(&b->string_index, MAX_INDEX_ENTRIES);
	if (r < 0)
		return r;
	slot = hash_index_find(&b->string_index, hash, string_eq, b, &key);
	if (slot->id) {
		*ret = slot->id - 1;
		return 0;
	}
	if (b->n_strings >= PPROF_MAX_STRINGS ||
	    key.len >= PPROF_MAX_STRING_BYTES - b->string_bytes)
		return -E2BIG;
	r = GROW(b, strings, b->n_strings + 1);
	if (r < 0)
		return r;
	copy = string_store(b, s, key.len);
	if (!copy)
		return -ENOMEM;
	b->strings[b->n_strings] = copy;
	b->string_bytes += key.len + 1;
	hash_index_insert(&b->string_index, slot, b->n_strings + 1, hash);
	*ret = b->n_strings++;
	return 0;
}

static bool function_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct pprof_builder *b = ctx;

	return memcmp(&b->functions[id - 1], key, sizeof(struct function)) == 0;
}

static int function_intern(struct pprof_builder *b, const struct pprof_line *l, uint64_t *ret_id)
{
	struct function f;
	struct hash_slot *slot;
	uint64_t hash;
	int r;

	r = string_intern(b, l->function_name, &f.name);
	if (r < 0)
		return r;
	r = string_intern(b, l->system_name ? l->system_name : l->function_name, &f.system_name);
	if (r < 0)
		return r;
	r = string_intern(b, l->filename, &f.filename);
	if (r < 0)
		return r;
	f.start_line = l->start_line;

	hash = hash_bytes(&b->seed, &f, sizeof(f));
	r = hash_index_reserve(&b->function_index, MAX_INDEX_ENTRIES);
	if (r < 0)
		return r;
	slot = hash_index_find(&b->function_index, hash, function_eq, b, &f);
	if (slot->id) {
		*ret_id = slot->id;
		return 0;
	}
	if (b->n_functions >= PPROF_MAX_FUNCTIONS)
		return -E2BIG;
	r = GROW(b, functions, b->n_functions + 1);
	if (r < 0)
		return r;
	b->functions[b->n_functions++] = f;
	hash_index_insert(&b->function_index, slot, b->n_functions, hash);
	*ret_id = b->n_functions;
	return 0;
}

static bool location_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct pprof_builder *b = ctx;

	return memcmp(&b->locations[id - 1].key, key, sizeof(struct location_key)) == 0;
}

void pprof_builder_free(struct pprof_builder *b)
{
	struct string_block *blk, *next;

	if (!b)
		return;
	for (blk = b->blocks; blk; blk = next) {
		next = blk->next;
		free(blk);
	}
	free(b->strings);
	hash_index_free(&b->string_index);
	free(b->mappings);
	free(b->functions);
	hash_index_free(&b->function_index);
	free(b->locations);
	hash_index_free(&b->location_index);
	free(b->lines);
	free(b->samples);
	free(b->sample_locations);
	free(b->values);
	free(b->labels);
	free(b);
}

DEFINE_FREEP(struct pprof_builder, pprof_builder_free)

static int value_type_intern(struct pprof_builder *b, const struct pprof_value_type *vt,
			     struct value_type *ret)
{
	int r;

	r = string_intern(b, vt->type, &ret->type);
	if (r < 0)
		return r;
	return string_intern(b, vt->unit, &ret->unit);
}

int pprof_builder_new(const struct pprof_config *cfg, struct pprof_builder **ret)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	int r;

	if (!cfg || !ret || cfg->n_sample_types == 0)
		return -EINVAL;
	if (cfg->n_sample_types > PPROF_MAX_VALUES)
		return -E2BIG;
	for (size_t i = 0; i < cfg->n_sample_types; i++)
		if (!cfg->sample_types[i].type)
			return -EINVAL;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	hash_seed_init(&b->seed);

	/* string_table[0] must be "", and string_intern() maps "" there without storing it. */
	r = GROW(b, strings, 1);
	if (r < 0)
		return r;
	b->strings[b->n_strings++] = (char *)"";
	b->string_bytes = 1;

	b->n_sample_types = cfg->n_sample_types;
	b->default_type = cfg->default_sample_type;
	for (size_t i = 0; i < cfg->n_sample_types; i++) {
		r = value_type_intern(b, &cfg->sample_types[i], &b->sample_types[i]);
		if (r < 0)
			return r;
	}
	if (cfg->period_type.type) {
		r = value_type_intern(b, &cfg->period_type, &b->period_type);
		if (r < 0)
			return r;
		b->has_period_type = true;
	}
	r = string_intern(b, cfg->comment, &b->comment);
	if (r < 0)
		return r;
	b->period = cfg->period;
	b->time_nanos = cfg->time_nanos;
	b->duration_nanos = cfg->duration_nanos;

	*ret = TAKE_PTR(b);
	return 0;
}

int pprof_add_mapping(struct pprof_builder *b, const struct pprof_mapping *m, uint64_t *ret_id)
{
	struct mapping mp;
	int r;

	if (!b || !m || m->memory_limit < m->memory_start)
		return -EINVAL;
	if (b->n_mappings >= PPROF_MAX_MAPPINGS)
		return -E2BIG;
	r = GROW(b, mappings, b->n_mappings + 1);
	if (r < 0)
		return r;

	mp = (struct mapping){
		.memory_start = m->memory_start,
		.memory_limit = m->memory_limit,
		.file_offset = m->file_offset,
		.has_functions = m->has_functions,
		.has_filenames = m->has_filenames,
		.has_line_numbers = m->has_line_numbers,
		.has_inline_frames = m->has_inline_frames,
	};
	r = string_intern(b, m->filename, &mp.filename);
	if (r < 0)
		return r;
	r = string_intern(b, m->build_id, &mp.build_id);
	if (r < 0)
		return r;

	b->mappings[b->n_mappings++] = mp;
	if (ret_id)
		*ret_id = b->n_mappings;
	return 0;
}

int pprof_add_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address,
		       const struct pprof_line *lines, size_t n_lines, uint64_t *ret_id)
{
	struct location_key key = { .mapping_id = mapping_id, .address = address };
	struct hash_slot *slot;
	uint64_t hash;
	int r;

	if (!b || !lines || n_lines == 0 || mapping_id > b->n_mappings)
		return -EINVAL;
	if (n_lines > PPROF_MAX_LINES)
		return -E2BIG;
	for (size_t i = 0; i < n_lines; i++)
		if (!lines[i].function_name)
			return -EINVAL;

	hash = hash_bytes(&b->seed, &key, sizeof(key));
	r = hash_index_reserve(&b->location_index, MAX_INDEX_ENTRIES);
	if (r < 0)
		return r;
	slot = hash_index_find(&b->location_index, hash, location_eq, b, &key);
	if (slot->id) {
		if (ret_id)
			*ret_id = slot->id;
		return 0;
	}
	if (b->n_locations >= PPROF_MAX_LOCATIONS)
		return -E2BIG;
	r = GROW(b, locations, b->n_locations + 1);
	if (r < 0)
		return r;
	r = GROW(b, lines, b->n_lines + n_lines);
	if (r < 0)
		return r;

	/* Lines are written past n_lines and only become part of the builder on commit below. */
	for (size_t i = 0; i < n_lines; i++) {
		struct line *l = &b->lines[b->n_lines + i];

		r = function_intern(b, &lines[i], &l->function_id);
		if (r < 0)
			return r;
		l->line = lines[i].line;
	}

	b->locations[b->n_locations++] = (struct location){
		.key = key,
		.line_off = b->n_lines,
		.n_lines = n_lines,
	};
	b->n_lines += n_lines;
	hash_index_insert(&b->location_index, slot, b->n_locations, hash);
	if (ret_id)
		*ret_id = b->n_locations;
	return 0;
}

uint64_t pprof_find_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address)
{
	struct location_key key = { .mapping_id = mapping_id, .address = address };
	uint64_t hash;

	if (!b || b->location_index.cap == 0)
		return 0;
	hash = hash_bytes(&b->seed, &key, sizeof(key));
	return hash_index_find(&b->location_index, hash, location_eq, b, &key)->id;
}

int pprof_add_sample(struct pprof_builder *b, const uint64_t *location_ids, size_t n_locations,
		     const int64_t *values, size_t n_values, const struct pprof_label *labels,
		     size_t n_labels)
{
	int r;

	if (!b || (n_locations && !location_ids) || !values || n_values != b->n_sample_types ||
	    (n_labels && !labels))
		return -EINVAL;
	if (n_locations > PPROF_MAX_STACK || n_labels > PPROF_MAX_LABELS)
		return -E2BIG;
	for (size_t i = 0; i < n_locations; i++)
		if (location_ids[i] == 0 || location_ids[i] > b->n_locations)
			return -EINVAL;
	for (size_t i = 0; i < n_labels; i++)
		if (!labels[i].key)
			return -EINVAL;
	if (b->n_samples >= PPROF_MAX_SAMPLES)
		return -E2BIG;

	/* Reserve everything first, so that a failure leaves no half-added sample behind. */
	r = GROW(b, samples, b->n_samples + 1);
	if (r < 0)
		return r;
	r = GROW(b, sample_locations, b->n_sample_locations + n_locations);
	if (r < 0)
		return r;
	r = GROW(b, values, b->n_values + n_values);
	if (r < 0)
		return r;
	r = GROW(b, labels, b->n_labels + n_labels);
	if (r < 0)
		return r;

	for (size_t i = 0; i < n_labels; i++) {
		struct label *l = &b->labels[b->n_labels + i];

		*l = (struct label){};
		r = string_intern(b, labels[i].key, &l->key);
		if (r < 0)
			return r;
		if (labels[i].str) {
			r = string_intern(b, labels[i].str, &l->str);
		} else {
			l->num = labels[i].num;
			r = string_intern(b, labels[i].num_unit, &l->num_unit);
		}
		if (r < 0)
			return r;
	}

	if (n_locations)
		memcpy(b->sample_locations + b->n_sample_locations, location_ids,
		       n_locations * sizeof(*location_ids));
	memcpy(b->values + b->n_values, values, n_values * sizeof(*values));
	b->n_sample_locations += n_locations;
	b->n_values += n_values;
	b->n_labels += n_labels;
	b->samples[b->n_samples++] = (struct sample){
		.n_locations = n_locations,
		.n_labels = n_labels,
	};
	return 0;
}

size_t pprof_n_samples(const struct pprof_builder *b)
{
	return b ? b->n_samples : 0;
}

size_t pprof_n_locations(const struct pprof_builder *b)
{
	return b ? b->n_locations : 0;
}

size_t pprof_n_functions(const struct pprof_builder *b)
{
	return b ? b->n_functions : 0;
}

/*
 * The protobuf-c view of a builder. Strings, location ids and values are not copied: the
 * messages point into the builder's arrays, which protobuf-c only reads.
 */
struct pb_profile {
	Perftools__Profiles__Profile profile;
	Perftools__Profiles__ValueType value_types[PPROF_MAX_VALUES + 1];
	Perftools__Profiles__ValueType *value_type_ptrs[PPROF_MAX_VALUES];
	Perftools__Profiles__Mapping *mappings, **mapping_ptrs;
	Perftools__Profiles__Function *functions, **function_ptrs;
	Perftools__Profiles__Location *locations, **location_ptrs;
	Perftools__Profiles__Line *lines, **line_ptrs;
	Perftools__Profiles__Sample *samples, **sample_ptrs;
	Perftools__Profiles__Label *labels, **label_ptrs;
};

static void pb_profile_done(struct pb_profile *pb)
{
	free(pb->mappings);
	free(pb->mapping_ptrs);
	free(pb->functions);
	free(pb->function_ptrs);
	free(pb->locations);
	free(pb->location_ptrs);
	free(pb->lines);
	free(pb->line_ptrs);
	free(pb->samples);
	free(pb->sample_ptrs);
	free(pb->labels);
	free(pb->label_ptrs);
}

/* An array of n messages and one of n pointers to them; never NULL for n == 0. */
static int pb_alloc(size_t n, size_t size, void **ret_msgs, void ***ret_ptrs)
{
	*ret_msgs = calloc(MAX(n, (size_t)1), size);
	*ret_ptrs = calloc(MAX(n, (size_t)1), sizeof(void *));
	if (!*ret_msgs || !*ret_ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		(*ret_ptrs)[i] = (char *)*ret_msgs + i * size;
	return 0;
}

#define PB_ALLOC(pb, msgs, ptrs, n)                                                                \
	pb_alloc((n), sizeof(*(pb)->msgs), (void **)&(pb)->msgs, (void ***)&(pb)->ptrs)

static void pb_value_type(Perftools__Profiles__ValueType *m, const struct value_type *vt)
{
	perftools__profiles__value_type__init(m);
	m->type = vt->type;
	m->unit = vt->unit;
}

/* The profile's own fields: sample types, period, times, comment, string table. */
static void pb_profile_header(const struct pprof_builder *b, struct pb_profile *pb)
{
	Perftools__Profiles__Profile *p = &pb->profile;

	perftools__profiles__profile__init(p);
	for (size_t i = 0; i < b->n_sample_types; i++) {
		pb_value_type(&pb->value_types[i], &b->sample_types[i]);
		pb->value_type_ptrs[i] = &pb->value_types[i];
	}
	p->n_sample_type = b->n_sample_types;
	p->sample_type = pb->value_type_ptrs;
	/* pprof opens the last sample type by default anyway; this tells other readers the same. */
	p->default_sample_type =
	    b->sample_types[b->default_type && b->default_type <= b->n_sample_types
				? b->default_type - 1
				: b->n_sample_types - 1]
		.type;
	if (b->has_period_type) {
		pb_value_type(&pb->value_types[PPROF_MAX_VALUES], &b->period_type);
		p->period_type = &pb->value_types[PPROF_MAX_VALUES];
	}
	p->period = b->period;
	p->time_nanos = b->time_nanos;
	p->duration_nanos = b->duration_nanos;
	if (b->comment) {
		p->n_comment = 1;
		p->comment = (int64_t *)&b->comment;
	}
	p->n_string_table = b->n_strings;
	p->string_table = b->strings;
}

/* Mappings and functions, ids 1..n in the builder's order. */
static void pb_profile_mappings_functions(const struct pprof_builder *b, struct pb_profile *pb)
{
	Perftools__Profiles__Profile *p = &pb->profile;

	for (size_t i = 0; i < b->n_mappings; i++) {
		const struct mapping *m = &b->mappings[i];
		Perftools__Profiles__Mapping *pm = &pb->mappings[i];

		perftools__profiles__mapping__init(pm);
		pm->id = i + 1;
		pm->memory_start = m->memory_start;
		pm->memory_limit = m->memory_limit;
		pm->file_offset = m->file_offset;
		pm->filename = m->filename;
		pm->build_id = m->build_id;
		pm->has_functions = m->has_functions;
		pm->has_filenames = m->has_filenames;
		pm->has_line_numbers = m->has_line_numbers;
		pm->has_inline_frames = m->has_inline_frames;
	}
	p->n_mapping = b->n_mappings;
	p->mapping = pb->mapping_ptrs;

	for (size_t i = 0; i < b->n_functions; i++) {
		const struct function *f = &b->functions[i];
		Perftools__Profiles__Function *pf = &pb->functions[i];

		perftools__profiles__function__init(pf);
		pf->id = i + 1;
		pf->name = f->name;
		pf->system_name = f->system_name;
		pf->filename = f->filename;
		pf->start_line = f->start_line;
	}
	p->n_function = b->n_functions;
	p->function = pb->function_ptrs;
}

/* Lines, and locations pointing at their runs of lines. */
static void pb_profile_locations(const struct pprof_builder *b, struct pb_profile *pb)
{
	Perftools__Profiles__Profile *p = &pb->profile;

	for (size_t i = 0; i < b->n_lines; i++) {
		perftools__profiles__line__init(&pb->lines[i]);
		pb->lines[i].function_id = b->lines[i].function_id;
		pb->lines[i].line = b->lines[i].line;
	}
	for (size_t i = 0; i < b->n_locations; i++) {
		const struct location *l = &b->locations[i];
		Perftools__Profiles__Location *pl = &pb->locations[i];

		perftools__profiles__location__init(pl);
		pl->id = i + 1;
		pl->mapping_id = l->key.mapping_id;
		pl->address = l->key.address;
		pl->n_line = l->n_lines;
		pl->line = pb->line_ptrs + l->line_off;
	}
	p->n_location = b->n_locations;
	p->location = pb->location_ptrs;
}

/* Labels, and samples pointing at their runs of location ids, values and labels. */
static void pb_profile_samples(const struct pprof_builder *b, struct pb_profile *pb)
{
	Perftools__Profiles__Profile *p = &pb->profile;
	size_t loc_off = 0, value_off = 0, label_off = 0;

	for (size_t i = 0; i < b->n_labels; i++) {
		const struct label *l = &b->labels[i];
		Perftools__Profiles__Label *pl = &pb->labels[i];

		perftools__profiles__label__init(pl);
		pl->key = l->key;
		pl->str = l->str;
		pl->num = l->num;
		pl->num_unit = l->num_unit;
	}
	for (size_t i = 0; i < b->n_samples; i++) {
		const struct sample *s = &b->samples[i];
		Perftools__Profiles__Sample *ps = &pb->samples[i];

		perftools__profiles__sample__init(ps);
		ps->n_location_id = s->n_locations;
		ps->location_id = b->sample_locations + loc_off;
		ps->n_value = b->n_sample_types;
		ps->value = b->values + value_off;
		ps->n_label = s->n_labels;
		ps->label = pb->label_ptrs + label_off;
		loc_off += s->n_locations;
		value_off += b->n_sample_types;
		label_off += s->n_labels;
	}
	p->n_sample = b->n_samples;
	p->sample = pb->sample_ptrs;
}

static int pb_profile_build(const struct pprof_builder *b, struct pb_profile *pb)
{
	int r;

	if ((r = PB_ALLOC(pb, mappings, mapping_ptrs, b->n_mappings)) < 0 ||
	    (r = PB_ALLOC(pb, functions, function_ptrs, b->n_functions)) < 0 ||
	    (r = PB_ALLOC(pb, locations, location_ptrs, b->n_locations)) < 0 ||
	    (r = PB_ALLOC(pb, lines, line_ptrs, b->n_lines)) < 0 ||
	    (r = PB_ALLOC(pb, samples, sample_ptrs, b->n_samples)) < 0 ||
	    (r = PB_ALLOC(pb, labels, label_ptrs, b->n_labels)) < 0)
		return r;
	pb_profile_header(b, pb);
	pb_profile_mappings_functions(b, pb);
	pb_profile_locations(b, pb);
	pb_profile_samples(b, pb);
	return 0;
}

/* A ProtobufCBuffer that gzips whatever protobuf-c appends into a growing memory buffer. */
struct gz_sink {
	ProtobufCBuffer base;
	z_stream z;
	bool z_live;
	uint8_t *stage;
	size_t stage_len;
	uint8_t *out;
	size_t out_len, out_cap;
	int error; /* append() cannot fail, so the first error is kept here */
};

static void gz_sink_done(struct gz_sink *s)
{
	if (s->z_live)
		deflateEnd(&s->z);
	free(s->stage);
	free(s->out);
}

static int gz_deflate(struct gz_sink *s, const uint8_t *data, size_t len, int flush)
{
	for (;;) {
		size_t chunk = MIN(len, (size_t)UINT_MAX);
		bool last = chunk == len;

		s->z.next_in = (Bytef *)data;
		s->z.avail_in = chunk;
		do {
			size_t need;
			int zr, r;

			if (size_add(s->out_len, GZ_OUT_CHUNK, &need) < 0)
				return -ENOMEM;
			r = GROW_ARRAY(s->out, s->out_cap, need, GROW_NO_LIMIT);
			if (r < 0)
				return r;
			s->z.next_out = s->out + s->out_len;
			s->z.avail_out = GZ_OUT_CHUNK;
			zr = deflate(&s->z, last ? flush : Z_NO_FLUSH);
			if (zr == Z_STREAM_ERROR)
				return -EIO;
			s->out_len += GZ_OUT_CHUNK - s->z.avail_out;
			/* A full output chunk means deflate may have more to give. */
		} while (s->z.avail_out == 0);
		if (last)
			return 0;
		data += chunk;
		len -= chunk;
	}
}

static void gz_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	struct gz_sink *s = (struct gz_sink *)buffer;

	if (s->error < 0 || len == 0)
		return;
	if (len > GZ_STAGE_SIZE - s->stage_len) {
		if (s->stage_len) {
			s->error = gz_deflate(s, s->stage, s->stage_len, Z_NO_FLUSH);
			s->stage_len = 0;
			if (s->error < 0)
				return;
		}
		if (len >= GZ_STAGE_SIZE) {
			s->error = gz_deflate(s, data, len, Z_NO_FLUSH);
			return;
		}
	}
	memcpy(s->stage + s->stage_len, data, len);
	s->stage_len += len;
}

int pprof_serialize(struct pprof_builder *b, uint8_t **ret, size_t *ret_len)
{
	_cleanup_(pb_profile_done) struct pb_profile pb = {};
	_cleanup_(gz_sink_done) struct gz_sink s = { .base.append = gz_append };
	int r;

	if (!b || !ret || !ret_len)
		return -EINVAL;
	r = pb_profile_build(b, &pb);
	if (r < 0)
		return r;

	s.stage = malloc(GZ_STAGE_SIZE);
	if (!s.stage)
		return -ENOMEM;
	/*
	 * 15 + 16: a 32 KiB window with a gzip header and trailer, what pprof readers expect.
	 * Best speed as Go's runtime/pprof does: the daemon compresses on every interval and HTTP
	 * request, and the repetitive encoding compresses well even at level 1.
	 */
	r = deflateInit2(&s.z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (r != Z_OK)
		return r == Z_MEM_ERROR ? -ENOMEM : -EIO;
	s.z_live = true;

	perftools__profiles__profile__pack_to_buffer(&pb.profile, &s.base);
	if (s.error < 0)
		return s.error;
	r = gz_deflate(&s, s.stage, s.stage_len, Z_FINISH);
	if (r < 0)
		return r;

	*ret_len = s.out_len;
	*ret = TAKE_PTR(s.out);
	return 0;
}

/* "dir/.name.XXXXXX" next to path, so that rename() stays within one filesystem. */
static int temp_path_for(const char *path, char **ret, char **ret_dir)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dir_len = slash ? (int)(slash - path + 1) : 0;

	/* Truncated so that the temp name stays within NAME_MAX however long the target's is. */
	if (asprintf(ret, "%.*s.%.200s.XXXXXX", dir_len, path, base) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	*ret_dir = slash ? strndup(path, MAX(dir_len - 1, 1)) : strdup(".");
	if (!*ret_dir)
		return -ENOMEM;
	return 0;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		data += n;
		len -= n;
	}
	return 0;
}

static int temp_file_fill(int fd, const uint8_t *data, size_t len, mode_t mode)
{
	int r;

	/* The caller's mode whatever the umask: profiles name every process's functions. */
	if (fchmod(fd, mode) < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r < 0)
		return r;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int pprof_write_file(struct pprof_builder *b, const char *path)
{
	return pprof_write_file_mode(b, path, 0600);
}

int pprof_write_file_mode(struct pprof_builder *b, const char *path, mode_t mode)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	if (!b || !path || !*path)
		return -EINVAL;
	/* Serialize first: nothing touches the filesystem unless there is a profile to write. */
	r = pprof_serialize(b, &data, &len);
	if (r < 0)
		return r;
	return pprof_write_data_mode(path, data, len, mode);
}

int pprof_write_data_mode(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *tmp = NULL, *dir = NULL;
	_cleanup_close_ int fd = -1, dfd = -1;
	int r;

	if (!path || !*path || (!data && len))
		return -EINVAL;
	r = temp_path_for(path, &tmp, &dir);
	if (r < 0)
		return r;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = temp_file_fill(fd, data, len, mode);
	/* close() reports deferred write errors on some filesystems (NFS). */
	if (close(TAKE_FD(fd)) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}

	/*
	 * Make the rename itself durable. Best effort: the complete file is already at path, and
	 * failing now would break the promise that a failed write leaves nothing there.
	 */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}
