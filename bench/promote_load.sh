#!/bin/bash
# bench/promote_load.sh - promotions under load through nx-router: two
# deployments of one sandbox (bench/httpapp.c, which names the deployment
# in X-Deployment), wrk -t1 -cC on the production URL through nx-router,
# and meanwhile bench/promote_probe.c promotes them in turn N times: after
# each promote has committed it opens new connections one after the other
# until one is answered by the promoted deployment (promotion latency =
# commit -> that answer).  Twice: wrk with keep-alive (its connections stay
# on the deployment they started on, as I7 wants: they measure that open
# connections are not disturbed) and with "Connection: close" (every
# request a new connection, so wrk's own requests follow the promotes).
# Reported per mode: wrk's requests, non-2xx and socket errors, the
# answers per deployment (a wrk Lua script reads X-Deployment), the
# probes' failures (target: 0 failed requests in all), and promotion
# latency median / p99 / max and the nx.promote call itself.
#
# Usage (as root): bench/promote_load.sh
#   env: N=40 (promotes per mode, >= 20) C=32 PAUSE_MS=300 HTTP_BASE=18250
#        WORK PGPORT NX_ROUTER_BIN
source "$(dirname "$0")/lib.sh"
source "$BENCH/router_lib.sh"
N=${N:-40}
C=${C:-32}
PAUSE_MS=${PAUSE_MS:-300}
RPORT=$((HTTP_BASE + 5))
HOST=pl.localhost
bench_init
report_to promote_load

for t in wrk curl; do
	command -v "$t" >/dev/null || { echo "$t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
ports_free "$RPORT"
build_httpapp
build_router
gcc -O2 -Wall -Wextra -o "$WORK/promote_probe" "$BENCH/promote_probe.c" -I"$PGINC" -lpq
machine_notes
echo "# $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); wrk -t1 -c$C; $N promotes per mode, ${PAUSE_MS} ms apart"
RAW=$WORK/promote
rm -rf "$RAW" && mkdir -p "$RAW"
cat >"$RAW/count.lua" <<'EOF'
-- count the answers by deployment (the X-Deployment header)
counts = {}
function response(status, headers, body)
	local d = headers["X-Deployment"] or "none"
	if status ~= 200 then d = "status" .. status end
	counts[d] = (counts[d] or 0) + 1
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
	for _, t in ipairs(threads) do
		for k, v in pairs(t:get("counts")) do io.write(string.format("answer %s %d\n", k, v)) end
	end
end
EOF

nx_up
sql "SELECT 1 FROM nx.create_sandbox('pl')" >/dev/null
A=$(deploy pl "$WORK/httpapp")
B=$(deploy pl "$WORK/httpapp")
sql "SELECT 1 FROM nx.promote('pl', $A)" >/dev/null
start_router "$RPORT"
wait_http "$RPORT" "$HOST"
echo "# deployments $A and $B of sandbox pl; router pid $ROUTER_PID on port $RPORT"

# run MODE WRK-OPTIONS...: wrk in the background, the promotes, wrk stopped
# (SIGINT: it prints its report) one second after the last promote
run() {
	local mode=$1 wpid req rps p50 p99 non2xx sockerr
	shift
	setsid wrk -t1 -c"$C" -d3600s --timeout 10s --latency -s "$RAW/count.lua" -H "Host: $HOST" "$@" \
		"http://127.0.0.1:$RPORT/" >"$RAW/wrk.$mode" 2>&1 &
	wpid=$!
	BG_PGIDS+=("$wpid")	# setsid execs wrk: its pid is its process group
	sleep 1
	as_user "$WORK/promote_probe" -d "$CONN" -s pl -a "$A" -b "$B" -p "$RPORT" -H "$HOST" -n "$N" \
		-i "$PAUSE_MS" >"$RAW/probe.$mode" || { kill -INT "$wpid"; wait "$wpid" || true; return 1; }
	sleep 1
	kill -INT "$wpid"
	wait "$wpid" || true
	read -r req rps p50 p99 non2xx sockerr < <(wrk_fields "$RAW/wrk.$mode")
	local s
	s=$(grep '^summary' "$RAW/probe.$mode")
	f() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$s"; }
	echo
	echo "### wrk $mode, $N promotes"
	echo "wrk: $req requests ($rps req/s), non-2xx $non2xx, socket errors $sockerr; p50 ${p50} ms, p99 ${p99} ms"
	echo "answers: $(grep '^answer' "$RAW/wrk.$mode" | sed 's/^answer //' | sort | awk -v a="$A" -v b="$B" '{ n = ($1 == a) ? "a(" a ")" : ($1 == b) ? "b(" b ")" : $1; printf "%s %s  ", n, $2 }')"
	echo "probes: $(f probes_total) new connections, failed $(f failed)"
	echo "promotion latency (commit -> new connection answered by the new deployment): median $(f switch_median_ms) ms, p99 $(f switch_p99_ms) ms, max $(f switch_max_ms) ms"
	echo "  of which before the start of that connection: median $(f start_median_ms) ms, p99 $(f start_p99_ms) ms (the rest is its own round trip under the load)"
	echo "nx.promote call: median $(f call_median_ms) ms"
	echo "failed requests in all: $((non2xx + sockerr + $(f failed))) (target 0: $( [ $((non2xx + sockerr + $(f failed))) = 0 ] && echo met || echo 'NOT met'))"
	echo "$mode $req $non2xx $sockerr $(f failed) $(f switch_median_ms) $(f switch_p99_ms) $(f start_median_ms) $(f start_p99_ms) $(f call_median_ms)" >>"$RAW/results"
}
run keep-alive
run close -H 'Connection: close'
echo
echo "## summary"
printf '%-11s %9s %8s %8s %13s %11s %11s %10s %10s %10s\n' mode requests non-2xx sockerr probe-failed \
	switch_p50 switch_p99 start_p50 start_p99 promote_call
awk '{ printf "%-11s %9s %8s %8s %13s %11s %11s %10s %10s %10s\n", $1, $2, $3, $4, $5, $6 " ms", $7 " ms", $8 " ms", $9 " ms", $10 " ms" }' "$RAW/results"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp -r "$RAW" "$RESULTS/promote_load.raw"
