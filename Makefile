# profd — one Makefile. `make` builds build/profd; `make test` installs deps, builds, runs tests.
# Options: V=1 (show commands), SAN=address,undefined (sanitizer build), BUILD=dir.

BUILD    ?= build
CC       ?= gcc
CXX      ?= g++
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC_C ?= protoc-c
SAN      ?=
VERSION  := 0.1.0

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := all

PKGS       := libbpf libdw libelf libprotobuf-c zlib libdeflate libsystemd libmicrohttpd gnutls libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRIT_LIBS  := $(shell pkg-config --libs criterion 2>/dev/null)

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

# CFLAGS and LDFLAGS given on the command line (make CFLAGS=-O0) replace the defaults; what the
# build needs is added to them all the same.
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
            -fno-omit-frame-pointer -D_GNU_SOURCE -DPROFD_VERSION='"$(VERSION)"' \
            -I. -I$(BUILD) $(PKG_CFLAGS) -MMD -MP
LDFLAGS  ?=
LDLIBS   := $(PKG_LIBS) -liberty -lm -lpthread
ifneq ($(SAN),)
override CFLAGS  += -fsanitize=$(SAN) -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SAN)
endif

# The real pprof tool, for tests and the demo (built below).
PPROF := $(BUILD)/pprof

# ---- generated sources -------------------------------------------------------------------
VMLINUX_H := $(BUILD)/vmlinux.h
BPF_OBJ   := $(BUILD)/profd.bpf.o
SKEL_H    := $(BUILD)/profd.skel.h
PB_C      := $(BUILD)/output/profile.pb-c.c
PB_H      := $(BUILD)/output/profile.pb-c.h

$(VMLINUX_H):
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_OBJ): bpf/profd.bpf.c bpf/profd.h $(VMLINUX_H)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -I. -Wall \
		-Wno-unused-function -c $< -o $@

$(SKEL_H): $(BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name profd_bpf > $@.tmp && mv $@.tmp $@

$(PB_C) $(PB_H) &: output/profile.proto
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(BUILD)
	$(Q)$(PROTOC_C) --c_out=$(BUILD) $<

GENERATED := $(SKEL_H) $(PB_H)

# ---- libraries and binary ------------------------------------------------------------------
# One archive per folder (docs/architecture.md has the map) so a unit test links only what its
# module may use. Every object waits for the generated headers (order-only) and depends on the
# headers it includes (the -MMD files read at the end), so a changed or new source rebuilds
# exactly what needs it.
MODULES           := common output symbolize unwind python pipeline sources service commands
DIRS_common       := common
DIRS_output       := output
DIRS_symbolize    := symbolize
DIRS_unwind       := pipeline/unwind
DIRS_python       := pipeline/python
DIRS_pipeline     := pipeline
DIRS_sources      := sources
DIRS_service      := service
DIRS_commands     := commands
$(foreach m,$(MODULES),$(eval SRCS_$(m) := $(wildcard $(DIRS_$(m):%=%/*.c))))
SRCS_commands     := $(filter-out commands/main.c,$(SRCS_commands))
$(foreach m,$(MODULES),$(eval OBJS_$(m) := $(SRCS_$(m):%.c=$(BUILD)/obj/%.o)))
OBJS_output       += $(BUILD)/obj/output/profile.pb-c.o
lib                = $(BUILD)/lib/lib$(1).a
ALL_LIBS          := $(foreach m,$(MODULES),$(call lib,$(m)))
# Archives linked as one group: the link does not depend on the order of MODULES.
link_libs          = -Wl,--start-group $(1) -Wl,--end-group

# An archive is made anew from its object list as it is now (rm first): a new source is a new
# prerequisite, and $(BUILD)/lib/<module>.objs, rewritten only when the list changes, makes a
# deleted or renamed source remake the archive too, so nothing stale stays in it.
$(foreach m,$(MODULES),$(eval $(call lib,$(m)): $$(OBJS_$(m)) $(BUILD)/lib/$(m).objs Makefile))
$(BUILD)/lib/%.objs: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo '$(OBJS_$*)' | cmp -s - $@ || echo '$(OBJS_$*)' > $@
FORCE:
.PHONY: FORCE
$(BUILD)/lib/%.a:
	$(call msg,AR,$@)
	$(Q)mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(BUILD)/obj/%.o: %.c | $(GENERATED)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/output/profile.pb-c.o: $(PB_C)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/profd: $(BUILD)/obj/commands/main.o $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $< $(call link_libs,$(ALL_LIBS)) $(LDLIBS) -o $@

all: $(BUILD)/profd

# ---- tests -----------------------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
E2E_SRCS  := $(wildcard tests/e2e/test-*.c)
E2E_BINS  := $(E2E_SRCS:tests/e2e/%.c=$(BUILD)/tests/e2e/%)
TEST_HELPER_SRCS := $(wildcard tests/lib/*.c)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(BUILD)/obj/%.o)

# Workloads are built the way the tests need them: frame pointers, -O2, debug info.
WL_SRCS  := $(wildcard tests/workloads/*.c tests/workloads/*.cc)
WL_BINS  := $(patsubst tests/workloads/%,$(BUILD)/workloads/%,$(basename $(WL_SRCS)))
WL_CFLAGS := -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls

# A unit test links only its module's archives: TEST_LIBS_<name> (default: all of them).
TEST_LIBS_test-pprof     := output common
TEST_LIBS_test-symbolize := symbolize common
TEST_LIBS_test-safeopen  := common
TEST_LIBS_test-common    := common
TEST_LIBS_test-unwind    := unwind common
TEST_LIBS_test-cfi       := unwind common
TEST_LIBS_test-http      := service common
TEST_LIBS_test-access    := service common
TEST_LIBS_test-config    := service common
test_libs = $(if $(TEST_LIBS_$(1)),$(foreach m,$(TEST_LIBS_$(1)),$(call lib,$(m))),$(ALL_LIBS))

# Test objects are named here, so make never takes them for intermediate files to skip or delete.
TEST_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(E2E_SRCS:%.c=$(BUILD)/obj/%.o) $(TEST_HELPER_OBJS)
$(TEST_OBJS): | $(GENERATED)

.SECONDEXPANSION:
$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $$(call test_libs,$$*)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $< $(call link_libs,$(filter %.a,$^)) $(LDLIBS) $(CRIT_LIBS) -o $@
$(BUILD)/tests/e2e/%: $(BUILD)/obj/tests/e2e/%.o $(TEST_HELPER_OBJS) $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) $(call link_libs,$(filter %.a,$^)) $(LDLIBS) \
		$(CRIT_LIBS) -o $@

# ...except those that exist to prove the CFI unwinder: no frame pointers at all.
WL_NOFP_CFLAGS := -O2 -g -fomit-frame-pointer
$(BUILD)/workloads/libc_heavy $(BUILD)/workloads/signal_spin $(BUILD)/workloads/threads \
$(BUILD)/workloads/deepen $(BUILD)/workloads/spawn_late: WL_CFLAGS := $(WL_NOFP_CFLAGS)

# CPython embedded through libpython3.11.so (the shared-library interpreter; `make deps`).
$(BUILD)/workloads/pyembed: tests/workloads/pyembed.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WL_CFLAGS) $(shell pkg-config --cflags python-3.11-embed 2>/dev/null) $< -o $@ \
		$(shell pkg-config --libs python-3.11-embed 2>/dev/null)

$(BUILD)/workloads/%: tests/workloads/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WL_CFLAGS) $< -o $@ -lpthread
$(BUILD)/workloads/%: tests/workloads/%.cc
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(WL_NOFP_CFLAGS) $< -o $@ -lpthread

# The naming fixture doubles as a workload (record tests): -O2, forced inlining, no frame pointers.
$(BUILD)/workloads/names: tests/fixtures/names.cc
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(WL_NOFP_CFLAGS) $< -o $@ -lpthread
WL_BINS += $(BUILD)/workloads/names

# The real pprof, built offline from Debian's golang-github-google-pprof-dev.
$(PPROF):
	$(call msg,GO,$@)
	$(Q)mkdir -p $(BUILD)/gocache
	$(Q)cd $(BUILD) && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= \
		GOCACHE=$(abspath $(BUILD))/gocache go build -o pprof github.com/google/pprof

# The reference demangler of the naming tests: pprof's own demangler and modes (tests/tools).
DEMANGLE_REF := $(BUILD)/demangle-ref
$(DEMANGLE_REF): tests/tools/demangle-ref.go
	$(call msg,GO,$@)
	$(Q)mkdir -p $(BUILD)/gocache
	$(Q)GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= \
		GOCACHE=$(abspath $(BUILD))/gocache go build -o $@ $<
$(BUILD)/tests/unit/test-symbolize: | $(DEMANGLE_REF)

# speedscope's own importer for the speedscope tests: the npm package (its bundle holds the
# importer), pinned, installed once into the build tree; tests/tools/speedscope-check.js runs it.
SPEEDSCOPE_VERSION := 1.25.0
SPEEDSCOPE := $(BUILD)/node/node_modules/speedscope/package.json
$(SPEEDSCOPE):
	$(call msg,NPM,speedscope@$(SPEEDSCOPE_VERSION))
	$(Q)mkdir -p $(BUILD)/node
	$(Q)npm install --prefix $(BUILD)/node --no-audit --no-fund --ignore-scripts --silent \
		speedscope@$(SPEEDSCOPE_VERSION)
	$(Q)touch $@
$(BUILD)/speedscope-check.js: tests/tools/speedscope-check.js | $(SPEEDSCOPE)
	$(Q)cp $< $@

test-bins: all $(UNIT_BINS) $(E2E_BINS) $(WL_BINS) $(PPROF) $(DEMANGLE_REF) \
	   $(BUILD)/speedscope-check.js

# `make test`: the fuzz and bench smokes, the whole suite against the plain build, then the whole
# suite again against a sanitizer build (test-san). Each run-tests.sh prints its total last.
# Builds run two jobs at once (CI machines have two CPUs). In each suite the unit binaries (and
# the e2e binaries that measure no CPU, run-tests.sh's SIDE_BY_SIDE) run side by side, then the
# other e2e binaries one at a time, their tests one at a time.
test: deps
	$(Q)tools/phase.sh build $(MAKE) --no-print-directory -j2 test-bins
	$(Q)tools/phase.sh fuzz-build $(MAKE) --no-print-directory -j2 fuzz-build
	$(Q)tools/phase.sh smokes $(MAKE) --no-print-directory fuzz-smoke bench-smoke
	$(Q)BUILD=$(BUILD) tools/phase.sh suite tests/run-tests.sh $(UNIT_BINS) $(E2E_BINS)
	$(Q)tools/phase.sh sanitizer $(MAKE) --no-print-directory test-san

# The same unit and end-to-end tests against profd, its libraries and the test binaries built with
# ASan+UBSan in $(BUILD)/san (the workloads and the real pprof are the plain build's). Any
# sanitizer report fails: -fno-sanitize-recover aborts on UB, LeakSanitizer makes a leaking profd
# exit non-zero, which the tests check. The fuzz targets are sanitizer builds already.
SAN_BUILD   := $(BUILD)/san
SAN_FLAGS   := address,undefined
SAN_RUNTIME := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-san: $(PPROF) $(DEMANGLE_REF) $(SPEEDSCOPE) $(WL_BINS)
	$(Q)mkdir -p $(SAN_BUILD)
	$(Q)[ -L $(SAN_BUILD)/workloads ] || rm -rf $(SAN_BUILD)/workloads
	$(Q)ln -sfn $(abspath $(BUILD)/workloads) $(SAN_BUILD)/workloads
	$(Q)ln -sfn $(abspath $(BUILD)/node) $(SAN_BUILD)/node
	$(Q)ln -sfn $(abspath $(PPROF)) $(SAN_BUILD)/pprof
	$(Q)ln -sfn $(abspath $(DEMANGLE_REF)) $(SAN_BUILD)/demangle-ref
	$(Q)$(MAKE) --no-print-directory -j2 SAN=$(SAN_FLAGS) BUILD=$(SAN_BUILD) test-bins
	$(Q)echo "=== the suite again, sanitizer build ($(SAN_FLAGS), $(SAN_BUILD))"
	$(Q)$(SAN_RUNTIME) BUILD=$(SAN_BUILD) tests/run-tests.sh \
		$(subst $(BUILD)/,$(SAN_BUILD)/,$(UNIT_BINS) $(E2E_BINS))

check: test

# What the unit binaries run besides themselves: test-pprof the real pprof, test-symbolize the
# reference demangler, test-perfdata a workload to record with perf.
UNIT_RUN_DEPS := $(PPROF) $(DEMANGLE_REF) $(BUILD)/workloads/cxx_nofp
unit: all $(UNIT_BINS) $(UNIT_RUN_DEPS)
	$(Q)BUILD=$(BUILD) tests/run-tests.sh $(UNIT_BINS)

# ---- demo ------------------------------------------------------------------------------------
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/workloads/demo $(PPROF)
	$(Q)tools/demo.sh $(BUILD)

deps:
	$(Q)tools/deps.sh

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^build/')

.PHONY: all test test-san check unit test-bins demo deps clean format

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- benchmarks ------------------------------------------------------------------------------
# bench/ prints figures; never part of `make test`. `make bench` runs the full benchmark and keeps
# its markdown output in BENCHMARKS.md (replaced only when every part succeeds; section 9, the
# soak below, is carried over from the old file): bench-unwind
# (sections 1-3: CFI build, warm unwinding, symbolization, in-process), then bench/bench-side.sh
# (sections 4-8: profd side by side with perf on this machine: offline conversion, target
# slowdown, whole-host cost, output size, complete stacks; needs root, perf and /usr/bin/time,
# about 4 minutes). `make bench-smoke` runs both once on tiny inputs to check that they still
# build and run (their figures mean nothing; about 10 s, mostly profiler start-ups; part of
# `make test`).
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_BIN  := $(BUILD)/bench/bench-unwind
BENCH_SIDE := bench/bench-side.sh
BENCH_SIDE_DEPS := $(BUILD)/profd $(PPROF) $(addprefix $(BUILD)/workloads/,throughput gaps cxx_nofp \
                   libc_heavy signal_spin threads chain inline_heavy)

$(BENCH_BIN): $(BENCH_OBJS) $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $(BENCH_OBJS) $(call link_libs,$(ALL_LIBS)) $(LDLIBS) -o $@

bench: $(BENCH_BIN) $(BENCH_SIDE_DEPS)
	$(Q){ $(BENCH_BIN) && $(BENCH_SIDE) $(BUILD); echo $$? > $(BUILD)/bench/rc; } | \
		tee $(BUILD)/bench/BENCHMARKS.md.tmp
	$(Q)test "$$(cat $(BUILD)/bench/rc)" = 0
	$(Q)sed -n '/^## 9\. Soak/,$$p' BENCHMARKS.md >> $(BUILD)/bench/BENCHMARKS.md.tmp
	$(Q)mv $(BUILD)/bench/BENCHMARKS.md.tmp BENCHMARKS.md

bench-smoke: $(BENCH_BIN) $(BENCH_SIDE_DEPS)
	$(Q)$(BENCH_BIN) --smoke > $(BUILD)/bench/smoke.md
	$(Q)$(BENCH_SIDE) --smoke $(BUILD) > $(BUILD)/bench/smoke-side.md

# `make bench-host [BENCH_HOST_ARGS=--rounds=5]`: bench/hostbuild.sh, the whole host during
# `make -j2` of a scratch clone of this repository under `profd record -a` and `perf record -a
# --call-graph dwarf` (complete user stacks, no_mapping stops, lost samples, profd's CPU and
# side-band), and a storm of ~30 ms processes under `profd record -a` and `profd daemon`; its
# markdown goes to $(BUILD)/bench/hostbuild.md (root, perf, curl; about 5 minutes; never part of
# `make test` or `make bench-smoke`).
BENCH_HOST_ARGS ?=
bench-host: $(BUILD)/profd $(PPROF) $(BUILD)/workloads/storm
	$(Q)mkdir -p $(BUILD)/bench
	$(Q)bench/hostbuild.sh $(BENCH_HOST_ARGS) $(BUILD) > $(BUILD)/bench/hostbuild.md.tmp
	$(Q)mv $(BUILD)/bench/hostbuild.md.tmp $(BUILD)/bench/hostbuild.md
	$(Q)cat $(BUILD)/bench/hostbuild.md

.PHONY: bench bench-smoke bench-host

# `make soak [SOAK_MINUTES=30]`: bench/soak.sh runs `profd daemon` (99 Hz, its own temporary
# config and output directory) for SOAK_MINUTES under process, thread and dlopen churn
# (bench/soak/churn.c and the libchurnN.so it dlopens) with a profile pulled over HTTP every
# few seconds, and prints the daemon's RSS, fds, CPU and cache sizes over time. Its markdown
# replaces section 9 of BENCHMARKS.md (the last section; `make bench` keeps it) only when the
# soak succeeded (no failed pull). Needs root and curl; never part of `make test`.
SOAK_MINUTES ?= 30
SOAK_DIR  := $(BUILD)/bench/soak
SOAK_LIBS := $(foreach i,0 1 2 3,$(SOAK_DIR)/libchurn$(i).so)
SOAK_DEPS := $(BUILD)/profd $(PPROF) $(SOAK_DIR)/churn $(SOAK_LIBS)

$(SOAK_DIR)/churn: bench/soak/churn.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WL_CFLAGS) $< -o $@ -lpthread
$(SOAK_DIR)/libchurn%.so: bench/soak/libchurn.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WL_CFLAGS) -fPIC -shared -DCHURN_LIB=$* $< -o $@

soak-bins: $(SOAK_DEPS)

soak: $(SOAK_DEPS)
	$(Q){ bench/soak.sh --minutes $(SOAK_MINUTES) $(BUILD); echo $$? > $(SOAK_DIR)/rc; } | \
		tee $(SOAK_DIR)/soak.md
	$(Q)test "$$(cat $(SOAK_DIR)/rc)" = 0
	$(Q)sed '/^## 9\. Soak/,$$d' BENCHMARKS.md > $(SOAK_DIR)/BENCHMARKS.md.tmp
	$(Q)cat $(SOAK_DIR)/soak.md >> $(SOAK_DIR)/BENCHMARKS.md.tmp
	$(Q)mv $(SOAK_DIR)/BENCHMARKS.md.tmp BENCHMARKS.md

.PHONY: soak soak-bins

# ---- fuzzing ---------------------------------------------------------------------------------
# libFuzzer targets for the parsers of outside input (tests/fuzz/fuzz-*.c), built with clang and
# ASan/UBSan. The project sources they need are compiled again with clang into $(FUZZ_DIR)/obj
# (never the gcc archives; no BPF, no capture.c) and archived so each target links what it uses.
# Seeds are generated by tests/fuzz/gen-seeds.sh from binaries compiled at that time, libc,
# /proc/self/maps and /proc/kallsyms, raw captures written by tests/fuzz/seed-raw.c and perf.data
# files (synthetic, and `perf record` ones where perf may record); inputs that once crashed live
# in tests/fuzz/regressions/.
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS=...] [FUZZ_JOBS=2]   fuzz each target N seconds
#       (corpora kept and grown in $(FUZZ_DIR)/corpus, crashes in $(FUZZ_DIR)/artifacts)
#   make fuzz-smoke [FUZZ_SMOKE_SECONDS=2]   replay seeds + regressions, fuzz a few seconds
#       each from a fresh corpus; fails on any crash (part of `make test`)
FUZZ_DIR           := $(BUILD)/fuzz
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 2
FUZZ_JOBS          ?= 2
FUZZ_TARGETS       ?= $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_CFLAGS        := -O1 -g -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -I. \
                      -DPROFD_VERSION='"$(VERSION)"' \
                      -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
                      $(shell pkg-config --cflags libdw libelf libmicrohttpd gnutls 2>/dev/null) \
                      -fsanitize=address,undefined -fno-sanitize-recover=all -MMD -MP
# --as-needed: only the targets that pull in http.o load libmicrohttpd (and what it drags in).
FUZZ_LDLIBS        := -Wl,--as-needed \
                      $(shell pkg-config --libs libdw libelf zlib libdeflate libmicrohttpd gnutls libsystemd 2>/dev/null) \
                      -liberty -lm -lpthread
# http.c is in for http_parse_request() (its server half needs libmicrohttpd, never BPF).
FUZZ_SRCS          := $(wildcard common/*.c symbolize/*.c pipeline/unwind/*.c pipeline/python/*.c) \
                      $(wildcard pipeline/proc.c pipeline/cgroup.c pipeline/session.c pipeline/aggregate.c \
                                 sources/core.c service/config.c service/listen.c sources/raw.c \
                                 sources/perfdata.c sources/perfdata-feed.c service/http.c \
                                 service/access.c pipeline/stacksize.c pipeline/jitmap.c)
FUZZ_OBJS          := $(FUZZ_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB           := $(FUZZ_DIR)/libprofd-fuzz.a
FUZZ_BINS          := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)
FUZZ_SEEDS         := $(FUZZ_DIR)/seeds/.stamp

$(FUZZ_DIR)/obj/%.o: %.c
	$(call msg,FUZZCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_LIB)
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB) $(FUZZ_LDLIBS) -o $@

# Seed programs that use the project's own writers (e.g. raw captures) link the fuzz library
# (sanitizers, no libFuzzer). Order-only for the seeds: a rebuilt library alone does not make
# new seeds; a changed seed program does (it is in the seed*.c prerequisites).
FUZZ_SEED_BINS     := $(FUZZ_DIR)/seed-raw

$(FUZZ_DIR)/seed-%: tests/fuzz/seed-%.c $(FUZZ_LIB)
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_LIB) $(FUZZ_LDLIBS) -o $@

$(FUZZ_SEEDS): tests/fuzz/gen-seeds.sh $(wildcard tests/fuzz/seed*.c) tests/fuzz/fuzz-common.h \
		| $(FUZZ_SEED_BINS)
	$(call msg,SEEDS,$(@D))
	$(Q)CC=$(CC) SEED_RAW=$(FUZZ_DIR)/seed-raw tests/fuzz/gen-seeds.sh $(@D)
	$(Q)touch $@

fuzz-build: $(FUZZ_BINS) $(FUZZ_SEEDS)

fuzz: fuzz-build
	$(Q)tests/fuzz/run.sh fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	$(Q)tests/fuzz/run.sh smoke $(FUZZ_DIR) $(FUZZ_SMOKE_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

.PHONY: fuzz fuzz-build fuzz-smoke

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null) $(wildcard $(FUZZ_DIR)/*.d)

# ---- install, Debian package, unit checks ----------------------------------------------------
# `make install [DESTDIR=/stage] [PREFIX=/usr/local]` installs the binary, the systemd unit (its
# ExecStart rewritten to $(BINDIR)), the man page and the default configuration (an existing
# /etc/profd/profd.conf is kept). `make deb` stages PREFIX=/usr into $(BUILD)/deb/root and builds
# $(BUILD)/profd_$(VERSION)_ARCH.deb with dpkg-deb (Depends from dpkg-shlibdeps; no debhelper).
# `make unit-check` runs `systemd-analyze verify` and the offline security analysis on the unit.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DEB_ARCH   := $(shell dpkg --print-architecture 2>/dev/null)
DEB_DIR    := $(BUILD)/deb
DEB_ROOT   := $(DEB_DIR)/root
DEB        := $(BUILD)/profd_$(VERSION)_$(DEB_ARCH).deb

install: $(BUILD)/profd
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BUILD)/profd $(DESTDIR)$(BINDIR)/profd
	$(Q)install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)/profd
	$(Q)sed 's|/usr/bin/profd|$(BINDIR)/profd|' packaging/profd.service > $(DESTDIR)$(UNITDIR)/profd.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/profd.service
	$(Q)install -m 0644 packaging/profd.socket $(DESTDIR)$(UNITDIR)/profd.socket
	$(Q)install -m 0644 packaging/profd.1 $(DESTDIR)$(MANDIR)/man1/profd.1
	$(Q)test -e $(DESTDIR)$(SYSCONFDIR)/profd/profd.conf || \
		install -m 0644 packaging/profd.conf $(DESTDIR)$(SYSCONFDIR)/profd/profd.conf

deb: $(BUILD)/profd
	$(call msg,DEB,$(DEB))
	$(Q)rm -rf $(DEB_DIR) $(DEB)
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr SYSCONFDIR=/etc
	$(Q)gzip -9n $(DEB_ROOT)/usr/share/man/man1/profd.1
	$(Q)install -D -m 0644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/profd/copyright
	$(Q)install -d $(DEB_ROOT)/DEBIAN $(DEB_DIR)/debian
	$(Q)install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
		$(DEB_ROOT)/DEBIAN/
	$(Q)echo /etc/profd/profd.conf > $(DEB_ROOT)/DEBIAN/conffiles
	$(Q)printf 'Source: profd\n\nPackage: profd\nArchitecture: any\n' > $(DEB_DIR)/debian/control
	$(Q)deps=$$(cd $(DEB_DIR) && dpkg-shlibdeps -O -e root/usr/bin/profd 2>/dev/null | \
		sed -n 's/^shlibs:Depends=//p'); test -n "$$deps" || { echo "dpkg-shlibdeps failed"; exit 1; }; \
		sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' -e "s|@DEPENDS@|$$deps|" \
		    -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
		    packaging/debian/control.in > $(DEB_ROOT)/DEBIAN/control
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB) >/dev/null

unit-check: $(BUILD)/profd
	$(Q)mkdir -p $(BUILD)/packaging
	$(Q)sed 's|/usr/bin/profd|$(abspath $(BUILD))/profd|' packaging/profd.service > $(BUILD)/packaging/profd.service
	$(Q)cp packaging/profd.socket $(BUILD)/packaging/profd.socket
	$(Q)systemd-analyze verify --man=no $(BUILD)/packaging/profd.service $(BUILD)/packaging/profd.socket
	$(Q)systemd-analyze security --offline=yes $(BUILD)/packaging/profd.service | tail -1

.PHONY: install deb unit-check
