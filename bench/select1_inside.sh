#!/bin/bash
# bench/select1_inside.sh - SELECT 1 round trip from inside a sandbox vs the
# same program on the host, same run.  select1app (dynamically linked,
# libpq) connects with the sandbox's DATABASE_URL (its role, scram, over the
# cluster's unix socket that the sandbox sees at the same path) and times
# $NQ PQexec("SELECT 1") round trips.  Inside: pushed with nx.push, it runs
# the loop after it is ready and prints one result line, read back with
# nx.logs; each round restarts it (nx.restart).  Host: the same binary with
# the same URL (nx.database_url), run as the cluster's OS user.  Rounds
# alternate host and inside.  For reference, the baselines' pgconn -q on the
# host and inside a bare bwrap (superuser, peer) in the same rounds.
#
# Usage (as root): bench/select1_inside.sh      env: NQ=50000 ROUNDS=5
source "$(dirname "$0")/lib.sh"
NQ=${NQ:-50000}
ROUNDS=${ROUNDS:-5}
bench_init
report_to select1_inside

build_baseline
build_nxbench
gcc -O2 -Wall -Wextra -o "$WORK/select1app" "$BENCH/select1app.c" -I"$PGINC" -lpq
chmod 755 "$WORK/select1app"
machine_notes
RAW=$UWORK/s1
rm -rf "$RAW" && as_user mkdir -p "$RAW"
nx_up
echo "# cluster: fsync on; select1app $NQ queries per run after 1000 warm-up, $ROUNDS rounds"
sql "SELECT 1 FROM nx.create_sandbox('s1')" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null	# a second pass: the database follows the role
as_user "$WORK/nxbench" until -d "$CONN" -q "SELECT count(*) FROM pg_database WHERE datname = 'nx_s1'" -e 1 -i 10000 -t 30 >/dev/null
DEP=$(sql "SELECT deployment FROM nx.push('s1', pg_read_binary_file('$WORK/select1app'), args => ARRAY['-n', '$NQ'])")
URL=$(sql "SELECT nx.database_url('s1')")
echo "# deployment $DEP; URL $(sed 's/:[^:@]*@/:***@/' <<<"$URL")"

SBX=("${BWRAP[@]}" --ro-bind "$PGD/sock" /run/pg --ro-bind "$WORK/pgconn" /app/pgconn)
P0="port=$PGPORT dbname=postgres user=postgres"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
for ((r = 1; r <= ROUNDS; r++)); do
	# host: same binary, same URL
	bg_user env DATABASE_URL="$URL" "$WORK/select1app" -o -n "$NQ" >>"$RAW/host"
	# inside: round 1 is the first start, later rounds restart it
	[ "$r" = 1 ] || sql "SELECT 1 FROM nx.restart($DEP)" >/dev/null
	as_user "$WORK/nxbench" logwait -d "$CONN" -s s1 -D "$DEP" -g "select1 n=" -c "$r" -t 120 >>"$RAW/inside"
	# the baselines' pgconn -q, host and bare bwrap (superuser over peer)
	bg_user "$WORK/pgconn" -q "$NQ" "host=$PGD/sock $P0" | awk '{print $1/1000}' | med >>"$RAW/pgconn-host"
	bg_user "${SBX[@]}" /app/pgconn -q "$NQ" "host=/run/pg $P0" | awk '{print $1/1000}' | med >>"$RAW/pgconn-bwrap"
	echo "# round $r: host $(field median_us <"$RAW/host" | tail -1) us, inside $(field median_us <"$RAW/inside" | tail -1) us"
done

echo "## SELECT 1 round trip, select1app ($NQ per run; per-run median and p99 in us; median over $ROUNDS runs)"
for w in host inside; do
	printf '%-30s median_us=%s p99_us=%s  (runs: %s)\n' "select1app $w" \
		"$(field median_us <"$RAW/$w" | med)" "$(field p99_us <"$RAW/$w" | med)" \
		"$(field median_us <"$RAW/$w" | xargs | tr ' ' ,)"
done
printf '%-30s median_ms=%s\n' "pgconn -q host-unix" "$(med <"$RAW/pgconn-host")"
printf '%-30s median_ms=%s\n' "pgconn -q bwrap-privnet-unix" "$(med <"$RAW/pgconn-bwrap")"
H=$(field median_us <"$RAW/host" | med)
I=$(field median_us <"$RAW/inside" | med)
H99=$(field p99_us <"$RAW/host" | med)
I99=$(field p99_us <"$RAW/inside" | med)
R=$(ratio "$I" "$H")
echo "## ratio inside / host (target <= 1.1x): p50 ${R}x ($(verdict "$R" '<=' 1.1)); p99 $(ratio "$I99" "$H99")x"
echo "# per-round ratios: $(paste <(field median_us <"$RAW/inside") <(field median_us <"$RAW/host") | awk '{printf "%.2f ", $1/$2}')"
echo "# inside ran as: $(sql "SELECT 'uid ' || (SELECT split_part(split_part(pg_read_file('/proc/' || pid || '/status'), E'Uid:\t', 2), E'\t', 1)) FROM nx.status WHERE deployment = $DEP" 2>/dev/null || echo '?')"
cp -r "$RAW" "$RESULTS/select1_inside.raw"
