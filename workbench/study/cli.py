"""``workbench study``: run, summarize and plot simulation studies.

Mounted by :mod:`workbench.cli` as the ``study`` group; errors are
:class:`~workbench.errors.WorkbenchError` subclasses, which the main CLI prints as one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import StudyCliError, WorkbenchError

study_app = typer.Typer(help="Simulation studies: run, summarize, figures.", no_args_is_help=True,
                        add_completion=False)


@study_app.command("run")
def run(
    spec: Path = typer.Argument(..., metavar="SPEC.toml", help="Study file."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Results directory (reuse it to resume)."),
    replicates: int | None = typer.Option(None, "--replicates", "-n", min=1, help="Replicates per condition."),
    methods: str | None = typer.Option(None, "--methods", metavar="A,B", help="Method labels to run."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0,
                                       help="Local Dask workers (default: CPUs; 0: in this process)."),
    scheduler: str | None = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                         help="Use an existing Dask scheduler (tcp://host:port)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the study's seed."),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Replicates per task."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a study (or resume it in the same --out directory)."""
    from .run import run_study
    from .spec import load_study

    study = load_study(spec)
    labels = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    report = run_study(study, out, replicates=replicates, methods=labels, workers=workers,
                       scheduler=scheduler, seed=seed, batch=batch, progress=not quiet)
    print(str(report), file=sys.stderr)


@study_app.command("summarize")
def summarize(
    directory: Path = typer.Argument(..., metavar="DIR", help="Results directory."),
    json_out: str | None = typer.Option(None, "--json", metavar="PATH|-", help="Write the summary rows as JSON."),
    by: str | None = typer.Option(None, "--by", metavar="AXIS",
                                  help="Non-coverage table pooled by this grid axis, or 'cell' "
                                       "(default: the study's summary.by)."),
    csv: Path | None = typer.Option(None, "--csv", metavar="PATH", help="Write the summary as CSV."),
    sbc_csv: Path | None = typer.Option(None, "--sbc-csv", metavar="PATH",
                                        help="Write the calibration table (sbc_p per parameter "
                                             "and method) as CSV; truth = \"prior\" studies."),
) -> None:
    """Monte Carlo summaries with MCSEs, per condition x method x parameter; for a study whose
    truth is drawn from the prior, the calibration table (sbc_p)."""
    from ..io import atomic_write, atomic_write_text
    from .store import open_results
    from .summary import (format_differences, format_noncoverage, format_noncoverage_cells,
                          format_sbc, format_summary, method_differences, noncoverage_table,
                          sbc_summary, summarize_results, summary_records)

    from ..io import check_output_file

    if json_out is not None and json_out != "-":
        check_output_file(json_out, "--json")
    if csv is not None:
        check_output_file(csv, "--csv")
    if sbc_csv is not None:
        check_output_file(sbc_csv, "--sbc-csv")
    manifest, results = open_results(directory)
    sbc = manifest.get("truth") == "prior"
    if sbc_csv is not None and not sbc:
        raise StudyCliError(f"--sbc-csv: '{directory}' is not a simulation-based calibration "
                            "study (its study file has no truth = \"prior\")")
    summary = summarize_results(results, manifest)
    axes = manifest.get("axes", [])
    by_axes = [by] if by else list(manifest.get("summary_by", []))
    for b in by_axes:
        if b not in axes and not (b == "cell" and axes):
            raise StudyCliError(f"--by '{b}' is not a grid axis of this study ({', '.join(axes) or 'none'})")
    if json_out is not None:
        text = json.dumps(summary_records(summary, manifest), indent=1) + "\n"
        if json_out == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(json_out, text)
    if csv is not None:
        atomic_write(csv, lambda p: summary.to_csv(p, index=False))
    calibration = sbc_summary(results, manifest) if sbc else None
    if sbc_csv is not None:
        atomic_write(sbc_csv, lambda p: calibration.to_csv(p, index=False))
    if json_out == "-":
        return
    typer.echo(format_summary(summary, manifest))
    if calibration is not None:
        typer.echo("")
        typer.echo(format_sbc(calibration, manifest))
    for b in by_axes:
        typer.echo("")
        if b == "cell":
            typer.echo(format_noncoverage_cells(noncoverage_table(results, manifest, None), axes))
        else:
            typer.echo(format_noncoverage(noncoverage_table(results, manifest, b), b))
    pair = manifest.get("summary_compare") or []
    if len(pair) == 2 and set(pair) <= set(results["method"].unique()):
        typer.echo("")
        typer.echo(format_differences(method_differences(results, manifest, *pair), manifest, *pair))


@study_app.command("figures")
def figures(
    directory: Path = typer.Argument(..., metavar="DIR", help="Results directory."),
    out: Path | None = typer.Option(None, "--out", "-o", metavar="FIGDIR",
                                    help="Where to write the figures (default: DIR/figures)."),
) -> None:
    """Coverage and bias by condition, with Monte Carlo error bars; for a study whose truth is
    drawn from the prior, the ECDF differences of the ranks with simultaneous bands."""
    from ..io import output_dir
    from .figures import study_figures, write_sbc_figure
    from .store import open_results
    from .summary import summarize_results

    figdir = out or Path(directory) / "figures"
    with output_dir(figdir):
        manifest, results = open_results(directory)
        summary = summarize_results(results, manifest)
        paths = study_figures(summary, manifest, figdir)
        if manifest.get("truth") == "prior":
            paths.append(write_sbc_figure(results, figdir, manifest=manifest))
    for p in paths:
        print(f"wrote {p}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Run the study commands on their own (``python -m workbench.study.cli``)."""
    command = typer.main.get_command(study_app)
    try:
        command.main(args=argv, prog_name="workbench study", standalone_mode=False)
    except WorkbenchError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
