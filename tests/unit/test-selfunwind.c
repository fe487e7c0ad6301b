// SPDX-License-Identifier: MIT
/*
 * Self-unwind through a libc callback with CFI: capture our own registers and stack inside a
 * qsort comparator, then unwind the copy exactly as a sample is unwound (process table,
 * unwind cache, CFI, frame-pointer fallback). glibc has no frame pointers, so only CFI can
 * get from the comparator back through qsort to our caller — and on to the root.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "pipeline/proc.h"
#include "pipeline/unwind/unwind-cache.h"
#include "pipeline/unwind/unwind.h"

#if defined(__x86_64__)

/* No frame pointers here, whatever the test build's CFLAGS say; no inlining or cloning. */
#define NOFP __attribute__((noipa, optimize("omit-frame-pointer")))
#define STACK_MAX (64 * 1024)

static uint8_t stack_copy[STACK_MAX];
static struct unwind_regs regs;
static size_t stack_len;
static uint64_t stack_end;
static uint64_t ra_capture, ra_sort_entry;

__attribute__((no_sanitize_address)) static void copy_live_stack(uint8_t *dst, uint64_t src,
								 size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = ((const volatile uint8_t *)(uintptr_t)src)[i];
}

static NOFP void capture(void)
{
	uint64_t rip, rsp, rbp;

	__asm__ volatile("leaq 0(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "movq %%rbp, %2"
			 : "=r"(rip), "=r"(rsp), "=r"(rbp));
	ra_capture = (uintptr_t)__builtin_return_address(0);
	stack_len = MIN((uint64_t)STACK_MAX, stack_end - rsp);
	copy_live_stack(stack_copy, rsp, stack_len);
	regs = (struct unwind_regs){ .pc = rip, .sp = rsp, .fp = rbp };
}

static int captured;

static NOFP int compare_cb(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	if (!captured) {
		captured = 1;
		capture();
	}
	return (x > y) - (x < y);
}

static NOFP int sort_entry(int n)
{
	int v[64];

	ra_sort_entry = (uintptr_t)__builtin_return_address(0);
	for (int i = 0; i < n; i++)
		v[i] = (i * 7919) % 61;
	qsort(v, n, sizeof(v[0]), compare_cb);
	return v[0];
}

struct ctx {
	struct proc_table *procs;
	struct proc *self;
	struct unwind_cache *cache;
};

static int find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	struct ctx *c = userdata;
	const struct mapping *m = proc_find_mapping(c->procs, c->self, pc);
	struct unwind_key key;

	if (!m)
		return -ENOENT;
	*ret = (struct unwind_module){ .start = m->start, .end = m->end };
	if (m->dso && m->dso->fd >= 0 &&
	    unwind_key_from_fd(m->dso->fd, m->dso->build_id, m->dso->build_id_len, &key) == 0)
		(void)unwind_cache_module(c->cache, &key, m->dso->fd, m->start, m->end, m->pgoff, ret);
	return 0;
}

static const struct mapping *mapping_of(struct ctx *c, uint64_t pc)
{
	return proc_find_mapping(c->procs, c->self, pc);
}

Test(selfunwind, through_qsort_to_the_root)
{
	struct unwind_frame frames[256];
	struct unwind_result res = { .frames = frames, .max_frames = ARRAY_SIZE(frames) };
	struct ctx c = {};
	struct unwind_input in;
	pthread_attr_t attr;
	void *addr;
	size_t size, i, libc_frames = 0;
	const struct mapping *exe, *m;

	cr_assert_eq(pthread_getattr_np(pthread_self(), &attr), 0);
	cr_assert_eq(pthread_attr_getstack(&attr, &addr, &size), 0);
	pthread_attr_destroy(&attr);
	stack_end = (uintptr_t)addr + size;

	sort_entry(40);
	cr_assert(captured);

	cr_assert_eq(proc_table_new("/proc", &c.procs), 0);
	cr_assert_eq(proc_table_get(c.procs, getpid(), &c.self), 0);
	cr_assert_eq(unwind_cache_new(0, &c.cache), 0);
	in = (struct unwind_input){
		.e_machine = EM_X86_64,
		.regs = regs,
		.stack = stack_copy,
		.stack_start = regs.sp,
		.stack_len = stack_len,
		.find_module = find_module,
		.userdata = &c,
	};
	cr_assert_eq(unwind_stack(&in, &res), 0);

	exe = mapping_of(&c, (uintptr_t)&capture);
	cr_assert_not_null(exe);
	/* capture → compare_cb, exactly the return addresses the compiler saw... */
	cr_assert_geq(res.n_frames, 5, "only %zu frames, stop %s", res.n_frames,
		      unwind_stop_name(res.stop));
	cr_assert_eq(frames[1].pc, ra_capture);
	cr_assert(frames[1].pc > (uintptr_t)&compare_cb);
	/* ...then one or more frames inside libc's qsort... */
	for (i = 2; i < res.n_frames; i++) {
		m = mapping_of(&c, frames[i].pc - 1);
		cr_assert_not_null(m);
		if (m == exe)
			break;
		/* A sanitizer build intercepts qsort: its runtime's frames (also without frame
		 * pointers) come instead of or around libc's. */
		cr_assert(m->name && (strstr(m->name, "libc") || strstr(m->name, "libasan") ||
				      strstr(m->name, "libubsan")),
			  "frame %zu in %s", i, m->name);
		libc_frames++;
	}
	cr_assert_geq(libc_frames, 1, "no frame in libc between the comparator and its caller");
	/* ...then back in sort_entry's caller frame: the address qsort returns to. */
	cr_assert_lt(i, res.n_frames);
	cr_assert(frames[i].pc > (uintptr_t)&sort_entry, "frame %zu not in sort_entry", i);
	cr_assert_eq(frames[i + 1].pc, ra_sort_entry, "frame %zu: %#" PRIx64 " != %#" PRIx64,
		     i + 1, frames[i + 1].pc, ra_sort_entry);
	/* And on through criterion and glibc's start code to the outermost frame. */
	cr_assert_eq(res.stop, UNWIND_STOP_END, "stopped: %s after %zu frames",
		     unwind_stop_name(res.stop), res.n_frames);
	cr_assert(res.complete);

	unwind_cache_free(c.cache);
	proc_table_free(c.procs);
}

#else

Test(selfunwind, through_qsort_to_the_root)
{
	cr_skip_test("the self-unwind test captures x86_64 registers");
}

#endif
