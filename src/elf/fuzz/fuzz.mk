# src/elf/fuzz/fuzz.mk -- ELF reader fuzzing and unit test, included by the
# top-level Makefile (paths are relative to the repository root).
#
#   make fuzz-elf          fuzz for $(FUZZ_SECONDS) seconds (default 600)
#   make fuzz-elf-smoke    fuzz for 30 seconds
#   make fuzz-elf-seeds    regenerate src/elf/fuzz/seeds/ from make_seeds.c
#   make elf-unit-test     build and run src/elf/test_elf.c
#
# Neither PGXS nor PostgreSQL is involved: the reader is plain C.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_MAX_LEN ?= 65536
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CORPUS = build/fuzz-corpus
ELF_TEST_CC ?= gcc
ELF_TEST_FLAGS = -std=gnu99 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all

ELF_SRC = src/elf/nx_elf.c src/elf/nx_elf.h

.PHONY: fuzz-elf fuzz-elf-smoke fuzz-elf-seeds elf-unit-test

build/fuzz_elf: src/elf/fuzz/fuzz_elf.c $(ELF_SRC)
	@mkdir -p build
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isrc/elf src/elf/fuzz/fuzz_elf.c src/elf/nx_elf.c -o $@

# The working corpus starts from the committed seeds plus this host's
# /usr/bin/true (a real dynamic PIE, not committed); it keeps growing
# across runs in build/.
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

build/make_seeds: src/elf/fuzz/make_seeds.c
	@mkdir -p build
	$(ELF_TEST_CC) -std=gnu99 -O2 -Wall -Wextra -Werror $< -o $@

fuzz-elf-seeds: build/make_seeds
	rm -f src/elf/fuzz/seeds/*
	@mkdir -p src/elf/fuzz/seeds
	build/make_seeds src/elf/fuzz/seeds

build/test_elf: src/elf/test_elf.c $(ELF_SRC)
	@mkdir -p build
	$(ELF_TEST_CC) $(ELF_TEST_FLAGS) -Isrc/elf src/elf/test_elf.c src/elf/nx_elf.c -o $@

elf-unit-test: build/test_elf
	build/test_elf src/elf/fuzz/seeds /usr/bin/true
