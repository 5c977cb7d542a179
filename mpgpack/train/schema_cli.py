"""`mpgpack schema FILE.csv --target COLUMN`: the inferred schema, to read, edit and pass back."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _schema(args) -> int:
    from mpgpack.train.table import infer_spec, write_spec
    spec = infer_spec(args.data, args.target, args.task)
    text = write_spec(spec, args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        kinds = ", ".join(f"{f.name} ({'category' if f.is_category else 'whole number' if f.integer else 'number'}"
                          f"{', may be missing' if f.nullable else ''})" for f in spec.features)
        print(f"wrote {args.out}: {spec.task} of {spec.target.name!r}"
              + (f" into {len(spec.classes)} classes" if spec.classes else "")
              + f" from {len(spec.features)} features: {kinds}")
        print(f"edit it (units, descriptions, hard limits, which values may be missing), then: "
              f"mpgpack build --data {args.data} --schema {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="infer a CSV's schema and write it as JSON to edit and "
                                      "pass to build --schema",
                       description="Read a CSV with a header row and propose its schema: each "
                                   "feature's kind (number, whole number, or category with its "
                                   "labels), whether it may be missing, hard limits (values "
                                   "outside are refused when serving: the observed range widened "
                                   "by its span), and the task. Writes JSON (stdout, or --out) "
                                   "that you can edit and give to `mpgpack build --schema`.")
    p.add_argument("data", help="the CSV file (a header row, then one row per example)")
    p.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    p.add_argument("--task", choices=["regression", "classification"], default=None,
                   help="default: inferred (classification when the target holds text or at "
                        "most 10 different whole numbers)")
    p.add_argument("--out", type=Path, default=None, help="write here instead of stdout")
    p.set_defaults(run=_schema)
