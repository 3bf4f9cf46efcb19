"""DP8390 — the NIC chip core of the NE2000 (QEMU: the chip half of hw/net/ne2000.c).

The chip knows no bus and no socket. It owns the 48 KiB buffer memory (32-byte station
PROM at 0x0000, packet RAM 0x4000-0xBFFF), the register file (pages 0-3, selected by
CR bits 7:6), remote DMA through the data port, the receive ring, the address filter
and transmit. It raises one IrqLine at `(ISR & IMR & 0x7F) != 0` and hands transmitted
frames, as `bytes` copies, to its `sink` (the board's NetClient).

Baseline semantics are QEMU's (qemu-behaviour.md §4) with every security guard of §4.12;
the deliberate differences are listed in docs/quirks.md ("NE2000"). The main ones:
receive is lossless (`can_receive()` is false until a full-size frame fits, and the
board flushes the net queue when room appears), page-2 registers read back, reset
recomputes the IRQ line, and frames over 1518 bytes are dropped and counted.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from emu.core.irq import IrqLine
from emu.core.trace import DISABLED, Trace

# Register offsets and bits, named as in Linux drivers/net/ethernet/8390/8390.h.
E8390_CMD = 0x00
E8390_STOP = 0x01
E8390_START = 0x02
E8390_TRANS = 0x04
E8390_RREAD = 0x08
E8390_RWRITE = 0x10
E8390_NODMA = 0x20
E8390_PAGE0 = 0x00
E8390_PAGE1 = 0x40
E8390_PAGE2 = 0x80

EN0_CLDALO = 0x01  # read; write = EN0_STARTPG
EN0_STARTPG = 0x01
EN0_CLDAHI = 0x02  # read; write = EN0_STOPPG
EN0_STOPPG = 0x02
EN0_BOUNDARY = 0x03
EN0_TSR = 0x04  # read; write = EN0_TPSR
EN0_TPSR = 0x04
EN0_NCR = 0x05  # read; write = EN0_TCNTLO
EN0_TCNTLO = 0x05
EN0_FIFO = 0x06  # read; write = EN0_TCNTHI
EN0_TCNTHI = 0x06
EN0_ISR = 0x07
EN0_CRDALO = 0x08  # read; write = EN0_RSARLO
EN0_RSARLO = 0x08
EN0_CRDAHI = 0x09
EN0_RSARHI = 0x09
EN0_RCNTLO = 0x0A
EN0_RCNTHI = 0x0B
EN0_RSR = 0x0C  # read; write = EN0_RXCR
EN0_RXCR = 0x0C
EN0_TXCR = 0x0D  # write; read = EN0_COUNTER0
EN0_COUNTER0 = 0x0D
EN0_DCFG = 0x0E  # write; read = EN0_COUNTER1
EN0_COUNTER1 = 0x0E
EN0_IMR = 0x0F  # write; read = EN0_COUNTER2
EN0_COUNTER2 = 0x0F

EN1_PHYS = 0x01  # PAR0-5 at 0x01-0x06
EN1_CURPAG = 0x07
EN1_MULT = 0x08  # MAR0-7 at 0x08-0x0F

# Page 2 (datasheet): read-back of page-0 write-only registers, plus RNPP/LNPP/address counter.
EN2_RNPP = 0x03
EN2_TPSR = 0x04
EN2_LNPP = 0x05
EN2_ACUPPER = 0x06
EN2_ACLOWER = 0x07
EN2_RXCR = 0x0C
EN2_TXCR = 0x0D
EN2_DCFG = 0x0E
EN2_IMR = 0x0F

# Page 3 belongs to the RTL8029 (9346CR, BPAGE, CONFIG0-3, ...); toynic models none of it.
# Reads answer what QEMU answers (CONFIG2: 10BASE-T link, CONFIG3: full duplex), 0 else.
EN3_CONFIG2 = 0x05
EN3_CONFIG3 = 0x06
PAGE3_NAMES = ("CR", "9346CR", "BPAGE", "CONFIG0", "CONFIG1", "CONFIG2", "CONFIG3",
               *("-",) * 9)

ENISR_RX = 0x01
ENISR_TX = 0x02
ENISR_RX_ERR = 0x04
ENISR_TX_ERR = 0x08
ENISR_OVER = 0x10
ENISR_COUNTERS = 0x20
ENISR_RDC = 0x40
ENISR_RESET = 0x80
ENISR_ALL = 0x7F  # every bit that can raise the IRQ (RST never does)

ENDCFG_WTS = 0x01

ENRSR_RXOK = 0x01
ENRSR_PHY = 0x20

ENTSR_PTX = 0x01

# RCR bits (datasheet names).
ENRCR_SEP = 0x01
ENRCR_AR = 0x02
ENRCR_AB = 0x04
ENRCR_AM = 0x08
ENRCR_PRO = 0x10
ENRCR_MON = 0x20

MEM_SIZE = 0xC000
PROM_SIZE = 0x20
PMEM_START = 0x4000
PMEM_END = MEM_SIZE
PAGE = 256

ETH_ZLEN = 60  # minimum frame length without FCS; runts are padded to this
MAX_FRAME = 1518  # longest frame a real 8390 sees on Ethernet (1514 + 802.1Q tag)
RX_HEADER = 4
BROADCAST = b"\xff" * 6

RX_REASONS = (
    "stopped",  # CR.STP set
    "no_ring",  # PSTOP <= PSTART
    "bad_pointers",  # BNRY outside [PSTART, PSTOP): unread data unknown
    "ring_full",  # this frame would not fit
    "empty",  # zero-length frame
    "oversize",  # longer than MAX_FRAME
    "unicast",  # unicast to another station
    "broadcast",  # broadcast with RCR.AB clear
    "multicast_off",  # multicast with RCR.AM clear
    "multicast_hash",  # multicast whose MAR hash bit is clear
    "reentrant",  # offered while the chip is delivering a transmit
)


def pages_for(size: int) -> int:
    """Ring pages a frame of `size` bytes occupies: header + frame + the 4-byte CRC slot."""
    return (size + RX_HEADER + 4 + PAGE - 1) // PAGE


FULL_FRAME_PAGES = pages_for(MAX_FRAME)


def multicast_index(dst: bytes) -> int:
    """MAR bit index: top 6 bits of the Ethernet CRC-32 (MSB-first, not inverted) of `dst`."""
    crc = zlib.crc32(dst) ^ 0xFFFFFFFF
    # zlib's CRC is bit-reflected; its 6 lowest bits, reversed, are the MSB-first top 6.
    return int(f"{crc & 0x3F:06b}"[::-1], 2)


class FrameSink(Protocol):
    """What the chip needs of its NetClient."""

    def send(self, frame: bytes) -> int: ...

    def flush_queued(self) -> None: ...


@dataclass
class NicStats:
    """Every frame offered to the NIC is accepted or filtered for exactly one reason."""

    offered: int = 0
    accepted: int = 0
    filtered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RX_REASONS, 0))
    tx_sent: int = 0
    tx_out_of_range: int = 0
    tx_empty: int = 0

    def total_filtered(self) -> int:
        return sum(self.filtered.values())


class Dp8390:
    """The chip: registers, command, ISR/IMR, remote DMA, receive ring, filter, transmit."""

    def __init__(self, irq: IrqLine, sink: FrameSink | None = None) -> None:
        self.irq = irq
        self.sink = sink
        self.mem = bytearray(MEM_SIZE)
        self.stats = NicStats()
        self.cmd = 0
        self.pstart = 0  # byte address (page << 8)
        self.pstop = 0
        self.bnry = 0  # page
        self.curr = 0  # page
        self.tsr = 0
        self.tpsr = 0
        self.tbcr = 0
        self.rbcr = 0
        self.rsar = 0
        self.rsr = 0
        self.rcr = 0
        self.tcr = 0
        self.dcr = 0
        self.imr = 0
        self.isr = ENISR_RESET
        self.rnpp = 0
        self.lnpp = 0
        self.ac = 0
        self.par = bytearray(6)
        self.mar = bytearray(8)
        self._delivering = False
        self._refused = False
        self.name = "dp8390"
        self.trace: Trace = DISABLED
        self._reads = (self._page0_reads(), self._page1_reads(), self._page2_reads(),
                       self._page3_reads())
        self._writes = (self._page0_writes(), self._page1_writes(), self._page2_writes(),
                        self._page3_writes())

    # ---- register file -------------------------------------------------------------

    def read_reg(self, offset: int) -> int:
        """A byte read of register `offset` (0-15) on the page CR selects."""
        return self._reads[self.cmd >> 6][offset & 0xF]()

    def write_reg(self, offset: int, value: int) -> None:
        self._writes[self.cmd >> 6][offset & 0xF](value & 0xFF)

    def _ignore(self, value: int) -> None:
        pass

    def _zero(self) -> int:
        return 0

    def _read_cr(self) -> int:
        return self.cmd

    def _page0_reads(self) -> tuple:
        regs = [self._zero] * 16
        regs[E8390_CMD] = self._read_cr
        regs[EN0_BOUNDARY] = lambda: self.bnry
        regs[EN0_TSR] = lambda: self.tsr
        regs[EN0_ISR] = lambda: self.isr
        regs[EN0_CRDALO] = lambda: self.rsar & 0xFF
        regs[EN0_CRDAHI] = lambda: self.rsar >> 8
        regs[EN0_RCNTLO] = lambda: 0x50  # RTL8029 chip ID 'P', as QEMU
        regs[EN0_RCNTHI] = lambda: 0x43  # 'C'
        regs[EN0_RSR] = lambda: self.rsr
        return tuple(regs)

    def _page1_reads(self) -> tuple:
        regs = [self._zero] * 16
        regs[E8390_CMD] = self._read_cr
        for i in range(6):
            regs[EN1_PHYS + i] = lambda i=i: self.par[i]
        regs[EN1_CURPAG] = lambda: self.curr
        for i in range(8):
            regs[EN1_MULT + i] = lambda i=i: self.mar[i]
        return tuple(regs)

    def _page2_reads(self) -> tuple:
        regs = [self._zero] * 16
        regs[E8390_CMD] = self._read_cr
        regs[EN0_STARTPG] = lambda: self.pstart >> 8
        regs[EN0_STOPPG] = lambda: self.pstop >> 8
        regs[EN2_RNPP] = lambda: self.rnpp
        regs[EN2_TPSR] = lambda: self.tpsr
        regs[EN2_LNPP] = lambda: self.lnpp
        regs[EN2_ACUPPER] = lambda: self.ac >> 8
        regs[EN2_ACLOWER] = lambda: self.ac & 0xFF
        regs[EN2_RXCR] = lambda: self.rcr
        regs[EN2_TXCR] = lambda: self.tcr
        regs[EN2_DCFG] = lambda: self.dcr
        regs[EN2_IMR] = lambda: self.imr
        return tuple(regs)

    def _page3_reads(self) -> tuple:
        regs = [partial(self._page3_read, offset, 0) for offset in range(16)]
        regs[E8390_CMD] = self._read_cr
        regs[EN3_CONFIG2] = partial(self._page3_read, EN3_CONFIG2, 0x40)
        regs[EN3_CONFIG3] = partial(self._page3_read, EN3_CONFIG3, 0x40)
        return tuple(regs)

    def _page3_writes(self) -> tuple:
        # CR is the same register on every page: a driver that selected page 3 (Linux's
        # ne2k-pci set_realtek_fdx) must be able to leave it.
        regs = [partial(self._page3_write, offset) for offset in range(16)]
        regs[E8390_CMD] = self.write_cr
        return tuple(regs)

    def _page3_read(self, offset: int, value: int) -> int:
        if self.trace.ne2000_page3_ignored:
            self._trace_page3("read", offset, value)
        return value

    def _page3_write(self, offset: int, value: int) -> None:
        if self.trace.ne2000_page3_ignored:
            self._trace_page3("write", offset, value)

    def _trace_page3(self, op: str, offset: int, value: int) -> None:
        self.trace.emit("ne2000_page3_ignored", nic=self.name, op=op, addr=f"{offset:#04x}",
                        reg=PAGE3_NAMES[offset], val=f"{value:#04x}")

    def _page0_writes(self) -> tuple:
        regs = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        regs[EN0_STARTPG] = self._w_pstart
        regs[EN0_STOPPG] = self._w_pstop
        regs[EN0_BOUNDARY] = self._w_bnry
        regs[EN0_TPSR] = self._w_tpsr
        regs[EN0_TCNTLO] = lambda v: setattr(self, "tbcr", (self.tbcr & 0xFF00) | v)
        regs[EN0_TCNTHI] = lambda v: setattr(self, "tbcr", (self.tbcr & 0x00FF) | v << 8)
        regs[EN0_ISR] = self._w_isr
        regs[EN0_RSARLO] = lambda v: setattr(self, "rsar", (self.rsar & 0xFF00) | v)
        regs[EN0_RSARHI] = lambda v: setattr(self, "rsar", (self.rsar & 0x00FF) | v << 8)
        regs[EN0_RCNTLO] = lambda v: setattr(self, "rbcr", (self.rbcr & 0xFF00) | v)
        regs[EN0_RCNTHI] = lambda v: setattr(self, "rbcr", (self.rbcr & 0x00FF) | v << 8)
        regs[EN0_RXCR] = lambda v: setattr(self, "rcr", v)
        regs[EN0_TXCR] = lambda v: setattr(self, "tcr", v)  # stored for read-back only
        regs[EN0_DCFG] = lambda v: setattr(self, "dcr", v)
        regs[EN0_IMR] = self._w_imr
        return tuple(regs)

    def _page1_writes(self) -> tuple:
        regs = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        for i in range(6):
            regs[EN1_PHYS + i] = lambda v, i=i: self.par.__setitem__(i, v)
        regs[EN1_CURPAG] = self._w_curr
        for i in range(8):
            regs[EN1_MULT + i] = lambda v, i=i: self.mar.__setitem__(i, v)
        return tuple(regs)

    def _page2_writes(self) -> tuple:
        # CLDA0/1 have no effect without local DMA; RNPP/LNPP/address counter read back.
        regs = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        regs[EN2_RNPP] = lambda v: setattr(self, "rnpp", v)
        regs[EN2_LNPP] = lambda v: setattr(self, "lnpp", v)
        regs[EN2_ACUPPER] = lambda v: setattr(self, "ac", (self.ac & 0x00FF) | v << 8)
        regs[EN2_ACLOWER] = lambda v: setattr(self, "ac", (self.ac & 0xFF00) | v)
        return tuple(regs)

    # Ring pointers are validated on write (CVE-2015-5279) and again on use.
    def _w_pstart(self, value: int) -> None:
        if value << 8 <= MEM_SIZE:
            self.pstart = value << 8
            self._ring_changed()

    def _w_pstop(self, value: int) -> None:
        if value << 8 <= MEM_SIZE:
            self.pstop = value << 8
            self._ring_changed()

    def _w_bnry(self, value: int) -> None:
        if value << 8 < MEM_SIZE:
            self.bnry = value
            self._ring_changed()

    def _w_curr(self, value: int) -> None:
        if value << 8 < MEM_SIZE:
            self.curr = value
            self._ring_changed()

    def _w_tpsr(self, value: int) -> None:
        self.tpsr = value

    def _w_isr(self, value: int) -> None:
        self.isr &= ~(value & ENISR_ALL)
        self.update_irq()

    def _w_imr(self, value: int) -> None:
        self.imr = value
        self.update_irq()

    def write_cr(self, value: int) -> None:
        self.cmd = value
        if value & E8390_STOP:
            return
        self.isr &= ~ENISR_RESET
        if value & (E8390_RREAD | E8390_RWRITE) and self.rbcr == 0:
            self.isr |= ENISR_RDC
            self.update_irq()
        if value & E8390_TRANS:
            self._transmit()
            self.tsr = ENTSR_PTX
            self.isr |= ENISR_TX
            self.cmd &= ~E8390_TRANS
            self.update_irq()
        self._ring_changed()

    def update_irq(self) -> None:
        self.irq.set(self.isr & self.imr & ENISR_ALL != 0)

    def _ring_changed(self) -> None:
        """The guest may have made room or started the chip: if the net layer was told
        "no" since the last flush, let it deliver again (a hub behind us needs the call
        even when our own queue is empty)."""
        if self._refused and self.sink is not None and self.can_receive():
            self._refused = False
            self.sink.flush_queued()

    # ---- reset and PROM --------------------------------------------------------------

    def reset(self, mac: bytes) -> None:
        """The board's reset: ISR=RST and the PROM rebuilt; nothing else changes (QEMU)."""
        self.isr = ENISR_RESET
        mem = self.mem
        mem[0:6] = mac
        mem[14] = mem[15] = 0x57
        # Doubling in place from the top keeps QEMU's bit-exact PROM (quirk N2).
        for i in range(15, -1, -1):
            mem[2 * i] = mem[2 * i + 1] = mem[i]
        self.update_irq()

    # ---- remote DMA (data port) ------------------------------------------------------

    def dma_read(self, size: int) -> int:
        """One data-port read; a 32-bit access moves 4 bytes, otherwise DCR.WTS picks 2 or 1
        (not the access size). Returns the value moved."""
        n = 4 if size == 4 else (2 if self.dcr & ENDCFG_WTS else 1)
        addr = self.rsar
        if n != 1:
            addr &= ~1
        end = addr + n
        if end <= PROM_SIZE or (addr >= PMEM_START and end <= PMEM_END):
            mem = self.mem
            if n == 1:
                value = mem[addr]
            elif n == 2:
                value = mem[addr] | mem[addr + 1] << 8
            else:
                value = int.from_bytes(mem[addr:end], "little")
        else:
            value = (1 << (8 * n)) - 1
        self._dma_advance(n)
        return value

    def dma_write(self, size: int, value: int) -> None:
        if self.rbcr == 0:
            return
        n = 4 if size == 4 else (2 if self.dcr & ENDCFG_WTS else 1)
        addr = self.rsar
        if n != 1:
            addr &= ~1
        end = addr + n
        if end <= PROM_SIZE or (addr >= PMEM_START and end <= PMEM_END):
            self.mem[addr:end] = (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
        self._dma_advance(n)

    def _dma_advance(self, n: int) -> None:
        rsar = (self.rsar + n) & 0xFFFF
        if rsar == self.pstop:
            rsar = self.pstart
        self.rsar = rsar
        if self.rbcr <= n:
            self.rbcr = 0
            self.isr |= ENISR_RDC
            if self.trace.ne2000_dma_done:
                self.trace.emit("ne2000_dma_done", nic=self.name,
                                dir="write" if self.cmd & E8390_RWRITE else "read",
                                rsar=f"{rsar:#06x}", width=n)
            self.irq.set(self.isr & self.imr & ENISR_ALL != 0)
        else:
            self.rbcr -= n

    # ---- transmit --------------------------------------------------------------------

    def _transmit(self) -> None:
        index = self.tpsr << 8
        if index >= MEM_SIZE:
            index -= 0x8000  # NetWare 3.11 uses TPSR >= 0xC0 (QEMU's compatibility hack)
        count = self.tbcr
        stats = self.stats
        if index + count > MEM_SIZE:
            stats.tx_out_of_range += 1
            if self.trace.ne2000_transmit_error:
                self._trace_tx_error("out_of_range", count)
            return
        if count == 0:
            stats.tx_empty += 1
            if self.trace.ne2000_transmit_error:
                self._trace_tx_error("empty", count)
            return
        frame = bytes(self.mem[index:index + count])
        stats.tx_sent += 1
        if self.trace.ne2000_transmit:
            self.trace.emit("ne2000_transmit", nic=self.name, len=count,
                            tpsr=f"{self.tpsr:#04x}")
        if self.sink is None:
            return
        self._delivering = True
        try:
            self.sink.send(frame)
        finally:
            self._delivering = False

    def _trace_tx_error(self, reason: str, count: int) -> None:
        self.trace.emit("ne2000_transmit_error", nic=self.name, reason=reason, len=count,
                        tpsr=f"{self.tpsr:#04x}")

    # ---- receive ---------------------------------------------------------------------

    def free_pages(self) -> int:
        """Free ring pages from CURR up to BNRY (CURR == BNRY: empty), or 0 if unusable."""
        start, stop = self.pstart, self.pstop
        if stop <= start:
            return 0
        ring = (stop - start) >> 8
        first, last = start >> 8, stop >> 8
        curr = self.curr if first <= self.curr < last else first
        bnry = self.bnry
        if bnry == first - 1:
            # Linux's ei_receive writes BNRY = next - 1, which is PSTART - 1 after a wrap:
            # the ring predecessor of PSTART, i.e. PSTOP - 1.
            bnry = last - 1
        elif not first <= bnry < last:
            return 0
        if curr == bnry:
            return ring
        return (bnry - curr) % ring

    def can_receive(self) -> bool:
        """True while a full-size frame fits with a page to spare (so CURR never meets BNRY)."""
        if not self._delivering and not self.cmd & E8390_STOP \
                and self.free_pages() > FULL_FRAME_PAGES:
            return True
        self._refused = True
        return False

    def _reject(self, reason: str) -> None:
        self.stats.filtered[reason] += 1
        if self.trace.ne2000_receive_drop:
            self.trace.emit("ne2000_receive_drop", nic=self.name, reason=reason)

    def _address_ok(self, dst: bytes) -> str | None:
        """None if the filter accepts `dst`, else the reason it does not."""
        rcr = self.rcr
        if rcr & ENRCR_PRO:
            return None
        if dst == BROADCAST:
            return None if rcr & ENRCR_AB else "broadcast"
        if dst[0] & 1:
            if not rcr & ENRCR_AM:
                return "multicast_off"
            index = multicast_index(dst)
            return None if self.mar[index >> 3] & (1 << (index & 7)) else "multicast_hash"
        mem = self.mem
        # QEMU compares against the PROM copy, not PAR0-5 (quirk N1).
        if dst == bytes((mem[0], mem[2], mem[4], mem[6], mem[8], mem[10])):
            return None
        return "unicast"

    def receive(self, frame: bytes) -> int:
        """Store one frame in the ring: its size if stored or filtered out, -1 if dropped."""
        stats = self.stats
        stats.offered += 1
        size = len(frame)
        if self._delivering:
            self._reject("reentrant")
            return -1
        if self.cmd & E8390_STOP:
            self._reject("stopped")
            return -1
        if self.pstop <= self.pstart:
            self._reject("no_ring")
            return -1
        if size == 0:
            self._reject("empty")
            return -1
        if size > MAX_FRAME:
            self._reject("oversize")
            return -1
        if size < ETH_ZLEN:
            frame = bytes(frame) + bytes(ETH_ZLEN - size)
        reason = self._address_ok(bytes(frame[:6]))
        if reason is not None:
            self._reject(reason)
            return size
        free = self.free_pages()
        if free == 0:
            self._reject("bad_pointers")
            return -1
        stored = len(frame)
        pages = pages_for(stored)
        if pages >= free:
            self._reject("ring_full")
            return -1
        self._store(frame, stored, pages)
        stats.accepted += 1
        return size

    def _store(self, frame: bytes, size: int, pages: int) -> None:
        start, stop = self.pstart, self.pstop
        index = self.curr << 8
        if not start <= index < stop:
            index = start
        nxt = index + pages * PAGE
        if nxt >= stop:
            nxt -= stop - start
        rsr = ENRSR_RXOK | (ENRSR_PHY if frame[0] & 1 else 0)
        total = size + RX_HEADER
        mem = self.mem
        mem[index:index + 4] = bytes((rsr, nxt >> 8, total & 0xFF, total >> 8))
        data = index + RX_HEADER
        first = min(size, stop - data)
        mem[data:data + first] = frame[:first]
        if first < size:
            mem[start:start + size - first] = frame[first:]
        self.rsr = rsr
        self.curr = nxt >> 8
        self.isr |= ENISR_RX
        if self.trace.ne2000_receive:
            self.trace.emit("ne2000_receive", nic=self.name, len=size, pages=pages,
                            curr=f"{index >> 8:#04x}->{self.curr:#04x}",
                            bnry=f"{self.bnry:#04x}", isr=f"{self.isr:#04x}")
        self.update_irq()
