# shellcheck shell=bash
# bench/router_lib.sh - what the router benchmarks (router_proxy.sh,
# promote_load.sh) share, on top of lib.sh (source lib.sh first): the
# upstream app, nx-router in front of the throwaway cluster, background
# daemons killed by lib.sh's trap, wrk's report parsed, CPU time from /proc.

HTTP_BASE=${HTTP_BASE:-18250}	# ports HTTP_BASE .. HTTP_BASE+9 are used
NX_ROUTER_BIN=${NX_ROUTER_BIN:-$REPO/build/nx-router}

# build_httpapp: bench/httpapp.c, static (the same file runs on the host
# and in a sandbox)
build_httpapp() {
	gcc -O2 -Wall -Wextra -static -o "$WORK/httpapp" "$BENCH/httpapp.c"
	chmod 755 "$WORK/httpapp"
}

# build_router: build/nx-router of this checkout (unless NX_ROUTER_BIN
# points elsewhere)
build_router() {
	if [ "$NX_ROUTER_BIN" = "$REPO/build/nx-router" ]; then
		make -s -C "$REPO" build/nx-router >/dev/null
	fi
	[ -x "$NX_ROUTER_BIN" ] || { echo "no router at $NX_ROUTER_BIN" >&2; return 1; }
	cp "$NX_ROUTER_BIN" "$WORK/nx-router"
	chmod 755 "$WORK/nx-router"
}

# ports_free PORT...: fail unless nothing listens on them
ports_free() {
	local p
	for p in "$@"; do
		if ss -Htln "sport = :$p" | grep -q .; then
			echo "port $p is in use (set HTTP_BASE)" >&2
			return 1
		fi
	done
}

# daemon LOG CMD...: start CMD in a session of its own, in the background
# (killed with its session by the trap); sets DAEMON_PID, the pid of CMD
# itself (setsid and setpriv exec, they do not fork)
daemon() {
	local log=$1
	shift
	setsid "$@" </dev/null >"$log" 2>&1 &
	DAEMON_PID=$!
	BG_PGIDS+=("$DAEMON_PID")
	disown "$DAEMON_PID"	# no "Killed" job report when the trap ends it
}
# AS_USER_EXEC CMD...: run CMD as $RUNAS without a process in between
# (unlike runuser), so that the pid is CMD's
AS_USER_EXEC=(setpriv --reuid="$RUNAS" --regid="$RUNAS" --init-groups --)

# wait_http PORT HOST: until GET / with that Host answers 200 (30 s)
wait_http() {
	local i
	for ((i = 0; i < 300; i++)); do
		curl -sf -o /dev/null -H "Host: $2" "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	echo "nothing answers on port $1 (Host $2)" >&2
	return 1
}

# start_router PORT: nx-router (as $RUNAS: it reads <data>/nx/run) in front
# of the cluster; sets ROUTER_PID
start_router() {
	daemon "$WORK/router.log" "${AS_USER_EXEC[@]}" "$WORK/nx-router" -d "$CONN" --listen "127.0.0.1:$1"
	ROUTER_PID=$DAEMON_PID
}

# deploy SANDBOX BINARY: push, wait until ready; prints the deployment id
deploy() {
	local dep i
	dep=$(sql "SELECT deployment FROM nx.push('$1', pg_read_binary_file('$2'))")
	for ((i = 0; i < 600; i++)); do
		[ "$(sql "SELECT state FROM nx.status WHERE deployment = $dep")" = ready ] && { echo "$dep"; return 0; }
		sleep 0.1
	done
	echo "deployment $dep is not ready: $(sql "SELECT state || ' ' || coalesce(last_error, '') FROM nx.status WHERE deployment = $dep" 2>&1)" >&2
	return 1
}

# init_pid DEPLOYMENT: host pid of its nx-init
init_pid() { sql "SELECT pid FROM nx.status WHERE deployment = $1"; }

# cpu_ticks PID: utime + stime of a process, in clock ticks
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# wrk_fields FILE: one line "requests rps p50_ms p99_ms non2xx sockerr"
# from wrk's report (run with --latency)
wrk_fields() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return v / 1000;
		if (v ~ /ms$/) return v + 0;
		if (v ~ /m$/) return v * 60000;
		if (v ~ /s$/) return v * 1000;
		return v
	}
	/ requests in / { req = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/^ +50% / { p50 = ms($2) }
	/^ +99% / { p99 = ms($2) }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(",", ""); sockerr = $4 + $6 + $8 + $10 }
	END { printf "%d %.0f %.3f %.3f %d %d\n", req, rps, p50, p99, non2xx, sockerr }' "$1"
}

# host_app_cgroup PID DEPLOYMENT: move the host copy of the app into a cpu
# cgroup of its own next to the sandboxes' (same parent, same cpu.shares as
# the deployment's), so that under CPU contention both copies of the app
# are scheduled alike (cgroup v1; nothing is done without that hierarchy).
# host_app_cgroup_remove (from the trap) kills PID and removes the cgroup.
HOST_CG=
HOST_CG_PID=
host_app_cgroup() {
	local parent=$CGROOT/cpu/$CGNAME dep_cg
	dep_cg=$parent/$NX_PREFIX$2
	[ -f "$dep_cg/cpu.shares" ] || { echo "# (no cgroup v1 cpu hierarchy: the host app stays where it is)"; return 0; }
	HOST_CG=$parent/bench_host_$$
	HOST_CG_PID=$1
	mkdir -p "$HOST_CG"
	cat "$dep_cg/cpu.shares" >"$HOST_CG/cpu.shares"
	echo "$1" >"$HOST_CG/cgroup.procs"
	echo "# host app in cpu cgroup $HOST_CG (cpu.shares $(cat "$HOST_CG/cpu.shares"), as the deployment's)"
}
host_app_cgroup_remove() {
	[ -n "$HOST_CG" ] || return 0
	[ -n "$HOST_CG_PID" ] && kill -KILL "$HOST_CG_PID" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$HOST_CG" 2>/dev/null && break; sleep 0.1; done
	[ -d "$HOST_CG" ] && echo "WARNING: cgroup $HOST_CG is still there" >&2
	HOST_CG=
}
