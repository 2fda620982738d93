#!/usr/bin/python3
"""Generates the SyncTalk_2D test models and torch's reference outputs.

Usage: /usr/bin/python3 tools/gen_test_models.py OUT_DIR

Defines the "328" UNet (Model(6, mode='ave')) and the audio encoder as
SyncTalk_2D trains them, fills them with seeded random weights and
non-trivial BatchNorm statistics, and writes into OUT_DIR:
  unet_op11.onnx     opset 11, dynamic batch, inputs input/audio, output output
  unet_op17.onnx     opset 17, batch fixed to 1, inputs visual_input/audio_input
  encoder_op11.onnx  opset 11, dynamic batch, input mel_spectrogram
  encoder_op17.onnx  opset 17, batch fixed to 1, input mel
  unet_in_visual_b{1,3}.npy unet_in_audio_b{1,3}.npy unet_out_b{1,3}.npy
  encoder_in_b{1,3}.npy encoder_out_b{1,3}.npy     torch fp32 inputs/outputs
  torch_bf16_errors.json   torch's own bf16 run against its fp32 outputs
BatchNorm is kept in the exported graphs (TrainingMode.PRESERVE on an eval
model) so that the loader's BatchNorm folding is exercised; deterministic for
a given torch version. Uses Debian's python3-torch and python3-onnx only.
"""
import copy
import json
import os
import sys
import warnings

# Idle OpenMP workers must sleep, not spin: CI shares 2 cores between this
# and other builds, and spinning workers slowed generation tenfold there.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np
import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synctalk_model import AudioEncoder, Model, n_params  # noqa: E402

SEED = 20260323
UNET_PARAMS = 12186935
ENCODER_PARAMS = 2812672


def randomize(model, calib_inputs, gen):
    """Seeded weights, then BatchNorm statistics measured on calibration data
    (so activations stay in a sane range through the deep net) and perturbed
    so that no BN is close to the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
        # Train-mode pass with momentum 1: running stats become this batch's stats.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0
        model.train()
        model(*calib_inputs)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.momentum = 0.1
                m.running_mean.add_((torch.rand(c, generator=gen) - 0.5) * 0.1 * m.running_var.sqrt())
                m.running_var.mul_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.6)
                m.bias.copy_((torch.rand(c, generator=gen) - 0.5) * 0.4)
    model.eval()


def calibrate_logits(model, conv, calib_inputs, target_std=2.0):
    """Rescales the final conv so its logits have a moderate spread: random
    weights otherwise saturate the sigmoid and hide every error."""
    seen = []
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(*calib_inputs)
        hook.remove()
        y = seen[0]
        conv.weight.mul_(target_std / float(y.std()))
        conv.bias.sub_(float(y.mean()) * target_std / float(y.std()))


def export(model, args, path, opset, in_names, out_name, dynamic):
    dyn = None
    if dynamic:
        dyn = {n: {0: 'batch'} for n in in_names}
        dyn[out_name] = {0: 'batch'}
    torch.onnx.export(model, args, path, opset_version=opset, input_names=in_names,
                      output_names=[out_name], dynamic_axes=dyn,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    exported = onnx.load(path)
    onnx.checker.check_model(exported)
    if exported.opset_import[0].version != opset:
        raise SystemExit('%s: exported with opset %d' % (path, exported.opset_import[0].version))


def save(out_dir, name, t):
    np.save(os.path.join(out_dir, name), t.detach().float().numpy().astype(np.float32))


def bf16_errors(model, inputs, ref):
    # A copy: converting in place and back would leave bf16-rounded weights.
    m16 = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        y16 = m16(*[x.to(torch.bfloat16) for x in inputs]).float()
    d = (y16 - ref).abs().flatten().double().numpy()
    return {'mean_abs': float(d.mean()), 'p999_abs': float(np.percentile(d, 99.9)),
            'max_abs': float(d.max())}


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out_dir = sys.argv[1]
    # The exporter warns about PRESERVE mode and Slice folding; both are expected here.
    warnings.filterwarnings('ignore', category=UserWarning)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    gen = torch.Generator().manual_seed(SEED)

    unet = Model(6, mode='ave')
    enc = AudioEncoder()
    if n_params(unet) != UNET_PARAMS or n_params(enc) != ENCODER_PARAMS:
        raise SystemExit('parameter counts %d / %d differ from %d / %d' %
                         (n_params(unet), n_params(enc), UNET_PARAMS, ENCODER_PARAMS))

    # Inputs like the real ones: images in [0,1], audio features >= 0 with a
    # spread, mel in [-4,4].
    vis = {b: torch.rand((b, 6, 320, 320), generator=gen) for b in (1, 3)}
    aud = {b: torch.rand((b, 32, 16, 16), generator=gen) * 2.0 for b in (1, 3)}
    mel = {b: torch.rand((b, 1, 80, 16), generator=gen) * 8.0 - 4.0 for b in (1, 3)}

    unet_calib = (torch.rand((2, 6, 320, 320), generator=gen),
                  torch.rand((2, 32, 16, 16), generator=gen) * 2.0)
    randomize(unet, unet_calib, gen)
    calibrate_logits(unet, unet.outc, unet_calib)
    randomize(enc, (torch.rand((8, 1, 80, 16), generator=gen) * 8.0 - 4.0,), gen)

    errors = {}
    with torch.no_grad():
        for b in (1, 3):
            y = unet(vis[b], aud[b])
            save(out_dir, 'unet_in_visual_b%d.npy' % b, vis[b])
            save(out_dir, 'unet_in_audio_b%d.npy' % b, aud[b])
            save(out_dir, 'unet_out_b%d.npy' % b, y)
            errors['unet_b%d' % b] = bf16_errors(unet, (vis[b], aud[b]), y)
            e = enc(mel[b])
            save(out_dir, 'encoder_in_b%d.npy' % b, mel[b])
            save(out_dir, 'encoder_out_b%d.npy' % b, e)
            errors['encoder_b%d' % b] = bf16_errors(enc, (mel[b],), e)
            errors['encoder_b%d' % b]['max_abs_ref'] = float(e.abs().max())
    errors['encoder'] = errors['encoder_b3']
    with open(os.path.join(out_dir, 'torch_bf16_errors.json'), 'w') as f:
        json.dump(errors, f, indent=1, sort_keys=True)

    export(unet, (vis[1], aud[1]), os.path.join(out_dir, 'unet_op11.onnx'), 11,
           ['input', 'audio'], 'output', True)
    export(unet, (vis[1], aud[1]), os.path.join(out_dir, 'unet_op17.onnx'), 17,
           ['visual_input', 'audio_input'], 'pred', False)
    export(enc, (mel[1],), os.path.join(out_dir, 'encoder_op11.onnx'), 11,
           ['mel_spectrogram'], 'audio_features', True)
    export(enc, (mel[1],), os.path.join(out_dir, 'encoder_op17.onnx'), 17,
           ['mel'], 'features', False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
