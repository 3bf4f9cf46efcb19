"""MainLoop: independent read/write interest, bottom halves, bounded waiting."""

import socket

import pytest

from emu.core.loop import MainLoop


@pytest.fixture
def loop():
    main_loop = MainLoop()
    yield main_loop
    main_loop.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_read_handler_runs_when_data_arrives(loop, pair):
    a, b = pair
    got: list[bytes] = []
    loop.set_fd_handler(a.fileno(), lambda: got.append(a.recv(100)), None)
    b.send(b"frame")
    assert loop.run_until(lambda: got, timeout=5)
    assert got == [b"frame"]
    loop.remove_fd(a.fileno())


def test_write_interest_does_not_disturb_read_interest(loop, pair):
    a, b = pair
    reads: list[bytes] = []
    writes: list[int] = []
    loop.set_read_handler(a.fileno(), lambda: reads.append(a.recv(100)))

    def on_write() -> None:
        writes.append(1)
        loop.set_write_handler(a.fileno(), None)

    loop.set_write_handler(a.fileno(), on_write)
    assert loop.run_until(lambda: writes, timeout=5)
    b.send(b"still reading")
    assert loop.run_until(lambda: reads, timeout=5)
    assert reads == [b"still reading"]
    assert writes == [1]
    loop.remove_fd(a.fileno())


def test_bottom_half_runs_later_not_inside_caller(loop):
    order: list[str] = []
    loop.bh(order.append, "bh")
    order.append("caller")
    assert loop.run_until(lambda: len(order) == 2, timeout=5)
    assert order == ["caller", "bh"]


def test_run_until_gives_up_at_deadline(loop):
    assert loop.run_until(lambda: False, timeout=0.1) is False


def test_removing_a_handler_stops_callbacks(loop, pair):
    a, b = pair
    calls: list[int] = []
    loop.set_fd_handler(a.fileno(), lambda: calls.append(1), None)
    loop.set_fd_handler(a.fileno(), None, None)
    b.send(b"x")
    fired = [False]
    loop.call_later(0.05, lambda: fired.__setitem__(0, True))
    assert loop.run_until(lambda: fired[0], timeout=5)
    assert calls == []
