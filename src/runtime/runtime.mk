# src/runtime/runtime.mk -- the sandbox runtime: nx-spawn and the end-to-end
# test; included by the top-level Makefile (paths are relative to the
# repository root).  Also usable alone: make -f src/runtime/runtime.mk ...
#
#   make build/nx-spawn       the spawn helper (links libseccomp)
#   make runtime-test         build everything below and run test_runtime as
#                             $(RUNTIME_TEST_USER) (after control/nx-setup, as
#                             root or as that user)
#   make runtime-seccomp      print the sandbox's seccomp filter
#
# The backend side (launch.c, cgroup.c, util.c) is plain C without
# libseccomp and goes into the extension's OBJS; nx-spawn is the only
# program that links libseccomp.

RUNTIME_CC ?= gcc
RUNTIME_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement
RUNTIME_TEST_USER ?= postgres
RUNTIME_TEST_ARGS ?=

# the parts the supervisor links (no libseccomp); the extension's OBJS use
# RUNTIME_LIB_OBJS
RUNTIME_LIB_SRC = src/runtime/launch.c src/runtime/cgroup.c src/runtime/util.c
RUNTIME_LIB_OBJS = $(RUNTIME_LIB_SRC:.c=.o)
# nx-spawn's parts
RUNTIME_SPAWN_SRC = src/runtime/nx_spawn.c src/runtime/userns.c src/runtime/stage.c \
	src/runtime/seccomp.c src/runtime/util.c
RUNTIME_HDR = src/runtime/nx_runtime.h src/runtime/runtime_int.h src/include/nx_handoff.h src/include/nx_scm.h

# nx-init if the init build has produced it, else the test stand-in
RUNTIME_TEST_INIT = $(if $(wildcard build/nx-init),build/nx-init,build/test_init_stub)

.PHONY: runtime-test runtime-seccomp

# Included after PGXS: OBJS was already expanded into the library's
# prerequisites when $(RUNTIME_LIB_OBJS) was still empty, so name them here.
ifdef MODULE_big
$(shlib): $(RUNTIME_LIB_OBJS)
endif

build/nx-spawn: $(RUNTIME_SPAWN_SRC) $(RUNTIME_HDR)
	@mkdir -p build
	$(RUNTIME_CC) $(RUNTIME_CFLAGS) $(RUNTIME_SPAWN_SRC) -lseccomp -o $@

build/test_runtime: src/runtime/test_runtime.c $(RUNTIME_LIB_SRC) $(RUNTIME_HDR)
	@mkdir -p build
	$(RUNTIME_CC) $(RUNTIME_CFLAGS) -Isrc/runtime -Isrc/include src/runtime/test_runtime.c $(RUNTIME_LIB_SRC) -o $@

# the probe and the init stand-in run inside sandboxes: static
build/test_probe: src/runtime/test_probe.c
	@mkdir -p build
	$(RUNTIME_CC) $(RUNTIME_CFLAGS) -static -pthread $< -o $@

build/test_init_stub: src/runtime/test_init_stub.c
	@mkdir -p build
	$(RUNTIME_CC) $(RUNTIME_CFLAGS) -static $< -o $@

runtime-test: build/nx-spawn build/test_runtime build/test_probe build/test_init_stub
	@set -e; \
	cmd="$(CURDIR)/build/test_runtime --spawn $(CURDIR)/build/nx-spawn \
		--probe $(CURDIR)/build/test_probe --init $(CURDIR)/$(RUNTIME_TEST_INIT) \
		$(RUNTIME_TEST_ARGS)"; \
	if [ "$$(id -u)" = 0 ]; then runuser -u $(RUNTIME_TEST_USER) -- $$cmd; else $$cmd; fi

runtime-seccomp: build/nx-spawn
	build/nx-spawn --print-seccomp
