"""Posterior and prior draws of a Bayesian fit, and densities drawn from them.

The Bayesian fitter keeps its InferenceData; :func:`workbench.bayes.draws.posterior_frame`
turns it into a DataFrame with the tidy parameter names.  This module reads that frame (or the
InferenceData directly when the helper is missing) and estimates densities with boundary
reflection, so a density of an sd does not leak below zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..record import Fit


def posterior_frame(fit: Fit, prior: bool = False) -> pd.DataFrame:
    """Draws of a Bayesian fit as a DataFrame with tidy columns (``sd[g:(Intercept)]``, ...).

    Parameters
    ----------
    fit : Fit
        A fit with ``method == "bayes"``.
    prior : bool
        Prior draws instead of posterior draws (when the fit sampled its prior).

    Raises
    ------
    WorkbenchError
        If the fit is not Bayesian or holds no such draws.
    """
    if fit.method != "bayes":
        raise WorkbenchError(f"posterior draws need a Bayesian fit, not '{fit.method}'")
    from ..bayes import draws as bdraws

    return bdraws.prior_frame(fit) if prior else bdraws.posterior_frame(fit)


def has_draws(fit: Fit | None, name: str, prior: bool = False) -> bool:
    """Whether ``fit`` is Bayesian and has draws of parameter ``name``."""
    if fit is None or fit.method != "bayes":
        return False
    try:
        return name in posterior_frame(fit, prior=prior).columns
    except Exception:  # noqa: BLE001 - any failure means "nothing to draw"
        return False


def draws(fit: Fit, name: str, prior: bool = False) -> np.ndarray:
    """One parameter's draws (all chains pooled)."""
    frame = posterior_frame(fit, prior=prior)
    if name not in frame.columns:
        raise WorkbenchError(f"no draws of '{name}'; columns: {', '.join(frame.columns)}")
    return frame[name].to_numpy(dtype=float)


def kde(x: np.ndarray, grid: np.ndarray, lower: float | None = None) -> np.ndarray:
    """Gaussian kernel density of ``x`` on ``grid`` (Scott's bandwidth), reflected at ``lower``."""
    from scipy.stats import gaussian_kde

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.std(x) == 0:
        return np.zeros_like(grid, dtype=float)
    k = gaussian_kde(x)
    dens = k(grid)
    if lower is not None:
        dens = dens + k(2 * lower - grid)
        dens = np.where(grid < lower, 0.0, dens)
    return dens
