"""Figures 2 and 3: group-effect intervals (caterpillar) and fixed-effect intervals side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..compare import Comparison, compare, group_effects
from ..errors import WorkbenchError
from ..names import kind as name_kind
from ..record import Fit
from . import style


def plot_caterpillar(reml: Fit, bayes: Fit | None = None, group: str | None = None,
                     term: str = "(Intercept)", max_labels: int = 40):
    """BLUP +- 1.96 conditional sd beside the posterior 95% interval, levels sorted by BLUP.

    Parameters
    ----------
    reml : Fit
    bayes : Fit, optional
    group, term : str
        Which effects (default: first grouping factor, its intercept).
    max_labels : int
        Level names are printed when there are at most this many levels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    ge = group_effects(reml)
    group = group or ge["group"].iloc[0]
    r = ge[(ge["group"] == group) & (ge["term"] == term)].set_index("level")
    if r.empty:
        raise WorkbenchError(f"no group effects for term '{term}' of '{group}'")
    r = r.sort_values("estimate")
    pos = np.arange(len(r))
    b = None
    if bayes is not None:
        gb = group_effects(bayes)
        b = gb[(gb["group"] == group) & (gb["term"] == term)].set_index("level").reindex(r.index)
    off = 0.18 if b is not None else 0.0
    height = min(max(3.2, 0.13 * len(r) + 1.2), 10)
    with style.context():
        fig, ax = plt.subplots(figsize=(6.4, height))
        ax.errorbar(r["estimate"], pos - off,
                    xerr=[r["estimate"] - r["lower"], r["upper"] - r["estimate"]],
                    fmt="o", ms=3.2, lw=1.0, color=style.color("reml"),
                    label=f"{style.label(reml.method)} BLUP ± 1.96 conditional sd")
        if b is not None:
            ax.errorbar(b["estimate"], pos + off,
                        xerr=[b["estimate"] - b["lower"], b["upper"] - b["estimate"]],
                        fmt="v", ms=3.2, lw=1.0, color=style.color("bayes"),
                        label="posterior mean, 95% credible interval")
        ax.axvline(0, color=style.color("theory"), lw=0.9, ls="--")
        if len(r) <= max_labels:
            ax.set_yticks(pos, [str(x) for x in r.index])
            ax.set_ylabel(f"{group} level")
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(r)} {group} levels, sorted by BLUP")
        ax.grid(axis="y", visible=False)
        ax.set_ylim(-1, len(r))
        what = "intercept" if term == "(Intercept)" else f"'{term}'"
        ax.set_xlabel(f"group effect ({what}, deviation from the fixed effect)")
        ax.set_title(f"Group-effect intervals: {group}")
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9, frameon=True)
        fig.tight_layout()
    return fig


def _interval_rows(source) -> pd.DataFrame:
    if isinstance(source, Comparison):
        return source.parameters
    if isinstance(source, pd.DataFrame):
        return source
    return compare(*source).parameters


def plot_fixed_intervals(source, parameters=None, truth: dict | None = None):
    """Fixed-effect estimates and intervals of every method and interval kind, side by side.

    Parameters
    ----------
    source : Comparison, DataFrame or sequence of Fit / interval tables
        Rows ``parameter, method, estimate, lower, upper, interval`` (as
        ``compare(...).parameters``).  Rows whose interval is ``none`` are skipped.
    parameters : list of str, optional
        Which ``beta[...]`` parameters (default: all of them).
    truth : dict, optional
        ``{parameter: true value}`` drawn as a vertical line (simulated data).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    p = _interval_rows(source)
    p = p[p["parameter"].map(name_kind) == "beta"]
    if parameters is not None:
        p = p[p["parameter"].isin(parameters)]
    p = p[p["interval"] != "none"]
    if p.empty:
        raise WorkbenchError("no fixed-effect intervals to draw")
    names = list(dict.fromkeys(p["parameter"]))
    ncol = min(3, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    rows = list(dict.fromkeys(zip(p["method"], p["interval"])))
    with style.context():
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 0.45 * len(rows) * nrow + 1.5),
                                 squeeze=False)
        for ax, name in zip(axes.flat, names):
            sub = p[p["parameter"] == name]
            for i, (m, kind) in enumerate(rows):
                hit = sub[(sub["method"] == m) & (sub["interval"] == kind)]
                if hit.empty:
                    continue
                h = hit.iloc[0]
                c = style.color(m if kind == "wald" or kind not in style.COLORS else kind)
                ax.plot([h["lower"], h["upper"]], [i, i], color=c, lw=2.2, solid_capstyle="butt")
                ax.plot(h["estimate"], i, marker=style.MARKERS.get(kind, "o"), color=c, ms=6)
            if truth and name in truth:
                ax.axvline(truth[name], color=style.color("truth"), ls=":", lw=1.2, label="truth")
                ax.legend(loc="best", fontsize=8)
            ax.set_yticks(range(len(rows)),
                          [f"{style.label(m)} · {style.label(k)}" for m, k in rows])
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            ax.set_title(name)
            ax.set_xlabel("estimate and 95% interval")
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        fig.suptitle("Fixed effects: point estimates and 95% intervals by method", y=1.0)
        fig.tight_layout()
    return fig
