"""The LKJ Cholesky prior: density of the unconstrained transform and exact numpy draws."""

import numpy as np
import pytest
from scipy import stats

from workbench.bayes.lkj import cpc_to_cholesky, draw_lkj_cholesky


@pytest.mark.parametrize("m, eta", [(2, 1.0), (3, 2.0), (4, 0.7)])
def test_transformed_density_is_independent_betas(m, eta):
    """Under LKJ(eta) the partial correlations are independent Beta(a_j, a_j) on (-1, 1)
    (Lewandowski et al. 2009), so the model's log density in the unconstrained space must equal
    sum log Beta density + log |d tanh| up to a constant."""
    import pymc as pm

    from workbench.bayes.lkj import lkj_cholesky

    with pm.Model() as model:
        lkj_cholesky("c", m, eta)
    logp = model.compile_logp()
    rng = np.random.default_rng(0)
    k = m * (m - 1) // 2
    diffs = []
    for _ in range(6):
        y = rng.normal(scale=0.8, size=k)
        z = np.tanh(y)
        ref = 0.0
        idx = 0
        for i in range(1, m):
            for j in range(i):
                a = eta + (m - 2 - j) / 2
                ref += stats.beta(a, a, loc=-1, scale=2).logpdf(z[idx]) + np.log1p(-z[idx] ** 2)
                idx += 1
        diffs.append(logp({"c_raw": y}) - ref)
    assert np.ptp(diffs) < 1e-8


def test_cholesky_is_a_correlation_factor():
    z = np.random.default_rng(1).uniform(-0.95, 0.95, size=(50, 6))
    L = cpc_to_cholesky(z, 4)
    C = L @ np.swapaxes(L, 1, 2)
    assert np.allclose(np.diagonal(C, axis1=1, axis2=2), 1.0)
    assert np.all(np.linalg.eigvalsh(C) > 0)


@pytest.mark.parametrize("m, eta", [(2, 2.0), (3, 1.0), (4, 3.0)])
def test_draws_have_lkj_marginals(m, eta):
    """Each correlation of LKJ(eta) in dimension m is Beta(eta - 1 + m/2, same) on (-1, 1)."""
    L = draw_lkj_cholesky(np.random.default_rng(5), m, eta, 4000)
    C = L @ np.swapaxes(L, 1, 2)
    a = eta - 1 + m / 2
    for i, j in [(1, 0), (m - 1, m - 2), (m - 1, 0)]:
        p = stats.kstest(C[:, i, j], stats.beta(a, a, loc=-1, scale=2).cdf).pvalue
        assert p > 1e-3
