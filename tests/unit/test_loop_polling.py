"""The main loop's adaptive polling (emu.core.loop.AdaptivePolling, QEMU's aio polling):
the window grows while events come soon after a wait starts and shrinks away when they
do not; a loop that polls still serves every event, timer and bottom half."""

from __future__ import annotations

import itertools
import select
import socket

from emu.core.loop import AdaptivePolling, MainLoop

START, MAX = AdaptivePolling.START_NS, AdaptivePolling.MAX_NS


def test_the_window_doubles_from_its_start_up_to_its_bound() -> None:
    polling = AdaptivePolling()
    assert polling.window_ns == 0
    seen = []
    for _ in range(12):
        polling.blocked(MAX // 2, True)
        seen.append(polling.window_ns)
    assert seen[0] == START
    assert all(b == min(MAX, 2 * a) for a, b in itertools.pairwise(seen))
    assert seen[-1] == MAX


def test_late_or_missing_events_shrink_the_window_to_nothing() -> None:
    polling = AdaptivePolling()
    polling.window_ns = MAX
    polling.blocked(MAX + 1, True)  # came too late for polling to catch it
    assert polling.window_ns == MAX // 2
    for _ in range(10):
        polling.blocked(10 * MAX, False)  # a timeout: nothing came
    assert polling.window_ns == 0


def test_a_polling_loop_serves_a_ping_pong_its_timers_and_bottom_halves() -> None:
    loop = MainLoop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got: list[bytes] = []
    events: list[str] = []
    windows: list[int] = []

    def on_b() -> None:
        data = b.recv(64)
        got.append(data)
        windows.append(loop._epoll.polling.window_ns)
        if len(got) < 200:
            a.send(b"x")  # the next event comes at once: the window grows
        loop.bh(lambda: events.append("bh"))

    try:
        loop.set_fd_handler(b.fileno(), on_b, None)
        loop.call_later(0.05, lambda: events.append("timer"))
        a.send(b"x")
        assert loop.run_until(lambda: len(got) == 200 and "timer" in events, 10)
        assert min(windows[1:]) >= START, windows  # polling stays on while events come
        assert events.count("bh") == 200
        # then nothing comes for a while: the loop stops polling
        assert not loop.run_until(lambda: False, 0.3)
        assert loop._epoll.polling.window_ns == 0
    finally:
        loop.set_fd_handler(b.fileno(), None, None)
        a.close()
        b.close()
        loop.close()


def test_a_sub_millisecond_wait_sleeps_to_the_microsecond(monkeypatch) -> None:
    """epoll_wait counts whole milliseconds; a shorter wait (a guest's 5 us delay, icount
    sleep) goes to select() on the epoll descriptor with its own timeout instead."""
    loop = MainLoop()
    timeouts: list[float] = []
    real_select = select.select

    def recording(r, w, x, timeout=None):
        timeouts.append(timeout)
        return real_select(r, w, x, timeout)

    monkeypatch.setattr(select, "select", recording)
    fired: list[bool] = []
    try:
        loop.call_later(0.0003, lambda: fired.append(True))
        assert loop.run_until(lambda: bool(fired), 5)
    finally:
        loop.close()
    assert timeouts and all(0 < t < 1e-3 for t in timeouts), timeouts
