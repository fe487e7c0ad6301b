#!/usr/bin/env bash
# Generate the seed corpora of the fuzz targets into OUT/<target>/ (OUT/.work holds the
# binaries built on the way). Every seed comes from something built or read right here:
#   - tests/fuzz/seed-prog.c compiled for x86_64 and aarch64 in several ways (DWARF, stripped,
#     compressed debug sections, .debug_frame only, pointer authentication, C++, shared object,
#     relocatable object, no section headers): ELF, symbolizer and CFI seeds;
#   - the CFI sections of those and of both C libraries (cut to whole entries, 8 KiB);
#   - real stacks captured by tests/fuzz/seed-stack.c (x86_64 natively, aarch64 under qemu-user);
#   - /proc/self/maps and /proc/kallsyms excerpts; mangled names from the C++ build and libstdc++;
#   - records, cores, synthetic stacks and perf.data files written by tests/fuzz/seedgen.c;
#   - raw captures written by profd's own writer from tests/fuzz/seed-raw.c (built by the Makefile
#     against the fuzz library, passed as SEED_RAW);
#   - perf.data files of `perf record --call-graph dwarf` runs, when perf can record here;
#   - HTTP request lines for the daemon's endpoint.
# Cross-architecture seeds are skipped (with a note) when the aarch64 toolchain or qemu is absent,
# recorded perf.data seeds when perf is missing or not allowed (the synthetic ones remain).
# Usage: gen-seeds.sh OUT   (CC: host compiler, default gcc; SEED_RAW: the seed-raw program)
set -euo pipefail

out=$1
src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../.." && pwd)
cc=${CC:-gcc}
cxx=${CXX:-g++}
a64cc=aarch64-linux-gnu-gcc
a64root=/usr/aarch64-linux-gnu
w=$out/.work

rm -rf "$out"
mkdir -p "$w"
for t in access cfi cfi-elf config core demangle elf-ident http kallsyms maps perfdata perfmap python \
	raw session symbolize unwind; do
	mkdir -p "$out/$t"
done
note() { echo "gen-seeds: $*" >&2; }

# Small binaries: no page padding between segments.
small=(-Wl,-z,noseparate-code -Wl,-z,max-page-size=4096)
prog=$src/seed-prog.c

"$cc" -D_GNU_SOURCE -O1 -g -Wall -I"$top" -o "$w/seedgen" "$src/seedgen.c" -lelf

# ---- x86_64 ELF files ---------------------------------------------------------------------
"$cc" -O2 -g "${small[@]}" -o "$w/x64-g" "$prog"
"$cc" -O2 -s "${small[@]}" -o "$w/x64-s" "$prog"
"$cc" -O0 -g -gz=zlib -fno-asynchronous-unwind-tables "${small[@]}" -o "$w/x64-df-gz" "$prog"
"$cc" -O0 -g -fno-asynchronous-unwind-tables "${small[@]}" -o "$w/x64-df" "$prog"
"$cc" -O2 -g -fPIC -shared "${small[@]}" -o "$w/x64-g.so" "$prog"
"$cc" -O2 -g -c -o "$w/x64.o" "$prog"
"$cxx" -x c++ -O2 -g "${small[@]}" -o "$w/x64-cxx-g" "$prog"
# Section headers gone: .eh_frame only through PT_GNU_EH_FRAME.
objcopy_ok=0
if command -v llvm-objcopy >/dev/null; then
	llvm-objcopy --strip-sections "$w/x64-s" "$w/x64-noshdr" && objcopy_ok=1
fi
[ $objcopy_ok = 1 ] || note "no llvm-objcopy: no seed without section headers"

# ---- aarch64 ELF files --------------------------------------------------------------------
have_a64=0
if command -v "$a64cc" >/dev/null && [ -e "$a64root/lib/libc.so.6" ]; then
	have_a64=1
	"$a64cc" -O2 -g "${small[@]}" -o "$w/a64-g" "$prog"
	"$a64cc" -O2 -s "${small[@]}" -o "$w/a64-s" "$prog"
	"$a64cc" -O2 -g -mbranch-protection=pac-ret+leaf "${small[@]}" -o "$w/a64-pac" "$prog"
	"$a64cc" -O0 -g -fno-asynchronous-unwind-tables "${small[@]}" -o "$w/a64-df" "$prog"
else
	note "no $a64cc or $a64root: no aarch64 seeds"
fi

elfs_ident=(x64-s x64-g x64-g.so x64.o a64-s)
elfs_sym=(x64-g x64-cxx-g x64-s x64-df-gz x64-g.so a64-g a64-pac)
elfs_cfi=(x64-s x64-g x64-df x64-df-gz x64-g.so x64-noshdr a64-g a64-pac a64-df)
for f in "${elfs_ident[@]}"; do [ -e "$w/$f" ] && cp "$w/$f" "$out/elf-ident/$f"; done
for f in "${elfs_sym[@]}"; do [ -e "$w/$f" ] && cp "$w/$f" "$out/symbolize/$f"; done
for f in "${elfs_cfi[@]}"; do [ -e "$w/$f" ] && cp "$w/$f" "$out/cfi-elf/$f"; done
# Not ELF at all, and an ELF header alone.
printf '#!/bin/sh\necho not elf\n' >"$out/elf-ident/script"
head -c 64 "$w/x64-s" >"$out/elf-ident/header-only"
head -c 64 "$w/x64-s" >"$out/cfi-elf/header-only"

# ---- raw CFI sections ---------------------------------------------------------------------
for f in x64-g x64-df x64-df-gz x64-g.so a64-g a64-pac a64-df; do
	[ -e "$w/$f" ] && "$w/seedgen" cfi "$w/$f" "$out/cfi/$f"
done
"$w/seedgen" cfi /lib/x86_64-linux-gnu/libc.so.6 "$out/cfi/libc-x86_64"
[ $have_a64 = 1 ] && "$w/seedgen" cfi "$a64root/lib/libc.so.6" "$out/cfi/libc-aarch64"

# ---- stacks -------------------------------------------------------------------------------
"$cc" -D_GNU_SOURCE -O1 -fno-omit-frame-pointer -I"$top" -o "$w/seed-stack" "$src/seed-stack.c"
"$w/seed-stack" "$out/unwind/x86_64"
if [ $have_a64 = 1 ] && command -v qemu-aarch64 >/dev/null; then
	"$a64cc" -D_GNU_SOURCE -O1 -fno-omit-frame-pointer -I"$top" -o "$w/seed-stack-a64" \
		"$src/seed-stack.c"
	qemu-aarch64 -L "$a64root" "$w/seed-stack-a64" "$out/unwind/aarch64" ||
		note "seed-stack under qemu-aarch64 failed: no aarch64 stack seeds"
else
	note "no qemu-aarch64: no aarch64 stack seeds"
fi
"$w/seedgen" unwind "$out/unwind"

# ---- text inputs --------------------------------------------------------------------------
# /proc/self/maps: the whole file (of the cat reading it) and single lines.
cat /proc/self/maps >"$out/maps/self"
head -n 3 "$out/maps/self" | tail -n 1 >"$out/maps/line-file"
grep -m1 '\[stack\]' "$out/maps/self" >"$out/maps/line-stack" || true
printf '7f0000000000-7f0000001000 r-xp 00001000 fd:01 123456 /tmp/a b/lib.so (deleted)\n' \
	>"$out/maps/line-deleted"
printf '00400000-00401000 ---p 00000000 00:00 0 \n' >"$out/maps/line-anon"

# kallsyms: the first text symbols and some module ones, when addresses are visible.
if head -n 1 /proc/kallsyms 2>/dev/null | grep -qv '^0000000000000000'; then
	head -n 150 /proc/kallsyms >"$out/kallsyms/kernel"
	{ head -n 40 /proc/kallsyms; grep -m 60 '\[' /proc/kallsyms || true; } \
		>"$out/kallsyms/kernel-and-modules"
else
	note "/proc/kallsyms hides addresses: synthetic kallsyms seed only"
fi
"$w/seedgen" kallsyms "$out/kallsyms"

# Mangled names (first byte: output buffer size for fuzz-demangle, 0xff = large).
i=0
{
	nm --defined-only "$w/x64-cxx-g" | awk '{print $3}' | grep '^_Z' || true
	nm -D --defined-only /usr/lib/x86_64-linux-gnu/libstdc++.so.6 2>/dev/null |
		awk '{print $3}' | grep '^_Z' | head -n 120 || true
	# Rust legacy and v0 manglings.
	echo '_ZN4core3fmt9Formatter3pad17h5b1a0a9e1e0e1e2eE'
	echo '_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE'
	echo '_RNvCs1234_7mycrate3foo'
	echo '_RINvNtCs1234_4core3ptr13drop_in_placeNtCs5678_5alloc6StringEB2_'
} | while read -r name; do
	printf '\xff%s' "$name" >"$out/demangle/name-$i"
	i=$((i + 1))
done
printf '\x02_ZNSt6vectorIiSaIiEE9push_backERKi' >"$out/demangle/small-buffer"

# JIT perf maps: the format V8/the JVM agents write, with and without 0x, overlapping ranges.
cat >"$out/perfmap/jit" <<'EOM'
7f3a1c000040 1a0 LazyCompile:*fib /srv/app.js:12
7f3a1c000200 80 Builtin:ArgumentsAdaptorTrampoline
0x7f3a1c000280 0x40 Stub:CEntry
7f3a1c000100 40 overlapping newer entry
7f3a1c000300 0 empty range
ffffffffffffff00 200 wraps around
7f3a1c001000 100 name with  two  spaces and a tab	here
EOM
printf '1000 10 a\n2000 10 b' >"$out/perfmap/no-final-newline"

# Daemon configuration: every key, quoting, comments, suffixes.
cat >"$out/config/all-keys" <<'EOM'
# profd daemon configuration
frequency = 99
interval = 1m
output_dir = "/var/lib/profd/profiles"
retention_count = 100
retention_bytes = 1G
stack_bytes = 32768
listen = 127.0.0.1:8710
push_url = "http://pyroscope.local:4040"
push_name = "profd.host"
push_labels = "env=prod,region=eu"
spool_dir = /var/spool/profd
spool_bytes = 256M
log_level = info
EOM
cat >"$out/config/quoting" <<'EOM'
push_url = ""   # disabled
listen = "[::1]:9000"
output_dir = "/tmp/a \"quoted\" \\ dir"
interval = 2h
EOM

# HTTP request lines of the daemon's endpoint ("METHOD PATH[?QUERY]"), as clients send them.
printf 'GET /debug/pprof/profile?seconds=30' >"$out/http/pprof"
printf 'GET /debug/pprof/profile?seconds=10&pid=4242' >"$out/http/pprof-pid"
printf 'GET /debug/pprof/profile' >"$out/http/pprof-default"
printf 'GET /debug/pprof/profile?seconds=5&seconds=6&pid=&debug' >"$out/http/duplicate"
printf 'GET /debug/pprof/profile?seconds=18446744073709551617&pid=-1' >"$out/http/overflow"
printf 'GET /metrics' >"$out/http/metrics"
printf 'GET /?x=1' >"$out/http/index"
printf 'POST /debug/pprof/profile?seconds=1' >"$out/http/post"
printf 'GET /debug/pprof/heap' >"$out/http/unknown-path"

# Access control: byte 0 picks the part (0 Authorization header, 1 listen list, 2 a decision).
printf '\000Bearer 0123456789abcdef0123456789abcdef' >"$out/access/bearer"
printf '\000bearer \t tok  ' >"$out/access/bearer-blanks"
printf '\000Basic dXNlcjpwYXNz' >"$out/access/basic"
printf '\001127.0.0.1:7632,unix:/run/profd/profd.sock' >"$out/access/listen"
printf '\001[::1]:0,[::ffff:127.0.0.1]:1,0.0.0.0:7632,localhost:9' >"$out/access/listen-v6"
printf '\002\007\001\014\200\001\002\001\002\003\004\002\003' >"$out/access/decide-own"
printf '\002\037\000\063\000\000\000\000\000\000\000\000\001' >"$out/access/decide-token"

# ---- records, cores, captures --------------------------------------------------------------------
"$w/seedgen" records "$out/session"
"$w/seedgen" cores "$out/core"
if [ -n "${SEED_RAW:-}" ] && [ -x "$SEED_RAW" ]; then
	ASAN_OPTIONS=detect_leaks=0 "$SEED_RAW" "$out/raw" ||
		note "seed-raw failed: no raw capture seeds"
else
	note "no seed-raw program (SEED_RAW): no raw capture seeds"
fi

# perf.data: synthetic files (every event kind, both architectures, several attributes), then
# real recordings of the seed program when perf may record here.
"$w/seedgen" perfdata "$out/perfdata"
if command -v perf >/dev/null; then
	for cg in dwarf,1024 dwarf,4096; do
		perf record -q -e cpu-clock -c 100000 --call-graph "$cg" -o "$w/perf-$cg.data" \
			-- "$w/x64-g" >/dev/null 2>&1 &&
			cp "$w/perf-$cg.data" "$out/perfdata/perf-record-$cg" ||
			note "perf record --call-graph $cg failed here: no recorded perf.data seed"
	done
else
	note "no perf: synthetic perf.data seeds only"
fi


# python: a hand-made location table (every entry form), and real ones from python3.11.
printf '\000\012\000\000\000\003\000\000\000\351\002\330\000\005\370\360\005\000\001\002' \
	>"$out/python/linetable-forms"
if command -v python3.11 >/dev/null; then
	python3.11 - "$out/python" <<'PY'
import os, struct, sys
def codes(c):
    yield c
    for k in c.co_consts:
        if hasattr(k, "co_code"):
            yield from codes(k)
src = "def f(a):\n    for i in range(a):\n        try:\n            yield [x for x in (i,\n 2)]\n        except E:\n            pass\n"
for n, c in enumerate(codes(compile(src, "s.py", "exec"))):
    with open(os.path.join(sys.argv[1], "linetable-%d" % n), "wb") as f:
        f.write(b"\0" + struct.pack("<iI", c.co_firstlineno, 3) + c.co_linetable)
PY
else
	note "no python3.11: hand-made python seed only"
fi
# python: a debug-offsets block header, and a code image whose pointers lead nowhere.
{ printf '\001xdebugpy\360\000\015\003\000\000\000\000'; head -c 600 /dev/zero; } \
	>"$out/python/debug-offsets"
{ printf '\002\000\000\001'; head -c 512 /dev/zero; } >"$out/python/code-image"

for t in "$out"/*/; do
	printf '  %-12s %3d seeds\n' "$(basename "$t")" "$(find "$t" -type f | wc -l)"
done
