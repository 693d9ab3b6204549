"""Shared fixtures: lme4's reference fits, committed in ``tests/reference/lme4``."""

import pytest

from tests.helpers import lme4_reference as _lme4_reference


@pytest.fixture(scope="session")
def lme4_reference() -> dict:
    """lme4's fits by model name (``tests/reference/lme4/lme4_reference.json``)."""
    return _lme4_reference()
