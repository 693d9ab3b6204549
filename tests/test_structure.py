"""The random-effects structure: stacked sparse Z and per-level cross-products against dense
matrices built from the data by hand."""

import numpy as np
import pandas as pd
import pytest

from workbench.design import build_design
from workbench.structure import build_structure, per_level_cross


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
