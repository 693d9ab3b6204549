"""The classic mixed-model data sets the examples, tests, figures and walk-through use.

``load(name)`` returns one as a :class:`pandas.DataFrame`; ``list()`` names them with a one-line
description, the source and the licence.  The files ship inside the package
(``workbench/datasets/data``, described in ``workbench/datasets/README.md``), so a plain clone or an
installed wheel has them; nothing is downloaded.

R factors are pandas Categoricals with R's level order (ordered factors are ordered
Categoricals), so treatment contrasts and level labels come out as lme4's; numeric columns have
R's types (double -> float64, integer -> int64).  Names are looked up case-insensitively, ignoring ``_``, ``-`` and
spaces (``"eight schools"``, ``"Eight_Schools"`` and ``"eightschools"`` are one name).

Examples
--------
>>> from workbench import datasets
>>> sleep = datasets.load("sleepstudy")
>>> sleep.shape
(180, 3)
>>> list(sleep["Subject"].cat.categories[:3])
['308', '309', '310']
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError

__all__ = ["load", "list", "names", "info", "Dataset", "load_or_read", "DATA_DIR"]

#: Folder of the data files inside the installed package.
DATA_DIR = Path(__file__).resolve().parent / "data"

_LME4 = ("R package lme4 (Bates, Maechler, Bolker & Walker), data set {r}; "
         "CSV written by tests/reference/lme4/make_reference.R")
_LME4_LICENCE = ("GPL (>= 2), lme4's licence, under which lme4 distributes it; the data are "
                 "from the cited publication, which states no licence of its own")


@dataclass(frozen=True)
class Dataset:
    """One built-in data set: its file and what is known about where it comes from.

    Attributes
    ----------
    name : str
        The canonical name (lme4's spelling for lme4's data sets).
    file : str
        File name in :data:`DATA_DIR` (CSV, possibly gzip-compressed).
    description : str
        One line: what the rows are and the model it is classically used for.
    source : str
        Where the data come from (publication and the package that distributes it).
    licence : str
        The licence the copy here is distributed under, as far as it is known.
    factors : dict
        Column -> R's factor levels in order (a list), or ``"numeric"`` for levels sorted by
        their numeric value (R's ``factor()`` of integer codes).
    ordered : tuple of str
        Factor columns that are ordered factors in R.
    doubles : tuple of str
        Columns R stores as double although every value is a whole number (read as float64).
    """

    name: str
    file: str
    description: str
    source: str
    licence: str
    factors: dict = field(default_factory=dict)
    ordered: tuple = ()
    doubles: tuple = ()

    @property
    def path(self) -> Path:
        """The data file."""
        return DATA_DIR / self.file


_INSTEVAL_DEPT = ["15", "5", "10", "12", "6", "7", "4", "8", "9", "14", "1", "3", "11", "2"]

_CATALOG = [
    Dataset(
        "sleepstudy", "sleepstudy.csv",
        "Reaction time (ms) of 18 subjects over 10 days of sleep deprivation; "
        "Reaction ~ Days + (Days | Subject).",
        "Belenky et al. (2003), J. Sleep Res. 12, 1-12 (days 0-9 of the 3-hours-in-bed "
        "group); " + _LME4.format(r="sleepstudy"),
        _LME4_LICENCE, factors={"Subject": "numeric"}, doubles=("Days",)),
    Dataset(
        "Dyestuff", "dyestuff.csv",
        "Yield of dyestuff (g) from 5 samples of each of 6 batches; Yield ~ 1 + (1 | Batch).",
        "Davies & Goldsmith (1972), Statistical Methods in Research and Production, 4th ed., "
        "section 6.4; Box & Tiao (1973), section 5.1.2; " + _LME4.format(r="Dyestuff"),
        _LME4_LICENCE, factors={"Batch": list("ABCDEF")}, doubles=("Yield",)),
    Dataset(
        "Dyestuff2", "dyestuff2.csv",
        "Generated data shaped like Dyestuff whose REML batch variance is 0 (a singular fit); "
        "Yield ~ 1 + (1 | Batch).",
        "Box & Tiao (1973), Bayesian Inference in Statistical Analysis, section 5.1.2; "
        + _LME4.format(r="Dyestuff2"),
        _LME4_LICENCE, factors={"Batch": list("ABCDEF")}),
    Dataset(
        "Penicillin", "penicillin.csv",
        "Inhibition-zone diameter (mm) for 6 penicillin samples on each of 24 plates (fully "
        "crossed); diameter ~ 1 + (1 | plate) + (1 | sample).",
        "Davies & Goldsmith (1972), Statistical Methods in Research and Production, section 6.6; " + _LME4.format(r="Penicillin"),
        _LME4_LICENCE,
        factors={"plate": list("abcdefghijklmnopqrstuvwx"), "sample": list("ABCDEF")},
        doubles=("diameter",)),
    Dataset(
        "Pastes", "pastes.csv",
        "Paste strength, 2 assays of each of 3 casks from each of 10 batches (nested); "
        "strength ~ 1 + (1 | batch/cask).",
        "Davies & Goldsmith (1972), Statistical Methods in Research and Production, section 6.5; " + _LME4.format(r="Pastes"),
        _LME4_LICENCE,
        factors={"batch": list("ABCDEFGHIJ"), "cask": list("abc"),
                 "sample": [f"{b}:{c}" for b in "ABCDEFGHIJ" for c in "abc"]}),
    Dataset(
        "InstEval", "insteval.csv.gz",
        "73,421 ETH Zurich lecture ratings y (1-5) by 2,972 students s of 1,128 lecturers d "
        "(crossed); y ~ service + (1 | s) + (1 | d) + (1 | dept:service).",
        "University lecture evaluations by students at ETH Zurich, anonymised and slightly "
        "simplified (lme4's help page; no publication cited); "
        + _LME4.format(r="InstEval"),
        _LME4_LICENCE,
        factors={"s": "numeric", "d": "numeric", "studage": ["2", "4", "6", "8"],
                 "lectage": ["1", "2", "3", "4", "5", "6"], "service": ["0", "1"],
                 "dept": _INSTEVAL_DEPT},
        ordered=("studage", "lectage")),
    Dataset(
        "radon", "radon_mn.csv",
        "Log radon in 919 Minnesota houses in 85 counties (county 1-85, floor 0 = basement, "
        "county log uranium); log_radon ~ floor + log_uppm + (1 | county).",
        "Gelman & Hill (2007), Data Analysis Using Regression and Multilevel/Hierarchical "
        "Models, chapter 12 (data of the US EPA's national residential radon survey, via the "
        "book's web site)",
        "no licence stated by the authors; survey data of a US federal agency, redistributed "
        "for teaching (as by the book, rstanarm and PyMC's examples)"),
    Dataset(
        "eight_schools", "eight_schools.csv",
        "Estimated SAT-coaching effect y and its standard error sigma in 8 schools; "
        "y ~ 1 + (1 | school) with known sd sigma.",
        "Rubin (1981), J. Educ. Stat. 6, 377-401; Gelman et al., Bayesian Data Analysis, "
        "section 5.5 (16 published numbers)",
        "no licence stated; published summary statistics"),
]


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


_BY_KEY = {_key(d.name): d for d in _CATALOG}
_BY_KEY[_key("radon_mn")] = _BY_KEY["radon"]


def names() -> builtins.list[str]:
    """The canonical names of the built-in data sets, in catalogue order."""
    return [d.name for d in _CATALOG]


def info(name: str) -> Dataset:
    """The catalogue entry of a data set (case-insensitive name).

    Raises
    ------
    DataError
        ``name`` is not a built-in data set; the message lists the ones there are.
    """
    entry = _BY_KEY.get(_key(str(name)))
    if entry is None:
        raise DataError(f"no built-in data set '{name}'; available: {', '.join(names())}")
    return entry


def load(name: str) -> pd.DataFrame:
    """A built-in data set as a DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`names` (case-insensitive; ``_``, ``-`` and spaces are ignored).

    Returns
    -------
    DataFrame
        A fresh copy (changing it changes nothing for the next call).  R factors are
        Categoricals with R's level order, R's doubles float64 and its integers int64.

    Raises
    ------
    DataError
        ``name`` is not a built-in data set; the message lists the available names.
    """
    entry = info(name)
    frame = pd.read_csv(entry.path, dtype={c: str for c in entry.factors}
                        | {c: "float64" for c in entry.doubles})
    for col, levels in entry.factors.items():
        if levels == "numeric":
            levels = sorted(frame[col].unique(), key=int)
        frame[col] = pd.Categorical(frame[col], categories=levels, ordered=col in entry.ordered)
    return frame


def list() -> pd.DataFrame:  # noqa: A001 - the name the issue asks for, as in seaborn/statsmodels
    """The built-in data sets: name, rows, description, source and licence.

    Returns
    -------
    DataFrame
        One row per data set, indexed by its canonical name.
    """
    rows = [{"name": d.name, "rows": _count_rows(d), "description": d.description,
             "source": d.source, "licence": d.licence} for d in _CATALOG]
    return pd.DataFrame(rows).set_index("name")


def _count_rows(entry: Dataset) -> int:
    import gzip

    opener = gzip.open if entry.file.endswith(".gz") else open
    with opener(entry.path, "rt") as fh:
        return sum(1 for _ in fh) - 1


def load_or_read(source: str) -> pd.DataFrame:
    """The CLI's ``--data``: a data file if ``source`` is an existing path, else a built-in name.

    An existing file always wins, so a file named ``sleepstudy`` in the working directory is
    read rather than the built-in data set.

    Raises
    ------
    DataError
        ``source`` is neither an existing file nor a built-in name (the message says both);
        or the file cannot be read (see :func:`workbench.io.read_data`).
    """
    from ..io import read_data

    if Path(source).exists():
        return read_data(source)
    if _key(str(source)) in _BY_KEY:
        return load(source)
    raise DataError(f"data file '{source}' does not exist and is not a built-in data set "
                    f"(built-in: {', '.join(names())})")
