"""-2 log L of a factored system, and the profiled criterion as a pure function of theta.

:func:`deviance` is the one formula for -2 log L (REML or ML) from the pieces of a factor,
``log|L|^2``, ``log|R_X|^2`` and the penalized RSS ``r^2`` (MixedModels.jl's ``objective``); the
fit, the profiles, the Satterthwaite code and the likelihood plots all call it.
``make_criterion(design, reml=True)`` returns a callable ``theta -> float`` (lme4's
``devFunOnly = TRUE``): calling it changes nothing, and it can be evaluated, plotted or
optimised on its own.

With sigma profiled out (Bates et al. 2015, eqs. 34 and 41)::

    ML:   log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

With sigma given (profiles and plots hold it fixed), m = n (ML) or n - p (REML)::

    log|L|^2 + r^2 / sigma^2 + m log(2 pi sigma^2)  [+ log|R_X|^2 for REML]

With prior weights w_i (residual variance sigma^2 / w_i) rows are scaled by sqrt(w_i) and
``sum(log w_i)`` is subtracted from every form, as lme4 does.  With known residual sds s_i (no
sigma), on rows scaled by 1/s_i::

    ML:   log|L|^2 + r^2 + n log(2 pi) + 2 sum log s_i
    REML: the same + log|R_X|^2 - p log(2 pi)
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from .blocked import BlockedSystem, Factor


def deviance(system: BlockedSystem, logdets: tuple[float, float, float], reml: bool,
             sigma: float | None = None) -> float:
    """-2 log L (REML criterion or ML deviance, lme4's constants) from a factor's pieces.

    Parameters
    ----------
    system : BlockedSystem
        Gives n, p and the known residual sds, if any.
    logdets : (float, float, float)
        ``(log|L|^2, log|R_X|^2, r^2)`` as :meth:`BlockedSystem.logdets` returns them (a caller
        may pass a larger ``r^2``: the profile of a fixed effect adds ``(b - beta_j)^2 / v_jj``).
    reml : bool
    sigma : float, optional
        The residual sd; None profiles it out.  Ignored with known residual sds.

    Returns
    -------
    float
        See the module docstring for the formulas.
    """
    n, p = system.n, system.p
    ldL2, ldRX2, r2 = logdets
    ldW = system.design.log_weights  # lme4 subtracts sum(log w) (prior weights)
    known_sd = system.design.known_sd
    if known_sd is not None:
        val = ldL2 + r2 + n * np.log(2 * np.pi) + 2 * np.log(known_sd).sum()
        if reml:
            val += ldRX2 - p * np.log(2 * np.pi)
        return float(val - ldW)
    if sigma is not None:
        s2 = float(sigma) ** 2
        m = n - p if reml else n
        val = ldL2 + r2 / s2 + m * (np.log(2 * np.pi) + np.log(s2)) - ldW
        return float(val + ldRX2) if reml else float(val)
    if reml:
        nmp = n - p
        return float(ldL2 + ldRX2 + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp)) - ldW)
    return float(ldL2 + n * (1.0 + np.log(2.0 * np.pi * r2 / n)) - ldW)


def deviance_at(system: BlockedSystem, theta, reml: bool, sigma: float | None = None) -> float:
    """:func:`deviance` at ``theta``; ``inf`` where the system cannot be factored."""
    try:
        pieces = system.pieces(theta)
    except (np.linalg.LinAlgError, ValueError):
        return float("inf")
    val = deviance(system, pieces, reml, sigma)
    return val if np.isfinite(val) else float("inf")


def criterion_from_factor(system: BlockedSystem, f: Factor, reml: bool) -> float:
    """The profiled criterion at a computed factor."""
    return deviance(system, system.logdets(f), reml)


def make_criterion(design: Design | BlockedSystem, reml: bool = True):
    """Return the profiled criterion as a function of theta.

    Parameters
    ----------
    design : Design or BlockedSystem
    reml : bool
        REML criterion (True) or ML deviance (False), as lme4 reports them.

    Returns
    -------
    callable
        ``f(theta) -> float``; ``inf`` where the system cannot be factored.
    """
    system = design if isinstance(design, BlockedSystem) else BlockedSystem(design)

    def criterion(theta) -> float:
        return deviance_at(system, theta, reml)

    criterion.system = system
    criterion.reml = reml
    return criterion


def gradient_coefficients(system: BlockedSystem, reml: bool,
                          r2: float) -> tuple[float, float, float]:
    """(coef_S, coef_Sxx, coef_r2) writing the criterion's differential at a point with
    penalized RSS ``r2`` as that of ``sum log|M_l| + coef_S log|S| + coef_Sxx log|S_xx| +
    coef_r2 r^2`` (log|L|^2 = sum log|M_l|, log|R_X|^2 = log|S_xx|, r^2 = |S| / |S_xx|).

    With sigma profiled out the criterion holds ``m log r^2`` (m = n - p for REML, n for ML),
    whose differential is ``(m / r^2) d r^2``.  Writing it as ``m (log|S| - log|S_xx|)``
    instead gives the same derivative as a difference of two terms of size m that cancel to
    a few units: at the optimum the gradient would carry a rounding error m times larger,
    enough to keep a quasi-Newton search stepping on noise.
    """
    n, p = system.n, system.p
    if system.design.known_sd is not None:
        return 0.0, (1.0 if reml else 0.0), 1.0
    if reml:
        return 0.0, 1.0, float(n - p) / r2
    return 0.0, 0.0, float(n) / r2


def make_objective(system: BlockedSystem, reml: bool = True):
    """``theta -> (criterion, gradient)`` with the analytic gradient of
    :meth:`BlockedSystem.gradient` (any number of grouping factors and terms)."""

    def objective(theta):
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return float("inf"), np.zeros(len(theta))
        pieces = system.logdets(f)
        val = deviance(system, pieces, reml)
        if not np.isfinite(val):
            return float("inf"), np.zeros(len(theta))
        return val, system.gradient(f, *gradient_coefficients(system, reml, pieces[2]))

    return objective
