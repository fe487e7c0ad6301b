// SPDX-License-Identifier: MIT
/* aarch64 hooks (AAPCS64, Linux user space). */
#include <elf.h>

#include "pipeline/unwind/unwind.h"

/*
 * With pointer authentication, saved return addresses carry a signature (PAC) in the bits
 * above the virtual address size, and top-byte tags can sit there too. Linux gives user
 * space 48-bit addresses unless a process explicitly asks mmap for higher ones, which
 * loaders never do for code, so the low 48 bits are the return address. (A core file's
 * NT_ARM_PAC_MASK would give the exact mask; 48 bits is right for every code mapping.)
 */
static uint64_t aarch64_strip_ra(uint64_t ra)
{
	return ra & ((UINT64_C(1) << 48) - 1);
}

/*
 * AAPCS64 frame record: x29 points at {caller's x29, x30 saved on entry}. The record's place
 * in the frame varies (gcc puts it at the bottom, clang at the top of the locals), so
 * x29 + 16 is only a lower bound of the caller's sp; it is what keeps the chain climbing.
 *
 * `first` is deliberately ignored: a leaf that built no record still has its return address
 * in LR and x29 still points at its caller's record, so this walk skips the leaf's caller.
 * Frame pointers cannot tell such a leaf from one that built a record (then LR is stale or
 * repeats the record's return address), so, like Linux perf's user callchains, we follow
 * x29 only; the CFI step knows and uses LR for frame 0 when the CFI says so.
 */
static int aarch64_step_fp(const struct unwind_input *in, struct unwind_regs *regs, bool first)
{
	uint64_t fp = regs->fp, caller_fp, ra, caller_sp;

	/* glibc's _start zeroes x29 precisely so that frame-pointer walks end here. */
	if (fp == 0) {
		*regs = (struct unwind_regs){};
		return 0;
	}
	/*
	 * Records are made of two 8-byte registers stored at 8-aligned addresses (the kernel's
	 * arm64 user unwinder checks the same); anything else is not a frame pointer.
	 */
	if (fp % 8 != 0)
		return UNWIND_STOP_NO_PROGRESS;
	/* Below sp it is not a record; see x86_64_step_fp() for why this also forces progress. */
	if (fp < regs->sp)
		return UNWIND_STOP_NO_PROGRESS;
	if (!unwind_read_u64(in, fp, &caller_fp) || !unwind_read_u64(in, fp + 8, &ra))
		return UNWIND_STOP_TRUNCATED;
	if (__builtin_add_overflow(fp, 16, &caller_sp))
		return UNWIND_STOP_TRUNCATED;

	/* The caller's LR was clobbered by its call: unknown, so 0. */
	*regs = (struct unwind_regs){ .pc = ra, .sp = caller_sp, .fp = caller_fp };
	return 0;
}

/*
 * At __kernel_rt_sigreturn sp points at struct rt_sigframe: siginfo (128 bytes), then the
 * struct ucontext, whose uc_mcontext (a struct sigcontext: fault_address, regs[31], sp, pc,
 * pstate) sits at offset 176 (uc_flags, uc_link, uc_stack, uc_sigmask padded to 128 bytes,
 * aligned to 16).
 */
#define AARCH64_SIGCTX (128 + 176)
#define AARCH64_SC_REG(n) (AARCH64_SIGCTX + 8 + (n)*8)
#define AARCH64_SC_SP (AARCH64_SIGCTX + 8 + 31 * 8)
#define AARCH64_SC_PC (AARCH64_SC_SP + 8)

static int aarch64_step_signal(const struct unwind_input *in, struct unwind_regs *regs)
{
	uint64_t sp = regs->sp, x29, x30, csp, pc;

	if (!unwind_read_u64(in, sp + AARCH64_SC_REG(29), &x29) ||
	    !unwind_read_u64(in, sp + AARCH64_SC_REG(30), &x30) ||
	    !unwind_read_u64(in, sp + AARCH64_SC_SP, &csp) ||
	    !unwind_read_u64(in, sp + AARCH64_SC_PC, &pc))
		return UNWIND_STOP_TRUNCATED;
	*regs = (struct unwind_regs){ .pc = pc, .sp = csp, .fp = x29, .lr = x30 };
	return 0;
}

const struct unwind_arch unwind_arch_aarch64 = {
	.e_machine = EM_AARCH64,
	.name = "aarch64",
	.strip_ra = aarch64_strip_ra,
	/* Fixed 4-byte instructions: a return address elsewhere is not code. */
	.code_align = 4,
	.step_fp = aarch64_step_fp,
	.step_signal = aarch64_step_signal,
};
