"""The one deviance function: its sigma-given form meets the profiled criterion at sigma-hat."""

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.reml.criterion import deviance, deviance_at, make_criterion


def _data(seed=7):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(9), 5)
    x = rng.normal(size=45)
    y = 1 + 0.3 * x + rng.normal(scale=0.7, size=9)[g] + rng.normal(size=45)
    return pd.DataFrame({"y": y, "x": x, "g": g, "s": rng.uniform(0.5, 1.5, 45)})


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_sigma_given_at_sigma_hat_is_the_profiled_criterion(method):
    fit = workbench.fit("y ~ x + (1 | g)", _data(), method=method)
    st = fit.reml_state("tests", need_system=True)
    reml = method == "reml"
    f = st.system.factor(st.theta)
    pieces = st.system.logdets(f)
    assert deviance(st.system, pieces, reml) == pytest.approx(fit.criterion, rel=1e-13)
    at_hat = deviance(st.system, pieces, reml, sigma=fit.sigma)
    assert at_hat == pytest.approx(fit.criterion, rel=1e-12)
    # sigma-hat maximises the likelihood at this theta: any other sigma gives more
    for s in (0.9 * fit.sigma, 1.1 * fit.sigma):
        assert deviance(st.system, pieces, reml, sigma=s) > at_hat
    assert deviance_at(st.system, st.theta, reml) == make_criterion(st.system, reml)(st.theta)


def test_known_sds_ignore_sigma():
    fit = workbench.fit("y ~ x + (1 | g)", _data(), method="reml", known_sd="s")
    st = fit.reml_state("tests", need_system=True)
    pieces = st.system.logdets(st.system.factor(st.theta))
    assert deviance(st.system, pieces, True, sigma=3.0) == deviance(st.system, pieces, True)
