# 350-exec-faults: exec backends that fail in every way a program can, while
# the daemon keeps receiving.
#
# Config:   six CR routes told apart by the calling AE, each to its own exec
#           backend (small /bin/sh programs written by this case);
#           [analysis] max_attempts = 2, retry_base_s = 1; stable_seconds = 1.
#             TEMPFAIL  exits 75 ("GPU busy") the first time, then runs the
#                       example backend
#             SLOW      sleeps 30 s, timeout_s = 2
#             CRASH     writes to stderr and exits 3
#             FLOOD     writes stdout without end, max_output_kb = 4
#             GARBAGE   answers an HTML page on stdout
#             UNKNOWN   answers a finding on a SOP Instance UID not in the study
# Modality: storescu sends one CR study per calling AE.
# Expected: TEMPFAIL is retried once and done (attempt 1 "retry" with the
#           stderr text, attempt 2 "ok"); SLOW times out twice ("timed out
#           after 2 s"), then fails, and none of its processes is left;
#           during its analysis a C-ECHO and another C-STORE succeed; CRASH,
#           FLOOD, GARBAGE and UNKNOWN fail at once (no retry) with the
#           reason: the exit status and stderr tail, "output larger than
#           max_output_kb", not JSON, "unknown SOP Instance UID".
. "$(dirname "$0")/../lib.sh"
require_binaries

EXAMPLE=$TRIAGED_SOURCE_DIR/src/backends/example-backend
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 (the example backend's interpreter) is missing"

make_studies CR --kind cr-chest --count 7 --size 256x208 --seed 3501
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
[ "${#SDIRS[@]}" = 7 ] || fail "make-studies made ${#SDIRS[@]} studies, expected 7"
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }

BIN=$T/bin
mkdir -p "$BIN" "$T/out/pids"
script() { # script NAME BODY: an executable /bin/sh program in $BIN
	printf '#!/bin/sh\n%s\n' "$2" > "$BIN/$1"
	chmod 755 "$BIN/$1"
}
script tempfail-once.sh "if [ ! -e '$T/out/tried' ]; then
	touch '$T/out/tried'
	echo 'GPU busy, try later' >&2
	exit 75
fi
exec '$EXAMPLE' \"\$@\""
script slow.sh "echo \$\$ >> '$T/out/pids/slow'
sleep 30"
script crash.sh "cat > /dev/null
echo 'loading model weights' >&2
echo 'model: cannot load weights from /models/fracture.onnx' >&2
exit 3"
script flood.sh "exec yes 'spam'"
script garbage.sh "cat > /dev/null
echo '<html><body>500 Internal Server Error</body></html>'"
script unknown.sh "cat > /dev/null
echo '{\"status\":\"ok\",\"study\":{\"outcome\":\"positive\",\"score\":0.9},\"findings\":[{\"label\":\"x\",\"score\":0.9,\"sop_instance_uid\":\"1.2.826.0.1.3680043.99999.1\",\"box\":[1,1,10,10]}]}'"

routes=
for spec in "TEMPFAIL tempfail-once.sh" "SLOW slow.sh
timeout_s = 2" "CRASH crash.sh" "FLOOD flood.sh
max_output_kb = 4" "GARBAGE garbage.sh" "UNKNOWN unknown.sh" "OTHER crash.sh"; do
	ae=${spec%% *}
	rest=${spec#* }
	prog=${rest%%$'\n'*}
	extra=; [ "$rest" = "$prog" ] || extra=${rest#*$'\n'}
	name=$(echo "$ae" | tr 'A-Z' 'a-z')
	routes+="
[route $name]
modality = CR
calling_ae = $ae
backend = $name

[backend $name]
type = exec
command = $BIN/$prog
$extra
"
done
CONF_EXTRA="[analysis]
workers = 2
max_attempts = 2
retry_base_s = 1
retry_max_s = 2
$routes"
write_config stable_seconds=1 force_seconds=600
start_triaged

# job_of STUDY: write list --json to $T/out/jobs.json; print the study's job
# as "ID STATE" (nothing when there is none yet)
job_of() {
	ctl_json "$T/out/jobs.json" list --json
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
finished() { case $(job_of "$1") in *" done"|*" failed") return 0 ;; *) return 1 ;; esac; }
running() { case $(job_of "$1") in *" running") return 0 ;; *) return 1 ;; esac; }
# show STUDY: show --json of its job into $T/out/show.json
show() {
	local id
	id=$(job_of "$1" | cut -d' ' -f1)
	[ -n "$id" ] || fail "no job for study $1"
	ctl_json "$T/out/show.json" show --json "$id"
}
send() { # send AE DIR
	storescu_send "$T/out/store-$1.log" "$1" $(find "$2" -name '*.dcm' | sort) \
		|| fail "storescu from $1 failed: $(tail -n 5 "$T/out/store-$1.log")"
}
# expect_job STUDY PYTHON-ASSERTIONS: d = show --json of the study's job
expect_job() {
	show "$1"
	"$PY" - "$T/out/show.json" "$2" <<-'EOF' >&3 || fail "job of study $1 is not as expected (above)"
	import json, sys
	d = json.load(open(sys.argv[1]))
	j = d["job"]
	att = [(a["status"], a["message"]) for a in d["attempts"]]
	print("    job %s %s attempts=%s error=%r" % (j["id"], j["state"], j["attempts"], j.get("error")))
	for a in att:
	    print("      attempt: %s %r" % a)
	exec(sys.argv[2])
	EOF
}

step "TEMPFAIL: exit 75, then success on the retry"
s_temp=$(study_of "${SDIRS[0]}")
send TEMPFAIL "${SDIRS[0]}"
wait_for 40 "the TEMPFAIL job to finish" finished "$s_temp" || fail "TEMPFAIL job not finished: $(job_of "$s_temp")"
expect_job "$s_temp" '
assert j["state"] == "done" and j["attempts"] == 2, j
assert att[0][0] == "retry" and "status 75" in att[0][1] and "GPU busy, try later" in att[0][1], att
assert att[1][0] == "ok", att
assert len(d["result"]["findings"]) == len(d["instances"]), d["result"]'
ok "retried once after exit 75, then done"

step "SLOW: timeout, while the daemon keeps receiving"
s_slow=$(study_of "${SDIRS[1]}")
send SLOW "${SDIRS[1]}"
wait_for 20 "the SLOW job to run" running "$s_slow" || fail "SLOW job not running: $(job_of "$s_slow")"
check "during the slow analysis a C-ECHO and a C-STORE (study from AE OTHER) succeed"
t0=$(date +%s%N)
echo_ok || fail "C-ECHO failed during the slow analysis"
send OTHER "${SDIRS[6]}"
took=$(elapsed_since "$t0")
state=$(job_of "$s_slow")
case $state in *" done"|*" failed") fail "the SLOW job finished before the store ended ($state): nothing was proven" ;; esac
ok "C-ECHO and C-STORE answered in $took s while the SLOW job was $state"
wait_for 40 "the SLOW job to finish" finished "$s_slow" || fail "SLOW job not finished: $(job_of "$s_slow")"
expect_job "$s_slow" '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts" in j["error"] and "timed out after 2 s" in j["error"], j["error"]
assert [a[0] for a in att] == ["retry", "failed"], att
assert all(a[1].startswith("timed out after 2 s") or "timed out after 2 s" in a[1] for a in att), att'
check "no process of the timed-out program is left"
[ "$(wc -l < "$T/out/pids/slow")" = 2 ] || fail "slow.sh ran $(wc -l < "$T/out/pids/slow") times, expected 2"
# group_alive PGID: a process of the group still runs (zombies left to an
# init that does not reap them do not count)
group_alive() { ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
while read -r pgid; do
	! group_alive "$pgid" || { ps -eo pid,ppid,pgid,stat,cmd | awk -v g="$pgid" 'NR == 1 || $3 == g' >&3; fail "process group $pgid of slow.sh is still alive"; }
done < "$T/out/pids/slow"
ok "both process groups are gone"

step "CRASH, FLOOD, GARBAGE, UNKNOWN: failed at once, with the reason"
s_crash=$(study_of "${SDIRS[2]}"); send CRASH "${SDIRS[2]}"
s_flood=$(study_of "${SDIRS[3]}"); send FLOOD "${SDIRS[3]}"
s_garbage=$(study_of "${SDIRS[4]}"); send GARBAGE "${SDIRS[4]}"
s_unknown=$(study_of "${SDIRS[5]}"); send UNKNOWN "${SDIRS[5]}"
for s in "$s_crash" "$s_flood" "$s_garbage" "$s_unknown"; do
	wait_for 30 "the job of $s to finish" finished "$s" || fail "job of $s not finished: $(job_of "$s")"
done
expect_job "$s_crash" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "exited with status 3" in j["error"] and "cannot load weights from /models/fracture.onnx" in j["error"], j["error"]'
expect_job "$s_flood" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "output larger than max_output_kb (4 KiB)" in j["error"], j["error"]'
expect_job "$s_garbage" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "JSON" in j["error"], j["error"]'
expect_job "$s_unknown" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "unknown SOP Instance UID" in j["error"], j["error"]'
ok "each failed after one attempt with its reason"

assert_alive "after the faulty backends"
[ -z "$(ls -A "$T/cwd")" ] || fail "the daemon's cwd is not empty: $(ls -A "$T/cwd")"
stop_triaged
