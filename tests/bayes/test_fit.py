"""Sampling tests on tiny data (few draws, two chains, compiled models reused via module
fixtures): the record, agreement with REML, compile-once refits, exactness, known sds."""

import math

import numpy as np
import pytest

import workbench
from tests.bayes.closed_form import assert_matches, gaussian_posterior
from tests.bayes.conftest import slopes_data
from workbench import datasets
from workbench.bayes.cache import cache_stats
from workbench.bayes.draws import (posterior_frame, posterior_predictive, prior_frame,
                                   prior_predictive)
from workbench.bayes.priors import Fixed
from workbench.design import build_design
from workbench.structure import build_structure

FORMULA = "y ~ 1 + x + (1 + x | g)"
OPTS = dict(draws=500, tune=500, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def data():
    return slopes_data(groups=15, per=8)


@pytest.fixture(scope="module")
def bayes(data):
    return workbench.fit(FORMULA, data, method="bayes", seed=1, **OPTS)


@pytest.fixture(scope="module")
def reml(data):
    return workbench.fit(FORMULA, data)


def test_record_shape(bayes, reml):
    assert bayes.method == "bayes" and bayes.interval == "credible"
    assert bayes.criterion is None and bayes.loglik is None and bayes.singular is False
    assert list(bayes.beta) == list(reml.beta) == ["(Intercept)", "x"]
    for k in bayes.beta:
        lo, hi = bayes.beta_ci[k]
        assert lo < bayes.beta[k] < hi and bayes.beta_se[k] > 0
    # varcorr rows line up with REML's, plus credible intervals
    assert [(r["grp"], r["var1"], r["var2"]) for r in bayes.varcorr] == \
        [(r["grp"], r["var1"], r["var2"]) for r in reml.varcorr]
    for r in bayes.varcorr:
        lo, hi = r["sdcor_ci"]
        assert lo <= r["sdcor"] <= hi
        if r["var2"] is None:
            assert r["vcov"] >= r["sdcor"] ** 2  # E[sd^2] >= E[sd]^2
    assert bayes.sigma == bayes.varcorr[-1]["sdcor"]
    assert [(r["group"], r["term"], r["level"]) for r in bayes.ranef] == \
        [(r["group"], r["term"], r["level"]) for r in reml.ranef]
    assert all(r["lower"] < r["value"] < r["upper"] and r["cond_sd"] > 0 for r in bayes.ranef)
    d = bayes.diagnostics
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "sampling_seconds",
                "compile_seconds", "sampler", "parameterization", "priors", "warnings"):
        assert key in d
    # the default for one grouping factor: the fast path (bayes/fast.py)
    assert d["path"] == "fast" and d["parameterization"] == "marginal"
    assert d["sampler"] == "independence-mh"
    assert set(d["priors"]) == {"beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sd[g:x]",
                                "corr[g]", "sigma"}
    assert isinstance(d["warnings"], list) and all(isinstance(w, str) for w in d["warnings"])
    assert bayes.converged == (d["divergences"] == 0 and d["max_rhat"] <= 1.01)
    assert bayes.state.idata is not None and bayes.state.priors
    rec = bayes.to_dict()  # JSON-serialisable
    import json

    json.dumps(rec)


def test_posterior_near_reml(bayes, reml):
    """Well-identified data: posterior means sit near the REML estimates (within a fraction of
    the posterior sd for fixed effects; within 25% for sds)."""
    for k in reml.beta:
        assert abs(bayes.beta[k] - reml.beta[k]) < 0.5 * bayes.beta_se[k]
    assert bayes.sigma == pytest.approx(reml.sigma, rel=0.1)
    for rb, rr in zip(bayes.varcorr, reml.varcorr):
        if rr["var2"] is None:
            assert rb["sdcor"] == pytest.approx(rr["sdcor"], rel=0.25)
    b_bayes = np.array([r["value"] for r in bayes.ranef])
    b_reml = np.array([r["value"] for r in reml.ranef])
    assert np.corrcoef(b_bayes, b_reml)[0, 1] > 0.97


def test_frames_and_predictive(bayes, data):
    post = posterior_frame(bayes)
    cols = ["beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sd[g:x]",
            "cor[g:(Intercept),x]", "sigma"]
    assert list(post.columns) == ["chain", "draw"] + cols
    assert len(post) == 2 * 500
    assert post["beta[x]"].mean() == pytest.approx(bayes.beta["x"])
    pri = prior_frame(bayes, n=300, seed=1)
    assert list(pri.columns) == cols and len(pri) == 300
    assert pri["cor[g:(Intercept),x]"].between(-1, 1).all() and (pri["sd[g:x]"] > 0).all()
    assert pri.equals(prior_frame(bayes, n=300, seed=1))
    yrep = posterior_predictive(bayes, seed=0)
    assert yrep.shape == (1000, len(data))
    assert abs(yrep.mean() - data.y.mean()) < 0.2
    assert prior_predictive(bayes, n=50, seed=0).shape == (50, len(data))
    # the same draws are available on the fit itself
    assert bayes.draws().equals(post)
    assert bayes.prior_draws(n=300, seed=1).equals(pri)
    np.testing.assert_array_equal(bayes.posterior_predictive(seed=0), yrep)
    assert bayes.prior_predictive(n=50, seed=0).shape == (50, len(data))


def test_refit_new_data_without_recompiling(bayes, data):
    before = cache_stats()["compiles"]
    shifted = workbench.fit(FORMULA, data.assign(y=data.y + 3.0), method="bayes", seed=2, **OPTS)
    assert cache_stats()["compiles"] == before
    assert shifted.diagnostics["compile_seconds"] == 0.0
    # the new data were used: the intercept moved by 3, the rest stayed
    assert shifted.beta["(Intercept)"] - bayes.beta["(Intercept)"] == pytest.approx(3.0, abs=0.3)
    assert shifted.beta["x"] == pytest.approx(bayes.beta["x"], abs=0.1)


EXACT_PRIORS = {"beta": "Flat()", "sd[g:(Intercept)]": "Fixed(1)", "sd[g:x]": "Fixed(0.5)",
                "corr[g]": Fixed(0.3), "sigma": "Fixed(0.7)"}


@pytest.fixture(scope="module")
def exact(data):
    d = build_design(FORMULA, data)
    st = build_structure(d)
    cov = np.array([[1.0, 0.3 * 0.5], [0.3 * 0.5, 0.25]])
    return gaussian_posterior(d, st, [cov], sigma=0.7)


@pytest.mark.parametrize("parameterization", ["marginal", "noncentered"])
def test_exact_gaussian_posterior(data, exact, parameterization):
    """G and sigma held fixed, flat prior on beta: beta and the random effects have a Gaussian
    posterior (GLS estimate and BLUPs, closed-form covariance); the sampled posterior matches."""
    fit = workbench.fit(FORMULA, data, method="bayes", priors=EXACT_PRIORS, seed=3,
                        parameterization=parameterization, draws=1000, tune=500, chains=2,
                        progressbar=False)
    beta, beta_sd, b, b_sd = exact
    post = fit.state.idata.posterior
    assert_matches(post["beta"].values.reshape(-1, 2), beta, beta_sd, nchains=2)
    assert_matches(post["b_g"].values.reshape(2000, -1), b, b_sd, nchains=2)
    assert fit.diagnostics["priors"]["sigma"] == "Fixed(0.7)"
    assert fit.sigma == pytest.approx(0.7)
    assert not any("sigma" in w or "sd[" in w for w in fit.diagnostics["warnings"])


def test_eight_schools_known_sd_exact():
    """Meta-analysis form (known residual sds): with tau fixed and a flat prior on mu the
    posterior is the classical precision-weighted one (BDA3 section 5.4)."""
    data = datasets.load("eight_schools")
    fit = workbench.fit("y ~ 1 + (1 | school)", data, method="bayes", known_sd="sigma",
                        priors={"beta": "Flat()", "sd": "Fixed(5)"}, seed=4, draws=1500,
                        tune=500, chains=2, progressbar=False)
    assert fit.sigma is None and all(r["grp"] != "Residual" for r in fit.varcorr)
    assert "sigma" not in fit.diagnostics["priors"]
    w = 1.0 / (data.sigma.to_numpy() ** 2 + 25.0)
    mu, mu_sd = np.sum(w * data.y) / np.sum(w), math.sqrt(1.0 / np.sum(w))
    post = fit.state.idata.posterior
    assert_matches(post["beta"].values.reshape(-1, 1), [mu], [mu_sd], nchains=2)
    d = build_design("y ~ 1 + (1 | school)", data, known_sd="sigma")
    _, _, b, b_sd = gaussian_posterior(d, build_structure(d), [np.array([[25.0]])])
    assert_matches(post["b_school"].values.reshape(3000, -1), b, b_sd, nchains=2)
    assert len(fit.ranef) == 8


def test_pymc_sampler_gives_the_same_record(bayes, data):
    """PyMC's own NUTS on the noncentered form: the same record, and a posterior close to the
    default fit's (loose: few draws)."""
    fit = workbench.fit(FORMULA, data, method="bayes", sampler="pymc", parameterization="noncentered",
                        seed=5, draws=300, tune=300, chains=2, progressbar=False)
    assert fit.diagnostics["sampler"] == "pymc"
    assert fit.diagnostics["parameterization"] == "noncentered"
    assert list(fit.beta) == list(bayes.beta)
    assert [(r["grp"], r["var1"], r["var2"]) for r in fit.varcorr] == \
        [(r["grp"], r["var1"], r["var2"]) for r in bayes.varcorr]
    assert len(fit.ranef) == len(bayes.ranef)
    for k in bayes.beta:
        assert abs(fit.beta[k] - bayes.beta[k]) < 0.5 * bayes.beta_se[k]
    assert list(posterior_frame(fit).columns) == list(posterior_frame(bayes).columns)
    # compile once: a refit reuses the cached model and its NUTS step
    before = cache_stats()["compiles"]
    again = workbench.fit(FORMULA, data.assign(y=data.y - 1.0), method="bayes", sampler="pymc",
                          parameterization="noncentered", seed=6, draws=300, tune=300, chains=2,
                          progressbar=False)
    assert cache_stats()["compiles"] == before
    assert again.diagnostics["compile_seconds"] == 0.0
    assert again.beta["(Intercept)"] - fit.beta["(Intercept)"] == pytest.approx(-1.0, abs=0.3)


def test_eight_schools_published_posterior():
    """The classic eight-schools model (mu ~ N(0, 5), tau ~ HalfCauchy(5), as in PyMC's and
    ArviZ's example ``non_centered_eight``): posterior means mu ~ 4.4, tau ~ 3.6, with no
    divergences in the marginal form."""
    data = datasets.load("eight_schools")
    fit = workbench.fit("y ~ 1 + (1 | school)", data, method="bayes", known_sd="sigma",
                        priors={"beta": "Normal(0, 5)", "sd": "HalfCauchy(5)"}, seed=8,
                        draws=4000, tune=1000, chains=2, progressbar=False)
    assert fit.beta["(Intercept)"] == pytest.approx(4.4, abs=0.25)
    assert fit.beta_se["(Intercept)"] == pytest.approx(3.3, abs=0.25)
    assert fit.varcorr[0]["sdcor"] == pytest.approx(3.6, abs=0.3)
    assert fit.diagnostics["divergences"] == 0
