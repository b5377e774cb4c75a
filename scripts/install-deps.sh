#!/usr/bin/env bash
# scripts/install-deps.sh - install the Debian 12 packages nx_sandbox builds,
# runs and tests with.  Run as root; installs only what is missing, so a
# second run touches nothing (and does not even refresh the package lists).
#
#   scripts/install-deps.sh          build + run (what the quickstart needs)
#   scripts/install-deps.sh --test   also the real front proxies the test
#                                    suite puts in front of the router
#                                    (t/021, t/023, t/031: nginx, HAProxy,
#                                    Caddy); scripts/test-all.sh uses it
#   scripts/install-deps.sh --bench  the same, and the rest bench/ compares
#                                    against (hyperfine, strace)
#
# Packages that come with a service (nginx, haproxy, caddy) are installed
# without starting it: bench/ and the docs' examples run their own copies
# on loopback ports, and nothing of ours wants a daemon on port 80.
set -euo pipefail

PACKAGES=(
	# build
	make gcc clang libclang-rt-14-dev
	postgresql-15 postgresql-server-dev-15 libpq-dev libseccomp-dev
	# run: sandboxes (issue: supervisor)
	bubblewrap uidmap
	# test: TAP, HTTP clients, load, and the Go example (static, lib/pq
	# from Debian so no network is needed to build it)
	libipc-run-perl curl wrk golang-go golang-github-lib-pq-dev
	# test: a real DNS server for custom-domain verification (t/016), and
	# off-the-shelf servers pushed as they are (t/032: busybox httpd)
	dnsmasq-base busybox-static
)
case "${1:-}" in
--test) PACKAGES+=(haproxy nginx-light caddy) ;;
--bench) PACKAGES+=(haproxy nginx-light caddy hyperfine strace) ;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (it calls apt-get)" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# keep package scripts from starting services (Debian's policy-rc.d
# protocol: exit 101 = "not allowed"); an existing policy is left alone
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
