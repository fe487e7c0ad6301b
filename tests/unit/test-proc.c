// SPDX-License-Identifier: MIT
/* Process table and maps parsing (aggregate and session tests: test-aggregate.c, test-session.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "pipeline/aggregate.h"
#include "pipeline/proc.h"
#include "pipeline/session.h"

static struct maps_entry parse(const char *text, int *ret)
{
	static char line[PROC_MAPS_LINE_MAX];
	struct maps_entry e = {};

	snprintf(line, sizeof(line), "%s", text);
	*ret = proc_maps_parse_line(line, &e);
	return e;
}

Test(maps, file_mapping)
{
	int r;
	struct maps_entry e = parse("7f1c2a000000-7f1c2a195000 r-xp 00028000 08:01 1835245    "
				    "               /usr/lib/x86_64-linux-gnu/libc.so.6\n",
				    &r);

	cr_assert_eq(r, 0);
	cr_assert_eq(e.start, 0x7f1c2a000000ull);
	cr_assert_eq(e.end, 0x7f1c2a195000ull);
	cr_assert_eq(e.pgoff, 0x28000);
	cr_assert_eq(e.dev_major, 8);
	cr_assert_eq(e.dev_minor, 1);
	cr_assert_eq(e.ino, 1835245);
	cr_assert_eq(e.prot, PROT_READ | PROT_EXEC);
	cr_assert_not(e.shared);
	cr_assert_not(e.deleted);
	cr_assert_str_eq(e.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
}

Test(maps, deleted_and_spaces)
{
	int r;
	struct maps_entry e = parse("55d0c0a00000-55d0c0a01000 r-xs 00001000 fd:02 42 "
				    "/tmp/my dir/old binary (deleted)",
				    &r);

	cr_assert_eq(r, 0);
	cr_assert(e.deleted);
	cr_assert(e.shared);
	cr_assert_str_eq(e.path, "/tmp/my dir/old binary");
}

Test(maps, anonymous_and_special)
{
	int r;
	struct maps_entry e = parse("7ffd1c5f0000-7ffd1c611000 rw-p 00000000 00:00 0", &r);

	cr_assert_eq(r, 0);
	cr_assert_null(e.path);
	cr_assert_eq(e.prot, PROT_READ | PROT_WRITE);

	e = parse("7ffd1c7fc000-7ffd1c7fe000 r-xp 00000000 00:00 0                          [vdso]",
		  &r);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(e.path, "[vdso]");
	cr_assert_eq(e.prot, PROT_READ | PROT_EXEC);

	e = parse("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]", &r);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(e.path, "[vsyscall]");
}

Test(maps, junk_rejected)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"7000-6000 r-xp 00000000 00:00 0",          /* end before start */
		"7000-8000 r-x 00000000 00:00 0",           /* short perms */
		"7000-8000 r-xp zz 00:00 0",                /* bad offset */
		"7000-8000 r-xp 0 0800 0",                  /* bad dev */
		"7000-8000 r-xp 0 08:00 x",                 /* bad inode */
		"11111111111111111-8000 r-xp 0 08:00 1 /x", /* address too long */
	};
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i], &r);
		cr_assert_eq(r, -EINVAL, "accepted: '%s'", bad[i]);
	}
}

Test(proc, self_mappings)
{
	struct proc_table *t;
	struct proc *p;
	const struct mapping *m;
	uint64_t here = (uint64_t)(uintptr_t)&proc_maps_parse_line;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	cr_assert_gt(p->n_maps, 2);
	for (size_t i = 1; i < p->n_maps; i++)
		cr_assert_geq(p->maps[i].start, p->maps[i - 1].end, "maps not sorted");

	m = proc_find_mapping(t, p, here);
	cr_assert_not_null(m, "our own code is not in any mapping");
	cr_assert_eq(m->kind, MAPPING_FILE);
	cr_assert(m->is_exe);
	cr_assert_not_null(m->dso);
	cr_assert_geq(m->dso->fd, 0);
	cr_assert(m->dso->is_elf);
	cr_assert_eq(m->dso->e_machine, 62 /* EM_X86_64 */);
	cr_assert_gt(m->dso->build_id_len, 0, "the test binary has a GNU build-id note");
	cr_assert_eq(strlen(m->dso->build_id_hex), m->dso->build_id_len * 2);

	/* libc is mapped and shares one dso between all of its executable mappings. */
	/* (getpid, not memcpy: sanitizers interpose memcpy from their own library.) */
	m = proc_find_mapping(t, p, (uint64_t)(uintptr_t)&getpid);
	cr_assert_not_null(m);
	cr_assert(strstr(m->name, "libc") != NULL, "%s", m->name);
	cr_assert_not(m->is_exe);

	/* The vdso is readable through a memfd copy. */
	for (size_t i = 0; i < p->n_maps; i++)
		if (p->maps[i].kind == MAPPING_VDSO) {
			cr_assert_not_null(p->maps[i].dso);
			cr_assert(p->maps[i].dso->is_elf);
		}

	cr_assert_eq(proc_table_n_procs(t), 1);
	proc_table_remove(t, getpid());
	cr_assert_eq(proc_table_n_procs(t), 0);
	proc_table_free(t);
}

Test(proc, missing_process)
{
	struct proc_table *t;
	struct proc *p;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, 0x3ffffff0, &p), -ESRCH);
	proc_table_free(t);
}

Test(proc, new_mapping_found_after_refresh)
{
	struct proc_table *t;
	struct proc *p;
	void *code;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	code = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(code, MAP_FAILED);
	usleep((PROC_REFRESH_MIN_NS / 1000) + 10000);
	const struct mapping *m = proc_find_mapping(t, p, (uint64_t)(uintptr_t)code + 16);
	cr_assert_not_null(m, "a mapping made after the first read was not picked up");
	cr_assert_eq(m->kind, MAPPING_ANON);
	munmap(code, 4096);
	proc_table_free(t);
}

/* ---- opening mapped files inside a process's root ------------------------------------------ */

/*
 * A crafted process root: what a hostile container can put at the paths its maps name.
 * ROOT/etc/passwd and ROOT/etc/shadow exist with known contents, so a symlink resolved inside
 * the root is told apart from one followed out to the host's /etc.
 */
static char croot[64], cproc[96];

static void cpath(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", croot, rel);
}

static void cwrite(const char *rel, const char *text)
{
	char p[256];
	FILE *f;

	cpath(p, sizeof(p), rel);
	f = fopen(p, "we");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	fclose(f);
}

static void clink(const char *target, const char *rel)
{
	char p[256];

	cpath(p, sizeof(p), rel);
	cr_assert_eq(symlink(target, p), 0, "%s: %s", p, strerror(errno));
}

static uint64_t cino(const char *rel)
{
	char p[256];
	struct stat st;

	cpath(p, sizeof(p), rel);
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	return st.st_ino;
}

static void croot_setup(void)
{
	char p[256];
	int fd;

	snprintf(croot, sizeof(croot), "/tmp/profd-root-XXXXXX");
	cr_assert_not_null(mkdtemp(croot));
	cpath(p, sizeof(p), "etc");
	cr_assert_eq(mkdir(p, 0755), 0);
	cpath(p, sizeof(p), "lib");
	cr_assert_eq(mkdir(p, 0755), 0);
	cpath(p, sizeof(p), "lib/dir.so");
	cr_assert_eq(mkdir(p, 0755), 0);
	cwrite("etc/passwd", "inside passwd\n");
	cwrite("etc/shadow", "inside shadow\n");
	cwrite("lib/good.so", "a regular file\n");
	clink("/etc/passwd", "lib/abs.so");
	clink("../../../../../../../../etc/shadow", "lib/dotdot.so");
	clink("loop2.so", "lib/loop1.so");
	clink("loop1.so", "lib/loop2.so");
	clink("/lib", "libdir");                        /* a symlinked directory on the way */
	clink("../../../../../../../..", "lib/up");     /* "the host's /" via .. */
	cpath(p, sizeof(p), "lib/fifo.so");
	cr_assert_eq(mkfifo(p, 0644), 0);
	/* Sparse: one byte over the limit costs no disk. */
	cpath(p, sizeof(p), "lib/huge.so");
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)PROC_MAX_FILE_SIZE + 1), 0);
	close(fd);
	snprintf(cproc, sizeof(cproc), "%s-proc", croot);
}

static void croot_teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", croot, cproc);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", croot);
}

/* Open rel below the crafted root; on success, the content read (static buffer). */
static int copen(const char *path, unsigned flags, const char **ret_text)
{
	static char text[64];
	int rootfd = open(croot, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;
	uint64_t ino = 0;
	ssize_t n;
	struct stat st;

	cr_assert_geq(rootfd, 0);
	fd = proc_open_in_root(rootfd, path, flags, &ino);
	close(rootfd);
	if (fd < 0)
		return fd;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_ino, ino);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_assert_neq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	text[n] = '\0';
	if (ret_text)
		*ret_text = text;
	return 0;
}

/* The kernel's resolver (openat2 RESOLVE_IN_ROOT): every link is resolved inside the root. */
Test(proc_root, symlinks_resolve_inside_the_root, .init = croot_setup, .fini = croot_teardown,
     .timeout = 20)
{
	static const struct {
		const char *path, *text;
	} ok[] = {
		{ "/lib/good.so", "a regular file\n" },
		{ "lib/good.so", "a regular file\n" },
		{ "/lib/abs.so", "inside passwd\n" },           /* absolute link: ROOT/etc/passwd */
		{ "/lib/dotdot.so", "inside shadow\n" },        /* ../../.. stops at the root */
		{ "/libdir/good.so", "a regular file\n" },      /* symlinked directory, inside */
		{ "/lib/up/etc/passwd", "inside passwd\n" },    /* a directory link made of .. */
		{ "/../../../../etc/passwd", "inside passwd\n" }, /* .. in the path itself */
	};
	const char *text;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(copen(ok[i].path, 0, &text), 0, "%s", ok[i].path);
		cr_assert_str_eq(text, ok[i].text, "%s opened a file outside the root", ok[i].path);
	}
	cr_assert_eq(copen("/lib/loop1.so", 0, NULL), -ELOOP);
	cr_assert_eq(copen("/lib/missing.so", 0, NULL), -ENOENT);
	cr_assert_eq(copen("/lib/good.so/x", 0, NULL), -ENOTDIR);
}

/* What is not a binary is refused before it is opened for reading (the FIFO must not block). */
Test(proc_root, only_regular_files_opened, .init = croot_setup, .fini = croot_teardown,
     .timeout = 20)
{
	for (unsigned flags = 0; flags <= PROC_OPEN_NO_OPENAT2; flags += PROC_OPEN_NO_OPENAT2) {
		cr_assert_eq(copen("/lib/fifo.so", flags, NULL), -EINVAL, "flags %u", flags);
		cr_assert_eq(copen("/lib/dir.so", flags, NULL), -EISDIR, "flags %u", flags);
		cr_assert_eq(copen("/", flags, NULL), -EISDIR, "flags %u", flags);
		cr_assert_eq(copen("/lib/huge.so", flags, NULL), -EFBIG, "flags %u", flags);
	}
	cr_assert_eq(proc_open_in_root(-1, "/lib/good.so", 0, NULL), -EINVAL);
}

/* Without openat2: plain files still open, every symlink and ".." is refused, not followed. */
Test(proc_root, without_openat2_symlinks_refused, .init = croot_setup, .fini = croot_teardown,
     .timeout = 20)
{
	static const struct {
		const char *path;
		int err;
	} bad[] = {
		{ "/lib/abs.so", -ELOOP },      { "/lib/dotdot.so", -ELOOP },
		{ "/lib/loop1.so", -ELOOP },    { "/libdir/good.so", -ELOOP },
		{ "/lib/up/etc/passwd", -ELOOP }, { "/../etc/passwd", -EXDEV },
		{ "/lib/../etc/passwd", -EXDEV }, { "/lib/missing.so", -ENOENT },
		{ "/lib/good.so/x", -ENOTDIR },
	};
	const char *text;

	cr_assert_eq(copen("/lib/good.so", PROC_OPEN_NO_OPENAT2, &text), 0);
	cr_assert_str_eq(text, "a regular file\n");
	cr_assert_eq(copen("//lib/./good.so", PROC_OPEN_NO_OPENAT2, &text), 0);
	cr_assert_str_eq(text, "a regular file\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(copen(bad[i].path, PROC_OPEN_NO_OPENAT2, NULL), bad[i].err,
			     "%s: %d, expected %d", bad[i].path,
			     copen(bad[i].path, PROC_OPEN_NO_OPENAT2, NULL), bad[i].err);
}

/*
 * Through the process table, with a fake /proc that has no map_files (as without
 * CAP_CHECKPOINT_RESTORE): each maps line names the inode of the file a careless resolver
 * would open, so only the inode check and resolving inside the root keep those files out.
 */
Test(proc_root, table_opens_only_the_mapped_inode, .init = croot_setup, .fini = croot_teardown,
     .timeout = 20)
{
	struct proc_table *t;
	struct proc *p;
	struct stat host;
	char path[256];
	FILE *f;

	cr_assert_eq(stat("/etc/passwd", &host), 0);
	snprintf(path, sizeof(path), "%s/4242", cproc);
	cr_assert_eq(mkdir(cproc, 0755), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/4242/root", cproc);
	cr_assert_eq(symlink(croot, path), 0);
	snprintf(path, sizeof(path), "%s/4242/maps", cproc);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	/* The real file, by its inode: opened. */
	fprintf(f, "10000-11000 r-xp 00000000 08:01 %lu /lib/good.so\n",
		(unsigned long)cino("lib/good.so"));
	/* Links to the host's /etc/passwd, carrying its inode. */
	fprintf(f, "20000-21000 r-xp 00000000 08:02 %lu /lib/abs.so\n", (unsigned long)host.st_ino);
	fprintf(f, "30000-31000 r-xp 00000000 08:03 %lu /lib/up/etc/passwd\n",
		(unsigned long)host.st_ino);
	/* Deleted: the path now names another file (here, with the very inode): never opened. */
	fprintf(f, "40000-41000 r-xp 00000000 08:04 %lu /lib/good.so (deleted)\n",
		(unsigned long)cino("lib/good.so"));
	fprintf(f, "50000-51000 r-xp 00000000 08:05 %lu /lib/fifo.so\n",
		(unsigned long)cino("lib/fifo.so"));
	fprintf(f, "60000-61000 r-xp 00000000 08:06 %lu /lib/loop1.so\n", 1ul);
	fclose(f);

	cr_assert_eq(proc_table_new(cproc, &t), 0);
	cr_assert_eq(proc_table_get(t, 4242, &p), 0);
	cr_assert_eq(p->n_maps, 6);
	for (size_t i = 0; i < p->n_maps; i++) {
		const struct mapping *m = &p->maps[i];

		cr_assert_eq(m->kind, MAPPING_FILE);
		cr_assert_not_null(m->dso, "%s", m->name);
		if (i == 0) {
			cr_assert_geq(m->dso->fd, 0, "the real file was not opened");
			continue;
		}
		if (m->dso->fd >= 0) {
			struct stat st;

			cr_assert_eq(fstat(m->dso->fd, &st), 0);
			cr_assert_fail("%s%s opened (dev %lu ino %lu; host passwd %lu/%lu)", m->name,
				       m->deleted ? " (deleted)" : "", (unsigned long)st.st_dev,
				       (unsigned long)st.st_ino, (unsigned long)host.st_dev,
				       (unsigned long)host.st_ino);
		}
	}
	proc_table_free(t);
}
