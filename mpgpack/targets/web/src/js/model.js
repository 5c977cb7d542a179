// The model side of the page: loads the bundle's TF.js graph model (after checking its sha256
// against the manifest) on the chosen backend and runs it. Preprocessing (imputing missing
// values, scaling, one-hot categories) is inside the graph: rows go in raw.
import * as tf from '@tensorflow/tfjs-core';
import {loadGraphModel} from '@tensorflow/tfjs-converter';
import {sha256Hex} from './sha256.js';

// Each backend is its own chunk, fetched only when chosen; pack.py preloads the default one.
const BACKENDS = {
  cpu: () => import('./tfjs/backend_cpu.js'),
  wasm: () => import('./tfjs/backend_wasm.js'),
};

export const backendNames = Object.keys(BACKENDS);

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}


/**
 * Fetches model.json and its weight shards and checks every file against the sha256 the
 * manifest lists ({relative path: sha256}). crypto.subtle exists only in secure contexts
 * (https, localhost, 127.0.0.1); elsewhere the check is skipped and says so.
 */
async function fetchArtifacts(modelUrl, hashes) {
  const base = new URL('./', modelUrl);
  const canCheck = Boolean(globalThis.crypto && crypto.subtle);
  const check = async (name, bytes) => {
    const want = hashes[name];
    const got = await sha256Hex(bytes);
    if (!want || got !== want) {
      throw new Error(`model file ${name} does not match its sha256 in the manifest ` +
        `(expected ${(want || 'an entry').slice(0, 12)}…, found ${got.slice(0, 12)}…); refusing to use it`);
    }
  };
  const jsonBytes = await fetchBytes(modelUrl);
  // Checked before it is parsed: a truncated model.json is named, not a JSON syntax error.
  if (canCheck) await check('model.json', jsonBytes);
  const json = JSON.parse(new TextDecoder().decode(jsonBytes));
  const shardNames = json.weightsManifest.flatMap((group) => group.paths);
  const shards = await Promise.all(shardNames.map((p) => fetchBytes(new URL(p, base))));
  if (canCheck) {
    for (const [i, name] of shardNames.entries()) await check(name, shards[i]);
  }
  const verified = canCheck;
  const weightData = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
  let offset = 0;
  for (const s of shards) { weightData.set(new Uint8Array(s), offset); offset += s.byteLength; }
  return {
    artifacts: {
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData: weightData.buffer,
    },
    verified,
  };
}

/**
 * Loads the graph model on `backend` ("cpu" or "wasm"). Returns an object with
 * run(rows) -> Promise<number[][]> (the whole output, one array of K numbers per row: [value]
 * for a regressor, the class probabilities for a classifier) and facts about the load.
 */
export async function loadModel({modelUrl, hashes, backend, nFeatures}) {
  if (!BACKENDS[backend]) {
    throw new Error(`unknown backend "${backend}"; this page has ${backendNames.join(', ')}`);
  }
  const t0 = performance.now();
  const [module, fetched] = await Promise.all([BACKENDS[backend](), fetchArtifacts(modelUrl, hashes)]);
  await module.configure(new URL('./', import.meta.url).href);
  if (!(await tf.setBackend(backend))) throw new Error(`the ${backend} backend failed to start`);
  await tf.ready();
  const graph = await loadGraphModel(tf.io.fromMemory(fetched.artifacts));
  const loadMs = performance.now() - t0;

  async function run(rows) {
    if (rows.length === 0) return [];
    const flat = new Float32Array(rows.length * nFeatures);
    rows.forEach((row, i) => {
      for (let j = 0; j < nFeatures; j++) flat[i * nFeatures + j] = row[j] === null ? NaN : row[j];
    });
    const y = tf.tidy(() => graph.predict(tf.tensor2d(flat, [rows.length, nFeatures], 'float32')));
    try {
      const flatOut = await y.data();
      const k = flatOut.length / rows.length;
      return rows.map((_, i) => Array.from(flatOut.subarray(i * k, (i + 1) * k)));
    } finally {
      y.dispose();
    }
  }

  return {run, backend: tf.getBackend(), tfjsVersion: tf.version_core, loadMs,
          sha256Verified: fetched.verified};
}
