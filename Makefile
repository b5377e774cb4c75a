# Makefile for nx_sandbox (PGXS).
#
#   make && make install          build and install the extension
#   make installcheck             pg_regress suite (own temporary cluster) and
#                                 TAP suite (t/*.pl); run as a non-root user
#   make fuzz-elf                 fuzz the ELF reader (FUZZ_SECONDS, default 600)
#   make elf-unit-test            the ELF reader's standalone unit test
#
# The install script is assembled from src/sql/*.sql in name order; released
# versions get hand-written upgrade scripts (nx_sandbox--A--B.sql).

EXTENSION = nx_sandbox
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = nx_sandbox
OBJS = \
	src/nx_sandbox.o \
	src/guc.o \
	src/elf/nx_elf.o \
	src/api/identity.o \
	src/api/verify.o

DATA_built = $(EXTENSION)--$(EXTVERSION).sql

REGRESS = setup verify sandboxes push promote env security events
REGRESS_OPTS = --inputdir=sql --temp-instance=./tmp_check --temp-config=sql/nx_regress.conf
TAP_TESTS = 1

# -Wno-unused-parameter: PostgreSQL's own headers (fmgr.h, ilist.h, bufpage.h)
# have inline functions with unused parameters; everything else of -Wextra
# stays on.
PG_CPPFLAGS = -Isrc -Isrc/elf -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = build tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

-include src/elf/fuzz/fuzz.mk
