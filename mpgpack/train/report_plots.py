"""The report's figures, drawn with matplotlib's Agg backend (no display) into PNG files.

Each function draws one figure from plain arrays and writes it to the given path; what the
numbers mean is decided by the caller (train/report.py), not here.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only: a build machine has no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from mpgpack.train.schema import FEATURES, ORIGIN_INDEX, TARGET  # noqa: E402

ORIGINS = FEATURES[ORIGIN_INDEX].categories            # {1: "USA", 2: "Europe", 3: "Japan"}
ORIGIN_COLOURS = {1: "#1f77b4", 2: "#2ca02c", 3: "#d62728"}
SET_STYLE = {"cv": dict(color="#1f77b4", marker="o", label="training split, out-of-fold (CV)"),
             "holdout": dict(color="#ff7f0e", marker="^", label="hold-out")}
DPI = 100


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp in the file: the same build gives the same bytes.
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _label(i: int) -> str:
    f = FEATURES[i]
    return f"{f.name} ({f.unit})" if f.unit else f.name


def distributions(X: np.ndarray, y: np.ndarray, path: Path) -> Path:
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.2))
    panels = [(TARGET, "mpg (miles per US gallon)", y)] + \
        [(f.name, _label(i), X[:, i]) for i, f in enumerate(FEATURES)]
    for ax, (name, label, col) in zip(axes.flat, panels):
        present = col[~np.isnan(col)]
        missing = len(col) - len(present)
        if name == "origin":
            codes = sorted(ORIGINS)
            ax.bar([ORIGINS[c] for c in codes], [np.sum(present == c) for c in codes],
                   color=[ORIGIN_COLOURS[c] for c in codes])
        elif name == "cylinders":
            values, counts = np.unique(present, return_counts=True)
            ax.bar([str(int(v)) for v in values], counts, color="#7f7f7f")
        else:
            ax.hist(present, bins=20, color="#7f7f7f", edgecolor="white")
        ax.set_xlabel(label)
        ax.set_title(f"{name}: n={len(present)}" + (f", {missing} missing" if missing else ""),
                     fontsize=10, color="#b00" if missing else "black")
    axes[0, 0].set_ylabel("cars")
    axes[1, 0].set_ylabel("cars")
    fig.suptitle("Distribution of each column (all loaded rows)")
    fig.tight_layout()
    return _save(fig, path)


def correlation(matrix: np.ndarray, names: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(matrix[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Pearson r")
    ax.set_title("Correlation matrix (pairwise complete rows)")
    fig.tight_layout()
    return _save(fig, path)


def mpg_against(X: np.ndarray, y: np.ndarray, column: int, path: Path,
                jitter: float = 0.0) -> Path:
    """MPG against one feature, one colour per origin. Integer features get a seeded jitter so
    cars with the same value do not hide each other."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rng = np.random.default_rng(0)
    for code, name in ORIGINS.items():
        rows = X[:, ORIGIN_INDEX] == code
        x = X[rows, column] + (rng.uniform(-jitter, jitter, rows.sum()) if jitter else 0)
        ax.scatter(x, y[rows], s=14, alpha=0.7, color=ORIGIN_COLOURS[code],
                   label=f"{name} (n={rows.sum()})")
    ax.set_xlabel(_label(column) + (f", jittered ±{jitter:g}" if jitter else ""))
    ax.set_ylabel("mpg")
    ax.legend(title="origin")
    ax.grid(alpha=0.3)
    ax.set_title(f"MPG against {FEATURES[column].name}, coloured by origin")
    fig.tight_layout()
    return _save(fig, path)


def tuning(labels: list[str], means: np.ndarray, stds: np.ndarray, chosen: int, default: int,
           ridge_mean: float, path: Path) -> Path:
    order = np.argsort(means, kind="stable")[::-1]       # best at the top
    fig, ax = plt.subplots(figsize=(9, max(3.2, 0.32 * len(labels) + 1.6)))
    colours = ["#d62728" if i == chosen else "#2ca02c" if i == default else "#7f7f7f"
               for i in order]
    ax.barh(range(len(order)), means[order], xerr=stds[order], color=colours, alpha=0.85,
            error_kw=dict(ecolor="#333", capsize=2, lw=0.8))
    ax.set_yticks(range(len(order)), [labels[i] for i in order], fontsize=8)
    ax.axvline(ridge_mean, color="black", ls="--", lw=1, label=f"Ridge baseline {ridge_mean:.3f}")
    ax.set_xlabel("CV MAE (mpg), mean ± std over the same 5 folds of the training split")
    ax.set_xlim(0, max(ridge_mean, float((means + stds).max())) * 1.08)
    ax.plot([], [], color="#d62728", lw=6, label="chosen")
    ax.plot([], [], color="#2ca02c", lw=6, label="untuned default")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07 - 0.9 / len(labels)), ncol=3,
              fontsize=8, frameon=False)
    ax.set_title("Tuning: every candidate on the same folds")
    fig.tight_layout()
    return _save(fig, path)


def predicted_vs_actual(sets: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 6.2))
    lo = min(min(a.min(), p.min()) for a, p in sets.values()) - 1
    hi = max(max(a.max(), p.max()) for a, p in sets.values()) + 1
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect")
    for name, (actual, pred) in sets.items():
        style = SET_STYLE[name]
        mae = np.mean(np.abs(pred - actual))
        ax.scatter(actual, pred, s=14, alpha=0.65, color=style["color"], marker=style["marker"],
                   label=f"{style['label']}: n={len(actual)}, MAE {mae:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("actual mpg")
    ax.set_ylabel("predicted mpg")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("Predicted against actual")
    fig.tight_layout()
    return _save(fig, path)


def residuals(sets: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """sets: name -> (X [n, 7], residual [n]); one panel per feature."""
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.4))
    for i, ax in enumerate(axes.flat[:len(FEATURES)]):
        for name, (X, res) in sets.items():
            style = SET_STYLE[name]
            col = X[:, i]
            present = ~np.isnan(col)
            ax.scatter(col[present], res[present], s=9, alpha=0.55, color=style["color"],
                       marker=style["marker"])
            if (~present).any():
                # Missing values have no x; they are drawn left of the axis, in red.
                x_missing = np.full((~present).sum(), np.nanmin(col) - 0.08 * np.ptp(col[present]))
                ax.scatter(x_missing, res[~present], s=24, color="#b00", marker="x")
        ax.axhline(0, color="black", lw=0.8)
        if FEATURES[i].categories:
            codes = sorted(FEATURES[i].categories)
            ax.set_xticks(codes, [FEATURES[i].categories[c] for c in codes])
        elif FEATURES[i].integer:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(_label(i) + (" (x = missing)" if FEATURES[i].nullable else ""))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("residual: predicted − actual (mpg)")
    last = axes.flat[-1]
    last.axis("off")
    for name in sets:
        last.scatter([], [], color=SET_STYLE[name]["color"], marker=SET_STYLE[name]["marker"],
                     label=SET_STYLE[name]["label"])
    last.scatter([], [], color="#b00", marker="x", label="horsepower missing (left of its axis)")
    last.legend(loc="center", fontsize=9)
    fig.suptitle("Residuals against each feature")
    fig.tight_layout()
    return _save(fig, path)


def slice_mae(rows: list[dict], overall: dict, flag_ratio: float, path: Path) -> Path:
    """Grouped bars: MAE per slice for each set, with the flag threshold of each set."""
    names = [n for n in SET_STYLE if n in overall]
    labels = [f"{r['by']}={r['label']}" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        style = SET_STYLE[name]
        ys = np.arange(len(rows)) + (k - (len(names) - 1) / 2) * height
        vals = [r[name]["mae"] if r[name]["mae"] is not None else 0.0 for r in rows]
        ax.barh(ys, vals, height=height, color=style["color"], alpha=0.85,
                label=f"{style['label']}")
        for y_, r in zip(ys, rows):
            cell = r[name]
            text = f"n={cell['count']}" + ("  FLAGGED" if cell["flagged"] else "")
            ax.text((cell["mae"] or 0) + 0.05, y_, text, va="center", fontsize=7,
                    color="#b00" if cell["flagged"] else "#333")
        ax.axvline(flag_ratio * overall[name]["mae"], color=style["color"], ls="--", lw=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"MAE (mpg); dashed: {flag_ratio:g} × overall MAE of that set (flag threshold)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("MAE per slice")
    fig.tight_layout()
    return _save(fig, path)
