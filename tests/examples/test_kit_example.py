"""Example property tests written with the testing kit (emu.testing) — copy and adapt.

docs/testing-kit.md walks through this file. Three patterns:

1. a guest program against frames Hypothesis invents (`echo.elf` returns every frame it
   accepts to its sender): one machine for the whole module, an in-process FramePeer as
   its wire, an independent model of what must come back;
2. the NE2000 without a CPU (QTest) under random register programs;
3. the stream socket netdev under arbitrarily chunked and corrupt byte streams.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.testing import (
    BROADCAST,
    FramePeer,
    Lab,
    LabMachine,
    QTest,
    RegWrite,
    StreamCase,
    apply_program,
    corrupt_streams,
    ethernet,
    ethernet_frames,
    free_port,
    ne2000_programs,
    socket_streams,
)

pytestmark = pytest.mark.timeout(120)

MAC = bytes.fromhex("525400123456")
OTHER = bytes.fromhex("020000000001")
BOUNDED = settings(max_examples=25, deadline=None)


# -- 1. a guest program: echo.elf ------------------------------------------------------

@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[Lab, LabMachine, FramePeer]]:
    """One echo machine for every example: booting once keeps the test fast, and echo
    keeps no state between frames."""
    with Lab() as lab:
        peer = lab.peer("wire")
        machine = lab.machine("echo", devices=["ne2k_isa,netdev=wire,mac=52:54:00:12:34:56"])
        assert lab.wait_output(machine, "returning every frame", 30), machine.output
        yield lab, machine, peer


def expected_echo(frame: bytes) -> bytes | None:
    """The model: what echo.elf sends back for `frame`, or None if nothing.

    The NIC drops empty and over-long frames, pads short ones to 60 bytes, and (the
    guest sets RCR to accept broadcast) takes only its own address and broadcast; the
    guest ignores frames that claim to come from itself and swaps the addresses. Its
    driver transmits at most 1514 bytes (ETH_FRAME_MAX in guests/lib/ne2000.h), so a
    1515-1518-byte frame (802.1Q size, which the NIC takes) comes back cut to 1514."""
    if not 0 < len(frame) <= 1518:
        return None
    padded = frame + bytes(max(0, 60 - len(frame)))
    dst, src = padded[:6], padded[6:12]
    if dst not in (MAC, BROADCAST) or src == MAC:
        return None
    return (src + MAC + padded[12:])[:1514]


@BOUNDED
@given(frames=st.lists(ethernet_frames(own=MAC, max_size=1600), max_size=6),
       marker=st.integers(0, 0xFFFF))
def test_echo_returns_exactly_the_frames_it_accepts(
        echo: tuple[Lab, LabMachine, FramePeer], frames: list[bytes], marker: int) -> None:
    lab, machine, peer = echo
    peer.received.clear()
    # A last broadcast frame marks the end: echo handles frames in order, so once its
    # echo is back, every earlier frame has been answered or ignored.
    sentinel = ethernet(BROADCAST, OTHER, 0x88B5, b"END" + marker.to_bytes(2, "big"))
    for frame in [*frames, sentinel]:
        peer.send(frame)
    end = expected_echo(sentinel)
    assert lab.run_until(lambda: end in peer.received, 30), machine.output
    expected = [e for e in map(expected_echo, frames) if e is not None]
    assert peer.received == [*expected, end]


# -- 2. the NIC without a CPU ----------------------------------------------------------

@BOUNDED
@given(program=ne2000_programs(max_writes=30))
def test_ne2000_irq_line_follows_isr_and_imr(program: list[RegWrite]) -> None:
    qtest = QTest()
    board = qtest.add_ne2000(iobase=0x300, irq=9)
    apply_program(qtest, program)
    chip = board.chip
    assert qtest.irq_level(9) == bool(chip.isr & chip.imr & 0x7F)
    assert 0 <= qtest.inb(0x307) <= 0xFF  # the chip still answers


# -- 3. the stream socket netdev -------------------------------------------------------

def feed_stream(case: StreamCase) -> list[bytes]:
    """Send `case` to a listen= netdev chunk by chunk; return the frames its peer got."""
    port = free_port()
    with Lab() as lab:
        netdev = lab.netdev(f"socket,id=s0,listen=127.0.0.1:{port}")
        netdev.report = lambda _message: None  # the oversize case reports on stderr
        peer = lab.peer("wire", netdev="s0")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            assert lab.run_until(lambda: netdev.connected, 10)
            for chunk in case.chunks:
                with contextlib.suppress(OSError):  # oversize: the netdev may hang up first
                    client.sendall(chunk)
                lab.run_until(lambda: False, 0)
        # Once the netdev has seen our end of the stream, it has read every byte.
        assert lab.run_until(lambda: not netdev.connected, 10)
        return peer.received


@BOUNDED
@given(case=socket_streams())
def test_stream_netdev_reassembles_any_chunking(case: StreamCase) -> None:
    assert feed_stream(case) == list(case.frames)


@BOUNDED
@given(case=corrupt_streams())
def test_stream_netdev_survives_corrupt_streams(case: StreamCase) -> None:
    got = feed_stream(case)
    if case.kind == "garbage":
        assert got[:len(case.frames)] == list(case.frames)
    else:
        assert got == list(case.frames)
