"""POST /predict answers byte for byte the same with the fast path for named batches
(fast_rows.py, ApiSettings.fast_rows) as with pydantic alone: hundreds of generated bodies,
good (nulls, omitted nullable fields, labels in any case, codes, whole floats for integer
features, values outside the training range, >100 flagged rows) and bad (every kind of refusal,
and what only pydantic accepts), sent in-process to an app with the path and one without.
The fast path is forced on for every batch size (MIN_ROWS = 1) so that small bodies exercise it
too; the test also checks that the good bodies really went through it."""
from __future__ import annotations

import json
import random

import pytest
from fastapi.testclient import TestClient

from mpgpack.targets.api import fast_rows
from mpgpack.targets.api.app import create_app
from mpgpack.targets.api.settings import ApiSettings

MAX_BATCH = 300
HEADERS = {"Content-Type": "application/json", "X-Request-ID": "same-id"}


@pytest.fixture(scope="module")
def clients(bundle_dir, tmp_path_factory):
    web = str(tmp_path_factory.mktemp("no-web"))
    settings = ApiSettings(bundle=str(bundle_dir), source=str(bundle_dir), reload_signal=False,
                           access_log=False, web_dir=web, max_batch=MAX_BATCH)
    slow_app = create_app(settings.with_(fast_rows=False))
    old, fast_rows.MIN_ROWS = fast_rows.MIN_ROWS, 1
    try:
        fast_app = create_app(settings)
    finally:
        fast_rows.MIN_ROWS = old
    served = fast_app.state.slot.current
    assert slow_app.state.slot.current.models.fast is None
    calls = {"fast": 0}
    matrix = served.models.fast

    def counted(body):
        X = matrix(body)
        calls["fast"] += X is not None
        return X
    # Served is frozen; RequestModels is not: count what the fast path accepted.
    served.models.fast = counted
    with TestClient(fast_app) as fast, TestClient(slow_app) as slow:
        yield fast, slow, served.models.schema, calls


# -- generated bodies ---------------------------------------------------------------------------
def _cased(rng, text: str) -> str:
    out = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    return rng.choice(["", " ", "  "]) + out + rng.choice(["", " ", "\t"])


def good_value(rng, f, outside: float = 0.15):
    """A valid value for feature f (None means: null or omitted, decided by the caller)."""
    if f.nullable and rng.random() < 0.15:
        return None
    if f.is_category:
        code = rng.choice(sorted(f.categories))
        kind = rng.random()
        if kind < 0.35:
            return _cased(rng, f.categories[code])
        return float(code) if kind < 0.5 else code
    lo, hi = f.training_range or (f.minimum, f.maximum)
    if rng.random() < outside:         # within the hard limits, outside the training range
        lo, hi = (f.minimum, lo) if rng.random() < 0.5 else (hi, f.maximum)
    v = rng.uniform(lo, hi)
    if f.integer:
        v = min(max(round(v), f.minimum), f.maximum)
        return float(v) if rng.random() < 0.3 else int(v)
    kind = rng.random()
    if kind < 0.2:
        return int(min(max(round(v), f.minimum), f.maximum))
    if kind < 0.4:
        return float(repr(v))           # 17 digits
    return round(v, rng.choice([1, 2, 4]))


def good_row(rng, schema, outside: float = 0.15) -> dict:
    row = {}
    for f in schema:
        v = good_value(rng, f, outside)
        if v is None and rng.random() < 0.5:
            continue                    # an omitted nullable feature
        row[f.name] = v
    if rng.random() < 0.3:              # key order does not matter
        items = list(row.items())
        rng.shuffle(items)
        row = dict(items)
    return row


def dumps(rng, obj) -> bytes:
    style = rng.random()
    if style < 0.6:
        return json.dumps(obj, separators=(",", ":")).encode()
    if style < 0.85:
        return json.dumps(obj).encode()
    return json.dumps(obj, indent=2).encode()


def good_bodies(rng, schema) -> list[bytes]:
    out = []
    for i in range(160):
        n = rng.choice([1, 1, 2, 3, 7, 25, 60, 100, MAX_BATCH])
        rows = [good_row(rng, schema) for _ in range(n)]
        obj = rows[0] if n == 1 and rng.random() < 0.5 else {"instances": rows}
        out.append(dumps(rng, obj))
    # more than 100 flagged rows: warnings_summary
    first = schema[0]
    hi = first.maximum if first.training_range is None else first.training_range[1]
    rows = [good_row(rng, schema, outside=0.0) for _ in range(150)]
    top = {first.name: (int(hi) + 1 if first.integer else hi * 1.01)}
    if top[first.name] <= first.maximum:
        out.append(json.dumps({"instances": [{**r, **top} for r in rows]}).encode())
    # valid JSON written oddly: an escaped key, -0, exponents
    row = good_row(rng, schema)
    name = next(iter(row))
    text = json.dumps({"instances": [row] * 30})
    out.append(text.replace(f'"{name}"', '"' + "".join(f"\\u{ord(c):04x}" for c in name) + '"')
               .encode())
    out.append(text.encode() + b"\n\n")                                # white space after
    return out


def bad_bodies(rng, schema) -> list[bytes]:
    """Each a good body with one (sometimes two) things broken, in a row chosen at random."""
    names = schema.names
    required = [f for f in schema if not f.nullable]
    numbers = [f for f in schema if not f.is_category]
    integers = [f for f in schema if f.integer and not f.is_category]
    categories = [f for f in schema if f.is_category]

    def mutations():
        yield "unknown field", lambda r: r.update(colour=1)
        yield "misspelt field", lambda r: r.update({names[0] + "s": r.pop(names[0], 1)})
        yield "missing required", lambda r: r.pop(rng.choice(required).name, None)
        yield "string number", lambda r: r.update({rng.choice(numbers).name: "4"})
        yield "boolean", lambda r: r.update({rng.choice(names): rng.choice([True, False])})
        yield "null required", lambda r: r.update({rng.choice(required).name: None})
        yield "array value", lambda r: r.update({rng.choice(names): [1]})
        yield "object value", lambda r: r.update({rng.choice(names): {"a": 1}})
        yield "above hard limit", lambda r: _set(r, rng.choice(numbers), lambda f: f.maximum + 1)
        yield "below hard limit", lambda r: _set(r, rng.choice(numbers), lambda f: f.minimum - 0.5)
        yield "huge", lambda r: r.update({rng.choice(numbers).name: 10 ** 30})
        yield "huge float", lambda r: r.update({rng.choice(numbers).name: 1e300})
        if integers:
            yield "not whole", lambda r: _set(r, rng.choice(integers), lambda f: f.minimum + 0.5)
            # pydantic's multiple_of tolerates 1e-9: accepted by it, refused by check_rows
            yield "nearly whole", lambda r: _set(r, rng.choice(integers),
                                                 lambda f: f.minimum + 1 + 1e-10)
        if categories:
            yield "unknown code", lambda r: _set(r, categories[0],
                                                 lambda f: max(f.categories) + 1)
            yield "unknown label", lambda r: r.update({categories[0].name: "Mars"})
            yield "code as string", lambda r: r.update({categories[0].name: "1"})
            yield "nearly a code", lambda r: _set(r, categories[0],
                                                  lambda f: min(f.categories) + 1e-10)
            yield "fractional code", lambda r: _set(r, categories[0],
                                                    lambda f: min(f.categories) + 0.5)

    def _set(r, f, value):
        r[f.name] = value(f)

    out = []
    kinds = list(mutations())
    for i in range(3 * len(kinds)):
        label, mutate = kinds[i % len(kinds)]
        n = rng.choice([1, 2, 30, 100])
        rows = [good_row(rng, schema) for _ in range(n)]
        for _ in range(rng.choice([1, 1, 2])):
            mutate(rows[rng.randrange(n)])
        obj = rows[0] if n == 1 and rng.random() < 0.5 else {"instances": rows}
        out.append(dumps(rng, obj))
    good = [good_row(rng, schema) for _ in range(30)]
    text = json.dumps({"instances": good})
    first = f'"{names[0]}": '
    out += [
        # JSON literals orjson refuses and pydantic reads (then refuses): NaN, Infinity, 1e400
        text.replace(first, first + "NaN, " + first.replace(names[0], "x_"), 1).encode(),
        text.replace(first + json.dumps(good[0][names[0]]), first + "NaN", 1).encode(),
        text.replace(first + json.dumps(good[0][names[0]]), first + "Infinity", 1).encode(),
        text.replace(first + json.dumps(good[0][names[0]]), first + "1e400", 1).encode(),
        # a key given twice: the last value is valid, the first is not / both valid
        text.replace(first, first + '"x", ' + first, 1).encode(),
        text.replace(first, first + "4, " + first, 1).encode(),
        json.dumps({"instances": good[:3]}).replace(first, first + "4, " + first, 1).encode(),
        # a boolean hidden behind an escaped key (the t/f byte count must not be fooled)
        json.dumps({"instances": [{**good[0], names[-1]: True}] + good[1:]})
            .replace(f'"{names[0]}"', '"' + "".join(f"\\u{ord(c):04x}" for c in names[0]) + '"')
            .encode(),
        # a string holding `":` (more key marks than keys)
        json.dumps({"instances": [{**good[0], "note": 'a":b'}]}).encode(),
        # the batch's own shape
        json.dumps({"instances": []}).encode(),
        json.dumps({"instances": good * 11}).encode(),                  # 330 > MAX_BATCH
        json.dumps({"instances": good, "extra": 1}).encode(),
        json.dumps({"instances": {"a": good[0]}}).encode(),
        json.dumps({"instances": "rows"}).encode(),
        json.dumps({"instances": None}).encode(),
        json.dumps({"instances": good[:5] + [[1, 2, 3]]}).encode(),
        json.dumps({"instances": good[:5] + ["row"]}).encode(),
        json.dumps({"instances": good[:5] + [7]}).encode(),
        json.dumps({"instances": good[:5] + [None]}).encode(),
        json.dumps({"instances": good[:5] + [{}]}).encode(),
        json.dumps([good[0]]).encode(),
        json.dumps(good[0])[:-1].encode() + b",}",                      # trailing comma
        b'{"instances": [' + json.dumps(good[0]).encode() + b"]",        # cut short
        b"null", b"42", b'"text"', b"{}",
        json.dumps({"instances": good}).encode() + b" x",
        json.dumps({"instances": good}).encode("utf-16"),
        b"\xef\xbb\xbf" + json.dumps({"instances": good}).encode(),      # a BOM
    ]
    return out


# -- the comparison -----------------------------------------------------------------------------
def _compare(fast, slow, bodies: list[bytes]) -> list[int]:
    statuses = []
    for body in bodies:
        a = fast.post("/predict", content=body, headers=HEADERS)
        b = slow.post("/predict", content=body, headers=HEADERS)
        assert (a.status_code, a.content) == (b.status_code, b.content), body[:300]
        assert a.headers.get("content-type") == b.headers.get("content-type")
        assert a.headers.get("x-model-version") == b.headers.get("x-model-version")
        statuses.append(a.status_code)
    return statuses


def test_good_batches_answer_the_same_through_the_fast_path(clients):
    fast, slow, schema, calls = clients
    rng = random.Random(16)
    bodies = good_bodies(rng, schema)
    before = calls["fast"]
    statuses = _compare(fast, slow, bodies)
    assert set(statuses) == {200}, statuses
    # every good body went the fast way, except the pretty-printed/escaped ones it may leave
    assert calls["fast"] - before >= 0.8 * len(bodies), (calls["fast"] - before, len(bodies))


def test_bad_bodies_are_refused_in_the_same_words(clients):
    fast, slow, schema, calls = clients
    rng = random.Random(61)
    bodies = bad_bodies(rng, schema)
    before = calls["fast"]
    statuses = _compare(fast, slow, bodies)
    assert statuses.count(200) < len(bodies) // 4        # mostly refusals (a few edge accepts)
    assert {400, 422} <= set(statuses)
    assert calls["fast"] == before                          # no bad body was let through it


def test_the_fast_path_is_on_by_default_and_only_for_batches():
    assert ApiSettings().fast_rows is True
    assert fast_rows.MIN_ROWS > 1


def test_a_duplicate_key_is_refused_when_a_nullable_field_is_left_out(clients):
    """Validation fills an omitted nullable field with null; that default must not hide a key
    given twice elsewhere in the row (it did: 200 for cylinders twice without horsepower)."""
    body = ('{"cylinders": "x", "cylinders": 4, "displacement": 97, "weight": 2130, '
            '"acceleration": 14.5, "model_year": 70, "origin": 3}')
    for client in clients[:2]:
        for text in (body, '{"instances": [%s]}' % body):
            r = client.post("/predict", content=text, headers=HEADERS)
            assert r.status_code == 422, r.text
            assert "cylinders: given twice" in r.json()["error"]
        ok = client.post("/predict", content=body.replace('"cylinders": "x", ', ''),
                         headers=HEADERS)
        assert ok.status_code == 200, ok.text
