"""Shared fixtures: the lme4 reference fits in ../shared/reference/lme4."""

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference" / "lme4"
DATA = SHARED / "data"

# Columns R stores as factors in the reference data sets.
FACTORS = {"insteval.csv": ["s", "d", "studage", "lectage", "service", "dept"]}


def load_reference_data(name: str) -> pd.DataFrame:
    """A reference data set, with R's factor columns read as strings."""
    return pd.read_csv(REFERENCE / name, dtype={c: str for c in FACTORS.get(name, [])})


def load_shared_data(name: str) -> pd.DataFrame:
    """A data set from ../shared/data; the test is skipped where that folder is absent."""
    path = DATA / name
    if not path.exists():
        pytest.skip("../shared/data is not present")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def lme4_reference() -> dict:
    if not (REFERENCE / "lme4_reference.json").exists():
        pytest.skip("../shared/reference/lme4 is not present")
    return json.loads((REFERENCE / "lme4_reference.json").read_text())
