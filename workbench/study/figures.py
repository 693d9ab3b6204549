"""Figures of a study: coverage and bias by condition, with Monte Carlo error bars.

One figure per measure, one panel per parameter; conditions along the x axis, methods (and
interval kinds) side by side; error bars are +- 1.96 Monte Carlo standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write
from ..plots.style import use_file_backend


def _label(row: pd.Series, axes: list[str]) -> str:
    return "\n".join(f"{a}={row[a]}" for a in axes) or str(row["condition"])


def _labels_overlap(fig, axes) -> bool:
    """Whether neighbouring x tick labels of any of ``axes`` overlap when drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        if any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:])):
            return True
    return False


def plot_measure(summary: pd.DataFrame, manifest: dict, measure: str, reference: float,
                 ylabel: str):
    """A figure of one measure (``coverage``, ``bias``, ``rel_bias``) with MCSE error bars."""
    use_file_backend()
    import matplotlib.pyplot as plt

    axes_names = manifest.get("axes", [])
    params = list(dict.fromkeys(summary["parameter"]))
    conds = summary.drop_duplicates("condition").sort_values("condition")
    xlabels = [_label(r, axes_names) for _, r in conds.iterrows()]
    xpos = {c: i for i, c in enumerate(conds["condition"])}
    series = list(dict.fromkeys(zip(summary["method"], summary["interval"])))
    ncol = min(3, len(params))
    nrow = math.ceil(len(params) / ncol)
    width = max(6.0, 0.45 * len(xlabels) * ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(min(width, 30), 3.2 * nrow + 1), squeeze=False,
                            sharex=True)
    step = 0.7 / max(len(series), 1)
    for k, p in enumerate(params):
        ax = axs[k // ncol][k % ncol]
        sub = summary[summary["parameter"] == p]
        for j, (m, kind) in enumerate(series):
            s = sub[(sub["method"] == m) & (sub["interval"] == kind)]
            if s.empty or not np.isfinite(s[measure]).any():
                continue
            x = np.array([xpos[c] for c in s["condition"]]) - 0.35 + step * (j + 0.5)
            err = 1.96 * s[f"{measure}_mcse"].to_numpy(float)
            if measure == "coverage":  # a proportion: the bar stops at 0 and 1
                v = s[measure].to_numpy(float)
                err = np.vstack([np.minimum(err, v), np.minimum(err, 1.0 - v)])
            ax.errorbar(x, s[measure], yerr=err, fmt="o", ms=3, capsize=2,
                        label=m if len({i for _, i in series}) == 1 else f"{m} ({kind})")
        ax.axhline(reference, color="0.5", lw=0.8, ls="--")
        ax.set_title(p, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(params), nrow * ncol):
        axs[k // ncol][k % ncol].set_visible(False)
    # labels on the lowest visible panel of each column, turned upright where they would overlap
    labelled = []
    for col in range(ncol):
        visible = [axs[r][col] for r in range(nrow) if r * ncol + col < len(params)]
        if visible:
            ax = visible[-1]
            ax.set_xticks(range(len(xlabels)))
            ax.set_xticklabels(xlabels, fontsize=6)
            ax.tick_params(labelbottom=True)
            labelled.append(ax)
    handles, labels = axs[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=min(len(labels), 4),
                   frameon=False)
    fig.suptitle(f"{manifest.get('name')}: {ylabel} by condition (bars: +-1.96 MCSE)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    if _labels_overlap(fig, labelled):
        for ax in labelled:
            for t in ax.get_xticklabels():
                t.set_rotation(90)
        fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


def study_figures(summary: pd.DataFrame, manifest: dict, outdir) -> list[Path]:
    """Write ``coverage.png`` and ``bias.png`` into ``outdir`` (atomically).

    Returns
    -------
    list of Path
    """
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    written = []
    # bias does not depend on the interval kind: one series per method
    first = summary.groupby("method", sort=False)["interval"].transform("first")
    one_kind = summary[summary["interval"] == first]
    for measure, ref, ylabel in (("coverage", 0.95, "coverage"), ("bias", 0.0, "bias")):
        fig = plot_measure(summary if measure == "coverage" else one_kind, manifest, measure, ref,
                           ylabel)
        path = outdir / f"{measure}.png"
        atomic_write(path, lambda p, fig=fig: fig.savefig(p, dpi=110))
        plt.close(fig)
        written.append(path)
    return written


def sbc_figure(ranks: pd.DataFrame, alpha: float = 0.05, seed: int = 0,
               manifest: dict | None = None):
    """ECDF-difference plots of SBC ranks, one panel per parameter, one line per method, with
    the simultaneous ``1 - alpha`` band of uniform ranks (Säilynoja et al. 2022).

    Parameters
    ----------
    ranks : DataFrame
        ``parameter``, ``rank``, ``thin_to``, optionally ``method``; a study's results (with
        ``condition``) give one row of panels per condition (replicates whose fit failed, with
        ``rank`` NaN, left out).
    alpha : float
    seed : int
        Seed of the bands' simulation (the figure is a function of its inputs).
    manifest : dict, optional
        The study manifest, to label the conditions by their grid values.
    """
    use_file_backend()
    import matplotlib.pyplot as plt

    from .sbc import ecdf_bands, ecdf_diff

    r = ranks if "method" in ranks else ranks.assign(method="bayes")
    r = r[np.isfinite(r["rank"].to_numpy(float))]
    params = list(dict.fromkeys(r["parameter"]))
    order = {q: i for i, q in enumerate((manifest or {}).get("parameters", []))}
    params.sort(key=lambda q: order.get(q, len(order)))
    if "condition" in r and r["condition"].nunique() > 1:
        values = {c["id"]: c["values"] for c in (manifest or {}).get("conditions", [])}
        conds = sorted(r["condition"].unique())
        panels = [(c, p) for c in conds for p in params]
        ncol, nrow = len(params), len(conds)

        def title(c, p):
            label = ", ".join(f"{a}={v}" for a, v in values.get(int(c), {}).items()) or f"condition {c}"
            return f"{p}\n{label}"
    else:
        panels = [(None, p) for p in params]
        ncol = min(3, len(params))
        nrow = math.ceil(len(params) / ncol)

        def title(c, p):
            return p
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.7 * nrow + 0.6), squeeze=False)
    bands = {}
    for k, (c, p) in enumerate(panels):
        ax = axs[k // ncol][k % ncol]
        sub = r[r["parameter"] == p] if c is None else r[(r["parameter"] == p) & (r["condition"] == c)]
        n = int(sub.groupby("method").size().max())
        if n not in bands:
            bands[n] = ecdf_bands(n, alpha=alpha, rng=np.random.default_rng(seed))
        z, lo, hi = bands[n]
        ax.fill_between(z, lo, hi, color="0.85", step="post", label=f"{1 - alpha:.0%} band")
        for m, g in sub.groupby("method", sort=False):
            ax.step(z, ecdf_diff(g["rank"], int(g["thin_to"].iloc[0]), z), where="post", lw=1,
                    label=m)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_title(title(c, p), fontsize=8)
        ax.set_xlabel("fractional rank", fontsize=8)
        ax.set_ylabel("ECDF - uniform", fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(panels), nrow * ncol):
        axs[k // ncol][k % ncol].set_visible(False)
    handles, labels = axs[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=min(len(labels), 5),
               frameon=False)
    fig.suptitle("simulation-based calibration: ECDF difference of the ranks", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def write_sbc_figure(ranks: pd.DataFrame, outdir, alpha: float = 0.05,
                     manifest: dict | None = None) -> Path:
    """Write ``sbc_ecdf.png`` into ``outdir`` (atomically); see :func:`sbc_figure`."""
    import matplotlib.pyplot as plt

    path = Path(outdir) / "sbc_ecdf.png"
    fig = sbc_figure(ranks, alpha, manifest=manifest)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
    return path
