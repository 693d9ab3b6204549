"""Figure 7: prior sensitivity of a group sd (eight schools), beside the REML boundary estimate.

The posterior of the group sd ``tau`` under each prior is computed exactly on a grid (flat prior
on the fixed effects, which integrates out to the restricted likelihood); the histograms of a
Bayesian fit's draws under the same prior are drawn over it when given.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..record import Fit
from . import draws as D
from . import likelihood as L
from . import style


def _ig_on_variance(a: float, b: float):
    """log density of tau when tau^2 ~ InverseGamma(a, b) (Jacobian 2 tau included)."""
    return lambda t: stats.invgamma.logpdf(np.asarray(t) ** 2, a, scale=b) + np.log(2 * np.asarray(t))


#: ``{label: log density of tau}``: the priors of Gelman (2006) for the eight schools.
PRIORS = {
    "half-Cauchy(0, 25)": lambda t: stats.halfcauchy.logpdf(t, scale=25.0),
    "half-normal(0, 10)": lambda t: stats.halfnorm.logpdf(t, scale=10.0),
    "inverse-gamma(0.001, 0.001) on tau^2": _ig_on_variance(1e-3, 1e-3),
    "uniform(0, 100)": lambda t: stats.uniform.logpdf(t, 0.0, 100.0),
}


def tau_grid(tau_max: float = 40.0) -> np.ndarray:
    """A grid fine near zero (where inverse-gamma(eps, eps) piles up) and even elsewhere."""
    return np.unique(np.concatenate([np.geomspace(1e-4, 1.0, 300), np.linspace(1.0, tau_max, 500)]))


def exact_posteriors(reml: Fit, priors: dict | None = None, grid=None) -> dict:
    """``{label: density on grid}`` of the group sd under each prior (flat on the fixed effects)."""
    priors = PRIORS if priors is None else priors
    grid = tau_grid() if grid is None else np.asarray(grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: L.marginal_posterior(reml, grid, log_prior_sd=f) for k, f in priors.items()}


def plot_prior_sensitivity(reml: Fit, priors: dict | None = None, bayes_fits: dict | None = None,
                           tau_max: float = 30.0, data_label: str = "eight schools"):
    """Posterior of the group sd under several priors, beside the REML (boundary) estimate.

    Parameters
    ----------
    reml : Fit
        REML fit with a single random intercept (e.g. ``y ~ 1 + (1 | school)``, known sds).
    priors : dict, optional
        ``{label: log density of the sd}`` (default :data:`PRIORS`).
    bayes_fits : dict, optional
        ``{label: Bayesian fit under that prior}``; their draws are drawn as histograms.
    tau_max : float
        Right end of the axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    priors = PRIORS if priors is None else priors
    name = L.component_name(reml)
    grid = tau_grid(max(tau_max * 1.5, 40.0))
    post = exact_posteriors(reml, priors, grid)
    est = next(r["sdcor"] for r in reml.varcorr if r["grp"] != "Residual")
    with style.context():
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.0))
        peak = 0.0
        for i, (lab, lp) in enumerate(priors.items()):
            c = style.CYCLE[i % len(style.CYCLE)]
            with np.errstate(divide="ignore", invalid="ignore"):
                pdens = np.exp(lp(grid))
            ax0.plot(grid, pdens, color=c, lw=1.6, label=lab)
            ax1.plot(grid, post[lab], color=c, lw=1.8, label=f"posterior, {lab} prior")
            sel = grid > 0.5
            peak = max(peak, post[lab][sel].max())
            fit = (bayes_fits or {}).get(lab)
            if D.has_draws(fit, name):
                x = D.draws(fit, name)
                ax1.hist(x[x <= tau_max], bins=60, density=True, color=c, alpha=0.8,
                         histtype="step", lw=0.8)
        ax0.set_xlim(0, tau_max)
        ax0.set_ylim(0, 0.12)
        ax0.set_xlabel(f"{name}")
        ax0.set_ylabel("prior density")
        ax0.set_title("(a) priors on the group sd")
        ax0.legend(loc="upper right", fontsize=8)
        ax1.axvline(est, color=style.color("reml"), lw=1.4, ls="--")
        ax1.plot([est], [0], marker="D", ms=9, color=style.color("reml"), clip_on=False,
                 zorder=5, label=f"REML estimate = {est:.3g} (on the boundary)")
        ax1.set_xlim(-0.6, tau_max)
        ax1.set_ylim(0, peak * 1.25)
        ax1.set_xlabel(f"{name}")
        ax1.set_ylabel("posterior density")
        ax1.set_title(f"(b) posteriors, {data_label} (exact; histograms: MCMC)")
        ax1.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
    return fig
