"""Exceptions raised for bad input: every error class of the package is defined here.

Every error a user can cause derives from :class:`WorkbenchError`; the CLI prints its message
and exits non-zero without a traceback.  Callers tell errors apart by their type, never by
their message.
"""


class WorkbenchError(Exception):
    """Base class for errors caused by input (formula, data, options, files)."""


class FormulaError(WorkbenchError):
    """A malformed or unsupported model formula."""


class DataError(WorkbenchError):
    """Data that cannot be used with the model (missing column, wrong type, too few rows)."""


class NotYetSupportedError(WorkbenchError):
    """A model that parses but that the requested method cannot fit yet."""


class SpecError(WorkbenchError):
    """An invalid design, study or prior specification."""


class ParameterNameError(WorkbenchError):
    """A parameter name that cannot be built or read back (see :mod:`workbench.names`)."""


class OptionError(SpecError):
    """An unknown option of a fitting method, or a bad value for one (see :mod:`workbench.options`)."""


class CliError(WorkbenchError):
    """A bad combination of command-line options."""


class StudyCliError(CliError):
    """A bad study command line (unknown axis, unwritable output)."""


class StoreError(WorkbenchError):
    """A study directory that cannot be used (another study's results, unreadable manifest)."""


class ComparisonError(WorkbenchError):
    """Fits that cannot be compared: different data, not nested, wrong kind of fit."""


class ProfileError(WorkbenchError):
    """A profile that cannot be computed (unknown parameter, not a REML/ML fit)."""


class FastPathDeclined(WorkbenchError):
    """The fast Bayesian path (bayes/fast.py) failed one of its checks; NUTS is used instead."""


class NumericalError(WorkbenchError):
    """A computation with these data cannot be carried out in floating point (for example the
    criterion is not finite anywhere the optimizer looked)."""


class SearchStalled(WorkbenchError):
    """Internal: raised inside a local search's function to end the search when it stalls on
    rounding (:mod:`workbench.reml.optimize`); caught there, never seen by a user."""


class SamplingInterrupted(KeyboardInterrupt):
    """Sampling was interrupted (Ctrl-C): the draws are incomplete and no fit is returned.

    A ``KeyboardInterrupt``, so ``except Exception`` does not swallow it and the CLI exits 130.
    """


class Interrupted(KeyboardInterrupt):
    """Work interrupted (Ctrl-C) after some of it was kept; the message says what and where.

    A ``KeyboardInterrupt``: the CLI prints ``interrupted: <message>`` and exits 130.
    """


class StudyInterrupted(Interrupted):
    """A study run interrupted: the message says how many replicates are stored and how to resume."""
