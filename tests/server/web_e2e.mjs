// web_e2e.mjs - drives the browser client (web/) in headless Chromium against
// a running server (with a token), through scenarios that share one server:
//   token     no token: "wrong or missing token" and no models; the token
//             field fills the list and survives a reload (sessionStorage)
//   page      the avatar on the canvas before Start; the file picker hides in
//             microphone mode; no horizontal overflow at 1280x800
//   file      one session: Start disabled while it runs, one WebSocket,
//             playback starts before the server has finished (a safe buffer),
//             "done" when playback ends with the last frame drawn; the
//             session count in the header follows
//   interrupt file mode, while playing: sound and picture stop at once,
//             no server error, the canvas keeps its picture
//   stop      file mode, while buffering: everything stops at once
//   mic       fake microphone, live mode: latency and backlog shown;
//             Interrupt is answered by the server and frames go on; the
//             server stopped for 3 s (SIGSTOP) raises the falling-behind
//             warning; Stop stops at once
//   ws-token  a wrong token at Start: "wrong or missing token"
//   models    a model unloaded and loaded by another client: its state in
//             the model list follows
// usage: node web_e2e.mjs BASE_URL TOKEN MODEL_ID FILE_WAV SHORT_WAV MIC_WAV PLAYWRIGHT_DIR SERVER_PID
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [base, token, model, audio, shortAudio, micAudio, pwDir, serverPid] = process.argv.slice(2);
const require = createRequire(path.join(pwDir, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const t00 = Date.now();

let failures = 0;
function check(ok, msg) {
  if (!ok) {
    console.error('web_e2e: FAIL: ' + msg);
    failures++;
  }
  return ok;
}

async function scenario(name, page, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    check(false, `${name}: ${e.stack || e}`);
    if (page) {
      console.error(`web_e2e: ${name}: page log:\n` + await page.evaluate(() =>
        document.getElementById('log').textContent + JSON.stringify(window.lipsync.stats))
        .catch(() => '(page gone)'));
      // The next scenario starts from a page at rest, with the right token.
      await page.evaluate((token) => {
        if (window.lipsync.session()) window.lipsync.session().finish('stopped');
        document.getElementById('token').value = token;
      }, token).catch(() => {});
    }
  }
  console.log(`web_e2e: ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const stats = (page) => page.evaluate(() => window.lipsync.stats);
// fn(stats, arg) in the page (a closure's variables do not go there: pass arg).
const waitStats = (page, fn, timeout = 60000, arg = null) =>
  page.waitForFunction(([fn, arg]) => (0, eval)(`(${fn})`)(window.lipsync.stats, arg),
    [String(fn), arg], { timeout, polling: 50 });

// Mean, variance and a checksum of the canvas.
const canvas = (page) => page.evaluate(() => {
  const c = document.getElementById('view');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sum2 = 0, hash = 0;
  for (let i = 0; i < d.length; i += 4) {
    const v = (d[i] + d[i + 1] + d[i + 2]) / 3;
    sum += v;
    sum2 += v * v;
    hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
  }
  const n = d.length / 4, mean = sum / n;
  return { width: c.width, height: c.height, mean, variance: sum2 / n - mean * mean, hash };
});

async function serverApi(method, route) {
  const r = await fetch(new URL(route, base), { method, headers: { Authorization: 'Bearer ' + token } });
  return r.json();
}
const entry = (await serverApi('GET', '/v1/models')).models.find((m) => m.id === model);

// Watches a page's WebSockets to /v1/stream.
function sockets(page) {
  const list = [];
  page.on('websocket', (ws) => { if (ws.url().includes('/v1/stream')) list.push(ws); });
  return list;
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipsync-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--autoplay-policy=no-user-gesture-required',
         '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
         `--use-file-for-fake-audio-capture=${micAudio}`],
  timeout: 60000,
});
const pageErrors = [];
async function openPage(url) {
  const page = browser.pages().find((p) => p.url() === 'about:blank') || await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url, { timeout: 30000 });
  return page;
}
const modelListed = (page, timeout = 30000) => page.waitForFunction((id) =>
  [...document.querySelectorAll('#model option')].some((o) => o.value === id), model, { timeout });

try {
  // ---- token: a page without one, then the field
  const page = await openPage(base);
  await scenario('token', page, async () => {
    await page.waitForFunction(() => document.getElementById('notice').textContent
      .includes('wrong or missing token'), null, { timeout: 10000 });
    check(await page.locator('#notice').isVisible(), 'token: the notice is not visible');
    check(await page.locator('#model option').count() === 0, 'token: models listed without a token');
    await page.fill('#token', token);
    await page.locator('#token').dispatchEvent('change');
    await modelListed(page);
    check(!await page.locator('#notice').isVisible(), 'token: the notice stays after a good token');
    check(await page.evaluate(() => sessionStorage.getItem('lipsync.token')) === token,
      'token: not kept in sessionStorage');
    await page.reload();
    await modelListed(page);
    check(await page.inputValue('#token') === token, 'token: the field is empty after a reload');
    await page.selectOption('#model', model);
  });

  // ---- page: the avatar before Start, the file picker, the layout at 1280 px
  await scenario('page', page, async () => {
    await page.waitForFunction(() => window.lipsync.stats.previews > 0, null, { timeout: 120000 });
    const pic = await canvas(page);
    console.log('web_e2e: canvas before Start', JSON.stringify(pic));
    check(pic.variance > 1, 'page: the canvas is blank before Start');
    check(pic.width === entry.width && pic.height === entry.height,
      `page: canvas ${pic.width}x${pic.height} before Start is not the model's frame size`);
    check(await page.locator('#file').isVisible(), 'page: no file picker in file mode');
    await page.selectOption('#source', 'mic');
    check(!await page.locator('#file').isVisible(), 'page: the file picker shows in microphone mode');
    await page.selectOption('#source', 'file');
    check(await page.locator('#file').isVisible(), 'page: the file picker does not come back');
    // A long log line must not widen the page either.
    await page.evaluate(() => { document.getElementById('log').textContent += 'x'.repeat(400) + '\n'; });
    const fit = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
      right: Math.max(...[...document.querySelectorAll('#controls > *')]
        .map((e) => e.getBoundingClientRect().right)),
    }));
    check(fit.scroll <= fit.client && fit.right <= 1280,
      `page: horizontal overflow at 1280 px (${JSON.stringify(fit)})`);
    await page.screenshot({ path: path.join(pwDir, 'page-1280.png') });  // for a look by eye
  });

  // ---- file: one whole session
  const ws = sockets(page);
  await scenario('file', page, async () => {
    await page.setInputFiles('#file', audio);
    const duration = await page.evaluate(async () => {
      const f = document.getElementById('file').files[0];
      return (await new AudioContext().decodeAudioData(await f.arrayBuffer())).duration;
    });
    await page.click('#start');
    await page.waitForFunction(() => window.lipsync.session(), null, { timeout: 5000 });
    check(await page.locator('#start').isDisabled(), 'file: Start is enabled while streaming');
    check(await page.locator('#stop').isEnabled(), 'file: Stop is disabled while streaming');
    await page.click('#start', { force: true, timeout: 2000 }).catch(() => {});
    await page.waitForFunction(() => /· 1\/\d+ sessions/.test(document.getElementById('health').textContent),
      null, { timeout: 8000 }).catch(() => check(false, 'file: the header does not show 1 session'));
    await waitStats(page, (s) => s.done || s.state === 'error' || s.state === 'closed', 120000);
    const s = await stats(page);
    console.log('web_e2e: file stats', JSON.stringify(s));
    check(!s.errors.length && s.done, 'file: ' + (s.errors.join('; ') || s.state));
    check(ws.length === 1, `file: ${ws.length} WebSockets for one session`);
    check(s.playedBeforeServerDone, 'file: playback waited for the server to finish');
    check(s.doneMs > s.serverDoneMs, 'file: done before the server was');
    check(s.doneMs - s.playStartMs >= duration * 1000 - 100,
      `file: done ${(s.doneMs - s.playStartMs).toFixed(0)} ms after playback started, ` +
      `the audio lasts ${(duration * 1000).toFixed(0)} ms`);
    check(s.lastDrawn === s.totalFrames - 1, `file: done at frame ${s.lastDrawn} of ${s.totalFrames}`);
    check(s.drawn >= s.totalFrames / 3, `file: only ${s.drawn} of ${s.totalFrames} frames drawn`);
    check(await page.locator('#start').isEnabled(), 'file: Start stays disabled after done');
    const pic = await canvas(page);
    check(pic.variance > 1, 'file: the canvas is blank');
    await page.waitForFunction(() => /· 0\/\d+ sessions/.test(document.getElementById('health').textContent),
      null, { timeout: 8000 }).catch(() => check(false, 'file: the header does not go back to 0 sessions'));
  });

  // Stopped at once: state, no sound, no new picture, the socket closed.
  async function stoppedAtOnce(name, want, socket) {
    const s = await stats(page);
    check(s.state === want, `${name}: state ${s.state}, not ${want}`);
    check(await page.evaluate(() => window.__ctx.state) === 'closed', `${name}: the audio goes on`);
    check(await page.locator('#start').isEnabled(), `${name}: Start is disabled afterwards`);
    const before = await canvas(page);
    await sleep(800);
    const after = await stats(page), pic = await canvas(page);
    check(after.drawn === s.drawn && pic.hash === before.hash, `${name}: frames drawn afterwards`);
    check(pic.variance > 1, `${name}: the canvas is blank afterwards`);
    check(!after.errors.length, `${name}: errors: ${after.errors.join('; ')}`);
    check(socket && socket.isClosed(), `${name}: the WebSocket is still open`);
  }

  // ---- interrupt (file mode) while playing
  await scenario('interrupt', page, async () => {
    await page.setInputFiles('#file', shortAudio);
    await page.click('#start');
    await waitStats(page, (s) => (s.state === 'playing' && s.drawn >= 3) || s.errors.length, 120000);
    await page.evaluate(() => { window.__ctx = window.lipsync.session().audioCtx; });
    await page.click('#interrupt');
    await stoppedAtOnce('interrupt', 'interrupted', ws[ws.length - 1]);
  });

  // ---- stop (file mode) while buffering
  await scenario('stop', page, async () => {
    await page.click('#start');
    await waitStats(page, (s) => s.received >= 2 || s.errors.length, 60000);
    await page.evaluate(() => { window.__ctx = window.lipsync.session().audioCtx; });
    await page.click('#stop');
    await stoppedAtOnce('stop', 'stopped', ws[ws.length - 1]);
    check((await stats(page)).playStartMs === null, 'stop: playback started after Stop');
  });
  check(ws.length === 3, `${ws.length} WebSockets for 3 file sessions`);

  // ---- mic: live mode from the fake microphone
  await scenario('mic', page, async () => {
    await page.selectOption('#source', 'mic');
    await page.click('#start');
    await waitStats(page, (s) => (s.received >= 25 && s.latencyS !== null) || s.errors.length, 60000);
    let s = await stats(page);
    console.log('web_e2e: live stats', JSON.stringify(s));
    check(!s.errors.length, 'mic: ' + s.errors.join('; '));
    check(/^\d+\.\d\d s$/.test(await page.textContent('#s-latency')), 'mic: no latency shown');
    check(/^-?\d+\.\d\d s \(\d+ frames\)$/.test(await page.textContent('#s-backlog')), 'mic: no backlog shown');
    check(s.latencyS > 0 && s.backlogS !== null, `mic: latency ${s.latencyS} s, backlog ${s.backlogS} s`);
    // Interrupt: the server answers and the session goes on. (A server far
    // behind reads it only after the audio before it: it can take a while.)
    await page.click('#interrupt');
    await waitStats(page, (s) => s.interrupted > 0 || s.errors.length, 10000 + 1000 * s.backlogS);
    const drawn = (await stats(page)).drawn;
    await waitStats(page, (s, drawn) => s.drawn >= drawn + 10 || s.errors.length, 20000, drawn);
    s = await stats(page);
    check(!s.errors.length && s.state === 'live', `mic: after Interrupt: ${s.state} ${s.errors.join('; ')}`);
    // The server stalls: latency and backlog grow, the page warns.
    process.kill(Number(serverPid), 'SIGSTOP');
    let warned = false;
    try {
      await waitStats(page, (s) => s.warning, 6000)
        .catch(() => check(false, 'mic: no warning while the server stalls'));
      // Seen while the server is still stopped: once it runs again it
      // catches up within moments and the warning goes, as it should.
      warned = await page.locator('#warn').isVisible();
      s = await stats(page);
      await page.screenshot({ path: path.join(pwDir, 'live-warning.png') });
    } finally {
      process.kill(Number(serverPid), 'SIGCONT');
    }
    console.log(`web_e2e: stalled: latency ${s.latencyS} s, backlog ${s.backlogS} s, "${s.warning}"`);
    check(warned, 'mic: the warning is not visible');
    await waitStats(page, (s) => !s.warning, 15000)
      .then(() => console.log('web_e2e: the warning cleared after the stall'))
      .catch(() => console.log('web_e2e: the warning did not clear within 15 s (a slow server)'));
    await page.evaluate(() => { window.__ctx = window.lipsync.session().audioCtx; });
    await page.click('#stop');
    await stoppedAtOnce('mic stop', 'stopped', ws[ws.length - 1]);
    check(ws.length === 4, `mic: ${ws.length - 3} WebSockets for one live session`);
    await page.selectOption('#source', 'file');
  });

  // ---- ws-token: the token is wrong when Start is clicked
  await scenario('ws-token', page, async () => {
    // Set without a change event: the model list stays, the WebSocket meets the 401.
    await page.evaluate(() => { document.getElementById('token').value = 'wrong'; });
    await page.click('#start');
    await waitStats(page, (s) => s.state === 'error', 10000);
    const s = await stats(page);
    check(s.errors.includes('wrong or missing token'), 'ws-token: errors: ' + s.errors.join('; '));
    // The stream's error and the 2 s model poll (also a 401) both set the
    // notice; whichever comes last wins, and both name the token.
    const shown = await page.textContent('#notice');
    check(/^(error: wrong or missing token|wrong or missing token: enter the server's token)$/.test(shown),
      'ws-token: notice: ' + shown);
    check(await page.locator('#token').evaluate((e) => e.classList.contains('bad')),
      'ws-token: the token field is not marked');
    check(await page.locator('#start').isEnabled(), 'ws-token: Start stays disabled');
    await page.fill('#token', token);
    await page.locator('#token').dispatchEvent('change');
    await page.waitForFunction(() => document.getElementById('notice').hidden, null, { timeout: 5000 });
  });

  // ---- models: another client unloads and loads the model
  await scenario('models', page, async () => {
    const state = (want) => page.waitForFunction(([id, want]) => [...document.querySelectorAll('#model option')]
      .some((o) => o.value === id && o.textContent.includes(`(${want}`)), [model, want], { timeout: 30000 });
    await state('resident');
    await serverApi('DELETE', `/v1/models/${model}`);
    await state('available');
    await serverApi('POST', `/v1/models/${model}/load`);
    await state('resident');
  });

  check(!pageErrors.length, 'page errors: ' + pageErrors.join('; '));
} catch (e) {
  check(false, e.stack || String(e));
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`web_e2e: ${failures ? failures + ' failures' : 'ok'} in ${((Date.now() - t00) / 1000).toFixed(0)} s`);
process.exitCode = failures ? 1 : 0;
