/* SPDX-License-Identifier: MIT */
/*
 * pprof builder: profiles are decoded back with protobuf-c and checked field by field, written
 * files are checked for atomicity, and the real pprof ($BUILD/pprof, built by `make test`) must
 * read what we write.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common/macro.h"
#include "output/output.h"
#include "output/pprof.h"
#include "output/profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;

DEFINE_FREEP(struct pprof_builder, pprof_builder_free)

static void profile_freep(Profile **p)
{
	if (*p)
		perftools__profiles__profile__free_unpacked(*p, NULL);
}

#define BUILD_ID_APP "4f1c2a9e0b7d36e5a1c8f02b9d4e6a7c3b5d1e9f"
#define BUILD_ID_LIBC "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
#define TIME_NANOS INT64_C(1700000000123456789)
#define DURATION_NANOS INT64_C(5000000000)
#define PERIOD INT64_C(10000000)

static const struct pprof_config test_config = {
	.n_sample_types = 2,
	.sample_types = { { "samples", "count" }, { "cpu", "nanoseconds" } },
	.period_type = { "cpu", "nanoseconds" },
	.period = PERIOD,
	.time_nanos = TIME_NANOS,
	.duration_nanos = DURATION_NANOS,
	.comment = "profd unit test",
};

static struct pprof_builder *new_builder(void)
{
	struct pprof_builder *b = NULL;

	cr_assert_eq(pprof_builder_new(&test_config, &b), 0);
	cr_assert_not_null(b);
	return b;
}

/* Ids handed out while building the standard test profile. */
struct fixture {
	uint64_t map_app, map_libc;
	uint64_t loc_inline, loc_main, loc_memcpy, loc_kernel;
};

/*
 * Two mappings; an address where leaf_helper is inlined into main; another address in main
 * (same function, must dedupe); a libc address with a distinct system name; a kernel address
 * with no mapping. Three samples with string and numeric labels.
 */
static struct pprof_builder *build_fixture(struct fixture *fx)
{
	struct pprof_builder *b = new_builder();
	const struct pprof_mapping app = {
		.memory_start = 0x400000,
		.memory_limit = 0x500000,
		.file_offset = 0,
		.filename = "/usr/bin/app",
		.build_id = BUILD_ID_APP,
		.has_functions = true,
		.has_filenames = true,
		.has_line_numbers = true,
		.has_inline_frames = true,
	};
	const struct pprof_mapping libc = {
		.memory_start = 0x7f0000000000,
		.memory_limit = 0x7f0000200000,
		.file_offset = 0x28000,
		.filename = "/usr/lib/x86_64-linux-gnu/libc.so.6",
		.build_id = BUILD_ID_LIBC,
		.has_functions = true,
	};
	const struct pprof_line inlined[] = {
		{ .function_name = "leaf_helper", .filename = "app.c", .start_line = 8,
		  .line = 10 },
		{ .function_name = "main", .filename = "app.c", .start_line = 40, .line = 42 },
	};
	const struct pprof_line in_main[] = {
		{ .function_name = "main", .filename = "app.c", .start_line = 40, .line = 45 },
	};
	const struct pprof_line in_memcpy[] = {
		{ .function_name = "memcpy", .system_name = "__memcpy_avx_unaligned_erms" },
	};
	const struct pprof_line in_kernel[] = {
		{ .function_name = "[kernel] do_syscall_64" },
	};
	uint64_t again = 0;

	cr_assert_eq(pprof_add_mapping(b, &app, &fx->map_app), 0);
	cr_assert_eq(pprof_add_mapping(b, &libc, &fx->map_libc), 0);
	cr_assert_eq(fx->map_app, 1);
	cr_assert_eq(fx->map_libc, 2);

	cr_assert_eq(pprof_add_location(b, fx->map_app, 0x401000, inlined, 2, &fx->loc_inline), 0);
	cr_assert_eq(pprof_add_location(b, fx->map_app, 0x401100, in_main, 1, &fx->loc_main), 0);
	cr_assert_eq(pprof_add_location(b, fx->map_libc, 0x7f0000001234, in_memcpy, 1,
					&fx->loc_memcpy),
		     0);
	cr_assert_eq(pprof_add_location(b, 0, 0xffffffff81000000, in_kernel, 1, &fx->loc_kernel),
		     0);
	/* Same mapping and address: the existing location, whatever the lines say. */
	cr_assert_eq(pprof_add_location(b, fx->map_app, 0x401000, in_main, 1, &again), 0);
	cr_assert_eq(again, fx->loc_inline);

	{
		const uint64_t stack[] = { fx->loc_inline };
		const int64_t values[] = { 1, PERIOD };
		const struct pprof_label labels[] = {
			{ .key = "pid", .num = 4242, .num_unit = "pid" },
			{ .key = "comm", .str = "app" },
			{ .key = "bytes", .num = 4096, .num_unit = "bytes" },
		};

		cr_assert_eq(pprof_add_sample(b, stack, 1, values, 2, labels, 3), 0);
	}
	{
		const uint64_t stack[] = { fx->loc_memcpy, fx->loc_main };
		const int64_t values[] = { 2, 2 * PERIOD };
		const struct pprof_label labels[] = { { .key = "comm", .str = "app" } };

		cr_assert_eq(pprof_add_sample(b, stack, 2, values, 2, labels, 1), 0);
	}
	{
		const uint64_t stack[] = { fx->loc_kernel, fx->loc_memcpy, fx->loc_main };
		const int64_t values[] = { 3, 3 * PERIOD };

		cr_assert_eq(pprof_add_sample(b, stack, 3, values, 2, NULL, 0), 0);
	}
	return b;
}

/* gunzip + unpack, checking the gzip framing on the way. */
static Profile *decode(const uint8_t *gz, size_t len)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t raw_len = 0, raw_cap = 0;
	z_stream z = {};
	Profile *p;
	int zr;

	cr_assert_geq(len, 18, "too short for gzip: %zu bytes", len);
	cr_assert(gz[0] == 0x1f && gz[1] == 0x8b, "no gzip magic");
	cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)gz;
	z.avail_in = len;
	do {
		if (raw_len == raw_cap) {
			raw_cap = raw_cap ? raw_cap * 2 : 4096;
			raw = realloc(raw, raw_cap);
			cr_assert_not_null(raw);
		}
		z.next_out = raw + raw_len;
		z.avail_out = raw_cap - raw_len;
		zr = inflate(&z, Z_NO_FLUSH);
		raw_len = raw_cap - z.avail_out;
		cr_assert(zr == Z_OK || zr == Z_STREAM_END, "inflate: %d", zr);
	} while (zr != Z_STREAM_END);
	cr_assert_eq(z.avail_in, 0, "trailing bytes after the gzip stream");
	inflateEnd(&z);

	p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	cr_assert_not_null(p, "protobuf-c could not unpack the profile");
	return p;
}

static Profile *serialize_decode(struct pprof_builder *b)
{
	_cleanup_free_ uint8_t *gz = NULL;
	size_t len = 0;

	cr_assert_eq(pprof_serialize(b, &gz, &len), 0);
	cr_assert_not_null(gz);
	return decode(gz, len);
}

static const char *str(const Profile *p, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < p->n_string_table, "string index %" PRId64 " out of range",
		  i);
	return p->string_table[i];
}

static const Perftools__Profiles__Location *location(const Profile *p, uint64_t id)
{
	cr_assert(id >= 1 && id <= p->n_location, "location id %" PRIu64 " out of range", id);
	cr_assert_eq(p->location[id - 1]->id, id);
	return p->location[id - 1];
}

static const Perftools__Profiles__Function *function(const Profile *p, uint64_t id)
{
	cr_assert(id >= 1 && id <= p->n_function, "function id %" PRIu64 " out of range", id);
	cr_assert_eq(p->function[id - 1]->id, id);
	return p->function[id - 1];
}

static const char *function_name_at(const Profile *p, uint64_t loc_id, size_t line)
{
	const Perftools__Profiles__Location *l = location(p, loc_id);

	cr_assert_lt(line, l->n_line);
	return str(p, function(p, l->line[line]->function_id)->name);
}

static size_t functions_named(const Profile *p, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_function; i++)
		n += strcmp(str(p, p->function[i]->name), name) == 0;
	return n;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rules every reader relies on: string 0 is "", ids are 1-based, dense and resolvable. */
static void assert_consistent(const Profile *p)
{
	_cleanup_free_ char **sorted = NULL;

	cr_assert_geq(p->n_string_table, 1);
	cr_assert_str_eq(p->string_table[0], "");
	sorted = malloc(p->n_string_table * sizeof(*sorted));
	cr_assert_not_null(sorted);
	memcpy(sorted, p->string_table, p->n_string_table * sizeof(*sorted));
	qsort(sorted, p->n_string_table, sizeof(*sorted), cmp_strp);
	for (size_t i = 1; i < p->n_string_table; i++)
		cr_assert_str_neq(sorted[i - 1], sorted[i], "string \"%s\" is interned twice",
				  sorted[i]);
	for (size_t i = 0; i < p->n_mapping; i++) {
		cr_assert_eq(p->mapping[i]->id, i + 1);
		str(p, p->mapping[i]->filename);
		str(p, p->mapping[i]->build_id);
	}
	for (size_t i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		cr_assert_eq(f->id, i + 1);
		str(p, f->name);
		str(p, f->system_name);
		str(p, f->filename);
	}
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		cr_assert_eq(l->id, i + 1);
		cr_assert_leq(l->mapping_id, p->n_mapping, "location %zu: no mapping %" PRIu64,
			      i + 1, l->mapping_id);
		cr_assert_geq(l->n_line, 1);
		for (size_t j = 0; j < l->n_line; j++)
			function(p, l->line[j]->function_id);
	}
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];

		cr_assert_eq(s->n_value, p->n_sample_type);
		for (size_t j = 0; j < s->n_location_id; j++)
			location(p, s->location_id[j]);
		for (size_t j = 0; j < s->n_label; j++) {
			str(p, s->label[j]->key);
			str(p, s->label[j]->str);
			str(p, s->label[j]->num_unit);
		}
	}
	str(p, p->default_sample_type);
	for (size_t i = 0; i < p->n_comment; i++)
		str(p, p->comment[i]);
}

Test(pprof, header_fields)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	struct fixture fx;

	b = build_fixture(&fx);
	p = serialize_decode(b);
	assert_consistent(p);

	cr_assert_eq(p->n_sample_type, 2);
	cr_assert_str_eq(str(p, p->sample_type[0]->type), "samples");
	cr_assert_str_eq(str(p, p->sample_type[0]->unit), "count");
	cr_assert_str_eq(str(p, p->sample_type[1]->type), "cpu");
	cr_assert_str_eq(str(p, p->sample_type[1]->unit), "nanoseconds");
	cr_assert_str_eq(str(p, p->default_sample_type), "cpu", "default is the last sample type");
	cr_assert_not_null(p->period_type);
	cr_assert_str_eq(str(p, p->period_type->type), "cpu");
	cr_assert_str_eq(str(p, p->period_type->unit), "nanoseconds");
	cr_assert_eq(p->period, PERIOD);
	cr_assert_eq(p->time_nanos, TIME_NANOS);
	cr_assert_eq(p->duration_nanos, DURATION_NANOS);
	cr_assert_eq(p->n_comment, 1);
	cr_assert_str_eq(str(p, p->comment[0]), "profd unit test");
	cr_assert_eq(p->drop_frames, 0);
	cr_assert_eq(p->keep_frames, 0);
}

Test(pprof, mappings)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	const Perftools__Profiles__Mapping *m;
	struct fixture fx;

	b = build_fixture(&fx);
	p = serialize_decode(b);
	cr_assert_eq(p->n_mapping, 2);

	m = p->mapping[fx.map_app - 1];
	cr_assert_eq(m->id, fx.map_app);
	cr_assert_eq(m->memory_start, 0x400000);
	cr_assert_eq(m->memory_limit, 0x500000);
	cr_assert_eq(m->file_offset, 0);
	cr_assert_str_eq(str(p, m->filename), "/usr/bin/app");
	cr_assert_str_eq(str(p, m->build_id), BUILD_ID_APP);
	cr_assert(m->has_functions && m->has_filenames && m->has_line_numbers &&
		  m->has_inline_frames);

	m = p->mapping[fx.map_libc - 1];
	cr_assert_eq(m->id, fx.map_libc);
	cr_assert_eq(m->memory_start, 0x7f0000000000);
	cr_assert_eq(m->memory_limit, 0x7f0000200000);
	cr_assert_eq(m->file_offset, 0x28000);
	cr_assert_str_eq(str(p, m->filename), "/usr/lib/x86_64-linux-gnu/libc.so.6");
	cr_assert_str_eq(str(p, m->build_id), BUILD_ID_LIBC);
	cr_assert(m->has_functions);
	cr_assert(!m->has_filenames && !m->has_line_numbers && !m->has_inline_frames);
}

Test(pprof, locations_and_inline_lines)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	const Perftools__Profiles__Location *l;
	const Perftools__Profiles__Function *f;
	struct fixture fx;

	b = build_fixture(&fx);
	cr_assert_eq(pprof_n_locations(b), 4);
	p = serialize_decode(b);
	assert_consistent(p);
	cr_assert_eq(p->n_location, 4);

	/* Inlined callee first, the function it was inlined into last. */
	l = location(p, fx.loc_inline);
	cr_assert_eq(l->mapping_id, fx.map_app);
	cr_assert_eq(l->address, 0x401000);
	cr_assert_eq(l->n_line, 2, "lines of a re-added location must not be appended");
	cr_assert_str_eq(function_name_at(p, fx.loc_inline, 0), "leaf_helper");
	cr_assert_eq(l->line[0]->line, 10);
	cr_assert_str_eq(function_name_at(p, fx.loc_inline, 1), "main");
	cr_assert_eq(l->line[1]->line, 42);
	f = function(p, l->line[0]->function_id);
	cr_assert_str_eq(str(p, f->filename), "app.c");
	cr_assert_eq(f->start_line, 8);
	cr_assert_str_eq(str(p, f->system_name), "leaf_helper", "NULL system_name is the name");

	/* Another address in main: a new location sharing main's Function. */
	l = location(p, fx.loc_main);
	cr_assert_eq(l->address, 0x401100);
	cr_assert_eq(l->n_line, 1);
	cr_assert_eq(l->line[0]->line, 45);
	cr_assert_eq(l->line[0]->function_id, location(p, fx.loc_inline)->line[1]->function_id);

	l = location(p, fx.loc_memcpy);
	cr_assert_eq(l->mapping_id, fx.map_libc);
	f = function(p, l->line[0]->function_id);
	cr_assert_str_eq(str(p, f->name), "memcpy");
	cr_assert_str_eq(str(p, f->system_name), "__memcpy_avx_unaligned_erms");
	cr_assert_str_eq(str(p, f->filename), "");
	cr_assert_eq(l->line[0]->line, 0);

	l = location(p, fx.loc_kernel);
	cr_assert_eq(l->mapping_id, 0);
	cr_assert_eq(l->address, 0xffffffff81000000);
	cr_assert_str_eq(function_name_at(p, fx.loc_kernel, 0), "[kernel] do_syscall_64");
}

Test(pprof, functions_dedupe)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	struct fixture fx;

	b = build_fixture(&fx);
	cr_assert_eq(pprof_n_functions(b), 4);

	/* The same key with system_name spelled out equals the NULL default... */
	{
		const struct pprof_line l = { .function_name = "main", .system_name = "main",
					      .filename = "app.c", .start_line = 40, .line = 50 };
		cr_assert_eq(pprof_add_location(b, fx.map_app, 0x401200, &l, 1, NULL), 0);
		cr_assert_eq(pprof_n_functions(b), 4);
	}
	/* ...while any differing field makes a new function. */
	{
		const struct pprof_line l[] = {
			{ .function_name = "main", .filename = "other.c", .start_line = 40 },
			{ .function_name = "main", .filename = "app.c", .start_line = 41 },
			{ .function_name = "main", .system_name = "_Z4mainv", .filename = "app.c",
			  .start_line = 40 },
		};
		cr_assert_eq(pprof_add_location(b, fx.map_app, 0x401300, l, 3, NULL), 0);
		cr_assert_eq(pprof_n_functions(b), 7);
	}

	p = serialize_decode(b);
	assert_consistent(p);
	cr_assert_eq(p->n_function, 7);
	cr_assert_eq(functions_named(p, "main"), 4);
	cr_assert_eq(functions_named(p, "leaf_helper"), 1);
	cr_assert_eq(functions_named(p, "memcpy"), 1);
}

Test(pprof, locations_dedupe_and_find)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	const struct pprof_line l = { .function_name = "f" };
	struct fixture fx;
	uint64_t id = 0, id2 = 0;

	b = build_fixture(&fx);
	cr_assert_eq(pprof_find_location(b, fx.map_app, 0x401000), fx.loc_inline);
	cr_assert_eq(pprof_find_location(b, fx.map_libc, 0x7f0000001234), fx.loc_memcpy);
	cr_assert_eq(pprof_find_location(b, 0, 0xffffffff81000000), fx.loc_kernel);
	cr_assert_eq(pprof_find_location(b, fx.map_app, 0x401001), 0);
	cr_assert_eq(pprof_find_location(b, fx.map_libc, 0x401000), 0,
		     "the mapping is part of the key");

	/* Same address under another mapping is another location. */
	cr_assert_eq(pprof_add_location(b, fx.map_libc, 0x401000, &l, 1, &id), 0);
	cr_assert_eq(id, 5);
	cr_assert_eq(pprof_add_location(b, fx.map_libc, 0x401000, &l, 1, &id2), 0);
	cr_assert_eq(id2, id);
	cr_assert_eq(pprof_find_location(b, fx.map_libc, 0x401000), id);
	cr_assert_eq(pprof_n_locations(b), 5);

	/* Enough entries to make every index grow several times. */
	for (uint64_t a = 0; a < 5000; a++) {
		char name[32];
		struct pprof_line ln = { .function_name = name, .line = (int64_t)a };

		snprintf(name, sizeof(name), "fn%" PRIu64, a % 1000);
		cr_assert_eq(pprof_add_location(b, fx.map_app, 0x410000 + a, &ln, 1, &id), 0);
		cr_assert_eq(id, 6 + a);
	}
	for (uint64_t a = 0; a < 5000; a++)
		cr_assert_eq(pprof_find_location(b, fx.map_app, 0x410000 + a), 6 + a);
	cr_assert_eq(pprof_n_locations(b), 5005);
	cr_assert_eq(pprof_n_functions(b), 5 + 1000);
}

Test(pprof, samples_and_labels)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	const Perftools__Profiles__Sample *s;
	struct fixture fx;

	b = build_fixture(&fx);
	cr_assert_eq(pprof_n_samples(b), 3);
	p = serialize_decode(b);
	assert_consistent(p);
	cr_assert_eq(p->n_sample, 3);

	s = p->sample[0];
	cr_assert_eq(s->n_location_id, 1);
	cr_assert_eq(s->location_id[0], fx.loc_inline);
	cr_assert_eq(s->n_value, 2);
	cr_assert_eq(s->value[0], 1);
	cr_assert_eq(s->value[1], PERIOD);
	cr_assert_eq(s->n_label, 3);
	cr_assert_str_eq(str(p, s->label[0]->key), "pid");
	cr_assert_eq(s->label[0]->str, 0, "numeric label has no string");
	cr_assert_eq(s->label[0]->num, 4242);
	cr_assert_str_eq(str(p, s->label[0]->num_unit), "pid");
	cr_assert_str_eq(str(p, s->label[1]->key), "comm");
	cr_assert_str_eq(str(p, s->label[1]->str), "app");
	cr_assert_eq(s->label[1]->num, 0);
	cr_assert_eq(s->label[1]->num_unit, 0);
	cr_assert_str_eq(str(p, s->label[2]->key), "bytes");
	cr_assert_eq(s->label[2]->num, 4096);
	cr_assert_str_eq(str(p, s->label[2]->num_unit), "bytes");

	/* Leaf first, as given. */
	s = p->sample[1];
	cr_assert_eq(s->n_location_id, 2);
	cr_assert_eq(s->location_id[0], fx.loc_memcpy);
	cr_assert_eq(s->location_id[1], fx.loc_main);
	cr_assert_eq(s->value[0], 2);
	cr_assert_eq(s->value[1], 2 * PERIOD);
	cr_assert_eq(s->n_label, 1);
	cr_assert_eq(s->label[0]->key, p->sample[0]->label[1]->key, "keys are interned once");
	cr_assert_eq(s->label[0]->str, p->sample[0]->label[1]->str);

	s = p->sample[2];
	cr_assert_eq(s->n_location_id, 3);
	cr_assert_eq(s->location_id[0], fx.loc_kernel);
	cr_assert_eq(s->location_id[2], fx.loc_main);
	cr_assert_eq(s->value[0], 3);
	cr_assert_eq(s->value[1], 3 * PERIOD);
	cr_assert_eq(s->n_label, 0);
}

Test(pprof, empty_profile_and_minimal_config)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	const struct pprof_config cfg = { .n_sample_types = 1, .sample_types = { { "samples" } } };

	cr_assert_eq(pprof_builder_new(&cfg, &b), 0);
	p = serialize_decode(b);
	assert_consistent(p);
	cr_assert_eq(p->n_string_table, 2, "only \"\" and \"samples\"");
	cr_assert_eq(p->n_sample_type, 1);
	cr_assert_str_eq(str(p, p->sample_type[0]->type), "samples");
	cr_assert_str_eq(str(p, p->sample_type[0]->unit), "");
	cr_assert_null(p->period_type, "no period type was configured");
	cr_assert_eq(p->n_comment, 0);
	cr_assert_eq(p->n_sample + p->n_location + p->n_function + p->n_mapping, 0);

	/* A sample with an empty stack is legal. */
	{
		const int64_t v = 7;

		cr_assert_eq(pprof_add_sample(b, NULL, 0, &v, 1, NULL, 0), 0);
	}
	profile_freep(&p);
	p = serialize_decode(b);
	cr_assert_eq(p->n_sample, 1);
	cr_assert_eq(p->sample[0]->n_location_id, 0);
	cr_assert_eq(p->sample[0]->value[0], 7);
}

Test(pprof, large_profile)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	_cleanup_free_ char *huge = NULL;
	const size_t n_locs = 20000, n_samples = 50000, huge_len = 300000;
	uint64_t stack[8];

	/* Well past the 64 KiB staging and output chunks, plus one string bigger than both. */
	b = new_builder();
	huge = malloc(huge_len + 1);
	cr_assert_not_null(huge);
	for (size_t i = 0; i < huge_len; i++)
		huge[i] = 'a' + i % 26;
	huge[huge_len] = '\0';
	for (size_t i = 0; i < n_locs; i++) {
		char name[64], file[32];
		const struct pprof_line l[] = {
			{ .function_name = name, .filename = file, .line = (int64_t)i },
			{ .function_name = i == 7 ? huge : "outer", .line = 1 },
		};
		uint64_t id;

		snprintf(name, sizeof(name), "namespace::function_number_%zu", i);
		snprintf(file, sizeof(file), "src/file%zu.c", i % 100);
		cr_assert_eq(pprof_add_location(b, 0, 0x1000 + 16 * i, l, 2, &id), 0);
		cr_assert_eq(id, i + 1);
	}
	for (size_t i = 0; i < n_samples; i++) {
		const int64_t values[] = { 1, (int64_t)i };
		char tid[16];
		const struct pprof_label label = { .key = "thread", .str = tid };

		snprintf(tid, sizeof(tid), "%zu", i % 300);
		for (size_t j = 0; j < ARRAY_SIZE(stack); j++)
			stack[j] = 1 + (i * 7919 + j * 104729) % n_locs;
		cr_assert_eq(pprof_add_sample(b, stack, ARRAY_SIZE(stack), values, 2, &label, 1),
			     0);
	}

	p = serialize_decode(b);
	assert_consistent(p);
	cr_assert_eq(p->n_location, n_locs);
	cr_assert_eq(p->n_function, n_locs + 2, "every inner function, \"outer\" and the huge one");
	cr_assert_eq(p->n_sample, n_samples);
	cr_assert_str_eq(function_name_at(p, 8, 1), huge);
	cr_assert_str_eq(function_name_at(p, 12345, 0), "namespace::function_number_12344");
	for (size_t i = 0; i < n_samples; i += 997) {
		cr_assert_eq(p->sample[i]->value[1], (int64_t)i);
		cr_assert_eq(p->sample[i]->location_id[3], 1 + (i * 7919 + 3 * 104729) % n_locs);
	}
}

Test(pprof, serialize_is_deterministic)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b1 = NULL, *b2 = NULL;
	_cleanup_free_ uint8_t *d1 = NULL, *d2 = NULL;
	size_t l1 = 0, l2 = 0;
	struct fixture fx;

	b1 = build_fixture(&fx);
	b2 = build_fixture(&fx);
	cr_assert_eq(pprof_serialize(b1, &d1, &l1), 0);
	cr_assert_eq(pprof_serialize(b2, &d2, &l2), 0);
	cr_assert_eq(l1, l2);
	cr_assert(memcmp(d1, d2, l1) == 0, "same input, different bytes (hash order leaked?)");
}

Test(pprof, invalid_arguments)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	const struct pprof_line good = { .function_name = "f" };
	const struct pprof_line nameless = { .filename = "x.c" };
	const struct pprof_mapping backwards = { .memory_start = 0x2000, .memory_limit = 0x1000 };
	const int64_t three[] = { 1, 2, 3 };
	const struct pprof_label keyless = { .str = "v" };
	struct pprof_config cfg = test_config;
	struct pprof_builder *nb = NULL;
	struct fixture fx;
	uint64_t id;

	cfg.n_sample_types = 0;
	cr_assert_eq(pprof_builder_new(&cfg, &nb), -EINVAL);
	cfg = test_config;
	cfg.sample_types[1].type = NULL;
	cr_assert_eq(pprof_builder_new(&cfg, &nb), -EINVAL);
	cr_assert_eq(pprof_builder_new(NULL, &nb), -EINVAL);
	cr_assert_null(nb);
	pprof_builder_free(NULL);

	b = build_fixture(&fx);
	cr_assert_eq(pprof_add_mapping(b, &backwards, &id), -EINVAL);
	cr_assert_eq(pprof_add_location(b, 3, 0x1000, &good, 1, &id), -EINVAL, "no mapping 3");
	cr_assert_eq(pprof_add_location(b, 1, 0x1000, &good, 0, &id), -EINVAL, "no lines");
	cr_assert_eq(pprof_add_location(b, 1, 0x1000, NULL, 1, &id), -EINVAL);
	cr_assert_eq(pprof_add_location(b, 1, 0x1000, &nameless, 1, &id), -EINVAL);
	cr_assert_eq(pprof_n_locations(b), 4);
	cr_assert_eq(pprof_n_functions(b), 4);

	/* n_values must match the sample types: fewer, more, none. */
	{
		const uint64_t stack[] = { fx.loc_main };
		const uint64_t bad_stack[] = { fx.loc_main, 99 };
		const uint64_t zero_stack[] = { 0 };

		cr_assert_eq(pprof_add_sample(b, stack, 1, three, 1, NULL, 0), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, stack, 1, three, 3, NULL, 0), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, stack, 1, NULL, 0, NULL, 0), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, bad_stack, 2, three, 2, NULL, 0), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, zero_stack, 1, three, 2, NULL, 0), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, stack, 1, three, 2, &keyless, 1), -EINVAL);
		cr_assert_eq(pprof_add_sample(b, stack, 1, three, 2, NULL, 1), -EINVAL);
	}
	cr_assert_eq(pprof_n_samples(b), 3, "failed adds must add nothing");

	cr_assert_eq(pprof_n_samples(NULL), 0);
	cr_assert_eq(pprof_find_location(NULL, 1, 2), 0);
	cr_assert_eq(pprof_write_file(b, NULL), -EINVAL);
	cr_assert_eq(pprof_write_file(b, ""), -EINVAL);
}

Test(pprof, limits)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_free_ struct pprof_line *lines = NULL;
	_cleanup_free_ uint64_t *stack = NULL;
	struct pprof_label labels[PPROF_MAX_LABELS + 1];
	struct pprof_config cfg = test_config;
	struct pprof_builder *nb = NULL;
	const int64_t values[] = { 1, 1 };
	uint64_t id = 0;

	cfg.n_sample_types = PPROF_MAX_VALUES + 1;
	cr_assert_eq(pprof_builder_new(&cfg, &nb), -E2BIG);
	cr_assert_null(nb);
	cfg.n_sample_types = PPROF_MAX_VALUES;
	for (size_t i = 0; i < PPROF_MAX_VALUES; i++)
		cfg.sample_types[i] = (struct pprof_value_type){ "t", "u" };
	cr_assert_eq(pprof_builder_new(&cfg, &nb), 0);
	pprof_builder_free(nb);

	b = new_builder();
	lines = calloc(PPROF_MAX_LINES + 1, sizeof(*lines));
	cr_assert_not_null(lines);
	for (size_t i = 0; i <= PPROF_MAX_LINES; i++)
		lines[i] = (struct pprof_line){ .function_name = "deep", .line = (int64_t)i };
	cr_assert_eq(pprof_add_location(b, 0, 0x1000, lines, PPROF_MAX_LINES + 1, &id), -E2BIG);
	cr_assert_eq(pprof_n_locations(b), 0);
	cr_assert_eq(pprof_add_location(b, 0, 0x1000, lines, PPROF_MAX_LINES, &id), 0);
	cr_assert_eq(id, 1);

	stack = calloc(PPROF_MAX_STACK + 1, sizeof(*stack));
	cr_assert_not_null(stack);
	for (size_t i = 0; i <= PPROF_MAX_STACK; i++)
		stack[i] = id;
	cr_assert_eq(pprof_add_sample(b, stack, PPROF_MAX_STACK + 1, values, 2, NULL, 0), -E2BIG);
	cr_assert_eq(pprof_add_sample(b, stack, PPROF_MAX_STACK, values, 2, NULL, 0), 0);

	for (size_t i = 0; i <= PPROF_MAX_LABELS; i++)
		labels[i] = (struct pprof_label){ .key = "k", .num = (int64_t)i };
	cr_assert_eq(pprof_add_sample(b, &id, 1, values, 2, labels, PPROF_MAX_LABELS + 1), -E2BIG);
	cr_assert_eq(pprof_add_sample(b, &id, 1, values, 2, labels, PPROF_MAX_LABELS), 0);
	cr_assert_eq(pprof_n_samples(b), 2);
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *make_temp_dir(void)
{
	char *d = strdup("/tmp/test-pprof.XXXXXX");

	cr_assert_not_null(d);
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static void remove_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void remove_treep(char **dir)
{
	if (*dir) {
		remove_tree(*dir);
		free(*dir);
	}
}

/* Entries of dir other than . and .. */
static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d, "opendir %s: %m", dir);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static uint8_t *read_file(const char *path, size_t *ret_len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	uint8_t *data;
	long len;

	cr_assert_not_null(f, "open %s: %m", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	cr_assert_geq(len, 0);
	rewind(f);
	data = malloc(len + 1);
	cr_assert_not_null(data);
	cr_assert_eq(fread(data, 1, len, f), (size_t)len);
	*ret_len = len;
	return data;
}

static void write_text(const char *path, const char *text)
{
	_cleanup_fclose_ FILE *f = fopen(path, "we");

	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, true);
}

static void assert_file_text(const char *path, const char *text)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;

	data = read_file(path, &len);
	cr_assert_eq(len, strlen(text));
	cr_assert(memcmp(data, text, len) == 0, "%s was modified", path);
}

/* Run pprof_write_file() in a child (whose limits and credentials may be changed by `prepare`). */
static int write_in_child(struct pprof_builder *b, const char *path, void (*prepare)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int r;

		if (prepare)
			prepare();
		r = pprof_write_file(b, path);
		_exit(r < 0 && -r < 256 ? -r : r == 0 ? 0 : 255);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died: status %#x", status);
	return -WEXITSTATUS(status);
}

Test(pprof, write_file_round_trip)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	_cleanup_free_ uint8_t *mem = NULL, *file = NULL;
	_cleanup_free_ char *path = NULL;
	size_t mem_len, file_len;
	struct fixture fx;
	struct stat st;

	b = build_fixture(&fx);
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/profile.pb.gz", dir), 0);

	/* The mode is the one asked for whatever the umask: 0600 by default, like perf.data. */
	umask(077);
	cr_assert_eq(pprof_write_file_mode(b, path, 0640), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	umask(0);
	cr_assert_eq(pprof_write_file(b, path), 0);
	umask(022);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(count_entries(dir), 1, "temp file left behind");

	file = read_file(path, &file_len);
	cr_assert_eq(pprof_serialize(b, &mem, &mem_len), 0);
	cr_assert_eq(file_len, mem_len);
	cr_assert(memcmp(file, mem, mem_len) == 0);
	p = decode(file, file_len);
	assert_consistent(p);
	cr_assert_eq(p->n_sample, 3);

	/* Overwriting an existing file replaces it. */
	write_text(path, "old");
	cr_assert_eq(pprof_write_file(b, path), 0);
	free(file);
	file = read_file(path, &file_len);
	cr_assert_eq(file_len, mem_len);
	cr_assert_eq(count_entries(dir), 1);

	/* A relative path writes into the current directory. */
	{
		_cleanup_free_ char *cwd = get_current_dir_name();

		cr_assert_not_null(cwd);
		cr_assert_eq(chdir(dir), 0);
		cr_assert_eq(pprof_write_file(b, "relative.pb.gz"), 0);
		cr_assert_eq(chdir(cwd), 0);
		cr_assert_eq(count_entries(dir), 2);
	}
}

Test(pprof, write_file_missing_directory)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_free_ char *path = NULL;
	struct fixture fx;

	b = build_fixture(&fx);
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/missing/profile.pb.gz", dir), 0);
	cr_assert_eq(pprof_write_file(b, path), -ENOENT);
	cr_assert_eq(count_entries(dir), 0);
}

/* Root ignores directory permissions, so a root test process drops to nobody first. */
static void drop_privileges(void)
{
	if (geteuid() != 0)
		return;
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		_exit(254);
}

Test(pprof, write_file_read_only_directory)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_free_ char *path = NULL;
	struct fixture fx;
	int r;

	b = build_fixture(&fx);
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/profile.pb.gz", dir), 0);
	cr_assert_eq(chmod(dir, 0555), 0);
	r = write_in_child(b, path, drop_privileges);
	cr_assert_neq(r, -254, "could not drop privileges");
	cr_assert_eq(r, -EACCES, "got %d", r);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(count_entries(dir), 0);
	cr_assert_eq(chmod(dir, 0755), 0);
}

Test(pprof, write_file_over_directory)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_free_ char *path = NULL, *inside = NULL;
	struct fixture fx;
	struct stat st;

	/* rename() cannot replace a non-empty directory: the temp file must go. */
	b = build_fixture(&fx);
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/profile.pb.gz", dir), 0);
	cr_assert_geq(asprintf(&inside, "%s/keep", path), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	write_text(inside, "kept");

	cr_assert_lt(pprof_write_file(b, path), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	assert_file_text(inside, "kept");
	cr_assert_eq(count_entries(dir), 1, "temp file left behind");
}

static void limit_file_size(void)
{
	const struct rlimit rl = { .rlim_cur = 64, .rlim_max = RLIM_INFINITY };

	/* Without SIGXFSZ ignored, the oversized write() kills instead of failing with EFBIG. */
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit(RLIMIT_FSIZE, &rl) < 0)
		_exit(253);
}

Test(pprof, write_file_failure_keeps_old_file)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_free_ uint8_t *mem = NULL;
	_cleanup_free_ char *path = NULL;
	struct fixture fx;
	size_t len;
	int r;

	/* Fail the write itself, half way: the file size limit stops the temp file at 64 bytes. */
	b = build_fixture(&fx);
	cr_assert_eq(pprof_serialize(b, &mem, &len), 0);
	cr_assert_gt(len, 64, "profile too small to trip the size limit");
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/profile.pb.gz", dir), 0);
	write_text(path, "previous profile");

	r = write_in_child(b, path, limit_file_size);
	cr_assert_eq(r, -EFBIG, "got %d", r);
	assert_file_text(path, "previous profile");
	cr_assert_eq(count_entries(dir), 1, "temp file left behind");
}

/* ---- the real pprof -------------------------------------------------------------------------- */

/* $BUILD/pprof, next to $BUILD/tests/unit/ where this binary lives; `make test` builds it. */
static char *pprof_tool(void)
{
	char exe[PATH_MAX], *slash, *tool = NULL;
	ssize_t n;

	if (getenv("PPROF"))
		return strdup(getenv("PPROF"));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	cr_assert_not_null(slash);
	*slash = '\0';
	cr_assert_geq(asprintf(&tool, "%s/../../pprof", exe), 0);
	cr_assert_eq(access(tool, X_OK), 0,
		     "%s: %m; build it with `make $BUILD/pprof` (make test does) or set PPROF",
		     tool);
	return tool;
}

/* Run pprof with args, returning its stdout; it must exit 0. */
static char *run_pprof(const char *tool, const char *const *args)
{
	const char *argv[16] = { tool };
	char *out = NULL;
	size_t len = 0, cap = 0;
	int fds[2], status;
	pid_t pid;

	for (size_t i = 0; args[i]; i++) {
		cr_assert_lt(i + 2, ARRAY_SIZE(argv));
		argv[i + 1] = args[i];
	}
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execv(tool, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			out = realloc(out, cap);
			cr_assert_not_null(out);
		}
		n = read(fds[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		cr_assert_geq(n, 0);
		if (n == 0)
			break;
		len += n;
	}
	out[len] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pprof %s failed: status %#x",
		  args[0], status);
	return out;
}

Test(pprof, real_pprof_reads_it)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = NULL;
	_cleanup_(remove_treep) char *dir = NULL;
	_cleanup_free_ char *path = NULL, *raw = NULL, *top = NULL;
	_cleanup_free_ char *tool = pprof_tool();
	struct fixture fx;

	b = build_fixture(&fx);
	dir = make_temp_dir();
	cr_assert_geq(asprintf(&path, "%s/profile.pb.gz", dir), 0);
	cr_assert_eq(pprof_write_file(b, path), 0);

	raw = run_pprof(tool, (const char *const[]){ "-raw", path, NULL });
	cr_assert_not_null(strstr(raw, "PeriodType: cpu nanoseconds"), "%s", raw);
	cr_assert_not_null(strstr(raw, "Period: 10000000"), "%s", raw);
	cr_assert_not_null(strstr(raw, "samples/count cpu/nanoseconds"), "%s", raw);
	cr_assert_not_null(strstr(raw, "leaf_helper"), "%s", raw);
	cr_assert_not_null(strstr(raw, "__memcpy_avx_unaligned_erms"), "%s", raw);
	cr_assert_not_null(strstr(raw, "/usr/bin/app " BUILD_ID_APP), "%s", raw);
	cr_assert_not_null(strstr(raw, "comm:[app]"), "%s", raw);
	cr_assert_not_null(strstr(raw, "pid:[4242"), "%s", raw);

	/* Flat cpu time: memcpy 20ms+30ms, do_syscall_64 30ms, leaf_helper 10ms; main none. */
	top = run_pprof(tool, (const char *const[]){ "-top", "-symbolize=none", path, NULL });
	cr_assert_not_null(strstr(top, "Type: cpu"), "%s", top);
	cr_assert_not_null(strstr(top, "memcpy"), "%s", top);
	cr_assert_not_null(strstr(top, "leaf_helper"), "%s", top);
	cr_assert_not_null(strstr(top, "[kernel] do_syscall_64"), "%s", top);
	cr_assert_not_null(strstr(top, "Showing nodes accounting for 60ms, 100% of 60ms total"),
			   "%s", top);
}

/* ---- splitting for Pyroscope's limits (output/output.h) ------------------------------------ */

struct parts {
	uint8_t *gz[256];
	size_t len[256];
	size_t n;
};

static int keep_part(void *userdata, const uint8_t *gz, size_t len)
{
	struct parts *ps = userdata;

	cr_assert_lt(ps->n, 256);
	ps->gz[ps->n] = malloc(len);
	cr_assert_not_null(ps->gz[ps->n]);
	memcpy(ps->gz[ps->n], gz, len);
	ps->len[ps->n++] = len;
	return 0;
}

static size_t inflated_size(const uint8_t *gz, size_t len)
{
	uint8_t buf[65536];
	z_stream z = {};
	size_t n = 0;
	int zr;

	cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)gz;
	z.avail_in = len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		zr = inflate(&z, Z_NO_FLUSH);
		cr_assert(zr == Z_OK || zr == Z_STREAM_END);
		n += sizeof(buf) - z.avail_out;
	} while (zr != Z_STREAM_END);
	inflateEnd(&z);
	return n;
}

/* The function names of sample s, leaf first, "|"-joined. */
static char *sample_names(const Profile *p, const Perftools__Profiles__Sample *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_not_null(f);
	for (size_t k = 0; k < s->n_location_id; k++) {
		const Perftools__Profiles__Location *loc = NULL;

		for (size_t i = 0; i < p->n_location; i++)
			if (p->location[i]->id == s->location_id[k])
				loc = p->location[i];
		cr_assert_not_null(loc, "location %" PRIu64 " missing", s->location_id[k]);
		for (size_t l = 0; l < loc->n_line; l++) {
			const Perftools__Profiles__Function *fn = NULL;

			for (size_t i = 0; i < p->n_function; i++)
				if (p->function[i]->id == loc->line[l]->function_id)
					fn = p->function[i];
			cr_assert_not_null(fn);
			fprintf(f, "%s|", str(p, fn->name));
		}
	}
	for (size_t l = 0; l < s->n_label; l++)
		fprintf(f, "%s=%s|", str(p, s->label[l]->key), str(p, s->label[l]->str));
	fclose(f);
	return out;
}

Test(pprof, split_within_limits)
{
	_cleanup_(pprof_builder_freep) struct pprof_builder *b = new_builder();
	_cleanup_(profile_freep) Profile *whole = NULL;
	_cleanup_free_ uint8_t *gz = NULL;
	const size_t n_locs = 3000, n_samples = 40000;
	const size_t limits[][2] = { { 16000, 4u << 20 }, { 16000, 1u << 20 } };
	size_t len = 0;

	for (size_t i = 0; i < n_locs; i++) {
		char name[128];
		const struct pprof_line l = { .function_name = name, .filename = "src/x.c",
					      .line = (int64_t)i };

		snprintf(name, sizeof(name), "some::rather_long_namespace::function_number_%zu", i);
		cr_assert_eq(pprof_add_location(b, 0, 0x1000 + 16 * i, &l, 1, NULL), 0);
	}
	for (size_t i = 0; i < n_samples; i++) {
		const int64_t values[] = { 1, (int64_t)i + 1 };
		char tid[16];
		const struct pprof_label label = { .key = "tid", .str = tid };
		uint64_t stack[6];

		snprintf(tid, sizeof(tid), "%zu", i % 50);
		for (size_t j = 0; j < ARRAY_SIZE(stack); j++)
			stack[j] = 1 + (i * 31 + j * 977) % n_locs;
		cr_assert_eq(pprof_add_sample(b, stack, ARRAY_SIZE(stack), values, 2, &label, 1), 0);
	}
	cr_assert_eq(pprof_serialize(b, &gz, &len), 0);
	whole = decode(gz, len);

	for (size_t t = 0; t < ARRAY_SIZE(limits); t++) {
		struct parts ps = {};
		struct output_split_stats st;
		size_t next = 0;
		int64_t cpu = 0;

		cr_assert_eq(output_split_pprof(gz, len, limits[t][0], limits[t][1], keep_part, &ps,
						&st),
			     0);
		cr_assert_eq(st.parts, ps.n);
		cr_assert_eq(st.dropped_samples, 0);
		cr_assert_geq(ps.n, (n_samples + limits[t][0] - 1) / limits[t][0]);
		for (size_t k = 0; k < ps.n; k++) {
			_cleanup_(profile_freep) Profile *p = decode(ps.gz[k], ps.len[k]);

			cr_assert_leq(p->n_sample, limits[t][0]);
			cr_assert_leq(inflated_size(ps.gz[k], ps.len[k]), limits[t][1]);
			cr_assert_eq(p->time_nanos, TIME_NANOS);
			cr_assert_eq(p->period, PERIOD);
			cr_assert_str_eq(str(p, p->sample_type[1]->type), "cpu");
			cr_assert_lt(p->n_function, n_locs + 1);
			/* Every sample once, in order, with its frames and labels. */
			for (size_t i = 0; i < p->n_sample; i++, next++) {
				_cleanup_free_ char *a = sample_names(p, p->sample[i]);
				_cleanup_free_ char *w = NULL;

				if (next % 101 == 0 || i == 0) {
					w = sample_names(whole, whole->sample[next]);
					cr_assert_str_eq(a, w, "part %zu sample %zu", k, i);
				}
				cr_assert_eq(p->sample[i]->value[1], (int64_t)next + 1);
				cpu += p->sample[i]->value[1];
			}
			free(ps.gz[k]);
		}
		cr_assert_eq(next, n_samples);
		cr_assert_eq(cpu, (int64_t)(n_samples * (n_samples + 1) / 2));
	}

	/* Within the limits: handed on as it is. */
	{
		struct parts ps = {};
		cr_assert_eq(output_split_pprof(gz, len, n_samples, 64u << 20, keep_part, &ps, NULL),
			     0);
		cr_assert_eq(ps.n, 1);
		cr_assert_eq(ps.len[0], len);
		cr_assert_eq(memcmp(ps.gz[0], gz, len), 0);
		free(ps.gz[0]);
	}
	cr_assert_eq(output_split_pprof(gz, len, 0, 1, keep_part, NULL, NULL), -EINVAL);
	cr_assert_eq(output_split_pprof((const uint8_t *)"nope", 4, 1, 1, keep_part, NULL, NULL),
		     -EBADMSG);
}
