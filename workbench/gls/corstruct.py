"""Residual correlation structures and variance functions without random effects: ``nlme::gls``.

``correlation=`` (nlme's ``corStruct``; t a position column, ``1`` for the row's place within its
group in data order):

* ``"cs(~ 1 | g)"``  ``corCompSymm``: R_g = (1 - Rho) I + Rho J, Rho in (-1/(T_max - 1), 1);
* ``"ar1(~ t | g)"`` ``corAR1``: (R_g)_ij = Phi^|t_i - t_j|, Phi in (-1, 1), t integer.  Gaps in
  t give powers of Phi; nlme's ``corAR1`` is meant for consecutive positions (on Orthodont's ages
  8, 10, 12, 14 nlme 3.1-162 returns Phi = 0), so for gaps use ``car1`` or positions 1, 2, 3, ...;
* ``"car1(~ t | g)"`` ``corCAR1``: Phi^|t_i - t_j| for continuous t, Phi in (0, 1);
* ``"symm(~ t | g)"`` ``corSymm``: a general correlation matrix over the integer positions
  1..T (counted from the smallest t), parameters nlme's ``cor(i,j)``.

``variance=`` (nlme's ``varFunc``): ``"ident(~ 1 | f)"`` (``varIdent``: sd ratio per level of f,
relative to nlme's first stratum, the first in the data sorted by the correlation's groups) and
``"power(~ x)"`` (``varPower``: sd proportional to |x|^power).  Both together give
Lambda_g = D_g^(1/2) R_g D_g^(1/2).

The structures (blocks, patterns, whitening, nlme's unconstrained scales) are
:mod:`workbench.gls.residual`'s and :mod:`workbench.gls.variance`'s.  For given parameters u the
rest is GLS on whitened rows: with L_g the Cholesky factor of Lambda_g(u), y* = L_g^-1 y_g,
X* = L_g^-1 X_g per group (groups with the same pattern share one factor; no n x n matrix),
beta by least squares on (X*, y*), r^2 its residual sum of squares, R_X its triangular factor,
and the criterion profiled over beta and sigma is nlme's::

    ML:   -2 log L = n (1 + log(2 pi r^2 / n)) + sum_g log|Lambda_g|
    REML: -2 log L = (n - p)(1 + log(2 pi r^2 / (n - p))) + log|R_X|^2 + sum_g log|Lambda_g|

minimised over u: bounded Brent for one parameter, BFGS on central-difference gradients for
several (|u| <= 20), then Newton steps on a finite-difference Hessian until the Newton
decrement g'H^-1 g is below 1e-6.  ``converged`` says that the Hessian is positive definite,
the decrement is small and no u sits at the box; otherwise a warning says why (a parameter
with |u| >= 10 where the criterion has flattened out is named as at the boundary: a correlation
of 0 for ``car1``, a ratio of 0, ... is not an interior optimum, and nlme itself gives no
intervals there).  sigma^2 is r^2 / (n - p)
(REML) or r^2 / n (ML), the residual variance of row i is sigma^2 d_i; the fixed effects'
covariance is r^2 / (n - p) (X*'X*)^-1 by either method, as nlme reports it.

The intervals are nlme's ``intervals()``: Wald on nlme's scale for each parameter
(the unconstrained scale; for ``symm`` each correlation's log((1 + r)/(1 - r)), nlme's
``corNatural``), the covariance 2 H^-1 with H the finite-difference Hessian of the profiled
-2 log L on that scale (equal to the (u, u) block of the inverse Hessian in (u, log sigma)
that nlme differentiates, the profile's curvature at the optimum), mapped back.

The equivalences.  ``cs`` is the random-intercept model written marginally: with a positive
Rho it equals ``(1 | g)`` REML (Rho = tau^2 / (tau^2 + sigma^2)), with a negative one the
``nobound`` fit.  On balanced repeated measures with T occasions, ``symm(~ t | g)`` with
``ident(~ 1 | t)`` is the unstructured T x T marginal covariance (T(T+1)/2 parameters: T(T-1)/2
correlations, T - 1 ratios and sigma), the same marginal model as ``(0 + factor(t) | g)`` plus a
residual, whose T(T+1)/2 + 1 parameters are one too many: only the sum V = G + sigma^2 I is
identified.  With as many random effects as observations the engine refuses that model, as
lme4 does by default (told to ignore the check, lme4 reaches the gls REML criterion); with
sigma^2 fixed at any c below V's smallest eigenvalue (``known_sd``) the engine reaches the gls
criterion, fixed effects and SEs with G = V - c I (``tests/gls/test_structures.py``).
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
from .variance import VARIANCES, Combined

#: Correlation structures and nlme's names for their parameter (``symm``: ``cor(i,j)``).
CORRELATIONS = {"cs": "Rho", "ar1": "Phi", "car1": "Phi", "symm": "cor(i,j)"}
#: Variance functions and nlme's names for their parameters.
VARIANCE_FUNCTIONS = {"ident": "the level's ratio", "power": "power"}
_SPEC = re.compile(r"^\s*(\w+)\s*\(\s*~\s*(.+?)\s*\|\s*(.+?)\s*\)\s*$")
_VSPEC = re.compile(r"^\s*(\w+)\s*\(\s*~\s*([^|]+?)\s*(?:\|\s*(.+?)\s*)?\)\s*$")
_BOX = 20.0  # |u| bound of the search: a parameter there is at its boundary


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


@dataclass(frozen=True)
class VarianceSpec:
    """A parsed ``variance=`` string: kind and its column (the strata of ``ident``, the
    covariate of ``power``)."""

    kind: str
    column: str

    @property
    def text(self) -> str:
        return f"ident(~ 1 | {self.column})" if self.kind == "ident" else \
            f"power(~ {self.column})"


def parse_correlation(text: str) -> CorrelationSpec:
    """``"cs(~ 1 | g)"``, ``"ar1(~ t | g)"``, ... -> :class:`CorrelationSpec`; a plain error
    otherwise."""
    m = _SPEC.match(text or "") if isinstance(text, str) else None
    if not m:
        raise FormulaError(f"cannot read correlation '{text}': write it as nlme does, e.g. "
                           "'cs(~ 1 | g)' or 'ar1(~ time | g)'")
    kind, pos, group = m.group(1), m.group(2).strip("` "), m.group(3).strip("` ")
    if kind not in CORRELATIONS:
        known = ", ".join(CORRELATIONS)
        raise NotYetSupportedError(f"correlation structure '{kind}' is not implemented; "
                                   f"implemented: {known}")
    if pos == "1":
        if kind == "car1":
            raise FormulaError(f"'{text}': car1 needs a time column, e.g. 'car1(~ time | g)'")
        pos = None
    elif kind == "cs":
        pos = None  # compound symmetry does not depend on the order
    return CorrelationSpec(kind, pos, group)


def parse_variance(text: str) -> VarianceSpec:
    """``"ident(~ 1 | f)"``, ``"power(~ x)"`` -> :class:`VarianceSpec`; a plain error otherwise."""
    m = _VSPEC.match(text or "") if isinstance(text, str) else None
    if not m:
        raise FormulaError(f"cannot read variance '{text}': write it as nlme does, e.g. "
                           "'ident(~ 1 | f)' or 'power(~ x)'")
    kind, cov, strata = m.group(1), m.group(2).strip("` "), m.group(3)
    if kind not in VARIANCE_FUNCTIONS:
        known = ", ".join(VARIANCE_FUNCTIONS)
        raise NotYetSupportedError(f"variance function '{kind}' is not implemented; "
                                   f"implemented: {known}")
    if kind == "ident":
        if cov != "1" or not strata:
            raise FormulaError(f"'{text}': write ident as 'ident(~ 1 | f)'")
        return VarianceSpec(kind, strata.strip("` "))
    if strata:
        raise NotYetSupportedError(f"'{text}': a power per stratum ('| f') is not implemented; "
                                   "write 'power(~ x)'")
    if cov == "1":
        raise FormulaError(f"'{text}': power needs a covariate, e.g. 'power(~ x)'")
    return VarianceSpec(kind, cov)


def correlation_rows(spec, data: pd.DataFrame, corr: CorrelationSpec, **design_kwargs):
    """The data with the rows nlme would use, and the groups and positions aligned with the
    design built from it (rows missing a model variable or a correlation column dropped)."""
    data, used = _used_rows(spec, data, corr.columns, "correlation", **design_kwargs)
    groups, pos = _groups_positions(used, corr)
    return data, groups, pos


def residual_structure(spec, data: pd.DataFrame, correlation: str | None = None,
                       variance: str | None = None, order: np.ndarray | None = None,
                       **design_kwargs):
    """The data with the rows nlme would use and the residual structure aligned with the
    design built from it.

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame
    correlation, variance : str, optional
        As written in ``fit(correlation=..., variance=...)``; at least one.
    order : array of int, optional
        Without a correlation, the row order (of the rows used) in which ``varIdent`` reads
        its first stratum: nlme::lme sorts the rows by the grouping factors; data order by
        default (nlme::gls).
    **design_kwargs
        ``known_sd``, ``weights``, ``offset`` as for the design.

    Returns
    -------
    data : DataFrame
        The rows to build the design from.
    structure : ResidualStructure
        A correlation structure alone, or a :class:`~workbench.gls.variance.Combined`.
    corr : CorrelationSpec or None
    var : VarianceSpec or None
    """
    corr = parse_correlation(correlation) if correlation is not None else None
    var = parse_variance(variance) if variance is not None else None
    columns = (corr.columns if corr else []) + ([var.column] if var else [])
    data, used = _used_rows(spec, data, columns,
                            "correlation or variance" if corr and var else
                            "correlation" if corr else "variance", **design_kwargs)
    cor_struct = None
    if corr is not None:
        groups, pos = _groups_positions(used, corr)
        cor_struct = STRUCTURES[corr.kind](groups, pos)
        _check_correlation(cor_struct, corr)
        order = np.argsort(groups, kind="stable")  # nlme sorts the rows by group
    if var is None:
        return data, cor_struct, corr, var
    col = used[var.column]
    if var.kind == "ident":
        vf = VARIANCES["ident"](col.astype(str).to_numpy(), order)
    else:
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            raise DataError(f"variance covariate '{var.column}' of {var.text} must be numeric")
        zero = int(np.sum(x == 0))
        if zero:
            raise DataError(f"variance covariate '{var.column}' is zero in {zero} "
                            f"row{'s' if zero > 1 else ''}: {var.text} needs |x| > 0")
        vf = VARIANCES["power"](x)
    return data, Combined(cor_struct, vf, used.shape[0]), corr, var


def _used_rows(spec, data, columns, what, **design_kwargs):
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataError(f"{what} column '{missing[0]}' is not in the data")
    ok = data[columns].notna().all(axis=1).to_numpy()
    if not ok.all():
        k = int((~ok).sum())
        warnings.warn(f"{k} row{'s' if k > 1 else ''} with a missing {what} column "
                      "dropped", stacklevel=4)
        data = data.loc[ok]
    frame = evaluate(spec, data, **design_kwargs)
    keep = complete_rows(frame, data.shape[0])
    return data, data.loc[keep]


def _groups_positions(used, corr: CorrelationSpec):
    groups = pd.Categorical(used[corr.group].astype(str)).codes.astype(np.int64)
    if corr.position is None:
        return groups, used.groupby(groups, sort=False).cumcount().to_numpy()
    t = pd.to_numeric(used[corr.position], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(t)):
        raise DataError(f"position '{corr.position}' of {corr.text} must be numeric")
    if corr.kind != "car1" and np.any(t != np.round(t)):
        raise DataError(f"position '{corr.position}' of {corr.text} must be integer-valued"
                        + ("; for continuous times use car1" if corr.kind == "ar1" else ""))
    if pd.DataFrame({"g": groups, "t": t}).duplicated().any():
        raise DataError(f"position '{corr.position}' repeats within a group of "
                        f"'{corr.group}'; {corr.text} needs distinct positions")
    return groups, (t if corr.kind == "car1" else t.astype(np.int64))


def _check_correlation(wh: ResidualStructure, corr: CorrelationSpec):
    if wh.tmax < 2:
        raise DataError(f"every group of '{corr.group}' has one row: {corr.text} has nothing "
                        "to correlate")


def _profiled(wh: ResidualStructure, X, y, u, reml):
    A, logdet = wh.whiten(np.column_stack([X, y]), u)
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
    """``nlme::gls`` with one correlation structure given by groups and positions (see
    :func:`fit_gls`)."""
    wh = STRUCTURES[corr.kind](codes, pos)
    _check_correlation(wh, corr)
    return fit_gls(design, wh, corr=corr, reml=reml, level=level, label=label)


def fit_gls(design: Design, wh: ResidualStructure, corr: CorrelationSpec | None = None,
            var: VarianceSpec | None = None, reml: bool = True, level: float = 0.95,
            label: str | None = None) -> Fit:
    """``nlme::gls`` with a residual structure (see the module docstring).

    Parameters
    ----------
    design : Design
        No random-effects terms, no prior weights or known sds.
    wh : ResidualStructure
        Aligned with the design's rows (:func:`residual_structure`); a
        :class:`~workbench.gls.variance.Combined` when there is a variance function.
    corr, var : CorrelationSpec, VarianceSpec
        What was asked for (the record's names and forms).
    reml : bool
    level : float
        Of the Wald intervals.
    label : str, optional

    Returns
    -------
    Fit
        ``method`` "reml"/"ml"; ``varcorr`` the residual row (sigma of the reference variance);
        ``diagnostics["corstruct"]`` = ``{"structure", "form", "groups", NAME: estimate, ...,
        "intervals": {NAME: [lower, upper]}}`` with nlme's names (``Rho``, ``Phi``,
        ``cor(1,2)``, ...; a one-parameter structure also has ``"interval"``) and
        ``diagnostics["varstruct"]`` likewise (``varIdent``'s ratios under their levels,
        ``reference`` the level with ratio 1; ``varPower``'s ``power``); a
        :class:`~workbench.record.GlsState` whose ``variance`` is (natural parameters,
        sigma^2).
    """
    from ..reml.optimize import OptimizerWarning

    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError("a residual correlation or variance structure with prior "
                                   "weights or known sds is not implemented")
    if design.terms:
        raise NotYetSupportedError("this fitter is nlme::gls: a model without random effects")
    n, p = design.n, design.p
    if n - p < 1:
        raise DataError(f"{p} fixed effects for {n} observations leave no residual degrees "
                        "of freedom")
    X, y = design.X, design.y_work

    def f(u):
        try:
            c = _profiled(wh, X, y, u, reml)[0]
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, OverflowError):
            return math.inf
        return c if math.isfinite(c) else math.inf

    u, nfev, message = _minimise(f, wh.start())
    H, g = _curvature(f, u)
    ok_h = _positive_definite(H)
    decrement = float(g @ np.linalg.solve(H, g)) if ok_h else math.inf
    at_box = bool(np.any(np.abs(u) >= _BOX - 1.0))
    converged = ok_h and decrement < 1e-6 and not at_box
    natural = wh.natural(u)
    if not converged:
        # far out on the unconstrained scale the criterion is flat: the optimum is the edge
        edge = [f"{nm} = {v:.3g}" for nm, x, v in zip(wh.names, u, natural) if abs(x) >= 10.0]
        why = ("at the boundary of the parameter space (" + ", ".join(edge) + "): the "
               "likelihood rises towards the edge, which the structure excludes") if edge else \
            "the criterion's Hessian is not positive definite" if not ok_h else \
            f"the Newton decrement is {decrement:.3g}"
        message = why
        warnings.warn(f"the residual structure's optimum was not found: {why}",
                      OptimizerWarning, stacklevel=3)
    crit, beta, R, r2 = _profiled(wh, X, y, u, reml)
    s2 = r2 / (n - p) if reml else r2 / n
    Rinv = np.linalg.inv(R)
    vcov = r2 / (n - p) * (Rinv @ Rinv.T)  # nlme: the REML-scale sigma^2 by either method
    lower, upper = _intervals(f, wh, natural, level)
    b, se, ci = wald_fixed_effects(design.fixed_names, beta, vcov, level)
    sigma = math.sqrt(s2)
    diagnostics = structure_diagnostics(wh, corr, var, natural, lower, upper)
    diagnostics["optimizer"] = {
        "method": "bounded Brent (scipy) on the profiled criterion" if wh.size == 1 else
                  "BFGS on the profiled criterion, then Newton steps",
        "evaluations": int(nfev), "message": message, "newton_decrement": decrement}
    kinds = "+".join(x.kind for x in (corr, var) if x is not None)
    return build_fit(
        method="reml" if reml else "ml", design=design, structure=build_structure(design),
        criterion=float(crit), beta=b, beta_se=se, beta_ci=ci, sigma=sigma,
        varcorr=[{"grp": "Residual", "var1": None, "var2": None, "vcov": s2, "sdcor": sigma,
                  "sdcor_ci": None}],
        ranef=[], converged=converged, singular=False,
        state=GlsState(vcov=vcov, estimator=kinds, variance=np.append(natural, s2)),
        diagnostics=diagnostics, label=label)


def structure_diagnostics(wh: ResidualStructure, corr: CorrelationSpec | None,
                          var: VarianceSpec | None, natural, lower, upper) -> dict:
    """The record's ``corstruct`` / ``varstruct`` entries: ``{"structure", "form", NAME:
    estimate, ..., "intervals": {NAME: [lower, upper]}}`` with nlme's names (a one-parameter
    structure also has ``"interval"``; the correlation's ``"groups"``, varIdent's
    ``"reference"`` level)."""
    out = {}
    k = 0
    for entry, part in (("corstruct", corr), ("varstruct", var)):
        if part is None:
            continue
        names = wh.correlation.names if entry == "corstruct" and isinstance(wh, Combined) \
            else wh.variance.names if entry == "varstruct" else wh.names
        sl = slice(k, k + len(names))
        k += len(names)
        info = {"structure": part.kind, "form": part.text}
        if entry == "corstruct":
            info["groups"] = (wh.correlation if isinstance(wh, Combined) else wh).ngroups
        elif part.kind == "ident":
            info["reference"] = wh.variance.levels[0]
        info.update({nm: float(v) for nm, v in zip(names, natural[sl])})
        info["intervals"] = {nm: [float(a), float(b_)]
                             for nm, a, b_ in zip(names, lower[sl], upper[sl])}
        if len(names) == 1:
            info["interval"] = info["intervals"][names[0]]
        out[entry] = info
    return out


def _minimise(f, u0):
    """u minimising f: Brent for one parameter; for several :func:`minimise_bfgs`."""
    from scipy.optimize import minimize_scalar

    if len(u0) == 1:
        res = minimize_scalar(lambda t: f(np.array([t])), bounds=(-_BOX, _BOX),
                              method="bounded", options={"xatol": 1e-10, "maxiter": 1000})
        return np.array([float(res.x)]), int(res.nfev), None
    return minimise_bfgs(f, u0)


def minimise_bfgs(f, u0, gradient=None, box: float = _BOX):
    """u minimising f over several parameters: BFGS (a backtracking line search that steps
    back from non-finite values, steps of length <= 2 on u), then Newton steps on the
    finite-difference Hessian.

    Parameters
    ----------
    f : callable
        u -> float (inf where undefined).
    u0 : ndarray
    gradient : callable, optional
        u -> gradient of f; central differences of f by default.
    box : float
        |u| bound of the search.

    Returns
    -------
    (u, evaluations of f, message or None)
    """
    count = [0]

    def fc(u):
        count[0] += 1
        return f(np.clip(u, -box, box))

    def grad(u, h=1e-5):
        if gradient is not None:
            return np.asarray(gradient(np.clip(u, -box, box)), dtype=float)
        E = np.eye(len(u)) * h
        return np.array([(fc(u + e) - fc(u - e)) / (2 * h) for e in E])

    u = np.asarray(u0, dtype=float)
    fu, g = fc(u), grad(u)
    if not math.isfinite(fu):
        return u, count[0], "the criterion is not finite at the start"
    Hinv = np.eye(len(u))
    message = "BFGS: the iteration limit was reached"
    for _ in range(1000):
        d = -Hinv @ g
        if g @ d >= 0:
            Hinv, d = np.eye(len(u)), -g
        nrm = float(np.linalg.norm(d))
        if nrm > 2.0:
            d *= 2.0 / nrm
        t = 1.0
        while t > 1e-12:
            cand = np.clip(u + t * d, -box, box)
            fnew = fc(cand)
            if fnew <= fu + 1e-4 * t * float(g @ d):
                break
            t /= 2
        else:
            message = None  # no descent along the search direction: polish below
            break
        s = cand - u
        gnew = grad(cand)
        yv = gnew - g
        sy = float(s @ yv)
        if sy > 1e-12:
            rho = 1.0 / sy
            V = np.eye(len(u)) - rho * np.outer(s, yv)
            Hinv = V @ Hinv @ V.T + rho * np.outer(s, s)
        df = fu - fnew
        u, fu, g = cand, fnew, gnew
        if float(np.max(np.abs(g))) < 1e-6 or (df < 1e-12 and float(np.max(np.abs(s))) < 1e-9):
            message = None
            break
    for _ in range(20):  # Newton polish on the finite-difference Hessian
        H, g = _curvature(fc, u, h=1e-4)
        if not _positive_definite(H):
            break
        step = np.linalg.solve(H, g)
        t, improved = 1.0, False
        while t > 1e-4:
            cand = np.clip(u - t * step, -box, box)
            fnew = fc(cand)
            if fnew <= fu:
                u, fu, improved = cand, fnew, True
                break
            t /= 2
        if not improved or float(np.max(np.abs(t * step))) < 1e-9:
            break
    return u, count[0], message


def _curvature(f, u, h=1e-4):
    """Central-difference Hessian and gradient of f at u."""
    k = len(u)
    f0 = f(u)
    H = np.empty((k, k))
    g = np.empty(k)
    E = np.eye(k) * h
    fp = np.array([f(u + E[i]) for i in range(k)])
    fm = np.array([f(u - E[i]) for i in range(k)])
    g[:] = (fp - fm) / (2 * h)
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i):
            H[i, j] = H[j, i] = (f(u + E[i] + E[j]) - f(u + E[i] - E[j])
                                 - f(u - E[i] + E[j]) + f(u - E[i] - E[j])) / (4 * h**2)
    return H, g


def _positive_definite(H) -> bool:
    if not np.all(np.isfinite(H)):
        return False
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    return True


def _intervals(f, wh: ResidualStructure, natural, level):
    """nlme's Wald intervals on each parameter's interval scale (module docstring)."""
    from scipy.stats import norm

    v0 = wh.to_interval(natural)

    def fv(v):
        try:
            return f(wh.unconstrained(wh.from_interval(v)))
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return math.inf

    H, _ = _curvature(fv, v0, h=1e-3)
    nan = np.full(len(v0), math.nan)
    if not _positive_definite(H):
        return nan, nan
    se = np.sqrt(np.diag(2.0 * np.linalg.inv(H)))
    z = norm.ppf(0.5 + level / 2)
    return wh.from_interval(v0 - z * se), wh.from_interval(v0 + z * se)


__all__ = ["CORRELATIONS", "VARIANCE_FUNCTIONS", "CorrelationSpec", "VarianceSpec",
           "parse_correlation", "parse_variance", "correlation_rows", "residual_structure",
           "fit_corgls", "fit_gls", "structure_diagnostics", "minimise_bfgs"]
