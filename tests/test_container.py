"""The container really starts: deploy/Dockerfile replayed without a container engine.

The test reads the Dockerfile itself: the build context its .dockerignore lets through, its
COPY lines (those files only, into a folder standing for the image's root), its RUN lines
(`pip install …` into a clean venv far from the checkout, `rm -rf` in that folder; any other
command fails the test until it is taught here), its ENV, and its ENTRYPOINT + CMD, run with the
session's bundle for /srv/bundle, 127.0.0.1 and a free port, until /v2/health/ready answers and
a prediction works; then the HEALTHCHECK command must pass. It is the check that would have
caught a package needing a file the image does not copy. (Where a container engine can run
containers, `docker build -f deploy/Dockerfile --build-arg BUNDLE=… .` is the same check.)
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.clean_venv import TOP_LEVEL, make_venv, serving
from tests.helpers import REPO, free_port
from tests.helpers import post_json

pytestmark = pytest.mark.slow

DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / "deploy" / "Dockerfile.dockerignore"
BUNDLE_IN_IMAGE = "/srv/bundle"
CAR = {"cylinders": 4, "displacement": 97.0, "horsepower": None, "weight": 2130.0,
       "acceleration": 14.5, "model_year": 70, "origin": 3}


# --- reading the Dockerfile ----------------------------------------------------------------

@dataclass
class Image:
    base: str = ""
    env: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)       # ("COPY", [srcs], dest, workdir) | ("RUN", cmd, workdir)
    workdir: str = "/"
    entrypoint: list = field(default_factory=list)
    cmd: list = field(default_factory=list)
    healthcheck: list = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def parse_dockerfile(text: str) -> Image:
    image = Image()
    for word, rest in instructions(text):
        if word == "FROM":
            assert not image.base, "one stage expected (teach this test multi-stage builds)"
            image.base = rest
        elif word == "ENV":
            image.env.update(dict(kv.split("=", 1) for kv in shlex.split(rest)))
        elif word == "WORKDIR":
            image.workdir = rest if rest.startswith("/") else f"{image.workdir.rstrip('/')}/{rest}"
        elif word == "COPY":
            *srcs, dest = shlex.split(rest)
            assert not any(s.startswith("--") for s in srcs), f"COPY option not handled: {rest}"
            image.steps.append(("COPY", srcs, dest, image.workdir))
        elif word == "RUN":
            image.steps.append(("RUN", rest, image.workdir))
        elif word == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif word == "CMD":
            image.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            image.healthcheck = json.loads(rest[rest.index(" CMD ") + 5:])
    return image


# --- the build context -------------------------------------------------------------------

def _pattern(glob: str) -> re.Pattern:
    rx = re.escape(glob.strip("/")).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.compile(rx.replace(r"\?", "[^/]"))


def ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    prefixes = ["/".join(rel.split("/")[:i]) for i in range(1, rel.count("/") + 2)]
    verdict = False
    for exclude, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            verdict = exclude
    return verdict


def build_context(root: Path, ignore_text: str) -> list[str]:
    lines = [l.strip() for l in ignore_text.splitlines() if l.strip() and not l.startswith("#")]
    rules = [(not line.startswith("!"), _pattern(line.lstrip("!"))) for line in lines]
    reincluded = [line[1:].strip("/") for line in lines if line.startswith("!")]
    files = []
    for folder, dirs, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        rel = (lambda name: name if base == "." else f"{base}/{name}")
        # Skip an ignored folder unless a "!" pattern re-includes something inside it.
        dirs[:] = [d for d in dirs if d != ".git" and not (
            ignored(rel(d), rules) and not any(r.startswith(rel(d) + "/") for r in reincluded))]
        files += [rel(n) for n in names if not ignored(rel(n), rules)]
    return sorted(files)


# --- replaying it --------------------------------------------------------------------------

def in_root(root: Path, image_path: str, workdir: str) -> Path:
    absolute = image_path if image_path.startswith("/") else f"{workdir.rstrip('/')}/{image_path}"
    return root / absolute.lstrip("/")


def copy_step(root: Path, context: list[str], srcs: list[str], dest: str, workdir: str) -> list[str]:
    target = in_root(root, dest, workdir)
    copied = []
    for src in srcs:
        src = src.rstrip("/")
        matched = [f for f in context if f == src or f.startswith(src + "/")]
        assert matched, f"COPY {src}: nothing in the build context (check the .dockerignore)"
        for rel in matched:
            out = target / Path(rel).name if rel == src else target / Path(rel).relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, out)
            copied.append(rel)
    return copied


def run_step(root: Path, venv, command: str, workdir: str, env: dict) -> None:
    for part in (p.strip() for p in command.split("&&")):
        words = shlex.split(part)
        if words[:2] == ["pip", "install"]:
            proc = venv.run("python", "-m", "pip", "install", "-q", *words[2:], timeout=1200,
                            cwd=in_root(root, ".", workdir), **env)
            assert proc.returncode == 0, f"{part}:\n{proc.stderr[-3000:]}"
        elif words[:2] == ["rm", "-rf"]:
            for path in words[2:]:
                shutil.rmtree(in_root(root, path, workdir), ignore_errors=True)
        elif words[0] in ("cd", "useradd"):   # cwd is per step; users do not exist here
            continue
        else:
            pytest.fail(f"the Dockerfile runs {part!r}: teach tests/test_container.py to replay it")


def container_command(image: Image, venv, bundle: Path, port: int) -> list[str]:
    cmd = image.entrypoint + image.cmd
    cmd = [str(bundle) if a == BUNDLE_IN_IMAGE else "127.0.0.1" if a == "0.0.0.0" else a for a in cmd]
    cmd[cmd.index("--port") + 1] = str(port)
    return [str(venv.bin / cmd[0]), *cmd[1:]]


# --- the tests -----------------------------------------------------------------------------

def test_dockerfile_parsing_and_context():
    image = parse_dockerfile(DOCKERFILE.read_text())
    assert image.base == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    context = build_context(REPO, DOCKERIGNORE.read_text())
    assert "mpgpack/cli.py" in context and "pyproject.toml" in context
    assert not [f for f in context if "node_modules" in f or "/reference/" in f
                or f.startswith(("tests/", ".venv")) or f.endswith(".pyc")]
    assert image.entrypoint and image.cmd and image.healthcheck


def test_the_image_starts_and_predicts(bundle_dir, tmp_path_factory):
    image = parse_dockerfile(DOCKERFILE.read_text())
    folder = tmp_path_factory.mktemp("container")
    root, venv = folder / "image-root", make_venv(folder)
    context = build_context(REPO, DOCKERIGNORE.read_text())
    for step in image.steps:
        if step[0] == "COPY" and not any("${" in s for s in step[1]):   # the bundle: mounted below
            copy_step(root, context, *step[1:])
        elif step[0] == "RUN":
            run_step(root, venv, step[1], step[2], image.env)
    assert not (root / "src").exists()
    assert venv.top_level_entries() == TOP_LEVEL

    workdir = in_root(root, ".", image.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    where = venv.run("python", "-c", "import mpgpack; print(mpgpack.__file__)", cwd=workdir)
    assert where.stdout.startswith(str(venv.root)), where.stdout + where.stderr
    port = free_port()
    env = venv.env(**image.env)
    with serving(container_command(image, venv, bundle_dir, port), workdir, env,
                 folder / "serve.log", port) as srv:
        status, body = post_json(srv.url + "/predict", CAR)
        assert status == 200 and 10 < body["predictions"][0]["mpg"] < 50, body
        check = [str(venv.bin / image.healthcheck[0]),
                 *(a.replace(":8000/", f":{port}/") for a in image.healthcheck[1:])]
        health = venv.run(*check, cwd=workdir)
        assert health.returncode == 0, health.stderr
