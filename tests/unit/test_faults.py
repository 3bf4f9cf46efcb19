"""emu.testing.faults: each fate on a link, the schedule's bookkeeping, and that the
strategy shrinks towards deliver (the fewest, smallest faults)."""

from __future__ import annotations

import pytest
from hypothesis import find, settings

from emu.testing import (
    DELIVER,
    Fate,
    FaultFilter,
    FaultSchedule,
    RecordingClient,
    ethernet,
    fault_schedules,
)
from netdev.client import connect_peers
from tests.unit.test_filter_netem import ManualTimeline

DST = bytes.fromhex("020000000002")
SRC = bytes.fromhex("020000000001")


def frame(n: int) -> bytes:
    return ethernet(DST, SRC, 0x88B5, bytes([n]) * 46)


def link(*fates: Fate, queue: str = "all",
         ) -> tuple[RecordingClient, RecordingClient, FaultFilter, ManualTimeline]:
    timeline = ManualTimeline()
    netdev, other = RecordingClient("n0"), RecordingClient("other")
    connect_peers(netdev, other)
    return netdev, other, FaultFilter(FaultSchedule(fates), netdev, timeline, queue), timeline


def test_each_fate_does_what_it_says() -> None:
    netdev, other, faults, timeline = link(
        DELIVER, Fate("drop"), Fate("duplicate"), Fate("delay", delay_ns=5000),
        Fate("corrupt", byte=61))
    for n in range(6):
        netdev.send(frame(n))
    corrupted = bytearray(frame(4))
    corrupted[61 % 60] ^= 0xFF
    assert other.received == [frame(0), frame(2), frame(2), bytes(corrupted), frame(5)]
    timeline.advance(5000)
    assert other.received[-1] == frame(3)
    assert [(index, fate.kind, way) for index, fate, way in faults.applied] == [
        (1, "drop", "tx"), (2, "duplicate", "tx"), (3, "delay", "tx"), (4, "corrupt", "tx")]


def test_frames_are_numbered_in_crossing_order_both_ways_unless_told() -> None:
    netdev, other, _, _ = link(DELIVER, Fate("drop"))
    netdev.send(frame(0))
    other.send(frame(1))  # frame 1: towards the netdev, dropped
    assert other.received == [frame(0)] and netdev.received == []
    netdev, other, _, _ = link(Fate("drop"), queue="rx")
    netdev.send(frame(0))  # tx: not counted
    other.send(frame(1))
    assert other.received == [frame(0)] and netdev.received == []


def test_schedule_counts_and_names_its_faults() -> None:
    schedule = FaultSchedule((DELIVER, Fate("drop"), DELIVER, Fate("delay", delay_ns=7)))
    assert schedule.faults == 2
    assert str(schedule) == "frame 1: drop; frame 3: delay 7 ns"
    assert schedule.fate(99) == DELIVER
    assert str(FaultSchedule()) == "no faults"


def test_close_takes_the_filter_off_and_drops_what_it_holds() -> None:
    netdev, other, faults, timeline = link(Fate("delay", delay_ns=10))
    netdev.send(frame(0))
    faults.close()
    timeline.advance(100)
    netdev.send(frame(1))
    assert other.received == [frame(1)] and netdev.shapers == []


def test_the_strategy_shrinks_to_the_fewest_smallest_faults() -> None:
    quiet = settings(database=None, derandomize=True, max_examples=500)
    assert find(fault_schedules(), lambda s: s.faults >= 1, settings=quiet) == FaultSchedule(
        (Fate("drop"),))
    delayed = find(fault_schedules(kinds=("delay",)),
                   lambda s: any(f.delay_ns > 1000 for f in s.fates), settings=quiet)
    assert delayed == FaultSchedule((Fate("delay", delay_ns=1001),))


def test_unknown_kinds_and_queues_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        fault_schedules(kinds=("explode",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue must be"):
        link(queue="sideways")
