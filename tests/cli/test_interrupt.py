"""Ctrl-C in real ``workbench`` processes: one ``interrupted:`` line, exit 130, no traceback
(from this process or its worker processes), nothing left half-written.

Each test starts the command in its own process group, waits for a line it prints when the
work is under way, and sends SIGINT to the whole group, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _interrupt_at(marker: str, *args, cwd=None) -> tuple[int, list[str]]:
    """Run ``workbench *args``; SIGINT its process group once ``marker`` is printed."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=cwd, start_new_session=True)
    err: list[str] = []
    seen = threading.Event()

    def read(stream, keep):
        for line in stream:
            if keep is not None:
                keep.append(line)
            if marker in line:
                seen.set()

    readers = [threading.Thread(target=read, args=(proc.stdout, None)),
               threading.Thread(target=read, args=(proc.stderr, err))]
    for t in readers:
        t.start()
    try:
        assert seen.wait(180), f"no '{marker}' line: {''.join(err)}"
        assert proc.poll() is None, "the command finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for t in readers:
            t.join(10)
    return proc.returncode, [ln.rstrip("\n") for ln in err if ln.strip()]


def test_demo_interrupted_in_the_bayesian_fit_writes_nothing(tmp_path):
    out = tmp_path / "demo"
    code, lines = _interrupt_at("Bayesian fit:", "demo", "--out", out, "--draws", 4000,
                                "--tune", 4000, cwd=tmp_path)
    assert code == 130, lines
    assert lines[-1] == "interrupted: nothing was written", lines
    assert not any("Traceback" in ln or "Error" in ln for ln in lines), lines
    assert list(tmp_path.iterdir()) == []


def test_fit_interrupted_during_a_parallel_bootstrap_writes_nothing(tmp_path):
    out = tmp_path / "fit.json"
    code, lines = _interrupt_at("parametric bootstrap:", "fit", "Reaction ~ Days + (Days | Subject)",
                                "--data", "sleepstudy", "--ci", "bootstrap", "--nboot", 20000,
                                "--seed", 1, "--json", out)
    assert code == 130, lines
    assert lines == ["parametric bootstrap: 20000 replicates, seed 1",
                     "interrupted: nothing was written"], lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"]])
def test_keyboard_interrupt_in_process_is_one_line(run_cli, monkeypatch, argv):
    """What the subprocess tests see, in this process: typer no longer turns Ctrl-C into a
    silent exit 130."""
    import workbench

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(workbench, "fit", interrupted)
    code, out, err = run_cli(*argv)
    assert (code, out, err) == (130, "", "interrupted: nothing was written\n")
