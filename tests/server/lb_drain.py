#!/usr/bin/python3
"""lb_drain.py LB_PORT PORT_A PID_A PORT_B PID_B MODEL - the client side of
lb_drain.sh: two `lipsync serve` instances behind nginx (LB_PORT), one of
them drained with SIGTERM while it runs a stream.

1. A stream through nginx: start, half its audio, "ready". The instances'
   own /health tells which one holds it (session affinity put it there).
2. SIGTERM to that one: its /health turns 503 {"status":"draining"}.
3. New sessions through nginx go to the other instance: a stream (all its
   frames, "done") and a batch call (200, its frames).
4. The first stream, on the draining instance, gets the rest of its audio
   and "end": every frame arrives, byte-identical to the other instance's
   stream of the same audio, then "done" and a normal close.
Prints the drained instance's pid last, for the script to wait on.

A minimal WebSocket client (RFC 6455: masked client frames, fragments,
ping) over plain sockets: nothing beyond Python's standard library.
"""
import base64
import hashlib
import json
import math
import os
import signal
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

WAIT_S = 300  # generous: the instances may be sanitizer builds on shared cores


def fail(msg):
    print("lb_drain: FAIL: " + msg, flush=True)
    sys.exit(1)


def log(msg):
    print("lb_drain: " + msg, flush=True)


class WS:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path, port, key)).encode())
        self.buf = b""
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
            fail("bad Sec-WebSocket-Accept")
        self.close_code = None

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
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

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
            except EOFError:
                return None
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._take(8))[0]
            mask = self._take(4) if b1 & 0x80 else None
            payload = self._take(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
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
    """One stream's messages: frames by index, events by type."""

    def __init__(self, ws):
        self.ws, self.frames, self.events, self.errors = ws, {}, {}, []

    def take_until(self, pred):
        t0 = time.time()
        while not pred():
            if time.time() - t0 > WAIT_S:
                fail("no answer within %d s" % WAIT_S)
            m = self.ws.recv()
            if m is None:
                return False
            binary, data = m
            if binary:
                if data[:4] != b"LSF1":
                    fail("frame without the LSF1 header")
                index = struct.unpack("<q", data[8:16])[0]
                if index in self.frames:
                    fail("frame %d twice" % index)
                self.frames[index] = data[24:]
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
            fail("stream error: " + self.errors[0])
        if self.events.get("done") != 1:
            fail("no done event (events %s)" % self.events)
        if self.ws.close_code != 1000:
            fail("closed with %s, not 1000" % self.ws.close_code)


def http(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def health(port):
    status, body = http(port, "GET", "/health")
    return status, json.loads(body)


def audio(seconds):
    """Speech-like f32le 16 kHz mono: a voiced tone under a syllable envelope."""
    out = bytearray()
    for i in range(int(16000 * seconds)):
        t = i / 16000
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)
        out += struct.pack("<f", env * (0.3 * math.sin(2 * math.pi * 150 * t)
                                        + 0.1 * math.sin(2 * math.pi * 450 * t)))
    return bytes(out)


def main():
    lb, port_a, pid_a, port_b, pid_b, model = sys.argv[1:7]
    lb, port_a, pid_a, port_b, pid_b = map(int, (lb, port_a, pid_a, port_b, pid_b))
    pcm = audio(1.0)
    start = json.dumps({"type": "start", "format": "f32le", "rate": 16000})
    path = "/v1/stream?model=" + model

    ws1 = WS(lb, path)
    if ws1.status != 101:
        fail("first stream through nginx: HTTP %d" % ws1.status)
    s1 = Stream(ws1)
    ws1.send_text(start)
    half = len(pcm) // 2 + 2  # splits a sample
    ws1.send_binary(pcm[:half])
    if not s1.take_until(lambda: s1.events.get("ready")):
        fail("first stream closed before ready")
    sessions = {port_a: health(port_a)[1]["sessions"], port_b: health(port_b)[1]["sessions"]}
    if sorted(sessions.values()) != [0, 1]:
        fail("sessions per instance %s: want the stream on exactly one" % sessions)
    held, other = (port_a, port_b) if sessions[port_a] else (port_b, port_a)
    held_pid = pid_a if held == port_a else pid_b
    log("stream 1 on the instance at port %d; SIGTERM to it (pid %d)" % (held, held_pid))
    os.kill(held_pid, signal.SIGTERM)

    t0 = time.time()
    while health(held)[0] != 503:
        if time.time() - t0 > WAIT_S:
            fail("/health of the drained instance never turned 503")
        time.sleep(0.05)
    status, h = health(held)
    if h["status"] != "draining" or h["sessions"] != 1:
        fail("drained instance's /health: %d %s" % (status, h))
    log("drained instance's /health: 503 %s" % json.dumps(h))

    # New sessions through nginx: to the other instance.
    ws2 = WS(lb, path)
    if ws2.status != 101:
        fail("new stream through nginx while one instance drains: HTTP %d" % ws2.status)
    s2 = Stream(ws2)
    ws2.send_text(start)
    if not s2.take_until(lambda: s2.events.get("ready")):
        fail("second stream closed before ready")
    if health(other)[1]["sessions"] != 1 or health(held)[1]["sessions"] != 1:
        fail("the new stream is not on the other instance")
    for at in range(0, len(pcm), 7001):
        ws2.send_binary(pcm[at:at + 7001])
    ws2.send_text('{"type":"end"}')
    s2.finish()
    log("stream 2 (other instance, through nginx): %d frames" % len(s2.frames))

    status, body = http(lb, "POST", "/v1/batch?model=%s&batch_size=2&start_frame=3" % model,
                        pcm)
    if status != 200:
        fail("batch through nginx while one instance drains: %d %s" % (status, body[:200]))
    got = [f["index"] for f in json.loads(body)["frames"]]
    if got != [3, 4]:
        fail("batch through nginx: frames %s" % got)

    # The stream on the draining instance runs to its end.
    try:
        ws1.send_binary(pcm[half:])
        ws1.send_text('{"type":"end"}')
    except OSError as e:
        s1.take_until(lambda: False)
        fail("the stream on the draining instance was closed (%s): frames %d, events %s, "
             "errors %s, close code %s" % (e, len(s1.frames), s1.events, s1.errors,
                                           ws1.close_code))
    s1.finish()
    n = len(s2.frames)
    if n < 20 or sorted(s1.frames) != list(range(n)) or sorted(s2.frames) != list(range(n)):
        fail("frames: %d on the draining instance, %d on the other (want equal, >= 20)"
             % (len(s1.frames), n))
    for i in range(n):
        if s1.frames[i] != s2.frames[i]:
            fail("frame %d differs between the instances" % i)
    log("stream 1 (draining instance): all %d frames, byte-identical to stream 2" % n)
    ws1.close()
    ws2.close()
    print(held_pid, flush=True)


if __name__ == "__main__":
    main()
