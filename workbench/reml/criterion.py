"""The profiled REML criterion and ML deviance as pure functions of theta.

``make_criterion(design, reml=True)`` returns a callable ``theta -> float`` (lme4's
``devFunOnly = TRUE``, MixedModels.jl's ``objective``): calling it changes nothing, and it can be
evaluated, plotted or optimised on its own.

With sigma profiled out (Bates et al. 2015, eqs. 34 and 41)::

    ML:   log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

With prior weights w_i (residual variance sigma^2 / w_i) rows are scaled by sqrt(w_i) and
``sum(log w_i)`` is subtracted, as lme4.  With known residual sds s_i (no sigma to profile), on
rows scaled by 1/s_i::

    ML:   log|L|^2 + r^2 + n log(2 pi) + 2 sum log s_i
    REML: the same + log|R_X|^2 - p log(2 pi)
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from .blocked import BlockedSystem, Factor


def criterion_from_factor(system: BlockedSystem, f: Factor, reml: bool) -> float:
    """The criterion at a computed factor."""
    n, p = system.n, system.p
    ldL2, ldRX2, r2 = system.logdets(f)
    ldW = system.design.log_weights  # lme4 subtracts sum(log w) (prior weights)
    if system.design.known_sd is not None:
        val = ldL2 + r2 + n * np.log(2 * np.pi) + 2 * np.log(system.design.known_sd).sum()
        if reml:
            val += ldRX2 - p * np.log(2 * np.pi)
        return float(val - ldW)
    if reml:
        nmp = n - p
        return float(ldL2 + ldRX2 + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp)) - ldW)
    return float(ldL2 + n * (1.0 + np.log(2.0 * np.pi * r2 / n)) - ldW)


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
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return float("inf")
        val = criterion_from_factor(system, f, reml)
        return val if np.isfinite(val) else float("inf")

    criterion.system = system
    criterion.reml = reml
    return criterion


def gradient_coefficients(system: BlockedSystem, reml: bool) -> tuple[float, float, float]:
    """(coef_S, coef_Sxx, coef_r2) writing the criterion as
    ``sum log|M_l| + coef_S log|S| + coef_Sxx log|S_xx| + coef_r2 r^2 + const``
    (log|L|^2 = sum log|M_l|, log|R_X|^2 = log|S_xx|, r^2 = |S| / |S_xx|)."""
    n, p = system.n, system.p
    if system.design.known_sd is not None:
        return 0.0, (1.0 if reml else 0.0), 1.0
    if reml:
        return float(n - p), float(1 - (n - p)), 0.0
    return float(n), float(-n), 0.0


def make_objective(system: BlockedSystem, reml: bool = True):
    """``theta -> (criterion, gradient)`` for one grouping factor (analytic gradient); None for
    designs with several grouping factors."""
    if not system.single:
        return None
    coefs = gradient_coefficients(system, reml)

    def objective(theta):
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return float("inf"), np.zeros(len(theta))
        val = criterion_from_factor(system, f, reml)
        if not np.isfinite(val):
            return float("inf"), np.zeros(len(theta))
        return val, system.gradient(f, *coefs)

    return objective
