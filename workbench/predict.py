"""Predictions of a fit on new data, as lme4's ``predict.merMod`` and bambi's ``predict``.

For a REML/ML fit the prediction of row i is

    eta_i = x_i' beta + o_i + sum_t z_ti' b_t[level_ti],

with the BLUPs b (conditional, ``re_form=None``), only the terms of ``re_form``, or none
(marginal, ``re_form="~0"``, lme4's ``re.form = NA``).  A level of a grouping factor the fit has
not seen contributes 0 (the population level), and only when ``allow_new_levels=True``, as lme4.

For a Bayesian fit every posterior draw s gives eta_i^(s) from beta^(s) and b^(s); a new level
gets b ~ N(0, G^(s)), drawn from the fitted distribution of that draw; ``kind="draws"`` adds the
residual noise sigma^(s) e (posterior predictive draws), ``kind="mean"`` returns their mean.

New data go through the fit's own design machinery: the model frame is evaluated on the fit's
rows stacked over the new ones (:func:`workbench.design.evaluate`), so factor levels, contrasts
and offsets are the fit's, and the fixed-effects columns of the fit's rows are checked to
reproduce the fit's X.  ``scale()`` and ``poly()`` take their centring and basis from the fit's
rows (R's ``makepredictcall``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import evaluate
from .errors import DataError, FormulaError, WorkbenchError
from .formula import parse_formula
from .contrasts import orthopoly
from .modelmatrix import Evaluator, Factor, Numeric, model_matrix
from .terms import deparse, expand_terms, names_in


@dataclass(frozen=True, eq=False)
class NewTerm:
    """One random-effects term on new rows: its group, columns, level labels and Z rows."""

    label: str
    group: str
    columns: tuple[str, ...]
    levels: np.ndarray  # object array of level labels (None for a missing level)
    Z: np.ndarray


@dataclass(frozen=True, eq=False)
class NewDesign:
    """The fixed and random design of new rows, built as the fit's design."""

    X: np.ndarray
    offset: np.ndarray
    terms: tuple[NewTerm, ...]
    missing: np.ndarray  # rows with a missing value in a variable the prediction needs


class _TrainedEvaluator(Evaluator):
    """An evaluator whose ``scale()`` and ``poly()`` are fitted on the first ``ntrain`` rows."""

    def __init__(self, data: pd.DataFrame, ntrain: int, what: str = "formula"):
        super().__init__(data, what)
        self.ntrain = ntrain

    def call(self, node):
        _, fname, args, kwargs = node
        kw = dict(kwargs)
        if fname == "scale" and len(args) == 1:
            x = self.numeric(args[0])
            tr = x[: self.ntrain]
            ok = ~np.isnan(tr)
            if kw.get("center", ("name", "TRUE"))[1] in ("TRUE", "T"):
                c = tr[ok].mean()
                x, tr = x - c, tr - c
            if kw.get("scale", ("name", "TRUE"))[1] in ("TRUE", "T"):
                s = np.sqrt((tr[ok] ** 2).sum() / (ok.sum() - 1))
                x = x / s
            return Numeric(x[:, None])
        raw = kw.get("raw")
        if fname == "poly" and 1 <= len(args) <= 2 and not (
                raw is not None and raw[0] == "name" and raw[1] in ("TRUE", "T")):
            x = self.numeric(args[0])
            deg = args[1] if len(args) == 2 else kw.get("degree", ("num", 1.0, "1"))
            degree = int(self.numeric(deg))
            tr = x[: self.ntrain]
            ok = ~np.isnan(tr)
            # the orthonormal columns are polynomials in (x - mean): Z = V(x - m) T
            m = tr[ok].mean()
            Ztr = orthopoly(tr[ok], degree)
            T, *_ = np.linalg.lstsq(np.vander(tr[ok] - m, degree + 1, increasing=True), Ztr,
                                    rcond=None)
            out = np.full((self.n, degree), np.nan)
            good = ~np.isnan(x)
            out[good] = np.vander(x[good] - m, degree + 1, increasing=True) @ T
            out[: self.ntrain][ok] = Ztr
            return Numeric(out, tuple(str(d) for d in range(1, degree + 1)))
        return super().call(node)


def _evaluate(spec, data: pd.DataFrame, ntrain: int, args: dict):
    """:func:`workbench.design.evaluate` with scale()/poly() fitted on the first rows."""
    return evaluate(spec, data, offset=args.get("offset"),
                    evaluator=lambda d, what="formula": _TrainedEvaluator(d, ntrain, what))


def _compact(v: Factor, rows: np.ndarray) -> Factor:
    """A factor with only the levels used on ``rows`` (the fit's rows), codes for all rows;
    a level not used there becomes -2."""
    used = np.unique(v.codes[rows][v.codes[rows] >= 0])
    remap = np.full(len(v.levels), -2)
    remap[used] = np.arange(used.size)
    codes = np.where(v.codes >= 0, remap[np.clip(v.codes, 0, None)], -1)
    return Factor(codes, tuple(v.levels[i] for i in used), v.ordered, v.contrast)


def _stack(fit, newdata: pd.DataFrame) -> pd.DataFrame:
    """The fit's rows over the new rows, in the columns the model reads (absent ones NaN)."""
    if not isinstance(newdata, pd.DataFrame):
        raise DataError("newdata must be a pandas DataFrame")
    train = fit.design.data
    if train is None:
        raise WorkbenchError("predictions on new data need the data the model was fitted to")
    new = pd.DataFrame(index=range(newdata.shape[0]))
    train = train.copy()
    lookup = {str(c): c for c in newdata.columns}
    for c in train.columns:
        col = (newdata[lookup[str(c)]].reset_index(drop=True) if str(c) in lookup
               else pd.Series(np.nan, index=new.index))
        if isinstance(train[c].dtype, pd.CategoricalDtype):
            # levels matched by their labels (as factor_of labels them): the fit's order first,
            # levels the fit has not seen after them
            cats = [str(v) for v in train[c].cat.categories]
            text = col.astype(str).where(col.notna())
            extra = [v for v in pd.unique(text.dropna()) if v not in set(cats)]
            dtype = pd.CategoricalDtype(cats + extra, ordered=train[c].cat.ordered)
            train[c] = train[c].astype(str).where(train[c].notna()).astype(dtype)
            col = text.astype(dtype)
        new[c] = col
    both = pd.concat([train.reset_index(drop=True), new], ignore_index=True)
    return both


def _random_subset(fit, re_form) -> set[int] | None:
    """Indices of the fit's random terms ``re_form`` keeps (None: all)."""
    spec = fit.design.spec
    if re_form is None:
        return None
    if re_form is False or (isinstance(re_form, float) and np.isnan(re_form)):
        return set()
    if not isinstance(re_form, str):
        raise FormulaError("re_form must be None, '~0' (or 'NA') or a one-sided formula")
    text = re_form.strip()
    if text in ("NA", "~0", "~ 0", "~-1", "~ -1") or re.fullmatch(r"~\s*0\s*", text):
        return set()
    if not text.startswith("~"):
        raise FormulaError(f"re_form '{re_form}' is not a one-sided formula such as '~ (1 | g)'")
    sub = parse_formula(".wbresponse " + text)
    have = {str(t): i for i, t in enumerate(spec.random)}
    keep = set()
    for t in sub.random:
        if str(t) not in have:
            raise FormulaError(f"re_form term ({t}) is not a random-effects term of the fit "
                               f"(terms: {', '.join('(' + k + ')' for k in have)})")
        keep.add(have[str(t)])
    return keep


def new_design(fit, newdata: pd.DataFrame, re_form=None) -> tuple[NewDesign, set | None]:
    """X, offset and random-effects rows of ``newdata`` as the fit's design would build them.

    Raises
    ------
    DataError
        A column the prediction needs is missing, a fixed factor has a level the fit has not
        seen, or the fit used an ``offset=`` column that ``newdata`` lacks.
    """
    design = fit.design
    spec = design.spec
    keep = _random_subset(fit, re_form)
    args = design.arguments or {}
    ntrain = design.n
    need = _fixed_variables(spec)
    for i, t in enumerate(spec.random):
        if keep is None or i in keep:
            need |= _random_variables(t)
    if args.get("offset"):
        need.add(args["offset"])
    have = {str(c) for c in newdata.columns} if isinstance(newdata, pd.DataFrame) else set()
    missing = sorted(c for c in need if c not in have and c not in ("pi", "T", "F", "TRUE", "FALSE"))
    if missing:
        raise DataError(f"newdata lacks the column(s) {', '.join(repr(m) for m in missing)} "
                        "the prediction needs")
    both = _stack(fit, newdata)
    frame = _evaluate(spec, both, ntrain, args)
    N = both.shape[0]
    train_rows = np.arange(ntrain)
    new_rows = np.arange(ntrain, N)
    bad = np.zeros(N, dtype=bool)
    labels = [_label(v) for v in frame.fixed.variables]

    def unseen_fixed(i, raw, v, unseen):
        lv = raw.levels[raw.codes[new_rows][unseen][0]]
        raise DataError(f"newdata has level '{lv}' of '{labels[i]}', which the fit has "
                        f"not seen (levels: {', '.join(v.levels)})")

    values = _fit_values(frame.fixed_values, train_rows, new_rows, bad, unseen_fixed)
    X_all, names = model_matrix(frame.fixed, values, N, args.get("contrasts"))
    idx = [names.index(nm) for nm in design.fixed_names]
    X_all = X_all[:, idx]
    if not np.allclose(X_all[:ntrain], design.X, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(design.X).max())):
        raise WorkbenchError("internal error: the design rebuilt for prediction does not "
                             "reproduce the fit's fixed-effects matrix")
    off = np.zeros(N) if frame.offset is None else np.asarray(frame.offset, dtype=float)
    if design.offset is not None and frame.offset is None:
        raise DataError("the fit has an offset the prediction cannot rebuild")
    bad |= np.isnan(off)
    terms = []
    for k, (t, rt, vals, g) in enumerate(frame.random):
        if keep is not None and k not in keep:
            continue
        def unseen_random(i, raw, v, unseen, rt=rt, t=t):
            raise DataError(f"newdata has a level of '{_label(rt.variables[i])}' in the "
                            f"random-effects term ({t}) that the fit has not seen")

        vv = _fit_values(vals, train_rows, new_rows, bad, unseen_random)
        Z, cols = model_matrix(rt, vv, N, args.get("contrasts"))
        lv = np.array([g.levels[c] if c >= 0 else None for c in g.codes[new_rows]], dtype=object)
        bad[new_rows] |= g.codes[new_rows] < 0
        label = design.terms[k].group
        terms.append(NewTerm(label, t.group, tuple(cols), lv, Z[ntrain:]))
    return NewDesign(X_all[ntrain:], off[ntrain:], tuple(terms), bad[ntrain:]), keep


def _label(node) -> str:
    return deparse(node)


def _fixed_variables(spec) -> set[str]:
    names: set[str] = set()
    tf = spec.fixed_terms
    for node in list(tf.variables) + list(tf.offsets):
        names |= set(names_in(node))
    return names


def _random_variables(t) -> set[str]:
    rt = expand_terms(t.expr)
    out = set(t.factors)
    for node in rt.variables:
        out |= set(names_in(node))
    return out


def _blup_table(fit) -> dict:
    """``{(group, term): {level: value}}`` from the fit's ``ranef`` rows."""
    out: dict = {}
    for r in fit.ranef:
        out.setdefault((r["group"], r["term"]), {})[str(r["level"])] = r["value"]
    return out


def predict(fit, newdata: pd.DataFrame | None = None, re_form=None,
            allow_new_levels: bool = False, kind: str = "mean", seed: int = 0):
    """Predictions of ``fit`` on ``newdata`` (default: the fit's data).

    Parameters
    ----------
    fit : Fit
    newdata : DataFrame, optional
        Rows to predict; the columns the formula's fixed part and the kept random terms read
        (not the response).  Default: the rows the model was fitted to.
    re_form : None, "~0" (or "NA") or str
        Random-effects terms to include: all (None, conditional on the BLUPs), none (marginal,
        lme4's ``re.form = NA``) or a one-sided formula of some of the fit's terms.
    allow_new_levels : bool
        Allow levels of a grouping factor the fit has not seen: their random effects are 0
        (REML/ML) or drawn from the fitted distribution (Bayes).  Otherwise such a level is an
        error naming it.
    kind : {"mean", "draws", "linpred"}
        Bayes only: the posterior mean of the linear predictor (``"mean"``), posterior
        predictive draws of the response (``"draws"``: draws x rows, residual noise included)
        or draws of the linear predictor (``"linpred"``).
    seed : int
        Bayes only: seed of the new-level and residual draws.

    Returns
    -------
    ndarray
        Shape (rows,) for REML/ML and ``kind="mean"``; (chains x draws, rows) otherwise.
        Rows with a missing value in a needed variable are NaN.
    """
    if kind not in ("mean", "draws", "linpred"):
        raise WorkbenchError(f"kind must be 'mean', 'draws' or 'linpred', not {kind!r}")
    if fit.method != "bayes" and kind != "mean":
        raise WorkbenchError(f"kind={kind!r} (posterior draws) needs a Bayesian fit; this fit "
                             f"is {fit.method}")
    if newdata is None:
        newdata = fit.design.data
    nd, keep = new_design(fit, newdata, re_form)
    if fit.method == "bayes":
        return _predict_bayes(fit, nd, allow_new_levels, kind, seed)
    beta = np.array([fit.beta[n] for n in fit.design.fixed_names])
    eta = nd.X @ beta + nd.offset
    blups = _blup_table(fit)
    for t in nd.terms:
        for j, col in enumerate(t.columns):
            table = blups.get((t.group, col), {})
            vals = np.array([table.get(lv, np.nan) if lv is not None else 0.0 for lv in t.levels])
            new = np.isnan(vals)
            if new.any():
                if not allow_new_levels:
                    raise DataError(_new_level_message(t, new))
                vals[new] = 0.0
            eta = eta + t.Z[:, j] * vals
    eta[nd.missing] = np.nan
    return eta


def _new_level_message(t: NewTerm, new: np.ndarray) -> str:
    lv = list(dict.fromkeys(str(v) for v in t.levels[new]))
    return (f"newdata has level(s) {', '.join(repr(v) for v in lv[:5])} of grouping factor "
            f"'{t.group}' that the fit has not seen; pass allow_new_levels=True to predict "
            "them at the population level")


def _predict_bayes(fit, nd: NewDesign, allow_new_levels: bool, kind: str, seed: int):
    from .bayes.draws import posterior_arrays

    state = fit.bayes_state("posterior predictions")
    arr = posterior_arrays(fit)
    rng = np.random.default_rng(seed)
    S = arr["beta"].shape[0]
    eta = arr["beta"] @ nd.X.T + nd.offset[None, :]
    blocks = {blk.group: (k, blk) for k, blk in enumerate(state.structure.blocks)}
    for t in nd.terms:
        k, blk = blocks[t.group]
        b = arr["b"][k]  # (S, levels, q)
        index = {lv: i for i, lv in enumerate(blk.levels)}
        codes = np.array([index.get(lv, -1) if lv is not None else -1 for lv in t.levels])
        new_lv = sorted({lv for lv, c in zip(t.levels, codes) if c < 0 and lv is not None})
        if new_lv and not allow_new_levels:
            raise DataError(_new_level_message(t, np.array([c < 0 and lv is not None
                                                            for lv, c in zip(t.levels, codes)])))
        if new_lv:  # one draw per new level and posterior draw, from N(0, G^(s))
            sd = arr["sd"][k]
            corr = arr["corr"][k]
            C = np.broadcast_to(np.eye(blk.q), (S, blk.q, blk.q)) if corr is None else corr
            G = sd[:, :, None] * C * sd[:, None, :]
            L = np.linalg.cholesky(G + 1e-300 * np.eye(blk.q))
            z = rng.standard_normal((S, len(new_lv), blk.q))
            bnew = np.einsum("sij,slj->sli", L, z)
            b = np.concatenate([b, bnew], axis=1)
            for m, lv in enumerate(new_lv):
                codes[np.array([x == lv for x in t.levels])] = blk.nlevels + m
        cols = [blk.columns.index(c) for c in t.columns]
        rows = np.flatnonzero(codes >= 0)
        eta[:, rows] += np.einsum("sri,ri->sr", b[:, codes[rows]][:, :, cols], t.Z[rows])
    eta[:, nd.missing] = np.nan
    if kind == "mean":
        return eta.mean(axis=0)
    if kind == "linpred":
        return eta
    if fit.design.known_sd is not None:
        raise WorkbenchError("posterior predictive draws on new data need the residual sd, "
                             "which a fit with known sds does not estimate")
    return eta + arr["sigma"][:, None] * rng.standard_normal(eta.shape)



def _fit_values(vals: dict, train_rows, new_rows, bad: np.ndarray, on_unseen) -> dict:
    """The evaluated variables of the stacked (fit + new) rows, coded as in the fit: factor levels
    the fit never saw call ``on_unseen(i, raw, compacted, mask)`` (which raises); rows with a
    missing value are marked in ``bad`` (in place) and given a placeholder code."""
    out = {}
    for i, v in vals.items():
        if isinstance(v, Factor):
            raw, v = v, _compact(v, train_rows)
            unseen = v.codes[new_rows] == -2
            if unseen.any():
                on_unseen(i, raw, v, unseen)
            bad |= v.codes < 0
            v = Factor(np.where(v.codes < 0, 0, v.codes), v.levels, v.ordered, v.contrast)
        elif isinstance(v, Numeric):
            bad |= np.isnan(v.values).any(axis=1)
        out[i] = v
    return out

__all__ = ["predict", "new_design", "NewDesign", "NewTerm"]
