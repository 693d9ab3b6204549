"""Priors by name: ``"HalfCauchy(5)"`` -> :class:`Prior`, user keys -> one prior per parameter.

Keys (``priors={KEY: DIST}`` in the API, ``--prior KEY=DIST`` on the CLI):

* ``beta`` (every fixed effect) or ``beta[NAME]`` (``beta[(Intercept)]``, ``beta[x]``);
* ``sd`` (every group sd), ``sd[GROUP]``, ``sd[GROUP:TERM]`` (``sd[g:x]``);
* ``corr`` (every correlated term) or ``corr[GROUP]`` (``corr[g]``; ``corr[g.1]`` for the
  second term on factor ``g``): an ``LKJ(eta)`` prior on the term's correlation matrix;
* ``sigma``: the residual sd;
* ``rho`` / ``phi``: the correlation parameter of a residual structure, ``correlation=
  "cs(~ 1 | g)"`` (nlme's ``Rho``) / ``"ar1(~ t | g)"`` (``Phi``); only with that structure.

The most specific key wins.  Distributions (arguments as PyMC names them)::

    Normal(mu, sigma)  StudentT(nu, mu, sigma)  Flat()                 real line (beta)
    HalfNormal(sigma)  HalfCauchy(beta)  HalfStudentT(nu, sigma)       positive (sd, sigma)
    Exponential(lam)  HalfFlat()  Uniform(lower, upper)
    InverseGamma(alpha, beta)   on the variance: sd = sqrt(variance)   (sd, sigma)
    LKJ(eta)                                                           (corr)
    Fixed(value)      a point mass: the parameter is held at ``value`` (any key; for ``corr``
                      every correlation of the term, or a q x q matrix given as a Prior object)

``Uniform`` is allowed for beta, for sd/sigma when its lower bound is >= 0, and for rho/phi
inside the admissible range (``Fixed`` too).

Defaults are weakly informative and scaled to the data, as rstanarm and bambi scale theirs
(``sy`` is the sd of the response, ``sx`` of a predictor column, ``mx`` its mean):

* ``beta[NAME]``: ``Normal(0, 2.5 sy / sx)``; ``beta[(Intercept)]``:
  ``Normal(mean(y), sqrt((2.5 sy)^2 + sum_j (2.5 sy mx_j / sx_j)^2))`` (wide enough for
  predictors that are not centred);
* ``sd[GROUP:TERM]``: ``HalfNormal(2.5 sy)`` for an intercept column, ``HalfNormal(2.5 sy / sz)``
  for a slope column with sd ``sz``;
* ``corr[GROUP]``: ``LKJ(2)`` (mildly favours small correlations; keeps small-data chains
  away from the +-1 boundary);
* ``sigma``: ``Exponential(1 / sy)`` (rstanarm's default);
* ``rho`` (cs): ``Uniform(-1 / (T_max - 1), 1)``, ``T_max`` the largest group (lower bound
  rounded up to 4 digits); ``phi`` (ar1): ``Uniform(-1, 1)``.  Flat over the whole range
  where the correlation matrix is positive definite, rather than a Beta on the rescaled
  parameter: nlme's REML/ML fits put no weight anywhere in that range, so with a flat prior
  the posterior differs from their likelihood only by what is integrated out, which is what
  the comparison beside REML is for; it is proper, so prior draws exist, and a negative
  within-group correlation (allowed by cs, impossible for a random intercept) keeps its
  support.  An informative prior is ``Uniform`` on a narrower range.

Data-scaled numbers are rounded to 4 significant digits, so the printed prior is the one used.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .. import names
from ..design import INTERCEPT, Design
from ..errors import SpecError

KINDS = ("beta", "sd", "corr", "sigma")
RESIDUAL_KINDS = ("rho", "phi")  # a residual structure's correlation (cs, ar1)
_SCALES = frozenset({"sd", "sigma"})


@dataclass(frozen=True)
class Family:
    """One prior family: everything the package knows about it, in one entry of :data:`FAMILIES`.

    Attributes
    ----------
    name : str
        As written in a prior string (``"HalfNormal"``) and as PyMC names the distribution.
    args : tuple of str
        Argument names, in order, as PyMC names them.
    positive : tuple of str
        The arguments that must be > 0.
    support : str
        ``real``, ``positive``, ``interval``, ``variance`` (a prior on the variance; the
        parameter is its square root), ``corr`` or ``fixed``.
    prior_on : frozenset of str
        The parameter kinds (``beta``, ``sd``, ``sigma``, ``corr``) it may be a prior on.
    pymc : str or None
        The PyMC distribution (``pymc.<pymc>``, called with ``args`` by name); None where the
        model builds the parameter itself (``LKJ``: the LKJ Cholesky factor; ``Fixed``: a
        constant).
    sample : callable or None
        ``sample(args, rng, size)``: numpy draws of the *parameter* (the sd for a prior on the
        variance); None for an improper family.
    """

    name: str
    args: tuple[str, ...]
    positive: tuple[str, ...]
    support: str
    prior_on: frozenset
    pymc: str | None
    sample: object = field(default=None, compare=False, repr=False)

    @property
    def on_variance(self) -> bool:
        """A prior on the variance: the parameter is the square root of the PyMC variable."""
        return self.support == "variance"


def _family(name, args, positive, support, prior_on, pymc, sample) -> tuple[str, Family]:
    return name, Family(name, tuple(args), tuple(positive), support, frozenset(prior_on), pymc,
                        sample)


#: The prior families by name.
FAMILIES: dict[str, Family] = dict([
    _family("Normal", ("mu", "sigma"), ("sigma",), "real", {"beta"}, "Normal",
            lambda a, rng, n: rng.normal(a[0], a[1], n)),
    _family("StudentT", ("nu", "mu", "sigma"), ("nu", "sigma"), "real", {"beta"}, "StudentT",
            lambda a, rng, n: a[1] + a[2] * rng.standard_t(a[0], n)),
    _family("Flat", (), (), "real", {"beta"}, "Flat", None),
    _family("HalfNormal", ("sigma",), ("sigma",), "positive", _SCALES, "HalfNormal",
            lambda a, rng, n: np.abs(rng.normal(0.0, a[0], n))),
    _family("HalfCauchy", ("beta",), ("beta",), "positive", _SCALES, "HalfCauchy",
            lambda a, rng, n: np.abs(a[0] * rng.standard_cauchy(n))),
    _family("HalfStudentT", ("nu", "sigma"), ("nu", "sigma"), "positive", _SCALES, "HalfStudentT",
            lambda a, rng, n: np.abs(a[1] * rng.standard_t(a[0], n))),
    _family("Exponential", ("lam",), ("lam",), "positive", _SCALES, "Exponential",
            lambda a, rng, n: rng.exponential(1.0 / a[0], n)),
    _family("HalfFlat", (), (), "positive", _SCALES, "HalfFlat", None),
    _family("Uniform", ("lower", "upper"), (), "interval",
            {"beta"} | _SCALES | set(RESIDUAL_KINDS), "Uniform",
            lambda a, rng, n: rng.uniform(a[0], a[1], n)),
    _family("InverseGamma", ("alpha", "beta"), ("alpha", "beta"), "variance", _SCALES,
            "InverseGamma", lambda a, rng, n: np.sqrt(1.0 / rng.gamma(a[0], 1.0 / a[1], n))),
    _family("LKJ", ("eta",), ("eta",), "corr", {"corr"}, None, None),
    _family("Fixed", ("value",), (), "fixed", set(KINDS + RESIDUAL_KINDS), None,
            lambda a, rng, n: np.full(n, a[0])),
])


def families_for(kind: str) -> list[str]:
    """The families that may be a prior on a parameter kind (``Fixed`` left out)."""
    return [f.name for f in FAMILIES.values() if kind in f.prior_on and f.name != "Fixed"]


@dataclass(frozen=True)
class Prior:
    """One prior distribution.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`.
    args : tuple of float
        Arguments in the order of ``FAMILIES[family][0]``.
    value : ndarray, optional
        For ``Fixed`` on a correlation: a full correlation matrix (overrides ``args``).
    """

    family: str
    args: tuple[float, ...] = ()
    value: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise SpecError(_unknown_family_message(self.family))
        fam = FAMILIES[self.family]
        argnames = fam.args
        if self.family == "Fixed" and self.value is not None and not self.args:
            object.__setattr__(self, "args", (math.nan,))
        if len(self.args) != len(argnames):
            raise SpecError(
                f"{self.family} takes {len(argnames)} argument{'s' if len(argnames) != 1 else ''}"
                f"{' (' + ', '.join(argnames) + ')' if argnames else ''}, got {len(self.args)}"
            )
        args = tuple(float(a) for a in self.args)
        object.__setattr__(self, "args", args)
        if self.family == "Fixed" and self.value is not None:
            return
        for name, a in zip(argnames, args):
            if not math.isfinite(a):
                raise SpecError(f"{self}: argument {name} must be finite")
            if name in fam.positive and a <= 0:
                raise SpecError(f"{self}: argument {name} must be positive")
        if self.family == "Uniform" and not args[0] < args[1]:
            raise SpecError(f"{self}: lower must be below upper")

    @property
    def support(self) -> str:
        """``real``, ``positive``, ``interval``, ``variance``, ``corr`` or ``fixed``."""
        return FAMILIES[self.family].support

    @property
    def is_fixed(self) -> bool:
        return self.family == "Fixed"

    def __str__(self) -> str:
        if self.value is not None:
            return f"Fixed(<{np.shape(self.value)[0]}x{np.shape(self.value)[0]} matrix>)"
        return f"{self.family}({', '.join(_fmt(a) for a in self.args)})"


def _fmt(a: float) -> str:
    return str(int(a)) if float(a).is_integer() and abs(a) < 1e15 else f"{a:.6g}"


def _round4(v: float) -> float:
    return float(f"{v:.4g}")


def _unknown_family_message(name: str) -> str:
    close = [f for f in FAMILIES if f.lower() == str(name).lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"unknown prior distribution '{name}'{hint}; known: "
            + ", ".join(FAMILIES))


def Fixed(value) -> Prior:  # noqa: N802 - named like the distribution strings
    """A point-mass pseudo-prior: hold a parameter at ``value`` (scalar or correlation matrix)."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return Prior("Fixed", (float(arr),))
    return Prior("Fixed", (), value=arr)


_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)


def parse_prior(text) -> Prior:
    """Parse ``"Normal(0, 5)"`` (or pass a :class:`Prior` through).

    Raises
    ------
    SpecError
        Not of the form ``Name(args)``, an unknown distribution, a wrong number of arguments,
        a non-numeric or out-of-range argument.
    """
    if isinstance(text, Prior):
        return text
    if not isinstance(text, str):
        raise SpecError(f"a prior must be a string such as 'Normal(0, 5)', got {text!r}")
    m = _CALL.match(text)
    if not m:
        raise SpecError(f"cannot read prior '{text}': write it as Name(arguments), e.g. 'HalfNormal(5)'")
    name, body = m.group(1), m.group(2).strip()
    if name not in FAMILIES:
        raise SpecError(_unknown_family_message(name))
    args = []
    if body:
        for part in body.split(","):
            part = part.strip()
            try:
                args.append(float(part))
            except ValueError:
                raise SpecError(f"prior '{text}': argument '{part}' is not a number") from None
    return Prior(name, tuple(args))


# --------------------------------------------------------------------------- parameter slots
@dataclass(frozen=True)
class Slot:
    """One prior-bearing parameter of a design.

    ``kind`` is beta/sd/corr/sigma; ``key`` its resolved prior key (``beta[x]``, ``sd[g:x]``,
    ``corr[g.1]``, ``sigma``, ``rho``, ``phi``); ``group`` the grouping factor (sd, corr),
    ``label`` lme4's term label (corr), ``term`` the column (beta, sd), ``size`` the correlation
    dimension (corr) or the largest correlation group (rho, phi).
    """

    kind: str
    key: str
    group: str | None = None
    label: str | None = None
    term: str | None = None
    size: int = 1


def slots(design: Design, structure, residual: tuple[str, int] | None = None) -> list[Slot]:
    """Every prior-bearing parameter of a design, in record order (``residual``: the
    residual structure's parameter key and largest group, ``("rho", T_max)``)."""
    out = [Slot("beta", names.beta(n), term=n) for n in design.fixed_names]
    for blk in structure.blocks:
        for col in blk.columns:
            out.append(Slot("sd", names.sd(blk.group, col), group=blk.group, term=col))
    for blk in structure.blocks:
        for label, sl in blk.terms:
            m = sl.stop - sl.start
            if m >= 2:
                out.append(Slot("corr", names.corr_key(label), group=blk.group, label=label, size=m))
    if design.known_sd is None:
        out.append(Slot("sigma", "sigma"))
    if residual is not None:
        out.append(Slot(residual[0], residual[0], size=int(residual[1])))
    return out


def residual_range(slot: Slot) -> tuple[float, float]:
    """Where a residual correlation parameter may lie: ``(-1 / (T_max - 1), 1)`` for cs's
    ``rho``, ``(-1, 1)`` for ar1's ``phi``."""
    return (-1.0 / (slot.size - 1), 1.0) if slot.kind == "rho" else (-1.0, 1.0)


def _matches(user_key: str, slot: Slot) -> int:
    """Specificity (>0) with which a user key addresses a slot; 0 when it does not."""
    if user_key == slot.kind or (slot.kind == "corr" and user_key == "corr"):
        return 1
    if slot.kind == "beta":
        return 3 if user_key == slot.key else 0
    if slot.kind == "sd":
        if user_key == slot.key:
            return 3
        return 2 if user_key == names.group_key("sd", slot.group) else 0
    if slot.kind == "corr":
        if user_key == names.corr_key(slot.label):
            return 3
        return 2 if user_key == names.group_key("corr", slot.group) else 0
    return 0


_KEY = re.compile(r"^(beta|sd|corr|sigma)(\[(.+)\])?$|^(rho|phi)$")


def _check_key_syntax(key) -> None:
    if not isinstance(key, str) or not _KEY.match(key.strip()) or key.strip() == "sigma[]":
        raise SpecError(
            f"unknown prior key {key!r}; use beta, beta[NAME], sd, sd[GROUP], sd[GROUP:TERM], "
            "corr, corr[GROUP], sigma, or rho (cs) / phi (ar1) with a correlation structure"
        )
    if key.startswith("sigma["):
        raise SpecError(f"unknown prior key '{key}'; the residual sd's key is plain 'sigma'")


def _check_value(prior: Prior, slot: Slot, user_key: str) -> None:
    if slot.kind not in FAMILIES[prior.family].prior_on:
        what = {"beta": "a real-line distribution", "sd": "a positive distribution",
                "sigma": "a positive distribution", "corr": "LKJ(eta)",
                "rho": "a distribution on an interval", "phi": "a distribution on an interval"
                }[slot.kind]
        fams = families_for(slot.kind)
        need = what if fams == ["LKJ"] else f"{what} ({', '.join(fams)})"
        raise SpecError(f"prior {user_key}={prior}: {slot.kind} needs {need}")
    if slot.kind in RESIDUAL_KINDS:
        lo, hi = residual_range(slot)
        vals = prior.args
        inside = (lo <= vals[0] and vals[1] <= hi) if prior.family == "Uniform" \
            else lo < vals[0] < hi
        if not inside:
            raise SpecError(f"prior {user_key}={prior}: {slot.kind} must lie in "
                            f"({_fmt(lo)}, {_fmt(hi)}), where the correlation matrix is "
                            "positive definite")
    if prior.family == "Uniform" and slot.kind in ("sd", "sigma") and prior.args[0] < 0:
        raise SpecError(f"prior {user_key}={prior}: an sd cannot be negative; use lower >= 0")
    if prior.is_fixed:
        if slot.kind in ("sd",) and prior.args[0] < 0:
            raise SpecError(f"prior {user_key}={prior}: an sd cannot be negative")
        if slot.kind == "sigma" and prior.args[0] <= 0:
            raise SpecError(f"prior {user_key}={prior}: sigma must be positive")
        if slot.kind == "corr":
            corr_matrix(prior, slot.size, user_key)


def corr_matrix(prior: Prior, size: int, key: str = "corr") -> np.ndarray:
    """The correlation matrix of a ``Fixed`` corr prior (checked symmetric positive definite)."""
    if prior.value is not None:
        C = np.asarray(prior.value, dtype=float)
        if C.shape != (size, size):
            raise SpecError(f"prior {key}: Fixed correlation matrix must be {size} x {size}")
    else:
        r = prior.args[0]
        if not -1 < r < 1:
            raise SpecError(f"prior {key}={prior}: a correlation must lie in (-1, 1)")
        C = np.full((size, size), r)
    np.fill_diagonal(C, 1.0)
    if not np.allclose(C, C.T) or np.min(np.linalg.eigvalsh(C)) <= 1e-10:
        raise SpecError(f"prior {key}={prior}: not a valid (positive definite) correlation matrix")
    return C


# --------------------------------------------------------------------------- defaults
def default_priors(design: Design, structure,
                   residual: tuple[str, int] | None = None) -> dict[str, Prior]:
    """Weakly informative, data-scaled priors for every slot (see the module docstring)."""
    y = design.y
    sy = float(np.std(y, ddof=1)) if y.size > 1 else 1.0
    if not math.isfinite(sy) or sy <= 0:
        sy = 1.0
    X = design.X
    has_int = INTERCEPT in design.fixed_names
    out: dict[str, Prior] = {}
    slope_scales = {}
    for j, name in enumerate(design.fixed_names):
        if name == INTERCEPT:
            continue
        x = X[:, j]
        sx = float(np.std(x)) if has_int else float(np.sqrt(np.mean(x * x)))
        if not sx > 0:
            sx = float(np.abs(x).max()) or 1.0
        slope_scales[name] = (2.5 * sy / sx, float(np.mean(x)))
    for name in design.fixed_names:
        if name == INTERCEPT:
            var = (2.5 * sy) ** 2 + sum((s * m) ** 2 for s, m in slope_scales.values())
            out[names.beta(name)] = Prior("Normal", (_round4(float(np.mean(y))), _round4(math.sqrt(var))))
        else:
            out[names.beta(name)] = Prior("Normal", (0.0, _round4(slope_scales[name][0])))
    for blk in structure.blocks:
        for k, col in enumerate(blk.columns):
            z = blk.Z[:, k]
            sz = float(np.std(z))
            scale = 2.5 * sy if (col == INTERCEPT or not sz > 0) else 2.5 * sy / sz
            out[names.sd(blk.group, col)] = Prior("HalfNormal", (_round4(scale),))
    for blk in structure.blocks:
        for label, sl in blk.terms:
            if sl.stop - sl.start >= 2:
                out[names.corr_key(label)] = Prior("LKJ", (2.0,))
    if design.known_sd is None:
        out["sigma"] = Prior("Exponential", (_round4(1.0 / sy),))
    if residual is not None:
        key, tmax = residual
        lo = residual_range(Slot(key, key, size=int(tmax)))[0]
        out[key] = Prior("Uniform", (math.ceil(lo * 1e4) / 1e4, 1.0))
    return out


def resolve_priors(design: Design, structure, user: dict | None = None,
                   residual: tuple[str, int] | None = None) -> dict[str, Prior]:
    """One prior per parameter: defaults overridden by the user's keys, most specific first.

    Parameters
    ----------
    design : Design
    structure : workbench.structure.Structure
    user : dict, optional
        ``{key: "Dist(args)" or Prior}``.
    residual : (str, int), optional
        A residual correlation structure's parameter key (``"rho"``, ``"phi"``) and largest
        group.

    Returns
    -------
    dict
        ``{resolved key: Prior}`` in record order (``beta[..]``, ``sd[..]``, ``corr[..]``,
        ``sigma``, ``rho``/``phi``).

    Raises
    ------
    SpecError
        An unknown key or name, an unknown distribution, bad arguments, a distribution whose
        support does not fit the parameter.
    """
    user = dict(user or {})
    if not isinstance(user, dict):
        raise SpecError("priors must be a dict {key: 'Dist(args)'}")
    all_slots = slots(design, structure, residual)
    chosen = default_priors(design, structure, residual)
    specificity = {s.key: 0 for s in all_slots}
    for raw_key, raw_val in user.items():
        _check_key_syntax(raw_key)
        key = raw_key.strip()
        prior = parse_prior(raw_val)
        hits = [(s, _matches(key, s)) for s in all_slots]
        hits = [(s, sp) for s, sp in hits if sp > 0]
        if not hits:
            if key in KINDS and key != "sigma":
                continue  # a generic key with nothing to apply to (e.g. corr without slopes)
            if key == "sigma":
                raise SpecError("prior key 'sigma': the residual sds are known (known_sd), "
                                "so sigma has no prior")
            if key in RESIDUAL_KINDS:
                struct = "cs(~ 1 | g)" if key == "rho" else "ar1(~ t | g)"
                raise SpecError(f"prior key '{key}' is the correlation of a residual structure "
                                f"correlation='{struct}', which this model does not have")
            known = sorted({s.key for s in all_slots if s.kind == key.split("[")[0]}
                           | {names.group_key(s.kind, s.group) for s in all_slots
                              if s.kind == key.split("[")[0] and s.group})
            raise SpecError(f"prior key '{key}' names no parameter of this model"
                            + (f"; valid: {', '.join(known)}" if known else ""))
        for s, sp in hits:
            _check_value(prior, s, key)
            if sp >= specificity[s.key]:
                chosen[s.key] = prior
                specificity[s.key] = sp
    return {s.key: chosen[s.key] for s in all_slots}


def prior_strings(priors: dict[str, Prior]) -> dict[str, str]:
    """``{key: "Dist(args)"}`` for the record."""
    return {k: str(v) for k, v in priors.items()}


__all__ = ["RESIDUAL_KINDS", "residual_range", "Prior", "Family", "families_for", "Fixed", "FAMILIES", "parse_prior", "resolve_priors", "default_priors",
           "prior_strings", "slots", "Slot", "corr_matrix"]
