"""Draw a data set from a :class:`~workbench.simulate.schema.SimDesign` and state its truth.

The generator is plain numpy (no formula machinery on the per-replicate path), so one data set
costs well under a millisecond for thousands of rows.  Random numbers come from the ``seed``
argument only (an int, a ``SeedSequence`` or a ``Generator``); the draws happen in a fixed
order (group sizes, crossed assignments, predictors, random effects, residuals), so a seed
always gives the same data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..errors import SpecError, WorkbenchError
from .schema import INTERCEPT, OBS, SimDesign, design_from_dict, load_design


def as_design(design) -> SimDesign:
    """Accept a SimDesign, a dict (parsed TOML) or a path to a TOML file."""
    if isinstance(design, SimDesign):
        return design
    if isinstance(design, dict):
        return design_from_dict(design)
    if isinstance(design, (str, Path)):
        return load_design(design)
    raise SpecError(f"a design must be a SimDesign, a dict or a TOML path, not {type(design).__name__}")


def _draw_predictor(p, rng: np.random.Generator, m: int) -> np.ndarray:
    if p.distribution == "normal":
        return p.mean + p.sd * rng.standard_normal(m)
    if p.distribution == "uniform":
        return rng.uniform(p.low, p.high, size=m)
    return (rng.random(m) < p.p).astype(float)


def _matrix_sqrt(cov: np.ndarray) -> np.ndarray:
    """A with A A' = cov; Cholesky when positive definite, else the symmetric square root."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0.0, None))


def _interaction_codes(codes: dict, group: str) -> np.ndarray:
    facs = group.split(":")
    if len(facs) == 1:
        return codes[facs[0]]
    combo = np.stack([codes[f] for f in facs], axis=1)
    _, inv = np.unique(combo, axis=0, return_inverse=True)
    return inv.ravel()


def generate(design: SimDesign, rng: np.random.Generator, effects: bool = False):
    """Draw one data set (no truth); see :func:`simulate`.

    With ``effects=True`` returns ``(data, effects)``, where ``effects`` maps each design
    random-effects key to ``(level labels, array (levels, terms))`` of the drawn effects; level
    labels are as the fits print them (``"7"``, or ``"2:7"`` for an interaction).
    """
    chain = design.chain
    counts = np.cumprod([design.factors[f].levels for f in chain])
    n_units = int(counts[-1])
    size = design.factors[chain[-1]].size
    if isinstance(size, int):
        sizes = np.full(n_units, size, dtype=np.int64)
    else:
        sizes = size.draw(rng, n_units)
    n = int(sizes.sum())
    unit = np.repeat(np.arange(n_units), sizes)
    codes: dict[str, np.ndarray] = {}
    nlev: dict[str, int] = {}
    for k, name in enumerate(chain):
        codes[name] = unit // (n_units // int(counts[k]))
        nlev[name] = int(counts[k])
    for name, f in design.factors.items():
        if f.crossed:
            codes[name] = rng.integers(0, f.levels, size=n)
            nlev[name] = f.levels
    cols: dict[str, np.ndarray] = {}
    for name, p in design.predictors.items():
        if p.level == OBS:
            cols[name] = _draw_predictor(p, rng, n)
        else:
            cols[name] = _draw_predictor(p, rng, nlev[p.level])[codes[p.level]]

    products: dict[str, np.ndarray] = {}

    def column(term: str) -> np.ndarray:
        if term not in products:
            out = np.ones(n)
            if term != INTERCEPT:
                for part in term.split(":"):
                    out = out * cols[part]
            products[term] = out
        return products[term]

    y = np.zeros(n)
    drawn = {}
    for name, b in design.fixed.items():
        if b != 0.0:
            y += b * column(name)
    for group, re_ in design.random.items():
        g = _interaction_codes(codes, group)
        nl = int(g.max()) + 1 if g.size else 0
        b = rng.standard_normal((nl, len(re_.terms))) @ _matrix_sqrt(re_.cov).T
        for k, term in enumerate(re_.terms):
            y += column(term) * b[g, k]
        if effects:
            drawn[group] = (_level_labels(codes, group), b)
    res = design.residual
    out = {name: codes[name] + 1 for name in design.factors}
    out.update(cols)
    if res.known_sd is not None:
        sd = rng.uniform(res.known_sd.low, res.known_sd.high, size=n)
        y += sd * rng.standard_normal(n)
        out[res.known_sd.column] = sd
    else:
        y += res.sigma * rng.standard_normal(n)
    out[design.response] = y
    frame = pd.DataFrame(out)
    return (frame, drawn) if effects else frame


def _level_labels(codes: dict, group: str) -> list[str]:
    """Labels of the levels of a (possibly interaction) grouping, in effect order."""
    facs = group.split(":")
    if len(facs) == 1:
        return [str(i + 1) for i in range(int(codes[facs[0]].max()) + 1)]
    combo = np.unique(np.stack([codes[f] for f in facs], axis=1), axis=0)
    return [":".join(str(int(v) + 1) for v in row) for row in combo]


# ---------------------------------------------------------------------------------- truth
_LAYOUTS: dict[str, dict] = {}


def formula_layout(design: SimDesign) -> dict:
    """How the design's formula sees data from this design (cached per design).

    Returns
    -------
    dict
        ``fixed``: fixed-effect names as fits name them; ``blocks``: list of (fitted group
        name, columns) per random-effects term; ``groups``: {design random key: fitted group
        name} where the formula's grouping partitions the rows as the design's does.

    Raises
    ------
    SpecError
        If the formula cannot be used with data from the design (a missing column, ...).
    """
    key = design.model_dump_json()
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    from ..design import build_design

    data = generate(design, np.random.default_rng(0))
    known = design.residual.known_sd.column if design.residual.known_sd is not None else None
    try:
        d = build_design(design.formula, data, known_sd=known)
    except WorkbenchError as exc:
        raise SpecError(f"formula '{design.formula}' does not fit the design's data: {exc}") from None
    codes = {name: data[name].to_numpy() - 1 for name in design.factors}
    groups = {}
    for g in design.random:
        mine = _interaction_codes(codes, g)
        for t in d.terms:
            if t.group == g:
                groups[g] = g
                break
            pairs = np.unique(np.stack([mine, t.codes], axis=1), axis=0).shape[0]
            if pairs == len(np.unique(mine)) == t.nlevels:
                groups[g] = t.group
                break
    layout = {"fixed": list(d.fixed_names), "blocks": [(t.group, list(t.columns)) for t in d.terms],
              "groups": groups}
    _LAYOUTS[key] = layout
    return layout


def truth(design: SimDesign) -> dict[str, float]:
    """The generating parameter values, named as fits name their parameters.

    ``beta[NAME]`` for every fixed effect of the design or the formula (0 where the design has
    none); ``sd[GROUP:TERM]``, ``var[GROUP:TERM]`` for every random-effects column of the design
    or the formula (0 where the design has none); ``cor[GROUP:T1,T2]``, ``cov[GROUP:T1,T2]``
    for pairs of one design table, in the formula's column order; ``sigma``,
    ``var[Residual]`` unless residual sds are known.  GROUP is the formula's name of the
    grouping (``class:school`` for ``(1 | school/class)``, as lme4 labels it).
    """
    design = as_design(design)
    layout = formula_layout(design)
    order = {}
    for group, columns in layout["blocks"]:
        for i, c in enumerate(columns):
            order.setdefault((group, c), i)
    out: dict[str, float] = {}
    for name in layout["fixed"]:
        out[names.beta(name)] = float(design.fixed.get(name, 0.0))
    for name, v in design.fixed.items():
        out.setdefault(names.beta(name), float(v))
    for g, re_ in design.random.items():
        group = layout["groups"].get(g, g)
        cov = re_.cov
        sds = re_.sds
        for i, t in enumerate(re_.terms):
            out[names.sd(group, t)] = float(sds[i])
            out[names.var(group, t)] = float(cov[i, i])
        q = len(re_.terms)
        for i in range(q):
            for j in range(i + 1, q):
                a, b = re_.terms[i], re_.terms[j]
                if order.get((group, b), j) < order.get((group, a), i):
                    a, b = b, a
                c = cov[i, j] / (sds[i] * sds[j]) if sds[i] > 0 and sds[j] > 0 else float("nan")
                out[names.cor(group, a, b)] = float(c)
                out[names.cov(group, a, b)] = float(cov[i, j])
    for group, columns in layout["blocks"]:
        for c in columns:
            out.setdefault(names.sd(group, c), 0.0)
            out.setdefault(names.var(group, c), 0.0)
    sigma = design.residual.sigma
    if sigma is not None:
        out[names.SIGMA] = float(sigma)
        out[names.RESIDUAL_VAR] = float(sigma**2)
    return out


def simulate(design, seed) -> tuple[pd.DataFrame, dict[str, float]]:
    """Simulate one data set from a design.

    Parameters
    ----------
    design : SimDesign, dict or path
        The design (a path is read with :func:`load_design`).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        The only source of randomness (no global state is read or changed).

    Returns
    -------
    data : DataFrame
        One column per factor (integer labels, unique across the factor), per predictor, the
        known sds when the design has them, and the response.
    truth : dict
        See :func:`truth`.
    """
    design = as_design(design)
    if seed is None:
        raise SpecError("simulate needs a seed (an int or a numpy Generator)")
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed < 0:
        raise SpecError(f"the seed must be a non-negative integer, got {seed}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return generate(design, rng), truth(design)


def design_json(design: SimDesign) -> str:
    """Canonical JSON of a design (for records and cache keys)."""
    return json.dumps(design.model_dump(mode="json"), sort_keys=True)
