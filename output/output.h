/* SPDX-License-Identifier: MIT */
/*
 * "Write this profile as FORMAT": the one place output formats live. Every writer reads the
 * same thing, a gzipped pprof profile (what pprof_serialize() makes, or a .pb.gz file from any
 * tool), so every format names frames exactly as the pprof does:
 *
 *   OUTPUT_PPROF       the gzipped pprof itself.
 *   OUTPUT_FOLDED      "comm;root;...;leaf count" lines (Brendan Gregg's folded stacks),
 *                      one per distinct stack, sorted; comm from the sample's "comm" label,
 *                      else "process", else "[unknown]"; ';' in names becomes ':' and a
 *                      newline a space. Count: the first sample value.
 *   OUTPUT_SPEEDSCOPE  speedscope's JSON file format
 *                      (https://www.speedscope.app/file-format-schema.json): shared.frames
 *                      with name, file and line (of each pprof Line: inline frames are real
 *                      frames), one "sampled" profile per thread (samples grouped by their
 *                      "pid" and "tid" labels, named "PROCESS pid PID / COMM tid TID"; samples
 *                      without them form one profile named "all"), heaviest first, stacks root
 *                      first, weights the profile's default sample type (the last one when none
 *                      is set) in its unit ("nanoseconds" and the like; "none" for counts).
 *
 * Every frame of every sample is kept, as in the pprof; a Location without Lines is named
 * "0xADDRESS". Strings are written as valid JSON/UTF-8 whatever the profile holds: control
 * characters escaped, bytes that are not UTF-8 replaced by U+FFFD.
 *
 * Limits: the gzipped input inflates to at most OUTPUT_MAX_PPROF_BYTES (-EFBIG beyond); a
 * speedscope file has at most OUTPUT_MAX_THREADS thread profiles (the rest of the samples go
 * to one more profile named "other threads").
 *
 * Errors: -EINVAL (bad arguments), -EBADMSG (not a gzipped pprof), -EFBIG, -ENOMEM, or the
 * -errno of a failed write. Files are written atomically (temp file + fsync + rename) with
 * the given mode, as pprof_write_file_mode(); "-" writes to stdout.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pprof_builder;

#define OUTPUT_MAX_PPROF_BYTES (1ull << 30)
#define OUTPUT_MAX_THREADS 4096

enum output_format {
	OUTPUT_PPROF = 0,
	OUTPUT_FOLDED,
	OUTPUT_SPEEDSCOPE,
};

/* "pprof", "folded", "speedscope" <-> the format. from_string: 0 or -EINVAL. */
int output_format_from_string(const char *s, enum output_format *ret);
const char *output_format_to_string(enum output_format f);
/* File name extension of the format, with its dot: ".pb.gz", ".folded", ".speedscope.json". */
const char *output_format_extension(enum output_format f);

/*
 * The name of an off-CPU wait's state (enum profd_offcpu_state): "S" (asleep), "D"
 * (uninterruptible), "other" (stopped, traced, or a state this build does not know); "" for 0 (a
 * CPU sample). The profile's "state" label and record's summary both use it.
 */
const char *output_offcpu_state_name(unsigned state);

/*
 * The profile in `gz` (gzipped pprof) as `format`, into malloc'ed *ret (render) or written to
 * `path` ("-": stdout) with `mode` (write). `sample_type` names the sample type whose value the
 * folded and speedscope outputs weigh frames by (e.g. "off_cpu"; NULL: the profile's default sample
 * type, else its last). -ENOENT when the profile has no such type. Samples whose chosen value is 0 (CPU samples, for off_cpu) are
 * left out.
 */
int output_render_type(const uint8_t *gz, size_t gz_len, enum output_format format,
		       const char *sample_type, uint8_t **ret, size_t *ret_len);
int output_write_bytes_type(const uint8_t *gz, size_t gz_len, enum output_format format,
			    const char *sample_type, const char *path, mode_t mode);
/* A builder's profile (pprof_serialize()) written as output_write_bytes_type(). */
int output_write_builder(struct pprof_builder *b, enum output_format format, const char *path,
			 mode_t mode);
int output_write_builder_type(struct pprof_builder *b, enum output_format format,
			      const char *sample_type, const char *path, mode_t mode);

/* Read a gzipped pprof file whole (at most OUTPUT_MAX_PPROF_BYTES) and check it unpacks. */
int output_read_pprof_file(const char *path, uint8_t **ret, size_t *ret_len);

/*
 * For servers that refuse big profiles (Pyroscope: 4 MiB uncompressed, 16,000 samples): hand
 * the gzipped pprof in `gz` to emit() as it is when it has at most max_samples samples and
 * inflates to at most max_bytes, else as consecutive parts that each do, in sample order: each
 * part a complete gzipped pprof with the same sample types, period, time and comments, and
 * only the locations, functions, mappings and strings its samples use (ids unchanged). Every
 * sample goes to exactly one part, so the parts add up to the profile; a sample that alone
 * exceeds max_bytes is dropped and counted. emit()'s data is valid during the call; a negative
 * return stops the split and is returned. Errors as above, and -EINVAL for zero limits.
 */
typedef int (*output_part_fn)(void *userdata, const uint8_t *gz, size_t len);
struct output_split_stats {
	size_t parts;		/* emitted */
	size_t dropped_samples; /* samples bigger than max_bytes on their own */
};
int output_split_pprof(const uint8_t *gz, size_t gz_len, size_t max_samples, size_t max_bytes,
		       output_part_fn emit, void *userdata, struct output_split_stats *ret_stats);
