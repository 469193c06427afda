# 330-http-poll: the submit-and-poll style of cloud AI vendors, with a real
# HTTP server (tests/e2e/servers/http_backend.py).
#
# Config:   two CR routes told apart by the calling AE, each to its own
#           server and http backend with poll_interval_s = 1:
#             LOC_ROOM  -> server --mode poll --polls 2: POST answers 202 +
#                          Location: /jobs/ID (relative to the URL); GET
#                          answers 202 twice, then 200 with the result;
#             BODY_ROOM -> server --mode poll-body --polls 1: POST answers
#                          202 {"status_url": "http://127.0.0.1:PORT/jobs/ID"}
#                          (no Location); then as above, one 202.
#           stable_seconds = 1.
# Modality: storescu sends one generated CR study per calling AE; a C-ECHO
#           while the jobs poll.
# Expected: both jobs done after one attempt, with the findings the server
#           computed from the files it received (one per instance, on its
#           SOP Instance UID, central box); the servers saw exactly one POST
#           and then 3 (resp. 2) GETs of the status URL, at least ~1 s apart.
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

make_studies CR --kind cr-chest --count 2 --size 256x208 --seed 3301
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }

start_ai loc --mode poll --polls 2
start_ai body --mode poll-body --polls 1

CONF_EXTRA="[analysis]
workers = 2

[route by-location]
modality = CR
calling_ae = LOC_ROOM
backend = vendor-loc

[route by-body]
modality = CR
calling_ae = BODY_ROOM
backend = vendor-body

[backend vendor-loc]
type = http
url = http://127.0.0.1:$AI_PORT_loc/v1/jobs
poll_interval_s = 1
timeout_s = 60

[backend vendor-body]
type = http
url = http://127.0.0.1:$AI_PORT_body/api/submit
poll_interval_s = 1
timeout_s = 60"
write_config stable_seconds=1 force_seconds=600
start_triaged

s_loc=$(study_of "${SDIRS[0]}")
s_body=$(study_of "${SDIRS[1]}")
step "storescu: study $s_loc from LOC_ROOM, study $s_body from BODY_ROOM"
storescu_send "$T/out/store-loc.log" LOC_ROOM $(find "${SDIRS[0]}" -name '*.dcm' | sort) || fail "storescu failed"
storescu_send "$T/out/store-body.log" BODY_ROOM $(find "${SDIRS[1]}" -name '*.dcm' | sort) || fail "storescu failed"

polling() { [ "$(grep -c '"GET"' "$T/out/ai-loc.jsonl" 2>/dev/null)" -ge 1 ]; }
wait_for 30 "the first status poll" polling || fail "no status poll reached the server"
echo_ok || fail "C-ECHO failed while jobs poll"
ok "C-ECHO answered while the jobs poll"

finished() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['study_uid'] in ('$s_loc', '$s_body') and j['state'] in ('done', 'failed'))")" = 2 ]
}
wait_for 60 "both jobs to finish" finished || { cat "$T/out/jobs.json" >&3; fail "the polling jobs did not finish within 60 s"; }

for spec in "$s_loc loc 3 vendor-loc" "$s_body body 2 vendor-body"; do
	read -r s name gets backend <<<"$spec"
	id=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['study_uid'] == '$s'][0]")
	ctl_json "$T/out/job-$name.json" show --json "$id"
	check "$backend: job $id done after one POST and $gets polls"
	"$PY" - "$T/out/job-$name.json" "$T/out/ai-$name.jsonl" "$gets" <<-'EOF' >&3 || fail "$backend: see above"
	import json, sys
	d = json.load(open(sys.argv[1]))
	j, r = d["job"], d["result"]
	assert j["state"] == "done" and j["attempts"] == 1, "job %s: %s %r" % (j["id"], j["state"], j.get("error"))
	reqs = [json.loads(l) for l in open(sys.argv[2])]
	posts = [x for x in reqs if x["method"] == "POST"]
	gets = [x for x in reqs if x["method"] == "GET"]
	assert len(posts) == 1, "%d POSTs" % len(posts)
	assert len(gets) == int(sys.argv[3]), "%d GETs: %s" % (len(gets), [g["path"] for g in gets])
	assert len({g["path"] for g in gets}) == 1 and gets[0]["path"].startswith("/jobs/"), [g["path"] for g in gets]
	times = [x["time"] for x in reqs]
	gaps = [b - a for a, b in zip(times, times[1:])]
	assert all(g >= 0.9 for g in gaps), "polls closer than poll_interval_s: %s" % gaps
	inst = {i["sop_instance_uid"]: i for i in d["instances"]}
	found = {f["sop_instance_uid"]: f for f in r["findings"]}
	assert set(found) == set(inst), (sorted(found), sorted(inst))
	for uid, i in inst.items():
	    assert found[uid]["box"] == [i["columns"] / 4, i["rows"] / 4, i["columns"] * 3 / 4, i["rows"] * 3 / 4]
	print("    POST %s, then GET %s x%d, gaps %s s; %d findings, outcome %s" % (posts[0]["path"],
	      gets[0]["path"], len(gets), ", ".join("%.1f" % g for g in gaps), len(r["findings"]),
	      r["study"]["outcome"]))
	EOF
	ok "$backend polled its status URL to the result"
done

assert_alive "after the polling jobs"
stop_triaged
