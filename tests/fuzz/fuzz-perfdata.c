// SPDX-License-Identifier: MIT
/*
 * perf.data files (`perf record --call-graph dwarf`) read the way `profd convert` reads them:
 * perfdata_open(), perfdata_read() delivering the events in time order, and the events turned
 * into what the session takes: executable MMAP/MMAP2 mappings (with HEADER_BUILD_ID build-ids)
 * into a static process table, per process, copied on FORK, emptied on COMM exec, dropped on
 * EXIT; SAMPLEs into sample records (registers, kernel frames) whose user stack bytes stay
 * where the reader has them (session_handle_sample()), unwound by the session. The input is the
 * file.
 *
 * No binary is opened (the table's open callback finds nothing): unwinding falls back to frame
 * pointers. One session for the whole run; the processes an input added are removed and its
 * aggregate freed after it. The mapping bookkeeping here is smaller than convert's (no splitting
 * of overlapped mappings, at most MAX_PROCS processes of MAX_MAPS mappings per input).
 *
 * Checked besides memory safety: open/read return only documented errors, damage comes with a
 * message and an offset inside the file, every event is counted exactly once in the stats,
 * samples arrive in time order, every string and stack copy handed out is a piece of the file
 * (never bytes past it), kernel frames within PERFDATA_MAX_KSTACK; and the aggregate's promises.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include "bpf/profd.h"
#include "sources/perfdata.h"
#include "pipeline/session.h"
#include "tests/fuzz/fuzz-aggregate.h"
#include "tests/fuzz/fuzz-common.h"

#define MAX_PROCS 64
#define MAX_MAPS 256

struct pproc {
	uint32_t pid;
	bool dirty;
	size_t n;
	struct proc_static_map maps[MAX_MAPS];
	uint8_t build_ids[MAX_MAPS][20];
};

struct ctx {
	const uint8_t *data; /* the input: what every byte handed out must come from */
	size_t size;
	struct perfdata *pd;
	const struct perfdata_info *info;
	bool feed; /* convert would run on this file (user regs + stacks, known architecture) */
	uint64_t delivered, last_sample_time;
	struct pproc *procs[MAX_PROCS];
	size_t n_procs;
};

static struct session *session;
static struct proc_table *procs;
static struct ctx c;

static int open_nothing(void *userdata, const struct proc_static_map *m)
{
	return -ENOENT;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (session_new(&(struct session_config){.max_depth = 128}, &session) < 0)
		abort();
	procs = session_procs(session);
	if (proc_table_set_static(procs, open_nothing, NULL) < 0)
		abort();
	return 0;
}

/* [p, p + n) is a piece of the input (the reader hands out pointers into its mapping). */
static void check_from_input(const void *p, size_t n)
{
	FUZZ_CHECK(n <= c.size);
	if (n)
		FUZZ_CHECK(memmem(c.data, c.size, p, n) != NULL);
}

static struct pproc *pproc_find(uint32_t pid, bool create)
{
	struct pproc *p;

	for (size_t i = 0; i < c.n_procs; i++)
		if (c.procs[i]->pid == pid)
			return c.procs[i];
	if (!create || c.n_procs >= MAX_PROCS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->pid = pid;
	c.procs[c.n_procs++] = p;
	return p;
}

static void pproc_clear(struct pproc *p)
{
	for (size_t i = 0; i < p->n; i++)
		free((char *)p->maps[i].path);
	p->n = 0;
	p->dirty = true;
}

static void pproc_push(struct pproc *p, const struct proc_static_map *m, const uint8_t *bid)
{
	struct proc_static_map *n;

	if (p->n >= MAX_MAPS)
		return;
	n = &p->maps[p->n];
	*n = *m;
	if (m->path && !(n->path = strdup(m->path)))
		abort();
	n->build_id = NULL;
	n->build_id_len = fuzz_min(m->build_id_len, sizeof(p->build_ids[0]));
	if (n->build_id_len) {
		memcpy(p->build_ids[p->n], bid, n->build_id_len);
		n->build_id = p->build_ids[p->n];
	}
	p->n++;
	p->dirty = true;
}

static void pproc_flush(struct pproc *p)
{
	int r;

	if (!p->dirty)
		return;
	r = proc_table_add_static(procs, (pid_t)p->pid, p->maps, p->n);
	FUZZ_CHECK(r == 0 || r == -ENOMEM);
	p->dirty = false;
}

static void send_task(uint16_t type, const struct perfdata_event *ev, uint32_t pid, uint32_t ppid)
{
	struct profd_task_event e = {
	    .hdr = {.type = type, .version = PROFD_RECORD_VERSION, .size = sizeof(e)},
	    .time_ns = ev->time,
	    .pid = pid,
	    .ppid = ppid,
	};

	FUZZ_CHECK(session_handle_record(session, &e, sizeof(e)) == 0);
}

static void on_sample(const struct perfdata_event *ev)
{
	const struct perfdata_sample *ps = &ev->sample;
	struct profd_sample s;
	struct pproc *p;
	uint64_t records = session_stats(session)->records;

	p = pproc_find(ev->pid, false);
	if (p)
		pproc_flush(p);
	/* As convert: the header is made, the stack bytes stay where the reader has them. */
	memset(&s, 0, sizeof(s));
	s.hdr = (struct profd_rec_hdr){.type = PROFD_REC_SAMPLE,
				       .version = PROFD_RECORD_VERSION,
				       .size = (uint32_t)(sizeof(s) + ps->stack_len)};
	s.time_ns = ev->time;
	s.pid = ev->pid;
	s.tid = ev->tid;
	s.cpu = ps->cpu;
	s.e_machine = c.info->e_machine;
	if (ps->cpumode == PERFDATA_CPUMODE_USER)
		s.flags |= PROFD_SAMPLE_USER_MODE;
	if (ev->pid == 0 || !ps->has_user_regs)
		s.flags |= PROFD_SAMPLE_KERNEL_THREAD;
	s.regs[0] = ps->regs.pc;
	s.regs[1] = ps->regs.sp;
	s.regs[2] = ps->regs.fp;
	s.regs[3] = ps->regs.lr;
	s.kstack_len = (uint32_t)fuzz_min(ps->n_kstack, PROFD_MAX_KSTACK);
	s.ustack_len = (uint32_t)ps->stack_len;
	s.stack_above = PROFD_STACK_ABOVE_UNKNOWN;
	FUZZ_CHECK(session_handle_sample(session, &s, ps->stack, ps->kstack) == 0);
	FUZZ_CHECK(session_stats(session)->records == records + 1);
}

static void on_mmap(const struct perfdata_event *ev)
{
	const struct perfdata_mmap *m = &ev->mmap;
	struct proc_static_map sm = {
	    .start = m->start,
	    .end = m->start + m->len,
	    .pgoff = m->pgoff,
	    .prot = m->prot,
	    .dev = makedev(m->maj, m->min),
	    .ino = m->ino,
	    .e_machine = c.info->e_machine,
	};
	const uint8_t *bid = m->build_id;
	struct pproc *p;

	if (ev->pid == UINT32_MAX || m->len == 0 || sm.end < sm.start || !(m->prot & PROT_EXEC))
		return;
	p = pproc_find(ev->pid, true);
	if (!p)
		return;
	if (m->path[0] && strncmp(m->path, "//anon", 6))
		sm.path = m->path;
	sm.build_id_len = m->build_id_len;
	if (!sm.build_id_len && sm.path)
		sm.build_id_len = perfdata_build_id(c.pd, sm.path, &bid);
	FUZZ_CHECK(sm.build_id_len <= 20);
	if (sm.build_id_len)
		check_from_input(bid, sm.build_id_len);
	pproc_push(p, &sm, bid);
}

static void on_fork(const struct perfdata_event *ev)
{
	struct pproc *parent, *child;

	if (ev->pid == ev->task.ppid)
		return; /* a new thread */
	parent = pproc_find(ev->task.ppid, false);
	child = pproc_find(ev->pid, true);
	if (!child)
		return;
	pproc_clear(child);
	for (size_t i = 0; parent && i < parent->n; i++)
		pproc_push(child, &parent->maps[i], parent->maps[i].build_id);
	pproc_flush(child);
	send_task(PROFD_REC_FORK, ev, ev->pid, ev->task.ppid);
}

static int on_event(void *userdata, const struct perfdata_event *ev)
{
	struct pproc *p;

	c.delivered++;
	FUZZ_CHECK(ev->offset >= c.info->data_offset && ev->offset + 8 <= c.size);
	switch (ev->type) {
	case PERFDATA_EV_SAMPLE:
		FUZZ_CHECK(ev->time >= c.last_sample_time);
		c.last_sample_time = ev->time;
		FUZZ_CHECK(ev->sample.n_kstack <= PERFDATA_MAX_KSTACK);
		FUZZ_CHECK(ev->sample.stack_len == 0 || ev->sample.stack);
		check_from_input(ev->sample.stack, ev->sample.stack_len);
		if (c.feed)
			on_sample(ev);
		break;
	case PERFDATA_EV_MMAP:
		FUZZ_CHECK(ev->mmap.path);
		check_from_input(ev->mmap.path, strlen(ev->mmap.path) + 1);
		FUZZ_CHECK(ev->mmap.build_id_len <= 20);
		if (ev->mmap.build_id_len)
			check_from_input(ev->mmap.build_id, ev->mmap.build_id_len);
		if (c.feed)
			on_mmap(ev);
		break;
	case PERFDATA_EV_COMM:
		FUZZ_CHECK(ev->comm.comm);
		check_from_input(ev->comm.comm, strlen(ev->comm.comm) + 1);
		if (c.feed && ev->comm.exec) {
			p = pproc_find(ev->pid, true);
			if (p)
				pproc_clear(p);
			send_task(PROFD_REC_EXEC, ev, ev->pid, 0);
		}
		break;
	case PERFDATA_EV_FORK:
		if (c.feed)
			on_fork(ev);
		break;
	case PERFDATA_EV_EXIT:
		if (c.feed && ev->pid == ev->tid) {
			/* Gone: nothing to hand to the table until a new mapping. */
			p = pproc_find(ev->pid, false);
			if (p) {
				pproc_clear(p);
				p->dirty = false;
			}
			send_task(PROFD_REC_EXIT, ev, ev->pid, 0);
		}
		break;
	case PERFDATA_EV_LOST:
		break;
	default:
		FUZZ_CHECK(!"unknown event type");
	}
	return 0;
}

static void check_info(const struct perfdata_info *info, size_t size)
{
	FUZZ_CHECK(info->n_attrs >= 1 && info->n_attrs <= PERFDATA_MAX_ATTRS);
	FUZZ_CHECK(info->n_build_ids <= PERFDATA_MAX_BUILD_IDS);
	FUZZ_CHECK(info->data_offset <= size);
	FUZZ_CHECK(!info->data_size_guessed || info->data_offset + info->data_size == size);
	FUZZ_CHECK(!info->arch_known || info->e_machine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aggregate *agg;
	char path[64];
	int fd = fuzz_memfd(data, size), r;

	c = (struct ctx){.data = data, .size = size};
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = perfdata_open(path, &c.pd);
	if (r == -EBADMSG) {
		FUZZ_CHECK(c.pd && perfdata_error(c.pd)[0]);
		FUZZ_CHECK(perfdata_error_offset(c.pd) <= size);
		perfdata_free(c.pd);
		return 0;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -EOPNOTSUPP || r == -E2BIG || r == -ENOMEM);
		return 0;
	}
	c.info = perfdata_info(c.pd);
	check_info(c.info, size);
	FUZZ_CHECK(perfdata_error(c.pd)[0] == '\0');
	/* convert's conditions: user registers and stacks in the samples, a known architecture. */
	c.feed = (c.info->sample_type & ((1u << 12) | (1u << 13))) == ((1u << 12) | (1u << 13)) &&
		 c.info->e_machine;

	r = perfdata_read(c.pd, on_event, NULL);
	if (r == -EBADMSG) {
		FUZZ_CHECK(perfdata_error(c.pd)[0]);
		FUZZ_CHECK(perfdata_error_offset(c.pd) <= size);
	} else {
		FUZZ_CHECK(r == 0 || r == -E2BIG || r == -ENOMEM || r == -EOPNOTSUPP);
	}
	if (r == 0 || r == -EBADMSG) {
		const struct perfdata_stats *st = perfdata_stats(c.pd);
		uint64_t typed =
		    st->samples + st->mmaps + st->comms + st->forks + st->exits + st->lost_events;

		/* Every event framed is delivered, skipped or counted malformed; once. */
		FUZZ_CHECK(typed == c.delivered);
		FUZZ_CHECK(st->events == typed + st->skipped + st->malformed);
	}
	perfdata_free(c.pd);

	agg = session_aggregate(session);
	fuzz_check_aggregate(agg);
	if (session_take_aggregate(session, &agg) == 0)
		aggregate_free(agg);
	for (size_t i = 0; i < c.n_procs; i++) {
		proc_table_remove(procs, (pid_t)c.procs[i]->pid);
		pproc_clear(c.procs[i]);
		free(c.procs[i]);
	}
	FUZZ_CHECK(proc_table_n_procs(procs) == 0);
	return 0;
}
