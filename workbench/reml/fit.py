"""REML/ML fit: optimise theta, then assemble the fit record (lme4's ``mkMerMod`` step)."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from scipy.stats import norm

from ..design import Design
from ..errors import NotYetSupportedError, WorkbenchError
from ..record import Fit
from .blocked import BlockedSystem
from .criterion import criterion_from_factor, make_criterion, make_objective
from .optimize import OptimizerWarning, column_scale, optimize_theta
from .varscale import VarianceScaleModel, fit_from_psi, variance_parameters

SINGULAR_TOL = 1e-4  # lme4's isSingular tolerance on theta entries bounded at zero


def fit_reml(design: Design, reml: bool = True, level: float = 0.95, label: str | None = None,
             blas_threads: int | None = 1, nobound: bool = False, vc_se: str | None = None) -> Fit:
    """Fit a linear mixed model by REML (``reml=True``) or ML.

    Parameters
    ----------
    design : Design
    reml : bool
    level : float
        Coverage of the Wald intervals.
    label : str, optional
        Name for comparison tables.
    blas_threads : int or None
        BLAS threads while fitting (None leaves the setting alone).  The matrices here are
        small, and on a few cores threaded BLAS mostly adds contention: one thread is faster.
    nobound : bool
        Do not hold the random-effects covariance positive semidefinite (MLwiN, SAS NOBOUND):
        after the lme4-constrained fit, Fisher scoring on the variance scale continues over
        every G that keeps each group's V_j positive definite, so variances may go negative.
        REML with one grouping factor only (see :mod:`workbench.reml.varscale`).
    vc_se : {None, "expected", "observed"}
        Also compute variance-scale estimates and standard errors from that information
        matrix of the REML likelihood (one grouping factor), stored as
        ``extra["var_params"]`` = ``{name: {"estimate", "se"}}`` with names
        ``var[g:TERM]``, ``cov[g:T1,T2]``, ``var[Residual]``.  Defaults to "expected" when
        ``nobound`` is set.

    Returns
    -------
    Fit
        With ``extra["theta"]``, ``extra["system"]`` and ``extra["optimizer"]`` (the
        :class:`~workbench.reml.optimize.OptSummary`, JSON in ``diagnostics["optimizer"]``)
        kept.  ``converged`` is the optimizer's verdict; when False an
        :class:`~workbench.reml.optimize.OptimizerWarning` says why.
    """
    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=blas_threads):
            return fit_reml(design, reml, level, label, blas_threads=None, nobound=nobound,
                            vc_se=vc_se)
    if vc_se not in (None, "expected", "observed"):
        raise WorkbenchError(f"vc_se must be 'expected' or 'observed', not '{vc_se}'")
    if nobound and not reml:
        raise NotYetSupportedError("nobound fits are implemented for REML only")
    t0 = time.perf_counter()
    system = BlockedSystem(design)
    crit = make_criterion(system, reml=reml)
    st = system.structure
    objective = make_objective(system, reml=reml)
    scale = column_scale(st)
    if objective is not None:
        theta0, radius = st.theta0 * scale, 0.2
    else:
        theta0, radius = _start_from_blocks(design, st, reml, scale)
    theta, value, opt = optimize_theta(crit, theta0, st.lower, st.diagonal, objective=objective,
                                       scale=scale, blocks=st.blocks, radius=radius)
    if not opt.converged:
        warnings.warn(f"the optimizer did not converge: {opt.verdict.reason}", OptimizerWarning,
                      stacklevel=2)
    fit = assemble_fit(system, theta, reml=reml, level=level, label=label)
    fit.converged = opt.converged
    fit.diagnostics = {"optimizer": opt.to_dict(), "theta": theta.tolist(),
                       "seconds": time.perf_counter() - t0}
    fit.extra["optimizer"] = opt
    if nobound:
        fit = _continue_unbounded(fit, level, label)
        vc_se = vc_se or "expected"
    if vc_se is not None:
        fit.extra["var_params"] = variance_parameters(fit, vc_se)
    fit.diagnostics["seconds"] = time.perf_counter() - t0
    return fit


def _start_from_blocks(design: Design, st, reml: bool, scale: np.ndarray):
    """Start for several grouping factors: each factor's theta fitted alone.

    A one-factor fit has an analytic gradient and costs O(levels) per evaluation, so these
    fits are cheap next to the joint criterion; they overstate each variance a little (the
    other factors' variance is absorbed), but start the derivative-free search within a small
    trust region of the optimum, which halves its evaluations on InstEval.  The radius is on
    the scaled coordinate theta / scale.
    """
    from dataclasses import replace

    theta0 = st.theta0 * scale
    for blk in st.blocks:
        sub = replace(design, terms=tuple(t for t in design.terms if t.group == blk.group))
        subsys = BlockedSystem(sub)
        sst = subsys.structure
        sscale = column_scale(sst)
        th, _, _ = optimize_theta(make_criterion(subsys, reml), sst.theta0 * sscale, sst.lower,
                                  sst.diagonal, objective=make_objective(subsys, reml),
                                  scale=sscale, blocks=sst.blocks, polish_stage=False,
                                  check=False)
        # the sub-structure lists this block's theta entries in the same relative order
        theta0[np.sort(blk.theta_index)] = th
    diag = (theta0 / scale)[st.diagonal]
    radius = 0.25 * max(0.2, float(np.mean(np.abs(diag)))) if diag.size else 0.2
    return theta0, min(radius, 0.2)


def _continue_unbounded(fit: Fit, level: float, label: str | None) -> Fit:
    """Fisher scoring on the variance scale from the bounded optimum (see ``nobound``)."""
    model = VarianceScaleModel(fit.design)
    psi0 = model.pack(*_G_s2(fit))
    psi, value, iters, ok = model.fisher_scoring(psi0)
    stage = {"stage": "Fisher scoring (nobound)", "criterion": float(value), "iterations": iters,
             "success": bool(ok)}
    if value < fit.criterion - 1e-9 * abs(fit.criterion):
        out = fit_from_psi(model, psi, label=label, level=level)
        out.converged = bool(ok)
        out.diagnostics = dict(fit.diagnostics)
        out.extra["optimizer"] = fit.extra["optimizer"]
    else:
        out = fit
        out.extra["varscale"] = model
    out.diagnostics["optimizer"] = dict(out.diagnostics["optimizer"])
    out.diagnostics["optimizer"]["stages"] = out.diagnostics["optimizer"]["stages"] + [stage]
    out.diagnostics["nobound"] = True
    return out


def _G_s2(fit: Fit):
    system = fit.extra["system"]
    lam = system.structure.lambdas(fit.extra["theta"])[0]
    s2 = fit.sigma**2
    return s2 * lam @ lam.T, s2


def assemble_fit(system: BlockedSystem, theta: np.ndarray, reml: bool = True, level: float = 0.95,
                 label: str | None = None) -> Fit:
    """Everything lme4 reports about a fit at a given theta (no optimisation)."""
    design = system.design
    st = system.structure
    f = system.factor(theta)
    value = criterion_from_factor(system, f, reml)
    beta, us = system.solve(f)
    _, _, r2 = system.logdets(f)
    n, p = system.n, system.p
    known = design.known_sd is not None
    if known:
        sigma = None
        s2 = 1.0
    else:
        s2 = r2 / (n - p) if reml else r2 / n
        sigma = math.sqrt(s2)
    R = system.beta_precision_factor(f)
    Rinv = np.linalg.inv(R)
    vcov = s2 * (Rinv.T @ Rinv)
    se = np.sqrt(np.diag(vcov))
    z = norm.ppf(0.5 + level / 2)
    names = design.fixed_names
    beta_d = {k: float(v) for k, v in zip(names, beta)}
    se_d = {k: float(v) for k, v in zip(names, se)}
    ci_d = {k: [float(b - z * s), float(b + z * s)] for k, b, s in zip(names, beta, se)}

    varcorr = []
    for blk, lam in zip(st.blocks, f.lambdas):
        varcorr.extend(blk.varcorr_rows(s2 * (lam @ lam.T)))
    if not known:
        varcorr.append({"grp": "Residual", "var1": None, "var2": None, "vcov": float(s2),
                        "sdcor": float(sigma), "sdcor_ci": None})

    ranef = []
    inv_blocks = system.cond_inverse_blocks(f)
    for blk, lam, u, B in zip(st.blocks, f.lambdas, us, inv_blocks):
        b = u @ lam.T  # (L, q)
        # diag(lam B lam') per level, without forming the q x q products
        cvar = s2 * np.einsum("ij,ljk,ik->li", lam, B, lam, optimize=True)
        csd = np.sqrt(np.clip(cvar, 0, None))
        g = blk.group
        for k, term in enumerate(blk.columns):
            ranef.extend({"group": g, "term": term, "level": lev, "value": val, "cond_sd": sd}
                         for lev, val, sd in zip(blk.levels, b[:, k].tolist(), csd[:, k].tolist()))

    singular = bool(np.any(np.asarray(theta)[st.diagonal] < SINGULAR_TOL))
    fit = Fit(
        method="reml" if reml else "ml",
        formula=design.spec.formula,
        nobs=n,
        ngroups={blk.group: blk.nlevels for blk in st.blocks},
        criterion=value,
        loglik=-value / 2.0,
        beta=beta_d,
        beta_se=se_d,
        beta_ci=ci_d,
        sigma=sigma,
        varcorr=varcorr,
        ranef=ranef,
        converged=True,
        singular=singular,
        interval="wald",
        label=label,
        design=design,
    )
    fit.extra.update({"theta": np.asarray(theta, dtype=float), "system": system, "vcov": vcov,
                      "reml": reml})
    return fit


__all__ = ["fit_reml", "assemble_fit", "make_criterion"]
