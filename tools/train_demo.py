#!/usr/bin/python3
"""Trains the demo's SyncTalk_2D model (1/4 width) on the synthetic talking face.

usage: train_demo.py --lipsync build/lipsync --data DATA_DIR --out MODEL_OUT [--steps N]
  DATA_DIR  clips from `talking_face.py dataset` (speech.wav, frames/, crop_rects.json)
  MODEL_OUT becomes a model directory `lipsync render` runs: unet.onnx and
            audio_encoder.onnx (opset 11, dynamic batch), the talking face's
            avatar/, model.json, training.json (steps, losses, time, seed) and
            checkpoint.pth (the torch state dicts)

Training sees exactly what inference sees:
- audio: the mel windows come from `lipsync mel --windows` (the project's own
  front end), and frame k's features are rows F[k-8 .. k+7] of
  F = [E0, E0, E1, .., E(N-1), E(N-1)] with zero rows outside, as
  pipeline/features.h assembles them;
- image: the crop is built as avatar/painter builds it (cubic resize of the
  crop rectangle to 328, inner 320); channels 0-2 are the avatar's own frame
  (closed mouth, what the renderer gives the UNet), channels 3-5 the target
  frame with rows 5..309 and columns 5..314 zeroed; the target is the frame
  with the right mouth.
Losses: L1 on the crop plus a heavier L1 on the mouth box. Fixed seed; torch
on the CPU (Debian's python3-torch), 2 threads, bf16 autocast by default
(weights and the export stay fp32).
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import cv2
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import talking_face as tf  # noqa: E402
from synctalk_model import AudioEncoder, Model, n_params  # noqa: E402

SEED = 20261203
WIDTH = 0.25
MOUTH_WEIGHT = 4.0
AUX_WEIGHT = 1.0


def face_roi(frame, rect):
    """The model's 320x320 view of a frame: avatar/painter's crop, cubic 328, inner 320."""
    x1, y1, x2, y2 = rect
    crop = cv2.resize(frame[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
    return crop[4:324, 4:324]


def masked(roi):
    m = roi.copy()
    m[5:310, 5:315] = 0
    return m


def mel_windows(lipsync, wav):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, 'win.npy')
        subprocess.run([lipsync, 'mel', wav, '--windows', out], check=True,
                       stdout=subprocess.DEVNULL)
        return np.load(out)[:, 0]  # [N, 80, 16]


def feature_rows(k, n_windows):
    """Window index of each of frame k's 16 feature rows (-1: zero row)."""
    rows = []
    for j in range(k - 8, k + 8):
        if j < 0 or j > n_windows + 1:
            rows.append(-1)
        elif j == 0:
            rows.append(0)
        else:
            rows.append(min(j - 1, n_windows - 1))
    return rows


def load_clips(lipsync, data_dir):
    clips = []
    for d in tqdm(sorted(glob.glob(os.path.join(data_dir, 'clip_*'))), desc='loading clips'):
        win = mel_windows(lipsync, os.path.join(d, 'speech.wav'))
        with open(os.path.join(d, 'crop_rects.json')) as f:
            rects = json.load(f)
        n = min(len(rects), len(win) + 2)
        rois = np.stack([face_roi(cv2.imread(os.path.join(d, 'frames', 'frame_%04d.jpg' % k)),
                                  rects[k]) for k in range(n)])
        vis = np.load(os.path.join(d, 'visemes.npy'))[:n]
        clips.append({'win': win.astype(np.float32), 'rois': rois, 'visemes': vis,
                      'avatar': [tf.pingpong(tf.N_AVATAR_FRAMES, k) for k in range(n)]})
    return clips


def to_tensor(bgr):
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] / 255, as face.c scales."""
    t = torch.from_numpy(np.ascontiguousarray(bgr)).float() / 255.0
    return t.movedim(-1, -3)


class Batcher:
    def __init__(self, clips, avatar_rois, rng):
        self.clips, self.avatar, self.rng = clips, avatar_rois, rng
        self.index = [(c, k) for c, clip in enumerate(clips) for k in range(len(clip['rois']))]

    def batch(self, size):
        picks = [self.index[i] for i in self.rng.choice(len(self.index), size, replace=False)]
        vis, tgt, mels, rows, params = [], [], [], [], []
        for c, k in picks:
            clip = self.clips[c]
            roi = clip['rois'][k]
            ref = self.avatar[clip['avatar'][k]]
            vis.append(np.concatenate([ref, masked(roi)], axis=2))
            tgt.append(roi)
            params.append(clip['visemes'][k])
            base = len(mels)
            nw = len(clip['win'])
            for r in feature_rows(k, nw):
                rows.append(-1 if r < 0 else base + r)
            mels.append(clip['win'])
        mel = torch.from_numpy(np.concatenate(mels))[:, None]
        return (to_tensor(np.stack(vis)), to_tensor(np.stack(tgt)), mel, torch.tensor(rows),
                torch.from_numpy(np.stack(params)))


def features(enc, mel, rows):
    """[B,32,16,16] audio input: the encoder output of each row's window, zero
    rows where the index is -1. Every row is encoded (duplicates too), so the
    encoder sees one batch shape and oneDNN keeps its kernels."""
    e = enc(mel[rows.clamp(min=0)])
    e = e * (rows >= 0).to(e.dtype)[:, None]
    return e.reshape(-1, 16 * 512).view(-1, 32, 16, 16)


def init_copy_path(unet):
    """Starts the UNet as a copy of its reference channels (0-2) to its output.

    Training from scratch spends most of its steps learning to reproduce the
    face; on 2 CPU cores that leaves no time to learn the mouth. So the
    full-resolution path is built to pass the reference through: inc copies
    channels 0-2 into x1, up5 copies them from its skip input, and outc maps
    them back through the sigmoid with a linear fit of the logit on [0.1, 0.9].
    The deep path's contributions to those channels start at zero (Fixup
    style): their weights get gradients at once and learn what the mouth
    needs. The BatchNorms of inc and up5 stay in inference mode (a learnable
    per-channel affine), so the batch statistics cannot undo the copy.
    """
    with torch.no_grad():
        def copy_ir(ir, src):
            expand, dw, project = ir.conv[0], ir.conv[3], ir.conv[6]
            for c in range(3):
                expand.weight[c].zero_()
                expand.weight[c, src + c] = 1.0
                dw.weight[c].zero_()
                dw.weight[c, 0, 1, 1] = 1.0
                project.weight[c].zero_()
                project.weight[c, c] = 1.0
        copy_ir(unet.inc, 0)
        copy_ir(unet.up5.conv.double_conv[0], unet.up4.conv.double_conv[1].conv[6].out_channels)
        unet.up5.conv.double_conv[1].conv[7].weight.zero_()  # residual branch starts at 0
        unet.outc.weight.zero_()
        for c in range(3):
            unet.outc.weight[c, c] = 4.8
        unet.outc.bias.fill_(-2.4)
    return [unet.inc, unet.up5]


def train_mode(unet, enc, frozen_bn):
    unet.train()
    enc.train()
    for module in frozen_bn:
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()


def mouth_box():
    """The mouth box in the 320 crop (rows, columns), from the generator's geometry."""
    x1, y1, x2, y2 = tf.BASE_RECT
    s = 328.0 / (x2 - x1)
    cx = (tf.MOUTH_CX - x1) * s - 4
    cy = (tf.MOUTH_CY - y1) * s - 4
    hw = tf.MOUTH_HALF_W * 1.3 * s
    return (int(cy - 12 * s), int(cy + tf.MAX_OPEN * 1.4 * s), int(cx - hw), int(cx + hw))


def export(model, args, path, in_names, out_name):
    dyn = {n: {0: 'batch'} for n in in_names}
    dyn[out_name] = {0: 'batch'}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, args, path, opset_version=11, input_names=in_names,
                          output_names=[out_name], dynamic_axes=dyn, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def save(unet, enc, batcher, out, lipsync=None):
    """Exports both networks in eval mode (BatchNorm with its running
    statistics); with lipsync, runs both exports on the project's engine and
    returns the largest difference to torch."""
    os.makedirs(out, exist_ok=True)
    unet.eval()
    enc.eval()
    unet.to(memory_format=torch.contiguous_format)
    vis, _, mel, rows, _ = batcher.batch(2)
    with torch.no_grad():
        aud = features(enc, mel, rows)
        want_unet = unet(vis, aud).numpy()
        want_enc = enc(mel[:2]).numpy()
    export(unet, (vis, aud), os.path.join(out, 'unet.onnx'), ['input', 'audio'], 'output')
    export(enc, (mel[:1],), os.path.join(out, 'audio_encoder.onnx'), ['mel'], 'features')
    if not lipsync:
        return None
    diffs = {}
    with tempfile.TemporaryDirectory() as d:
        def npy(name, a):
            np.save(os.path.join(d, name), np.ascontiguousarray(a, np.float32))
            return os.path.join(d, name)
        for name, model, inputs, want in (
                ('unet', 'unet.onnx', ['input=' + npy('v.npy', vis.numpy()),
                                       'audio=' + npy('a.npy', aud.numpy())], want_unet),
                ('encoder', 'audio_encoder.onnx', ['mel=' + npy('m.npy', mel[:2].numpy())],
                 want_enc)):
            got = os.path.join(d, name + '_out.npy')
            subprocess.run([lipsync, 'infer', os.path.join(out, model)] + inputs + ['-o', got],
                           check=True, stdout=subprocess.DEVNULL)
            diffs[name] = float(np.abs(np.load(got) - want).max())
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lipsync', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=1400)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--snapshot-every', type=int, default=0,
                    help='also export the networks every N steps into OUT/step_N')
    ap.add_argument('--precision', choices=['bf16', 'fp32'], default='bf16',
                    help='autocast precision of the training steps (weights stay fp32); bf16 '
                         'is 5x faster where the CPU has AVX-512 BF16 or AMX')
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)

    clips = load_clips(args.lipsync, args.data)
    face = tf.Face()
    still = face.mouth(np.zeros(len(tf.PARAMS), np.float32))
    avatar = [face_roi(face.window(still, *tf.head_motion(i)), tf.crop_rect(i))
              for i in range(tf.N_AVATAR_FRAMES)]
    batcher = Batcher(clips, avatar, rng)
    r0, r1, c0, c1 = mouth_box()

    unet = Model(6, 'ave', WIDTH)
    frozen_bn = init_copy_path(unet)
    unet = unet.to(memory_format=torch.channels_last)
    enc = AudioEncoder(WIDTH)
    # An auxiliary head: the audio features must predict the frame's mouth
    # parameters, which gives the encoder a direct signal from the first step
    # (not exported).
    aux = torch.nn.Linear(16 * 512, len(tf.PARAMS))
    print('UNet %d parameters, encoder %d; %d clips, %d frames; mouth box rows %d..%d cols %d..%d'
          % (n_params(unet), n_params(enc), len(clips), len(batcher.index), r0, r1, c0, c1))
    params = list(unet.parameters()) + list(enc.parameters()) + list(aux.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    warm = 50

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        p = (step - warm) / max(1, args.steps - warm)
        return 1e-4 + (args.lr - 1e-4) * 0.5 * (1 + math.cos(math.pi * p))

    t0 = time.time()
    losses = []
    train_mode(unet, enc, frozen_bn)
    bar = tqdm(range(args.steps), desc='training')
    for step in bar:
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        vis, tgt, mel, rows, vis_params = batcher.batch(args.batch)
        vis = vis.contiguous(memory_format=torch.channels_last)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.precision == 'bf16'):
            feats = features(enc, mel, rows)
            pred = unet(vis, feats).float()
            guess = aux(feats.reshape(len(vis), -1)).float()
        loss_all = F.l1_loss(pred, tgt)
        loss_mouth = F.l1_loss(pred[:, :, r0:r1, c0:c1], tgt[:, :, r0:r1, c0:c1])
        loss_aux = F.mse_loss(guess, vis_params)
        loss = loss_all + MOUTH_WEIGHT * loss_mouth + AUX_WEIGHT * loss_aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append([float(loss_all), float(loss_mouth), float(loss_aux)])
        if step % 10 == 0:
            recent = np.mean(losses[-50:], axis=0)
            bar.set_postfix(l1='%.4f' % recent[0], mouth='%.4f' % recent[1],
                            aux='%.4f' % recent[2])
        if args.snapshot_every and (step + 1) % args.snapshot_every == 0 and step + 1 < args.steps:
            save(unet, enc, batcher, os.path.join(args.out, 'step_%d' % (step + 1)))
            train_mode(unet, enc, frozen_bn)
            unet.to(memory_format=torch.channels_last)
    train_s = time.time() - t0
    diffs = save(unet, enc, batcher, args.out, args.lipsync)
    torch.save({'unet': unet.state_dict(), 'encoder': enc.state_dict()},
               os.path.join(args.out, 'checkpoint.pth'))
    print('engine vs torch on the exports: UNet max |diff| %.2e, encoder %.2e'
          % (diffs['unet'], diffs['encoder']))
    tf.write_avatar(face, os.path.join(args.out, 'avatar'))
    with open(os.path.join(args.out, 'model.json'), 'w') as f:
        json.dump({'name': 'demo-talking-face', 'unet': 'unet.onnx',
                   'encoder': 'audio_encoder.onnx', 'avatar': 'avatar', 'fps': 25, 'batch': 8,
                   'note': 'SyncTalk_2D 1/4 width trained on tools/talking_face.py data'}, f,
                  indent=2)
    with open(os.path.join(args.out, 'training.json'), 'w') as f:
        json.dump({'seed': SEED, 'width': WIDTH, 'steps': args.steps, 'batch': args.batch,
                   'precision': args.precision,
                   'lr': args.lr, 'train_seconds': round(train_s, 1),
                   'clips': len(clips), 'frames': len(batcher.index),
                   'final_l1': float(np.mean(losses[-50:], axis=0)[0]),
                   'final_mouth_l1': float(np.mean(losses[-50:], axis=0)[1]),
                   'engine_vs_torch_max_abs': diffs,
                   'torch': torch.__version__}, f, indent=1)
    print('trained %d steps in %.0f s; exported to %s' % (args.steps, train_s, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
