// SPDX-License-Identifier: MIT
/*
 * A small program compiled by gen-seeds.sh in several ways (x86_64 and aarch64; with DWARF,
 * stripped, compressed debug sections, .debug_frame instead of .eh_frame, pointer
 * authentication, as C and as C++, shared object) to make ELF seeds for the fuzz targets.
 * What it contains is what the parsers should see: inline chains, static and global
 * functions, a callback through libc, and hand-written CFI using the rarer opcodes.
 * Valid C and C++.
 */
#include <stdio.h>
#include <stdlib.h>

static volatile int sink;

static inline __attribute__((always_inline)) int leaf_inline(int x)
{
	sink = x;
	return x * 3 + 1;
}

static inline __attribute__((always_inline)) int mid_inline(int x)
{
	return leaf_inline(x) + leaf_inline(x + 1);
}

__attribute__((noinline)) int outer(int x)
{
	return mid_inline(x) ^ mid_inline(x * 2);
}

static int cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) static int sorter(int n)
{
	int v[16];

	for (int i = 0; i < 16; i++)
		v[i] = (i * 7) % 16;
	qsort(v, n < 16 ? n : 16, sizeof(v[0]), cmp);
	return v[0];
}

/*
 * Hand-written unwind info: a signal frame ("S" augmentation), remember/restore state, a CFA
 * expression, register rules, an escape of DW_CFA_GNU_args_size and DW_CFA_val_offset. Never
 * called; it only has to be in the tables.
 */
#if defined(__x86_64__)
__asm__(".text\n"
	".globl odd_cfi\n"
	".type odd_cfi, @function\n"
	"odd_cfi:\n"
	".cfi_startproc\n"
	".cfi_signal_frame\n"
	"push %rbp\n"
	".cfi_def_cfa_offset 16\n"
	".cfi_offset %rbp, -16\n"
	"mov %rsp, %rbp\n"
	".cfi_def_cfa_register %rbp\n"
	".cfi_remember_state\n"
	"nop\n"
	".cfi_escape 0x2e, 0x10\n"             /* DW_CFA_GNU_args_size 16 */
	".cfi_escape 0x14, 0x03, 0x02\n"       /* DW_CFA_val_offset rbx, 2 */
	".cfi_register %r12, %r13\n"
	"nop\n"
	".cfi_escape 0x0f, 0x03, 0x77, 0x08, 0x06\n" /* DW_CFA_def_cfa_expression: breg7 8; deref */
	"nop\n"
	".cfi_restore_state\n"
	".cfi_undefined %rip\n"
	"pop %rbp\n"
	".cfi_def_cfa %rsp, 8\n"
	"ret\n"
	".cfi_endproc\n"
	".size odd_cfi, .-odd_cfi\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl odd_cfi\n"
	".type odd_cfi, %function\n"
	"odd_cfi:\n"
	".cfi_startproc\n"
	".cfi_signal_frame\n"
	"paciasp\n"
	".cfi_negate_ra_state\n"
	"stp x29, x30, [sp, #-16]!\n"
	".cfi_def_cfa_offset 16\n"
	".cfi_offset 29, -16\n"
	".cfi_offset 30, -8\n"
	"mov x29, sp\n"
	".cfi_def_cfa_register 29\n"
	".cfi_remember_state\n"
	"nop\n"
	".cfi_escape 0x2e, 0x10\n"
	".cfi_register 19, 20\n"
	"nop\n"
	".cfi_escape 0x0f, 0x03, 0x8f, 0x08, 0x06\n" /* DW_CFA_def_cfa_expression: breg31 8; deref */
	"nop\n"
	".cfi_restore_state\n"
	"ldp x29, x30, [sp], #16\n"
	".cfi_def_cfa 31, 0\n"
	"autiasp\n"
	".cfi_negate_ra_state\n"
	"ret\n"
	".cfi_endproc\n"
	".size odd_cfi, .-odd_cfi\n");
#endif

int main(int argc, char **argv)
{
	int r = outer(argc) + sorter(argc + 8);

	printf("%d\n", r);
	return 0;
}
