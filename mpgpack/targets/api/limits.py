"""The connection limits of `mpgpack serve`, with their defaults: one definition, read by the
command line (cli.py), the settings (settings.py) and the HTTP protocol (http_limits.py).
Stdlib only, so `mpgpack --help` does not import the server."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024    # request line + headers (431 above)
    max_headers: int = 100               # header lines (431 above)
    request_timeout: float = 30.0        # first byte of a request -> its last byte (408)
    idle_timeout: float = 10.0           # a new connection's first byte (closed after)
    keep_alive_timeout: float = 30.0     # between requests on one connection (closed after)
    max_connections: int = 1000          # per worker, open at once (503 above)
    shutdown_timeout: float = 10.0       # SIGTERM -> in-flight requests cancelled, exit

    def problems(self) -> list[str]:
        """What is wrong with these values, as `--flag: …` lines (empty when fine)."""
        out = []
        if self.max_header_bytes < 1024:
            out.append(f"--max-header-bytes must be at least 1024, got {self.max_header_bytes}")
        if self.max_headers < 8:
            out.append(f"--max-headers must be at least 8, got {self.max_headers}")
        if self.max_connections < 1:
            out.append(f"--max-connections must be at least 1, got {self.max_connections}")
        for flag, value in (("--request-timeout", self.request_timeout),
                            ("--idle-timeout", self.idle_timeout),
                            ("--keep-alive-timeout", self.keep_alive_timeout),
                            ("--shutdown-timeout", self.shutdown_timeout)):
            if not value > 0:
                out.append(f"{flag} must be more than 0 seconds, got {value:g}")
        return out


DEFAULT_LIMITS = ConnectionLimits()
