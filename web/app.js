// lipsync browser client: streams audio to /v1/stream and shows the frames.
//
// File source: the file is decoded locally, sent at full speed (the server
// buffers frames), and played back once frames arrive; each animation frame
// draws the video frame whose timestamp matches the audio clock, so picture
// and sound stay in sync. Microphone source: live mode (the server flushes
// per chunk and paces frames at 25 fps); frames are drawn as they arrive.
// Frame messages: "LSF1", u32 flags (bit 0: silent, sent without inference),
// i64 index, f64 timestamp, JPEG (LE).
'use strict';

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get('token') || '';
const authHeaders = token ? { Authorization: 'Bearer ' + token } : {};

const stats = { state: 'idle', received: 0, drawn: 0, silent: 0, firstFrameMs: null, done: false,
                errors: [], speech: 0, serverFps: 0 };
window.lipsync = { stats };  // read by the end-to-end test

function log(text) {
  const el = $('log');
  el.textContent += text + '\n';
  el.scrollTop = el.scrollHeight;
}

function show() {
  $('s-state').textContent = stats.state;
  $('s-received').textContent = stats.received;
  $('s-drawn').textContent = stats.drawn;
  $('s-silent').textContent = stats.silent;
  $('s-first').textContent = stats.firstFrameMs === null ? '–' : stats.firstFrameMs.toFixed(0);
  $('s-server').textContent = stats.serverFps ? stats.serverFps.toFixed(1) + ' fps' : '–';
}

async function api(path) {
  const r = await fetch(path, { headers: authHeaders });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function loadModels() {
  try {
    const h = await api('/health');
    $('health').textContent = `server ${h.version}, ${h.sessions}/${h.max_sessions} sessions`;
    const m = await api('/v1/models');
    $('model').innerHTML = '';
    for (const e of m.models) {
      const o = document.createElement('option');
      o.value = e.id;
      o.textContent = `${e.id} (${e.state})`;
      $('model').appendChild(o);
    }
  } catch (e) {
    log('error: ' + e.message);
  }
}

let session = null;

class Session {
  constructor(model, startFrame, live) {
    this.live = live;
    this.frames = new Map();  // index -> ImageBitmap, waiting for their time
    this.t0 = 0;              // performance.now() of the first audio byte
    this.fpsWindow = [];
    this.audioCtx = new AudioContext();
    this.playStart = null;    // audioCtx time at which frame 0's audio plays
    const q = new URLSearchParams({ model });
    if (token) q.set('token', token);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.ws = new WebSocket(`${proto}//${location.host}/v1/stream?${q}`);
    this.ws.binaryType = 'arraybuffer';
    this.startFrame = startFrame;
    this.ws.onmessage = (ev) => this.onMessage(ev);
    this.ws.onclose = (ev) => {
      stats.state = stats.done ? 'done' : 'closed';
      log(`closed (${ev.code} ${ev.reason || ''})`);
      show();
      this.closed = true;
    };
    this.opened = new Promise((ok, fail) => {
      this.ws.onopen = ok;
      this.ws.onerror = () => fail(new Error('WebSocket failed (see server log)'));
    });
    this.draw = this.draw.bind(this);
    requestAnimationFrame(this.draw);
  }

  sendStart(rate) {
    this.ws.send(JSON.stringify({ type: 'start', format: 'f32le', rate, channels: 1,
                                  start_frame: this.startFrame, live: this.live }));
  }

  onMessage(ev) {
    if (typeof ev.data === 'string') {
      const m = JSON.parse(ev.data);
      if (m.type === 'error') { stats.errors.push(m.message); log('error: ' + m.message); }
      else if (m.type === 'done') {
        stats.done = true;
        log(`done: ${m.frames} frames`);
        this.maybePlay();
      }
      else if (m.type === 'stats') stats.serverFps = m.fps;
      else if (m.type.startsWith('speech')) {
        stats.speech++;
        $('s-speech').textContent = m.type === 'speech_start' ? 'speaking' : 'silent';
      } else log(JSON.stringify(m));
      show();
      return;
    }
    const dv = new DataView(ev.data);
    if (ev.data.byteLength < 24 || dv.getUint32(0, false) !== 0x4c534631) return;  // "LSF1"
    const index = Number(dv.getBigInt64(8, true));
    const jpeg = new Blob([new Uint8Array(ev.data, 24)], { type: 'image/jpeg' });
    if (stats.received === 0) stats.firstFrameMs = performance.now() - this.t0;
    stats.received++;
    if (dv.getUint32(4, true) & 1) stats.silent++;  // the avatar's own frame: silence, no inference
    const now = performance.now();
    this.fpsWindow.push(now);
    while (this.fpsWindow.length && now - this.fpsWindow[0] > 1000) this.fpsWindow.shift();
    $('s-fps').textContent = this.fpsWindow.length;
    createImageBitmap(jpeg).then((bmp) => {
      if (this.live) this.paint(bmp);
      else this.frames.set(index, bmp);
      this.maybePlay();
    });
    show();
  }

  paint(bmp) {
    const c = $('view');
    if (c.width !== bmp.width || c.height !== bmp.height) {
      c.width = bmp.width;
      c.height = bmp.height;
    }
    c.getContext('2d').drawImage(bmp, 0, 0);
    bmp.close();
    stats.drawn++;
  }

  // File mode: the picture follows the audio clock; late frames are skipped.
  draw() {
    if (!this.live && this.playStart !== null) {
      const due = Math.floor(this.clock() * 25);
      let shown = -1;
      for (const i of this.frames.keys()) if (i <= due && i > shown) shown = i;
      if (shown >= 0) {
        for (const [i, bmp] of this.frames)
          if (i < shown) { bmp.close(); this.frames.delete(i); }
        const bmp = this.frames.get(shown);
        this.frames.delete(shown);
        this.paint(bmp);
      }
    }
    if (session === this) requestAnimationFrame(this.draw);  // until the next session
    show();
  }

  // Playback starts once frames come faster than real time (or all are in),
  // so the picture does not fall behind the sound.
  maybePlay() {
    if (this.live || this.playStart !== null || !this.buffer) return;
    const secs = (performance.now() - this.t0) / 1000;
    if (stats.done || (stats.received >= 25 && stats.received / secs >= 27)) this.play();
  }

  play() {
    const src = this.audioCtx.createBufferSource();
    src.buffer = this.buffer;
    src.connect(this.audioCtx.destination);
    this.playStart = this.audioCtx.currentTime + 0.05;
    this.playStartWall = performance.now() + 50;
    src.start(this.playStart);
    this.audioCtx.resume();
    stats.state = 'playing';
  }

  // Seconds of audio played: the audio clock while it advances; the wall
  // clock where it does not (no sound device: the context stays suspended
  // or its time stands still).
  clock() {
    const now = performance.now(), t = this.audioCtx.currentTime;
    stats.audioState = this.audioCtx.state;
    if (t !== this.lastAudioTime) {
      this.lastAudioTime = t;
      this.lastAudioWall = now;
    }
    if (this.audioCtx.state === 'running' && now - this.lastAudioWall < 250)
      return t - this.playStart;
    return (now - this.playStartWall) / 1000;
  }

  async streamFile(file) {
    const bytes = await file.arrayBuffer();
    this.buffer = await this.audioCtx.decodeAudioData(bytes);
    const ch = this.buffer.numberOfChannels, n = this.buffer.length;
    const mono = new Float32Array(n);
    for (let c = 0; c < ch; c++) {
      const d = this.buffer.getChannelData(c);
      for (let i = 0; i < n; i++) mono[i] += d[i] / ch;
    }
    await this.opened;
    this.sendStart(this.buffer.sampleRate);
    stats.state = 'streaming';
    this.t0 = performance.now();
    const chunk = Math.round(this.buffer.sampleRate * 0.2);
    for (let at = 0; at < n; at += chunk)
      this.ws.send(mono.slice(at, Math.min(n, at + chunk)).buffer);
    this.ws.send(JSON.stringify({ type: 'end' }));
  }

  async streamMic() {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true });
    await this.opened;
    const src = this.audioCtx.createMediaStreamSource(media);
    const proc = this.audioCtx.createScriptProcessor(2048, 1, 1);
    this.sendStart(this.audioCtx.sampleRate);
    stats.state = 'live';
    this.t0 = performance.now();
    proc.onaudioprocess = (e) => {
      if (this.ws.readyState === WebSocket.OPEN)
        this.ws.send(new Float32Array(e.inputBuffer.getChannelData(0)).buffer);
    };
    src.connect(proc);
    proc.connect(this.audioCtx.destination);  // keeps the processor running; outputs silence
    this.stopMic = () => { proc.disconnect(); media.getTracks().forEach((t) => t.stop()); };
  }

  end() {
    if (this.stopMic) this.stopMic();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'end' }));
  }
}

$('start').onclick = async () => {
  Object.assign(stats, { received: 0, drawn: 0, silent: 0, firstFrameMs: null, done: false, errors: [],
                         speech: 0, serverFps: 0 });
  const mic = $('source').value === 'mic';
  if (!mic && !$('file').files.length) { log('choose an audio file first'); return; }
  session = new Session($('model').value, Number($('start-frame').value) || 0, mic);
  $('interrupt').disabled = $('stop').disabled = false;
  try {
    if (mic) await session.streamMic();
    else await session.streamFile($('file').files[0]);
  } catch (e) {
    stats.errors.push(e.message);
    log('error: ' + e.message);
  }
};
$('interrupt').onclick = () => {
  if (!session) return;
  session.ws.send(JSON.stringify({ type: 'interrupt' }));
  session.frames.clear();
};
$('stop').onclick = () => session && session.end();

loadModels();
show();
