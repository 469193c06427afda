# 430-kserve-faults: kserve servers that fail in the ways inference servers
# do, while the daemon keeps receiving.
#
# Config:   one MG route per calling AE, each to its own kserve backend and
#           oip_server.py (tests/e2e/servers) in a fault mode; [analysis]
#           max_attempts = 2, retry_base_s = 1, retry_max_s = 2;
#           stable_seconds = 1; model input FP32 [1,1,128,128].
#             FLAKY      answers HTTP 500 once, then works
#             NOTREADY   /v2/health/ready answers 503
#             DOWN       nothing listens on its port
#             SLOW       answers after 30 s; timeout_s = 3
#             GARBAGE    200 with an HTML page
#             NAN        NaN scores (binary outputs)
#             WRONGSHAPE boxes [N,3]
#             OVERSIZED  an extra 16 MiB binary output; max_response_kb = 1024
#             BADREQ     HTTP 400 {"error": ...} with a control character
# Modality: storescu sends one small synthetic MG study per calling AE (and
#           one from OTHER, routed nowhere, during the SLOW analysis).
# Expected: FLAKY is retried once and done (attempt 1 "retry" with "HTTP 500
#           ... fault injected", attempt 2 "ok", one finding); NOTREADY and
#           DOWN are retried, then failed "gave up after 2 attempts" with the
#           503 of /v2/health/ready or the connection failure; SLOW times out
#           twice ("timed out after"), then fails, and a C-ECHO and a C-STORE
#           succeed meanwhile; GARBAGE, NAN, WRONGSHAPE, OVERSIZED and BADREQ
#           fail at once (one attempt) with what was wrong ("not a JSON
#           object", "score is NaN", "expected [N,4]", "larger than 1024 KiB",
#           "HTTP 400 ... invalid argument", sanitized to one line).
. "$(dirname "$0")/../lib.sh"
require_binaries

OIP=$E2E_DIR/servers/oip_server.py
AES="FLAKY NOTREADY DOWN SLOW GARBAGE NAN WRONGSHAPE OVERSIZED BADREQ OTHER"

step "one synthetic MG study per calling AE"
declare -A STUDY
seed=4300
for ae in $AES; do
	seed=$((seed + 1))
	"$PY" "$OIP" make-dicom "$T/st/$ae" --seed "$seed" --image 256x208:120,40,160,90 > "$T/out/$ae.jsonl" \
		|| fail "make-dicom failed"
	STUDY[$ae]=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["study_uid"])' "$T/out/$ae.jsonl")
done

start_server() { # start_server NAME ARGS...: oip_server.py on a free port; sets PORT_<NAME>
	local name=$1 p
	shift
	p=$(free_port)
	"$PY" "$OIP" "$p" --shape 1,1,128,128 "$@" >"$T/out/srv-$name.log" 2>&1 3>&- &
	track_pid $!
	wait_for 15 "oip_server $name to listen" grep -q ready "$T/out/srv-$name.log" \
		|| fail "oip_server $name did not start: $(cat "$T/out/srv-$name.log")"
	printf -v "PORT_$name" '%s' "$p"
}
start_server FLAKY --fault 500 --fault-count 1
start_server NOTREADY --fault not-ready
PORT_DOWN=$(free_port)                      # nothing listens there
start_server SLOW --fault slow --slow-s 30
start_server GARBAGE --fault garbage
start_server NAN --fault nan
start_server WRONGSHAPE --fault wrong-shape
start_server OVERSIZED --fault oversized
start_server BADREQ --fault 400
log "oip_servers started (DOWN is port $PORT_DOWN, with no server)"

routes=
for ae in FLAKY NOTREADY DOWN SLOW GARBAGE NAN WRONGSHAPE OVERSIZED BADREQ; do
	name=$(echo "$ae" | tr 'A-Z' 'a-z')
	port_var=PORT_$ae
	extra="binary = yes"
	case $ae in
	SLOW)       extra="binary = yes
timeout_s = 3" ;;
	GARBAGE|WRONGSHAPE) extra="binary = no" ;;
	OVERSIZED)  extra="binary = yes
max_response_kb = 1024" ;;
	esac
	routes+="
[route $name]
modality = MG
calling_ae = $ae
backend = $name

[backend $name]
type = kserve
url = http://127.0.0.1:${!port_var}
model = detector
input_size = 128x128
labels = mass
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

job_of() { # job_of STUDY: "ID STATE" of its job ("" while none)
	ctl_json "$T/out/jobs.json" list --json
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
finished() { case $(job_of "$1") in *" done"|*" failed") return 0 ;; *) return 1 ;; esac; }
running() { case $(job_of "$1") in *" running") return 0 ;; *) return 1 ;; esac; }
send() { # send AE
	storescu_send "$T/out/store-$1.log" "$1" "$T/st/$1/1.dcm" \
		|| fail "storescu from $1 failed: $(tail -n 5 "$T/out/store-$1.log")"
}
# expect_job AE PYTHON-ASSERTIONS: d = show --json of the AE's study's job
expect_job() {
	local id
	id=$(job_of "${STUDY[$1]}" | cut -d' ' -f1)
	[ -n "$id" ] || fail "no job for the study of $1"
	ctl_json "$T/out/show-$1.json" show --json "$id"
	"$PY" - "$T/out/show-$1.json" "$1" "$2" <<-'EOF' >&3 || fail "the job of $1 is not as expected (above)"
	import json, sys
	d = json.load(open(sys.argv[1]))
	j = d["job"]
	att = [(a["status"], a["message"]) for a in d["attempts"]]
	print("    %s: job %s %s attempts=%s error=%r" % (sys.argv[2], j["id"], j["state"], j["attempts"], j.get("error")))
	for a in att:
	    print("      attempt: %s %r" % a)
	exec(sys.argv[3])
	EOF
}
wait_finished() { # wait_finished SECONDS AE...
	local limit=$1 ae
	shift
	for ae in "$@"; do
		wait_for "$limit" "the job of $ae to finish" finished "${STUDY[$ae]}" \
			|| fail "the job of $ae did not finish: $(job_of "${STUDY[$ae]}")"
	done
}

step "FLAKY, NOTREADY, DOWN: transient failures are retried"
send FLAKY; send NOTREADY; send DOWN
wait_finished 60 FLAKY NOTREADY DOWN
expect_job FLAKY '
assert j["state"] == "done" and j["attempts"] == 2, j
assert att[0][0] == "retry" and "HTTP 500 on POST /v2/models/detector/infer: fault injected" in att[0][1], att
assert att[1][0] == "ok", att
assert len(d["result"]["findings"]) == 1 and d["result"]["findings"][0]["label"] == "mass", d["result"]'
expect_job NOTREADY '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts" in j["error"] and "HTTP 503 on GET /v2/health/ready" in j["error"], j["error"]
assert [a[0] for a in att] == ["retry", "failed"], att'
expect_job DOWN '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts" in j["error"] and "/v2/health/ready" in j["error"], j["error"]
assert "onnect" in j["error"], j["error"]     # "Could not connect" / "Connection refused"
assert [a[0] for a in att] == ["retry", "failed"], att'
ok "500 retried then done; not-ready and down retried, then failed with the reason"

step "SLOW: timed out, while the daemon keeps receiving"
send SLOW
wait_for 20 "the SLOW job to run" running "${STUDY[SLOW]}" || fail "SLOW job not running: $(job_of "${STUDY[SLOW]}")"
check "during the slow analysis a C-ECHO and a C-STORE (study from AE OTHER) succeed"
t0=$(date +%s%N)
echo_ok || fail "C-ECHO failed during the slow analysis"
send OTHER
took=$(elapsed_since "$t0")
state=$(job_of "${STUDY[SLOW]}")
case $state in *" done"|*" failed") fail "the SLOW job finished before the store ended ($state): nothing was proven" ;; esac
[ "$(study_field "${STUDY[OTHER]}" instances)" = 1 ] || fail "the study sent during the slow analysis is not stored"
ok "C-ECHO and C-STORE answered in $took s while the SLOW job was $state"
wait_finished 60 SLOW
expect_job SLOW '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts" in j["error"] and "timed out after" in j["error"], j["error"]
assert "/v2/models/detector/infer" in j["error"], j["error"]
assert [a[0] for a in att] == ["retry", "failed"], att'
ok "timed out twice, then failed"

step "GARBAGE, NAN, WRONGSHAPE, OVERSIZED, BADREQ: failed at once with what was wrong"
for ae in GARBAGE NAN WRONGSHAPE OVERSIZED BADREQ; do send "$ae"; done
wait_finished 60 GARBAGE NAN WRONGSHAPE OVERSIZED BADREQ
once='assert j["state"] == "failed" and j["attempts"] == 1, j
assert [a[0] for a in att] == ["failed"], att
'
expect_job GARBAGE "$once"'
assert "malformed inference response: response is not a JSON object (starts '"'"'<html>" in j["error"], j["error"]'
expect_job NAN "$once"'
assert "malformed inference response: detection 0: score is NaN" in j["error"], j["error"]'
expect_job WRONGSHAPE "$once"'
assert "has shape [2,3], expected [N,4] or [1,N,4]" in j["error"], j["error"]'
expect_job OVERSIZED "$once"'
assert "the response is larger than 1024 KiB (max_response_kb)" in j["error"], j["error"]'
expect_job BADREQ "$once"'
assert "HTTP 400 on POST /v2/models/detector/infer: fault injected: invalid argument ? with a control character" in j["error"], j["error"]
assert all(ord(c) >= 0x20 for c in j["error"]), j["error"]'
ok "each failed after one attempt with its reason"

assert_alive "after the faulty kserve servers"
[ -z "$(ls -A "$T/cwd")" ] || fail "the daemon's cwd is not empty: $(ls -A "$T/cwd")"
stop_triaged
