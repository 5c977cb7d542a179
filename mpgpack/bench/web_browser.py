"""The web page measured in real headless Chromium, per TF.js backend.

For each backend (the page's `?backend=`), in fresh browser contexts (empty cache, no service
worker) against the real `mpgpack web` server on 127.0.0.1, which gzips like a static host:
- bytes of the first load: every request until the first prediction is shown, decoded
  (`raw`) and as transferred (`gzip`, the response bodies on the wire), with headers apart;
- navigation to first prediction: performance.now() when the form first shows a prediction
  (the page's timeOrigin is the navigation start), and the model load time within it;
- median latency of one prediction and of a 1,000-row batch through window.mpg.predict.
  Chromium coarsens performance.now() to 100 µs on a page that is not cross-origin isolated,
  so one-row latency is timed over runs of 25 back-to-back calls and divided.
What the service worker fetches after the first load (to work offline) is reported apart, and
so is a repeat visit served by the service worker.

    .venv/bin/python -m mpgpack.bench.web_browser [--bundle DIR] [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from mpgpack.core.cli_args import add_bundle_argument

ONE_ROW_RUN = 25

_LATENCY_JS = """async ([row, batch, groups, batchRepeats, runLen]) => {
  const predict = window.mpg.predict;
  for (let i = 0; i < 50; i++) await predict([row]);           // warm up (JIT, kernels)
  for (let i = 0; i < 5; i++) await predict(batch);
  const one = [];
  for (let g = 0; g < groups; g++) {
    const t0 = performance.now();
    for (let i = 0; i < runLen; i++) await predict([row]);
    one.push((performance.now() - t0) / runLen);
  }
  const many = [];
  for (let r = 0; r < batchRepeats; r++) {
    const t0 = performance.now();
    await predict(batch);
    many.push(performance.now() - t0);
  }
  return {one, many};
}"""


def _first_load(browser, url: str) -> dict:
    """One cold visit: bytes until the first prediction, and the page's own timings."""
    context = browser.new_context()
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda r: finished.append(r))
    try:
        page.goto(url)
        page.evaluate("window.mpg.ready")
        timings = page.evaluate("window.mpg.timings")
        files, raw, wire, headers = [], 0, 0, 0
        for req in finished:
            resp = req.response()
            if resp is None:
                continue
            sizes = req.sizes()
            body = len(resp.body()) if resp.status == 200 else 0
            raw += body
            wire += sizes["responseBodySize"]
            headers += sizes["responseHeadersSize"]
            files.append({"url": req.url.removeprefix(url.split("?")[0]), "raw": body,
                          "gzip": sizes["responseBodySize"], "status": resp.status})
        return {"timings": timings, "requests": len(files), "bytes_raw": raw, "bytes_gzip": wire,
                "bytes_headers": headers, "files": files}
    finally:
        context.close()


def _repeat_visit(browser, url: str) -> dict:
    """A second visit once the service worker has cached the site: what the network carries
    (nothing, if the cache works) and how soon the first prediction shows."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        page.evaluate("window.mpg.ready")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
        page.wait_for_function("""async () => { const k = await caches.keys();
            return k.length > 0 && (await (await caches.open(k[0])).keys()).length >= 10; }""", timeout=30_000)
        network = []
        page.on("requestfinished", lambda r: network.append(r))
        page.reload()
        page.evaluate("window.mpg.ready")
        timings = page.evaluate("window.mpg.timings")
        from_network = [r.url for r in network
                        if r.response() is not None and not r.response().from_service_worker]
        return {"first_prediction_ms": timings["firstPredictionMs"], "model_load_ms": timings["modelLoadMs"],
                "requests_to_network": len(from_network)}
    finally:
        context.close()


def _latency(browser, url: str, golden_rows: list, groups: int, repeats: int) -> dict:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        page.evaluate("window.mpg.ready")
        batch = (golden_rows * (1000 // len(golden_rows) + 1))[:1000]
        r = page.evaluate(_LATENCY_JS, [golden_rows[0], batch, groups, repeats, ONE_ROW_RUN])
        return {"predict_1_row_ms": statistics.median(r["one"]),
                "predict_1000_rows_ms": statistics.median(r["many"]),
                "predict_1000_rows_p90_ms": sorted(r["many"])[int(0.9 * (len(r["many"]) - 1))],
                "samples": {"one_row_run_means_ms": r["one"], "batch_1000_ms": r["many"]}}
    finally:
        context.close()


def measure_web_browser(bundle: str | Path | None = None, quick: bool = False,
                        backends: tuple[str, ...] = ("cpu", "wasm")) -> dict:
    """Measures the built site of `bundle` (default: ./dist) per backend; returns a dict."""
    import gzip
    import math

    from playwright.sync_api import sync_playwright

    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.web.chromium import launch, serve_bundle

    b = open_bundle(bundle)
    site = b.path / "web"
    web = b.manifest.get("packages", {}).get("web")
    if web is None or not (site / "index.html").is_file():
        raise RuntimeError(f"bundle {b.path} has no web site; rebuild it with `mpgpack build`")
    g = b.golden()
    rows = [[None if math.isnan(v) else float(v) for v in r] for r in g.X.tolist()]
    cold_visits, groups, repeats = (2, 10, 10) if quick else (5, 40, 40)

    sw = (site / "sw.js").read_text()
    precache = json.loads(sw.split("const PRECACHE = ", 1)[1].split(";", 1)[0])
    extra = sorted(set(precache) - set(web["first_load"]) - {"./"})
    out = {"bundle": str(b.path), "model_version": b.version, "default_backend": web["default_backend"],
           "cold_visits": cold_visits, "backends": {},
           "service_worker_after_first_load": {
               "files": extra,
               "bytes_raw": sum((site / f).stat().st_size for f in extra),
               "bytes_gzip": sum(len(gzip.compress((site / f).read_bytes(), 6, mtime=0)) for f in extra)}}
    with serve_bundle(b.path) as base, sync_playwright() as p:
        browser = launch(p)
        out["browser"] = f"Chromium {browser.version}"
        try:
            for backend in backends:
                url = f"{base}?backend={backend}&nosw"
                visits = [_first_load(browser, url) for _ in range(cold_visits)]
                first = [v["timings"]["firstPredictionMs"] for v in visits]
                load = [v["timings"]["modelLoadMs"] for v in visits]
                out["backends"][backend] = {
                    "first_load": {k: visits[-1][k] for k in ("requests", "bytes_raw", "bytes_gzip",
                                                                  "bytes_headers", "files")},
                    "first_prediction_ms": statistics.median(first),
                    "first_prediction_ms_all": first,
                    "model_load_ms": statistics.median(load),
                    **_latency(browser, f"{base}?backend={backend}&nosw", rows, groups, repeats),
                }
            out["repeat_visit"] = _repeat_visit(browser, base)
        finally:
            browser.close()
    return out


def format_table(r: dict) -> str:
    lines = [f"web page, {r['browser']}, model {r['model_version']} (default backend: {r['default_backend']})",
             f"{'backend':<8} {'requests':>8} {'first load raw':>15} {'gzip':>10} {'first pred.':>12} "
             f"{'model load':>11} {'1 row':>9} {'1,000 rows':>11}"]
    for name, m in r["backends"].items():
        fl = m["first_load"]
        lines.append(f"{name:<8} {fl['requests']:>8} {fl['bytes_raw'] / 1024:>12.1f} KB "
                     f"{fl['bytes_gzip'] / 1024:>7.1f} KB {m['first_prediction_ms']:>9.0f} ms "
                     f"{m['model_load_ms']:>8.0f} ms {m['predict_1_row_ms']:>6.3f} ms "
                     f"{m['predict_1000_rows_ms']:>8.2f} ms")
    rv = r["repeat_visit"]
    lines.append(f"repeat visit ({r['default_backend']}, service worker): first prediction "
                 f"{rv['first_prediction_ms']:.0f} ms, {rv['requests_to_network']} requests to the network")
    swx = r["service_worker_after_first_load"]
    lines.append(f"then the service worker fetches {', '.join(swx['files']) or 'nothing more'} "
                 f"({swx['bytes_raw'] / 1024:.1f} KB, {swx['bytes_gzip'] / 1024:.1f} KB gzipped) for offline use")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpgpack.bench.web_browser", description=__doc__.split("\n\n")[0])
    add_bundle_argument(parser)
    parser.add_argument("--quick", action="store_true", help="fewer visits and repeats")
    parser.add_argument("--json", type=Path, default=None, help="also write the full results here")
    args = parser.parse_args(argv)
    result = measure_web_browser(args.bundle, args.quick)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
