/* SPDX-License-Identifier: MIT */
/*
 * pprof profile builder (profile.proto, as read by `go tool pprof`, speedscope, Parca,
 * Pyroscope).
 *
 * Usage: pprof_builder_new() → pprof_add_mapping()/pprof_add_location()/pprof_add_sample()
 * → pprof_write_file() (gzip, atomic: temp file in the same directory + fsync + rename) or
 * pprof_serialize() (gzipped bytes in memory, for HTTP).
 *
 * Ids are 1-based as pprof requires; 0 means "none". Strings are interned (string_table[0] is
 * ""). Functions are deduplicated by (name, system_name, filename, start_line); locations by
 * (mapping_id, address); callers dedupe mappings themselves (ids are returned).
 *
 * Errors: -ENOMEM, -EINVAL (bad id / arguments), -E2BIG (a documented limit: PPROF_MAX_*),
 * or the -errno of a failed write. On a failed write no file is left at `path` and any
 * previous file there is untouched.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Limits (exceeding one returns -E2BIG and adds nothing). PPROF_MAX_VALUES is per sample and
 * per config, PPROF_MAX_LABELS per sample, PPROF_MAX_LINES per location (symbolize/ reports at
 * most SYM_MAX_INLINE), PPROF_MAX_STACK per sample (above UNWIND_MAX_DEPTH_LIMIT plus kernel
 * and synthetic frames); the others are per builder, PPROF_MAX_STRING_BYTES counting every
 * interned string with its NUL.
 */
#define PPROF_MAX_VALUES 4
#define PPROF_MAX_LABELS 16
#define PPROF_MAX_LINES 256
#define PPROF_MAX_STACK 8192
#define PPROF_MAX_STRINGS (16u << 20)
#define PPROF_MAX_STRING_BYTES (256u << 20)
#define PPROF_MAX_MAPPINGS (1u << 20)
#define PPROF_MAX_FUNCTIONS (16u << 20)
#define PPROF_MAX_LOCATIONS (16u << 20)
#define PPROF_MAX_SAMPLES (64u << 20)

struct pprof_builder;

struct pprof_value_type {
	const char *type; /* e.g. "samples", "cpu" */
	const char *unit; /* e.g. "count", "nanoseconds" */
};

/*
 * All strings are copied. A NULL string means "" except period_type.type: NULL leaves the
 * profile without a period type. The profile's default_sample_type is sample type number
 * default_sample_type (1-based), or the last one when that is 0 (what pprof picks when none
 * is set), e.g. {"samples","count"}, {"cpu","nanoseconds"}.
 */
struct pprof_config {
	size_t n_sample_types; /* 1..PPROF_MAX_VALUES; sample_types[i].type must not be NULL */
	struct pprof_value_type sample_types[PPROF_MAX_VALUES];
	struct pprof_value_type period_type;
	int64_t period;
	int64_t time_nanos;     /* wall-clock start of the profile */
	int64_t duration_nanos;
	const char *comment;    /* optional, NULL for none */
	size_t default_sample_type; /* 1..n_sample_types; 0: the last */
};

struct pprof_mapping {
	uint64_t memory_start, memory_limit, file_offset;
	const char *filename;
	const char *build_id; /* hex string or NULL */
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct pprof_line {
	const char *function_name;
	const char *system_name; /* NULL → same as function_name */
	const char *filename;    /* NULL → "" */
	int64_t start_line;      /* first line of the function, 0 if unknown */
	int64_t line;            /* line in this function, 0 if unknown */
};

/*
 * pprof's reader drops a string label whose value is "" and a numeric label whose num is 0 and
 * has no unit; they are still written as given.
 */
struct pprof_label {
	const char *key; /* required */
	const char *str; /* string label when non-NULL... */
	int64_t num;     /* ...otherwise numeric label */
	const char *num_unit; /* optional unit for numeric labels */
};

int pprof_builder_new(const struct pprof_config *cfg, struct pprof_builder **ret);
void pprof_builder_free(struct pprof_builder *b);

/* memory_limit must be >= memory_start. ret_id may be NULL (ids are handed out 1, 2, ...). */
int pprof_add_mapping(struct pprof_builder *b, const struct pprof_mapping *m, uint64_t *ret_id);

/*
 * Add (or find) the location for (mapping_id, address). `lines` are leaf first (inlined
 * callee first, containing function last); at least one is required. mapping_id 0 is allowed
 * (no mapping). When the location exists already, lines are ignored and its id returned (the
 * arguments are still checked). Every line needs a function_name. ret_id may be NULL.
 * On failure no location is added, though strings and functions interned on the way may stay
 * (unreferenced, harmless to readers).
 */
int pprof_add_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address,
		       const struct pprof_line *lines, size_t n_lines, uint64_t *ret_id);

/* Look up an existing location id without adding; 0 if absent. */
uint64_t pprof_find_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address);

/*
 * location_ids leaf first, each an id returned by pprof_add_location(); n_locations may be 0.
 * n_values must equal cfg->n_sample_types. Samples are written as added, not merged.
 */
int pprof_add_sample(struct pprof_builder *b, const uint64_t *location_ids, size_t n_locations,
		     const int64_t *values, size_t n_values, const struct pprof_label *labels,
		     size_t n_labels);

/*
 * Gzipped serialized profile; *ret is malloc()ed, caller frees. The output depends only on what
 * was added, in which order (no timestamp in the gzip header).
 */
int pprof_serialize(struct pprof_builder *b, uint8_t **ret, size_t *ret_len);

/*
 * Write gzipped profile atomically to path with mode 0600, owner only, whatever the umask (like
 * `perf record`: profiles name the functions and commands of every process profiled). The temp
 * file is ".<name>.XXXXXX" in path's directory; the directory is fsync()ed after the rename,
 * best effort. pprof_write_file_mode(): the same with another mode (e.g. 0640 for a service's
 * files that a group reads).
 */
int pprof_write_file(struct pprof_builder *b, const char *path);
int pprof_write_file_mode(struct pprof_builder *b, const char *path, mode_t mode);
/* The same atomic write of any bytes (other output formats, output/output.h). */
int pprof_write_data_mode(const char *path, const uint8_t *data, size_t len, mode_t mode);

/* Counts, for summaries and tests; 0 for a NULL builder. */
size_t pprof_n_samples(const struct pprof_builder *b);
size_t pprof_n_locations(const struct pprof_builder *b);
size_t pprof_n_functions(const struct pprof_builder *b);
