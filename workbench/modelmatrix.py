"""Evaluate formula variables on a data frame and build R's model matrix from :class:`Terms`.

A variable (``x``, ``I(age^2)``, ``log(TICKS + 1)``, ``poly(age, 4)``, ``factor(dietn)``) is
evaluated on the data into a :class:`Numeric` (n x k columns) or a :class:`Factor` (level codes,
level labels, ordered or not, its contrast).  ``model_matrix`` then follows R's
``model.matrix``:

* the intercept column ``(Intercept)`` first, then the terms in order;
* a factor in a term is coded by its contrasts when the term without it is in the model (the
  empty term counts as present) and by one indicator per level otherwise; without an intercept
  the first factor of the first term holding a factor gets indicators;
* an interaction's columns are the products of its variables' columns, the first variable
  varying fastest, named ``a:b``;
* a factor's columns are named label + level (treatment) or label + contrast name
  (``f1`` for sum and Helmert, ``f.L`` for polynomial), a matrix's label + column name.

Unordered factors use treatment contrasts (reference: the first level: a pandas Categorical's
first category, else the sorted first value), ordered factors R's ``contr.poly``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .contrasts import canonical, contrast_matrix, orthopoly
from .errors import DataError, FormulaError
from .terms import Terms, deparse

INTERCEPT = "(Intercept)"


@dataclass(frozen=True, eq=False)
class Numeric:
    """Numeric columns (n x k); ``colnames`` None for a plain vector."""

    values: np.ndarray
    colnames: tuple[str, ...] | None = None

    def missing(self) -> np.ndarray:
        return np.isnan(self.values).any(axis=1)

    def take(self, rows) -> "Numeric":
        return Numeric(self.values[rows], self.colnames)


@dataclass(frozen=True, eq=False)
class Factor:
    """A factor: codes (-1 for missing), level labels, ordered flag, contrast kind; ``used``
    when every level is known to have a row (levels found from the values)."""

    codes: np.ndarray
    levels: tuple[str, ...]
    ordered: bool = False
    contrast: str | None = None
    used: bool = False

    def missing(self) -> np.ndarray:
        return self.codes < 0

    def take(self, rows) -> "Factor":
        """Rows ``rows`` (``None``: all), unused levels dropped (lme4's
        ``drop.unused.levels``)."""
        if rows is None:
            if self.used:
                return self
            rows = slice(None)
        codes = self.codes[rows]
        complete = codes.size == 0 or codes.min() >= 0
        counts = np.bincount(codes if complete else codes[codes >= 0],
                             minlength=len(self.levels))
        used = np.flatnonzero(counts)
        if used.size == len(self.levels):
            return Factor(codes, self.levels, self.ordered, self.contrast, used=True)
        remap = np.full(len(self.levels), -1)
        remap[used] = np.arange(used.size)
        new = remap[codes] if complete else np.where(codes >= 0, remap[np.clip(codes, 0, None)],
                                                     -1)
        levels = self.levels
        return Factor(new, tuple([levels[i] for i in used.tolist()]), self.ordered,
                      self.contrast, used=True)


def _r_number(v: float) -> str:
    """R's ``as.character`` of a number (15 significant digits)."""
    if np.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    s = f"{v:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{'-' if exp.startswith('-') else '+'}{int(exp.lstrip('+-')):02d}"
    return s


def _numeric_codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 for missing) of a numeric column into its sorted distinct values, and those
    values (as floats).

    Sorted data (group ids in row order, the usual layout of large data) are coded from the
    runs without a sort; other integers by hashing (``pd.factorize``), other floats by
    ``np.unique``.
    """
    arr = s.to_numpy()
    if arr.dtype.kind in "iu":
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if np.all(arr[1:] >= arr[:-1]):
            return _sorted_codes(arr)
        codes, uniq = pd.factorize(arr, sort=True)
        return codes.astype(np.int64, copy=False), uniq.astype(float)
    arr = s.to_numpy(dtype=float)
    if arr.size and np.all(arr[1:] >= arr[:-1]):  # False wherever a NaN is compared
        return _sorted_codes(arr)
    ok = ~np.isnan(arr)
    uniq = np.unique(arr[ok])
    codes = np.full(arr.shape[0], -1, dtype=np.int64)
    codes[ok] = np.searchsorted(uniq, arr[ok])
    return codes, uniq


@functools.lru_cache(maxsize=8)
def _range_labels(start: int, size: int) -> tuple[str, ...]:
    """The labels of the integer levels ``start .. start + size - 1`` (made once per range:
    refits of data with the same group ids, as in simulations and benchmarks, reuse them)."""
    return tuple(map(str, range(start, start + size)))


def _sorted_codes(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values of a non-empty non-decreasing array, from its runs."""
    starts = np.flatnonzero(arr[1:] != arr[:-1]) + 1
    counts = np.diff(starts, prepend=0, append=arr.size)
    codes = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    return codes, arr[np.concatenate(([0], starts))].astype(float)


def factor_of(col, name: str = "") -> Factor:
    """A data column (or array) as an R factor.

    Categoricals keep their category order (and ordered flag); booleans have levels FALSE,
    TRUE; numbers sort numerically and print as R prints them; anything else sorts as text in
    R's collation for a UTF-8 locale (case-insensitive, then lower case first).
    """
    s = col if isinstance(col, pd.Series) else pd.Series(col)
    if isinstance(s.dtype, pd.CategoricalDtype):
        levels = tuple(str(c) for c in s.cat.categories)
        return Factor(s.cat.codes.to_numpy(np.int64), levels, bool(s.cat.ordered))
    if pd.api.types.is_bool_dtype(s):
        vals = s.astype("boolean")
        codes = np.where(vals.isna(), -1, vals.fillna(False).astype(int)).astype(np.int64)
        return Factor(codes, ("FALSE", "TRUE"))
    if pd.api.types.is_numeric_dtype(s):
        codes, uniq = _numeric_codes(s)
        if uniq.size and np.all(uniq == np.round(uniq)) and np.abs(uniq).max() < 1e15:
            if uniq[-1] - uniq[0] == uniq.size - 1:  # sorted, distinct: the whole range
                return Factor(codes, _range_labels(int(uniq[0]), uniq.size), used=True)
            return Factor(codes, tuple(map(str, uniq.astype(np.int64).tolist())), used=True)
        return Factor(codes, tuple(_r_number(u) for u in uniq), used=True)
    # hash the rows once (pd.factorize), then sort only the distinct values; missing rows and
    # values seen only on them are not levels
    if isinstance(s.dtype, pd.StringDtype):
        raw, uniq = pd.factorize(s, use_na_sentinel=True)  # missing: -1
    else:
        raw, uniq = pd.factorize(s.astype(str), use_na_sentinel=True)
        raw = np.where(s.notna().to_numpy(), raw, -1)
    ok = raw >= 0
    present = np.flatnonzero(np.bincount(raw[ok], minlength=len(uniq)))
    values = uniq.tolist()
    labels = [str(values[i]) for i in present]
    # R sorts text by the locale's collation (ICU in a UTF-8 locale): case-insensitive first,
    # lower case before upper case on ties: "_x", "a", "A", "b", "B"
    order = sorted(range(len(labels)), key=lambda i: (labels[i].casefold(), labels[i].swapcase(),
                                                      labels[i]))
    rank = np.full(len(uniq) + 1, -1, dtype=np.int64)  # last entry: missing (raw == -1)
    rank[present[order]] = np.arange(len(order))
    return Factor(rank[raw], tuple(labels[i] for i in order), used=True)


_UNARY = {"log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "exp": np.exp,
          "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
          "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
          "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "floor": np.floor,
          "ceiling": np.ceil, "round": np.round, "sign": np.sign, "trunc": np.trunc}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
          "%%": np.mod, "%/%": np.floor_divide}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
            "<=": np.less_equal, ">=": np.greater_equal}
_CONSTANTS = {"pi": np.pi, "TRUE": 1.0, "FALSE": 0.0, "T": 1.0, "F": 0.0}


class Evaluator:
    """Evaluates expression trees on the columns of one data frame."""

    def __init__(self, data: pd.DataFrame, what: str = "formula"):
        self.data = data
        self.n = data.shape[0]
        self.what = what
        self.lookup = {str(c): c for c in data.columns}
        self._factors: dict[str, Factor] = {}
        self._columns: dict[str, pd.Series] = {}

    def factor(self, name: str) -> Factor:
        """Column ``name`` as a factor (:func:`factor_of`), computed once per evaluator."""
        f = self._factors.get(name)
        if f is None:
            f = self._factors[name] = factor_of(self.column(name))
        return f

    def column(self, name: str):
        if name in self.lookup:
            col = self._columns.get(name)
            if col is None:
                col = self._columns[name] = self.data[self.lookup[name]]
            return col
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        raise DataError(f"'{name}' in the {self.what} is not a column of the data "
                        f"(columns: {', '.join(map(str, self.data.columns))})")

    def numeric(self, node) -> np.ndarray:
        """A tree as a float vector (length n, or a scalar)."""
        v = self.value(node)
        if isinstance(v, Factor):
            raise DataError(f"'{deparse(node)}' in the {self.what} is a factor where a number "
                            "is needed (use as.numeric() for its codes)")
        if isinstance(v, Numeric):
            if v.values.shape[1] != 1:
                raise DataError(f"'{deparse(node)}' has {v.values.shape[1]} columns where one "
                                "number is needed")
            return v.values[:, 0]
        return v

    def value(self, node):
        """A tree as Numeric, Factor or a scalar float."""
        kind = node[0]
        if kind == "name":
            col = self.column(node[1])
            if isinstance(col, float):
                return col
            if (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
                    and not isinstance(col.dtype, pd.CategoricalDtype)):
                return Numeric(col.to_numpy(dtype=float)[:, None])
            return self.factor(node[1])
        if kind == "num":
            return float(node[1])
        if kind == "str":
            raise FormulaError(f"a text constant \"{node[1]}\" cannot be used in the {self.what}")
        if kind == "paren":
            return self.value(node[1])
        if kind == "pos":
            return self._wrap(self.numeric(node[1]))
        if kind == "neg":
            return self._wrap(-self.numeric(node[1]))
        if kind == "bin":
            op = node[1]
            if op in _ARITH:
                with np.errstate(all="ignore"):
                    return self._wrap(_ARITH[op](self.numeric(node[2]), self.numeric(node[3])))
            if op in _COMPARE:
                a, b = self.numeric(node[2]), self.numeric(node[3])
                res = np.broadcast_to(_COMPARE[op](a, b), (self.n,))
                nan = np.broadcast_to(np.isnan(a) | np.isnan(b), (self.n,))
                return Factor(np.where(nan, -1, res.astype(np.int64)), ("FALSE", "TRUE"))
            raise FormulaError(f"cannot evaluate '{deparse(node)}': '{op}' is not an "
                               "arithmetic operator")
        return self.call(node)

    def _wrap(self, arr):
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 0:
            return float(arr)
        return Numeric(arr[:, None])

    def call(self, node):
        _, fname, args, kwargs = node
        kw = dict(kwargs)
        name = fname.removeprefix("np.").removeprefix("numpy.")
        label = deparse(node)
        if fname in ("I", "as.numeric", "as.double", "as.integer") and len(args) == 1:
            v = self.value(args[0])
            if fname != "I" and isinstance(v, Factor):
                return Numeric(np.where(v.codes < 0, np.nan, v.codes + 1.0)[:, None])
            return v
        if name in _UNARY and len(args) == 1 and not (name == "log" and kw):
            with np.errstate(all="ignore"):
                return self._wrap(_UNARY[name](self.numeric(args[0])))
        if name == "log" and len(args) + len(kw) == 2:
            base = self.numeric(args[1] if len(args) == 2 else kw.get("base"))
            with np.errstate(all="ignore"):
                return self._wrap(np.log(self.numeric(args[0])) / np.log(base))
        if fname in ("factor", "as.factor", "ordered", "as.ordered") and len(args) == 1:
            v = self.value(args[0])
            if isinstance(v, float):
                raise FormulaError(f"'{label}' needs a column")
            f = v if isinstance(v, Factor) else factor_of(v.values[:, 0])
            ordered = fname in ("ordered", "as.ordered") or (f.ordered and fname == "as.factor")
            return Factor(f.codes, f.levels, ordered, f.contrast)
        if fname == "C" and 1 <= len(args) <= 2:
            v = self.value(args[0])
            f = v if isinstance(v, Factor) else factor_of(v.values[:, 0])
            kind = None
            if len(args) == 2:
                c = args[1]
                kind = canonical(c[1] if c[0] in ("name", "str") else deparse(c))
            return Factor(f.codes, f.levels, f.ordered, kind)
        if fname == "poly" and 1 <= len(args) <= 2:
            x = self.numeric(args[0])
            deg = args[1] if len(args) == 2 else kw.get("degree", ("num", 1.0, "1"))
            degree = int(self.numeric(deg))
            raw = kw.get("raw")
            ok = ~np.isnan(x)
            out = np.full((self.n, degree), np.nan)
            if raw is not None and raw[0] == "name" and raw[1] in ("TRUE", "T"):
                out[ok] = np.column_stack([x[ok] ** d for d in range(1, degree + 1)])
            else:
                out[ok] = orthopoly(x[ok], degree)
            return Numeric(out, tuple(str(d) for d in range(1, degree + 1)))
        if fname == "scale" and len(args) == 1:
            x = self.numeric(args[0])
            center = kw.get("center", ("name", "TRUE"))[1] in ("TRUE", "T")
            scl = kw.get("scale", ("name", "TRUE"))[1] in ("TRUE", "T")
            ok = ~np.isnan(x)
            if center:
                x = x - x[ok].mean()
            if scl:
                x = x / np.sqrt((x[ok] ** 2).sum() / (ok.sum() - 1))
            return Numeric(x[:, None])
        raise FormulaError(f"cannot evaluate '{label}' in the {self.what}: unknown function "
                           f"'{fname}' or wrong arguments (known: I, log, log1p, exp, sqrt, "
                           "abs, sin, cos, scale, poly, factor, ordered, C, as.numeric)")


def _codes_table(terms: Terms, is_factor: list[bool]) -> list[dict[int, int]]:
    """R's factor-coding codes per term: 1 contrasts, 2 indicators (``TermCode`` in model.c)."""
    sets = [frozenset(t) for t in terms.terms]
    table = []
    for j, t in enumerate(terms.terms):
        codes = {}
        for v in t:
            reduced = sets[j] - {v}
            if not reduced or any(reduced <= sets[k] for k in range(j)):
                codes[v] = 1
            else:
                codes[v] = 2
        table.append(codes)
    if not terms.intercept:
        for j, t in enumerate(terms.terms):
            first = next((v for v in t if is_factor[v]), None)
            if first is not None:
                table[j][first] = 2
                break
    return table


def _variable_columns(label: str, v, code: int, contrasts: dict):
    if isinstance(v, Numeric):
        if v.colnames is None and v.values.shape[1] == 1:
            return v.values, [label]
        names = v.colnames or tuple(str(i + 1) for i in range(v.values.shape[1]))
        return v.values, [label + c for c in names]
    k = len(v.levels)
    if code == 2:
        return np.eye(k)[v.codes], [label + lv for lv in v.levels]
    if k < 2:
        raise DataError(f"contrasts can be applied only to factors with 2 or more levels: "
                        f"'{label}' has {k}")
    kind = v.contrast or contrasts.get(label) or ("poly" if v.ordered else "treatment")
    C, cnames = contrast_matrix(kind, k)
    if cnames is None:
        cnames = list(v.levels[1:])
    return C[v.codes], [label + c for c in cnames]


def model_matrix(terms: Terms, values: dict, n: int, contrasts: dict | None = None):
    """R's ``model.matrix`` of expanded terms.

    Parameters
    ----------
    terms : Terms
    values : dict
        Variable index -> Numeric or Factor, on the rows used.
    n : int
        Number of rows.
    contrasts : dict, optional
        Variable label -> contrast kind (``"sum"``, ``"helmert"``, ``"treatment"``, ``"poly"``).

    Returns
    -------
    X : ndarray, shape (n, p)
    names : list of str
    """
    contrasts = {k: canonical(v) for k, v in (contrasts or {}).items()}
    labels = [deparse(v) for v in terms.variables]
    is_factor = [isinstance(values.get(i), Factor) for i in range(len(labels))]
    table = _codes_table(terms, is_factor)
    mats, names = [], []
    if terms.intercept:
        mats.append(None)  # the column of ones
        names.append(INTERCEPT)
    for t, codes in zip(terms.terms, table):
        A, an = None, [""]
        for v in t:
            M, mn = _variable_columns(labels[v], values[v], codes[v], contrasts)
            A = M if A is None else (M[:, :, None] * A[:, None, :]).reshape(n, -1)
            an = [f"{a}:{b}" if a else b for b in mn for a in an]
        mats.append(np.ones((n, 1)) if A is None else A)
        names.extend(an)
    # column-major: every later step reads the matrix a column at a time
    X = np.empty((n, len(names)), order="F")
    k = 0
    for M in mats:
        if M is None:
            X[:, k] = 1.0
            k += 1
        else:
            X[:, k : k + M.shape[1]] = M
            k += M.shape[1]
    return X, names


__all__ = ["Evaluator", "Numeric", "Factor", "factor_of", "model_matrix", "INTERCEPT"]
