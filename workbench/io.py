"""Reading data files and writing output files atomically.

Reading turns every way a data file can be unusable (missing, a directory, empty, unreadable,
not parseable) into one :class:`~workbench.errors.DataError` that names the file, so the CLI can
print a single line.  Writing goes to a temporary file in the destination directory and is moved
into place with :func:`os.replace`, so a reader (or a run killed half-way) never sees a
half-written file.

Formats are chosen by suffix: ``.parquet``/``.pq``/``.parq`` are Parquet, ``.tsv``/``.tab`` are
tab-separated, anything else is read as CSV (compressed CSV such as ``.csv.gz`` included).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from .errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
TSV_SUFFIXES = (".tsv", ".tab")


_FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet"}


def _fmt(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in TSV_SUFFIXES or (len(suffixes) > 1 and suffixes[-2] in TSV_SUFFIXES):
        return "tsv"
    return "csv"


def read_data(path: str | os.PathLike) -> pd.DataFrame:
    """Read a data set from a CSV, TSV or Parquet file.

    Parameters
    ----------
    path : str or path-like
        The file; its suffix picks the format (see the module docstring).

    Returns
    -------
    DataFrame
        At least one row and one column.

    Raises
    ------
    DataError
        The file does not exist, is a directory, cannot be opened, is empty, cannot be parsed,
        or holds no rows.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise DataError(f"data file '{name}' does not exist")
    if p.is_dir():
        raise DataError(f"data file '{name}' is a directory, not a file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read data file '{name}': {exc.strerror or exc}") from None
    if size == 0:
        raise DataError(f"data file '{name}' is empty")
    fmt = _fmt(p)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_csv(p, sep="\t" if fmt == "tsv" else ",")
    except PermissionError:
        raise DataError(f"cannot read data file '{name}': permission denied") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file '{name}' is empty (no header line)") from None
    except UnicodeDecodeError:
        raise DataError(
            f"cannot read data file '{name}' as {_FORMAT_NAMES[fmt]}: it is not UTF-8 text"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot parse data file '{name}' as {_FORMAT_NAMES[fmt]}: {_one_line(exc)}") from None
    except (OSError, ValueError, ImportError) as exc:
        # pyarrow's ArrowInvalid derives from ValueError; ArrowIOError from OSError.
        raise DataError(f"cannot read data file '{name}' as {_FORMAT_NAMES[fmt]}: {_one_line(exc)}") from None
    if frame.shape[1] == 0:
        raise DataError(f"data file '{name}' has no columns")
    if frame.shape[0] == 0:
        raise DataError(f"data file '{name}' has a header but no data rows")
    return frame


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; move it onto ``path`` only if the block succeeds.

    The temporary file sits in the destination's directory (so :func:`os.replace` is atomic)
    and keeps the destination's suffix (so writers that pick a format by suffix, such as
    ``savefig`` or ``to_parquet``, still work).  If the block raises, the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        Final destination.
    make_parents : bool
        Create missing parent directories.

    Yields
    ------
    Path
        The temporary path to write to.
    """
    dest = Path(path)
    parent = dest.parent
    if make_parents:
        parent.mkdir(parents=True, exist_ok=True)
    elif not parent.is_dir():
        raise DataError(f"directory '{parent}' does not exist")
    if dest.is_dir():
        raise DataError(f"cannot write '{dest}': it is a directory")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            _fsync(tmp)
            os.chmod(tmp, file_mode())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` makes them 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], object], *,
                 make_parents: bool = True) -> Path:
    """Write a file atomically through a writer function.

    Parameters
    ----------
    path : str or path-like
        Final destination.
    writer : callable
        Called as ``writer(tmp_path)``; must write the whole file at ``tmp_path`` (e.g.
        ``lambda p: frame.to_parquet(p)`` or ``lambda p: fig.savefig(p)``).
    make_parents : bool
        Create missing parent directories.

    Returns
    -------
    Path
        The destination.
    """
    with atomic_path(path, make_parents=make_parents) as tmp:
        writer(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      make_parents: bool = True) -> Path:
    """Write text to a file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding=encoding),
                        make_parents=make_parents)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, make_parents: bool = True) -> Path:
    """Write bytes to a file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_bytes(data), make_parents=make_parents)


def write_data(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a data set atomically as CSV, TSV or Parquet (chosen by suffix, as :func:`read_data`).

    Parameters
    ----------
    frame : DataFrame
    path : str or path-like

    Returns
    -------
    Path
    """
    fmt = _fmt(Path(path))
    if fmt == "parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    sep = "\t" if fmt == "tsv" else ","
    return atomic_write(path, lambda p: frame.to_csv(p, index=False, sep=sep))


__all__ = ["read_data", "write_data", "atomic_path", "atomic_write", "atomic_write_text",
           "atomic_write_bytes"]
