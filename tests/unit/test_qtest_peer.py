"""QTest.peer: the other end of a QTest NE2000's cable (docs/testing-kit.md, "Frames into
a QTest NE2000"), as its docstring promises."""

from __future__ import annotations

import pytest

from devices.dp8390_regs import (
    E8390_CMD,
    EN0_BOUNDARY,
    EN0_DCFG,
    EN0_ISR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN0_TCNTHI,
    EN0_TCNTLO,
    EN0_TPSR,
    EN1_CURPAG,
    ENISR_RX,
    ENISR_TX,
)
from devices.ne2000 import DEFAULT_IOBASE as IO
from emu.core.errors import UserError
from emu.testing import BROADCAST, QTest, ethernet

SRC = bytes.fromhex("020000000001")


def start(qt: QTest) -> None:
    """Ring 0x46-0x80, broadcasts accepted, chip started."""
    for offset, value in ((E8390_CMD, 0x21), (EN0_DCFG, 0x49), (EN0_STARTPG, 0x46),
                          (EN0_STOPPG, 0x80), (EN0_BOUNDARY, 0x46), (EN0_RXCR, 0x04),
                          (E8390_CMD, 0x61), (EN1_CURPAG, 0x47), (E8390_CMD, 0x22),
                          (EN0_ISR, 0xFF)):
        qt.outb(IO + offset, value)


def test_a_frame_sent_to_a_stopped_nic_waits_and_enters_when_it_starts() -> None:
    qt = QTest()
    board = qt.add_ne2000()
    wire = qt.peer(board)
    frame = ethernet(BROADCAST, SRC, 0x88B5, bytes(50))
    assert wire.send(frame) == 0
    assert board.stats.accepted == 0
    start(qt)   # the queued frame enters as CR.STA is set
    assert board.stats.accepted == 1
    assert board.chip.curr == 0x48


def test_a_started_nic_takes_the_frame_at_once() -> None:
    qt = QTest()
    board = qt.add_ne2000()
    wire = qt.peer(board)
    start(qt)
    assert wire.send(ethernet(BROADCAST, SRC, 0x88B5, bytes(50))) == 64
    assert qt.inb(IO + EN0_ISR) & ENISR_RX
    # Not for us: taken (the sender sees its length) and dropped by the address filter.
    assert wire.send(ethernet(SRC, SRC, 0x88B5, bytes(50))) == 64
    assert board.stats.accepted == 1


def test_what_the_nic_transmits_lands_in_received() -> None:
    qt = QTest()
    board = qt.add_ne2000()
    wire = qt.peer(board)
    start(qt)
    frame = ethernet(BROADCAST, SRC, 0x88B5, bytes(range(46)))
    board.chip.mem[0x4000:0x4000 + len(frame)] = frame   # as remote DMA would have put it
    for offset, value in ((EN0_TPSR, 0x40), (EN0_TCNTLO, len(frame)), (EN0_TCNTHI, 0),
                          (E8390_CMD, 0x26)):
        qt.outb(IO + offset, value)
    assert qt.inb(IO + EN0_ISR) & ENISR_TX
    assert wire.received == [frame]


def test_a_board_has_one_cable() -> None:
    qt = QTest()
    board = qt.add_ne2000()
    qt.peer(board)
    with pytest.raises(UserError, match="already in use"):
        qt.peer(board)
