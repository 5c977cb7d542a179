"""Where the web target's Node programs run: a folder holding the npm packages of package-lock.json.

In a checkout, the set-up runs `npm ci` here (mpgpack/targets/web/node_modules) and that folder
is used. An installed package carries no node_modules (a wheel ships no third-party JS), so on
first use its Node project (package files, build.mjs, node_predict.mjs, the page's src/) is
copied into a user cache folder named after its content and `npm ci` runs there once; Node
resolves the imports of the copied programs from that folder's node_modules.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mpgpack.core.errors import UserError

HERE = Path(__file__).resolve().parent
PROJECT_FILES = ("package.json", "package-lock.json", ".npmrc", "build.mjs", "node_predict.mjs")
PROJECT_DIRS = ("src",)
# What the two programs import; a node_modules without one of them is not usable.
REQUIRED_PACKAGES = ("esbuild", "@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm")
NPM_CI_TIMEOUT_S = 900


def cache_root() -> Path:
    """$MPGPACK_CACHE/npm, else ~/.cache/mpgpack/npm."""
    return Path(os.environ.get("MPGPACK_CACHE") or Path.home() / ".cache" / "mpgpack") / "npm"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise UserError("node is not installed: the web page's build and the TF.js parity check "
                        "run in Node.js (18 or newer); install nodejs and npm (in a checkout: "
                        "bash scripts/setup.sh)")
    return node


def has_packages(folder: Path) -> bool:
    return all((folder / "node_modules" / p).is_dir() for p in REQUIRED_PACKAGES)


def node_project() -> Path:
    """The folder to run build.mjs and node_predict.mjs in (cwd), npm packages installed."""
    if has_packages(HERE):
        return HERE
    folder = cache_root() / f"web-{fingerprint()}"
    if not (folder / ".complete").is_file():
        _install(folder)
    return folder


def _project_paths() -> list[Path]:
    files = [HERE / name for name in PROJECT_FILES]
    for d in PROJECT_DIRS:
        files += sorted(p for p in (HERE / d).rglob("*") if p.is_file())
    return files


def fingerprint() -> str:
    """12 hex digits over the project's files: another package version, another folder."""
    digest = hashlib.sha256()
    for path in _project_paths():
        digest.update(path.relative_to(HERE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _install(folder: Path) -> None:
    """Copies the project into a temporary folder beside `folder`, runs `npm ci` there, and
    renames it into place, so a half-done install is never used."""
    npm = shutil.which("npm")
    if npm is None:
        raise UserError("npm is not installed: the web page's build needs the npm packages of "
                        f"{HERE / 'package-lock.json'}; install nodejs and npm")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for path in _project_paths():
            dest = tmp / path.relative_to(HERE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        print(f"web: installing the npm packages of package-lock.json into {folder} (once)",
              file=sys.stderr, flush=True)
        _npm_ci(npm, tmp)
        (tmp / ".complete").write_text("")
        if not folder.exists():        # else another build finished first: keep its copy
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _npm_ci(npm: str, cwd: Path) -> None:
    try:
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=cwd, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"npm ci took over {NPM_CI_TIMEOUT_S} s; gave up") from None
    if proc.returncode != 0:
        last = [l for l in proc.stderr.splitlines() if l.strip()][-1:] or ["(no output)"]
        raise UserError(f"npm ci failed for the web page's packages: {last[0]}")
