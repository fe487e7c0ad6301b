// SPDX-License-Identifier: MIT
/*
 * Core-file reader: synthetic x86_64 and aarch64 cores built in memory (ELF header, a PT_NOTE
 * with NT_PRSTATUS / NT_PRPSINFO / NT_AUXV / NT_FILE, PT_LOADs), parsed field by field; then
 * malformed, truncated and mutated cores, which must be rejected with an error and never crash
 * (run this under SAN=address,undefined too).
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "sources/core.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* ---- a tiny core writer ------------------------------------------------------------------- */

#define MAX_PH 8

struct seg {
	uint32_t type, flags;
	uint64_t vaddr, memsz;
	const void *data;
	size_t filesz;
};

struct builder {
	uint16_t machine, type;
	uint8_t class, endian;
	uint8_t notes[8192];
	size_t notes_len;
	struct seg segs[MAX_PH];
	size_t n_segs;
};

static void b_init(struct builder *b, uint16_t machine)
{
	memset(b, 0, sizeof(*b));
	b->machine = machine;
	b->type = ET_CORE;
	b->class = ELFCLASS64;
	b->endian = ELFDATA2LSB;
}

static void b_note(struct builder *b, const char *name, uint32_t type, const void *desc,
		   size_t descsz)
{
	uint32_t hdr[3] = { (uint32_t)strlen(name) + 1, (uint32_t)descsz, type };
	size_t namesz = (strlen(name) + 1 + 3) & ~3ul, dsz = (descsz + 3) & ~3ul;

	cr_assert_leq(b->notes_len + 12 + namesz + dsz, sizeof(b->notes));
	memcpy(b->notes + b->notes_len, hdr, 12);
	b->notes_len += 12;
	memset(b->notes + b->notes_len, 0, namesz + dsz);
	memcpy(b->notes + b->notes_len, name, strlen(name));
	b->notes_len += namesz;
	memcpy(b->notes + b->notes_len, desc, descsz);
	b->notes_len += dsz;
}

static void b_load(struct builder *b, uint64_t vaddr, uint64_t memsz, const void *data,
		   size_t filesz, uint32_t flags)
{
	cr_assert_lt(b->n_segs, MAX_PH);
	b->segs[b->n_segs++] = (struct seg){ .type = PT_LOAD, .flags = flags, .vaddr = vaddr,
					     .memsz = memsz, .data = data, .filesz = filesz };
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* NT_PRSTATUS for either arch, registers at their pr_reg slots. */
static void b_thread(struct builder *b, uint32_t tid, uint16_t sig, uint64_t pc, uint64_t sp,
		     uint64_t fp, uint64_t lr)
{
	uint8_t d[392] = {};
	size_t len;

	memcpy(d + 12, &sig, 2);
	memcpy(d + 32, &tid, 4);
	if (b->machine == EM_AARCH64) {
		len = 392;
		for (int i = 0; i < 34; i++)
			put64(d + 112 + 8 * i, 0x1000 + i); /* x_i = 0x1000 + i */
		put64(d + 112 + 29 * 8, fp);
		put64(d + 112 + 30 * 8, lr);
		put64(d + 112 + 31 * 8, sp);
		put64(d + 112 + 32 * 8, pc);
	} else {
		len = 336;
		for (int i = 0; i < 27; i++)
			put64(d + 112 + 8 * i, 0x2000 + i);
		put64(d + 112 + 4 * 8, fp);  /* rbp */
		put64(d + 112 + 16 * 8, pc); /* rip */
		put64(d + 112 + 19 * 8, sp); /* rsp */
	}
	b_note(b, "CORE", NT_PRSTATUS, d, len);
}

static void b_prpsinfo(struct builder *b, uint32_t pid, const char *fname, const char *args)
{
	uint8_t d[136] = {};

	memcpy(d + 24, &pid, 4);
	strncpy((char *)d + 40, fname, 16);
	strncpy((char *)d + 56, args, 80);
	b_note(b, "CORE", NT_PRPSINFO, d, sizeof(d));
}

/* Serialize: Ehdr, Phdrs (PT_NOTE first), notes, segment bytes. Caller frees. */
static uint8_t *b_build(const struct builder *b, size_t *ret_size)
{
	size_t phnum = 1 + b->n_segs, off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
	size_t size = off + b->notes_len;
	uint8_t *out;
	Elf64_Ehdr eh = {};
	Elf64_Phdr ph = {};

	for (size_t i = 0; i < b->n_segs; i++)
		size += b->segs[i].filesz;
	out = calloc(1, size);
	cr_assert_not_null(out);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = b->class;
	eh.e_ident[EI_DATA] = b->endian;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = b->type;
	eh.e_machine = b->machine;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = phnum;
	memcpy(out, &eh, sizeof(eh));

	ph.p_type = PT_NOTE;
	ph.p_offset = off;
	ph.p_filesz = b->notes_len;
	ph.p_align = 4;
	memcpy(out + sizeof(eh), &ph, sizeof(ph));
	memcpy(out + off, b->notes, b->notes_len);
	off += b->notes_len;
	for (size_t i = 0; i < b->n_segs; i++) {
		ph = (Elf64_Phdr){ .p_type = b->segs[i].type, .p_flags = b->segs[i].flags,
				   .p_offset = off, .p_vaddr = b->segs[i].vaddr,
				   .p_filesz = b->segs[i].filesz, .p_memsz = b->segs[i].memsz,
				   .p_align = 4096 };
		memcpy(out + sizeof(eh) + (i + 1) * sizeof(ph), &ph, sizeof(ph));
		if (b->segs[i].filesz)
			memcpy(out + off, b->segs[i].data, b->segs[i].filesz);
		off += b->segs[i].filesz;
	}
	*ret_size = size;
	return out;
}

/* Stack bytes: byte i = i & 0xff, so reads are easy to check. */
static uint8_t stack_bytes[8192];
static uint8_t code_bytes[4096];

static void init_bytes(void)
{
	for (size_t i = 0; i < sizeof(stack_bytes); i++)
		stack_bytes[i] = i & 0xff;
	memset(code_bytes, 0xcc, sizeof(code_bytes));
}

#define STACK_LO 0x7ffd00000000ull
#define CODE_LO 0x555500000000ull
#define SIGABRT_NR 6

/* A realistic core: 2 threads, prpsinfo, auxv, NT_FILE, stack PT_LOAD partly dumped + code. */
static uint8_t *full_core(uint16_t machine, size_t *ret_size)
{
	struct builder b;
	uint64_t auxv[] = { AT_PHDR, CODE_LO + 0x40, AT_PAGESZ, 4096, AT_ENTRY, CODE_LO + 0x100,
			    AT_NULL, 0, /* ignored after AT_NULL: */ AT_BASE, 1 };
	uint8_t file[16 + 2 * 24 + 64] = {};
	size_t nl;

	init_bytes();
	b_init(&b, machine);
	b_thread(&b, 4242, SIGABRT_NR, CODE_LO + 0x123, STACK_LO + 0x100, STACK_LO + 0x180,
		 CODE_LO + 0x456);
	b_prpsinfo(&b, 4242, "crashy", "./crashy --flag");
	b_note(&b, "CORE", NT_AUXV, auxv, sizeof(auxv));
	b_thread(&b, 4243, 0, CODE_LO + 0x200, STACK_LO + 0x1000, 0, 0);
	/* NT_FILE: 2 mappings of /bin/crashy, offsets in pages. */
	put64(file, 2);
	put64(file + 8, 4096);
	put64(file + 16, CODE_LO);
	put64(file + 24, CODE_LO + 0x1000);
	put64(file + 32, 0);
	put64(file + 40, CODE_LO + 0x1000);
	put64(file + 48, CODE_LO + 0x3000);
	put64(file + 56, 1);
	nl = strlen("/bin/crashy") + 1;
	memcpy(file + 64, "/bin/crashy", nl);
	memcpy(file + 64 + nl, "/bin/crashy", nl);
	b_note(&b, "CORE", NT_FILE, file, 64 + 2 * nl);
	/* An unknown note type and a LINUX-namespace note with a colliding number: ignored. */
	b_note(&b, "LINUX", NT_PRSTATUS, "xxxx", 4);
	b_note(&b, "CORE", 0x4242, "yy", 2);
	/* Code page, exec, first; its neighbour not dumped (memsz > filesz = 0). */
	b_load(&b, CODE_LO, 0x1000, code_bytes, sizeof(code_bytes), PF_R);
	b_load(&b, CODE_LO + 0x1000, 0x2000, NULL, 0, PF_R | PF_X);
	/* Stack: 8 KiB dumped of a 12 KiB mapping. */
	b_load(&b, STACK_LO, 0x3000, stack_bytes, sizeof(stack_bytes), PF_R | PF_W);
	return b_build(&b, ret_size);
}
Test(core, x86_64_full)
{
	size_t size;
	uint8_t *data = full_core(EM_X86_64, &size), buf[64];
	struct core *c = NULL;
	uint64_t v;

	cr_assert_eq(core_parse(data, size, &c), 0);
	cr_assert_eq(c->e_machine, EM_X86_64);
	cr_assert_str_eq(c->arch_name, "x86_64");
	cr_assert_eq(c->pid, 4242);
	cr_assert_str_eq(c->comm, "crashy");
	cr_assert_str_eq(c->psargs, "./crashy --flag");

	cr_assert_eq(c->n_threads, 2);
	cr_assert_eq(c->threads[0].tid, 4242);
	cr_assert_eq(c->threads[0].signo, 6);
	cr_assert_eq(c->threads[0].regs.pc, CODE_LO + 0x123);
	cr_assert_eq(c->threads[0].regs.sp, STACK_LO + 0x100);
	cr_assert_eq(c->threads[0].regs.fp, STACK_LO + 0x180);
	cr_assert_eq(c->threads[0].regs.lr, 0, "x86_64 has no link register");
	cr_assert_eq(c->threads[1].tid, 4243);
	cr_assert_eq(c->threads[1].regs.pc, CODE_LO + 0x200);

	cr_assert_eq(c->n_auxv, 3, "pairs after AT_NULL must be ignored");
	cr_assert_eq(core_auxv_get(c, AT_ENTRY, &v), 0);
	cr_assert_eq(v, CODE_LO + 0x100);
	cr_assert_eq(core_auxv_get(c, AT_BASE, &v), -ENOENT);

	cr_assert(c->has_nt_file);
	cr_assert_eq(c->page_size, 4096);
	cr_assert_eq(c->n_mappings, 2);
	cr_assert_str_eq(c->mappings[1].name, "/bin/crashy");
	cr_assert_eq(c->mappings[1].pgoff, 4096);
	cr_assert_not(c->mappings[0].exec, "exec bit comes from the PT_LOAD flags");
	cr_assert(c->mappings[1].exec);
	cr_assert_eq(core_find_mapping(c, CODE_LO + 0x2fff), &c->mappings[1]);
	cr_assert_null(core_find_mapping(c, CODE_LO + 0x3000));

	cr_assert_eq(c->n_segments, 3);
	cr_assert_not(c->truncated);
	/* Memory: inside, across the dumped/undumped boundary, and outside. */
	cr_assert_eq(core_read(c, STACK_LO + 0x10, buf, 16), 16);
	cr_assert_eq(buf[0], 0x10);
	cr_assert_eq(core_read(c, STACK_LO + 8192 - 4, buf, 16), 4, "bytes past p_filesz");
	cr_assert_eq(core_read(c, STACK_LO + 8192, buf, 16), 0);
	cr_assert_eq(core_read(c, STACK_LO - 1, buf, 16), 0);
	cr_assert_eq(core_read(c, CODE_LO + 0xff0, buf, 32), 16, "next segment has no bytes");
	cr_assert_eq(core_read(c, UINT64_MAX, buf, 16), 0);
	cr_assert_not_null(core_find_segment(c, CODE_LO + 0x1800));
	cr_assert_null(core_find_segment(c, CODE_LO + 0x3000));
	core_free(c);
	free(data);
}

Test(core, aarch64_registers)
{
	size_t size;
	uint8_t *data = full_core(EM_AARCH64, &size);
	struct core *c = NULL;

	cr_assert_eq(core_parse(data, size, &c), 0);
	cr_assert_eq(c->e_machine, EM_AARCH64);
	cr_assert_str_eq(c->arch_name, "aarch64");
	cr_assert_eq(c->n_threads, 2);
	cr_assert_eq(c->threads[0].regs.pc, CODE_LO + 0x123);
	cr_assert_eq(c->threads[0].regs.sp, STACK_LO + 0x100);
	cr_assert_eq(c->threads[0].regs.fp, STACK_LO + 0x180);
	cr_assert_eq(c->threads[0].regs.lr, CODE_LO + 0x456);
	cr_assert_eq(c->threads[1].regs.lr, 0);
	core_free(c);
	free(data);
}

/* Adjacent PT_LOADs read as one range; a hole ends the read. */
Test(core, read_across_segments)
{
	static uint8_t a[4096], bb[4096];
	struct builder b;
	struct core *c;
	uint8_t *data, buf[64];
	size_t size;

	memset(a, 'a', sizeof(a));
	memset(bb, 'b', sizeof(bb));
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0x10000, 0, 0);
	b_load(&b, 0x11000, 0x1000, bb, sizeof(bb), PF_R); /* out of order on purpose */
	b_load(&b, 0x10000, 0x1000, a, sizeof(a), PF_R);
	b_load(&b, 0x13000, 0x1000, a, sizeof(a), PF_R);
	data = b_build(&b, &size);
	cr_assert_eq(core_parse(data, size, &c), 0);
	cr_assert_eq(core_read(c, 0x10ff0, buf, 32), 32);
	cr_assert_eq(buf[15], 'a');
	cr_assert_eq(buf[16], 'b');
	cr_assert_eq(core_read(c, 0x11ff0, buf, 64), 16, "hole at 0x12000");
	cr_assert_eq(c->pid, 1, "no prpsinfo: pid from the first thread");
	cr_assert_eq(c->comm[0], '\0');
	core_free(c);
	free(data);
}

static int parse_built(struct builder *b)
{
	size_t size;
	uint8_t *data = b_build(b, &size);
	struct core *c = NULL;
	int r = core_parse(data, size, &c);

	if (r == 0)
		cr_assert_not_null(c);
	core_free(c);
	free(data);
	return r;
}

Test(core, rejects_non_cores)
{
	struct builder b;
	struct core *c = NULL;
	static const char text[] = "this is not an ELF file at all, just text\n";

	cr_assert_eq(core_parse(text, sizeof(text), &c), -ENOEXEC);
	cr_assert_eq(core_parse("\177ELF", 4, &c), -ENOEXEC);
	cr_assert_eq(core_parse("", 0, &c), -ENOEXEC);

	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	b.type = ET_EXEC;
	cr_assert_eq(parse_built(&b), -ENOEXEC, "an executable is not a core");
	b.type = ET_CORE;
	b.machine = EM_RISCV;
	cr_assert_eq(parse_built(&b), -EOPNOTSUPP);
	b.machine = EM_X86_64;
	b.class = ELFCLASS32;
	cr_assert_eq(parse_built(&b), -EOPNOTSUPP);
	b.class = ELFCLASS64;
	b.endian = ELFDATA2MSB;
	cr_assert_eq(parse_built(&b), -EOPNOTSUPP);
	b.endian = ELFDATA2LSB;
	cr_assert_eq(parse_built(&b), 0);
	cr_assert_null(c);
}

Test(core, rejects_malformed_notes)
{
	struct builder b;
	uint8_t file[64] = {};

	/* No thread at all. */
	b_init(&b, EM_X86_64);
	b_prpsinfo(&b, 1, "x", "x");
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* NT_PRSTATUS too short for pr_reg. */
	b_init(&b, EM_AARCH64);
	b_note(&b, "CORE", NT_PRSTATUS, file, 64);
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* descsz running past the segment. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	memcpy(b.notes + 4, &(uint32_t){0xfffffff0u}, 4);
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* namesz running past the segment. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	memcpy(b.notes, &(uint32_t){0xffffffffu}, 4);
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* NT_FILE with a count far above the limit. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	put64(file, UINT64_MAX / 2);
	put64(file + 8, 4096);
	b_note(&b, "CORE", NT_FILE, file, sizeof(file));
	cr_assert_eq(parse_built(&b), -E2BIG);

	/* NT_FILE whose table needs more bytes than the note has. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	put64(file, 100);
	b_note(&b, "CORE", NT_FILE, file, sizeof(file));
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* NT_FILE name not NUL-terminated. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	memset(file, 'x', sizeof(file));
	put64(file, 1);
	put64(file + 8, 4096);
	put64(file + 16, 0x1000);
	put64(file + 24, 0x2000);
	put64(file + 32, 0);
	b_note(&b, "CORE", NT_FILE, file, sizeof(file));
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* NT_FILE with end <= start, and with a non-power-of-two page size. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	memset(file, 0, sizeof(file));
	put64(file, 1);
	put64(file + 8, 4096);
	put64(file + 16, 0x2000);
	put64(file + 24, 0x1000);
	b_note(&b, "CORE", NT_FILE, file, 16 + 24 + 4);
	cr_assert_eq(parse_built(&b), -EBADMSG);
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	put64(file + 8, 3000);
	put64(file + 16, 0x1000);
	put64(file + 24, 0x2000);
	b_note(&b, "CORE", NT_FILE, file, 16 + 24 + 4);
	cr_assert_eq(parse_built(&b), -EBADMSG);
}

Test(core, rejects_bad_segments)
{
	static uint8_t page[4096];
	struct builder b;

	/* Overlapping PT_LOADs. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	b_load(&b, 0x10000, 0x2000, NULL, 0, PF_R);
	b_load(&b, 0x11000, 0x1000, NULL, 0, PF_R);
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* A segment wrapping around the address space. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	b_load(&b, UINT64_MAX - 0xfff, 0x2000, NULL, 0, PF_R);
	cr_assert_eq(parse_built(&b), -EBADMSG);

	/* Ending exactly at the top is fine. */
	b_init(&b, EM_X86_64);
	b_thread(&b, 1, 0, 0, 0, 0, 0);
	b_load(&b, UINT64_MAX - 0xfff, 0x1000, page, sizeof(page), PF_R);
	cr_assert_eq(parse_built(&b), 0);
}

/* Program headers pointing past the end, and huge counts. */
Test(core, rejects_bad_headers)
{
	size_t size;
	uint8_t *data = full_core(EM_X86_64, &size);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)data;
	struct core *c = NULL;

	eh->e_phoff = size - 10;
	cr_assert_eq(core_parse(data, size, &c), -EBADMSG);
	eh->e_phoff = UINT64_MAX - 8;
	cr_assert_eq(core_parse(data, size, &c), -EBADMSG);
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_phentsize = 8;
	cr_assert_eq(core_parse(data, size, &c), -EBADMSG);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 0;
	cr_assert_eq(core_parse(data, size, &c), -EBADMSG);
	/* PN_XNUM without section headers. */
	eh->e_phnum = PN_XNUM;
	eh->e_shoff = 0;
	cr_assert_eq(core_parse(data, size, &c), -EBADMSG);
	cr_assert_null(c);
	free(data);
}

/* PN_XNUM: the real program header count lives in section header 0's sh_info. */
Test(core, pn_xnum)
{
	size_t size;
	uint8_t *data = full_core(EM_X86_64, &size), *big;
	Elf64_Ehdr *eh;
	Elf64_Shdr sh = {};
	struct core *c = NULL;
	uint16_t phnum = ((Elf64_Ehdr *)data)->e_phnum;

	big = calloc(1, size + sizeof(sh));
	cr_assert_not_null(big);
	memcpy(big, data, size);
	eh = (Elf64_Ehdr *)big;
	eh->e_phnum = PN_XNUM;
	eh->e_shoff = size;
	eh->e_shnum = 0;
	sh.sh_info = phnum;
	memcpy(big + size, &sh, sizeof(sh));
	cr_assert_eq(core_parse(big, size + sizeof(sh), &c), 0);
	cr_assert_eq(c->n_threads, 2);
	cr_assert_eq(c->n_segments, 3);
	core_free(c);

	/* A count beyond the limit is refused before anything is read. */
	sh.sh_info = CORE_MAX_SEGMENTS + 1;
	memcpy(big + size, &sh, sizeof(sh));
	cr_assert_eq(core_parse(big, size + sizeof(sh), &c), -E2BIG);
	free(big);
	free(data);
}

/*
 * Every prefix of a valid core: the notes cut anywhere is an error; only the segment bytes
 * cut off is accepted, flagged truncated, with reads stopping where the file ends.
 */
Test(core, every_truncation)
{
	size_t size;
	uint8_t *data = full_core(EM_AARCH64, &size);
	size_t notes_end = 0;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + sizeof(Elf64_Ehdr));

	notes_end = ph[0].p_offset + ph[0].p_filesz;
	for (size_t len = 0; len < size; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		struct core *c = NULL;
		int r;

		memcpy(copy, data, len);
		r = core_parse(copy, len, &c);
		if (len < notes_end) {
			cr_assert_lt(r, 0, "prefix of %zu bytes (notes end at %zu) accepted", len,
				     notes_end);
		} else {
			uint8_t buf[16];

			cr_assert_eq(r, 0, "prefix %zu: %d", len, r);
			cr_assert_eq(c->truncated, len < size);
			/* The stack segment is last in the file: reads end at the cut. */
			size_t have = core_read(c, STACK_LO, buf, sizeof(buf));
			cr_assert_leq(have, sizeof(buf));
			core_free(c);
		}
		free(copy);
	}
	free(data);
}

/* Deterministic mutations: any outcome but a crash or a leak (see the SAN build). */
Test(core, mutations_never_crash)
{
	size_t size;
	uint8_t *data = full_core(EM_X86_64, &size), *copy = malloc(size);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned ok = 0;

	for (int iter = 0; iter < 20000; iter++) {
		struct core *c = NULL;
		int flips = 1 + iter % 4;

		memcpy(copy, data, size);
		for (int k = 0; k < flips; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			/* Mostly the headers and notes, where the parser's decisions are. */
			size_t at = (seed >> 8) % (iter % 2 ? size : MIN(size, (size_t)1200));
			copy[at] = (uint8_t)(seed >> 40);
		}
		if (core_parse(copy, size, &c) == 0) {
			uint8_t buf[256];

			ok++;
			for (size_t i = 0; i < c->n_threads; i++)
				core_read(c, c->threads[i].regs.sp, buf, sizeof(buf));
			for (size_t i = 0; i < c->n_mappings; i++)
				cr_assert_not_null(c->mappings[i].name);
			core_free(c);
		}
	}
	cr_assert_gt(ok, 0);
	free(copy);
	free(data);
}

static char *write_tmp(const void *data, size_t size)
{
	char tmpl[] = "/tmp/profd-core-XXXXXX";
	int fd = mkstemp(tmpl);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
	return strdup(tmpl);
}

Test(core, open_file)
{
	size_t size;
	uint8_t *data = full_core(EM_X86_64, &size);
	char *path = write_tmp(data, size);
	struct core *c = NULL;
	uint8_t buf[8];

	cr_assert_eq(core_open(path, &c), 0);
	cr_assert_eq(c->n_threads, 2);
	cr_assert_eq(core_read(c, STACK_LO + 0x20, buf, 8), 8);
	cr_assert_eq(buf[0], 0x20);
	core_free(c);
	unlink(path);
	free(path);

	cr_assert_eq(core_open("/nonexistent/core", &c), -ENOENT);
	cr_assert_eq(core_open("/tmp", &c), -EISDIR);
	path = write_tmp("x", 1);
	cr_assert_eq(core_open(path, &c), -ENOEXEC);
	unlink(path);
	free(path);
	free(data);
}

Test(core, load_maps)
{
	size_t size;
	uint8_t *data = full_core(EM_AARCH64, &size);
	static const char maps[] =
	    "5500000000-5500001000 r--p 00000000 fe:00 10952928   /tmp/x/prog\n"
	    "5500010000-5500011000 r-xp 00010000 fe:00 10952928   /tmp/x/prog\n"
	    "5502042000-5502842000 rw-p 00000000 00:00 0          [stack]\n"
	    "5502884000-5502885000 r-xp 00000000 00:00 0\n"
	    "garbage line\n"
	    "55028a0000-5502a27000 r-xp 00000000 fe:00 1064965    /usr/lib/libc.so.6\n";
	char *path = write_tmp(maps, sizeof(maps) - 1), *bad;
	struct core *c = NULL;

	cr_assert_eq(core_parse(data, size, &c), 0);
	cr_assert_eq(core_load_maps(c, path), 0);
	cr_assert_eq(c->n_mappings, 3, "only file mappings are kept");
	cr_assert_str_eq(c->mappings[0].name, "/tmp/x/prog");
	cr_assert_not(c->mappings[0].exec);
	cr_assert(c->mappings[1].exec);
	cr_assert_eq(c->mappings[1].pgoff, 0x10000);
	cr_assert_str_eq(c->mappings[2].name, "/usr/lib/libc.so.6");
	cr_assert_eq(core_find_mapping(c, 0x5502900000), &c->mappings[2]);

	bad = write_tmp("nothing here\n", 13);
	cr_assert_eq(core_load_maps(c, bad), -EBADMSG);
	cr_assert_eq(c->n_mappings, 3, "unchanged on error");
	cr_assert_eq(core_load_maps(c, "/nonexistent/maps"), -ENOENT);
	unlink(bad);
	free(bad);

	static const char overlap[] = "1000-3000 r-xp 00000000 fe:00 1 /a\n"
				      "2000-4000 r-xp 00000000 fe:00 2 /b\n";
	bad = write_tmp(overlap, sizeof(overlap) - 1);
	cr_assert_eq(core_load_maps(c, bad), -EBADMSG);
	unlink(bad);
	free(bad);
	core_free(c);
	unlink(path);
	free(path);
	free(data);
}
