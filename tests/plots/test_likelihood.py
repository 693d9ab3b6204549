"""The exact grid curves against lme4's reference numbers and independent dense formulas."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import workbench
from workbench.plots import likelihood as L
from workbench.plots.priors import PRIORS, exact_posteriors, tau_grid

from workbench import datasets


@pytest.fixture(scope="module")
def dyestuff():
    return datasets.load("Dyestuff")


def test_deviance_matches_lme4(lme4_reference, dyestuff):
    ref = lme4_reference["dyestuff"]
    f = workbench.fit(ref["formula"], dyestuff)
    for method, reml in (("REML", True), ("ML", False)):
        r = ref[method]
        sd = r["varcorr"][0]["sdcor"]
        assert L.deviance(f, sd, r["sigma"], reml=reml) == pytest.approx(r["deviance"], rel=1e-9)


def test_ml_profile_interval_matches_lme4(lme4_reference, dyestuff):
    """lme4's confint(profile) of the Batch sd profiles the ML deviance."""
    ref = lme4_reference["dyestuff"]
    ml = workbench.fit(ref["formula"], dyestuff, method="ml")
    lo, hi = L.profile_interval(ml, reml=False)
    want = ref["REML"]["profile_ci95"]["sd_(Intercept)|Batch"]
    assert lo == pytest.approx(want[0], rel=2e-4)
    assert hi == pytest.approx(want[1], rel=2e-4)


def _dense_log_post(y, X, codes, sa, s):
    """log restricted likelihood from a dense V (flat priors on beta, sa, sigma)."""
    V = sa**2 * (codes[:, None] == codes[None, :]) + s**2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    b = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ b
    return -0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r)


def test_marginal_posterior_matches_dense_quadrature():
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(6), [2, 3, 4, 5, 3, 6])
    x = rng.normal(size=codes.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, 6)[codes] + rng.normal(0, 0.5, codes.size)
    d = pd.DataFrame({"y": y, "x": x, "g": codes})
    f = workbench.fit("y ~ x + (1 | g)", d)
    sd = np.linspace(0.0, 3.0, 61)
    sg = np.linspace(0.2, 1.5, 81)
    got = L.marginal_posterior(f, sd, sigma_values=sg)
    X = np.column_stack([np.ones_like(x), x])
    lp = np.array([[_dense_log_post(y, X, codes, a, s) for s in sg] for a in sd])
    dens = np.trapezoid(np.exp(lp - lp.max()), sg, axis=1)
    dens /= np.trapezoid(dens, sd)
    np.testing.assert_allclose(got, dens, rtol=1e-7, atol=1e-10)


def test_eight_schools_posterior_is_bda_formula():
    """BDA3 eq. 5.21: p(tau | y) = p(tau) V_mu^1/2 prod (s_j^2+tau^2)^-1/2 exp(-(y_j-mu)^2/...)."""
    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    grid = tau_grid()
    post = exact_posteriors(f, {"uniform": PRIORS["uniform(0, 100)"]}, grid)["uniform"]
    y, s = d["y"].to_numpy(float), d["sigma"].to_numpy(float)
    w = 1 / (s[None, :] ** 2 + grid[:, None] ** 2)
    mu = (w * y).sum(1) / w.sum(1)
    logp = (-0.5 * np.log(w.sum(1)) + 0.5 * np.log(w).sum(1)
            - 0.5 * (w * (y - mu[:, None]) ** 2).sum(1)
            + stats.uniform.logpdf(grid, 0, 100))
    bda = np.exp(logp - logp.max())
    bda /= np.trapezoid(bda, grid)
    np.testing.assert_allclose(post, bda, rtol=1e-8, atol=1e-12)
    # the REML estimate is the boundary and the flat-prior posterior mode sits there too
    assert f.varcorr[0]["sdcor"] < 1e-6 and grid[np.argmax(post)] < 1e-3


@pytest.mark.slow
def test_mcmc_posterior_of_tau_matches_exact_grid():
    """The sampler's posterior mean of tau (eight schools, half-Cauchy(25)) = the exact grid's."""
    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    grid = np.linspace(0.0, 200.0, 4001)
    post = exact_posteriors(f, {"hc": PRIORS["half-Cauchy(0, 25)"]}, grid)["hc"]
    exact_mean = np.trapezoid(grid * post, grid)
    b = workbench.fit("y ~ 1 + (1 | school)", d, method="bayes", known_sd="sigma",
                      priors={"beta": "Flat()", "sd": "HalfCauchy(25)"}, draws=2000, tune=1000,
                      chains=2, seed=3, target_accept=0.95, progressbar=False)
    tau = b.params().set_index("parameter").loc["sd[school:(Intercept)]", "estimate"]
    assert abs(tau - exact_mean) < 0.6, (tau, exact_mean)  # MCSE is about 0.15
