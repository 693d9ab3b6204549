"""A Bayesian fit is a pure function of (data, formula, priors, options, seed).

The same draws, bit for bit, whether the compiled model is new or was cached after fitting
other data, and whatever the number of chains run in parallel; for both samplers.
"""

import numpy as np
import pytest

import workbench
from tests.bayes.conftest import slopes_data
from workbench.bayes.cache import clear_cache
from workbench.bayes.sample import nutpie_available

FORMULA = "y ~ 1 + x + (1 + x | g)"
OPTS = dict(method="bayes", draws=150, tune=150, chains=2, seed=11, progressbar=False)
SAMPLERS = ["pymc"] + (["nutpie"] if nutpie_available() else [])


def _draws(fit) -> np.ndarray:
    return fit.draws().to_numpy()


@pytest.fixture(scope="module")
def two_data_sets():
    # same shape, different values: one cached compiled model serves both
    return slopes_data(seed=21, groups=10, per=5), slopes_data(seed=22, groups=10, per=5)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cached_refit_equals_fresh_fit(sampler, two_data_sets):
    first, second = two_data_sets
    clear_cache()
    fresh = _draws(workbench.fit(FORMULA, second, sampler=sampler, **OPTS))
    clear_cache()
    workbench.fit(FORMULA, first, sampler=sampler, **OPTS)  # leaves a compiled model behind
    cached = _draws(workbench.fit(FORMULA, second, sampler=sampler, **OPTS))
    np.testing.assert_array_equal(cached, fresh)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_parallel_chains_do_not_change_draws(sampler, two_data_sets):
    data = two_data_sets[0]
    one = _draws(workbench.fit(FORMULA, data, sampler=sampler, cores=1, **OPTS))
    two = _draws(workbench.fit(FORMULA, data, sampler=sampler, cores=2, **OPTS))
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_another_seed_gives_other_draws(sampler, two_data_sets):
    data = two_data_sets[0]
    a = _draws(workbench.fit(FORMULA, data, sampler=sampler, **OPTS))
    b = _draws(workbench.fit(FORMULA, data, sampler=sampler, **{**OPTS, "seed": 12}))
    assert not np.array_equal(a, b)
