"""The core's typed schema and its one row validator, on a small hand-made feature list.

No bundle, no TensorFlow: these run in well under a second.
"""
from __future__ import annotations

import ast
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from mpgpack.core import rows
from mpgpack.core.rows import check_rows, outside_training, parse_number, parse_text_rows, text_cell
from mpgpack.core.schema import INPUT_NAME, OUTPUT_NAME, Feature, Schema, show_number
from tests.helpers import REPO

# Three features in the manifest's own JSON form: a nullable number, a whole number, a category.
FEATURES_JSON = [
    {"name": "horsepower", "unit": "hp", "description": "Engine power", "kind": "number",
     "minimum": 30, "maximum": 400, "integer": False, "nullable": True, "categories": {},
     "training_range": [46.0, 230.0]},
    {"name": "cylinders", "unit": "count", "description": "Number of cylinders", "kind": "number",
     "minimum": 2, "maximum": 16, "integer": True, "nullable": False, "categories": {},
     "training_range": [3.0, 8.0]},
    {"name": "origin", "unit": "", "description": "Region of origin", "kind": "category",
     "minimum": 1, "maximum": 3, "integer": True, "nullable": False,
     "categories": {"1": "USA", "2": "Europe", "3": "Japan"}, "training_range": [1.0, 3.0]},
]
SCHEMA = Schema.from_features(FEATURES_JSON)
NAN = float("nan")


def messages(X, **kw) -> dict[int, str]:
    check = check_rows(SCHEMA, np.array(X, dtype=np.float64), **kw)
    return {r: check.message(r) for r in check.problems}


# -- the typed schema ------------------------------------------------------------------------
def test_features_round_trip_the_manifest_json_unchanged():
    assert SCHEMA.to_json() == FEATURES_JSON
    assert json.dumps(SCHEMA.to_json()) == json.dumps(FEATURES_JSON)   # key order too
    origin = SCHEMA.by_name("origin")
    assert origin.categories == {1: "USA", 2: "Europe", 3: "Japan"} and origin.is_category
    assert SCHEMA.names == ["horsepower", "cylinders", "origin"]
    assert SCHEMA.nullable_names == ["horsepower"]
    assert SCHEMA.by_name("torque") is None


def test_schema_from_a_manifest_reads_tensor_names_with_defaults():
    manifest = {"schema": {"features": FEATURES_JSON}}
    assert (Schema.from_manifest(manifest).input_name, Schema.from_manifest(manifest).output_name) \
        == (INPUT_NAME, OUTPUT_NAME) == ("features", "mpg")
    manifest["model"] = {"io": {"input": "x", "output": "y"}}
    assert Schema.from_manifest(manifest).input_name == "x"


def test_a_feature_without_training_range_writes_no_such_key():
    f = Feature("weight", "lb", "Vehicle weight", "number", 1000, 7000)
    assert "training_range" not in f.to_json()
    assert Feature.from_json(f.to_json()) == f
    assert np.isinf(Schema((f,)).training_hi).all()         # nothing is outside no range


def test_texts_a_message_uses():
    hp, cyl, origin = SCHEMA
    assert hp.limits_text() == "30–400 hp"
    assert cyl.limits_text() == "2–16"                        # no unit after a count
    assert origin.categories_text() == "1 USA, 2 Europe, 3 Japan"
    assert cyl.allowed_text() == "a whole number within 2–16"
    assert origin.allowed_text() == "one of 1 USA, 2 Europe, 3 Japan"
    assert [show_number(v) for v in (900.0, 4.5, 3.0000000001, NAN, float("-inf"))] == \
        ["900", "4.5", "3.0000000001", "NaN", "-Infinity"]


# -- the row rules and their words -----------------------------------------------------------
def test_each_rule_has_one_message_naming_feature_problem_and_what_is_allowed():
    got = messages([[130, 4, 1],          # fine
                    [900, 4, 1],          # outside the hard limits
                    [130, 4, 4],          # unknown category
                    [130, 4.5, 1],        # not a whole number
                    [130, NAN, 1],        # missing where not allowed
                    [NAN, 4, 1],          # missing where allowed: fine
                    [130, 4, 3.0000000001],   # near a code is not the code
                    [np.inf, 4, 1]])      # not finite
    assert sorted(got) == [1, 2, 3, 4, 6, 7]
    assert got[1] == "horsepower: 900 is outside the hard limits 30–400 hp"
    assert got[2] == "origin: unknown value 4 (allowed: 1 USA, 2 Europe, 3 Japan)"
    assert got[3] == "cylinders: must be a whole number, got 4.5"
    assert got[4] == "cylinders: missing (only horsepower may be missing)"
    assert got[6] == "origin: unknown value 3.0000000001 (allowed: 1 USA, 2 Europe, 3 Japan)"
    assert got[7] == ("horsepower: Infinity is not a finite number "
                      "(allowed: a number within 30–400 hp, or missing)")


def test_every_problem_of_a_row_is_named_in_column_order_and_one_rule_per_cell():
    check = check_rows(SCHEMA, np.array([[5000, 1.5, 0.5]]))
    assert [p.rule for p in check.problems[0]] == [
        rows.OUTSIDE_LIMITS, rows.OUTSIDE_LIMITS, rows.UNKNOWN_CATEGORY]   # outside beats fraction
    assert check.count == 3 and not check.good[0]
    assert check.message(0).startswith("horsepower: 5000 is outside")


def test_missing_mask_and_unreadable_cells_come_from_the_caller():
    X = np.array([[NAN, 4, 1], [NAN, 4, 1]])
    missing = np.array([[True, False, False], [False, False, False]])   # row 1: a NaN literal
    unreadable = np.zeros_like(missing)
    unreadable[0, 2] = True
    check = check_rows(SCHEMA, X, missing, unreadable, missing_as="null",
                       shown=lambda r, c: '"USA"' if (r, c) == (0, 2) else None)
    assert check.message(0) == ('origin: "USA" is neither a label nor a code '
                                '(allowed: one of 1 USA, 2 Europe, 3 Japan)')
    assert check.message(1) == ("horsepower: NaN is not a finite number "
                                "(allowed: a number within 30–400 hp, or null)")


def test_no_nullable_feature_says_every_feature_is_required():
    schema = Schema.from_features([{**FEATURES_JSON[0], "nullable": False}])
    assert check_rows(schema, np.array([[NAN]])).message(0) == \
        "horsepower: missing (every feature is required)"


def test_outside_training_range_is_a_separate_warning_not_a_rule():
    X = np.array([[300, 4, 1], [NAN, 12, 2]])
    assert check_rows(SCHEMA, X).good.all()
    assert outside_training(SCHEMA, X).tolist() == [[True, False, False], [False, True, False]]


# -- the strict number grammar -------------------------------------------------------------
@pytest.mark.parametrize("text", ["٣", "４", "1_000", "1\x00", "nan", "inf", "Infinity", "0x1F",
                                  "1.2.3", "e5", "--1", "1e", "1 2", "1,5", "１"])
def test_grammar_refuses_what_float_would_take_or_is_not_a_number(text):
    with pytest.raises(ValueError):
        parse_number(text)
    X, missing, unreadable = parse_text_rows([["130", "4", text]], 3)
    assert unreadable.tolist() == [[False, False, True]] and not missing.any()
    check = check_rows(SCHEMA, X, missing, unreadable, shown=text_cell([["130", "4", text]]))
    assert check.message(0).startswith(f"origin: {text.strip()!r} is neither a label nor a code "
                                       "(allowed: one of")


@pytest.mark.parametrize("text, value", [("130", 130), (" 4.5 ", 4.5), ("-2.", -2), (".5", .5),
                                         ("+3E-2", .03), ("1e5", 1e5), ("007", 7)])
def test_grammar_takes_plain_ascii_decimal_and_scientific_numbers(text, value):
    assert parse_number(text) == value
    X, missing, unreadable = parse_text_rows([[text, text, text]], 3)
    assert X.tolist() == [[value] * 3] and not missing.any() and not unreadable.any()


def test_question_mark_and_empty_mean_missing():
    X, missing, unreadable = parse_text_rows([["?", "", " ? "]], 3)
    assert missing.all() and not unreadable.any() and np.isnan(X).all()
    assert np.isnan(parse_number("?")) and np.isnan(parse_number(""))


def test_one_long_cell_is_judged_alone_not_by_a_text_array_as_wide_as_it():
    """numpy's text array is as wide as the longest cell: 20,000 rows and one 2,001-character
    cell took 2.25 GB. Long cells are judged one by one; a long valid number still parses."""
    import tracemalloc
    rows_ = [["130", "4", "2"]] * 20_000 + [["1." * 1000 + "1", "0" * 60 + "7", "3"]]
    tracemalloc.start()
    X, missing, unreadable = parse_text_rows(rows_, 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert unreadable.tolist()[-1] == [True, False, False] and X[-1, 1] == 7
    assert not unreadable[:-1].any() and X[:-1].tolist() == [[130, 4, 2]] * 20_000
    assert peak < 50_000_000, peak


def test_vectorised_and_cell_by_cell_parsing_agree():
    """The fast path (numpy over plain text) must accept exactly what the grammar accepts."""
    rng = random.Random(0)
    alphabet = "0123456789eE.+-? "
    cells = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(3000)]
    rows_ = [cells[i:i + 3] for i in range(0, len(cells), 3)]
    X, missing, unreadable = parse_text_rows(rows_, 3)
    for (r, c), cell in np.ndenumerate(np.array(rows_, dtype=object)):
        try:
            expected = parse_number(cell)
        except ValueError:
            assert unreadable[r, c], cell
            continue
        assert not unreadable[r, c], cell
        assert missing[r, c] == np.isnan(expected), cell
        assert np.isnan(expected) or X[r, c] == expected, cell


# -- import boundaries -----------------------------------------------------------------------
def test_core_imports_nothing_but_stdlib_and_numpy():
    code = ("import sys, mpgpack.core.rows, mpgpack.core.schema\n"
            "print(sorted(m for m in sys.modules if m.startswith('mpgpack')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = eval(proc.stdout)
    assert loaded == ["mpgpack", "mpgpack.core", "mpgpack.core.rows", "mpgpack.core.schema"]


def _mpgpack_imports(rel: str) -> set[str]:
    """Files of the mpgpack modules that file `rel` imports (a package: its __init__.py and
    any submodule named in `from package import name`)."""
    def file_of(module: str) -> str | None:
        base = module.replace(".", "/")
        for cand in (base + ".py", base + "/__init__.py"):
            if (REPO / cand).is_file():
                return cand
        return None
    found = set()
    for node in ast.walk(ast.parse((REPO / rel).read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mpgpack"):
            found.add(file_of(node.module))
            found.update(file_of(f"{node.module}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(file_of(a.name) for a in node.names if a.name.startswith("mpgpack"))
    return {f for f in found if f}


def test_the_device_wheel_carries_every_core_module_the_runner_imports():
    """The runner's whole import closure (from its entry point, in-function imports too)."""
    from mpgpack.targets.edge.wheel import RUNTIME_FILES
    imported, todo = set(), ["mpgpack/targets/edge/device.py"]
    while todo:
        rel = todo.pop()
        if rel not in imported:
            imported.add(rel)
            todo.extend(_mpgpack_imports(rel))
    assert imported <= set(RUNTIME_FILES), imported - set(RUNTIME_FILES)
