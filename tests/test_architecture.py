"""The import direction of ARCHITECTURE.md, as the contracts in pyproject.toml state it
([tool.importlinter]), checked by the real `lint-imports` — and shown to catch a wrong-way import."""
from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO, VENV_BIN

CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
WRONG_WAY = "from mpgpack.export import build"


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`lint-imports` over the `mpgpack` package found in root (PYTHONPATH=root, not the venv's)."""
    return subprocess.run([str(VENV_BIN / "lint-imports"), "--no-cache", "--no-logo", *args],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def copy_sources(dst: Path) -> Path:
    """The package's Python files and pyproject.toml, nothing else (no node_modules, no data)."""
    for src in (REPO / "mpgpack").rglob("*.py"):
        if "node_modules" not in src.parts:
            target = dst / src.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    shutil.copyfile(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("where", ["module", "function"])
def test_a_wrong_way_import_breaks_the_core_contract(tmp_path, where):
    """core importing export, at module level or lazily inside a function, fails the lint and
    the report names the offending import. The untouched copy keeps the core contract, so the
    failure is the injected line's doing."""
    root = copy_sources(tmp_path)
    before = lint_imports(root, "--contract", "core")
    assert before.returncode == 0, before.stdout + before.stderr

    errors = root / "mpgpack" / "core" / "errors.py"
    line = WRONG_WAY if where == "module" else f"def _wrong_way():\n    {WRONG_WAY}\n"
    errors.write_text(errors.read_text() + "\n" + line + "\n")
    after = lint_imports(root, "--contract", "core")
    assert after.returncode == 1, after.stdout + after.stderr
    assert "core imports nothing else of mpgpack BROKEN" in after.stdout
    assert "mpgpack.core.errors -> mpgpack.export.build" in after.stdout


def test_every_part_of_mpgpack_is_placed_in_a_contract():
    """A new top-level part (or a new module next to the device code) must be given its place in
    the contracts; otherwise nothing would stop core or the device code from importing it."""
    named = {m for c in CONTRACTS for key in ("source_modules", "forbidden_modules", "modules")
             for m in c.get(key, [])}
    parts = {f"mpgpack.{p.stem}" for p in (REPO / "mpgpack").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    edge = {f"mpgpack.targets.edge.{p.stem}" for p in (REPO / "mpgpack/targets/edge").glob("*.py")
            if p.stem != "__init__"}
    targets = {f"mpgpack.targets.{p.name}" for p in (REPO / "mpgpack/targets").iterdir()
               if (p / "__init__.py").exists()}
    assert parts - named == set()
    assert edge - named == set()
    assert targets - named == set()
