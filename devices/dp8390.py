"""DP8390 — the NIC chip core of the NE2000 (QEMU: the chip half of hw/net/ne2000.c).

The chip knows no bus and no socket. It owns the 48 KiB buffer memory (the board's
32-byte station PROM at 0x0000, packet RAM 0x4000-0xBFFF), the register file (pages 0-3,
selected by CR bits 7:6; offsets, bits and names in `devices.dp8390_regs`), remote DMA
through the data port, the receive ring, the address filter and transmit. It raises one
IrqLine at `(ISR & IMR & 0x7F) != 0` and hands transmitted frames, as `bytes` copies, to
its `sink` (the board's NetClient).

Baseline semantics are QEMU's (docs/qemu-behaviour.md §4) with every security guard of §4.10;
the deliberate differences are listed in docs/quirks.md ("NE2000"). The main ones:
receive is lossless by default (`can_receive()` is false until a full-size frame fits,
and the board flushes the net queue when room appears), page-2 registers read back, reset
recomputes the IRQ line, and frames over 1518 bytes are dropped and counted.

Beyond QEMU, the chip behaves as the DP8390 datasheet says where drivers depend on it:

- TCR loopback (LB=1..3): a transmitted frame never reaches the wire; it comes back
  through the address filter into the ring (RSR, ISR.PRX, and ISR.PTX for the
  transmit). With TCR.CRC (inhibit) set the receiver checks the frame's last 4 bytes as
  its FCS. Wire frames are not received meanwhile. One TXP loops one frame: nothing
  re-enters the net layer, so a loopback storm is as long as the guest's loop.
- Tally counters CNTR0-2 (alignment, CRC, missed) count to 0xC0, set ISR.CNT there and
  clear when read. Frames earn CRC errors through `Dp8390.receive_bad_crc` (the hook a
  link filter corrupting frames calls, see `devices.ne2000.Ne2000Client`).
- `lossless=False`: the hardware's overflow. A frame that finds no room is missed
  (CNTR2, RSR.MPA, ISR.OVW and RXE) and receive stays halted, every later frame missed,
  until the driver's recovery sequence stops the chip (CR.STP), as Linux's
  `ei_rx_overrun` does.
- `tx_clock`: transmit completes (CR.TXP clears, TSR, ISR.PTX; the frame leaves) after
  its 10 Mbit/s wire time on that clock; a STOP meanwhile cuts the transmit off.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from devices.dp8390_regs import (
    CNTR_CRC,
    CNTR_MAX,
    CNTR_MPA,
    CNTR_NAMES,
    CR_PAGE_SHIFT,
    E8390_CMD,
    E8390_RREAD,
    E8390_RWRITE,
    E8390_STOP,
    E8390_TRANS,
    EN0_BOUNDARY,
    EN0_COUNTER0,
    EN0_CRDAHI,
    EN0_CRDALO,
    EN0_DCFG,
    EN0_IMR,
    EN0_ISR,
    EN0_RCNTHI,
    EN0_RCNTLO,
    EN0_RSARHI,
    EN0_RSARLO,
    EN0_RSR,
    EN0_RXCR,
    EN0_STARTPG,
    EN0_STOPPG,
    EN0_TCNTHI,
    EN0_TCNTLO,
    EN0_TPSR,
    EN0_TSR,
    EN0_TXCR,
    EN1_CURPAG,
    EN1_MULT,
    EN1_PHYS,
    EN2_ACLOWER,
    EN2_ACUPPER,
    EN2_DCFG,
    EN2_IMR,
    EN2_LNPP,
    EN2_RNPP,
    EN2_RXCR,
    EN2_TPSR,
    EN2_TXCR,
    EN3_CONFIG2,
    EN3_CONFIG2_10BASE_T,
    EN3_CONFIG3,
    EN3_CONFIG3_FULL_DUPLEX,
    ENDCFG_WTS,
    ENISR_ALL,
    ENISR_COUNTERS,
    ENISR_OVER,
    ENISR_RDC,
    ENISR_RESET,
    ENISR_RX,
    ENISR_RX_ERR,
    ENISR_TX,
    ENRCR_AB,
    ENRCR_AM,
    ENRCR_PRO,
    ENRCR_SEP,
    ENRSR_CRC,
    ENRSR_MPA,
    ENRSR_PHY,
    ENRSR_RXOK,
    ENTCR_CRC,
    ENTCR_LB,
    ENTSR_PTX,
    ETH_FCS_LEN,
    ETH_IFG_LEN,
    ETH_MAX_FRAME,
    ETH_PREAMBLE_LEN,
    ETH_ZLEN,
    MEM_SIZE,
    PAGE3_NAMES,
    PMEM_END,
    PMEM_START,
    PROM_SIZE,
    RING_PAGE,
    RTL8029_ID0,
    RTL8029_ID1,
    TCR_LB_MODES,
    TCR_LB_SHIFT,
    WIRE_NS_PER_BYTE,
)
from emu.core.irq import IrqLine
from emu.core.trace import DISABLED, Trace

RX_HEADER = 4
BROADCAST = b"\xff" * 6

RX_REASONS = (
    "stopped",  # CR.STP set
    "no_ring",  # PSTOP <= PSTART
    "bad_pointers",  # BNRY outside [PSTART, PSTOP): unread data unknown
    "ring_full",  # this frame would not fit
    "empty",  # zero-length frame
    "oversize",  # longer than ETH_MAX_FRAME
    "unicast",  # unicast to another station
    "broadcast",  # broadcast with RCR.AB clear
    "multicast_off",  # multicast with RCR.AM clear
    "multicast_hash",  # multicast whose MAR hash bit is clear
    "reentrant",  # offered while the chip is delivering a transmit
    "loopback",  # from the wire while TCR selects loopback: the receiver hears only itself
    "bad_crc",  # failed the CRC check (counted in CNTR1) and RCR.SEP is clear
)


def pages_for(size: int) -> int:
    """Ring pages a frame of `size` bytes occupies: header + frame + the 4-byte CRC slot."""
    return (size + RX_HEADER + 4 + RING_PAGE - 1) // RING_PAGE


FULL_FRAME_PAGES = pages_for(ETH_MAX_FRAME)


def multicast_index(dst: bytes) -> int:
    """MAR bit index: top 6 bits of the Ethernet CRC-32 (MSB-first, not inverted) of `dst`."""
    crc = zlib.crc32(dst) ^ 0xFFFFFFFF
    # zlib's CRC is bit-reflected; its 6 lowest bits, reversed, are the MSB-first top 6.
    return int(f"{crc & 0x3F:06b}"[::-1], 2)


def wire_time_ns(size: int, fcs: bool = True) -> int:
    """10 Mbit/s time a `size`-byte frame holds the wire: preamble, frame (padded to 60),
    the FCS the transmitter appends unless inhibited, and the inter-frame gap."""
    on_wire = ETH_PREAMBLE_LEN + max(size, ETH_ZLEN) + (ETH_FCS_LEN if fcs else 0) + ETH_IFG_LEN
    return on_wire * WIRE_NS_PER_BYTE


def fcs_ok(frame: bytes) -> bool:
    """True if the last 4 bytes are the Ethernet FCS (CRC-32, little-endian) of the rest."""
    if len(frame) <= ETH_FCS_LEN:
        return False
    body = frame[:-ETH_FCS_LEN]
    return zlib.crc32(body).to_bytes(4, "little") == bytes(frame[-ETH_FCS_LEN:])


def _with_low(word: int, byte: int) -> int:
    """A 16-bit register pair after a write of its low byte (TBCR0, RSAR0, RBCR0, ACL)."""
    return (word & 0xFF00) | byte


def _with_high(word: int, byte: int) -> int:
    return (word & 0x00FF) | byte << 8


Reader = Callable[[], int]
Writer = Callable[[int], None]


class FrameSink(Protocol):
    """What the chip needs of its NetClient."""

    def send(self, frame: bytes) -> int: ...

    def flush_queued(self) -> None: ...


class TxTimer(Protocol):
    def mod(self, deadline_ns: int) -> None: ...

    def cancel(self) -> None: ...


class TxClock(Protocol):
    """What wire-timed transmit needs of a clock (`emu.core.clock.VirtualClock` fits)."""

    def now(self) -> int: ...

    def timer(self, callback: Callable[[], object]) -> TxTimer: ...


@dataclass
class NicStats:
    """Every frame offered to the NIC (from the wire or looped back) is accepted, filtered
    for exactly one reason, or missed (no room, or receive halted after an overflow):
    `offered = accepted + total_filtered() + missed`."""

    offered: int = 0
    accepted: int = 0
    filtered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RX_REASONS, 0))
    missed: int = 0
    looped: int = 0  # of `offered`, frames the chip's own transmit looped back
    overflows: int = 0  # times receive halted on a full ring (lossless=False)
    tx_sent: int = 0
    tx_out_of_range: int = 0
    tx_empty: int = 0
    tx_aborted: int = 0  # wire-timed transmits a STOP cut off before they completed

    def total_filtered(self) -> int:
        return sum(self.filtered.values())


class Dp8390:
    """The chip: registers, command, ISR/IMR, remote DMA, receive ring, filter, transmit."""

    def __init__(self, irq: IrqLine, sink: FrameSink | None = None, *, lossless: bool = True,
                 tx_clock: TxClock | None = None) -> None:
        self.irq = irq
        self.sink = sink
        self.lossless = lossless
        self.tx_clock = tx_clock
        self._tx_timer = tx_clock.timer(self._tx_complete) if tx_clock is not None else None
        self._tx_frame: bytes | None = None
        self.cntr = [0, 0, 0]
        self.rx_halted = False
        self.mem = bytearray(MEM_SIZE)
        self.stats = NicStats()
        self.cmd = 0
        self.pstart = 0  # byte address (page << 8)
        self._pstop = 0
        self.bnry = 0  # page
        self.curr = 0  # page
        self.tsr = 0
        self.tpsr = 0
        self.tbcr = 0
        self._rbcr = 0
        self._rsar = 0
        # The data port's word fast path serves RSAR values below this (see
        # `_dma_window`); -1 (unknown) whenever RSAR, RBCR, DCR or PSTOP move otherwise.
        self._dma_end = -1
        self.rsr = 0
        self.rcr = 0
        self.tcr = 0
        self._dcr = 0
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

    # The registers the data port's fast path depends on: whoever sets them (a register
    # write, a test, a display) ends that path's current window.

    @property
    def rsar(self) -> int:
        return self._rsar

    @rsar.setter
    def rsar(self, value: int) -> None:
        self._rsar = value
        self._dma_end = -1

    @property
    def rbcr(self) -> int:
        return self._rbcr

    @rbcr.setter
    def rbcr(self, value: int) -> None:
        self._rbcr = value
        self._dma_end = -1

    @property
    def dcr(self) -> int:
        return self._dcr

    @dcr.setter
    def dcr(self, value: int) -> None:
        self._dcr = value
        self._dma_end = -1

    @property
    def pstop(self) -> int:
        return self._pstop

    @pstop.setter
    def pstop(self, value: int) -> None:
        self._pstop = value
        self._dma_end = -1

    # ---- register file -------------------------------------------------------------

    def read_reg(self, offset: int) -> int:
        """A byte read of register `offset` (0-15) on the page CR selects."""
        return self._reads[self.cmd >> CR_PAGE_SHIFT][offset & 0xF]()

    def write_reg(self, offset: int, value: int) -> None:
        self._writes[self.cmd >> CR_PAGE_SHIFT][offset & 0xF](value & 0xFF)

    def register_handlers(self, offset: int) -> tuple[tuple[Reader, ...], tuple[Writer, ...]]:
        """Register `offset`'s byte read and write handlers on pages 0-3, indexed by the
        page (CR >> 6): `read_reg`/`write_reg` without the lookup of the offset, for a
        board whose bus route serves one register."""
        offset &= 0xF
        return (tuple(page[offset] for page in self._reads),
                tuple(page[offset] for page in self._writes))

    def peek(self, page: int, offset: int) -> int:
        """What a read of `offset` on `page` 0-2 answers, whichever page CR selects,
        without its side effects (the tally counters are not cleared), so a display may
        call this (page-3 reads are traced)."""
        if not 0 <= page <= 2:
            raise ValueError(f"page {page}: only pages 0-2 can be peeked")
        offset &= 0xF
        if page == 0 and offset >= EN0_COUNTER0:
            return self.cntr[offset - EN0_COUNTER0]
        return self._reads[page][offset]()

    def _page0_reads(self) -> tuple[Reader, ...]:
        regs: list[Reader] = [self._zero] * 16
        regs[E8390_CMD] = self._field("cmd")
        regs[EN0_BOUNDARY] = self._field("bnry")
        regs[EN0_TSR] = self._field("tsr")
        regs[EN0_ISR] = self._field("isr")
        regs[EN0_CRDALO] = self._r_crda0
        regs[EN0_CRDAHI] = self._r_crda1
        regs[EN0_RCNTLO] = self._r_8029id0
        regs[EN0_RCNTHI] = self._r_8029id1
        regs[EN0_RSR] = self._field("rsr")
        for i in range(len(CNTR_NAMES)):
            regs[EN0_COUNTER0 + i] = partial(self._r_cntr, i)
        return tuple(regs)

    def _page1_reads(self) -> tuple[Reader, ...]:
        regs: list[Reader] = [self._zero] * 16
        regs[E8390_CMD] = self._field("cmd")
        for i in range(6):
            regs[EN1_PHYS + i] = partial(self._r_par, i)
        regs[EN1_CURPAG] = self._field("curr")
        for i in range(8):
            regs[EN1_MULT + i] = partial(self._r_mar, i)
        return tuple(regs)

    def _page2_reads(self) -> tuple[Reader, ...]:
        regs: list[Reader] = [self._zero] * 16
        regs[E8390_CMD] = self._field("cmd")
        regs[EN0_STARTPG] = self._r_pstart
        regs[EN0_STOPPG] = self._r_pstop
        regs[EN2_RNPP] = self._field("rnpp")
        regs[EN2_TPSR] = self._field("tpsr")
        regs[EN2_LNPP] = self._field("lnpp")
        regs[EN2_ACUPPER] = self._r_acu
        regs[EN2_ACLOWER] = self._r_acl
        regs[EN2_RXCR] = self._field("rcr")
        regs[EN2_TXCR] = self._field("tcr")
        regs[EN2_DCFG] = self._field("dcr")
        regs[EN2_IMR] = self._field("imr")
        return tuple(regs)

    def _page3_reads(self) -> tuple[Reader, ...]:
        regs: list[Reader] = [partial(self._page3_read, offset, 0) for offset in range(16)]
        regs[E8390_CMD] = self._field("cmd")
        regs[EN3_CONFIG2] = partial(self._page3_read, EN3_CONFIG2, EN3_CONFIG2_10BASE_T)
        regs[EN3_CONFIG3] = partial(self._page3_read, EN3_CONFIG3, EN3_CONFIG3_FULL_DUPLEX)
        return tuple(regs)

    def _page0_writes(self) -> tuple[Writer, ...]:
        regs: list[Writer] = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        regs[EN0_STARTPG] = self._w_pstart
        regs[EN0_STOPPG] = self._w_pstop
        regs[EN0_BOUNDARY] = self._w_bnry
        regs[EN0_TPSR] = self._w_tpsr
        regs[EN0_TCNTLO] = self._w_tbcr0
        regs[EN0_TCNTHI] = self._w_tbcr1
        regs[EN0_ISR] = self._w_isr
        regs[EN0_RSARLO] = self._w_rsar0
        regs[EN0_RSARHI] = self._w_rsar1
        regs[EN0_RCNTLO] = self._w_rbcr0
        regs[EN0_RCNTHI] = self._w_rbcr1
        regs[EN0_RXCR] = self._w_rcr
        regs[EN0_TXCR] = self._w_tcr
        regs[EN0_DCFG] = self._w_dcr
        regs[EN0_IMR] = self._w_imr
        return tuple(regs)

    def _page1_writes(self) -> tuple[Writer, ...]:
        regs: list[Writer] = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        for i in range(6):
            regs[EN1_PHYS + i] = partial(self._w_par, i)
        regs[EN1_CURPAG] = self._w_curr
        for i in range(8):
            regs[EN1_MULT + i] = partial(self._w_mar, i)
        return tuple(regs)

    def _page2_writes(self) -> tuple[Writer, ...]:
        # CLDA0/1 have no effect without local DMA; RNPP/LNPP/address counter read back.
        regs: list[Writer] = [self._ignore] * 16
        regs[E8390_CMD] = self.write_cr
        regs[EN2_RNPP] = self._w_rnpp
        regs[EN2_LNPP] = self._w_lnpp
        regs[EN2_ACUPPER] = self._w_acu
        regs[EN2_ACLOWER] = self._w_acl
        return tuple(regs)

    def _page3_writes(self) -> tuple[Writer, ...]:
        # CR is the same register on every page: a driver that selected page 3 (Linux's
        # ne2k-pci set_realtek_fdx) must be able to leave it.
        regs: list[Writer] = [partial(self._page3_write, offset) for offset in range(16)]
        regs[E8390_CMD] = self.write_cr
        return tuple(regs)

    # Register reads. Those of pages 0-2 have no side effects but the counters' clearing
    # (`peek` relies on it).

    def _field(self, name: str) -> Reader:
        """A register that reads back one field of the chip's state as it is."""
        return partial(getattr, self, name)

    def _zero(self) -> int:
        return 0

    def _r_crda0(self) -> int:
        return self._rsar & 0xFF

    def _r_crda1(self) -> int:
        return self._rsar >> 8

    def _r_8029id0(self) -> int:
        return RTL8029_ID0

    def _r_8029id1(self) -> int:
        return RTL8029_ID1

    def _r_cntr(self, index: int) -> int:
        value = self.cntr[index]
        self.cntr[index] = 0
        return value

    def _r_par(self, index: int) -> int:
        return self.par[index]

    def _r_mar(self, index: int) -> int:
        return self.mar[index]

    def _r_pstart(self) -> int:
        return self.pstart >> 8

    def _r_pstop(self) -> int:
        return self._pstop >> 8

    def _r_acu(self) -> int:
        return self.ac >> 8

    def _r_acl(self) -> int:
        return self.ac & 0xFF

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

    # Register writes.

    def _ignore(self, value: int) -> None:
        pass

    def _w_tbcr0(self, value: int) -> None:
        self.tbcr = _with_low(self.tbcr, value)

    def _w_tbcr1(self, value: int) -> None:
        self.tbcr = _with_high(self.tbcr, value)

    # A driver sets these four before every block it moves: written out, not through the
    # properties.
    def _w_rsar0(self, value: int) -> None:
        self._rsar = (self._rsar & 0xFF00) | value
        self._dma_end = -1

    def _w_rsar1(self, value: int) -> None:
        self._rsar = (self._rsar & 0x00FF) | value << 8
        self._dma_end = -1

    def _w_rbcr0(self, value: int) -> None:
        self._rbcr = (self._rbcr & 0xFF00) | value
        self._dma_end = -1

    def _w_rbcr1(self, value: int) -> None:
        self._rbcr = (self._rbcr & 0x00FF) | value << 8
        self._dma_end = -1

    def _w_rcr(self, value: int) -> None:
        self.rcr = value

    def _w_tcr(self, value: int) -> None:
        self.tcr = value
        # Leaving loopback lets wire frames in again.
        self._ring_changed()

    def _w_dcr(self, value: int) -> None:
        self.dcr = value

    def _w_par(self, index: int, value: int) -> None:
        self.par[index] = value

    def _w_mar(self, index: int, value: int) -> None:
        self.mar[index] = value

    def _w_rnpp(self, value: int) -> None:
        self.rnpp = value

    def _w_lnpp(self, value: int) -> None:
        self.lnpp = value

    def _w_acu(self, value: int) -> None:
        self.ac = _with_high(self.ac, value)

    def _w_acl(self, value: int) -> None:
        self.ac = _with_low(self.ac, value)

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
        transmitting = self._tx_frame is not None
        was_stopped = self.cmd & E8390_STOP
        # TXP reads back as 1 while a wire-timed transmit is under way; writing 0 there
        # does not cancel it.
        self.cmd = value | (E8390_TRANS if transmitting else 0)
        if value & E8390_STOP:
            self._stop()
            return
        self.isr &= ~ENISR_RESET
        if value & (E8390_RREAD | E8390_RWRITE) and self._rbcr == 0:
            self.isr |= ENISR_RDC
            self.update_irq()
        if value & E8390_TRANS and not transmitting:
            self._transmit()
        elif not was_stopped:
            # Receive readiness depends on CR only through STP, and on a transmit being
            # delivered: with neither, nothing the net layer was refused can fit now.
            return
        self._ring_changed()

    def _stop(self) -> None:
        """CR.STP: a transmit on the wire is cut off (no PTX: the driver resends it), and
        the receiver, halted by an overflow, is reset."""
        if self._tx_frame is not None and self._tx_timer is not None:
            self._tx_timer.cancel()
            self._tx_frame = None
            self.cmd &= ~E8390_TRANS
            self.stats.tx_aborted += 1
        self.rx_halted = False

    def update_irq(self) -> None:
        level = self.isr & self.imr & ENISR_ALL != 0
        if level != self.irq.level:
            self.irq.set(level)

    def _ring_changed(self) -> None:
        """The guest may have made room or started the chip: if the net layer was told
        "no" since the last flush, let it deliver again (a hub behind us needs the call
        even when our own queue is empty) once half the ring is free. Resuming as soon
        as one full-size frame fits again would let the frames waiting in the queue in
        one at a time, a flush per BNRY write; half a ring lets them in as a batch, while
        the guest still has the other half's frames to read."""
        if (self._refused and self.sink is not None and self.can_receive()
                and self.free_pages() >= (self._pstop - self.pstart) >> 9):
            self._refused = False
            self.sink.flush_queued()

    # ---- reset -----------------------------------------------------------------------

    def reset(self) -> None:
        """The chip's part of the board's reset: ISR=RST; no other register changes (QEMU),
        but an overflow's receive halt ends. The PROM bytes are the board's to write."""
        self.isr = ENISR_RESET
        self.rx_halted = False
        self.update_irq()

    # ---- remote DMA (data port) ------------------------------------------------------

    def port_read(self, offset: int, size: int) -> int:
        """The data port as a bus route calls it (`offset` is unused): `dma_read` cut to
        the access size. A word read inside the current DMA window (`_dma_window`) is
        served here with nothing to check but the window."""
        rsar = self._rsar
        if rsar < self._dma_end and size == 2:
            self._rsar = rsar + 2
            self._rbcr -= 2
            mem = self.mem
            return mem[rsar] | mem[rsar + 1] << 8
        if self._dma_end < 0:
            self._dma_window()
            return self.port_read(offset, size)
        return self.dma_read(size) & ((1 << (8 * size)) - 1)

    def port_write(self, offset: int, size: int, value: int) -> None:
        """The data port's write, as `port_read` (`value` fits the access size)."""
        rsar = self._rsar
        if rsar < self._dma_end and size == 2:
            self._rsar = rsar + 2
            self._rbcr -= 2
            mem = self.mem
            mem[rsar] = value & 0xFF
            mem[rsar + 1] = value >> 8
        elif self._dma_end < 0:
            self._dma_window()
            self.port_write(offset, size, value)
        else:
            self.dma_write(size, value)

    def port_read_burst(self, offset: int, size: int, count: int) -> bytes:
        """Up to `count` successive word reads of the data port at once (the route's
        `read_burst`, for a CPU's copy loop): the bytes they return, ending before the
        read that finishes the count (RDC) or that a byte-wide or out-of-memory transfer
        would need. A wrap from PSTOP to PSTART is taken on the way."""
        if size != 2:
            return b""
        parts = []
        left = count
        while left > 0:
            rsar = self._rsar
            end = self._dma_end
            if end < 0:
                end = self._dma_window()
            if rsar < end:
                n = min(left, (end - rsar + 1) >> 1)
                parts.append(self.mem[rsar:rsar + 2 * n])
                self._rsar = rsar + 2 * n
                self._rbcr -= 2 * n
                left -= n
            elif self._at_wrap(rsar, end):
                parts.append(self.dma_read(2).to_bytes(2, "little"))
                left -= 1
            else:
                break
        return b"".join(parts)

    def port_write_burst(self, offset: int, size: int, data: bytes) -> int:
        """The `size`-byte items of `data` written to the data port one after another, as
        far as `port_read_burst` would read (the route's `write_burst`); returns how many
        were written."""
        if size != 2:
            return 0
        total = len(data) >> 1
        done = 0
        mem = self.mem
        while done < total:
            rsar = self._rsar
            end = self._dma_end
            if end < 0:
                end = self._dma_window()
            if rsar < end:
                n = min(total - done, (end - rsar + 1) >> 1)
                mem[rsar:rsar + 2 * n] = data[2 * done:2 * (done + n)]
                self._rsar = rsar + 2 * n
                self._rbcr -= 2 * n
                done += n
            elif self._at_wrap(rsar, end):
                self.dma_write(2, int.from_bytes(data[2 * done:2 * done + 2], "little"))
                done += 1
            else:
                break
        return done

    def _at_wrap(self, rsar: int, end: int) -> bool:
        """The window ends at this word only because the next RSAR is PSTOP: a word
        access here moves data and wraps to PSTART, nothing more (no RDC)."""
        return end == rsar and rsar + 2 == self._pstop and self._rbcr > 2

    def _dma_window(self) -> int:
        """Bound the RSAR values a word access may take without `dma_read`'s checks: WTS
        set, RSAR even and in packet memory, and up to the first address where the
        access would be the count's last word (RBCR <= 2), the word before PSTOP (the
        wrap) or the end of memory; 0 if there is no such window. The fast path keeps
        RSAR + RBCR constant, so the bound holds for the whole window."""
        rsar = self._rsar
        if rsar & 1 or not self._dcr & ENDCFG_WTS or rsar < PMEM_START:
            end = 0
        else:
            end = min(PMEM_END - 1, rsar + self._rbcr - 2)
            wrap = self._pstop - 2
            if rsar <= wrap < end:
                end = wrap
        self._dma_end = end
        return end

    def dma_read(self, size: int) -> int:
        """One data-port read; a 32-bit access moves 4 bytes, otherwise DCR.WTS picks 2 or 1
        (not the access size). Returns the value moved."""
        n = 4 if size == 4 else (2 if self._dcr & ENDCFG_WTS else 1)
        addr = self._rsar
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
        if self._rbcr == 0:
            return
        n = 4 if size == 4 else (2 if self._dcr & ENDCFG_WTS else 1)
        addr = self._rsar
        if n != 1:
            addr &= ~1
        end = addr + n
        if end <= PROM_SIZE or (addr >= PMEM_START and end <= PMEM_END):
            self.mem[addr:end] = (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
        self._dma_advance(n)

    def _dma_advance(self, n: int) -> None:
        rsar = (self._rsar + n) & 0xFFFF
        if rsar == self._pstop:
            rsar = self.pstart
        self._rsar = rsar
        if self._rbcr <= n:
            self._rbcr = 0
            self.isr |= ENISR_RDC
            if self.trace.ne2000_dma_done:
                self.trace.emit("ne2000_dma_done", nic=self.name,
                                dir="write" if self.cmd & E8390_RWRITE else "read",
                                rsar=f"{rsar:#06x}", width=n)
            self.update_irq()
        else:
            self._rbcr -= n
        self._dma_end = -1

    # ---- transmit --------------------------------------------------------------------

    @property
    def transmitting(self) -> bool:
        """A wire-timed transmit is under way (CR.TXP reads 1)."""
        return self._tx_frame is not None

    def _transmit(self) -> None:
        frame = self._read_tx_frame()
        if frame is None or self._tx_timer is None or self.tx_clock is None:
            if frame is not None:
                self._emit(frame)
            self._tx_done()
            return
        self._tx_frame = frame
        self.cmd |= E8390_TRANS
        fcs = not self.tcr & ENTCR_CRC
        self._tx_timer.mod(self.tx_clock.now() + wire_time_ns(len(frame), fcs))

    def _tx_complete(self) -> None:
        frame = self._tx_frame
        if frame is None:
            return
        self._tx_frame = None
        self.cmd &= ~E8390_TRANS
        self._emit(frame)
        self._tx_done()
        self._ring_changed()

    def _tx_done(self) -> None:
        self.tsr = ENTSR_PTX
        self.isr |= ENISR_TX
        self.cmd &= ~E8390_TRANS
        self.update_irq()

    def _read_tx_frame(self) -> bytes | None:
        """The frame TPSR/TBCR describe, or None (counted) if there is nothing to send."""
        index = self.tpsr << 8
        if index >= MEM_SIZE:
            index -= 0x8000  # NetWare 3.11 uses TPSR >= 0xC0 (QEMU's compatibility hack)
        count = self.tbcr
        stats = self.stats
        if index + count > MEM_SIZE:
            stats.tx_out_of_range += 1
            if self.trace.ne2000_transmit_error:
                self._trace_tx_error("out_of_range", count)
            return None
        if count == 0:
            stats.tx_empty += 1
            if self.trace.ne2000_transmit_error:
                self._trace_tx_error("empty", count)
            return None
        return bytes(self.mem[index:index + count])

    def _emit(self, frame: bytes) -> None:
        """The frame leaves the transmitter: onto the wire, or back to our own receiver."""
        mode = (self.tcr & ENTCR_LB) >> TCR_LB_SHIFT
        if mode:
            self._loop_back(frame, TCR_LB_MODES[mode])
            return
        self.stats.tx_sent += 1
        if self.trace.ne2000_transmit:
            self.trace.emit("ne2000_transmit", nic=self.name, len=len(frame),
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
        start, stop = self.pstart, self._pstop
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

    def receive_ready(self) -> bool:
        """Lossless: true while a full-size frame fits with a page to spare (so CURR never
        meets BNRY), the chip is started, not in loopback and not delivering a transmit.
        Otherwise (the wire does not wait): true unless delivering a transmit. A pure
        query, for displays."""
        if self._delivering:
            return False
        if not self.lossless:
            return True
        return not self.cmd & E8390_STOP and not self.tcr & ENTCR_LB \
            and self.free_pages() > FULL_FRAME_PAGES

    def can_receive(self) -> bool:
        """The net layer's question: `receive_ready()`, and a "no" is remembered so that
        the chip flushes the net queue once room appears."""
        if self.receive_ready():
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
        """Store one frame from the wire in the ring: its size if stored, filtered out or
        missed, -1 if dropped."""
        return self._receive(frame, crc_ok=True)

    def receive_bad_crc(self, frame: bytes) -> int:
        """A frame from the wire whose FCS is wrong (a corrupting link filter's hook): if the
        address filter takes it, CNTR1 counts it, RSR.CRC and ISR.RXE are set, and it is
        stored (with RSR.CRC in its header) only if RCR.SEP asks for errored frames."""
        return self._receive(frame, crc_ok=False)

    def _receive(self, frame: bytes, crc_ok: bool) -> int:
        self.stats.offered += 1
        if self._delivering:
            self._reject("reentrant")
            return -1
        if self.tcr & ENTCR_LB:
            self._reject("loopback")
            return -1
        return self._rx_path(frame, crc_ok, looped=False)

    def _loop_back(self, frame: bytes, mode: str) -> None:
        """The transmitter's frame enters our own receiver, never the wire. With TCR.CRC
        (inhibit) its last 4 bytes are the software FCS the receiver checks; otherwise
        the chip generated the FCS and cannot check it (one CRC unit, AN-937)."""
        crc_ok = True
        if self.tcr & ENTCR_CRC:
            crc_ok = fcs_ok(frame)
            frame = frame[:-ETH_FCS_LEN] if len(frame) > ETH_FCS_LEN else frame
        stats = self.stats
        stats.offered += 1
        stats.looped += 1
        accepted = stats.accepted
        self._rx_path(frame, crc_ok, looped=True)
        if self.trace.ne2000_loopback:
            self.trace.emit("ne2000_loopback", nic=self.name, mode=mode, len=len(frame),
                            crc="ok" if crc_ok else "bad",
                            stored="yes" if stats.accepted > accepted else "no")

    def _rx_path(self, frame: bytes, crc_ok: bool, looped: bool) -> int:
        size = len(frame)
        if self.cmd & E8390_STOP:
            self._reject("stopped")
            return -1
        if self._pstop <= self.pstart:
            self._reject("no_ring")
            return -1
        if size == 0:
            self._reject("empty")
            return -1
        if size > ETH_MAX_FRAME:
            self._reject("oversize")
            return -1
        if size < ETH_ZLEN:
            frame = bytes(frame) + bytes(ETH_ZLEN - size)
        reason = self._address_ok(bytes(frame[:6]))
        if reason is not None:
            self._reject(reason)
            return size
        rsr = 0
        if not crc_ok:
            # Counted for frames that pass the address filter, stored or not.
            rsr = ENRSR_CRC
            self.rsr = ENRSR_CRC
            self.isr |= ENISR_RX_ERR
            self._count(CNTR_CRC)
            if not self.rcr & ENRCR_SEP:
                self._reject("bad_crc")
                self.update_irq()
                return size
        if self.rx_halted:
            self._miss("halted")
            return size
        free = self.free_pages()
        if free == 0:
            self._reject("bad_pointers")
            return -1
        stored = len(frame)
        pages = pages_for(stored)
        if pages >= free:
            if self.lossless and not looped:
                self._reject("ring_full")
                return -1
            self._miss("ring_full")
            return size
        self._store(frame, stored, pages, rsr)
        self.stats.accepted += 1
        return size

    def _count(self, index: int) -> None:
        """One more on tally counter `index`; ISR.CNT when it reaches 0xC0, where it stops."""
        value = self.cntr[index]
        if value >= CNTR_MAX:
            return
        self.cntr[index] = value + 1
        if value + 1 == CNTR_MAX:
            self.isr |= ENISR_COUNTERS
            if self.trace.ne2000_counter_overflow:
                self.trace.emit("ne2000_counter_overflow", nic=self.name,
                                counter=CNTR_NAMES[index], isr=f"{self.isr:#04x}")

    def _miss(self, reason: str) -> None:
        """A frame the ring has no room for: missed (CNTR2, RSR.MPA, ISR.OVW and RXE), and
        receive halts until a STOP command (the driver's overrun recovery)."""
        self.stats.missed += 1
        self._count(CNTR_MPA)
        self.rsr = ENRSR_MPA
        self.isr |= ENISR_OVER | ENISR_RX_ERR
        if not self.rx_halted:
            self.rx_halted = True
            self.stats.overflows += 1
            if self.trace.ne2000_overflow:
                self.trace.emit("ne2000_overflow", nic=self.name, curr=f"{self.curr:#04x}",
                                bnry=f"{self.bnry:#04x}", free=self.free_pages())
        if self.trace.ne2000_missed:
            self.trace.emit("ne2000_missed", nic=self.name, reason=reason,
                            cntr2=self.cntr[CNTR_MPA])
        self.update_irq()

    def _store(self, frame: bytes, size: int, pages: int, errors: int = 0) -> None:
        start, stop = self.pstart, self._pstop
        index = self.curr << 8
        if not start <= index < stop:
            index = start
        nxt = index + pages * RING_PAGE
        if nxt >= stop:
            nxt -= stop - start
        rsr = (errors or ENRSR_RXOK) | (ENRSR_PHY if frame[0] & 1 else 0)
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
