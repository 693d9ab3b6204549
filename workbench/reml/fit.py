"""REML/ML fit: optimise theta, then assemble the fit record (lme4's ``mkMerMod`` step)."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..blas import blas_limits
from ..design import Design
from ..errors import NotYetSupportedError, WorkbenchError
from ..record import Fit, RanefRows, RemlState, build_fit, wald_fixed_effects
from .blocked import BlockedSystem
from .criterion import criterion_from_factor, make_criterion, make_objective
from .optimize import OptimizerWarning, column_scale, optimize_theta
from .varscale import VarianceScaleModel, fit_from_psi, variance_se

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
        matrix of the REML likelihood (one grouping factor), stored as the state's
        ``var_params`` = ``{name: {"estimate", "se"}}`` with names
        ``var[g:TERM]``, ``cov[g:T1,T2]``, ``var[Residual]``.  Defaults to "expected" when
        ``nobound`` is set.

    Returns
    -------
    Fit
        With a :class:`~workbench.record.RemlState` (theta, the factored system, the
        optimizer's :class:`~workbench.reml.optimize.OptSummary`, JSON in
        ``diagnostics["optimizer"]``; ``var_params`` with ``vc_se``).  ``converged`` is the
        optimizer's verdict; when False an :class:`~workbench.reml.optimize.OptimizerWarning`
        says why.
    """
    if blas_threads is not None:
        with blas_limits(blas_threads):
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
    scale = column_scale(st)
    if system.single or system.nr < DENSE_GRADIENT_MAX:
        # L-BFGS-B on the analytic gradient from lme4's start
        objective = make_objective(system, reml=reml)
        theta0, radius = st.theta0 * scale, 0.2
        if not system.single and system.n >= BLOCK_START_MIN_ROWS:
            theta0, _ = _start_from_blocks(design, st, reml, scale)
    else:
        objective = None
        # on the sparse route an evaluation is cheap: the start's scale is searched too
        theta0, radius = _start_from_blocks(design, st, reml, scale,
                                            crit if system.sparse_route else None)
    theta, value, opt = optimize_theta(crit, theta0, st.lower, st.diagonal, objective=objective,
                                       scale=scale, blocks=st.blocks, radius=radius,
                                       search=None if objective is not None else "BOBYQA")
    if not opt.converged:
        warnings.warn(f"the optimizer did not converge: {opt.verdict.reason}", OptimizerWarning,
                      stacklevel=2)
    return record_fit(system, theta, opt, reml=reml, level=level, label=label, nobound=nobound,
                      vc_se=vc_se, started=t0)


# Size of the dense Schur block from which the derivative-free search (NLopt's BOBYQA) is used:
# there one gradient costs about three evaluations (a potri beside the Cholesky) and L-BFGS-B
# can need many (STAR ML: 88 against COBYQA's 64 from the one-factor starts).
DENSE_GRADIENT_MAX = 400
# Rows from which a several-factor fit on the gradient also starts from each factor fitted
# alone: the one-factor fits cost a few ms, which small fits cannot spare, while on big data
# lme4's start can lead L-BFGS-B to a boundary face the probe must leave (Chem97 ML: 61
# evaluations and 43 ms from lme4's start, 11 and 28 ms from the one-factor fits; egsingle
# 35 -> 25; ScotsSec, 3,435 rows, and carrots, 1,233, were slower with them).
BLOCK_START_MIN_ROWS = 5000


def _start_from_blocks(design: Design, st, reml: bool, scale: np.ndarray, crit=None):
    """Start for several grouping factors: each factor's theta fitted alone.

    A one-factor fit has an analytic gradient and costs O(levels) per evaluation, so these
    fits are cheap next to the joint criterion; they overstate each variance a little (the
    other factors' variance is absorbed), but start the derivative-free search within a small
    trust region of the optimum, which halves its evaluations on InstEval.  The radius is on
    the scaled coordinate theta / scale.

    Each theta is a ratio to the residual sd, which a fit alone overstates when another
    factor's variance is large (STAR: the pupils' theta 1.27 alone, 1.59 jointly): with the
    joint criterion ``crit`` given, the start is ``c theta0`` for the best ``c`` of 1, 1.3, 1.6
    and the vertex of the parabola through them (four evaluations), and the trust region is
    halved (STAR: 10 fewer evaluations).
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
    radius = min(0.25 * max(0.2, float(np.mean(np.abs(diag)))) if diag.size else 0.2, 0.2)
    if crit is None:
        return theta0, radius
    cs = [1.0, 1.3, 1.6]
    vals = [crit(c * theta0) for c in cs]
    if all(np.isfinite(vals)):
        a, b, _ = np.polyfit(cs, vals, 2)
        if a > 0:
            c = float(np.clip(-b / (2.0 * a), 0.5, 3.0))
            cs.append(c)
            vals.append(crit(c * theta0))
    best = int(np.argmin(vals))
    return cs[best] * theta0, 0.5 * radius


def record_fit(system: BlockedSystem, theta: np.ndarray, opt, reml: bool = True,
               level: float = 0.95, label: str | None = None, nobound: bool = False,
               vc_se: str | None = None, started: float | None = None) -> Fit:
    """The fit record after the optimizer: the bounded fit at ``theta``, or (``nobound``) the
    variance-scale fit Fisher scoring reaches from it, with variance-scale SEs (``vc_se``).

    ``opt`` is the optimizer's record; ``started`` the ``perf_counter`` time the fit began
    (``diagnostics["seconds"]`` counts from it).
    """
    est = Estimates(system, theta, reml)
    optimizer = opt.to_dict()
    converged = opt.converged
    model = psi = var_params = None
    if nobound or vc_se is not None:
        model = VarianceScaleModel(system.design)
        lam = model.block.lam(theta)
        s2 = est.sigma**2
        psi_bounded = model.pack(s2 * lam @ lam.T, s2)
    if nobound:
        # Fisher scoring on the variance scale from the bounded optimum
        psi1, value, iters, ok = model.fisher_scoring(psi_bounded)
        stage = {"stage": "Fisher scoring (nobound)", "criterion": float(value),
                 "iterations": iters, "success": bool(ok)}
        optimizer = dict(optimizer, stages=optimizer["stages"] + [stage])
        if value < est.criterion - 1e-9 * abs(est.criterion):
            psi, converged = psi1, bool(ok)
        vc_se = vc_se or "expected"
    if vc_se is not None:
        var_params = variance_se(model, psi_bounded if psi is None else psi, vc_se)
    diagnostics = {"optimizer": optimizer, "theta": np.asarray(theta).tolist(),
                   "seconds": None if started is None else time.perf_counter() - started}
    if nobound:
        diagnostics["nobound"] = True
    if psi is not None:
        return fit_from_psi(model, psi, label=label, level=level, converged=converged,
                            diagnostics=diagnostics, optimizer=opt, var_params=var_params)
    return assemble_fit(system, theta, reml=reml, level=level, label=label, converged=converged,
                        diagnostics=diagnostics, optimizer=opt, varscale=model,
                        var_params=var_params, estimates=est)


class Estimates:
    """What a factor at theta gives: criterion, GLS fixed effects and their covariance, sigma,
    variance components and conditional modes."""

    def __init__(self, system: BlockedSystem, theta: np.ndarray, reml: bool):
        design = system.design
        st = system.structure
        f = system.factor(theta)
        self.criterion = criterion_from_factor(system, f, reml)
        self.beta, us = system.solve(f)
        _, _, r2 = system.logdets(f)
        n, p = system.n, system.p
        if design.known_sd is not None:
            self.sigma = None
            s2 = 1.0
        else:
            s2 = r2 / (n - p) if reml else r2 / n
            self.sigma = math.sqrt(s2)
        Rinv = np.linalg.inv(system.beta_precision_factor(f))
        self.vcov = s2 * (Rinv.T @ Rinv)

        self.varcorr = []
        for blk, lam in zip(st.blocks, f.lambdas):
            self.varcorr.extend(blk.varcorr_rows(s2 * (lam @ lam.T)))
        if self.sigma is not None:
            self.varcorr.append({"grp": "Residual", "var1": None, "var2": None,
                                 "vcov": float(s2), "sdcor": float(self.sigma),
                                 "sdcor_ci": None})

        parts = []
        inv_blocks = system.cond_inverse_blocks(f)
        for blk, lam, u, B in zip(st.blocks, f.lambdas, us, inv_blocks):
            b = u @ lam.T  # (L, q)
            # diag(lam B lam') per level, without forming the q x q products
            cvar = s2 * np.diagonal(lam @ B @ lam.T, axis1=1, axis2=2)
            parts.append((blk.group, blk.columns, blk.levels, b,
                          np.sqrt(np.clip(cvar, 0, None))))
        self.ranef = RanefRows(parts)
        self.singular = bool(np.any(np.asarray(theta)[st.diagonal] < SINGULAR_TOL))


def assemble_fit(system: BlockedSystem, theta: np.ndarray, reml: bool = True, level: float = 0.95,
                 label: str | None = None, *, converged: bool = True,
                 diagnostics: dict | None = None, optimizer=None, varscale=None,
                 var_params: dict | None = None, estimates: Estimates | None = None) -> Fit:
    """Everything lme4 reports about a fit at a given theta (no optimisation).

    The keyword arguments are the rest of the record (the optimizer's verdict and record,
    variance-scale results); ``estimates`` reuses a computation at this theta.
    """
    est = estimates if estimates is not None else Estimates(system, theta, reml)
    design = system.design
    beta, se, ci = wald_fixed_effects(design.fixed_names, est.beta, est.vcov, level)
    state = RemlState(vcov=est.vcov, reml=reml, theta=np.asarray(theta, dtype=float),
                      system=system, optimizer=optimizer, varscale=varscale,
                      var_params=var_params)
    return build_fit(method="reml" if reml else "ml", design=design, structure=system.structure,
                     criterion=est.criterion, beta=beta, beta_se=se, beta_ci=ci, sigma=est.sigma,
                     varcorr=est.varcorr, ranef=est.ranef, converged=converged,
                     singular=est.singular, diagnostics=diagnostics, interval="wald",
                     label=label, state=state)


__all__ = ["fit_reml", "record_fit", "assemble_fit", "Estimates", "make_criterion", "blas_limits"]
