// SPDX-License-Identifier: MIT
/*
 * CFI tables from a hostile ELF file the way the profiler gets them: the unwind cache reads the
 * PT_LOADs (load bias) and calls cfi_table_build_from_elf_fd() (sections by name, compressed
 * ones, or PT_GNU_EH_FRAME without section headers). Then lookups on the table.
 */
#include <elf.h>
#include <errno.h>

#include "pipeline/unwind/cfi.h"
#include "pipeline/unwind/unwind-cache.h"
#include "tests/fuzz/fuzz-common.h"

static void probe(const struct cfi_table *t, uint64_t pc)
{
	struct cfi_rule rule;
	int r = cfi_table_lookup(t, pc, &rule);

	FUZZ_CHECK(r == 0 || r == -ENOENT);
	if (r == 0)
		FUZZ_CHECK(rule.cfa_kind != CFI_CFA_NONE && rule.cfa_kind <= CFI_CFA_UNSUPPORTED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unwind_cache *cache;
	struct unwind_key key;
	struct unwind_module mod;
	uint64_t entry = size >= 32 ? fuzz_get_u64(data + 24) : 0;
	int fd = fuzz_memfd(data, size), r;

	/* A fresh cache each time: the memfd's (dev, ino) key would hit the last input's entry. */
	if (unwind_cache_new(0, &cache) < 0)
		abort();
	FUZZ_CHECK(unwind_key_from_fd(fd, NULL, 0, &key) == 0);

	r = unwind_cache_module(cache, &key, fd, 0x555555554000ull, 0x555555600000ull, 0, &mod);
	FUZZ_CHECK(r <= 0);
	if (r == 0 && mod.table) {
		const struct cfi_table *t = mod.table;
		const struct cfi_table_stats *st = cfi_table_get_stats(t);

		FUZZ_CHECK(st->n_fdes == st->n_fdes_used + st->n_fdes_malformed +
					     st->n_fdes_unsupported + st->n_fdes_overlap +
					     st->n_fdes_empty);
		FUZZ_CHECK(cfi_table_size_bytes(t) >= cfi_table_n_rows(t) * 6);
		/* Small binaries keep their code in the first pages; e_entry is code too. */
		for (uint64_t pc = 0; pc < 0x8000; pc += 0x3f)
			probe(t, pc);
		for (uint64_t d = 0; d < 0x400; d += 7)
			probe(t, entry + d - 0x200);
	}
	/* A second mapping of the same file: a cache hit, a bias from another PT_LOAD. */
	r = unwind_cache_module(cache, &key, -1, 0x7f0000000000ull, 0x7f0000010000ull,
				size >= 40 ? fuzz_get_u64(data + 32) & ~0xfffull : 0x1000, &mod);
	FUZZ_CHECK(r <= 0);

	unwind_cache_free(cache);
	return 0;
}
