#!/bin/bash
# bench/branch.sh - push -> ready of a branch preview (the supervisor copies
# the production database: pg_dump as the production role | pg_restore as
# the branch role, low priority, then the app starts) against a plain
# `pg_dump -Fc -Z0 | pg_restore` of the same database into a new database
# by the superuser, measured side by side in the same run, alternating.
#
#   nx/branch   t0 just before SELECT nx.push(..., database => 'branch'),
#               end when nx.status shows the preview ready (polled every
#               50 ms); then the preview is removed and its database dropped
#               (untimed)
#   plain       CREATE DATABASE + pg_dump | pg_restore, wall time
#
# The production database: one table of SIZE_MB of rows (id, 120 bytes of
# text) with its primary key, owned by the sandbox's role.
#
# Then production's latency while a branch of its database is made
# (P99_MB > 0): a production app that writes a row per request (t/apps/
# dbapp.c, on a database of P99_MB) under wrk through nx-router, for
# WRK_SECONDS with no copy running and WRK_SECONDS while branch previews
# are pushed, copied and removed one after another, alternating, ROUNDS
# times; medians of p50 and p99, and the ratio (target: p99 <= 1.2x).
#
# Usage (as root): bench/branch.sh
#   env: SIZES_MB="100" N=5 P99_MB=500 ROUNDS=3 WRK_SECONDS=10 C=8
#        RATE=<nx.branch_copy_rate, MB/s; default: the setting's default>
#        PGBIN=... WORK=... PGPORT=... HTTP_BASE=...
source "$(dirname "$0")/lib.sh"
source "$BENCH/router_lib.sh"
SIZES_MB=${SIZES_MB:-100}
N=${N:-5}
P99_MB=${P99_MB:-500}
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-10}
C=${C:-8}
bench_init
report_to branch

build_hello
build_router
machine_notes
nx_up "nx.naptime = 10" "nx.max_branch_size = '4GB'" "nx.max_database_quota = '8GB'" "nx.default_database_quota = '8GB'" \
	${RATE:+"nx.branch_copy_rate = $RATE"}
echo "# nx.branch_copy_rate = $(sql 'SHOW nx.branch_copy_rate') MB/s"
sql "SELECT 1 FROM nx.create_sandbox('bb')" >/dev/null
sql "SELECT deployment FROM nx.push('bb', pg_read_binary_file('$WORK/hello'))" >/dev/null
for ((i = 0; i < 200; i++)); do
	[ "$(sql "SELECT state FROM nx.status WHERE sandbox = 'bb'")" = ready ] && break
	sleep 0.1
done
now_ms() { date +%s%3N; }

for size in $SIZES_MB; do
	rows=$((size * 1024 * 1024 / 200))
	as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGD/sock" -p "$PGPORT" -U postgres -d nx_bb -c "
		SET ROLE nx_bb; DROP TABLE IF EXISTS t;
		CREATE TABLE t (id int PRIMARY KEY, pad text);
		INSERT INTO t SELECT g, repeat(md5(g::text), 4) || 'abcdefgh' FROM generate_series(1, $rows) g;" \
		-c "VACUUM ANALYZE t"
	dbsize=$(sql "SELECT pg_database_size('nx_bb')")
	echo "# production database nx_bb: $rows rows, $((dbsize / 1048576)) MB (pg_database_size)"
	: >"$UWORK/nx.$size"; : >"$UWORK/plain.$size"
	for ((r = 1; r <= N; r++)); do
		# nx: push -> preview ready
		t0=$(now_ms)
		d=$(sql "SELECT deployment FROM nx.push('bb', pg_read_binary_file('$WORK/hello'), database => 'branch')")
		while [ "$(sql "SELECT state FROM nx.status WHERE deployment = $d")" != ready ]; do
			st=$(sql "SELECT state || ' ' || coalesce(last_error, '') FROM nx.status WHERE deployment = $d")
			case "$st" in failed*|crashloop*) echo "deployment $d: $st" >&2; exit 1 ;; esac
			sleep 0.05
		done
		echo $(( $(now_ms) - t0 )) >>"$UWORK/nx.$size"
		sql "SELECT nx.remove('bb', $d)" >/dev/null
		for ((i = 0; i < 600; i++)); do
			[ "$(sql "SELECT count(*) FROM pg_database WHERE datname = 'nx_bb_$d'")" = 0 ] && break
			sleep 0.1
		done

		# plain: the same copy by hand, as the superuser, full priority
		t0=$(now_ms)
		sql "CREATE DATABASE plain_copy" >/dev/null
		as_user sh -c "'$PGBIN/pg_dump' -Fc -Z0 -h '$PGD/sock' -p $PGPORT -U postgres -d nx_bb |
			'$PGBIN/pg_restore' --no-owner --no-privileges --exit-on-error -h '$PGD/sock' -p $PGPORT -U postgres -d plain_copy"
		echo $(( $(now_ms) - t0 )) >>"$UWORK/plain.$size"
		sql "DROP DATABASE plain_copy" >/dev/null
	done
	nxm=$(med <"$UWORK/nx.$size"); plm=$(med <"$UWORK/plain.$size")
	echo "size ${size} MB: nx/branch push->ready ms: $(pctl <"$UWORK/nx.$size")"
	echo "size ${size} MB: plain pg_dump|pg_restore ms: $(pctl <"$UWORK/plain.$size")"
	echo "size ${size} MB: ratio nx/plain (median): $(ratio "$nxm" "$plm")"
done

[ "$P99_MB" -gt 0 ] || exit 0

# --- production's latency while branches of its database are made
RPORT=$HTTP_BASE
ports_free "$RPORT"
gcc -O2 -Wall -Wextra -I"$PGINC" -o "$WORK/dbapp" "$REPO/t/apps/dbapp.c" -lpq
chmod 755 "$WORK/dbapp"
sql "SELECT 1 FROM nx.create_sandbox('pw')" >/dev/null
for ((i = 0; i < 300; i++)); do
	[ "$(sql "SELECT count(*) FROM pg_database WHERE datname = 'nx_pw'")" = 1 ] && break
	sleep 0.1
done
rows=$((P99_MB * 1024 * 1024 / 200))
as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGD/sock" -p "$PGPORT" -U postgres -d nx_pw -c "
	SET ROLE nx_pw; CREATE TABLE t (id int PRIMARY KEY, pad text);
	INSERT INTO t SELECT g, repeat(md5(g::text), 4) || 'abcdefgh' FROM generate_series(1, $rows) g;" \
	-c "VACUUM ANALYZE t"
prod=$(deploy pw "$WORK/dbapp")
sql "SELECT 1 FROM nx.promote('pw', $prod)" >/dev/null
start_router "$RPORT"
wait_http "$RPORT" pw.localhost
echo "# production: dbapp (a row per request) on nx_pw, $(( $(sql "SELECT pg_database_size('nx_pw')") / 1048576 )) MB; wrk -t1 -c$C for ${WRK_SECONDS} s through nx-router"

# copies_while PIDFILE: push branch previews of pw one after another until
# PIDFILE is removed; prints how many became ready
copies_while() {
	local n=0 d
	while [ -e "$1" ]; do
		d=$(sql "SELECT deployment FROM nx.push('pw', pg_read_binary_file('$WORK/dbapp'), database => 'branch')")
		while [ -e "$1" ] && [ "$(sql "SELECT state FROM nx.status WHERE deployment = $d")" != ready ]; do
			sleep 0.05
		done
		[ "$(sql "SELECT state FROM nx.status WHERE deployment = $d")" = ready ] && n=$((n + 1))
		sql "SELECT nx.remove('pw', $d)" >/dev/null
	done
	echo "$n"
}

: >"$UWORK/p99.none"; : >"$UWORK/p99.copy"; : >"$UWORK/p50.none"; : >"$UWORK/p50.copy"
for ((r = 1; r <= ROUNDS; r++)); do
	for mode in none copy; do
		flag=$UWORK/copying.$r
		if [ "$mode" = copy ]; then
			touch "$flag"
			copies_while "$flag" >"$UWORK/copies.$r" &
			cpid=$!
			sleep 0.5	# the first copy is under way
		fi
		wrk -t1 -c"$C" -d"${WRK_SECONDS}s" --timeout 10s --latency -H "Host: pw.localhost" \
			"http://127.0.0.1:$RPORT/" >"$UWORK/wrk.$mode.$r" 2>&1
		if [ "$mode" = copy ]; then
			rm -f "$flag"
			wait "$cpid"
		fi
		read -r req rps p50 p99 non2xx sockerr < <(wrk_fields "$UWORK/wrk.$mode.$r")
		echo "$p99" >>"$UWORK/p99.$mode"
		echo "$p50" >>"$UWORK/p50.$mode"
		echo "round $r $mode: $req requests, $rps req/s, p50 $p50 ms, p99 $p99 ms, non-2xx $non2xx, socket errors $sockerr$([ "$mode" = copy ] && echo ", branches made $(cat "$UWORK/copies.$r")")"
	done
done
p99n=$(med <"$UWORK/p99.none"); p99c=$(med <"$UWORK/p99.copy")
echo "production p50 ms: no copy $(med <"$UWORK/p50.none"), while copying $(med <"$UWORK/p50.copy")"
echo "production p99 ms: no copy $p99n, while copying $p99c; ratio $(ratio "$p99c" "$p99n") (target <= 1.2: $(verdict "$(ratio "$p99c" "$p99n")" '<=' 1.2))"
