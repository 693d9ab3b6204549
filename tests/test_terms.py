"""R's formula language: term expansion against R's ``terms()``, labels, bad formulas."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.contrasts import contrast_matrix, orthopoly
from workbench.design import build_design
from workbench.errors import DataError, FormulaError
from workbench.formula import parse_formula
from workbench.terms import deparse, expand_terms, parse

TERMS = json.loads((Path(__file__).parent / "reference" / "formula" / "terms.json").read_text())


@pytest.mark.parametrize("case", TERMS, ids=[c["rhs"] for c in TERMS])
def test_terms_as_r(case):
    """Term labels (order, variable order inside interactions) and intercept as R's terms()."""
    t = expand_terms(case["rhs"], leading=[("name", "y")])
    assert t.labels == case["labels"]
    assert t.intercept == case["intercept"]


@pytest.mark.parametrize("text,label", [
    ("I(age^2)", "I(age^2)"), ("log(TICKS+1)", "log(TICKS + 1)"), ("incidence/size", "incidence/size"),
    ("sin(2*pi*Time)", "sin(2 * pi * Time)"), ("poly(x,4)", "poly(x, 4)"), ("`a b`", "`a b`"),
    ("patiënt", "patiënt"), ("poly(x, 2, raw=TRUE)", "poly(x, 2, raw = TRUE)"), ("x - -1", "x - -1"),
])
def test_labels_are_r_deparse(text, label):
    assert deparse(parse(text)) == label


def test_r_contrast_matrices():
    """contr.sum(3), contr.helmert(4) and contr.poly(3) as R prints them."""
    np.testing.assert_array_equal(contrast_matrix("sum", 3)[0], [[1, 0], [0, 1], [-1, -1]])
    np.testing.assert_array_equal(contrast_matrix("contr.helmert", 4)[0],
                                  [[-1, -1, -1], [1, -1, -1], [0, 2, -1], [0, 0, 3]])
    C, names = contrast_matrix("poly", 3)
    np.testing.assert_allclose(C, [[-np.sqrt(0.5), np.sqrt(1 / 6)], [0, -np.sqrt(2 / 3)],
                                   [np.sqrt(0.5), np.sqrt(1 / 6)]], atol=1e-15)
    assert names == [".L", ".Q"]
    # R: poly(1:5, 2)[, 1] = (-2, -1, 0, 1, 2) / sqrt(10)
    np.testing.assert_allclose(orthopoly(np.arange(1.0, 6.0), 2)[:, 0],
                               np.arange(-2, 3) / np.sqrt(10), atol=1e-15)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=n) + 3, "x": rng.normal(size=n),
                         "g": np.repeat(["a", "b", "c"], n // 3), "a b": rng.normal(size=n),
                         "patiënt": np.tile(["p1", "p2", "p3", "p4"], n // 4)})


@pytest.mark.parametrize("formula,match", [
    ("y ~ x $ g + (1 | g)", r"cannot parse '\$ g"),
    ("y ~ x + foo(x) + (1 | g)", "unknown function 'foo'"),
    ("y ~ . + (1 | g)", r"'\.' \(all other columns\)"),
    ("y ~ x + \"x\" + (1 | g)", "cannot read '\"x\"'"),
    ("y ~ x + (1 | g) - (1 | g)", "cannot remove a random-effects term"),
    ("y ~ x + (1 | g) * x", "a bar must be in its own parentheses"),
    ("y ~ (x + g)^z + (1 | g)", "must be a positive whole number"),
    ("y ~ x + (1 | log(g))", "grouping factor 'log\\(g\\)'"),
    ("y ~ - x + (1 | g)", "cannot read '-x'"),
])
def test_formulas_lme4_rejects_name_the_part(formula, match):
    with pytest.raises(FormulaError, match=match):
        build_design(formula, _data())


def test_any_column_name_by_backticks():
    d = build_design("y ~ `a b` + (1 | patiënt)", _data())
    assert d.fixed_names == ("(Intercept)", "`a b`")
    assert d.terms[0].group == "patiënt"
    np.testing.assert_array_equal(d.X[:, 1], _data()["a b"])


def test_transformed_response_and_missing_after_transform():
    """log(y) of a non-positive y is NaN: the row is dropped as R's na.omit does."""
    data = _data()
    data.loc[0, "y"] = -1.0
    with pytest.warns(UserWarning, match="1 row with missing values dropped"):
        d = build_design("log(y) ~ x + (1 | g)", data)
    np.testing.assert_allclose(d.y, np.log(data["y"].iloc[1:]))


@pytest.mark.parametrize("weights,match", [
    ([0.0] + [1.0] * 23, "must be positive"),
    ([np.nan] + [1.0] * 23, "missing values"),
    ([-1.0] + [1.0] * 23, "must be positive"),
])
def test_bad_weights(weights, match):
    data = _data().assign(w=weights)
    with pytest.raises(DataError, match=match):
        build_design("y ~ x + (1 | g)", data, weights="w")


def test_nested_and_second_term_labels():
    spec = parse_formula("y ~ x + (1 | a/b) + (1 | g) + (0 + x | g)")
    assert [t.group for t in spec.random] == ["a", "b:a", "g", "g"]
