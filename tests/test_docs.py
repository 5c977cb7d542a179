"""Every path a README or doc names exists: relative links, and backticked paths into the
repository (`mpgpack/…`, `tests/…`, or a file next to the README), so moved or renamed files
cannot leave stale references behind."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO

SKIP = ("node_modules", ".", "dist", "build", "bench-out")   # installed, hidden or generated
DOCS = sorted(p for p in REPO.rglob("*.md")
              if not any(part.startswith(SKIP) for part in p.relative_to(REPO).parts))
# First components of repository paths: today's top-level entries, and the folders that moved
# under mpgpack/ (so `train/…` or `python -m benchmarks.…` is caught as stale).
TOP = {p.name for p in REPO.iterdir() if not p.name.startswith(".")} | {
    "train", "export", "targets", "benchmarks", "data"}
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)   # fenced blocks and inline code
PATHLIKE = re.compile(r"[A-Za-z0-9_.\-/]+")
MODULE = re.compile(r"python -m ([A-Za-z_][\w.]*)")


def links(text: str) -> set[str]:
    return {t.split("#")[0] for t in LINK.findall(text)
            if not re.match(r"[a-z]+:", t) and not t.startswith("#")}


def repo_paths(text: str, here: Path) -> set[str]:
    """Backticked words that read as paths into this repository: their first part is a top-level
    entry, or an entry of the README's own folder (when that folder is not the root)."""
    local = {p.name for p in here.iterdir()} if here != REPO else set()
    found = set()
    for fenced, inline in CODE.findall(text):
        for word in (fenced or inline).split():
            word = word.rstrip(".,;:)")
            if "/" not in word or not PATHLIKE.fullmatch(word) or word.startswith("/"):
                continue
            first = word.split("/")[0]
            if first in TOP or first in local:
                found.add(word)
    return found


def stale(doc: Path) -> list[str]:
    """What doc names that does not exist, relative to its folder or to the repository."""
    text, here = doc.read_text(), doc.parent
    missing = sorted(t for t in links(text) if t and not (here / t).exists())
    missing += sorted(w for w in repo_paths(text, here)
                      if not (REPO / w).exists() and not (here / w).exists())
    missing += sorted(f"python -m {m}" for m in MODULE.findall(text)
                      if m.split(".")[0] not in {"pytest", "pip", "venv", "build", "http"}
                      and not _module_exists(m))
    return missing


def _module_exists(name: str) -> bool:
    parts = REPO.joinpath(*name.split("."))
    return parts.with_suffix(".py").exists() or (parts / "__init__.py").exists()


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_named_paths_exist(doc):
    assert not stale(doc), f"{doc.relative_to(REPO)} names what does not exist: {stale(doc)}"


def test_stale_references_are_caught(tmp_path):
    """The old top-level layout, a missing file next to the README and a broken link are named;
    today's paths are not."""
    (tmp_path / "src").mkdir()
    doc = tmp_path / "README.md"
    doc.write_text("See `train/data.py`, `src/gone.js`, [the page](../nowhere.md),\n```sh\n"
                   "python -m benchmarks.api_load\n"
                   ".venv/bin/python -m pytest tests/test_gone.py\n```\n"
                   "and `mpgpack/train/data.py`, `src`, [this](README.md),\n"
                   "`python -m mpgpack.bench.api_load`.\n")
    assert stale(doc) == ["../nowhere.md", "src/gone.js", "tests/test_gone.py", "train/data.py",
                          "python -m benchmarks.api_load"]
