"""One fit record for every method.

A :class:`Fit` holds what both fitters report, under the same names, and keeps the fitter's own
state beside it, typed: :class:`RemlState` (theta, the factored system, the optimizer's record)
or :class:`BayesState` (InferenceData, priors, sampler settings).  Every fit is made once by
:func:`build_fit` and never changed afterwards (a copy with other intervals is a new record).
Code that needs one fitter's state asks for it through :meth:`Fit.reml_state` or
:meth:`Fit.bayes_state`, which raise a plain error for the other kind of fit.  ``to_dict()`` is the
JSON record the CLI writes; :meth:`Fit.params` is the tidy parameter table that
:func:`workbench.compare` stacks.

Parameter names (``beta[NAME]``, ``sd[GROUP:TERM]``, ``cor[GROUP:T1,T2]``, ``sigma``, ...) are
built by :mod:`workbench.names`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import names
from .errors import WorkbenchError



class RanefRows(Sequence):
    """The ``ranef`` rows of a fit, kept as arrays until a row is read.

    A sequence of dicts ``{"group", "term", "level", "value", "cond_sd"}`` (equal to the list
    of them), in the order block, column, level; the dicts are made on first access, so a fit
    with many levels records its conditional modes without a Python loop over the levels.

    Parameters
    ----------
    parts : sequence of (group, columns, levels, values, cond_sd)
        Per factor block: its name, its columns, its level labels, and the conditional modes
        and conditional sds as arrays of shape (levels, columns).
    """

    __hash__ = None  # mutable-looking equality with lists, as a list has

    def __init__(self, parts):
        self._parts = [(g, tuple(cols), tuple(levels), np.asarray(v, dtype=float),
                        np.asarray(sd, dtype=float)) for g, cols, levels, v, sd in parts]
        self._rows = None

    def _materialised(self) -> list[dict]:
        if self._rows is None:
            rows = []
            for g, cols, levels, v, sd in self._parts:
                for k, term in enumerate(cols):
                    rows.extend({"group": g, "term": term, "level": lev, "value": val,
                                 "cond_sd": csd}
                                for lev, val, csd in zip(levels, v[:, k].tolist(),
                                                         sd[:, k].tolist()))
            self._rows = rows
        return self._rows

    def __len__(self) -> int:
        return sum(v.size for _, _, _, v, _ in self._parts)

    def __getitem__(self, i):
        return self._materialised()[i]

    def __iter__(self):
        return iter(self._materialised())

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, RanefRows)):
            return self._materialised() == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._materialised())

    def __getstate__(self):
        return {"_parts": self._parts, "_rows": None}

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, built from the arrays."""
        cols = {"group": [], "term": [], "level": [], "value": [], "cond_sd": []}
        for g, terms, levels, v, sd in self._parts:
            L = len(levels)
            for k, term in enumerate(terms):
                cols["group"].extend([g] * L)
                cols["term"].extend([term] * L)
                cols["level"].extend(levels)
                cols["value"].append(v[:, k])
                cols["cond_sd"].append(sd[:, k])
        for c in ("value", "cond_sd"):
            cols[c] = np.concatenate(cols[c]) if cols[c] else np.zeros(0)
        return pd.DataFrame(cols)


@dataclass(frozen=True, eq=False)
class RemlState:
    """What the REML/ML engine keeps of a fit.

    Attributes
    ----------
    vcov : ndarray, shape (p, p)
        Covariance of the fixed effects.
    reml : bool
        REML (True) or ML (False).
    theta : ndarray or None
        Relative covariance parameters at the optimum (lme4's ``getME(fit, "theta")``); None for
        a fit on the variance scale that left the lme4 parameter space (``nobound``).
    system : BlockedSystem or None
        The factored penalized least-squares system (None when ``theta`` is).
    optimizer : OptSummary or None
        The optimizer's own record.
    varscale : VarianceScaleModel or None
        The variance-scale model when one was built (``nobound``, ``vc_se``).
    psi : ndarray or None
        Variance-scale parameters (vech(G), sigma^2) of a fit made on that scale.
    var_params : dict or None
        ``{name: {"estimate", "se"}}`` on the variance scale (``vc_se``).
    """

    vcov: np.ndarray
    reml: bool
    theta: np.ndarray | None = None
    system: Any = None
    optimizer: Any = None
    varscale: Any = None
    psi: np.ndarray | None = None
    var_params: dict | None = None


@dataclass(frozen=True, eq=False)
class BayesState:
    """What the Bayesian fitter keeps of a fit.

    Attributes
    ----------
    idata : arviz.InferenceData
        ArviZ's, under the tidy parameter names (:mod:`workbench.bayes.idata`).
    priors : dict
        Resolved :class:`~workbench.bayes.priors.Prior` objects by tidy parameter name.
    structure : Structure
        The random-effects structure the model was built on.
    parameterization, sampler : str or None
    seed : int or None
    layout : object
        The compiled-model cache key (:class:`~workbench.bayes.model.Layout`).
    """

    idata: Any
    priors: dict
    structure: Any
    parameterization: str | None = None
    sampler: str | None = None
    seed: int | None = None
    layout: Any = None


@dataclass(frozen=True, eq=False)
class GlsState:
    """What the other GLS fitters (:mod:`workbench.gls`: feasible and iterated GLS) keep.

    Attributes
    ----------
    vcov : ndarray, shape (p, p)
        Covariance of the fixed effects.
    estimator : str
        ``"swar"``, ``"walhus"``, ``"amemiya"``, ``"nerlove"`` (FGLS) or ``"igls"``, ``"rigls"``.
    variance : ndarray
        The variance parameters at the end: (s_eta, s_nu) for FGLS; (vech(G) per block,
        sigma^2) for IGLS/RIGLS.
    theta : ndarray or None
        lme4's relative covariance factor at those variances (IGLS/RIGLS).
    iterations : list of dict or None
        The iteration trace (IGLS/RIGLS), also in ``diagnostics["iterations"]``.
    """

    vcov: np.ndarray
    estimator: str
    variance: np.ndarray
    theta: np.ndarray | None = None
    iterations: list | None = None


ENGINE_METHODS = ("reml", "ml")


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted model, REML/ML or Bayesian; made by :func:`build_fit`, never changed after.

    Attributes
    ----------
    method : {"reml", "ml", "fgls", "igls", "rigls", "bayes"}
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
    ranef : list of dict or RanefRows
        Rows ``group``, ``term``, ``level``, ``value``, ``cond_sd`` (BLUPs and conditional sds,
        or posterior means and sds), plus ``lower``, ``upper`` for bayes.  The engine keeps
        them as a :class:`RanefRows`, a sequence equal to that list whose dicts are made when
        first read.
    converged, singular : bool
    diagnostics : dict
        Optimizer record (REML/ML) or sampler diagnostics (bayes).
    interval : str
        Kind of the intervals in ``beta_ci``/``sdcor_ci``: ``"wald"``, ``"profile"``,
        ``"credible"``.
    design : Design
        Kept out of ``to_dict()``.
    state : RemlState or BayesState or None
        The fitter's own state, kept out of ``to_dict()``; read it through
        :meth:`reml_state` / :meth:`bayes_state`.
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
    state: RemlState | GlsState | BayesState | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ fitter state
    def reml_state(self, what: str, need_system: bool = False,
                   error: type[WorkbenchError] = WorkbenchError) -> RemlState:
        """The engine's state, for ``what`` (a plural noun phrase naming the caller's result).

        Parameters
        ----------
        what : str
            Used in the message, e.g. ``"profile intervals"``.
        need_system : bool
            Also require the factored system and theta (a ``nobound`` fit on the variance
            scale has neither).
        error : WorkbenchError subclass
            The class to raise.

        Raises
        ------
        WorkbenchError
            ``"profile intervals need a REML/ML fit; this fit is bayes"``.
        NotYetSupportedError
            For a REML/ML fit with a residual correlation structure (its state is a
            :class:`GlsState`): the engine's verbs do not handle the structure yet.
        """
        state = self.state
        if self.method in ENGINE_METHODS and isinstance(state, GlsState):
            from .errors import NotYetSupportedError

            diag = self.diagnostics or {}
            form = ", ".join(diag[k]["form"] for k in ("corstruct", "varstruct") if k in diag)
            raise NotYetSupportedError(f"{what}: not implemented yet for a fit with a "
                                       f"residual structure ({form or state.estimator})")
        if self.method not in ENGINE_METHODS or not isinstance(state, RemlState):
            raise error(f"{what} need a REML/ML fit; this fit is {self.method}")
        if need_system and state.system is None:
            raise error(f"{what} need the engine's factored system, which a nobound fit on the "
                        "variance scale does not have")
        return state

    def bayes_state(self, what: str, error: type[WorkbenchError] = WorkbenchError) -> BayesState:
        """The Bayesian fitter's state, for ``what``; a plain error for any other fit."""
        if self.method != "bayes" or not isinstance(self.state, BayesState):
            raise error(f"{what} need a Bayesian fit (method='bayes'); this fit is {self.method}")
        return self.state

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
            rows.append((names.varcorr_param_name(r), r["sdcor"], r.get("sdcor_se", math.nan), ci[0], ci[1]))
        df = pd.DataFrame(rows, columns=["parameter", "estimate", "se", "lower", "upper"])
        df.insert(1, "method", self.name)
        df["interval"] = self.interval
        return df

    # ------------------------------------------------------------------ Bayesian draws
    @property
    def idata(self):
        """ArviZ's InferenceData of a Bayesian fit, under the tidy names
        (:mod:`workbench.bayes.idata`): ``az.summary``, ``az.loo``, ``az.compare`` take it."""
        return self.bayes_state("an InferenceData").idata

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
        if isinstance(self.ranef, RanefRows):
            return self.ranef.frame()
        return pd.DataFrame(list(self.ranef))

    # ------------------------------------------------------------------ lme4's verbs
    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = False,
                kind: str = "mean", seed: int = 0):
        """Predictions on new data (lme4's ``predict``); see :func:`workbench.predict.predict`."""
        from .predict import predict

        return predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels,
                       kind=kind, seed=seed)

    def fitted(self) -> np.ndarray:
        """Conditional fitted values; see :func:`workbench.accessors.fitted`."""
        from .accessors import fitted

        return fitted(self)

    def residuals(self, type: str = "response") -> np.ndarray:
        """Residuals (``"response"`` or ``"pearson"``); see :func:`workbench.accessors.residuals`."""
        from .accessors import residuals

        return residuals(self, type)

    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, labelled; see :func:`workbench.accessors.vcov`."""
        from .accessors import vcov

        return vcov(self)

    def confint(self, method: str = "wald", level: float = 0.95, **kwargs) -> pd.DataFrame:
        """Intervals labelled by kind and likelihood; see :func:`workbench.accessors.confint`."""
        from .accessors import confint

        return confint(self, method, level, **kwargs)

    def anova(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """F tests of the fixed-effect terms; see :func:`workbench.anova.anova`."""
        from .anova import anova

        return anova(self, ddf=ddf)

    def save(self, path) -> list:
        """Write the fit to ``path`` (JSON) with its data and draws beside it; see
        :func:`workbench.persist.save`."""
        from .persist import save

        return save(self, path)

    def _repr_html_(self) -> str:
        from .html import fit_html

        return fit_html(self)

    def __repr__(self) -> str:
        from .html import fit_repr

        return fit_repr(self)

    def summary(self) -> str:
        """A readable summary, in the spirit of lme4's ``print(summary(fit))``."""
        from .summary import format_fit

        return format_fit(self)

    def __str__(self) -> str:
        return self.summary()


def build_fit(*, method: str, design, structure, beta: dict, beta_se: dict, beta_ci: dict,
              sigma: float | None, varcorr: list, ranef: list, converged: bool, singular: bool,
              state: RemlState | GlsState | BayesState, criterion: float | None = None,
              diagnostics: dict | None = None, interval: str = "wald",
              label: str | None = None) -> Fit:
    """The one way a fitter makes its :class:`Fit`: everything passed in, nothing set after.

    ``formula``, ``nobs`` and ``ngroups`` come from the design and its random-effects structure;
    ``loglik`` is ``-criterion / 2``.
    """
    return Fit(
        method=method,
        formula=design.spec.formula,
        nobs=design.n,
        ngroups={blk.group: blk.nlevels for blk in structure.blocks},
        criterion=criterion,
        loglik=None if criterion is None else -criterion / 2.0,
        beta=beta,
        beta_se=beta_se,
        beta_ci=beta_ci,
        sigma=sigma,
        varcorr=varcorr,
        ranef=ranef,
        converged=bool(converged),
        singular=bool(singular),
        diagnostics={} if diagnostics is None else diagnostics,
        interval=interval,
        label=label,
        design=design,
        state=state,
    )


def wald_fixed_effects(names, beta: np.ndarray, vcov: np.ndarray,
                       level: float) -> tuple[dict, dict, dict]:
    """(beta, beta_se, beta_ci) dicts by name: estimates, sqrt(diag(vcov)) and Wald intervals
    ``beta +- z_{(1+level)/2} se``."""
    from scipy.special import ndtri  # here: scipy.special makes ``import workbench`` slow

    se = np.sqrt(np.diag(vcov))
    z = float(ndtri(0.5 + level / 2))  # the normal quantile (scipy.stats.norm.ppf, 1000x faster)
    return ({k: float(v) for k, v in zip(names, beta)},
            {k: float(v) for k, v in zip(names, se)},
            {k: [float(b - z * s), float(b + z * s)] for k, b, s in zip(names, beta, se)})


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, RanefRows)):
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
