"""Models without a random-effects term: (weighted) least squares with the REML or ML sigma.

``y ~ x`` by REML/ML is ``nlme::gls`` with no correlation structure.  With prior weights w_i
(residual variance sigma^2 / w_i) and rows scaled by sqrt(w_i), ``R_X`` the triangular factor of
the scaled X and r^2 the weighted residual sum of squares::

    beta  = (X'WX)^-1 X'W (y - offset)
    ML:   -2 log L = n (1 + log(2 pi r^2 / n)) - sum log w            sigma^2 = r^2 / n
    REML: -2 log L = (n - p)(1 + log(2 pi r^2 / (n - p))) + log|R_X|^2 - sum log w
                                                                       sigma^2 = r^2 / (n - p)

which is lme4's profiled criterion with no random effects (log|L|^2 = 0).  The fixed effects'
covariance is r^2 / (n - p) (X'WX)^-1 by either method, as ``nlme::gls`` reports it.  With known residual sds
(no sigma): -2 log L = r^2 + n log(2 pi) + sum log s_i^2 (+ log|R_X|^2 - p log(2 pi) for REML).
"""

from __future__ import annotations

import math

import numpy as np

from ..design import Design
from ..errors import DataError
from ..record import Fit, RemlState, build_fit, wald_fixed_effects
from ..structure import build_structure


def fit_linear(design: Design, reml: bool = True, level: float = 0.95,
               label: str | None = None) -> Fit:
    """Fit a model without random effects by REML or ML (weighted least squares).

    Parameters
    ----------
    design : Design
        A design with no random-effects terms.
    reml : bool
        REML (True) or ML.
    level : float
        Coverage of the Wald intervals.
    label : str, optional

    Returns
    -------
    Fit
        With no ``ranef`` rows; ``varcorr`` holds the residual only.
    """
    n, p = design.n, design.p
    s = design.row_scale
    X = design.X if s is None else design.X * s[:, None]
    y = design.y_work if s is None else design.y_work * s
    known = design.known_sd is not None
    if not known and n - p < 1:
        raise DataError(f"{p} fixed effects for {n} observations leave no residual degrees of "
                        "freedom")
    if p:
        Q, R = np.linalg.qr(X)
        beta = np.linalg.solve(R, Q.T @ y)
        ldRX2 = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
        Rinv = np.linalg.inv(R)
        XtXinv = Rinv @ Rinv.T
    else:
        beta, ldRX2, XtXinv = np.zeros(0), 0.0, np.zeros((0, 0))
    r2 = float(np.sum((y - X @ beta) ** 2))
    ldW = design.log_weights
    log2pi = math.log(2.0 * math.pi)
    if known:
        s2, sigma = 1.0, None
        value = r2 + n * log2pi + 2.0 * float(np.log(design.known_sd).sum()) - ldW
        if reml:
            value += ldRX2 - p * log2pi
    elif reml:
        s2 = r2 / (n - p)
        sigma = math.sqrt(s2)
        value = (n - p) * (1.0 + math.log(2.0 * math.pi * s2)) + ldRX2 - ldW
    else:
        s2 = r2 / n
        sigma = math.sqrt(s2)
        value = n * (1.0 + math.log(2.0 * math.pi * s2)) - ldW
    # nlme::gls reports sigma^2 (X'WX)^-1 with the REML-scale sigma^2 by either method
    vcov = (1.0 if known else r2 / (n - p)) * XtXinv
    names = design.fixed_names
    varcorr = [] if known else [{"grp": "Residual", "var1": None, "var2": None, "vcov": s2,
                                 "sdcor": sigma, "sdcor_ci": None}]
    beta_d, se_d, ci_d = wald_fixed_effects(names, beta, vcov, level)
    return build_fit(
        method="reml" if reml else "ml",
        design=design,
        structure=build_structure(design),
        criterion=float(value),
        beta=beta_d,
        beta_se=se_d,
        beta_ci=ci_d,
        sigma=sigma,
        varcorr=varcorr,
        ranef=[],
        converged=True,
        singular=False,
        state=RemlState(vcov=vcov, reml=reml, theta=np.zeros(0)),
        diagnostics={"optimizer": {"method": "closed form (weighted least squares)"}},
        label=label,
    )


__all__ = ["fit_linear"]
