"""The data of ``workbench demo`` (the job itself is :func:`workbench.jobs.run_demo`).

The default data set is ``studies/designs/demo.toml`` (30 unbalanced groups, correlated random
intercepts and slopes, a level-1 and a level-2 predictor); the same design is built in here for
an installation without the repository's ``studies/`` folder.
"""

from __future__ import annotations

from pathlib import Path

DESIGN_PATH = Path(__file__).resolve().parents[1] / "studies" / "designs" / "demo.toml"
DEFAULT_DESIGN = {
    "formula": "y ~ 1 + x + z + (1 + x | g)",
    "factors": {"g": {"levels": 30, "size": {"low": 5, "high": 40}}},
    "predictors": {"x": {"level": "obs", "distribution": "normal", "mean": 0.0, "sd": 1.0},
                   "z": {"level": "g", "distribution": "normal"}},
    "fixed": {"(Intercept)": 2.0, "x": 0.5, "z": 0.3},
    "random": {"g": {"terms": ["(Intercept)", "x"], "sd": [0.8, 0.3],
                     "cor": [[1.0, 0.3], [0.3, 1.0]]}},
    "residual": {"sd": 1.0},
}


def demo_design(path=None):
    """The demo's simulation design: ``path``, else ``studies/designs/demo.toml``, else built in."""
    from .simulate import design_from_dict, load_design

    if path is not None:
        return load_design(path)
    if DESIGN_PATH.exists():
        return load_design(DESIGN_PATH)
    return design_from_dict(DEFAULT_DESIGN, "built-in demo design")
