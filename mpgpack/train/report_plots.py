"""The report's figures, drawn with matplotlib's Agg backend (no display) into PNG files.

Each function draws one figure from plain arrays and the schema's features, and writes it to
the given path; what the numbers mean is decided by the caller (train/report.py), not here.
Names and labels come from the user's CSV: they are drawn as plain text (no mathtext, so a
"$" in a label is a dollar sign, not a formula) and shortened where they would crowd a plot.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only: a build machine has no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from mpgpack.core.schema import Feature  # noqa: E402

SET_STYLE = {"cv": dict(color="#1f77b4", marker="o", label="training split, out-of-fold (CV)"),
             "holdout": dict(color="#ff7f0e", marker="^", label="hold-out")}
PALETTE = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#ff7f0e"]
DPI = 100
MAX_TEXT = 24           # characters of a label shown in a plot (the page has the full text)
MAX_ANNOTATED = 12      # correlation cells get their value written in up to this many columns


def _plain_text(fn):
    """Draws with mathtext off: user labels are text, never formulas."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)
    return wrapper


def _short(text: str, n: int = MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n - 1] + "…"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp in the file: the same build gives the same bytes.
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _label(f: Feature) -> str:
    return _short(f"{f.name} ({f.unit})" if f.unit else f.name, 40)


def _grid(n: int, ncols: int = 4, w: float = 3.5, h: float = 3.1):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


@_plain_text
def distributions(panels: list[tuple[Feature, np.ndarray]], path: Path) -> Path:
    """One panel per column (the target first): bars per label for a category (and a
    classifier's classes), bars per value for a whole number with few values, else a histogram."""
    fig, axes = _grid(len(panels))
    for ax, (f, col) in zip(axes.flat, panels):
        present = col[~np.isnan(col)]
        missing = len(col) - len(present)
        if f.is_category:
            codes = sorted(f.categories)
            ax.bar(range(len(codes)), [np.sum(present == c) for c in codes],
                   color=[PALETTE[k % len(PALETTE)] for k in range(len(codes))])
            ax.set_xticks(range(len(codes)), [_short(f.categories[c], 12) for c in codes],
                          rotation=30 if len(codes) > 3 else 0,
                          ha="right" if len(codes) > 3 else "center", fontsize=8)
        elif f.integer and len(np.unique(present)) <= 12:
            values, counts = np.unique(present, return_counts=True)
            ax.bar([f"{v:g}" for v in values], counts, color="#7f7f7f")
        else:
            ax.hist(present, bins=20, color="#7f7f7f", edgecolor="white")
        ax.set_xlabel(_label(f), fontsize=9)
        ax.set_title(f"{_short(f.name)}: n={len(present)}"
                     + (f", {missing} missing" if missing else ""),
                     fontsize=10, color="#b00" if missing else "black")
    for ax in axes[:, 0]:
        ax.set_ylabel("rows")
    fig.suptitle("Distribution of each column (all loaded rows)")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def correlation(matrix: np.ndarray, names: list[str], path: Path) -> Path:
    n = len(names)
    side = max(5.0, min(14.0, 0.55 * n + 3))
    fig, ax = plt.subplots(figsize=(side + 1.3, side))
    shown = np.where(np.isnan(matrix), 0.0, matrix)
    im = ax.imshow(shown, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), [_short(c, 16) for c in names], rotation=40, ha="right",
                  fontsize=8 if n > MAX_ANNOTATED else 10)
    ax.set_yticks(range(n), [_short(c, 16) for c in names],
                  fontsize=8 if n > MAX_ANNOTATED else 10)
    if n <= MAX_ANNOTATED:
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                ax.text(j, i, "—" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                        fontsize=8, color="white" if abs(shown[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Pearson r")
    ax.set_title("Correlation matrix (pairwise complete rows)")
    fig.tight_layout()
    return _save(fig, path)


def _jitter(col: np.ndarray, f: Feature, rng) -> tuple[np.ndarray, float]:
    """A whole-number feature with few values gets a seeded jitter, so rows with the same value
    do not hide each other."""
    present = col[~np.isnan(col)]
    if f.integer and len(np.unique(present)) <= 30:
        return col + rng.uniform(-0.25, 0.25, len(col)), 0.25
    return col, 0.0


@_plain_text
def target_against(X: np.ndarray, y: np.ndarray, columns: list[int], features, colour_by,
                   target: Feature, path: Path) -> Path:
    """The target against each of `columns`, coloured by the category feature `colour_by`
    (if any)."""
    fig, axes = _grid(max(1, len(columns)), ncols=2, w=6.5, h=4.8)
    rng = np.random.default_rng(0)
    for ax, i in zip(axes.flat, columns):
        x, jitter = _jitter(X[:, i], features[i], rng)
        if colour_by is None:
            ax.scatter(x, y, s=14, alpha=0.7, color=PALETTE[0])
        else:
            cat = features[colour_by]
            for k, (code, label) in enumerate(sorted(cat.categories.items())):
                rows = X[:, colour_by] == code
                ax.scatter(x[rows], y[rows], s=14, alpha=0.7, color=PALETTE[k % len(PALETTE)],
                           label=f"{_short(label)} (n={rows.sum()})")
            ax.legend(title=_short(cat.name), fontsize=8)
        ax.set_xlabel(_label(features[i]) + (f", jittered ±{jitter:g}" if jitter else ""))
        ax.set_ylabel(_label(target))
        ax.grid(alpha=0.3)
        ax.set_title(f"{_short(target.name)} against {_short(features[i].name)}")
    if not columns:
        axes.flat[0].text(0.5, 0.5, "no numeric feature", ha="center", va="center")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def tuning(labels: list[str], means: np.ndarray, stds: np.ndarray, chosen: int,
           baseline_mean: float, score: str, path: Path) -> Path:
    order = np.argsort(means, kind="stable")[::-1]       # best at the top
    fig, ax = plt.subplots(figsize=(9, max(3.2, 0.32 * len(labels) + 1.6)))
    colours = ["#d62728" if i == chosen else "#7f7f7f" for i in order]
    ax.barh(range(len(order)), means[order], xerr=stds[order], color=colours, alpha=0.85,
            error_kw=dict(ecolor="#333", capsize=2, lw=0.8))
    ax.set_yticks(range(len(order)), [_short(labels[i], 48) for i in order], fontsize=8)
    ax.axvline(baseline_mean, color="black", ls="--", lw=1,
               label=f"baseline {baseline_mean:.3f}")
    ax.set_xlabel(f"{score}, mean ± std over the same folds of the training split (lower is better)")
    ax.set_xlim(0, max(baseline_mean, float((means + stds).max())) * 1.08)
    ax.plot([], [], color="#d62728", lw=6, label="chosen")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07 - 0.9 / max(len(labels), 1)),
              ncol=2, fontsize=8, frameon=False)
    ax.set_title("Every candidate on the same folds")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def predicted_vs_actual(sets: dict[str, tuple[np.ndarray, np.ndarray]], target: Feature,
                        path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 6.2))
    lo = min(min(a.min(), p.min()) for a, p in sets.values())
    hi = max(max(a.max(), p.max()) for a, p in sets.values())
    pad = 0.03 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect")
    for name, (actual, pred) in sets.items():
        style = SET_STYLE[name]
        mae = np.mean(np.abs(pred - actual))
        ax.scatter(actual, pred, s=14, alpha=0.65, color=style["color"], marker=style["marker"],
                   label=f"{style['label']}: n={len(actual)}, MAE {mae:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"actual {_label(target)}")
    ax.set_ylabel(f"predicted {_label(target)}")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("Predicted against actual")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def residuals(sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], columns: list[int],
              features, target: Feature, path: Path) -> Path:
    """sets: name -> (X, predicted, residual). Panels: against the prediction, then against
    each of `columns`; a missing value is drawn left of its axis as a red x."""
    fig, axes = _grid(1 + len(columns), ncols=3, w=5.0, h=4.2)
    panels = [("predicted", None)] + [(features[i].name, i) for i in columns]
    for ax, (name, i) in zip(axes.flat, panels):
        for set_name, (X, pred, res) in sets.items():
            style = SET_STYLE[set_name]
            col = pred if i is None else X[:, i]
            present = ~np.isnan(col)
            ax.scatter(col[present], res[present], s=9, alpha=0.55, color=style["color"],
                       marker=style["marker"], label=style["label"])
            if (~present).any() and present.any():
                x_missing = np.full((~present).sum(),
                                    np.nanmin(col) - 0.08 * (np.ptp(col[present]) or 1.0))
                ax.scatter(x_missing, res[~present], s=24, color="#b00", marker="x")
        ax.axhline(0, color="black", lw=0.8)
        if i is not None and features[i].integer:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"predicted {_label(target)}" if i is None else
                      _label(features[i]) + (" (x = missing)" if features[i].nullable else ""))
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("residual: predicted − actual")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Residuals against the prediction and the features most related to the target")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def confusion(matrix: np.ndarray, classes, path: Path) -> Path:
    """Hold-out confusion matrix: rows the true class, columns the predicted one."""
    n = len(classes)
    side = max(4.5, min(12.0, 0.7 * n + 3))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(matrix, cmap="Blues")
    names = [_short(c, 16) for c in classes]
    ax.set_xticks(range(n), names, rotation=30 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), names)
    top = matrix.max() or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=10,
                    color="white" if matrix[i, j] > 0.6 * top else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, label="hold-out rows")
    ax.set_title("Confusion matrix (hold-out)")
    fig.tight_layout()
    return _save(fig, path)


@_plain_text
def slices(rows: list[dict], overall: dict, flag_ratio: float, metric: str, path: Path) -> Path:
    """Grouped bars: MAE or accuracy per slice for each set, with each set's flag threshold."""
    names = [n for n in SET_STYLE if n in overall]
    labels = [_short(f"{r['by']}={r['label']}", 40) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.42 * max(len(rows), 1) + 1.6))
    height = 0.8 / len(names)
    top = max([r[n][metric] or 0.0 for r in rows for n in names] + [1e-9])
    for k, name in enumerate(names):
        style = SET_STYLE[name]
        ys = np.arange(len(rows)) + (k - (len(names) - 1) / 2) * height
        vals = [r[name][metric] if r[name][metric] is not None else 0.0 for r in rows]
        ax.barh(ys, vals, height=height, color=style["color"], alpha=0.85, label=style["label"])
        for y_, r in zip(ys, rows):
            cell = r[name]
            text = f"n={cell['count']}" + ("  FLAGGED" if cell["flagged"] else "")
            ax.text((cell[metric] or 0) + 0.01 * top, y_, text, va="center", fontsize=7,
                    color="#b00" if cell["flagged"] else "#333")
        base = overall[name][metric]
        threshold = 1 - flag_ratio * (1 - base) if metric == "accuracy" else flag_ratio * base
        ax.axvline(threshold, color=style["color"], ls="--", lw=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    if metric == "accuracy":
        ax.set_xlabel(f"accuracy; dashed: the flag threshold of that set (error rate "
                      f"{flag_ratio:g} × the overall error rate)")
    else:
        ax.set_xlabel(f"MAE; dashed: {flag_ratio:g} × overall MAE of that set (flag threshold)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(len(rows), 1) - 0.06),
              ncol=2, frameon=False)        # below the axes: never over the last bars
    ax.set_title("Accuracy per slice" if metric == "accuracy" else "MAE per slice")
    fig.tight_layout()
    return _save(fig, path)
