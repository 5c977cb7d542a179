"""The web page (built by the web target into the bundle) at "/", and the model report at
/report/, below every API route."""
from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.staticfiles import StaticFiles

from mpgpack.targets.api.routing import SiteMount

# Content types the web page needs; registered explicitly because a slim container's
# /etc/mime.types may lack them, and a browser refuses streaming WASM without the right one.
for _ext, _type in ((".wasm", "application/wasm"), (".webmanifest", "application/manifest+json"),
                    (".mjs", "text/javascript"), (".js", "text/javascript"),
                    (".json", "application/json"), (".bin", "application/octet-stream"),
                    (".svg", "image/svg+xml")):
    mimetypes.add_type(_type, _ext)


SITE_PACKAGES = ("web", "report")


def check_site(bundle) -> None:
    """The web page and the report against their manifest sha256s (UserError naming the file)."""
    bundle.verify_packages(list(SITE_PACKAGES))


def has_site(web: Path) -> bool:
    return (web / "index.html").is_file()


def site_mounts(web: Path, report: Path, api_routes: list) -> list[SiteMount]:
    """The mounts to append after the API routes (which they never shadow)."""
    mounts = []
    if (report / "index.html").is_file():  # the model report the page links to
        mounts.append(SiteMount("/report", StaticFiles(directory=report, html=True),
                                name="report", api_routes=api_routes))
    mounts.append(SiteMount("/", StaticFiles(directory=web, html=True), name="web",
                            api_routes=api_routes))
    return mounts
