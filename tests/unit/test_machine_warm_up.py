"""An idle machine translates ahead (emu.board.machine.Machine._warm_up through
emu.cpu.cpu.Cpu.warm_up): once its guest has waited in `wfi` for WARM_UP_AFTER, code
it has run and code that code calls is compiled a region per loop turn, and a frame that
arrives meanwhile is still answered; a busy guest never warms up."""

from __future__ import annotations

from emu.board.machine import WARM_UP_AFTER
from emu.testing import BROADCAST, Lab, ethernet

HOST = "02:00:00:00:00:01"


def test_an_idle_guest_translates_ahead_and_still_answers() -> None:
    with Lab() as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        assert lab.wait_output(echo, "returning every frame", 30)
        cpu = echo.machine.cpu
        booted = len(cpu._regions)
        # nothing arrives: the guest idles, and the machine compiles ahead
        assert lab.run_until(lambda: len(cpu._regions) > booted + 5, 30)
        for n in range(3):
            wire.send(ethernet(BROADCAST, HOST, 0x88B5, bytes([n]) * 50))
        assert lab.run_until(lambda: len(wire.received) == 3, 30)
        assert [frame[14] for frame in wire.received] == [0, 1, 2]
        # until nothing is left to translate
        assert lab.run_until(lambda: not cpu.warm_up(), 60)


def test_warm_up_waits_for_the_guest_to_idle() -> None:
    assert 0.005 <= WARM_UP_AFTER <= 0.1
    with Lab(deterministic=True) as lab:
        lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        # driven by virtual time, a lab's machine never idles on the loop: no warm-up
        assert lab.run_until(lambda: "returning every frame" in echo.output, 30)
        lab.run_for(1.0)
        assert echo.machine._warm_handle is None
