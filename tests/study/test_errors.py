"""Study inputs that fail: a bad or unreachable scheduler, a corrupt chunk at summary time, and
the shipped few-groups study's variance-component Wald arms."""

import math
import socket
import time
from pathlib import Path

import pytest

from workbench.study.replicate import run_batch
from workbench.study.run import make_task
from workbench.study.spec import load_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def _cli(capsys, *args):
    from workbench.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("address, needle", [
    ("notanaddress", "is not a Dask scheduler address"),
    ("tcp://127.0.0.1:{port}", "cannot connect to the Dask scheduler"),
])
def test_a_bad_or_unreachable_scheduler_fails_fast_and_writes_nothing(
        tiny_spec, tmp_path, capsys, monkeypatch, address, needle):
    import workbench.study.run

    monkeypatch.setattr(workbench.study.run, "CONNECT_TIMEOUT", 1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    t0 = time.perf_counter()
    code, err = _cli(capsys, "study", "run", tiny_spec, "--out", out, "--quiet",
                     "--scheduler", address.format(port=port))
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert time.perf_counter() - t0 < 30
    assert not out.exists()


def test_summarize_names_a_corrupt_chunk(reference_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run[0], out)
    chunk = sorted((out / "chunks").glob("*.parquet"))[1]
    chunk.write_bytes(chunk.read_bytes()[:100])
    code, err = _cli(capsys, "study", "summarize", out)
    assert code == 1 and err.startswith("error: ") and chunk.name in err, err
    assert "workbench study run" in err and err.count("\n") == 1
    assert chunk.exists()  # summarize reads; only `study run` repairs


def test_few_groups_reml_arm_has_variance_component_wald_intervals():
    study = load_study(STUDIES / "few_groups.toml")
    c = study.conditions[2]
    rows = run_batch(make_task(study, c, "reml", [0], study.spec.seed))
    for kind in ("wald_var", "wald_sd"):
        for p in ("sd[g:(Intercept)]", "var[g:(Intercept)]", "sigma"):
            r = rows[(rows.interval == kind) & (rows.parameter == p)].iloc[0]
            assert math.isfinite(r.lower) and math.isfinite(r.upper) and r.lower < r.upper, (kind, p)


@pytest.mark.parametrize("args, needle", [
    (("summarize", "{run}", "--json", "{blocker}/s.json"), "'{blocker}' exists and is not a directory"),
    (("summarize", "{run}", "--csv", "{blocker}/s.csv"), "'{blocker}' exists and is not a directory"),
    (("figures", "{run}", "--out", "{blocker}/figs"), "is a file, not a directory"),
    (("summarize", "{blocker}"), "is a file, not a study directory"),
    (("run", "{tmp}", "--out", "{tmp}/x"), "is a directory, not a file"),
])
def test_study_files_that_cannot_be_read_or_written(reference_run, tmp_path, capsys, args, needle):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    fill = {"run": reference_run[0], "blocker": blocker, "tmp": tmp_path}
    code, err = _cli(capsys, "study", *[a.format(**fill) for a in args])
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert needle.format(**fill) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_run_too_large_to_plan_is_refused(tiny_spec, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _cli(capsys, "study", "run", tiny_spec, "--out", out, "--replicates", 10 ** 9)
    assert code == 1 and "are 4,000,000,000 fits; a run plans at most 10,000,000" in err, err
    assert not out.exists()
