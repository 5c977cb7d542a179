"""Cold start and peak memory of a fresh process: start to first line printed, max RSS."""
from __future__ import annotations

import os
import subprocess
import time


def cold_start(cmd: list[str], stdin: bytes | None = None, cpu: int | None = 0,
               env: dict | None = None, timeout: float = 120) -> dict:
    """Starts cmd, times until its first stdout line, waits for exit, reads its peak RSS.

    Pinned to one core (cpu=0) by default, as on a small device. Peak RSS comes from the
    kernel's accounting of that one child (wait4), so nothing else is counted.
    """
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=pre, env=env)
    if stdin is not None:
        proc.stdin.write(stdin)
    proc.stdin.close()
    first = proc.stdout.readline()
    t_first = time.perf_counter() - t0
    rest = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not first:
        raise RuntimeError(f"{' '.join(cmd[:3])}… exited {proc.returncode}: {err.decode()[-500:]}")
    return {"first_output_s": t_first, "peak_rss_mb": usage.ru_maxrss / 1024,
            "first_line": first.decode().strip()[:200], "lines": 1 + rest.count(b"\n")}
