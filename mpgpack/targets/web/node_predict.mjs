// Runs the bundle's TF.js graph model in Node with the pure-JS @tensorflow/tfjs (the same
// package the browser uses, CPU backend), for the build's parity check and the benchmarks.
//
//   node node_predict.mjs MODEL_DIR INPUT_JSON OUTPUT_JSON [TIME_SINGLE_ROW_MS]
// INPUT_JSON: {"inputs": [[F numbers or null], ...]}; OUTPUT_JSON gets the model's whole
// output tensor, row by row ([N, 1] for a regressor, [N, C] probabilities for a classifier):
// {"outputs": [[...], ...], "load_ms": t, "predict_ms": t, "backend": name, "tfjs": version}.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

function loadArtifacts(modelDir) {
  // tfjs (without tfjs-node) has no file:// loader: read model.json and its shards ourselves.
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const buffers = json.weightsManifest.flatMap((group) =>
    group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
  const all = Buffer.concat(buffers);
  return {
    ...json,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  };
}

// Median time of one row predicted alone (tensor in, values read back), after a warm-up,
// repeated for about `budgetMs`: the benchmarks' single-row latency.
function timeSingleRow(model, row, budgetMs) {
  const once = () => tf.tidy(() => model.predict(tf.tensor2d(row, [1, row.length], 'float32')).dataSync());
  for (let i = 0; i < 20; i += 1) once();
  const samples = [];
  const end = performance.now() + budgetMs;
  while (samples.length < 20 || (performance.now() < end && samples.length < 100000)) {
    const t = performance.now();
    once();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

async function main() {
  const [modelDir, inputPath, outputPath, timeMs] = process.argv.slice(2);
  if (!modelDir || !inputPath || !outputPath) {
    console.error('usage: node node_predict.mjs MODEL_DIR INPUT_JSON OUTPUT_JSON');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  const t0 = performance.now();
  const model = await tf.loadGraphModel(tf.io.fromMemory(loadArtifacts(modelDir)));
  const t1 = performance.now();
  const rows = JSON.parse(fs.readFileSync(inputPath, 'utf8')).inputs;
  const flat = Float32Array.from(rows.flat(), (v) => (v === null ? NaN : v));
  const x = tf.tensor2d(flat, [rows.length, rows[0].length], 'float32');
  const y = model.predict(x);
  const outputs = await y.array();
  const t2 = performance.now();
  const result = {
    outputs, load_ms: t1 - t0, predict_ms: t2 - t1, backend: tf.getBackend(), tfjs: tf.version.tfjs,
  };
  if (Number(timeMs) > 0) result.single_row_ms = timeSingleRow(model, flat.slice(0, rows[0].length), Number(timeMs));
  fs.writeFileSync(outputPath, JSON.stringify(result));
}

main().catch((err) => { console.error(`tfjs-node parity runner: ${err.message}`); process.exit(1); });
