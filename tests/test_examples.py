"""Every script in ``examples/`` runs to completion and prints something.

The scripts are found by glob, so a new example is tested without touching
this file.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))


def test_the_examples_folder_has_examples() -> None:
    assert EXAMPLES, f"no examples found in {EXAMPLES_DIR}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_is_documented_and_guarded(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    namespace = runpy.run_path(str(path), run_name="example_under_test")
    assert namespace.get("__doc__"), f"{path.name} needs a module docstring"
    assert callable(namespace.get("main")), f"{path.name} needs a main() function"
    assert 'if __name__ == "__main__":' in source, f"{path.name} needs a __main__ guard"
