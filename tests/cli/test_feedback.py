"""Feedback on long work (workbench.progress): on stderr, only on a terminal or when asked,
silenced by --quiet; ``compare --ci``."""

from __future__ import annotations

import contextlib

import pandas as pd
import pytest

from workbench import progress

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_stages_and_status_write_to_stderr_only_when_asked(capsys):
    with progress.feedback(True):
        with progress.Stages("compare", ["REML fit", "Bayesian fit"]) as bar:
            bar.start("REML fit")
            bar.start("Bayesian fit")
        with progress.status(progress.COMPILING):
            pass
    out, err = capsys.readouterr()
    assert out == "" and "compare" in err and "done" in err
    # captured stderr is no terminal: silent by default, and silent when silenced
    for on in (None, False):
        with progress.feedback(on):
            assert not progress.enabled()
            with progress.Stages("compare", ["REML fit"]) as bar:
                bar.start("REML fit")
            with progress.status(progress.COMPILING):
                pass
    assert capsys.readouterr() == ("", "")


def test_first_compile_shows_a_status_line(monkeypatch):
    """A fit whose model is not compiled yet runs the compilation inside the status line."""
    import workbench
    import workbench.bayes.cache as cache

    seen = []

    @contextlib.contextmanager
    def status(message):
        seen.append(message)
        yield

    class Stop(Exception):
        pass

    def get_compiled(layout, sampler, data):
        assert seen == [progress.COMPILING]
        raise Stop

    monkeypatch.setattr(progress, "status", status)
    monkeypatch.setattr(cache, "get_compiled", get_compiled)
    monkeypatch.setattr(cache, "is_cached", lambda layout, sampler: False)
    data = workbench.datasets.load("sleepstudy")
    with pytest.raises(Stop):
        workbench.fit(SLEEP_FORMULA, data, method="bayes", seed=1, progressbar=False, path="nuts")


@pytest.mark.parametrize("quiet", [False, True])
def test_compare_ci_and_quiet(run_cli, monkeypatch, tmp_path, quiet):
    import workbench.jobs

    seen = {}

    def compare_and_write(formula, data, out_dir, **kwargs):
        seen.update(kwargs, enabled=progress.enabled())
        return {"side_by_side": pd.DataFrame({"parameter": ["sigma"], "reml": [1.0]}),
                "files": ["a"], "notes": ["reml: profile-likelihood 95% intervals on the ML deviance"]}

    monkeypatch.setattr(workbench.jobs, "compare_and_write", compare_and_write)
    args = ["compare", SLEEP_FORMULA, "-d", "sleepstudy", "--out", tmp_path, "--ci", "profile"]
    code, out, err = run_cli(*args, *(["--quiet"] if quiet else []))
    assert code == 0, err
    assert seen["ci"] == "profile" and seen["progress"] is (not quiet)
    assert seen["enabled"] is False  # --quiet, or stderr captured (no terminal)
    assert "on the ML deviance" in out


def test_compare_rejects_an_unknown_interval(run_cli, one_line_error, tmp_path):
    code, out, err = run_cli("compare", SLEEP_FORMULA, "-d", "sleepstudy", "--out", tmp_path,
                             "--ci", "hpd")
    assert code != 0 and "hpd" in err and not list(tmp_path.iterdir())
