#!/usr/bin/python3
"""rawscu.py - a minimal, deliberately permissive C-STORE SCU for e2e tests.

    rawscu.py HOST PORT CALLING CALLED [FILE...] [options]

It speaks the DICOM upper layer directly (no toolkit), so it sends what
DCMTK's senders refuse to: an empty or malformed Affected SOP Instance UID,
a command UID that differs from the dataset's, a dataset cut short. For each
FILE it proposes the file's SOP Class with the file's own transfer syntax
(from the File Meta), sends the dataset bytes after the File Meta unchanged,
and prints one line per file:

    RESULT 0x0000 <file> [comment]     a C-STORE-RSP arrived (its status)
    REJECTED result=R source=S reason=N     A-ASSOCIATE-RJ
    NOCONTEXT <file>                   the SCP did not accept the context
    ABORTED <file>                     the SCP aborted / closed the connection
    ERROR <text>                       network error

Options:
  --sop-uid VALUE   Affected SOP Instance UID in the command (default: the
                    dataset's SOP Instance UID, raw, unvalidated)
  --sop-class UID   Affected SOP Class UID in the command and the proposed
                    context (default: the dataset's SOP Class UID)
  --truncate N      send only the first N bytes of each dataset (marked as
                    the last fragment)
  --hold SECONDS    after the last response, keep the association open this
                    long before releasing it (prints HOLDING when it starts)
  --delay SECONDS   wait this long after the association is accepted before
                    sending (prints ASSOCIATED when accepted)
  --echo            send a C-ECHO instead of files
Exit status: 0 when every file got status 0x0000 (or the echo succeeded),
1 otherwise.
"""
import socket
import struct
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, __import__("os").path.dirname(__file__))
import dicomtool  # noqa: E402

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPL_UID = b"1.2.826.0.1.3680043.10.1.99"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


def even(b, pad=b"\0"):
    return b + pad if len(b) % 2 else b


def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def ae(s):
    return s.encode("ascii")[:16].ljust(16, b" ")


def associate_rq(calling, called, contexts):
    body = struct.pack(">HH", 1, 0) + ae(called) + ae(calling) + b"\0" * 32
    body += item(0x10, APP_CONTEXT)
    for pcid, abstract, syntaxes in contexts:
        sub = item(0x30, abstract.encode())
        for ts in syntaxes:
            sub += item(0x40, ts.encode())
        body += item(0x20, struct.pack(">BBBB", pcid, 0, 0, 0) + sub)
    user = item(0x51, struct.pack(">I", 65536)) + item(0x52, IMPL_UID) + item(0x55, b"E2E_RAWSCU")
    body += item(0x50, user)
    return pdu(0x01, body)


def element(group, elem, value):
    return struct.pack("<HHI", group, elem, len(value)) + value


def command(fields):
    """fields: list of (elem, bytes) for group 0000, ascending."""
    rest = b"".join(element(0, e, v) for e, v in fields)
    return element(0, 0x0000, struct.pack("<I", len(rest))) + rest


class Conn:
    def __init__(self, host, port, timeout=30):
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.max_pdu = 16384

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by peer")
            buf += chunk
        return buf

    def read_pdu(self):
        hdr = self.read_exact(6)
        t, _, length = struct.unpack(">BBI", hdr)
        return t, self.read_exact(length)

    def send_pdv(self, pcid, is_command, data):
        # fragments sized so that a P-DATA-TF stays under the peer's max PDU
        frag = max(1024, self.max_pdu - 12) if self.max_pdu else 65536
        pos = 0
        while True:
            part = data[pos:pos + frag]
            pos += len(part)
            last = pos >= len(data)
            mch = (1 if is_command else 0) | (2 if last else 0)
            pdv = struct.pack(">IBB", len(part) + 2, pcid, mch) + part
            self.s.sendall(pdu(0x04, pdv))
            if last:
                break

    def read_response(self):
        """Read P-DATA until a complete command arrives; return its fields."""
        buf = b""
        while True:
            t, body = self.read_pdu()
            if t == 0x07:
                raise ConnectionAbortedError("A-ABORT")
            if t != 0x04:
                continue
            pos = 0
            done = False
            while pos + 6 <= len(body):
                length = struct.unpack(">I", body[pos:pos + 4])[0]
                mch = body[pos + 5]
                buf += body[pos + 6:pos + 4 + length]
                pos += 4 + length
                if mch & 1 and mch & 2:
                    done = True
            if done:
                fields = {}
                p = 0
                while p + 8 <= len(buf):
                    g, e, ln = struct.unpack("<HHI", buf[p:p + 8])
                    fields[e] = buf[p + 8:p + 8 + ln]
                    p += 8 + ln
                return fields


def parse_ac(body):
    accepted = {}
    max_pdu = 16384
    pos = 68
    while pos + 4 <= len(body):
        t = body[pos]
        ln = struct.unpack(">H", body[pos + 2:pos + 4])[0]
        it = body[pos + 4:pos + 4 + ln]
        if t == 0x21:
            pcid, result = it[0], it[2]
            if result == 0:
                sub = 4
                while sub + 4 <= len(it):
                    st = it[sub]
                    sl = struct.unpack(">H", it[sub + 2:sub + 4])[0]
                    if st == 0x40:
                        accepted[pcid] = it[sub + 4:sub + 4 + sl].rstrip(b"\0 ").decode()
                    sub += 4 + sl
        elif t == 0x50:
            sub = 0
            while sub + 4 <= len(it):
                st = it[sub]
                sl = struct.unpack(">H", it[sub + 2:sub + 4])[0]
                if st == 0x51:
                    max_pdu = struct.unpack(">I", it[sub + 4:sub + 8])[0]
                sub += 4 + sl
        pos += 4 + ln
    return accepted, max_pdu


def raw_uid(path, keyword):
    import pydicom
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        if keyword not in ds:
            return ""
        v = ds[keyword].value
    except Exception:  # noqa: BLE001 - unreadable input is expected here
        return ""
    return "" if v is None else str(v)


def main():
    args = sys.argv[1:]
    opts = {"--sop-uid": None, "--sop-class": None, "--truncate": None, "--hold": "0", "--delay": "0"}
    echo = False
    pos = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in opts:
            opts[a] = args[i + 1]
            i += 2
            continue
        if a == "--echo":
            echo = True
        else:
            pos.append(a)
        i += 1
    if len(pos) < 4 or (not echo and len(pos) < 5):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, calling, called, files = pos[0], pos[1], pos[2], pos[3], pos[4:]

    contexts = []
    plan = []
    if echo:
        contexts.append((1, VERIFICATION, [IMPLICIT_LE]))
    for n, f in enumerate(files):
        info = dicomtool.read_info(f)
        with open(f, "rb") as fh:
            raw = fh.read()
        ds = raw[dicomtool.meta_end(raw):]
        if opts["--truncate"] is not None:
            ds = ds[:int(opts["--truncate"])]
        if len(ds) % 2:
            ds += b"\0"      # PDV fragments must have an even length (PS3.8 9.3.5.1)
        pcid = 2 * n + 1
        sop_class = opts["--sop-class"] or info["sop_class"] or "1.2.840.10008.5.1.4.1.1.7"
        contexts.append((pcid, sop_class, [info["ts"] or IMPLICIT_LE]))
        sop = opts["--sop-uid"] if opts["--sop-uid"] is not None else raw_uid(f, "SOPInstanceUID")
        plan.append((f, pcid, sop_class, sop, ds))
    if len(contexts) > 128:
        print("ERROR more than 128 presentation contexts")
        return 1

    try:
        c = Conn(host, port)
        c.s.sendall(associate_rq(calling, called, contexts))
        t, body = c.read_pdu()
    except OSError as e:
        print("ERROR %s" % e)
        return 1
    if t == 0x03:
        print("REJECTED result=%d source=%d reason=%d" % (body[1], body[2], body[3]))
        return 1
    if t != 0x02:
        print("ERROR unexpected PDU type 0x%02x after A-ASSOCIATE-RQ" % t)
        return 1
    accepted, c.max_pdu = parse_ac(body)
    print("ASSOCIATED", flush=True)
    time.sleep(float(opts["--delay"]))

    ok = True
    msgid = 0
    current = "echo" if echo else ""
    try:
        if echo:
            msgid += 1
            if 1 not in accepted:
                print("NOCONTEXT echo")
                ok = False
            else:
                c.send_pdv(1, True, command([(0x0002, even(VERIFICATION.encode())),
                                             (0x0100, struct.pack("<H", 0x0030)),
                                             (0x0110, struct.pack("<H", msgid)),
                                             (0x0800, struct.pack("<H", 0x0101))]))
                r = c.read_response()
                st = struct.unpack("<H", r.get(0x0900, b"\xff\xff"))[0]
                print("RESULT 0x%04X echo" % st)
                ok = st == 0
        for f, pcid, sop_class, sop, ds in plan:
            current = f
            if pcid not in accepted:
                print("NOCONTEXT %s" % f)
                ok = False
                continue
            msgid += 1
            c.send_pdv(pcid, True, command([(0x0002, even(sop_class.encode())),
                                            (0x0100, struct.pack("<H", 0x0001)),
                                            (0x0110, struct.pack("<H", msgid)),
                                            (0x0700, struct.pack("<H", 0)),
                                            (0x0800, struct.pack("<H", 0x0000)),
                                            (0x1000, even(sop.encode("latin-1")))]))
            c.send_pdv(pcid, False, ds)
            r = c.read_response()
            st = struct.unpack("<H", r.get(0x0900, b"\xff\xff"))[0]
            comment = r.get(0x0902, b"").rstrip(b"\0 ").decode("latin-1")
            print("RESULT 0x%04X %s%s" % (st, f, (" " + comment) if comment else ""), flush=True)
            ok = ok and st == 0
        hold = float(opts["--hold"])
        if hold > 0:
            print("HOLDING", flush=True)
            time.sleep(hold)
        current = "release"
        c.s.sendall(pdu(0x05, b"\0" * 4))
        c.read_pdu()
    except (OSError, ConnectionError) as e:
        print("ABORTED %s %s" % (current, e), flush=True)
        return 1
    finally:
        c.s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
