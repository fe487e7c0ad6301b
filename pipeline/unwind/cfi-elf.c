/* SPDX-License-Identifier: MIT */
/*
 * Finding the CFI sections of an ELF file with libelf and handing them to cfi_table_build().
 * Section headers first; without them (stripped, or a memory image) .eh_frame_hdr via
 * PT_GNU_EH_FRAME, which also tells where .eh_frame starts.
 */
#include <elf.h>
#include <errno.h>
#include <gelf.h>
#include <string.h>

#include "common/elf.h"
#include "common/macro.h"
#include "pipeline/unwind/cfi.h"

/* Check the ELF is something we can unwind and return its e_machine. */
static int elf_check(Elf *elf, uint16_t *ret_machine)
{
	GElf_Ehdr ehdr;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr))
		return -EOPNOTSUPP;
	if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_ident[EI_DATA] != ELFDATA2LSB)
		return -EOPNOTSUPP;
	if (ehdr.e_machine != EM_X86_64 && ehdr.e_machine != EM_AARCH64)
		return -EOPNOTSUPP;
	/* Relocatable objects hold unrelocated addresses. */
	if (ehdr.e_type == ET_REL)
		return -EOPNOTSUPP;
	*ret_machine = ehdr.e_machine;
	return 0;
}

/* Bytes of a section, decompressing SHF_COMPRESSED ones (debug files often have them). */
static int section_bytes(Elf_Scn *scn, const GElf_Shdr *shdr, struct cfi_section *ret)
{
	Elf_Data *data;

	if (shdr->sh_type == SHT_NOBITS)
		return -ENODATA;
	if (shdr->sh_flags & SHF_COMPRESSED) {
		GElf_Chdr chdr;
		/* libelf allocates ch_size bytes: refuse absurd claims before it does. */
		if (!gelf_getchdr(scn, &chdr) || chdr.ch_size > CFI_MAX_SECTION_SIZE)
			return -EBADMSG;
		if (elf_compress(scn, 0, 0) < 0)
			return -EBADMSG;
	}
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || data->d_size == 0)
		return -ENODATA;
	if (data->d_size > CFI_MAX_SECTION_SIZE)
		return -E2BIG;
	*ret = (struct cfi_section){
	    .data = data->d_buf,
	    .size = data->d_size,
	    .addr = shdr->sh_addr,
	};
	return 0;
}

static int find_section(Elf *elf, const char *name, struct cfi_section *ret)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) < 0)
		return -ENODATA;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		const char *n;

		if (!gelf_getshdr(scn, &shdr))
			continue;
		n = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (n && strcmp(n, name) == 0)
			return section_bytes(scn, &shdr, ret);
	}
	return -ENODATA;
}

/* File bytes [vaddr, end of its PT_LOAD's file image), through the program headers. */
static int segment_bytes_at(Elf *elf, uint64_t vaddr, struct cfi_section *ret)
{
	const char *raw;
	size_t raw_size, n;

	raw = elf_rawfile(elf, &raw_size);
	if (!raw || elf_getphdrnum(elf, &n) < 0)
		return -ENODATA;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		uint64_t delta;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz)
			continue;
		delta = vaddr - ph.p_vaddr;
		if (ph.p_offset > raw_size || ph.p_filesz > raw_size - ph.p_offset)
			return -EBADMSG;
		*ret = (struct cfi_section){
		    .data = (const uint8_t *)raw + ph.p_offset + delta,
		    .size = MIN(ph.p_filesz - delta, (uint64_t)CFI_MAX_SECTION_SIZE),
		    .addr = vaddr,
		};
		return 0;
	}
	return -ENODATA;
}

/* .eh_frame_hdr and .eh_frame without section headers. */
static int find_eh_frame_by_phdr(Elf *elf, struct cfi_section *ret_hdr, struct cfi_section *ret)
{
	const char *raw;
	size_t raw_size, n;
	struct cfi_eh_frame_hdr hdr;
	int r;

	raw = elf_rawfile(elf, &raw_size);
	if (!raw || elf_getphdrnum(elf, &n) < 0)
		return -ENODATA;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_GNU_EH_FRAME)
			continue;
		if (ph.p_offset > raw_size || ph.p_filesz > raw_size - ph.p_offset)
			return -EBADMSG;
		*ret_hdr = (struct cfi_section){
		    .data = (const uint8_t *)raw + ph.p_offset,
		    .size = ph.p_filesz,
		    .addr = ph.p_vaddr,
		};
		r = cfi_eh_frame_hdr_parse(ret_hdr, &hdr);
		if (r < 0)
			return r;
		/* The section's size is unknown: the walk stops at its zero terminator. */
		return segment_bytes_at(elf, hdr.eh_frame_addr, ret);
	}
	return -ENODATA;
}

/* [lo, hi) spanning the executable PT_LOADs; both 0 when there are none. */
static void code_range(Elf *elf, uint64_t *ret_lo, uint64_t *ret_hi)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t n;

	*ret_lo = *ret_hi = 0;
	if (elf_getphdrnum(elf, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		uint64_t end;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (__builtin_add_overflow(ph.p_vaddr, ph.p_memsz, &end))
			continue;
		lo = MIN(lo, ph.p_vaddr);
		hi = MAX(hi, end);
	}
	if (hi > lo) {
		*ret_lo = lo;
		*ret_hi = hi;
	}
}

int cfi_table_build_from_elf(Elf *elf, Elf *debug_elf, struct cfi_table **ret)
{
	struct cfi_sections s = {};
	uint16_t machine, debug_machine;
	int r;

	if (!elf || !ret)
		return -EINVAL;
	r = elf_check(elf, &machine);
	if (r < 0)
		return r;

	(void)find_section(elf, ".eh_frame_hdr", &s.eh_frame_hdr);
	if (find_section(elf, ".eh_frame", &s.eh_frame) < 0) {
		s.eh_frame_hdr = (struct cfi_section){};
		(void)find_eh_frame_by_phdr(elf, &s.eh_frame_hdr, &s.eh_frame);
	}
	if (find_section(elf, ".debug_frame", &s.debug_frame) < 0 && debug_elf &&
	    elf_check(debug_elf, &debug_machine) == 0 && debug_machine == machine)
		(void)find_section(debug_elf, ".debug_frame", &s.debug_frame);

	code_range(elf, &s.pc_lo, &s.pc_hi);
	return cfi_table_build(machine, &s, ret);
}

int cfi_table_build_from_elf_fd(int fd, struct cfi_table **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;

	if (fd < 0 || !ret)
		return -EINVAL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	elf = elf_begin_fd(fd);
	if (!elf)
		return -EOPNOTSUPP;
	return cfi_table_build_from_elf(elf, NULL, ret);
}
