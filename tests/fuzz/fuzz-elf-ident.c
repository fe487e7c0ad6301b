// SPDX-License-Identifier: MIT
/* elf_identify_fd(): ELF header and GNU build-id note (PT_NOTE, then SHT_NOTE) of any file. */
#include <errno.h>

#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_ident id;
	char hex[2 * sizeof(id.build_id) + 1];
	int fd = fuzz_memfd(data, size), r;

	r = elf_identify_fd(fd, &id);
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -EINVAL || r == -ENOTSUP);
		return 0;
	}
	FUZZ_CHECK(id.build_id_len <= sizeof(id.build_id));
	r = build_id_to_hex(id.build_id, id.build_id_len, hex, sizeof(hex));
	FUZZ_CHECK(r == (int)(2 * id.build_id_len));
	FUZZ_CHECK(strlen(hex) == 2 * id.build_id_len);
	return 0;
}
