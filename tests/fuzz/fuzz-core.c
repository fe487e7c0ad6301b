// SPDX-License-Identifier: MIT
/*
 * core_parse() of a hostile ELF core, then what `profd stack --core` does with it: per thread,
 * the stack bytes at sp (core_read), the mapping of pc, an unwind by frame pointers through the
 * core's own mappings; auxv lookups; and core_load_maps() of a maps text that rides along at
 * the end of the input (framing in fuzz-common.h).
 *
 * The contract checked: the structure core.h documents (segments sorted and disjoint with
 * their bytes inside the file, mappings sorted and disjoint, limits), and reads that never
 * leave the file (the core is a heap block of exactly its size).
 */
#include <elf.h>
#include <errno.h>

#include "sources/core.h"
#include "tests/fuzz/fuzz-common.h"

#define STACK_COPY 16384
#define MAX_THREADS_WALKED 16

static void check_core(const struct core *c, size_t size)
{
	FUZZ_CHECK(c->e_machine == EM_X86_64 || c->e_machine == EM_AARCH64);
	FUZZ_CHECK(c->n_threads >= 1 && c->n_threads <= CORE_MAX_THREADS);
	FUZZ_CHECK(c->n_auxv <= CORE_MAX_AUXV);
	FUZZ_CHECK(c->n_mappings <= CORE_MAX_FILES);
	FUZZ_CHECK(memchr(c->comm, 0, sizeof(c->comm)) && memchr(c->psargs, 0, sizeof(c->psargs)));
	for (size_t i = 0; i < c->n_segments; i++) {
		const struct core_segment *s = &c->segments[i];

		FUZZ_CHECK(s->memsz > 0 && s->avail <= s->memsz);
		FUZZ_CHECK(s->offset <= size && s->avail <= size - s->offset);
		FUZZ_CHECK(s->vaddr + (s->memsz - 1) >= s->vaddr);
		if (i > 0)
			FUZZ_CHECK(s->vaddr - c->segments[i - 1].vaddr >=
				       c->segments[i - 1].memsz &&
				   s->vaddr > c->segments[i - 1].vaddr);
	}
	for (size_t i = 0; i < c->n_mappings; i++) {
		const struct core_mapping *m = &c->mappings[i];

		FUZZ_CHECK(m->name && m->start < m->end);
		FUZZ_CHECK(strlen(m->name) < CORE_MAX_NAME);
		if (i > 0)
			FUZZ_CHECK(m->start >= c->mappings[i - 1].end);
		FUZZ_CHECK(core_find_mapping(c, m->start) == m);
		FUZZ_CHECK(core_find_mapping(c, m->end - 1) == m);
	}
}

static int find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	const struct core_mapping *m = core_find_mapping(userdata, pc);

	if (!m || !m->exec)
		return -ENOENT;
	*ret = (struct unwind_module){.start = m->start, .end = m->end};
	return 0;
}

static void walk_threads(const struct core *c, uint8_t *buf)
{
	for (size_t i = 0; i < c->n_threads && i < MAX_THREADS_WALKED; i++) {
		const struct core_thread *t = &c->threads[i];
		struct unwind_frame frames[64];
		struct unwind_result res = {.frames = frames, .max_frames = 64};
		const struct core_segment *seg = core_find_segment(c, t->regs.sp);
		size_t len = 0;

		if (seg) {
			FUZZ_CHECK(t->regs.sp - seg->vaddr < seg->memsz);
			len = core_read(c, t->regs.sp, buf, STACK_COPY);
			FUZZ_CHECK(len <= STACK_COPY);
		}
		struct unwind_input in = {
		    .e_machine = c->e_machine,
		    .regs = t->regs,
		    .stack = buf,
		    .stack_start = t->regs.sp,
		    .stack_len = len,
		    .find_module = find_module,
		    .userdata = (void *)c,
		};
		int r = unwind_stack(&in, &res);

		FUZZ_CHECK(r == 0 || r == -EINVAL);
		(void)core_find_mapping(c, t->regs.pc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[STACK_COPY];
	struct core *c = NULL;
	size_t maps_len = 0, core_len = size;
	uint8_t *copy;
	uint64_t v;
	int r;

	if (size >= 2) {
		maps_len = (size_t)data[size - 2] | (size_t)data[size - 1] << 8;
		if (maps_len <= size - 2)
			core_len = size - 2 - maps_len;
		else
			maps_len = 0;
	}
	copy = malloc(core_len ? core_len : 1);
	if (!copy)
		abort();
	memcpy(copy, data, core_len);

	r = core_parse(copy, core_len, &c);
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -EOPNOTSUPP || r == -EBADMSG || r == -E2BIG ||
			   r == -ENOMEM);
		goto out;
	}
	check_core(c, core_len);
	walk_threads(c, buf);
	for (uint64_t type = AT_NULL; type <= AT_MINSIGSTKSZ; type++)
		if (core_auxv_get(c, type, &v) == 0 && (type == AT_ENTRY || type == AT_PHDR))
			(void)core_find_mapping(c, v);
	/* Across segment ends: reads that stop at the first byte not in the file. */
	for (size_t i = 0; i < c->n_segments; i++) {
		const struct core_segment *s = &c->segments[i];
		size_t n = core_read(c, s->vaddr + s->memsz - fuzz_min(s->memsz, 100), buf, 200);

		FUZZ_CHECK(n <= 200);
	}

	if (maps_len > 0) {
		char path[64];
		int fd = fuzz_memfd(data + core_len, maps_len);

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		r = core_load_maps(c, path);
		FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
		check_core(c, core_len);
		walk_threads(c, buf);
	}
	core_free(c);
out:
	free(copy);
	return 0;
}
