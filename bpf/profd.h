/* SPDX-License-Identifier: MIT */
/*
 * Record layout shared by the BPF program and userspace. Fixed-width fields and fixed arrays
 * only; every record starts with struct profd_rec_hdr, whose `version` must equal
 * PROFD_RECORD_VERSION and whose `size` is the record's full length in bytes.
 *
 * Bump PROFD_RECORD_VERSION on any change of layout.
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PROFD_RECORD_VERSION 5

#define PROFD_COMM_LEN 16
#define PROFD_MAX_KSTACK 64                  /* kernel IPs kept per sample */
#define PROFD_STACK_BYTES_DEFAULT (32 * 1024) /* user stack bytes copied per sample */
#define PROFD_STACK_BYTES_MAX (64 * 1024)
#define PROFD_MAX_TARGETS 4096 /* tgids in the filter map */
#define PROFD_MAX_STACK_GAPS 16384 /* processes with an adaptive stack copy (LRU) */
#define PROFD_MAX_TASK_EVENTS 65536 /* threads known to carry a per-task perf event (LRU) */
#define PROFD_MAX_STACK_RANGES 16384 /* threads whose stack VMA the BPF side remembers (LRU) */

/*
 * Indices of the BPF `lost` per-CPU array: what the BPF side did not record, by reason. Read by
 * sources/capture.c (capture_lost() sums the first three).
 */
enum profd_lost {
	PROFD_LOST_SAMPLES = 0,       /* samples that did not fit in the ring buffer */
	PROFD_LOST_TASK_EVENTS = 1,   /* exec/exit/fork records that did not fit */
	PROFD_LOST_OFFCPU = 2,        /* off-CPU waits that did not fit */
	PROFD_LOST_OFFCPU_BUDGET = 3, /* waits over the per-second, per-CPU budget */
	/* waits that did not end in a system call: the thread's user code had moved on when it
	 * was seen again (counted, not reported) */
	PROFD_LOST_OFFCPU_MOVED = 4,
	PROFD_LOST_N = 5,
};
/*
 * Python frames kept per sample: the PROFD_PY_INNER_FRAMES innermost and the
 * PROFD_PY_MAX_FRAMES - PROFD_PY_INNER_FRAMES outermost; the frames between are counted, not
 * kept (profd_sample.py_skipped). The walk follows at most PROFD_PY_MAX_WALK frames (C-stack
 * shim frames included); a longer chain is cut (PROFD_SAMPLE_PY_TRUNCATED).
 */
#define PROFD_PY_MAX_FRAMES 256
#define PROFD_PY_INNER_FRAMES 192
#define PROFD_PY_OUTER_FRAMES (PROFD_PY_MAX_FRAMES - PROFD_PY_INNER_FRAMES) /* a power of 2 */
#define PROFD_PY_MAX_WALK 1024
#define PROFD_MAX_PY_PROCS 4096      /* CPython processes the BPF side knows (profd_py_proc) */
#define PROFD_MAX_PY_THREADS 16384   /* threads whose PyThreadState address is remembered (LRU) */
#define PROFD_PY_MAX_INTERPS 8       /* interpreters searched for a thread's state */
#define PROFD_PY_MAX_TSTATES 512     /* thread states searched per interpreter */
#define PROFD_PY_FRAME_READ 72       /* bytes of a _PyInterpreterFrame read at once */
#define PROFD_MAX_PY_CODES 65536     /* (process, code object) pairs already sent (LRU) */
#define PROFD_PY_CODES_PER_SAMPLE 16 /* code records one sample may send at most */
#define PROFD_PY_CODE_HEAD 160       /* bytes of a code object a code record carries */
#define PROFD_PY_CODE_NAME 128       /* bytes of its qualified name's str object */
#define PROFD_PY_CODE_FILE 256       /* bytes of its file name's str object */
#define PROFD_PY_CODE_LINES 512      /* bytes of its location table's bytes object */

enum profd_rec_type {
	PROFD_REC_SAMPLE = 1,
	PROFD_REC_EXEC = 2, /* a process called exec: its mappings changed */
	PROFD_REC_EXIT = 3, /* a thread group ended */
	PROFD_REC_FORK = 4, /* a filtered process forked a new process (now filtered too) */
	/*
	 * A thread that had left the CPU blocked (not preempted) for at least the off-CPU
	 * threshold, recorded when it runs again: struct profd_sample, off_cpu_ns and state set.
	 */
	PROFD_REC_OFFCPU = 5,
	/*
	 * A code object of a CPython process, sent by the frame walk the first time it meets it
	 * (struct profd_py_code): what names it, read at once, so that it is named even when it
	 * is freed or its process exits before userspace reads the sample.
	 */
	PROFD_REC_PY_CODE = 6,
};

/* profd_sample.state of an off-CPU record: how the thread left the CPU. */
enum profd_offcpu_state {
	PROFD_OFFCPU_SLEEP = 1, /* TASK_INTERRUPTIBLE: waiting for an event (sleep, poll, read) */
	PROFD_OFFCPU_DISK = 2,  /* TASK_UNINTERRUPTIBLE: typically I/O or a kernel lock */
	PROFD_OFFCPU_OTHER = 3, /* stopped, traced, ... */
};

/* ELF machine numbers, as in <elf.h>; the BPF side cannot include it. */
#define PROFD_EM_X86_64 62
#define PROFD_EM_AARCH64 183

#define PROFD_UID_NONE 0xffffffffu /* profd_sample.uid: visible to privileged callers only */

enum profd_sample_flags {
	PROFD_SAMPLE_USER_MODE = 1u << 0,   /* the sample interrupted user code */
	PROFD_SAMPLE_KERNEL_THREAD = 1u << 1, /* no user context (kernel thread) */
	PROFD_SAMPLE_STACK_VMA = 1u << 2,   /* stack copy was bounded by the stack's VMA end */
	PROFD_SAMPLE_STACK_PARTIAL = 1u << 3, /* the copy stopped early at an unreadable page */
	PROFD_SAMPLE_PY = 1u << 4,           /* a CPython process: its frame chain was walked */
	/*
	 * The chain went on past PROFD_PY_MAX_WALK frames: frames outside the kept ones are
	 * missing and their number is unknown.
	 */
	PROFD_SAMPLE_PY_TRUNCATED = 1u << 5,
	PROFD_SAMPLE_PY_ERROR = 1u << 6,     /* the thread state or a frame could not be read */
	PROFD_SAMPLE_PY_NO_TSTATE = 1u << 7, /* no thread state for this thread (not running Python) */
	/*
	 * The copy stopped short of the stack's end and of the cap, where the gap userspace learnt
	 * for this process (map stack_gaps) says the outermost frame ends: a walk that runs out of
	 * bytes means the gap was too large.
	 */
	PROFD_SAMPLE_STACK_SIZED = 1u << 8,
};

/*
 * A CPython process, as userspace describes it to the BPF program (map py_procs, key tgid):
 * where _PyRuntime is and the offsets of the fields the frame-chain walk reads. Offsets are
 * bytes; PROFD_PY_OFF_NONE where the interpreter's version has no such field. Every frame
 * offset plus the field's size is at most PROFD_PY_FRAME_READ (userspace checks).
 */
#define PROFD_PY_OFF_NONE 0xffff
struct profd_py_proc {
	__u64 runtime; /* address of _PyRuntime in the process */
	__u16 runtime_interpreters_head;
	__u16 interp_next, interp_threads_head;
	__u16 tstate_next, tstate_native_thread_id;
	__u16 tstate_cframe, cframe_current_frame; /* 3.11, 3.12 */
	__u16 tstate_current_frame;                /* 3.13+ */
	__u16 frame_code, frame_previous, frame_instr, frame_owner;
	__u16 frame_is_entry; /* 3.11 */
	__u8 owner_cstack;    /* 3.12+: owner of C-stack shim frames; 0xff: none */
	__u8 reserved;
	/*
	 * Code object fields whose objects a code record carries: each at most
	 * PROFD_PY_CODE_HEAD - 8; PROFD_PY_OFF_NONE in code_qualname: send no code records.
	 */
	__u16 code_qualname, code_filename, code_linetable;
	__u16 reserved2[3];
};

enum profd_py_frame_flags {
	/*
	 * The first frame its _PyEval_EvalFrameDefault call ran: walking from the leaf, the frames
	 * up to and including this one belong to one native _PyEval_EvalFrameDefault frame.
	 */
	PROFD_PY_FRAME_ENTRY = 1u << 0,
};

/*
 * One Python frame of a sample, innermost first. When profd_sample.py_skipped is not 0, the
 * first PROFD_PY_INNER_FRAMES are the innermost frames, then py_skipped frames were walked but
 * not kept, then come the PROFD_PY_OUTER_FRAMES frames that follow them (the outermost unless
 * the sample is PROFD_SAMPLE_PY_TRUNCATED).
 */
struct profd_py_frame {
	__u64 code;        /* the frame's code object (f_code / f_executable) */
	__u32 instr_delta; /* instruction pointer - code, bytes; 0xffffffff if out of range */
	__u32 flags;       /* enum profd_py_frame_flags */
};

struct profd_rec_hdr {
	__u16 type;    /* enum profd_rec_type */
	__u16 version; /* PROFD_RECORD_VERSION */
	__u32 size;    /* whole record, bytes */
};

/*
 * One sample: the fixed part below, then `ustack_len` bytes of user stack copied from the
 * address in regs[1] (sp) upwards, then `py_nframes` struct profd_py_frame, then `kstack_len`
 * kernel IPs (__u64, leaf first). Only what is there is copied: a user-mode sample has no
 * kernel IPs, and nothing is padded. The parts after the fixed one are not aligned: copy them
 * out.
 *
 * regs: x86_64: [0]=ip [1]=sp [2]=bp [3]=0; aarch64: [0]=pc [1]=sp [2]=x29 [3]=x30.
 */
#define PROFD_STACK_ABOVE_UNKNOWN 0xffffffffu
struct profd_sample {
	struct profd_rec_hdr hdr; /* type PROFD_REC_SAMPLE or PROFD_REC_OFFCPU */
	__u64 time_ns;    /* CLOCK_MONOTONIC (bpf_ktime_get_ns); OFFCPU: when it ran again */
	__u64 off_cpu_ns; /* OFFCPU: how long the thread was off the CPU; SAMPLE: 0 */
	__u32 pid;     /* thread group id */
	__u32 tid;
	__u32 cpu;
	__u16 e_machine; /* PROFD_EM_* of the sampled user context */
	__u16 flags;     /* enum profd_sample_flags */
	/*
	 * Who may see this sample besides root (the daemon's own_processes policy): the thread's uid
	 * when its real, effective, saved and fs uids are all that one uid, its gids likewise agree,
	 * and its process is dumpable (the kernel's ptrace/perf_event_open test for a same-user
	 * caller). PROFD_UID_NONE otherwise, for kernel threads and when not known (perf.data).
	 */
	__u32 uid;
	__u16 py_nframes; /* Python frames after the user stack bytes */
	__u8 state;       /* OFFCPU: enum profd_offcpu_state; SAMPLE: 0 */
	__u8 reserved;    /* 0 */
	char comm[PROFD_COMM_LEN];  /* thread name */
	char pcomm[PROFD_COMM_LEN]; /* thread group leader's name (the process) */
	__u64 regs[4];
	__u32 kstack_len; /* kernel IPs at the end of the record, at most PROFD_MAX_KSTACK */
	__u32 ustack_len; /* bytes of user stack after this struct, copied from regs sp */
	/*
	 * Bytes between the end of the copy and the end of the stack's VMA (not copied): what the
	 * adaptive copy learns from. PROFD_STACK_ABOVE_UNKNOWN when the VMA was not known.
	 */
	__u32 stack_above;
	/*
	 * Python frames walked but not kept, between the innermost and the outermost kept ones
	 * (see struct profd_py_frame), and how many of them carry PROFD_PY_FRAME_ENTRY: the
	 * interpreter calls that ran only frames not kept. Both at most PROFD_PY_MAX_WALK.
	 */
	__u16 py_skipped;
	__u16 py_skipped_entries;
	/* __u8 ustack[ustack_len]; struct profd_py_frame py[py_nframes]; __u64 kstack[kstack_len]; */
};

/*
 * PROFD_REC_PY_CODE: the first PROFD_PY_CODE_HEAD bytes of the code object at `code` in
 * process `pid`, and the first bytes of the objects its qualname, filename and linetable
 * fields point to (the addresses are in `head`). A part that could not be read has its bit
 * in `missing` (1: head, 2: qualname, 4: filename, 8: linetable) and is zero.
 */
struct profd_py_code {
	struct profd_rec_hdr hdr;
	__u64 time_ns;
	__u64 code;
	__u32 pid;
	__u32 missing;
	__u8 head[PROFD_PY_CODE_HEAD];
	__u8 qualname[PROFD_PY_CODE_NAME];
	__u8 filename[PROFD_PY_CODE_FILE];
	__u8 linetable[PROFD_PY_CODE_LINES];
};

struct profd_task_event {
	struct profd_rec_hdr hdr;
	__u64 time_ns;
	__u32 pid;  /* tgid the event is about (for FORK: the new child) */
	__u32 ppid; /* FORK: the parent tgid; otherwise 0 */
	char comm[PROFD_COMM_LEN];
};
