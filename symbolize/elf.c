/* SPDX-License-Identifier: MIT */
/* ELF identification (machine, type, GNU build-id) for the process table. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <elf.h>
#include <gelf.h>
#include <libelf.h>

#include "common/macro.h"
#include "symbolize/symbolize.h"

/* Hostile-input limits: real binaries have a handful of notes; anything past these is junk. */
#define IDENT_MAX_NOTE_BYTES (1u << 20) /* per note segment/section */
#define IDENT_MAX_NOTES 256             /* notes examined per segment/section */
#define IDENT_MAX_SECTIONS 65536        /* sections examined for the fallback */

static void elf_endp(Elf **e)
{
	if (*e)
		elf_end(*e);
}

/* 1 and fills `ret` when `data` holds a GNU build-id note, 0 when it does not. */
static int find_build_id(Elf_Data *data, struct elf_ident *ret)
{
	size_t off = 0;
	GElf_Nhdr nhdr;
	size_t name_off, desc_off;

	for (unsigned n = 0; n < IDENT_MAX_NOTES && off < data->d_size; n++) {
		/* gelf_getnote() checks that name and desc lie inside d_size. */
		size_t next = gelf_getnote(data, off, &nhdr, &name_off, &desc_off);
		if (next == 0 || next <= off)
			break;
		off = next;

		if (nhdr.n_type != NT_GNU_BUILD_ID || nhdr.n_namesz != sizeof(ELF_NOTE_GNU) ||
		    memcmp((const char *)data->d_buf + name_off, ELF_NOTE_GNU,
			   sizeof(ELF_NOTE_GNU)) != 0)
			continue;
		if (nhdr.n_descsz == 0 || nhdr.n_descsz > sizeof(ret->build_id))
			continue;
		memcpy(ret->build_id, (const char *)data->d_buf + desc_off, nhdr.n_descsz);
		ret->build_id_len = nhdr.n_descsz;
		return 1;
	}
	return 0;
}

static int build_id_from_phdrs(Elf *elf, struct elf_ident *ret)
{
	size_t phnum;
	if (elf_getphdrnum(elf, &phnum) < 0)
		return 0;

	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr mem, *ph = gelf_getphdr(elf, (int)i, &mem);
		if (!ph || ph->p_type != PT_NOTE)
			continue;
		if (ph->p_filesz == 0 || ph->p_filesz > IDENT_MAX_NOTE_BYTES)
			continue;
		/* rawchunk checks the range against the file size; note alignment decides the
		 * note header layout (8 for some newer toolchains). */
		Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)ph->p_offset, ph->p_filesz,
						   ph->p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (d && find_build_id(d, ret))
			return 1;
	}
	return 0;
}

static int build_id_from_sections(Elf *elf, struct elf_ident *ret)
{
	Elf_Scn *scn = NULL;

	for (unsigned n = 0; n < IDENT_MAX_SECTIONS && (scn = elf_nextscn(elf, scn)); n++) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		if (!sh || sh->sh_type != SHT_NOTE || sh->sh_size == 0 ||
		    sh->sh_size > IDENT_MAX_NOTE_BYTES)
			continue;
		/* Compressed note sections do not occur in practice; skip them rather than
		 * inflate hostile input. */
		if (sh->sh_flags & SHF_COMPRESSED)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (d && d->d_buf && find_build_id(d, ret))
			return 1;
	}
	return 0;
}

int elf_identify_fd(int fd, struct elf_ident *ret)
{
	if (fd < 0 || !ret)
		return -EINVAL;

	/* A FIFO or device would make libelf block or read forever. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;

	_cleanup_(elf_endp) Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;

	GElf_Ehdr ehdr_mem, *ehdr = gelf_getehdr(elf, &ehdr_mem);
	if (!ehdr)
		return -ENOEXEC;

	struct elf_ident id = {
		.e_machine = ehdr->e_machine,
		.e_type = ehdr->e_type,
	};
	/* Loaded objects carry the note in a PT_NOTE segment; section headers may be stripped
	 * or lie, so they are only the fallback (relocatable objects, odd linkers). */
	if (!build_id_from_phdrs(elf, &id))
		(void)build_id_from_sections(elf, &id);

	*ret = id;
	return 0;
}

int build_id_to_hex(const uint8_t *id, size_t len, char *buf, size_t buf_size)
{
	static const char hex[] = "0123456789abcdef";
	size_t need;

	if ((!id && len > 0) || !buf)
		return -EINVAL;
	if (size_mul(len, 2, &need) < 0 || size_add(need, 1, &need) < 0 || need > buf_size ||
	    need - 1 > INT32_MAX)
		return -ENOBUFS;

	for (size_t i = 0; i < len; i++) {
		buf[2 * i] = hex[id[i] >> 4];
		buf[2 * i + 1] = hex[id[i] & 0xf];
	}
	buf[2 * len] = '\0';
	return (int)(2 * len);
}
