# src/branchcopy/branchcopy.mk -- nx-branch-copy, the pg_dump | pg_restore
# pipeline the supervisor runs to make a preview's branch database
# (src/supervisor/branch.c); included by the top-level Makefile (paths
# relative to the repository root).

BRANCHCOPY_CC ?= gcc
BRANCHCOPY_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement

all: build/nx-branch-copy

build/nx-branch-copy: src/branchcopy/nx_branch_copy.c
	@mkdir -p build
	$(BRANCHCOPY_CC) $(BRANCHCOPY_CFLAGS) $< -o $@
