"""One socket write per response: the response head goes out together with its body.

uvicorn writes a response's status line and headers in one `transport.write` and its body in
another. On loopback (and on any fast link) each write is a `send` system call, a TCP segment
and a wake-up of the client, so a small JSON answer cost the server two sends and the client
two reads. Profiled under load, that socket write was the largest single item of a one-car
request (~37 % of the worker's event loop).

`CoalescingTransport` holds the first write of a response (the head) and sends it joined with
the next write (the body, written in the same step of the same task), so a small response is
one `send`. Nothing waits on it: a held write is flushed when the response completes, when the
connection is closed, and, as a safety net for a head with no body in the same step (a
streamed answer, a `100 Continue`), at the next turn of the event loop. Everything other than
`write` and `close` is the real transport's.
"""
from __future__ import annotations

import asyncio


class CoalescingTransport:
    __slots__ = ("_transport", "_loop", "_held", "_armed")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._armed = False           # set by arm() as each response's task starts

    def arm(self) -> None:
        """A response is about to start: hold its first write (its head)."""
        self._armed = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._armed:
            self._armed = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)
