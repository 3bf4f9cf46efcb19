"""The CLI's own rules: help, unknown options, one-line errors with status 1."""

import subprocess
import sys

import pytest


def toynic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emu", *args], capture_output=True, text=True, timeout=60
    )


def test_help_exits_zero_and_names_the_options():
    result = toynic("-help")
    assert result.returncode == 0
    for option in ("-netdev", "-device", "-kernel", "-object", "-icount"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-bogus"], "-bogus: invalid option"),
        (["-netdev"], "-netdev: requires an argument"),
        (["-m", "lots"], "-m lots: invalid size 'lots'"),
        (["-icount", "shift=1,speed=9"], "Parameter 'speed' is unexpected"),
        (["-netdev", "socket,id=a,id=b"], "Parameter 'id' is given twice"),
    ],
)
def test_user_errors_are_one_line_and_status_one(args, fragment):
    result = toynic(*args)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("toynic: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
