# 630-forward-refused: the PACS rejects the association, refuses one
# instance, or is down; every item gets RETRY with a reason a PACS
# administrator can act on.
#
# Config:   [destination NAME] type = dicom to Orthanc (orthanc-test-pacs,
#           strict mode: only the AE titles it knows, TRIAGED among them, may
#           store; the called AE title is checked).
# Sender:   tests/dest_driver, a batch of 8 CR files (and echo).
# Expected:
#   - calling AE STRANGER: echo fails and every file is RETRY, 0xFFFF,
#     "association rejected by TESTPACS@127.0.0.1:PORT (permanent, service
#     user): calling AE title not recognized [calling AE STRANGER]";
#   - called AE WRONGPACS: "called AE title not recognized";
#   - calling AE TRIAGED, a batch with a file whose StudyInstanceUID is
#     empty (Orthanc answers 0xA700): that file RETRY 0xA700 "C-STORE status
#     0xA700 (refused: out of resources)", the other files of the same
#     association OK;
#   - Orthanc stopped: echo fails and every file is RETRY "cannot connect to
#     TESTPACS@127.0.0.1:PORT: connection refused"; dest_driver exits 1.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/600-forward-lib.bash"
require_cmd Orthanc curl

mapfile -t FILES < <(testdata_files cr)
BAD_STUDY=$TESTDATA/malformed/CR_chest_empty-PatientID-and-StudyUID.dcm
[ -f "$BAD_STUDY" ] || skip "missing $BAD_STUDY"

orthanc_pacs "$T/pacs" strict

dest() { # NAME CALLED CALLING
	printf '[destination %s]\ntype = dicom\nhost = 127.0.0.1\nport = %s\nae_title = %s\ncalling_ae = %s\ntimeout_s = 20\n' \
		"$1" "$OPORT" "$2" "$3"
}
{
	dest stranger TESTPACS STRANGER
	dest wrongcalled WRONGPACS TRIAGED
	dest pacs TESTPACS TRIAGED
} >> "$DCONF"

step "calling AE STRANGER is not known to the PACS"
REJ="association rejected by TESTPACS@127.0.0.1:$OPORT (permanent, service user): calling AE title not recognized [calling AE STRANGER]"
out=$("$DRIVER" -c "$DCONF" -d stranger --echo 2>&1) && fail "echo succeeded: $out"
[ "$out" = "echo	ERROR	$REJ" ] || fail "echo printed: $out"
ok "echo: $REJ"
rc=0; "$DRIVER" -c "$DCONF" -d stranger "${FILES[@]}" > "$T/out/stranger.tsv" 2> "$T/out/stranger.log" || rc=$?
[ "$rc" = 1 ] || fail "dest_driver exited $rc (expected 1)"
every_row "$T/out/stranger.tsv" RETRY 0xFFFF "$REJ"
ok "${#FILES[@]} files RETRY with the reject reason"

step "called AE WRONGPACS"
"$DRIVER" -c "$DCONF" -d wrongcalled "${FILES[@]}" > "$T/out/wrong.tsv" 2> "$T/out/wrong.log" || true
every_row "$T/out/wrong.tsv" RETRY 0xFFFF \
	"association rejected by WRONGPACS@127.0.0.1:$OPORT (permanent, service user): called AE title not recognized [calling AE TRIAGED]"
ok "every file RETRY: called AE title not recognized"

step "a known AE; one file of the batch is refused with 0xA700"
BATCH=("${FILES[@]:0:3}" "$BAD_STUDY" "${FILES[@]:3}")
"$DRIVER" -c "$DCONF" -d pacs "${BATCH[@]}" > "$T/out/pacs.tsv" 2> "$T/out/pacs.log" || true
print_results "$T/out/pacs.tsv"
row=$(grep -F "$BAD_STUDY" "$T/out/pacs.tsv")
[ "$(cut -f2-4 <<< "$row")" = "RETRY	0xA700	C-STORE status 0xA700 (refused: out of resources)" ] \
	|| fail "the refused file: $row"
bad=$(grep -vF "$BAD_STUDY" "$T/out/pacs.tsv" | awk -F'\t' '$2 != "OK" || $3 != "0x0000"')
[ -z "$bad" ] || fail "the other files: $bad"
ok "0xA700 for that file only; ${#FILES[@]} others OK on the same association"

step "the PACS is down"
"$TOOLS/orthanc-test-pacs" stop "$T/pacs" > /dev/null 2>&1 || fail "Orthanc did not stop"
DOWN="cannot connect to TESTPACS@127.0.0.1:$OPORT: connection refused"
out=$("$DRIVER" -c "$DCONF" -d pacs --echo 2>&1) && fail "echo succeeded: $out"
[ "$out" = "echo	ERROR	$DOWN" ] || fail "echo printed: $out"
rc=0; "$DRIVER" -c "$DCONF" -d pacs "${FILES[@]}" > "$T/out/down.tsv" 2> "$T/out/down.log" || rc=$?
[ "$rc" = 1 ] || fail "dest_driver exited $rc (expected 1)"
every_row "$T/out/down.tsv" RETRY 0xFFFF "$DOWN"
ok "every file RETRY: $DOWN"
