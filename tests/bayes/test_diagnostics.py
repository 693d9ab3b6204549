"""Convergence diagnostics on synthetic draws (no sampling): a stuck chain, divergences, low
ESS all become plain-string warnings, and fixed parameters are left out."""

import numpy as np
import pandas as pd
import xarray as xr

from workbench.bayes.fit import convergence


class _Idata:
    def __init__(self, diverging):
        self.sample_stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})


def _frame(rng, nchains=2, ndraws=1000, stuck=False):
    sd = np.abs(rng.normal(1.0, 0.2, size=(nchains, ndraws)))
    if stuck:  # one chain stuck near zero, as where a group sd approaches its boundary
        sd[1] = 1e-3 + 1e-5 * rng.normal(size=ndraws)
    return pd.DataFrame({
        "beta[(Intercept)]": rng.normal(size=nchains * ndraws),
        "sd[g:(Intercept)]": sd.ravel(),
        "sigma": np.full(nchains * ndraws, 0.7),  # held fixed: not diagnosed
    })


def test_clean_draws_have_no_warnings():
    rng = np.random.default_rng(0)
    d = convergence(_frame(rng), 2, 1000, _Idata(np.zeros((2, 1000), bool)), {})
    assert d["warnings"] == [] and d["divergences"] == 0
    assert d["max_rhat"] < 1.01 and d["min_ess_bulk"] > 400
    assert "sigma" not in d["rhat"]


def test_stuck_chain_and_divergences_are_flagged():
    rng = np.random.default_rng(1)
    div = np.zeros((2, 1000), bool)
    div[0, :3] = True
    d = convergence(_frame(rng, stuck=True), 2, 1000, _Idata(div), {})
    assert d["divergences"] == 3 and d["max_rhat"] > 1.5
    text = " ".join(d["warnings"])
    assert "3 divergent transitions" in text
    assert "R-hat above 1.01 for sd[g:(Intercept)]" in text
    assert all(isinstance(w, str) for w in d["warnings"])


def test_low_ess_is_flagged():
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(size=(2, 300)), axis=1) * 0.05  # strongly autocorrelated
    frame = pd.DataFrame({"beta[x]": walk.ravel()})
    d = convergence(frame, 2, 300, _Idata(np.zeros((2, 300), bool)), {})
    assert any("bulk ESS below 400 for beta[x]" in w for w in d["warnings"])
