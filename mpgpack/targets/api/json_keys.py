"""Refusing a JSON object that names one key twice (`{"origin": 99, "origin": 1}`).

The JSON parsers in the request path (pydantic's, orjson) keep the last value silently, and
doing the check in a Python parser would double the cost of a 10,000-car batch. So: after
validation, compare the keys the validated request holds with the key ends (`"` + optional
whitespace + `:`) in the body's bytes. Every key makes one such mark and a string value can
only add marks, so equal counts prove there was no duplicate; only when the body has more marks
(a duplicate, or a string containing `":`) is it parsed again in Python to find the key.
"""
from __future__ import annotations

import json
import re

from pydantic import BaseModel

from mpgpack.targets.api.errors import ApiError

_KEY_END = re.compile(rb'"\s*:')
_SPACED = re.compile(rb'"[ \t\n\r]')        # a quote followed by white space: pretty-printed


def key_marks(body: bytes) -> int:
    """How many key ends the body's bytes hold, at least (strings can add some)."""
    if _SPACED.search(body):                  # pretty-printed: the slower exact count
        return len(_KEY_END.findall(body))
    return body.count(b'":')                  # compact JSON: a C-speed count


def count_keys(value) -> int:
    """The keys of a validated request: dicts (TypedDicts) and pydantic models, nested."""
    if isinstance(value, dict):
        return len(value) + sum(count_keys(v) for v in value.values() if isinstance(v, (dict, list, BaseModel)))
    if isinstance(value, BaseModel):
        return sum(1 + count_keys(getattr(value, f)) for f in value.model_fields_set)
    if isinstance(value, list) and value:
        leaf = value[0]
        while isinstance(leaf, list) and leaf:     # nested tensor rows hold numbers, no keys
            leaf = leaf[0]
        if isinstance(leaf, (dict, BaseModel)):
            return sum(count_keys(v) for v in value)
    return 0


def refuse_duplicate_keys(body: bytes, keys: int, status: int) -> None:
    """Raises ApiError(status) naming a key given twice in one object of `body`; `keys` is how
    many keys validation found in it (count_keys, or quicker where the shape is known)."""
    if key_marks(body) <= keys:
        return
    json.loads(body, object_pairs_hook=lambda pairs: _one_each(pairs, status))


def _one_each(pairs: list, status: int) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ApiError(status, f"{key}: given twice in one JSON object; send each field once")
    return out
