"""Blocked Cholesky factor of the penalized least-squares system (Bates et al. 2015, JSS 67(1)).

The augmented cross-product matrix of ``[Z Lambda, X, y]`` is split into the leading factor
block (the grouping factor with most levels) and the rest ``r = [Z_2 .. Z_K, X, y]``::

    M = | Lam1' A11 Lam1 + I     Lam1' A1r Lamr       |       A = [Z X y]'[Z X y]
        | .                      Lamr' Arr Lamr + Ir  |

``A11`` is block diagonal (one q x q block per level), so its factor ``L11`` is a stack of small
Cholesky factors; ``C = L11^-1 Lam1' A1r Lamr`` and the Schur complement
``S = Lamr' Arr Lamr + Ir - C'C`` is dense and small (the other factors' levels plus p + 1).
With a single grouping factor ``r = [X, y]`` and everything is per-group sufficient statistics:
one evaluation costs O(groups), not O(rows).  Nothing of size n x n is ever formed.

Where the other factors have many levels (the Schur block is at least ``SPARSE_MIN`` wide and
every later term is scalar, e.g. STAR's teachers and schools after its students, InstEval's
departments after its students), the criterion's three numbers come from a sparse route
(:meth:`BlockedSystem.pieces`): the u-part of S, ``S_uu``, is assembled on its fixed sparsity
pattern and factored by QDLDL (sparse LDL' with an AMD ordering; ``log|S_uu| = sum log d``),
and the small block of ``[X, y]`` is the dense Schur complement
``S_xy,xy - S_xy,u S_uu^-1 S_u,xy`` (p + 1 solves).  With ``S = Lrr Lrr'`` ordered
[u_rest, beta, y], the leading nu diagonal of Lrr gives ``log|S_uu|`` and the trailing
(p + 1) block is the Cholesky factor of that Schur complement, so both routes give the same
``(log|L|^2, log|R_X|^2, r^2)``.  The factor on that route (:class:`SparseFactor`) also gives
the solution (beta from the Schur complement's factor, the later factors' u from the p + 1
solves) and the conditional variances: the entries of ``S_uu^-1`` they need (its diagonal and
the level pairs of the pair map) come from a selected inverse of the sparse factor (Takahashi
equations), never a dense inverse.  The dense factor is formed only where the gradient asks
for it.

With several factors, y is replaced inside the system by its least-squares residual
``y - X b0`` (beta is shifted back by b0): r^2, the log-determinants and u do not change, and
the [X, y] cross-products lose the cancellation that makes the criterion noisy.

Rows are scaled by ``sqrt(w_i) / known_sd_i`` (prior weights; known residual sds, the
meta-analysis form) and the offset is taken off y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cholesky, LinAlgError
from scipy.linalg.lapack import dpotrf, dtrtri, dtrtrs

from ..design import Design
from ..structure import Structure, build_structure

#: Width of the Schur block from which the criterion may take the sparse route ...
SPARSE_MIN = 400
#: ... when the sparse factor's flops (sum of squared column counts of L) are below this
#: fraction of the dense Cholesky's nu^3 / 3: QDLDL runs at a small fraction of LAPACK's speed
#: per flop (STAR: 3e-4, the sparse route 14x faster; InstEval: 0.23, the dense one 2x faster).
SPARSE_FLOP_RATIO = 0.02
#: Several factors: the rest's design R = [Z_2 .. Z_K, X, y] is built dense, and R'R formed by
#: BLAS, while n nr^2 is below this (up to it, faster than scipy.sparse's products).
DENSE_BUILD_MAX = 10_000_000
#: The leading factor's q x q blocks (q >= 3) are factored as a LAPACK stack up to this many
#: levels, by vectorised loops over the levels above it.
STACK_MAX_LEVELS = 64
STACK_MIN_Q = 3  # for q = 2 the written-out vectors are as fast or faster
#: Pair maps with at most this many entries (targets x L1 q1^2) are applied as dense matrices.
DENSE_MAP_MAX = 100_000
#: Largest ``nr^2`` for which the pair map's targets are found by marking a dense key array.
DENSE_KEY_MAX = 1 << 25


def _batched_chol(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of small SPD matrices, shape (L, q, q)."""
    q = A.shape[-1]
    if q == 1:
        return np.sqrt(A)
    if q == 2:
        l11 = np.sqrt(A[:, 0, 0])
        l21 = A[:, 1, 0] / l11
        l22 = np.sqrt(A[:, 1, 1] - l21 * l21)
        out = np.zeros_like(A)
        out[:, 0, 0] = l11
        out[:, 1, 0] = l21
        out[:, 1, 1] = l22
        return out
    return np.linalg.cholesky(A)


def _batched_tri_inv(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular matrices."""
    q = L.shape[-1]
    if q == 1:
        return 1.0 / L
    if q == 2:
        out = np.zeros_like(L)
        out[:, 0, 0] = 1.0 / L[:, 0, 0]
        out[:, 1, 1] = 1.0 / L[:, 1, 1]
        out[:, 1, 0] = -L[:, 1, 0] * out[:, 0, 0] * out[:, 1, 1]
        return out
    eye = np.broadcast_to(np.eye(q), L.shape)
    return np.linalg.solve(L, eye)


def _lead_factor(lam: np.ndarray, A11: np.ndarray):
    """Per-level Cholesky of lam' A11_l lam + I and T_l = L_l^-1 lam', vectorised over levels.

    Arrays are level last, (q, q, L): for small q a handful of vector operations of length L
    beat a stack of L tiny matrix factorisations.  q = 1 and q = 2 (random intercepts, one
    slope) are written out: a search evaluates this tens of times, and at a few dozen levels
    the cost is the number of numpy calls, not the arithmetic.
    """
    q, _, L = A11.shape
    if q == 1:
        lam00 = lam[0, 0]
        d = np.sqrt(lam00 * lam00 * A11[0, 0] + 1.0)
        return d.reshape(1, 1, L), (lam00 / d).reshape(1, 1, L)
    if q == 2:
        l00, l10, l11 = lam[0, 0], lam[1, 0], lam[1, 1]
        a00, a01, a11 = A11[0, 0], A11[0, 1], A11[1, 1]
        u10 = a01 * l00 + a11 * l10  # (A lam)[1, 0]
        c00 = np.sqrt(l00 * (a00 * l00 + a01 * l10) + l10 * u10 + 1.0)
        c10 = (l11 * u10) / c00
        c11 = np.sqrt(l11 * l11 * a11 + 1.0 - c10 * c10)
        Lf = np.zeros((2, 2, L))
        Lf[0, 0], Lf[1, 0], Lf[1, 1] = c00, c10, c11
        T = np.empty((2, 2, L))
        T[0, 0] = l00 / c00
        T[0, 1] = l10 / c00
        T[1, 0] = -c10 * T[0, 0] / c11
        T[1, 1] = (l11 - c10 * T[0, 1]) / c11
        return Lf, T
    if L <= STACK_MAX_LEVELS:
        # few levels: LAPACK on the (L, q, q) stack, a handful of calls whatever q (numpy's
        # stacked linalg pays per matrix, so many levels take the loops below)
        M = np.matmul(np.matmul(lam.T, A11.transpose(2, 0, 1)), lam)
        M += np.eye(q)
        Lf = np.linalg.cholesky(M)  # raises LinAlgError where not positive definite
        T = np.linalg.solve(Lf, np.broadcast_to(lam.T, Lf.shape))  # L^-1 lam'
        return Lf.transpose(1, 2, 0), T.transpose(1, 2, 0)
    tmp = np.tensordot(lam, A11, axes=([0], [0]))  # (i, b, L): sum_a lam[a,i] A11[a,b]
    M = np.tensordot(tmp, lam, axes=([1], [0]))  # (i, L, j)
    Lf = np.zeros((q, q, L))
    for j in range(q):
        d = M[j, :, j] + 1.0
        for k in range(j):
            d = d - Lf[j, k] ** 2
        Lf[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            v = M[i, :, j].copy()
            for k in range(j):
                v -= Lf[i, k] * Lf[j, k]
            Lf[i, j] = v / Lf[j, j]
    T = np.empty((q, q, L))  # T[i, a] = (L^-1 lam')[i, a]
    for i in range(q):
        row = np.broadcast_to(lam.T[i][:, None], (q, L)).copy()
        for k in range(i):
            row -= Lf[i, k][None, :] * T[k]
        T[i] = row / Lf[i, i][None, :]
    return Lf, T


def _level_back_solve(Lf: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``L_l^-T T_l`` for every level, level-last (q, q, L) arrays: back substitution on the
    per-level lower-triangular factors, vectorised over the levels."""
    q = Lf.shape[0]
    out = np.empty_like(T)
    for i in range(q - 1, -1, -1):
        row = T[i].copy()
        for k in range(i + 1, q):
            row -= Lf[k, i][None, :] * out[k]
        out[i] = row / Lf[i, i][None, :]
    return out


def _pair_structure(A1r: sp.csr_matrix, L1: int, q1: int, nr: int):
    """Map per-level weights to the lower triangle of ``K = A1r' blockdiag(W_l) A1r``.

    Row (l, r) of A1r belongs to level l; K[i, j] = sum over l, r, s of
    W_l[r, s] A1r[(l, r), i] A1r[(l, s), j].  The pattern is fixed, only W changes with theta,
    so the products are precomputed once as a sparse matrix P (unique targets x L1 q1^2) and
    each evaluation is one sparse mat-vec: ``K.flat[targets] = P @ W.ravel()``.
    """
    indptr = A1r.indptr
    nnz = A1r.nnz
    cols = A1r.indices.astype(np.int64)
    vals = A1r.data
    row_of = np.repeat(np.arange(A1r.shape[0]), np.diff(indptr))
    level_of = row_of // q1
    r_of = row_of % q1
    lstart = indptr[np.arange(L1) * q1]
    llen = indptr[(np.arange(L1) + 1) * q1] - lstart
    if q1 == 1:
        # a level is one row with sorted columns: its pairs with ci >= cj are the triangle
        rep = np.arange(nnz) - lstart[level_of] + 1
    else:
        rep = llen[level_of]
    total = int(rep.sum())
    first = np.repeat(np.arange(nnz), rep)
    block_start = np.cumsum(rep) - rep
    second = lstart[level_of][first] + (np.arange(total) - np.repeat(block_start, rep))
    ci, cj = cols[first], cols[second]
    if q1 != 1:
        keep = ci >= cj
        first, second, ci, cj = first[keep], second[keep], ci[keep], cj[keep]
    coef = vals[first] * vals[second]
    widx = level_of[first] * q1 * q1 + r_of[first] * q1 + r_of[second]
    key = ci * nr + cj
    if nr * nr <= DENSE_KEY_MAX:
        # the key space is small: mark it instead of sorting the (many) pairs
        present = np.zeros(nr * nr, dtype=bool)
        present[key] = True
        targets = np.flatnonzero(present)
        lookup = np.empty(nr * nr, dtype=np.int64)  # read only at the targets
        lookup[targets] = np.arange(targets.size)
        inv = lookup[key]
    else:
        targets, inv = np.unique(key, return_inverse=True)
    P = sp.csr_matrix((coef, (inv, widx)), shape=(targets.size, L1 * q1 * q1))
    P.sum_duplicates()
    return P, targets


@dataclass(frozen=True, eq=False)
class Factor:
    """The blocked Cholesky factor at one theta (see module docstring).

    Attributes
    ----------
    L11 : ndarray (L1, q1, q1)
        Leading block's per-level Cholesky factors.
    T1 : ndarray (L1, q1, q1)
        ``L11^-1 Lam1'`` per level.
    C : ndarray (L1, q1, nr) or sparse (L1 q1, nr)
        ``L11^-1 Lam1' A1r Lamr``.
    Lrr : ndarray (nr, nr)
        Cholesky factor of the Schur complement, order [other factors' u, beta, y]; on the
        sparse route formed only when asked for (the criterion, the solution and the record's
        quantities come from ``sparse``).
    sparse : SparseFactor or None
        The sparse route's factor (see :class:`SparseFactor`).
    """

    theta: np.ndarray
    lambdas: list
    L11: np.ndarray
    T1: np.ndarray
    C: object
    dense: np.ndarray | None
    sparse: "SparseFactor | None" = None

    @property
    def Lrr(self) -> np.ndarray:
        if self.dense is None:
            object.__setattr__(self, "dense",
                               self.sparse.system.factor(self.theta, dense=True).dense)
        return self.dense


@dataclass(frozen=True, eq=False)
class SparseFactor:
    """The sparse route's factor of the rest block (see the module docstring).

    Attributes
    ----------
    system : BlockedSystem
    d : ndarray (nu,)
        ``D`` of QDLDL's ``S_uu = P' (I + L) D (I + L)' P``.
    Y : ndarray (nu, p + 1)
        ``S_uu^-1 S_u,xy``.
    Lx : ndarray (p + 1, p + 1)
        Cholesky factor of ``S_xy,xy - S_xy,u S_uu^-1 S_u,xy`` (the trailing block of the dense
        ``Lrr``).
    """

    system: "BlockedSystem"
    d: np.ndarray
    Y: np.ndarray
    Lx: np.ndarray


class BlockedSystem:
    """Per-design constant pieces of the PLS system, and its factorisation at any theta.

    Building one is the only pass over the rows; :meth:`factor` never touches them again.

    Parameters
    ----------
    design : Design
    """

    def __init__(self, design: Design):
        if not design.terms:
            raise ValueError("a mixed model needs at least one random-effects term")
        self.design = design
        self.structure: Structure = build_structure(design)
        blocks = self.structure.blocks
        w = design.row_scale  # sqrt(weights) / known_sd; None when all 1
        X = design.X if w is None else design.X * w[:, None]
        y = design.y_work if w is None else design.y_work * w
        # beta's shift b0 (see solve): y - X b0 with b0 the least-squares fit gives the same
        # r^2, log-determinants and u, and the [X, y] cross-products lose the cancellation
        # that made the criterion noisy (STAR: 1e-7 -> 5e-11 absolute), which the
        # derivative-free search and the verdict's differences felt
        self._beta_shift = None
        if design.p:
            try:  # any b0 will do: the normal equations are accurate enough
                b0 = np.linalg.solve(X.T @ X, X.T @ y)
            except np.linalg.LinAlgError:
                b0 = None
            if b0 is None or not np.all(np.isfinite(b0)):
                b0 = np.linalg.lstsq(X, y, rcond=None)[0]
            y = y - X @ b0
            self._beta_shift = b0
        Xy = np.column_stack([X, y])
        self.n, self.p = design.n, design.p
        b1 = blocks[0]
        Z1 = b1.Z if w is None else b1.Z * w[:, None]
        self.L1, self.q1 = b1.nlevels, b1.q
        self.A11 = b1.cross(Z1, Z1, symmetric=True)
        self.single = len(blocks) == 1
        self._sparse = None  # the sparse route (several factors, see the module docstring)
        # sizes of the rest: other blocks' u, then beta, then y
        self.rest_sizes = [b.nlevels * b.q for b in blocks[1:]]
        self.nu_rest = int(sum(self.rest_sizes))
        self.nr = self.nu_rest + self.p + 1
        if self.single:
            self.A1r = b1.cross(Z1, Xy)
            self.Arr = Xy.T @ Xy
        elif self.n * self.nr * self.nr <= DENSE_BUILD_MAX:
            # small: R = [Z_2 .. Z_K, X, y] dense (a sparse build costs more in scipy's
            # constructors than in arithmetic here)
            R = np.zeros((self.n, self.nr))
            rows = np.arange(self.n)[:, None]
            off = 0
            for b in blocks[1:]:
                Zb = b.Z if w is None else b.Z * w[:, None]
                R[rows, off + b.codes[:, None] * b.q + np.arange(b.q)[None, :]] = Zb
                off += b.nlevels * b.q
            R[:, off:] = Xy
            self.A1r = sp.csr_matrix(np.asarray(b1.sparse_Z(w).T @ R))
            self.Arr = R.T @ R
            rr, cc = np.nonzero(np.tril(self.Arr))
            self._arr_lower = (rr.astype(np.int64), cc.astype(np.int64))
        else:
            Zr = [b.sparse_Z(w) for b in blocks[1:]]
            R = sp.hstack(Zr + [sp.csr_matrix(Xy)], format="csr")
            Z1s = b1.sparse_Z(w)
            self.A1r = (Z1s.T @ R).tocsr()
            self.A1r.sort_indices()
            Arr = (R.T @ R).tocoo()
            self.Arr = Arr.toarray()
            low = (Arr.row >= Arr.col) & (Arr.data != 0)
            self._arr_lower = (Arr.row[low].astype(np.int64), Arr.col[low].astype(np.int64))
        if not self.single:
            self._pairs, self._targets = _pair_structure(self.A1r, self.L1, self.q1, self.nr)
            # the map as the search applies it: dense where small (scipy.sparse's call costs
            # ~15 us against a microsecond of BLAS for a few thousand entries)
            P = self._pairs
            self._pairs_mv = P.toarray() if P.shape[0] * P.shape[1] <= DENSE_MAP_MAX else P
            self.scalar_rest = all(b.q == 1 for b in blocks[1:])
            if self.scalar_rest and self.nr >= SPARSE_MIN and self._may_be_sparse():
                route = _SparseRest(self)
                self._sparse = route if route.flop_ratio < SPARSE_FLOP_RATIO else None
        # Identity added to the u-part of the rest block.
        self._ir = np.zeros(self.nr)
        self._ir[: self.nu_rest] = 1.0

    def _may_be_sparse(self) -> bool:
        """False when the sparse factor's flop ratio is surely above ``SPARSE_FLOP_RATIO``.

        L's columns hold at least the ``z`` non-zeros of S_uu's lower triangle (pattern of K
        and the diagonal), so its flops ``sum c_j^2 >= z^2 / nu`` and the ratio to the dense
        ``nu^3 / 3`` is at least ``3 z^2 / nu^4`` (InstEval: 0.036), a bound that spares the
        symbolic factorisation.
        """
        nu = self.nu_rest
        i, j = np.divmod(self._targets, self.nr)
        z = float(np.count_nonzero((i < nu) & (i != j)) + nu)
        return 3.0 * z * z / float(nu) ** 4 < SPARSE_FLOP_RATIO

    # ----------------------------------------------------------------- factorisation
    @property
    def sparse_route(self) -> bool:
        """Whether :meth:`pieces` takes the sparse route (see the module docstring)."""
        return self._sparse is not None

    def pieces(self, theta: np.ndarray) -> tuple[float, float, float]:
        """``(log|L_theta|^2, log|R_X|^2, r^2)`` at ``theta``, by the sparse route where it
        applies (see the module docstring), otherwise from :meth:`factor`.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the system is not positive definite.
        """
        if self._sparse is None:
            return self.logdets(self.factor(theta))
        return self._sparse.pieces(np.asarray(theta, dtype=float))

    def _scalar_rest_scale(self, lambdas: list[np.ndarray]) -> np.ndarray:
        """The diagonal of Lam_r when every later term is scalar: each level's lambda, then 1
        for [X, y]."""
        idx = getattr(self, "_lr_index", None)
        if idx is None:
            idx = np.concatenate([np.repeat(k, b.nlevels) for k, b in
                                  enumerate(self.structure.blocks[1:])]
                                 + [np.full(self.p + 1, len(self.structure.blocks) - 1)])
            self._lr_index = idx
        return np.array([lam[0, 0] for lam in lambdas[1:]] + [1.0])[idx]

    def _lam_rest_entries(self, lambdas: list[np.ndarray]):
        """``(rows, cols, values)`` of Lam_r = blockdiag(I (x) lambda_k for the other blocks,
        I for [X, y]), from index maps built once (no sparse constructors in the search)."""
        maps = getattr(self, "_lr_maps", None)
        if maps is None:
            rows, cols, src, off, start = [], [], [], 0, 0
            for b in self.structure.blocks[1:]:
                q = b.q
                i, j = np.tril_indices(q)
                base = off + q * np.arange(b.nlevels)[:, None]
                rows.append((base + i[None, :]).ravel())
                cols.append((base + j[None, :]).ravel())
                src.append(np.tile(start + i * q + j, b.nlevels))
                off += b.nlevels * q
                start += q * q
            ident = np.arange(self.nu_rest, self.nr)
            maps = (np.concatenate(rows + [ident]), np.concatenate(cols + [ident]),
                    np.concatenate(src), start)
            self._lr_maps = maps
        rows, cols, src, nvals = maps
        vals = np.concatenate([lam.ravel() for lam in lambdas[1:]] + [np.ones(self.p + 1)])
        return rows, cols, np.concatenate([vals[:nvals][src], vals[nvals:]])

    def _lam_rest_dense(self, lambdas: list[np.ndarray]) -> np.ndarray:
        """:meth:`_lam_rest` as a dense array (the search's form)."""
        rows, cols, vals = self._lam_rest_entries(lambdas)
        out = np.zeros((self.nr, self.nr))
        out[rows, cols] = vals
        return out

    def _lam_rest(self, lambdas: list[np.ndarray]) -> sp.spmatrix | None:
        """Block-diagonal scaling of the rest: I (x) lambda_k for other blocks, I for [X, y]."""
        if self.single:
            return None
        rows, cols, vals = self._lam_rest_entries(lambdas)
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.nr, self.nr))

    def factor(self, theta: np.ndarray, dense: bool = False) -> Factor:
        """Factor the PLS system at ``theta`` (by the sparse route where it applies, unless
        ``dense``).

        Raises
        ------
        numpy.linalg.LinAlgError
            If the Schur complement is not positive definite (a perfect fit).
        """
        theta = np.asarray(theta, dtype=float)
        if self._sparse is not None and not dense:
            return self._sparse.factor(theta)
        lambdas = self.structure.lambdas(theta)
        Lf, T = _lead_factor(lambdas[0], self.A11)
        L11 = Lf.transpose(2, 0, 1)  # (L1, q1, q1) views for the extraction steps
        T1 = T.transpose(2, 0, 1)
        if self.single:
            # C[i] = sum_a T[i, a] A1r[a]: (q1, p+1, L1); S = Arr - sum_i C[i] C[i]'
            C = np.einsum("ial,acl->icl", T, self.A1r) if self.q1 > 2 else sum(
                T[:, a][:, None, :] * self.A1r[a][None, :, :] for a in range(self.q1))
            S = self.Arr.copy()
            for i in range(self.q1):
                S -= C[i] @ C[i].T
            C = C.transpose(2, 0, 1)  # (L1, q1, p+1)
        else:
            # K = A1r' blockdiag(T1'T1) A1r, lower triangle, from the precomputed pair map
            W = np.einsum("ial,ibl->lab", T, T)
            S = np.zeros(self.nr * self.nr)
            S[self._targets] = self._pairs_mv @ W.ravel()
            S = S.reshape(self.nr, self.nr)  # K, lower triangle
            C = None  # formed only when the solution is extracted (see _C)
            if self.scalar_rest:
                lr = self._scalar_rest_scale(lambdas)
                np.subtract(self.Arr, S, out=S)
                S *= lr[:, None]
                S *= lr[None, :]
            else:
                K = np.tril(S) + np.tril(S, -1).T
                Lr = self._lam_rest_dense(lambdas)
                S = Lr.T @ (self.Arr - K) @ Lr
            S[np.diag_indices(self.nr)] += self._ir
        # S is symmetric and its lower triangle is valid: its transpose is a Fortran-ordered
        # upper triangle, which LAPACK factors in place without a copy.
        U, info = dpotrf(S.T, lower=0, clean=1, overwrite_a=1)
        if info != 0:
            raise LinAlgError("the Schur complement is not positive definite")
        return Factor(theta, lambdas, L11, T1, C, U.T)

    # ----------------------------------------------------------------- pieces of the factor
    def logdets(self, f: Factor) -> tuple[float, float, float]:
        """(log|L_theta|^2, log|R_X|^2, penalized RSS r^2) of a factor."""
        d11 = np.diagonal(f.L11, axis1=1, axis2=2)
        if f.dense is None:
            sf = f.sparse
            dx = np.diag(sf.Lx)
            return (2.0 * float(np.log(d11).sum()) + float(np.log(sf.d).sum()),
                    2.0 * float(np.log(dx[: self.p]).sum()), float(dx[-1] ** 2))
        dr = np.diag(f.Lrr)
        ldL2 = 2.0 * (np.log(d11).sum() + np.log(dr[: self.nu_rest]).sum())
        ldRX2 = 2.0 * np.log(dr[self.nu_rest : self.nu_rest + self.p]).sum()
        r2 = dr[-1] ** 2
        return ldL2, ldRX2, r2

    def solve(self, f: Factor) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fixed effects and spherical random effects u (per block, shape (L, q)) at a factor."""
        m = self.nr - 1
        if f.dense is None:
            # beta = Lxx^-T l_yx (the Schur complement's factor), u_rest = Y_y - Y_x beta
            sf, p = f.sparse, self.p
            beta = _solve_upper(sf.Lx[:p, :p].T, sf.Lx[p, :p])
            w = np.concatenate([sf.Y[:, p] - sf.Y[:, :p] @ beta, beta])
        else:
            Lrr = f.Lrr
            w = _solve_upper(Lrr[:m, :m].T, Lrr[m, :m])  # [u_rest, beta]
        beta = w[self.nu_rest :]
        if self.single:
            rhs = f.C[:, :, -1] - np.einsum("lqi,i->lq", f.C[:, :, :-1], w)
            u1 = np.einsum("lji,lj->li", _batched_tri_inv(f.L11), rhs)  # L11^-T rhs
        else:
            # rhs = C [-w; 1] with C = L11^-1 Lam1' A1r Lamr, by mat-vecs (C is not formed)
            z = np.append(-w, 1.0)
            if self.scalar_rest:
                z *= self._scalar_rest_scale(f.lambdas)
            else:
                z = self._lam_rest(f.lambdas) @ z
            v = (self.A1r @ z).reshape(self.L1, self.q1)
            rhs = np.einsum("lab,lb->la", f.T1, v)
            u1 = np.einsum("lji,lj->li", _batched_tri_inv(f.L11), rhs)
        us = [u1]
        off = 0
        for b, size in zip(self.structure.blocks[1:], self.rest_sizes):
            us.append(w[off : off + size].reshape(b.nlevels, b.q))
            off += size
        if self._beta_shift is not None:
            beta = beta + self._beta_shift
        return beta, us

    def cond_inverse_blocks(self, f: Factor) -> list[np.ndarray]:
        """Per-level diagonal blocks of (L L')^-1 over the random effects u, shape (L, q, q).

        lme4's conditional variances of b are ``sigma^2 lambda B lambda'`` for these blocks B.
        """
        Linv = _batched_tri_inv(f.L11)
        B1 = np.matmul(np.swapaxes(Linv, 1, 2), Linv)
        out = [B1]
        if self._sparse is not None:
            return self._cond_inverse_blocks_sparse(f, Linv, B1)
        if self.nu_rest:
            # With S22 = L22 L22' the rest's u block: the other factors' blocks are level blocks
            # of S22^-1, and the leading factor's gain N_l' [B S22^-1 B']_ll N_l (B = A1r Lam_r,
            # N_l' = M_l^-1 lam'), from the pair map: no dense solve with L1 right-hand sides.
            from scipy.linalg.lapack import dpotri

            nu = self.nu_rest
            inv, info = dpotri(f.Lrr[:nu, :nu], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("the Schur complement could not be inverted")
            S22inv = _symmetrize_lower(inv)
            H = np.zeros((self.nr, self.nr))
            if self.scalar_rest:  # Lam_r H Lam_r' with Lam_r diagonal
                lr = self._scalar_rest_scale(f.lambdas)[:nu]
                H[:nu, :nu] = S22inv * lr[:, None] * lr[None, :]
            else:
                H[:nu, :nu] = S22inv
                Lr = self._lam_rest(f.lambdas)
                H = np.asarray(Lr @ np.asarray(Lr @ H).T)  # Lam_r H Lam_r' (H symmetric)
            Q = self._level_blocks(H)
            Nt = np.matmul(np.swapaxes(Linv, 1, 2), f.T1)  # M_l^-1 lam'
            out[0] = B1 + np.matmul(np.matmul(Nt, Q), np.swapaxes(Nt, 1, 2))
            off = 0
            for b, size in zip(self.structure.blocks[1:], self.rest_sizes):
                sub = S22inv[off : off + size, off : off + size].reshape(b.nlevels, b.q,
                                                                         b.nlevels, b.q)
                idx = np.arange(b.nlevels)
                out.append(np.ascontiguousarray(sub[idx, :, idx, :]))
                off += size
        return out

    def _cond_inverse_blocks_sparse(self, f: Factor, Linv: np.ndarray, B1: np.ndarray) -> list:
        """:meth:`cond_inverse_blocks` on the sparse route: the entries of ``S22^-1`` it needs
        (the diagonal, and the level pairs of the pair map) by a selected inverse of the sparse
        factor (:meth:`_SparseRest.inverse_entries`), not a dense inverse."""
        nu, nr = self.nu_rest, self.nr
        ti, tj = np.divmod(self._targets, nr)
        on_u = np.flatnonzero(ti < nu)  # lower triangle: then tj < nu too
        diag = np.arange(nu)
        z = self._sparse.inverse_entries(f.theta, np.concatenate([ti[on_u], diag]),
                                         np.concatenate([tj[on_u], diag]))
        zt, zd = z[: on_u.size], z[on_u.size :]
        lr = self._scalar_rest_scale(f.lambdas)  # H = Lam_r S22^-1 Lam_r' on the u block
        h_t = np.zeros(self._targets.size)
        h_t[on_u] = zt * lr[ti[on_u]] * lr[tj[on_u]]
        h_d = np.zeros(nr)
        h_d[:nu] = zd * lr[:nu] ** 2
        Q = self._level_blocks_at(h_t, h_d)
        Nt = np.matmul(np.swapaxes(Linv, 1, 2), f.T1)  # M_l^-1 lam'
        out = [B1 + np.matmul(np.matmul(Nt, Q), np.swapaxes(Nt, 1, 2))]
        off = 0
        for b, size in zip(self.structure.blocks[1:], self.rest_sizes):
            out.append(zd[off : off + size].reshape(b.nlevels, 1, 1).copy())
            off += size
        return out

    def gradient(self, f: Factor, coef_S: float, coef_Sxx: float, coef_r2: float) -> np.ndarray:
        """Gradient in theta of ``sum log|M_l| + coef_S log|S| + coef_Sxx log|S_xx| + coef_r2 r^2``.

        One grouping factor only.  With K_l = lam M_l^-1 lam', N_l = lam M_l^-1 and
        P_l = I - K_l A11_l, the derivative along E = d lam / d theta_k = e_r e_c' is
        ``2 [sum_l N_l' (A11_l - B_l W B_l' P_l)]_{c,r}`` where B_l = A1r_l and W collects the
        three terms: coef_S S^-1 + coef_Sxx S_xx^-1 (padded) + coef_r2 w w',
        w = (-S_xx^-1 S_xy, 1).  (d log|M| = 2 tr(N'A E); d log|S| = -2 tr(N'B S^-1 B' P E).)
        Every profiled criterion of :mod:`workbench.reml.criterion` is of this form.
        """
        if not self.single:
            return self._gradient_blocked(f, coef_S, coef_Sxx, coef_r2)
        q, m, p = self.q1, self.nr, self.p
        Lf = f.L11.transpose(1, 2, 0)  # (q, q, L)
        T = f.T1.transpose(1, 2, 0)  # L^-1 lam'
        A = self.A11
        B = self.A1r  # (q, m, L)
        Lrr = f.Lrr
        # W = coef_S S^-1 + coef_Sxx S_xx^-1 (padded) + coef_r2 w w', applied to the level
        # blocks B_l of A1r through a factor: B W B' = sum of outer products of U_k = F_k B
        factors = []
        if coef_S:
            Linv, info = dtrtri(Lrr, lower=1)
            factors.append((coef_S, Linv))
        if p:
            Lxx_inv, info = dtrtri(Lrr[:p, :p], lower=1)
            if coef_Sxx:
                factors.append((coef_Sxx, np.hstack([Lxx_inv, np.zeros((p, 1))])))
            # w = (-S_xx^-1 S_xy, 1) and S_xx^-1 S_xy = Lxx^-T (Lxx^-1 S_xy) = Lxx^-T Lrr[p, :p]
            w = np.append(-(Lxx_inv.T @ Lrr[p, :p]), 1.0)
        else:
            w = np.ones(1)
        if coef_r2:
            factors.append((coef_r2, w[None, :]))
        if q == 1:
            Nt = T[0, 0] / Lf[0, 0]  # N' = M^-1 lam'
            Kl = T[0, 0] * T[0, 0]  # lam M^-1 lam'
            a = A[0, 0]
            Qv = 0.0
            for coef, F in factors:
                U = F @ B[0]  # (k, L)
                Qv = Qv + coef * np.einsum("kl,kl->l", U, U)
            G = np.array([[np.dot(Nt, a - Qv * (1.0 - Kl * a))]])
        elif q >= STACK_MIN_Q and self.L1 <= STACK_MAX_LEVELS:
            # few levels: the same products on (L, q, q) stacks, a call each whatever q
            stacks = getattr(self, "_stacks", None)
            if stacks is None:
                stacks = self._stacks = (np.ascontiguousarray(A.transpose(2, 0, 1)),
                                         np.ascontiguousarray(B.transpose(2, 0, 1)))
            As, Bs = stacks
            Nts = np.linalg.solve(f.L11.transpose(0, 2, 1), f.T1)  # N_l' = L_l^-T T_l
            Ks = f.T1.transpose(0, 2, 1) @ f.T1
            Qs = 0.0
            for coef, F in factors:
                Us = Bs @ F.T  # (L, q, k)
                Qs = Qs + coef * (Us @ Us.transpose(0, 2, 1))
            Rs = As - Qs @ (np.eye(q) - Ks @ As)
            G = (Nts @ Rs).sum(axis=0)
        else:
            Nt = _level_back_solve(Lf, T)  # N' = M^-1 lam' = L^-T T
            K = np.einsum("ial,ibl->abl", T, T)  # T'T = lam M^-1 lam'
            Q = 0.0
            for coef, F in factors:
                U = np.matmul(F, B)  # (q, k, L)
                Q = Q + coef * np.einsum("akl,bkl->abl", U, U)  # B W B'
            P = -np.einsum("akl,kbl->abl", K, A)
            for a in range(q):
                P[a, a] += 1.0
            R = A - np.einsum("akl,kbl->abl", Q, P)
            G = np.einsum("akl,kbl->ab", Nt, R)  # sum_l N_l' R_l
        st = self.structure
        g = np.zeros(st.ntheta)
        blk = st.blocks[0]
        for (r, c), k in zip(blk.positions, blk.theta_index):
            g[k] = 2.0 * G[c, r]
        return g

    def _weight_matrix(self, f: Factor, coef_S: float, coef_Sxx: float, coef_r2: float):
        """``W = dF/dS`` for ``F(S) = a_v log|S_vv| + coef_Sxx log|S_vx| + coef_S log|S| +
        coef_r2 r^2`` on the Schur complement S (order [v = other factors' u, x, y]), with
        ``a_v = 1 - coef_S - coef_Sxx`` (log|L|^2 enters the criterion with coefficient 1).

        The Cholesky factor of a leading block of S is the leading block of S's factor, so
        each inverse is one LAPACK ``potri`` of a leading block of ``Lrr`` (padded with zeros).
        """
        from scipy.linalg.lapack import dpotri

        m, nv = self.nr, self.nu_rest
        a_v = 1.0 - coef_S - coef_Sxx
        W = np.zeros((m, m))
        for coef, k in ((coef_S, m), (coef_Sxx, m - 1), (a_v, nv)):
            if coef and k:
                inv, info = dpotri(f.Lrr[:k, :k], lower=1)
                if info != 0:
                    raise np.linalg.LinAlgError("the Schur complement could not be inverted")
                W[:k, :k] += coef * _symmetrize_lower(inv)
        if coef_r2:
            # r^2 = S_yy - S_y,vx S_vx^-1 S_vx,y: d r^2 = w' dS w, w = (-S_vx^-1 S_vx,y, 1)
            Lvx = f.Lrr[: m - 1, : m - 1]
            z, info = dtrtrs(Lvx, f.Lrr[m - 1, : m - 1], lower=1, trans=1)
            w = np.append(-z, 1.0)
            W += coef_r2 * np.outer(w, w)
        return W

    def _level_blocks(self, H: np.ndarray) -> np.ndarray:
        """``[A1r H A1r']_ll`` for every level l, shape (L1, q1, q1), H symmetric (nr x nr).

        The pair map of :func:`_pair_structure` holds the products with column ``ci >= cj``;
        the pairs with ``ci < cj`` are their mirror images, so the blocks are ``Q + Q' - Q_eq``
        with ``Q_eq`` the products in one column (counted in both).
        """
        return self._level_blocks_at(H.ravel()[self._targets], np.diagonal(H))

    def _level_blocks_at(self, h_targets: np.ndarray, d: np.ndarray) -> np.ndarray:
        """:meth:`_level_blocks` from H's entries at the pair map's targets and its diagonal."""
        L1, q = self.L1, self.q1
        maps = getattr(self, "_level_maps", None)
        if maps is None:  # constant: the pair map transposed, and the products of A1r's rows
            A = self.A1r  # of one level in one column, mapped to both (a, b) and (b, a)
            rows = [A[r::q] for r in range(q)]
            parts = []
            for a in range(q):
                for b in range(a, q):
                    prod = rows[a].multiply(rows[b]).tocoo()
                    for i, j in {(a, b), (b, a)}:
                        parts.append((prod.row * q * q + i * q + j, prod.col, prod.data))
            r_, c_, v_ = (np.concatenate(x) for x in zip(*parts))
            eq = sp.csr_matrix((v_, (r_, c_)), shape=(L1 * q * q, self.nr))
            if self._pairs_mv is not self._pairs:  # small: dense, as the pair map
                maps = (np.ascontiguousarray(self._pairs_mv.T), eq.toarray())
            else:
                maps = (self._pairs.T.tocsr(), eq)
            self._level_maps = maps
        pairs_t, eq = maps
        Q = (pairs_t @ h_targets).reshape(L1, q, q)
        Qeq = (eq @ d).reshape(L1, q, q)
        return Q + Q.transpose(0, 2, 1) - Qeq

    def _gradient_blocked(self, f: Factor, coef_S: float, coef_Sxx: float,
                          coef_r2: float) -> np.ndarray:
        """The gradient of :meth:`gradient` for several grouping factors.

        With the full augmented system split into the leading factor (1) and the rest r, and
        ``F(S)`` the rest of the criterion (see :meth:`_weight_matrix`, ``W = dF/dS``), the
        criterion is ``log|M_11| + F(S)`` and its differential is ``tr(Psi dM)`` with
        ``Psi_11 = M_11^-1 + H W H'``, ``Psi_1r = -H W``, ``Psi_rr = W``, ``H = M_11^-1 M_1r``.
        Since ``M = D'AD + I_u`` with ``D = diag(Lam, I)``, the derivative along
        ``d Lam = E`` is ``2 tr([Psi D'A]_uu E)``; only the per-level diagonal blocks of
        ``[Psi D'A]_uu`` are needed:

        * leading factor, level l: ``N_l' (A11_l - B_l W B_l' P_l)`` as for one factor, with
          ``B_l = A1r_l Lam_r`` (so ``B_l W B_l'`` is a level block of ``A1r (Lam_r W Lam_r')
          A1r'``);
        * other factors: the level blocks of ``W Lam_r' G`` on the rows and columns of u_r,
          where ``G = A_rr - A_r1 blockdiag(K_l) A_1r`` is the unscaled Schur complement.

        Cost: one ``potri`` of the dense Schur block and O(nr^2) beside the pair products.
        """
        q, m = self.q1, self.nr
        st = self.structure
        W = self._weight_matrix(f, coef_S, coef_Sxx, coef_r2)
        if q == 1 and self.scalar_rest:
            return self._gradient_scalar(f, W)
        Lf = f.L11.transpose(1, 2, 0)
        T = f.T1.transpose(1, 2, 0)
        Nt = _level_back_solve(Lf, T)  # N_l' = M_l^-1 lam' = L_l^-T T_l
        Kl = np.einsum("ial,ibl->abl", T, T)  # lam M_l^-1 lam', (q, q, L)
        # the unscaled Schur complement G = Arr - A1r' blockdiag(K_l) A1r (symmetric)
        Kv = np.zeros(m * m)
        Kv[self._targets] = self._pairs_mv @ Kl.transpose(2, 0, 1).ravel()
        Kv = Kv.reshape(m, m)
        G = self.Arr - _symmetrize_lower(Kv)
        if self.scalar_rest:
            lr = self._scalar_rest_scale(f.lambdas)
            LWL = W * lr[:, None] * lr[None, :]
            WLt = W * lr[None, :]  # W Lam_r'
        else:
            Lr = self._lam_rest_dense(f.lambdas)
            WLt = (Lr @ W).T  # W Lam_r' (W symmetric)
            LWL = Lr @ WLt
        g = np.zeros(st.ntheta)
        # leading factor
        Q = self._level_blocks(LWL).transpose(1, 2, 0)
        A = self.A11
        Pm = -np.einsum("akl,kbl->abl", Kl, A)
        for a in range(q):
            Pm[a, a] += 1.0
        R = A - np.einsum("akl,kbl->abl", Q, Pm)
        G1 = np.einsum("akl,kbl->ab", Nt, R)
        blk = st.blocks[0]
        for (r, c), k in zip(blk.positions, blk.theta_index):
            g[k] += 2.0 * G1[c, r]
        # the other factors: level blocks of W Lam_r' G on u_r
        off = 0
        for b in st.blocks[1:]:
            qb, nl = b.q, b.nlevels
            rows = slice(off, off + nl * qb)
            R1 = WLt[rows].reshape(nl, qb, m)
            R2 = G[:, rows].T.reshape(nl, qb, m)
            Xb = np.einsum("lak,lbk->ab", R1, R2)
            for (r, c), k in zip(b.positions, b.theta_index):
                g[k] += 2.0 * Xb[c, r]
            off += nl * qb
        return g

    def _gradient_scalar(self, f: Factor, W: np.ndarray) -> np.ndarray:
        """:meth:`_gradient_blocked` when every term is scalar (q = 1): the same formulas on
        vectors over the levels (a search on a small model pays per numpy call)."""
        m = self.nr
        st = self.structure
        lf, t = f.L11[:, 0, 0], f.T1[:, 0, 0]
        nt = t / lf  # N_l' = M_l^-1 lam
        kl = t * t  # K_l = lam M_l^-1 lam
        Kv = np.zeros(m * m)
        Kv[self._targets] = self._pairs_mv @ kl
        G = self.Arr - _symmetrize_lower(Kv.reshape(m, m))
        lr = self._scalar_rest_scale(f.lambdas)
        WLt = W * lr[None, :]
        Q = self._level_blocks(WLt * lr[:, None])[:, 0, 0]
        a = self.A11[0, 0]
        g = np.zeros(st.ntheta)
        g[st.blocks[0].theta_index[0]] = 2.0 * np.dot(nt, a - Q * (1.0 - kl * a))
        off = 0
        for b in st.blocks[1:]:
            rows = slice(off, off + b.nlevels)
            g[b.theta_index[0]] += 2.0 * float(np.sum(WLt[rows] * G[rows]))
            off += b.nlevels
        return g

    def beta_precision_factor(self, f: Factor) -> np.ndarray:
        """Lower factor R of the fixed effects' marginal precision (X' V~^-1 X = R R')."""
        if f.dense is None:
            return f.sparse.Lx[: self.p, : self.p]
        s = self.nu_rest
        return f.Lrr[s : s + self.p, s : s + self.p]


class _SparseRest:
    """The sparse route of :meth:`BlockedSystem.pieces` for scalar later terms.

    ``S = diag(lr) (Arr - K) diag(lr) + I_u`` with K from the pair map; its lower triangle has
    a pattern fixed by the design, so the map from (Arr, K) to the values of ``S_uu``'s upper
    CSC (= lower CSR), ``S_xy,u`` and ``S_xy,xy`` is built once and each evaluation fills
    values and calls QDLDL's numeric refactorisation.
    """

    def __init__(self, system: "BlockedSystem"):
        nr, nu = system.nr, system.nu_rest
        self.system = system
        self.nu = nu
        tgt = system._targets
        ti, tj = tgt // nr, tgt % nr
        ai, aj = system._arr_lower  # the non-zeros of Arr's lower triangle
        rows = np.concatenate([ti, ai, np.arange(nu)])
        cols = np.concatenate([tj, aj, np.arange(nu)])
        key, inv = np.unique(rows * nr + cols, return_inverse=True)
        self.rows, self.cols = key // nr, key % nr
        self.k_pos = inv[: tgt.size]  # where K's targets land
        self.arr_val = system.Arr[self.rows, self.cols]
        self.diag_u = (self.rows == self.cols) & (self.rows < nu)
        uu = self.rows < nu  # lower triangle: rows < nu implies cols < nu
        self.uu = np.flatnonzero(uu)
        # lower CSR of S_uu == upper CSC of S_uu (QDLDL reads the upper triangle)
        r, c = self.rows[uu], self.cols[uu]
        order = np.lexsort((c, r))
        self.uu = self.uu[order]
        self.indices = c[order].astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=nu))])
        xy = ~uu
        self.xy_u = np.flatnonzero(xy & (self.cols < nu))
        self.xy_xy = np.flatnonzero(xy & (self.cols >= nu))
        nb = len(system.rest_sizes) + 1
        block_of = np.repeat(np.arange(nb), system.rest_sizes + [nr - nu])
        self.block_pair = block_of[self.rows] * nb + block_of[self.cols]
        self._Suu = sp.csc_matrix((np.ones(self.indices.size), self.indices, self.indptr),
                                  shape=(nu, nu))
        self._solver = None
        self.flop_ratio = self._symbolic_flop_ratio()

    def _symbolic_flop_ratio(self) -> float:
        """The sparse factor's flops over the dense one's, from QDLDL's fill on the pattern
        (values made diagonally dominant: the fill depends only on the pattern)."""
        import qdldl

        nu = self.nu
        r, c = self.rows[self.uu], self.cols[self.uu]
        vals = np.where(r == c, float(self.indices.size + 1), 1.0)
        Suu = sp.csc_matrix((vals, self.indices, self.indptr), shape=(nu, nu))
        self._solver = qdldl.Solver(Suu, upper=True)  # its symbolic part serves the search
        L = self._solver.factors()[0].tocsc()
        counts = np.diff(L.indptr).astype(float) + 1.0
        return float((counts**2).sum() / (nu**3 / 3.0))

    def factorize(self, theta: np.ndarray) -> tuple:
        """Fill ``S``'s values at ``theta`` and factor ``S_uu`` (QDLDL, its symbolic part kept
        across calls); returns the lambdas, the leading factor's per-level factors and
        ``L^-1 lam'`` (q, q, L), and the values on the fixed pattern.

        Raises
        ------
        numpy.linalg.LinAlgError
            If ``S_uu`` is not positive definite.
        """
        import qdldl

        sys_ = self.system
        lambdas = sys_.structure.lambdas(theta)
        Lf, T = _lead_factor(lambdas[0], sys_.A11)
        W = np.einsum("ial,ibl->lab", T, T)
        vals = self.arr_val.copy()
        vals[self.k_pos] -= sys_._pairs @ W.ravel()
        # lr_i lr_j from the (block of i, block of j) table: each later block's lambda, 1 for [X, y]
        lb = np.array([lam[0, 0] for lam in lambdas[1:]] + [1.0])
        vals *= np.outer(lb, lb).ravel()[self.block_pair]
        vals[self.diag_u] += 1.0
        nu = self.nu
        Suu = self._Suu
        Suu.data = vals[self.uu]
        try:
            if self._solver is None:
                self._solver = qdldl.Solver(Suu, upper=True)
            else:
                self._solver.update(Suu, upper=True)
        except ValueError as err:
            self._solver = None
            raise np.linalg.LinAlgError(str(err)) from err
        return lambdas, Lf, T, vals

    def _schur(self, theta: np.ndarray):
        """``(lambdas, Lf, T, d, Y, Lx)`` at ``theta``: :meth:`factorize`, then the [X, y]
        block's Schur complement by p + 1 solves and its Cholesky factor."""
        lambdas, Lf, T, vals = self.factorize(theta)
        nu = self.nu
        d = self._solver.factors()[1]
        if not np.all(d > 0):
            raise np.linalg.LinAlgError("the Schur complement is not positive definite")
        m = self.system.p + 1
        B = np.zeros((m, nu))
        B[self.rows[self.xy_u] - nu, self.cols[self.xy_u]] = vals[self.xy_u]
        Sxx = np.zeros((m, m))
        Sxx[self.rows[self.xy_xy] - nu, self.cols[self.xy_xy] - nu] = vals[self.xy_xy]
        Y = np.column_stack([self._solver.solve(B[i]) for i in range(m)])
        Sxx = np.tril(Sxx) + np.tril(Sxx, -1).T - B @ Y
        Lx = cholesky(Sxx, lower=True, check_finite=False)
        return lambdas, Lf, T, d, Y, Lx

    def pieces(self, theta: np.ndarray) -> tuple[float, float, float]:
        _, Lf, _, d, _, Lx = self._schur(theta)
        dl = np.diagonal(Lf, axis1=0, axis2=1)
        ldL2 = 2.0 * float(np.log(dl).sum()) + float(np.log(d).sum())
        dx = np.diag(Lx)
        return ldL2, 2.0 * float(np.log(dx[: self.system.p]).sum()), float(dx[-1] ** 2)

    def factor(self, theta: np.ndarray) -> Factor:
        """The :class:`Factor` at ``theta`` without the dense ``Lrr`` (formed if asked for)."""
        lambdas, Lf, T, d, Y, Lx = self._schur(theta)
        return Factor(theta, lambdas, np.moveaxis(Lf, -1, 0), np.moveaxis(T, -1, 0), None, None,
                      SparseFactor(self.system, d, Y, Lx))

    def inverse_entries(self, theta: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Entries ``(i, j)`` of ``S_uu^-1`` at ``theta``, each on the pattern of ``S_uu`` or
        of its factor (the diagonal, any pair of levels that share a row of the leading
        factor), by the Takahashi equations on QDLDL's factor ``P S_uu P' = (I + L) D (I + L)'``:
        with ``Z = S_uu^-1`` permuted and ``R_j`` the pattern of column ``j`` of L,

        ``Z[R_j, j] = -Z[R_j, R_j] L[R_j, j]``,  ``Z[j, j] = 1 / d_j - L[R_j, j]' Z[R_j, j]``.

        Column j needs Z only on its ancestors in the elimination tree, so the columns of one
        depth of the tree are done together, root first (the selected inverse costs about
        what the factorisation does; no dense inverse is formed).

        Raises
        ------
        numpy.linalg.LinAlgError
            If ``S_uu`` is not positive definite.
        """
        self.factorize(theta)
        L, d, perm = self._solver.factors()
        if not np.all(d > 0):
            raise np.linalg.LinAlgError("the Schur complement is not positive definite")
        plan = self._takahashi_plan(L)
        nu = self.nu
        Z = np.zeros(nu * nu)
        Ld = L.data
        for ab, bj, grp, aj, ja, cols, dgrp, dl, dz, jj in plan:
            if ab.size:
                v = -np.bincount(grp, weights=Z[ab] * Ld[bj], minlength=aj.size)
                Z[aj] = v
                Z[ja] = v
            corr = np.bincount(dgrp, weights=Ld[dl] * Z[dz], minlength=cols.size)
            Z[jj] = 1.0 / d[cols] - corr
        pinv = np.empty(nu, dtype=np.int64)
        pinv[perm] = np.arange(nu)
        return Z[pinv[np.asarray(i)] * nu + pinv[np.asarray(j)]]

    def _takahashi_plan(self, L: sp.csc_matrix) -> list:
        """Index arrays of :meth:`inverse_entries`, one tuple per depth of the elimination tree
        (built once: the pattern of L is fixed by the symbolic factorisation)."""
        plan = getattr(self, "_plan", None)
        if plan is not None and np.array_equal(plan[0], L.indices):
            return plan[1]
        nu = self.nu
        indptr, indices = L.indptr.astype(np.int64), L.indices.astype(np.int64)
        counts = np.diff(indptr)
        # depth in the elimination tree (a column's parent is the first row below it in L)
        parent = np.full(nu, -1, dtype=np.int64)
        has = np.flatnonzero(counts)
        if has.size:
            parent[has] = np.minimum.reduceat(indices, indptr[has])
        depth = [0] * nu
        par = parent.tolist()
        for j in range(nu - 1, -1, -1):
            if par[j] >= 0:
                depth[j] = depth[par[j]] + 1
        depth = np.asarray(depth, dtype=np.int64)
        # the columns by depth, their non-zeros e = (a, j) in that order, and every pair (e, f)
        # of non-zeros of one column: then each depth is a contiguous slice of all three
        c_order = np.argsort(depth, kind="stable")
        cnt_o = counts[c_order]
        ends = np.cumsum(cnt_o)
        e_pos = np.arange(int(ends[-1]) if nu else 0)
        e_sorted = np.repeat(indptr[c_order] - (ends - cnt_o), cnt_o) + e_pos
        col_e = np.repeat(c_order, cnt_o)
        cpos_e = np.repeat(np.arange(nu), cnt_o)  # the column's position in c_order
        k = counts[col_e]
        p_first = np.repeat(e_pos, k)  # position of e in e_sorted
        base = np.cumsum(k) - k
        second = np.repeat(indptr[col_e], k) + (np.arange(p_first.size) - np.repeat(base, k))
        cuts = np.arange(int(depth.max(initial=-1)) + 2)
        c_cut = np.searchsorted(depth[c_order], cuts)
        e_cut = np.searchsorted(depth[col_e], cuts)
        p_cut = np.searchsorted(np.repeat(depth[col_e], k), cuts)
        a_e = indices[e_sorted]
        levels = []
        for t in range(cuts.size - 1):
            e0, e1 = e_cut[t], e_cut[t + 1]
            p0, p1 = p_cut[t], p_cut[t + 1]
            cols = c_order[c_cut[t] : c_cut[t + 1]]
            a, j = a_e[e0:e1], col_e[e0:e1]
            pf, sp_ = p_first[p0:p1], second[p0:p1]
            levels.append((a_e[pf] * nu + indices[sp_], sp_, pf - e0, a * nu + j, j * nu + a,
                           cols, cpos_e[e0:e1] - c_cut[t], e_sorted[e0:e1], a * nu + j,
                           cols * nu + cols))
        self._plan = (L.indices.copy(), levels)
        return levels


def _symmetrize_lower(A: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle is A's (A's strict upper triangle is zero)."""
    out = A + A.T
    out[np.diag_indices(A.shape[0])] *= 0.5
    return out


def _solve_upper(U: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.linalg import solve_triangular

    return solve_triangular(U, b, lower=False, check_finite=False)


__all__ = ["BlockedSystem", "Factor", "SparseFactor", "LinAlgError"]
