"""Parametric bootstrap of a REML/ML fit (lme4's ``bootMer(type = "parametric")``).

Each replicate simulates a response from the fitted model (new random effects and residuals,
:mod:`workbench.reml.simulate_fit`), refits it by the same method, and keeps every tidy
parameter (``beta[...]``, ``sd[...]``, ``cor[...]``, ``sigma``).  Replicate ``i`` draws from
its own stream, ``numpy.random.SeedSequence(seed).spawn(n)[i]``, so the result is the same
whatever the number of workers.  Replicates run in worker processes
(:mod:`concurrent.futures`), in chunks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..record import Fit
from .simulate_fit import fitted_parts, simulate_parts


@dataclass
class BootstrapResult:
    """Replicate estimates of a parametric bootstrap.

    Attributes
    ----------
    estimates : DataFrame
        One row per replicate, one column per tidy parameter name (NaN rows for replicates
        whose refit failed).
    original : dict
        The fit's own estimates, ``{parameter: value}``.
    n, seed : int
    method : str
        ``"reml"`` or ``"ml"``: how each replicate was refitted.
    failures : int
        Replicates whose refit raised an error (their messages in ``messages``).
    new_ranef : bool
        Whether replicates drew new random effects (True) or kept the BLUPs.
    """

    estimates: pd.DataFrame
    original: dict
    n: int
    seed: int | None
    method: str
    failures: int = 0
    new_ranef: bool = True
    messages: list = field(default_factory=list)

    def ci(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals for every parameter.

        Parameters
        ----------
        level : float
            Coverage; the limits are the ``(1 -+ level) / 2`` quantiles of the replicate
            estimates (numpy's default linear interpolation), failed replicates left out.

        Returns
        -------
        DataFrame
            Columns ``parameter``, ``estimate`` (the fit's), ``lower``, ``upper``, ``mean``,
            ``se`` (sd of the replicates), ``bias`` (mean - estimate).
        """
        if not 0 < level < 1:
            raise WorkbenchError(f"level must be between 0 and 1, got {level}")
        a = (1.0 - level) / 2.0
        ok = self.n - self.failures
        if ok < math.ceil(1.0 / a):
            warnings.warn(f"{ok} bootstrap replicates are too few for {level:.0%} percentile "
                          f"intervals: no replicate lies beyond a limit (at least "
                          f"{math.ceil(1.0 / a)} needed, a few hundred for usable limits)",
                          stacklevel=2)
        rows = []
        for name in self.estimates.columns:
            v = self.estimates[name].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            est = self.original.get(name, math.nan)
            if v.size == 0:
                rows.append((name, est, math.nan, math.nan, math.nan, math.nan, math.nan))
                continue
            lo, hi = np.quantile(v, [a, 1.0 - a])
            m = float(v.mean())
            sd = float(v.std(ddof=1)) if v.size > 1 else math.nan
            rows.append((name, est, float(lo), float(hi), m, sd, m - est))
        return pd.DataFrame(rows, columns=["parameter", "estimate", "lower", "upper", "mean",
                                           "se", "bias"])


def _tidy_estimates(fit: Fit) -> dict:
    p = fit.params()
    return dict(zip(p["parameter"], p["estimate"].astype(float)))


def _run_chunk(payload: dict, seeds: list) -> tuple[list[dict], list[str]]:
    """Simulate and refit the replicates of one chunk (runs in a worker process)."""
    from .fit import fit_reml
    from .profile import single_threaded_blas

    design, parts = payload["design"], payload["parts"]
    out, messages = [], []
    with single_threaded_blas(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ss in seeds:
            rng = np.random.default_rng(ss)
            y = simulate_parts(parts, rng, payload["new_ranef"])
            try:
                refit = fit_reml(dataclasses.replace(design, y=y), reml=payload["reml"])
                out.append(_tidy_estimates(refit))
            except Exception as exc:  # a failed refit is counted, not fatal
                out.append({})
                messages.append(f"{type(exc).__name__}: {exc}")
    return out, messages


def bootstrap(fit: Fit, n: int, seed: int, workers: int | None = None,
              new_ranef: bool = True) -> BootstrapResult:
    """Parametric bootstrap: simulate from the fit, refit, ``n`` times.

    Parameters
    ----------
    fit : Fit
        A REML or ML fit; each replicate is refitted by the same method.
    n : int
        Number of replicates.
    seed : int
        Seeds the replicates (replicate ``i`` uses ``SeedSequence(seed).spawn(n)[i]``), so the
        result does not depend on ``workers``.
    workers : int, optional
        Worker processes (default: the CPU count, at most ``n``); 1 runs in this process.
    new_ranef : bool
        Draw new random effects (lme4's default) or keep the fitted BLUPs.

    Returns
    -------
    BootstrapResult
        ``.estimates`` (replicates x parameters) and ``.ci(level)`` percentile intervals.
    """
    fit.reml_state("parametric bootstrap replicates", need_system=True)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise WorkbenchError(f"n must be a positive integer, got {n!r}")
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise WorkbenchError(f"workers must be a positive integer, got {workers!r}")
    n = int(n)
    parts = fitted_parts(fit)
    payload = {"design": fit.design, "parts": parts, "reml": fit.method == "reml",
               "new_ranef": bool(new_ranef)}
    seeds = np.random.SeedSequence(seed).spawn(n)
    workers = min(int(workers or os.cpu_count() or 1), n)
    if workers == 1:
        results, messages = _run_chunk(payload, seeds)
    else:
        nchunks = min(n, 4 * workers)
        bounds = np.linspace(0, n, nchunks + 1).astype(int)
        chunks = [seeds[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        results, messages = [], []
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for res, msg in ex.map(_run_chunk, [payload] * len(chunks), chunks):
                results.extend(res)
                messages.extend(msg)
    original = _tidy_estimates(fit)
    est = pd.DataFrame(results, columns=list(original), dtype=float)
    failures = sum(1 for r in results if not r)
    if failures:
        warnings.warn(f"{failures} of {n} bootstrap refits failed; they are left out of the "
                      "intervals", stacklevel=2)
    return BootstrapResult(estimates=est, original=original, n=n, seed=seed, method=fit.method,
                           failures=failures, new_ranef=bool(new_ranef), messages=messages)


def with_bootstrap_ci(fit: Fit, n: int = 1000, seed: int = 0, workers: int | None = None,
                      level: float = 0.95, result: BootstrapResult | None = None) -> Fit:
    """A copy of ``fit`` carrying parametric-bootstrap percentile intervals.

    Parameters
    ----------
    fit : Fit
    n, seed, workers
        Passed to :func:`bootstrap` (ignored when ``result`` is given).
    level : float
    result : BootstrapResult, optional
        A bootstrap already run on this fit.

    Returns
    -------
    Fit
        With ``interval="bootstrap"``.
    """
    from .profile import with_intervals

    if result is None:
        result = bootstrap(fit, n, seed, workers)
    return with_intervals(fit, result.ci(level), "bootstrap", {
        "interval_level": level,
        "bootstrap": {"n": result.n, "seed": result.seed, "failures": result.failures}})


__all__ = ["bootstrap", "BootstrapResult", "with_bootstrap_ci"]
