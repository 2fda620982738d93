#!/usr/bin/python3
"""tools/export_synctalk.py on a checkpoint saved as SyncTalk_2D saves one.

Writes, with seeded random weights from tools/synctalk_model.py at width 1:
  checkpoint/may/9.pth         the UNet's state dict under SyncTalk_2D's own key
                               names (tests/data/synctalk2d/unet_328_ave.keys,
                               listed from its unet_328.py), as train_328.py saves it
  audio_visual_encoder.pth     the encoder Sequential's state dict without the
                               audio_encoder. prefix (audio_visual_encoder.keys)
  dataset/                     full_body_img/0..2.jpg + landmarks/0..2.lms (real
                               landmark files from tests/data/landmarks)
then runs the tool and checks: `lipsync model check` passes, model.json and the
avatar links are what the README describes, and the exported UNet and encoder
give torch's outputs through `lipsync infer`. Error paths: a missing file, a
checkpoint with a missing and an unexpected key, a width mismatch, a
DataParallel-prefixed checkpoint (accepted), a non-empty output directory.

usage: test_export_synctalk.py   (environment: LS_BIN, LS_TEST_DATA, LS_TMP)
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
from gen_test_models import calibrate_logits, randomize  # noqa: E402
from synctalk_model import AudioEncoder, Model  # noqa: E402

TOOL = os.path.join(ROOT, 'tools', 'export_synctalk.py')
LIPSYNC = os.environ['LS_BIN']
DATA = os.environ['LS_TEST_DATA']
SEED = 20261203
failures = []


def check(cond, what):
    print('%s: %s' % ('ok' if cond else 'FAIL', what))
    if not cond:
        failures.append(what)


def read_keys(name):
    with open(os.path.join(DATA, 'synctalk2d', name)) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def shape_text(t):
    return 'x'.join(str(d) for d in t.shape) or 'scalar'


def renamed(state, keys):
    """Our state dict's tensors under SyncTalk_2D's names: the same order and
    shapes, which is asserted (a mismatch means synctalk_model.py drifted from
    SyncTalk_2D's architecture)."""
    values = list(state.values())
    if len(values) != len(keys):
        sys.exit('synctalk_model.py has %d state-dict entries, SyncTalk_2D %d' %
                 (len(values), len(keys)))
    for (name, shape), v in zip(keys, values):
        if shape_text(v) != shape:
            sys.exit('%s: shape %s here, %s in SyncTalk_2D' % (name, shape_text(v), shape))
    return collections.OrderedDict((name, v.clone()) for (name, _), v in zip(keys, values))


def run(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, **kw)
    return r.returncode, r.stdout


def export(ckpt, enc, dataset, out, *extra):
    return run(['/usr/bin/python3', TOOL, ckpt, enc, dataset, '-o', out, '--lipsync', LIPSYNC]
               + list(extra))


def main():
    tmp = tempfile.mkdtemp(prefix='export_synctalk.', dir=os.environ.get('LS_TMP'))
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(SEED)

    # Networks with weights that keep activations in range (gen_test_models.py's recipe).
    unet = Model(6, mode='ave')
    calib = (torch.rand((2, 6, 320, 320), generator=gen), torch.rand((2, 32, 16, 16), generator=gen) * 2)
    randomize(unet, calib, gen)
    calibrate_logits(unet, unet.outc, calib)
    enc = AudioEncoder()
    randomize(enc, (torch.rand((4, 1, 80, 16), generator=gen) * 8 - 4,), gen)

    ckpt = os.path.join(tmp, 'checkpoint', 'may', '9.pth')
    os.makedirs(os.path.dirname(ckpt))
    unet_state = renamed(unet.state_dict(), read_keys('unet_328_ave.keys'))
    torch.save(unet_state, ckpt)
    enc_pth = os.path.join(tmp, 'audio_visual_encoder.pth')
    enc_state = renamed(enc.state_dict(), read_keys('audio_visual_encoder.keys'))
    torch.save(enc_state, enc_pth)

    dataset = os.path.join(tmp, 'may')
    rng = np.random.RandomState(SEED % 2**32)
    for sub in ('full_body_img', 'landmarks'):
        os.makedirs(os.path.join(dataset, sub))
    for i in range(3):
        # A smooth picture with some noise, 1280x720 (the landmarks' frames hold
        # the face near x 532..717, y 210..394).
        y, x = np.mgrid[0:720, 0:1280]
        img = np.stack([(x * 0.2 + i * 7) % 256, (y * 0.3) % 256, (x + y) * 0.1 % 256], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(dataset, 'full_body_img', '%d.jpg' % i), img)
        shutil.copyfile(os.path.join(DATA, 'landmarks', '%d.lms' % i),
                        os.path.join(dataset, 'landmarks', '%d.lms' % i))

    # The export itself.
    out = os.path.join(tmp, 'model')
    rc, text = export(ckpt, enc_pth, dataset, out, '--name', 'may')
    print(text)
    check(rc == 0, 'export_synctalk.py exits 0')
    if rc != 0:
        return 1
    rc, text = run([LIPSYNC, 'model', 'check', out])
    check(rc == 0 and text.rstrip().endswith('ok'), 'lipsync model check passes')
    with open(os.path.join(out, 'model.json')) as f:
        model = json.load(f)
    check(model['name'] == 'may' and model['unet'] == 'unet.onnx' and
          model['encoder'] == 'audio_encoder.onnx' and model['avatar'] == 'avatar' and
          model['fps'] == 25, 'model.json names the files, avatar and fps')
    for sub in ('full_body_img', 'landmarks'):
        p = os.path.join(out, 'avatar', sub)
        check(os.path.islink(p) and os.path.samefile(p, os.path.join(dataset, sub)),
              'avatar/%s links to the dataset' % sub)

    # The exported networks compute torch's function: one UNet input at batch 1
    # and three mel windows through the engine.
    vis = torch.rand((1, 6, 320, 320), generator=gen)
    aud = torch.rand((1, 32, 16, 16), generator=gen) * 2
    mel = torch.rand((3, 1, 80, 16), generator=gen) * 8 - 4
    with torch.no_grad():
        want_unet = unet(vis, aud).numpy()
        want_enc = enc(mel).numpy()
    for name, t in (('vis', vis), ('aud', aud), ('mel', mel)):
        np.save(os.path.join(tmp, name + '.npy'), t.numpy())
    j = lambda n: os.path.join(tmp, n)  # noqa: E731
    rc, text = run([LIPSYNC, 'infer', os.path.join(out, 'unet.onnx'), 'input=' + j('vis.npy'),
                    'audio=' + j('aud.npy'), '-o', j('unet_out.npy'), '--threads', '2'])
    check(rc == 0, 'lipsync infer runs the UNet by its input names: ' + text.strip())
    if rc == 0:
        got = np.load(j('unet_out.npy'))
        d = float(np.abs(got - want_unet).max())
        # The output spread must be real for the comparison to mean anything.
        check(got.shape == (1, 3, 320, 320) and want_unet.std() > 0.05 and d < 1e-4,
              'UNet: engine vs torch max abs diff %.3g (output std %.3f)' % (d, want_unet.std()))
    rc, text = run([LIPSYNC, 'infer', os.path.join(out, 'audio_encoder.onnx'), 'mel=' + j('mel.npy'),
                    '-o', j('enc_out.npy'), '--threads', '2'])
    check(rc == 0, 'lipsync infer runs the encoder: ' + text.strip())
    if rc == 0:
        got = np.load(j('enc_out.npy'))
        d = float(np.abs(got - want_enc).max())
        scale = float(np.abs(want_enc).max())
        check(got.shape == (3, 512) and scale > 0 and d < 1e-5 * max(1.0, scale),
              'encoder: engine vs torch max abs diff %.3g (max |output| %.3g)' % (d, scale))

    # Errors: each names what is wrong, and leaves no output directory behind.
    def fails(what, args, *needles, extra=()):
        o = os.path.join(tmp, 'bad')
        rc, text = export(*args, o, *extra)
        ok = rc == 1 and all(n in text for n in needles) and not os.path.exists(o)
        check(ok, what + ('' if ok else ' (exit %d): %s' % (rc, text.strip())))

    fails('a missing checkpoint is named', (j('nope.pth'), enc_pth, dataset),
          'nope.pth: UNet checkpoint not found')
    broken = collections.OrderedDict(unet_state)
    del broken['up3.conv.double_conv.1.conv.4.running_var']
    broken['up3.extra.weight'] = torch.zeros(1)
    torch.save(broken, j('broken.pth'))
    fails('a missing and an unexpected key are listed', (j('broken.pth'), enc_pth, dataset),
          '1 missing: up3.conv.double_conv.1.conv.4.running_var',
          '1 unexpected: up3.extra.weight')
    fails('a width-1 checkpoint exported at width 0.5 says which width it is',
          (ckpt, enc_pth, dataset), 'wrong shape', 'try --width 1', extra=('--width', '0.5'))
    fails('a dataset without landmarks/ is named', (ckpt, enc_pth, os.path.join(dataset, 'landmarks')),
          'no full_body_img/')
    # DataParallel's 'module.' prefixes are accepted: the run gets past the UNet
    # to the (missing) encoder file.
    torch.save(collections.OrderedDict(('module.' + k, v) for k, v in unet_state.items()),
               j('dp.pth'))
    fails('a DataParallel checkpoint loads (the run reaches the encoder)',
          (j('dp.pth'), j('no_encoder.pth'), dataset), 'no_encoder.pth: audio encoder not found')
    rc, text = export(ckpt, enc_pth, dataset, out)
    check(rc == 1 and 'exists and is not empty' in text, 'an earlier export is not overwritten')

    shutil.rmtree(tmp)
    print('%d failure(s)' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
