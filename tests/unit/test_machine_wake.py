"""An idle machine woken by host I/O starts its slice in the same loop turn."""

from __future__ import annotations

import socket

import pytest

from emu.board import layout
from emu.board.machine import Machine
from emu.core.loop import MainLoop
from emu.cpu.csr import MIP_MEIP
from tests.unit.test_machine_sched import ScriptCpu, make


@pytest.fixture
def loop():
    main_loop = MainLoop()
    yield main_loop
    main_loop.close()


def test_host_io_wake_runs_the_guest_before_the_loop_polls_again(loop: MainLoop) -> None:
    source = layout.ISA_IRQ_BASE + 9

    def program(m: Machine, cpu: ScriptCpu):
        cpu.mie = MIP_MEIP
        m.bus.write(layout.PLIC_BASE + layout.PLIC_PRIORITY + 4 * source, 4, 1)
        m.bus.write(layout.PLIC_BASE + layout.PLIC_ENABLE + 4, 4, 1 << (source - 32))
        yield
        yield "wfi"
        m.bus.write(layout.POWER_BASE, 4, layout.POWER_FAIL | 5 << 16)
        yield

    m, _ = make(loop, program)
    assert m.run_until(lambda: m.idle, 5)
    a, b = socket.socketpair()
    with a, b:
        def readable() -> None:
            a.recv(10)
            m.isa_irq(9).raise_()

        loop.set_read_handler(a.fileno(), readable)
        b.send(b"frame")
        loop.run_once(5.0)  # one turn: the event, and the slice it woke
        loop.remove_fd(a.fileno())
    assert m.exit_code == 5


def test_an_unfinished_console_line_is_out_when_the_slice_ends(loop: MainLoop) -> None:
    def program(m: Machine, cpu: ScriptCpu):
        for byte in b"login: ":
            m.bus.write(layout.UART_BASE, 1, byte)
            yield
        yield "wfi"

    m, _ = make(loop, program)
    # Checked while the loop runs, not after run_until's own final flush.
    assert m.run_until(lambda: m.idle and m.console.getvalue() == b"login: ", 5)
