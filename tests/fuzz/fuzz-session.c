// SPDX-License-Identifier: MIT
/*
 * session_handle_record() with hostile ring-buffer records: bad versions, types and lengths
 * (both the length the ring buffer reports and the header's own), huge ustack_len/kstack_len.
 * Framing in fuzz-common.h; each record is copied into a heap block of exactly its length.
 *
 * One session for the whole run, as in the daemon. Its process table is in static mode (as in
 * `profd convert`): it never reads /proc, so a record costs what the session costs and not a
 * re-read of this process's (long, sanitizer-made) /proc/self/maps on every exec, exit and
 * address miss. The table knows one process, SELF_PID, with the executable mappings this
 * process had at start-up, moved to fixed addresses so that an input means the same in every
 * run whatever ASLR did (each file at its own base, at base + file offset: this executable at
 * SELF_EXE_BASE, the others from SELF_LIB_BASE on, SELF_LIB_STRIDE apart, in /proc order); its
 * binaries are opened for real (libc and the rest: CFI unwinding runs on real tables). Record
 * pids are mapped onto SELF_PID (odd pids) or a pid the table does
 * not know (even ones). An EXEC of SELF_PID empties its mappings; they come back right after it
 * when the record's ppid field (unused in EXEC) is odd, as a raw capture's PROCESS record
 * follows its EXEC, and otherwise at the start of the next input. An EXIT forgets SELF_PID
 * until then too. A second process that records never name holds the binaries, so that an
 * EXIT does not close and re-identify them. The aggregate is taken and freed after each input
 * to keep memory flat.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include "bpf/profd.h"
#include "pipeline/session.h"
#include "tests/fuzz/fuzz-aggregate.h"
#include "tests/fuzz/fuzz-common.h"

#define NO_SUCH_PID 0x3fffffffu /* above PID_MAX_LIMIT (2^22) */
#define PIN_PID 0x3ffffffeu	/* holds the binaries; never named by a record */
#define MAX_SELF_MAPS 4096
#define SELF_EXE_BASE 0x555555554000ull /* where seedgen's records put code */
#define SELF_LIB_BASE 0x7f0000000000ull
#define SELF_LIB_STRIDE 0x100000000ull

static struct session *session;
static struct proc_table *procs;
static uint32_t self_pid;
static struct proc_static_map self_maps[MAX_SELF_MAPS];
static size_t n_self_maps;

static int open_file(void *userdata, const struct proc_static_map *m)
{
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* This process's executable mappings, once, at fixed addresses (see top). */
static void snapshot_self_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL, exe[4096] = "", prev[4096] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	uint64_t next_lib = SELF_LIB_BASE, base = 0;
	size_t cap = 0;

	if (!f || n <= 0)
		abort();
	exe[n] = '\0';
	while (getline(&line, &cap, f) > 0 && n_self_maps < MAX_SELF_MAPS) {
		struct maps_entry e;

		if (proc_maps_parse_line(line, &e) < 0 || !(e.prot & PROT_EXEC))
			continue;
		if (!e.path || strcmp(e.path, prev)) {
			if (e.path && !strcmp(e.path, exe)) {
				base = SELF_EXE_BASE;
			} else {
				base = next_lib;
				next_lib += SELF_LIB_STRIDE;
			}
			snprintf(prev, sizeof(prev), "%s", e.path ? e.path : "");
		}
		if (e.end - e.start >= SELF_LIB_STRIDE || e.pgoff >= SELF_LIB_STRIDE)
			continue;
		self_maps[n_self_maps++] = (struct proc_static_map){
		    .start = base + e.pgoff,
		    .end = base + e.pgoff + (e.end - e.start),
		    .pgoff = e.pgoff,
		    .prot = e.prot,
		    .dev = makedev(e.dev_major, e.dev_minor),
		    .ino = e.ino,
		    .path = e.path ? strdup(e.path) : NULL,
		    .deleted = e.deleted,
		};
	}
	free(line);
	fclose(f);
}

static void add_self(uint32_t pid)
{
	FUZZ_CHECK(proc_table_add_static(procs, (pid_t)pid, self_maps, n_self_maps) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct session_config cfg = {.max_depth = 128};

	if (session_new(&cfg, &session) < 0)
		abort();
	procs = session_procs(session);
	if (proc_table_set_static(procs, open_file, NULL) < 0)
		abort();
	self_pid = (uint32_t)getpid();
	snapshot_self_maps();
	add_self(PIN_PID);
	add_self(self_pid);
	return 0;
}

static void handle(const uint8_t *p, size_t len)
{
	uint8_t *rec = malloc(len ? len : 1);
	const struct session_stats *st = session_stats(session);
	uint64_t records = st->records, bad = st->bad_records, samples = st->samples;
	const struct profd_task_event *e = (const struct profd_task_event *)rec;
	bool self = false;

	if (!rec)
		abort();
	memcpy(rec, p, len);
	/* pid sits at the same offset in samples and task events. */
	if (len >= offsetof(struct profd_sample, pid) + sizeof(uint32_t)) {
		uint32_t pid;

		memcpy(&pid, rec + offsetof(struct profd_sample, pid), sizeof(pid));
		self = pid & 1;
		pid = self ? self_pid : NO_SUCH_PID;
		memcpy(rec + offsetof(struct profd_sample, pid), &pid, sizeof(pid));
	}
	FUZZ_CHECK(session_handle_record(session, rec, len) == 0);
	/* Every record is counted once, and at most one of sample / bad. */
	FUZZ_CHECK(st->records == records + 1);
	FUZZ_CHECK((st->bad_records - bad) + (st->samples - samples) <= 1);
	if (self && len >= sizeof(*e) && e->hdr.type == PROFD_REC_EXEC && (e->ppid & 1))
		add_self(self_pid);
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aggregate *agg;
	struct proc *p;

	if (proc_table_get(procs, (pid_t)self_pid, &p) < 0 || p->n_maps == 0)
		add_self(self_pid);

	while (size >= sizeof(uint32_t)) {
		uint32_t len;

		memcpy(&len, data, sizeof(len));
		data += sizeof(len);
		size -= sizeof(len);
		if (len > size)
			len = (uint32_t)size;
		handle(data, len);
		data += len;
		size -= len;
	}

	/* What the profile writer will walk: every stack within its limits. */
	agg = session_aggregate(session);
	fuzz_check_aggregate(agg);
	if (session_take_aggregate(session, &agg) == 0)
		aggregate_free(agg);
	/* Only the two processes above: the table never grows with the inputs. */
	FUZZ_CHECK(proc_table_n_procs(procs) <= 2);
	return 0;
}
