# 740-deliver-priority: a STAT study jumps the delivery queue, and a route
# that names its destinations sends its results only there.
#
# Config:   [destination outbox] folder, one association, originals and
#           results; [destination archive] folder, results only;
#           [route fracture] CR, destinations = outbox (so the archive gets
#           no fracture results), with an exec backend that always answers
#           negative (a positive study would be urgent too);
#           [route hands] DX hands, all destinations.
# Modality: while the outbox is broken (a file stands where its folder must
#           be), storescu sends a routine CR study, then a CR study whose
#           Requested Procedure Priority is STAT, then a DX hand.
# Expected: once the outbox is repaired, every file of the STAT study is
#           written before any file of the routine one (file times); the
#           archive holds the hand job's results and no fracture result.
. "$(dirname "$0")/../lib.sh"
require_binaries

make_studies CR   --kind cr-chest      --count 2 --size 512x416 --seed 7401
make_studies HAND --kind hand-bone-age --count 1 --size 512x416 --seed 7402
mapfile -t ROUTINE < <(find "$CR" -name '*.dcm' | sort | head -2)
mapfile -t STATF < <(find "$CR" -name '*.dcm' | sort | tail -2)
for f in "${STATF[@]}"; do
	"$PY" -c 'import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); d.RequestedProcedurePriority="STAT"; d.save_as(sys.argv[2])' \
		"$f" "$T/out/stat-$(basename "$f")" || fail "cannot make the STAT study"
done
STATF=("$T"/out/stat-*.dcm)
routine_study=$(dcm_get "${ROUTINE[0]}" StudyInstanceUID)
stat_study=$(dcm_get "${STATF[0]}" StudyInstanceUID)
[ "$routine_study" != "$stat_study" ] || fail "test data: the two CR studies share a UID"

OUTBOX=$T/outbox
ARCHIVE=$T/archive
touch "$OUTBOX"          # a file where the folder should be: the outbox is down
CONF_EXTRA="[destination outbox]
type = folder
path = $OUTBOX
max_associations = 1
retry_base_s = 1
retry_max_s = 2

[destination archive]
type = folder
path = $ARCHIVE
send = results

[backend negative]
type = exec
command = $TRIAGED_SOURCE_DIR/src/backends/example-backend --threshold 1

[route fracture]
modality = CR
backend = negative
destinations = outbox

[route hands]
modality = DX
body_part = HAND"
write_config stable_seconds=2
start_triaged

step "outbox down; a routine study, then a STAT one, then a hand"
storescu_send "$T/out/s1.log" MODALITY1 "${ROUTINE[@]}" || fail "storescu failed"
storescu_send "$T/out/s2.log" MODALITY1 "${STATF[@]}" || fail "storescu failed"
storescu_send "$T/out/s3.log" MODALITY1 $(find "$HAND" -name '*.dcm') || fail "storescu failed"
jobs_done() {
	ctl_json "$T/out/jobs.json" list --json
	[ "$(json "$T/out/jobs.json" "sum(1 for j in d['jobs'] if j['state'] == 'done')")" = 3 ]
}
wait_for 60 "three jobs done" jobs_done || { cat "$T/out/jobs.json" >&3; fail "jobs not done"; }
[ "$(json "$T/out/jobs.json" "[j['priority'] for j in d['jobs'] if j['study_uid'] == '$stat_study'][0]")" = 0 ] \
	|| fail "the STAT study's job is not priority 0"
retrying() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['dispatches'].get('pending', 0)")" -ge 8 ]
}
wait_for 30 "outbox dispatches waiting" retrying || { cat "$T/out/status.json" >&3; fail "nothing waits for the outbox"; }
sleep 3     # let the result dispatches of the last job be queued too

step "outbox repaired: STAT first"
rm -f "$OUTBOX"
settled() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['dispatches'].get('pending', 0) + d['dispatches'].get('sending', 0)")" = 0 ]
}
wait_for 60 "everything delivered" settled || { cat "$T/out/status.json" >&3; fail "not delivered"; }
"$PY" - "$OUTBOX" "$stat_study" "$routine_study" <<'PY' || fail "the STAT study was not delivered first"
import os, sys
root, stat, routine = sys.argv[1:4]
def times(study):
    d = os.path.join(root, study)
    return [os.stat(os.path.join(d, f)).st_mtime_ns for f in os.listdir(d)]
s, r = times(stat), times(routine)
print("    STAT study: %d files, routine study: %d files" % (len(s), len(r)))
assert len(s) >= 4 and len(r) >= 4, (len(s), len(r))
assert max(s) <= min(r), "a routine file was written before a STAT one"
PY
ok "every file of the STAT study reached the outbox before the routine study's"

check "the archive (send = results) got the hand job's results and no fracture result"
hand_study=$(dcm_get "$(find "$HAND" -name '*.dcm' | head -1)" StudyInstanceUID)
[ -d "$ARCHIVE/$hand_study" ] || fail "no hand results in the archive"
[ ! -d "$ARCHIVE/$routine_study" ] && [ ! -d "$ARCHIVE/$stat_study" ] || fail "fracture results in the archive, whose route names only the outbox"
n=$(find "$ARCHIVE/$hand_study" -name '*.dcm' | wc -l)
for f in "$ARCHIVE/$hand_study"/*.dcm; do
	m=$(dcm_get "$f" Modality)
	[ "$m" = SR ] || [ "$m" = OT ] || fail "an original ($m) in the archive, which takes results only"
done
ok "archive: $n result objects of the hand study, nothing else"
stop_triaged
