#!/usr/bin/python3
"""600-forward-compare.py - used by the e2e cases 6xx: compare what a PACS
(Orthanc, through its REST API) holds with the files sent to it.

  600-forward-compare.py BASE_URL RESULTS.tsv TMPFILE [REMOTE_AET]

RESULTS.tsv is dest_driver's output (path, status, code, message); the
files sent with status OK are compared. Orthanc keeps the first copy of a
SOP Instance UID, so each distinct UID is compared with the first file that
had it. For each: Orthanc must know it (/tools/lookup), in the file's own
transfer syntax (metadata TransferSyntax), from REMOTE_AET when given
(metadata RemoteAET); and the file Orthanc returns (/instances/ID/file)
must have the file's dataset bytes, or at least the same elements: every
element outside group 0002, sequences item by item, pixel data byte for
byte. Orthanc itself drops the illegal odd groups 0001-0007 and re-encodes
sequence lengths, and a malformed odd-length JPEG 2000 fragment arrives
padded to even length; those differences are tolerated. Prints one line
per problem and a summary; exit 1 on any problem.
"""
import json
import os
import sys
import urllib.request
import warnings

warnings.simplefilter("ignore")
import pydicom  # noqa: E402
from pydicom.encaps import decode_data_sequence  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import dicomtool  # noqa: E402


def elems(ds):
    return {e.tag: e for e in ds if e.tag.group != 2 and not (e.tag.group < 8 and e.tag.group % 2)}


def same_fragments(x, y):
    try:
        fx, fy = decode_data_sequence(x), decode_data_sequence(y)
    except Exception:  # noqa: BLE001
        return False
    return len(fx) == len(fy) and all(b == a or (len(a) % 2 and b == a + b"\0") for a, b in zip(fx, fy))


def diff(a, b, where=""):
    ea, eb = elems(a), elems(b)
    if set(ea) != set(eb):
        return "%stags differ: %s" % (where, [str(t) for t in sorted(set(ea) ^ set(eb))][:5])
    for t, x in ea.items():
        y = eb[t]
        if x.VR == "SQ":
            if len(x.value) != len(y.value):
                return "%s%s: %d vs %d items" % (where, t, len(x.value), len(y.value))
            for i, (p, q) in enumerate(zip(x.value, y.value)):
                d = diff(p, q, "%s%s[%d] " % (where, t, i))
                if d:
                    return d
        elif x.value != y.value and not (t == 0x7FE00010 and same_fragments(x.value, y.value)):
            return "%s%s (%s) differs" % (where, t, x.VR)
    return ""


def main():
    base, tsv, tmp = sys.argv[1:4]
    remote_aet = sys.argv[4] if len(sys.argv) > 4 else None

    def get(url, data=None):
        return urllib.request.urlopen(urllib.request.Request(base + url, data=data), timeout=30).read()

    first = {}
    for line in open(tsv):
        path, status = line.split("\t")[:2]
        if status == "OK":
            info = dicomtool.read_info(path)
            first.setdefault(info["sop_uid"], (path, info["ts"]))
    bad = bit = 0
    for uid, (src, ts) in sorted(first.items()):
        ids = json.loads(get("/tools/lookup", uid.encode()))
        if not ids:
            print("MISSING %s (%s)" % (uid, src))
            bad += 1
            continue
        iid = ids[0]["ID"]
        meta = json.loads(get("/instances/%s/metadata?expand" % iid))
        if remote_aet and meta.get("RemoteAET") != remote_aet:
            print("RemoteAET %r, expected %r: %s" % (meta.get("RemoteAET"), remote_aet, src))
            bad += 1
        if meta.get("TransferSyntax") != ts:
            print("TransferSyntax %s, the file's is %s: %s" % (meta.get("TransferSyntax"), ts, src))
            bad += 1
        with open(tmp, "wb") as f:
            f.write(get("/instances/%s/file" % iid))
        if dicomtool.dataset_bytes(src) == dicomtool.dataset_bytes(tmp):
            bit += 1
            continue
        d = diff(pydicom.dcmread(src, force=True), pydicom.dcmread(tmp, force=True))
        if d:
            print("DIFFERENT %s: %s" % (src, d))
            bad += 1
    print("%d distinct instances: %d with identical dataset bytes, %d with identical elements, %d bad"
          % (len(first), bit, len(first) - bit - bad, bad))
    return 1 if bad or not first else 0


if __name__ == "__main__":
    sys.exit(main())
