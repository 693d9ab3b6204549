"""The teaching walk-through (studies/walkthrough.py) executes and every identity it states holds."""

import runpy
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from tests.helpers import ROOT  # noqa: E402

SCRIPT = ROOT / "studies" / "walkthrough.py"
# Every step of the walk-through states at least these identities (prefix of the check name).
EXPECTED = [
    "1 small: V from compound symmetry", "1 radon: V from compound symmetry",
    "2 small: GLS(sigma=V) beta", "2 radon: GLS(sigma=V) beta", "2 radon: GLS standard errors",
    "3 small REML: maximising", "3 small ML: maximising", "3 radon REML: dense -2 log L_R",
    "4 small: BLUP = k_j", "4 radon: BLUP = k_j", "4 radon: BLUP = G Z' V^-1",
    "5 small: posterior mean of beta", "5 radon: posterior mean of beta",
    "5 radon: posterior mean of b = BLUPs", "5 radon: posterior covariance of beta",
    "6 radon: posterior means of beta", "6 eight schools: REML estimate of tau",
    "6 eight schools: posterior school means spread",
    "7 small slopes: GLS(sigma=V) beta", "7 radon slopes: GLS(sigma=V) beta",
    "7 small crossed: GLS(sigma=V) beta", "7 penicillin crossed: V",
    "8 radon: cs GLS criterion = REML criterion", "8 radon: cs GLS beta = REML beta",
    "8 radon: cs GLS standard errors", "8 radon: cs GLS Rho", "8 radon: RIGLS = REML, fixed",
    "8 radon: RIGLS = REML, variance", "8 radon: RIGLS = REML, criterion",
    "8 radon: IGLS = ML, fixed", "8 radon: IGLS = ML, variance", "8 radon: IGLS = ML, criterion",
    "8 radon: FGLS beta = GLS(sigma=V)", "8 radon: posterior means of beta",
    "9 reconciliation: reconcile(wls_struct)", "9 reconciliation: the reconciled forecasts add up",
    "9 radon: reconcile's projection",
]


@pytest.fixture(scope="module")
def namespace():
    return runpy.run_path(str(SCRIPT), run_name="walkthrough")


def test_walkthrough_asserts_every_identity(namespace):
    checks = namespace["CHECKS"]
    names = list(checks)
    for prefix in EXPECTED:
        assert any(n.startswith(prefix) for n in names), f"missing check: {prefix}"
    for name, (discrepancy, tol) in checks.items():
        assert discrepancy <= tol, name


def test_exact_bayes_identity_tolerance(namespace):
    """Step 5 states an exact Gaussian identity: it is checked to 1e-8, not loosely."""
    checks = namespace["CHECKS"]
    step5 = {k: v for k, v in checks.items() if k.startswith("5 ")}
    assert len(step5) == 8
    assert all(tol <= 1e-8 for _, tol in step5.values())


@pytest.mark.slow
def test_walkthrough_renders_to_html(tmp_path):
    if shutil.which("jupyter") is None:
        pytest.skip("jupyter (nbconvert) is not installed: pip install -e '.[dev]'")
    nb = tmp_path / "walkthrough.ipynb"
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "notebook", "--output", str(nb),
                    str(SCRIPT)], check=True)
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--execute", str(nb)],
                   check=True)
    html = (tmp_path / "walkthrough.html").read_text()
    assert "all within tolerance: True" in html and "[FAILED]" not in html
