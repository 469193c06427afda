# 210-routing-reference: the default routes with the built-in reference
# backend, end to end.
#
# Config:   no [route] sections (the embedded defaults: fracture = CR/DX,
#           bone-age = CR/DX hands up to 18 years, mammo = MG FOR
#           PRESENTATION with expected_views RCC, LCC, RMLO, LMLO);
#           stable_seconds = 15, so a study that completes in less has
#           done so through its expected set.
# Modality: storescu sends make-studies output: a 4-view screening
#           mammogram, then a CR chest, a DX wrist and a child's hand.
# Expected: the mammogram is complete and analysed long before 15 s; each
#           study gets exactly the jobs of the routes that apply (hand:
#           fracture and bone-age; mammogram: mammo only), every job ends
#           done with an outcome, its findings on its own instances with
#           boxes inside the image, the bone-age job with a measurement in
#           months; `triagectl route` says the same on the files, with the
#           reason for each route that does not fire; a late instance makes
#           a new job that supersedes the first.
. "$(dirname "$0")/../lib.sh"
require_binaries
STABLE=15

make_studies MG   --kind mg-screening  --count 1 --size 832x640 --seed 2101
make_studies CR   --kind cr-chest      --count 1 --size 640x512 --seed 2102
make_studies DX   --kind dx-wrist      --count 1 --size 640x512 --seed 2103
make_studies HAND --kind hand-bone-age --count 1 --size 640x512 --seed 2104

CONF_EXTRA="[analysis]
workers = 2"
write_config stable_seconds=$STABLE force_seconds=600
start_triaged

mapfile -t MGF < <(find "$MG" -name '*.dcm' | sort)
mg_study=$(dcm_get "${MGF[0]}" StudyInstanceUID)

step "dry run: triagectl route on the mammogram files"
"$TRIAGECTL" -c "$CONF" route "${MGF[@]}" > "$T/out/route.txt" || fail "triagectl route failed"
cat "$T/out/route.txt" | sed 's/^/    /' >&3
grep -q "route mammo .*FIRES .*4 of 4 instance(s).*expected views complete" "$T/out/route.txt" \
	|| fail "dry run does not say that mammo fires with its 4 expected views"
grep -q "route fracture .*no .*modality \"MG\" does not match CR, DX" "$T/out/route.txt" \
	|| fail "dry run does not say why fracture does not fire"
ctl_json "$T/out/route.json" route --json "${MGF[0]}"
[ "$(json "$T/out/route.json" "[r['fires'] for r in d['routes'] if r['route'] == 'mammo'][0]")" = true ] \
	|| fail "route --json: mammo does not fire for one MG file"
[ "$(json "$T/out/route.json" "[r['expected_views_complete'] for r in d['routes'] if r['route'] == 'mammo'][0]")" = false ] \
	|| fail "route --json: one view cannot complete the expected set"
ok "dry run names the firing route and the reason for the others"

step "a 4-view mammogram completes on its expected set, not the quiet period"
t0=$(date +%s%N)
storescu_send "$T/out/mg.log" MG_ROOM "${MGF[@]}" || fail "storescu failed"
mg_done() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['study_uid'] == '$mg_study' and j['state'] == 'done')")" = 1 ]
}
wait_for 40 "mammo job done" mg_done || { cat "$T/out/jobs.json" >&3; fail "mammo job not done"; }
took=$(elapsed_since "$t0")
awk -v t="$took" -v s="$STABLE" 'BEGIN{exit !(t < s)}' \
	|| fail "mammogram analysed after $took s: it waited for the quiet period ($STABLE s)"
grep -q "study=$mg_study complete: every expected view of route mammo is in" "$T/triaged.log" \
	|| fail "log does not say the study completed on its expected views"
ok "mammogram complete and analysed $took s after the send (quiet period $STABLE s)"

step "CR chest, DX wrist, child's hand"
mapfile -t OTHER < <(find "$CR" "$DX" "$HAND" -name '*.dcm' | sort)
storescu_send "$T/out/other.log" XR_ROOM "${OTHER[@]}" || fail "storescu failed"
all_done() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['state'] not in ('done', 'failed'))")" = 0 ] &&
	[ "$(json "$T/out/jobs.json" "len(d['jobs'])")" -ge 5 ]
}
wait_for $((STABLE + 60)) "every job finished" all_done || { cat "$T/out/jobs.json" >&3; fail "jobs not finished"; }

check "each study has exactly the jobs of the routes that apply, all done"
cr_study=$(dcm_get "$(find "$CR" -name '*.dcm' | head -1)" StudyInstanceUID)
dx_study=$(dcm_get "$(find "$DX" -name '*.dcm' | head -1)" StudyInstanceUID)
hand_study=$(dcm_get "$(find "$HAND" -name '*.dcm' | head -1)" StudyInstanceUID)
routes_of() { json "$T/out/jobs.json" "sorted(j['route'] + ':' + j['state'] for j in d['jobs'] if j['study_uid'] == '$1')"; }
[ "$(routes_of "$mg_study")" = '["mammo:done"]' ] || fail "mammogram jobs: $(routes_of "$mg_study")"
[ "$(routes_of "$cr_study")" = '["fracture:done"]' ] || fail "CR chest jobs: $(routes_of "$cr_study")"
[ "$(routes_of "$dx_study")" = '["fracture:done"]' ] || fail "DX wrist jobs: $(routes_of "$dx_study")"
[ "$(routes_of "$hand_study")" = '["bone-age:done", "fracture:done"]' ] || fail "hand jobs: $(routes_of "$hand_study")"
ok "mammo -> mammo; chest, wrist -> fracture; child's hand -> fracture + bone-age"

check "every result: outcome, algorithm, findings on the job's own instances inside the image"
for id in $(json "$T/out/jobs.json" "' '.join(str(j['id']) for j in d['jobs'])" | tr -d '"'); do
	ctl_json "$T/out/job$id.json" show "$id" --json
	"$PY" - "$T/out/job$id.json" <<-'EOF' || fail "job $id result is wrong (above)"
	import json, sys
	d = json.load(open(sys.argv[1]))
	j, r = d["job"], d["result"]
	assert j["state"] == "done", j
	assert r and r["study"]["outcome"] in ("positive", "negative", "indeterminate"), r
	assert "not for diagnosis" in r["algorithm"]["name"].lower(), r["algorithm"]
	inst = {i["sop_instance_uid"]: i for i in d["instances"]}
	assert inst, "job without instances"
	for f in r["findings"]:
	    i = inst.get(f["sop_instance_uid"])
	    assert i, "finding on a foreign instance %s" % f["sop_instance_uid"]
	    x0, y0, x1, y1 = f["box"]
	    assert 0 <= x0 < x1 <= i["columns"] and 0 <= y0 < y1 <= i["rows"], (f, i)
	    assert 0 <= f["score"] <= 1
	print("    job %s %-8s %-9s outcome=%s findings=%d measurements=%s" % (j["id"], j["route"],
	      j["state"], r["study"]["outcome"], len(r["findings"]),
	      [(m["name"], m["value"], m["unit"]) for m in r["study"]["measurements"]]))
	EOF
done
bone=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['route'] == 'bone-age'][0]")
ctl_json "$T/out/bone.json" show "$bone" --json
age=$(dcm_get "$(find "$HAND" -name '*.dcm' | head -1)" PatientAge)
"$PY" - "$T/out/bone.json" "$age" <<-'EOF' || fail "bone-age measurement is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["result"]["study"]["measurements"]
assert len(m) == 1 and m[0]["unit"] == "mo", m
years = int(sys.argv[2][:3])
assert years * 12 <= m[0]["value"] < (years + 1) * 12 + 1, (m, sys.argv[2])
EOF
ok "bone-age job reports the age in months (PatientAge $age)"

if command -v dciodvfy >/dev/null 2>&1; then
	check "every SR and secondary capture the daemon wrote passes dciodvfy with no Error"
	n=0
	while read -r f; do
		n=$((n + 1))
		dciodvfy "$f" > "$T/out/dciodvfy.txt" 2>&1 || true
		if grep -q '^Error' "$T/out/dciodvfy.txt"; then
			sed 's/^/    /' "$T/out/dciodvfy.txt" >&3
			fail "dciodvfy reports errors on $f"
		fi
	done < <(find "$SPOOL/results" -name '*.dcm')
	[ "$n" -ge 15 ] || fail "only $n result objects written for 5 jobs"
	ok "$n result objects (SR, overlays, summaries), no dciodvfy error"
else
	note "dciodvfy not installed: result objects not validated here (5xx cases do)"
fi

step "a late instance: new job, superseding the first"
first=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['study_uid'] == '$cr_study'][0]")
dicomtool make-hostile "$T/out/late.dcm" sop "2.25.$(date +%s%N)" "$(find "$CR" -name '*.dcm' | head -1)" \
	|| fail "cannot make a late instance"
storescu_send "$T/out/late.log" XR_ROOM "$T/out/late.dcm" || fail "storescu failed"
second_done() {
	ctl_json "$T/out/jobs2.json" list --json
	[ "$(json "$T/out/jobs2.json" "sum(1 for j in d['jobs'] if j['study_uid'] == '$cr_study' and j['state'] == 'done')")" = 2 ]
}
wait_for $((STABLE + 40)) "second job for the CR study" second_done || fail "no second job after a late instance"
second=$(json "$T/out/jobs2.json" "max(j['id'] for j in d['jobs'] if j['study_uid'] == '$cr_study')")
ctl_json "$T/out/second.json" show "$second" --json
[ "$(json "$T/out/second.json" "d['job'].get('supersedes')")" = "$first" ] || fail "job $second does not record that it supersedes $first"
[ "$(json "$T/out/second.json" "len(d['instances'])")" = 3 ] || fail "the new job does not hold all 3 instances"
ctl_json "$T/out/crstudy.json" show "$cr_study" --json
"$PY" - "$T/out/crstudy.json" "$first" "$second" <<'EOF' || fail "the first job's results are not marked superseded by the second"
import json, sys
d = json.load(open(sys.argv[1]))
first, second = int(sys.argv[2]), int(sys.argv[3])
old = [r for r in d["results"] if r["job"] == first]
new = [r for r in d["results"] if r["job"] == second]
assert old and new, d["results"]
assert all(r["superseded_by"] == second for r in old), old
assert all(r["superseded_by"] is None for r in new), new
print("    job %d: %d results superseded by job %d's %d" % (first, len(old), second, len(new)))
EOF
ok "job $second supersedes job $first and covers all 3 instances"
stop_triaged
