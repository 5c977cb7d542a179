"""Property-based fuzz of the edge runner's reader (hypothesis): generated CSV files mixing
good rows, bad values, quoted and multi-line fields, LF / CRLF / CR-only line endings, a BOM,
blank lines, non-UTF-8 bytes, cells over the record limit and the csv field limit, and an
unterminated quote at the end.

The generator knows what each record is, so the oracle is exact. Invariants:
- every record is predicted or reported by the line it starts on, never both, none lost;
- each predicted row is echoed beside its own prediction (its feature cells are the ones
  generated for that record), and that prediction equals ONNX Runtime's within 1e-4;
- exit code non-zero iff a bad record existed; no exception escapes (no traceback);
- memory stays bounded (tracemalloc peak well under what a per-file blow-up would take).

`test_reader_invariants` runs the runner's real reading and predicting code in-process
(`device.predict_stream` on a file descriptor, with LiteRT) — what `mpg-edge predict` runs
after it has parsed its arguments — with read blocks from 1 byte to 1 MiB, so records cross
chunk boundaries everywhere; in-process it runs ~50x more files in the suite's time budget
than a process per file. `test_runner_process_invariants` runs a few generated files through
the real `python -m mpgpack.targets.edge.device predict` process for the exit code and stderr.
Both derandomised: CI sees the same files every run. MPG_EDGE_FUZZ_EXAMPLES=N runs longer.
"""
from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import tempfile
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from mpgpack.core.bundle import open_bundle  # noqa: E402
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner  # noqa: E402
from mpgpack.core.schema import Schema  # noqa: E402
from mpgpack.targets.edge import device  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
            "origin"]
EXAMPLES = int(os.environ.get("MPG_EDGE_FUZZ_EXAMPLES", "300"))   # ~35 s
# Values every target refuses, by column (any column: text no number grammar accepts).
BAD_ANYWHERE = ["abc", "-?", "+?", "1_000", "\u0663", "\uff14", "nan", "inf", "1e999", "4\x00",
                "--1", "1.2.3", "0x10", "\u00bd", "1." * 1000 + "1"]
BAD_BY_COLUMN = {0: ["17", "4.5", "1"], 1: ["900"], 2: ["401", "29"], 3: ["9000"],
                 4: ["99"], 5: ["100", "70.5"], 6: ["4", "0", "3.0000000001"]}
REQUIRED = [0, 1, 3, 4, 5, 6]                 # every feature but horsepower may not be missing


@dataclass
class Generated:
    data: bytes
    good: list[tuple[int, list[str]]] = field(default_factory=list)   # (line, feature cells)
    bad: list[int] = field(default_factory=list)                      # lines of bad records


# -- the generator --------------------------------------------------------------------------
def _good_cells(draw) -> list[str]:
    hp = draw(st.one_of(st.integers(46, 230).map(str), st.sampled_from(["?", "", " ? "])))
    return [str(draw(st.integers(3, 8))), f"{draw(st.integers(680, 4550)) / 10:g}", hp,
            str(draw(st.integers(1649, 5140))), f"{draw(st.integers(80, 248)) / 10:g}",
            str(draw(st.integers(70, 82))), str(draw(st.integers(1, 3)))]


def _name(draw, eol: str) -> str:
    """A name cell; a quoted one may hold commas, quotes and line ends."""
    kind = draw(st.sampled_from(["plain", "comma", "lines", "escaped", "empty"]))
    if kind == "lines":
        return '"' + eol.join(["multi"] * draw(st.integers(2, 4))) + '"'
    return {"plain": f"car{draw(st.integers(0, 999))}", "comma": '"datsun, 510"',
            "escaped": '"the ""best"" car"', "empty": ""}[kind]


def _bad_record(draw, cells: list[str], tail: list[str]) -> tuple[str, bytes]:
    """A record text that must be refused, and bytes to append to it (or b"")."""
    kind = draw(st.sampled_from(["value", "value", "missing", "count", "huge", "utf8"]))
    if kind == "value":
        col = draw(st.integers(0, 6))
        cells[col] = draw(st.sampled_from(BAD_ANYWHERE + BAD_BY_COLUMN[col]))
    elif kind == "missing":
        cells[draw(st.sampled_from(REQUIRED))] = draw(st.sampled_from(["", "?"]))
    elif kind == "count":
        return ",".join(cells[:draw(st.integers(1, 6))] + tail
                        if draw(st.booleans()) else cells + tail + ["extra"]), b""
    elif kind == "huge":                  # over the record limit; the second over csv's too
        size = draw(st.sampled_from([70_000, 140_000]))
        cells[draw(st.integers(0, 6))] = "9" * size
        tail = ["huge"] if tail else []   # one line: reading resumes on the line after it
    else:                                 # bytes that are not UTF-8, in an unquoted cell
        return ",".join(cells + (["bad"] if tail else [])), b"\xff\xfe"
    return ",".join(cells + tail), b""


@st.composite
def csv_files(draw) -> Generated:
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    named = draw(st.booleans())           # without a name column: the all-number fast path
    out = Generated(b"")
    parts = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    parts.append((",".join(FEATURES + ["name"] * named) + eol).encode())
    line = 2
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["good"] * 5 + ["bad", "bad", "blank"]))
        if kind == "blank":
            parts.append(eol.encode())
            line += 1
            continue
        cells, tail = _good_cells(draw), [_name(draw, eol)] if named else []
        if kind == "good":
            if draw(st.integers(0, 9)) == 0:
                cells[0] = f'"{cells[0]}"'     # a quoted number is still a number
            text, splice = ",".join(cells + tail), b""
            out.good.append((line, [c.strip('"') for c in cells]))
        else:
            text, splice = _bad_record(draw, cells, tail)
            out.bad.append(line)
        parts.append(text.encode() + splice + eol.encode())
        line += 1 + text.count(eol)             # a quoted name may span lines
    if draw(st.integers(0, 4)) == 0:           # a quote never closed, on the last record
        parts.append((",".join(_good_cells(draw) + ['"unterminated']) +
                      (eol if draw(st.booleans()) else "")).encode())
        out.bad.append(line)
    out.data = b"".join(parts)
    return out


# -- the oracle -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(bundle_dir):
    bundle = open_bundle(bundle_dir)
    return (Schema.from_manifest(bundle.manifest), LiteRTRunner(bundle.artifact("tflite_float32")),
            OnnxRunner(bundle.artifact("onnx")))


def _as_number(cell: str) -> float:
    return math.nan if cell.strip() in ("", "?") else float(cell)


def check_outcome(gen: Generated, out_text: str, err_text: str, onnx) -> None:
    assert "Traceback" not in err_text
    reported = [int(l.split(":")[0].split()[1]) for l in err_text.splitlines()
                if l.startswith("line ")]
    assert len(reported) == len(set(reported)), "a line reported twice"
    assert sorted(reported) == sorted(gen.bad), (sorted(reported), sorted(gen.bad), err_text)
    rows = list(csv.reader(io.StringIO(out_text)))
    assert rows[0][:7] == FEATURES and rows[0][-1] == "mpg"
    predicted = rows[1:]
    assert len(predicted) == len(gen.good), "a good record lost (or one invented)"
    for row, (_, cells) in zip(predicted, gen.good):
        assert row[:7] == cells, "a prediction beside the wrong car"
    if gen.good:
        X = np.array([[_as_number(c) for c in cells] for _, cells in gen.good], dtype=np.float32)
        got = np.array([float(r[-1]) for r in predicted])
        assert np.abs(got - onnx.predict(X).astype(np.float64)).max() <= 1e-4


# -- the properties -------------------------------------------------------------------------
# No shrinking: files with 140 kB cells shrink for minutes; a failure shows the whole file.
FUZZ = dict(deadline=None, derandomize=True, database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])


@settings(max_examples=EXAMPLES, **FUZZ)
@given(gen=csv_files(), block=st.sampled_from([1, 2, 7, 64, 4096, 1 << 20]))
def test_reader_invariants(models, gen, block):
    schema, litert, onnx = models
    out, err = io.StringIO(), io.StringIO()
    block = max(block, len(gen.data) // 2000)  # not a 140 kB cell 1 byte at a time
    with tempfile.TemporaryFile() as f:
        f.write(gen.data)
        f.seek(0)
        tracemalloc.start()
        try:
            stats = device.predict_stream(litert, schema, f.fileno(), out, err, "csv", block_bytes=block)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    check_outcome(gen, out.getvalue(), err.getvalue(), onnx)
    assert (stats.bad > 0) == bool(gen.bad) and stats.good == len(gen.good)
    # a record is held at most 64 KiB (an over-long line's first 256 KiB while it is dropped)
    assert peak <= 8_000_000 + 8 * len(gen.data), peak


@settings(max_examples=6, **FUZZ)
@given(gen=csv_files())
def test_runner_process_invariants(models, bundle_dir, gen):
    _, _, onnx = models
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "cars.csv", Path(tmp) / "out.csv"
        src.write_bytes(gen.data)
        proc = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "predict",
                               "--input", str(src), "--output", str(dst),
                               "--bundle", str(bundle_dir)],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == (3 if gen.bad else 0), proc.stderr
        check_outcome(gen, dst.read_text(encoding="utf-8"), proc.stderr, onnx)
