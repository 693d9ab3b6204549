"""One fit record for every method.

A :class:`Fit` holds what both fitters report, under the same names, and keeps the fitter's own
record (optimizer summary, InferenceData) beside it.  ``to_dict()`` is the JSON record the CLI
writes; :meth:`Fit.params` is the tidy parameter table that :func:`workbench.compare` stacks.

Parameter names (``beta[NAME]``, ``sd[GROUP:TERM]``, ``cor[GROUP:T1,T2]``, ``sigma``, ...) are
built by :mod:`workbench.names`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import names
# re-exported for the modules that still import them from here (reml/profile.py)
from .names import base_group as _base_group  # noqa: F401
from .names import varcorr_param_name, varcorr_var_name  # noqa: F401


@dataclass(eq=False)
class Fit:
    """A fitted model, REML/ML or Bayesian.

    Attributes
    ----------
    method : {"reml", "ml", "bayes"}
    formula : str
    nobs : int
    ngroups : dict
        ``{group: number of levels}``.
    criterion : float or None
        REML criterion or ML deviance as lme4 reports them; None for bayes.
    loglik : float or None
    beta, beta_se : dict
        Fixed effects (posterior means for bayes) and standard errors (posterior sds), in
        formula order.
    beta_ci : dict
        ``{name: [lower, upper]}``: Wald 95% intervals (REML/ML) or 95% equal-tailed credible
        intervals (bayes).
    sigma : float or None
        Residual sd (None when residual sds are known).
    varcorr : list of dict
        Rows as lme4's ``as.data.frame(VarCorr())``: ``grp``, ``var1``, ``var2``, ``vcov``,
        ``sdcor``, plus ``sdcor_ci`` ([lower, upper] or None).
    ranef : list of dict
        Rows ``group``, ``term``, ``level``, ``value``, ``cond_sd`` (BLUPs and conditional sds,
        or posterior means and sds), plus ``lower``, ``upper`` for bayes.
    converged, singular : bool
    diagnostics : dict
        Optimizer record (REML/ML) or sampler diagnostics (bayes).
    interval : str
        Kind of the intervals in ``beta_ci``/``sdcor_ci``: ``"wald"``, ``"profile"``,
        ``"credible"``.
    design, extra : object
        The :class:`~workbench.design.Design` and fitter-specific objects (theta, system,
        InferenceData), kept out of ``to_dict()``.
    """

    method: str
    formula: str
    nobs: int
    ngroups: dict
    criterion: float | None
    loglik: float | None
    beta: dict
    beta_se: dict
    beta_ci: dict
    sigma: float | None
    varcorr: list
    ranef: list
    converged: bool
    singular: bool
    diagnostics: dict = field(default_factory=dict)
    interval: str = "wald"
    label: str | None = None
    design: Any = field(default=None, repr=False)
    extra: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ exports
    def to_dict(self) -> dict:
        """The JSON-serialisable record (see class docstring for the keys)."""
        keys = [
            "method", "formula", "nobs", "ngroups", "criterion", "loglik", "beta", "beta_se",
            "beta_ci", "sigma", "varcorr", "ranef", "converged", "singular", "diagnostics",
            "interval",
        ]
        return _jsonable({k: getattr(self, k) for k in keys})

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON text (NaN written as null)."""
        return json.dumps(self.to_dict(), indent=indent)

    @property
    def name(self) -> str:
        """Label used in comparison tables (defaults to the method)."""
        return self.label or self.method

    def params(self) -> pd.DataFrame:
        """Tidy table: parameter, method, estimate, se, lower, upper, interval."""
        rows = []
        for k, est in self.beta.items():
            lo, hi = self.beta_ci.get(k, [math.nan, math.nan])
            rows.append((names.beta(k), est, self.beta_se.get(k, math.nan), lo, hi))
        for r in self.varcorr:
            ci = r.get("sdcor_ci") or [math.nan, math.nan]
            rows.append((varcorr_param_name(r), r["sdcor"], r.get("sdcor_se", math.nan), ci[0], ci[1]))
        df = pd.DataFrame(rows, columns=["parameter", "estimate", "se", "lower", "upper"])
        df.insert(1, "method", self.name)
        df["interval"] = self.interval
        return df

    # ------------------------------------------------------------------ Bayesian draws
    def draws(self) -> pd.DataFrame:
        """Posterior draws (bayes) with the tidy parameter names as columns."""
        from .bayes.draws import posterior_frame

        return posterior_frame(self)

    def prior_draws(self, n: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Draws from the priors of a Bayesian fit, same columns as :meth:`draws`."""
        from .bayes.draws import prior_frame

        return prior_frame(self, n, seed)

    def posterior_predictive(self, seed: int = 0) -> np.ndarray:
        """Replicated responses, one row per posterior draw: shape (chains x draws, nobs)."""
        from .bayes.draws import posterior_predictive

        return posterior_predictive(self, seed)

    def prior_predictive(self, n: int = 500, seed: int = 0) -> np.ndarray:
        """Responses simulated from the priors: shape (n, nobs)."""
        from .bayes.draws import prior_predictive

        return prior_predictive(self, n, seed)

    def ranef_frame(self) -> pd.DataFrame:
        """The ``ranef`` rows as a DataFrame."""
        return pd.DataFrame(self.ranef)

    def summary(self) -> str:
        """A readable summary, in the spirit of lme4's ``print(summary(fit))``."""
        from .summary import format_fit

        return format_fit(self)

    def __str__(self) -> str:
        return self.summary()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj
