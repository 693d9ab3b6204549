"""Residual structures: var(e) = sigma^2 Lambda(u), Lambda block diagonal by group.

nlme writes a residual structure as a correlation (``corStruct``) and a variance function
(``varFunc``); for the rows of group g::

    Lambda_g(u) = D_g(u)^(1/2) R_g(u) D_g(u)^(1/2)

with R_g a correlation matrix and D_g a diagonal of variance ratios.  Every structure is a
:class:`ResidualStructure`: it owns the rows' groups and positions and, for a vector ``u`` of
unconstrained parameters (nlme's "coefficients", on the real line), it whitens a block of rows::

    whiten(A, u) = (L_g^-1 A_g for every group g, in A's row order;  sum_g log|Lambda_g|)

with L_g the lower Cholesky factor of Lambda_g.  A fitter that needs var(y) = Z G Z' + sigma^2
Lambda whitens y, X and (when the groups are nested in the random-effects grouping) the
random-effects columns, then fits an ordinary model to the whitened rows and adds
``sum_g log|Lambda_g|`` to -2 log L.  No n x n matrix is formed: groups with the same pattern
(same positions, same variance strata) share one factor.

This module holds the interface and the correlation structures ``cs`` (``corCompSymm``),
``ar1`` (``corAR1``), ``car1`` (``corCAR1``) and ``symm`` (``corSymm``)::

    cs:   R_g = (1 - Rho) I + Rho J,  Rho in (-1/(T_max - 1), 1),
          u = log((Rho + 1/(T_max - 1)) / (1 - Rho))
    ar1:  (R_g)_ij = Phi^|t_i - t_j|,  Phi in (-1, 1),  u = log((1 + Phi) / (1 - Phi))
    car1: (R_g)_ij = Phi^|t_i - t_j| for continuous t,  Phi in (0, 1),  u = log(Phi / (1 - Phi))
    symm: (R_g)_ij = C[t_i, t_j], C a general T x T correlation matrix (t an integer position),
          C = U'U with U upper triangular, column j of U on the unit sphere:
              U_1j = cos a_1,  U_kj = sin a_1 ... sin a_(k-1) cos a_k,
              U_jj = sin a_1 ... sin a_(j-1)
          a in (0, pi), u = log(a / (pi - a)) (Pinheiro and Bates' spherical parametrisation,
          nlme's unconstrained scale for ``corSymm``)

(nlme's unconstrained scales; T_max is the largest group).  nlme's ``intervals()`` for ``corSymm``
is Wald on each correlation's own scale log((1 + r)/(1 - r)) (nlme's ``corNatural``), not on the
spherical angles: :meth:`ResidualStructure.to_interval` is that scale, the unconstrained one for
the others.  The variance functions and a correlation combined with one are
:mod:`workbench.gls.variance`'s.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np


class Parametrized(ABC):
    """Parameters on nlme's two scales: natural (``names``) and unconstrained (``u``), the
    part every correlation structure and variance function shares."""

    names: tuple[str, ...]

    @property
    def size(self) -> int:
        """The number of unconstrained parameters."""
        return len(self.names)

    @abstractmethod
    def start(self) -> np.ndarray:
        """nlme's starting value of ``u``."""

    @abstractmethod
    def natural(self, u: np.ndarray) -> np.ndarray:
        """The natural parameters (in :attr:`names` order) for unconstrained ``u``."""

    @abstractmethod
    def unconstrained(self, natural: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`natural`."""


class ResidualStructure(Parametrized):
    """A residual covariance sigma^2 Lambda(u), block diagonal by group.

    Attributes
    ----------
    names : tuple of str
        nlme's names of the natural parameters (``("Rho",)``, ``("Phi",)``, ...), in the order
        :meth:`natural` returns them.
    codes : ndarray of int
        The group of each row (0 .. ngroups - 1), aligned with the design's rows.
    pos : ndarray of int
        The row's integer position within its group.
    """

    names: tuple[str, ...]

    def __init__(self, codes: np.ndarray, pos: np.ndarray):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.pos = np.asarray(pos, dtype=np.int64)
        order = np.lexsort((self.pos, self.codes))
        c = self.codes[order]
        cuts = np.flatnonzero(np.diff(c)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(c)]])
        #: per group, the row indices (design order) sorted by position
        self.blocks = [order[s:e] for s, e in zip(starts, ends)]
        self.ngroups = len(self.blocks)
        self.tmax = int(max((len(b) for b in self.blocks), default=0))

    @abstractmethod
    def pattern(self, rows: np.ndarray) -> tuple:
        """A hashable key: groups with equal keys have equal Lambda_g for every u."""

    @abstractmethod
    def block(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Lambda_g(u) for the rows of one group (sorted by position)."""

    def to_interval(self, natural: np.ndarray) -> np.ndarray:
        """The scale of nlme's Wald intervals (coordinate-wise increasing in each natural
        parameter); the unconstrained scale unless a structure says otherwise."""
        return self.unconstrained(natural)

    def from_interval(self, v: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_interval`."""
        return self.natural(v)

    def whiten(self, A: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
        """``(L^-1 A, sum_g log|Lambda_g|)``; rows of the result in A's row order.

        Parameters
        ----------
        A : ndarray, shape (n,) or (n, k)
            Rows aligned with :attr:`codes`.
        u : ndarray
            Unconstrained parameters.
        """
        A = np.asarray(A, dtype=float)
        vec = A.ndim == 1
        A2 = A[:, None] if vec else A
        out = np.empty_like(A2)
        logdet = 0.0
        for rows_list in self._groups_by_pattern().values():
            idx = np.stack(rows_list)  # (groups, T)
            L = np.linalg.cholesky(self.block(rows_list[0], u))
            logdet += idx.shape[0] * 2.0 * float(np.sum(np.log(np.diag(L))))
            out[idx] = np.linalg.solve(L, A2[idx])
        return (out[:, 0] if vec else out), logdet

    def _groups_by_pattern(self) -> dict[tuple, list[np.ndarray]]:
        cached = getattr(self, "_patterns", None)
        if cached is None:
            cached = {}
            for rows in self.blocks:
                cached.setdefault((len(rows),) + tuple(self.pattern(rows)), []).append(rows)
            self._patterns = cached
        return cached


class CompoundSymmetry(ResidualStructure):
    """nlme's ``corCompSymm``: one correlation Rho between any two rows of a group."""

    names = ("Rho",)

    @property
    def lower(self) -> float:
        return -1.0 / (self.tmax - 1)

    def start(self):
        return self.unconstrained(np.array([0.0]))

    def natural(self, u):
        e = math.exp(float(u[0]))
        return np.array([(self.lower + e) / (1.0 + e)])

    def unconstrained(self, natural):
        r = float(natural[0])
        return np.array([math.log((r - self.lower) / (1.0 - r))])

    def pattern(self, rows):
        return ()

    def block(self, rows, u):
        rho = self.natural(u)[0]
        T = len(rows)
        return (1.0 - rho) * np.eye(T) + rho * np.ones((T, T))


class AR1(ResidualStructure):
    """nlme's ``corAR1``: correlation Phi^|t_i - t_j| at integer positions t."""

    names = ("Phi",)

    def start(self):
        return np.array([0.0])

    def natural(self, u):
        return np.array([math.tanh(float(u[0]) / 2.0)])

    def unconstrained(self, natural):
        p = float(natural[0])
        return np.array([math.log((1.0 + p) / (1.0 - p))])

    def pattern(self, rows):
        t = self.pos[rows]
        return tuple((t - t[0]).tolist())

    def block(self, rows, u):
        phi = self.natural(u)[0]
        t = self.pos[rows].astype(float)
        return phi ** np.abs(t[:, None] - t[None, :])


class CAR1(ResidualStructure):
    """nlme's ``corCAR1``: correlation Phi^|t_i - t_j| at continuous times t, Phi in (0, 1).

    ``pos`` may be any real times (distinct within a group); :attr:`time` keeps them and
    :attr:`pos` holds each row's rank within its group.
    """

    names = ("Phi",)

    def __init__(self, codes: np.ndarray, pos: np.ndarray):
        codes = np.asarray(codes, dtype=np.int64)
        time = np.asarray(pos, dtype=float)
        order = np.lexsort((time, codes))
        c = codes[order]
        rank = np.empty(len(c), dtype=np.int64)
        rank[order] = np.arange(len(c)) - np.searchsorted(c, c)
        super().__init__(codes, rank)
        #: the rows' times
        self.time = time

    def start(self):
        return self.unconstrained(np.array([0.2]))  # nlme's default value

    def natural(self, u):
        return np.array([1.0 / (1.0 + math.exp(-float(u[0])))])

    def unconstrained(self, natural):
        p = float(natural[0])
        return np.array([math.log(p / (1.0 - p))])

    def pattern(self, rows):
        t = self.time[rows]
        return tuple((t - t[0]).tolist())

    def block(self, rows, u):
        phi = self.natural(u)[0]
        t = self.time[rows]
        return phi ** np.abs(t[:, None] - t[None, :])


class Symm(ResidualStructure):
    """nlme's ``corSymm``: a general correlation matrix C over the positions 1..T.

    Positions are counted from the smallest in the data (nlme's covariate 1, 2, ..., T).  The
    natural parameters are nlme's ``cor(i,j)``, i < j, in nlme's order (cor(1,2), cor(1,3), ...,
    cor(1,T), cor(2,3), ...); the unconstrained ones the spherical angles' logits, column by
    column of U (module docstring).
    """

    def __init__(self, codes: np.ndarray, pos: np.ndarray):
        super().__init__(codes, pos)
        #: each row's 0-based index into C
        self.index = self.pos - (int(self.pos.min()) if len(self.pos) else 0)
        #: T, the dimension of C
        self.dim = int(self.index.max()) + 1 if len(self.index) else 0
        T = self.dim
        self._pairs = np.array([(i, j) for i in range(T) for j in range(i + 1, T)],
                               dtype=np.int64).reshape(-1, 2)
        self.names = tuple(f"cor({i + 1},{j + 1})" for i, j in self._pairs)

    def start(self):
        return np.zeros(len(self.names))  # angles pi/2: no correlation

    def matrix(self, u: np.ndarray) -> np.ndarray:
        """C(u), the T x T correlation matrix."""
        T = self.dim
        a = math.pi / (1.0 + np.exp(-np.asarray(u, dtype=float)))
        U = np.zeros((T, T))
        U[0, 0] = 1.0
        k = 0
        for j in range(1, T):
            s = 1.0
            for i in range(j):
                U[i, j] = s * math.cos(a[k])
                s *= math.sin(a[k])
                k += 1
            U[j, j] = s
        return U.T @ U

    def natural(self, u):
        C = self.matrix(u)
        return C[self._pairs[:, 0], self._pairs[:, 1]]

    def _from_natural(self, natural) -> np.ndarray:
        C = np.eye(self.dim)
        C[self._pairs[:, 0], self._pairs[:, 1]] = natural
        C[self._pairs[:, 1], self._pairs[:, 0]] = natural
        return C

    def unconstrained(self, natural):
        U = np.linalg.cholesky(self._from_natural(np.asarray(natural, dtype=float))).T
        out = []
        for j in range(1, self.dim):
            tail = np.sqrt(np.cumsum(U[j::-1, j] ** 2)[::-1])  # |U[i:j+1, j]| for i = 0..j
            a = np.arccos(np.clip(U[:j, j] / tail[:j], -1.0, 1.0))
            out.extend(np.log(a / (math.pi - a)))
        return np.array(out)

    def to_interval(self, natural):
        r = np.asarray(natural, dtype=float)
        return np.log((1.0 + r) / (1.0 - r))

    def from_interval(self, v):
        return np.tanh(np.asarray(v, dtype=float) / 2.0)

    def pattern(self, rows):
        return tuple(self.index[rows].tolist())

    def block(self, rows, u):
        i = self.index[rows]
        return self.matrix(u)[np.ix_(i, i)]


#: Correlation structures by the name written in ``correlation=``.
STRUCTURES: dict[str, type[ResidualStructure]] = {"cs": CompoundSymmetry, "ar1": AR1,
                                                   "car1": CAR1, "symm": Symm}


__all__ = ["Parametrized", "ResidualStructure", "CompoundSymmetry", "AR1", "CAR1", "Symm",
           "STRUCTURES"]
