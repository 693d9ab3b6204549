"""GLS forecast reconciliation: hand-computed cases, the mixed model's GLS projection, and
hierarchicalforecast's MinTrace on the hierarchy of its own tests (when it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import DataError, OptionError
from workbench.gls.reconcile import projection, reconcile_weights, shrink_covariance

# hierarchicalforecast's test hierarchy: total, two middle series, four bottom series
S7 = np.array([[1., 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1],
               [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def test_hand_computed_two_level_hierarchy():
    S = [[1, 1], [1, 0], [0, 1]]
    base = np.array([10.0, 4.0, 5.0])
    # OLS: (S'S)^-1 S' base = [13/3, 16/3]
    np.testing.assert_allclose(workbench.reconcile(base, S), [29 / 3, 13 / 3, 16 / 3],
                               rtol=1e-14)
    # WLS with W = diag(2, 1, 1): S'W^-1 S = [[3/2, 1/2], [1/2, 3/2]], S'W^-1 base = [9, 10]
    np.testing.assert_allclose(workbench.reconcile(base, S, "wls_struct"), [9.5, 4.25, 5.25],
                               rtol=1e-14)


def test_reconciled_forecasts_are_coherent_and_coherent_ones_are_kept():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(7, 4))
    res = rng.normal(size=(7, 30))
    for method in ("ols", "wls_struct", "wls_var", "mint_sample", "mint_shrink"):
        y = workbench.reconcile(base, S7, method, residuals=res)
        np.testing.assert_allclose(S7[:3] @ np.linalg.pinv(S7[3:]) @ y[3:], y[:3], atol=1e-12)
        coherent = S7 @ rng.normal(size=4)
        np.testing.assert_allclose(workbench.reconcile(coherent, S7, method, residuals=res),
                                   coherent, atol=1e-12)


def test_it_is_the_mixed_models_gls_projection():
    # beta = (X' V^-1 X)^-1 X' V^-1 y: the reconciliation map with S = X and W = V
    from workbench.reml.gls import build_V

    d = workbench.datasets.load("Dyestuff")
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", d)
    V = build_V(fit)
    X = fit.design.X
    beta = projection(X, V) @ fit.design.y
    assert beta[0] == pytest.approx(fit.beta["(Intercept)"], rel=1e-10)


def test_shrinkage_intensity_limits():
    rng = np.random.default_rng(0)
    # independent series, many periods: little correlation to keep, lambda near 1
    _, lam = shrink_covariance(rng.normal(size=(4, 2000)))
    assert lam > 0.5
    # strongly correlated series: lambda near 0
    z = rng.normal(size=2000)
    _, lam = shrink_covariance(np.vstack([z + 0.01 * rng.normal(size=2000) for _ in range(4)]))
    assert lam < 0.01


def test_errors_are_plain():
    with pytest.raises(OptionError, match="needs the in-sample residuals"):
        workbench.reconcile(np.ones(7), S7, "mint_shrink")
    with pytest.raises(OptionError, match="unknown reconciliation method"):
        workbench.reconcile(np.ones(7), S7, "bottom_up")
    with pytest.raises(DataError, match="7 rows"):
        workbench.reconcile(np.ones(6), S7)
    with pytest.raises(DataError, match="not positive definite"):
        workbench.reconcile(np.ones(7), S7, "mint_sample", residuals=np.ones((7, 3)) * [1, 2, 3])
    assert reconcile_weights(S7, "wls_struct")[0, 0] == 4


@pytest.mark.parametrize("ours,theirs", [("ols", "ols"), ("wls_struct", "wls_struct"),
                                         ("wls_var", "wls_var"), ("mint_sample", "mint_cov"),
                                         ("mint_shrink", "mint_shrink")])
def test_equals_hierarchicalforecast(ours, theirs):
    methods = pytest.importorskip("hierarchicalforecast.methods")
    rng = np.random.default_rng(1)
    T, h = 40, 3
    bottom = np.cumsum(rng.normal(size=(4, T + h)), axis=1) + np.arange(1, 5)[:, None] * 10
    y = S7 @ bottom
    y_ins = y[:, 1:T]
    yhat_ins = y[:, :T - 1] + rng.normal(scale=0.3, size=(7, T - 1))
    base = y[:, T:] + rng.normal(size=(7, h))
    got = workbench.reconcile(base, S7, ours, residuals=y_ins - yhat_ins)
    want = methods.MinTrace(theirs).fit_predict(S=S7, y_hat=base, y_insample=y_ins,
                                                y_hat_insample=yhat_ins)["mean"]
    # hierarchicalforecast adds a 2e-8 ridge to wls_var's and mint_shrink's W
    np.testing.assert_allclose(got, want, rtol=1e-8)
