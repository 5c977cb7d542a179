"""The loader: the shipped file parses as documented; malformed files fail naming the line."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mpgpack.core.errors import UserError
from mpgpack.train.data import load_dataset
from mpgpack.train.schema import FEATURE_NAMES
from tests.helpers import REPO

DATA = REPO / "mpgpack" / "data" / "auto-mpg.data"
GOOD_LINE = '18.0   8   307.0      130.0      3504.      12.0   70  1\t"chevrolet chevelle malibu"'


def write(tmp_path, lines, name="cars.data"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_shipped_data_parses_with_missing_horsepower():
    ds = load_dataset(DATA)
    assert len(ds) == 398 and ds.X.shape == (398, 7)
    hp = FEATURE_NAMES.index("horsepower")
    assert int(np.isnan(ds.X[:, hp]).sum()) == 6
    assert not np.isnan(np.delete(ds.X, hp, axis=1)).any()
    assert ds.sha256 == "48b830e11feee5572525f8f1691ddb9d38d3d7b7063edcd8fca672c2a5e17d8d"
    assert ds.names[0] == "chevrolet chevelle malibu"
    assert set(np.unique(ds.X[:, FEATURE_NAMES.index("origin")])) == {1.0, 2.0, 3.0}


@pytest.mark.parametrize("bad_line, message", [
    ('18.0 8 307.0 130.0 3504. 12.0 70\t"short row"', "expected 9 fields"),
    ('18.0 8 307.0 130.0 3504. 12.0 70 1 1\t"long row"', "expected 9 fields"),
    ('18.0 8 307.0 fast 3504. 12.0 70 1\t"word"',
     "horsepower: 'fast' is not a number (allowed: a number within 30–400 hp, or missing)"),
    ('? 8 307.0 130.0 3504. 12.0 70 1\t"no mpg"', "mpg: missing (only horsepower may be missing)"),
    ('18.0 8 307.0 130.0 ? 12.0 70 1\t"no weight"', "weight: missing (only horsepower may be missing)"),
    ('18.0 8 307.0 130.0 inf 12.0 70 1\t"infinite"', "weight: 'inf' is not a number"),
    ('18.0 8 307.0 130.0 1e999 12.0 70 1\t"overflow"', "weight: '1e999' is not a finite number"),
    # the strict grammar: plain ASCII numbers only, though Python's float() takes these
    ('18.0 8 307.0 130.0 3504. 12.0 70 \u0663\t"arabic-indic 3"', "origin: '\u0663' is neither a label nor a code"),
    ('18.0 8 307.0 130.0 3504. 12.0 70 \uff14\t"fullwidth 4"', "origin: '\uff14' is neither a label nor a code"),
    ('18.0 8 307.0 130.0 3_504 12.0 70 1\t"underscore"', "weight: '3_504' is not a number"),
    ('18.0 8 307.0 130.0 3504.\x00 12.0 70 1\t"nul"', "weight: '3504.\\x00' is not a number"),
    ('18.0 8 307.0 130.0 nan 12.0 70 1\t"nan"', "weight: 'nan' is not a number"),
    ('18.0 8 307.0 130.0 3504. 12.0 70 1\t"unclosed', "cannot split the line"),
])
def test_malformed_line_is_named(tmp_path, bad_line, message):
    path = write(tmp_path, [GOOD_LINE] * 3 + [bad_line] + [GOOD_LINE] * 60)
    with pytest.raises(UserError) as err:
        load_dataset(path)
    assert f"{path}:4:" in str(err.value)
    assert message in str(err.value)


def test_rows_beyond_hard_limits_are_left_out_and_noted(tmp_path):
    absurd = '18.0 8 307.0 130.0 35040. 12.0 70 1\t"ten tonne car"'
    ds = load_dataset(write(tmp_path, [GOOD_LINE] * 60 + [absurd]))
    assert len(ds) == 60
    assert f"{tmp_path / 'cars.data'}:61: weight: 35040 is outside the hard limits 1000–7000 lb; " \
        "row left out" in ds.notes
    assert any("same values as" in n for n in ds.notes)  # the 60 identical rows are noted


def test_unknown_origin_is_left_out(tmp_path):
    ds = load_dataset(write(tmp_path, [GOOD_LINE] * 60 + ['18.0 8 307.0 130.0 3504. 12.0 70 4\t"x"']))
    assert len(ds) == 60
    assert any(":61: origin: unknown value 4 (allowed: 1 USA, 2 Europe, 3 Japan)" in n for n in ds.notes)


def test_near_category_value_is_not_rounded_into_one(tmp_path):
    lines = [GOOD_LINE] * 60 + ['18.0 8 307.0 130.0 3504. 12.0 70 3.0000000001\t"x"',
                                '18.0 4.5 307.0 130.0 3504. 12.0 70 1\t"y"']
    ds = load_dataset(write(tmp_path, lines))
    assert len(ds) == 60
    assert any(":61: origin: unknown value 3.0000000001 (allowed: 1 USA" in n for n in ds.notes)
    assert any(":62: cylinders: must be a whole number, got 4.5; row left out" in n for n in ds.notes)


def test_csv_with_header_any_column_order(tmp_path):
    header = "car_name,origin,mpg," + ",".join(n for n in FEATURE_NAMES if n != "origin")
    rows = [f"car {i},2,{20 + i % 7},4,{100 + i},,{2000 + 10 * i},15.5,78" for i in range(60)]
    ds = load_dataset(write(tmp_path, [header, *rows], "new.csv"))
    assert len(ds) == 60
    assert math.isnan(ds.X[0, FEATURE_NAMES.index("horsepower")])
    assert ds.X[5, FEATURE_NAMES.index("weight")] == 2050 and ds.y[5] == 25
    assert ds.X[0, FEATURE_NAMES.index("origin")] == 2


def test_csv_missing_column_is_named(tmp_path):
    with pytest.raises(UserError, match=r"new.csv:1: the CSV header lacks column\(s\) weight"):
        load_dataset(write(tmp_path, ["mpg,cylinders,displacement,horsepower,acceleration,model_year,origin",
                                      "18,8,307,130,12,70,1"], "new.csv"))


def test_csv_wrong_field_count_is_named(tmp_path):
    header = "mpg," + ",".join(FEATURE_NAMES)
    with pytest.raises(UserError, match=r"new.csv:3: expected 8 fields"):
        load_dataset(write(tmp_path, [header, "18,8,307,130,3504,12,70,1", "18,8,307"], "new.csv"))


def test_unreadable_and_too_small_files(tmp_path):
    with pytest.raises(UserError, match="cannot read data file"):
        load_dataset(tmp_path / "nope.data")
    with pytest.raises(UserError, match="only 3 usable rows"):
        load_dataset(write(tmp_path, [GOOD_LINE] * 3))
    binary = tmp_path / "bin.data"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="not UTF-8"):
        load_dataset(binary)
