"""`-monitor stdio` whatever stdin is: a regular file or /dev/null (epoll refuses both) is
read to its end and then treated as closed; a stdin closed before toynic starts is no
input at all. The frame relay (or the machine) runs on either way, and quits cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.netsupport import Proc, start_toynic, toynic_argv, wait_for

pytestmark = pytest.mark.timeout(120)

RELAY = ("-netdev", "hubport,id=h0,hubid=0", "-monitor", "stdio")
BANNER = "toynic monitor - type 'help' for more information\r\n(toynic) "


def clean_stderr(proc: Proc) -> bool:
    return all(line.startswith("toynic: warning: ") for line in proc.stderr.splitlines())


def stop_cleanly(proc: Proc) -> None:
    assert proc.alive(), proc.describe()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, proc.describe()
    assert clean_stderr(proc), proc.describe()


def test_commands_from_a_regular_file_then_quit(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    commands.write_text("info network\nquit\n")
    with commands.open("rb") as stdin, start_toynic(*RELAY, stdin=stdin) as proc:
        assert proc.wait(30) == 0, proc.describe()
        assert proc.stdout == f"{BANNER}hub 0\r\n \\ h0\r\n(toynic) "
        assert clean_stderr(proc), proc.describe()


def test_a_regular_file_without_quit_is_read_to_its_end_and_the_relay_runs_on(
        tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    commands.write_text("info status\n" * 3)
    with commands.open("rb") as stdin, start_toynic(*RELAY, stdin=stdin) as proc:
        want = BANNER + "VM status: running\r\n(toynic) " * 3
        wait_for(lambda: proc.stdout == want or not proc.alive(), 30, "three answers")
        stop_cleanly(proc)
        assert proc.stdout == want


def test_dev_null_is_an_empty_input() -> None:
    with open(os.devnull, "rb") as stdin, start_toynic(*RELAY, stdin=stdin) as proc:
        wait_for(lambda: proc.stdout == BANNER or not proc.alive(), 30, "the banner")
        stop_cleanly(proc)


def test_a_closed_stdin_is_no_input() -> None:
    argv = ["sh", "-c", 'exec "$0" "$@" <&-', *toynic_argv(*RELAY)]
    with Proc(argv, name="toynic", env=dict(os.environ, PYTHONUNBUFFERED="1")) as proc:
        wait_for(lambda: proc.stdout == BANNER or not proc.alive(), 30, "the banner")
        stop_cleanly(proc)


def test_a_machine_with_the_monitor_on_a_file_stdin(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    commands.write_text("info status\nquit\n")
    with commands.open("rb") as stdin, \
            start_toynic("-kernel", "emu/guests/timer.elf", "-append", "ticks=100 period=1000",
                         "-monitor", "stdio",
                         stdin=stdin) as proc:
        assert proc.wait(30) == 0, proc.describe()
        assert f"{BANNER}VM status: running\r\n" in proc.stdout
        assert clean_stderr(proc), proc.describe()
