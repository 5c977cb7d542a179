"""`mpgpack versions` and `mpgpack rollback`: the registry folder's versions and undo.

Stdlib only: a host that serves the model can roll back without the build stack.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _versions(args) -> int:
    from mpgpack.export.registry import list_versions, stack
    from mpgpack.core.errors import UserError
    if not args.registry.is_dir():
        raise UserError(f"registry folder {args.registry} does not exist; run `mpgpack build` first")
    versions = list_versions(args.registry)
    if not versions:
        raise UserError(f"{args.registry} holds no bundle (no mpg-*/manifest.json); "
                        f"run `mpgpack build --out {args.registry}`")
    order = stack(args.registry)
    previous = order[-2] if len(order) > 1 else None
    print(f"{'':2}{'version':<18} {'created (UTC)':<26} {'CV MAE':>7} {'hold-out MAE':>12} "
          f"{'rows':>5}  data")
    for v in versions:
        mark = "*" if v.current else ("<" if v.name == previous else "")
        cv = f"{v.cv_mae:.3f}" if v.cv_mae is not None else "-"
        ho = f"{v.holdout_mae:.3f}" if v.holdout_mae is not None else "-"
        print(f"{mark:2}{v.name:<18} {v.created:<26} {cv:>7} {ho:>12} {v.rows or '-':>5}  {v.data}")
    print("\n* current   < where `mpgpack rollback` would go" if previous else "\n* current")
    return 0


def _rollback(args) -> int:
    from mpgpack.export.registry import activate, rollback
    if args.to:
        before, after = activate(args.registry, args.to)
    else:
        before, after = rollback(args.registry)
    print(f"{args.registry}/CURRENT: {before} -> {after}")
    print("a running server keeps its version until it reloads: POST /admin/reload or SIGHUP")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("versions", help="list the versions in the registry folder",
                       description="List every bundle in the registry folder with its creation "
                                   "time, cross-validated MAE and hold-out MAE; mark the current "
                                   "one (*) and the one a rollback would return to (<).")
    p.add_argument("--registry", type=Path, default=Path("dist"),
                   help="registry folder (default: dist)")
    p.set_defaults(run=_versions)

    p = sub.add_parser("rollback", help="point the registry's CURRENT back at the previous version",
                       description="Return the registry's CURRENT to the version that was current "
                                   "before it (as recorded in REGISTRY/HISTORY; repeated rollbacks "
                                   "go further back), or to a named version with --to. A running "
                                   "server switches when it reloads (POST /admin/reload or SIGHUP).")
    p.add_argument("--registry", type=Path, default=Path("dist"),
                   help="registry folder (default: dist)")
    p.add_argument("--to", metavar="VERSION", default=None,
                   help="make this version current instead (mpg-<version> or <version>)")
    p.set_defaults(run=_rollback)
