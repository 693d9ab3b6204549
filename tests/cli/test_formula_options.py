"""The formula language through the CLI: weights, offsets, backtick and non-ASCII names."""

import json

import pytest

from tests.test_formula_reference import HERE, REF
from workbench.cli import main


def _run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (info.value.code or 0), out, err


def test_weights_and_offset_flags_match_lme4(capsys, tmp_path):
    case = REF["cases"]["weights_offset"]
    out_json = tmp_path / "fit.json"
    code, _, err = _run(capsys, "fit", case["formula"], "--data", HERE / "sleepstudy.csv",
                        "--weights", "w", "--offset", "off", "--json", out_json)
    assert code == 0, err
    rec = json.loads(out_json.read_text())
    assert abs(rec["criterion"] - case["reml"]["criterion"]) < 1e-6 * case["reml"]["criterion"]
    for k, v in case["reml"]["beta"].items():
        assert rec["beta"][k] == pytest.approx(v, rel=1e-5)


def test_backtick_and_non_ascii_names(capsys):
    case = REF["cases"]["backtick_names"]
    code, out, err = _run(capsys, "fit", case["formula"], "--data", HERE / "simulated.csv")
    assert code == 0, err
    assert "`dose mg`" in out and "patiënt" in out and "a:b" in out


@pytest.mark.parametrize("args,needle", [
    (["--weights", "nothere"], "'nothere' not found"),
    (["--weights", "a"], "must be positive"),
    (["--offset", "site"], "offset column 'site' is not numeric"),
])
def test_bad_weights_and_offsets_are_one_line(capsys, args, needle):
    code, _, err = _run(capsys, "fit", "y ~ a + (1 | g)", "--data", HERE / "simulated.csv", *args)
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert code == 1 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
