"""Simulation-based calibration (study/sbc.py): the right fitter passes, a fitter with a prior
other than the one that drew the truth fails; the uniformity test and the ECDF bands."""

import numpy as np
import pandas as pd
import pytest

from workbench.study import sbc

PRIORS = {"beta": "Normal(0, 1)", "sd": "HalfNormal(1)", "sigma": "Exponential(1)"}


def _template(groups=8, per=5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    return pd.DataFrame({"y": 0.0, "x": rng.normal(size=g.size), "g": g})


def _pvalues(ranks: pd.DataFrame) -> dict:
    return {p: sbc.sbc_pvalue(r["rank"], int(r["thin_to"].iloc[0]))
            for p, r in ranks.groupby("parameter")}


@pytest.fixture(scope="module")
def right():
    return sbc.sbc_ranks("y ~ 1 + x + (1 | g)", _template(), PRIORS, replicates=100, seed=3,
                         thin_to=19, draws=200, chains=2)


def test_right_fitter_passes(right):
    assert set(right["path"]) == {"fast"}
    assert set(right["parameter"]) == {"beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sigma"}
    p = _pvalues(right)
    assert min(p.values()) > 0.01, p


def test_wrong_prior_fails():
    wrong = sbc.sbc_ranks("y ~ 1 + x + (1 | g)", _template(), PRIORS, replicates=100, seed=3,
                          thin_to=19, fit_priors={"sd": "HalfNormal(0.2)"}, draws=200, chains=2)
    p = _pvalues(wrong)
    assert p["sd[g:(Intercept)]"] < 1e-4, p
    # the too-tight prior pulls the posterior of the group sd down: the truth ranks high
    assert wrong.loc[wrong.parameter == "sd[g:(Intercept)]", "rank"].mean() > 12


def test_uniformity_test_and_bands():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 20, size=400)
    assert sbc.sbc_pvalue(uniform, 19) > 0.01
    skewed = np.minimum(19, rng.integers(0, 20, size=400) + rng.integers(0, 4, size=400))
    assert sbc.sbc_pvalue(skewed, 19) < 1e-6
    with pytest.raises(ValueError):
        sbc.sbc_pvalue(uniform, 19, bins=3)
    z, lo, hi = sbc.ecdf_bands(200, alpha=0.05, sims=1000, rng=np.random.default_rng(2))
    assert np.all(lo < 0) and np.all(hi > 0) and np.all(lo < hi)
    # simultaneous: uniform samples stay inside on about 95% of data sets
    inside = [np.all((d >= lo) & (d <= hi)) for d in
              (sbc.ecdf_diff(rng.integers(0, 100, 200), 99, z) for _ in range(400))]
    assert 0.9 < np.mean(inside) <= 1.0


def test_rank_of_truth():
    rng = np.random.default_rng(0)
    draws = np.arange(100.0)
    assert sbc.rank_of_truth(draws, -1.0, 10, rng) == 0
    assert sbc.rank_of_truth(draws, 1000.0, 10, rng) == 10
    with pytest.raises(ValueError):
        sbc.rank_of_truth(draws[:5], 1.0, 10, rng)


def test_summary_and_figure(right, tmp_path):
    from workbench.study.figures import write_sbc_figure
    from workbench.study.summary import sbc_summary

    wrong = right.assign(method="shifted", rank=np.minimum(19, right["rank"] + 5))
    table = sbc_summary(pd.concat([right.assign(method="bayes"), wrong]))
    assert list(table.columns) == ["parameter", "method", "n", "thin_to", "mean_rank", "sbc_p"]
    assert len(table) == 8 and set(table["n"]) == {100}
    assert (table.loc[table.method == "bayes", "sbc_p"] > 0.01).all()
    assert (table.loc[table.method == "shifted", "sbc_p"] < 1e-6).all()
    path = write_sbc_figure(right, tmp_path)
    assert path.is_file() and path.stat().st_size > 1000
