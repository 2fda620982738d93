#!/usr/bin/python3
"""Lip-sync accuracy of a model directory on the held-out synthetic sentences.

usage: lipsync_check.py --lipsync build/lipsync --model MODEL_DIR --work DIR
                        [--report REPORT.json] [--sheet SHEET.png] [--strict]

For every validation sentence of tools/talking_face.py (text and voice never
seen in training) it makes the ground truth (speech, per-frame mouth
parameters, frames), renders the speech and a silence of the same length
through `lipsync render`, and measures on the rendered frames:
- openness: the mean absolute difference of the mouth box to the silent
  render's frame (the same avatar frame, so only the mouth differs);
- r: Pearson correlation of openness with the ground-truth jaw opening, at
  lags -5..5 frames; sync means the peak is at lag 0 (within one frame);
- PSNR of the mouth box against the ground-truth frames;
- silence: the silent render's mouth against the avatar's own closed mouth;
- paint away from the mouth: pixels outside the mouth box (with a margin,
  more below it for the jaw) where the speech render differs from the silent
  render by more than 25 levels; the audio must change nothing there.
With --strict it exits 1 unless every sentence has r >= 0.8 at lag 0, a peak
within one frame of 0, PSNR >= 26 dB, the silent mouth stays closed
(openness of the silent render against the avatar below 15% of the speech's
mean openness where the jaw is half open or more), and no frame has more
than 150 such pixels away from the mouth. --min-r and --min-psnr
set other floors (the test suite holds the shipped model to what it reached).
"""
import argparse
import json
import os
import subprocess
import sys
import wave

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import talking_face as tf  # noqa: E402

MIN_R = 0.8
MIN_PSNR = 26.0
MAX_SILENT_RATIO = 0.15
MAX_AWAY_PIXELS = 150   # per frame; a smudge of lip colour on the cheek is 300-700
LAGS = range(-5, 6)


def render(lipsync, model, wav, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([lipsync, 'render', model, wav, '--frames-dir', out_dir, '--frame-format',
                    'png', '--quiet'], check=True, stdout=subprocess.DEVNULL)
    frames = []
    k = 0
    while os.path.exists(os.path.join(out_dir, 'frame_%06d.png' % k)):
        frames.append(cv2.imread(os.path.join(out_dir, 'frame_%06d.png' % k)))
        k += 1
    if not frames:
        raise SystemExit('lipsync_check: render of %s gave no frames' % wav)
    return frames


def box_of(img, k):
    x0, y0, x1, y1 = tf.mouth_box(tf.pingpong(tf.N_AVATAR_FRAMES, k))
    return img[y0:y1, x0:x1].astype(np.float64)


def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def lagged_r(openness, jaw, lag):
    """r between openness[k + lag] and jaw[k]: a positive peak lag means the
    video is late."""
    n = len(jaw)
    if lag >= 0:
        return pearson(openness[lag:n], jaw[:n - lag])
    return pearson(openness[:n + lag], jaw[-lag:n])


def check_sentence(args, face, i, text, voice, wpm, pitch):
    speaker = check_sentence.speaker
    d = os.path.join(args.work, 'val_%d' % i)
    n_gt = tf.make_clip(speaker, face, d, text, voice, wpm, pitch, 'png')
    jaw_all = np.load(os.path.join(d, 'visemes.npy'))[:, 0]
    with open(os.path.join(d, 'phonemes.json')) as f:
        meta = json.load(f)
    with wave.open(os.path.join(d, 'speech.wav')) as w:
        n_samples, rate = w.getnframes(), w.getframerate()
    tf.write_wav(os.path.join(d, 'silence.wav'), np.zeros(n_samples, np.int16), rate)
    speech = render(args.lipsync, args.model, os.path.join(d, 'speech.wav'), os.path.join(d, 'r'))
    silent = render(args.lipsync, args.model, os.path.join(d, 'silence.wav'),
                    os.path.join(d, 's'))
    n = min(n_gt, len(speech), len(silent))
    still = face.mouth(np.zeros(len(tf.PARAMS), np.float32))
    openness, silent_open, psnrs, silent_psnrs, away_px = [], [], [], [], []
    for k in range(n):
        gt = cv2.imread(os.path.join(d, 'frames', 'frame_%04d.png' % k))
        avatar = face.window(still, *tf.head_motion(tf.pingpong(tf.N_AVATAR_FRAMES, k)))
        r, s = box_of(speech[k], k), box_of(silent[k], k)
        openness.append(np.mean(np.abs(r - s)))
        silent_open.append(np.mean(np.abs(s - box_of(avatar, k))))
        psnrs.append(psnr(r, box_of(gt, k)))
        silent_psnrs.append(psnr(s, box_of(avatar, k)))
        x0, y0, x1, y1 = tf.mouth_box(tf.pingpong(tf.N_AVATAR_FRAMES, k))
        away = np.ones(speech[k].shape[:2], bool)
        away[max(0, y0 - 30):y1 + 40, max(0, x0 - 20):x1 + 20] = False
        diff = np.abs(speech[k].astype(np.int16) - silent[k].astype(np.int16)).max(axis=2)
        away_px.append(int(((diff > 25) & away).sum()))
    openness = np.array(openness)
    jaw = jaw_all[:n]
    rs = {lag: lagged_r(openness, jaw, lag) for lag in LAGS}
    peak = max(rs, key=lambda lag: rs[lag])
    # PSNR over the whole sentence's mouth boxes (the mean squared error pooled).
    mse = np.mean([255.0 ** 2 / 10 ** (p / 10) for p in psnrs])
    open_ref = float(openness[jaw >= 0.5].mean()) if (jaw >= 0.5).any() else float('nan')
    res = {'sentence': text, 'voice': voice, 'frames': n, 'r': rs[0], 'peak_lag': peak,
           'r_peak': rs[peak], 'psnr_db': float(10 * np.log10(255.0 ** 2 / mse)),
           'psnr_min_frame_db': float(min(psnrs)),
           'silent_openness': float(np.mean(silent_open)), 'speech_openness_open': open_ref,
           'silent_psnr_db': float(np.mean(silent_psnrs)), 'away_pixels_max': max(away_px)}
    res['silent_ratio'] = res['silent_openness'] / open_ref if open_ref > 0 else float('inf')
    res['ok'] = bool(res['r'] >= args.min_r and abs(peak) <= 1 and res['psnr_db'] >= args.min_psnr and
                     res['silent_ratio'] <= MAX_SILENT_RATIO and
                     res['away_pixels_max'] <= MAX_AWAY_PIXELS)
    res['_frames'] = (speech, meta, n)
    return res


def contact_sheet(path, res, tiles=8):
    """A strip of about 8 rendered face crops across one sentence, each with
    the phonemes sounding at its time written under it."""
    speech, meta, n = res['_frames']
    picks = np.linspace(n * 0.12, n * 0.88, tiles).astype(int)
    cells = []
    for k in picks:
        x1, y1, x2, y2 = tf.crop_rect(tf.pingpong(tf.N_AVATAR_FRAMES, int(k)))
        crop = cv2.resize(speech[k][y1:y2, x1:x2], (192, 192), interpolation=cv2.INTER_AREA)
        t = k / tf.FPS
        near = [p for tp, p in meta['phonemes'] if abs(tp - t) <= 0.06 and not p.startswith('_')]
        label = np.full((44, 192, 3), 255, np.uint8)
        cv2.putText(label, '%.2f s  frame %d' % (t, k), (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(label, ' '.join(near)[:22] or '(pause)', (6, 38), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cells.append(np.concatenate([crop, label], axis=0))
        cells.append(np.full((236, 4, 3), 255, np.uint8))
    strip = np.concatenate(cells[:-1], axis=1)
    title = np.full((30, strip.shape[1], 3), 255, np.uint8)
    cv2.putText(title, '"%s"  (held-out sentence, voice %s)' % (res['sentence'], res['voice']),
                (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, np.concatenate([title, strip], axis=0))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lipsync', required=True)
    ap.add_argument('--model', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--report')
    ap.add_argument('--sheet')
    ap.add_argument('--strict', action='store_true')
    ap.add_argument('--min-r', type=float, default=MIN_R, help='default %(default)s')
    ap.add_argument('--min-psnr', type=float, default=MIN_PSNR, help='dB, default %(default)s')
    ap.add_argument('--sentences', type=int, default=len(tf.VALIDATION),
                    help='check only the first N validation sentences')
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    face = tf.Face()
    check_sentence.speaker = tf.Speaker()
    results = []
    for i, v in enumerate(tf.VALIDATION[:args.sentences]):
        res = check_sentence(args, face, i, *v)
        print('%-58s r %.3f  peak lag %+d (r %.3f)  PSNR %.1f dB  silent %.2f/%.2f (%.0f%%)  '
              'away %d px  %s'
              % ('"%s"' % res['sentence'][:55], res['r'], res['peak_lag'], res['r_peak'],
                 res['psnr_db'], res['silent_openness'], res['speech_openness_open'],
                 100 * res['silent_ratio'], res['away_pixels_max'], 'ok' if res['ok'] else 'FAIL'))
        if args.sheet and i == 0:
            contact_sheet(args.sheet, res)
        results.append(res)
    for r in results:
        del r['_frames']
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(results, f, indent=1)
    ok = all(r['ok'] for r in results)
    print('lip-sync check: %d of %d sentences pass (r >= %.2f at lag 0, peak within one frame, '
          'PSNR >= %.1f dB, silent mouth closed, at most %d px painted away from the mouth)'
          % (sum(r['ok'] for r in results), len(results), args.min_r, args.min_psnr,
             MAX_AWAY_PIXELS))
    return 0 if ok or not args.strict else 1


if __name__ == '__main__':
    sys.exit(main())
