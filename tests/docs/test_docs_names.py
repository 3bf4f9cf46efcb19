"""Every toynic name the docs cite (`netdev.…`, `devices.…`, `emu.…`) still exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NAME = re.compile(r"`((?:netdev|devices|emu)\.[A-Za-z_][\w.]*)`")


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_names_resolve(doc: Path) -> None:
    missing = []
    for dotted in sorted(set(NAME.findall(doc.read_text()))):
        try:
            resolve(dotted)
        except (ModuleNotFoundError, AttributeError):
            missing.append(dotted)
    assert not missing, f"{doc.name} cites names that do not exist: {missing}"
