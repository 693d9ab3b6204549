"""Figure 1: shrinkage of group effects, raw -> BLUP and posterior mean, against group size."""

from __future__ import annotations

from dataclasses import dataclass

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
    x = _x_axis(reml, group, r)
    have_factor = r["shrinkage"].notna().all()
    with style.context():
        fig, axes = plt.subplots(1, 2 if have_factor else 1, figsize=(10 if have_factor else 6, 4.2),
                                 squeeze=False)
        _draw_effects(axes[0, 0], reml, b, r, group, term, base, x, have_factor, response_label)
        if have_factor:
            _draw_factor(axes[0, 1], reml, b, r, x)
        fig.tight_layout()
    return fig



def plot_shrinkage_panels(reml: Fit, bayes: Fit | None = None, response_label: str | None = None):
    """Panel (a) of :func:`plot_shrinkage` for every grouping factor and every term of it
    (intercepts and random slopes), in a grid: raw effects, BLUPs and posterior means.

    Parameters
    ----------
    reml : Fit
        REML or ML fit.
    bayes : Fit, optional
        Bayesian fit of the same model.
    response_label : str, optional
        Axis label for the response scale of the intercept panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    ge = group_effects(reml)
    if ge.empty:
        raise WorkbenchError("the fit has no group effects")
    pairs = list(dict.fromkeys(zip(ge["group"], ge["term"])))
    ncol = min(2, len(pairs))
    nrow = -(-len(pairs) // ncol)
    with style.context():
        fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 4.4 * nrow), squeeze=False)
        for k, (group, term) in enumerate(pairs):
            group, r = _pick(reml, group, term)
            b = _pick(bayes, group, term)[1].reindex(r.index) if bayes is not None else None
            base = reml.beta.get(term, 0.0) if term in reml.beta else 0.0
            label = response_label if term == "(Intercept)" else None
            ax = axes[k // ncol, k % ncol]
            _draw_effects(ax, reml, b, r, group, term, base, _x_axis(reml, group, r), False,
                          label)
            ax.set_title(f"({chr(ord('a') + k)}) {group}: {term}, {len(r)} levels")
        for k in range(len(pairs), nrow * ncol):
            axes[k // ncol, k % ncol].set_visible(False)
        fig.tight_layout()
    return fig

@dataclass(frozen=True)
class _XAxis:
    """Where each level sits on the x axis of both panels, and how the axis is labelled."""

    pos: np.ndarray
    n: np.ndarray
    log: bool
    label: str
    balanced: bool
    known: bool


def _x_axis(reml: Fit, group: str, r: pd.DataFrame) -> _XAxis:
    """Known sds: the raw effect's standard error; (nearly) balanced: the levels side by side in
    the order of their raw effects; otherwise the level's size, equal sizes spread by +-6%."""
    n = r["n"].to_numpy(float)
    if reml.design is not None and reml.design.known_sd is not None:
        # one row per level is typical: the precision of the raw effect is what varies
        t = next(t for t in reml.design.terms if t.group == group)
        wsum = np.bincount(t.codes, weights=1.0 / reml.design.known_sd**2, minlength=t.nlevels)
        se = pd.Series(1.0 / np.sqrt(wsum), index=list(t.levels)).reindex(r.index).to_numpy()
        return _XAxis(se, n, False, "standard error of the raw effect (known sds)", False, True)
    raw = np.nan_to_num(r["raw"].to_numpy(float))
    if n.max() <= 1.25 * max(n.min(), 1):
        # size says nothing: each level's raw effect, BLUP and posterior mean on one vertical
        order = np.argsort(np.argsort(raw, kind="stable"))
        label = (f"{group} levels, sorted by raw effect (n = {int(n.min())}"
                 + (f"-{int(n.max())}" if n.max() > n.min() else "") + " each)")
        return _XAxis(order.astype(float), n, False, label, True, False)
    pos = n.copy()
    for size in np.unique(n):
        idx = np.flatnonzero(n == size)
        if idx.size > 1:
            rank = np.argsort(np.argsort(raw[idx]))
            pos[idx] = size * np.exp(-0.06 + 0.12 * rank / (idx.size - 1))
    log = n.max() / max(n.min(), 1) > 20
    label = f"observations per {group} level" + (" (log scale)" if log else "")
    return _XAxis(pos, n, log, label, False, False)


def _draw_effects(ax, reml: Fit, b, r: pd.DataFrame, group: str, term: str, base: float,
                  x: _XAxis, have_factor: bool, response_label: str | None) -> None:
    """Panel (a): raw effects, BLUPs and posterior means, with the grand mean."""
    raw = base + r["raw"].to_numpy(float)
    blup = base + r["estimate"].to_numpy(float)
    for xi, y0, y1 in zip(x.pos, raw, blup):
        if np.isfinite(y0):
            ax.plot([xi, xi], [y0, y1], color=style.color("raw"), lw=0.7, alpha=0.6, zorder=1)
    ax.scatter(x.pos, raw, marker="x", s=22, color=style.color("raw"), label="raw (no pooling)",
               zorder=2)
    ax.scatter(x.pos, blup, marker="o", s=20, color=style.color("reml"),
               label=f"BLUP ({style.label(reml.method)})", zorder=3)
    if b is not None:
        ax.scatter(x.pos, base + b["estimate"].to_numpy(float), marker="v", s=20,
                   color=style.color("bayes"), label="posterior mean", zorder=3)
    ax.axhline(base, color=style.color("theory"), ls="--", lw=1.1,
               label=("grand mean (fixed intercept)" if term == "(Intercept)" else
                      f"fixed effect of {term}" if term in reml.beta else "zero"))
    if x.log:
        ax.set_xscale("log")
    ax.set_xlabel(x.label)
    if x.balanced and len(r) <= 60:
        ax.set_xticks(x.pos, [str(v) for v in r.index], rotation=90,
                      fontsize=max(4.0, min(8.0, 400 / len(r))))
    what = "intercept" if term == "(Intercept)" else f"'{term}' effect"
    ax.set_ylabel(response_label or f"{group} {what}")
    ax.set_title(f"{'(a) ' if have_factor else ''}shrinkage toward the grand mean, "
                 f"{len(r)} {group} levels")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, fontsize=8, frameon=False)


def _draw_factor(ax, reml: Fit, b, r: pd.DataFrame, x: _XAxis) -> None:
    """Panel (b): the theoretical shrinkage factor and the ratios BLUP / raw and posterior
    mean / raw (a single random intercept)."""
    sd_a = next(v["sdcor"] for v in reml.varcorr if v["grp"] != "Residual")
    sigma = reml.sigma if reml.sigma is not None else 1.0
    n = x.n
    if x.known:
        grid = np.linspace(x.pos.min() * 0.8, x.pos.max() * 1.2, 200)
        ax.plot(grid, sd_a**2 / (sd_a**2 + grid**2), color=style.color("theory"),
                label=r"$\hat\sigma_a^2/(\hat\sigma_a^2+s_j^2)$")
    elif x.balanced:
        ax.axhline(float(shrinkage_factor(np.array([n.mean()]), sd_a, sigma)[0]),
                   color=style.color("theory"),
                   label=r"$n\,\hat\sigma_a^2/(n\,\hat\sigma_a^2+\hat\sigma^2)$")
    else:
        grid = np.geomspace(max(n.min() * 0.7, 0.5), n.max() * 1.4, 200)
        ax.plot(grid, shrinkage_factor(grid, sd_a, sigma), color=style.color("theory"),
                label=r"$n\,\hat\sigma_a^2/(n\,\hat\sigma_a^2+\hat\sigma^2)$")
    rawv = r["raw"].to_numpy(float)
    ok = np.abs(rawv) > 0.25 * max(sd_a, 1e-12)
    ax.scatter(x.pos[ok], (r["estimate"].to_numpy(float) / rawv)[ok], s=20, marker="o",
               color=style.color("reml"), label="BLUP / raw", zorder=3)
    if b is not None:
        ax.scatter(x.pos[ok], (b["estimate"].to_numpy(float) / rawv)[ok], s=20, marker="v",
                   color=style.color("bayes"), label="posterior mean / raw", zorder=3)
    if x.log:
        ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.15)
    ax.axhline(1, color=style.color("raw"), lw=0.8, ls=":")
    ax.set_xlabel(x.label)
    ax.set_ylabel("shrinkage factor (share of raw effect kept)")
    ax.set_title(rf"(b) theoretical factor, $\hat\sigma_a$={sd_a:.3g}"
                 + ("" if x.known else rf", $\hat\sigma$={sigma:.3g}"))
    ax.legend(loc="upper right" if x.known else "lower right")
