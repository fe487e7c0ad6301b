// SPDX-License-Identifier: MIT
/*
 * Which processes run CPython, and where its structures are in them. See python.h.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/elf.h"
#include "common/macro.h"
#include "pipeline/proc.h"
#include "pipeline/python/python.h"

#define PY_PROC_BUCKETS 1024
#define PY_DEBUG_OFFSETS_READ 1024 /* bytes of _PyRuntime read for _Py_DebugOffsets */

struct py_binary_entry {
	uint64_t dev, ino;
	int result; /* py_binary_inspect()'s */
	struct py_binary bin;
};

struct py_proc_entry {
	struct py_proc_entry *next;
	struct py_proc proc;
	const struct proc *seen;  /* the maps this was decided from ... */
	unsigned seen_refresh;    /* ... and their generation */
	int result;               /* 1 python, 0 not, < 0 unsupported */
};

struct py_procs {
	struct py_proc_entry *buckets[PY_PROC_BUCKETS];
	size_t n_procs;
	struct py_binary_entry binaries[PY_MAX_BINARIES];
	size_t n_binaries;
};

int py_read_process(void *userdata, uint64_t addr, void *buf, size_t len)
{
	pid_t pid = (pid_t)(uintptr_t)userdata;
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n;

	if (len == 0)
		return 0;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* Read `len` bytes of the file at ELF virtual address `vaddr` (from a PT_LOAD's file part). */
static int elf_read_vaddr(Elf *elf, int fd, uint64_t vaddr, void *buf, size_t len)
{
	size_t n;

	if (elf_getphdrnum(elf, &n) != 0)
		return -EBADMSG;
	for (size_t i = 0; i < n && i < 256; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr > ph.p_filesz ||
		    len > ph.p_filesz - (vaddr - ph.p_vaddr))
			continue;
		if (pread(fd, buf, len, (off_t)(ph.p_offset + (vaddr - ph.p_vaddr))) != (ssize_t)len)
			return -EIO;
		return 0;
	}
	return -ENOENT;
}

int py_binary_inspect(int fd, struct py_binary *ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	struct py_binary b = {};
	uint64_t version_addr = 0;
	bool have_runtime = false, have_version = false;
	Elf_Scn *scn = NULL;
	int r;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	elf = elf_begin_fd(fd);
	if (!elf || elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) != ELFCLASS64)
		return 0;
	/* .dynsym first: what the interpreter exports is all this needs (and all a stripped one has). */
	for (int pass = 0; pass < 2; pass++) {
		scn = NULL;
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			Elf_Data *d;
			size_t count;

			if (!gelf_getshdr(scn, &sh) ||
			    sh.sh_type != (pass == 0 ? SHT_DYNSYM : SHT_SYMTAB) || sh.sh_entsize == 0)
				continue;
			d = elf_getdata(scn, NULL);
			if (!d)
				continue;
			count = MIN(d->d_size / sh.sh_entsize, (size_t)1 << 22);
			for (size_t i = 0; i < count; i++) {
				GElf_Sym sym;
				const char *name;

				if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
				    sym.st_value == 0)
					continue;
				name = elf_strptr(elf, sh.sh_link, sym.st_name);
				if (!name || (name[0] != '_' && name[0] != 'P'))
					continue;
				if (!strcmp(name, "_PyRuntime")) {
					b.runtime = sym.st_value;
					have_runtime = true;
				} else if (!strcmp(name, "Py_Version")) {
					version_addr = sym.st_value;
					have_version = true;
				} else if (!strcmp(name, "PyCode_Type")) {
					b.code_type = sym.st_value;
				} else if (!strcmp(name, "_PyEval_EvalFrameDefault") && sym.st_size) {
					b.eval_start = sym.st_value;
					b.eval_end = sym.st_value + sym.st_size;
				}
			}
		}
		if (have_runtime && have_version && b.eval_start)
			break;
	}
	if (!have_runtime || !have_version)
		return 0; /* not CPython, or one older than 3.11 (no Py_Version) */
	{
		size_t n;
		bool found = false;

		if (elf_getphdrnum(elf, &n) != 0)
			return -EBADMSG;
		for (size_t i = 0; i < n && i < 256 && !found; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    (ph.p_flags & PF_X) && b.eval_start >= ph.p_vaddr &&
			    b.eval_start - ph.p_vaddr < ph.p_filesz) {
				b.exec_vaddr = ph.p_vaddr;
				b.exec_offset = ph.p_offset;
				b.exec_filesz = ph.p_filesz;
				found = true;
			}
		}
		if (!found)
			return b.eval_start ? -EBADMSG : -EOPNOTSUPP;
	}
	{
		uint32_t v;

		r = elf_read_vaddr(elf, fd, version_addr, &v, sizeof(v));
		if (r < 0)
			return r;
		b.version_hex = v; /* little-endian on every target profd supports */
	}
	if ((b.version_hex >> 24) != 3 || ((b.version_hex >> 16) & 0xff) < 11)
		return -EOPNOTSUPP;
	if (!b.eval_start)
		return -EOPNOTSUPP; /* without it, Python frames cannot be placed in native stacks */
	if (((b.version_hex >> 16) & 0xff) >= 13) {
		uint8_t buf[PY_DEBUG_OFFSETS_READ];

		r = elf_read_vaddr(elf, fd, b.runtime, buf, sizeof(buf));
		if (r < 0)
			return r == -ENOENT ? -EOPNOTSUPP : r;
		r = py_layout_from_debug_offsets(buf, sizeof(buf), &b.layout);
	} else {
		r = py_layout_from_version(b.version_hex, &b.layout);
	}
	if (r < 0)
		return r;
	*ret = b;
	return 1;
}

int py_procs_new(struct py_procs **ret)
{
	struct py_procs *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

static void entry_free(struct py_proc_entry *e)
{
	if (!e)
		return;
	py_code_cache_free(e->proc.codes);
	free(e);
}

void py_procs_free(struct py_procs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < PY_PROC_BUCKETS; i++)
		while (t->buckets[i]) {
			struct py_proc_entry *e = t->buckets[i];

			t->buckets[i] = e->next;
			entry_free(e);
		}
	free(t);
}

static struct py_proc_entry **bucket(struct py_procs *t, uint32_t pid)
{
	return &t->buckets[(pid * 2654435761u) % PY_PROC_BUCKETS];
}

void py_procs_forget(struct py_procs *t, uint32_t pid)
{
	for (struct py_proc_entry **pe = bucket(t, pid); *pe; pe = &(*pe)->next)
		if ((*pe)->proc.pid == pid) {
			struct py_proc_entry *e = *pe;

			*pe = e->next;
			entry_free(e);
			t->n_procs--;
			return;
		}
}

static const char *basename_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

bool py_maybe_interpreter(const char *path)
{
	return strstr(basename_of(path), "python") != NULL;
}

/* The binary's inspection, remembered by file identity. */
static int binary_lookup(struct py_procs *t, const struct dso *d, const struct py_binary **ret)
{
	struct py_binary_entry *e;

	for (size_t i = 0; i < t->n_binaries; i++)
		if (t->binaries[i].dev == d->dev && t->binaries[i].ino == d->ino) {
			*ret = &t->binaries[i].bin;
			return t->binaries[i].result;
		}
	if (t->n_binaries == PY_MAX_BINARIES)
		t->n_binaries = 0; /* start over: the table only saves re-reading files */
	e = &t->binaries[t->n_binaries++];
	*e = (struct py_binary_entry){.dev = d->dev, .ino = d->ino};
	e->result = py_binary_inspect(d->fd, &e->bin);
	*ret = &e->bin;
	return e->result;
}

/*
 * The load bias of binary b as mapped by `m` (process address = file address + bias): m maps
 * file offsets of b's executable PT_LOAD, whose file offset and address differ by
 * exec_vaddr - exec_offset.
 */
static bool load_bias(const struct mapping *m, const struct py_binary *b, uint64_t *ret)
{
	if (m->pgoff < (b->exec_offset & ~4095ull) || m->pgoff >= b->exec_offset + b->exec_filesz)
		return false;
	*ret = m->start - m->pgoff - (b->exec_vaddr - b->exec_offset);
	return true;
}

static int detect(const struct proc *p, struct py_procs *t, struct py_proc *ret)
{
	int result = 0;

	for (size_t i = 0; i < p->n_maps; i++) {
		const struct mapping *m = &p->maps[i];
		const struct py_binary *b;
		uint64_t bias;
		int r;

		if (!m->dso || !m->dso->is_elf || m->dso->fd < 0 || !m->name ||
		    !py_maybe_interpreter(m->name) || !(m->prot & PROT_EXEC))
			continue;
		r = binary_lookup(t, m->dso, &b);
		if (r == 0)
			continue;
		if (r < 0) {
			result = r;
			continue;
		}
		if (!load_bias(m, b, &bias))
			continue;
		*ret = (struct py_proc){
			.pid = (uint32_t)p->pid,
			.layout = b->layout,
			.runtime = b->runtime + bias,
			.code_type = b->code_type ? b->code_type + bias : 0,
			.eval_start = b->eval_start + bias,
			.eval_end = b->eval_end + bias,
		};
		return 1;
	}
	return result;
}

int py_procs_get(struct py_procs *t, const struct proc *p, struct py_proc **ret,
		 bool *ret_unsupported)
{
	struct py_proc_entry **pe = bucket(t, (uint32_t)p->pid), *e;
	struct py_proc found;
	int r;

	*ret_unsupported = false;
	for (e = *pe; e; e = e->next)
		if (e->proc.pid == (uint32_t)p->pid)
			break;
	if (e && e->seen == p && e->seen_refresh == p->n_refresh)
		goto done;
	if (!e) {
		if (t->n_procs >= PY_MAX_PROCS)
			return 0;
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->next = *pe;
		*pe = e;
		t->n_procs++;
	}
	r = detect(p, t, &found);
	if (r > 0 && e->result > 0 && e->proc.runtime == found.runtime &&
	    e->proc.layout.version_hex == found.layout.version_hex) {
		/* The same interpreter, its maps just re-read: keep the code objects learnt. */
		found.codes = e->proc.codes;
	} else {
		py_code_cache_free(e->proc.codes);
		found.codes = NULL;
		if (r > 0) {
			int rc = py_code_cache_new(&found.codes);

			if (rc < 0)
				r = rc;
		}
	}
	if (r <= 0)
		found = (struct py_proc){.pid = (uint32_t)p->pid};
	e->proc = found;
	e->seen = p;
	e->seen_refresh = p->n_refresh;
	e->result = r > 0 ? 1 : r;
done:
	if (e->result < 0)
		*ret_unsupported = true;
	if (e->result <= 0)
		return 0;
	*ret = &e->proc;
	return 1;
}
