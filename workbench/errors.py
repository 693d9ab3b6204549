"""Exceptions raised for bad input.

Every error a user can cause derives from :class:`WorkbenchError`; the CLI prints its message
and exits non-zero without a traceback.
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


class SamplingInterrupted(KeyboardInterrupt):
    """Sampling was interrupted (Ctrl-C): the draws are incomplete and no fit is returned.

    A ``KeyboardInterrupt``, so ``except Exception`` does not swallow it and the CLI exits 130.
    """
