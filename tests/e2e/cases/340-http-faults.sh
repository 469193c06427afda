# 340-http-faults: http backends whose server fails in the usual ways, while
# the daemon keeps receiving.
#
# Config:   [analysis] max_attempts = 2, retry_base_s = 1, workers = 2;
#           one CR route per fault, told apart by the calling AE, each to
#           its own http backend and server (tests/e2e/servers/http_backend.py):
#             E500     --mode error500             -> retried, then failed
#             GARBAGE  --mode garbage (HTML on 200) -> retried, then failed
#             SLOW     --mode slow --sleep 30, timeout_s = 2 -> retried, failed
#             REFUSED  nothing listens on the port -> retried, then failed
#             BIG      --mode oversized, max_response_kb = 64 -> failed at once
#             UNKNOWN  --mode unknown-uid          -> failed at once
#             AUTH     --token X, no token_file (401) -> failed at once
#             OTHER    --mode direct               -> done
#           stable_seconds = 1.
# Modality: storescu sends one CR study per calling AE; during the SLOW
#           analysis a C-ECHO and the OTHER study's C-STORE succeed.
# Expected: each job ends as listed, with attempts and error saying why:
#           "gave up after 2 attempts: POST: HTTP 500: model crashed",
#           "answer is not JSON", "timed out after 2 s", a connection error,
#           "answer larger than max_response_kb (64 KiB)", "unknown SOP
#           Instance UID", "POST: HTTP 401: invalid or missing token"; the
#           OTHER job is done; the daemon still answers.
. "$(dirname "$0")/../lib.sh"
require_binaries

SERVER=$E2E_DIR/servers/http_backend.py

# start_ai NAME ARGS...: the test AI server on a free port; AI_PORT_NAME
start_ai() {
	local name=$1 port
	shift
	port=$(free_port)
	"$PY" "$SERVER" --port "$port" --log "$T/out/ai-$name.jsonl" "$@" >"$T/out/ai-$name.out" 2>&1 3>&- &
	track_pid $!
	wait_for 15 "AI server $name on port $port" grep -q ready "$T/out/ai-$name.out" \
		|| fail "AI server $name did not start: $(cat "$T/out/ai-$name.out")"
	printf -v "AI_PORT_$name" '%s' "$port"
	log "AI server $name ($*) on 127.0.0.1:$port"
}

make_studies CR --kind cr-chest --count 8 --size 256x208 --seed 3401
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
[ "${#SDIRS[@]}" = 8 ] || fail "make-studies made ${#SDIRS[@]} studies, expected 8"
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }

start_ai e500 --mode error500
start_ai garbage --mode garbage
start_ai slow --mode slow --sleep 30
start_ai big --mode oversized --oversize-kb 2048
start_ai unknown --mode unknown-uid
start_ai auth --mode direct --token "right-token"
start_ai other --mode direct
AI_PORT_refused=$(free_port)    # nobody listens there

routes=
for spec in "E500 e500" "GARBAGE garbage" "SLOW slow timeout_s = 2" "REFUSED refused" \
            "BIG big max_response_kb = 64" "UNKNOWN unknown" "AUTH auth" "OTHER other"; do
	read -r ae name extra <<<"$spec"
	port_var=AI_PORT_$name
	routes+="
[route $name]
modality = CR
calling_ae = $ae
backend = $name

[backend $name]
type = http
url = http://127.0.0.1:${!port_var}/v1/jobs
connect_timeout_s = 2
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

# job_of STUDY: list --json into $T/out/jobs.json; "ID STATE" of its job
job_of() {
	ctl_json "$T/out/jobs.json" list --json
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
finished() { case $(job_of "$1") in *" done"|*" failed") return 0 ;; *) return 1 ;; esac; }
running() { case $(job_of "$1") in *" running") return 0 ;; *) return 1 ;; esac; }
send() { # send AE DIR: one study, must be stored
	storescu_send "$T/out/store-$1.log" "$1" $(find "$2" -name '*.dcm' | sort) \
		|| fail "storescu from $1 failed: $(tail -n 5 "$T/out/store-$1.log")"
}
# expect_job STUDY PYTHON-ASSERTIONS: d = show --json of the study's job
expect_job() {
	local id
	id=$(job_of "$1" | cut -d' ' -f1)
	[ -n "$id" ] || fail "no job for study $1"
	ctl_json "$T/out/show.json" show --json "$id"
	"$PY" - "$T/out/show.json" "$2" <<-'EOF' >&3 || fail "job $id of study $1 is not as expected (above)"
	import json, sys
	d = json.load(open(sys.argv[1]))
	j = d["job"]
	att = [(a["status"], a["message"]) for a in d["attempts"]]
	print("    job %s %-7s backend=%-8s attempts=%s error=%r" % (j["id"], j["state"], j["backend"], j["attempts"], j.get("error")))
	exec(sys.argv[2])
	EOF
}

declare -A S
i=0
for ae in E500 GARBAGE SLOW REFUSED BIG UNKNOWN AUTH OTHER; do
	S[$ae]=$(study_of "${SDIRS[$i]}")
	i=$((i + 1))
done

step "SLOW first: while its analysis hangs, a C-ECHO and another C-STORE succeed"
send SLOW "${SDIRS[2]}"
wait_for 20 "the SLOW job to run" running "${S[SLOW]}" || fail "SLOW job not running: $(job_of "${S[SLOW]}")"
t0=$(date +%s%N)
echo_ok || fail "C-ECHO failed during the slow analysis"
send OTHER "${SDIRS[7]}"
took=$(elapsed_since "$t0")
state=$(job_of "${S[SLOW]}")
case $state in *" done"|*" failed") fail "the SLOW job finished before the store ended ($state)" ;; esac
ok "C-ECHO and C-STORE answered in $took s while the SLOW job was $state"

step "the other faults"
send E500 "${SDIRS[0]}"
send GARBAGE "${SDIRS[1]}"
send REFUSED "${SDIRS[3]}"
send BIG "${SDIRS[4]}"
send UNKNOWN "${SDIRS[5]}"
send AUTH "${SDIRS[6]}"
for ae in E500 GARBAGE SLOW REFUSED BIG UNKNOWN AUTH OTHER; do
	wait_for 60 "the $ae job to finish" finished "${S[$ae]}" || fail "$ae job not finished: $(job_of "${S[$ae]}")"
done

check "transient faults: retried once (max_attempts = 2), then failed with the reason"
expect_job "${S[E500]}" '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert j["error"] == "gave up after 2 attempts: POST: HTTP 500: model crashed", j["error"]
assert [a[0] for a in att] == ["retry", "failed"], att'
[ "$(grep -c '"POST"' "$T/out/ai-e500.jsonl")" = 2 ] || fail "the 500 server got $(grep -c '"POST"' "$T/out/ai-e500.jsonl") POSTs, expected 2"
expect_job "${S[GARBAGE]}" '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts: answer is not JSON (HTTP 200, text/html" in j["error"], j["error"]
assert "proxy error" in j["error"], j["error"]'
expect_job "${S[SLOW]}" '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts" in j["error"] and "timed out after 2 s" in j["error"], j["error"]'
expect_job "${S[REFUSED]}" '
assert j["state"] == "failed" and j["attempts"] == 2, j
assert "gave up after 2 attempts: POST: " in j["error"] and "onnect" in j["error"], j["error"]'
ok "E500, GARBAGE, SLOW, REFUSED: 2 attempts each, then failed"

check "permanent faults: failed after one attempt with the reason"
expect_job "${S[BIG]}" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "answer larger than max_response_kb (64 KiB)" in j["error"], j["error"]'
expect_job "${S[UNKNOWN]}" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert "unknown SOP Instance UID 1.2.826.0.1.3680043.99999.1.2.3" in j["error"], j["error"]'
expect_job "${S[AUTH]}" '
assert j["state"] == "failed" and j["attempts"] == 1, j
assert j["error"] == "POST: HTTP 401: invalid or missing token", j["error"]'
ok "BIG, UNKNOWN, AUTH: failed at once"

check "the study stored during the slow analysis was analysed normally"
expect_job "${S[OTHER]}" '
assert j["state"] == "done" and j["attempts"] == 1, j
assert len(d["result"]["findings"]) == len(d["instances"]), d["result"]'
ok "OTHER done"

assert_alive "after the faulty http backends"
stop_triaged
