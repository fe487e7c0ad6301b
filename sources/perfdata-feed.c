/* SPDX-License-Identifier: MIT */
/* perf.data events -> the session's process table and records: see sources/perfdata-feed.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <linux/perf_event.h>

#include "bpf/profd.h"
#include "common/grow.h"
#include "common/macro.h"
#include "pipeline/proc.h"
#include "pipeline/session.h"
#include "sources/perfdata-feed.h"

#define PERFDATA_FEED_HASH 4096 /* buckets of the process and thread tables */

struct pmap {
	uint64_t start, end, pgoff, dev, ino;
	uint32_t prot;
	char *path;
	uint8_t build_id[20];
	uint8_t build_id_len;
	bool is_exe, deleted;
};

struct pproc {
	struct pproc *next;
	uint32_t pid;
	bool dirty;    /* maps changed since the process table got them */
	bool have_exe; /* the first executable file mapping was marked as the executable */
	struct pmap *maps;
	size_t n, cap;
};

struct tcomm {
	struct tcomm *next;
	uint32_t tid;
	char comm[PROFD_COMM_LEN];
};

struct perfdata_feed {
	struct perfdata *pd;
	struct session *session;
	struct proc_table *procs;
	uint16_t e_machine;
	void (*after_sample)(void *userdata);
	void *userdata;
	struct perfdata_feed_result res;
	struct profd_sample rec; /* a sample's header; its stack stays in the reader's buffer */
	struct pproc *pprocs[PERFDATA_FEED_HASH];
	size_t n_pprocs;
	struct tcomm *tcomms[PERFDATA_FEED_HASH];
	size_t n_tcomms;
};

static void pmap_done(struct pmap *m)
{
	free(m->path);
}

static struct pproc *pproc_find(struct perfdata_feed *c, uint32_t pid, bool create)
{
	struct pproc **head = &c->pprocs[pid % PERFDATA_FEED_HASH], *p;

	for (p = *head; p; p = p->next)
		if (p->pid == pid)
			return p;
	if (!create || c->n_pprocs >= PROC_MAX_PROCS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->next = *head;
	*head = p;
	c->n_pprocs++;
	return p;
}

static void pproc_clear(struct pproc *p)
{
	for (size_t i = 0; i < p->n; i++)
		pmap_done(&p->maps[i]);
	p->n = 0;
	p->have_exe = false;
	p->dirty = true;
}

static void pproc_remove(struct perfdata_feed *c, uint32_t pid)
{
	for (struct pproc **pp = &c->pprocs[pid % PERFDATA_FEED_HASH]; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid) {
			struct pproc *p = *pp;

			*pp = p->next;
			pproc_clear(p);
			free(p->maps);
			free(p);
			c->n_pprocs--;
			return;
		}
}

static int pproc_push(struct pproc *p, const struct pmap *m)
{
	int r = GROW_ARRAY(p->maps, p->cap, p->n + 1, PROC_MAX_MAPS);

	if (r < 0)
		return r;
	p->maps[p->n++] = *m;
	return 0;
}

/*
 * A new mapping replaces whatever it overlaps, as mmap(MAP_FIXED) does: old mappings are cut
 * to the parts outside it. Non-executable mappings only cut (the table keeps code only).
 */
static int pproc_map(struct pproc *p, struct pmap *nm)
{
	size_t n = p->n, w = 0;
	bool cut = false;
	int r;

	for (size_t i = 0; i < n; i++) {
		struct pmap *o = &p->maps[i];

		if (o->end <= nm->start || o->start >= nm->end)
			continue;
		cut = true;
		if (o->end > nm->end) {
			struct pmap right = *o;

			right.pgoff += nm->end - o->start;
			right.start = nm->end;
			right.path = o->path ? strdup(o->path) : NULL;
			if (o->path && !right.path)
				return -ENOMEM;
			r = pproc_push(p, &right);
			if (r < 0) {
				pmap_done(&right);
				return r;
			}
			o = &p->maps[i]; /* the array may have moved */
		}
		if (o->start < nm->start) {
			o->end = nm->start;
		} else {
			pmap_done(o);
			o->start = o->end = 0; /* dropped below */
		}
	}
	if (cut) {
		for (size_t i = 0; i < p->n; i++)
			if (p->maps[i].end > p->maps[i].start)
				p->maps[w++] = p->maps[i];
		p->n = w;
		p->dirty = true;
	}
	if (!(nm->prot & PROT_EXEC)) {
		pmap_done(nm);
		return 0;
	}
	p->dirty = true;
	if (!p->have_exe && nm->path && nm->path[0] == '/') {
		nm->is_exe = true;
		p->have_exe = true;
	}
	r = pproc_push(p, nm);
	if (r < 0)
		pmap_done(nm);
	return r;
}

/* Hand a process's current mappings to the process table before one of its samples. */
static int pproc_flush(struct perfdata_feed *c, struct pproc *p)
{
	_cleanup_free_ struct proc_static_map *sm = NULL;
	int r;

	if (!p->dirty)
		return 0;
	sm = calloc(p->n ? p->n : 1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++) {
		const struct pmap *m = &p->maps[i];

		sm[i] = (struct proc_static_map){
		    .start = m->start,
		    .end = m->end,
		    .pgoff = m->pgoff,
		    .prot = m->prot,
		    .dev = m->dev,
		    .ino = m->ino,
		    .path = m->path,
		    .build_id = m->build_id_len ? m->build_id : NULL,
		    .build_id_len = m->build_id_len,
		    .e_machine = c->e_machine,
		    .is_exe = m->is_exe,
		    .deleted = m->deleted,
		};
	}
	r = proc_table_add_static(c->procs, (pid_t)p->pid, sm, p->n);
	if (r < 0)
		return r;
	p->dirty = false;
	return 0;
}

static struct tcomm *tcomm_find(struct perfdata_feed *c, uint32_t tid, bool create)
{
	struct tcomm **head = &c->tcomms[tid % PERFDATA_FEED_HASH], *t;

	for (t = *head; t; t = t->next)
		if (t->tid == tid)
			return t;
	if (!create)
		return NULL;
	if (c->n_tcomms >= PERFDATA_FEED_MAX_TIDS) {
		/* Threads whose exits were not recorded: start over rather than grow. */
		for (size_t i = 0; i < PERFDATA_FEED_HASH; i++)
			while (c->tcomms[i]) {
				t = c->tcomms[i];
				c->tcomms[i] = t->next;
				free(t);
			}
		c->n_tcomms = 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	t->next = *head;
	*head = t;
	c->n_tcomms++;
	return t;
}

/* comm fields hold at most 15 characters and a NUL. */
static void comm_copy(char dst[PROFD_COMM_LEN], const char *src)
{
	size_t n = strnlen(src, PROFD_COMM_LEN - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void tcomm_set(struct perfdata_feed *c, uint32_t tid, const char *comm)
{
	struct tcomm *t = tcomm_find(c, tid, true);

	if (t)
		comm_copy(t->comm, comm);
}

static const char *tcomm_get(struct perfdata_feed *c, uint32_t tid)
{
	struct tcomm *t = tcomm_find(c, tid, false);

	return t ? t->comm : "";
}

static void send_task_event(struct perfdata_feed *c, uint16_t type, const struct perfdata_event *ev,
			    uint32_t pid, uint32_t ppid)
{
	struct profd_task_event e = {
	    .hdr = {.type = type, .version = PROFD_RECORD_VERSION, .size = sizeof(e)},
	    .time_ns = ev->time,
	    .pid = pid,
	    .ppid = ppid,
	};

	comm_copy(e.comm, tcomm_get(c, pid));
	(void)session_handle_record(c->session, &e, sizeof(e));
}

static int perf_sample(struct perfdata_feed *c, const struct perfdata_event *ev)
{
	const struct perfdata_sample *ps = &ev->sample;
	struct profd_sample *s = &c->rec;
	struct pproc *p;
	int r;

	if (ps->stack_len > UINT32_MAX - sizeof(*s))
		return 0;
	p = pproc_find(c, ev->pid, false);
	if (p) {
		r = pproc_flush(c, p);
		if (r == -ENOMEM)
			return r;
	}
	/* The stack bytes stay where they are in the mapped file: only the header is made. */
	memset(s, 0, sizeof(*s));
	s->hdr = (struct profd_rec_hdr){.type = PROFD_REC_SAMPLE,
					.version = PROFD_RECORD_VERSION,
					.size = (uint32_t)(sizeof(*s) + ps->stack_len)};
	s->time_ns = ev->time;
	s->pid = ev->pid;
	s->tid = ev->tid;
	s->cpu = ps->cpu;
	s->e_machine = c->e_machine;
	s->uid = PROFD_UID_NONE; /* perf.data does not say */
	if (ps->cpumode == PERFDATA_CPUMODE_USER)
		s->flags |= PROFD_SAMPLE_USER_MODE;
	if (ev->pid == 0 || !ps->has_user_regs)
		s->flags |= PROFD_SAMPLE_KERNEL_THREAD;
	comm_copy(s->comm, tcomm_get(c, ev->tid));
	comm_copy(s->pcomm, tcomm_get(c, ev->pid));
	s->regs[0] = ps->regs.pc;
	s->regs[1] = ps->regs.sp;
	s->regs[2] = ps->regs.fp;
	s->regs[3] = ps->regs.lr;
	s->kstack_len = MIN(ps->n_kstack, (size_t)PROFD_MAX_KSTACK);
	s->ustack_len = (uint32_t)ps->stack_len;
	s->stack_above = PROFD_STACK_ABOVE_UNKNOWN;
	if (!c->res.first_ns || ev->time < c->res.first_ns)
		c->res.first_ns = ev->time;
	c->res.last_ns = MAX(c->res.last_ns, ev->time);
	r = session_handle_sample(c->session, s, ps->stack, ps->kstack);
	if (c->after_sample)
		c->after_sample(c->userdata);
	return r;
}

static int perf_mmap(struct perfdata_feed *c, const struct perfdata_event *ev)
{
	const struct perfdata_mmap *m = &ev->mmap;
	struct pmap nm = {
	    .start = m->start,
	    .end = m->start + m->len,
	    .pgoff = m->pgoff,
	    .dev = makedev(m->maj, m->min),
	    .ino = m->ino,
	    .prot = m->prot,
	};
	const uint8_t *bid = m->build_id;
	size_t bid_len = m->build_id_len;
	struct pproc *p;

	if (ev->pid == UINT32_MAX) {
		/* perf's "[kernel.kallsyms]_text": pgoff is where _text was in that boot. */
		if (!strncmp(m->path, "[kernel.kallsyms]", 17) && m->path[17] && m->pgoff &&
		    strlen(m->path + 17) < sizeof(c->res.kernel_ref)) {
			c->res.kernel_text = m->pgoff;
			strcpy(c->res.kernel_ref, m->path + 17);
		}
		return 0; /* the kernel's own maps */
	}
	if (m->len == 0 || nm.end < nm.start)
		return 0; /* junk */
	p = pproc_find(c, ev->pid, true);
	if (!p)
		return 0;
	if (m->path[0]) {
		nm.path = strdup(m->path);
		if (!nm.path)
			return -ENOMEM;
		size_t n = strlen(nm.path), dl = strlen(" (deleted)");

		if (n > dl && !strcmp(nm.path + n - dl, " (deleted)")) {
			nm.path[n - dl] = '\0';
			nm.deleted = true;
		}
		/* perf names anonymous executable memory "//anon". */
		if (!strncmp(m->path, "//anon", 6)) {
			free(nm.path);
			nm.path = NULL;
		}
	}
	if (!bid_len && nm.path)
		bid_len = perfdata_build_id(c->pd, nm.path, &bid);
	if (bid_len) {
		nm.build_id_len = (uint8_t)MIN(bid_len, sizeof(nm.build_id));
		memcpy(nm.build_id, bid, nm.build_id_len);
	}
	return pproc_map(p, &nm) == -ENOMEM ? -ENOMEM : 0;
}

static int perf_fork(struct perfdata_feed *c, const struct perfdata_event *ev)
{
	struct pproc *parent, *child;

	tcomm_set(c, ev->tid, tcomm_get(c, ev->task.ptid));
	if (ev->pid == ev->task.ppid)
		return 0; /* a new thread */
	/* A new process starts with its parent's mappings. */
	pproc_remove(c, ev->pid);
	parent = pproc_find(c, ev->task.ppid, false);
	child = pproc_find(c, ev->pid, true);
	if (!child)
		return 0;
	child->dirty = true;
	if (parent) {
		for (size_t i = 0; i < parent->n; i++) {
			struct pmap m = parent->maps[i];

			m.path = m.path ? strdup(m.path) : NULL;
			if ((parent->maps[i].path && !m.path) || pproc_push(child, &m) < 0) {
				free(m.path);
				return -ENOMEM;
			}
		}
		child->have_exe = parent->have_exe;
	}
	if (pproc_flush(c, child) == -ENOMEM)
		return -ENOMEM;
	send_task_event(c, PROFD_REC_FORK, ev, ev->pid, ev->task.ppid);
	return 0;
}

int perfdata_feed_event(void *userdata, const struct perfdata_event *ev)
{
	struct perfdata_feed *c = userdata;
	struct pproc *p;

	switch (ev->type) {
	case PERFDATA_EV_SAMPLE:
		return perf_sample(c, ev);
	case PERFDATA_EV_MMAP:
		return perf_mmap(c, ev);
	case PERFDATA_EV_COMM:
		tcomm_set(c, ev->tid, ev->comm.comm);
		if (ev->comm.exec) {
			/* The new image's mappings follow. */
			p = pproc_find(c, ev->pid, true);
			if (p)
				pproc_clear(p);
			send_task_event(c, PROFD_REC_EXEC, ev, ev->pid, 0);
		}
		return 0;
	case PERFDATA_EV_FORK:
		return perf_fork(c, ev);
	case PERFDATA_EV_EXIT:
		if (ev->pid == ev->tid) {
			pproc_remove(c, ev->pid);
			send_task_event(c, PROFD_REC_EXIT, ev, ev->pid, 0);
		}
		return 0;
	case PERFDATA_EV_LOST:
		c->res.lost += ev->lost;
		return 0;
	}
	return 0;
}

bool perfdata_has_user_stacks(const struct perfdata_info *info)
{
	const uint64_t need = PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;

	return (info->sample_type & need) == need;
}

int perfdata_feed_new(struct perfdata *pd, struct session *session,
		      void (*after_sample)(void *userdata), void *userdata,
		      struct perfdata_feed **ret)
{
	struct perfdata_feed *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->pd = pd;
	f->session = session;
	f->procs = session_procs(session);
	f->e_machine = perfdata_info(pd)->e_machine;
	f->after_sample = after_sample;
	f->userdata = userdata;
	*ret = f;
	return 0;
}

const struct perfdata_feed_result *perfdata_feed_result(const struct perfdata_feed *f)
{
	return &f->res;
}

void perfdata_feed_remove_procs(struct perfdata_feed *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < PERFDATA_FEED_HASH; i++)
		for (struct pproc *p = f->pprocs[i]; p; p = p->next)
			proc_table_remove(f->procs, (pid_t)p->pid);
}

void perfdata_feed_free(struct perfdata_feed *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < PERFDATA_FEED_HASH; i++) {
		while (f->pprocs[i]) {
			struct pproc *p = f->pprocs[i];

			f->pprocs[i] = p->next;
			pproc_clear(p);
			free(p->maps);
			free(p);
		}
		while (f->tcomms[i]) {
			struct tcomm *t = f->tcomms[i];

			f->tcomms[i] = t->next;
			free(t);
		}
	}
	free(f);
}
