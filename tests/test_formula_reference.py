"""The formula language against lme4: names, offsets, weights, transformed terms, contrasts.

Reference values: ``tests/reference/formula/reference.json``, written with the data sets beside
it by ``make_reference.R`` (R 4.2 with Debian's r-cran-lme4 1.1-31).  Each case is fitted by REML
and ML and checked against lme4's criterion, fixed effects (names and values), their standard
errors, sigma, the variance components and the conditional modes with their sds.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.design import build_design

HERE = Path(__file__).parent / "reference" / "formula"
REF = json.loads((HERE / "reference.json").read_text(encoding="utf-8"))


def load(case):
    """The case's data, with R's level order (and ordered flag) for the factors that need it."""
    df = pd.read_csv(HERE / f"{case['data']}.csv", encoding="utf-8")
    for col, spec in (case.get("factors") or {}).items():
        df[col] = pd.Categorical(df[col].astype(str), categories=spec["levels"],
                                 ordered=spec["ordered"])
    return df


def options(case):
    return {"weights": case.get("weights"), "offset": case.get("offset"),
            "contrasts": case.get("contrasts")}


def fit(case, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return workbench.fit(case["formula"], load(case), method=method, **options(case))


def rel(a, b):
    return abs(a - b) / max(1.0, abs(b))


@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_fixed_effect_names_are_lme4s(name):
    case = REF["cases"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(case["formula"], load(case), **options(case))
    assert list(d.fixed_names) == case["colnames"]


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_fit_matches_lme4(name, method):
    case = REF["cases"][name]
    r = case[method]
    f = fit(case, method)
    assert f.nobs == r["nobs"]
    assert f.ngroups == r["ngroups"]
    assert abs(f.criterion - r["criterion"]) <= 1e-6 * abs(r["criterion"])
    assert list(f.beta) == list(r["beta"])
    for k, v in r["beta"].items():
        assert rel(f.beta[k], v) < 1e-5, k
        assert abs(f.beta_se[k] - r["beta_se"][k]) < 1e-5 * r["beta_se"][k], k
    assert abs(f.sigma - r["sigma"]) < 1e-5 * r["sigma"]
    ours = {(v["grp"], v["var1"], v["var2"]): v["sdcor"] for v in f.varcorr}
    assert set(ours) == {(v["grp"], v["var1"], v["var2"]) for v in r["varcorr"]}
    for v in r["varcorr"]:
        assert rel(ours[(v["grp"], v["var1"], v["var2"])], v["sdcor"]) < 1e-4, v
    re = r["ranef"]
    ours = {(b["term"], b["level"]): (b["value"], b["cond_sd"]) for b in f.ranef}
    for term, level, val, sd in zip(re["term"], re["level"], re["value"], re["cond_sd"]):
        got = ours[(term, level)]
        assert rel(got[0], val) < 1e-4 and rel(got[1], sd) < 1e-4, (term, level)


def test_offset_is_held_at_one():
    """``offset(off)``, ``offset=`` and fitting y - off without an offset give one fit."""
    case = REF["cases"]["offset_term"]
    data = load(case)
    a = workbench.fit(case["formula"], data)
    b = workbench.fit("Reaction ~ Days + (Days | Subject)", data, offset="off")
    c = workbench.fit("I(Reaction - off) ~ Days + (Days | Subject)", data)
    assert "off" not in a.beta and "offset(off)" not in a.beta
    for k in a.beta:
        assert a.beta[k] == pytest.approx(b.beta[k], rel=1e-12)
        assert a.beta[k] == pytest.approx(c.beta[k], rel=1e-12)


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("name", sorted(REF["gls_cases"]))
def test_model_without_random_effects_matches_gls(name, method):
    """``y ~ x`` by REML/ML is nlme::gls (no correlation; weights as varFixed(1/w))."""
    case = REF["gls_cases"][name]
    r = case[method]
    f = fit(case, method)
    assert f.ngroups == {} and f.ranef == []
    assert list(f.beta) == case["colnames"] == list(r["beta"])
    assert abs(f.criterion - r["criterion"]) <= 1e-10 * abs(r["criterion"])
    for k, v in r["beta"].items():
        assert rel(f.beta[k], v) < 1e-8, k
        assert abs(f.beta_se[k] - r["beta_se"][k]) < 1e-8 * r["beta_se"][k], k
    assert f.sigma == pytest.approx(r["sigma"], rel=1e-10)


def test_pooling_comparison_in_one_call():
    """Complete, no and partial pooling side by side (the same parameter names)."""
    data = load(REF["gls_cases"]["lm_no_pooling"])
    fits = [workbench.fit("Reaction ~ Days", data, label="complete"),
            workbench.fit("Reaction ~ 0 + factor(Subject) + Days", data, label="none"),
            workbench.fit("Reaction ~ Days + (1 | Subject)", data, label="partial")]
    table = workbench.compare(*fits)
    text = str(table)
    assert "beta[Days]" in text and "beta[factor(Subject)308]" in text
    assert "Linear model fit by REML" in str(fits[0])


def test_bayes_collapsed_likelihood_with_weights_and_offset_is_lme4s():
    """The Bayesian fitter's likelihood (random effects integrated out) at lme4's ML estimates
    is lme4's ML log-likelihood, with prior weights and an offset."""
    import pytensor.tensor as pt

    from workbench.bayes.marginal import loglik_graph, sufficient_stats
    from workbench.structure import build_structure

    case = REF["cases"]["weights_offset"]
    r = case["ml"]
    d = build_design(case["formula"], load(case), **options(case))
    st = build_structure(d)
    vc = {(v["grp"], v["var1"], v["var2"]): v["sdcor"] for v in r["varcorr"]}
    s0, s1 = vc[("Subject", "(Intercept)", None)], vc[("Subject", "Days", None)]
    rho = vc[("Subject", "(Intercept)", "Days")]
    G = np.array([[s0 * s0, rho * s0 * s1], [rho * s0 * s1, s1 * s1]])
    C = np.linalg.cholesky(G)
    nested = [[[pt.constant(C[a, i]) if C[a, i] != 0 else None for i in range(2)]
               for a in range(2)]]
    data = {k: pt.constant(v) for k, v in sufficient_stats(d, st).items()}
    beta = pt.constant(np.array([r["beta"][k] for k in d.fixed_names]))
    got = loglik_graph(data, beta, nested, pt.constant(r["sigma"] ** 2), [2],
                       [st.blocks[0].nlevels]).eval()
    assert -2 * got == pytest.approx(r["criterion"], rel=1e-9)


def test_simulate_holds_offset_and_weights():
    """Simulated responses centre on X beta + offset; residual sd sigma / sqrt(w)."""
    case = REF["cases"]["weights_offset"]
    f = fit(case, "reml")
    from workbench.reml.simulate_fit import fitted_parts

    parts = fitted_parts(f)
    beta = np.array([f.beta[k] for k in f.design.fixed_names])
    np.testing.assert_allclose(parts["mean"], f.design.X @ beta + f.design.offset)
    np.testing.assert_allclose(parts["noise_sd"], f.sigma / np.sqrt(f.design.weights))


_LME4_PROFILE_NAMES = {"sd_(Intercept)|Subject": "sd[Subject:(Intercept)]",
                       "cor_Days.(Intercept)|Subject": "cor[Subject:(Intercept),Days]",
                       "sd_Days|Subject": "sd[Subject:Days]", "sigma": "sigma",
                       "(Intercept)": "beta[(Intercept)]", "Days": "beta[Days]"}


@pytest.mark.parametrize("key,weights", [("profile_offset", None), ("profile_weights_offset", "w")])
def test_profile_intervals_with_offset_and_weights(key, weights):
    """Profile intervals as lme4's confint(method = "profile"); with weights, lme4 1.1-31's
    fixed-effect profiles are broken (see make_reference.R), so only the variance parameters
    are compared there."""
    data = load(REF["cases"]["offset_option"])
    f = workbench.fit("Reaction ~ Days + (Days | Subject)", data, offset="off", weights=weights)
    ours = workbench.profile_ci(f).set_index("parameter")
    ref = REF[key]
    for name, lo, hi in zip(ref["parameter"], ref["lower"], ref["upper"]):
        tidy = _LME4_PROFILE_NAMES[name]
        if weights and tidy.startswith("beta"):
            continue
        assert rel(ours.loc[tidy, "lower"], lo) < 1e-3, tidy
        assert rel(ours.loc[tidy, "upper"], hi) < 1e-3, tidy


def test_bayes_observation_density_with_weights_and_offset():
    """The non-centred PyMC model: y_i - offset_i ~ N(X beta + Z b, sigma / sqrt(w_i))."""
    from scipy import stats

    from workbench.bayes.model import build_model, make_layout, model_data
    from workbench.bayes.priors import resolve_priors
    from workbench.structure import build_structure

    case = REF["cases"]["weights_offset"]
    d = build_design("Reaction ~ Days + (1 | Subject)", load(case), weights="w", offset="off")
    st = build_structure(d)
    pri = resolve_priors(d, st, {})
    layout = make_layout(d, st, pri, "noncentered")
    model = build_model(layout, model_data(d, st, pri, layout))
    rng = np.random.default_rng(3)
    point = {"pbeta_normal": np.array([250.0, 10.0]), "psd0_halfnormal_log__": np.log([30.0]),
             "sigma_raw_log__": np.log(25.0), "z0": rng.normal(size=(18, 1))}
    got = model.compile_logp(vars=[model["y_obs"]], jacobian=False)(point)
    b = 30.0 * point["z0"][:, 0]
    mu = d.X @ point["pbeta_normal"] + d.offset + b[d.terms[0].codes]
    ref = stats.norm(mu, 25.0 / np.sqrt(d.weights)).logpdf(d.y).sum()
    assert got == pytest.approx(ref, rel=1e-10)


def test_bayes_regression_without_random_effects():
    """``y ~ x`` by Bayes is the regression y_i ~ N(X beta, sigma / sqrt(w_i)) with the same
    priors: its log density at a point, term by term."""
    from scipy import stats

    from workbench.bayes.model import build_model, make_layout, model_data
    from workbench.bayes.priors import resolve_priors
    from workbench.structure import build_structure

    case = REF["gls_cases"]["lm_weights"]
    d = build_design(case["formula"], load(case), weights="w")
    st = build_structure(d)
    pri = resolve_priors(d, st, {"beta": "Normal(0, 100)", "sigma": "HalfNormal(50)"})
    layout = make_layout(d, st, pri, "noncentered")
    model = build_model(layout, model_data(d, st, pri, layout))
    assert {v.name for v in model.value_vars} == {"pbeta_normal", "sigma_raw_log__"}
    beta, sigma = np.array([250.0, 10.0]), 45.0
    got = model.compile_logp(jacobian=False)({"pbeta_normal": beta,
                                              "sigma_raw_log__": np.log(sigma)})
    ref = stats.norm(0, 100).logpdf(beta).sum() + stats.halfnorm(scale=50).logpdf(sigma)
    ref += stats.norm(d.X @ beta, sigma / np.sqrt(d.weights)).logpdf(d.y).sum()
    assert got == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_dense_views_with_weights_and_offset(method):
    """statsmodels' GLS with V = Z G Z' + sigma^2 W^-1 on y - offset reproduces the fixed
    effects and SEs, and the likelihood figure's deviance at the estimates is the criterion."""
    from workbench.plots.likelihood import deviance
    from workbench.reml.gls import gls_fixed_effects

    case = REF["cases"]["weights_offset"]
    f = fit(case, method)
    res = gls_fixed_effects(f)
    np.testing.assert_allclose(res.params, list(f.beta.values()), rtol=1e-8)
    np.testing.assert_allclose(res.bse, list(f.beta_se.values()), rtol=1e-6)
    g = fit(REF["cases"]["weights_intercept"], method)
    sd = next(v["sdcor"] for v in g.varcorr if v["grp"] == "Subject")
    assert deviance(g, sd, g.sigma, reml=(method == "reml")) == pytest.approx(g.criterion,
                                                                              rel=1e-10)
