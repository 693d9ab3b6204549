"""The GLS view of a mixed model, made explicit (for small data and for teaching).

Marginally, y ~ N(X beta, V) with V = Z G Z' + sigma^2 I (or + diag(s_i^2) with known sds).
The REML fit's fixed effects are the GLS estimate with that V, and its BLUPs are
G Z' V^-1 (y - X beta).  This module builds Z, G and V densely, so that statsmodels'
``GLS(y, X, sigma=V)`` can reproduce them.  It is never used on the fitting path.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import WorkbenchError
from ..record import Fit
from ..structure import build_structure

MAX_DENSE_N = 5000


def build_Z(design, dense: bool = True):
    """The random-effects model matrix, blocks in the engine's order (level-major per block).

    Returns
    -------
    Z : ndarray or sparse matrix, shape (n, sum of levels * q)
    """
    Z = build_structure(design).stacked_Z()
    return Z.toarray() if dense else Z


def build_G(fit: Fit) -> np.ndarray:
    """Covariance of the stacked random effects, block diagonal, same order as :func:`build_Z`."""
    state = fit.reml_state("the GLS matrices", need_system=True)
    system, theta = state.system, state.theta
    s2 = 1.0 if fit.sigma is None else fit.sigma**2
    mats = []
    for b, lam in zip(system.structure.blocks, system.structure.lambdas(theta)):
        mats.append(sp.kron(sp.identity(b.nlevels), s2 * (lam @ lam.T)))
    return sp.block_diag(mats).toarray()


def build_V(fit: Fit) -> np.ndarray:
    """The marginal covariance V = Z G Z' + R of a REML/ML fit, as a dense n x n matrix.

    Parameters
    ----------
    fit : Fit
        A REML or ML fit (``method`` "reml" or "ml").

    Returns
    -------
    ndarray, shape (n, n)
        ``R`` is sigma^2 I, or diag(known_sd^2) for the meta-analysis form.

    Raises
    ------
    WorkbenchError
        For a Bayesian fit, or for more than ``MAX_DENSE_N`` observations.
    """
    fit.reml_state("the GLS matrices", need_system=True)
    design = fit.design
    if design.n > MAX_DENSE_N:
        raise WorkbenchError(
            f"V would be {design.n} x {design.n}; the dense GLS view is for data sets of at most "
            f"{MAX_DENSE_N} rows"
        )
    Z = build_Z(design)
    G = build_G(fit)
    if design.known_sd is not None:
        R = np.diag(design.known_sd**2)
    else:
        R = fit.sigma**2 * np.eye(design.n)
    if design.weights is not None:  # prior weights: residual variance sigma^2 / w_i
        R = R / design.weights[:, None]
    return Z @ G @ Z.T + R


def gls_fixed_effects(fit: Fit):
    """Fixed effects and standard errors by statsmodels' GLS with the fit's V.

    Returns
    -------
    statsmodels RegressionResults
        ``.params`` and ``.bse`` equal the mixed model's ``beta`` and ``beta_se`` (for REML,
        whose sigma is the restricted estimate; statsmodels' GLS rescales the covariance by its
        residual scale, so the scale is fixed at 1 here).
    """
    import statsmodels.api as sm

    V = build_V(fit)
    design = fit.design
    model = sm.GLS(design.y_work, design.X, sigma=V)
    return model.fit(cov_type="fixed scale", cov_kwds={"scale": 1.0})
