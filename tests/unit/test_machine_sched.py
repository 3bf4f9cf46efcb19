"""Machine scheduling with a scripted stand-in CPU: slices, timer precision, idle, wake-ups.

The stand-in implements the CPU interface the machine relies on (`run`, `request_stop`,
`set_irq`, `instret`, `waiting`, `x`, `pc`); its "program" is a Python generator that
yields once per instruction and may touch the bus, so each test controls exactly when
the guest arms timers and waits.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest

from emu.board.layout import (
    CLINT_BASE,
    CLINT_MTIME,
    CLINT_MTIMECMP,
    ISA_IRQ_BASE,
    PLIC_BASE,
    PLIC_ENABLE,
    PLIC_PRIORITY,
    POWER_BASE,
    POWER_FAIL,
    POWER_PASS,
)
from emu.board.machine import Machine
from emu.core.loop import MainLoop
from emu.cpu.csr import MIP_MEIP, MIP_MTIP
from emu.cpu.trap import GuestFault


class ScriptCpu:
    def __init__(self, bus, ram, ram_base, read_mtime) -> None:
        self.bus = bus
        self.read_mtime = read_mtime
        self.x = [0] * 32
        self.pc = ram_base
        self.instret = 0
        self.waiting = False
        self.mip = 0
        self.mie = 0
        self.first_irq_at: dict[int, int] = {}
        self.runs = 0
        self._stop = False
        self.script: Iterator[str | None] = iter(())

    def set_irq(self, mask: int, level: bool) -> None:
        self.mip = self.mip | mask if level else self.mip & ~mask
        if level:
            self.first_irq_at.setdefault(mask, self.instret)
        if self.waiting and self.mip & self.mie:
            self.waiting = False

    def warm_up(self) -> bool:
        return False

    def request_stop(self) -> None:
        self._stop = True

    def run(self, budget: int) -> int:
        self.runs += 1
        self._stop = False
        if self.waiting and not self.mip & self.mie:
            return 0
        self.waiting = False
        start = self.instret
        while self.instret - start < budget and not self._stop and not self.waiting:
            step = next(self.script, None)
            self.instret += 1
            if step == "wfi" and not self.mip & self.mie:
                self.waiting = True
        return self.instret - start


@pytest.fixture
def loop():
    main_loop = MainLoop()
    yield main_loop
    main_loop.close()


def make(loop: MainLoop, program: Callable[[Machine, ScriptCpu], Iterator[str | None]],
         **kwargs) -> tuple[Machine, ScriptCpu]:
    m = Machine(loop, ram_size=4096, console=io.BytesIO(), stderr=io.StringIO(),
                cpu_factory=ScriptCpu, **kwargs)
    cpu = m.cpu
    cpu.script = program(m, cpu)
    return m, cpu


def set_mtimecmp(m: Machine, ticks: int) -> None:
    m.bus.write(CLINT_BASE + CLINT_MTIMECMP + 4, 4, 0xFFFF_FFFF)
    m.bus.write(CLINT_BASE + CLINT_MTIMECMP, 4, ticks & 0xFFFF_FFFF)
    m.bus.write(CLINT_BASE + CLINT_MTIMECMP + 4, 4, ticks >> 32)


def mtime(m: Machine) -> int:
    return m.bus.read(CLINT_BASE + CLINT_MTIME, 4)


def test_timer_armed_inside_a_slice_fires_at_its_exact_instruction(loop: MainLoop) -> None:
    def program(m: Machine, cpu: ScriptCpu):
        set_mtimecmp(m, 50)  # 5000 ns = instruction 5000 at shift 0
        yield
        for _ in range(30_000):
            yield
        m.bus.write(POWER_BASE, 4, POWER_PASS)
        yield

    m, cpu = make(loop, program)
    assert m.run() == 0
    assert cpu.first_irq_at[MIP_MTIP] == 5000


@pytest.mark.parametrize("sleep", [False, True])
def test_wfi_jumps_to_the_deadline_exactly(loop: MainLoop, sleep: bool) -> None:
    seen: list[int] = []
    deadline = 2_000 if sleep else 10_000_000  # 200 us real wait, or 1 s virtual at once

    def program(m: Machine, cpu: ScriptCpu):
        cpu.mie = MIP_MTIP
        set_mtimecmp(m, deadline)
        yield
        yield "wfi"
        seen.append(mtime(m))
        seen.append(cpu.instret)
        m.bus.write(POWER_BASE, 4, POWER_FAIL | 4 << 16)
        yield

    m, _cpu = make(loop, program, icount_sleep=sleep)
    assert m.run() == 4
    assert seen == [deadline, 2]


def test_host_event_wakes_an_idle_cpu_with_no_deadline(loop: MainLoop) -> None:
    source = ISA_IRQ_BASE + 9

    def program(m: Machine, cpu: ScriptCpu):
        cpu.mie = MIP_MEIP
        m.bus.write(PLIC_BASE + PLIC_PRIORITY + 4 * source, 4, 1)
        m.bus.write(PLIC_BASE + PLIC_ENABLE + 4, 4, 1 << (source - 32))
        yield
        yield "wfi"
        m.bus.write(POWER_BASE, 4, POWER_FAIL | 7 << 16)
        yield

    m, cpu = make(loop, program)
    m.start()
    assert m.run_until(lambda: cpu.waiting, 5)
    runs = cpu.runs
    loop.call_later(0.01, lambda: m.isa_irq(9).raise_())
    assert m.run_until(lambda: m.exit_code is not None, 5)
    assert m.exit_code == 7
    assert cpu.runs - runs <= 3  # idle means no spinning through empty slices


def test_sleeping_wake_by_host_event_keeps_real_time_waited(loop: MainLoop) -> None:
    far = 10 ** 9  # 100 s of virtual time

    def program(m: Machine, cpu: ScriptCpu):
        cpu.mie = MIP_MEIP | MIP_MTIP
        m.bus.write(PLIC_BASE + PLIC_PRIORITY + 4 * 41, 4, 1)
        m.bus.write(PLIC_BASE + PLIC_ENABLE + 4, 4, 1 << 9)
        set_mtimecmp(m, far)
        yield
        yield "wfi"
        m.bus.write(POWER_BASE, 4, POWER_PASS)
        yield

    m, cpu = make(loop, program, icount_sleep=True)
    m.start()
    assert m.run_until(lambda: cpu.waiting, 5)
    before = m.clock.now()
    loop.call_later(0.005, lambda: m.isa_irq(9).raise_())
    assert m.run_until(lambda: m.exit_code is not None, 5)
    assert before < m.clock.now() < far * 100
    assert MIP_MTIP not in cpu.first_irq_at


def test_two_machines_share_one_loop(loop: MainLoop) -> None:
    def program(code: int):
        def body(m: Machine, cpu: ScriptCpu):
            for _ in range(50_000):
                yield
            m.bus.write(POWER_BASE, 4, POWER_FAIL | code << 16)
            yield
        return body

    a, _ = make(loop, program(1))
    b, _ = make(loop, program(2))
    a.start()
    assert b.run_until(lambda: a.exit_code is not None and b.exit_code is not None, 30)
    assert (a.exit_code, b.exit_code) == (1, 2)
    assert a.instret == b.instret == 50_001


def test_loop_stop_ends_run_with_status_zero(loop: MainLoop) -> None:
    def program(m: Machine, cpu: ScriptCpu):
        while True:
            yield

    m, cpu = make(loop, program)
    loop.call_later(0.05, loop.stop)
    assert m.run() == 0
    assert m.exit_code is None
    assert cpu.instret > 0


def test_guest_fault_from_cpu_is_reported(loop: MainLoop) -> None:
    def program(m: Machine, cpu: ScriptCpu):
        yield
        raise GuestFault(3, 0x8000_0004, 0)

    m, _ = make(loop, program)
    assert m.run() == 1
    assert m.stderr.getvalue() == (
        "toynic: guest fault: breakpoint (cause 3) at pc=0x80000004, mtval=0x00000000\n")


def test_emulator_bug_is_raised_not_swallowed(loop: MainLoop) -> None:
    def program(m: Machine, cpu: ScriptCpu):
        yield
        raise RuntimeError("model bug")

    m, _ = make(loop, program)
    with pytest.raises(RuntimeError, match="model bug"):
        m.run()
