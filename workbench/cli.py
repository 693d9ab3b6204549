"""The ``workbench`` command line.

Commands: ``fit``, ``simulate``, ``demo``, ``figures``, ``compare`` and the ``study`` group.
Every error a user can cause ends as one plain line ``error: <message>`` on stderr and a
non-zero exit (1 for bad input, 2 for a bad command line), with no traceback and no output file
left half-written (outputs are written atomically, after the work succeeded).  Unexpected
exceptions keep their traceback: they are bugs.

Start-up stays fast for REML-only commands: PyMC, ArviZ, matplotlib and dask are imported only
inside the commands that need them (check with ``python -X importtime -c "import workbench.cli"``).
"""

from __future__ import annotations

import json
import sys
import warnings
from enum import Enum
from pathlib import Path

import typer
import typer.core
from typer.exceptions import Abort, Exit, TyperException

from . import __version__
from .errors import CliError, Interrupted, WorkbenchError
from .options import (AUTO, FGLS_ESTIMATORS, METHODS, PARAMETERIZATIONS, RECONCILE_METHODS,
                      SAMPLERS)


# ---------------------------------------------------------------------------- lazy study group
class _WorkbenchGroup(typer.core.TyperGroup):
    """The root group; mounts ``study`` (``workbench.study.cli.study_app``) on first use.

    Importing the study commands (dask, pyarrow) only when ``study`` is asked for keeps
    ``workbench fit`` fast.
    """

    _study = None

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        return names + (["study"] if "study" not in names else [])

    def get_command(self, ctx, name):
        if name == "study" and "study" not in self.commands:
            return self._study_command()
        return super().get_command(ctx, name)

    @classmethod
    def _study_command(cls):
        if cls._study is None:
            from .study.cli import study_app

            cmd = typer.main.get_command(study_app)
            cmd.name = "study"
            cls._study = cmd
        return cls._study


app = typer.Typer(
    name="workbench",
    cls=_WorkbenchGroup,
    help="Fit the same hierarchical linear model by GLS/REML and by PyMC, and compare them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"workbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Fit the same hierarchical linear model by GLS/REML and by PyMC, and compare them."""


# ---------------------------------------------------------------------------- option types
# generated from workbench.options, so the command line offers what the fitters accept
Method = Enum("Method", {m: m for m in METHODS}, type=str)
FglsEstimator = Enum("FglsEstimator", {m: m for m in FGLS_ESTIMATORS}, type=str)
ReconcileMethod = Enum("ReconcileMethod", {m: m for m in RECONCILE_METHODS}, type=str)
Parameterization = Enum("Parameterization", {p: p for p in (AUTO,) + PARAMETERIZATIONS}, type=str)
Sampler = Enum("Sampler", {s: s for s in (AUTO,) + SAMPLERS}, type=str)


QUIET_HELP = "No progress feedback on stderr (shown only when stderr is a terminal)."


class Interval(str, Enum):
    wald = "wald"
    profile = "profile"
    bootstrap = "bootstrap"


# ---------------------------------------------------------------------------- helpers
def _info(message: str) -> None:
    """A status line on stderr (stdout stays for results)."""
    typer.echo(message, err=True)


def parse_priors(items: list[str] | None) -> dict[str, str]:
    """``["sd=HalfNormal(5)", "beta[x]=Normal(0, 1)"]`` -> ``{"sd": "HalfNormal(5)", ...}``.

    Raises
    ------
    CliError
        An item without ``=``, an empty key or distribution, or a key given twice.
    """
    priors: dict[str, str] = {}
    for item in items or []:
        key, eq, dist = item.partition("=")
        key, dist = key.strip(), dist.strip()
        if not eq or not key or not dist:
            raise CliError(f"--prior '{item}' must look like KEY=DIST, e.g. 'sd=HalfNormal(5)'")
        if key in priors:
            raise CliError(f"--prior given twice for '{key}'")
        priors[key] = dist
    return priors


def _write_text(path: str | Path, text: str) -> None:
    from .io import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise CliError(f"cannot write '{path}': {exc.strerror or exc}") from None


#: Fewer bootstrap replicates than this give percentile intervals too rough to use: a warning.
NBOOT_WARN = 200


def _check_nboot(nboot: int, level: float = 0.95) -> None:
    """Refuse a bootstrap too small to put a replicate beyond each percentile limit."""
    import math

    least = math.ceil(2 / (1 - level))
    if nboot < least:
        raise CliError(f"--nboot {nboot} is too few for {level:.0%} percentile intervals: "
                       f"at least {least} replicates (one beyond each limit), "
                       f"{NBOOT_WARN} or more for usable limits")
    if nboot < NBOOT_WARN:
        _info(f"warning: {nboot} bootstrap replicates give rough {level:.0%} percentile "
              f"intervals; use --nboot {NBOOT_WARN} or more")


def _apply_interval(fit, ci: Interval, nboot: int, seed: int | None):
    """A copy of a REML/ML fit carrying profile or bootstrap intervals instead of Wald ones."""
    if ci is Interval.wald:
        return fit
    from .reml.profile import with_intervals, with_profile_ci

    if ci is Interval.profile:
        return with_profile_ci(fit)
    from .reml.bootstrap import bootstrap

    seed = 0 if seed is None else seed
    _info(f"parametric bootstrap: {nboot} replicates, seed {seed}")
    result = bootstrap(fit, nboot, seed)
    if result.failures:
        _info(f"warning: {result.failures} of {nboot} bootstrap refits failed and were left out")
    return with_intervals(fit, result.ci(0.95), "bootstrap")


# ---------------------------------------------------------------------------- fit
@app.command()
def fit(
    formula: str = typer.Argument(..., metavar="FORMULA", help="lme4-style formula, e.g. 'y ~ 1 + x + (1 + x | g)'."),
    data: str = typer.Option(..., "--data", "-d", metavar="FILE|NAME",
                             help="Data file (CSV, .tsv or Parquet) or a built-in data set's name "
                                  "(workbench.datasets: sleepstudy, radon, ...); an existing file wins."),
    method: Method = typer.Option(Method.reml, "--method", "-m", help="Fitting method."),
    known_sd: str | None = typer.Option(None, "--known-sd", metavar="COL",
                                        help="Column of known residual sds (meta-analysis form)."),
    weights: str | None = typer.Option(None, "--weights", metavar="COL",
                                       help="Column of prior weights (residual variance sigma^2 / w)."),
    offset: str | None = typer.Option(None, "--offset", metavar="COL",
                                      help="Column added to the linear predictor with coefficient 1."),
    ci: Interval = typer.Option(Interval.wald, "--ci",
                                help="Interval kind for REML/ML fits."),
    nboot: int = typer.Option(1000, "--nboot", min=1, help="Bootstrap replicates for --ci bootstrap."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Random seed (bayes, bootstrap)."),
    draws: int | None = typer.Option(None, "--draws", min=1, help="Posterior draws per chain (bayes)."),
    tune: int | None = typer.Option(None, "--tune", min=1, help="Tuning steps per chain (bayes)."),
    chains: int | None = typer.Option(None, "--chains", min=1, help="Number of chains (bayes)."),
    target_accept: float | None = typer.Option(None, "--target-accept", min=0.0, max=1.0,
                                               help="NUTS target acceptance rate (bayes)."),
    prior: list[str] | None = typer.Option(None, "--prior", metavar="KEY=DIST",
                                           help="Prior, e.g. 'sd=HalfNormal(5)' (bayes; repeatable)."),
    parameterization: Parameterization | None = typer.Option(
        None, "--parameterization", help="Random-effects parameterisation (bayes)."),
    sampler: Sampler | None = typer.Option(None, "--sampler", help="NUTS implementation (bayes)."),
    json_out: str | None = typer.Option(None, "--json", metavar="PATH|-",
                                        help="Write the fit record as JSON ('-': stdout)."),
    fgls: FglsEstimator | None = typer.Option(
        None, "--fgls", help="Variance-component estimator of --method fgls (plm's names)."),
    correlation: str | None = typer.Option(
        None, "--correlation", metavar="STRUCT",
        help="Residual correlation as nlme writes it, e.g. 'cs(~ 1 | g)', 'ar1(~ t | g)' "
             "(REML/ML, with random-effects terms nlme::lme's correlation=; bayes: cs or "
             "ar1, prior key rho or phi)."),
    variance: str | None = typer.Option(
        None, "--variance", metavar="VARFUNC",
        help="Residual variance function as nlme writes it, 'ident(~ 1 | f)' or 'power(~ x)' "
             "(REML/ML; alone, with --correlation, or with random-effects terms)."),
) -> None:
    """Fit a linear mixed model and print a readable summary (or the record as JSON)."""
    import workbench

    options: dict = {}
    if fgls is not None:
        if method is not Method.fgls:
            raise CliError("--fgls applies only to --method fgls")
        options["fgls"] = fgls.value
    if correlation is not None:
        options["correlation"] = correlation
    if variance is not None:
        options["variance"] = variance
    if ci is not Interval.wald and method.value in ("fgls", "igls", "rigls"):
        raise CliError(f"--ci {ci.value} applies to --method reml or ml; a {method.value} fit "
                       "reports Wald intervals")
    bayes_only = {"--draws": ("draws", draws), "--tune": ("tune", tune), "--chains": ("chains", chains),
                  "--target-accept": ("target_accept", target_accept),
                  "--parameterization": ("parameterization",
                                         parameterization.value if parameterization else None),
                  "--sampler": ("sampler", sampler.value if sampler else None)}
    priors = parse_priors(prior)
    if method is Method.bayes:
        for key, value in bayes_only.values():
            if value is not None:
                options[key] = value
        if seed is not None:
            options["seed"] = seed
        if priors:
            options["priors"] = priors
        if ci is not Interval.wald:
            raise CliError("--ci applies to --method reml or ml; a Bayesian fit reports "
                           "credible intervals")
    else:
        given = [flag for flag, (_, value) in bayes_only.items() if value is not None]
        if priors:
            given.append("--prior")
        if seed is not None and ci is not Interval.bootstrap:
            given.append("--seed")
        if given:
            raise CliError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to "
                           f"--method bayes{' (or --ci bootstrap)' if '--seed' in given else ''}")

    if ci is Interval.bootstrap:
        _check_nboot(nboot)
    if json_out and json_out != "-":
        from .io import check_output_file

        check_output_file(json_out, "--json")
    from .datasets import load_or_read

    frame = load_or_read(data)
    columns = _given(weights=weights, offset=offset)
    result = workbench.fit(formula, frame, method=method.value, known_sd=known_sd, **columns,
                           **options)
    if method is not Method.bayes:
        result = _apply_interval(result, ci, nboot, seed)

    if json_out == "-":
        sys.stdout.write(result.to_json() + "\n")
        if method is Method.bayes:
            from .summary import bayes_warnings

            for w in bayes_warnings(result):
                _info(f"warning: {w}")
        return
    typer.echo(result.summary())
    if json_out:
        _write_text(json_out, result.to_json() + "\n")
        _info(f"wrote the fit record to {json_out}")


# ---------------------------------------------------------------------------- simulate
@app.command()
def simulate(
    design_file: str = typer.Argument(..., metavar="DESIGN.toml", help="Simulation design (TOML)."),
    seed: int = typer.Option(..., "--seed", min=0, help="Random seed."),
    out: str = typer.Option(..., "--out", "-o", metavar="FILE|-",
                            help="Output data file (.csv, .tsv or .parquet; '-': CSV on stdout)."),
    truth: str | None = typer.Option(None, "--truth", metavar="PATH",
                                     help="Also write the true parameter values as JSON."),
) -> None:
    """Simulate a data set from a design file."""
    path = Path(design_file)
    if not path.exists():
        raise CliError(f"design file '{design_file}' does not exist")
    if path.is_dir():
        raise CliError(f"design file '{design_file}' is a directory, not a file")
    from .io import check_output_file, check_write_suffix
    from .simulate import load_design
    from .simulate import simulate as simulate_data

    if out != "-":
        check_write_suffix(out)
        check_output_file(out)
    if truth:
        check_output_file(truth, "--truth")
    frame, true_values = simulate_data(load_design(path), seed)
    if out == "-":
        sys.stdout.write(frame.to_csv(index=False))
    else:
        from .io import write_data

        try:
            write_data(frame, out)
        except OSError as exc:
            raise CliError(f"cannot write '{out}': {exc.strerror or exc}") from None
        _info(f"wrote {len(frame)} rows to {out}")
    if truth:
        from .record import _jsonable

        _write_text(truth, json.dumps(_jsonable(true_values), indent=2) + "\n")
        _info(f"wrote the true values to {truth}")


@app.command()
def reconcile(
    base_file: str = typer.Argument(..., metavar="BASE.csv",
                                    help="Base forecasts: a series column, then one per horizon."),
    summing: str = typer.Option(..., "--summing", "-S", metavar="S.csv",
                                help="Summing matrix: a series column, then one 0/1 column per "
                                     "bottom series."),
    method: ReconcileMethod = typer.Option(ReconcileMethod.ols, "--method", "-m",
                                           help="The weights W of the GLS projection."),
    residuals: str | None = typer.Option(
        None, "--residuals", metavar="RES.csv",
        help="In-sample residuals (a series column, then one per period): wls_var, "
             "mint_sample, mint_shrink."),
    out: str = typer.Option("-", "--out", "-o", metavar="FILE|-",
                            help="Reconciled forecasts (.csv, .tsv or .parquet; '-': CSV on "
                                 "stdout)."),
) -> None:
    """Reconcile hierarchical forecasts: the GLS projection S (S' W^-1 S)^-1 S' W^-1 base."""
    from .gls.reconcile import reconcile_frames
    from .io import check_output_file, check_write_suffix, read_data

    if out != "-":
        check_write_suffix(out)
        check_output_file(out)
    frames = {what: read_data(path) for what, path in
              (("base", base_file), ("summing", summing), ("residuals", residuals)) if path}
    result = reconcile_frames(frames["base"], frames["summing"], method.value,
                              frames.get("residuals"))
    if out == "-":
        sys.stdout.write(result.to_csv(index=False))
        return
    from .io import write_data

    try:
        write_data(result, out)
    except OSError as exc:
        raise CliError(f"cannot write '{out}': {exc.strerror or exc}") from None
    _info(f"wrote {len(result)} reconciled series to {out}")


# ---------------------------------------------------------------------------- demo, figures, compare
@app.command()
def demo(
    out: Path | None = typer.Option(None, "--out", "-o", metavar="DIR",
                                    help="Directory for the data, tables and figures [default: demo-out]."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of the simulation and the sampler [default: 1]."),
    draws: int | None = typer.Option(None, "--draws", min=1, help="Posterior draws per chain."),
    tune: int | None = typer.Option(None, "--tune", min=1, help="Tuning steps per chain."),
    chains: int | None = typer.Option(None, "--chains", min=1, help="Number of chains."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Simulate a data set, fit it by REML, ML and PyMC, and write the side-by-side table and figures."""
    from . import jobs

    from .io import output_dir

    kwargs = _given(out_dir=out, seed=seed, draws=draws, tune=tune, chains=chains)
    with output_dir(out or Path("demo-out")), _feedback(quiet):  # run_demo's default out
        jobs.run_demo(progress=not quiet, **kwargs)


@app.command()
def figures(
    out: Path = typer.Option(Path("figures"), "--out", "-o", metavar="DIR",
                             help="Directory for the figures."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of the Bayesian fits [default: fixed]."),
    no_bayes: bool = typer.Option(False, "--no-bayes",
                                  help="Skip the PyMC fits (REML side and exact grid curves only)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Regenerate every report figure from fixed seeds."""
    from . import jobs

    kwargs = _given(seed=seed)
    if no_bayes:
        kwargs["bayes"] = False
    if quiet:
        kwargs["progress"] = False
    from .io import output_dir

    with output_dir(out), _feedback(quiet):
        files = jobs.make_report_figures(out, **kwargs)
    _info(f"wrote {len(files)} figure files to {out}" if files else f"wrote the figures to {out}")


def _feedback(quiet: bool):
    """Silence :mod:`workbench.progress` with ``--quiet``; else show it on a terminal."""
    from .progress import feedback

    return feedback(False if quiet else None)


def _given(**kwargs) -> dict:
    """The keyword arguments that were given (not None): the callee keeps its own defaults."""
    return {k: v for k, v in kwargs.items() if v is not None}


@app.command()
def compare(
    formula: str = typer.Argument(..., metavar="FORMULA", help="lme4-style formula."),
    data: str = typer.Option(..., "--data", "-d", metavar="FILE|NAME",
                             help="Data file (CSV or Parquet) or a built-in data set's name; "
                                  "an existing file wins."),
    prior: list[str] | None = typer.Option(None, "--prior", metavar="KEY=DIST",
                                           help="Prior for the Bayesian fit (repeatable)."),
    out: Path = typer.Option(Path("compare"), "--out", "-o", metavar="DIR",
                             help="Directory for the tables and figures."),
    known_sd: str | None = typer.Option(None, "--known-sd", metavar="COL",
                                        help="Column of known residual sds (meta-analysis form)."),
    weights: str | None = typer.Option(None, "--weights", metavar="COL",
                                       help="Column of prior weights (residual variance sigma^2 / w)."),
    offset: str | None = typer.Option(None, "--offset", metavar="COL",
                                      help="Column added to the linear predictor with coefficient 1."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed for the Bayesian fit."),
    draws: int | None = typer.Option(None, "--draws", min=1, help="Posterior draws per chain."),
    tune: int | None = typer.Option(None, "--tune", min=1, help="Tuning steps per chain."),
    chains: int | None = typer.Option(None, "--chains", min=1, help="Number of chains."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Write the tables only."),
    ci: Interval = typer.Option(Interval.wald, "--ci",
                                help="Intervals of the REML and ML fits (profile: on the ML "
                                     "deviance for both, as lme4)."),
    nboot: int = typer.Option(1000, "--nboot", min=1, help="Bootstrap replicates for --ci bootstrap."),
    method: list[Method] | None = typer.Option(
        None, "--method", "-m",
        help="A method to fit (repeatable, in column order) [default: reml, ml, bayes]."),
    fgls: FglsEstimator | None = typer.Option(
        None, "--fgls", help="Variance-component estimator of the fgls fit (plm's names)."),
    gls: str | None = typer.Option(
        None, "--gls", metavar="STRUCT",
        help="Also fit the formula's fixed part with this residual correlation, as nlme::gls "
             "(e.g. 'cs(~ 1 | g)'), by REML and/or ML as those are among the methods."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Fit the model by several methods (REML, ML and Bayes by default); write the comparison
    tables and figures."""
    from . import jobs
    from .datasets import load_or_read
    from .io import output_dir

    priors = parse_priors(prior)
    methods = [m.value for m in method] if method else list(jobs.COMPARE_METHODS)
    options = _given(draws=draws, tune=tune, chains=chains)
    flags = {"--prior": priors, "--draws": draws, "--tune": tune, "--chains": chains}
    given = [f for f, v in flags.items() if v]
    if given and "bayes" not in methods:
        raise CliError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the "
                       "Bayesian fit; add --method bayes")
    if fgls is not None and "fgls" not in methods:
        raise CliError("--fgls applies to the fgls fit; add --method fgls")
    if ci is not Interval.wald and not {"reml", "ml"} & set(methods):
        raise CliError(f"--ci {ci.value} applies to REML and ML fits; add --method reml or ml "
                       "(fgls, igls, rigls report Wald intervals, bayes credible ones)")
    if gls is not None and not {"reml", "ml"} & set(methods):
        raise CliError("--gls is fitted by REML or ML; add --method reml or ml")
    if len(set(methods)) != len(methods):
        raise CliError("--method repeats a method")
    if gls is not None:
        from .gls.corstruct import parse_correlation

        parse_correlation(gls)
    with output_dir(out):
        frame = load_or_read(data)
        extra = _given(fgls=fgls.value if fgls else None, gls=gls)
        with _feedback(quiet):
            result = jobs.compare_and_write(formula, frame, out, priors=priors or None, seed=seed,
                                            figures=not no_figures, known_sd=known_sd,
                                            weights=weights, offset=offset, progress=not quiet,
                                            ci=ci.value, nboot=nboot, methods=methods, **extra,
                                            **options)
    typer.echo(result["side_by_side"].to_string(index=False))
    for note in result.get("notes", []):
        typer.echo(note)
    files = result["files"]
    _info(f"wrote {len(files)} files to {out}" if files else f"wrote the comparison to {out}")


# ---------------------------------------------------------------------------- entry point
def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _invoke(command, args: list[str]):
    """Parse and run a command as ``click``'s ``main`` does, but let ``KeyboardInterrupt``
    through (click and typer turn it into a silent exit 130 and lose what it says)."""
    try:
        with command.make_context("workbench", args) as ctx:
            return command.invoke(ctx)
    except Exit as exc:
        return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (the ``workbench`` console script).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Raises
    ------
    SystemExit
        Always: 0 on success, 1 for bad input, 2 for a bad command line.
    """
    command = typer.main.get_command(app)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            rc = _invoke(command, sys.argv[1:] if argv is None else list(argv))
        except WorkbenchError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            sys.exit(1)
        except FileNotFoundError as exc:
            print(f"error: file not found: {exc.filename or _one_line(exc)}", file=sys.stderr)
            sys.exit(1)
        except TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()
                sys.exit(exc.exit_code)
            msg = _one_line(exc.format_message())
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print(f"error: {msg}{hint}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            # StudyInterrupted says what is stored; elsewhere outputs are removed (output_dir)
            what = str(exc) if isinstance(exc, Interrupted) and str(exc) else "nothing was written"
            print(f"interrupted: {_one_line(what)}", file=sys.stderr)
            sys.exit(130)
        except BrokenPipeError:
            # The reader of stdout went away (``workbench ... | head``): stop quietly.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["app", "main", "parse_priors"]
