"""workbench.io: reading data files with clear errors, writing files atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import DataError, WorkbenchError
from workbench.io import atomic_path, atomic_write, atomic_write_text, read_data, write_data


@pytest.fixture
def frame():
    rng = np.random.default_rng(7)
    return pd.DataFrame({"y": rng.normal(size=6), "g": [1, 1, 2, 2, 3, 3], "s": list("abcdef")})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".csv.gz"])
def test_write_then_read_round_trip(tmp_path, frame, suffix):
    path = tmp_path / f"data{suffix}"
    write_data(frame, path)
    back = read_data(path)
    assert list(back.columns) == ["y", "g", "s"]
    np.testing.assert_allclose(back["y"].to_numpy(), frame["y"].to_numpy(), rtol=1e-12)
    assert back["s"].tolist() == list("abcdef")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def _write(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n\n", "is empty"),
        ("header.csv", b"y,g\n", "no data rows"),
        ("ragged.csv", b'y,g\n1,2\n"3,4\n', "cannot parse"),
        ("latin1.csv", b"y,g\n1,\xe9\xff\xfe\n", "not UTF-8"),
        ("junk.parquet", b"this is not parquet at all", "as Parquet"),
    ],
)
def test_unusable_files_raise_data_error_naming_the_file(tmp_path, name, content, needle):
    p = _write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        read_data(p)
    msg = str(info.value)
    assert needle in msg
    assert name in msg
    assert "\n" not in msg


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_data(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_data(tmp_path)


def test_data_error_is_a_workbench_error():
    assert issubclass(DataError, WorkbenchError)


def test_atomic_write_text_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "out.json"  # parent created
    atomic_write_text(p, "first")
    atomic_write_text(p, "second")
    assert p.read_text() == "second"
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.json"]


def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "out.csv"
    p.write_text("old content")

    def writer(tmp):
        tmp.write_text("half of the new con")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(p, writer)
    assert p.read_text() == "old content"
    assert [x.name for x in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path, frame):
    with atomic_path(tmp_path / "table.parquet") as tmp:
        assert tmp.suffix == ".parquet"
        assert tmp.parent == tmp_path
        frame.to_parquet(tmp)
    assert read_data(tmp_path / "table.parquet").shape == (6, 3)


def test_cannot_write_onto_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        atomic_write_text(tmp_path / "d", "x")
