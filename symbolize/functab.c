/* SPDX-License-Identifier: MIT */
/*
 * struct func_table: a module's function symbols sorted by address, so that naming an address
 * from the symbol table is a binary search. dwfl_module_addrinfo() (elfutils 0.188) scans the
 * whole table on every call: ~100 µs per address in libc, ~1 ms in libLLVM.
 *
 * The symbols are the ones libdwfl serves through dwfl_module_getsym_info(): .symtab of the
 * main file, else of the separate debug file, else MiniDebugInfo's merged with .dynsym, else
 * .dynsym. The answer is meant to be what dwfl_module_addrinfo() (and so `eu-addr2line -f`)
 * prints for a code address:
 *  - a sized symbol covers [start, start + size); the closest start covering the address wins,
 *    one of libdwfl's first pass (global, weak, unique) before a local;
 *  - aliases (same start and size): global, then unique, then weak, then local, then the first
 *    in table order;
 *  - a zero-size symbol (assembly without .size) covers up to the next symbol or the end of
 *    its section, whichever comes first, unless a sized symbol contains it (then it never wins).
 * Kept: STT_FUNC, STT_GNU_IFUNC and STT_NOTYPE symbols defined in a section, with a name.
 * Unlike libdwfl we ignore data symbols (STT_OBJECT, ...) and ARM/AArch64/RISC-V mapping
 * symbols ($x, $d, ...), which name no function. Not reproduced either: libdwfl's
 * order-dependent choices between overlapping symbols of different sizes and between a global
 * and a local zero-size alias past their first byte (it prints the local there), and its
 * giving the first byte past the end of a section with nothing after it to the section's last
 * zero-size symbol.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <elf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "common/grow.h"
#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

#define NDX_MASK 0x7fffffffu
#define NDX_GLOBAL 0x80000000u /* found by libdwfl's first pass (non-local symbols) */
#define NO_ENT UINT32_MAX
/* Entries examined per lookup when symbols enclose one another (never seen in real binaries:
 * this only bounds what a hostile table costs). */
#define MAX_ENCLOSING 64

struct func_ent {
	uint64_t start; /* dwfl address */
	uint64_t end;   /* exclusive */
	uint32_t ndx;   /* dwfl_module_getsym_info() index | NDX_GLOBAL */
	uint32_t up;    /* while sorting: binding rank; then an earlier entry that may enclose
			 * this one (their chain holds every entry containing `start`), or NO_ENT */
};

struct func_table {
	struct func_ent *ents;
	size_t n;
};

void func_table_free(struct func_table *t)
{
	if (!t)
		return;
	free(t->ents);
	free(t);
}
DEFINE_FREEP(struct func_table, func_table_free)

/* GELF_ST_BIND as libdwfl ranks it, higher is better. */
static uint32_t binding_rank(unsigned char info)
{
	switch (GELF_ST_BIND(info)) {
	case STB_GLOBAL:
		return 3;
	case STB_GNU_UNIQUE:
		return 2;
	case STB_WEAK:
		return 1;
	default:
		return 0;
	}
}

static bool is_mapping_symbol(const char *name)
{
	return name[0] == '$' && name[1] && strchr("adtx", name[1]) &&
	       (name[2] == '\0' || name[2] == '.');
}

static bool is_function_symbol(const GElf_Sym *sym, const char *name)
{
	switch (GELF_ST_TYPE(sym->st_info)) {
	case STT_FUNC:
	case STT_GNU_IFUNC:
		break;
	case STT_NOTYPE:
		if (is_mapping_symbol(name))
			return false;
		break;
	default:
		return false;
	}
	return sym->st_shndx != SHN_UNDEF;
}

/* Start, end desc (enclosing first; zero-size last), libdwfl's pass, binding, table order. */
static int ent_cmp(const void *a, const void *b)
{
	const struct func_ent *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	if ((x->ndx & NDX_GLOBAL) != (y->ndx & NDX_GLOBAL))
		return x->ndx & NDX_GLOBAL ? -1 : 1;
	if (x->up != y->up)
		return x->up > y->up ? -1 : 1;
	return (x->ndx & NDX_MASK) < (y->ndx & NDX_MASK) ? -1 : 1;
}

/*
 * Where a zero-size symbol at `start` may reach: the end of its section (in dwfl addresses).
 * 0 when it has none (SHN_ABS and other reserved indices, no section headers): libdwfl then
 * only ever matches it exactly, which no code address needs.
 */
static uint64_t section_end(Dwfl_Module *mod, uint32_t ndx, uint64_t start)
{
	GElf_Sym sym;
	GElf_Addr value;
	GElf_Word shndx;
	Elf *elf = NULL;
	Dwarf_Addr bias = 0;

	if (!dwfl_module_getsym_info(mod, (int)ndx, &sym, &value, &shndx, &elf, &bias) || !elf ||
	    shndx == SHN_UNDEF || shndx >= SHN_LORESERVE)
		return 0;
	Elf_Scn *scn = elf_getscn(elf, shndx);
	GElf_Shdr mem, *sh = scn ? gelf_getshdr(scn, &mem) : NULL;
	uint64_t lo, hi;
	if (!sh || __builtin_add_overflow(sh->sh_addr, bias, &lo) ||
	    __builtin_add_overflow(lo, sh->sh_size, &hi) || start < lo || start >= hi)
		return 0;
	return hi;
}

/*
 * Sorted candidates → the table: aliases merged, zero-size symbols given their reach or
 * dropped, enclosing links set. In place; returns the new count.
 */
static size_t finish(Dwfl_Module *mod, struct func_ent *v, size_t n)
{
	size_t out = 0, next = 0;
	uint64_t max_end = 0; /* furthest end of the sized symbols so far */
	bool have_zero = false;
	uint64_t zero_start = 0; /* start of the last zero-size symbol kept */

	for (size_t i = 0; i < n; i++) {
		struct func_ent e = v[i];

		if (e.end == e.start) {
			/* Inside (or at the start of) a sized symbol: that one always wins. An
			 * alias of a zero-size symbol already kept: the better one came first. */
			if (max_end > e.start || (have_zero && zero_start == e.start))
				continue;
			if (next <= i)
				next = i + 1;
			while (next < n && v[next].start == e.start)
				next++;
			uint64_t end = section_end(mod, e.ndx & NDX_MASK, e.start);
			if (next < n)
				end = MIN(end, v[next].start);
			if (end <= e.start)
				continue;
			e.end = end;
			have_zero = true;
			zero_start = e.start;
		} else {
			if (out > 0 && v[out - 1].start == e.start && v[out - 1].end == e.end)
				continue;
			max_end = MAX(max_end, e.end);
		}

		/* The chain from the previous entry holds every earlier entry that contains its
		 * start; drop those that end before ours starts (amortized O(1)). */
		uint32_t up = out > 0 ? (uint32_t)(out - 1) : NO_ENT;
		while (up != NO_ENT && v[up].end <= e.start)
			up = v[up].up;
		e.up = up;
		v[out++] = e;
	}
	return out;
}

int func_table_build(Dwfl_Module *mod, size_t max_entries, struct func_table **ret)
{
	_cleanup_(func_table_freep) struct func_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;

	int n = dwfl_module_getsymtab(mod);
	int first_global = n > 1 ? dwfl_module_getsymtab_first_global(mod) : 0;
	if (n <= 1 || first_global < 0) {
		*ret = TAKE_PTR(t); /* no symbols: an empty table */
		return 0;
	}

	size_t cap = 0;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr value;
		const char *name = dwfl_module_getsym_info(mod, i, &sym, &value, NULL, NULL, NULL);
		uint64_t end;

		if (!name || !name[0] || !is_function_symbol(&sym, name) ||
		    __builtin_add_overflow(value, sym.st_size, &end))
			continue;
		int r = GROW_ARRAY(t->ents, cap, t->n + 1, max_entries);
		if (r < 0)
			return r;
		bool global = first_global == 0 || i >= first_global;
		t->ents[t->n++] = (struct func_ent){
			.start = value,
			.end = end,
			.ndx = (uint32_t)i | (global ? NDX_GLOBAL : 0),
			.up = binding_rank(sym.st_info),
		};
	}

	if (t->n > 0) {
		qsort(t->ents, t->n, sizeof(*t->ents), ent_cmp);
		t->n = finish(mod, t->ents, t->n);
		/* Give back what merging and dropping freed; keep the old block if that fails. */
		void *p = realloc(t->ents, MAX(t->n, (size_t)1) * sizeof(*t->ents));
		if (p)
			t->ents = p;
	}
	*ret = TAKE_PTR(t);
	return 0;
}

bool func_table_find(const struct func_table *t, uint64_t addr, int *ret_ndx,
		     uint64_t *ret_start)
{
	size_t lo = 0, hi = t->n;

	/* The last entry starting at or below addr: the innermost candidate. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ents[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;

	/* Enclosing entries come next on the chain, closest start first. The first one of
	 * libdwfl's first pass that covers addr wins, else the first that covers it at all. */
	const struct func_ent *best = NULL;
	uint32_t i = (uint32_t)(lo - 1);
	for (int k = 0; k < MAX_ENCLOSING && i != NO_ENT; k++, i = t->ents[i].up) {
		const struct func_ent *e = &t->ents[i];
		if (addr >= e->end)
			continue;
		if (e->ndx & NDX_GLOBAL) {
			best = e;
			break;
		}
		if (!best)
			best = e;
	}
	if (!best)
		return false;
	*ret_ndx = (int)(best->ndx & NDX_MASK);
	*ret_start = best->start;
	return true;
}
