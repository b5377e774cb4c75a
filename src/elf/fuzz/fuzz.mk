# src/elf/fuzz/fuzz.mk -- ELF reader fuzzing and unit test, included by the
# top-level Makefile (paths are relative to the repository root).
#
#   make fuzz-elf          fuzz for $(FUZZ_SECONDS) seconds (default 600)
#   make fuzz-elf-smoke    fuzz for 30 seconds
#   make fuzz-ldcache      fuzz the ld.so.cache reader ($(FUZZ_SECONDS) seconds)
#   make fuzz-ldcache-smoke  the same for 30 seconds
#   make fuzz-elf-seeds    regenerate src/elf/fuzz/seeds/ and seeds-ldcache/
#                          from make_seeds.c
#   make elf-unit-test     build and run src/elf/test_elf.c (with
#                          test_libcheck.c: the library check on a fake root)
#
# Neither PGXS nor PostgreSQL is involved: the reader is plain C.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_MAX_LEN ?= 65536
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CORPUS = build/fuzz-corpus
ELF_TEST_CC ?= gcc
ELF_TEST_FLAGS = -std=gnu99 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all

# the reader (fuzzed), and what the unit test adds: the library check
ELF_READER_SRC = src/elf/nx_elf.c src/elf/nx_elf_ver.c src/elf/nx_elf_lib.c
ELF_CHECK_SRC = src/elf/nx_ldcache.c src/elf/nx_view.c src/elf/nx_libcheck.c \
	src/elf/nx_host_posix.c
ELF_HDR = $(wildcard src/elf/*.h)
ELF_SRC = $(ELF_READER_SRC) $(ELF_HDR)

.PHONY: fuzz-elf fuzz-elf-smoke fuzz-elf-seeds elf-unit-test fuzz-ldcache \
	fuzz-ldcache-smoke

build/fuzz_elf: src/elf/fuzz/fuzz_elf.c $(ELF_SRC)
	@mkdir -p build
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isrc/elf src/elf/fuzz/fuzz_elf.c $(ELF_READER_SRC) -o $@

# The working corpus starts from the committed seeds plus this host's
# /usr/bin/true (a real dynamic PIE with version needs, not committed); it
# keeps growing across runs in build/.
$(FUZZ_CORPUS): src/elf/fuzz/seeds
	@mkdir -p $@
	cp src/elf/fuzz/seeds/* $@/
	-cp /usr/bin/true $@/usr-bin-true
	@touch $@

fuzz-elf: build/fuzz_elf $(FUZZ_CORPUS)
	build/fuzz_elf -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
		-artifact_prefix=build/ \
		-print_final_stats=1 $(FUZZ_CORPUS)

fuzz-elf-smoke:
	$(MAKE) fuzz-elf FUZZ_SECONDS=30

# The ld.so.cache reader: seeds are the three formats (make_seeds.c) plus
# this host's /etc/ld.so.cache.
LDCACHE_CORPUS = build/fuzz-ldcache-corpus

build/fuzz_ldcache: src/elf/fuzz/fuzz_ldcache.c src/elf/nx_ldcache.c src/elf/nx_ldcache.h
	@mkdir -p build
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isrc/elf src/elf/fuzz/fuzz_ldcache.c src/elf/nx_ldcache.c -o $@

$(LDCACHE_CORPUS): src/elf/fuzz/seeds-ldcache
	@mkdir -p $@
	cp src/elf/fuzz/seeds-ldcache/* $@/
	-cp /etc/ld.so.cache $@/host-ld.so.cache
	@touch $@

fuzz-ldcache: build/fuzz_ldcache $(LDCACHE_CORPUS)
	build/fuzz_ldcache -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
		-artifact_prefix=build/ldcache- \
		-print_final_stats=1 $(LDCACHE_CORPUS)

fuzz-ldcache-smoke:
	$(MAKE) fuzz-ldcache FUZZ_SECONDS=30

build/make_seeds: src/elf/fuzz/make_seeds.c
	@mkdir -p build
	$(ELF_TEST_CC) -std=gnu99 -O2 -Wall -Wextra -Werror $< -o $@

fuzz-elf-seeds: build/make_seeds
	rm -f src/elf/fuzz/seeds/* src/elf/fuzz/seeds-ldcache/*
	@mkdir -p src/elf/fuzz/seeds src/elf/fuzz/seeds-ldcache
	build/make_seeds src/elf/fuzz/seeds src/elf/fuzz/seeds-ldcache

build/test_elf: src/elf/test_elf.c src/elf/test_libcheck.c $(ELF_SRC) $(ELF_CHECK_SRC)
	@mkdir -p build
	$(ELF_TEST_CC) $(ELF_TEST_FLAGS) -Isrc/elf src/elf/test_elf.c src/elf/test_libcheck.c \
		$(ELF_READER_SRC) $(ELF_CHECK_SRC) -o $@

elf-unit-test: build/test_elf
	build/test_elf src/elf/fuzz/seeds /usr/bin/true src/elf/fuzz/seeds-ldcache
