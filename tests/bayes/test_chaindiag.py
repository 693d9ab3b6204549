"""The batched R-hat / bulk ESS / tail ESS (workbench.bayes.chaindiag) give ArviZ's numbers:
``az.rhat``, ``az.ess(method="bulk")`` and ``az.ess(method="tail")`` on each parameter, on
chains with many ties (an independence Metropolis chain repeats its states), autocorrelated
chains, one chain, odd lengths and a constant parameter."""

import arviz as az
import numpy as np
import pytest

from workbench.bayes.chaindiag import bulk_ess, diagnostics


def _metropolis_like(rng, chains, draws, accept=0.55):
    """Draws that repeat the previous value with probability 1 - accept (ties, as IMH)."""
    x = np.empty((chains, draws))
    for c in range(chains):
        cur = rng.normal()
        for t in range(draws):
            if rng.uniform() < accept:
                cur = rng.normal()
            x[c, t] = cur
    return x


def _cases():
    rng = np.random.default_rng(20261130)
    return [
        _metropolis_like(rng, 2, 1000),
        _metropolis_like(rng, 4, 500, accept=0.3),
        _metropolis_like(rng, 2, 1001),
        np.cumsum(rng.standard_normal((2, 1000)), axis=1),  # a random walk: R-hat far from 1
        rng.standard_normal((1, 300)),  # one chain: R-hat is NaN
        np.round(rng.standard_normal((2, 200)), 1),  # heavy ties
        rng.standard_normal((3, 7)),
    ]


def _arviz(x):
    rhat = float(az.rhat(x)) if x.shape[0] > 1 else np.nan
    return rhat, float(az.ess(x, method="bulk")), float(az.ess(x, method="tail"))


@pytest.mark.parametrize("i", range(7))
def test_each_parameter_matches_arviz(i):
    x = _cases()[i]
    got = [float(a[0]) for a in diagnostics(x[None])]
    want = _arviz(x)
    for g, w in zip(got, want):
        if np.isnan(w):
            assert np.isnan(g)
        else:
            assert g == pytest.approx(w, rel=1e-12, abs=0)
    assert float(bulk_ess(x[None])[0]) == got[1]


def test_parameters_batched_as_one_at_a_time():
    rng = np.random.default_rng(5)
    xs = np.stack([_metropolis_like(rng, 2, 400, accept=a) for a in (0.2, 0.5, 0.9)])
    r, b, t = diagnostics(xs)
    for k in range(3):
        assert (r[k], b[k], t[k]) == pytest.approx(_arviz(xs[k]), rel=1e-12)


def test_constant_parameter_has_arviz_ess_and_no_rhat():
    x = np.full((2, 50), 0.7)
    r, b, t = diagnostics(x[None])
    assert np.isnan(r[0]) and np.isnan(float(az.rhat(x)))
    assert b[0] == float(az.ess(x, method="bulk")) and t[0] == float(az.ess(x, method="tail"))
