/* SPDX-License-Identifier: MIT */
/*
 * profd unwinder: registers + a copy of the user stack + an address-space lookup
 * → a list of code addresses, leaf first, plus why the walk stopped.
 *
 * The same entry point serves live ring-buffer samples and core dumps. The architecture is
 * picked at run time from the ELF e_machine of the sample (EM_X86_64, EM_AARCH64), never by
 * #ifdef, so both are built and tested on every host.
 *
 * Memory model: the only memory the unwinder reads is `stack`, a copy of the target's
 * addresses [stack_start, stack_start + stack_len). A read outside it ends the walk with
 * UNWIND_STOP_TRUNCATED. Nothing here allocates per call; the caller owns every buffer.
 *
 * Errors: unwind_stack() only fails (-EINVAL, -EOPNOTSUPP) for misuse or an unknown
 * architecture. A stack that cannot be walked further is data: see enum unwind_stop.
 *
 * The walk, one frame at a time (unwind.c):
 *   1. the pc must be in a mapping (find_module, with pc - 1 for return addresses), else
 *      NO_MAPPING; the frames before it are kept, the unmapped pc is not recorded;
 *   2. the frame is recorded (frame 0 = regs.pc, is_return false; every later frame is a
 *      return address, is_return true);
 *   3. one step to the caller: the module's CFI table (cfi.h; module->table, looked up at
 *      pc - 1 for return addresses) decides when it covers the pc: a signal trampoline
 *      ("S" augmentation) goes to struct unwind_arch.step_signal, a rule that says the
 *      return address is undefined ends the stack (END); a pc without an FDE, or a rule
 *      that cannot be applied (unsupported CFA expression, or cfi_step() answering NO_CFI),
 *      falls back to the frame pointer (struct unwind_arch.step_fp), else the walk stops;
 *   4. the recovered return address is stripped (strip_ra); 0 means the outermost frame was
 *      reached (END, complete); one that is not a multiple of code_align is BAD_RA.
 * DEPTH is reported only when another frame exists and max_frames are already recorded, so a
 * stack of exactly max_frames frames ends with END.
 *
 * Frame-pointer stops (both architectures): fp == 0 is END (glibc's _start zeroes rbp/x29);
 * an fp that is not 8-aligned, or below the frame's sp, is NO_PROGRESS (it is not a frame
 * pointer, or the chain does not climb towards the stack base; since the caller's sp is
 * fp + 16, this also makes each fp strictly greater than the previous one); a frame record
 * outside the stack copy is TRUNCATED. The return address read next to a bad saved fp is
 * still recorded; the walk stops on the following step, as Linux perf does.
 *
 * Known limitation of frame pointers on aarch64: a leaf that built no frame record keeps its
 * return address only in LR, and x29 still points at its caller's record, so the FP walk
 * (like Linux perf's) goes from the leaf straight to its caller's caller. Frame pointers
 * cannot tell the two kinds of leaf apart; the CFI step can, and takes the return address from
 * LR when the rule says it is still there (legal for the first frame only).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNWIND_MAX_DEPTH_DEFAULT 512
#define UNWIND_MAX_DEPTH_LIMIT 4096

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
 * Short stable name ("end", "truncated", "no_mapping", ...) used in labels, metrics and
 * synthetic frames; "unknown" for a value outside the enum.
 */
const char *unwind_stop_name(enum unwind_stop stop);

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

struct unwind_frame {
	uint64_t pc;      /* exact pc for frame 0, return address for the others */
	bool is_return;   /* true when pc is a return address: look it up at pc - 1 */
};

struct unwind_result {
	struct unwind_frame *frames; /* caller-provided, capacity max_frames */
	size_t max_frames;           /* depth limit; UNWIND_STOP_DEPTH when reached */
	size_t n_frames;
	enum unwind_stop stop;
	bool complete; /* the walk reached the root of the stack */
	/*
	 * How much of the copy the walk needed: from stack_start to the highest stack pointer it
	 * recovered (the outermost caller's CFA; every slot a step reads lies below the sp it
	 * recovers), at most stack_len. A capture can copy this many bytes and walk as far.
	 */
	uint64_t stack_used;
};

/* Per-architecture hooks, one file each (arch-x86_64.c, arch-aarch64.c). */
struct unwind_arch {
	uint16_t e_machine;
	const char *name;
	/* Remove pointer-authentication / tag bits from a recovered return address. */
	uint64_t (*strip_ra)(uint64_t ra);
	/* Instruction alignment: a return address that is not a multiple of it is BAD_RA. */
	uint64_t code_align;
	/*
	 * One frame-pointer step: from *regs (the current frame) compute the caller's regs.
	 * `first` is true for the sample's own frame. Returns 0 with *regs = the caller (pc is
	 * the raw return address, not yet stripped; registers it cannot recover are 0), or a
	 * stop reason > 0 with *regs undefined. END is 0 and so cannot be returned: reaching the
	 * outermost frame is reported as a caller with pc 0, which the loop turns into END,
	 * exactly like a zero return address.
	 */
	int (*step_fp)(const struct unwind_input *in, struct unwind_regs *regs, bool first);
	/*
	 * The frame is a sigreturn trampoline (CFI "S" augmentation): read the interrupted
	 * context's registers from the signal frame the kernel pushed at regs->sp. Same returns
	 * as step_fp; the resulting pc is exact (not a return address).
	 */
	int (*step_signal)(const struct unwind_input *in, struct unwind_regs *regs);
};

const struct unwind_arch *unwind_arch_find(uint16_t e_machine);
extern const struct unwind_arch unwind_arch_x86_64;
extern const struct unwind_arch unwind_arch_aarch64;

/*
 * Read 8 bytes (little-endian, any alignment) of target memory from the stack copy. Returns
 * false when any of the 8 bytes is outside the copy; never reads outside it, whatever addr.
 */
bool unwind_read_u64(const struct unwind_input *in, uint64_t addr, uint64_t *ret);

/*
 * Walk the stack. Fills res->frames/n_frames/stop/complete. See the top of this file.
 * -EINVAL: in, res or res->frames NULL, max_frames 0, stack NULL with stack_len > 0, or
 * stack_start + stack_len wrapping around. -EOPNOTSUPP: e_machine is not x86_64 or aarch64.
 * max_frames above UNWIND_MAX_DEPTH_LIMIT is treated as the limit. *res is untouched on error.
 */
int unwind_stack(const struct unwind_input *in, struct unwind_result *res);
