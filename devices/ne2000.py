"""NE2000 ISA board — QEMU's hw/net/ne2000-isa.c plus the board half of hw/net/ne2000.c.

The board wraps a DP8390 chip core: it decodes the 32-byte ISA I/O window (chip
registers 0x00-0x0F, data port 0x10, reset port 0x1F; access widths as QEMU's, see
docs/qemu-behaviour.md §4.1), holds the station MAC and writes the PROM image (MAC and
the NE2000 signature) on reset, owns the IRQ line and the NetClient that connects the NIC
to a netdev (`-device ne2k_isa,netdev=ID,iobase=0x300,irq=9,mac=52:54:00:12:34:56`), and
describes itself for the monitor's `info ne2000`.

Two properties choose how real the chip is (QEMU has neither): `lossless=on|off` (on:
the net queue holds frames while the ring is full; off: the DP8390's overflow, frames
missed until the driver recovers) and `tx-timing=immediate|wire` (wire: transmit
completes after the frame's 10 Mbit/s wire time in virtual time).
"""

from __future__ import annotations

from collections.abc import Callable

from devices.dp8390 import Dp8390, NicStats, TxClock
from devices.dp8390_regs import (
    CNTR_NAMES,
    CR_BITS,
    CR_PAGE_SHIFT,
    E8390_CMD,
    E8390_RREAD,
    E8390_RWRITE,
    E8390_STOP,
    ENTCR_LB,
    ISR_BITS,
    RCR_BITS,
    READ_NAMES,
    TCR_BITS,
    TCR_LB_MODES,
    TCR_LB_SHIFT,
    WRITE_NAMES,
)
from emu.core.bus import IsaBus, Route
from emu.core.errors import UserError
from emu.core.irq import IrqLine
from emu.core.opts import Opts
from emu.core.trace import DISABLED, Trace
from netdev.client import NetClient
from netdev.framing import BadFcsFrame, RecordBatch
from netdev.net import Net

MODEL = "ne2k_isa"
IO_SIZE = 0x20
DATA_PORT = 0x10
RESET_PORT = 0x1F
DEFAULT_IOBASE = 0x300
DEFAULT_IRQ = 9
DEFAULT_MAC = bytes.fromhex("525400123456")
OPTION_KEYS = frozenset({"driver", "id", "netdev", "iobase", "irq", "mac", "lossless",
                         "tx-timing"})
TX_TIMINGS = ("immediate", "wire")

# The NE2000 signature after the MAC in the PROM (bytes 14-15; 'W' for word-wide cards):
# NE2000 drivers (Linux ne.c, guests/lib/ne2000.c) check it.
PROM_SIGNATURE = 0x57

_ONES = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF)

# Register writes whose trace line decodes the value bit by bit.
_DECODED = {"CR": CR_BITS, "ISR": ISR_BITS, "IMR": ISR_BITS}


def decode_bits(names: tuple[str, ...], value: int, sep: str = "|") -> str:
    """`0x22` with CR's bit names → `STA|RD2` (`-` when no bit is set)."""
    return sep.join(name for bit, name in enumerate(names) if value >> bit & 1) or "-"


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    """`52:54:00:12:34:56` → 6 bytes; UserError on anything else."""
    parts = text.split(":")
    if len(parts) == 6 and all(len(p) == 2 and _is_hex(p) for p in parts):
        return bytes(int(p, 16) for p in parts)
    raise UserError(f"Property 'mac' expects an address like 52:54:00:12:34:56, not '{text}'")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


class Ne2000Client(NetClient):
    """The NIC's end of the net layer (QEMU: the NICState's NetClientState)."""

    kind = "nic"

    def __init__(self, name: str, chip: Dp8390, mac: bytes) -> None:
        super().__init__(name, MODEL)
        self.chip = chip
        self.info_str = f"model={MODEL},macaddr={format_mac(mac)}"

    def receive(self, frame: bytes) -> int:
        # The queue's flush re-offers frames without asking can_receive() (as QEMU's
        # does), so "no room for a full-size frame" must answer 0 here: the queue keeps
        # the frame and the chip flushes once the guest frees ring space.
        chip = self.chip
        if not chip.can_receive():
            return 0
        if type(frame) is BadFcsFrame:
            return chip.receive_bad_crc(frame)
        return chip.receive(frame)

    def receive_batch(self, batch: RecordBatch) -> int:
        chip = self.chip
        taken = 0
        for frame in batch.frames():
            if not chip.can_receive():
                break
            chip.receive(frame)
            taken += 1
        return taken

    def can_receive(self) -> bool:
        return self.chip.can_receive()

    def receive_bad_crc(self, frame: bytes) -> int:
        """A frame damaged on the wire (`receive` sends a BadFcsFrame here, as
        filter-netem's `corrupt=` makes them): on a real wire the flipped bit fails the
        FCS check. The chip counts a CRC error (CNTR1) if the
        frame is for this station and stores it only if RCR.SEP asks for errored frames.
        Returns as `receive` does (0: not now, the ring is full and the NIC lossless)."""
        chip = self.chip
        if not chip.can_receive():
            return 0
        return chip.receive_bad_crc(frame)


class Ne2000Isa:
    """The board: a Region for the I/O window, the chip, its IRQ line and NetClient."""

    def __init__(self, mac: bytes = DEFAULT_MAC, name: str = MODEL, *, lossless: bool = True,
                 tx_clock: TxClock | None = None) -> None:
        """`tx_clock` given: wire-timed transmit on it (`tx-timing=wire`)."""
        if len(mac) != 6:
            raise ValueError("a MAC address is 6 bytes")
        self._mac = bytes(mac)
        self.name = name
        self.irq = IrqLine(f"{name}.irq")
        self.chip = Dp8390(self.irq, lossless=lossless, tx_clock=tx_clock)
        self.chip.name = name
        self.nc = Ne2000Client(name, self.chip, self._mac)
        self.chip.sink = self.nc
        self.trace: Trace = DISABLED
        self._register_routes = tuple(self._register_route(offset) for offset in range(DATA_PORT))
        self.reset()

    def set_trace(self, trace: Trace) -> None:
        """Trace the board, its chip, IRQ line and NetClient with `trace` (emu.core.trace)."""
        self.trace = trace
        self.chip.trace = trace
        self.irq.trace = trace
        self.nc.set_trace(trace)

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def stats(self) -> NicStats:
        return self.chip.stats

    def reset(self) -> None:
        """QEMU's ne2000_reset: the board rebuilds its PROM image in the chip's buffer
        memory, then the chip resets."""
        mem = self.chip.mem
        mem[0:6] = self._mac
        mem[14] = mem[15] = PROM_SIGNATURE
        # Doubling in place from the top keeps QEMU's bit-exact PROM (quirk N2).
        for i in range(15, -1, -1):
            mem[2 * i] = mem[2 * i + 1] = mem[i]
        self.chip.reset()

    def describe(self) -> str:
        """`info ne2000` for this board: every DP8390 register (datasheet names) by page, the
        ring, IRQ and link state, counters. Changes nothing, not even the chip's memory of
        having refused a frame."""
        chip = self.chip
        nc = self.nc
        cr = chip.cmd
        stats = chip.stats
        mar = " ".join(f"{b:02x}" for b in chip.mar)
        filtered = " ".join(f"{k}={v}" for k, v in stats.filtered.items() if v) or "none"
        peer = nc.peer.name if nc.peer is not None else "none"
        ring_pages = max(0, (chip.pstop - chip.pstart) >> 8)
        mode = TCR_LB_MODES[(chip.tcr & ENTCR_LB) >> TCR_LB_SHIFT]
        counters = " ".join(f"{name}={value}" for name, value in zip(CNTR_NAMES, chip.cntr,
                                                                     strict=True))
        timing = "wire" if chip.tx_clock is not None else "immediate"
        lines = [
            f"{nc.name}: {nc.info_str},link={'down' if nc.link_down else 'up'},peer={peer},"
            f"irq={'high' if self.irq.level else 'low'}",
            f"  CR     0x{cr:02x}  page {cr >> CR_PAGE_SHIFT} ({decode_bits(CR_BITS, cr, ' ')})",
            f"  page 0 read:  {self._peek_page(0)}",
            f"  page 0 write: PSTART={chip.pstart >> 8:02x} PSTOP={chip.pstop >> 8:02x} "
            f"BNRY={chip.bnry:02x} TPSR={chip.tpsr:02x} TBCR={chip.tbcr:04x} "
            f"RSAR={chip.rsar:04x} RBCR={chip.rbcr:04x} RCR={chip.rcr:02x} TCR={chip.tcr:02x} "
            f"DCR={chip.dcr:02x} IMR={chip.imr:02x}",
            f"  page 1:       PAR={format_mac(chip.par)} CURR={chip.curr:02x} MAR={mar}",
            f"  page 2 read:  {self._peek_page(2)}",
            f"  ring:   PSTART=0x{chip.pstart >> 8:02x} PSTOP=0x{chip.pstop >> 8:02x} "
            f"BNRY=0x{chip.bnry:02x} CURR=0x{chip.curr:02x} pages={ring_pages} "
            f"free={chip.free_pages()} can_receive={'yes' if chip.receive_ready() else 'no'}",
            f"  ISR=0x{chip.isr:02x} ({decode_bits(ISR_BITS, chip.isr, ' ')}) "
            f"IMR=0x{chip.imr:02x} ({decode_bits(ISR_BITS, chip.imr, ' ')}) "
            f"RCR=0x{chip.rcr:02x} ({decode_bits(RCR_BITS, chip.rcr, ' ')})",
            f"  TCR=0x{chip.tcr:02x} ({decode_bits(TCR_BITS, chip.tcr, ' ')}) loopback={mode} "
            f"RSR=0x{chip.rsr:02x} lossless={'on' if chip.lossless else 'off'} "
            f"tx-timing={timing}{' (transmitting)' if chip.transmitting else ''}",
            f"  tally: {counters} overflow={'halted' if chip.rx_halted else 'no'} "
            f"overflows={stats.overflows}",
            f"  rx: offered={stats.offered} accepted={stats.accepted} missed={stats.missed} "
            f"looped={stats.looped} filtered: {filtered}",
            f"  tx: sent={stats.tx_sent} out_of_range={stats.tx_out_of_range} "
            f"empty={stats.tx_empty} aborted={stats.tx_aborted}",
            f"  queue: {len(nc.incoming_queue)} frames waiting"
            f"{' (receive disabled)' if nc.receive_disabled else ''}",
        ]
        return "\n".join(lines) + "\n"

    def _peek_page(self, page: int) -> str:
        """`NAME=xx` for every register a read of `page` shows, CR and unused offsets aside."""
        return " ".join(f"{name}={self.chip.peek(page, offset):02x}"
                        for offset, name in enumerate(READ_NAMES[page])
                        if offset != E8390_CMD and name != "-")

    def route(self, offset: int, size: int) -> Route:
        """Translated code reaches the data port's handlers in the chip directly, with
        its bursts for copy loops (QEMU gives the data port a MemoryRegion of its own), a
        byte access to a chip register that register's handlers (`_register_route`);
        every other port comes here."""
        if offset == DATA_PORT:
            chip = self.chip
            return Route(DATA_PORT, DATA_PORT + 1, DATA_PORT, chip.port_read, chip.port_write,
                         chip.port_read_burst, chip.port_write_burst)
        if size == 1 and offset < DATA_PORT:
            return self._register_routes[offset]
        return Route(offset, offset + 1, 0, self.read, self.write)

    def _register_route(self, offset: int) -> Route:
        """Byte accesses to chip register `offset` in one call: the handler picks the page
        CR selects and calls the chip's handler for it, unless an I/O trace event is on,
        when it goes through `read`/`write` (which trace), as every access did before."""
        chip = self.chip
        readers, writers = chip.register_handlers(offset)

        def read(_offset: int, _size: int) -> int:
            if self.trace.ne2000_ioport_read:
                return self.read(offset, 1)
            return readers[chip.cmd >> CR_PAGE_SHIFT]()

        def write(_offset: int, _size: int, value: int) -> None:
            trace = self.trace
            if trace.ne2000_ioport_write or trace.ne2000_dma_start:
                self.write(offset, 1, value)
            else:
                writers[chip.cmd >> CR_PAGE_SHIFT](value & 0xFF)

        return Route(offset, offset + 1, offset, read, write)

    def read(self, offset: int, size: int) -> int:
        if offset == DATA_PORT:
            value = self.chip.dma_read(size)
            return value & _ONES[size]
        if size == 1:
            if offset < DATA_PORT:
                value = self.chip.read_reg(offset)
                if self.trace.ne2000_ioport_read:
                    page = self.chip.cmd >> CR_PAGE_SHIFT
                    self.trace.emit("ne2000_ioport_read", nic=self.name, addr=f"{offset:#04x}",
                                    page=page, reg=READ_NAMES[page][offset],
                                    val=f"{value:#04x}")
                return value
            if offset == RESET_PORT:
                if self.trace.ne2000_reset:
                    self.trace.emit("ne2000_reset", nic=self.name)
                self.reset()
                return 0
        if self.trace.ne2000_ioport_ignored:
            self._trace_ignored("read", offset, size)
        return _ONES[size]

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == DATA_PORT:
            self.chip.dma_write(size, value & _ONES[size])
        elif size == 1 and offset < DATA_PORT:
            if self.trace.ne2000_ioport_write:
                self._trace_write(offset, value)
            self.chip.write_reg(offset, value)
            if offset == 0 and self.trace.ne2000_dma_start:
                self._trace_dma_start(value)
        elif self.trace.ne2000_ioport_ignored:
            self._trace_ignored("write", offset, size)

    def _trace_write(self, offset: int, value: int) -> None:
        # The page is the one selected before this write: that is where the write lands.
        page = self.chip.cmd >> CR_PAGE_SHIFT
        reg = WRITE_NAMES[page][offset]
        fields = {"nic": self.name, "addr": f"{offset:#04x}", "page": page, "reg": reg,
                  "val": f"{value & 0xFF:#04x}"}
        names = _DECODED.get(reg)
        if names is not None:
            fields["bits"] = decode_bits(names, value)
        self.trace.emit("ne2000_ioport_write", **fields)

    def _trace_dma_start(self, value: int) -> None:
        if value & E8390_STOP or not value & (E8390_RREAD | E8390_RWRITE):
            return
        chip = self.chip
        self.trace.emit("ne2000_dma_start", nic=self.name,
                        dir="write" if value & E8390_RWRITE else "read",
                        rsar=f"{chip.rsar:#06x}", count=chip.rbcr)

    def _trace_ignored(self, op: str, offset: int, size: int) -> None:
        self.trace.emit("ne2000_ioport_ignored", nic=self.name, op=op, addr=f"{offset:#04x}",
                        size=size)


def ne2k_isa_from_opts(
    opts: Opts,
    *,
    isa: IsaBus,
    isa_irq: Callable[[int], IrqLine],
    net: Net,
    nic_index: int,
    clock: TxClock | None = None,
) -> Ne2000Isa:
    """Build `-device ne2k_isa,...`, map it into `isa`, wire its IRQ and peer it with its
    netdev. `clock` is the machine's virtual clock, which `tx-timing=wire` needs."""
    opts.check_keys(OPTION_KEYS)
    lossless = opts.get_bool("lossless", True)
    timing = opts.get("tx-timing", "immediate")
    if timing not in TX_TIMINGS:
        raise UserError(f"Property 'tx-timing' expects immediate or wire, not '{timing}'")
    if timing == "wire" and clock is None:
        raise UserError("ne2k_isa: tx-timing=wire needs a machine's virtual clock")
    iobase = opts.get_int("iobase", DEFAULT_IOBASE)
    irq = opts.get_int("irq", DEFAULT_IRQ)
    assert iobase is not None and irq is not None
    if not 0 <= iobase <= IsaBus.SIZE - IO_SIZE:
        raise UserError(f"ne2k_isa: iobase {iobase:#x} is outside the ISA I/O space")
    if not 0 <= irq < IsaBus.NUM_IRQS:
        raise UserError(f"ne2k_isa: irq {irq} is not an ISA IRQ (0-{IsaBus.NUM_IRQS - 1})")
    mac_text = opts.get("mac")
    if mac_text is None:
        mac = DEFAULT_MAC[:5] + bytes(((DEFAULT_MAC[5] + nic_index) & 0xFF,))
    else:
        mac = parse_mac(mac_text)
    netdev_id = opts.get("netdev")
    # QEMU names an anonymous NIC after its model and index: ne2k_isa.0, ne2k_isa.1, ...
    name = opts.get("id") or f"{MODEL}.{nic_index}"
    board = Ne2000Isa(mac, name, lossless=lossless,
                      tx_clock=clock if timing == "wire" else None)
    try:
        isa.map(iobase, IO_SIZE, board, name)
    except ValueError as err:
        last = iobase + IO_SIZE - 1
        raise UserError(f"ne2k_isa: I/O ports {iobase:#x}-{last:#x} in use ({err})") from None
    line = isa_irq(irq)
    board.irq.connect(line.set)
    net.add_nic(board.nc, netdev_id)
    return board
