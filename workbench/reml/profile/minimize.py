"""The minimiser of the profiles: the deviance over the other parameters, one value held.

Each point of a profile is an optimisation over the remaining parameters; it is done by the
engine's optimizer (:func:`workbench.reml.optimize.optimize_theta`: local search, then the
boundary stage for entries bounded at zero), so a profile meets the same search as the fit.
"""

from __future__ import annotations

import numpy as np


def minimize_profile(fun, x0, lower, upper, zero_flags):
    """Minimise ``fun`` from a warm start over variables on a unit scale.

    Parameters
    ----------
    fun : callable
        The deviance as a function of the free variables.
    x0, lower, upper : ndarray
        Start and bounds (``upper`` None for none).
    zero_flags : ndarray of bool
        Entries bounded at zero whose boundary may hold the minimum (sds), probed as the
        optimizer probes a zero diagonal of lambda.

    Returns
    -------
    x, value
    """
    from ..optimize import optimize_theta

    x0 = np.asarray(x0, dtype=float)
    if x0.size == 0:
        return x0, float(fun(x0))
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, dtype=float)

    def objective(x):
        # forward differences (L-BFGS-B's own default), stepping inwards at an upper bound
        f0 = float(fun(x))
        g = np.empty_like(x)
        for i in range(x.size):
            h = _STEP * max(1.0, abs(x[i]))
            if x[i] + h > upper[i]:
                h = -h
            e = x.copy()
            e[i] += h
            g[i] = (float(fun(e)) - f0) / h
        return f0, g

    x, value, _ = optimize_theta(fun, x0, lower, np.asarray(zero_flags, dtype=bool), upper=upper,
                                 objective=objective, check=False)
    return np.asarray(x, dtype=float), float(value)


_STEP = 1.4901161193847656e-08  # sqrt(machine epsilon), as scipy's finite differences


__all__ = ["minimize_profile"]
