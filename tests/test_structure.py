"""The random-effects structure: stacked sparse Z and per-level cross-products against dense
matrices built from the data by hand."""

import numpy as np
import pandas as pd
import pytest

from workbench.design import build_design
from workbench.structure import INDICATOR_MIN_ROWS, build_structure, level_runs, per_level_cross


def _data(seed=0, J=7, K=4, m=5):
    rng = np.random.default_rng(seed)
    n = J * m
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "g": rng.permutation(np.repeat([f"g{j}" for j in range(J)], m)),
        "h": rng.integers(0, K, size=n).astype(str),
    })


def _dense_Z(df, design, st):
    """Z by hand: for each block, level and column, the column's values on that level's rows."""
    cols = []
    for blk in st.blocks:
        for lev in blk.levels:
            rows = (df[blk.group].astype(str) == lev).to_numpy()  # no NA rows in these data
            for k, c in enumerate(blk.columns):
                vals = np.ones(len(df)) if c == "(Intercept)" else df[c].to_numpy()
                cols.append(np.where(rows, vals, 0.0))
    return np.column_stack(cols)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g) + (1 | h)",
                                     "y ~ 1 + (1 | g) + (0 + x | g)"])
def test_stacked_Z_is_the_indicator_times_columns_matrix(formula):
    df = _data()
    design = build_design(formula, df)
    st = build_structure(design)
    Z = st.stacked_Z()
    assert Z.shape == (design.n, st.nranef)
    np.testing.assert_array_equal(Z.toarray(), _dense_Z(df, design, st))


def test_Z_times_b_is_the_sum_of_each_rows_level_effects():
    df = _data(1)
    design = build_design("y ~ x + (x | g) + (1 | h)", df)
    st = build_structure(design)
    rng = np.random.default_rng(2)
    bs = [rng.normal(size=(blk.nlevels, blk.q)) for blk in st.blocks]
    want = sum((blk.Z * b[blk.codes]).sum(axis=1) for blk, b in zip(st.blocks, bs))
    got = st.stacked_Z() @ np.concatenate([b.ravel() for b in bs])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    blk, b = st.blocks[0], bs[0]
    np.testing.assert_allclose(blk.sparse_Z() @ b.ravel(), (blk.Z * b[blk.codes]).sum(axis=1),
                               rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_per_level_cross_products_equal_dense_Zt_W_Z_blocks(weighted):
    df = _data(3)
    design = build_design("y ~ x + (x | g)", df)
    blk = build_structure(design).blocks[0]
    w = np.random.default_rng(4).uniform(0.5, 2.0, design.n) if weighted else None
    Zd = blk.sparse_Z().toarray()
    W = np.diag(w if weighted else np.ones(design.n))
    ZWZ = Zd.T @ W @ Zd
    ZWX = Zd.T @ W @ design.X
    q = blk.q
    H = blk.cross(blk.Z, blk.Z, w, symmetric=True)
    HX = blk.cross(blk.Z, design.X, w)
    assert H.shape == (q, q, blk.nlevels) and HX.shape == (q, design.p, blk.nlevels)
    for lev in range(blk.nlevels):
        sl = slice(lev * q, (lev + 1) * q)
        np.testing.assert_allclose(H[:, :, lev], ZWZ[sl, sl], rtol=1e-13)
        np.testing.assert_allclose(HX[:, :, lev], ZWX[sl], rtol=1e-13, atol=1e-13)
    # Z'WZ has no entries between different levels of one factor
    off = ZWZ.copy()
    for lev in range(blk.nlevels):
        off[lev * q:(lev + 1) * q, lev * q:(lev + 1) * q] = 0.0
    assert not off.any()


def test_per_level_cross_counts_an_intercept_column():
    codes = np.array([0, 2, 2, 1, 2])
    ones = np.ones((5, 1))
    out = per_level_cross(codes, ones, ones, 4, symmetric=True)
    np.testing.assert_array_equal(out[0, 0], [1, 1, 3, 0])


def test_per_level_cross_on_sorted_rows_sums_as_bincount_does():
    """Rows sorted by level take the indicator-matrix route; each level's rows are summed in
    order from zero, as ``np.bincount`` sums them: the same numbers to the last bit."""
    rng = np.random.default_rng(5)
    m = INDICATOR_MIN_ROWS // 40
    codes = np.repeat(np.arange(50), rng.integers(m, 2 * m, 50))
    n = codes.size
    assert n >= INDICATOR_MIN_ROWS  # the indicator's route
    U = np.column_stack([np.ones(n), rng.normal(size=n) * 1e3])
    V = np.column_stack([U, rng.standard_cauchy(size=n)])
    w = rng.uniform(0.1, 10.0, n)
    assert level_runs(codes, 50) is not None
    for weights in (None, w):
        got = per_level_cross(codes, U, V, 50, weights)
        ww = np.ones(n) if weights is None else weights
        for a in range(2):
            for b in range(3):
                prod = U[:, a] * V[:, b] if weights is None else ww * U[:, a] * V[:, b]
                want = np.bincount(codes, weights=prod, minlength=50)
                np.testing.assert_array_equal(got[a, b], want)
    sym = per_level_cross(codes, U, U, 50, symmetric=True)
    np.testing.assert_array_equal(sym[0, 0], np.bincount(codes))
    np.testing.assert_array_equal(sym[0, 1], sym[1, 0])
    np.testing.assert_array_equal(sym[1, 1], np.bincount(codes, weights=U[:, 1] * U[:, 1]))


@pytest.mark.parametrize("codes, nlevels, sorted_", [
    ([0, 0, 1, 1, 1, 2], 3, True),
    ([0, 1, 0, 2], 3, False),      # not sorted
    ([0, 0, 2, 2], 3, False),      # level 1 has no rows
    ([0, 0, 1, 1], 3, False),      # the last level has no rows
    ([1, 1, 2], 3, False),         # the first level has no rows
])
def test_level_runs_only_for_rows_sorted_by_level_with_every_level_present(codes, nlevels,
                                                                          sorted_):
    runs = level_runs(np.array(codes), nlevels)
    assert (runs is not None) == sorted_
    if sorted_:
        np.testing.assert_array_equal(runs, [0, 2, 5])
    # either route gives the per-level sums
    V = np.arange(1.0, len(codes) + 1)[:, None]
    out = per_level_cross(np.array(codes), np.ones((len(codes), 1)), V, nlevels)
    np.testing.assert_array_equal(out[0, 0], np.bincount(codes, weights=V[:, 0],
                                                         minlength=nlevels))
