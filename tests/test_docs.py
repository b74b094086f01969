"""The code blocks in the documentation run.

Every ```python fenced block of ``docs/**/*.md`` is executed. The blocks of one
page run in order in one module namespace, so a page can build on its earlier
blocks. A block directly preceded by the line ``<!-- skip-test -->`` is left
out; use it only for fragments that cannot run (a skeleton with ``...``).

Blocks are compiled with their page's path and line numbers, so a failure's
traceback points at the line of the Markdown file.

Two pages get extra checks: the events reference must list every event type,
and the ``SqliteStore`` written in the storage adapter how-to must pass the
whole contract suite of :mod:`cxflow.testing`, as a user's adapter would.
"""

from __future__ import annotations

import functools
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from cxflow.storage.kinds import RECORD_KINDS
from cxflow.storage.sql import schema
from cxflow.testing import StoreContract

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS_DIR.rglob("*.md"))
SKIP_MARKER = "<!-- skip-test -->"
MAX_SKIPPED_PER_PAGE = 2

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_PYTHON_INFOS = {"python", "py", "python3"}


@attrs.frozen
class Block:
    """One fenced code block: its language, first code line (1-based) and code."""

    language: str
    line: int
    code: str
    skipped: bool


def extract_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order (any language)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip()
        language = info.split()[0].strip("{}.").lower() if info else ""
        previous = next((ln.strip() for ln in reversed(lines[:index]) if ln.strip()), "")
        body: list[str] = []
        index += 1
        while index < len(lines):
            stripped = lines[index].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            line = lines[index]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            index += 1
        start = index - len(body) + 1  # 1-based number of the first code line
        blocks.append(
            Block(
                language=language,
                line=start,
                code="\n".join(body) + "\n",
                skipped=previous == SKIP_MARKER,
            )
        )
        index += 1
    return blocks


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of ``page``."""
    return [
        b for b in extract_blocks(page.read_text(encoding="utf-8")) if b.language in _PYTHON_INFOS
    ]


def run_page(page: Path) -> dict[str, Any]:
    """Execute the Python blocks of ``page`` in order in one fresh module; return
    its namespace. The module is registered in ``sys.modules`` while it runs so
    classes defined in the page resolve their annotations like any module's."""
    name = "docs_" + re.sub(r"\W", "_", page.stem)
    while name in sys.modules:
        name += "_"
    module = types.ModuleType(name)
    module.__file__ = str(page)
    sys.modules[name] = module
    try:
        for block in python_blocks(page):
            if block.skipped:
                continue
            # Pad so line numbers in tracebacks are the page's own.
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(page), "exec"), module.__dict__)
    finally:
        sys.modules.pop(name, None)
    return module.__dict__


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS_DIR))


PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]


def test_docs_have_python_examples() -> None:
    assert PAGES_WITH_CODE, f"no ```python blocks found under {DOCS_DIR}"


@pytest.fixture(autouse=True)
def _registry_kept() -> Iterator[None]:
    """A page that registers a record kind does so for itself: the registry
    and cxflow's SQL metadata are restored after each test."""
    kinds = dict(RECORD_KINDS)
    tables = set(schema.metadata.tables)
    yield
    RECORD_KINDS.clear()
    RECORD_KINDS.update(kinds)
    for name in set(schema.metadata.tables) - tables:
        schema.metadata.remove(schema.metadata.tables[name])


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_page_code_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # anything a page writes lands in a temp folder
    run_page(page)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_skip_marker_is_used_sparingly(page: Path) -> None:
    skipped = [b.line for b in python_blocks(page) if b.skipped]
    assert len(skipped) <= MAX_SKIPPED_PER_PAGE, (
        f"{_page_id(page)} skips the blocks at lines {skipped}; make them runnable"
    )


def test_events_reference_lists_every_event_type() -> None:
    from cxflow.events import EVENT_TYPES

    text = (DOCS_DIR / "reference" / "events.md").read_text(encoding="utf-8")
    row = re.compile(r"^\| `(?P<tag>[a-z_]+\.[a-z_]+)` \| `(?P<cls>\w+)` \|", re.M)
    rows = {match["tag"]: match["cls"] for match in row.finditer(text)}
    assert rows == {tag: cls.__name__ for tag, cls in EVENT_TYPES.items()}


# -- the adapter written in the how-to passes the whole contract suite ----------------

HOW_TO_ADAPTER = DOCS_DIR / "how-to" / "storage-adapter.md"


@functools.cache
def _how_to_namespace() -> dict[str, Any]:
    return run_page(HOW_TO_ADAPTER)


class TestHowToSqliteStore(StoreContract):
    """``SqliteStore`` from docs/how-to/storage-adapter.md, checked like any adapter."""

    def make_store(self) -> Any:
        return _how_to_namespace()["SqliteStore"](":memory:")

    def dispose_store(self, store: Any) -> None:
        store.close()


# -- the extractor itself ------------------------------------------------------------


def test_extract_blocks_finds_language_line_and_skip_marker() -> None:
    text = "\n".join(
        [
            "# Title",  # 1
            "```python",  # 2
            "x = 1",  # 3
            "```",  # 4
            "<!-- skip-test -->",  # 5
            "",  # 6
            "```py title=\"a.py\"",  # 7
            "y = x + 1",  # 8
            "```",  # 9
            "```bash",  # 10
            "echo hi",  # 11
            "```",  # 12
            "!!! note",  # 13
            "    ```python",  # 14
            "    z = 3",  # 15
            "    ```",  # 16
        ]
    )
    blocks = extract_blocks(text)
    assert [(b.language, b.line, b.skipped) for b in blocks] == [
        ("python", 3, False),
        ("py", 8, True),
        ("bash", 11, False),
        ("python", 15, False),
    ]
    assert blocks[0].code == "x = 1\n"
    assert blocks[3].code == "z = 3\n"


def test_run_page_shares_one_namespace_and_reports_the_markdown_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n```python\nok = 41\n```\n\n```python\nok += 1\nraise RuntimeError(ok)\n```\n"
    )
    with pytest.raises(RuntimeError, match="42") as info:
        run_page(page)
    assert info.traceback[-1].lineno + 1 == 9  # pytest's lineno is 0-based
