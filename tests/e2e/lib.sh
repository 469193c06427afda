# lib.sh - harness for the triaged end-to-end tests.
#
# Sourced by every tests/e2e/cases/NNN-<what>.sh (one scenario per file).
# ctest runs each case as `bash CASE` with TRIAGED_BUILD_DIR (holds triaged
# and triagectl) and TRIAGED_SOURCE_DIR (the repository). Exit 0 = pass,
# 77 = skipped (a peer tool is missing), anything else = fail.
#
# Environment (all optional):
#   TRIAGED_BUILD_DIR     default: $TRIAGED_SOURCE_DIR/build
#   TRIAGED_SOURCE_DIR    default: two levels above this file
#   TRIAGED_SHARED        shared folder (docs, testdata, tools);
#                         default: $TRIAGED_SOURCE_DIR/../shared
#   TRIAGED_NODE_MODULES  node_modules holding dcmjs-dimse, when
#                         $TRIAGED_BUILD_DIR/npm/node_modules does not
#   TRIAGED_E2E_CACHE     where generated studies are cached between runs;
#                         default: $TRIAGED_BUILD_DIR/e2e-cache
#   TRIAGED_PYTHON        python3 with pydicom; default /usr/bin/python3
#   TRIAGED_E2E_KEEP=1    keep the temp dir (its path is printed)
#
# Everything a case starts runs on 127.0.0.1 with free ports, inside one
# temp dir $T; the EXIT trap kills every process started (by PID) and
# removes $T. Layout of $T:
#   $T/triaged.conf   the config        $T/triaged.log  the daemon's stderr
#   $T/var/spool      spool_dir         $T/var/triaged.db  database
#   $T/cwd            the daemon's working directory (must stay empty)
#   $T/out            sender logs, results, captures

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TRIAGED_SOURCE_DIR:=$(cd "$E2E_DIR/../.." && pwd)}"
: "${TRIAGED_BUILD_DIR:=$TRIAGED_SOURCE_DIR/build}"
: "${TRIAGED_SHARED:=$TRIAGED_SOURCE_DIR/../shared}"
SHARED=$TRIAGED_SHARED
TESTDATA=$SHARED/testdata
TOOLS=$SHARED/tools
PROFILE_FILE=$TOOLS/storescu-radiography.cfg
PY=${TRIAGED_PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1         # no __pycache__ in the source tree
DICOMTOOL=$E2E_DIR/dicomtool.py
TRIAGED=$TRIAGED_BUILD_DIR/triaged
TRIAGECTL=$TRIAGED_BUILD_DIR/triagectl
CASE=$(basename "$0" .sh)

# ------------------------------------------------------------------ output

# fd 3 is the case's stdout: messages stay visible even from functions whose
# output is redirected or captured (wait_for, $(...)).
exec 3>&1
log()  { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$CASE" "$*" >&3; }
step() { printf '\n%s [%s] == %s\n' "$(date +%H:%M:%S)" "$CASE" "$*" >&3; }
check() { log "check: $*"; }
ok()   { log "ok: $*"; }
note() { log "note: $*"; }

# fail MESSAGE: print it (and the daemon log tail), exit 1 (the EXIT trap
# cleans up). Only call it from the main shell, not from $(...).
fail() {
	log "FAIL: $*"
	if [ -s "${T:-/nonexistent}/triaged.log" ]; then
		log "last 30 lines of $T/triaged.log:"
		tail -n 30 "$T/triaged.log" | sed 's/^/    | /' >&3
	fi
	exit 1
}

skip() { log "SKIP: $*"; exit 77; }

# require_cmd CMD...: skip the case (77) when a peer tool is missing.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "required tool '$c' not found"
	done
}

# ------------------------------------------------------------------ temp dir, processes

T=$(mktemp -d "${TMPDIR:-/tmp}/triaged-e2e.$CASE.XXXXXX")
mkdir -p "$T/var" "$T/cwd" "$T/out"
PIDS=()
TRIAGED_PID=

track_pid()   { PIDS+=("$1"); }
untrack_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# proc_alive PID: running (a zombie counts as dead)
proc_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_cleanup() {
	local rc=$? p
	trap - EXIT
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		for _ in $(seq 1 30); do proc_alive "$p" || break; sleep 0.1; done
		if proc_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
		wait "$p" 2>/dev/null || true
	done
	if [ "${TRIAGED_E2E_KEEP:-0}" = 1 ]; then
		log "kept $T"
	else
		rm -rf "$T"
	fi
	case $rc in
	0)  log "PASS" ;;
	77) ;;
	*)  log "FAILED (exit $rc)" ;;
	esac
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until it
# succeeds; return 1 after SECONDS.
wait_for() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$(( $(date +%s%N) + limit * 1000000000 ))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			log "gave up after ${limit}s waiting for: $what"
			return 1
		fi
		sleep 0.1
	done
}

# elapsed_since NS: seconds (one decimal) since a $(date +%s%N) stamp
elapsed_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b-a)/1e9}'; }

# ------------------------------------------------------------------ config

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

CONF=$T/triaged.conf
SPOOL=$T/var/spool
DB=$T/var/triaged.db
PORT=
AE=TRIAGED
PROBE_AE=${PROBE_AE:-PROBE}
declare -A CFG=(
	[ae_title]=TRIAGED [port]="" [bind]=127.0.0.1 [max_associations]=16
	[allowed_calling_aes]="" [spool_dir]=$SPOOL [database]=$DB
	[min_free_mb]=0 [stable_seconds]=2 [force_seconds]=3600
)
CONF_EXTRA=
CONF_ROUTES=

# receive_only: put one [route] that matches nothing into the config. A file
# with any [route] does not get the default routes (design section 3), so no
# analysis job runs and nothing but what was received lands in the spool:
# the receive-stage cases (0xx, 1xx) call it before write_config.
receive_only() {
	CONF_ROUTES='[route e2e-receive-only]
; matches nothing: keeps the default routes, and analysis, out of this case
modality = E2E-NO-SUCH-MODALITY
backend = reference'
}

# write_config [key=value...]: (re)write $CONF. Keys: ae_title port bind
# max_associations allowed_calling_aes spool_dir database min_free_mb
# stable_seconds force_seconds. Values persist across calls (a later call
# changes only what it names). $CONF_ROUTES and $CONF_EXTRA are appended
# verbatim.
write_config() {
	local kv
	for kv in "$@"; do
		[ -n "${CFG[${kv%%=*}]+set}" ] || fail "write_config: unknown key ${kv%%=*}"
		CFG[${kv%%=*}]=${kv#*=}
	done
	[ -n "${CFG[port]}" ] || CFG[port]=$(free_port)
	PORT=${CFG[port]}
	AE=${CFG[ae_title]}
	SPOOL=${CFG[spool_dir]}
	DB=${CFG[database]}
	cat > "$CONF.new" <<-EOF
	; e2e case $CASE
	[server]
	ae_title = ${CFG[ae_title]}
	port = ${CFG[port]}
	bind = ${CFG[bind]}
	max_associations = ${CFG[max_associations]}
	allowed_calling_aes = ${CFG[allowed_calling_aes]}

	[storage]
	spool_dir = ${CFG[spool_dir]}
	database = ${CFG[database]}
	min_free_mb = ${CFG[min_free_mb]}

	[study]
	stable_seconds = ${CFG[stable_seconds]}
	force_seconds = ${CFG[force_seconds]}
	EOF
	[ -z "$CONF_ROUTES" ] || printf '\n%s\n' "$CONF_ROUTES" >> "$CONF.new"
	[ -z "$CONF_EXTRA" ] || printf '\n%s\n' "$CONF_EXTRA" >> "$CONF.new"
	mv "$CONF.new" "$CONF"
	log "config $CONF:"
	grep -v '^;' "$CONF" | grep -v '^$' | sed 's/^/    /'
}

# ------------------------------------------------------------------ daemon

require_binaries() {
	[ -x "$TRIAGED" ] || fail "no triaged binary at $TRIAGED (set TRIAGED_BUILD_DIR)"
	[ -x "$TRIAGECTL" ] || fail "no triagectl binary at $TRIAGECTL (set TRIAGED_BUILD_DIR)"
}

echo_ok() { # echo_ok [CALLING [CALLED]]: one C-ECHO, quiet, bounded
	echoscu -to 3 -ta 3 -td 3 -aet "${1:-$PROBE_AE}" -aec "${2:-$AE}" 127.0.0.1 "$PORT" >/dev/null 2>&1
}

# start_triaged: run `triaged -c $CONF` in the background (cwd $T/cwd,
# stderr appended to $T/triaged.log), then wait until it answers C-ECHO
# from $PROBE_AE (15 s at most).
start_triaged() {
	require_binaries
	local t0 rc
	[ -f "$CONF" ] || write_config
	log "start: triaged -c $CONF (port $PORT, AE $AE)"
	echo "---- start $(date +%T.%N)" >> "$T/triaged.log"
	t0=$(date +%s%N)
	(cd "$T/cwd" && exec "$TRIAGED" -c "$CONF") 2>>"$T/triaged.log" >>"$T/triaged.stdout" 3>&- &
	TRIAGED_PID=$!
	track_pid "$TRIAGED_PID"
	while ! echo_ok; do
		if ! proc_alive "$TRIAGED_PID"; then
			rc=0; wait "$TRIAGED_PID" || rc=$?
			untrack_pid "$TRIAGED_PID"; TRIAGED_PID=
			fail "triaged exited with status $rc during startup"
		fi
		if [ "$(( ($(date +%s%N) - t0) / 1000000000 ))" -ge 15 ]; then
			fail "triaged (pid $TRIAGED_PID) does not answer C-ECHO on 127.0.0.1:$PORT after 15 s"
		fi
		sleep 0.1
	done
	ok "triaged pid $TRIAGED_PID answers C-ECHO after $(elapsed_since "$t0") s"
}

# stop_triaged [SECONDS]: SIGTERM, wait (15 s default), assert exit 0.
stop_triaged() {
	local limit=${1:-15} t0 rc=0
	[ -n "$TRIAGED_PID" ] || fail "stop_triaged: triaged is not running"
	check "SIGTERM makes triaged exit with status 0 within $limit s"
	t0=$(date +%s%N)
	kill -TERM "$TRIAGED_PID"
	if ! wait_for "$limit" "triaged to exit after SIGTERM" eval '! proc_alive '"$TRIAGED_PID"; then
		fail "triaged (pid $TRIAGED_PID) still running $limit s after SIGTERM"
	fi
	wait "$TRIAGED_PID" || rc=$?
	untrack_pid "$TRIAGED_PID"
	TRIAGED_PID=
	[ "$rc" = 0 ] || fail "triaged exited with status $rc after SIGTERM (expected 0)"
	ok "triaged exited 0, $(elapsed_since "$t0") s after SIGTERM"
}

# kill9_triaged: SIGKILL, reap.
kill9_triaged() {
	[ -n "$TRIAGED_PID" ] || fail "kill9_triaged: triaged is not running"
	kill -KILL "$TRIAGED_PID"
	wait "$TRIAGED_PID" 2>/dev/null || true
	untrack_pid "$TRIAGED_PID"
	log "killed triaged pid $TRIAGED_PID with SIGKILL"
	TRIAGED_PID=
}

# assert_alive WHEN: triaged still runs and answers C-ECHO.
assert_alive() {
	[ -n "$TRIAGED_PID" ] && proc_alive "$TRIAGED_PID" || fail "triaged is no longer running ($*)"
	echo_ok || fail "triaged no longer answers C-ECHO ($*)"
}

# ------------------------------------------------------------------ triagectl, json

# ctl ARGS...: triagectl -c $CONF ARGS... (its exit status is returned)
ctl() { "$TRIAGECTL" -c "$CONF" "$@"; }

# ctl_json OUT ARGS...: run `triagectl -c $CONF ARGS...` (ARGS should
# include --json), store stdout in OUT; fail unless exit 0 and valid JSON.
ctl_json() {
	local out=$1 rc=0
	shift
	"$TRIAGECTL" -c "$CONF" "$@" >"$out" 2>"$out.err" || rc=$?
	[ "$rc" = 0 ] || fail "triagectl $* exited $rc: $(head -c 400 "$out.err")"
	"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null \
		|| fail "triagectl $* printed no valid JSON: $(head -c 400 "$out")"
}

# json FILE EXPR: evaluate the python expression EXPR with d = the JSON
# document in FILE; prints strings/numbers plainly, the rest as JSON.
json() {
	"$PY" - "$1" "$2" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1]))
	r = eval(sys.argv[2], {"d": d, "len": len, "sorted": sorted, "set": set, "sum": sum})
	print(r if isinstance(r, (str, int, float)) and not isinstance(r, bool) else json.dumps(r))
	EOF
}

# study_field STUDY_UID FIELD: from `triagectl list --studies --json`
study_field() {
	ctl_json "$T/out/list.json" list --studies --json
	json "$T/out/list.json" "[s.get('$2') for s in d['studies'] if s['study_uid'] == '$1'][0] if any(s['study_uid'] == '$1' for s in d['studies']) else 'ABSENT'"
}

# ------------------------------------------------------------------ DICOM helpers

dicomtool() { "$PY" "$DICOMTOOL" "$@"; }

# dataset_bytes_equal A B: the datasets after the File Meta are identical
dataset_bytes_equal() { "$PY" "$DICOMTOOL" same-dataset "$1" "$2"; }

# dcm_get FILE KEYWORD: one attribute (pydicom keyword) of a file
dcm_get() {
	"$PY" -c 'import sys,warnings; warnings.simplefilter("ignore"); import pydicom
ds=pydicom.dcmread(sys.argv[1], force=True, stop_before_pixels=True); print(ds.get(sys.argv[2], ""))' "$1" "$2"
}

# stored_files: every file under the spool's studies/ (sorted)
stored_files() { [ ! -d "$SPOOL/studies" ] || find "$SPOOL/studies" -type f | sort; }
stored_count() { stored_files | wc -l; }
tmp_count() { if [ -d "$SPOOL/tmp" ]; then find "$SPOOL/tmp" -mindepth 1 | wc -l; else echo 0; fi; }

# assert_nothing_outside_spool: the daemon wrote only the database, the
# spool's studies/<uid>/<uid>.dcm and tmp/, and nothing in its cwd.
assert_nothing_outside_spool() {
	local bad
	check "triaged wrote nothing outside spool_dir (studies/, tmp/, results/ (empty: no route here), its lock triaged.pid), the database and its -wal/-shm/-journal"
	bad=$(find "$T/var" "$T/cwd" -mindepth 1 \
		! -path "$SPOOL" ! -path "$SPOOL/studies" ! -path "$SPOOL/tmp" ! -path "$SPOOL/tmp/*" \
		! -path "$SPOOL/triaged.pid" ! -path "$SPOOL/results" \
		! -regex "$SPOOL/studies/[0-9.]+" ! -regex "$SPOOL/studies/[0-9.]+/[0-9.]+\.dcm" \
		! -path "$DB" ! -path "$DB-wal" ! -path "$DB-shm" ! -path "$DB-journal" -print)
	[ -z "$bad" ] || fail "unexpected paths written by triaged: $(echo $bad)"
	ok "only the database and the spool layout exist under $T/var, $T/cwd is empty"
}

# ------------------------------------------------------------------ senders

# A copy of the shared storescu profile with the uncompressed group split
# into one context per syntax: storescu then sends implicit/explicit/big
# endian files in their own syntax when the receiver accepts it, instead of
# converting them to whichever one syntax the receiver picked.
PROFILE=$T/storescu-radiography-split.cfg

# storescu_send LOG CALLING FILES...: storescu -v with the profile, one
# association, continue after failures; output in LOG. Returns storescu's
# exit status (callers decide; per-file results come from sender_results).
storescu_send() {
	local out=$1 calling=$2 rc=0
	shift 2
	storescu -v -to 10 -ta 10 -td 60 -aet "$calling" -aec "$AE" -xf "$PROFILE" Radiography -nh \
		127.0.0.1 "${SEND_PORT:-$PORT}" "$@" >"$out" 2>&1 || rc=$?
	return "$rc"
}

# dcmsend_send REPORT LOG CALLING FILES...: dcmsend as-is (never
# decompress, File Meta optional, no UID checks, continue on errors).
dcmsend_send() {
	local report=$1 out=$2 calling=$3 rc=0
	shift 3
	dcmsend -v -to 10 -ta 10 -td 60 -aet "$calling" -aec "$AE" -dn +f -nuc -nh --create-report-file "$report" \
		127.0.0.1 "${SEND_PORT:-$PORT}" "$@" >"$out" 2>&1 || rc=$?
	return "$rc"
}

# node_modules_dir: where dcmjs-dimse is installed ("" when nowhere)
node_modules_dir() {
	local d
	for d in "$TRIAGED_BUILD_DIR/npm/node_modules" "${TRIAGED_NODE_MODULES:-}"; do
		[ -n "$d" ] && [ -f "$d/dcmjs-dimse/package.json" ] && { echo "$d"; return 0; }
	done
	echo ""
}

require_dimse() {
	require_cmd node
	NODE_MODULES=$(node_modules_dir)
	[ -n "$NODE_MODULES" ] || skip "dcmjs-dimse not installed (neither $TRIAGED_BUILD_DIR/npm/node_modules nor \$TRIAGED_NODE_MODULES)"
}

# dimse_send LOG CALLING FILES... [--each]: shared/tools/dimse-send.js
dimse_send() {
	local out=$1 calling=$2 rc=0
	shift 2
	NODE_PATH=$NODE_MODULES node "$TOOLS/dimse-send.js" 127.0.0.1 "${SEND_PORT:-$PORT}" "$calling" "$AE" "$@" \
		>"$out" 2>&1 || rc=$?
	return "$rc"
}

# rawscu ARGS...: tests/e2e/rawscu.py HOST PORT CALLING CALLED ...
rawscu() { "$PY" "$E2E_DIR/rawscu.py" 127.0.0.1 "${SEND_PORT:-$PORT}" "$@"; }

# sender_results KIND LOG [FILES...]: per-file result table (TSV: file,
# code, text). KIND: storescu (LOG = its -v output), dcmsend (LOG = its
# report file), dimse (dimse-send.js output), rawscu. FILES: what was
# given to the sender (files it never mentions count as NOTSENT).
sender_results() { "$PY" "$DICOMTOOL" results "$@"; }

# print_results TSV: the table, aligned, file names shortened
print_results() {
	awk -F'\t' '{ n=split($1, p, "/"); f=p[n-1] "/" p[n]; printf "    %-62s %-10s %s\n", f, $2, $3 }' "$1"
}

# wiretap_start DIR [BYTES_PER_S]: a recording relay in front of the
# daemon; senders that use ${SEND_PORT} go through it (see wiretap.py).
# With a rate, it also slows the sender down to about that many bytes/s.
wiretap_start() {
	local dir=$1 rate=${2:-}
	SEND_PORT=$(free_port)
	"$PY" "$E2E_DIR/wiretap.py" "$SEND_PORT" 127.0.0.1 "$PORT" "$dir" ${rate:+--rate "$rate"} >"$dir.log" 2>&1 3>&- &
	WIRETAP_PID=$!
	track_pid "$WIRETAP_PID"
	wait_for 10 "wiretap to listen" grep -q ready "$dir.log" || fail "wiretap did not start: $(cat "$dir.log")"
	log "wiretap: senders go through 127.0.0.1:$SEND_PORT, which records every dataset sent to triaged${rate:+ (limited to $rate bytes/s)}"
}

wiretap_stop() {
	[ -n "${WIRETAP_PID:-}" ] || return 0
	kill -TERM "$WIRETAP_PID" 2>/dev/null || true
	wait "$WIRETAP_PID" 2>/dev/null || true
	untrack_pid "$WIRETAP_PID"
	WIRETAP_PID=
	SEND_PORT=
}

# ------------------------------------------------------------------ test data

# testdata_files DIR...: the shared test files of these folders, sorted
testdata_files() {
	local d
	for d in "$@"; do find "$TESTDATA/$d" -type f -name '*.dcm'; done | sort
}

# distinct_sops FILE...: number of distinct SOP Instance UIDs
distinct_sops() {
	"$PY" "$DICOMTOOL" info "$@" | "$PY" -c 'import json,sys; print(len({json.loads(l)["sop_uid"] for l in sys.stdin}))'
}

# make_studies VAR ARGS...: run shared/tools/make-studies ARGS (without
# --out) into a cache dir keyed by ARGS, reused across cases and runs; sets
# VAR to that dir. Use distinct --seed values for distinct sets: the same
# seed gives the same UIDs whatever the kind.
make_studies() {
	local var=$1 key dir cache
	shift
	cache=${TRIAGED_E2E_CACHE:-$TRIAGED_BUILD_DIR/e2e-cache}
	mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$T/cache
	mkdir -p "$cache"
	key=$(printf '%s ' "$@" | md5sum | cut -c1-12)
	dir=$cache/studies-$key
	# one generator at a time (parallel ctest); a finished set has .complete
	(
		flock 9
		if [ ! -f "$dir/.complete" ]; then
			rm -rf "$dir.tmp"
			"$PY" "$TOOLS/make-studies" "$@" --out "$dir.tmp" > "$T/out/make-studies.log" 2>&1 \
				&& printf '%s\n' "$*" > "$dir.tmp/.complete" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
		fi
	) 9>"$cache/.lock" || true
	[ -f "$dir/.complete" ] || fail "make-studies $* failed: $(tail -n 5 "$T/out/make-studies.log" 2>/dev/null)"
	log "studies ($*): $dir, $(find "$dir" -name '*.dcm' | wc -l) files"
	printf -v "$var" '%s' "$dir"
}

# ------------------------------------------------------------------ start

require_cmd echoscu storescu "$PY"
"$PY" -c 'import pydicom, numpy' 2>/dev/null || skip "$PY lacks pydicom/numpy"
[ -d "$TESTDATA" ] || fail "shared test data not found at $TESTDATA (set TRIAGED_SHARED)"
"$PY" "$DICOMTOOL" split-profile "$PROFILE_FILE" "$PROFILE"
log "temp dir $T; build dir $TRIAGED_BUILD_DIR; shared $SHARED"
