"""Study figures: coverage bars stay within [0, 1]; condition labels do not overlap."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from workbench.study.figures import plot_measure  # noqa: E402


def _summary():
    rows = []
    for c in range(9):
        for p in ("beta[x]", "sd[g:(Intercept)]", "sigma", "var[Residual]"):
            rows.append({"condition": c, "groups": [30, 50, 100][c % 3],
                         "size": [5, 30, 50][c // 3], "parameter": p, "method": "reml",
                         "interval": "wald", "coverage": 0.995 if c == 0 else 0.01 if c == 1
                         else 0.95, "coverage_mcse": 0.02})
    return pd.DataFrame(rows)


def test_coverage_bars_are_clipped_and_labels_do_not_overlap():
    fig = plot_measure(_summary(), {"axes": ["groups", "size"], "name": "t"}, "coverage",
                       0.95, "coverage")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in (a for a in fig.axes if a.get_visible()):
        for coll in ax.collections:
            for seg in coll.get_segments():
                assert np.all(seg[:, 1] <= 1.0 + 1e-12) and np.all(seg[:, 1] >= -1e-12)
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()
                 if t.get_visible() and t.get_text()]
        for a, b in zip(boxes, boxes[1:]):
            assert a.x1 <= b.x0 + 0.5, "neighbouring tick labels overlap"
    # every column of panels has its condition labels (the last row is not full)
    labelled = [ax for ax in fig.axes if ax.get_visible()
                and any(t.get_text() for t in ax.get_xticklabels())]
    assert len(labelled) == 3
