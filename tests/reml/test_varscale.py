"""Variance-scale REML: information-matrix standard errors and NOBOUND fits.

Balanced one-way data have closed forms: the REML estimates are the ANOVA estimates
sigma_a^2 = (MSB - MSW) / n (negative when MSB < MSW, which NOBOUND keeps) and sigma^2 = MSW,
and their sampling variances, 2 (sigma^2 + n sigma_a^2)^2 / ((J - 1) n^2) + 2 sigma^4 /
(J (n - 1) n^2) and 2 sigma^4 / (J (n - 1)), are the inverse expected information.
"""

import numpy as np
import pytest

import workbench
from workbench import datasets
from workbench.reml.varscale import VarianceScaleModel, variance_parameters


def _anova(data, y="Yield", g="Batch"):
    groups = data.groupby(g)[y]
    J = groups.ngroups
    n = int(groups.size().iloc[0])
    grand = data[y].mean()
    msb = n * ((groups.mean() - grand) ** 2).sum() / (J - 1)
    msw = ((data[y] - groups.transform("mean")) ** 2).sum() / (J * (n - 1))
    return J, n, msb, msw


@pytest.mark.parametrize("dataset", ["Dyestuff", "Dyestuff2"])
def test_nobound_reml_is_anova(dataset):
    data = datasets.load(dataset)
    J, n, msb, msw = _anova(data)
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", data, nobound=True)
    vp = fit.state.var_params
    np.testing.assert_allclose(vp["var[Batch:(Intercept)]"]["estimate"], (msb - msw) / n, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(vp["var[Residual]"]["estimate"], msw, rtol=1e-7)
    if msb < msw:  # dyestuff2: the bounded fit sits at 0, the unbounded one below it
        bounded = workbench.fit("Yield ~ 1 + (1 | Batch)", data)
        assert fit.criterion < bounded.criterion
        assert fit.varcorr[0]["vcov"] < 0 and np.isnan(fit.varcorr[0]["sdcor"])


def test_expected_information_ses_are_the_anova_sampling_variances():
    data = datasets.load("Dyestuff")
    J, n, _, _ = _anova(data)
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", data, vc_se="expected")
    vp = fit.state.var_params
    # the inverse information at the estimates, which equal the ANOVA ones to ~1e-7
    s2a, msw = vp["var[Batch:(Intercept)]"]["estimate"], vp["var[Residual]"]["estimate"]
    var_a = 2 * (msw + n * s2a) ** 2 / ((J - 1) * n**2) + 2 * msw**2 / (J * (n - 1) * n**2)
    np.testing.assert_allclose(vp["var[Batch:(Intercept)]"]["se"], np.sqrt(var_a), rtol=1e-8)
    np.testing.assert_allclose(vp["var[Residual]"]["se"], np.sqrt(2 * msw**2 / (J * (n - 1))), rtol=1e-8)


def test_variance_scale_criterion_and_score_match_the_engine():
    fit = workbench.fit("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
    model = VarianceScaleModel(fit.design)
    psi = np.array([v["estimate"] for v in variance_parameters(fit).values()])
    assert model.criterion(psi) == pytest.approx(fit.criterion, rel=1e-12)
    score, info, beta = model.score_information(psi)
    np.testing.assert_allclose(beta, list(fit.beta.values()), rtol=1e-10)
    # at an interior REML optimum the score vanishes (relative to the information's scale)
    assert np.all(np.abs(score) * np.sqrt(np.diag(np.linalg.inv(info))) < 1e-5)


def test_observed_information_is_minus_the_hessian_of_the_loglik():
    fit = workbench.fit("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
    model = VarianceScaleModel(fit.design)
    psi = model.pack(*[np.asarray(x) for x in _G_s2(fit)])
    obs = model.observed_information(psi)
    # independent check: central second differences of -loglik = criterion / 2
    m = psi.size
    H = np.zeros((m, m))
    h = 1e-3 * np.maximum(1, np.abs(psi))
    f = lambda x: model.criterion(x) / 2  # noqa: E731
    for a in range(m):
        for b in range(m):
            ea, eb = np.eye(m)[a] * h[a], np.eye(m)[b] * h[b]
            H[a, b] = (f(psi + ea + eb) - f(psi + ea - eb) - f(psi - ea + eb) + f(psi - ea - eb)) / (4 * h[a] * h[b])
    np.testing.assert_allclose(obs, H, rtol=2e-3, atol=1e-9)


def _G_s2(fit):
    """(G, sigma^2) of a one-factor fit, from its theta: G = sigma^2 lambda lambda'."""
    st = fit.reml_state("tests", need_system=True)
    lam = st.system.structure.lambdas(st.theta)[0]
    s2 = fit.sigma**2
    return s2 * lam @ lam.T, s2


def test_nobound_interior_optimum_is_the_bounded_one():
    data = datasets.load("sleepstudy")
    a = workbench.fit("Reaction ~ Days + (Days | Subject)", data)
    b = workbench.fit("Reaction ~ Days + (Days | Subject)", data, nobound=True)
    assert b.criterion == pytest.approx(a.criterion, rel=1e-10)
    for k in a.beta:
        assert b.beta[k] == pytest.approx(a.beta[k], rel=1e-6)


def test_nobound_needs_reml_and_one_factor():
    data = datasets.load("Penicillin")
    with pytest.raises(workbench.WorkbenchError, match="one grouping factor"):
        workbench.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", data, nobound=True)
    with pytest.raises(workbench.WorkbenchError, match="REML only"):
        workbench.fit("Yield ~ 1 + (1 | Batch)", datasets.load("Dyestuff"), method="ml", nobound=True)
