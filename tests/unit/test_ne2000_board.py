"""NE2000 board: I/O window access widths (docs/qemu-behaviour.md §4.1), remote-DMA details
(§4.6), page-2 read-backs, reset and IRQ, and `-device ne2k_isa` option handling."""

from __future__ import annotations

import pytest

from devices.dp8390_regs import (
    E8390_CMD,
    EN0_CRDAHI,
    EN0_CRDALO,
    EN0_DCFG,
    EN0_IMR,
    EN0_ISR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN0_TPSR,
    EN0_TXCR,
    ENISR_RDC,
    MEM_SIZE,
)
from devices.ne2000 import Ne2000Isa, ne2k_isa_from_opts, parse_mac
from emu.core.bus import IsaBus
from emu.core.errors import UserError
from emu.core.irq import IrqLine
from emu.core.opts import parse_opts
from emu.testing.qtest import QTest
from netdev.client import NetClient
from tests.ne2000_driver import IOBASE, rd, reg, remote

DATA = IOBASE + 0x10


def crda(qt: QTest) -> int:
    return rd(qt, EN0_CRDALO) | rd(qt, EN0_CRDAHI) << 8


def test_wide_register_access_reads_ones_and_ignores_writes(qt: QTest, card: Ne2000Isa) -> None:
    assert qt.inw(IOBASE + EN0_ISR - 1) == 0xFFFF  # aligned word over FIFO and ISR
    assert qt.inl(IOBASE + EN0_ISR - 3) == 0xFFFFFFFF
    qt.outw(IOBASE + EN0_IMR - 1, 0xFFFF)  # DCR and IMR
    assert (card.chip.dcr, card.chip.imr) == (0, 0)


@pytest.mark.parametrize("offset", [0x11, 0x15, 0x1E])
def test_gap_ports_read_ones(qt: QTest, card: Ne2000Isa, offset: int) -> None:
    assert qt.inb(IOBASE + offset) == 0xFF
    assert qt.inw(IOBASE + max(offset & ~1, 0x12)) == 0xFFFF
    assert qt.inl(IOBASE + 0x14) == 0xFFFFFFFF


def test_reset_port_only_byte_reads_reset(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x22)
    assert rd(qt, EN0_ISR) == 0
    assert qt.inw(IOBASE + 0x1E) == 0xFFFF
    qt.outb(IOBASE + 0x1F, 0)
    assert rd(qt, EN0_ISR) == 0
    assert qt.inb(IOBASE + 0x1F) == 0
    assert rd(qt, EN0_ISR) == 0x80


def test_reset_recomputes_irq(qt: QTest, card: Ne2000Isa) -> None:
    """toynic: reset lowers an asserted IRQ at once (QEMU N4 leaves it up)."""
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_IMR, ENISR_RDC)
    remote(qt, 0x12, 0x4000, 0)
    assert qt.irq_level(9)
    qt.inb(IOBASE + 0x1F)
    assert rd(qt, EN0_ISR) == 0x80
    assert not qt.irq_level(9)


def test_page2_readbacks(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x21)
    values = {EN0_STARTPG: 0x46, EN0_STOPPG: 0x80, EN0_TPSR: 0x40, EN0_RXCR: 0x1C,
              EN0_TXCR: 0x02, EN0_DCFG: 0x49, EN0_IMR: 0x3F}
    for offset, value in values.items():
        reg(qt, offset, value)
    reg(qt, E8390_CMD, 0xA1)
    assert {offset: rd(qt, offset) for offset in values} == values
    reg(qt, 0x03, 0x55)  # RNPP
    reg(qt, 0x05, 0x66)  # LNPP
    assert (rd(qt, 0x03), rd(qt, 0x05)) == (0x55, 0x66)


def test_rtl8029_id_and_page3(qt: QTest, card: Ne2000Isa) -> None:
    assert (rd(qt, 0x0A), rd(qt, 0x0B)) == (0x50, 0x43)
    reg(qt, E8390_CMD, 0xE1)
    assert (rd(qt, 0x05), rd(qt, 0x06), rd(qt, 0x03)) == (0x40, 0x40, 0)


def test_word_mode_byte_access_moves_two_bytes(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x12, 0x4000, 4)
    qt.outw(DATA, 0x2211)
    qt.outw(DATA, 0x4433)
    remote(qt, 0x0A, 0x4000, 4)
    assert qt.inb(DATA) == 0x11, "CPU sees the low byte"
    assert crda(qt) == 0x4002


def test_byte_mode_word_access_moves_one_byte(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0x4000, 2)
    qt.outsb(DATA, b"\xaa\xbb")
    remote(qt, 0x0A, 0x4000, 2)
    assert qt.inw(DATA) == 0x00AA
    assert crda(qt) == 0x4001


def test_odd_rsar_rounded_down_in_word_mode(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0x4000, 2)
    qt.outsb(DATA, b"\x01\x02")
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x0A, 0x4001, 2)
    assert qt.inw(DATA) == 0x0201
    assert crda(qt) == 0x4003


def test_rsar_wraps_at_pstop(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_STARTPG, 0x46)
    reg(qt, EN0_STOPPG, 0x80)
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x0A, 0x7FFE, 4)
    qt.inw(DATA)
    assert crda(qt) == 0x4600


def test_writes_ignored_with_zero_count_reads_reassert_rdc(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0x4000, 1)
    qt.outb(DATA, 0x77)
    assert crda(qt) == 0x4001
    qt.outb(DATA, 0x88)
    assert crda(qt) == 0x4001, "RBCR 0: write ignored"
    reg(qt, EN0_ISR, 0xFF)
    qt.inb(DATA)
    assert rd(qt, EN0_ISR) & ENISR_RDC
    assert card.chip.mem[0x4000] == 0x77


@pytest.mark.parametrize(
    ("addr", "width", "dcr", "expect"),
    [
        (0x0020, 1, 0x48, 0xFF),
        (0x3FFF, 1, 0x48, 0xFF),
        (0xC000, 2, 0x49, 0xFFFF),
        (0xBFFE, 4, 0x48, 0xFFFFFFFF),
        (0x001E, 4, 0x48, 0xFFFFFFFF),
    ],
)
def test_out_of_window_dma_reads_ones(
    qt: QTest, card: Ne2000Isa, addr: int, width: int, dcr: int, expect: int
) -> None:
    reg(qt, EN0_DCFG, dcr)
    remote(qt, 0x0A, addr, 8)
    assert qt.isa.read(DATA, width) == expect
    assert len(card.chip.mem) == MEM_SIZE


def test_out_of_window_dma_writes_dropped(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_DCFG, 0x48)
    before = bytes(card.chip.mem)
    remote(qt, 0x12, 0xBFFE, 8)
    qt.outl(DATA, 0xDEADBEEF)
    remote(qt, 0x12, 0x0030, 8)
    qt.outb(DATA, 0x12)
    assert bytes(card.chip.mem) == before
    assert len(card.chip.mem) == MEM_SIZE


def test_mac_property_and_prom(qt: QTest) -> None:
    mac = bytes.fromhex("020304050607")
    card = qt.add_ne2000(0x320, 10, mac=mac)
    assert card.mac == mac
    assert card.nc.info_str == "model=ne2k_isa,macaddr=02:03:04:05:06:07"
    assert card.nc.model == "ne2k_isa"
    assert bytes(card.chip.mem[0:12:2]) == mac


class FakeNet:
    def __init__(self) -> None:
        self.added: list[tuple[NetClient, str | None]] = []

    def add_nic(self, nic: NetClient, netdev_id: str | None) -> None:
        self.added.append((nic, netdev_id))


def build(text: str, isa: IsaBus | None = None, index: int = 0) -> tuple[Ne2000Isa, list]:
    lines = {n: IrqLine(f"isa{n}") for n in range(IsaBus.NUM_IRQS)}
    net = FakeNet()
    board = ne2k_isa_from_opts(
        parse_opts(text, "driver"), isa=isa or IsaBus(), isa_irq=lines.__getitem__,
        net=net, nic_index=index,  # type: ignore[arg-type]
    )
    return board, [net.added, lines]


def test_from_opts_defaults_and_wiring() -> None:
    isa = IsaBus()
    board, (added, lines) = build("ne2k_isa,netdev=n0", isa, index=1)
    assert board.mac == bytes.fromhex("525400123457")
    assert added == [(board.nc, "n0")]
    assert isa.read(0x300 + 0x0A, 1) == 0x50
    board.chip.imr = 0xFF
    board.chip.isr = 0x01
    board.chip.update_irq()
    assert lines[9].level


def test_from_opts_explicit_values() -> None:
    isa = IsaBus()
    board, (_, lines) = build("ne2k_isa,netdev=n0,iobase=0x320,irq=10,mac=02:00:00:00:00:01", isa)
    assert board.mac == bytes.fromhex("020000000001")
    assert isa.read(0x320 + 0x0A, 1) == 0x50
    board.chip.imr = board.chip.isr = 0x02
    board.chip.update_irq()
    assert lines[10].level and not lines[9].level


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ne2k_isa,netdev=n0,mac=52:54:00:12:34", "mac"),
        ("ne2k_isa,netdev=n0,mac=zz:54:00:12:34:56", "zz:54"),
        ("ne2k_isa,netdev=n0,bogus=1", "bogus"),
        ("ne2k_isa,netdev=n0,irq=16", "irq"),
        ("ne2k_isa,netdev=n0,iobase=0xfff0", "iobase"),
        ("ne2k_isa,netdev=n0,iobase=junk", "iobase"),
    ],
)
def test_from_opts_errors(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        build(text)


def test_from_opts_iobase_overlap() -> None:
    isa = IsaBus()
    build("ne2k_isa,netdev=n0", isa)
    with pytest.raises(UserError, match="in use"):
        build("ne2k_isa,netdev=n1,iobase=0x310", isa)


def test_parse_mac() -> None:
    assert parse_mac("AA:bb:00:01:02:03") == bytes.fromhex("aabb00010203")
    with pytest.raises(UserError):
        parse_mac("aa-bb-00-01-02-03")


@pytest.mark.parametrize(("port", "size"), [(0x01, 2), (0x11, 2), (0x1F, 2), (0x12, 4),
                                            (0x0D, 4)])
def test_unaligned_wide_access_reads_zero_and_writes_nothing(qt: QTest, card: Ne2000Isa,
                                                             port: int, size: int) -> None:
    """`inw 0x301` reads 0 as on QEMU's x86 (not all ones); the write is dropped before
    the card: no register, no remote DMA byte, no reset."""
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x12, 0x4000, 4)
    chip = card.chip
    before = vars(chip).copy(), bytes(chip.mem)
    read = qt.inw if size == 2 else qt.inl
    write = qt.outw if size == 2 else qt.outl
    assert read(IOBASE + port) == 0
    write(IOBASE + port, 0xFFFF)
    assert (vars(chip), bytes(chip.mem)) == before
