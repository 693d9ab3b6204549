"""Helpers the tests share: lme4's reference fits committed in ``tests/reference/lme4``.

The data sets come from :mod:`workbench.datasets` (they ship with the package), the reference
values from ``tests/reference/lme4/lme4_reference.json`` (made by ``make_reference.R`` beside it),
so the tests need no file from outside the repository.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pandas as pd

from workbench import datasets

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(__file__).resolve().parent / "reference" / "lme4"


@functools.cache
def _reference() -> dict:
    return json.loads((REFERENCE_DIR / "lme4_reference.json").read_text())


def lme4_reference() -> dict:
    """lme4's fits by model name (see ``tests/reference/lme4/README.md``); a fresh copy."""
    return copy.deepcopy(_reference())


def reference_data(entry: dict | str) -> pd.DataFrame:
    """The data set of a reference entry (its ``dataset``, e.g. ``"sleepstudy.csv"``), or by name."""
    name = entry["dataset"] if isinstance(entry, dict) else entry
    return datasets.load(name.removesuffix(".csv"))
