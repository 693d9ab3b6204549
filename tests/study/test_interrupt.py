"""Ctrl-C during `workbench study run`: one line saying what is stored, exit 130, and a resume
that gives the rows an uninterrupted run gives."""

import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.study.run import run_study
from workbench.study.spec import load_study
from workbench.study.store import Store

from .conftest import comparable

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _finished(chunks):
    return [p for p in chunks.glob("*.parquet") if not p.name.startswith(".")] \
        if chunks.is_dir() else []


def _sigint_after_first_chunk(cmd, chunks):
    """Start ``cmd`` in its own process group, SIGINT the group (as a terminal's Ctrl-C does)
    once a chunk is stored; return (exit code, stderr)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not _finished(chunks):
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def test_sigint_with_dask_workers_reports_and_resumes_to_identical_rows(tiny_spec, reference_run,
                                                                       tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "workbench", "study", "run", str(tiny_spec), "--out", str(out),
           "--workers", "2", "--batch", "1", "--replicates", "40", "--quiet"]
    code, err = _sigint_after_first_chunk(cmd, out / "chunks")
    assert code == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    stored = sum(len(Store(out).scan(repair=False).done.get(k, ())) for k in
                 Store(out).scan(repair=False).done)
    total = 2 * 2 * 40
    # one line, from this process; nothing from the Dask workers or their shutdown
    assert lines == [f"interrupted: {stored} of {total} replicates are stored in {out}; "
                     "run the same command again to resume"], err
    assert 1 <= stored < total
    report = run_study(load_study(tiny_spec), out, workers=2, batch=3, progress=False,
                       replicates=40)
    assert report.fits == total - stored
    res = Store(out).results()
    assert len(res.groupby(["condition", "method", "replicate"]).size()) == total
    assert comparable(res[res["replicate"] < 12]).equals(reference_run[1])


def test_sigint_before_anything_is_stored_leaves_no_directory(tiny_spec, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "workbench", "study", "run", str(tiny_spec), "--out", str(out),
           "--workers", "0", "--replicates", "40", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "study.json").exists():
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    if lines[0] == "interrupted: nothing was stored":
        assert not out.exists()
    else:  # a chunk was stored before the signal arrived: it is kept and reported
        assert "run the same command again to resume" in lines[0] and _finished(out / "chunks")


@pytest.mark.slow
def test_sigint_of_a_bayesian_study_with_workers_then_resume_gives_identical_rows(tmp_path):
    from .conftest import write_study
    from .test_bayes import BAYES_STUDY

    spec = write_study(tmp_path, BAYES_STUDY)
    ref = tmp_path / "ref"
    run_study(load_study(spec), ref, workers=0, progress=False)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "workbench", "study", "run", str(spec), "--out", str(out),
           "--workers", "2", "--batch", "1", "--quiet"]
    code, err = _sigint_after_first_chunk(cmd, out / "chunks")
    assert code == 130 and err.startswith("interrupted: ") and err.count("\n") == 1, err
    run_study(load_study(spec), out, workers=2, batch=1, progress=False)
    assert comparable(Store(out).results()).equals(comparable(Store(ref).results()))
