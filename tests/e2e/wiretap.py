#!/usr/bin/python3
"""wiretap.py - a recording TCP relay for DICOM associations (e2e tests).

    wiretap.py LISTEN_PORT TARGET_HOST TARGET_PORT OUTDIR [--rate BYTES_PER_S]

Listens on 127.0.0.1:LISTEN_PORT, relays every connection unchanged to
TARGET, and reassembles what went over the wire:

  * from the A-ASSOCIATE-AC: which transfer syntax the receiver accepted on
    each presentation context;
  * from the requestor's P-DATA-TF PDUs: each C-STORE-RQ's command set and
    the exact bytes of its dataset (the PDV fragments concatenated);
  * from the acceptor's P-DATA-TF PDUs: each C-STORE-RSP status.

For every dataset it writes OUTDIR/<conn>-<msgid>.ds (the raw dataset bytes
as sent) and appends one JSON line to OUTDIR/index.jsonl:
  {"conn", "msgid", "sop_uid", "sop_class", "ts", "file", "bytes"}
and for every response {"conn", "msgid", "status"}.

It is the oracle for "the daemon stores the dataset bit for bit as it was
sent": senders (storescu, dcmsend, dcmjs-dimse) re-encode what they read
from a file (sequence and group lengths, padding), so the source file is
not always what went over the wire. Prints "ready" once it listens.

--rate limits the requestor -> acceptor direction to about BYTES_PER_S (a
slow modality or a slow link), so that a test can act in the middle of a
transfer.
"""
import json
import os
import socket
import sys
import threading
import time

lock = threading.Lock()
counter = [0]


def parse_command(buf):
    """Command sets are always Implicit VR Little Endian."""
    out = {}
    pos = 0
    while pos + 8 <= len(buf):
        group = int.from_bytes(buf[pos:pos + 2], "little")
        elem = int.from_bytes(buf[pos + 2:pos + 4], "little")
        length = int.from_bytes(buf[pos + 4:pos + 8], "little")
        value = bytes(buf[pos + 8:pos + 8 + length])
        pos += 8 + length
        if group != 0:
            break
        out[elem] = value
    return out


def uid(v):
    return v.rstrip(b"\0 ").decode("ascii", "replace") if v is not None else None


def us(v):
    return int.from_bytes(v[:2], "little") if v else None


class Conn:
    def __init__(self, n, outdir):
        self.n = n
        self.outdir = outdir
        self.pc_ts = {}
        self.cmd = {"rq": bytearray(), "rsp": bytearray()}
        self.data = bytearray()
        self.last_rq = None

    def record(self, obj):
        with lock:
            with open(os.path.join(self.outdir, "index.jsonl"), "a") as f:
                f.write(json.dumps(obj) + "\n")

    # ---- requestor -> acceptor
    def pdu_from_requestor(self, ptype, body):
        if ptype != 4:
            return
        for pcid, mch, frag in pdvs(body):
            if mch & 1:
                self.cmd["rq"] += frag
                if mch & 2:
                    c = parse_command(self.cmd["rq"])
                    self.cmd["rq"] = bytearray()
                    self.last_rq = {"pcid": pcid, "field": us(c.get(0x0100)),
                                    "msgid": us(c.get(0x0110)),
                                    "sop_class": uid(c.get(0x0002)),
                                    "sop_uid": uid(c.get(0x1000))}
            else:
                self.data += frag
                if mch & 2:
                    rq = self.last_rq or {}
                    name = "%d-%s.ds" % (self.n, rq.get("msgid"))
                    path = os.path.join(self.outdir, name)
                    with open(path, "wb") as f:
                        f.write(self.data)
                    self.record({"conn": self.n, "msgid": rq.get("msgid"), "sop_uid": rq.get("sop_uid"),
                                 "sop_class": rq.get("sop_class"), "ts": self.pc_ts.get(pcid),
                                 "file": path, "bytes": len(self.data)})
                    self.data = bytearray()

    # ---- acceptor -> requestor
    def pdu_from_acceptor(self, ptype, body):
        if ptype == 2:                        # A-ASSOCIATE-AC
            pos = 68
            while pos + 4 <= len(body):
                itype = body[pos]
                ilen = int.from_bytes(body[pos + 2:pos + 4], "big")
                item = body[pos + 4:pos + 4 + ilen]
                if itype == 0x21 and len(item) >= 4:
                    pcid, result = item[0], item[2]
                    sub = 4
                    while sub + 4 <= len(item):
                        stype = item[sub]
                        slen = int.from_bytes(item[sub + 2:sub + 4], "big")
                        if stype == 0x40 and result == 0:
                            self.pc_ts[pcid] = uid(bytes(item[sub + 4:sub + 4 + slen]))
                        sub += 4 + slen
                pos += 4 + ilen
        elif ptype == 4:
            for _pcid, mch, frag in pdvs(body):
                if mch & 1:
                    self.cmd["rsp"] += frag
                    if mch & 2:
                        c = parse_command(self.cmd["rsp"])
                        self.cmd["rsp"] = bytearray()
                        if us(c.get(0x0100)) == 0x8001:          # C-STORE-RSP
                            self.record({"conn": self.n, "msgid": us(c.get(0x0120)),
                                         "status": us(c.get(0x0900))})


def pdvs(body):
    pos = 0
    while pos + 6 <= len(body):
        length = int.from_bytes(body[pos:pos + 4], "big")
        pcid, mch = body[pos + 4], body[pos + 5]
        yield pcid, mch, body[pos + 6:pos + 4 + length]
        pos += 4 + length


def pump(src, dst, on_pdu, rate=0):
    buf = bytearray()
    t0, sent = time.monotonic(), 0
    try:
        while True:
            chunk = src.recv(1 << 14 if rate else 1 << 16)
            if not chunk:
                break
            if rate:
                sent += len(chunk)
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            dst.sendall(chunk)
            buf += chunk
            while len(buf) >= 6:
                plen = int.from_bytes(buf[2:6], "big")
                if len(buf) < 6 + plen:
                    break
                try:
                    on_pdu(buf[0], bytes(buf[6:6 + plen]))
                except Exception as e:  # noqa: BLE001 - never break the relay
                    print("wiretap: parse error: %s" % e, file=sys.stderr)
                del buf[:6 + plen]
    except OSError:
        pass
    for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


def serve(client, target, outdir, rate):
    with lock:
        counter[0] += 1
        n = counter[0]
    conn = Conn(n, outdir)
    try:
        upstream = socket.create_connection(target)
    except OSError as e:
        print("wiretap: connect %s: %s" % (target, e), file=sys.stderr)
        client.close()
        return
    t = threading.Thread(target=pump, args=(upstream, client, conn.pdu_from_acceptor), daemon=True)
    t.start()
    pump(client, upstream, conn.pdu_from_requestor, rate)
    t.join()
    client.close()
    upstream.close()


def main():
    args = sys.argv[1:]
    rate = 0
    if "--rate" in args:
        i = args.index("--rate")
        rate = float(args[i + 1])
        del args[i:i + 2]
    listen_port, host, port, outdir = int(args[0]), args[1], int(args[2]), args[3]
    os.makedirs(outdir, exist_ok=True)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, (host, port), outdir, rate), daemon=True).start()


if __name__ == "__main__":
    main()
