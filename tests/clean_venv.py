"""Helpers for the install tests: a clean venv far from the checkout, and a served bundle in it.
No tests here.

A clean venv sees nothing of the checkout: it is made in a temporary folder, commands run with
that folder as cwd and without PYTHONPATH, and packages come from pip like a user's (pinned by
constraints.txt, so the versions are the tested ones).
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mpgpack import __version__
from tests.helpers import REPO, Server, free_port, running

# All that installing mpgpack may put into site-packages: one package and its dist-info.
TOP_LEVEL = {"mpgpack", f"mpgpack-{__version__}.dist-info"}
INSTALL_TIMEOUT_S = 1200     # the build extra brings TensorFlow (~1-3 min from a local index)


@dataclass
class CleanVenv:
    root: Path               # the venv
    cwd: Path                # where its commands run: beside it, far from the checkout

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MPGPACK_TEST_BUNDLE")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}

    def run(self, *cmd: str, timeout: float = 600, cwd: Path | None = None,
            **extra_env: str) -> subprocess.CompletedProcess:
        """Runs a program of the venv (bin/NAME) or any command, in the venv's cwd."""
        exe = str(self.bin / cmd[0]) if (self.bin / cmd[0]).exists() else cmd[0]
        return subprocess.run([exe, *cmd[1:]], cwd=cwd or self.cwd, env=self.env(**extra_env),
                              capture_output=True, text=True, timeout=timeout)

    def pip_install(self, *args: str) -> None:
        proc = self.run("python", "-m", "pip", "install", "-q", "-c",
                        str(REPO / "constraints.txt"), *args, timeout=INSTALL_TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def top_level_entries(self, dist: str = "mpgpack") -> set[str]:
        """The top-level names `dist` installed into site-packages (scripts in bin/ aside)."""
        code = ("from importlib.metadata import files\n"
                f"for f in files({dist!r}):\n"
                "    print(f.parts[0])")
        proc = self.run("python", "-c", code)
        assert proc.returncode == 0, proc.stderr
        return set(proc.stdout.split()) - {".."}


def make_venv(folder: Path) -> CleanVenv:
    folder.mkdir(parents=True, exist_ok=True)
    root, cwd = folder / "venv", folder / "work"
    cwd.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300,
                   cwd=folder, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return CleanVenv(root, cwd)


@contextmanager
def serving(cmd: list[str], cwd: Path, env: dict, log: Path, port: int):
    """Runs a server command until /v2/health/ready answers on `port`; always stops it."""
    url = f"http://127.0.0.1:{port}"
    with running(cmd, log, url + "/v2/health/ready", cwd=cwd, env=env, timeout=60) as proc:
        yield Server(url, proc, log)


def mpgpack_serve(venv: CleanVenv, bundle: Path, log: Path):
    """`mpgpack serve --bundle B` of the venv on a free port."""
    port = free_port()
    return serving([str(venv.bin / "mpgpack"), "serve", "--bundle", str(bundle),
                    "--port", str(port)], venv.cwd, venv.env(), log, port)


if __name__ == "__main__":
    sys.exit("helpers only")
