#!/bin/bash
# bench/idle_cpu.sh - the supervisor's CPU with $S idle running deployments
# (one hello app per sandbox, nobody calling anything), read from
# /proc/<pid>/stat (utime + stime) over $WINDOWS windows of $WINDOW_S
# seconds.  Two phases, each reported as median / min / max in % of one CPU:
#   early   right after every deployment is ready and the new rows are
#           analysed: the supervisor's first minutes (the tenant database
#           setup workers, the quota check's first full measurement);
#   steady  after $SETTLE_S more seconds.
# The target (issue 12) is <= 1 % of one CPU at 1,000.  Compare two builds
# side by side by running this twice at once with different PGBIN, WORK and
# PGPORT (BENCHMARKS.md gives the command used).
#
# Usage (as root): bench/idle_cpu.sh
#   env: S=1000 WINDOWS=6 WINDOW_S=30 SETTLE_S=240
source "$(dirname "$0")/lib.sh"
S=${S:-1000}
WINDOWS=${WINDOWS:-6}
WINDOW_S=${WINDOW_S:-30}
SETTLE_S=${SETTLE_S:-240}
bench_init
report_to "idle_cpu_$S"

build_nxbench
build_hello
machine_notes
nx_up "nx.max_sandboxes = $((S + 10))"
sql "SELECT count(nx.create_sandbox('idle' || g)) FROM generate_series(1, $S) g" >/dev/null
wait_databases idle "$S" 1800
sql "SELECT count(nx.push(s.name, pg_read_binary_file('$WORK/hello'))) FROM nx.sandboxes s WHERE s.name LIKE 'idle%'" >/dev/null
as_user "$WORK/nxbench" until -d "$CONN" -e "$S" -i 200000 -t 1800 \
	-q "SELECT count(*) FROM nx.runtime WHERE state IN ('ready', 'failed')" >/dev/null
echo "# $S deployments: $(sql "SELECT string_agg(state || ' ' || n, ', ') FROM (SELECT state, count(*) n FROM nx.runtime GROUP BY 1) x")"
psql_ -Atc "VACUUM ANALYZE" >/dev/null
SUP=$(sql "SELECT nx._supervisor_pid()")

ticks() { awk '{print $14 + $15}' "/proc/$SUP/stat"; }
# phase NAME: WINDOWS windows; prints each and the median, min and max
phase() {
	local name=$1 all=() a b pct
	for _ in $(seq "$WINDOWS"); do
		a=$(ticks); sleep "$WINDOW_S"; b=$(ticks)
		pct=$(awk -v d=$((b - a)) -v t="$(getconf CLK_TCK)" -v w="$WINDOW_S" 'BEGIN {printf "%.2f", d / t / w * 100}')
		all+=("$pct")
	done
	echo "$name: windows ${all[*]} (% of one CPU)"
	printf '%s\n' "${all[@]}" | sort -g | awk -v n="$name" -v S="$S" '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2;
		printf "%s: supervisor CPU with %d idle deployments: median %.2f %%, min %.2f, max %.2f (target <= 1 %%: %s)\n", n, S, m, v[1], v[NR], (m <= 1) ? "met" : "NOT met"}'
}
phase early
sleep "$SETTLE_S"
phase steady
