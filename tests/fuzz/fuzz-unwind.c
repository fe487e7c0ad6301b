// SPDX-License-Identifier: MIT
/*
 * unwind_stack() with hostile registers and stack bytes (framing in fuzz-common.h) against
 * fixed CFI tables: the C libraries of both architectures, built once. Seeds are real stacks
 * captured inside a qsort() callback (tests/fuzz/seed-stack.c), so the walk starts from
 * something that goes through libc by CFI and on by frame pointers.
 *
 * The contract checked: never a read outside the stack copy (the copy is a heap block of its
 * exact size), at most max_frames frames, a stop reason from the enum, complete iff END.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>

#include "pipeline/unwind/cfi.h"
#include "pipeline/unwind/unwind.h"
#include "tests/fuzz/fuzz-common.h"

#define LIBC_X86_64 "/lib/x86_64-linux-gnu/libc.so.6"
#define LIBC_AARCH64 "/usr/aarch64-linux-gnu/lib/libc.so.6"

struct lib {
	const char *path;
	struct cfi_table *table;
	uint64_t size; /* end of the highest PT_LOAD: the mapping's extent */
};

static bool verbose; /* FUZZ_VERBOSE=1: print each walk (to check what the seeds reach) */
static struct lib libs[2] = {{.path = LIBC_X86_64}, {.path = LIBC_AARCH64}};

static uint64_t loads_end(int fd)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	uint64_t end = 0;
	size_t n;

	if (!elf)
		return 0;
	if (elf_getphdrnum(elf, &n) == 0)
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    ph.p_vaddr + ph.p_memsz > end)
				end = ph.p_vaddr + ph.p_memsz;
		}
	elf_end(elf);
	return end;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	elf_version(EV_CURRENT);
	for (size_t i = 0; i < 2; i++) {
		int fd = open(libs[i].path, O_RDONLY | O_CLOEXEC), r;

		if (fd < 0) {
			fprintf(stderr, "fuzz-unwind: %s: %m (frame pointers only)\n",
				libs[i].path);
			continue;
		}
		r = cfi_table_build_from_elf_fd(fd, &libs[i].table);
		if (r < 0)
			fprintf(stderr, "fuzz-unwind: %s: no CFI table: %s\n", libs[i].path,
				strerror(-r));
		libs[i].size = loads_end(fd);
		close(fd);
	}
	return 0;
}

struct space {
	const struct lib *lib;
	uint64_t lib_base, anon_lo, anon_hi;
	unsigned calls;
};

static int find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	struct space *s = userdata;

	s->calls++;
	if (s->lib->table && pc >= s->lib_base && pc - s->lib_base < s->lib->size) {
		*ret = (struct unwind_module){.start = s->lib_base,
					      .end = s->lib_base + s->lib->size,
					      .table = s->lib->table,
					      .bias = (int64_t)s->lib_base};
		return 0;
	}
	if (pc >= s->anon_lo && pc < s->anon_hi) {
		*ret = (struct unwind_module){.start = s->anon_lo, .end = s->anon_hi};
		return 0;
	}
	return -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_unwind_header h;
	struct unwind_frame *frames;
	struct unwind_result res;
	struct space space;
	struct unwind_input in;
	uint8_t *stack;
	size_t max;
	int r;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);

	space = (struct space){.lib = &libs[h.machine & 1],
			       .lib_base = h.lib_base,
			       .anon_lo = h.anon_lo,
			       .anon_hi = h.anon_hi};
	stack = malloc(size ? size : 1);
	max = 1 + h.max_frames % FUZZ_UNWIND_MAX_FRAMES;
	frames = malloc(max * sizeof(*frames));
	if (!stack || !frames)
		abort();
	memcpy(stack, data, size);

	in = (struct unwind_input){
	    .e_machine = h.machine & 1 ? EM_AARCH64 : EM_X86_64,
	    .regs = {.pc = h.pc, .sp = h.sp, .fp = h.fp, .lr = h.lr},
	    .stack = stack,
	    .stack_start = h.stack_start,
	    .stack_len = size,
	    .find_module = h.flags & FUZZ_UNWIND_NO_FIND_MODULE ? NULL : find_module,
	    .userdata = &space,
	};
	res = (struct unwind_result){.frames = frames, .max_frames = max};

	r = unwind_stack(&in, &res);
	if (r < 0) {
		/* Only for a copy whose end wraps around the address space. */
		FUZZ_CHECK(r == -EINVAL && size > UINT64_MAX - h.stack_start);
	} else {
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(res.n_frames <= max && res.n_frames <= UNWIND_MAX_DEPTH_LIMIT);
		FUZZ_CHECK(res.stop < _UNWIND_STOP_MAX && res.stop != UNWIND_STOP_KERNEL_THREAD);
		FUZZ_CHECK(res.complete == (res.stop == UNWIND_STOP_END));
		FUZZ_CHECK(res.stop != UNWIND_STOP_DEPTH ||
			   res.n_frames == fuzz_min(max, UNWIND_MAX_DEPTH_LIMIT));
		/* Bounded work: one address-space lookup per frame, plus the one that failed. */
		FUZZ_CHECK(space.calls <= res.n_frames + 1);
		/* Frame 0 is the sampled pc, never a return address. */
		FUZZ_CHECK(res.n_frames == 0 || !res.frames[0].is_return);
		if (verbose) {
			fprintf(stderr, "%zu frames, stop %s%s:", res.n_frames,
				unwind_stop_name(res.stop), res.complete ? " (complete)" : "");
			for (size_t i = 0; i < res.n_frames; i++)
				fprintf(stderr, " %#" PRIx64 "%s", res.frames[i].pc,
					res.frames[i].pc - h.lib_base < libs[h.machine & 1].size
					    ? "(libc)"
					    : "");
			fprintf(stderr, "\n");
		}
	}
	free(frames);
	free(stack);
	return 0;
}
