"""Machine.pause / Machine.resume — QEMU's vm_stop(RUN_STATE_PAUSED) and vm_start behind
the monitor's `stop`/`cont`: no slice, no timer and a frozen virtual clock while paused
(an idle sleep=on machine never warps by the time spent paused), NIC input queued in the
net layer and delivered on resume, HMP and QMP wired to it, and record/replay refusing it.
The guest is the scripted stand-in CPU of test_machine_sched."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator

import pytest

import emu.board.machine as machine_module
from emu.board.layout import (
    CLINT_BASE,
    CLINT_MTIMECMP,
    ISA_IRQ_BASE,
    PLIC_BASE,
    PLIC_ENABLE,
    PLIC_PRIORITY,
    POWER_BASE,
    POWER_PASS,
    UART_BASE,
)
from emu.board.machine import Machine
from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.cpu.csr import MIP_MEIP
from emu.monitor.hmp import Monitor
from emu.monitor.qmp import Qmp
from netdev.client import NetClient
from netdev.net import Net
from tests.unit.test_machine_sched import ScriptCpu, make

TURNS = 30
TIMEOUT = 10.0
FRAME = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + bytes(50)


def counter(m: Machine, _cpu: ScriptCpu) -> Iterator[None]:
    """Prints forever, one byte per instruction."""
    while True:
        m.bus.write(UART_BASE, 1, ord("x"))
        yield


def spin(loop: MainLoop, turns: int = TURNS) -> None:
    """A bounded number of loop turns, each polling host I/O once."""
    for _ in range(turns):
        loop.run_once()


def printed(m: Machine) -> int:
    return len(m.console.getvalue())  # type: ignore[attr-defined]


def test_a_paused_machine_runs_nothing_and_resumes_where_it_stopped(loop: MainLoop) -> None:
    m, cpu = make(loop, counter)
    changes: list[bool] = []
    m.run_state_listeners.append(changes.append)
    m.start()
    assert loop.run_until(lambda: printed(m) > 1000, TIMEOUT)
    m.pause()
    assert m.paused and not m.running
    frozen = (printed(m), cpu.instret, m.clock.now(), cpu.runs)
    spin(loop)
    assert (printed(m), cpu.instret, m.clock.now(), cpu.runs) == frozen
    m.pause()  # a second stop changes nothing and tells nobody
    assert changes == [False]
    m.resume()
    assert m.running and changes == [False, True]
    assert loop.run_until(lambda: printed(m) > frozen[0] + 1000, TIMEOUT)
    assert m.clock.now() == cpu.instret << m.clock.shift


def test_pausing_before_start_starts_paused(loop: MainLoop) -> None:
    m, cpu = make(loop, counter)
    m.pause()
    m.start()
    spin(loop)
    assert cpu.instret == 0 and printed(m) == 0
    m.resume()
    assert loop.run_until(lambda: printed(m) > 0, TIMEOUT)


def test_an_idle_sleeping_machine_never_counts_the_time_spent_paused(
        loop: MainLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    """sleep=on: virtual time while idle is real time, but only real time not paused."""
    # Binary fractions of a second, so the nanoseconds come out exact.
    real = [1024.0]
    # Only the machine's view of real time is fake; the loop's stays real.
    monkeypatch.setattr(machine_module, "time", types.SimpleNamespace(monotonic=lambda: real[0]))
    source = ISA_IRQ_BASE + 9
    woken: list[int] = []

    def program(m: Machine, cpu: ScriptCpu) -> Iterator[str | None]:
        cpu.mie = MIP_MEIP
        m.bus.write(PLIC_BASE + PLIC_PRIORITY + 4 * source, 4, 1)
        m.bus.write(PLIC_BASE + PLIC_ENABLE + 4, 4, 1 << (source - 32))
        # A timer 100 s ahead: the machine sleeps towards it in real time.
        m.bus.write(CLINT_BASE + CLINT_MTIMECMP + 4, 4, 0)
        m.bus.write(CLINT_BASE + CLINT_MTIMECMP, 4, 1_000_000_000)
        yield "wfi"
        woken.append(m.clock.now())
        while True:
            yield "wfi"

    m, _cpu = make(loop, program)
    m.start()
    assert loop.run_until(lambda: m.idle, TIMEOUT)
    idle_at = m.clock.now()
    real[0] += 2**-8            # 3.90625 ms asleep, then paused
    m.pause()
    assert m.clock.now() == idle_at + 3_906_250
    real[0] += 64.0             # 64 s paused
    spin(loop)
    assert m.clock.now() == idle_at + 3_906_250
    m.resume()
    assert loop.run_until(lambda: m.idle, TIMEOUT)
    real[0] += 2**-9            # 1.953125 ms asleep again, then an interrupt
    m.isa_irq(9).raise_()
    assert loop.run_until(lambda: bool(woken), TIMEOUT)
    assert woken == [idle_at + 3_906_250 + 1_953_125]


def test_an_interrupt_raised_while_paused_wakes_the_guest_on_resume(loop: MainLoop) -> None:
    woken: list[int] = []

    def program(m: Machine, cpu: ScriptCpu) -> Iterator[str | None]:
        cpu.mie = MIP_MEIP
        m.bus.write(PLIC_BASE + PLIC_PRIORITY + 4 * (ISA_IRQ_BASE + 9), 4, 1)
        m.bus.write(PLIC_BASE + PLIC_ENABLE + 4, 4, 1 << (ISA_IRQ_BASE + 9 - 32))
        yield "wfi"
        woken.append(cpu.instret)
        while True:
            yield "wfi"

    m, _cpu = make(loop, program)
    m.start()
    assert loop.run_until(lambda: m.idle, TIMEOUT)
    m.pause()
    m.isa_irq(9).raise_()
    spin(loop)
    assert woken == []
    m.resume()
    assert loop.run_until(lambda: bool(woken), TIMEOUT)


class Sender(NetClient):
    def __init__(self) -> None:
        super().__init__("sender", "test")


def test_frames_sent_while_paused_queue_and_arrive_on_resume(loop: MainLoop) -> None:
    net = Net(loop)
    try:
        net.add_netdev(parse_opts("hubport,id=h0,hubid=0", "type"))
        net.add_netdev(parse_opts("hubport,id=h1,hubid=0", "type"))
        m, _cpu = make(loop, counter)
        # lossless=off: the chip takes (and counts) every frame offered, started or not.
        nic = m.add_device(parse_opts("ne2k_isa,netdev=h0,lossless=off", "driver"), net)
        sender = Sender()
        net.add_nic(sender, "h1")
        m.start()
        sender.send(FRAME)
        assert nic.stats.offered == 1
        m.pause()
        for _ in range(3):
            sender.send(FRAME)
        spin(loop)
        # Held in the net layer (the hub port's queue, as QEMU's hub asks
        # qemu_can_send_packet, false while the VM is stopped).
        assert nic.stats.offered == 1
        assert len(net.find_netdev("h1").incoming_queue) == 3
        m.resume()
        assert nic.stats.offered == 4
        assert len(net.find_netdev("h1").incoming_queue) == 0
    finally:
        net.close()


def test_hmp_stop_cont_and_info_status(loop: MainLoop) -> None:
    net = Net(loop)
    try:
        m, cpu = make(loop, counter)
        hmp = Monitor(net, m)
        qmp = Qmp(net, hmp, m)
        events: list[str] = []
        session = qmp.session(lambda line: events.append(json.loads(line)["event"]))
        session.answer('{"execute": "qmp_capabilities"}')
        m.start()
        assert hmp.execute("info status") == "VM status: running\n"
        assert hmp.execute("stop") == ""
        assert hmp.execute("info status") == "VM status: paused\n"
        instret = cpu.instret
        spin(loop)
        assert cpu.instret == instret
        assert hmp.execute("stop") == ""  # already paused: no second STOP
        assert hmp.execute("c") == ""
        assert hmp.execute("info status") == "VM status: running\n"
        assert hmp.execute("cont") == ""  # already running: no second RESUME
        assert events == ["STOP", "RESUME"]
        assert hmp.execute("stop now") == "stop: extraneous characters at the end of line\n"
        assert "stop|s  -- stop emulation\n" in hmp.execute("help")
    finally:
        net.close()


def test_qmp_stop_cont_query_status_and_events(loop: MainLoop) -> None:
    net = Net(loop)
    try:
        m, _cpu = make(loop, counter)
        qmp = Qmp(net, Monitor(net, m), m)
        pushed: list[dict] = []
        session = qmp.session(lambda line: pushed.append(json.loads(line)))

        def ask(command: str, **arguments: object) -> dict:
            return json.loads(session.answer(json.dumps(
                {"execute": command, "arguments": arguments})))

        ask("qmp_capabilities")
        m.start()
        assert ask("stop") == {"return": {}}
        assert [e["event"] for e in pushed] == ["STOP"] and "data" not in pushed[0]
        assert ask("query-status")["return"] == {"status": "paused", "singlestep": False,
                                                 "running": False}
        assert ask("cont") == {"return": {}}
        assert [e["event"] for e in pushed] == ["STOP", "RESUME"]
        assert ask("query-status")["return"]["running"] is True
        assert ask("stop", now=True)["error"] == {"class": "GenericError",
                                                  "desc": "Parameter 'now' is unexpected"}
        m.bus.write(POWER_BASE, 4, POWER_PASS)
        assert ask("cont")["error"] == {"class": "GenericError",
                                        "desc": "Resetting the Virtual Machine is required"}
    finally:
        net.close()


def test_without_a_machine_there_is_no_stop(loop: MainLoop) -> None:
    net = Net(loop)
    try:
        hmp = Monitor(net)
        assert hmp.execute("stop") == "unknown command: 'stop'\n"
        session = Qmp(net, hmp).session(lambda _line: None)
        session.answer('{"execute": "qmp_capabilities"}')
        reply = json.loads(session.answer('{"execute": "stop"}'))
        assert reply["error"]["class"] == "CommandNotFound"
    finally:
        net.close()


class Journal:
    replaying = False


def test_a_recorded_or_replayed_run_refuses_to_pause(loop: MainLoop) -> None:
    net = Net(loop)
    try:
        m, _cpu = make(loop, counter)
        m.journal = Journal()  # type: ignore[assignment]
        with pytest.raises(UserError, match="recorded or replayed"):
            m.pause()
        assert m.running
        assert Monitor(net, m).execute("stop") == (
            "Error: stop: the run is recorded or replayed (-icount rr=...); it cannot pause\n")
    finally:
        net.close()


def test_a_lab_cannot_drive_a_paused_machine(loop: MainLoop) -> None:
    m, _cpu = make(loop, counter)
    m.pause()
    with pytest.raises(RuntimeError, match="paused"):
        m.run_to(1000)
