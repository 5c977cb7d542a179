"""A schema-driven fuzz of the live API (issue 15): schemathesis reads /openapi.json from a real
`mpgpack serve` on 127.0.0.1 and runs its four phases (examples, coverage, fuzzing, stateful),
positive and negative data, every check. Zero failures of any check: no 5xx, no status, content
type, header or body outside what the document declares, no invalid request accepted, no valid
one refused.

One exception, stated here: a V2 tensor's `data` must hold shape[0] x shape[1] values, which
JSON Schema cannot say; a schema-valid body with the wrong count is rightly refused (400), so
`positive_data_acceptance` is left out for the two infer operations only (every other check
still runs on them).

Bounded (~60 s on a quiet machine): a fixed seed and a fixed number of examples per operation.
The per-check figures are printed.
"""
from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import running_server

SEED = 15
EXAMPLES = 25
INFER = r"/infer$"
ST = Path(sys.executable).parent / "st"


def _run(url: str, report_dir: Path, *select: str) -> tuple[dict, collections.Counter]:
    """One schemathesis run; (its JSON report, Counter of (check, status) over every case)."""
    cmd = [str(ST), "run", url + "/openapi.json", "--checks", "all", "--mode", "all",
           "--phases", "examples,coverage,fuzzing,stateful", "-n", str(EXAMPLES),
           "--seed", str(SEED), "--generation-database", "none", "--workers", "1",
           "--request-timeout", "20", "--no-color", "--report", "json,ndjson",
           "--report-dir", str(report_dir), *select]
    # In the test's own folder: schemathesis keeps a crash cache in .schemathesis/ of its cwd.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=report_dir)
    report = json.loads(next(report_dir.glob("json-*.json")).read_text())
    counts: collections.Counter = collections.Counter()
    for line in next(report_dir.glob("ndjson-*.ndjson")).read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event:      # a scenario that sent nothing (e.g. a stateful step) records no checks
            for results in ((event.get("recorder") or {}).get("checks") or {}).values():
                counts.update((r["name"], r["status"]) for r in results)
    report["output"] = proc.stdout[-6000:] + proc.stderr[-2000:]
    return report, counts


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("fuzz"), "--no-access-log") as srv:
        yield srv


@pytest.mark.parametrize("part, select", [
    ("every operation but V2 infer", ("--exclude-path-regex", INFER)),
    ("V2 infer", ("--include-path-regex", INFER, "--exclude-checks", "positive_data_acceptance")),
])
def test_schemathesis_finds_nothing(server, tmp_path, part, select):
    report, counts = _run(server.url, tmp_path, *select)
    checks = sorted({name for name, _ in counts})
    print(f"\nschemathesis {report['schemathesis_version']} ({part}, seed {SEED}, {EXAMPLES} "
          f"examples/operation): {report['operations']['tested']} operations, "
          f"{report['test_cases']['generated']} cases in {report['running_time']:.1f} s")
    for name in checks:
        print(f"  {name:<30} {counts[name, 'success']:>6} passed {counts[name, 'failure']:>4} failed"
              f" {counts[name, 'skip']:>5} skipped")
    assert report["complete"] and report["operations"]["errored"] == 0, report["output"]
    assert report["failures"] == [] and report["errors"] == [], report["output"]
    assert not any(counts[name, "failure"] for name in checks), report["output"]
    assert counts["not_a_server_error", "success"] > 100
    assert {p["status"] for p in report["phases"].values()} <= {"success", "skipped"}, report["phases"]
