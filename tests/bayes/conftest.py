"""Tiny data sets for the Bayesian fitter's tests (seeded)."""

import numpy as np
import pandas as pd
import pytest


def slopes_data(seed: int = 7, groups: int = 12, per: int = 6) -> pd.DataFrame:
    """``y ~ 1 + x + (1 + x | g)`` data, well identified (sd 1 and 0.5, corr 0.3, sigma 0.7)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    y = 2.0 + 0.5 * x + u[g, 0] + u[g, 1] * x + 0.7 * rng.normal(size=groups * per)
    return pd.DataFrame({"y": y, "x": x, "g": [f"G{i:02d}" for i in g]})


def crossed_data(seed: int = 3) -> pd.DataFrame:
    """``y ~ 1 + (1 | a) + (1 | b)`` data: 6 x 5 crossed cells, 2 rows each."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(6), 10)
    b = np.tile(np.repeat(np.arange(5), 2), 6)
    y = 1.0 + rng.normal(size=6)[a] + 0.7 * rng.normal(size=5)[b] + 0.5 * rng.normal(size=60)
    return pd.DataFrame({"y": y, "a": a, "b": b})


@pytest.fixture(scope="session")
def slopes() -> pd.DataFrame:
    return slopes_data()
