"""Exact curves for one variance component: restricted/ML likelihood, profile, grid posterior.

For a model whose random effects are one scalar term (a random intercept), the likelihood of the
group sd ``s_a`` and the residual sd ``sigma`` is cheap to evaluate from the REML engine's
factorisation at ``theta = s_a / sigma`` (Bates et al. 2015, eqs. 32 and 40, before sigma is
profiled out)::

    -2 log L_R(theta, sigma) = log|L|^2 + log|R_X|^2 + (n - p) log(2 pi sigma^2) + r^2 / sigma^2
    -2 log L  (theta, sigma) = log|L|^2 + n log(2 pi sigma^2) + r^2 / sigma^2

With a flat prior on the fixed effects, integrating them out of the likelihood gives the
restricted likelihood exactly, so the marginal posterior of the variance parameters under flat
priors is the restricted likelihood normalised (and integrated over sigma).  These functions
compute, on a grid, the profile likelihood of ``s_a`` (maximised over sigma) and its marginal
posterior (integrated over sigma) under any prior on ``s_a``: the exact reference curves for
figures 4, 5 and 7 and for the walk-through.  With known residual sds there is no sigma and
``theta = s_a``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from .. import names
from ..errors import WorkbenchError
from ..record import Fit


def _system(fit: Fit):
    system = fit.reml_state("likelihood curves", need_system=True).system
    if system.structure.ntheta != 1:
        raise WorkbenchError(
            "likelihood curves are implemented for one scalar random term (a random intercept)"
        )
    return system


def component_name(fit: Fit) -> str:
    """Tidy name (``sd[GROUP:TERM]``) of the fit's single variance component."""
    _system(fit)
    row = next(r for r in fit.varcorr if r["grp"] != "Residual")
    return names.varcorr_param_name(row)


def deviance(fit: Fit, sd, sigma=None, reml: bool = True) -> float:
    """``-2 log`` restricted (``reml=True``) or full likelihood at group sd ``sd`` and ``sigma``.

    With known residual sds ``sigma`` is ignored.  Constants as lme4's criterion, so at the
    fit's estimates this equals ``fit.criterion`` (for the matching ``reml``).
    """
    from ..reml.criterion import deviance as deviance_of

    system = _system(fit)
    if fit.design.known_sd is not None:
        theta = float(sd)
    elif sigma is None or sigma <= 0:
        raise WorkbenchError("deviance needs a positive residual sd")
    else:
        theta = float(sd) / float(sigma)
    f = system.factor(np.array([max(theta, 0.0)]))
    return deviance_of(system, system.logdets(f), reml, sigma)


def profile_deviance(fit: Fit, sd_grid, reml: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Profile of ``-2 log L`` over the group sd: minimised over sigma at each grid value.

    Returns
    -------
    dev : ndarray
        Profiled deviance at each ``sd_grid`` value.
    sigma : ndarray
        The maximising sigma (NaN with known residual sds).
    """
    sd_grid = np.asarray(sd_grid, dtype=float)
    if fit.design.known_sd is not None:
        return np.array([deviance(fit, s, reml=reml) for s in sd_grid]), np.full(sd_grid.size, np.nan)
    s0 = fit.sigma
    dev, sig = [], []
    for s in sd_grid:
        res = minimize_scalar(lambda ls: deviance(fit, s, np.exp(ls), reml),
                              bounds=(np.log(s0) - 3, np.log(s0) + 3), method="bounded",
                              options={"xatol": 1e-9})
        dev.append(res.fun)
        sig.append(np.exp(res.x))
    return np.array(dev), np.array(sig)


def profile_interval(fit: Fit, level: float = 0.95, reml: bool = True, upper: float | None = None):
    """Likelihood-ratio (profile) interval of the group sd, by root finding on the profile.

    Returns ``[lower, upper]``; the lower end is 0 when the profile at 0 lies inside.
    """
    from scipy.optimize import brentq
    from scipy.stats import chi2

    est = next(r["sdcor"] for r in fit.varcorr if r["grp"] != "Residual")
    cut = chi2.ppf(level, 1)
    base = profile_deviance(fit, [est], reml)[0][0]

    def g(s):
        return profile_deviance(fit, [s], reml)[0][0] - base - cut

    hi = upper or max(4 * est, 1.0) * (1 if fit.sigma is None else fit.sigma)
    while g(hi) < 0:
        hi *= 2
    up = brentq(g, est, hi, xtol=1e-8)
    lo = 0.0 if g(0.0) <= 0 else brentq(g, 0.0, est, xtol=1e-8)
    return [float(lo), float(up)]


def sigma_grid(fit: Fit, size: int = 81, width: float = 8.0) -> np.ndarray:
    """Grid of residual sds around the fit's sigma covering ``width`` approximate posterior sds."""
    k = fit.nobs - len(fit.beta)
    half = min(2.0, width / np.sqrt(2.0 * max(k, 1)))
    return fit.sigma * np.exp(np.linspace(-half, half, size))


def log_posterior_grid(fit: Fit, sd_grid, sigma_values=None, log_prior_sd=None,
                       log_prior_sigma=None) -> np.ndarray:
    """Unnormalised log posterior of (group sd, sigma) on a grid, fixed effects integrated out.

    The fixed effects have a flat prior, so integrating them out leaves the restricted
    likelihood.  ``log_prior_sd`` / ``log_prior_sigma`` are callables on arrays (flat when
    None).

    Returns
    -------
    ndarray, shape (len(sd_grid), len(sigma_values)) (one column with known residual sds)
    """
    sd_grid = np.asarray(sd_grid, dtype=float)
    if fit.design.known_sd is not None:
        lp = -0.5 * np.array([deviance(fit, s) for s in sd_grid])
        if log_prior_sd is not None:
            lp = lp + log_prior_sd(sd_grid)
        return lp[:, None]
    sig = sigma_grid(fit) if sigma_values is None else np.asarray(sigma_values, dtype=float)
    lp = np.empty((sd_grid.size, sig.size))
    for i, s in enumerate(sd_grid):
        for j, sg in enumerate(sig):
            lp[i, j] = -0.5 * deviance(fit, s, sg)
    if log_prior_sd is not None:
        lp += np.asarray(log_prior_sd(sd_grid))[:, None]
    if log_prior_sigma is not None:
        lp += np.asarray(log_prior_sigma(sig))[None, :]
    return lp


def marginal_posterior(fit: Fit, sd_grid, log_prior_sd=None, sigma_values=None) -> np.ndarray:
    """Marginal posterior density of the group sd on ``sd_grid`` (flat priors on beta, sigma).

    Integrates over sigma by the trapezoid rule and normalises over ``sd_grid`` (which must
    cover the posterior mass).
    """
    sd_grid = np.asarray(sd_grid, dtype=float)
    lp = log_posterior_grid(fit, sd_grid, sigma_values, log_prior_sd)
    if lp.shape[1] == 1:
        dens = np.exp(lp[:, 0] - np.nanmax(lp))
    else:
        sig = sigma_grid(fit) if sigma_values is None else np.asarray(sigma_values, dtype=float)
        dens = np.trapezoid(np.exp(lp - np.nanmax(lp)), sig, axis=1)
    dens = np.where(np.isfinite(dens), dens, 0.0)
    return dens / np.trapezoid(dens, sd_grid)


def normalised_likelihood(dev: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``exp(-dev/2)`` scaled to integrate to one over ``grid`` (to draw beside a density)."""
    like = np.exp(-(dev - np.nanmin(dev)) / 2.0)
    return like / np.trapezoid(like, grid)
