"""R's model-formula language: parse, expand into terms, and deparse labels as R does.

A right-hand side such as ``x * f + I(age^2) - 1`` is tokenised and parsed with R's operator
precedence (``^`` > unary ``-`` > ``:`` > ``%in%`` > ``* /`` > ``+ -``) into a small tree, then
expanded as ``terms.formula`` does (R's ``model.c``):

* ``a + b`` joins the term lists; ``a - b`` deletes b's terms (``- 1`` the intercept);
* ``a:b`` is every pairwise union of a term of a with a term of b;
* ``a * b = a + b + a:b``; ``(a + b)^k`` crosses a sum with itself k times;
* ``a %in% b`` joins each term of a with all variables of b; ``a / b = a + b %in% a``;
* ``0`` and ``- 1`` drop the intercept, ``1`` keeps it; anything else is a *variable*.

Variables are numbered in order of first appearance, a term is the set of its variables, the
variables inside a term are ordered by that number and terms are sorted by their degree
(stable): so ``y ~ cses*sector`` gives ``cses:sector`` whatever the order in the data, as lme4.
Labels are R's ``deparse``: ``I(x^2)``, ``log(TICKS + 1)``, ``poly(age, 4)``, backticks around a
name that is not syntactic (``\\`a b\\```).
"""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass

from .errors import FormulaError

# ------------------------------------------------------------------------------ tree nodes
# ("name", str) | ("num", float, text) | ("str", str) | ("call", fname, args, kwargs)
# | ("bin", op, left, right) | ("neg", x) | ("pos", x) | ("paren", x)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
    | (?P<name>(?:[^\W\d]|\.(?!\d))[\w.]*)
    | (?P<bq>`[^`]*`)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<op>%[^%]*%|\|\||\|=|==|!=|<=|>=|[-+*/^:(),~|<>=!])
    )""",
    re.VERBOSE,
)

_SYNTACTIC = re.compile(r"(?:[^\W\d_]|\.(?![\d]))[\w.]*\Z|\.\Z")
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
             "FALSE", "NULL", "Inf", "NaN", "NA", "in"}
_CONSTANT_WORDS = {"TRUE", "FALSE", "NULL", "Inf", "NaN", "NA"}


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split a formula into (kind, text) tokens; an unreadable character is a FormulaError."""
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            rest = text[pos:].strip()
            raise FormulaError(f"cannot parse '{rest[:20]}' in '{text.strip()}': "
                              f"'{rest[0]}' is not part of R's formula language")
        kind = m.lastgroup
        tok = m.group(kind)
        if kind == "bq":
            kind, tok = "name", tok[1:-1]
        out.append((kind, tok))
        pos = m.end()
    return out


_BINARY = {  # precedence, right-associative
    "~": (1, False), "|": (2, False), "||": (2, False),
    "==": (4, False), "!=": (4, False), "<": (4, False), ">": (4, False), "<=": (4, False),
    ">=": (4, False),
    "+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%": (7, False),
    ":": (8, False), "^": (10, True),
}
_UNARY_PREC = 9


class _Parser:
    def __init__(self, text: str):
        self.text = text.strip()
        self.toks = tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self):
        if not self.toks:
            raise FormulaError("the formula is empty")
        node = self.expr(0)
        if self.i < len(self.toks):
            raise FormulaError(f"cannot read '{self.toks[self.i][1]}' in '{self.text}'")
        return node

    def expr(self, minprec: int):
        left = self.atom()
        while True:
            kind, tok = self.peek()
            if kind != "op":
                if kind is not None:
                    raise FormulaError(f"cannot read '{tok}' in '{self.text}' (a missing operator?)")
                return left
            key = "%" if tok.startswith("%") else tok
            if key not in _BINARY:
                return left
            prec, right_assoc = _BINARY[key]
            if prec < minprec:
                return left
            self.take()
            right = self.expr(prec if right_assoc else prec + 1)
            left = ("bin", tok, left, right)

    def atom(self):
        kind, tok = self.take()
        if kind is None:
            raise FormulaError(f"'{self.text}' ends where a term is expected")
        if kind == "num":
            return ("num", float(tok.rstrip("L")), tok)
        if kind == "str":
            return ("str", tok[1:-1])
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take()
                return self.call(tok)
            return ("name", tok)
        if tok == "(":
            inner = self.expr(0)
            if self.take() != ("op", ")"):
                raise FormulaError(f"unbalanced parentheses in '{self.text}'")
            return ("paren", inner)
        if tok in ("-", "+"):
            return ("neg" if tok == "-" else "pos", self.expr(_UNARY_PREC))
        raise FormulaError(f"cannot read '{tok}' in '{self.text}'")

    def call(self, fname: str):
        args, kwargs = [], {}
        if self.peek() == ("op", ")"):
            self.take()
            return ("call", fname, tuple(args), tuple(kwargs.items()))
        while True:
            kind, tok = self.peek()
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else (None, None)
            if kind == "name" and nxt == ("op", "="):
                self.i += 2
                kwargs[tok] = self.expr(3)
            else:
                args.append(self.expr(3))
            kind, tok = self.take()
            if tok == ")":
                return ("call", fname, tuple(args), tuple(kwargs.items()))
            if tok != ",":
                raise FormulaError(f"unbalanced parentheses in '{self.text}'")


@functools.lru_cache(maxsize=1024)
def parse(text: str):
    """Parse an R expression or formula into a tree (nested tuples; cached: a fit parses
    the same few expressions several times)."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------------ deparse
def _fmt_num(node) -> str:
    v = node[1]
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    s = f"{v:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        sign = "-" if exp.startswith("-") else ""
        s = f"{mant}e{sign}{int(exp.lstrip('+-')):02d}"
    return s


def quote_name(name: str) -> str:
    """R's deparse of a symbol: backticks around a name that is not syntactic."""
    if (_SYNTACTIC.match(name) and name not in _RESERVED) or name in _CONSTANT_WORDS:
        return name
    return f"`{name}`"


def deparse(node) -> str:
    """R's ``deparse`` of a tree: ``I(x^2)``, ``log(TICKS + 1)``, ``a:b``, ``a %in% b``."""
    kind = node[0]
    if kind == "name":
        return quote_name(node[1])
    if kind == "num":
        return _fmt_num(node)
    if kind == "str":
        return f'"{node[1]}"'
    if kind == "call":
        parts = [deparse(a) for a in node[2]] + [f"{k} = {deparse(v)}" for k, v in node[3]]
        return f"{quote_name(node[1])}({', '.join(parts)})"
    if kind == "neg":
        return f"-{deparse(node[1])}"
    if kind == "pos":
        return f"+{deparse(node[1])}"
    if kind == "paren":
        return f"({deparse(node[1])})"
    op = node[1]
    tight = op in ("^", ":", "/")
    sep = op if tight else f" {op} "
    return f"{deparse(node[2])}{sep}{deparse(node[3])}"


def names_in(node) -> list[str]:
    """Symbols a tree reads (not function names), in order of appearance."""
    kind = node[0]
    if kind == "name":
        return [node[1]]
    if kind == "call":
        out = []
        for a in node[2][:1] if node[1] == "C" else node[2]:  # C(f, sum): 'sum' is no column
            out += names_in(a)
        for _, v in node[3]:
            out += names_in(v)
        return out
    if kind in ("neg", "pos", "paren"):
        return names_in(node[1])
    if kind == "bin":
        return names_in(node[2]) + names_in(node[3])
    return []


# ------------------------------------------------------------------------------ terms
@dataclass(frozen=True)
class Terms:
    """An expanded right-hand side.

    Attributes
    ----------
    intercept : bool
    variables : tuple
        Variable trees in order of first appearance (their labels are ``deparse``).
    terms : tuple of tuple of int
        Each term as the sorted indices of its variables, terms sorted by degree (stable).
    offsets : tuple
        Trees inside ``offset(...)``.
    """

    intercept: bool
    variables: tuple
    terms: tuple[tuple[int, ...], ...]
    offsets: tuple = ()

    @property
    def labels(self) -> list[str]:
        """Term labels as R's ``attr(terms, "term.labels")``."""
        return [":".join(deparse(self.variables[i]) for i in t) for t in self.terms]


class _Expander:
    def __init__(self, text: str):
        self.text = text
        self.variables: list = []
        self.keys: dict[str, int] = {}
        self.offsets: list = []

    def var(self, node) -> int:
        key = deparse(node)
        if key not in self.keys:
            self.keys[key] = len(self.variables)
            self.variables.append(node)
        return self.keys[key]

    # a term list is (intercept: bool | None, [frozenset, ...]); None = not said
    def expand(self, node):
        kind = node[0]
        if kind == "num":
            if node[1] == 1:
                return True, []
            if node[1] == 0:
                return False, []
            raise FormulaError(f"'{node[2]}' in '{self.text}' is not a term (only 0 and 1 are)")
        if kind == "paren":
            return self.expand(node[1])
        if kind == "neg":
            inner = node[1]
            if inner[0] == "num" and inner[1] in (0, 1):
                return (inner[1] == 0), []
            raise FormulaError(f"cannot read '-{deparse(inner)}' in '{self.text}': "
                               "a term can only be removed from another ('a - b')")
        if kind == "pos":
            return self.expand(node[1])
        if kind == "call" and node[1] == "offset":
            if len(node[2]) != 1 or node[3]:
                raise FormulaError(f"'{deparse(node)}' must have exactly one argument")
            self.offsets.append(node[2][0])
            return None, []
        if kind == "bin":
            op = node[1]
            if op in ("|", "||"):
                raise FormulaError(f"random-effects term '{deparse(node)}' must be in "
                                   "parentheses, as in '(1 | g)'")
            if op == "+":
                i1, t1 = self.expand(node[2])
                i2, t2 = self.expand(node[3])
                return (i2 if i2 is not None else i1), _unique(t1 + t2)
            if op == "-":
                i1, t1 = self.expand(node[2])
                i2, t2 = self.expand(node[3])
                inter = i1
                if i2 is True:
                    inter = False
                elif i2 is False:  # '- 0' puts the intercept back, as R
                    inter = True
                return inter, [t for t in t1 if t not in t2]
            if op == ":":
                _, t1 = self.expand(node[2])
                _, t2 = self.expand(node[3])
                return None, _unique([a | b for a in t1 for b in t2])
            if op == "*":
                i1, t1 = self.expand(node[2])
                i2, t2 = self.expand(node[3])
                return (i2 if i2 is not None else i1), _unique(t1 + t2 + [a | b for a in t1 for b in t2])
            if op == "%in%":
                _, t1 = self.expand(node[2])
                _, t2 = self.expand(node[3])
                allr = frozenset().union(*t2) if t2 else frozenset()
                return None, _unique([a | allr for a in t1])
            if op == "/":
                i1, t1 = self.expand(node[2])
                _, t2 = self.expand(node[3])
                alll = frozenset().union(*t1) if t1 else frozenset()
                return i1, _unique(t1 + [b | alll for b in t2])
            if op == "^":
                power = node[3]
                if power[0] != "num" or power[1] != int(power[1]) or power[1] < 1:
                    raise FormulaError(f"the power in '{deparse(node)}' must be a positive "
                                       "whole number")
                i1, t1 = self.expand(node[2])
                out = list(t1)
                for _ in range(int(power[1]) - 1):
                    out = _unique(out + t1 + [a | b for a in out for b in t1])
                return i1, out
            if op == "~":
                raise FormulaError(f"formula '{self.text}' must contain exactly one '~'")
            raise FormulaError(f"cannot read '{deparse(node)}' in '{self.text}': "
                               f"'{op}' is not a formula operator (wrap arithmetic in I(...))")
        if kind == "str":
            raise FormulaError(f"cannot read '\"{node[1]}\"' in '{self.text}'")
        if kind == "name" and node[1] == ".":
            raise FormulaError(f"'.' (all other columns) in '{self.text}' is not supported; "
                               "name the columns")
        return None, [frozenset([self.var(node)])]


def _unique(terms):
    return list(dict.fromkeys(terms))


def expand_terms(text: str, node=None, leading=()) -> Terms:
    """Expand a right-hand side into :class:`Terms` as R's ``terms.formula`` (see
    :func:`_expand_terms`; cached where the arguments are hashable)."""
    try:
        return _expand_cached(text, node, tuple(leading))
    except TypeError:  # an unhashable tree
        return _expand_terms(text, node, leading)


@functools.lru_cache(maxsize=1024)
def _expand_cached(text: str, node, leading: tuple) -> Terms:
    return _expand_terms(text, node, leading)


def _expand_terms(text: str, node=None, leading=()) -> Terms:
    """Expand a right-hand side into :class:`Terms` as R's ``terms.formula``.

    Parameters
    ----------
    text : str
        The right-hand side (used to parse when ``node`` is None, and in messages).
    node : tree, optional
    leading : sequence of trees
        Variables numbered before the right-hand side's own (R counts the response first).
    """
    if node is None:
        node = parse(text)
    ex = _Expander(text)
    for v in leading:
        ex.var(v)
    inter, terms = ex.expand(node)
    terms = [t for t in terms if t]
    order = sorted(range(len(terms)), key=lambda k: len(terms[k]))
    terms = [tuple(sorted(terms[k])) for k in order]
    return Terms(intercept=(inter is not False), variables=tuple(ex.variables),
                 terms=tuple(terms), offsets=tuple(ex.offsets))


__all__ = ["parse", "deparse", "tokenize", "expand_terms", "Terms", "names_in", "quote_name"]
