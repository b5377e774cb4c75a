#!/usr/bin/env bash
# bench/chaos.sh [SECONDS] - the long chaos run (default 600 s): the same
# run as t/043_chaos.pl (t/NxChaos.pm), for SECONDS, on a throwaway TAP
# cluster with fsync on, killing with SIGKILL an app process, an nx-init,
# the router or the supervisor every 5-15 s (each in turn, shuffled) and
# every 10th time the whole cluster (pg_ctl -m immediate, then start),
# while 3 clients push/promote/roll back/stop/start/remove on four
# sandboxes and wrk (1 thread, 4 connections each) hits two production
# URLs through the router the supervisor runs.
#
# Prints the report (converge time per kind p50/p99/max, wrk requests and
# failures, final invariants, lost rows) and writes it to
# $RESULTS/chaos.txt with each kill's converge trace.  Run as root (the
# suite runs as postgres, like every bench script); uses the installed
# extension ($PGBIN/pg_config; PG_CONFIG to use another install).  The
# cluster, the workload, wrk and the cluster's cgroups are gone afterwards,
# also on failure or Ctrl-C.
#
# Knobs: NX_CHAOS_GAP=5,15 (seconds between converge and the next kill),
# NX_CHAOS_POSTMASTER_EVERY=10.
set -euo pipefail
SECS=${1:-600}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
WORK=${WORK:-/tmp/nx-bench}
RESULTS=${RESULTS:-$WORK/results}
RUNAS=${RUNAS:-postgres}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PGBIN/pg_config}

if [ "$(id -u)" != 0 ]; then
	echo "run as root (the script drops to $RUNAS itself)" >&2
	exit 1
fi
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh" >&2; exit 1; }
mkdir -p "$WORK" "$RESULTS"
TREE=$(mktemp -d "$WORK/chaos.XXXXXX")
REPORT=$TREE/report.txt

# cleanup: the TAP harness stops its cluster (the supervisor takes its
# sandboxes down); remove this cluster's empty cgroups, then the tree
cleanup() {
	local sysid
	sysid=$(sed -n 's/^system identifier //p' "$REPORT" 2>/dev/null || true)
	if [ -n "$sysid" ]; then
		hex=$(printf '%016x' "$sysid")
		for d in /sys/fs/cgroup/*/nx_sandbox/c${hex}_d* /sys/fs/cgroup/nx_sandbox/c${hex}_d*; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
	fi
	[ -f "$REPORT" ] && cp "$REPORT" "$RESULTS/chaos.txt"
	if [ -d "$TREE/tmp_check/log" ]; then
		mkdir -p "$RESULTS/chaos.raw"
		cp "$TREE"/tmp_check/log/regress_log_043_chaos "$RESULTS/chaos.raw/" 2>/dev/null || true
	fi
	rm -rf "$TREE"
	true
}
trap cleanup EXIT

cp -a "$REPO/." "$TREE/"
chown -R "$RUNAS": "$TREE"
chmod 755 "$TREE" "$WORK"
echo "# chaos run: ${SECS} s, repo $(git -C "$REPO" log -1 --format=%h 2>/dev/null || echo '?'), $("$PG_CONFIG" --version)"
echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
set +e
runuser -u "$RUNAS" -- env PATH="$("$PG_CONFIG" --bindir):$PATH" NX_REQUIRE_SANDBOXES=1 \
	NX_CHAOS_SECONDS="$SECS" NX_CHAOS_FSYNC=1 NX_CHAOS_REPORT="$REPORT" \
	NX_CHAOS_GAP="${NX_CHAOS_GAP:-5,15}" NX_CHAOS_POSTMASTER_EVERY="${NX_CHAOS_POSTMASTER_EVERY:-10}" \
	make -s -C "$TREE" installcheck PG_CONFIG="$PG_CONFIG" REGRESS= PROVE_TESTS=t/043_chaos.pl PROVE_FLAGS=-v \
	>"$TREE/prove.out" 2>&1
rc=$?
set -e
grep -E '^# kill [0-9]+:' "$TREE/prove.out" | sed 's/^# //' || true
echo
if [ -f "$REPORT" ]; then sed -n '/^chaos run/,/^system identifier/p' "$REPORT" | grep -v '^system identifier'; fi
grep -E '^(not ok|Result|Failed)' "$TREE/prove.out" || true
echo "# report and each kill's converge trace: $RESULTS/chaos.txt; TAP log: $RESULTS/chaos.raw/"
exit $rc
