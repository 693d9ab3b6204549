"""A tiny study shared by the study tests: random intercepts, 2 conditions, REML and ML."""

from pathlib import Path

import pytest

DESIGN = """
formula = "y ~ 1 + x + (1 | g)"
[factors.g]
levels = 6
size = 5
[predictors.x]
level = "obs"
[fixed]
"(Intercept)" = 1.0
x = 0.5
[random.g]
terms = ["(Intercept)"]
sd = [0.7]
[residual]
sd = 1.0
"""

STUDY = """
name = "tiny"
design = "tiny_design.toml"
replicates = 12
seed = 99
[grid.n_groups]
path = "factors.g.levels"
values = [6, 10]
[methods.reml]
method = "reml"
intervals = ["wald_var", "wald_sd"]
options = { vc_se = "expected" }
[methods.ml]
method = "ml"
options = { vc_se = "expected" }
[summary]
by = ["n_groups"]
"""


def write_study(directory: Path, study: str = STUDY, design: str = DESIGN) -> Path:
    """Write the tiny study (and its design) into ``directory``; return the study path."""
    (directory / "tiny_design.toml").write_text(design)
    path = directory / "tiny.toml"
    path.write_text(study)
    return path


def comparable(frame):
    """Results without the timing column, in a canonical order."""
    cols = [c for c in frame.columns if c != "fit_time"]
    return frame[cols].sort_values(["condition", "method", "replicate", "interval", "parameter"]) \
        .reset_index(drop=True)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_spec")


@pytest.fixture(scope="session")
def tiny_spec(tiny_dir) -> Path:
    return write_study(tiny_dir)


@pytest.fixture(scope="session")
def reference_run(tiny_spec, tmp_path_factory):
    """The tiny study run once, in this process: (out dir, results)."""
    from workbench.study.run import run_study
    from workbench.study.spec import load_study
    from workbench.study.store import Store

    out = tmp_path_factory.mktemp("reference") / "run"
    run_study(load_study(tiny_spec), out, workers=0, progress=False)
    return out, comparable(Store(out).results())
