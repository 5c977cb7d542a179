// The UI side of the page: the words about the model, the form built from the schema, the live
// prediction (a value, or a class with its probabilities as bars), the batch (CSV) mode and the
// self-test. It talks to the model only through run(rows) -> output rows (arrays of K numbers),
// and names nothing the manifest does not: any model the manifest describes renders.
import {classIndex, displayUnit, examplesFromCsv, isTie, checkRow, toCsv} from './data.js';

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

/** A number as a file keeps it: float32 holds ~7 significant digits, so 7 are written. */
function fileNumber(v) {
  return String(Number(v.toPrecision(7)));
}

function percent(p) {
  return `${(100 * p).toFixed(1)}\u00a0%`;
}

function label(name) {
  return name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function lowerFirst(text) {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** Decimals shown for a regressor's value: enough to see a change well inside its typical
 * error (one decimal for an error of 1 to 10, more for smaller errors), at least one. */
function decimalsFor(mae) {
  if (!(mae > 0)) return 2;
  return Math.min(6, Math.max(1, Math.ceil(-Math.log10(mae)) + 1));
}

function withUnit(text, unit) {
  return unit ? `${text} ${unit}` : text;
}

// --- the words about the model ----------------------------------------------------------------

/** How good the model is on held-out rows, in its task's terms. */
function qualityText(info, output) {
  const h = info.metrics.holdout || {};
  if (output.classifier) {
    return h.accuracy === undefined ? 'hold-out accuracy not recorded'
      : `hold-out accuracy ${percent(h.accuracy)}` + (h.log_loss === undefined ? '' : `, log-loss ${h.log_loss.toFixed(3)}`);
  }
  const mae = h.mae ?? info.metrics.holdout_mae;
  return mae === undefined ? 'hold-out error not recorded'
    : `hold-out mean absolute error ${withUnit(mae.toFixed(2), output.unit)}`;
}

/** Fills the heading, the result's label and unit, the footer and the CSV rules from the manifest. */
export function describeModel(info, fields, output) {
  const words = info.page || {};
  if (words.title) document.title = words.title;
  if (words.heading) $('#heading').textContent = words.heading;
  if (words.description) $('#about').textContent = words.description;
  document.querySelectorAll('[data-model-name]').forEach((n) => { n.textContent = info.model.name; });
  document.querySelectorAll('[data-model-version]').forEach((n) => { n.textContent = info.model.version; });
  $('#model-created').textContent = info.model.created.slice(0, 10);
  $('#model-family').textContent = info.metrics.family || 'model';
  $('#model-quality').textContent = qualityText(info, output);
  $('#result-label').textContent = `Predicted ${lowerFirst(output.output)}`;
  $('#result-unit').textContent = output.unit;
  $('#csv-columns').textContent = fields.map((f) => f.name).join(', ');
  const rules = fields.filter((f) => f.kind === 'category').map((f) =>
    `${f.name} as ${f.categories.map((c) => c.code).join('/')} or ${f.categories.map((c) => c.label).join('/')}`);
  const optional = fields.filter((f) => f.nullable).map((f) => f.name);
  if (optional.length) rules.push(`${optional.join(', ')} may be empty`);
  $('#csv-rules').textContent = rules.length ? `(${rules.join('; ')}).` : '';
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
      // A category that may be missing offers "unknown" (sent as missing; the model imputes).
      if (f.nullable) control.append(el('option', {value: '', text: 'unknown'}));
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
    const description = (f.nullable ? f.description.split(';')[0] : f.description).trim();
    const parts = description ? [description] : [];
    if (f.kind !== 'category') {
      parts.push(`Trained on ${formatValue(lo)}–${formatValue(hi)}${unit ? ` ${unit}` : ''}` +
        (f.integer ? ' (whole numbers)' : ''));
    }
    if (f.nullable) parts.push(f.kind === 'category' ? 'May be unknown' : 'Leave empty if unknown; the model fills it in.');
    const hint = parts.join('. ');
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
    const box = $(`[data-field="${CSS.escape(f.name)}"]`, form);
    box.classList.toggle('invalid', Boolean(err));
    form.elements[f.name].setAttribute('aria-invalid', err ? 'true' : 'false');
    $('.error', box).textContent = err ? err.message : '';
  }
}

function outsideNote(outside, info, output) {
  const parts = outside.map((o) => {
    const unit = o.unit && o.unit !== 'count' && !o.unit.includes('year') ? ` ${o.unit}` : '';
    return `${label(o.name).toLowerCase()} ${formatValue(o.value)}${unit} (trained on ${formatValue(o.range[0])}–${formatValue(o.range[1])})`;
  });
  const mae = info.metrics.holdout?.mae ?? info.metrics.holdout_mae;
  const consequence = output.classifier || mae === undefined
    ? 'so the model extrapolates and its answer is less reliable than usual.'
    : `so the model extrapolates and the error can be well above its typical ` +
      `±${withUnit(mae.toFixed(1), output.unit)}.`;
  return `How sure? Less than usual: ${parts.join(', ')} ${parts.length > 1 ? 'are' : 'is'} outside ` +
    `the training data, ${consequence}`;
}

/** The class probabilities as bars: each bar carries its label and percentage as text (the
 * bar itself is decoration), the predicted class is marked. */
function renderBars(list, classes, probabilities, best) {
  list.replaceChildren(...classes.map((c, i) => el('li',
    {class: i === best ? 'bar best' : 'bar', 'data-class': c, 'data-p': String(probabilities[i]),
     'aria-current': i === best ? 'true' : null},
    el('span', {class: 'bar-label', text: c}),
    el('span', {class: 'bar-track', 'aria-hidden': 'true'},
      el('span', {class: 'bar-fill', style: `width: ${(100 * Math.min(1, Math.max(0, probabilities[i]))).toFixed(2)}%`})),
    el('span', {class: 'bar-pct', text: percent(probabilities[i])}))));
  list.hidden = false;
}

/**
 * Wires the live prediction: every input event re-checks the form and, if it is valid,
 * predicts. Only the latest request's answer is shown (typing outruns nothing, but a slow
 * answer must never overwrite a newer one).
 */
export function bindLivePrediction({form, fields, info, output, run, onFirstPrediction}) {
  const out = $('#prediction');
  const message = $('#form-message');
  const note = $('#how-sure');
  const bars = $('#probabilities');
  const mae = info.metrics.holdout?.mae ?? info.metrics.holdout_mae;
  const decimals = decimalsFor(mae);
  let latest = 0;
  let first = true;

  async function update() {
    const ticket = ++latest;
    const {row, errors, outside} = checkRow(fields, readForm(form, fields));
    showFieldErrors(form, fields, errors);
    if (!row) {
      out.textContent = '—';
      for (const k of ['value', 'class', 'index', 'probabilities', 'for']) delete out.dataset[k];
      out.dataset.state = 'invalid';
      bars.hidden = true;
      message.textContent = errors.length === 1
        ? 'Fix the highlighted value to see a prediction.'
        : `Fix the ${errors.length} highlighted values to see a prediction.`;
      note.hidden = true;
      return;
    }
    const [y] = await run([row]);
    if (ticket !== latest) return;
    if (output.classifier) {
      const best = classIndex(y);
      out.textContent = output.classes[best];
      out.dataset.class = output.classes[best];
      out.dataset.index = String(best);
      out.dataset.probabilities = JSON.stringify(y);    // unrounded, for scripts and tests
      renderBars(bars, output.classes, y, best);
      message.textContent = `${percent(y[best])} likely; ${qualityText(info, output)} (held-out rows).`;
    } else {
      out.textContent = y[0].toFixed(decimals);
      out.dataset.value = String(y[0]);                  // unrounded, for scripts and tests
      message.textContent = mae === undefined ? '' :
        `Typical error ±${withUnit(mae.toFixed(decimals), output.unit)} (mean absolute error on held-out rows).`;
    }
    out.dataset.for = JSON.stringify(row);
    out.dataset.state = 'ok';
    note.hidden = outside.length === 0;
    note.textContent = outside.length ? outsideNote(outside, info, output) : '';
    if (first) { first = false; onFirstPrediction?.(); }
  }

  form.addEventListener('input', update);
  form.addEventListener('change', update);
  form.addEventListener('submit', (e) => { e.preventDefault(); update(); });
  return update;
}

// --- batch mode -----------------------------------------------------------------------------

/** The columns the batch adds, and a row's cells in them: the value (regressor), or the class
 * and one probability per class (`p_<label>`) for a classifier. */
function answerColumns(output) {
  const predicted = `${output.target}_predicted`;
  if (!output.classifier) {
    return {names: [predicted], cells: (y) => [fileNumber(y[0])], shown: (y) => [y[0].toFixed(3)]};
  }
  return {
    names: [predicted, ...output.classes.map((c) => `p_${c}`)],
    cells: (y) => [output.classes[classIndex(y)], ...y.map(fileNumber)],
    shown: (y) => [output.classes[classIndex(y)], ...y.map((p) => p.toFixed(4))],
  };
}

export function bindBatch({fields, output, run}) {
  const input = $('#csv-file');
  const drop = $('#drop-zone');
  const status = $('#batch-status');
  const table = $('#batch-table');
  const download = $('#batch-download');
  const columns = answerColumns(output);
  let lastUrl = null;

  async function handle(file) {
    status.classList.remove('bad');
    table.replaceChildren();
    download.hidden = true;
    try {
      if (file.size > MAX_CSV_BYTES) throw new Error(`the file is ${(file.size / 1048576).toFixed(1)} MB; the page takes at most ${MAX_CSV_BYTES / 1048576} MB`);
      const t0 = performance.now();
      const {header, examples} = examplesFromCsv(fields, await file.text(), MAX_CSV_ROWS);
      const valid = examples.filter((c) => c.row);
      const outputs = await run(valid.map((c) => c.row));
      valid.forEach((c, i) => { c.y = outputs[i]; });
      const ms = performance.now() - t0;
      const bad = examples.length - valid.length;
      status.textContent = `${file.name}: ${valid.length} of ${examples.length} rows predicted in ${ms.toFixed(0)} ms` +
        (bad ? `; ${bad} ${bad === 1 ? 'row has' : 'rows have'} invalid values (see the last column)` : '') +
        (examples.length > TABLE_ROWS_SHOWN ? `. Showing the first ${TABLE_ROWS_SHOWN}; the download has all.` : '.');
      renderTable(table, header, examples.slice(0, TABLE_ROWS_SHOWN), columns);
      const blank = columns.names.map(() => '');
      const csv = toCsv([[...header, ...columns.names, 'error'],
        ...examples.map((c) => [...c.cells, ...(c.row ? columns.cells(c.y) : blank), c.errors.map((e) => e.message).join('; ')])]);
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

function renderTable(table, header, examples, columns) {
  const head = el('tr', {}, ...header.map((h) => el('th', {text: h})),
    ...columns.names.map((n) => el('th', {class: 'answer', text: n})));
  const body = examples.map((c) => el('tr', {class: c.row ? null : 'bad'},
    ...header.map((_, i) => el('td', {text: c.cells[i] ?? ''})),
    ...(c.row
      ? columns.shown(c.y).map((text) => el('td', {class: 'answer', text}))
      : [el('td', {class: 'answer', colspan: String(columns.names.length), text: c.errors.map((e) => e.message).join('; ')})])));
  table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
}

// --- self-test ------------------------------------------------------------------------------

/**
 * Runs golden.json through the page's own model; shows and returns the max abs error over
 * every output (a regressor's values, or every class probability) and, for a classifier, the
 * class agreement. It passes when every output is within the tolerance and no class differs
 * where the expected probabilities decide it (a tie within 2 x tolerance may go either way).
 */
export async function runSelfTest({goldenUrl, run, output}) {
  const box = $('#selftest-result');
  box.className = '';
  box.textContent = 'Running the golden vectors…';
  try {
    const response = await fetch(goldenUrl);
    if (!response.ok) throw new Error(`cannot load ${goldenUrl}: HTTP ${response.status}`);
    const golden = await response.json();
    const t0 = performance.now();
    const got = await run(golden.inputs);
    const ms = performance.now() - t0;
    let maxErr = 0;
    let agree = 0;
    let decided = 0;
    golden.expected.forEach((want, i) => {
      const expected = Array.isArray(want) ? want : [want];
      if (got[i].length !== expected.length) {
        throw new Error(`row ${i}: the model gives ${got[i].length} outputs, golden.json expects ${expected.length}`);
      }
      expected.forEach((e, k) => { maxErr = Math.max(maxErr, Math.abs(got[i][k] - e)); });
      if (output?.classifier) {
        const same = classIndex(got[i]) === classIndex(expected);
        agree += same ? 1 : 0;
        if (!same && !isTie(expected, golden.tolerance)) decided += 1;
      }
    });
    const n = golden.inputs.length;
    const passed = maxErr <= golden.tolerance && decided === 0;
    box.className = passed ? 'pass' : 'fail';
    box.dataset.passed = String(passed);
    box.dataset.maxAbsError = String(maxErr);
    let what = `max abs error ${maxErr.toExponential(2)}${output?.unit ? ` ${output.unit}` : ''}`;
    if (output?.classifier) {
      box.dataset.classAgreement = String(agree / n);
      what = `max abs error of a probability ${maxErr.toExponential(2)}, same class on ${agree} of ${n}` +
        (agree < n ? ` (${n - agree - decided} near-ties, ${decided} decided differences)` : '');
    }
    box.textContent = `${passed ? 'PASS' : 'FAIL'}: ${n} golden rows, ${what} (tolerance ${golden.tolerance}) ` +
      `against the scikit-learn pipeline, in ${ms.toFixed(1)} ms.`;
    return {passed, maxAbsError: maxErr, rows: n,
            ...(output?.classifier ? {classAgreement: agree / n, decidedDisagreements: decided} : {})};
  } catch (err) {
    box.className = 'fail';
    box.dataset.passed = 'false';
    box.textContent = `Self-test could not run: ${err.message}`;
    return {passed: false, error: err.message};
  }
}
