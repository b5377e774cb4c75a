#!/bin/bash
# bench/wake.sh - wake on request: time to first byte (curl's
# time_starttransfer) of a request for an asleep deployment of
# examples/hello (static), through the router the supervisor runs, side by
# side in the same run with:
#   awake        the same request while the deployment runs (the floor of
#                the router path: accept, route, hand-off, relay)
#   bwrap-cold   the baselines' bare bwrap cold start of their server, to
#                its first byte after listen() (sbx cold, no HTTP)
#
# Each sample: nx._mark_asleep(deployment) and a wake-up of the supervisor
# (what the supervisor does itself once
# it decides a deployment is idle), wait until nothing of it runs and the
# router's table says asleep, then one request with a fresh connection:
# the router calls nx.wake, the supervisor (woken at commit) starts the
# sandbox, the router hands the held request over once the app listens.
#
# With COMPARE=1 (the default) every sample is taken twice, one after the
# other: with the supervisor's wake fast path (nx.start_fast_path = on: the
# woken deployment is started alone) and without it (off: a full converge
# pass starts it, as before 0.4.0); the setting is switched with ALTER
# SYSTEM + reload before the deployment is put to sleep.
#
# EXTRA=K first pushes K more deployments of the same binary into another
# sandbox and waits until they run: the full pass the fast path avoids
# reads and checks every one of them.
#
# Usage (as root): bench/wake.sh      env: N=100 ROUNDS=5 COMPARE=1 EXTRA=0
source "$(dirname "$0")/lib.sh"
N=${N:-100}
ROUNDS=${ROUNDS:-5}
PER=$((N / ROUNDS))
COMPARE=${COMPARE:-1}
if [ "$COMPARE" = 1 ]; then MODES=(fast full); else MODES=(fast); fi
HTTP_PORT=${NX_HTTP_PORT:-18390}
bench_init
report_to wake

build_baseline
build_hello
machine_notes
RAW=$UWORK/wake
rm -rf "$RAW" && as_user mkdir -p "$RAW"

EXTRA=${EXTRA:-0}
NX_ROUTER=on NX_HTTP_PORT=$HTTP_PORT nx_up "nx.naptime = 10" "nx.listen_addresses = '127.0.0.1'" \
	"nx.max_deployments_per_sandbox = $((EXTRA + 20))" "nx.max_deployments_per_owner = $((EXTRA + 100))" "nx.default_preview_database = 'production'"
sql "SELECT 1 FROM nx.create_sandbox('wk', idle_timeout => '1 day')" >/dev/null
as_user cp "$WORK/hello" "$UWORK/hello"
if [ "$EXTRA" -gt 0 ]; then
	sql "SELECT 1 FROM nx.create_sandbox('wkx', idle_timeout => '1 day')" >/dev/null
	sql "SELECT count(nx.push('wkx', b)) FROM generate_series(1, $EXTRA), (SELECT pg_read_binary_file('$UWORK/hello') AS b) f" >/dev/null
	for ((i = 0; i < 1200; i++)); do
		[ "$(sql "SELECT count(*) FROM nx.status WHERE sandbox = 'wkx' AND state = 'ready'")" = "$EXTRA" ] && break
		sleep 0.1
	done
fi
D=$(sql "SELECT deployment FROM nx.push('wk', pg_read_binary_file('$UWORK/hello'))")
for ((i = 0; i < 600; i++)); do
	[ "$(sql "SELECT state FROM nx.status WHERE deployment = $D")" = ready ] && break
	sleep 0.05
done
sql "SELECT 1 FROM nx.promote('wk', $D)" >/dev/null
URL="http://127.0.0.1:$HTTP_PORT/"
ttfb() { curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}\n' -H 'Host: wk.localhost' --max-time 30 "$URL"; }
for ((i = 0; i < 200; i++)); do
	[ "$(ttfb | cut -d' ' -f1)" = 200 ] && break
	sleep 0.05
done
echo "# cluster: nx.naptime=10 (wakes come from commits, not the timer); router on 127.0.0.1:$HTTP_PORT; app: examples/hello static; $EXTRA other deployments running ($(sql "SELECT count(*) FROM nx.status WHERE sandbox = 'wkx' AND state = 'ready'") ready)"

# asleep: wait until its cgroup is empty and the router's table says so
asleep() {
	local i
	sql "SELECT nx._mark_asleep($D), nx._wake_supervisor()" >/dev/null
	for ((i = 0; i < 1000; i++)); do
		if [ "$(sql "SELECT state FROM nx.status WHERE deployment = $D")" = asleep ] &&
			[ -z "$(cat "$CGROOT/pids/$CGNAME/$NX_PREFIX$D/cgroup.procs" 2>/dev/null)" ]; then
			sleep 0.2		# the router's reload (NOTIFY) is well within this
			return 0
		fi
		sleep 0.01
	done
	echo "deployment $D did not go to sleep" >&2
	return 1
}

# fast_path on|off: switch the supervisor's wake fast path (before asleep,
# whose wait covers the reload and the pass the reload causes)
fast_path() {
	sql "ALTER SYSTEM SET nx.start_fast_path = $1" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
}

SB=("${BWRAP[@]}" --ro-bind "$WORK/srv" /app/srv)
fails=0
echo "## time to first byte, ms ($N samples per case in $ROUNDS interleaved rounds)"
for ((r = 1; r <= ROUNDS; r++)); do
	bg_user "$WORK/sbx" cold -n "$PER" -w 2 -o "$RAW/bwrap-cold" -- "${SB[@]}" /app/srv -p 8080 -r 3 >/dev/null
	for ((i = 0; i < PER; i++)); do
		read -r code t < <(ttfb)
		[ "$code" = 200 ] || fails=$((fails + 1))
		echo "$t" | awk '{printf "%.3f\n", $1 * 1000}' >>"$RAW/awake"
		for mode in "${MODES[@]}"; do
			[ "$COMPARE" = 1 ] && { [ "$mode" = fast ] && fast_path on || fast_path off; }
			asleep
			read -r code t < <(ttfb)
			[ "$code" = 200 ] || fails=$((fails + 1))
			echo "$t" | awk '{printf "%.3f\n", $1 * 1000}' >>"$RAW/wake-$mode"
			# where the time went: wake committed -> sandbox launched -> app
			# listening (the host's clock), and the rest of curl's time to
			# first byte: the router's part before the wake and after the
			# app listens.  curl's own start-up is in no phase (its clock
			# starts after it), so the rest is not split into before/after.
			sql "SELECT extract(epoch FROM e.at), extract(epoch FROM r.started_at), extract(epoch FROM r.ready_at)
				FROM nx.events e, nx.runtime r WHERE e.action = 'wake' AND e.deployment = $D AND r.deployment = $D
				ORDER BY e.id DESC LIMIT 1" | awk -F'|' -v ttfb="$t" '{
					printf "%.3f %.3f %.3f\n", ($2 - $1) * 1000, ($3 - $2) * 1000, (ttfb - ($3 - $1)) * 1000 }' >>"$RAW/phases-$mode"
		done
	done
done
[ "$COMPARE" = 1 ] && fast_path on
wakes=$(sql "SELECT count(*) FROM nx.events WHERE action = 'wake' AND deployment = $D")
echo "awake:      $(pctl <"$RAW/awake")"
for mode in "${MODES[@]}"; do
	echo "wake ($mode): $(pctl <"$RAW/wake-$mode")"
done
awk '{printf "%.3f\n", $1 / 1000}' "$RAW/bwrap-cold" >"$RAW/bwrap-cold-ms"
echo "bwrap-cold: $(pctl <"$RAW/bwrap-cold-ms")   (bare bwrap to listen(), no HTTP)"
for mode in "${MODES[@]}"; do
	echo "wake ($mode), by phase (ms; the wake event's time is its transaction's start):"
	echo "  nx.wake -> sandbox launched:   $(cut -d' ' -f1 "$RAW/phases-$mode" | pctl)"
	echo "  launched -> app listening:     $(cut -d' ' -f2 "$RAW/phases-$mode" | pctl)"
	echo "  the router's part (the rest):  $(cut -d' ' -f3 "$RAW/phases-$mode" | pctl)"
done
echo
cp "$RAW/wake-fast" "$RAW/wake"
if [ "$COMPARE" = 1 ]; then
	echo "wake p50 fast / full: $(ratio "$(med <"$RAW/wake-fast")" "$(med <"$RAW/wake-full")")x;" \
		"p99 fast / full: $(ratio "$(p99 <"$RAW/wake-fast")" "$(p99 <"$RAW/wake-full")")x"
fi
W50=$(med <"$RAW/wake"); W99=$(p99 <"$RAW/wake"); B50=$(med <"$RAW/bwrap-cold-ms")
echo "wake p50 / bwrap-cold p50: $(ratio "$W50" "$B50")x"
echo "wake p99: $W99 ms (target <= 30 ms: $(verdict "$W99" '<=' 30))"
echo "requests not answered 200: $fails of $(((1 + ${#MODES[@]}) * N)); wake events: $wakes (expected $((${#MODES[@]} * N)))"
