"""Residual correlation structures without random effects: ``nlme::gls``.

``correlation="cs(~ 1 | g)"`` (nlme's ``corCompSymm``) and ``"ar1(~ 1 | g)"`` or
``"ar1(~ t | g)"`` (``corAR1``; t an integer position) make the residuals of group g correlated,
var(e_g) = sigma^2 R_g(rho), with

* cs:  R_g = (1 - Rho) I + Rho J, Rho in (-1 / (T_max - 1), 1), T_max the largest group;
* ar1: (R_g)_ij = Phi^|t_i - t_j|, Phi in (-1, 1) (t the row's position within its group,
  in data order, for ``~ 1 | g``).  Gaps in t give powers of Phi; nlme's ``corAR1`` is meant
  for consecutive positions (on Orthodont's ages 8, 10, 12, 14 nlme 3.1-162 returns Phi = 0),
  so for gaps compare with nlme's ``corCAR1`` or use positions 1, 2, 3, ...

The structures themselves (blocks, patterns, whitening, unconstrained scales) are
:mod:`workbench.gls.residual`'s.  For a given correlation parameter the rest is GLS on whitened rows: with L_g the Cholesky factor
of R_g, y* = L_g^-1 y_g, X* = L_g^-1 X_g per group (groups with the same pattern of positions
share one factor; no n x n matrix), beta by least squares on (X*, y*), r^2 its residual sum of
squares, R_X its triangular factor, and the profiled criterion is nlme's::

    ML:   -2 log L = n (1 + log(2 pi r^2 / n)) + sum_g log|R_g|
    REML: -2 log L = (n - p)(1 + log(2 pi r^2 / (n - p))) + log|R_X|^2 + sum_g log|R_g|

minimised over the one parameter by bounded Brent search.  sigma^2 is r^2 / (n - p) (REML) or
r^2 / n (ML); the fixed effects' covariance is r^2 / (n - p) (X*'X*)^-1 by either method, as
nlme reports it.  The interval for
the parameter is nlme's ``intervals()``: a Wald interval on nlme's unconstrained scale
(ar1: log((1 + Phi)/(1 - Phi)); cs: log((Rho + 1/(T_max - 1))/(1 - Rho))), its variance the
inverse curvature of the log-likelihood profiled over beta and sigma, mapped back.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design import Design, complete_rows, evaluate
from ..errors import DataError, FormulaError, NotYetSupportedError
from ..record import Fit, GlsState, build_fit, wald_fixed_effects
from ..structure import build_structure
from .residual import STRUCTURES, ResidualStructure

#: Correlation structures and nlme's names for their parameter.
CORRELATIONS = {"cs": "Rho", "ar1": "Phi"}
_SPEC = re.compile(r"^\s*(\w+)\s*\(\s*~\s*(.+?)\s*\|\s*(.+?)\s*\)\s*$")


@dataclass(frozen=True)
class CorrelationSpec:
    """A parsed ``correlation=`` string: kind, position column (None for ``1``), group column."""

    kind: str
    position: str | None
    group: str

    @property
    def text(self) -> str:
        return f"{self.kind}(~ {self.position or 1} | {self.group})"

    @property
    def columns(self) -> list[str]:
        return [self.group] + ([self.position] if self.position else [])


def parse_correlation(text: str) -> CorrelationSpec:
    """``"cs(~ 1 | g)"``, ``"ar1(~ t | g)"`` -> :class:`CorrelationSpec`; a plain error otherwise."""
    m = _SPEC.match(text or "")
    if not m:
        raise FormulaError(f"cannot read correlation '{text}': write it as nlme does, e.g. "
                           "'cs(~ 1 | g)' or 'ar1(~ time | g)'")
    kind, pos, group = m.group(1), m.group(2).strip("` "), m.group(3).strip("` ")
    if kind not in CORRELATIONS:
        known = ", ".join(CORRELATIONS)
        raise NotYetSupportedError(f"correlation structure '{kind}' is not implemented; "
                                   f"implemented: {known}")
    if pos == "1":
        pos = None
    elif kind == "cs":
        pos = None  # compound symmetry does not depend on the order
    return CorrelationSpec(kind, pos, group)


def correlation_rows(spec, data: pd.DataFrame, corr: CorrelationSpec, **design_kwargs):
    """The data with the rows nlme would use, and the groups and positions aligned with the
    design built from it (rows missing a model variable or a correlation column dropped)."""
    missing = [c for c in corr.columns if c not in data.columns]
    if missing:
        raise DataError(f"correlation column '{missing[0]}' is not in the data")
    ok = data[corr.columns].notna().all(axis=1).to_numpy()
    if not ok.all():
        k = int((~ok).sum())
        warnings.warn(f"{k} row{'s' if k > 1 else ''} with a missing correlation group or "
                      "position dropped", stacklevel=3)
        data = data.loc[ok]
    frame = evaluate(spec, data, **design_kwargs)
    keep = complete_rows(frame, data.shape[0])
    used = data.loc[keep]
    groups = pd.Categorical(used[corr.group].astype(str)).codes
    if corr.position is None:
        pos = used.groupby(groups, sort=False).cumcount().to_numpy()
    else:
        t = pd.to_numeric(used[corr.position], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise DataError(f"position '{corr.position}' of {corr.text} must be integer-valued")
        pos = t.astype(np.int64)
        if pd.DataFrame({"g": groups, "t": pos}).duplicated().any():
            raise DataError(f"position '{corr.position}' repeats within a group of "
                            f"'{corr.group}'; {corr.text} needs distinct positions")
    return data, groups.astype(np.int64), pos


def _profiled(wh: ResidualStructure, X, y, rho, reml):
    A, logdet = wh.whiten(np.column_stack([X, y]), wh.unconstrained(np.array([rho])))
    Xs, ys = A[:, :-1], A[:, -1]
    n, p = Xs.shape
    Q, R = np.linalg.qr(Xs)
    beta = np.linalg.solve(R, Q.T @ ys)
    r2 = float(np.sum((ys - Xs @ beta) ** 2))
    if reml:
        crit = (n - p) * (1 + math.log(2 * math.pi * r2 / (n - p))) \
            + 2.0 * float(np.sum(np.log(np.abs(np.diag(R))))) + logdet
    else:
        crit = n * (1 + math.log(2 * math.pi * r2 / n)) + logdet
    return crit, beta, R, r2


def fit_corgls(design: Design, codes: np.ndarray, pos: np.ndarray, corr: CorrelationSpec,
               reml: bool = True, level: float = 0.95, label: str | None = None) -> Fit:
    """``nlme::gls`` with one correlation structure (see the module docstring).

    Returns
    -------
    Fit
        ``method`` "reml"/"ml"; ``varcorr`` the residual row; ``diagnostics["corstruct"]`` =
        ``{"structure", "form", NAME: estimate, "interval": [lower, upper]}`` with nlme's
        parameter name (``Rho``, ``Phi``); a :class:`~workbench.record.GlsState`.
    """
    from scipy.optimize import minimize_scalar

    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError("a correlation structure with prior weights or known sds "
                                   "is not implemented")
    n, p = design.n, design.p
    if n - p < 1:
        raise DataError(f"{p} fixed effects for {n} observations leave no residual degrees "
                        "of freedom")
    X, y = design.X, design.y_work
    wh = STRUCTURES[corr.kind](codes, pos)
    if wh.tmax < 2:
        raise DataError(f"every group of '{corr.group}' has one row: {corr.text} has nothing "
                        "to correlate")
    lo = wh.lower if corr.kind == "cs" else -1.0
    eps = 1e-9
    f = lambda r: _profiled(wh, X, y, r, reml)[0]  # noqa: E731
    res = minimize_scalar(f, bounds=(lo + eps, 1 - eps), method="bounded",
                          options={"xatol": 1e-12, "maxiter": 500})
    rho = float(res.x)
    crit, beta, R, r2 = _profiled(wh, X, y, rho, reml)
    s2 = r2 / (n - p) if reml else r2 / n
    Rinv = np.linalg.inv(R)
    vcov = r2 / (n - p) * (Rinv @ Rinv.T)  # nlme: the REML-scale sigma^2 by either method
    interval = _interval(f, wh, rho, level)
    name = CORRELATIONS[corr.kind]
    b, se, ci = wald_fixed_effects(design.fixed_names, beta, vcov, level)
    sigma = math.sqrt(s2)
    corstruct = {"structure": corr.kind, "form": corr.text, name: rho, "interval": interval,
                 "groups": wh.ngroups}
    converged = bool(res.success) and lo + 1e-6 < rho < 1 - 1e-6
    return build_fit(
        method="reml" if reml else "ml", design=design, structure=build_structure(design),
        criterion=float(crit), beta=b, beta_se=se, beta_ci=ci, sigma=sigma,
        varcorr=[{"grp": "Residual", "var1": None, "var2": None, "vcov": s2, "sdcor": sigma,
                  "sdcor_ci": None}],
        ranef=[], converged=converged, singular=False,
        state=GlsState(vcov=vcov, estimator=corr.kind, variance=np.array([rho, s2])),
        diagnostics={"corstruct": corstruct,
                     "optimizer": {"method": "bounded Brent (scipy) on the profiled criterion",
                                   "evaluations": int(res.nfev), "message": None}},
        label=label)


def _interval(f, wh: ResidualStructure, rho, level):
    """nlme's Wald interval on the structure's unconstrained scale u."""
    from scipy.stats import norm

    def to_r(u):
        return float(wh.natural(np.array([u]))[0])

    u0 = float(wh.unconstrained(np.array([rho]))[0])
    h = 1e-3
    d2 = (f(to_r(u0 + h)) - 2 * f(rho) + f(to_r(u0 - h))) / h**2  # of -2 log L
    if not d2 > 0:
        return [math.nan, math.nan]
    se = math.sqrt(2.0 / d2)
    z = norm.ppf(0.5 + level / 2)
    return [to_r(u0 - z * se), to_r(u0 + z * se)]


__all__ = ["CORRELATIONS", "CorrelationSpec", "parse_correlation", "correlation_rows",
           "fit_corgls"]
