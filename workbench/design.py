"""ModelSpec + data -> :class:`Design`: the numbers every fitter works from.

Built in named stages, as lme4's ``lFormula``:

1. :func:`check_columns` -- every column the formula, weights and offset read is in the data;
2. :func:`evaluate` -- each formula variable (``x``, ``I(x^2)``, ``poly(x, 2)``, ``factor(f)``)
   evaluated on all rows, as R's ``model.frame``;
3. :func:`complete_rows` -- rows with a missing value in any of them dropped (counted, with a
   warning), unused factor levels dropped;
4. the fixed-effects matrix (R's ``model.matrix``, :mod:`workbench.modelmatrix`) and each
   random-effects term as (level codes, per-row columns), never a dense Z;
5. :func:`check_identifiable` -- rank-deficient fixed columns dropped (as lme4), enough rows.

Prior weights w_i make the residual variance of row i sigma^2 / w_i (lme4's ``weights=``); an
offset o_i enters the linear predictor with coefficient 1 (``offset()`` terms and ``offset=``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError
from .formula import ModelSpec, parse_formula
from .modelmatrix import INTERCEPT, Evaluator, Factor, Numeric, model_matrix
from .terms import deparse, expand_terms, parse


@dataclass(frozen=True, eq=False)
class TermDesign:
    """The data of one random-effects term.

    Attributes
    ----------
    group : str
        Grouping-factor name (``"g"``, ``"g:h"``).
    columns : tuple of str
        Names of the term's columns as lme4 prints them (``"(Intercept)"``, ``"x"``).
    levels : tuple of str
        Level labels of the grouping factor, in code order.
    codes : ndarray of int, shape (n,)
        Level index of each row.
    Z : ndarray, shape (n, q)
        The term's columns for each row (the row's entries of Z, without the zeros).
    """

    group: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray

    @property
    def q(self) -> int:
        """Number of columns (random effects per level)."""
        return len(self.columns)

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)


@dataclass(frozen=True, eq=False)
class Design:
    """Response, fixed-effects matrix and random-effects terms for one model and data set.

    Attributes
    ----------
    spec : ModelSpec
    y : ndarray, shape (n,)
    X : ndarray, shape (n, p)
    fixed_names : tuple of str
        Fixed-effect names as lme4 prints them.
    terms : tuple of TermDesign
    known_sd : ndarray or None
        Known per-observation residual sds (meta-analysis form); ``None`` to estimate sigma.
    n_dropped : int
        Rows dropped for missing values.
    dropped_columns : tuple of str
        Fixed-effect columns dropped because the design was rank deficient.
    data : DataFrame
        The rows used, with the columns the model reads.
    weights : ndarray or None
        Prior weights (residual variance sigma^2 / w_i); None for all 1.
    offset : ndarray or None
        Offset with coefficient 1 in the linear predictor; None for 0.
    arguments : dict
        The column and contrast arguments the design was built with (``known_sd``, ``weights``,
        ``offset``, ``contrasts``), so the same design can be built for new data.
    """

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    terms: tuple[TermDesign, ...]
    known_sd: np.ndarray | None = None
    n_dropped: int = 0
    dropped_columns: tuple[str, ...] = ()
    data: pd.DataFrame = field(default=None, repr=False)
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    arguments: dict = field(default_factory=dict, repr=False)

    @property
    def y_work(self) -> np.ndarray:
        """The response minus the offset: what X beta + Z b is fitted to."""
        return self.y if self.offset is None else self.y - self.offset

    @property
    def row_scale(self) -> np.ndarray | None:
        """Row scaling that makes the residuals iid: sqrt(w_i) / known_sd_i (None: all 1)."""
        if self.weights is None and self.known_sd is None:
            return None
        s = np.ones(self.y.shape[0])
        if self.weights is not None:
            s = s * np.sqrt(self.weights)
        if self.known_sd is not None:
            s = s / self.known_sd
        return s

    @property
    def log_weights(self) -> float:
        """sum(log w_i), which lme4 subtracts from the deviance (0 without weights)."""
        return 0.0 if self.weights is None else float(np.log(self.weights).sum())

    @property
    def n(self) -> int:
        """Number of observations."""
        return self.y.shape[0]

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return self.X.shape[1]

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor, as ``{group: nlevels}``."""
        return {t.group: t.nlevels for t in self.terms}



def _plural(k: int, word: str) -> str:
    return f"{word}{'s' if k > 1 else ''}"


def check_columns(spec: ModelSpec, data: pd.DataFrame, extra: dict[str, str | None]) -> None:
    """Stage 1: every column the model reads exists (constants such as ``pi`` excepted)."""
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    if data.shape[0] == 0:
        raise DataError("the data set has no rows")
    have = {str(c) for c in data.columns}
    names = list(spec.variables) + [c for c in extra.values() if c is not None]
    missing = [c for c in dict.fromkeys(names)
               if c not in have and c not in ("pi", "T", "F", "TRUE", "FALSE")]
    if missing:
        raise DataError(
            f"{_plural(len(missing), 'column')} {', '.join(repr(m) for m in missing)} "
            f"not found in the data (columns: {', '.join(map(str, data.columns))})"
        )


@dataclass(frozen=True, eq=False)
class _Frame:
    """The model frame: every variable evaluated on all rows of the data."""

    y: np.ndarray
    fixed: object  # Terms
    fixed_values: dict
    offset: np.ndarray | None
    random: list  # (RandomTerm, Terms, values, grouping Factor)
    columns: dict  # name -> float array (known_sd, weights)


def _numeric_column(data: pd.DataFrame, col: str, what: str) -> np.ndarray:
    ser = data[{str(c): c for c in data.columns}[col]]
    if not pd.api.types.is_numeric_dtype(ser) or pd.api.types.is_bool_dtype(ser):
        raise DataError(f"{what} column '{col}' is not numeric (dtype {ser.dtype})")
    return ser.to_numpy(dtype=float)


def _grouping_factor(ev: Evaluator, factors: tuple[str, ...]) -> Factor:
    """The interaction of grouping columns: levels ``a:b`` of the combinations, first slowest.

    Only combinations that occur are levels (``take`` drops the rest in any case).
    """
    f = ev.factor(factors[0])
    for name in factors[1:]:
        g = ev.factor(name)
        k = len(g.levels)
        codes = np.where((f.codes < 0) | (g.codes < 0), -1, f.codes * k + g.codes)
        used = np.unique(codes[codes >= 0])
        remap = np.full(len(f.levels) * k + 1, -1, dtype=np.int64)  # last entry: missing
        remap[used] = np.arange(used.size)
        labels = tuple(f"{f.levels[c // k]}:{g.levels[c % k]}" for c in used.tolist())
        f = Factor(remap[codes], labels, used=True)
    return f


def evaluate(spec: ModelSpec, data: pd.DataFrame, known_sd: str | None = None,
             weights: str | None = None, offset: str | None = None,
             evaluator=Evaluator) -> _Frame:
    """Stage 2: evaluate the response, the fixed and random variables and the offsets
    (``evaluator``: the :class:`~workbench.modelmatrix.Evaluator` class to use)."""
    ev = evaluator(data, "response")
    yv = ev.value(spec.response_tree if spec.response_tree is not None else parse(spec.response))
    if isinstance(yv, Factor) or (isinstance(yv, Numeric) and yv.values.shape[1] != 1):
        raise DataError(f"response '{spec.response}' is not numeric")
    y = np.broadcast_to(yv.values[:, 0] if isinstance(yv, Numeric) else yv, (data.shape[0],))
    ev.what = "fixed effects"
    terms = spec.fixed_terms
    used = {v for t in terms.terms for v in t}
    fixed_values = {i: ev.value(terms.variables[i]) for i in sorted(used)}
    for i, v in list(fixed_values.items()):
        if isinstance(v, float):
            raise FormulaError(f"'{deparse(terms.variables[i])}' in the fixed effects is a "
                               "constant, not a column")
    off = None
    for node in terms.offsets:
        o = np.broadcast_to(ev.numeric(node), (data.shape[0],)).astype(float)
        off = o if off is None else off + o
    cols = {}
    if offset is not None:
        o = _numeric_column(data, offset, "offset")
        off = o if off is None else off + o
    if weights is not None:
        w = _numeric_column(data, weights, "weights")
        if np.any(np.isnan(w)):
            raise DataError(f"weights column '{weights}' has missing values")
        if np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise DataError(f"weights column '{weights}' must be positive and finite "
                            f"(smallest: {np.nanmin(w):g})")
        cols["weights"] = w
    if known_sd is not None:
        cols["known_sd"] = pd.to_numeric(data[{str(c): c for c in data.columns}[known_sd]],
                                         errors="coerce").to_numpy(dtype=float)
    random = []
    for t in spec.random:
        ev.what = f"random-effects term {t}"
        rt = expand_terms(t.expr)
        used = {v for tt in rt.terms for v in tt}
        vals = {i: ev.value(rt.variables[i]) for i in sorted(used)}
        random.append((t, rt, vals, _grouping_factor(ev, t.factors)))
    return _Frame(np.asarray(y, dtype=float), terms, fixed_values, off, random, cols)


def _missing(v) -> np.ndarray | bool:
    return v.missing() if isinstance(v, (Numeric, Factor)) else False


def complete_rows(frame: _Frame, n: int) -> np.ndarray:
    """Stage 3: rows with no missing value in any model variable (R's ``na.omit``)."""
    bad = np.isnan(frame.y)
    for v in frame.fixed_values.values():
        bad = bad | _missing(v)
    if frame.offset is not None:
        bad = bad | np.isnan(frame.offset)
    for _, _, vals, g in frame.random:
        bad = bad | g.missing()
        for v in vals.values():
            bad = bad | _missing(v)
    if "known_sd" in frame.columns:
        bad = bad | np.isnan(frame.columns["known_sd"])
    return ~np.broadcast_to(bad, (n,))


def _take(v, rows):
    """``v`` on the rows kept (``rows`` None: all; a factor still drops unused levels).

    All rows of a Numeric are its own values, not a copy: the model matrix copies them.
    """
    if isinstance(v, Factor):
        return v.take(rows)
    if isinstance(v, Numeric) and rows is not None:
        return v.take(rows)
    return v


def _rows(arr: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """A copy of ``arr`` on the rows kept (``rows`` None: all), never a view of the data."""
    return arr.copy() if rows is None else arr[rows]


def _drop_rank_deficient(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop columns of X that are linear combinations of earlier ones (lme4 drops and says so).

    Columns are taken in formula order (a Cholesky factorisation of the cross-product of the
    unit-scaled columns, without pivoting) and a column is kept when the part of it not
    explained by the columns kept so far is above 1e-7 of its norm, lme4's rank tolerance; so,
    as in lme4, the later of two collinear columns is the one dropped.
    """
    p = X.shape[1]
    if p == 0:
        return X, names, []
    scale = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale[scale == 0] = 1.0
    C = (X.T @ X) / np.outer(scale, scale)
    # Full rank by a clear margin (100 times the tolerance): one Cholesky factorisation says so;
    # otherwise the column-by-column pass below decides which columns go
    try:
        d = np.diagonal(np.linalg.cholesky(C)) ** 2
        if np.all(np.diagonal(C) > 0) and np.all(d > 1e-12 * np.diagonal(C)):
            return X, names, []
    except np.linalg.LinAlgError:
        pass
    keep: list[int] = []
    L = np.zeros((p, p))
    for j in range(p):
        k = keep
        lj = np.linalg.solve(L[np.ix_(k, k)], C[k, j]) if k else np.zeros(0)
        resid2 = C[j, j] - lj @ lj
        if C[j, j] > 0 and resid2 > 1e-14 * C[j, j]:
            L[j, k] = lj
            L[j, j] = np.sqrt(resid2)
            keep.append(j)
    if len(keep) == p:
        return X, names, []
    dropped = [names[i] for i in range(p) if i not in keep]
    return X[:, keep], [names[i] for i in keep], dropped


def check_identifiable(X: np.ndarray, names: list[str], n: int):
    """Stage 5: drop rank-deficient fixed columns (with a warning) and require p < n."""
    X, names, dropped = _drop_rank_deficient(X, names)
    if X.shape[1] >= n:  # before the warning: an error follows anyway
        raise DataError(
            f"the fixed effects have {X.shape[1]} columns for {n} observations; "
            "there must be fewer fixed-effect columns than observations"
        )
    if dropped:
        shown = ", ".join(dropped[:20]) + (f", ... ({len(dropped) - 20} more)"
                                          if len(dropped) > 20 else "")
        warnings.warn(
            "fixed-effect model matrix is rank deficient so dropping "
            f"{len(dropped)} {_plural(len(dropped), 'column')}: {shown}",
            stacklevel=3,
        )
    return X, names, dropped


def build_design(
    spec: ModelSpec | str,
    data: pd.DataFrame,
    known_sd: str | None = None,
    *,
    weights: str | None = None,
    offset: str | None = None,
    contrasts: dict[str, str] | None = None,
) -> Design:
    """Build the numeric design of a model.

    Parameters
    ----------
    spec : ModelSpec or str
        Parsed specification, or a formula to parse.
    data : DataFrame
    known_sd : str, optional
        Column of known residual standard deviations (meta-analysis form).
    weights : str, optional
        Column of prior weights w_i > 0: the residual variance of row i is sigma^2 / w_i.
    offset : str, optional
        Column added to the linear predictor with coefficient 1 (besides ``offset()`` terms).
    contrasts : dict, optional
        Factor label -> ``"treatment"``, ``"sum"``, ``"helmert"`` or ``"poly"`` (R's
        ``contrasts=`` argument); default treatment, and ``poly`` for ordered factors.

    Returns
    -------
    Design

    Raises
    ------
    DataError
        Missing column, non-numeric response, no complete rows, a grouping factor with a single
        level, more random effects than observations, non-positive known sds or weights.
    """
    if isinstance(spec, str):
        spec = parse_formula(spec)
    check_columns(spec, data, {"known_sd": known_sd, "weights": weights, "offset": offset})
    frame = evaluate(spec, data, known_sd=known_sd, weights=weights, offset=offset)
    keep = complete_rows(frame, data.shape[0])
    n_dropped = int((~keep).sum())
    if n_dropped:
        warnings.warn(f"{n_dropped} {_plural(n_dropped, 'row')} with missing values dropped",
                      stacklevel=2)
    n = int(keep.sum())
    if n == 0:
        raise DataError("no complete rows: every row has a missing value in a model column")
    # rows kept: an index array, or None for all of them (no gathers over the rows then)
    rows = np.flatnonzero(keep) if n_dropped else None
    y = _rows(frame.y, rows)
    if not np.all(np.isfinite(y)):
        raise DataError(f"response '{spec.response}' has infinite values")
    off = None if frame.offset is None else _rows(frame.offset, rows)
    if off is not None and not np.all(np.isfinite(off)):
        raise DataError("the offset has infinite values")
    w = _rows(frame.columns["weights"], rows) if "weights" in frame.columns else None
    sd = None
    if "known_sd" in frame.columns:
        sd = _rows(frame.columns["known_sd"], rows)
        if not np.all(np.isfinite(sd)) or np.any(sd <= 0):
            raise DataError(f"known sd column '{known_sd}' must be positive and finite")

    fixed_values = {i: _take(v, rows) for i, v in frame.fixed_values.items()}
    X, names = model_matrix(frame.fixed, fixed_values, n, contrasts)
    if not np.all(np.isfinite(X)):
        bad = [nm for nm, ok in zip(names, np.isfinite(X).all(axis=0)) if not ok]
        raise DataError(f"fixed-effect column(s) {', '.join(bad)} have infinite values")
    X, names, dropped = check_identifiable(X, names, n)

    terms = []
    for t, rt, vals, g in frame.random:
        g = _take(g, rows)
        Z, cols = model_matrix(rt, {i: _take(v, rows) for i, v in vals.items()}, n, contrasts)
        if Z.shape[1] == 0:
            raise FormulaError(f"random-effects term {t} has no columns")
        labels = g.levels
        if len(labels) < 2:
            raise DataError(
                f"grouping factor '{t.group}' has only {len(labels)} level; "
                "a random effect needs at least 2"
            )
        if sd is None and len(labels) >= n:
            raise DataError(
                f"grouping factor '{t.group}' has {len(labels)} levels for {n} observations; "
                "it must have fewer levels than observations (or give known residual sds)"
            )
        if sd is None and len(labels) * len(cols) >= n:
            raise DataError(
                f"term {t} has {len(labels) * len(cols)} random effects for {n} observations; "
                "its variance and the residual variance are not identifiable"
            )
        terms.append(TermDesign(t.group, tuple(cols), tuple(labels), g.codes, Z))

    lookup = {str(c): c for c in data.columns}
    read = [lookup[c] for c in spec.variables if c in lookup]
    read += [lookup[c] for c in (known_sd, weights, offset) if c is not None and c in lookup]
    # taken by position: a fifth of the cost of data[list] on small frames (no label indexer);
    # a duplicated column name has no single position, and keeps the label route
    read = list(dict.fromkeys(read))
    locs = [data.columns.get_loc(c) for c in read]
    if all(isinstance(i, (int, np.integer)) for i in locs):
        used = data.take(locs, axis=1)
    else:
        used = data[read]
    ix = used.index
    if n_dropped or not (isinstance(ix, pd.RangeIndex) and ix.start == 0 and ix.step == 1):
        used = (used if rows is None else used.iloc[rows]).reset_index(drop=True)
    return Design(
        spec=spec,
        y=y,
        X=X,
        fixed_names=tuple(names),
        terms=tuple(terms),
        known_sd=sd,
        n_dropped=n_dropped,
        dropped_columns=tuple(dropped),
        data=used,
        weights=w,
        offset=off,
        arguments={"known_sd": known_sd, "weights": weights, "offset": offset,
                   "contrasts": dict(contrasts) if contrasts else None},
    )


__all__ = ["Design", "TermDesign", "build_design", "check_columns", "evaluate", "complete_rows",
           "check_identifiable", "INTERCEPT"]
