"""Feedback on long work, written to stderr: a status line, a bar over a job's stages.

Shown when stderr is a terminal, unless silenced (``--quiet``); never when stderr is captured
(tests, pipes, files) unless asked with :func:`feedback` ``(True)``.  Nothing here writes to
stdout, so tables and JSON on stdout stay clean.

* :func:`status` -- a spinner with a message while a block runs ("compiling the model for this
  data shape, once per process");
* :class:`Stages` -- a bar over the named stages of a job (``compare``, ``figures``, ``demo``).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

COMPILING = "compiling the model for this data shape, once per process"

_ENABLED: contextvars.ContextVar[bool | None] = contextvars.ContextVar("workbench_feedback",
                                                                      default=None)


def enabled() -> bool:
    """Whether feedback is shown now: as set by :func:`feedback`, else when stderr is a tty."""
    on = _ENABLED.get()
    if on is not None:
        return on
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def feedback(on: bool | None):
    """``with feedback(False):`` silences feedback in the block (``True`` forces it; ``None``:
    stderr is a terminal)."""
    token = _ENABLED.set(on)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def set_feedback(on: bool | None) -> None:
    """Set feedback for the rest of this context (the CLI's ``--quiet``)."""
    _ENABLED.set(on)


def _console():
    from rich.console import Console

    return Console(file=sys.stderr, force_terminal=_ENABLED.get() is True or None)


@contextlib.contextmanager
def status(message: str):
    """A spinner with ``message`` on stderr while the block runs (nothing when silenced)."""
    if not enabled():
        yield
        return
    with _console().status(message):
        yield


class Stages:
    """A progress bar over a job's named stages, on stderr.

    ``with Stages("compare", ["REML fit", "ML fit", "Bayesian fit", "tables", "figures"]) as s:``
    then ``s.start("REML fit")`` as each stage begins; the bar advances when the next starts and
    finishes when the block ends.  Silent when :func:`enabled` is false.
    """

    def __init__(self, title: str, stages: list[str]):
        self.title = title
        self.stages = list(stages)
        self._bar = None
        self._task = None
        self._done = 0

    def __enter__(self):
        if enabled():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self._bar = Progress(TextColumn("[bold]{task.fields[title]}[/]"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=_console(), transient=False,
                                 redirect_stdout=False, redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task("", total=len(self.stages), title=self.title)
        return self

    def start(self, stage: str) -> None:
        """Mark the previous stage done and show ``stage`` as running."""
        if self._bar is None:
            return
        n = self.stages.index(stage) if stage in self.stages else self._done
        self._done = n
        self._bar.update(self._task, completed=n, description=stage)

    def __exit__(self, exc_type, exc, tb):
        if self._bar is not None:
            if exc_type is None:
                self._bar.update(self._task, completed=len(self.stages), description="done")
            self._bar.stop()
        return False


__all__ = ["status", "Stages", "feedback", "set_feedback", "enabled", "COMPILING"]
