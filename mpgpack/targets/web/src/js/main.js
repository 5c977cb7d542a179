// Entry point: reads the model's facts, builds the form, loads the model, and publishes the
// page's contract on window.mpg:
//   window.mpg.ready          Promise, resolved (with facts about the load) once the model is
//                             loaded and the form shows its first prediction
//   window.mpg.predict(rows)  rows: arrays in feature order, null for a missing value;
//                             returns a Promise of one answer per row: a number for a
//                             regressor, the model's raw output row (one probability per
//                             class, in manifest order) for a classifier
//   window.mpg.classify(rows) classifiers only: a Promise of {class, index, probabilities}
//                             per row (the class: highest probability, the first on a tie)
//   window.mpg.output         what the output is: {classifier, classes, target, unit, output}
import {checkRow, classIndex, fieldsFromInfo, loadModelInfo, outputFromInfo} from './data.js';
import {loadModel} from './model.js';
import {bindBatch, bindLivePrediction, describeModel, renderForm, runSelfTest} from './ui.js';

const params = new URLSearchParams(location.search);
const timings = {};
let resolveReady;
let rejectReady;
const ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
ready.catch(() => {});   // the page shows the failure itself; callers still see the rejection
let model = null;
let fields = null;
let output = null;

/** Checks every row against the schema first, like the other targets; then runs the model. */
async function run(rows) {
  await ready;
  if (!Array.isArray(rows)) throw new Error('predict(rows): rows must be an array of rows');
  const checked = rows.map((row, i) => {
    if (!Array.isArray(row) || row.length !== fields.length) {
      throw new Error(`predict(rows): row ${i} must be an array of ${fields.length} values in the order ` +
        `${fields.map((f) => f.name).join(', ')}`);
    }
    const {row: ok, errors} = checkRow(fields, row);
    if (!ok) throw new Error(`predict(rows): row ${i}: ${errors.map((e) => e.message).join('; ')}`);
    return ok;
  });
  return model.run(checked);
}

async function predict(rows) {
  const out = await run(rows);
  return output.classifier ? out : out.map((r) => r[0]);
}

async function classify(rows) {
  await ready;
  if (!output.classifier) throw new Error('classify(rows): this model is a regressor; use predict(rows)');
  return (await run(rows)).map((p) => ({class: output.classes[classIndex(p)], index: classIndex(p), probabilities: p}));
}

window.mpg = {ready, predict, classify, timings,
  selfTest: async () => {
    await ready.catch(() => {});   // a failed load is reported by runSelfTest through run()
    return runSelfTest({goldenUrl: 'model/golden.json', run, output});
  }};

function showFatal(message) {
  const box = document.querySelector('#fatal');
  box.textContent = `The model could not be loaded: ${message}`;
  box.hidden = false;
  document.querySelector('#prediction').textContent = '—';
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || params.has('nosw')) return;
  try {
    const registration = await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
    // Files this visit fetched before the worker was in control (e.g. the wasm binary of a
    // backend chosen by ?backend=) are handed to it so that they work offline too.
    const urls = performance.getEntriesByType('resource').map((e) => e.name)
      .filter((u) => u.startsWith(location.origin) && !u.includes('/report/'));
    (registration.active || navigator.serviceWorker.controller)?.postMessage({type: 'cache', urls});
  } catch (err) {
    console.warn(`service worker not registered: ${err.message}`);
  }
}

async function showReportLink() {
  try {
    const response = await fetch('report/index.html', {method: 'HEAD', cache: 'no-store'});
    if (response.ok) document.querySelector('#report-link').hidden = false;
  } catch { /* offline or no report: no link */ }
}

async function start() {
  const info = await loadModelInfo('model/manifest.json');
  fields = fieldsFromInfo(info);
  output = outputFromInfo(info);
  window.mpg.output = output;
  const form = document.querySelector('#input-form');
  renderForm(form, fields);
  describeModel(info, fields, output);

  const backend = params.get('backend') || info.web.default_backend;
  model = await loadModel({
    modelUrl: new URL('model/model.json', location.href).href,
    hashes: info.web.model_sha256,
    backend,
    nFeatures: fields.length,
  });
  timings.modelLoadMs = model.loadMs;
  document.querySelector('#runtime').textContent =
    `TF.js ${model.tfjsVersion}, ${model.backend} backend` +
    (model.sha256Verified ? ', model sha256 verified' : ', sha256 not checked (needs https)');

  const update = bindLivePrediction({
    form, fields, info, output, run: model.run,
    onFirstPrediction: () => { timings.firstPredictionMs = performance.now(); },
  });
  await update();
  bindBatch({fields, output, run: model.run});
  document.querySelector('#selftest-button').addEventListener('click', () => window.mpg.selfTest());
  document.body.dataset.ready = 'true';
  resolveReady({backend: model.backend, version: info.model.version, tfjs: model.tfjsVersion,
                sha256Verified: model.sha256Verified});
  if (params.has('selftest')) window.mpg.selfTest();
  showReportLink();
  registerServiceWorker();
}

start().catch((err) => {
  showFatal(err.message);
  rejectReady(err);
});
