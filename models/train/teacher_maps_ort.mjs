// teacher_maps_ort.mjs -- optional speed-up for train_dnsmos_bam.py: computes the
// teacher's last feature map of every corpus window with ONNX Runtime (about 4x
// faster than the script's own torch rebuild on this machine) and writes the
// cache the script reads, CACHE/SPLIT_tmaps.f32 (float32 [N, 64, 112, 20], rows in
// SPLIT.csv order). The script checks every cached map against the corpus scores
// (the teacher's head on the map's global maximum) before training on it.
//
// ONNX Runtime only returns graph outputs, so first add the last ReLU as one:
//   /usr/bin/python3 -c "import onnx; m = onnx.load('models/zoo/dnsmos-p835.onnx'); \
//     m.graph.output.append(onnx.helper.make_tensor_value_info( \
//     'mos_estimator_logpow/conv2d_6/Relu:0', onnx.TensorProto.FLOAT, None)); \
//     onnx.save(m, 'OUT/p835_maps.onnx')"
// then, with onnxruntime-node installed from npm in DIR:
//   NODE_PATH=DIR/node_modules node models/train/teacher_maps_ort.mjs \
//     OUT/p835_maps.onnx CORPUS train OUT [JOB NJOBS]
// JOB/NJOBS split the rows between processes (each writes its own part; run
// once more without them to join the parts).
// TEACHER_MAP=mid in the environment computes instead the map --hint-mid reads:
// conv2d_3's ReLU after the first 2x2 max pool, float32 [N, 32, 450, 80] (4.6 MB
// per window), written to CACHE/SPLIT_tmaps_mid.f32; add that output to the model
// the same way ('mos_estimator_logpow/conv2d_3/Relu:0_pooling0').
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

const WIN = 144160;
const MAPS = {
  last: { name: "mos_estimator_logpow/conv2d_6/Relu:0", size: 64 * 112 * 20, file: "tmaps" },
  mid: { name: "mos_estimator_logpow/conv2d_3/Relu:0_pooling0", size: 32 * 450 * 80, file: "tmaps_mid" },
};
const which = MAPS[process.env.TEACHER_MAP || "last"];
if (!which) throw new Error(`TEACHER_MAP=${process.env.TEACHER_MAP}: not one of ${Object.keys(MAPS)}`);
const MAP = which.size;
const OUT_NAME = which.name;

// readWav16 returns the samples of a 16-bit mono PCM WAV file as floats in [-1, 1).
function readWav16(file) {
  const b = fs.readFileSync(file);
  let off = 12;
  while (off + 8 <= b.length) {
    const id = b.toString("ascii", off, off + 4);
    const len = b.readUInt32LE(off + 4);
    if (id === "data") {
      const n = Math.floor(Math.min(len, b.length - off - 8) / 2);
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = b.readInt16LE(off + 8 + 2 * i) / 32768;
      return x;
    }
    off += 8 + len + (len & 1);
  }
  throw new Error(`${file}: no data chunk`);
}

const [model, corpus, split, cache, jobArg, njobArg] = process.argv.slice(2);
if (!cache) {
  console.error("usage: teacher_maps_ort.mjs MODEL CORPUS SPLIT CACHE [JOB NJOBS]");
  process.exit(2);
}
const lines = fs.readFileSync(path.join(corpus, `${split}.csv`), "utf8").trim().split("\n");
const col = lines[0].split(",").indexOf("file");
const files = lines.slice(1).map((l) => l.split(",")[col]);
const final = path.join(cache, `${split}_${which.file}.f32`);
const njobs = njobArg ? Number(njobArg) : 1;

const parts = fs.existsSync(cache)
  ? fs.readdirSync(cache).filter((f) => f.startsWith(`${split}_${which.file}.f32.part`) && !f.endsWith(".tmp")).sort()
  : [];
if (jobArg === undefined && parts.length > 0) {
  // join the parts earlier runs with JOB NJOBS wrote: row i is in part i % n
  const n = parts.length;
  if (!parts.every((p) => p.endsWith(`of${n}`))) throw new Error(`incomplete parts in ${cache}: ${parts}`);
  const fd = fs.openSync(`${final}.tmp`, "w");
  const buf = Buffer.alloc(MAP * 4);
  for (let i = 0; i < files.length; i++) {
    const pfd = fs.openSync(`${final}.part${i % n}of${n}`, "r");
    if (fs.readSync(pfd, buf, 0, buf.length, Math.floor(i / n) * buf.length) !== buf.length) {
      throw new Error(`part ${i % n} of ${n} is short at row ${i}`);
    }
    fs.closeSync(pfd);
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
  fs.renameSync(`${final}.tmp`, final);
  for (const p of parts) fs.unlinkSync(path.join(cache, p));
  console.log(`joined ${n} parts into ${final}`);
  process.exit(0);
}

const job = jobArg === undefined ? 0 : Number(jobArg);
const out = njobs === 1 ? final : `${final}.part${job}of${njobs}`;
const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const fd = fs.openSync(`${out}.tmp`, "w");
const t0 = Date.now();
let done = 0;
for (let i = job; i < files.length; i += njobs) {
  const x = readWav16(path.join(corpus, files[i]));
  const w = new Float32Array(WIN);
  w.set(x.subarray(0, WIN));
  const r = await sess.run({ input_1: new ort.Tensor("float32", w, [1, WIN]) }, [OUT_NAME]);
  const m = r[OUT_NAME];
  if (m.data.length !== MAP) throw new Error(`${files[i]}: map has ${m.data.length} values, expected ${MAP}`);
  fs.writeSync(fd, Buffer.from(m.data.buffer, m.data.byteOffset, MAP * 4));
  if (++done % 100 === 0) console.log(`${split} job ${job}: ${done} maps (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
fs.closeSync(fd);
fs.renameSync(`${out}.tmp`, out);
console.log(`wrote ${out}: ${done} maps`);
