"""Simulation from a fit and the parametric bootstrap."""

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench import datasets
from workbench.errors import WorkbenchError
from workbench.reml.bootstrap import bootstrap, with_bootstrap_ci
from workbench.reml.simulate_fit import simulate_from_fit


@pytest.fixture(scope="module")
def dyestuff():
    return workbench.fit("Yield ~ 1 + (1 | Batch)", datasets.load("Dyestuff"))


def _batch_codes(fit):
    return fit.design.terms[0].codes


def test_simulate_new_ranef_has_the_fitted_marginal_covariance(dyestuff):
    """Var(y_i) = sd_b^2 + sigma^2; Cov within a batch = sd_b^2; across batches 0."""
    sims = simulate_from_fit(dyestuff, seed=1, n=20000)
    assert sims.shape == (20000, 30)
    sd_b = next(r["sdcor"] for r in dyestuff.varcorr if r["grp"] == "Batch")
    sigma = dyestuff.sigma
    cov = np.cov(sims, rowvar=False)
    codes = _batch_codes(dyestuff)
    same = codes[:, None] == codes[None, :]
    off = ~np.eye(30, dtype=bool)
    total = sd_b**2 + sigma**2
    # sampling sd of a variance estimate from 20000 draws is about total * sqrt(2/20000) = 1%
    assert np.diag(cov).mean() == pytest.approx(total, rel=0.02)
    assert cov[same & off].mean() == pytest.approx(sd_b**2, rel=0.05)
    assert abs(cov[~same].mean()) < 0.02 * total
    assert sims.mean(axis=0) == pytest.approx(np.full(30, dyestuff.beta["(Intercept)"]),
                                              abs=5 * np.sqrt(total / 20000))


def test_simulate_crossed_factors():
    """Penicillin (plate x sample crossed): covariance of two rows sharing only the plate is
    var(plate), sharing only the sample var(sample)."""
    fit = workbench.fit("diameter ~ 1 + (1 | plate) + (1 | sample)",
                        datasets.load("Penicillin"))
    vc = {r["grp"]: r["vcov"] for r in fit.varcorr}
    cov = np.cov(simulate_from_fit(fit, seed=9, n=4000), rowvar=False)
    codes = {t.group: t.codes for t in fit.design.terms}
    pl, sa = codes["plate"], codes["sample"]
    same_pl = (pl[:, None] == pl[None, :]) & (sa[:, None] != sa[None, :])
    same_sa = (sa[:, None] == sa[None, :]) & (pl[:, None] != pl[None, :])
    assert cov[same_pl].mean() == pytest.approx(vc["plate"], rel=0.1)
    assert cov[same_sa].mean() == pytest.approx(vc["sample"], rel=0.1)
    assert np.diag(cov).mean() == pytest.approx(sum(vc.values()), rel=0.05)


def test_simulate_with_fitted_ranef_centres_on_fitted_values(dyestuff):
    sims = simulate_from_fit(dyestuff, seed=2, n=5000, new_ranef=False)
    blup = {r["level"]: r["value"] for r in dyestuff.ranef}
    levels = dyestuff.design.terms[0].levels
    fitted = dyestuff.beta["(Intercept)"] + np.array([blup[levels[c]] for c in _batch_codes(dyestuff)])
    se = dyestuff.sigma / np.sqrt(5000)
    assert np.max(np.abs(sims.mean(axis=0) - fitted)) < 5 * se
    assert sims.std(axis=0).mean() == pytest.approx(dyestuff.sigma, rel=0.03)


def test_simulate_is_seeded(dyestuff):
    a = simulate_from_fit(dyestuff, seed=3, n=2)
    assert np.array_equal(a, simulate_from_fit(dyestuff, seed=3, n=2))
    assert not np.array_equal(a, simulate_from_fit(dyestuff, seed=4, n=2))
    with pytest.raises(WorkbenchError):
        simulate_from_fit(dyestuff, seed=3, n=0)


def test_simulate_known_sd_uses_the_known_residual_sds():
    d = datasets.load("eight_schools")
    fit = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    sims = simulate_from_fit(fit, seed=5, n=20000)  # tau-hat = 0: only the known noise
    np.testing.assert_allclose(sims.std(axis=0), d["sigma"].to_numpy(float), rtol=0.03)


def test_bootstrap_is_worker_count_invariant(dyestuff):
    a = bootstrap(dyestuff, n=6, seed=11, workers=1)
    b = bootstrap(dyestuff, n=6, seed=11, workers=2)
    assert list(a.estimates.columns) == ["beta[(Intercept)]", "sd[Batch:(Intercept)]", "sigma"]
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    assert a.failures == 0
    c = bootstrap(dyestuff, n=6, seed=12, workers=1)
    assert not np.array_equal(a.estimates.to_numpy(), c.estimates.to_numpy())


def test_bootstrap_sanity(dyestuff):
    """Small-n sanity: the bootstrap sd of the mean is close to its standard error, the
    percentile intervals cover the estimates, and the sigma replicates centre on sigma-hat."""
    res = bootstrap(dyestuff, n=60, seed=2024, workers=1)
    ci = res.ci().set_index("parameter")
    for name in ci.index:
        assert ci.loc[name, "lower"] <= ci.loc[name, "estimate"] <= ci.loc[name, "upper"]
    # sd of 60 replicates is within ~ +-25% of the truth with high probability
    assert ci.loc["beta[(Intercept)]", "se"] == pytest.approx(
        dyestuff.beta_se["(Intercept)"], rel=0.3)
    sigma_se = dyestuff.sigma / np.sqrt(2 * (30 - 6))  # residual df of the one-way layout
    assert abs(ci.loc["sigma", "bias"]) < 4 * sigma_se / np.sqrt(60) + 0.05 * dyestuff.sigma
    wide = res.ci(level=0.99).set_index("parameter")
    assert (wide.lower <= ci.lower).all() and (wide.upper >= ci.upper).all()


def test_with_bootstrap_ci(dyestuff):
    res = bootstrap(dyestuff, n=8, seed=1, workers=1)
    out = with_bootstrap_ci(dyestuff, result=res)
    assert out.interval == "bootstrap" and dyestuff.interval == "wald"
    ci = res.ci().set_index("parameter")
    assert out.beta_ci["(Intercept)"] == pytest.approx(
        list(ci.loc["beta[(Intercept)]", ["lower", "upper"]]))
    assert out.diagnostics["bootstrap"] == {"n": 8, "seed": 1, "failures": 0}


def test_bootstrap_bad_input(dyestuff):
    with pytest.raises(WorkbenchError, match="positive integer"):
        bootstrap(dyestuff, n=0, seed=1)
    with pytest.raises(WorkbenchError, match="workers"):
        bootstrap(dyestuff, n=2, seed=1, workers=0)


@pytest.mark.slow
def test_bootstrap_percentile_coverage():
    """Coverage of the 90% percentile interval of the fixed effect over repeated data sets
    from a known truth (one-way layout, 10 groups of 5)."""
    rng = np.random.default_rng(7)
    hits, reps = 0, 30
    for _ in range(reps):
        g = np.repeat(np.arange(10), 5)
        y = 1.0 + rng.normal(0, 1.0, 10)[g] + rng.normal(0, 1.0, 50)
        fit = workbench.fit("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g}))
        ci = bootstrap(fit, n=100, seed=int(rng.integers(1 << 31))).ci(0.9)
        lo, hi = ci.set_index("parameter").loc["beta[(Intercept)]", ["lower", "upper"]]
        hits += lo <= 1.0 <= hi
    # percentile intervals undercover a little with 10 groups; 30 reps: sd of coverage ~0.06
    assert 0.65 <= hits / reps <= 1.0
