"""lme4 formula syntax -> :class:`ModelSpec`.

The whole formula is parsed with R's grammar (:mod:`workbench.terms`); the random-effects bars
``(expr | g)`` are taken out of the right-hand side and the rest is the fixed-effects part, kept
as a tree and expanded into R's terms.  The response is an expression (``log(TICKS + 1)``,
``incidence/size``), evaluated on the data.

Expansions follow lme4:

* ``(e | a/b)`` -> ``(e | a) + (e | b:a)`` (the nested factor is labelled ``b:a``, as lme4);
* ``(1 + x || g)`` -> ``(1 | g) + (0 + x | g)`` (one uncorrelated term per term of e);
* ``(e | g:h)`` groups by the interaction of ``g`` and ``h``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import FormulaError
from .terms import Terms, deparse, expand_terms, names_in, parse, quote_name


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``.

    Parameters
    ----------
    expr : str
        The column expression left of the bar, e.g. ``"1 + x"`` or ``"0 + x"``.
    factors : tuple of str
        Data columns whose interaction defines the grouping factor (``("g",)``, ``("h", "g")``).
    """

    expr: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """Name of the grouping factor as lme4 prints it: ``g``, ``h:g``; a single column under
        its own name (``my g``), an interaction deparsed with R's backticks (``a:`my g```)."""
        if len(self.factors) == 1:
            return self.factors[0]
        return ":".join(quote_name(f) for f in self.factors)

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
        The response as R deparses it (a column name, or ``log(y)``).
    fixed : str
        Right-hand side of the fixed-effects part as R deparses it (``"1 + x"``, ``"x * z"``).
    random : tuple of RandomTerm
        Random-effects terms after expanding ``/`` and ``||``.
    response_tree, fixed_tree
        Parse trees of the response and of the fixed part.
    """

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)
    response_tree: tuple = field(default=None, compare=False, repr=False)
    fixed_tree: tuple = field(default=None, compare=False, repr=False)

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct grouping-factor names, in order of first appearance."""
        return tuple(dict.fromkeys(t.group for t in self.random))

    @property
    def fixed_terms(self) -> Terms:
        """The fixed part expanded into R's terms."""
        tree = self.fixed_tree if self.fixed_tree is not None else parse(self.fixed)
        return expand_terms(self.fixed, tree)

    @property
    def variables(self) -> tuple[str, ...]:
        """Data columns the formula reads (response, predictors, grouping columns)."""
        names = names_in(self.response_tree) if self.response_tree else [self.response]
        names += names_in(self.fixed_tree) if self.fixed_tree else []
        for t in self.random:
            names += names_in(parse(t.expr))
            names.extend(t.factors)
        return tuple(dict.fromkeys(names))


def _group_factors(node, text: str) -> list[tuple[str, ...]]:
    """``g`` -> [(g,)]; ``g:h`` -> [(g, h)]; ``a/b`` -> [(a,), (b, a)] as lme4 labels them."""
    if node[0] == "paren":
        return _group_factors(node[1], text)
    if node[0] == "name":
        return [(node[1],)]
    if node[0] == "bin" and node[1] == ":":
        out = []
        for side in (node[2], node[3]):
            f = _group_factors(side, text)
            if len(f) != 1:
                break
            out.extend(f[0])
        else:
            return [tuple(out)]
    if node[0] == "bin" and node[1] == "/":
        outer = _group_factors(node[2], text)
        inner = _group_factors(node[3], text)
        if len(inner) == 1:
            return outer + [inner[0] + outer[-1]]
    raise FormulaError(f"grouping factor '{deparse(node)}' in '{text}' is not a column name, an "
                       "interaction 'g:h' or a nesting 'g/h'")


def _is_bar(node) -> bool:
    return node[0] == "paren" and node[1][0] == "bin" and node[1][1] in ("|", "||")


def _split_bars(node, bars: list):
    """Take the bars out of a sum; returns what is left (None when nothing is)."""
    if _is_bar(node):
        bars.append(node[1])
        return None
    if node[0] == "bin" and node[1] in ("+", "-"):
        left = _split_bars(node[2], bars)
        right = node[3] if node[1] == "-" else _split_bars(node[3], bars)
        if node[1] == "-" and _contains_bar(right):
            raise FormulaError(f"cannot remove a random-effects term: '- {deparse(right)}'")
        if left is None:
            return right if node[1] == "+" else ("neg", right)
        if right is None:
            return left
        return ("bin", node[1], left, right)
    if _contains_bar(node):
        raise FormulaError(f"cannot parse random-effects term '{deparse(node)}': a bar must be "
                           "in its own parentheses, added to the rest, as in '(1 + x | g)'")
    return node


def _contains_bar(node) -> bool:
    if node[0] == "bin":
        return node[1] in ("|", "||") or _contains_bar(node[2]) or _contains_bar(node[3])
    if node[0] in ("paren", "neg", "pos"):
        return _contains_bar(node[1])
    if node[0] == "call":
        return any(_contains_bar(a) for a in node[2])
    return False


def _parse_bar(bar, text: str) -> list[RandomTerm]:
    _, op, lhs, rhs = bar
    if _contains_bar(lhs) or _contains_bar(rhs):
        raise FormulaError(f"random-effects term '({deparse(bar)})' has more than one bar")
    groups = _group_factors(rhs, text)
    expr = deparse(lhs)
    terms = []
    for factors in groups:
        if op == "|":
            terms.append(RandomTerm(expr, factors))
        else:
            ex = expand_terms(expr, lhs)
            if ex.intercept:
                terms.append(RandomTerm("1", factors))
            for label in ex.labels:
                terms.append(RandomTerm(f"0 + {label}", factors))
    return terms


def parse_formula(formula: str) -> ModelSpec:
    """Parse an lme4-style formula.

    Parameters
    ----------
    formula : str
        e.g. ``"log(y) ~ 1 + x + I(x^2) + (1 + x | g) + (1 | h)"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    FormulaError
        If the formula is malformed (no ``~``, no response, unbalanced parentheses, an empty
        term, a bad grouping factor, an operator or function R's formula language lacks); the
        message names the part that cannot be read.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("the formula is empty")
    if formula.count("~") != 1:
        raise FormulaError(f"formula '{formula}' must contain exactly one '~'")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise FormulaError(f"formula '{formula}' has no response left of '~'")
    if not rhs:
        raise FormulaError(f"formula '{formula}' has nothing right of '~'")
    if re.search(r"\+\s*\+|\+\s*$|^\s*\+", rhs):
        raise FormulaError(f"formula '{formula}' has an empty term (a stray '+')")
    if re.search(r"\(\s*\|", rhs):
        raise FormulaError(f"a random-effects term in '{formula}' has nothing before the bar")
    if re.search(r"\|\s*\)", rhs):
        raise FormulaError(f"a random-effects term in '{formula}' has no grouping factor after '|'")
    ytree = parse(lhs)
    if _contains_bar(ytree):
        raise FormulaError(f"the response '{lhs}' cannot hold a random-effects bar")
    tree = parse(rhs)
    if tree[0] == "bin" and tree[1] in ("|", "||"):
        raise FormulaError(f"random-effects term '{rhs}' must be in parentheses, as in '(1 | g)'")
    bars: list = []
    fixed_tree = _split_bars(tree, bars)
    if fixed_tree is None:
        fixed_tree = ("num", 1.0, "1")
    random: list[RandomTerm] = []
    for bar in bars:
        random.extend(_parse_bar(bar, formula.strip()))
    fixed = deparse(fixed_tree)
    expand_terms(fixed, fixed_tree)  # vet the fixed part now, before any data is read
    for t in random:
        expand_terms(t.expr)
    return ModelSpec(formula=formula.strip(), response=deparse(ytree), fixed=fixed,
                     random=tuple(random), response_tree=ytree, fixed_tree=fixed_tree)
