/* SPDX-License-Identifier: MIT */
/*
 * CPython frames: what profd needs to know about a running CPython 3.11+ interpreter to turn the
 * frame chain the BPF program copied (code object address + instruction pointer per Python frame)
 * into Python function names, files and lines.
 *
 * Three parts, each usable alone:
 *   - layouts: the byte offsets of the interpreter structures, per minor version. 3.11 and 3.12
 *     come from tables compiled in (taken from CPython's struct definitions for LP64 targets:
 *     x86_64 and aarch64 share them); 3.13 and later from the _Py_DebugOffsets block CPython
 *     places at the start of _PyRuntime, read out of the process (or the ELF file's .data).
 *   - code objects: qualified name, file name, first line and location table of a code object,
 *     read through a caller-supplied memory reader (process_vm_readv for a live process, a
 *     buffer in tests and fuzzing).
 *   - the location table (co_linetable, format of CPython 3.11+ "Objects/locations.md"): the
 *     line of an instruction offset.
 *
 * Everything read from the target is hostile: every pointer is read through the reader (never
 * dereferenced), every length is capped (PY_MAX_STRING, PY_MAX_LINETABLE), every loop bounded.
 * A structure that does not validate gives -EBADMSG (or the reader's error), never a crash.
 * Library code: no logging above debug, no global state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PY_OFF_NONE 0xffffu
#define PY_MAX_STRING 1024       /* bytes of UTF-8 kept of a name or file name (longer: cut) */
#define PY_MAX_STRING_CHARS (1u << 20) /* a string claiming more characters is refused */
#define PY_MAX_LINETABLE (1u << 20) /* bytes of co_linetable read; longer tables are refused */

/* Offsets (bytes) into CPython's structures; PY_OFF_NONE where a version has no such field. */
struct py_layout {
	uint32_t version_hex; /* PY_VERSION_HEX this layout was built for (major, minor, micro) */
	bool free_threaded;   /* 3.13t builds: not supported (py_layout_* refuse them) */

	/* _PyRuntimeState → PyInterpreterState → PyThreadState */
	uint16_t runtime_interpreters_head;
	uint16_t interp_next, interp_threads_head;
	uint16_t tstate_next, tstate_native_thread_id;
	uint16_t tstate_cframe;        /* 3.11, 3.12: PyThreadState.cframe */
	uint16_t cframe_current_frame; /* 3.11, 3.12: _PyCFrame.current_frame */
	uint16_t tstate_current_frame; /* 3.13+: PyThreadState.current_frame */

	/* _PyInterpreterFrame */
	uint16_t frame_code;     /* f_code (3.11, 3.12) / f_executable (3.13+) */
	uint16_t frame_previous;
	uint16_t frame_instr;    /* prev_instr (3.11, 3.12: last instruction run) / instr_ptr (3.13+) */
	uint16_t frame_owner;    /* char */
	uint16_t frame_is_entry; /* 3.11 only: bool, first frame run by its _PyEval_EvalFrameDefault */
	uint8_t owner_cstack;    /* 3.12+: owner value of the C-stack shim frame; 0xff: none (3.11) */

	/* PyCodeObject */
	uint16_t code_filename, code_name, code_qualname, code_linetable, code_firstlineno;
	uint16_t code_adaptive; /* co_code_adaptive: the first instruction */

	/* objects */
	uint16_t ob_type;
	uint16_t unicode_length, unicode_state;
	uint16_t unicode_ascii_size;   /* sizeof(PyASCIIObject): data of compact ASCII strings */
	uint16_t unicode_compact_size; /* sizeof(PyCompactUnicodeObject): other compact strings */
	uint16_t bytes_size, bytes_sval; /* PyBytesObject ob_size, ob_sval */
};

/*
 * The layout of a CPython 3.11 or 3.12 interpreter from its version (Py_Version /
 * PY_VERSION_HEX). -EOPNOTSUPP for other versions (3.13+ publish _Py_DebugOffsets instead).
 */
int py_layout_from_version(uint32_t version_hex, struct py_layout *ret);

/*
 * The layout from a _Py_DebugOffsets block (the first `len` bytes of _PyRuntime, 3.13+):
 * checks the "xdebugpy" cookie, the version (>= 3.13), refuses free-threaded builds
 * (-EOPNOTSUPP) and offsets too large to be plausible (-EBADMSG).
 */
int py_layout_from_debug_offsets(const void *buf, size_t len, struct py_layout *ret);

/* Read `len` bytes at `addr` of the target into buf, all or nothing: 0 or -errno. */
typedef int (*py_read_fn)(void *userdata, uint64_t addr, void *buf, size_t len);

/* A copy of `len` bytes of the target's memory at `addr`. */
struct py_code_copy {
	uint64_t addr;
	const void *data;
	size_t len;
};

/* What profd keeps of one code object. Immutable once built; reference counted. */
struct py_code {
	unsigned refs;
	char *qualname; /* UTF-8, never NULL ("<unknown>" if unreadable) */
	char *filename; /* UTF-8, never NULL */
	int32_t firstlineno;
	uint16_t code_adaptive; /* from the layout: instruction offsets are relative to this */
	uint8_t *linetable;
	size_t linetable_len;
};

/*
 * Read the code object at `addr`. `code_type` is the address of PyCode_Type in the target
 * (0: do not check the object's type). -EBADMSG when it is not a plausible code object.
 */
int py_code_read(const struct py_layout *l, py_read_fn read, void *userdata, uint64_t addr,
		 uint64_t code_type, struct py_code **ret);
struct py_code *py_code_ref(struct py_code *c);
void py_code_unref(struct py_code *c); /* NULL-safe */

/*
 * The line of the instruction `instr - code_addr` bytes into the code object (the difference
 * the BPF program records): 0 when the table says "no line" or the offset lies outside it.
 */
int32_t py_code_line(const struct py_code *c, uint64_t instr_delta);

/*
 * Decode a location table: the line of code unit `unit` (instruction index, 2 bytes each),
 * given the code object's first line. Returns 1 and *ret_line (0: no line for it), 0 when the
 * table ends before `unit`, -EBADMSG when it is malformed.
 */
int py_linetable_line(const uint8_t *table, size_t len, int32_t firstlineno, uint32_t unit,
		      int32_t *ret_line);

/*
 * Decode a PyUnicodeObject (compact strings: ASCII, UCS1, UCS2, UCS4) at `addr` into UTF-8,
 * at most `size - 1` bytes plus NUL (cut at a character boundary). 0 or -errno.
 */
int py_unicode_read(const struct py_layout *l, py_read_fn read, void *userdata, uint64_t addr,
		    char *buf, size_t size);

/*
 * Code objects of one process, by address: bounded (PY_CODE_CACHE_MAX entries; the oldest go
 * first), dropped as a whole when the process execs or exits. Also remembers addresses that
 * failed to read, so a bad one costs one read per PY_CODE_RETRY_NS, not one per sample.
 */
#define PY_CODE_CACHE_MAX 16384
#define PY_CODE_RETRY_NS (1000ull * 1000 * 1000)
struct py_code_cache;
int py_code_cache_new(struct py_code_cache **ret);
void py_code_cache_free(struct py_code_cache *c); /* NULL-safe; the codes it handed out live on */
/*
 * The code object at addr, read through `read` on a miss. The returned pointer is borrowed
 * (valid until the next call); take a reference to keep it. now_ns: CLOCK_MONOTONIC.
 */
int py_code_cache_get(struct py_code_cache *c, const struct py_layout *l, py_read_fn read,
		      void *userdata, uint64_t addr, uint64_t code_type, uint64_t now_ns,
		      const struct py_code **ret);
size_t py_code_cache_size(const struct py_code_cache *c);
/*
 * Put `code` in the cache at addr (a reference is taken), in place of what was there: a code
 * object read at the time it ran (a code record) is right where a later read may not be.
 */
int py_code_cache_put(struct py_code_cache *c, uint64_t addr, struct py_code *code);

/*
 * A code object built from copies of the target's memory taken while it ran (the BPF
 * program's code records): the first head_len bytes of the code object at addr, and the
 * first bytes of the str objects its qualname and filename point to and of the bytes object
 * its linetable points to (NULL: not copied). A copy cut short gives a name cut short and no
 * line past the table's copied part. Copies are at most PY_COPY_MAX bytes; -EBADMSG as
 * py_code_read.
 */
#define PY_COPY_MAX 1024
int py_code_from_copy(const struct py_layout *l, uint64_t addr, const void *head, size_t head_len,
		      const void *qualname, size_t qualname_len, const void *filename,
		      size_t filename_len, const void *linetable, size_t linetable_len,
		      uint64_t code_type, struct py_code **ret);

/*
 * ---- CPython processes (pyproc.c)
 *
 * A process runs CPython when one of its mapped ELF files whose name contains "python" (the
 * interpreter executable or libpython3.X.so) exports _PyRuntime and Py_Version. What profd
 * learns of it: the layout for its version, where _PyRuntime, PyCode_Type and
 * _PyEval_EvalFrameDefault are in the process, and its code objects. The file is inspected once
 * per binary (PY_MAX_BINARIES remembered), whatever the number of processes that map it.
 */
#define PY_MAX_PROCS 4096
#define PY_MAX_BINARIES 256

struct proc;
struct dso;

/* What an interpreter binary exports (file addresses: ELF virtual addresses). */
struct py_binary {
	uint32_t version_hex;
	uint64_t runtime, code_type, eval_start, eval_end;
	/* The executable PT_LOAD (holding _PyEval_EvalFrameDefault): gives the load bias. */
	uint64_t exec_vaddr, exec_offset, exec_filesz;
	struct py_layout layout;
};

/*
 * Inspect an ELF file for CPython: 1 and *ret when it is a supported interpreter, 0 when it is
 * not CPython, -EOPNOTSUPP for a CPython this profd cannot read (version, free-threaded build),
 * another -errno when the file is unreadable or malformed.
 */
int py_binary_inspect(int fd, struct py_binary *ret);

struct py_proc {
	uint32_t pid;
	struct py_layout layout;
	uint64_t runtime;            /* &_PyRuntime in the process */
	uint64_t code_type;          /* &PyCode_Type in the process */
	uint64_t eval_start, eval_end; /* _PyEval_EvalFrameDefault's code in the process */
	struct py_code_cache *codes;
};

struct py_procs;
int py_procs_new(struct py_procs **ret);
void py_procs_free(struct py_procs *t);

/*
 * The CPython state of a process whose maps are `p` (detected on first use, again whenever
 * p's maps were re-read): 1 and *ret when it runs a supported CPython, 0 when not (or when
 * the interpreter cannot be read: *ret_unsupported says so). Borrowed until py_procs_forget().
 */
int py_procs_get(struct py_procs *t, const struct proc *p, struct py_proc **ret,
		 bool *ret_unsupported);
/*
 * Whether a mapped file named `path` may hold an interpreter (the name test of detection: its
 * base name contains "python"), e.g. to decide whether a new mapping is worth a detection.
 */
bool py_maybe_interpreter(const char *path);
/* Forget a process (it exited or exec'd). */
void py_procs_forget(struct py_procs *t, uint32_t pid);

/* A py_read_fn reading another process's memory with process_vm_readv; userdata: the pid. */
int py_read_process(void *userdata, uint64_t addr, void *buf, size_t len);
