"""The README's two commands are what .ci/run runs, verbatim."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv .venv[^\n]*)\n```", text)


def test_readme_has_the_two_commands():
    cmds = _commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("wandb-mirror demo")
    assert cmds[1].endswith("pip install -e '.[test]' && pytest")


def test_ci_runs_them_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for cmd in _commands():
        assert cmd in ci, f".ci/run does not run {cmd!r}"
