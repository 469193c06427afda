# 310-exec-backend: the shipped example backend (src/backends/example-backend)
# behind an exec backend, end to end.
#
# Config:   [route chest] modality = CR -> [backend example] type = exec,
#           command = .../example-backend --model e2e --threshold 0.25
#           (a python3 program: request JSON on stdin, study folder last);
#           stable_seconds = 1.
# Modality: storescu sends a generated CR chest study (512x416).
# Expected: one job, done, on route chest / backend example, one attempt;
#           its result says the algorithm "example-backend e2e" and has one
#           finding per instance, on that instance's SOP Instance UID, frame
#           1, in the central region (columns/4..3*columns/4 x rows/4..
#           3*rows/4), scored by the stored file's mean byte value / 255;
#           the outcome follows the threshold; the program ran outside the
#           daemon's working directory (which stays empty).
. "$(dirname "$0")/../lib.sh"
require_binaries

EXAMPLE=$TRIAGED_SOURCE_DIR/src/backends/example-backend
[ -x "$EXAMPLE" ] || fail "the example backend $EXAMPLE is missing or not executable"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 (the example backend's interpreter) is missing"

make_studies CR --kind cr-chest --count 1 --size 512x416 --seed 3101
mapfile -t FILES < <(find "$CR" -name '*.dcm' | sort)
study=$(dcm_get "${FILES[0]}" StudyInstanceUID)

CONF_EXTRA="[analysis]
workers = 2

[route chest]
modality = CR
backend = example

[backend example]
type = exec
command = $EXAMPLE --model e2e --threshold 0.25
timeout_s = 60
max_output_kb = 256"
write_config stable_seconds=1 force_seconds=600
start_triaged

step "storescu sends ${#FILES[@]} CR instance(s) of study $study"
storescu_send "$T/out/store.log" CR_ROOM "${FILES[@]}" || fail "storescu failed: $(tail -5 "$T/out/store.log")"

# job_finished STUDY: its job is done or failed (list --json in $T/out/jobs.json)
job_finished() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['study_uid'] == '$1' and j['state'] in ('done', 'failed'))")" -ge 1 ]
}
wait_for 60 "the job of study $study to finish" job_finished "$study" \
	|| { cat "$T/out/jobs.json" >&3; fail "the exec job did not finish within 60 s"; }
job=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['study_uid'] == '$study'][0]")
ctl_json "$T/out/job.json" show --json "$job"

check "job $job is done on route chest / backend example after one attempt, with the example's findings"
"$PY" - "$T/out/job.json" "${FILES[@]}" <<-'EOF' >&3 || fail "job $job: the result is not what the example backend computes (above)"
import json, sys, warnings
warnings.simplefilter("ignore")
import pydicom
d = json.load(open(sys.argv[1]))
j, r = d["job"], d["result"]
assert j["state"] == "done", "state %s, error %r" % (j["state"], j.get("error"))
assert j["route"] == "chest" and j["backend"] == "example", j
assert j["attempts"] == 1, j
assert [a["status"] for a in d["attempts"]] == ["ok"], d["attempts"]
assert r["algorithm"]["name"] == "example-backend e2e", r["algorithm"]
sent = {}
for p in sys.argv[2:]:
    ds = pydicom.dcmread(p, stop_before_pixels=True)
    sent[ds.SOPInstanceUID] = (int(ds.Rows), int(ds.Columns))
paths = {i["sop_instance_uid"]: i["path"] for i in d["instances"]}
assert set(paths) == set(sent), (sorted(paths), sorted(sent))
found = {f["sop_instance_uid"]: f for f in r["findings"]}
assert len(r["findings"]) == len(sent) and set(found) == set(sent), r["findings"]
best = 0
for uid, (rows, cols) in sorted(sent.items()):
    f = found[uid]
    data = open(paths[uid], "rb").read()
    score = round(sum(data) / (255.0 * len(data)), 3)
    best = max(best, score)
    assert f["frame"] == 1, f
    assert f["box"] == [cols / 4, rows / 4, cols * 3 / 4, rows * 3 / 4], (f["box"], rows, cols)
    assert abs(f["score"] - score) < 1e-6, (f["score"], score)
    print("    %s: box %s score %.3f (mean byte of %s)" % (uid, f["box"], f["score"], paths[uid]))
outcome = "positive" if best >= 0.25 else "negative"
assert r["study"]["outcome"] == outcome, (r["study"], best)
assert abs(r["study"]["score"] - best) < 1e-6, r["study"]
print("    outcome %s, score %.3f" % (r["study"]["outcome"], r["study"]["score"]))
EOF
ok "the example backend's answer reached the job intact"

check "the program ran outside the daemon's working directory"
[ -z "$(ls -A "$T/cwd")" ] || fail "the daemon's cwd is not empty: $(ls -A "$T/cwd")"
ok "$T/cwd is empty"

assert_alive "after the exec job"
stop_triaged
