"""lme4's accessors on a fit: ``fitted``, ``residuals``, ``vcov``, ``confint``.

* ``fitted`` = X beta + o + Z b (the conditional fitted values, lme4's ``fitted.merMod``; the
  posterior mean of the linear predictor for a Bayesian fit);
* ``residuals``: ``"response"`` y - fitted; ``"pearson"`` sqrt(w_i) (y_i - fitted_i), which is
  what lme4 returns for a linear mixed model (not divided by sigma);
* ``vcov``: the covariance of the fixed effects, sigma^2 (X' V^-1 X)^-1 in lme4's
  parameterisation (the posterior covariance of beta for a Bayesian fit), labelled;
* ``confint``: one tidy table per interval kind, labelled with the kind and the likelihood it
  uses (profile intervals of a REML fit are on the ML deviance, as lme4's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from .errors import NotYetSupportedError, WorkbenchError

CI_METHODS = ("wald", "profile", "bootstrap")
ENGINE_METHODS = ("reml", "ml")
# interval methods that refit the model, registered by workbench.reml.intervals: they build
# Fit records, so this module (reached from record.Fit.confint) cannot import them
_REFIT_INTERVALS: dict = {}


def register_interval(method: str, func) -> None:
    """Register ``func(fit, level, parameters, **kwargs) -> DataFrame`` (columns
    ``parameter, lower, upper``) as the interval ``method`` of :func:`confint`."""
    _REFIT_INTERVALS[method] = func


def fitted(fit) -> np.ndarray:
    """Conditional fitted values on the fit's rows (lme4's ``fitted``)."""
    from .predict import predict

    return predict(fit)


def residuals(fit, type: str = "response") -> np.ndarray:
    """Residuals y - fitted (``"response"``) or sqrt(w) (y - fitted) (``"pearson"``, lme4's
    for a linear mixed model)."""
    if type not in ("response", "pearson"):
        raise WorkbenchError(f"type must be 'response' or 'pearson', not {type!r}")
    if type == "pearson" and "varstruct" in (fit.diagnostics or {}):
        raise NotYetSupportedError("pearson residuals of a fit with a variance function are "
                                   "not implemented yet")
    r = fit.design.y - fitted(fit)
    if type == "pearson" and fit.design.weights is not None:
        r = r * np.sqrt(fit.design.weights)
    return r


def vcov(fit) -> pd.DataFrame:
    """Covariance of the fixed effects, rows and columns named as ``fit.beta``.

    REML/ML: the engine's sigma^2 (X' V^-1 X)^-1 (lme4's ``vcov``); Bayes: the posterior
    covariance of the draws of beta.
    """
    names = list(fit.design.fixed_names) if fit.design is not None else list(fit.beta)
    if fit.method == "bayes":
        from .bayes.draws import posterior_arrays

        V = np.atleast_2d(np.cov(posterior_arrays(fit)["beta"], rowvar=False))
    elif hasattr(fit.state, "estimator"):  # a GlsState (record imports this module)
        V = fit.state.vcov
    else:
        V = fit.reml_state("fixed-effect covariances").vcov
    return pd.DataFrame(np.array(V, dtype=float), index=names, columns=names)


def confint(fit, method: str = "wald", level: float = 0.95, parameters=None,
            n: int = 1000, seed: int = 0, workers: int | None = None) -> pd.DataFrame:
    """Confidence intervals, one row per parameter, labelled by kind and likelihood.

    Parameters
    ----------
    fit : Fit
        A REML/ML fit (a Bayesian fit has credible intervals in ``fit.params()``).
    method : {"wald", "profile", "bootstrap"}
        ``wald``: beta +- z se(beta) for the fixed effects (as lme4's ``confint(method =
        "Wald")``, which gives no Wald interval for variance components); ``profile``:
        profile-likelihood intervals of every parameter (:func:`workbench.profile_ci`);
        ``bootstrap``: percentile intervals of a parametric bootstrap of ``n`` replicates
        seeded by ``seed`` (:func:`workbench.bootstrap`).
    level : float
        Coverage.
    parameters : list of str, optional
        Tidy names to keep (``beta[Days]``, ``sd[Subject:(Intercept)]``, ``sigma``).

    Returns
    -------
    DataFrame
        Columns ``parameter``, ``estimate``, ``lower``, ``upper``, ``level``, ``interval``
        (the kind) and ``likelihood``: ``"REML"``/``"ML"`` for Wald and bootstrap (the fit's
        own), ``"ML"`` for a profile (a REML fit is profiled on the ML deviance, as lme4).
    """
    if method not in CI_METHODS:
        raise WorkbenchError(f"method must be one of {', '.join(CI_METHODS)}, not {method!r}")
    if not 0 < level < 1:
        raise WorkbenchError(f"level must be between 0 and 1, got {level}")
    if fit.method not in ENGINE_METHODS:
        raise WorkbenchError(f"confint needs a REML/ML fit; this fit is {fit.method} (its "
                             "credible intervals are in fit.params())")
    own = "REML" if fit.method == "reml" else "ML"
    estimates = dict(zip(fit.params()["parameter"], fit.params()["estimate"]))
    if method == "wald":
        z = float(norm.ppf(0.5 + level / 2))
        rows = [(f"beta[{k}]", b, b - z * fit.beta_se[k], b + z * fit.beta_se[k])
                for k, b in fit.beta.items()]
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "lower", "upper"])
        likelihood = own
    else:
        if method not in _REFIT_INTERVALS:  # pragma: no cover - registered on import workbench
            raise WorkbenchError(f"{method} intervals are not available (import workbench)")
        table = _REFIT_INTERVALS[method](fit, level, parameters, n=n, seed=seed, workers=workers)
        table = table[["parameter", "lower", "upper"]].copy()
        table.insert(1, "estimate", table["parameter"].map(estimates))
        likelihood = "ML" if method == "profile" else own
    if parameters is not None:
        unknown = [p for p in parameters if p not in set(table["parameter"])]
        if unknown:
            raise WorkbenchError(f"no {method} interval for {', '.join(unknown)} (parameters: "
                                 f"{', '.join(table['parameter'])})")
        table = table[table["parameter"].isin(parameters)]
    table = table.reset_index(drop=True)
    table["level"] = level
    table["interval"] = method
    table["likelihood"] = likelihood
    table.attrs["interval"] = method
    table.attrs["likelihood"] = likelihood
    if method == "profile" and fit.method == "reml":
        table.attrs["note"] = "profile on the ML deviance (the REML fit refitted by ML), as lme4"
    return table


__all__ = ["fitted", "residuals", "vcov", "confint", "CI_METHODS"]
