"""lme4 formula syntax -> ModelSpec -> Design."""

import numpy as np
import pandas as pd
import pytest

from workbench.design import build_design
from workbench.errors import DataError, FormulaError
from workbench.formula import RandomTerm, parse_formula


@pytest.mark.parametrize(
    "formula,fixed,terms",
    [
        ("y ~ 1 + x + (1 + x | g)", "1 + x", [("1 + x", ("g",))]),
        ("y ~ x + (0 + x | g)", "x", [("0 + x", ("g",))]),
        ("y ~ (1 | g) + (0 + x | g)", "1", [("1", ("g",)), ("0 + x", ("g",))]),
        ("y ~ 1 + (1 | g) + (1 | h)", "1", [("1", ("g",)), ("1", ("h",))]),
        ("y ~ 1 + (1 | g:h)", "1", [("1", ("g", "h"))]),
        ("y ~ 1 + (1 | g/h)", "1", [("1", ("g",)), ("1", ("h", "g"))]),  # lme4: h:g
        ("y ~ x + (1 + x || g)", "x", [("1", ("g",)), ("0 + x", ("g",))]),
        ("y ~ x*z + (x || g/h)", "x * z",
         [("1", ("g",)), ("0 + x", ("g",)), ("1", ("h", "g")), ("0 + x", ("h", "g"))]),
    ],
)
def test_parse(formula, fixed, terms):
    spec = parse_formula(formula)
    assert spec.response == "y"
    assert spec.fixed == fixed
    assert spec.random == tuple(RandomTerm(e, f) for e, f in terms)


@pytest.mark.parametrize(
    "formula,match",
    [
        ("y 1 + x", "exactly one '~'"),
        ("~ x + (1 | g)", "no response"),
        ("y ~ x + (1 | g", "unbalanced"),
        ("y ~ x + 1 | g", "in parentheses"),
        ("y ~ x + ( | g)", "nothing before the bar"),
        ("y ~ x + (1 | )", "no grouping factor"),
        ("y ~ x + + (1 | g)", "empty term"),
        ("y ~ x + (1 | g + h)", "not a column name"),
        ("y ~ x $ z + (1 | g)", "cannot parse"),
    ],
)
def test_malformed_formulas_name_the_problem(formula, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(formula)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "z": rng.normal(size=n),
                         "g": np.repeat([3, 1, 2], n // 3), "h": np.tile(["a", "b"], n // 2),
                         "f": np.tile(["lo", "mid", "hi"], n // 3)})


def test_lme4_names_and_categorical_groups():
    d = build_design("y ~ 1 + x*z + f + (1 + x | g)", _data())
    # R orders terms by degree: main effects first, then x:z
    assert d.fixed_names == ("(Intercept)", "x", "z", "flo", "fmid", "x:z")
    (t,) = d.terms
    assert t.group == "g" and t.columns == ("(Intercept)", "x")
    assert t.levels == ("1", "2", "3")  # a numeric grouping column is categorical, sorted
    assert t.Z.shape == (24, 2)
    np.testing.assert_array_equal(t.Z[:, 1], d.data["x"].to_numpy())


def test_interaction_group_levels_are_combinations_present():
    d = build_design("y ~ 1 + (1 | g:h)", _data())
    assert d.terms[0].levels == ("1:a", "1:b", "2:a", "2:b", "3:a", "3:b")


def test_missing_values_are_dropped_and_counted():
    data = _data()
    data.loc[[0, 5], "x"] = np.nan
    data.loc[7, "unused"] = 1.0  # a column the model does not read does not count
    with pytest.warns(UserWarning, match="2 rows with missing values dropped"):
        d = build_design("y ~ x + (1 | g)", data)
    assert d.n == 22 and d.n_dropped == 2


def test_r_style_transformations():
    data = _data().assign(w=lambda d: np.exp(d["x"]))
    d = build_design("y ~ log(w) + (1 | g)", data)
    assert d.fixed_names == ("(Intercept)", "log(w)")
    np.testing.assert_allclose(d.X[:, 1], data["x"])


@pytest.mark.parametrize(
    "formula,mutate,match",
    [
        ("y ~ x + (1 | nothere)", None, "not found"),
        ("y ~ nothere + (1 | g)", None, "nothere"),
        ("f ~ x + (1 | g)", None, "not numeric"),
        ("y ~ x + (1 | g)", lambda d: d.iloc[:0], "no rows"),
        ("y ~ x + (1 | g)", lambda d: d.assign(g=1), "only 1 level"),
        ("y ~ x + (1 + x + z | g)", lambda d: d.iloc[:8].assign(g=[0, 0, 1, 1, 2, 2, 3, 3]),
         "random effects for 8 observations"),
    ],
)
def test_bad_data(formula, mutate, match):
    data = _data()
    if mutate:
        data = mutate(data)
    with pytest.raises((DataError, FormulaError), match=match):
        build_design(formula, data)


def test_group_labels_as_lme4_prints_them():
    """lme4 1.1-31 names a single non-syntactic grouping column as it is (``patiënt id``) and an
    interaction as R deparses it (``a:`patiënt id```): checked with R on sleepstudy."""
    from workbench import datasets

    d = datasets.load("sleepstudy").rename(columns={"Subject": "patiënt id"})
    d["a"] = np.tile(["1", "2"], len(d) // 2)
    one = build_design(parse_formula("Reaction ~ Days + (1 | `patiënt id`)"), d)
    both = build_design(parse_formula("Reaction ~ Days + (1 | a:`patiënt id`)"), d)
    assert one.terms[0].group == "patiënt id"
    assert both.terms[0].group == "a:`patiënt id`"


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_text_factor_levels_sort_as_r_with_missing_values_left_out(dtype):
    from workbench.modelmatrix import factor_of

    col = pd.Series(["b", "B", None, "a", "_x", "A", "b", None], dtype=dtype)
    f = factor_of(col)
    # R (UTF-8 locale): sort(c("b", "B", "a", "_x", "A")) is "_x" "a" "A" "b" "B"
    assert f.levels == ("_x", "a", "A", "b", "B")
    np.testing.assert_array_equal(f.codes, [3, 4, -1, 1, 0, 2, 3, -1])


def test_text_factor_of_mixed_objects_uses_their_text():
    from workbench.modelmatrix import factor_of

    f = factor_of(pd.Series([1, "1", 2.5, None, "a"], dtype=object))
    assert f.levels == ("1", "2.5", "a")  # as.character: 1 and "1" are one level
    np.testing.assert_array_equal(f.codes, [0, 0, 1, -1, 2])


def test_interaction_group_levels_skip_absent_combinations_and_missing_rows():
    data = _data()
    data = data[~((data["g"] == 2) & (data["h"] == "a"))].reset_index(drop=True)
    data.loc[0, "h"] = None  # row dropped: its combination counts only if another row has it
    with pytest.warns(UserWarning, match="1 row with missing values dropped"):
        d = build_design("y ~ 1 + (1 | g:h)", data)
    assert d.terms[0].levels == ("1:a", "1:b", "2:b", "3:a", "3:b")
    labels = np.array(d.terms[0].levels)[d.terms[0].codes]
    expect = data["g"].astype(str) + ":" + data["h"]
    np.testing.assert_array_equal(labels, expect.iloc[1:].to_numpy())


@pytest.mark.parametrize("values", [
    np.repeat(np.arange(40), 3),                              # sorted integers: coded from runs
    np.random.default_rng(2).permutation(np.arange(-5, 6)),   # a whole range, unsorted
    np.random.default_rng(0).integers(-20, 20, 200),          # unsorted integers: hashed
    np.repeat([-3, 0, 7, 1000], 5).astype(np.uint16),          # unsigned
    np.sort(np.random.default_rng(1).normal(size=30)),        # sorted floats
    np.array([2.5, np.nan, 1.0, 2.5, -0.0, 0.0, 1e20]),       # missing, signed zero, large
    np.array([1.0, 1.0, 2.0, np.nan]),                        # sorted but for a NaN
])
def test_numeric_grouping_columns_are_coded_as_their_sorted_distinct_values(values):
    """However a numeric grouping column is coded (runs of sorted data, hashing, or a sort),
    its levels are the sorted distinct values as R prints them and each row's code points at
    its value."""
    from workbench.modelmatrix import factor_of

    f = factor_of(pd.Series(values))
    x = np.asarray(values, dtype=float)
    ok = ~np.isnan(x)
    uniq = np.unique(x[ok])
    assert len(f.levels) == uniq.size
    np.testing.assert_array_equal(f.codes[~ok], -1)
    np.testing.assert_array_equal(uniq[f.codes[ok]], x[ok])
    np.testing.assert_allclose([float(v) for v in f.levels], uniq, rtol=1e-14)


def test_a_design_does_not_share_memory_with_the_data():
    """The design's arrays are its own: changing the data frame afterwards changes no fit."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40),
                       "w": rng.uniform(1, 2, 40), "g": np.repeat(np.arange(8), 5)})
    d = build_design("y ~ x + (x | g)", df, weights="w", offset="x")
    before = [a.copy() for a in (d.y, d.X, d.weights, d.offset, d.terms[0].Z, d.terms[0].codes)]
    df.loc[:, ["y", "x", "w", "g"]] = 0
    for a, b in zip((d.y, d.X, d.weights, d.offset, d.terms[0].Z, d.terms[0].codes), before):
        np.testing.assert_array_equal(a, b)


def test_unused_categories_of_a_grouping_factor_are_dropped_as_lme4_drops_them():
    """With no row dropped, a categorical's unused categories are still not levels (lme4's
    drop.unused.levels), while levels found from the values are kept as they are."""
    rng = np.random.default_rng(4)
    g = pd.Categorical(np.repeat(["b", "d", "a"], 4), categories=["a", "b", "c", "d", "e"])
    df = pd.DataFrame({"y": rng.normal(size=12), "g": g, "h": np.repeat([5, 2, 9], 4)})
    assert build_design("y ~ 1 + (1 | g)", df).terms[0].levels == ("a", "b", "d")
    t = build_design("y ~ 1 + (1 | h)", df).terms[0]
    assert t.levels == ("2", "5", "9")
    np.testing.assert_array_equal(t.codes, np.repeat([1, 0, 2], 4))
