// lipsync browser client: streams audio to /v1/stream and shows the frames.
//
// One session at a time: Start is disabled from the moment a session starts
// until it has ended (done, stopped, interrupted in file mode, or failed),
// and every end goes through Session.finish(), which stops the sound, the
// picture and the WebSocket at once.
//
// File source: the file is decoded locally and sent at full speed (the server
// queues the frames), then `end`. Frames are kept as JPEG blobs and decoded
// just ahead of their time. Playback starts as soon as the frames still to
// come should arrive before they are due, at the arrival rate seen so far
// (a "safe buffer"), and pauses to buffer if it catches up with them anyway.
// Each animation frame draws the video frame whose time matches the audio
// clock, so picture and sound stay in sync; "done" is when playback ends.
//
// Microphone source: live mode (the server flushes per chunk and paces frames
// at 25 fps); frames are drawn as they arrive. The latency (how old the sound
// the picture shows is) and the backlog (audio sent that no frame covers yet)
// are shown, with a warning when the server falls behind.
//
// Before a session the canvas shows the avatar at the start frame: one frame
// of silence from POST /v1/batch.
//
// Frame messages: "LSF1", u32 flags (bit 0: silent, sent without inference),
// i64 index, f64 timestamp, JPEG (LE).
'use strict';

const $ = (id) => document.getElementById(id);
const FPS = 25;
const TOKEN_KEY = 'lipsync.token';
const POLL_MS = 2000;          // /health and /v1/models refresh
const MIN_BUFFER = 10;         // file mode: frames in hand before playback may start
const LATENCY_WARN_S = 1.5;    // live mode: warn above this latency ...
const BACKLOG_GROWTH_S = 0.5;  // ... or when the backlog grew this much over the last 5 s
const PREVIEW_MAX_FRAME = 1500;  // the preview sends silence from frame 0 (60 s here)

const fresh = () => ({
  state: 'idle', received: 0, drawn: 0, silent: 0, firstFrameMs: null, errors: [], speech: 0, speaking: null,
  serverFps: 0, done: false, serverDone: false, totalFrames: null, lastDrawn: -1,
  playStartMs: null, playedBeforeServerDone: null, serverDoneMs: null, doneMs: null, stalls: 0,
  latencyS: null, backlogS: null, warning: '', interrupted: 0, audioState: null,
});
const stats = Object.assign(fresh(), { sockets: 0, previews: 0 });
let session = null;
// Read by the end-to-end test.
window.lipsync = { stats, session: () => session };

function log(text) {
  const el = $('log');
  el.textContent += text + '\n';
  el.scrollTop = el.scrollHeight;
}

// The line under the controls: the latest problem the user has to act on.
function notice(text) {
  if (text && text !== $('notice').textContent) log(text);
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function show() {
  $('s-state').textContent = stats.state;
  $('s-received').textContent = stats.received;
  $('s-drawn').textContent = stats.drawn;
  $('s-silent').textContent = stats.silent;
  $('s-first').textContent = stats.firstFrameMs === null ? '–' : stats.firstFrameMs.toFixed(0);
  $('s-speech').textContent = stats.speaking === null ? '–' : stats.speaking ? 'speaking' : 'silent';
  $('s-server').textContent = stats.serverFps ? stats.serverFps.toFixed(1) + ' fps' : '–';
  $('s-play').textContent = stats.lastDrawn < 0 ? '–' :
    `frame ${stats.lastDrawn}` + (stats.totalFrames ? ` of ${stats.totalFrames}` : '');
  $('s-latency').textContent = stats.latencyS === null ? '–' : stats.latencyS.toFixed(2) + ' s';
  $('s-backlog').textContent = stats.backlogS === null ? '–' :
    `${stats.backlogS.toFixed(2)} s (${Math.max(0, Math.round(stats.backlogS * FPS))} frames)`;
  $('warn').textContent = stats.warning;
  $('warn').hidden = !stats.warning;
}

// ---- the token: ?token= in the address, else what this tab entered before

{
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl !== null) sessionStorage.setItem(TOKEN_KEY, fromUrl);
  $('token').value = sessionStorage.getItem(TOKEN_KEY) || '';
}
const token = () => $('token').value.trim();

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Every API call but /health wants the token; a 401 becomes the one message
// the user can act on.
async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (token()) headers.Authorization = 'Bearer ' + token();
  const r = await fetch(path, { ...init, headers });
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (r.status === 401) throw new HttpError(401, 'wrong or missing token');
  if (!r.ok) throw new HttpError(r.status, (body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function authFailed(e) {
  if (e.status !== 401) return false;
  $('token').classList.add('bad');
  notice('wrong or missing token: enter the server\'s token');
  return true;
}

function authOk() {
  if (!$('token').classList.contains('bad')) return;
  $('token').classList.remove('bad');
  if ($('notice').textContent.includes('wrong or missing token')) notice('');
}

// ---- server state: polled, so session counts and model states stay current

async function refreshHealth() {
  try {
    const r = await fetch('/health');
    const h = await r.json();
    $('health').textContent = `server ${h.version}` + (h.status === 'draining' ? ' (draining)' : '') +
      ` · ${h.sessions}/${h.max_sessions} sessions · ${h.jobs}/${h.max_jobs} jobs`;
  } catch {
    $('health').textContent = 'server unreachable';
  }
}

async function refreshModels() {
  let m;
  try {
    m = await api('/v1/models');
  } catch (e) {
    if (authFailed(e)) setModels([]);
    else log('models: ' + e.message);
    return;
  }
  authOk();
  const before = $('model').value;
  setModels(m.models);
  if ($('model').value && $('model').value !== before) preview();
}

// Rebuilt only when something changed, so an open drop-down is left alone;
// the selection is kept.
function setModels(models) {
  const sel = $('model');
  const label = (e) => `${e.id} (${e.state}${e.users ? `, ${e.users} in use` : ''})`;
  const want = models.map((e) => e.id + '\n' + label(e)).join('\n');
  if (sel.dataset.list === want) return;
  sel.dataset.list = want;
  const keep = sel.value;
  sel.innerHTML = '';
  for (const e of models) {
    const o = document.createElement('option');
    o.value = e.id;
    o.textContent = label(e);
    sel.appendChild(o);
  }
  if (models.some((e) => e.id === keep)) sel.value = keep;
}

function refresh() {
  refreshHealth();
  refreshModels();
}

// ---- the canvas

function paint(bmp) {
  const c = $('view');
  if (c.width !== bmp.width || c.height !== bmp.height) {
    c.width = bmp.width;
    c.height = bmp.height;
  }
  c.getContext('2d').drawImage(bmp, 0, 0);
  bmp.close();
}

const startFrame = () => Math.max(0, Math.floor(Number($('start-frame').value) || 0));

// The avatar before Start: frame N of a stream of silence, from the batch API
// (which takes the stream's audio from its start, and at least 0.2 s).
let previewSeq = 0;
async function preview() {
  const model = $('model').value, start = startFrame();
  if (!model || session) return;
  if (start > PREVIEW_MAX_FRAME) { log(`no preview past frame ${PREVIEW_MAX_FRAME}`); return; }
  const seq = ++previewSeq;
  const samples = Math.max(4000, (start + 1) * 640 + 1600);  // 16 kHz
  try {
    const r = await api(`/v1/batch?${new URLSearchParams({ model, batch_size: 1, start_frame: start })}`, {
      method: 'POST', headers: { 'Content-Type': 'application/octet-stream' },
      body: new Float32Array(samples),
    });
    const jpeg = Uint8Array.from(atob(r.frames[0].jpeg), (ch) => ch.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([jpeg], { type: 'image/jpeg' }));
    if (seq !== previewSeq || session) { bmp.close(); return; }  // superseded
    paint(bmp);
    stats.previews++;
  } catch (e) {
    if (!authFailed(e)) log('preview: ' + e.message);
  }
}
let previewTimer = 0;
const previewSoon = () => { clearTimeout(previewTimer); previewTimer = setTimeout(preview, 300); };

// ---- a session

class Session {
  constructor(model, start, live) {
    this.model = model;
    this.startFrame = start;
    this.live = live;
    this.frames = new Map();  // file mode: index -> { blob, bmp }, waiting for their time
    this.t0 = 0;              // performance.now() of the first audio byte
    this.fpsWindow = [];
    this.audioCtx = new AudioContext();
    this.playing = false;     // file mode: playback started (and not paused to buffer)
    this.started = false;
    this.finished = false;
    const q = new URLSearchParams({ model });
    if (token()) q.set('token', token());  // browsers cannot set headers on WebSockets
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.ws = new WebSocket(`${proto}//${location.host}/v1/stream?${q}`);
    stats.sockets++;
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (ev) => this.onMessage(ev);
    this.ws.onclose = (ev) => this.onClose(ev);
    this.opened = new Promise((ok, fail) => {
      this.ws.onopen = () => { this.isOpen = true; ok(); };
      // A refused upgrade: the session fails where `opened` is awaited.
      this.ws.onerror = () => {
        if (this.isOpen) return;
        if (this.finished) fail(new Error('stopped'));  // closed by Stop while connecting
        else this.diagnose().then((why) => fail(new Error(why)));
      };
    });
    this.opened.catch(() => {});  // handled where awaited
    this.tick = this.tick.bind(this);
    requestAnimationFrame(this.tick);
  }

  // Why a WebSocket failed: the browser does not say, the server's HTTP answers do.
  async diagnose() {
    try {
      await api('/v1/stream');  // 426 with a good token, 401 without
    } catch (e) {
      if (e.status === 401) { authFailed(e); return 'wrong or missing token'; }
    }
    try {
      const h = await (await fetch('/health')).json();
      if (h.status === 'draining') return 'the server is draining (shutting down)';
      if (h.sessions >= h.max_sessions) return `the server is full (${h.sessions} sessions)`;
      const m = await api('/v1/models');
      if (!m.models.some((e) => e.id === this.model)) return `no model "${this.model}"`;
    } catch { /* unreachable: the generic message */ }
    return 'WebSocket failed (see server log)';
  }

  // Every end of a session: sound, picture and socket stop here, at once.
  finish(state) {
    if (this.finished) return;
    this.finished = true;
    this.playing = false;
    stats.state = state;
    if (state === 'done') {
      stats.done = true;
      stats.doneMs = performance.now();
    }
    if (this.stopMic) this.stopMic();
    if (this.src) try { this.src.stop(); } catch { /* not started */ }
    this.audioCtx.close().catch(() => {});
    for (const f of this.frames.values()) if (f.bmp) f.bmp.close();
    this.frames.clear();
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN)
      this.ws.close(1000);
    log(state);
    sessionEnded(this);
  }

  fail(message) {
    stats.errors.push(message);
    notice('error: ' + message);
    this.finish('error');
  }

  onClose(ev) {
    log(`closed (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`);
    // The server closes after `done`; the frames in hand still play. Never
    // opened: onerror's diagnosis ends the session.
    if (this.finished || !this.isOpen || (!this.live && stats.serverDone)) return;
    if (!stats.errors.length) notice(`error: the server closed the stream (${ev.code})`);
    if (!stats.errors.length) stats.errors.push(`the server closed the stream (${ev.code})`);
    this.finish('error');
  }

  sendStart(rate, format = 'f32le') {
    this.ws.send(JSON.stringify({ type: 'start', format, rate, channels: 1,
                                  start_frame: this.startFrame, live: this.live }));
    this.started = true;
    this.t0 = performance.now();
  }

  onMessage(ev) {
    if (this.finished) return;
    if (typeof ev.data === 'string') this.onEvent(JSON.parse(ev.data));
    else this.onFrame(ev.data);
    show();
  }

  onEvent(m) {
    if (m.type === 'error') {
      stats.errors.push(m.message);
      notice('error: ' + m.message);
    } else if (m.type === 'done') {
      stats.serverDone = true;
      stats.serverDoneMs = performance.now();
      stats.totalFrames = m.frames;
      log(`server done: ${m.frames} frames`);
    } else if (m.type === 'interrupted') {
      // Frames after this are the fresh audio's: latency is measured from here.
      this.dropping = false;
      this.anchor = null;
      this.anchorAudioS = this.sentAtInterrupt;
      stats.interrupted++;
      log('interrupted');
    } else if (m.type === 'stats') {
      stats.serverFps = m.fps;
    } else if (m.type.startsWith('speech')) {
      stats.speech++;
      stats.speaking = m.type === 'speech_start';
    } else {
      log(JSON.stringify(m));
    }
  }

  onFrame(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < 24 || dv.getUint32(0, false) !== 0x4c534631) return;  // "LSF1"
    const index = Number(dv.getBigInt64(8, true));
    const now = performance.now();
    if (stats.received === 0) stats.firstFrameMs = now - this.t0;
    stats.received++;
    if (dv.getUint32(4, true) & 1) stats.silent++;  // the avatar's own frame: silence, no inference
    this.fpsWindow.push(now);
    while (this.fpsWindow.length && now - this.fpsWindow[0] > 1000) this.fpsWindow.shift();
    $('s-fps').textContent = this.fpsWindow.length;
    const blob = new Blob([new Uint8Array(buf, 24)], { type: 'image/jpeg' });
    if (this.live) this.onLiveFrame(index, blob, now);
    else {
      if (this.firstFrameAt === undefined) this.firstFrameAt = now;
      if (now - this.firstFrameAt < 100) this.firstBurst = stats.received;
      this.frames.set(index, { blob, bmp: null });
      if (index === this.startFrame) this.decode(index);
      this.maybePlay();  // here too: frames of a batch come before the next animation frame
    }
  }

  decode(index) {
    const f = this.frames.get(index);
    if (!f || f.decoding) return;
    f.decoding = true;
    createImageBitmap(f.blob).then((bmp) => {
      if (this.frames.get(index) === f) f.bmp = bmp;
      else bmp.close();  // dropped meanwhile
    });
  }

  tick() {
    if (this.finished) return;
    if (this.live) this.liveTick();
    else this.fileTick();
    show();
    requestAnimationFrame(this.tick);
  }

  // ---- file mode

  // Would playback from frame `pos` (of this stream) run without running out
  // of frames? It would if the frames still to come arrive, at 80% of the
  // rate seen so far, half a second before the last is due. The rate counts
  // from the end of the first burst (frames come a batch at once) to now, so
  // that it falls between bursts, and ignores the wait for the first frame.
  safe(pos) {
    if (stats.serverDone) return true;
    const now = performance.now();
    if (stats.received - pos < MIN_BUFFER || now - this.firstFrameAt < 500) return false;
    const rate = (stats.received - this.firstBurst) / ((now - this.firstFrameAt) / 1000);
    const left = this.expected - stats.received;
    return rate > 0 && left / (0.8 * rate) + 0.5 <= (this.expected - pos) / FPS;
  }

  // Seconds of audio played: the audio clock while it advances; the wall
  // clock where it does not (no sound device: the context stays suspended
  // or its time stands still). Paused (buffering): where it stopped.
  clock() {
    const now = performance.now(), t = this.audioCtx.currentTime;
    if (!this.playing) return this.pausedAt;
    stats.audioState = this.audioCtx.state;
    if (t !== this.lastAudioTime) {
      this.lastAudioTime = t;
      this.lastAudioWall = now;
    }
    if (this.audioCtx.state === 'running' && now - this.lastAudioWall < 250) return t - this.playStart;
    return (now - this.wallStart) / 1000;
  }

  play() {
    const now = performance.now();
    if (!this.src) {  // the first time
      this.src = this.audioCtx.createBufferSource();
      this.src.buffer = this.buffer;
      this.src.connect(this.audioCtx.destination);
      this.playStart = this.audioCtx.currentTime + 0.05;
      this.src.start(this.playStart);
      this.wallStart = now + 50;
      stats.playStartMs = now;
      stats.playedBeforeServerDone = !stats.serverDone;
    } else {  // after buffering: the wall clock goes on from where it stopped
      this.wallStart = now - this.pausedAt * 1000;
    }
    this.audioCtx.resume();
    this.playing = true;
    stats.state = 'playing';
  }

  pause() {
    this.pausedAt = this.clock();
    this.playing = false;
    this.audioCtx.suspend();  // its clock stops with it
    stats.stalls++;
    stats.state = 'buffering';
  }

  // Starts or resumes playback when it is safe; true when playing.
  maybePlay() {
    if (this.playing || this.finished || !this.buffer || !this.started) return this.playing;
    const pos = this.src ? Math.max(0, Math.floor(this.pausedAt * FPS)) : 0;
    if (this.safe(pos)) this.play();
    return this.playing;
  }

  fileTick() {
    if (!this.buffer || !this.started) return;
    if (!this.playing && !this.maybePlay()) return;
    const pos = Math.floor(this.clock() * FPS);
    if (pos < 0) return;
    if (!stats.serverDone && pos >= stats.received) { this.pause(); return; }
    const due = this.startFrame + pos;
    // The newest decoded frame that is due; older ones are dropped (late).
    let shown = -1;
    for (const [i, f] of this.frames) if (i <= due && i > shown && f.bmp) shown = i;
    if (shown >= 0) {
      for (const [i, f] of this.frames)
        if (i < shown) { if (f.bmp) f.bmp.close(); this.frames.delete(i); }
      paint(this.frames.get(shown).bmp);
      this.frames.delete(shown);
      stats.drawn++;
      stats.lastDrawn = shown;
    }
    for (let i = due; i < due + 8; i++) this.decode(i);  // ahead of their time
    const last = this.startFrame + (stats.totalFrames || 0) - 1;
    if (stats.serverDone && pos >= stats.totalFrames && this.clock() >= this.buffer.duration &&
        (stats.lastDrawn >= last || !this.frames.size))
      this.finish('done');
  }

  async streamFile(file) {
    stats.state = 'decoding';
    const bytes = await file.arrayBuffer();
    this.buffer = await this.audioCtx.decodeAudioData(bytes);
    const ch = this.buffer.numberOfChannels, n = this.buffer.length;
    const mono = new Float32Array(n);
    for (let c = 0; c < ch; c++) {
      const d = this.buffer.getChannelData(c);
      for (let i = 0; i < n; i++) mono[i] += d[i] / ch;
    }
    // Frames the stream will have: the server's count comes with `done`; it
    // is a frame less than the audio's 25 per second (mel windows at the
    // edges), so this errs on the safe side.
    this.expected = Math.ceil(this.buffer.duration * FPS);
    await this.opened;
    if (this.finished) return;
    this.sendStart(this.buffer.sampleRate);
    stats.state = 'streaming';
    const chunk = Math.round(this.buffer.sampleRate * 0.2);
    for (let at = 0; at < n; at += chunk)
      this.ws.send(mono.slice(at, Math.min(n, at + chunk)).buffer);
    this.ws.send(JSON.stringify({ type: 'end' }));
  }

  // ---- live (microphone) mode

  async streamMic() {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.stopMic = () => media.getTracks().forEach((t) => t.stop());
    await this.opened;
    if (this.finished) return;
    const src = this.audioCtx.createMediaStreamSource(media);
    const proc = this.audioCtx.createScriptProcessor(2048, 1, 1);
    const rate = this.audioCtx.sampleRate;
    this.sendStart(rate, 's16le');  // half the bytes of f32le: a microphone needs no more
    stats.state = 'live';
    // Audio sent: seconds in all, and [seconds so far, time sent] per chunk.
    this.sentS = 0;
    this.sent = [];
    this.anchorAudioS = 0;
    this.history = [];  // [time, backlog] for the growth warning
    proc.onaudioprocess = (e) => {
      if (this.finished || this.ws.readyState !== WebSocket.OPEN) return;
      const data = e.inputBuffer.getChannelData(0), pcm = new Int16Array(data.length);
      for (let i = 0; i < data.length; i++) pcm[i] = Math.max(-1, Math.min(1, data[i])) * 32767;
      this.ws.send(pcm.buffer);
      this.sentS += data.length / rate;
      this.sent.push([this.sentS, performance.now()]);
      while (this.sent.length > 2 && this.sent[0][1] < performance.now() - 30000) this.sent.shift();
    };
    src.connect(proc);
    proc.connect(this.audioCtx.destination);  // keeps the processor running; outputs silence
    this.stopMic = () => { proc.disconnect(); media.getTracks().forEach((t) => t.stop()); };
  }

  // When the sound at `s` seconds of the audio sent was captured: the chunk
  // holding it went out when its last sample had been captured.
  capturedAt(s) {
    for (const [end, at] of this.sent) if (end >= s) return at - (end - s) * 1000;
    return performance.now();
  }

  onLiveFrame(index, blob, now) {
    if (this.dropping) return;  // sent before our interrupt: not shown
    if (!this.anchor) this.anchor = { index, audioS: this.anchorAudioS || 0 };
    this.lastFrame = index;
    createImageBitmap(blob).then((bmp) => {
      if (this.finished || this.dropping || index < this.lastPainted) { bmp.close(); return; }
      this.lastPainted = index;
      paint(bmp);
      stats.drawn++;
      stats.lastDrawn = index;
    });
  }

  // Latency: how long ago the sound the newest frame shows was captured (it
  // grows while no frame comes). Backlog: audio sent that no frame covers.
  liveTick() {
    if (!this.anchor || !this.sent || !this.sent.length) return;
    const now = performance.now();
    const coveredS = this.anchor.audioS + (this.lastFrame - this.anchor.index + 1) / FPS;
    stats.latencyS = Math.max(0, (now - this.capturedAt(coveredS - 0.5 / FPS)) / 1000);
    stats.backlogS = this.sentS - coveredS;
    this.history.push([now, stats.backlogS]);
    while (this.history.length && this.history[0][0] < now - 5000) this.history.shift();
    const growth = stats.backlogS - this.history[0][1];
    if (stats.latencyS > LATENCY_WARN_S)
      stats.warning = `falling behind: the picture is ${stats.latencyS.toFixed(1)} s late`;
    else if (growth > BACKLOG_GROWTH_S && now - this.t0 > 5000)
      stats.warning = `falling behind: backlog grew ${growth.toFixed(1)} s in 5 s`;
    else stats.warning = '';
  }

  interrupt() {
    if (!this.live) { this.finish('interrupted'); return; }  // file mode: all audio is sent
    if (this.ws.readyState !== WebSocket.OPEN || !this.started) return;
    this.ws.send(JSON.stringify({ type: 'interrupt' }));
    this.sentAtInterrupt = this.sentS;
    this.dropping = true;  // until the server's `interrupted`
  }
}

function setBusy(busy) {
  $('start').disabled = busy;
  $('interrupt').disabled = $('stop').disabled = !busy;
  for (const id of ['model', 'source', 'file', 'start-frame', 'token']) $(id).disabled = busy;
}

function sessionEnded(s) {
  if (session !== s) return;
  session = null;
  setBusy(false);
  show();
}

$('start').onclick = async () => {
  if (session) return;  // one at a time: Stop first
  const mic = $('source').value === 'mic';
  const model = $('model').value;
  if (!model) { notice(token() ? 'no model to choose' : 'wrong or missing token?'); return; }
  if (!mic && !$('file').files.length) { notice('choose an audio file first'); return; }
  notice('');
  Object.assign(stats, fresh());
  previewSeq++;  // a preview still on its way is not drawn over the session
  const s = session = new Session(model, startFrame(), mic);
  setBusy(true);
  show();
  try {
    if (mic) await s.streamMic();
    else await s.streamFile($('file').files[0]);
  } catch (e) {
    if (s.finished) log(e.message);  // stopped meanwhile (or already reported)
    else s.fail(e.message);
  }
};
$('interrupt').onclick = () => session && session.interrupt();
$('stop').onclick = () => session && session.finish('stopped');

$('source').onchange = () => { $('file-label').hidden = $('source').value === 'mic'; };
$('model').onchange = previewSoon;
$('start-frame').oninput = previewSoon;
$('token').onchange = () => {
  sessionStorage.setItem(TOKEN_KEY, token());
  refresh();
};

$('source').onchange();
refresh();
setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
show();
