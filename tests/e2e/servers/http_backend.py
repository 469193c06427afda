#!/usr/bin/python3
"""http_backend.py - a small, honest AI server for testing triaged's "http"
backend (design.md section 5). Standard library plus pydicom.

    http_backend.py --port PORT [--mode MODE] [--token TOKEN] [--log FILE] ...

Listens on 127.0.0.1:PORT (ThreadingHTTPServer) and prints "ready PORT" on
stdout once it does.

POST (any path) takes multipart/form-data: a part "request" (the request
JSON) and parts "file" (application/dicom files, or image/png with
send = png). The answer is computed from the files received, so a test can
tell that they arrived intact:
  - one finding per file, label "region", on the file's SOP Instance UID
    (read from the DICOM file with pydicom; for a PNG, from its file name
    <SOP UID>.png), frame 1;
  - its box: the central region of the image, columns/4 .. 3*columns/4 by
    rows/4 .. 3*rows/4, with Rows/Columns read from the DICOM file (for a
    PNG: the source size from the request, so the box is in source pixels);
  - its score: the mean of the file's bytes / 255, rounded to 3 decimals;
  - the study outcome: positive when the best score >= 0.5.

Modes (--mode):
  direct        200 with the result
  poll          202 + Location: /jobs/ID (relative), then GET /jobs/ID
                answers 202 {"status":"running"} --polls times, then 200
  poll-body     202 with {"status_url": "http://127.0.0.1:PORT/jobs/ID"} and
                no Location, then as poll
  poll-wrapped  as poll, but the final 200 is {"status":"done","result":{...}}
  error500      500 {"error": "model crashed"}
  error503      503 {"error": {"message": "overloaded", "retryable": true}}
  error400      400 {"error": "unsupported SOP class"}
  garbage       200 text/html "<html>...proxy error...</html>"
  oversized     200 with a valid JSON body of --oversize-kb KiB (default 2048)
  slow          sleep --sleep seconds (default 30), then as direct
  unknown-uid   200 with the findings on a SOP Instance UID not in the study
  retryable     200 {"status":"error","retryable":true,"message":"busy"}
With --token TOKEN every request without "Authorization: Bearer TOKEN"
gets 401 {"error": "invalid or missing token"}. GET /health answers 200
(503 with --mode error503).

--log FILE appends one JSON line per request: method, path, the
Authorization header as received, content type and, for a POST, the
request JSON and every part (name, filename, content type, size, sha256,
and for DICOM the SOP Instance UID, Rows, Columns read with pydicom), so
tests can assert what the backend sent.
"""
import argparse
import email.parser
import email.policy
import hashlib
import io
import json
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import warnings
    warnings.simplefilter("ignore")
    import pydicom
except ImportError:          # the tests run /usr/bin/python3, which has it
    pydicom = None

MAX_BODY = 512 * 1024 * 1024
OPTS = None
JOBS = {}                    # job id -> {"result": ..., "polls": n}
LOCK = threading.Lock()


def dicom_info(data):
    """(sop_uid, rows, columns) of a DICOM file's bytes, or (None, 0, 0)."""
    if pydicom is None:
        return None, 0, 0
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return str(ds.SOPInstanceUID), int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    except Exception:
        return None, 0, 0


def png_size(data):
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return w, h, data[24], data[25]
    return 0, 0, 0, 0


def parse_multipart(content_type, body):
    """[(name, filename, content_type, bytes)] of a multipart/form-data body."""
    head = ("Content-Type: %s\r\nMIME-Version: 1.0\r\n\r\n" % content_type).encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = []
    if not msg.is_multipart():
        return parts
    for p in msg.iter_parts():
        parts.append((p.get_param("name", header="content-disposition"),
                      p.get_filename(), p.get_content_type(),
                      p.get_payload(decode=True) or b""))
    return parts


def compute_result(request, parts):
    """The deterministic answer and what was seen of each part."""
    sizes = {}
    for inst in request.get("instances", []) if isinstance(request, dict) else []:
        sizes[inst.get("sop_instance_uid")] = (inst.get("rows") or 0, inst.get("columns") or 0)
    findings, seen, best = [], [], 0.0
    for name, filename, ctype, data in parts:
        info = {"name": name, "filename": filename, "content_type": ctype, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}
        if name == "file":
            if ctype == "image/png":
                w, h, depth, color = png_size(data)
                uid = (filename or "").rsplit(".png", 1)[0]
                rows, cols = sizes.get(uid, (h, w))
                info.update({"png_width": w, "png_height": h, "png_bit_depth": depth,
                             "png_color_type": color, "sop_instance_uid": uid})
            else:
                uid, rows, cols = dicom_info(data)
                info.update({"sop_instance_uid": uid, "rows": rows, "columns": cols})
            score = round(sum(data) / (255.0 * len(data)), 3) if data else 0.0
            best = max(best, score)
            if OPTS.mode == "unknown-uid":
                uid = "1.2.826.0.1.3680043.99999.1.2.3"
            findings.append({"label": "region", "score": score, "sop_instance_uid": uid,
                             "frame": 1,
                             "code": {"scheme": "99TEST", "value": "REGION", "meaning": "Test region"},
                             "box": [cols / 4.0, rows / 4.0, cols * 3 / 4.0, rows * 3 / 4.0]})
        seen.append(info)
    result = {"status": "ok",
              "algorithm": {"name": "http-test-server", "version": "1", "vendor": "triaged tests"},
              "study": {"outcome": "positive" if best >= 0.5 else "negative", "score": best,
                        "summary": "%d file(s) received" % len(findings)},
              "findings": findings}
    return result, seen


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http-backend-test/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("http_backend: " + (fmt % args) + "\n")

    def log_request_record(self, record):
        if not OPTS.log:
            return
        with LOCK:
            with open(OPTS.log, "a") as f:
                f.write(json.dumps(record) + "\n")

    def send(self, code, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def authorized(self):
        if not OPTS.token:
            return True
        return self.headers.get("Authorization", "") == "Bearer " + OPTS.token

    def base_record(self):
        return {"time": time.time(), "method": self.command, "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "user_agent": self.headers.get("User-Agent")}

    def do_GET(self):
        rec = self.base_record()
        self.log_request_record(rec)
        if self.path.rstrip("/") == "/health":
            return self.send(503 if OPTS.mode == "error503" else 200, {"ready": OPTS.mode != "error503"})
        if not self.authorized():
            return self.send(401, {"error": "invalid or missing token"})
        job_id = self.path.rstrip("/").rsplit("/", 1)[-1]
        with LOCK:
            job = JOBS.get(job_id)
            if job:
                job["polls"] += 1
                polls = job["polls"]
        if not job:
            return self.send(404, {"error": "no such job"})
        if polls <= OPTS.polls:
            return self.send(202, {"job_id": job_id, "status": "running"}, headers={"Retry-After": "1"})
        if OPTS.mode == "poll-wrapped":
            return self.send(200, {"job_id": job_id, "status": "done", "result": job["result"]})
        return self.send(200, job["result"])

    def do_POST(self):
        rec = self.base_record()
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            rec["error"] = "bad Content-Length %r" % length
            self.log_request_record(rec)
            return self.send(411, {"error": "Content-Length required (at most %d)" % MAX_BODY})
        body = b""
        left = int(length)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            body += chunk
            left -= len(chunk)
        try:
            parts = parse_multipart(self.headers.get("Content-Type", ""), body)
        except Exception as e:                         # noqa: BLE001 - report it
            parts = []
            rec["error"] = "multipart: %s" % e
        request = None
        for name, _, _, data in parts:
            if name == "request":
                try:
                    request = json.loads(data)
                except ValueError:
                    request = {"unparseable": data[:200].decode("latin-1")}
        result, seen = compute_result(request, parts)
        rec.update({"body_size": len(body), "request": request, "parts": seen})
        self.log_request_record(rec)

        if not self.authorized():
            return self.send(401, {"error": "invalid or missing token"})
        mode = OPTS.mode
        if mode == "slow":
            time.sleep(OPTS.sleep)
            mode = "direct"
        if mode == "error500":
            return self.send(500, {"error": "model crashed"})
        if mode == "error503":
            return self.send(503, {"error": {"message": "overloaded", "retryable": True}})
        if mode == "error400":
            return self.send(400, {"error": "unsupported SOP class"})
        if mode == "garbage":
            return self.send(200, "<html><body><h1>502 proxy error</h1>\x01\x02</body></html>",
                             ctype="text/html")
        if mode == "oversized":
            pad = "x" * (OPTS.oversize_kb * 1024)
            return self.send(200, {"status": "ok", "padding": pad})
        if mode == "retryable":
            return self.send(200, {"status": "error", "retryable": True, "message": "busy, try later"})
        if mode in ("poll", "poll-body", "poll-wrapped"):
            job_id = uuid.uuid4().hex
            with LOCK:
                JOBS[job_id] = {"result": result, "polls": 0}
            if mode == "poll-body":
                url = "http://127.0.0.1:%d/jobs/%s" % (OPTS.port, job_id)
                return self.send(202, {"job_id": job_id, "status": "queued", "status_url": url})
            return self.send(202, {"job_id": job_id, "status": "queued"},
                             headers={"Location": "/jobs/%s" % job_id})
        return self.send(200, result)


def main():
    global OPTS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="direct",
                   choices=["direct", "poll", "poll-body", "poll-wrapped", "error500", "error503",
                            "error400", "garbage", "oversized", "slow", "unknown-uid", "retryable"])
    p.add_argument("--token", help="require Authorization: Bearer TOKEN")
    p.add_argument("--log", help="append a JSON line per request to this file")
    p.add_argument("--polls", type=int, default=2, help="202 answers to GETs before the result")
    p.add_argument("--sleep", type=float, default=30.0, help="seconds, for --mode slow")
    p.add_argument("--oversize-kb", type=int, default=2048, help="KiB, for --mode oversized")
    OPTS = p.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", OPTS.port), Handler)
    print("ready %d" % OPTS.port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
