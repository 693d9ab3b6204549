"""One batch of replicates: simulate, fit, and turn each fit into result rows.

This is the unit of work a Dask worker runs.  Everything it needs travels in a plain dict (the
design as JSON, the method spec, the replicate numbers, the study seed), so it runs unchanged
on a remote cluster; it returns a DataFrame and writes nothing.

Seeds: replicate ``r`` of condition ``c`` draws its data from
``SeedSequence(seed, spawn_key=(c, r))``, so the numbers depend on nothing but (seed, c, r):
not on the batch, the worker, or an interruption.  All methods see the same data set; a
Bayesian arm's sampler seed comes from ``spawn_key=(c, r, 1)``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from .. import names
from ..names import varcorr_param_name, varcorr_var_name
from ..simulate.generate import generate
from ..simulate.schema import SimDesign

COLUMNS = ["condition", "replicate", "method", "interval", "parameter", "level", "truth", "estimate",
           "se", "lower", "upper", "converged", "singular", "divergences", "fit_time", "error"]

NAN = float("nan")
_DESIGNS: dict[str, SimDesign] = {}


def replicate_rng(seed: int, condition: int, replicate: int, stream: int = 0) -> np.random.Generator:
    """The generator of one (condition, replicate): data stream 0, sampler stream 1."""
    key = (condition, replicate) if stream == 0 else (condition, replicate, stream)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def sampler_seed(seed: int, condition: int, replicate: int) -> int:
    """An integer sampler seed for a Bayesian fit of one replicate."""
    ss = np.random.SeedSequence(seed, spawn_key=(condition, replicate, 1))
    return int(ss.generate_state(1)[0])


def sd_to_var_name(name: str) -> str | None:
    """``sd[g:T]`` -> ``var[g:T]``; ``sigma`` -> ``var[Residual]``; others None."""
    return names.to_variance_scale(name) if names.kind(name) in ("sd", "sigma") else None


def _f(x) -> float:
    try:
        return float(x) if x is not None else NAN
    except (TypeError, ValueError):
        return NAN


def fit_values(fit, kind: str, level: float = 0.95,
               profile: dict | None = None) -> dict[str, tuple[float, float, float, float]]:
    """(estimate, se, lower, upper) of every parameter a fit reports, for one interval kind.

    Parameters
    ----------
    fit : Fit
    kind : {"wald_var", "wald_sd", "profile", "credible", "wald"}
        See :mod:`workbench.study.spec`.  A compound-symmetry GLS fit is read as the
        random-intercept model it equals (:func:`random_intercept_varcorr`).
    level : float
    profile : dict, optional
        ``{name: (lower, upper)}`` profile intervals (for ``kind="profile"``), replacing the
        recorded intervals of fixed effects and sd-scale parameters.

    Returns
    -------
    dict
        Keyed by tidy parameter name (``beta[..]``, ``sd[..]``, ``cor[..]``, ``sigma``,
        ``var[..]``, ``cov[..]``, ``var[Residual]``).
    """
    z = float(norm.ppf(0.5 + level / 2))
    out: dict[str, tuple[float, float, float, float]] = {}
    varcorr = random_intercept_varcorr(fit) or fit.varcorr
    for k, est in fit.beta.items():
        lo, hi = (fit.beta_ci.get(k) or [NAN, NAN])[:2]
        out[names.beta(k)] = (_f(est), _f(fit.beta_se.get(k)), _f(lo), _f(hi))
    if kind == "profile" and profile:
        for name, (lo, hi) in profile.items():
            if name in out:
                out[name] = out[name][:2] + (_f(lo), _f(hi))
    var_params = getattr(fit.state, "var_params", None) or {}
    recorded_var = {}
    for r in varcorr:
        name = varcorr_param_name(r)
        ci = r.get("sdcor_ci") or [NAN, NAN]
        if kind == "profile" and profile and name in profile:
            ci = profile[name]
        out[name] = (_f(r.get("sdcor")), _f(r.get("sdcor_se")), _f(ci[0]), _f(ci[1]))
        recorded_var[varcorr_var_name(r)] = _f(r.get("vcov"))
    # variance scale
    for vname, vest in recorded_var.items():
        vp = var_params.get(vname) or {}
        est = _f(vp.get("estimate", vest))
        se = _f(vp.get("se"))
        out[vname] = (est, se, NAN, NAN)
    for name in list(var_params):
        if name not in out:
            vp = var_params[name]
            out[name] = (_f(vp.get("estimate")), _f(vp.get("se")), NAN, NAN)
    # intervals per kind
    for name in list(out):
        if names.kind(name) == "beta":
            continue
        if kind == "wald":  # fixed effects only
            out[name] = out[name][:2] + (NAN, NAN)
            continue
        est, se, lo, hi = out[name]
        vname = sd_to_var_name(name)
        if names.kind(name) in ("var", "cov"):
            if kind == "wald_var":
                out[name] = (est, se, est - z * se, est + z * se)
            else:
                sdn = names.to_sd_scale(name) if names.kind(name) == "var" else None
                if sdn and sdn in out:
                    _, _, slo, shi = _sd_interval(out, sdn, kind, z, var_params)
                    lo2 = max(slo, 0.0) ** 2 if math.isfinite(slo) else NAN
                    hi2 = max(shi, 0.0) ** 2 if math.isfinite(shi) else NAN
                    out[name] = (est, se, lo2, hi2)
        elif vname is not None:
            out[name] = _sd_interval(out, name, kind, z, var_params)
        elif names.kind(name) == "cor" and kind in ("wald_var", "wald_sd"):
            out[name] = (est, se, NAN, NAN)
    return out


def random_intercept_varcorr(fit) -> list[dict] | None:
    """The random-intercept ``varcorr`` rows a compound-symmetry GLS fit implies, or None.

    nlme's ``gls(correlation = corCompSymm(form = ~ 1 | g))`` has var(e_g) = s2 ((1 - Rho) I +
    Rho J), the random-intercept model's V_g with var[g] = Rho s2 and sigma^2 = (1 - Rho) s2 (see
    :mod:`workbench.study.spec`); a negative Rho gives a negative var[g], kept, and sd 0.
    """
    from ..gls.corstruct import parse_correlation

    cs = (fit.diagnostics or {}).get("corstruct")
    if not isinstance(cs, dict) or cs.get("structure") != "cs" or fit.sigma is None:
        return None
    rho, s2 = float(cs["Rho"]), float(fit.sigma) ** 2
    va, ve = rho * s2, (1.0 - rho) * s2
    group = parse_correlation(cs["form"]).group
    return [{"grp": group, "var1": "(Intercept)", "var2": None, "vcov": va,
             "sdcor": math.sqrt(max(va, 0.0))},
            {"grp": names.RESIDUAL, "var1": None, "var2": None, "vcov": ve,
             "sdcor": math.sqrt(ve)}]


def _sd_interval(out, name, kind, z, var_params):
    """An sd-scale row (sd[..] or sigma) for one interval kind."""
    est, se, lo, hi = out[name]
    vname = sd_to_var_name(name)
    vp = var_params.get(vname) or {}
    vest, vse = _f(vp.get("estimate")), _f(vp.get("se"))
    if kind in ("wald_var", "wald_sd"):
        if not math.isfinite(se) and math.isfinite(vse) and est > 0:
            se = vse / (2.0 * est)  # delta method
        if kind == "wald_sd":
            return (est, se, est - z * se, est + z * se)
        if math.isfinite(vest) and math.isfinite(vse):
            vlo, vhi = vest - z * vse, vest + z * vse
            return (est, se, math.sqrt(max(vlo, 0.0)), math.sqrt(max(vhi, 0.0)))
        return (est, se, NAN, NAN)
    return (est, se, lo, hi)


def profile_intervals(fit, parameters: list[str], level: float) -> dict:
    """Profile-likelihood intervals of the evaluated parameters that a profile can give
    (fixed effects, sds, correlations, sigma; variances use the squared sd limits)."""
    from ..reml.profile import profile_ci

    want = set()
    for p in parameters:
        if names.kind(p) == "var":
            p = names.to_sd_scale(p)
        if names.kind(p) in ("beta", "sd", "cor", "sigma"):
            want.add(p)
    have = {names.beta(k) for k in fit.beta} | {varcorr_param_name(r) for r in fit.varcorr}
    asked = [p for p in have if p in want]
    if not asked:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = profile_ci(fit, level=level, parameters=asked)
    except Exception:  # a profile that cannot be traced leaves the intervals missing
        return {n: (NAN, NAN) for n in asked}
    return {r.parameter: (float(r.lower), float(r.upper)) for r in table.itertuples()}


def fit_rows(fit, truth: dict, parameters: list[str], kinds: list[str], level: float,
             base: dict) -> list[dict]:
    """Result rows of one fit: one per (interval kind, parameter)."""
    rows = []
    divergences = _f((fit.diagnostics or {}).get("divergences"))
    prof = profile_intervals(fit, parameters, level) if "profile" in kinds else None
    for kind in kinds:
        vals = fit_values(fit, kind, level, prof)
        for p in parameters:
            est, se, lo, hi = vals.get(p, (NAN, NAN, NAN, NAN))
            rows.append({**base, "interval": kind, "parameter": p, "level": None,
                         "truth": truth.get(p, NAN),
                         "estimate": est, "se": se, "lower": lo, "upper": hi,
                         "converged": bool(fit.converged), "singular": bool(fit.singular),
                         "divergences": divergences, "error": None})
    return rows


def effect_rows(fit, effects: dict, groups: dict, kinds: list[str], level: float,
                base: dict) -> list[dict]:
    """Rows ``b[GROUP:TERM]`` per level: BLUP (or posterior mean) against the drawn effect.

    Parameters
    ----------
    fit : Fit
    effects : dict
        From :func:`workbench.simulate.generate` with ``effects=True``, re-keyed by the fitted
        group name: ``{group: (labels, terms, array (levels, terms))}``.
    """
    z = float(norm.ppf(0.5 + level / 2))
    truth = {}
    for group, (labels, terms, b) in effects.items():
        for k, term in enumerate(terms):
            for lab, v in zip(labels, b[:, k]):
                truth[(group, term, lab)] = float(v)
    rows = []
    divergences = _f((fit.diagnostics or {}).get("divergences"))
    for r in fit.ranef:
        key = (r["group"], r["term"], str(r["level"]))
        if key not in truth:
            continue
        est, sd = _f(r.get("value")), _f(r.get("cond_sd"))
        lo, hi = _f(r.get("lower")), _f(r.get("upper"))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = est - z * sd, est + z * sd
        for kind in kinds:
            rows.append({**base, "interval": kind, "parameter": names.effect(key[0], key[1]),
                         "level": key[2], "truth": truth[key], "estimate": est, "se": sd,
                         "lower": lo, "upper": hi, "converged": bool(fit.converged),
                         "singular": bool(fit.singular), "divergences": divergences,
                         "error": None})
    return rows


def _arm_formula(formula: str, options: dict) -> str:
    """The formula an arm fits: with a residual ``correlation`` (nlme's GLS), its fixed part."""
    if "correlation" not in options:
        return formula
    from ..formula import parse_formula

    spec = parse_formula(formula)
    return f"{spec.response} ~ {spec.fixed}"


def _design(design_json: dict) -> SimDesign:
    import json

    key = json.dumps(design_json, sort_keys=True)
    if key not in _DESIGNS:
        _DESIGNS[key] = SimDesign.model_validate(design_json)
    return _DESIGNS[key]


@dataclass(frozen=True)
class Task:
    """One unit of work: one condition x one method x a batch of replicates.

    Built by :func:`workbench.study.run.make_task`; plain data (JSON-like fields), so it pickles
    to Dask workers.

    Attributes
    ----------
    condition : int
        Condition id.
    design : dict
        The condition's :class:`SimDesign` as JSON.
    truth : dict
        True parameter values by name.
    method : str
        The arm's label.
    spec : dict
        The arm's :class:`~workbench.study.spec.MethodSpec` as JSON.
    replicates : tuple of int
    seed : int
        The study's seed (each replicate's streams derive from it).
    parameters : tuple of str
        Parameters evaluated.
    level : float
        Interval coverage.
    group_effects : bool
        Also evaluate the group effects against the drawn ones.
    groups : dict
        ``{design factor: fitted group name}``.
    sbc : dict or None
        For ``truth = "prior"``: ``{"thin_to": L, "truth_priors": dict or None}``; such a task
        is run by :func:`workbench.study.sbc.sbc_batch` (see :func:`workbench.study.run.run_task`).
    """

    condition: int
    design: dict
    truth: dict
    method: str
    spec: dict
    replicates: tuple[int, ...]
    seed: int
    parameters: tuple[str, ...]
    level: float
    group_effects: bool = False
    groups: dict = field(default_factory=dict)
    sbc: dict | None = None


def run_batch(task: Task) -> pd.DataFrame:
    """Simulate and fit the replicates of one task.

    Parameters
    ----------
    task : Task

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`; a fit that fails gives rows with NaN estimates and the error.
    """
    from ..api import fit as wb_fit
    from ..errors import SpecError, WorkbenchError

    design = _design(task.design)
    spec = task.spec
    known = design.residual.known_sd.column if design.residual.known_sd is not None else None
    rows: list[dict] = []
    want_effects = task.group_effects
    groups = task.groups
    for rep in task.replicates:
        drawn = None
        if want_effects:
            data, raw = generate(design, replicate_rng(task.seed, task.condition, rep), True)
            drawn = {groups.get(g, g): (labels, design.random[g].terms, b)
                     for g, (labels, b) in raw.items()}
        else:
            data = generate(design, replicate_rng(task.seed, task.condition, rep))
        options = dict(spec.get("options") or {})
        if spec["method"] == "bayes":
            options.setdefault("seed", sampler_seed(task.seed, task.condition, rep))
            options.setdefault("progressbar", False)
            options.setdefault("cores", 1)  # one process per Dask worker already
        base = {"condition": task.condition, "replicate": rep, "method": task.method}
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = wb_fit(_arm_formula(design.formula, options), data, method=spec["method"],
                           known_sd=known, label=task.method, **options)
        except SpecError:
            raise  # a bad option or prior: the study is misconfigured, not this data set
        except (WorkbenchError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            msg = " ".join(str(exc).split())[:300] or type(exc).__name__
            for kind in spec["intervals"]:
                for p in task.parameters:
                    rows.append({**base, "interval": kind, "parameter": p, "level": None,
                                 "truth": task.truth.get(p, NAN), "estimate": NAN, "se": NAN,
                                 "lower": NAN, "upper": NAN, "converged": False, "singular": False,
                                 "divergences": NAN, "fit_time": time.perf_counter() - t0,
                                 "error": msg})
            continue
        dt = time.perf_counter() - t0
        new = fit_rows(f, task.truth, task.parameters, spec["intervals"], task.level, base)
        if drawn:
            new += effect_rows(f, drawn, groups, spec["intervals"], task.level, base)
        for r in new:
            r["fit_time"] = dt
        rows.extend(new)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"condition": "int64", "replicate": "int64", "converged": "bool",
                         "singular": "bool", "error": "object",
                         "level": "object"})
