# 920-retention: spooled files are removed retention_hours after everything
# about their study is delivered - exactly those, never before - and purge
# removes the rows of settled studies only.
#
# Config:   routes by calling AE, all CR:
#             A  -> reference, results to the archive only
#             B  -> reference, results to the archive and the pacs (a port
#                   where nothing listens at first: B stays undelivered)
#             C  -> an exec program waiting for a gate file (job running)
#           [destination archive] folder, originals and results;
#           [destination pacs] dicom, results only, max_age 7d.
#           [storage] retention_hours = 1, then 0 (SIGHUP runs a pass).
# Modality: storescu, one CR study per calling AE.
# Expected: with 1 h nothing is removed; with 0, exactly A's instance and
#           result files go (its rows stay: show says when); B and C keep
#           every file; once a PACS listens and B's results are delivered,
#           B's go too; A sent again is stored again (the file is back, no
#           new job, nothing forwarded again); purge --older-than 1s removes
#           A and B from the database and keeps C (job running); when C's
#           job is done and delivered its files go too. The archive still
#           holds every delivered copy.
. "$(dirname "$0")/../lib.sh"
require_binaries
require_cmd storescp
EXAMPLE=$TRIAGED_SOURCE_DIR/src/backends/example-backend
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 (the example backend's interpreter) is missing"

make_studies CR --kind cr-chest --count 3 --size 256x208 --seed 9201
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }
S_A=$(study_of "${SDIRS[0]}")
S_B=$(study_of "${SDIRS[1]}")
S_C=$(study_of "${SDIRS[2]}")

mkdir -p "$T/bin"
printf '#!/bin/sh\nwhile [ ! -e "%s/gate" ]; do sleep 0.1; done\nexec "%s" "$@"\n' "$T" "$EXAMPLE" > "$T/bin/gated.sh"
chmod 755 "$T/bin/gated.sh"
PACS_PORT=$(free_port)
CONF_ROUTES="[route a]
modality = CR
calling_ae = A
backend = reference
destinations = archive

[route b]
modality = CR
calling_ae = B
backend = reference

[route c]
modality = CR
calling_ae = C
backend = gated

[backend gated]
type = exec
command = $T/bin/gated.sh
timeout_s = 300"
dest_conf() {
	CONF_EXTRA="[analysis]
workers = 2

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
max_age = 7d
retry_base_s = 1
retry_max_s = 1"
}
retention() { # retention HOURS: rewrite the config with it, then SIGHUP
	dest_conf
	write_config
	sed -i "s/^\[storage\]$/[storage]\nretention_hours = $1/" "$CONF"
	grep -q "^retention_hours = $1" "$CONF" || fail "could not set retention_hours"
	if [ -n "$TRIAGED_PID" ]; then
		kill -HUP "$TRIAGED_PID"
		sleep 2       # the reload, then the retention pass of the next tick
	fi
}
retention 1
start_triaged

send() { # send AE DIR
	storescu_send "$T/out/store-$1-$RANDOM.log" "$1" $(find "$2" -name '*.dcm' | sort) \
		|| fail "storescu from $1 failed"
}
# spool_files STUDY: the study's files in the spool, instances and results
spool_files() { { find "$SPOOL/studies/$1" "$SPOOL/results/$1" -type f 2>/dev/null || true; } | sort; }
count_files() { spool_files "$1" | wc -l; }
# delivered STUDY DEST: every dispatch of the study to DEST is delivered
delivered() {
	ctl_json "$T/out/d.json" show "$1" --json
	"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
x=[y for y in d["dispatches"] if y["destination"] == sys.argv[2]]
sys.exit(0 if x and all(y["state"] == "delivered" for y in x) and all(j["state"] == "done" for j in d["jobs"]) else 1)' \
		"$T/out/d.json" "$2"
}
job_state() {
	ctl_json "$T/out/s.json" show "$1" --json
	json "$T/out/s.json" "' '.join(j['state'] for j in d['jobs'])"
}

step "three studies: A delivered, B's results undeliverable, C's job running"
send A "${SDIRS[0]}"
send B "${SDIRS[1]}"
send C "${SDIRS[2]}"
wait_for 60 "A to be delivered to the archive" delivered "$S_A" archive || fail "A not delivered"
wait_for 60 "B's originals and results to reach the archive" delivered "$S_B" archive || fail "B not delivered to the archive"
wait_for 30 "C's job to run" eval '[ "$(job_state "$S_C")" = running ]' || fail "C: $(job_state "$S_C")"
N_A=$(count_files "$S_A"); N_B=$(count_files "$S_B"); N_C=$(count_files "$S_C")
N_IN_C=$(find "${SDIRS[2]}" -name '*.dcm' | wc -l)
[ "$N_A" -ge 3 ] && [ "$N_B" -ge 3 ] && [ "$N_C" = "$N_IN_C" ] || fail "spool files: A $N_A, B $N_B, C $N_C"
spool_files "$S_A" > "$T/out/a-files.txt"
ok "spool: A $N_A files (instance and results), B $N_B, C $N_C"

step "retention_hours = 1: nothing is removed yet"
retention 1
[ "$(count_files "$S_A")" = "$N_A" ] && [ "$(count_files "$S_B")" = "$N_B" ] && [ "$(count_files "$S_C")" = "$N_C" ] \
	|| fail "a file went before retention_hours: A $(count_files "$S_A") B $(count_files "$S_B") C $(count_files "$S_C")"
ok "all files still there"

step "retention_hours = 0: exactly A's files go"
retention 0
wait_for 10 "A's files to be removed" eval '[ "$(count_files "$S_A")" = 0 ]' || fail "A still has $(count_files "$S_A") files"
[ ! -e "$SPOOL/studies/$S_A" ] && [ ! -e "$SPOOL/results/$S_A" ] || fail "A's emptied directories are left"
[ "$(count_files "$S_B")" = "$N_B" ] || fail "B (results undelivered) lost files: $(count_files "$S_B") of $N_B"
[ "$(count_files "$S_C")" = "$N_C" ] || fail "C (job running) lost files"
ctl_json "$T/out/a.json" show "$S_A" --json
"$PY" - "$T/out/a.json" <<-'EOF' >&3 || fail "show of A after retention"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["study"]["files_removed"], d["study"]
	assert d["instances"] and all(i["file_removed"] for i in d["instances"]), d["instances"]
	assert d["jobs"] and d["results"] and d["dispatches"], "history kept"
	print("    A: files removed at %s; %d instances, %d results, %d dispatches kept"
	      % (d["study"]["files_removed"], len(d["instances"]), len(d["results"]), len(d["dispatches"])))
	EOF
ctl show "$S_A" | grep -q '^files *removed by retention at' || fail "show text does not say the files were removed"
n_arch=$(find "$T/archive/$S_A" -type f | wc -l)
[ "$n_arch" = "$N_A" ] || fail "the archive holds $n_arch of A's $N_A objects"
grep -q 'retention: removed' "$T/triaged.log" || fail "the daemon did not log the removal"
ok "A's $N_A files removed, B and C untouched, A's history and archive copies kept"

step "B's results delivered once a PACS listens: then B's files go"
mkdir -p "$T/pacs"
storescp -aet PACS +xa -od "$T/pacs" "$PACS_PORT" > "$T/out/storescp.log" 2>&1 3>&- &
track_pid $!
wait_for 30 "B's results to reach the pacs" delivered "$S_B" pacs || fail "B's results not delivered to the pacs"
kill -HUP "$TRIAGED_PID"
wait_for 10 "B's files to be removed" eval '[ "$(count_files "$S_B")" = 0 ]' || fail "B still has $(count_files "$S_B") files"
[ "$(count_files "$S_C")" = "$N_C" ] || fail "C lost files"
ok "B's files removed after its last delivery"

step "A sent again: stored again, not analysed or forwarded again"
ctl_json "$T/out/before.json" show "$S_A" --json
send A "${SDIRS[0]}"
n=$(find "$SPOOL/studies/$S_A" -type f 2>/dev/null | wc -l)
[ "$n" = "$(find "${SDIRS[0]}" -name '*.dcm' | wc -l)" ] || fail "A's instances are not stored again ($n files)"
sleep 3
ctl_json "$T/out/after.json" show "$S_A" --json
"$PY" - "$T/out/before.json" "$T/out/after.json" <<-'EOF' >&3 || fail "A re-sent"
	import json, sys
	b, a = (json.load(open(p)) for p in sys.argv[1:3])
	assert len(a["jobs"]) == len(b["jobs"]), ("no new job", a["jobs"])
	assert len(a["dispatches"]) == len(b["dispatches"]), "nothing forwarded again"
	assert all(not i["file_removed"] for i in a["instances"]), a["instances"]
	print("    A: %d jobs, %d dispatches, files back" % (len(a["jobs"]), len(a["dispatches"])))
	EOF
grep -q 'received again after retention removed it' "$T/triaged.log" || fail "no log line for the re-sent instance"
ok "A's instances stored again"

step "purge --older-than 1s: A and B leave the database, C stays"
sleep 2
ctl_json "$T/out/p.json" purge --older-than 1s --dry-run --json
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["studies"] == 2 and d["kept"] >= 1, d' "$T/out/p.json" \
	|| fail "dry run: $(cat "$T/out/p.json")"
ctl_json "$T/out/l.json" list --studies --json
[ "$(json "$T/out/l.json" "len(d['studies'])")" = 3 ] || fail "the dry run changed something"
ctl purge --older-than 1s > "$T/out/p.txt" || fail "purge exited $?"
sed 's/^/    /' "$T/out/p.txt" >&3
grep -q '^purged 2 studies' "$T/out/p.txt" || fail "purge: $(cat "$T/out/p.txt")"
rc=0; ctl show "$S_A" > /dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "A still in the database after purge (show exit $rc)"
rc=0; ctl show "$S_B" > /dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "B still in the database after purge"
[ "$(count_files "$S_A")" = 0 ] || fail "purge left A's re-sent files"
[ "$(count_files "$S_C")" = "$N_C" ] && [ "$(job_state "$S_C")" = running ] || fail "purge touched C"
ok "A and B purged (rows and files), C kept"

step "C finishes and is delivered: its files go"
touch "$T/gate"
wait_for 60 "C to be delivered" delivered "$S_C" archive || fail "C not delivered"
wait_for 60 "C's results to reach the pacs" delivered "$S_C" pacs || fail "C not delivered to the pacs"
kill -HUP "$TRIAGED_PID"
wait_for 10 "C's files to be removed" eval '[ "$(count_files "$S_C")" = 0 ]' || fail "C still has files"
left=$(find "$SPOOL/studies" "$SPOOL/results" -type f | wc -l)
[ "$left" = 0 ] || fail "$left files left in the spool: $(find "$SPOOL/studies" "$SPOOL/results" -type f | head -3)"
ctl_json "$T/out/status.json" status --json
ok "spool empty; status spool_bytes=$(json "$T/out/status.json" "d['spool_bytes']")"
assert_alive "after retention and purge"
stop_triaged
