"""The connection limits of `mpgpack serve` (issue 15, items 5 and 6), with real sockets on
127.0.0.1: a huge or trickled header, silent connections, a full worker, SIGTERM with a slow
upload in flight. Each scenario also measures what it cost everyone else (the worker's CPU,
other clients' latency) and prints the figures."""
from __future__ import annotations

import json
import signal
import socket
import statistics
import threading
import time

import httpx
import psutil
import pytest

from tests.helpers import running_server

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}
LIMIT_FLAGS = ("--no-access-log", "--request-timeout", "2", "--idle-timeout", "1",
               "--keep-alive-timeout", "1", "--max-connections", "40")


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("limits"), *LIMIT_FLAGS) as srv:
        yield srv


def _port(srv) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def _connect(srv, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", _port(srv)), timeout=timeout)


def _read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one response with content-length; (0, {}, b"") if the server
    closed the connection without one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}, b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


class Prober:
    """Another client: a GET /v2/health/live every 20 ms on its own keep-alive connection,
    recording latencies, while a scenario runs."""

    def __init__(self, srv):
        self.srv, self.latencies, self.failures = srv, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with httpx.Client(base_url=self.srv.url, timeout=10) as client:
            while not self._stop.wait(0.02):
                t0 = time.perf_counter()
                try:
                    client.get("/v2/health/live").raise_for_status()
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(15)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        return (f"{len(lat)} probes, median {statistics.median(lat):.1f} ms, "
                f"max {lat[-1]:.1f} ms, {len(self.failures)} failed")


def _cpu(proc) -> float:
    p = psutil.Process(proc.pid)
    times = [p.cpu_times()] + [c.cpu_times() for c in p.children(recursive=True)]
    return sum(t.user + t.system for t in times)


def _send_quietly(sock: socket.socket, data: bytes, piece: int = 1 << 16) -> int:
    """Sends data until the server closes; returns the bytes it took."""
    sent = 0
    try:
        for i in range(0, len(data), piece):
            sock.sendall(data[i:i + piece])
            sent += len(data[i:i + piece])
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


# -- item 5: the request head -----------------------------------------------------------------
def test_huge_header_is_431_at_once_and_costs_the_worker_nothing(server):
    """The issue's 96 MB header cost 9.8 s of parser CPU and 2-3 s for everyone else; a 16 MB
    one was accepted. Now: 431 after the first ~32 KiB, the rest never parsed."""
    cpu0 = _cpu(server.proc)
    with Prober(server) as probe:
        time.sleep(0.2)
        t0 = time.perf_counter()
        with _connect(server) as sock:
            sent = _send_quietly(sock, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: "
                                 + b"a" * (16 << 20))
            status, headers, body = _read_response(sock)
        elapsed = time.perf_counter() - t0
        time.sleep(0.2)
    cpu = _cpu(server.proc) - cpu0
    print(f"\n16 MB header: {status} after {elapsed * 1000:.0f} ms, {sent >> 10} KiB taken; worker "
          f"CPU {cpu * 1000:.0f} ms; other client: {probe.summary()}")
    assert status == 431 and headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("request headers: over the limit of 32768 bytes")
    assert sent < 16 << 20                    # refused before the client finished sending
    # (the issue: 2.3-3.0 s for everyone else; a loaded test machine adds its own hiccups)
    assert cpu < 1.0 and not probe.failures
    assert statistics.median(probe.latencies) < 50 and max(probe.latencies) < 1000


def test_header_size_and_count_limits_exactly(server):
    def ask(extra: bytes) -> int:
        with _connect(server) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            return _read_response(sock)[0]
    assert ask(b"X-A: " + b"a" * 30_000 + b"\r\n") == 200       # under 32 KiB in all
    assert ask(b"X-A: " + b"a" * 33_000 + b"\r\n") == 431
    assert ask(b"".join(b"X-%d: 1\r\n" % i for i in range(98))) == 200   # 100 with Host
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n"
                     + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n")
        status, _, body = _read_response(sock)
    assert status == 431 and json.loads(body) == {"error": "request headers: more than 100 headers"}


def test_slow_header_is_408_after_the_request_timeout(server):
    """A header trickled a byte at a time (slowloris) is cut at --request-timeout (2 s here)
    although bytes keep arriving; other clients do not notice."""
    cpu0 = _cpu(server.proc)
    with Prober(server) as probe, _connect(server) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nX-Slow: ")
        try:
            while time.perf_counter() - t0 < 5:
                sock.sendall(b"a")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = _read_response(sock)
        elapsed = time.perf_counter() - t0
    cpu = _cpu(server.proc) - cpu0
    print(f"\nslow header: {status} after {elapsed:.2f} s; worker CPU {cpu * 1000:.0f} ms; "
          f"other client: {probe.summary()}")
    assert status == 408 and "within 2 s" in json.loads(body)["error"]
    assert 1.9 <= elapsed < 3.5
    assert not probe.failures and statistics.median(probe.latencies) < 20


def test_half_sent_body_is_408_after_the_request_timeout(server):
    with _connect(server) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"cylinders\": 8")
        status, _, body = _read_response(sock)
    assert status == 408 and 1.9 <= time.perf_counter() - t0 < 3.5


# -- item 6: idle connections, the connection cap ----------------------------------------------
def test_silent_connection_is_closed_after_the_idle_timeout(server):
    with _connect(server) as sock:
        t0 = time.perf_counter()
        assert sock.recv(100) == b""              # closed by the server, nothing said
        assert 0.9 <= time.perf_counter() - t0 < 2.5


def test_keep_alive_connection_is_closed_after_its_timeout(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[0] == 200
        t0 = time.perf_counter()
        assert sock.recv(100) == b""
        assert 0.9 <= time.perf_counter() - t0 < 2.5


def test_full_worker_answers_503_then_recovers_when_the_silent_ones_time_out(server):
    """60 silent connections against a cap of 40: a real client gets a clear 503 with
    Retry-After at once (not a hang), and is served again once the idle timeout (1 s) has
    closed the silent ones."""
    silent = [_connect(server) for _ in range(60)]
    try:
        time.sleep(0.1)
        t0 = time.perf_counter()
        with _connect(server) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = _read_response(sock)
        busy_ms = (time.perf_counter() - t0) * 1000
        assert status == 503 and headers["retry-after"] == "1", (status, body)
        assert "limit of 40 connections" in json.loads(body)["error"]
        time.sleep(1.6)
        t0 = time.perf_counter()
        r = httpx.post(server.url + "/predict", json=CAR, timeout=10)
        print(f"\n60 silent connections, cap 40: 503 in {busy_ms:.1f} ms; after the idle "
              f"timeout: {r.status_code} in {(time.perf_counter() - t0) * 1000:.1f} ms")
        assert r.status_code == 200
        assert all(s.recv(10) == b"" for s in silent)       # every silent one was closed
    finally:
        for s in silent:
            s.close()


# -- item 6: SIGTERM ---------------------------------------------------------------------------
def _slow_upload(srv, body: bytes, first: int, result: dict, pause: float) -> threading.Thread:
    """A POST /predict whose body arrives in two parts, `pause` seconds apart."""
    def run():
        try:
            with _connect(srv, timeout=30) as sock:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                             b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:first])
                result["started"] = time.perf_counter()
                time.sleep(pause)
                _send_quietly(sock, body[first:])
                result["status"], _, result["body"] = _read_response(sock)
        except OSError as exc:
            result["error"] = repr(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _refused(srv) -> bool:
    try:
        with _connect(srv, timeout=2) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            return _read_response(sock)[0] == 0
    except OSError:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_upload_in_flight_and_refuses_new_connections(bundle_dir, tmp_path,
                                                                            workers):
    """SIGTERM while a slow upload is half sent: the port closes at once (new connections are
    refused, not left unanswered), the upload still gets its answer, and the server exits."""
    body = json.dumps(CAR).encode()
    with running_server(bundle_dir, tmp_path, "--no-access-log", "--workers", str(workers),
                        "--shutdown-timeout", "5") as srv:
        result: dict = {}
        thread = _slow_upload(srv, body, 10, result, pause=1.5)
        time.sleep(0.3)
        t0 = time.perf_counter()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.4)
        refused = _refused(srv)
        refused_after = time.perf_counter() - t0
        thread.join(20)
        srv.proc.wait(20)
        exited = time.perf_counter() - t0
    print(f"\nSIGTERM ({workers} worker(s)), upload in flight: new connection refused "
          f"{refused_after:.2f} s after the signal: {refused}; upload answered "
          f"{result.get('status')}; exit after {exited:.2f} s")
    assert refused
    assert result.get("status") == 200, result
    assert exited < 5


def test_sigterm_deadline_cuts_an_upload_that_never_ends(bundle_dir, tmp_path):
    """--shutdown-timeout 2 with a request-read timeout longer than that: the server exits
    within the deadline (not after the 24.9 s of the issue, nor never)."""
    body = json.dumps({"instances": [CAR] * 50}).encode()
    with running_server(bundle_dir, tmp_path, "--no-access-log", "--shutdown-timeout", "2",
                        "--request-timeout", "60") as srv:
        result: dict = {}
        _slow_upload(srv, body, 100, result, pause=30)
        time.sleep(0.3)
        t0 = time.perf_counter()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(20)
        exited = time.perf_counter() - t0
    print(f"\nSIGTERM with an upload that never ends, deadline 2 s: exit after {exited:.2f} s")
    assert 1.5 <= exited < 4.5


def test_limit_flags_are_checked(bundle_dir):
    from tests.helpers import run_cli
    r = run_cli("serve", "--bundle", str(bundle_dir), "--request-timeout", "0")
    assert r.returncode != 0 and "--request-timeout must be more than 0 seconds" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("serve", "--help")
    for flag in ("--max-header-bytes", "--max-headers", "--request-timeout", "--idle-timeout",
                 "--keep-alive-timeout", "--max-connections", "--shutdown-timeout"):
        assert flag in r.stdout
