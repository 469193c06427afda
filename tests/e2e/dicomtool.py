#!/usr/bin/python3
"""dicomtool.py - DICOM helpers for the triaged end-to-end tests.

Runs with Debian's /usr/bin/python3 (python3-pydicom 2.3). Subcommands:

  offset FILE                 byte offset where the dataset starts (after the
                              File Meta group 0002; 0 for a bare dataset)
  same-dataset A B            exit 0 when the dataset bytes (after File Meta)
                              of A and B are identical, else print where they
                              differ and exit 1
  info FILE...                one JSON object per line: path, sop_uid,
                              sop_class, study_uid, series_uid, ts, patient_id,
                              accession, modality, has_meta
  split-profile IN OUT        write a storescu association profile equal to IN
                              but with the "Uncompressed" transfer-syntax group
                              split into one context per syntax, so that
                              storescu can send every uncompressed file in its
                              own syntax (instead of converting it to the one
                              syntax the receiver picked from the group)
  verify ...                  check what triaged stored against the sources,
                              see verify_main() below
  make-hostile OUT FIELD VALUE SOURCE
                              copy SOURCE with FIELD (sop|study|series) set to
                              VALUE (raw, no validation) into OUT; for study
                              and series the SOP Instance UID is made fresh
  results KIND LOG [FILE...]  per-file results of a sender (storescu -v log,
                              dcmsend report, dimse-send.js or rawscu.py
                              output) as TSV: file, code, text
  studies-check ...           compare triagectl's study list with files
  intact FILE [SOP [STUDY]]   exit 0 when DCMTK and pydicom parse the whole
                              file (and its UIDs are SOP / STUDY)
"""
import json
import os
import re
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")      # pydicom warns about every odd value in the test data

EXPLICIT_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV",
                     b"UC", b"UN", b"UR", b"UT", b"UV"}

TS_NAMES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


def ts_name(uid):
    return TS_NAMES.get(uid or "", uid or "?")


# ---------------------------------------------------------------- raw bytes

def meta_end(data):
    """Offset of the first byte after the File Meta group (0002,xxxx).

    Walks the group-2 elements (always Explicit VR Little Endian) instead of
    trusting (0002,0000), so a wrong group length cannot fool it. A file
    without "DICM" at 128 and without a leading group-2 element is a bare
    dataset: offset 0."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        pos = 132
    elif len(data) >= 8 and data[0:2] == b"\x02\x00" and data[4:6].isalpha():
        pos = 0          # File Meta without preamble (seen in the wild)
    else:
        return 0
    while pos + 8 <= len(data):
        group = int.from_bytes(data[pos:pos + 2], "little")
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in EXPLICIT_LONG_VRS:
            if pos + 12 > len(data):
                break
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            pos += 12 + length
        else:
            length = int.from_bytes(data[pos + 6:pos + 8], "little")
            pos += 8 + length
    return min(pos, len(data))


def dataset_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    return data[meta_end(data):]


def first_difference(a, b):
    n = min(len(a), len(b))
    step = 1 << 16
    for base in range(0, n, step):
        if a[base:base + step] != b[base:base + step]:
            for i in range(base, min(base + step, n)):
                if a[i] != b[i]:
                    return i
    return n if len(a) != len(b) else -1


# ---------------------------------------------------------------- metadata

def read_info(path):
    import pydicom
    info = {"path": path, "sop_uid": None, "sop_class": None, "study_uid": None,
            "series_uid": None, "ts": None, "patient_id": None, "accession": None,
            "modality": None, "has_meta": False, "error": None}
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception as e:  # noqa: BLE001 - malformed input is expected here
        info["error"] = "%s: %s" % (type(e).__name__, e)
        return info
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        info["has_meta"] = True
        info["ts"] = str(meta.TransferSyntaxUID)
    else:
        # bare dataset: pydicom guessed the encoding while reading
        if ds.is_little_endian and ds.is_implicit_VR:
            info["ts"] = "1.2.840.10008.1.2"
        elif ds.is_little_endian:
            info["ts"] = "1.2.840.10008.1.2.1"
        elif ds.is_little_endian is False:
            info["ts"] = "1.2.840.10008.1.2.2"

    def get(keyword):
        try:
            v = ds.get(keyword)
        except Exception:  # noqa: BLE001
            return None
        if v is None:
            return None
        return str(v)
    info["sop_uid"] = get("SOPInstanceUID")
    info["sop_class"] = get("SOPClassUID")
    info["study_uid"] = get("StudyInstanceUID")
    info["series_uid"] = get("SeriesInstanceUID")
    info["patient_id"] = get("PatientID")
    info["accession"] = get("AccessionNumber")
    info["modality"] = get("Modality")
    return info


def split_profile(src, dst):
    text = open(src).read()
    groups = {"Uncompressed": "LittleEndianExplicit",
              "UncompressedImplicit": "LittleEndianImplicit",
              "UncompressedBig": "BigEndianExplicit"}
    text = re.sub(r"\[Uncompressed\]\n(TransferSyntax\d+ = \w+\n)+",
                  "".join("[%s]\nTransferSyntax1 = %s\n" % kv for kv in groups.items()), text)
    out, n = [], 0
    for line in text.splitlines():
        m = re.match(r"PresentationContext\d+ = (\w+)\\(\w+)$", line)
        if m:
            names = list(groups) if m.group(2) == "Uncompressed" else [m.group(2)]
            for g in names:
                n += 1
                out.append("PresentationContext%d = %s\\%s" % (n, m.group(1), g))
        else:
            out.append(line)
    if n > 128:
        sys.exit("split-profile: %d presentation contexts, storescu allows 128" % n)
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


# ---------------------------------------------------------------- verify

def load_wire(wire_dir):
    """wiretap.py's index -> {sop_uid: [{"file", "ts", "status"}...]}"""
    reqs, status = [], {}
    path = os.path.join(wire_dir, "index.jsonl")
    if os.path.exists(path):
        for line in open(path):
            r = json.loads(line)
            if "file" in r:
                reqs.append(r)
            else:
                status[(r["conn"], r["msgid"])] = r["status"]
    out = {}
    for r in reqs:
        r["status"] = status.get((r["conn"], r["msgid"]))
        out.setdefault(r["sop_uid"], []).append(r)
    return out


def verify_main(argv):
    """verify --spool DIR (--results TSV | --sources LIST) [--wire DIR]
              [--triagectl BIN --config FILE] [--exact]

    --results: the output of `dicomtool.py results` (file, code, text);
    the files answered 0x0000 are the ones checked. --sources: a plain list
    of files answered Success. --wire: wiretap.py's capture directory.
    Checks, printing one line per check:
      * every SOP Instance UID answered Success is stored exactly once, at
        <spool>/studies/<StudyInstanceUID>/<SOPInstanceUID>.dcm;
      * the stored file is a Part 10 file ("DICM") whose File Meta names
        that SOP Instance UID and SOP Class;
      * its dataset bytes are identical to the dataset of a source file with
        that SOP Instance UID, or (with --wire) to the dataset bytes that
        went over the wire for that UID (senders re-encode some files), and
        its transfer syntax is that of the matching source / wire dataset;
      * with --same-syntax, no file had to be converted by the sender
        (the daemon accepted every file's own transfer syntax);
      * with --exact, nothing else is stored under <spool>/studies;
      * with --triagectl, `triagectl list --studies --json` and
        `triagectl show STUDY --json` list every one of those instances
        exactly once, with the stored file's path, size and syntax.
    Exit 1 if any check failed."""
    import argparse
    ap = argparse.ArgumentParser(prog="dicomtool.py verify")
    ap.add_argument("--spool", required=True)
    ap.add_argument("--sources")
    ap.add_argument("--results")
    ap.add_argument("--wire")
    ap.add_argument("--triagectl")
    ap.add_argument("--config")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--any-peer", action="store_true",
                    help="do not require peer_ip 127.0.0.1 (instances re-indexed from the spool have no peer)")
    ap.add_argument("--same-syntax", action="store_true",
                    help="fail when the sender had to convert a file to another transfer syntax "
                         "(only meaningful when the sender proposed each file's own syntax)")
    ap.add_argument("--maybe", help="list of files that may or may not be stored; "
                    "when stored, they must be stored once and intact too")
    args = ap.parse_args(argv)

    sources = []
    if args.sources:
        with open(args.sources) as f:
            sources += [line.strip() for line in f if line.strip()]
    if args.results:
        with open(args.results) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and parts[1] == "0x0000":
                    sources.append(parts[0])
    by_sop = {}
    for path in sources:
        info = read_info(path)
        if not info["sop_uid"]:
            print("FAIL source %s has no SOP Instance UID (%s)" % (path, info["error"]))
            return 1
        by_sop.setdefault(info["sop_uid"], []).append(info)
    maybe = set()
    if args.maybe:
        with open(args.maybe) as f:
            for line in f:
                path = line.strip()
                if not path:
                    continue
                info = read_info(path)
                if info["sop_uid"] and info["sop_uid"] not in by_sop:
                    if os.path.isfile(os.path.join(args.spool, "studies", info["study_uid"] or "",
                                                   info["sop_uid"] + ".dcm")):
                        maybe.add(info["sop_uid"])
                        by_sop.setdefault(info["sop_uid"], []).append(info)
    wire = load_wire(args.wire) if args.wire else {}

    failures = 0
    notes = []
    studies_dir = os.path.join(args.spool, "studies")
    stored_all = []
    for root, _dirs, files in os.walk(studies_dir):
        for name in files:
            stored_all.append(os.path.join(root, name))

    print("check: %d file(s) answered Success carry %d distinct SOP Instance UID(s);"
          " each must be stored once, bit for bit" % (len(sources), len(by_sop) - len(maybe)))
    if maybe:
        print("check: %d more instance(s) not answered Success are stored too; they must be intact as well"
              % len(maybe))
    expected_paths = set()
    import pydicom
    for sop, infos in sorted(by_sop.items()):
        studies = sorted({i["study_uid"] or "" for i in infos})
        candidates = [os.path.join(studies_dir, s, sop + ".dcm") for s in studies]
        present = [c for c in candidates if os.path.isfile(c)]
        named = [p for p in stored_all if os.path.basename(p) == sop + ".dcm"]
        if len(named) != 1 or len(present) != 1:
            print("FAIL %s: expected exactly one stored file %s, found %s"
                  % (sop, " or ".join(candidates), named or "none"))
            failures += 1
            continue
        stored = present[0]
        expected_paths.add(os.path.realpath(stored))
        st = read_info(stored)
        problems = []
        with open(stored, "rb") as f:
            raw = f.read()
        if raw[128:132] != b"DICM":
            problems.append("not a Part 10 file (no DICM)")
        try:
            meta = pydicom.filereader.read_file_meta_info(stored)
            if str(meta.get("MediaStorageSOPInstanceUID", "")) != sop:
                problems.append("File Meta (0002,0003) is %r" % str(meta.get("MediaStorageSOPInstanceUID", "")))
            cls = {i["sop_class"] for i in infos}
            if str(meta.get("MediaStorageSOPClassUID", "")) not in cls:
                problems.append("File Meta (0002,0002) is %r, source says %s"
                                % (str(meta.get("MediaStorageSOPClassUID", "")), sorted(cls)))
        except Exception as e:  # noqa: BLE001
            problems.append("File Meta unreadable: %s" % e)
        body = raw[meta_end(raw):]
        how = None
        for i in infos:
            if dataset_bytes(i["path"]) == body:
                how = "identical to source %s" % os.path.basename(i["path"])
                if st["ts"] != i["ts"]:
                    problems.append("transfer syntax %s, source %s is %s"
                                    % (ts_name(st["ts"]), os.path.basename(i["path"]), ts_name(i["ts"])))
                break
        if how is None:
            for w in wire.get(sop, []):
                with open(w["file"], "rb") as f:
                    if f.read() == body:
                        how = ("identical to the dataset sent on the wire (the sender re-encoded it:"
                               " none of the %d source file(s) with this UID has these bytes)" % len(infos))
                        if st["ts"] != w["ts"]:
                            problems.append("stored in %s, sent in %s" % (ts_name(st["ts"]), ts_name(w["ts"])))
                        if w["ts"] not in {i["ts"] for i in infos} and args.same_syntax:
                            problems.append("sent in %s although the sender proposed %s: the daemon did not "
                                            "accept the file's own syntax" % (
                                                ts_name(w["ts"]),
                                                "/".join(sorted({ts_name(i["ts"]) for i in infos}))))
                        elif w["ts"] not in {i["ts"] for i in infos}:
                            notes.append("%s: the sender converted %s to %s (the syntax the daemon accepted)"
                                         % (sop, "/".join(sorted({ts_name(i["ts"]) for i in infos})),
                                            ts_name(w["ts"])))
                        break
        if how is None:
            diffs = []
            for i in infos:
                src = dataset_bytes(i["path"])
                diffs.append("%s (%s, %d bytes, first difference at byte %d)"
                             % (os.path.basename(i["path"]), ts_name(i["ts"]), len(src),
                                first_difference(src, body)))
            for w in wire.get(sop, []):
                with open(w["file"], "rb") as f:
                    wb = f.read()
                diffs.append("wire capture %s (%s, %d bytes, first difference at byte %d)"
                             % (os.path.basename(w["file"]), ts_name(w["ts"]), len(wb), first_difference(wb, body)))
            problems.append("dataset (%d bytes, %s) is not what was sent: %s"
                            % (len(body), ts_name(st["ts"]), "; ".join(diffs)))
        if problems:
            print("FAIL %s: %s: %s" % (sop, stored, "; ".join(problems)))
            failures += 1
        else:
            print("ok   %s: stored once, %s, %s" % (sop, ts_name(st["ts"]), how))
    for n in notes:
        print("note %s" % n)

    if args.exact:
        extra = [p for p in stored_all if os.path.realpath(p) not in expected_paths]
        if extra:
            print("FAIL files under %s that no Success answer accounts for: %s" % (studies_dir, extra))
            failures += 1
        else:
            print("ok   nothing else is stored under %s (%d file(s) in all)" % (studies_dir, len(stored_all)))

    if args.triagectl:
        failures += verify_ctl(args, by_sop, studies_dir)

    print("verify: %s" % ("all checks passed" if failures == 0 else "%d check(s) FAILED" % failures))
    return 1 if failures else 0


def run_ctl(args, *cmd):
    p = subprocess.run([args.triagectl, "-c", args.config, *cmd], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


STUDY_KEYS = ("study_uid", "state", "instances", "patient_id", "accession", "modality", "study_date",
              "calling_ae", "first_received", "last_received")
INSTANCE_KEYS = ("sop_instance_uid", "series_uid", "sop_class_uid", "transfer_syntax", "path", "size",
                 "modality", "body_part", "laterality", "view_position", "calling_ae", "peer_ip", "received_at")
SHOW_KEYS = ("study", "instances", "jobs", "results", "dispatches")


def verify_ctl(args, by_sop, studies_dir):
    failures = 0
    rc, out, err = run_ctl(args, "list", "--studies", "--json")
    if rc != 0:
        print("FAIL triagectl list --studies --json exited %d: %s" % (rc, err.strip()))
        return 1
    try:
        listed = {s["study_uid"]: s for s in json.loads(out)["studies"]}
    except Exception as e:  # noqa: BLE001
        print("FAIL triagectl list --studies --json: not the documented JSON (%s): %.300s" % (e, out))
        return 1
    missing_keys = sorted({k for st in listed.values() for k in STUDY_KEYS if k not in st})
    if missing_keys:
        print("FAIL triagectl list --studies --json: studies lack the documented keys %s" % missing_keys)
        failures += 1
    want = {}
    for sop, infos in by_sop.items():
        want.setdefault(infos[0]["study_uid"], set()).add(sop)
    for study, sops in sorted(want.items()):
        if study not in listed:
            print("FAIL study %s (%d instance(s)) not in triagectl list --studies" % (study, len(sops)))
            failures += 1
            continue
        rc, out, err = run_ctl(args, "show", study, "--json")
        if rc != 0:
            print("FAIL triagectl show %s --json exited %d: %s" % (study, rc, err.strip()))
            failures += 1
            continue
        try:
            doc = json.loads(out)
            inst = doc["instances"]
        except Exception as e:  # noqa: BLE001
            print("FAIL triagectl show %s --json: not the documented JSON (%s)" % (study, e))
            failures += 1
            continue
        miss = [k for k in SHOW_KEYS if k not in doc] + \
            ["study." + k for k in STUDY_KEYS if k not in (doc.get("study") or {})] + \
            sorted({"instances[]." + k for i in inst for k in INSTANCE_KEYS if k not in i})
        if miss:
            print("FAIL triagectl show %s --json lacks the documented keys %s" % (study, miss))
            failures += 1
        bad_ip = sorted({str(i.get("peer_ip")) for i in inst if i.get("peer_ip") != "127.0.0.1"})
        if bad_ip and not args.any_peer:
            print("FAIL triagectl show %s: peer_ip %s, every sender was 127.0.0.1" % (study, bad_ip))
            failures += 1
        uids = [i.get("sop_instance_uid") for i in inst]
        dup = sorted({u for u in uids if uids.count(u) > 1})
        missing = sorted(sops - set(uids))
        if dup or missing:
            print("FAIL triagectl show %s: missing %s, listed more than once %s" % (study, missing, dup))
            failures += 1
        n_listed = listed[study].get("instances")
        if n_listed != len(set(uids)):
            print("FAIL triagectl list says study %s has %r instances, show lists %d"
                  % (study, n_listed, len(set(uids))))
            failures += 1
        for i in inst:
            sop = i.get("sop_instance_uid")
            if sop not in sops:
                continue
            path = i.get("path") or ""
            if not os.path.isabs(path):
                path = os.path.join(os.path.dirname(studies_dir), path)
            want_path = os.path.join(studies_dir, study, sop + ".dcm")
            if not os.path.exists(path) or os.path.realpath(path) != os.path.realpath(want_path):
                print("FAIL triagectl show: instance %s path %r, stored file is %s"
                      % (sop, i.get("path"), want_path))
                failures += 1
                continue
            if os.path.exists(want_path):
                ts = read_info(want_path)["ts"]
                if i.get("transfer_syntax") not in (ts, ts_name(ts)):
                    print("FAIL triagectl show: instance %s transfer_syntax %r, stored file has %s"
                          % (sop, i.get("transfer_syntax"), ts))
                    failures += 1
                size = os.path.getsize(want_path)
                if i.get("size") not in (size, len(dataset_bytes(want_path))):
                    print("FAIL triagectl show: instance %s size %r, stored file has %d bytes"
                          % (sop, i.get("size"), size))
                    failures += 1
    if failures == 0:
        print("ok   triagectl list/show agree with the spool: %d study(ies), %d instance(s), each once"
              % (len(want), len(by_sop)))
    return failures


# ---------------------------------------------------------------- sender logs

# DCMTK's DU_cstoreStatusString() texts (storescu -v) -> status code
STORESCU_STATUS = {
    "Success": "0x0000",
    "Refused: OutOfResources": "0xA700",
    "Refused: SOPClassNotSupported": "0x0122",
    "Error: DataSetDoesNotMatchSOPClass": "0xA900",
    "Error: CannotUnderstand": "0xC000",
    "Warning: CoercionOfDataElements": "0xB000",
    "Warning: DataSetDoesNotMatchSOPClass": "0xB007",
    "Warning: ElementsDiscarded": "0xB006",
}


def results_storescu(log, files):
    """storescu -v output -> {file: [code, text]}. Codes: 0xNNNN (a
    C-STORE-RSP arrived), NORESPONSE (request went out, no response),
    NOTSENT (storescu refused or never got to the file), REJECTED."""
    res = {}
    order = []
    cur = None
    rejected = None
    in_detail = False
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"[IWEF]: Sending file: (.*)$", line)
        if m:
            cur = m.group(1)
            order.append(cur)
            res[cur] = ["NOTSENT", ""]
            in_detail = False
            continue
        m = re.match(r"I: Received Store Response \((.*)\)$", line)
        if m and cur:
            text = m.group(1)
            code = STORESCU_STATUS.get(text)
            if code is None:
                m2 = re.search(r"0x([0-9a-fA-F]{4})", text)
                code = "0x%s" % m2.group(1).upper() if m2 else "?"
            res[cur] = [code, text]
            continue
        if line.startswith("I: Sending Store Request") and cur:
            res[cur] = ["NORESPONSE", ""]
            continue
        if line.startswith("W: Status Detail:"):
            in_detail = True
            continue
        if in_detail and cur:
            m = re.match(r"W: \(0000,0902\) LO \[(.*)\]", line)
            if m:
                res[cur][1] += " | Error Comment: " + m.group(1)
                continue
            if not line.startswith("W: "):
                in_detail = False
        if line.startswith("F: Association Rejected") or line.startswith("F: Result: Rejected") \
                or line.startswith("F: Reason:"):
            rejected = (rejected + " " if rejected else "") + line[3:]
            continue
        if line.startswith("E: ") and cur and res[cur][0] in ("NOTSENT", "NORESPONSE"):
            res[cur][1] = (res[cur][1] + " " if res[cur][1] else "") + line[3:]
    for f in files:
        if f not in res:
            res[f] = ["REJECTED", rejected] if rejected else ["NOTSENT", "never sent by storescu"]
            order.append(f)
    return order, res


def results_dcmsend(report, files):
    res, order = {}, []
    cur = None
    if os.path.exists(report):
        for line in open(report, errors="replace"):
            m = re.match(r"Filename\s+: (.*)$", line.rstrip("\n"))
            if m:
                cur = m.group(1)
                order.append(cur)
                res[cur] = ["NOTSENT", ""]
                continue
            m = re.match(r"DIMSE Status\s+: (.*)$", line.rstrip("\n"))
            if m and cur:
                text = m.group(1)
                m2 = re.match(r"0x([0-9a-fA-F]{4}) ?(.*)", text)
                res[cur] = ["0x" + m2.group(1).upper(), m2.group(2).strip("()")] if m2 else ["NOTSENT", text]
    for f in files:
        if f not in res:
            res[f] = ["NOTSENT", "not in dcmsend's report (refused when reading the file)"]
            order.append(f)
    return order, res


def results_lines(log, files, kind):
    """dimse-send.js ("OK     0x0000 FILE") and rawscu.py ("RESULT 0x0000 FILE")."""
    res, order = {}, []
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        words = line.split()
        if not words:
            continue
        hit = None
        for f in files:
            if (" " + f) in line:
                if hit is None or len(f) > len(hit):
                    hit = f
        if hit is None:
            continue
        tag = words[0]
        after = line.split(hit, 1)[1].lstrip(": ").strip()
        if tag in ("OK", "FAIL", "RESULT") and re.match(r"0x[0-9a-fA-F]{4}$", words[1]):
            res[hit] = ["0x" + words[1][2:].upper(), after]
        elif tag in ("SKIP", "NOCONTEXT"):
            res[hit] = ["NOTSENT", (words[1] + " " + after).strip() if tag == "SKIP" else "context not accepted"]
        elif tag == "NOTSENT":
            res[hit] = ["NOTSENT", line.split(None, 1)[1].split(hit)[0].strip()]
        elif tag == "ABORTED":
            res[hit] = ["NORESPONSE", line]
        if hit not in order:
            order.append(hit)
    for f in files:
        if f not in res:
            res[f] = ["NOTSENT", "no result line from %s" % kind]
            order.append(f)
    return order, res


def results_main(argv):
    kind, log, files = argv[0], argv[1], argv[2:]
    if kind == "storescu":
        order, res = results_storescu(log, files)
    elif kind == "dcmsend":
        order, res = results_dcmsend(log, files)
    else:
        order, res = results_lines(log, files, kind)
    for f in order:
        code, text = res[f]
        print("%s\t%s\t%s" % (f, code, (text or "").replace("\t", " ")))
    return 0


# ---------------------------------------------------------------- hostile

def make_hostile(out, field, value, source):
    """Rewrite one UID element of SOURCE to VALUE without any validation.
    The File Meta keeps a harmless SOP Instance UID so that senders read the
    file; the dataset carries the hostile value (senders put the dataset's
    SOP Instance UID into the C-STORE request)."""
    import pydicom
    ds = pydicom.dcmread(source, force=True)
    keyword = {"sop": "SOPInstanceUID", "study": "StudyInstanceUID",
               "series": "SeriesInstanceUID"}[field]
    if field != "sop":
        # a fresh, valid SOP Instance UID, so that no variant is a duplicate
        import uuid
        fresh = "2.25.%d" % uuid.uuid4().int
        ds.SOPInstanceUID = fresh
        ds.file_meta.MediaStorageSOPInstanceUID = fresh
    elem = ds[keyword]
    elem._value = value          # no UID validation, raw string
    if field == "sop":
        ds.file_meta.MediaStorageSOPInstanceUID = value
    ds.save_as(out, write_like_original=True)


def intact(path, sop=None, study=None):
    """Is a stored file structurally sound? Returns a list of problems."""
    import pydicom
    problems = []
    p = subprocess.run(["dcmdump", "-q", "+E", path], capture_output=True)
    if p.returncode != 0:
        problems.append("dcmdump cannot parse it (exit %d)" % p.returncode)
    try:
        ds = pydicom.dcmread(path)
        for elem in ds.iterall():
            _ = elem.value
        if sop is not None and str(ds.get("SOPInstanceUID", "")) != sop:
            problems.append("dataset SOP Instance UID %r, stored as %r" % (str(ds.get("SOPInstanceUID", "")), sop))
        if study is not None and str(ds.get("StudyInstanceUID", "")) != study:
            problems.append("dataset Study Instance UID %r, stored under %r" % (str(ds.get("StudyInstanceUID", "")), study))
    except Exception as e:  # noqa: BLE001
        problems.append("pydicom cannot read it: %s: %s" % (type(e).__name__, e))
    return problems


def studies_check(argv):
    """studies-check --list LIST_JSON [--calling-ae AE] [--state S] FILE...

    Compare `triagectl list --studies --json` with the studies the files
    make up: one row per study with the number of distinct SOP Instance
    UIDs, modality, patient id, accession, study date (and calling AE and
    state when given). Prints a table; exit 1 on any difference."""
    import argparse
    ap = argparse.ArgumentParser(prog="dicomtool.py studies-check")
    ap.add_argument("--list", required=True)
    ap.add_argument("--calling-ae")
    ap.add_argument("--state")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    listed = {x["study_uid"]: x for x in json.load(open(a.list))["studies"]}
    want = {}
    for f in a.files:
        i = read_info(f)
        w = want.setdefault(i["study_uid"], {"sops": set(), "modality": set(), "patient_id": set(),
                                             "accession": set(), "study_date": set()})
        w["sops"].add(i["sop_uid"])
        import pydicom
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        w["modality"].add(str(ds.get("Modality", "")))
        w["patient_id"].add(str(ds.get("PatientID", "")))
        w["accession"].add(str(ds.get("AccessionNumber", "")))
        w["study_date"].add(str(ds.get("StudyDate", "")))
    bad = 0
    print("    %-24s %-4s %-12s %-12s %-8s %-9s %-10s %s" % ("study", "mod", "patient", "accession", "date",
                                                          "instances", "state", "problems"))
    for study, w in sorted(want.items()):
        got = listed.get(study)
        probs = []
        if got is None:
            probs.append("not listed")
            got = {}
        else:
            if got.get("instances") != len(w["sops"]):
                probs.append("instances %r, expected %d" % (got.get("instances"), len(w["sops"])))
            for k in ("modality", "patient_id", "accession", "study_date"):
                if len(w[k]) == 1 and got.get(k) not in w[k]:
                    probs.append("%s %r, expected %r" % (k, got.get(k), next(iter(w[k]))))
            if a.calling_ae and got.get("calling_ae") != a.calling_ae:
                probs.append("calling_ae %r, expected %r" % (got.get("calling_ae"), a.calling_ae))
            if a.state and got.get("state") != a.state:
                probs.append("state %r, expected %r" % (got.get("state"), a.state))
        bad += bool(probs)
        print("    %-24s %-4s %-12s %-12s %-8s %3s/%-5d %-10s %s" % (
            "..." + study[-21:], got.get("modality", "-"), got.get("patient_id", "-"), got.get("accession", "-"),
            got.get("study_date", "-"), got.get("instances", "-"), len(w["sops"]), got.get("state", "-"),
            "; ".join(probs) or "ok"))
    extra = sorted(set(listed) - set(want))
    if extra:
        print("    studies listed that were never sent: %s" % extra)
        bad += 1
    return 1 if bad else 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "offset":
        with open(args[0], "rb") as f:
            print(meta_end(f.read()))
        return 0
    if cmd == "same-dataset":
        a, b = dataset_bytes(args[0]), dataset_bytes(args[1])
        if a == b:
            return 0
        print("datasets differ: %d vs %d bytes, first difference at dataset byte %d"
              % (len(a), len(b), first_difference(a, b)))
        return 1
    if cmd == "info":
        for p in args:
            print(json.dumps(read_info(p)))
        return 0
    if cmd == "split-profile":
        split_profile(args[0], args[1])
        return 0
    if cmd == "verify":
        return verify_main(args)
    if cmd == "intact":
        probs = intact(args[0], *(args[1:3]))
        if probs:
            print("; ".join(probs))
            return 1
        return 0
    if cmd == "results":
        return results_main(args)
    if cmd == "studies-check":
        return studies_check(args)
    if cmd == "make-hostile":
        make_hostile(*args)
        return 0
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
