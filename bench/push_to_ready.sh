#!/bin/bash
# bench/push_to_ready.sh - push -> ready of examples/hello (static) through the
# supervisor, side by side in the same run with the baselines' cold starts
# (sbx cold: plain fork/exec, bare bwrap, bare bwrap + seccomp; readiness =
# the server's byte after listen(), the same event nx-init probes for).
#
# nx cases (nxbench push; t0 just before the SQL call, end when a poll of
# nx.runtime every $POLL_US us sees state 'ready'):
#   nx/push-new   SELECT nx.push(sandbox, bytes): a new blob every time
#   nx/push-same  the same bytes every time (blob row and file exist)
#   nx/start      nx.stop (untimed), then nx.start: the spawn-only path
#   nx/restart    nx.restart of a running deployment (stop + start)
# Cases run interleaved in $ROUNDS rounds of $N/$ROUNDS samples (noisy 2-vCPU
# VM).  Then, with PROFILE=1, a `perf record` of $PROFILE_N more start and
# push-new samples and of bare bwrap runs, reduced to per-phase medians by
# profile_push.py.
#
# FAST_PATH=off sets nx.start_fast_path = off: every push, start and
# restart waits for a full converge pass, as before 0.4.0.
#
# Usage (as root): bench/push_to_ready.sh
#   env: N=100 ROUNDS=5 POLL_US=1000 NAPTIME=10 PROFILE=1 PROFILE_N=30 FAST_PATH=on
source "$(dirname "$0")/lib.sh"
N=${N:-100}
ROUNDS=${ROUNDS:-5}
POLL_US=${POLL_US:-1000}
NAPTIME=${NAPTIME:-10}
PROFILE=${PROFILE:-1}
PROFILE_N=${PROFILE_N:-30}
FAST_PATH=${FAST_PATH:-on}
PER=$((N / ROUNDS))
bench_init
report_to push_to_ready

build_baseline
build_nxbench
build_hello
machine_notes
RAW=$UWORK/p2r
rm -rf "$RAW" && as_user mkdir -p "$RAW"

nx_up "nx.naptime = $NAPTIME" "nx.start_fast_path = $FAST_PATH"
echo "# cluster: nx.naptime=$NAPTIME, nx.start_fast_path=$FAST_PATH, fsync on, poll every ${POLL_US} us; app: examples/hello static, $(stat -c %s "$WORK/hello") bytes"
sql "SELECT 1 FROM nx.create_sandbox('pb')" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null	# a second pass: the database follows the role (see BENCHMARKS.md)
as_user "$WORK/nxbench" until -d "$CONN" -q "SELECT count(*) FROM pg_database WHERE datname = 'nx_pb'" -e 1 -i 10000 -t 30 >/dev/null

SB=("${BWRAP[@]}" --ro-bind "$WORK/srv" /app/srv)
# sbx_case LABEL SBX-ARGS...
sbx_case() {
	local label=$1; shift
	bg_user "$WORK/sbx" cold -n "$PER" -w 2 -o "$RAW/$label" "$@" >/dev/null
}
nx_case() {
	bg_user "$WORK/nxbench" push -d "$CONN" -s pb -b "$WORK/hello" -m "$1" -n "$PER" -w 2 \
		-i "$POLL_US" -o "$RAW/nx-$1"
}
echo "## push -> ready, ms ($N samples per case in $ROUNDS interleaved rounds)"
for ((r = 1; r <= ROUNDS; r++)); do
	sbx_case plain -- "$WORK/srv" -p 18101 -r 3
	nx_case start
	sbx_case bwrap -- "${SB[@]}" /app/srv -p 8080 -r 3
	nx_case new
	sbx_case bwrap-seccomp -s -- "${SB[@]}" --seccomp 10 /app/srv -p 8080 -r 3
	nx_case same
	nx_case restart
	echo "# round $r done"
done

declare -A M P
row() {	# row LABEL FILE COLUMN(1-based) DIVISOR
	local v
	v=$(awk -v c="$3" -v d="$4" '{print $c / d}' "$2" | pctl)
	printf '%-34s %s\n' "$1" "$v"
	M[$1]=$(awk -v c="$3" -v d="$4" '{print $c / d}' "$2" | med)
	P[$1]=$(awk -v c="$3" -v d="$4" '{print $c / d}' "$2" | p99)
}
row plain/listen-byte "$RAW/plain" 1 1000
row bwrap-privnet/listen-byte "$RAW/bwrap" 1 1000
row bwrap+seccomp-privnet/listen-byte "$RAW/bwrap-seccomp" 1 1000
row nx/push-new "$RAW/nx-new" 2 1
row nx/push-same "$RAW/nx-same" 2 1
row nx/start "$RAW/nx-start" 2 1
row nx/restart "$RAW/nx-restart" 2 1

echo "## nx phases, ms from t0 (medians): call = SQL returned, launched = started_at, supready = ready_at; internal = ready_at - started_at"
for m in new same start restart; do
	f=$RAW/nx-$m
	printf '%-14s call=%s launched=%s supready=%s seen=%s | internal: %s\n' "$m" \
		"$(cut -f3 "$f" | med)" "$(cut -f4 "$f" | med)" "$(cut -f5 "$f" | med)" "$(cut -f2 "$f" | med)" \
		"$(cut -f6 "$f" | pctl)"
done

echo "## ratios to the same-run baselines (target: p50 <= 1.3x bare bwrap, p99 <= 2x)"
for c in nx/push-new nx/push-same nx/start nx/restart; do
	for b in bwrap-privnet/listen-byte bwrap+seccomp-privnet/listen-byte plain/listen-byte; do
		r50=$(ratio "${M[$c]}" "${M[$b]}")
		r99=$(ratio "${P[$c]}" "${P[$b]}")
		v=
		[ "$b" = plain/listen-byte ] || v=" p50 $(verdict "$r50" '<=' 1.3), p99 $(verdict "$r99" '<=' 2)"
		printf '%-14s / %-34s p50 %6sx  p99 %6sx%s\n' "$c" "$b" "$r50" "$r99" "$v"
	done
done

if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
	echo "## profile: perf record -k mono -a (sched exec/fork/exit, listen); ms"
	PD=$WORK/perf.data
	setsid perf record -q -k mono -a -o "$PD" \
		-e sched:sched_process_exec -e sched:sched_process_fork -e sched:sched_process_exit \
		-e syscalls:sys_exit_listen >/dev/null 2>&1 &
	PERF=$!
	BG_PGIDS+=("$PERF")
	sleep 2
	rm -f "$RAW/prof-start" "$RAW/prof-new"
	bg_user "$WORK/nxbench" push -d "$CONN" -s pb -b "$WORK/hello" -m start -n "$PROFILE_N" -w 1 -i "$POLL_US" -o "$RAW/prof-start"
	bg_user "$WORK/nxbench" push -d "$CONN" -s pb -b "$WORK/hello" -m new -n "$PROFILE_N" -w 1 -i "$POLL_US" -o "$RAW/prof-new"
	bg_user "$WORK/sbx" cold -n "$PROFILE_N" -w 1 -- "${SB[@]}" /app/srv -p 8080 -r 3 >/dev/null
	sleep 0.5
	kill -INT "$PERF"
	wait "$PERF" || true
	perf script -i "$PD" -F comm,pid,tid,time,event,trace 2>/dev/null >"$WORK/perf.txt"
	rm -f "$PD" "$PD.old"
	python3 "$BENCH/profile_push.py" "$WORK/perf.txt" "$RAW/prof-start" "$RAW/prof-new"
	echo "# (totals under perf are ~3 ms higher than without: tracing costs)"
fi

echo "## anatomy of the push call: server-side pieces on the same $(stat -c %s "$WORK/hello")-byte file (psql \\timing, ms, 10 each, autocommit)"
sql "CREATE TABLE bb_default (b bytea); CREATE TABLE bb_external (b bytea); ALTER TABLE bb_external ALTER b SET STORAGE EXTERNAL; CREATE TABLE bb_lz4 (b bytea COMPRESSION lz4)" >/dev/null
echo "# nx.blobs.bytes: storage $(sql "SELECT attstorage FROM pg_attribute WHERE attrelid = 'nx.blobs'::regclass AND attname = 'bytes'") (x = extended: compressed), compression '$(sql "SELECT attcompression FROM pg_attribute WHERE attrelid = 'nx.blobs'::regclass AND attname = 'bytes'")' (empty = default_toast_compression = $(sql 'SHOW default_toast_compression'))"
F=$WORK/hello
anat() {	# anat LABEL SQL
	local i
	printf '%-52s %s\n' "$1" "$({ echo '\timing on'; for ((i = 0; i < 10; i++)); do echo "$2;"; done; } |
		psql_ -o /dev/null | awk '/^Time:/ {print $2}' | pctl)"
}
anat "read the file (pg_read_binary_file)" "SELECT length(pg_read_binary_file('$F'))"
anat "sha256" "SELECT length(sha256(pg_read_binary_file('$F')))"
anat "nx.verify_binary (ELF checks + sha256)" "SELECT (nx.verify_binary(pg_read_binary_file('$F'))).ok"
anat "INSERT bytea, default storage (pglz, like nx.blobs)" "INSERT INTO bb_default VALUES (pg_read_binary_file('$F'))"
anat "INSERT bytea, STORAGE EXTERNAL (not compressed)" "INSERT INTO bb_external VALUES (pg_read_binary_file('$F'))"
anat "INSERT bytea, COMPRESSION lz4" "INSERT INTO bb_lz4 VALUES (pg_read_binary_file('$F'))"
anat "nx.push of bytes already stored (+ nx.remove)" "SELECT nx.remove((nx.push('pb', pg_read_binary_file('$F'))).deployment)"
echo "# stored sizes: default $(sql "SELECT pg_column_size(b) FROM bb_default LIMIT 1"), external $(sql "SELECT pg_column_size(b) FROM bb_external LIMIT 1"), lz4 $(sql "SELECT pg_column_size(b) FROM bb_lz4 LIMIT 1") bytes"
cp -r "$RAW" "$RESULTS/push_to_ready.raw"
