"""DP8390 chip core alone: multicast hash vectors, ring arithmetic, flow control, stats,
and its register table (devices.dp8390_regs)."""

from __future__ import annotations

import pytest

from devices.dp8390 import (
    FULL_FRAME_PAGES,
    RX_REASONS,
    Dp8390,
    multicast_index,
    pages_for,
)
from devices.dp8390_regs import (
    CR_BITS,
    CR_PAGE_SHIFT,
    E8390_CMD,
    E8390_NODMA,
    E8390_PAGE1,
    E8390_PAGE2,
    E8390_PAGE3,
    E8390_RREAD,
    E8390_RWRITE,
    E8390_START,
    E8390_STOP,
    E8390_TRANS,
    EN0_CRDALO,
    EN0_DCFG,
    EN0_ISR,
    EN0_RCNTHI,
    EN0_RCNTLO,
    EN0_RSARHI,
    EN0_RSR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_TCNTLO,
    EN1_CURPAG,
    EN1_MULT,
    EN1_PHYS,
    EN2_ACLOWER,
    EN2_ACUPPER,
    EN2_IMR,
    EN2_RNPP,
    EN3_CONFIG2,
    EN3_CONFIG3,
    ENISR_COUNTERS,
    ENISR_OVER,
    ENISR_RDC,
    ENISR_RESET,
    ENISR_RX,
    ENISR_RX_ERR,
    ENISR_TX,
    ENISR_TX_ERR,
    ENRCR_AB,
    ENRCR_AM,
    ENRCR_AR,
    ENRCR_MON,
    ENRCR_PRO,
    ENRCR_SEP,
    ISR_BITS,
    MEM_SIZE,
    RCR_BITS,
    READ_NAMES,
    RTL8029_ID0,
    RTL8029_ID1,
    WRITE_NAMES,
)
from emu.core.irq import IrqLine
from tests.ne2000_driver import ether_crc

MAC = bytes.fromhex("525400123456")


class Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.flushes = 0

    def send(self, frame: bytes) -> int:
        self.sent.append(frame)
        return len(frame)

    def flush_queued(self) -> None:
        self.flushes += 1


def make_chip(pstart: int = 0x46, pstop: int = 0x80, bnry: int = 0x46, curr: int = 0x47,
              rcr: int = 0x10) -> tuple[Dp8390, Sink]:
    sink = Sink()
    chip = Dp8390(IrqLine(), sink)
    chip.mem[0:12] = bytes(b for b in MAC for _ in range(2))  # the board's doubled PROM MAC
    chip.reset()
    chip.write_reg(0, 0x21)
    chip.write_reg(0x1, pstart)
    chip.write_reg(0x2, pstop)
    chip.write_reg(0x3, bnry)
    chip.write_reg(0xC, rcr)
    chip.write_reg(0, 0x61)
    chip.write_reg(0x7, curr)
    chip.write_reg(0, 0x22)
    return chip, sink


@pytest.mark.parametrize(
    ("dst", "index"),
    [
        ("01005e000001", 31),
        ("01005e0000fb", 15),
        ("01005e7ffffa", 43),
        ("333300000001", 62),
        ("3333ff000001", 29),
        ("0180c2000000", 25),
    ],
)
def test_multicast_hash_vectors(dst: str, index: int) -> None:
    assert multicast_index(bytes.fromhex(dst)) == index


def test_multicast_hash_matches_a_bitwise_crc() -> None:
    """Cross-check against an independent bitwise CRC (MSB-first, LSB-first data bits)."""
    for seed in range(200):
        dst = bytes((seed * 37 + k * 11) & 0xFF for k in range(6))
        assert multicast_index(dst) == ether_crc(dst) >> 26


@pytest.mark.parametrize(("size", "pages"), [(60, 1), (248, 1), (249, 2), (1514, 6), (1518, 6)])
def test_pages_for(size: int, pages: int) -> None:
    assert pages_for(size) == pages


def test_full_frame_pages() -> None:
    assert FULL_FRAME_PAGES == 6


def test_can_receive_needs_a_spare_page_beyond_a_full_frame() -> None:
    # CURR 0x47: free pages = BNRY - CURR.
    chip, _ = make_chip(bnry=0x47 + FULL_FRAME_PAGES)
    assert not chip.can_receive()
    chip.write_reg(0x3, 0x47 + FULL_FRAME_PAGES + 1)
    assert chip.can_receive()


def test_after_a_refusal_delivery_resumes_once_half_the_ring_is_free() -> None:
    """Quirk P6: BNRY writes that make room for a full-size frame, but leave less than half
    of the 58-page ring free, do not flush the net layer's queue; the first that frees
    half the ring does, once."""
    chip, sink = make_chip(bnry=0x47 + FULL_FRAME_PAGES)  # CURR 0x47: 6 pages free
    assert not chip.can_receive()
    chip.write_reg(0x3, 0x47 + FULL_FRAME_PAGES + 1)
    assert chip.can_receive()
    chip.write_reg(0x3, 0x47 + 28)
    assert sink.flushes == 0
    chip.write_reg(0x3, 0x47 + 29)
    assert sink.flushes == 1
    chip.write_reg(0x3, 0x47 + 40)
    assert sink.flushes == 1


def test_can_receive_false_when_stopped_or_no_ring() -> None:
    chip, _ = make_chip()
    assert chip.can_receive()
    chip.write_reg(0, 0x21)
    assert not chip.can_receive()
    chip.write_reg(0, 0x22)
    chip.write_reg(0x2, 0x46)
    assert not chip.can_receive()


def test_bnry_before_pstart_means_pstop_minus_one() -> None:
    """Linux writes BNRY = PSTART - 1 after a wrap; that is the page before PSTART."""
    chip, _ = make_chip(bnry=0x45, curr=0x46)
    assert chip.can_receive()
    assert chip.receive(MAC + bytes(100)) > 0


def test_bnry_far_outside_ring_is_treated_as_full() -> None:
    chip, _ = make_chip(bnry=0x90)
    assert not chip.can_receive()
    assert chip.receive(MAC + bytes(100)) == -1
    assert chip.stats.filtered["bad_pointers"] == 1


def test_chip_never_lets_curr_reach_bnry() -> None:
    chip, _ = make_chip(bnry=0x46, curr=0x47)
    while chip.receive(MAC + bytes(54)) > 0 and chip.stats.accepted < 1000:
        assert chip.curr != chip.bnry
    assert chip.stats.filtered["ring_full"] == 1
    assert chip.stats.accepted == 0x80 - 0x46 - 2, "one page always stays free"
    assert chip.curr == 0x7F


def test_flush_requested_when_room_appears() -> None:
    chip, sink = make_chip(bnry=0x48)
    chip.write_reg(0x3, 0x46)
    assert sink.flushes == 0, "nobody was refused: nothing to flush"
    chip.write_reg(0x3, 0x48)
    assert not chip.can_receive()  # the net layer was told "no"
    chip.write_reg(0x3, 0x46)
    assert sink.flushes == 1
    chip.write_reg(0x3, 0x47)
    assert sink.flushes == 1, "only once per refusal"
    chip.write_reg(0, 0x21)
    assert not chip.can_receive()
    chip.write_reg(0x3, 0x46)
    assert sink.flushes == 1, "stopped chip: no flush"
    chip.write_reg(0, 0x22)
    assert sink.flushes == 2


def test_stats_account_for_every_offer() -> None:
    chip, _ = make_chip(rcr=0)
    frames = [b"", bytes(2000), MAC + bytes(54), b"\xff" * 6 + bytes(54),
              bytes.fromhex("01005e000001") + bytes(54), bytes.fromhex("020000000000") + bytes(54)]
    for frame in frames:
        chip.receive(frame)
    stats = chip.stats
    assert stats.offered == len(frames) == stats.accepted + stats.total_filtered()
    assert set(stats.filtered) == set(RX_REASONS)
    assert stats.accepted == 1
    assert [stats.filtered[r] for r in ("empty", "oversize", "broadcast", "multicast_off",
                                        "unicast")] == [1, 1, 1, 1, 1]


def test_transmit_hands_sink_a_copy_and_memory_stays_48k() -> None:
    chip, sink = make_chip()
    chip.mem[0x4000:0x4010] = b"x" * 16
    chip.write_reg(0x4, 0x40)
    chip.write_reg(0x5, 16)
    chip.write_reg(0x6, 0)
    chip.write_reg(0, 0x26)
    chip.mem[0x4000:0x4010] = b"y" * 16
    assert sink.sent == [b"x" * 16]
    assert len(chip.mem) == MEM_SIZE


def test_zero_length_transmit_not_sent_but_completes() -> None:
    chip, sink = make_chip()
    chip.write_reg(0x4, 0x40)
    chip.write_reg(0x5, 0)
    chip.write_reg(0x6, 0)
    chip.write_reg(0, 0x26)
    assert sink.sent == []
    assert chip.isr & 0x02 and chip.stats.tx_empty == 1


def test_receive_during_transmit_is_refused() -> None:
    class Loopback(Sink):
        def send(self, frame: bytes) -> int:
            self.result = chip.receive(frame)
            self.could = chip.can_receive()
            return len(frame)

    chip, _ = make_chip()
    sink = Loopback()
    chip.sink = sink
    chip.mem[0x4000:0x4040] = MAC + bytes(58)
    chip.write_reg(0x4, 0x40)
    chip.write_reg(0x5, 64)
    chip.write_reg(0, 0x26)
    assert sink.result == -1 and not sink.could
    assert chip.stats.filtered["reentrant"] == 1


def test_chip_reset_sets_rst_and_leaves_the_prom_to_the_board() -> None:
    chip, _ = make_chip()
    chip.write_reg(0x7, 0xFF)
    mem = bytes(chip.mem)
    chip.reset()
    assert chip.isr == ENISR_RESET
    assert chip.mem == mem


def test_bit_names_sit_at_their_bits() -> None:
    """The display names and the numeric constants of the one register table agree."""
    named = [(CR_BITS, E8390_STOP, "STP"), (CR_BITS, E8390_START, "STA"),
             (CR_BITS, E8390_TRANS, "TXP"), (CR_BITS, E8390_RREAD, "RD0"),
             (CR_BITS, E8390_RWRITE, "RD1"), (CR_BITS, E8390_NODMA, "RD2"),
             (CR_BITS, E8390_PAGE1, "PS0"), (CR_BITS, E8390_PAGE2, "PS1"),
             (ISR_BITS, ENISR_RX, "PRX"), (ISR_BITS, ENISR_TX, "PTX"),
             (ISR_BITS, ENISR_RX_ERR, "RXE"), (ISR_BITS, ENISR_TX_ERR, "TXE"),
             (ISR_BITS, ENISR_OVER, "OVW"), (ISR_BITS, ENISR_COUNTERS, "CNT"),
             (ISR_BITS, ENISR_RDC, "RDC"), (ISR_BITS, ENISR_RESET, "RST"),
             (RCR_BITS, ENRCR_SEP, "SEP"), (RCR_BITS, ENRCR_AR, "AR"),
             (RCR_BITS, ENRCR_AB, "AB"), (RCR_BITS, ENRCR_AM, "AM"),
             (RCR_BITS, ENRCR_PRO, "PRO"), (RCR_BITS, ENRCR_MON, "MON")]
    for names, bit, name in named:
        assert names[bit.bit_length() - 1] == name
    assert E8390_PAGE3 >> CR_PAGE_SHIFT == 3
    assert bytes((RTL8029_ID0, RTL8029_ID1)) == b"PC"


def test_register_names_sit_at_their_offsets() -> None:
    assert [len(page) for page in READ_NAMES + WRITE_NAMES] == [16] * 8
    reads = [(0, EN0_ISR, "ISR"), (0, EN0_CRDALO, "CRDA0"), (0, EN0_RCNTLO, "8029ID0"),
             (0, EN0_RSR, "RSR"), (1, EN1_CURPAG, "CURR"), (1, EN1_PHYS, "PAR0"),
             (1, EN1_MULT + 7, "MAR7"), (2, EN2_RNPP, "RNPP"), (2, EN2_IMR, "IMR"),
             (3, EN3_CONFIG2, "CONFIG2"), (3, EN3_CONFIG3, "CONFIG3")]
    writes = [(0, EN0_STARTPG, "PSTART"), (0, EN0_TCNTLO, "TBCR0"), (0, EN0_RSARHI, "RSAR1"),
              (0, EN0_RCNTHI, "RBCR1"), (0, EN0_RXCR, "RCR"), (0, EN0_DCFG, "DCR"),
              (2, EN2_ACUPPER, "ACU"), (2, EN2_ACLOWER, "ACL")]
    for page, offset, name in reads:
        assert READ_NAMES[page][offset] == name
    for page, offset, name in writes:
        assert WRITE_NAMES[page][offset] == name
    assert {page[E8390_CMD] for page in READ_NAMES + WRITE_NAMES} == {"CR"}
