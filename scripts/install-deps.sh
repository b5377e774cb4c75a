#!/usr/bin/env bash
# scripts/install-deps.sh - install the Debian 12 packages nx_sandbox builds,
# runs and tests with.  Run as root; installs only what is missing, so a
# second run touches nothing (and does not even refresh the package lists).
set -euo pipefail

PACKAGES=(
	# build
	make gcc clang libclang-rt-14-dev
	postgresql-15 postgresql-server-dev-15 libpq-dev libseccomp-dev
	# run: sandboxes (issue: supervisor)
	bubblewrap uidmap
	# test
	libipc-run-perl curl
)

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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
