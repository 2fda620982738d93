#!/usr/bin/python3
"""Reference outputs for the image tests, computed with Debian's python3-opencv.

Usage: /usr/bin/python3 tools/gen_image_refs.py OUT_DIR

Writes .npy files that the C tests compare against:
  resize_<case>_src.npy / resize_<case>_dst.npy  cv2.resize(src, (w, h), INTER_CUBIC), uint8 HxWx3
  face_<case>_frame.npy     uint8 frame (BGR), face_<case>_rect.npy [x1, y1, x2, y2]
  face_<case>_crop.npy      the 328x328 crop, as the reference inference computes it
  face_<case>_input.npy     the [6, 320, 320] float32 model input (roi, masked) / 255
  face_<case>_out.npy       a [3, 320, 320] float32 model output (values outside [0, 1] too)
  face_<case>_composite.npy the frame with that output composited back
  avatar_video.avi + avatar_video_frames.npy  a short lossless video and its frames
"""
import os
import sys

import cv2
import numpy as np


def save(out, name, arr):
    np.save(os.path.join(out, name + ".npy"), arr)


def test_image(rng, h, w, kind):
    """Noise exercises every rounding path; a smooth image looks like a face crop."""
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [127 + 110 * np.sin(xx / (6.0 + c) + c) * np.cos(yy / (8.0 + c)) for c in range(3)]
    img = np.stack(chans, -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


RESIZE_CASES = [
    # name, src (w, h), dst (w, h), kind
    ("up182", (182, 182), (328, 328), "noise"),
    ("up183x181", (183, 181), (328, 328), "smooth"),
    ("down182", (328, 328), (182, 182), "noise"),
    ("down183x181", (328, 328), (183, 181), "smooth"),
    ("odd97x301", (328, 328), (97, 301), "noise"),
    ("tiny", (5, 3), (328, 328), "noise"),
    ("same", (64, 48), (64, 48), "noise"),
]

FACE_CASES = [
    # name, frame (w, h), rect
    ("r182", (640, 360), (300, 90, 482, 272)),
    ("r183x181", (640, 360), (11, 170, 194, 351)),
]


def model_input(crop):
    """SyncTalk_2D inference: roi = crop[4:324, 4:324], masked = filled rectangle, / 255."""
    roi = crop[4:324, 4:324].copy()
    masked = cv2.rectangle(roi.copy(), (5, 5, 310, 305), (0, 0, 0), -1)
    roi = roi.transpose(2, 0, 1).astype(np.float32)
    masked = masked.transpose(2, 0, 1).astype(np.float32)
    return np.concatenate([roi / 255.0, masked / 255.0], axis=0).astype(np.float32)


def composite(frame, rect, crop, out):
    x1, y1, x2, y2 = rect
    pred = (np.clip(out.transpose(1, 2, 0), 0, 1) * np.float32(255)).astype(np.uint8)
    work = crop.copy()
    work[4:324, 4:324] = pred
    work = cv2.resize(work, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
    res = frame.copy()
    res[y1:y2, x1:x2] = work
    return res


def write_video(out, rng):
    frames = [test_image(rng, 48, 64, "smooth") for _ in range(6)]
    for i, f in enumerate(frames):  # visible motion between frames
        frames[i] = np.roll(f, i * 3, axis=1)
    path = os.path.join(out, "avatar_video.avi")
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), 25, (64, 48))
    if not vw.isOpened():
        sys.exit("cannot write " + path)
    for f in frames:
        vw.write(f)
    vw.release()
    save(out, "avatar_video_frames", np.stack(frames))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20251123)
    for name, (sw, sh), (dw, dh), kind in RESIZE_CASES:
        src = test_image(rng, sh, sw, kind)
        save(out, "resize_%s_src" % name, src)
        save(out, "resize_%s_dst" % name, cv2.resize(src, (dw, dh), interpolation=cv2.INTER_CUBIC))
    for name, (fw, fh), rect in FACE_CASES:
        frame = test_image(rng, fh, fw, "smooth")
        x1, y1, x2, y2 = rect
        crop = cv2.resize(frame[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
        out_t = rng.uniform(-0.2, 1.2, (3, 320, 320)).astype(np.float32)
        save(out, "face_%s_frame" % name, frame)
        save(out, "face_%s_rect" % name, np.array(rect, dtype=np.int32))
        save(out, "face_%s_crop" % name, crop)
        save(out, "face_%s_input" % name, model_input(crop))
        save(out, "face_%s_out" % name, out_t)
        save(out, "face_%s_composite" % name, composite(frame, rect, crop, out_t))
    write_video(out, rng)
    open(os.path.join(out, "stamp"), "w").write("ok\n")


if __name__ == "__main__":
    main()
