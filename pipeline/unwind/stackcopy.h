/* SPDX-License-Identifier: MIT */
/*
 * What one unwinding step works on, shared by the walk (unwind.h) and the CFI rules (cfi.h)
 * without either including the other: the architecture-neutral registers, the sample's copy of
 * the user stack with its address-space lookup (struct unwind_input), the one way to read that
 * copy (unwind_read_u64), and why a walk stops (enum unwind_stop).
 */
#pragma once

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum unwind_stop {
	UNWIND_STOP_END = 0,       /* reached the outermost frame (fp == 0 / CFI "undefined RA") */
	UNWIND_STOP_TRUNCATED,     /* needed a read outside the copied stack bytes */
	UNWIND_STOP_NO_MAPPING,    /* a pc fell outside every known mapping */
	UNWIND_STOP_NO_CFI,        /* no unwind info and no usable frame pointer for a pc */
	UNWIND_STOP_DEPTH,         /* hit the depth limit */
	UNWIND_STOP_NO_PROGRESS,   /* sp/fp did not move towards the stack base */
	UNWIND_STOP_BAD_RA,        /* return address 0 or not plausibly code */
	UNWIND_STOP_KERNEL_THREAD, /* no user context at all (set by callers, never by the walk) */
	_UNWIND_STOP_MAX,
};

/*
 * Architecture-neutral register set the unwinders need.
 * x86_64:  pc = rip, sp = rsp, fp = rbp, lr unused (0).
 * aarch64: pc = pc,  sp = sp,  fp = x29, lr = x30.
 */
struct unwind_regs {
	uint64_t pc, sp, fp, lr;
};

/* What the address-space callback reports for a code address. */
struct unwind_module {
	uint64_t start, end; /* the mapping containing the address, process addresses */
	void *table;         /* per-binary unwind table (CFI), NULL if none/not yet available */
	int64_t bias;        /* process address - table (ELF) address */
};

/*
 * Return 0 and fill *ret when `pc` is inside a mapping; -ENOENT when it is not (any other
 * negative value is treated the same: NO_MAPPING). Called once per frame, with pc - 1 for
 * return addresses (a call may be the last instruction of a mapping); must be cheap.
 */
typedef int (*unwind_find_module_t)(void *userdata, uint64_t pc, struct unwind_module *ret);

struct unwind_input {
	uint16_t e_machine; /* EM_X86_64 or EM_AARCH64 */
	struct unwind_regs regs;
	const uint8_t *stack; /* copy of target memory at [stack_start, stack_start + stack_len) */
	uint64_t stack_start; /* normally regs.sp */
	size_t stack_len;
	unwind_find_module_t find_module; /* may be NULL: then every pc counts as mapped */
	void *userdata;
};

/*
 * Read 8 bytes (little-endian, any alignment) of target memory from the stack copy. Returns
 * false when any of the 8 bytes is outside the copy; never reads outside it, whatever addr.
 */
static inline bool unwind_read_u64(const struct unwind_input *in, uint64_t addr, uint64_t *ret)
{
	uint64_t off, v;

	if (!in || !in->stack || !ret)
		return false;
	/* Work with the offset, never with addr + 8: a hostile fp near UINT64_MAX would wrap. */
	if (addr < in->stack_start)
		return false;
	off = addr - in->stack_start;
	if (off > in->stack_len || in->stack_len - off < sizeof(v))
		return false;
	/* A corrupt frame pointer may be misaligned; memcpy keeps that defined behaviour. */
	memcpy(&v, in->stack + off, sizeof(v));
	/* Both supported targets (x86_64, aarch64 Linux) are little-endian, whatever the host. */
	*ret = le64toh(v);
	return true;
}
