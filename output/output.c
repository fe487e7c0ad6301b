/* SPDX-License-Identifier: MIT */
/*
 * Output formats side by side (see output.h): each reads the unpacked pprof, so a frame reads
 * the same in every format.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bpf/profd.h"
#include "common/macro.h"
#include "output/output.h"
#include "output/pprof.h"
#include "output/profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Function Function;

static const char *const format_names[] = {
    [OUTPUT_PPROF] = "pprof",
    [OUTPUT_FOLDED] = "folded",
    [OUTPUT_SPEEDSCOPE] = "speedscope",
};

int output_format_from_string(const char *s, enum output_format *ret)
{
	if (!s || !ret)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(format_names); i++)
		if (!strcmp(s, format_names[i])) {
			*ret = (enum output_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *output_format_to_string(enum output_format f)
{
	return (size_t)f < ARRAY_SIZE(format_names) ? format_names[f] : "unknown";
}

const char *output_format_extension(enum output_format f)
{
	switch (f) {
	case OUTPUT_FOLDED:
		return ".folded";
	case OUTPUT_SPEEDSCOPE:
		return ".speedscope.json";
	default:
		return ".pb.gz";
	}
}

static const char *const offcpu_state_names[] = {
	[0] = "",
	[PROFD_OFFCPU_SLEEP] = "S",
	[PROFD_OFFCPU_DISK] = "D",
	[PROFD_OFFCPU_OTHER] = "other",
};

const char *output_offcpu_state_name(unsigned state)
{
	return state < ARRAY_SIZE(offcpu_state_names) ? offcpu_state_names[state]
						      : offcpu_state_names[PROFD_OFFCPU_OTHER];
}

/* ---- reading ------------------------------------------------------------------------------ */

static int gunzip(const uint8_t *in, size_t in_len, uint8_t **ret, size_t *ret_len)
{
	z_stream z = {};
	size_t cap = MIN(in_len * 4 + 4096, (size_t)OUTPUT_MAX_PPROF_BYTES), len = 0;
	uint8_t *out = malloc(cap);
	int zr;

	if (!out)
		return -ENOMEM;
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)MIN(in_len, (size_t)UINT_MAX);
	do {
		if (len == cap) {
			if (cap >= OUTPUT_MAX_PPROF_BYTES) {
				zr = Z_BUF_ERROR;
				break;
			}
			size_t ncap = MIN(cap * 2, (size_t)OUTPUT_MAX_PPROF_BYTES);
			uint8_t *n = realloc(out, ncap);

			if (!n) {
				zr = Z_MEM_ERROR;
				break;
			}
			out = n;
			cap = ncap;
		}
		z.next_out = out + len;
		z.avail_out = (uInt)MIN(cap - len, (size_t)UINT_MAX);
		zr = inflate(&z, Z_NO_FLUSH);
		len = (size_t)(z.next_out - out);
	} while (zr == Z_OK);
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(out);
		return zr == Z_MEM_ERROR		 ? -ENOMEM
		       : zr == Z_BUF_ERROR && len == cap ? -EFBIG
							 : -EBADMSG;
	}
	*ret = out;
	*ret_len = len;
	return 0;
}

static int unpack(const uint8_t *gz, size_t gz_len, Profile **ret)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t raw_len;
	int r;

	if (gz_len < 2 || gz[0] != 0x1f || gz[1] != 0x8b)
		return -EBADMSG;
	r = gunzip(gz, gz_len, &raw, &raw_len);
	if (r < 0)
		return r;
	*ret = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	return *ret ? 0 : -EBADMSG;
}

static const char *pb_str(const Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table && p->string_table[i] ? p->string_table[i]
									     : "";
}

/* Ids of a foreign profile need not be 1..n in order: find them by binary search. */
struct id_index {
	uint64_t *ids; /* sorted */
	size_t *idx;
	size_t n;
	bool dense; /* ids are 1..n in order: no table */
};

static int cmp_u64_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int id_index_build(struct id_index *ix, size_t n, uint64_t (*id_of)(const void *, size_t),
			  const void *arr)
{
	uint64_t *pairs;

	*ix = (struct id_index){.n = n, .dense = true};
	for (size_t i = 0; i < n && ix->dense; i++)
		ix->dense = id_of(arr, i) == i + 1;
	if (ix->dense)
		return 0;
	pairs = calloc(n ? n * 2 : 2, sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		pairs[2 * i] = id_of(arr, i);
		pairs[2 * i + 1] = i;
	}
	qsort(pairs, n, 2 * sizeof(*pairs), cmp_u64_pair);
	ix->ids = pairs;
	return 0;
}

static bool id_index_find(const struct id_index *ix, uint64_t id, size_t *ret)
{
	if (ix->dense) {
		if (id < 1 || id > ix->n)
			return false;
		*ret = id - 1;
		return true;
	}
	size_t lo = 0, hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->ids[2 * mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->n && ix->ids[2 * lo] == id) {
		*ret = ix->ids[2 * lo + 1];
		return true;
	}
	return false;
}

static uint64_t loc_id_of(const void *arr, size_t i)
{
	return ((Location *const *)arr)[i]->id;
}

static uint64_t fn_id_of(const void *arr, size_t i)
{
	return ((Function *const *)arr)[i]->id;
}

struct view {
	const Profile *p;
	struct id_index locs, fns;
	size_t value; /* index of the sample value written */
	bool chosen;  /* value was asked for by name (folded then weighs by it too) */
	int64_t key_pid, key_tid, key_comm, key_process;
};

static void view_done(struct view *v)
{
	free(v->locs.ids);
	free(v->fns.ids);
}

static int64_t string_index(const Profile *p, const char *s)
{
	for (size_t i = 1; i < p->n_string_table; i++)
		if (p->string_table[i] && !strcmp(p->string_table[i], s))
			return (int64_t)i;
	return -1;
}

static int view_init(struct view *v, const Profile *p, const char *sample_type)
{
	int r;

	*v = (struct view){.p = p};
	r = id_index_build(&v->locs, p->n_location, loc_id_of, p->location);
	if (r >= 0)
		r = id_index_build(&v->fns, p->n_function, fn_id_of, p->function);
	if (r < 0) {
		view_done(v);
		return r;
	}
	/* The default sample type, else the last one (what pprof opens). */
	v->value = p->n_sample_type ? p->n_sample_type - 1 : 0;
	if (p->default_sample_type > 0)
		for (size_t i = 0; i < p->n_sample_type; i++)
			if (p->sample_type[i]->type == p->default_sample_type)
				v->value = i;
	if (sample_type) {
		int64_t name = string_index(p, sample_type);
		size_t i;

		for (i = 0; i < p->n_sample_type; i++)
			if (name > 0 && p->sample_type[i]->type == name)
				break;
		if (i == p->n_sample_type) {
			view_done(v);
			return -ENOENT;
		}
		v->value = i;
		v->chosen = true;
	}
	v->key_pid = string_index(p, "pid");
	v->key_tid = string_index(p, "tid");
	v->key_comm = string_index(p, "comm");
	v->key_process = string_index(p, "process");
	return 0;
}

static const Location *view_location(const struct view *v, uint64_t id)
{
	size_t i;
	return id_index_find(&v->locs, id, &i) ? v->p->location[i] : NULL;
}

static const Function *view_function(const struct view *v, uint64_t id)
{
	size_t i;
	return id_index_find(&v->fns, id, &i) ? v->p->function[i] : NULL;
}

static const char *label_str(const struct view *v, const Sample *s, int64_t key)
{
	if (key < 0)
		return "";
	for (size_t l = 0; l < s->n_label; l++)
		if (s->label[l]->key == key)
			return pb_str(v->p, s->label[l]->str);
	return "";
}

/* A numeric label, or a string label holding a number; -1 when absent. */
static int64_t label_num(const struct view *v, const Sample *s, int64_t key)
{
	if (key < 0)
		return -1;
	for (size_t l = 0; l < s->n_label; l++) {
		const Perftools__Profiles__Label *lb = s->label[l];
		if (lb->key != key)
			continue;
		if (lb->str > 0) {
			char *end;
			long long n = strtoll(pb_str(v->p, lb->str), &end, 10);
			return *end ? -1 : n;
		}
		return lb->num;
	}
	return -1;
}

static int64_t sample_weight(const struct view *v, const Sample *s)
{
	return v->value < s->n_value ? s->value[v->value] : 0;
}

/* ---- folded ------------------------------------------------------------------------------- */

struct fold_line {
	char *stack;
	uint64_t count;
};

struct fold_map {
	struct fold_line *slots;
	size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Takes ownership of stack. */
static int fold_add(struct fold_map *m, char *stack, uint64_t count)
{
	size_t k;

	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		struct fold_line *ns = calloc(ncap, sizeof(*ns));

		if (!ns) {
			free(stack);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].stack)
				continue;
			for (k = str_hash(m->slots[i].stack) & (ncap - 1); ns[k].stack;
			     k = (k + 1) & (ncap - 1))
				;
			ns[k] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	for (k = str_hash(stack) & (m->cap - 1); m->slots[k].stack; k = (k + 1) & (m->cap - 1))
		if (!strcmp(m->slots[k].stack, stack)) {
			m->slots[k].count += count;
			free(stack);
			return 0;
		}
	m->slots[k] = (struct fold_line){.stack = stack, .count = count};
	m->n++;
	return 0;
}

static int cmp_fold(const void *a, const void *b)
{
	return strcmp(((const struct fold_line *)a)->stack, ((const struct fold_line *)b)->stack);
}

/* A frame name as one folded element: ';' separates frames and '\n' lines. */
static void fold_put_name(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, f);
}

static int write_folded(const struct view *v, FILE *out)
{
	const Profile *p = v->p;
	struct fold_map m = {};
	int r = 0;

	for (size_t i = 0; i < p->n_sample && r >= 0; i++) {
		const Sample *s = p->sample[i];
		/* Folded stacks count samples: the first value, as flamegraph.pl expects. */
		size_t k = v->chosen ? v->value : 0;
		int64_t w = k < s->n_value ? s->value[k] : 0;
		const char *comm = label_str(v, s, v->key_comm);
		const char *process = label_str(v, s, v->key_process);
		char *buf = NULL;
		size_t len = 0;
		FILE *f;

		if (w <= 0)
			continue;
		f = open_memstream(&buf, &len);
		if (!f) {
			r = -ENOMEM;
			break;
		}
		fold_put_name(f, comm[0] ? comm : process[0] ? process : "[unknown]");
		/* Locations leaf first, lines leaf (innermost inline) first: print reversed. */
		for (size_t k = s->n_location_id; k-- > 0;) {
			const Location *loc = view_location(v, s->location_id[k]);

			if (!loc)
				continue;
			if (loc->n_line == 0) {
				fprintf(f, ";0x%" PRIx64, loc->address);
				continue;
			}
			for (size_t ln = loc->n_line; ln-- > 0;) {
				const Function *fn = view_function(v, loc->line[ln]->function_id);

				fputc(';', f);
				fold_put_name(f, fn ? pb_str(p, fn->name) : "[unknown]");
			}
		}
		if (fclose(f) != 0 || !buf) {
			free(buf);
			r = -ENOMEM;
			break;
		}
		r = fold_add(&m, buf, (uint64_t)w);
	}
	if (r >= 0) {
		size_t n = 0;

		for (size_t i = 0; i < m.cap; i++)
			if (m.slots[i].stack)
				m.slots[n++] = m.slots[i];
		qsort(m.slots, n, sizeof(*m.slots), cmp_fold);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s %" PRIu64 "\n", m.slots[i].stack, m.slots[i].count);
		m.cap = n;
	}
	for (size_t i = 0; i < m.cap; i++)
		free(m.slots[i].stack);
	free(m.slots);
	return r;
}

/* ---- speedscope --------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (s[0] == 0xe0 && s[1] < 0xa0) /* overlong */
			return 0;
		if (s[0] == 0xed && s[1] >= 0xa0) /* UTF-16 surrogates */
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/* A JSON string: quotes, backslashes and control characters escaped, invalid UTF-8 → U+FFFD. */
static void json_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n;

		if (*s == '"' || *s == '\\') {
			fputc('\\', f);
			fputc(*s++, f);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s++);
		} else if ((n = utf8_len(s)) == 0) {
			fputs("\\ufffd", f);
			s++;
		} else {
			/* utf8_len() looked at no byte past a NUL: continuation bytes are never 0.
			 */
			fwrite(s, 1, n, f);
			s += n;
		}
	}
	fputc('"', f);
}

/* Frames are (function, line) pairs, or a Location without lines (by address). */
struct frame_key {
	uint64_t fn_id; /* 0: no function; then `line` holds the address */
	int64_t line;
};

struct frame_map {
	struct frame_key *keys;
	uint32_t *vals; /* frame index + 1; 0: empty */
	size_t cap, n;
};

static uint64_t frame_hash(const struct frame_key *k)
{
	uint64_t h = k->fn_id * 0x9e3779b97f4a7c15ull ^ (uint64_t)k->line * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 31);
}

/* Index of the frame, added when new. */
static int frame_index(struct frame_map *m, const struct frame_key *key, bool *ret_new,
		       uint32_t *ret)
{
	size_t k;

	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		struct frame_key *nk = calloc(ncap, sizeof(*nk));
		uint32_t *nv = calloc(ncap, sizeof(*nv));

		if (!nk || !nv) {
			free(nk);
			free(nv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->vals[i])
				continue;
			for (k = frame_hash(&m->keys[i]) & (ncap - 1); nv[k];
			     k = (k + 1) & (ncap - 1))
				;
			nk[k] = m->keys[i];
			nv[k] = m->vals[i];
		}
		free(m->keys);
		free(m->vals);
		m->keys = nk;
		m->vals = nv;
		m->cap = ncap;
	}
	for (k = frame_hash(key) & (m->cap - 1); m->vals[k]; k = (k + 1) & (m->cap - 1))
		if (m->keys[k].fn_id == key->fn_id && m->keys[k].line == key->line) {
			*ret_new = false;
			*ret = m->vals[k] - 1;
			return 0;
		}
	if (m->n >= UINT32_MAX - 1)
		return -E2BIG;
	m->keys[k] = *key;
	m->vals[k] = (uint32_t)++m->n;
	*ret_new = true;
	*ret = m->vals[k] - 1;
	return 0;
}

struct thread {
	int64_t pid, tid;
	const Sample *first; /* for its labels */
	int64_t weight;
	size_t n_samples;
};

struct thread_list {
	struct thread *t;
	size_t n, cap;
};

static int cmp_thread_weight(const void *a, const void *b)
{
	const struct thread *x = a, *y = b;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static const char *speedscope_unit(const char *unit)
{
	static const char *const known[] = {"nanoseconds", "microseconds", "milliseconds",
					    "seconds", "bytes"};
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(unit, known[i]))
			return known[i];
	return "none";
}

/* The frames of one sample, root first, into *stack (grown as needed). */
static int sample_frames(const struct view *v, struct frame_map *fm, const Sample *s,
			 uint32_t **stack, size_t *cap, size_t *ret_n, FILE *frames_out,
			 size_t *n_frames_out)
{
	size_t n = 0;

	for (size_t k = s->n_location_id; k-- > 0;) {
		const Location *loc = view_location(v, s->location_id[k]);
		size_t lines;

		if (!loc)
			continue;
		lines = loc->n_line ? loc->n_line : 1;
		for (size_t ln = lines; ln-- > 0;) {
			const Perftools__Profiles__Line *line = loc->n_line ? loc->line[ln] : NULL;
			struct frame_key key =
			    line ? (struct frame_key){line->function_id, line->line}
				 : (struct frame_key){0, (int64_t)loc->address};
			bool is_new;
			uint32_t idx;
			int r = frame_index(fm, &key, &is_new, &idx);

			if (r < 0)
				return r;
			if (is_new && frames_out) {
				const Function *fn =
				    line ? view_function(v, line->function_id) : NULL;
				char addr[32];

				if (*n_frames_out)
					fputc(',', frames_out);
				fputs("{\"name\":", frames_out);
				if (line) {
					json_str(frames_out,
						 fn ? pb_str(v->p, fn->name) : "[unknown]");
				} else {
					snprintf(addr, sizeof(addr), "0x%" PRIx64, loc->address);
					json_str(frames_out, addr);
				}
				if (fn && pb_str(v->p, fn->filename)[0]) {
					fputs(",\"file\":", frames_out);
					json_str(frames_out, pb_str(v->p, fn->filename));
				}
				if (line && line->line > 0)
					fprintf(frames_out, ",\"line\":%" PRId64, line->line);
				fputc('}', frames_out);
				(*n_frames_out)++;
			}
			if (n == *cap) {
				size_t ncap = *cap ? *cap * 2 : 256;
				uint32_t *ns = realloc(*stack, ncap * sizeof(*ns));
				if (!ns)
					return -ENOMEM;
				*stack = ns;
				*cap = ncap;
			}
			(*stack)[n++] = idx;
		}
	}
	*ret_n = n;
	return 0;
}

static int write_speedscope(const struct view *v, FILE *out)
{
	const Profile *p = v->p;
	struct frame_map fm = {};
	struct thread_list tl = {};
	_cleanup_free_ size_t *thread_of = calloc(p->n_sample ? p->n_sample : 1, sizeof(size_t));
	_cleanup_free_ uint32_t *stack = NULL;
	_cleanup_free_ struct thread *sorted = NULL;
	size_t stack_cap = 0, n_frames = 0, n, other = SIZE_MAX;
	const char *unit = "none";
	int r = 0;

	if (!thread_of)
		return -ENOMEM;
	if (v->value < p->n_sample_type)
		unit = speedscope_unit(pb_str(p, p->sample_type[v->value]->unit));

	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
	      "\"exporter\":\"profd\",\"name\":\"profd\",\"activeProfileIndex\":0,"
	      "\"shared\":{\"frames\":[",
	      out);
	/* Pass 1: frames (written as first seen) and the threads with their weights. */
	for (size_t i = 0; i < p->n_sample && r >= 0; i++) {
		const Sample *s = p->sample[i];
		int64_t w = sample_weight(v, s);
		int64_t pid = label_num(v, s, v->key_pid), tid = label_num(v, s, v->key_tid);
		size_t t;

		thread_of[i] = SIZE_MAX;
		if (w <= 0)
			continue;
		r = sample_frames(v, &fm, s, &stack, &stack_cap, &n, out, &n_frames);
		if (r < 0)
			break;
		for (t = 0; t < tl.n; t++)
			if (tl.t[t].pid == pid && tl.t[t].tid == tid)
				break;
		if (t == tl.n && tl.n >= OUTPUT_MAX_THREADS) {
			if (other == SIZE_MAX)
				other = tl.n;
			else
				t = other;
		}
		if (t == tl.n) {
			if (tl.n == tl.cap) {
				size_t ncap = tl.cap ? tl.cap * 2 : 16;
				struct thread *nt = realloc(tl.t, ncap * sizeof(*nt));
				if (!nt) {
					r = -ENOMEM;
					break;
				}
				tl.t = nt;
				tl.cap = ncap;
			}
			tl.t[tl.n++] = (struct thread){
			    .pid = t == other ? -2 : pid, .tid = t == other ? -2 : tid, .first = s};
		}
		tl.t[t].weight += w;
		tl.t[t].n_samples++;
		thread_of[i] = t;
	}
	fputs("]},\"profiles\":[", out);
	if (r < 0)
		goto out;

	/* Heaviest first; thread_of[] indexes the unsorted list, so sort an order instead. */
	sorted = malloc((tl.n ? tl.n : 1) * sizeof(*sorted));
	if (!sorted) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t t = 0; t < tl.n; t++) {
		sorted[t] = tl.t[t];
		sorted[t].n_samples = t; /* remember the unsorted index */
	}
	qsort(sorted, tl.n, sizeof(*sorted), cmp_thread_weight);
	for (size_t k = 0; k < tl.n; k++) {
		size_t t = sorted[k].n_samples;
		const struct thread *th = &tl.t[t];
		char *name = NULL;
		bool first = true;

		if (th->pid == -2)
			name = strdup("other threads");
		else if (th->pid < 0 && th->tid < 0)
			name = strdup("all");
		else if (asprintf(&name, "%s pid %" PRId64 " / %s tid %" PRId64,
				  label_str(v, th->first, v->key_process), th->pid,
				  label_str(v, th->first, v->key_comm), th->tid) < 0)
			name = NULL;
		if (!name) {
			r = -ENOMEM;
			goto out;
		}
		if (k)
			fputc(',', out);
		fputs("{\"type\":\"sampled\",\"name\":", out);
		json_str(out, name);
		free(name);
		fprintf(out,
			",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRId64 ",\"samples\":[",
			unit, th->weight);
		for (size_t i = 0; i < p->n_sample; i++) {
			if (thread_of[i] != t)
				continue;
			r = sample_frames(v, &fm, p->sample[i], &stack, &stack_cap, &n, NULL, NULL);
			if (r < 0)
				goto out;
			fputs(first ? "[" : ",[", out);
			first = false;
			for (size_t j = 0; j < n; j++)
				fprintf(out, j ? ",%" PRIu32 : "%" PRIu32, stack[j]);
			fputc(']', out);
		}
		fputs("],\"weights\":[", out);
		first = true;
		for (size_t i = 0; i < p->n_sample; i++) {
			if (thread_of[i] != t)
				continue;
			fprintf(out, first ? "%" PRId64 : ",%" PRId64,
				sample_weight(v, p->sample[i]));
			first = false;
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
out:
	free(fm.keys);
	free(fm.vals);
	free(tl.t);
	return r;
}

/* ---- entry points ------------------------------------------------------------------------- */

int output_render_type(const uint8_t *gz, size_t gz_len, enum output_format format,
		       const char *sample_type, uint8_t **ret, size_t *ret_len)
{
	Profile *p = NULL;
	struct view v;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (!gz || !ret || !ret_len || (unsigned)format > OUTPUT_SPEEDSCOPE)
		return -EINVAL;
	r = unpack(gz, gz_len, &p);
	if (r < 0)
		return r;
	if (format == OUTPUT_PPROF) {
		perftools__profiles__profile__free_unpacked(p, NULL);
		*ret = malloc(gz_len ? gz_len : 1);
		if (!*ret)
			return -ENOMEM;
		memcpy(*ret, gz, gz_len);
		*ret_len = gz_len;
		return 0;
	}
	r = view_init(&v, p, sample_type);
	if (r < 0) {
		perftools__profiles__profile__free_unpacked(p, NULL);
		return r;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		r = -ENOMEM;
	} else {
		r = format == OUTPUT_FOLDED ? write_folded(&v, f) : write_speedscope(&v, f);
		if (fclose(f) != 0 && r >= 0)
			r = -ENOMEM;
	}
	view_done(&v);
	perftools__profiles__profile__free_unpacked(p, NULL);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = (uint8_t *)buf;
	*ret_len = len;
	return 0;
}

static int write_stdout(const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int output_write_bytes_type(const uint8_t *gz, size_t gz_len, enum output_format format,
			    const char *sample_type, const char *path, mode_t mode)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	if (!path || !*path)
		return -EINVAL;
	r = output_render_type(gz, gz_len, format, sample_type, &data, &len);
	if (r < 0)
		return r;
	if (!strcmp(path, "-"))
		return write_stdout(data, len);
	return pprof_write_data_mode(path, data, len, mode);
}

int output_write_builder(struct pprof_builder *b, enum output_format format, const char *path,
			 mode_t mode)
{
	return output_write_builder_type(b, format, NULL, path, mode);
}

int output_write_builder_type(struct pprof_builder *b, enum output_format format,
			      const char *sample_type, const char *path, mode_t mode)
{
	_cleanup_free_ uint8_t *gz = NULL;
	size_t len;
	int r;

	if (!b || !path)
		return -EINVAL;
	if (format == OUTPUT_PPROF && strcmp(path, "-"))
		return pprof_write_file_mode(b, path, mode);
	r = pprof_serialize(b, &gz, &len);
	if (r < 0)
		return r;
	return output_write_bytes_type(gz, len, format, sample_type, path, mode);
}

int output_read_pprof_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	Profile *p = NULL;
	int r;

	if (!path || !ret || !ret_len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > OUTPUT_MAX_PPROF_BYTES)
		return -EFBIG;
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = unpack(buf, len, &p);
	if (r < 0)
		return r;
	perftools__profiles__profile__free_unpacked(p, NULL);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* ---- splitting for servers with limits ---------------------------------------------------- */

typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__ValueType ValueType;

/* A part's string table: old index → new index, interned on first use. */
struct str_remap {
	const Profile *p;
	int64_t *map; /* -1: not in the part yet */
	char **strs;
	size_t n;
};

static int64_t remap_str(struct str_remap *m, int64_t old)
{
	if (old <= 0 || (size_t)old >= m->p->n_string_table)
		return 0;
	if (m->map[old] < 0) {
		m->strs[m->n] = m->p->string_table[old];
		m->map[old] = (int64_t)m->n++;
	}
	return m->map[old];
}

static int gzip_bytes(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	z_stream z = {};
	uLong cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *out;

	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len) + 64;
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return -ENOMEM;
	}
	*ret_len = z.total_out;
	deflateEnd(&z);
	*ret = out;
	return 0;
}

/*
 * Samples [from, to) of p as a profile of their own: the locations, functions and mappings
 * they use, and the strings those use. Packed (not gzipped) into *ret.
 */
static int build_part(const Profile *p, const struct view *v, size_t from, size_t to, uint8_t **ret,
		      size_t *ret_len)
{
	size_t n = to - from, n_loc = 0, n_fn = 0, n_map = 0, n_lab = 0;
	struct str_remap sm = {.p = p};
	Profile part = *p;
	int r = -ENOMEM;
	bool *use_loc = calloc(p->n_location + 1, 1), *use_fn = calloc(p->n_function + 1, 1);
	bool *use_map = calloc(p->n_mapping + 1, 1);
	Sample *samples = calloc(n + 1, sizeof(*samples));
	Sample **sample_ptrs = calloc(n + 1, sizeof(*sample_ptrs));
	Location **locs = calloc(p->n_location + 1, sizeof(*locs));
	Function *fns = calloc(p->n_function + 1, sizeof(*fns));
	Function **fn_ptrs = calloc(p->n_function + 1, sizeof(*fn_ptrs));
	Mapping *maps = calloc(p->n_mapping + 1, sizeof(*maps));
	Mapping **map_ptrs = calloc(p->n_mapping + 1, sizeof(*map_ptrs));
	ValueType *vts = calloc(p->n_sample_type + 1, sizeof(*vts));
	ValueType **vt_ptrs = calloc(p->n_sample_type + 1, sizeof(*vt_ptrs));
	ValueType period_type;
	size_t total_labels = 0;
	Label *labels = NULL;
	Label **label_ptrs = NULL;
	int64_t *comments = calloc(p->n_comment + 1, sizeof(*comments));

	sm.map = malloc((p->n_string_table + 1) * sizeof(*sm.map));
	sm.strs = calloc(p->n_string_table + 1, sizeof(*sm.strs));
	for (size_t i = from; i < to; i++)
		total_labels += p->sample[i]->n_label;
	labels = calloc(total_labels + 1, sizeof(*labels));
	label_ptrs = calloc(total_labels + 1, sizeof(*label_ptrs));
	if (!use_loc || !use_fn || !use_map || !samples || !sample_ptrs || !locs || !fns ||
	    !fn_ptrs || !maps || !map_ptrs || !vts || !vt_ptrs || !sm.map || !sm.strs || !labels ||
	    !label_ptrs || !comments)
		goto out;
	for (size_t i = 0; i < p->n_string_table; i++)
		sm.map[i] = -1;
	sm.map[0] = 0;
	sm.strs[0] = (char *)"";
	sm.n = 1;

	/* What the samples use. */
	for (size_t i = from; i < to; i++) {
		const Sample *s = p->sample[i];
		for (size_t k = 0; k < s->n_location_id; k++) {
			size_t li;
			if (!id_index_find(&v->locs, s->location_id[k], &li) || use_loc[li])
				continue;
			use_loc[li] = true;
			const Location *loc = p->location[li];
			for (size_t m = 0; m < p->n_mapping; m++)
				if (p->mapping[m]->id == loc->mapping_id)
					use_map[m] = true;
			for (size_t ln = 0; ln < loc->n_line; ln++) {
				size_t fi;
				if (id_index_find(&v->fns, loc->line[ln]->function_id, &fi))
					use_fn[fi] = true;
			}
		}
	}
	/* Copies with their strings remapped, in the original order (ids unchanged). */
	for (size_t i = 0; i < p->n_sample_type; i++) {
		vts[i] = *p->sample_type[i];
		vts[i].type = remap_str(&sm, vts[i].type);
		vts[i].unit = remap_str(&sm, vts[i].unit);
		vt_ptrs[i] = &vts[i];
	}
	part.sample_type = vt_ptrs;
	if (p->period_type) {
		period_type = *p->period_type;
		period_type.type = remap_str(&sm, period_type.type);
		period_type.unit = remap_str(&sm, period_type.unit);
		part.period_type = &period_type;
	}
	for (size_t i = from; i < to; i++) {
		const Sample *s = p->sample[i];
		Sample *d = &samples[i - from];
		*d = *s;
		d->label = &label_ptrs[n_lab];
		for (size_t l = 0; l < s->n_label; l++) {
			labels[n_lab] = *s->label[l];
			labels[n_lab].key = remap_str(&sm, labels[n_lab].key);
			labels[n_lab].str = remap_str(&sm, labels[n_lab].str);
			labels[n_lab].num_unit = remap_str(&sm, labels[n_lab].num_unit);
			label_ptrs[n_lab] = &labels[n_lab];
			n_lab++;
		}
		sample_ptrs[i - from] = d;
	}
	part.sample = sample_ptrs;
	part.n_sample = n;
	for (size_t i = 0; i < p->n_location; i++)
		if (use_loc[i])
			locs[n_loc++] = p->location[i];
	part.location = locs;
	part.n_location = n_loc;
	for (size_t i = 0; i < p->n_function; i++) {
		if (!use_fn[i])
			continue;
		fns[n_fn] = *p->function[i];
		fns[n_fn].name = remap_str(&sm, fns[n_fn].name);
		fns[n_fn].system_name = remap_str(&sm, fns[n_fn].system_name);
		fns[n_fn].filename = remap_str(&sm, fns[n_fn].filename);
		fn_ptrs[n_fn] = &fns[n_fn];
		n_fn++;
	}
	part.function = fn_ptrs;
	part.n_function = n_fn;
	for (size_t i = 0; i < p->n_mapping; i++) {
		if (!use_map[i])
			continue;
		maps[n_map] = *p->mapping[i];
		maps[n_map].filename = remap_str(&sm, maps[n_map].filename);
		maps[n_map].build_id = remap_str(&sm, maps[n_map].build_id);
		map_ptrs[n_map] = &maps[n_map];
		n_map++;
	}
	part.mapping = map_ptrs;
	part.n_mapping = n_map;
	for (size_t i = 0; i < p->n_comment; i++)
		comments[i] = remap_str(&sm, p->comment[i]);
	part.comment = comments;
	part.drop_frames = remap_str(&sm, p->drop_frames);
	part.keep_frames = remap_str(&sm, p->keep_frames);
	part.default_sample_type = remap_str(&sm, p->default_sample_type);
	part.string_table = sm.strs;
	part.n_string_table = sm.n;

	*ret_len = perftools__profiles__profile__get_packed_size(&part);
	*ret = malloc(*ret_len ? *ret_len : 1);
	if (*ret) {
		perftools__profiles__profile__pack(&part, *ret);
		r = 0;
	}
out:
	free(use_loc);
	free(use_fn);
	free(use_map);
	free(samples);
	free(sample_ptrs);
	free(locs);
	free(fns);
	free(fn_ptrs);
	free(maps);
	free(map_ptrs);
	free(vts);
	free(vt_ptrs);
	free(labels);
	free(label_ptrs);
	free(comments);
	free(sm.map);
	free(sm.strs);
	return r;
}

int output_split_pprof(const uint8_t *gz, size_t gz_len, size_t max_samples, size_t max_bytes,
		       output_part_fn emit, void *userdata, struct output_split_stats *ret_stats)
{
	_cleanup_free_ uint8_t *raw = NULL;
	struct output_split_stats st = {};
	Profile *p = NULL;
	struct view v;
	size_t raw_len, from = 0;
	int r;

	if (!gz || !emit || max_samples == 0 || max_bytes == 0)
		return -EINVAL;
	if (gz_len < 2 || gz[0] != 0x1f || gz[1] != 0x8b)
		return -EBADMSG;
	r = gunzip(gz, gz_len, &raw, &raw_len);
	if (r < 0)
		return r;
	p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	if (!p)
		return -EBADMSG;
	if (p->n_sample <= max_samples && raw_len <= max_bytes) {
		perftools__profiles__profile__free_unpacked(p, NULL);
		st.parts = 1;
		if (ret_stats)
			*ret_stats = st;
		return emit(userdata, gz, gz_len);
	}
	r = view_init(&v, p, NULL);
	if (r < 0) {
		perftools__profiles__profile__free_unpacked(p, NULL);
		return r;
	}
	while (from < p->n_sample && r >= 0) {
		size_t k = MIN(max_samples, p->n_sample - from);
		uint8_t *packed = NULL, *part_gz = NULL;
		size_t packed_len, part_gz_len;

		/* Halve until the part fits; a single sample too big for any part is dropped. */
		for (;;) {
			r = build_part(p, &v, from, from + k, &packed, &packed_len);
			if (r < 0 || packed_len <= max_bytes || k == 1)
				break;
			free(packed);
			packed = NULL;
			k = (k + 1) / 2;
		}
		if (r < 0)
			break;
		if (packed_len > max_bytes) {
			st.dropped_samples++;
		} else {
			r = gzip_bytes(packed, packed_len, &part_gz, &part_gz_len);
			if (r >= 0)
				r = emit(userdata, part_gz, part_gz_len);
			if (r >= 0)
				st.parts++;
			free(part_gz);
		}
		free(packed);
		from += k;
	}
	view_done(&v);
	perftools__profiles__profile__free_unpacked(p, NULL);
	if (ret_stats)
		*ret_stats = st;
	return r < 0 ? r : 0;
}
