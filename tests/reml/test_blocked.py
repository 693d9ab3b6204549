"""The sparse route of the criterion (QDLDL on the later factors' block) against the dense
blocked Cholesky, on a STAR-like design: pupils crossed with teachers nested in schools."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench
import workbench.reml.blocked as blocked
from workbench.design import build_design
from workbench.formula import parse_formula
from workbench.reml.blocked import BlockedSystem

FORMULA = "y ~ x + (1 | pupil) + (1 | teacher) + (1 | school)"


def star_like(seed=20261129, schools=60, teachers_per_school=8, pupils=1500):
    """Each pupil sees two teachers of one school (a few change school)."""
    rng = np.random.default_rng(seed)
    school_of_teacher = np.repeat(np.arange(schools), teachers_per_school)
    rows = []
    for i in range(pupils):
        s = rng.integers(schools)
        ts = rng.choice(np.flatnonzero(school_of_teacher == s), 2, replace=False)
        if rng.random() < 0.03:  # moved school
            ts[1] = rng.integers(school_of_teacher.size)
        for t in ts:
            rows.append((i, t, school_of_teacher[t]))
    d = pd.DataFrame(rows, columns=["pupil", "teacher", "school"])
    u = rng.normal(0, 1.0, pupils)[d.pupil] + rng.normal(0, 0.7, school_of_teacher.size)[d.teacher]
    u += rng.normal(0, 0.5, schools)[d.school]
    d["x"] = rng.normal(50, 10, len(d))
    d["y"] = 3 + 0.2 * d.x + u + rng.normal(0, 1.0, len(d))
    return d.astype({"pupil": str, "teacher": str, "school": str})


@pytest.fixture(scope="module")
def data():
    return star_like()


def test_the_design_takes_the_sparse_route(data):
    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    assert system.nr >= blocked.SPARSE_MIN
    assert system.sparse_route


@pytest.mark.parametrize("theta", [[1.0, 0.7, 0.5], [0.0, 2.0, 0.3], [3.0, 0.0, 1e-4],
                                   [0.0, 0.0, 0.0], [0.2, 1e-6, 5.0]])
def test_sparse_pieces_equal_the_dense_factor(data, theta):
    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    theta = np.array(theta)
    dense = np.array(system.logdets(system.factor(theta, dense=True)))
    sparse = np.array(system.pieces(theta))
    np.testing.assert_allclose(sparse, dense, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(system.logdets(system.factor(theta)), dense, rtol=1e-11,
                               atol=1e-9)


@pytest.mark.parametrize("theta", [[1.0, 0.7, 0.5], [0.0, 2.0, 0.3], [0.2, 1e-6, 5.0]])
def test_the_sparse_factor_solves_as_the_dense_one(data, theta):
    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    theta = np.array(theta)
    fs, fd = system.factor(theta), system.factor(theta, dense=True)
    assert fs.dense is None and fd.sparse is None
    beta_s, us_s = system.solve(fs)
    beta_d, us_d = system.solve(fd)
    np.testing.assert_allclose(beta_s, beta_d, rtol=1e-9)
    for a, b in zip(us_s, us_d):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(system.beta_precision_factor(fs),
                               system.beta_precision_factor(fd), rtol=1e-10)
    np.testing.assert_allclose(fs.Lrr, fd.Lrr)  # formed when asked for


def test_fit_by_either_route_is_the_same(data, monkeypatch):
    a = workbench.fit(FORMULA, data)
    monkeypatch.setattr(blocked, "SPARSE_MIN", 10**9)
    b = workbench.fit(FORMULA, data)
    assert a.converged and b.converged
    assert a.criterion == pytest.approx(b.criterion, rel=1e-10)
    for k in b.beta:
        assert a.beta[k] == pytest.approx(b.beta[k], rel=1e-6)
    for ra, rb in zip(a.varcorr, b.varcorr):
        assert ra["sdcor"] == pytest.approx(rb["sdcor"], rel=1e-5)
    for ra, rb in zip(a.ranef, b.ranef):
        assert ra["level"] == rb["level"]
        assert ra["value"] == pytest.approx(rb["value"], rel=1e-5, abs=1e-6)
        assert ra["cond_sd"] == pytest.approx(rb["cond_sd"], rel=1e-5)


def test_a_dense_later_block_keeps_the_dense_route():
    """Every pupil sees most teachers (InstEval-like): the sparse factor would fill in."""
    rng = np.random.default_rng(7)
    rows = [(i, t) for i in range(600) for t in rng.choice(450, 40, replace=False)]
    d = pd.DataFrame(rows, columns=["s", "d"]).astype(str)
    d["y"] = rng.normal(size=len(d))
    system = BlockedSystem(build_design(parse_formula("y ~ 1 + (1 | s) + (1 | d)"), d))
    assert system.nr >= blocked.SPARSE_MIN
    assert not system.sparse_route


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | pupil) + (1 | teacher)",
    "y ~ x + (1 + x | teacher) + (1 | school)",
])
def test_the_rest_built_dense_or_sparse_is_the_same(data, formula, monkeypatch):
    """Small several-factor designs build [Z_2 .. Z_K, X, y] dense; big ones by scipy.sparse."""
    small = data[data.school.isin(sorted(data.school.unique())[:6])]
    design = build_design(parse_formula(formula), small)
    dense = BlockedSystem(design)
    assert design.n * dense.nr**2 <= blocked.DENSE_BUILD_MAX
    monkeypatch.setattr(blocked, "DENSE_BUILD_MAX", 0)
    sparse = BlockedSystem(design)
    np.testing.assert_allclose(dense.Arr, sparse.Arr, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(dense.A1r.toarray(), sparse.A1r.toarray(), rtol=1e-13, atol=1e-9)
    theta = dense.structure.theta0 * 0.7 + 0.1
    for system in (dense, sparse):
        f = system.factor(theta)
        system.value = np.array(system.logdets(f))
        system.grad = system.gradient(f, 0.0, 1.0, 3.0)
    np.testing.assert_allclose(dense.value, sparse.value, rtol=1e-11)
    np.testing.assert_allclose(dense.grad, sparse.grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("theta", [[1.0, 0.7, 0.5], [0.0, 2.0, 0.3], [0.2, 1e-6, 5.0]])
def test_conditional_variances_by_the_selected_inverse_equal_the_dense_inverse(data, theta,
                                                                               monkeypatch):
    design = build_design(parse_formula(FORMULA), data)
    sparse = BlockedSystem(design)
    theta = np.array(theta)
    got = sparse.cond_inverse_blocks(sparse.factor(theta))
    monkeypatch.setattr(blocked, "SPARSE_MIN", 10**9)
    dense = BlockedSystem(design)
    assert sparse.sparse_route and not dense.sparse_route
    want = dense.cond_inverse_blocks(dense.factor(theta))
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)


def test_selected_inverse_entries_equal_the_dense_inverse(data):
    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    theta = np.array([0.8, 0.6, 0.4])
    f = system.factor(theta)
    nu = system.nu_rest
    Suu = f.Lrr[:nu, :nu] @ f.Lrr[:nu, :nu].T
    inv = np.linalg.inv(Suu)
    ti, tj = np.divmod(system._targets, system.nr)  # S_uu's pattern: level pairs, diagonal
    on_u = ti < nu
    i = np.concatenate([ti[on_u], tj[on_u], np.arange(nu)])
    j = np.concatenate([tj[on_u], ti[on_u], np.arange(nu)])
    got = system._sparse.inverse_entries(theta, i, j)
    np.testing.assert_allclose(got, inv[i, j], rtol=1e-10, atol=1e-13)


def test_pair_map_by_marking_equals_the_sorted_one(data, monkeypatch):
    design = build_design(parse_formula(FORMULA), data)
    a = BlockedSystem(design)
    monkeypatch.setattr(blocked, "DENSE_KEY_MAX", 0)
    b = BlockedSystem(design)
    np.testing.assert_array_equal(a._targets, b._targets)
    assert (a._pairs != b._pairs).nnz == 0


def test_the_flop_bound_never_excludes_a_sparse_system(data):
    """The cheap lower bound on the sparse factor's flop ratio is below the measured ratio."""
    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    nu = system.nu_rest
    i, j = np.divmod(system._targets, system.nr)
    z = np.count_nonzero((i < nu) & (i != j)) + nu
    assert 3.0 * z * z / nu**4 <= system._sparse.flop_ratio


Q3 = "y ~ x + (1 + x + I(x / 10 - 5)^2 | teacher)"


@pytest.mark.parametrize("formula,theta,stack", [
    ("y ~ x + (1 | teacher)", [0.7], 64),
    ("y ~ x + (1 + x | teacher)", [0.9, -0.03, 0.02], 64),
    ("y ~ x + (1 + x | teacher)", [0.0, 0.05, 0.0], 64),
    (Q3, [0.9, -0.03, 0.1, 0.02, 0.01, 0.3], 10**9),  # q = 3 as a LAPACK stack
    (Q3, [0.9, -0.03, 0.1, 0.02, 0.01, 0.3], 0),  # q = 3 by loops over the levels
])
def test_the_written_out_leading_factor_is_the_cholesky_factor(data, formula, theta, stack,
                                                              monkeypatch):
    """q = 1, 2 are written out on level-last vectors, q >= 3 factored as a stack (few levels)
    or by loops: each level's L_l is the Cholesky factor of lam' A_l lam + I and
    T_l = L_l^-1 lam'."""
    monkeypatch.setattr(blocked, "STACK_MAX_LEVELS", stack)
    system = BlockedSystem(build_design(parse_formula(formula), data))
    theta = np.array(theta)
    f = system.factor(theta)
    lam = f.lambdas[0]
    q = lam.shape[0]
    for level in range(0, system.L1, 37):
        M = lam.T @ system.A11[:, :, level] @ lam + np.eye(q)
        L = np.linalg.cholesky(M)
        np.testing.assert_allclose(f.L11[level], L, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(f.T1[level], np.linalg.solve(L, lam.T), rtol=1e-12,
                                   atol=1e-14)


def test_bobyqa_and_cobyqa_reach_the_same_optimum(data, monkeypatch):
    """The several-factor search runs NLopt's BOBYQA (lme4's nloptwrap); SciPy's COBYQA, the
    fallback without NLopt, finds the same optimum."""
    import sys

    pytest.importorskip("nlopt")
    a = workbench.fit(FORMULA, data)
    assert a.diagnostics["optimizer"]["stages"][0]["stage"] == "BOBYQA"
    monkeypatch.setitem(sys.modules, "nlopt", None)  # import fails: the fallback
    b = workbench.fit(FORMULA, data)
    assert b.diagnostics["optimizer"]["stages"][0]["stage"] == "COBYQA"
    assert a.converged and b.converged
    assert a.criterion == pytest.approx(b.criterion, rel=1e-10)
    for k in b.beta:
        assert a.beta[k] == pytest.approx(b.beta[k], rel=1e-5)


def test_a_capped_bobyqa_search_is_not_converged(data):
    pytest.importorskip("nlopt")
    from workbench.reml.criterion import make_criterion
    from workbench.reml.optimize import column_scale, optimize_theta

    system = BlockedSystem(build_design(parse_formula(FORMULA), data))
    st = system.structure
    scale = column_scale(st)
    _, _, summary = optimize_theta(make_criterion(system), st.theta0 * scale, st.lower,
                                   st.diagonal, scale=scale, blocks=st.blocks, maxiter=5,
                                   search="BOBYQA")
    assert summary.stages[0].stage == "BOBYQA"
    assert summary.stages[0].evaluations <= 5
    assert not summary.converged
    assert "gradient" in summary.verdict.reason


def test_the_q3_gradient_on_stacks_equals_the_loops(data, monkeypatch):
    """One factor with q = 3 and few levels: the gradient's products on (L, q, q) stacks give
    the gradient of the loops over the levels (and both the criterion's differences)."""
    from workbench.reml.criterion import make_criterion, make_objective

    small = data[data.school.isin(sorted(data.school.unique())[:5])]
    design = build_design(parse_formula(Q3), small)
    theta = np.array([0.9, -0.03, 0.1, 0.02, 0.01, 0.3])
    stacked = BlockedSystem(design)
    assert stacked.L1 <= blocked.STACK_MAX_LEVELS
    g_stack = make_objective(stacked)(theta)[1]
    monkeypatch.setattr(blocked, "STACK_MAX_LEVELS", 0)
    g_loop = make_objective(BlockedSystem(design))(theta)[1]
    np.testing.assert_allclose(g_stack, g_loop, rtol=1e-10, atol=1e-10)
    crit = make_criterion(design)
    h = 1e-6
    fd = [(crit(theta + h * e) - crit(theta - h * e)) / (2 * h) for e in np.eye(theta.size)]
    np.testing.assert_allclose(g_stack, fd, rtol=1e-5, atol=1e-4)
