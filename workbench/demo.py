"""The main job, ``workbench demo``: simulate, fit both ways, compare, write tables and figures.

The default data set is ``studies/designs/demo.toml`` (30 unbalanced groups, correlated random
intercepts and slopes, a level-1 and a level-2 predictor); the same design is built in here for
an installation without the repository's ``studies/`` folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from .compare import compare
from .io import atomic_write_text

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


def run_demo(out_dir="demo-out", seed: int = 1, progress: bool = True, draws: int = 1000,
             tune: int = 1000, chains: int = 2, design=None, echo=print) -> dict:
    """Simulate the demo data, fit it by REML, ML and Bayes, print and write the comparison.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``data.csv``, the tables (CSV, Markdown, LaTeX), ``fits.json`` and the
        figures (PNG and PDF).  Every file is replaced atomically.
    seed : int
        Seed of the simulation and of the sampler.
    progress : bool
        Print the steps and show the sampler's progress bar.
    draws, tune, chains : int
        Sampler settings.
    design : str or Path, optional
        A simulation design TOML instead of the default.
    echo : callable
        Where the steps and the side-by-side table are printed (``print``).

    Returns
    -------
    dict
        ``comparison`` (:class:`~workbench.compare.Comparison`), ``table`` (side-by-side
        DataFrame with a ``truth`` column), ``fits`` (``{"reml", "ml", "bayes"}``), ``data``,
        ``truth``, ``files`` (paths written), ``seconds`` (per step) and ``out_dir``.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    from .api import fit as fit_model
    from .plots.report import comparison_figures
    from .simulate import simulate

    say = echo if progress else (lambda *a, **k: None)
    out = Path(out_dir)
    seconds = {}
    t0 = time.perf_counter()
    sim = demo_design(design)
    data, truth = simulate(sim, seed)
    formula = sim.formula
    say(f"simulated {len(data)} rows in {data[formula_group(formula)].nunique()} groups "
        f"from {formula}")
    seconds["simulate"] = time.perf_counter() - t0

    t = time.perf_counter()
    from .reml.profile import with_profile_ci

    # profile-likelihood intervals (lme4's confint default) give every parameter an interval
    reml = with_profile_ci(fit_model(formula, data, method="reml"))
    ml = with_profile_ci(fit_model(formula, data, method="ml"))
    seconds["reml_ml"] = time.perf_counter() - t
    say(f"REML and ML fits with profile intervals: {seconds['reml_ml']:.1f} s")

    t = time.perf_counter()
    say(f"Bayesian fit: {chains} chains x ({tune} tune + {draws} draws); the first run compiles "
        "the model")
    bayes = fit_model(formula, data, method="bayes", draws=draws, tune=tune, chains=chains,
                      seed=seed, progressbar=progress)
    seconds["bayes"] = time.perf_counter() - t
    say(f"Bayesian fit: {seconds['bayes']:.1f} s (max R-hat "
        f"{bayes.diagnostics.get('max_rhat', float('nan')):.3f}, divergences "
        f"{bayes.diagnostics.get('divergences', 'n/a')})")

    comp = compare(reml, ml, bayes)
    table = comp.side_by_side()
    table.insert(1, "truth", [_fmt(truth.get(p)) for p in table["parameter"]])
    echo("")
    echo(_plain_table(table))

    t = time.perf_counter()
    files = []
    path = out / "data.csv"
    atomic_write_text(path, data.to_csv(index=False))
    files.append(path)
    files += comp.write(out)
    path = out / "side_by_side.csv"
    atomic_write_text(path, table.to_csv(index=False))  # with the truth column
    path = out / "fits.json"
    atomic_write_text(path, json.dumps({"truth": truth, "reml": reml.to_dict(),
                                        "ml": ml.to_dict(), "bayes": bayes.to_dict()}, indent=1))
    files.append(path)
    files += comparison_figures(reml, bayes, comp, out, truth=truth)
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    say(f"\nwrote {len(files)} files to {out}/ in {seconds['total']:.1f} s in all")
    return {"comparison": comp, "table": table, "fits": {"reml": reml, "ml": ml, "bayes": bayes},
            "data": data, "truth": truth, "files": files, "seconds": seconds, "out_dir": out}


def formula_group(formula: str) -> str:
    """The first grouping factor named in a formula (``... | g)`` -> ``g``)."""
    from .formula import parse_formula

    return parse_formula(formula).random[0].factors[0]


def _fmt(v) -> str:
    return "" if v is None else f"{v:.3f}"


def _plain_table(df: pd.DataFrame) -> str:
    """A fixed-width table for the terminal."""
    cols = [str(c) for c in df.columns]
    rows = [[str(x) for x in r] for r in df.itertuples(index=False)]
    w = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(wi) for c, wi in zip(cols, w)),
             "  ".join("-" * wi for wi in w)]
    lines += ["  ".join(x.ljust(wi) for x, wi in zip(r, w)) for r in rows]
    return "\n".join(lines)
