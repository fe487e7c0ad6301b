// SPDX-License-Identifier: MIT
/*
 * ELF core-file reader. Manual parsing rather than libelf: a core needs only the ELF header,
 * the program headers and the notes, and doing it by hand keeps every bounds check in view.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/macro.h"
#include "sources/core.h"
#include "pipeline/proc.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/*
 * Per-architecture layout of NT_PRSTATUS (struct elf_prstatus of that architecture's kernel).
 * Both 64-bit arches share the header (siginfo, cursig, sigpend, sighold, pid..sid, four
 * timevals = 112 bytes) and differ in pr_reg (elf_gregset_t):
 *   x86_64:  struct user_regs_struct, 27 x u64: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx
 *            rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs
 *   aarch64: struct user_pt_regs, 34 x u64: x0..x30 sp pc pstate
 * Offsets checked against <sys/procfs.h> of gcc and aarch64-linux-gnu-gcc.
 */
struct core_arch {
	uint16_t e_machine;
	const char *name;
	size_t prstatus_size; /* sizeof(struct elf_prstatus); notes may be longer, never shorter
				 than pr_reg's end */
	size_t pr_reg_offset;
	size_t pr_reg_size;
	/* Offsets inside pr_reg; lr_off < 0: no link register. */
	size_t pc_off, sp_off, fp_off;
	ssize_t lr_off;
};

static const struct core_arch core_arches[] = {
	{
		.e_machine = EM_X86_64,
		.name = "x86_64",
		.prstatus_size = 336,
		.pr_reg_offset = 112,
		.pr_reg_size = 27 * 8,
		.pc_off = 16 * 8, /* rip */
		.sp_off = 19 * 8, /* rsp */
		.fp_off = 4 * 8,  /* rbp */
		.lr_off = -1,
	},
	{
		.e_machine = EM_AARCH64,
		.name = "aarch64",
		.prstatus_size = 392,
		.pr_reg_offset = 112,
		.pr_reg_size = 34 * 8,
		.pc_off = 32 * 8, /* pc */
		.sp_off = 31 * 8, /* sp */
		.fp_off = 29 * 8, /* x29 */
		.lr_off = 30 * 8, /* x30 */
	},
};

/* Offsets shared by both arches' elf_prstatus / elf_prpsinfo. */
#define PRSTATUS_CURSIG_OFF 12
#define PRSTATUS_PID_OFF 32
#define PRPSINFO_SIZE 136
#define PRPSINFO_PID_OFF 24
#define PRPSINFO_FNAME_OFF 40
#define PRPSINFO_FNAME_LEN 16
#define PRPSINFO_PSARGS_OFF 56
#define PRPSINFO_PSARGS_LEN 80

static const struct core_arch *core_arch_find(uint16_t e_machine)
{
	for (size_t i = 0; i < ARRAY_SIZE(core_arches); i++)
		if (core_arches[i].e_machine == e_machine)
			return &core_arches[i];
	return NULL;
}

/* Little-endian loads from a buffer already bounds-checked by the caller. */
static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* [off, off + len) inside [0, size)? Overflow-safe. */
static bool in_bounds(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

void core_free(struct core *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_mappings; i++)
		free(c->mappings[i].name);
	free(c->mappings);
	free(c->threads);
	free(c->segments);
	free(c->auxv);
	if (c->map)
		munmap(c->map, c->size);
	free(c);
}
DEFINE_FREEP(struct core, core_free);

static void mappings_free(struct core_mapping *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

static int cmp_segment(const void *a, const void *b)
{
	const struct core_segment *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static int cmp_mapping(const void *a, const void *b)
{
	const struct core_mapping *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

const struct core_segment *core_find_segment(const struct core *c, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!c)
		return NULL;
	hi = c->n_segments;
	/* Sorted and non-overlapping: the last segment starting at or below addr is the one. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->segments[mid].vaddr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct core_segment *s = &c->segments[lo - 1];
	return addr - s->vaddr < s->memsz ? s : NULL;
}

size_t core_read(const struct core *c, uint64_t addr, void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;

	if (!c || !buf)
		return 0;
	while (done < len) {
		const struct core_segment *s = core_find_segment(c, addr);
		uint64_t off, n;

		if (!s)
			break;
		off = addr - s->vaddr;
		if (off >= s->avail)
			break; /* in memory, but its bytes were not dumped */
		n = MIN(s->avail - off, (uint64_t)(len - done));
		/* avail was clamped to the file at parse time, so this stays inside the mapping. */
		memcpy(out + done, c->data + s->offset + off, n);
		done += n;
		if (__builtin_add_overflow(addr, n, &addr))
			break;
	}
	return done;
}

int core_auxv_get(const struct core *c, uint64_t type, uint64_t *ret)
{
	if (!c)
		return -EINVAL;
	for (size_t i = 0; i < c->n_auxv; i++)
		if (c->auxv[2 * i] == type) {
			if (ret)
				*ret = c->auxv[2 * i + 1];
			return 0;
		}
	return -ENOENT;
}

const struct core_mapping *core_find_mapping(const struct core *c, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!c)
		return NULL;
	hi = c->n_mappings;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->mappings[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct core_mapping *m = &c->mappings[lo - 1];
	return addr < m->end ? m : NULL;
}

/* Sort mappings, reject overlaps, and take executable bits from the PT_LOAD flags if unknown. */
static int mappings_finish(const struct core *c, struct core_mapping *m, size_t n)
{
	if (n == 0)
		return 0;
	qsort(m, n, sizeof(*m), cmp_mapping);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && m[i].start < m[i - 1].end)
			return -EBADMSG;
		if (!m[i].prot_known) {
			const struct core_segment *s = core_find_segment(c, m[i].start);

			/* The kernel and qemu write p_flags from the mapping's protection. */
			m[i].exec = s ? (s->flags & PF_X) != 0 : true;
			m[i].prot_known = s != NULL;
		}
	}
	return 0;
}

/* ---- notes -------------------------------------------------------------------------------- */

static int parse_prstatus(const struct core_arch *arch, const uint8_t *desc, size_t len,
			  struct core_thread *ret)
{
	const uint8_t *r;

	/* Older or newer kernels may append fields; the part we read must be there. */
	if (len < arch->pr_reg_offset + arch->pr_reg_size)
		return -EBADMSG;
	r = desc + arch->pr_reg_offset;
	*ret = (struct core_thread){
		.tid = get32(desc + PRSTATUS_PID_OFF),
		.signo = get16(desc + PRSTATUS_CURSIG_OFF),
		.regs = {
			.pc = get64(r + arch->pc_off),
			.sp = get64(r + arch->sp_off),
			.fp = get64(r + arch->fp_off),
			.lr = arch->lr_off >= 0 ? get64(r + arch->lr_off) : 0,
		},
	};
	return 0;
}

static void copy_cstr(char *dst, size_t dst_size, const uint8_t *src, size_t src_len)
{
	size_t n = strnlen((const char *)src, MIN(src_len, dst_size - 1));

	memcpy(dst, src, n);
	dst[n] = '\0';
	/* A name is shown on a terminal: no control characters from a hostile file. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

static int parse_prpsinfo(struct core *c, const uint8_t *desc, size_t len)
{
	if (len < PRPSINFO_SIZE)
		return -EBADMSG;
	c->pid = get32(desc + PRPSINFO_PID_OFF);
	copy_cstr(c->comm, sizeof(c->comm), desc + PRPSINFO_FNAME_OFF, PRPSINFO_FNAME_LEN);
	copy_cstr(c->psargs, sizeof(c->psargs), desc + PRPSINFO_PSARGS_OFF, PRPSINFO_PSARGS_LEN);
	c->has_prpsinfo = true;
	return 0;
}

static int parse_auxv(struct core *c, const uint8_t *desc, size_t len)
{
	size_t n = 0, max = MIN(len / 16, (size_t)CORE_MAX_AUXV);
	uint64_t *v;

	if (c->auxv)
		return 0; /* one per process; ignore repeats */
	v = calloc(max ? max : 1, 16);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < max; i++) {
		uint64_t type = get64(desc + 16 * i), val = get64(desc + 16 * i + 8);

		if (type == AT_NULL)
			break;
		v[2 * n] = type;
		v[2 * n + 1] = val;
		n++;
	}
	c->auxv = v;
	c->n_auxv = n;
	return 0;
}

/*
 * NT_FILE: u64 count, u64 page_size, count x {u64 start, end, file_ofs (in pages)}, then count
 * NUL-terminated names.
 */
static int parse_nt_file(struct core *c, const uint8_t *desc, size_t len)
{
	struct core_mapping *m = NULL;
	uint64_t count, page_size;
	size_t names, table_len, pos, n = 0;
	int r;

	if (c->has_nt_file)
		return 0;
	if (len < 16)
		return -EBADMSG;
	count = get64(desc);
	page_size = get64(desc + 8);
	if (count > CORE_MAX_FILES)
		return -E2BIG;
	/* count <= 2^20, so 24 * count cannot overflow. */
	table_len = 24 * (size_t)count;
	if (table_len > len - 16)
		return -EBADMSG;
	if (page_size == 0 || (page_size & (page_size - 1)) || page_size > (1u << 30))
		return -EBADMSG;
	names = 16 + table_len;
	m = calloc(count ? count : 1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pos = names;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = desc + 16 + 24 * i;
		uint64_t start = get64(e), end = get64(e + 8), ofs = get64(e + 16);
		size_t nl;

		if (pos >= len) {
			r = -EBADMSG;
			goto fail;
		}
		nl = strnlen((const char *)desc + pos, len - pos);
		if (nl == len - pos || nl + 1 > CORE_MAX_NAME) {
			r = -EBADMSG; /* unterminated, or absurdly long */
			goto fail;
		}
		if (end <= start || __builtin_mul_overflow(ofs, page_size, &ofs)) {
			r = -EBADMSG;
			goto fail;
		}
		m[n] = (struct core_mapping){ .start = start, .end = end, .pgoff = ofs };
		m[n].name = strndup((const char *)desc + pos, nl);
		if (!m[n].name) {
			r = -ENOMEM;
			goto fail;
		}
		n++;
		pos += nl + 1;
	}
	/* Sorted and checked in core_parse(), once the PT_LOADs (exec bits) are known. */
	c->mappings = m;
	c->n_mappings = n;
	c->has_nt_file = true;
	c->page_size = page_size;
	return 0;
fail:
	mappings_free(m, n);
	return r;
}

/* Walk the notes of one PT_NOTE segment. */
static int parse_notes(struct core *c, const struct core_arch *arch, const uint8_t *p, size_t len,
		       size_t *n_notes, size_t *cap_threads)
{
	size_t pos = 0;
	int r;

	while (len - pos >= 12) {
		uint32_t namesz = get32(p + pos), descsz = get32(p + pos + 4),
			 type = get32(p + pos + 8);
		size_t name_off = pos + 12, desc_off, next;
		const uint8_t *name, *desc;

		if (++*n_notes > CORE_MAX_NOTES)
			return -E2BIG;
		/* 4-byte padding after name and desc, as Linux writes core notes. */
		if (size_add(name_off, ((size_t)namesz + 3) & ~(size_t)3, &desc_off) < 0 ||
		    desc_off > len)
			return -EBADMSG;
		if (size_add(desc_off, descsz, &next) < 0 || next > len)
			return -EBADMSG;
		name = p + name_off;
		desc = p + desc_off;
		/* Pad of the last note may be missing. */
		next = MIN(len, (next + 3) & ~(size_t)3);

		/* The types below live in the "CORE" namespace ("LINUX" notes reuse numbers). */
		if (namesz == 5 && memcmp(name, "CORE", 5) == 0) {
			switch (type) {
			case NT_PRSTATUS:
				r = GROW_ARRAY(c->threads, *cap_threads, c->n_threads + 1,
					       CORE_MAX_THREADS);
				if (r < 0)
					return r;
				r = parse_prstatus(arch, desc, descsz, &c->threads[c->n_threads]);
				if (r < 0)
					return r;
				c->n_threads++;
				break;
			case NT_PRPSINFO:
				r = parse_prpsinfo(c, desc, descsz);
				if (r < 0)
					return r;
				break;
			case NT_AUXV:
				r = parse_auxv(c, desc, descsz);
				if (r < 0)
					return r;
				break;
			case NT_FILE:
				r = parse_nt_file(c, desc, descsz);
				if (r < 0)
					return r;
				break;
			default:
				break;
			}
		}
		pos = next;
	}
	return 0;
}

/* ---- file --------------------------------------------------------------------------------- */

int core_parse(const void *data, size_t size, struct core **ret)
{
	_cleanup_(core_freep) struct core *c = NULL;
	const uint8_t *d = data;
	const struct core_arch *arch;
	uint64_t phoff;
	size_t phnum, phentsize, n_notes = 0, cap_threads = 0;
	int r;

	if (!data || !ret)
		return -EINVAL;
	if (size < EI_NIDENT || memcmp(d, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	if (d[EI_CLASS] != ELFCLASS64 || d[EI_DATA] != ELFDATA2LSB)
		return -EOPNOTSUPP;
	if (size < sizeof(Elf64_Ehdr))
		return -EBADMSG;
	if (get16(d + offsetof(Elf64_Ehdr, e_type)) != ET_CORE)
		return -ENOEXEC;
	arch = core_arch_find(get16(d + offsetof(Elf64_Ehdr, e_machine)));
	if (!arch)
		return -EOPNOTSUPP;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->data = d;
	c->size = size;
	c->e_machine = arch->e_machine;
	c->arch_name = arch->name;

	phoff = get64(d + offsetof(Elf64_Ehdr, e_phoff));
	phnum = get16(d + offsetof(Elf64_Ehdr, e_phnum));
	phentsize = get16(d + offsetof(Elf64_Ehdr, e_phentsize));
	if (phnum == PN_XNUM) {
		/* More than 65534 segments: the real count is section header 0's sh_info. */
		uint64_t shoff = get64(d + offsetof(Elf64_Ehdr, e_shoff));

		if (shoff == 0 || !in_bounds(size, shoff, sizeof(Elf64_Shdr)))
			return -EBADMSG;
		phnum = get32(d + shoff + offsetof(Elf64_Shdr, sh_info));
	}
	if (phnum == 0)
		return -EBADMSG;
	if (phnum > CORE_MAX_SEGMENTS)
		return -E2BIG;
	if (phentsize < sizeof(Elf64_Phdr) || !in_bounds(size, phoff, (uint64_t)phnum * phentsize))
		return -EBADMSG;

	/* Count first, so the array is allocated once. */
	size_t n_load = 0;
	for (size_t i = 0; i < phnum; i++)
		if (get32(d + phoff + i * phentsize + offsetof(Elf64_Phdr, p_type)) == PT_LOAD)
			n_load++;
	c->segments = calloc(n_load ? n_load : 1, sizeof(*c->segments));
	if (!c->segments)
		return -ENOMEM;

	for (size_t i = 0; i < phnum; i++) {
		const uint8_t *ph = d + phoff + i * phentsize;
		uint32_t type = get32(ph + offsetof(Elf64_Phdr, p_type));
		uint64_t off = get64(ph + offsetof(Elf64_Phdr, p_offset));
		uint64_t filesz = get64(ph + offsetof(Elf64_Phdr, p_filesz));

		if (type == PT_NOTE) {
			if (!in_bounds(size, off, filesz))
				return -EBADMSG; /* the notes are the core: cut notes are fatal */
			r = parse_notes(c, arch, d + off, filesz, &n_notes, &cap_threads);
			if (r < 0)
				return r;
		} else if (type == PT_LOAD) {
			uint64_t vaddr = get64(ph + offsetof(Elf64_Phdr, p_vaddr));
			uint64_t memsz = get64(ph + offsetof(Elf64_Phdr, p_memsz));
			uint64_t avail = MIN(filesz, memsz), end;

			if (memsz == 0)
				continue;
			if (__builtin_add_overflow(vaddr, memsz - 1, &end))
				return -EBADMSG;
			if (avail > 0 && !in_bounds(size, off, avail)) {
				c->truncated = true;
				avail = off < size ? size - off : 0;
			}
			c->segments[c->n_segments++] = (struct core_segment){
				.vaddr = vaddr,
				.memsz = memsz,
				.offset = avail ? off : 0,
				.avail = avail,
				.flags = get32(ph + offsetof(Elf64_Phdr, p_flags)),
			};
		}
	}
	qsort(c->segments, c->n_segments, sizeof(*c->segments), cmp_segment);
	for (size_t i = 1; i < c->n_segments; i++)
		if (c->segments[i].vaddr - c->segments[i - 1].vaddr < c->segments[i - 1].memsz)
			return -EBADMSG;

	if (c->n_threads == 0)
		return -EBADMSG;
	if (!c->has_prpsinfo || c->pid == 0)
		c->pid = c->threads[0].tid;
	r = mappings_finish(c, c->mappings, c->n_mappings);
	if (r < 0)
		return r;

	*ret = TAKE_PTR(c);
	return 0;
}

int core_open(const char *path, struct core **ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	void *map;
	int r;

	if (!path || !ret)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size < EI_NIDENT)
		return -ENOEXEC;
	if ((uint64_t)st.st_size > SIZE_MAX)
		return -EFBIG;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	r = core_parse(map, st.st_size, ret);
	if (r < 0) {
		munmap(map, st.st_size);
		return r;
	}
	(*ret)->map = map;
	return 0;
}

/* ---- --maps ------------------------------------------------------------------------------- */

int core_load_maps(struct core *c, const char *path)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	struct core_mapping *m = NULL;
	size_t n = 0, cap = 0, linecap = 0, total = 0;
	bool any_parsed = false;
	ssize_t len;
	int r;

	if (!c || !path)
		return -EINVAL;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		struct maps_entry e;

		total += len;
		if (total > CORE_MAX_MAPS_FILE) {
			r = -E2BIG;
			goto fail;
		}
		if ((size_t)len > PROC_MAPS_LINE_MAX || strlen(line) != (size_t)len ||
		    proc_maps_parse_line(line, &e) < 0)
			continue;
		any_parsed = true;
		if (!e.path || e.path[0] != '/')
			continue; /* anonymous, [stack], [vdso], ...: no file to read */
		if (strlen(e.path) + 1 > CORE_MAX_NAME)
			continue;
		r = GROW_ARRAY(m, cap, n + 1, CORE_MAX_FILES);
		if (r < 0)
			goto fail;
		m[n] = (struct core_mapping){
			.start = e.start,
			.end = e.end,
			.pgoff = e.pgoff,
			.exec = (e.prot & PROT_EXEC) != 0,
			.prot_known = true,
			.name = strdup(e.path),
		};
		if (!m[n].name) {
			r = -ENOMEM;
			goto fail;
		}
		n++;
	}
	if (!any_parsed) {
		r = -EBADMSG;
		goto fail;
	}
	r = mappings_finish(c, m, n);
	if (r < 0)
		goto fail;
	mappings_free(c->mappings, c->n_mappings);
	c->mappings = m;
	c->n_mappings = n;
	return 0;
fail:
	mappings_free(m, n);
	return r;
}
