#!/usr/bin/python3
"""oip_server.py - a small, honest Open Inference Protocol v2 (KServe v2 / Triton) server for tests.

Serves one model on 127.0.0.1:PORT with the stdlib ThreadingHTTPServer and numpy:

  GET  /v2/health/live, /v2/health/ready            200 (ready: 503 in fault mode not-ready)
  GET  /v2/models/M[/versions/V]/ready              200
  GET  /v2/models/M[/versions/V]                    metadata: inputs [{name, datatype, shape}], outputs
  POST /v2/models/M[/versions/V]/infer              JSON data or the binary tensor extension
                                                    (Inference-Header-Content-Length, binary_data_size);
                                                    outputs binary when asked (binary_data / binary_data_output)

The "model" is a real, deterministic computation on the tensor it receives, so a test can check that the
client sent the right image: on channel 0 of the input it finds the brightest K x K window, grows it along
its centre row and column while pixels stay above the midpoint between that window's mean and the median
of the image, and reports that box (label 0, score = (window mean - median) / (max - min)); plus a second,
weak detection (score 0.1, label --second-label) at the K x K window in the middle of the input, which
a 0.5 threshold drops.
Boxes are in --box-format (xyxy_normalized | xyxy_pixels | yxyx_normalized) of the model input.

Fault modes (--fault, or POST /debug/fault {"fault": MODE, "count": N}; count N > 0 = only the next N
inference requests, then healthy again):
  none, not-ready (health ready 503), model-not-ready (model ready 503), metadata-404, 500, 503, 429, 400,
  garbage (200 with a non-JSON body), wrong-shape (boxes [N,3]), nan (NaN scores), inf-box,
  bad-label (label 2.5), huge-n (boxes claim [10000000,4]), bad-binary-size (binary_data_size of one
  element more than the shape), truncated (the binary part cut short), oversized (an extra 16 MiB binary
  output), mismatch-id (another request id), slow (answer after --slow-s seconds).

GET /debug/stats: request counters and the last inference request (mode, datatype, shape, channel
equality, min/max/mean, the box found). --log FILE appends one JSON line per inference request.

The inputs the tests send it: `oip_server.py make-dicom OUT_DIR --image ROWSxCOLS:X0,Y0,X1,Y1[:LAT:VIEW]
... [--seed N] [--modality MG]` writes one study (one Part 10 file per --image: 16-bit MONOCHROME2,
12 bits stored, a dark noisy background and the bright rectangle [X0,X1) x [Y0,Y1) in source pixels)
and prints a JSON manifest line per file: {"path", "sop_uid", "study_uid", "rows", "cols", "box"}.
"""
import argparse
import json
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

NP = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),
}
MAX_BODY = 512 * 1024 * 1024


class BadRequest(Exception):
    pass


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.fault = args.fault
        self.fault_count = args.fault_count
        self.stats = {"health_live": 0, "health_ready": 0, "model_ready": 0, "metadata": 0,
                      "infer": 0, "infer_ok": 0, "faults": 0}
        self.last = None

    def infer_fault(self):
        """The fault for this inference request (consumes one of a counted fault)."""
        with self.lock:
            f = self.fault
            if f == "none":
                return "none"
            if self.fault_count > 0:
                self.fault_count -= 1
                if self.fault_count == 0:
                    self.fault = "none"
            self.stats["faults"] += 1
            return f

    def standing_fault(self):
        with self.lock:
            return self.fault


def parse_shape(s):
    return [int(x) for x in s.split(",")]


def layout_of(shape):
    """(channel axis, row axis, column axis) like the client: the axis holding 1 or 3 is the channels."""
    r = len(shape)
    if r == 4:
        if shape[1] in (1, 3) or (shape[1] == -1 and shape[3] not in (1, 3)):
            return 1, 2, 3
        return 3, 1, 2
    if r == 3:
        if shape[0] in (1, 3) or (shape[0] == -1 and shape[2] not in (1, 3)):
            return 0, 1, 2
        return 2, 0, 1
    return None, 0, 1


def to_float(arr, datatype):
    if datatype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return arr.astype(np.float64)


def detect(img, k):
    """Brightest k x k window grown to the bright region; returns (x0, y0, x1, y1) pixels, score, middle box."""
    h, w = img.shape
    k = max(1, min(k, h, w))
    ii = np.zeros((h + 1, w + 1))
    ii[1:, 1:] = img.cumsum(0).cumsum(1)
    sums = ii[k:, k:] - ii[:-k, k:] - ii[k:, :-k] + ii[:-k, :-k]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    peak = sums[y, x] / (k * k)
    bg = float(np.median(img))
    lo, hi = float(img.min()), float(img.max())
    mid = (peak + bg) / 2
    cy, cx = y + k // 2, x + k // 2
    row, col = img[cy, :], img[:, cx]
    x0 = cx
    while x0 > 0 and row[x0 - 1] > mid:
        x0 -= 1
    x1 = cx
    while x1 < w - 1 and row[x1 + 1] > mid:
        x1 += 1
    y0 = cy
    while y0 > 0 and col[y0 - 1] > mid:
        y0 -= 1
    y1 = cy
    while y1 < h - 1 and col[y1 + 1] > mid:
        y1 += 1
    score = 0.0 if hi - lo <= 0 else min(1.0, max(0.0, (peak - bg) / (hi - lo)))
    dy, dx = (h - k) // 2, (w - k) // 2
    return (float(x0), float(y0), float(x1 + 1), float(y1 + 1)), score, (float(dx), float(dy), float(dx + k), float(dy + k))


def fmt_box(b, fmt, w, h):
    x0, y0, x1, y1 = b
    if fmt == "xyxy_pixels":
        return [x0, y0, x1, y1]
    if fmt == "yxyx_normalized":
        return [y0 / h, x0 / w, y1 / h, x1 / w]
    return [x0 / w, y0 / h, x1 / w, y1 / h]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oip_server/1"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("oip_server: " + (fmt % a) + "\n")

    # ---------------------------------------------------------------- replies
    def reply(self, status, body=b"", ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, msg):
        self.reply(status, {"error": msg})

    def model_path(self, path):
        """'' (metadata), 'ready', 'infer' when PATH names our model (and version), else None."""
        a = self.server.state.args
        base = "/v2/models/" + a.model
        for prefix in ([base + "/versions/" + a.version] if a.version else []) + [base]:
            if path == prefix:
                return ""
            if path.startswith(prefix + "/") and path[len(prefix) + 1:] in ("ready", "infer"):
                return path[len(prefix) + 1:]
        return None

    # ---------------------------------------------------------------- GET
    def do_GET(self):
        st = self.server.state
        a = st.args
        path = self.path.split("?")[0]
        if path == "/v2/health/live":
            st.stats["health_live"] += 1
            return self.reply(200, {"live": True})
        if path == "/v2/health/ready":
            st.stats["health_ready"] += 1
            if st.standing_fault() == "not-ready":
                return self.reply(503, {"ready": False})
            return self.reply(200, "", "text/plain")
        if path == "/v2":
            return self.reply(200, {"name": "oip_server", "version": "1", "extensions": ["binary_tensor_data"]})
        if path == "/debug/stats":
            with st.lock:
                return self.reply(200, {"stats": st.stats, "last": st.last, "fault": st.fault})
        which = self.model_path(path)
        if which == "ready":
            st.stats["model_ready"] += 1
            if st.standing_fault() == "model-not-ready":
                return self.reply(503, {"name": a.model, "ready": False})
            return self.reply(200, {"name": a.model, "ready": True})
        if which == "":
            st.stats["metadata"] += 1
            if st.standing_fault() == "metadata-404":
                return self.error(404, "Request for unknown model: '%s' is not found" % a.model)
            return self.reply(200, {
                "name": a.model, "versions": [a.version or "1"], "platform": "numpy_brightest_window",
                "inputs": [{"name": a.input, "datatype": a.datatype, "shape": parse_shape(a.shape)}]
                + ([{"name": "extra_input", "datatype": "FP32", "shape": [1]}] if a.extra_input else []),
                "outputs": [{"name": n, "datatype": dt, "shape": s} for n, dt, s in self.output_meta()],
            })
        return self.error(404, "no route for GET %s" % path)

    def output_meta(self):
        a = self.server.state.args
        names = a.outputs.split(",")
        out = [(names[0], "FP32", [1, -1, 4] if a.batch_boxes else [-1, 4]), (names[1], "FP32", [-1])]
        if len(names) > 2:
            out.append((names[2], a.labels_dtype, [-1]))
        return out

    # ---------------------------------------------------------------- POST
    def do_POST(self):
        st = self.server.state
        path = self.path.split("?")[0]
        try:
            n = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            return self.error(400, "Content-Length missing or too large")
        body = self.rfile.read(n)
        if path == "/debug/fault":
            d = json.loads(body or b"{}")
            with st.lock:
                st.fault = d.get("fault", "none")
                st.fault_count = int(d.get("count", 0))
            return self.reply(200, {"fault": st.fault, "count": st.fault_count})
        if self.model_path(path) != "infer":
            return self.error(404, "no route for POST %s" % path)
        st.stats["infer"] += 1
        try:
            self.infer(body)
        except BadRequest as e:
            self.error(400, str(e))

    def infer(self, body):
        st = self.server.state
        a = st.args
        hl = self.headers.get("Inference-Header-Content-Length")
        if hl is not None:
            try:
                hl = int(hl)
            except ValueError:
                raise BadRequest("Inference-Header-Content-Length is not a number")
            if hl <= 0 or hl > len(body):
                raise BadRequest("Inference-Header-Content-Length %d out of range" % hl)
            head, binary = body[:hl], body[hl:]
        else:
            head, binary = body, b""
        try:
            req = json.loads(head)
        except ValueError as e:
            raise BadRequest("request is not JSON: %s" % e)
        if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or not req["inputs"]:
            raise BadRequest("request has no inputs")
        inp = req["inputs"][0]
        if inp.get("name") != a.input:
            raise BadRequest("unexpected input '%s', the model's input is '%s'" % (inp.get("name"), a.input))
        if inp.get("datatype") != a.datatype:
            raise BadRequest("input %s: datatype %s, the model expects %s" % (a.input, inp.get("datatype"), a.datatype))
        shape = inp.get("shape")
        mshape = parse_shape(a.shape)
        if not isinstance(shape, list) or len(shape) != len(mshape) or any(
                not isinstance(d, int) or d < 1 or (m != -1 and d != m) for d, m in zip(shape, mshape)):
            raise BadRequest("input %s: shape %s does not match the model's %s" % (a.input, shape, mshape))
        count = int(np.prod(shape))
        dt = NP[a.datatype]
        params = inp.get("parameters") or {}
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            if hl is None:
                raise BadRequest("binary_data_size without Inference-Header-Content-Length")
            if size != count * dt.itemsize or size != len(binary):
                raise BadRequest("input %s: binary_data_size %s, shape needs %d, body has %d" % (
                    a.input, size, count * dt.itemsize, len(binary)))
            arr = np.frombuffer(binary, dtype=dt)
            mode = "binary"
        else:
            if "data" not in inp:
                raise BadRequest("input %s has no data" % a.input)
            arr = np.array(inp["data"], dtype=np.float64).reshape(-1)
            if arr.size != count:
                raise BadRequest("input %s: %d values for shape %s" % (a.input, arr.size, shape))
            mode = "json"
        x = (to_float(arr, a.datatype) if mode == "binary" else arr).reshape(shape)
        ci, ri, wi = layout_of(mshape)
        chans = shape[ci] if ci is not None else 1
        if ci is None:
            img = x
            equal = True
        else:
            planes = [np.take(x, c, axis=ci).reshape(shape[ri], shape[wi]) for c in range(chans)]
            img = planes[0]
            equal = all(np.array_equal(planes[0], p) for p in planes[1:])
        h, w = img.shape
        k = a.window or max(3, min(h, w) // 32)
        box, score, dark = detect(img, k)

        fault = st.infer_fault()
        if fault == "slow":
            time.sleep(a.slow_s)
        if fault in ("500", "503", "429"):
            return self.error(int(fault), "fault injected: HTTP %s" % fault)
        if fault == "400":
            return self.error(400, "fault injected: invalid argument\n\x01 with a control character")
        if fault == "garbage":
            return self.reply(200, b"<html>this is not an inference response</html>", "text/html")

        boxes = np.array([fmt_box(box, a.box_format, w, h), fmt_box(dark, a.box_format, w, h)], dtype=np.float32)
        scores = np.array([score, 0.1], dtype=np.float32)
        labels_i = [0, a.second_label]
        if fault == "nan":
            scores[0] = np.nan
        if fault == "inf-box":
            boxes[0, 2] = np.inf
        if fault == "wrong-shape":
            boxes = boxes[:, :3].copy()
        label_names = a.label_names.split(",")
        labels_dtype = "FP32" if fault == "bad-label" else a.labels_dtype
        if labels_dtype == "BYTES":
            labels = [label_names[i % len(label_names)] for i in labels_i]
        else:
            labels = np.array([2.5 if fault == "bad-label" else v for v in labels_i], dtype=NP[labels_dtype])
        if a.batch_boxes:
            boxes = boxes.reshape(1, *boxes.shape)

        want_bin = bool((req.get("parameters") or {}).get("binary_data_output", False))
        requested = req.get("outputs")
        names = a.outputs.split(",")
        tensors = {names[0]: (boxes, "FP32"), names[1]: (scores, "FP32")}
        if len(names) > 2:
            tensors[names[2]] = (labels, labels_dtype)
        order = []
        if requested:
            for o in requested:
                if o.get("name") not in tensors:
                    raise BadRequest("unknown output '%s'" % o.get("name"))
                b = (o.get("parameters") or {}).get("binary_data", want_bin)
                order.append((o["name"], bool(b)))
        else:
            order = [(nm, want_bin) for nm in tensors]
        if fault == "oversized":
            tensors["padding"] = (np.zeros(4 * 1024 * 1024, dtype=np.float32), "FP32")
            order.append(("padding", True))

        outputs, blobs = [], []
        for nm, as_bin in order:
            t, dtn = tensors[nm]
            if dtn == "BYTES":
                shp = [len(t)]
            else:
                shp = list(t.shape)
            if fault == "huge-n" and nm == names[0]:
                shp = [10000000, 4] if len(shp) == 2 else [1, 10000000, 4]
            if fault == "wrong-shape" and nm == names[0]:
                shp = list(t.shape)
            out = {"name": nm, "datatype": dtn, "shape": shp}
            if as_bin:
                if dtn == "BYTES":
                    raw = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in t)
                else:
                    raw = np.ascontiguousarray(t).astype(NP[dtn].newbyteorder("<")).tobytes()
                size = len(raw)
                if fault == "bad-binary-size" and nm == names[1]:
                    size += 4
                out["parameters"] = {"binary_data_size": size}
                blobs.append(raw)
            else:
                out["data"] = t if dtn == "BYTES" else t.tolist()
            outputs.append(out)
        resp = {"model_name": a.model, "model_version": a.version or "1",
                "id": "someone-else" if fault == "mismatch-id" else req.get("id", ""), "outputs": outputs}
        head = json.dumps(resp).encode()
        binary_out = b"".join(blobs)
        if fault == "truncated":
            binary_out = binary_out[:max(0, len(binary_out) - 6)]

        last = {"mode": mode, "datatype": inp.get("datatype"), "shape": shape, "channels": chans,
                "channels_equal": equal, "min": float(img.min()), "max": float(img.max()),
                "mean": float(img.mean()), "box_pixels": list(box), "score": score,
                "content_type": self.headers.get("Content-Type"), "id": req.get("id"),
                "binary_outputs": [nm for nm, b in order if b], "fault": fault}
        with st.lock:
            st.last = last
            if fault == "none":
                st.stats["infer_ok"] += 1
        if a.log:
            with open(a.log, "a") as f:
                f.write(json.dumps(last) + "\n")
        if blobs:
            self.reply(200, head + binary_out, "application/octet-stream",
                       {"Inference-Header-Content-Length": str(len(head))})
        else:
            self.reply(200, head)


def make_dicom(argv):
    import os
    import random
    import uuid
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    p = argparse.ArgumentParser(prog="oip_server.py make-dicom")
    p.add_argument("out")
    p.add_argument("--image", action="append", required=True, help="ROWSxCOLS:X0,Y0,X1,Y1[:LAT:VIEW]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modality", default="MG")
    a = p.parse_args(argv)
    rnd = random.Random(a.seed)
    rng = np.random.default_rng(a.seed)

    def uid():
        return "2.25.%d" % uuid.UUID(int=rnd.getrandbits(128), version=4).int

    sop_class = {"MG": "1.2.840.10008.5.1.4.1.1.1.2", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
                 "CR": "1.2.840.10008.5.1.4.1.1.1"}[a.modality]
    study, series = uid(), uid()
    os.makedirs(a.out, exist_ok=True)
    for i, spec in enumerate(a.image):
        parts = spec.split(":")
        rows, cols = (int(v) for v in parts[0].split("x"))
        x0, y0, x1, y1 = (int(v) for v in parts[1].split(","))
        lat, view = (parts[2], parts[3]) if len(parts) > 3 else ("L" if i % 2 else "R", "CC")
        px = (300 + rng.integers(0, 40, size=(rows, cols))).astype(np.uint16)
        px[y0:y1, x0:x1] = 3500
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1234.1"
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "KSERVE^TEST", "KS%d" % a.seed, "F", "19700101"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20250101", "120000", "KS%d" % a.seed
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, i + 1
        ds.Modality, ds.BodyPartExamined = a.modality, "BREAST" if a.modality == "MG" else "CHEST"
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageLaterality, ds.ViewPosition = lat, view
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = px.tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        path = os.path.join(a.out, "%d.dcm" % (i + 1))
        ds.save_as(path, write_like_original=False)
        print(json.dumps({"path": path, "sop_uid": ds.SOPInstanceUID, "study_uid": study,
                          "rows": rows, "cols": cols, "box": [x0, y0, x1, y1]}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "make-dicom":
        return make_dicom(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", type=int)
    p.add_argument("--model", default="detector")
    p.add_argument("--version", default="")
    p.add_argument("--input", default="image")
    p.add_argument("--datatype", default="FP32", choices=sorted(NP))
    p.add_argument("--shape", default="1,1,512,512", help="comma list, -1 = variable")
    p.add_argument("--outputs", default="boxes,scores,labels")
    p.add_argument("--box-format", default="xyxy_normalized",
                   choices=["xyxy_normalized", "xyxy_pixels", "yxyx_normalized"])
    p.add_argument("--labels-dtype", default="INT64", choices=["INT64", "INT32", "FP32", "BYTES"])
    p.add_argument("--label-names", default="lesion,artifact", help="BYTES labels")
    p.add_argument("--second-label", type=int, default=1)
    p.add_argument("--batch-boxes", action="store_true", help="boxes as [1,N,4]")
    p.add_argument("--extra-input", action="store_true", help="declare a second input")
    p.add_argument("--window", type=int, default=0, help="K of the K x K window; 0 = min(H,W)/32")
    p.add_argument("--fault", default="none")
    p.add_argument("--fault-count", type=int, default=0)
    p.add_argument("--slow-s", type=float, default=5.0)
    p.add_argument("--log", default="")
    p.add_argument("--tls-cert", default="", help="serve https with this certificate (PEM)")
    p.add_argument("--tls-key", default="", help="and this key (PEM)")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(a)
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key or None)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("oip_server ready on 127.0.0.1:%d model %s" % (a.port, a.model), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
