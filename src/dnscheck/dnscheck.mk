# src/dnscheck/dnscheck.mk -- nx-dnscheck, the custom-domain TXT lookup the
# supervisor runs (src/supervisor/domains.c); included by the top-level
# Makefile (paths relative to the repository root).

DNSCHECK_CC ?= gcc
DNSCHECK_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement

all: build/nx-dnscheck

build/nx-dnscheck: src/dnscheck/nx_dnscheck.c
	@mkdir -p build
	$(DNSCHECK_CC) $(DNSCHECK_CFLAGS) $< -lresolv -o $@
