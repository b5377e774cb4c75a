#!/bin/bash
# bench/create_to_db_ready.sh - nx.create_sandbox -> the sandbox's database and
# role exist (pg_database has nx_<name> owned by role nx_<name>), polled every
# $POLL_US us on one connection (nxbench create), side by side in the same
# run with plain CREATE DATABASE / CREATE ROLE ... LOGIN PASSWORD timed the
# way 03_pg_ddl.sh does (psql \timing, CHECKPOINT before each block).
#
# Cases, for nx.database_pool_size = 2 (default), 8 and 0 (create on demand):
#   as-is   the product: the database comes from the supervisor's next pass
#           after the one that created the role; with no other wake-up that
#           is the periodic pass, so this run uses nx.naptime = $NAPTIME
#           (1 s; TAP tests use 1 too), plus $N_DEFAULT samples at the
#           default nx.naptime = 10 s.
#   kick    the same, but once the role exists the client runs
#           SELECT pg_reload_conf(), which wakes the supervisor for one more
#           pass at once: what the product would give if that second pass
#           followed immediately (the fix described in BENCHMARKS.md).
# Each sample waits first until the pool is full and the supervisor quiet
# (isolated creates).  Then bursts of $BURST back-to-back creates (kick), to
# show what the pool size changes.  Rounds interleave everything.
#
# Usage (as root): bench/create_to_db_ready.sh
#   env: N=50 ROUNDS=5 POLL_US=1000 NAPTIME=1 N_DEFAULT=5 BURST=8 BURSTS=3
source "$(dirname "$0")/lib.sh"
N=${N:-50}
ROUNDS=${ROUNDS:-5}
POLL_US=${POLL_US:-1000}
NAPTIME=${NAPTIME:-1}
N_DEFAULT=${N_DEFAULT:-5}
BURST=${BURST:-8}
BURSTS=${BURSTS:-3}
PER=$((N / ROUNDS))
bench_init
report_to create_to_db_ready

build_nxbench
machine_notes
RAW=$UWORK/c2r
rm -rf "$RAW" && as_user mkdir -p "$RAW"
nx_up "nx.naptime = $NAPTIME" "nx.max_sandboxes = 2000"
echo "# cluster: fsync on, nx.naptime=$NAPTIME, poll every ${POLL_US} us"

set_pool() {
	sql "ALTER SYSTEM SET nx.database_pool_size = $1" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
}
seq_no=0
nx_create() {	# nx_create POOL KICK(0/1) COUNT BURST LABEL
	local k=; [ "$2" = 1 ] && k=-K
	seq_no=$((seq_no + 1))
	bg_user "$WORK/nxbench" create -d "$CONN" -p "b${seq_no}x" -n "$3" -B "$4" -P "$1" $k \
		-i "$POLL_US" -t 120 -o "$RAW/$5"
}
# plain LABEL TEMPLATE: $PER statements in one psql session, \timing (03_pg_ddl.sh)
plain() {
	local label=$1 tmpl=$2 i
	sql CHECKPOINT >/dev/null
	{ echo '\timing on'; for ((i = 1; i <= PER; i++)); do echo "${tmpl//@/${label}_${r}_$i}"; done; } |
		psql_ | awk '/^Time:/ {print $2}' >>"$RAW/$label"
}

echo "## create -> database and role ready, ms ($N per case in $ROUNDS interleaved rounds, each create isolated)"
for ((r = 1; r <= ROUNDS; r++)); do
	for pool in 2 8 0; do
		set_pool "$pool"
		nx_create "$pool" 0 "$PER" 1 "asis-pool$pool"
		nx_create "$pool" 1 "$PER" 1 "kick-pool$pool"
	done
	plain createdb "CREATE DATABASE p@;"
	plain createrole "CREATE ROLE p@ LOGIN PASSWORD 'pw-@-0123456789abcdef';"
	echo "# round $r done"
done
for pool in 2 8 0; do
	for v in asis kick; do
		printf '%-44s %s\n' "nx $v, pool $pool: total" "$(cut -f2 "$RAW/$v-pool$pool" | pctl)"
		printf '%-44s %s\n' "   nx.create_sandbox call itself" "$(cut -f3 "$RAW/$v-pool$pool" | pctl)"
		[ "$v" = kick ] || continue
		printf '%-44s %s\n' "   t0 -> role seen (first pass)" "$(cut -f4 "$RAW/$v-pool$pool" | pctl)"
		printf '%-44s %s\n' "   role seen + kick -> database ready" "$(awk '{print $2 - $4}' "$RAW/$v-pool$pool" | pctl)"
	done
done
printf '%-44s %s\n' "plain CREATE DATABASE (WAL_LOG, default)" "$(pctl <"$RAW/createdb")"
printf '%-44s %s\n' "plain CREATE ROLE LOGIN PASSWORD (scram)" "$(pctl <"$RAW/createrole")"

echo "## bursts: $BURST creates back to back, kick, $BURSTS bursts per pool size (ms, per sandbox)"
for pool in 2 8; do
	set_pool "$pool"
	nx_create "$pool" 1 $((BURST * BURSTS)) "$BURST" "burst-pool$pool"
	printf '%-44s %s\n' "nx kick, pool $pool, bursts of $BURST" "$(cut -f2 "$RAW/burst-pool$pool" | pctl)"
done

echo "## as-is at the default nx.naptime = 10 s, pool 2 ($N_DEFAULT samples)"
set_pool 2
sql "ALTER SYSTEM SET nx.naptime = 10" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
nx_create 2 0 "$N_DEFAULT" 1 asis-naptime10
printf '%-44s %s\n' "nx as-is, pool 2, nx.naptime 10 s" "$(cut -f2 "$RAW/asis-naptime10" | pctl)"

echo "## ratios (target: create -> ready p50 <= 10 ms)"
DB=$(med <"$RAW/createdb")
ROLE=$(med <"$RAW/createrole")
for f in asis-pool2 asis-pool8 asis-pool0 kick-pool2 kick-pool8 kick-pool0 burst-pool2 burst-pool8 asis-naptime10; do
	m=$(cut -f2 "$RAW/$f" | med)
	printf '%-16s p50=%9.3f ms  / CREATE DATABASE %6sx  / CREATE ROLE %6sx  target p50<=10ms: %s\n' \
		"$f" "$m" "$(ratio "$m" "$DB")" "$(ratio "$m" "$ROLE")" "$(verdict "$m" '<=' 10)"
done
echo "# sandboxes created: $(sql 'SELECT count(*) FROM nx.sandboxes'); databases: $(sql "SELECT count(*) FROM pg_database WHERE datname LIKE 'nx\_%'")"
cp -r "$RAW" "$RESULTS/create_to_db_ready.raw"
