"""One figure style for the whole workbench: Okabe-Ito colours, readable fonts, atomic saving.

The Okabe & Ito (2008) palette stays distinguishable under the common colour-vision
deficiencies.  Each estimation method and interval kind has one fixed colour and marker, so a
reader can match them across figures.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

FILE_BACKENDS = ("agg", "pdf", "svg", "cairo")


def use_file_backend() -> None:
    """Switch matplotlib to Agg unless its backend already draws to files.

    Jobs and study figures write files and must not open windows (or fail without a display);
    a session already on a file backend (Agg, PDF, SVG, Cairo) keeps it.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in FILE_BACKENDS:
        matplotlib.use("Agg")


OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#7F7F7F",
}

#: colour of each method / interval kind / reference quantity.
COLORS = {
    "reml": OKABE_ITO["blue"],
    "wald": OKABE_ITO["blue"],
    "conditional": OKABE_ITO["blue"],
    "ml": OKABE_ITO["sky"],
    "profile": OKABE_ITO["green"],
    "bootstrap": OKABE_ITO["orange"],
    "bayes": OKABE_ITO["vermillion"],
    "fgls": OKABE_ITO["purple"],
    "igls": OKABE_ITO["yellow"],
    "rigls": OKABE_ITO["black"],
    "credible": OKABE_ITO["vermillion"],
    "prior": OKABE_ITO["purple"],
    "raw": OKABE_ITO["grey"],
    "truth": OKABE_ITO["black"],
    "theory": OKABE_ITO["black"],
}
MARKERS = {"reml": "o", "wald": "o", "conditional": "o", "ml": "s", "profile": "D",
           "bootstrap": "^", "bayes": "v", "credible": "v", "raw": "x", "fgls": "P",
           "igls": "X", "rigls": "d"}
#: a cycle for anything without a fixed colour (e.g. several priors).
CYCLE = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky",
                                 "yellow", "black")]

LABELS = {
    "reml": "REML", "ml": "ML", "bayes": "Bayes", "fgls": "FGLS", "igls": "IGLS",
    "rigls": "RIGLS", "wald": "Wald", "profile": "profile",
    "bootstrap": "bootstrap", "credible": "credible", "conditional": "BLUP ± 1.96 cond. sd",
    "none": "no interval",
}

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
}


def color(key: str, default: str | None = None) -> str:
    """Colour of a method or interval kind (``"reml"``, ``"credible"``, ...)."""
    base = str(key).split("#")[0].lower()
    return COLORS.get(base, default or OKABE_ITO["grey"])


def label(key: str) -> str:
    """Display name of a method or interval kind."""
    base = str(key).split("#")[0].lower()
    return LABELS.get(base, str(key))


@contextlib.contextmanager
def context():
    """``with style.context():`` draws with the workbench style (Agg-safe)."""
    import matplotlib.pyplot as plt
    from cycler import cycler

    with plt.rc_context({**RC, "axes.prop_cycle": cycler(color=CYCLE)}):
        yield


# No date, no version: a file changes only when what it draws changes.
FIXED_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": "workbench",
            "Creator": "workbench"},
    "svg": {"Date": None, "Creator": "workbench"},
}


def save(fig, path_stem, formats=("png", "pdf")) -> list[Path]:
    """Save a figure as ``path_stem.<fmt>`` for each format, each file replaced atomically.

    Byte-reproducible: the metadata are fixed (:data:`FIXED_METADATA`: no creation date, no
    matplotlib version), so the same figure gives the same bytes on every run.

    Returns
    -------
    list of Path
    """
    import matplotlib.pyplot as plt

    from ..io import atomic_write

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        meta = FIXED_METADATA.get(fmt, {})
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, metadata=meta))
        out.append(path)
    plt.close(fig)
    return out
