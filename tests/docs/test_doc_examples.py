"""Code blocks the docs mark with the test file they come from (```` ```python
file=tests/examples/NAME.py ````) are verbatim slices of that file, so the code a reader
copies is code the test suite runs. Trailing `# noqa: ...` comments in the file (lint
exemptions a reader does not need) are ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OPENING = re.compile(r"^```python\s+file=(\S+)\s*$")
NOQA = re.compile(r"\s+# noqa(?::[\w, ]*)?$")


def marked_blocks(markdown: str) -> list[tuple[int, str, str]]:
    """(line, file, code) of every block whose info string names a file."""
    blocks = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        match = OPENING.match(lines[i])
        i += 1
        if not match:
            continue
        start = i
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        blocks.append((start, match.group(1), "\n".join(lines[start:i])))
        i += 1
    return blocks


def without_noqa(text: str) -> str:
    return "\n".join(NOQA.sub("", line) for line in text.splitlines())


def test_the_marker_is_found() -> None:
    doc = "text\n```python file=tests/x.py\na = 1\nb = 2\n```\n```python\nc = 3\n```\n"
    assert marked_blocks(doc) == [(2, "tests/x.py", "a = 1\nb = 2")]
    assert without_noqa("import os  # noqa: E402\nx = 1  # not noqa") == \
        "import os\nx = 1  # not noqa"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_marked_blocks_are_slices_of_their_test_files(doc: Path) -> None:
    stale = []
    for line, name, code in marked_blocks(doc.read_text()):
        source = REPO / name
        if not source.is_file() or code not in without_noqa(source.read_text()):
            stale.append(f"{doc.name}:{line} is not in {name}")
    assert not stale, "\n".join(stale)
