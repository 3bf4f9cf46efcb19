"""`toynic-trace` against hostile input: numbers too long for Python's int conversion, a
`--frame` range far beyond the traces, a closed stdout. Each is one line on stderr and
exit status 1, never a
traceback or a hang. Run as child processes with a timeout, so a hang fails the test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emu.tracetool import parse
from emu.tracetool.cli import main
from tests.tracetool.support import REPO, recording

DIGITS = "9" * 5000  # beyond sys.get_int_max_str_digits() (4300)


def trace_with(line: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / "A.trace"
        path.write_text(line + "\nne2000_reset nic=ne2k_isa.0\n")
        return [str(path)]
    return make


def the_recording(tmp: Path) -> list[str]:
    return recording()


CASES: list[tuple[str, Callable[[Path], list[str]], list[str], str]] = [
    ("a time field too long for int", trace_with(f"t={DIGITS} ne2000_reset nic=x"),
     ["summary"], "A.trace:1: the time"),
    ("a bare time too long for int", trace_with(f"{DIGITS} ne2000_reset nic=x"),
     ["summary"], "A.trace:1: the time"),
    ("a QEMU timestamp too long for int", trace_with(f"1@{DIGITS}.5:ne2000_reset nic=x"),
     ["summary"], "A.trace:1: the time"),
    ("a time field among the fields", trace_with(f"ne2000_reset nic=x t={DIGITS}"),
     ["summary"], "A.trace:1: the time"),
    ("a --frame range far beyond the traces", the_recording,
     ["journey", "--frame", "1-99999999999"], "--frame 1-99999999999: the traces hold"),
    ("a --frame number too long for int", the_recording,
     ["journey", "--frame", DIGITS], "--frame 999999999999"),
]


@pytest.mark.parametrize(("make", "command", "expected"),
                         [(make, command, expected) for _, make, command, expected in CASES],
                         ids=[name for name, _, _, _ in CASES])
def test_hostile_input_is_one_line_and_status_1(tmp_path: Path,
                                                make: Callable[[Path], list[str]],
                                                command: list[str], expected: str) -> None:
    args = [*command, *make(tmp_path)]
    if command[0] == "journey":
        args += ["-o", str(tmp_path / "out.svg")]
    try:
        done = subprocess.run([sys.executable, "-m", "emu.tracetool", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"toynic-trace {' '.join(command)} hung")
    assert done.returncode == 1, done.stderr[-800:]
    assert done.stderr.count("\n") == 1, done.stderr[-800:]
    assert done.stderr.startswith("toynic-trace: ")
    assert expected in done.stderr


def test_summary_with_stdout_closed_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "emu.tracetool", "summary", *recording()],
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=30, preexec_fn=lambda: os.close(1))
    assert (done.returncode, done.stderr) == (1, "toynic-trace: stdout is closed: nowhere "
                                                 "to write the summary\n")


@pytest.mark.parametrize(("files", "events_each", "fails"), [
    (1, 10, False),   # exactly the limit
    (1, 11, True),
    (2, 6, True),     # the limit is for all inputs together
])
def test_the_events_of_all_inputs_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], files: int,
                                              events_each: int, fails: bool) -> None:
    # Each event held costs hundreds of bytes: without a bound, a trace of short lines
    # under the byte limit took gigabytes of memory.
    monkeypatch.setattr(parse, "MAX_EVENTS", 10, raising=False)
    paths = []
    for number in range(files):
        path = tmp_path / f"M{number}.trace"
        path.write_text("ne2000_reset nic=ne2k_isa.0\n" * events_each + "a warning line\n")
        paths.append(str(path))
    status = main(["summary", *paths])
    err = capsys.readouterr().err
    if fails:
        assert status == 1
        assert err == (f"toynic-trace: {paths[-1]}: more than 10 trace events in the inputs; "
                       "trace fewer events (-trace PATTERN) or cut the file\n")
    else:
        assert (status, err) == (0, "")
