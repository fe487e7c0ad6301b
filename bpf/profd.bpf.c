// SPDX-License-Identifier: GPL-2.0
/*
 * profd capture program. On every cpu-clock tick it records, for a thread of interest, the
 * user registers the unwinder needs, the kernel IPs, and the live part of the user stack (sp
 * up to the end of the stack's VMA, capped) into a ring buffer. All unwinding happens in
 * userspace, offline.
 *
 * How this program may read memory (a wrong read returns plausible values on one kernel and
 * garbage on the next, so every read below follows one of these):
 * - A perf_event program's ctx is not the struct its C type names. The program sees
 *   struct bpf_perf_event_data (the interrupted registers, then sample_period and addr); the
 *   kernel passes struct bpf_perf_event_data_kern, which holds a *pointer* to the registers.
 *   The verifier rewrites each direct load from ctx into a load through that pointer. So:
 *   read ctx only by direct loads at constant offsets of the UAPI layout (8 bytes wide for the
 *   registers: the verifier refuses narrower ones; volatile, so the compiler cannot narrow
 *   them), never through its address (a BPF_CORE_READ or bpf_probe_read_kernel of the regs field
 *   reads whatever lies beyond the kern struct), and never with CO-RE field names of the
 *   kernel's own struct pt_regs (x86_64's cs became a 16-bit member of a union with FRED).
 *   ctx_user_mode() below is the one reader. Helpers that take ctx (bpf_get_stack) are fine.
 * - tp_btf programs get typed BTF arguments (task_struct pointers): direct field loads are
 *   checked by the verifier; pointers found in them (task->mm, ->cred, vma fields) are read
 *   with BPF_CORE_READ, which is a probe read of real kernel memory at a CO-RE offset.
 * - A task's saved user registers come from bpf_task_pt_regs(), a real pointer to its
 *   struct pt_regs: BPF_CORE_READ of it is right, whether the tick hit user or kernel code.
 * - User memory (stacks, CPython's structures) only with bpf_probe_read_user, every length
 *   bounded by a constant the verifier sees.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/profd.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by userspace before load. */
const volatile bool filter_pids = true;
const volatile __u32 self_tgid = 0;
const volatile __u32 stack_bytes = PROFD_STACK_BYTES_DEFAULT;
const volatile bool follow_forks = true;
const volatile bool python_frames = true;
const volatile __u32 n_cpus = 1;             /* possible CPUs: scratch holds 2 per CPU */
const volatile __u64 off_cpu_min_ns = 1000000; /* shorter waits are not recorded */
const volatile __u64 off_cpu_budget = 1000;  /* waits recorded per second per CPU */
const volatile bool stack_sizing = false;   /* read per-process copy sizes from stack_gaps */
const volatile bool task_events = false;    /* per-task perf events: mark inherited ones */

/*
 * Set by userspace while it opens per-task events on a target's existing threads, cleared
 * once every thread has one: until then the fork hook records which new threads inherit an
 * event from their creator, so userspace opens no second one on them.
 */
volatile bool marking_task_events = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by userspace */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* What was not recorded, per CPU, by reason: enum profd_lost (bpf/profd.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROFD_LOST_N);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

#define PAGE_SZ 4096
#define PY_BYTES (PROFD_PY_MAX_FRAMES * sizeof(struct profd_py_frame))
#define KSTACK_BYTES (PROFD_MAX_KSTACK * sizeof(__u64))
#define MIN_COPY 256 /* a learnt gap never cuts the copy below this */
#define RING_OFF (PROFD_STACK_BYTES_MAX + PAGE_SZ + PY_BYTES + KSTACK_BYTES)
struct sample_buf {
	struct profd_sample s;
	/*
	 * The user stack, the Python frames, the kernel IPs. One extra page so the page-by-page
	 * fallback copy needs no tighter bound, and room for the Python frames and kernel IPs
	 * after the largest stack.
	 */
	__u8 stack[PROFD_STACK_BYTES_MAX + PAGE_SZ + PY_BYTES + KSTACK_BYTES];
	/*
	 * At RING_OFF of stack[] (which it continues): the last PROFD_PY_OUTER_FRAMES frames
	 * walked past the innermost ones, as a ring.
	 */
	__u8 py_ring[PROFD_PY_OUTER_FRAMES * sizeof(struct profd_py_frame)];
	__u8 frame[128]; /* the _PyInterpreterFrame being read (PROFD_PY_FRAME_READ bytes) */
	/*
	 * The walk's counts. In the map, not on the stack: the verifier tracks stack values
	 * exactly and would check the walk's callback once per frame number.
	 */
	__u32 py_n;       /* frames walked (shims not counted) */
	__u32 py_skipped, py_skipped_entries; /* walked, then pushed out of the outer ring */
	__u32 py_ring_n, py_ring_first;       /* the ring's frames kept, its oldest slot */
	__u32 py_codes_budget;                /* code records this sample may still send */
};

/*
 * Two scratch records per CPU: [cpu] for samples, [n_cpus + cpu] for off-CPU waits. Too big
 * for a per-CPU map (their values are limited to 32 KiB), so a plain array indexed by CPU
 * number; userspace sizes it to twice the number of possible CPUs. Neither program nests on
 * one CPU, so a slot has one user at a time. (The "cpu" of the helpers below is the slot.)
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample_buf);
} scratch SEC(".maps");

/*
 * Per process: how many bytes at the top of a thread's stack VMA lie above the outermost frame
 * (environment and auxiliary vector, TLS and the thread descriptor), as userspace learnt from
 * unwinding its samples (pipeline/stacksize.c), less a margin. A sample copies from sp up to
 * that gap, whatever its depth. No entry: up to the VMA's end (and stack_bytes).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFD_MAX_STACK_GAPS);
	__type(key, __u32);
	__type(value, __u32);
} stack_gaps SEC(".maps");

/*
 * Threads that carry a per-task perf event (opened by userspace, or inherited from the thread
 * that created them while marking_task_events was set).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFD_MAX_TASK_EVENTS);
	__type(key, __u32);
	__type(value, __u8);
} task_event_tids SEC(".maps");

static __always_inline void count_lost(__u32 idx) /* enum profd_lost */
{
	__u64 *n = bpf_map_lookup_elem(&lost, &idx);

	if (n)
		(*n)++;
}

static __always_inline bool is_target(__u32 tgid)
{
	if (tgid == 0 || tgid == self_tgid)
		return false;
	if (!filter_pids)
		return true;
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* ---- per-architecture register access (the only #ifdefs: this program is built per arch) */
#if defined(__TARGET_ARCH_x86)
#define SAMPLE_EM PROFD_EM_X86_64
/*
 * The interrupted code segment: word 17 of the UAPI struct pt_regs that is this program's
 * context (r15 ... orig_rax, rip, cs); its low two bits are the privilege level (3: user).
 */
#define CTX_MODE_WORD 17
static __always_inline bool ctx_mode_is_user(__u64 v)
{
	return (v & 3) != 0;
}
static __always_inline void regs_fill(struct pt_regs *r, __u64 out[4])
{
	out[0] = BPF_CORE_READ(r, ip);
	out[1] = BPF_CORE_READ(r, sp);
	out[2] = BPF_CORE_READ(r, bp);
	out[3] = 0;
}
#elif defined(__TARGET_ARCH_arm64)
#define SAMPLE_EM PROFD_EM_AARCH64
/*
 * The interrupted pstate: word 33 of the UAPI struct user_pt_regs that is this program's
 * context (x0 ... x30, sp, pc, pstate); mode bits 0 are EL0t (user).
 */
#define CTX_MODE_WORD 33
static __always_inline bool ctx_mode_is_user(__u64 v)
{
	return (v & 0xf) == 0;
}
static __always_inline void regs_fill(struct pt_regs *r, __u64 out[4])
{
	out[0] = BPF_CORE_READ(r, pc);
	out[1] = BPF_CORE_READ(r, sp);
	out[2] = BPF_CORE_READ(r, regs[29]);
	out[3] = BPF_CORE_READ(r, regs[30]);
}
#else
#error "profd: unsupported BPF target architecture"
#endif

/*
 * Whether the tick interrupted user code: a direct, full-width load of the interrupted mode
 * word from the context (see the top of this file), which the verifier turns into a load
 * through the kernel's registers pointer.
 */
static __always_inline bool ctx_user_mode(struct bpf_perf_event_data *ctx)
{
	return ctx_mode_is_user(*(volatile const __u64 *)((const __u64 *)ctx + CTX_MODE_WORD));
}

/*
 * The stack VMA of each thread, as bpf_find_vma() last saw it. bpf_find_vma() costs ~10 µs
 * per call in a VM (its mmap_read_unlock is deferred to an irq_work, a self-IPI from the
 * sampling interrupt) against ~100 ns for this lookup; a thread's stack does not move, so one
 * lookup per thread is enough. A sample whose sp lies outside the cached range (the main
 * stack grew, a signal or fiber stack, a tid reused) looks the VMA up again.
 */
struct stack_range {
	__u64 start;
	__u64 end;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFD_MAX_STACK_RANGES);
	__type(key, __u32);
	__type(value, struct stack_range);
} stack_ranges SEC(".maps");

static long vma_range_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct stack_range *r = data;

	r->start = BPF_CORE_READ(vma, vm_start);
	r->end = BPF_CORE_READ(vma, vm_end);
	return 0;
}

/* End of the VMA holding sp, or 0 when it cannot be known now (mmap lock contended). */
static __always_inline __u64 stack_vma_end(struct task_struct *task, __u32 tid, __u64 sp)
{
	struct stack_range *cached = bpf_map_lookup_elem(&stack_ranges, &tid);
	struct stack_range r = {};

	if (cached && sp >= cached->start && sp < cached->end)
		return cached->end;
	if (bpf_find_vma(task, sp, vma_range_cb, &r, 0) != 0 || r.end <= sp)
		return 0;
	bpf_map_update_elem(&stack_ranges, &tid, &r, BPF_ANY);
	return r.end;
}

/* State of the page-by-page copy, shared with its bpf_loop() callback. */
struct page_copy_ctx {
	__u64 sp;
	__u32 cpu;
	__u32 want;
	__u32 off;
	bool partial;
};

/*
 * One page (or the rest of sp's page) per call. A bpf_loop() callback is verified once,
 * whatever stack_bytes is; an unrolled loop over a constant from .rodata is not, and blows
 * the verifier's instruction budget for some sizes.
 */
static long page_copy_cb(__u32 i, void *data)
{
	struct page_copy_ctx *c = data;
	struct sample_buf *b = bpf_map_lookup_elem(&scratch, &c->cpu);
	__u64 off = c->off, want = c->want, addr, chunk;

	if (!b || off >= want || off > PROFD_STACK_BYTES_MAX)
		return 1;
	addr = c->sp + off;
	chunk = PAGE_SZ - (addr & (PAGE_SZ - 1));
	if (chunk > want - off)
		chunk = want - off;
	/* Bounds the verifier can follow: 1..PAGE_SZ bytes into the buffer's last page. */
	chunk &= 2 * PAGE_SZ - 1;
	if (chunk == 0 || chunk > PAGE_SZ)
		return 1;
	if (bpf_probe_read_user(b->stack + off, chunk, (void *)addr) != 0) {
		c->partial = true;
		return 1;
	}
	c->off = off + chunk;
	return 0;
}

/*
 * Copy the user stack from sp upwards. Preferred: bounded by the end of the VMA holding sp,
 * so a thread near the top of its stack copies what exists rather than failing. When the VMA
 * cannot be looked up (mmap lock contended) or the copy faults, copy page by page and stop at
 * the first page that cannot be read.
 */
static __always_inline __u32 copy_user_stack(struct task_struct *task, struct sample_buf *b,
					     __u32 cpu, __u32 tgid, __u32 tid, __u64 sp,
					     __u16 *flags, __u64 *ret_end)
{
	struct page_copy_ctx pc = {.sp = sp, .cpu = cpu};
	__u64 want = stack_bytes, end = stack_vma_end(task, tid, sp), avail, lim;
	bool sized = false;
	__u32 *gap;

	*ret_end = end;
	if (want > PROFD_STACK_BYTES_MAX)
		want = PROFD_STACK_BYTES_MAX;
	if (end) {
		*flags |= PROFD_SAMPLE_STACK_VMA;
		avail = end - sp;
		/* The frames end `gap` bytes below the VMA's end, however deep the stack is now. */
		if (stack_sizing && (gap = bpf_map_lookup_elem(&stack_gaps, &tgid))) {
			lim = avail > *gap + MIN_COPY ? avail - *gap : MIN_COPY;
			if (lim < want && lim < avail) {
				want = lim;
				sized = true;
			}
		}
		if (avail < want)
			want = avail;
		if (want <= PROFD_STACK_BYTES_MAX &&
		    bpf_probe_read_user(b->stack, want, (void *)sp) == 0) {
			if (sized)
				*flags |= PROFD_SAMPLE_STACK_SIZED;
			return want;
		}
	}
	pc.want = want;
	bpf_loop(PROFD_STACK_BYTES_MAX / PAGE_SZ + 1, page_copy_cb, &pc, 0);
	if (pc.partial)
		*flags |= PROFD_SAMPLE_STACK_PARTIAL;
	else if (sized && pc.off == want)
		*flags |= PROFD_SAMPLE_STACK_SIZED;
	return pc.off;
}

/* ---- CPython frame chains */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFD_MAX_PY_PROCS);
	__type(key, __u32);
	__type(value, struct profd_py_proc);
} py_procs SEC(".maps");

/* tid → its PyThreadState, as last found (checked against native_thread_id on every use). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFD_MAX_PY_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} py_tstates SEC(".maps");

/*
 * (process, code object address) pairs whose code record was sent, with the fingerprint of the
 * code object sent (its file name and qualified name pointers): a code object freed and
 * another allocated at its address has another fingerprint, and is sent again rather than
 * named as the old one.
 */
struct py_code_key {
	__u32 tgid;
	__u32 pad;
	__u64 code;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFD_MAX_PY_CODES);
	__type(key, struct py_code_key);
	__type(value, __u64);
} py_codes_sent SEC(".maps");

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr) != 0)
		return 0;
	return v;
}

/* The thread id as the thread's own PID namespace sees it: what CPython stores (gettid()). */
static __always_inline __u64 task_ns_tid(struct task_struct *task)
{
	struct pid *p = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);
	int nr = 0;

	bpf_core_read(&nr, sizeof(nr), &p->numbers[level & 31].nr);
	return (__u64)nr;
}

struct tstate_search {
	__u64 tstate; /* current candidate, then the answer */
	__u64 want;   /* namespace tid */
	__u16 next, tid_off;
	bool found;
};

static long tstate_search_cb(__u32 i, void *data)
{
	struct tstate_search *t = data;

	if (!t->tstate)
		return 1;
	if (read_u64(t->tstate + t->tid_off) == t->want) {
		t->found = true;
		return 1;
	}
	t->tstate = read_u64(t->tstate + t->next);
	return 0;
}

/* The PyThreadState of this thread: remembered, else searched in every interpreter's list. */
static __always_inline __u64 py_find_tstate(const struct profd_py_proc *pp, __u32 tid, __u64 ns_tid)
{
	__u64 *cached = bpf_map_lookup_elem(&py_tstates, &tid);
	struct tstate_search t = {.want = ns_tid, .next = pp->tstate_next,
				  .tid_off = pp->tstate_native_thread_id};
	__u64 interp;

	if (cached && *cached && read_u64(*cached + t.tid_off) == ns_tid)
		return *cached;
	interp = read_u64(pp->runtime + pp->runtime_interpreters_head);
	for (int i = 0; i < PROFD_PY_MAX_INTERPS && interp; i++) {
		t.tstate = read_u64(interp + pp->interp_threads_head);
		bpf_loop(PROFD_PY_MAX_TSTATES, tstate_search_cb, &t, 0);
		if (t.found) {
			bpf_map_update_elem(&py_tstates, &tid, &t.tstate, BPF_ANY);
			return t.tstate;
		}
		interp = read_u64(interp + pp->interp_next);
	}
	return 0;
}

struct py_walk {
	__u64 frame;
	__u32 cpu;
	__u32 base; /* where frame 0 goes in sample_buf.stack (= ustack_len) */
	__u16 code, previous, instr, owner, is_entry;
	__u16 code_qualname, code_filename, code_linetable;
	__u32 tgid;
	__u8 owner_cstack;
	bool error;
};

static __always_inline __u64 head_u64(const struct profd_py_code *c, __u16 off)
{
	__u64 v;

	if (off > PROFD_PY_CODE_HEAD - sizeof(v))
		return 0;
	__builtin_memcpy(&v, c->head + off, sizeof(v));
	return v;
}

/*
 * What tells a code object from another later allocated at its address: its file name and
 * qualified name objects (two code objects of one file share the first; "<module>" and
 * "<lambda>" are interned and shared, but not with the same file name). One read of the span
 * holding both when they are close (3.11, 3.12: 24 bytes apart), else two. Never 0.
 */
static __always_inline __u64 py_code_fingerprint(struct py_walk *w, __u64 code)
{
	__u32 lo = w->code_filename < w->code_qualname ? w->code_filename : w->code_qualname;
	__u32 hi = w->code_filename < w->code_qualname ? w->code_qualname : w->code_filename;
	__u32 d = hi - lo;
	__u64 span[4] = {}, a, q;

	if (d <= 24 && (d & 7) == 0) {
		if (bpf_probe_read_user(span, sizeof(span), (void *)(code + lo)) != 0)
			return 1;
		a = span[0];
		q = d == 0 ? span[0] : d == 8 ? span[1] : d == 16 ? span[2] : span[3];
	} else {
		a = read_u64(code + lo);
		q = read_u64(code + hi);
	}
	return (a ^ (q << 17 | q >> 47)) | 1;
}

/*
 * Send a code record for `code` unless one was sent for it (PROFD_PY_CODES_PER_SAMPLE at most
 * per sample: the others go with later samples).
 */
static __always_inline void py_send_code(struct py_walk *w, struct sample_buf *b, __u64 code)
{
	struct py_code_key key = {.tgid = w->tgid, .code = code};
	struct profd_py_code *c;
	__u64 p, fp, *sent;

	if (w->code_qualname == PROFD_PY_OFF_NONE || !code || b->py_codes_budget == 0)
		return;
	fp = py_code_fingerprint(w, code);
	sent = bpf_map_lookup_elem(&py_codes_sent, &key);
	if (sent && *sent == fp)
		return;
	c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c)
		return; /* not marked sent: a later sample tries again */
	b->py_codes_budget--;
	c->hdr.type = PROFD_REC_PY_CODE;
	c->hdr.version = PROFD_RECORD_VERSION;
	c->hdr.size = sizeof(*c);
	c->time_ns = bpf_ktime_get_ns();
	c->code = code;
	c->pid = w->tgid;
	c->missing = 0;
	if (bpf_probe_read_user(c->head, sizeof(c->head), (void *)code) != 0) {
		__builtin_memset(c->head, 0, sizeof(c->head));
		c->missing |= 1;
	}
	p = head_u64(c, w->code_qualname);
	if (!p || bpf_probe_read_user(c->qualname, sizeof(c->qualname), (void *)p) != 0) {
		__builtin_memset(c->qualname, 0, sizeof(c->qualname));
		c->missing |= 2;
	}
	p = head_u64(c, w->code_filename);
	if (!p || bpf_probe_read_user(c->filename, sizeof(c->filename), (void *)p) != 0) {
		__builtin_memset(c->filename, 0, sizeof(c->filename));
		c->missing |= 4;
	}
	p = head_u64(c, w->code_linetable);
	if (!p || bpf_probe_read_user(c->linetable, sizeof(c->linetable), (void *)p) != 0) {
		__builtin_memset(c->linetable, 0, sizeof(c->linetable));
		c->missing |= 8;
	}
	bpf_ringbuf_submit(c, 0);
	bpf_map_update_elem(&py_codes_sent, &key, &fp, BPF_ANY);
}

static __always_inline __u64 frame_u64(struct sample_buf *b, __u16 off)
{
	__u64 v;

	__builtin_memcpy(&v, b->frame + (off & 63), sizeof(v));
	return v;
}

/*
 * Where frame number `i` of the walk is kept: the innermost PROFD_PY_INNER_FRAMES in place
 * after the user stack, the others in the ring of the last PROFD_PY_OUTER_FRAMES.
 */
static __always_inline __u64 walk_slot(struct py_walk *w, __u32 i)
{
	if (i >= PROFD_PY_INNER_FRAMES)
		return RING_OFF + (__u64)((i - PROFD_PY_INNER_FRAMES) & (PROFD_PY_OUTER_FRAMES - 1)) *
					  sizeof(struct profd_py_frame);
	return w->base + (__u64)i * sizeof(struct profd_py_frame);
}

/* One _PyInterpreterFrame per call: read it at once, record its code and instruction. */
static long py_walk_cb(__u32 i, void *data)
{
	struct py_walk *w = data;
	struct sample_buf *b = bpf_map_lookup_elem(&scratch, &w->cpu);
	struct profd_py_frame *f;
	__u64 code, instr, off;
	__u8 owner;

	if (!b || !w->frame)
		return 1;
	if (bpf_probe_read_user(b->frame, PROFD_PY_FRAME_READ, (void *)w->frame) != 0) {
		w->error = true;
		return 1;
	}
	owner = b->frame[w->owner & 127];
	if (w->owner_cstack != 0xff && owner == w->owner_cstack) {
		/* A C-stack shim: the frame walked before it was its eval call's first. */
		if (b->py_n > 0) {
			off = walk_slot(w, b->py_n - 1);
			if (off <= RING_OFF + sizeof(b->py_ring) - sizeof(*f)) {
				f = (void *)(b->stack + off);
				f->flags |= PROFD_PY_FRAME_ENTRY;
			}
		}
		w->frame = frame_u64(b, w->previous);
		return 0;
	}
	if (b->py_n >= PROFD_PY_MAX_WALK)
		return 1; /* still frames left: the caller flags the chain as truncated */
	off = walk_slot(w, b->py_n);
	if (off > RING_OFF + sizeof(b->py_ring) - sizeof(*f))
		return 1;
	f = (void *)(b->stack + off);
	if (b->py_n >= PROFD_PY_MAX_FRAMES) {
		/* The ring is full: its oldest frame is counted, not kept. */
		b->py_skipped++;
		if (f->flags & PROFD_PY_FRAME_ENTRY)
			b->py_skipped_entries++;
	}
	code = frame_u64(b, w->code);
	instr = frame_u64(b, w->instr);
	py_send_code(w, b, code);
	f->code = code;
	f->instr_delta = instr >= code && instr - code < 0xffffffffull ? instr - code : 0xffffffffu;
	f->flags = 0;
	if (w->is_entry != PROFD_PY_OFF_NONE && b->frame[w->is_entry & 127])
		f->flags = PROFD_PY_FRAME_ENTRY;
	b->py_n++;
	w->frame = frame_u64(b, w->previous);
	return 0;
}

/*
 * After the walk: turn 0 writes the sample's Python counts, the turns after it copy the ring
 * of outer frames into the sample after the innermost ones, oldest first. (In a callback, so
 * the program after the walk sees one state, not one per outcome.)
 */
static long py_finish_cb(__u32 i, void *data)
{
	struct py_walk *w = data;
	struct sample_buf *b = bpf_map_lookup_elem(&scratch, &w->cpu);
	__u64 off;
	__u32 j;

	if (!b)
		return 1;
	if (i == 0) {
		b->py_ring_n = 0;
		b->py_ring_first = 0;
		if (b->py_n > PROFD_PY_INNER_FRAMES) {
			b->py_ring_n = b->py_n - PROFD_PY_INNER_FRAMES;
			if (b->py_ring_n > PROFD_PY_OUTER_FRAMES) {
				b->py_ring_first = b->py_ring_n; /* the oldest slot, modulo the ring */
				b->py_ring_n = PROFD_PY_OUTER_FRAMES;
			}
			b->s.py_nframes = PROFD_PY_INNER_FRAMES + b->py_ring_n;
		} else {
			b->s.py_nframes = b->py_n;
		}
		b->s.py_skipped = b->py_skipped < 0xffff ? b->py_skipped : 0xffff;
		b->s.py_skipped_entries = b->py_skipped_entries < 0xffff ? b->py_skipped_entries : 0xffff;
		return 0;
	}
	j = i - 1;
	if (j >= b->py_ring_n)
		return 1;
	off = w->base + (__u64)(PROFD_PY_INNER_FRAMES + j) * sizeof(struct profd_py_frame);
	if (off > PROFD_STACK_BYTES_MAX + PAGE_SZ + PY_BYTES - sizeof(struct profd_py_frame))
		return 1;
	__builtin_memcpy(b->stack + off,
			 b->py_ring + ((b->py_ring_first + j) & (PROFD_PY_OUTER_FRAMES - 1)) *
					      sizeof(struct profd_py_frame),
			 sizeof(struct profd_py_frame));
	return 0;
}

/*
 * Append this thread's Python frames after the user stack copied into b (ustack_len bytes) and
 * set s->py_nframes, s->py_skipped*. Flags say why a chain is missing or cut.
 */
static __always_inline void py_walk(struct task_struct *task, struct sample_buf *b, __u32 cpu,
				     __u32 tgid, __u32 tid, __u32 ustack_len,
				     struct profd_sample *s)
{
	struct profd_py_proc *pp = bpf_map_lookup_elem(&py_procs, &tgid);
	struct py_walk w = {.cpu = cpu, .base = ustack_len};
	__u64 tstate, cframe;

	if (!pp)
		return;
	s->flags |= PROFD_SAMPLE_PY;
	if (pp->frame_code > 64 - 8 || pp->frame_previous > 64 - 8 || pp->frame_instr > 64 - 8 ||
	    pp->frame_owner >= PROFD_PY_FRAME_READ ||
	    (pp->frame_is_entry != PROFD_PY_OFF_NONE && pp->frame_is_entry >= PROFD_PY_FRAME_READ)) {
		s->flags |= PROFD_SAMPLE_PY_ERROR;
		return;
	}
	tstate = py_find_tstate(pp, tid, task_ns_tid(task));
	if (!tstate) {
		s->flags |= PROFD_SAMPLE_PY_NO_TSTATE;
		return;
	}
	if (pp->tstate_current_frame != PROFD_PY_OFF_NONE) {
		w.frame = read_u64(tstate + pp->tstate_current_frame);
	} else {
		cframe = read_u64(tstate + pp->tstate_cframe);
		w.frame = cframe ? read_u64(cframe + pp->cframe_current_frame) : 0;
	}
	w.code = pp->frame_code;
	w.previous = pp->frame_previous;
	w.instr = pp->frame_instr;
	w.owner = pp->frame_owner;
	w.is_entry = pp->frame_is_entry;
	w.owner_cstack = pp->owner_cstack;
	w.tgid = tgid;
	w.code_qualname = pp->code_qualname;
	w.code_filename = pp->code_filename;
	w.code_linetable = pp->code_linetable;
	if (w.code_qualname > PROFD_PY_CODE_HEAD - 8 || w.code_filename > PROFD_PY_CODE_HEAD - 8 ||
	    w.code_linetable > PROFD_PY_CODE_HEAD - 8)
		w.code_qualname = PROFD_PY_OFF_NONE;
	/* Shim frames take loop turns too: room for one per frame. */
	b->py_n = 0;
	b->py_codes_budget = PROFD_PY_CODES_PER_SAMPLE;
	b->py_skipped = 0;
	b->py_skipped_entries = 0;
	bpf_loop(2 * PROFD_PY_MAX_WALK, py_walk_cb, &w, 0);
	if (w.error)
		s->flags |= PROFD_SAMPLE_PY_ERROR;
	else if (w.frame && b->py_n >= PROFD_PY_MAX_WALK)
		s->flags |= PROFD_SAMPLE_PY_TRUNCATED;
	bpf_loop(PROFD_PY_OUTER_FRAMES + 1, py_finish_cb, &w, 0);
}

/*
 * Wake the reader only when the ring buffer is filling up: it drains on its own poll timer
 * (capture_poll), so a wakeup per sample (an irq_work and a remote wakeup in the sampled
 * task's interrupt) buys nothing.
 */
/*
 * The uid a same-user caller must have to see this sample (see profd_sample.uid): every uid and
 * every gid of the thread agree, and its mm is dumpable (SUID_DUMP_USER in the low bits of
 * mm->flags, an unsigned long or a one-word bitmap depending on the kernel).
 */
static __always_inline __u32 sample_owner(struct task_struct *task)
{
	const struct cred *c = BPF_CORE_READ(task, cred);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u32 uid, gid;
	__u64 mmflags = 0;

	if (!c || !mm)
		return PROFD_UID_NONE;
	uid = BPF_CORE_READ(c, uid.val);
	gid = BPF_CORE_READ(c, gid.val);
	if (BPF_CORE_READ(c, euid.val) != uid || BPF_CORE_READ(c, suid.val) != uid ||
	    BPF_CORE_READ(c, fsuid.val) != uid || BPF_CORE_READ(c, egid.val) != gid ||
	    BPF_CORE_READ(c, sgid.val) != gid || BPF_CORE_READ(c, fsgid.val) != gid)
		return PROFD_UID_NONE;
	if (bpf_core_read(&mmflags, sizeof(mmflags), &mm->flags) || (mmflags & 3) != 1)
		return PROFD_UID_NONE;
	return uid;
}

static __always_inline __u64 submit_flags(void)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return avail > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Record the current task into the ring buffer: a CPU sample (perf event) or an off-CPU wait
 * (the task just got the CPU back). `slot` is its scratch record.
 */
static __always_inline int record_current(void *ctx, __u16 type, __u32 slot, bool user_mode,
					  __u64 off_cpu_ns, __u8 state, const __u64 *kstack,
					  __u32 kstack_len)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task;
	struct profd_sample *s;
	struct sample_buf *b;
	__u64 off;
	long n;

	b = bpf_map_lookup_elem(&scratch, &slot);
	if (!b)
		return 0;
	s = &b->s;
	task = bpf_get_current_task_btf();

	s->hdr.type = type;
	s->hdr.version = PROFD_RECORD_VERSION;
	s->time_ns = bpf_ktime_get_ns();
	s->off_cpu_ns = off_cpu_ns;
	s->pid = tgid;
	s->tid = (__u32)id;
	s->cpu = bpf_get_smp_processor_id();
	s->e_machine = SAMPLE_EM;
	s->flags = 0;
	s->state = state;
	s->reserved = 0;
	s->py_nframes = 0;
	s->kstack_len = 0;
	s->ustack_len = 0;
	s->stack_above = PROFD_STACK_ABOVE_UNKNOWN;
	s->py_skipped = 0;
	s->py_skipped_entries = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	BPF_CORE_READ_STR_INTO(&s->pcomm, task, group_leader, comm);
	if (user_mode)
		s->flags |= PROFD_SAMPLE_USER_MODE;

	if (!task->mm) {
		s->flags |= PROFD_SAMPLE_KERNEL_THREAD;
		s->uid = PROFD_UID_NONE;
		__builtin_memset(s->regs, 0, sizeof(s->regs));
	} else {
		/* The task's saved user registers: right whether the tick hit user or kernel. */
		struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
		__u64 end = 0;

		s->uid = sample_owner(task);
		regs_fill(uregs, s->regs);
		s->ustack_len = copy_user_stack(task, b, slot, tgid, s->tid, s->regs[1],
					       &s->flags, &end);
		if (end && end - s->regs[1] >= s->ustack_len &&
		    end - s->regs[1] - s->ustack_len < PROFD_STACK_ABOVE_UNKNOWN)
			s->stack_above = end - s->regs[1] - s->ustack_len;
		if (python_frames)
			py_walk(task, b, slot, tgid, s->tid, s->ustack_len, s);
	}

	/* The kernel IPs last, only as many as there are (none when user code was interrupted). */
	off = s->ustack_len + (__u64)s->py_nframes * sizeof(struct profd_py_frame);
	if (off > PROFD_STACK_BYTES_MAX + PAGE_SZ + PY_BYTES)
		return 0;
	if (user_mode) {
		/* nothing */
	} else if (kstack) {
		/* All of them into the scratch record (a constant size the verifier can check):
		 * only kstack_len of them go into the ring buffer. */
		if (bpf_probe_read_kernel(b->stack + off, KSTACK_BYTES, kstack) == 0)
			s->kstack_len = kstack_len < PROFD_MAX_KSTACK ? kstack_len : PROFD_MAX_KSTACK;
	} else {
		n = bpf_get_stack(ctx, b->stack + off, KSTACK_BYTES, 0);
		if (n > 0)
			s->kstack_len = n / sizeof(__u64);
	}

	__u64 size = sizeof(*s) + off + (__u64)s->kstack_len * sizeof(__u64);
	if (size > sizeof(*b))
		return 0;
	s->hdr.size = size;
	if (bpf_ringbuf_output(&events, b, size, submit_flags()) != 0)
		count_lost(type == PROFD_REC_OFFCPU ? PROFD_LOST_OFFCPU : PROFD_LOST_SAMPLES);
	return 0;
}

SEC("perf_event")
int profd_sample(struct bpf_perf_event_data *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!is_target(tgid))
		return 0;
	return record_current(ctx, PROFD_REC_SAMPLE, bpf_get_smp_processor_id(),
			      ctx_user_mode(ctx), 0, 0, NULL, 0);
}

/* ---- off-CPU waits (loaded only with --off-cpu) */

/*
 * Per thread (task-local storage: no hashing, freed with the thread), created for a thread of
 * interest the first time it blocks: when its current wait began and where its user code
 * stood, and a wait long enough to record that its system call exit has not recorded yet.
 */
struct offcpu_task {
	__u64 start_ns; /* 0: not waiting */
	__u64 ip, sp;
	__u32 state;
	__u32 kstack_len;
	__u64 due_ns; /* waits of the current system call not recorded yet (0: none) */
	__u32 due_state;
	__u32 reserved;
	__u64 kstack[PROFD_MAX_KSTACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_task);
} offcpu_tasks SEC(".maps");

/* This CPU's budget: waits recorded in the current second. */
struct offcpu_budget {
	__u64 second;
	__u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_budget);
} offcpu_budget SEC(".maps");

/*
 * At every context switch: a thread of interest that leaves the CPU blocked (sleeping,
 * waiting for I/O or a lock: not preempted, which is no wait) starts a wait; the thread that
 * gets the CPU ends its wait, which is due until its system call returns, with the kernel
 * stack it slept in once the waits reach off_cpu_min_ns. Cheap on purpose: task-local storage
 * only; the user stack is copied when the thread is back in its own context (profd_sys_exit).
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(profd_switch_out, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct offcpu_task *t;
	__u64 now = bpf_ktime_get_ns(), waited;
	long n;

	if (!preempt && prev_state != 0 && prev->mm && is_target(prev->tgid)) {
		t = bpf_task_storage_get(&offcpu_tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (t) {
			struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(prev);
			__u64 r[4];

			regs_fill(uregs, r);
			/*
			 * Time not yet recorded belongs to the user code that waited: if that
			 * moved on (a wait that ended in no system call), it is dropped.
			 */
			if (t->due_ns && (r[0] != t->ip || r[1] != t->sp)) {
				if (t->due_ns >= off_cpu_min_ns)
					count_lost(PROFD_LOST_OFFCPU_MOVED);
				t->due_ns = 0;
			}
			t->start_ns = now;
			t->ip = r[0];
			t->sp = r[1];
			t->state = prev_state & 0x2 ? PROFD_OFFCPU_DISK :
				   prev_state & 0x1 ? PROFD_OFFCPU_SLEEP : PROFD_OFFCPU_OTHER;
		}
	}

	t = bpf_task_storage_get(&offcpu_tasks, next, 0, 0);
	if (!t || !t->start_ns)
		return 0;
	waited = now - t->start_ns;
	t->start_ns = 0;
	/*
	 * One system call may sleep several times (a wakeup that was not the one it waited
	 * for): its waits add up, and the threshold applies to their sum when it returns.
	 */
	t->due_ns += waited;
	t->due_state = t->state;
	if (t->due_ns >= off_cpu_min_ns && t->due_ns - waited < off_cpu_min_ns) {
		/* Not running yet: its saved kernel stack is where it slept. */
		n = bpf_get_task_stack(next, t->kstack, sizeof(t->kstack), 0);
		t->kstack_len = n > 0 ? n / sizeof(__u64) : 0;
	}
	return 0;
}

/*
 * A thread leaves a system call: if it has a wait due, record it now, in its own context
 * (its user stack is readable here), weighted by how long it waited. Nearly every wait is a
 * system call (sleeps, futexes, poll, reads); a wait that was not (a page fault) left the
 * thread at another user address, and is dropped rather than given the wrong stack.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(profd_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now, waited;
	__u32 zero = 0, cpu = bpf_get_smp_processor_id();
	struct task_struct *task = bpf_get_current_task_btf();
	struct offcpu_task *t = bpf_task_storage_get(&offcpu_tasks, task, 0, 0);
	struct offcpu_budget *bud;
	__u64 r[4];

	if (!t || !t->due_ns)
		return 0;
	waited = t->due_ns;
	t->due_ns = 0;
	if (waited < off_cpu_min_ns || !is_target(id >> 32))
		return 0;
	regs_fill((struct pt_regs *)bpf_task_pt_regs(task), r);
	if (r[0] != t->ip || r[1] != t->sp) {
		count_lost(PROFD_LOST_OFFCPU_MOVED);
		return 0;
	}
	now = bpf_ktime_get_ns();
	bud = bpf_map_lookup_elem(&offcpu_budget, &zero);
	if (!bud)
		return 0;
	if (bud->second != now / 1000000000ull) {
		bud->second = now / 1000000000ull;
		bud->n = 0;
	}
	if (bud->n >= off_cpu_budget) {
		count_lost(PROFD_LOST_OFFCPU_BUDGET);
		return 0;
	}
	bud->n++;
	/* The second half of the scratch records: a sample never waits for this one. */
	return record_current(ctx, PROFD_REC_OFFCPU, cpu + n_cpus, false, waited, t->due_state,
			      t->kstack, t->kstack_len);
}

static __always_inline void emit_task_event(__u16 type, __u32 pid, __u32 ppid,
					    struct task_struct *task, __u64 wakeup)
{
	struct profd_task_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(PROFD_LOST_TASK_EVENTS);
		return;
	}
	e->hdr.type = type;
	e->hdr.version = PROFD_RECORD_VERSION;
	e->hdr.size = sizeof(*e);
	e->time_ns = bpf_ktime_get_ns();
	e->pid = pid;
	e->ppid = ppid;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, wakeup ? wakeup : submit_flags());
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(profd_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid, tid = p->pid;

	/* A new image, a new stack: what was remembered of the old one is no bound for it. */
	bpf_map_delete_elem(&stack_ranges, &tid);
	/* Nor is its interpreter: userspace describes the new image again if it runs Python. */
	bpf_map_delete_elem(&py_procs, &tgid);
	bpf_map_delete_elem(&py_tstates, &tid);
	/* Nor is the stack gap learnt from its stacks. */
	bpf_map_delete_elem(&stack_gaps, &tgid);
	/*
	 * Wake the reader now: the new image's mappings are in the side-band stream, and the
	 * sooner userspace sees them, the sooner it describes an interpreter (py_procs) for the
	 * process's first samples.
	 */
	if (is_target(tgid))
		emit_task_event(PROFD_REC_EXEC, tgid, 0, p, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(profd_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	/* Only the end of the whole thread group matters to the process table. */
	if (p->pid != p->tgid || !is_target(tgid))
		return 0;
	emit_task_event(PROFD_REC_EXIT, tgid, 0, p, 0);
	bpf_map_delete_elem(&py_procs, &tgid);
	bpf_map_delete_elem(&stack_gaps, &tgid);
	if (filter_pids)
		bpf_map_delete_elem(&targets, &tgid);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(profd_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, ptid = parent->pid, ctid = child->pid;
	struct profd_py_proc *pp;
	__u8 one = 1;
	__u32 *gap;

	/*
	 * The child inherited the per-task event of the thread that created it (copy_process()
	 * copies them before this tracepoint): note it, so userspace does not open a second one.
	 */
	if (task_events && marking_task_events &&
	    bpf_map_lookup_elem(&task_event_tids, &ptid))
		bpf_map_update_elem(&task_event_tids, &ctid, &one, BPF_ANY);
	if (ptgid == ctgid || !is_target(ptgid))
		return 0;
	if (filter_pids) {
		if (!follow_forks)
			return 0;
		bpf_map_update_elem(&targets, &ctgid, &one, BPF_ANY);
	}
	/*
	 * The child runs the parent's image until it execs: the same stack layout (the gap
	 * learnt from the parent's stacks) and the same interpreter at the same addresses, so
	 * its first samples copy no more than the parent's and carry Python frames. profd_exec
	 * forgets both when the child execs.
	 */
	gap = bpf_map_lookup_elem(&stack_gaps, &ptgid);
	if (gap) {
		__u32 g = *gap;

		bpf_map_update_elem(&stack_gaps, &ctgid, &g, BPF_ANY);
	}
	pp = bpf_map_lookup_elem(&py_procs, &ptgid);
	if (pp) {
		struct profd_py_proc copy = *pp;

		bpf_map_update_elem(&py_procs, &ctgid, &copy, BPF_ANY);
	}
	emit_task_event(PROFD_REC_FORK, ctgid, ptgid, child, 0);
	return 0;
}
