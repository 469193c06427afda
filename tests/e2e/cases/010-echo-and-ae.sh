# 010-echo-and-ae: association policy.
#
# Config:   allowed_calling_aes = MODALITY1, PROBE (then empty)
# Modality: echoscu / storescu with listed, unlisted and wrong AE titles.
# Expected: C-ECHO works for a listed calling AE; a wrong called AE is
#           rejected "Called AE Title Not Recognized"; an unlisted calling
#           AE is rejected "Calling AE Title Not Recognized" (echo and
#           store) and nothing is stored; the log names the peer IP; with an
#           empty list any calling AE is accepted.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

# assoc_reject_reason LOG: the "Reason:" of a rejected association
reject_reason() { sed -n 's/^F: Reason: //p' "$1" | head -n 1; }

step "allowed_calling_aes = MODALITY1, PROBE"
write_config allowed_calling_aes="MODALITY1, PROBE"
start_triaged

check "C-ECHO from listed calling AE MODALITY1 to called AE $AE succeeds"
echoscu -v -to 5 -ta 5 -td 5 -aet MODALITY1 -aec "$AE" 127.0.0.1 "$PORT" >"$T/out/echo-ok.log" 2>&1 \
	|| fail "echoscu -aet MODALITY1 -aec $AE failed: $(cat "$T/out/echo-ok.log")"
grep -q 'Received Echo Response (Success)' "$T/out/echo-ok.log" \
	|| fail "no 'Received Echo Response (Success)' in: $(cat "$T/out/echo-ok.log")"
ok "echo response Success"

check "C-ECHO to a wrong called AE (WRONGAE) is rejected: Called AE Title Not Recognized"
rc=0
echoscu -to 5 -ta 5 -td 5 -aet MODALITY1 -aec WRONGAE 127.0.0.1 "$PORT" >"$T/out/echo-called.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "association to called AE WRONGAE was accepted"
reason=$(reject_reason "$T/out/echo-called.log")
[ "$reason" = "Called AE Title Not Recognized" ] \
	|| fail "echoscu -aec WRONGAE: expected rejection reason 'Called AE Title Not Recognized', got: $(cat "$T/out/echo-called.log")"
grep -q 'Result: Rejected Permanent' "$T/out/echo-called.log" \
	|| note "rejection is not permanent: $(grep 'Result:' "$T/out/echo-called.log")"
ok "rejected, reason: $reason"

check "C-ECHO from an unlisted calling AE (STRANGER) is rejected: Calling AE Title Not Recognized"
rc=0
echoscu -to 5 -ta 5 -td 5 -aet STRANGER -aec "$AE" 127.0.0.1 "$PORT" >"$T/out/echo-calling.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "association from unlisted calling AE STRANGER was accepted"
reason=$(reject_reason "$T/out/echo-calling.log")
[ "$reason" = "Calling AE Title Not Recognized" ] \
	|| fail "echoscu -aet STRANGER: expected rejection reason 'Calling AE Title Not Recognized', got: $(cat "$T/out/echo-calling.log")"
ok "rejected, reason: $reason"

make_studies GEN --kind cr-chest --count 1 --size 256x208 --seed 1001
file=$(find "$GEN" -name '*.dcm' | sort | head -n 1)

check "C-STORE from unlisted calling AE STRANGER is rejected at association, nothing is stored"
rc=0
storescu_send "$T/out/store-stranger.log" STRANGER "$file" || rc=$?
[ "$rc" != 0 ] || fail "storescu from STRANGER exited 0: $(cat "$T/out/store-stranger.log")"
grep -q '^F: Reason: Calling AE Title Not Recognized' "$T/out/store-stranger.log" \
	|| fail "storescu from STRANGER: expected 'Calling AE Title Not Recognized', got: $(cat "$T/out/store-stranger.log")"
[ "$(stored_count)" = 0 ] || fail "files stored after a rejected association: $(stored_files)"
ok "rejected, spool empty"

check "C-STORE from listed calling AE MODALITY1 is stored"
storescu_send "$T/out/store-ok.log" MODALITY1 "$file" || fail "storescu from MODALITY1 failed: $(cat "$T/out/store-ok.log")"
sender_results storescu "$T/out/store-ok.log" "$file" > "$T/out/store-ok.tsv"
print_results "$T/out/store-ok.tsv"
dicomtool verify --spool "$SPOOL" --results "$T/out/store-ok.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "the instance from MODALITY1 is not stored as sent"
study=$(dcm_get "$file" StudyInstanceUID)
cae=$(study_field "$study" calling_ae)
[ "$cae" = MODALITY1 ] || fail "triagectl list --studies: calling_ae of $study is '$cae', expected MODALITY1"
ok "study $study listed with calling_ae MODALITY1"

check "the log names the peer IP 127.0.0.1, and for the rejected association also the calling AE STRANGER"
grep -q '127\.0\.0\.1' "$T/triaged.log" || fail "127.0.0.1 does not appear in the log"
grep 'STRANGER' "$T/triaged.log" | grep -q '127\.0\.0\.1' \
	|| fail "no log line names both the rejected calling AE STRANGER and its IP 127.0.0.1; lines with STRANGER: $(grep STRANGER "$T/triaged.log" || echo none)"
grep 'STRANGER' "$T/triaged.log" | grep '127\.0\.0\.1' | head -n 2 | sed 's/^/    | /'
ok "peer IP logged"
assert_nothing_outside_spool

stop_triaged

step "allowed_calling_aes empty: any calling AE is accepted"
write_config allowed_calling_aes=
start_triaged
check "C-ECHO from STRANGER now succeeds"
echoscu -to 5 -ta 5 -td 5 -aet STRANGER -aec "$AE" 127.0.0.1 "$PORT" >"$T/out/echo-any.log" 2>&1 \
	|| fail "echoscu -aet STRANGER with an empty allow-list failed: $(cat "$T/out/echo-any.log")"
ok "accepted"
check "a wrong called AE is still rejected"
rc=0
echoscu -to 5 -ta 5 -td 5 -aet STRANGER -aec WRONGAE 127.0.0.1 "$PORT" >"$T/out/echo-called2.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$(reject_reason "$T/out/echo-called2.log")" = "Called AE Title Not Recognized" ] \
	|| fail "echoscu -aec WRONGAE with an empty allow-list: $(cat "$T/out/echo-called2.log")"
ok "rejected"
stop_triaged
