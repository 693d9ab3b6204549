"""Random effects with a residual correlation structure: ``nlme::lme(..., correlation=)``.

The model is y = X beta + Z b + e with b ~ N(0, sigma^2 Lam Lam') and e ~ N(0, sigma^2 R(u)),
R block diagonal by the groups of a :class:`~workbench.gls.residual.ResidualStructure`
(nlme's ``corStruct``; ``u`` its unconstrained parameters)::

    var(y) = Z G Z' + sigma^2 R(u),    G = sigma^2 Lam Lam'

When every correlation group lies within one level of every grouping factor (nlme requires
the correlation groups to be nested in the innermost random-effects grouping), whitening the
rows of each group by the Cholesky factor L_g of R_g keeps each row in its levels::

    y* = L^-1 y,  X* = L^-1 X,  Z* = L^-1 Z  (each term's columns, codes unchanged)
    var(y*) = Z* G Z*' + sigma^2 I

an ordinary linear mixed model on the whitened rows, which the REML/ML engine
(:class:`~workbench.reml.blocked.BlockedSystem`) fits; with ``|L|^2 = |R|``::

    -2 log L(theta, u) = deviance*(theta; u) + sum_g log|R_g(u)|

(deviance* the engine's profiled REML criterion or ML deviance on the whitened rows; no n x n
matrix is formed).  The conditional modes of the whitened system are the BLUPs of the original
model: b = Lam (Lam' Z*'Z* Lam + I)^-1 Lam' Z*' r* = G Z' V^-1 r by the push-through identity,
and their conditional covariance is the same expression, so the engine's ``ranef`` rows are
the model's.

Optimisation is profiled: for a given u the engine optimises theta (warm-started from the
previous u; its analytic gradient on the whitened system), and an outer search minimises the
profiled criterion f(u) over u: bounded Brent for one parameter, L-BFGS-B for several with the
envelope gradient f'(u) = d(-2 log L)/du at the inner optimum (central differences of the exact
joint criterion with theta held, free of the inner search's noise).  On the twelve nlme
reference fits this reached the criterion of a joint L-BFGS-B over (theta, u), or a lower one
(the joint search stopped at a worse boundary point on Ovary with a pdDiag slope by ML), in
less time (``benchmarks/bench_lme.py``).  The reported theta is refitted at the
final u with the engine's full verdict; ``converged`` needs that verdict and the outer one (a
small envelope gradient in u, u inside its search range).  A structure parameter the
likelihood is flat in (a ridge: e.g. a random intercept on the groups of a compound-symmetry
correlation, whose sigma^2 Rho trades with the intercept's variance) is a DataError.

The interval of a structure parameter is nlme's ``intervals()``: Wald on nlme's unconstrained
scale u, its variance the inverse curvature of the log-likelihood profiled over everything
else: var(u) = 2 C^-1 with C the curvature of the profiled -2 log L, the Schur complement
``H_uu - H_ut H_tt^-1 H_tu`` of the Hessian H of -2 log L(theta, u) (central differences of the
exact joint criterion; theta entries on their zero bound held there).  C equals the second
derivative of the profiled criterion, without its inner optimisation's noise.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace

import numpy as np

from ..design import Design
from ..errors import DataError, NotYetSupportedError
from ..record import Fit, GlsState, build_fit, wald_fixed_effects
from .corstruct import CorrelationSpec, VarianceSpec, minimise_bfgs, structure_diagnostics
from .residual import ResidualStructure
from .variance import Combined

#: the outer search's range of each unconstrained parameter (|u| = 30 is a correlation
#: within 1e-13 of +-1 on nlme's scales)
U_RANGE = 30.0
#: half-width of the one-parameter search's window (moved while the minimum is on its edge)
_WINDOW = 4.0
_EDGE = 25.0


def check_nested(design: Design, wh: ResidualStructure, form: str) -> None:
    """Each correlation group must lie within one level of every grouping factor (nlme)."""
    for t in design.terms:
        # (group, level) pairs: one per correlation group when the groups nest
        if np.unique(np.stack([wh.codes, t.codes]), axis=1).shape[1] != wh.ngroups:
            raise DataError(f"the groups of correlation {form} are not nested in the "
                            f"random-effects grouping '{t.group}': a group of the "
                            f"correlation has rows in several levels of '{t.group}' (nlme "
                            "needs the correlation groups within the innermost grouping)")


def whitened_design(design: Design, wh: ResidualStructure, u: np.ndarray) -> tuple[Design, float]:
    """The design on rows whitened by L_g^-1 within each group, and sum_g log|R_g(u)|.

    y*, X* and every random-effects term's columns Z* are whitened together; level codes,
    names and the rest of the design are kept (the offset is taken off y first).
    """
    parts = [design.X, design.y_work[:, None]] + [t.Z for t in design.terms]
    A, logdet = wh.whiten(np.hstack(parts), u)
    p = design.p
    cut = np.cumsum([p, 1] + [t.q for t in design.terms])
    terms = tuple(replace(t, Z=np.ascontiguousarray(A[:, a:b]))
                  for t, a, b in zip(design.terms, cut[1:-1], cut[2:]))
    white = replace(design, X=np.ascontiguousarray(A[:, :p]), y=np.ascontiguousarray(A[:, p]),
                    offset=None, terms=terms)
    return white, float(logdet)


class LmeProblem:
    """-2 log L(theta, u) and its profile over theta for one design and residual structure.

    Parameters
    ----------
    design : Design
        The original (not whitened) design, with at least one random-effects term.
    wh : ResidualStructure
    reml : bool
    """

    def __init__(self, design: Design, wh: ResidualStructure, reml: bool):
        from ..reml.blocked import BlockedSystem
        from ..reml.optimize import column_scale
        from ..structure import build_structure

        self.design, self.wh, self.reml = design, wh, reml
        self._system_cls = BlockedSystem
        self._cache: dict = {}
        self._thetas: dict = {}
        # theta's layout does not change with the whitening; its search scale is the original
        # columns' (constant in u)
        st = build_structure(design)
        self.lower, self.diagonal, self.blocks = st.lower, st.diagonal, st.blocks
        self.scale = column_scale(st)
        self.theta = st.theta0 * self.scale  # warm start of the next inner search
        self.evaluations = 0

    def system(self, u):
        """``(BlockedSystem on the rows whitened at u, sum_g log|R_g(u)|)``."""
        key = tuple(np.asarray(u, dtype=float).tolist())
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            white, logdet = whitened_design(self.design, self.wh, np.asarray(u, dtype=float))
            if not (np.isfinite(logdet) and np.all(np.isfinite(white.X))
                    and np.all(np.isfinite(white.y_work))):
                raise np.linalg.LinAlgError("the residual structure overflows at this u")
            self._cache[key] = (self._system_cls(white), logdet)
        return self._cache[key]

    def joint(self, theta, u) -> float:
        """-2 log L at (theta, u), sigma (and beta) profiled out; inf where not defined."""
        from ..reml.criterion import deviance_at

        try:
            system, logdet = self.system(u)
        except np.linalg.LinAlgError:
            return math.inf
        return deviance_at(system, np.asarray(theta, dtype=float), self.reml) + logdet

    def inner(self, u, check: bool = False):
        """theta minimising -2 log L at u: ``(theta, value, OptSummary)``."""
        from ..reml.criterion import make_criterion, make_objective
        from ..reml.optimize import optimize_theta

        try:
            system, logdet = self.system(u)
        except np.linalg.LinAlgError:
            return None, math.inf, None
        crit = make_criterion(system, self.reml)
        if not np.isfinite(crit(self.theta)):  # e.g. a variance function's far tail
            return None, math.inf, None
        theta, value, opt = optimize_theta(
            crit, self.theta, self.lower, self.diagonal,
            objective=make_objective(system, self.reml), scale=self.scale, blocks=self.blocks,
            polish_stage=check, check=check)
        self.evaluations += opt.evaluations
        if np.isfinite(value):
            self.theta = theta
            self._thetas[tuple(np.asarray(u, dtype=float).tolist())] = theta
        return theta, value + logdet, opt

    def inner_theta(self, u):
        """The inner optimum theta at u (from the last inner search there if any)."""
        key = tuple(np.asarray(u, dtype=float).tolist())
        if key not in self._thetas:
            self.inner(np.asarray(u, dtype=float))
        return self._thetas.get(key)

    def profiled(self, u) -> float:
        """min over theta of -2 log L at u."""
        return self.inner(np.atleast_1d(np.asarray(u, dtype=float)))[1]


def envelope_gradient(prob: LmeProblem, theta, u, h: float = 1e-5) -> np.ndarray:
    """The derivative of the profiled criterion in u at the inner optimum theta: by the
    envelope theorem, the partial derivative of -2 log L(theta, u) in u with theta held
    (central differences of the exact joint criterion, free of the inner search's noise)."""
    u = np.asarray(u, dtype=float)
    g = np.empty(u.size)
    for k in range(u.size):
        e = np.zeros(u.size)
        e[k] = h
        g[k] = (prob.joint(theta, u + e) - prob.joint(theta, u - e)) / (2 * h)
    return g


def _search_u(prob: LmeProblem) -> tuple[np.ndarray, dict]:
    """Minimise the profiled criterion over u: ``(u, record)``."""
    from scipy.optimize import minimize_scalar

    wh = prob.wh
    if wh.size == 1:
        # bounded Brent in a window around the structure's start, moved while the minimum
        # sits on its edge: over the whole range (-30, 30) the first golden-section points
        # land where a variance function overflows and the search loses the optimum
        centre, nfev, success = float(wh.start()[0]), 0, False
        for _ in range(8):
            lo, hi = max(centre - _WINDOW, -U_RANGE), min(centre + _WINDOW, U_RANGE)
            res = minimize_scalar(lambda v: prob.profiled([v]), bounds=(lo, hi),
                                  method="bounded", options={"xatol": 1e-9, "maxiter": 500})
            nfev += int(res.nfev)
            x, success = float(res.x), bool(res.success)
            on_edge = (x - lo < 1e-3 and lo > -U_RANGE) or (hi - x < 1e-3 and hi < U_RANGE)
            if not on_edge:
                break
            centre = x
        u = np.array([x])
        rec = {"method": "bounded Brent (scipy) on the criterion profiled over theta, in a "
                         f"window of +-{_WINDOW:g} around the start",
               "evaluations": nfev, "success": success and not on_edge}
    else:
        def gradient(v):
            theta = prob.inner_theta(v)
            return np.zeros_like(v) if theta is None else envelope_gradient(prob, theta, v)

        u, nfev, message = minimise_bfgs(prob.profiled, np.asarray(wh.start(), dtype=float),
                                         gradient=gradient, box=U_RANGE)
        rec = {"method": "BFGS on the criterion profiled over theta (the envelope gradient, "
                         "steps of at most 2 in u), then Newton steps",
               "evaluations": nfev, "success": message is None}
    return u, rec


def _free_theta(prob: LmeProblem, theta) -> np.ndarray:
    """Indices of theta entries not held on their zero bound."""
    phi = np.asarray(theta) / prob.scale
    return np.flatnonzero(~(prob.diagonal & (np.abs(phi) < 1e-4)))


def joint_hessian(prob: LmeProblem, theta, u, h: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Hessian of -2 log L in (free phi = theta / scale, u) by central differences.

    Returns ``(H, free)``: ``H`` over the free theta entries (scaled) then u; ``free`` their
    indices.
    """
    free = _free_theta(prob, theta)
    phi0 = np.asarray(theta, dtype=float) / prob.scale
    x0 = np.concatenate([phi0[free], np.asarray(u, dtype=float)])
    k = x0.size
    nf = free.size

    def f(x):
        phi = phi0.copy()
        phi[free] = x[:nf]
        return prob.joint(phi * prob.scale, x[nf:])

    f0 = f(x0)
    H = np.empty((k, k))
    E = np.eye(k) * h
    fp = [f(x0 + E[i]) for i in range(k)]
    fm = [f(x0 - E[i]) for i in range(k)]
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i):
            v = (f(x0 + E[i] + E[j]) - f(x0 + E[i] - E[j]) - f(x0 - E[i] + E[j])
                 + f(x0 - E[i] - E[j])) / (4 * h * h)
            H[i, j] = H[j, i] = v
    return H, free


def profile_information(prob: LmeProblem, theta, u) -> np.ndarray:
    """Curvature of the profiled -2 log L in u (a matrix): the Schur complement of the joint
    Hessian's theta block."""
    H, free = joint_hessian(prob, theta, u)
    nf = free.size
    Huu = H[nf:, nf:]
    if nf == 0:
        return Huu
    Htt, Htu = H[:nf, :nf], H[:nf, nf:]
    try:
        return Huu - Htu.T @ np.linalg.solve(Htt, Htu)
    except np.linalg.LinAlgError:
        return np.full_like(Huu, np.nan)


def structure_intervals(wh: ResidualStructure, u, info, level) -> tuple[np.ndarray, np.ndarray]:
    """nlme's Wald intervals of the natural parameters: on each parameter's interval scale
    v = ``wh.to_interval(natural)`` (the unconstrained scale u except for ``symm``'s
    correlations), var(v) = J 2 info^-1 J' with J = dv/du, v -+ z se mapped back."""
    from scipy.stats import norm

    k = wh.size
    nan = np.full(k, math.nan)
    try:
        cov = 2.0 * np.linalg.inv(info)  # info is the curvature of -2 log L
        ok = np.all(np.linalg.eigvalsh(0.5 * (info + info.T)) > 0)
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        return nan, nan
    v0 = wh.to_interval(wh.natural(u))
    if not np.allclose(v0, u, rtol=1e-12, atol=1e-12):  # another scale: the delta method
        h = 1e-6
        J = np.column_stack([(wh.to_interval(wh.natural(u + h * e))
                              - wh.to_interval(wh.natural(u - h * e))) / (2 * h)
                             for e in np.eye(k)])
        cov = J @ cov @ J.T
    se = np.sqrt(np.diag(cov))
    if not np.all(np.isfinite(se)):
        return nan, nan
    z = float(norm.ppf(0.5 + level / 2))
    lo, hi = wh.from_interval(v0 - z * se), wh.from_interval(v0 + z * se)
    return np.minimum(lo, hi), np.maximum(lo, hi)


def fit_lme(design: Design, wh: ResidualStructure, corr: CorrelationSpec | None = None,
            var: VarianceSpec | None = None, reml: bool = True, level: float = 0.95,
            label: str | None = None, blas_threads: int | None = 1) -> Fit:
    """``nlme::lme`` with a residual correlation structure (see the module docstring).

    Parameters
    ----------
    design : Design
        With at least one random-effects term; the structure's groups must be nested in
        every grouping factor.
    wh : ResidualStructure
        The residual structure, its rows aligned with the design's
        (:func:`workbench.gls.corstruct.residual_structure`).
    corr, var : CorrelationSpec, VarianceSpec
        What was asked for (the record's names and forms; at least one).
    reml : bool
    level : float
        Coverage of the Wald intervals (fixed effects and structure parameters).
    label : str, optional
    blas_threads : int or None
        BLAS threads while fitting (as :func:`workbench.reml.fit.fit_reml`).

    Returns
    -------
    Fit
        ``method`` "reml"/"ml"; fixed effects with the SEs of nlme's ``summary()``, from
        sigma^2 (X'V^-1 X)^-1 (an ML fit's times n / (n - p), nlme's ``adjustSigma``); the
        random-effects ``varcorr`` rows and the residual row, the BLUPs in ``ranef``,
        ``criterion`` -2 log L (the whitened rows' plus sum log|R_g|);
        ``diagnostics["corstruct"]`` / ``["varstruct"]`` as
        :func:`workbench.gls.corstruct.structure_diagnostics` writes them (nlme's names, with
        ``"intervals"``); ``diagnostics["optimizer"]``:
        ``method``, ``evaluations`` (of the engine's criterion, over all u), ``message`` (why
        not converged), ``inner`` (the engine's record at the final u) and ``outer`` (the
        search over u: evaluations, success, the envelope gradient); a
        :class:`~workbench.record.GlsState` with ``variance`` = (natural parameters, sigma^2)
        and ``theta``.

    Raises
    ------
    DataError
        Correlation groups not nested in a grouping factor; groups of one row; a structure
        parameter the likelihood is flat in.
    NotYetSupportedError
        Prior weights or known residual sds.
    """
    from ..reml.fit import Estimates, blas_limits
    from ..reml.optimize import OptimizerWarning

    if blas_threads is not None:
        with blas_limits(blas_threads):
            return fit_lme(design, wh, corr, var, reml, level, label, blas_threads=None)
    t0 = time.perf_counter()
    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError("a correlation structure with prior weights or known sds "
                                   "is not implemented")
    if not design.terms:
        raise ValueError("fit_lme needs a random-effects term (nlme::gls: fit_corgls)")
    form = ", ".join(part.text for part in (corr, var) if part is not None)
    kind = "+".join(part.kind for part in (corr, var) if part is not None)
    cor = wh.correlation if isinstance(wh, Combined) else wh
    if corr is not None and cor is not None and cor.tmax < 2:
        raise DataError(f"every group of {corr.text} has one row: it has nothing to correlate")
    check_nested(design, wh, form)
    prob = LmeProblem(design, wh, reml)
    u, outer = _search_u(prob)
    theta, value, opt = prob.inner(u, check=True)
    system, logdet = prob.system(u)
    info = profile_information(prob, theta, u)
    grad = envelope_gradient(prob, theta, u)
    # the outer verdict judges the point, as the engine's does (the search's flag is recorded):
    # u inside its range, a small derivative there, the likelihood not flat in u
    reasons = []
    if np.any(np.abs(u) > _EDGE):
        reasons.append("a correlation parameter is at the edge of its range")
    else:
        _check_identified(prob, u, value, form)
    if not np.all(np.abs(grad) < 2e-3):
        reasons.append(f"the criterion's derivative in the correlation parameters is "
                       f"{np.max(np.abs(grad)):.2g}, not 0")
    if not opt.converged:
        reasons.append(opt.verdict.reason)
    converged = not reasons
    if not converged:
        warnings.warn(f"the optimizer did not converge: {'; '.join(reasons)}", OptimizerWarning,
                      stacklevel=2)
    est = Estimates(system, theta, reml)
    natural = wh.natural(u)
    lower, upper = structure_intervals(wh, u, info, level)
    diagnostics = structure_diagnostics(wh, corr, var, natural, lower, upper)
    optimizer = {"method": f"theta by the engine ({opt.method}) inside {outer['method']}",
                 "evaluations": prob.evaluations, "message": "; ".join(reasons) or None,
                 "inner": opt.to_dict(), "outer": dict(outer, gradient=grad.tolist())}
    # nlme's summary scales an ML fit's fixed-effect covariance by n / (n - p) (adjustSigma)
    vcov = est.vcov if reml else est.vcov * design.n / (design.n - design.p)
    beta, se, ci = wald_fixed_effects(design.fixed_names, est.beta, vcov, level)
    s2 = est.sigma**2
    state = GlsState(vcov=vcov, estimator=kind, variance=np.concatenate([natural, [s2]]),
                     theta=np.asarray(theta, dtype=float))
    return build_fit(method="reml" if reml else "ml", design=design, structure=system.structure,
                     criterion=float(est.criterion + logdet), beta=beta, beta_se=se, beta_ci=ci,
                     sigma=est.sigma, varcorr=est.varcorr, ranef=est.ranef, converged=converged,
                     singular=est.singular, state=state, label=label,
                     diagnostics={**diagnostics, "optimizer": optimizer,
                                  "theta": np.asarray(theta).tolist(),
                                  "seconds": time.perf_counter() - t0})


def _check_identified(prob: LmeProblem, u, value: float, form: str, step: float = 0.5,
                      flat: float = 1e-5) -> None:
    """Refuse a structure parameter the criterion is flat in (on either side of the optimum).

    A genuine optimum raises -2 log L by about (step / se(u))^2 at u -+ step (1e-5 at an se
    of 150 on the unconstrained scale); a ridge (e.g. a random intercept on the groups of a
    compound-symmetry correlation: sigma^2 Rho trades with its variance) leaves it unchanged
    up to the inner optimisation's noise (below 1e-6 on Orthodont).
    """
    for k, name in enumerate(prob.wh.names):
        e = np.zeros_like(u)
        e[k] = step
        rise = min(prob.profiled(u + e), prob.profiled(u - e)) - value
        if not rise > flat:
            raise DataError(f"{name} of {form} is not identifiable beside the random effects: "
                            "the likelihood is flat in it (a random intercept on the groups of "
                            "a compound-symmetry correlation is one such case); drop the "
                            "intercept from that term or the correlation structure")


__all__ = ["fit_lme", "whitened_design", "check_nested", "LmeProblem", "profile_information",
           "envelope_gradient", "joint_hessian", "structure_intervals"]
