"""Every figure function draws labelled axes and saves PNG + PDF (tiny data, Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import workbench  # noqa: E402
from workbench.compare import compare  # noqa: E402
from workbench.plots import (compound_symmetry_V, plot_caterpillar, plot_covariance,  # noqa: E402
                             plot_fixed_intervals, plot_prior_sensitivity, plot_profile_posterior,
                             plot_shrinkage, plot_variance_components, style)
from workbench.plots import draws as D  # noqa: E402
from workbench.jobs import make_report_figures
from workbench.plots.report import small_data  # noqa: E402
from workbench.record import Fit  # noqa: E402

from workbench import datasets  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return small_data()


@pytest.fixture(scope="module")
def fits(small):
    return (workbench.fit("y ~ 1 + x + (1 | g)", small),
            workbench.fit("y ~ 1 + x + (1 + x | g)", small))


@pytest.fixture()
def bayes(fits, monkeypatch):
    """A hand-made Bayesian record whose draws the plots read through posterior_frame."""
    reml = fits[0]
    rng = np.random.default_rng(1)
    sd = reml.varcorr[0]["sdcor"]
    frame = pd.DataFrame({"sd[g:(Intercept)]": np.abs(rng.normal(sd, 0.2, 400)),
                          "sigma": np.abs(rng.normal(reml.sigma, 0.05, 400))})
    prior = pd.DataFrame({"sd[g:(Intercept)]": np.abs(rng.normal(0, 2, 400)),
                          "sigma": rng.exponential(1, 400)})
    monkeypatch.setattr(D, "posterior_frame", lambda fit, prior_=False, **k: prior if
                        k.get("prior") or prior_ else frame)
    ranef = [dict(r, value=r["value"] * 0.95, lower=r["value"] - 0.6, upper=r["value"] + 0.6)
             for r in reml.ranef]
    return Fit(method="bayes", formula=reml.formula, nobs=reml.nobs, ngroups=reml.ngroups,
               criterion=None, loglik=None, beta=dict(reml.beta), beta_se=dict(reml.beta_se),
               beta_ci={k: [v - 1, v + 1] for k, v in reml.beta.items()}, sigma=reml.sigma,
               varcorr=reml.varcorr, ranef=ranef, converged=True, singular=False,
               interval="credible", design=reml.design)


def _labelled(fig):
    axes = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert axes
    for ax in axes:
        assert ax.get_xlabel(), "every visible panel has an x label"
    return axes


def test_style_colours_are_okabe_ito():
    assert style.color("reml") == "#0072B2" and style.color("bayes#2") == "#D55E00"
    assert len(set(style.CYCLE)) == len(style.CYCLE)


def test_shrinkage_and_caterpillar(tmp_path, fits, bayes):
    fig = plot_shrinkage(fits[0], bayes)
    axes = _labelled(fig)
    assert len(axes) == 2  # the theoretical-factor panel is drawn for a random intercept
    files = style.save(fig, tmp_path / "f1")
    assert [f.suffix for f in files] == [".png", ".pdf"] and all(f.stat().st_size > 1000 for f in files)
    assert len(_labelled(plot_shrinkage(fits[1]))) == 1  # slopes: no scalar factor
    fig2 = plot_caterpillar(fits[0], bayes)
    ax = _labelled(fig2)[0]
    (legend,) = fig2.legends  # below the panels, off the data
    assert len(legend.get_texts()) == 2
    assert [t.get_text() for t in ax.get_yticklabels()]  # few levels: names shown


def test_fixed_intervals(fits, bayes):
    fig = plot_fixed_intervals(compare(fits[0], bayes), truth={"beta[x]": 0.5})
    assert len(_labelled(fig)) == 2


def test_variance_components(fits, bayes):
    fig = plot_variance_components(fits[0], bayes)
    axes = _labelled(fig)
    assert len(axes) == 2
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "marginal posterior" in labels and "prior" in labels
    assert any("profile" in t for t in labels)


def test_covariance_heat_map_is_compound_symmetry(fits):
    from workbench.reml.gls import build_V

    reml = fits[0]
    V = compound_symmetry_V(reml.design.terms[0].codes, reml.varcorr[0]["sdcor"], reml.sigma)
    np.testing.assert_allclose(build_V(reml), V, rtol=1e-12, atol=1e-12)
    fig = plot_covariance(*fits)
    assert len(_labelled(fig)) == 2


def test_profile_and_prior_figures():
    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    fig = plot_profile_posterior([(f, "eight schools")])
    assert len(_labelled(fig)) == 1
    fig = plot_prior_sensitivity(f)
    axes = _labelled(fig)
    assert len(axes[1].get_legend().get_texts()) == 5  # four priors + the REML estimate


def test_make_report_figures_writes_png_and_pdf(tmp_path):
    files = make_report_figures(tmp_path, bayes=False, only=[6])
    assert sorted(f.name for f in files) == ["fig6_covariance_V.pdf", "fig6_covariance_V.png"]


def test_report_figures_read_the_built_in_data(tmp_path):
    """Figures 5 and 7 fit radon and eight schools from workbench.datasets (nothing outside the repo)."""
    files = make_report_figures(tmp_path, bayes=False, only=[5, 7], formats=("png",))
    assert sorted(f.name for f in files) == ["fig5_profile_vs_posterior.png", "fig7_prior_sensitivity.png"]


def test_shrinkage_known_sd_uses_standard_errors():
    from workbench.reml.fit import assemble_fit

    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    g = assemble_fit(f.state.system, np.array([6.0]))
    axes = _labelled(plot_shrinkage(g))
    assert "standard error" in axes[0].get_xlabel()
    # the BLUP/raw points lie on the drawn curve tau^2 / (tau^2 + s_j^2)
    pts = axes[1].collections[0].get_offsets()
    np.testing.assert_allclose(pts[:, 1], 36.0 / (36.0 + pts[:, 0] ** 2), rtol=1e-8)


def test_saved_figures_are_byte_reproducible(tmp_path, fits):
    """The same figure saved twice (here and in a fresh process) gives the same bytes: no date,
    no version in the metadata."""
    import subprocess
    import sys

    style.save(plot_shrinkage(fits[0]), tmp_path / "a")
    style.save(plot_shrinkage(fits[0]), tmp_path / "b")
    code = ("import matplotlib; matplotlib.use('Agg'); import sys, workbench; "
            "from workbench.plots import plot_shrinkage, style; "
            "from workbench.plots.report import small_data; "
            "style.save(plot_shrinkage(workbench.fit('y ~ 1 + x + (1 | g)', small_data())), "
            "sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], check=True)
    for fmt in ("pdf", "png"):
        a, b, c = ((tmp_path / f"{s}.{fmt}").read_bytes() for s in "abc")
        assert a == b == c, fmt
    assert b"CreationDate" not in a and b"Matplotlib" not in (tmp_path / "a.pdf").read_bytes()


def test_caterpillar_panels_and_labels_beyond_40_levels():
    """A panel per grouping factor and term; level names beyond 40 levels; legend off the data."""
    sleep = datasets.load("sleepstudy")
    fig = plot_caterpillar(workbench.fit("Reaction ~ Days + (Days | Subject)", sleep))
    assert [a.get_title() for a in _labelled(fig)] == ["Subject: intercept", "Subject: 'Days'"]
    pen = datasets.load("Penicillin")
    fig = plot_caterpillar(workbench.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", pen))
    assert len(_labelled(fig)) == 2 and fig.legends and not any(a.get_legend() for a in fig.axes)
    radon = datasets.load("radon")
    ax = _labelled(plot_caterpillar(workbench.fit("log_radon ~ floor + (1 | county)", radon)))[0]
    assert len([t for t in ax.get_yticklabels() if t.get_text()]) == 85


def test_shrinkage_on_a_balanced_design_keeps_levels_together():
    """Penicillin (6 rows per plate): levels side by side in raw-effect order, each level's raw
    effect, BLUP and posterior mean on one vertical, level names on the axis."""
    pen = datasets.load("Penicillin")
    fit = workbench.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    ax = _labelled(plot_shrinkage(fit))[0]
    xs = [np.sort(c.get_offsets()[:, 0]) for c in ax.collections if len(c.get_offsets()) == 24]
    assert len(xs) == 2 and np.array_equal(xs[0], xs[1]) and np.array_equal(xs[0], np.arange(24))
    assert len([t for t in ax.get_xticklabels() if t.get_text()]) == 24


def test_shrinkage_panels_cover_every_factor_and_slope():
    """One panel per grouping factor and term: sleepstudy's intercept and Days slope,
    Penicillin's two crossed factors."""
    import workbench
    from workbench import datasets
    from workbench.plots import plot_shrinkage_panels

    cases = [("Reaction ~ Days + (Days | Subject)", "sleepstudy",
              ["(a) Subject: (Intercept), 18 levels", "(b) Subject: Days, 18 levels"]),
             ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin",
              ["(a) plate: (Intercept), 24 levels", "(b) sample: (Intercept), 6 levels"])]
    for formula, name, titles in cases:
        fig = plot_shrinkage_panels(workbench.fit(formula, datasets.load(name)))
        shown = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        assert shown == titles
        # every level has its BLUP drawn
        for ax, title in zip(fig.axes, titles):
            n = int(title.split(", ")[1].split()[0])
            assert any(len(c.get_offsets()) == n for c in ax.collections)
