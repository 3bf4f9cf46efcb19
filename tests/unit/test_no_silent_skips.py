"""No test stops testing silently: the one skip in tests/ is `netsupport.unavailable`, which
skips for a capability this host lacks and fails instead under CI=true (issue 9, item 19).

A missing module or a missing committed guest binary is a failure everywhere: an import
regression or a lost ELF must not turn whole modules into skips.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests import netsupport

TESTS = Path(__file__).resolve().parents[1]
SKIPPING_NAMES = frozenset({"skip", "skipif", "importorskip"})


def skip_sites(path: Path) -> list[int]:
    """Lines of `path` that import, call or apply pytest's skip, importorskip or skipif."""
    lines = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = (node.attr if isinstance(node, ast.Attribute)
                else node.id if isinstance(node, ast.Name) else None)
        if name in SKIPPING_NAMES:
            lines.add(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            lines.update(node.lineno for alias in node.names if alias.name in SKIPPING_NAMES)
    return sorted(lines)


def allowed_lines() -> range:
    """The body of netsupport.unavailable, the CI-aware skip."""
    tree = ast.parse(Path(netsupport.__file__).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "unavailable":
            assert node.end_lineno is not None
            return range(node.lineno, node.end_lineno + 1)
    raise AssertionError("tests/netsupport.py has no unavailable()")


def test_the_only_skip_is_the_ci_aware_one() -> None:
    allowed = allowed_lines()
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__)  # this file names the skips it looks for
        for line in skip_sites(path)
        if not (path == Path(netsupport.__file__) and line in allowed)
    ]
    assert offenders == [], "skip through tests.netsupport.unavailable (fails under CI=true)"


def test_the_scan_finds_every_form_of_skip(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pytest\nfrom pytest import importorskip\n"
        "pytest.importorskip('x')\n"
        "@pytest.mark.skipif(True, reason='r')\ndef f():\n    pytest.skip('y')\n"
        "importorskip('z')\n"
    )
    assert skip_sites(sample) == [2, 3, 4, 6, 7]


def test_unavailable_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no frobnicator"):
        netsupport.unavailable("no frobnicator")


def test_unavailable_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no frobnicator"):
        netsupport.unavailable("no frobnicator")


def test_netns_without_root_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    # BaseException: a skip must be caught too, so that skipping reads as this test failing
    with pytest.raises(BaseException) as raised:
        netsupport.in_netns(os.getpid)
    assert isinstance(raised.value, pytest.fail.Exception), repr(raised.value)


def refuse_netns() -> None:
    raise netsupport.NetnsUnavailable("no ip command")


def test_netns_unavailable_in_the_child_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        netsupport.unavailable("network namespaces need root")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BaseException) as raised:
        netsupport.in_netns(refuse_netns)
    assert isinstance(raised.value, pytest.fail.Exception), repr(raised.value)
    assert "no ip command" in str(raised.value)
