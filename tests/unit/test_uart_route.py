"""The UART's routes (what translated code calls) behave exactly like its read/write."""

import io

from hypothesis import given
from hypothesis import strategies as st

from devices.uart import UART_LSR, UART_TX, Uart16550
from emu.core.bus import Bus
from emu.core.irq import IrqLine

BASE = 0x1000_0000

ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("write"), st.integers(0, 7), st.integers(0, 0xFF)),
        st.tuples(st.just("input"), st.just(0), st.integers(0, 20)),
    ),
    max_size=60,
)


def machine() -> tuple[Uart16550, IrqLine, io.BytesIO]:
    irq = IrqLine("uart")
    out = io.BytesIO()
    return Uart16550(irq, out), irq, out


@given(ops)
def test_routed_byte_accesses_match_read_and_write(program: list[tuple[str, int, int]]) -> None:
    plain, plain_irq, plain_out = machine()
    routed, routed_irq, routed_out = machine()
    bus = Bus()
    bus.map(BASE, 8, routed, "uart")
    for op, offset, value in program:
        if op == "input":
            assert plain.receive(bytes(range(value))) == routed.receive(bytes(range(value)))
            continue
        route = bus.route(BASE + offset, 1)
        assert route is not None and route.lo <= BASE + offset < route.hi
        if op == "read":
            assert route.read(BASE + offset - route.base, 1) == plain.read(offset, 1)
        else:
            route.write(BASE + offset - route.base, 1, value)
            plain.write(offset, 1, value)
        assert routed_irq.level == plain_irq.level
    plain.flush_output()
    routed.flush_output()
    assert routed_out.getvalue() == plain_out.getvalue()
    assert routed.divisor == plain.divisor


def test_thr_and_lsr_have_routes_of_their_own() -> None:
    uart, _, _ = machine()
    assert uart.route(UART_TX, 1).write != uart.write
    assert uart.route(UART_LSR, 1).read != uart.read
    assert uart.route(UART_TX, 2).write == uart.write


def test_output_goes_to_the_sink_a_line_at_a_time() -> None:
    uart, _, out = machine()
    for byte in b"one\ntw":
        uart.write(UART_TX, 1, byte)
    assert out.getvalue() == b"one\n"
    uart.flush_output()  # the board does this when a slice ends
    assert out.getvalue() == b"one\ntw"
    uart.flush_output()
    assert out.getvalue() == b"one\ntw"
