"""MainLoop.soon: right after the current handler, never a poll later; bounded."""

import socket

import pytest

from emu.core.loop import MainLoop


@pytest.fixture
def loop():
    main_loop = MainLoop()
    yield main_loop
    main_loop.close()


def test_soon_runs_right_after_the_handler_before_its_bottom_halves(loop):
    order: list[str] = []

    def handler() -> None:
        loop.bh(order.append, "bh")
        loop.soon(order.append, "soon")
        order.append("handler")

    loop.bh(handler)
    assert loop.run_until(lambda: len(order) == 3, timeout=5)
    assert order == ["handler", "soon", "bh"]


def test_soon_after_an_fd_event_runs_in_the_same_loop_turn(loop):
    a, b = socket.socketpair()
    with a, b:
        ran: list[str] = []

        def readable() -> None:
            a.recv(10)
            loop.soon(ran.append, "soon")

        loop.set_read_handler(a.fileno(), readable)
        b.send(b"x")
        loop.run_once(5.0)  # returns after the turn that served the event
        assert ran == ["soon"]
        loop.remove_fd(a.fileno())


def test_soon_outside_a_handler_is_a_bottom_half(loop):
    order: list[str] = []
    loop.soon(order.append, "soon")
    order.append("caller")
    assert loop.run_until(lambda: len(order) == 2, timeout=5)
    assert order == ["caller", "soon"]


def test_soon_from_a_soon_callback_waits_for_the_next_turn(loop):
    """Two parties waking each other cannot keep the loop from polling."""
    order: list[str] = []

    def first() -> None:
        loop.bh(order.append, "bh from first")
        loop.soon(order.append, "second")
        order.append("first")

    loop.bh(lambda: loop.soon(first))
    assert loop.run_until(lambda: len(order) == 3, timeout=5)
    assert order == ["first", "bh from first", "second"]


def test_a_failing_soon_callback_does_not_lose_the_next(loop):
    order: list[str] = []
    errors: list[object] = []
    loop.aio.set_exception_handler(lambda _aio, context: errors.append(context["exception"]))

    def fail() -> None:
        raise RuntimeError("boom")

    def handler() -> None:
        loop.soon(fail)
        loop.soon(order.append, "after the failure")

    loop.bh(handler)
    assert loop.run_until(lambda: order, timeout=5)
    assert order == ["after the failure"]
    assert [str(error) for error in errors] == ["boom"]
