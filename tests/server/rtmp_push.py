#!/usr/bin/python3
"""rtmp_push.py PORT MODEL WAV GOOD_URL DEAD_URL FRAMES_OUT - the client side
of rtmp_push.sh, on `lipsync serve` at PORT:

1. Bad outputs in start (not a string, another scheme, no application, a
   space, a control byte, too long): each an error event naming "output",
   and the stream still takes a good start afterwards.
2. An output nobody listens on: an error event naming the push and its
   host (never the key), then a close; the server answers /health at once
   meanwhile, and afterwards.
3. The WAV (16-bit mono) streamed with output GOOD_URL: "ready" says
   output rtmp, every frame arrives over the WebSocket as without a push,
   "done" gives pushed_frames equal to its frames. Writes that count to
   FRAMES_OUT for the script's check of the recording.
4. A push with an interrupt in the middle (to GOOD_URL + "-interrupt"):
   the frames and audio dropped go together; writes its pushed_frames to
   FRAMES_OUT + "-interrupt" for the same check.
5. The media server going away mid-stream (a proxy in front of GOOD_URL's
   server that cuts both sides after 100 kB): an error event naming the
   push, then the close; the server still answers /health.

The client is lsclient.py's (Python's standard library only).
"""
import json
import socket
import sys
import threading
import time
import wave

from lsclient import WS, ClientError, Stream, audio, health


def fail(msg):
    print("rtmp_push: FAIL: " + msg, flush=True)
    sys.exit(1)


def log(msg):
    print("rtmp_push: " + msg, flush=True)


def open_stream(port, model):
    ws = WS(port, "/v1/stream?model=" + model)
    if ws.status != 101:
        fail("upgrade: HTTP %d" % ws.status)
    return ws, Stream(ws)


def bad_outputs(port, model, good_url):
    ws, s = open_stream(port, model)
    bad = [42, "http://127.0.0.1/live/test", "rtmp://127.0.0.1", "rtmp:///live/test",
           "rtmp://127.0.0.1/live/te st", "rtmp://127.0.0.1/live/\x01test",
           "rtmp://127.0.0.1/live/" + "k" * 1100, "RTMP://127.0.0.1/live/test"]
    for i, out in enumerate(bad):
        ws.send_text(json.dumps({"type": "start", "format": "f32le", "output": out}))
        if not s.take_until(lambda: len(s.errors) > i):
            fail("closed after the bad output %r" % (out,))
        if "output" not in s.errors[i]:
            fail("bad output %r: error %r does not name the field" % (out, s.errors[i]))
    log("bad outputs refused: %s" % s.errors[-1])
    # Not started by any of them: a good start is still taken (a push of its own,
    # to another key).
    ws.send_text(json.dumps({"type": "start", "format": "f32le", "output": good_url + "-probe"}))
    ws.send_binary(audio(0.5))
    ws.send_text(json.dumps({"type": "end"}))
    s.errors.clear()
    s.finish()
    ws.close()


def dead_server(port, model, dead_url):
    ws, s = open_stream(port, model)
    t0 = time.time()
    ws.send_text(json.dumps({"type": "start", "format": "f32le", "output": dead_url}))
    st, _ = health(port)  # the loop answers while a worker tries to connect
    if st != 200:
        fail("/health during a failing push: %d" % st)
    s.take_until(lambda: False)  # until the server closes
    if not s.errors:
        fail("no error event for an unreachable output (events %s)" % s.events)
    msg = s.errors[0]
    host = dead_url.split("/")[2]
    if not msg.startswith("output: rtmp push to " + host + ":") or "/live/test" in msg:
        fail("unreachable output: error %r" % msg)
    if s.events.get("ready"):
        fail("ready before the push was connected")
    log("unreachable output: %r after %.2f s" % (msg, time.time() - t0))
    st, _ = health(port)
    if st != 200:
        fail("/health after a failed push: %d" % st)


def push(port, model, wav_path, url, frames_out):
    w = wave.open(wav_path, "rb")
    if w.getsampwidth() != 2 or w.getnchannels() != 1:
        fail("%s: want 16-bit mono" % wav_path)
    rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    ws, s = open_stream(port, model)
    ws.send_text(json.dumps({"type": "start", "format": "s16le", "rate": rate, "output": url}))
    step = rate // 5 * 2  # 0.2 s of 16-bit samples
    for off in range(0, len(pcm), step):
        ws.send_binary(pcm[off:off + step])
    ws.send_text(json.dumps({"type": "end"}))
    done, ready = [], []
    # Stream keeps counts of events: ready's and done's bodies are kept here.
    recv = ws.recv

    def recv_spy():
        m = recv()
        if m and not m[0]:
            ev = json.loads(m[1])
            if ev["type"] == "done":
                done.append(ev)
            if ev["type"] == "ready":
                ready.append(ev)
        return m
    ws.recv = recv_spy
    s.finish()
    if not ready or ready[0].get("output") != "rtmp":
        fail("ready without output rtmp: %s" % ready)
    n = done[0]["frames"]
    if len(s.frames) != n or sorted(s.frames) != list(range(n)):
        fail("%d frames over the WebSocket, done says %d" % (len(s.frames), n))
    if done[0].get("pushed_frames") != n:
        fail("done: pushed_frames %s, frames %d" % (done[0].get("pushed_frames"), n))
    log("%.2f s of speech: %d frames streamed and pushed" % (len(pcm) / 2 / rate, n))
    with open(frames_out, "w") as f:
        f.write("%d\n" % n)


def push_interrupted(port, model, url, frames_out):
    ws, s = open_stream(port, model)
    done = []
    recv = ws.recv

    def recv_spy():
        m = recv()
        if m and not m[0] and json.loads(m[1])["type"] == "done":
            done.append(json.loads(m[1]))
        return m
    ws.recv = recv_spy
    ws.send_text(json.dumps({"type": "start", "format": "f32le", "output": url}))
    ws.send_binary(audio(3.0))
    if not s.take_until(lambda: len(s.frames) >= 10):
        fail("interrupted push: closed before 10 frames")
    ws.send_text(json.dumps({"type": "interrupt"}))
    if not s.take_until(lambda: s.events.get("interrupted")):
        fail("interrupted push: no interrupted event")
    ws.send_binary(audio(1.5, phase=0.3))
    ws.send_text(json.dumps({"type": "end"}))
    s.finish()
    pushed = done[0].get("pushed_frames")
    if not isinstance(pushed, int) or pushed < 10:
        fail("interrupted push: pushed_frames %r" % pushed)
    log("interrupted push: %d frames pushed, %d streamed" % (pushed, len(s.frames)))
    with open(frames_out + "-interrupt", "w") as f:
        f.write("%d\n" % pushed)


class CuttingProxy:
    """Forwards loopback TCP to target_port, and closes both sides once
    `limit` bytes went from the client to the server."""

    def __init__(self, target_port, limit):
        self.target, self.limit = target_port, limit
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        c, _ = self.lsock.accept()
        u = socket.create_connection(("127.0.0.1", self.target))
        sent = [0]

        def pipe(a, b, count):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
                    if count:
                        sent[0] += len(d)
                        if sent[0] >= self.limit:
                            break
            except OSError:
                pass
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(u, c, False), daemon=True).start()
        pipe(c, u, True)
        c.close()
        u.close()


def server_gone(port, model, url):
    rtmp_port = int(url.split("/")[2].split(":")[1])
    proxy = CuttingProxy(rtmp_port, 100000)
    cut_url = "rtmp://127.0.0.1:%d/live/test-cut" % proxy.port
    ws, s = open_stream(port, model)
    ws.send_text(json.dumps({"type": "start", "format": "f32le", "output": cut_url}))
    ws.send_binary(audio(6.0))
    ws.send_text(json.dumps({"type": "end"}))
    s.take_until(lambda: False)  # until the server closes
    if s.events.get("done"):
        fail("server gone: done after the media server went away (%d frames)" % len(s.frames))
    if not s.errors or not s.errors[0].startswith("output: rtmp push to 127.0.0.1:%d: "
                                                  % proxy.port):
        fail("server gone: errors %r" % s.errors)
    log("server gone after %d frames: %r" % (len(s.frames), s.errors[0]))
    st, _ = health(port)
    if st != 200:
        fail("/health after the media server went away: %d" % st)


def main():
    port, model, wav_path, good, dead, frames_out = sys.argv[1:7]
    port = int(port)
    try:
        bad_outputs(port, model, good)
        dead_server(port, model, dead)
        push(port, model, wav_path, good, frames_out)
        push_interrupted(port, model, good + "-interrupt", frames_out)
        server_gone(port, model, good)
    except ClientError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
