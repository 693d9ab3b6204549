"""R-hat, bulk ESS and tail ESS of several parameters at once: ArviZ's numbers, batched.

ArviZ (``az.rhat``, ``az.ess(method="bulk" | "tail")``; Vehtari et al. 2021) computes, for one
parameter's (chains, draws) array ``x``:

* the rank-normalised split R-hat: the chains split in halves, their values replaced by
  ``z = Phi^-1((r - 3/8) / (N + 1/4))`` (``r`` the average rank among all N values), R-hat of
  ``z`` and of the folded ``|x - median(x)|`` likewise, the larger of the two;
* the bulk ESS: Geyer's initial-monotone-sequence ESS of the same split ``z``;
* the tail ESS: the smaller ESS of the indicators ``x <= q`` at the 5% and 95% quantiles (R's
  type 7).

Here the ranks, normal scores, autocovariances (one FFT for all parameters and chains) and
chain statistics are computed once for all parameters and shared between R-hat and bulk ESS;
the arithmetic is ArviZ's, step by step (its variance kernel, its autocovariance, its quantile
formula), so the numbers agree with ArviZ's to rounding (``tests/bayes/test_chaindiag.py``).
A fast-path fit spends about 10 ms in the per-parameter ArviZ calls, 1 ms here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri


def _arviz():
    """ArviZ's autocovariance and variance kernel (numba's when ArviZ uses numba)."""
    from arviz.stats.stats_utils import autocov, stats_variance_2d
    from arviz.utils import _numba_var

    return autocov, lambda a, axis, ddof: _numba_var(stats_variance_2d, np.var, a, axis=axis,
                                                      ddof=ddof)


def _split(x: np.ndarray) -> np.ndarray:
    """(k, chains, draws) -> (k, 2 chains, draws // 2): each chain's first and last halves."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)


def _zscale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the average ranks over each parameter's values: (k, ...) -> (k, ...)."""
    k = x.shape[0]
    flat = x.reshape(k, -1)
    n = flat.shape[1]
    order = np.argsort(flat, axis=1)
    xs = np.take_along_axis(flat, order, axis=1)
    ranks = np.empty_like(flat)
    for i in range(k):  # ties (repeated states of a Metropolis chain) share their average rank
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(xs[i, 1:], xs[i, :-1], out=new[1:])
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], n)
        ranks[i, order[i]] = np.repeat(0.5 * (starts + ends + 1), ends - starts)
    c = 3 / 8
    return ndtri((ranks - c) / (n - 2 * c + 1)).reshape(x.shape)


def _rhat(z: np.ndarray, var) -> np.ndarray:
    """Split R-hat of each (chains, draws) slice of z (k, chains, draws) (ArviZ's ``_rhat``)."""
    out = np.empty(z.shape[0])
    n = z.shape[2]
    for i in range(z.shape[0]):
        chain_mean = np.mean(z[i], axis=1)
        between = n * var(chain_mean, None, 1)
        within = np.mean(var(z[i], 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):  # constant: NaN, as ArviZ
            out[i] = np.sqrt((between / within + n - 1) / n)
    return out


def _ess(x: np.ndarray, autocov, var) -> np.ndarray:
    """Geyer's initial-monotone-sequence ESS of each (chains, draws) slice of x (ArviZ's
    ``_ess``; x is (k, chains, draws))."""
    x = np.asarray(x, dtype=float)
    k, m, n = x.shape
    acov = autocov(x.reshape(k * m, n), axis=1).reshape(k, m, n)
    out = np.empty(k)
    for i in range(k):
        xi = x[i]
        if np.isnan(xi).any():
            out[i] = math.nan
            continue
        if (np.max(xi) - np.min(xi)) < np.finfo(float).resolution:
            out[i] = xi.size
            continue
        a = acov[i]
        mean_var = np.mean(a[:, 0]) * n / (n - 1.0)
        var_plus = mean_var * (n - 1.0) / n
        if m > 1:
            var_plus += var(xi.mean(axis=1), None, 1)
        macov = a.mean(axis=0).tolist()
        rho = [0.0] * n
        rho_even = 1.0
        rho[0] = rho_even
        rho_odd = 1.0 - (mean_var - macov[1]) / var_plus
        rho[1] = rho_odd
        t = 1
        while t < (n - 3) and (rho_even + rho_odd) > 0.0:
            rho_even = 1.0 - (mean_var - macov[t + 1]) / var_plus
            rho_odd = 1.0 - (mean_var - macov[t + 2]) / var_plus
            if (rho_even + rho_odd) >= 0:
                rho[t + 1] = rho_even
                rho[t + 2] = rho_odd
            t += 2
        max_t = t - 2
        if rho_even > 0:
            rho[max_t + 1] = rho_even
        t = 1
        while t <= max_t - 2:
            if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
                rho[t + 2] = rho[t + 1]
            t += 2
        r = np.asarray(rho)
        ess = m * n
        tau = -1.0 + 2.0 * np.sum(r[: max_t + 1]) + np.sum(r[max_t + 1: max_t + 2])
        tau = max(tau, 1 / np.log10(ess))
        out[i] = math.nan if np.isnan(r).any() else ess / tau
    return out


def _quantile7(flat: np.ndarray, p: float) -> np.ndarray:
    """Each row's type-7 quantile by the formula of ``scipy.stats.mstats.mquantiles`` (alphap =
    betap = 1), which ArviZ's tail ESS uses."""
    xs = np.sort(flat, axis=1)
    n = xs.shape[1]
    aleph = n * p + (1.0 - p)
    j = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = float(np.clip(aleph - j, 0, 1))
    return (1.0 - gamma) * xs[:, j - 1] + gamma * xs[:, j]


def bulk_ess(x: np.ndarray) -> np.ndarray:
    """Bulk ESS of each parameter of x (k, chains, draws): ``az.ess(x[i], method="bulk")``."""
    autocov, var = _arviz()
    x = np.asarray(x, dtype=float)
    out = _ess(_zscale(_split(x)), autocov, var)
    out[np.isnan(x).any(axis=(1, 2)) | (x.shape[2] < 4)] = math.nan
    return out


def diagnostics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat (NaN with one chain), bulk ESS and tail ESS of each parameter of x
    (k, chains, draws): ``az.rhat(x[i])``, ``az.ess(x[i], method="bulk")`` and
    ``az.ess(x[i], method="tail")``."""
    autocov, var = _arviz()
    x = np.asarray(x, dtype=float)
    k, m, n = x.shape
    bad = np.isnan(x).any(axis=(1, 2)) | (n < 4)
    split = _split(x)
    z = _zscale(split)
    bulk = _ess(z, autocov, var)
    if m > 1:
        med = np.median(split.reshape(k, -1), axis=1)
        folded = _zscale(np.abs(split - med[:, None, None]))
        rhat = np.maximum(_rhat(z, var), _rhat(folded, var))
    else:
        rhat = np.full(k, math.nan)
    flat = x.reshape(k, -1)
    ind = [flat <= _quantile7(flat, p)[:, None] for p in (0.05, 0.95)]
    tails = [_ess(_split(i.reshape(k, m, n)), autocov, var) for i in ind]
    tail = np.minimum(tails[0], tails[1])
    for a in (rhat, bulk, tail):
        a[bad] = math.nan
    return rhat, bulk, tail


__all__ = ["diagnostics", "bulk_ess"]
