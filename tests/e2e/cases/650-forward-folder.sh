# 650-forward-folder: the folder destination (the quickstart's embedded
# default) writes every instance, byte for byte, under
# PATH/<StudyInstanceUID>/<SOPInstanceUID>.dcm.
#
# Config:   [destination out] type = folder, path = $T/outbox (created by
#           the destination); a second one below a regular file.
# Sender:   tests/dest_driver, two threads (--parallel 2) in batches of 5
#           (--batch 5), every file of testdata/{cr,dx,mg,hand,misc-syntax,sr}
#           plus generated CR and MG studies; then the same files again.
# Expected: echo OK; every file OK; one file per distinct (study, SOP
#           Instance UID), identical to a file sent with those UIDs
#           (variants of one image share UIDs in the test data; with one
#           thread, to the last one sent: a later one replaces the earlier,
#           atomically); directories 0750, files 0640;
#           no temporary file left; nothing else under the path; the second
#           round writes every file again and leaves the same set (that a
#           re-write is a rename of a complete copy is checked by
#           tests/unit/test_dest.c). A path below a regular file: echo
#           fails with the reason, every file RETRY "cannot create ...: Not a
#           directory".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/600-forward-lib.bash"

make_studies CR  --kind cr-chest     --count 2 --size 512x416 --seed 6501
make_studies MGI --kind mg-screening --count 1 --size 512x416 --seed 6502 --syntax implicit
mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax sr; find "$CR" "$MGI" -name '*.dcm' | sort)
OUTBOX=$T/outbox
touch "$T/plain-file"
cat > "$DCONF" <<EOF
[server]
ae_title = TRIAGED
[destination out]
type = folder
path = $OUTBOX
[destination broken]
type = folder
path = $T/plain-file/outbox
EOF

step "echo"
out=$("$DRIVER" -c "$DCONF" -d out --echo 2>&1) || fail "echo failed: $out"
ok "$out"

# check_outbox TSV last|any: one file per (study, sop), byte for byte the
# last file sent with these UIDs (any of them, when threads raced)
check_outbox() {
	"$PY" - "$1" "$OUTBOX" "$2" > "$T/out/outbox.txt" 2>&1 <<-'EOF' || fail "$(cat "$T/out/outbox.txt")"
	import os, stat, sys, warnings
	warnings.simplefilter("ignore")
	import pydicom
	rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
	root = sys.argv[2]
	want, every = {}, {}
	for path, status, code, msg in rows:
	    if status != "OK" or msg:
	        sys.exit("not OK: %s %s %s" % (path, status, msg))
	    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
	    key = (str(ds.StudyInstanceUID), str(ds.SOPInstanceUID))
	    want[key] = path
	    every.setdefault(key, []).append(path)
	found = set()
	for d, dirs, files in os.walk(root):
	    for x in dirs:
	        m = stat.S_IMODE(os.stat(os.path.join(d, x)).st_mode)
	        if m & ~0o750:
	            sys.exit("directory %s has mode %o" % (os.path.join(d, x), m))
	    for f in files:
	        p = os.path.join(d, f)
	        rel = os.path.relpath(p, root).split(os.sep)
	        if len(rel) != 2 or not rel[1].endswith(".dcm"):
	            sys.exit("unexpected file %s" % p)
	        key = (rel[0], rel[1][:-4])
	        if key not in want:
	            sys.exit("file for no instance sent: %s" % p)
	        data = open(p, "rb").read()
	        cands = [want[key]] if sys.argv[3] == "last" else every[key]
	        if not any(data == open(c, "rb").read() for c in cands):
	            sys.exit("%s differs from %s" % (p, " and ".join(cands)))
	        m = stat.S_IMODE(os.stat(p).st_mode)
	        if m & ~0o640:
	            sys.exit("file %s has mode %o" % (p, m))
	        found.add(key)
	if found != set(want):
	    sys.exit("missing: %s" % sorted(set(want) - found)[:3])
	print("%d files sent, %d distinct instances, each file byte for byte %s" % (len(rows), len(want),
	      "the last one sent" if sys.argv[3] == "last" else "one of those sent"))
	EOF
	log "$(tail -n 1 "$T/out/outbox.txt")"
}

step "${#FILES[@]} files, two threads, batches of 5"
"$DRIVER" -c "$DCONF" -d out --parallel 2 --batch 5 "${FILES[@]}" > "$T/out/r1.tsv" 2> "$T/out/r1.log" \
	|| fail "not all OK: $(grep -v '	OK	' "$T/out/r1.tsv")"
log "$(tail -n 1 "$T/out/r1.log")"
check_outbox "$T/out/r1.tsv" any
ok "layout, bytes and modes as expected"
find "$OUTBOX" -type f -printf '%P\n' | sort > "$T/out/files1"
sleep 1.1
touch "$T/out/round2"

step "the same files again (one thread, one batch)"
"$DRIVER" -c "$DCONF" -d out "${FILES[@]}" > "$T/out/r2.tsv" 2> "$T/out/r2.log" \
	|| fail "not all OK: $(grep -v '	OK	' "$T/out/r2.tsv")"
check_outbox "$T/out/r2.tsv" last
find "$OUTBOX" -type f -printf '%P\n' | sort > "$T/out/files2"
cmp -s "$T/out/files1" "$T/out/files2" || fail "the set of files changed: $(diff "$T/out/files1" "$T/out/files2")"
old=$(find "$OUTBOX" -type f ! -newer "$T/out/round2" | wc -l)
[ "$old" = 0 ] || fail "$old file(s) not written again"
[ -z "$(find "$OUTBOX" -name '.*')" ] || fail "temporary files left: $(find "$OUTBOX" -name '.*')"
ok "the same files, each written again; no temporary file left"

step "a folder that cannot be created"
out=$("$DRIVER" -c "$DCONF" -d broken --echo 2>&1) && fail "echo succeeded: $out"
[[ "$out" == "echo	ERROR	cannot create $T/plain-file/outbox: Not a directory" ]] || fail "echo printed: $out"
"$DRIVER" -c "$DCONF" -d broken "${FILES[@]:0:4}" > "$T/out/broken.tsv" 2> "$T/out/broken.log" && fail "dest_driver exited 0"
bad=$(awk -F'\t' -v m="cannot create $T/plain-file/outbox: Not a directory" '$2 != "RETRY" || $4 != m' "$T/out/broken.tsv")
[ -z "$bad" ] || fail "expected RETRY 'cannot create': $bad"
ok "RETRY: $(head -n 1 "$T/out/broken.tsv" | cut -f4)"
