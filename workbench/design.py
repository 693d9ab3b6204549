"""ModelSpec + data -> :class:`Design`: the numbers every fitter works from.

Random effects are kept as (level codes, per-row columns) per term, never as a dense Z.  Rows
with a missing value in any column the model uses are dropped, as lme4 does, and counted.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError
from .formula import ModelSpec, parse_formula

INTERCEPT = "(Intercept)"

# R's names for the transformations an lme4 formula commonly uses (``log(x)``), besides ``np.*``.
_R_FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log2": np.log2,
                "log10": np.log10, "abs": np.abs}


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


def _lme4_name(label: str) -> str:
    """formulae's column labels -> lme4's: ``Intercept`` -> ``(Intercept)``, ``s[1]`` -> ``s1``."""
    if label == "Intercept":
        return INTERCEPT
    return re.sub(r"\[([^\]]*)\]", r"\1", label)


def _identifiers(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", text))


def _level_labels(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of a grouping column; numeric columns become categorical."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        labels = [str(c) for c in cat.cat.categories]
        return cat.cat.codes.to_numpy(np.int64), labels
    if pd.api.types.is_integer_dtype(col) and not pd.api.types.is_bool_dtype(col):
        codes, uniq = pd.factorize(col.to_numpy(), sort=True)
        return codes.astype(np.int64, copy=False), uniq.astype(str).tolist()
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        codes, uniq = pd.factorize(col.to_numpy(dtype=float), sort=True)
        if np.all(np.mod(uniq, 1.0) == 0):
            labels = uniq.astype(np.int64).astype(str).tolist()
        else:
            labels = [repr(float(u)) for u in uniq]
        return codes.astype(np.int64), labels
    codes, uniq = pd.factorize(col.astype(str).to_numpy(), sort=True)
    return codes.astype(np.int64), [str(u) for u in uniq]


def _group_codes(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    codes, labels = _level_labels(data[factors[0]])
    for f in factors[1:]:
        c2, l2 = _level_labels(data[f])
        combo = codes * len(l2) + c2
        uniq, codes = np.unique(combo, return_inverse=True)
        labels = [f"{labels[u // len(l2)]}:{l2[u % len(l2)]}" for u in uniq]
    return codes.astype(np.int64), labels


def _simple_matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """Fast path for sums of numeric columns (``1 + x + z``, ``0 + x``); None otherwise."""
    intercept, cols = True, []
    for part in rhs.replace("-", "+ -").split("+"):
        part = part.strip()
        if part == "1" or not part:
            continue
        if part in ("0", "-1", "- 1"):
            intercept = False
        elif (part in data.columns and part not in cols and re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", part)
              and pd.api.types.is_numeric_dtype(data[part]) and not pd.api.types.is_bool_dtype(data[part])):
            cols.append(part)
        else:
            return None
    n = len(data)
    mats = ([np.ones((n, 1))] if intercept else []) + [data[c].to_numpy(dtype=float)[:, None] for c in cols]
    names = ([INTERCEPT] if intercept else []) + cols
    return (np.hstack(mats) if mats else np.zeros((n, 0))), names


def _matrix(rhs: str, data: pd.DataFrame, what: str) -> tuple[np.ndarray, list[str]]:
    """Evaluate a right-hand side with formulae; returns (matrix, lme4 column names)."""
    simple = _simple_matrix(rhs, data)
    if simple is not None:
        return simple
    from formulae import design_matrices

    frame = data.assign(wbResponseDummy=0.0)
    try:
        dm = design_matrices(f"wbResponseDummy ~ {rhs}", frame, na_action="error",
                             extra_namespace=_R_FUNCTIONS)
    except KeyError as exc:  # formulae: a name that is neither a column nor a known function
        name = exc.args[0] if exc.args else exc
        raise DataError(
            f"'{name}' in the {what} '{rhs}' is neither a column of the data nor a known function"
        ) from None
    except Exception as exc:
        raise FormulaError(f"cannot build the {what} '{rhs}': {exc}") from None
    common = dm.common
    if common is None:
        return np.zeros((len(data), 0)), []
    names = []
    for term in common.terms.values():
        names.extend(_lme4_name(lbl) for lbl in term.labels)
    return np.asarray(common.design_matrix, dtype=float), names


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

def build_design(
    spec: ModelSpec | str,
    data: pd.DataFrame,
    known_sd: str | None = None,
) -> Design:
    """Build the numeric design of a model.

    Parameters
    ----------
    spec : ModelSpec or str
        Parsed specification, or a formula to parse.
    data : DataFrame
    known_sd : str, optional
        Column of known residual standard deviations (meta-analysis form).

    Returns
    -------
    Design

    Raises
    ------
    DataError
        Missing column, non-numeric response, no complete rows, a grouping factor with a single
        level, more random effects than observations, non-positive known sds.
    """
    if isinstance(spec, str):
        spec = parse_formula(spec)
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    if data.shape[0] == 0:
        raise DataError("the data set has no rows")

    needed = [spec.response] + [f for t in spec.random for f in t.factors]
    if known_sd is not None:
        needed.append(known_sd)
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if missing:
        raise DataError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"not found in the data (columns: {', '.join(map(str, data.columns))})"
        )
    exprs = spec.fixed + " " + " ".join(t.expr for t in spec.random)
    used = [c for c in data.columns if c in _identifiers(exprs) or c in needed]
    frame = data[used]
    complete = frame.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    if n_dropped:
        warnings.warn(
            f"{n_dropped} row{'s' if n_dropped > 1 else ''} with missing values dropped",
            stacklevel=2,
        )
        frame = frame.loc[complete]
    if frame.shape[0] == 0:
        raise DataError("no complete rows: every row has a missing value in a model column")
    frame = frame.reset_index(drop=True)

    yser = frame[spec.response]
    if not pd.api.types.is_numeric_dtype(yser) or pd.api.types.is_bool_dtype(yser):
        raise DataError(f"response '{spec.response}' is not numeric (dtype {yser.dtype})")
    y = yser.to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise DataError(f"response '{spec.response}' has infinite values")

    X, names = _matrix(spec.fixed, frame, "fixed effects")
    X, names, dropped = _drop_rank_deficient(X, names)
    if dropped:
        warnings.warn(
            "fixed-effect model matrix is rank deficient so dropping "
            f"{len(dropped)} column{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}",
            stacklevel=2,
        )
    if X.shape[1] >= y.shape[0]:
        raise DataError(
            f"the fixed effects have {X.shape[1]} columns for {y.shape[0]} observations; "
            "there must be fewer fixed-effect columns than observations"
        )

    sd = None
    if known_sd is not None:
        sd = pd.to_numeric(frame[known_sd], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(sd)) or np.any(sd <= 0):
            raise DataError(f"known sd column '{known_sd}' must be positive and finite")

    n = y.shape[0]
    terms = []
    for t in spec.random:
        codes, labels = _group_codes(frame, t.factors)
        Z, cols = _matrix(t.expr, frame, f"random-effects term {t}")
        if Z.shape[1] == 0:
            raise FormulaError(f"random-effects term {t} has no columns")
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
        terms.append(TermDesign(t.group, tuple(cols), tuple(labels), codes, Z))
    return Design(
        spec=spec,
        y=y,
        X=X,
        fixed_names=tuple(names),
        terms=tuple(terms),
        known_sd=sd,
        n_dropped=n_dropped,
        dropped_columns=tuple(dropped),
        data=frame,
    )
