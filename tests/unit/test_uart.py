"""The 16550A console subset: output, LSR, divisor latch, input FIFO, interrupts."""

import io

from hypothesis import given
from hypothesis import strategies as st

from devices.uart import (
    FIFO_SIZE,
    UART_FCR,
    UART_IER,
    UART_IIR,
    UART_LCR,
    UART_LSR,
    UART_RX,
    UART_SCR,
    UART_TX,
    Uart16550,
)
from emu.core.irq import IrqLine


class FlushCounter(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def make() -> tuple[Uart16550, IrqLine, FlushCounter]:
    irq = IrqLine("uart")
    out = FlushCounter()
    return Uart16550(irq, out), irq, out


def test_thr_bytes_reach_the_console_and_newline_flushes() -> None:
    uart, _, out = make()
    for byte in b"hi\xff\n":
        uart.write(UART_TX, 1, byte)
    assert out.getvalue() == b"hi\xff\n"
    assert out.flushes == 1


def test_lsr_always_ready_to_transmit_and_dr_follows_input() -> None:
    uart, _, _ = make()
    assert uart.read(UART_LSR, 1) == 0x60
    uart.receive(b"x")
    assert uart.read(UART_LSR, 1) == 0x61
    assert uart.read(UART_RX, 1) == ord("x")
    assert uart.read(UART_LSR, 1) == 0x60
    assert uart.read(UART_RX, 1) == 0


def test_divisor_latch_hides_rbr_and_ier() -> None:
    uart, _, out = make()
    uart.write(UART_IER, 1, 0x01)
    uart.write(UART_LCR, 1, 0x83)
    uart.write(UART_TX, 1, 0x0C)
    uart.write(UART_IER, 1, 0x00)
    assert uart.divisor == 0x000C
    assert uart.read(UART_RX, 1) == 0x0C
    uart.write(UART_LCR, 1, 0x03)
    assert uart.read(UART_IER, 1) == 0x01
    assert out.getvalue() == b""


def test_scratch_register_keeps_its_value() -> None:
    uart, _, _ = make()
    uart.write(UART_SCR, 1, 0xA5)
    assert uart.read(UART_SCR, 1) == 0xA5


def test_receive_interrupt_follows_fifo_and_enable() -> None:
    uart, irq, _ = make()
    uart.receive(b"a")
    assert not irq.level
    uart.write(UART_IER, 1, 0x01)
    assert irq.level
    assert uart.read(UART_IIR, 1) & 0x0F == 0x04
    uart.read(UART_RX, 1)
    assert not irq.level
    assert uart.read(UART_IIR, 1) & 0x0F == 0x01


def test_thr_empty_interrupt_is_cleared_by_reading_iir() -> None:
    uart, irq, _ = make()
    uart.write(UART_IER, 1, 0x02)
    assert irq.level
    assert uart.read(UART_IIR, 1) & 0x0F == 0x02
    assert not irq.level
    uart.write(UART_TX, 1, ord("z"))
    assert irq.level


def test_fifo_enable_shows_in_iir_and_clear_empties_rx() -> None:
    uart, _, _ = make()
    uart.write(UART_FCR, 1, 0x01)
    assert uart.read(UART_IIR, 1) == 0xC1
    uart.receive(b"abc")
    spaces: list[int] = []
    uart.on_rx_space = lambda: spaces.append(1)
    uart.write(UART_FCR, 1, 0x03)
    assert uart.read(UART_LSR, 1) & 0x01 == 0
    assert spaces == [1]


@given(st.lists(st.binary(min_size=0, max_size=40), max_size=10))
def test_input_is_never_lost_or_reordered(chunks: list[bytes]) -> None:
    uart, _, _ = make()
    notified = [0]
    uart.on_rx_space = lambda: notified.__setitem__(0, notified[0] + 1)
    received = bytearray()
    for chunk in chunks:
        rest = chunk
        for _ in range(len(chunk) + 1):
            taken = uart.receive(rest)
            assert 0 <= taken <= FIFO_SIZE
            rest = rest[taken:]
            if not rest:
                break
            while uart.read(UART_LSR, 1) & 0x01:
                received.append(uart.read(UART_RX, 1))
        assert not rest
    while uart.read(UART_LSR, 1) & 0x01:
        received.append(uart.read(UART_RX, 1))
    assert bytes(received) == b"".join(chunks)


def test_multi_byte_access_touches_consecutive_registers() -> None:
    uart, _, _ = make()
    uart.write(UART_LCR, 1, 0x03)
    value = uart.read(UART_LCR, 4)
    assert value & 0xFF == 0x03
    assert value >> 16 & 0xFF == 0x60
