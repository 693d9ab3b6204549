"""Residual correlation structures in the Bayesian fitter (workbench.bayes.corstruct).

Fast: the collapsed likelihood against a dense multivariate normal and against nlme's ML
log-likelihoods (tests/reference/gls, tests/reference/bayescor), the PyTensor graph against it,
priors and errors, one small sampling run.  Slow: the posterior of the correlation parameter
against quadrature on a grid, and against nlme's estimates with many groups.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

import workbench
from workbench.bayes.corstruct import ResidualStats, coefficients, loglik_graph
from workbench.bayes.priors import resolve_priors
from workbench.design import build_design
from workbench.errors import NotYetSupportedError, OptionError, SpecError
from workbench.formula import parse_formula
from workbench.gls.corstruct import correlation_rows, parse_correlation
from workbench.structure import build_structure

REF = Path(__file__).resolve().parents[1] / "reference"
GLS = json.loads((REF / "gls" / "gls_reference.json").read_text())
LME = json.loads((REF / "bayescor" / "lme_reference.json").read_text())
FAST = dict(draws=200, tune=200, chains=2, progressbar=False)


def residual_stats(formula, data, correlation):
    """The design, structure and ResidualStats of a model, as the fitter builds them."""
    spec = parse_formula(formula)
    corr = parse_correlation(correlation)
    data, codes, pos = correlation_rows(spec, data, corr)
    design = build_design(spec, data)
    structure = build_structure(design)
    return design, structure, ResidualStats(design, structure, codes, pos, corr.kind,
                                            corr.group, corr.text), codes, pos


def toy(seed=0, groups=7, with_gaps=True):
    """Unequal groups; integer times with gaps; a covariate; a nested grouping for the RE."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        T = int(rng.integers(1, 6))
        times = np.sort(rng.choice(np.arange(12), size=T, replace=False)) if with_gaps \
            else np.arange(T)
        for t in rng.permutation(times):  # data order is not time order
            rows.append({"g": f"g{g}", "h": f"h{g // 2}", "t": int(t),
                         "x": rng.normal(), "y": rng.normal()})
    return pd.DataFrame(rows)


def dense_loglik(design, codes, pos, kind, rho, beta, s2, G=None, re_codes=None, Z=None):
    """log N(y | X beta, V) with V built densely: s2 R (+ Z_j G Z_j' within RE levels)."""
    n = design.n
    V = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if codes[i] == codes[j]:
                if kind == "cs":
                    V[i, j] = s2 * (1.0 if i == j else rho)
                else:
                    V[i, j] = s2 * rho ** abs(int(pos[i]) - int(pos[j]))
            if G is not None and re_codes[i] == re_codes[j]:
                V[i, j] += Z[i] @ G @ Z[j]
    return multivariate_normal(design.X @ beta, V).logpdf(design.y)


@pytest.mark.parametrize("kind,rho", [("cs", 0.4), ("cs", -0.15), ("ar1", 0.6), ("ar1", -0.5)])
@pytest.mark.parametrize("ranef", [None, "(1 | g)", "(1 + x | h)"])
def test_collapsed_loglik_equals_the_dense_normal(kind, rho, ranef):
    d = toy(seed=3)
    formula = "y ~ x" + (f" + {ranef}" if ranef else "")
    design, structure, st, codes, pos = residual_stats(formula, d, f"{kind}(~ t | g)")
    beta = np.array([0.3, -0.7])
    sigma = 1.3
    args = dict(beta=beta[None], sigma=np.array([sigma]), rho=np.array([rho]))
    G = re = Z = None
    if ranef:
        blk = structure.blocks[0]
        sd = np.array([0.9, 0.4][:blk.q])
        corr = np.array([[1.0, 0.3], [0.3, 1.0]])[:blk.q, :blk.q]
        G = np.outer(sd, sd) * corr
        re, Z = blk.codes, blk.Z
        args.update(sd=sd[None], corr=corr[None] if blk.q > 1 else None)
    got = st.pointwise_loglik(**args)
    want = dense_loglik(design, codes, pos, kind, rho, beta, sigma ** 2, G, re, Z)
    assert got.sum() == pytest.approx(want, rel=1e-10)
    if not ranef:  # one term per correlation group
        assert got.shape == (1, st.ngroups)


def test_pytensor_graph_equals_the_numpy_likelihood():
    import pytensor.tensor as pt

    d = toy(seed=5)
    design, structure, st, codes, pos = residual_stats("y ~ x + (1 + x | h)", d, "ar1(~ t | g)")
    beta, sigma, rho = np.array([0.2, 0.5]), 0.8, 0.55
    sd, r = np.array([0.7, 0.3]), 0.25
    C = np.linalg.cholesky(np.outer(sd, sd) * np.array([[1, r], [r, 1]]))
    data = {k: pt.as_tensor(v) for k, v in st.model_data().items()}
    Cn = [[pt.as_tensor(C[a, i]) if a >= i else None for i in range(2)] for a in range(2)]
    ll = loglik_graph(st.layout("Uniform"), data, pt.as_tensor(beta), [Cn],
                      pt.as_tensor(sigma ** 2), pt.as_tensor(rho), design.p, [2],
                      [structure.blocks[0].nlevels]).eval()
    want = st.pointwise_loglik(beta[None], np.array([sigma]), np.array([rho]), sd[None],
                               np.array([[[1, r], [r, 1]]])).sum()
    assert float(ll) == pytest.approx(want, rel=1e-10)


ML_CASES = [(c, GLS["cases"][c]) for c in GLS["cases"]]


@pytest.mark.parametrize("name,case", ML_CASES, ids=[c for c, _ in ML_CASES])
def test_loglik_at_nlme_gls_ml_estimates(name, case):
    ref = case["fits"]["ML"]
    d = pd.read_csv(REF / "gls" / case["csv"])
    design, structure, st, *_ = residual_stats(case["formula"], d, case["correlation"])
    beta = np.array([ref["beta"][k] for k in design.fixed_names])
    ll = st.pointwise_loglik(beta[None], np.array([ref["sigma"]]), np.array([ref["param"]]))
    assert ll.sum() == pytest.approx(ref["logLik"], rel=1e-9)


@pytest.mark.parametrize("name", list(LME["cases"]))
def test_loglik_at_nlme_lme_ml_estimates(name):
    case = LME["cases"][name]
    ref = case["fits"]["ML"]
    d = pd.read_csv(REF / "bayescor" / LME["csv"])
    design, structure, st, *_ = residual_stats(LME["formula"], d, case["correlation"])
    beta = np.array([ref["beta"][k] for k in design.fixed_names])
    ll = st.pointwise_loglik(beta[None], np.array([ref["sigma"]]), np.array([ref["param"]]),
                             np.array([[ref["sd_Mare"]]]), None)
    assert ll.sum() == pytest.approx(ref["logLik"], rel=1e-8)


def test_cs_coefficients_give_the_explicit_inverse():
    T, rho = 5, -0.2
    R = (1 - rho) * np.eye(T) + rho * np.ones((T, T))
    a, b = coefficients("cs", (T,), rho, np.log)
    inv = a[0] * np.eye(T) + a[1] * np.ones((T, T))
    assert np.allclose(inv, np.linalg.inv(R), atol=1e-12)
    assert b[0] == pytest.approx(np.linalg.slogdet(R)[1], rel=1e-12)


@pytest.mark.parametrize("kind,rho", [("cs", 0.5), ("cs", -0.2), ("ar1", 0.7), ("ar1", -0.6)])
def test_correlated_noise_has_covariance_R(kind, rho):
    """Predictive residuals: the sample covariance of many draws is R(rho), gaps included."""
    from workbench.bayes.corstruct import correlated_noise

    codes = np.array([1, 0, 1, 0, 1, 0, 2])
    pos = np.array([4, 0, 0, 1, 1, 3, 0])  # not in order, gaps, a group of one
    S = 200_000
    e = correlated_noise(kind, codes, pos, np.full(S, rho), np.random.default_rng(0))
    same = codes[:, None] == codes[None, :]
    lag = np.abs(pos[:, None] - pos[None, :])
    if kind == "cs":
        R = np.where(same, np.where(lag == 0, 1.0, rho), 0.0)
    else:
        R = np.where(same, rho ** lag, 0.0)
    assert np.allclose(e.T @ e / S, R, atol=0.015)


# --------------------------------------------------------------------------- priors
def _slots(correlation, formula="y ~ x"):
    d = toy(seed=1, with_gaps=False)
    design, structure, st, *_ = residual_stats(formula, d, correlation)
    return design, structure, (st.param, st.tmax)


def test_default_priors_cover_the_admissible_range():
    design, structure, res = _slots("cs(~ 1 | g)")
    pri = resolve_priors(design, structure, None, residual=res)
    lo = -1.0 / (res[1] - 1)
    assert pri["rho"].family == "Uniform" and pri["rho"].args[1] == 1.0
    assert lo <= pri["rho"].args[0] < lo + 1e-4
    design, structure, res = _slots("ar1(~ t | g)")
    assert str(resolve_priors(design, structure, None, residual=res)["phi"]) == "Uniform(-1, 1)"


@pytest.mark.parametrize("key,prior,needle", [
    ("rho", "Uniform(-0.9, 1)", "must lie in"),
    ("rho", "Normal(0, 1)", "rho needs a distribution on an interval (Uniform)"),
    ("rho", "Fixed(1)", "must lie in"),
    ("phi", "Uniform(0, 1)", "correlation='ar1(~ t | g)'"),
])
def test_bad_residual_priors(key, prior, needle):
    design, structure, res = _slots("cs(~ 1 | g)")
    with pytest.raises(SpecError, match=None) as info:
        resolve_priors(design, structure, {key: prior}, residual=res)
    assert needle in str(info.value)


def test_rho_prior_without_a_correlation_structure():
    d = toy(seed=1)
    with pytest.raises(SpecError, match="correlation='cs"):
        workbench.fit("y ~ x + (1 | g)", d, method="bayes", priors={"rho": "Uniform(0, 1)"},
                      **FAST)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("formula,correlation,kw,error,needle", [
    ("y ~ x", "symm(~ t | g)", {}, NotYetSupportedError, "symm"),
    ("y ~ x + (1 | h)", "ar1(~ t | g)", {}, None, None),  # g nested in h: accepted
    ("y ~ x + (1 | g)", "cs(~ 1 | h)", {}, NotYetSupportedError, "not nested"),
    ("y ~ x + (1 | g) + (1 | h)", "ar1(~ t | g)", {}, NotYetSupportedError,
     "several grouping factors"),
    ("y ~ x + (1 | g)", "ar1(~ t | g)", {"parameterization": "noncentered"}, OptionError,
     "marginal"),
    ("y ~ x", "ar1(~ t | g)", {"path": "fast"}, OptionError, "fast"),
    ("y ~ x", "ar1(~ t | g)", {"weights": "w"}, NotYetSupportedError, "weights"),
])
def test_errors_before_sampling(formula, correlation, kw, error, needle):
    d = toy(seed=2).assign(w=1.0)
    if error is None:
        spec = parse_formula(formula)
        corr = parse_correlation(correlation)
        data, codes, pos = correlation_rows(spec, d, corr)
        design = build_design(spec, data)
        ResidualStats(design, build_structure(design), codes, pos, corr.kind, corr.group,
                      corr.text)
        return
    with pytest.raises(error) as info:
        workbench.fit(formula, d, method="bayes", correlation=correlation, **FAST, **kw)
    assert needle in str(info.value)


def test_cli_error_is_one_line(tmp_path, capsys):
    from workbench.cli import main

    path = tmp_path / "toy.csv"
    toy(seed=2).to_csv(path, index=False)
    with pytest.raises(SystemExit) as info:
        main(["fit", "y ~ x + (1 | g)", "--data", str(path), "--method", "bayes",
              "--correlation", "cs(~ 1 | h)", "--prior", "rho=Uniform(0, 1)"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert info.value.code == 1 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not nested" in lines[0]


# --------------------------------------------------------------------------- sampling
@pytest.fixture(scope="module")
def small_fit():
    d = toy(seed=4, groups=12)
    return workbench.fit("y ~ x", d, method="bayes", correlation="ar1(~ t | g)", seed=3,
                         **FAST)


def test_small_fit_record(small_fit):
    """The record's corstruct entry (the REML side's shape), the draws under ``phi`` in the
    posterior and the prior, the per-group likelihood, the summary line."""
    import arviz as az

    cs = small_fit.diagnostics["corstruct"]
    assert {"structure", "form", "Phi", "interval", "groups"} <= set(cs)
    assert cs["structure"] == "ar1" and cs["form"] == "ar1(~ t | g)" and cs["groups"] == 12
    idata = small_fit.state.idata
    phi = idata.posterior["phi"].values.ravel()
    assert cs["Phi"] == pytest.approx(phi.mean())
    assert cs["interval"] == pytest.approx(list(np.quantile(phi, [0.025, 0.975])))
    assert np.all((-1 < phi) & (phi < 1))
    assert idata.prior["phi"].shape[1] == idata.prior["beta"].shape[1]
    assert idata.log_likelihood["y"].dims[-1] == "g_group"
    assert idata.log_likelihood["y"].shape[-1] == 12
    assert "phi" in small_fit.diagnostics["rhat"]
    assert small_fit.diagnostics["priors"]["phi"] == "Uniform(-1, 1)"
    assert "Correlation structure: ar1(~ t | g), Phi =" in small_fit.summary()
    # compare's row: the posterior mean, sd and credible interval, beside the REML rows
    from workbench.compare import structure_params

    rows = structure_params(small_fit)
    assert rows["parameter"].tolist() == ["corstruct[Phi]"]
    row = rows.iloc[0]
    assert row["interval"] == "credible" and row["estimate"] == pytest.approx(phi.mean())
    assert row["se"] == pytest.approx(phi.std(ddof=1))
    assert [row["lower"], row["upper"]] == pytest.approx(cs["interval"])
    import warnings

    with warnings.catch_warnings():  # 12 groups of a few rows: Pareto k warnings expected
        warnings.simplefilter("ignore")
        assert np.isfinite(az.loo(idata).elpd_loo)


def test_small_fit_predictive_and_save_load(small_fit, tmp_path):
    """Predictive draws carry the correlation; a saved fit loads with its prior on phi."""
    yrep = small_fit.posterior_predictive(seed=1)
    assert yrep.shape == (400, small_fit.design.n) and np.all(np.isfinite(yrep))
    assert small_fit.prior_predictive(n=50, seed=1).shape == (50, small_fit.design.n)
    assert small_fit.draws()["phi"].to_numpy() == pytest.approx(
        small_fit.state.idata.posterior["phi"].values.ravel())
    prior_phi = small_fit.prior_draws(n=300, seed=2)["phi"]
    assert prior_phi.between(-1, 1).all() and prior_phi.std() > 0.4  # Uniform(-1, 1): 0.577
    small_fit.save(tmp_path / "fit")
    back = workbench.load(tmp_path / "fit")
    assert back.diagnostics["corstruct"] == small_fit.diagnostics["corstruct"]
    assert str(back.state.priors["phi"]) == "Uniform(-1, 1)"
    np.testing.assert_array_equal(back.state.idata.posterior["phi"].values,
                                  small_fit.state.idata.posterior["phi"].values)


# --------------------------------------------------------------------------- slow: exact
def grid_posterior(d, formula, kind, sigma_scale):
    """The exact marginal posterior of the correlation parameter on a grid, for a flat prior
    on beta, HalfNormal(sigma_scale) on sigma and a uniform prior on the parameter over its
    admissible range: beta integrated analytically, sigma on a grid, everything dense."""
    spec = parse_formula(formula)
    corr = parse_correlation(f"{kind}(~ t | g)")
    data, codes, pos = correlation_rows(spec, d, corr)
    design = build_design(spec, data)
    X, y, n, p = design.X, design.y, design.n, design.p
    tmax = int(np.bincount(codes).max())
    lo = -1.0 / (tmax - 1) if kind == "cs" else -1.0
    rhos = np.linspace(lo, 1, 2002)[1:-1]
    sig = np.linspace(1e-3, 6 * sigma_scale, 3000)
    logpost = np.empty((rhos.size, sig.size))
    same = codes[:, None] == codes[None, :]
    lag = np.abs(pos[:, None] - pos[None, :])
    for i, r in enumerate(rhos):
        R = np.where(same, (np.where(lag == 0, 1.0, r) if kind == "cs" else r ** lag), 0.0)
        Ri = np.linalg.inv(R)
        A = X.T @ Ri @ X
        bhat = np.linalg.solve(A, X.T @ Ri @ y)
        res = y - X @ bhat
        rss = res @ Ri @ res
        base = -0.5 * np.linalg.slogdet(R)[1] - 0.5 * np.linalg.slogdet(A)[1]
        logpost[i] = (base - (n - p) * np.log(sig) - rss / (2 * sig ** 2)
                      - 0.5 * (sig / sigma_scale) ** 2)
    w = np.exp(logpost - logpost.max())
    pr = w.sum(axis=1)
    pr /= pr.sum()
    m = float(np.sum(pr * rhos))
    return m, float(np.sqrt(np.sum(pr * (rhos - m) ** 2)))


@pytest.mark.slow
@pytest.mark.parametrize("kind,sampler", [("cs", "nutpie"), ("ar1", "pymc")])
def test_posterior_of_the_correlation_matches_quadrature(kind, sampler):
    import arviz as az

    rng = np.random.default_rng(11)
    rows = []
    for g in range(6):
        e = rng.normal(size=4)
        e = np.cumsum(e) * 0.6 if kind == "ar1" else e + rng.normal()
        for t in range(4):
            rows.append({"g": g, "t": t, "x": t + rng.normal(), "y": 1 + 0.5 * t + e[t]})
    d = pd.DataFrame(rows)
    fit = workbench.fit("y ~ x", d, method="bayes", correlation=f"{kind}(~ t | g)", seed=5,
                        draws=3000, tune=1000, chains=2, sampler=sampler, progressbar=False,
                        priors={"beta": "Flat()", "sigma": "HalfNormal(2)"})
    assert fit.converged
    name = "rho" if kind == "cs" else "phi"
    draws = fit.state.idata.posterior[name].values  # (chain, draw)
    mean, sd = grid_posterior(d, "y ~ x", kind, 2.0)
    # Monte Carlo standard errors of the mean and of the sd (delta method on the variance)
    mcse_mean = float(draws.std() / math.sqrt(az.ess(draws, method="mean")))
    sq = (draws - draws.mean()) ** 2
    mcse_sd = float(sq.std() / math.sqrt(az.ess(sq, method="mean")) / (2 * draws.std()))
    assert abs(float(draws.mean()) - mean) < 4 * mcse_mean
    assert abs(float(draws.std()) - sd) < 4 * mcse_sd


# --------------------------------------------------------------------------- slow: nlme
@pytest.mark.slow
@pytest.mark.parametrize("name", ["ovary_ar1", "orthodont_cs"])
def test_posterior_near_nlme_gls(name):
    case = GLS["cases"][name]
    ref = case["fits"]["REML"]
    d = pd.read_csv(REF / "gls" / case["csv"])
    fit = workbench.fit(case["formula"], d, method="bayes", correlation=case["correlation"],
                        seed=2, draws=1000, tune=1000, chains=2, progressbar=False)
    assert fit.converged
    cs = fit.diagnostics["corstruct"]
    assert abs(cs[case["param"]] - ref["param"]) < 3 * cs["sd"]
    for k, v in ref["beta"].items():
        assert abs(fit.beta[k] - v) < 3 * fit.beta_se[k]
    assert abs(fit.sigma - ref["sigma"]) < 3 * fit.varcorr[-1]["sdcor_se"]


@pytest.mark.slow
def test_posterior_near_nlme_lme_ar1_with_random_intercept():
    case = LME["cases"]["ovary_ar1_ri"]
    ref = case["fits"]["REML"]
    d = pd.read_csv(REF / "bayescor" / LME["csv"])
    fit = workbench.fit(LME["formula"], d, method="bayes", correlation=case["correlation"],
                        seed=4, draws=1000, tune=1000, chains=2, progressbar=False,
                        sampler="pymc")
    assert fit.converged
    cs = fit.diagnostics["corstruct"]
    assert abs(cs["Phi"] - ref["param"]) < 3 * cs["sd"]
    for k, v in ref["beta"].items():
        assert abs(fit.beta[k] - v) < 3 * fit.beta_se[k]
    b = fit.state.idata.posterior["b_Mare"]
    assert b.shape[2] == 11 and np.all(np.isfinite(b.values))
    assert fit.state.idata.log_likelihood["y"].dims[-1] == "Mare_level"


@pytest.mark.slow
def test_cli_fit_with_a_correlation_and_a_prior_on_phi(tmp_path, capsys):
    from workbench.cli import main

    path = tmp_path / "orthodont.csv"
    pd.read_csv(REF / "gls" / "orthodont.csv").to_csv(path, index=False)
    with pytest.raises(SystemExit) as info:
        main(["fit", "distance ~ age + (1 | Subject)", "--data", str(path), "--method",
              "bayes", "--correlation", "ar1(~ age | Subject)", "--prior", "phi=Uniform(0, 1)",
              "--draws", "300", "--tune", "300", "--seed", "1", "--json", "-"])
    assert info.value.code in (0, None)
    rec = json.loads(capsys.readouterr().out)
    cs = rec["diagnostics"]["corstruct"]
    assert cs["form"] == "ar1(~ age | Subject)" and 0 < cs["interval"][0] <= cs["Phi"] < 1
    assert rec["diagnostics"]["priors"]["phi"] == "Uniform(0, 1)"
