"""The console (and `-monitor stdio`) on a stdout that does not keep up: a pipe nobody
reads, a reader that goes away (`| head -c 10`, EPIPE), a full device (ENOSPC).

With nobody reading, the loop goes on serving the monitor and sockets, the guest keeps
running (its oldest output dropped and counted once, at exit) and SIGTERM still ends the
process. A reader that is gone or a device that is full ends the run with one line on
stderr, as a signal does (exit status 0). Waits are on observable states: the pipe being
full (not writable), monitor answers, the process's exit, with deadlines.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu.board.layout import POWER_BASE, POWER_FAIL, RAM_BASE, UART_BASE
from emu.board.loader import build_elf
from tests.netsupport import LOOPBACK, Proc, free_ports, start_toynic, wait_accepted, wait_for
from tests.netsupport import connect as tcp_connect
from tests.rvasm import Asm

pytestmark = pytest.mark.timeout(120)

LINE = b"console line that nobody reads, written over and over again..\n"
DROPPED = re.compile(r"^toynic: stdout: (\d+) bytes of output dropped "
                     r"\(the reader did not keep up\)$")


def chatter_elf(tmp_path: Path) -> Path:
    """A guest that writes LINE to the UART forever."""
    asm = Asm()
    asm.li("s1", UART_BASE)
    asm.label("again")
    for ch in LINE:
        asm.li("t2", ch)
        asm.sb("t2", "s1", 0)
    asm.j("again")
    path = tmp_path / "chatter.elf"
    path.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, asm.code())]))
    return path


def talker_elf(tmp_path: Path, lines: int, status: int) -> Path:
    """A guest that writes LINE `lines` times, then powers off with `status`."""
    asm = Asm()
    asm.li("s1", UART_BASE)
    asm.li("s2", lines)
    asm.label("again")
    for ch in LINE:
        asm.li("t2", ch)
        asm.sb("t2", "s1", 0)
    asm.addi("s2", "s2", -1)
    asm.bne("s2", "zero", "again")
    asm.li("s3", POWER_BASE)
    asm.li("t0", POWER_FAIL | status << 16)
    asm.sw("t0", "s3", 0)
    asm.label("off")
    asm.j("off")
    path = tmp_path / "talker.elf"
    path.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, asm.code())]))
    return path


@contextlib.contextmanager
def unread_pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)


def pipe_full(r: int) -> bool:
    """Whether the pipe whose read end is `r` would make a writer wait: polled through
    a write end of our own (opened via /proc), it is not writable."""
    probe = os.open(f"/proc/self/fd/{r}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        return not select.select([], [probe], [], 0)[1]
    finally:
        os.close(probe)


class Monitor:
    """A monitor client over TCP: one command, its output up to the next prompt."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=15)
        self.buf = b""
        self.until_prompt()

    def until_prompt(self) -> str:
        while b"(toynic) " not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"the monitor closed: {self.buf!r}"
            self.buf += chunk
        text, self.buf = self.buf.split(b"(toynic) ", 1)
        return text.decode()

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.until_prompt()

    def minstret(self) -> int:
        found = re.search(r"minstret +([0-9a-f]+)", self.cmd("info registers"))
        assert found is not None
        return int(found.group(1), 16)


def only_line(proc: Proc) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.describe()
    return lines[0]


def test_an_unread_stdout_keeps_the_machine_and_the_loop_running(tmp_path: Path) -> None:
    mon_port, = free_ports(1)
    with unread_pipe() as (r, w):
        proc = start_toynic("-kernel", str(chatter_elf(tmp_path)),
                            "-monitor", f"tcp:{LOOPBACK}:{mon_port},server,nowait", stdout=w)
        os.close(w)
        with proc, proc.closed_on_failure():
            wait_for(lambda: pipe_full(r) or not proc.alive(), 30, "a full stdout pipe")
            assert proc.alive(), proc.describe()
            mon = Monitor(mon_port)
            with mon.sock:
                assert mon.cmd("info status") == "VM status: running\r\n"
                first = mon.minstret()
                wait_for(lambda: mon.minstret() > first, 30, "the guest to keep running")
            assert pipe_full(r)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            dropped = DROPPED.match(only_line(proc))
            assert dropped is not None, proc.describe()
            assert int(dropped.group(1)) > 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_machine_whose_stdout_is_full(tmp_path: Path, signum: int) -> None:
    with unread_pipe() as (r, w):
        proc = start_toynic("-kernel", str(chatter_elf(tmp_path)), stdout=w)
        os.close(w)
        with proc, proc.closed_on_failure():
            wait_for(lambda: pipe_full(r) or not proc.alive(), 30, "a full stdout pipe")
            proc.send_signal(signum)
            assert proc.wait(15) == 0
            assert DROPPED.match(only_line(proc)), proc.describe()


def test_monitor_stdio_output_to_an_unread_pipe_does_not_freeze_the_relay() -> None:
    net_port, = free_ports(1)
    commands_r, commands_w = os.pipe()
    with unread_pipe() as (r, w):
        try:
            proc = start_toynic("-netdev", f"socket,id=n0,listen={LOOPBACK}:{net_port}",
                                "-netdev", "hubport,id=h0,hubid=0,netdev=n0",
                                "-monitor", "stdio", stdin=commands_r, stdout=w)
            os.close(w)
            with proc, proc.closed_on_failure():
                os.set_blocking(commands_w, False)

                def both_pipes_full() -> bool:
                    # Commands go in until toynic's output fills stdout and toynic stops
                    # reading commands, so that their pipe fills too.
                    with contextlib.suppress(BlockingIOError):
                        os.write(commands_w, b"help\n" * 64)
                    return (pipe_full(r) and pipe_full(commands_r)) or not proc.alive()

                wait_for(both_pipes_full, 60, "stdout and the command pipe to fill")
                assert proc.alive(), proc.describe()
                with tcp_connect(net_port) as client:
                    wait_accepted(proc.pid, net_port, client.getsockname()[1])
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(15) == 0
                assert "Traceback" not in proc.stderr, proc.describe()
        finally:
            for fd in (commands_r, commands_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


@pytest.mark.parametrize("fill", [0, 1])
def test_a_reader_that_goes_away_ends_the_run_with_one_line(tmp_path: Path, fill: int) -> None:
    """`toynic ... | head -c 10`, the pipe either still empty or full when head exits."""
    with unread_pipe() as (r, w):
        proc = start_toynic("-kernel", str(chatter_elf(tmp_path)), stdout=w)
        os.close(w)
        with proc, proc.closed_on_failure():
            if fill:
                wait_for(lambda: pipe_full(r) or not proc.alive(), 30, "a full stdout pipe")
            head = subprocess.run(["head", "-c", "10"], stdin=r, capture_output=True,
                                  timeout=30, check=True)
            os.close(r)
            assert head.stdout == LINE[:10]
            assert proc.wait(15) == 0
            line = only_line(proc)
            assert line == "toynic: stdout: write failed: Broken pipe; stopping", line


def test_a_full_device_ends_the_run_with_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = start_toynic("-kernel", str(chatter_elf(tmp_path)), stdout=full)
    with proc, proc.closed_on_failure():
        assert proc.wait(30) == 0
        line = only_line(proc)
        assert line == "toynic: stdout: write failed: No space left on device; stopping", line


TALK_LINES = 4096  # 256 KiB: more than the pipe holds, less than toynic's backlog


@pytest.mark.parametrize("reader", ["slow", "never"])
def test_the_end_waits_for_a_slow_reader_and_a_signal_gives_up(
        tmp_path: Path, reader: str) -> None:
    """The guest powers off (status 3) while most of its output still waits; the loop
    goes on serving (the monitor says `shutdown`). A reader that comes gets every byte
    and the guest's status; without one, SIGTERM ends the wait, the status is still 3
    and the lost bytes are counted."""
    mon_port, = free_ports(1)
    with unread_pipe() as (r, w):
        proc = start_toynic("-kernel", str(talker_elf(tmp_path, TALK_LINES, 3)),
                            "-monitor", f"tcp:{LOOPBACK}:{mon_port},server,nowait", stdout=w)
        os.close(w)
        with proc, proc.closed_on_failure():
            wait_for(lambda: pipe_full(r) or not proc.alive(), 30, "a full stdout pipe")
            mon = Monitor(mon_port)
            with mon.sock:
                wait_for(lambda: mon.cmd("info status") == "VM status: shutdown\r\n", 30,
                         "the guest to power off")
            assert proc.alive()
            if reader == "slow":
                got = bytearray()
                with os.fdopen(os.dup(r), "rb") as pipe:
                    while chunk := pipe.read(65536):
                        got += chunk
                assert proc.wait(15) == 3
                assert bytes(got) == LINE * TALK_LINES
                assert proc.stderr == "", proc.describe()
            else:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(15) == 3
                dropped = DROPPED.match(only_line(proc))
                assert dropped is not None, proc.describe()
                assert 0 < int(dropped.group(1)) < len(LINE) * TALK_LINES
