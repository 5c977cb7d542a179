"""Takes the README's screenshots of the page (desktop and phone) in headless Chromium.

    .venv/bin/python -m mpgpack.targets.web.screenshots [--bundle DIR] [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mpgpack.core.bundle import open_bundle
from mpgpack.targets.web.chromium import DESKTOP, PHONE, launch, serve_bundle
from mpgpack.core.cli_args import add_bundle_argument


def _sample_csv(bundle, path: Path, rows: int = 8) -> Path:
    g = bundle.golden()
    lines = ["cylinders,displacement,horsepower,weight,acceleration,model_year,origin,mpg"]
    picked = [i for i, grp in enumerate(g.groups) if grp == "holdout"][:rows]
    for i in picked:
        x = ["" if math.isnan(v) else f"{v:g}" for v in g.X[i].tolist()]
        lines.append(",".join([*x, f"{g.actual[i]:g}"]))
    lines.append("8,350,,7600,11,73,1,")           # an invalid row: weight above 7000 lb
    path.write_text("\n".join(lines) + "\n")
    return path


def take(bundle_arg=None, out: Path = Path("docs/screenshots")) -> list[Path]:
    from playwright.sync_api import sync_playwright

    bundle = open_bundle(bundle_arg)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve_bundle(bundle.path) as url, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(url)
            page.evaluate("window.mpg.ready")
            page.fill("input[name=weight]", "5400")      # outside the training range: the note shows
            page.wait_for_function("!document.querySelector('#how-sure').hidden")
            page.set_input_files("#csv-file", str(_sample_csv(bundle, out / ".sample.csv")))
            page.locator("#batch-download").wait_for(state="visible")
            page.click("#selftest-button")
            page.wait_for_function("document.querySelector('#selftest-result').dataset.passed")
            page.evaluate("window.scrollTo(0, 0)")      # the result panel is sticky
            written.append(out / "web-desktop.png")
            page.screenshot(path=written[-1], full_page=True)
            page.close()

            page = browser.new_context(**PHONE).new_page()
            page.goto(url)
            page.evaluate("window.mpg.ready")
            written.append(out / "web-phone.png")
            page.screenshot(path=written[-1])
            page.fill("input[name=cylinders]", "4.5")
            page.fill("input[name=weight]", "heavy")
            page.wait_for_function("document.querySelector('#prediction').dataset.state === 'invalid'")
            page.locator("[data-field=weight]").scroll_into_view_if_needed()
            written.append(out / "web-phone-invalid.png")
            page.screenshot(path=written[-1])
        finally:
            browser.close()
            (out / ".sample.csv").unlink(missing_ok=True)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpgpack.targets.web.screenshots", description=__doc__.split("\n\n")[0])
    add_bundle_argument(parser)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    for path in take(args.bundle, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
