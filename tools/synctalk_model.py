"""SyncTalk_2D's "328" UNet (mode 'ave') and its audio encoder, with a width.

One definition for every tool that builds these networks: the test-model
generator (full width, random weights), the demo's training (1/4 width) and
the checkpoint exporter (export_synctalk.py). `width` scales every inner
channel count; the interfaces stay those of the originals: UNet
[B,6,320,320] + [B,32,16,16] -> [B,3,320,320], encoder [B,1,80,16] -> [B,512].

Parameter names: the AudioEncoder's are SyncTalk_2D's own (utils.py), and so
are the UNet's but for three prefixes. SyncTalk_2D's unet_328.py wraps inc in
InConvDw (`inc.inconv.0.`), each down stage in Down (`downN.maxpool_conv.0.`)
and outc in OutConv (`outc.conv.`), containers that hold no parameters of
their own; here those modules are bare (train_demo.py reaches into
unet.inc.conv and unet.outc.weight, and its checkpoints use these names).
unet_state_from_synctalk() renames a SyncTalk_2D state dict's keys to ours
and unet_state_to_synctalk() back; otherwise the two state dicts are the same
keys, shapes and order (tests/data/synctalk2d/ lists SyncTalk_2D's, and
tests/nn/test_export_synctalk.py checks a checkpoint with them loads with
strict=True at width 1).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(c, width):
    return max(1, int(round(c * width)))


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
    """[B,32,16,16] audio features -> [B,512w,4,4] (w = width)."""

    def __init__(self, width=1.0):
        super().__init__()
        c = [scaled(n, width) for n in (64, 128, 256, 512)]
        self.conv1 = InvertedResidual(32, c[0], 1, False)
        self.conv2 = InvertedResidual(c[0], c[1], 1, False)
        self.conv3 = nn.Conv2d(c[1], c[2], 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(c[2])
        self.conv4 = InvertedResidual(c[2], c[2], 1, True)
        self.conv5 = nn.Conv2d(c[2], c[3], 3, 2, 3)
        self.bn5 = nn.BatchNorm2d(c[3])
        self.relu = nn.ReLU()
        self.conv6 = InvertedResidual(c[3], c[3], 1, True)
        self.conv7 = InvertedResidual(c[3], c[3], 1, True)

    def forward(self, x):
        x = self.conv2(self.conv1(x))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.conv4(x)
        x = self.relu(self.bn5(self.conv5(x)))
        return self.conv7(self.conv6(x))


class Model(nn.Module):
    """SyncTalk_2D's "328" UNet; only mode='ave' is needed here."""

    def __init__(self, n_channels=6, mode='ave', width=1.0):
        super().__init__()
        assert mode == 'ave'
        ch = [scaled(n, width) for n in (32, 64, 128, 256, 512)]
        self.audio_model = AudioConvAve(width)
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
    """The "ave" audio encoder: mel window [B,1,80,16] -> [B,512]. The output
    stays 512 wide at every width (the UNet's features are 16 x 512): only the
    last 1x1 conv's output channels are not scaled."""

    def __init__(self, width=1.0):
        super().__init__()
        a, b, c, d, e = (scaled(n, width) for n in (32, 64, 128, 256, 512))
        self.audio_encoder = nn.Sequential(
            ConvBlock(1, a, 3, 1, 1),
            ConvBlock(a, a, 3, 1, 1, True),
            ConvBlock(a, a, 3, 1, 1, True),
            ConvBlock(a, b, 3, (3, 1), 1),
            ConvBlock(b, b, 3, 1, 1, True),
            ConvBlock(b, b, 3, 1, 1, True),
            ConvBlock(b, c, 3, 3, 1),
            ConvBlock(c, c, 3, 1, 1, True),
            ConvBlock(c, c, 3, 1, 1, True),
            ConvBlock(c, d, 3, (3, 2), 1),
            ConvBlock(d, d, 3, 1, 1, True),
            ConvBlock(d, e, 3, 1, 0),
            ConvBlock(e, 512, 1, 1, 0),
        )

    def forward(self, x):
        return self.audio_encoder(x).squeeze(2).squeeze(2)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# (ours, SyncTalk_2D's) key prefixes of the UNet's state dict; see the top.
SYNCTALK_UNET_PREFIXES = ((('inc.', 'inc.inconv.0.'),) +
                          tuple(('down%d.' % i, 'down%d.maxpool_conv.0.' % i) for i in range(1, 6)) +
                          (('outc.', 'outc.conv.'),))


def _rename(state, pairs):
    out = type(state)() if isinstance(state, dict) else {}
    for key, value in state.items():
        for src, dst in pairs:
            if key.startswith(src):
                key = dst + key[len(src):]
                break
        out[key] = value
    return out


def unet_state_from_synctalk(state):
    """A state dict saved by SyncTalk_2D's unet_328.Model, with our keys (same order)."""
    return _rename(state, [(theirs, ours) for ours, theirs in SYNCTALK_UNET_PREFIXES])


def unet_state_to_synctalk(state):
    """Our Model's state dict with the keys SyncTalk_2D's unet_328.Model has."""
    return _rename(state, SYNCTALK_UNET_PREFIXES)
