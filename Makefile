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

PKGS       := libbpf libdw libelf libprotobuf-c zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRIT_LIBS  := $(shell pkg-config --libs criterion 2>/dev/null)

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
            -fno-omit-frame-pointer -D_GNU_SOURCE -DPROFD_VERSION='"$(VERSION)"' \
            -I. -I$(BUILD) $(PKG_CFLAGS) -MMD -MP
LDFLAGS  ?=
LDLIBS   := $(PKG_LIBS) -liberty -lm -lpthread
ifneq ($(SAN),)
CFLAGS   += -fsanitize=$(SAN) -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SAN)
endif

# The real pprof tool, for tests and the demo (built below).
PPROF := $(BUILD)/pprof

# ---- generated sources -------------------------------------------------------------------
VMLINUX_H := $(BUILD)/vmlinux.h
BPF_OBJ   := $(BUILD)/profd.bpf.o
SKEL_H    := $(BUILD)/profd.skel.h
PB_C      := $(BUILD)/proto/profile.pb-c.c
PB_H      := $(BUILD)/proto/profile.pb-c.h

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

$(PB_C) $(PB_H) &: proto/profile.proto
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(BUILD)
	$(Q)$(PROTOC_C) --c_out=$(BUILD) $<

GENERATED := $(SKEL_H) $(PB_H)

# ---- libraries and binary ------------------------------------------------------------------
# One archive per module so a module's unit tests link only what that module may use.
MODULES         := common proto symbolize unwind daemon
SRCS_common     := $(wildcard common/*.c)
SRCS_proto      := $(wildcard proto/*.c)
SRCS_symbolize  := $(wildcard symbolize/*.c)
SRCS_unwind     := $(wildcard daemon/unwind/*.c)
SRCS_daemon     := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
OBJS_common     := $(SRCS_common:%.c=$(BUILD)/obj/%.o)
OBJS_proto      := $(SRCS_proto:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/proto/profile.pb-c.o
OBJS_symbolize  := $(SRCS_symbolize:%.c=$(BUILD)/obj/%.o)
OBJS_unwind     := $(SRCS_unwind:%.c=$(BUILD)/obj/%.o)
OBJS_daemon     := $(SRCS_daemon:%.c=$(BUILD)/obj/%.o)
lib              = $(BUILD)/lib/lib$(1).a
# Link order: users before what they use.
ALL_LIBS        := $(call lib,daemon) $(call lib,unwind) $(call lib,symbolize) $(call lib,proto) \
                   $(call lib,common)

$(foreach m,$(MODULES),$(eval $(call lib,$(m)): $$(OBJS_$(m))))
$(BUILD)/lib/%.a:
	$(call msg,AR,$@)
	$(Q)mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/daemon/unwind/%.o: daemon/unwind/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/daemon/%.o: daemon/%.c | $(SKEL_H) $(PB_H)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/proto/%.o: proto/%.c | $(PB_H)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/tests/unit/test-pprof.o: | $(PB_H)
$(BUILD)/tests/unit/test-pprof: | $(PPROF)
$(BUILD)/obj/tests/%.o: tests/%.c | $(SKEL_H) $(PB_H)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/proto/profile.pb-c.o: $(PB_C)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/profd: $(BUILD)/obj/daemon/main.o $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

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
TEST_LIBS_test-pprof     := proto common
TEST_LIBS_test-symbolize := symbolize common
TEST_LIBS_test-unwind    := unwind common
TEST_LIBS_test-cfi       := unwind common
test_libs = $(if $(TEST_LIBS_$(1)),$(foreach m,$(TEST_LIBS_$(1)),$(call lib,$(m))),$(ALL_LIBS))

.SECONDEXPANSION:
$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $$(call test_libs,$$*)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CRIT_LIBS) -o $@
$(BUILD)/tests/e2e/%: $(BUILD)/obj/tests/e2e/%.o $(TEST_HELPER_OBJS) $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CRIT_LIBS) -o $@

# ...except those that exist to prove the CFI unwinder: no frame pointers at all.
WL_NOFP_CFLAGS := -O2 -g -fomit-frame-pointer
$(BUILD)/workloads/libc_heavy $(BUILD)/workloads/signal_spin $(BUILD)/workloads/threads: WL_CFLAGS := $(WL_NOFP_CFLAGS)

$(BUILD)/workloads/%: tests/workloads/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WL_CFLAGS) $< -o $@ -lpthread
$(BUILD)/workloads/%: tests/workloads/%.cc
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(WL_NOFP_CFLAGS) $< -o $@ -lpthread

# The real pprof, built offline from Debian's golang-github-google-pprof-dev.
$(PPROF):
	$(call msg,GO,$@)
	$(Q)mkdir -p $(BUILD)/gocache
	$(Q)cd $(BUILD) && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= \
		GOCACHE=$(abspath $(BUILD))/gocache go build -o pprof github.com/google/pprof

test-bins: all $(UNIT_BINS) $(E2E_BINS) $(WL_BINS) $(PPROF)

test: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)BUILD=$(BUILD) tests/run-tests.sh $(UNIT_BINS) $(E2E_BINS)

check: test

unit: all $(UNIT_BINS)
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

.PHONY: all test check unit test-bins demo deps clean format
.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- benchmarks ------------------------------------------------------------------------------
# bench/ prints figures; never part of `make test`. `make bench` runs the full benchmark and keeps
# its markdown output in BENCHMARKS.md (replaced only when the run succeeds); `make bench-smoke`
# runs it once on tiny inputs to check that it still builds and runs (its figures mean nothing).
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_BIN  := $(BUILD)/bench/bench-unwind

$(BENCH_BIN): $(BENCH_OBJS) $(ALL_LIBS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $(BENCH_OBJS) $(ALL_LIBS) $(LDLIBS) -o $@

bench: $(BENCH_BIN)
	$(Q){ $(BENCH_BIN); echo $$? > $(BUILD)/bench/rc; } | tee $(BUILD)/bench/BENCHMARKS.md.tmp
	$(Q)test "$$(cat $(BUILD)/bench/rc)" = 0 && mv $(BUILD)/bench/BENCHMARKS.md.tmp BENCHMARKS.md

bench-smoke: $(BENCH_BIN)
	$(Q)$(BENCH_BIN) --smoke > $(BUILD)/bench/smoke.md

.PHONY: bench bench-smoke
