// Bundles the page's JavaScript with esbuild: src/js/main.js -> OUTDIR/app.js plus one lazily
// loaded chunk per TF.js backend, tree-shaken to the ops the model uses (src/js/tfjs/).
//
//   node build.mjs OUTDIR
// Prints a JSON summary: {"outputs": {file: {bytes, imports: [...], entry}}, "wasm": [...]}.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const tfjsDir = path.join(here, 'src', 'js', 'tfjs');

// Swap the TF.js package indexes (which register every op, gradient and optimizer) for the
// trimmed modules in src/js/tfjs/.
const trimTfjs = {
  name: 'trim-tfjs',
  setup(build) {
    build.onResolve({filter: /^@tensorflow\/tfjs-core$/},
      () => ({path: path.join(tfjsDir, 'core.js')}));
    build.onResolve({filter: /^@tensorflow\/tfjs-core\/dist\/ops\/ops_for_converter$/},
      () => ({path: path.join(tfjsDir, 'ops.js')}));
  },
};

async function main() {
  const outdir = process.argv[2];
  if (!outdir) {
    console.error('usage: node build.mjs OUTDIR');
    process.exit(2);
  }
  const result = await esbuild.build({
    entryPoints: {app: path.join(here, 'src', 'js', 'main.js')},
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: ['es2020'],
    chunkNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'none',
    // Converter executors reach ops.js through a namespace; ops it leaves out are undefined
    // on purpose (graph_ops.json is the guard), so esbuild's warning about them is noise.
    logOverride: {'import-is-undefined': 'silent'},
    define: {'process.env.NODE_ENV': '"production"'},
    plugins: [trimTfjs],
    logLevel: 'warning',
  });
  const outputs = {};
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    outputs[path.basename(file)] = {
      bytes: info.bytes,
      entry: info.entryPoint ? path.basename(info.entryPoint) : null,
      imports: info.imports.map((i) => ({path: path.basename(i.path), kind: i.kind})),
    };
  }
  const wasmDir = path.join(here, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const wasm = fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'));
  for (const f of wasm) fs.copyFileSync(path.join(wasmDir, f), path.join(outdir, f));
  console.log(JSON.stringify({outputs, wasm}));
}

main().catch((err) => { console.error(`web build: ${err.message}`); process.exit(1); });
