"""Variance functions (nlme's ``varFunc``) and a correlation combined with one.

A variance function gives each row a variance ratio d_i(u) > 0, var(e_i) = sigma^2 d_i::

    ident(~ 1 | f):  d_i = delta_(f_i)^2, delta = 1 for the reference stratum (nlme's first
                     stratum) and one ratio delta_s > 0 for each other level s of f
                     (``varIdent``; nlme's parameters the sd ratios delta_s, u_s = log delta_s)
    power(~ x):      d_i = |x_i|^(2 power)  (``varPower`` on a covariate; u = power)

With a correlation structure R_g the residual block of group g is (:mod:`.residual`)::

    Lambda_g = D_g^(1/2) R_g D_g^(1/2),   L_g = D_g^(1/2) L_R,g,
    L_g^-1 A_g = L_R,g^-1 (D_g^-1/2 A_g),  log|Lambda_g| = log|R_g| + sum_(i in g) log d_i

so whitening divides each row by sqrt(d_i) and then whitens by the correlation as before.
:class:`Combined` is that as one :class:`~workbench.gls.residual.ResidualStructure`; with no
correlation its groups are single rows.  Its parameters are the correlation's followed by the
variance function's, each on nlme's scales.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from .residual import Parametrized, ResidualStructure


class VarianceFunction(Parametrized):
    """Variance ratios d_i(u) of the rows (nlme's ``varFunc``; weights 1 / sqrt(d_i)).

    Attributes
    ----------
    names : tuple of str
        nlme's names of the natural parameters.
    """

    @abstractmethod
    def variances(self, u: np.ndarray) -> np.ndarray:
        """d_i(u) for every row."""

    @abstractmethod
    def key(self, rows: np.ndarray) -> tuple:
        """A hashable key: rows with equal keys have equal d for every u."""


class VarIdent(VarianceFunction):
    """nlme's ``varIdent(form = ~ 1 | f)``: one sd ratio per stratum, the first stratum's 1.

    Parameters
    ----------
    strata : array of str
        Each row's stratum.
    order : array of int, optional
        The row order in which the first stratum is read (nlme: the data sorted by the
        correlation's groups); data order by default.
    """

    def __init__(self, strata, order=None):
        strata = np.asarray(strata).astype(str)
        seen = strata if order is None else strata[np.asarray(order)]
        _, first = np.unique(seen, return_index=True)
        levels = seen[np.sort(first)]
        #: the strata in nlme's order, the reference first
        self.levels = tuple(levels.tolist())
        remap = {lv: k for k, lv in enumerate(self.levels)}
        self.codes = np.array([remap[s] for s in strata], dtype=np.int64)
        self.names = self.levels[1:]

    def start(self):
        return np.zeros(self.size)

    def natural(self, u):
        return np.exp(np.asarray(u, dtype=float))

    def unconstrained(self, natural):
        return np.log(np.asarray(natural, dtype=float))

    def variances(self, u):
        return np.concatenate([[1.0], self.natural(u)])[self.codes] ** 2

    def key(self, rows):
        return tuple(self.codes[rows].tolist())


class VarPower(VarianceFunction):
    """nlme's ``varPower(form = ~ x)``: sd proportional to |x|^power (x nonzero)."""

    names = ("power",)

    def __init__(self, x):
        x = np.asarray(x, dtype=float)
        #: log |x_i|
        self.logx = np.log(np.abs(x))
        self._x = x

    def start(self):
        return np.zeros(1)

    def natural(self, u):
        return np.asarray(u, dtype=float).copy()

    def unconstrained(self, natural):
        return np.asarray(natural, dtype=float).copy()

    def variances(self, u):
        return np.exp(2.0 * float(u[0]) * self.logx)

    def key(self, rows):
        return tuple(np.abs(self._x[rows]).tolist())


class Combined(ResidualStructure):
    """A correlation structure and a variance function as one residual structure.

    Lambda_g = D_g^(1/2) R_g D_g^(1/2) (module docstring); either part may be None (not both).
    ``u`` is the correlation's parameters followed by the variance function's.

    Parameters
    ----------
    correlation : ResidualStructure or None
    variance : VarianceFunction or None
    n : int
        The number of rows (their groups are single rows when there is no correlation).
    """

    def __init__(self, correlation: ResidualStructure | None,
                 variance: VarianceFunction | None, n: int):
        if correlation is None and variance is None:
            raise ValueError("a combined structure needs a correlation or a variance function")
        if correlation is None:
            super().__init__(np.arange(n), np.zeros(n, dtype=np.int64))
        else:
            super().__init__(correlation.codes, correlation.pos)
        self.correlation = correlation
        self.variance = variance
        self.names = (correlation.names if correlation else ()) + \
            (variance.names if variance else ())
        self._k = correlation.size if correlation else 0

    def split(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the correlation's u, the variance function's u)."""
        u = np.asarray(u, dtype=float)
        return u[:self._k], u[self._k:]

    def _join(self, cor_fn, var_fn, x):
        a, b = self.split(x)
        parts = [cor_fn(a)] if self.correlation else []
        if self.variance:
            parts.append(var_fn(b))
        return np.concatenate(parts)

    def start(self):
        parts = [self.correlation.start()] if self.correlation else []
        if self.variance:
            parts.append(self.variance.start())
        return np.concatenate(parts)

    def natural(self, u):
        c, v = self.correlation, self.variance
        return self._join(c and c.natural, v and v.natural, u)

    def unconstrained(self, natural):
        c, v = self.correlation, self.variance
        return self._join(c and c.unconstrained, v and v.unconstrained, natural)

    def to_interval(self, natural):
        c, v = self.correlation, self.variance
        return self._join(c and c.to_interval, v and v.unconstrained, natural)

    def from_interval(self, v_):
        c, v = self.correlation, self.variance
        return self._join(c and c.from_interval, v and v.natural, v_)

    def pattern(self, rows):
        head = self.correlation.pattern(rows) if self.correlation else ()
        return tuple(head) + (self.variance.key(rows) if self.variance else ())

    def block(self, rows, u):
        uc, uv = self.split(u)
        R = self.correlation.block(rows, uc) if self.correlation else np.eye(len(rows))
        if not self.variance:
            return R
        s = np.sqrt(self.variance.variances(uv)[rows])
        return s[:, None] * R * s[None, :]

    def whiten(self, A, u):
        uc, uv = self.split(u)
        A = np.asarray(A, dtype=float)
        logdet = 0.0
        if self.variance:
            d = self.variance.variances(uv)
            A = A / (np.sqrt(d) if A.ndim == 1 else np.sqrt(d)[:, None])
            logdet += float(np.sum(np.log(d)))
        if self.correlation:
            A, ld = self.correlation.whiten(A, uc)
            logdet += ld
        return A, logdet


#: Variance functions by the name written in ``variance=``.
VARIANCES: dict[str, type[VarianceFunction]] = {"ident": VarIdent, "power": VarPower}


__all__ = ["VarianceFunction", "VarIdent", "VarPower", "Combined", "VARIANCES"]
