"""The LKJ prior on the Cholesky factor of a correlation matrix, with its own transform.

Group sds carry their own priors (any family, per column), so the correlation part is built
alone, as Stan builds ``cholesky_factor_corr``: ``m (m - 1) / 2`` unconstrained reals ``y``,
canonical partial correlations ``z = tanh(y)``, and the lower-triangular ``L`` filled row by row::

    L[i, 0] = z[i, 0];  L[i, j] = z[i, j] sqrt(1 - sum_{k<j} L[i, k]^2);  L[i, i] = sqrt(1 - sum)

The log density added to the model is the LKJ(eta) density of ``L`` (Stan's
``lkj_corr_cholesky_lpdf``) plus the log Jacobian of ``y -> L``.  Under LKJ(eta) the partial
correlations are independent, ``(z[i, j] + 1) / 2 ~ Beta(a_j, a_j)`` with
``a_j = eta + (m - 2 - j) / 2`` (Lewandowski, Kurowicka & Joe 2009): :func:`draw_lkj_cholesky`
draws from that, and the tests check the density against it.
"""

from __future__ import annotations

import numpy as np


def lkj_cholesky(name: str, m: int, eta):
    """Add an LKJ(eta)-distributed correlation Cholesky factor to the current PyMC model.

    Parameters
    ----------
    name : str
        Base name; the free variable is ``{name}_raw``.
    m : int
        Dimension (>= 2).
    eta : tensor-like
        LKJ shape (> 0); may be a ``pm.Data`` so a cached model accepts new values.

    Returns
    -------
    list of list
        ``L[i][j]``: scalar tensors of the m x m lower-triangular Cholesky factor of the
        correlation matrix (``None`` above the diagonal, ``1.0`` at ``[0][0]``); elementwise
        entries keep the graph small and fusable.
    """
    import pymc as pm
    import pytensor.tensor as pt

    k = m * (m - 1) // 2
    raw = pm.Flat(f"{name}_raw", shape=(k,))
    z = pt.tanh(raw)
    logp = pt.sum(pt.log1p(-z * z))  # d tanh / dy
    L = [[None] * m for _ in range(m)]
    L[0][0] = 1.0
    idx = 0
    for i in range(1, m):
        ss = 0.0
        for j in range(i):
            zij = z[idx]
            idx += 1
            if j == 0:
                lij = zij
            else:
                lij = zij * pt.sqrt(1.0 - ss)
                logp = logp + 0.5 * pt.log1p(-ss)
            L[i][j] = lij
            ss = ss + lij * lij
        L[i][i] = pt.sqrt(1.0 - ss)
        # Stan: (K - k + 2 eta - 2) log L_kk for 1-based k = i + 1
        logp = logp + (m - i - 3 + 2.0 * eta) * pt.log(L[i][i])
    pm.Potential(f"{name}_lkj", logp)
    return L


def stack_matrix(entries):
    """Nested lists of scalar tensors (``None`` for zero) -> a matrix tensor."""
    import pytensor.tensor as pt

    zero = pt.constant(0.0)
    return pt.stack([pt.stack([zero if e is None else pt.as_tensor(e) for e in row])
                     for row in entries])


def cpc_to_cholesky(z: np.ndarray, m: int) -> np.ndarray:
    """Canonical partial correlations (..., m(m-1)/2) -> Cholesky factors (..., m, m), numpy."""
    z = np.asarray(z, dtype=float)
    L = np.zeros(z.shape[:-1] + (m, m))
    L[..., 0, 0] = 1.0
    idx = 0
    for i in range(1, m):
        ss = np.zeros(z.shape[:-1])
        for j in range(i):
            lij = z[..., idx] * (np.sqrt(1.0 - ss) if j else 1.0)
            idx += 1
            L[..., i, j] = lij
            ss = ss + lij * lij
        L[..., i, i] = np.sqrt(1.0 - ss)
    return L


def draw_lkj_cholesky(rng: np.random.Generator, m: int, eta: float, size: int) -> np.ndarray:
    """Exact draws of LKJ(eta) correlation Cholesky factors, shape (size, m, m)."""
    k = m * (m - 1) // 2
    z = np.empty((size, k))
    idx = 0
    for i in range(1, m):
        for j in range(i):
            a = eta + (m - 2 - j) / 2.0
            z[:, idx] = 2.0 * rng.beta(a, a, size=size) - 1.0
            idx += 1
    return cpc_to_cholesky(z, m)


__all__ = ["lkj_cholesky", "cpc_to_cholesky", "draw_lkj_cholesky"]
