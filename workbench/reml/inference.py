"""Model comparison and tests for REML/ML fits: likelihood-ratio tests, AIC/BIC, Satterthwaite.

* :func:`lrt` compares two nested fits as lme4's ``anova(fit0, fit1)`` does: REML fits are
  refitted by ML first (``refit=True``, lme4's default), since REML likelihoods of models with
  different fixed effects are not comparable.
* :func:`n_params`, :func:`aic`, :func:`bic` use lme4's parameter count: fixed effects +
  theta entries + 1 for sigma (none when residual sds are known), with the fit's own
  log-likelihood (the REML one for a REML fit, as lme4's ``AIC`` does).
* :func:`satterthwaite` gives t tests for the fixed effects with Satterthwaite's degrees of
  freedom, as lmerTest's ``summary``: the asymptotic covariance of the variance parameters
  ``(theta, sigma)`` is twice the inverse Hessian of the (REML or ML) deviance, and the df of
  coefficient j is ``2 V_jj^2 / (g' A g)`` with ``g`` the gradient of ``V_jj`` in those
  parameters (both by central differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import names
from ..errors import ComparisonError
from ..record import Fit
from .derivatives import satterthwaite_pieces


def _check_engine_fit(fit: Fit, what: str):
    """The fit's engine state (with its factored system), or a ComparisonError."""
    if not isinstance(fit, Fit):
        raise ComparisonError(f"{what} need a REML/ML fit; got a {type(fit).__name__}")
    return fit.reml_state(what, need_system=True, error=ComparisonError)


def n_params(fit: Fit) -> int:
    """lme4's parameter count (``attr(logLik(fit), "df")``).

    Fixed effects + covariance parameters theta + 1 for the residual sd (0 when residual sds
    are known).
    """
    ntheta = _check_engine_fit(fit, "parameter counts").system.structure.ntheta
    return len(fit.beta) + ntheta + (0 if fit.design.known_sd is not None else 1)


def aic(fit: Fit) -> float:
    """Akaike's criterion, ``-2 logLik + 2 npar`` (lme4's ``AIC``)."""
    k = n_params(fit)  # refuses a fit without an engine state before loglik is read
    return -2.0 * float(fit.loglik) + 2.0 * k


def bic(fit: Fit) -> float:
    """Schwarz's criterion, ``-2 logLik + log(nobs) npar`` (lme4's ``BIC``)."""
    k = n_params(fit)
    return -2.0 * float(fit.loglik) + math.log(fit.nobs) * k


# ---------------------------------------------------------------------------- LRT
def _structure_sets(fit: Fit) -> tuple[set, set]:
    """Variances {(group, column)} and correlations {(group, {c1, c2})} of a fit."""
    var, cor = set(), set()
    for blk in fit.reml_state("random-effects terms", need_system=True).system.structure.blocks:
        for _label, sl in blk.terms:
            cols = blk.columns[sl]
            for i, c in enumerate(cols):
                var.add((blk.group, c))
                for c2 in cols[i + 1:]:
                    cor.add((blk.group, frozenset((c, c2))))
    return var, cor


def _same_data(f0: Fit, f1: Fit) -> None:
    d0, d1 = f0.design, f1.design
    if d0.n != d1.n or not np.array_equal(d0.y, d1.y):
        raise ComparisonError(
            f"the fits use different data ({d0.n} and {d1.n} observations, or different "
            "responses); likelihood-ratio tests need the same rows and response"
        )
    k0, k1 = d0.known_sd, d1.known_sd
    if (k0 is None) != (k1 is None) or (k0 is not None and not np.array_equal(k0, k1)):
        raise ComparisonError("the fits differ in their known residual sds")


def _check_nested(small: Fit, big: Fit) -> None:
    fs, fb = small.design.fixed_names, big.design.fixed_names
    missing = [k for k in fs if k not in fb]
    if missing:
        raise ComparisonError(
            f"models are not nested: fixed effect(s) {', '.join(missing)} of the smaller model "
            "are not in the larger one"
        )
    for k in fs:
        j0, j1 = fs.index(k), fb.index(k)
        if not np.allclose(small.design.X[:, j0], big.design.X[:, j1]):
            raise ComparisonError(f"models are not nested: column '{k}' differs between them")
    vs, cs = _structure_sets(small)
    vb, cb = _structure_sets(big)
    if not vs <= vb:
        extra = ", ".join(f"{c}|{g}" for g, c in sorted(vs - vb))
        raise ComparisonError(
            f"models are not nested: random effect(s) {extra} of the smaller model are not "
            "in the larger one"
        )
    if not cs <= cb:
        raise ComparisonError(
            "models are not nested: the smaller model has a correlation the larger one lacks"
        )


@dataclass
class LRTResult:
    """A likelihood-ratio test between two nested fits.

    Attributes
    ----------
    table : DataFrame
        lme4's ``anova`` table: ``model``, ``npar``, ``AIC``, ``BIC``, ``logLik``,
        ``deviance``, ``Chisq``, ``Df``, ``p`` (smaller model first).
    statistic : float
        ``deviance(small) - deviance(large)``.
    df : int
        Difference in parameter counts.
    p_value : float
        Upper tail of chi-square(df).  For a variance tested on its boundary (0) this p-value
        is conservative (the null distribution is a chi-square mixture).
    method : str
        ``"ml"`` or ``"reml"``: the likelihoods compared.
    refitted : bool
        True when REML fits were refitted by ML.
    """

    table: pd.DataFrame
    statistic: float
    df: int
    p_value: float
    method: str
    refitted: bool


def lrt(fit0: Fit, fit1: Fit, refit: bool = True) -> LRTResult:
    """Likelihood-ratio test between two nested REML/ML fits of the same data.

    Parameters
    ----------
    fit0, fit1 : Fit
        In either order; the one with fewer parameters is the null model.
    refit : bool
        True (lme4's default): REML fits are refitted by ML before comparing.  False: the fits
        are compared as they are, which needs both of the same method and, for REML, the same
        fixed effects.

    Returns
    -------
    LRTResult

    Raises
    ------
    ComparisonError
        Different data, models that are not nested, equal parameter counts, or REML fits
        with different fixed effects compared without refitting.
    """
    _check_engine_fit(fit0, "likelihood-ratio tests")
    _check_engine_fit(fit1, "likelihood-ratio tests")
    _same_data(fit0, fit1)
    small, big = sorted((fit0, fit1), key=n_params)
    if n_params(small) == n_params(big):
        raise ComparisonError(
            "the models have the same number of parameters, so neither is nested in the other"
        )
    _check_nested(small, big)
    refitted = False
    if refit:
        if small.method == "reml" or big.method == "reml":
            from .profile import ml_fit

            small, big = ml_fit(small), ml_fit(big)
            refitted = True
    else:
        if small.method != big.method:
            raise ComparisonError(
                "cannot compare a REML fit with an ML fit; use refit=True to compare ML fits"
            )
        if small.method == "reml" and tuple(small.beta) != tuple(big.beta):
            raise ComparisonError(
                "REML likelihoods of models with different fixed effects are not comparable; "
                "use refit=True (ML refit, as lme4's anova does)"
            )
    dev0, dev1 = -2.0 * small.loglik, -2.0 * big.loglik
    stat = dev0 - dev1
    df = n_params(big) - n_params(small)
    from scipy.stats import chi2

    p = float(chi2.sf(max(stat, 0.0), df))
    rows = []
    for i, f in enumerate((small, big)):
        rows.append({
            "model": f.name if f.label else ("fit0" if i == 0 else "fit1"),
            "formula": f.formula, "npar": n_params(f), "AIC": aic(f), "BIC": bic(f),
            "logLik": float(f.loglik), "deviance": -2.0 * float(f.loglik),
            "Chisq": math.nan if i == 0 else stat, "Df": math.nan if i == 0 else df,
            "p": math.nan if i == 0 else p,
        })
    return LRTResult(table=pd.DataFrame(rows), statistic=float(stat), df=int(df), p_value=p,
                     method=small.method, refitted=refitted)


# ---------------------------------------------------------------------------- Satterthwaite
def satterthwaite(fit: Fit) -> pd.DataFrame:
    """t tests of the fixed effects with Satterthwaite degrees of freedom (lmerTest).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit (lmerTest uses the fit's own criterion).

    Returns
    -------
    DataFrame
        Columns ``parameter`` (``beta[NAME]``), ``estimate``, ``se``, ``df``, ``t``, ``p``
        (two-sided).
    """
    _check_engine_fit(fit, "Satterthwaite degrees of freedom")
    from scipy.stats import t as t_dist

    A, V, J = satterthwaite_pieces(fit)
    rows = []
    for j, name in enumerate(fit.design.fixed_names):
        g = J[:, j, j]
        denom = float(g @ A @ g)
        if np.all(np.abs(g) <= 1e-12 * V[j, j]):
            df = math.inf  # V_jj does not depend on the variance parameters (e.g. known sds, tau 0)
        else:
            df = 2.0 * V[j, j] ** 2 / denom if denom > 0 else math.nan
        se = math.sqrt(V[j, j])
        tval = fit.beta[name] / se
        p = float(2.0 * t_dist.sf(abs(tval), df)) if not math.isnan(df) else math.nan
        rows.append((names.beta(name), fit.beta[name], se, df, tval, p))
    return pd.DataFrame(rows, columns=["parameter", "estimate", "se", "df", "t", "p"])


__all__ = ["lrt", "LRTResult", "aic", "bic", "n_params", "satterthwaite", "ComparisonError"]
