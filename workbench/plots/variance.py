"""Figures 4 and 5: variance components over their posterior; profile likelihood vs posterior."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..names import kind as name_kind
from ..names import varcorr_param_name
from ..record import Fit
from . import draws as D
from . import likelihood as L
from . import style


def _sd_rows(fit: Fit) -> list[dict]:
    return [r for r in fit.varcorr if r.get("var2") is None]


def _interval_for(reml: Fit, name: str, row: dict, profile) -> tuple[list | None, str, str]:
    """A component's interval, its kind and legend text: the given table (e.g. lme4-style
    profile intervals on the ML deviance), the fit's own, or the REML profile computed here."""
    if isinstance(profile, pd.DataFrame):
        hit = profile[profile["parameter"] == name]
        if not hit.empty:
            h = hit.iloc[0]
            kind = str(h.get("interval", "profile"))
            return [h["lower"], h["upper"]], kind, f"{kind} 95% interval"
    if row.get("sdcor_ci"):
        return list(row["sdcor_ci"]), reml.interval, f"{reml.interval} 95% interval"
    system = getattr(reml.state, "system", None)
    if name_kind(name) == "sd" and system is not None and system.structure.ntheta == 1:
        try:
            ci = L.profile_interval(reml, reml=reml.method == "reml")
        except Exception:  # noqa: BLE001 - a missing interval is drawn as missing
            return None, "", ""
        return ci, "profile", f"{style.label(reml.method)} profile 95% interval"
    return None, "", ""


def plot_variance_components(reml: Fit, bayes: Fit | None = None, profile=None):
    """Each variance component's REML estimate and interval over its marginal posterior.

    Parameters
    ----------
    reml : Fit
        REML (or ML) fit.
    bayes : Fit, optional
        Bayesian fit; its posterior draws give the filled density and its prior draws (when it
        has them) the dashed prior density.
    profile : DataFrame, optional
        Intervals ``parameter, lower, upper, interval`` (e.g. profile or bootstrap); by default
        the fit's own ``sdcor_ci``, or a profile interval computed here for a single random
        intercept.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = _sd_rows(reml)
    if not rows:
        raise WorkbenchError("the fit has no variance components")
    ncol = min(3, len(rows))
    nrow = int(np.ceil(len(rows) / ncol))
    with style.context():
        fig, axes = plt.subplots(nrow, ncol, figsize=(max(4.0 * ncol, 6.0), 3.4 * nrow),
                                 squeeze=False)
        for ax, row in zip(axes.flat, rows):
            name = varcorr_param_name(row)
            est = row["sdcor"]
            ci, kind, ci_label = _interval_for(reml, name, row, profile)
            post = D.draws(bayes, name) if D.has_draws(bayes, name) else None
            lo, hi = 0.0, max(est * 2.5, (ci[1] * 1.3) if ci else 0, 1e-3)
            if post is not None:  # zoom on the posterior and the interval
                qlo, qhi = np.quantile(post, [0.001, 0.999])
                qlo, qhi = min(qlo, est, ci[0] if ci else qlo), max(qhi, est, ci[1] if ci else qhi)
                pad = 0.3 * (qhi - qlo)
                lo, hi = max(0.0, qlo - pad), qhi + pad
                if lo < 0.25 * hi:
                    lo = 0.0
            grid = np.linspace(lo, hi, 400)
            ymax = 1.0
            if post is not None:
                dens = D.kde(post, grid, lower=0.0 if lo == 0.0 else None)
                ax.fill_between(grid, dens, color=style.color("bayes"), alpha=0.3, lw=0)
                ax.plot(grid, dens, color=style.color("bayes"), label="marginal posterior")
                ymax = dens.max()
            if D.has_draws(bayes, name, prior=True):
                pd_ = D.kde(D.draws(bayes, name, prior=True), grid, lower=0.0 if lo == 0.0 else None)
                ax.plot(grid, pd_, color=style.color("prior"), ls="--", label="prior")
            ax.axvline(est, color=style.color("reml"), lw=1.6,
                       label=f"{style.label(reml.method)} estimate {est:.3g}")
            if ci is not None:
                y = -0.06 * ymax
                ax.plot(ci, [y, y], color=style.color(kind if kind in style.COLORS else "reml"),
                        lw=3, solid_capstyle="butt", label=ci_label)
            ax.set_ylim(-0.12 * ymax, ymax * 1.15)
            if post is None:
                ax.set_yticks([])
            ax.set_xlim(lo - 0.015 * (hi - lo) if lo == 0.0 else lo, hi)  # a line at 0 shows
            ax.set_xlabel(f"{name} (sd scale)")
            ax.set_ylabel("density" if post is not None else "")
            ax.set_title(name)
            ax.legend(loc="upper right", fontsize=8)
        for ax in list(axes.flat)[len(rows):]:
            ax.set_visible(False)
        fig.suptitle("Variance components: REML vs marginal posterior", y=1.0)
        fig.tight_layout()
    return fig


def draw_profile_posterior(ax, reml: Fit, ml: bool = True, bayes: Fit | None = None,
                           sd_max: float | None = None, title: str | None = None) -> dict:
    """Draw on ``ax`` the profile likelihood(s) of the single group sd and its flat-prior posterior.

    Curves: REML profile likelihood, ML profile likelihood, and the exact marginal posterior
    under flat priors on the fixed effects, the sd and sigma (a grid integral); a histogram of
    ``bayes``'s draws of the sd when given.  All scaled to unit area.

    Returns
    -------
    dict
        The grid and curves, for checks.
    """
    name = L.component_name(reml)
    est = next(r["sdcor"] for r in reml.varcorr if r["grp"] != "Residual")
    if sd_max is None:
        sd_max = max(1.5 * est, L.profile_interval(reml)[1] * 1.8)
    grid = np.linspace(0.0, sd_max, 240)
    dev_r, _ = L.profile_deviance(reml, grid, reml=True)
    prof_r = L.normalised_likelihood(dev_r, grid)
    out = {"grid": grid, "profile_reml": prof_r}
    ax.plot(grid, prof_r, color=style.color("reml"), label="REML profile likelihood")
    if ml:
        dev_m, _ = L.profile_deviance(reml, grid, reml=False)
        prof_m = L.normalised_likelihood(dev_m, grid)
        out["profile_ml"] = prof_m
        ax.plot(grid, prof_m, color=style.color("ml"), ls="-.", label="ML profile likelihood")
    post = L.marginal_posterior(reml, grid)
    out["posterior"] = post
    ax.plot(grid, post, color=style.color("bayes"), ls="--", lw=2.0,
            label="marginal posterior, flat priors (exact)")
    if D.has_draws(bayes, name):
        x = D.draws(bayes, name)
        ax.hist(x[x <= sd_max], bins=40, density=True, color=style.color("bayes"), alpha=0.25,
                label="posterior draws (MCMC)")
    ax.set_xlim(0, sd_max)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"{name}")
    ax.set_ylabel("likelihood / density (unit area)")
    ax.set_title(title or name)
    ax.legend(loc="upper right", fontsize=8)
    return out


def plot_profile_posterior(panels):
    """Figure 5: one panel per ``(reml_fit, title)`` or ``(reml_fit, title, bayes_fit)``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    panels = list(panels)
    with style.context():
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
        for ax, spec in zip(axes.flat, panels):
            reml, title = spec[0], spec[1]
            bayes = spec[2] if len(spec) > 2 else None
            draw_profile_posterior(ax, reml, bayes=bayes, title=title)
        fig.suptitle("Profile likelihood (maximise over the rest) vs marginal posterior "
                     "(integrate over the rest)", y=1.0)
        fig.tight_layout()
    return fig
