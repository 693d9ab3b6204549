"""Derivatives in the variance parameters (theta, sigma) of a REML/ML fit, as lmerTest takes them.

:class:`VarianceParameters` gives the deviance and the fixed effects' covariance
sigma^2 (X'V^-1X)^-1 as functions of x = (theta, sigma) (theta alone with known residual sds);
:func:`hessian` and :func:`jacobian` are central differences with steps 1e-3 max(|x|, 0.1).
Satterthwaite's df (:mod:`workbench.reml.inference`, :mod:`workbench.anova`) use them:
A = 2 H^-1 is the asymptotic covariance of x, and the gradient of a variance l' Phi l is
l' (dPhi/dx_k) l.  The fit is read through ``fit.reml_state`` only (no import of the record).
"""

from __future__ import annotations

import numpy as np

from .criterion import deviance


class VarianceParameters:
    """Deviance and fixed-effects covariance as functions of (theta, sigma), as lmerTest."""

    def __init__(self, fit):
        """``fit``: a REML/ML :class:`~workbench.record.Fit` with its factored system."""
        state = fit.reml_state("Satterthwaite degrees of freedom", need_system=True)
        self.system = state.system
        self.reml = fit.method == "reml"
        self.known = fit.design.known_sd is not None
        theta = np.asarray(state.theta, dtype=float)
        self.x0 = theta if self.known else np.append(theta, float(fit.sigma))
        self.ntheta = theta.size

    def _split(self, x):
        theta = x[: self.ntheta]
        s2 = 1.0 if self.known else float(x[-1]) ** 2
        return theta, s2

    def deviance(self, x) -> float:
        f = self.system.factor(x[: self.ntheta])
        sigma = None if self.known else float(x[-1])
        return deviance(self.system, self.system.logdets(f), self.reml, sigma)

    def vcov(self, x) -> np.ndarray:
        theta, s2 = self._split(x)
        f = self.system.factor(theta)
        R = self.system.beta_precision_factor(f)
        Rinv = np.linalg.inv(R)
        return s2 * (Rinv.T @ Rinv)


def steps(x: np.ndarray) -> np.ndarray:
    return 1e-3 * np.maximum(np.abs(x), 0.1)


def hessian(f, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian (O(h^2))."""
    k = x.size
    h = steps(x)
    H = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4.0 * h[i] * h[j])
    return H


def jacobian(f, x: np.ndarray) -> np.ndarray:
    """Central-difference derivatives of a matrix-valued ``f``: shape (k, *f(x).shape)."""
    h = steps(x)
    out = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h[i]
        out.append((f(x + e) - f(x - e)) / (2.0 * h[i]))
    return np.array(out)


def satterthwaite_pieces(fit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What Satterthwaite's degrees of freedom need at the estimates: ``A = 2 H^-1`` (the
    asymptotic covariance of the variance parameters from the deviance's Hessian), the fixed
    effects' covariance ``V`` and its derivatives ``J`` (shape (k, p, p)) in those parameters.
    BLAS is held to one thread (many small factorisations)."""
    from threadpoolctl import threadpool_limits

    vp = VarianceParameters(fit)
    with threadpool_limits(limits=1, user_api="blas"):
        H = hessian(vp.deviance, vp.x0)
        try:
            A = 2.0 * np.linalg.inv(H)
        except np.linalg.LinAlgError:
            A = 2.0 * np.linalg.pinv(H)
        V = vp.vcov(vp.x0)
        J = jacobian(vp.vcov, vp.x0)
    return A, V, J


__all__ = ["VarianceParameters", "hessian", "jacobian", "steps", "satterthwaite_pieces"]
