// ort_vs_engine.mjs - one model, one batch size: ONNX Runtime's CPU provider
// (onnxruntime-node, in this process) against lipsync's engine (a
// `lipsync bench engine --serve` child), runs interleaved one by one.
//
//   node ort_vs_engine.mjs --lipsync PATH --model M.onnx [--batch B] [--threads T]
//        [--precision fp32|bf16|int8] [--warmup W] [--runs R] [--label TEXT] [--spin 0|1|ort]
//
// --spin sets how both runtimes' idle worker threads wait. 0 (default): ONNX
// Runtime's session.intra_op.allow_spinning=0 (they block at once, its faster
// setting on shared cores) and lipsync's own default for the engine (libgomp
// threads spin briefly, GOMP_SPINCOUNT=100000, about a millisecond, then
// sleep; see src/cli/main.c); 1: both spin (allow_spinning=1,
// OMP_WAIT_POLICY=active), which slows both on 2 shared cores; ort: ONNX
// Runtime spins (its own default, faster for it alone), the engine as in 0.
//
// Both sides get the same thread count, the same seeded uniform [0,1) inputs
// (shapes as the engine lowered the graph) and a short pause before every
// run, so that neither one's spinning worker threads eat into the other's
// run. The order alternates every round. Prints both medians and the
// throughput ratio ORT ms / engine ms (> 1: the engine is faster).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';

function args() {
  const a = { batch: 1, threads: 2, precision: 'fp32', warmup: 3, runs: 10, label: '', spin: '0' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '');
    if (!(k in a) && k !== 'lipsync' && k !== 'model') throw new Error(`unknown option ${v[i]}`);
    a[k] = ['batch', 'threads', 'warmup', 'runs'].includes(k) ? parseInt(v[i + 1], 10) : v[i + 1];
  }
  if (!a.lipsync || !a.model) throw new Error('need --lipsync PATH --model M.onnx');
  return a;
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The engine child: a queue of its stdout lines.
function startEngine(a) {
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  delete env.GOMP_SPINCOUNT;
  if (a.spin === '1') env.OMP_WAIT_POLICY = 'active';
  const child = spawn(a.lipsync, ['bench', 'engine', a.model, '--batch', String(a.batch), '--threads',
    String(a.threads), '--precision', a.precision, '--serve'], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    if (waiters.length) waiters.shift()(l); else lines.push(l);
  });
  child.on('exit', (code) => { while (waiters.length) waiters.shift()(`exit ${code}`); });
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r)));
  return { child, next };
}

async function main() {
  const a = args();
  const eng = startEngine(a);
  const inputs = [];
  for (;;) {
    const l = await eng.next();
    if (l === 'ready') break;
    const m = /^input (\S+) (\S+)$/.exec(l);
    if (!m) throw new Error(`engine: ${l}`);
    inputs.push({ name: m[1], dims: m[2].split(',').map(Number) });
  }
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: a.spin === '0' ? '0' : '1' } } },
  });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const feeds = {};
  for (const inp of inputs) {
    const n = inp.dims.reduce((x, y) => x * y, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = rand();
    feeds[inp.name] = new ort.Tensor('float32', d, inp.dims);
  }
  const ortRun = async () => {
    const t0 = performance.now();
    await session.run(feeds);
    return performance.now() - t0;
  };
  const engRun = async () => {
    eng.child.stdin.write('run\n');
    const l = await eng.next();
    const m = /^ms (\S+)$/.exec(l);
    if (!m) throw new Error(`engine: ${l}`);
    return parseFloat(m[1]);
  };
  const tOrt = [], tEng = [];
  for (let r = 0; r < a.warmup + a.runs; r++) {
    const pair = r % 2 ? [engRun, ortRun] : [ortRun, engRun];
    const got = [];
    for (const f of pair) { await sleep(30); got.push(await f()); }
    const [o, e] = r % 2 ? [got[1], got[0]] : got;
    if (r >= a.warmup) { tOrt.push(o); tEng.push(e); }
  }
  eng.child.stdin.write('quit\n');
  const mo = median(tOrt), me = median(tEng);
  const label = a.label || a.model;
  console.log(`${label} batch=${a.batch} threads=${a.threads} spin=${a.spin} engine=${a.precision} runs=${a.runs}: ` +
    `ort_fp32 median ${mo.toFixed(1)} ms (${(mo / a.batch).toFixed(1)} ms/item), ` +
    `engine median ${me.toFixed(1)} ms (${(me / a.batch).toFixed(1)} ms/item), ratio ${(mo / me).toFixed(2)}x`);
  console.log(`  ort ms:    ${tOrt.map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`  engine ms: ${tEng.map((x) => x.toFixed(1)).join(' ')}`);
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
