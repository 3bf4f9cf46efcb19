"""The repository is its own specification: every `qemu-behaviour.md §N.M` it cites is a
section of docs/qemu-behaviour.md, and nothing points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "qemu-behaviour.md"
# A citation: the spec's name, then one or more section numbers (`§4.1`, `§4.6`) before
# the end of the sentence.
CITATION = re.compile(r"qemu-behaviour\.md[^.\n]*?§(\d+(?:\.\d+)?)|\(§(\d+(?:\.\d+)?)\)")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", re.M)


NOT_SOURCES = {".git", ".venv", ".hypothesis", ".pytest_cache", "__pycache__", "build"}


def tracked_text_files() -> list[Path]:
    """The repository's text files (binary ones, such as the guest ELFs, are left out)."""
    texts = []
    for path in sorted(REPO.rglob("*")):
        parts = path.relative_to(REPO).parts
        if not path.is_file() or NOT_SOURCES & set(parts) \
                or any(part.endswith(".egg-info") for part in parts):
            continue
        try:
            path.read_text()
        except UnicodeDecodeError:
            continue
        texts.append(path)
    return texts


def test_every_cited_section_exists() -> None:
    sections = set(HEADING.findall(SPEC.read_text()))
    assert {"2.4", "4.1", "4.6", "4.10", "5"} <= sections
    missing = []
    for path in tracked_text_files():
        for match in CITATION.finditer(path.read_text()):
            number = match.group(1) or match.group(2)
            if number not in sections:
                missing.append(f"{path.relative_to(REPO)}: §{number}")
    assert not missing, f"citations of sections docs/qemu-behaviour.md does not have: {missing}"


def test_nothing_refers_outside_the_repository() -> None:
    # The notes the project started from lived in a folder beside the checkout (the
    # character class keeps this test's own source from matching).
    outside = re.compile(r"\.\./[s]hared|[s]hared/(?:reference|DESIGN)")
    hits = [str(p.relative_to(REPO)) for p in tracked_text_files()
            if outside.search(p.read_text())]
    assert not hits, f"files that refer to notes outside the repository: {hits}"
