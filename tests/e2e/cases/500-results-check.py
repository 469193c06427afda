#!/usr/bin/python3
"""500-results-check.py - content checks on what the result writers wrote
(SR, overlays, summary), shared by the e2e cases 5xx (not a case itself:
ctest runs only cases/*.sh).

usage:
  500-results-check.py sr SR.dcm --result RESULT.json [--template tid1500|mammo-cad]
                       [--nfd] SOURCE...
  500-results-check.py overlay OVERLAY.dcm --result RESULT.json --source SOURCE
                       --render RENDER.pgm [--nfd]
  500-results-check.py summary SUMMARY.dcm --result RESULT.json [--nfd] SOURCE...
  500-results-check.py polarity RENDER.pgm REFERENCE.pgm
  500-results-check.py validate [--pixelmed JAR] [--node-modules DIR] [--boxes N]
                       [--allow-error REGEX] FILE...
      dciodvfy on every file (no Error line; warnings listed), pixelmed's
      DicomSRValidator on every SR (no Error), and dcmjs /
      @cornerstonejs/adapters (shared/tools/sr-viewer-parse.js) on every
      TID 1500 SR: read without error, N boxes recognised as RectangleROI.

Prints one "ok: ..." line per check passed and "FAIL: ..." per check failed;
exit 0 when everything passed, 1 otherwise, 2 on usage errors.
"""
import argparse
import json
import sys

import numpy as np
import pydicom

OFFIS_ROOT = "1.2.276.0.7230010.3"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
MAMMO_CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"
SC = "1.2.840.10008.5.1.4.1.1.7"
TRACKING_PREFIX = "Cornerstone3DTools@^0.1.0:RectangleROI:"

failures = 0


def ok(msg):
    print("ok: " + msg)


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def expect(cond, msg):
    (ok if cond else fail)(msg)
    return cond


def code(item, seq="ConceptNameCodeSequence"):
    s = item.get(seq)
    if not s:
        return (None, None, None)
    c = s[0]
    return (c.get("CodeValue"), c.get("CodingSchemeDesignator"), c.get("CodeMeaning"))


def children(item):
    return list(item.get("ContentSequence", []) or [])


def walk(item, path=()):
    """Every content item below ITEM with its ancestors (nearest last)."""
    for c in children(item):
        yield c, path + (item,)
        yield from walk(c, path + (item,))


def image_ref(item):
    r = item.ReferencedSOPSequence[0]
    frames = r.get("ReferencedFrameNumber")
    if frames is not None and not isinstance(frames, (list, pydicom.multival.MultiValue)):
        frames = [frames]
    return r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID, [int(f) for f in frames or []]


def load_sources(paths):
    src = {}
    for p in paths:
        d = pydicom.dcmread(p, stop_before_pixels=True)
        src[d.SOPInstanceUID] = d
    return src


def box_points(b):
    x0, y0, x1, y1 = b
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def same_points(gd, pts, tol=0.01):
    got = list(zip(gd[0::2], gd[1::2]))
    return len(got) == len(pts) and all(abs(a - c) <= tol and abs(b - d) <= tol
                                        for (a, b), (c, d) in zip(got, pts))


def check_common(ds, src, nfd, what):
    first = next(iter(src.values()))
    expect(ds.StudyInstanceUID == first.StudyInstanceUID, f"{what}: in the source study")
    expect(str(ds.get("PatientID", "")) == str(first.get("PatientID", "")),
           f"{what}: patient ID of the source")
    expect(str(ds.get("AccessionNumber", "")) == str(first.get("AccessionNumber", "")),
           f"{what}: accession number of the source")
    expect(ds.SeriesInstanceUID not in {s.SeriesInstanceUID for s in src.values()},
           f"{what}: a new series")
    expect(not ds.SOPInstanceUID.startswith(OFFIS_ROOT) and
           not ds.SeriesInstanceUID.startswith(OFFIS_ROOT),
           f"{what}: Series/SOP Instance UIDs are ours, not DCMTK's OFFIS root")
    desc = str(ds.get("SeriesDescription", ""))
    expect(0 < len(desc.encode()) <= 64, f"{what}: Series Description '{desc}' (<= 64 bytes)")
    if nfd:
        expect("NOT FOR DIAGNOSIS" in desc, f"{what}: Series Description says NOT FOR DIAGNOSIS")


def check_evidence(ds, src):
    got = set()
    for st in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for se in st.ReferencedSeriesSequence:
            for r in se.ReferencedSOPSequence:
                got.add((st.StudyInstanceUID, se.SeriesInstanceUID, r.ReferencedSOPClassUID,
                         r.ReferencedSOPInstanceUID))
    want = {(s.StudyInstanceUID, s.SeriesInstanceUID, s.SOPClassUID, s.SOPInstanceUID)
            for s in src.values()}
    expect(got == want, f"SR: evidence lists exactly the job's {len(want)} instances "
           f"(got {len(got)})")


def check_scoord_inside(ds, src):
    n = 0
    for item, path in walk(ds):
        if item.ValueType != "SCOORD":
            continue
        n += 1
        imgs = [c for c in children(item) if c.ValueType == "IMAGE"]
        if not expect(len(imgs) == 1, "SR: SCOORD selected from exactly one image"):
            continue
        cls, sop, frames = image_ref(imgs[0])
        s = src.get(sop)
        if not expect(s is not None and s.SOPClassUID == cls,
                      f"SR: SCOORD on a source image ({sop})"):
            continue
        gd = [float(v) for v in item.GraphicData]
        xs, ys = gd[0::2], gd[1::2]
        expect(all(0 <= x <= s.Columns for x in xs) and all(0 <= y <= s.Rows for y in ys),
               f"SR: {item.GraphicType} {gd[:4]}... inside the {s.Columns}x{s.Rows} image")
        nf = int(s.get("NumberOfFrames", 1) or 1)
        if nf > 1:
            expect(len(frames) == 1 and 1 <= frames[0] <= nf,
                   f"SR: SCOORD on frame {frames} of a {nf}-frame image")
    return n


def check_tid1500(ds, res, src, nfd):
    expect(ds.SOPClassUID == COMPREHENSIVE_SR, "SR: Comprehensive SR")
    expect(ds.ContentTemplateSequence[0].TemplateIdentifier == "1500", "SR: TID 1500")
    expect(code(ds)[:2] == ("126000", "DCM"), "SR: Imaging Measurement Report")
    top = children(ds)
    meas = [c for c in top if code(c)[0] == "126010"]
    if not expect(len(meas) == 1, "SR: one Imaging Measurements container"):
        return
    groups = [c for c in children(meas[0]) if code(c)[0] == "125007"]

    def tid(g):
        for c in children(g):
            if code(c)[0] == "112039":
                return str(c.TextValue)
        return None
    fgroups = [g for g in groups if tid(g) != "Study result"]
    findings = res.get("findings") or []
    expect(len(fgroups) == len(findings),
           f"SR: one measurement group per finding ({len(fgroups)}/{len(findings)})")
    for i, (g, f) in enumerate(zip(fgroups, findings)):
        want = (TRACKING_PREFIX if f.get("box") else "") + f"#{i + 1} "
        expect((tid(g) or "").startswith(want), f"SR: finding #{i + 1} tracking identifier "
               f"'{tid(g)}' ({'Cornerstone3D RectangleROI prefix' if f.get('box') else 'no tool prefix'})")
    for i, (g, f) in enumerate(zip(fgroups, findings)):
        kids = children(g)
        expect(any(code(c)[0] == "112040" and c.ValueType == "UIDREF" for c in kids),
               f"SR: finding #{i + 1} has a tracking unique identifier")
        fc = [c for c in kids if code(c)[0] == "121071"]
        want = f.get("code")
        if fc:
            got = code(fc[0], "ConceptCodeSequence")
            if want:
                expect(got[:2] == (want["value"], want["scheme"]),
                       f"SR: finding #{i + 1} code {got[:2]} is the backend's")
            else:
                expect(got[1] == "99TRIAGED" and got[2] == f["label"],
                       f"SR: finding #{i + 1} private code {got}")
        else:
            fail(f"SR: finding #{i + 1} has no Finding")
        nums = [c for c in kids if c.ValueType == "NUM"]
        unscored = f.get("score") is None or f["score"] < 0
        if unscored and not f.get("box"):
            # nothing to measure: the image on the group (TID 1501 row 10b)
            direct = [c for c in kids if c.ValueType == "IMAGE"]
            expect(not nums and len(direct) == 1 and
                   image_ref(direct[0])[1] == f["sop_instance_uid"],
                   f"SR: finding #{i + 1} without score or box: its IMAGE on the group")
            continue
        want_num = ("42798000", "SCT") if unscored else ("111012", "DCM")
        if not expect(len(nums) == 1 and code(nums[0])[:2] == want_num,
                      f"SR: finding #{i + 1} has one NUM " +
                      ("Area (no score)" if unscored else "Certainty of Finding")):
            continue
        num = nums[0]
        mv = num.get("MeasuredValueSequence")
        if f.get("score", -1) is not None and f.get("score", -1) >= 0:
            expect(mv and abs(float(mv[0].NumericValue) - f["score"]) < 1e-4 and
                   code(mv[0], "MeasurementUnitsCodeSequence")[:2] == ("1", "UCUM"),
                   f"SR: finding #{i + 1} score {f['score']} in UCUM 1")
        refs = [c for c in children(num) if c.ValueType in ("SCOORD", "IMAGE")]
        expect(len(refs) == 1, f"SR: finding #{i + 1}: exactly one of SCOORD or IMAGE")
        if f.get("box") and refs and refs[0].ValueType == "SCOORD":
            sc = refs[0]
            cls, sop, frames = image_ref([c for c in children(sc) if c.ValueType == "IMAGE"][0])
            expect(sop == f["sop_instance_uid"], f"SR: finding #{i + 1} on its image")
            expect(sc.GraphicType == "POLYLINE" and
                   same_points([float(v) for v in sc.GraphicData], box_points(f["box"])),
                   f"SR: finding #{i + 1} region is the closed 5-point rectangle {f['box']}")
            if int(src[sop].get("NumberOfFrames", 1) or 1) > 1:
                expect(frames == [int(f.get("frame", 1))],
                       f"SR: finding #{i + 1} on frame {f.get('frame', 1)}")
        algo = {code(c)[0]: str(c.TextValue) for c in children(num) if c.ValueType == "TEXT"}
        expect(algo.get("111001") == (res.get("algorithm") or {}).get("name", algo.get("111001")),
               f"SR: finding #{i + 1} carries the algorithm name")

    # study-level group: score and measurements
    sgroups = [g for g in groups if tid(g) == "Study result"]
    study = res.get("study") or {}
    mlist = study.get("measurements") or []
    if study.get("score", -1) is not None and study.get("score", -1) >= 0 or mlist:
        if expect(len(sgroups) == 1, "SR: one study-level group"):
            nums = [c for c in children(sgroups[0]) if c.ValueType == "NUM"]
            if study.get("score", -1) is not None and study.get("score", -1) >= 0:
                sc = [n for n in nums if code(n)[:2] == ("111013", "DCM")]
                expect(sc and abs(float(sc[0].MeasuredValueSequence[0].NumericValue) -
                                  study["score"]) < 1e-4,
                       f"SR: study score {study['score']} as Certainty of Impression")
            for m in mlist:
                c = m.get("code")
                hit = [n for n in nums if c and code(n)[:2] == (c["value"], c["scheme"])
                       or not c and code(n)[2] == m["name"]]
                if expect(len(hit) == 1, f"SR: measurement '{m['name']}' present"):
                    mv = hit[0].MeasuredValueSequence[0]
                    unit = code(mv, "MeasurementUnitsCodeSequence")
                    expect(abs(float(mv.NumericValue) - m["value"]) < 1e-6,
                           f"SR: {m['name']} = {m['value']}")
                    expect(unit[:2] == (m["unit"], "UCUM"),
                           f"SR: {m['name']} unit {unit[:2]} is UCUM {m['unit']}")
    # outcome
    qual = [c for c in top if code(c)[0] == "C0034375"]
    want = {"positive": "52101004", "negative": "272519000",
            "indeterminate": "373068000"}[study["outcome"]]
    got = [code(c, "ConceptCodeSequence")[0] for c in children(qual[0])
           if c.ValueType == "CODE" and code(c)[0] == "121071"] if qual else []
    expect(got == [want], f"SR: outcome {study['outcome']} as Finding = SCT {want}")
    texts = " ".join(str(c.TextValue) for c in children(qual[0]) if c.ValueType == "TEXT") \
        if qual else ""
    if nfd:
        expect("NOT FOR DIAGNOSIS" in texts, "SR: a comment says NOT FOR DIAGNOSIS")
    # algorithm as device observer
    obs = {code(c)[0]: c for c in top if c.RelationshipType == "HAS OBS CONTEXT"}
    name = (res.get("algorithm") or {}).get("name")
    if name:
        expect("121013" in obs and str(obs["121013"].TextValue) == name,
               f"SR: device observer name is the algorithm '{name}'")


def check_mammo_cad(ds, res, src, nfd):
    expect(ds.SOPClassUID == MAMMO_CAD_SR, "SR: Mammography CAD SR")
    expect(code(ds)[:2] == ("111036", "DCM"), "SR: Mammography CAD Report")
    sif = [(i, p) for i, p in walk(ds) if i.ValueType == "CODE" and code(i)[0] == "111059"]
    findings = res.get("findings") or []
    expect(len(sif) == len(findings), f"SR: one single image finding per finding "
           f"({len(sif)}/{len(findings)})")
    for k, ((item, _), f) in enumerate(zip(sif, findings)):
        kids = children(item)
        outl = [c for c in kids if c.ValueType == "SCOORD" and code(c)[0] == "111041"]
        if f.get("box") and expect(len(outl) == 1, f"SR: finding #{k + 1} has an outline"):
            expect(same_points([float(v) for v in outl[0].GraphicData], box_points(f["box"])),
                   f"SR: finding #{k + 1} outline is the rectangle {f['box']}")
            sop = image_ref([c for c in children(outl[0]) if c.ValueType == "IMAGE"][0])[1]
            expect(sop == f["sop_instance_uid"], f"SR: finding #{k + 1} on its image")
        cert = [c for c in kids if c.ValueType == "NUM" and code(c)[0] == "111012"]
        if f.get("score", -1) >= 0:
            expect(cert and abs(float(cert[0].MeasuredValueSequence[0].NumericValue) -
                                f["score"] * 100) < 1e-3,
                   f"SR: finding #{k + 1} certainty {f['score'] * 100:.4g} %")
    for what, cv in (("Summary of Detections", "111064"), ("Summary of Analyses", "111065")):
        expect(any(code(c)[0] == cv for c in children(ds)), f"SR: {what} present")
    if nfd:
        txt = " ".join(str(i.TextValue) for i, _ in walk(ds) if i.ValueType == "TEXT")
        expect("NOT FOR DIAGNOSIS" in txt, "SR: the impression says NOT FOR DIAGNOSIS")


def cmd_sr(a):
    res = json.load(open(a.result))
    src = load_sources(a.sources)
    ds = pydicom.dcmread(a.file)
    check_common(ds, src, a.nfd, "SR")
    check_evidence(ds, src)
    n = check_scoord_inside(ds, src)
    nbox = sum(1 for f in res.get("findings") or [] if f.get("box"))
    expect(n >= nbox, f"SR: {n} SCOORDs for {nbox} boxes")
    if a.template == "mammo-cad":
        check_mammo_cad(ds, res, src, a.nfd)
    else:
        check_tid1500(ds, res, src, a.nfd)
    used = {c[1] for i, _ in walk(ds) for c in (code(i), code(i, "ConceptCodeSequence"))}
    if "99TRIAGED" in used:
        expect(any(x.CodingSchemeDesignator == "99TRIAGED"
                   for x in ds.get("CodingSchemeIdentificationSequence", [])),
               "SR: 99TRIAGED declared in Coding Scheme Identification")


def read_pgm(path):
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P5"
    w, h, mx = int(parts[1]), int(parts[2]), int(parts[3])
    return np.frombuffer(parts[4][:w * h], dtype=np.uint8).reshape(h, w)


def check_sc_header(ds, src, nfd, what):
    expect(ds.SOPClassUID == SC, f"{what}: Secondary Capture Image Storage")
    expect(list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"], f"{what}: DERIVED\\SECONDARY")
    expect(ds.get("BurnedInAnnotation") == "YES", f"{what}: Burned In Annotation YES")
    expect(ds.get("ConversionType") == "WSD", f"{what}: Conversion Type WSD")
    expect(ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3 and
           ds.BitsAllocated == 8, f"{what}: RGB 8-bit")
    refs = {r.ReferencedSOPInstanceUID for r in ds.get("SourceImageSequence", [])}
    expect(refs and refs <= set(src), f"{what}: Source Image Sequence refers to the source(s)")
    expect(bool(str(ds.get("DerivationDescription", ""))), f"{what}: Derivation Description")
    check_common(ds, src, nfd, what)


def cmd_overlay(a):
    res = json.load(open(a.result))
    src = load_sources([a.source])
    s = next(iter(src.values()))
    ds = pydicom.dcmread(a.file)
    check_sc_header(ds, src, a.nfd, "overlay")
    lat = s.get("Laterality") or s.get("ImageLaterality")
    if lat in ("L", "R") and "Laterality" in ds:
        expect(ds.Laterality == lat, f"overlay: Laterality {lat} of the source")
    px = ds.pixel_array.astype(np.int16)
    ren = read_pgm(a.render).astype(np.int16)
    h, w = ren.shape
    banner = ds.Rows - h
    expect(ds.Columns == w and 0 < banner < ds.Rows // 3,
           f"overlay: the {w}x{h} rendering below a {banner}-pixel banner")
    if ds.Columns != w or banner <= 0:
        return
    img = px[banner:]
    scale = s.Columns / w
    frame = None
    mine = [f for f in res.get("findings") or [] if f["sop_instance_uid"] == s.SOPInstanceUID]
    if mine:
        frame = int(mine[0].get("frame", 1))
    boxes = [f for f in mine if f.get("box") and int(f.get("frame", 1)) == frame]
    lfs = max(12.0, min(36.0, w / 64.0))
    keep = np.ones((h, w), dtype=bool)      # far from every box and label
    for f in boxes:
        x0, y0, x1, y1 = [v / scale for v in f["box"]]
        label_w = lfs * 0.75 * (len(f["label"]) + 12)
        keep[max(0, int(y0 - 2.2 * lfs - 12)):int(y1 + 2.2 * lfs + 12) + 1,
             max(0, int(x0 - 12)):int(max(x1, x0 + label_w) + 12) + 1] = False
        # each edge: the pixels under the line differ from the rendering
        xs = np.arange(int(np.ceil(x0)), int(x1) + 1)
        ys = np.arange(int(np.ceil(y0)), int(y1) + 1)
        edges = {"top": [(int(round(y0)), x) for x in xs], "bottom": [(int(round(y1)), x) for x in xs],
                 "left": [(y, int(round(x0))) for y in ys], "right": [(y, int(round(x1))) for y in ys]}
        # solid: the whole edge; dashed (doubtful, score < 0.5): the dashes
        # (3 on, 2 off: the gaps show the dark outline, which on a black
        # background is the rendering)
        solid = f.get("score", -1) is None or f.get("score", -1) < 0 or f["score"] >= 0.5
        need = 0.9 if solid else 0.5
        for name, pts in edges.items():
            pts = [(y, x) for y, x in pts if 0 <= y < h and 0 <= x < w]
            if not pts:
                continue
            diff = sum(1 for y, x in pts if np.abs(img[y, x] - ren[y, x]).max() > 24)
            expect(diff >= need * len(pts), f"overlay: {f['label'][:20]} box {name} edge drawn "
                   f"{'solid' if solid else 'dashed'} ({diff}/{len(pts)} pixels differ from "
                   "the rendering)")
    far = keep.sum()
    if far:
        same = (np.abs(img - ren[:, :, None]).max(axis=2) == 0) & keep
        expect(same.sum() >= 0.999 * far, f"overlay: pixels far from the boxes are the "
               f"rendering ({same.sum()}/{far})")
    top = px[:banner]
    expect(top.std() > 5, "overlay: banner has text")


def cmd_summary(a):
    src = load_sources(a.sources)
    ds = pydicom.dcmread(a.file)
    check_sc_header(ds, src, a.nfd, "summary")
    expect((ds.Columns, ds.Rows) == (1024, 1280), "summary: 1024x1280 page")
    px = ds.pixel_array
    expect(px.std() > 10 and (px > 200).mean() > 0.005, "summary: not blank (text drawn)")


def cmd_polarity(a):
    x = read_pgm(a.render).astype(float).ravel()
    y = read_pgm(a.reference).astype(float)
    if y.size != x.size:
        yr = read_pgm(a.reference)
        # nearest-neighbour resize of the reference to the rendering
        h, w = read_pgm(a.render).shape
        yi = (np.arange(h) * yr.shape[0] / h).astype(int)
        xi = (np.arange(w) * yr.shape[1] / w).astype(int)
        y = yr[yi][:, xi].astype(float)
    y = y.ravel()
    r = np.corrcoef(x, y)[0, 1]
    expect(r > 0.5, f"rendering has the polarity of DCMTK's display rendering (r = {r:.3f})")


def cmd_validate(a):
    import collections
    import os
    import re
    import subprocess
    allow = re.compile(a.allow_error) if a.allow_error else None
    for f in a.files:
        name = os.path.basename(os.path.dirname(f)) + "/" + os.path.basename(f)
        p = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
        lines = (p.stdout + p.stderr).splitlines()
        errs = [l for l in lines if l.startswith("Error")]
        bad = [l for l in errs if not (allow and allow.search(l))]
        warns = collections.Counter(l for l in lines if l.startswith("Warning"))
        iod = next((l for l in lines if l and not l.startswith(("Error", "Warning"))), "?")
        expect(not bad, f"dciodvfy {name} ({iod}): no Error" +
               (f" ({len(errs) - len(bad)} allowed)" if len(errs) != len(bad) else "") +
               ("" if not bad else ": " + " | ".join(bad[:5])))
        for w, n in sorted(warns.items()):
            print(f"   warning x{n}: {w}")
        d = pydicom.dcmread(f, stop_before_pixels=True)
        if not d.SOPClassUID.startswith("1.2.840.10008.5.1.4.1.1.88."):
            continue
        if a.pixelmed:
            p = subprocess.run(["java", "-Djdk.xml.xpathExprOpLimit=0",
                                "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0",
                                "-cp", a.pixelmed, "com.pixelmed.validate.DicomSRValidator", f],
                               capture_output=True, text=True)
            out = (p.stdout + p.stderr).splitlines()
            root = next((l for l in out if l.startswith("Found Root Template")), "no root template")
            perr = [l for l in out if l.startswith("Error")]
            if expect(not perr and "Root Template Validation Complete" in out,
                      f"pixelmed DicomSRValidator {name}: {root}, no Error" +
                      ("" if not perr else ": " + " | ".join(x[:300] for x in perr[:5]))):
                for l in out:
                    if l.startswith("Warning"):
                        print("   pixelmed " + l[:300])
        if a.node_modules and d.get("ContentTemplateSequence") and \
                d.ContentTemplateSequence[0].TemplateIdentifier == "1500":
            tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "..", "shared", "tools", "sr-viewer-parse.js")
            tool = os.environ.get("SR_VIEWER_PARSE", tool)
            env = dict(os.environ, NODE_PATH=a.node_modules)
            p = subprocess.run(["node", tool, f], capture_output=True, text=True, env=env)
            out = p.stdout
            m = re.search(r"Cornerstone3D: RectangleROI x(\d+)", out)
            got = int(m.group(1)) if m else 0
            expect(p.returncode == 0 and "Template 1500" in out and got == a.boxes,
                   f"dcmjs + @cornerstonejs/adapters read {name}: {got} RectangleROI "
                   f"(want {a.boxes})" + ("" if p.returncode == 0 else
                                          ": " + p.stderr.strip()[-300:]))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sr")
    s.add_argument("file")
    s.add_argument("--result", required=True)
    s.add_argument("--template", default="tid1500")
    s.add_argument("--nfd", action="store_true")
    s.add_argument("sources", nargs="+")
    o = sub.add_parser("overlay")
    o.add_argument("file")
    o.add_argument("--result", required=True)
    o.add_argument("--source", required=True)
    o.add_argument("--render", required=True)
    o.add_argument("--nfd", action="store_true")
    m = sub.add_parser("summary")
    m.add_argument("file")
    m.add_argument("--result", required=True)
    m.add_argument("--nfd", action="store_true")
    m.add_argument("sources", nargs="+")
    q = sub.add_parser("polarity")
    q.add_argument("render")
    q.add_argument("reference")
    v = sub.add_parser("validate")
    v.add_argument("--pixelmed")
    v.add_argument("--node-modules")
    v.add_argument("--boxes", type=int, default=0)
    v.add_argument("--allow-error")
    v.add_argument("files", nargs="+")
    a = p.parse_args()
    {"sr": cmd_sr, "overlay": cmd_overlay, "summary": cmd_summary, "polarity": cmd_polarity,
     "validate": cmd_validate}[a.cmd](a)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
