"""`mpgpack web`: serves a bundle's built web site on 127.0.0.1. Standard library only."""
from __future__ import annotations

import argparse
import errno
import sys

from mpgpack.core.cli_args import add_bundle_argument


def _web(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.signing import trust_line
    from mpgpack.targets.web.server import make_server

    bundle = open_bundle(args.bundle)
    site = bundle.path / "web"
    if not (site / "index.html").is_file():
        raise UserError(f"bundle {bundle.path} has no web site (web/index.html); rebuild it with "
                        f"`mpgpack build`")
    print(trust_line(bundle.path, args.trust, bundle.manifest), flush=True)   # raises if refused
    # Serve the page and the report as built, or not at all (UserError naming the file).
    bundle.verify_packages(["web", "report"])
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port (0-65535; 0 picks a free one)")
    try:
        server = make_server(site, args.host, args.port, report=bundle.path / "report",
                             quiet=args.quiet)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {args.port} on {args.host} is already in use; pick another "
                            f"with --port") from None
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    print(f"serving {site} (model {bundle.version}) on http://{host}:{port}/  (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="serve a bundle's offline-capable web page (TF.js in the browser)",
                       description="Serve the static web site of a bundle (web/, written by "
                                   "`mpgpack build`) over HTTP: the page predicts MPG in the "
                                   "browser with TF.js and works offline after the first visit. "
                                   "The bundle's report/ (if any) is served at /report/.")
    add_bundle_argument(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080; 0 picks a free one)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    p.add_argument("--trust", metavar="KEY.pub", default=None,
                   help="refuse to serve unless the bundle is signed by this Ed25519 public key "
                        "(default: serve it unverified, and say so)")
    p.set_defaults(run=_web)
