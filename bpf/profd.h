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

#define PROFD_RECORD_VERSION 2

#define PROFD_COMM_LEN 16
#define PROFD_MAX_KSTACK 64                  /* kernel IPs kept per sample */
#define PROFD_STACK_BYTES_DEFAULT (32 * 1024) /* user stack bytes copied per sample */
#define PROFD_STACK_BYTES_MAX (64 * 1024)
#define PROFD_MAX_TARGETS 4096 /* tgids in the filter map */
#define PROFD_MAX_STACK_RANGES 16384 /* threads whose stack VMA the BPF side remembers (LRU) */

enum profd_rec_type {
	PROFD_REC_SAMPLE = 1,
	PROFD_REC_EXEC = 2, /* a process called exec: its mappings changed */
	PROFD_REC_EXIT = 3, /* a thread group ended */
	PROFD_REC_FORK = 4, /* a filtered process forked a new process (now filtered too) */
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
};

struct profd_rec_hdr {
	__u16 type;    /* enum profd_rec_type */
	__u16 version; /* PROFD_RECORD_VERSION */
	__u32 size;    /* whole record, bytes */
};

/*
 * One sample: the fixed part below, then `ustack_len` bytes of user stack copied from the
 * address in regs[1] (sp) upwards.
 *
 * regs: x86_64: [0]=ip [1]=sp [2]=bp [3]=0; aarch64: [0]=pc [1]=sp [2]=x29 [3]=x30.
 */
struct profd_sample {
	struct profd_rec_hdr hdr;
	__u64 time_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
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
	__u32 reserved; /* 0 */
	char comm[PROFD_COMM_LEN];  /* thread name */
	char pcomm[PROFD_COMM_LEN]; /* thread group leader's name (the process) */
	__u64 regs[4];
	__u32 kstack_len; /* number of valid entries in kstack */
	__u32 ustack_len; /* bytes of user stack after this struct, copied from regs sp */
	__u64 kstack[PROFD_MAX_KSTACK];
	/* __u8 ustack[ustack_len]; */
};

struct profd_task_event {
	struct profd_rec_hdr hdr;
	__u64 time_ns;
	__u32 pid;  /* tgid the event is about (for FORK: the new child) */
	__u32 ppid; /* FORK: the parent tgid; otherwise 0 */
	char comm[PROFD_COMM_LEN];
};
