"""workbench.datasets: every built-in data set loads with R's types, and lookups fail plainly."""

import pandas as pd
import pytest

from tests.helpers import lme4_reference, reference_data
from workbench import datasets
from workbench.errors import DataError

SHAPES = {"sleepstudy": (180, 3), "Dyestuff": (30, 2), "Dyestuff2": (30, 2), "Penicillin": (144, 3),
          "Pastes": (60, 4), "InstEval": (73421, 7), "radon": (919, 4), "eight_schools": (8, 3)}


def test_names_are_the_catalogue():
    assert datasets.names() == list(SHAPES)


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_data_set_loads(name):
    frame = datasets.load(name)
    assert frame.shape == SHAPES[name]
    assert not frame.isna().any().any()
    assert datasets.info(name).path.is_file()


def test_lme4_reference_data_sets_have_lme4s_row_counts():
    for model, entry in lme4_reference().items():
        assert len(reference_data(entry)) == entry["nobs"], model


def test_r_factors_are_categoricals_in_rs_level_order():
    sleep = datasets.load("sleepstudy")
    assert isinstance(sleep["Subject"].dtype, pd.CategoricalDtype)
    assert list(sleep["Subject"].cat.categories[:4]) == ["308", "309", "310", "330"]
    assert sleep["Reaction"].dtype == float and sleep["Days"].dtype == float  # R: num
    pastes = datasets.load("Pastes")
    assert list(pastes["sample"].cat.categories[:4]) == ["A:a", "A:b", "A:c", "B:a"]
    ie = datasets.load("InstEval")
    # R's levels: s and d in numeric order (not "1", "10", "100", ...), dept as lme4 stores it
    assert list(ie["s"].cat.categories[:3]) == ["1", "2", "3"]
    assert list(ie["d"].cat.categories[:4]) == ["1", "6", "7", "8"]
    assert list(ie["dept"].cat.categories[:3]) == ["15", "5", "10"]
    assert ie["studage"].cat.ordered and not ie["service"].cat.ordered
    # lme4's integer codes of the first rows (str(InstEval) in R: d 525 560 832, dept 14 5 14 12)
    assert list(ie["d"].cat.codes[:3] + 1) == [525, 560, 832]
    assert list(ie["dept"].cat.codes[:4] + 1) == [14, 5, 14, 12]
    assert ie["y"].dtype.kind == "i"


def test_non_factor_columns_keep_their_numeric_types():
    radon = datasets.load("radon")
    assert radon["county"].dtype.kind == "i" and radon["county"].nunique() == 85
    assert radon["floor"].isin([0, 1]).all()
    schools = datasets.load("eight_schools")
    assert schools["y"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert schools["sigma"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


@pytest.mark.parametrize("spelling", ["sleepstudy", "SleepStudy", "SLEEPSTUDY"])
def test_names_are_case_insensitive(spelling):
    assert datasets.load(spelling).shape == (180, 3)


def test_eight_schools_spellings():
    for spelling in ("eight_schools", "Eight Schools", "eight-schools", "eightschools"):
        assert datasets.info(spelling).name == "eight_schools"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(DataError, match="no built-in data set 'sleep'") as info:
        datasets.load("sleep")
    for name in SHAPES:
        assert name in str(info.value)


def test_load_returns_a_fresh_copy():
    a = datasets.load("Dyestuff")
    a.loc[0, "Yield"] = -1
    assert datasets.load("Dyestuff").loc[0, "Yield"] == 1545


def test_list_gives_description_source_and_licence():
    table = datasets.list()
    assert list(table.index) == list(SHAPES)
    assert list(table.columns) == ["rows", "description", "source", "licence"]
    assert table["rows"].to_dict() == {k: v[0] for k, v in SHAPES.items()}
    assert table[["description", "source", "licence"]].map(len).min().min() > 10
    assert table.loc["sleepstudy", "licence"].startswith("GPL (>= 2)")
    assert "Gelman & Hill" in table.loc["radon", "source"]


def test_every_file_in_the_data_folder_is_catalogued():
    """So the package data and the catalogue cannot drift apart."""
    files = {p.name for p in datasets.DATA_DIR.iterdir()}
    assert files == {datasets.info(n).file for n in datasets.names()}
    assert (datasets.DATA_DIR.parent / "README.md").is_file()


def test_load_or_read_prefers_an_existing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"y": [1.0, 2.0], "g": ["a", "b"]}).to_csv(tmp_path / "sleepstudy", index=False)
    assert datasets.load_or_read("sleepstudy").shape == (2, 2)  # the file, not the built-in
    assert datasets.load_or_read("Dyestuff").shape == (30, 2)
    with pytest.raises(DataError, match="does not exist and is not a built-in data set") as info:
        datasets.load_or_read("nope.csv")
    assert "nope.csv" in str(info.value) and "sleepstudy" in str(info.value)
