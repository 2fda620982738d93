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

The client is lsclient.py's (Python's standard library only).
"""
import json
import os
import signal
import sys
import time

from lsclient import WAIT_S, WS, ClientError, Stream, audio, health, http


def fail(msg):
    print("lb_drain: FAIL: " + msg, flush=True)
    sys.exit(1)


def log(msg):
    print("lb_drain: " + msg, flush=True)


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
    try:
        main()
    except ClientError as e:
        fail(str(e))
