"""Every monitor input gets an answer: numbers QEMU's strtoull would stop on (`09`, `08`),
Unicode digits that Python's `int` or `str.isdigit` accept but a monitor expression does
not (`²`, `٣`), and arbitrary text, in-process and through the chardev session."""

from __future__ import annotations

import contextlib
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.monitor.chardev import MonitorServer, parse_chardev
from emu.monitor.hmp import PROMPT, Monitor
from emu.testing import Lab

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def machine_monitor():
    with Lab() as lab:
        machine = lab.machine("hello")
        yield lab.monitor(machine)


@pytest.mark.parametrize(("line", "error"), [
    ("x 09", "invalid char '9' in expression\n"),
    ("x 08", "invalid char '8' in expression\n"),
    ("xp/2x 0778", "invalid char '8' in expression\n"),
    ("x \u00b2", "invalid char '\u00b2' in expression\n"),
    ("x \u0663", "invalid char '\u0663' in expression\n"),
    ("x 0x\u0663", "invalid char 'x' in expression\n"),
    ("x $x\u0663", "unknown register 'x'\n"),
    ("x/\u00b2x 0", "invalid char in format: '\u00b2'\n"),
])
def test_numbers_a_monitor_expression_cannot_read_get_one_line(
        machine_monitor: Monitor, line: str, error: str) -> None:
    assert machine_monitor.execute(line) == error


def test_octal_and_hex_still_read(machine_monitor: Monitor) -> None:
    assert machine_monitor.execute("x 0").startswith("00000000: Cannot access memory")
    assert machine_monitor.execute("x 017").startswith("0000000f:")
    assert machine_monitor.execute("x 0x80000000").startswith("80000000: 0x")


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
COMMANDS = st.sampled_from(["x", "xp", "x/", "x/3", "x/2b", "xp/4d", "x/\u00b2", "info",
                            "help", "set_link", "trace-event", "info registers", "q"])
TOKENS = st.sampled_from(["$pc", "$x1", "$a0", "$x\u0663", "0x", "0x1f", "0", "07", "09",
                          "123", "-", "+", "/", "\u00b2", "\u0663", "ne2000", "on"])


@given(st.one_of(TEXT, COMMANDS), st.lists(st.one_of(TEXT, TOKENS), max_size=5))
def test_any_line_gets_an_answer(machine_monitor: Monitor, command: str,
                                 parts: list[str]) -> None:
    line = " ".join([command, *parts])
    answer = machine_monitor.execute(line)
    assert isinstance(answer, str)
    assert answer == "" or answer.endswith("\n")
    assert not machine_monitor.quit_requested or line.split()[0] in ("quit", "q")
    machine_monitor.quit_requested = False


def test_a_session_answers_a_bad_number_and_prompts_again() -> None:
    with Lab() as lab:
        machine = lab.machine("hello")
        server = MonitorServer(lab.loop, Monitor(lab.net, machine.machine),
                               parse_chardev("tcp:127.0.0.1:0,server,nowait"))
        try:
            with socket.create_connection(server.address, timeout=5) as sock:
                sock.setblocking(False)
                got = bytearray()

                def prompts() -> int:
                    with contextlib.suppress(BlockingIOError):
                        got.extend(sock.recv(65536))
                    return got.count(PROMPT.encode())

                assert lab.run_until(lambda: prompts() == 1, 10)
                sock.sendall("x 09\nx \u00b2\n".encode())
                assert lab.run_until(lambda: prompts() == 3, 10), bytes(got)
                assert bytes(got).endswith(
                    "(toynic) invalid char '9' in expression\r\n(toynic) "
                    "invalid char '\u00b2' in expression\r\n(toynic) ".encode())
        finally:
            server.close()
