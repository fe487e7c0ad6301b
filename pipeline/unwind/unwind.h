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

#include "pipeline/unwind/stackcopy.h"

#define UNWIND_MAX_DEPTH_DEFAULT 512
#define UNWIND_MAX_DEPTH_LIMIT 4096

/*
 * Short stable name ("end", "truncated", "no_mapping", ...) used in labels, metrics and
 * synthetic frames; "unknown" for a value outside the enum.
 */
const char *unwind_stop_name(enum unwind_stop stop);

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
 * Walk the stack. Fills res->frames/n_frames/stop/complete. See the top of this file.
 * -EINVAL: in, res or res->frames NULL, max_frames 0, stack NULL with stack_len > 0, or
 * stack_start + stack_len wrapping around. -EOPNOTSUPP: e_machine is not x86_64 or aarch64.
 * max_frames above UNWIND_MAX_DEPTH_LIMIT is treated as the limit. *res is untouched on error.
 */
int unwind_stack(const struct unwind_input *in, struct unwind_result *res);
