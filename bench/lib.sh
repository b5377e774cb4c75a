# bench/lib.sh - helpers shared by the nx_sandbox benchmark scripts (sourced).
#
# Scripts run as root and drop to $RUNAS (postgres) for everything that is a
# sandbox or PostgreSQL, like /work/shared/baselines/lib.sh, whose harnesses
# (sbx.c, srv.c, pgconn.c, copied unchanged into bench/baseline/) measure the
# bare cases side by side in the same run.  Scratch data: $WORK (/tmp/nx-bench).
#
# Every script calls bench_init, which installs a trap: on any exit (success,
# failure, Ctrl-C) the throwaway cluster is stopped (the supervisor stops its
# sandboxes), any cgroup of that cluster left over is emptied and removed,
# every process group started with bg_run is SIGKILLed, and the cluster's
# data directory is deleted.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
WORK=${WORK:-/tmp/nx-bench}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-postgres}
UWORK=$WORK/user			# scratch space writable by $RUNAS
RESULTS=${RESULTS:-$WORK/results}
PGPORT=${PGPORT:-54339}
PGD=$WORK/pg				# cluster: $PGD/data, socket directory $PGD/sock
CGROOT=${CGROOT:-/sys/fs/cgroup}
CGNAME=${CGNAME:-nx_sandbox}

if [ "$(id -u)" != 0 ]; then
	echo "run as root (the scripts drop to $RUNAS themselves)" >&2
	exit 1
fi
mkdir -p "$WORK" "$UWORK" "$RESULTS"
chmod 755 "$WORK"
chown "$RUNAS": "$UWORK"

as_user() { runuser -u "$RUNAS" -- "$@"; }

# The bare sandbox of the baselines (01_coldstart.sh / 02_mass.sh): all
# namespaces, private net, read-only /usr, fresh /proc, /dev, /tmp.
BWRAP=(bwrap --unshare-all --die-with-parent
	--ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin
	--proc /proc --dev /dev --tmpfs /tmp)

# Read numbers on stdin, print median / p99 (nearest rank) / min / max / n
# (same definition as the baselines' lib.sh).
pctl() {
	sort -g | awk '{v[NR]=$1} END {n=NR; if (n==0) {print "n=0"; exit}
		m=(n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2; r=int(0.99*n+0.999999);
		printf "median=%.3f p99=%.3f min=%.3f max=%.3f n=%d\n", m, v[r], v[1], v[n], n}'
}
# median / p99 of stdin as two bare numbers
med() { sort -g | awk '{v[NR]=$1} END {n=NR; if (!n) {print "nan"; exit} print (n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2}'; }
p99() { sort -g | awk '{v[NR]=$1} END {n=NR; if (!n) {print "nan"; exit} r=int(0.99*n+0.999999); print v[r]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
# verdict VALUE OP LIMIT -> "met" / "NOT met"
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? (v <= l) : (v >= l); print ok ? "met" : "NOT met" }'; }

machine_notes() {
	echo "# nx_sandbox: repo $(git -C "$REPO" log -1 --format=%h 2>/dev/null || echo '?'), installed $("$PGBIN/pg_config" --pkglibdir)/nx_sandbox.so md5 $(md5sum "$("$PGBIN/pg_config" --pkglibdir)/nx_sandbox.so" | cut -c1-12)"
	echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "# $(bwrap --version); $("$PGBIN/postgres" --version); nx_sandbox $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$("$PGBIN/pg_config" --sharedir)/extension/nx_sandbox.control")"
	echo "# load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- build ------------------------------------------------------------------
PGINC=$("$PGBIN/pg_config" --includedir)
build_baseline() {
	gcc -O2 -Wall -Wextra -static -o "$WORK/srv" "$BENCH/baseline/srv.c"
	gcc -O2 -Wall -Wextra -o "$WORK/sbx" "$BENCH/baseline/sbx.c" -lseccomp
	gcc -O2 -Wall -Wextra -o "$WORK/pgconn" "$BENCH/baseline/pgconn.c" -I"$PGINC" -lpq
}
build_nxbench() {
	gcc -O2 -Wall -Wextra -o "$WORK/nxbench" "$BENCH/nxbench.c" -I"$PGINC" -lpq -lm
}
# the pushed app: examples/hello built static, as its header says
build_hello() {
	gcc -O2 -static -o "$WORK/hello" "$REPO/examples/hello/hello.c"
	chmod 644 "$WORK/hello"
}

# --- background process groups, killed by the trap --------------------------
BG_PGIDS=()
# bg_run CMD...: run CMD in a session of its own (so that everything it
# forks, sandboxes included, stays in one process group) and wait for it;
# returns CMD's exit status.
bg_run() {
	local pid rc=0
	setsid "$@" &
	pid=$!
	BG_PGIDS+=("$pid")
	wait "$pid" || rc=$?
	kill -KILL -- "-$pid" 2>/dev/null || true	# stragglers of that session
	return $rc
}
# bg_user CMD...: bg_run as $RUNAS
bg_user() { bg_run runuser -u "$RUNAS" -- "$@"; }

# --- the throwaway cluster with the supervisor ------------------------------
psql_() { as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGD/sock" -p "$PGPORT" -U postgres -d postgres "$@"; }
sql() { psql_ -Atc "$1"; }
CONN="host=$PGD/sock port=$PGPORT user=postgres dbname=postgres"

# wait_databases PREFIX COUNT [TIMEOUT_S]: until COUNT sandboxes named
# PREFIX* have their database, owned by their own role (what the
# supervisor makes for each), polled every 200 ms (default timeout 900 s)
wait_databases() {
	as_user "$WORK/nxbench" until -d "$CONN" -e "$2" -i 200000 -t "${3:-900}" \
		-q "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba AND r.rolname = d.datname WHERE d.datname LIKE 'nx\\_$1%'" >/dev/null
}

# nx_up [postgresql.conf lines...]: initdb, the pg_hba lines nx-setup wants
# first (tenants: own database only, with their password; the router's
# login), no local "trust" (peer instead), the library
# preloaded, CREATE EXTENSION in database postgres (the default nx.database),
# then wait until the supervisor runs and nx.check_setup() passes.
nx_up() {
	nx_down_quiet
	mkdir -p "$PGD/sock"
	chown -R "$RUNAS": "$PGD"
	# no "local ... trust" (nx.check_setup refuses it): peer for us, scram for TCP
	as_user "$PGBIN/initdb" -D "$PGD/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
		-E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log"
	as_user sh -c 'f=$1/pg_hba.conf; { printf "local sameuser +nx_tenant scram-sha-256\nlocal all +nx_tenant reject\nlocal postgres nx_router scram-sha-256\n"; cat "$f"; } >"$f.new" && mv "$f.new" "$f"' sh "$PGD/data"
	{
		echo "port = $PGPORT"
		echo "unix_socket_directories = '$PGD/sock'"
		echo "listen_addresses = ''"
		echo "shared_preload_libraries = 'nx_sandbox'"
		echo "nx.stop_timeout = '3s'"
		# the router is not on any measured path; on, it would need a free
		# nx.http_port (other clusters on this host may hold 8080)
		echo "nx.router = ${NX_ROUTER:-off}"
		echo "nx.http_port = ${NX_HTTP_PORT:-18380}"
		# the start path measured as in 0.3.0: every deployment on the
		# sandbox's database (bench/branch.sh measures preview branches)
		echo "nx.default_preview_database = ${NX_PREVIEW_DATABASE:-production}"
		# benchmarks create far more than one developer may (per-owner quotas)
		echo "nx.max_sandboxes_per_owner = 65535"
		echo "nx.max_deployments_per_owner = 1000000"
		for l in "$@"; do echo "$l"; done
	} | as_user tee -a "$PGD/data/postgresql.conf" >/dev/null
	if ! as_user "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w start >/dev/null; then
		tail -5 "$PGD/server.log" >&2
		return 1
	fi
	sql "CREATE EXTENSION nx_sandbox" >/dev/null
	NX_SYSID=$(as_user "$PGBIN/pg_controldata" "$PGD/data" | sed -n 's/^Database system identifier: *//p')
	NX_PREFIX=$(printf 'c%016x_d' "$NX_SYSID")
	local i bad
	for ((i = 0; i < 200; i++)); do
		bad=$(sql "SELECT string_agg(check_name || ': ' || detail, '; ') FROM nx.check_setup() WHERE NOT ok AND required")
		[ -z "$bad" ] && return 0
		sleep 0.05
	done
	echo "host not ready for sandboxes: $bad" >&2
	return 1
}

# Remove this cluster's cgroups that are left (kill what is in them first).
nx_cgroup_sweep() {
	[ -n "${NX_PREFIX:-}" ] || return 0
	local c d p
	for c in pids memory cpu; do
		for d in "$CGROOT/$c/$CGNAME/$NX_PREFIX"* "$CGROOT/$CGNAME/$NX_PREFIX"* "$CGROOT/unified/$CGNAME/$NX_PREFIX"*; do
			[ -d "$d" ] || continue
			for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
			for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
		done
	done
}

# Our cgroups (one per deployment), pids hierarchy.
nx_cgroups() { [ -n "${NX_PREFIX:-}" ] && ls -d "$CGROOT/pids/$CGNAME/$NX_PREFIX"* 2>/dev/null || true; }

nx_down_quiet() {
	if [ -f "$PGD/data/postmaster.pid" ]; then
		[ -n "${NX_PREFIX:-}" ] || NX_PREFIX=$(printf 'c%016x_d' "$(as_user "$PGBIN/pg_controldata" "$PGD/data" 2>/dev/null | sed -n 's/^Database system identifier: *//p')")
		as_user "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -t 120 stop >/dev/null 2>&1 ||
			as_user "$PGBIN/pg_ctl" -D "$PGD/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	nx_cgroup_sweep
	rm -rf "$PGD"
}

bench_cleanup() {
	local rc=$? g
	trap - EXIT INT TERM HUP
	for g in "${BG_PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
	if [ -d "$PGD" ] && [ -n "${KEEP_SERVER_LOG:-}" ]; then cp "$PGD/server.log" "$RESULTS/" 2>/dev/null || true; fi
	nx_down_quiet
	local left
	left=$(nx_cgroups | wc -l)
	[ "$left" = 0 ] || echo "WARNING: $left cgroups of this cluster are still there" >&2
	[ "$(so_md5)" = "$SO_MD5_START" ] ||
		echo "WARNING: the installed nx_sandbox.so changed during this run ($SO_MD5_START -> $(so_md5))" >&2
	exit $rc
}
so_md5() { md5sum "$("$PGBIN/pg_config" --pkglibdir)/nx_sandbox.so" 2>/dev/null | cut -c1-12; }
bench_init() {
	SO_MD5_START=$(so_md5)
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

# log + result file: every script tees its report into $RESULTS/<name>.txt
report_to() { exec > >(tee "$RESULTS/$1.txt") 2>&1; }
