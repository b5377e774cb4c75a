#!/usr/bin/env bash
# scripts/quickstart.sh - from a fresh Debian 12 machine to a pushed app,
# in one command (run as root).  Running it again is safe: every step
# checks what is already there.
#
#   1. installs the packages and builds and installs the extension
#   2. creates (or reuses) a local cluster "nx" (Debian's pg_createcluster,
#      port $NX_PORT, default 5499) with nx_sandbox preloaded
#   3. creates the control database "nx" and the extension in it
#   4. builds the example app (examples/hello, a static C HTTP server),
#      creates the sandbox "hello", pushes the binary and promotes it
#   5. prints the deployment, its preview URL and the production URL
#
# The supervisor and router that run and serve the app are not part of
# this version yet (see README "Status"): the deployment is recorded with
# its port and URLs, but nothing listens on them.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_VERSION=15
CLUSTER=nx
NX_PORT=${NX_PORT:-5499}
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
make -s install

say "cluster $PG_VERSION/$CLUSTER on port $NX_PORT"
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$CLUSTER"; then
	pg_createcluster "$PG_VERSION" "$CLUSTER" --port "$NX_PORT" >/dev/null
	echo "created cluster $PG_VERSION/$CLUSTER"
fi
if [ "$(pg_conftool -s "$PG_VERSION" "$CLUSTER" show shared_preload_libraries 2>/dev/null)" != "nx_sandbox" ]; then
	pg_conftool "$PG_VERSION" "$CLUSTER" set shared_preload_libraries nx_sandbox
	echo "set shared_preload_libraries = 'nx_sandbox'"
	pg_ctlcluster "$PG_VERSION" "$CLUSTER" status >/dev/null 2>&1 && pg_ctlcluster "$PG_VERSION" "$CLUSTER" restart
fi
pg_ctlcluster "$PG_VERSION" "$CLUSTER" status >/dev/null 2>&1 || pg_ctlcluster "$PG_VERSION" "$CLUSTER" start
pg_lsclusters "$PG_VERSION" "$CLUSTER"

say "control database nx"
if [ "$(psql_nx -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'nx'")" != 1 ]; then
	psql_nx -d postgres -c 'CREATE DATABASE nx'
fi
psql_nx -d nx -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS nx_sandbox'
psql_nx -d nx -c 'ALTER EXTENSION nx_sandbox UPDATE' 2>/dev/null || true

say "example app: examples/hello"
mkdir -p build
gcc -O2 -Wall -Wextra -static -o build/hello examples/hello/hello.c
echo "built build/hello ($(stat -c %s build/hello) bytes, static)"

say "sandbox $SANDBOX: push and promote"
if [ "$(psql_nx -d nx -Atc "SELECT 1 FROM nx.sandboxes WHERE name = '$SANDBOX'")" != 1 ]; then
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
psql_nx -d nx -c "SELECT deployment, production FROM nx.promote('$SANDBOX', $deployment)" >/dev/null

say "your app"
psql_nx -d nx -c "SELECT sandbox, deployment, label, port, preview_url, production, production_url, desired_state
	FROM nx.status WHERE sandbox = '$SANDBOX' ORDER BY deployment"
production=$(psql_nx -d nx -Atc "SELECT production_url FROM nx.sandbox_info WHERE sandbox = '$SANDBOX'")
preview=$(psql_nx -d nx -Atc "SELECT preview_url FROM nx.status WHERE deployment = $deployment")
cat <<MSG

Deployment $deployment of sandbox "$SANDBOX" is production.
  production URL: $production
  preview URL:    $preview

Not served yet: the supervisor that runs deployments in bwrap and the router
that serves these URLs are the next milestones (README "Status").

Try next (psql -p $NX_PORT -d nx as postgres):
  SELECT * FROM nx.status;                       -- every deployment
  SELECT * FROM nx.verify_binary(pg_read_binary_file('/usr/bin/true'));
  SELECT * FROM nx.rollback('$SANDBOX');          -- after a second push + promote
  SELECT action, sandbox, deployment, at FROM nx.events ORDER BY id DESC LIMIT 5;
MSG
