"""The collapsed likelihood against the dense GLS density, and the exact conditional draws of
the random effects against their closed-form Gaussian (no MCMC)."""

import numpy as np
import pytest
from scipy import stats

from tests.bayes.conftest import crossed_data, slopes_data
from workbench import datasets
from workbench.bayes.marginal import draw_ranef, loglik_graph, sufficient_stats
from workbench.design import build_design
from workbench.structure import build_structure


def _case(which):
    if which == "slopes":
        return build_design("y ~ 1 + x + (1 + x | g)", slopes_data())
    if which == "two-terms":
        return build_design("y ~ 1 + x + (1 | g) + (0 + x | g)", slopes_data())
    if which == "crossed":
        return build_design("y ~ 1 + (1 | a) + (1 | b)", crossed_data())
    if which == "known":
        return build_design("y ~ 1 + (1 | school)", datasets.load("eight_schools"),
                            known_sd="sigma")
    raise KeyError(which)


def _params(st, rng):
    """Random block Cholesky factors (respecting the structural zeros) and a residual variance."""
    chols = []
    for blk in st.blocks:
        C = np.zeros((blk.q, blk.q))
        for _, sl in blk.terms:
            m = sl.stop - sl.start
            A = rng.normal(size=(m, m))
            C[sl, sl] = np.linalg.cholesky(A @ A.T + 0.3 * np.eye(m))
        chols.append(C)
    return chols


def _dense(design, st, chols, s2):
    Z = st.stacked_Z().toarray()
    G = np.zeros((Z.shape[1],) * 2)
    off = 0
    for blk, C in zip(st.blocks, chols):
        for lev in range(blk.nlevels):
            G[off:off + blk.q, off:off + blk.q] = C @ C.T
            off += blk.q
    R = np.diag(design.known_sd ** 2) if design.known_sd is not None else s2 * np.eye(design.n)
    return Z, G, Z @ G @ Z.T + R


@pytest.mark.parametrize("which", ["slopes", "two-terms", "crossed", "known"])
def test_collapsed_loglik_equals_dense_gls_density(which):
    import pytensor.tensor as pt

    design = _case(which)
    st = build_structure(design)
    rng = np.random.default_rng(11)
    chols = _params(st, rng)
    s2 = 1.0 if design.known_sd is not None else 0.6
    beta = rng.normal(size=design.p)
    _, _, V = _dense(design, st, chols, s2)
    ref = stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)
    data = {k: pt.constant(v) for k, v in sufficient_stats(design, st).items()}
    nested = [[[None if C[a, i] == 0 else pt.constant(C[a, i]) for i in range(C.shape[1])]
               for a in range(C.shape[0])] for C in chols]
    got = loglik_graph(data, pt.constant(beta), nested, pt.constant(s2),
                       [b.q for b in st.blocks], [b.nlevels for b in st.blocks]).eval()
    assert got == pytest.approx(ref, rel=1e-10, abs=1e-8)
    if len(st.blocks) == 1:  # nothing of size n in the one-factor statistics
        J, q, p = st.blocks[0].nlevels, st.blocks[0].q, design.p
        shapes = {k: np.shape(v) for k, v in sufficient_stats(design, st).items()}
        assert shapes == {"m_XtWX": (p, p), "m_XtWy": (p,), "m_ytWy": (), "m_n": (),
                          "m_sumlogw": (), "m_ZtWZ": (J, q, q), "m_ZtWX": (J, q, p),
                          "m_ZtWy": (J, q)}


@pytest.mark.parametrize("which", ["slopes", "crossed", "known"])
def test_conditional_draws_match_closed_form(which):
    """Given (beta, G, s2), b | y ~ N(G Z' V^-1 (y - X beta), G - G Z' V^-1 Z G): compare the
    mean and covariance of many exact draws with the dense formulas."""
    design = _case(which)
    st = build_structure(design)
    rng = np.random.default_rng(5)
    chols = _params(st, rng)
    s2 = 1.0 if design.known_sd is not None else 0.6
    beta = rng.normal(size=design.p)
    Z, G, V = _dense(design, st, chols, s2)
    Vi = np.linalg.inv(V)
    mean = G @ Z.T @ Vi @ (design.y - design.X @ beta)
    cov = G - G @ Z.T @ Vi @ Z @ G
    S = 4000 if len(st.blocks) == 1 else 1500
    out = draw_ranef(sufficient_stats(design, st), np.tile(beta, (S, 1)),
                     [np.broadcast_to(C, (S,) + C.shape) for C in chols], np.full(S, s2),
                     [b.q for b in st.blocks], [b.nlevels for b in st.blocks],
                     np.random.default_rng(2))
    draws = np.concatenate([b.reshape(S, -1) for b in out], axis=1)
    sd = np.sqrt(np.diag(cov))
    z = (draws.mean(axis=0) - mean) / (sd / np.sqrt(S))
    assert np.max(np.abs(z)) < 4.5
    emp = np.cov(draws.T)
    # sampling sd of a covariance entry is about sqrt((s_ii s_jj + s_ij^2) / S)
    tol = 5 * np.sqrt((np.outer(sd**2, sd**2) + cov**2) / S)
    assert np.all(np.abs(emp - cov) < tol)
