"""Random-effects structure and its relative covariance parameters theta.

Terms that share a grouping factor are amalgamated into one *factor block* (as MixedModels.jl
does), whose relative covariance factor lambda is lower triangular with structural zeros where
the terms are uncorrelated.  Theta holds the free entries of every lambda, and is ordered as
lme4 orders it: terms sorted by decreasing number of levels (stable), each term's lower
triangle column by column.  The covariance of a block's random effects is
``sigma**2 * lambda @ lambda.T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design import Design


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

    def lam(self, theta: np.ndarray) -> np.ndarray:
        """The q x q lower-triangular relative covariance factor for ``theta``."""
        lam = np.zeros((self.q, self.q))
        rows, cols = zip(*self.positions)
        lam[rows, cols] = theta[self.theta_index]
        return lam


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
                raise AssertionError("terms on one grouping factor must share its levels")
        blocks.append(
            FactorBlock(
                group=group,
                columns=tuple(columns),
                levels=first.levels,
                codes=first.codes,
                Z=np.hstack(Zs),
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
