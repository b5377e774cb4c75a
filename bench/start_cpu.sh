#!/bin/bash
# bench/start_cpu.sh - where the CPU of a mass start goes: the run time of
# every task on the host (perf sched record: each context switch, so every
# short-lived process is counted whole), summed per kind of process and
# divided by the number of starts, side by side in one run:
#
#   1. bare bwrap: sbx mass -n S -k 2 (the baselines' 02_mass.sh case)
#   2. nx, first starts: S new sandboxes (made, their databases ready and
#      the supervisor quiet), then one statement pushes examples/hello into
#      each; recorded from before the push until every deployment is ready
#   3. nx, again: the same S deployments stopped, then started in one
#      statement (their user namespaces are kept from step 2)
#
# A start on this 2-CPU machine is CPU-bound (the host is busy from the
# first start to the last ready), so CPU per start sets the rate: two CPUs
# over the sum per start is the rate's ceiling.  Kinds: the supervisor (its
# pid), other backends (the push or start statement, the poller,
# autovacuum), nx-spawn, newuidmap + newgidmap, bwrap (the tasks that end
# as bwrap: nx-spawn once it exec'd bwrap, bwrap's monitor), nx-init (the
# tasks that end as nx-init: bwrap's setup of the sandbox before it execs
# nx-init, and nx-init), the app (hello; srv for bare), and the rest of
# the host.  Needs perf (linux-perf).
#
# Usage (as root): bench/start_cpu.sh      env: S=200
source "$(dirname "$0")/lib.sh"
S=${S:-200}
bench_init
report_to start_cpu
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }

build_baseline
build_nxbench
build_hello
machine_notes
RAW=$WORK/start_cpu
rm -rf "$RAW" && mkdir -p "$RAW"
PERF_PID=

# perf_start FILE / perf_stop: record every context switch on the host
perf_start() {
	perf sched record -o "$1" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 1
}
perf_stop() {
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
}
# on any exit: stop perf, then bench_cleanup (with the script's status)
on_exit() {
	local rc=$?
	[ -z "$PERF_PID" ] || kill -INT "$PERF_PID" 2>/dev/null || true
	(exit $rc)
	bench_cleanup
}
trap on_exit EXIT

# per_start FILE N APP SUPERVISOR_PID: ms of CPU per start for each kind
per_start() {
	perf sched timehist -i "$1" -s 2>/dev/null | awk '/Runtime summary/,/Idle stats/' |
		awk -v n="$2" -v app="$3" -v sup="$4" '
		NF >= 7 && $2 ~ /^[0-9]+$/ {
			split($1, a, "["); comm = a[1]; pid = a[2]; sub(/\].*/, "", pid)
			if (comm == "postgres") k = (pid == sup) ? "supervisor" : "other backends"
			else if (comm == "newuidmap" || comm == "newgidmap") k = "newuidmap + newgidmap"
			else if (comm == "nx-spawn" || comm == "bwrap" || comm == "nx-init") k = comm
			else if (comm ~ app) k = "app"
			else k = "rest of the host"
			ms[k] += $4; total += $4
		}
		END {
			for (k in ms) printf "%s\t%.1f\n", k, ms[k] / n
			printf "total\t%.1f\n", total / n
		}'
}

echo "## 1. bare bwrap: sbx mass -n $S -k 2"
SB=("${BWRAP[@]}" --ro-bind "$WORK/srv" /app/srv)
perf_start "$RAW/bare.data"
as_user "$WORK/sbx" mass -n "$S" -k 2 -- "${SB[@]}" /app/srv -p 8080 -r 3 | tee "$RAW/bare.out"
perf_stop
per_start "$RAW/bare.data" "$S" '^srv$' 0 >"$RAW/bare.ms"

echo "## nx_sandbox: $S new sandboxes"
nx_up "nx.max_sandboxes = $((S + 10))"
sql "SELECT count(nx.create_sandbox('dn' || g)) FROM generate_series(1, $S) g" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_databases d "$S"
SUP=$(sql "SELECT nx._supervisor_pid()")
# quiet: the supervisor used under 20 ms of CPU in the last second
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
for _ in $(seq 120); do
	a=$(cpu_ms "$SUP"); sleep 1; b=$(cpu_ms "$SUP")
	[ $((b - a)) -lt 20 ] && break
done
echo "# user namespaces mapped ahead of the first start: $(grep -c 'mapped ahead of its first start' "$PGD/server.log" || true) of $S"
sql CHECKPOINT >/dev/null

DONE="SELECT CASE WHEN count(*) FILTER (WHERE state IN ('ready', 'failed', 'crashloop')) >= $S THEN 'done' ELSE 'no' END FROM nx.runtime"
echo "## 2. nx: one statement pushes hello into each (first starts)"
perf_start "$RAW/first.data"
as_user "$WORK/nxbench" until -d "$CONN" -q "$DONE" -e "done" -i 20000 -t 900 \
	-x "SELECT count(nx.push(s.name, f.b)) FROM nx.sandboxes s CROSS JOIN (SELECT pg_read_binary_file('$WORK/hello') AS b) f" | tee "$RAW/first.out"
perf_stop
per_start "$RAW/first.data" "$S" '^dn[0-9]+$' "$SUP" >"$RAW/first.ms"
echo "# first starts that mapped a user namespace: $(grep -c 'maps a new user namespace' "$PGD/server.log" || true)"

echo "## 3. nx: the same deployments stopped, then started in one statement"
sql "SELECT count(nx.stop(id)) FROM nx.deployments" >/dev/null
as_user "$WORK/nxbench" until -d "$CONN" -q "SELECT count(*) FROM nx.runtime WHERE state = 'stopped'" -e "$S" -i 100000 -t 300 >/dev/null
sleep 2
perf_start "$RAW/again.data"
as_user "$WORK/nxbench" until -d "$CONN" -q "$DONE" -e "done" -i 20000 -t 900 \
	-x "SELECT count(nx.start(id)) FROM nx.deployments" | tee "$RAW/again.out"
perf_stop
per_start "$RAW/again.data" "$S" '^dn[0-9]+$' "$SUP" >"$RAW/again.ms"

rate() {	# rate from the statement's commit, from nxbench's line
	sed -n 's/.*exec_ms=\([0-9.]*\) elapsed_ms=\([0-9.]*\).*/\1 \2/p' "$1" |
		awk -v n="$S" '{printf "%.1f", n / (($2 - $1) / 1000)}'
}
echo "## ms of CPU per start, by kind of process ($S starts each)"
printf "%-24s %10s %12s %10s\n" kind bare "nx first" "nx again"
# ms KIND FILE: that kind's figure in a per_start file (0.0 if it had none)
ms() { awk -F'\t' -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "0.0"}' "$2"; }
for k in supervisor "other backends" nx-spawn "newuidmap + newgidmap" bwrap nx-init app "rest of the host" total; do
	printf "%-24s %10s %12s %10s\n" "$k" "$(ms "$k" "$RAW/bare.ms")" "$(ms "$k" "$RAW/first.ms")" "$(ms "$k" "$RAW/again.ms")"
done
printf "%-24s %10s %12s %10s\n" "starts/s" "$(sed -n 's/.*rate_per_s=\([0-9.]*\).*/\1/p' "$RAW/bare.out")" "$(rate "$RAW/first.out")" "$(rate "$RAW/again.out")"
echo "# nx rates from the statement's commit; the push statement (blob inserts) is in other backends"
