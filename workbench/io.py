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
#: Suffixes :func:`write_data` writes (anything else is refused rather than written as CSV).
WRITE_SUFFIXES = (".csv", ".txt") + TSV_SUFFIXES + PARQUET_SUFFIXES
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


_FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet"}


def _fmt(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in TSV_SUFFIXES or (len(suffixes) > 1 and suffixes[-2] in TSV_SUFFIXES):
        return "tsv"
    return "csv"


def check_write_suffix(path: str | os.PathLike) -> None:
    """Refuse a data file name whose suffix names no format :func:`write_data` writes.

    Raises
    ------
    DataError
        ``.xlsx``, ``.json``, no suffix, ...
    """
    suffixes = [x.lower() for x in Path(path).suffixes]
    plain = [x for x in suffixes if x not in COMPRESSION_SUFFIXES]
    if not plain or plain[-1] not in WRITE_SUFFIXES:
        raise DataError(f"cannot write '{path}': unknown data file type "
                        f"'{''.join(Path(path).suffixes) or '(no suffix)'}'; use "
                        f"{', '.join(WRITE_SUFFIXES)} (CSV and TSV may end in .gz)")


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
    if fmt != "parquet":
        _check_header(p, name, fmt, frame)
    if frame.shape[0] == 0:
        raise DataError(f"data file '{name}' has a header but no data rows")
    return frame


def _check_header(p: Path, name: str, fmt: str, frame: pd.DataFrame) -> None:
    """Refuse repeated column names, and a file that uses another delimiter than its suffix says.

    pandas renames a repeated name ``x`` to ``x.1``, so a formula would silently use the first
    column; a semicolon- or tab-separated file read as CSV comes back as one column.
    """
    import csv

    sep = "\t" if fmt == "tsv" else ","
    header = None
    with contextlib.suppress(Exception):  # other compressions: pandas read them, skip the check
        with _open_text(p) as fh:
            header = next(csv.reader([fh.readline().rstrip("\r\n")], delimiter=sep))
    if header:
        header = [h.strip() for h in header]
        seen, repeated = set(), []
        for h in header:
            if h in seen and h not in repeated:
                repeated.append(h)
            seen.add(h)
        if repeated:
            raise DataError(f"data file '{name}' repeats the column name(s) "
                            f"{', '.join(repr(h) for h in repeated)}; give every column its own name")
    if frame.shape[1] == 1:
        col = str(frame.columns[0])
        for other, label, suffix in ((";", "semicolon", None), ("\t", "tab", ".tsv"), ("|", "pipe", None)):
            if other != sep and other in col:
                how = (f"name it with a {suffix} suffix" if suffix
                       else "save it comma-separated (or as .tsv / Parquet)")
                raise DataError(
                    f"data file '{name}' has a single column '{_short(col)}': it looks "
                    f"{label}-separated, but a {p.suffix or 'suffix-less'} file is read as "
                    f"{_FORMAT_NAMES[fmt]}; {how}")


def _open_text(p: Path):
    import gzip

    if p.suffix.lower() == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    return open(p, encoding="utf-8")


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


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
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot write '{dest}': cannot make directory '{parent}' "
                            f"({exc.strerror or exc})") from None
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

    Raises
    ------
    DataError
        A suffix that names no format written here (``.xlsx``, ``.json``, none).
    """
    check_write_suffix(path)
    fmt = _fmt(Path(path))
    if fmt == "parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    sep = "\t" if fmt == "tsv" else ","
    return atomic_write(path, lambda p: frame.to_csv(p, index=False, sep=sep))


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> None:
    """Check, before any work, that a directory can be made or written there.

    Nothing is created.  The nearest existing ancestor must be a directory in which a file can
    be created (a probe file is made and removed at once).

    Raises
    ------
    DataError
        ``path`` is an existing file, lies under a file, or its directory is not writable.
    """
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise DataError(f"{what} '{d}' exists and is not a directory")
    anc = d
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise DataError(f"cannot write to {what} '{d}': '{anc}' is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".workbench-probe.", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"cannot write to {what} '{d}': {exc.strerror or exc} ('{anc}')") from None


def check_output_file(path: str | os.PathLike, what: str = "--out") -> None:
    """:func:`check_output_dir` for a file's directory, and the file is no directory."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"cannot write {what} '{p}': it is a directory")
    check_output_dir(p.parent if str(p.parent) else Path("."), what=f"{what} '{p}': directory")


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """Check an output directory up front; if the block fails or is interrupted, remove what
    it wrote there.

    Files and directories that were not there before the block are removed (the directory
    itself too, when the block made it); files that were there are left as they are (each
    is replaced atomically, so none is half-written).
    """
    d = Path(path)
    check_output_dir(d, what)
    top = d
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    existed = top.exists()
    before = set(d.rglob("*")) if d.is_dir() else set()
    try:
        yield d
    except BaseException:
        if not existed:
            import shutil

            shutil.rmtree(top, ignore_errors=True)
        elif d.is_dir():
            new = sorted((p for p in d.rglob("*") if p not in before),
                         key=lambda p: len(p.parts), reverse=True)
            for p in new:
                with contextlib.suppress(OSError):
                    p.rmdir() if p.is_dir() else p.unlink()
        raise


__all__ = ["read_data", "write_data", "check_output_dir", "check_output_file", "output_dir", "atomic_path", "atomic_write", "atomic_write_text",
           "atomic_write_bytes"]
