"""A slow guest flooded on an NE2000: with `lossless=off` the ring overflows, the chip
misses frames (ISR.OVW, CNTR2) and the guest driver recovers as Linux's `ei_rx_overrun`
does; every frame after the recovery arrives intact and the counters add up. With
`lossless=on` (the default) nothing is missed. Also the overrun guest's internal
loopback and tally-counter self-test (guests/overrun.c)."""

from __future__ import annotations

import re
import struct

import pytest

from devices.ne2000 import DEFAULT_MAC
from emu.testing import Lab
from netdev.framing import BadFcsFrame

pytestmark = pytest.mark.timeout(300)

SRC = bytes.fromhex("020000000001")
FLOOD_TYPE = 0x88B6
FLOOD_MAGIC = 0x464C4F44
FRAMES = 600  # the flood, 300 µs apart: far faster than the guest's 2 ms per frame
TAIL = 5  # then, after a pause, a few frames slower than the guest: all must arrive
BOOT_NS = 5_000_000
SPACING_NS = 300_000


def flood_frame(seq: int, size: int = 600) -> bytes:
    payload = bytearray(i & 0xFF for i in range(size - 14))
    payload[0:12] = struct.pack(">III", FLOOD_MAGIC, seq, FRAMES + TAIL)
    return DEFAULT_MAC + SRC + struct.pack(">H", FLOOD_TYPE) + bytes(payload)


def flood(lossless: str) -> tuple[str, int | None, object]:
    with Lab(deterministic=True, quantum_ns=50_000) as lab:
        peer = lab.peer("wire")
        m = lab.machine("overrun", "mode=sink delay=2000 timeout=1",
                        [f"ne2k_isa,netdev=wire,lossless={lossless}"])
        start = lab.now_ns + BOOT_NS
        for seq in range(1, FRAMES + 1):
            peer.send(flood_frame(seq), at_ns=start + seq * SPACING_NS)
        tail = start + FRAMES * SPACING_NS + 100_000_000
        for i in range(TAIL):
            peer.send(flood_frame(FRAMES + 1 + i), at_ns=tail + i * 5_000_000)
        assert lab.run_until(lambda: m.exit_code is not None, 120), m.output
        return m.output, m.exit_code, m.nic.stats


def summary(output: str) -> dict[str, int]:
    got = re.search(r"received (\d+) frames, last seq (\d+), (\d+) out of order, "
                    r"(\d+) corrupt", output)
    tally = re.search(r"(\d+) overruns, (\d+) resends, tally: (\d+) alignment, (\d+) crc, "
                      r"(\d+) missed", output)
    assert got and tally, output
    keys = ("received", "last", "disorder", "corrupt", "overruns", "resends", "fae", "crc",
            "missed")
    return dict(zip(keys, map(int, got.groups() + tally.groups()), strict=True))


def test_slow_guest_recovers_from_overruns_with_lossless_off() -> None:
    output, code, stats = flood("off")
    s = summary(output)
    assert code == 0, output
    assert s["disorder"] == 0 and s["corrupt"] == 0
    assert s["overruns"] > 0, "the ring never overflowed"
    assert stats.overflows >= s["overruns"] > 0  # type: ignore[attr-defined]
    offered = FRAMES + TAIL
    assert stats.offered == offered  # type: ignore[attr-defined]
    # Every frame the chip stored reached the guest: the recovery lost nothing in the ring.
    assert s["received"] == stats.accepted  # type: ignore[attr-defined]
    missed, filtered = stats.missed, stats.total_filtered()  # type: ignore[attr-defined]
    assert offered == s["received"] + missed + filtered
    assert missed > 0
    # Frames from the wire while the recovery had the chip stopped (its 2 ms wait) or
    # drained the ring in loopback: no other reason.
    reasons = {k: v for k, v in stats.filtered.items() if v}  # type: ignore[attr-defined]
    assert set(reasons) == {"stopped", "loopback"}, reasons
    # CNTR2 counted them (read on ISR.CNT and at the end; it stops at 0xC0 between reads).
    assert 0 < s["missed"] <= missed
    # After the last recovery every frame arrives: the tail, all of it, in order.
    assert s["last"] == offered
    gaps = [(int(a), int(b)) for a, b in re.findall(r"missing (\d+)\.\.(\d+)", output)]
    assert gaps and all(b <= FRAMES for _, b in gaps), output


def test_slow_guest_misses_nothing_with_lossless_on() -> None:
    output, code, stats = flood("on")
    s = summary(output)
    assert code == 0, output
    assert s["received"] == FRAMES + TAIL and s["last"] == FRAMES + TAIL
    assert s["overruns"] == 0 and s["missed"] == 0
    assert stats.missed == 0 and stats.overflows == 0  # type: ignore[attr-defined]
    assert "missing" not in output


def test_guest_internal_loopback_and_crc_counter() -> None:
    with Lab(deterministic=True, quantum_ns=50_000) as lab:
        peer = lab.peer("wire")
        m = lab.machine("overrun", "mode=loopback count=8", ["ne2k_isa,netdev=wire"])
        assert lab.run_until(lambda: m.exit_code is not None, 60), m.output
        assert m.exit_code == 0, m.output
        assert "overrun: loopback ok" in m.output
        assert peer.received == [], "a looped-back frame never reaches the wire"
        stats = m.nic.stats
        assert stats.looped == 10 and stats.accepted == 9
        assert stats.filtered["bad_crc"] == 1


def test_full_tally_counters_are_emptied_while_frames_come() -> None:
    """A counter stops at 0xC0 and raises ISR.CNT: the driver's look at ISR, before each
    look at the ring, empties the counters then, so none of 300 CRC errors goes
    uncounted (without it the guest's final read would find 0xC0 at most)."""
    bad = 300
    # A driver that never empties them keeps the interrupt asserted and its guest busy:
    # a short wall-clock cap makes that a quick failure.
    with Lab(deterministic=True, quantum_ns=50_000, wall_cap=20) as lab:
        peer = lab.peer("wire")
        m = lab.machine("overrun", "mode=sink timeout=1", ["ne2k_isa,netdev=wire"])
        assert lab.wait_output(m, "overrun: sinking"), m.output
        # Eight at a time, a virtual millisecond apart (a scheduled send would take plain
        # bytes, not the frame's type): CNTR1 reaches 0xC0 at the end of a batch, and the
        # guest has time to look before the next.
        for seq in range(1, bad + 1):
            peer.send(BadFcsFrame(flood_frame(seq)))
            if seq % 8 == 0:
                lab.run_for(0.001)
        peer.send(flood_frame(bad + 1))
        assert lab.run_until(lambda: m.exit_code is not None, 5), m.output
    s = summary(m.output)
    assert s["received"] == 1 and s["last"] == bad + 1, m.output
    assert s["crc"] == bad, m.output
