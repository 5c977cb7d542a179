"""`mpgpack report [BUNDLE] [--open]`: where a bundle's model report is, and open it.

Reads only the manifest (mpgpack.core.bundle), so it is cheap and needs no build stack.
"""
from __future__ import annotations

import argparse

from mpgpack.core.cli_args import add_bundle_argument


def _report(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle

    bundle = open_bundle(args.bundle)
    entry = bundle.manifest.get("packages", {}).get("report")
    if entry is None:
        raise UserError(f"bundle {bundle.path} has no model report (built before reports "
                        "existed); run `mpgpack build` to make a bundle with one")
    index = bundle.path / entry["path"]
    bundle.verify_packages(["report"])      # the page and its images, naming a changed file
    report = bundle.manifest.get("report", {})
    flagged = report.get("slices", {}).get("flagged", [])
    print(index.resolve())
    print(f"model {bundle.manifest['model'].get('name', 'mpg')} (bundle mpg-{bundle.version}): "
          f"{_figures(bundle.manifest['metrics'])}; "
          f"flagged slices: {', '.join(flagged) if flagged else 'none'}")
    if args.open:
        import webbrowser
        uri = index.resolve().as_uri()
        if webbrowser.open(uri):
            print(f"opened {uri} in a browser")
        else:
            print(f"no browser found to open it here; open {uri} yourself")
    return 0


def _figures(m: dict) -> str:
    """"gbm, CV MAE 1.700, hold-out MAE 1.800" (accuracy for a classifier); bundles built before
    the model families (metrics.mlp) still get their line."""
    if "chosen" not in m:
        mlp = m.get("mlp", {})
        return (f"mlp, CV MAE {mlp.get('cv_mae_mean', float('nan')):.3f}, hold-out MAE "
                f"{mlp.get('holdout', {}).get('mae', float('nan')):.3f}")
    chosen, holdout = m["chosen"], m["chosen"]["holdout"]
    score = m["score"].replace("_", "-").replace("mae", "MAE")
    figure = (f"hold-out accuracy {holdout['accuracy']:.3f}" if "accuracy" in holdout
              else f"hold-out MAE {holdout['mae']:.3f}")
    return f"{chosen['family']}, CV {score} {chosen['cv_mean']:.3f}, {figure}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="print where a bundle's model report is (--open: open it)",
                       description="Print the path of a bundle's model report (report/index.html: "
                                   "the data, every candidate of the model search, where the "
                                   "model is wrong: residuals or per-class precision/recall and "
                                   "the confusion matrix, errors by slice) after checking its "
                                   "files against the manifest's sha256s, and a one-line "
                                   "summary. With --open, open it in a web browser if one is "
                                   "available ($BROWSER is honoured).")
    add_bundle_argument(p, positional=True)
    p.add_argument("--open", action="store_true", help="open the report in a web browser")
    p.set_defaults(run=_report)
