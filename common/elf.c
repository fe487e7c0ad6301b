/* SPDX-License-Identifier: MIT */
/* ELF identification (machine, type, GNU build-id): see common/elf.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elf.h>
#include <gelf.h>
#include <libelf.h>

#include "common/macro.h"
#include "common/elf.h"

void elf_endp(Elf **e)
{
	if (*e)
		elf_end(*e);
}

Elf *elf_begin_fd(int fd)
{
	if (fd < 0 || elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	return elf_begin(fd, ELF_C_READ_MMAP, NULL);
}

static size_t note_align(size_t v, size_t align)
{
	return (v + align - 1) & ~(align - 1);
}

size_t elf_notes_build_id(const void *buf, size_t size, size_t align, uint8_t *ret,
			  size_t ret_size)
{
	const uint8_t *p = buf;
	size_t off = 0;

	if (!buf || (align != 4 && align != 8))
		return 0;
	for (unsigned n = 0; n < ELF_IDENT_MAX_NOTES; n++) {
		uint32_t hdr[3]; /* n_namesz, n_descsz, n_type */
		size_t name_off, desc_off, next;

		if (off > size || size - off < sizeof(hdr))
			break;
		memcpy(hdr, p + off, sizeof(hdr));
		/* The name follows the header (4-aligned); the descriptor starts `align`-aligned
		 * after it and its padding must be there too. 64-bit sums: no wrap. */
		name_off = off + sizeof(hdr);
		if (hdr[0] > size - name_off)
			break;
		desc_off = note_align(name_off + hdr[0], align);
		next = desc_off + note_align(hdr[1], align);
		if (desc_off > size || next > size)
			break;
		off = next;

		if (hdr[2] != NT_GNU_BUILD_ID || hdr[0] != sizeof(ELF_NOTE_GNU) ||
		    memcmp(p + name_off, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) != 0)
			continue;
		if (hdr[1] == 0 || hdr[1] > ret_size)
			continue;
		memcpy(ret, p + desc_off, hdr[1]);
		return hdr[1];
	}
	return 0;
}

/* 1 and fills `ret` when `data` (notes converted by libelf) holds a GNU build-id note. */
static int find_build_id(Elf_Data *data, struct elf_ident *ret)
{
	size_t n = elf_notes_build_id(data->d_buf, data->d_size,
				      data->d_type == ELF_T_NHDR8 ? 8 : 4, ret->build_id,
				      sizeof(ret->build_id));

	ret->build_id_len = n;
	return n > 0;
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
		if (ph->p_filesz == 0 || ph->p_filesz > ELF_IDENT_MAX_NOTE_BYTES)
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

	for (unsigned n = 0; n < ELF_IDENT_MAX_SECTIONS && (scn = elf_nextscn(elf, scn)); n++) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		if (!sh || sh->sh_type != SHT_NOTE || sh->sh_size == 0 ||
		    sh->sh_size > ELF_IDENT_MAX_NOTE_BYTES)
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

int elf_open_ident(const char *path, uint16_t e_machine, struct elf_ident *ret)
{
	_cleanup_close_ int fd = -1;
	struct elf_ident id;
	int r;

	if (!path || !ret)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* fstat()s it and refuses anything but a regular file before reading. */
	r = elf_identify_fd(fd, &id);
	if (r < 0)
		return r;
	if (e_machine && id.e_machine != e_machine)
		return -EXDEV;
	*ret = id;
	return TAKE_FD(fd);
}
