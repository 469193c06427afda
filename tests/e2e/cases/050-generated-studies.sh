# 050-generated-studies: synthetic studies of every kind, study listing and
# the receiving -> complete life cycle.
#
# Config:   stable_seconds = 5 (a study is complete after 5 s without a new
#           instance); receive_only (no default routes, hence no mammo
#           expected-views rule: every study completes by the quiet period).
# Modality: storescu sends make-studies output (small images): cr-chest x2,
#           dx-wrist, mg-screening (4 views), hand-bone-age x2, plus RLE
#           (mg, CR hand) and implicit VR (cr-chest) variants; one image of
#           the first cr-chest study is held back.
# Expected: every study listed with the right instance count, modality,
#           patient id, accession, study date and calling AE, "receiving"
#           right after the send, "complete" once 5 s have passed (not
#           before); the held-back image, sent late, makes its study
#           "receiving" again (the others stay complete) and it completes
#           again. Every instance stored bit for bit.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only
STABLE=5

make_studies CR   --kind cr-chest      --count 2 --size 512x416 --seed 5001
make_studies DX   --kind dx-wrist      --count 1 --size 512x416 --seed 5002
make_studies MG   --kind mg-screening  --count 1 --size 512x416 --seed 5003
make_studies HAND --kind hand-bone-age --count 2 --size 512x416 --seed 5004
make_studies MGRLE   --kind mg-screening  --count 1 --size 512x416 --seed 5005 --syntax rle
make_studies HANDRLE --kind hand-bone-age --count 1 --size 512x416 --seed 5006 --syntax rle --modality CR
make_studies CRIMP   --kind cr-chest      --count 1 --size 512x416 --seed 5007 --syntax implicit

mapfile -t ALL < <(find "$CR" "$DX" "$MG" "$HAND" "$MGRLE" "$HANDRLE" "$CRIMP" -name '*.dcm' | sort)
LATE=$(find "$CR" -name '*.dcm' | sort | sed -n 2p)      # second image of the first cr-chest study
LATE_STUDY=$(dcm_get "$LATE" StudyInstanceUID)
FIRST=()
for f in "${ALL[@]}"; do [ "$f" = "$LATE" ] || FIRST+=("$f"); done
log "${#ALL[@]} images; held back for later: $LATE (study $LATE_STUDY)"

write_config stable_seconds=$STABLE
start_triaged

step "send ${#FIRST[@]} images"
t0=$(date +%s%N)
storescu_send "$T/out/send1.log" MODALITY1 "${FIRST[@]}" || note "storescu exited non-zero"
t_sent=$(date +%s%N)
send_s=$(elapsed_since "$t0")
sender_results storescu "$T/out/send1.log" "${FIRST[@]}" > "$T/out/send1.tsv"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/send1.tsv")
[ -z "$bad" ] || fail "not answered Success:
$bad"
ok "${#FIRST[@]}/${#FIRST[@]} Success in $send_s s"

check "every study listed, 'receiving', with instance count, modality, patient id, accession, date, calling AE"
ctl_json "$T/out/list1.json" list --studies --json
since=$(elapsed_since "$t_sent")
if awk -v a="$send_s" -v b="$since" -v s="$STABLE" 'BEGIN{exit !(a + b < s - 1)}'; then
	dicomtool studies-check --list "$T/out/list1.json" --calling-ae MODALITY1 --state receiving "${FIRST[@]}" \
		|| fail "study list right after the send is wrong (see table)"
else
	note "the send took $send_s s: too slow to require 'receiving' everywhere; checking the rest"
	dicomtool studies-check --list "$T/out/list1.json" --calling-ae MODALITY1 "${FIRST[@]}" \
		|| fail "study list right after the send is wrong (see table)"
fi
ok "all studies listed as sent"

all_complete() {
	ctl_json "$T/out/poll.json" list --studies --json
	[ "$(json "$T/out/poll.json" "sum(1 for s in d['studies'] if s['state'] != 'complete')")" = 0 ]
}
check "all studies become 'complete' after $STABLE s without a new instance (not before)"
wait_for $((STABLE + 15)) "all studies complete" all_complete || {
	cat "$T/out/poll.json"; fail "studies still receiving $((STABLE + 15)) s after the last instance"; }
took=$(elapsed_since "$t_sent")
awk -v t="$took" -v a="$send_s" -v s="$STABLE" 'BEGIN{exit !(t + a >= s - 1)}' \
	|| fail "all studies complete $took s after the send (which took $send_s s): earlier than stable_seconds=$STABLE"
ok "all complete, $took s after the last instance"
ctl_json "$T/out/list2.json" list --studies --json
dicomtool studies-check --list "$T/out/list2.json" --calling-ae MODALITY1 --state complete "${FIRST[@]}" \
	|| fail "study list after completion is wrong (see table)"

step "a late instance for a complete study"
storescu_send "$T/out/send2.log" MODALITY1 "$LATE" || note "storescu exited non-zero"
t_late=$(date +%s%N)
sender_results storescu "$T/out/send2.log" "$LATE" > "$T/out/send2.tsv"
[ "$(cut -f2 "$T/out/send2.tsv")" = 0x0000 ] || fail "late instance not answered Success: $(cat "$T/out/send2.tsv")"
check "study $LATE_STUDY is 'receiving' again with one more instance; the other studies stay complete"
ctl_json "$T/out/list3.json" list --studies --json
st=$(json "$T/out/list3.json" "[s['state'] for s in d['studies'] if s['study_uid'] == '$LATE_STUDY']")
[ "$st" = '["receiving"]' ] || fail "study $LATE_STUDY state after a late instance: $st, expected receiving"
others=$(json "$T/out/list3.json" "sorted(s['study_uid'] for s in d['studies'] if s['study_uid'] != '$LATE_STUDY' and s['state'] != 'complete')")
[ "$others" = "[]" ] || fail "other studies left 'complete': $others"
dicomtool studies-check --list "$T/out/list3.json" --calling-ae MODALITY1 "${ALL[@]}" \
	|| fail "study list after the late instance is wrong (see table)"
ok "reopened"

check "it completes again"
wait_for $((STABLE + 15)) "study $LATE_STUDY complete again" all_complete \
	|| fail "study $LATE_STUDY still receiving $((STABLE + 15)) s after its late instance"
ok "complete again $(elapsed_since "$t_late") s after the late instance"

check "every instance stored once, bit for bit; triagectl show agrees"
cat "$T/out/send1.tsv" "$T/out/send2.tsv" > "$T/out/all.tsv"
dicomtool verify --spool "$SPOOL" --results "$T/out/all.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "stored instances do not match what was sent"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['instances']")" = "${#ALL[@]}" ] \
	|| fail "triagectl status instances=$(json "$T/out/status.json" "d['instances']"), expected ${#ALL[@]}"
[ "$(json "$T/out/status.json" "d['studies']['complete']")" = "$(json "$T/out/list3.json" "len(d['studies'])")" ] \
	|| fail "triagectl status: $(json "$T/out/status.json" "d['studies']")"
ok "status: $(json "$T/out/status.json" "d['studies']"), ${#ALL[@]} instances"
assert_nothing_outside_spool
stop_triaged
