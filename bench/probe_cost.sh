#!/bin/sh
# bench/probe_cost.sh -- CPU per readiness probe of nx-init, sock_diag vs
# /proc/net/tcp, with ~1,000 TCP sockets open on the host (bench/probe_cost.c).
# Needs gcc and unprivileged user namespaces; no PostgreSQL.
#   bench/probe_cost.sh [-n PROBES] [-c HOST_CONNECTIONS] [-r ROUNDS]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${WORK:-/tmp/nx-bench}/probe_cost
mkdir -p "$(dirname "$out")"
gcc -std=gnu99 -O2 -Wall -Wextra -Werror -I"$here/src/init" \
	"$here/bench/probe_cost.c" "$here/src/init/listens.c" -o "$out"
echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg);" \
	"repo $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# tcp_ehash: $(dmesg 2>/dev/null | grep -o 'tcp_established hash table entries: [0-9]*' | tail -1 || true)" \
	"sysctl tcp_child_ehash_entries=$(sysctl -n net.ipv4.tcp_child_ehash_entries 2>/dev/null || echo '?')"
exec "$out" "$@"
