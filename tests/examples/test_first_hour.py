"""The examples of docs/testing-kit.md's first-hour sections, as tests: each block marked
```python file=tests/examples/test_first_hour.py``` in the guide is a verbatim slice of this
file (tests/docs/test_doc_examples.py checks that), so the guide's code always runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


# -- Frames into a QTest NE2000 ----------------------------------------------------------

from emu.testing import BROADCAST, QTest, ethernet  # noqa: E402

IO = 0x300                                   # the board's I/O base (add_ne2000's default)

def test_a_frame_lands_in_the_receive_ring():
    qt = QTest()
    board = qt.add_ne2000()                  # at 0x300, IRQ 9, MAC 52:54:00:12:34:56
    wire = qt.peer(board)
    # The driver's part: ring in pages 0x46..0x80, accept broadcasts, start the chip.
    for offset, value in ((0x00, 0x21), (0x0E, 0x49), (0x01, 0x46), (0x02, 0x80),
                          (0x03, 0x46), (0x0C, 0x04), (0x00, 0x61), (0x07, 0x47),
                          (0x00, 0x22)):
        qt.outb(IO + offset, value)
    frame = ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B5, b"hello".ljust(46, b"."))
    assert wire.send(frame) == 60            # the NIC took all 60 bytes
    assert qt.inb(IO + 0x07) & 0x01          # ISR.PRX: a frame was received
    assert board.chip.mem[0x4704:0x4704 + 60] == frame   # behind its 4-byte header
