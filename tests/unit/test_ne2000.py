"""NE2000 register-level scenarios N1-N11 (docs/qemu-behaviour.md §5) through emu.testing.qtest.

Each test programs the card exactly as a guest would (port I/O at 0x300). Where toynic
deliberately differs from QEMU (docs/quirks.md, "NE2000") the test says so.
"""

from __future__ import annotations

import pytest

from devices.dp8390_regs import (
    E8390_CMD,
    EN0_BOUNDARY,
    EN0_CRDAHI,
    EN0_CRDALO,
    EN0_DCFG,
    EN0_IMR,
    EN0_ISR,
    EN0_RSR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN0_TCNTHI,
    EN0_TCNTLO,
    EN0_TPSR,
    EN0_TSR,
    EN1_CURPAG,
    EN1_MULT,
    EN1_PHYS,
    ENISR_RDC,
    ENISR_RESET,
    ENISR_RX,
    ENISR_TX,
)
from devices.ne2000 import Ne2000Isa
from emu.testing import QTest, RecordingClient
from netdev.client import connect_peers
from tests.ne2000_driver import IOBASE, rd, reg, remote

DATA = IOBASE + 0x10
RESET = IOBASE + 0x1F
MAC = bytes.fromhex("525400123456")


@pytest.fixture
def peer(card: Ne2000Isa) -> RecordingClient:
    p = RecordingClient(model="test-peer")
    connect_peers(card.nc, p)
    return p


def setup_ring(qt: QTest, rcr: int = 0, imr: int = 0) -> None:
    """Ring 0x46-0x80, CURR 0x47, BNRY 0x46, started (docs/qemu-behaviour.md §5, N5)."""
    reg(qt, E8390_CMD, 0x21)
    reg(qt, EN0_DCFG, 0x49)
    reg(qt, EN0_STARTPG, 0x46)
    reg(qt, EN0_STOPPG, 0x80)
    reg(qt, EN0_BOUNDARY, 0x46)
    reg(qt, EN0_RXCR, rcr)
    reg(qt, E8390_CMD, 0x61)
    reg(qt, EN1_CURPAG, 0x47)
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_ISR, 0xFF)
    reg(qt, EN0_IMR, imr)


def read_mem(qt: QTest, addr: int, count: int) -> bytes:
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x0A, addr, count)
    return qt.insb(DATA, count)


def test_n1_prom_after_first_reset_port_read(qt: QTest, card: Ne2000Isa) -> None:
    assert qt.inb(RESET) == 0
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x0A, 0, 32)
    prom = qt.insb(DATA, 31)
    assert not rd(qt, EN0_ISR) & ENISR_RDC
    prom += qt.insb(DATA, 1)
    assert prom == bytes.fromhex(
        "525254540000121234345656121212123434343456565656000000005757 5757".replace(" ", "")
    )
    assert rd(qt, EN0_ISR) & ENISR_RDC
    assert (rd(qt, EN0_CRDALO), rd(qt, EN0_CRDAHI)) == (0x20, 0x00)


def test_n1_prom_third_reset_pattern(qt: QTest, card: Ne2000Isa) -> None:
    qt.inb(RESET)
    qt.inb(RESET)
    prom = read_mem(qt, 0, 32)
    assert prom[:12] == bytes.fromhex("525254540000121234345656")
    assert prom[12:28] == bytes.fromhex("12121212343434345656565612121212")
    assert prom[28:] == b"\x57" * 4


def test_n2_reset_bit(qt: QTest, card: Ne2000Isa) -> None:
    qt.inb(RESET)
    assert rd(qt, EN0_ISR) == ENISR_RESET
    reg(qt, EN0_ISR, 0xFF)
    assert rd(qt, EN0_ISR) == ENISR_RESET
    reg(qt, E8390_CMD, 0x21)
    assert rd(qt, EN0_ISR) == ENISR_RESET, "STP set: RST stays"
    reg(qt, E8390_CMD, 0x22)
    assert rd(qt, EN0_ISR) == 0


def test_n3_zero_length_remote_dma_completes(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_ISR, 0xFF)
    remote(qt, 0x12, 0x4000, 0)
    assert rd(qt, EN0_ISR) & ENISR_RDC


def test_n4_transmit(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    frame = bytes(range(60))
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x12, 0x4000, len(frame))
    qt.outsw(DATA, frame)
    assert rd(qt, EN0_ISR) & ENISR_RDC
    reg(qt, EN0_TPSR, 0x40)
    reg(qt, EN0_TCNTLO, 60)
    reg(qt, EN0_TCNTHI, 0)
    reg(qt, E8390_CMD, 0x26)
    assert peer.received == [frame]
    assert rd(qt, EN0_TSR) == 0x01
    assert rd(qt, EN0_ISR) & ENISR_TX
    assert rd(qt, E8390_CMD) == 0x22


def test_n4_transmitted_frame_is_a_copy(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_DCFG, 0x49)
    remote(qt, 0x12, 0x4000, 64)
    qt.outsw(DATA, b"A" * 64)
    reg(qt, EN0_TPSR, 0x40)
    reg(qt, EN0_TCNTLO, 64)
    reg(qt, E8390_CMD, 0x26)
    remote(qt, 0x12, 0x4000, 64)
    qt.outsw(DATA, b"B" * 64)
    assert peer.received == [b"A" * 64]
    assert type(peer.received[0]) is bytes


def test_n5_receive_unicast(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    setup_ring(qt, rcr=0, imr=0)
    frame = MAC + bytes(range(6, 60))
    assert peer.send(frame) == 60
    assert read_mem(qt, 0x4700, 4) == bytes.fromhex("01484000")
    assert read_mem(qt, 0x4704, 60) == frame
    reg(qt, E8390_CMD, 0x62)
    assert rd(qt, EN1_CURPAG) == 0x48
    reg(qt, E8390_CMD, 0x22)
    assert rd(qt, EN0_ISR) & ENISR_RX
    assert not qt.irq_level(9), "IMR bit 0 clear: no IRQ"
    reg(qt, EN0_IMR, 0x01)
    assert qt.irq_level(9)
    reg(qt, EN0_ISR, ENISR_RX)
    assert not qt.irq_level(9)


def test_n5_runt_padded_to_60(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    setup_ring(qt, rcr=0x10)
    assert peer.send(b"TEST\0") == 5
    assert read_mem(qt, 0x4700, 4) == bytes.fromhex("01484000")
    assert read_mem(qt, 0x4704, 60) == b"TEST\0" + bytes(55)


@pytest.mark.parametrize(
    ("size", "count", "nxt"),
    [(248, 0x00FC, 0x48), (249, 0x00FD, 0x49), (1514, 0x05EE, 0x4D)],
)
def test_n5_worked_numbers(
    qt: QTest, card: Ne2000Isa, peer: RecordingClient, size: int, count: int, nxt: int
) -> None:
    setup_ring(qt, rcr=0x10)
    peer.send(bytes(size))
    header = read_mem(qt, 0x4700, 4)
    assert header == bytes((0x01, nxt, count & 0xFF, count >> 8))


def test_n5_wrap_at_pstop(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    setup_ring(qt, rcr=0x10)
    reg(qt, EN0_BOUNDARY, 0x7E)
    reg(qt, E8390_CMD, 0x62)
    reg(qt, EN1_CURPAG, 0x7F)
    reg(qt, E8390_CMD, 0x22)
    frame = bytes(i & 0xFF for i in range(1514))
    assert peer.send(frame) == 1514
    assert read_mem(qt, 0x7F00, 4) == bytes.fromhex("014bee05")
    assert read_mem(qt, 0x7F04, 0xFC) == frame[:0xFC]
    assert read_mem(qt, 0x4600, 1514 - 0xFC) == frame[0xFC:]


def test_n6_broadcast_needs_ab(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    setup_ring(qt, rcr=0)
    frame = b"\xff" * 6 + MAC + bytes(48)
    assert peer.send(frame) == 60, "filtered frames are consumed"
    assert not rd(qt, EN0_ISR) & ENISR_RX
    assert card.stats.filtered["broadcast"] == 1
    reg(qt, EN0_RXCR, 0x04)
    peer.send(frame)
    assert rd(qt, EN0_ISR) & ENISR_RX
    assert rd(qt, EN0_RSR) == 0x21
    assert read_mem(qt, 0x4700, 1) == b"\x21"


def test_n7_multicast_hash(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    setup_ring(qt, rcr=0)
    frame = bytes.fromhex("01005e000001") + MAC + bytes(48)
    peer.send(frame)
    assert card.stats.filtered["multicast_off"] == 1
    reg(qt, EN0_RXCR, 0x08)
    peer.send(frame)
    assert card.stats.filtered["multicast_hash"] == 1
    reg(qt, E8390_CMD, 0x62)
    reg(qt, EN1_MULT + 3, 0x80)
    reg(qt, E8390_CMD, 0x22)
    assert not rd(qt, EN0_ISR) & ENISR_RX
    peer.send(frame)
    assert rd(qt, EN0_ISR) & ENISR_RX
    assert card.stats.accepted == 1


def test_n8_par_does_not_filter_prom_does(
    qt: QTest, card: Ne2000Isa, peer: RecordingClient
) -> None:
    setup_ring(qt, rcr=0)
    other = bytes.fromhex("020000000001")
    reg(qt, E8390_CMD, 0x62)
    for i, byte in enumerate(other):
        reg(qt, EN1_PHYS + i, byte)
    assert [rd(qt, EN1_PHYS + i) for i in range(6)] == list(other)
    reg(qt, E8390_CMD, 0x22)
    peer.send(other + bytes(54))
    assert card.stats.filtered["unicast"] == 1
    peer.send(MAC + bytes(54))
    assert card.stats.accepted == 1
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0, 12)
    qt.outsb(DATA, bytes(b for b in other for _ in range(2)))
    peer.send(other + bytes(54))
    assert card.stats.accepted == 2


def test_n9_ring_full_queues_instead_of_dropping(
    qt: QTest, card: Ne2000Isa, peer: RecordingClient
) -> None:
    """toynic: frames wait in the net queue (QEMU drops them, returning -1)."""
    setup_ring(qt, rcr=0x10)
    reg(qt, EN0_BOUNDARY, 0x4C)  # CURR 0x47: 5 free pages
    frame = bytes(range(60))
    assert not card.nc.can_receive()
    assert peer.send(frame) == 0, "queued"
    assert not rd(qt, EN0_ISR) & ENISR_RX
    assert card.stats.offered == 0
    assert card.chip.receive(bytes(1514)) == -1, "the chip itself still guards"
    assert card.stats.filtered["ring_full"] == 1
    reg(qt, EN0_BOUNDARY, 0x46)  # guest frees space: the NIC flushes the queue
    assert rd(qt, EN0_ISR) & ENISR_RX
    assert read_mem(qt, 0x4704, 60) == frame


def test_n10_ring_register_guards(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x21)
    reg(qt, EN0_STARTPG, 0x46)
    reg(qt, EN0_STARTPG, 0xC1)
    reg(qt, EN0_STOPPG, 0xC0)
    reg(qt, E8390_CMD, 0xA1)
    assert (rd(qt, EN0_STARTPG), rd(qt, EN0_STOPPG)) == (0x46, 0xC0)
    reg(qt, E8390_CMD, 0x61)
    reg(qt, EN1_CURPAG, 0x50)
    reg(qt, EN1_CURPAG, 0xC0)
    assert rd(qt, EN1_CURPAG) == 0x50
    reg(qt, E8390_CMD, 0x21)
    reg(qt, EN0_BOUNDARY, 0x50)
    reg(qt, EN0_BOUNDARY, 0xC0)
    assert rd(qt, EN0_BOUNDARY) == 0x50


def test_n10_pstart_equals_pstop_drops(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, EN0_STARTPG, 0x50)
    reg(qt, EN0_STOPPG, 0x50)
    reg(qt, EN0_RXCR, 0x10)
    reg(qt, E8390_CMD, 0x22)
    assert not card.nc.can_receive()
    assert card.chip.receive(bytes(100)) == -1
    assert card.stats.filtered["no_ring"] == 1


def test_n10_transmit_out_of_range(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_ISR, 0xFF)
    reg(qt, EN0_TPSR, 0xBF)
    reg(qt, EN0_TCNTLO, 0x01)
    reg(qt, EN0_TCNTHI, 0x01)  # 0xBF00 + 0x101 > 0xC000
    reg(qt, E8390_CMD, 0x26)
    assert peer.received == []
    assert rd(qt, EN0_ISR) & ENISR_TX
    assert card.stats.tx_out_of_range == 1
    reg(qt, EN0_TCNTHI, 0x00)  # 0xBF00 + 1 fits
    reg(qt, E8390_CMD, 0x26)
    assert len(peer.received) == 1


def test_n10_netware_tpsr_hack(qt: QTest, card: Ne2000Isa, peer: RecordingClient) -> None:
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0x4000, 4)
    qt.outsb(DATA, b"WXYZ")
    reg(qt, EN0_TPSR, 0xC0)  # 0xC000 - 0x8000 = 0x4000
    reg(qt, EN0_TCNTLO, 4)
    reg(qt, EN0_TCNTHI, 0)
    reg(qt, E8390_CMD, 0x26)
    assert peer.received == [b"WXYZ"]


def test_n11_dword_data_port(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x22)
    reg(qt, EN0_DCFG, 0x48)
    remote(qt, 0x12, 0x4000, 8)
    qt.outsb(DATA, bytes.fromhex("0102030405060708"))
    remote(qt, 0x0A, 0x4000, 8)
    assert qt.inl(DATA) == 0x04030201
    assert (rd(qt, EN0_CRDALO), rd(qt, EN0_CRDAHI)) == (0x04, 0x40)
    assert qt.inl(DATA) == 0x08070605
    assert rd(qt, EN0_ISR) & ENISR_RDC
