"""Reference NE2000 driver in Python — the test oracle (modelled on Linux's ne.c/lib8390.c).

It talks to the board only through port I/O on a `QTest`, as a guest would: probe the
PROM by remote DMA, set up the ring, transmit, and walk the ring from BNRY+1 to CURR as
Linux's `ei_receive` does, writing BNRY = next - 1 after each frame. Every wait is
bounded; a driver-visible inconsistency raises `DriverError`.
"""

from __future__ import annotations

from devices.dp8390_regs import (
    E8390_CMD,
    E8390_NODMA,
    E8390_PAGE0,
    E8390_PAGE1,
    E8390_RREAD,
    E8390_RWRITE,
    E8390_START,
    E8390_STOP,
    E8390_TRANS,
    EN0_BOUNDARY,
    EN0_DCFG,
    EN0_IMR,
    EN0_ISR,
    EN0_RCNTHI,
    EN0_RCNTLO,
    EN0_RSARHI,
    EN0_RSARLO,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN0_TCNTHI,
    EN0_TCNTLO,
    EN0_TPSR,
    EN0_TXCR,
    EN1_CURPAG,
    EN1_MULT,
    EN1_PHYS,
    ENISR_RDC,
    ENISR_RESET,
    ENISR_RX,
    ENISR_TX,
    ENRSR_RXOK,
)
from emu.testing import QTest

DATA = 0x10
RESET = 0x1F
MAX_POLLS = 1000


IOBASE = 0x300


def reg(qt: QTest, offset: int, value: int, base: int = IOBASE) -> None:
    """Write one chip register (page as CR currently selects)."""
    qt.outb(base + offset, value)


def rd(qt: QTest, offset: int, base: int = IOBASE) -> int:
    return qt.inb(base + offset)


def remote(qt: QTest, cmd: int, addr: int, count: int, base: int = IOBASE) -> None:
    """Program RBCR and RSAR, then write `cmd` to CR: the start of a remote DMA."""
    reg(qt, EN0_RCNTLO, count & 0xFF, base)
    reg(qt, EN0_RCNTHI, count >> 8, base)
    reg(qt, EN0_RSARLO, addr & 0xFF, base)
    reg(qt, EN0_RSARHI, addr >> 8, base)
    reg(qt, E8390_CMD, cmd, base)


def ether_crc(data: bytes) -> int:
    """Ethernet CRC-32 bit by bit (MSB-first register, data bits LSB-first), as a driver
    computes it to pick a multicast filter bit (Linux's ether_crc): bit = crc >> 26."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(8):
            carry = ((crc >> 31) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if carry:
                crc ^= 0x04C11DB7
    return crc


class DriverError(Exception):
    """The card did something a real driver would report as an error."""


class Ne2000Driver:
    """A polled, word-mode NE2000 driver over QTest port I/O."""

    def __init__(
        self,
        qt: QTest,
        iobase: int = IOBASE,
        tx_page: int = 0x40,
        rx_start: int = 0x46,
        rx_stop: int = 0x80,
    ) -> None:
        self.qt = qt
        self.base = iobase
        self.tx_page = tx_page
        self.rx_start = rx_start
        self.rx_stop = rx_stop
        self.mac = b""
        self.rx_errors = 0

    # ---- port helpers ----------------------------------------------------------------

    def outb(self, reg: int, value: int) -> None:
        self.qt.outb(self.base + reg, value)

    def inb(self, reg: int) -> int:
        return self.qt.inb(self.base + reg)

    def _wait_isr(self, bit: int) -> None:
        for _ in range(MAX_POLLS):
            if self.inb(EN0_ISR) & bit:
                self.outb(EN0_ISR, bit)
                return
        raise DriverError(f"ISR bit {bit:#04x} never set")

    def _remote(self, cmd: int, addr: int, count: int) -> None:
        remote(self.qt, cmd | E8390_START, addr, count, self.base)

    def block_input(self, addr: int, count: int) -> bytes:
        """Remote-read `count` bytes from buffer address `addr` with 16-bit transfers."""
        words = (count + 1) // 2
        self._remote(E8390_RREAD, addr, words * 2)
        data = self.qt.insw(self.base + DATA, words)
        self._wait_isr(ENISR_RDC)
        return data[:count]

    def block_output(self, addr: int, data: bytes) -> None:
        count = (len(data) + 1) & ~1
        self._remote(E8390_RWRITE, addr, count)
        self.qt.outsw(self.base + DATA, data)
        self._wait_isr(ENISR_RDC)

    # ---- probe and init --------------------------------------------------------------

    def probe(self) -> bytes:
        """Reset the card, read the 32-byte PROM byte-wide, return the de-duplicated MAC."""
        self.inb(RESET)
        self.outb(RESET, 0)
        if not self.inb(EN0_ISR) & ENISR_RESET:
            raise DriverError("no reset acknowledge")
        self.outb(EN0_ISR, 0xFF)
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP)
        self.outb(EN0_DCFG, 0x48)
        self.outb(EN0_RCNTLO, 32)
        self.outb(EN0_RCNTHI, 0)
        self.outb(EN0_RSARLO, 0)
        self.outb(EN0_RSARHI, 0)
        self.outb(E8390_CMD, E8390_RREAD | E8390_START)
        prom = bytes(self.inb(DATA) for _ in range(32))
        if any(prom[i] != prom[i + 1] for i in range(0, 32, 2)):
            raise DriverError(f"PROM is not word-doubled: {prom.hex()}")
        words = prom[::2]
        if words[14] != 0x57 or words[15] != 0x57:
            raise DriverError(f"no NE2000 signature: {prom.hex()}")
        self.mac = words[:6]
        return self.mac

    def init(self, rcr: int = 0x04, mar: bytes = bytes(8), imr: int = 0x3F) -> None:
        """Word mode, ring rx_start..rx_stop, BNRY one page behind CURR, start the chip."""
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP)
        self.outb(EN0_DCFG, 0x49)
        self.outb(EN0_RCNTLO, 0)
        self.outb(EN0_RCNTHI, 0)
        self.outb(EN0_RXCR, rcr)
        self.outb(EN0_TXCR, 0)
        self.outb(EN0_TPSR, self.tx_page)
        self.outb(EN0_STARTPG, self.rx_start)
        self.outb(EN0_BOUNDARY, self.rx_stop - 1)
        self.outb(EN0_STOPPG, self.rx_stop)
        self.outb(EN0_ISR, 0xFF)
        self.outb(EN0_IMR, 0)
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE1 | E8390_STOP)
        for i, byte in enumerate(self.mac or bytes(6)):
            self.outb(EN1_PHYS + i, byte)
        for i, byte in enumerate(mar):
            self.outb(EN1_MULT + i, byte)
        self.outb(EN1_CURPAG, self.rx_start)
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START)
        self.outb(EN0_IMR, imr)

    def set_rcr(self, rcr: int) -> None:
        self.outb(EN0_RXCR, rcr)

    # ---- transmit --------------------------------------------------------------------

    def transmit(self, frame: bytes) -> None:
        self.block_output(self.tx_page << 8, frame)
        self.outb(EN0_TPSR, self.tx_page)
        self.outb(EN0_TCNTLO, len(frame) & 0xFF)
        self.outb(EN0_TCNTHI, len(frame) >> 8)
        self.outb(E8390_CMD, E8390_NODMA | E8390_TRANS | E8390_START)
        self._wait_isr(ENISR_TX)

    # ---- receive (Linux ei_receive) --------------------------------------------------

    def _curr(self) -> int:
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE1 | E8390_START)
        curr = self.inb(EN1_CURPAG)
        self.outb(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START)
        return curr

    def receive(self, max_frames: int = 1 << 30) -> list[bytes]:
        """Take up to `max_frames` frames from the ring, oldest first, advancing BNRY."""
        frames: list[bytes] = []
        ring_pages = self.rx_stop - self.rx_start
        while len(frames) < max_frames:
            curr = self._curr()
            this_frame = self.inb(EN0_BOUNDARY) + 1
            if this_frame >= self.rx_stop:
                this_frame = self.rx_start
            if this_frame == curr:
                break
            status, nxt, lo, hi = self.block_input(this_frame << 8, 4)
            count = lo | hi << 8
            pkt_len = count - 4
            expect = this_frame + 1 + ((pkt_len + 4) >> 8)
            if nxt not in (expect, expect + 1, expect - ring_pages, expect + 1 - ring_pages):
                raise DriverError(
                    f"bogus header at page {this_frame:#x}: next {nxt:#x}, count {count}"
                )
            if status & 0x0F != ENRSR_RXOK or not 0 < pkt_len <= 1518:
                raise DriverError(f"bad frame status {status:#x} length {pkt_len}")
            frames.append(self.block_input((this_frame << 8) + 4, pkt_len))
            if nxt >= self.rx_stop:
                raise DriverError(f"next page {nxt:#x} beyond PSTOP")
            self.outb(EN0_BOUNDARY, nxt - 1)
        self.outb(EN0_ISR, ENISR_RX)
        return frames

