"""GLS forecast reconciliation (Hyndman et al. 2011; Wickramasuriya, Athanasopoulos & Hyndman 2019).

A hierarchy of m series whose bottom level has k series is summed by S (m x k): coherent
forecasts are y = S b.  Base forecasts yhat (one per series, made separately) are not coherent;
reconciliation treats them as a regression yhat = S b + e, var(e) = W, and takes the GLS fit::

    b~ = (S' W^-1 S)^-1 S' W^-1 yhat,     y~ = S b~ = S (S' W^-1 S)^-1 S' W^-1 yhat,

the same projection that gives the fixed effects of a mixed model, with S as the design and W
the error covariance.  Wickramasuriya et al. show it minimises the trace of the reconciled
forecast-error covariance when W is the covariance of the base forecasts' errors (MinT).
``method`` chooses W (the names of R's ``hts``/``fable`` and of hierarchicalforecast):

=============== ==================================================================
``ols``         W = I
``wls_struct``  W = diag(S 1): each series' number of bottom series
``wls_var``     W = diag(mean of e_t^2): in-sample one-step residual variances
``mint_sample`` W = the sample covariance of the in-sample residuals (``np.cov``)
``mint_shrink`` W = lambda diag(W_s) + (1 - lambda) W_s, Schafer & Strimmer's (2005) shrinkage
                of the sample covariance W_s to its diagonal, lambda estimated
=============== ==================================================================

with lambda = sum_{i != j} var(r_ij) / sum_{i != j} r_ij^2 (r the sample correlations,
var(r_ij) = (sum_t w_tij^2 - (sum_t w_tij)^2 / T) / (T (T - 1)), w_tij = x_ti x_tj the products
of the centered residuals standardised by their ML sd), clipped to [0, 1], as hierarchicalforecast
computes it (R's ``hts`` uses uncentered residuals instead).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, OptionError
from ..options import RECONCILE_METHODS
_NEEDS_RESIDUALS = ("wls_var", "mint_sample", "mint_shrink")


def shrink_covariance(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Schafer-Strimmer shrinkage of the sample covariance toward its diagonal.

    Parameters
    ----------
    residuals : ndarray, shape (m, T)
        In-sample residuals, one row per series.

    Returns
    -------
    W : ndarray, shape (m, m)
        lambda diag(W_s) + (1 - lambda) W_s, W_s = ``np.cov(residuals)``.
    lam : float
        The shrinkage intensity lambda in [0, 1].
    """
    R = np.asarray(residuals, dtype=float)
    T = R.shape[1]
    Ws = np.cov(R)
    sd = np.sqrt(np.diag(Ws))
    sd0 = R.std(axis=1)  # standardising by the ML sd, as hierarchicalforecast does
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(np.outer(sd, sd) > 0, Ws / np.outer(sd, sd), 0.0)
        xs = np.where(sd0[:, None] > 0, (R - R.mean(axis=1, keepdims=True)) / sd0[:, None],
                      0.0).T  # (T, m): centered, standardised
    v = (xs**2).T @ xs**2 - (xs.T @ xs) ** 2 / T
    v /= T * (T - 1)
    np.fill_diagonal(v, 0.0)
    d = corr**2
    np.fill_diagonal(d, 0.0)
    lam = float(np.clip(v.sum() / d.sum(), 0.0, 1.0)) if d.sum() > 0 else 1.0
    W = lam * np.diag(np.diag(Ws)) + (1.0 - lam) * Ws
    return W, lam


def reconcile_weights(S: np.ndarray, method: str = "ols",
                      residuals: np.ndarray | None = None) -> np.ndarray:
    """The error covariance W (m x m) of a reconciliation ``method`` (see the module docstring).

    Raises
    ------
    OptionError
        An unknown method, or one that needs ``residuals`` without them.
    """
    S = np.asarray(S, dtype=float)
    m = S.shape[0]
    if method not in RECONCILE_METHODS:
        raise OptionError(f"unknown reconciliation method '{method}'; choose one of "
                          f"{', '.join(RECONCILE_METHODS)}")
    if method == "ols":
        return np.eye(m)
    if method == "wls_struct":
        return np.diag(S.sum(axis=1))
    if residuals is None:
        raise OptionError(f"reconciliation method '{method}' needs the in-sample residuals "
                          "(residuals=, one row per series)")
    R = np.asarray(residuals, dtype=float)
    if R.ndim != 2 or R.shape[0] != m:
        raise DataError(f"residuals must have one row per series ({m}), got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        raise DataError("residuals must be finite (drop the periods with a missing value)")
    if R.shape[1] < 2:
        raise DataError("residuals need at least two periods")
    if method == "wls_var":
        return np.diag(np.mean(R**2, axis=1))
    if method == "mint_sample":
        return np.cov(R)
    return shrink_covariance(R)[0]


def projection(S: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The GLS map from base to bottom-level forecasts, P = (S' W^-1 S)^-1 S' W^-1 (k x m).

    Raises
    ------
    DataError
        W not positive definite, or S' W^-1 S singular.
    """
    S = np.asarray(S, dtype=float)
    try:
        L = np.linalg.cholesky(np.asarray(W, dtype=float))
    except np.linalg.LinAlgError:
        raise DataError("the reconciliation weights W are not positive definite (too few "
                        "residual periods for mint_sample? try mint_shrink)") from None
    A = np.linalg.solve(L, S)  # L^-1 S: whitened design
    Q, R = np.linalg.qr(A)
    if np.min(np.abs(np.diag(R))) <= 1e-12 * np.max(np.abs(np.diag(R))):
        raise DataError("S' W^-1 S is singular: S must have full column rank")
    # P = (A'A)^-1 A' L^-1 = R^-1 Q' L^-1
    return np.linalg.solve(R, np.linalg.solve(L.T, Q).T)


def reconcile(base, S, method: str = "ols", residuals=None) -> np.ndarray:
    """Coherent forecasts from base forecasts: S (S' W^-1 S)^-1 S' W^-1 base.

    Parameters
    ----------
    base : array, shape (m,) or (m, h)
        Base forecasts, one row per series in the order of S's rows (h horizons as columns).
    S : array, shape (m, k)
        Summing matrix: row i says which bottom series series i adds up.
    method : {"ols", "wls_struct", "wls_var", "mint_sample", "mint_shrink"}
        The weights W (module docstring).
    residuals : array, shape (m, T), optional
        In-sample (one-step) residuals of the base models, for ``wls_var``, ``mint_sample``,
        ``mint_shrink``.

    Returns
    -------
    ndarray
        Reconciled forecasts, the shape of ``base``; they satisfy y = S b exactly.

    Examples
    --------
    >>> S = [[1, 1], [1, 0], [0, 1]]
    >>> workbench.reconcile([10.0, 4.0, 5.0], S)       # total 10 vs 4 + 5
    array([9.66666667, 4.33333333, 5.33333333])
    """
    S = np.asarray(S, dtype=float)
    base = np.asarray(base, dtype=float)
    if S.ndim != 2 or S.shape[0] < S.shape[1]:
        raise DataError(f"S must be an m x k summing matrix with m >= k, got shape {S.shape}")
    if base.shape[0] != S.shape[0] or base.ndim > 2:
        raise DataError(f"base forecasts must have {S.shape[0]} rows (one per series of S), "
                        f"got shape {base.shape}")
    W = reconcile_weights(S, method, residuals)
    return S @ (projection(S, W) @ base)


def reconcile_frames(base, summing, method: str = "ols", residuals=None):
    """:func:`reconcile` on tables labelled by series, as the CLI reads them.

    Parameters
    ----------
    base : DataFrame
        First column the series' names, then one column per horizon.
    summing : DataFrame
        First column the series' names (every series of ``base``), then one 0/1 column per
        bottom series: S.
    method : str
    residuals : DataFrame, optional
        First column the series' names, then one column per in-sample period.

    Returns
    -------
    DataFrame
        ``base``'s layout: the series in S's row order, the reconciled forecasts.

    Raises
    ------
    DataError
        Series that do not match between the tables, non-numeric entries.
    """
    import pandas as pd

    def indexed(frame, what):
        if frame.shape[1] < 2:
            raise DataError(f"the {what} table needs a series column and at least one more")
        out = frame.set_index(frame.columns[0])
        out.index = out.index.astype(str)
        if out.index.duplicated().any():
            dup = out.index[out.index.duplicated()][0]
            raise DataError(f"series '{dup}' appears twice in the {what} table")
        try:
            return out.astype(float)
        except (TypeError, ValueError):
            raise DataError(f"the {what} table has a non-numeric entry") from None

    S = indexed(summing, "summing")
    series = list(S.index)

    def aligned(frame, what):
        missing = [k for k in series if k not in frame.index]
        extra = [k for k in frame.index if k not in S.index]
        if missing or extra:
            k, where = (missing[0], f"the {what} table") if missing else \
                (extra[0], "the summing matrix")
            raise DataError(f"series '{k}' is not in {where}: the {what} table and the summing "
                            "matrix must list the same series")
        return frame.loc[series]

    B = aligned(indexed(base, "base"), "base")
    R = None if residuals is None else aligned(indexed(residuals, "residuals"), "residuals")
    y = reconcile(B.to_numpy(), S.to_numpy(), method,
                  residuals=None if R is None else R.to_numpy())
    out = pd.DataFrame(np.asarray(y).reshape(len(series), -1), columns=B.columns)
    out.insert(0, base.columns[0], series)
    return out


__all__ = ["reconcile_frames", "reconcile", "reconcile_weights", "projection",
           "shrink_covariance"]
