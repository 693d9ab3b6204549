"""The profiles of a fit and the public functions: curves, interval tables, fits with them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from ... import names as pnames
from ...record import Fit
from .fixed import BetaProfiler
from .shared import Profiler, ProfileError, ml_fit, single_threaded_blas, warn_new_min
from .variance import SigmaScale, VarianceProfiler


class _Profiles:
    """All profilers of one fit (built on its ML refit)."""

    def __init__(self, fit: Fit):
        mfit = ml_fit(fit)
        self.mfit = mfit
        state = mfit.reml_state("profiles", need_system=True, error=ProfileError)
        system = state.system
        theta = np.asarray(state.theta, dtype=float)
        self.ss = SigmaScale(system)
        self.base = float(mfit.criterion)
        self.s_hat = self.ss.from_theta(theta, mfit.sigma)
        check = self.ss.deviance(self.s_hat)
        if abs(check - self.base) > 1e-6 * max(1.0, abs(self.base)):
            raise ProfileError(f"internal error: the profile deviance {check} does not match the ML fit "
                               f"{self.base}; please report this model")
        self.names = [pnames.beta(k) for k in mfit.beta] + list(self.ss.names)
        self._system, self._theta = system, theta

    def profiler(self, parameter: str) -> Profiler:
        if parameter in self.ss.names:
            k = self.ss.names.index(parameter)
            return VarianceProfiler(self.ss, k, self.s_hat, self.base, self.mfit.nobs)
        name = pnames.beta_name(parameter)
        if name is not None and name in self.mfit.beta:
            j = list(self.mfit.beta).index(name)
            return BetaProfiler(self._system, j, name, self.mfit.beta[name],
                                 self.mfit.beta_se[name], self._theta, self.base)
        raise ProfileError(
            f"unknown parameter '{parameter}'; this fit has: {', '.join(self.names)}"
        )


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
    warn_new_min(p)
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
            warn_new_min(p)
    return pd.DataFrame(rows, columns=["parameter", "lower", "upper"])


def with_intervals(fit: Fit, table: pd.DataFrame, kind: str, diagnostics: dict | None = None) -> Fit:
    """A copy of ``fit`` whose ``beta_ci`` and ``varcorr`` ``sdcor_ci`` come from ``table``.

    Parameters
    ----------
    fit : Fit
    table : DataFrame
        Columns ``parameter``, ``lower``, ``upper`` (tidy names).
    kind : str
        The new ``interval`` label (``"profile"``, ``"bootstrap"``).
    diagnostics : dict, optional
        Entries added to a copy of the fit's diagnostics (how the intervals were made).

    Returns
    -------
    Fit
        Parameters missing from ``table`` keep no interval (NaN for fixed effects, None for
        variance components), so no Wald interval is mislabelled.
    """
    ci = {r.parameter: [float(r.lower), float(r.upper)] for r in table.itertuples()}
    beta_ci = {k: ci.get(pnames.beta(k), [math.nan, math.nan]) for k in fit.beta}
    varcorr = []
    for row in fit.varcorr:
        new = dict(row)
        new["sdcor_ci"] = ci.get(pnames.varcorr_param_name(row))
        varcorr.append(new)
    return dataclasses.replace(fit, beta_ci=beta_ci, varcorr=varcorr, interval=kind,
                               diagnostics={**fit.diagnostics, **(diagnostics or {})})


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
    return with_intervals(fit, profile_ci(fit, level), "profile", {"interval_level": level})


__all__ = ["profile", "profile_ci", "with_profile_ci", "with_intervals"]
