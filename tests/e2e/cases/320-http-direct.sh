# 320-http-direct: the http backend against a real HTTP AI server that
# answers at once (tests/e2e/servers/http_backend.py --mode direct).
#
# Config:   the server requires "Authorization: Bearer <token>"; two CR
#           routes told apart by the calling AE:
#             CR_ROOM  -> [backend cloud]     send = dicom, token_file
#             PNG_ROOM -> [backend cloud-png] send = png,   token_file
#           stable_seconds = 1.
# Modality: storescu sends one generated CR study (512x416) per calling AE.
# Expected: both jobs done after one attempt. The server received one
#           multipart POST per job with the bearer token, a "request" part
#           (application/json) naming the job, the study and its instances,
#           and one "file" part per instance: with send = dicom the stored
#           file byte for byte (same SHA-256, application/dicom, named
#           <SOP UID>.dcm); with send = png an 8-bit grayscale PNG of the
#           image's size (image/png). The results hold the server's answer:
#           one finding per instance on its SOP Instance UID, box = central
#           region in source pixels, score = the file's mean byte / 255.
#           The token never appears in the daemon's log.
. "$(dirname "$0")/../lib.sh"
require_binaries

SERVER=$E2E_DIR/servers/http_backend.py
TOKEN=e2e-320-token-$RANDOM$RANDOM

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

make_studies CR --kind cr-chest --count 2 --size 512x416 --seed 3201
mapfile -t SDIRS < <(find "$CR" -mindepth 1 -maxdepth 1 -type d | sort)
study_of() { dcm_get "$(find "$1" -name '*.dcm' | sort | head -n 1)" StudyInstanceUID; }

start_ai main --mode direct --token "$TOKEN"
printf '  %s\n' "$TOKEN" > "$T/ai.token"
chmod 600 "$T/ai.token"

CONF_EXTRA="[analysis]
workers = 2

[route chest]
modality = CR
calling_ae = CR_ROOM
backend = cloud

[route chest-png]
modality = CR
calling_ae = PNG_ROOM
backend = cloud-png

[backend cloud]
type = http
url = http://127.0.0.1:$AI_PORT_main/v1/jobs
token_file = $T/ai.token
send = dicom
timeout_s = 60

[backend cloud-png]
type = http
url = http://127.0.0.1:$AI_PORT_main/v1/jobs
token_file = $T/ai.token
send = png
timeout_s = 60"
write_config stable_seconds=1 force_seconds=600
start_triaged

s_dcm=$(study_of "${SDIRS[0]}")
s_png=$(study_of "${SDIRS[1]}")
step "storescu: study $s_dcm from CR_ROOM, study $s_png from PNG_ROOM"
for pair in "CR_ROOM ${SDIRS[0]}" "PNG_ROOM ${SDIRS[1]}"; do
	storescu_send "$T/out/store-${pair%% *}.log" "${pair%% *}" $(find "${pair#* }" -name '*.dcm' | sort) \
		|| fail "storescu from ${pair%% *} failed"
done

finished() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['study_uid'] in ('$s_dcm', '$s_png') and j['state'] in ('done', 'failed'))")" = 2 ]
}
wait_for 60 "both jobs to finish" finished || { cat "$T/out/jobs.json" >&3; fail "the http jobs did not finish within 60 s"; }
for s in "$s_dcm" "$s_png"; do
	id=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['study_uid'] == '$s'][0]")
	ctl_json "$T/out/job-$s.json" show --json "$id"
done

check "send = dicom: the job is done with the server's answer, and the server got the stored files byte for byte, with the token"
"$PY" - "$T/out/job-$s_dcm.json" "$T/out/ai-main.jsonl" "$TOKEN" <<-'EOF' >&3 || fail "send = dicom: see above"
import hashlib, json, sys
d = json.load(open(sys.argv[1]))
j, r = d["job"], d["result"]
assert j["state"] == "done" and j["attempts"] == 1, "job %s: %s %r" % (j["id"], j["state"], j.get("error"))
assert j["backend"] == "cloud", j
posts = [json.loads(l) for l in open(sys.argv[2])]
posts = [p for p in posts if p["method"] == "POST" and (p.get("request") or {}).get("study_uid") == j["study_uid"]]
assert len(posts) == 1, "%d POSTs for the study" % len(posts)
p = posts[0]
assert p["authorization"] == "Bearer " + sys.argv[3], "Authorization %r" % p["authorization"]
assert p["content_type"].startswith("multipart/form-data"), p["content_type"]
req = p["request"]
assert req["job_id"] == j["id"] and req["route"] == "chest", req
inst = {i["sop_instance_uid"]: i for i in d["instances"]}
assert sorted(i["sop_instance_uid"] for i in req["instances"]) == sorted(inst), req["instances"]
parts = [x for x in p["parts"] if x["name"] == "file"]
assert [x["name"] for x in p["parts"]][0] == "request", p["parts"]
assert len(parts) == len(inst), parts
for x in parts:
    uid = x["sop_instance_uid"]
    data = open(inst[uid]["path"], "rb").read()
    assert x["content_type"] == "application/dicom" and x["filename"] == uid + ".dcm", x
    assert x["sha256"] == hashlib.sha256(data).hexdigest() and x["size"] == len(data), (x, len(data))
    print("    %s: %d bytes, sha256 %s... as stored" % (uid, len(data), x["sha256"][:16]))
found = {f["sop_instance_uid"]: f for f in r["findings"]}
assert set(found) == set(inst), r["findings"]
for uid, i in inst.items():
    f = found[uid]
    data = open(i["path"], "rb").read()
    assert f["box"] == [i["columns"] / 4, i["rows"] / 4, i["columns"] * 3 / 4, i["rows"] * 3 / 4], (f, i)
    assert abs(f["score"] - round(sum(data) / (255.0 * len(data)), 3)) < 1e-6, f
assert r["algorithm"]["name"] == "http-test-server", r["algorithm"]
print("    job %s done: outcome %s, %d findings" % (j["id"], r["study"]["outcome"], len(r["findings"])))
EOF
ok "files, token and answer as expected"

check "send = png: 8-bit grayscale PNGs of the image size went out, boxes came back in source pixels"
"$PY" - "$T/out/job-$s_png.json" "$T/out/ai-main.jsonl" "$TOKEN" <<-'EOF' >&3 || fail "send = png: see above"
import json, sys
d = json.load(open(sys.argv[1]))
j, r = d["job"], d["result"]
assert j["state"] == "done" and j["attempts"] == 1, "job %s: %s %r" % (j["id"], j["state"], j.get("error"))
assert j["backend"] == "cloud-png", j
posts = [json.loads(l) for l in open(sys.argv[2])]
posts = [p for p in posts if p["method"] == "POST" and (p.get("request") or {}).get("study_uid") == j["study_uid"]]
assert len(posts) == 1, "%d POSTs for the study" % len(posts)
p = posts[0]
assert p["authorization"] == "Bearer " + sys.argv[3], p["authorization"]
inst = {i["sop_instance_uid"]: i for i in d["instances"]}
parts = [x for x in p["parts"] if x["name"] == "file"]
assert len(parts) == len(inst), parts
for x in parts:
    i = inst[x["sop_instance_uid"]]
    assert x["content_type"] == "image/png" and x["filename"] == i["sop_instance_uid"] + ".png", x
    assert (x["png_bit_depth"], x["png_color_type"]) == (8, 0), x
    assert (x["png_width"], x["png_height"]) == (i["columns"], i["rows"]), (x, i)
    print("    %s: PNG %dx%d, %d bytes" % (i["sop_instance_uid"], x["png_width"], x["png_height"], x["size"]))
for f in r["findings"]:
    i = inst[f["sop_instance_uid"]]
    assert f["box"] == [i["columns"] / 4, i["rows"] / 4, i["columns"] * 3 / 4, i["rows"] * 3 / 4], (f, i)
assert len(r["findings"]) == len(inst)
EOF
ok "PNG parts as expected"

check "the token is not in the daemon's log"
! grep -q "$TOKEN" "$T/triaged.log" || fail "the bearer token appears in $T/triaged.log"
ok "not logged"

assert_alive "after the http jobs"
stop_triaged
