"""The HTTP connection limits uvicorn does not have, as its own httptools protocol.

uvicorn (0.54, httptools parser) has a keep-alive timeout, a concurrency cap and a graceful
shutdown deadline (set from ApiSettings in cli.py), but no limit on the request head and no
timeout on reading a request: a client could send a 96 MB header (httptools joins a header's
pieces with `bytes +=`, so the parser's CPU grows with the square of its size and the worker
stalls for seconds), trickle a header or a body forever, or open a connection and say nothing.
This protocol adds, per connection:

- a limit on the request head (request line + headers, in bytes) and on the number of headers,
  answered 431 before the parser is fed much past the limit (so a huge header costs no CPU);
- a request-read timeout: the whole request, head and body, must arrive within
  `request_timeout` seconds of its first byte (408 if no answer was started, then close);
- an idle timeout for a new connection that has not sent a byte (uvicorn arms its keep-alive
  timeout only after a first response);
- a clear JSON 503 (with Retry-After) instead of uvicorn's plain "Service Unavailable" when the
  worker's connection cap (uvicorn's `limit_concurrency`) is reached;
- one socket write per small response instead of two (http_writes.py).

The limits travel on the uvicorn Config (`config.mpg_limits`), which is pickled to the workers
of `serve --workers N`; the protocol class itself is found by import.
"""
from __future__ import annotations

import json

import httptools

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mpgpack.targets.api.http_writes import CoalescingTransport
from mpgpack.targets.api.limits import ConnectionLimits

CONFIG_ATTR = "mpg_limits"
RETRY_AFTER_SECONDS = 1
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the reason is on the protocol."""


def _json_response(status: int, message: str) -> bytes:
    """A whole response written straight to the socket (no app is running for it)."""
    body = json.dumps({"error": message}).encode()
    head = [b"HTTP/1.1 %d %s" % (status, REASONS[status]),
            b"content-type: application/json",
            b"content-length: %d" % len(body), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = getattr(config, CONFIG_ATTR, None) or ConnectionLimits()
        self._refusal: tuple[int, str] | None = None
        self._in_head = False
        self._head_stream_bytes = 0      # bytes received while the head is incomplete
        self._head_bytes = 0             # exact: url + "name: value\r\n" per header
        self._header_count = 0
        self._read_timer = None

    # ---- connection ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # Everything of uvicorn's that writes (the request cycles included) writes through it;
        # flow control (uvicorn's FlowControl) keeps the real transport.
        self.transport = CoalescingTransport(transport, self.loop)
        # Idle from the start: the same handler as keep-alive, cancelled by the first byte.
        self.timeout_keep_alive_task = self.loop.call_later(self.limits.idle_timeout,
                                                            self.timeout_keep_alive_handler)

    def connection_lost(self, exc) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:   # as uvicorn does
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:     # a limit tripped inside a parser callback
                self._refuse(*self._refusal)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and not self.transport.is_closing():
            # Counted after feeding: at most one read (<= 256 KiB) past the limit is parsed,
            # and a read that also holds the end of the head is not mistaken for head bytes
            # (the exact count in on_url/on_header applies to it).
            self._head_stream_bytes += len(data)
            if self._head_stream_bytes > self.limits.max_header_bytes:
                self._refuse(431, self._too_large_message())

    # ---- parser callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_stream_bytes = self._head_bytes = self._header_count = 0
        self._cancel_read_timer()
        self._read_timer = self.loop.call_later(self.limits.request_timeout, self._read_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, f"request headers: more than {self.limits.max_headers} headers")
            raise _Refused
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_read_timer()
        super().on_message_complete()

    def _count_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, self._too_large_message())
            raise _Refused

    def _too_large_message(self) -> str:
        return (f"request headers: over the limit of {self.limits.max_header_bytes} bytes "
                "(request line and headers together)")

    # ---- answers -----------------------------------------------------------------------------
    def _start_asgi_task(self, cycle, app) -> None:
        if app is service_unavailable:        # uvicorn's cap (limit_concurrency) was reached
            app = self._busy
        self.transport.arm()                  # this answer's head waits for its body
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        self.transport.flush()                # a head with no body (HEAD, 204, 304) goes now
        super().on_response_complete()

    async def _busy(self, scope, receive, send) -> None:
        body = json.dumps({"error": f"server busy: this worker has reached its limit of "
                                    f"{self.limits.max_connections} connections; retry in "
                                    f"{RETRY_AFTER_SECONDS} s"}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
            (b"retry-after", b"%d" % RETRY_AFTER_SECONDS), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not self._in_head:
            self.transport.close()             # an answer is on its way: do not mix in a 408
            return
        self._refuse(408, f"request: not received in full within {self.limits.request_timeout:g} "
                          "s of its first byte; send it faster or in smaller parts")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` in place of the request and close the connection."""
        self._refusal = (status, message)
        self._cancel_read_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app is waiting for the rest of the body: it is told the client left, and
            # its answer, if any, goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if cycle is None or not cycle.response_started or cycle.response_complete:
            self.transport.write(_json_response(status, message))
        self.transport.close()

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
