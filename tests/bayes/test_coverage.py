"""Every structure the REML engine fits (crossed, nested, uncorrelated, q = 3), in every
parameterisation; the parameterisations give the same posterior (means within Monte Carlo
error).  Slow: one compile per model."""

import numpy as np
import pandas as pd
import pytest

import workbench
from tests.bayes.conftest import crossed_data, slopes_data
from workbench.bayes.draws import posterior_frame


def _q3_data(seed=9, groups=14, per=8):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x, z = rng.normal(size=(2, groups * per))
    S = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.4]])
    u = rng.multivariate_normal(np.zeros(3), S, size=groups)
    y = 1 + 0.5 * x - 0.3 * z + u[g, 0] + u[g, 1] * x + u[g, 2] * z + 0.6 * rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": g})


def _nested_data(seed=4):
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(6), 12)
    b = np.tile(np.repeat(np.arange(3), 4), 6)
    ua, uab = rng.normal(size=6), 0.6 * rng.normal(size=(6, 3))
    y = 2 + ua[a] + uab[a, b] + 0.5 * rng.normal(size=a.size)
    return pd.DataFrame({"y": y, "a": a, "b": b})


CASES = {
    "crossed": ("y ~ 1 + (1 | a) + (1 | b)", crossed_data),
    "nested": ("y ~ 1 + (1 | a/b)", _nested_data),
    "uncorrelated": ("y ~ 1 + x + (1 + x || g)", slopes_data),
    "q3": ("y ~ 1 + x + z + (1 + x + z | g)", _q3_data),
}


def _agree(f1, f2, z_max=5.0):
    """Posterior means agree within the combined Monte Carlo error (bulk ESS)."""
    import arviz as az

    p1, p2 = posterior_frame(f1), posterior_frame(f2)
    assert list(p1.columns) == list(p2.columns)
    for col in p1.columns[2:]:
        x1 = p1[col].to_numpy().reshape(2, -1)
        x2 = p2[col].to_numpy().reshape(2, -1)
        se = np.sqrt(x1.var() / az.ess(x1, method="mean") + x2.var() / az.ess(x2, method="mean"))
        assert abs(x1.mean() - x2.mean()) < z_max * se, col
        assert x1.std() == pytest.approx(x2.std(), rel=0.25), col


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_parameterizations_agree(case):
    formula, make = CASES[case]
    data = make()
    fits = {}
    # centered: only where groups are large enough for it to sample in reasonable time (on
    # small groups its funnel drives NUTS to maximum tree depth)
    params = ("marginal", "noncentered") + (("centered",) if case in ("crossed", "nested") else ())
    for param in params:
        fits[param] = workbench.fit(formula, data, method="bayes", parameterization=param,
                                    seed=11, draws=1500, tune=1000, chains=2, progressbar=False,
                                    target_accept=0.95)
        assert fits[param].diagnostics["parameterization"] == param
    reml = workbench.fit(formula, data)
    assert [(r["grp"], r["var1"], r["var2"]) for r in fits["marginal"].varcorr] == \
        [(r["grp"], r["var1"], r["var2"]) for r in reml.varcorr]
    assert len(fits["marginal"].ranef) == len(reml.ranef)
    _agree(fits["marginal"], fits["noncentered"])
    if "centered" in fits and fits["centered"].diagnostics["divergences"] == 0:
        _agree(fits["marginal"], fits["centered"])
