"""Save a fit: ``fit.save(path)`` (read back by :func:`workbench.restore.load`).

A saved fit is up to three files side by side:

* ``path`` (JSON): the record (``fit.to_dict()``), the label, and what rebuilds the model: the
  formula's arguments (weights, offset, known sds, contrasts), the fixed-effect names and, for
  REML/ML, theta at the optimum;
* ``path`` with suffix ``.data.parquet``: the rows the model used, in the columns it reads;
* ``path`` with suffix ``.nc`` (Bayes): the InferenceData as netCDF (h5netcdf).

:func:`workbench.load` returns a :class:`~workbench.record.Fit` whose record is the saved one exactly
(``to_dict()`` round-trips) and whose design and engine state are rebuilt from the data: for
REML/ML the penalized least-squares system is factored at the saved theta (no optimisation) and
the recomputed fixed effects must equal the saved ones, else the data are not the fit's and
loading fails.  A loaded fit prints, compares, predicts and gives ``vcov``/``confint``/``anova``
as the original.  The optimizer's own record (``fit.state.optimizer``) is not rebuilt; its JSON
stays in ``diagnostics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import WorkbenchError
from .io import atomic_write, atomic_write_text

FORMAT = "workbench-fit"
VERSION = 1


def sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_suffix(".data.parquet"), path.with_suffix(".nc")


def save(fit, path) -> list[Path]:
    """Write ``fit`` (a :class:`~workbench.record.Fit`) to ``path`` (JSON) with its data (Parquet) and draws (netCDF) beside it.

    Returns
    -------
    list of Path
        The files written, each replaced atomically.
    """
    path = Path(path)
    if fit.design is None or fit.design.data is None:
        raise WorkbenchError("this fit has no data to save beside its record")
    data_path, nc_path = sidecars(path)
    header = {
        "format": FORMAT, "version": VERSION, "label": fit.label,
        "model": {"formula": fit.formula, "arguments": fit.design.arguments or {},
                  "fixed_names": list(fit.design.fixed_names)},
        "data": data_path.name, "draws": None,
    }
    if fit.method in ("reml", "ml"):
        state = fit.reml_state("save and load")
        if fit.design.terms and state.theta is None:
            raise WorkbenchError("a nobound fit on the variance scale cannot be saved (it has "
                                 "no theta to rebuild its state from)")
        if state.theta is not None:
            header["model"]["theta"] = np.asarray(state.theta, dtype=float).tolist()
    written = [atomic_write(data_path, lambda p: fit.design.data.to_parquet(p, index=False))]
    if fit.method == "bayes":
        idata = fit.bayes_state("saving the draws").idata
        written.append(atomic_write(nc_path, lambda p: idata.to_netcdf(str(p), engine="h5netcdf")))
        header["draws"] = nc_path.name
    header["record"] = fit.to_dict()
    written.append(atomic_write_text(path, json.dumps(header, indent=1)))
    return written


__all__ = ["save", "FORMAT", "VERSION", "sidecars"]
