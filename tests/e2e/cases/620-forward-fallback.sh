# 620-forward-fallback: a peer that takes uncompressed transfer syntaxes
# only, and a peer that does not answer in time.
#
# Config:   [destination scp] type = dicom, DCMTK storescp on a free port.
# Peer 1:   storescp +B (bit-preserving), default transfer syntaxes: it
#           accepts Explicit/Implicit VR Little Endian and Big Endian only.
# Sender:   tests/dest_driver with every file of testdata/{cr,dx,mg,hand,
#           misc-syntax} in one send().
# Expected: uncompressed files OK as they are; lossless-compressed files
#           (JPEG lossless, JPEG-LS lossless, RLE, deflate) OK, "sent as
#           Little Endian Explicit (the peer refused ...)", and their pixel
#           data equals what DCMTK's own dcmdjpeg/dcmdjpls/dcmdrle/dcmconv
#           make of the file; files that cannot be decompressed losslessly
#           here (JPEG 2000, lossy JPEG, JPEG-LS near-lossless) FAIL (dead at once) with
#           status 0xFFFF and "not sent: ... cannot be decompressed here",
#           and the others on the same association are not affected.
# Peer 2:   storescp --sleep-during 4 (answers each C-STORE after 4 s),
#           destination timeout_s = 1.
# Expected: the first file RETRY "no C-STORE response ... within 1 s;
#           association aborted (... a re-send is safe)", every other file
#           RETRY "not sent: association ... aborted"; sent again to a
#           storescp that answers at once, every file is OK (same SOP
#           Instance UIDs: a re-send is harmless).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/600-forward-lib.bash"
require_cmd storescp dcmdjpeg dcmdjpls dcmdrle dcmconv

mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax)

# start_scp DIR [storescp options]: storescp on a fresh port -> SCP_PID, SPORT
start_scp() {
	local dir=$1
	shift
	SPORT=$(free_port)
	mkdir -p "$dir"
	storescp -v -aet STORESCP +B +uf "$@" -od "$dir" "$SPORT" > "$dir.log" 2>&1 3>&- &
	SCP_PID=$!
	track_pid "$SCP_PID"
	wait_for 10 "storescp to answer" echoscu -to 2 -aet PROBE -aec STORESCP 127.0.0.1 "$SPORT" \
		|| fail "storescp did not start: $(cat "$dir.log")"
}
stop_scp() { kill "$SCP_PID" 2>/dev/null || true; wait "$SCP_PID" 2>/dev/null || true; untrack_pid "$SCP_PID"; }
write_dest() { # TIMEOUT_S
	cat > "$DCONF" <<-EOF
	[server]
	ae_title = TRIAGED
	[destination scp]
	type = dicom
	host = 127.0.0.1
	port = $SPORT
	ae_title = STORESCP
	timeout_s = $1
	EOF
}

step "storescp with uncompressed transfer syntaxes only; ${#FILES[@]} files in one send()"
start_scp "$T/scp1"
write_dest 30
"$DRIVER" -c "$DCONF" -d scp "${FILES[@]}" > "$T/out/r1.tsv" 2> "$T/out/r1.log" || true
log "$(tail -n 1 "$T/out/r1.log")"
awk -F'\t' '{ n = split($1, p, "/"); printf "    %-55s %-5s %s %s\n", p[n], $2, $3, substr($4, 1, 110) }' "$T/out/r1.tsv" >&3
stop_scp

check "the outcome of each file follows its transfer syntax"
E2E_DIR=$E2E_DIR "$PY" - "$T/out/r1.tsv" "$T/scp1" "$T/out" > "$T/out/check1.txt" 2>&1 <<'EOF' || fail "$(cat "$T/out/check1.txt")"
import os, subprocess, sys, warnings
warnings.simplefilter("ignore")
import pydicom
sys.path.insert(0, os.environ["E2E_DIR"])
import dicomtool
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
recv = {}
for f in os.listdir(sys.argv[2]):
    ds = pydicom.dcmread(os.path.join(sys.argv[2], f), force=True)
    recv.setdefault(str(ds.SOPInstanceUID), []).append(ds)
uncompressed = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
decoder = {"1.2.840.10008.1.2.4.70": ["dcmdjpeg"], "1.2.840.10008.1.2.4.57": ["dcmdjpeg"],
           "1.2.840.10008.1.2.4.80": ["dcmdjpls"], "1.2.840.10008.1.2.5": ["dcmdrle"],
           "1.2.840.10008.1.2.1.99": ["dcmconv", "+te"]}
bad = 0
counts = {"as is": 0, "decompressed": 0, "not sent": 0}
for i, (path, status, code, msg) in enumerate(rows):
    info = dicomtool.read_info(path)
    ts, name = info["ts"], os.path.basename(path)
    if ts in uncompressed:
        ok = status == "OK" and code == "0x0000" and "sent as" not in msg
        counts["as is"] += ok
    elif ts in decoder:
        ok = status == "OK" and code == "0x0000" and "sent as Little Endian Explicit (the peer refused" in msg
        if ok:
            ref = os.path.join(sys.argv[3], "ref%d.dcm" % i)
            subprocess.run(decoder[ts] + [path, ref], check=True, capture_output=True)
            want = pydicom.dcmread(ref, force=True).PixelData
            got = [d for d in recv.get(info["sop_uid"], []) if d.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"]
            if not any(d.PixelData == want for d in got):
                print("PIXELS DIFFER from %s's decompression: %s" % (decoder[ts][0], name)); ok = False
        counts["decompressed"] += ok
    else:
        ok = status == "FAIL" and code == "0xFFFF" and "not sent:" in msg and "cannot be decompressed here" in msg
        counts["not sent"] += ok
    if not ok:
        bad += 1
        print("UNEXPECTED %s (%s): %s %s %s" % (name, dicomtool.ts_name(ts), status, code, msg))
print("%d files: %d uncompressed sent as they are, %d decompressed losslessly (pixels equal to DCMTK's "
      "decoders), %d not sent (cannot be decompressed), %d unexpected"
      % (len(rows), counts["as is"], counts["decompressed"], counts["not sent"], bad))
sys.exit(1 if bad or not all(counts.values()) else 0)
EOF
log "$(tail -n 1 "$T/out/check1.txt")"
ok "uncompressed as is, lossless decompressed, the rest not sent"

step "storescp that answers after 4 s; timeout_s = 1"
mapfile -t SMALL < <(testdata_files misc-syntax | grep -E 'explicit-le|implicit-le|explicit-be')
start_scp "$T/scp2" --sleep-during 4
write_dest 1
"$DRIVER" -c "$DCONF" -d scp "${SMALL[@]}" > "$T/out/r2.tsv" 2> "$T/out/r2.log" || true
print_results "$T/out/r2.tsv"
check "the first file: no response in time, association aborted; the others not sent"
first=$(head -n 1 "$T/out/r2.tsv")
[[ "$first" == *"	RETRY	0xFFFF	no C-STORE response from STORESCP@127.0.0.1:$SPORT within 1 s; association aborted (the peer may have stored it: a re-send is safe)" ]] \
	|| fail "first file: $first"
rest=$(tail -n +2 "$T/out/r2.tsv" | awk -F'\t' '$2 != "RETRY" || $4 !~ /^not sent: association with STORESCP@.* aborted/')
[ -z "$rest" ] || fail "the others: $rest"
ok "RETRY for all ${#SMALL[@]}, the reason on each"
stop_scp

step "the same files again, to a storescp that answers at once"
start_scp "$T/scp3"
write_dest 30
"$DRIVER" -c "$DCONF" -d scp "${SMALL[@]}" > "$T/out/r3.tsv" 2> "$T/out/r3.log" \
	|| fail "re-send failed: $(cat "$T/out/r3.tsv")"
ok "$(tail -n 1 "$T/out/r3.log")"
stop_scp
