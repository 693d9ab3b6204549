"""Figure 6: the marginal covariance V = Z G Z' + sigma^2 I of a small data set as a heat map."""

from __future__ import annotations

import numpy as np

from ..errors import WorkbenchError
from ..record import Fit
from . import style


def compound_symmetry_V(codes, sd_group: float, sigma: float) -> np.ndarray:
    """V of a random-intercept model from the compound-symmetry formula.

    ``sigma^2 + sigma_a^2`` on the diagonal, ``sigma_a^2`` between two rows of one group,
    0 between groups.
    """
    codes = np.asarray(codes)
    same = codes[:, None] == codes[None, :]
    return np.where(same, sd_group**2, 0.0) + sigma**2 * np.eye(codes.size)


def _order(fit: Fit) -> np.ndarray:
    """Rows sorted by the first grouping factor, so the blocks sit on the diagonal."""
    return np.argsort(fit.design.terms[0].codes, kind="stable")


def draw_V(ax, fit: Fit, title: str, vmax: float | None = None):
    """Heat map of the fit's V on ``ax`` with group boundaries; returns the image."""
    from ..reml.gls import build_V

    V = build_V(fit)
    o = _order(fit)
    V = V[np.ix_(o, o)]
    vmax = vmax or np.abs(V).max()
    im = ax.imshow(V, cmap="PuOr_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    codes = fit.design.terms[0].codes[o]
    cuts = np.flatnonzero(np.diff(codes)) + 0.5
    for c in cuts:
        ax.axhline(c, color="0.35", lw=0.6)
        ax.axvline(c, color="0.35", lw=0.6)
    ax.set_title(title, fontsize=10)
    ticks = np.arange(0, V.shape[0], 5)
    ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    ax.set_xlabel("observation (sorted by group)")
    ax.set_ylabel("observation (sorted by group)")
    ax.grid(False)
    return im


def plot_covariance(intercept_fit: Fit, slope_fit: Fit | None = None):
    """V of a random-intercept fit (compound symmetry) beside V of a random-slope fit.

    Parameters
    ----------
    intercept_fit : Fit
        REML fit of ``y ~ ... + (1 | g)`` on a small data set.
    slope_fit : Fit, optional
        REML fit of ``y ~ ... + (1 + x | g)`` on the same rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if intercept_fit.design is None or intercept_fit.design.n > 200:
        raise WorkbenchError("the V heat map is for small data sets (at most 200 rows)")
    fits = [intercept_fit] + ([slope_fit] if slope_fit is not None else [])
    from ..reml.gls import build_V

    vmax = max(np.abs(build_V(f)).max() for f in fits)
    sd_a = next(r["sdcor"] for r in intercept_fit.varcorr if r["grp"] != "Residual")
    s = intercept_fit.sigma
    with style.context():
        fig, axes = plt.subplots(1, len(fits), figsize=(5.0 * len(fits) + 0.8, 5.0),
                                 squeeze=False, layout="constrained")
        im = draw_V(axes[0, 0], intercept_fit,
                    f"(a) random intercepts: {intercept_fit.formula}\n"
                    rf"diagonal $\sigma^2+\sigma_a^2$ = {s**2:.2f} + {sd_a**2:.2f}; "
                    rf"same group $\sigma_a^2$ = {sd_a**2:.2f}; else 0", vmax)
        if slope_fit is not None:
            draw_V(axes[0, 1], slope_fit,
                   f"(b) random slopes: {slope_fit.formula}\n"
                   r"same group $z_i' G z_j$ (+ $\sigma^2$ if $i=j$); else 0", vmax)
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
        cb.set_label(r"$V_{ij}$ = Cov($y_i$, $y_j$)")
        d = intercept_fit.design
        fig.suptitle(r"Marginal covariance $V = Z G Z' + \sigma^2 I$ of "
                     f"{d.n} observations in {d.terms[0].nlevels} groups (REML estimates)")
    return fig
