#!/bin/bash
# bench/density.sh - $S sandboxes x $D deployments of examples/hello running at
# once through the supervisor: start rate (all pushed in one statement, until
# every deployment is ready), failures, memory per instance beyond the app,
# side by side in the same run with the baselines' bare bwrap mass start
# (sbx mass: n = S*D, k = 2, and k = n with memory, as 02_mass.sh does).
#
#   1. bare: sbx mass -n N -k 2; sbx mass -n N -k N -m
#   2. cluster with nx.max_sandboxes = S + 10; S sandboxes (nx.create_sandbox
#      in one statement; their databases: one pass after their roles, kicked
#      with pg_reload_conf; provisioning time reported, not part of the rate)
#   3. /proc/meminfo snapshot, then one statement pushes hello D times into
#      each sandbox; poll nx.runtime every 20 ms until every deployment is
#      ready (or failed); rate = N / (push start -> last ready)
#   4. memory, 3 s later: PSS/RSS of every process in the deployments' pids
#      cgroups (app, nx-init, bwrap), memory cgroup usage, system deltas
#      (MemAvailable, Slab, KernelStack, PageTables, ...) per instance
#   5. the router (run by the supervisor) answers each one: every sandbox's
#      deployment is promoted, then one request per production host, each
#      on its own connection (curl --connect-to), counting 200s
#   6. with all N running: 10 start -> ready samples of one more deployment
#   7. pg_ctl stop (the supervisor stops all N), timed; no cgroup left
#
# Usage (as root): bench/density.sh      env: S=500 D=1 (N = S*D)
source "$(dirname "$0")/lib.sh"
S=${S:-500}
D=${D:-1}
N=$((S * D))
bench_init
report_to density

build_baseline
build_nxbench
build_hello
machine_notes
RAW=$UWORK/density
rm -rf "$RAW" && as_user mkdir -p "$RAW"
echo "# N = $N deployments ($S sandboxes x $D); $(nproc) CPUs; MemAvailable $(awk '/MemAvailable/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "# limits: pid_max $(cat /proc/sys/kernel/pid_max), user.max_user_namespaces $(cat /proc/sys/user/max_user_namespaces), user.max_net_namespaces $(cat /proc/sys/user/max_net_namespaces), postgres nofile $(runuser -u "$RUNAS" -- sh -c 'ulimit -Hn')"

echo "## bare bwrap mass start, same run (sbx mass; readiness = listen byte)"
SB=("${BWRAP[@]}" --ro-bind "$WORK/srv" /app/srv)
echo "# bwrap private-net, n=$N k=2"
bg_user "$WORK/sbx" mass -n "$N" -k 2 -- "${SB[@]}" /app/srv -p 8080 -r 3 | tee "$RAW/bare-k2"
sleep 3
echo "# bwrap private-net, n=$N k=$N (all at once), memory with all $N idle"
bg_user "$WORK/sbx" mass -n "$N" -k "$N" -m -- "${SB[@]}" /app/srv -p 8080 -r 3 | tee "$RAW/bare-kN"
sleep 3

echo "## nx_sandbox"
HTTP_PORT=${NX_HTTP_PORT:-18391}
NX_ROUTER=on NX_HTTP_PORT=$HTTP_PORT nx_up "nx.max_sandboxes = $((S + 10))" "nx.max_deployments_per_sandbox = $((D > 20 ? D + 1 : 20))"
t=$(date +%s.%N)
sql "SELECT count(nx.create_sandbox('dn' || g)) FROM generate_series(1, $S) g" >/dev/null
sql "SELECT 1 FROM nx.create_sandbox('dx')" >/dev/null
as_user "$WORK/nxbench" until -d "$CONN" -q "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'nx\_d%'" -e $((S + 1)) -i 50000 -t 300 >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null	# the databases come one pass after the roles
wait_databases d $((S + 1))
echo "# provisioning (not part of the rate): $((S + 1)) sandboxes with database and role in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
# user namespaces are mapped ahead one at a time once the sandboxes are made
# (userns_premap.c): wait until no more come (or 120 s), and say how many
ahead() { grep -c 'has its user namespace mapped ahead' "$PGD/server.log" || true; }
a0=-1; a1=$(ahead)
for ((i = 0; i < 60 && a1 != a0 && a1 < S + 1; i++)); do sleep 2; a0=$a1; a1=$(ahead); done
echo "# user namespaces mapped ahead of the push: $a1 of $((S + 1)) (the rest map at their first start)"
sql CHECKPOINT >/dev/null
sleep 3
SUP=$(sql "SELECT nx._supervisor_pid()")
SUP0=$(python3 "$BENCH/memstat.py" pids "$SUP")
python3 "$BENCH/memstat.py" snap "$RAW/meminfo.before"

echo "## start all $N deployments: one statement pushes them, then poll nx.runtime every 20 ms"
PUSH="SELECT count(nx.push(s.name, f.b)) FROM nx.sandboxes s CROSS JOIN generate_series(1, $D) CROSS JOIN (SELECT pg_read_binary_file('$WORK/hello') AS b) f WHERE s.name LIKE 'dn%'"
DONE="SELECT CASE WHEN count(*) FILTER (WHERE state IN ('ready', 'failed', 'crashloop')) >= $N THEN 'done' ELSE count(*) FILTER (WHERE state = 'ready')::text END FROM nx.runtime"
OUT=$(as_user "$WORK/nxbench" until -d "$CONN" -x "$PUSH" -q "$DONE" -e done -i 20000 -t 900 || true)
echo "# $OUT"
EXEC=$(sed -n 's/.*exec_ms=\([0-9.]*\).*/\1/p' <<<"$OUT")
ELAPSED=$(sed -n 's/.*elapsed_ms=\([0-9.A-Z]*\).*/\1/p' <<<"$OUT")
T0=$(sed -n 's/.*t0_real_us=\([0-9]*\).*/\1/p' <<<"$OUT")
READY=$(sql "SELECT count(*) FROM nx.status WHERE state = 'ready' AND sandbox LIKE 'dn%'")
FAILED=$((N - READY))
echo "ready=$READY failed_or_not_ready=$FAILED"
sql "SELECT state, coalesce(last_error, ''), count(*) FROM nx.status WHERE sandbox LIKE 'dn%' GROUP BY 1, 2 ORDER BY 3 DESC" | sed 's/^/# states: /'
if [ "$ELAPSED" != TIMEOUT ]; then
	echo "start rate: $N deployments in $(awk -v e="$ELAPSED" 'BEGIN {printf "%.0f", e}') ms from push start = $(awk -v n="$N" -v e="$ELAPSED" 'BEGIN {printf "%.1f", n / (e / 1000)}')/s; from the push's commit ($(awk -v e="$EXEC" 'BEGIN {printf "%.0f", e}') ms for the statement) = $(awk -v n="$N" -v e="$ELAPSED" -v x="$EXEC" 'BEGIN {printf "%.1f", n / ((e - x) / 1000)}')/s"
fi
sql "SELECT format('per deployment, ms from push start: first started %s, last started %s; ready p50 %s p99 %s max %s; ready_at - started_at p50 %s p99 %s max %s',
	round(min(s)), round(max(s)), round(percentile_disc(0.5) WITHIN GROUP (ORDER BY r)), round(percentile_disc(0.99) WITHIN GROUP (ORDER BY r)), round(max(r)),
	round(percentile_disc(0.5) WITHIN GROUP (ORDER BY r - s)), round(percentile_disc(0.99) WITHIN GROUP (ORDER BY r - s)), round(max(r - s)))
	FROM (SELECT (extract(epoch FROM started_at) * 1e6 - $T0) / 1000 AS s, (extract(epoch FROM ready_at) * 1e6 - $T0) / 1000 AS r
	      FROM nx.status WHERE state = 'ready' AND sandbox LIKE 'dn%') x"

echo "## memory with all $N running (3 s after the last ready)"
sleep 3
MEMSTAT_JSON=$RAW/mem.json python3 "$BENCH/memstat.py" report "$NX_PREFIX" "$N" "$RAW/meminfo.before" "$SUP" "$SUP0"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg); supervisor state: $(sql "SELECT state || ' ' || coalesce(wait_event, '') FROM pg_stat_activity WHERE backend_type = 'nx supervisor'")"

echo "## idle cost with all $N running: supervisor CPU over 20 s (two periodic passes at nx.naptime 10 s)"
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }	# utime+stime, USER_HZ 100
c0=$(cpu_s "$SUP"); sleep 20; c1=$(cpu_s "$SUP")
echo "supervisor CPU: $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f s in 20 s (%.1f%% of one CPU)", b - a, (b - a) / 20 * 100}')"

echo "## the router answers each of the $S production hosts (one request each, own connection)"
sql "SELECT count(nx.promote(s.name, (SELECT max(d.id) FROM nx.deployments d WHERE d.sandbox = s.name), force => true))
	FROM nx.sandboxes s WHERE s.name LIKE 'dn%'" >/dev/null
sleep 2		# the router reloads on the notification
seq 1 "$S" | sed "s|.*|http://dn&.localhost:$HTTP_PORT/|" >"$RAW/urls"
t=$(date +%s.%N)
# 8 curls at a time, 100 URLs each; a deployment that is not ready makes
# the router wait (--ready-timeout) before its 503, hence --max-time 5
xargs -a "$RAW/urls" -n 100 -P 8 curl -s --max-time 5 --connect-to "::127.0.0.1:$HTTP_PORT" -o /dev/null -w '%{http_code} %{time_total}\n' >"$RAW/router" 2>/dev/null || true
ok=$(grep -c '^200 ' "$RAW/router" || true)
echo "router: $ok of $S hosts answered 200 in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; per request ms: $(awk '$1 == 200 {printf "%.3f\n", $2 * 1000}' "$RAW/router" | pctl)"

echo "## start -> ready of one more deployment while $N run (nxbench push -m start, 10 samples)"
PERF=
if [ "${DENSITY_PROFILE:-1}" = 1 ] && command -v perf >/dev/null; then
	setsid perf record -q -k mono -a -o "$WORK/perf.data" \
		-e sched:sched_process_exec -e sched:sched_process_fork -e sched:sched_process_exit \
		-e syscalls:sys_exit_listen >/dev/null 2>&1 &
	PERF=$!
	BG_PGIDS+=("$PERF")
	sleep 2
fi
bg_user "$WORK/nxbench" push -d "$CONN" -s dx -b "$WORK/hello" -m start -n 10 -w 1 -o "$RAW/extra-start"
printf '%-34s %s\n' "nx/start with $N running" "$(cut -f2 "$RAW/extra-start" | pctl)"
printf '%-34s %s\n' "  of which SQL call -> launched" "$(awk '{print $4 - $3}' "$RAW/extra-start" | pctl)"
printf '%-34s %s\n' "  internal (ready_at-started_at)" "$(cut -f6 "$RAW/extra-start" | pctl)"
if [ -n "$PERF" ]; then
	sleep 0.5
	kill -INT "$PERF"
	wait "$PERF" || true
	perf script -i "$WORK/perf.data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$WORK/perf.txt"
	rm -f "$WORK/perf.data" "$WORK/perf.data.old"
	echo "# profile of these 10 starts (phases as in push_to_ready.sh; ms):"
	python3 "$BENCH/profile_push.py" "$WORK/perf.txt" "$RAW/extra-start"
fi

echo "## ratios to the same-run bare bwrap mass start"
RATE=$(awk -v n="$N" -v e="$ELAPSED" 'BEGIN { if (e + 0 > 0) printf "%.1f", n / (e / 1000); else print 0 }')
# from the push's commit: the statement's blob inserts are not a start's
RATE_C=$(awk -v n="$N" -v e="$ELAPSED" -v x="$EXEC" 'BEGIN { if (e - x > 0) printf "%.1f", n / ((e - x) / 1000); else print 0 }')
for f in bare-k2 bare-kN; do
	b=$(sed -n 's/.*rate_per_s=\([0-9.]*\).*/\1/p' "$RAW/$f")
	echo "nx rate ${RATE}/s vs bare $f ${b}/s: $(ratio "$RATE" "$b")x; from the push's commit ${RATE_C}/s: $(ratio "$RATE_C" "$b")x"
done
echo "target: $N running with 0 failures: $([ "$FAILED" = 0 ] && echo met || echo "NOT met ($FAILED failed or not ready)")"

echo "## teardown: pg_ctl stop -m fast (the supervisor stops all $N)"
t=$(date +%s.%N)
as_user "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -t 300 stop >/dev/null
echo "pg_ctl stop: $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; this cluster's cgroups left: $(nx_cgroups | wc -l)"
cp -r "$RAW" "$RESULTS/density.raw"
