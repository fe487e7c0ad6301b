// SPDX-License-Identifier: MIT
/*
 * Seed synthesizer for the fuzz targets, run by gen-seeds.sh (built with the host gcc, libelf).
 *
 *   seedgen cfi ELF OUT [MAX]  the CFI sections of ELF in fuzz-cfi's framing; a section longer
 *                              than MAX bytes (default 8 KiB) is cut at an entry boundary
 *   seedgen records DIR        ring-buffer record sequences for fuzz-session
 *   seedgen cores DIR          small x86_64 and aarch64 core files for fuzz-core
 *   seedgen unwind DIR         synthetic frame-pointer stacks for fuzz-unwind
 *   seedgen kallsyms DIR       a synthetic kallsyms text (when /proc/kallsyms hides addresses)
 *   seedgen perfdata DIR       small perf.data files (perf record's file format) for
 *                              fuzz-perfdata: every event kind, both architectures
 *
 * Everything written here is described by the code that writes it: no opaque blobs.
 */
#include <elf.h>
#include <errno.h>
#include <gelf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "tests/fuzz/fuzz-common.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "seedgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* ---- a growable byte buffer ------------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("out of memory");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_zeros(struct buf *b, size_t n)
{
	static const uint8_t z[256];

	while (n > 0) {
		size_t k = n < sizeof(z) ? n : sizeof(z);

		put(b, z, k);
		n -= k;
	}
}

static void put_u16(struct buf *b, uint16_t v)
{
	put(b, &v, sizeof(v));
}

static void put_u32(struct buf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

static void put_u64(struct buf *b, uint64_t v)
{
	put(b, &v, sizeof(v));
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die("cannot write %s: %s", path, strerror(errno));
}

/* ---- cfi ------------------------------------------------------------------------------- */

/* The longest prefix of a CFI section made of whole entries and at most max bytes. */
static size_t cut_entries(const uint8_t *p, size_t size, size_t max)
{
	size_t off = 0;

	while (off + 4 <= size) {
		uint32_t len32;
		uint64_t len, hdr = 4;

		memcpy(&len32, p + off, 4);
		len = len32;
		if (len32 == UINT32_MAX) {
			if (off + 12 > size)
				break;
			memcpy(&len, p + off + 4, 8);
			hdr = 12;
		}
		if (len > size - off - hdr || off + hdr + len > max)
			break;
		off += hdr + len;
		if (len == 0)
			break;
	}
	return off;
}

struct section {
	const uint8_t *data;
	size_t size;
	uint64_t addr;
};

static bool find_section(Elf *elf, const char *name, struct section *ret)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) < 0)
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *n;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || !(n = elf_strptr(elf, shstrndx, sh.sh_name)) ||
		    strcmp(n, name) != 0 || sh.sh_type == SHT_NOBITS)
			continue;
		if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
			return false;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			return false;
		*ret = (struct section){.data = d->d_buf, .size = d->d_size, .addr = sh.sh_addr};
		return true;
	}
	return false;
}

static int cmd_cfi(const char *elf_path, const char *out, size_t max)
{
	struct fuzz_cfi_header h = {0};
	struct section hdr = {0}, eh = {0}, dbg = {0};
	struct buf b = {0};
	GElf_Ehdr ehdr;
	size_t n;
	Elf *elf;
	int fd;

	elf_version(EV_CURRENT);
	fd = open(elf_path, O_RDONLY);
	if (fd < 0 || !(elf = elf_begin(fd, ELF_C_READ, NULL)) || !gelf_getehdr(elf, &ehdr))
		die("%s: not an ELF file", elf_path);
	h.machine = ehdr.e_machine == EM_AARCH64;
	if (find_section(elf, ".eh_frame_hdr", &hdr))
		h.present |= FUZZ_CFI_HAS_HDR;
	if (find_section(elf, ".eh_frame", &eh))
		h.present |= FUZZ_CFI_HAS_EH;
	if (find_section(elf, ".debug_frame", &dbg))
		h.present |= FUZZ_CFI_HAS_DEBUG;
	if (!(h.present & (FUZZ_CFI_HAS_EH | FUZZ_CFI_HAS_DEBUG)))
		die("%s: no CFI", elf_path);
	/* The header and the first entries of the binary search table are enough to parse. */
	h.hdr_len = hdr.size < 12 + 64 * 8 ? hdr.size : 12 + 64 * 8;
	h.eh_len = cut_entries(eh.data, eh.size, max);
	h.hdr_addr = hdr.addr;
	h.eh_addr = eh.addr;
	h.debug_addr = dbg.addr;
	/* The code range from the executable PT_LOADs, as cfi-elf.c computes it. */
	if (elf_getphdrnum(elf, &n) == 0) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
			    !(ph.p_flags & PF_X))
				continue;
			lo = ph.p_vaddr < lo ? ph.p_vaddr : lo;
			hi = ph.p_vaddr + ph.p_memsz > hi ? ph.p_vaddr + ph.p_memsz : hi;
		}
		if (hi > lo) {
			h.pc_lo = lo;
			h.pc_hi = hi;
		}
	}
	put(&b, &h, sizeof(h));
	put(&b, hdr.data, h.hdr_len);
	put(&b, eh.data, h.eh_len);
	put(&b, dbg.data, cut_entries(dbg.data, dbg.size, max));
	write_file(NULL, out, b.p, b.len);
	elf_end(elf);
	close(fd);
	free(b.p);
	return 0;
}

/* ---- ring-buffer records ------------------------------------------------------------------ */

/* A frame-pointer chain of `depth` records in a stack copy starting at `sp`. */
static void fp_chain(uint8_t *stack, size_t len, uint64_t sp, uint64_t code, unsigned depth,
		     uint64_t *ret_fp)
{
	uint64_t fp = sp + 64;

	*ret_fp = fp;
	for (unsigned i = 0; i < depth && fp - sp + 16 <= len; i++) {
		uint64_t next = i + 1 < depth ? fp + 48 : 0, ra = code + 0x40 * (i + 1) + 4;

		memcpy(stack + (fp - sp), &next, 8);
		memcpy(stack + (fp - sp) + 8, &ra, 8);
		fp = next;
	}
}

static void record_sample(struct buf *out, uint16_t machine, uint32_t pid, uint16_t flags,
			  uint32_t n_kstack, uint32_t ustack_len, int32_t size_delta,
			  int32_t ring_delta, uint16_t version)
{
	struct profd_sample s;
	uint8_t stack[1024] = {0};
	uint64_t sp = 0x7ffc00001000ull, fp, kstack[PROFD_MAX_KSTACK];
	uint32_t kbytes;

	if (ustack_len > sizeof(stack))
		ustack_len = sizeof(stack);
	memset(&s, 0, sizeof(s));
	/* The kernel IPs follow the stack bytes (a huge kstack_len claims more than is there). */
	kbytes = (n_kstack < PROFD_MAX_KSTACK ? n_kstack : PROFD_MAX_KSTACK) * sizeof(uint64_t);
	s.hdr.type = PROFD_REC_SAMPLE;
	s.hdr.version = version;
	s.hdr.size = (uint32_t)((int64_t)sizeof(s) + ustack_len + kbytes + size_delta);
	s.time_ns = 123456789;
	s.pid = pid;
	s.tid = pid + 2;
	s.cpu = 1;
	s.e_machine = machine;
	s.flags = flags;
	memcpy(s.comm, "seed-thread-name", 16); /* no NUL: the reader must add one */
	memcpy(s.pcomm, "seed", 5);
	fp_chain(stack, ustack_len, sp, 0x555555554000ull, 6, &fp);
	s.regs[0] = 0x555555554000ull + 0x10;
	s.regs[1] = sp;
	s.regs[2] = fp;
	s.regs[3] = machine == PROFD_EM_AARCH64 ? 0x555555554000ull + 0x84 : 0;
	s.kstack_len = n_kstack;
	for (unsigned i = 0; i < PROFD_MAX_KSTACK; i++)
		kstack[i] = 0xffffffff81000000ull + 0x1000 * i;
	s.ustack_len = ustack_len;
	s.stack_above = 4096;
	put_u32(out, (uint32_t)((int64_t)sizeof(s) + ustack_len + kbytes + ring_delta));
	put(out, &s, sizeof(s));
	put(out, stack, ustack_len);
	put(out, kstack, kbytes);
	/* A ring length below the record's: cut what was written to match. */
	if (ring_delta < 0)
		out->len += ring_delta;
	else
		put_zeros(out, (size_t)ring_delta);
}

static void record_task(struct buf *out, uint16_t type, uint32_t pid, uint32_t size, uint32_t ppid)
{
	struct profd_task_event e;

	memset(&e, 0, sizeof(e));
	e.hdr.type = type;
	e.hdr.version = PROFD_RECORD_VERSION;
	e.hdr.size = size;
	e.time_ns = 42;
	e.pid = pid;
	e.ppid = type == PROFD_REC_FORK ? pid - 2 : ppid;
	memcpy(e.comm, "child", 6);
	put_u32(out, sizeof(e));
	put(out, &e, sizeof(e));
}

static int cmd_records(const char *dir)
{
	/* Odd pids become the fuzzer's own process, even ones a pid that does not exist. */
	const uint32_t self = 1001, none = 1002;
	struct buf all = {0};
	struct {
		const char *name;
		struct buf b;
	} seeds[20];
	size_t n = 0;

#define SEED(nm) (seeds[n].name = (nm), seeds[n].b = (struct buf){0}, &seeds[n++].b)
	record_sample(SEED("sample-x86_64"), PROFD_EM_X86_64, self, PROFD_SAMPLE_USER_MODE, 3, 512,
		      0, 0, PROFD_RECORD_VERSION);
	record_sample(SEED("sample-aarch64"), PROFD_EM_AARCH64, self, PROFD_SAMPLE_USER_MODE, 0,
		      512, 0, 0, PROFD_RECORD_VERSION);
	record_sample(SEED("sample-gone"), PROFD_EM_X86_64, none, PROFD_SAMPLE_USER_MODE, 1, 256, 0,
		      0, PROFD_RECORD_VERSION);
	record_sample(SEED("sample-kthread"), PROFD_EM_X86_64, self, PROFD_SAMPLE_KERNEL_THREAD,
		      PROFD_MAX_KSTACK, 0, 0, 0, PROFD_RECORD_VERSION);
	record_sample(SEED("sample-kstack-huge"), PROFD_EM_X86_64, self, 0, 0xffffffffu, 64, 0, 0,
		      PROFD_RECORD_VERSION);
	record_sample(SEED("sample-hdr-longer-than-ring"), PROFD_EM_X86_64, self, 0, 2, 256, 64, 0,
		      PROFD_RECORD_VERSION);
	record_sample(SEED("sample-ring-cut"), PROFD_EM_X86_64, self, 0, 2, 256, 0, -100,
		      PROFD_RECORD_VERSION);
	record_sample(SEED("sample-ustack-past-hdr"), PROFD_EM_X86_64, self, 0, 2, 256, -128, 0,
		      PROFD_RECORD_VERSION);
	record_sample(SEED("sample-bad-version"), PROFD_EM_X86_64, self, 0, 2, 64, 0, 0, 7);
	record_sample(SEED("sample-bad-machine"), 3, self, 0, 2, 64, 0, 0, PROFD_RECORD_VERSION);
	record_task(SEED("exec"), PROFD_REC_EXEC, self, sizeof(struct profd_task_event), 0);
	/* fuzz-session: an odd ppid in an EXEC brings the process's mappings right back. */
	record_task(SEED("exec-then-maps"), PROFD_REC_EXEC, self, sizeof(struct profd_task_event),
		    1);
	record_task(SEED("exit"), PROFD_REC_EXIT, self, sizeof(struct profd_task_event), 0);
	record_task(SEED("fork"), PROFD_REC_FORK, self, sizeof(struct profd_task_event), 0);
	record_task(SEED("task-short"), PROFD_REC_EXIT, self, 12, 0);
	{
		struct buf *b = SEED("junk");
		static const uint8_t tiny[] = {1, 0, 1};

		put_u32(b, sizeof(tiny));
		put(b, tiny, sizeof(tiny));
		put_u32(b, 8);
		put_u16(b, 99); /* unknown type */
		put_u16(b, PROFD_RECORD_VERSION);
		put_u32(b, 8);
	}
#undef SEED
	for (size_t i = 0; i < n; i++) {
		write_file(dir, seeds[i].name, seeds[i].b.p, seeds[i].b.len);
		put(&all, seeds[i].b.p, seeds[i].b.len);
		free(seeds[i].b.p);
	}
	write_file(dir, "all-in-sequence", all.p, all.len);
	free(all.p);
	return 0;
}

/* ---- cores -------------------------------------------------------------------------------- */

struct core_arch {
	uint16_t machine;
	size_t prstatus_size, pr_reg_off, pc, sp, fp, lr; /* register slots of pr_reg, in u64 */
};

static const struct core_arch x86_64 = {EM_X86_64, 336, 112, 16, 19, 4, 0};
static const struct core_arch aarch64 = {EM_AARCH64, 392, 112, 32, 31, 29, 30};

static void note(struct buf *b, const char *name, uint32_t type, const void *desc, size_t len)
{
	size_t namesz = strlen(name) + 1;

	put_u32(b, (uint32_t)namesz);
	put_u32(b, (uint32_t)len);
	put_u32(b, type);
	put(b, name, namesz);
	put_zeros(b, ((namesz + 3) & ~(size_t)3) - namesz);
	put(b, desc, len);
	put_zeros(b, ((len + 3) & ~(size_t)3) - len);
}

static void prstatus(struct buf *notes, const struct core_arch *a, uint32_t tid, uint16_t sig,
		     uint64_t pc, uint64_t sp, uint64_t fp, uint64_t lr)
{
	uint8_t d[512] = {0};
	uint64_t *reg = (uint64_t *)(d + a->pr_reg_off);

	memcpy(d + 12, &sig, 2);
	memcpy(d + 32, &tid, 4);
	reg[a->pc] = pc;
	reg[a->sp] = sp;
	reg[a->fp] = fp;
	if (a->lr)
		reg[a->lr] = lr;
	note(notes, "CORE", NT_PRSTATUS, d, a->prstatus_size);
}

struct load {
	uint64_t vaddr, memsz;
	const uint8_t *data;
	size_t filesz;
	uint32_t flags;
};

/* ELF header, PT_NOTE, PT_LOADs, then the note and segment bytes; optional maps trailer. */
static void write_core(const char *dir, const char *name, const struct core_arch *a,
		       const struct buf *notes, const struct load *loads, size_t n_loads,
		       const char *maps)
{
	struct buf b = {0};
	Elf64_Ehdr eh = {0};
	size_t phnum = 1 + n_loads, off;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_CORE;
	eh.e_machine = a->machine;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)phnum;
	put(&b, &eh, sizeof(eh));

	off = sizeof(eh) + phnum * sizeof(Elf64_Phdr);
	{
		Elf64_Phdr ph = {
		    .p_type = PT_NOTE, .p_offset = off, .p_filesz = notes->len, .p_align = 4};
		put(&b, &ph, sizeof(ph));
		off += notes->len;
	}
	for (size_t i = 0; i < n_loads; i++) {
		Elf64_Phdr ph = {.p_type = PT_LOAD,
				 .p_flags = loads[i].flags,
				 .p_offset = off,
				 .p_vaddr = loads[i].vaddr,
				 .p_filesz = loads[i].filesz,
				 .p_memsz = loads[i].memsz,
				 .p_align = 4096};
		put(&b, &ph, sizeof(ph));
		off += loads[i].filesz;
	}
	put(&b, notes->p, notes->len);
	for (size_t i = 0; i < n_loads; i++)
		put(&b, loads[i].data, loads[i].filesz);
	if (maps) {
		put(&b, maps, strlen(maps));
		put_u16(&b, (uint16_t)strlen(maps));
	}
	write_file(dir, name, b.p, b.len);
	free(b.p);
}

static void make_core(const char *dir, const char *name, const struct core_arch *a, bool nt_file,
		      const char *maps)
{
	const uint64_t code = 0x400000, stack_va = 0x7ffd00000000ull, vdso = 0x7ffd10000000ull;
	static uint8_t stack[4096], text[256];
	struct buf notes = {0}, d = {0};
	uint64_t fp;
	struct load loads[4];

	memset(stack, 0, sizeof(stack));
	memset(text, 0xcc, sizeof(text));
	fp_chain(stack, sizeof(stack), stack_va, code, 5, &fp);
	prstatus(&notes, a, 4242, 11, code + 0x10, stack_va, fp, code + 0x84);
	prstatus(&notes, a, 4243, 0, code + 0x20, stack_va + 0x800, 0, 0);

	{
		uint8_t ps[136] = {0};
		uint32_t pid = 4242;

		memcpy(ps + 24, &pid, 4);
		memcpy(ps + 40, "seedprog", 8);
		memcpy(ps + 56, "seedprog --flag\x01", 16); /* a control character to scrub */
		note(&notes, "CORE", NT_PRPSINFO, ps, sizeof(ps));
	}
	{
		const uint64_t auxv[] = {AT_PHDR,     code + 64,       AT_PAGESZ, 4096,	   AT_ENTRY,
					 code + 0x10, AT_SYSINFO_EHDR, vdso,	  AT_NULL, 0};

		note(&notes, "CORE", NT_AUXV, auxv, sizeof(auxv));
	}
	if (nt_file) {
		static const char *const names[] = {"/usr/bin/seedprog", "/usr/lib/libc.so.6",
						    "/usr/lib/libc.so.6"};
		const uint64_t ranges[][3] = {{code, code + 0x2000, 0},
					      {0x7f0000000000ull, 0x7f0000020000ull, 0},
					      {0x7f0000020000ull, 0x7f0000030000ull, 0x20}};

		put_u64(&d, 3);
		put_u64(&d, 4096);
		for (size_t i = 0; i < 3; i++)
			for (size_t k = 0; k < 3; k++)
				put_u64(&d, ranges[i][k]);
		for (size_t i = 0; i < 3; i++)
			put(&d, names[i], strlen(names[i]) + 1);
		note(&notes, "CORE", NT_FILE, d.p, d.len);
	}
	/* A note in another namespace with a type number CORE uses: must be ignored. */
	note(&notes, "LINUX", NT_PRSTATUS, "xxxx", 4);

	loads[0] = (struct load){code, 0x2000, text, sizeof(text), PF_R | PF_X}; /* partly dumped */
	loads[1] = (struct load){stack_va, sizeof(stack), stack, sizeof(stack), PF_R | PF_W};
	loads[2] = (struct load){0x7f0000000000ull, 0x20000, NULL, 0, PF_R | PF_X}; /* not dumped */
	loads[3] = (struct load){vdso, 0x100, text, 0x100, PF_R | PF_X};
	write_core(dir, name, a, &notes, loads, 4, maps);
	free(notes.p);
	free(d.p);
}

static int cmd_cores(const char *dir)
{
	static const char maps[] =
	    "00400000-00402000 r-xp 00000000 08:01 1234 /usr/bin/seedprog\n"
	    "7f0000000000-7f0000020000 r-xp 00000000 08:01 99 /usr/lib/libc.so.6\n"
	    "7f0000020000-7f0000030000 rw-p 00020000 08:01 99 /usr/lib/libc.so.6\n"
	    "7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 [stack]\n"
	    "7ffd10000000-7ffd10001000 r-xp 00000000 00:00 0 [vdso]\n";

	make_core(dir, "x86_64-nt-file", &x86_64, true, NULL);
	make_core(dir, "x86_64-nt-file-and-maps", &x86_64, true, maps);
	make_core(dir, "aarch64-nt-file", &aarch64, true, NULL);
	make_core(dir, "aarch64-qemu-style-maps", &aarch64, false, maps);
	return 0;
}

/* ---- synthetic unwind inputs -------------------------------------------------------------- */

static void unwind_seed(const char *dir, const char *name, uint8_t machine, uint8_t flags)
{
	struct fuzz_unwind_header h = {0};
	uint8_t stack[1024] = {0};
	struct buf b = {0};
	uint64_t fp;

	h.machine = machine;
	h.flags = flags;
	h.max_frames = 63;
	h.lib_base = 0x7f0000000000ull;
	h.anon_lo = 0x400000;
	h.anon_hi = 0x500000;
	h.sp = h.stack_start = 0x7ffc00000000ull;
	fp_chain(stack, sizeof(stack), h.sp, 0x400000, 8, &fp);
	h.fp = fp;
	h.pc = 0x400010;
	h.lr = machine ? 0x400084 : 0;
	put(&b, &h, sizeof(h));
	put(&b, stack, sizeof(stack));
	write_file(dir, name, b.p, b.len);
	free(b.p);
}

static int cmd_unwind(const char *dir)
{
	unwind_seed(dir, "fp-x86_64", 0, 0);
	unwind_seed(dir, "fp-aarch64", 1, 0);
	unwind_seed(dir, "fp-x86_64-no-find-module", 0, FUZZ_UNWIND_NO_FIND_MODULE);
	return 0;
}

/* ---- perf.data ---------------------------------------------------------------------------- */

/* perf_event_attr.sample_type bits and record types (linux/perf_event.h). */
enum {
	PS_IP = 1 << 0,
	PS_TID = 1 << 1,
	PS_TIME = 1 << 2,
	PS_ADDR = 1 << 3,
	PS_READ = 1 << 4,
	PS_CALLCHAIN = 1 << 5,
	PS_ID = 1 << 6,
	PS_CPU = 1 << 7,
	PS_PERIOD = 1 << 8,
	PS_STREAM_ID = 1 << 9,
	PS_RAW = 1 << 10,
	PS_BRANCH_STACK = 1 << 11,
	PS_REGS_USER = 1 << 12,
	PS_STACK_USER = 1 << 13,
	PS_IDENTIFIER = 1 << 16,
};
enum {
	PR_MMAP = 1,
	PR_LOST = 2,
	PR_COMM = 3,
	PR_EXIT = 4,
	PR_FORK = 7,
	PR_SAMPLE = 9,
	PR_MMAP2 = 10,
	PR_LOST_SAMPLES = 13,
	PR_FINISHED_ROUND = 68,
};
#define PA_FREQ (1ull << 10)
#define PA_SAMPLE_ID_ALL (1ull << 18)
#define PRF_ID (1ull << 2)
#define PRF_GROUP (1ull << 3)
#define PMISC_KERNEL 1
#define PMISC_USER 2
#define PMISC_COMM_EXEC (1u << 13)
#define PMISC_MMAP_BUILD_ID (1u << 14)
#define PMISC_BUILD_ID_SIZE (1u << 15)
#define PCTX_KERNEL ((uint64_t)-128)
#define PCTX_USER ((uint64_t)-512)
#define PATTR_SIZE 128 /* perf_event_attr, version 8 */

struct pd_cfg {
	const char *name;
	bool aarch64;
	unsigned n_attrs;   /* 1 or 2 (then samples carry PERF_SAMPLE_IDENTIFIER) */
	uint64_t extra;	    /* more sample_type bits (READ group, ADDR, RAW, BRANCH_STACK ...) */
	bool freq;	    /* sample_freq instead of sample_period */
	bool no_features;   /* and data_size 0: a file perf did not finish */
	unsigned stack_len; /* sample_stack_user */
};

struct pd_ctx {
	const struct pd_cfg *cfg;
	uint64_t st;	    /* sample_type of every attribute */
	uint64_t regs_mask; /* sample_regs_user */
	unsigned n_regs;
	int pc, sp, fp, lr; /* perf register numbers */
	uint32_t pid;
};

static void pd_trailer(struct buf *b, const struct pd_ctx *c, uint32_t tid, uint64_t time)
{
	put_u32(b, c->pid);
	put_u32(b, tid);
	put_u64(b, time);
	if (c->st & PS_ID)
		put_u64(b, 1001);
	if (c->st & PS_STREAM_ID)
		put_u64(b, 1001);
	put_u32(b, 1); /* cpu */
	put_u32(b, 0);
	if (c->st & PS_IDENTIFIER)
		put_u64(b, 1001);
}

/* An event: header, then body (already in `body`), padded to 8 bytes. */
static void pd_event(struct buf *out, uint32_t type, uint16_t misc, const struct buf *body)
{
	size_t pad = (8 - (body->len % 8)) % 8;

	put_u32(out, type);
	put_u16(out, misc);
	put_u16(out, (uint16_t)(8 + body->len + pad));
	put(out, body->p, body->len);
	put_zeros(out, pad);
}

static void pd_string(struct buf *b, const char *s)
{
	size_t n = strlen(s) + 1;

	put(b, s, n);
	put_zeros(b, (8 - n % 8) % 8);
}

static void pd_comm(struct buf *out, const struct pd_ctx *c, const char *comm, bool exec,
		    uint64_t time)
{
	struct buf b = {0};

	put_u32(&b, c->pid);
	put_u32(&b, c->pid);
	pd_string(&b, comm);
	pd_trailer(&b, c, c->pid, time);
	pd_event(out, PR_COMM, exec ? PMISC_COMM_EXEC : 0, &b);
	free(b.p);
}

static void pd_mmap2(struct buf *out, const struct pd_ctx *c, uint64_t addr, uint64_t len,
		     uint64_t pgoff, uint32_t prot, const char *path, const uint8_t *build_id,
		     uint64_t time)
{
	struct buf b = {0};

	put_u32(&b, c->pid);
	put_u32(&b, c->pid);
	put_u64(&b, addr);
	put_u64(&b, len);
	put_u64(&b, pgoff);
	if (build_id) {
		uint8_t id[24] = {20};

		memcpy(id + 4, build_id, 20);
		put(&b, id, sizeof(id));
	} else {
		put_u32(&b, 254); /* maj */
		put_u32(&b, 1);	  /* min */
		put_u64(&b, 123456);
		put_u64(&b, 0);
	}
	put_u32(&b, prot);
	put_u32(&b, 2); /* MAP_PRIVATE */
	pd_string(&b, path);
	pd_trailer(&b, c, c->pid, time);
	pd_event(out, PR_MMAP2, PMISC_USER | (build_id ? PMISC_MMAP_BUILD_ID : 0), &b);
	free(b.p);
}

static void pd_mmap(struct buf *out, const struct pd_ctx *c, uint64_t addr, uint64_t len,
		    const char *path, uint64_t time)
{
	struct buf b = {0};

	put_u32(&b, c->pid);
	put_u32(&b, c->pid);
	put_u64(&b, addr);
	put_u64(&b, len);
	put_u64(&b, 0);
	pd_string(&b, path);
	pd_trailer(&b, c, c->pid, time);
	pd_event(out, PR_MMAP, PMISC_USER, &b);
	free(b.p);
}

static void pd_task(struct buf *out, const struct pd_ctx *c, uint32_t type, uint32_t pid,
		    uint32_t ppid, uint64_t time)
{
	struct buf b = {0};

	put_u32(&b, pid);
	put_u32(&b, ppid);
	put_u32(&b, pid);
	put_u32(&b, ppid);
	put_u64(&b, time);
	pd_trailer(&b, c, pid, time);
	pd_event(out, type, 0, &b);
	free(b.p);
}

static void pd_sample(struct buf *out, const struct pd_ctx *c, uint16_t cpumode, uint64_t time,
		      uint64_t code, unsigned depth)
{
	const uint64_t sp = 0x7ffc00001000ull;
	uint8_t stack[4096] = {0};
	struct buf b = {0};
	uint64_t fp, regs[64] = {0};
	size_t stack_len = c->cfg->stack_len < sizeof(stack) ? c->cfg->stack_len : sizeof(stack);

	fp_chain(stack, stack_len, sp, code, depth, &fp);
	if (c->st & PS_IDENTIFIER)
		put_u64(&b, 1001);
	put_u64(&b, code + 0x10); /* ip */
	put_u32(&b, c->pid);
	put_u32(&b, c->pid);
	put_u64(&b, time);
	if (c->st & PS_ADDR)
		put_u64(&b, 0xdead0000);
	if (c->st & PS_ID)
		put_u64(&b, 1001);
	if (c->st & PS_STREAM_ID)
		put_u64(&b, 1001);
	put_u32(&b, 1); /* cpu */
	put_u32(&b, 0);
	put_u64(&b, 100000);   /* period */
	if (c->st & PS_READ) { /* group of 2 with ids */
		put_u64(&b, 2);
		put_u64(&b, 10);
		put_u64(&b, 1001);
		put_u64(&b, 20);
		put_u64(&b, 1002);
	}
	/* callchain: kernel frames, then user frames. */
	put_u64(&b, 6);
	put_u64(&b, PCTX_KERNEL);
	put_u64(&b, 0xffffffff81001234ull);
	put_u64(&b, 0xffffffff81005678ull);
	put_u64(&b, PCTX_USER);
	put_u64(&b, code + 0x10);
	put_u64(&b, code + 0x44);
	if (c->st & PS_RAW) {
		put_u32(&b, 4);
		put_u32(&b, 0xabcdef);
	}
	if (c->st & PS_BRANCH_STACK) {
		put_u64(&b, 1);
		put_u64(&b, code);
		put_u64(&b, code + 0x40);
		put_u64(&b, 0);
	}
	/* user registers in mask order */
	regs[c->pc] = code + 0x10;
	regs[c->sp] = sp;
	regs[c->fp] = fp;
	if (c->lr >= 0)
		regs[c->lr] = code + 0x84;
	put_u64(&b, 2); /* PERF_SAMPLE_REGS_ABI_64 */
	for (int r = 0; r < 64; r++)
		if (c->regs_mask & (1ull << r))
			put_u64(&b, regs[r]);
	put_u64(&b, stack_len);
	put(&b, stack, stack_len);
	put_u64(&b, stack_len / 2); /* dyn_size: what was really copied */
	pd_event(out, PR_SAMPLE, cpumode, &b);
	free(b.p);
}

static void make_perfdata(const char *dir, const struct pd_cfg *cfg)
{
	static const uint8_t exe_id[20] = {0x5e, 0xed, 1,  2,  3,  4,  5,  6,  7,  8,
					   9,	 10,   11, 12, 13, 14, 15, 16, 17, 18};
	const uint64_t code = 0x555555554000ull;
	struct pd_ctx c = {.cfg = cfg, .pid = 4242};
	struct buf f = {0}, data = {0}, feat = {0}, bid = {0};
	uint64_t attrs_off = 104, attr_sz = PATTR_SIZE + 16, ids_off, data_off, feat_off;
	const char *arch = cfg->aarch64 ? "aarch64" : "x86_64";

	if (cfg->aarch64) {
		c.regs_mask = (1ull << 29) | (1ull << 30) | (1ull << 31) | (1ull << 32);
		c.pc = 32, c.sp = 31, c.fp = 29, c.lr = 30;
	} else {
		c.regs_mask = (1ull << 6) | (1ull << 7) | (1ull << 8) | (1ull << 0);
		c.pc = 8, c.sp = 7, c.fp = 6, c.lr = -1;
	}
	c.st = PS_IP | PS_TID | PS_TIME | PS_CPU | PS_PERIOD | PS_CALLCHAIN | PS_REGS_USER |
	       PS_STACK_USER | cfg->extra;
	if (cfg->n_attrs > 1)
		c.st |= PS_IDENTIFIER;

	/* Data: out of time order on purpose (the reader sorts), every event kind. */
	pd_comm(&data, &c, "seedprog", true, 100);
	pd_mmap2(&data, &c, code, 0x2000, 0, 5, "/usr/bin/seedprog", NULL, 110);
	pd_mmap2(&data, &c, code + 0x2000, 0x1000, 0x2000, 1, "/usr/bin/seedprog", NULL, 111);
	pd_mmap2(&data, &c, 0x7f0000000000ull, 0x20000, 0, 5, "/usr/lib/libc.so.6", exe_id, 120);
	pd_mmap(&data, &c, 0x7f0000100000ull, 0x1000, "//anon", 121);
	pd_mmap(&data, &c, 0x7f0000200000ull, 0x1000, "/tmp/gone.so (deleted)", 122);
	pd_sample(&data, &c, PMISC_USER, 300, code, 6);
	pd_sample(&data, &c, PMISC_KERNEL, 200, code, 3);
	{
		struct buf b = {0}; /* FINISHED_ROUND: no body, skipped */

		pd_event(&data, PR_FINISHED_ROUND, 0, &b);
	}
	pd_task(&data, &c, PR_FORK, c.pid + 1, c.pid, 400);
	{
		struct buf b = {0};

		put_u64(&b, 1001);
		put_u64(&b, 3);
		pd_trailer(&b, &c, c.pid, 410);
		pd_event(&data, PR_LOST, 0, &b);
		free(b.p);
		b = (struct buf){0};
		put_u64(&b, 2);
		pd_trailer(&b, &c, c.pid, 420);
		pd_event(&data, PR_LOST_SAMPLES, 0, &b);
		free(b.p);
	}
	c.pid++;
	pd_sample(&data, &c, PMISC_USER, 500, code, 2);
	pd_task(&data, &c, PR_EXIT, c.pid, c.pid - 1, 600);

	/* Features: HEADER_BUILD_ID (bit 2), HEADER_ARCH (bit 6), in bit order. */
	{
		uint8_t id[24] = {0};

		memcpy(id, exe_id, 20);
		id[20] = 20;
		put_u32(&bid, 67); /* PERF_RECORD_HEADER_BUILD_ID */
		put_u16(&bid, PMISC_BUILD_ID_SIZE | PMISC_USER);
		put_u16(&bid, 8 + 4 + 24 + 24);
		put_u32(&bid, 4242);
		put(&bid, id, sizeof(id));
		put(&bid, "/usr/bin/seedprog\0\0\0\0\0\0", 24);
	}
	put_u32(&feat, 64);
	put(&feat, arch, strlen(arch));
	put_zeros(&feat, 64 - strlen(arch));

	ids_off = attrs_off + attr_sz * cfg->n_attrs;
	data_off = ids_off + 8 * cfg->n_attrs;
	feat_off = data_off + data.len;

	/* File header. */
	put(&f, "PERFILE2", 8);
	put_u64(&f, 104);
	put_u64(&f, attr_sz);
	put_u64(&f, attrs_off);
	put_u64(&f, attr_sz * cfg->n_attrs);
	put_u64(&f, data_off);
	put_u64(&f, cfg->no_features ? 0 : data.len);
	put_u64(&f, 0); /* event_types */
	put_u64(&f, 0);
	put_u64(&f, cfg->no_features ? 0 : (1ull << 2) | (1ull << 6));
	put_zeros(&f, 24);
	/* Attributes, each followed by its id section. */
	for (unsigned i = 0; i < cfg->n_attrs; i++) {
		uint8_t a[PATTR_SIZE] = {0};
		uint32_t type = 1, size = PATTR_SIZE; /* PERF_TYPE_SOFTWARE, cpu-clock */
		uint64_t period = cfg->freq ? 99 : 100000, st = c.st, rf = 0,
			 flags = PA_SAMPLE_ID_ALL;
		uint32_t stack = cfg->stack_len;

		if (cfg->freq)
			flags |= PA_FREQ;
		if (cfg->extra & PS_READ)
			rf = PRF_ID | PRF_GROUP;
		memcpy(a, &type, 4);
		memcpy(a + 4, &size, 4);
		memcpy(a + 16, &period, 8);
		memcpy(a + 24, &st, 8);
		memcpy(a + 32, &rf, 8);
		memcpy(a + 40, &flags, 8);
		memcpy(a + 80, &c.regs_mask, 8);
		memcpy(a + 88, &stack, 4);
		put(&f, a, sizeof(a));
		put_u64(&f, ids_off + 8 * i);
		put_u64(&f, 8);
	}
	for (unsigned i = 0; i < cfg->n_attrs; i++)
		put_u64(&f, 1001 + i);
	put(&f, data.p, data.len);
	if (!cfg->no_features) {
		uint64_t sec = feat_off + 2 * 16;

		put_u64(&f, sec);
		put_u64(&f, bid.len);
		put_u64(&f, sec + bid.len);
		put_u64(&f, feat.len);
		put(&f, bid.p, bid.len);
		put(&f, feat.p, feat.len);
	}
	write_file(dir, cfg->name, f.p, f.len);
	free(f.p);
	free(data.p);
	free(feat.p);
	free(bid.p);
}

static int cmd_perfdata(const char *dir)
{
	static const struct pd_cfg cfgs[] = {
	    {"synthetic-x86_64", false, 1, 0, false, false, 512},
	    {"synthetic-aarch64", true, 1, 0, true, false, 512},
	    {"synthetic-two-attrs", false, 2, 0, false, false, 256},
	    {"synthetic-all-fields", false, 1,
	     PS_ADDR | PS_READ | PS_ID | PS_STREAM_ID | PS_RAW | PS_BRANCH_STACK, false, false,
	     128},
	    {"synthetic-unfinished", false, 1, 0, false, true, 256},
	};

	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
		make_perfdata(dir, &cfgs[i]);
	return 0;
}

/* ---- kallsyms ----------------------------------------------------------------------------- */

static int cmd_kallsyms(const char *dir)
{
	static const char text[] = "ffffffff81000000 T _text\n"
				   "ffffffff81000000 T startup_64\n"
				   "ffffffff81000040 t secondary_startup_64\n"
				   "ffffffff81000100 W weak_function\n"
				   "ffffffff81000100 w weak_local\n"
				   "ffffffff81000200 D some_data\n"
				   "ffffffff81000300 T do_syscall_64\n"
				   "ffffffffc0000000 t ext4_fill_super\t[ext4]\n"
				   "ffffffffc0000100 T ext4_iget\t[ext4]\n"
				   "ffffffffc0010000 t nf_hook_slow\t[nf_tables]\n"
				   "0000000000000000 A fixed_percpu_data\n";

	write_file(dir, "synthetic", text, sizeof(text) - 1);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "cfi") == 0)
		return cmd_cfi(argv[2], argv[3], argc > 4 ? strtoul(argv[4], NULL, 0) : 8192);
	if (argc == 3 && strcmp(argv[1], "records") == 0)
		return cmd_records(argv[2]);
	if (argc == 3 && strcmp(argv[1], "cores") == 0)
		return cmd_cores(argv[2]);
	if (argc == 3 && strcmp(argv[1], "unwind") == 0)
		return cmd_unwind(argv[2]);
	if (argc == 3 && strcmp(argv[1], "kallsyms") == 0)
		return cmd_kallsyms(argv[2]);
	if (argc == 3 && strcmp(argv[1], "perfdata") == 0)
		return cmd_perfdata(argv[2]);
	fprintf(stderr, "usage: seedgen cfi ELF OUT [MAX] | records DIR | cores DIR | unwind DIR | "
			"kallsyms DIR | perfdata DIR\n");
	return 2;
}
