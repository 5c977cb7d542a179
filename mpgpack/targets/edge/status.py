"""`mpg-edge status`: what this device serves, how its last update went, and input drift.

Printed for a person and, with --json FILE, written for a fleet tool to collect:

    {"prefix", "serving": {"name", "version", "created", "path"} | null, "previous",
     "last_attempt": {time, registry, version, outcome, reason, serving} | null,
     "prediction_log": {"path", "files", "records", "by_version"} | null,
     "drift": the core.drift report of the log's last --window inputs against the serving
              version's training statistics | null}

Drift uses the same prediction log and the same tests as the API (core.predlog, core.drift).
Device code: stdlib + numpy + mpgpack.core.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mpgpack.core.drift_defaults import DEFAULT_MIN_COUNT, DEFAULT_WINDOW
from mpgpack.core.errors import UserError
from mpgpack.targets.edge.device_store import CURRENT, PREVIOUS, DeviceStore

LOG_ENV = "MPG_EDGE_PREDICTION_LOG"


def serving_info(store: DeviceStore) -> dict | None:
    name = store.link_name(CURRENT)
    if name is None:
        return None
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(store.versions / name)
    return {"name": name, "version": bundle.version, "path": str(bundle.path),
            "created": bundle.manifest["model"].get("created", "")}


def log_drift(log: Path, manifest: dict, window: int, min_count: int) -> tuple[dict, dict]:
    """(counts of the log's records, drift report of its last `window` inputs)."""
    import numpy as np
    from mpgpack.core.drift import DriftMonitor
    from mpgpack.core.predlog import read_log
    names = [f["name"] for f in manifest["schema"]["features"]]
    records, files, notes = read_log([log], names)
    by_version: dict[str, int] = {}
    for _, version, _ in records:
        by_version[str(version)] = by_version.get(str(version), 0) + 1
    counts = {"path": str(log), "files": files, "records": len(records),
              "by_version": by_version, "notes": notes}
    monitor = DriftMonitor(manifest, window=window, min_count=min_count)
    monitor.observe(np.array([r[2] for r in records[-window:]], dtype=np.float32))
    return counts, monitor.report()


def collect(args) -> dict:
    from mpgpack.targets.edge.follow import prefix_of
    store = DeviceStore(prefix_of(args))
    if not store.root.is_dir():
        raise UserError(f"{store.root} does not exist: this device follows no registry there "
                        f"(run `mpg-edge follow URL --prefix {store.root}`)")
    serving = serving_info(store)
    out = {"prefix": str(store.root), "serving": serving,
           "previous": store.link_name(PREVIOUS),
           "last_attempt": store.read_state() or None, "prediction_log": None, "drift": None}
    log = args.prediction_log or os.environ.get(LOG_ENV)
    if log and serving is not None:
        from mpgpack.core.bundle import open_bundle
        manifest = open_bundle(serving["path"]).manifest
        out["prediction_log"], out["drift"] = log_drift(Path(log), manifest, args.window,
                                                        args.min_count)
    return out


def _drift_lines(drift: dict) -> list[str]:
    lines = [f"drift: {drift['status'].upper()} over the last {drift['n']} logged inputs "
             f"(window {drift['window']})"
             + (f"; alarms: {', '.join(drift['alarms'])}" if drift["alarms"] else "")]
    for name, f in drift["features"].items():
        lines.append(f"  {name}: {f['status']}"
                     + (f" (p {f['p_value']:.2g})" if f.get("p_value") is not None else ""))
    for name, m in drift["missing"].items():
        lines.append(f"  {name} missing: {m['status']}")
    return lines


def format_status(info: dict) -> str:
    s, last = info["serving"], info["last_attempt"]
    lines = [f"serving: {s['name']} (created {s['created']}) from {s['path']}" if s
             else f"serving: nothing yet in {info['prefix']}",
             f"previous: {info['previous'] or 'none'}"]
    if last:
        lines.append(f"last update attempt: {last.get('time', '?')} {last.get('outcome', '?')}"
                     f" {last.get('version') or ''}: {last.get('reason', '')}".rstrip(": "))
        if last.get("hold"):
            lines.append(f"held: {last['hold']} (rolled back here; not reinstalled until the "
                         f"registry names another version)")
    else:
        lines.append("last update attempt: none")
    log = info["prediction_log"]
    if log:
        per = ", ".join(f"{n} by mpg-{v}" for v, n in sorted(log["by_version"].items()))
        lines.append(f"prediction log: {log['records']} records in {len(log['files'])} file(s) "
                     f"({per})")
        lines += _drift_lines(info["drift"])
    return "\n".join(lines)


def cmd_status(args) -> int:
    if args.window < 1 or args.min_count < 1:
        raise UserError("--window and --min-count must be at least 1")
    info = collect(args)
    print(format_status(info))
    if args.json:
        path = Path(args.json)
        try:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(info, indent=1) + "\n")
            os.replace(tmp, path)       # a collector never reads half a file
        except OSError as exc:
            raise UserError(f"cannot write --json {path}: {exc.strerror}") from None
    sys.stdout.flush()
    return 0


def register(sub, prefix_help: str) -> None:
    p = sub.add_parser("status", help="serving version, last update, drift of logged inputs",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--prefix", help=prefix_help)
    p.add_argument("--json", metavar="FILE", help="also write the status as JSON to FILE")
    p.add_argument("--prediction-log", metavar="PATH", help=f"the log `mpg-edge predict "
                   f"--prediction-log` writes (default: ${LOG_ENV}); drift needs it")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"most recent logged inputs compared (default: {DEFAULT_WINDOW})")
    p.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT,
                   help=f"fewer rows: 'not enough data' (default: {DEFAULT_MIN_COUNT})")
    p.set_defaults(run=cmd_status)
