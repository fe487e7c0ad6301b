/* SPDX-License-Identifier: MIT */
/*
 * Compressed DWARF, decompressed faster than libdw would. Debian's debug files (libc6-dbg's
 * among them) keep their .debug_* sections zlib-compressed (SHF_COMPRESSED); libdw inflates
 * every one of them with zlib, one after the other, the first time it reads the file: ~55 ms
 * for glibc's, most of the fixed cost of a `profd convert` or of the first symbolization in
 * `profd record`. Here the same bytes are inflated with libdeflate (about 2.5x zlib's speed),
 * on two threads, into a memfd holding the file unchanged plus the inflated sections and a new
 * section header table after it; libdw is handed that and finds nothing left to decompress.
 * Location lists are left out (symbolization never evaluates a location).
 *
 * The input is hostile: every header is bounds-checked against the file's size, sections must
 * be zlib (ELFCOMPRESS_ZLIB) with a plausible ratio, and the total is capped; anything else
 * answers -ENODATA and the caller uses the file as it is (libdw then does its own, slower,
 * decompression, or rejects the file). Reads are pread(): a file truncated meanwhile gives
 * short reads, never SIGBUS.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

#ifndef SHF_COMPRESSED
#define SHF_COMPRESSED (1u << 11)
#endif
#ifndef ELFCOMPRESS_ZLIB
#define ELFCOMPRESS_ZLIB 1
#endif

/* Deflate cannot do better than ~1032:1; a section claiming more is lying. */
#define MAX_RATIO 1040u
#define MAX_SECTIONS 4096u
#define INFLATE_THREADS 2

struct zsec {
	size_t shndx;
	uint64_t in_off, in_len; /* the zlib stream in the input file */
	uint64_t out_off, out_len;
	uint64_t align;
};

struct job {
	int fd;
	uint8_t *out; /* the memfd, mapped */
	struct zsec *secs;
	size_t n_secs;
	size_t next; /* under lock: the next section to take */
	int err;     /* under lock: the first failure */
	pthread_mutex_t lock;
};

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO; /* the file shrank under us */
		done += (size_t)k;
	}
	return 0;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t l = strlen(prefix);
	return n >= l && memcmp(s, prefix, l) == 0;
}

static void *inflate_worker(void *userdata)
{
	struct job *j = userdata;
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	uint8_t *in = NULL;
	size_t in_cap = 0;
	int err = d ? 0 : -ENOMEM;

	for (;;) {
		struct zsec *s = NULL;

		pthread_mutex_lock(&j->lock);
		if (err < 0 && j->err == 0)
			j->err = err;
		if (j->err == 0 && j->next < j->n_secs)
			s = &j->secs[j->next++];
		pthread_mutex_unlock(&j->lock);
		if (!s)
			break;
		if (s->in_len > in_cap) {
			free(in);
			in_cap = s->in_len;
			in = malloc(in_cap);
			if (!in) {
				in_cap = 0;
				err = -ENOMEM;
				continue;
			}
		}
		err = pread_all(j->fd, in, s->in_len, s->in_off);
		if (err < 0)
			continue;
		size_t got = 0;
		if (libdeflate_zlib_decompress(d, in, s->in_len, j->out + s->out_off, s->out_len,
					       &got) != LIBDEFLATE_SUCCESS ||
		    got != s->out_len)
			err = -EBADMSG;
	}
	free(in);
	if (d)
		libdeflate_free_decompressor(d);
	return NULL;
}

struct range {
	uint64_t off, len;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Biggest first, so the two threads finish together. */
static int cmp_in_len_desc(const void *a, const void *b)
{
	const struct zsec *x = a, *y = b;
	return x->in_len < y->in_len ? 1 : x->in_len > y->in_len ? -1 : 0;
}

/* pread_all() of the input, whose short reads mean "not a file this understands". */
static int pread_in(int fd, void *buf, size_t len, uint64_t off)
{
	int r = pread_all(fd, buf, len, off);

	return r == -EIO ? -ENODATA : r;
}

/* The ELF header, the section headers and their names (NUL-terminated), checked. */
static int read_headers(int fd, uint64_t fsize, Elf64_Ehdr *eh, Elf64_Shdr **ret_sh,
			char **ret_names)
{
	_cleanup_free_ Elf64_Shdr *sh = NULL;
	_cleanup_free_ char *names = NULL;
	const Elf64_Shdr *strsh;
	int r;

	r = pread_in(fd, eh, sizeof(*eh), 0);
	if (r < 0)
		return r;
	/* 64-bit little-endian (x86_64, aarch64) only; the rest keeps libdw's path. */
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shnum == 0 || eh->e_shnum > MAX_SECTIONS || eh->e_shstrndx >= eh->e_shnum ||
	    eh->e_shoff > fsize || fsize - eh->e_shoff < (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))
		return -ENODATA;
	sh = calloc(eh->e_shnum, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	r = pread_in(fd, sh, eh->e_shnum * sizeof(*sh), eh->e_shoff);
	if (r < 0)
		return r;
	strsh = &sh[eh->e_shstrndx];
	if (strsh->sh_type != SHT_STRTAB || (strsh->sh_flags & SHF_COMPRESSED) ||
	    strsh->sh_offset > fsize || strsh->sh_size > fsize - strsh->sh_offset ||
	    strsh->sh_size > (16u << 20))
		return -ENODATA;
	names = malloc(strsh->sh_size + 1);
	if (!names)
		return -ENOMEM;
	r = pread_in(fd, names, strsh->sh_size, strsh->sh_offset);
	if (r < 0)
		return r;
	names[strsh->sh_size] = '\0';
	*ret_sh = TAKE_PTR(sh);
	*ret_names = TAKE_PTR(names);
	return 0;
}

/* What the new file holds: the old one but for `skip`, then the inflated `secs`. */
struct inflate_plan {
	struct zsec *secs; /* shnum entries */
	size_t n_secs;
	struct range *skip; /* shnum entries: old bytes not copied */
	size_t n_skip;
	uint64_t out_end; /* end of the last inflated section in the new file */
};

/*
 * Plan section `i` (a .debug_* one): location lists are dropped (SHT_NOBITS), a zlib-compressed
 * section gets its place in the new file. -ENODATA for a section this does not understand.
 */
static int plan_section(int fd, uint64_t fsize, size_t i, Elf64_Shdr *s, const char *name,
			struct inflate_plan *pl, uint64_t *total)
{
	Elf64_Chdr ch;
	uint64_t in_len, align, off;
	int r;

	if (!strcmp(name, ".debug_loc") || !strcmp(name, ".debug_loclists")) {
		/* Variable locations: not read by symbolization, not worth inflating. */
		if (s->sh_offset <= fsize && s->sh_size <= fsize - s->sh_offset)
			pl->skip[pl->n_skip++] = (struct range){ s->sh_offset, s->sh_size };
		s->sh_type = SHT_NOBITS;
		s->sh_flags &= ~(uint64_t)SHF_COMPRESSED;
		s->sh_size = 0;
		return 0;
	}
	if (!(s->sh_flags & SHF_COMPRESSED))
		return 0;
	if (s->sh_offset > fsize || s->sh_size > fsize - s->sh_offset || s->sh_size <= sizeof(ch))
		return -ENODATA;
	r = pread_in(fd, &ch, sizeof(ch), s->sh_offset);
	if (r < 0)
		return r;
	in_len = s->sh_size - sizeof(ch);
	if (ch.ch_type != ELFCOMPRESS_ZLIB || ch.ch_size == 0 || ch.ch_size / MAX_RATIO > in_len ||
	    ch.ch_addralign > 4096 || (ch.ch_addralign & (ch.ch_addralign - 1)))
		return -ENODATA;
	align = ch.ch_addralign ? ch.ch_addralign : 1;
	off = (pl->out_end + align - 1) & ~(align - 1);
	if (ch.ch_size > SYM_MAX_INFLATED_BYTES - *total)
		return -ENODATA;
	*total += ch.ch_size;
	pl->skip[pl->n_skip++] = (struct range){ s->sh_offset, s->sh_size };
	pl->secs[pl->n_secs++] = (struct zsec){
		.shndx = i,
		.in_off = s->sh_offset + sizeof(ch),
		.in_len = in_len,
		.out_off = off,
		.out_len = ch.ch_size,
		.align = align,
	};
	pl->out_end = off + ch.ch_size;
	return 0;
}

/*
 * The original bytes, offsets unchanged (program headers, notes, symbols stay valid), but for
 * the sections replaced or dropped: their old bytes stay holes of the memfd, which cost no
 * memory.
 */
static int copy_kept(int fd, uint8_t *out, uint64_t fsize, struct range *skip, size_t n_skip)
{
	uint64_t at = 0;
	int r = 0;

	qsort(skip, n_skip, sizeof(*skip), cmp_range);
	for (size_t i = 0; i <= n_skip && r == 0; i++) {
		uint64_t gap_end = i < n_skip ? skip[i].off : fsize;

		if (gap_end > at)
			r = pread_all(fd, out + at, gap_end - at, at);
		if (i < n_skip && skip[i].off + skip[i].len > at)
			at = skip[i].off + skip[i].len;
	}
	return r;
}

/* Inflate the planned sections into out, on this thread and (with two or more) a helper. */
static int inflate_all(int fd, uint8_t *out, struct zsec *secs, size_t n_secs)
{
	struct job j = { .fd = fd, .out = out, .secs = secs, .n_secs = n_secs };
	pthread_t t;
	bool helper;

	qsort(secs, n_secs, sizeof(*secs), cmp_in_len_desc);
	pthread_mutex_init(&j.lock, NULL);
	helper = INFLATE_THREADS > 1 && n_secs > 1 &&
		 pthread_create(&t, NULL, inflate_worker, &j) == 0;
	inflate_worker(&j);
	if (helper)
		pthread_join(t, NULL);
	pthread_mutex_destroy(&j.lock);
	return j.err;
}

int sym_inflate_debug_sections(int fd, int *ret_fd)
{
	Elf64_Ehdr eh;
	struct stat st;
	_cleanup_free_ Elf64_Shdr *sh = NULL;
	_cleanup_free_ char *names = NULL;
	_cleanup_free_ struct zsec *secs = NULL;
	_cleanup_free_ struct range *skip = NULL;
	struct inflate_plan pl;
	uint64_t fsize, total = 0, shoff, new_size;
	size_t shnum;
	uint8_t *out;
	int r;

	if (fd < 0 || !ret_fd)
		return -EINVAL;
	*ret_fd = -1;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(eh))
		return -ENODATA;
	fsize = (uint64_t)st.st_size;
	r = read_headers(fd, fsize, &eh, &sh, &names);
	if (r < 0)
		return r;
	shnum = eh.e_shnum;
	secs = calloc(shnum, sizeof(*secs));
	skip = calloc(shnum, sizeof(*skip));
	if (!secs || !skip)
		return -ENOMEM;
	/* The new file: the old one as it is, then the inflated sections, then the headers. */
	pl = (struct inflate_plan){ .secs = secs, .skip = skip, .out_end = fsize };
	for (size_t i = 0; i < shnum; i++) {
		Elf64_Shdr *s = &sh[i];
		const char *name;

		/* The string table's size as it is now: a .debug_loc* one was emptied above. */
		if (s->sh_name >= sh[eh.e_shstrndx].sh_size)
			continue;
		name = names + s->sh_name;
		if (!starts_with(name, strlen(name), ".debug_") || s->sh_type == SHT_NOBITS)
			continue;
		r = plan_section(fd, fsize, i, s, name, &pl, &total);
		if (r < 0)
			return r;
	}
	if (pl.n_secs == 0)
		return -ENODATA;

	shoff = (pl.out_end + 7) & ~7ull;
	new_size = shoff + shnum * sizeof(Elf64_Shdr);
	_cleanup_close_ int mfd = memfd_create("profd-debug", MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, (off_t)new_size) < 0)
		return -errno;
	out = mmap(NULL, new_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (out == MAP_FAILED)
		return -errno;
	r = copy_kept(fd, out, fsize, skip, pl.n_skip);
	if (r == 0)
		r = inflate_all(fd, out, secs, pl.n_secs);
	if (r == 0) {
		for (size_t i = 0; i < pl.n_secs; i++) {
			Elf64_Shdr *s = &sh[secs[i].shndx];
			s->sh_flags &= ~(uint64_t)SHF_COMPRESSED;
			s->sh_offset = secs[i].out_off;
			s->sh_size = secs[i].out_len;
			s->sh_addralign = secs[i].align;
		}
		memcpy(out + shoff, sh, shnum * sizeof(Elf64_Shdr));
		eh.e_shoff = shoff;
		memcpy(out, &eh, sizeof(eh));
	}
	munmap(out, new_size);
	if (r < 0)
		return r == -EIO || r == -EBADMSG ? -ENODATA : r;
	*ret_fd = TAKE_FD(mfd);
	return 0;
}
