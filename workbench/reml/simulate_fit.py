"""New responses from a fitted REML/ML model (lme4's ``simulate(fit)``).

For each replicate::

    y* = X beta_hat + sum over factors of Z_k b_k + e,    e ~ N(0, sigma_hat^2 I)
                                                         (or N(0, diag(known_sd^2)))

with ``b_k`` either new draws ``sigma_hat * Lambda_k z``, ``z ~ N(0, I)`` (lme4's default,
``use.u = FALSE``) or the fitted conditional modes (BLUPs; ``use.u = TRUE``).  Random effects
are applied from (level codes, per-row columns): no Z matrix is formed.
"""

from __future__ import annotations

import numpy as np

from ..errors import WorkbenchError
from ..record import Fit




def fitted_parts(fit: Fit) -> dict:
    """The pieces of a fit a simulation needs.

    Returns
    -------
    dict
        ``mean`` (X beta_hat), ``lambdas`` (per factor block), ``blocks``, ``sigma`` (1.0 with
        known sds), ``noise_sd`` (per-row residual sd), ``blups`` (per block, shape (L, q)).
    """
    state = fit.reml_state("simulations from a fit", need_system=True)
    system = state.system
    design = fit.design
    theta = np.asarray(state.theta, dtype=float)
    st = system.structure
    beta = np.array([fit.beta[k] for k in design.fixed_names])
    known = design.known_sd is not None
    sigma = 1.0 if known else float(fit.sigma)
    noise_sd = design.known_sd if known else np.full(design.n, sigma)
    if design.weights is not None:
        noise_sd = noise_sd / np.sqrt(design.weights)
    f = system.factor(theta)
    _, us = system.solve(f)
    lambdas = st.lambdas(theta)
    blups = [u @ lam.T for u, lam in zip(us, lambdas)]
    mean = design.X @ beta if design.offset is None else design.X @ beta + design.offset
    return {"mean": mean, "lambdas": lambdas, "blocks": st.blocks, "sigma": sigma,
            "noise_sd": noise_sd, "blups": blups}


def simulate_parts(parts: dict, rng: np.random.Generator, new_ranef: bool = True) -> np.ndarray:
    """One simulated response vector from :func:`fitted_parts` (the draws use ``rng`` in a
    fixed order: each block's random effects, then the residuals)."""
    y = parts["mean"].copy()
    for blk, lam, b_fit in zip(parts["blocks"], parts["lambdas"], parts["blups"]):
        if new_ranef:
            z = rng.standard_normal((blk.nlevels, blk.q))
            b = parts["sigma"] * (z @ lam.T)
        else:
            b = b_fit
        y += np.einsum("ij,ij->i", blk.Z, b[blk.codes])
    y += parts["noise_sd"] * rng.standard_normal(y.shape[0])
    return y


def simulate_from_fit(fit: Fit, seed=None, n: int = 1, new_ranef: bool = True) -> np.ndarray:
    """Simulate new responses from a fitted model.

    Parameters
    ----------
    fit : Fit
        A REML or ML fit.
    seed : int, numpy SeedSequence or Generator, optional
        Seeds the draws (``numpy.random.default_rng(seed)``).
    n : int
        Number of simulated response vectors.
    new_ranef : bool
        True (lme4's default): draw new random effects from the fitted covariance.  False: keep
        the fitted conditional modes (BLUPs) and draw new residuals only.

    Returns
    -------
    ndarray, shape (n, nobs)
        One simulated response per row, rows of the fit's data in order.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise WorkbenchError(f"n must be a positive integer, got {n!r}")
    parts = fitted_parts(fit)
    rng = np.random.default_rng(seed)
    return np.vstack([simulate_parts(parts, rng, new_ranef) for _ in range(int(n))])


__all__ = ["simulate_from_fit", "fitted_parts", "simulate_parts"]
