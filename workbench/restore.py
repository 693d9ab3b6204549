"""Read a saved fit back: ``workbench.load(path)`` (files written by :meth:`Fit.save`).

The format is described in :mod:`workbench.persist`.  The record is the saved one exactly; the
design is rebuilt from the saved data and the engine state at the saved theta (REML/ML; checked
against the saved fixed effects) or from the saved draws (Bayes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .persist import FORMAT
from .record import Fit, build_fit


def load(path) -> Fit:
    """Read a fit written by :meth:`Fit.save` (see the module docstring).

    Raises
    ------
    DataError
        A missing or unreadable file, a file that is not a saved fit, or data that do not
        reproduce the saved fit.
    """
    path = Path(path)
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the saved fit {path}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataError(f"{path} is not a fit saved by workbench (Fit.save)")
    model, rec = header["model"], header["record"]
    data_path = path.parent / header["data"]
    try:
        data = pd.read_parquet(data_path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the fit's data {data_path}: {exc}") from None
    from .design import build_design

    args = model.get("arguments") or {}
    design = build_design(model["formula"], data, known_sd=args.get("known_sd"),
                          weights=args.get("weights"), offset=args.get("offset"),
                          contrasts=args.get("contrasts"))
    if list(design.fixed_names) != model["fixed_names"] or design.n != rec["nobs"]:
        raise DataError(f"the data in {data_path} do not rebuild the saved model")
    method = rec["method"]
    if method in ("reml", "ml"):
        state, structure, check = _engine_state(design, method, model)
    else:
        state, structure = _bayes_state(design, rec, path.parent / header["draws"])
        check = None
    if check is not None:
        scale = max(1.0, max(abs(v) for v in rec["beta"].values()))
        worst = max(abs(check[k] - rec["beta"][k]) for k in rec["beta"])
        if not worst <= 1e-8 * scale:
            raise DataError(f"the data in {data_path} do not reproduce the saved fit (fixed "
                            f"effects differ by {worst:.3g})")
    none_nan = lambda d: {k: (math.nan if v is None else v) for k, v in d.items()}  # noqa: E731
    return build_fit(
        method=method, design=design, structure=structure, beta=none_nan(rec["beta"]),
        beta_se=none_nan(rec["beta_se"]), beta_ci=rec["beta_ci"], sigma=rec["sigma"],
        varcorr=rec["varcorr"], ranef=rec["ranef"], converged=rec["converged"],
        singular=rec["singular"], state=state, criterion=rec["criterion"],
        diagnostics=rec["diagnostics"], interval=rec["interval"], label=header.get("label"))


def _engine_state(design, method: str, model: dict):
    """The REML/ML state at the saved theta (no optimisation) and the recomputed beta."""
    reml = method == "reml"
    if not design.terms:
        from .reml.linear import fit_linear

        refit = fit_linear(design, reml=reml)
    else:
        from .reml.blocked import BlockedSystem
        from .reml.fit import assemble_fit

        if model.get("theta") is None:
            raise DataError("the saved fit has no theta to rebuild its engine state")
        refit = assemble_fit(BlockedSystem(design), np.asarray(model["theta"], dtype=float),
                             reml=reml)
    from .structure import build_structure

    return refit.state, build_structure(design), refit.beta


def _bayes_state(design, rec: dict, nc_path: Path):
    import arviz as az

    from .bayes.priors import resolve_priors
    from .record import BayesState
    from .structure import build_structure

    try:
        idata = az.from_netcdf(str(nc_path), engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the fit's draws {nc_path}: {exc}") from None
    structure = build_structure(design)
    diag = rec.get("diagnostics") or {}
    residual = None
    cst = diag.get("corstruct")
    if cst and "constant_data" in idata.groups() and "corr_group" in idata.constant_data:
        from .bayes.corstruct import PARAMS  # a residual structure's prior key and largest group

        sizes = np.bincount(np.asarray(idata.constant_data["corr_group"].values, dtype=int))
        residual = (PARAMS[cst["structure"]], int(sizes.max()))
    priors = resolve_priors(design, structure, diag.get("priors"), residual=residual)
    state = BayesState(idata=idata, priors=priors, structure=structure,
                       parameterization=diag.get("parameterization"),
                       sampler=diag.get("sampler"), seed=diag.get("seed"))
    return state, structure


__all__ = ["load"]
