"""Random-effects structure: levels, columns, theta layout, stacked Z and per-level cross-products.

lme4's ``reTrms``, MixedModels.jl's ``ReMat``: both fitters (the REML/ML engine and the Bayesian
model) read the random-effects terms through this module, and only this module builds the sparse
random-effects model matrix Z or the per-level sufficient statistics ``sum_{i in level l} u_i v_i'``.

Terms that share a grouping factor are amalgamated into one *factor block* (as MixedModels.jl
does), whose relative covariance factor lambda is lower triangular with structural zeros where
the terms are uncorrelated.  Theta holds the free entries of every lambda, and is ordered as
lme4 orders it: terms sorted by decreasing number of levels (stable), each term's lower
triangle column by column.  The covariance of a block's random effects is
``sigma**2 * lambda @ lambda.T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .design import Design
from .errors import DataError


#: Rows from which sorted rows are summed per level by the indicator matrix: below, building
#: the sparse matrix costs more than the ``np.bincount`` calls it saves (the sums are the same).
INDICATOR_MIN_ROWS = 5000


def level_runs(codes: np.ndarray, nlevels: int) -> np.ndarray | None:
    """Where each level's rows start when the rows are sorted by level and every level has
    rows (the usual layout of large data), else None.

    Returns
    -------
    ndarray of int, shape (nlevels,) or None
        ``starts[l]``: the first row of level ``l``; level ``l`` is rows
        ``starts[l]:starts[l + 1]``.
    """
    if codes.size == 0 or codes[0] != 0 or codes[-1] != nlevels - 1:
        return None
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    if starts.size != nlevels - 1 or np.any(codes[starts] != codes[starts - 1] + 1):
        return None
    return np.concatenate(([0], starts))


def level_indicator(runs: np.ndarray, n: int) -> sp.csr_matrix:
    """The (levels x n) 0/1 matrix of rows sorted by level (``runs``: :func:`level_runs`).

    ``S @ P`` sums the rows of P per level; in each level's rows in order, from 0, as
    ``np.bincount`` sums them, so to the same last bit.
    """
    # scipy keeps 32-bit indices where they fit: made so here, not converted (a copy of each)
    dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    indptr = np.append(runs, n).astype(dtype)
    return sp.csr_matrix((np.ones(n), np.arange(n, dtype=dtype), indptr),
                         shape=(runs.size, n))


def per_level_cross(codes: np.ndarray, U: np.ndarray, V: np.ndarray, nlevels: int,
                    weights: np.ndarray | None = None, symmetric: bool = False,
                    indicator: sp.csr_matrix | None = None) -> np.ndarray:
    """Per-level sums of weighted outer products, level last.

    ``out[a, b, l] = sum over rows i of level l of w_i U[i, a] V[i, b]`` (``w = 1`` if no
    ``weights``): the blocks of ``Z_l' W V_l`` for the rows of each level, without forming Z.

    The products are formed once, as the columns of one (n, pairs) array, and summed per level
    in one pass by the level indicator matrix when the rows are sorted by level
    (:func:`level_indicator`), otherwise by ``np.bincount`` per product; both sum each level's
    rows in order, so the two give the same numbers.

    Parameters
    ----------
    codes : ndarray of int, shape (n,)
        Level of each row.
    U, V : ndarray, shapes (n, a) and (n, b)
    nlevels : int
    weights : ndarray, shape (n,), optional
    symmetric : bool
        ``U is V``: compute the upper triangle and mirror it (a column of ones on the diagonal
        is counted, not summed).
    indicator : sparse matrix, optional
        :func:`level_indicator` of the codes, if the rows are sorted by level (found here
        otherwise, from ``INDICATOR_MIN_ROWS`` rows).

    Returns
    -------
    ndarray, shape (a, b, nlevels)
    """
    a, b = U.shape[1], V.shape[1]
    n = codes.shape[0]
    if indicator is None and n >= INDICATOR_MIN_ROWS:
        runs = level_runs(codes, nlevels)
        indicator = None if runs is None else level_indicator(runs, n)
    pairs = [(i, j) for i in range(a) for j in range(i if symmetric else 0, b)]
    # a column of ones on the diagonal: the rows per level are counted (k None)
    counted = {i for i in range(a) if weights is None and symmetric and np.all(U[:, i] == 1.0)}
    todo, k = [], 0
    for i, j in pairs:
        todo.append((i, j, None if i == j and i in counted else k))
        k += todo[-1][2] is not None
    prods = np.empty((n, k))  # rows of products: what the indicator matrix multiplies
    for i, j, c in todo:
        if c is not None:
            if weights is None:
                np.multiply(U[:, i], V[:, j], out=prods[:, c])
            else:
                np.multiply(weights, U[:, i], out=prods[:, c])
                prods[:, c] *= V[:, j]
    count = None
    if counted:
        count = (np.diff(indicator.indptr) if indicator is not None
                 else np.bincount(codes, minlength=nlevels)).astype(float)
    if k == 0:
        sums = None
    elif indicator is not None:
        sums = (indicator @ prods).T
    else:
        sums = [np.bincount(codes, weights=prods[:, c], minlength=nlevels) for c in range(k)]
    out = np.empty((a, b, nlevels))
    for i, j, c in todo:
        out[i, j] = count if c is None else sums[c]
        if symmetric:
            out[j, i] = out[i, j]
    return out


@dataclass(frozen=True, eq=False)
class FactorBlock:
    """All random-effects columns of one grouping factor.

    Attributes
    ----------
    group : str
    columns : tuple of str
    levels : tuple of str
    codes : ndarray of int, shape (n,)
    Z : ndarray, shape (n, q)
    positions : tuple of (int, int)
        (row, column) in lambda of each free theta entry of this block, in lme4 order.
    theta_index : ndarray of int
        Where each of those entries sits in the full theta vector.
    terms : tuple of (str, slice)
        The original terms of the block: their lme4 group label (``g``, or ``g.1`` for a second
        term on the same factor) and their columns within the block.
    """

    group: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray
    positions: tuple[tuple[int, int], ...]
    theta_index: np.ndarray
    terms: tuple[tuple[str, slice], ...]

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def varcorr_rows(self, G: np.ndarray) -> list[dict]:
        """Rows of lme4's ``as.data.frame(VarCorr())`` for this block's covariance G.

        Per original term: its variances, then the correlations between its columns.  A
        negative variance (possible in a nobound fit) has no sd (NaN), nor do its correlations.
        """
        rows = []
        for glabel, sl in self.terms:
            cols = self.columns[sl]
            Gt = G[sl, sl]
            d = np.diag(Gt)
            sds = np.where(d >= 0, np.sqrt(np.abs(d)), np.nan)
            for i, c in enumerate(cols):
                rows.append({"grp": glabel, "var1": c, "var2": None, "vcov": float(d[i]),
                             "sdcor": float(sds[i]), "sdcor_ci": None})
            for i in range(len(cols)):
                for j in range(i + 1, len(cols)):
                    den = sds[i] * sds[j]
                    cor = Gt[i, j] / den if den > 0 else float("nan")
                    rows.append({"grp": glabel, "var1": cols[i], "var2": cols[j],
                                 "vcov": float(Gt[i, j]), "sdcor": float(cor), "sdcor_ci": None})
        return rows

    def sparse_Z(self, row_scale: np.ndarray | None = None) -> sp.csr_matrix:
        """This block's n x (levels q) random-effects model matrix, level-major columns.

        Row i has the block's columns ``Z[i]`` (times ``row_scale[i]`` if given) in the
        columns of its level: ``Z @ b.ravel()`` is ``sum_k Z[i, k] b[level_i, k]``.
        """
        Z = self.Z if row_scale is None else self.Z * row_scale[:, None]
        n, q = Z.shape
        # q entries per row, in increasing columns: the CSR arrays directly (no COO sort)
        cols = (self.codes[:, None] * q + np.arange(q)[None, :]).ravel()
        return sp.csr_matrix((np.ascontiguousarray(Z).ravel(), cols, np.arange(0, n * q + 1, q)),
                             shape=(n, self.nlevels * q))

    def cross(self, U: np.ndarray, V: np.ndarray, weights: np.ndarray | None = None,
              symmetric: bool = False) -> np.ndarray:
        """Per-level ``sum w_i U_i V_i'`` over this block's levels, shape (a, b, levels); see
        :func:`per_level_cross`."""
        return per_level_cross(self.codes, U, V, self.nlevels, weights, symmetric,
                               indicator=self.indicator)

    @cached_property
    def indicator(self) -> sp.csr_matrix | None:
        """:func:`level_indicator` of this block's rows if they are sorted by level and
        there are at least ``INDICATOR_MIN_ROWS`` of them, else None (found once)."""
        if self.codes.shape[0] < INDICATOR_MIN_ROWS:
            return None
        runs = level_runs(self.codes, self.nlevels)
        return None if runs is None else level_indicator(runs, self.codes.shape[0])

    @cached_property
    def _lam_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions in a q x q matrix of this block's theta entries, and their indices
        in theta (a search builds lambda at every evaluation)."""
        rows, cols = zip(*self.positions)
        flat = np.asarray(rows) * self.q + np.asarray(cols)
        return flat, np.asarray(self.theta_index)

    def lam(self, theta: np.ndarray) -> np.ndarray:
        """The q x q lower-triangular relative covariance factor for ``theta``."""
        flat, index = self._lam_index
        lam = np.zeros(self.q * self.q)
        lam[flat] = np.asarray(theta)[index]
        return lam.reshape(self.q, self.q)


@dataclass(frozen=True, eq=False)
class Structure:
    """The factor blocks of a design, leading block (most levels) first."""

    blocks: tuple[FactorBlock, ...]
    ntheta: int
    lower: np.ndarray
    theta0: np.ndarray
    diagonal: np.ndarray  # bool: which theta entries sit on a lambda diagonal

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """One lambda matrix per block."""
        theta = np.asarray(theta, dtype=float)
        return [b.lam(theta) for b in self.blocks]

    @property
    def nranef(self) -> int:
        """Number of stacked random effects (levels x columns over all blocks)."""
        return sum(b.nlevels * b.q for b in self.blocks)

    def stacked_Z(self, row_scale: np.ndarray | None = None) -> sp.csr_matrix:
        """The sparse n x :attr:`nranef` matrix of all blocks' Z, block by block, level-major."""
        return sp.hstack([b.sparse_Z(row_scale) for b in self.blocks], format="csr")


def build_structure(design: Design) -> Structure:
    """Group a design's random terms into factor blocks and lay out theta as lme4 does."""
    order = sorted(range(len(design.terms)), key=lambda i: -design.terms[i].nlevels)
    # lme4 order of theta: terms sorted by decreasing levels, lower triangle column-major.
    term_theta: dict[int, list[int]] = {}
    k = 0
    diag_flags = []
    for i in order:
        q = design.terms[i].q
        idx = []
        for c in range(q):
            for r in range(c, q):
                idx.append(k)
                diag_flags.append(r == c)
                k += 1
        term_theta[i] = idx
    ntheta = k
    seen_groups: dict[str, int] = {}
    by_group: dict[str, list[int]] = {}
    for i in order:
        by_group.setdefault(design.terms[i].group, []).append(i)
    blocks = []
    for group, members in by_group.items():
        columns: list[str] = []
        positions: list[tuple[int, int]] = []
        theta_index: list[int] = []
        terms = []
        Zs = []
        for i in members:
            t = design.terms[i]
            off = len(columns)
            n_seen = seen_groups.get(group, 0)
            seen_groups[group] = n_seen + 1
            label = group if n_seen == 0 else f"{group}.{n_seen}"
            terms.append((label, slice(off, off + t.q)))
            columns.extend(t.columns)
            Zs.append(t.Z)
            j = 0
            for c in range(t.q):
                for r in range(c, t.q):
                    positions.append((off + r, off + c))
                    theta_index.append(term_theta[i][j])
                    j += 1
        first = design.terms[members[0]]
        for i in members[1:]:
            if not np.array_equal(design.terms[i].codes, first.codes):
                raise DataError(f"the terms on grouping factor '{group}' do not share its levels")
        blocks.append(
            FactorBlock(
                group=group,
                columns=tuple(columns),
                levels=first.levels,
                codes=first.codes,
                Z=Zs[0] if len(Zs) == 1 else np.asfortranarray(np.hstack(Zs)),
                positions=tuple(positions),
                theta_index=np.asarray(theta_index, dtype=np.int64),
                terms=tuple(terms),
            )
        )
    blocks.sort(key=lambda b: -b.nlevels)
    diagonal = np.asarray(diag_flags, dtype=bool)
    lower = np.where(diagonal, 0.0, -np.inf)
    theta0 = np.where(diagonal, 1.0, 0.0)
    return Structure(tuple(blocks), ntheta, lower, theta0, diagonal)
