"""ArviZ-native InferenceData: tidy names, named dimensions, the groups ArviZ needs, and
az.summary / az.plot_forest / az.loo / az.compare running on it (small seeded fits)."""

import math

import numpy as np
import pytest
from scipy import stats

import workbench
from workbench.bayes.idata import (CONDITIONAL_PER_OBS, MARGINAL_PER_LEVEL,
                                   marginal_loglik_per_level)
from workbench.design import build_design
from workbench.structure import build_structure

from .conftest import crossed_data, slopes_data

az = pytest.importorskip("arviz")
FORMULA = "y ~ 1 + x + (1 + x | g)"
SMALL = dict(draws=200, tune=200, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def fits():
    data = slopes_data()
    marg = workbench.fit(FORMULA, data, method="bayes", seed=1, parameterization="marginal",
                         **SMALL)
    nc = workbench.fit(FORMULA, data, method="bayes", seed=1, parameterization="noncentered",
                       **SMALL)
    return data, marg, nc


def test_names_and_dims(fits):
    _, fit, _ = fits
    idata = fit.state.idata
    assert fit.idata is idata
    post = idata.posterior
    assert list(post["beta"].coords["coefficient"].values) == ["(Intercept)", "x"]
    assert list(post["sd"].coords["term"].values) == ["g:(Intercept)", "g:x"]
    assert list(post["cor"].coords["pair"].values) == ["g:(Intercept),x"]
    assert post["b_g"].dims == ("chain", "draw", "g_level", "g_term")
    assert post["b_g"].sizes["g_level"] == 12
    for group in ("posterior", "prior", "observed_data", "constant_data", "log_likelihood",
                  "sample_stats"):
        assert hasattr(idata, group), group
    assert idata.observed_data["y"].sizes["obs"] == 72
    assert idata.constant_data["X"].dims == ("obs", "coefficient")
    # the record's numbers are the native posterior's
    assert fit.beta["x"] == pytest.approx(float(post["beta"].sel(coefficient="x").mean()))
    # ArviZ's labels are the workbench's parameter names
    table = az.summary(idata, var_names=["beta", "sd", "cor", "sigma"], kind="stats")
    assert list(table.index) == list(fit.draws().columns[2:])


def test_likelihood_kind(fits):
    _, marg, nc = fits
    assert marg.idata.log_likelihood.attrs["likelihood"] == MARGINAL_PER_LEVEL
    assert marg.idata.log_likelihood["y"].dims == ("chain", "draw", "g_level")
    assert nc.idata.log_likelihood.attrs["likelihood"] == CONDITIONAL_PER_OBS
    assert nc.idata.log_likelihood["y"].dims == ("chain", "draw", "obs")


def test_marginal_per_level_sums_to_dense_gaussian():
    """The per-level terms sum to log N(y | X beta, Z G Z' + sigma^2 I) computed densely."""
    data = slopes_data(groups=5, per=4)
    d = build_design(FORMULA, data)
    st = build_structure(d)
    rng = np.random.default_rng(0)
    S = 3
    beta = rng.normal(size=(S, 2))
    sd = np.abs(rng.normal(size=(S, 2))) + 0.2
    r = np.array([0.3, -0.5, 0.8])
    corr = np.array([[[1, c], [c, 1]] for c in r])
    sigma = np.array([0.5, 1.0, 1.7])
    arrays = {"beta": beta, "sd": [sd], "corr": [corr], "b": [None], "sigma": sigma}
    ll = marginal_loglik_per_level(arrays, d, st)
    assert ll.shape == (S, 5)
    blk = st.blocks[0]
    Z = np.zeros((d.n, 2 * blk.nlevels))
    for i in range(d.n):
        Z[i, 2 * blk.codes[i]:2 * blk.codes[i] + 2] = blk.Z[i]
    for s in range(S):
        G1 = np.outer(sd[s], sd[s]) * corr[s]
        V = Z @ np.kron(np.eye(blk.nlevels), G1) @ Z.T + sigma[s] ** 2 * np.eye(d.n)
        dense = stats.multivariate_normal(d.X @ beta[s], V).logpdf(d.y)
        assert ll[s].sum() == pytest.approx(dense, rel=1e-10)


def test_arviz_functions_run(fits):
    _, marg, nc = fits
    s = az.summary(marg.idata, var_names=["beta", "sd", "sigma"])
    assert "r_hat" in s.columns and "sd[g:x]" in s.index
    ax = az.plot_forest(marg.idata, var_names=["beta", "sd"], combined=True)
    labels = [t.get_text() for t in np.ravel(ax)[0].get_yticklabels()]
    assert any("g:x" in t for t in labels), labels
    import matplotlib.pyplot as plt

    plt.close("all")
    loo = az.loo(nc.idata)
    assert math.isfinite(loo.elpd_loo) and loo.n_data_points == 72
    loo_m = az.loo(marg.idata)
    assert loo_m.n_data_points == 12
    other = workbench.fit("y ~ 1 + (1 | g)", slopes_data(), method="bayes", seed=2,
                          parameterization="noncentered", **SMALL)
    table = az.compare({"slopes": nc.idata, "intercepts": other.idata})
    assert set(table.index) == {"slopes", "intercepts"}


def test_crossed_and_improper_prior():
    data = crossed_data()
    fit = workbench.fit("y ~ 1 + (1 | a) + (1 | b)", data, method="bayes", seed=3,
                        priors={"beta": "Flat()"}, **SMALL)
    idata = fit.idata
    assert {"b_a", "b_b"} <= set(idata.posterior.data_vars)
    assert "cor" not in idata.posterior
    assert idata.log_likelihood.attrs["likelihood"] == CONDITIONAL_PER_OBS
    assert not hasattr(idata, "prior") and "no prior draws" in idata.posterior.attrs["prior"]
    assert math.isfinite(az.loo(idata).elpd_loo)
