// SPDX-License-Identifier: MIT
/*
 * common/elf: the one build-id note walk (elf_notes_build_id(): 4- and 8-aligned notes, hostile
 * sizes, the note cap), checked against libelf's own gelf_getnote() walk on a real binary, and
 * the one opener of binaries (elf_open_ident(): architecture check, FIFOs refused without
 * blocking, non-ELF files). elf_identify_fd() itself is tested in test-symbolize.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/elf.h"

/* Append one note (host byte order) at *off, name and desc padded to `align` as a linker does. */
static void put_note(uint8_t *buf, size_t *off, size_t align, uint32_t type, const char *name,
		     const uint8_t *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1, hdr[3] = { namesz, descsz, type };

	memcpy(buf + *off, hdr, sizeof(hdr));
	*off += sizeof(hdr);
	memcpy(buf + *off, name, namesz);
	*off = (*off + namesz + align - 1) & ~(align - 1);
	if (descsz)
		memcpy(buf + *off, desc, descsz);
	*off = (*off + descsz + align - 1) & ~(align - 1);
}

Test(elf, notes_build_id_after_other_notes)
{
	uint8_t buf[256] = {}, id[20], got[64], abi[16] = { 1, 2, 3 };
	size_t off = 0;

	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(0xa0 + i);
	put_note(buf, &off, 4, NT_GNU_ABI_TAG, "GNU", abi, sizeof(abi));
	put_note(buf, &off, 4, NT_GNU_BUILD_ID, "Go", id, 8); /* right type, other owner */
	put_note(buf, &off, 4, NT_GNU_BUILD_ID, "GNU", id, sizeof(id));
	cr_assert_eq(elf_notes_build_id(buf, off, 4, got, sizeof(got)), sizeof(id));
	cr_assert_arr_eq(got, id, sizeof(id));
	/* The last note's padding cut off: it runs past the buffer, no id. */
	cr_assert_eq(elf_notes_build_id(buf, off - 1, 4, got, sizeof(got)), 0);
}

Test(elf, notes_build_id_8_aligned)
{
	uint8_t buf[256] = {}, id[20], got[64], prop[12] = { 7 };
	size_t off = 0;

	memset(id, 0x5c, sizeof(id));
	/* A GNU property note (descsz not a multiple of 8) first: 8-alignment decides where the
	 * next note starts. */
	put_note(buf, &off, 8, NT_GNU_PROPERTY_TYPE_0, "GNU", prop, sizeof(prop));
	put_note(buf, &off, 8, NT_GNU_BUILD_ID, "GNU", id, sizeof(id));
	cr_assert_eq(elf_notes_build_id(buf, off, 8, got, sizeof(got)), sizeof(id));
	cr_assert_arr_eq(got, id, sizeof(id));
	/* Read as 4-aligned the same bytes do not give the id at the wrong place. */
	cr_assert_eq(elf_notes_build_id(buf, off, 4, got, sizeof(got)), 0);
	cr_assert_eq(elf_notes_build_id(buf, off, 2, got, sizeof(got)), 0);
}

Test(elf, notes_hostile_sizes)
{
	uint8_t buf[64] = {}, id[20] = { 1 }, got[16];
	uint32_t huge[3] = { 0xfffffffcu, 4, NT_GNU_BUILD_ID };
	size_t off = 0;

	put_note(buf, &off, 4, NT_GNU_BUILD_ID, "GNU", id, sizeof(id));
	/* An id longer than the caller's buffer is none, not a truncated one. */
	cr_assert_eq(elf_notes_build_id(buf, off, 4, got, sizeof(got)), 0);
	/* A name size that wraps an offset. */
	memcpy(buf, huge, sizeof(huge));
	cr_assert_eq(elf_notes_build_id(buf, sizeof(buf), 4, got, sizeof(got)), 0);
	huge[0] = 4;
	huge[1] = 0xfffffffdu; /* descsz whose padding would wrap 32 bits */
	memcpy(buf, huge, sizeof(huge));
	memcpy(buf + 12, "GNU", 4);
	cr_assert_eq(elf_notes_build_id(buf, sizeof(buf), 4, got, sizeof(got)), 0);
	cr_assert_eq(elf_notes_build_id(buf, 11, 4, got, sizeof(got)), 0);
	cr_assert_eq(elf_notes_build_id(NULL, 64, 4, got, sizeof(got)), 0);
}

Test(elf, notes_cap)
{
	size_t size = ELF_IDENT_MAX_NOTES * 16 + 32, off = 0;
	uint8_t *buf = calloc(1, size), id[4] = { 9, 8, 7, 6 }, got[64];

	cr_assert_not_null(buf);
	for (unsigned i = 0; i < ELF_IDENT_MAX_NOTES; i++)
		put_note(buf, &off, 4, NT_GNU_ABI_TAG, "ab", NULL, 0); /* 16 bytes each */
	put_note(buf, &off, 4, NT_GNU_BUILD_ID, "GNU", id, sizeof(id));
	cr_assert_eq(elf_notes_build_id(buf, off, 4, got, sizeof(got)), 0, "past the cap");
	cr_assert_eq(elf_notes_build_id(buf + 16, off - 16, 4, got, sizeof(got)), sizeof(id));
	free(buf);
}

/* The build-id of this test binary as libelf's gelf_getnote() walk finds it. */
static size_t libelf_build_id(int fd, uint8_t *ret)
{
	Elf *elf = elf_begin_fd(fd);
	size_t phnum, n = 0;

	cr_assert_not_null(elf);
	cr_assert_eq(elf_getphdrnum(elf, &phnum), 0);
	for (size_t i = 0; i < phnum && !n; i++) {
		GElf_Phdr ph;
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, next, name_off, desc_off;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
					 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		while (d && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > off) {
			off = next;
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((char *)d->d_buf + name_off, "GNU", 4)) {
				memcpy(ret, (char *)d->d_buf + desc_off, nh.n_descsz);
				n = nh.n_descsz;
				break;
			}
		}
	}
	elf_end(elf);
	return n;
}

Test(elf, open_ident_matches_libelf)
{
	struct elf_ident id;
	uint8_t want[64];
	int fd = elf_open_ident("/proc/self/exe", 0, &id);
	size_t n;

	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	n = libelf_build_id(fd, want);
	cr_assert_gt(n, 0, "the test binary has a build-id note");
	cr_assert_eq(id.build_id_len, n);
	cr_assert_arr_eq(id.build_id, want, n);
	cr_assert_eq(id.e_type, ET_DYN);
	cr_assert_eq(elf_open_ident("/proc/self/exe", id.e_machine, &id) >= 0, true);
	cr_assert_eq(elf_open_ident("/proc/self/exe",
				    id.e_machine == EM_X86_64 ? EM_AARCH64 : EM_X86_64, &id),
		     -EXDEV);
	close(fd);
}

Test(elf, open_ident_refuses_what_is_no_elf_file)
{
	char dir[] = "/tmp/test-elf.XXXXXX", p[64];
	struct elf_ident id;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	/* A FIFO with no writer: refused at once, never blocked on. */
	snprintf(p, sizeof(p), "%s/fifo", dir);
	cr_assert_eq(mkfifo(p, 0600), 0);
	cr_assert_eq(elf_open_ident(p, 0, &id), -EINVAL);
	unlink(p);
	snprintf(p, sizeof(p), "%s/text", dir);
	f = fopen(p, "we");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	cr_assert_eq(elf_open_ident(p, 0, &id), -ENOEXEC);
	unlink(p);
	cr_assert_eq(elf_open_ident(dir, 0, &id), -EINVAL);
	cr_assert_eq(elf_open_ident(p, 0, &id), -ENOENT);
	cr_assert_eq(elf_open_ident(NULL, 0, &id), -EINVAL);
	rmdir(dir);
}
