"""Reading a JSON request body within limits, before any parsing happens.

Limits are checked on the declared Content-Length first (refuse without reading), then while
streaming (chunked uploads declare no length), so a huge body never sits in memory.
"""
from __future__ import annotations

from starlette.requests import Request

from mpgpack.targets.api.errors import ApiError

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024   # 10,000 cars of compact JSON fit; nothing much more


def _mib(n: int) -> str:
    return f"{n / 1048576:g} MiB" if n >= 1048576 else f"{n} bytes"


async def read_json_body(request: Request, max_bytes: int, untyped_is_json: bool = False,
                         also_accept: tuple[bytes, ...] = ()) -> bytes:
    """untyped_is_json: a body without Content-Type is JSON (V2 clients send none);
    also_accept: other media types taken as they are (the V2 binary extension's)."""
    # Straight from the ASGI scope and receive channel: Starlette's Headers and stream()
    # helpers are convenient but cost more than validating a car.
    ctype = declared = None
    for key, value in request.scope["headers"]:
        if key == b"content-type":
            ctype = value
        elif key == b"content-length":
            declared = value
    if ctype is None and not untyped_is_json:
        raise ApiError(415, "header Content-Type: missing; send the body as application/json")
    media = b"application/json" if ctype is None else ctype.split(b";", 1)[0].strip().lower()
    if media != b"application/json" and media not in also_accept:
        raise ApiError(415, f"header Content-Type: must be application/json, got "
                            f"{media.decode('latin-1')!r}")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"body: {int(declared)} bytes is over the limit of {_mib(max_bytes)}; "
                            "split the request")
    chunks, total = [], 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "body: the client disconnected before sending it all")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > max_bytes:
            raise ApiError(413, f"body: over the limit of {_mib(max_bytes)}; split the request")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body or body.isspace():
        raise ApiError(400, "body: empty; send a JSON object")
    return body
