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

This module holds the interface and the correlation structures ``cs`` (``corCompSymm``) and
``ar1`` (``corAR1``)::

    cs:  R_g = (1 - Rho) I + Rho J,  Rho in (-1/(T_max - 1), 1),
         u = log((Rho + 1/(T_max - 1)) / (1 - Rho))
    ar1: (R_g)_ij = Phi^|t_i - t_j|,  Phi in (-1, 1),  u = log((1 + Phi) / (1 - Phi))

(nlme's unconstrained scales; T_max is the largest group).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np


class ResidualStructure(ABC):
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

    @abstractmethod
    def pattern(self, rows: np.ndarray) -> tuple:
        """A hashable key: groups with equal keys have equal Lambda_g for every u."""

    @abstractmethod
    def block(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Lambda_g(u) for the rows of one group (sorted by position)."""

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


#: Correlation structures by the name written in ``correlation=``.
STRUCTURES: dict[str, type[ResidualStructure]] = {"cs": CompoundSymmetry, "ar1": AR1}


__all__ = ["ResidualStructure", "CompoundSymmetry", "AR1", "STRUCTURES"]
