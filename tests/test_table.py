"""Any CSV: the schema inferred from it, the schema file a user edits, the rows read from it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mpgpack.core.errors import UserError
from mpgpack.train.table import TableSpec, infer_spec, load_table, read_spec, write_spec
from tests.helpers import run_cli


def _csv(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _table(n: int = 80) -> str:
    """Numbers, whole numbers, a text category with blanks, a number with blanks, text classes."""
    rows = ["size,rooms,color,depth,kind"]
    colors = ["red", "Blue", "green"]
    for i in range(n):
        color = "" if i % 17 == 0 else colors[i % 3]
        depth = "" if i % 11 == 0 else f"{(i % 7) * 0.5 + 1:.1f}"
        rows.append(f"{10 + i * 1.5},{1 + i % 5},{color},{depth},{'ab'[i % 2]}{i % 3 == 0 and 'x' or ''}")
    return "\n".join(rows) + "\n"


def test_inferred_kinds_missing_limits_and_task(tmp_path):
    spec = infer_spec(_csv(tmp_path, _table()), "kind")
    assert spec.task == "classification" and spec.classes == ("a", "ax", "b", "bx")
    assert spec.name == "t"
    size, rooms, color, depth = spec.features
    assert (size.kind, size.integer, size.nullable) == ("number", False, False)
    assert (rooms.kind, rooms.integer) == ("number", True)
    assert color.is_category and color.nullable and color.categories == {0: "Blue", 1: "green", 2: "red"}
    assert depth.nullable and not depth.integer
    # observed 10..128.5, span 118.5: limits widened by the span, not below 0, read-friendly
    assert size.minimum == 0 and 240 <= size.maximum <= 250
    assert rooms.minimum == 0 and rooms.maximum == 9
    assert spec.schema.output_name == "probabilities" and spec.schema.n_outputs == 4


def test_task_inference_and_override(tmp_path):
    rows = "x,y\n" + "".join(f"{i},{i * 3.5}\n" for i in range(60))
    path = _csv(tmp_path, rows)
    spec = infer_spec(path, "y")
    assert spec.task == "regression" and spec.schema.output_name == "y"
    few = _csv(tmp_path, "x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(60)), "few.csv")
    assert infer_spec(few, "y").classes == ("0", "1", "2")
    assert infer_spec(few, "y", "regression").task == "regression"
    text = _csv(tmp_path, "x,y\n" + "".join(f"{i},v{i % 2}\n" for i in range(60)), "text.csv")
    with pytest.raises(UserError, match="holds text .* use --task classification"):
        infer_spec(text, "y", "regression")


def test_schema_file_round_trip_and_edits(tmp_path):
    spec = infer_spec(_csv(tmp_path, _table()), "kind")
    path = tmp_path / "schema.json"
    write_spec(spec, path)
    again = read_spec(path)
    assert again == spec
    data = json.loads(path.read_text())
    data["features"][0].update(unit="m2", description="floor area", maximum=500)
    data["features"][3]["nullable"] = False
    path.write_text(json.dumps(data))
    edited = read_spec(path)
    assert edited.features[0].unit == "m2" and edited.features[0].maximum == 500
    assert not edited.features[3].nullable


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(task="ranking"), "\"task\" is 'ranking'; allowed: regression, classification"),
    (lambda d: d["features"][0].update(minimum=9e9), r"features\[0\] \(size\): minimum and maximum"),
    (lambda d: d["features"][2].update(categories={}), r"features\[2\] \(color\): a category needs"),
    (lambda d: d["features"][1].update(kind="date"), r"features\[1\] \(rooms\): kind 'date'"),
    (lambda d: d["target"].update(classes=["a"]), "two or more different labels"),
    (lambda d: d["features"][0].update(name="kind"), "is also listed as a feature"),
    (lambda d: d.pop("features"), "a required field is missing: 'features'"),
])
def test_a_bad_schema_file_is_one_clear_error(tmp_path, change, message):
    path = tmp_path / "schema.json"
    data = infer_spec(_csv(tmp_path, _table()), "kind").to_json()
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=message):
        read_spec(path)


def test_rows_read_labels_any_case_and_note_what_they_leave_out(tmp_path):
    text = _table() + "300,2,RED,1.0,a\n" + "12,2,red,1.0,zz\n" + "13,2,red,1.0,\n"
    path = _csv(tmp_path, text)
    spec = infer_spec(_csv(tmp_path, _table(), "train.csv"), "kind")
    ds = load_table(path, spec)
    assert len(ds) == 80                          # three rows left out, each with its line
    assert any(":82: size: 300 is outside the hard limits" in n for n in ds.notes)
    assert any(":83: kind 'zz' is not one of the classes (a, ax, b, bx)" in n for n in ds.notes)
    assert any(":84: no kind; row left out" in n for n in ds.notes)
    color = spec.features[2]
    assert set(np.unique(ds.X[~np.isnan(ds.X[:, 2]), 2])) == set(color.categories)
    assert np.isnan(ds.X[0, 2]) and np.isnan(ds.X[0, 3])       # the blanks of row 1
    assert ds.y[1] == spec.classes.index("b")


def test_a_bad_cell_names_file_line_and_column(tmp_path):
    spec = infer_spec(_csv(tmp_path, _table(), "train.csv"), "kind")
    bad = _csv(tmp_path, _table().replace("\n13.0,", "\n13.0x,", 1))
    with pytest.raises(UserError) as err:
        load_table(bad, spec)
    assert str(err.value).startswith(f"{bad}:4: column 'size' (column 1): '13.0x' is not a number")
    purple = _csv(tmp_path, _table() + "12,2,purple,1.0,a\n", "purple.csv")
    with pytest.raises(UserError, match=r":82: column 'color' \(column 3\): 'purple' is not one "
                                        r"of 0 Blue, 1 green, 2 red, or empty for missing"):
        load_table(purple, spec)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2,3\n", r":2: expected 2 fields as in the header, found 3"),
    ("a,a\n1,2\n", r":1: column 2 repeats the name 'a'"),
    ('a,b\n1,"2\n', r"not a readable CSV record"),
    ("a,,b\n1,2,3\n", r":1: column 2 of the header has no name"),
])
def test_malformed_csv_files(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        infer_spec(_csv(tmp_path, text), "a")


def test_unknown_target_lists_the_columns(tmp_path):
    with pytest.raises(UserError, match=r":1: no column named 'price'; the header has: size, rooms"):
        infer_spec(_csv(tmp_path, _table()), "price")


def test_the_schema_command_writes_what_build_reads(tmp_path):
    data = _csv(tmp_path, _table())
    out = tmp_path / "s.json"
    res = run_cli("schema", str(data), "--target", "kind", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "classification of 'kind' into 4 classes from 4 features" in res.stdout
    assert f"mpgpack build --data {data} --schema {out}" in res.stdout
    assert isinstance(read_spec(out), TableSpec)
    bad = run_cli("schema", str(data), "--target", "nope")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no column named 'nope'" in bad.stderr
