"""The README's examples run from a plain checkout: its Python blocks and its ``workbench`` lines."""

import re
import shlex

import pytest

from tests.helpers import ROOT
from workbench.cli import main

README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[list[str]]:
    """Every ``workbench ...`` command in the README's bash blocks, continuation lines joined."""
    cmds = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("workbench "):
                cmds.append(shlex.split(line)[1:])
    return cmds


def _run(args) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code or 0


def test_readme_has_the_examples():
    fits = [c for c in _commands() if c[0] == "fit"]
    assert len(fits) >= 3 and any("compare" == c[0] for c in _commands())
    assert any("workbench.datasets.load" in b for b in _blocks("python"))


@pytest.mark.parametrize("args", [c for c in _commands() if c[0] == "fit" and "bayes" not in c],
                         ids=lambda c: " ".join(c[1:4]))
def test_readme_fit_commands(args, capsys):
    assert _run(args) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_readme_every_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").symlink_to(ROOT / "studies")
    for args in _commands():
        if args[0] == "demo":
            continue  # covered by tests/test_jobs.py
        assert _run(args) == 0, (args, capsys.readouterr().err)


@pytest.mark.slow
def test_readme_python_blocks(tmp_path, monkeypatch):
    """The blocks run in order in one namespace, as a reader pastes them (Bayesian fits included)."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _blocks("python"):
        exec(compile(block, "README.md", "exec"), namespace)
