// SPDX-License-Identifier: MIT
/*
 * sym_demangle() and sym_demangle_as() in every mode: symbol names from hostile binaries
 * through libiberty (C++ and Rust), then the template stripper of the simple mode, which also
 * runs on its own over the raw input (it sees DWARF names too).
 */
#include <errno.h>

#include "symbolize/internal.h"
#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the output buffer size, so -ENOBUFS paths run too. */
	size_t buf_size = size ? 1 + (size_t)data[0] * 64 : 1;
	char *name, *buf;
	int r;

	if (size > 0) {
		data++;
		size--;
	}
	name = malloc(size + 1);
	buf = malloc(buf_size);
	if (!name || !buf)
		goto out;
	memcpy(name, data, size);
	name[size] = '\0';
	r = sym_demangle(name, buf, buf_size);
	if (r >= 0) {
		FUZZ_CHECK((size_t)r < buf_size);
		FUZZ_CHECK(strlen(buf) == (size_t)r);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOBUFS);
	}
	for (int m = SYM_DEMANGLE_SIMPLE; m <= SYM_DEMANGLE_NONE; m++) {
		r = sym_demangle_as(name, (enum sym_demangle_mode)m, buf, buf_size);
		if (r >= 0) {
			FUZZ_CHECK((size_t)r < buf_size);
			FUZZ_CHECK(strlen(buf) == (size_t)r);
		} else {
			FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOBUFS);
		}
	}
	{
		size_t n = strlen(name), k = demangle_strip_templates(name, n);

		FUZZ_CHECK(k <= n);
		FUZZ_CHECK(strlen(name) == k);
	}
out:
	free(name);
	free(buf);
	return 0;
}
