"""Verbs on a Bayesian fit: posterior predictions (new levels from the fitted distribution),
vcov, fitted, and save/load with the draws in netCDF."""

import numpy as np
import pandas as pd
import pytest

import workbench
from tests.bayes.conftest import slopes_data

FORMULA = "y ~ 1 + x + (1 + x | g)"
OPTS = dict(draws=500, tune=500, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def bayes():
    return workbench.fit(FORMULA, slopes_data(groups=15, per=8), method="bayes", seed=4, **OPTS)


def _arrays(fit):
    from workbench.bayes.draws import posterior_arrays

    return posterior_arrays(fit)


def test_predict_seen_levels_is_the_posterior_of_the_linear_predictor(bayes):
    arr = _arrays(bayes)
    nd = pd.DataFrame({"x": [0.5, -1.0], "g": ["G03", "G11"]})
    lin = bayes.predict(nd, kind="linpred")
    S = arr["beta"].shape[0]
    assert lin.shape == (S, 2)
    levels = list(bayes.state.structure.blocks[0].levels)
    b = arr["b"][0]
    for i, (x, g) in enumerate(zip(nd.x, nd.g)):
        k = levels.index(g)
        want = arr["beta"][:, 0] + arr["beta"][:, 1] * x + b[:, k, 0] + b[:, k, 1] * x
        np.testing.assert_allclose(lin[:, i], want, rtol=1e-12)
    np.testing.assert_allclose(bayes.predict(nd), lin.mean(axis=0), rtol=1e-12)
    # the fitted values are the posterior mean on the fit's rows
    np.testing.assert_allclose(bayes.fitted()[:3], bayes.predict(bayes.design.data.iloc[:3]),
                               rtol=1e-12)


def test_new_levels_are_drawn_from_the_fitted_distribution(bayes):
    arr = _arrays(bayes)
    x = 1.5
    nd = pd.DataFrame({"x": [x] * 2, "g": ["new_a", "new_b"]})
    with pytest.raises(workbench.WorkbenchError, match="new_a"):
        bayes.predict(nd)
    lin = bayes.predict(nd, kind="linpred", allow_new_levels=True, seed=3)
    marg = bayes.predict(nd, kind="linpred", re_form="~0")
    dev = lin - marg  # z' b_new for each draw
    sd, corr = arr["sd"][0], arr["corr"][0]
    var = (sd[:, 0] ** 2 + x**2 * sd[:, 1] ** 2 + 2 * x * corr[:, 0, 1] * sd[:, 0] * sd[:, 1])
    S = dev.shape[0]
    # E[dev] = 0 and E[dev^2] = E[z' G z], within Monte Carlo error (4 standard errors)
    for j in range(2):
        assert abs(dev[:, j].mean()) < 4 * np.sqrt(var.mean() / S)
        ratio = (dev[:, j] ** 2 / var)  # chi-square(1) per draw: mean 1, sd sqrt(2)
        assert abs(ratio.mean() - 1) < 4 * np.sqrt(2 / S)
    # the two new levels get independent draws
    assert abs(np.corrcoef(dev[:, 0], dev[:, 1])[0, 1]) < 4 / np.sqrt(S)
    # posterior predictive draws add the residual noise
    draws = bayes.predict(nd, kind="draws", allow_new_levels=True, seed=3)
    noise = draws - lin
    ratio = noise[:, 0] ** 2 / arr["sigma"] ** 2
    assert abs(ratio.mean() - 1) < 4 * np.sqrt(2 / S)


def test_vcov_is_the_posterior_covariance(bayes):
    V = bayes.vcov()
    assert list(V.index) == ["(Intercept)", "x"]
    np.testing.assert_allclose(V.to_numpy(), np.cov(_arrays(bayes)["beta"], rowvar=False),
                               rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(np.diag(V)), [bayes.beta_se[k] for k in V.index],
                               rtol=1e-2)


def test_save_load_round_trip(bayes, tmp_path):
    path = tmp_path / "bayes.json"
    written = bayes.save(path)
    assert {p.name for p in written} == {"bayes.json", "bayes.data.parquet", "bayes.nc"}
    back = workbench.load(path)
    assert back.to_dict() == bayes.to_dict()
    nd = pd.DataFrame({"x": [0.5, 2.0], "g": ["G01", "zz"]})
    np.testing.assert_array_equal(back.predict(nd, kind="draws", allow_new_levels=True, seed=5),
                                  bayes.predict(nd, kind="draws", allow_new_levels=True, seed=5))
    assert str(back) == str(bayes)
    pd.testing.assert_frame_equal(workbench.compare(back).parameters,
                                  workbench.compare(bayes).parameters)
