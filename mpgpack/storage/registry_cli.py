"""`mpgpack versions` and `mpgpack rollback`: a registry's versions and undo, the same on a
folder (dist/) and on s3://BUCKET/PREFIX/.

Cheap to import; a folder registry needs only the standard library (a host that serves the
model can roll back without the build stack), an s3:// one imports boto3 when used.
"""
from __future__ import annotations

import argparse

from mpgpack.core.pointer import DEFAULT_REGISTRY


def _versions(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.storage.registry import open_registry
    registry = open_registry(args.registry)
    versions = registry.versions()
    if not versions:
        raise UserError(f"{registry.where()} holds no bundle (no mpg-*/manifest.json); "
                        f"{registry.publish_hint}")
    order = registry.stack()
    previous = order[-2] if len(order) > 1 else None
    print(f"{'':2}{'version':<18} {'created (UTC)':<26} {'model':<7} {'CV score':>15} "
          f"{'hold-out':>16} {'rows':>5}  data")
    for v in versions:
        mark = "*" if v.current else ("<" if v.name == previous else "")
        cv = f"{v.score} {v.cv:.3f}" if v.cv is not None else "-"
        print(f"{mark:2}{v.name:<18} {v.created:<26} {v.family:<7} {cv:>15} {v.holdout:>16} "
              f"{v.rows or '-':>5}  {v.data}")
    print("\n* current   < where `mpgpack rollback` would go" if previous else "\n* current")
    return 0


def _rollback(args) -> int:
    from mpgpack.storage.registry import open_registry
    registry = open_registry(args.registry)
    if args.to:
        before, after = registry.activate(args.to)
    else:
        before, after = registry.rollback()
    print(f"{registry.where(registry.pointer_file)}: {before} -> {after}")
    print("a running server keeps its version until it reloads: POST /admin/reload or SIGHUP")
    return 0


REGISTRY_HELP = f"registry folder or s3://BUCKET/PREFIX/ (default: {DEFAULT_REGISTRY})"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("versions", help="list the versions in a registry (folder or S3)",
                       description="List every bundle in the registry with its creation time, "
                                   "cross-validated MAE and hold-out MAE; mark the current one "
                                   "(*) and the one a rollback would return to (<).")
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help=REGISTRY_HELP)
    p.set_defaults(run=_versions)

    p = sub.add_parser("rollback", help="point the registry's current version back at the "
                                        "previous one",
                       description="Return the registry's pointer (CURRENT in a folder, current "
                                   "in S3) to the version that was current before it (as "
                                   "recorded in its history; repeated rollbacks go further "
                                   "back), or to a named version with --to. A running server "
                                   "switches when it reloads (POST /admin/reload or SIGHUP).")
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help=REGISTRY_HELP)
    p.add_argument("--to", metavar="VERSION", default=None,
                   help="make this version current instead (mpg-<version> or <version>)")
    p.set_defaults(run=_rollback)
