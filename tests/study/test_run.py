"""The runner: identical numbers whatever the workers, a real external Dask cluster, SIGKILL and
resume, and the command line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from workbench.study.run import run_study
from workbench.study.spec import load_study
from workbench.study.store import Store

from .conftest import comparable

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def test_local_cluster_gives_the_same_numbers_as_one_process(tiny_spec, reference_run, tmp_path):
    out = tmp_path / "run"
    report = run_study(load_study(tiny_spec), out, workers=2, batch=5, progress=False)
    assert report.fits == 2 * 2 * 12
    assert comparable(Store(out).results()).equals(reference_run[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_external_scheduler_and_worker_processes(tiny_spec, reference_run, tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "dask.log", "w")
    sched = subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], stdout=log, stderr=log, env=ENV)
    worker = None
    try:
        worker = subprocess.Popen(["dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                   "--no-dashboard", "--host", "127.0.0.1"],
                                  stdout=log, stderr=log, env=ENV)
        from dask.distributed import Client

        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(1, timeout=max(1, deadline - time.time()))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        out = tmp_path / "run"
        run_study(load_study(tiny_spec), out, scheduler=address, batch=7, progress=False)
        assert comparable(Store(out).results()).equals(reference_run[1])
    finally:
        if worker is not None:
            _stop(worker)
        _stop(sched)
        log.close()


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tiny_spec, reference_run, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "workbench", "study", "run", str(tiny_spec), "--out", str(out),
           "--workers", "0", "--batch", "1", "--replicates", "40", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                            start_new_session=True)
    chunks = out / "chunks"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if chunks.is_dir() and len(_finished(chunks)) >= 5:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done_before = len(_finished(chunks))
    total = 2 * 2 * 40  # conditions x methods x replicates
    assert 5 <= done_before < total
    report = run_study(load_study(tiny_spec), out, workers=0, progress=False, replicates=40)
    assert report.skipped_fits >= done_before and report.fits == total - report.skipped_fits
    res = Store(out).results()
    per_fit = res.groupby(["condition", "method", "replicate"]).size()
    assert len(per_fit) == total  # nothing lost
    assert (per_fit.xs("ml", level="method") == 6).all()    # nothing duplicated: ml has one
    assert (per_fit.xs("reml", level="method") == 12).all()  # interval kind, reml two, x 6 params
    # replicates 0-11 are the reference run's numbers (seeds per condition and replicate)
    first = comparable(res[res["replicate"] < 12])
    assert first.equals(reference_run[1])


def _finished(chunks):
    return [p for p in chunks.glob("*.parquet") if not p.name.startswith(".")]


class _Result:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


def _cli(args, capsys):
    """Run the workbench CLI in this process."""
    from workbench.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return _Result(code, out, err)


def test_cli_summarize_json_and_figures(reference_run, tmp_path, capsys):
    out = reference_run[0]
    r = _cli(["study", "summarize", str(out), "--json", "-"], capsys)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 2 * (2 + 1) * 6  # conditions x (reml: 2 kinds, ml: 1) x parameters
    row = next(x for x in rows if x["parameter"] == "beta[x]" and x["method"] == "ml")
    assert row["condition"] in ({"n_groups": 6}, {"n_groups": 10})
    assert {"bias", "rmse", "coverage", "coverage_mcse", "rel_bias", "width"} <= set(row)
    text = _cli(["study", "summarize", str(out)], capsys).stdout
    assert "non-coverage" in text and "n_groups" in text
    r = _cli(["study", "figures", str(out), "--out", str(tmp_path / "figs")], capsys)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "figs" / "coverage.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "bias.png").stat().st_size > 1000


def test_cli_errors_are_one_line(tmp_path, tiny_spec, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_spec.read_text().replace("seed = 99", "seed = 99\ncolour = 1"))
    (tmp_path / "tiny_design.toml").write_text((tiny_spec.parent / "tiny_design.toml").read_text())
    r = _cli(["study", "run", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "colour: unknown key" in r.stderr
    assert not (tmp_path / "o").exists()
    r = _cli(["study", "run", str(tiny_spec), "--out", str(tmp_path / "o"), "--methods", "bayes"], capsys)
    assert r.returncode == 1 and "unknown method" in r.stderr
    r = _cli(["study", "summarize", str(tmp_path / "nothing")], capsys)
    assert r.returncode == 1 and "does not exist" in r.stderr
