#!/usr/bin/python3
"""soak.py PORT PID MODEL SECONDS - the client side of soak.sh: one
`lipsync serve` under several minutes of mixed, partly hostile load.

1. Quiet: the reference frames of a stream, a render and a batch call, and
   the quiet first-frame latency of a stream (median of 5).
2. Loaded, for SECONDS: two job clients (renders and batch calls), one
   stream client (random chunkings), and one abuser that cycles through
   abrupt disconnects, slow readers, interrupt storms, bad control
   messages, audio before start and malformed HTTP. The server's RSS is
   sampled twice a second.
3. Checks: every good session got exactly its frames (byte-identical to
   the quiet run; a 503 for a job at its limit is allowed and counted); the
   median first-frame latency of the loaded streams is within 2x of the
   quiet median; RSS plateaus (the last third's median at most 48 MiB over
   the middle third's); the server answers /health with no session left.
"""
import json
import random
import socket
import statistics
import sys
import threading
import time

import lsclient
from lsclient import WS, ClientError, Stream, audio, health, http, wav

lsclient.WAIT_S = 120


def log(msg):
    print("soak: " + msg, flush=True)


def fail(msg):
    print("soak: FAIL: " + msg, flush=True)
    sys.exit(1)


RSS_GROWTH_MAX_KIB = 48 * 1024
START = json.dumps({"type": "start", "format": "f32le", "rate": 16000})


def run_stream(port, model, pcm, rng=None):
    """A stream of pcm, chunked at random when rng is given; (frames, the
    first frame's latency from the first audio byte sent)."""
    ws = WS(port, "/v1/stream?model=" + model)
    if ws.status != 101:
        return None, ws.status
    s = Stream(ws)
    try:
        ws.send_text(START)
        t0 = time.monotonic()
        at = 0
        while at < len(pcm):
            n = len(pcm) - at if rng is None else rng.randint(1, 24000)
            ws.send_binary(pcm[at:at + n])
            at += n
        ws.send_text('{"type":"end"}')
        s.finish()
    finally:
        ws.close()
    return s.frames, min(s.arrival.values()) - t0


class Load:
    def __init__(self, port, model, deadline):
        self.port, self.model, self.deadline = port, model, deadline
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.latencies = []

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def error(self, msg):
        with self.lock:
            self.errors.append(msg)
        log("ERROR: " + msg)

    def running(self):
        return time.monotonic() < self.deadline and not self.errors


def jobs(load, ref, seed):
    rng = random.Random(seed)
    while load.running():
        if rng.random() < 0.5:
            status, body = http(load.port, "POST",
                                "/v1/render?model=%s&output=mjpeg" % load.model, ref["render_wav"])
            if status == 200:
                load.count("render")
                if body != ref["render"]:
                    load.error("a render's frames differ from the quiet run's")
        else:
            status, body = http(load.port, "POST", "/v1/batch?model=%s&batch_size=8&start_frame=10"
                                % load.model, ref["pcm"])
            if status == 200:
                load.count("batch")
                if [f["jpeg"] for f in json.loads(body)["frames"]] != ref["batch"]:
                    load.error("a batch call's frames differ from the quiet run's")
        if status == 503:
            load.count("job 503 (busy)")
            time.sleep(0.5)
        elif status != 200:
            load.error("job answered %d: %s" % (status, body[:200]))


def streams(load, ref, seed):
    rng = random.Random(seed)
    while load.running():
        frames, lat = run_stream(load.port, load.model, ref["pcm"], rng)
        if frames is None:
            load.error("a stream was refused: HTTP %d" % lat)
            continue
        load.count("stream")
        with load.lock:
            load.latencies.append(lat)
        if frames != ref["stream"]:
            load.error("a stream's frames differ from the quiet run's (%d of %d)"
                       % (len(frames), len(ref["stream"])))
        time.sleep(rng.uniform(0.2, 1.0))


def abuse_once(load, ref, rng, kind):
    port, pcm = load.port, ref["pcm"]
    if kind == "malformed http":
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(rng.choice([b"GARBAGE\r\n\r\n", b"GET /v1/models HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: -5\r\n\r\n", b"\x00\xff" * 300 + b"\r\n\r\n",
                                  b"POST /v1/batch?model=" + load.model.encode() +
                                  b"&batch_size=99 HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"]))
            c.settimeout(30)
            try:
                c.recv(4096)
            except OSError:
                pass
        return
    ws = WS(port, "/v1/stream?model=" + load.model, timeout=60)
    if ws.status != 101:
        load.error("abuser's stream refused: HTTP %d" % ws.status)
        return
    s = Stream(ws)
    try:
        if kind == "disconnect":
            ws.send_text(START)
            ws.send_binary(pcm[:rng.randint(1, len(pcm))])
        elif kind == "bad messages":
            for m in ['{"type":"start","rate":1e300}', '{"type":"start","format":5}', "nope",
                      '{"type":"nope"}', '{"type":"start","channels":99}', "[]"]:
                ws.send_text(m)
            ws.send_text(START)
            ws.send_text(START)
            ws.send_binary(pcm[:1001])
            ws.send_text('{"type":"end"}')
            s.take_until(lambda: False)
            if not s.errors:
                load.error("bad control messages gave no error event")
        elif kind == "audio before start":
            ws.send_binary(pcm[:4000])
            s.take_until(lambda: s.errors)
            if not s.errors:
                load.error("audio before start gave no error event")
        elif kind == "interrupt storm":
            ws.send_text(START)
            for k in range(30):
                ws.send_binary(pcm[k * 2000:(k + 1) * 2000])
                ws.send_text('{"type":"interrupt"}')
            ws.send_binary(pcm)
            ws.send_text('{"type":"end"}')
            s.finish()
        elif kind == "slow reader":
            ws.send_text(START)
            ws.send_binary(pcm)
            ws.send_text('{"type":"end"}')
            time.sleep(rng.uniform(2.0, 5.0))
            s.finish()
            if s.frames != ref["stream"]:
                load.error("a slow reader's frames differ from the quiet run's")
    finally:
        ws.close()


def abuser(load, ref, seed):
    rng = random.Random(seed)
    kinds = ["disconnect", "bad messages", "audio before start", "interrupt storm",
             "slow reader", "malformed http"]
    while load.running():
        kind = rng.choice(kinds)
        try:
            abuse_once(load, ref, rng, kind)
            load.count(kind)
        except (ClientError, OSError) as e:
            load.error("%s: %s" % (kind, e))
        time.sleep(rng.uniform(0.2, 1.0))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    port, pid, model, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    pcm = audio(2.0)
    ref = {"pcm": pcm, "render_wav": wav(audio(3.0, phase=0.1))}
    frames, _ = run_stream(port, model, pcm)
    if frames is None or len(frames) < 40:
        fail("the quiet stream gave %s frames" % (None if frames is None else len(frames)))
    ref["stream"] = frames
    quiet = []
    for _ in range(5):
        f, lat = run_stream(port, model, pcm)
        if f != frames:
            fail("two quiet streams of the same audio differ")
        quiet.append(lat)
    status, ref["render"] = http(port, "POST", "/v1/render?model=%s&output=mjpeg" % model,
                                 ref["render_wav"])
    if status != 200:
        fail("quiet render: %d" % status)
    status, body = http(port, "POST", "/v1/batch?model=%s&batch_size=8&start_frame=10" % model, pcm)
    if status != 200:
        fail("quiet batch: %d" % status)
    ref["batch"] = [f["jpeg"] for f in json.loads(body)["frames"]]
    quiet_ms = 1e3 * statistics.median(quiet)
    log("quiet: %d stream frames, first frame %.0f ms (median of %d: %s)"
        % (len(frames), quiet_ms, len(quiet), ", ".join("%.0f" % (1e3 * q) for q in quiet)))

    rss0 = rss_kib(pid)
    t0 = time.monotonic()
    load = Load(port, model, t0 + seconds)
    threads = [threading.Thread(target=jobs, args=(load, ref, 1)),
               threading.Thread(target=jobs, args=(load, ref, 2)),
               threading.Thread(target=streams, args=(load, ref, 3)),
               threading.Thread(target=abuser, args=(load, ref, 4))]
    for t in threads:
        t.daemon = True
        t.start()
    rss = []
    while any(t.is_alive() for t in threads):
        rss.append((time.monotonic() - t0, rss_kib(pid)))
        time.sleep(0.5)
    for t in threads:
        t.join()
    log("loaded for %.0f s: %s" % (time.monotonic() - t0, json.dumps(load.counts, sort_keys=True)))
    if load.errors:
        fail("%d errors; the first: %s" % (len(load.errors), load.errors[0]))

    # The server is left as it was: no session, /health 200.
    t1 = time.monotonic()
    while True:
        status, h = health(port)
        if status == 200 and h["sessions"] == 0:
            break
        if time.monotonic() - t1 > 30:
            fail("after the load: /health %d %s" % (status, h))
        time.sleep(0.2)

    for what in ("render", "batch", "stream", "disconnect", "slow reader", "interrupt storm",
                 "bad messages"):
        if load.counts.get(what, 0) < 1:
            fail("no %s ran in %.0f s" % (what, seconds))
    loaded_ms = 1e3 * statistics.median(load.latencies)
    log("loaded: first frame %.0f ms (median of %d streams; max %.0f), %.2fx the quiet %.0f ms"
        % (loaded_ms, len(load.latencies), 1e3 * max(load.latencies), loaded_ms / quiet_ms,
           quiet_ms))
    thirds = [[r for t, r in rss if k * seconds / 3 <= t < (k + 1) * seconds / 3] for k in range(3)]
    if not thirds[1] or not thirds[2]:
        fail("too few RSS samples")
    log("RSS: %.0f MiB before the load; by third, median %s MiB, peak %s MiB" % (
        rss0 / 1024, " / ".join("%.0f" % (statistics.median(t) / 1024) for t in thirds if t),
        " / ".join("%.0f" % (max(t) / 1024) for t in thirds if t)))
    # Medians: a render's buffers and the allocator's arenas move the peaks
    # by tens of MiB from one moment to the next; a leak moves the median.
    grew = statistics.median(thirds[2]) - statistics.median(thirds[1])
    if grew > RSS_GROWTH_MAX_KIB:
        fail("RSS still grows: the last third's median is %.0f MiB over the middle third's"
             % (grew / 1024))
    if loaded_ms > 2 * quiet_ms:
        fail("first-frame latency under load %.0f ms, over 2x the quiet %.0f ms"
             % (loaded_ms, quiet_ms))
    log("OK")


if __name__ == "__main__":
    try:
        main()
    except ClientError as e:
        fail(str(e))
