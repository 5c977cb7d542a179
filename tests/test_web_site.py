"""The built web site and `mpgpack web` without a browser: what the packer wrote, the server's
MIME types, caching, gzip and refusals, and the CLI's one-line errors."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import socket
import urllib.error
import urllib.request

import pytest

from mpgpack.core.errors import UserError
from mpgpack.core.bundle import sha256_file
from mpgpack.targets.web.chromium import serve_bundle
from mpgpack.targets.web.pack import check_graph_ops, supported_graph_ops
from tests.helpers import free_port, record_site, run_cli

FIRST_LOAD_BUDGET_GZIP = 400 * 1024


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def site_url(bundle_dir):
    with serve_bundle(bundle_dir) as url:
        yield url


def test_package_entry_matches_the_files(bundle_dir, manifest):
    entry = manifest["packages"]["web"]
    site = bundle_dir / entry["path"]
    files = sorted(p for p in site.rglob("*") if p.is_file())
    assert entry["files"] == len(files)
    assert entry["bytes"] == sum(p.stat().st_size for p in files)
    listing = "".join(f"{p.relative_to(site).as_posix()} {sha256_file(p)}\n" for p in files)
    assert entry["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert entry["default_backend"] in entry["backends"] == ["cpu", "wasm"]
    for rel in ["index.html", "app.js", "sw.js", "app.webmanifest", "icon.svg", "style.css",
                "tfjs-backend-wasm-simd.wasm", "model/model.json", "model/golden.json",
                "model/manifest.json", *entry["first_load"]]:
        assert (site / rel).is_file(), rel


def test_first_load_fits_the_budget(bundle_dir, manifest):
    entry = manifest["packages"]["web"]
    site = bundle_dir / "web"
    gz = sum(len(gzip.compress((site / f).read_bytes(), 9, mtime=0)) for f in entry["first_load"])
    assert gz == entry["first_load_gzip_bytes"]
    assert gz <= FIRST_LOAD_BUDGET_GZIP, f"first load is {gz} bytes gzipped"


def test_model_files_are_the_bundles(bundle_dir, manifest):
    info = json.loads((bundle_dir / "web" / "model" / "manifest.json").read_text())
    arts = manifest["artifacts"]
    assert info["model"]["version"] == manifest["model"]["version"]
    assert info["schema"] == manifest["schema"]
    assert info["defaults"]["weight"] == manifest["training_stats"]["weight"]["median"]
    assert info["web"]["model_sha256"]["model.json"] == arts["tfjs"]["sha256"]
    for name, sha in info["web"]["model_sha256"].items():
        assert sha256_file(bundle_dir / "web" / "model" / name) == sha
    assert sha256_file(bundle_dir / "web" / "model" / "golden.json") == arts["golden"]["sha256"]


def test_site_names_no_other_host(bundle_dir):
    html = (bundle_dir / "web" / "index.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    sw = (bundle_dir / "web" / "sw.js").read_text()
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", sw).group(1))
    assert all(not re.match(r"(https?:)?//", u) for u in precache)
    for rel in precache:
        assert (bundle_dir / "web" / ("index.html" if rel == "./" else rel)).is_file(), rel


def test_graph_ops_of_the_model_are_supported(bundle_dir):
    model = json.loads((bundle_dir / "web" / "model" / "model.json").read_text())
    check_graph_ops(model)
    assert {n["op"] for n in model["modelTopology"]["node"]} <= supported_graph_ops()


def test_unsupported_graph_op_is_refused_by_name(bundle_dir):
    model = json.loads((bundle_dir / "web" / "model" / "model.json").read_text())
    model["modelTopology"]["node"].append({"name": "extra", "op": "Conv2D"})
    with pytest.raises(UserError, match="graph op\\(s\\) Conv2D"):
        check_graph_ops(model)


@pytest.mark.parametrize("path, mime", [
    ("", "text/html; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("sw.js", "text/javascript; charset=utf-8"),
    ("tfjs-backend-wasm-simd.wasm", "application/wasm"),
    ("app.webmanifest", "application/manifest+json"),
    ("model/model.json", "application/json"),
    ("model/group1-shard1of1.bin", "application/octet-stream"),
    ("icon.svg", "image/svg+xml"),
])
def test_server_mime_types(site_url, bundle_dir, path, mime):
    status, headers, body = get(site_url + path)
    assert status == 200 and headers["Content-Type"] == mime
    assert body == (bundle_dir / "web" / (path or "index.html")).read_bytes()


def test_server_gzip_and_revalidation(site_url, bundle_dir):
    raw = (bundle_dir / "web" / "app.js").read_bytes()
    status, headers, body = get(site_url + "app.js", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == raw and len(body) < len(raw) / 2
    assert headers["Cache-Control"] == "no-cache"
    status, _, body = get(site_url + "app.js", {"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


@pytest.mark.parametrize("path", ["nope.js", "../manifest.json", "%2e%2e/manifest.json",
                                  "model/../../manifest.json", "report/../manifest.json", "model/"])
def test_server_refuses_what_is_not_in_the_site(site_url, path):
    status, headers, body = get(site_url + path)
    assert status == 404 and headers["Content-Type"].startswith("text/plain")
    assert b"not found" in body


def test_server_serves_the_bundle_report_under_report(bundle_copy):
    import shutil
    shutil.rmtree(bundle_copy / "report", ignore_errors=True)
    record_site(bundle_copy)          # served only as the manifest records it
    with serve_bundle(bundle_copy) as url:
        assert get(url + "report/")[0] == 404
    (bundle_copy / "report").mkdir()
    (bundle_copy / "report" / "index.html").write_text("<h1>the report</h1>")
    record_site(bundle_copy)
    with serve_bundle(bundle_copy) as url:
        status, headers, body = get(url + "report/")
        assert status == 200 and body == b"<h1>the report</h1>"
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert get(url + "report/../../manifest.json")[0] == 404
        # "/report" redirects to "/report/" (urllib follows it)
        status, _, body = get(url + "report")
        assert status == 200 and body == b"<h1>the report</h1>"


def test_server_listens_on_loopback_only(site_url):
    """By default the server's listening socket is bound to 127.0.0.1 (read from the kernel's
    socket table rather than by connecting to another address)."""
    port = int(site_url.rsplit(":", 1)[1].strip("/"))
    listening = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":          # 0A: LISTEN
            listening.append(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    assert listening == ["127.0.0.1"]


def test_cli_web_without_a_bundle_says_so(tmp_path):
    r = run_cli("web", "--bundle", str(tmp_path / "none"), "--port", str(free_port()), timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "neither a bundle" in r.stderr


def test_cli_web_bundle_without_site_says_how_to_fix(bundle_copy):
    import shutil
    shutil.rmtree(bundle_copy / "web")
    r = run_cli("web", "--bundle", str(bundle_copy), "--port", str(free_port()), timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "has no web site" in r.stderr and "mpgpack build" in r.stderr


def test_cli_web_port_in_use(bundle_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("web", "--bundle", str(bundle_dir), "--port", str(port), timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in r.stderr


def test_cli_web_help():
    r = run_cli("web", "--help", timeout=60)
    assert r.returncode == 0
    for flag in ("--bundle", "--host", "--port"):
        assert flag in r.stdout
    assert "127.0.0.1" in r.stdout
