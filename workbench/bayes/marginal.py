"""The collapsed (GLS) likelihood and the exact conditional draws of the random effects.

With the random effects integrated out, ``y ~ N(X beta, V)``, ``V = Z G Z' + s2 W^-1`` where
``W = diag(w)`` (``w = 1`` and ``s2 = sigma^2``, or ``w = 1 / known_sd^2`` and ``s2 = 1``).  Write
``G = Lam Lam'`` (``Lam`` block diagonal: ``kron(I_levels, C)`` per factor, ``C`` the q x q
Cholesky factor of that factor's covariance).  With ``M = I + Lam' Z'WZ Lam / s2`` and
``v = Lam' Z'W r / s2``, ``r = y - X beta``, Woodbury and the determinant lemma give::

    log det V  = n log s2 - sum log w + log det M
    r' V^-1 r  = r'Wr / s2 - v' M^-1 v

For one grouping factor ``M`` is block diagonal (one q x q block per level), so everything is a
function of per-level sufficient statistics ``Z_j'WZ_j``, ``Z_j'WX_j``, ``Z_j'Wy_j`` and of
``X'WX``, ``X'Wy``, ``y'Wy``: nothing of size n enters the graph, and the q x q Cholesky factors
are unrolled into elementwise operations over the levels.  For several factors ``M`` is dense in
the stacked random effects (all levels of all factors); it is used while their number is at
most :data:`MAX_DENSE`.

Given (beta, G, s2) the random effects are Gaussian: ``b = Lam u``, ``u ~ N(M^-1 v, M^-1)``;
:func:`draw_ranef` draws them exactly, per posterior draw.
"""

from __future__ import annotations

import math

import numpy as np

MAX_DENSE = 500  # most stacked random effects for the dense (several-factor) marginal form
CHUNK = 2**14  # (draws x levels) elements per batch of elementwise work: the temporaries of a
# batch stay in cache (2-3x faster than one batch of all draws at 2,000 draws x 100 levels)


def _weights(design) -> tuple[np.ndarray, bool]:
    """Row precisions relative to s2 (prior weights, 1 / known_sd^2), and whether s2 = 1."""
    w = np.ones(design.n) if design.weights is None else design.weights
    if design.known_sd is None:
        return w, False
    return w / design.known_sd ** 2, True


def sufficient_stats(design, structure) -> dict[str, np.ndarray]:
    """The statistics the marginal likelihood needs (keys prefixed ``m_``)."""
    w, _ = _weights(design)
    X, y = design.X, design.y_work  # the offset is held at coefficient 1
    out = {
        "m_XtWX": (X * w[:, None]).T @ X,
        "m_XtWy": X.T @ (w * y),
        "m_ytWy": np.asarray(float(np.sum(w * y * y))),
        "m_n": np.asarray(float(design.n)),
        "m_sumlogw": np.asarray(float(np.sum(np.log(w)))),
    }
    if len(structure.blocks) == 1:
        blk = structure.blocks[0]
        out["m_ZtWZ"] = np.moveaxis(blk.cross(blk.Z, blk.Z, w), -1, 0)
        out["m_ZtWX"] = np.moveaxis(blk.cross(blk.Z, X, w), -1, 0)
        out["m_ZtWy"] = np.moveaxis(blk.cross(blk.Z, y[:, None], w)[:, 0], -1, 0)
    else:
        Z = structure.stacked_Z()
        ZW = Z.multiply(w[:, None]).tocsr()
        out["m_ZtWZ"] = np.asarray((ZW.T @ Z).todense())
        out["m_ZtWX"] = np.asarray(ZW.T @ X)
        out["m_ZtWy"] = np.asarray(ZW.T @ y).ravel()
    return out


def n_stacked(structure) -> int:
    """Total number of random effects (levels x columns over all factors)."""
    return structure.nranef


# --------------------------------------------------------------------------- PyTensor graph
def _unrolled_chol_terms(M, v, q):
    """log det and v' M^-1 v for a stack of q x q SPD matrices given as nested lists of vectors."""
    import pytensor.tensor as pt

    Lm = [[None] * q for _ in range(q)]
    logdet = 0.0
    for j in range(q):
        s = M[j][j]
        for k in range(j):
            s = s - Lm[j][k] ** 2
        Lm[j][j] = pt.sqrt(s)
        logdet = logdet + 2.0 * pt.log(Lm[j][j])
        for i in range(j + 1, q):
            t = M[i][j]
            for k in range(j):
                t = t - Lm[i][k] * Lm[j][k]
            Lm[i][j] = t / Lm[j][j]
    quad = 0.0
    wv = []
    for i in range(q):
        t = v[i]
        for k in range(i):
            t = t - Lm[i][k] * wv[k]
        wv.append(t / Lm[i][i])
        quad = quad + wv[i] ** 2
    return logdet, quad


def loglik_graph(data: dict, beta, chols: list, s2, q_list: list[int], levels: list[int]):
    """PyTensor log likelihood of y given (beta, G, s2) with the random effects integrated out.

    Parameters
    ----------
    data : dict
        The ``m_*`` statistics as tensors (``pm.Data``).
    beta : tensor (p,)
    chols : list of nested lists
        Per factor block, the Cholesky factor ``C`` of its covariance as ``C[a][i]`` scalar
        tensors (``None`` for a structural zero).
    s2 : tensor
        Residual variance (1 with known sds).
    q_list, levels : list of int
        Columns and levels of each block (static).
    """
    import pytensor.tensor as pt

    from .lkj import stack_matrix

    n, sumlogw = data["m_n"], data["m_sumlogw"]
    rWr = data["m_ytWy"] - 2.0 * pt.dot(beta, data["m_XtWy"]) + pt.dot(beta, pt.dot(data["m_XtWX"], beta))
    if len(chols) == 1:
        C, q = chols[0], q_list[0]
        A, ZX, Zy = data["m_ZtWZ"], data["m_ZtWX"], data["m_ZtWy"]
        u = [Zy[:, a] - pt.dot(ZX[:, a, :], beta) for a in range(q)]
        # T[a][j] = sum_b A_ab C_bj ; M_ij = delta_ij + sum_a C_ai T_aj / s2 ; v_i = sum_a C_ai u_a / s2
        T = [[None] * q for _ in range(q)]
        for a in range(q):
            for j in range(q):
                terms = [A[:, a, b] * C[b][j] for b in range(q) if C[b][j] is not None]
                T[a][j] = sum(terms[1:], terms[0]) if terms else None
        M = [[None] * q for _ in range(q)]
        for i in range(q):
            for j in range(i + 1):
                terms = [C[a][i] * T[a][j] for a in range(q)
                         if C[a][i] is not None and T[a][j] is not None]
                val = sum(terms[1:], terms[0]) / s2 if terms else 0.0
                M[i][j] = M[j][i] = (1.0 + val) if i == j else val
        v = []
        for i in range(q):
            terms = [C[a][i] * u[a] for a in range(q) if C[a][i] is not None]
            v.append(sum(terms[1:], terms[0]) / s2)
        logdet, quad = _unrolled_chol_terms(M, v, q)
        logdet, quad = pt.sum(logdet), pt.sum(quad)
    else:
        u = data["m_ZtWy"] - pt.dot(data["m_ZtWX"], beta)
        A = data["m_ZtWZ"]
        mats = [stack_matrix(C) for C in chols]
        offs = np.concatenate([[0], np.cumsum([L * q for L, q in zip(levels, q_list)])])
        rows = []
        vs = []
        for b1, (C1, q1, L1) in enumerate(zip(mats, q_list, levels)):
            row = []
            for b2, (C2, q2, L2) in enumerate(zip(mats, q_list, levels)):
                sub = A[offs[b1]:offs[b1 + 1], offs[b2]:offs[b2 + 1]].reshape((L1, q1, L2, q2))
                t = pt.tensordot(sub, C2, axes=[[3], [0]])  # (L1, q1, L2, q2')
                t = pt.tensordot(t, C1, axes=[[1], [0]])  # (L1, L2, q2', q1')
                row.append(t.dimshuffle(0, 3, 1, 2).reshape((L1 * q1, L2 * q2)))
            rows.append(pt.concatenate(row, axis=1))
            vs.append(pt.dot(u[offs[b1]:offs[b1 + 1]].reshape((L1, q1)), C1).reshape((L1 * q1,)))
        Q = int(offs[-1])
        M = pt.eye(Q) + pt.concatenate(rows, axis=0) / s2
        v = pt.concatenate(vs) / s2
        Lm = pt.linalg.cholesky(M)
        logdet = 2.0 * pt.sum(pt.log(pt.diag(Lm)))
        wv = pt.linalg.solve_triangular(Lm, v, lower=True)
        quad = pt.sum(wv ** 2)
    return -0.5 * (n * math.log(2 * math.pi) - sumlogw + n * pt.log(s2) + logdet + rWr / s2 - quad)


# --------------------------------------------------------------------------- conditional draws
def one_blas_thread():
    """A context in which BLAS runs on one thread (:func:`workbench.blas.blas_limits`).

    The products here are small (thousands of rows, tens of columns): on a busy machine,
    OpenBLAS's threads made a fast-path fit 3x slower in wall and CPU time (55 ms instead of
    18 ms at 30 x 5 with two threads and a load of 5)."""
    from ..blas import blas_limits

    return blas_limits(1, user_api="blas")


def upper_pairs(q: int) -> list[tuple[int, int]]:
    """The (i, k), i <= k, of a symmetric q x q matrix's unique entries, row by row."""
    return [(i, k) for i in range(q) for k in range(i, q)]


def congruence_coefficients(C: np.ndarray, sym_inner: bool) -> np.ndarray:
    """Coefficients of ``C' S C`` (``sym_inner``) or ``C S C'`` in the unique entries of a
    symmetric ``S``, per draw: (draws, u, u) with u = q(q+1)/2 (:func:`upper_pairs` order).

    ``(C'SC)_ik = sum_{a<=b} S_ab (C_ai C_bk + [a != b] C_bi C_ak)`` and
    ``(CSC')_ab = sum_{i<=k} S_ik (C_ai C_bk + [i != k] C_ak C_bi)``: a matrix product of these
    coefficients with the stacked unique entries of many ``S`` (levels) congruences them all."""
    U = np.array(upper_pairs(C.shape[1]))
    if sym_inner:  # rows (i, k) of the result, columns (a, b) of S
        i, k = U[:, 0][:, None], U[:, 1][:, None]
        a, b = U[:, 0][None, :], U[:, 1][None, :]
        return C[:, a, i] * C[:, b, k] + (a != b) * C[:, b, i] * C[:, a, k]
    a, b = U[:, 0][:, None], U[:, 1][:, None]  # rows (a, b) of the result, columns (i, k) of S
    i, k = U[:, 0][None, :], U[:, 1][None, :]
    return C[:, a, i] * C[:, b, k] + (i != k) * C[:, a, k] * C[:, b, i]


def level_matrices(Avec: np.ndarray, C: np.ndarray, inv: np.ndarray,
                   coef: np.ndarray | None = None) -> np.ndarray:
    """Unique entries of ``M_l = I + C' A_l C / s2`` per draw and level: (draws, u, levels).

    ``Avec`` holds the unique entries of every level's ``A_l = Z_l'WZ_l`` and a last row of
    ones (u + 1, levels; :func:`unique_entries`), ``C`` (draws, q, q) the covariance factors,
    ``inv`` (draws, 1) ``1 / s2``; ``coef`` their :func:`level_coefficients` when computed
    already.  One matrix product (draws x u, u + 1) @ (u + 1, levels) forms all of them."""
    S = C.shape[0]
    u = Avec.shape[0] - 1
    if coef is None:
        coef = level_coefficients(C, inv)
    return (coef.reshape(S * u, u + 1) @ Avec).reshape(S, u, Avec.shape[1])


def level_coefficients(C: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """The coefficients (draws, u, u + 1) of :func:`level_matrices`: those of ``C' A C / s2``
    in A's unique entries, and the identity's in the row of ones."""
    q = C.shape[1]
    coef = congruence_coefficients(C, True) * inv[:, :, None]
    eye = np.array([[1.0 if i == k else 0.0] for i, k in upper_pairs(q)])
    return np.concatenate([coef, np.broadcast_to(eye, (C.shape[0],) + eye.shape)], axis=2)


def unique_entries(A: np.ndarray) -> np.ndarray:
    """(levels, q, q) symmetric matrices -> their unique entries and a row of ones
    (u + 1, levels), the right factor of :func:`level_matrices`."""
    return np.stack([A[:, i, k] for i, k in upper_pairs(A.shape[1])] + [np.ones(A.shape[0])])


def level_cholesky(A, C, inv):
    """Per level, the Cholesky factor of ``M_l = I + C' A_l C / s2`` (C the covariance factor of
    a draw, A_l the level's Z'WZ), unrolled over the q x q entries so that every operation is
    elementwise over (draws, levels) arrays (the entries of ``M_l`` by
    :func:`level_matrices`).

    Returns
    -------
    c : list of lists
        ``c[a][i]`` = ``C[:, a, i]`` as a (draws, 1) column.
    L : list of lists
        ``L[i][j]`` (i >= j), each of shape (draws, levels).
    """
    q = A.shape[1]
    c = [[C[:, a, i][:, None] for i in range(q)] for a in range(q)]
    Mu = level_matrices(unique_entries(A), C, inv)
    pos = {ik: t for t, ik in enumerate(upper_pairs(q))}
    L = [[None] * q for _ in range(q)]
    for j in range(q):
        d = Mu[:, pos[j, j]] - sum((L[j][k] ** 2 for k in range(j)), 0.0)
        L[j][j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i][j] = (Mu[:, pos[j, i]] - sum((L[i][k] * L[j][k] for k in range(j)), 0.0)) / L[j][j]
    return c, L


def _minus(a, terms):
    """``a - sum(terms)`` without the copy of ``a - 0`` when there are no terms."""
    for t in terms:
        a = a - t
    return a


def _block_products(A, ZX, Zy, beta, C, s2):
    """The factors of the products :func:`_draw_one_block` forms: ``A``'s unique entries, the
    coefficients of ``M_l`` (:func:`level_coefficients`), ``R = [Z'Wy, Z'WX]`` by level and
    the coefficients of ``v_i = sum_a C_ai (Z'Wy - Z'WX beta)_a / s2`` in R's entries (all
    levels in one product with ``[1, -beta]``); row-wise in the draws, so sliceable."""
    S, (J, q), p = beta.shape[0], A.shape[:2], beta.shape[1]
    inv = (1.0 / s2)[:, None]
    R = np.concatenate([Zy[:, :, None], ZX], axis=2).reshape(J, q * (1 + p)).T
    bb = np.concatenate([np.ones((S, 1)), -beta], axis=1)
    Wm = (C * inv[:, :, None])[:, :, :, None] * bb[:, None, None, :]        # (S, a, i, k)
    Wf = np.ascontiguousarray(np.swapaxes(Wm, 1, 2)).reshape(S, q, q * (1 + p))
    return unique_entries(A), level_coefficients(C, inv), R, Wf


def _draw_one_block(A, ZX, Zy, beta, C, s2, rng, terms: bool = False, pre=None):
    """Conditional draws for one factor block, unrolled over the q x q entries so that every
    operation is elementwise over (draws, levels) arrays.  With ``terms`` also each level's
    ``log det M_l`` and ``v_l' M_l^-1 v_l`` (draws, levels), the random-effect terms of its
    marginal log likelihood at (beta, C, s2).  ``pre``: :func:`_block_products` of these
    rows, when made already."""
    S, (J, q), p = beta.shape[0], A.shape[:2], beta.shape[1]
    Avec, cM, R, Wf = _block_products(A, ZX, Zy, beta, C, s2) if pre is None else pre
    Mu = level_matrices(Avec, C, None, cM)
    pos = {ik: t for t, ik in enumerate(upper_pairs(q))}
    L = [[None] * q for _ in range(q)]
    piv = []
    for j in range(q):  # unrolled Cholesky of M_l = L L'
        d = _minus(Mu[:, pos[j, j]], (L[j][k] ** 2 for k in range(j)))
        piv.append(d)
        L[j][j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i][j] = _minus(Mu[:, pos[j, i]], (L[i][k] * L[j][k] for k in range(j))) / L[j][j]
    v = (Wf.reshape(S * q, q * (1 + p)) @ R).reshape(S, q, J)
    w = []
    for i in range(q):  # w = L^-1 v + e
        w.append(_minus(v[:, i], (L[i][k] * w[k] for k in range(i))) / L[i][i])
    if terms:
        det = piv[0]
        for d in piv[1:]:
            det = det * d
        logdet = np.log(det)
        quad = w[0] * w[0]
        for wi in w[1:]:
            quad += wi * wi
    e = rng.standard_normal((q, S, J))  # the stream of q draws of (S, J), in order
    for i in range(q):
        w[i] += e[i]
    x = [None] * q
    for i in reversed(range(q)):  # x = L^-T w ~ N(M^-1 v, M^-1)
        x[i] = _minus(w[i], (L[k][i] * x[k] for k in range(i + 1, q))) / L[i][i]
    b = np.empty((S, J, q))
    for a in range(q):  # b = C x (C lower triangular)
        t = C[:, a, 0][:, None] * x[0]
        for i in range(1, a + 1):
            t += C[:, a, i][:, None] * x[i]
        b[:, :, a] = t
    return (b, logdet, quad) if terms else b


def draw_block(stats: dict, beta: np.ndarray, C: np.ndarray, s2: np.ndarray,
               rng: np.random.Generator):
    """Exact draws of one factor's random effects given each draw of (beta, C, s2), and the
    per-level terms of the marginal log likelihood there (:func:`_draw_one_block`): arrays
    (S, levels, q), (S, levels), (S, levels), in chunks of bounded memory."""
    A, ZX, Zy = stats["m_ZtWZ"], stats["m_ZtWX"], stats["m_ZtWy"]
    S, (J, q) = beta.shape[0], A.shape[:2]
    b, logdet, quad = np.empty((S, J, q)), np.empty((S, J)), np.empty((S, J))
    chunk = max(16, CHUNK // J)
    Avec, cM, R, Wf = _block_products(A, ZX, Zy, beta, C, s2)
    for a in range(0, S, chunk):
        sl = slice(a, min(S, a + chunk))
        b[sl], logdet[sl], quad[sl] = _draw_one_block(A, ZX, Zy, beta[sl], C[sl], s2[sl], rng,
                                                      terms=True, pre=(Avec, cM[sl], R, Wf[sl]))
    return b, logdet, quad


def draw_ranef(stats: dict, beta: np.ndarray, chols: list[np.ndarray], s2: np.ndarray,
               q_list: list[int], levels: list[int], rng: np.random.Generator,
               chunk: int | None = None) -> list[np.ndarray]:
    """Exact draws of the random effects given each posterior draw of (beta, G, s2).

    Parameters
    ----------
    stats : dict
        :func:`sufficient_stats` of the data.
    beta : ndarray (S, p)
    chols : list of ndarray (S, q, q)
        Per block, Cholesky factors of the covariance for each draw.
    s2 : ndarray (S,)
    q_list, levels : list of int
    rng : numpy Generator

    Returns
    -------
    list of ndarray (S, levels, q)
        One array per block.
    """
    S = beta.shape[0]
    s2 = np.broadcast_to(np.asarray(s2, dtype=float), (S,))
    if len(chols) == 1:
        q, J = q_list[0], levels[0]
        A, ZX, Zy = stats["m_ZtWZ"], stats["m_ZtWX"], stats["m_ZtWy"]
        out = np.empty((S, J, q))
        chunk = chunk or max(16, 2**19 // (J * q))
        with one_blas_thread():
            for a in range(0, S, chunk):
                sl = slice(a, min(S, a + chunk))
                out[sl] = _draw_one_block(A, ZX, Zy, beta[sl], chols[0][sl], s2[sl], rng)
        return [out]
    from scipy.linalg import block_diag, cholesky, solve_triangular

    A, ZX, Zy = stats["m_ZtWZ"], stats["m_ZtWX"], stats["m_ZtWy"]
    Q = A.shape[0]
    outs = [np.empty((S, L, q)) for L, q in zip(levels, q_list)]
    offs = np.concatenate([[0], np.cumsum([L * q for L, q in zip(levels, q_list)])])
    for s in range(S):
        Lam = block_diag(*[np.kron(np.eye(L), C[s]) for C, L in zip(chols, levels)])
        M = np.eye(Q) + Lam.T @ A @ Lam / s2[s]
        v = Lam.T @ (Zy - ZX @ beta[s]) / s2[s]
        Lm = cholesky(M, lower=True)
        x = solve_triangular(Lm, v, lower=True) + rng.standard_normal(Q)
        uu = solve_triangular(Lm.T, x, lower=False)
        bb = Lam @ uu
        for k, (L, q) in enumerate(zip(levels, q_list)):
            outs[k][s] = bb[offs[k]:offs[k + 1]].reshape(L, q)
    return outs


__all__ = ["sufficient_stats", "loglik_graph", "draw_ranef", "n_stacked", "MAX_DENSE"]
