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
# Usage (as root): bench/branch.sh
#   env: SIZES_MB="100" N=5 PGBIN=... WORK=... PGPORT=...
source "$(dirname "$0")/lib.sh"
SIZES_MB=${SIZES_MB:-100}
N=${N:-5}
bench_init
report_to branch

build_hello
machine_notes
nx_up "nx.naptime = 10" "nx.max_branch_size = '4GB'"
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
