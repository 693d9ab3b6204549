"""Feasible GLS for one grouping factor with random intercepts, as R's plm does it.

The model is y_it = x_it' beta + eta_i + nu_it with var(eta_i) = s_eta, var(nu_it) = s_nu, so
V_i = s_nu I + s_eta J within group i (T_i rows).  The variance components come from quadratic
forms of residuals, each solved from its expectation E[q] = M [s_nu, s_eta]' (plm's ``ercomp``):

* ``q_w = ||W e_1||^2``, the within-group sum of squares of one set of residuals, and
* ``q_b = ||B e_2||^2``, the sum over rows of the squared group means of another (B
  replaces each row by its group's mean, W = I - B),

with the residuals from (``random.method``, plm's names; a regression with aliased columns
keeps its estimable ones, and K below counts those)

========== =================================== ===================================
method     e_1 (within form)                   e_2 (between form)
========== =================================== ===================================
swar       within (fixed-effects) regression   between regression on group means
           (Swamy & Arora 1972)                (rows weighted by T_i)
walhus     pooled OLS (Wallace & Hussain 1969) pooled OLS
amemiya    within regression (Amemiya 1971)    within regression (+ overall mean)
========== =================================== ===================================

and M as plm computes it: on a balanced panel (T rows per group, N groups, n rows, K slopes)
``swar``: M = [[n - N - K, 0], [N - K - 1, T (N - K - 1)]]; ``walhus`` and ``amemiya``:
M = [[n - N, 0], [N, T N]]; on an unbalanced panel the exact expectations (the traces below).
Negative solutions are set to zero.  ``nerlove`` (Nerlove 1971) takes s_nu = q_w / n from the
within regression and s_eta as the variance of its group intercepts (centered on their mean,
T_i-weighted on an unbalanced panel).

GLS is then OLS on quasi-demeaned data, y_it - theta_i ybar_i on x_it - theta_i xbar_i with
theta_i = 1 - sqrt(s_nu / (T_i s_eta + s_nu)) (Fuller & Battese 1973); the fixed effects'
covariance is plm's: s^2 (X*'X*)^-1 with s^2 the residual variance of that regression.
Everything is per-group sums; no n x n matrix is formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..design import Design
from ..errors import NotYetSupportedError, DataError
from ..record import Fit, build_fit, wald_fixed_effects
from ..structure import build_structure

from ..options import FGLS_ESTIMATORS as FGLS_METHODS


@dataclass(frozen=True, eq=False)
class Panel:
    """One-factor panel data as per-group arrays."""

    y: np.ndarray        # (n,)
    X: np.ndarray        # (n, p)
    codes: np.ndarray    # (n,) group of each row
    T: np.ndarray        # (N,) rows per group

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def N(self) -> int:
        return self.T.shape[0]

    @property
    def balanced(self) -> bool:
        return bool(np.all(self.T == self.T[0]))

    def means(self, A: np.ndarray) -> np.ndarray:
        """Group means of the columns of A, shape (N, k) (or (N,) for a vector)."""
        if A.ndim == 1:
            return np.bincount(self.codes, weights=A, minlength=self.N) / self.T
        return np.column_stack([self.means(A[:, j]) for j in range(A.shape[1])]) \
            if A.shape[1] else np.zeros((self.N, 0))

    def between(self, A: np.ndarray) -> np.ndarray:
        """B A: each row replaced by its group's mean."""
        return self.means(A)[self.codes]

    def within(self, A: np.ndarray) -> np.ndarray:
        """W A = A - B A."""
        return A - self.between(A)


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _varying(P: Panel, X: np.ndarray) -> np.ndarray:
    """Which columns of X vary within groups (the within regression keeps only those)."""
    WX = P.within(X)
    scale = np.maximum(np.abs(X).max(axis=0), 1.0)
    return np.abs(WX).max(axis=0) > 1e-10 * scale


def variance_components(P: Panel, method: str = "swar") -> tuple[float, float]:
    """(s_nu, s_eta) by one of plm's moment estimators (see the module docstring).

    ``P.X`` must hold an intercept column (first).
    """
    y, X, n, N = P.y, P.X, P.n, P.N
    p = X.shape[1]
    K = p - 1
    keep = _varying(P, X)
    WX, Wy = P.within(X)[:, keep], P.within(y)
    KW = int(keep.sum())
    bw = _ols(WX, Wy) if KW else np.zeros(0)
    e_within = Wy - WX @ bw  # W e for the within regression's residuals
    if method == "nerlove":
        s_nu = float(e_within @ e_within) / n
        alpha = P.means(y) - P.means(X[:, keep]) @ bw  # group intercepts
        if P.balanced:
            d = alpha - alpha.mean()
            s_eta = float(d @ d) / (N - 1)
        else:
            d = alpha - np.average(alpha, weights=P.T)
            s_eta = float(np.sum(d**2 * P.T)) / n * N / (N - 1)
        return s_nu, s_eta
    if method == "swar":
        BX, By = P.between(X), P.between(y)
        bb = _ols(BX, By)
        q_w = float(e_within @ e_within)
        rb = By - BX @ bb
        q_b = float(rb @ rb)
    elif method == "walhus":
        e = y - X @ _ols(X, y)
        We, Be = P.within(e), P.between(e)
        q_w, q_b = float(We @ We), float(Be @ Be)
    elif method == "amemiya":
        e = y - X[:, keep] @ bw
        e = e - e.mean()
        Be = P.between(e)
        q_w, q_b = float(e_within @ e_within), float(Be @ Be)
    else:
        raise NotYetSupportedError(f"unknown fgls estimator '{method}'; choose one of "
                                   f"{', '.join(FGLS_METHODS)}")
    M = _moment_matrix(P, method, KW, keep)
    s_nu, s_eta = np.linalg.solve(M, [q_w, q_b])
    return max(float(s_nu), 0.0), max(float(s_eta), 0.0)


def _moment_matrix(P: Panel, method: str, KW: int, keep: np.ndarray) -> np.ndarray:
    """E[q_w], E[q_b] as linear functions of (s_nu, s_eta): plm's ``M`` (rows w, id)."""
    X, n, N = P.X, P.n, P.N
    K = X.shape[1] - 1
    if P.balanced:
        T = float(P.T[0])
        if method == "swar":  # plm's dfcor = 2; K counts the between regression's estimable slopes
            Kb = np.linalg.matrix_rank(P.means(X)) - 1
            return np.array([[n - N - KW, 0.0], [N - Kb - 1, T * (N - Kb - 1)]])
        return np.array([[n - N, 0.0], [N, T * N]])  # dfcor = 1
    BX = P.between(X)
    SX = BX * P.T[P.codes][:, None]  # each row replaced by its group's sum
    if method == "swar":
        if np.linalg.matrix_rank(P.means(X)) < X.shape[1]:
            raise DataError("the Swamy-Arora estimator on an unbalanced panel needs a between "
                            "regression of full rank; a column's group means are collinear "
                            "(plm fails here too): use fgls='walhus' or 'amemiya'")
        tr = np.trace(np.linalg.solve(BX.T @ BX, SX.T @ X))
        return np.array([[n - N - KW, 0.0], [N - K - 1, n - tr]])
    if method == "walhus":
        A = np.linalg.inv(X.T @ X)
        WX = X - BX
        CW, CB, CS = WX.T @ WX, BX.T @ BX, SX.T @ X
        return np.array([
            [n - N - np.trace(A @ CW), np.trace(A @ CW @ A @ CS)],
            [N - np.trace(A @ CB), n - 2 * np.trace(A @ CS) + np.trace(A @ CB @ A @ CS)]])
    # amemiya
    WX = P.within(X)[:, keep]
    XB = BX[:, 1:]
    XB = XB - XB.mean(axis=0)
    tr = np.trace(np.linalg.solve(WX.T @ WX, XB.T @ XB))
    return np.array([[n - N - KW, 0.0], [N - 1 + tr, n - float(np.sum(P.T**2)) / n]])


def gls_quasi_demeaned(P: Panel, s_nu: float, s_eta: float):
    """GLS given the variance components, by OLS on quasi-demeaned data.

    Returns
    -------
    beta : ndarray, shape (p,)
    vcov : ndarray, shape (p, p)
        plm's: s^2 (X*'X*)^-1, s^2 = RSS* / (n - p).
    theta : ndarray, shape (N,)
        1 - sqrt(s_nu / (T_i s_eta + s_nu)) per group.
    """
    theta = 1.0 - np.sqrt(s_nu / (P.T * s_eta + s_nu))
    th = theta[P.codes]
    Xs = P.X - th[:, None] * P.between(P.X)
    ys = P.y - th * P.between(P.y)
    Q, R = np.linalg.qr(Xs)
    beta = np.linalg.solve(R, Q.T @ ys)
    r = ys - Xs @ beta
    s2 = float(r @ r) / (P.n - P.X.shape[1])
    Rinv = np.linalg.inv(R)
    return beta, s2 * (Rinv @ Rinv.T), theta


def panel_from_design(design: Design, what: str = "method 'fgls'") -> Panel:
    """The one-factor panel of a design, or a plain error naming what the design has more of."""
    if len(design.terms) != 1:
        raise NotYetSupportedError(
            f"{what} covers one grouping factor with random intercepts, as '(1 | g)'; "
            f"this model has {len(design.terms) or 'no'} random-effects terms")
    term = design.terms[0]
    if term.q != 1 or not np.all(term.Z[:, 0] == 1.0):
        raise NotYetSupportedError(
            f"{what} covers random intercepts only, as '(1 | {term.group})'; this model has "
            f"'({' + '.join('1' if c == '(Intercept)' else c for c in term.columns)} | "
            f"{term.group})' (use method='reml', 'ml', "
            "'igls' or 'rigls')")
    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError(f"{what} takes no prior weights or known residual sds")
    X = design.X
    if not X.shape[1] or not np.all(X[:, 0] == 1.0) or design.fixed_names[0] != "(Intercept)":
        raise NotYetSupportedError(f"{what} needs a fixed intercept, as plm's random-effects "
                                   "estimators do")
    T = np.bincount(term.codes, minlength=term.nlevels).astype(float)
    if np.any(T == 0):
        raise DataError(f"grouping factor '{term.group}' has a level with no rows")
    return Panel(y=design.y_work, X=X, codes=term.codes, T=T)


def fit_fgls(design: Design, estimator: str = "swar", level: float = 0.95,
             label: str | None = None) -> Fit:
    """Feasible GLS random-intercept fit (``method="fgls"``).

    Parameters
    ----------
    design : Design
        One random-intercept term ``(1 | g)``, a fixed intercept, no weights.
    estimator : {"swar", "walhus", "amemiya", "nerlove"}
        The variance-component estimator (plm's ``random.method``).
    level : float
        Coverage of the Wald intervals.
    label : str, optional

    Returns
    -------
    Fit
        ``method="fgls"``; ``criterion`` and ``loglik`` are None (no likelihood is maximised);
        ``varcorr`` holds sqrt(s_eta) and sigma = sqrt(s_nu); ``ranef`` the BLUPs at those
        components; a :class:`~workbench.record.GlsState`; ``diagnostics["fgls"]`` the
        estimator, s_nu, s_eta and theta per group.

    Raises
    ------
    NotYetSupportedError
        Random slopes, several grouping factors, weights, known sds or no intercept.
    """
    from ..record import GlsState

    if estimator not in FGLS_METHODS:
        raise NotYetSupportedError(f"unknown fgls estimator '{estimator}'; choose one of "
                                   f"{', '.join(FGLS_METHODS)}")
    P = panel_from_design(design)
    if P.N - P.X.shape[1] < 1 and estimator == "swar":
        raise DataError(f"the Swamy-Arora estimator needs more groups ({P.N}) than fixed "
                        f"effects ({P.X.shape[1]}) for its between regression")
    s_nu, s_eta = variance_components(P, estimator)
    if s_nu <= 0:
        raise DataError("the residual variance is estimated at zero: the model fits exactly")
    beta, vcov, theta = gls_quasi_demeaned(P, s_nu, s_eta)
    b, se, ci = wald_fixed_effects(design.fixed_names, beta, vcov, level)
    term = design.terms[0]
    st = build_structure(design)
    sigma = math.sqrt(s_nu)
    varcorr = st.blocks[0].varcorr_rows(np.array([[s_eta]]))
    varcorr.append({"grp": "Residual", "var1": None, "var2": None, "vcov": s_nu,
                    "sdcor": sigma, "sdcor_ci": None})
    shrink = P.T * s_eta / (P.T * s_eta + s_nu)
    blup = shrink * P.means(P.y - P.X @ beta)
    csd = np.sqrt(s_eta * s_nu / (P.T * s_eta + s_nu))
    ranef = [{"group": term.group, "term": "(Intercept)", "level": lev, "value": float(v),
              "cond_sd": float(c)} for lev, v, c in zip(term.levels, blup, csd)]
    state = GlsState(vcov=vcov, estimator=estimator, variance=np.array([s_eta, s_nu]))
    diagnostics = {"fgls": {"estimator": estimator, "sigma2_idios": s_nu, "sigma2_id": s_eta,
                            "theta": theta.tolist(), "balanced": P.balanced}}
    return build_fit(method="fgls", design=design, structure=st, beta=b, beta_se=se,
                     beta_ci=ci, sigma=sigma, varcorr=varcorr, ranef=ranef, converged=True,
                     singular=s_eta == 0.0, state=state, criterion=None,
                     diagnostics=diagnostics, label=label)


__all__ = ["FGLS_METHODS", "Panel", "variance_components", "gls_quasi_demeaned", "fit_fgls"]
