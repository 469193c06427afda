# 110-reconcile: the spool is the truth the database is rebuilt from.
#
# Config:   defaults.
# Setup:    one instance received normally; daemon stopped; then by hand:
#           a valid Part 10 file copied to studies/<study>/<sop>.dcm of that
#           study (a file whose database row is missing), another one for a
#           study the database does not know, junk files in tmp/, and a junk
#           file named like an instance under studies/.
# Expected: on start, tmp/ is emptied; both copied files are re-indexed:
#           listed once by triagectl with their study, path, size and syntax,
#           unchanged on disk; the junk file is not listed and does not stop
#           the daemon; re-sending the copied instances is answered Success
#           and they stay once.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

make_studies GEN --kind cr-chest --count 2 --size 512x416 --seed 11001
mapfile -t FILES < <(find "$GEN" -name '*.dcm' | sort)
A1=${FILES[0]} A2=${FILES[1]} B1=${FILES[2]}
S1=$(dcm_get "$A1" StudyInstanceUID); S2=$(dcm_get "$B1" StudyInstanceUID)
write_config
start_triaged

step "one instance of study $S1 received normally"
storescu_send "$T/out/a1.log" MODALITY1 "$A1" || true
sender_results storescu "$T/out/a1.log" "$A1" > "$T/out/a1.tsv"
[ "$(cut -f2 "$T/out/a1.tsv")" = 0x0000 ] || fail "first instance not stored: $(cat "$T/out/a1.tsv")"
stop_triaged

step "by hand, while stopped: two instance files without database rows, junk in tmp/ and studies/"
A2_DST=$SPOOL/studies/$S1/$(dcm_get "$A2" SOPInstanceUID).dcm
B1_DST=$SPOOL/studies/$S2/$(dcm_get "$B1" SOPInstanceUID).dcm
JUNK=$SPOOL/studies/$S1/2.25.1234567890.dcm
mkdir -p "$SPOOL/tmp" "$SPOOL/studies/$S2"
cp "$A2" "$A2_DST"
cp "$B1" "$B1_DST"
head -c 100000 /dev/urandom > "$SPOOL/tmp/partial-upload.dcm"
: > "$SPOOL/tmp/empty.tmp"
echo "this is not DICOM" > "$JUNK"
log "copied $A2_DST"
log "copied $B1_DST"
log "junk: $SPOOL/tmp/partial-upload.dcm, $SPOOL/tmp/empty.tmp, $JUNK"

step "start"
start_triaged
check "tmp/ emptied on start"
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp: $(ls -la "$SPOOL/tmp")"
ok "tmp empty"

check "the copied files are re-indexed: listed once, with path, size, syntax; unchanged on disk"
printf '%s\n' "$A1" "$A2" "$B1" > "$T/out/expected.list"
dicomtool verify --spool "$SPOOL" --sources "$T/out/expected.list" --triagectl "$TRIAGECTL" --config "$CONF" --any-peer \
	|| fail "copied instances not re-indexed as they are"
cmp -s "$A2" "$A2_DST" || fail "$A2_DST was modified"
cmp -s "$B1" "$B1_DST" || fail "$B1_DST was modified"
ctl_json "$T/out/list.json" list --studies --json
dicomtool studies-check --list "$T/out/list.json" "$A1" "$A2" "$B1" || fail "study list after re-indexing is wrong"
ok "re-indexed"

check "the junk file is not listed as an instance"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['instances']")" = 3 ] \
	|| fail "triagectl status: $(json "$T/out/status.json" "d['instances']") instances, expected 3 (junk indexed?)"
ctl_json "$T/out/show1.json" show "$S1" --json
[ "$(json "$T/out/show1.json" "sorted(i['sop_instance_uid'] for i in d['instances'] if i['sop_instance_uid'] == '2.25.1234567890')")" = "[]" ] \
	|| fail "junk file indexed: $(cat "$T/out/show1.json")"
grep -F "2.25.1234567890" "$T/triaged.log" | head -n 2 | sed 's/^/    | /' || true
ok "3 instances; junk ignored"

check "re-sending the re-indexed instances: Success, still once"
storescu_send "$T/out/again.log" MODALITY1 "$A2" "$B1" || true
sender_results storescu "$T/out/again.log" "$A2" "$B1" > "$T/out/again.tsv"
[ -z "$(awk -F'\t' '$2 != "0x0000"' "$T/out/again.tsv")" ] || fail "re-send: $(cat "$T/out/again.tsv")"
dicomtool verify --spool "$SPOOL" --sources "$T/out/expected.list" --triagectl "$TRIAGECTL" --config "$CONF" --any-peer \
	|| fail "instances not once after the re-send"
ok "still once"
assert_alive "after reconcile"
stop_triaged
