# 910-triagectl: every triagectl command, as text and as --json, with its
# exit codes, on a queue the real daemon made - and retry/cancel while the
# daemon is processing.
#
# Config:   [analysis] workers = 1; routes told apart by the calling AE:
#             GOOD    -> the reference backend
#             BROKEN  -> an exec program that exits 3 (the job fails)
#             SLOW    -> an exec program that waits for a gate file, then
#                        runs the example backend
#           destinations: archive (folder, originals and results) and pacs
#           (dicom, results only, a port where nothing listens at first,
#           max_age 3s: its dispatches go dead).
# Modality: storescu, one CR study per calling AE (two from SLOW).
# Expected: status/list/show/route/echo/purge in text and valid JSON with the
#           documented fields; exit 2 for usage errors, 3 for what does not
#           exist, 1 for refused actions; while the daemon runs: cancel of
#           the pending SLOW job (never analysed), cancel of the running one
#           (its analysis ends, nothing recorded), retry of the failed job
#           after the program is fixed (done, results delivered), retry of
#           the dead dispatches once a PACS (storescp) listens (delivered,
#           the SR and SC files arrive). Text tables fit 132 columns. Run as
#           root on a database owned by another user, triagectl writes as
#           that user (no root-owned -wal/-shm to lock the daemon out).
. "$(dirname "$0")/../lib.sh"
require_binaries
require_cmd storescp
EXAMPLE=$TRIAGED_SOURCE_DIR/src/backends/example-backend
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 (the example backend's interpreter) is missing"

make_studies CR --kind cr-chest --count 4 --size 256x208 --seed 9101
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }
S_GOOD=$(study_of "${SDIRS[0]}")
S_BROKEN=$(study_of "${SDIRS[1]}")
S_SLOW1=$(study_of "${SDIRS[2]}")
S_SLOW2=$(study_of "${SDIRS[3]}")

BIN=$T/bin
mkdir -p "$BIN" "$T/out/ran"
printf '#!/bin/sh\ncat > /dev/null\necho "model: cannot load weights" >&2\nexit 3\n' > "$BIN/broken.sh"
printf '#!/bin/sh\ntouch "%s/out/ran/$TRIAGED_JOB_ID"\nwhile [ ! -e "%s/gate" ]; do sleep 0.1; done\nexec "%s" "$@"\n' \
	"$T" "$T" "$EXAMPLE" > "$BIN/slow.sh"
chmod 755 "$BIN"/*.sh
PACS_PORT=$(free_port)
CONF_ROUTES="[route good]
modality = CR
calling_ae = GOOD
backend = site-ai

[backend site-ai]
type = reference
algorithm_name = Site Fracture AI
algorithm_version = 2.1

[route broken]
modality = CR
calling_ae = BROKEN
backend = broken

[route slow]
modality = CR
calling_ae = SLOW
backend = slow

[backend broken]
type = exec
command = $BIN/broken.sh

[backend slow]
type = exec
command = $BIN/slow.sh
timeout_s = 120"
CONF_EXTRA="[analysis]
workers = 1
max_attempts = 1

[destination archive]
type = folder
path = $T/archive
send = originals, results

[destination pacs]
type = dicom
host = 127.0.0.1
port = $PACS_PORT
ae_title = PACS
send = results
max_age = 3s
retry_base_s = 1
retry_max_s = 1"
write_config stable_seconds=1
start_triaged

send() { # send AE DIR
	storescu_send "$T/out/store-$1.log" "$1" $(find "$2" -name '*.dcm' | sort) \
		|| fail "storescu from $1 failed: $(tail -n 5 "$T/out/store-$1.log")"
}
# job_of STUDY: "ID STATE" of the study's job (nothing while there is none)
job_of() {
	ctl_json "$T/out/jobs.json" list --json --limit 100
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
state_is() { [ "$(job_of "$1" | cut -d' ' -f2)" = "$2" ]; }
# rc_is WANT ARGS...: triagectl ARGS exits WANT (stderr kept for the message)
rc_is() {
	local want=$1 rc=0
	shift
	ctl "$@" > "$T/out/rc.out" 2> "$T/out/rc.err" || rc=$?
	[ "$rc" = "$want" ] || fail "triagectl $* exited $rc, expected $want: $(head -c 300 "$T/out/rc.err")"
	ok "triagectl $* -> exit $rc $(head -c 120 "$T/out/rc.err" | tr '\n' ' ')"
}
# assert_py FILE CODE: python assertions with d = the JSON in FILE
assert_py() {
	"$PY" - "$1" "$2" <<-'EOF' >&3 || fail "assertion failed on $1"
	import json, sys
	d = json.load(open(sys.argv[1]))
	exec(sys.argv[2])
	EOF
}
# fits FILE: no line longer than 132 columns
fits() {
	local w
	w=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$1")
	[ "$w" -le 132 ] || fail "$2: a line of $w columns (more than 132): $(awk 'length($0) > 132' "$1" | head -n 1)"
}

step "a queue made by the daemon: done, failed, running, pending, dead"
send GOOD "${SDIRS[0]}"
wait_for 40 "the GOOD job to be done" state_is "$S_GOOD" done || fail "GOOD: $(job_of "$S_GOOD")"
send BROKEN "${SDIRS[1]}"
wait_for 40 "the BROKEN job to fail" state_is "$S_BROKEN" failed || fail "BROKEN: $(job_of "$S_BROKEN")"
send SLOW "${SDIRS[2]}"
wait_for 40 "the first SLOW job to run" state_is "$S_SLOW1" running || fail "SLOW1: $(job_of "$S_SLOW1")"
send SLOW "${SDIRS[3]}"
wait_for 40 "the second SLOW job to be pending" state_is "$S_SLOW2" pending || fail "SLOW2: $(job_of "$S_SLOW2")"
dead() {
	ctl_json "$T/out/dead.json" list --dispatches --state dead --json
	[ "$(json "$T/out/dead.json" "len(d['dispatches'])")" -gt 0 ]
}
wait_for 30 "the GOOD results to the pacs to go dead" dead || fail "no dead dispatch"
J_GOOD=$(job_of "$S_GOOD" | cut -d' ' -f1)
J_BROKEN=$(job_of "$S_BROKEN" | cut -d' ' -f1)
J_SLOW1=$(job_of "$S_SLOW1" | cut -d' ' -f1)
J_SLOW2=$(job_of "$S_SLOW2" | cut -d' ' -f1)
ok "jobs: good $J_GOOD done, broken $J_BROKEN failed, slow $J_SLOW1 running, slow $J_SLOW2 pending"

step "status"
ctl status > "$T/out/status.txt" || fail "status exited $?"
sed 's/^/    /' "$T/out/status.txt" >&3
grep -q '^daemon *up (pid '"$TRIAGED_PID"')' "$T/out/status.txt" || fail "status does not say the daemon is up with its pid"
grep -q '^jobs .*done 1' "$T/out/status.txt" && grep -q '^jobs .*failed 1' "$T/out/status.txt" \
	|| fail "status text lacks the job counts"
grep -q '^spool .*MB used, .*MB free' "$T/out/status.txt" || fail "status text lacks spool use and free space"
ctl_json "$T/out/status.json" status --json
assert_py "$T/out/status.json" '
assert d["daemon"] == "up" and d["pid"] > 0, d
assert d["jobs"] == {"done": 1, "failed": 1, "running": 1, "pending": 1}, d["jobs"]
assert d["studies"]["complete"] == 4 and d["instances"] >= 4, d
assert d["dispatches"].get("dead", 0) >= 1 and d["dispatches"].get("delivered", 0) >= 1, d["dispatches"]
assert d["spool_bytes"] > 0 and d["free_bytes"] > 0, d
assert d["last_hour"]["instances"] >= 4, d'
assert_py "$T/out/status.json" 'assert d["unconfigured_destinations"] == {}, d'
# the same database seen with a configuration that lost [destination pacs]
awk '/^\[destination pacs\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$CONF" > "$T/no-pacs.conf"
"$TRIAGECTL" -c "$T/no-pacs.conf" status --json > "$T/out/orphans.json" || fail "status with no-pacs.conf"
assert_py "$T/out/orphans.json" 'assert d["unconfigured_destinations"].get("pacs", 0) >= 1, d["unconfigured_destinations"]'
"$TRIAGECTL" -c "$T/no-pacs.conf" status | grep -q '^WARNING .*destination pacs, which is not in the configuration' \
	|| fail "status text does not warn about the unconfigured destination"
ok "status: daemon up, counts per state, spool use, free space, last hour; warns of dispatches to a destination no longer configured"

step "list"
ctl list > "$T/out/list.txt" || fail "list exited $?"
sed 's/^/    /' "$T/out/list.txt" >&3
fits "$T/out/list.txt" "list"
head -n 1 "$T/out/list.txt" | grep -q 'ID.*STATE.*ROUTE.*BACKEND.*ACCESSION.*PATIENT ID.*OUTCOME' || fail "list header"
[ "$(grep -c '^[0-9]' "$T/out/list.txt")" = 4 ] || fail "list shows $(grep -c '^[0-9]' "$T/out/list.txt") jobs, expected 4"
ctl_json "$T/out/list.json" list --json
assert_py "$T/out/list.json" '
jobs = d["jobs"]
assert len(jobs) == 4, jobs
for j in jobs:
    for k in ("id", "state", "route", "backend", "study_uid", "accession", "patient_id",
              "modality", "attempts", "outcome", "error", "priority", "age_s", "study_date"):
        assert k in j, (k, j)
ids = [j["id"] for j in jobs]
assert ids == sorted(ids, reverse=True), ("newest first", ids)
b = [j for j in jobs if j["route"] == "broken"][0]
assert b["state"] == "failed" and "cannot load weights" in b["error"], b
g = [j for j in jobs if j["route"] == "good"][0]
assert g["state"] == "done" and g["outcome"] in ("positive", "negative"), g'
ctl_json "$T/out/l.json" list --state failed --json
[ "$(json "$T/out/l.json" "[j['id'] for j in d['jobs']]")" = "[$J_BROKEN]" ] || fail "list --state failed: $(cat "$T/out/l.json")"
ctl_json "$T/out/l.json" list --route slow --json
[ "$(json "$T/out/l.json" "[j['id'] for j in d['jobs']]")" = "[$J_SLOW2, $J_SLOW1]" ] || fail "list --route slow"
ctl_json "$T/out/l.json" list --route slow --state pending --limit 5 --since 1h --json
[ "$(json "$T/out/l.json" "[j['id'] for j in d['jobs']]")" = "[$J_SLOW2]" ] || fail "list --route slow --state pending"
ctl_json "$T/out/l.json" list --limit 1 --json
[ "$(json "$T/out/l.json" "len(d['jobs'])")" = 1 ] || fail "list --limit 1"
ctl list --state cancelled > "$T/out/l.txt" && grep -q '(no jobs)' "$T/out/l.txt" || fail "an empty list says so"
rc_is 2 list --state sleeping
rc_is 2 list --limit 0
rc_is 2 list --since yesterday
ctl list --studies > "$T/out/ls.txt" || fail "list --studies"
sed 's/^/    /' "$T/out/ls.txt" >&3
fits "$T/out/ls.txt" "list --studies"
ctl_json "$T/out/ls.json" list --studies --json
assert_py "$T/out/ls.json" '
s = d["studies"]
assert len(s) == 4 and all(x["state"] == "complete" for x in s), s
assert {"study_uid", "patient_id", "accession", "modality", "instances"} <= set(s[0]), s[0]'
ctl list --dispatches > "$T/out/ld.txt" || fail "list --dispatches"
sed 's/^/    /' "$T/out/ld.txt" >&3
fits "$T/out/ld.txt" "list --dispatches"
ctl_json "$T/out/ld.json" list --dispatches --destination pacs --state dead --json
assert_py "$T/out/ld.json" '
x = d["dispatches"]
assert x and all(y["destination"] == "pacs" and y["state"] == "dead" for y in x), x
assert all(y["kind"] == "result" for y in x), x'
ok "list: jobs newest first with every field, filters, limits, studies, dispatches"

step "show"
ctl show "$J_BROKEN" > "$T/out/show.txt" || fail "show job"
sed 's/^/    /' "$T/out/show.txt" >&3
grep -q 'cannot load weights' "$T/out/show.txt" || fail "show of the failed job lacks its error"
ctl_json "$T/out/sj.json" show "$J_GOOD" --json
assert_py "$T/out/sj.json" '
assert d["job"]["id"] == '"$J_GOOD"' and d["job"]["state"] == "done", d["job"]
assert len(d["instances"]) >= 1 and d["attempts"] and d["attempts"][0]["status"] == "ok", d
assert any(r["kind"] == "sr" for r in d["results"]), d["results"]
assert {x["destination"] for x in d["dispatches"]} == {"archive", "pacs"}, d["dispatches"]
a = d["result"]["algorithm"]
assert a["name"] == "Site Fracture AI" and a["version"] == "2.1", ("algorithm_name override", a)'
ctl show "$S_GOOD" > "$T/out/ss.txt" || fail "show study"
grep -q "^study *$S_GOOD" "$T/out/ss.txt" || fail "show study text"
ctl_json "$T/out/ss.json" show "$S_GOOD" --json
assert_py "$T/out/ss.json" '
assert d["study"]["study_uid"] == "'"$S_GOOD"'", d["study"]
assert d["instances"] and d["jobs"] and d["results"] and d["dispatches"], d.keys()
assert d["study"]["files_removed"] is None, d["study"]'
rc_is 3 show 999999
rc_is 3 show 1.2.3.4.5.6.7
rc_is 2 show
ok "show: job and study, text and JSON"

step "cancel while the daemon processes"
rc_is 0 cancel "$J_SLOW2"
rc_is 1 cancel "$J_SLOW2"         # cancelled already
rc_is 0 cancel "$J_SLOW1"         # running: its analysis ends, nothing is recorded
rc_is 1 cancel "$J_GOOD"          # done
rc_is 3 cancel 999999
rc_is 2 cancel abc
rc_is 2 cancel
touch "$T/gate"
sleep 3
[ -e "$T/out/ran/$J_SLOW2" ] && fail "the cancelled pending job $J_SLOW2 was analysed"
ctl_json "$T/out/c.json" show "$J_SLOW1" --json
assert_py "$T/out/c.json" '
assert d["job"]["state"] == "cancelled", d["job"]
assert d["results"] == [], d["results"]'
ctl_json "$T/out/c.json" show "$J_SLOW2" --json
assert_py "$T/out/c.json" 'assert d["job"]["state"] == "cancelled" and d["job"]["attempts"] == 0, d["job"]'
ok "cancelled: the pending job never ran, the running one recorded nothing"

step "retry while the daemon processes"
rc_is 1 retry "$J_GOOD"           # done jobs are not retried
rc_is 3 retry 999999
rc_is 2 retry
rc_is 2 retry --state running
printf '#!/bin/sh\nexec "%s" "$@"\n' "$EXAMPLE" > "$BIN/broken.sh"
ctl_json "$T/out/r.json" retry "$J_BROKEN" --json
assert_py "$T/out/r.json" 'assert d["changed"] == 1, d'
wait_for 40 "the retried job to be done" state_is "$S_BROKEN" done || fail "retried job: $(job_of "$S_BROKEN")"
ctl_json "$T/out/r.json" show "$J_BROKEN" --json
assert_py "$T/out/r.json" '
assert d["job"]["state"] == "done" and d["job"]["error"] == "", d["job"]
assert [a["status"] for a in d["attempts"]] == ["failed", "ok"], d["attempts"]
assert any(r["kind"] == "sr" for r in d["results"]), d["results"]'
ok "the failed job, retried after its program was fixed, is done with results"

step "echo, then retry of the dead dispatches once the PACS listens"
rc_is 0 echo archive
rc_is 1 echo pacs
grep -q FAILED "$T/out/rc.out" || fail "echo pacs does not say FAILED"
rc_is 3 echo nosuch
mkdir -p "$T/pacs"
storescp -aet PACS +xa -od "$T/pacs" "$PACS_PORT" > "$T/out/storescp.log" 2>&1 3>&- &
track_pid $!
wait_for 10 "storescp to answer" echoscu -to 2 -aet TRIAGED -aec PACS 127.0.0.1 "$PACS_PORT" || fail "storescp did not start"
ctl_json "$T/out/e.json" echo pacs --json
assert_py "$T/out/e.json" 'assert d["ok"] is True and d["destination"] == "pacs", d'
ctl_json "$T/out/r.json" retry --state dead --destination pacs --json
assert_py "$T/out/r.json" 'assert d["changed"] >= 1, d'
undelivered() {
	ctl_json "$T/out/u.json" list --dispatches --destination pacs --json --limit 1000
	[ "$(json "$T/out/u.json" "len([x for x in d['dispatches'] if x['state'] != 'delivered'])")" = 0 ]
}
wait_for 60 "every pacs dispatch to be delivered" undelivered || fail "pacs dispatches: $(cat "$T/out/u.json")"
n_sr=$(find "$T/pacs" -name 'SR*' | wc -l)
n_sc=$(find "$T/pacs" -name 'SC*' | wc -l)
[ "$n_sr" -ge 2 ] && [ "$n_sc" -ge 2 ] || fail "the PACS has $n_sr SR and $n_sc SC files, expected at least 2 of each (two done jobs)"
grep -l 'Site Fracture AI' "$T/pacs"/SR* > /dev/null || fail "no SR at the PACS names the algorithm Site Fracture AI"
ok "dead dispatches retried: delivered, $n_sr SR and $n_sc SC files at the PACS"

step "route (dry run)"
f=$(find "${SDIRS[0]}" -name '*.dcm' | sort | head -n 1)
ctl route "$f" > "$T/out/route.txt" || fail "route exited $?"
sed 's/^/    /' "$T/out/route.txt" >&3
ctl_json "$T/out/route.json" route "$f" --json
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "good" in json.dumps(d) and "slow" in json.dumps(d), d' \
	"$T/out/route.json" || fail "route --json does not name the routes"
rc_is 1 route "$T/no-such-file.dcm"
rc_is 2 route

step "purge (nothing is old enough) and usage errors"
ctl_json "$T/out/p.json" purge --older-than 7d --dry-run --json
assert_py "$T/out/p.json" 'assert d["dry_run"] is True and d["studies"] == 0, d'
ctl purge --older-than 7d > "$T/out/p.txt" || fail "purge"
grep -q '^purged 0 studies' "$T/out/p.txt" || fail "purge text: $(cat "$T/out/p.txt")"
rc_is 2 purge
rc_is 2 purge --older-than soon
rc_is 2 frobnicate
rc_is 2 list --bogus
rc=0; "$TRIAGECTL" > /dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "no command: exit $rc, expected 2"
"$TRIAGECTL" --help > "$T/out/help.txt" || fail "--help exit $?"
for c in status list show retry cancel purge echo route; do
	grep -q "^  $c" "$T/out/help.txt" || fail "--help does not list $c"
done
rc=0; "$TRIAGECTL" -c "$T/no-such.conf" status > /dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a missing config: exit $rc, expected 1"
ok "usage errors exit 2, a missing config 1"
assert_alive "after every command"
stop_triaged
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['daemon']")" = down ] || fail "status after stop does not say down"
ok "status works with the daemon stopped (daemon down)"

step "run as root, triagectl acts as the database's owner (the triaged user)"
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
	chmod 0711 "$T"
	chown -R nobody:nogroup "$T/var"
	rm -f "$DB-wal" "$DB-shm"
	# a write: SQLite creates -wal and -shm as whoever opens the database
	# first, and removes them at the last close; strace shows who it was
	if command -v strace > /dev/null; then
		# (LeakSanitizer cannot run under ptrace: off for this one run)
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -e trace=setuid,openat -o "$T/out/strace.txt" \
			"$TRIAGECTL" -c "$CONF" retry --state dead --json > "$T/out/r.json" || fail "retry as root exited $?"
		nobody=$(id -u nobody)
		awk -v u="setuid($nobody)" 'index($0, u) { s = 1 } s && /triaged\.db-wal/ { print; exit }' "$T/out/strace.txt" | grep -q . \
			|| fail "triagectl did not become uid $nobody before it opened the WAL: $(grep -E 'setuid|triaged.db' "$T/out/strace.txt" | head -5)"
	else
		ctl_json "$T/out/r.json" retry --state dead --json
	fi
	for f in "$DB" "$DB-wal" "$DB-shm"; do
		[ ! -e "$f" ] || [ "$(stat -c %U "$f")" = nobody ] || fail "$f is owned by $(stat -c %U "$f"), not the database's owner"
	done
	ok "triagectl switched to uid nobody before opening the database; no file of it became root's"
else
	note "not root: the switch to the database owner is not exercised"
fi
