"""Figure 1: shrinkage of group effects, raw -> BLUP and posterior mean, against group size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..compare import group_effects, shrinkage_factor
from ..errors import WorkbenchError
from ..record import Fit
from . import style


def _pick(fit: Fit, group: str | None, term: str):
    ge = group_effects(fit)
    if ge.empty:
        raise WorkbenchError("the fit has no group effects")
    group = group or ge["group"].iloc[0]
    sel = ge[(ge["group"] == group) & (ge["term"] == term)]
    if sel.empty:
        raise WorkbenchError(f"no group effects for term '{term}' of '{group}'")
    return group, sel.set_index("level")


def plot_shrinkage(reml: Fit, bayes: Fit | None = None, group: str | None = None,
                   term: str = "(Intercept)", response_label: str | None = None):
    """Raw group effects moving to their BLUPs (and posterior means), against group size.

    Panel (a) plots each level's fixed intercept plus its raw (no-pooling) effect, BLUP and
    posterior mean against its size, with the grand mean (the fixed intercept).  Panel (b),
    drawn for a single random intercept, plots the theoretical shrinkage factor
    ``n sigma_a^2 / (n sigma_a^2 + sigma^2)`` with the ratios BLUP/raw (on the curve exactly)
    and posterior mean/raw.

    Parameters
    ----------
    reml : Fit
        REML or ML fit.
    bayes : Fit, optional
        Bayesian fit of the same model.
    group, term : str
        Which effects (default: first grouping factor, its intercept).
    response_label : str, optional
        Axis label for the response scale.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    group, r = _pick(reml, group, term)
    b = _pick(bayes, group, term)[1].reindex(r.index) if bayes is not None else None
    base = reml.beta.get(term, 0.0) if term in reml.beta else 0.0
    n = r["n"].to_numpy(float)
    known = reml.design is not None and reml.design.known_sd is not None
    balanced = False
    if known:  # one row per level is typical: the precision of the raw effect is what varies
        t = next(t for t in reml.design.terms if t.group == group)
        wsum = np.bincount(t.codes, weights=1.0 / reml.design.known_sd**2, minlength=t.nlevels)
        se = pd.Series(1.0 / np.sqrt(wsum), index=list(t.levels)).reindex(r.index).to_numpy()
        jit, logx = se, False
        xlabel = "standard error of the raw effect (known sds)"
    elif n.max() <= 1.25 * max(n.min(), 1):
        # (nearly) balanced: size says nothing, so the levels stand side by side, in the order
        # of their raw effects, each level's raw effect, BLUP and posterior mean on one vertical
        balanced = True
        order = np.argsort(np.argsort(np.nan_to_num(r["raw"].to_numpy(float)), kind="stable"))
        jit, logx = order.astype(float), False
        xlabel = (f"{group} levels, sorted by raw effect (n = {int(n.min())}"
                  + (f"-{int(n.max())}" if n.max() > n.min() else "") + " each)")
    else:
        # levels of equal size spread evenly (in raw-effect order) over +-6% of the size
        jit = n.copy()
        for size in np.unique(n):
            idx = np.flatnonzero(n == size)
            if idx.size > 1:
                rank = np.argsort(np.argsort(np.nan_to_num(r["raw"].to_numpy(float)[idx])))
                jit[idx] = size * np.exp(-0.06 + 0.12 * rank / (idx.size - 1))
        logx = n.max() / max(n.min(), 1) > 20
        xlabel = f"observations per {group} level" + (" (log scale)" if logx else "")
    shift = 1.0
    have_factor = r["shrinkage"].notna().all()
    with style.context():
        fig, axes = plt.subplots(1, 2 if have_factor else 1, figsize=(10 if have_factor else 6, 4.2),
                                 squeeze=False)
        ax = axes[0, 0]
        raw = base + r["raw"].to_numpy(float)
        blup = base + r["estimate"].to_numpy(float)
        for xi, y0, y1 in zip(jit, raw, blup):
            if np.isfinite(y0):
                ax.plot([xi, xi], [y0, y1], color=style.color("raw"), lw=0.7, alpha=0.6, zorder=1)
        ax.scatter(jit, raw, marker="x", s=22, color=style.color("raw"), label="raw (no pooling)",
                   zorder=2)
        ax.scatter(jit, blup, marker="o", s=20, color=style.color("reml"),
                   label=f"BLUP ({style.label(reml.method)})", zorder=3)
        if b is not None:
            ax.scatter(jit * shift, base + b["estimate"].to_numpy(float), marker="v", s=20,
                       color=style.color("bayes"), label="posterior mean", zorder=3)
        ax.axhline(base, color=style.color("theory"), ls="--", lw=1.1,
                   label="grand mean (fixed intercept)" if term in reml.beta else "zero")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        if balanced and len(r) <= 60:
            ax.set_xticks(jit, [str(x) for x in r.index], rotation=90,
                          fontsize=max(4.0, min(8.0, 400 / len(r))))
        what = "intercept" if term == "(Intercept)" else f"'{term}' effect"
        ax.set_ylabel(response_label or f"{group} {what}")
        ax.set_title(f"{'(a) ' if have_factor else ''}shrinkage toward the grand mean, "
                     f"{len(r)} {group} levels")
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, fontsize=8,
                  frameon=False)
        if have_factor:
            ax2 = axes[0, 1]
            sd_a = next(v["sdcor"] for v in reml.varcorr if v["grp"] != "Residual")
            sigma = reml.sigma if reml.sigma is not None else 1.0
            if known:
                grid = np.linspace(jit.min() * 0.8, jit.max() * 1.2, 200)
                ax2.plot(grid, sd_a**2 / (sd_a**2 + grid**2), color=style.color("theory"),
                         label=r"$\hat\sigma_a^2/(\hat\sigma_a^2+s_j^2)$")
            elif balanced:
                ax2.axhline(float(shrinkage_factor(np.array([n.mean()]), sd_a, sigma)[0]),
                            color=style.color("theory"),
                            label=r"$n\,\hat\sigma_a^2/(n\,\hat\sigma_a^2+\hat\sigma^2)$")
            else:
                grid = np.geomspace(max(n.min() * 0.7, 0.5), n.max() * 1.4, 200)
                ax2.plot(grid, shrinkage_factor(grid, sd_a, sigma), color=style.color("theory"),
                         label=r"$n\,\hat\sigma_a^2/(n\,\hat\sigma_a^2+\hat\sigma^2)$")
            rawv = r["raw"].to_numpy(float)
            ok = np.abs(rawv) > 0.25 * max(sd_a, 1e-12)
            ax2.scatter(jit[ok], (r["estimate"].to_numpy(float) / rawv)[ok], s=20, marker="o",
                        color=style.color("reml"), label="BLUP / raw", zorder=3)
            if b is not None:
                ax2.scatter(jit[ok] * shift, (b["estimate"].to_numpy(float) / rawv)[ok], s=20,
                            marker="v", color=style.color("bayes"),
                            label="posterior mean / raw", zorder=3)
            if logx:
                ax2.set_xscale("log")
            ax2.set_ylim(-0.05, 1.15)
            ax2.axhline(1, color=style.color("raw"), lw=0.8, ls=":")
            ax2.set_xlabel(xlabel)
            ax2.set_ylabel("shrinkage factor (share of raw effect kept)")
            ax2.set_title(rf"(b) theoretical factor, $\hat\sigma_a$={sd_a:.3g}"
                          + ("" if known else rf", $\hat\sigma$={sigma:.3g}"))
            ax2.legend(loc="upper right" if known else "lower right")
            if balanced:
                ax2.set_xlabel(xlabel)
        fig.tight_layout()
    return fig
