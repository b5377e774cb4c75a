# control/nx/nx.mk -- the nx command-line client, included by the top-level
# Makefile (paths are relative to the repository root).
#
#   make build/nx          build the client (needs libpq and its headers);
#                          plain "make" builds it too
#
# It links the server's ELF reader and library check (src/elf/*.c) for
# local checks.
# Not a PGXS program: plain C with libpq only.

NX_CLI_CC ?= gcc
NX_CLI_PG_CONFIG ?= $(or $(PG_CONFIG),pg_config)
NX_CLI_VERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" nx_sandbox.control)
NX_CLI_CFLAGS = -std=gnu99 -O2 -g -Wall -Wextra -Werror \
	-DNX_VERSION='"$(NX_CLI_VERSION)"' -Isrc/elf \
	-I$(shell $(NX_CLI_PG_CONFIG) --includedir)
NX_CLI_LIBS = -L$(shell $(NX_CLI_PG_CONFIG) --libdir) -lpq
NX_CLI_SRC = $(wildcard control/nx/*.c) $(filter-out src/elf/test_%.c,$(wildcard src/elf/*.c))
NX_CLI_HDR = $(wildcard control/nx/*.h) $(wildcard src/elf/*.h)

# keep whatever the including Makefile's default goal is
nx_cli_saved_goal := $(.DEFAULT_GOAL)

# "make" builds it too, next to nx-init and nx-spawn
all: build/nx

build/nx: $(NX_CLI_SRC) $(NX_CLI_HDR) control/nx/nx.mk
	@mkdir -p build
	$(NX_CLI_CC) $(NX_CLI_CFLAGS) -o $@ $(NX_CLI_SRC) $(NX_CLI_LIBS)

.DEFAULT_GOAL := $(nx_cli_saved_goal)
