"""Guest timeouts below a second: every network guest takes `timeout_ms=` (milliseconds)
beside `timeout=` (seconds), parsed by guests/lib/args.c's arg_ms."""

from __future__ import annotations

import pytest

from emu.testing import Lab, LabMachine

NS_PER_MS = 1_000_000


def run_alone(lab: Lab, guest: str, append: str) -> LabMachine:
    """`guest` with a NIC on a silent peer, run to its exit; icount_sleep=False so idle
    time jumps to the guest's timer (nothing will ever arrive)."""
    lab.peer("wire")
    machine = lab.machine(guest, append, ["ne2k_isa,netdev=wire"], icount_sleep=False)
    assert lab.run_until(lambda: machine.exit_code is not None, 30), machine.output
    return machine


def virtual_ms(machine: LabMachine) -> float:
    return machine.machine.clock.now() / NS_PER_MS


@pytest.mark.parametrize(("guest", "append", "says"), [
    ("pingd", "ip=10.0.0.1 count=1 timeout_ms=250", "pingd: no request for 0.250 s"),
    ("udp-echo", "ip=10.0.0.1 count=1 timeout_ms=40", "udp-echo: idle for 0.040 s"),
    ("echo", "count=1 timeout_ms=120", "echo: idle for 0.120 s"),
])
def test_a_millisecond_timeout_expires_in_that_many_virtual_ms(guest: str, append: str,
                                                               says: str) -> None:
    wanted = int(append.rsplit("timeout_ms=", 1)[1])
    with Lab() as lab:
        machine = run_alone(lab, guest, append)
        assert says in machine.output
        assert machine.exit_code == 1
        # Booting and polling cost a few virtual ms, never a whole second.
        assert wanted <= virtual_ms(machine) < wanted + 100


def test_ping_gives_up_on_arp_after_timeout_ms() -> None:
    with Lab() as lab:
        machine = run_alone(lab, "ping", "ip=10.0.0.2 peer=10.0.0.1 count=1 timeout_ms=300")
        assert machine.exit_code not in (None, 0)
        assert 300 <= virtual_ms(machine) < 400


def test_timeout_in_seconds_still_means_seconds() -> None:
    with Lab() as lab:
        machine = run_alone(lab, "pingd", "ip=10.0.0.1 count=1 timeout=2")
        assert "pingd: no request for 2.000 s" in machine.output
        assert 2000 <= virtual_ms(machine) < 2100


@pytest.mark.parametrize(("append", "says"), [
    ("ip=10.0.0.1 count=1 timeout=1 timeout_ms=5",
     "give timeout= (seconds) or timeout_ms= (milliseconds), not both"),
    ("ip=10.0.0.1 timeout_ms=soon", "bad value for timeout_ms: 'soon'"),
    # 4294968 s is more milliseconds than 32 bits hold: refused, not wrapped to 0.7 s.
    ("ip=10.0.0.1 timeout=4294968", "bad value for timeout: '4294968'"),
])
def test_bad_timeouts_are_one_line_and_status_2(append: str, says: str) -> None:
    with Lab() as lab:
        machine = run_alone(lab, "pingd", append)
        assert machine.exit_code == 2
        assert says in machine.output
