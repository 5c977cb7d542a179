"""The prediction log: content, rotation, and that a broken disk never fails or blocks a caller.

Tests run as root here (and in CI), where file permissions do not stop a write; an unwritable
path is therefore made with a regular file where the log's folder should be (ENOTDIR), a full
disk with /dev/full (ENOSPC), and a stalled disk with a FIFO nobody reads (open() blocks).
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time

import numpy as np
import pytest

from mpgpack.core.predlog import PredictionLog, rotated_files

NAMES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]
CAR = [4, 97, np.nan, 2130, 14.5, 70, 3]


def cars(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.tile(np.array(CAR, dtype=np.float32), (n, 1))
    X[:, 3] = rng.integers(1600, 5000, n)
    return X


def read_lines(path) -> list[dict]:
    return [json.loads(line) for f in rotated_files(path) for line in f.read_text().splitlines()]


def test_one_json_line_per_car(tmp_path):
    log = PredictionLog(tmp_path / "logs" / "pred.jsonl", NAMES)
    X = cars(3)
    log.record(X, np.array([31.5, 22.25, 18.0]), "abc123", "req-1", 1.23456)
    log.record(X[:1], np.array([30.0]), "abc123", "req-2", 0.5)
    assert log.flush()
    log.close()
    lines = read_lines(tmp_path / "logs" / "pred.jsonl")
    assert len(lines) == 4 and log.stats()["written"] == 4
    first = lines[0]
    assert set(first) == {"time", "request_id", "model_version", "row", "inputs", "output", "latency_ms"}
    assert first["request_id"] == "req-1" and first["model_version"] == "abc123"
    assert first["inputs"] == {"cylinders": 4.0, "displacement": 97.0, "horsepower": None,
                               "weight": float(X[0, 3]), "acceleration": 14.5, "model_year": 70.0,
                               "origin": 3.0}
    assert [ln["row"] for ln in lines] == [0, 1, 2, 0]
    assert [ln["output"] for ln in lines] == [31.5, 22.25, 18.0, 30.0]
    assert first["latency_ms"] == 1.235 and first["time"].endswith("+00:00")


def test_rotation_keeps_size_and_backups(tmp_path):
    path = tmp_path / "pred.jsonl"
    log = PredictionLog(path, NAMES, max_bytes=4096, backups=2)
    for i in range(120):
        log.record(cars(1, i), np.array([20.0]), "v1", f"r{i}", 0.1)
    log.close()
    files = rotated_files(path)
    assert [f.name for f in files] == ["pred.jsonl.2", "pred.jsonl.1", "pred.jsonl"]
    assert all(f.stat().st_size <= 4096 for f in files)
    lines = read_lines(path)
    ids = [int(ln["request_id"][1:]) for ln in lines]
    assert ids == sorted(ids) and ids[-1] == 119       # oldest first, newest kept
    assert log.stats()["rotations"] >= 3 and len(ids) < 120   # the oldest file was let go
    assert log.stats()["errors"] == 0


def test_unwritable_path_is_counted_and_logged_once(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be\n")
    log = PredictionLog(blocker / "pred.jsonl", NAMES)
    with caplog.at_level(logging.WARNING, logger="mpgpack.predlog"):
        for i in range(50):
            log.record(cars(2, i), np.array([20.0, 21.0]), "v1", f"r{i}", 0.2)   # never raises
            log.flush()
    s = log.stats()
    assert s["written"] == 0 and s["dropped"] == 100 and s["errors"] >= 1 and s["failing"]
    assert "ENOTDIR" in s["last_error"] or "EEXIST" in s["last_error"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cannot be written" in errors[0].getMessage()
    # the disk is fixed: writing resumes by itself, and says so
    blocker.unlink()
    with caplog.at_level(logging.WARNING, logger="mpgpack.predlog"):
        log.record(cars(1), np.array([20.0]), "v1", "after", 0.2)
        log.flush()
    log.close()
    assert log.stats()["written"] == 1 and not log.stats()["failing"]
    assert read_lines(blocker / "pred.jsonl")[0]["request_id"] == "after"
    assert any("writing again" in r.getMessage() for r in caplog.records)


def test_disk_full_is_counted_and_the_device_left_alone():
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    log = PredictionLog("/dev/full", NAMES, max_bytes=1024)
    for i in range(200):
        log.record(cars(4, i), np.arange(4.0), "v1", f"r{i}", 0.2)
    assert log.flush()
    log.close()
    s = log.stats()
    assert s["written"] == 0 and s["dropped"] == 800 and s["errors"] >= 1
    assert s["last_error"].startswith("ENOSPC")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)      # not rotated away
    assert not os.path.exists("/dev/full.1")


def test_a_stalled_disk_never_blocks_the_caller(tmp_path):
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)             # opening it for writing blocks until a reader comes
    log = PredictionLog(fifo, NAMES, queue_size=100)
    X, y = cars(1), np.array([20.0])
    started = time.perf_counter()
    for i in range(5000):
        log.record(X, y, "v1", f"r{i}", 0.1)
    spent = time.perf_counter() - started
    s = log.stats()
    assert s["queued"] <= 100 and s["dropped"] >= 4800     # oldest dropped, counted
    assert spent < 5.0, f"5000 record() calls took {spent:.1f} s while the disk was stalled"
    # let the writer go: read the FIFO until the writer closes it
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert log.flush(timeout=10)
    log.close()
    reader.join(10)
    lines = got[0].decode().splitlines()
    # at most one batch in the writer's hands (taken before open() blocked) + a full queue
    assert len(lines) == log.stats()["written"] and 1 <= len(lines) <= 200
    assert log.stats()["written"] + log.stats()["dropped"] == 5000
    assert json.loads(lines[-1])["request_id"] == "r4999"    # the newest survived


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError):
        PredictionLog(tmp_path / "x", NAMES, max_bytes=10)
