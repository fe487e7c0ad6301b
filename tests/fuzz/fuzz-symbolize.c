// SPDX-License-Identifier: MIT
/*
 * sym_elf_open() + sym_elf_lookup(): symbolization of a hostile ELF (symbol tables, DWARF
 * scopes and inline chains, line tables) through our code paths and libdwfl.
 *
 * Lookups: file offsets spread over the input are turned into vaddrs by the PT_LOAD headers,
 * as the profiler does for a sampled address, and looked up with and without inline frames.
 */
#include <errno.h>

#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

#define LOOKUPS 48

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Never ask a debuginfod server about a fuzz input. */
	unsetenv("DEBUGINFOD_URLS");
	return 0;
}

static void check_result(const struct sym_result *res)
{
	FUZZ_CHECK(res->n_frames <= SYM_MAX_INLINE);
	FUZZ_CHECK((res->source == SYM_SOURCE_NONE) == (res->n_frames == 0));
	for (size_t i = 0; i < res->n_frames; i++) {
		const struct sym_frame *f = &res->frames[i];

		FUZZ_CHECK(f->name && f->system_name);
		(void)strlen(f->name);
		(void)strlen(f->system_name);
		if (f->file)
			(void)strlen(f->file);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sym_elf *e = NULL;
	struct sym_result res;
	int fd = fuzz_memfd(data, size), r;
	size_t step = size / LOOKUPS + 1;

	/* A path whose directory does not exist: .gnu_debuglink finds nothing next to it. */
	r = sym_elf_open(fd, "/nonexistent/profd-fuzz/input", &e);
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -ENOMEM || r == -EFBIG || r == -ENOTSUP);
		return 0;
	}
	(void)sym_elf_has_symbols(e);
	for (size_t off = 0; off < size; off += step) {
		uint64_t vaddr;

		if (sym_elf_vaddr_from_offset(e, off, &vaddr) < 0)
			continue;
		FUZZ_CHECK(sym_elf_lookup(e, vaddr, true, &res) == 0);
		check_result(&res);
		FUZZ_CHECK(sym_elf_lookup(e, vaddr, false, &res) == 0);
		check_result(&res);
		FUZZ_CHECK(res.n_frames <= 1);
	}
	(void)sym_elf_has_lines(e);
	sym_elf_free(e);
	return 0;
}
