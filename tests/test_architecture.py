"""The import direction of ARCHITECTURE.md, as the contracts in pyproject.toml state it
([tool.importlinter]), checked by the real `lint-imports` and shown to catch a wrong-way import;
and the test tiers (the fast one collects without TensorFlow)."""
from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REPO, VENV_BIN

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CONTRACTS = PYPROJECT["tool"]["importlinter"]["contracts"]
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


# -- the test tiers ------------------------------------------------------------------------------
def fast_tier() -> str:
    """The marker expression of `make test-fast` (the Makefile is its one definition)."""
    line = next(ln for ln in (REPO / "Makefile").read_text().splitlines()
                if ln.startswith("FAST_TIER = "))
    return line.split("=", 1)[1].strip()


def test_the_fast_tier_leaves_out_every_tier_marker():
    registered = {m.split(":")[0] for m in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]}
    terms = fast_tier().split(" and ")
    assert all(t.startswith("not ") for t in terms)
    assert {t.removeprefix("not ") for t in terms} == registered


def test_collecting_the_fast_tier_imports_no_tensorflow():
    """The fast tier's test files, collected as `make test-fast` does, import neither TensorFlow
    nor the model build stack behind it (a slow test imports it when it runs)."""
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", fast_tier()]
    probe = (f"import sys, pytest\ncode = pytest.main({args!r})\n"
             "print('imported:', sorted(m for m in ('tensorflow', 'tensorflowjs', 'skl2onnx') "
             "if m in sys.modules), 'exit', code)\n")
    result = subprocess.run([str(VENV_BIN / "python"), "-c", probe], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert "imported: [] exit 0" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_device_wheel_carries_every_module_the_device_code_imports():
    """The mpg-edge wheel lists its files by hand (targets/edge/wheel.py): a device module
    importing a new core module must bring that file along, or the Pi fails at import."""
    import ast

    from mpgpack.targets.edge.wheel import RUNTIME_FILES
    shipped = {f.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
               for f in RUNTIME_FILES}
    missing = set()
    for rel in RUNTIME_FILES:
        tree = ast.parse((REPO / rel).read_text())
        for node in ast.walk(tree):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            missing |= {n for n in names if n.startswith("mpgpack") and n not in shipped}
    assert missing == set(), f"add to RUNTIME_FILES: {sorted(missing)}"
