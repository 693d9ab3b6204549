"""Side-by-side tables of any number of fits: ``workbench.compare(*fits)``.

Three tidy tables (one row per quantity and method):

``parameters``
    every parameter (``beta[...]``, ``sd[...]``, ``cor[...]``, ``sigma``, and a residual
    structure's ``corstruct[Rho]``, ``varstruct[power]``, ... under nlme's names): estimate, se,
    lower, upper, the interval kind (``wald``, ``profile``, ``bootstrap``, ``credible``) and the
    likelihood it comes from (``REML``, ``ML``, ``ML deviance`` for a profile, as lme4's
    ``confint`` refits a REML fit by ML; ``posterior``; ``FGLS``, ``ML (IGLS)``,
    ``REML (RIGLS)`` for the other GLS traditions' Wald intervals): :func:`interval_label`.
``group_effects``
    every group effect: the group size, the raw (no-pooling) effect, the estimate (BLUP or
    posterior mean), its conditional or posterior sd, an interval (BLUP +- 1.96 conditional sd,
    or the posterior interval) and, for a scalar random intercept, the shrinkage factor
    ``k_j = n_j sigma_a^2 / (n_j sigma_a^2 + sigma^2)`` implied by that method's estimates.
``variance_components``
    the ``sd``/``cor``/``sigma`` rows with the variance beside the sd.

Each exports to CSV, Markdown and LaTeX; :func:`workbench.jobs.compare_and_write` fits a model
every way and writes the tables and figures to a directory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import WorkbenchError
from .io import atomic_write_text
from . import names
from .record import Fit

PARAM_COLUMNS = ["parameter", "method", "estimate", "se", "lower", "upper", "interval",
                 "likelihood"]
GROUP_COLUMNS = ["group", "term", "level", "n", "raw", "method", "estimate", "sd", "lower",
                 "upper", "interval", "shrinkage"]
VC_COLUMNS = ["parameter", "method", "estimate", "variance", "lower", "upper", "interval",
              "likelihood"]
TABLES = ("parameters", "group_effects", "variance_components")
FORMATS = ("csv", "md", "tex")
Z95 = 1.959963984540054

_KIND_NAMES = {"wald": "Wald", "profile": "profile-likelihood",
               "bootstrap": "parametric-bootstrap percentile", "credible": "equal-tailed credible",
               "conditional": "BLUP +- 1.96 conditional sd"}


#: The likelihood (or estimator) behind a method's own Wald standard errors.
_OWN_LIKELIHOOD = {"reml": "REML", "ml": "ML", "fgls": "FGLS", "igls": "ML (IGLS)",
                   "rigls": "REML (RIGLS)"}


def interval_likelihood(method: str | None, kind: str) -> str:
    """The likelihood an interval of kind ``kind`` of a ``method`` fit comes from.

    Wald intervals use the fit's own likelihood (``REML`` or ``ML``); profile intervals are on
    the ML deviance for both (lme4's ``confint(method = "profile")`` refits a REML fit by ML;
    :func:`workbench.profile_ci`), so a REML and an ML fit show the same profile intervals;
    feasible GLS's Wald intervals use plm's covariance (``FGLS``), IGLS's and RIGLS's the GLS
    covariance at their fixed point (``ML (IGLS)``, ``REML (RIGLS)``);
    a parametric bootstrap refits simulated data by the fit's own method; credible intervals
    are posterior quantiles.
    """
    own = _OWN_LIKELIHOOD.get(method or "", "")
    if kind == "profile":
        return "ML deviance (REML fit refitted by ML, as lme4)" if method == "reml" else "ML deviance"
    if kind == "wald":
        return own
    if kind == "bootstrap":
        return f"{own} refits" if own else "refits"
    if kind in ("credible", "conditional"):
        return "posterior" if kind == "credible" else own
    return ""


def interval_label(kind: str, likelihood: str = "") -> str:
    """``"profile-likelihood 95% interval on the ML deviance (...)"``: an interval by its kind
    and its likelihood, for table notes and figure legends."""
    name = _KIND_NAMES.get(kind, kind)
    if not likelihood:
        return f"{name} 95% intervals"
    if likelihood == "posterior":
        return f"{name} 95% intervals (posterior quantiles)"
    if kind == "profile":
        return f"{name} 95% intervals on the {likelihood}"
    if kind == "wald":
        return f"{name} 95% intervals, {likelihood} standard errors"
    return f"{name} 95% intervals, {likelihood}"


@dataclass
class Comparison:
    """The tables of :func:`compare`.

    Attributes
    ----------
    parameters, group_effects, variance_components : DataFrame
        Tidy tables (see the module docstring).
    methods : list of str
        Method labels in the order the fits were given.
    """

    parameters: pd.DataFrame
    group_effects: pd.DataFrame
    variance_components: pd.DataFrame
    methods: list

    def tables(self) -> dict:
        """``{name: DataFrame}`` of the three tables."""
        return {name: getattr(self, name) for name in TABLES}

    def side_by_side(self, digits: int = 3) -> pd.DataFrame:
        """Parameters as rows, methods as columns, cells ``estimate [lower, upper]``."""
        p = self.parameters
        # one column per method; a method with several interval kinds (a fit plus its profile
        # or bootstrap table) gets one more column per extra kind, "reml (profile)"
        kinds: dict = {}
        for m, k in zip(p["method"], p["interval"]):
            if k != "none" and k not in kinds.setdefault(m, []):
                kinds[m].append(k)
        columns = []
        for m in self.methods:
            ks = kinds.get(m, [])
            columns += [m] + [f"{m} ({k})" for k in ks[1:]]
        cells = {}
        for _, r in p.iterrows():
            m, k = r["method"], r["interval"]
            col = m if k == "none" or not kinds.get(m) or k == kinds[m][0] else f"{m} ({k})"
            est = _num(r["estimate"], digits)
            if _finite(r["lower"]) and _finite(r["upper"]):
                est += f" [{_num(r['lower'], digits)}, {_num(r['upper'], digits)}]"
            row = cells.setdefault(r["parameter"], {})
            if col not in row or k != "none":
                row[col] = est
        order = list(dict.fromkeys(p["parameter"]))
        wide = pd.DataFrame.from_dict(cells, orient="index").reindex(index=order)
        wide = wide.reindex(columns=[c for c in columns if c in wide.columns]).fillna("")
        wide.index.name = "parameter"
        return wide.reset_index()

    def interval_notes(self) -> list[str]:
        """One line per column of :meth:`side_by_side`: which interval it shows, on which
        likelihood (``"reml (profile): profile-likelihood 95% intervals, ML deviance (...)"``)."""
        p = self.parameters[self.parameters["interval"] != "none"]
        first: dict = {}
        notes = []
        for m, k, lik in dict.fromkeys(zip(p["method"], p["interval"], p["likelihood"].fillna(""))):
            col = m if first.setdefault(m, k) == k else f"{m} ({k})"
            notes.append(f"{col}: {interval_label(k, lik)}")
        return notes

    def to_markdown(self, table: str = "parameters", digits: int = 4) -> str:
        """One table as GitHub Markdown (the side-by-side table with its interval notes)."""
        text = format_markdown(self._table(table), digits)
        if table == "side_by_side":
            text = text.rstrip("\n") + "\n\n" + "\n".join(f"- {n}" for n in self.interval_notes()) + "\n"
        return text

    def to_latex(self, table: str = "parameters", digits: int = 4) -> str:
        """One table as a LaTeX ``tabular`` (booktabs rules)."""
        return format_latex(self._table(table), digits)

    def write(self, out_dir, formats=FORMATS, digits: int = 4) -> list[Path]:
        """Write every table in every format to ``out_dir``; each file is replaced atomically.

        Returns
        -------
        list of Path
            The files written (``parameters.csv``, ``parameters.md``, ...; also
            ``side_by_side.*``).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise WorkbenchError(f"unknown table format(s) {sorted(unknown)}; use {FORMATS}")
        written = []
        frames = dict(self.tables(), side_by_side=self.side_by_side())
        for name, df in frames.items():
            for fmt in formats:
                if fmt == "csv":
                    text = df.to_csv(index=False)
                elif fmt == "md":
                    text = (self.to_markdown(name, digits) if name == "side_by_side"
                            else format_markdown(df, digits))
                else:
                    text = format_latex(df, digits)
                path = out / f"{name}.{fmt}"
                atomic_write_text(path, text)
                written.append(path)
        return written

    def _table(self, name: str) -> pd.DataFrame:
        if name == "side_by_side":
            return self.side_by_side()
        if name not in TABLES:
            raise WorkbenchError(f"unknown table '{name}'; choose one of {', '.join(TABLES)}")
        return getattr(self, name)

    def __str__(self) -> str:
        return self.to_markdown("side_by_side", 4)

    def _repr_html_(self) -> str:
        from .html import comparison_html

        return comparison_html(self)


# --------------------------------------------------------------------------- compare
def _warn_if_different_data(fits: list) -> None:
    """Warn when fits were made to different responses (other rows, or other values)."""
    import warnings

    base = next((f for f in fits if getattr(f, "design", None) is not None), None)
    if base is None:
        return
    y0 = np.asarray(base.design.y)
    for f in fits:
        if f is base or getattr(f, "design", None) is None:
            continue
        y = np.asarray(f.design.y)
        if y.shape != y0.shape or not np.array_equal(y, y0, equal_nan=True):
            what = (f"{y0.size} and {y.size} rows" if y.shape != y0.shape
                    else "the same number of rows, other responses")
            warnings.warn(f"compare: the fits '{base.label or base.method}' and "
                          f"'{f.label or f.method}' are to different data ({what}); their "
                          "estimates are not of the same quantities", stacklevel=3)
            return


def compare(*fits) -> Comparison:
    """Stack any number of fits into side-by-side tidy tables.

    Parameters
    ----------
    *fits : Fit or DataFrame
        REML, ML, feasible-GLS, IGLS/RIGLS or Bayesian fits, with or without a residual
        correlation structure (labels from :func:`display_name`; repeated labels get ``#2``,
        ``#3``); a residual structure's parameters come in as ``corstruct[NAME]`` /
        ``varstruct[NAME]`` rows with the fit's interval for them.  A DataFrame with the columns ``parameter, method,
        estimate, lower, upper, interval`` (e.g. profile or bootstrap intervals) is added to
        the parameters and variance-components tables as it is.

    Returns
    -------
    Comparison

    Raises
    ------
    WorkbenchError
        With no fits, or with an argument that is neither a Fit nor such a table.
    """
    if not fits:
        raise WorkbenchError("compare needs at least one fit")
    _warn_if_different_data([f for f in fits if isinstance(f, Fit)])
    params, groups, methods = [], [], []
    seen: dict[str, int] = {}
    for obj in fits:
        if isinstance(obj, pd.DataFrame):
            missing = {"parameter", "method", "estimate", "lower", "upper", "interval"} - set(obj)
            if missing:
                raise WorkbenchError(f"an interval table passed to compare lacks {sorted(missing)}")
            extra = obj.reindex(columns=PARAM_COLUMNS)
            if "likelihood" not in obj:
                extra["likelihood"] = [interval_likelihood(None, k) for k in extra["interval"]]
            params.append(extra)
            for m in extra["method"]:
                if m not in methods:
                    methods.append(m)
            continue
        if not isinstance(obj, Fit):
            raise WorkbenchError(f"compare takes Fit objects, not {type(obj).__name__}")
        name = display_name(obj)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        methods.append(name)
        p, extra = obj.params(), structure_params(obj)
        if not extra.empty:
            p = pd.concat([p, extra], ignore_index=True)
        p["method"] = name
        p["likelihood"] = [interval_likelihood(obj.method, k) for k in p["interval"]]
        params.append(p.reindex(columns=PARAM_COLUMNS))
        groups.append(group_effects(obj, name))
    parameters = pd.concat(params, ignore_index=True)
    no_interval = parameters["lower"].isna() & parameters["upper"].isna()
    parameters.loc[no_interval, "interval"] = "none"
    parameters.loc[no_interval, "likelihood"] = ""
    parameters = _order_parameters(parameters)
    kinds = parameters["parameter"].map(names.kind)
    vc = parameters[kinds != "beta"].copy()
    on_sd_scale = kinds[vc.index].isin(["sd", "sigma"])
    vc["variance"] = np.where(on_sd_scale, vc["estimate"] ** 2, np.nan)
    variance_components = vc.reindex(columns=VC_COLUMNS).reset_index(drop=True)
    ge = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(columns=GROUP_COLUMNS)
    return Comparison(parameters, ge, variance_components, methods)


def display_name(fit: Fit) -> str:
    """A fit's column label: ``fit.label``; else the method, followed by its residual
    structures when it has any (``"reml cs"``, ``"ml ar1 power"``), so that nlme's GLS and the
    random-effects fit by the same method get distinct columns."""
    if fit.label:
        return fit.label
    diag = fit.diagnostics or {}
    kinds = [str(diag[e].get("structure", e)) for e in names.STRUCTURES
             if isinstance(diag.get(e), dict)]
    return " ".join([fit.method, *kinds])


_STRUCTURE_META = ("structure", "form", "groups", "interval", "intervals", "level")


def structure_params(fit: Fit) -> pd.DataFrame:
    """A fit's residual-structure parameters as rows of :meth:`Fit.params`.

    Read from ``fit.diagnostics["corstruct"]`` and ``["varstruct"]``: each numeric entry (or
    each entry of a dict of numbers, ``NAME[KEY]``) other than the descriptive ones
    (``structure``, ``form``, ``groups``) is a parameter under nlme's name; its interval is
    ``intervals[NAME]`` when given, or ``interval`` for a structure with one parameter
    (nlme's ``intervals()``: Wald on the unconstrained scale, mapped back).
    """
    cols = ["parameter", "method", "estimate", "se", "lower", "upper", "interval"]
    rows = []
    diag = fit.diagnostics or {}
    for entry in names.STRUCTURES:
        info = diag.get(entry)
        if not isinstance(info, dict):
            continue
        per = info.get("intervals") if isinstance(info.get("intervals"), dict) else {}
        values = {}
        if per:  # every fitter names its parameters there
            values = {k: info[k] for k in per if _is_number(info.get(k))}
        else:
            for key, v in info.items():
                if key in _STRUCTURE_META:
                    continue
                if isinstance(v, dict):
                    values.update({f"{key}[{k}]": x for k, x in v.items() if _is_number(x)})
                elif _is_number(v):
                    values[key] = v
        one = info.get("interval") if len(values) == 1 else None
        bayes = fit.method == "bayes"  # posterior mean, sd and credible interval
        se = float(info["sd"]) if bayes and len(values) == 1 and _is_number(info.get("sd")) \
            else math.nan
        for key, v in values.items():
            ci = per.get(key, one) or [math.nan, math.nan]
            rows.append((names.structure(entry, key), fit.name, float(v), se,
                         float(ci[0]) if ci[0] is not None else math.nan,
                         float(ci[1]) if ci[1] is not None else math.nan,
                         "credible" if bayes else "wald"))
    return pd.DataFrame(rows, columns=cols)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _order_parameters(df: pd.DataFrame) -> pd.DataFrame:
    """Parameter-major order (first appearance), methods in the order given."""
    order = {p: i for i, p in enumerate(dict.fromkeys(df["parameter"]))}
    key = df["parameter"].map(order)
    return df.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)


# --------------------------------------------------------------------------- group effects
def group_effects(fit: Fit, method: str | None = None) -> pd.DataFrame:
    """The group-effects table of one fit (columns ``GROUP_COLUMNS``).

    ``raw`` is the no-pooling effect: per level, the least-squares coefficients of the
    fixed-effects residual ``y - X beta`` on the term's columns (weighted by ``1/s_i^2`` with
    known sds); NaN where a level has too few distinct rows.  ``shrinkage`` is filled for a
    grouping factor with a single scalar term (the random-intercept case), where
    ``estimate = shrinkage * raw`` holds exactly for a REML/ML fit.
    """
    method = method or fit.name
    rf = pd.DataFrame(fit.ranef)
    if rf.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    rf = rf.rename(columns={"value": "estimate", "cond_sd": "sd"})
    if "lower" not in rf or rf["lower"].isna().all():
        rf["lower"] = rf["estimate"] - Z95 * rf["sd"]
        rf["upper"] = rf["estimate"] + Z95 * rf["sd"]
        rf["interval"] = "conditional"
    else:
        rf["interval"] = "credible"
    rf["method"] = method
    rf["level"] = rf["level"].astype(str)
    raw, sizes, shrink = _raw_and_shrinkage(fit)
    key = list(zip(rf["group"], rf["term"], rf["level"]))
    rf["n"] = [sizes.get((g, lev), np.nan) for g, _, lev in key]
    rf["raw"] = [raw.get(k, np.nan) for k in key]
    rf["shrinkage"] = [shrink.get(k, np.nan) for k in key]
    return rf.reindex(columns=GROUP_COLUMNS)


def _variances(fit: Fit) -> tuple[dict, float | None]:
    """``{(group, term): sd}`` for the scalar-term groups and the residual sd of a fit."""
    sds, ncols = {}, {}
    for r in fit.varcorr:
        if r["grp"] == "Residual":
            continue
        g = names.base_group(r["grp"])
        if r.get("var2") is None:
            sds[(g, r["var1"])] = r["sdcor"]
            ncols[g] = ncols.get(g, 0) + 1
    scalar = {k: v for k, v in sds.items() if ncols[k[0]] == 1}
    return scalar, fit.sigma


def _raw_and_shrinkage(fit: Fit):
    design = fit.design
    if design is None:
        return {}, {}, {}
    beta = np.array([fit.beta.get(k, 0.0) for k in design.fixed_names])
    resid = design.y_work - design.X @ beta
    w = np.ones_like(resid) if design.known_sd is None else 1.0 / design.known_sd**2
    if design.weights is not None:
        w = w * design.weights
    scalar_sd, sigma = _variances(fit)
    raw, sizes, shrink = {}, {}, {}
    for t in design.terms:
        L = t.nlevels
        counts = np.bincount(t.codes, minlength=L)
        for j, lev in enumerate(t.levels):
            sizes[(t.group, lev)] = int(counts[j])
        # per-level weighted least squares of resid on the term's columns
        ZtZ = np.zeros((L, t.q, t.q))
        np.add.at(ZtZ, t.codes, t.Z[:, :, None] * t.Z[:, None, :] * w[:, None, None])
        Zty = np.zeros((L, t.q))
        np.add.at(Zty, t.codes, t.Z * (w * resid)[:, None])
        for j, lev in enumerate(t.levels):
            A = ZtZ[j]
            if np.linalg.matrix_rank(A) == t.q:
                coef = np.linalg.solve(A, Zty[j])
            else:
                coef = np.full(t.q, np.nan)
            for k, col in enumerate(t.columns):
                raw[(t.group, col, lev)] = float(coef[k])
        only = len([u for u in design.terms if u.group == t.group]) == 1 and len(design.terms) == 1
        if t.q == 1 and only and (t.group, t.columns[0]) in scalar_sd:
            sa2 = scalar_sd[(t.group, t.columns[0])] ** 2
            # information of a level's effect: sum_i z_i^2 w_i / sigma^2
            info = ZtZ[:, 0, 0] / (1.0 if sigma is None else sigma**2)
            k = sa2 * info / (1.0 + sa2 * info)
            for j, lev in enumerate(t.levels):
                shrink[(t.group, t.columns[0], lev)] = float(k[j])
    return raw, sizes, shrink


def shrinkage_factor(n, sd_group: float, sigma: float):
    """Theoretical shrinkage factor ``n sd^2 / (n sd^2 + sigma^2)`` of a random intercept."""
    n = np.asarray(n, dtype=float)
    return n * sd_group**2 / (n * sd_group**2 + sigma**2)


# --------------------------------------------------------------------------- formatting
def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _num(x, digits: int) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "" if math.isnan(v) else str(v)
    return f"{v:.{digits}g}" if abs(v) >= 10 ** (digits + 1) or (v != 0 and abs(v) < 1e-3) \
        else f"{v:.{digits}f}"


def _cells(df: pd.DataFrame, digits: int) -> list[list[str]]:
    return [[x if isinstance(x, str) else _num(x, digits) for x in row]
            for row in df.itertuples(index=False)]


def format_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (numbers right-aligned)."""
    header = [str(c) for c in df.columns]
    rows = [[c.replace("|", "\\|") for c in r] for r in _cells(df, digits)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(
            (c.rjust(w) if num else c.ljust(w)) for c, w, num in zip(cells, widths, numeric)
        ) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                         for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows]) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def format_latex(df: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a LaTeX ``tabular`` with booktabs rules (needs ``\\usepackage{booktabs}``)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(latex_escape(c) for c in df.columns) + r" \\", "\\midrule"]
    for r in _cells(df, digits):
        lines.append(" & ".join(latex_escape(c) for c in r) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


__all__ = ["compare", "Comparison", "group_effects", "display_name", "structure_params", "shrinkage_factor", "interval_label",
           "interval_likelihood",
           "format_markdown", "format_latex"]
