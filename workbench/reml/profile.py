"""Profile-likelihood intervals: lme4's ``profile()`` and ``confint(method = "profile")``.

lme4 profiles a fit on the ML deviance (a REML fit is refitted by ML first, as lme4's
``devfun2`` does), over the *sigma-scale* parameters: each random-effects term's standard
deviations and correlations, the residual sigma, and the fixed effects.  For one parameter
held at a value ``v`` the deviance is minimised over all the others; the signed square root

    zeta(v) = sign(v - v_hat) * sqrt(dev(v) - dev_hat)

is close to a standard normal quantile, and the 95% interval is where
``zeta = -+ qnorm(0.975)``.  lme4 interpolates a spline through a grid of profile points;
here each limit is found by root finding on ``zeta`` itself (the exact solution the spline
approximates).  A standard deviation whose profile reaches 0 before ``zeta`` reaches the cutoff
gets 0 as its lower limit (as lme4 reports for Dyestuff2 and Pastes' batch); a correlation whose
profile reaches +-1 first gets +-1.

Fixed effects are profiled without refitting anything row-wise: given theta, the penalised
residual sum of squares is a quadratic in beta, ``r2(beta) = r2_min + ||R_X'(beta - beta_hat)||^2``,
so holding beta_k at ``b`` and minimising over the others adds ``(b - beta_hat_k)^2 / V_kk``
with ``V = (R_X R_X')^-1``; sigma is then profiled out and theta re-optimised.

Public functions: :func:`profile` (the curve, for figures), :func:`profile_ci` (the interval
table) and :func:`with_profile_ci` (a copy of a fit carrying profile intervals).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..record import Fit, _base_group

LOG2PI = math.log(2.0 * math.pi)
# Deviance reported for sigma-scale values that are no covariance matrix (correlations that do
# not fit together): large but finite, so that line searches back off instead of failing.
INFEASIBLE = 1e30


def single_threaded_blas():
    """Context limiting BLAS to one thread (threadpoolctl, when installed; else a no-op).

    The profile's many small factorisations run several times slower when BLAS threads
    compete for 2 cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class ProfileError(WorkbenchError):
    """A profile that cannot be computed (unknown parameter, not a REML/ML fit)."""


# ---------------------------------------------------------------------------- ML refit
def ml_fit(fit: Fit) -> Fit:
    """The ML fit of the same model (``fit`` itself when it already is one).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit from :func:`workbench.fit`.

    Returns
    -------
    Fit
    """
    if fit.method not in ("reml", "ml") or "system" not in fit.extra:
        raise ProfileError(
            f"profiles need a REML or ML fit with its engine state; got method '{fit.method}'"
        )
    if fit.method == "ml":
        return fit
    from .fit import fit_reml

    return fit_reml(fit.design, reml=False)


# ---------------------------------------------------------------------------- parameters
def _psd_chol(R: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a correlation matrix that may be singular; None if indefinite."""
    q = R.shape[0]
    L = np.zeros_like(R)
    for j in range(q):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10:
            return None
        d = math.sqrt(max(d, 0.0))
        L[j, j] = d
        for i in range(j + 1, q):
            if d > 0:
                L[i, j] = (R[i, j] - L[i, :j] @ L[j, :j]) / d
            else:
                if abs(R[i, j] - L[i, :j] @ L[j, :j]) > 1e-8:
                    return None
                L[i, j] = 0.0
    return L


class SigmaScale:
    """The sigma-scale parameters of a model (lme4's ``.sig01``, ..., ``.sigma``).

    Per random-effects term: its standard deviations, then its correlations (upper triangle,
    row by row), in the order of the fit's ``varcorr`` rows; then ``sigma`` unless residual
    sds are known.  Names are the tidy ones (``sd[g:x]``, ``cor[g:x,z]``, ``sigma``).

    Parameters
    ----------
    system : BlockedSystem
    """

    def __init__(self, system):
        self.system = system
        st = system.structure
        self.structure = st
        self.known = system.design.known_sd is not None
        names, kinds, terms = [], [], []
        for b, blk in enumerate(st.blocks):
            for label, sl in blk.terms:
                g = _base_group(label)
                cols = blk.columns[sl]
                sd_idx = []
                for c in cols:
                    sd_idx.append(len(names))
                    names.append(f"sd[{g}:{c}]")
                    kinds.append("sd")
                cor_idx = {}
                for i in range(len(cols)):
                    for j in range(i + 1, len(cols)):
                        cor_idx[(i, j)] = len(names)
                        names.append(f"cor[{g}:{cols[i]},{cols[j]}]")
                        kinds.append("cor")
                terms.append((b, sl, np.asarray(sd_idx), cor_idx))
        if not self.known:
            names.append("sigma")
            kinds.append("sigma")
        self.names = names
        self.kinds = kinds
        self.terms = terms
        self.size = len(names)

    def sigma_of(self, s: np.ndarray) -> float:
        return 1.0 if self.known else float(s[-1])

    def to_theta(self, s: np.ndarray) -> np.ndarray | None:
        """theta for sigma-scale values ``s`` (None for an indefinite correlation matrix)."""
        sigma = self.sigma_of(s)
        lams = [np.zeros((blk.q, blk.q)) for blk in self.structure.blocks]
        for b, sl, sd_idx, cor_idx in self.terms:
            q = sd_idx.size
            R = np.eye(q)
            for (i, j), k in cor_idx.items():
                R[i, j] = R[j, i] = s[k]
            L = _psd_chol(R) if q > 1 else np.ones((1, 1))
            if L is None:
                return None
            lams[b][sl, sl] = (s[sd_idx] / sigma)[:, None] * L
        theta = np.empty(self.structure.ntheta)
        for blk, lam in zip(self.structure.blocks, lams):
            rows, cols = zip(*blk.positions)
            theta[blk.theta_index] = lam[list(rows), list(cols)]
        return theta

    def from_theta(self, theta: np.ndarray, sigma: float | None) -> np.ndarray:
        """Sigma-scale values at ``theta`` and residual sd ``sigma`` (ignored if known sds)."""
        sig = 1.0 if self.known else float(sigma)
        s = np.zeros(self.size)
        lams = self.structure.lambdas(theta)
        for b, sl, sd_idx, cor_idx in self.terms:
            lam = lams[b][sl, sl]
            G = lam @ lam.T
            sds = np.sqrt(np.clip(np.diag(G), 0.0, None))
            s[sd_idx] = sig * sds
            for (i, j), k in cor_idx.items():
                den = sds[i] * sds[j]
                s[k] = G[i, j] / den if den > 0 else 0.0
        if not self.known:
            s[-1] = sig
        return s

    def deviance(self, s: np.ndarray) -> float:
        """ML deviance (-2 log-likelihood) at sigma-scale values ``s``, beta profiled out."""
        theta = self.to_theta(s)
        if theta is None:
            return INFEASIBLE
        sigma = self.sigma_of(s)
        if sigma <= 0:
            return INFEASIBLE
        system = self.system
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return math.inf
        ldL2, _, r2 = system.logdets(f)
        n = system.n
        if self.known:
            val = ldL2 + r2 + n * LOG2PI + 2.0 * np.log(system.design.known_sd).sum()
        else:
            s2 = sigma * sigma
            val = ldL2 + r2 / s2 + n * (LOG2PI + math.log(s2))
        val -= system.design.log_weights  # prior weights, as the criterion
        return float(val) if np.isfinite(val) else math.inf


# ---------------------------------------------------------------------------- one profile
def _lbfgsb(fun, x0, lower, upper):
    from scipy.optimize import Bounds, minimize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(fun, np.clip(x0, lower, upper), method="L-BFGS-B",
                       bounds=Bounds(lower, upper),
                       options={"ftol": 1e-11, "gtol": 1e-7, "maxiter": 1000, "maxls": 40})
    return np.asarray(res.x, dtype=float), float(res.fun)


def _minimize(fun, x0, lower, upper, zero_flags, boundary_tol: float = 1e-3):
    """Bounded minimisation of ``fun`` from a warm start (variables on a unit scale).

    L-BFGS-B first.  Entries bounded at zero that end near it get two checks, because along a
    profile the criterion can have a local minimum on the boundary and another inside: a scan
    of interior values of each such entry (restarting from the best one if it is lower), and
    the search with them pinned at exactly zero.  The lowest point is kept.
    """
    x0 = np.asarray(x0, dtype=float)
    if x0.size == 0:
        return x0, float(fun(x0))
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x, val = _lbfgsb(fun, x0, lower, upper)
    near = np.flatnonzero(zero_flags & (x < boundary_tol))
    if near.size == 0:
        return x, val
    best_x, best_v = x, val
    for i in near:
        for t in _SCAN:
            xt = best_x.copy()
            xt[i] = t
            vt = float(fun(xt))
            if vt < best_v:
                best_x, best_v = xt, vt
    if best_v < val:
        x, val = _lbfgsb(fun, best_x, lower, upper)
        near = np.flatnonzero(zero_flags & (x < boundary_tol))
    if near.size:
        lo, hi = lower.copy(), upper.copy()
        lo[near] = hi[near] = 0.0
        x2 = x.copy()
        x2[near] = 0.0
        if near.size < x.size:
            x2, val2 = _lbfgsb(fun, x2, lo, hi)
        else:
            val2 = float(fun(x2))
        if val2 <= val:
            x, val = x2, val2
    return x, val


# Interior values tried for an entry that ends on its zero bound (unit-scale variables).
_SCAN = (0.01, 0.03, 0.1, 0.3, 1.0)


class _Profiler:
    """The profile of one parameter: ``dev(v)`` minimised over the others, memoised."""

    lo = -math.inf
    hi = math.inf

    def __init__(self, name, estimate, base):
        self.name = name
        self.estimate = float(estimate)
        self.base = float(base)
        self.cache: dict[float, tuple[float, np.ndarray]] = {}
        self.new_min = None

    # subclasses: _start() -> x at the estimate; _dev(v, x0) -> (dev, x)
    def deviance(self, v: float) -> float:
        v = float(v)
        if v in self.cache:
            return self.cache[v][0]
        if self.cache:
            near = min(self.cache, key=lambda u: abs(u - v))
            x0 = self.cache[near][1]
        else:
            x0 = self._start()
        dev, x = self._dev(v, x0)
        self.cache[v] = (dev, x)
        return dev

    def zeta(self, v: float) -> float:
        dev = self.deviance(v)
        if not dev < 0.1 * INFEASIBLE:
            return math.copysign(math.inf, v - self.estimate)
        d = dev - self.base
        if d < -1e-6 * max(1.0, abs(self.base)):
            self.new_min = min(self.new_min or math.inf, self.base + d)
        return math.copysign(math.sqrt(max(d, 0.0)), v - self.estimate) if v != self.estimate else 0.0

    def walk(self, direction: int, zmax: float, dz: float, max_points: int = 80):
        """Profile points from the estimate outwards until |zeta| >= zmax or a bound.

        Returns
        -------
        points : list of (value, zeta)
        at_bound : bool
            True when the walk stopped on the parameter's bound before reaching ``zmax``.
        """
        v, z = self.estimate, 0.0
        pts = [(v, z)]
        bound = self.lo if direction < 0 else self.hi
        if v == bound:
            return pts, True
        h = self.h0
        for _ in range(max_points):
            vn = v + direction * h
            hit = (vn <= self.lo) if direction < 0 else (vn >= self.hi)
            if hit:
                vn = bound
            zn = self.zeta(vn)
            pts.append((vn, zn))
            if abs(zn) >= zmax:
                return pts, False
            if hit:
                return pts, True
            slope = abs(zn - z) / abs(vn - v)
            h_new = dz / slope if slope > 0 else 4.0 * h
            h = min(max(h_new, 0.5 * h), 4.0 * h)
            v, z = vn, zn
        return pts, False

    def limit(self, direction: int, cutoff: float, max_steps: int = 60) -> float:
        """The value where zeta = direction * cutoff (or the bound the profile reaches first).

        Secant steps from the estimate (zeta is close to linear), overshooting a little so
        that the target is bracketed, then false position (Illinois) inside the bracket.
        """
        target = direction * cutoff
        bound = self.lo if direction < 0 else self.hi
        v0, z0 = self.estimate, 0.0
        if v0 == bound:
            return float(bound)
        h = self.h0
        v1 = v0 + direction * h
        if (v1 - bound) * direction >= 0:
            v1 = bound
        z1 = self.zeta(v1)
        steps = 0
        while (z1 - target) * direction < 0:
            if v1 == bound:
                return float(bound)
            steps += 1
            if steps > max_steps:
                return math.nan
            dist = abs(v1 - v0)
            slope = (z1 - z0) / (v1 - v0)
            if slope * direction > 0:
                step = 1.03 * abs((target - z1) / slope)
                step = min(max(step, 0.02 * dist), 10.0 * dist)
            else:  # flat or turning: widen
                step = 2.0 * dist
            vn = v1 + direction * step
            if (vn - bound) * direction >= 0:
                vn = bound
            v0, z0, v1, z1 = v1, z1, vn, self.zeta(vn)
        return _root(self.zeta, target, v0, z0, v1, z1)


def _root(zeta, target, a, za, b, zb, ztol: float = 1e-6, max_iter: int = 60) -> float:
    """Solve zeta(v) = target in a bracket [a, b] by the Illinois false-position method.

    Stops when zeta is within ``ztol`` of the target (1e-6 on the zeta scale moves a limit by
    about 1e-6 standard errors) or the bracket is negligible.
    """
    fa, fb = za - target, zb - target
    if fb == 0:
        return float(b)
    c = b
    for _ in range(max_iter):
        if np.isfinite(fa) and np.isfinite(fb):
            c = b - fb * (b - a) / (fb - fa)
        else:  # an infeasible end (deviance inf): bisect
            c = 0.5 * (a + b)
        fc = zeta(c) - target
        if not np.isfinite(fc):
            b, fb = c, fc
            continue
        if abs(fc) < ztol or abs(b - a) < 1e-12 * max(abs(a), abs(b), 1e-12):
            return float(c)
        if fc * fb < 0:
            a, fa = b, fb
        else:
            fa *= 0.5
        b, fb = c, fc
    return float(c)


class _VarianceProfiler(_Profiler):
    def __init__(self, ss: SigmaScale, k: int, s_hat: np.ndarray, base: float, nobs: int):
        super().__init__(ss.names[k], s_hat[k], base)
        self.ss, self.k, self.s_hat = ss, k, s_hat
        kinds = ss.kinds
        self.free = np.array([i for i in range(ss.size) if i != k], dtype=int)
        sig_hat = ss.sigma_of(s_hat)
        self.scale = np.array([sig_hat if kinds[i] == "sd" else 1.0 for i in self.free])
        self.lower = np.array([0.0 if kinds[i] == "sd" else -1.0 if kinds[i] == "cor" else -math.inf
                               for i in self.free])
        self.upper = np.array([1.0 if kinds[i] == "cor" else math.inf for i in self.free])
        self.zero_flags = np.array([kinds[i] == "sd" for i in self.free], dtype=bool)
        self.is_sigma = np.array([kinds[i] == "sigma" for i in self.free], dtype=bool)
        kind = kinds[k]
        if kind == "sd":
            self.lo = 0.0
            self.h0 = 0.2 * s_hat[k] if s_hat[k] > 0 else 0.05 * sig_hat
        elif kind == "cor":
            self.lo, self.hi = -1.0, 1.0
            self.h0 = 0.1
        else:
            self.lo = 0.0
            self.h0 = s_hat[k] / math.sqrt(2.0 * nobs)
        self.sig_hat = sig_hat

    def _to_s(self, v, x):
        s = self.s_hat.copy()
        s[self.k] = v
        vals = x * self.scale
        vals[self.is_sigma] = self.sig_hat * np.exp(x[self.is_sigma])
        s[self.free] = vals
        return s

    def _start(self):
        x = self.s_hat[self.free] / self.scale
        x[self.is_sigma] = np.log(self.s_hat[self.free][self.is_sigma] / self.sig_hat)
        return x

    def _dev(self, v, x0):
        fun = lambda x: self.ss.deviance(self._to_s(v, x))  # noqa: E731
        x0 = np.clip(x0, self.lower, self.upper)
        cors = np.array([self.ss.kinds[i] == "cor" for i in self.free], dtype=bool)
        for _ in range(40):  # correlations that no longer fit with v: shrink them towards 0
            if fun(x0) < 0.1 * INFEASIBLE or not cors.any():
                break
            x0 = np.where(cors, 0.7 * x0, x0)
        x, dev = _minimize(fun, x0, self.lower, self.upper, self.zero_flags)
        return dev, x


class _BetaProfiler(_Profiler):
    def __init__(self, system, j: int, name: str, estimate: float, se: float, theta_hat, base):
        super().__init__(f"beta[{name}]", estimate, base)
        self.system, self.j, self.theta_hat = system, j, np.asarray(theta_hat, dtype=float)
        self.h0 = se
        st = system.structure
        self.lower, self.diag = st.lower, st.diagonal
        self.known = system.design.known_sd is not None

    def _start(self):
        return self.theta_hat.copy()

    def _crit(self, theta, b):
        system = self.system
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return math.inf
        ldL2, _, r2 = system.logdets(f)
        beta, _ = system.solve(f)
        R = system.beta_precision_factor(f)
        Rinv = np.linalg.inv(R)
        vjj = float(Rinv[:, self.j] @ Rinv[:, self.j])
        r2b = r2 + (b - beta[self.j]) ** 2 / vjj
        n = system.n
        if self.known:
            val = ldL2 + r2b + n * LOG2PI + 2.0 * np.log(system.design.known_sd).sum()
        else:
            val = ldL2 + n * (1.0 + math.log(2.0 * math.pi * r2b / n))
        val -= system.design.log_weights  # prior weights, as the criterion
        return float(val) if np.isfinite(val) else math.inf

    def _dev(self, v, x0):
        x, dev = _minimize(lambda th: self._crit(th, v), np.maximum(x0, self.lower),
                           self.lower, None, self.diag)
        return dev, x


class _Profiles:
    """All profilers of one fit (built on its ML refit)."""

    def __init__(self, fit: Fit):
        mfit = ml_fit(fit)
        self.mfit = mfit
        system = mfit.extra["system"]
        theta = np.asarray(mfit.extra["theta"], dtype=float)
        self.ss = SigmaScale(system)
        self.base = float(mfit.criterion)
        self.s_hat = self.ss.from_theta(theta, mfit.sigma)
        check = self.ss.deviance(self.s_hat)
        if abs(check - self.base) > 1e-6 * max(1.0, abs(self.base)):
            raise AssertionError(f"profile deviance {check} does not match the ML fit {self.base}")
        self.names = [f"beta[{k}]" for k in mfit.beta] + list(self.ss.names)
        self._system, self._theta = system, theta

    def profiler(self, parameter: str) -> _Profiler:
        if parameter in self.ss.names:
            k = self.ss.names.index(parameter)
            return _VarianceProfiler(self.ss, k, self.s_hat, self.base, self.mfit.nobs)
        if parameter.startswith("beta[") and parameter[5:-1] in self.mfit.beta:
            name = parameter[5:-1]
            j = list(self.mfit.beta).index(name)
            return _BetaProfiler(self._system, j, name, self.mfit.beta[name],
                                 self.mfit.beta_se[name], self._theta, self.base)
        raise ProfileError(
            f"unknown parameter '{parameter}'; this fit has: {', '.join(self.names)}"
        )


def _warn_new_min(p: _Profiler):
    if p.new_min is not None:
        warnings.warn(
            f"profiling {p.name} found a deviance {p.new_min:.6f} below the fit's "
            f"{p.base:.6f}: the fit had not reached its optimum",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------- public API
def profile(fit: Fit, parameter: str, zmax: float = 2.6, dz: float = 0.2) -> pd.DataFrame:
    """The profile of one parameter, as lme4's ``profile()`` computes it.

    Parameters
    ----------
    fit : Fit
        A REML or ML fit (a REML fit is profiled on its ML refit, as lme4 does).
    parameter : str
        Tidy name: ``beta[NAME]``, ``sd[GROUP:TERM]``, ``cor[GROUP:T1,T2]`` or ``sigma``.
    zmax : float
        Walk each way until ``|zeta|`` reaches this (default 2.6, about lme4's
        ``alphamax = 0.01``) or the parameter's bound.
    dz : float
        Target spacing of successive points on the zeta scale.

    Returns
    -------
    DataFrame
        Columns ``parameter``, ``value``, ``zeta`` (signed square root of the deviance
        increase), ``deviance`` (ML deviance with the others re-optimised) and
        ``relative_likelihood`` (profile likelihood over its maximum, ``exp(-zeta^2 / 2)``),
        sorted by value.  The estimate (zeta 0) is one of the rows.
    """
    with single_threaded_blas():
        profs = _Profiles(fit)
        p = profs.profiler(parameter)
        rows = []
        for direction in (-1, 1):
            pts, _ = p.walk(direction, zmax, dz)
            rows.extend(pts if direction < 0 else pts[1:])
    _warn_new_min(p)
    rows = sorted(r for r in rows if math.isfinite(r[1]))  # drop infeasible points
    df = pd.DataFrame(rows, columns=["value", "zeta"])
    df["deviance"] = profs.base + df["zeta"] ** 2
    df["relative_likelihood"] = np.exp(-0.5 * df["zeta"] ** 2)
    df.insert(0, "parameter", parameter)
    return df


def profile_ci(fit: Fit, level: float = 0.95, parameters: list[str] | None = None) -> pd.DataFrame:
    """Profile-likelihood confidence intervals (lme4's ``confint(method = "profile")``).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit; profiled on the ML deviance (REML fits are refitted by ML, as lme4
        does).
    level : float
        Coverage (default 0.95: limits at ``zeta = -+ qnorm(0.975)``).
    parameters : list of str, optional
        Tidy names to profile (default: every fixed effect, sd, correlation and sigma).

    Returns
    -------
    DataFrame
        Columns ``parameter``, ``lower``, ``upper``.  A standard deviation whose profile
        reaches 0 first has lower limit 0; a correlation reaching +-1 has that limit.
    """
    if not 0 < level < 1:
        raise ProfileError(f"level must be between 0 and 1, got {level}")
    from scipy.stats import norm

    cutoff = float(norm.ppf(0.5 + level / 2.0))
    with single_threaded_blas():
        profs = _Profiles(fit)
        names = profs.names if parameters is None else list(parameters)
        rows = []
        for name in names:
            p = profs.profiler(name)
            rows.append((name, p.limit(-1, cutoff), p.limit(1, cutoff)))
            _warn_new_min(p)
    return pd.DataFrame(rows, columns=["parameter", "lower", "upper"])


def with_intervals(fit: Fit, table: pd.DataFrame, kind: str) -> Fit:
    """A copy of ``fit`` whose ``beta_ci`` and ``varcorr`` ``sdcor_ci`` come from ``table``.

    Parameters
    ----------
    fit : Fit
    table : DataFrame
        Columns ``parameter``, ``lower``, ``upper`` (tidy names).
    kind : str
        The new ``interval`` label (``"profile"``, ``"bootstrap"``).

    Returns
    -------
    Fit
        Parameters missing from ``table`` keep no interval (NaN for fixed effects, None for
        variance components), so no Wald interval is mislabelled.
    """
    from ..record import varcorr_param_name

    ci = {r.parameter: [float(r.lower), float(r.upper)] for r in table.itertuples()}
    beta_ci = {k: ci.get(f"beta[{k}]", [math.nan, math.nan]) for k in fit.beta}
    varcorr = []
    for row in fit.varcorr:
        new = dict(row)
        new["sdcor_ci"] = ci.get(varcorr_param_name(row))
        varcorr.append(new)
    diagnostics = dict(fit.diagnostics)
    return dataclasses.replace(fit, beta_ci=beta_ci, varcorr=varcorr, interval=kind,
                               diagnostics=diagnostics, extra=dict(fit.extra))


def with_profile_ci(fit: Fit, level: float = 0.95) -> Fit:
    """A copy of ``fit`` carrying profile-likelihood intervals (``interval="profile"``).

    As in lme4, a REML fit keeps its REML estimates while its intervals come from the ML
    profile (so an interval is not centred on the REML estimate).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit.
    level : float

    Returns
    -------
    Fit
    """
    out = with_intervals(fit, profile_ci(fit, level), "profile")
    out.diagnostics["interval_level"] = level
    return out


__all__ = ["profile", "profile_ci", "with_profile_ci", "with_intervals", "SigmaScale", "ml_fit",
           "ProfileError"]
