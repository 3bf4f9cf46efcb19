"""MainLoop serves fd handlers straight from the poll (emu.core.loop._DirectEpoll): a
failing handler is reported and the loop goes on, a handler removed earlier in the same
poll is not called, and a stream of fd events never holds back timers or bottom halves."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from emu.core.loop import MainLoop


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(2)]
    for a, b in made:
        a.setblocking(False)
        b.setblocking(False)
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_a_failing_fd_handler_is_reported_and_the_loop_serves_on(
        loop: MainLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (a, b), _ = pairs
    errors: list[BaseException] = []
    loop.aio.set_exception_handler(lambda _aio, context: errors.append(context["exception"]))
    got: list[bytes] = []

    def readable() -> None:
        data = a.recv(100)
        got.append(data)
        if data == b"boom":
            raise RuntimeError("handler failed")

    loop.set_read_handler(a.fileno(), readable)
    b.send(b"boom")
    assert loop.run_until(lambda: len(errors) == 1, timeout=5)
    assert isinstance(errors[0], RuntimeError)
    b.send(b"next")
    assert loop.run_until(lambda: got == [b"boom", b"next"], timeout=5)
    loop.remove_fd(a.fileno())


def test_a_handler_removed_earlier_in_the_same_poll_is_not_called(
        loop: MainLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (a1, b1), (a2, b2) = pairs
    ran: list[int] = []

    def first() -> None:
        ran.append(a1.fileno())
        loop.remove_fd(a1.fileno())
        loop.remove_fd(a2.fileno())

    def second() -> None:
        ran.append(a2.fileno())
        loop.remove_fd(a1.fileno())
        loop.remove_fd(a2.fileno())

    loop.set_read_handler(a1.fileno(), first)
    loop.set_read_handler(a2.fileno(), second)
    b1.send(b"x")
    b2.send(b"y")
    deadline = time.monotonic() + 5
    # Both are readable before the loop polls: whichever runs first removes the other.
    while not ran and time.monotonic() < deadline:
        loop.run_once(0.05)
    loop.run_once(0)
    assert len(ran) == 1


def test_fd_traffic_without_end_does_not_hold_back_a_timer(
        loop: MainLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    """Two handlers keep each other busy (each write makes the other side readable):
    the poll never comes back empty, yet the timer fires and stops the loop long before
    the traffic's own bound."""
    (a, b), _ = pairs
    served = [0]
    bound = 200_000

    def ping() -> None:
        a.recv(100)
        served[0] += 1
        if served[0] < bound:
            a.send(b"p")

    def pong() -> None:
        b.recv(100)
        served[0] += 1
        if served[0] < bound:
            b.send(b"q")

    loop.set_read_handler(a.fileno(), ping)
    loop.set_read_handler(b.fileno(), pong)
    b.send(b"start")
    fired: list[int] = []
    loop.call_later(0.05, lambda: (fired.append(served[0]), loop.stop()))
    loop.call_later(10.0, loop.stop)  # a bound for the test, should the timer be held
    loop.run_forever()
    assert fired and 0 < fired[0] < bound
    loop.remove_fd(a.fileno())
    loop.remove_fd(b.fileno())


def test_a_bottom_half_from_an_fd_handler_runs_while_fd_traffic_goes_on(
        loop: MainLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (a, b), _ = pairs
    order: list[str] = []

    def readable() -> None:
        a.recv(100)
        order.append("fd")
        if len(order) == 1:
            loop.bh(order.append, "bh")
        b.send(b"again")  # readable again at once: the poll is never empty

    loop.set_read_handler(a.fileno(), readable)
    b.send(b"go")
    assert loop.run_until(lambda: "bh" in order, timeout=5)
    assert order.index("bh") <= 2  # after the handler's own turn, not after the traffic
    loop.remove_fd(a.fileno())


def test_turn_tells_a_soon_callback_from_its_handler(
        loop: MainLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (a, b), _ = pairs
    turns: list[int] = []

    def readable() -> None:
        a.recv(100)
        turns.append(loop.turn)
        loop.soon(lambda: turns.append(loop.turn))
        turns.append(loop.turn)

    loop.set_read_handler(a.fileno(), readable)
    b.send(b"x")
    assert loop.run_until(lambda: len(turns) == 3, timeout=5)
    assert turns[0] == turns[1] != turns[2]
    loop.remove_fd(a.fileno())
