"""Helpers for the CLI tests: run ``workbench.cli.main`` in-process and capture its streams."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def data_file():
    """``data_file("Dyestuff")``: the packaged CSV file of a built-in data set (for ``--data PATH``)."""
    from workbench import datasets

    return lambda name: datasets.info(name).path


@pytest.fixture(scope="session")
def ref_data():
    """``ref_data("sleepstudy")``: a built-in data set as a DataFrame."""
    from workbench import datasets

    return datasets.load
