"""Fixtures of the fuzz suite: one store factory per store kind for the whole
session, and the figures printed (and, with ``CXFLOW_FUZZ_FIGURES=path``,
written as JSON) at the end. ``scripts/fuzz-figures.py`` runs the suite
that way."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fuzzkit import FIGURES, StoreFactory, factories


@pytest.fixture(scope="session")
def store_factories() -> Iterator[list[StoreFactory]]:
    """A factory of fresh stores per store kind under test."""
    made = list(factories())
    try:
        yield made
    finally:
        for factory in made:
            factory.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.calls:
        return
    figures = FIGURES.as_dict()
    terminalreporter.write_sep("-", "cxflow fuzz figures")
    terminalreporter.write_line(
        f"calls: {figures['calls']} (accepted {figures['accepted']}, refused "
        f"{figures['refused']}), entry points: {figures['entry_points']}, stores: "
        f"{', '.join(figures['stores'])}, escapes: {figures['escapes']} (known gaps: "
        f"{figures['known_gaps']}), disagreements: {figures['disagreements']}"
    )
    path = os.environ.get("CXFLOW_FUZZ_FIGURES")
    if path:
        FIGURES.write(path)
        terminalreporter.write_line(f"written to {path}")
