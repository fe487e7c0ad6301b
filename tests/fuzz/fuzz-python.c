// SPDX-License-Identifier: MIT
/*
 * pipeline/python readers: py_linetable_line(), py_layout_from_debug_offsets(), and
 * py_code_read() / py_code_line() / py_unicode_read() over a memory image.
 * Byte 0 picks the part:
 *   0: i32 firstlineno, u32 unit, then a location table;
 *   1: a _Py_DebugOffsets block;
 *   2: byte 1 the layout (3.11, 3.12), u16 offset of the code object, then the image.
 */
#include <errno.h>
#include <string.h>

#include "pipeline/python/python.h"
#include "tests/fuzz/fuzz-common.h"

#define BASE 0x7f0000000000ull

struct image {
	const uint8_t *b;
	size_t len;
};

static int image_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	const struct image *im = userdata;

	if (addr < BASE || addr - BASE > im->len || len > im->len - (addr - BASE))
		return -EFAULT;
	memcpy(buf, im->b + (addr - BASE), len);
	return 0;
}

/* Valid UTF-8, no NUL inside, within the size limit. */
static void check_utf8(const char *s)
{
	size_t n = strlen(s);

	FUZZ_CHECK(n <= PY_MAX_STRING);
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;

		FUZZ_CHECK(k > 0 && i + k <= n);
		for (size_t j = 1; j < k; j++)
			FUZZ_CHECK(((unsigned char)s[i + j] >> 6) == 2);
		i += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_layout l;
	int r;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		int32_t first, line = -1;
		uint32_t unit;

		if (size < 9)
			return 0;
		memcpy(&first, data + 1, 4);
		memcpy(&unit, data + 5, 4);
		r = py_linetable_line(data + 9, size - 9, first, unit % 4096, &line);
		FUZZ_CHECK(r == 1 || r == 0 || r == -EBADMSG);
		if (r == 1)
			FUZZ_CHECK(line >= 0);
		break;
	}
	case 1:
		r = py_layout_from_debug_offsets(data + 1, size - 1, &l);
		FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EOPNOTSUPP);
		if (r == 0)
			FUZZ_CHECK(l.frame_previous < 16384 && l.code_adaptive < 16384 &&
				   l.unicode_compact_size > l.unicode_ascii_size);
		break;
	case 2: {
		struct image im;
		struct py_code *c = NULL;
		uint16_t off;
		char buf[64];

		if (size < 4)
			return 0;
		FUZZ_CHECK(py_layout_from_version(data[1] & 1 ? 0x030c01f0 : 0x030b02f0, &l) == 0);
		memcpy(&off, data + 2, 2);
		im = (struct image){ .b = data + 4, .len = size - 4 };
		if (py_unicode_read(&l, image_read, &im, BASE + off, buf, sizeof(buf)) == 0)
			check_utf8(buf);
		r = py_code_read(&l, image_read, &im, BASE + (off & ~7u), 0, &c);
		FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EFAULT || r == -ENOMEM);
		if (r == 0) {
			check_utf8(c->qualname);
			check_utf8(c->filename);
			FUZZ_CHECK(c->linetable_len <= PY_MAX_LINETABLE);
			for (uint64_t d = 0; d < 64; d += 2)
				FUZZ_CHECK(py_code_line(c, l.code_adaptive + d) >= 0);
			py_code_unref(c);
		}
		break;
	}
	}
	return 0;
}
