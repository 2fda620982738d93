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
import torch.nn.functional as F

SEED = 20260323
UNET_PARAMS = 12186935
ENCODER_PARAMS = 2812672


class InvertedResidual(nn.Module):
    """IR(i,o,s,res): 1x1 expand x2, BN, ReLU, 3x3 depthwise, BN, ReLU, 1x1 project, BN."""

    def __init__(self, inp, oup, stride, use_res_connect, expand_ratio=2):
        super().__init__()
        hid = inp * expand_ratio
        self.use_res_connect = use_res_connect
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hid, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hid),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False),
            nn.BatchNorm2d(hid),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class DoubleConvDW(nn.Module):
    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        self.double_conv = nn.Sequential(
            InvertedResidual(in_channels, out_channels, stride, False),
            InvertedResidual(out_channels, out_channels, 1, True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = DoubleConvDW(in_channels, out_channels, stride=1)

    def forward(self, x1, x2):
        x1 = F.interpolate(x1, scale_factor=2, mode='bilinear', align_corners=True)
        diff_y = x2.shape[2] - x1.shape[2]
        diff_x = x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        return self.conv(torch.cat([x1, x2], dim=1))


class AudioConvAve(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = InvertedResidual(32, 64, 1, False)
        self.conv2 = InvertedResidual(64, 128, 1, False)
        self.conv3 = nn.Conv2d(128, 256, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(256)
        self.conv4 = InvertedResidual(256, 256, 1, True)
        self.conv5 = nn.Conv2d(256, 512, 3, 2, 3)
        self.bn5 = nn.BatchNorm2d(512)
        self.relu = nn.ReLU()
        self.conv6 = InvertedResidual(512, 512, 1, True)
        self.conv7 = InvertedResidual(512, 512, 1, True)

    def forward(self, x):
        x = self.conv2(self.conv1(x))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.conv4(x)
        x = self.relu(self.bn5(self.conv5(x)))
        return self.conv7(self.conv6(x))


class Model(nn.Module):
    """SyncTalk_2D's "328" UNet; only mode='ave' is needed here."""

    def __init__(self, n_channels=6, mode='ave'):
        super().__init__()
        assert mode == 'ave'
        ch = [32, 64, 128, 256, 512]
        self.audio_model = AudioConvAve()
        self.fuse_conv = nn.Sequential(DoubleConvDW(ch[4] * 2, ch[4], 1),
                                       DoubleConvDW(ch[4], ch[3], 1))
        self.inc = InvertedResidual(n_channels, ch[0], 1, False)
        self.down1 = DoubleConvDW(ch[0], ch[0])
        self.down2 = DoubleConvDW(ch[0], ch[1])
        self.down3 = DoubleConvDW(ch[1], ch[2])
        self.down4 = DoubleConvDW(ch[2], ch[3])
        self.down5 = DoubleConvDW(ch[3], ch[4])
        self.up1 = Up(ch[4], ch[3] // 2)
        self.up2 = Up(ch[3], ch[2] // 2)
        self.up3 = Up(ch[2], ch[1] // 2)
        self.up4 = Up(ch[1], ch[0])
        self.up5 = Up(ch[1], ch[0] // 2)
        self.outc = nn.Conv2d(ch[0] // 2, 3, 1)

    def forward(self, x, audio_feat):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x6 = self.down5(x5)
        audio_feat = self.audio_model(audio_feat)
        x6 = self.fuse_conv(torch.cat([x6, audio_feat], dim=1))
        x = self.up1(x6, x5)
        x = self.up2(x, x4)
        x = self.up3(x, x3)
        x = self.up4(x, x2)
        x = self.up5(x, x1)
        return torch.sigmoid(self.outc(x))


class ConvBlock(nn.Module):
    """Conv(bias) + BN (+ x if residual) + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.audio_encoder = nn.Sequential(
            ConvBlock(1, 32, 3, 1, 1),
            ConvBlock(32, 32, 3, 1, 1, True),
            ConvBlock(32, 32, 3, 1, 1, True),
            ConvBlock(32, 64, 3, (3, 1), 1),
            ConvBlock(64, 64, 3, 1, 1, True),
            ConvBlock(64, 64, 3, 1, 1, True),
            ConvBlock(64, 128, 3, 3, 1),
            ConvBlock(128, 128, 3, 1, 1, True),
            ConvBlock(128, 128, 3, 1, 1, True),
            ConvBlock(128, 256, 3, (3, 2), 1),
            ConvBlock(256, 256, 3, 1, 1, True),
            ConvBlock(256, 512, 3, 1, 0),
            ConvBlock(512, 512, 1, 1, 0),
        )

    def forward(self, x):
        return self.audio_encoder(x).squeeze(2).squeeze(2)


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


def n_params(model):
    return sum(p.numel() for p in model.parameters())


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
