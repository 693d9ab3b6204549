"""Real ``workbench`` processes: exit codes, no traceback, nothing half-written, fast start-up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

HEAVY = ("pymc", "arviz", "matplotlib", "pytensor", "dask", "distributed", "nutpie")


def _workbench(*args, cwd=None):
    exe = shutil.which("workbench")
    cmd = [exe] if exe else [sys.executable, "-m", "workbench"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_cli_import_does_not_load_heavy_packages():
    code = ("import sys, workbench.cli; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_python_dash_m_version():
    res = subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0
    assert res.stdout.startswith("workbench ")


def test_fit_success_and_failure_in_real_processes(tmp_path, data_file, lme4_reference):
    data = data_file("Dyestuff")
    for source in (data, "Dyestuff"):  # a path, and the built-in data set's name
        out = tmp_path / "fit.json"
        res = _workbench("fit", "Yield ~ 1 + (1 | Batch)", "--data", source, "--json", out)
        assert res.returncode == 0, res.stderr
        assert (json.loads(out.read_text())["criterion"]
                == pytest.approx(lme4_reference["dyestuff"]["REML"]["deviance"], rel=1e-6))
        out.unlink()

    missing = tmp_path / "bad.json"
    for args, code in [(["--data", tmp_path / "nope.csv"], 1),
                       (["--data", data, "--method", "bogus"], 2),
                       (["--data", data, "--known-sd", "Yield", "--ci", "nonsense"], 2)]:
        res = _workbench("fit", "Yield ~ 1 + (1 | Batch)", *args, "--json", missing)
        assert res.returncode == code, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
        assert res.stdout == ""
        assert not missing.exists()


def test_simulate_failure_leaves_no_file(tmp_path):
    design = tmp_path / "d.toml"
    design.write_text('formula = "y ~ 1 + (1 | g)"\n[factors.g]\nlevels = 1\n')
    res = _workbench("simulate", design, "--seed", "1", "--out", tmp_path / "data.csv")
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.toml"]
