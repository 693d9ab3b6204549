"""The fast path (bayes/fast.py): the posterior of the marginal NUTS model, an exact reference
(eight schools, BDA3 eq. 5.21), the path recorded, fallbacks, reproducibility."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import workbench
from workbench import datasets
from workbench.bayes import fast
from workbench.bayes.draws import posterior_frame
from workbench.errors import OptionError, SpecError

from .conftest import crossed_data, slopes_data

FORMULA = "y ~ 1 + x + (1 + x | g)"


def _mcse(frame: pd.DataFrame, chains: int, what: str) -> pd.Series:
    """Monte Carlo standard error of each column's mean, or of its sd (delta method on the
    second central moment; arviz's own sd MCSE fails on this numpy)."""
    import arviz as az

    out = {}
    for c in frame.columns:
        x = frame[c].to_numpy(dtype=float).reshape(chains, -1)
        if what == "mean":
            out[c] = float(np.ravel(az.mcse(x, method="mean"))[0])
        else:
            v = (x - x.mean()) ** 2
            out[c] = float(np.ravel(az.mcse(v, method="mean"))[0]) / (2 * np.sqrt(v.mean()))
    return pd.Series(out)


def _params(fit) -> pd.DataFrame:
    return posterior_frame(fit).drop(columns=["chain", "draw"])


def _agree(a, b, ca: int, cb: int, z: float = 4.0):
    """Means and sds of two posteriors agree within z combined Monte Carlo standard errors."""
    for what, f in (("mean", lambda x: x.mean()), ("sd", lambda x: x.std())):
        diff = (f(a) - f(b)).abs()
        se = np.sqrt(_mcse(a, ca, what) ** 2 + _mcse(b, cb, what) ** 2)
        bad = diff[diff > z * se]
        assert bad.empty, (what, pd.DataFrame({"fast": f(a), "nuts": f(b), "se": se}))


def _eight_schools_exact(prior_tau):
    """Posterior mean and sd of mu and tau on a grid (flat prior on mu; BDA3 eq. 5.21)."""
    d = datasets.load("eight_schools")
    y, s = d["y"].to_numpy(float), d["sigma"].to_numpy(float)
    grid = np.linspace(1e-6, 150.0, 60001)
    w = 1 / (s[None, :] ** 2 + grid[:, None] ** 2)
    vmu = 1 / w.sum(1)
    mu = (w * y).sum(1) * vmu
    logp = (0.5 * np.log(vmu) + 0.5 * np.log(w).sum(1) - 0.5 * (w * (y - mu[:, None]) ** 2).sum(1)
            + prior_tau(grid))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    m_tau = (p * grid).sum()
    m_mu = (p * mu).sum()
    return {"mu": (m_mu, np.sqrt((p * (vmu + mu ** 2)).sum() - m_mu ** 2)),
            "tau": (m_tau, np.sqrt((p * grid ** 2).sum() - m_tau ** 2))}


@pytest.mark.parametrize("prior,logpdf", [
    ("HalfCauchy(5)", lambda t: stats.halfcauchy.logpdf(t, scale=5)),
    ("HalfNormal(10)", lambda t: stats.halfnorm.logpdf(t, scale=10)),
])
def test_eight_schools_matches_exact_posterior(prior, logpdf):
    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, method="bayes", known_sd="sigma", seed=11,
                      priors={"beta": "Flat()", "sd": prior}, draws=2000, progressbar=False)
    assert f.diagnostics["path"] == "fast"
    assert f.diagnostics["divergences"] == 0 and f.diagnostics["min_ess_bulk"] >= 400
    exact = _eight_schools_exact(logpdf)
    fr = _params(f)
    for col, key in (("beta[(Intercept)]", "mu"), ("sd[school:(Intercept)]", "tau")):
        x = fr[col]
        m_se = _mcse(fr[[col]], 2, "mean")[col]
        s_se = _mcse(fr[[col]], 2, "sd")[col]
        assert abs(x.mean() - exact[key][0]) < 4 * m_se, (col, x.mean(), exact[key][0], m_se)
        assert abs(x.std() - exact[key][1]) < 4 * s_se, (col, x.std(), exact[key][1], s_se)


CASES = {
    "defaults": {},
    "other priors": {"beta": "Flat()", "sd[g:(Intercept)]": "HalfCauchy(2)",
                     "sd[g:x]": "InverseGamma(2, 0.5)", "corr": "LKJ(1)",
                     "sigma": "HalfStudentT(4, 1)"},
}


@pytest.mark.parametrize("case", ["defaults", pytest.param("other priors", marks=pytest.mark.slow)])
def test_fast_matches_marginal_nuts(case):
    d = slopes_data(seed=5, groups=15, per=5)
    kw = dict(method="bayes", priors=CASES[case], progressbar=False)
    f = workbench.fit(FORMULA, d, seed=1, draws=2000, **kw)
    n = workbench.fit(FORMULA, d, seed=2, draws=3000, path="nuts", **kw)
    assert f.diagnostics["path"] == "fast" and n.diagnostics["path"] == "nuts"
    assert n.diagnostics["divergences"] == 0
    _agree(_params(f), _params(n), 2, 2)
    # random effects too: their conditional draws use the same formulas on both paths
    rf = pd.DataFrame(f.ranef).set_index(["term", "level"])["value"]
    rn = pd.DataFrame(n.ranef).set_index(["term", "level"])["value"]
    assert np.max(np.abs(rf - rn)) < 0.05


@pytest.mark.slow
def test_fast_matches_marginal_nuts_weighted_intercepts():
    d = slopes_data(seed=9, groups=40, per=4)
    d["w"] = np.random.default_rng(0).uniform(0.5, 2.0, len(d))
    kw = dict(method="bayes", weights="w", progressbar=False)
    f = workbench.fit("y ~ 1 + x + (1 | g)", d, seed=1, draws=2000, **kw)
    n = workbench.fit("y ~ 1 + x + (1 | g)", d, seed=2, draws=3000, path="nuts", **kw)
    assert f.diagnostics["path"] == "fast"
    _agree(_params(f), _params(n), 2, 2)


def test_fast_path_records_and_reproduces():
    d = slopes_data()
    a = workbench.fit(FORMULA, d, method="bayes", seed=4, progressbar=False)
    b = workbench.fit(FORMULA, d, method="bayes", seed=4, progressbar=False)
    dg = a.diagnostics
    assert dg["path"] == "fast" and dg["sampler"] == "independence-mh"
    assert dg["pareto_k"] <= fast.PARETO_K_MAX and dg["min_ess_bulk"] >= 400
    assert dg["divergences"] == 0 and dg["max_rhat"] < 1.01
    pd.testing.assert_frame_equal(posterior_frame(a), posterior_frame(b))
    assert a.ranef == b.ranef
    c = workbench.fit(FORMULA, d, method="bayes", seed=5, progressbar=False)
    assert not posterior_frame(a).equals(posterior_frame(c))


def test_path_option_and_where_it_applies():
    with pytest.raises(OptionError, match="path"):
        workbench.fit(FORMULA, slopes_data(), method="bayes", path="quick")
    with pytest.raises(SpecError, match="several grouping factors"):
        workbench.fit("y ~ 1 + (1 | a) + (1 | b)", crossed_data(), method="bayes", path="fast",
                      progressbar=False)
    d = slopes_data()
    from workbench.bayes.priors import resolve_priors
    from workbench.structure import build_structure

    f = workbench.fit(FORMULA, d, method="bayes", seed=1, progressbar=False, draws=50, tune=50)
    st = build_structure(f.design)
    assert fast.why_not(f.design, st, resolve_priors(f.design, st, None)) is None
    assert "StudentT" in fast.why_not(f.design, st, resolve_priors(
        f.design, st, {"beta[x]": "StudentT(3, 0, 1)"}))
    assert "Fixed" in fast.why_not(f.design, st, resolve_priors(f.design, st, {"sigma": "Fixed(1)"}))


def test_chains_start_from_a_posterior_draw():
    """Regression: a chain used to start at its first proposal, kept as the first draw when no
    thinning was needed; on this replicate of the equivalence study (5 groups) that proposal
    came from the wide component (sd[g:x] = 8e7, beta undefined) and made the posterior mean of
    sd[g:x] 4e4 under a HalfNormal(3.1) prior."""
    from pathlib import Path

    from workbench.simulate.generate import generate
    from workbench.study.replicate import replicate_rng, sampler_seed
    from workbench.study.spec import load_study

    study = load_study(Path(__file__).parents[2] / "studies" / "equivalence.toml")
    c = study.conditions[2]
    data = generate(c.design, replicate_rng(study.spec.seed, 2, 83), True)[0]  # as the study draws it
    f = workbench.fit(c.design.formula, data, method="bayes", progressbar=False, cores=1,
                      seed=sampler_seed(study.spec.seed, 2, 83))
    assert f.diagnostics["path"] == "fast"
    frame = _params(f)
    assert np.isfinite(frame.to_numpy()).all()
    assert frame["sd[g:x]"].max() < 20  # 6 prior sds: density below e^-18 of the mode


def test_two_factor_model_records_the_nuts_path():
    """Crossed factors: ``path="auto"`` cannot take the fast path; the record says that NUTS ran
    on the non-centred model, and why."""
    f = workbench.fit("y ~ 1 + (1 | a) + (1 | b)", crossed_data(), method="bayes", seed=3,
                      progressbar=False, draws=100, tune=100)
    dg = f.diagnostics
    assert dg["path"] == "nuts" and dg["parameterization"] == "noncentered"
    assert dg["sampler"] in ("nutpie", "pymc")
    assert "several grouping factors" in dg["path_note"]
    assert f.state.parameterization == "noncentered"


def test_declined_proposal_falls_back_to_nuts(monkeypatch):
    monkeypatch.setattr(fast, "PARETO_K_MAX", -10.0)
    d = slopes_data()
    f = workbench.fit("y ~ 1 + x + (1 | g)", d, method="bayes", seed=1, progressbar=False,
                      draws=200, tune=200)
    assert f.diagnostics["path"] == "nuts"
    assert "Pareto k" in f.diagnostics["path_note"]
    with pytest.raises(SpecError, match="declined"):
        workbench.fit("y ~ 1 + x + (1 | g)", d, method="bayes", seed=1, progressbar=False,
                      path="fast")


def test_loglik_matches_marginal_graph():
    """The numpy log posterior of theta equals the PyMC marginal model's, beta integrated out
    numerically on a grid (intercept-only fixed part)."""
    d = slopes_data(groups=8, per=4)
    f = workbench.fit("y ~ 1 + (1 | g)", d, method="bayes", seed=1, progressbar=False,
                      priors={"beta": "Normal(2, 1.5)"}, draws=50)
    from workbench.bayes.marginal import sufficient_stats
    from workbench.bayes.priors import resolve_priors
    from workbench.structure import build_structure

    st = build_structure(f.design)
    pr = resolve_priors(f.design, st, {"beta": "Normal(2, 1.5)"})
    stats_ = sufficient_stats(f.design, st)
    post = fast.Posterior(f.design, st, pr, stats_)
    y, g = f.design.y, st.blocks[0].codes
    betas = np.linspace(-8, 12, 8001)

    def direct(z):  # log p(y | b0, tau, sigma) by the dense covariance, b0 integrated numerically
        tau, sigma = np.exp(z)
        V = tau ** 2 * (g[:, None] == g[None, :]) + sigma ** 2 * np.eye(len(y))
        knots = np.array([-1.0, 2.0, 5.0])  # the log likelihood is exactly quadratic in b0
        vals = [stats.multivariate_normal.logpdf(y, np.full(len(y), b), V) for b in knots]
        ll = np.polyval(np.polyfit(knots, vals, 2), betas)
        lb = stats.norm.logpdf(betas, 2, 1.5)
        m = (ll + lb).max()
        lm = m + np.log(np.trapezoid(np.exp(ll + lb - m), betas))
        return (lm + stats.halfnorm.logpdf(tau, scale=pr["sd[g:(Intercept)]"].args[0]) + z[0]
                + stats.expon.logpdf(sigma, scale=1 / pr["sigma"].args[0]) + z[1])

    zs = np.array([[0.0, -0.3], [-1.0, 0.2], [0.5, -0.6]])
    ours = post.logpost(zs)
    ref = np.array([direct(z) for z in zs])
    # equal up to one constant (the normalising constants of Normal priors and 2 pi terms)
    np.testing.assert_allclose(ours - ours[0], ref - ref[0], atol=2e-3)
