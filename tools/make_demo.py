#!/usr/bin/python3
"""Builds the built-in demo model directory.

The avatar is the public-domain NASA portrait of Eileen Collins that Debian's
python3-skimage ships (skimage/data/astronaut.png), animated with a small head
motion over 50 frames, with the crop rectangle following the face. The UNet
and audio encoder are the test models of tools/gen_test_models.py: seeded
random weights, UNTRAINED, so the mouth region shows the model's raw output.

usage: make_demo.py --models MODELS_DIR --out DEMO_DIR
  MODELS_DIR holds unet_op11.onnx and encoder_op11.onnx (gen_test_models.py)
  DEMO_DIR receives model.json, the two .onnx files and avatar/
  (frames/frame_%04d.png + crop_rects.json): a model directory `lipsync render` runs.
"""
import argparse
import json
import math
import os
import shutil

import cv2
import numpy as np
import skimage.data

N_FRAMES = 50
# Mouth-region square of the still portrait (x1, y1, x2, y2): eye level to
# below the chin, as SyncTalk_2D's landmark rule places it.
BASE_RECT = (178, 100, 274, 196)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    frames_dir = os.path.join(args.out, "avatar", "frames")
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
    with open(os.path.join(args.out, "avatar", "crop_rects.json"), "w") as f:
        json.dump(rects, f)

    shutil.copyfile(os.path.join(args.models, "unet_op11.onnx"), os.path.join(args.out, "unet.onnx"))
    shutil.copyfile(os.path.join(args.models, "encoder_op11.onnx"), os.path.join(args.out, "audio_encoder.onnx"))
    model = {
        "name": "demo-astronaut",
        "unet": "unet.onnx",
        "encoder": "audio_encoder.onnx",
        "avatar": "avatar",
        "fps": 25,
        "batch": 8,
        "note": "untrained test weights: the mouth region shows the model's raw output",
    }
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
    print("demo model directory: %s (%d avatar frames %dx%d)" % (args.out, N_FRAMES, w, h))


if __name__ == "__main__":
    main()
