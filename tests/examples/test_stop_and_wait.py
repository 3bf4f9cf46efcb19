"""Example: Hypothesis finds a real protocol bug through link faults and shrinks it to
the one or two faults that cause it (docs/testing-kit.md, "Fault schedules").

Two machines in a deterministic lab run `saw.elf`, a stop-and-wait transfer over UDP
(guests/saw.c): the sender sends 3 blocks one at a time and resends a block every 50
virtual ms until it is acknowledged (it is told the receiver's MAC: ARP has no checksum,
and a corrupted ARP reply is a failure of another protocol). A `FaultSchedule` on the
sender's hub port gives each frame crossing it a fate (deliver, drop, duplicate, delay,
corrupt). The property: the receiver hands on exactly the blocks sent, in order, each
once.

- without a bug the property holds whatever the faults;
- `bug=nodup` (no duplicate detection) fails with one fault: a dropped ACK or a
  duplicated DATA makes the receiver hand a block on twice;
- `bug=rearm` (the retransmit timer is not re-armed) fails with two: the block and its
  one retransmission both lost, and the sender waits for ever.

Every run is a function of its schedule alone (one global virtual time), so Hypothesis
can replay and shrink it; each run takes a fraction of a second of real time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, find, given, settings

from emu.testing import FaultSchedule, Lab, apply_faults, fault_schedules

pytestmark = pytest.mark.timeout(600)

BLOCKS = 3
EXPECTED = [f"block {n}: block {n} of the transfer" for n in range(BLOCKS)]
RECEIVER_MAC = "52:54:00:00:00:02"
# Faults on up to 10 frames: fewer than the sender's 20 tries per block, and 10 x 50 ms
# of lost frames is well inside the receiver's 2 s of patience.
SCHEDULES = fault_schedules(max_frames=10, max_delay_ns=150_000_000, max_byte=80)
# derandomize: the search, and so the counterexample, is the same every run.
SEARCH = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])


def transfer(schedule: FaultSchedule, bug: str = "none") -> list[str]:
    """The blocks the receiver handed on (its `saw: block ...` lines, in order)."""
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        apply_faults(lab, "h0", schedule)
        receiver = lab.machine(
            "saw", f"mode=recv ip=10.0.0.2 blocks={BLOCKS} timeout_ms=2000 bug={bug}",
            [f"ne2k_isa,netdev=h1,mac={RECEIVER_MAC}"], name="receiver")
        lab.machine(
            "saw", f"mode=send ip=10.0.0.1 peer=10.0.0.2 peer_mac={RECEIVER_MAC} "
            f"blocks={BLOCKS} rto_ms=50 tries=20 bug={bug}",
            ["ne2k_isa,netdev=h0,mac=52:54:00:00:00:01"], name="sender")
        # Virtual seconds: the receiver gives up after 2 s of silence, so it always ends.
        assert lab.run_until(lambda: receiver.exit_code is not None, timeout=60)
        return re.findall(r"^saw: (block \d+: .*)$", receiver.output, re.MULTILINE)


def broken(bug: str) -> Callable[[FaultSchedule], bool]:
    """The predicate hypothesis.find minimises: the transfer went wrong."""
    return lambda schedule: transfer(schedule, bug) != EXPECTED


def test_the_transfer_without_faults_delivers_every_block_once() -> None:
    assert transfer(FaultSchedule()) == EXPECTED


@settings(max_examples=30, deadline=None)
@given(SCHEDULES)
def test_stop_and_wait_survives_any_schedule_of_faults(schedule: FaultSchedule) -> None:
    assert transfer(schedule) == EXPECTED, str(schedule)


def test_no_duplicate_detection_shrinks_to_one_fault() -> None:
    minimal = find(SCHEDULES, broken("nodup"), settings=SEARCH)
    assert minimal.faults == 1, str(minimal)
    delivered = transfer(minimal, "nodup")
    assert len(delivered) > BLOCKS and sorted(set(delivered)) == EXPECTED


def test_a_timer_never_rearmed_shrinks_to_two_faults() -> None:
    minimal = find(SCHEDULES, broken("rearm"), settings=SEARCH)
    assert minimal.faults == 2, str(minimal)
    assert len(transfer(minimal, "rearm")) < BLOCKS
    # One fault is not enough: the single retransmission repairs it.
    for index, fate in enumerate(minimal.fates):
        if fate.kind != "deliver":
            fates = list(minimal.fates)
            fates[index] = type(fate)()
            assert transfer(FaultSchedule(tuple(fates)), "rearm") == EXPECTED
