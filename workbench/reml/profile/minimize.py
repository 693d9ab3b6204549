"""The minimiser of the profiles: the deviance over the other parameters, one value held."""

from __future__ import annotations

import warnings

import numpy as np


def _lbfgsb(fun, x0, lower, upper):
    from scipy.optimize import Bounds, minimize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(fun, np.clip(x0, lower, upper), method="L-BFGS-B",
                       bounds=Bounds(lower, upper),
                       options={"ftol": 1e-11, "gtol": 1e-7, "maxiter": 1000, "maxls": 40})
    return np.asarray(res.x, dtype=float), float(res.fun)


def minimize_profile(fun, x0, lower, upper, zero_flags, boundary_tol: float = 1e-3):
    """Bounded minimisation of ``fun`` from a warm start (variables on a unit scale).

    L-BFGS-B first.  Entries bounded at zero that end near it get two checks, because along a
    profile the criterion can have a local minimum on the boundary and another inside: a scan
    of interior values of each such entry (restarting from the best one if it is lower), and
    the search with them pinned at exactly zero.  The lowest point is kept.

    This is the profiles' own minimiser, kept in this one function so that the engine's
    optimizer can replace it in one place.

    Returns
    -------
    x, value
    """
    x0 = np.asarray(x0, dtype=float)
    if x0.size == 0:
        return x0, float(fun(x0))
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x, val = _lbfgsb(fun, x0, lower, upper)
    near = np.flatnonzero(zero_flags & (x < boundary_tol))
    if near.size == 0:
        return x, val
    best_x, best_v = x, val
    for i in near:
        for t in _SCAN:
            xt = best_x.copy()
            xt[i] = t
            vt = float(fun(xt))
            if vt < best_v:
                best_x, best_v = xt, vt
    if best_v < val:
        x, val = _lbfgsb(fun, best_x, lower, upper)
        near = np.flatnonzero(zero_flags & (x < boundary_tol))
    if near.size:
        lo, hi = lower.copy(), upper.copy()
        lo[near] = hi[near] = 0.0
        x2 = x.copy()
        x2[near] = 0.0
        if near.size < x.size:
            x2, val2 = _lbfgsb(fun, x2, lo, hi)
        else:
            val2 = float(fun(x2))
        if val2 <= val:
            x, val = x2, val2
    return x, val


# Interior values tried for an entry that ends on its zero bound (unit-scale variables).
_SCAN = (0.01, 0.03, 0.1, 0.3, 1.0)


__all__ = ["minimize_profile"]
