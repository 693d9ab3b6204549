"""The study specification: a validated TOML file describing a simulation study.

A study names a base design (a :mod:`workbench.simulate` TOML file, or an inline ``[design]``
table), a grid of conditions that vary design fields, the methods to compare, the parameters to
evaluate, the replicates and a seed::

    name = "few_groups"
    design = "designs/few_groups.toml"     # relative to this file
    replicates = 500
    seed = 2006
    parameters = ["sd[g:(Intercept)]", "var[g:(Intercept)]"]   # default: every true parameter
    group_effects = false                  # also evaluate BLUPs / posterior means of the effects

    [grid.n_groups]                        # one axis: a design field and its values
    path = "factors.g.levels"
    values = [3, 5, 10, 20, 50]

    [grid.icc]                             # or named levels that set several fields each
    values = [0.1, 0.3]
    set = [{ "random.g.var" = [0.111] }, { "random.g.var" = [0.4286] }]

    [methods.reml]                         # label -> how to fit
    method = "reml"
    intervals = ["wald_var", "wald_sd"]
    options = { nobound = true }           # checked by workbench.options, passed to workbench.fit

    [methods.fgls]                         # the other GLS traditions: fgls, igls, rigls
    method = "fgls"
    options = { fgls = "swar" }

    [methods.gls_cs]                       # nlme's GLS: the random-intercept model written as
    method = "reml"                        # a residual correlation
    options = { correlation = "cs(~ 1 | g)" }

Interval kinds: ``wald_var`` (estimate +- z SE on the variance scale for variances and
covariances, SEs from the fit's state's ``var_params``; sd intervals are the square roots of
the variance interval), ``wald_sd`` (Wald on the sd scale by the delta method; variance
intervals are its squares), ``profile`` and ``credible`` (the intervals the fitter recorded,
``beta_ci`` and ``sdcor_ci``; ask the fitter for profile intervals through ``options``).
Fixed effects always use the fitter's own interval (Wald for REML/ML, credible for Bayes).
``wald`` gives the fixed effects' Wald intervals and no interval for the variance components: the
only kind, and the default, of ``fgls``, ``igls`` and ``rigls`` arms and of arms with a
``correlation`` (feasible GLS has no standard errors for its moment estimators, and neither
IGLS/RIGLS nor nlme's GLS records them; their variance rows are scored on the estimate alone).

An arm with ``options.correlation`` fits the formula's fixed part with that residual structure
(``nlme::gls``).  The truth must be a random-intercept model, one term ``(1 | g)``, and the
structure ``cs(~ 1 | g)`` on the same factor: compound symmetry is that model written as a
correlation, so the arm is scored on the random-intercept parameters it implies, with s2 the
GLS residual variance (the marginal one) and Rho its within-group correlation::

    var[g:(Intercept)] = Rho s2,   var[Residual] = (1 - Rho) s2,

``sd`` and ``sigma`` their square roots (a negative Rho, which the random-effects form cannot
express, gives a negative variance, scored as it is, and an sd of 0).

With ``group_effects = true`` every fit also gives rows ``b[GROUP:TERM]`` (one per level, in
the ``level`` column) comparing the BLUP or posterior mean with the random effect actually
drawn; intervals are BLUP +- z conditional sd, or the posterior interval.
``[summary] compare = ["reml", "bayes"]`` adds a table of how far two arms' estimates differ on
the same data sets.

Simulation-based calibration (:mod:`workbench.study.sbc`): with ``truth = "prior"`` every arm
is Bayesian and each replicate draws its truth from the arm's priors (the design supplies the
layout and the predictors, not the parameter values), fits, and records the rank of the truth
among ``thin_to`` thinned posterior draws (default 99)::

    truth = "prior"
    thin_to = 99
    [methods.mismatched]                   # a fitter that must fail the check
    method = "bayes"
    options = { priors = { sd = "HalfNormal(0.5)" } }
    truth_priors = {}                      # the truth from other priors ({} = the defaults)

:func:`load_study` validates everything (every grid condition is built and checked against the
formula) before any work starts; errors name the file and the key.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import names
from ..errors import OptionError, SpecError
from ..options import method_options
from ..simulate.generate import formula_layout, truth
from ..simulate.schema import SimDesign, design_from_dict, format_validation_error, read_toml

INTERVAL_KINDS = ("wald_var", "wald_sd", "profile", "credible", "wald")
#: Arms whose variance components have no standard errors: fixed-effect Wald intervals only.
_GLS_METHODS = ("fgls", "igls", "rigls")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Axis(_Strict):
    """One grid axis: ``path`` + ``values``, or ``values`` (labels) + ``set`` (one table each)."""

    values: list[Any] = Field(min_length=1)
    path: str | None = None
    set: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.path is None) == (self.set is None):
            raise ValueError("give either path (a design field) or set (fields per value)")
        if self.set is not None and len(self.set) != len(self.values):
            raise ValueError(f"set has {len(self.set)} entries for {len(self.values)} values")
        if len({json.dumps(v, sort_keys=True) for v in self.values}) != len(self.values):
            raise ValueError("values repeat")
        return self


class MethodSpec(_Strict):
    """How one arm fits each replicate."""

    method: Literal["reml", "ml", "fgls", "igls", "rigls", "bayes"]
    intervals: list[Literal["wald_var", "wald_sd", "profile", "credible", "wald"]] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    batch: int | None = Field(default=None, ge=1)
    truth_priors: dict[str, str] | None = None

    @model_validator(mode="after")
    def _defaults(self):
        if "correlation" in self.options and self.method not in ("reml", "ml"):
            raise ValueError("options.correlation needs method = 'reml' or 'ml'")
        fixed_only = self.method in _GLS_METHODS or "correlation" in self.options
        if self.intervals is None:
            object.__setattr__(self, "intervals", ["credible"] if self.method == "bayes"
                               else ["wald"] if fixed_only else ["wald_var"])
        if len(set(self.intervals)) != len(self.intervals):
            raise ValueError("intervals repeat a kind")
        if self.method == "bayes" and set(self.intervals) - {"credible"}:
            raise ValueError("a bayes arm has credible intervals only")
        if self.method != "bayes" and "credible" in self.intervals:
            raise ValueError("credible intervals need method = 'bayes'")
        if fixed_only and self.intervals != ["wald"]:
            what = (f"a {self.method} arm" if self.method in _GLS_METHODS
                    else "an arm with a correlation")
            raise ValueError(f"{what} has intervals = [\"wald\"] only (Wald for the fixed "
                             "effects; its variance components have no standard errors)")
        options = dict(self.options)
        correlation = options.pop("correlation", None)
        if correlation is not None:
            if not isinstance(correlation, str):
                raise ValueError("options.correlation is a string such as \"cs(~ 1 | g)\"")
        try:
            method_options(self.method, **options)
        except OptionError as exc:
            raise ValueError(str(exc)) from None
        if self.truth_priors is not None and self.method != "bayes":
            raise ValueError("truth_priors needs method = 'bayes'")
        return self

    def manifest(self) -> dict:
        """The JSON record (``truth_priors`` only where given, so older runs still resume)."""
        out = self.model_dump(mode="json")
        if out.get("truth_priors") is None:
            out.pop("truth_priors", None)
        return out

    @property
    def default_batch(self) -> int:
        """Replicates per task: many for millisecond REML fits, few for sampling."""
        return self.batch or (2 if self.method == "bayes" else 25)


class Summary(_Strict):
    """Summary options: grid axes of the pooled non-coverage table (Maas & Hox's Table)."""

    by: list[str] = Field(default_factory=list)
    compare: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pair(self):
        if self.compare and len(self.compare) != 2:
            raise ValueError("compare names two method labels, e.g. [\"reml\", \"bayes\"]")
        return self


class StudySpec(_Strict):
    """A study file; see the module docstring."""

    name: str
    description: str = ""
    design: str | dict[str, Any]
    replicates: int = Field(ge=1)
    seed: int = Field(ge=0)
    parameters: list[str] | None = None
    grid: dict[str, Axis] = Field(default_factory=dict)
    methods: dict[str, MethodSpec] = Field(min_length=1)
    level: float = Field(default=0.95, gt=0, lt=1)
    group_effects: bool = False
    summary: Summary = Field(default_factory=Summary)
    truth: Literal["design", "prior"] = "design"
    thin_to: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _names(self):
        for label in self.methods:
            if not label.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"methods.{label}: a label uses letters, digits, '_' and '-' only")
        for m in self.summary.compare:
            if m not in self.methods:
                raise ValueError(f"summary.compare: '{m}' is not a method label")
        for by in self.summary.by:
            if by not in self.grid:
                raise ValueError(f"summary.by: '{by}' is not a grid axis ({', '.join(self.grid) or 'none'})")
        if self.truth == "prior":
            other = [f"methods.{k} is method '{m.method}'" for k, m in self.methods.items()
                     if m.method != "bayes"]
            if other:
                raise ValueError("truth = 'prior' (simulation-based calibration) needs Bayesian "
                                 f"arms only; {', '.join(other)}")
            if self.group_effects:
                raise ValueError("group_effects: not with truth = 'prior'")
        else:
            if self.thin_to is not None:
                raise ValueError("thin_to needs truth = 'prior'")
            given = [k for k, m in self.methods.items() if m.truth_priors is not None]
            if given:
                raise ValueError(f"methods.{given[0]}.truth_priors needs truth = 'prior'")
        return self

    @property
    def sbc_thin_to(self) -> int:
        """Posterior draws kept per replicate for the ranks (``thin_to``, default 99)."""
        return self.thin_to or 99


class Condition(BaseModel):
    """One cell of the grid: its id, the axis values, the design and its truth."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: int
    values: dict[str, Any]
    design: SimDesign
    truth: dict[str, float]


class Study(BaseModel):
    """A loaded study: the spec plus its expanded, validated conditions."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: StudySpec
    source: str
    conditions: list[Condition]
    parameters: list[str]

    @property
    def name(self) -> str:
        return self.spec.name

    def manifest(self) -> dict:
        """JSON record of what defines the results (for resume checks and summaries)."""
        sbc = {"truth": "prior", "thin_to": self.spec.sbc_thin_to} if self.spec.truth == "prior" else {}
        return {**sbc,
            "name": self.spec.name,
            "seed": self.spec.seed,
            "level": self.spec.level,
            "axes": list(self.spec.grid),
            "summary_by": list(self.spec.summary.by),
            "summary_compare": list(self.spec.summary.compare),
            "group_effects": self.spec.group_effects,
            "parameters": self.parameters,
            "conditions": [
                {"id": c.id, "values": c.values, "truth": c.truth,
                 "design": c.design.model_dump(mode="json")}
                for c in self.conditions
            ],
            "methods": {k: m.manifest() for k, m in self.spec.methods.items()},
        }


def _set_path(data: dict, path: str, value, where: str) -> None:
    keys = path.split(".")
    node = data
    for i, k in enumerate(keys[:-1]):
        if not isinstance(node, dict) or k not in node:
            raise SpecError(f"{where}: the design has no table '{'.'.join(keys[:i + 1])}'")
        node = node[k]
    if not isinstance(node, dict):
        raise SpecError(f"{where}: '{'.'.join(keys[:-1])}' is not a table")
    node[keys[-1]] = value
    # sd and var are alternatives: setting one drops the other
    alt = {"sd": "var", "var": "sd"}.get(keys[-1])
    if alt and alt in node and keys[0] in ("random", "residual"):
        del node[alt]


def expand_grid(spec: StudySpec, base: dict, source: str) -> list[tuple[dict, dict]]:
    """Every grid cell as (axis values, design dict), axes varying slowest first."""
    axes = list(spec.grid.items())
    cells = []
    for combo in itertools.product(*[range(len(a.values)) for _, a in axes]):
        d = copy.deepcopy(base)
        values = {}
        for (name, axis), i in zip(axes, combo):
            values[name] = axis.values[i]
            if axis.path is not None:
                _set_path(d, axis.path, axis.values[i], f"{source}: grid.{name}.path")
            else:
                for path, v in axis.set[i].items():
                    _set_path(d, path, v, f"{source}: grid.{name}.set[{i}]")
        cells.append((values, d))
    return cells


def study_from_dict(data: dict, source: str = "study", base_dir: Path | None = None) -> Study:
    """Validate a study given as a dict; see :func:`load_study`."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source)) from None
    if isinstance(spec.design, str):
        dpath = Path(spec.design)
        if not dpath.is_absolute() and base_dir is not None:
            dpath = base_dir / dpath
        if not dpath.is_file():
            raise SpecError(f"{source}: design: design file '{dpath}' does not exist")
        base = read_toml(dpath, "design file")
        dsource = str(dpath)
    else:
        base = dict(spec.design)
        dsource = f"{source} [design]"
    conditions = []
    for cid, (values, d) in enumerate(expand_grid(spec, base, source)):
        label = ", ".join(f"{k}={v}" for k, v in values.items())
        design = design_from_dict(d, source=f"{dsource}{' (grid: ' + label + ')' if label else ''}")
        formula_layout(design)  # the formula must fit data from this design
        if spec.truth == "prior":  # drawn per replicate; these are the parameters it draws
            given = prior_parameters(design, spec.methods, f"{source} (grid: {label})" if label else source)
        else:
            given = truth(design)
        conditions.append(Condition(id=cid, values=values, design=design, truth=given))
    known = set().union(*(c.truth for c in conditions))
    if spec.parameters is None:
        params = list(conditions[0].truth)
    else:
        bad = [p for p in spec.parameters if p not in known]
        if bad:
            raise SpecError(
                f"{source}: parameters: {', '.join(bad)} not among the design's parameters "
                f"({', '.join(sorted(known))})"
            )
        params = list(spec.parameters)
    _check_intervals(spec, conditions, params, source)
    _check_correlation_arms(spec, conditions, source)
    if spec.truth == "prior":  # no fixed truth: each replicate draws its own
        conditions = [c.model_copy(update={"truth": {}}) for c in conditions]
    return Study(spec=spec, source=source, conditions=conditions, parameters=params)


def prior_parameters(design: SimDesign, methods: dict, source: str) -> dict[str, float]:
    """The parameters a prior draw of ``design`` gives, each arm's priors checked proper.

    One replicate's layout is drawn and every arm's truth priors (and fit priors) resolved on
    it, as :func:`workbench.study.sbc.sbc_batch` does; returns ``{name: nan}`` in record order.
    """
    from .sbc import sbc_priors

    out: dict[str, float] = {}
    for label, m in methods.items():
        try:
            drawn = sbc_priors(design, m.options.get("priors"), m.truth_priors)
        except SpecError as exc:
            raise SpecError(f"{source}: methods.{label}: {exc}") from None
        for name in drawn:
            out.setdefault(name, float("nan"))
    return out


_VC_KINDS = ("sd", "var", "cov", "sigma")


def _check_intervals(spec: StudySpec, conditions: list, params: list[str], source: str) -> None:
    """Refuse a REML/ML arm whose Wald intervals of the variance components cannot be made.

    ``wald_var`` and ``wald_sd`` of a variance component need its variance-scale standard
    error, which a fit computes only with ``options.vc_se`` (or ``nobound``) and one grouping
    factor; without them every such interval would come out empty.
    """
    vc = [p for p in params if names.kind(p) in _VC_KINDS]
    if not vc:
        return
    for label, m in spec.methods.items():
        wald = [k for k in m.intervals if k in ("wald_var", "wald_sd")]
        if m.method == "bayes" or not wald:
            continue
        if not (m.options.get("vc_se") or m.options.get("nobound")):
            raise SpecError(
                f"{source}: methods.{label}: {' and '.join(wald)} intervals of the variance "
                f"components ({', '.join(vc)}) need their standard errors: add "
                "options = { vc_se = \"expected\" } (or \"observed\"), or drop "
                f"{' and '.join(wald)} from intervals")
        for c in conditions:
            groups = formula_layout(c.design)["groups"]
            if len(groups) != 1:
                raise SpecError(
                    f"{source}: methods.{label}: {' and '.join(wald)} intervals of the variance "
                    f"components need one grouping factor (vc_se); the design has "
                    f"{len(groups)} ({', '.join(map(str, groups))})")


def _check_correlation_arms(spec: StudySpec, conditions: list, source: str) -> None:
    """An arm with ``options.correlation`` must be ``cs(~ 1 | g)`` on a random-intercept truth
    ``(1 | g)``: the only case where its estimates map onto the true parameters."""
    from ..errors import WorkbenchError
    from ..formula import parse_formula
    from ..gls.corstruct import parse_correlation

    for label, m in spec.methods.items():
        text = m.options.get("correlation")
        if text is None:
            continue
        where = f"{source}: methods.{label}.options.correlation"
        try:
            corr = parse_correlation(text)
        except WorkbenchError as exc:
            raise SpecError(f"{where}: {exc}") from None
        for c in conditions:
            random = parse_formula(c.design.formula).random
            if corr.kind != "cs" or len(random) != 1 or random[0].group != corr.group \
                    or random[0].expr.replace(" ", "") != "1":
                raise SpecError(
                    f"{where}: '{text}' is scored as the random-intercept model it writes as a "
                    f"correlation, so it must be cs(~ 1 | g) and the design's formula "
                    f"'{c.design.formula}' a single random intercept (1 | g) on the same factor")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Study

    Raises
    ------
    SpecError
        Naming the file and the offending key (unknown keys, wrong types, impossible values,
        a grid path the design lacks, a condition whose design is invalid).
    """
    path = Path(path)
    data = read_toml(path, "study file")
    return study_from_dict(data, source=str(path), base_dir=path.parent)


def spec_hash(obj) -> str:
    """Short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
