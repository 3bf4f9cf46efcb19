"""MainLoop signal handlers: the handler runs on the loop, a burst is quiet, and close()
puts back the dispositions and the wakeup fd it found, discarding a signal that came
while it was tearing down instead of handing it to the restored disposition."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from emu.core.loop import MainLoop

SIG = signal.SIGUSR1


def wakeup_fd() -> int:
    previous = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous)
    return previous


@pytest.fixture
def recorded() -> Iterator[list[int]]:
    """SIGUSR1's disposition before the loop: it records what reaches it."""
    seen: list[int] = []
    previous = signal.signal(SIG, lambda signum, _frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(SIG, previous)


def test_handler_runs_on_the_loop_and_close_restores(
        recorded: list[int], capfd: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(SIG)
    fd_before = wakeup_fd()
    loop = MainLoop()
    got: list[str] = []
    loop.set_signal_handler(SIG, lambda: got.append("loop"))
    assert wakeup_fd() != fd_before
    for _ in range(5000):  # a burst far beyond the pipe: no warning, one call at least
        os.kill(os.getpid(), SIG)
    assert loop.run_until(lambda: bool(got), 10)
    loop.close()
    assert capfd.readouterr().err == ""
    assert recorded == []
    assert signal.getsignal(SIG) is before
    assert wakeup_fd() == fd_before


def test_a_signal_pending_at_close_is_discarded(recorded: list[int]) -> None:
    loop = MainLoop()
    got: list[str] = []
    loop.set_signal_handler(SIG, lambda: got.append("loop"))
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {SIG})
    try:
        os.kill(os.getpid(), SIG)
        assert SIG in signal.sigpending()
        loop.close()
        assert SIG not in signal.sigpending()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    assert recorded == [] and got == []
