#!/usr/bin/python3
"""Trains the demo's SyncTalk_2D model (1/4 width) on the synthetic talking face.

usage: train_demo.py --lipsync build/lipsync --data DATA_DIR --out MODEL_OUT
                     [--steps-a N] [--steps-b N] [--stage-a OUT/stage_a.pth]
  DATA_DIR  clips from `talking_face.py dataset` (speech.wav, frames/, crop_rects.json)
  MODEL_OUT becomes a model directory `lipsync render` runs: unet.onnx and
            audio_encoder.onnx (opset 11, dynamic batch), the talking face's
            avatar/, model.json, training.json (steps, losses, time, seed),
            stage_a.pth and checkpoint.pth (the torch state dicts)

Training sees exactly what inference sees:
- audio: the mel windows come from `lipsync mel --windows` (the project's own
  front end), and frame k's features are rows F[k-8 .. k+7] of
  F = [E0, E0, E1, .., E(N-1), E(N-1)] with zero rows outside, as
  pipeline/features.h assembles them;
- image: the crop is built as avatar/painter builds it (cubic resize of the
  crop rectangle to 328, inner 320), both image halves from the avatar's own
  frame (closed mouth) as the renderer builds them: channels 0-2 the crop,
  3-5 the crop with rows 5..309 and columns 5..314 zeroed; the target is the
  training frame with the right mouth.
How it trains in under an hour on 2 cores (two stages over a fixed image
path, the mouth learnt at 160x160 first) is told in "the UNet" below. Losses: L1 on the crop plus a heavier L1
on the mouth box, and the fused bottleneck's prediction of the frame's
mouth parameters. Fixed seed; torch on the CPU (Debian's python3-torch),
2 threads, bf16 autocast by default (weights and the export stay fp32); the
exports are checked against torch on the project's engine.
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
OUTSIDE_WEIGHT = 1.0   # stage A2: the painting's logit away from the mouth


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
    """Random training frames. The UNet's image input depends only on the
    avatar frame (the renderer builds both halves from it), so a batch is
    avatar indices, targets, and the feature rows of each frame's audio."""

    def __init__(self, clips, rng):
        self.clips, self.rng = clips, rng
        self.index = [(c, k) for c, clip in enumerate(clips) for k in range(len(clip['rois']))]

    def batch(self, size):
        picks = [self.index[i] for i in self.rng.choice(len(self.index), size, replace=False)]
        idx, tgt, mels, rows, params = [], [], [], [], []
        base = 0
        for c, k in picks:
            clip = self.clips[c]
            idx.append(clip['avatar'][k])
            tgt.append(clip['rois'][k])
            params.append(clip['visemes'][k])
            for r in feature_rows(k, len(clip['win'])):
                rows.append(-1 if r < 0 else base + r)
            mels.append(clip['win'])
            base += len(clip['win'])
        mel = torch.from_numpy(np.concatenate(mels))[:, None]
        return (torch.tensor(idx), to_tensor(np.stack(tgt)), mel, torch.tensor(rows),
                torch.from_numpy(np.stack(params)))


def features(enc, mel, rows):
    """[B,32,16,16] audio input: the encoder output of each row's window, zero
    rows where the index is -1 (pipeline/features.h's edge rule)."""
    used, inverse = torch.unique(rows.clamp(min=0), return_inverse=True)
    e = enc(mel[used])[inverse]
    e = e * (rows >= 0).to(e.dtype)[:, None]
    return e.reshape(-1, 16 * 512).view(-1, 32, 16, 16)


# ------------------------------------------------------------------ the UNet
#
# Learning the mouth end to end through the full-resolution UNet takes far
# more steps than 2 cores give in an hour: the audio enters at the 10x10
# bottleneck, and its gradient reaches the output only through five narrow
# upsampling stages that first have to learn to carry anything (1,000 steps
# of that left the mouth closed). So training goes in two stages over a
# fixed image path:
#
# - The image half (inc, down1..down5) is fixed: inc copies the reference
#   image (channels 0-2) into x1 beside random features, and the random
#   down path is only calibrated (BatchNorm statistics over the avatar's
#   frames). Its outputs depend only on the avatar frame (the renderer
#   builds both image halves from it), so they are computed once.
# - Stage A trains the audio path, fuse_conv and up1..up4 to paint the mouth
#   at 160x160: a 1x1 head on up4's output adds to the logit of the
#   reference, and the loss compares with the target pooled 2x2. Nothing
#   runs at 320x320, so a step costs a fraction of a full one.
# - Then up5 and outc are built so that the network's output is
#   sigmoid(logit(ref) + head(up4)) upsampled: up5's hidden ReLU channels
#   hold the reference (a piecewise-linear logit over 7 knots, within 1.6/255
#   of a copy) and the head's output as a signed pair per colour.
# - Stage B trains up5 and outc at full resolution to sharpen that.

N_KNOTS = 7
ENCODER_HALF = ('inc', 'down1', 'down2', 'down3', 'down4', 'down5')


def set_identity_bn(bn, channels, bias=None):
    with torch.no_grad():
        for i, c in enumerate(channels):
            bn.running_mean[c] = 0.0
            bn.running_var[c] = 1.0 - bn.eps
            bn.weight[c] = 1.0
            bn.bias[c] = 0.0 if bias is None else float(bias[i])


def fit_logit():
    """logit(x) on [0, 1] as c0 + c1 x + sum_k a_k relu(x - t_k): the knots t
    and coefficients with the smallest error after the sigmoid."""
    x = np.linspace(0, 1, 2001)
    xc = np.clip(x, 0.002, 0.998)
    want = np.log(xc / (1 - xc))
    t = 1 / (1 + np.exp(-np.linspace(-3, 3, N_KNOTS)))
    basis = np.stack([np.ones_like(x), x] + [np.maximum(x - k, 0) for k in t], 1)
    w = np.sqrt(xc * (1 - xc))
    for _ in range(30):
        coef = np.linalg.lstsq(basis * w[:, None], want * w, rcond=None)[0]
        err = 1 / (1 + np.exp(-basis @ coef)) - x
        w = w * np.sqrt(np.abs(err) / np.abs(err).mean() + 0.1)
    return t, coef, float(np.abs(err).max())


def pl_logit(x, fit):
    t, coef, _ = fit
    z = coef[0] + coef[1] * x
    for k, tk in enumerate(t):
        z = z + coef[2 + k] * torch.relu(x - float(tk))
    return z


def init_copy_path(unet):
    """inc copies channels 0-2 into x1 (BatchNorms as identities); up5's
    residual branch and outc's deep channel start at 0, outc's colours at 1."""
    with torch.no_grad():
        ir = unet.inc
        expand, dw, project = ir.conv[0], ir.conv[3], ir.conv[6]
        for c in range(3):
            expand.weight[c].zero_()
            expand.weight[c, c] = 1.0
            dw.weight[c].zero_()
            dw.weight[c, 0, 1, 1] = 1.0
            project.weight[c].zero_()
            project.weight[c, c] = 1.0
        for bn in (ir.conv[1], ir.conv[4], ir.conv[7]):
            set_identity_bn(bn, range(3))
        unet.up5.conv.double_conv[1].conv[7].weight.zero_()
        unet.up5.conv.double_conv[1].conv[7].bias.zero_()
        unet.outc.weight.zero_()
        for c in range(3):
            unet.outc.weight[c, c] = 1.0
        unet.outc.bias.zero_()


def calibrate(modules, inputs):
    """BatchNorm statistics of `modules` over `inputs` (a cumulative average),
    then inference mode."""
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for x in inputs:
            x()
    for bn in bns:
        bn.momentum = 0.1
        bn.eval()


def encode_avatar(unet, avatar_rois):
    """x1..x6 of every avatar frame (the fixed image half)."""
    for name in ENCODER_HALF:
        getattr(unet, name).eval()
    vis = to_tensor(np.stack([np.concatenate([r, masked(r)], axis=2) for r in avatar_rois]))

    def half(x):
        x1 = unet.inc(x)
        x2 = unet.down1(x1)
        x3 = unet.down2(x2)
        x4 = unet.down3(x3)
        x5 = unet.down4(x4)
        return [x1, x2, x3, x4, x5, unet.down5(x5)]

    calibrate([getattr(unet, n) for n in ENCODER_HALF[1:]],
              [lambda i=i: half(vis[i:i + 10]) for i in range(0, len(vis), 10)])
    for p in (q for n in ENCODER_HALF for q in getattr(unet, n).parameters()):
        p.requires_grad_(False)
    with torch.no_grad():
        return vis, half(vis)


def decode(unet, skips, audio, depth=5):
    """The UNet's decoder from the cached image half; depth 4 stops at up4.
    Returns the fused bottleneck and the last map."""
    x1, x2, x3, x4, x5, x6 = skips
    fused = unet.fuse_conv(torch.cat([x6, unet.audio_model(audio)], dim=1))
    x = unet.up1(fused, x5)
    x = unet.up2(x, x4)
    x = unet.up3(x, x3)
    x = unet.up4(x, x2)
    if depth == 4:
        return fused, x
    return fused, torch.sigmoid(unet.outc(unet.up5(x, x1)))


def build_output_path(unet, head, fit):
    """up5's first block computes logit(ref) + head(up4): hidden ReLU channels
    0-2 hold the reference (from x1, after the upsampled channels), 3-8 the
    head's output as signed pairs, 9.. the logit's knots; the projection sums
    them into output channels 0-2, and outc passes those on."""
    t, coef, _ = fit
    ir = unet.up5.conv.double_conv[0]
    expand, dw, project = ir.conv[0], ir.conv[3], ir.conv[6]
    c4 = head.weight.shape[1]
    w, b = head.weight.detach()[:, :, 0, 0], head.bias.detach()
    assert expand.weight.shape[0] >= 9 + 3 * len(t)
    with torch.no_grad():
        def hidden(j, src_weights, bias):
            expand.weight[j].zero_()
            expand.weight[j, :, 0, 0] = src_weights
            dw.weight[j].zero_()
            dw.weight[j, 0, 1, 1] = 1.0
            set_identity_bn(ir.conv[1], [j], [bias])
            set_identity_bn(ir.conv[4], [j])
        n_in = expand.weight.shape[1]
        for c in range(3):
            ref = torch.zeros(n_in)
            ref[c4 + c] = 1.0
            project.weight[c].zero_()
            hidden(c, ref, 0.0)
            project.weight[c, c] = float(coef[1])
            for j, sign in ((3 + 2 * c, 1.0), (4 + 2 * c, -1.0)):
                src = torch.zeros(n_in)
                src[:c4] = sign * w[c]
                hidden(j, src, sign * float(b[c]))
                project.weight[c, j] = sign
            for k, tk in enumerate(t):
                j = 9 + 3 * k + c
                hidden(j, ref, -float(tk))
                project.weight[c, j] = float(coef[2 + k])
        set_identity_bn(ir.conv[7], range(3), [float(coef[0])] * 3)


def openness_r(pred, ref, jaw, box):
    """Pearson r over a batch between the predicted mouth's change from the
    reference (closed) and the ground-truth jaw: > 0 once the UNet uses audio."""
    r0, r1, c0, c1 = box
    d = (pred[:, :, r0:r1, c0:c1] - ref[:, :, r0:r1, c0:c1]).abs().mean(dim=(1, 2, 3))
    d, jaw = d.detach().double().numpy(), jaw.double().numpy()
    if d.std() < 1e-12 or jaw.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(d, jaw)[0, 1])


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


def save(unet, enc, sample, out, lipsync=None):
    """Exports both networks in eval mode (BatchNorm with its running
    statistics); with lipsync, runs both exports on the project's engine and
    returns the largest difference to torch."""
    os.makedirs(out, exist_ok=True)
    unet.eval()
    enc.eval()
    vis, mel, rows = sample
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


def lr_schedule(base, steps, warm):
    def at(step):
        if step < warm:
            return base * (step + 1) / warm
        p = (step - warm) / max(1, steps - warm)
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))
    return at


def run_stage(name, steps, lr, params, step_fn, log, checkpoint=None, every=250):
    """Adam over `params` with warm-up and cosine decay; step_fn() returns
    (loss, dict of figures to show). checkpoint(step), if given, runs every
    `every` steps, so an interrupted run leaves its weights behind."""
    opt = torch.optim.Adam(params, lr=lr)
    at = lr_schedule(lr, steps, min(100, steps // 10 + 1))
    shown = []
    bar = tqdm(range(steps), desc=name)
    for step in bar:
        for g in opt.param_groups:
            g['lr'] = at(step)
        loss, figures = step_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        shown.append(figures)
        if step % 10 == 0 or step == steps - 1:
            recent = {k: float(np.mean([f[k] for f in shown[-50:]])) for k in figures}
            bar.set_postfix({k: '%.4f' % v for k, v in recent.items()})
        if checkpoint and step % every == every - 1 and step != steps - 1:
            checkpoint(step + 1)
    recent = {k: float(np.mean([f[k] for f in shown[-50:]])) for k in (shown or [{}])[-1]}
    log[name] = dict(recent, steps=steps)
    return recent


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lipsync', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps-a', type=int, default=2000, help='stage A steps (160x160)')
    ap.add_argument('--batch-a', type=int, default=32)
    ap.add_argument('--lr-a', type=float, default=2e-3)
    ap.add_argument('--steps-a2', type=int, default=150,
                    help='stage A2 steps (stage A with the painting held at zero away from the '
                         'mouth)')
    ap.add_argument('--lr-a2', type=float, default=3e-4)
    ap.add_argument('--steps-b', type=int, default=0, help='stage B steps (full size)')
    ap.add_argument('--batch-b', type=int, default=4)
    ap.add_argument('--lr-b', type=float, default=3e-4)
    ap.add_argument('--stage-a', metavar='PTH',
                    help='start from this stage A checkpoint (OUT/stage_a.pth of an earlier run '
                         'with the same data and seed) instead of training stage A; stage A2 '
                         'still runs')
    ap.add_argument('--precision', choices=['bf16', 'fp32'], default='bf16',
                    help='autocast precision of the training steps (weights stay fp32); bf16 '
                         'is 5x faster where the CPU has AVX-512 BF16 or AMX')
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)
    autocast = lambda: torch.autocast('cpu', dtype=torch.bfloat16,  # noqa: E731
                                      enabled=args.precision == 'bf16')

    clips = load_clips(args.lipsync, args.data)
    face = tf.Face()
    still = face.mouth(np.zeros(len(tf.PARAMS), np.float32))
    avatar = [face_roi(face.window(still, *tf.head_motion(i)), tf.crop_rect(i))
              for i in range(tf.N_AVATAR_FRAMES)]
    batcher = Batcher(clips, rng)
    box = mouth_box()
    r0, r1, c0, c1 = box

    t0 = time.time()
    unet = Model(6, 'ave', WIDTH)
    init_copy_path(unet)
    enc = AudioEncoder(WIDTH)
    avatar_vis, skips = encode_avatar(unet, avatar)
    # The decoder's depthwise convs and BatchNorms are memory-bound: in
    # channels-last they run 1.6x faster (torch's oneDNN path, bf16 on 2
    # cores); the weights go back to the plain layout before the export.
    skips = [s.contiguous(memory_format=torch.channels_last) for s in skips]
    unet.to(memory_format=torch.channels_last)
    refs = avatar_vis[:, :3]
    fit = fit_logit()
    with torch.no_grad():
        ref_logit = pl_logit(F.avg_pool2d(refs, 2), fit)
    c4 = unet.up4.conv.double_conv[1].conv[6].out_channels
    cf = unet.fuse_conv[1].double_conv[1].conv[6].out_channels
    head = torch.nn.Conv2d(c4, 3, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    # The fused bottleneck's cells over the mouth must predict the frame's
    # mouth parameters: a direct signal for the audio path from the first step.
    viseme_head = torch.nn.Conv2d(cf, len(tf.PARAMS), 1)
    cells = (slice(r0 * 10 // 320, -(-r1 * 10 // 320)), slice(c0 * 10 // 320, -(-c1 * 10 // 320)))
    print('UNet %d parameters, encoder %d; %d clips, %d frames; mouth box rows %d..%d cols %d..%d'
          % (n_params(unet), n_params(enc), len(clips), len(batcher.index), r0, r1, c0, c1))

    def viseme_loss(fused, params):
        return F.mse_loss(viseme_head(fused[:, :, cells[0], cells[1]].float()).mean(dim=(2, 3)),
                          params)

    def mouth_l1(pred, tgt, k=1):
        m = (slice(None), slice(None), slice(r0 // k, r1 // k), slice(c0 // k, c1 // k))
        return F.l1_loss(pred[m], tgt[m])

    log = {}
    stage_a = [enc, unet.audio_model, unet.fuse_conv, unet.up1, unet.up2, unet.up3, unet.up4]
    for m in stage_a:
        m.train()

    # Away from the mouth (the box with a margin, more below it for the jaw)
    # the painting must stay zero whatever the audio: after stage A, voices
    # never heard in training made it paint lip colour on the cheek, which
    # the L1 through the sigmoid had not held down.
    away = torch.ones(1, 1, 160, 160)
    away[:, :, max(0, r0 // 2 - 8):r1 // 2 + 20, max(0, c0 // 2 - 12):c1 // 2 + 12] = 0

    def step_a(outside_weight=0.0, aux_weight=AUX_WEIGHT):
        idx, tgt, mel, rows, params = batcher.batch(args.batch_a)
        tgt2 = F.avg_pool2d(tgt, 2)
        with autocast():
            fused, u4 = decode(unet, [None] + [s[idx] for s in skips[1:]],
                               features(enc, mel, rows), depth=4)
        painting = head(u4.float())
        pred = torch.sigmoid(ref_logit[idx] + painting)
        l1, mouth, vl = F.l1_loss(pred, tgt2), mouth_l1(pred, tgt2, 2), viseme_loss(fused, params)
        outside = (painting.abs() * away).sum() / (away.sum() * painting.shape[0] * 3)
        r = openness_r(pred, F.avg_pool2d(refs[idx], 2), params[:, 0],
                       (r0 // 2, r1 // 2, c0 // 2, c1 // 2))
        return (l1 + MOUTH_WEIGHT * mouth + aux_weight * vl + outside_weight * outside,
                {'l1': float(l1), 'mouth': float(mouth), 'visemes': float(vl),
                 'outside': float(outside), 'r': r})

    params_a = [p for m in stage_a for p in m.parameters()] + list(head.parameters()) + \
        list(viseme_head.parameters())
    stage_a_pth = os.path.join(args.out, 'stage_a.pth')
    if args.stage_a:
        state = torch.load(args.stage_a)
        unet.load_state_dict(state['unet'])
        enc.load_state_dict(state['encoder'])
        head.load_state_dict(state['head'])
        log.update(state['log'])
    else:
        def save_stage_a(path, steps_done):
            torch.save({'unet': unet.state_dict(), 'encoder': enc.state_dict(),
                        'head': head.state_dict(), 'log': dict(log, steps_done=steps_done)},
                       path)
        partial = stage_a_pth + '.partial'
        run_stage('stage A (160x160)', args.steps_a, args.lr_a, params_a, step_a, log,
                  checkpoint=lambda step: save_stage_a(partial, step))
        save_stage_a(stage_a_pth, args.steps_a)
        if os.path.exists(partial):
            os.remove(partial)
    # Stage A2: a short fine-tune with the painting held at zero away from the
    # mouth (the viseme head, not kept in checkpoints, is left out).
    params_a2 = [p for m in stage_a for p in m.parameters()] + list(head.parameters())
    run_stage('stage A2 (160x160, held outside the mouth)', args.steps_a2, args.lr_a2, params_a2,
              lambda: step_a(OUTSIDE_WEIGHT, 0.0), log)
    t_a = time.time() - t0

    unet.to(memory_format=torch.contiguous_format)
    skips = [s.contiguous() for s in skips]
    unet.eval()
    enc.eval()
    # up5 has never run: its BatchNorm statistics come from the avatar's
    # frames first, so its random channels start at a sane scale.
    def calibration_pass(i):
        _, _, cmel, crows, _ = batcher.batch(5)
        decode(unet, [s[i:i + 5] for s in skips], features(enc, cmel, crows))

    calibrate([unet.up5], [lambda i=i: calibration_pass(i) for i in range(0, len(refs), 5)])
    idx, tgt, mel, rows, _ = batcher.batch(4)
    with torch.no_grad():
        aud = features(enc, mel, rows)
        _, u4 = decode(unet, [None] + [s[idx] for s in skips[1:]], aud, depth=4)
        up = F.interpolate(head(u4), scale_factor=2, mode='bilinear', align_corners=True)
        want = torch.sigmoid(pl_logit(refs[idx], fit) + up)
        build_output_path(unet, head, fit)
    # up5's second block reads what the first now writes (logits): its
    # statistics again (its residual branch still starts at 0).
    calibrate([unet.up5.conv.double_conv[1]],
              [lambda i=i: calibration_pass(i) for i in range(0, len(refs), 5)])
    with torch.no_grad():
        _, full = decode(unet, [s[idx] for s in skips], aud)
    # The built path must reproduce stage A's painting, upsampled.
    log['logit_fit_max_abs'] = fit[2]
    log['built_path_max_abs'] = float((full - want).abs().max())
    log['stage_a_mouth_l1_full_size'] = float(mouth_l1(want, tgt))
    print('stage B starts at stage A upsampled: max |diff| %.2e, mouth L1 %.4f (copy within '
          '%.4f)' % (log['built_path_max_abs'], log['stage_a_mouth_l1_full_size'], fit[2]))
    # Stage B trains only up5 and outc: fine-tuning the audio path with its
    # BatchNorms frozen undid what stage A learned within 50 steps.
    stage_b = [unet.up5, unet.outc]
    for p in params_a:
        p.requires_grad_(False)

    def step_b():
        idx, tgt, mel, rows, params = batcher.batch(args.batch_b)
        with torch.no_grad(), autocast():
            _, u4 = decode(unet, [None] + [s[idx] for s in skips[1:]],
                           features(enc, mel, rows), depth=4)
        # In fp32: the logit's knots have slopes up to 47, which bf16's 8-bit
        # mantissa turns into errors of several levels per pixel.
        pred = torch.sigmoid(unet.outc(unet.up5(u4.float(), skips[0][idx])))
        l1, mouth = F.l1_loss(pred, tgt), mouth_l1(pred, tgt)
        r = openness_r(pred, refs[idx], params[:, 0], box)
        return l1 + MOUTH_WEIGHT * mouth, {'l1': float(l1), 'mouth': float(mouth), 'r': r}

    params_b = [p for m in stage_b for p in m.parameters()]
    run_stage('stage B (320x320)', args.steps_b, args.lr_b, params_b, step_b, log)
    train_s = time.time() - t0

    idx, _, mel, rows, _ = batcher.batch(2)
    diffs = save(unet, enc, (avatar_vis[idx], mel, rows), args.out, args.lipsync)
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
        json.dump({'seed': SEED, 'width': WIDTH, 'precision': args.precision,
                   'stage_a': {'steps': args.steps_a, 'batch': args.batch_a, 'lr': args.lr_a},
                   'stage_a2': {'steps': args.steps_a2, 'batch': args.batch_a, 'lr': args.lr_a2,
                                'outside_weight': OUTSIDE_WEIGHT},
                   'stage_a_from': args.stage_a,
                   'stage_b': {'steps': args.steps_b, 'batch': args.batch_b, 'lr': args.lr_b},
                   'stage_a_seconds': round(t_a, 1), 'train_seconds': round(train_s, 1),
                   'clips': len(clips), 'frames': len(batcher.index), 'final': log,
                   'engine_vs_torch_max_abs': diffs, 'torch': torch.__version__}, f, indent=1)
    print('trained in %.0f s (stage A %.0f s); exported to %s' % (train_s, t_a, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
