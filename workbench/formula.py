"""lme4 formula syntax -> :class:`ModelSpec`.

The random-effects bars are parsed here, because ``formulae`` does not know ``||`` and splits a
correlated block ``(1 + x | g)`` into one term per column.  The fixed-effects part and the
column expressions inside each bar are handed to ``formulae`` when the design is built
(:mod:`workbench.design`), so ``x*z``, ``C(x)`` and categorical coding behave as in bambi.

Expansions follow lme4:

* ``(e | g/h)`` -> ``(e | g) + (e | g:h)``;
* ``(1 + x || g)`` -> ``(1 | g) + (0 + x | g)`` (one uncorrelated term per column);
* ``(e | g:h)`` groups by the interaction of ``g`` and ``h``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import FormulaError

_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``.

    Parameters
    ----------
    expr : str
        The column expression left of the bar, e.g. ``"1 + x"`` or ``"0 + x"``.
    factors : tuple of str
        Data columns whose interaction defines the grouping factor (``("g",)``, ``("g", "h")``).
    """

    expr: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """Name of the grouping factor as lme4 prints it (``g`` or ``g:h``)."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed mixed-model formula; data-free and immutable.

    Attributes
    ----------
    formula : str
        The formula as written by the user.
    response : str
        Name of the response column.
    fixed : str
        Right-hand side of the fixed-effects part, in formulae syntax (``"1 + x"``).
    random : tuple of RandomTerm
        Random-effects terms after expanding ``/`` and ``||``.
    """

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct grouping-factor names, in order of first appearance."""
        return tuple(dict.fromkeys(t.group for t in self.random))

    @property
    def variables(self) -> tuple[str, ...]:
        """Data columns the formula may use (response, grouping columns; predictors by scan)."""
        names = [self.response]
        for t in self.random:
            names.extend(t.factors)
        return tuple(dict.fromkeys(names))


def _split_top(text: str, sep: str = "+") -> list[str]:
    """Split ``text`` on ``sep`` where it is not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced parentheses in '{text}'")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise FormulaError(f"unbalanced parentheses in '{text}'")
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _parse_group(text: str) -> list[tuple[str, ...]]:
    """``g`` -> [(g,)]; ``g:h`` -> [(g, h)]; ``g/h`` -> [(g,), (g, h)]."""
    text = text.strip()
    if not text:
        raise FormulaError("a random-effects term has no grouping factor after '|'")
    nests = [s.strip() for s in text.split("/")]
    out: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for nest in nests:
        factors = tuple(f.strip() for f in nest.split(":"))
        for f in factors:
            if not re.fullmatch(_NAME, f):
                raise FormulaError(
                    f"grouping factor '{text}' is not a column name, an interaction 'g:h' "
                    "or a nesting 'g/h'"
                )
        prefix = prefix + factors
        out.append(prefix)
    return out


def _expr_columns(expr: str) -> list[str]:
    """Split a bar's column expression into its terms, with the intercept made explicit."""
    parts = [p for p in _split_top(expr.replace("-", "+ -")) if p]
    has_int = True
    cols = []
    for p in parts:
        if p in ("0", "-1", "- 1"):
            has_int = False
        elif p == "1":
            continue
        elif p.startswith("-"):
            raise FormulaError(f"cannot remove '{p[1:].strip()}' in a random-effects term '{expr}'")
        else:
            cols.append(p)
    return (["1"] if has_int else []) + cols


def _parse_bar(inner: str) -> list[RandomTerm]:
    if "||" in inner:
        lhs, _, rhs = inner.partition("||")
        correlated = False
    else:
        lhs, _, rhs = inner.partition("|")
        correlated = True
    lhs = lhs.strip()
    if not lhs:
        raise FormulaError(f"random-effects term '({inner})' has nothing before the bar")
    if "|" in rhs:
        raise FormulaError(f"random-effects term '({inner})' has more than one bar")
    groups = _parse_group(rhs)
    terms = []
    for factors in groups:
        if correlated:
            terms.append(RandomTerm(lhs, factors))
        else:
            for col in _expr_columns(lhs):
                terms.append(RandomTerm("1" if col == "1" else f"0 + {col}", factors))
    return terms


def parse_formula(formula: str) -> ModelSpec:
    """Parse an lme4-style formula.

    Parameters
    ----------
    formula : str
        e.g. ``"y ~ 1 + x + (1 + x | g) + (1 | h)"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    FormulaError
        If the formula is malformed (no ``~``, no response, unbalanced parentheses, an empty
        term, a bad grouping factor).
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("the formula is empty")
    if formula.count("~") != 1:
        raise FormulaError(f"formula '{formula}' must contain exactly one '~'")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise FormulaError(f"formula '{formula}' has no response left of '~'")
    if not re.fullmatch(_NAME, lhs):
        raise FormulaError(
            f"response '{lhs}' in formula '{formula}' must be a column name"
        )
    if not rhs:
        raise FormulaError(f"formula '{formula}' has nothing right of '~'")
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for part in _split_top(rhs):
        if not part:
            raise FormulaError(f"formula '{formula}' has an empty term (a stray '+')")
        if part.startswith("(") and part.endswith(")") and "|" in part:
            inner = part[1:-1]
            if "(" in inner and _split_top(inner, "|") == [inner.strip()]:
                raise FormulaError(f"cannot parse random-effects term '{part}'")
            random.extend(_parse_bar(inner))
        elif "|" in part:
            raise FormulaError(
                f"random-effects term '{part}' must be in parentheses, as in '(1 | g)'"
            )
        else:
            fixed_parts.append(part)
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    # Let formulae vet the fixed part now, so a malformed formula fails before any data is read.
    try:
        from formulae import model_description

        model_description(f"{lhs} ~ {fixed}")
    except Exception as exc:  # formulae raises its own ParseError / ScanError types
        raise FormulaError(f"cannot parse the fixed effects '{fixed}': {exc}") from None
    return ModelSpec(formula=formula.strip(), response=lhs, fixed=fixed, random=tuple(random))
