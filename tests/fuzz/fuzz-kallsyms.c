// SPDX-License-Identifier: MIT
/* kallsyms_load() + kallsyms_lookup(): /proc/kallsyms text. */
#include <errno.h>

#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kallsyms *k = NULL;
	char path[64];
	uint64_t probe = 0;
	int fd = fuzz_memfd(data, size), r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = kallsyms_load(path, &k);
	if (r < 0) {
		FUZZ_CHECK(r == -EACCES || r == -ENODATA || r == -EBADMSG || r == -E2BIG ||
			   r == -ENOMEM || r == -EIO);
		return 0;
	}
	/* Probe addresses near the start of every line that begins with hex digits. */
	for (size_t i = 0, n = 0; i < size && n < 64; i++) {
		const char *name;
		uint64_t start;
		int c = data[i];

		if (c >= '0' && c <= '9')
			probe = probe << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			probe = probe << 4 | (uint64_t)(c - 'a' + 10);
		else if (probe) {
			for (uint64_t d = 0; d < 3; d++) {
				r = kallsyms_lookup(k, probe + d * 7 - 1, &name, &start);
				if (r == 0) {
					FUZZ_CHECK(name && start <= probe + d * 7 - 1);
					(void)strlen(name);
				} else
					FUZZ_CHECK(r == -ENOENT);
			}
			probe = 0;
			n++;
		}
	}
	(void)kallsyms_lookup(k, 0, NULL, NULL);
	(void)kallsyms_lookup(k, UINT64_MAX, NULL, NULL);
	kallsyms_free(k);
	return 0;
}
