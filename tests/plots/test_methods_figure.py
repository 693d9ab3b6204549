"""Figure 8 (every method's variance parameters) and the figures of the GLS traditions: every
method is drawn, and a panel names the methods that do not report its parameter."""

from __future__ import annotations

import pytest

import workbench
from workbench.errors import WorkbenchError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def comparison():
    d = workbench.datasets.load("Dyestuff")
    fits = [workbench.fit("Yield ~ 1 + (1 | Batch)", d, method=m)
            for m in ("reml", "fgls", "igls", "rigls")]
    fits.append(workbench.fit("Yield ~ 1", d, correlation="cs(~ 1 | Batch)"))
    return workbench.compare(*fits)


def test_every_method_is_drawn_or_named(comparison):
    import matplotlib.pyplot as plt

    from workbench.plots.methods import method_rows, plot_parameters_by_method

    fig = plot_parameters_by_method(comparison)
    axes = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert set(axes) == {"sd[Batch:(Intercept)]", "sigma", "corstruct[Rho]"}
    for name, ax in axes.items():
        labels = [t.get_text() for t in ax.get_yticklabels()]
        title = ax.get_title()
        for m in comparison.methods:
            shown = any(lab.startswith(workbench.plots.style.label(m)) for lab in labels)
            assert shown or m in title, (name, m, labels, title)
    assert "reml cs (marginal sd)" in [t.get_text() for t in axes["sigma"].get_yticklabels()]
    assert "not reported by: reml cs" in axes["sd[Batch:(Intercept)]"].get_title()
    assert len(method_rows(comparison.parameters)) == 4 * 2 + 2
    plt.close(fig)


def test_fixed_intervals_draw_estimates_without_an_interval(comparison):
    import matplotlib.pyplot as plt
    import pandas as pd

    from workbench.plots.intervals import plot_fixed_intervals

    p = comparison.parameters.copy()
    p.loc[p["method"] == "fgls", ["lower", "upper"]] = float("nan")
    p.loc[p["method"] == "fgls", "interval"] = "none"
    fig = plot_fixed_intervals(p)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "FGLS · no interval" in labels and len(labels) == len(comparison.methods)
    plt.close(fig)
    with pytest.raises(WorkbenchError, match="no fixed effects"):
        plot_fixed_intervals(pd.DataFrame(columns=p.columns))


def test_no_variance_parameters_is_a_plain_error():
    from workbench.plots.methods import plot_parameters_by_method

    d = workbench.datasets.load("Dyestuff")
    comp = workbench.compare(workbench.fit("Yield ~ 1", d))
    with pytest.raises(WorkbenchError, match="no variance parameters"):
        plot_parameters_by_method(workbench.compare(comp.parameters[comp.parameters[
            "parameter"].str.startswith("beta")]))


@pytest.mark.slow
def test_report_figures_8_and_9(tmp_path):
    from workbench.jobs import make_report_figures

    files = make_report_figures(tmp_path, bayes=False, only=[8, 9], formats=("png",),
                                progress=False)
    assert sorted(f.name for f in files) == ["fig8_methods_variance.png",
                                             "fig9_igls_iterations.png"]
