// ort_dnsmos.mjs -- DNSMOS P.835 windows in ONNX Runtime (onnxruntime-node), 1 intra-op thread,
// timed one by one: the peer of `bench_dnsmos --lines` in dnsmos_vs_ort.sh.
//
// Usage: NODE_PATH=/tmp/ort/node_modules node tests/bench/ort_dnsmos.mjs model.onnx [windows]
// (onnxruntime-node lives outside the repository: cd /tmp/ort && npm install --ignore-scripts
// onnxruntime-node@1.30.0). Input: the noise stream of bench_dnsmos.c (same LCG, same float
// rounding), window i = samples [16000 i, 16000 i + 144160). After one warm-up run, prints per
// window: ort scratch <window> <cpu_ms> <wall_ms> <SIG_raw> <BAK_raw> <OVRL_raw>
// where cpu_ms is the process's CPU time (process.cpuUsage: user + system) over the run.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

const path = process.argv[2] || 'models/zoo/dnsmos-p835.onnx';
const reps = Math.max(1, Math.min(1000, parseInt(process.argv[3] || '5', 10) || 5));
const WIN = 144160, HOP = 16000;
const n = (reps + 9) * HOP + 1;
const x = new Float32Array(n);
const k02 = Math.fround(0.2);
let s = 1;
for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // C: ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * 0.2f, each step rounded to float
    x[i] = Math.fround(Math.fround((s >>> 8) / (1 << 24) - 0.5) * k02);
}
const sess = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all'});
const feed = (i) => ({[sess.inputNames[0]]: new ort.Tensor('float32', x.subarray(i * HOP, i * HOP + WIN), [1, WIN])});
await sess.run(feed(0)); // warm up
for (let i = 0; i < reps; i++) {
    const f = feed(i);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = await sess.run(f);
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const y = out[sess.outputNames[0]].data;
    console.log(`ort scratch ${i} ${((c.user + c.system) / 1e3).toFixed(3)} ${wall.toFixed(3)} ` +
        Array.from(y).map((v) => v.toFixed(6)).join(' '));
}
