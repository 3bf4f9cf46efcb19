"""Differential test: toynic's NE2000 against QEMU 7.2's `ne2k_isa`, the same register
programs on both, compared operation by operation.

Each program (a fixed driver scenario, or one Hypothesis generates: byte port reads and
writes anywhere in the 32-byte window, 16-bit data-port transfers, injected frames) runs
on a fresh QEMU through qtest (tests/interop/ne2000_qemu.py) and on toynic's CPU-less
driver (`emu.testing.QTest`). After every operation the value read, the IRQ line and the
frames transmitted must be equal — or differ exactly as a documented quirk predicts.
Every docs/quirks.md NE2000 row that QEMU can show names its switch (`diff: NAME`); the
switches are the keys of `QUIRKS` below, and a test checks both lists agree.

A switch either predicts QEMU's answer for one operation (the program goes on) or, when
the two models part ways for good, ends the program there ("cut"); the closing summary
counts programs, operations compared, and how often each switch fired.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.dp8390 import Dp8390
from devices.dp8390_regs import (
    CR_PAGE_SHIFT,
    E8390_CMD,
    E8390_RREAD,
    E8390_RWRITE,
    E8390_STOP,
    E8390_TRANS,
    EN0_IMR,
    EN0_ISR,
    ENDCFG_WTS,
    ENTCR_LB,
    MEM_SIZE,
)
from devices.ne2000 import DATA_PORT, RESET_PORT, Ne2000Isa
from emu.testing import QTest, RecordingClient
from netdev.client import connect_peers
from tests.interop.ne2000_qemu import IOBASE, IRQ, QemuNe2000
from tests.ne2000_driver import Ne2000Driver

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
MAC = bytes.fromhex("525400123456")
QEMU_MAX_FRAME = 1514  # QEMU's ne2000_buffer_full() wants this + 4 bytes free

# switch -> (quirks.md row, what QEMU does instead)
QUIRKS = {
    "page2-readback": ("N5", "page-2 reads other than PSTART/PSTOP answer 0"),
    "tcr-loopback": ("N15", "TCR ignored: a loopback transmit goes onto the wire (cut)"),
    "reset-irq": ("N4", "a reset leaves the IRQ line as it was until ISR or IMR is written"),
    "empty-tx": ("N10", "a zero-length transmit is sent as an empty frame, then no frame "
                        "leaves any more (cut)"),
    "curr-outside-ring": ("N16", "a frame is stored at CURR even outside the ring (cut)"),
    "rsar-wrap": ("N8", "RSAR counts past 0xFFFF (cut)"),
    "lossless": ("N6", "a frame is offered only when both NICs take it at once"),
}


class Cut(Exception):
    """The two models part ways for good, as the named quirk says: the program ends."""

    def __init__(self, switch: str) -> None:
        super().__init__(switch)
        self.switch = switch


@dataclass
class Tally:
    """What the module compared, for its closing note."""

    programs: int = 0
    operations: int = 0
    frames: int = 0
    fired: Counter[str] = field(default_factory=Counter)


TALLY = Tally()


class Twin:
    """The same port I/O on QEMU and on toynic, compared after every operation. Has the
    QTest methods the reference driver uses, so the driver can drive both at once."""

    def __init__(self, qemu: QemuNe2000) -> None:
        self.qemu = qemu
        self.qt = QTest()
        self.card: Ne2000Isa = self.qt.add_ne2000(IOBASE, IRQ)
        self.chip: Dp8390 = self.card.chip
        self.peer = RecordingClient()
        connect_peers(self.card.nc, self.peer)
        self.irq_known = True
        self.log: list[str] = []
        self.fired: Counter[str] = Counter()

    # ---- QTest's surface -----------------------------------------------------------

    def outb(self, port: int, value: int) -> None:
        self.op_outb(port - IOBASE, value)

    def inb(self, port: int) -> int:
        return self.op_inb(port - IOBASE)

    def insw(self, port: int, count: int) -> bytes:
        return b"".join(self.op_inw(port - IOBASE).to_bytes(2, "little") for _ in range(count))

    def outsw(self, port: int, data: bytes) -> None:
        if len(data) % 2:
            data += b"\0"
        for i in range(0, len(data), 2):
            self.op_outw(port - IOBASE, data[i] | data[i + 1] << 8)

    def irq_level(self, irq: int) -> bool:
        return self.card.irq.level

    # ---- operations ----------------------------------------------------------------

    def op_outb(self, offset: int, value: int) -> None:
        self._begin(f"outb {offset:#04x} {value:#04x}")
        if offset == E8390_CMD:
            self._check_loopback_tx(value)
        elif offset == DATA_PORT:
            self._check_rsar(1)
        self.qt.outb(IOBASE + offset, value)
        self.qemu.outb(offset, value)
        if offset in (EN0_ISR, EN0_IMR) and self._page() == 0:
            self.irq_known = True
        self._end()

    def op_outw(self, offset: int, value: int) -> None:
        self._begin(f"outw {offset:#04x} {value:#06x}")
        self._check_rsar(2)
        self.qt.outw(IOBASE + offset, value)
        self.qemu.outw(offset, value)
        self._end()

    def op_inb(self, offset: int) -> int:
        self._begin(f"inb {offset:#04x}")
        if offset == DATA_PORT:
            self._check_rsar(1)
        page = self._page()
        ours = self.qt.inb(IOBASE + offset)
        theirs = self.qemu.inb(offset)
        expected = ours
        if page == 2 and 3 <= offset < DATA_PORT:
            expected = self._fire("page2-readback", 0, ours != 0)
        assert theirs == expected, self._report(f"read {theirs:#04x}, toynic {ours:#04x}")
        if offset == RESET_PORT:
            self.irq_known = self._fire("reset-irq", False, True)
        self._end()
        return ours

    def op_inw(self, offset: int) -> int:
        self._begin(f"inw {offset:#04x}")
        self._check_rsar(2)
        ours = self.qt.inw(IOBASE + offset)
        theirs = self.qemu.inw(offset)
        assert theirs == ours, self._report(f"read {theirs:#06x}, toynic {ours:#06x}")
        self._end()
        return ours

    def op_frame(self, frame: bytes) -> None:
        self._begin(f"frame {len(frame)} bytes to {frame[:6].hex(':')}")
        chip = self.chip
        if not chip.receive_ready() or self._qemu_buffer_full():
            self._fire("lossless", None, True)
            self.log[-1] += " (not offered)"
            return
        if not chip.pstart <= chip.curr << 8 < chip.pstop:
            self._cut("curr-outside-ring")
        assert self.peer.send(frame) > 0
        self.qemu.inject(frame)
        TALLY.frames += 1
        self._end()

    # ---- the quirks' predictions -----------------------------------------------------

    def _page(self) -> int:
        return self.chip.cmd >> CR_PAGE_SHIFT

    def _qemu_buffer_full(self) -> bool:
        """QEMU's ne2000_buffer_full() on toynic's registers (equal on both so far)."""
        chip = self.chip
        index, boundary = chip.curr << 8, chip.bnry << 8
        avail = boundary - index if index < boundary else \
            (chip.pstop - chip.pstart) - (index - boundary)
        return avail < QEMU_MAX_FRAME + 4

    def _check_loopback_tx(self, value: int) -> None:
        chip = self.chip
        if value & E8390_STOP or not value & E8390_TRANS or not chip.tcr & ENTCR_LB:
            return
        index = chip.tpsr << 8
        if index >= MEM_SIZE:
            index -= 0x8000
        if chip.tbcr and index + chip.tbcr <= MEM_SIZE:
            self._cut("tcr-loopback")

    def _check_rsar(self, width: int) -> None:
        chip = self.chip
        n = 2 if width == 2 and chip.dcr & ENDCFG_WTS else 1
        addr = chip.rsar & ~1 if n == 2 else chip.rsar
        moves = chip.cmd & (E8390_RREAD | E8390_RWRITE) or chip.rbcr
        if moves and addr + n > 0xFFFF:
            self._cut("rsar-wrap")

    def _fire(self, switch: str, prediction: object, applies: bool) -> object:
        if applies:
            self.fired[switch] += 1
        return prediction

    def _cut(self, switch: str) -> None:
        self.fired[switch] += 1
        self.log[-1] += f" -> cut by {switch}"
        raise Cut(switch)

    # ---- comparison ----------------------------------------------------------------

    def _begin(self, text: str) -> None:
        self.log.append(text)
        self._sent_before = len(self.peer.received)
        self._empty_before = self.chip.stats.tx_empty

    def _end(self) -> None:
        TALLY.operations += 1
        ours = self.peer.received[self._sent_before:]
        theirs = self.qemu.transmitted()
        expected = list(ours)
        empty_tx = self.chip.stats.tx_empty > self._empty_before
        if empty_tx:
            expected.append(b"")
        assert theirs == expected, self._report(
            f"QEMU sent {[len(f) for f in theirs]}, expected {[len(f) for f in expected]}")
        if self.irq_known:
            assert self.qemu.irq_level == self.card.irq.level, self._report(
                f"IRQ {self.qemu.irq_level}, toynic {self.card.irq.level}")
        if empty_tx:
            # QEMU's socket netdev returns 0 for the empty frame it sent, which its queue
            # takes as "not now": nothing the NIC sends later leaves.
            self._cut("empty-tx")

    def _report(self, what: str) -> str:
        tail = "\n  ".join(self.log[-25:])
        return f"undocumented difference at operation {len(self.log)}: {what}\n  {tail}"


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    qemu = QemuNe2000(tmp_path)
    twin = Twin(qemu)
    try:
        yield twin
    finally:
        TALLY.fired.update(twin.fired)
        qemu.close()


def run(twin: Twin, ops: list[tuple[str, int, int, bytes]]) -> None:
    TALLY.programs += 1
    try:
        for kind, a, b, frame in ops:
            if kind == "outb":
                twin.op_outb(a, b)
            elif kind == "inb":
                twin.op_inb(a)
            elif kind == "outw":
                twin.op_outw(DATA_PORT, b)
            elif kind == "inw":
                twin.op_inw(DATA_PORT)
            else:
                twin.op_frame(frame)
    except Cut:
        pass


def frame_to(dst: bytes, size: int, seed: int = 0) -> bytes:
    body = bytes((seed + i) & 0xFF for i in range(size))
    return (dst + bytes.fromhex("020000000001") + b"\x88\xb5" + body)[:size]


# ---- fixed driver scenarios ------------------------------------------------------------


def test_driver_probe_init_transmit_receive(twin: Twin) -> None:
    driver = Ne2000Driver(twin, IOBASE)  # type: ignore[arg-type]
    TALLY.programs += 1
    assert driver.probe() == MAC
    driver.init(rcr=0x04)
    for size in (60, 61, 590, 1514):
        driver.transmit(frame_to(b"\xff" * 6, size, size))
    got = []
    for n in range(40):
        twin.op_frame(frame_to(MAC, 60 + 37 * n, n))
        got += driver.receive(1 + n % 3)
    got += driver.receive()
    assert len(got) == 40


def test_driver_filters_and_multicast(twin: Twin) -> None:
    driver = Ne2000Driver(twin, IOBASE, rx_start=0x4C, rx_stop=0x60)  # type: ignore[arg-type]
    TALLY.programs += 1
    driver.probe()
    driver.init(rcr=0x08, mar=bytes.fromhex("0102040810204080"))
    for n, dst in enumerate([MAC, b"\xff" * 6, bytes.fromhex("01005e000001"),
                             bytes.fromhex("333300000001"), bytes.fromhex("020000000009")]):
        twin.op_frame(frame_to(dst, 100, n))
        driver.receive()
    driver.set_rcr(0x1C)
    twin.op_frame(frame_to(bytes.fromhex("020000000009"), 70))
    assert driver.receive() != []


def test_driver_word_and_byte_dma_and_quirks(twin: Twin) -> None:
    driver = Ne2000Driver(twin, IOBASE)  # type: ignore[arg-type]
    TALLY.programs += 1
    driver.probe()
    driver.init()
    # Page 2 read-back (N5), a zero-length transmit (N10), the reset port's IRQ (N4).
    twin.op_outb(E8390_CMD, 0xA2)
    for offset in range(1, 16):
        twin.op_inb(offset)
    twin.op_outb(E8390_CMD, 0x22)
    twin.op_outb(0x05, 0)
    twin.op_outb(0x06, 0)
    twin.op_inb(RESET_PORT)
    twin.op_inb(EN0_ISR)
    twin.op_outb(EN0_ISR, 0xFF)
    with pytest.raises(Cut):
        twin.op_outb(E8390_CMD, 0x26)
    assert twin.fired["page2-readback"] > 0
    assert twin.fired["empty-tx"] == 1
    assert twin.fired["reset-irq"] == 2, "the probe's reset and this one"


def test_loopback_is_a_documented_cut(twin: Twin) -> None:
    driver = Ne2000Driver(twin, IOBASE)  # type: ignore[arg-type]
    driver.probe()
    driver.init()
    ops = [("outb", 0x0D, 0x02, b""), ("outb", 0x04, 0x40, b""), ("outb", 0x05, 60, b""),
           ("outb", 0x06, 0, b""), ("outb", 0, 0x26, b""), ("inb", 7, 0, b"")]
    run(twin, ops)
    assert twin.fired["tcr-loopback"] == 1


# ---- generated programs ----------------------------------------------------------------

OFFSETS = st.one_of(st.integers(0, 0x1F), st.sampled_from([0, 7, 0x10, 0x10, 0x1F]))
DESTS = st.sampled_from([MAC, b"\xff" * 6, bytes.fromhex("01005e000001"),
                         bytes.fromhex("020000000009")])
OPS = st.one_of(
    st.tuples(st.just("outb"), OFFSETS, st.integers(0, 255), st.just(b"")),
    st.tuples(st.just("outb"), st.just(0), st.sampled_from([0x21, 0x22, 0x26, 0x0A, 0x12,
                                                            0x62, 0xA2, 0xE2]), st.just(b"")),
    st.tuples(st.just("inb"), OFFSETS, st.just(0), st.just(b"")),
    st.tuples(st.just("outw"), st.just(0), st.integers(0, 0xFFFF), st.just(b"")),
    st.tuples(st.just("inw"), st.just(0), st.just(0), st.just(b"")),
    st.builds(lambda d, n, s: ("frame", 0, 0, frame_to(d, n, s)), DESTS,
              st.integers(14, QEMU_MAX_FRAME), st.integers(0, 255)),
)
# A started chip with a ring, so that frames have somewhere to go.
SETUP = [("outb", 0, 0x21, b""), ("outb", 0x0E, 0x49, b""), ("outb", 0x01, 0x46, b""),
         ("outb", 0x02, 0x80, b""), ("outb", 0x03, 0x7F, b""), ("outb", 0x0C, 0x1C, b""),
         ("outb", 0x0D, 0x00, b""), ("outb", 0x04, 0x40, b""), ("outb", 0x05, 0x3C, b""),
         ("outb", 0x06, 0x00, b""), ("outb", 0x0F, 0x7F, b""),
         ("outb", 0, 0x61, b""), ("outb", 0x07, 0x46, b""), ("outb", 0, 0x22, b"")]


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=st.lists(OPS, min_size=1, max_size=120))
def test_generated_programs(tmp_path: Path, program: list[tuple[str, int, int, bytes]]) -> None:
    qemu = QemuNe2000(tmp_path)
    twin = Twin(qemu)
    try:
        run(twin, SETUP + program)
    finally:
        TALLY.fired.update(twin.fired)
        qemu.close()


# ---- the switches are the documented quirks --------------------------------------------


def test_every_switch_is_a_documented_ne2000_quirk() -> None:
    text = (REPO / "docs" / "quirks.md").read_text()
    section = text.split("## NE2000", 1)[1].split("\n## ", 1)[0]
    named = dict(re.findall(r"^\| (N\d+) \|.*?diff: `([a-z0-9-]+)`", section, re.M))
    by_switch = {switch: row for row, switch in named.items()}
    for switch, (row, _) in QUIRKS.items():
        assert by_switch.get(switch) == row, f"docs/quirks.md row {row} must name `{switch}`"
    assert set(by_switch) <= set(QUIRKS), "a quirks.md row names a switch the test lacks"


def test_summary() -> None:
    """Runs last in this module: the closing note of the run."""
    print(f"\nNE2000 differential: {TALLY.programs} programs, {TALLY.operations} "
          f"operations compared ({TALLY.frames} frames injected); switches fired: "
          f"{dict(TALLY.fired)}")
    assert TALLY.programs == 0 or TALLY.operations > TALLY.programs
