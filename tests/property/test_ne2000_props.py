"""NE2000 properties (Hypothesis stateful tests).

`DriverMachine`: a well-behaved guest (the reference driver) under arbitrary incoming
frames through the net layer; the driver must see exactly the frames an independent
filter model accepts, in order, byte-exact, and none may be lost while the ring is full.

`ChaosMachine`: arbitrary port I/O (any register, page, value, width, the data and
reset ports), arbitrary frames and driver actions interleaved; the emulator must never
raise, never touch memory outside the 48 KiB buffer, keep per-operation work bounded,
account for every offered frame, keep the IRQ line equal to (ISR & IMR & 0x7F) != 0 and
never let a transmitted frame change afterwards.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from devices.dp8390_regs import ENISR_ALL, ETH_MAX_FRAME, MEM_SIZE
from devices.ne2000 import IO_SIZE, Ne2000Isa
from emu.core.clock import VirtualClock
from emu.testing import QTest, RecordingClient
from netdev.client import connect_peers
from tests.ne2000_driver import DriverError, Ne2000Driver, ether_crc

pytestmark = pytest.mark.timeout(120)

BASE = 0x300
MAC = bytes.fromhex("525400123456")
BROADCAST = b"\xff" * 6
MULTICASTS = [bytes.fromhex(h) for h in ("01005e000001", "01005e0000fb", "333300000001",
                                         "0180c2000000", "01005e7ffffa")]
# The most bytes one port access or one frame may write into the buffer.
MAX_WRITE_PER_OP = 4 + ETH_MAX_FRAME


def oracle_accepts(frame: bytes, rcr: int, mar: bytes) -> bool:
    if not 0 < len(frame) <= ETH_MAX_FRAME:
        return False
    dst = (frame + bytes(6))[:6]
    if rcr & 0x10:
        return True
    if dst == BROADCAST:
        return bool(rcr & 0x04)
    if dst[0] & 1:
        index = ether_crc(dst) >> 26
        return bool(rcr & 0x08) and bool(mar[index >> 3] & (1 << (index & 7)))
    return dst == MAC


def padded(frame: bytes) -> bytes:
    return frame + bytes(max(0, 60 - len(frame)))


class CheckedMemory(bytearray):
    """The chip's buffer, refusing any access outside [0, 48 KiB) and counting writes."""

    written = 0

    def _check(self, key: int | slice, length: int | None = None) -> None:
        if isinstance(key, slice):
            assert key.step in (None, 1)
            start, stop = key.start or 0, key.stop
            assert stop is not None and 0 <= start <= stop <= MEM_SIZE, key
            if length is not None:
                assert length == stop - start, "slice assignment would resize the buffer"
        else:
            assert 0 <= key < MEM_SIZE, key

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        self._check(key)
        return super().__getitem__(key)

    def __setitem__(self, key, value):  # type: ignore[no-untyped-def]
        if isinstance(key, slice):
            self._check(key, len(value))
            self.written += len(value)
        else:
            self._check(key)
            self.written += 1
        super().__setitem__(key, value)


class AliasPeer(RecordingClient):
    """Also keeps the very objects the NIC hands over, beside the kit's copies."""

    def __init__(self) -> None:
        super().__init__("peer", "test-peer")
        self.sent: list[tuple[object, bytes]] = []

    def receive(self, frame: bytes) -> int:
        self.sent.append((frame, bytes(frame)))
        return super().receive(frame)


def frame_strategy() -> st.SearchStrategy[bytes]:
    dst = st.one_of(
        st.just(MAC), st.just(BROADCAST), st.sampled_from(MULTICASTS), st.binary(min_size=6,
                                                                                max_size=6)
    )
    return st.builds(
        lambda d, size, seed: (d + bytes((seed + i) & 0xFF for i in range(2000)))[:size],
        dst,
        st.one_of(st.integers(0, 2000), st.sampled_from([0, 5, 59, 60, 1514, 1518, 1519])),
        st.integers(0, 255),
    )


class Harness:
    def __init__(self, lossless: bool = True, clock: VirtualClock | None = None) -> None:
        self.qt = QTest(clock=clock)
        self.card = Ne2000Isa(MAC, "nic", lossless=lossless, tx_clock=clock)
        self.qt.map_io(BASE, IO_SIZE, self.card, "nic")
        self.card.irq.connect(self.qt.irqs[9].set)
        self.chip = self.card.chip
        self.mem = CheckedMemory(self.chip.mem)
        self.chip.mem = self.mem
        self.peer = AliasPeer()
        connect_peers(self.card.nc, self.peer)
        self.driver = Ne2000Driver(self.qt, BASE)

    def check_common(self) -> None:
        chip = self.chip
        assert len(chip.mem) == MEM_SIZE
        assert self.card.irq.level == bool(chip.isr & chip.imr & ENISR_ALL)
        assert self.qt.irq_level(9) == self.card.irq.level
        stats = chip.stats
        assert stats.offered == stats.accepted + stats.total_filtered() + stats.missed
        for obj, snapshot in self.peer.sent:
            assert type(obj) is bytes and obj == snapshot
        assert chip.pstart <= MEM_SIZE and chip.pstop <= MEM_SIZE
        assert chip.bnry << 8 < MEM_SIZE and chip.curr << 8 < MEM_SIZE


class DriverMachine(RuleBasedStateMachine):
    """The reference driver against arbitrary incoming frames: lossless and exact."""

    @initialize(
        rcr=st.sampled_from([0x00, 0x04, 0x08, 0x0C, 0x10, 0x1C]),
        mar=st.binary(min_size=8, max_size=8),
        ring=st.sampled_from([(0x46, 0x80), (0x4C, 0x60), (0x40, 0x4E), (0x60, 0xC0)]),
    )
    def setup(self, rcr: int, mar: bytes, ring: tuple[int, int]) -> None:
        self.h = Harness()
        tx = 0x40 if ring[0] > 0x40 else 0xB0
        self.h.driver = Ne2000Driver(self.h.qt, BASE, tx_page=tx, rx_start=ring[0],
                                     rx_stop=ring[1])
        self.rcr, self.mar = rcr, mar
        assert self.h.driver.probe() == MAC
        self.h.driver.init(rcr=rcr, mar=mar)
        self.expected: list[bytes] = []
        self.received: list[bytes] = []

    @rule(frame=frame_strategy())
    def incoming(self, frame: bytes) -> None:
        queue = self.h.card.nc.incoming_queue
        if self.h.peer.send(frame) == 0:
            event("frame queued (ring full)")
            assert len(queue) > 0
        if oracle_accepts(frame, self.rcr, self.mar):
            self.expected.append(padded(frame))

    @rule(frames=st.lists(frame_strategy(), min_size=2, max_size=8))
    def incoming_burst(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.incoming(frame)

    @rule(count=st.integers(1, 8))
    def driver_reads(self, count: int) -> None:
        self.received += self.h.driver.receive(count)
        assert self.received == self.expected[: len(self.received)]

    @rule(frame=st.binary(min_size=1, max_size=200))
    def driver_transmits(self, frame: bytes) -> None:
        before = len(self.h.peer.sent)
        self.h.driver.transmit(frame)
        assert len(self.h.peer.sent) == before + 1
        assert self.h.peer.sent[-1][1] == frame

    @rule()
    def drain(self) -> None:
        if len(self.h.card.nc.incoming_queue):
            event("drain with frames waiting in the net queue")
        for _ in range(10000):
            got = self.h.driver.receive(64)
            self.received += got
            assert len(self.received) <= len(self.expected), "more frames than were accepted"
            if not got and len(self.h.card.nc.incoming_queue) == 0:
                break
        assert self.received == self.expected

    @invariant()
    def in_order_prefix(self) -> None:
        if not hasattr(self, "h"):
            return
        self.h.check_common()
        assert self.received == self.expected[: len(self.received)]
        queued = len(self.h.card.nc.incoming_queue)
        assert len(self.expected) - len(self.received) <= queued + self.h.chip.stats.accepted


class ChaosMachine(RuleBasedStateMachine):
    """Arbitrary guest port I/O, frames and driver actions: the emulator stays sane."""

    lossless = True
    wire_timed = False

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(self.lossless, VirtualClock() if self.wire_timed else None)
        self.mark = 0
        self.queued = 0

    def _begin(self) -> None:
        self.mark = self.h.mem.written
        self.queued = len(self.h.card.nc.incoming_queue)

    def _end(self, limit: int = MAX_WRITE_PER_OP) -> None:
        # A register write that makes room flushes the net queue: each frame waiting
        # there may be stored once on top of what the operation itself writes.
        assert self.h.mem.written - self.mark <= limit + MAX_WRITE_PER_OP * self.queued

    @rule(offset=st.integers(0, 0x1F), width=st.sampled_from([1, 1, 1, 2, 4]),
          value=st.integers(0, 0xFFFFFFFF))
    def port_write(self, offset: int, width: int, value: int) -> None:
        self._begin()
        self.h.qt.isa.write(BASE + offset, width, value & ((1 << (8 * width)) - 1))
        self._end()

    @rule(page=st.integers(0, 3), offset=st.integers(1, 0xF), value=st.integers(0, 255))
    def paged_write(self, page: int, offset: int, value: int) -> None:
        cr = self.h.qt.inb(BASE)
        self._begin()
        self.h.qt.outb(BASE, (cr & 0x3F) | page << 6)
        self.h.qt.outb(BASE + offset, value)
        self._end()

    @rule(offset=st.integers(0, 0x1F), width=st.sampled_from([1, 2, 4]))
    def port_read(self, offset: int, width: int) -> None:
        self._begin()
        value = self.h.qt.isa.read(BASE + offset, width)
        self._end(64)  # a reset-port read rebuilds the 32-byte PROM
        assert 0 <= value < 1 << (8 * width)

    @rule(frame=frame_strategy(), direct=st.booleans())
    def incoming(self, frame: bytes, direct: bool) -> None:
        self._begin()
        if direct:
            result = self.h.chip.receive(frame)
            assert result != 0
        else:
            self.h.peer.send(frame)
        self._end()

    @rule(action=st.sampled_from(["probe", "init", "receive", "transmit"]),
          frame=st.binary(min_size=1, max_size=64))
    def driver_action(self, action: str, frame: bytes) -> None:
        driver = self.h.driver
        try:
            if action == "probe":
                driver.probe()
            elif action == "init":
                driver.init(rcr=0x1C)
            elif action == "receive":
                driver.receive(8)
            else:
                driver.transmit(frame)
        except DriverError:
            pass

    @rule(ns=st.integers(0, 2_000_000))
    def time_passes(self, ns: int) -> None:
        clock = self.h.card.chip.tx_clock
        if clock is not None:
            self._begin()
            self.h.qt.clock_step(ns)
            self._end()

    @rule()
    def rewrite_tx_buffer(self) -> None:
        self.h.chip.mem[0x4000:0x4100] = b"\xee" * 0x100

    @invariant()
    def sane(self) -> None:
        self.h.check_common()


# The explain phase traces every line of a failing run; over thousands of port accesses
# that takes minutes, so failures are reported shrunk but unexplained.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
TestDriverMachine = DriverMachine.TestCase
TestDriverMachine.settings = settings(stateful_step_count=40, phases=PHASES)
TestChaosMachine = ChaosMachine.TestCase
TestChaosMachine.settings = settings(stateful_step_count=50, phases=PHASES)


class HardwareChaosMachine(ChaosMachine):
    """The same chaos on `lossless=off, tx-timing=wire`: overflow, missed frames and
    transmits under way must keep every invariant too."""

    lossless = False
    wire_timed = True


TestHardwareChaosMachine = HardwareChaosMachine.TestCase
TestHardwareChaosMachine.settings = settings(stateful_step_count=50, phases=PHASES)
