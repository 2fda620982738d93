#!/usr/bin/python3
"""Builds a demo model directory.

The demo (default): the SyncTalk_2D model (1/4 width) that tools/train_demo.py
trained on the synthetic talking face of tools/talking_face.py, whose weights
the repository ships in models/demo/, with its avatar: the public-domain NASA
portrait of Eileen Collins that Debian's python3-skimage ships
(skimage/data/astronaut.png), upscaled 2x, mouth closed, with a small head
motion over 50 frames and the crop rectangle following the face.

The test astronaut (--models): the same portrait at its own size with the
full-size UNet and audio encoder of tools/gen_test_models.py: seeded random,
UNTRAINED weights (the mouth region shows the model's raw output). The engine
and pipeline tests and the speed benchmarks use it: it has the real model's
cost.

usage: make_demo.py --out DEMO_DIR [--weights models/demo]
       make_demo.py --out DIR --models MODELS_DIR
  MODELS_DIR holds unet_op11.onnx and encoder_op11.onnx (gen_test_models.py)
  DEMO_DIR / DIR receive model.json, unet.onnx, audio_encoder.onnx and avatar/
  (frames/frame_%04d.png + crop_rects.json): a model directory `lipsync render` runs.
"""
import argparse
import json
import math
import os
import shutil
import sys

import cv2
import numpy as np
import skimage.data

HERE = os.path.dirname(os.path.abspath(__file__))
N_FRAMES = 50
# Mouth-region square of the still portrait (x1, y1, x2, y2): eye level to
# below the chin, as SyncTalk_2D's landmark rule places it.
BASE_RECT = (178, 100, 274, 196)


def test_avatar(out):
    frames_dir = os.path.join(out, "avatar", "frames")
    os.makedirs(frames_dir, exist_ok=True)
    portrait = skimage.data.astronaut()[:, :, ::-1]  # RGB -> BGR, as OpenCV writes
    h, w = portrait.shape[:2]
    rects = []
    for i in range(N_FRAMES):
        t = i / N_FRAMES
        dx = int(round(3.0 * math.sin(2 * math.pi * t)))
        dy = int(round(2.0 * math.sin(4 * math.pi * t + 0.5)))
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frame = cv2.warpAffine(portrait, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(os.path.join(frames_dir, "frame_%04d.png" % i), frame)
        x1, y1, x2, y2 = BASE_RECT
        rects.append([x1 + dx, y1 + dy, x2 + dx, y2 + dy])
    with open(os.path.join(out, "avatar", "crop_rects.json"), "w") as f:
        json.dump(rects, f)
    return w, h


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default=os.path.join(HERE, "..", "models", "demo"),
                    help="the trained demo's unet.onnx and audio_encoder.onnx (default models/demo)")
    ap.add_argument("--models", help="build the test astronaut from these test models instead")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    if args.models:
        w, h = test_avatar(args.out)
        src = (os.path.join(args.models, "unet_op11.onnx"), os.path.join(args.models, "encoder_op11.onnx"))
        model = {"name": "test-astronaut",
                 "note": "untrained full-size test weights: the mouth region shows the model's raw output"}
    else:
        sys.path.insert(0, HERE)
        import talking_face as tf

        tf.write_avatar(tf.Face(), os.path.join(args.out, "avatar"))
        w, h = tf.FRAME_W, tf.FRAME_H
        src = (os.path.join(args.weights, "unet.onnx"), os.path.join(args.weights, "audio_encoder.onnx"))
        model = {"name": "demo-talking-face",
                 "note": "SyncTalk_2D at 1/4 width trained on synthetic data (tools/talking_face.py, "
                         "tools/train_demo.py): it shows the path from audio to lips and its timing, "
                         "not photorealism"}
    shutil.copyfile(src[0], os.path.join(args.out, "unet.onnx"))
    shutil.copyfile(src[1], os.path.join(args.out, "audio_encoder.onnx"))
    model = {"name": model["name"], "unet": "unet.onnx", "encoder": "audio_encoder.onnx",
             "avatar": "avatar", "fps": 25, "batch": 8, "note": model["note"]}
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
    print("%s model directory: %s (%d avatar frames %dx%d)" % (model["name"], args.out, N_FRAMES, w, h))


if __name__ == "__main__":
    main()
