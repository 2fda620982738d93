#!/usr/bin/python3
"""A synthetic talking face with exact phoneme timing: the demo's training data.

Speech comes from libespeak-ng (through ctypes), with the phoneme events of
its synthesis callback: each phoneme's position in the audio is the
synthesizer's own, never an even split of the text. Each phoneme maps to
mouth targets (viseme parameters); the mouth moves between them with smooth
coarticulation and leads the sound by LEAD_S, as real lips do; silence
relaxes to closed. The face is the demo portrait (python3-skimage's
astronaut, upscaled 2x so the face crop is 192 px), its open smile closed
once, then every frame deforms it (a smooth displacement field lowers the
jaw and lower lip and moves the corners) and draws the mouth interior (dark
cavity, upper teeth, tongue tint) with anti-aliased edges, so the skin
texture is the portrait's own.

usage:
  talking_face.py avatar OUT_DIR
      the demo avatar: OUT_DIR/frames/frame_%04d.png + crop_rects.json (closed mouth)
  talking_face.py dataset OUT_DIR [--clips N] [--seed S]
      training clips: OUT_DIR/clip_%03d/{speech.wav, frames/frame_%04d.jpg,
      crop_rects.json, visemes.npy, phonemes.json} (validation text and voices held out)
  talking_face.py validation OUT_DIR
      the held-out sentences, same layout, frames as lossless PNG

Frame k of a clip shows the mouth at time k / 25 s with the head pose of
avatar frame pingpong(k) (avatar/avatar.c's ls_avatar_pingpong, start 0), so
a clip's frames are exactly what `lipsync render` should paint over the avatar.
Uses Debian's python3-numpy, python3-opencv, python3-skimage and libespeak-ng1.
"""
import argparse
import ctypes
import json
import math
import os
import random
import sys
import wave

import cv2
import numpy as np
import skimage.data

FPS = 25
N_AVATAR_FRAMES = 50
SCALE = 2                       # portrait upscale: the face crop becomes 192 px
FRAME_X0, FRAME_Y0 = 128, 0     # the 768x768 window of the 1024x1024 upscaled portrait
FRAME_W, FRAME_H = 768, 768
# Crop rectangle of the still face in frame coordinates (eye level to below
# the chin, as SyncTalk_2D's landmark rule places it): the portrait's
# (178, 100, 274, 196) scaled and shifted into the window.
BASE_RECT = (178 * SCALE - FRAME_X0, 100 * SCALE - FRAME_Y0,
             274 * SCALE - FRAME_X0, 196 * SCALE - FRAME_Y0)
# The mouth in frame coordinates: centre of the lip line, half width.
MOUTH_CX = 221.5 * SCALE - FRAME_X0
MOUTH_CY = 144.0 * SCALE - FRAME_Y0
MOUTH_HALF_W = 17.0 * SCALE
MAX_OPEN = 13.0 * SCALE         # lip gap at jaw = 1
LEAD_S = 0.03                   # lips lead the sound
SMOOTH_S = 0.035                # coarticulation: Gaussian blur of the targets (sigma)
PARAMS = ('jaw', 'spread', 'round', 'press', 'fv')


def head_motion(i):
    """Head translation (dx, dy) of avatar frame i, in pixels."""
    t = i / N_AVATAR_FRAMES
    return (int(round(3.0 * SCALE * math.sin(2 * math.pi * t))),
            int(round(2.0 * SCALE * math.sin(4 * math.pi * t + 0.5))))


def pingpong(n_frames, k):
    """ls_avatar_pingpong with start 0: the avatar frame output frame k uses."""
    if n_frames == 1:
        return 0
    period = 2 * (n_frames - 1)
    t = (k + 1) % period
    return t if t <= n_frames - 1 else period - t


def mouth_box(i):
    """The box the mouth moves in (x0, y0, x1, y1) in avatar frame i's coordinates:
    lips at rest, the open mouth and the lowered lower lip."""
    dx, dy = head_motion(i)
    hw = MOUTH_HALF_W * 1.3
    return (int(MOUTH_CX - hw) + dx, int(MOUTH_CY - 6 * SCALE) + dy,
            int(MOUTH_CX + hw) + dx, int(MOUTH_CY + MAX_OPEN * 1.3) + dy)


def crop_rect(i):
    dx, dy = head_motion(i)
    x1, y1, x2, y2 = BASE_RECT
    return [x1 + dx, y1 + dy, x2 + dx, y2 + dy]


# ---------------------------------------------------------------- speech

class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [('number', ctypes.c_int), ('name', ctypes.c_char_p),
                    ('string', ctypes.c_char * 8)]
    _fields_ = [('type', ctypes.c_int), ('unique_identifier', ctypes.c_uint),
                ('text_position', ctypes.c_int), ('length', ctypes.c_int),
                ('audio_position', ctypes.c_int), ('sample', ctypes.c_int),
                ('user_data', ctypes.c_void_p), ('id', _Id)]


_EVENT_PHONEME = 7
_EVENT_LIST_TERMINATED = 0
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_RATE, _PITCH, _RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class Speaker:
    """libespeak-ng in synchronous mode; synth() returns int16 audio and the
    phoneme events as (seconds, name)."""

    def __init__(self):
        self.lib = ctypes.CDLL('libespeak-ng.so.1')
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 200, None,
                                               _INITIALIZE_PHONEME_EVENTS)
        if self.rate <= 0:
            raise RuntimeError('espeak_Initialize failed')
        self._chunks, self._events = [], []

        def on_synth(wav, n, events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                e = events[i]
                if e.type == _EVENT_PHONEME:
                    self._events.append((e.audio_position / 1000.0,
                                         e.id.string.decode('ascii', 'replace')))
                i += 1
            return 0
        self._cb = _CALLBACK(on_synth)  # kept alive for the library
        self.lib.espeak_SetSynthCallback(self._cb)

    def synth(self, text, voice, wpm, pitch):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError('espeak-ng voice %s' % voice)
        self.lib.espeak_SetParameter(_RATE, int(wpm), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self._chunks, self._events = [], []
        data = text.encode('utf-8') + b'\0'
        rc = self.lib.espeak_Synth(data, ctypes.c_size_t(len(data)), 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        if rc != 0:
            raise RuntimeError('espeak_Synth failed (%d)' % rc)
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio.astype(np.int16), list(self._events)


def write_wav(path, audio, rate):
    with wave.open(path, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.astype('<i2').tobytes())


# ---------------------------------------------------------------- visemes

# espeak-ng phoneme mnemonics (en) -> (jaw, spread, round, press, fv).
# jaw: lip gap 0..1; spread: corners out; round: corners in, lips forward;
# press: lips pressed shut (m, b, p); fv: lower lip to the upper teeth.
_V = {
    'bilabial': (0.0, 0.0, 0.0, 1.0, 0.0),
    'labiodental': (0.08, 0.1, 0.0, 0.0, 1.0),
    'open': (0.95, 0.2, 0.0, 0.0, 0.0),
    'mid': (0.55, 0.35, 0.0, 0.0, 0.0),
    'front': (0.35, 0.9, 0.0, 0.0, 0.0),
    'schwa': (0.45, 0.1, 0.0, 0.0, 0.0),
    'back_round': (0.55, 0.0, 0.7, 0.0, 0.0),
    'close_round': (0.25, 0.0, 1.0, 0.0, 0.0),
    'w': (0.15, 0.0, 0.95, 0.0, 0.0),
    'r': (0.22, 0.0, 0.45, 0.0, 0.0),
    'postalveolar': (0.2, 0.1, 0.55, 0.0, 0.0),
    'alveolar': (0.2, 0.45, 0.0, 0.0, 0.0),
    'dental': (0.25, 0.3, 0.0, 0.0, 0.0),
    'velar': (0.35, 0.2, 0.0, 0.0, 0.0),
    'rest': (0.0, 0.0, 0.0, 0.0, 0.0),
}
_PHONEME_CLASS = [
    # longest prefixes first
    ('aI', 'open'), ('aU', 'open'), ('a#', 'open'), ('eI', 'mid'), ('e@', 'mid'),
    ('oU', 'back_round'), ('OI', 'back_round'), ('O@', 'back_round'), ('i@', 'front'),
    ('U@', 'close_round'), ('tS', 'postalveolar'), ('dZ', 'postalveolar'),
    ('a', 'open'), ('A', 'open'), ('0', 'open'), ('V', 'mid'), ('E', 'mid'), ('e', 'mid'),
    ('i', 'front'), ('I', 'front'), ('@', 'schwa'), ('3', 'schwa'),
    ('O', 'back_round'), ('o', 'back_round'), ('u', 'close_round'), ('U', 'close_round'),
    ('p', 'bilabial'), ('b', 'bilabial'), ('m', 'bilabial'),
    ('f', 'labiodental'), ('v', 'labiodental'), ('w', 'w'), ('r', 'r'),
    ('S', 'postalveolar'), ('Z', 'postalveolar'), ('T', 'dental'), ('D', 'dental'),
    ('s', 'alveolar'), ('z', 'alveolar'), ('t', 'alveolar'), ('d', 'alveolar'),
    ('n', 'alveolar'), ('l', 'alveolar'), ('j', 'front'),
    ('k', 'velar'), ('g', 'velar'), ('N', 'velar'), ('h', 'velar'), ('x', 'velar'),
    ('_', 'rest'),
]


def phoneme_class(name):
    name = name.strip().lstrip("',%=")
    if not name:
        return 'rest'
    for prefix, cls in _PHONEME_CLASS:
        if name.startswith(prefix):
            return cls
    return 'schwa'


def viseme_track(events, duration, n_frames):
    """Per-frame mouth parameters [n_frames, 5] (PARAMS) for the phoneme events."""
    step = 0.005
    t = np.arange(0.0, duration + 0.5, step)
    target = np.zeros((len(t), len(PARAMS)), np.float64)  # silence before the first phoneme
    for i, (start, name) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else duration
        if end <= start:
            continue
        a, b = int(start / step), int(math.ceil(end / step))
        target[a:b] = _V[phoneme_class(name)]
    # Silence: the mouth relaxes after the last phoneme.
    last = events[-1][0] if events else 0.0
    target[int(max(last, duration) / step):] = 0.0
    # Coarticulation: Gaussian smoothing; bilabial closure stays complete.
    sigma = SMOOTH_S / step
    k = np.arange(-int(4 * sigma), int(4 * sigma) + 1)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    g /= g.sum()
    smooth = np.stack([np.convolve(target[:, c], g, mode='same') for c in range(len(PARAMS))],
                      axis=1)
    press = np.convolve(target[:, 3], np.ones(9) / 9, mode='same') > 0.5
    smooth[press, 0] = np.minimum(smooth[press, 0], 0.02)
    frame_t = np.arange(n_frames) / FPS + LEAD_S
    return np.stack([np.interp(frame_t, t, smooth[:, c]) for c in range(len(PARAMS))],
                    axis=1).astype(np.float32)


# ---------------------------------------------------------------- face

def _soft(d):
    """Anti-aliased coverage of a signed distance (pixels, negative inside)."""
    return np.clip(0.5 - d, 0.0, 1.0)


class Face:
    """The portrait with a closed mouth, and frames with any mouth on it."""

    def __init__(self):
        rgb = skimage.data.astronaut()
        big = cv2.resize(rgb[:, :, ::-1], None, fx=SCALE, fy=SCALE,
                         interpolation=cv2.INTER_CUBIC)
        self.full = big  # 1024x1024, head motion is a translation of it
        self.base = self._close_smile(big)
        self.lip = np.array(big[int(151 * SCALE), int(221 * SCALE)], np.float64)
        # The region the mouth work touches (frame coordinates, with margin).
        self.box = (int(MOUTH_CX - 44 * SCALE), int(MOUTH_CY - 16 * SCALE),
                    int(MOUTH_CX + 44 * SCALE), int(MOUTH_CY + 52 * SCALE))

    def _close_smile(self, big):
        """Removes the open, toothy smile: the lips and teeth are inpainted
        with the skin around them; frames draw their own lips."""
        mask = np.zeros(big.shape[:2], np.uint8)
        cx, cy = 224.0 * SCALE, 145.5 * SCALE
        cv2.ellipse(mask, (int(cx), int(cy)), (int(28 * SCALE), int(12 * SCALE)), 0, 0, 360,
                    255, -1)
        out = cv2.inpaint(big, mask, 9, cv2.INPAINT_TELEA)
        # Inpainting is flat: a little of the skin's own grain from the cheek
        # beside the mouth keeps the patch from looking smeared.
        grain = big.astype(np.float32) - cv2.GaussianBlur(big.astype(np.float32), (0, 0), 2)
        grain = np.roll(grain, int(30 * SCALE), axis=1)
        m = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 2)[:, :, None]
        return np.clip(out.astype(np.float32) + 0.6 * m * grain, 0, 255).astype(np.uint8)

    def window(self, img, dx, dy):
        """The 768x768 frame of an image of portrait size, translated by (dx, dy)."""
        m = np.float32([[1, 0, dx - FRAME_X0], [0, 1, dy - FRAME_Y0]])
        return cv2.warpAffine(img, m, (FRAME_W, FRAME_H), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_REPLICATE)

    def mouth(self, p):
        """The still face (frame coordinates, no head motion) with mouth p."""
        jaw, spread, rnd, press, fv = (float(v) for v in p)
        x0, y0, x1, y1 = self.box
        # Work in the portrait's coordinates: box shifted back by the window.
        px0, py0 = x0 + FRAME_X0, y0 + FRAME_Y0
        region = self.base[py0:py0 + (y1 - y0), px0:px0 + (x1 - x0)].astype(np.float32)
        h, w = region.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = MOUTH_CX - x0, MOUTH_CY - y0
        gap = MAX_OPEN * jaw
        half_w = MOUTH_HALF_W * (1.0 + 0.12 * spread - 0.28 * rnd)
        # Displacement: the jaw and lower lip go down by `gap` (fading towards the
        # chin and the cheeks), the upper lip up a little, the corners in or out.
        # Compact falloffs: zero well inside the box, so no seam at its edges.
        fall_x = np.clip(1.0 - ((xx - cx) / (38.0 * SCALE)) ** 2, 0, 1) ** 2
        below = np.clip((yy - cy + 2 * SCALE) / (4.0 * SCALE), 0, 1)
        fall_y = below * np.clip(1.0 - (yy - cy) / (46.0 * SCALE), 0, 1) ** 0.7
        dy = gap * fall_x * fall_y - 0.15 * gap * fall_x * (1 - below) * \
            np.exp(-0.5 * ((yy - cy) / (6.0 * SCALE)) ** 2)
        side = np.clip((xx - cx) / MOUTH_HALF_W, -1.5, 1.5)
        near = np.exp(-0.5 * ((yy - cy) / (8.0 * SCALE)) ** 2)
        dx = (half_w - MOUTH_HALF_W) * side * near * np.exp(-0.5 * (side / 1.2) ** 2)
        face = cv2.remap(region, xx - dx, yy - dy, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        # Lip shapes relative to the (moved) lip line.
        u = (xx - cx) / half_w                      # -1 .. 1 across the mouth
        inside = np.clip(1.0 - u * u, 0.0, 1.0)
        shape = np.sqrt(inside)
        upper_in = cy - 0.2 * gap * shape           # upper lip's inner edge
        lower_in = cy + 0.8 * gap * shape + (1.0 - press) * 0.3  # lower lip's inner edge
        thick_u = (3.2 - 0.8 * press + 0.8 * rnd) * SCALE * (0.35 + 0.65 * shape)
        thick_l = (4.8 - 1.2 * press + 1.0 * rnd - 1.5 * fv) * SCALE * (0.35 + 0.65 * shape)
        lower_in = lower_in - fv * 2.5 * SCALE * shape
        lip_u = _soft(np.maximum(upper_in - thick_u - yy, yy - upper_in)) * _soft(np.abs(u) * half_w - half_w)
        lip_l = _soft(np.maximum(lower_in - yy, yy - lower_in - thick_l)) * _soft(np.abs(u) * half_w - half_w)
        cavity = _soft(np.maximum(upper_in - yy, yy - lower_in)) * _soft(np.abs(u) * half_w * 1.02 - half_w * 0.98)
        cavity *= np.clip(gap / (1.0 * SCALE), 0, 1)
        lip_col = self.lip
        shade_u = 0.85 + 0.15 * np.clip((yy - (upper_in - thick_u)) / np.maximum(thick_u, 1), 0, 1)
        shade_l = 1.05 - 0.2 * np.clip((yy - lower_in) / np.maximum(thick_l, 1), 0, 1)
        out = face
        out = out * (1 - lip_l[..., None]) + (lip_col * shade_l[..., None]) * lip_l[..., None]
        # Mouth interior: dark cavity, tongue tint low, upper teeth under the upper lip.
        depth = np.clip((yy - upper_in) / np.maximum(lower_in - upper_in, 1.0), 0, 1)
        cav_col = np.stack([28 + 0 * yy, 22 + 0 * yy, 45 + 0 * yy], -1)
        tongue = np.clip((depth - 0.55) / 0.3, 0, 1) * inside
        cav_col = cav_col * (1 - tongue[..., None]) + np.array([85, 80, 165.0]) * tongue[..., None]
        teeth_h = min(gap * 0.4, 4.0 * SCALE) + fv * 3.0 * SCALE
        teeth = _soft(yy - (upper_in + teeth_h)) * _soft(np.abs(u) - 0.75)
        cav_col = cav_col * (1 - teeth[..., None]) + np.array([205, 215, 225.0]) * teeth[..., None]
        open_mask = np.maximum(cavity, (fv * teeth * _soft(yy - lower_in - 1.0) *
                                        _soft(upper_in - yy - 0.5) * 0))
        out = out * (1 - open_mask[..., None]) + cav_col * open_mask[..., None]
        if fv > 0:  # upper teeth resting on the lower lip
            tv = fv * _soft(np.maximum(upper_in - yy, yy - (upper_in + 2.2 * SCALE * fv))) * \
                _soft(np.abs(u) - 0.7)
            out = out * (1 - tv[..., None]) + np.array([205, 215, 225.0]) * tv[..., None]
        out = out * (1 - lip_u[..., None]) + (lip_col * 0.9 * shade_u[..., None]) * lip_u[..., None]
        still = self.base.copy()
        still[py0:py0 + h, px0:px0 + w] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return still

    def frame(self, p, avatar_index):
        dx, dy = head_motion(avatar_index)
        return self.window(self.mouth(p), dx, dy)


# ---------------------------------------------------------------- text

_WORDS = {
    'bilabial': 'maybe baby bubble pepper mumble bobby pop moppet bump embark member'.split(),
    'labiodental': 'five fever vivid fluffy effort valve offer coffee fifty vivify'.split(),
    # u: and U (the near-close rounded vowel of "good"): the same rounded lips.
    'rounded': ('blue moon who you food boot two noodle soup room zoo woo '
                'good book wood foot look cook put pull push sugar woman could').split(),
    'open': 'father calm spa top hot car park large arm palm drama'.split(),
    'spread': 'see me cheese keep team sleep green tea bee east'.split(),
    'fricative': 'she sea shoe zest sister fresh thick those wish measure'.split(),
    'mixed': ('hello world the quick brown fox jumps over a lazy dog table chair window '
              'morning evening summer winter water bottle paper market river mountain '
              'music simple always never better happy yellow purple orange violet').split(),
}
VALIDATION = [
    ('Please bring me a warm cup of coffee before the movie.', 'en+f3', 155, 50),
    ('We often walk by the blue river when the moon is full.', 'en-us+m3', 170, 45),
    ('Five happy people sang about the open sea.', 'en+m6', 145, 60),
    ('My mother keeps the photos in a wooden box.', 'en-us+f4', 180, 55),
]
TRAIN_VOICES = ['en+m1', 'en+m2', 'en+m4', 'en+m7', 'en+f1', 'en+f2', 'en+f5',
                'en-us+m1', 'en-us+m2', 'en-us+f1', 'en-us+f2', 'en-us+m5']


def compose_sentence(rng):
    n = rng.randint(4, 9)
    groups = list(_WORDS)
    words = [rng.choice(_WORDS[rng.choice(groups)]) for _ in range(n)]
    text = ' '.join(words)
    if rng.random() < 0.5:  # a pause inside the sentence
        cut = rng.randint(1, n - 1)
        text = ' '.join(words[:cut]) + '. ' + ' '.join(words[cut:])
    return text.capitalize() + '.'


# ---------------------------------------------------------------- output

def make_clip(speaker, face, out_dir, text, voice, wpm, pitch, ext, jpeg_quality=95):
    audio, events = speaker.synth(text, voice, wpm, pitch)
    # Quarter-second pads of silence: the mouth starts and ends closed.
    pad = np.zeros(speaker.rate // 4, np.int16)
    audio = np.concatenate([pad, audio, pad])
    events = [(t + 0.25, n) for t, n in events]
    duration = len(audio) / speaker.rate
    n_frames = int(round(duration * FPS))
    vis = viseme_track(events, duration, n_frames)
    os.makedirs(os.path.join(out_dir, 'frames'), exist_ok=True)
    write_wav(os.path.join(out_dir, 'speech.wav'), audio, speaker.rate)
    rects = []
    for k in range(n_frames):
        a = pingpong(N_AVATAR_FRAMES, k)
        img = face.frame(vis[k], a)
        path = os.path.join(out_dir, 'frames', 'frame_%04d.%s' % (k, ext))
        if ext == 'jpg':
            cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        else:
            cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        rects.append(crop_rect(a))
    with open(os.path.join(out_dir, 'crop_rects.json'), 'w') as f:
        json.dump(rects, f)
    np.save(os.path.join(out_dir, 'visemes.npy'), vis)
    with open(os.path.join(out_dir, 'phonemes.json'), 'w') as f:
        json.dump({'text': text, 'voice': voice, 'wpm': wpm, 'pitch': pitch,
                   'rate': speaker.rate, 'params': PARAMS,
                   'phonemes': [[round(t, 4), n] for t, n in events]}, f, indent=1)
    return n_frames


def write_avatar(face, out_dir):
    frames = os.path.join(out_dir, 'frames')
    os.makedirs(frames, exist_ok=True)
    closed = np.zeros(len(PARAMS), np.float32)
    still = face.mouth(closed)
    rects = []
    for i in range(N_AVATAR_FRAMES):
        dx, dy = head_motion(i)
        cv2.imwrite(os.path.join(frames, 'frame_%04d.png' % i), face.window(still, dx, dy))
        rects.append(crop_rect(i))
    with open(os.path.join(out_dir, 'crop_rects.json'), 'w') as f:
        json.dump(rects, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['avatar', 'dataset', 'validation', 'sample'])
    ap.add_argument('out')
    ap.add_argument('--clips', type=int, default=160)
    ap.add_argument('--seed', type=int, default=20261203)
    args = ap.parse_args()
    face = Face()
    if args.what == 'avatar':
        write_avatar(face, args.out)
        return 0
    if args.what == 'sample':  # a contact strip of mouth shapes, for looking at
        tiles = []
        for name in ('rest', 'bilabial', 'labiodental', 'open', 'mid', 'front', 'close_round'):
            img = face.frame(np.array(_V[name], np.float32), 0)
            x1, y1, x2, y2 = BASE_RECT
            tiles.append(img[y1:y2, x1:x2])
        cv2.imwrite(args.out, np.concatenate(tiles, axis=1))
        return 0
    speaker = Speaker()
    if args.what == 'validation':
        for i, (text, voice, wpm, pitch) in enumerate(VALIDATION):
            make_clip(speaker, face, os.path.join(args.out, 'val_%d' % i), text, voice, wpm,
                      pitch, 'png')
        return 0
    rng = random.Random(args.seed)
    val_texts = {v[0] for v in VALIDATION}
    total = 0
    for i in range(args.clips):
        text = compose_sentence(rng)
        if text in val_texts:
            continue
        voice = rng.choice(TRAIN_VOICES)
        total += make_clip(speaker, face, os.path.join(args.out, 'clip_%03d' % i), text, voice,
                           rng.randint(130, 190), rng.randint(30, 70), 'jpg')
        print('\rclips %d/%d, %d frames' % (i + 1, args.clips, total), end='', file=sys.stderr)
    print(file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
