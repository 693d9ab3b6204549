"""The GLS view: statsmodels' GLS with the fitted V reproduces the mixed model's fixed effects."""

import numpy as np
import pytest
import statsmodels.api as sm

import workbench
from workbench import datasets
from workbench.reml.gls import build_V, build_Z


@pytest.mark.parametrize(
    "formula,dataset",
    [
        ("Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy"),
        ("Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ],
)
@pytest.mark.parametrize("method", ["reml", "ml"])
def test_statsmodels_gls_reproduces_fixed_effects(formula, dataset, method):
    fit = workbench.fit(formula, datasets.load(dataset), method=method)
    V = build_V(fit)
    res = sm.GLS(fit.design.y, fit.design.X, sigma=V).fit(cov_type="fixed scale")
    np.testing.assert_allclose(res.params, list(fit.beta.values()), rtol=1e-10)
    np.testing.assert_allclose(res.bse, list(fit.beta_se.values()), rtol=1e-8)


def test_compound_symmetry_of_random_intercepts():
    """Cov(y_i, y_k) = sigma^2 + sigma_a^2 (i = k), sigma_a^2 (same group), 0 otherwise."""
    data = datasets.load("Dyestuff")
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", data)
    V = build_V(fit)
    s2 = fit.sigma**2
    sa2 = fit.varcorr[0]["vcov"]
    g = data["Batch"].to_numpy()
    same = g[:, None] == g[None, :]
    expected = np.where(same, sa2, 0.0) + s2 * np.eye(len(g))
    np.testing.assert_allclose(V, expected, rtol=1e-12)


def test_blups_are_G_Zt_Vinv_residuals():
    fit = workbench.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", datasets.load("sleepstudy"))
    from workbench.reml.gls import build_G

    Z, G, V = build_Z(fit.design), build_G(fit), build_V(fit)
    beta = np.array(list(fit.beta.values()))
    b = G @ Z.T @ np.linalg.solve(V, fit.design.y - fit.design.X @ beta)
    got = np.array([r["value"] for r in fit.ranef])  # block order: (Intercept) levels, then Days
    np.testing.assert_allclose(b.reshape(-1, 2).T.ravel(), got, rtol=1e-8, atol=1e-8)
