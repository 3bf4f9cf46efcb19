"""Uart16550 — QEMU's 16550A serial port (hw/char/serial.c), the subset a console needs.

Byte registers, no register shift: RBR/THR (0), IER (1), IIR/FCR (2), LCR (3), MCR (4),
LSR (5), MSR (6), SCR (7); DLL/DLM replace RBR/THR and IER while LCR.DLAB is set (the
divisor is stored and has no effect). Transmission is instantaneous, so LSR always reports
THRE|TEMT: THR bytes are handed to the console sink a line at a time (then flushed), and
an unfinished line when the board calls `flush_output` (at the end of every CPU slice),
so the sink sees the same bytes in the same order as byte-by-byte writes, one call per
line instead of one per byte. The sink must not block: the command line's is an
`emu.core.fdwriter.FdWriter`, so a stdout nobody reads loses its oldest output (counted)
instead of stopping the machine.
Received bytes wait in a 16-byte FIFO; `receive()` takes what fits and `on_rx_space`
tells the console backend when the guest has made room again, so input is never dropped.
Interrupts: received data (IER.ERBFI) and THR empty (IER.ETBEI, with the 16550 rule that
reading IIR while it reports THR empty clears that condition).

A console line costs the guest one LSR poll and one THR write per byte, so the UART is
an `emu.core.bus.Router`: translated code reaches byte accesses to RBR/THR and LSR
through handlers of their own (QEMU's softmmu TLB entry for an I/O MemoryRegion),
without the per-byte register decode of `read`/`write`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from emu.core.bus import Route
from emu.core.irq import IrqLine

UART_RX = 0
UART_TX = 0
UART_DLL = 0
UART_IER = 1
UART_DLM = 1
UART_IIR = 2
UART_FCR = 2
UART_LCR = 3
UART_MCR = 4
UART_LSR = 5
UART_MSR = 6
UART_SCR = 7

UART_IER_RDI = 0x01
UART_IER_THRI = 0x02

UART_IIR_NO_INT = 0x01
UART_IIR_THRI = 0x02
UART_IIR_RDI = 0x04
UART_IIR_FIFO_BITS = 0xC0

UART_FCR_ENABLE_FIFO = 0x01
UART_FCR_CLEAR_RCVR = 0x02

UART_LCR_DLAB = 0x80

UART_LSR_DR = 0x01
UART_LSR_THRE = 0x20
UART_LSR_TEMT = 0x40

UART_MSR_CTS = 0x10
UART_MSR_DSR = 0x20
UART_MSR_DCD = 0x80

FIFO_SIZE = 16



class ByteSink(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class Uart16550:
    """The console UART: an MMIO region driving one interrupt line."""

    def __init__(self, irq: IrqLine, output: ByteSink) -> None:
        self._irq = irq
        self._output = output
        self._rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0
        self._thr_pending = False
        self._line = bytearray()
        self.on_rx_space: Callable[[], None] | None = None

    def can_receive(self) -> int:
        """How many input bytes fit now."""
        return FIFO_SIZE - len(self._rx)

    def receive(self, data: bytes) -> int:
        """Queue input bytes; returns how many were taken (the rest must be offered again)."""
        taken = data[: self.can_receive()]
        self._rx.extend(taken)
        if taken:
            self._update_irq()
        return len(taken)

    def route(self, offset: int, size: int) -> Route:
        """Byte accesses to RBR/THR and LSR get handlers of their own; every other
        access goes through `read`/`write`."""
        if size == 1 and offset == UART_TX:
            return Route(UART_TX, UART_TX + 1, 0, self._read_rbr, self._write_thr)
        if size == 1 and offset == UART_LSR:
            return Route(UART_LSR, UART_LSR + 1, 0, self._read_lsr, self.write)
        return Route(offset, offset + 1, 0, self.read, self.write)

    def _read_rbr(self, _offset: int, _size: int) -> int:
        if self.lcr & UART_LCR_DLAB:
            return self.divisor & 0xFF
        return self._pop_rx()

    def _write_thr(self, _offset: int, _size: int, value: int) -> None:
        if self.lcr & UART_LCR_DLAB:
            self.divisor = (self.divisor & 0xFF00) | (value & 0xFF)
        else:
            self._transmit(value & 0xFF)

    def _read_lsr(self, _offset: int, _size: int) -> int:
        return UART_LSR_THRE | UART_LSR_TEMT | (UART_LSR_DR if self._rx else 0)

    def read(self, offset: int, size: int) -> int:
        value = 0
        for i in range(size):
            value |= self._read_byte(offset + i) << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        for i in range(size):
            self._write_byte(offset + i, (value >> (8 * i)) & 0xFF)

    def _read_byte(self, reg: int) -> int:
        dlab = self.lcr & UART_LCR_DLAB
        if reg == UART_RX:
            return self._read_rbr(reg, 1)
        if reg == UART_IER:
            return (self.divisor >> 8) if dlab else self.ier
        if reg == UART_IIR:
            iir = self._iir()
            if iir & 0x0F == UART_IIR_THRI:
                self._thr_pending = False
                self._update_irq()
            return iir
        if reg == UART_LCR:
            return self.lcr
        if reg == UART_MCR:
            return self.mcr
        if reg == UART_LSR:
            return self._read_lsr(reg, 1)
        if reg == UART_MSR:
            return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS
        if reg == UART_SCR:
            return self.scr
        return 0

    def _write_byte(self, reg: int, byte: int) -> None:
        dlab = self.lcr & UART_LCR_DLAB
        if reg == UART_TX:
            self._write_thr(reg, 1, byte)
        elif reg == UART_IER:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | (byte << 8)
                return
            enabling_thri = byte & UART_IER_THRI and not self.ier & UART_IER_THRI
            self.ier = byte & 0x0F
            if enabling_thri:
                self._thr_pending = True
            self._update_irq()
        elif reg == UART_FCR:
            self.fcr = byte & (UART_FCR_ENABLE_FIFO | 0xC0)
            if byte & UART_FCR_CLEAR_RCVR and self._rx:
                self._rx.clear()
                self._update_irq()
                self._notify_space()
        elif reg == UART_LCR:
            self.lcr = byte
        elif reg == UART_MCR:
            self.mcr = byte & 0x1F
        elif reg == UART_SCR:
            self.scr = byte

    def _transmit(self, byte: int) -> None:
        self._line.append(byte)
        if byte == 0x0A:
            self.flush_output()
            self._output.flush()
        self._thr_pending = True
        # Only THR-empty changes here, and it raises the line only while enabled.
        if self.ier & UART_IER_THRI:
            self._update_irq()

    def flush_output(self) -> None:
        """Hand the console sink the bytes of a line not finished yet."""
        if self._line:
            self._output.write(bytes(self._line))
            self._line.clear()

    def _pop_rx(self) -> int:
        if not self._rx:
            return 0
        byte = self._rx.popleft()
        self._update_irq()
        if len(self._rx) == FIFO_SIZE - 1:
            self._notify_space()
        return byte

    def _notify_space(self) -> None:
        if self.on_rx_space is not None:
            self.on_rx_space()

    def _iir(self) -> int:
        fifo = UART_IIR_FIFO_BITS if self.fcr & UART_FCR_ENABLE_FIFO else 0
        if self.ier & UART_IER_RDI and self._rx:
            return fifo | UART_IIR_RDI
        if self.ier & UART_IER_THRI and self._thr_pending:
            return fifo | UART_IIR_THRI
        return fifo | UART_IIR_NO_INT

    def _update_irq(self) -> None:
        self._irq.set(self._iir() & UART_IIR_NO_INT == 0)
