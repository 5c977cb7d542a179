"""Cold start and peak memory of a fresh process: start to first line printed, max RSS."""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path


def cold_start(cmd: list[str], stdin: bytes | None = None, cpu: int | None = 0,
               env: dict | None = None, timeout: float = 120) -> dict:
    """Starts cmd, times until its first stdout line, waits for exit, reads its peak RSS.

    Pinned to one core (cpu=0) by default, as on a small device. The peak RSS is the one GNU
    time reports for cmd: a process forked by this (large) benchmark process would inherit
    this process's resident pages into its own maximum until it execs, so the measured
    process is started by the small `time` program instead.
    """
    with tempfile.NamedTemporaryFile(prefix="mpg-rss-") as rss_file:
        wrapped = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss_file.name, *cmd]
        if cpu is not None:
            wrapped = ["taskset", "-c", str(cpu), *wrapped]
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        if stdin is not None:
            proc.stdin.write(stdin)
        proc.stdin.close()
        first = proc.stdout.readline()
        t_first = time.perf_counter() - t0
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout)
        if proc.returncode != 0 or not first:
            raise RuntimeError(f"{' '.join(cmd[:3])}… exited {proc.returncode}: {err.decode()[-500:]}")
        max_kb, user, system = Path(rss_file.name).read_text().split()[-3:]
    return {"first_output_s": t_first, "peak_rss_mb": int(max_kb) / 1024,
            "cpu_s": float(user) + float(system),
            "first_line": first.decode().strip()[:200], "lines": 1 + rest.count(b"\n")}
