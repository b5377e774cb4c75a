#!/bin/bash
# bench/run_all.sh - every nx_sandbox benchmark in order, as root; density last
# (it takes longest).  Each script writes $WORK/results/<name>.txt (WORK
# defaults to /tmp/nx-bench) and its raw samples to <name>.raw/; this adds
# $WORK/results/all.txt.  A failing script does not stop the others; the
# exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")"
WORK=${WORK:-/tmp/nx-bench}
export WORK
mkdir -p "$WORK/results"
(
	rc=0
	for s in push_to_ready.sh create_to_db_ready.sh select1_inside.sh density.sh; do
		echo "=== $s"
		./"$s" || { echo "=== $s FAILED"; rc=1; }
	done
	exit $rc
) 2>&1 | tee "$WORK/results/all.txt"
exit "${PIPESTATUS[0]}"
