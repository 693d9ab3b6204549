"""The chunk store: atomic chunks, detection of corrupt or partial ones, manifest checks."""

import json

import pytest

from workbench.study.run import run_study
from workbench.study.spec import load_study
from workbench.study.store import Store, StoreError

from .conftest import comparable


def test_resume_redoes_corrupt_truncated_and_stray_files(tiny_spec, reference_run, tmp_path):
    ref_out, ref = reference_run
    out = tmp_path / "run"
    import shutil

    shutil.copytree(ref_out, out)
    chunks = sorted((out / "chunks").glob("*.parquet"))
    assert len(chunks) >= 4
    chunks[0].write_bytes(b"not a parquet file")                          # corrupt
    data = chunks[1].read_bytes()
    chunks[1].write_bytes(data[: len(data) // 2])                          # truncated
    (out / "chunks" / ".c0000-reml-r000000-000003-x.tmp.parquet").write_bytes(b"half")  # stray tmp
    scan = Store(out).scan(repair=False)
    assert {name for name, _ in scan.removed} == {chunks[0].name, chunks[1].name}
    report = run_study(load_study(tiny_spec), out, workers=0, progress=False)
    assert len(report.removed_chunks) == 2 and report.fits > 0
    assert not list((out / "chunks").glob(".*"))
    new = comparable(Store(out).results())
    assert new.equals(ref)


def test_rerun_of_a_finished_study_does_nothing(tiny_spec, reference_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run[0], out)
    report = run_study(load_study(tiny_spec), out, workers=0, progress=False)
    assert report.fits == 0 and report.tasks == 0 and report.skipped_fits == 2 * 2 * 12


def test_more_replicates_extend_and_fewer_reuse(tiny_spec, reference_run, tmp_path):
    study = load_study(tiny_spec)
    out = tmp_path / "run"
    run_study(study, out, workers=0, progress=False, replicates=5, batch=2)
    run_study(study, out, workers=0, progress=False, batch=4)  # the remaining 7 per arm
    assert comparable(Store(out).results()).equals(reference_run[1])


def test_a_different_seed_or_design_is_refused(tiny_spec, reference_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run[0], out)
    with pytest.raises(StoreError, match="different study"):
        run_study(load_study(tiny_spec), out, workers=0, progress=False, seed=5)
    manifest = json.loads((out / "study.json").read_text())
    manifest["methods"]["reml"]["options"] = {"x": 1}
    (out / "study.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="method 'reml'"):
        run_study(load_study(tiny_spec), out, workers=0, progress=False)


def test_overlapping_chunks_are_detected(tmp_path):
    import pandas as pd

    store = Store(tmp_path)
    frame = pd.DataFrame({"condition": [0, 0], "replicate": [0, 1], "method": ["m", "m"]})
    store.write_chunk(frame, 0, "m", [0, 1])
    store.write_chunk(frame.iloc[1:], 0, "m", [1])
    scan = store.scan(repair=True)
    assert scan.done[(0, "m")] == {0, 1}
    assert len(scan.removed) == 1 and "overlaps" in scan.removed[0][1]
