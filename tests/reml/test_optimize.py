"""The optimizer on its hard cases, against lme4's fits.

Reference values: ``data/hard_cases_lme4.json`` (lme4 default, nloptwrap with tight tolerances,
and bobyqa with ``rhoend = 1e-12``), made with the data by ``data/make_hard_cases.R``; lme4's own
fits differ on these cases, so the bar is the lowest of the three.  The slope-correlation case
is from ``../shared/cases/README.md`` (copied to ``data/``).  Every case here failed on the
optimizer before the scaled coordinate and the boundary faces: a criterion far above lme4's,
reported as converged.
"""

import json
import math
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
import workbench.reml.fit as reml_fit
from tests.helpers import reference_data as load_reference_data
from workbench.design import build_design
from workbench.reml.blocked import BlockedSystem
from workbench.reml.criterion import make_criterion, make_objective
from workbench.reml.optimize import (OptimizerWarning, OptSummary, ScaledProblem, Stage,
                                     column_scale, optimize_theta, verdict)

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "hard_cases_lme4.json").read_text())
SLOPE_CORR_LME4 = 1134.90527907  # ../shared/cases/README.md, lme4 1.1-31 tight


def _best(name: str) -> float:
    return min(REF[name][k]["criterion"] for k in ("default", "tight", "bobyqa"))


def _at_or_below(value: float, ref: float) -> None:
    assert value <= ref + 1e-9 * abs(ref), f"criterion {value} above lme4's {ref}"
    assert abs(value - ref) < 1e-6 * abs(ref)


def _spruce() -> pd.DataFrame:
    return pd.read_csv(DATA / "spruce.csv", dtype={"Tree": str, "plot": str})


def _system(formula, data, reml=True):
    system = BlockedSystem(build_design(formula, data))
    return system, make_criterion(system, reml), make_objective(system, reml)


def test_slope_correlation_at_minus_one():
    data = pd.read_csv(DATA / "slope_corr_boundary.csv")
    fit = workbench.fit("y ~ 1 + x1 + (1 + x1 | g)", data)
    _at_or_below(fit.criterion, SLOPE_CORR_LME4)
    np.testing.assert_allclose(fit.state.theta, [0.03210734, -0.15701990, 0.0], atol=1e-5)
    cor = [r["sdcor"] for r in fit.varcorr if r["var2"] is not None]
    assert cor == [pytest.approx(-1.0, abs=1e-9)]
    assert fit.converged and fit.singular


@pytest.mark.parametrize("analytic", [True, False])
def test_leaves_the_intercept_face_through_the_column_sign(analytic):
    """From the point where the old search stopped (intercept sd 0, correlation undefined),
    the same covariance with the slope column's sign flipped leads to the -1 face."""
    data = pd.read_csv(DATA / "slope_corr_boundary.csv")
    system, crit, obj = _system("y ~ 1 + x1 + (1 + x1 | g)", data)
    st = system.structure
    stuck = np.array([0.0, 0.15481227, 0.0])
    theta, value, summary = optimize_theta(crit, stuck, st.lower, st.diagonal,
                                           objective=obj if analytic else None,
                                           blocks=st.blocks)
    _at_or_below(value, SLOPE_CORR_LME4)
    assert summary.converged
    assert any(s.stage.startswith("column sign flip") and s.improved for s in summary.stages)


def test_verdict_rejects_the_old_stopping_point():
    data = pd.read_csv(DATA / "slope_corr_boundary.csv")
    system, crit, obj = _system("y ~ 1 + x1 + (1 + x1 | g)", data)
    st = system.structure
    prob = ScaledProblem(crit, obj, st.lower, np.full(st.ntheta, np.inf), st.diagonal,
                         column_scale(st), st.blocks)
    stuck = prob.phi(np.array([0.0, 0.15481227, 0.0]))
    v = verdict(prob, stuck)
    assert not v.converged
    assert "gradient" in v.reason


@pytest.mark.parametrize("name,method", [("spruce", "reml"), ("spruce_ml", "ml")])
def test_spruce_growth_curve_unscaled_days(name, method):
    fit = workbench.fit("logSize ~ days + plot + (days | Tree)", _spruce(), method=method)
    _at_or_below(fit.criterion, _best(name))
    ref = REF[name]["bobyqa"]
    for k, v in ref["beta"].items():
        assert abs(fit.beta[k] - v) < 1e-3 * ref["se"][k]
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    assert fit.converged


def test_sleepstudy_days_times_1000_against_lme4():
    data = load_reference_data("sleepstudy.csv").assign(D=lambda d: d.Days * 1000)
    fit = workbench.fit("Reaction ~ D + (D | Subject)", data)
    _at_or_below(fit.criterion, _best("sleepstudy_days1000"))
    assert fit.converged


@pytest.mark.parametrize("c", [1e-3, 1e-2, 0.1, 10.0, 100.0, 1e3])
def test_sleepstudy_any_covariate_scale_is_the_same_model(lme4_reference, c):
    ref = lme4_reference["sleepstudy"]["REML"]
    data = load_reference_data("sleepstudy.csv").assign(D=lambda d: d.Days * c)
    fit = workbench.fit("Reaction ~ D + (D | Subject)", data)
    # REML's log|X'V^-1 X| shifts by 2 log c; the rest of the model is unchanged
    assert fit.criterion - 2 * math.log(c) == pytest.approx(ref["deviance"], rel=1e-9)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-6)
    for ours, theirs in (("(Intercept)", "(Intercept)"), ("D", "Days")):
        t = fit.beta[ours] / fit.beta_se[ours]
        assert t == pytest.approx(ref["beta"][theirs] / ref["beta_se"][theirs], rel=1e-6)
    sd = {(r["var1"], r["var2"]): r["sdcor"] for r in fit.varcorr}
    rsd = {(r["var1"], r["var2"]): r["sdcor"] for r in ref["varcorr"]}
    assert sd[("D", None)] * c == pytest.approx(rsd[("Days", None)], rel=1e-5)
    assert sd[("(Intercept)", "D")] == pytest.approx(rsd[("(Intercept)", "Days")], abs=1e-5)
    ours = {(r["term"], r["level"]): r["value"] for r in fit.ranef}
    for r in ref["ranef"]:
        term = "D" if r["term"] == "Days" else r["term"]
        scaled = ours[(term, r["level"])] * (c if term == "D" else 1.0)
        assert scaled == pytest.approx(r["value"], rel=1e-4, abs=1e-4 * 24)
    assert fit.converged


@pytest.mark.parametrize("c,shift", [(1.0, 1000.0), (1000.0, 1e5)])
def test_sleepstudy_uncentred_covariate_is_the_same_model(lme4_reference, c, shift):
    """Days in the thousands (as the growth curves' days in the hundreds): a shift changes the
    intercept's meaning, not the likelihood."""
    ref = lme4_reference["sleepstudy"]["REML"]
    data = load_reference_data("sleepstudy.csv").assign(D=lambda d: d.Days * c + shift)
    fit = workbench.fit("Reaction ~ D + (D | Subject)", data)
    # the uncentred cross-products cost a few digits of the criterion itself
    assert fit.criterion - 2 * math.log(c) == pytest.approx(ref["deviance"], rel=1e-8)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-6)
    assert fit.beta["D"] * c == pytest.approx(ref["beta"]["Days"], rel=1e-6)
    assert fit.converged


@pytest.mark.parametrize("c", [1e-3, 1.0, 1e3])
def test_rank_deficient_three_by_three_block(c):
    """Covariates in the hundreds and thousands (times c); the optimum is a rank-2 covariance
    of three random effects, all three sds non-zero."""
    data = pd.read_csv(DATA / "rank2_q3.csv")
    data = data.assign(x1=data.x1 * c, x2=data.x2 * c)
    fit = workbench.fit("y ~ x1 + x2 + (1 + x1 + x2 | g)", data)
    _at_or_below(fit.criterion - 4 * math.log(c), _best("rank2_q3"))
    theta = fit.state.theta
    assert theta[5] == 0.0
    sds = [r["sdcor"] for r in fit.varcorr if r["grp"] == "g" and r["var2"] is None]
    ref_sds = REF["rank2_q3"]["bobyqa"]["sdcor"][:3]
    np.testing.assert_allclose(np.array(sds) * [1, c, c], ref_sds, rtol=1e-3)
    assert fit.converged


@pytest.mark.parametrize("c", [1e-3, 1.0, 1e3])
def test_crossed_factors_with_a_slope_on_thousands(c):
    """Two grouping factors, covariate in 1000..5000 (times c)."""
    data = pd.read_csv(DATA / "crossed_thousands.csv")
    fit = workbench.fit("y ~ x + (1 + x | g) + (1 | h)", data.assign(x=data.x * c))
    _at_or_below(fit.criterion - 2 * math.log(c), _best("crossed_thousands"))
    ref = REF["crossed_thousands"]["bobyqa"]
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    t = fit.beta["x"] / fit.beta_se["x"]
    assert t == pytest.approx(ref["beta"]["x"] / ref["se"]["x"], rel=1e-5)
    assert fit.converged


def test_forced_early_stop_is_not_converged():
    data = load_reference_data("sleepstudy.csv")
    system, crit, obj = _system("Reaction ~ Days + (Days | Subject)", data)
    st = system.structure
    scale = column_scale(st)
    for objective in (obj, None):
        _, _, summary = optimize_theta(crit, st.theta0 * scale, st.lower, st.diagonal,
                                       objective=objective, scale=scale, blocks=st.blocks,
                                       maxiter=2)
        assert not summary.converged
        assert "gradient" in summary.verdict.reason
        assert summary.to_dict()["converged"] is False


def test_fit_warns_and_reports_when_not_converged(monkeypatch):
    monkeypatch.setattr(reml_fit, "optimize_theta", partial(optimize_theta, maxiter=2))
    data = load_reference_data("sleepstudy.csv")
    with pytest.warns(OptimizerWarning, match="did not converge: the gradient"):
        fit = workbench.fit("Reaction ~ Days + (Days | Subject)", data)
    assert not fit.converged
    assert not fit.diagnostics["optimizer"]["converged"]


def test_record_is_typed_and_keeps_the_json_keys():
    data = load_reference_data("sleepstudy.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizerWarning)
        fit = workbench.fit("Reaction ~ Days + (Days | Subject)", data)
    summary = fit.state.optimizer
    assert isinstance(summary, OptSummary)
    assert all(isinstance(s, Stage) for s in summary.stages)
    d = fit.diagnostics["optimizer"]
    for key in ("method", "evaluations", "converged", "message", "stages", "verdict", "scale"):
        assert key in d
    json.dumps(d)
    assert d["evaluations"] == summary.evaluations >= sum(s.evaluations for s in summary.stages)


def test_a_search_on_gradient_noise_stops_and_is_judged_at_its_point():
    """A gradient with errors of 1e-3 that change from point to point (as rounding makes them
    near some optima) keeps L-BFGS-B's line search stepping on points no better than the best:
    the search stops after a few such evaluations, and the verdict judges that point."""
    from workbench.reml.optimize import STALL_EVALUATIONS, local_search

    centre = np.array([0.3, -0.2, 0.5])

    def objective(theta):
        d = theta - centre
        return float(d @ d), 2.0 * d + 1e-3 * np.sin(1e7 * theta)  # deterministic noise

    crit = lambda theta: objective(theta)[0]  # noqa: E731
    lower = np.array([0.0, -np.inf, 0.0])
    prob = ScaledProblem(crit, objective, lower, np.full(3, np.inf),
                         np.array([True, False, True]), np.ones(3))
    stage = local_search(prob, np.array([1.0, 0.0, 1.0]))
    assert stage.message.startswith(f"stopped: {STALL_EVALUATIONS} evaluations")
    assert stage.evaluations < 40
    np.testing.assert_allclose(prob.best_x, centre, atol=2e-3)
    v = verdict(prob, prob.best_x)
    assert v.converged and v.max_gradient < 2e-3


def test_a_response_fitted_to_a_part_in_a_million_is_a_fit():
    """y = 1000 + 2 x + 1e-6 noise, random intercepts with no variance: sigma is about 1e-6
    and right, not a collapse (once every evaluation was infinite and the optimizer failed
    with a TypeError).  lme4 1.1-31 on the same numbers (written with 17 digits):
    ``lmer(y ~ x + (1 | g), REML = TRUE)``: sigma 8.99115918351753e-07, REML criterion
    -4940.7148856193 (singular); the exact criterion at theta = 0 is -4940.71488548862."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=200)
    df = pd.DataFrame({"y": 1e3 + 2 * x + 1e-6 * rng.normal(size=200), "x": x, "g": g})
    fit = workbench.fit("y ~ x + (1 | g)", df)
    assert fit.converged and fit.singular
    assert fit.sigma == pytest.approx(8.99115918351753e-07, rel=1e-6)
    assert fit.criterion == pytest.approx(-4940.71488548862, rel=1e-9)


def test_a_criterion_infinite_everywhere_is_a_plain_error():
    from workbench.errors import NumericalError

    def objective(theta):
        return float("inf"), np.zeros(len(theta))

    with pytest.raises(NumericalError, match="not finite at any theta"):
        optimize_theta(lambda t: float("inf"), np.ones(2), np.zeros(2), np.ones(2, dtype=bool),
                       objective=objective)


@pytest.mark.parametrize("formula,data_name", [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
])
def test_the_direct_lbfgsb_driver_takes_scipys_path(formula, data_name, monkeypatch):
    """L-BFGS-B driven without ``minimize``'s wrappers evaluates the same points, in the same
    order, as ``minimize(method="L-BFGS-B")``: the same compiled step, only cheaper to call."""
    import workbench.reml.optimize as opt
    from workbench import datasets

    design = build_design(formula, datasets.load(data_name))
    system = BlockedSystem(design)
    st = system.structure
    scale = column_scale(st)
    paths = []
    for direct in (True, False):
        monkeypatch.setattr(opt, "DRIVE_SETULB", direct)
        seen = []
        objective = make_objective(system)

        def recording(theta, objective=objective, seen=seen):
            seen.append(np.array(theta))
            return objective(theta)

        optimize_theta(make_criterion(system), st.theta0 * scale, st.lower, st.diagonal,
                       objective=recording, scale=scale, blocks=st.blocks)
        paths.append(np.array(seen))
    assert paths[0].shape == paths[1].shape
    np.testing.assert_array_equal(paths[0], paths[1])
