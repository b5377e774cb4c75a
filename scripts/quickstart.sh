#!/usr/bin/env bash
# scripts/quickstart.sh - from a fresh Debian 12 machine to a pushed app,
# in one command (run as root).  Running it again is safe: every step
# checks what is already there.
#
#   1. installs the packages, builds and installs the extension
#   2. creates (or reuses) a local cluster "nx" ($NX_CLUSTER; Debian's
#      pg_createcluster, port $NX_PORT, default 5499; the router on
#      $NX_HTTP_PORT, default 8080) and sets host and cluster up with the
#      DBA helper control/nx-setup (subordinate ids, cgroups, nx_sandbox
#      preloaded, nx.database = nx, the pg_hba lines for tenants)
#   3. creates the control database "nx" and the extension in it
#   4. builds the example app (examples/hello, a static C HTTP server),
#      creates the sandbox "hello", pushes the binary, waits until the
#      supervisor runs it in its sandbox, and promotes it
#   5. prints the deployment, its state, its preview URL and the
#      production URL, and fetches both through the router with curl
set -euo pipefail
cd "$(dirname "$0")/.."
PG_VERSION=15
CLUSTER=${NX_CLUSTER:-nx}
NX_PORT=${NX_PORT:-5499}
HTTP_PORT=${NX_HTTP_PORT:-8080}
SANDBOX=${NX_SANDBOX_NAME:-hello}

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: run as root (it installs packages and creates a cluster)" >&2
	exit 1
fi

say() { printf '\n== %s\n' "$*"; }
psql_nx() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$NX_PORT" "$@"; }

say "packages, build, install"
scripts/install-deps.sh
make -s -j2
# install -C leaves unchanged files (and their times) alone, so that a
# second run only restarts the cluster when the library really changed
make -s install INSTALL='/usr/bin/install -C'

say "cluster $PG_VERSION/$CLUSTER on port $NX_PORT"
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$CLUSTER"; then
	pg_createcluster "$PG_VERSION" "$CLUSTER" --port "$NX_PORT" >/dev/null
	echo "created cluster $PG_VERSION/$CLUSTER"
fi
# the DBA helper: host (subordinate ids, cgroups) and cluster
# (shared_preload_libraries, nx.database, pg_hba lines); idempotent
setup=$(control/nx-setup --user postgres --cluster "$PG_VERSION/$CLUSTER" --database nx) || {
	echo "$setup"
	exit 1
}
echo "$setup"
if pg_ctlcluster "$PG_VERSION" "$CLUSTER" status >/dev/null 2>&1; then
	case "$setup" in
	*"restart the cluster"*) pg_ctlcluster "$PG_VERSION" "$CLUSTER" restart ;;
	*"reload the cluster"*) pg_ctlcluster "$PG_VERSION" "$CLUSTER" reload ;;
	esac
fi
pg_ctlcluster "$PG_VERSION" "$CLUSTER" status >/dev/null 2>&1 || pg_ctlcluster "$PG_VERSION" "$CLUSTER" start
# a newer build than the running server's (a second run after git pull):
# the library and the supervisor load at server start only
lib=$(pg_config --pkglibdir)/nx_sandbox.so
started=$(psql_nx -d postgres -Atc "SELECT extract(epoch FROM pg_postmaster_start_time())::bigint")
if [ "$(psql_nx -d postgres -Atc 'SHOW nx.http_port' 2>/dev/null)" != "$HTTP_PORT" ]; then
	pg_conftool "$PG_VERSION" "$CLUSTER" set nx.http_port "$HTTP_PORT"
	started=0	# restart below: the router's port is read at start
fi
if [ "$(stat -c %Y "$lib")" -gt "$started" ]; then
	echo "restarting the cluster to load the new library and settings"
	pg_ctlcluster "$PG_VERSION" "$CLUSTER" restart
fi
pg_lsclusters "$PG_VERSION" "$CLUSTER"

say "control database nx"
if [ "$(psql_nx -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'nx'")" != 1 ]; then
	psql_nx -d postgres -c 'CREATE DATABASE nx'
fi
psql_nx -d nx -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS nx_sandbox'
psql_nx -d nx -c 'ALTER EXTENSION nx_sandbox UPDATE' 2>/dev/null || true
# A development build of the same version (a second run after a git pull
# before a release) cannot be updated in place: the cluster's SQL objects
# are from another build than the library.  Move that cluster aside,
# stopped and whole (nothing is deleted), and start over with a new one.
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" nx_sandbox.control)
want=$(sed -n "s/^CREATE FUNCTION nx._sql_build() .* SELECT '\([0-9a-f]*\)'::text .*/\1/p" \
	"$(pg_config --sharedir)/extension/nx_sandbox--$version.sql")
have=$(psql_nx -d nx -Atc 'SELECT nx._sql_build()' 2>/dev/null || echo "none (an earlier build)")
if [ -n "$want" ] && [ "$have" != "$want" ] && [ -z "${NX_QUICKSTART_AGAIN:-}" ]; then
	aside="${CLUSTER}_$(date +%Y%m%d%H%M%S)"
	port=$NX_PORT
	while pg_lsclusters -h | awk '{print $3}' | grep -qx "$port"; do port=$((port + 1)); done
	echo "cluster $PG_VERSION/$CLUSTER holds nx_sandbox $version from another build of its SQL"
	echo "($have; the installed files are $want), which cannot be updated in place."
	echo "Moving it aside as $PG_VERSION/$aside (stopped, port $port, nothing deleted) and starting over."
	pg_ctlcluster "$PG_VERSION" "$CLUSTER" stop
	pg_renamecluster "$PG_VERSION" "$CLUSTER" "$aside"
	pg_conftool "$PG_VERSION" "$aside" set port "$port"
	echo manual > "/etc/postgresql/$PG_VERSION/$aside/start.conf"
	NX_QUICKSTART_AGAIN=1 exec "$0" "$@"
fi

say "example app: examples/hello"
mkdir -p build
gcc -O2 -Wall -Wextra -static -o build/hello examples/hello/hello.c
echo "built build/hello ($(stat -c %s build/hello) bytes, static)"

say "sandbox $SANDBOX: push and promote"
if [ "$(psql_nx -d nx -Atc "SELECT 1 FROM nx.sandbox_info WHERE sandbox = '$SANDBOX'")" != 1 ]; then
	psql_nx -d nx -c "SELECT sandbox, database_name, memory_limit, production_url FROM nx.create_sandbox('$SANDBOX')"
fi
# the same bytes already pushed (a second run)?  Reuse that deployment.
sha=$(sha256sum build/hello | cut -d' ' -f1)
deployment=$(psql_nx -d nx -Atc "SELECT max(deployment) FROM nx.status WHERE sandbox = '$SANDBOX' AND sha256 = '$sha'")
if [ -z "$deployment" ]; then
	# send the binary as hex on psql's standard input: no size limit from
	# the command line, no file the server has to be able to read
	deployment=$({
		printf "SELECT deployment FROM nx.push('%s', decode('" "$SANDBOX"
		od -An -v -tx1 build/hello | tr -d ' \n'
		printf "', 'hex'), label => 'quickstart');\n"
	} | psql_nx -d nx -At)
	echo "pushed build/hello as deployment $deployment"
else
	echo "build/hello (sha256 $sha) is already deployment $deployment"
fi

say "waiting for the supervisor to run it"
# a second run finds it asleep (idle stop) or stopped: ask for it again
state=$(psql_nx -d nx -Atc "SELECT state FROM nx.status WHERE deployment = $deployment")
case "$state" in
asleep) psql_nx -d nx -Atc "SELECT nx.wake($deployment)" >/dev/null ;;
stopped | failed | crashloop) psql_nx -d nx -c "SELECT nx.start($deployment)" >/dev/null ;;
esac
state=
for _ in $(seq 1 60); do
	state=$(psql_nx -d nx -Atc "SELECT state FROM nx.status WHERE deployment = $deployment")
	[ "$state" = ready ] && break
	sleep 0.5
done
if [ "$state" != ready ]; then
	echo "deployment $deployment is $state, not ready:" >&2
	psql_nx -d nx -c "SELECT state, last_error FROM nx.status WHERE deployment = $deployment" >&2
	psql_nx -d nx -c "SELECT check_name, detail, fix FROM nx.check_setup() WHERE NOT ok" >&2
	psql_nx -d nx -c "SELECT line FROM nx.logs('$SANDBOX', $deployment, 20)" >&2
	exit 1
fi
# production moves only to a deployment that is ready (health gate)
psql_nx -d nx -c "SELECT deployment, production FROM nx.promote('$SANDBOX', $deployment)" >/dev/null

say "your app"
psql_nx -d nx -c "SELECT sandbox, deployment, label, state, pid, port, preview_url, production_url
	FROM nx.status WHERE sandbox = '$SANDBOX' ORDER BY deployment"
psql_nx -d nx -c "SELECT line AS \"its output (nx.logs)\" FROM nx.logs('$SANDBOX', $deployment, 5)"
production=$(psql_nx -d nx -Atc "SELECT production_url FROM nx.sandbox_info WHERE sandbox = '$SANDBOX'")
preview=$(psql_nx -d nx -Atc "SELECT preview_url FROM nx.status WHERE deployment = $deployment")
cat <<MSG

Deployment $deployment of sandbox "$SANDBOX" is production and runs in its
sandbox (bwrap, its own uid, namespaces, seccomp, cgroup), next to its
database nx_$SANDBOX.
  production URL: $production
  preview URL:    $preview
  curl $production
MSG
# the router the supervisor runs serves both (it may need a moment to load
# the routes after a restart); *.localhost resolves to the loopback address
answer=
for _ in $(seq 1 50); do
	answer=$(curl -s --max-time 2 "$production" || true)
	[ -n "$answer" ] && break
	sleep 0.2
done
if [ -z "$answer" ]; then
	echo "the router did not answer on $production:" >&2
	psql_nx -d nx -c "SELECT check_name, detail, fix FROM nx.check_setup() WHERE NOT ok" >&2
	exit 1
fi
echo "  -> $answer"
echo "  curl $preview"
echo "  -> $(curl -s --max-time 2 "$preview")"
cat <<MSG

Try next, as postgres (PGPORT=$NX_PORT PGDATABASE=nx):
  nx status                                      -- every deployment
  nx logs $SANDBOX -f                               -- follow its output
  nx push $SANDBOX build/hello --label v2 --promote # a second version
  nx rollback $SANDBOX
or in psql -p $NX_PORT -d nx:
  SELECT * FROM nx.status;
  SELECT * FROM nx.verify_binary(pg_read_binary_file('/usr/bin/true'));
  SELECT * FROM nx.rollback('$SANDBOX');          -- after a second push + promote
  SELECT action, sandbox, deployment, at FROM nx.event_log ORDER BY id DESC LIMIT 5;
MSG
