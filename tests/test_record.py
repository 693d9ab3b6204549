"""The fit record: typed fitter state, one guard per fitter, records never changed after build."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import NotYetSupportedError, WorkbenchError
from workbench.plots import likelihood as L
from workbench.record import BayesState, RemlState, build_fit
from workbench.reml import bootstrap as B
from workbench.reml import gls, inference, profile, simulate_fit
from workbench.reml.varscale import variance_parameters
from workbench.structure import build_structure


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(10), 6)
    y = 2.0 + rng.normal(scale=0.8, size=10)[g] + rng.normal(size=60)
    return pd.DataFrame({"y": y, "x": rng.normal(size=60), "g": g})


@pytest.fixture(scope="module")
def reml_fit(data):
    return workbench.fit("y ~ 1 + (1 | g)", data, method="reml")


@pytest.fixture(scope="module")
def bayes_like(reml_fit):
    """A record with a Bayesian state, built by the one builder (no sampling needed here)."""
    d = reml_fit.design
    return build_fit(method="bayes", design=d, structure=build_structure(d), beta=reml_fit.beta,
                     beta_se=reml_fit.beta_se, beta_ci=reml_fit.beta_ci, sigma=reml_fit.sigma,
                     varcorr=reml_fit.varcorr, ranef=reml_fit.ranef, converged=True,
                     singular=False, interval="credible",
                     state=BayesState(idata=None, priors={}, structure=build_structure(d)))


ENGINE_ACCESSORS = {
    "profile intervals": lambda f: profile.profile_ci(f),
    "profiles": lambda f: profile.profile(f, "sigma"),
    "profile-interval records": lambda f: profile.with_profile_ci(f),
    "likelihood-ratio tests": lambda f: inference.lrt(f, f),
    "parameter counts": lambda f: inference.n_params(f),
    "AIC": lambda f: inference.aic(f),
    "BIC": lambda f: inference.bic(f),
    "Satterthwaite": lambda f: inference.satterthwaite(f),
    "simulations": lambda f: simulate_fit.simulate_from_fit(f, seed=1),
    "bootstrap": lambda f: B.bootstrap(f, 2, seed=1, workers=1),
    "GLS V": lambda f: gls.build_V(f),
    "GLS G": lambda f: gls.build_G(f),
    "likelihood curves": lambda f: L.deviance(f, 1.0),
    "variance-scale SEs": lambda f: variance_parameters(f),
}


@pytest.mark.parametrize("name", sorted(ENGINE_ACCESSORS))
def test_every_engine_accessor_refuses_a_bayes_fit_plainly(name, bayes_like):
    with pytest.raises(WorkbenchError, match="need a REML/ML fit; this fit is bayes"):
        ENGINE_ACCESSORS[name](bayes_like)


@pytest.mark.parametrize("call", [lambda f: f.draws(), lambda f: f.prior_draws(10),
                                  lambda f: f.posterior_predictive(), lambda f: f.prior_predictive(5)])
def test_bayes_accessors_refuse_an_engine_fit_plainly(call, reml_fit):
    with pytest.raises(WorkbenchError, match="need a Bayesian fit .*; this fit is reml"):
        call(reml_fit)


def test_a_record_without_state_is_refused_not_crashed(reml_fit):
    bare = dataclasses.replace(reml_fit, state=None)
    with pytest.raises(WorkbenchError, match="need a REML/ML fit; this fit is reml"):
        profile.profile_ci(bare)


def test_engine_fit_carries_a_typed_state(reml_fit):
    st = reml_fit.reml_state("tests")
    assert isinstance(st, RemlState) and st.reml is True
    assert st.theta.shape == (1,) and st.system.structure.ntheta == 1
    assert st.optimizer is not None and st.optimizer.converged == reml_fit.converged
    assert st.vcov.shape == (1, 1)
    assert reml_fit.diagnostics["theta"] == st.theta.tolist()
    assert set(reml_fit.to_dict()) == {
        "method", "formula", "nobs", "ngroups", "criterion", "loglik", "beta", "beta_se",
        "beta_ci", "sigma", "varcorr", "ranef", "converged", "singular", "diagnostics",
        "interval"}


def test_records_are_frozen(reml_fit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        reml_fit.converged = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        reml_fit.state.theta = None


def test_profile_copy_leaves_the_original_record_alone(reml_fit):
    before = dict(reml_fit.diagnostics)
    out = profile.with_intervals(reml_fit, pd.DataFrame({"parameter": ["sigma"], "lower": [0.5],
                                                         "upper": [1.5]}),
                                 "profile", {"interval_level": 0.9})
    assert out.diagnostics["interval_level"] == 0.9 and out.interval == "profile"
    assert reml_fit.diagnostics == before and reml_fit.interval == "wald"
    assert out.state is reml_fit.state


def test_nobound_fit_on_the_variance_scale_has_no_system_and_says_so():
    """A one-factor design whose REML optimum has a negative between-group variance."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 4)
    # within-group negative correlation: each group's rows share a centred, opposite shock
    y = rng.normal(size=48) - 0.6 * (rng.normal(size=12)[g] * np.tile([1, -1, 1, -1], 12))
    y = y - 0.8 * (pd.Series(y).groupby(g).transform("mean").to_numpy() - y.mean())
    d = pd.DataFrame({"y": y, "g": g})
    fit = workbench.fit("y ~ 1 + (1 | g)", d, method="reml", nobound=True)
    assert fit.diagnostics["nobound"] is True
    st = fit.reml_state("tests")
    assert st.var_params is not None and set(st.var_params) == {"var[g:(Intercept)]",
                                                                "var[Residual]"}
    # the optimum left lme4's space: a variance-scale record, with no theta or factored system
    assert st.system is None and st.theta is None and st.psi is not None
    assert fit.varcorr[0]["vcov"] < 0
    with pytest.raises(WorkbenchError, match="factored system"):
        profile.profile_ci(fit)


def test_an_engine_verb_on_a_fit_with_a_residual_structure_says_so():
    d = workbench.datasets.load("sleepstudy")
    fit = workbench.fit("Reaction ~ Days", d, correlation="cs(~ 1 | Subject)")
    assert fit.method == "reml"
    with pytest.raises(NotYetSupportedError, match=r"save and load: not implemented yet for a "
                                                   r"fit with a residual structure "
                                                   r"\(cs\(~ 1 \| Subject\)\)"):
        fit.save("unused.wbfit")


def test_ranef_rows_read_as_the_list_of_dicts_they_stand_for():
    """An engine fit keeps its conditional modes as arrays (no loop over the levels while
    fitting); read, they are the rows lme4's ``as.data.frame(ranef(condVar = TRUE))`` has, in
    block, column, level order, equal to the plain list, in JSON, pickled and as a frame."""
    import json
    import pickle

    rng = np.random.default_rng(12)
    g = np.repeat(np.arange(7), 5)
    x = rng.normal(size=35)
    y = 1 + x + rng.normal(size=7)[g] + rng.normal(size=7)[g] * x + rng.normal(size=35)
    fit = workbench.fit("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    rows = list(fit.ranef)
    assert len(fit.ranef) == len(rows) == 14
    assert [(r["term"], r["level"]) for r in rows] == \
        [(t, str(lev)) for t in ("(Intercept)", "x") for lev in range(7)]
    assert all(set(r) == {"group", "term", "level", "value", "cond_sd"} for r in rows)
    assert fit.ranef == rows and rows == fit.ranef and fit.ranef != rows[:-1]
    assert fit.ranef[3] == rows[3] and fit.ranef[-1] == rows[-1]
    # the modes are the solution of the system: b = Lambda u
    st = fit.reml_state("ranef", need_system=True)
    _, us = st.system.solve(st.system.factor(st.theta))
    b = us[0] @ st.system.structure.blocks[0].lam(st.theta).T
    np.testing.assert_allclose([r["value"] for r in rows], b.T.ravel(), rtol=1e-12)
    assert json.loads(fit.to_json())["ranef"] == json.loads(json.dumps(rows))
    assert pickle.loads(pickle.dumps(fit.ranef)) == rows
    pd.testing.assert_frame_equal(fit.ranef_frame(), pd.DataFrame(rows))
