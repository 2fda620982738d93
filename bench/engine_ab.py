#!/usr/bin/python3
"""engine_ab.py - lipsync's engine against itself in other settings (layout
policies, another build), runs interleaved, medians, throughput ratios.

    bench/engine_ab.py MODEL.onnx --batch B --precision fp32|bf16 \
        --side base='--layout blocked' --side new='--layout any' \
        [--lipsync build/lipsync] [--threads 2] [--warmup 3] [--runs 10]

Each --side NAME=ARGS starts one `lipsync bench engine MODEL --serve` child
with those extra arguments (a side may name another binary with
bin=PATH before its arguments: --side main='bin=/work/main/build/lipsync').
Every round runs each side once, 30 ms apart, the order rotating round by
round, so that load on shared cores falls on every side alike; the first
side is the peer every ratio is taken against (peer ms / side ms: above 1,
the side is faster). bench/run.sh does the same against ONNX Runtime; this
one needs nothing but the build.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def start(binary, model, a, extra):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)  # lipsync's own default (see src/cli/main.c)
    env.pop("GOMP_SPINCOUNT", None)
    cmd = [binary, "bench", "engine", model, "--batch", str(a.batch), "--threads", str(a.threads),
           "--precision", a.precision, "--serve"] + extra
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    for line in p.stdout:
        if line.strip() == "ready":
            return p
    sys.exit(f"engine_ab: {' '.join(cmd)} did not start")


def run_once(p):
    p.stdin.write("run\n")
    p.stdin.flush()
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "ms":
        sys.exit(f"engine_ab: unexpected answer {line}")
    return float(line[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--lipsync", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                       "lipsync"))
    ap.add_argument("--side", action="append", required=True)
    a = ap.parse_args()
    sides = []
    for s in a.side:
        name, _, rest = s.partition("=")
        extra = shlex.split(rest)
        binary = a.lipsync
        if extra and extra[0].startswith("bin="):
            binary = extra.pop(0)[4:]
        sides.append((name, start(binary, a.model, a, extra)))
    times = [[] for _ in sides]
    for r in range(a.warmup + a.runs):
        order = [(r + k) % len(sides) for k in range(len(sides))]
        for k in order:
            time.sleep(0.03)
            t = run_once(sides[k][1])
            if r >= a.warmup:
                times[k].append(t)
    for _, p in sides:
        p.stdin.write("quit\n")
        p.stdin.flush()
        p.wait()
    peer = statistics.median(times[0])
    print(f"{os.path.basename(a.model)} batch={a.batch} threads={a.threads} "
          f"precision={a.precision} runs={a.runs} load={os.getloadavg()[0]:.2f}")
    for (name, _), t in zip(sides, times):
        m = statistics.median(t)
        print(f"  {name:12s} median {m:8.1f} ms ({m / a.batch:7.1f} ms/item)  "
              f"ratio {peer / m:5.2f}x  min {min(t):8.1f} ms (ratio {min(times[0]) / min(t):5.2f}x)")


if __name__ == "__main__":
    main()
