"""Parameter names: every one is built and parsed here.

Prior keys (:mod:`workbench.bayes.priors`) are built here too: ``corr[LABEL]`` and the
per-factor keys ``sd[GROUP]``, ``corr[GROUP]``.

The tidy names, used by the fit record, the comparison tables, the study results and the priors::

    beta[NAME]            a fixed effect              beta[(Intercept)], beta[x:z]
    sd[GROUP:TERM]        sd of a random effect       sd[Subject:Days], sd[g:h:(Intercept)]
    cor[GROUP:T1,T2]      correlation of two          cor[Subject:(Intercept),Days]
    sigma                 residual sd
    var[GROUP:TERM]       variance of a random effect (the variance scale of ``sd``)
    cov[GROUP:T1,T2]      covariance of two
    var[Residual]         residual variance
    b[GROUP:TERM]         the group effects of a term (one row per level in study results)
    corstruct[NAME]       a residual correlation parameter under nlme's name: corstruct[Rho]
    varstruct[NAME]       a residual variance-function parameter: varstruct[power]

``GROUP`` is the grouping factor, as lme4 names it after nesting (``g``, ``g:h``); lme4 labels a
second term on one factor ``g.1`` and :func:`base_group` maps it back to ``g``.

What a name may contain, and how a name is read back:

* ``NAME`` of ``beta[NAME]`` is anything non-empty (brackets, spaces, colons, commas included):
  the name is the text between the first ``[`` and the last ``]``.
* ``GROUP`` and ``TERM`` may contain ``:`` (a nested factor ``g:h``, an interaction ``x:z``),
  so where both do the split is ambiguous; :func:`parse` takes the model's group names
  (``groups=``) to split at the right colon, and without them splits at the first ``:`` (right
  whenever the group has no colon).  Text inside brackets or parentheses never splits.
* A ``cor``/``cov`` term may contain a comma only inside parentheses or brackets
  (``poly(x, 2)1``): the two terms are split at the comma outside them.  A term with a bare
  comma, or a group or term that is empty, is refused with a :class:`~workbench.errors.ParameterNameError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterNameError

KINDS = ("beta", "sd", "cor", "sigma", "var", "cov", "b", "corstruct", "varstruct")
#: The kinds of a residual structure's parameters (``diagnostics["corstruct"]`` / ``["varstruct"]``).
STRUCTURES = ("corstruct", "varstruct")
SIGMA = "sigma"
RESIDUAL = "Residual"
RESIDUAL_VAR = f"var[{RESIDUAL}]"
_PAIRS = ("cor", "cov")
_SD_TO_VAR = {"sd": "var", "cor": "cov"}
_VAR_TO_SD = {"var": "sd", "cov": "cor"}


@dataclass(frozen=True)
class ParamName:
    """A parsed parameter name.

    Attributes
    ----------
    kind : {"beta", "sd", "cor", "sigma", "var", "cov", "b"}
    group : str or None
        The grouping factor (``"Residual"`` for ``var[Residual]``; None for beta and sigma).
    terms : tuple of str
        ``(NAME,)`` for beta, ``(TERM,)`` for sd/var/b, ``(T1, T2)`` for cor/cov, ``()`` otherwise.
    """

    kind: str
    group: str | None = None
    terms: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "sigma":
            return SIGMA
        if self.kind == "beta":
            return beta(self.terms[0])
        if self.kind in STRUCTURES:
            return structure(self.kind, self.terms[0])
        if self.kind == "var" and self.group == RESIDUAL:
            return RESIDUAL_VAR
        return _build(self.kind, self.group, *self.terms)

    @property
    def is_residual(self) -> bool:
        """``sigma`` or ``var[Residual]``."""
        return self.kind == "sigma" or (self.kind == "var" and self.group == RESIDUAL)


# --------------------------------------------------------------------------- build
def beta(name: str) -> str:
    """``beta[NAME]``."""
    _check_part(name, "fixed-effect name")
    return f"beta[{name}]"


def sd(group: str, term: str) -> str:
    """``sd[GROUP:TERM]``."""
    return _build("sd", group, term)


def cor(group: str, term1: str, term2: str) -> str:
    """``cor[GROUP:T1,T2]``."""
    return _build("cor", group, term1, term2)


def var(group: str, term: str) -> str:
    """``var[GROUP:TERM]``."""
    return _build("var", group, term)


def cov(group: str, term1: str, term2: str) -> str:
    """``cov[GROUP:T1,T2]``."""
    return _build("cov", group, term1, term2)


def structure(entry: str, name: str) -> str:
    """``corstruct[NAME]`` or ``varstruct[NAME]``: a residual structure's parameter under
    nlme's name (``Rho``, ``Phi``, ``power``, ...)."""
    if entry not in STRUCTURES:
        raise ParameterNameError(f"'{entry}' is not a residual structure; use one of "
                                 f"{', '.join(STRUCTURES)}")
    _check_part(name, "structure parameter name")
    return f"{entry}[{name}]"


def effect(group: str, term: str) -> str:
    """``b[GROUP:TERM]``: the group effects of one term."""
    return _build("b", group, term)


def _build(kind: str, group: str, *terms: str) -> str:
    _check_part(group, "group")
    for t in terms:
        _check_part(t, "term")
        if kind in _PAIRS and _split_outside(t, ",") != [t]:
            raise ParameterNameError(
                f"term '{t}' has a comma outside parentheses, so {kind}[{group}:...] could not be "
                "read back; rename the column")
    return f"{kind}[{group}:{','.join(terms)}]"


def _check_part(text, what: str) -> None:
    if not isinstance(text, str) or not text:
        raise ParameterNameError(f"a parameter name needs a non-empty {what}, got {text!r}")


def base_group(grp: str) -> str:
    """lme4 labels a second term on a factor ``g.1``; parameter names use the factor ``g``."""
    head, dot, tail = grp.rpartition(".")
    return head if dot and tail.isdigit() else grp


def varcorr_param_name(row: dict) -> str:
    """Tidy parameter name of a ``varcorr`` row (``sd[..]``, ``cor[..]``, ``sigma``)."""
    if row["grp"] == RESIDUAL:
        return SIGMA
    g = base_group(row["grp"])
    if row.get("var2") is None:
        return sd(g, row["var1"])
    return cor(g, row["var1"], row["var2"])


def varcorr_var_name(row: dict) -> str:
    """Variance-scale name of a ``varcorr`` row: ``var[g:T]``, ``cov[g:T1,T2]``, ``var[Residual]``."""
    if row["grp"] == RESIDUAL:
        return RESIDUAL_VAR
    g = base_group(row["grp"])
    if row.get("var2") is None:
        return var(g, row["var1"])
    return cov(g, row["var1"], row["var2"])


# --------------------------------------------------------------------------- prior keys
def corr_key(label: str) -> str:
    """Prior key of a term's correlation matrix, ``corr[LABEL]`` (lme4's term label, ``g.1``)."""
    _check_part(label, "term label")
    return f"corr[{label}]"


def group_key(kind: str, group: str) -> str:
    """Prior key addressing every parameter of one kind on a factor: ``sd[GROUP]``, ``corr[GROUP]``."""
    _check_part(group, "group")
    return f"{kind}[{group}]"


# --------------------------------------------------------------------------- parse
def kind(name: str) -> str | None:
    """The kind of a name (``"beta"``, ``"sd"``, ...) without splitting it; None if it is none."""
    if name == SIGMA:
        return "sigma"
    head, bracket, _ = name.partition("[")
    if bracket and name.endswith("]") and head in KINDS and head != "sigma" and len(name) > len(head) + 2:
        return head
    return None


def body(name: str) -> str:
    """The text between the brackets: ``beta[x]`` -> ``x``, ``sd[g:x]`` -> ``g:x``."""
    if kind(name) in (None, "sigma"):
        raise ParameterNameError(f"'{name}' is not a bracketed parameter name")
    return name[name.index("[") + 1:-1]


def parse(name: str, groups=None) -> ParamName:
    """Read a parameter name back (see the module docstring for the rules).

    Parameters
    ----------
    name : str
    groups : iterable of str, optional
        The model's grouping factors; with them a group containing ``:`` is split correctly.

    Raises
    ------
    ParameterNameError
        Not a parameter name.
    """
    k = kind(name) if isinstance(name, str) else None
    if k is None:
        raise ParameterNameError(
            f"'{name}' is not a parameter name; use beta[NAME], sd[GROUP:TERM], "
            "cor[GROUP:T1,T2], sigma, var[GROUP:TERM], cov[GROUP:T1,T2], var[Residual] or "
            "b[GROUP:TERM]")
    if k == "sigma":
        return ParamName("sigma")
    inner = body(name)
    if k in ("beta",) + STRUCTURES:
        return ParamName(k, None, (inner,))
    if k == "var" and inner == RESIDUAL:
        return ParamName("var", RESIDUAL, ())
    group, rest = _split_group(name, inner, groups)
    if k in _PAIRS:
        terms = _split_outside(rest, ",")
        if len(terms) != 2 or not all(terms):
            raise ParameterNameError(f"'{name}' must name two terms, {k}[GROUP:T1,T2]")
        return ParamName(k, group, tuple(terms))
    return ParamName(k, group, (rest,))


def _split_group(name: str, inner: str, groups) -> tuple[str, str]:
    if groups is not None:
        for g in sorted(groups, key=len, reverse=True):
            if inner.startswith(g + ":") and len(inner) > len(g) + 1:
                return g, inner[len(g) + 1:]
    parts = _split_outside(inner, ":", maxsplit=1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ParameterNameError(f"'{name}' must name a group and a term, as in sd[GROUP:TERM]")
    return parts[0], parts[1]


def _split_outside(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split at ``sep`` outside ``()`` and ``[]``."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0 and (maxsplit < 0 or len(out) < maxsplit):
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def beta_name(name: str) -> str | None:
    """``beta[NAME]`` -> ``NAME``; None for any other name."""
    return body(name) if kind(name) == "beta" else None


def to_variance_scale(name: str) -> str | None:
    """``sd[g:T]`` -> ``var[g:T]``, ``cor[g:A,B]`` -> ``cov[g:A,B]``, ``sigma`` -> ``var[Residual]``;
    None for a fixed effect or a name already on the variance scale."""
    k = kind(name)
    if k == "sigma":
        return RESIDUAL_VAR
    if k in _SD_TO_VAR:
        return f"{_SD_TO_VAR[k]}[{body(name)}]"
    return None


def to_sd_scale(name: str) -> str | None:
    """``var[g:T]`` -> ``sd[g:T]``, ``cov[..]`` -> ``cor[..]``, ``var[Residual]`` -> ``sigma``;
    None otherwise."""
    if name == RESIDUAL_VAR:
        return SIGMA
    k = kind(name)
    if k in _VAR_TO_SD:
        return f"{_VAR_TO_SD[k]}[{body(name)}]"
    return None


__all__ = ["ParamName", "KINDS", "STRUCTURES", "structure", "SIGMA", "RESIDUAL", "RESIDUAL_VAR", "beta", "sd", "cor", "var",
           "cov", "effect", "base_group", "varcorr_param_name", "varcorr_var_name", "kind", "body", "parse",
           "beta_name", "to_variance_scale", "to_sd_scale", "corr_key", "group_key"]
