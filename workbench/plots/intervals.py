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
                     term: str | None = None, max_labels: int = 120):
    """BLUP +- 1.96 conditional sd beside the posterior 95% interval, levels sorted by BLUP.

    One panel per grouping factor and term (intercept and every random slope), or only
    ``group`` / ``term`` when given.  The legend sits below the panels, clear of the data.

    Parameters
    ----------
    reml : Fit
    bayes : Fit, optional
    group, term : str, optional
        Draw only this grouping factor / this term (default: every one).
    max_labels : int
        Every level is named up to this many levels (the font shrinks to fit); beyond, every
        k-th level is named.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    ge = group_effects(reml)
    if ge.empty:
        raise WorkbenchError("the fit has no group effects")
    panels = [(g, t) for g, t in dict.fromkeys(zip(ge["group"], ge["term"]))
              if (group is None or g == group) and (term is None or t == term)]
    if not panels:
        raise WorkbenchError(f"no group effects for term '{term}' of '{group}'")
    gb = group_effects(bayes) if bayes is not None else None
    nmax = max(int(((ge["group"] == g) & (ge["term"] == t)).sum()) for g, t in panels)
    height = min(max(3.2, 0.12 * nmax + 1.6), 12)
    with style.context():
        fig, axes = plt.subplots(1, len(panels), figsize=(min(5.2 * len(panels), 16), height),
                                 squeeze=False)
        for ax, (g, t) in zip(axes[0], panels):
            _caterpillar_panel(ax, ge, gb, g, t, reml, height, max_labels)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False, ncol=2)
        fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    return fig


def _caterpillar_panel(ax, ge, gb, group, term, reml, height, max_labels):
    r = ge[(ge["group"] == group) & (ge["term"] == term)].set_index("level")
    r = r.sort_values("estimate")
    pos = np.arange(len(r))
    b = None
    if gb is not None:
        b = gb[(gb["group"] == group) & (gb["term"] == term)].set_index("level").reindex(r.index)
    off = 0.18 if b is not None else 0.0
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
    # names fit at about 1.3 font sizes of height each: shrink the font, then thin the labels
    per_label_pt = 72 * (height - 1.4) / max(len(r), 1)
    size = max(4.0, min(8.0, per_label_pt / 1.3))
    every = 1 if len(r) <= max_labels else int(np.ceil(len(r) / max_labels))
    every = max(every, int(np.ceil(1.3 * size / max(per_label_pt, 1e-9))))
    shown = pos[::every]
    ax.set_yticks(shown, [str(r.index[i]) for i in shown], fontsize=size)
    ax.set_ylabel(f"{group} level" + (f" (every {every}th named)" if every > 1 else "")
                  + (", sorted by BLUP" if len(r) > 1 else ""))
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-1, len(r))
    what = "intercept" if term == "(Intercept)" else f"'{term}'"
    ax.set_xlabel(f"group effect ({what}, deviation from the fixed effect)")
    ax.set_title(f"{group}: {what}" if term != "(Intercept)" else f"{group}: intercept")


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
        ``compare(...).parameters``).  A row whose interval is ``none`` is drawn as its
        estimate alone.
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
    if p.empty:
        raise WorkbenchError("no fixed effects to draw")
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
                if kind != "none":
                    ax.plot([h["lower"], h["upper"]], [i, i], color=c, lw=2.2,
                            solid_capstyle="butt")
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
