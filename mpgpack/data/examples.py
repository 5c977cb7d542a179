"""Example tables for `mpgpack build --data`: the data sets scikit-learn ships, as CSV files
with their column names, plus one made from them with string categories and missing values.

    python -m mpgpack.data.examples OUTDIR

writes diabetes.csv (regression, target `progression`), iris.csv (`species`, 3 classes),
wine.csv (`cultivar`, 3 classes), breast_cancer.csv (`diagnosis`, malignant/benign) and
clinic.csv (the diabetes patients with `sex` as text, a `bmi_band` category, and blanks where
a value is missing). Deterministic: the same files every time. Needs scikit-learn (the
`build` extra), which holds these data sets offline.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

# name -> (target column, task)
EXAMPLES = {"diabetes": ("progression", "regression"), "iris": ("species", "classification"),
            "wine": ("cultivar", "classification"),
            "breast_cancer": ("diagnosis", "classification"),
            "clinic": ("progression", "regression")}


def _clean(name: str) -> str:
    return name.replace(" (cm)", "_cm").replace(" ", "_").replace("/", "_per_")


def _write(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def _number(v: float) -> str:
    return "" if v != v else (str(int(v)) if float(v).is_integer() else repr(float(v)))


def _bunch_csv(out: Path, name: str, bunch, target: str, labels=None) -> Path:
    header = [_clean(n) for n in bunch.feature_names] + [target]
    rows = [[_number(v) for v in x] + [labels[int(t)] if labels is not None else _number(t)]
            for x, t in zip(bunch.data, bunch.target)]
    return _write(out / f"{name}.csv", header, rows)


def _clinic(out: Path, bunch) -> Path:
    """diabetes, unscaled, made messier the way real tables are: `sex` as text, a derived BMI
    band, ~8 % of blood pressure and s3 blank, ~3 % of sex blank."""
    rng = np.random.default_rng(17)
    names = [_clean(n) for n in bunch.feature_names]
    header = [n for n in names] + ["bmi_band", "progression"]
    rows = []
    for x, t in zip(bunch.data, bunch.target):
        cells = dict(zip(names, (_number(v) for v in x)))
        cells["sex"] = {1: "female", 2: "male"}[int(x[names.index("sex")])]
        bmi = x[names.index("bmi")]
        band = "under" if bmi < 18.5 else "normal" if bmi < 25 else "over" if bmi < 30 else "obese"
        for col, share in (("bp", 0.08), ("s3", 0.08), ("sex", 0.03)):
            if rng.random() < share:
                cells[col] = ""
        rows.append([cells[n] for n in names] + [band, _number(t)])
    return _write(out / "clinic.csv", header, rows)


def write_examples(out: Path) -> dict[str, Path]:
    from sklearn import datasets
    out.mkdir(parents=True, exist_ok=True)
    iris = datasets.load_iris()
    wine = datasets.load_wine()
    cancer = datasets.load_breast_cancer()
    diabetes = datasets.load_diabetes(scaled=False)
    return {
        "diabetes": _bunch_csv(out, "diabetes", diabetes, "progression"),
        "iris": _bunch_csv(out, "iris", iris, "species", list(iris.target_names)),
        "wine": _bunch_csv(out, "wine", wine, "cultivar", list(wine.target_names)),
        "breast_cancer": _bunch_csv(out, "breast_cancer", cancer, "diagnosis",
                                    list(cancer.target_names)),
        "clinic": _clinic(out, diabetes),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mpgpack.data.examples", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write the CSV files into")
    args = p.parse_args(argv)
    for name, path in write_examples(args.out).items():
        target, task = EXAMPLES[name]
        print(f"{path}  ({task}, --target {target})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
