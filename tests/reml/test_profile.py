"""Profile-likelihood intervals against lme4's ``confint(method = "profile")`` and closed forms."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

import workbench
from tests.helpers import reference_data
from workbench import datasets
from workbench.errors import WorkbenchError
from workbench.reml.profile import profile, profile_ci, with_profile_ci

MODELS = ["dyestuff", "dyestuff2", "sleepstudy", "sleepstudy_zerocorr", "penicillin", "pastes"]
Z975 = 1.959963984540054


def tidy(lme4_name: str) -> str:
    """lme4's confint row names -> tidy names."""
    if lme4_name == "sigma":
        return "sigma"
    m = re.fullmatch(r"sd_(.+)\|(.+)", lme4_name)
    if m:
        return f"sd[{m[2]}:{m[1]}]"
    m = re.fullmatch(r"cor_(.+)\.(.+)\|(.+)", lme4_name)
    if m:  # cor_B.A|g is the correlation of A and B
        return f"cor[{m[3]}:{m[2]},{m[1]}]"
    return f"beta[{lme4_name}]"


@pytest.fixture(scope="module")
def reml_fits(lme4_reference):
    out = {}
    for name in MODELS:
        entry = lme4_reference[name]
        out[name] = workbench.fit(entry["formula"], reference_data(entry))
    return out


@pytest.fixture(scope="module")
def intervals(reml_fits):
    return {name: profile_ci(fit).set_index("parameter") for name, fit in reml_fits.items()}


@pytest.mark.parametrize("name", MODELS)
def test_profile_ci_matches_lme4(name, lme4_reference, intervals):
    ref = lme4_reference[name]["REML"]["profile_ci95"]
    ci = intervals[name]
    assert sorted(ci.index) == sorted(tidy(k) for k in ref)
    for k, (lo, hi) in ref.items():
        row = ci.loc[tidy(k)]
        for mine, theirs in ((row.lower, lo), (row.upper, hi)):
            # relative 1e-3, absolute near zero (lme4 interpolates a spline; we root-find)
            assert abs(mine - theirs) <= 1e-3 * max(abs(theirs), 0.1), (k, mine, theirs)


def test_sd_reaching_zero_gets_lower_limit_zero(intervals):
    assert intervals["dyestuff2"].loc["sd[Batch:(Intercept)]", "lower"] == 0.0
    assert intervals["pastes"].loc["sd[batch:(Intercept)]", "lower"] == 0.0
    assert intervals["dyestuff"].loc["sd[Batch:(Intercept)]", "lower"] > 0.0


def test_reml_fit_is_profiled_by_ml(reml_fits):
    """lme4 refits REML fits by ML before profiling: the ML fit gives the same intervals."""
    fit = reml_fits["dyestuff"]
    ml = workbench.fit(fit.formula, fit.design.data, method="ml")
    a = profile_ci(fit, parameters=["sigma"])
    b = profile_ci(ml, parameters=["sigma"])
    np.testing.assert_allclose(a[["lower", "upper"]], b[["lower", "upper"]], rtol=1e-7)


def test_profile_curve_shape_and_limits(reml_fits, intervals):
    fit = reml_fits["sleepstudy"]
    curve = profile(fit, "sd[Subject:Days]")
    assert list(curve.columns) == ["parameter", "value", "zeta", "deviance", "relative_likelihood"]
    np.testing.assert_allclose(curve.relative_likelihood, np.exp(-(curve.deviance - curve.deviance.min()) / 2))
    assert (curve.parameter == "sd[Subject:Days]").all()
    assert curve.zeta.min() <= -2.6 and curve.zeta.max() >= 2.6
    assert np.all(np.diff(curve.value) > 0) and np.all(np.diff(curve.zeta) > 0)
    # the estimate (zeta 0) is the ML estimate: ML refit's sd
    ml = workbench.fit(fit.formula, fit.design.data, method="ml")
    est = {r["var1"]: r["sdcor"] for r in ml.varcorr if r["grp"] == "Subject" and r["var2"] is None}
    at0 = curve.loc[curve.zeta == 0, "value"].item()
    assert at0 == pytest.approx(est["Days"], rel=1e-6)
    # deviance = ML deviance at the optimum + zeta^2
    assert curve.deviance.min() == pytest.approx(ml.criterion, rel=1e-9)
    # interpolating the curve at -+1.96 gives the interval
    lo, hi = intervals["sleepstudy"].loc["sd[Subject:Days]", ["lower", "upper"]]
    assert np.interp(-Z975, curve.zeta, curve.value) == pytest.approx(lo, rel=2e-3)
    assert np.interp(Z975, curve.zeta, curve.value) == pytest.approx(hi, rel=2e-3)


def test_fixed_effect_profile_equals_offset_refit(reml_fits):
    """Holding Days at b and re-optimising equals an ML fit of y - b*Days without Days."""
    fit = reml_fits["sleepstudy"]
    data = fit.design.data
    curve = profile(fit, "beta[Days]", zmax=1.0, dz=0.5)
    for b, dev in zip(curve.value, curve.deviance):
        d2 = data.assign(yoff=data["Reaction"] - b * data["Days"])
        off = workbench.fit("yoff ~ 1 + (1 + Days | Subject)", d2, method="ml")
        assert dev == pytest.approx(off.criterion, abs=1e-5)


def _eight_schools():
    return datasets.load("eight_schools")


def test_known_sd_profile_closed_form():
    """Eight schools: y_i ~ N(mu, tau^2 + s_i^2); the ML profile of tau and mu in closed form."""
    d = _eight_schools()
    y, s2 = d["y"].to_numpy(float), d["sigma"].to_numpy(float) ** 2

    def dev(mu, tau):
        v = tau**2 + s2
        return float(np.sum(np.log(2 * np.pi * v) + (y - mu) ** 2 / v))

    def dev_tau(tau):
        w = 1 / (tau**2 + s2)
        return dev(np.sum(w * y) / np.sum(w), tau)

    def dev_mu(mu):
        return minimize_scalar(lambda lt: dev(mu, math.exp(lt)), bounds=(-12, 5),
                               method="bounded", options={"xatol": 1e-10}).fun

    fit = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    ci = profile_ci(fit).set_index("parameter")
    base = min(dev_tau(0.0), dev_tau(1e-4))
    lo, hi = ci.loc["sd[school:(Intercept)]", ["lower", "upper"]]
    assert lo == 0.0  # ML tau-hat is 0 and the profile never reaches the cutoff below it
    assert math.sqrt(dev_tau(hi) - base) == pytest.approx(Z975, abs=1e-4)
    base_mu = min(base, dev_mu(float(fit.beta["(Intercept)"])))
    for lim, sign in zip(ci.loc["beta[(Intercept)]", ["lower", "upper"]], (-1, 1)):
        assert math.sqrt(dev_mu(lim) - base_mu) == pytest.approx(Z975, abs=1e-3)


def test_with_profile_ci_sets_intervals_on_a_copy(reml_fits, intervals):
    fit = reml_fits["sleepstudy_zerocorr"]
    out = with_profile_ci(fit)
    ci = intervals["sleepstudy_zerocorr"]
    assert out.interval == "profile" and fit.interval == "wald"
    assert out.beta_ci["Days"] == pytest.approx(list(ci.loc["beta[Days]", ["lower", "upper"]]))
    assert fit.beta_ci["Days"] != out.beta_ci["Days"]
    params = out.params().set_index("parameter")
    for name in ci.index:
        assert params.loc[name, "lower"] == pytest.approx(ci.loc[name, "lower"])
        assert params.loc[name, "upper"] == pytest.approx(ci.loc[name, "upper"])
    assert all(r["sdcor_ci"] is None for r in fit.varcorr)
    assert out.to_dict()["interval"] == "profile"


def test_bad_requests(reml_fits):
    fit = reml_fits["dyestuff"]
    with pytest.raises(WorkbenchError, match="unknown parameter 'sd\\[Nope:x\\]'"):
        profile(fit, "sd[Nope:x]")
    with pytest.raises(WorkbenchError, match="level"):
        profile_ci(fit, level=1.5)
    import dataclasses

    with pytest.raises(WorkbenchError, match="need a REML/ML fit; this fit is bayes"):
        profile_ci(dataclasses.replace(fit, method="bayes"))


def test_correlation_profile_reaching_one_gets_upper_limit_one():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), 6)
    x = np.tile(np.linspace(-1, 1, 6), 8)
    b = rng.normal(size=(8, 2)) @ np.linalg.cholesky(np.array([[1, 0.97], [0.97, 1]])).T
    d = pd.DataFrame({"y": b[g, 0] + b[g, 1] * x + 0.5 * rng.normal(size=48), "x": x, "g": g})
    fit = workbench.fit("y ~ 1 + x + (1 + x | g)", d)
    name = "cor[g:(Intercept),x]"
    lo, hi = profile_ci(fit, parameters=[name]).iloc[0][["lower", "upper"]]
    assert hi == 1.0 and -1.0 < lo < 0.95
    curve = profile(fit, name)
    assert curve.value.max() == 1.0 and curve.zeta.max() < Z975  # the bound is inside the 95% set


def test_root_finder_steps_around_infeasible_points():
    from workbench.reml.profile.shared import zeta_root

    z = lambda v: math.tanh(v) if v < 1.5 else math.inf  # noqa: E731
    assert zeta_root(z, 0.5, 0.0, 0.0, 3.0, math.inf) == pytest.approx(math.atanh(0.5), abs=1e-5)
    assert zeta_root(z, -0.5, 0.0, 0.0, -2.0, z(-2.0)) == pytest.approx(-math.atanh(0.5), abs=1e-5)
