/* SPDX-License-Identifier: MIT */
/*
 * ELF identification shared by every folder that opens binaries: the one opener that checks a
 * file is a regular ELF file of the wanted architecture and reads its GNU build-id, the one
 * build-id note walk, and the hex form of a build-id.
 *
 * Callers: the process table (pipeline/proc.c) keys mappings by struct elf_ident; the binary
 * finder (sources/binaries.c, for convert and stack) opens candidates with elf_open_ident();
 * symbolize/ checks separate debug files; convert walks /sys/kernel/notes with
 * elf_notes_build_id(); pipeline/unwind and pipeline/python begin libelf on an fd with
 * elf_begin_fd(). Input is hostile: nothing here reads past a section or note, and a FIFO or
 * device is refused before libelf reads it (it would block or read forever).
 *
 * Functions return >= 0 on success and -errno on failure; nothing here logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

/* Hostile-input limits: real binaries have a handful of notes; anything past these is junk. */
#define ELF_IDENT_MAX_NOTE_BYTES (1u << 20) /* per note segment/section */
#define ELF_IDENT_MAX_NOTES 256             /* notes examined per segment/section */
#define ELF_IDENT_MAX_SECTIONS 65536        /* sections examined for the fallback */

/* What the process table needs to key a mapping: architecture, type and GNU build-id. */
struct elf_ident {
	uint16_t e_machine;      /* EM_* */
	uint16_t e_type;         /* ET_* */
	uint8_t build_id[64];
	size_t build_id_len;     /* 0: no NT_GNU_BUILD_ID note (or one longer than 64 bytes) */
};

/*
 * Read the ELF header and GNU build-id of the file open at `fd` (not consumed; its file
 * position is not used). The note is searched in PT_NOTE segments first, then in SHT_NOTE
 * sections; at most ELF_IDENT_MAX_NOTE_BYTES and ELF_IDENT_MAX_NOTES notes per
 * segment/section are examined. Returns 0, or -ENOEXEC when the file is not ELF, -EINVAL for
 * bad arguments or a non-regular file.
 */
int elf_identify_fd(int fd, struct elf_ident *ret);

/*
 * Open `path` (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK: a FIFO never blocks the open),
 * check it is a regular file (fstat, before anything is read), ELF, and of architecture
 * `e_machine` (0: any), and fill `ret` as elf_identify_fd(). Returns the fd (the caller closes
 * it), or open's / fstat's -errno, -EINVAL (not a regular file), -ENOEXEC (not ELF), -EXDEV
 * (another architecture).
 */
int elf_open_ident(const char *path, uint16_t e_machine, struct elf_ident *ret);

/*
 * The GNU build-id among the ELF notes in buf[0..size), in host byte order (as libelf hands
 * out ELF_T_NHDR data, and as /sys/kernel/notes is): `align` is the notes' alignment, 4 or 8
 * (ELF_T_NHDR8, some newer toolchains). At most ELF_IDENT_MAX_NOTES notes are examined; a note
 * running past `size` ends the walk. Copies the id to ret and returns its length; 0 when there
 * is none, or when it is empty or longer than ret_size.
 */
size_t elf_notes_build_id(const void *buf, size_t size, size_t align, uint8_t *ret,
			  size_t ret_size);

/*
 * Lower-case hex of a build-id into buf (NUL-terminated). Returns the number of characters
 * written (2 * len), -ENOBUFS when buf_size < 2 * len + 1, -EINVAL for NULL arguments.
 */
int build_id_to_hex(const uint8_t *id, size_t len, char *buf, size_t buf_size);

/*
 * libelf on the file open at `fd` (not consumed), read through a mapping (ELF_C_READ_MMAP),
 * or NULL when libelf cannot start or does not take the file. The kind (ELF, archive, other)
 * is for the caller to check. Free with elf_end(), or declare `_cleanup_(elf_endp)`.
 */
Elf *elf_begin_fd(int fd);
void elf_endp(Elf **e);
