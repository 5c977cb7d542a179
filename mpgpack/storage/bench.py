"""Timing of the S3 paths against a throwaway SeaweedFS on 127.0.0.1 (prints figures only).

    .venv/bin/python -m mpgpack.storage.bench [BUNDLE] [--repeat N]

publish: upload + re-read of every sha256 + pointer; cold fetch: empty cache, follow
`current`, download, verify; warm fetch: cache hit (manifest compare + re-hash); cold serve:
`mpgpack serve --bundle s3://…/current` with an empty cache, from start to /v2/health/ready.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cold_serve(url: str, env: dict) -> float:
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mpgpack"), "serve", "--bundle", url,
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                    return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("mpgpack serve did not become ready")
                time.sleep(0.05)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", nargs="?", default="dist")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from mpgpack.storage import s3
    from mpgpack.storage.s3_registry import publish
    from mpgpack.storage.seaweed import SeaweedS3
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(args.bundle)
    files = [p for p in bundle.path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"bundle {bundle.path.name}: {len(files)} files, {size / 1e6:.2f} MB")

    with tempfile.TemporaryDirectory(prefix="mpgpack-s3-bench-") as tmp, \
            SeaweedS3(Path(tmp) / "weed", "bench-key", "bench-secret") as server:
        server.client().create_bucket(Bucket="bench")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench-key",
               "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_ENDPOINT_URL": server.endpoint,
               "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        times: dict[str, list[float]] = {"publish": [], "cold fetch": [], "warm fetch": [],
                                         "cold serve (start -> ready)": []}
        for i in range(args.repeat):
            url = f"s3://bench/run{i}/"
            t0 = time.perf_counter()
            publish(bundle.path, url)
            times["publish"].append(time.perf_counter() - t0)
            cache = Path(tmp) / f"cache{i}"
            t0 = time.perf_counter()
            s3.fetch_bundle(url + "current", cache)
            times["cold fetch"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            s3.fetch_bundle(url + "current", cache)
            times["warm fetch"].append(time.perf_counter() - t0)
            times["cold serve (start -> ready)"].append(
                _cold_serve(url + "current", {**env, "MPGPACK_CACHE": str(Path(tmp) / f"serve{i}")}))
    print(f"{'step':<30} {'median s':>9} {'min s':>7} {'max s':>7}  (n={args.repeat}, "
          f"SeaweedFS on 127.0.0.1)")
    for name, values in times.items():
        print(f"{name:<30} {statistics.median(values):>9.2f} {min(values):>7.2f} {max(values):>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
