// SPDX-License-Identifier: MIT
/* x86_64 hooks (System V ABI, Linux user space). */
#include <elf.h>

#include "pipeline/unwind/unwind.h"

/* x86_64 has no pointer authentication: a saved return address is the address. */
static uint64_t x86_64_strip_ra(uint64_t ra)
{
	return ra;
}

/*
 * With frame pointers every function starts with `push %rbp; mov %rsp, %rbp`, so %rbp points
 * at the record {saved %rbp, return address} and `ret` leaves the caller's %rsp at %rbp + 16.
 */
static int x86_64_step_fp(const struct unwind_input *in, struct unwind_regs *regs, bool first)
{
	uint64_t fp = regs->fp, caller_fp, ra, caller_sp;

	/* glibc's _start zeroes %rbp precisely so that frame-pointer walks end here. */
	if (fp == 0) {
		*regs = (struct unwind_regs){};
		return 0;
	}
	/*
	 * %rsp is always at least 8-aligned, so a record is too. A misaligned %rbp is a
	 * general-purpose value in code built without frame pointers: there is no chain to follow.
	 */
	if (fp % 8 != 0)
		return UNWIND_STOP_NO_PROGRESS;
	/*
	 * A record lies at or above its frame's %rsp (equal right after the prologue). Below it
	 * %rbp is not a frame pointer; and since the caller's sp is fp + 16, this check is what
	 * forces each fp in the chain to be strictly above the previous one.
	 */
	if (fp < regs->sp)
		return UNWIND_STOP_NO_PROGRESS;
	if (!unwind_read_u64(in, fp, &caller_fp) || !unwind_read_u64(in, fp + 8, &ra))
		return UNWIND_STOP_TRUNCATED;
	/* Cannot wrap after both reads succeeded unless the caller skipped unwind_stack()'s checks. */
	if (__builtin_add_overflow(fp, 16, &caller_sp))
		return UNWIND_STOP_TRUNCATED;

	*regs = (struct unwind_regs){ .pc = ra, .sp = caller_sp, .fp = caller_fp };
	return 0;
}

/*
 * In __restore_rt the handler's `ret` has popped rt_sigframe.pretcode, so %rsp points at the
 * struct ucontext: uc_flags, uc_link, uc_stack (24 bytes), then uc_mcontext, a struct
 * sigcontext that starts with r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip.
 */
#define X86_64_UC_MCONTEXT 40
#define X86_64_SC_RBP (X86_64_UC_MCONTEXT + 10 * 8)
#define X86_64_SC_RSP (X86_64_UC_MCONTEXT + 15 * 8)
#define X86_64_SC_RIP (X86_64_UC_MCONTEXT + 16 * 8)

static int x86_64_step_signal(const struct unwind_input *in, struct unwind_regs *regs)
{
	uint64_t sp = regs->sp, rbp, rsp, rip;

	if (!unwind_read_u64(in, sp + X86_64_SC_RBP, &rbp) ||
	    !unwind_read_u64(in, sp + X86_64_SC_RSP, &rsp) ||
	    !unwind_read_u64(in, sp + X86_64_SC_RIP, &rip))
		return UNWIND_STOP_TRUNCATED;
	*regs = (struct unwind_regs){ .pc = rip, .sp = rsp, .fp = rbp };
	return 0;
}

const struct unwind_arch unwind_arch_x86_64 = {
	.e_machine = EM_X86_64,
	.name = "x86_64",
	.strip_ra = x86_64_strip_ra,
	/* Variable-length instructions: any byte address can follow a call. */
	.code_align = 1,
	.step_fp = x86_64_step_fp,
	.step_signal = x86_64_step_signal,
};
