"""The simulation design: a validated description of a data-generating hierarchical model.

A design is written in TOML (see ``studies/designs/demo.toml``)::

    formula = "y ~ 1 + x + z + (1 + x | g)"   # the model a study fits to these data

    [factors.g]                 # grouping factors; the first is the top of the hierarchy
    levels = 30
    size = { low = 5, high = 40 }   # rows per level: an int (balanced) or drawn

    [predictors.x]              # "obs" varies by row (level 1); a factor name, by its level
    level = "obs"
    [predictors.z]
    level = "g"

    [fixed]                     # fixed effects by lme4 name
    "(Intercept)" = 1.0
    x = 0.5
    z = 0.3

    [random.g]                  # random-effects covariance of one grouping factor
    terms = ["(Intercept)", "x"]
    sd = [0.8, 0.3]
    cor = [[1.0, 0.3], [0.3, 1.0]]

    [residual]
    sd = 1.0                    # or var = ...; or known_sd = {column = "se", low = .., high = ..}

Nested factors name their parent (``nested_in = "school"``, ``levels`` per parent); crossed
factors say ``crossed = true`` and each row gets a level drawn uniformly.  Level labels are
integers, unique across the whole factor (class 7 is in one school only), so ``(1 | class)`` and
``(1 | school/class)`` describe the same grouping.  A random-effects table may be keyed by an
interaction (``[random."school:class"]``).

Every table rejects unknown keys; :func:`load_design` reports errors as ``FILE: key: message``.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import SpecError

OBS = "obs"
INTERCEPT = "(Intercept)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizeDist(_Strict):
    """Unbalanced group sizes.

    Uniform integers on ``[low, high]`` (give ``low`` and ``high``), or Poisson with ``mean``,
    floored at ``min`` (give ``mean``).
    """

    low: int | None = Field(default=None, ge=1)
    high: int | None = Field(default=None, ge=1)
    mean: float | None = Field(default=None, gt=0)
    min: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _one_kind(self):
        uniform = self.low is not None or self.high is not None
        if uniform and self.mean is not None:
            raise ValueError("give either low and high (uniform) or mean (Poisson), not both")
        if uniform:
            if self.low is None or self.high is None:
                raise ValueError("a uniform size needs both low and high")
            if self.high < self.low:
                raise ValueError(f"high ({self.high}) is below low ({self.low})")
        elif self.mean is None:
            raise ValueError("give low and high (uniform sizes) or mean (Poisson sizes)")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` sizes."""
        if self.mean is None:
            return rng.integers(self.low, self.high + 1, size=n)
        return np.maximum(rng.poisson(self.mean, size=n), self.min)


#: The most rows a design may simulate (a few GB of working memory).
MAX_ROWS = 20_000_000


class Factor(_Strict):
    """A grouping factor.

    Attributes
    ----------
    levels : int
        Number of levels (per level of the parent for a nested factor).
    nested_in : str, optional
        Parent factor.
    crossed : bool
        Crossed with the hierarchy: each row gets a level drawn uniformly.
    size : int or SizeDist, optional
        Rows per level; required on the lowest factor of the hierarchy, only there.
    """

    levels: int = Field(ge=1)
    nested_in: str | None = None
    crossed: bool = False
    size: int | SizeDist | None = None

    @field_validator("size")
    @classmethod
    def _positive(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("size must be at least 1")
        return v


class Predictor(_Strict):
    """A numeric predictor, drawn once per unit of its level.

    ``distribution`` "normal" uses ``mean``/``sd``, "uniform" ``low``/``high``, "binary"
    ``p`` (0/1 values).
    """

    level: str = OBS
    distribution: Literal["normal", "uniform", "binary"] = "normal"
    mean: float = 0.0
    sd: float = Field(default=1.0, ge=0)
    low: float = 0.0
    high: float = 1.0
    p: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self):
        if self.distribution == "uniform" and not self.high > self.low:
            raise ValueError(f"high ({self.high}) must exceed low ({self.low})")
        return self


class RandomEffect(_Strict):
    """Covariance of the random effects of one grouping factor (or interaction of factors).

    Give the scale as ``sd`` or ``var`` (one per term), and optionally ``cor`` (a full
    correlation matrix; identity when omitted).
    """

    terms: list[str] = Field(min_length=1)
    sd: list[float] | None = None
    var: list[float] | None = None
    cor: list[list[float]] | None = None

    @model_validator(mode="after")
    def _shape(self):
        q = len(self.terms)
        if len(set(self.terms)) != q:
            raise ValueError(f"terms repeat a name: {self.terms}")
        if (self.sd is None) == (self.var is None):
            raise ValueError("give exactly one of sd and var")
        scale = self.sd if self.sd is not None else self.var
        key = "sd" if self.sd is not None else "var"
        if len(scale) != q:
            raise ValueError(f"{key} has {len(scale)} values for {q} terms")
        if any((not math.isfinite(v)) or v < 0 for v in scale):
            raise ValueError(f"{key} values must be finite and non-negative")
        if self.cor is not None:
            c = np.asarray(self.cor, dtype=float)
            if c.shape != (q, q):
                raise ValueError(f"cor must be a {q} x {q} matrix")
            if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0):
                raise ValueError("cor must be symmetric with a unit diagonal")
            if np.any(np.abs(c) > 1):
                raise ValueError("cor entries must lie in [-1, 1]")
            if np.linalg.eigvalsh(c).min() < -1e-10:
                raise ValueError("cor is not positive semidefinite")
        return self

    @property
    def sds(self) -> np.ndarray:
        """Standard deviations, in ``terms`` order."""
        if self.sd is not None:
            return np.asarray(self.sd, dtype=float)
        return np.sqrt(np.asarray(self.var, dtype=float))

    @property
    def corr(self) -> np.ndarray:
        """Correlation matrix (identity when not given)."""
        q = len(self.terms)
        return np.eye(q) if self.cor is None else np.asarray(self.cor, dtype=float)

    @property
    def cov(self) -> np.ndarray:
        """Covariance matrix."""
        s = self.sds
        return self.corr * np.outer(s, s)


class KnownSD(_Strict):
    """Known per-row sampling sds (meta-analysis), drawn uniformly on ``[low, high]``."""

    column: str = "se"
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _range(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        return self


class Residual(_Strict):
    """Residual scale: ``sd``, ``var``, or ``known_sd`` (no residual variance to estimate)."""

    sd: float | None = Field(default=None, ge=0)
    var: float | None = Field(default=None, ge=0)
    known_sd: KnownSD | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("sd", "var", "known_sd") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of sd, var and known_sd")
        return self

    @property
    def sigma(self) -> float | None:
        """Residual sd (None for known sds)."""
        if self.sd is not None:
            return float(self.sd)
        if self.var is not None:
            return math.sqrt(self.var)
        return None


class SimDesign(_Strict):
    """A data-generating design; see the module docstring for the TOML form.

    Attributes
    ----------
    formula : str
        The model a study fits to data from this design (lme4 syntax).
    response : str
        Name of the simulated response column (default: the formula's response).
    factors, predictors, fixed, random, residual
        See the classes :class:`Factor`, :class:`Predictor`, :class:`RandomEffect`,
        :class:`Residual`; ``fixed`` maps lme4 coefficient names (``x``, ``x:z``,
        ``(Intercept)``) to values.
    """

    formula: str
    response: str | None = None
    factors: dict[str, Factor] = Field(min_length=1)
    predictors: dict[str, Predictor] = Field(default_factory=dict)
    fixed: dict[str, float] = Field(default_factory=dict)
    random: dict[str, RandomEffect] = Field(default_factory=dict)
    residual: Residual

    @model_validator(mode="after")
    def _structure(self):
        from ..formula import parse_formula

        try:
            spec = parse_formula(self.formula)
        except SpecError:
            raise
        except Exception as exc:  # FormulaError: reported against the formula key
            raise ValueError(f"formula: {exc}") from None
        object.__setattr__(self, "response", self.response or spec.response)
        names = set(self.factors)
        # hierarchy: one chain of non-crossed factors from the top down
        chain_top = [n for n, f in self.factors.items() if not f.crossed and f.nested_in is None]
        if len(chain_top) != 1:
            raise ValueError(
                "factors: exactly one non-crossed factor must be at the top (no nested_in); "
                f"found {chain_top or 'none'}"
            )
        children: dict[str, str] = {}
        for n, f in self.factors.items():
            if f.crossed and f.nested_in is not None:
                raise ValueError(f"factors.{n}: a crossed factor cannot be nested_in another")
            if f.nested_in is not None:
                if f.nested_in not in names:
                    raise ValueError(f"factors.{n}.nested_in: unknown factor '{f.nested_in}'")
                if self.factors[f.nested_in].crossed:
                    raise ValueError(f"factors.{n}.nested_in: '{f.nested_in}' is crossed")
                if f.nested_in in children:
                    raise ValueError(
                        f"factors.{n}.nested_in: '{f.nested_in}' already has nested factor "
                        f"'{children[f.nested_in]}' (one chain of nesting only)"
                    )
                children[f.nested_in] = n
        chain = self.chain
        lowest = chain[-1]
        for n, f in self.factors.items():
            if n == lowest:
                if f.size is None:
                    raise ValueError(f"factors.{n}.size: the lowest factor needs a size (rows per level)")
            elif f.size is not None:
                raise ValueError(f"factors.{n}.size: only the lowest factor ('{lowest}') has a size")
        self._check_size(chain)
        for n, p in self.predictors.items():
            if p.level != OBS and p.level not in names:
                raise ValueError(f"predictors.{n}.level: '{p.level}' is neither 'obs' nor a factor")
            if n in names or n == self.response:
                raise ValueError(f"predictors.{n}: the name is already a factor or the response")
        known_cols = set(self.predictors)
        for name in self.fixed:
            self._check_product(f"fixed.\"{name}\"", name, known_cols, allow_intercept=True)
        for g, re_ in self.random.items():
            for fac in g.split(":"):
                if fac not in names:
                    raise ValueError(f"random.{g}: '{fac}' is not a factor")
            for t in re_.terms:
                self._check_product(f"random.{g}.terms", t, known_cols, allow_intercept=True)
        ks = self.residual.known_sd
        if ks is not None and (ks.column in names or ks.column in known_cols or ks.column == self.response):
            raise ValueError(f"residual.known_sd.column: '{ks.column}' is already a column name")
        return self

    def _check_size(self, chain: list[str]) -> None:
        """Refuse a design whose data would not fit in memory, before any array is made."""
        units = 1
        for n in chain:
            units *= self.factors[n].levels
        size = self.factors[chain[-1]].size
        if isinstance(size, int):
            per = size
        elif size.high is not None:
            per = size.high
        else:
            per = max(size.mean, size.min or 1)
        rows = units * per
        if units > MAX_ROWS or rows > MAX_ROWS:
            # about ten float64 columns per row while drawing and fitting
            gb = rows * 8 * 10 / 1e9
            raise ValueError(
                f"factors: the design has {units:,} units of the lowest factor '{chain[-1]}' "
                f"and up to {rows:,.0f} rows (about {gb:,.0f} GB in memory); the limit is "
                f"{MAX_ROWS:,} rows")

    @staticmethod
    def _check_product(where, name, known, allow_intercept):
        if name == INTERCEPT and allow_intercept:
            return
        for part in name.split(":"):
            if part not in known:
                raise ValueError(
                    f"{where}: '{name}' is not '(Intercept)' or a product of predictors "
                    f"('x', 'x:z'); unknown '{part}'"
                )

    @property
    def chain(self) -> list[str]:
        """The nested (non-crossed) factors from the top down."""
        top = next(n for n, f in self.factors.items() if not f.crossed and f.nested_in is None)
        out = [top]
        child = {f.nested_in: n for n, f in self.factors.items() if f.nested_in is not None}
        while out[-1] in child:
            out.append(child[out[-1]])
        return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the file and each offending key."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("function-after", "union")))
        # pydantic tags union branches in the location (e.g. 'int', 'SizeDist'); keep the key
        loc = ".".join(x for x in loc.split(".") if x not in {"int", "SizeDist", "float", "str"})
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}" if loc else msg)
    parts = list(dict.fromkeys(parts))
    return f"{source}: " + "; ".join(parts)


def design_from_dict(data: dict, source: str = "design") -> SimDesign:
    """Validate a design given as a dict (the parsed TOML).

    Raises
    ------
    SpecError
        Naming ``source`` and the offending key.
    """
    try:
        return SimDesign.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source)) from None


def read_toml(path: str | Path, what: str = "file") -> dict:
    """Parse a TOML file; a missing or malformed file is a :class:`SpecError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{what} '{path}' is a directory, not a file")
    if not path.is_file():
        raise SpecError(f"{what} '{path}' does not exist")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None


def load_design(path: str | Path) -> SimDesign:
    """Read and validate a TOML design file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SimDesign

    Raises
    ------
    SpecError
        The file is missing or not TOML, or a key is unknown, mistyped or impossible (the
        message names the file and the key).
    """
    return design_from_dict(read_toml(path, "design file"), source=str(path))
