// The data side of the page: the feature schema read from the bundle's manifest, the checking
// of raw values against it, what the model's output means (a value, or class probabilities),
// and CSV in and out. No scaling or encoding happens here: the model takes raw features and
// does its own preprocessing.

import {sha256Hex} from './sha256.js';

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The page's subset of manifest.json (written by pack.py). */
export async function loadModelInfo(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  // index.html carries this file's sha256 (pack.py), and the server checked index.html
  // against the bundle's manifest at start: a changed feature name or limit is refused here.
  const want = document.querySelector('meta[name="mpg-manifest-sha256"]')?.content;
  if (want && globalThis.crypto && crypto.subtle) {
    const got = await sha256Hex(bytes);
    if (got !== want) {
      throw new Error(`${url} does not match its sha256 in index.html (expected ` +
        `${want.slice(0, 12)}…, found ${got.slice(0, 12)}…); refusing to use it`);
    }
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** One field per feature, in model input order, with what the form and checks need. */
export function fieldsFromInfo(info) {
  return info.schema.features.map((f) => {
    const categories = Object.entries(f.categories || {})
      .map(([code, label]) => ({code: Number(code), label: String(label)}));
    let start = info.defaults?.[f.name];
    // The form starts on a valid value: a category's default must be one of its codes.
    if (f.kind === 'category' && !categories.some((c) => c.code === start)) start = categories[0]?.code;
    return {
      name: f.name,
      unit: f.unit || '',
      description: f.description || '',
      kind: f.kind,
      min: f.minimum,
      max: f.maximum,
      integer: f.integer,
      nullable: f.nullable,
      categories,
      trainingRange: f.training_range || [f.minimum, f.maximum],
      median: start,
    };
  });
}

/**
 * What the model's output is: {classifier, classes, target, unit, output}. A regressor's output
 * row is [value]; a classifier's is one probability per class, in the order of `classes`.
 */
export function outputFromInfo(info) {
  const target = info.schema.target || {};
  const classes = (target.classes || []).map(String);
  const classifier = (info.model.task || info.metrics?.task) === 'classification' && classes.length > 0;
  return {classifier, classes, target: target.name || 'prediction', unit: info.page?.unit ?? (target.unit || ''),
          output: info.page?.output || target.name || 'Prediction'};
}

/** The predicted class: the index of the highest probability, the FIRST one on a tie (the rule
 * of every target: numpy's argmax, mpgpack.core.outputs.class_index). */
export function classIndex(probabilities) {
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return best;
}

/** A row whose two highest expected probabilities lie within 2 x tolerance is a tie: a model
 * within tolerance may pick either class there (core.outputs.class_agreement's rule). */
export function isTie(probabilities, tolerance) {
  const sorted = [...probabilities].sort((a, b) => b - a);
  return sorted.length > 1 && sorted[0] - sorted[1] <= 2 * tolerance;
}

/** The unit as a person reads it after a number ("2500 lb"); none for counts and codes. */
export function displayUnit(field) {
  const u = field.unit || '';
  return field.kind === 'number' && u && u !== 'count' && !u.includes('year') ? u : '';
}

function withUnit(value, field) {
  const unit = displayUnit(field);
  return unit ? `${value} ${unit}` : `${value}`;
}

export function describeAllowed(field) {
  if (field.kind === 'category') {
    return `one of ${field.categories.map((c) => `${c.code} (${c.label})`).join(', ')}`;
  }
  const kind = field.integer ? 'a whole number' : 'a number';
  return `${kind} from ${field.min} to ${withUnit(field.max, field)}`;
}

/**
 * Checks one raw value (text from the form or a CSV cell, or a number/null from the JS API).
 * Returns {value, error, outside}: value is a number, or null for an allowed missing value;
 * error is a sentence naming the field, the rule and what is allowed; outside is true when a
 * valid value lies outside the training range (the model extrapolates there).
 */
export function checkValue(field, raw) {
  let value = raw;
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (text === '') {
      value = null;
    } else if (field.kind === 'category') {
      const match = field.categories.find((c) => String(c.code) === text ||
        c.label.toLowerCase() === text.toLowerCase());
      if (!match) {
        return {value: null, error: `${field.name}: "${text}" is not ${describeAllowed(field)}`, outside: false};
      }
      value = match.code;
    } else if (NUMBER_RE.test(text)) {
      value = Number(text);
    } else {
      return {value: null, error: `${field.name}: "${text}" is not a number; enter ${describeAllowed(field)}`, outside: false};
    }
  }
  if (value === null || value === undefined) {
    if (field.nullable) return {value: null, error: null, outside: false};
    return {value: null, error: `${field.name} is required: enter ${describeAllowed(field)}`, outside: false};
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return {value: null, error: `${field.name}: ${JSON.stringify(value)} is not a number; enter ${describeAllowed(field)}`, outside: false};
  }
  if (field.kind === 'category' && !field.categories.some((c) => c.code === value)) {
    return {value: null, error: `${field.name}: ${value} is not ${describeAllowed(field)}`, outside: false};
  }
  if (value < field.min || value > field.max) {
    return {value: null, error: `${field.name}: ${withUnit(value, field)} is outside the allowed range; enter ${describeAllowed(field)}`, outside: false};
  }
  if (field.integer && !Number.isInteger(value)) {
    return {value: null, error: `${field.name}: ${value} is not a whole number; enter ${describeAllowed(field)}`, outside: false};
  }
  const [lo, hi] = field.trainingRange;
  return {value, error: null, outside: value < lo || value > hi};
}

/**
 * Checks one example (raw values in feature order). Returns {row, errors, outside}: row is the
 * model input (numbers, null for missing) or null when any value is invalid.
 */
export function checkRow(fields, raws) {
  const errors = [];
  const outside = [];
  const row = fields.map((field, i) => {
    const r = checkValue(field, raws[i]);
    if (r.error) errors.push({name: field.name, message: r.error});
    if (r.outside) outside.push({name: field.name, value: r.value, range: field.trainingRange, unit: field.unit});
    return r.value;
  });
  return {row: errors.length ? null : row, errors, outside};
}

// --- CSV ------------------------------------------------------------------------------------

/** RFC 4180 CSV (quotes, doubled quotes, CRLF or LF). Returns an array of records (arrays). */
export function parseCsv(text) {
  const records = [];
  let record = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') { cell += '"'; i++; } else { quoted = false; }
      } else {
        cell += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      record.push(cell); cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(cell); cell = '';
      if (record.length > 1 || record[0] !== '') records.push(record);
      record = [];
    } else {
      cell += ch;
    }
  }
  record.push(cell);
  if (record.length > 1 || record[0] !== '') records.push(record);
  return records;
}

function csvCell(value) {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(records) {
  return records.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/**
 * Reads a CSV of rows: a header naming the features (any order, any case, extra columns kept),
 * then one example per line. Returns {header, examples: [{cells, row, errors, outside}]} or throws
 * an Error whose message says what is wrong with the file as a whole.
 */
export function examplesFromCsv(fields, text, maxRows) {
  const records = parseCsv(text.replace(/^\uFEFF/, ''));
  if (records.length === 0) throw new Error('the file is empty');
  const header = records[0].map((h) => h.trim());
  const columns = fields.map((f) => header.findIndex((h) => h.toLowerCase() === f.name.toLowerCase()));
  const absent = fields.filter((f, i) => columns[i] < 0 && !f.nullable).map((f) => f.name);
  if (absent.length) {
    const optional = fields.filter((f) => f.nullable).map((f) => f.name);
    throw new Error(`the header has no column ${absent.join(', ')}; it needs ${fields.map((f) => f.name).join(', ')}` +
      (optional.length ? ` (${optional.join(', ')} may be left out or empty)` : ''));
  }
  const body = records.slice(1);
  if (body.length === 0) throw new Error('the file has a header but no rows');
  if (body.length > maxRows) throw new Error(`the file has ${body.length} rows; the page takes at most ${maxRows}`);
  const examples = body.map((cells) => {
    const raws = columns.map((c) => (c < 0 ? '' : (cells[c] ?? '')));
    return {cells, ...checkRow(fields, raws)};
  });
  return {header, examples};
}
