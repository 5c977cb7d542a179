"""The `mpg-edge` runner on this machine: CSV and JSON lines, every kind of bad row, a tampered
model, `verify`, the inbox drain, and the import boundary (numpy + LiteRT only).

Each test runs the runner as a separate process, as a device would (`python -m
targets.edge.device`, which is what the installed `mpg-edge` script calls).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpgpack.core.bundle import open_bundle
from mpgpack.targets.edge.emulate import read_predictions_csv, write_golden_csv
from mpgpack.core.runtimes import LiteRTRunner

REPO = Path(__file__).resolve().parent.parent
FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
            "origin"]
GOOD = "4,97,88,2130,14.5,71,3"          # a Datsun 510-like car, inside every range


def mpg_edge(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def litert(bundle_dir: Path, X) -> np.ndarray:
    return LiteRTRunner(open_bundle(bundle_dir).artifact("tflite_float32")).predict(
        np.asarray(X, dtype=np.float32))


def error_lines(stderr: str) -> dict[int, str]:
    return {int(l.split(":")[0].split()[1]): l for l in stderr.splitlines() if l.startswith("line ")}


def test_csv_golden_set_matches_litert_and_reference(bundle_dir, tmp_path):
    bundle = open_bundle(bundle_dir)
    golden = bundle.golden()
    src = write_golden_csv(golden.X, FEATURES, tmp_path / "golden.csv")
    out = tmp_path / "out.csv"
    proc = mpg_edge("predict", "--input", str(src), "--output", str(out), "--bundle", str(bundle_dir))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines()[0] == ",".join(FEATURES) + ",mpg"
    pred = read_predictions_csv(out)
    assert len(pred) == len(golden.X)
    assert np.abs(pred - litert(bundle_dir, golden.X)).max() <= 1e-6
    assert np.abs(pred.astype(np.float64) - golden.expected).max() <= golden.tolerance
    assert f"predicted {len(golden.X)} of {len(golden.X)} rows" in proc.stderr
    assert "rows/s" in proc.stderr


def test_csv_columns_in_any_order_with_extra_columns_and_missing_horsepower(bundle_dir):
    rows = [[8, 307, 130, 3504, 12, 70, 1], [4, 97, None, 2130, 14.5, 71, 3]]
    order = ["origin", "weight", "car", "cylinders", "displacement", "acceleration",
             "model_year", "horsepower"]
    lines = [",".join(order)]
    for name, row in zip(["chevelle", "datsun, 510"], rows):
        v = dict(zip(FEATURES, row), car=f'"{name}"')
        lines.append(",".join("?" if v[c] is None else str(v[c]) for c in order))
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir),
                    stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == ",".join(order) + ",mpg"
    assert out[2].startswith('3,2130,"datsun, 510",4,')          # the input row, echoed
    pred = np.array([l.rsplit(",", 1)[1] for l in out[1:]]).astype(np.float32)
    X = np.array([[np.nan if v is None else v for v in r] for r in rows])
    assert np.array_equal(pred, litert(bundle_dir, X))
    assert "columns car are not features" in proc.stderr


def test_jsonl_on_stdin_and_stdout(bundle_dir):
    cars = [dict(zip(FEATURES, [4, 97, None, 2130, 14.5, 71, 3])),
            [8, 350, 165, 3693, 11.5, 70, 1],
            {**dict(zip(FEATURES, [6, 250, 100, 3329, 15.5, 71, 1])), "name": "chevy nova"}]
    stdin = "\n".join(json.dumps(c) for c in cars) + "\n\n"      # a trailing blank line is no row
    proc = mpg_edge("predict", "--bundle", str(bundle_dir), stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3]
    X = [[np.nan if v is None else v for v in (c.values() if isinstance(c, dict) else c)][:7]
         for c in cars]
    assert np.array_equal(np.array([o["mpg"] for o in out], dtype=np.float32), litert(bundle_dir, X))
    assert "keys name are not features; ignored" in proc.stderr


def test_every_kind_of_bad_csv_row_is_reported_and_skipped(bundle_dir):
    header = ",".join(FEATURES) + ",name"
    rows = {
        2: GOOD + ",ok-1",
        3: GOOD,                                           # wrong column count (no name)
        4: "4,97,88,2130,14.5,71,3,x,extra",               # wrong column count (one too many)
        5: "4,97,fast,2130,14.5,71,3,x",                   # not a number
        6: "4,97,88,9000,14.5,71,3,x",                     # outside the hard limits
        7: "4,97,88,2130,14.5,71,4,x",                     # unknown origin
        8: "4,,88,2130,14.5,71,3,x",                       # missing required value
        9: "4.5,97,88,2130,14.5,71,3,x",                   # integer feature with a fraction
        10: "4,97,nan,2130,14.5,71,3,x",                   # nan is not a value, '?' is
        11: "4,97,?,2130,14.5,71,3,ok-2",                  # missing horsepower: fine
        12: "4,97,,2130,14.5,71,3,ok-3",                   # missing horsepower: fine
        13: "1,5,10,500,1,50,0,x",                         # everything wrong at once
        14: GOOD + ",ok-4",
        # the strict number grammar: float() would take these, the runner does not
        15: "4,97,88,2_130,14.5,71,3,x",                   # digit separator
        16: "4,97,88,2130,14.5,71,\u0663,x",              # Arabic-Indic 3
        17: "\uff14,97,88,2130,14.5,71,3,x",               # full-width 4
        18: "4,97,88\x00,2130,14.5,71,3,x",                # NUL byte
        19: "4,97,88,2130,14.5,71,3.0000000001,x",         # near a category: not rounded
    }
    stdin = header + "\n" + "\n".join(rows[n] for n in sorted(rows)) + "\n"
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=stdin)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    names = [l.split(",")[-2] for l in proc.stdout.splitlines()[1:]]
    assert names == ["ok-1", "ok-2", "ok-3", "ok-4"]
    errs = error_lines(proc.stderr)
    assert sorted(errs) == [3, 4, 5, 6, 7, 8, 9, 10, 13, 15, 16, 17, 18, 19]
    assert "expected 8 values (as in the header), found 7" in errs[3]
    assert "found 9" in errs[4]
    assert "horsepower: 'fast' is not a number" in errs[5]
    assert "weight: 9000 is outside the hard limits 1000–7000 lb" in errs[6]
    assert "origin: unknown value 4 (allowed: 1 USA, 2 Europe, 3 Japan)" in errs[7]
    assert "displacement: missing (only horsepower may be missing)" in errs[8]
    assert "cylinders: must be a whole number, got 4.5" in errs[9]
    assert "horsepower: 'nan' is not a number" in errs[10]
    for name in ["cylinders", "displacement", "horsepower", "weight", "acceleration",
                 "model_year", "origin"]:
        assert f"{name}: " in errs[13]
    assert "weight: '2_130' is not a number (allowed: a number within 1000–7000 lb)" in errs[15]
    assert "origin: '\u0663' is neither a label nor a code (allowed: one of 1 USA, 2 Europe, 3 Japan)" in errs[16]
    assert "cylinders: '\uff14' is not a number" in errs[17]
    assert "horsepower: '88\\x00' is not a number" in errs[18]
    assert "origin: unknown value 3.0000000001 (allowed: 1 USA, 2 Europe, 3 Japan)" in errs[19]
    assert "predicted 4 of 18 rows" in proc.stderr and "14 bad row(s) skipped" in proc.stderr
    # stderr holds the runner's own reports only (no native library log lines among them)
    assert all(l.startswith(("line ", "note: ", "warning: ", "mpg-edge: "))
               for l in proc.stderr.splitlines()), proc.stderr


def test_every_kind_of_bad_json_line_is_reported_and_skipped(bundle_dir):
    good = dict(zip(FEATURES, [4, 97, 88, 2130, 14.5, 71, 3]))
    lines = [json.dumps(good),                                          # 1 ok
             '{"cylinders": 4,',                                        # 2 not JSON
             json.dumps([4, 97, 88]),                                   # 3 short array
             json.dumps({**good, "weight": "heavy"}),                   # 4 string value
             json.dumps({**good, "cylinders": True}),                   # 5 bool
             json.dumps({**good, "horsepower": float("nan")}),          # 6 NaN (not JSON)
             json.dumps({k: v for k, v in good.items() if k != "weight"}),  # 7 missing key
             json.dumps({**good, "acceleration": 99}),                  # 8 outside limits
             json.dumps({**good, "origin": 7}),                         # 9 unknown origin
             json.dumps("a car"),                                       # 10 not an object
             json.dumps({**good, "horsepower": None})]                  # 11 ok (missing hp)
    proc = mpg_edge("predict", "--bundle", str(bundle_dir), stdin="\n".join(lines) + "\n")
    assert proc.returncode == 3, proc.stderr
    assert [json.loads(l)["line"] for l in proc.stdout.splitlines()] == [1, 11]
    errs = error_lines(proc.stderr)
    assert sorted(errs) == list(range(2, 11))
    assert "not valid JSON" in errs[2]
    assert "expected 7 values in feature order" in errs[3] and "found 3" in errs[3]
    assert 'weight: "heavy" is not a number (allowed: a number within 1000–7000 lb)' in errs[4]
    assert "cylinders: true is not a number (allowed: a whole number within 2–16)" in errs[5]
    assert "horsepower: NaN is not a finite number (allowed: a number within 30–400 hp, " \
        "or null)" in errs[6]
    assert "weight: missing (only horsepower may be missing)" in errs[7]
    assert "acceleration: 99 is outside the hard limits 4–35 s" in errs[8]
    assert "origin: unknown value 7" in errs[9]
    assert "expected a JSON object" in errs[10]


def test_line_numbers_stay_right_across_chunks(bundle_dir, tmp_path):
    """60,000 rows span several read blocks; bad rows in each block keep their true line."""
    rng = np.random.default_rng(1)
    n = 60_000
    lines = [",".join(FEATURES)] + [GOOD] * n
    bad_at = sorted(int(i) for i in rng.choice(np.arange(2, n + 2), size=7, replace=False))
    for line_no in bad_at:
        lines[line_no - 1] = "4,97,88,2130,14.5,71,9"          # unknown origin
    src = tmp_path / "cars.csv"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    proc = mpg_edge("predict", "--input", str(src), "--output", str(out), "--bundle", str(bundle_dir))
    assert proc.returncode == 3
    assert sorted(error_lines(proc.stderr)) == bad_at
    assert len(out.read_text().splitlines()) == 1 + n - len(bad_at)
    assert f"predicted {n - len(bad_at)} of {n} rows" in proc.stderr


@pytest.mark.parametrize("text, expected", [
    ("cylinders,displacement,weight\n4,97,2130\n", "missing: horsepower, acceleration, model_year, origin"),
    ("", "the CSV input is empty"),
])
def test_unusable_csv_is_one_clear_line(bundle_dir, text, expected):
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_input_file_is_one_clear_line(bundle_dir, tmp_path):
    proc = mpg_edge("predict", "--input", str(tmp_path / "nope.csv"), "--bundle", str(bundle_dir))
    assert proc.returncode == 1 and "cannot read --input" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_prints_the_error_on_the_golden_vectors(bundle_dir):
    proc = mpg_edge("verify", "--bundle", str(bundle_dir))
    assert proc.returncode == 0, proc.stderr
    rows = open_bundle(bundle_dir).manifest["artifacts"]["golden"]["rows"]
    assert f"golden vectors: {rows} rows, max abs error" in proc.stdout
    err = float(proc.stdout.split("max abs error ")[1].split()[0])
    assert err <= 1e-4
    assert "verify: OK" in proc.stdout


def test_tampered_model_is_refused_in_one_line(bundle_copy):
    model = bundle_copy / "model.tflite"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF                                  # one flipped byte in the weights
    model.write_bytes(bytes(data))
    for args, stdin in [(["predict"], json.dumps(dict(zip(FEATURES, [4, 97, 88, 2130, 14.5, 71, 3])))),
                        (["verify"], None)]:
        proc = mpg_edge(*args, "--bundle", str(bundle_copy), stdin=stdin)
        assert proc.returncode == 1
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "model.tflite does not match its sha256" in lines[0], proc.stderr


def test_drain_empties_the_inbox_into_the_outbox(bundle_dir, tmp_path):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    (inbox / "fleet.csv").write_text(",".join(FEATURES) + "\n" + GOOD + "\n" + GOOD + "\n")
    (inbox / "mixed.jsonl").write_text(json.dumps([4, 97, 88, 2130, 14.5, 71, 3]) + "\n[1]\n")
    (inbox / "wrong.csv").write_text("a,b\n1,2\n")
    proc = mpg_edge("drain", str(inbox), str(outbox), "--bundle", str(bundle_dir))
    assert proc.returncode == 3, proc.stderr
    assert list(inbox.iterdir()) == []
    assert sorted(p.name for p in outbox.iterdir()) == [
        "fleet.csv", "fleet.predictions.csv", "mixed.errors.txt", "mixed.jsonl",
        "mixed.predictions.jsonl", "wrong.csv", "wrong.errors.txt"]
    assert len((outbox / "fleet.predictions.csv").read_text().splitlines()) == 3
    assert "line 2: expected 7 values" in (outbox / "mixed.errors.txt").read_text()
    assert "error: CSV header must name every feature" in (outbox / "wrong.errors.txt").read_text()
    assert "wrong.csv: refused" in proc.stdout


def test_runner_imports_only_numpy_and_litert(bundle_dir, tmp_path):
    """What a predict run loads: nothing of the build stack, no other runtime."""
    src = tmp_path / "one.csv"
    src.write_text(",".join(FEATURES) + "\n" + GOOD + "\n")
    code = ("import sys\nfrom mpgpack.targets.edge.device import main\n"
            f"rc = main(['predict', '--input', {str(src)!r}, '--bundle', {str(bundle_dir)!r}, '--quiet'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    loaded = set(eval(proc.stdout.splitlines()[-1]))    # a list literal we printed
    assert {"numpy", "ai_edge_litert"} <= loaded
    forbidden = {"tensorflow", "onnxruntime", "sklearn", "pandas", "scipy", "train", "export",
                 "skl2onnx", "onnx", "keras", "jax", "fastapi"}
    assert not loaded & forbidden


def test_spreadsheet_export_with_bom_and_crlf(bundle_dir, tmp_path):
    src = tmp_path / "excel.csv"
    src.write_bytes(b"\xef\xbb\xbf" + (",".join(FEATURES) + "\r\n" + GOOD + "\r\n"
                                       + "4,97,?,2130,14.5,71,3\r\n").encode())
    proc = mpg_edge("predict", "--input", str(src), "--bundle", str(bundle_dir))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == ",".join(FEATURES) + ",mpg" and len(out) == 3
    X = [[4, 97, 88, 2130, 14.5, 71, 3], [4, 97, np.nan, 2130, 14.5, 71, 3]]
    pred = np.array([l.rsplit(",", 1)[1] for l in out[1:]]).astype(np.float32)
    assert np.array_equal(pred, litert(bundle_dir, X))


# -- hostile and careless input (issue 15): records, not lines; every failure a row report ---
HEADER = ",".join(FEATURES) + ",name"
CHEVY, DATSUN = [8, 307, 130, 3504, 12, 70, 1], [4, 97, 88, 2130, 14.5, 70, 3]


def csv_rows(stdout: str) -> list[list[str]]:
    import csv
    import io
    return list(csv.reader(io.StringIO(stdout)))[1:]


def test_a_quoted_field_over_line_ends_keeps_every_prediction_beside_its_car(bundle_dir):
    """The repro: a multi-line name shifted every later row (chevy got the datsun's mpg)."""
    text = (HEADER + '\n4,97,88,2130,14.5,70,3,"multi\nline"\n8,307,130,3504,12,70,1,chevy\n'
            '4,97,88,2130,14.5,70,3,datsun\n4,97,88,2130,14.5,70,9,typo\n')
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    assert proc.returncode == 3, proc.stderr
    rows = csv_rows(proc.stdout)
    assert [r[7] for r in rows] == ["multi\nline", "chevy", "datsun"]
    expected = litert(bundle_dir, [DATSUN, CHEVY, DATSUN])
    assert np.array_equal(np.array([r[8] for r in rows]).astype(np.float32), expected)
    assert sorted(error_lines(proc.stderr)) == [6]          # the true line, after the 2-line record
    assert "predicted 3 of 4 rows" in proc.stderr


@pytest.mark.parametrize("tail, bad_line", [
    ('8,307,130,3504,12,70,1,"chevy\n', 3),                  # the last record: never closed
    ('8,307,130,3504,12,70,1,"chevy', 3),                    # ... without a final line end
])
def test_an_unterminated_quote_is_reported_not_swallowed(bundle_dir, tail, bad_line):
    text = HEADER + "\n4,97,88,2130,14.5,70,3,ok\n" + tail
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    assert proc.returncode == 3, proc.stderr
    errs = error_lines(proc.stderr)
    assert sorted(errs) == [bad_line] and "never closed (unterminated '\"')" in errs[bad_line]
    assert [r[7] for r in csv_rows(proc.stdout)] == ["ok"]


def test_a_quote_left_open_mid_file_costs_its_own_record_only(bundle_dir):
    """The open quote runs on until a later row's quote, where CSV breaks: that record is
    reported at its first line and reading resumes on the next line."""
    text = (HEADER + '\n8,307,130,3504,12,70,1,"chevy\n4,97,88,2130,14.5,70,3,datsun\n'
            '4,97,88,2130,14.5,70,3,"toyota"\n4,97,88,2130,14.5,70,3,ok\n')
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    assert proc.returncode == 3
    errs = error_lines(proc.stderr)
    assert sorted(errs) == [2] and "not valid CSV" in errs[2]
    assert [r[7] for r in csv_rows(proc.stdout)] == ["datsun", "toyota", "ok"]


def test_a_wrong_count_on_a_multi_line_record_names_its_span(bundle_dir):
    text = HEADER + '\n4,97,88,2130,14.5,70,3,"multi\nline",extra\n' + GOOD + ",ok\n"
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    errs = error_lines(proc.stderr)
    assert proc.returncode == 3 and sorted(errs) == [2]
    assert "found 9 (this record runs to line 3: a quoted field spans line ends" in errs[2]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_any_line_ending_and_a_bom_with_multi_line_records(bundle_dir, tmp_path, eol):
    src = tmp_path / "cars.csv"
    body = [HEADER, '4,97,88,2130,14.5,70,3,"a' + eol + 'b"', "8,307,130,3504,12,70,1,chevy",
            "", "4,97,88,2130,14.5,70,9,typo"]
    src.write_bytes(b"\xef\xbb\xbf" + eol.join(body).encode() + eol.encode())
    proc = mpg_edge("predict", "--input", str(src), "--bundle", str(bundle_dir))
    assert proc.returncode == 3, proc.stderr
    rows = csv_rows(proc.stdout)
    assert [r[7] for r in rows] == ["a\nb", "chevy"]
    assert np.array_equal(np.array([r[8] for r in rows]).astype(np.float32),
                          litert(bundle_dir, [DATSUN, CHEVY]))
    assert sorted(error_lines(proc.stderr)) == [6]


def test_every_failure_is_a_row_report_and_the_run_goes_on(bundle_dir, tmp_path):
    """Each of these was a traceback (exit 1, the chunk lost); now one line each, exit 3."""
    src = tmp_path / "hostile.csv"
    src.write_bytes("\n".join([
        HEADER,
        GOOD + ",ok-1",
        "4,97," + "9" * 140_000 + ",2130,14.5,71,3,x",      # 3: over csv's 128 KiB field limit
        GOOD + ',"' + "y" * 70_000 + '"',                  # 4: a quoted cell over 64 KiB
        GOOD + ",caf\xe9".replace("\xe9", "") + "\udcff",  # 5: not UTF-8 (byte 0xff)
        GOOD + ",ok-2",
    ]).encode("utf-8", errors="surrogateescape") + b"\n")
    proc = mpg_edge("predict", "--input", str(src), "--bundle", str(bundle_dir))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    errs = error_lines(proc.stderr)
    assert sorted(errs) == [3, 4, 5]
    assert "longer than 65536 characters" in errs[3] and "longer than 65536" in errs[4]
    assert "not UTF-8 text (byte 0xff at column 27)" in errs[5]
    assert [r[7] for r in csv_rows(proc.stdout)] == ["ok-1", "ok-2"]


def test_hostile_json_lines_are_row_reports(bundle_dir):
    good = json.dumps([4, 97, 88, 2130, 14.5, 71, 3])
    lines = [good,
             "[4, 97, 88, 2130, 14.5, 71, -" + "9" * 400 + "]",       # 2: OverflowError before
             "[" * 100_000 + "]" * 100_000,                            # 3: RecursionError before
             "[" * 30_000 + "]" * 30_000,                              # 4: deep, under 64 KiB
             '{"weight": ' + "1" * 5000 + "}",                         # 5: over int's digit limit
             good]
    proc = mpg_edge("predict", "--bundle", str(bundle_dir), stdin="\n".join(lines) + "\n")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert [json.loads(l)["line"] for l in proc.stdout.splitlines()] == [1, 6]
    errs = error_lines(proc.stderr)
    assert sorted(errs) == [2, 3, 4, 5]
    assert "origin: -Infinity is not a finite number" in errs[2]
    assert "longer than 65536 characters" in errs[3]
    assert "nested too deep" in errs[4]
    assert "a number with over 4300 digits" in errs[5]


def test_cr_only_jsonl_and_a_pipe_fed_a_byte_at_a_time(bundle_dir):
    """CR-only line ends in JSON lines; and the reader's chunks are records whatever the read
    size (the unit test of the reader, in-process: every split of a CRLF, BOM and quote)."""
    proc = mpg_edge("predict", "--bundle", str(bundle_dir),
                    stdin="\r".join(json.dumps(c) for c in [DATSUN, CHEVY]) + "\r")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(l)["line"] for l in proc.stdout.splitlines()] == [1, 2]


def test_records_are_the_same_whatever_the_read_size(tmp_path):
    from mpgpack.targets.edge.records import CsvRecords, LineReader
    data = (b"\xef\xbb\xbfa,b\r\n1,\"x\r\ny\"\r\n\r\n2,\"q \"\"z\"\"\"\r3,plain\n4,\"open")
    src = tmp_path / "r.csv"
    src.write_bytes(data)

    def records(block: int):
        import os
        fd = os.open(src, os.O_RDONLY)
        try:
            splitter, got = CsvRecords(), []
            for part in [*map(splitter.feed, LineReader(fd, block)), splitter.finish()]:
                got += [(n, r) for n, r in zip(part.nums, part.raw) if r] + part.errors
            return sorted(got, key=lambda x: x[0])
        finally:
            os.close(fd)

    expected = records(1 << 20)
    assert [n for n, _ in expected] == [1, 2, 5, 6, 7]
    assert expected[1] == (2, '1,"x\ny"') and "never closed" in expected[4][1]
    for block in range(1, len(data) + 1):
        assert records(block) == expected, block


@pytest.mark.parametrize("others", ["", "4,97,fast,2130,14.5,71,3\n"])
def test_a_signed_missing_token_is_not_a_number_on_every_path(bundle_dir, others):
    """'-?' was missing on the fast path ("-nan") and "not a number" when another row was bad."""
    text = (",".join(FEATURES) + "\n" + GOOD + "\n4,97,-?,2130,14.5,71,3\n"
            "4,97,+?,2130,14.5,71,3\n" + others)
    proc = mpg_edge("predict", "--format", "csv", "--bundle", str(bundle_dir), stdin=text)
    assert proc.returncode == 3
    errs = error_lines(proc.stderr)
    assert "horsepower: '-?' is not a number" in errs[3]
    assert "horsepower: '+?' is not a number" in errs[4]


def test_one_long_garbage_cell_and_a_20_mb_line_keep_memory_bounded(bundle_dir, tmp_path):
    """20,000 good rows and one 2,001-character cell: was a 2.25 GB numpy text array."""
    lines = [",".join(FEATURES)] + [GOOD] * 20_000
    lines[501] = "4,97," + "1." * 1000 + "1,2130,14.5,71,3"
    lines[9000] = "4,97,88,2130,14.5,71," + "9" * 20_000_000          # one 20 MB line too
    src = tmp_path / "cars.csv"
    src.write_text("\n".join(lines) + "\n")
    code = ("import sys\nfrom mpgpack.targets.edge.device import main\n"
            f"rc = main(['predict', '--input', {str(src)!r}, "
            f"'--output', {str(tmp_path / 'o.csv')!r}, '--bundle', {str(bundle_dir)!r}])\n"
            # VmHWM, not ru_maxrss: ru_maxrss keeps the parent's peak across fork + exec, so under
            # a pytest process holding TensorFlow it reports that process's size, not this one's.
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print(hwm.split()[1])\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 3, proc.stderr
    assert sorted(error_lines(proc.stderr)) == [502, 9001]
    peak_mb = int(proc.stdout.split()[-1]) / 1024       # VmHWM is in kB
    assert peak_mb < 200, peak_mb
