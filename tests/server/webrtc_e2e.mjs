// webrtc_e2e.mjs - WebRTC end to end in headless Chromium against a running
// server (with a token and max_sessions 2):
//   session   the fake microphone (a speech file) sends its audio; the
//             answer's H.264 and Opus are received: frames decoded within 5%
//             of 25 per second of session time, audio samples received, the
//             frames at the avatar's size, no ICE failure; DELETE ends it
//   bad       a malformed SDP (400), an offer without video to receive
//             (400), a wrong Content-Type (415), an unknown session (404),
//             no token (401): JSON errors
//   limit     two sessions open, a third offer gets 503; the two still work
//   vanish    a client that closes without DELETE: the server ends the
//             session on its own (/health's sessions back to 0)
// usage: node webrtc_e2e.mjs BASE_URL TOKEN MODEL_ID PLAYWRIGHT_DIR SPEECH_WAV SECONDS
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, token, model, pwDir, speech, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);
const require = createRequire(path.join(pwDir, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

let failures = 0;
function check(ok, msg) {
  console.log(`webrtc_e2e: ${ok ? 'ok' : 'FAIL'}: ${msg}`);
  if (!ok) failures++;
  return ok;
}

// In the page: a peer connection that sends the microphone and receives
// video, negotiated non-trickle with POST /v1/webrtc. Kept on window.
async function connect({ model, token }) {
  const pc = new RTCPeerConnection();
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc.addTrack(mic.getAudioTracks()[0], mic);
  pc.addTransceiver('video', { direction: 'recvonly' });
  const states = [];
  pc.addEventListener('connectionstatechange', () => states.push(pc.connectionState));
  // Played as a page plays them: Chrome decodes remote audio only for an
  // output that pulls it.
  const remote = new MediaStream();
  pc.addEventListener('track', (e) => {
    remote.addTrack(e.track);
    for (const tag of ['video', 'audio']) {
      const el = document.createElement(tag);
      el.srcObject = remote;
      el.muted = false;
      el.autoplay = true;
      document.body.appendChild(el);
      el.play().catch(() => {});
    }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') ok();
    });
    setTimeout(ok, 3000);
  });
  const r = await fetch(`/v1/webrtc?model=${encodeURIComponent(model)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const body = await r.text();
  if (r.status !== 201) return { status: r.status, body };
  const location = r.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  const t0 = performance.now();
  while (pc.connectionState !== 'connected' && performance.now() - t0 < 15000)
    await new Promise((ok) => setTimeout(ok, 50));
  window.peers = window.peers || [];
  window.peers.push({ pc, location, states });
  return { status: r.status, location, state: pc.connectionState,
           connectMs: performance.now() - t0 };
}

// In the page: the receive statistics of peer i.
async function stats(i) {
  const { pc, states } = window.peers[i];
  const report = await pc.getStats();
  const out = { t: performance.now(), frames: 0, samples: 0, width: 0, height: 0,
                jitterDelay: 0, states: states.slice(), state: pc.connectionState };
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.frames = s.framesDecoded || 0;
      out.width = s.frameWidth || 0;
      out.height = s.frameHeight || 0;
      out.jitterDelay = s.jitterBufferEmittedCount ?
        s.jitterBufferDelay / s.jitterBufferEmittedCount : 0;
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.samples = s.totalSamplesReceived || 0;
    if (s.type === 'inbound-rtp') out[s.kind + 'Packets'] = s.packetsReceived;
  });
  return out;
}

async function end({ i, token }) {
  const { pc, location } = window.peers[i];
  const r = await fetch(location, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
  pc.close();
  return { status: r.status, body: await r.json() };
}

async function health(page) {
  return page.evaluate(async () => (await fetch('/health')).json());
}

async function post(page, { type, body, auth = true }) {
  return page.evaluate(async ({ model, token, type, body, auth }) => {
    const headers = { 'Content-Type': type };
    if (auth) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(`/v1/webrtc?model=${model}`, { method: 'POST', headers, body });
    let json = null;
    try { json = await r.json(); } catch (e) { /* not JSON */ }
    return { status: r.status, json };
  }, { model, token, type, body, auth });
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
         `--use-file-for-fake-audio-capture=${speech}`, '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log('page: ' + m.text()); });
await page.goto(base + 'health');
const info = await page.evaluate(async ({ model, token }) => {
  const r = await fetch('/v1/models', { headers: { Authorization: `Bearer ${token}` } });
  return (await r.json()).models.find((m) => m.id === model);
}, { model, token });

// ---- session
const only = process.env.WEBRTC_E2E_ONLY; // one scenario, while debugging
if (!only || only === 'session') {
  const c = await page.evaluate(connect, { model, token });
  if (check(c.status === 201 && c.state === 'connected',
            `session: 201 and connected (${JSON.stringify(c)})`)) {
    check(/^\/v1\/webrtc\/[0-9a-f]{32}$/.test(c.location), `session: Location ${c.location}`);
    await sleep(2000); // the decoder's start
    const s0 = await page.evaluate(stats, 0);
    await sleep(seconds * 1000);
    const s1 = await page.evaluate(stats, 0);
    const fps = (s1.frames - s0.frames) / ((s1.t - s0.t) / 1000);
    check(Math.abs(fps - 25) <= 25 * 0.05, `session: ${fps.toFixed(2)} frames/s decoded over ${seconds} s (25 +- 5%)`);
    check(s1.samples > s0.samples + 8000 * seconds,
          `session: audio received (${s1.samples - s0.samples} samples in ${seconds} s)`);
    check(s1.width === info.width && s1.height === info.height,
          `session: frames of ${s1.width}x${s1.height} (the avatar's ${info.width}x${info.height})`);
    check(!s1.states.includes('failed'), `session: no ICE failure (${s1.states.join(',')})`);
    console.log('webrtc_e2e: stats ' + JSON.stringify(s1));
    console.log(`webrtc_e2e: figures: connect ${c.connectMs.toFixed(0)} ms, ` +
                `jitter buffer ${(s1.jitterDelay * 1000).toFixed(0)} ms, ${fps.toFixed(2)} fps`);
    const e = await page.evaluate(end, { i: 0, token });
    check(e.status === 200 && e.body.frames > 25 * seconds,
          `session: DELETE ends it (${JSON.stringify(e)})`);
    const h = await health(page);
    check(h.sessions === 0, `session: /health sessions ${h.sessions} after DELETE`);
  }
}

// ---- bad input
if (!only || only === 'bad') {
  let r = await post(page, { type: 'application/sdp', body: 'v=0\r\nthis is not sdp' });
  check(r.status === 400 && r.json && /SDP/.test(r.json.error), `bad: malformed SDP ${JSON.stringify(r)}`);
  const audioOnly = await page.evaluate(async () => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'sendrecv' });
    const o = await pc.createOffer();
    pc.close();
    return o.sdp;
  });
  r = await post(page, { type: 'application/sdp', body: audioOnly });
  check(r.status === 400 && r.json && /video/.test(r.json.error), `bad: no video to receive ${JSON.stringify(r)}`);
  r = await post(page, { type: 'text/plain', body: audioOnly });
  check(r.status === 415 && r.json, `bad: Content-Type text/plain ${JSON.stringify(r)}`);
  r = await post(page, { type: 'application/sdp', body: audioOnly, auth: false });
  check(r.status === 401 && r.json, `bad: no token ${JSON.stringify(r)}`);
  const d = await page.evaluate(async (token) => {
    const r = await fetch('/v1/webrtc/0123456789abcdef0123456789abcdef',
                          { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
    return { status: r.status, json: await r.json() };
  }, token);
  check(d.status === 404 && d.json.error, `bad: unknown session ${JSON.stringify(d)}`);
}

// ---- limit (the server runs with max_sessions 2)
if (!only || only === 'limit') {
  await page.evaluate(() => { window.peers = []; });
  const a = await page.evaluate(connect, { model, token });
  const b = await page.evaluate(connect, { model, token });
  const c = await page.evaluate(connect, { model, token });
  check(a.status === 201 && b.status === 201, `limit: two sessions (${a.status}, ${b.status})`);
  check(c.status === 503 && /max_sessions/.test(c.body), `limit: a third gets 503 (${c.status} ${c.body})`);
  await sleep(2000);
  const s0 = [await page.evaluate(stats, 0), await page.evaluate(stats, 1)];
  await sleep(3000);
  const s1 = [await page.evaluate(stats, 0), await page.evaluate(stats, 1)];
  for (const i of [0, 1])
    check(s1[i].frames > s0[i].frames + 25, `limit: session ${i} goes on (${s1[i].frames - s0[i].frames} frames in 3 s)`);
  for (const i of [0, 1]) await page.evaluate(end, { i, token });
}

// ---- vanish: the page closes without DELETE
if (!only || only === 'vanish') {
  const p2 = await browser.newPage();
  await p2.goto(base + 'health');
  const c = await p2.evaluate(connect, { model, token });
  check(c.status === 201 && c.state === 'connected', `vanish: connected (${c.status})`);
  await p2.close();
  const t0 = Date.now();
  let h = await health(page);
  while (h.sessions > 0 && Date.now() - t0 < 90000) {
    await sleep(1000);
    h = await health(page);
  }
  check(h.sessions === 0, `vanish: the server ended it in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

await browser.close();
console.log(`webrtc_e2e: ${failures ? failures + ' FAILED' : 'all passed'}`);
process.exit(failures ? 1 : 0);
