#!/bin/bash
# bench/autovacuum_idle.sh - what $S idle sandboxes (a database each, no
# deployment) cost the host through autovacuum, which visits every used
# database once per autovacuum_naptime: the whole host's busy CPU (from
# /proc/stat, in % of one CPU) over $WINDOW_S seconds, $ROUNDS rounds
# alternating the default naptime (1min) with the one nx.check_setup()
# advises (1.2 s per database, in whole minutes), on the same cluster;
# medians per setting.  nx.check_setup()'s "autovacuum visits" row is printed for both.
#
# Usage (as root): bench/autovacuum_idle.sh      env: S=500 ROUNDS=2 WINDOW_S=60
source "$(dirname "$0")/lib.sh"
S=${S:-500}
ROUNDS=${ROUNDS:-2}
WINDOW_S=${WINDOW_S:-60}
bench_init
report_to "autovacuum_idle_$S"

build_nxbench
machine_notes
nx_up "nx.max_sandboxes = $((S + 10))"
sql "SELECT count(nx.create_sandbox('av' || g)) FROM generate_series(1, $S) g" >/dev/null
wait_databases av "$S"
DBS=$(sql "SELECT count(*) FROM pg_database WHERE datallowconn")
ADV=$(( (DBS * 12 + 599) / 600 * 60 ))	# 60 * ceil(DBS * 1.2 / 60), as nx.check_setup
echo "# $S sandboxes, $DBS databases; advised naptime ${ADV}s; settling 30 s"
sleep 30

busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }	# USER_HZ 100
# window NAPTIME: set it, let one naptime's schedule start, measure
window() {
	sql "ALTER SYSTEM SET autovacuum_naptime = '$1'" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
	sleep 5
	local b0 b1
	b0=$(busy); sleep "$WINDOW_S"; b1=$(busy)
	awk -v d=$((b1 - b0)) -v w="$WINDOW_S" 'BEGIN {printf "%.1f\n", d / w}'
}
RAW=$UWORK/autovacuum_idle
rm -rf "$RAW" && as_user mkdir -p "$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
	for nap in 60s "${ADV}s"; do
		v=$(window "$nap")
		echo "round $r: autovacuum_naptime = $nap: host busy $v % of one CPU"
		echo "$v" >>"$RAW/$nap"
	done
done
echo "## medians (% of one CPU, the whole host, $ROUNDS windows of $WINDOW_S s each)"
for nap in 60s "${ADV}s"; do
	sql "ALTER SYSTEM SET autovacuum_naptime = '$nap'" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	printf 'autovacuum_naptime = %-6s %s %%   check_setup: %s\n' "$nap" "$(med <"$RAW/$nap")" \
		"$(sql "SELECT ok || ' | ' || detail FROM nx.check_setup() WHERE check_name = 'autovacuum visits'")"
done
