"""lsclient.py - a small client of `lipsync serve` for the Python tests
(lb_drain.py, soak.py): a WebSocket stream, HTTP calls, speech-like audio.

A minimal WebSocket client (RFC 6455: masked client frames, fragments,
ping) over plain sockets: nothing beyond Python's standard library. Every
protocol fault raises ClientError with a message that names it.
"""
import base64
import hashlib
import json
import math
import os
import socket
import struct
import time
import urllib.error
import urllib.request

WAIT_S = 300  # generous: the server may be a sanitizer build on shared cores


class ClientError(Exception):
    pass


def _mask(payload, mask):
    """payload XOR the repeated 4-byte mask, a whole message at once."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class WS:
    """One WebSocket. status is the upgrade's HTTP status (101 when open)."""

    def __init__(self, port, path, timeout=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout or WAIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path, port, key)).encode())
        self.buf = b""
        self.close_code = None
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        if self.status != 101:
            self.sock.close()
            return
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                for l in lines[1:] if ":" in l}
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise ClientError("bad Sec-WebSocket-Accept")

    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, op, payload):
        n = len(payload)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + _mask(payload, mask))

    def send_text(self, text):
        self._send_frame(1, text.encode())

    def send_binary(self, data):
        self._send_frame(2, data)

    def recv(self):
        """(binary, payload) of the next message, or None once closed."""
        parts, op0 = [], None
        while True:
            try:
                b0, b1 = self._take(2)
            except (EOFError, ConnectionResetError):
                return None
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._take(8))[0]
            mask = self._take(4) if b1 & 0x80 else None
            payload = self._take(n)
            if mask:
                payload = _mask(payload, mask)
            if op == 8:  # close: answer it, report the code
                self.close_code = struct.unpack(">H", payload[:2])[0] if n >= 2 else 1005
                try:
                    self._send_frame(8, payload[:2])
                except OSError:
                    pass
                return None
            if op == 9:
                self._send_frame(10, payload)
                continue
            if op == 10:
                continue
            if op != 0:
                op0 = op
            parts.append(payload)
            if b0 & 0x80:
                return op0 == 2, b"".join(parts)

    def close(self):
        self.sock.close()


class Stream:
    """One stream's messages: frames by index (with their arrival times),
    events by type."""

    def __init__(self, ws):
        self.ws, self.frames, self.events, self.errors = ws, {}, {}, []
        self.arrival = {}

    def take_until(self, pred):
        t0 = time.time()
        while not pred():
            if time.time() - t0 > WAIT_S:
                raise ClientError("no answer within %d s" % WAIT_S)
            m = self.ws.recv()
            if m is None:
                return False
            binary, data = m
            if binary:
                if data[:4] != b"LSF1":
                    raise ClientError("frame without the LSF1 header")
                index = struct.unpack("<q", data[8:16])[0]
                if index in self.frames:
                    raise ClientError("frame %d twice" % index)
                self.frames[index] = data[24:]
                self.arrival[index] = time.monotonic()
            else:
                ev = json.loads(data)
                self.events[ev["type"]] = self.events.get(ev["type"], 0) + 1
                if ev["type"] == "error":
                    self.errors.append(ev["message"])
        return True

    def finish(self):
        """After "end": everything until the server closes."""
        self.take_until(lambda: False)
        if self.errors:
            raise ClientError("stream error: " + self.errors[0])
        if self.events.get("done") != 1:
            raise ClientError("no done event (events %s)" % self.events)
        if self.ws.close_code != 1000:
            raise ClientError("closed with %s, not 1000" % self.ws.close_code)


def http(port, method, path, body=None, timeout=None):
    """(status, body bytes) of one request."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout or WAIT_S) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def health(port):
    status, body = http(port, "GET", "/health")
    return status, json.loads(body)


def audio(seconds, phase=0.0):
    """Speech-like f32le 16 kHz mono: a voiced tone under a syllable envelope."""
    out = bytearray()
    for i in range(int(16000 * seconds)):
        t = i / 16000 + phase
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)
        out += struct.pack("<f", env * (0.3 * math.sin(2 * math.pi * 150 * t)
                                        + 0.1 * math.sin(2 * math.pi * 450 * t)))
    return bytes(out)


def wav(pcm_f32):
    """A float WAV file of f32le 16 kHz mono samples (for /v1/render)."""
    n = len(pcm_f32)
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + n) + b"WAVE" +
            b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", n) + pcm_f32)
