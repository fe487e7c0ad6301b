// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "common/grow.h"
#include "common/macro.h"
#include "common/util.h"
#include "pipeline/cgroup.h"
#include "pipeline/jitmap.h"
#include "pipeline/python/python.h"
#include "pipeline/session.h"
#include "pipeline/stacksize.h"
#include "pipeline/unwind/unwind-cache.h"

struct session_tap {
	struct aggregate *agg;
	struct session_tap_filter f;
	uint32_t gen;         /* session aggregate generation the tables below translate */
	uint32_t *map_xlat;   /* session mapping id - AGG_MAP_FIRST → tap mapping id (0: not yet) */
	size_t map_xlat_cap;
	uint16_t *cont_xlat;  /* session container index → tap container index */
	struct agg_stack *scratch;
};

_Static_assert(AGG_CONTAINER_ID_MAX == CGROUP_ID_MAX, "a container id fits its label");
_Static_assert(AGG_MAX_FRAMES >= PROFD_MAX_KSTACK + UNWIND_MAX_DEPTH_LIMIT,
	       "an aggregate must hold the deepest stack a sample can give");

struct session {
	struct session_config cfg;
	struct session_tap *taps[SESSION_MAX_TAPS];
	size_t n_taps;
	struct proc_table *procs;
	struct unwind_cache *unwind_cache;
	struct aggregate *agg;
	uint32_t agg_gen; /* bumped when the aggregate is replaced: invalidates mapping tags */
	struct session_stats st;
	struct unwind_frame *frames;
	/* room for PROFD_MAX_KSTACK + max_depth + Python frames, markers, a no-process frame */
	struct agg_stack *scratch;
	struct py_procs *py;       /* NULL with cfg.no_python */
	struct stack_sizer *sizer; /* NULL without hooks.on_stack_size */
	struct jitmaps *jit;       /* NULL without cfg.perf_maps */
	struct py_code *py_held[PROFD_PY_MAX_FRAMES]; /* codes the scratch stack points to */
	size_t n_py_held;
	/* "[python: N frames not read]" by N (made when first needed) */
	struct py_code *py_gap_marks[PROFD_PY_MAX_WALK + 1];
};

/* Stands in for a code object that could not be read. Never freed: its first reference stays. */
static struct py_code py_unknown_code = {
	.refs = 1, .qualname = (char *)"[python]", .filename = (char *)"",
};

/*
 * Stands in for an interpreter call whose Python frames were all walked but not kept (a
 * gap's count is named once, at the call where the gap starts), or lie past the end of the
 * walk (their number is unknown). Never freed.
 */
static struct py_code py_not_read_code = {
	.refs = 1, .qualname = (char *)"[python: frames not read]", .filename = (char *)"",
};

static void on_sideband_map(void *userdata, struct proc *p, const char *path);

int session_new(const struct session_config *cfg, struct session **ret)
{
	struct session *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	if (cfg)
		s->cfg = *cfg;
	if (s->cfg.max_depth == 0)
		s->cfg.max_depth = UNWIND_MAX_DEPTH_DEFAULT;
	if (s->cfg.max_depth > UNWIND_MAX_DEPTH_LIMIT)
		s->cfg.max_depth = UNWIND_MAX_DEPTH_LIMIT;
	s->frames = calloc(s->cfg.max_depth, sizeof(*s->frames));
	s->scratch = malloc(sizeof(*s->scratch) + (PROFD_MAX_KSTACK + s->cfg.max_depth + 4 +
						   PROFD_PY_MAX_FRAMES) * sizeof(struct agg_frame));
	if (!s->frames || !s->scratch) {
		r = -ENOMEM;
		goto fail;
	}
	r = proc_table_new("/proc", &s->procs);
	if (r < 0)
		goto fail;
	proc_table_set_sideband_map_hook(s->procs, on_sideband_map, s);
	r = unwind_cache_new(s->cfg.unwind_cache_bytes, &s->unwind_cache);
	if (r < 0)
		goto fail;
	r = aggregate_new(&s->agg);
	if (r < 0)
		goto fail;
	if (!s->cfg.no_python) {
		r = py_procs_new(&s->py);
		if (r < 0)
			goto fail;
	}
	if (s->cfg.hooks.on_stack_size) {
		r = stack_sizer_new(s->cfg.hooks.on_stack_size, s->cfg.hooks.userdata, &s->sizer);
		if (r < 0)
			goto fail;
	}
	if (s->cfg.perf_maps) {
		r = jitmaps_new("/proc", &s->jit);
		if (r < 0)
			goto fail;
	}
	if (s->cfg.container_ids) {
		r = proc_table_enable_container_ids(s->procs);
		if (r < 0)
			goto fail;
	}
	s->agg_gen = 1;
	*ret = s;
	return 0;
fail:
	session_free(s);
	return r;
}

static void tap_free(struct session_tap *t)
{
	if (!t)
		return;
	free(t->map_xlat);
	free(t->cont_xlat);
	free(t->scratch);
	free(t);
}

int session_set_python(struct session *s, bool on)
{
	int r;

	if (on == !s->cfg.no_python)
		return 0;
	if (!on) {
		py_procs_free(s->py);
		s->py = NULL;
		s->cfg.no_python = true;
		return 0;
	}
	r = py_procs_new(&s->py);
	if (r < 0)
		return r;
	s->cfg.no_python = false;
	return 0;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_taps; i++)
		tap_free(s->taps[i]);
	aggregate_free(s->agg);
	jitmaps_free(s->jit);
	py_procs_free(s->py);
	for (size_t i = 0; i < ARRAY_SIZE(s->py_gap_marks); i++)
		py_code_unref(s->py_gap_marks[i]);
	stack_sizer_free(s->sizer);
	proc_table_free(s->procs);
	unwind_cache_free(s->unwind_cache);
	free(s->frames);
	free(s->scratch);
	free(s);
}

struct find_ctx {
	struct session *s;
	struct proc *p;
};

static int find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	struct find_ctx *c = userdata;
	const struct mapping *m = proc_find_mapping(c->s->procs, c->p, pc);

	struct unwind_key key;

	if (!m)
		return -ENOENT;
	*ret = (struct unwind_module){ .start = m->start, .end = m->end };
	if (!m->dso || !m->dso->is_elf || m->dso->fd < 0)
		return 0; /* anonymous/JIT code: frame pointers only */
	/* Keyed by the file this process maps (fstat'ed once per dso), not its build-id alone. */
	unwind_key_make(m->dso->build_id, m->dso->build_id_len, m->dso->file_id.dev,
			m->dso->file_id.ino, m->dso->file_id.size, m->dso->file_id.mtime_ns, &key);
	/* A binary without usable CFI still is a mapping: the frame pointer may walk it. */
	(void)unwind_cache_module(c->s->unwind_cache, &key, m->dso->fd, m->start, m->end, m->pgoff,
				  ret);
	ret->start = m->start;
	ret->end = m->end;
	return 0;
}

/*
 * Interned mapping id for the mapping holding pc, cached in the mapping's user tag. *ret_anon:
 * the mapping is anonymous executable memory (JIT code), if ret_anon is not NULL.
 */
static uint32_t frame_map_id(struct session *s, struct proc *p, uint64_t pc, bool *ret_anon)
{
	struct mapping *m = (struct mapping *)proc_find_mapping(s->procs, p, pc);
	uint32_t id;

	if (ret_anon)
		*ret_anon = m && m->kind == MAPPING_ANON && !m->dso;
	if (!m)
		return AGG_MAP_NONE;
	if ((uint32_t)(m->user_tag >> 32) == s->agg_gen)
		return (uint32_t)m->user_tag;
	if (aggregate_intern_mapping(s->agg, m, &id) < 0)
		return AGG_MAP_NONE;
	m->user_tag = ((uint64_t)s->agg_gen << 32) | id;
	return id;
}

/*
 * The container label of pid in the session's aggregate (0: none), interned once per aggregate
 * generation and cached in the entry's user tag (generation << 32 | index).
 */
static uint16_t container_index(struct session *s, uint32_t pid)
{
	struct cgroup_pid *c = proc_table_container(s->procs, pid);
	uint16_t idx;

	if (!c || !c->id[0])
		return 0;
	if ((uint32_t)(c->user_tag >> 32) != s->agg_gen) {
		if (aggregate_intern_container(s->agg, c->id, &idx) < 0)
			idx = 0; /* over the limit: the sample stays, unlabeled */
		c->user_tag = (uint64_t)s->agg_gen << 32 | idx;
	}
	return (uint16_t)c->user_tag;
}

/* Copy a stack of the session's aggregate into a tap, translating mapping and container ids. */
static void tap_feed(struct session *s, struct session_tap *t, const struct agg_stack *st,
		     uint32_t uid, struct jitmap *jm)
{
	struct agg_stack *ts = t->scratch;
	size_t skip = 0;

	if (t->f.pid && st->pid != t->f.pid)
		return;
	if (t->f.by_uid && (uid == PROFD_UID_NONE || uid != t->f.uid))
		return;
	if (t->gen != s->agg_gen) {
		/* The session's aggregate was replaced: its ids start over. */
		if (t->map_xlat)
			memset(t->map_xlat, 0, t->map_xlat_cap * sizeof(*t->map_xlat));
		memset(t->cont_xlat, 0, (AGG_MAX_CONTAINERS + 1) * sizeof(*t->cont_xlat));
		t->gen = s->agg_gen;
	}
	if (t->f.no_kernel)
		while (skip < st->n_frames && st->frames[skip].map_id == AGG_MAP_KERNEL)
			skip++;
	memcpy(ts, st, sizeof(*st));
	ts->n_frames = st->n_frames - skip;
	memcpy(ts->frames, st->frames + skip, ts->n_frames * sizeof(st->frames[0]));
	for (size_t i = 0; i < ts->n_frames; i++) {
		uint32_t id = ts->frames[i].map_id, k;
		const struct agg_mapping *am;

		if (id < AGG_MAP_FIRST)
			continue;
		k = id - AGG_MAP_FIRST;
		if (k >= t->map_xlat_cap) {
			size_t old = t->map_xlat_cap;

			if (GROW_ARRAY(t->map_xlat, t->map_xlat_cap, (size_t)k + 1, GROW_NO_LIMIT) < 0) {
				ts->frames[i].map_id = AGG_MAP_NONE;
				continue;
			}
			memset(t->map_xlat + old, 0, (t->map_xlat_cap - old) * sizeof(*t->map_xlat));
		}
		if (!t->map_xlat[k] && (am = aggregate_mapping(s->agg, id))) {
			struct mapping m = { .start = am->start, .end = am->end, .pgoff = am->pgoff,
					     .kind = am->kind, .dso = am->dso, .name = am->name,
					     .is_exe = am->is_exe };

			if (aggregate_intern_mapping(t->agg, &m, &t->map_xlat[k]) < 0)
				t->map_xlat[k] = 0;
		}
		ts->frames[i].map_id = t->map_xlat[k] ? t->map_xlat[k] : AGG_MAP_NONE;
	}
	if (ts->container) {
		uint16_t *x = &t->cont_xlat[ts->container];
		const char *id = aggregate_container(s->agg, ts->container);

		if (!*x && id && aggregate_intern_container(t->agg, id, x) < 0)
			*x = 0;
		ts->container = *x;
	}
	(void)aggregate_add(t->agg, ts, ts->state ? 0 : 1); /* state: an off-CPU wait */
	if (jm)
		(void)aggregate_set_jitmap(t->agg, ts->pid, jm, false);
}

int session_tap_add(struct session *s, struct aggregate *a, const struct session_tap_filter *f,
		    struct session_tap **ret)
{
	struct session_tap *t;

	if (s->n_taps >= SESSION_MAX_TAPS)
		return -EBUSY;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->agg = a;
	if (f)
		t->f = *f;
	t->gen = s->agg_gen;
	t->cont_xlat = calloc(AGG_MAX_CONTAINERS + 1, sizeof(*t->cont_xlat));
	t->scratch = malloc(sizeof(*t->scratch) + (PROFD_MAX_KSTACK + s->cfg.max_depth + 4 +
						   PROFD_PY_MAX_FRAMES) * sizeof(struct agg_frame));
	if (!t->cont_xlat || !t->scratch) {
		tap_free(t);
		return -ENOMEM;
	}
	s->taps[s->n_taps++] = t;
	*ret = t;
	return 0;
}

void session_tap_remove(struct session *s, struct session_tap *t)
{
	for (size_t i = 0; i < s->n_taps; i++)
		if (s->taps[i] == t) {
			s->taps[i] = s->taps[--s->n_taps];
			tap_free(t);
			return;
		}
}

/*
 * The CPython state of process p, detected when its maps are new. A Python process the BPF
 * side does not walk yet (bpf_knows false: a new process, or one that just exec'd) is
 * announced through hooks.on_python.
 */
static struct py_proc *python_of(struct session *s, struct proc *p, bool bpf_knows)
{
	struct py_proc *pp;
	bool unsupported = false;

	int rr = s->py ? py_procs_get(s->py, p, &pp, &unsupported) : 0;
	if (rr <= 0) {
		if (unsupported)
			s->st.py_unsupported++;
		return NULL;
	}
	if (!bpf_knows && s->cfg.hooks.on_python) {
		struct profd_py_proc b = {
			.runtime = pp->runtime,
			.runtime_interpreters_head = pp->layout.runtime_interpreters_head,
			.interp_next = pp->layout.interp_next,
			.interp_threads_head = pp->layout.interp_threads_head,
			.tstate_next = pp->layout.tstate_next,
			.tstate_native_thread_id = pp->layout.tstate_native_thread_id,
			.tstate_cframe = pp->layout.tstate_cframe,
			.cframe_current_frame = pp->layout.cframe_current_frame,
			.tstate_current_frame = pp->layout.tstate_current_frame,
			.frame_code = pp->layout.frame_code,
			.frame_previous = pp->layout.frame_previous,
			.frame_instr = pp->layout.frame_instr,
			.frame_owner = pp->layout.frame_owner,
			.frame_is_entry = pp->layout.frame_is_entry,
			.owner_cstack = pp->layout.owner_cstack,
			.code_qualname = PROFD_PY_OFF_NONE,
			.code_filename = pp->layout.code_filename,
			.code_linetable = pp->layout.code_linetable,
		};

		/* Code records only when the fields they follow lie in the head they carry. */
		if ((size_t)pp->layout.code_qualname + 8 <= PROFD_PY_CODE_HEAD &&
		    (size_t)pp->layout.code_filename + 8 <= PROFD_PY_CODE_HEAD &&
		    (size_t)pp->layout.code_linetable + 8 <= PROFD_PY_CODE_HEAD &&
		    (size_t)pp->layout.code_firstlineno + 4 <= PROFD_PY_CODE_HEAD &&
		    (size_t)pp->layout.ob_type + 8 <= PROFD_PY_CODE_HEAD)
			b.code_qualname = pp->layout.code_qualname;

		s->cfg.hooks.on_python(s->cfg.hooks.userdata, (uint32_t)p->pid, &b);
	}
	return pp;
}

/*
 * The side-band stream mapped a new binary into a live process (an exec's executable, a
 * libpython loaded): an interpreter is described to the BPF side now, so the process's first
 * samples already carry Python frames instead of waiting for a sample without them.
 */
static void on_sideband_map(void *userdata, struct proc *p, const char *path)
{
	struct session *s = userdata;

	if (!s->py || !s->cfg.hooks.on_python || !py_maybe_interpreter(path))
		return;
	if (python_of(s, p, false))
		s->st.py_early++;
}

/* One Python frame as an aggregate frame standing in the interpreter's mapping `map_id`. */
static struct agg_frame python_frame(struct session *s, struct py_proc *pp, uint32_t pid,
				     const struct profd_py_frame *f, uint32_t map_id, uint64_t now)
{
	const struct py_code *got = NULL;
	struct py_code *code = &py_unknown_code;
	int32_t line = 0;

	size_t before = py_code_cache_size(pp->codes);
	uint64_t t0 = mono_ns();
	int r = py_code_cache_get(pp->codes, &pp->layout, py_read_process, (void *)(uintptr_t)pid,
				  f->code, pp->code_type, now, &got);

	if (py_code_cache_size(pp->codes) != before) {
		/* A miss: the code object was read from the process. */
		s->st.py_code_reads++;
		s->st.py_code_read_ns += mono_ns() - t0;
	}
	if (r >= 0 && got) {
		code = (struct py_code *)got;
		line = py_code_line(code, f->instr_delta);
	} else {
		s->st.py_bad_code++;
	}
	/* Held until the stack is counted: the cache may drop it before. */
	s->py_held[s->n_py_held++] = py_code_ref(code);
	if (line < 0)
		line = 0;
	if ((uint32_t)line > AGG_FRAME_LINE_MAX)
		line = AGG_FRAME_LINE_MAX;
	return (struct agg_frame){ .code = code, .map_id = map_id, .kind = AGG_FRAME_PYTHON,
				   .line = (uint32_t)line };
}

/* The frame standing in for `n` Python frames walked but not kept (n > 0). */
static struct agg_frame python_gap_frame(struct session *s, uint32_t n, uint32_t map_id)
{
	struct py_code *code = &py_not_read_code;

	if (n < ARRAY_SIZE(s->py_gap_marks)) {
		if (!s->py_gap_marks[n]) {
			struct py_code *c = calloc(1, sizeof(*c));

			if (c && asprintf(&c->qualname, "[python: %" PRIu32 " frames not read]", n) >= 0 &&
			    (c->filename = strdup("")) != NULL) {
				c->refs = 1;
				s->py_gap_marks[n] = c;
			} else if (c) {
				free(c->qualname);
				free(c);
			}
		}
		if (s->py_gap_marks[n])
			code = s->py_gap_marks[n];
	}
	return (struct agg_frame){ .code = code, .map_id = map_id, .kind = AGG_FRAME_PYTHON };
}

/*
 * The Python frames of one sample, consumed by the interpreter frames of its native stack from
 * the leaf: `inner` frames, then (gap) `skipped` frames walked but not kept, of which
 * `skipped_entries` began an interpreter call, then the kept outer frames; past the last one,
 * when the walk was cut, frames of unknown number.
 */
struct py_merge {
	const uint8_t *frames;
	size_t n, inner, next;
	uint32_t skipped, skipped_entries;
	bool gap, gap_named, cut;
};

/*
 * The Python frames that stand in for one interpreter frame (an eval call, `map_id` its
 * mapping): from where the merge stands up to the first frame its call entered with. A call
 * whose frames were not kept gets one marker frame instead. Returns how many went to out.
 */
static size_t python_merge_eval(struct session *s, struct py_merge *m, struct py_proc *pp,
				uint32_t pid, uint32_t map_id, uint64_t now, struct agg_frame *out)
{
	size_t k = 0;

	for (;;) {
		if (m->gap && m->next == m->inner) {
			if (!m->gap_named) {
				out[k++] = python_gap_frame(s, m->skipped, map_id);
				m->gap_named = true;
			} else if (k == 0) {
				out[k++] = python_gap_frame(s, 0xffffffffu, map_id);
			}
			if (m->skipped_entries > 0) {
				/* This call began in the gap. */
				m->skipped_entries--;
				return k;
			}
			m->gap = false; /* the call goes on into the outer frames */
			continue;
		}
		if (m->next < m->n) {
			struct profd_py_frame f;

			memcpy(&f, m->frames + m->next++ * sizeof(f), sizeof(f));
			out[k++] = python_frame(s, pp, pid, &f, map_id, now);
			s->st.py_frames++;
			if (f.flags & PROFD_PY_FRAME_ENTRY)
				return k;
			continue;
		}
		if (m->cut && k == 0) {
			/* Past the end of the walk: this call's frames were never seen. */
			out[k++] = python_gap_frame(s, 0xffffffffu, map_id);
			s->st.py_cut_calls++;
		}
		return k;
	}
}

/* ---- the stages of one sample, in the order handle_sample() runs them ----------------------- */

/* Stage 0: the stack's labels (process, thread, names, off-CPU state), and its count. */
static void stage_begin(struct session *s, const struct profd_sample *rec, struct agg_stack *st)
{
	memset(st, 0, sizeof(*st));
	if (rec->hdr.type == PROFD_REC_OFFCPU) {
		s->st.off_cpu_waits++;
		s->st.off_cpu_ns += rec->off_cpu_ns;
		st->off_cpu_ns = rec->off_cpu_ns;
		/* Never 0: the state tells waits from CPU samples. */
		st->state = rec->state >= PROFD_OFFCPU_SLEEP && rec->state <= PROFD_OFFCPU_OTHER
				    ? rec->state
				    : PROFD_OFFCPU_OTHER;
	} else {
		s->st.samples++;
	}
	st->pid = rec->pid;
	st->tid = rec->tid;
	memcpy(st->comm, rec->comm, sizeof(st->comm));
	memcpy(st->pcomm, rec->pcomm, sizeof(st->pcomm));
	st->comm[sizeof(st->comm) - 1] = '\0';
	st->pcomm[sizeof(st->pcomm) - 1] = '\0';
}

/* Stage 1: the kernel frames, leaf first (unaligned IPs; a 0 ends them). */
static size_t stage_kernel(struct agg_stack *st, const uint8_t *kstack, size_t nk)
{
	size_t n = 0;

	for (size_t i = 0; i < nk; i++) {
		uint64_t ip;

		memcpy(&ip, kstack + i * sizeof(ip), sizeof(ip));
		if (ip == 0)
			break;
		/* Entries after the first are return addresses into the caller. */
		st->frames[n++] = (struct agg_frame){ .addr = ip, .map_id = AGG_MAP_KERNEL,
						      .kind = AGG_FRAME_KERNEL, .is_return = i > 0 };
	}
	return n;
}

/* What the copy of a user stack cost and what it could have cost (stats only). */
static void count_stack_copy(struct session *s, const struct profd_sample *rec)
{
	uint64_t cap = s->cfg.stack_cap ? s->cfg.stack_cap : PROFD_STACK_BYTES_DEFAULT;

	s->st.user_stacks++;
	s->st.stack_copies++;
	s->st.stack_copy_bytes += rec->ustack_len;
	s->st.stack_full_bytes +=
		rec->stack_above == PROFD_STACK_ABOVE_UNKNOWN
			? rec->ustack_len
			: MAX((uint64_t)rec->ustack_len,
			      MIN((uint64_t)rec->ustack_len + rec->stack_above, cap));
	s->st.stack_copy_hist[MIN(((size_t)rec->ustack_len + SESSION_COPY_BUCKET - 1) /
					  SESSION_COPY_BUCKET,
				  (size_t)SESSION_COPY_BUCKETS - 1)]++;
}

/*
 * Stage 2: the process. Its generation live when the tick came (with the side-band stream),
 * and its CPython state; a new interpreter is announced through hooks.on_python. -ESRCH when
 * the process is gone before its maps could be read.
 */
static int stage_process(struct session *s, const struct profd_sample *rec, struct proc **ret_p,
			 struct py_proc **ret_pp)
{
	if (proc_table_get_at(s->procs, rec->pid, rec->time_ns, ret_p) < 0)
		return -ESRCH;
	*ret_pp = python_of(s, *ret_p, rec->flags & PROFD_SAMPLE_PY);
	return 0;
}

/* Stage 3: the native unwind of the user stack copy. A failed walk is a walk of no frames. */
static void stage_unwind(struct session *s, const struct profd_sample *rec, struct proc *p,
			 const uint8_t *ustack, struct unwind_result *res)
{
	struct find_ctx fc = { .s = s, .p = p };
	struct unwind_input in = {
		.e_machine = rec->e_machine,
		.regs = { .pc = rec->regs[0], .sp = rec->regs[1], .fp = rec->regs[2],
			  .lr = rec->regs[3] },
		.stack = ustack,
		.stack_start = rec->regs[1],
		.stack_len = rec->ustack_len,
		.find_module = find_module,
		.userdata = &fc,
	};

	*res = (struct unwind_result){ .frames = s->frames, .max_frames = s->cfg.max_depth };
	if (unwind_stack(&in, res) < 0) {
		res->n_frames = 0;
		res->stop = UNWIND_STOP_NO_CFI;
		res->complete = false;
	}
}

/* The Python frames of a sample, ready to be merged (none without pp or pyframes). */
static void python_merge_begin(struct session *s, const struct profd_sample *rec,
			       struct py_proc *pp, const uint8_t *pyframes, struct py_merge *m)
{
	*m = (struct py_merge){
		.frames = pyframes,
		.n = pp && pyframes ? MIN(rec->py_nframes, (size_t)PROFD_PY_MAX_FRAMES) : 0,
	};
	m->inner = m->n;
	if (m->n > PROFD_PY_INNER_FRAMES && rec->py_skipped > 0) {
		m->inner = PROFD_PY_INNER_FRAMES;
		m->gap = true;
		m->skipped = rec->py_skipped;
		m->skipped_entries = rec->py_skipped_entries;
		s->st.py_skipped += rec->py_skipped;
	}
	m->cut = pp && (rec->flags & PROFD_SAMPLE_PY_TRUNCATED);
	if (rec->flags & PROFD_SAMPLE_PY) {
		s->st.py_samples++;
		if (rec->flags & (PROFD_SAMPLE_PY_ERROR | PROFD_SAMPLE_PY_TRUNCATED))
			s->st.py_errors++;
	}
}

/*
 * The native walk stopped before the interpreter frames of the outer Python frames: they go at
 * the outer end, after what was unwound (one marker for a gap; none per call in it).
 */
static size_t python_merge_outer(struct session *s, struct py_merge *m, struct py_proc *pp,
				 struct proc *p, const struct profd_sample *rec,
				 struct agg_frame *out)
{
	uint32_t map_id = frame_map_id(s, p, pp->eval_start, NULL);
	size_t before = m->next, n = 0;

	m->skipped_entries = 0;
	while (m->next < m->n || m->gap) {
		size_t k = python_merge_eval(s, m, pp, rec->pid, map_id, rec->time_ns, out + n);

		if (k == 0)
			break;
		n += k;
	}
	s->st.py_outer_frames += m->next - before;
	return n;
}

/*
 * Stage 4: the unwound frames as aggregate frames, with the Python frames merged in: each
 * interpreter frame (an eval call) is replaced by the Python frames it ran. Returns how many
 * went to out; *jm: the perf map of JIT code among them, if any.
 */
static size_t stage_merge(struct session *s, const struct profd_sample *rec, struct proc *p,
			  struct py_proc *pp, const uint8_t *pyframes,
			  const struct unwind_result *res, struct agg_frame *out, struct jitmap **jm)
{
	struct py_merge m;
	size_t n = 0;

	python_merge_begin(s, rec, pp, pyframes, &m);
	for (size_t i = 0; i < res->n_frames; i++) {
		uint64_t pc = res->frames[i].pc;
		uint64_t look = pc - (res->frames[i].is_return ? 1 : 0);
		bool anon;

		/*
		 * An interpreter frame runs a group of Python frames: from where the merge stands to
		 * the one its call entered with. The Python frames stand in its place, in the
		 * interpreter's mapping.
		 */
		if (pp && look >= pp->eval_start && look < pp->eval_end) {
			uint32_t map_id = frame_map_id(s, p, pc, NULL);
			size_t k = python_merge_eval(s, &m, pp, rec->pid, map_id, rec->time_ns,
						     out + n);

			n += k;
			if (k > 0)
				continue;
			/*
			 * No Python frame for it: the sample came before the BPF side knew the
			 * process, or the chain ended before this call.
			 */
			out[n++] = python_gap_frame(s, 0xffffffffu, frame_map_id(s, p, pc, NULL));
			s->st.py_raw_eval++;
			continue;
		}
		out[n++] = (struct agg_frame){ .addr = pc,
					       .map_id = frame_map_id(s, p, pc, &anon),
					       .is_return = res->frames[i].is_return };
		/* JIT code: its perf map is read now, while the process lives. */
		if (anon && s->jit)
			*jm = jitmaps_lookup(s->jit, rec->pid, look) ?: *jm;
	}
	if (!res->complete && (m.next < m.n || m.gap))
		n += python_merge_outer(s, &m, pp, p, rec, out + n);
	s->st.py_unplaced += m.n - m.next;
	return n;
}

/* What the walk needed of the copy: stats, and the adaptive stack copy's sizer (stacksize.h). */
static void stage_observe(struct session *s, const struct profd_sample *rec,
			  const struct unwind_result *res)
{
	bool truncated = res->stop == UNWIND_STOP_TRUNCATED;

	s->st.stack_need_bytes += res->stack_used;
	if (truncated && (rec->flags & PROFD_SAMPLE_STACK_SIZED))
		s->st.stack_cut++;
	if (s->sizer && rec->stack_above != PROFD_STACK_ABOVE_UNKNOWN)
		stack_sizer_observe(s->sizer, rec->pid,
				    rec->ustack_len - res->stack_used + (uint64_t)rec->stack_above,
				    truncated, truncated && (rec->flags & PROFD_SAMPLE_STACK_SIZED));
	s->st.frames += res->n_frames;
}

/*
 * Stages 2-4 for a sample with a user context: the user frames after the n kernel ones. Returns
 * the stack's frame count.
 */
static size_t stage_user(struct session *s, const struct profd_sample *rec, const uint8_t *ustack,
			 const uint8_t *pyframes, struct agg_stack *st, size_t n,
			 struct jitmap **jm)
{
	struct unwind_result res;
	struct py_proc *pp;
	struct proc *p;

	count_stack_copy(s, rec);
	if (stage_process(s, rec, &p, &pp) < 0) {
		/* Gone before we could read its maps: keep the sample, unnamed. */
		s->st.no_process++;
		st->frames[n++] = (struct agg_frame){ .addr = rec->regs[0], .map_id = AGG_MAP_NONE };
		st->stop = UNWIND_STOP_NO_MAPPING;
	} else {
		stage_unwind(s, rec, p, ustack, &res);
		n += stage_merge(s, rec, p, pp, pyframes, &res, st->frames + n, jm);
		stage_observe(s, rec, &res);
		st->stop = res.stop;
		st->complete = res.complete;
	}
	s->st.stops[st->stop < _UNWIND_STOP_MAX ? st->stop : UNWIND_STOP_NO_CFI]++;
	if (st->complete)
		s->st.complete++;
	return n;
}

/*
 * Stage 5: aggregation. The stack goes to the session's aggregate and to every tap whose filter
 * takes it; a perf map names this process's frames for whoever sees its samples: only for
 * samples of its owner's uid, or those that only privileged callers see.
 */
static void stage_aggregate(struct session *s, const struct profd_sample *rec,
			    const struct agg_stack *st, struct jitmap *jm)
{
	if (jm && rec->uid != PROFD_UID_NONE && rec->uid != jm->owner)
		jm = NULL;
	/* A full aggregate counts the drop itself. */
	(void)aggregate_add(s->agg, st, st->state ? 0 : 1);
	if (jm)
		(void)aggregate_set_jitmap(s->agg, rec->pid, jm, false);
	for (size_t i = 0; i < s->n_taps; i++)
		tap_feed(s, s->taps[i], st, rec->uid, jm);
	while (s->n_py_held > 0)
		py_code_unref(s->py_held[--s->n_py_held]);
}

/*
 * One sample (or off-CPU wait), stage by stage: its labels, its kernel frames, the user stack
 * (the process, the native unwind, the Python frames merged in), its container, aggregation.
 * Its rec->ustack_len bytes of user stack are at `ustack`, its Python frames at `pyframes` and
 * its rec->kstack_len kernel IPs at `kstack` (unaligned; sizes checked by the caller).
 */
static int handle_sample(struct session *s, const struct profd_sample *rec, const uint8_t *ustack,
			 const uint8_t *pyframes, const uint8_t *kstack)
{
	struct agg_stack *st = s->scratch;
	size_t n;
	struct jitmap *jm = NULL;

	stage_begin(s, rec, st);
	n = stage_kernel(st, kstack, kstack ? MIN(rec->kstack_len, (uint32_t)PROFD_MAX_KSTACK) : 0);
	if (rec->flags & PROFD_SAMPLE_KERNEL_THREAD) {
		st->stop = UNWIND_STOP_KERNEL_THREAD;
		st->complete = true;
	} else {
		n = stage_user(s, rec, ustack, pyframes, st, n, &jm);
	}
	st->n_frames = n;
	st->container = container_index(s, rec->pid);
	stage_aggregate(s, rec, st, jm);
	return 0;
}

/*
 * A code object as the BPF program copied it when a frame ran it: named now, in place of
 * whatever the cache held at its address (a code object freed since, whose address a new one
 * took). When the copy of its location table was cut and the object is still there, the
 * object read whole gives the lines the copy lacks.
 */
static int handle_py_code(struct session *s, const struct profd_py_code *c)
{
	struct proc *p;
	struct py_proc *pp;
	struct py_code *code = NULL, *live = NULL;
	uint64_t tlen = 0;
	int r;

	s->st.py_code_records++;
	if (!s->py || (c->missing & 1) || proc_table_get(s->procs, c->pid, &p) < 0)
		return 0;
	pp = python_of(s, p, true);
	if (!pp)
		return 0;
	r = py_code_from_copy(&pp->layout, c->code, c->head, sizeof(c->head),
			      (c->missing & 2) ? NULL : c->qualname, sizeof(c->qualname),
			      (c->missing & 4) ? NULL : c->filename, sizeof(c->filename),
			      (c->missing & 8) ? NULL : c->linetable, sizeof(c->linetable),
			      pp->code_type, &code);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		s->st.py_code_records_bad++;
		return 0;
	}
	if (!(c->missing & 8) && (size_t)pp->layout.bytes_size + 8 <= sizeof(c->linetable))
		memcpy(&tlen, c->linetable + pp->layout.bytes_size, sizeof(tlen));
	if (tlen > sizeof(c->linetable) - pp->layout.bytes_sval &&
	    py_code_read(&pp->layout, py_read_process, (void *)(uintptr_t)c->pid, c->code,
			 pp->code_type, &live) >= 0) {
		if (strcmp(live->qualname, code->qualname) == 0 &&
		    strcmp(live->filename, code->filename) == 0 &&
		    live->firstlineno == code->firstlineno) {
			py_code_unref(code);
			code = live;
		} else {
			py_code_unref(live);
		}
	}
	r = py_code_cache_put(pp->codes, c->code, code);
	py_code_unref(code);
	return r == -ENOMEM ? r : 0;
}

/*
 * A last look at an exiting process's perf map: a newer copy replaces the older one in the
 * aggregates that hold one of the same owner (they took it by the uid rule of handle_sample()).
 */
static void jit_exit(struct session *s, uint32_t pid)
{
	struct jitmap *jm = s->jit ? jitmaps_exit(s->jit, pid) : NULL;

	if (!jm)
		return;
	(void)aggregate_set_jitmap(s->agg, pid, jm, true);
	for (size_t i = 0; i < s->n_taps; i++)
		(void)aggregate_set_jitmap(s->taps[i]->agg, pid, jm, true);
	jitmap_unref(jm);
}

int session_handle_record(struct session *s, const void *data, size_t size)
{
	const struct profd_rec_hdr *h = data;

	s->st.records++;
	if (size < sizeof(*h) || h->version != PROFD_RECORD_VERSION || h->size > size) {
		s->st.bad_records++;
		return 0;
	}
	switch (h->type) {
	case PROFD_REC_SAMPLE:
	case PROFD_REC_OFFCPU: {
		const struct profd_sample *rec = data;

		size_t py_bytes, k_bytes;

		if (h->size < sizeof(*rec))
			break;
		py_bytes = (size_t)rec->py_nframes * sizeof(struct profd_py_frame);
		k_bytes = (size_t)rec->kstack_len * sizeof(uint64_t);
		/* A wait of no time would be a stack of no weight in the profile. */
		if ((h->type == PROFD_REC_OFFCPU && rec->off_cpu_ns == 0) ||
		    rec->py_nframes > PROFD_PY_MAX_FRAMES || rec->kstack_len > PROFD_MAX_KSTACK ||
		    rec->ustack_len > h->size ||
		    sizeof(*rec) + (size_t)rec->ustack_len + py_bytes + k_bytes > h->size) {
			s->st.bad_records++;
			return 0;
		}
		s->st.record_bytes += h->size;
		return handle_sample(s, rec, (const uint8_t *)(rec + 1),
				     (const uint8_t *)(rec + 1) + rec->ustack_len,
				     (const uint8_t *)(rec + 1) + rec->ustack_len + py_bytes);
	}
	case PROFD_REC_PY_CODE: {
		const struct profd_py_code *c = data;

		if (h->size != sizeof(*c)) {
			s->st.bad_records++;
			return 0;
		}
		return handle_py_code(s, c);
	}
	case PROFD_REC_EXEC:
	case PROFD_REC_EXIT:
	case PROFD_REC_FORK: {
		const struct profd_task_event *e = data;

		if (h->size < sizeof(*e))
			break;
		if (h->type == PROFD_REC_EXEC) {
			s->st.execs++;
			proc_table_exec(s->procs, e->pid);
			if (s->sizer)
				stack_sizer_forget(s->sizer, e->pid);
			if (s->py)
				py_procs_forget(s->py, e->pid);
			if (s->jit)
				jitmaps_forget(s->jit, e->pid);
		} else if (h->type == PROFD_REC_EXIT) {
			s->st.exits++;
			jit_exit(s, e->pid);
			proc_table_remove(s->procs, e->pid);
			if (s->sizer)
				stack_sizer_forget(s->sizer, e->pid);
			if (s->py)
				py_procs_forget(s->py, e->pid);
		} else {
			struct proc *p;

			s->st.forks++;
			/* The BPF side gave the child its parent's gap (profd_fork): so does this. */
			if (s->sizer)
				stack_sizer_fork(s->sizer, e->ppid, e->pid);
			/* The side-band's FORK gives the child its parent's mappings instead. */
			if (!proc_table_sideband_on(s->procs))
				(void)proc_table_get(s->procs, e->pid, &p);
		}
		return 0;
	}
	default:
		break;
	}
	s->st.bad_records++;
	return 0;
}

int session_handle_sample(struct session *s, const struct profd_sample *rec, const void *ustack,
			  const uint64_t *kstack)
{
	s->st.records++;
	if (rec->hdr.version != PROFD_RECORD_VERSION ||
	    (rec->hdr.type != PROFD_REC_SAMPLE && rec->hdr.type != PROFD_REC_OFFCPU) ||
	    (rec->hdr.type == PROFD_REC_OFFCPU && rec->off_cpu_ns == 0) ||
	    (rec->ustack_len > 0 && !ustack) || (rec->kstack_len > 0 && !kstack) ||
	    rec->kstack_len > PROFD_MAX_KSTACK) {
		s->st.bad_records++;
		return 0;
	}
	return handle_sample(s, rec, ustack, NULL, (const uint8_t *)kstack);
}

int session_watch_pid(struct session *s, uint32_t pid)
{
	struct proc *p;
	int r = proc_table_get(s->procs, pid, &p);

	if (r >= 0)
		(void)python_of(s, p, false);
	return r;
}

int session_reset_stack_sizes(struct session *s)
{
	struct stack_sizer *z;
	int r;

	if (!s->sizer)
		return 0;
	r = stack_sizer_new(s->cfg.hooks.on_stack_size, s->cfg.hooks.userdata, &z);
	if (r < 0)
		return r;
	stack_sizer_free(s->sizer);
	s->sizer = z;
	return 0;
}

uint64_t session_stack_copy_quantile(const struct session_stats *st, double q)
{
	uint64_t want, seen = 0;

	if (!st->stack_copies)
		return 0;
	/* The smallest bucket with at least q of the copies at or below it. */
	want = (uint64_t)(q * (double)st->stack_copies + 0.999999);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < SESSION_COPY_BUCKETS; i++) {
		seen += st->stack_copy_hist[i];
		if (seen >= want)
			return MIN((uint64_t)i * SESSION_COPY_BUCKET,
				   (uint64_t)PROFD_STACK_BYTES_MAX);
	}
	return PROFD_STACK_BYTES_MAX;
}

const struct session_stats *session_stats(const struct session *s)
{
	return &s->st;
}

struct aggregate *session_aggregate(struct session *s)
{
	return s->agg;
}

int session_take_aggregate(struct session *s, struct aggregate **ret)
{
	struct aggregate *n;
	int r = aggregate_new(&n);

	if (r < 0)
		return r;
	*ret = s->agg;
	s->agg = n;
	s->agg_gen++;
	if (s->jit)
		jitmaps_next_generation(s->jit);
	return 0;
}

void session_unwind_stats(const struct session *s, struct unwind_cache_stats *ret)
{
	unwind_cache_get_stats(s->unwind_cache, ret);
}

struct proc_table *session_procs(struct session *s)
{
	return s->procs;
}
