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
	src/elf/nx_elf_ver.o \
	src/elf/nx_elf_lib.o \
	src/elf/nx_ldcache.o \
	src/elf/nx_view.o \
	src/elf/nx_libcheck.o \
	src/api/identity.o \
	src/api/verify.o \
	src/api/logs.o \
	src/api/check_setup.o \
	src/api/disk.o \
	src/api/host_limits.o \
	src/tenant/tenant_guc.o \
	src/tenant/tenant_shmem.o \
	src/tenant/login.o \
	src/tenant/quota_hook.o \
	src/supervisor/supervisor_guc.o \
	src/supervisor/shmem.o \
	src/supervisor/wake.o \
	src/supervisor/worker.o \
	src/supervisor/loop.o \
	src/supervisor/filter_keep.o \
	src/supervisor/requests.o \
	src/supervisor/sql_exec.o \
	src/supervisor/provision.o \
	src/supervisor/role_pool.o \
	src/supervisor/tenant_roles.o \
	src/supervisor/quota.o \
	src/supervisor/dbsetup.o \
	src/supervisor/hostsetup.o \
	src/supervisor/files.o \
	src/supervisor/rundir.o \
	src/supervisor/uidslice.o \
	src/supervisor/userns_keep.o \
	src/supervisor/userns_premap.o \
	src/supervisor/pipe_watch.o \
	src/supervisor/slots.o \
	src/supervisor/converge.o \
	src/supervisor/events.o \
	src/supervisor/spawn.o \
	src/supervisor/idle.o \
	src/supervisor/router_proc.o \
	src/supervisor/domains.o \
	src/supervisor/branch.o \
	src/runtime/launch.o \
	src/runtime/cgroup.o \
	src/runtime/util.o

# the current version is assembled from src/sql/*.sql; released versions
# and upgrade scripts are frozen in src/sql/versions/.  The upgrade from
# the last release to the current version is assembled too: its table
# changes (src/sql/upgrade/) followed by every part but 10_tables.sql, so
# functions and views are recreated from the same definitions a fresh
# install uses (t/004_upgrade.pl compares the two).
UPGRADE_FROM = 0.3.0
SQL_PARTS = $(sort $(wildcard src/sql/[0-9][0-9]_*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--$(UPGRADE_FROM)--$(EXTVERSION).sql
DATA = $(wildcard src/sql/versions/*.sql)

REGRESS = setup verify sandboxes push promote env security events supervisor_api scale_to_zero preview_databases
REGRESS_OPTS = --inputdir=sql --temp-instance=./tmp_check --temp-config=sql/nx_regress.conf
# a second schedule in an instance of its own that does not preload the
# library (make installcheck runs it first)
REGRESS_NO_PRELOAD = no_preload
TAP_TESTS = 1

# -Wno-unused-parameter: PostgreSQL's own headers (fmgr.h, ilist.h, bufpage.h)
# have inline functions with unused parameters; everything else of -Wextra
# stays on.
PG_CPPFLAGS = -Isrc -Isrc/elf -Isrc/include -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = build tmp_check tmp_check_no_preload

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies (Debian's is built without
# --enable-depend): rebuild every object when any of our headers changes,
# so that no object keeps an old struct layout after a header change
$(OBJS): $(wildcard src/*.h src/*/*.h src/include/*.h)

# Both scripts end with nx._sql_build(): which build of the SQL the
# database holds (a hash of every source part).  A development build of
# the same version cannot be updated in place; scripts/quickstart.sh
# compares this with the installed script to notice one.
SQL_BUILD = $(shell cat $(SQL_PARTS) src/sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION).sql | md5sum | cut -c1-16)
SQL_BUILD_FUNCTION = printf '%s\n' \
	"-- the build of this SQL (see the Makefile)" \
	"CREATE FUNCTION nx._sql_build() RETURNS text LANGUAGE sql IMMUTABLE AS \$$build\$$ SELECT '$(SQL_BUILD)'::text \$$build\$$;" \
	"REVOKE ALL ON FUNCTION nx._sql_build() FROM PUBLIC;"

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) src/sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION).sql
	cat $(SQL_PARTS) > $@
	$(SQL_BUILD_FUNCTION) >> $@

$(EXTENSION)--$(UPGRADE_FROM)--$(EXTVERSION).sql: src/sql/00_roles.sql \
		src/sql/upgrade/$(UPGRADE_FROM)--$(EXTVERSION).sql \
		$(filter-out src/sql/00_roles.sql src/sql/10_tables.sql,$(SQL_PARTS))
	cat $^ > $@
	$(SQL_BUILD_FUNCTION) >> $@

# programs outside the server: nx-init (inside each sandbox, static) and
# nx-spawn (the containment steps before bwrap); installed next to the
# library in $(pkglibdir)/nx_sandbox/
-include src/elf/fuzz/fuzz.mk
-include src/init/init.mk
-include src/runtime/runtime.mk
-include control/nx/nx.mk
-include src/router/router.mk
-include src/dnscheck/dnscheck.mk
-include src/branchcopy/branchcopy.mk

all: build/nx-init build/nx-spawn build/nx-router build/nx-dnscheck build/nx-branch-copy

# the nx command-line client goes where users find it
NX_BINDIR ?= /usr/local/bin

install: install-helpers install-client
.PHONY: install-helpers install-client
install-client: build/nx
	$(MKDIR_P) '$(DESTDIR)$(NX_BINDIR)'
	$(INSTALL_PROGRAM) build/nx '$(DESTDIR)$(NX_BINDIR)/nx'

install-helpers: build/nx-init build/nx-spawn build/nx-router build/nx-dnscheck build/nx-branch-copy
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)/nx_sandbox'
	$(INSTALL_PROGRAM) build/nx-init '$(DESTDIR)$(pkglibdir)/nx_sandbox/nx-init'
	$(INSTALL_PROGRAM) build/nx-spawn '$(DESTDIR)$(pkglibdir)/nx_sandbox/nx-spawn'
	$(INSTALL_PROGRAM) build/nx-router '$(DESTDIR)$(pkglibdir)/nx_sandbox/nx-router'
	$(INSTALL_PROGRAM) build/nx-dnscheck '$(DESTDIR)$(pkglibdir)/nx_sandbox/nx-dnscheck'
	$(INSTALL_PROGRAM) build/nx-branch-copy '$(DESTDIR)$(pkglibdir)/nx_sandbox/nx-branch-copy'

# the no-preload schedule (see REGRESS_NO_PRELOAD), before the main one
.PHONY: installcheck-no-preload
installcheck: installcheck-no-preload
installcheck-no-preload:
	$(pg_regress_installcheck) --inputdir=sql --temp-instance=./tmp_check_no_preload \
		--temp-config=sql/no_preload.conf --dbname=contrib_regression $(REGRESS_NO_PRELOAD)
