# src/init/init.mk -- nx-init, the first process inside every sandbox, and
# its test; included by the top-level Makefile (paths are relative to the
# repository root).
#
#   make build/nx-init     the static binary that goes into sandboxes
#   make init-test         build nx-init, build/hello and src/init/test_init.c,
#                          and run the test
#   make init-test-asan    the same test against an AddressSanitizer +
#                          UndefinedBehaviorSanitizer build (not static)
#
# Neither PGXS nor PostgreSQL is involved: nx-init is plain C and libc.

INIT_CC ?= gcc
INIT_WARN = -std=gnu99 -Wall -Wextra -Werror
INIT_CPPFLAGS = -Isrc/include -Isrc/init
INIT_CFLAGS = $(INIT_WARN) -O2
INIT_ASAN_CFLAGS = $(INIT_WARN) -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all

INIT_SRC = src/init/nx_init.c src/init/probe.c src/init/listens.c src/init/handoff.c
INIT_DEPS = $(INIT_SRC) src/init/nx_init.h src/init/nx_listens.h src/include/nx_handoff.h

.PHONY: init-test init-test-asan

build/nx-init: $(INIT_DEPS)
	@mkdir -p build
	$(INIT_CC) $(INIT_CFLAGS) $(INIT_CPPFLAGS) -static $(INIT_SRC) -o $@

build/nx-init-asan: $(INIT_DEPS)
	@mkdir -p build
	$(INIT_CC) $(INIT_ASAN_CFLAGS) $(INIT_CPPFLAGS) $(INIT_SRC) -o $@

# the example app, as the test's app
build/hello: examples/hello/hello.c
	@mkdir -p build
	$(INIT_CC) -O2 -static $< -o $@

build/test_init: src/init/test_init.c src/include/nx_handoff.h
	@mkdir -p build
	$(INIT_CC) $(INIT_CFLAGS) -g $(INIT_CPPFLAGS) $< -o $@

init-test: build/nx-init build/hello build/test_init
	build/test_init build/nx-init build/hello

init-test-asan: build/nx-init-asan build/hello build/test_init
	build/test_init build/nx-init-asan build/hello
