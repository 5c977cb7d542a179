"""The good path of POST /predict without pydantic: named rows -> a float matrix, column-wise.

Under load, pydantic's strict per-row validation of `{"instances": [{...}, ...]}` took about a
third of a 100-row request. Most requests are good, so this path only has to recognise a good
body quickly; it never words a refusal. It parses with orjson and, in one pass over the rows,
checks each row's key set (no unknown field, every required one present) and the JSON type of
every value column by column (numbers; null only where the feature is nullable; a string only
where it is a category label, any case), then applies the feature rules (hard limits, whole
numbers, categories) with the core's row validator (`mpgpack.core.rows.check_rows`) on the
whole matrix at once.

Whenever anything is not plainly good (a parse error, a NaN literal, an unknown field, a wrong
type, a rule broken, more key marks in the bytes than keys found: a duplicate key or a string
holding `":`), it answers None and the caller takes the pydantic path, which words the
refusal as before (or accepts what only it accepts, such as 4.0000000001 for a whole number).
So a response never depends on which path read the body: tests/test_api_batch_fastpath.py
sends hundreds of generated bodies, good and bad, to an app with this path and one without
and compares the bytes.
"""
from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter

import numpy as np
import orjson

from mpgpack.core.rows import check_rows
from mpgpack.core.schema import Schema

_NAN = float("nan")
# Below this many rows pydantic is quicker (its cost is per row, this path's mostly per request:
# ~30 µs against ~1.5 µs a row, measured with 7 features), so they, and the one-row object
# form, go to pydantic.
MIN_ROWS = 25
_EXACT = 2.0 ** 53        # beyond it an int is not exactly a float: left to pydantic's rules


class FastRows:
    """`matrix(body)`: float32 [N, F] in feature order (NaN where null or omitted) for a good
    /predict body, else None (take the pydantic path)."""

    def __init__(self, schema: Schema, max_batch: int, min_rows: int | None = None):
        self.schema = schema
        self.max_batch = max_batch
        self.min_rows = MIN_ROWS if min_rows is None else min_rows
        self.names = list(schema.names)
        self.width = len(self.names)
        self.all_keys = frozenset(self.names)
        self.required = frozenset(f.name for f in schema if not f.nullable)
        self._get = itemgetter(*self.names) if self.width > 1 else (lambda row: (row[self.names[0]],))
        # each required value takes at least 4 bytes ("a":1), so shorter bodies have fewer rows
        self._min_bytes = 4 * self.min_rows * len(self.required)
        self._nullable = [i for i, f in enumerate(schema) if f.nullable]
        key_bytes = b"".join(name.encode() for name in self.names)
        self._t_row, self._f_row = key_bytes.count(b"t"), key_bytes.count(b"f")
        self._t_instances = b"instances".count(b"t")
        self._labels = {i: f.label_codes() for i, f in enumerate(schema) if f.is_category}
        # With hard limits inside ±2**53 (every manifest so far) the limits refuse what a big
        # int could make of it; otherwise those values go to pydantic.
        self._check_size = not bool(np.all(np.abs(schema.minimum) < _EXACT)
                                    and np.all(np.abs(schema.maximum) < _EXACT))

    def matrix(self, body: bytes) -> np.ndarray | None:
        if len(body) < self._min_bytes:      # fewer rows than min_rows: not worth a parse
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(parsed) is not dict or "instances" not in parsed:
            return None          # one row: pydantic is quicker than the fixed cost here
        rows = parsed["instances"]
        if (len(parsed) != 1 or type(rows) is not list
                or not self.min_rows <= len(rows) <= self.max_batch):
            return None
        n, width = len(rows), self.width
        try:
            full = set(map(len, rows)) == {width}
            if full:
                # width keys, and itemgetter finds every name: exactly the names (a list or a
                # string row is a TypeError, a wrong name a KeyError)
                flat = list(chain.from_iterable(map(self._get, rows)))
            else:
                flat = self._partial_rows(rows)
        except (KeyError, TypeError):
            return None
        if flat is None:
            return None
        keys = 1 + sum(map(len, rows))     # the keys really sent (an omitted null is not one)
        # Every key in the text is followed by one colon, and only strings can add more: no
        # more colons than keys proves no key was given twice (pydantic's path finds which).
        if body.count(b":") > keys:
            return None
        missing = None
        for j in self._nullable:
            column = flat[j::width]
            if None in column:
                if missing is None:
                    missing = np.zeros((n, width), dtype=bool)
                missing[:, j] = [v is None for v in column]
                flat[j::width] = [_NAN if v is None else v for v in column]
        try:
            values = array("d", flat)        # ints and floats only (and bools: below)
        except TypeError:                    # a label, or a string/null/array where not allowed
            if not self._labels_to_codes(flat):
                return None
            try:
                values = array("d", flat)
            except TypeError:
                return None
        if not self._no_booleans(body, n, full) and bool in set(map(type, flat)):
            return None
        X = np.frombuffer(values, dtype=np.float64).reshape(n, width)
        if self._check_size and np.count_nonzero(np.abs(X) >= _EXACT):
            return None
        if not check_rows(self.schema, X, missing).good.all():
            return None
        return X.astype(np.float32)

    def _no_booleans(self, body: bytes, n: int, full: bool) -> bool:
        """True when the body's bytes prove it holds no `true`/`false` (a cheaper proof than
        looking at the type of every value): every row has every key, no escape sequence (so a
        key's bytes are its name's), and no more "t" or "f" bytes than the keys hold (numbers,
        null, white space and the JSON punctuation have none; a label may, then look)."""
        return (full and b"\\" not in body and body.count(b"t") == self._t_instances + n * self._t_row
                and body.count(b"f") == n * self._f_row)

    def _partial_rows(self, rows: list) -> list | None:
        """Rows some of which leave out a nullable feature: each key set checked."""
        all_keys, required, names = self.all_keys, self.required, self.names
        for row in rows:
            if type(row) is not dict:
                return None
            k = row.keys()
            if not (k <= all_keys and k >= required):
                return None
        return list(chain.from_iterable(map(row.get, names) for row in rows))

    def _labels_to_codes(self, flat: list) -> bool:
        """Category labels (any case) -> their codes, in place; False if a string is not a label
        of its column."""
        width = self.width
        for j, labels in self._labels.items():
            column = flat[j::width]
            if str in set(map(type, column)):
                try:
                    flat[j::width] = [labels[v.strip().casefold()] if type(v) is str else v
                                      for v in column]
                except KeyError:
                    return False
        return True
