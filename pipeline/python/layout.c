// SPDX-License-Identifier: MIT
/*
 * CPython structure layouts. 3.11 and 3.12: from CPython's struct definitions (LP64; the
 * same on x86_64 and aarch64). 3.13: read from the _Py_DebugOffsets block the interpreter
 * publishes at the start of _PyRuntime. See python.h.
 */
#include <errno.h>
#include <string.h>

#include "pipeline/python/python.h"

#define PY_MINOR(v) (((v) >> 16) & 0xff)
#define PY_MAJOR(v) ((v) >> 24)

int py_layout_from_version(uint32_t version_hex, struct py_layout *ret)
{
	struct py_layout l = {
		.version_hex = version_hex,
		.tstate_next = 8,
		.tstate_current_frame = PY_OFF_NONE,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.code_linetable = 136,
		.ob_type = 8,
		.unicode_length = 16,
		.unicode_state = 32,
		.bytes_size = 16,
		.bytes_sval = 32,
	};

	if (PY_MAJOR(version_hex) != 3)
		return -EOPNOTSUPP;
	switch (PY_MINOR(version_hex)) {
	case 11:
		l.runtime_interpreters_head = 40;
		l.interp_next = 0;
		l.interp_threads_head = 16;
		l.tstate_native_thread_id = 160;
		l.tstate_cframe = 56;
		l.cframe_current_frame = 8;
		l.frame_code = 32;
		l.frame_previous = 48;
		l.frame_instr = 56;
		l.frame_is_entry = 68;
		l.frame_owner = 69;
		l.owner_cstack = 0xff;
		l.code_firstlineno = 72;
		l.code_adaptive = 184;
		l.unicode_ascii_size = 48;
		l.unicode_compact_size = 72;
		break;
	case 12:
		l.runtime_interpreters_head = 40;
		l.interp_next = 0;
		l.interp_threads_head = 72;
		l.tstate_native_thread_id = 144;
		l.tstate_cframe = 56;
		l.cframe_current_frame = 0;
		l.frame_code = 0;
		l.frame_previous = 8;
		l.frame_instr = 56;
		l.frame_is_entry = PY_OFF_NONE;
		l.frame_owner = 70;
		l.owner_cstack = 3; /* FRAME_OWNED_BY_CSTACK */
		l.code_firstlineno = 68;
		l.code_adaptive = 192;
		l.unicode_ascii_size = 40;
		l.unicode_compact_size = 56;
		break;
	default:
		return -EOPNOTSUPP;
	}
	*ret = l;
	return 0;
}

/*
 * _Py_DebugOffsets of 3.13 (Include/internal/pycore_runtime.h): a cookie, the version, the
 * free-threading flag, then per structure its size followed by field offsets, all uint64_t.
 * Byte positions of the fields profd reads, in that block.
 */
enum {
	DO_COOKIE = 0,
	DO_VERSION = 8,
	DO_FREE_THREADED = 16,
	DO_RT_INTERPRETERS_HEAD = 40,
	DO_INTERP_NEXT = 64,
	DO_INTERP_THREADS_HEAD = 72,
	DO_TSTATE_NEXT = 168,
	DO_TSTATE_CURRENT_FRAME = 184,
	DO_TSTATE_NATIVE_THREAD_ID = 200,
	DO_FRAME_PREVIOUS = 232,
	DO_FRAME_EXECUTABLE = 240,
	DO_FRAME_INSTR_PTR = 248,
	DO_FRAME_OWNER = 264,
	DO_CODE_FILENAME = 280,
	DO_CODE_NAME = 288,
	DO_CODE_QUALNAME = 296,
	DO_CODE_LINETABLE = 304,
	DO_CODE_FIRSTLINENO = 312,
	DO_CODE_ADAPTIVE = 344,
	DO_OB_TYPE = 360,
	DO_BYTES_OB_SIZE = 520,
	DO_BYTES_OB_SVAL = 528,
	DO_UNICODE_STATE = 544,
	DO_UNICODE_LENGTH = 552,
	DO_UNICODE_ASCII_SIZE = 560,
	DO_SIZE_313 = 584,
};

/* Offsets bigger than this are not plausible for the fields profd reads. */
#define PY_OFF_MAX 16384

static int get_off(const uint8_t *b, size_t pos, uint16_t *ret)
{
	uint64_t v;

	memcpy(&v, b + pos, sizeof(v));
	if (v >= PY_OFF_MAX)
		return -EBADMSG;
	*ret = (uint16_t)v;
	return 0;
}

int py_layout_from_debug_offsets(const void *buf, size_t len, struct py_layout *ret)
{
	static const struct {
		size_t pos;
		size_t field;
	} fields[] = {
#define F(pos, name) { pos, offsetof(struct py_layout, name) }
		F(DO_RT_INTERPRETERS_HEAD, runtime_interpreters_head),
		F(DO_INTERP_NEXT, interp_next),
		F(DO_INTERP_THREADS_HEAD, interp_threads_head),
		F(DO_TSTATE_NEXT, tstate_next),
		F(DO_TSTATE_CURRENT_FRAME, tstate_current_frame),
		F(DO_TSTATE_NATIVE_THREAD_ID, tstate_native_thread_id),
		F(DO_FRAME_PREVIOUS, frame_previous),
		F(DO_FRAME_EXECUTABLE, frame_code),
		F(DO_FRAME_INSTR_PTR, frame_instr),
		F(DO_FRAME_OWNER, frame_owner),
		F(DO_CODE_FILENAME, code_filename),
		F(DO_CODE_NAME, code_name),
		F(DO_CODE_QUALNAME, code_qualname),
		F(DO_CODE_LINETABLE, code_linetable),
		F(DO_CODE_FIRSTLINENO, code_firstlineno),
		F(DO_CODE_ADAPTIVE, code_adaptive),
		F(DO_OB_TYPE, ob_type),
		F(DO_BYTES_OB_SIZE, bytes_size),
		F(DO_BYTES_OB_SVAL, bytes_sval),
		F(DO_UNICODE_STATE, unicode_state),
		F(DO_UNICODE_LENGTH, unicode_length),
		F(DO_UNICODE_ASCII_SIZE, unicode_ascii_size),
#undef F
	};
	const uint8_t *b = buf;
	struct py_layout l = {
		.tstate_cframe = PY_OFF_NONE,
		.cframe_current_frame = PY_OFF_NONE,
		.frame_is_entry = PY_OFF_NONE,
		.owner_cstack = 3, /* FRAME_OWNED_BY_CSTACK in 3.13 */
	};
	uint64_t version, free_threaded;
	int r;

	if (!buf || len < DO_SIZE_313)
		return -EBADMSG;
	if (memcmp(b + DO_COOKIE, "xdebugpy", 8) != 0)
		return -EBADMSG;
	memcpy(&version, b + DO_VERSION, sizeof(version));
	memcpy(&free_threaded, b + DO_FREE_THREADED, sizeof(free_threaded));
	if (PY_MAJOR(version) != 3 || PY_MINOR(version) < 13)
		return -EBADMSG;
	/* Later versions moved fields in this block: their layout is not known here. */
	if (PY_MINOR(version) != 13 || free_threaded)
		return -EOPNOTSUPP;
	l.version_hex = (uint32_t)version;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		r = get_off(b, fields[i].pos, (uint16_t *)((uint8_t *)&l + fields[i].field));
		if (r < 0)
			return r;
	}
	/* PyCompactUnicodeObject: PyASCIIObject, then utf8_length and utf8. */
	l.unicode_compact_size = l.unicode_ascii_size + 16;
	*ret = l;
	return 0;
}
