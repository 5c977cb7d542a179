// The UI side of the page: the form built from the schema, the live prediction, the batch
// (CSV) mode and the self-test. It talks to the model only through predict(rows).
import {carsFromCsv, checkRow, displayUnit, toCsv} from './data.js';

const MAX_CSV_ROWS = 100000;
const MAX_CSV_BYTES = 20 * 1024 * 1024;
const TABLE_ROWS_SHOWN = 200;

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function formatValue(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

function label(name) {
  return name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

// --- the form -------------------------------------------------------------------------------

/** One labelled input (or select) per feature, named after it, with unit, hint and error slot. */
export function renderForm(form, fields) {
  for (const f of fields) {
    const id = `f-${f.name}`;
    const unit = displayUnit(f);
    let control;
    if (f.kind === 'category') {
      control = el('select', {id, name: f.name, 'aria-describedby': `${id}-hint ${id}-error`});
      for (const c of f.categories) {
        control.append(el('option', {value: String(c.code), selected: c.code === f.median, text: c.label}));
      }
    } else {
      control = el('input', {
        id, name: f.name, type: 'text', inputmode: f.integer ? 'numeric' : 'decimal',
        autocomplete: 'off', spellcheck: 'false', value: f.median === undefined ? '' : formatValue(f.median),
        placeholder: f.nullable ? 'unknown' : null, 'aria-describedby': `${id}-hint ${id}-error`,
      });
    }
    const [lo, hi] = f.trainingRange;
    // The schema's description of a nullable feature explains null for API users; the form
    // says the same in its own words.
    const description = f.nullable ? f.description.split(';')[0] : f.description;
    const hint = f.kind === 'category'
      ? `${description}`
      : `${description}. Trained on ${formatValue(lo)}–${formatValue(hi)}${unit ? ` ${unit}` : ''}` +
        (f.nullable ? '. Leave empty if unknown; the model fills it in.' : '');
    form.append(el('div', {class: 'field', 'data-field': f.name},
      el('label', {for: id}, label(f.name), f.nullable ? el('span', {class: 'optional', text: ' (optional)'}) : null),
      el('div', {class: 'control'}, control, unit ? el('span', {class: 'unit', text: unit}) : null),
      el('p', {class: 'hint', id: `${id}-hint`, text: hint}),
      el('p', {class: 'error', id: `${id}-error`, role: 'alert'})));
  }
}

export function readForm(form, fields) {
  return fields.map((f) => form.elements[f.name].value);
}

/** Shows per-field errors; returns nothing. A field without an error is cleared. */
function showFieldErrors(form, fields, errors) {
  for (const f of fields) {
    const err = errors.find((e) => e.name === f.name);
    const box = $(`[data-field="${f.name}"]`, form);
    box.classList.toggle('invalid', Boolean(err));
    form.elements[f.name].setAttribute('aria-invalid', err ? 'true' : 'false');
    $('.error', box).textContent = err ? err.message : '';
  }
}

function outsideNote(outside, info) {
  const parts = outside.map((o) => {
    const unit = o.unit && o.unit !== 'count' && !o.unit.includes('year') ? ` ${o.unit}` : '';
    return `${label(o.name).toLowerCase()} ${formatValue(o.value)}${unit} (trained on ${formatValue(o.range[0])}–${formatValue(o.range[1])})`;
  });
  return `How sure? Less than usual: ${parts.join(', ')} ${parts.length > 1 ? 'are' : 'is'} outside ` +
    `the training data, so the model extrapolates and the error can be well above its typical ` +
    `±${info.metrics.holdout_mae.toFixed(1)} MPG.`;
}

/**
 * Wires the live prediction: every input event re-checks the form and, if it is valid,
 * predicts. Only the latest request's answer is shown (typing outruns nothing, but a slow
 * answer must never overwrite a newer one).
 */
export function bindLivePrediction({form, fields, info, predict, onFirstPrediction}) {
  const out = $('#prediction');
  const message = $('#form-message');
  const note = $('#how-sure');
  const litres = $('#litres');
  let latest = 0;
  let first = true;

  async function update() {
    const ticket = ++latest;
    const {row, errors, outside} = checkRow(fields, readForm(form, fields));
    showFieldErrors(form, fields, errors);
    if (!row) {
      out.textContent = '—';
      out.removeAttribute('data-mpg');
      out.removeAttribute('data-for');
      out.dataset.state = 'invalid';
      litres.textContent = '';
      message.textContent = errors.length === 1
        ? 'Fix the highlighted value to see a prediction.'
        : `Fix the ${errors.length} highlighted values to see a prediction.`;
      note.hidden = true;
      return;
    }
    const [mpg] = await predict([row]);
    if (ticket !== latest) return;
    out.textContent = mpg.toFixed(1);
    out.dataset.mpg = String(mpg);       // unrounded, for scripts and tests
    out.dataset.for = JSON.stringify(row);
    out.dataset.state = 'ok';
    litres.textContent = `≈ ${(235.215 / mpg).toFixed(1)} L/100 km`;
    message.textContent = `Typical error ±${info.metrics.holdout_mae.toFixed(1)} MPG (mean absolute error on held-out cars).`;
    note.hidden = outside.length === 0;
    note.textContent = outside.length ? outsideNote(outside, info) : '';
    if (first) { first = false; onFirstPrediction?.(); }
  }

  form.addEventListener('input', update);
  form.addEventListener('change', update);
  form.addEventListener('submit', (e) => { e.preventDefault(); update(); });
  return update;
}

// --- batch mode -----------------------------------------------------------------------------

export function bindBatch({fields, predict}) {
  const input = $('#csv-file');
  const drop = $('#drop-zone');
  const status = $('#batch-status');
  const table = $('#batch-table');
  const download = $('#batch-download');
  let lastUrl = null;

  async function handle(file) {
    status.classList.remove('bad');
    table.replaceChildren();
    download.hidden = true;
    try {
      if (file.size > MAX_CSV_BYTES) throw new Error(`the file is ${(file.size / 1048576).toFixed(1)} MB; the page takes at most ${MAX_CSV_BYTES / 1048576} MB`);
      const t0 = performance.now();
      const {header, cars} = carsFromCsv(fields, await file.text(), MAX_CSV_ROWS);
      const valid = cars.filter((c) => c.row);
      const predictions = await predict(valid.map((c) => c.row));
      valid.forEach((c, i) => { c.mpg = predictions[i]; });
      const ms = performance.now() - t0;
      const bad = cars.length - valid.length;
      status.textContent = `${file.name}: ${valid.length} of ${cars.length} rows predicted in ${ms.toFixed(0)} ms` +
        (bad ? `; ${bad} ${bad === 1 ? 'row has' : 'rows have'} invalid values (see the last column)` : '') +
        (cars.length > TABLE_ROWS_SHOWN ? `. Showing the first ${TABLE_ROWS_SHOWN}; the download has all.` : '.');
      renderTable(table, header, cars.slice(0, TABLE_ROWS_SHOWN));
      const csv = toCsv([[...header, 'mpg_predicted', 'error'],
        ...cars.map((c) => [...c.cells, c.row ? c.mpg.toFixed(4) : '', c.errors.map((e) => e.message).join('; ')])]);
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = URL.createObjectURL(new Blob([csv], {type: 'text/csv'}));
      download.href = lastUrl;
      download.download = file.name.replace(/\.csv$/i, '') + '-predictions.csv';
      download.hidden = false;
    } catch (err) {
      status.textContent = `${file.name}: ${err.message}`;
      status.classList.add('bad');
    }
  }

  input.addEventListener('change', () => { if (input.files[0]) handle(input.files[0]); });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) handle(e.dataTransfer.files[0]);
  });
}

function renderTable(table, header, cars) {
  const head = el('tr', {}, ...header.map((h) => el('th', {text: h})), el('th', {text: 'predicted MPG'}));
  const body = cars.map((c) => el('tr', {class: c.row ? null : 'bad'},
    ...header.map((_, i) => el('td', {text: c.cells[i] ?? ''})),
    el('td', {class: 'mpg', text: c.row ? c.mpg.toFixed(1) : c.errors.map((e) => e.message).join('; ')})));
  table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
}

// --- self-test ------------------------------------------------------------------------------

/** Runs golden.json through the page's own model; shows and returns the max abs error. */
export async function runSelfTest({goldenUrl, predict}) {
  const box = $('#selftest-result');
  box.className = '';
  box.textContent = 'Running the golden vectors…';
  try {
    const response = await fetch(goldenUrl);
    if (!response.ok) throw new Error(`cannot load ${goldenUrl}: HTTP ${response.status}`);
    const golden = await response.json();
    const t0 = performance.now();
    const got = await predict(golden.inputs);
    const ms = performance.now() - t0;
    let maxErr = 0;
    golden.expected.forEach((want, i) => { maxErr = Math.max(maxErr, Math.abs(got[i] - want)); });
    const passed = maxErr <= golden.tolerance;
    box.className = passed ? 'pass' : 'fail';
    box.dataset.passed = String(passed);
    box.dataset.maxAbsError = String(maxErr);
    box.textContent = `${passed ? 'PASS' : 'FAIL'}: ${golden.inputs.length} golden rows, max abs error ` +
      `${maxErr.toExponential(2)} MPG (tolerance ${golden.tolerance}) against the scikit-learn pipeline, ` +
      `in ${ms.toFixed(1)} ms.`;
    return {passed, maxAbsError: maxErr, rows: golden.inputs.length};
  } catch (err) {
    box.className = 'fail';
    box.dataset.passed = 'false';
    box.textContent = `Self-test could not run: ${err.message}`;
    return {passed: false, error: err.message};
  }
}
