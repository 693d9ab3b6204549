"""Helpers for the CLI tests: run ``workbench.cli.main`` in-process and capture its streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args) -> (exit code, stdout, stderr)`` through the real entry point ``main``."""

    def run(*args):
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        return (0 if code is None else code), out, err

    return run


def _assert_one_line_error(code: int, err: str, *needles: str, expected_code: int = 1) -> None:
    """The contract for user errors: one plain ``error:`` line naming the problem."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    error_lines = [ln for ln in lines if ln.startswith("error: ")]
    assert code == expected_code, err
    assert len(error_lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]


@pytest.fixture
def one_line_error():
    """``one_line_error(code, err, *needles, expected_code=1)`` asserts the user-error contract."""
    return _assert_one_line_error


SHARED = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (lme4 reference fits and data sets); skips when it is absent."""
    if not (SHARED / "reference" / "lme4" / "lme4_reference.json").exists():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def ref_data(shared_dir):
    """``ref_data("sleepstudy.csv")``: an lme4 reference data set as a DataFrame."""
    import pandas as pd

    return lambda name: pd.read_csv(shared_dir / "reference" / "lme4" / name)
