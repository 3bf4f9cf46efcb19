"""The commands quoted in README.md and docs/*.md run, exit as shown and print what is shown.

The convention for runnable blocks is in tests/docs/doccmd.py. The first tests pin the
convention itself (so a broken runner cannot make every document pass); the last one runs
each document.
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import pytest

from tests.docs.doccmd import (
    REPO,
    Block,
    line_matches,
    missing_lines,
    parse_blocks,
    problems,
    run_blocks,
    with_free_ports,
)

DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
RUNNABLE = [doc for doc in DOCUMENTS if parse_blocks(doc.read_text())]
DEADLINE_S = 150.0

SAMPLE = """\
Text.

```console
$ echo one; echo two
two
one
$ echo a \\
  b
a b
$ false   # exit 1
```

```sh
$ not run
```

```console needs=no-such-tool-xyz
$ no-such-tool-xyz
```
"""


def test_parse_finds_console_commands_only() -> None:
    blocks = parse_blocks(SAMPLE)
    assert [len(b.commands) for b in blocks] == [3, 1]
    first = blocks[0].commands
    assert first[0].text == "echo one; echo two"
    assert first[0].expected == ["two", "one"]
    assert first[1].text == "echo a \\\n  b"
    assert first[1].line == 7
    assert first[2].status == 1
    assert blocks[1].needs == ("no-such-tool-xyz",)


def test_matching_rules() -> None:
    assert line_matches("time=... ms", "time=12.5 ms")
    assert not line_matches("time=... ms", "time=12.5 s")
    assert not line_matches("5 received", "15 received")
    assert missing_lines(["b", "a", "a"], "a\nb\n") == ["a"]
    assert missing_lines(["x=...", "x=0"], "x=0\nx=1\n") == []


def test_port_assignments_get_free_ports() -> None:
    text = with_free_ports("PORT=5555\nA_PORT=1\necho $PORT\nREPORT=3")
    lines = text.split("\n")
    assert lines[0].startswith("PORT=") and lines[0] != "PORT=5555"
    assert lines[1] != "A_PORT=1"
    assert lines[2:] == ["echo $PORT", "REPORT=3"]


def test_runner_checks_status_output_and_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    session = run_blocks(parse_blocks(SAMPLE), timeout=20)
    assert len(session.skipped) == 1
    assert [r.status for r in session.results] == [0, 0, 1]
    assert problems(session, "sample") == []

    wrong = parse_blocks("```console\n$ echo hi\nbye\n$ true # exit 2\n```\n")
    found = problems(run_blocks(wrong, timeout=20), "wrong")
    assert len(found) == 2
    assert "missing output lines" in found[0] and "exit status 0, expected 2" in found[1]


def test_runner_kills_background_jobs_and_honours_deadline() -> None:
    blocks = [Block(1, parse_blocks("```console\n$ sleep 600 &\n$ sleep 600\n```\n")[0].commands)]
    session = run_blocks(blocks, timeout=2)
    assert session.timed_out
    assert session.results[0].status == 0 and session.results[1].status is None


def test_the_main_documents_have_runnable_commands() -> None:
    assert {REPO / "README.md", REPO / "docs" / "architecture.md"} <= set(RUNNABLE)


@pytest.mark.parametrize("document", RUNNABLE, ids=lambda p: str(p.relative_to(REPO)))
def test_document_commands(document: Path) -> None:
    blocks = parse_blocks(document.read_text())
    session = run_blocks(blocks, timeout=DEADLINE_S)
    found = problems(session, str(document.relative_to(REPO)))
    for block in session.skipped:
        warnings.warn(f"{document.name}:{block.line}: block not run, needs {block.needs}",
                      stacklevel=1)
    assert not found, "\n\n".join(found)


DOTTED_NAME = re.compile(r"`((?:emu|netdev|devices)(?:\.\w+)+)(?:\(\))?`")


def resolve(dotted: str) -> object:
    """The object a dotted name like `netdev.queue.NetQueue.flush` refers to."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_resolve_rejects_what_does_not_exist() -> None:
    assert resolve("netdev.queue.NetQueue.flush") is not None
    with pytest.raises(AttributeError):
        resolve("netdev.queue.NetQueue.no_such_method")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_quoted_python_name_exists(document: Path) -> None:
    """Every `emu.…`, `netdev.…` or `devices.…` name in backquotes is importable."""
    broken = []
    for name in sorted(set(DOTTED_NAME.findall(document.read_text()))):
        try:
            resolve(name)
        except (ImportError, AttributeError) as err:
            broken.append(f"{name}: {err}")
    assert not broken, "\n".join(broken)
