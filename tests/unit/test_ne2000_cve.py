"""One regression test per NE2000 CVE (docs/qemu-behaviour.md §4.10): the malicious register
programming is replayed through port I/O and the emulator must stay bounded — prompt
return, no exception, no byte written outside the ring or the 48 KiB buffer."""

from __future__ import annotations

import pytest

from devices.dp8390_regs import (
    E8390_CMD,
    EN0_BOUNDARY,
    EN0_ISR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN1_CURPAG,
    ENISR_RX,
    MEM_SIZE,
)
from devices.ne2000 import Ne2000Isa
from emu.testing.qtest import QTest
from tests.ne2000_driver import IOBASE, reg

pytestmark = pytest.mark.timeout(20)


def program(qt: QTest, pstart: int, pstop: int, bnry: int, curr: int) -> None:
    reg(qt, E8390_CMD, 0x21)
    reg(qt, EN0_STARTPG, pstart)
    reg(qt, EN0_STOPPG, pstop)
    reg(qt, EN0_BOUNDARY, bnry)
    reg(qt, EN0_RXCR, 0x10)
    reg(qt, E8390_CMD, 0x61)
    reg(qt, EN1_CURPAG, curr)
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_ISR, 0xFF)


def outside(mem: bytearray, before: bytes, lo: int, hi: int) -> bool:
    """True if nothing outside [lo, hi) changed."""
    return mem[:lo] == before[:lo] and mem[hi:] == before[hi:]


def test_cve_2015_5279_ring_pointers_beyond_buffer(qt: QTest, card: Ne2000Isa) -> None:
    program(qt, 0x40, 0xC0, 0xBE, 0xBF)
    for page in (0xC1, 0xFF):
        reg(qt, EN0_STARTPG, page)
        reg(qt, EN0_STOPPG, page)
        reg(qt, EN0_BOUNDARY, page)
        reg(qt, E8390_CMD, 0x62)
        reg(qt, EN1_CURPAG, page)
        reg(qt, E8390_CMD, 0x22)
    chip = card.chip
    assert (chip.pstart, chip.pstop, chip.bnry, chip.curr) == (0x4000, 0xC000, 0xBE, 0xBF)
    reg(qt, EN0_BOUNDARY, 0x50)
    for _ in range(40):
        card.nc.receive(bytes(1514))
    assert len(chip.mem) == MEM_SIZE
    assert 0x40 <= chip.curr < 0xC0
    assert chip.stats.accepted > 0


def test_cve_2015_5278_write_position_beyond_pstop(qt: QTest, card: Ne2000Isa) -> None:
    program(qt, 0x46, 0x80, 0x46, 0x90)  # CURR accepted (< 0xC0) but outside the ring
    before = bytes(card.chip.mem)
    assert card.chip.receive(b"\x01" * 1514) == 1514
    mem = card.chip.mem
    assert outside(mem, before, 0x4600, 0x8000), "nothing written beyond PSTOP"
    assert mem[0x9000:0x9100] == before[0x9000:0x9100]
    assert 0x46 <= card.chip.curr < 0x80


def test_cve_2016_2841_pstart_not_below_pstop(qt: QTest, card: Ne2000Isa) -> None:
    for pstart, pstop in ((0x50, 0x50), (0x60, 0x50), (0xC0, 0xC0)):
        program(qt, pstart, pstop, pstart, pstart)
        before = bytes(card.chip.mem)
        assert not card.nc.can_receive()
        assert card.chip.receive(bytes(100)) == -1
        assert bytes(card.chip.mem) == before
        assert not qt.inb(IOBASE + EN0_ISR) & ENISR_RX
    assert card.stats.filtered["no_ring"] == 3


class HugeFrame:
    """A frame whose length does not fit a C int; touching its bytes is a failure."""

    def __len__(self) -> int:
        return (1 << 31) + 5

    def __getitem__(self, index: object) -> bytes:
        raise AssertionError("frame bytes read before the length was validated")


def test_cve_2018_10839_length_validated_before_use(qt: QTest, card: Ne2000Isa) -> None:
    program(qt, 0x46, 0x80, 0x46, 0x47)
    before = bytes(card.chip.mem)
    assert card.chip.receive(HugeFrame()) == -1  # type: ignore[arg-type]
    assert card.chip.receive(bytes(69633)) == -1
    assert card.chip.receive(bytes(1519)) == -1
    assert card.stats.filtered["oversize"] == 3
    assert bytes(card.chip.mem) == before
    assert card.chip.receive(bytes(1518)) == 1518
