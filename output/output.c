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
#include "common/grow.h"
#include "common/hash.h"
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
			int r = grow((void **)&out, &cap, cap + 1, 1, OUTPUT_MAX_PPROF_BYTES);

			if (r < 0) {
				zr = r == -E2BIG ? Z_BUF_ERROR : Z_MEM_ERROR;
				break;
			}
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

/* Folded lines by their stack text (which a profile's names chose: hashed with a seed). */
struct fold_map {
	struct fold_line *lines;
	size_t n, cap_lines;
	struct hash_index index; /* ids: lines index + 1 */
	struct hash_seed seed;
};

static bool fold_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct fold_map *m = ctx;

	return strcmp(m->lines[id - 1].stack, key) == 0;
}

/* Takes ownership of stack. */
static int fold_add(struct fold_map *m, char *stack, uint64_t count)
{
	uint64_t h = hash_bytes(&m->seed, stack, strlen(stack));
	struct hash_slot *slot;
	int r;

	r = hash_index_reserve(&m->index, UINT32_MAX - 1);
	if (r >= 0)
		r = GROW_ARRAY(m->lines, m->cap_lines, m->n + 1, GROW_NO_LIMIT);
	if (r < 0) {
		free(stack);
		return r;
	}
	slot = hash_index_find(&m->index, h, fold_eq, m, stack);
	if (slot->id) {
		m->lines[slot->id - 1].count += count;
		free(stack);
		return 0;
	}
	m->lines[m->n++] = (struct fold_line){ .stack = stack, .count = count };
	hash_index_insert(&m->index, slot, m->n, h);
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

	hash_seed_init(&m.seed);

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
		/* The index is done with: sorting moves the lines under it. */
		qsort(m.lines, m.n, sizeof(*m.lines), cmp_fold);
		for (size_t i = 0; i < m.n; i++)
			fprintf(out, "%s %" PRIu64 "\n", m.lines[i].stack, m.lines[i].count);
	}
	for (size_t i = 0; i < m.n; i++)
		free(m.lines[i].stack);
	free(m.lines);
	hash_index_free(&m.index);
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

/* Frames by key, numbered as first seen (the speedscope frame index). */
struct frame_map {
	struct frame_key *keys; /* by frame index */
	size_t n, cap_keys;
	struct hash_index index; /* ids: frame index + 1 */
	struct hash_seed seed;   /* the keys are a profile file's numbers */
};

static bool frame_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct frame_map *m = ctx;
	const struct frame_key *k = key;

	return m->keys[id - 1].fn_id == k->fn_id && m->keys[id - 1].line == k->line;
}

/* Index of the frame, added when new. */
static int frame_index(struct frame_map *m, const struct frame_key *key, bool *ret_new,
		       uint32_t *ret)
{
	uint64_t h = hash_bytes(&m->seed, key, sizeof(*key));
	struct hash_slot *slot;
	int r;

	r = hash_index_reserve(&m->index, UINT32_MAX - 1);
	if (r < 0)
		return r;
	slot = hash_index_find(&m->index, h, frame_eq, m, key);
	if (slot->id) {
		*ret_new = false;
		*ret = slot->id - 1;
		return 0;
	}
	r = GROW_ARRAY(m->keys, m->cap_keys, m->n + 1, GROW_NO_LIMIT);
	if (r < 0)
		return r;
	m->keys[m->n++] = *key;
	hash_index_insert(&m->index, slot, m->n, h);
	*ret_new = true;
	*ret = m->n - 1;
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
			r = grow((void **)stack, cap, n + 1, sizeof(**stack), GROW_NO_LIMIT);
			if (r < 0)
				return r;
			(*stack)[n++] = idx;
		}
	}
	*ret_n = n;
	return 0;
}

/* What write_speedscope() keeps between its two passes. */
struct speedscope {
	const struct view *v;
	struct frame_map fm;
	struct thread_list tl;
	size_t *thread_of; /* by sample: index into tl, SIZE_MAX when left out */
	uint32_t *stack;   /* one sample's frame indexes, root first */
	size_t stack_cap;
};

/* The thread of sample s (pid, tid), added when new; past OUTPUT_MAX_THREADS, "other threads". */
static int thread_of_sample(struct speedscope *sc, const Sample *s, size_t *other, size_t *ret)
{
	const struct view *v = sc->v;
	struct thread_list *tl = &sc->tl;
	int64_t pid = label_num(v, s, v->key_pid), tid = label_num(v, s, v->key_tid);
	size_t t;
	int r;

	for (t = 0; t < tl->n; t++)
		if (tl->t[t].pid == pid && tl->t[t].tid == tid)
			break;
	if (t == tl->n && tl->n >= OUTPUT_MAX_THREADS) {
		if (*other == SIZE_MAX)
			*other = tl->n;
		else
			t = *other;
	}
	if (t == tl->n) {
		r = GROW_ARRAY(tl->t, tl->cap, tl->n + 1, GROW_NO_LIMIT);
		if (r < 0)
			return r;
		tl->t[tl->n++] = (struct thread){
		    .pid = t == *other ? -2 : pid, .tid = t == *other ? -2 : tid, .first = s};
	}
	*ret = t;
	return 0;
}

/* Pass 1: frames (written to out as first seen) and the threads with their weights. */
static int speedscope_frames_and_threads(struct speedscope *sc, FILE *out)
{
	const Profile *p = sc->v->p;
	size_t n_frames = 0, n, other = SIZE_MAX;
	int r = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Sample *s = p->sample[i];
		int64_t w = sample_weight(sc->v, s);
		size_t t;

		sc->thread_of[i] = SIZE_MAX;
		if (w <= 0)
			continue;
		r = sample_frames(sc->v, &sc->fm, s, &sc->stack, &sc->stack_cap, &n, out, &n_frames);
		if (r < 0)
			return r;
		r = thread_of_sample(sc, s, &other, &t);
		if (r < 0)
			return r;
		sc->tl.t[t].weight += w;
		sc->tl.t[t].n_samples++;
		sc->thread_of[i] = t;
	}
	return 0;
}

/* Pass 2: one sampled profile for thread t (tl.t[t]). */
static int speedscope_thread(struct speedscope *sc, size_t t, const char *unit, FILE *out)
{
	const struct view *v = sc->v;
	const Profile *p = v->p;
	const struct thread *th = &sc->tl.t[t];
	char *name = NULL;
	bool first = true;
	size_t n;
	int r;

	if (th->pid == -2)
		name = strdup("other threads");
	else if (th->pid < 0 && th->tid < 0)
		name = strdup("all");
	else if (asprintf(&name, "%s pid %" PRId64 " / %s tid %" PRId64,
			  label_str(v, th->first, v->key_process), th->pid,
			  label_str(v, th->first, v->key_comm), th->tid) < 0)
		name = NULL;
	if (!name)
		return -ENOMEM;
	fputs("{\"type\":\"sampled\",\"name\":", out);
	json_str(out, name);
	free(name);
	fprintf(out, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRId64 ",\"samples\":[",
		unit, th->weight);
	for (size_t i = 0; i < p->n_sample; i++) {
		if (sc->thread_of[i] != t)
			continue;
		r = sample_frames(v, &sc->fm, p->sample[i], &sc->stack, &sc->stack_cap, &n, NULL,
				  NULL);
		if (r < 0)
			return r;
		fputs(first ? "[" : ",[", out);
		first = false;
		for (size_t j = 0; j < n; j++)
			fprintf(out, j ? ",%" PRIu32 : "%" PRIu32, sc->stack[j]);
		fputc(']', out);
	}
	fputs("],\"weights\":[", out);
	first = true;
	for (size_t i = 0; i < p->n_sample; i++) {
		if (sc->thread_of[i] != t)
			continue;
		fprintf(out, first ? "%" PRId64 : ",%" PRId64, sample_weight(v, p->sample[i]));
		first = false;
	}
	fputs("]}", out);
	return 0;
}

static int write_speedscope(const struct view *v, FILE *out)
{
	const Profile *p = v->p;
	struct speedscope sc = { .v = v };
	_cleanup_free_ struct thread *sorted = NULL;
	const char *unit = "none";
	int r;

	sc.thread_of = calloc(p->n_sample ? p->n_sample : 1, sizeof(size_t));
	if (!sc.thread_of)
		return -ENOMEM;
	hash_seed_init(&sc.fm.seed);
	if (v->value < p->n_sample_type)
		unit = speedscope_unit(pb_str(p, p->sample_type[v->value]->unit));

	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
	      "\"exporter\":\"profd\",\"name\":\"profd\",\"activeProfileIndex\":0,"
	      "\"shared\":{\"frames\":[",
	      out);
	r = speedscope_frames_and_threads(&sc, out);
	fputs("]},\"profiles\":[", out);
	if (r < 0)
		goto out;

	/* Heaviest first; thread_of[] indexes the unsorted list, so sort an order instead. */
	sorted = malloc((sc.tl.n ? sc.tl.n : 1) * sizeof(*sorted));
	if (!sorted) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t t = 0; t < sc.tl.n; t++) {
		sorted[t] = sc.tl.t[t];
		sorted[t].n_samples = t; /* remember the unsorted index */
	}
	qsort(sorted, sc.tl.n, sizeof(*sorted), cmp_thread_weight);
	for (size_t k = 0; k < sc.tl.n; k++) {
		if (k)
			fputc(',', out);
		r = speedscope_thread(&sc, sorted[k].n_samples, unit, out);
		if (r < 0)
			goto out;
	}
	fputs("]}\n", out);
out:
	free(sc.fm.keys);
	hash_index_free(&sc.fm.index);
	free(sc.tl.t);
	free(sc.thread_of);
	free(sc.stack);
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

/* The arrays one part's Profile points into (build_part()). */
struct part {
	const Profile *p;
	size_t from, to;
	Profile msg;
	struct str_remap sm;
	bool *use_loc, *use_fn, *use_map; /* by index in p */
	Sample *samples, **sample_ptrs;
	Location **locs;
	Function *fns, **fn_ptrs;
	Mapping *maps, **map_ptrs;
	ValueType *vts, **vt_ptrs, period_type;
	Label *labels, **label_ptrs;
	int64_t *comments;
};

static void part_free(struct part *pt)
{
	free(pt->use_loc);
	free(pt->use_fn);
	free(pt->use_map);
	free(pt->samples);
	free(pt->sample_ptrs);
	free(pt->locs);
	free(pt->fns);
	free(pt->fn_ptrs);
	free(pt->maps);
	free(pt->map_ptrs);
	free(pt->vts);
	free(pt->vt_ptrs);
	free(pt->labels);
	free(pt->label_ptrs);
	free(pt->comments);
	free(pt->sm.map);
	free(pt->sm.strs);
}

static int part_alloc(struct part *pt)
{
	const Profile *p = pt->p;
	size_t n = pt->to - pt->from, total_labels = 0;

	for (size_t i = pt->from; i < pt->to; i++)
		total_labels += p->sample[i]->n_label;
	pt->use_loc = calloc(p->n_location + 1, 1);
	pt->use_fn = calloc(p->n_function + 1, 1);
	pt->use_map = calloc(p->n_mapping + 1, 1);
	pt->samples = calloc(n + 1, sizeof(*pt->samples));
	pt->sample_ptrs = calloc(n + 1, sizeof(*pt->sample_ptrs));
	pt->locs = calloc(p->n_location + 1, sizeof(*pt->locs));
	pt->fns = calloc(p->n_function + 1, sizeof(*pt->fns));
	pt->fn_ptrs = calloc(p->n_function + 1, sizeof(*pt->fn_ptrs));
	pt->maps = calloc(p->n_mapping + 1, sizeof(*pt->maps));
	pt->map_ptrs = calloc(p->n_mapping + 1, sizeof(*pt->map_ptrs));
	pt->vts = calloc(p->n_sample_type + 1, sizeof(*pt->vts));
	pt->vt_ptrs = calloc(p->n_sample_type + 1, sizeof(*pt->vt_ptrs));
	pt->labels = calloc(total_labels + 1, sizeof(*pt->labels));
	pt->label_ptrs = calloc(total_labels + 1, sizeof(*pt->label_ptrs));
	pt->comments = calloc(p->n_comment + 1, sizeof(*pt->comments));
	pt->sm = (struct str_remap){ .p = p };
	pt->sm.map = malloc((p->n_string_table + 1) * sizeof(*pt->sm.map));
	pt->sm.strs = calloc(p->n_string_table + 1, sizeof(*pt->sm.strs));
	if (!pt->use_loc || !pt->use_fn || !pt->use_map || !pt->samples || !pt->sample_ptrs ||
	    !pt->locs || !pt->fns || !pt->fn_ptrs || !pt->maps || !pt->map_ptrs || !pt->vts ||
	    !pt->vt_ptrs || !pt->sm.map || !pt->sm.strs || !pt->labels || !pt->label_ptrs ||
	    !pt->comments)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_string_table; i++)
		pt->sm.map[i] = -1;
	pt->sm.map[0] = 0;
	pt->sm.strs[0] = (char *)"";
	pt->sm.n = 1;
	return 0;
}

/* What the part's samples use: locations, their mappings and functions. */
static void part_mark_used(struct part *pt, const struct view *v)
{
	const Profile *p = pt->p;

	for (size_t i = pt->from; i < pt->to; i++) {
		const Sample *s = p->sample[i];
		for (size_t k = 0; k < s->n_location_id; k++) {
			size_t li;
			if (!id_index_find(&v->locs, s->location_id[k], &li) || pt->use_loc[li])
				continue;
			pt->use_loc[li] = true;
			const Location *loc = p->location[li];
			for (size_t m = 0; m < p->n_mapping; m++)
				if (p->mapping[m]->id == loc->mapping_id)
					pt->use_map[m] = true;
			for (size_t ln = 0; ln < loc->n_line; ln++) {
				size_t fi;
				if (id_index_find(&v->fns, loc->line[ln]->function_id, &fi))
					pt->use_fn[fi] = true;
			}
		}
	}
}

/* The sample types, the period type and the samples with their labels, strings remapped. */
static void part_copy_samples(struct part *pt)
{
	const Profile *p = pt->p;
	size_t n_lab = 0;

	for (size_t i = 0; i < p->n_sample_type; i++) {
		pt->vts[i] = *p->sample_type[i];
		pt->vts[i].type = remap_str(&pt->sm, pt->vts[i].type);
		pt->vts[i].unit = remap_str(&pt->sm, pt->vts[i].unit);
		pt->vt_ptrs[i] = &pt->vts[i];
	}
	pt->msg.sample_type = pt->vt_ptrs;
	if (p->period_type) {
		pt->period_type = *p->period_type;
		pt->period_type.type = remap_str(&pt->sm, pt->period_type.type);
		pt->period_type.unit = remap_str(&pt->sm, pt->period_type.unit);
		pt->msg.period_type = &pt->period_type;
	}
	for (size_t i = pt->from; i < pt->to; i++) {
		const Sample *s = p->sample[i];
		Sample *d = &pt->samples[i - pt->from];
		*d = *s;
		d->label = &pt->label_ptrs[n_lab];
		for (size_t l = 0; l < s->n_label; l++) {
			Label *lb = &pt->labels[n_lab];

			*lb = *s->label[l];
			lb->key = remap_str(&pt->sm, lb->key);
			lb->str = remap_str(&pt->sm, lb->str);
			lb->num_unit = remap_str(&pt->sm, lb->num_unit);
			pt->label_ptrs[n_lab++] = lb;
		}
		pt->sample_ptrs[i - pt->from] = d;
	}
	pt->msg.sample = pt->sample_ptrs;
	pt->msg.n_sample = pt->to - pt->from;
}

/* The used locations, functions and mappings, the comments and the string table. */
static void part_copy_tables(struct part *pt)
{
	const Profile *p = pt->p;
	size_t n_loc = 0, n_fn = 0, n_map = 0;

	for (size_t i = 0; i < p->n_location; i++)
		if (pt->use_loc[i])
			pt->locs[n_loc++] = p->location[i];
	pt->msg.location = pt->locs;
	pt->msg.n_location = n_loc;
	for (size_t i = 0; i < p->n_function; i++) {
		if (!pt->use_fn[i])
			continue;
		pt->fns[n_fn] = *p->function[i];
		pt->fns[n_fn].name = remap_str(&pt->sm, pt->fns[n_fn].name);
		pt->fns[n_fn].system_name = remap_str(&pt->sm, pt->fns[n_fn].system_name);
		pt->fns[n_fn].filename = remap_str(&pt->sm, pt->fns[n_fn].filename);
		pt->fn_ptrs[n_fn] = &pt->fns[n_fn];
		n_fn++;
	}
	pt->msg.function = pt->fn_ptrs;
	pt->msg.n_function = n_fn;
	for (size_t i = 0; i < p->n_mapping; i++) {
		if (!pt->use_map[i])
			continue;
		pt->maps[n_map] = *p->mapping[i];
		pt->maps[n_map].filename = remap_str(&pt->sm, pt->maps[n_map].filename);
		pt->maps[n_map].build_id = remap_str(&pt->sm, pt->maps[n_map].build_id);
		pt->map_ptrs[n_map] = &pt->maps[n_map];
		n_map++;
	}
	pt->msg.mapping = pt->map_ptrs;
	pt->msg.n_mapping = n_map;
	for (size_t i = 0; i < p->n_comment; i++)
		pt->comments[i] = remap_str(&pt->sm, p->comment[i]);
	pt->msg.comment = pt->comments;
	pt->msg.drop_frames = remap_str(&pt->sm, p->drop_frames);
	pt->msg.keep_frames = remap_str(&pt->sm, p->keep_frames);
	pt->msg.default_sample_type = remap_str(&pt->sm, p->default_sample_type);
	pt->msg.string_table = pt->sm.strs;
	pt->msg.n_string_table = pt->sm.n;
}

/*
 * Samples [from, to) of p as a profile of their own: the locations, functions and mappings
 * they use, and the strings those use (copied in the original order, ids unchanged). Packed
 * (not gzipped) into *ret.
 */
static int build_part(const Profile *p, const struct view *v, size_t from, size_t to, uint8_t **ret,
		      size_t *ret_len)
{
	struct part pt = { .p = p, .from = from, .to = to, .msg = *p };
	int r;

	r = part_alloc(&pt);
	if (r >= 0) {
		part_mark_used(&pt, v);
		/* Strings are numbered as first remapped: this order fixes the part's bytes. */
		part_copy_samples(&pt);
		part_copy_tables(&pt);
		*ret_len = perftools__profiles__profile__get_packed_size(&pt.msg);
		*ret = malloc(*ret_len ? *ret_len : 1);
		if (*ret)
			perftools__profiles__profile__pack(&pt.msg, *ret);
		else
			r = -ENOMEM;
	}
	part_free(&pt);
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
