#!/bin/sh
# examples/visits-go/build.sh -- build the Go example app as a static
# binary with Debian's Go and Debian's lib/pq, without network access
# (Debian 12: apt-get install golang-go golang-github-lib-pq-dev).
#
#   examples/visits-go/build.sh [OUTPUT]      (default: ./visits-go here)
#
# GO111MODULE=off: GOPATH mode, the imports come from /usr/share/gocode,
# where Debian's golang-*-dev packages put their sources; nothing is
# downloaded.  CGO_ENABLED=0: no libc, a static binary.
set -eu
cd "$(dirname "$0")"
out=${1:-visits-go}
# go needs a writable build cache (~/.cache/go-build); a user without a
# writable home gets a temporary one
cache=$(go env GOCACHE 2>/dev/null || true)
case $cache in /*) ;; *) cache= ;; esac
if [ -z "${GOCACHE:-}" ] && ! { [ -n "$cache" ] && mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; }; then
	GOCACHE=$(mktemp -d)
	export GOCACHE
	trap 'rm -rf "$GOCACHE"' EXIT
fi
CGO_ENABLED=0 GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
	go build -trimpath -ldflags='-s -w' -o "$out" .
