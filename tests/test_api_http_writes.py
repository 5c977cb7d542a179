"""One socket write per response (http_writes.py), on a real `mpgpack serve` with raw sockets.

The client counts the TCP data segments it receives (the kernel's tcpi_data_segs_in): a small
response written head and body apart arrives as two segments, written together as one. The
rest checks that holding the head never changes what a client gets: HEAD answers, pipelined
requests in order, `Expect: 100-continue` answered at once, a large file streamed whole.
"""
from __future__ import annotations

import hashlib
import json
import socket
import struct
import time

import pytest

from tests.helpers import running_server
from tests.test_api_limits import CAR, _read_response

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in is the u32 at byte 152 (Linux >= 4.6).
TCP_INFO_BYTES, DATA_SEGS_IN = 160, 152


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("writes"), "--no-access-log") as srv:
        yield srv


def _connect(srv) -> socket.socket:
    port = int(srv.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
    return struct.unpack_from("I", info, DATA_SEGS_IN)[0]


def _read_buffered(stream) -> tuple[int, dict, bytes]:
    """One response from a buffered reader of the socket: pipelined answers may arrive in one
    read, so nothing past a response's own bytes is dropped."""
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, value = line.decode("latin-1").split(":", 1)
        headers[name.lower()] = value.strip()
    return status, headers, stream.read(int(headers.get("content-length", 0)))


def _request(method: str, path: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_small_response_arrives_as_one_segment(server):
    one = json.dumps(CAR).encode()
    bad = json.dumps({**CAR, "origin": 9}).encode()
    cases = [("POST", "/predict", one, 200), ("POST", "/predict", bad, 422),
             ("GET", "/metadata", b"", 200), ("GET", "/v2/health/ready", b"", 200),
             ("GET", "/no/such/path", b"", 404)]
    with _connect(server) as sock:
        for _ in range(10):
            for method, path, body, status in cases:
                before = _data_segments_in(sock)
                sock.sendall(_request(method, path, body))
                got, headers, content = _read_response(sock)
                assert got == status, (method, path, content[:200])
                assert len(content) == int(headers["content-length"])
                time.sleep(0.002)     # nothing else in flight: every segment is counted
                segments = _data_segments_in(sock) - before
                assert segments == 1, f"{method} {path}: {segments} segments for one response"


def test_head_pipelined_and_100_continue_answers_are_whole_and_in_order(server):
    one = json.dumps(CAR).encode()
    with _connect(server) as sock:
        # HEAD: a head and no body, sent when the response completes (nothing waits for a body)
        sock.sendall(_request("HEAD", "/index.html"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
        # three requests in one send: three answers, in order
        sock.sendall(_request("POST", "/predict", one, "X-Request-ID: first")
                     + _request("GET", "/v2/health/live", b"", "X-Request-ID: second")
                     + _request("POST", "/predict", one, "X-Request-ID: third"))
        ids = []
        with sock.makefile("rb") as stream:
            for _ in range(3):
                status, headers, content = _read_buffered(stream)
                assert status == 200 and len(content) == int(headers["content-length"])
                ids.append(headers["x-request-id"])
        assert ids == ["first", "second", "third"]
        # Expect: 100-continue: the interim answer comes before the body is sent
        head = _request("POST", "/predict", b"", "Expect: 100-continue").replace(
            b"Content-Length: 0", f"Content-Length: {len(one)}".encode())
        sock.sendall(head)
        t0 = time.perf_counter()
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim[:80]
        assert time.perf_counter() - t0 < 0.5
        sock.sendall(one)
        status, _, content = _read_response(sock)
        assert status == 200 and json.loads(content)["predictions"][0]["mpg"] > 0


def test_a_large_file_streams_whole(server, bundle_dir):
    web = bundle_dir / "web"
    largest = max((p for p in web.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert largest.stat().st_size > 4 << 16          # several chunks of Starlette's 64 KiB
    with _connect(server) as sock:
        for _ in range(2):                             # and the connection goes on after it
            sock.sendall(_request("GET", "/" + largest.relative_to(web).as_posix()))
            status, headers, content = _read_response(sock)
            assert status == 200 and len(content) == largest.stat().st_size
            assert hashlib.sha256(content).digest() == hashlib.sha256(largest.read_bytes()).digest()
