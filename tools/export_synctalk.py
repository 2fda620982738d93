#!/usr/bin/python3
"""Turns a SyncTalk_2D training into a lipsync model directory.

usage: export_synctalk.py CHECKPOINT ENCODER_PTH DATASET_DIR -o MODEL_DIR
                          [--name NAME] [--lipsync PATH] [--copy] [--width W]
                          [--batch B] [--force]

  CHECKPOINT   the "328" UNet trained in mode 'ave': checkpoint/<name>/<epoch>.pth
               (train_328.py's net.state_dict(); a dict wrapping one under
               'state_dict', 'model', 'net' or 'unet', and DataParallel's
               'module.' prefixes, are accepted too)
  ENCODER_PTH  model/checkpoints/audio_visual_encoder.pth: the audio encoder's
               weights as SyncTalk_2D ships them (its audio_encoder Sequential's
               state dict), or a state dict / module holding an audio_encoder
  DATASET_DIR  the training dataset: full_body_img/<i>.jpg and landmarks/<i>.lms

MODEL_DIR receives unet.onnx and audio_encoder.onnx (torch.onnx.export, opset
11, a dynamic batch axis; inputs input/audio -> output, mel -> features),
avatar/ with the dataset's full_body_img/ and landmarks/ (symbolic links to
them, or copies with --copy) and model.json; then `lipsync model check
MODEL_DIR` validates the result (the tool fails with its message if it does
not pass). Both state dicts load with strict=True into tools/synctalk_model.py
(SyncTalk_2D's architecture; --width for networks trained at a reduced width,
such as tools/train_demo.py's). Uses Debian's python3-torch and python3-onnx.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import warnings

# Idle OpenMP workers sleep instead of spinning (shared cores; see gen_test_models.py).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
from synctalk_model import AudioEncoder, Model, unet_state_from_synctalk  # noqa: E402

PROG = 'export_synctalk'
# Keys under which training scripts commonly nest a state dict.
WRAPPER_KEYS = ('state_dict', 'model_state_dict', 'model', 'net', 'unet')
SHOW = 5  # keys listed per kind of mismatch


class ExportError(Exception):
    pass


def load_file(path, what):
    if not os.path.isfile(path):
        raise ExportError('%s: %s not found' % (path, what))
    try:
        return torch.load(path, map_location='cpu')
    except Exception as e:  # torch raises many kinds for a file that is not its own
        raise ExportError('%s: cannot read the %s: %s' % (path, what, e))


def is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def unwrap(obj, path, what, wrapper_keys):
    """The state dict inside whatever the file holds: a module, a state dict,
    or a dict wrapping one; DataParallel/DDP's 'module.' and torch.compile's
    '_orig_mod.' prefixes removed."""
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and not is_state_dict(obj):
        for key in wrapper_keys:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if is_state_dict(inner):
                obj = inner
                break
    if not is_state_dict(obj):
        keys = ', '.join(sorted(str(k) for k in obj)[:SHOW]) if isinstance(obj, dict) else ''
        raise ExportError('%s: the %s is not a state dict (a %s%s)' %
                          (path, what, type(obj).__name__, ': keys ' + keys if keys else ''))
    for prefix in ('module.', '_orig_mod.'):
        if all(k.startswith(prefix) for k in obj):
            obj = collections.OrderedDict((k[len(prefix):], v) for k, v in obj.items())
    return obj


def width_hint(state, key, width, want):
    """' (...: try --width W)' when `key`'s output channels say another width
    (the key's layer has 32 output channels at width 1, in both networks)."""
    t = state.get(key)
    if t is None or t.dim() < 1 or t.shape[0] == want:
        return ''
    return ' (its %s has %d output channels where width %g has %d: try --width %g)' % (
        key, t.shape[0], width, want, t.shape[0] / 32.0)


def load_strict(module, state, path, what, hint_key, width):
    """load_state_dict(strict=True), with an error that lists what differs."""
    want = module.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shapes = ['%s %s (expected %s)' % (k, tuple(state[k].shape), tuple(want[k].shape))
              for k in want if k in state and state[k].shape != want[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for name, keys in (('missing', missing), ('unexpected', unexpected),
                           ('wrong shape', shapes)):
            if keys:
                more = ' and %d more' % (len(keys) - SHOW) if len(keys) > SHOW else ''
                parts.append('%d %s: %s%s' % (len(keys), name, ', '.join(keys[:SHOW]), more))
        hint = width_hint(state, hint_key, width, want[hint_key].shape[0])
        raise ExportError('%s: the %s does not fit %s at width %g: %s%s' %
                          (path, what, type(module).__name__, width, '; '.join(parts),
                           hint if shapes else ''))
    module.load_state_dict(state, strict=True)


def load_unet(path, width):
    state = unwrap(load_file(path, 'UNet checkpoint'), path, 'UNet checkpoint', WRAPPER_KEYS)
    # SyncTalk_2D's key names differ from ours in three prefixes (synctalk_model.py).
    if any(k.startswith('inc.inconv.') for k in state):
        state = unet_state_from_synctalk(state)
    unet = Model(6, mode='ave', width=width)
    load_strict(unet, state, path, 'UNet checkpoint', 'inc.conv.6.weight', width)
    return unet.eval()


def load_encoder(path, width):
    what = 'audio encoder'
    state = unwrap(load_file(path, what), path, what, WRAPPER_KEYS + ('encoder', 'audio_encoder'))
    prefix = 'audio_encoder.'
    if any(k.startswith(prefix) for k in state):
        # A whole AudioEncoder, or a wrapper (say an audio-visual sync model)
        # holding one: its audio_encoder part.
        state = collections.OrderedDict((k, v) for k, v in state.items() if k.startswith(prefix))
    else:
        # SyncTalk_2D's file: the Sequential's own keys (inference_328.py adds the prefix).
        state = collections.OrderedDict((prefix + k, v) for k, v in state.items())
    enc = AudioEncoder(width=width)
    load_strict(enc, state, path, what, 'audio_encoder.0.conv_block.0.weight', width)
    return enc.eval()


def check_dataset(dataset):
    if not os.path.isdir(dataset):
        raise ExportError('%s: dataset directory not found' % dataset)
    for sub, ext in (('full_body_img', '.jpg'), ('landmarks', '.lms')):
        d = os.path.join(dataset, sub)
        if not os.path.isdir(d):
            raise ExportError('%s: no %s/ (a SyncTalk_2D dataset holds full_body_img/<i>.jpg '
                              'and landmarks/<i>.lms)' % (dataset, sub))
        if not any(n.endswith(ext) for n in os.listdir(d)):
            raise ExportError('%s: no %s files' % (d, ext))


def prepare_out(out, force):
    """MODEL_DIR must be new or empty; --force replaces what this tool writes there."""
    ours = ('unet.onnx', 'audio_encoder.onnx', 'model.json', 'avatar')
    if os.path.isdir(out) and os.listdir(out):
        if not force:
            raise ExportError('%s exists and is not empty (--force replaces its unet.onnx, '
                              'audio_encoder.onnx, model.json and avatar/)' % out)
        for name in ours:
            p = os.path.join(out, name)
            if os.path.islink(p) or os.path.isfile(p):
                os.unlink(p)
            elif os.path.isdir(p):
                shutil.rmtree(p)
    elif os.path.exists(out) and not os.path.isdir(out):
        raise ExportError('%s exists and is not a directory' % out)
    os.makedirs(out, exist_ok=True)


def export(module, args, path, in_names, out_name):
    dyn = {n: {0: 'batch'} for n in in_names + [out_name]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer chatter about constant shapes
        torch.onnx.export(module, args, path, opset_version=11, input_names=in_names,
                          output_names=[out_name], dynamic_axes=dyn, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(path))


def link_avatar(dataset, out, copy):
    avatar = os.path.join(out, 'avatar')
    os.makedirs(avatar)
    for sub in ('full_body_img', 'landmarks'):
        src = os.path.abspath(os.path.join(dataset, sub))
        dst = os.path.join(avatar, sub)
        if copy:
            shutil.copytree(src, dst)
        else:
            os.symlink(src, dst)


def find_lipsync(given):
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ExportError('%s: no lipsync binary there' % given)
        return given
    built = os.path.join(os.path.dirname(TOOLS), 'build', 'lipsync')
    if os.access(built, os.X_OK):
        return built
    found = shutil.which('lipsync')
    if not found:
        raise ExportError('no lipsync binary: build it (scripts/test.sh) or pass --lipsync PATH')
    return found


def main(argv):
    ap = argparse.ArgumentParser(prog='export_synctalk.py', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('checkpoint')
    ap.add_argument('encoder')
    ap.add_argument('dataset')
    ap.add_argument('-o', '--out', required=True, metavar='MODEL_DIR')
    ap.add_argument('--name', help="model.json's name (default: the dataset folder's name)")
    ap.add_argument('--lipsync', help='the lipsync binary (default: build/lipsync, else PATH)')
    ap.add_argument('--copy', action='store_true', help='copy the dataset folders, not links')
    ap.add_argument('--width', type=float, default=1.0,
                    help='channel width the networks were trained at (default 1)')
    ap.add_argument('--batch', type=int, default=8, help="model.json's batch (default 8)")
    ap.add_argument('--force', action='store_true', help='replace an earlier export in MODEL_DIR')
    args = ap.parse_args(argv)
    if not 0 < args.width <= 1 or not 1 <= args.batch <= 64:
        ap.error('--width wants (0, 1], --batch 1..64')
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        # Everything is read and checked before MODEL_DIR is touched.
        lipsync = find_lipsync(args.lipsync)
        unet = load_unet(args.checkpoint, args.width)
        enc = load_encoder(args.encoder, args.width)
        check_dataset(args.dataset)
        prepare_out(args.out, args.force)

        export(unet, (torch.zeros(1, 6, 320, 320), torch.zeros(1, 32, 16, 16)),
               os.path.join(args.out, 'unet.onnx'), ['input', 'audio'], 'output')
        export(enc, (torch.zeros(1, 1, 80, 16),), os.path.join(args.out, 'audio_encoder.onnx'),
               ['mel'], 'features')
        link_avatar(args.dataset, args.out, args.copy)
        name = args.name or os.path.basename(os.path.normpath(os.path.abspath(args.dataset)))
        model = {'name': name, 'unet': 'unet.onnx', 'encoder': 'audio_encoder.onnx',
                 'avatar': 'avatar', 'fps': 25, 'batch': args.batch,
                 'unet_inputs': {'visual': 'input', 'audio': 'audio'}, 'encoder_input': 'mel'}
        with open(os.path.join(args.out, 'model.json'), 'w') as f:
            json.dump(model, f, indent=1)
            f.write('\n')
    except (ExportError, OSError) as e:
        sys.stderr.write('%s: %s\n' % (PROG, e))
        return 1

    r = subprocess.run([lipsync, 'model', 'check', args.out], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stderr.write('%s: `lipsync model check %s` failed (exit %d): %s\n' %
                         (PROG, args.out, r.returncode, r.stdout.strip().splitlines()[-1]
                          if r.stdout.strip() else 'no output'))
        return 1
    print('wrote %s: render with `lipsync render %s speech.wav -o out.mp4`' % (args.out, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
