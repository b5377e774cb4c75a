#!/usr/bin/env bash
# scripts/test-all.sh - the whole test suite, from a fresh clone.
#
# As root (CI, or a fresh machine): installs the packages, builds and
# installs the extension, then runs every suite as the unprivileged
# "postgres" user (PostgreSQL refuses to run as root) in a scratch copy of
# the tree.  As any other user: assumes that was done and only runs the
# suites.
#
# As root it also prepares the host the way a DBA would with
# control/nx-setup (a subordinate uid/gid range for the test user, cgroup
# delegation), and then requires the sandbox tests to run rather than skip;
# and it mounts a 256 MB tmpfs for t/042_exhaustion.pl to fill
# (NX_TEST_SMALL_FS), unmounted on exit.
#
# Suites: the supervisor's call graph (no circle between its files), the
# ELF reader's and the HTTP head parser's unit tests and short
# fuzz runs (ELF, ld.so.cache, HTTP heads, HTTP framing), the quickstart (as root: twice, on cluster 15/nxci, removed
# afterwards), nx-init's test,
# the sandbox runtime's test, pg_regress (sql/, expected/) and TAP
# (t/*.pl).  Exits non-zero on any failure and prints regression.diffs and
# the TAP logs when something failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNAS=${NX_TEST_USER:-postgres}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0
failed=0

# step NAME CMD...: run one suite, count it, keep going on failure.  It
# returns 0 either way (a bare call must not end the script under set -e);
# last_step_failed says how the suite ended.
last_step_failed=0
step() {
	local name=$1; shift
	echo "=== $name"
	if "$@"; then
		passed=$((passed + 1))
		last_step_failed=0
	else
		failed=$((failed + 1))
		last_step_failed=1
		echo "=== FAILED: $name"
	fi
}

as_user() { if [ "$(id -u)" = 0 ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }

if [ "$(id -u)" = 0 ]; then
	scripts/install-deps.sh --test
	make -s -j2
	make -s install
	control/nx-setup --user "$RUNAS"
	export NX_REQUIRE_SANDBOXES=1
	# the suites write into the tree (results/, tmp_check/): give the test
	# user its own copy rather than changing the clone's ownership
	WORK=$(mktemp -d /tmp/nx-test.XXXXXX)
	# a small file system for t/042_exhaustion.pl to fill: a cluster's
	# data directory on a 256 MB tmpfs, unmounted again at the end
	SMALL_FS=$WORK.smallfs
	mkdir -p "$SMALL_FS"
	# the library check's host fixtures (t/050): a library found only through
	# /etc/ld.so.conf.d, one cached in a directory sandboxes do not see
	sh t/fixtures/ld-fixtures.sh install
	trap 'umount "$SMALL_FS" 2>/dev/null; rmdir "$SMALL_FS" 2>/dev/null; rm -rf "$WORK";
		sh "$ROOT/t/fixtures/ld-fixtures.sh" remove' EXIT
	if mount -t tmpfs -o size=256m,mode=0755 nx-test-smallfs "$SMALL_FS"; then
		chown "$RUNAS": "$SMALL_FS"
		export NX_TEST_SMALL_FS=$SMALL_FS
	else
		echo "could not mount a tmpfs: t/042_exhaustion.pl skips its disk-full part"
	fi
	cp -a "$ROOT/." "$WORK/"
	chown -R "$RUNAS": "$WORK"
	chmod 755 "$WORK"
else
	WORK=$ROOT
fi
# where the TAP tests note their clusters (see sweep_test_cgroups)
SYSID_FILE=$WORK/tmp_check_sysids
: > "$SYSID_FILE"
[ "$(id -u)" = 0 ] && chown "$RUNAS": "$SYSID_FILE"
export NX_TEST_SYSID_FILE=$SYSID_FILE

step "supervisor call graph (no circle between files)" perl "$WORK/scripts/check-supervisor-calls.pl"
step "ELF reader unit test" make -s -C "$WORK" elf-unit-test
step "ELF reader fuzz smoke run (${FUZZ_SECONDS}s)" make -s -C "$WORK" fuzz-elf FUZZ_SECONDS="$FUZZ_SECONDS"
step "ld.so.cache reader fuzz smoke run (${FUZZ_SECONDS}s)" make -s -C "$WORK" fuzz-ldcache FUZZ_SECONDS="$FUZZ_SECONDS"
step "HTTP head parser unit test" make -s -C "$WORK" router-unit-test
step "HTTP head parser fuzz smoke run (${FUZZ_SECONDS}s)" make -s -C "$WORK" fuzz-http-head FUZZ_SECONDS="$FUZZ_SECONDS"
step "HTTP framing fuzz smoke run (${FUZZ_SECONDS}s)" make -s -C "$WORK" fuzz-http-frame FUZZ_SECONDS="$FUZZ_SECONDS"
step "nx-init test" as_user make -s -C "$WORK" init-test
step "sandbox runtime test" as_user make -s -C "$WORK" runtime-test
if [ "$(id -u)" = 0 ]; then
	# the README's first command, on a cluster of its own, twice (the
	# second run must reuse everything), then removed again
	qs() { NX_CLUSTER=nxci NX_PORT=5497 NX_HTTP_PORT=18097 scripts/quickstart.sh; }
	step "quickstart, first run" qs
	step "quickstart, second run" qs
	pg_dropcluster 15 nxci --stop >/dev/null 2>&1 || true
fi
# installcheck: the pg_regress and TAP suites, their output kept to name
# what failed at the end
installcheck() {
	as_user env NX_REQUIRE_SANDBOXES="${NX_REQUIRE_SANDBOXES:-}" \
		NX_TEST_SMALL_FS="${NX_TEST_SMALL_FS:-}" NX_TEST_SYSID_FILE="$SYSID_FILE" \
		make -C "$WORK" installcheck 2>&1 | tee "$INSTALLCHECK_OUT"
}
INSTALLCHECK_OUT=$(mktemp /tmp/nx-installcheck.XXXXXX)
step "pg_regress and TAP suites" installcheck
installcheck_failed=$last_step_failed

# test clusters end with an immediate stop and are deleted, so no later
# supervisor of theirs removes their (empty) per-deployment cgroups.  Each
# test cluster's system identifier was noted (t/NxTest.pm,
# NX_TEST_SYSID_FILE): remove the cgroups named after those, and only
# those.  Other clusters on this host (the quickstart's, still serving, or
# anyone's) keep theirs; rmdir removes only empty ones, and a failure is
# not this run's business.
sweep_test_cgroups() {
	local sysid d
	[ -s "$SYSID_FILE" ] || return 0
	sort -u "$SYSID_FILE" | while read -r sysid; do
		for d in /sys/fs/cgroup/nx_sandbox /sys/fs/cgroup/unified/nx_sandbox \
			/sys/fs/cgroup/memory/nx_sandbox /sys/fs/cgroup/pids/nx_sandbox \
			/sys/fs/cgroup/cpu/nx_sandbox; do
			for c in "$d"/c"$sysid"_d*; do
				if [ -d "$c" ]; then rmdir "$c" 2>/dev/null || true; fi
			done
		done
	done
	return 0
}
if [ "$(id -u)" = 0 ]; then
	sweep_test_cgroups
fi

# what failed, last, where a reader of the run's end sees it: the
# regression diffs, and the end of the log of each TAP test prove named,
# with its servers' abnormal process ends
if [ "$installcheck_failed" = 1 ]; then
	if [ -f "$WORK/regression.diffs" ]; then
		echo "=== regression.diffs (first 80 lines)"
		head -n 80 "$WORK/regression.diffs"
	fi
	for t in $(awk '/^t\/[^ ]+\.pl +\(Wstat/ {print $1}' "$INSTALLCHECK_OUT"); do
		log="$WORK/tmp_check/log/regress_log_$(basename "$t" .pl)"
		if [ -f "$log" ]; then
			echo "=== $t failed; the end of $log:"
			tail -n 40 "$log"
		fi
		# its servers' logs: which process ended abnormally, and how (a
		# crash restart shows in the test's log only as its clients' errors)
		for slog in "$WORK/tmp_check/log/$(basename "$t" .pl)"_*.log; do
			[ -f "$slog" ] || continue
			echo "=== $t failed; abnormal ends and their context in $slog:"
			grep -E -B3 "terminated by signal|exited with exit code [^01]|PANIC|TRAP:" "$slog" | tail -n 40 || true
		done
	done
fi
rm -f "$INSTALLCHECK_OUT"

echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
