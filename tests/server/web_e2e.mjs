// web_e2e.mjs - drives the browser client (web/) in headless Chromium against
// a running server: picks the model, streams an audio file, and checks that
// frames arrive, are drawn on the canvas in time with the audio, and that
// the canvas holds a real picture.
// usage: node web_e2e.mjs BASE_URL MODEL_ID AUDIO_FILE PLAYWRIGHT_DIR
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [base, model, audio, pwDir] = process.argv.slice(2);
const require = createRequire(path.join(pwDir, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

function fail(msg) {
  console.error('web_e2e: FAIL: ' + msg);
  process.exitCode = 1;
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipsync-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--autoplay-policy=no-user-gesture-required'],
  timeout: 60000,
});
try {
  const page = browser.pages()[0] || await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base, { timeout: 30000 });
  await page.waitForFunction((id) => [...document.querySelectorAll('#model option')]
    .some((o) => o.value === id), model, { timeout: 30000 });
  await page.selectOption('#model', model);
  await page.setInputFiles('#file', audio);
  await page.click('#start');
  try {
    await page.waitForFunction(() => {
      const s = window.lipsync.stats;
      return (s.done && s.drawn >= 10) || s.errors.length > 0;
    }, null, { timeout: Number(process.env.LS_E2E_TIMEOUT_MS || 180000), polling: 200 });
  } catch (e) {
    console.error('web_e2e: page log:\n' + await page.evaluate(() =>
      document.getElementById('log').textContent + JSON.stringify(window.lipsync.stats)));
    throw e;
  }
  const stats = await page.evaluate(() => window.lipsync.stats);
  console.log('web_e2e: stats', JSON.stringify(stats));
  if (stats.errors.length) fail('client errors: ' + stats.errors.join('; '));
  if (stats.received < 20) fail(`only ${stats.received} frames received`);
  if (stats.drawn < 10) fail(`only ${stats.drawn} frames drawn`);
  const picture = await page.evaluate(() => {
    const c = document.getElementById('view');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sum2 = 0;
    for (let i = 0; i < d.length; i += 4) {
      const v = (d[i] + d[i + 1] + d[i + 2]) / 3;
      sum += v;
      sum2 += v * v;
    }
    const n = d.length / 4, mean = sum / n;
    return { width: c.width, height: c.height, mean, variance: sum2 / n - mean * mean };
  });
  console.log('web_e2e: canvas', JSON.stringify(picture));
  if (!(picture.variance > 1)) fail('the canvas is blank');
  const models = await page.evaluate(async () => (await fetch('/v1/models', {
    headers: { Authorization: 'Bearer ' + new URLSearchParams(location.search).get('token') },
  })).json());
  const entry = models.models.find((m) => m.id === model);
  if (!entry || picture.width !== entry.width || picture.height !== entry.height)
    fail(`canvas ${picture.width}x${picture.height} is not the model's frame size`);
  if (pageErrors.length) fail('page errors: ' + pageErrors.join('; '));
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
if (!process.exitCode) console.log('web_e2e: ok');
