# 410-kserve-json: the kserve backend against a real Open Inference Protocol
# v2 server (tests/e2e/servers/oip_server.py), tensors as JSON.
#
# Config:   [route mammo] modality = MG -> [backend mammo-gpu] type = kserve,
#           model mammo_detector, model_version 3, input_size 512x512,
#           binary = no, labels = mass, calcification; stable_seconds = 1.
# Server:   oip_server.py: model mammo_detector, input "image" FP32
#           [1,1,512,512], outputs boxes/scores/labels (xyxy normalized);
#           it boxes the brightest region of the tensor it receives.
# Modality: storescu sends (1) a synthetic MG study of two images, 640x496
#           (portrait: padded left and right) and 496x640 (landscape: padded
#           above and below), each with one bright rectangle at a known place;
#           (2) a make-studies mg-screening study (4 views, 640x496).
# Expected: (1) done after one attempt; algorithm mammo_detector / 3 /
#           "KServe model"; outcome positive; exactly one finding per image,
#           on its SOP Instance UID, frame 1, label "mass", code 99TRIAGED
#           MASS, its box within 3 source pixels of the rectangle (so the
#           resize and the padding were undone); the server received two JSON
#           FP32 [1,1,512,512] requests whose gray values are in 0..1 and the
#           padding 0. (2) done; one request per view; every finding on one of
#           the study's SOP Instance UIDs with a box inside that image.
. "$(dirname "$0")/../lib.sh"
require_binaries

OIP=$E2E_DIR/servers/oip_server.py
SRVLOG=$T/out/oip.jsonl

step "a synthetic MG study with known bright rectangles"
"$PY" "$OIP" make-dicom "$T/study1" --seed 4101 \
	--image 640x496:300,100,360,180:R:CC --image 496x640:40,300,120,380:L:CC > "$T/out/manifest1.jsonl" \
	|| fail "make-dicom failed"
mapfile -t FILES1 < <(find "$T/study1" -name '*.dcm' | sort)
study1=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["study_uid"])' "$T/out/manifest1.jsonl")
make_studies MG --kind mg-screening --count 1 --size 640x496 --seed 4102
mapfile -t FILES2 < <(find "$MG" -name '*.dcm' | sort)
study2=$(dcm_get "${FILES2[0]}" StudyInstanceUID)

SPORT=$(free_port)
"$PY" "$OIP" "$SPORT" --model mammo_detector --version 3 --input image --datatype FP32 \
	--shape 1,1,512,512 --log "$SRVLOG" >"$T/out/oip.log" 2>&1 3>&- &
track_pid $!
wait_for 15 "oip_server to listen" grep -q ready "$T/out/oip.log" || fail "oip_server did not start: $(cat "$T/out/oip.log")"
log "oip_server on 127.0.0.1:$SPORT"

CONF_EXTRA="[analysis]
workers = 2
max_attempts = 2
retry_base_s = 1

[route mammo]
modality = MG
backend = mammo-gpu

[backend mammo-gpu]
type = kserve
url = http://127.0.0.1:$SPORT
model = mammo_detector
model_version = 3
input = image
input_size = 512x512
normalize = 0..1
outputs = boxes, scores, labels
box_format = xyxy_normalized
labels = mass, calcification
score_threshold = 0.5
binary = no
timeout_s = 60"
write_config stable_seconds=1 force_seconds=600
start_triaged

job_of() { # job_of STUDY: "ID STATE" of its job ("" while none); list in $T/out/jobs.json
	ctl_json "$T/out/jobs.json" list --json
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
finished() { case $(job_of "$1") in *" done"|*" failed") return 0 ;; *) return 1 ;; esac; }
show() { # show STUDY OUT: show --json of its job
	local id
	id=$(job_of "$1" | cut -d' ' -f1)
	[ -n "$id" ] || fail "no job for study $1"
	ctl_json "$2" show --json "$id"
}

step "storescu sends the synthetic study ($study1) and the mg-screening study ($study2)"
storescu_send "$T/out/store1.log" MG_ROOM "${FILES1[@]}" || fail "storescu failed: $(tail -n 5 "$T/out/store1.log")"
storescu_send "$T/out/store2.log" MG_ROOM "${FILES2[@]}" || fail "storescu failed: $(tail -n 5 "$T/out/store2.log")"
for s in "$study1" "$study2"; do
	wait_for 60 "the job of study $s to finish" finished "$s" \
		|| { cat "$T/out/jobs.json" >&3; fail "the kserve job of $s did not finish within 60 s"; }
done
show "$study1" "$T/out/job1.json"
show "$study2" "$T/out/job2.json"

check "synthetic study: one finding per image, on the bright rectangle in source pixels"
"$PY" - "$T/out/job1.json" "$T/out/manifest1.jsonl" <<-'EOF' >&3 || fail "the kserve result of the synthetic study is wrong (above)"
import json, sys
d = json.load(open(sys.argv[1]))
man = [json.loads(l) for l in open(sys.argv[2])]
j, r = d["job"], d["result"]
assert j["state"] == "done", "state %s, error %r" % (j["state"], j.get("error"))
assert j["route"] == "mammo" and j["backend"] == "mammo-gpu" and j["attempts"] == 1, j
alg = r["algorithm"]
assert (alg["name"], alg["version"], alg["vendor"]) == ("mammo_detector", "3", "KServe model"), alg
assert r["study"]["outcome"] == "positive", r["study"]
assert len(r["findings"]) == len(man), r["findings"]
by_sop = {f["sop_instance_uid"]: f for f in r["findings"]}
assert set(by_sop) == {m["sop_uid"] for m in man}, (sorted(by_sop), man)
for m in man:
    f = by_sop[m["sop_uid"]]
    assert f["label"] == "mass" and f["frame"] == 1, f
    assert f["code"] == {"scheme": "99TRIAGED", "value": "MASS", "meaning": "mass"}, f["code"]
    assert 0.5 <= f["score"] <= 1, f
    err = max(abs(a - b) for a, b in zip(f["box"], m["box"]))
    print("    %s (%dx%d): box %s, rectangle %s, off by %.2f px, score %.3f"
          % (m["sop_uid"][:24] + "...", m["rows"], m["cols"], [round(v, 1) for v in f["box"]], m["box"], err, f["score"]))
    assert err <= 3, "box %s is not the rectangle %s" % (f["box"], m["box"])
assert abs(r["study"]["score"] - max(f["score"] for f in r["findings"])) < 1e-9, r["study"]
EOF
ok "both rectangles found where they are, through resize and centered padding"

check "the server received JSON FP32 [1,1,512,512] tensors: values in 0..1, padding 0"
"$PY" - "$SRVLOG" "$(json "$T/out/job1.json" "d['job']['id']")" <<-'EOF' >&3 || fail "the requests the server received are wrong (above)"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
mine = [q for q in reqs if q["id"].startswith("triaged-%s-" % sys.argv[2])]
assert sorted(q["id"] for q in mine) == ["triaged-%s-%d-1" % (sys.argv[2], i) for i in (1, 2)], [q["id"] for q in reqs]
for q in mine:
    print("    %s %s %s min %.3f max %.3f ids %s" % (q["mode"], q["datatype"], q["shape"], q["min"], q["max"], q["id"]))
    assert q["mode"] == "json" and q["datatype"] == "FP32" and q["shape"] == [1, 1, 512, 512], q
    assert q["content_type"] == "application/json", q
    assert q["min"] == 0 and 0 < q["max"] <= 1, q
    assert q["binary_outputs"] == [], q
EOF
ok "JSON requests as configured"

check "mg-screening study: done, findings only on its views, boxes inside the images"
"$PY" - "$T/out/job2.json" "$SRVLOG" "${FILES2[@]}" <<-'EOF' >&3 || fail "the kserve result of the mg-screening study is wrong (above)"
import json, sys, warnings
warnings.simplefilter("ignore")
import pydicom
d = json.load(open(sys.argv[1]))
reqs = [json.loads(l) for l in open(sys.argv[2])]
j, r = d["job"], d["result"]
assert j["state"] == "done" and j["attempts"] == 1, j
size = {}
for p in sys.argv[3:]:
    ds = pydicom.dcmread(p, stop_before_pixels=True)
    size[ds.SOPInstanceUID] = (int(ds.Columns), int(ds.Rows))
assert len(reqs) == 2 + len(size), "the server got %d requests, expected %d" % (len(reqs), 2 + len(size))
for f in r["findings"]:
    cols, rows = size[f["sop_instance_uid"]]
    x0, y0, x1, y1 = f["box"]
    assert 0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows, (f, cols, rows)
print("    outcome %s score %.3f, %d finding(s) on %d views" % (r["study"]["outcome"], r["study"]["score"], len(r["findings"]), len(size)))
EOF
ok "the mg-screening views went through the model one by one"

assert_alive "after the kserve jobs"
[ -z "$(ls -A "$T/cwd")" ] || fail "the daemon's cwd is not empty: $(ls -A "$T/cwd")"
stop_triaged
