#!/bin/bash
# bench/router_proxy.sh - nx-router vs HAProxy vs nginx as reverse proxies
# to the same small app, with the direct connection as the ceiling, side
# by side in one run.  The app is bench/httpapp.c (single-threaded epoll,
# 13-byte body).  nx-router can only reach an app inside a sandbox (through
# the deployment's nx-init), so the router case runs it as a deployment of
# a throwaway cluster, and the other cases run the same binary on host
# loopback.  All proxies single-threaded: nginx one worker, no master;
# HAProxy nbthread 1; nx-router is one thread.
#
# Loads: wrk -t1 at c=1, c=32, c=256 with keep-alive, and c=32 with
# "Connection: close" (a new connection, and for the router a new hand-off,
# per request), D seconds each, ROUNDS rounds; in each round every load
# runs every case back to back, the order of the cases rotating from round
# to round.  Reported: medians over the rounds of req/s, p50 and p99
# (wrk --latency), non-2xx and socket errors, and each proxy's CPU time per
# request (utime + stime from /proc/<pid>/stat before and after, divided by
# the requests); for the router also nx-init's CPU per request (it makes
# the connection to the app for every hand-off).  Ratios against HAProxy
# (HTTP mode) and the issue's targets at the end.
#
# Cases: direct (wrk -> app), router (wrk -> nx-router -> nx-init hand-off
# -> app in its sandbox), haproxy (mode http, option forwardfor, default
# keep-alive and server connection reuse), haproxy-tcp (mode tcp: a
# connection-level proxy like the router, for reference), nginx (proxy_pass
# to an upstream with keepalive 64, HTTP/1.1 upstream, X-Forwarded-*
# headers set, access log off).  front-router, front-haproxy, front-nginx:
# the same three behind a pooling nginx (upstream keepalive 64, as a TLS
# terminator would be set up), so that one client connection's requests
# arrive on few pooled connections; their CPU columns are the proxy behind
# the front nginx (the front's own CPU is the same for all three).
# Configurations are generated into $WORK/proxy/; every process is stopped
# on exit (lib.sh's trap).
#
# The sandboxed app sits in the deployment's cgroups; under CPU contention
# (other work on the machine) a cgroup v1 cpu group is scheduled as one
# entity, so the host copy of the app is put into a cpu cgroup of its own
# next to it with the same cpu.shares (HOST_APP_CGROUP=0: leave it be).
# After the timed rounds, SYSCALLS=1 counts each proxy's system calls per
# request with strace -c in short extra runs (and nx-init's for the router).
#
# Usage (as root): bench/router_proxy.sh
#   env: D=8 ROUNDS=3
#        CASES="direct router haproxy haproxy-tcp nginx front-router front-haproxy front-nginx"
#        HTTP_BASE=18250 (ports HTTP_BASE..+7) HOST_APP_CGROUP=1 SYSCALLS=1
#        WORK PGPORT NX_ROUTER_BIN
source "$(dirname "$0")/lib.sh"
source "$BENCH/router_lib.sh"
D=${D:-8}
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-direct router haproxy haproxy-tcp nginx front-router front-haproxy front-nginx}
LOADS="ka1 ka32 ka256 close32"
APP_PORT=$HTTP_BASE
declare -A PORT=([direct]=$HTTP_BASE [router]=$((HTTP_BASE + 1)) [haproxy]=$((HTTP_BASE + 2))
	[haproxy-tcp]=$((HTTP_BASE + 3)) [nginx]=$((HTTP_BASE + 4))
	[front-router]=$((HTTP_BASE + 5)) [front-haproxy]=$((HTTP_BASE + 6)) [front-nginx]=$((HTTP_BASE + 7)))
HOST=rb.localhost
bench_init
# the host app's cgroup goes first, then lib.sh's cleanup (with the exit status)
trap 'rc_=$?; host_app_cgroup_remove; (exit $rc_); bench_cleanup' EXIT
report_to router_proxy

for t in wrk haproxy nginx curl; do
	command -v "$t" >/dev/null || { echo "$t is missing (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
ports_free "${PORT[@]}"
build_httpapp
build_router
machine_notes
echo "# $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "# upstream: bench/httpapp.c (single-threaded epoll, 13-byte body); router case: the app as a"
echo "#   deployment of a throwaway cluster (reached through its nx-init); the other cases: the same"
echo "#   binary on host loopback port $APP_PORT.  wrk -t1, ${D} s per measurement, $ROUNDS rounds."
RAW=$WORK/proxy
rm -rf "$RAW" && mkdir -p "$RAW"

# --- upstreams and proxies
nx_up
sql "SELECT 1 FROM nx.create_sandbox('rb')" >/dev/null
DEP=$(deploy rb "$WORK/httpapp")
sql "SELECT 1 FROM nx.promote('rb', $DEP)" >/dev/null
INIT_PID=$(init_pid "$DEP")
start_router "${PORT[router]}"
declare -A PID=([router]=$ROUTER_PID)
declare -A FRONT_PID=()
daemon "$RAW/app.log" "${AS_USER_EXEC[@]}" env PORT="$APP_PORT" "$WORK/httpapp"
[ "${HOST_APP_CGROUP:-1}" = 1 ] && host_app_cgroup "$DAEMON_PID" "$DEP"

cat >"$RAW/haproxy.cfg" <<EOF
global
	nbthread 1
	maxconn 9000
defaults
	mode http
	option forwardfor
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend fe
	bind 127.0.0.1:${PORT[haproxy]}
	default_backend app
backend app
	server app 127.0.0.1:$APP_PORT
EOF
sed -e 's/mode http/mode tcp/' -e '/option forwardfor/d' -e "s/:${PORT[haproxy]}/:${PORT[haproxy-tcp]}/" \
	"$RAW/haproxy.cfg" >"$RAW/haproxy-tcp.cfg"
mkdir -p "$RAW/nginx"
cat >"$RAW/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $RAW/nginx/nginx.pid;
error_log $RAW/nginx/error.log warn;
events { worker_connections 9000; }
http {
	access_log off;
	client_body_temp_path $RAW/nginx/body;
	proxy_temp_path $RAW/nginx/proxy;
	keepalive_requests 100000000;
	upstream app {
		server 127.0.0.1:$APP_PORT;
		keepalive 64;
		keepalive_requests 100000000;
	}
	server {
		listen 127.0.0.1:${PORT[nginx]} backlog=4096;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$remote_addr;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header X-Forwarded-Host \$host;
		}
	}
}
EOF
# front_conf CASE: a pooling nginx in front of the proxy the case names
front_conf() {
	local dir=$RAW/$1 back=${1#front-}
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOC
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 9000; }
http {
	access_log off;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	keepalive_requests 100000000;
	upstream back {
		server 127.0.0.1:${PORT[$back]};
		keepalive 64;
		keepalive_requests 100000000;
	}
	server {
		listen 127.0.0.1:${PORT[$1]} backlog=4096;
		location / {
			proxy_pass http://back;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$remote_addr;
		}
	}
}
EOC
}
# the proxies behind a front must run even when only the front case is asked for
NEEDED=" $CASES "
for c in $CASES; do [[ $c == front-* ]] && NEEDED+="${c#front-} "; done
for c in haproxy haproxy-tcp nginx; do
	[[ $NEEDED == *" $c "* ]] || continue
	case $c in
	haproxy | haproxy-tcp)
		daemon "$RAW/$c.log" haproxy -db -f "$RAW/$c.cfg"
		PID[$c]=$DAEMON_PID
		;;
	nginx)
		daemon "$RAW/nginx.log" nginx -p "$RAW/nginx" -c "$RAW/nginx/nginx.conf"
		PID[$c]=$DAEMON_PID
		;;
	esac
done
for c in $CASES; do
	[[ $c == front-* ]] || continue
	front_conf "$c"
	daemon "$RAW/$c.log" nginx -p "$RAW/$c" -c "$RAW/$c/nginx.conf"
	FRONT_PID[$c]=$DAEMON_PID
	PID[$c]=${PID[${c#front-}]}		# CPU: the proxy behind the front
done
for c in $CASES; do wait_http "${PORT[$c]}" "$HOST"; done
curl -s -D - -H "Host: $HOST" "http://127.0.0.1:${PORT[router]}/" | grep -q "X-Deployment: $DEP" ||
	{ echo "the router does not reach deployment $DEP" >&2; exit 1; }
echo "# deployment $DEP (nx-init pid $INIT_PID); pids: $(for c in $CASES; do printf '%s=%s ' "$c" "${PID[$c]:--}"; done)"

# --- measurements
# wrk_args LOAD: sets ARGS, wrk's options for that load
wrk_args() {
	case $1 in
	ka1) ARGS=(-c1) ;;
	ka32) ARGS=(-c32) ;;
	ka256) ARGS=(-c256) ;;
	close32) ARGS=(-c32 -H 'Connection: close') ;;
	esac
}
# measure CASE LOAD ROUND SECONDS: one wrk run; appends a line to $RAW/results
measure() {
	local c=$1 l=$2 r=$3 s=$4 p0=0 p1=0 i0=0 i1=0 out=$RAW/wrk.$1.$2.$3 req rps p50 p99 non2xx sockerr
	wrk_args "$l"
	[ -n "${PID[$c]:-}" ] && p0=$(cpu_ticks "${PID[$c]}")
	[[ $c == router || $c == front-router ]] && i0=$(cpu_ticks "$INIT_PID")
	wrk -t1 "${ARGS[@]}" -d"${s}s" --timeout 10s --latency -H "Host: $HOST" "http://127.0.0.1:${PORT[$c]}/" >"$out" 2>&1
	[ -n "${PID[$c]:-}" ] && p1=$(cpu_ticks "${PID[$c]}")
	[[ $c == router || $c == front-router ]] && i1=$(cpu_ticks "$INIT_PID")
	read -r req rps p50 p99 non2xx sockerr < <(wrk_fields "$out")
	echo "$c $l $r $rps $p50 $p99 $non2xx $sockerr $req" \
		"$(awk -v t=$((p1 - p0)) -v n="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')" \
		"$(awk -v t=$((i1 - i0)) -v n="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')" >>"$RAW/results"
}
read -ra CASE_LIST <<<"$CASES"
echo "# warm-up: 2 s of each load on each case"
for l in $LOADS; do for c in "${CASE_LIST[@]}"; do measure "$c" "$l" 0 2; done; done
: >"$RAW/results"
for ((r = 1; r <= ROUNDS; r++)); do
	for l in $LOADS; do
		n=${#CASE_LIST[@]}
		for ((k = 0; k < n; k++)); do
			measure "${CASE_LIST[$(((k + r - 1) % n))]}" "$l" "$r" "$D"
		done
	done
	echo "# round $r done: $(awk -v r="$r" '$3 == r && $2 == "ka32" { printf "%s %s/s  ", $1, $4 }' "$RAW/results")"
done

# --- report
# col CASE LOAD FIELD: the values of one field over the rounds
col() { awk -v c="$1" -v l="$2" -v f="$3" '$1 == c && $2 == l { print $f }' "$RAW/results"; }
# pratio CASE LOAD FIELD: median over the rounds of CASE's FIELD / HAProxy's
# in the same round (measured back to back: steadier than a ratio of
# medians when the machine's load drifts); field 10+11: router + nx-init
pratio() {
	awk -v c="$1" -v l="$2" -v f="$3" '$2 == l && ($1 == c || $1 == "haproxy") {
		v = (f == "cpu+init") ? $10 + $11 : $f
		if ($1 == c) x[$3] = v; if ($1 == "haproxy") h[$3] = v
	} END { for (r in x) if (h[r] > 0) print x[r] / h[r] }' "$RAW/results" | med | awk '{ printf "%.2f", $1 }'
}
# pratio_vs CASE BASE LOAD FIELD: as pratio, against BASE instead of HAProxy
pratio_vs() {
	awk -v c="$1" -v b="$2" -v l="$3" -v f="$4" '$2 == l && ($1 == c || $1 == b) {
		if ($1 == c) x[$3] = $f; if ($1 == b) h[$3] = $f
	} END { for (r in x) if (h[r] > 0) print x[r] / h[r] }' "$RAW/results" | med | awk '{ printf "%.2f", $1 }'
}
sumcol() { col "$@" | awk '{ s += $1 } END { print s + 0 }'; }
declare -A LABEL=([ka1]="c=1 keep-alive" [ka32]="c=32 keep-alive" [ka256]="c=256 keep-alive"
	[close32]="c=32 Connection: close")
echo
echo "## medians over $ROUNDS rounds of ${D} s (wrk -t1); CPU = the proxy process's utime+stime per request;"
echo "## x/hapx = median over the rounds of the ratio to HAProxy (mode http) in the same round"
for l in $LOADS; do
	echo
	echo "### ${LABEL[$l]}"
	printf '%-12s %9s %9s %9s %11s %12s %14s %10s %10s\n' case req/s p50_ms p99_ms errors cpu_us/req "+nx-init_us" "rps/hapx" "cpu/hapx"
	for c in "${CASE_LIST[@]}"; do
		rps=$(col "$c" "$l" 4 | med)
		cpu=$(col "$c" "$l" 10 | med)
		init=-
		[[ $c == router || $c == front-router ]] &&
			init=$(paste <(col "$c" "$l" 10) <(col "$c" "$l" 11) | awk '{ print $1 + $2 }' | med)
		[ "$c" = direct ] && cpu=-
		printf '%-12s %9s %9s %9s %11s %12s %14s %10s %10s\n' "$c" "$rps" "$(col "$c" "$l" 5 | med)" \
			"$(col "$c" "$l" 6 | med)" "$(($(sumcol "$c" "$l" 7) + $(sumcol "$c" "$l" 8)))" "$cpu" "$init" \
			"$(pratio "$c" "$l" 4)" "$([ "$cpu" = - ] && echo - || pratio "$c" "$l" 10)"
	done
	echo "# per-round req/s: $(for c in "${CASE_LIST[@]}"; do printf '%s %s; ' "$c" "$(col "$c" "$l" 4 | xargs | tr ' ' /)"; done)"
done

if [[ " $CASES " == *" router "* && " $CASES " == *" haproxy "* ]]; then
	echo
	echo "## targets (issue 4), router vs HAProxy (mode http): medians of the same-round ratios"
	R32=$(pratio router ka32 4)
	R256=$(pratio router ka256 4)
	RC=$(pratio router close32 4)
	echo "req/s c=32 keep-alive:        ${R32}x  (target >= 1.0: $(verdict "$R32" '>=' 1.0))"
	echo "req/s c=256 keep-alive:       ${R256}x  (target >= 1.3: $(verdict "$R256" '>=' 1.3))"
	echo "req/s c=32 Connection: close: ${RC}x  (target >= 1.0: $(verdict "$RC" '>=' 1.0))"
	for l in $LOADS; do
		RP=$(pratio router "$l" 6)
		echo "p99 ${LABEL[$l]}: ${RP}x HAProxy's  (target <= 1.0: $(verdict "$RP" '<=' 1.0))"
	done
	for l in $LOADS; do
		RCPU=$(pratio router "$l" 10)
		RCPUI=$(pratio router "$l" cpu+init)
		echo "CPU/request ${LABEL[$l]}: router ${RCPU}x HAProxy's (target <= 0.6: $(verdict "$RCPU" '<=' 0.6)); router + nx-init ${RCPUI}x"
	done
fi

if [[ " $CASES " == *" front-router "* && " $CASES " == *" front-haproxy "* && " $CASES " == *" front-nginx "* ]]; then
	echo
	echo "## behind a pooling nginx: front-router vs the better of front-haproxy and front-nginx (same-round ratios)"
	for l in $LOADS; do
		FH=$(pratio_vs front-router front-haproxy "$l" 4)
		FN=$(pratio_vs front-router front-nginx "$l" 4)
		PH=$(pratio_vs front-router front-haproxy "$l" 6)
		PN=$(pratio_vs front-router front-nginx "$l" 6)
		echo "${LABEL[$l]}: req/s ${FH}x front-haproxy, ${FN}x front-nginx; p99 ${PH}x, ${PN}x"
	done
fi

# --- syscalls per request (strace -c, separate short runs, not timed)
# strace_run CASE LOAD PID NAME: prints "NAME: N syscalls/request (top: ...)"
strace_run() {
	local c=$1 l=$2 pid=$3 name=$4 out=$RAW/strace.$1.$2.$4 spid req
	strace -c -f -q -p "$pid" -o "$out" &
	spid=$!
	sleep 0.5
	wrk_args "$l"
	wrk -t1 "${ARGS[@]}" -d3s --timeout 10s -H "Host: $HOST" "http://127.0.0.1:${PORT[$c]}/" >"$out.wrk" 2>&1
	kill -INT "$spid"
	wait "$spid" || true
	req=$(wrk_fields "$out.wrk" | cut -d' ' -f1)
	awk -v n="$req" -v name="$name" '
		$NF == "total" { total = $4 }
		$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { calls[$NF] = $4 }
		END {
			printf "%-28s %6.1f syscalls/request:", name, total / n
			for (k in calls) if (calls[k] / n >= 0.05) printf " %s %.2f", k, calls[k] / n
			printf "\n"
		}' "$out"
}
if [ "${SYSCALLS:-1}" = 1 ] && command -v strace >/dev/null; then
	echo
	echo "## syscalls per request (strace -c -f -p, 3 s wrk runs after the measurements; strace slows"
	echo "## them down, the counts per request are what matter)"
	for l in ka32 close32; do
		for c in router haproxy nginx; do
			[ -n "${PID[$c]:-}" ] || continue
			strace_run "$c" "$l" "${PID[$c]}" "$c ${LABEL[$l]}"
		done
		strace_run router "$l" "$INIT_PID" "nx-init ${LABEL[$l]}"
	done
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp -r "$RAW" "$RESULTS/router_proxy.raw"
