// SPDX-License-Identifier: MIT
/*
 * perfmap_load_fd() + perfmap_lookup(): JIT perf maps (/tmp/perf-PID.map), written by the
 * profiled process itself, so as hostile as input gets.
 */
#include <errno.h>

#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

static uint64_t hex_at(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && i < 16; i++) {
		int c = p[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			break;
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct perfmap *m = NULL;
	int fd = fuzz_memfd(data, size), r;
	size_t lines = 0;

	/* perfmap_load_fd() reads from the current position. */
	if (lseek(fd, 0, SEEK_SET) < 0)
		abort();
	r = perfmap_load_fd(fd, &m);
	if (r < 0) {
		FUZZ_CHECK(r == -ENODATA || r == -E2BIG || r == -EFBIG || r == -ENOMEM);
		return 0;
	}
	FUZZ_CHECK(perfmap_n_ranges(m) > 0);
	/* Probe at and around the start of each line (the address field), and the extremes. */
	for (size_t i = 0; i < size && lines < 64; i++) {
		if (i > 0 && data[i - 1] != '\n')
			continue;
		size_t skip = size - i > 2 && data[i] == '0' && data[i + 1] == 'x' ? 2 : 0;
		uint64_t a = hex_at(data + i + skip, size - i - skip);

		for (uint64_t d = 0; d < 4; d++) {
			const char *name;
			uint64_t start, probe = a + d * 3 - 1;

			r = perfmap_lookup(m, probe, &name, &start);
			if (r == 0) {
				FUZZ_CHECK(name && start <= probe);
				(void)strlen(name);
			} else
				FUZZ_CHECK(r == -ENOENT);
		}
		lines++;
	}
	(void)perfmap_lookup(m, 0, NULL, NULL);
	(void)perfmap_lookup(m, UINT64_MAX, NULL, NULL);
	perfmap_free(m);
	return 0;
}
