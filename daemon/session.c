// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/profd.h"
#include "common/macro.h"
#include "daemon/session.h"
#include "daemon/unwind/unwind-cache.h"

struct session {
	struct session_config cfg;
	struct proc_table *procs;
	struct unwind_cache *unwind_cache;
	struct aggregate *agg;
	uint32_t agg_gen; /* bumped when the aggregate is replaced: invalidates mapping tags */
	struct session_stats st;
	struct unwind_frame *frames;
	struct agg_stack *scratch; /* room for PROFD_MAX_KSTACK + max_depth frames */
};

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
	s->scratch = malloc(sizeof(*s->scratch) +
			    (PROFD_MAX_KSTACK + s->cfg.max_depth + 1) * sizeof(struct agg_frame));
	if (!s->frames || !s->scratch) {
		r = -ENOMEM;
		goto fail;
	}
	r = proc_table_new("/proc", &s->procs);
	if (r < 0)
		goto fail;
	r = unwind_cache_new(s->cfg.unwind_cache_bytes, &s->unwind_cache);
	if (r < 0)
		goto fail;
	r = aggregate_new(&s->agg);
	if (r < 0)
		goto fail;
	s->agg_gen = 1;
	*ret = s;
	return 0;
fail:
	session_free(s);
	return r;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	aggregate_free(s->agg);
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
	if (unwind_key_from_fd(m->dso->fd, m->dso->build_id, m->dso->build_id_len, &key) < 0)
		return 0;
	/* A binary without usable CFI still is a mapping: the frame pointer may walk it. */
	(void)unwind_cache_module(c->s->unwind_cache, &key, m->dso->fd, m->start, m->end, m->pgoff,
				  ret);
	ret->start = m->start;
	ret->end = m->end;
	return 0;
}

/* Interned mapping id for the mapping holding pc, cached in the mapping's user tag. */
static uint32_t frame_map_id(struct session *s, struct proc *p, uint64_t pc)
{
	struct mapping *m = (struct mapping *)proc_find_mapping(s->procs, p, pc);
	uint32_t id;

	if (!m)
		return AGG_MAP_NONE;
	if ((uint32_t)(m->user_tag >> 32) == s->agg_gen)
		return (uint32_t)m->user_tag;
	if (aggregate_intern_mapping(s->agg, m, &id) < 0)
		return AGG_MAP_NONE;
	m->user_tag = ((uint64_t)s->agg_gen << 32) | id;
	return id;
}

static int handle_sample(struct session *s, const struct profd_sample *rec, size_t size)
{
	struct agg_stack *st = s->scratch;
	size_t nk = MIN(rec->kstack_len, (uint32_t)PROFD_MAX_KSTACK), n = 0;

	if (sizeof(*rec) + (size_t)rec->ustack_len > size) {
		s->st.bad_records++;
		return 0;
	}
	s->st.samples++;

	memset(st, 0, sizeof(*st));
	st->pid = rec->pid;
	st->tid = rec->tid;
	memcpy(st->comm, rec->comm, sizeof(st->comm));
	memcpy(st->pcomm, rec->pcomm, sizeof(st->pcomm));
	st->comm[sizeof(st->comm) - 1] = '\0';
	st->pcomm[sizeof(st->pcomm) - 1] = '\0';

	for (size_t i = 0; i < nk; i++) {
		if (rec->kstack[i] == 0)
			break;
		/* Entries after the first are return addresses into the caller. */
		st->frames[n++] = (struct agg_frame){ .addr = rec->kstack[i], .map_id = AGG_MAP_KERNEL,
						      .flags = i ? AGG_FRAME_RETURN : 0 };
	}

	if (rec->flags & PROFD_SAMPLE_KERNEL_THREAD) {
		st->stop = UNWIND_STOP_KERNEL_THREAD;
		st->complete = true;
	} else {
		struct proc *p;
		struct find_ctx fc = { .s = s };
		struct unwind_input in = {
			.e_machine = rec->e_machine,
			.regs = { .pc = rec->regs[0], .sp = rec->regs[1], .fp = rec->regs[2],
				  .lr = rec->regs[3] },
			.stack = (const uint8_t *)(rec + 1),
			.stack_start = rec->regs[1],
			.stack_len = rec->ustack_len,
			.find_module = find_module,
			.userdata = &fc,
		};
		struct unwind_result res = { .frames = s->frames, .max_frames = s->cfg.max_depth };

		s->st.user_stacks++;
		if (proc_table_get(s->procs, rec->pid, &p) < 0) {
			/* Gone before we could read its maps: keep the sample, unnamed. */
			s->st.no_process++;
			st->frames[n++] = (struct agg_frame){ .addr = rec->regs[0],
							      .map_id = AGG_MAP_NONE };
			st->stop = UNWIND_STOP_NO_MAPPING;
		} else {
			fc.p = p;
			if (unwind_stack(&in, &res) < 0) {
				res.n_frames = 0;
				res.stop = UNWIND_STOP_NO_CFI;
				res.complete = false;
			}
			for (size_t i = 0; i < res.n_frames; i++)
				st->frames[n++] = (struct agg_frame){
					.addr = res.frames[i].pc,
					.map_id = frame_map_id(s, p, res.frames[i].pc),
					.flags = res.frames[i].is_return ? AGG_FRAME_RETURN : 0,
				};
			st->stop = res.stop;
			st->complete = res.complete;
			s->st.frames += res.n_frames;
		}
		s->st.stops[st->stop < _UNWIND_STOP_MAX ? st->stop : UNWIND_STOP_NO_CFI]++;
		if (st->complete)
			s->st.complete++;
	}
	st->n_frames = n;
	(void)aggregate_add(s->agg, st, 1); /* a full aggregate counts the drop itself */
	return 0;
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
		if (h->size < sizeof(struct profd_sample))
			break;
		return handle_sample(s, data, h->size);
	case PROFD_REC_EXEC:
	case PROFD_REC_EXIT:
	case PROFD_REC_FORK: {
		const struct profd_task_event *e = data;

		if (h->size < sizeof(*e))
			break;
		if (h->type == PROFD_REC_EXEC) {
			s->st.execs++;
			proc_table_exec(s->procs, e->pid);
		} else if (h->type == PROFD_REC_EXIT) {
			s->st.exits++;
			proc_table_remove(s->procs, e->pid);
			if (s->cfg.on_exit)
				s->cfg.on_exit(s->cfg.userdata, e->pid);
		} else {
			struct proc *p;

			s->st.forks++;
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

int session_watch_pid(struct session *s, uint32_t pid)
{
	struct proc *p;

	return proc_table_get(s->procs, pid, &p);
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
