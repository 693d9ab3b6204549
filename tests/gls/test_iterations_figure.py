"""The IGLS/RIGLS iteration figure: iterates on the criterion surface of a random-intercept model."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import WorkbenchError
from workbench.plots.iterations import criterion_surface, iteration_path, plot_iterations


@pytest.mark.parametrize("method", ["igls", "rigls"])
def test_iterates_lie_on_the_surface_and_end_at_its_minimum(method):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    d = workbench.datasets.load("Dyestuff")
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", d, method=method)
    path = iteration_path(fit)
    assert path.shape == (len(fit.diagnostics["iterations"]), 2)
    # the surface at each iterate is the criterion the trace recorded
    for (vg, vr), t in zip(path, fit.diagnostics["iterations"]):
        got = criterion_surface(fit, np.array([vg]), np.array([vr]))[0, 0]
        assert got == pytest.approx(t["criterion"], rel=1e-12)
    # and nothing on a grid around the end is lower
    vg = path[-1, 0] * np.linspace(0.5, 1.5, 11)
    vr = path[-1, 1] * np.linspace(0.5, 1.5, 11)
    assert np.nanmin(criterion_surface(fit, vg, vr)) >= fit.criterion - 1e-9
    fig = plot_iterations(fit, size=15)
    assert len(fig.axes) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_iteration_figure_needs_two_parameters():
    sleep = workbench.datasets.load("sleepstudy")
    fit = workbench.fit("Reaction ~ Days + (Days | Subject)", sleep, method="igls")
    with pytest.raises(WorkbenchError, match="two variance parameters"):
        iteration_path(fit)
    reml = workbench.fit("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(WorkbenchError, match="igls or rigls"):
        iteration_path(reml)
